"""The record layer, read from the trace: which key protected each record and message, and
what a record's bytes are made of (RFC 8446 §5.1-§5.2, RFC 5246 §6.2).

The engine traces every record's 5-byte header (received records, sent handshake records)
and, for the others, the content length and whether it was protected; the ciphertext
itself is kept only when a trace carries the whole record (a capture decoded by
``tlslab decode``).  Everything else here is derived from those facts and the cipher suite.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import TLS12_VERSIONS, entries_of, from_client, perspective, rfc_name

__all__ = ["protection_keys", "RecordParts", "record_parts", "alert_protected", "aead_overhead",
           "is_tls12"]

_CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data",
                  24: "heartbeat"}
_VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2"}


def is_tls12(trace, negotiated: dict | None = None) -> bool:
    n = negotiated or {}
    if n.get("version"):
        return n["version"] in TLS12_VERSIONS
    return any(e.kind == "message" and e.name in ("ServerHelloDone", "ClientKeyExchange",
                                                  "ServerKeyExchange")
               for e in entries_of(trace))


def protection_keys(trace, negotiated: dict | None = None) -> dict[int, str | None]:
    """entry index -> the key that protected it (records, messages and alerts).

    Values: ``"plaintext"``; a secret's name (``server_handshake_traffic_secret``,
    ``client_application_traffic_secret_0``, ``client_early_traffic_secret``, TLS 1.2
    ``client_write_key`` / ``server_write_key``); ``"not sent"`` for messages queued but never
    flushed; ``None`` when the trace does not tell.
    """
    entries = entries_of(trace)
    side = perspective(trace)
    tls12 = is_tls12(trace, negotiated)
    out: dict[int, str | None] = {}
    # per direction of travel ("c" client->server, "s" server->client): the key now in use
    phase = {"c": "plaintext", "s": "plaintext"}
    generation = {"c": 0, "s": 0}
    finished_seen = {"c": False, "s": False}   # Finished went out under the handshake key
    pending: list[int] = []                     # sent messages waiting for their record
    early = False
    last_in: str | None = None

    def key(who: str, protected: bool | None) -> str | None:
        if protected is None:
            return None
        if not protected:
            return "plaintext"
        peer = "client" if who == "c" else "server"
        if tls12:
            return f"{peer}_write_key"
        if phase[who] == "early":
            return "client_early_traffic_secret"
        if phase[who] == "application":
            return f"{peer}_application_traffic_secret_{generation[who]}"
        return f"{peer}_handshake_traffic_secret"

    for i, e in enumerate(entries):
        fc = from_client(e.direction, side)
        who = "c" if fc else "s"
        s = e.summary or {}
        if e.kind == "info" and e.name == "sending 0-RTT early data" and side == "client":
            early = True
            phase["c"] = "early"
        elif e.kind == "secret" and e.name == "write key updated":
            generation["c" if side == "client" else "s"] += 1
        elif e.kind == "secret" and e.name == "read key updated":
            generation["s" if side == "client" else "c"] += 1
        elif e.kind == "record" and fc is not None:
            protected = s.get("protected")
            if e.name == "change_cipher_spec":
                out[i] = "plaintext"
                continue
            names = [entries[j].name for j in pending] if e.direction == "sent" else []
            if protected and not tls12 and phase[who] == "plaintext":
                phase[who] = "handshake"
            if (protected and not tls12 and phase[who] == "early" and e.name == "handshake"
                    and "EndOfEarlyData" not in names):
                phase[who] = "handshake"
            if finished_seen[who] and not tls12 and protected and phase[who] == "handshake":
                phase[who] = "application"
            k = key(who, protected)
            out[i] = k
            if e.direction == "sent":
                for j in pending:
                    out[j] = k
                pending = []
                if "Finished" in names:
                    finished_seen[who] = True
                if "EndOfEarlyData" in names:
                    phase[who] = "handshake"
            else:
                last_in = k
        elif e.kind == "message":
            if e.direction == "received":
                out[i] = last_in
                if e.name == "Finished":
                    finished_seen[who] = True
                if e.name == "EndOfEarlyData":
                    phase[who] = "handshake"
            else:
                pending.append(i)
        elif e.kind == "alert":
            protected = s.get("protected")
            if protected is None and e.direction == "sent":
                protected = alert_protected(entries, i)
            if finished_seen[who] and not tls12 and protected and phase[who] == "handshake":
                phase[who] = "application"
            out[i] = key(who, protected)
    for j in pending:
        out[j] = "not sent"
    return out


def alert_protected(entries: list, index: int) -> bool:
    """An alert's own protection when the trace says it, else that of the last record we
    sent (alerts go out under the current write keys)."""
    s = entries[index].summary or {}
    if "protected" in s:
        return bool(s["protected"])
    for e in reversed(entries[:index]):
        if e.kind == "record" and e.direction == "sent" and e.name != "change_cipher_spec":
            return bool((e.summary or {}).get("protected"))
        if e.kind == "record" and e.direction == "sent" and e.name == "change_cipher_spec":
            if "compatibility" not in str((e.summary or {}).get("note", "")):
                return True  # TLS 1.2: keys switch right after our ChangeCipherSpec
    return False


def aead_overhead(cipher_suite: str | None, tls12: bool) -> dict[str, int]:
    """Bytes a protected record adds: explicit nonce, tag (AEAD) or MAC (CBC)."""
    suite = str(cipher_suite or "")
    tag = 8 if "CCM_8" in suite else 16
    if not tls12:
        return {"nonce": 0, "tag": tag, "mac": 0}
    if "CHACHA20" in suite:
        return {"nonce": 0, "tag": 16, "mac": 0}
    if "GCM" in suite or "CCM" in suite:
        return {"nonce": 8, "tag": tag, "mac": 0}
    mac = 48 if suite.endswith("SHA384") else 32 if suite.endswith("SHA256") else 20
    return {"nonce": 16, "tag": 0, "mac": mac, "cbc": 1}


@dataclass
class RecordParts:
    """One record, taken apart: the header's three fields and what the payload holds."""

    direction: str
    content_type: str                  # the real (inner) content type
    outer_type: str                    # the type in the header
    version: str | None                # legacy_record_version, when the header is known
    length: int | None                 # the header's length field
    header: bytes = b""
    protected: bool = False
    key: str | None = None
    payload: bytes = b""               # the bytes after the header, when the trace has them
    parts: list[tuple[str, int | None]] = field(default_factory=list)  # (what, bytes)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"direction": self.direction, "content_type": self.content_type,
                "outer_content_type": self.outer_type, "legacy_record_version": self.version,
                "length": self.length, "header": self.header.hex() or None,
                "protected": self.protected, "key": self.key,
                "parts": [{"name": n, "length": l} for n, l in self.parts]}


