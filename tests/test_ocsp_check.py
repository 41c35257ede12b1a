"""The stapled OCSP response check (RFC 6960 via RFC 6066 §8): good, revoked, foreign, forged, stale."""
from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tlslab.proto.errors import BadCertificateStatusResponse, CertificateRevoked
from tlslab.proto.ocsp import check_stapled_response


@pytest.fixture(scope="module")
def pki(certs_dir):
    leaf = x509.load_pem_x509_certificate((certs_dir / "ecdsa.pem").read_bytes())
    inter = x509.load_pem_x509_certificate((certs_dir / "intermediate.pem").read_bytes())
    key = serialization.load_pem_private_key((certs_dir / "intermediate.key").read_bytes(), None)
    other = x509.load_pem_x509_certificate((certs_dir / "rsa.pem").read_bytes())
    now = leaf.not_valid_before_utc + datetime.timedelta(days=1)
    return {"leaf": leaf, "inter": inter, "key": key, "other": other, "now": now}


def response(pki, status=ocsp.OCSPCertStatus.GOOD, cert=None, key=None, this=None, nxt=None,
             revoked_at=None):
    now = pki["now"]
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=cert or pki["leaf"], issuer=pki["inter"], algorithm=hashes.SHA256(), cert_status=status,
        this_update=this or now - datetime.timedelta(hours=1),
        next_update=nxt or now + datetime.timedelta(days=1),
        revocation_time=revoked_at, revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, pki["inter"])
    return b.sign(key or pki["key"], hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_good_response(pki):
    summary = check_stapled_response(response(pki), [pki["leaf"], pki["inter"]], pki["now"])
    assert summary["status"] == "good" and summary["signature"] == "valid"


def test_revoked_is_fatal(pki):
    der = response(pki, ocsp.OCSPCertStatus.REVOKED, revoked_at=pki["now"] - datetime.timedelta(days=1))
    with pytest.raises(CertificateRevoked, match="revoked"):
        check_stapled_response(der, [pki["leaf"], pki["inter"]], pki["now"])
    assert CertificateRevoked.alert.name == "certificate_revoked"


def test_response_about_another_certificate(pki):
    with pytest.raises(BadCertificateStatusResponse, match="another certificate"):
        check_stapled_response(response(pki, cert=pki["other"]), [pki["leaf"], pki["inter"]], pki["now"])


def test_forged_signature(pki):
    der = bytearray(response(pki))
    der[-3] ^= 0x01  # inside the signature, which ends the BasicOCSPResponse (no certs attached)
    forged = bytes(der)
    with pytest.raises(BadCertificateStatusResponse, match="signature"):
        check_stapled_response(forged, [pki["leaf"], pki["inter"]], pki["now"])


def test_expired_response(pki):
    old = response(pki, this=pki["now"] - datetime.timedelta(days=3), nxt=pki["now"] - datetime.timedelta(days=2))
    with pytest.raises(BadCertificateStatusResponse, match="expired"):
        check_stapled_response(old, [pki["leaf"], pki["inter"]], pki["now"])


def test_garbage(pki):
    with pytest.raises(BadCertificateStatusResponse):
        check_stapled_response(b"\x30\x03\x0a\x01\x00garbage", [pki["leaf"], pki["inter"]], pki["now"])


def test_unverifiable_response_is_not_used(pki):
    """Review finding: with the issuer missing from the chain the response used to be taken
    unsigned; RFC 6960 §3.2 makes an unverifiable response unusable."""
    with pytest.raises(BadCertificateStatusResponse, match="cannot be checked"):
        check_stapled_response(response(pki), [pki["leaf"]], pki["now"])


def test_response_about_same_serial_of_another_issuer(pki):
    """The CertID is issuer name hash + key hash + serial (RFC 6960 §4.1.1): the right serial
    under another issuer's hashes is about another certificate."""
    now = pki["now"]
    der = ocsp.OCSPResponseBuilder().add_response(
        cert=pki["leaf"], issuer=pki["other"], algorithm=hashes.SHA256(),
        cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now - datetime.timedelta(hours=1),
        next_update=now + datetime.timedelta(days=1), revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, pki["inter"]).sign(
        pki["key"], hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    with pytest.raises(BadCertificateStatusResponse, match="another issuer"):
        check_stapled_response(der, [pki["leaf"], pki["inter"]], pki["now"])
