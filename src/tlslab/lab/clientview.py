"""The server's view of each client: what it offered that matters, and why the handshake
failed (or would fail) for it, in the diagnosis vocabulary of DESIGN.md.

``tlslab serve`` logs one :class:`ClientReport` per connection.  Everything here is read
from the server connection's trace (the ClientHello as received, the messages sent, the
alerts) and the typed error of a failed handshake, compared with what the server was
configured to speak (:class:`ServerProfile`); never from engine internals.

::

    profile = ServerProfile.from_config(config, scenario=..., problem=..., problem_code=...)
    report = explain_connection(peer, trace, error=None_or_HandshakeError,
                                negotiated=tls.negotiated, profile=profile)
    report.line()      # "client: TLS 1.2 max; ... | why: client offered TLS 1.2 at most; ..."
    report.to_json()   # {"time", "peer", "offered", "outcome", "alert_sent", ...}
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from ..probe.spec import suite_family
from ..workbench.render import message_details
from .client_identity import NOT_COMPARED, fingerprint_of  # fingerprint_of: re-exported

__all__ = ["ALERT_MEANING", "ClientReport", "Offer", "ServerExplainer", "ServerProfile",
           "explain_connection",
           "offer_of", "families_text", "suite_families"]

#: versions from newest to oldest (names as the trace gives them)
VERSION_ORDER = ("TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0", "SSL 3.0")

#: what an alert the *client* sends means, seen from the server (RFC 8446 §6.2, RFC 5246 §7.2)
ALERT_MEANING = {
    "unknown_ca": "the client does not trust the CA at the top of the chain, or cannot build "
                  "a chain to one it trusts",
    "bad_certificate": "the client found the certificate bad: a wrong name, a signature or a "
                       "key usage it rejects, ...",
    "certificate_unknown": "the client rejected the certificate, often as not trusted or not "
                           "for the name it asked for",
    "certificate_expired": "the client says a certificate of the chain has expired or is not "
                           "valid yet",
    "unsupported_certificate": "the client does not accept this kind of certificate: its key, "
                               "key usage or extended key usage",
    "certificate_revoked": "the client says a certificate of the chain is revoked",
    "access_denied": "the client refused to go on (its policy)",
    "decrypt_error": "a signature, e.g. our CertificateVerify, did not verify for the client",
    "illegal_parameter": "the client found a value it does not accept in our messages",
    "handshake_failure": "the client cannot go on with what we chose",
    "protocol_version": "the client does not accept the protocol version we chose",
    "insufficient_security": "the client finds what we chose too weak",
    "user_canceled": "the client gave up",
    "internal_error": "the client failed on its side",
    "decode_error": "the client could not parse one of our messages",
    "unexpected_message": "the client did not expect one of our messages",
    "no_application_protocol": "the client speaks none of our ALPN protocols",
    "missing_extension": "the client missed an extension it needs",
    "unsupported_extension": "the client got an extension it did not offer",
    "close_notify": "the client closed the connection without saying why",
}

#: alerts a client sends when it refuses the server's certificate
CERTIFICATE_ALERTS = frozenset({"unknown_ca", "bad_certificate", "certificate_unknown",
                                "certificate_expired", "unsupported_certificate",
                                "certificate_revoked", "access_denied"})

_GENERIC_CODES = {"unrecognized_name": "sni-required",
                  "no_application_protocol": "alpn-mismatch",
                  "certificate_required": "client-certificate-required",
                  "protocol_version": "protocol-version-mismatch"}


# --------------------------------------------------------------------------- the server

@dataclass(frozen=True)
class ServerProfile:
    """What this server speaks, as configured, plus (in a lab scenario) what is wrong with
    it: the terms the explanations compare the client's offer with."""

    versions: tuple[str, ...] = ("TLS 1.3", "TLS 1.2")
    cipher_suites: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ()
    require_sni: bool = False
    client_auth: str | None = None            # None, "requested" or "required"
    certificate_key: str = ""                 # "ECDSA P-256", "RSA 2048", ...
    certificate_names: tuple[str, ...] = ()   # SAN values: "localhost", "127.0.0.1", ...
    tls13_pkcs1: bool = False
    scenario: str | None = None
    #: what is wrong with the certificate chain, for clients that reject it (one clause)
    problem: str | None = None
    #: the diagnosis code of that problem, or of what the scenario breaks
    problem_code: str | None = None
    #: the scenario's failure is the client's decision, after the server's flight
    client_decides: bool = False
    #: which clients accept the problem anyway (e.g. "OpenSSL falls back to the CN")
    lenient: str | None = None
    #: the CA file a client should trust (advice in explanations)
    ca_file: str | None = None

    @classmethod
    def from_config(cls, config: Any, **extra: Any) -> "ServerProfile":
        """The profile of a :class:`~tlslab.proto.config.ServerConfig` (its public fields
        and the names it resolved), with ``extra`` fields (scenario, problem, ...)."""
        from ..proto.names import CipherSuite, NamedGroup, name_of
        from ..proto.certificates import describe_certificate

        leaf = config.certificate_chain[0]
        try:
            d = describe_certificate(leaf)
            key, names = d.get("key", ""), tuple(s.split(":", 1)[-1] for s in d.get("san") or [])
        except Exception:  # a certificate we cannot describe still serves
            key, names = "", ()
        client_auth = None
        if getattr(config, "client_ca_file", None):
            client_auth = "required" if config.require_client_cert else "requested"
        values = dict(
            versions=tuple(config.version_names),
            cipher_suites=tuple(_suite_name(name_of(CipherSuite, c))
                                for c in config.cipher_suite_codes),
            groups=tuple(name_of(NamedGroup, g) for g in config.group_codes),
            alpn=tuple(config.alpn_protocols or ()),
            require_sni=bool(getattr(config, "require_sni", False)),
            client_auth=client_auth,
            certificate_key=key,
            certificate_names=names,
            tls13_pkcs1=bool(getattr(config, "tls13_pkcs1_signatures", False)),
        )
        values.update(extra)
        return cls(**values)

    @property
    def versions_text(self) -> str:
        ordered = [v for v in VERSION_ORDER if v in self.versions]
        if len(ordered) == 1:
            return f"only {ordered[0]}"
        return " and ".join([", ".join(ordered[:-1]), ordered[-1]]) if ordered else "nothing"


