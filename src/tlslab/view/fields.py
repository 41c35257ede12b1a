"""Messages field by field: the key fields of each message (for the one-line view and JSON),
and every field of the raw bytes from the trace's field spans (offset, length prefix,
raw hex, decoded value, one-line explanation), with long values folded."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import (ascii_or_hex, ext_value, message_of, name_of, rfc_name, short_list,
                     value_text, version_name)
from .i18n import Texts, texts

__all__ = ["message_details", "details_line", "client_offer", "FieldRow", "field_rows",
           "describe_der", "leaf_value", "FOLD_AT", "FOLD_SHOW"]

#: leaf values longer than this many bytes are folded (an ML-KEM share is 1,184 bytes) ...
FOLD_AT = 64
#: ... to this many bytes and a line saying how many more there are
FOLD_SHOW = 32


def describe_der(der: bytes) -> dict:
    try:
        from cryptography import x509
        from ..proto.certificates import describe_certificate
        return describe_certificate(x509.load_der_x509_certificate(der))
    except Exception as e:  # a broken certificate must not break the view
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return {"error": f"not parsable as X.509: {first}", "length": len(der)}


# --------------------------------------------------------------------------- key fields

def message_details(entry) -> dict[str, Any]:
    """The key fields of one message entry, as a small JSON-able dict.

    Unknown or unparsable messages give ``{}`` (or ``{"error": ...}``), never an exception.
    """
    try:
        msg = message_of(entry)
        if msg is None:
            return {}
        return _details(entry.name, msg)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _details(name: str, msg) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name == "ClientHello":
        sni = ext_value(msg, "server_name")
        if sni is not None:
            d["sni"] = ", ".join(ascii_or_hex(s.host_name) for s in sni.server_name_list)
        sv = ext_value(msg, "supported_versions")
        d["versions"] = ([version_name(v) for v in sv.versions] if sv is not None
                         else [version_name(msg.legacy_version)])
        d["cipher_suites"] = [name_of("CipherSuite", c) for c in msg.cipher_suites or []]
        groups = ext_value(msg, "supported_groups")
        if groups is not None:
            d["groups"] = [name_of("NamedGroup", g) for g in groups.named_group_list]
        ks = ext_value(msg, "key_share")
        if ks is not None:
            d["key_shares"] = [name_of("NamedGroup", s.group) for s in ks.client_shares]
        sa = ext_value(msg, "signature_algorithms")
        if sa is not None:
            d["signature_algorithms"] = [name_of("SignatureScheme", s)
                                         for s in sa.supported_signature_algorithms]
        alpn = ext_value(msg, "application_layer_protocol_negotiation")
        if alpn is not None:
            d["alpn"] = [ascii_or_hex(p) for p in alpn.protocol_name_list]
        if ext_value(msg, "cookie") is not None:
            d["cookie"] = True
        if ext_value(msg, "pre_shared_key") is not None:
            d["psk"] = True
        if ext_value(msg, "early_data") is not None:
            d["early_data"] = True
        d["extensions"] = [e.name for e in msg.extensions or []]
    elif name in ("ServerHello", "HelloRetryRequest"):
        sv = ext_value(msg, "supported_versions")
        d["version"] = version_name(sv.selected_version) if sv is not None else version_name(msg.legacy_version)
        d["cipher_suite"] = name_of("CipherSuite", msg.cipher_suite)
        ks = ext_value(msg, "key_share")
        if ks is not None:
            if hasattr(ks, "selected_group"):
                d["selected_group"] = name_of("NamedGroup", ks.selected_group)
            else:
                d["group"] = name_of("NamedGroup", ks.server_share.group)
        if ext_value(msg, "cookie") is not None:
            d["cookie"] = True
        if ext_value(msg, "pre_shared_key") is not None:
            d["psk"] = True
        d["extensions"] = [e.name for e in msg.extensions or []]
    elif name == "EncryptedExtensions":
        d["extensions"] = [e.name for e in msg.extensions or []]
        alpn = ext_value(msg, "application_layer_protocol_negotiation")
        if alpn is not None:
            d["alpn"] = ", ".join(ascii_or_hex(p) for p in alpn.protocol_name_list)
        if ext_value(msg, "early_data") is not None:
            d["early_data"] = True
    elif name == "Certificate":
        d["certificates"] = [describe_der(c.cert_data) for c in msg.certificate_list or []]
    elif name == "CertificateRequest":
        sa = ext_value(msg, "signature_algorithms")
        if sa is not None:
            d["signature_algorithms"] = [name_of("SignatureScheme", s)
                                         for s in sa.supported_signature_algorithms]
        d["extensions"] = [e.name for e in msg.extensions or []]
    elif name == "Certificate12":
        d["certificates"] = [describe_der(der) for der in msg.certificate_list or []]
    elif name == "ServerKeyExchange":
        d.update(_ske_details(bytes(msg.body or b"")))
    elif name == "ClientKeyExchange":
        d["length"] = len(msg.body or b"")
    elif name == "NewSessionTicket12":
        d["lifetime"] = msg.ticket_lifetime_hint
        d["ticket_length"] = len(msg.ticket or b"")
    elif name in ("CertificateVerify", "CertificateVerify12"):
        d["scheme"] = name_of("SignatureScheme", msg.algorithm)
        d["signature_length"] = len(msg.signature or b"")
    elif name == "Finished":
        d["verify_data_length"] = len(msg.verify_data or b"")
    elif name == "NewSessionTicket":
        d["lifetime"] = msg.ticket_lifetime
        d["ticket_length"] = len(msg.ticket or b"")
        ed = ext_value(msg, "early_data")
        d["max_early_data_size"] = int(getattr(ed, "max_early_data_size", 0) or 0) if ed is not None else 0
    elif name == "KeyUpdate":
        d["request_update"] = bool(msg.request_update)
    return d


def _ske_details(body: bytes) -> dict:
    """RFC 8422 §5.4 ServerECDHParams (named_curve) + signature, best effort."""
    if len(body) < 4 or body[0] != 3:
        return {"length": len(body)}
    out = {"group": name_of("NamedGroup", int.from_bytes(body[1:3], "big"))}
    end = 4 + body[3]
    if len(body) >= end + 2:
        out["scheme"] = name_of("SignatureScheme", int.from_bytes(body[end:end + 2], "big"))
    return out


def details_line(name: str, d: dict) -> str:
    """Human one-liner (certificates: one line per certificate).  Never a Python repr."""
    if not d:
        return ""
    if "error" in d and len(d) == 1:
        return f"(could not decode: {d['error']})"
    parts: list[str] = []
    name = rfc_name(name)
    if name == "ClientHello":
        if "sni" in d:
            parts.append(f"SNI {d['sni']}")
        parts.append("versions " + ", ".join(d.get("versions", [])))
        suites = d.get("cipher_suites", [])
        parts.append(f"{len(suites)} suites (first {suites[0]})" if suites else "no suites")
        if "groups" in d:
            parts.append("groups " + short_list(d["groups"]))
        if "key_shares" in d:
            parts.append("key share " + ", ".join(d["key_shares"]))
        if "alpn" in d:
            parts.append("ALPN " + ", ".join(d["alpn"]))
        if d.get("psk"):
            parts.append("ticket offered (PSK)")
        if d.get("early_data"):
            parts.append("0-RTT data follows")
        if d.get("cookie"):
            parts.append("cookie")
    elif name in ("ServerHello", "HelloRetryRequest"):
        parts.append(d.get("version", "?"))
        parts.append(d.get("cipher_suite", "?"))
        if "group" in d:
            parts.append(d["group"])
        if "selected_group" in d:
            parts.append(f"retry with group {d['selected_group']}")
        if d.get("psk"):
            parts.append("ticket accepted (PSK)")
        if d.get("cookie"):
            parts.append("cookie")
    elif name == "EncryptedExtensions":
        parts.append("extensions: " + (", ".join(d.get("extensions", [])) or "none"))
        if "alpn" in d:
            parts.append(f"ALPN {d['alpn']}")
        if d.get("early_data"):
            parts.append("0-RTT data accepted")
    elif name == "Certificate":
        lines = []
        for i, c in enumerate(d.get("certificates", [])):
            if "error" in c:
                lines.append(f"[{i}] {c['error']}")
                continue
            san = short_list(c.get("san") or [], 3) or "no SAN"
            lines.append(f"[{i}] {c.get('subject')}  issuer {c.get('issuer')}  SAN {san}  "
                         f"expires {str(c.get('not_after', '?'))[:10]}  {c.get('key', '')}")
        return "\n".join(lines) or "empty"
    elif name == "CertificateVerify":
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
    elif name == "NewSessionTicket":
        parts.append(f"lifetime {d.get('lifetime')} s, ticket {d.get('ticket_length')} bytes")
        if d.get("max_early_data_size"):
            parts.append(f"allows {d['max_early_data_size']} bytes of 0-RTT data")
        elif "max_early_data_size" in d:
            parts.append("no 0-RTT")
    elif name == "KeyUpdate":
        parts.append("update_requested" if d.get("request_update") else "update_not_requested")
    return "; ".join(p for p in parts if p)


def client_offer(trace) -> dict:
    """What the client offered in its (last) ClientHello: for pages and reports."""
    offer: dict = {}
    for e in getattr(trace, "entries", None) or []:
        if e.kind == "message" and e.name == "ClientHello":
            offer = message_details(e)
    return offer


# --------------------------------------------------------------------------- every field

def leaf_value(value: Any, chunk: bytes) -> str:
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
        if value == "" and not any(chunk):
            return "(empty)"
    if isinstance(value, (list, tuple)) and not value and not any(chunk):
        return "(empty)"
    return value_text(value)


def _prefix_len(value: Any, chunk: bytes) -> int:
    """How many leading bytes of a leaf are its length prefix (opaque<..>, RFC 8446 §3.4)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    if isinstance(value, str) and value and len(value) % 2 == 0:
        for k in (1, 2, 3):
            if len(chunk) > k and value == chunk[k:].hex() \
                    and int.from_bytes(chunk[:k], "big") == len(chunk) - k:
                return k
    if (value in ("", b"", [], ()) or value is None) and 1 <= len(chunk) <= 3 and not any(chunk):
        return len(chunk)  # an empty vector: nothing but its zero length
    return 0


