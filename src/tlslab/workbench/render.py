"""Rendering a handshake :class:`~tlslab.proto.trace.Trace` for people and machines.

* :func:`render_sequence` — the default view: one line per handshake message with
  its direction, time offset and key fields, then a summary panel.
* :func:`render_bytes` — ``--trace``: every message as a hex dump, each field
  labelled from the trace's field spans (nested for extensions).
* :func:`to_json` — the same information as a JSON-serialisable dict.

Everything here reads only the trace (entries, their raw bytes, field spans and
the parsed message objects the engine attached).  Traces of failed handshakes are
partial: every function tolerates missing, unknown or unparsable messages.
"""
from __future__ import annotations

import datetime
import enum
import re
import unicodedata
from typing import Any, Iterable

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["perspective", "message_details", "render_sequence", "render_bytes", "to_json",
           "client_offer", "EXPLANATIONS", "explain_lines", "connection_rows", "flights",
           "handshake_profile", "render_comparison", "client_certificate_subject", "safe_text"]

#: what each step does, for newcomers (``tlslab demo``)
EXPLANATIONS: dict[str, str] = {
    "ClientHello": "The client proposes: TLS versions, cipher suites, key-exchange groups "
                   "with a key share (its half of the Diffie-Hellman exchange), signature "
                   "algorithms, the server name (SNI) and application protocols (ALPN). "
                   "Sent in the clear.",
    "HelloRetryRequest": "The server asks the client to try again (here with a cookie and/or "
                         "a key share for another group); the client sends a second ClientHello.",
    "ServerHello": "The server picks one of each: version, cipher suite and group, and sends "
                   "its key share. Both sides now compute the same shared secret and derive "
                   "the handshake traffic keys: everything after this is encrypted.",
    "EncryptedExtensions": "The server's other answers (ALPN, SNI acknowledged, ...), "
                           "protected with the server handshake traffic key.",
    "CertificateRequest": "The server asks the client for a certificate (mutual TLS).",
    "Certificate": "The server's certificate chain. The client checks it chains to a CA it "
                   "trusts, is valid now, and names the host it wanted.",
    "CertificateVerify": "A signature, with the certificate's private key, over a hash of "
                         "everything so far: proves the server holds that key and that "
                         "nobody altered the handshake.",
    "Finished": "An HMAC over the whole handshake with a key from the handshake secret: "
                "each side proves it saw the same conversation. After the server's Finished "
                "the application traffic keys are derived; after the client's, data flows "
                "under them.",
    "NewSessionTicket": "After the handshake, a ticket the client may use to resume later "
                        "(protected with the application traffic key).",
    "KeyUpdate": "One side moves to the next application traffic key.",
}

_TLS_VERSIONS = {"TLSv1_3": "TLS 1.3", "TLSv1_2": "TLS 1.2", "TLSv1_1": "TLS 1.1",
                 "TLSv1_0": "TLS 1.0", "SSLv3": "SSL 3.0"}


# --------------------------------------------------------------------------- helpers

#: characters worth a closer look: everything outside printable ASCII, newline and tab
_SUSPECT = re.compile(r"[^\x20-\x7e\n\t]")


def _escape_char(m: "re.Match[str]") -> str:
    c = m.group()
    if unicodedata.category(c)[0] != "C":
        return c
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def safe_text(value: Any) -> str:
    r"""``value`` as text that is safe to print on a terminal.

    Peer- and user-supplied strings (an HTTP body, certificate names, SNI, ALPN, error
    details) may hold escape sequences that would recolour, clear or retitle the terminal,
    or write to the clipboard (OSC 52).  Every character of Unicode category C (controls,
    format characters, surrogates, private use, unassigned) other than ``\n`` and ``\t``
    becomes a visible ``\xNN`` (``\uNNNN``) escape.
    """
    return _SUSPECT.sub(_escape_char, str(value))


def _t(value: Any, style: str = "") -> Text:
    """A rich Text (never markup) of ``value``, made safe for the terminal."""
    return Text(safe_text(value), style=style)


def perspective(trace) -> str:
    """"client" or "server": whose trace this is (who *sent* the first ClientHello)."""
    for e in getattr(trace, "entries", []):
        if e.kind == "message" and e.name == "ClientHello":
            return "client" if e.direction == "sent" else "server"
    for e in getattr(trace, "entries", []):
        if e.kind == "message":
            # a server always speaks second; a client's first message is a ClientHello
            return "server" if e.direction == "received" else "client"
    return "client"


def _arrow(direction: str, side: str) -> str:
    if direction == "local":
        return "  ·  "
    from_client = (direction == "sent") == (side == "client")
    return "C → S" if from_client else "C ← S"


def _t0(trace) -> float:
    entries = getattr(trace, "entries", [])
    return entries[0].time if entries else 0.0


def _ms(entry, t0: float) -> float:
    try:
        return round((entry.time - t0) * 1000, 3)
    except TypeError:
        return 0.0


def _name_of(enum_name: str, value: Any) -> str:
    try:
        from ..proto import names
        return names.name_of(getattr(names, enum_name), int(value))
    except Exception:
        return str(value)


