"""Codec against real bytes: captured ClientHellos and the RFC 8448 / Illustrated TLS 1.3
handshake messages parse, keep their field spans, and build back byte for byte.

The test lists are built by iterating over the shared folders, so new captures and new
vector files are covered without touching this file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tlslab.proto.errors import TLSError
from tlslab.proto.extensions import body_class
from tlslab.proto.messages import MESSAGE_CLASSES, ClientHello, HandshakeBuffer, parse_message
from tlslab.proto.names import ExtensionType, is_grease

SHARED = Path(os.environ.get("TLSLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared")
CLIENTHELLOS = SHARED / "peers" / "clienthellos"
VECTORS = SHARED / "vectors"


# --------------------------------------------------------------------------- inputs

def _records_to_handshake(data: bytes) -> bytes:
    """Concatenate the fragments of the handshake records in ``data`` (headers stripped)."""
    body, i = bytearray(), 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        assert data[i] == 22, f"record {i}: content type {data[i]}, expected handshake"
        assert i + 5 + n <= len(data), "capture ends inside a record"
        body += data[i + 5:i + 5 + n]
        i += 5 + n
    assert i == len(data), "capture ends inside a record header"
    return bytes(body)


def _capture_files() -> list[Path]:
    return sorted(CLIENTHELLOS.glob("*.bin")) if CLIENTHELLOS.is_dir() else []


def _looks_like_message(b: bytes) -> bool:
    return len(b) >= 4 and b[0] in MESSAGE_CLASSES and int.from_bytes(b[1:4], "big") == len(b) - 4


def _vector_messages() -> list[tuple[str, bytes]]:
    """Every complete handshake message in the vector files, as ``(id, bytes)``.

    Candidates are the ``named`` values whose header frames them as one handshake
    message, plus the handshake messages inside the ``records`` (plaintext payloads and
    the decrypted ``inner_plaintext`` of protected records).  A named value that frames
    itself but does not parse (a partial message such as RFC 8448's
    ``client_hello_without_binders``) is left out: we decide by trying.
    """
    if not VECTORS.is_dir():
        return []
    out: list[tuple[str, bytes]] = []
    for path in sorted(VECTORS.glob("*.json")):
        doc = json.loads(path.read_text())
        seen: set[bytes] = set()

        def add(ident: str, b: bytes) -> None:
            if b in seen:
                return
            try:
                parse_message(b)
            except TLSError:
                return  # partial or not a message after all
            seen.add(b)
            out.append((f"{path.stem}:{ident}", b))

        for name, value in (doc.get("named") or {}).items():
            if not isinstance(value, str):
                continue
            try:
                b = bytes.fromhex(value)
            except ValueError:
                continue
            if _looks_like_message(b):
                add(name, b)
        for i, rec in enumerate(doc.get("records") or []):
            payload = None
            if rec.get("inner_plaintext"):
                inner = bytes.fromhex(rec["inner_plaintext"]).rstrip(b"\x00")
                if inner and inner[-1] == 22:
                    payload = inner[:-1]
            elif rec.get("payload") and rec.get("content_type_code") == 22 and not rec.get("protected"):
                payload = bytes.fromhex(rec["payload"])
            elif rec.get("record") and not rec.get("protected"):
                raw = bytes.fromhex(rec["record"])
                if raw[:1] == b"\x16":
                    payload = raw[5:]
            if not payload:
                continue
            buf = HandshakeBuffer()
            buf.add(payload)
            for j, msg in enumerate(buf.pop_messages()):
                add(f"record{i}.{j}", msg)
    return out


CAPTURES = _capture_files()
VECTOR_MESSAGES = _vector_messages()


# --------------------------------------------------------------------------- span checks

def _check_contiguous(spans, start: int, end: int, where: str) -> None:
    pos = start
    for s in spans:
        assert s.offset == pos, f"{where}: {s.name} starts at {s.offset}, expected {pos}"
        assert s.length >= 0
        pos += s.length
    assert pos == end, f"{where}: spans end at {pos}, message ends at {end}"


def _check_children(span, where: str) -> None:
    """Children of a span lie inside it, in order, without overlap, ending with it."""
    kids = span.children or []
    if not kids:
        return
    pos = kids[0].offset
    assert pos >= span.offset, f"{where}.{span.name}: child before its parent"
    for k in kids:
        assert k.offset == pos, f"{where}.{span.name}: gap or overlap at {k.name}"
        pos += k.length
        _check_children(k, f"{where}.{span.name}")
    assert pos == span.offset + span.length, f"{where}.{span.name}: children end at {pos}"


# --------------------------------------------------------------------------- tests

@pytest.mark.skipif(not CAPTURES, reason=f"no captures in {CLIENTHELLOS}")
@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_captured_client_hello(path: Path):
    raw = _records_to_handshake(path.read_bytes())
    ch = ClientHello.parse(raw)
    assert ch.raw == raw
    assert ch.build() == raw

    # every extension we give a name to has a parsed body; GREASE/unknown stay raw
    for e in ch.extensions or []:
        known = e.type in ExtensionType._value2member_map_ and not is_grease(e.type)
        if known and body_class(e.type, ClientHello.CONTEXT) is not None:
            assert e.value is not None, f"{e.name} has no parsed value"
            assert e.value.build() == e.data, f"{e.name} body does not round-trip"
        elif not known:
            assert e.value is None, f"unknown extension 0x{e.type:04x} got a parsed value"

    spans = ch.spans
    _check_contiguous(spans, 0, len(raw), path.stem)
    for s in spans:
        _check_children(s, path.stem)

    # the same through the generic entry point, with spans recorded while parsing
    again = parse_message(raw, record=True)
    assert type(again) is ClientHello
    assert [(s.name, s.offset, s.length) for s in again.spans] == \
        [(s.name, s.offset, s.length) for s in spans]


def test_every_named_extension_has_a_body():
    """The list of extension types we name in ClientHello, checked once against the captures."""
    missing = set()
    for path in CAPTURES:
        ch = ClientHello.parse(_records_to_handshake(path.read_bytes()))
        for e in ch.extensions or []:
            if e.type in ExtensionType._value2member_map_ and not is_grease(e.type) and e.value is None:
                missing.add(e.name)
    assert not missing, f"named extensions seen in real ClientHellos without a body: {sorted(missing)}"


@pytest.mark.skipif(not VECTOR_MESSAGES, reason=f"no handshake messages found in {VECTORS}")
@pytest.mark.parametrize("ident, raw", VECTOR_MESSAGES, ids=[i for i, _ in VECTOR_MESSAGES])
def test_vector_message_round_trip(ident: str, raw: bytes):
    msg = parse_message(raw)
    assert msg.raw == raw
    assert msg.build() == raw
    _check_contiguous(msg.spans, 0, len(raw), ident)
    for s in msg.spans:
        _check_children(s, ident)
    # parse(build(parse(x))) is stable
    assert parse_message(msg.build()) == msg


def test_vector_files_were_found():
    """Guards against the vector walk silently finding nothing (e.g. a renamed key)."""
    if not VECTORS.is_dir():
        pytest.skip(f"{VECTORS} missing")
    files = {i.split(":")[0] for i, _ in VECTOR_MESSAGES}
    assert "rfc8448_simple_1rtt" in files
    assert len(VECTOR_MESSAGES) >= 30