@dataclass
class FieldRow:
    offset: int
    length: int
    depth: int
    name: str
    value: str
    data: bytes
    kind: str                 # "container" | "leaf" | "length"
    more: int = 0             # bytes folded away
    explanation: str | None = None
    parent: str | None = None


def field_rows(raw: bytes, spans: list, *, fold: bool = True, lang: str | None = None,
               fold_at: int = FOLD_AT, fold_show: int = FOLD_SHOW) -> list[FieldRow]:
    """Every field of a message, in order, with length prefixes as rows of their own."""
    T = texts(lang)
    out: list[FieldRow] = []
    _rows(raw, spans, 0, out, fold, T, fold_at, fold_show, None)
    return out


def _rows(raw, spans, depth, out, fold, T: Texts, fold_at, fold_show, parent) -> None:
    for s in sorted(spans, key=lambda s: (s.offset, -s.length)):
        children = list(getattr(s, "children", None) or [])
        chunk = raw[s.offset:s.offset + s.length]
        explanation = T.field(s.name)
        if children:
            out.append(FieldRow(s.offset, s.length, depth, s.name, "", b"", "container",
                                explanation=explanation, parent=parent))
            first = min(c.offset for c in children)
            if first > s.offset:  # bytes before the first child: the length prefix
                prefix = raw[s.offset:first]
                out.append(FieldRow(s.offset, len(prefix), depth + 1, "length",
                                    str(int.from_bytes(prefix, "big")), prefix, "length",
                                    parent=s.name))
            _rows(raw, children, depth + 1, out, fold, T, fold_at, fold_show, s.name)
            continue
        k = _prefix_len(s.value, chunk)
        if k and k == len(chunk):
            out.append(FieldRow(s.offset, s.length, depth, s.name, "0 (empty)", chunk, "leaf",
                                explanation=explanation, parent=parent))
            continue
        if k:
            out.append(FieldRow(s.offset, s.length, depth, s.name, "", b"", "container",
                                explanation=explanation, parent=parent))
            out.append(FieldRow(s.offset, k, depth + 1, "length",
                                str(int.from_bytes(chunk[:k], "big")), chunk[:k], "length",
                                parent=s.name))
            body = chunk[k:]
            value = leaf_value(s.value, chunk)
            shown = body if not fold or len(body) <= fold_at else body[:fold_show]
            out.append(FieldRow(s.offset + k, len(body), depth + 1,
                                "value" if not value else "value", value, shown, "leaf",
                                more=len(body) - len(shown), parent=s.name))
            continue
        shown = chunk if not fold or len(chunk) <= fold_at else chunk[:fold_show]
        out.append(FieldRow(s.offset, s.length, depth, s.name, leaf_value(s.value, chunk), shown,
                            "leaf", more=len(chunk) - len(shown), explanation=explanation,
                            parent=parent))
