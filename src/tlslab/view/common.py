"""Small helpers every view shares: terminal-safe text, whose trace it is, times, names.

Everything in ``tlslab.view`` reads only the engine's trace (entries, their raw bytes, field
spans and the parsed messages attached to them) and the engine's public name tables.
"""
from __future__ import annotations

import datetime
import enum
import re
import unicodedata
from typing import Any

from rich.text import Text

__all__ = ["safe_text", "perspective", "display_name", "rfc_name", "jsonable", "value_text",
           "hex_lines", "short_list", "level_name", "TLS12_VERSIONS"]

TLS12_VERSIONS = ("TLS 1.2", "TLS 1.1", "TLS 1.0", "SSL 3.0")

_TLS_VERSIONS = {"TLSv1_3": "TLS 1.3", "TLSv1_2": "TLS 1.2", "TLSv1_1": "TLS 1.1",
                 "TLSv1_0": "TLS 1.0", "SSLv3": "SSL 3.0"}

#: the engine's message class names that differ from the RFC's message name (TLS 1.2 and
#: older have their own layouts of the same messages)
_RFC_NAMES = {"Certificate12": "Certificate", "CertificateRequest12": "CertificateRequest",
              "CertificateRequest11": "CertificateRequest", "CertificateVerify12": "CertificateVerify",
              "CertificateVerify11": "CertificateVerify", "NewSessionTicket12": "NewSessionTicket"}

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


def styled(value: Any, style: str = "") -> Text:
    """A rich Text (never markup) of ``value``, made safe for the terminal."""
    return Text(safe_text(value), style=style)


def rfc_name(name: str) -> str:
    """The RFC's name of a handshake message (``Certificate12`` is a ``Certificate``)."""
    return _RFC_NAMES.get(name, name)


def display_name(entry) -> str:
    return rfc_name(str(getattr(entry, "name", "")))


def perspective(trace) -> str:
    """"client" or "server": whose trace this is (who *sent* the first ClientHello)."""
    for e in getattr(trace, "entries", None) or []:
        if e.kind == "message" and e.name == "ClientHello":
            return "client" if e.direction == "sent" else "server"
    for e in getattr(trace, "entries", None) or []:
        if e.kind == "message":
            # a server always speaks second; a client's first message is a ClientHello
            return "server" if e.direction == "received" else "client"
    return "client"


def entries_of(trace) -> list:
    return list(getattr(trace, "entries", None) or [])


def arrow(direction: str, side: str) -> str:
    if direction == "local":
        return "  ·  "
    from_client = (direction == "sent") == (side == "client")
    return "C → S" if from_client else "C ← S"


def from_client(direction: str, side: str) -> bool | None:
    if direction not in ("sent", "received"):
        return None
    return (direction == "sent") == (side == "client")


def t0_of(trace) -> float:
    entries = entries_of(trace)
    return entries[0].time if entries else 0.0


def ms_of(entry, t0: float) -> float:
    try:
        return round((entry.time - t0) * 1000, 3)
    except TypeError:
        return 0.0


def name_of(enum_name: str, value: Any) -> str:
    try:
        from ..proto import names
        return names.name_of(getattr(names, enum_name), int(value))
    except Exception:
        return str(value)


def version_name(value: Any) -> str:
    name = name_of("ProtocolVersion", value)
    return _TLS_VERSIONS.get(name, name)


def ascii_or_hex(b: Any) -> str:
    if isinstance(b, (bytes, bytearray)):
        try:
            return b.decode("ascii")
        except UnicodeDecodeError:
            return b.hex()
    return str(b)


def short_list(items: list[str], limit: int = 4) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … (+{len(items) - limit})"


def level_name(level: Any) -> str:
    try:
        return {1: "warning", 2: "fatal"}.get(int(level), str(level))
    except (TypeError, ValueError):
        return str(level)


def hex_lines(data: bytes, width: int = 16) -> list[str]:
    return [" ".join(f"{b:02x}" for b in data[i:i + width]) for i in range(0, len(data), width)]


def plain(v: Any) -> Any:
    """A value as a person reads it: enum members by name, booleans as yes/no, None as —."""
    if isinstance(v, enum.Enum):
        return _TLS_VERSIONS.get(v.name, v.name)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "—"
    return v


def value_text(v: Any, limit: int = 80) -> str:
    """A value in one line for people: never a Python repr (no ``None``, ``{'a': 1}``)."""
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).hex()
    elif isinstance(v, dict):
        v = ", ".join(f"{k} {value_text(x, limit)}" for k, x in v.items())
    elif isinstance(v, (list, tuple, set, frozenset)):
        v = ", ".join(value_text(x, limit) for x in v)
    elif isinstance(v, str):
        v = _TLS_VERSIONS.get(v, v)
    else:
        v = plain(v)
    text = safe_text(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def jsonable(v: Any, depth: int = 0) -> Any:
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
        return {str(k): jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x, depth + 1) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if hasattr(v, "summary") and callable(v.summary):
        try:
            return jsonable(v.summary(), depth + 1)
        except Exception:
            pass
    return str(v)


def message_of(entry):
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


def ext_value(msg, ext_type_name: str):
    try:
        from ..proto.names import ExtensionType
        return msg.ext_value(getattr(ExtensionType, ext_type_name))
    except Exception:
        return None
