"""``tlslab decode --json``: a decoded connection as JSON (the keys are a stable contract).

One object per TLS connection::

    {"stream", "client", "server", "version", "cipher_suite", "decrypted",
     "messages": [{"direction", "type", "offset", "length", "fields", ...}],
     "application_data": [{"direction", "length", "data_hex", ...}],
     "problems": [...], ...}

``direction`` is ``"client_to_server"`` or ``"server_to_client"``; ``type`` the RFC name
of the handshake message (``ClientHello``, ``HelloRetryRequest``, ``EncryptedExtensions``,
``ServerKeyExchange``, ...); ``offset`` its position in that direction's TCP byte stream
(for a decrypted message: the position of the record that carried it); ``length`` its
length with the 4-byte handshake header; ``fields`` every field with its offset and
length within the message (from the engine's message descriptions: the same spans the
terminal and HTML views use).  Secrets appear by name only (``keys``), never by value.
"""
from __future__ import annotations

import enum
from typing import Any

from .decoded import CLIENT, DecodedConnection

DIRECTION = {CLIENT: "client_to_server", "server": "server_to_client"}


_PLAIN = (str, bool, type(None), float)


def jsonable(v: Any, depth: int = 0) -> Any:
    """Field values as JSON: bytes as hex, enums by name, anything else as text."""
    t = type(v)
    if t is int or t in _PLAIN:   # the common case first: every field of every message
        return v
    if t is bytes:
        return v.hex()
    if depth > 32:
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
    return str(v)


def span_json(span) -> dict:
    out = {"name": span.name, "offset": span.offset, "length": span.length,
           "value": jsonable(span.value)}
    children = span.children
    if children:
        out["children"] = [span_json(c) for c in children]
    return out


def _fields(m) -> list:
    if m.message is None:
        return []
    try:
        return [span_json(s) for s in m.message.spans]
    except Exception:  # a message the codec parsed but cannot re-span: show it without
        return []


def connection_json(dc: DecodedConnection, *, fields: bool = True) -> dict:
    """The JSON object of one connection (see the module documentation)."""
    t0 = dc.first_time

    def ms(t: float) -> float:
        return round((t - t0) * 1000, 3)

    messages = []
    for m in dc.messages:
        item = {"direction": DIRECTION[m.direction], "type": m.type, "offset": m.offset,
                "length": m.length}
        if fields:
            item["fields"] = _fields(m)
        item.update({"name": m.name, "encrypted": m.protected, "key": m.key,
                     "record_offset": m.record_offset, "time_ms": ms(m.time)})
        if m.error:
            item["error"] = m.error
        messages.append(item)
    app = [{"direction": DIRECTION[a.direction], "length": a.length, "data_hex": a.data.hex(),
            "offset": a.offset, "key": a.key, "early_data": a.early, "truncated": a.truncated,
            "time_ms": ms(a.time)} for a in dc.application_data]
    needed = sorted({u.needs for u in dc.undecrypted.values()})
    return {
        "stream": dc.index,
        "client": dc.client,
        "server": dc.server,
        "version": dc.version,
        "cipher_suite": dc.cipher_suite,
        "decrypted": dc.decrypted,
        "decryption": dc.decryption,
        "handshake_complete": dc.handshake_complete,
        "messages": messages,
        "application_data": app,
        "application_data_not_listed": dc.application_data_dropped,
        "alerts": [{"direction": DIRECTION[a.direction], "level": a.level,
                    "description": a.description, "encrypted": a.protected, "offset": a.offset,
                    "time_ms": ms(a.time)} for a in dc.alerts],
        "records": {DIRECTION[d]: {"plaintext": c["plaintext"], "encrypted": c["protected"],
                                   "decrypted": c["decrypted"]} for d, c in dc.records.items()},
        "undecrypted": [{"direction": DIRECTION[u.direction], "needs": u.needs, "reason": u.reason,
                         "records": u.records, "bytes": u.bytes, "first_offset": u.first_offset}
                        for u in dc.undecrypted.values()],
        "keys": {"client_random": dc.client_random.hex() if dc.client_random else None,
                 "found_in_key_log": dc.keys_found, "needed": needed},
        "negotiated": jsonable(dc.negotiated),
        "error": dc.error,
        "upgraded_from": dc.upgraded_from or None,
        "mid_connection": dc.mid_connection,
        "roles": dc.roles,
        "tcp": jsonable(dc.tcp),
        "problems": list(dc.problems),
    }
