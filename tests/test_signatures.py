"""Signature schemes and CertificateVerify (RFC 8446 §4.2.3, §4.4.3): the RFC 8448 and
Illustrated TLS 1.3 server signatures verify over the recomputed transcript, every scheme
signs and verifies, and mismatches fail with the right alert."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from tlslab.proto import signatures as sig
from tlslab.proto.errors import DecryptError, IllegalParameter, InternalError
from tlslab.proto.signatures import (TLS13_CERTVERIFY_SCHEMES, certificate_verify_input,
                                     schemes_for_key, sign, verify)

from conftest import vector_path as _vector_path


def load(name: str) -> dict:
    return json.loads(_vector_path(name).read_text())


def _leaf_der(certificate_msg: bytes) -> bytes:
    """First cert_data of a TLS 1.3 Certificate message (RFC 8446 §4.4.2)."""
    assert certificate_msg[0] == 11
    ctx_len = certificate_msg[4]
    pos = 5 + ctx_len + 3
    cert_len = int.from_bytes(certificate_msg[pos:pos + 3], "big")
    return certificate_msg[pos + 3:pos + 3 + cert_len]


def _cert_verify(msg: bytes) -> tuple[int, bytes]:
    assert msg[0] == 15
    scheme = int.from_bytes(msg[4:6], "big")
    length = int.from_bytes(msg[6:8], "big")
    return scheme, msg[8:8 + length]


def _rfc8448_rsa_key() -> rsa.RSAPrivateKey:
    n = {k: int(v, 16) for k, v in load("rfc8448_private_keys.json")["named"].items()}
    public = rsa.RSAPublicNumbers(n["public_exponent"], n["modulus"])
    return rsa.RSAPrivateNumbers(n["prime1"], n["prime2"], n["private_exponent"], n["exponent1"],
                                 n["exponent2"], n["coefficient"], public).private_key()


@pytest.mark.parametrize("filename,ch_part", [
    ("rfc8448_simple_1rtt.json", ["client_hello"]),
    ("rfc8448_hello_retry_request.json", ["client_hello_1", "hello_retry_request",
                                          "client_hello_2"]),
])
def test_rfc8448_certificate_verify(filename, ch_part):
    n = {k: bytes.fromhex(v) for k, v in load(filename)["named"].items()}
    cert = x509.load_der_x509_certificate(_leaf_der(n["server_certificate"]))
    h = hashlib.sha256()
    for name in ch_part:
        h.update(n[name])
        if name == "client_hello_1":   # §4.4.1 message_hash after a HelloRetryRequest
            h = hashlib.sha256(b"\xfe\x00\x00\x20" + h.digest())
    h.update(n["server_hello"] + n["encrypted_extensions"] + n["server_certificate"])
    scheme, signature = _cert_verify(n["server_certificate_verify"])
    assert scheme == sig.RSA_PSS_RSAE_SHA256
    data = certificate_verify_input(h.digest(), server=True)
    verify(cert, scheme, data, signature)
    verify(cert.public_key(), scheme, data, signature)
    with pytest.raises(DecryptError):
        verify(cert, scheme, certificate_verify_input(h.digest(), server=False), signature)
    bad = bytearray(signature)
    bad[10] ^= 0x40
    with pytest.raises(DecryptError):
        verify(cert, scheme, data, bytes(bad))

    # The RFC 8448 private key is the certificate's, and our PSS signatures verify with it.
    key = _rfc8448_rsa_key()
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    # A 1024-bit modulus is too short for PSS with SHA-512 and a 64-byte salt.
    assert schemes_for_key(cert) == [sig.RSA_PSS_RSAE_SHA256, sig.RSA_PSS_RSAE_SHA384]
    for s in schemes_for_key(key):
        verify(cert, s, data, sign(key, s, data))


def test_illustrated_certificate_verify():
    vec = load("illustrated_tls13.json")
    recs = vec["records"]
    inner = {r["index"]: bytes.fromhex(r["inner_plaintext"])[:-1] for r in recs if r["protected"]}
    transcript = (bytes.fromhex(recs[0]["record"])[5:] + bytes.fromhex(recs[1]["record"])[5:]
                  + inner[3] + inner[4])
    cert = x509.load_der_x509_certificate(_leaf_der(inner[4]))
    assert cert.public_bytes(Encoding.DER).hex() == \
        vec["named"]["server_certificate_der"]
    scheme, signature = _cert_verify(inner[5])
    data = certificate_verify_input(hashlib.sha384(transcript).digest(), server=True)
    verify(cert, scheme, data, signature)
    with pytest.raises(DecryptError):
        verify(cert, scheme, data + b"x", signature)


def test_certificate_verify_input_layout():
    th = bytes(range(32))
    out = certificate_verify_input(th, server=False)
    assert out == b" " * 64 + b"TLS 1.3, client CertificateVerify" + b"\x00" + th
    assert certificate_verify_input(th, True)[64:97] == b"TLS 1.3, server CertificateVerify"


KEYS = {
    "p256": ec.generate_private_key(ec.SECP256R1()),
    "p384": ec.generate_private_key(ec.SECP384R1()),
    "p521": ec.generate_private_key(ec.SECP521R1()),
    "rsa": rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "ed448": ed448.Ed448PrivateKey.generate(),
}


@pytest.mark.parametrize("name,expected", [
    ("p256", [0x0403]), ("p384", [0x0503]), ("p521", [0x0603]),
    ("rsa", [0x0804, 0x0805, 0x0806]), ("ed25519", [0x0807]), ("ed448", [0x0808]),
])
def test_schemes_for_key_and_round_trip(name, expected):
    key = KEYS[name]
    assert schemes_for_key(key) == expected
    assert schemes_for_key(key.public_key()) == expected
    for scheme in expected:
        assert scheme in TLS13_CERTVERIFY_SCHEMES
        signature = sign(key, scheme, b"data")
        verify(key.public_key(), scheme, b"data", signature)
        with pytest.raises(DecryptError):
            verify(key.public_key(), scheme, b"other", signature)
        with pytest.raises(DecryptError):
            verify(key.public_key(), scheme, b"data", signature[:-1] + bytes([signature[-1] ^ 1]))


def test_scheme_must_fit_key():
    p256 = KEYS["p256"]
    s = sign(p256, sig.ECDSA_SECP256R1_SHA256, b"d")
    with pytest.raises(IllegalParameter):          # §4.2.3: the curve is part of the scheme
        verify(p256.public_key(), sig.ECDSA_SECP384R1_SHA384, b"d", s)
    with pytest.raises(IllegalParameter):
        verify(p256.public_key(), sig.RSA_PSS_RSAE_SHA256, b"d", s)
    with pytest.raises(IllegalParameter):
        verify(KEYS["rsa"].public_key(), sig.ED25519, b"d", s)
    with pytest.raises(IllegalParameter):          # rsaEncryption key with an rsa_pss_pss scheme
        verify(KEYS["rsa"].public_key(), sig.RSA_PSS_PSS_SHA256, b"d", s)
    with pytest.raises(IllegalParameter):          # no PKCS#1 v1.5 in TLS 1.3 CertificateVerify
        verify(KEYS["rsa"].public_key(), sig.RSA_PKCS1_SHA256, b"d", s)
    with pytest.raises(IllegalParameter):
        verify(p256.public_key(), 0x0904, b"d", s)
    with pytest.raises(InternalError):
        sign(p256, sig.ECDSA_SECP521R1_SHA512, b"d")
    with pytest.raises(InternalError):
        sign(KEYS["rsa"], sig.RSA_PKCS1_SHA1, b"d", tls13=False)


def test_tls12_style_verification():
    """With tls13=False: PKCS#1 v1.5, SHA-1 and curve-independent ECDSA hashes verify."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    rsa_key, p256 = KEYS["rsa"], KEYS["p256"]
    for scheme, h in [(sig.RSA_PKCS1_SHA256, hashes.SHA256()), (sig.RSA_PKCS1_SHA1, hashes.SHA1())]:
        signature = rsa_key.sign(b"d", padding.PKCS1v15(), h)
        verify(rsa_key.public_key(), scheme, b"d", signature, tls13=False)
        with pytest.raises(DecryptError):
            verify(rsa_key.public_key(), scheme, b"e", signature, tls13=False)
    assert len(sign(rsa_key, sig.RSA_PKCS1_SHA384, b"d", tls13=False)) == 256
    signature = p256.sign(b"d", ec.ECDSA(hashes.SHA384()))
    verify(p256.public_key(), sig.ECDSA_SECP384R1_SHA384, b"d", signature, tls13=False)
    signature = p256.sign(b"d", ec.ECDSA(hashes.SHA1()))
    verify(p256.public_key(), sig.ECDSA_SHA1, b"d", signature, tls13=False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_rsassa_pss_certificate(tmp_path):
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key_file)], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", str(key_file), "-subj", "/CN=pss",
                    "-days", "1", "-out", str(cert_file)], check=True, capture_output=True)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_file.read_bytes(), None)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert schemes_for_key(cert) == [sig.RSA_PSS_PSS_SHA256, sig.RSA_PSS_PSS_SHA384,
                                     sig.RSA_PSS_PSS_SHA512]
    signature = sign(key, sig.RSA_PSS_PSS_SHA256, b"d")
    verify(cert, sig.RSA_PSS_PSS_SHA256, b"d", signature)
    with pytest.raises(IllegalParameter):           # rsae scheme with an RSASSA-PSS key
        verify(cert, sig.RSA_PSS_RSAE_SHA256, b"d", signature)


