"""TLS 1.2 building blocks: PRF, key block, Finished, record protection, key exchange.

Known answers come from ../shared/vectors (prf12.json, illustrated_tls12.json); the
TLS 1.0 PRF is cross-checked with ``openssl kdf`` when the binary is there.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tlslab.proto import groups, signatures
from tlslab.proto.errors import (BadRecordMac, DecodeError, DecryptError, HandshakeFailure,
                                 IllegalParameter, InsufficientSecurity, RecordOverflow,
                                 UnsupportedCertificate)
from tlslab.proto.provider import Provider, ReplayProvider
from tlslab.proto.tls12 import keyexchange as kx
from tlslab.proto.tls12.prf import (handshake_hash, key_block, key_material, master_secret, prf,
                                    prf_tls10, verify_data)
from tlslab.proto.tls12.protection import (BAD_RECORD_MAC_TEXT, MAX_CIPHERTEXT, RecordProtector12,
                                           protector_pair)
from tlslab.proto.tls12.suites import (DEFAULT_SUITES12, EXTRA_CIPHER_SUITE_NAMES, SUITES12,
                                       SUITES12_BY_NAME)


@pytest.fixture(scope="module")
def il12(vectors_dir):
    doc = json.loads((vectors_dir / "illustrated_tls12.json").read_text())
    doc["b"] = {k: bytes.fromhex(v) for k, v in doc["named"].items()}
    return doc


@pytest.fixture(scope="module")
def prf_vectors(vectors_dir):
    return json.loads((vectors_dir / "prf12.json").read_text())["vectors"]


def _handshake_body(record_hex: str) -> bytes:
    """Body of the single handshake message in a plaintext record."""
    rec = bytes.fromhex(record_hex)
    msg = rec[5:]
    assert int.from_bytes(msg[1:4], "big") == len(msg) - 4
    return msg[4:]


# --------------------------------------------------------------------------- PRF

def test_prf12_vectors(prf_vectors):
    assert len(prf_vectors) >= 6
    for v in prf_vectors:
        out = bytes.fromhex(v["output"])
        got = prf(v["hash"], bytes.fromhex(v["secret"]), v["label"].encode(),
                  bytes.fromhex(v["seed"]), len(out))
        assert got == out, v["name"]


def test_prf_tls10_against_openssl():
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed (Debian package openssl)")
    # odd-length secret: the two halves share the middle byte (RFC 2246 §5)
    for secret, seed, n in ((bytes(range(1, 6)), b"test", 20), (bytes(range(48)), b"x" * 64, 104)):
        proc = subprocess.run(
            [openssl, "kdf", "-keylen", str(n), "-kdfopt", "digest:MD5-SHA1",
             "-kdfopt", f"hexsecret:{secret.hex()}", "-kdfopt", f"hexseed:{seed.hex()}", "TLS1-PRF"],
            capture_output=True, text=True, timeout=20)
        if proc.returncode != 0:
            pytest.skip(f"openssl kdf TLS1-PRF unavailable: {proc.stderr.strip()[:100]}")
        expected = bytes.fromhex(proc.stdout.strip().replace(":", ""))
        assert prf_tls10(secret, seed[:2], seed[2:], n) == expected


def test_extended_master_secret_label():
    pms, session_hash = bytes(range(48)), hashlib.sha256(b"transcript").digest()
    ems = master_secret(pms, bytes(32), bytes(32), session_hash=session_hash)
    assert ems == prf("sha256", pms, b"extended master secret", session_hash, 48)
    assert ems != master_secret(pms, bytes(32), bytes(32))
    # TLS 1.0/1.1: MD5 || SHA-1 session hash and the old PRF (RFC 7627 §3, §4)
    h10 = handshake_hash(b"transcript", version=0x0301)
    assert len(h10) == 36
    assert (master_secret(pms, bytes(32), bytes(32), session_hash=h10, version=0x0301)
            == prf_tls10(pms, b"extended master secret", h10, 48))


# --------------------------------------------------------------------------- Illustrated TLS 1.2

def test_illustrated_key_schedule(il12):
    b = il12["b"]
    client_key = x25519.X25519PrivateKey.from_private_bytes(b["client_x25519_private_key"])
    pms = client_key.exchange(x25519.X25519PublicKey.from_public_bytes(b["server_x25519_public_key"]))
    assert pms == b["pre_master_secret"]
    ms = master_secret(pms, b["client_random"], b["server_random"])
    assert ms == b["master_secret"]
    suite = SUITES12_BY_NAME[il12["cipher_suite"]]
    keys = key_material(suite, ms, b["client_random"], b["server_random"])
    assert keys.client_mac_key == b["client_write_mac_key"]
    assert keys.server_mac_key == b["server_write_mac_key"]
    assert keys.client_key == b["client_write_key"]
    assert keys.server_key == b["server_write_key"]
    assert keys.client_iv == b["client_write_iv_from_key_block"]
    assert keys.server_iv == b["server_write_iv_from_key_block"]
    raw = key_block(ms, b["server_random"], b["client_random"], 104)
    assert raw[:20] == b["client_write_mac_key"]
    assert verify_data(ms, b["client_finished_handshake_hash"], True) == b["client_finished_verify_data"]
    assert verify_data(ms, b["server_finished_handshake_hash"], False) == b["server_finished_verify_data"]


def _illustrated_records(il12):
    return {r["what"]: r for r in il12["records"]}


def test_illustrated_key_exchange(il12):
    b = il12["b"]
    recs = _illustrated_records(il12)
    ske = kx.parse_server_key_exchange("ECDHE_RSA", _handshake_body(recs["ServerKeyExchange"]["record"]))
    assert ske.params.named_curve == groups.X25519
    assert ske.params.public == b["server_x25519_public_key"]
    cert = x509.load_der_x509_certificate(b["server_certificate_der"])
    offered = [0x0401, 0x0403, 0x0501, 0x0503, 0x0601, 0x0603, 0x0804, 0x0805, 0x0806, 0x0201]
    kx.verify_server_key_exchange(cert, ske, b["client_random"], b["server_random"],
                                  offered_schemes=offered)
    # the same signature over other randoms must fail
    with pytest.raises(DecryptError):
        kx.verify_server_key_exchange(cert, ske, bytes(32), b["server_random"], offered_schemes=offered)
    # a scheme the client did not offer
    with pytest.raises(IllegalParameter):
        kx.verify_server_key_exchange(cert, ske, b["client_random"], b["server_random"],
                                      offered_schemes=[0x0804])
    # the certificate key does not fit ECDHE_ECDSA
    ecdsa_view = kx.ServerKeyExchange12("ECDHE_ECDSA", ske.params, ske.params_raw, ske.scheme,
                                        ske.signature, ske.message)
    with pytest.raises(UnsupportedCertificate):
        kx.verify_server_key_exchange(cert, ecdsa_view, b["client_random"], b["server_random"])
    # build(parse(x)) == x
    assert kx.build_server_key_exchange(ske.params_raw, ske.scheme, ske.signature) == ske.message.raw
    # the client's side, replayed with the vector's fixed key
    fixed = x25519.X25519PrivateKey.from_private_bytes(b["client_x25519_private_key"])
    public, pms = kx.ecdhe_client_exchange(ske.params, ReplayProvider(keys={"x25519": [fixed]}),
                                           offered_groups=[groups.X25519, groups.SECP256R1])
    assert public == b["client_x25519_public_key"]
    assert pms == b["pre_master_secret"]
    cke_body = _handshake_body(recs["ClientKeyExchange"]["record"])
    assert kx.build_client_key_exchange("ECDHE_RSA", public) == cke_body
    assert kx.parse_client_key_exchange("ECDHE_RSA", cke_body).ecdh_Yc == public


def test_illustrated_records_open_and_reseal(il12):
    b = il12["b"]
    suite = SUITES12_BY_NAME[il12["cipher_suite"]]
    keys = key_material(suite, b["master_secret"], b["client_random"], b["server_random"])
    protected = [r for r in il12["records"] if r["protected"]]
    assert len(protected) == 5
    for side in ("client_write", "server_write"):
        recs = [r for r in protected if r["key"] == side]
        key, mac_key, iv = keys.writer(side == "client_write")
        reader = RecordProtector12(suite, key, mac_key, iv)
        writer = RecordProtector12(suite, key, mac_key, iv, provider=ReplayProvider(
            [bytes.fromhex(r["explicit_iv"]) for r in recs]))
        for r in recs:
            record = bytes.fromhex(r["record"])
            assert reader.seq == r["sequence_number"]
            content_type, plaintext = reader.open(record[:5], record[5:])
            assert content_type == record[0]
            assert plaintext == bytes.fromhex(r["content"])
            assert writer.seal(content_type, plaintext) == record
    # protector_pair: the client writes with client_write_*, reads with server_write_*
    client_w, client_r = protector_pair(suite, keys, client=True, provider=ReplayProvider(
        [bytes.fromhex(protected[0]["explicit_iv"])]))
    server_record = bytes.fromhex(next(r for r in protected if r["key"] == "server_write")["record"])
    assert client_r.open(server_record[:5], server_record[5:])[0] == 22
    assert client_w.seal(22, bytes.fromhex(protected[0]["content"])) == bytes.fromhex(protected[0]["record"])
    # with the wrong direction's keys nothing opens
    record = bytes.fromhex(protected[0]["record"])
    wrong = RecordProtector12(suite, *keys.writer(False))
    with pytest.raises(BadRecordMac):
        wrong.open(record[:5], record[5:])


# --------------------------------------------------------------------------- suites

def test_suite_table():
    from tlslab.proto.names import CipherSuite

    for member in CipherSuite:
        if member.value >> 8 == 0x13 or member.value in (0x00FF, 0x5600):
            continue
        assert member.value in SUITES12, member.name
        assert SUITES12[member.value].name == member.name
    assert set(EXTRA_CIPHER_SUITE_NAMES) == {0x0004, 0x0005, 0xC012}
    s = SUITES12[0xC030]
    assert (s.kx, s.cipher, s.mac, s.prf_hash, s.aead) == ("ECDHE_RSA", "AES_256_GCM", None, "sha384", True)
    s = SUITES12[0xC028]
    assert (s.mac, s.prf_hash, s.mac_len, s.block_size) == ("SHA384", "sha384", 48, 16)
    s = SUITES12[0x002F]
    assert (s.kx, s.mac, s.prf_hash, s.min_version) == ("RSA", "SHA1", "sha256", 0x0301)
    assert SUITES12[0x0004].mac == "MD5" and SUITES12[0x0004].legacy
    assert SUITES12[0xCCAA].kx == "DHE_RSA" and SUITES12[0xCCAA].fixed_iv_len == 12
    assert not any(SUITES12[c].legacy for c in DEFAULT_SUITES12)
    assert all(c in SUITES12 for c in DEFAULT_SUITES12)


# --------------------------------------------------------------------------- record protection

class CountingProvider(Provider):
    def __init__(self) -> None:
        self.n = 0

    def random(self, n: int) -> bytes:
        self.n += 1
        return hashlib.sha256(self.n.to_bytes(4, "big")).digest()[:n]


def _pair(suite, version=0x0303, etm=False, seed=b"k"):
    def take(n, tag):
        return hashlib.sha512(seed + tag).digest()[:n]
    key, mac_key, iv = take(suite.key_len, b"key"), take(suite.mac_key_len, b"mac"), take(suite.fixed_iv_len, b"iv")
    prov = CountingProvider()
    return (RecordProtector12(suite, key, mac_key, iv, version, etm, prov),
            RecordProtector12(suite, key, mac_key, iv, version, etm, prov))


def _usable(versions=(0x0301, 0x0302, 0x0303)):
    for suite in SUITES12.values():
        if not suite.available:
            continue
        for version in versions:
            if version < suite.min_version:
                continue
            for etm in ((False, True) if suite.cbc else (False,)):
                yield pytest.param(suite, version, etm, id=f"{suite.name}-{version:04x}-{'etm' if etm else 'mte'}")


@pytest.mark.parametrize("suite,version,etm", list(_usable()))
def test_round_trip_every_suite(suite, version, etm):
    writer, reader = _pair(suite, version, etm)
    for i, size in enumerate((0, 1, 15, 16, 17, 100, 2 ** 14)):
        data = bytes((i + j) % 251 for j in range(size))
        record = writer.seal(23, data)
        assert record[:3] == b"\x17" + version.to_bytes(2, "big")
        assert len(record) - 5 <= size + writer.max_overhead
        assert reader.open(record[:5], record[5:]) == (23, data)
    assert writer.seq == reader.seq == 7


@pytest.mark.parametrize("name", ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                                  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                                  "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"])
def test_aead_round_trip_and_tamper(name):
    suite = SUITES12_BY_NAME[name]
    writer, reader = _pair(suite)
    record = writer.seal(23, b"hello world")
    if suite.cipher != "CHACHA20_POLY1305":
        assert record[5:13] == (0).to_bytes(8, "big")        # explicit nonce = sequence number
        assert len(record) == 5 + 8 + 11 + 16
    else:
        assert len(record) == 5 + 11 + 16                      # RFC 7905: no explicit nonce
    for pos in range(5, len(record)):
        bad = bytearray(record)
        bad[pos] ^= 1
        with pytest.raises(BadRecordMac) as err:
            reader.open(bytes(bad[:5]), bytes(bad[5:]))
        assert str(err.value) == BAD_RECORD_MAC_TEXT
    bad_type = bytes([22]) + record[1:]                        # type is in the AAD
    with pytest.raises(BadRecordMac):
        reader.open(bad_type[:5], bad_type[5:])
    assert reader.open(record[:5], record[5:]) == (23, b"hello world")
    # replaying it: wrong sequence number
    with pytest.raises(BadRecordMac):
        reader.open(record[:5], record[5:])


def _cbc_record(suite, key, mac_key, seq, content, *, mac=None, padding_bytes=None, iv=b"\x11" * 16):
    """A hand-made MAC-then-encrypt CBC record (RFC 5246 §6.2.3.2)."""
    if mac is None:
        mac = hmac.digest(mac_key, seq.to_bytes(8, "big") + b"\x17\x03\x03"
                          + len(content).to_bytes(2, "big") + content, "sha1")
    data = content + mac
    if padding_bytes is None:
        n = 16 - 1 - len(data) % 16
        padding_bytes = bytes([n]) * (n + 1)
    data += padding_bytes
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = iv + enc.update(data) + enc.finalize()
    return b"\x17\x03\x03" + len(body).to_bytes(2, "big") + body


def test_cbc_padding_and_mac_failures_look_the_same():
    suite = SUITES12_BY_NAME["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]
    key, mac_key = bytes(range(16)), bytes(range(20))
    content = b"attack at dawn!"

    def fresh():
        return RecordProtector12(suite, key, mac_key, bytes(16))

    good = _cbc_record(suite, key, mac_key, 0, content)
    assert fresh().open(good[:5], good[5:]) == (23, content)
    # larger than minimal padding is legal (RFC 5246 §6.2.3.2)
    long_pad = _cbc_record(suite, key, mac_key, 0, content, padding_bytes=bytes([28]) * 29)
    assert fresh().open(long_pad[:5], long_pad[5:]) == (23, content)

    # content (15) + MAC (20) = 35 bytes, so minimal padding is 13 bytes of 0x0c
    cases = {
        "bad MAC": _cbc_record(suite, key, mac_key, 0, content, mac=bytes(20)),
        "padding byte disagrees with length": _cbc_record(
            suite, key, mac_key, 0, content, padding_bytes=b"\x0d" + b"\x0c" * 12),
        "padding value wrong": _cbc_record(suite, key, mac_key, 0, content,
                                           padding_bytes=b"\x0b" * 12 + b"\x0c"),
        "padding longer than record": _cbc_record(suite, key, mac_key, 0, content,
                                                  padding_bytes=b"\xff" * 13),
        "wrong sequence number": _cbc_record(suite, key, mac_key, 5, content),
        "not a block multiple": good[:-1],
        "too short": good[:5 + 16 + 16],
    }
    messages = set()
    for what, record in cases.items():
        hdr = record[:5]
        if what in ("not a block multiple", "too short"):
            hdr = hdr[:3] + (len(record) - 5).to_bytes(2, "big")
        with pytest.raises(BadRecordMac) as err:
            fresh().open(hdr, record[5:])
        messages.add(str(err.value))
    assert messages == {BAD_RECORD_MAC_TEXT}


def test_encrypt_then_mac():
    suite = SUITES12_BY_NAME["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"]
    writer, reader = _pair(suite, etm=True)
    mte_writer, _ = _pair(suite, etm=False)
    assert writer.encrypt_then_mac
    record = writer.seal(23, b"ping")
    # RFC 7366: IV || ENC(content || padding) || MAC; the MAC is the last 48 bytes, in clear
    body = record[5:]
    mac = hmac.digest(writer._mac_key, (0).to_bytes(8, "big") + b"\x17\x03\x03"
                      + (len(body) - 48).to_bytes(2, "big") + body[:-48], "sha384")
    assert body[-48:] == mac
    assert len(body) == 16 + 16 + 48
    assert mte_writer.seal(23, b"ping") != record
    tampered = record[:-1] + bytes([record[-1] ^ 1])
    with pytest.raises(BadRecordMac) as err:
        reader.open(tampered[:5], tampered[5:])
    assert str(err.value) == BAD_RECORD_MAC_TEXT
    assert reader.open(record[:5], record[5:]) == (23, b"ping")
    # EtM is meaningless for AEAD suites and is ignored there (RFC 7366 §3)
    gcm, _ = _pair(SUITES12_BY_NAME["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], etm=True)
    assert not gcm.encrypt_then_mac


def test_tls10_chained_iv():
    suite = SUITES12_BY_NAME["TLS_RSA_WITH_AES_128_CBC_SHA"]
    writer, reader = _pair(suite, version=0x0301)
    first = writer.seal(23, b"a" * 20)
    second = writer.seal(23, b"b" * 20)
    assert len(first) == 5 + 48                                # no explicit IV in TLS 1.0
    assert reader.open(first[:5], first[5:]) == (23, b"a" * 20)
    assert reader.open(second[:5], second[5:]) == (23, b"b" * 20)
    # the IV of record 2 is the last ciphertext block of record 1
    key = hashlib.sha512(b"kkey").digest()[:16]
    dec = Cipher(algorithms.AES(key), modes.CBC(first[-16:])).decryptor()
    assert (dec.update(second[5:]) + dec.finalize()).startswith(b"b" * 20)


def test_record_limits():
    suite = SUITES12_BY_NAME["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    writer, reader = _pair(suite)
    big = bytes(MAX_CIPHERTEXT + 1)
    with pytest.raises(RecordOverflow):
        reader.open(b"\x17\x03\x03" + len(big).to_bytes(2, "big"), big)
    # an authentic record with 2^14 + 1 bytes of plaintext
    key = hashlib.sha512(b"kkey").digest()[:16]
    salt = hashlib.sha512(b"kiv").digest()[:4]
    plaintext = bytes(2 ** 14 + 1)
    aad = bytes(8) + b"\x17\x03\x03" + len(plaintext).to_bytes(2, "big")
    body = bytes(8) + AESGCM(key).encrypt(salt + bytes(8), plaintext, aad)
    with pytest.raises(RecordOverflow):
        reader.open(b"\x17\x03\x03" + len(body).to_bytes(2, "big"), body)
    with pytest.raises(DecodeError):
        reader.open(b"\x17\x03\x03\x00\x10", bytes(20))


# --------------------------------------------------------------------------- DH

def test_dh_parameter_validation():
    with pytest.raises(InsufficientSecurity) as err:
        kx.validate_dh_params((1 << 511) + 111, 2)
    assert str(err.value) == "DH prime of 512 bits, below 1024"
    with pytest.raises(IllegalParameter):
        kx.validate_dh_params(1 << 1500, 2)                      # even
    p1024 = (1 << 1023) + 1155
    assert kx.validate_dh_params(p1024, 2) == "DH prime of 1024 bits, below 2048"
    for g in (0, 1, p1024 - 1, p1024):
        with pytest.raises(IllegalParameter):
            kx.validate_dh_params(p1024, g)
    assert kx.validate_dh_params(groups.FFDHE2048_P, 2) is None
    assert kx.known_dh_group(groups.FFDHE2048_P, 2) == "ffdhe2048"


def test_dhe_exchange_and_bad_public_values():
    server_key, params_raw = kx.dhe_server_key(Provider(), "ffdhe2048")
    params = kx.ServerDHParams.parse(params_raw)
    assert params.p == groups.FFDHE2048_P and params.g == 2 and len(params.dh_Ys) == 256
    result = kx.dhe_client_exchange(params, Provider())
    assert result.warning is None
    assert kx.dhe_server_premaster(server_key, result.public) == result.premaster
    assert result.premaster[0] != 0                             # RFC 5246 §8.1.2: zeros stripped
    p = groups.FFDHE2048_P
    for ys in (p - 1, 1, 0, p):
        bad = kx.ServerDHParams.parse(kx.build_dhe_params(p, 2, ys))
        with pytest.raises(IllegalParameter):
            kx.dhe_client_exchange(bad, Provider())
    for yc in (p - 1, 1):
        with pytest.raises(IllegalParameter):
            kx.dhe_server_premaster(server_key, yc.to_bytes(256, "big"))
    small = kx.ServerDHParams.parse(kx.build_dhe_params((1 << 511) + 111, 2, 5))
    with pytest.raises(InsufficientSecurity):
        kx.dhe_client_exchange(small, Provider())


# --------------------------------------------------------------------------- ECDHE and signatures

def test_ecdhe_validation_and_round_trip():
    share, params_raw = kx.ecdhe_server_key(groups.SECP256R1, Provider())
    params = kx.ServerECDHParams.parse(params_raw)
    public, pms = kx.ecdhe_client_exchange(params, Provider(), offered_groups=[groups.SECP256R1])
    assert kx.ecdhe_server_premaster(share, public) == pms and len(pms) == 32
    with pytest.raises(IllegalParameter):                      # not offered
        kx.ecdhe_client_exchange(params, Provider(), offered_groups=[groups.X25519])
    off_curve = b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x01"
    with pytest.raises(IllegalParameter):
        kx.validate_ecdhe_point(groups.SECP256R1, off_curve)
    with pytest.raises(IllegalParameter):                      # compressed form
        kx.validate_ecdhe_point(groups.SECP256R1, b"\x02" + public[1:33])
    with pytest.raises(IllegalParameter):
        kx.validate_ecdhe_point(groups.X25519, bytes(31))
    with pytest.raises(IllegalParameter):                      # low-order x25519 point
        kx.ecdhe_server_premaster(kx.ecdhe_server_key(groups.X25519, Provider())[0], bytes(32))
    with pytest.raises(IllegalParameter):
        kx.check_ecdhe_group(groups.FFDHE2048)
    explicit = b"\x01" + bytes(10)
    with pytest.raises(IllegalParameter):
        kx.ServerECDHParams.parse(explicit)
    with pytest.raises(DecodeError):
        kx.parse_server_key_exchange("ECDHE_ECDSA", params_raw + b"\x04\x03\x00\x10")


def test_ske_sign_verify_tls12():
    key = ec.generate_private_key(ec.SECP384R1())
    cr, sr = bytes(range(32)), bytes(range(32, 64))
    _, params_raw = kx.ecdhe_server_key(groups.X25519, Provider())
    scheme = kx.select_signature_scheme(key, [0x0403, 0x0503, 0x0804])
    assert scheme == signatures.ECDSA_SECP384R1_SHA384              # curve-matching first
    assert kx.select_signature_scheme(key, [0x0403, 0x0201]) == 0x0403  # any curve in TLS 1.2
    sig = kx.sign_server_params(key, scheme, cr, sr, params_raw)
    body = kx.build_server_key_exchange(params_raw, scheme, sig)
    ske = kx.parse_server_key_exchange("ECDHE_ECDSA", body)
    kx.verify_server_key_exchange(key.public_key(), ske, cr, sr, offered_schemes=[0x0503])
    with pytest.raises(DecryptError):
        kx.verify_server_key_exchange(key.public_key(), ske, sr, cr, offered_schemes=[0x0503])
    # no signature_algorithms from the client: SHA-1 with the key type, only when allowed
    with pytest.raises(HandshakeFailure):
        kx.select_signature_scheme(key, None)
    assert kx.select_signature_scheme(key, None, allow_sha1=True) == signatures.ECDSA_SHA1
    sha1_sig = kx.sign_server_params(key, signatures.ECDSA_SHA1, cr, sr, params_raw, allow_sha1=True)
    sha1_ske = kx.parse_server_key_exchange(
        "ECDHE_ECDSA", kx.build_server_key_exchange(params_raw, signatures.ECDSA_SHA1, sha1_sig))
    kx.verify_server_key_exchange(key.public_key(), sha1_ske, cr, sr, offered_schemes=None)
    with pytest.raises(IllegalParameter):                       # SHA-256 not allowed then
        kx.verify_server_key_exchange(key.public_key(), ske, cr, sr, offered_schemes=None)
    with pytest.raises(HandshakeFailure):
        kx.select_signature_scheme(key, [0x0804, 0x0401])


def test_ske_tls10_rsa_signature(il12):
    """TLS 1.0/1.1: RSA over MD5 || SHA-1 without DigestInfo (RFC 2246 §7.4.3)."""
    b = il12["b"]
    private = serialization.load_der_private_key(b["server_rsa_private_key_pkcs1_der"], None)
    cr, sr = b["client_random"], b["server_random"]
    _, params_raw = kx.dhe_server_key(Provider(), "ffdhe2048")
    data = cr + sr + params_raw
    digest = hashlib.md5(data).digest() + hashlib.sha1(data).digest()
    nums = private.private_numbers()
    k = private.key_size // 8
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    sig = pow(int.from_bytes(em, "big"), nums.d, nums.public_numbers.n).to_bytes(k, "big")
    body = kx.build_server_key_exchange(params_raw, None, sig, version=0x0301)
    ske = kx.parse_server_key_exchange("DHE_RSA", body, version=0x0301)
    assert ske.scheme is None
    kx.verify_server_key_exchange(private.public_key(), ske, cr, sr, version=0x0301)
    with pytest.raises(DecryptError):
        kx.verify_server_key_exchange(private.public_key(), ske, sr, cr, version=0x0301)


# --------------------------------------------------------------------------- static RSA

@pytest.fixture(scope="module")
def rsa_key(il12):
    return serialization.load_der_private_key(il12["b"]["server_rsa_private_key_pkcs1_der"], None)


def test_rsa_premaster_good(rsa_key):
    random46 = bytes(range(100, 146))
    encrypted, pms = kx.encrypt_premaster(rsa_key.public_key(), 0x0303, ReplayProvider([random46]))
    assert pms == b"\x03\x03" + random46
    body = kx.build_client_key_exchange("RSA", encrypted)
    assert kx.parse_client_key_exchange("RSA", body).encrypted_pre_master_secret == encrypted
    decoy = bytes(46)
    assert kx.decrypt_premaster(rsa_key, encrypted, 0x0303, ReplayProvider([decoy])) == pms


def test_rsa_premaster_wrong_version_bytes(rsa_key):
    message = b"\x03\x01" + bytes(range(46))
    encrypted = rsa_key.public_key().encrypt(message, padding.PKCS1v15())
    decoy = b"\xaa" * 46
    got = kx.decrypt_premaster(rsa_key, encrypted, 0x0303, ReplayProvider([decoy]))
    # RFC 5246 §7.4.7.1: the version bytes are replaced by ClientHello.client_version,
    # so the client's premaster (with 0x0301) and ours differ: Finished fails later.
    assert len(got) == 48 and got != message
    assert got == b"\x03\x03" + message[2:]


@pytest.mark.parametrize("what", ["garbage", "short", "empty", "wrong length plaintext"])
def test_rsa_premaster_garbage_uses_provider_random(rsa_key, what):
    k = rsa_key.key_size // 8
    if what == "garbage":
        # With OpenSSL's implicit rejection this decrypts to a synthetic message; for this
        # key and ciphertext its length is not 48 (checked below), so R is used.
        ciphertext = hashlib.shake_256(b"garbage").digest(k)
        ciphertext = (int.from_bytes(ciphertext, "big") % rsa_key.public_key().public_numbers().n).to_bytes(k, "big")
        try:
            synthetic = rsa_key.decrypt(ciphertext, padding.PKCS1v15())
            assert len(synthetic) != 48
        except ValueError:
            pass
    elif what == "short":
        ciphertext = b"\x01" * 10
    elif what == "empty":
        ciphertext = b""
    else:
        ciphertext = rsa_key.public_key().encrypt(b"\x03\x03" + bytes(40), padding.PKCS1v15())
    random46 = hashlib.sha256(what.encode()).digest() + bytes(14)
    got = kx.decrypt_premaster(rsa_key, ciphertext, 0x0303, ReplayProvider([random46]))
    assert got == b"\x03\x03" + random46


def test_rsa_kx_needs_rsa_key():
    with pytest.raises(UnsupportedCertificate):
        kx.encrypt_premaster(ec.generate_private_key(ec.SECP256R1()).public_key(), 0x0303, Provider())
