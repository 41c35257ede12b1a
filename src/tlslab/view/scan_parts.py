"""What the scan views (terminal and HTML) say in words, shared by both: suite strength,
yes/no/unknown, feature rows, the severity order.

Strength follows the usual reading of the suite's name (RFC 7457; RFC 7465 for RC4;
RFC 8446 for TLS 1.3 suites): *insecure* (no encryption, no authentication, export, RC4,
single DES), *weak* (64-bit blocks, no forward secrecy), *ok* (forward secret but CBC with
a separate MAC), *strong* (forward secret AEAD, and every TLS 1.3 suite).
"""
from __future__ import annotations

from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "info")
VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
#: versions that should be off, and the one that should be on (RFC 8996, RFC 8446)
OLD_VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")


def suite_strength(name: str) -> str:
    """``strong``, ``ok``, ``weak`` or ``insecure`` for a suite named in IANA style."""
    from ..scan.registry import suites
    table = {s.name: s for s in suites().values()}
    s = table.get(name)
    if s is None:
        # SSL 2.0 cipher kinds and unknown code points: judged by their words
        upper = name.upper()
        if any(w in upper for w in ("EXPORT", "RC4", "DES_64", "NULL", "RC2")):
            return "insecure"
        return "weak"
    if s.null_cipher or s.anonymous or s.export or "RC4" in s.cipher or s.cipher.startswith(("DES", "DES40")):
        return "insecure"
    if s.cipher.startswith(("3DES", "IDEA", "RC2")) or not s.forward_secret:
        return "weak"
    if not s.aead:
        return "ok"
    return "strong"


def suite_detail(name: str) -> str:
    """Key exchange, authentication and strength in bits, for a suite's row."""
    from ..scan.registry import suites
    s = next((x for x in suites().values() if x.name == name), None)
    if s is None:
        return ""
    if s.kx == "TLS13":
        return f"TLS 1.3, {s.bits} bits"
    if s.kx == "RSA":
        return f"RSA key transport (no forward secrecy), {s.bits} bits"
    return f"{s.kx}-{s.auth}, {s.bits} bits"


def yes_no(value: Any, *, unknown: str = "not checked") -> str:
    if value is None:
        return unknown
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def feature_rows(doc: dict) -> list[tuple[str, str, str]]:
    """``(label, value, mood)`` per feature; mood is good, bad, warn or plain."""
    rows: list[tuple[str, str, str]] = []

    def add(label: str, value: Any, good: Any = True, *, unknown: str = "not checked",
            bad_mood: str = "bad", text: str | None = None) -> None:
        mood = "plain" if value is None else ("good" if value == good else bad_mood)
        rows.append((label, text if text is not None else yes_no(value, unknown=unknown), mood))

    r = doc.get("session_resumption") or {}
    add("session resumption (IDs)", r.get("session_id"), good=True, bad_mood="plain")
    add("session tickets (TLS 1.2)", r.get("tickets"), good=True, bad_mood="plain")
    add("resumption (TLS 1.3 PSK)", r.get("psk"), good=True, bad_mood="plain")
    e = doc.get("early_data") or {}
    add("0-RTT early data", e.get("accepted"), good=False, bad_mood="warn",
        text=None if not e.get("accepted") else f"accepted (up to {e.get('max_early_data_size')} bytes)")
    a = doc.get("alpn") or {}
    acc = a.get("accepted")
    rows.append(("ALPN", ", ".join(acc) if acc else ("none" if acc is not None else "not checked"), "plain"))
    o = doc.get("ocsp_stapling") or {}
    add("OCSP stapling", o.get("stapled"), good=True, bad_mood="warn",
        text=(f"yes ({o.get('bytes')} bytes, {o.get('version')})" if o.get("stapled") else None))
    add("secure renegotiation", doc.get("secure_renegotiation"))
    cr = doc.get("client_renegotiation") or {}
    add("client-initiated renegotiation", cr.get("accepted"), good=False)
    f = doc.get("fallback_scsv") or {}
    add("TLS_FALLBACK_SCSV", f.get("supported"), bad_mood="warn")
    add("extended master secret", doc.get("extended_master_secret"), bad_mood="warn")
    add("encrypt-then-MAC", doc.get("encrypt_then_mac"), bad_mood="plain")
    add("compression", doc.get("compression"), good=False)
    add("record_size_limit", doc.get("record_size_limit"), bad_mood="plain")
    add("heartbeat extension", doc.get("heartbeat"), good=False, bad_mood="warn")
    h = doc.get("hello_retry_request")
    if isinstance(h, dict):
        rows.append(("HelloRetryRequest", (f"yes, for {h.get('group')}" + (" with a cookie" if h.get("cookie") else ""))
                     if h.get("sent") else "no", "plain"))
    return rows


def vulnerability_rows(doc: dict) -> list[tuple[str, str, str, str]]:
    """``(name, verdict, mood, evidence)`` for every checked weakness."""
    ev = doc.get("vulnerability_evidence") or {}
    out = []
    for name, value in (doc.get("vulnerabilities") or {}).items():
        verdict, mood = (("vulnerable", "bad") if value else ("not vulnerable", "good")) if value is not None \
            else ("undecided", "warn")
        out.append((name, verdict, mood, str(ev.get(name, ""))))
    return out


def target_text(doc: dict) -> str:
    t = doc.get("target") or {}
    host = str(t.get("host", ""))
    hostport = f"[{host}]:{t.get('port')}" if ":" in host else f"{host}:{t.get('port')}"
    extra = []
    if t.get("server_name") and t.get("server_name") != host:
        extra.append(f"name {t['server_name']}")
    if t.get("starttls"):
        extra.append(f"STARTTLS {t['starttls']}")
    return hostport + ("  " + "  ".join(extra) if extra else "")


def sorted_findings(doc: dict) -> list[dict]:
    """Most severe first; within a severity, the server's own problems before the
    deviations from a Mozilla configuration (``--against``), which repeat them by aspect."""
    return sorted(doc.get("findings") or [],
                  key=lambda f: (SEVERITIES.index(f.get("severity")) if f.get("severity") in SEVERITIES
                                 else len(SEVERITIES), str(f.get("id")).startswith("mozilla-"),
                                 str(f.get("id"))))


def severity_counts(doc: dict) -> list[tuple[str, int]]:
    counts = {s: 0 for s in SEVERITIES}
    for f in doc.get("findings") or []:
        if f.get("severity") in counts:
            counts[f["severity"]] += 1
    return [(s, n) for s, n in counts.items() if n]


def error_message(doc: dict) -> str:
    """The one-line reason a scan failed (``doc["error"]`` is ``{"code", "message", ...}``;
    a bare string is accepted from older stored documents)."""
    err = doc.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err.get("code") or "the scan failed")
    return str(err or "")