# --------------------------------------------------------------------------- the client

@dataclass
class Offer:
    """What the client's (last) ClientHello offered that matters for a diagnosis."""

    versions: list[str] = field(default_factory=list)       # known versions, newest first
    cipher_suites: list[str] = field(default_factory=list)  # IANA names, SCSV/GREASE left out
    unknown_suites: int = 0                                 # code points tlslab does not name
    groups: list[str] = field(default_factory=list)
    key_shares: list[str] = field(default_factory=list)
    signature_algorithms: list[str] = field(default_factory=list)
    sni: str | None = None
    alpn: list[str] | None = None
    #: "not requested", "none yet" (handshake ended before), "empty" or the subject
    client_certificate: str = "not requested"
    #: the versions come from supported_versions (RFC 8446 §4.2.1); without it, the one
    #: version is legacy_version, the highest the client speaks (RFC 5246 §7.4.1.2)
    versions_listed: bool = True

    @property
    def max_version(self) -> str | None:
        return self.versions[0] if self.versions else None

    @property
    def min_version(self) -> str | None:
        return self.versions[-1] if self.versions else None

    @property
    def families(self) -> list[str]:
        return suite_families(self.cipher_suites)

    def to_json(self) -> dict[str, Any]:
        return {"max_version": self.max_version, "versions": self.versions,
                "suite_families": self.families, "cipher_suites": self.cipher_suites,
                "groups": self.groups, "key_shares": self.key_shares,
                "signature_algorithms": self.signature_algorithms, "sni": self.sni,
                "alpn": self.alpn, "client_certificate": self.client_certificate}

    def text(self) -> str:
        """``TLS 1.3 max; suites TLS 1.3, ECDHE-ECDSA AEAD+CBC, ...; groups ...; SNI x; ALPN -; cert ...``"""
        parts = [f"{self.max_version or '?'} max" + (f" (min {self.min_version})"
                                                     if self.min_version != self.max_version else "")]
        fams = families_text(self.cipher_suites)
        if self.unknown_suites:
            fams += f" (+{self.unknown_suites} unknown)"
        parts.append(f"suites {fams or 'none'}")
        parts.append("groups " + (_short(self.groups, 5) or "none"))
        parts.append(f"SNI {self.sni}" if self.sni else "no SNI")
        parts.append("ALPN " + ",".join(self.alpn) if self.alpn else "no ALPN")
        parts.append("client cert " + self.client_certificate)
        return "; ".join(parts)


