"""TLS 1.3 record protection (RFC 8446 §5.2-§5.4): every protected record of RFC 8448 and
The Illustrated TLS 1.3 Connection is opened and re-sealed byte for byte, and each
failure mode raises its typed error."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from tlslab.proto.errors import (BadRecordMac, InternalError, RecordOverflow,
                                 UnexpectedMessage)
from tlslab.proto.keyschedule import SUITES
from tlslab.proto.protection import RecordProtector

from conftest import vector_path as _vector_path


def load(name: str) -> dict:
    return json.loads(_vector_path(name).read_text())


# Which traffic secret protects each protected record of the RFC 8448 traces, in order.
KEYS_IN_ORDER = {
    "rfc8448_simple_1rtt.json": [
        "server_handshake_traffic_secret", "client_handshake_traffic_secret",
        "server_application_traffic_secret_0", "client_application_traffic_secret_0",
        "server_application_traffic_secret_0", "client_application_traffic_secret_0",
        "server_application_traffic_secret_0"],
    "rfc8448_hello_retry_request.json": [
        "server_handshake_traffic_secret", "client_handshake_traffic_secret",
        "client_application_traffic_secret_0", "server_application_traffic_secret_0"],
    "rfc8448_resumed_0rtt.json": [
        "client_early_traffic_secret", "server_handshake_traffic_secret",
        "client_early_traffic_secret", "client_handshake_traffic_secret",
        "client_application_traffic_secret_0", "server_application_traffic_secret_0",
        "client_application_traffic_secret_0", "server_application_traffic_secret_0"],
}


def _replay(suite, records):
    """records: (secret, record bytes, content type, content); checks open and seal."""
    openers: dict[bytes, RecordProtector] = {}
    sealers: dict[bytes, RecordProtector] = {}
    for secret, record, ctype, content in records:
        opener = openers.setdefault(secret, RecordProtector(suite, secret))
        sealer = sealers.setdefault(secret, RecordProtector(suite, secret))
        assert opener.seq == sealer.seq
        assert opener.open(record[:5], record[5:]) == (ctype, content)
        # The padding the sender used is what the record length leaves over.
        padding = len(record) - 5 - 16 - 1 - len(content)
        assert sealer.seal(ctype, content, padding) == record
    return openers


@pytest.mark.parametrize("filename", sorted(KEYS_IN_ORDER))
def test_rfc8448_records(filename):
    vec = load(filename)
    named = vec["named"]
    protected = [r for r in vec["records"] if r["protected"]]
    assert len(protected) == len(KEYS_IN_ORDER[filename])
    records = [(bytes.fromhex(named[key]), bytes.fromhex(r["record"]), r["content_type_code"],
                bytes.fromhex(r["payload"]))
               for key, r in zip(KEYS_IN_ORDER[filename], protected)]
    openers = _replay(SUITES[0x1301], records)
    # Sequence numbers advanced once per record under each key.
    for secret, opener in openers.items():
        assert opener.seq == sum(1 for s, *_ in records if s == secret)


def test_rfc8448_write_keys_match():
    named = load("rfc8448_simple_1rtt.json")["named"]
    p = RecordProtector(SUITES[0x1301], bytes.fromhex(named["server_handshake_traffic_secret"]))
    assert p.key.hex() == named["server_handshake_write_key"]
    assert p.iv.hex() == named["server_handshake_write_iv"]


def test_illustrated_tls13_records():
    vec = load("illustrated_tls13.json")
    named = vec["named"]
    records = []
    for r in vec["records"]:
        if not r["protected"]:
            continue
        side, stage = r["key"].split("_")
        secret = named[f"{side}_{stage}_traffic_secret" + ("_0" if stage == "application" else "")]
        inner = bytes.fromhex(r["inner_plaintext"])
        records.append((bytes.fromhex(secret), bytes.fromhex(r["record"]), inner[-1], inner[:-1]))
    openers = _replay(SUITES[0x1302], records)
    assert sorted(o.seq for o in openers.values()) == [1, 1, 3, 4]


SECRET = bytes(range(32))


def _pair(code=0x1301):
    return RecordProtector(SUITES[code], SECRET), RecordProtector(SUITES[code], SECRET)


def test_tampered_tag_is_bad_record_mac_and_keeps_seq():
    sealer, opener = _pair()
    record = bytearray(sealer.seal(23, b"hello"))
    record[-1] ^= 1
    with pytest.raises(BadRecordMac):
        opener.open(bytes(record[:5]), bytes(record[5:]))
    assert opener.seq == 0
    record[-1] ^= 1
    assert opener.open(bytes(record[:5]), bytes(record[5:])) == (23, b"hello")


def test_wrong_sequence_is_bad_record_mac():
    sealer, opener = _pair()
    sealer.seal(23, b"first")
    record = sealer.seal(23, b"second")
    with pytest.raises(BadRecordMac):
        opener.open(record[:5], record[5:])


def test_too_short_is_bad_record_mac():
    _, opener = _pair()
    with pytest.raises(BadRecordMac):
        opener.open(b"\x17\x03\x03\x00\x05", b"\x00" * 5)


def test_oversize_ciphertext_is_record_overflow():
    _, opener = _pair()
    body = bytes(2 ** 14 + 257)
    with pytest.raises(RecordOverflow):
        opener.open(b"\x17\x03\x03" + len(body).to_bytes(2, "big"), body)


def _raw_record(protector: RecordProtector, inner: bytes) -> tuple[bytes, bytes]:
    """Encrypt an arbitrary inner plaintext, bypassing seal's checks (a misbehaving peer)."""
    header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
    nonce = (int.from_bytes(protector.iv, "big") ^ protector.seq).to_bytes(12, "big")
    return header, protector.suite.aead(protector.key).encrypt(nonce, inner, header)