# -- the key family of a type is looked up once (signatures._FAMILIES) -------------------
class _WrappedP256(ec.EllipticCurvePrivateKey):
    """A key class of the application's own (as an HSM binding would have), not a backend type."""

    def __init__(self, inner):
        self._inner = inner

    curve = property(lambda self: self._inner.curve)
    key_size = property(lambda self: self._inner.key_size)

    def sign(self, data, algorithm):
        return self._inner.sign(data, algorithm)

    def public_key(self):
        return self._inner.public_key()

    def exchange(self, *a):
        return self._inner.exchange(*a)

    def private_bytes(self, *a):
        return self._inner.private_bytes(*a)

    def private_numbers(self):
        return self._inner.private_numbers()

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class _NotAKey:
    curve = ec.SECP256R1()


def test_key_families_of_new_types_are_found_and_kept_apart(monkeypatch):
    monkeypatch.setattr(sig, "_FAMILIES", {})
    wrapped = _WrappedP256(KEYS["p256"])
    for _ in range(2):  # the second time from the cache
        assert schemes_for_key(wrapped) == [sig.ECDSA_SECP256R1_SHA256]
        verify(KEYS["p256"].public_key(), sig.ECDSA_SECP256R1_SHA256, b"d",
               sign(wrapped, sig.ECDSA_SECP256R1_SHA256, b"d"))
        # an object with a curve but no key class of ours is refused, cached or not
        assert schemes_for_key(_NotAKey()) == []
        with pytest.raises(IllegalParameter, match="needs an ECDSA key"):
            verify(_NotAKey(), sig.ECDSA_SECP256R1_SHA256, b"d", b"s")
        with pytest.raises(IllegalParameter, match="needs an RSA key"):
            verify(KEYS["ed25519"].public_key(), sig.RSA_PSS_RSAE_SHA256, b"d", b"s")
    assert sig._FAMILIES[_NotAKey] == (None, False) and sig._FAMILIES[_WrappedP256] == ("ec", True)


def test_key_family_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(sig, "_FAMILIES", {})
    monkeypatch.setattr(sig, "_FAMILIES_MAX", 2)
    kinds = [type(f"Thing{i}", (), {}) for i in range(4)]
    for kind in kinds:
        assert schemes_for_key(kind()) == []
    # past the bound a type is classified each time, and still correctly
    assert len(sig._FAMILIES) == 2
    assert schemes_for_key(KEYS["ed448"]) == [sig.ED448]
    assert type(KEYS["ed448"]) not in sig._FAMILIES
