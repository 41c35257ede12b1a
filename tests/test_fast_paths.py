"""The fast paths of record protection and key exchange give the same bytes and the same
errors as the general code they bypass (RFC 8446 §5.2-§5.4, §4.2.8.2, §7.4.2)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from tlslab.proto import groups
from tlslab.proto.errors import (BadRecordMac, DecodeError, IllegalParameter, InternalError,
                                 RecordOverflow, UnexpectedMessage)
from tlslab.proto.keyschedule import SUITES
from tlslab.proto.protection import RecordProtector
from tlslab.proto.provider import Provider, ReplayProvider

SECRET = bytes(range(48))


@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from(sorted(SUITES)), ctype=st.integers(1, 255),
       content=st.binary(max_size=2000))
def test_unpadded_seal_equals_the_general_path(code, ctype, content):
    fast = RecordProtector(SUITES[code], SECRET[:SUITES[code].hash_len])
    general = RecordProtector(SUITES[code], SECRET[:SUITES[code].hash_len])
    for _ in range(2):
        record = fast.seal(ctype, content)
        assert bytes(record) == general._seal_general(ctype, content, 0)
        assert fast.seq == general.seq


def test_full_size_record_both_ways():
    suite = SUITES[0x1301]
    sealer, opener = RecordProtector(suite, SECRET[:32]), RecordProtector(suite, SECRET[:32])
    content = bytes(range(256)) * 64
    record = sealer.seal(23, content)
    assert len(record) == 5 + 2 ** 14 + 1 + 16
    assert opener.open(bytes(record[:5]), bytes(record[5:])) == (23, content)
    # a record ending in zero bytes of content is told from padding by its type byte
    record = sealer.seal(23, b"ab\x00\x00", padding=3)
    assert opener.open(bytes(record[:5]), bytes(record[5:])) == (23, b"ab\x00\x00")


@pytest.mark.parametrize("header,body,error", [
    (b"\x17\x03\x03\x00", bytes(20), InternalError),             # header not 5 bytes
    (b"\x16\x03\x03\x00\x14", bytes(20), UnexpectedMessage),     # outer type not 23
    (b"\x17\x03\x03\x00\x15", bytes(20), DecodeError),           # length field differs
    (b"\x17\x03\x03\x41\x01", bytes(2 ** 14 + 257), RecordOverflow),
    (b"\x17\x03\x03\x00\x10", bytes(16), BadRecordMac),          # no room for the type byte
    (b"\x17\x03\x03\x00\x14", bytes(20), BadRecordMac),          # tag does not verify
])
def test_open_errors(header, body, error):
    opener = RecordProtector(SUITES[0x1301], SECRET[:32])
    with pytest.raises(error):
        opener.open(header, body)
    assert opener.seq == 0


class _ZeroKey:
    """A private key whose exchange gives the all-zero result (RFC 7748 §6), which OpenSSL
    itself would refuse first; it exercises our own check."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._real = groups.x25519.X25519PrivateKey.generate()

    def public_key(self):
        return self._real.public_key()

    def exchange(self, peer) -> bytes:
        return bytes(self.size)


def test_all_zero_x25519_result_is_rejected_on_both_sides():
    peer = groups.new_key_share(groups.X25519, Provider()).public
    share = groups.KeyShare(groups.X25519, _ZeroKey(32))
    with pytest.raises(IllegalParameter, match="all zeros"):
        share.shared_secret(peer)
    provider = ReplayProvider(keys={"x25519": [_ZeroKey(32)]})
    with pytest.raises(IllegalParameter, match="all zeros"):
        groups.server_key_share(groups.X25519, peer, provider)


class _CountingProvider(Provider):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def private_key(self, group: str):
        self.asked.append(group)
        return None


def test_x25519_asks_the_provider_once_per_share():
    provider = _CountingProvider()
    share = groups.new_key_share(groups.X25519, provider)
    public, secret = groups.server_key_share(groups.X25519, share.public, provider)
    assert provider.asked == ["x25519", "x25519"]
    assert share.shared_secret(public) == secret
    assert len(secret) == 32 and share.name == "x25519"