def _tls13_suite(name: str) -> bool:
    return name.startswith(("TLS_AES_", "TLS_CHACHA20_")) and "_WITH_" not in name


def _family(name: str) -> str | None:
    """"TLS 1.3", "ECDHE-RSA AEAD", "static RSA CBC", "static RSA 3DES"...; None for
    signalling values (SCSV) and code points without a name."""
    if _tls13_suite(name):
        return "TLS 1.3"
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return None
    return suite_family(name)


def suite_families(suites: list[str] | tuple[str, ...]) -> list[str]:
    """The families of ``suites``, in first-seen order."""
    out: list[str] = []
    for s in suites:
        fam = _family(s)
        if fam and fam not in out:
            out.append(fam)
    return out


def families_text(suites: list[str] | tuple[str, ...]) -> str:
    """``TLS 1.3, ECDHE-ECDSA AEAD+CBC, static RSA 3DES``: families grouped by key exchange."""
    by_kx: dict[str, list[str]] = {}
    for fam in suite_families(suites):
        if fam == "TLS 1.3":
            by_kx.setdefault(fam, [])
            continue
        kx, _, bulk = fam.rpartition(" ")
        by_kx.setdefault(kx, []).append(bulk)
    return ", ".join(f"{kx} {'+'.join(b)}" if b else kx for kx, b in by_kx.items())


def _short(items: list[str], limit: int) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" (+{len(items) - limit})"


def _known(name: str) -> bool:
    return bool(name) and not name.startswith(("0x", "GREASE", "unknown"))


def _suite_name(name: str) -> str:
    """An IANA suite name; ``0x....`` code points looked up in the TLS 1.2 suite table."""
    if name.startswith("0x"):
        from ..proto.tls12.suites import suite_name
        try:
            return suite_name(int(name, 16))
        except ValueError:
            return name
    return name


def offer_of(trace: Any) -> Offer | None:
    """The client's offer as the server received it, or None before any ClientHello."""
    entries = list(getattr(trace, "entries", []))
    hello = None
    for e in entries:
        if e.kind == "message" and e.name == "ClientHello" and e.direction == "received":
            hello = e
    if hello is None:
        return None
    d = message_details(hello)
    if not d or "error" in d:
        return Offer()
    suites = [_suite_name(s) for s in d.get("cipher_suites", [])]
    named = [s for s in suites if _known(s)]
    offer = Offer(
        versions=[v for v in VERSION_ORDER if v in d.get("versions", [])],
        cipher_suites=named,
        unknown_suites=sum(1 for s in suites if not _known(s)),
        groups=[g for g in d.get("groups", []) if _known(g)],
        key_shares=[g for g in d.get("key_shares", []) if _known(g)],
        signature_algorithms=[s for s in d.get("signature_algorithms", []) if _known(s)],
        sni=d.get("sni") or None,
        alpn=d.get("alpn"),
        versions_listed="supported_versions" in d.get("extensions", []),
    )
    offer.client_certificate = _client_certificate(entries)
    return offer


def _client_certificate(entries: list) -> str:
    requested = any(e.kind == "message" and e.direction == "sent" and e.name.startswith(
        "CertificateRequest") for e in entries)
    if not requested:
        return "not requested"
    for e in entries:
        if e.kind == "message" and e.direction == "received" and e.name in ("Certificate",
                                                                            "Certificate12"):
            certs = message_details(e).get("certificates") or []
            if not certs:
                return "empty"
            return str(certs[0].get("subject") or "sent")
    return "none yet"


# --------------------------------------------------------------------------- the report