def record_parts(entry, key: str | None, cipher_suite: str | None, tls12: bool) -> RecordParts:
    """Take a record entry (or a sent alert, which has none of its own) apart."""
    s = entry.summary or {}
    raw = bytes(getattr(entry, "raw", b"") or b"")
    inner = str(s.get("content_type") or entry.name)
    protected = bool(s.get("protected"))
    ov = aead_overhead(cipher_suite, tls12)
    header = raw[:5] if len(raw) >= 5 and raw[0] in _CONTENT_TYPES else b""
    payload = raw[5:] if header else b""
    if entry.kind == "alert":
        inner, header, payload = "alert", b"", b""
        content_len = 2
    elif header:
        content_len = None
    elif entry.direction == "sent" and inner == "application_data":
        content_len = s.get("length")      # what the engine traced: the data before protection
    else:
        content_len = None
    length = int.from_bytes(header[3:5], "big") if header else None
    if length is None and content_len is not None:
        length = (content_len + ov["nonce"] + ov["tag"] + (1 if protected and not tls12 else 0)
                  + (ov.get("mac", 0) if protected else 0)) if protected else content_len
        if protected and ov.get("cbc"):
            length = None                  # padding unknown
    if length is None and "length" in s and entry.kind == "record":
        length = int(s["length"])
    outer = inner
    if protected and not tls12:
        outer = "application_data"          # RFC 8446 §5.2: the header always says 23
    if header:
        outer = _CONTENT_TYPES.get(header[0], str(header[0]))
    version = _VERSIONS.get(int.from_bytes(header[1:3], "big")) if header else \
        ("TLS 1.2" if not tls12 or entry.kind != "record" else None)
    rp = RecordParts(entry.direction, inner, outer, version, length, header, protected, key, payload)
    if entry.name == "change_cipher_spec":
        rp.parts = [("change_cipher_spec", 1)]
        return rp
    if not protected:
        rp.parts = [("content", length)]
        return rp
    if tls12:
        if ov.get("cbc"):
            rp.parts = [("IV", ov["nonce"]), ("content", content_len), ("MAC", ov["mac"]),
                        ("padding", None)]
        else:
            body = None if length is None else length - ov["nonce"] - ov["tag"]
            rp.parts = ([("explicit nonce", ov["nonce"])] if ov["nonce"] else []) + \
                [("ciphertext", body), ("AEAD tag", ov["tag"])]
        return rp
    body = None if length is None else length - ov["tag"] - 1
    rp.parts = [("ciphertext of the content", body), ("ciphertext of the inner content type", 1),
                ("AEAD tag", ov["tag"])]
    return rp