def _version(value: Any) -> str:
    name = _name_of("ProtocolVersion", value)
    return _TLS_VERSIONS.get(name, name)


def _text(b: Any) -> str:
    if isinstance(b, (bytes, bytearray)):
        try:
            return b.decode("ascii")
        except UnicodeDecodeError:
            return b.hex()
    return str(b)


def _message_of(entry):
    """The parsed message of a trace entry (re-parsed from raw if needed), or None."""
    msg = getattr(entry, "message", None)
    if msg is not None:
        return msg
    raw = getattr(entry, "raw", b"")
    if not raw:
        return None
    try:
        from ..proto.messages import parse_message
        return parse_message(raw)
    except Exception:
        return None


def _ext_value(msg, ext_type_name: str):
    try:
        from ..proto.names import ExtensionType
        return msg.ext_value(getattr(ExtensionType, ext_type_name))
    except Exception:
        return None


def _short_list(items: list[str], limit: int = 4) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … (+{len(items) - limit})"


def _describe_der(der: bytes) -> dict:
    try:
        from cryptography import x509
        from ..proto.certificates import describe_certificate
        return describe_certificate(x509.load_der_x509_certificate(der))
    except Exception as e:  # a broken certificate must not break the view
        return {"error": f"not parsable as X.509: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                "length": len(der)}


# --------------------------------------------------------------------------- key fields

def message_details(entry) -> dict[str, Any]:
    """The key fields of one message entry, as a small JSON-able dict.

    Unknown or unparsable messages give ``{}`` (or ``{"error": ...}``), never an exception.
    """
    try:
        msg = _message_of(entry)
        if msg is None:
            return {}
        return _details(entry.name, msg)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _details(name: str, msg) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name == "ClientHello":
        sni = _ext_value(msg, "server_name")
        if sni is not None:
            d["sni"] = ", ".join(_text(s.host_name) for s in sni.server_name_list)
        sv = _ext_value(msg, "supported_versions")
        d["versions"] = ([_version(v) for v in sv.versions] if sv is not None
                         else [_version(msg.legacy_version)])
        d["cipher_suites"] = [_name_of("CipherSuite", c) for c in msg.cipher_suites or []]
        groups = _ext_value(msg, "supported_groups")
        if groups is not None:
            d["groups"] = [_name_of("NamedGroup", g) for g in groups.named_group_list]
        ks = _ext_value(msg, "key_share")
        if ks is not None:
            d["key_shares"] = [_name_of("NamedGroup", s.group) for s in ks.client_shares]
        sa = _ext_value(msg, "signature_algorithms")
        if sa is not None:
            d["signature_algorithms"] = [_name_of("SignatureScheme", s)
                                         for s in sa.supported_signature_algorithms]
        alpn = _ext_value(msg, "application_layer_protocol_negotiation")
        if alpn is not None:
            d["alpn"] = [_text(p) for p in alpn.protocol_name_list]
        if _ext_value(msg, "cookie") is not None:
            d["cookie"] = True
        d["extensions"] = [e.name for e in msg.extensions or []]
    elif name in ("ServerHello", "HelloRetryRequest"):
        sv = _ext_value(msg, "supported_versions")
        d["version"] = _version(sv.selected_version) if sv is not None else _version(msg.legacy_version)
        d["cipher_suite"] = _name_of("CipherSuite", msg.cipher_suite)
        ks = _ext_value(msg, "key_share")
        if ks is not None:
            if hasattr(ks, "selected_group"):
                d["selected_group"] = _name_of("NamedGroup", ks.selected_group)
            else:
                d["group"] = _name_of("NamedGroup", ks.server_share.group)
        if _ext_value(msg, "cookie") is not None:
            d["cookie"] = True
        d["extensions"] = [e.name for e in msg.extensions or []]
    elif name == "EncryptedExtensions":
        d["extensions"] = [e.name for e in msg.extensions or []]
        alpn = _ext_value(msg, "application_layer_protocol_negotiation")
        if alpn is not None:
            d["alpn"] = ", ".join(_text(p) for p in alpn.protocol_name_list)
    elif name == "Certificate":
        d["certificates"] = [_describe_der(c.cert_data) for c in msg.certificate_list or []]
    elif name == "CertificateRequest":
        sa = _ext_value(msg, "signature_algorithms")
        if sa is not None:
            d["signature_algorithms"] = [_name_of("SignatureScheme", s)
                                         for s in sa.supported_signature_algorithms]
        d["extensions"] = [e.name for e in msg.extensions or []]
    elif name == "Certificate12":
        d["certificates"] = [_describe_der(der) for der in msg.certificate_list or []]
    elif name == "ServerKeyExchange":
        d.update(_ske_details(bytes(msg.body or b"")))
    elif name == "ClientKeyExchange":
        d["length"] = len(msg.body or b"")
    elif name == "NewSessionTicket12":
        d["lifetime"] = msg.ticket_lifetime_hint
        d["ticket_length"] = len(msg.ticket or b"")
    elif name in ("CertificateVerify", "CertificateVerify12"):
        d["scheme"] = _name_of("SignatureScheme", msg.algorithm)
        d["signature_length"] = len(msg.signature or b"")
    elif name == "Finished":
        d["verify_data_length"] = len(msg.verify_data or b"")
    elif name == "NewSessionTicket":
        d["lifetime"] = msg.ticket_lifetime
        d["ticket_length"] = len(msg.ticket or b"")
    elif name == "KeyUpdate":
        d["request_update"] = bool(msg.request_update)
    return d


def _ske_details(body: bytes) -> dict:
    """RFC 8422 §5.4 ServerECDHParams (named_curve) + signature, best effort."""
    if len(body) < 4 or body[0] != 3:
        return {"length": len(body)}
    out = {"group": _name_of("NamedGroup", int.from_bytes(body[1:3], "big"))}
    end = 4 + body[3]
    if len(body) >= end + 2:
        out["scheme"] = _name_of("SignatureScheme", int.from_bytes(body[end:end + 2], "big"))
    return out


def _details_line(name: str, d: dict) -> str:
    """Human one-liner (certificates: one line per certificate)."""
    if not d:
        return ""
    if "error" in d and len(d) == 1:
        return f"(could not decode: {d['error']})"
    parts: list[str] = []
    if name == "ClientHello":
        if "sni" in d:
            parts.append(f"SNI {d['sni']}")
        parts.append("versions " + ", ".join(d.get("versions", [])))
        suites = d.get("cipher_suites", [])
        parts.append(f"{len(suites)} suites (first {suites[0]})" if suites else "no suites")
        if "groups" in d:
            parts.append("groups " + _short_list(d["groups"]))
        if "key_shares" in d:
            parts.append("key share " + ", ".join(d["key_shares"]))
        if "alpn" in d:
            parts.append("ALPN " + ", ".join(d["alpn"]))
        if d.get("cookie"):
            parts.append("cookie")
    elif name in ("ServerHello", "HelloRetryRequest"):
        parts.append(d.get("version", "?"))
        parts.append(d.get("cipher_suite", "?"))
        if "group" in d:
            parts.append(d["group"])
        if "selected_group" in d:
            parts.append(f"retry with group {d['selected_group']}")
        if d.get("cookie"):
            parts.append("cookie")
    elif name == "EncryptedExtensions":
        parts.append("extensions: " + (", ".join(d.get("extensions", [])) or "none"))
        if "alpn" in d:
            parts.append(f"ALPN {d['alpn']}")
    elif name in ("Certificate", "Certificate12"):
        lines = []
        for i, c in enumerate(d.get("certificates", [])):
            if "error" in c:
                lines.append(f"[{i}] {c['error']}")
                continue
            san = _short_list(c.get("san") or [], 3) or "no SAN"
            lines.append(f"[{i}] {c.get('subject')}  issuer {c.get('issuer')}  SAN {san}  "
                         f"expires {c.get('not_after', '?')[:10]}  {c.get('key', '')}")
        return "\n".join(lines) or "empty"
    elif name in ("CertificateVerify", "CertificateVerify12"):
        parts.append(f"{d.get('scheme')} ({d.get('signature_length')}-byte signature)")
    elif name == "ServerKeyExchange":
        parts += [f"group {d['group']}" if "group" in d else f"{d.get('length')} bytes",
                  f"signed with {d['scheme']}" if "scheme" in d else ""]
    elif name == "ClientKeyExchange":
        parts.append(f"{d.get('length')} bytes (the client's key share)")
    elif name == "Finished":
        parts.append(f"verify_data {d.get('verify_data_length')} bytes")
    elif name == "CertificateRequest":
        parts.append(f"{len(d.get('signature_algorithms', []))} signature algorithms")
    elif name in ("NewSessionTicket", "NewSessionTicket12"):
        parts.append(f"lifetime {d.get('lifetime')} s, ticket {d.get('ticket_length')} bytes")
    elif name == "KeyUpdate":
        parts.append("update_requested" if d.get("request_update") else "update_not_requested")
    return "; ".join(p for p in parts if p)


def client_offer(trace) -> dict:
    """What the client offered in its (last) ClientHello: for pages and reports."""
    offer: dict = {}
    for e in getattr(trace, "entries", []):
        if e.kind == "message" and e.name == "ClientHello":
            offer = message_details(e)
    return offer


# --------------------------------------------------------------------------- protection

def _protection_map(entries: list) -> dict[int, bool | None]:
    """index of each message entry -> was the record carrying it protected?

    Received: the record entry comes just before the messages it carried.
    Sent: messages are queued first, then the record that carries them is traced.
    """
    out: dict[int, bool | None] = {}
    last_in: bool | None = None
    pending_out: list[int] = []
    for i, e in enumerate(entries):
        if e.kind == "record" and e.direction == "received" and e.name == "handshake":
            last_in = bool(e.summary.get("protected"))
        elif e.kind == "record" and e.direction == "sent" and e.name == "handshake":
            for j in pending_out:
                out[j] = bool(e.summary.get("protected"))
            pending_out = []
        elif e.kind == "message":
            if e.direction == "received":
                out[i] = last_in
            else:
                pending_out.append(i)
    for j in pending_out:
        out[j] = None  # never flushed (e.g. a flight discarded on failure)
    return out


def _key_for(name: str, direction: str, side: str, protected: bool | None,
             tls12: bool = False) -> str:
    if protected is None:
        return "not sent" if direction == "sent" else ""
    if not protected:
        return "plaintext"
    from_client = (direction == "sent") == (side == "client")
    who = "client" if from_client else "server"
    if tls12:
        return f"{who} write key"
    if name in ("NewSessionTicket", "KeyUpdate"):
        return f"{who} application key"
    return f"{who} handshake key"


# --------------------------------------------------------------------------- (a) sequence

def render_sequence(trace, negotiated: dict | None = None, *, console: Console | None = None,
                    error: Any = None, title: str | None = None, explain: bool = False,
                    show_summary: bool = True, extra: dict | None = None) -> None:
    """Print the readable handshake: one line per message, alerts, then a summary panel.

    ``error`` is a reason string or an exception (e.g. :class:`tlslab.HandshakeError`);
    ``explain`` adds a sentence per message for newcomers; ``extra`` adds rows
    (e.g. timings) to the summary.
    """
    console = console or Console()
    try:
        _render_sequence(trace, negotiated or {}, console, error, title, explain, show_summary,
                         extra or {})
    except Exception as e:  # rendering must never hide the result
        console.print(f"[red](could not render the trace: {type(e).__name__}: "
                      f"{escape(safe_text(e))})[/]")


def _row(console: Console, ms: str, arrow: Text, name: Text, details: Text,
         explanation: str | None = None) -> None:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim", no_wrap=True, width=7)
    grid.add_column(no_wrap=True, width=5)
    grid.add_column(no_wrap=True, width=20)
    grid.add_column(overflow="fold")
    grid.add_row(ms, arrow, name, details)
    if explanation:
        grid.add_row("", "", "", Text(explanation, style="dim italic"))
    console.print(grid)


def _render_sequence(trace, negotiated, console, error, title, explain, show_summary, extra):
    entries = list(getattr(trace, "entries", []))
    side = perspective(trace)
    t0 = _t0(trace)
    prot = _protection_map(entries)
    explained: set[str] = set()
    tls12 = negotiated.get("version") in ("TLS 1.2", "TLS 1.1", "TLS 1.0")
    ccs_text = ("switch to the negotiated keys (RFC 5246 §7.1)" if tls12
                else "compatibility record (RFC 8446 §D.4), ignored")
    if title:
        console.print(_t(title, "bold"))
    console.print(Text(f"{'ms':>7} {'':5} {'message':20} details  [record protection]",
                       style="bold dim"))
    for i, e in enumerate(entries):
        ms = f"{_ms(e, t0):.1f}"
        arrow = _arrow(e.direction, side)
        if e.kind == "message":
            details = _details_line(e.name, message_details(e))
            key = _key_for(e.name, e.direction, side, prot.get(i), tls12)
            style = "cyan" if arrow == "C → S" else "magenta"
            cell = _t(details)
            if key:
                cell.append(f"  [{key}]", style="dim")
            explanation = None
            if explain and e.name not in explained:
                explained.add(e.name)
                explanation = EXPLANATIONS.get(e.name)
            _row(console, ms, Text(arrow, style=style), _t(e.name, "bold " + style), cell,
                 explanation)
        elif e.kind == "record" and e.name == "change_cipher_spec":
            _row(console, ms, Text(arrow, style="dim"), Text("ChangeCipherSpec", style="dim"),
                 Text(f"{ccs_text}  [plaintext]", style="dim"))
        elif e.kind == "alert":
            fatal = e.name not in ("close_notify", "user_canceled")
            style = "bold red" if fatal else "yellow"
            protected = (e.summary.get("protected") if e.direction == "received"
                         else _last_sent_protected(entries, i))
            _row(console, ms, Text(arrow, style=style), Text("Alert", style=style),
                 _t(f"{e.name} ({_level_name(e.summary.get('level'))})"
                    f"  [{'protected' if protected else 'plaintext'}]", style))
        elif e.kind == "error":
            _row(console, ms, Text("  ✗", style="bold red"), Text("error", style="bold red"),
                 _t(e.detail, "red"))
        elif e.kind == "info" and e.name != "handshake complete":
            _row(console, ms, Text("  ·", style="dim"), _t(e.name, "dim"),
                 _t(_info_line(e), "dim"))
    if show_summary:
        console.print(_summary_panel(trace, negotiated, error, side, _app_data_counts(entries), extra))


def _level_name(level: Any) -> str:
    try:
        return {1: "warning", 2: "fatal"}.get(int(level), str(level))
    except (TypeError, ValueError):
        return str(level)


def _last_sent_protected(entries: list, index: int) -> bool:
    """Alerts go out under the current write keys: those of the last record we sent."""
    for e in reversed(entries[:index]):
        if e.kind == "record" and e.direction == "sent" and e.name != "change_cipher_spec":
            return bool((e.summary or {}).get("protected"))
        if e.kind == "record" and e.direction == "sent" and e.name == "change_cipher_spec":
            if "compatibility" not in str((e.summary or {}).get("note", "")):
                return True  # TLS 1.2: keys switch right after our ChangeCipherSpec
    return False


def _info_line(e) -> str:
    s = e.summary or {}
    if "path" in s:
        return "path: " + " → ".join(s["path"])
    if "subjects" in s:
        return f"{len(s['subjects'])} certificate(s)"
    parts = [f"{k} {_value_text(v, 60)}" for k, v in s.items()]
    return "; ".join(parts) or e.detail or ""


def _app_data_counts(entries: list) -> dict:
    out = {"sent": 0, "received": 0}
    for e in entries:
        if e.kind == "record" and e.name == "application_data" and e.direction in out:
            out[e.direction] += 1
    return out


def _error_parts(error: Any) -> tuple[str | None, str | None, str | None]:
    if error is None:
        return None, None, None
    if isinstance(error, str):
        return error, None, None
    return (getattr(error, "reason", None) or str(error), getattr(error, "alert_sent", None),
            getattr(error, "alert_received", None))


def _summary_panel(trace, n: dict, error, side, app, extra) -> Panel:
    reason, alert_sent, alert_received = _error_parts(error)
    entries = list(getattr(trace, "entries", []))
    if reason is None:
        for e in entries:
            if e.kind == "error":
                reason, alert_sent = e.detail, (e.summary or {}).get("alert")
    if reason is None and n.get("version") is None:
        for e in entries:
            if e.kind == "alert" and e.direction == "received" and e.name != "close_notify":
                reason, alert_received = f"peer sent fatal alert {e.name}", e.name
    ok = reason is None and bool(n.get("version"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    status = Text("handshake complete", style="bold green") if ok else \
        Text("handshake failed" if reason else "handshake incomplete", style="bold red")
    grid.add_row("result", status)
    if reason:
        grid.add_row("reason", _t(reason, "red"))
    if alert_sent:
        grid.add_row("alert sent", _t(alert_sent))
    if alert_received:
        grid.add_row("alert received", _t(alert_received))
    for label, key in (("version", "version"), ("cipher suite", "cipher_suite"),
                       ("key exchange", "group"), ("signature", "signature_scheme"),
                       ("ALPN", "alpn_protocol"), ("SNI", "server_name")):
        if n.get(key) or key in ("version", "cipher_suite"):
            grid.add_row(label, _t(n.get(key) or "—"))
    grid.add_row("HelloRetryRequest", "yes" if n.get("hello_retry") else "no")
    for label, value in connection_rows(n, trace, side):
        grid.add_row(label, _t(value))
    offer = client_offer(trace)
    if offer.get("sni") and not n.get("server_name"):
        grid.add_row("SNI sent", _t(offer["sni"]))
    t0 = _t0(trace)
    done = next((e for e in entries if e.kind == "state" and e.name == "CONNECTED"), None)
    if done is not None:
        grid.add_row("handshake time", f"{_ms(done, t0):.1f} ms (first message to CONNECTED)")
    if app["sent"] or app["received"]:
        counts = [f"{app[k]} record(s) {k}" for k in ("sent", "received") if app[k]]
        grid.add_row("application data", ", ".join(counts)
                     + " (protected with the application traffic keys)")
    for k, v in extra.items():
        grid.add_row(_t(k, "bold"), _t(v))
    return Panel(grid, title=f"summary ({side} side)", border_style="green" if ok else "red",
                 expand=False)


def _yes_no(v: Any) -> str:
    return "yes" if v else "no"


def client_certificate_subject(trace, negotiated: dict | None = None) -> str | None:
    """The client certificate's subject: what the client sent, or what the server verified."""
    n = negotiated or {}
    if n.get("client_certificate"):
        return str(n["client_certificate"])
    for e in getattr(trace, "entries", []):
        if e.kind == "info" and e.name == "client certificate verified":
            subject = (e.summary or {}).get("subject")
            if subject:
                return str(subject)
    return None


def connection_rows(n: dict, trace=None, side: str = "client") -> list[tuple[str, str]]:
    """Rows beyond the basics: resumption, 0-RTT, client certificate and, for TLS 1.2 and
    older, extended master secret, secure renegotiation, encrypt-then-MAC; the size of a
    stapled OCSP response."""
    rows: list[tuple[str, str]] = []
    if "resumed" in n:
        rows.append(("resumed", _yes_no(n.get("resumed"))
                     + (" (session resumption: no certificate exchanged)" if n.get("resumed") else "")))
    if n.get("early_data_accepted") is not None:
        rows.append(("0-RTT early data", "accepted" if n["early_data_accepted"]
                     else "rejected (sent again after the handshake)" if side == "client"
                     else "rejected"))
    subject = client_certificate_subject(trace, n) if trace is not None else n.get("client_certificate")
    if subject:
        rows.append(("client certificate", subject))
    if n.get("version") in ("TLS 1.2", "TLS 1.1", "TLS 1.0"):
        rows.append(("extended master secret", _yes_no(n.get("extended_master_secret"))
                     + ("" if n.get("extended_master_secret") else " (RFC 7627: weaker session binding)")))
        rows.append(("secure renegotiation", _yes_no(n.get("secure_renegotiation"))
                     + ("" if n.get("secure_renegotiation") else " (RFC 5746 renegotiation_info missing)")))
        suite = str(n.get("cipher_suite") or "")
        aead = any(t in suite for t in ("GCM", "CHACHA20", "CCM"))
        etm = n.get("encrypt_then_mac")
        rows.append(("encrypt-then-MAC", "n/a (AEAD cipher suite)" if aead and not etm
                     else _yes_no(etm)))
    if side == "client" and n.get("version"):
        ocsp = n.get("ocsp_response")
        status = n.get("ocsp_status") or {}
        text = "none"
        if ocsp:
            text = f"{len(ocsp)} bytes"
            if status:
                text += f", status {status.get('status')}"
                if status.get("next_update"):
                    text += f", valid until {status['next_update']}"
                text += f", signature {status.get('signature', 'not checked')}" if "signature" in status else ""
        rows.append(("stapled OCSP response", text))
    return rows


# --------------------------------------------------------------------------- flights

#: post-handshake messages: not part of a handshake's flights
_POST_HANDSHAKE = {"NewSessionTicket", "KeyUpdate"}


def flights(trace) -> list[dict]:
    """The handshake as flights: consecutive handshake messages in the same direction.

    Each flight is ``{"direction": "C→S" | "C←S", "messages": [...]}``; 0-RTT data sent
    after the ClientHello shows as ``"0-RTT data (N bytes)"`` in the client's first flight.
    TLS 1.3 post-handshake messages (NewSessionTicket, KeyUpdate) are left out.
    """
    side = perspective(trace)
    out: list[dict] = []
    for e in getattr(trace, "entries", []):
        if e.kind == "message" and e.name not in _POST_HANDSHAKE:
            arrow = _arrow(e.direction, side)
            name = e.name
        elif e.kind == "info" and e.name == "sending 0-RTT early data":
            arrow = "C → S" if side == "client" else "C ← S"
            name = f"0-RTT data ({(e.summary or {}).get('bytes', '?')} bytes)"
        else:
            continue
        arrow = arrow.replace(" ", "")
        if out and out[-1]["direction"] == arrow:
            out[-1]["messages"].append(name)
        else:
            out.append({"direction": arrow, "messages": [name]})
    return out


def handshake_profile(trace, negotiated: dict | None = None, timings_ms: dict | None = None,
                      *, label: str | None = None) -> dict:
    """One connection, for comparing handshakes side by side (``connect --reconnect``).

    ``round_trips`` counts the server's flights: each one costs the client a round trip
    before it may send application data (TLS 1.3 full or resumed: 1; TLS 1.2 full: 2;
    HelloRetryRequest: one more).  ``round_trips_before_data`` is 0 when 0-RTT data was
    accepted.
    """
    n = negotiated or {}
    fl = flights(trace)
    c2s = sum(1 for f in fl if f["direction"] == "C→S")
    s2c = len(fl) - c2s
    early = n.get("early_data_accepted")
    kind = label or ("0-RTT" if early else "resumed" if n.get("resumed") else "full")
    if early is False:
        kind += " (0-RTT rejected)"
    t = timings_ms or {}
    return {
        "kind": kind,
        "version": n.get("version"),
        "cipher_suite": n.get("cipher_suite"),
        "group": n.get("group"),
        "resumed": bool(n.get("resumed")),
        "early_data_accepted": early,
        "flights": fl,
        "flights_client_to_server": c2s,
        "flights_server_to_client": s2c,
        "round_trips": s2c,
        "round_trips_before_data": 0 if early else s2c,
        "messages": [m for f in fl for m in f["messages"]],
        "timing_ms": {k: t[k] for k in ("tcp_connect", "handshake", "first_data") if k in t},
    }


def render_comparison(profiles: list[dict], *, console: Console | None = None,
                      title: str = "handshakes side by side") -> None:
    """A table with one column per connection (full, resumed, 0-RTT ...)."""
    console = console or Console()
    table = Table(title=title, title_style="bold", show_lines=True)
    table.add_column("", style="bold", no_wrap=True)
    for i, p in enumerate(profiles):
        table.add_column(_t(f"#{i + 1} {p['kind']}"), overflow="fold")

    def row(label, fn):
        table.add_row(label, *[_t(fn(p)) for p in profiles])

    def ms(key):
        return lambda p: (f"{p['timing_ms'][key]:.1f}" if key in p["timing_ms"] else "—")

    row("resumed", lambda p: "true" if p["resumed"] else "false")
    row("0-RTT data", lambda p: {None: "—", True: "accepted", False: "rejected"}[p["early_data_accepted"]])
    row("version", lambda p: str(p.get("version") or "—"))
    row("flights C→S / C←S", lambda p: f"{p['flights_client_to_server']} / {p['flights_server_to_client']}")
    row("round trips", lambda p: str(p["round_trips"]))
    row("RTTs before app data", lambda p: str(p["round_trips_before_data"]))
    row("messages", lambda p: "\n".join(f"{f['direction']} " + ", ".join(f["messages"])
                                        for f in p["flights"]))
    row("TCP connect ms", ms("tcp_connect"))
    row("handshake ms", ms("handshake"))
    if any("first_data" in p["timing_ms"] for p in profiles):
        row("first response ms", ms("first_data"))
    console.print(table)


# --------------------------------------------------------------------------- (b) bytes

def _hex_lines(data: bytes, width: int = 16) -> list[str]:
    return [" ".join(f"{b:02x}" for b in data[i:i + width]) for i in range(0, len(data), width)]


def _value_text(v: Any, limit: int = 80) -> str:
    if isinstance(v, (bytes, bytearray)):
        v = v.hex()
    if isinstance(v, enum.Enum):
        v = v.name
    text = safe_text(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _leaf_value(value: Any, chunk: bytes) -> str:
    """The value worth printing beside the bytes ('' when it only repeats them)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    if isinstance(value, str):
        for k in (0, 1, 2, 3):
            if len(chunk) > k and value == chunk[k:].hex():
                body = chunk[k:]
                if len(body) >= 2 and all(0x20 <= b < 0x7f for b in body):
                    return '"' + body.decode("ascii") + '"'
                return ""
        if value == "" and not chunk[1:]:
            return "(empty)"
    return _value_text(value)


def _span_rows(raw: bytes, spans: list, depth: int, out: list, max_leaf: int | None) -> None:
    for s in spans:
        indent = "  " * depth
        children = list(getattr(s, "children", None) or [])
        chunk = raw[s.offset:s.offset + s.length]
        if children:
            out.append((s.offset, s.length, indent + s.name, "", True))
            first = min(c.offset for c in children)
            if first > s.offset:  # bytes before the first child: the length prefix
                prefix = raw[s.offset:first]
                out.append((s.offset, len(prefix), indent + "  length",
                            str(int.from_bytes(prefix, "big")), prefix, False))
            _span_rows(raw, children, depth + 1, out, max_leaf)
        else:
            shown = chunk if max_leaf is None else chunk[:max_leaf]
            out.append((s.offset, s.length, indent + s.name, _leaf_value(s.value, chunk), shown,
                        len(chunk) - len(shown)))


def render_bytes(trace, *, console: Console | None = None, max_leaf_bytes: int | None = None) -> None:
    """Print every trace entry in order; messages as labelled hex dumps.

    Columns: offset (within the handshake message, header included), length, field
    name (nested), value, bytes.  Secrets are shown by name and length only.
    """
    console = console or Console()
    entries = list(getattr(trace, "entries", []))
    side = perspective(trace)
    t0 = _t0(trace)
    for e in entries:
        try:
            _render_entry_bytes(e, side, t0, console, max_leaf_bytes)
        except Exception as exc:
            console.print(f"[red](could not render {escape(safe_text(e.name))}: "
                          f"{type(exc).__name__}: {escape(safe_text(exc))})[/]")
            if e.raw:
                console.print("\n".join(_hex_lines(e.raw)), highlight=False)


def _render_entry_bytes(e, side, t0, console, max_leaf):
    ms = f"{_ms(e, t0):8.1f} ms"
    arrow = _arrow(e.direction, side)
    if e.kind == "message":
        console.print(Text.assemble((f"{ms}  {arrow}  ", "dim"), (safe_text(e.name), "bold"),
                                    (f"  ({len(e.raw)} bytes)", "dim")))
        try:
            spans = e.field_spans()
        except Exception as exc:
            spans = []
            console.print(f"  [yellow](no field spans: {escape(safe_text(exc))})[/]")
        if not spans:
            console.print("\n".join("    " + l for l in _hex_lines(e.raw)), highlight=False)
            return
        rows: list = []
        _span_rows(e.raw, spans, 0, rows, max_leaf)
        width = 16 if console.width >= 140 else 8
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False,
                      padding=(0, 1))
        table.add_column("offset", justify="right", style="dim", no_wrap=True, min_width=6)
        table.add_column("len", justify="right", style="dim", no_wrap=True, min_width=4)
        table.add_column("field = value", overflow="fold", ratio=1)
        table.add_column("bytes", style="green", no_wrap=True, min_width=width * 3 - 1)
        for row in rows:
            off, length, label, value, data = row[:5]
            if row[4] is True:  # container
                table.add_row(f"{off:04x}", str(length), _t(label, "bold"), "")
                continue
            more = row[5] if len(row) > 5 else 0
            lines = _hex_lines(data, width)
            if more:
                lines.append(f"… +{more} bytes")
            cell = _t(label)
            if value:
                cell.append(" = ")
                cell.append(safe_text(value), style="cyan")
            table.add_row(f"{off:04x}", str(length), cell, "\n".join(lines))
        console.print(table)
    elif e.kind == "record":
        s = e.summary or {}
        extra = ", protected" if s.get("protected") else ""
        length = f", {s['length']} bytes" if "length" in s else ""
        hdr = f"  header {e.raw[:5].hex(' ')}" if e.raw else ""
        console.print(_t(f"{ms}  {arrow}  record {e.name}{length}{extra}{hdr}", "dim"))
    elif e.kind == "secret":
        length = (e.summary or {}).get("length")
        console.print(Text(f"{ms}    ·    secret {e.name}"
                           + (f" ({length} bytes, value not shown)" if length else ""),
                           style="yellow"))
    elif e.kind == "state":
        console.print(Text(f"{ms}    ·    state {(e.summary or {}).get('from', '?')} → {e.name}",
                           style="blue"))
    elif e.kind == "alert":
        console.print(Text(f"{ms}  {arrow}  alert {e.name} (level "
                           f"{_level_name((e.summary or {}).get('level'))})  {e.raw.hex(' ')}",
                           style="bold red" if e.name != "close_notify" else "yellow"))
    elif e.kind == "error":
        console.print(_t(f"{ms}    ✗    {e.name}: {e.detail}", "bold red"))
    else:
        console.print(_t(f"{ms}    ·    {e.kind} {e.name} {_value_text(e.summary or e.detail, 120)}",
                         "dim"))


# --------------------------------------------------------------------------- (c) JSON

def _jsonable(v: Any, depth: int = 0) -> Any:
    if depth > 40:
        return str(v)
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x, depth + 1) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if hasattr(v, "summary") and callable(v.summary):
        try:
            return _jsonable(v.summary(), depth + 1)
        except Exception:
            pass
    return str(v)


def _span_json(s) -> dict:
    out = {"name": s.name, "offset": s.offset, "length": s.length, "value": _jsonable(s.value)}
    if getattr(s, "children", None):
        out["children"] = [_span_json(c) for c in s.children]
    return out


def to_json(trace, negotiated: dict | None = None, *, error: Any = None,
            peer_certificates: Iterable | None = None, include_fields: bool = True,
            **extra: Any) -> dict:
    """A JSON-serialisable description of the connection.

    Keys: ok, side, negotiated, error (reason/alert_sent/alert_received/code or null),
    messages (direction, name, time_ms, length, raw hex, details, fields), records,
    secrets (names only), states, alerts, peer_certificates, plus ``extra``.
    """
    entries = list(getattr(trace, "entries", []))
    side = perspective(trace)
    t0 = _t0(trace)
    messages, records, secrets, states, alerts, errors = [], [], [], [], [], []
    for e in entries:
        t = _ms(e, t0)
        try:
            if e.kind == "message":
                m = {"direction": e.direction, "name": e.name, "time_ms": t,
                     "length": len(e.raw), "raw": e.raw.hex(), "details": message_details(e)}
                if include_fields:
                    try:
                        m["fields"] = [_span_json(s) for s in e.field_spans()]
                    except Exception as exc:
                        m["fields"] = []
                        m["fields_error"] = str(exc)
                messages.append(m)
            elif e.kind == "record":
                records.append({"direction": e.direction, "content_type": e.name, "time_ms": t,
                                **_jsonable(e.summary or {})})
            elif e.kind == "secret":
                secrets.append({"name": e.name, "time_ms": t,
                                "length": (e.summary or {}).get("length")})
            elif e.kind == "state":
                states.append({"from": (e.summary or {}).get("from"), "to": e.name, "time_ms": t})
            elif e.kind == "alert":
                s = e.summary or {}
                alerts.append({"direction": e.direction, "description": e.name,
                               "level": _jsonable(s.get("level")), "time_ms": t})
            elif e.kind == "error":
                errors.append({"type": e.name, "reason": e.detail,
                               "alert": _jsonable((e.summary or {}).get("alert")), "time_ms": t})
        except Exception as exc:
            errors.append({"type": "RenderError", "reason": f"{e.kind} {e.name}: {exc}"})
    n = dict(negotiated or {})
    reason, alert_sent, alert_received = _error_parts(error)
    err = None
    if reason is not None:
        err = {"reason": reason, "alert_sent": alert_sent, "alert_received": alert_received,
               "code": getattr(error, "code", None) if not isinstance(error, str) else None}
    elif errors:
        err = {"reason": errors[-1]["reason"], "alert_sent": errors[-1]["alert"],
               "alert_received": None, "code": None}
    certs = []
    for c in peer_certificates or []:
        try:
            from ..proto.certificates import describe_certificate
            certs.append(describe_certificate(c))
        except Exception as exc:
            certs.append({"error": str(exc)})
    out = {
        "ok": err is None and bool(n.get("version")),
        "side": side,
        "negotiated": _jsonable(n),
        "error": err,
        "client_offer": client_offer(trace),
        "messages": messages,
        "records": records,
        "secrets": secrets,
        "states": states,
        "alerts": alerts,
        "engine_errors": errors,
        "peer_certificates": certs,
    }
    out.update(_jsonable(extra))
    return out


def explain_lines() -> list[tuple[str, str]]:
    """(message, explanation) pairs in handshake order, for a legend."""
    order = ["ClientHello", "HelloRetryRequest", "ServerHello", "EncryptedExtensions",
             "Certificate", "CertificateVerify", "Finished", "NewSessionTicket"]
    return [(k, EXPLANATIONS[k]) for k in order]