@dataclass
class ClientReport:
    """One connection, as the server saw it."""

    peer: str
    offer: Offer | None
    outcome: str            # ok, server-refused, client-aborted, client-closed, timeout, not-tls, error
    code: str | None        # the diagnosis code (None: nothing to say)
    explanation: str        # one sentence, "" when the handshake simply worked
    alert_sent: str | None = None
    alert_received: str | None = None
    negotiated: dict = field(default_factory=dict)
    error: str | None = None
    scenario: str | None = None
    #: the client's JA4 fingerprint and the closest profile of the library (or None)
    ja4: str | None = None
    looks_like: str | None = None
    time: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc)
                      .isoformat(timespec="milliseconds").replace("+00:00", "Z"))

    def why(self) -> str:
        """``explanation → code`` (or just the explanation)."""
        if self.code and self.code != "ok" and self.explanation:
            return f"{self.explanation} → {self.code}"
        return self.explanation

    def line(self) -> str:
        """The part of the log line after the engine's own words: ``client: ... | why: ...``."""
        parts = [f"client: {self.offer.text()}" if self.offer else "client: no ClientHello"]
        if self.ja4:
            if self.looks_like == NOT_COMPARED:
                parts.append(f"ja4 {self.ja4}, {NOT_COMPARED}")
            else:
                parts.append(f"ja4 {self.ja4}" + (f", looks like {self.looks_like}"
                                                  if self.looks_like else ", no close profile"))
        why = self.why()
        if why:
            label = "why" if self.outcome != "ok" else "note"
            parts.append(f"{label}: {why}")
        return " | ".join(parts)

    def to_json(self) -> dict[str, Any]:
        n = self.negotiated or {}
        return {"time": self.time, "peer": self.peer, "scenario": self.scenario,
                "offered": self.offer.to_json() if self.offer else None,
                "outcome": self.outcome,
                "negotiated": {k: n.get(k) for k in ("version", "cipher_suite", "group",
                                                     "signature_scheme", "alpn_protocol")
                               if n.get(k)} or None,
                "alert_sent": self.alert_sent, "alert_received": self.alert_received,
                "code": self.code, "explanation": self.explanation, "error": self.error,
                "ja4": self.ja4,
                "looks_like": None if self.looks_like == NOT_COMPARED else self.looks_like}


def explain_connection(peer: str, trace: Any, *, error: Any = None,
                       negotiated: dict | None = None, profile: ServerProfile | None = None,
                       after: str | None = None) -> ClientReport:
    """Read one server-side connection: ``trace`` is the server's trace, ``error`` the
    :class:`~tlslab.io.blocking.HandshakeError` of a failed handshake (None: it worked).

    ``after`` says what the client did once the handshake was complete, when the server
    waited to see: ``"request"`` (it sent one), ``"hung-up"`` (it closed without one),
    ``"alert:NAME"`` (it sent a fatal alert), ``"timeout"``.
    """
    profile = profile or ServerProfile()
    offer = offer_of(trace)
    n = dict(negotiated or (getattr(error, "negotiated", None) or {}))
    report = ClientReport(peer=peer, offer=offer, outcome="ok", code="ok", explanation="",
                          negotiated=n, scenario=profile.scenario)
    report.ja4, report.looks_like = fingerprint_of(trace)
    if error is None:
        _explain_success(report, profile, after)
        return report
    report.alert_sent = getattr(error, "alert_sent", None)
    report.alert_received = getattr(error, "alert_received", None)
    report.error = " ".join(str(getattr(error, "reason", error)).split())
    if report.alert_sent:
        report.outcome = "server-refused"
        _explain_refusal(report, profile, trace)
    elif report.alert_received and report.alert_received != "close_notify":
        report.outcome = "client-aborted"
        _explain_abort(report, profile, trace)
    elif getattr(error, "code", None) == "timeout":
        report.outcome, report.code = "timeout", "timeout"
        report.explanation = ("the client sent nothing for too long "
                              + ("before its ClientHello" if offer is None else
                                 f"after our {_last_sent(trace) or 'answer'}"))
    else:
        report.outcome = "client-closed"
        _explain_close(report, profile, trace)
    return report