# --------------------------------------------------------------------------- TLS 1.2

from tlslab.proto.tls12 import prf as prf12  # noqa: E402
from tlslab.proto.tls12.protection import RecordProtector12  # noqa: E402
from tlslab.proto.tls12.suites import SUITES12  # noqa: E402

AEAD12 = sorted(s.code for s in SUITES12.values() if s.aead and s.available)


def _reference_record12(suite, key, iv, seq, ctype, content, version=0x0303):
    """An AEAD record built step by step from RFC 5246 §6.2.3.3 with RFC 5288 §3 (GCM)
    or RFC 7905 §2 (ChaCha20-Poly1305)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    seq_bytes = seq.to_bytes(8, "big")
    aad = seq_bytes + bytes([ctype]) + version.to_bytes(2, "big") + len(content).to_bytes(2, "big")
    if "GCM" in suite.cipher:
        fragment = seq_bytes + AESGCM(key).encrypt(iv + seq_bytes, content, aad)
    else:
        nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
        fragment = ChaCha20Poly1305(key).encrypt(nonce, content, aad)
    return bytes([ctype]) + version.to_bytes(2, "big") + len(fragment).to_bytes(2, "big") + fragment


@pytest.mark.parametrize("code", AEAD12)
def test_tls12_aead_records_equal_the_rfc_construction(code):
    suite = SUITES12[code]
    key, iv = bytes(range(suite.key_len)), bytes(range(100, 100 + suite.fixed_iv_len))
    sealer = RecordProtector12(suite, key, iv=iv)
    opener = RecordProtector12(suite, key, iv=iv)
    contents = ((22, b""), (23, b"x" * 300), (21, b"\x01\x00"), (23, bytes(2 ** 14)))
    for seq, (ctype, content) in enumerate(contents):
        record = sealer.seal(ctype, content)
        assert record == _reference_record12(suite, key, iv, seq, ctype, content)
        assert opener.open(record[:5], record[5:]) == (ctype, content)
    assert sealer.seq == opener.seq == 4


def _prf_tls10_bytewise(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    half = (len(secret) + 1) // 2
    md5 = prf12.p_hash("md5", secret[:half], label + seed, length)
    sha = prf12.p_hash("sha1", secret[len(secret) - half:], label + seed, length)
    return bytes(x ^ y for x, y in zip(md5, sha))


@pytest.mark.parametrize("secret,length", [(bytes(48), 12), (bytes(range(5)), 20),
                                           (bytes(range(48)), 104), (b"\xff" * 47, 1)])
def test_tls10_prf_xor_as_integers(secret, length):
    assert prf12.prf_tls10(secret, b"key expansion", b"seed", length) == \
        _prf_tls10_bytewise(secret, b"key expansion", b"seed", length)


# --------------------------------------------------------------------------- record framing

from tlslab.proto.record import RecordReader, plaintext_record  # noqa: E402


@pytest.mark.parametrize("chunk", [1, 7, 4096, 100000])
def test_reader_gives_the_same_records_around_the_view_threshold(chunk):
    sizes = [0, 1, 4095, 4096, 4097, 2 ** 14, 300, 2 ** 14 + 256]
    records = [(23, bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    stream = b"".join(plaintext_record(ct, frag) for ct, frag in records)
    reader = RecordReader()
    got = []
    for i in range(0, len(stream), chunk):
        reader.add(stream[i:i + chunk])
        while (rec := reader.next_record(protected=True)) is not None:
            got.append(rec)
    assert [(h, f) for h, f in got] == [(plaintext_record(ct, frag)[:5], frag) for ct, frag in records]
    assert all(type(h) is bytes and type(f) is bytes for h, f in got)
    assert len(reader) == 0
    reader.add(b"\x17\x03\x03")  # the buffer still grows and shrinks after views were taken
    assert reader.next_record(protected=True) is None and len(reader) == 3