def test_oversize_inner_plaintext_is_record_overflow():
    _, opener = _pair()
    header, body = _raw_record(opener, b"a" * (2 ** 14 + 1) + b"\x17")
    with pytest.raises(RecordOverflow):
        opener.open(header, body)


def test_all_zero_inner_plaintext_is_unexpected_message():
    _, opener = _pair()
    header, body = _raw_record(opener, bytes(10))
    with pytest.raises(UnexpectedMessage):
        opener.open(header, body)


def test_outer_type_must_be_application_data():
    sealer, opener = _pair()
    record = sealer.seal(22, b"x")
    with pytest.raises(UnexpectedMessage):
        opener.open(b"\x16" + record[1:5], record[5:])


def test_seal_limits():
    sealer, _ = _pair()
    with pytest.raises(InternalError):
        sealer.seal(23, bytes(2 ** 14 + 1))
    with pytest.raises(InternalError):
        sealer.seal(23, bytes(2 ** 14), padding=1)
    assert len(sealer.seal(23, bytes(2 ** 14))) == 5 + 2 ** 14 + 1 + 16


def test_sequence_number_must_not_wrap():
    sealer = RecordProtector(SUITES[0x1301], SECRET, seq=2 ** 64 - 1)
    opener = RecordProtector(SUITES[0x1301], SECRET, seq=2 ** 64 - 1)
    record = sealer.seal(23, b"last")
    assert opener.open(record[:5], record[5:]) == (23, b"last")
    with pytest.raises(InternalError):
        sealer.seal(23, b"one too many")


@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from(sorted(SUITES)), ctype=st.integers(1, 255),
       content=st.binary(max_size=300), padding=st.integers(0, 300))
def test_round_trip(code, ctype, content, padding):
    sealer, opener = _pair(code)
    for _ in range(2):
        record = sealer.seal(ctype, content, padding)
        assert len(record) == 5 + len(content) + 1 + padding + SUITES[code].tag_len
        assert opener.open(record[:5], record[5:]) == (ctype, content)