def _explain_success(r: ClientReport, p: ServerProfile, after: str | None) -> None:
    if after and after.startswith("alert:"):
        alert = after.split(":", 1)[1]
        r.outcome, r.alert_received = "client-aborted", alert
        r.explanation = (f"the client completed the handshake, then sent {alert} "
                         f"({ALERT_MEANING.get(alert, 'no reason we know')})")
    elif after == "hung-up":
        r.outcome = "client-closed"
        r.explanation = "the client completed the handshake, then hung up without a request"
    elif after == "timeout":
        r.explanation = "the client completed the handshake, then sent no request in time"
    if not (p.problem and p.client_decides and p.problem_code):
        r.code = "ok" if r.outcome == "ok" else None
        return
    r.code = p.problem_code
    if r.outcome != "ok":
        r.explanation += (": it may have refused the certificate after the handshake (curl "
                          "checks the host name then), or only been probing"
                          if r.outcome == "client-closed" else "")
        r.explanation += f"; with this scenario, because {p.problem}"
    elif p.problem_code == "missing-intermediate":
        r.explanation = (f"handshake ok although {p.problem}: this client completed the chain "
                         "itself (it fetched the intermediate from the AIA URL, or had it) or "
                         "does not verify; clients that do neither fail")
    else:
        r.explanation = (f"handshake ok although {p.problem}: this client does not verify the "
                         "certificate (curl -k, --insecure) or accepts it anyway"
                         + (f" ({p.lenient})" if p.lenient else "")
                         + "; a verifying client fails")


# --------------------------------------------------------------------------- refusals

def _versions_phrase(offer: Offer, server: ServerProfile) -> str:
    mine = [VERSION_ORDER.index(v) for v in server.versions if v in VERSION_ORDER]
    theirs = offer.versions
    if not theirs:
        return "client offered no protocol version we know"
    if not offer.versions_listed:
        return f"client offered {theirs[0]} at most"
    if len(theirs) == 1:
        return f"client offered only {theirs[0]}"
    if mine and VERSION_ORDER.index(theirs[0]) > max(mine):  # client's newest is older than ours
        return f"client offered {theirs[0]} at most"
    if mine and VERSION_ORDER.index(theirs[-1]) < min(mine):  # client's oldest is newer
        return f"client offered {theirs[-1]} at least (up to {theirs[0]})"
    return f"client offered {', '.join(theirs)}"


def _common_version(offer: Offer, server: ServerProfile) -> str | None:
    return next((v for v in VERSION_ORDER if v in offer.versions and v in server.versions), None)


def _why_version(offer: Offer, p: ServerProfile) -> str:
    return f"{_versions_phrase(offer, p)}; this server speaks {p.versions_text}"


def _why_suites(offer: Offer, p: ServerProfile, version: str | None) -> tuple[str, str] | None:
    """(code, text) when no suite fits, for the version that would be chosen."""
    tls13 = version == "TLS 1.3"
    mine = [s for s in p.cipher_suites if _tls13_suite(s) == tls13]
    theirs = [s for s in offer.cipher_suites if _tls13_suite(s) == tls13]
    kx = _suite_kx_for(p.certificate_key)
    if not tls13 and kx:
        # TLS 1.2 suites name the certificate's key type (RFC 5246 §7.4.2, RFC 8422 §5.3)
        fits = [s for s in mine if (_family(s) or "").startswith(kx)]
        if mine and not fits:
            return ("no-common-cipher",
                    f"this server's certificate is {p.certificate_key} but every suite it "
                    f"accepts ({families_text(mine)}) needs another kind of certificate: no "
                    "suite fits, whatever the client offers")
        mine = fits
    if not any(s in theirs for s in mine):
        shown = ", ".join(mine) if len(mine) <= 2 else families_text(mine)
        return ("no-common-cipher",
                f"client offered {families_text(theirs) or 'no ' + (version or '') + ' suites'}; "
                f"this server accepts only {shown or 'none'}"
                + (f" (for {version})" if version else ""))
    return None


def _suite_kx_for(key: str) -> tuple[str, ...] | None:
    """The TLS 1.2 key exchange families a certificate with this key can serve."""
    k = key.upper()
    if k.startswith(("ECDSA", "ED")):
        return ("ECDHE-ECDSA",)
    if k.startswith("RSA"):
        return ("ECDHE-RSA", "DHE-RSA", "static RSA")
    return None


def _why_groups(offer: Offer, p: ServerProfile, version: str | None) -> tuple[str, str] | None:
    uses_group = version == "TLS 1.3" or any(
        s.startswith("TLS_ECDHE_") for s in p.cipher_suites if s in offer.cipher_suites)
    if not uses_group or not p.groups:
        return None
    if not any(g in p.groups for g in offer.groups):
        return ("no-common-group",
                f"client offered groups {_short(offer.groups, 6) or 'none'}; "
                f"this server accepts only {', '.join(p.groups)}")
    return None


def _why_signatures(offer: Offer, p: ServerProfile, reason: str | None) -> tuple[str, str] | None:
    if reason and "signature" in reason.lower():
        return ("no-common-signature-algorithm",
                f"client accepts signature schemes {_short(offer.signature_algorithms, 5) or 'none'}; "
                f"this server's {p.certificate_key or ''} certificate cannot sign with any of them")
    return None


def _code_from_words(reason: str | None) -> str | None:
    text = (reason or "").lower()
    for word, code in (("signature", "no-common-signature-algorithm"), ("group", "no-common-group"),
                       ("cipher suite", "no-common-cipher"), ("version", "protocol-version-mismatch"),
                       ("application protocol", "alpn-mismatch")):
        if word in text:
            return code
    return None


def _explain_refusal(r: ClientReport, p: ServerProfile, trace: Any) -> None:
    offer, alert = r.offer, r.alert_sent
    if offer is None:
        _explain_no_hello(r)
        return
    if alert == "protocol_version":
        r.code, r.explanation = "protocol-version-mismatch", _why_version(offer, p)
    elif alert == "unrecognized_name":
        r.code = "sni-required"
        r.explanation = ("client sent no SNI (server_name), as clients do when connecting to an "
                         "IP address; this server requires one" if not offer.sni else
                         f"client asked for {offer.sni}, a name this server does not serve")
    elif alert == "no_application_protocol":
        r.code = "alpn-mismatch"
        r.explanation = (f"client offered ALPN {', '.join(offer.alpn or []) or 'none'}; "
                         f"this server speaks only {', '.join(p.alpn) or 'none'}")
    elif alert == "certificate_required" or (p.client_auth and alert in CERTIFICATE_ALERTS
                                             | {"decrypt_error"}):
        r.code = "client-certificate-required"
        if offer.client_certificate in ("empty", "none yet", "not requested"):
            r.explanation = ("client sent no certificate; this server requires one issued by "
                             "its client CA")
        else:
            r.explanation = (f"client sent a certificate ({offer.client_certificate}) this "
                             f"server does not accept: {r.error}")
    elif alert in ("handshake_failure", "insufficient_security", "illegal_parameter"):
        version = _common_version(offer, p)
        found = (_why_suites(offer, p, version) or _why_groups(offer, p, version)
                 or _why_signatures(offer, p, r.error))
        if found:
            r.code, r.explanation = found
        else:
            r.code = _code_from_words(r.error) or (p.problem_code if not p.client_decides else None)
            r.explanation = r.error or alert
    else:
        r.code = _GENERIC_CODES.get(alert or "")
        r.explanation = f"the client's messages broke the protocol: {r.error}"


def _explain_no_hello(r: ClientReport) -> None:
    reason = r.error or ""
    if "not a TLS record" in reason or "not TLS" in reason:
        r.outcome, r.code = "not-tls", "not-tls"
        hint = " (http:// sent to an https:// port?)" if "HTTP" in reason else ""
        r.explanation = f"the client does not speak TLS{hint}: {reason}"
    else:
        r.code = None
        r.explanation = reason


# --------------------------------------------------------------------------- client aborts

def _sent_names(trace: Any) -> list[str]:
    return [e.name for e in getattr(trace, "entries", [])
            if e.kind == "message" and e.direction == "sent"]


def _last_sent(trace: Any) -> str | None:
    names = _sent_names(trace)
    return names[-1] if names else None


def _saw_certificate(trace: Any) -> bool:
    return any(n in ("Certificate", "Certificate12") for n in _sent_names(trace))


def _chosen_version(trace: Any) -> str | None:
    """The version of the ServerHello we sent, if any."""
    for e in getattr(trace, "entries", []):
        if e.kind == "message" and e.direction == "sent" and e.name == "ServerHello":
            return message_details(e).get("version")
    return None


def _abort_point(trace: Any, alert: str | None) -> str | None:
    """The message of ours the client most likely answered with ``alert``."""
    sent = _sent_names(trace)
    if alert in CERTIFICATE_ALERTS and _saw_certificate(trace):
        return "Certificate"
    if alert in ("illegal_parameter", "decrypt_error") and "CertificateVerify" in sent:
        return "CertificateVerify"
    return sent[-1] if sent else None


def _name_problem(offer: Offer, p: ServerProfile) -> str | None:
    if offer.sni and p.certificate_names and offer.sni.lower() not in {
            n.lower() for n in p.certificate_names}:
        return (f"the client asked for {offer.sni}, a name this certificate does not carry "
                f"({', '.join(p.certificate_names)})")
    return None


def _explain_abort(r: ClientReport, p: ServerProfile, trace: Any) -> None:
    alert, offer = r.alert_received, r.offer
    meaning = ALERT_MEANING.get(alert or "", "a reason we do not know")
    after = _abort_point(trace, alert)
    head = (f"the client sent {alert} after our {after} ({meaning})" if after
            else f"the client sent {alert} ({meaning})")
    if offer is None:
        r.code, r.explanation = None, head
        return
    if p.problem and p.client_decides:
        refuses = {"Certificate": "it refuses this chain",
                   "CertificateVerify": "it refuses our signature"}.get(after, "it refuses our answer")
        r.code = p.problem_code
        r.explanation = f"{head}: {refuses}; with this scenario, because {p.problem}"
        return
    chosen = _chosen_version(trace)
    if alert == "protocol_version":
        r.code = "protocol-version-mismatch"
        r.explanation = f"{head}; {_why_version(offer, p)}"
        return
    if chosen in ("TLS 1.0", "TLS 1.1") and "ServerKeyExchange" in _sent_names(trace):
        r.code = "protocol-version-mismatch"
        r.explanation = (f"{head}: the client went along with {chosen} but refused our "
                         f"ServerKeyExchange, signed with MD5+SHA-1 as {chosen} requires "
                         "(OpenSSL 3 refuses that below security level 0); this server speaks "
                         f"{p.versions_text}")
        return
    if _saw_certificate(trace) and alert in CERTIFICATE_ALERTS | {"decrypt_error"}:
        wrong_name = _name_problem(offer, p)
        if wrong_name:
            r.code, r.explanation = "hostname-mismatch", f"{head}: {wrong_name}"
        elif alert == "certificate_expired":
            r.code, r.explanation = "expired", head
        else:
            trust = (f"give the client {p.ca_file}" if p.ca_file else
                     "give the client the CA certificate")
            r.code = "untrusted-root"
            r.explanation = (f"{head}: it does not trust the CA that issued this certificate "
                             f"({trust})")
        return
    # an alert this scenario does not explain: say what it means, guess no cause
    r.code = _GENERIC_CODES.get(alert or "")
    r.explanation = head


def _explain_close(r: ClientReport, p: ServerProfile, trace: Any) -> None:
    offer = r.offer
    if offer is None:
        if "not a TLS record" in (r.error or ""):
            _explain_no_hello(r)
            return
        r.code = None
        r.explanation = ("the client closed the connection without sending a ClientHello "
                         "(a port check, or a client that gave up)")
        return
    after = _last_sent(trace)
    head = (f"the client closed the connection after our {after}, without an alert"
            if after else "the client closed the connection without an alert")
    if p.problem and p.client_decides:
        r.code = p.problem_code
        r.explanation = (f"{head}: most likely it refused our answer; with this scenario, "
                         f"because {p.problem}")
    elif _saw_certificate(trace):
        r.code = None
        r.explanation = f"{head}: it may not accept this certificate"
    else:
        r.code = None
        r.explanation = head


# --------------------------------------------------------------------------- the log hook

def _after_handshake(tls: Any, error: BaseException | None) -> str:
    """What the client did once the handshake was complete (see :func:`explain_connection`)."""
    import socket

    if "first_data" in getattr(tls, "timing", {}):
        return "request"
    ce = getattr(tls, "closed_event", None)
    if ce is not None and ce.alert_received and ce.alert_received != "close_notify":
        return f"alert:{ce.alert_received}"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timeout"
    return "hung-up"


class ServerExplainer:
    """The ``log_line`` hook of a server (:class:`~tlslab.io.blocking.TLSServer`,
    :func:`tlslab.aio.start_server`): one line per connection, the engine's own words
    followed by what the client offered and why it failed (``client: ... | why: ...``);
    with ``json_log`` (a writable text file) also one JSON object per line.

    When the server's certificate is the problem (a certificate scenario), a completed
    handshake proves little: a client may check the certificate afterwards and hang up
    (curl checks the host name that way).  Then the line for a completed handshake waits
    until the page handler is done: wrap the handler with :meth:`page_handler`.

    The last ``keep`` :class:`ClientReport` objects stay in :attr:`reports`.
    """

    def __init__(self, config: Any, profile: ServerProfile | None = None, *,
                 json_log: Any = None, keep: int = 256) -> None:
        import collections
        import threading

        self.config = config
        self.profile = profile or ServerProfile.from_config(config)
        self.json_log = json_log
        self.defer_success = bool(self.profile.problem and self.profile.client_decides)
        self.reports: "collections.deque[ClientReport]" = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def __call__(self, peer: str, tls: Any, error: Any = None) -> str | None:
        if error is None and self.defer_success:
            return None  # page_handler logs it once the client has shown what it does
        return self.line(peer, tls, error)

    def line(self, peer: str, tls: Any, error: Any = None, after: str | None = None) -> str:
        """Explain one connection: record the report, write its JSON, return the line."""
        from ..io.blocking import failure_log_line, handshake_log_line

        if error is not None:
            # the offer is in the line already: drop the engine's long "client offers ..."
            base = _CLIENT_OFFERS.sub("", failure_log_line(error, peer, self.config))
            trace, negotiated = error.trace, error.negotiated
        else:
            base = handshake_log_line(tls, peer)
            trace, negotiated = tls.trace, tls.negotiated
        report = explain_connection(peer, trace, error=error, negotiated=negotiated,
                                    profile=self.profile, after=after)
        with self._lock:
            self.reports.append(report)
            if self.json_log is not None:
                import json
                try:
                    self.json_log.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
                    self.json_log.flush()
                except (OSError, ValueError):  # a full disk, a closed file: keep serving
                    self.json_log = None
        return f"{base} | {report.line()}"

    def page_handler(self, handler: Any, log: Any) -> Any:
        """``handler`` (e.g. the HTTP page), followed by the deferred line in ``log``."""
        if not self.defer_success:
            return handler

        def handle(tls: Any) -> None:
            from ..io.blocking import format_peer
            error = None
            try:
                handler(tls)
            except Exception as e:  # the line below says what happened
                error = e
            log(self.line(format_peer(tls.peer), tls, None, after=_after_handshake(tls, error)))

        return handle

    def async_page_handler(self, handler: Any, log: Any) -> Any:
        """:meth:`page_handler` for an asyncio server
        (:class:`~tlslab.io.aio_server.AsyncTLSServer`): ``await handler(stream)``, followed
        by the deferred line in ``log``."""
        if not self.defer_success:
            return handler

        async def handle(tls: Any) -> None:
            from ..io.blocking import format_peer
            error = None
            try:
                await handler(tls)
            except Exception as e:  # the line below says what happened
                error = e
            log(self.line(format_peer(tls.peer), tls, None, after=_after_handshake(tls, error)))

        return handle


_CLIENT_OFFERS = re.compile(r": client offers .*?(?= \((?:sent|received) alert |$)")
