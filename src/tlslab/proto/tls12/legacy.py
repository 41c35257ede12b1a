"""What TLS 1.0 and TLS 1.1 do differently from TLS 1.2, in one place.

Both sides of tlslab speak TLS 1.0 (RFC 2246) and TLS 1.1 (RFC 4346): the client to
probe old servers, the server only when its configuration lists those versions (the
lab reproduces old servers with it).  Everything else is shared with TLS 1.2 and
parameterised by the version where it already lives:

* the PRF (P_MD5 XOR P_SHA-1, RFC 2246 §5) and the MD5 + SHA-1 handshake hash:
  :mod:`.prf`;
* CBC with an implicit, chained IV (TLS 1.0) or an explicit one (TLS 1.1):
  :mod:`.protection`;
* the ServerKeyExchange layout without a SignatureAndHashAlgorithm: :mod:`.keyexchange`;
* CertificateRequest / CertificateVerify without signature algorithms:
  :mod:`..messages12`.

What is left is here: which suites exist before TLS 1.2, and the fixed signature
algorithms of the versions that had no ``signature_algorithms`` extension.
"""
from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ..errors import DecryptError, InternalError, UnsupportedCertificate

TLS1_2 = 0x0303

#: certificate_types a TLS 1.0/1.1 server asks for (RFC 2246 §7.4.4, RFC 4492 §5.5)
RSA_SIGN = 1
ECDSA_SIGN = 64


class _MD5SHA1(hashes.HashAlgorithm):
    """OpenSSL's "md5-sha1" digest: MD5(m) || SHA-1(m), 36 bytes.

    Used only as the label of a pre-hashed value: with it, OpenSSL's PKCS#1 v1.5 RSA
    signature leaves out the DigestInfo, which is what RFC 2246 §4.7 specifies.
    """

    name = "md5-sha1"
    digest_size = 36
    block_size = 64


def suite_usable(suite, version: int) -> bool:
    """Whether ``suite`` exists at ``version``: AEAD and SHA-256/384 suites were defined
    with TLS 1.2 and cannot be used before it (RFC 5246 Appendix A.5, RFC 5288 §4,
    RFC 5289 §3); CBC-SHA (and 3DES / RC4) suites work from TLS 1.0 on."""
    return suite.min_version <= version


def signature_name(key) -> str:
    """How a TLS 1.0/1.1 signature with ``key`` is made, for traces: ``rsa_md5_sha1``
    or ``ecdsa_sha1`` (these are not code points: the versions had none)."""
    pub = _public(key)
    if isinstance(pub, rsa.RSAPublicKey):
        return "rsa_md5_sha1"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return "ecdsa_sha1"
    raise UnsupportedCertificate(f"a {type(pub).__name__.replace('PublicKey', '')} key cannot sign "
                                 "in TLS 1.0/1.1 (RSA or ECDSA only, RFC 2246 §7.4.3, RFC 4492 §5.4)")


def check_signing_key(key) -> None:
    """TLS 1.0/1.1 sign only with RSA or ECDSA keys; EdDSA came with TLS 1.2 (RFC 8422
    §5.1.3), and an RSASSA-PSS certificate key (RFC 4055) cannot make the PKCS#1 v1.5
    signature these versions use.  UnsupportedCertificate otherwise."""
    signature_name(key)
    from cryptography import x509
    from cryptography.x509.oid import PublicKeyAlgorithmOID
    if isinstance(key, x509.Certificate) and key.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS:
        raise UnsupportedCertificate("an RSASSA-PSS certificate key cannot sign in TLS 1.0/1.1")


def sign(private_key, data: bytes) -> bytes:
    """A TLS 1.0/1.1 ``digitally-signed`` value over ``data`` (RFC 2246 §4.7, §7.4.3;
    RFC 4492 §5.4): RSA signs MD5(data) || SHA-1(data) with PKCS#1 v1.5 padding and no
    DigestInfo; ECDSA signs SHA-1(data).  Used for ServerKeyExchange (data = randoms +
    params) and CertificateVerify (data = the handshake messages, RFC 2246 §7.4.8)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        digest = hashlib.md5(data).digest() + hashlib.sha1(data).digest()
        try:
            return private_key.sign(digest, padding.PKCS1v15(), utils.Prehashed(_MD5SHA1()))
        except UnsupportedAlgorithm:
            raise InternalError("this cryptography/OpenSSL cannot make MD5+SHA-1 RSA signatures, "
                                "which TLS 1.0/1.1 need") from None
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA1()))
    raise InternalError("TLS 1.0/1.1 signatures need an RSA or ECDSA private key")


def verify(public_key, data: bytes, signature: bytes, what: str) -> None:
    """Check a TLS 1.0/1.1 signature made as :func:`sign` describes; ``public_key`` may be
    a certificate.  DecryptError when it does not verify (RFC 5246 §7.2.2 decrypt_error,
    the same alert TLS 1.2 uses), UnsupportedCertificate for a key that cannot sign in
    these versions.  ``what`` names the message in the error."""
    pub = _public(public_key)
    check_signing_key(pub)
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            recovered = pub.recover_data_from_signature(signature, padding.PKCS1v15(), None)
            expected = hashlib.md5(data).digest() + hashlib.sha1(data).digest()
            if not hmac.compare_digest(recovered, expected):
                raise InvalidSignature
        else:
            pub.verify(signature, data, ec.ECDSA(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        raise DecryptError(f"{what} signature does not verify") from None


def _public(key):
    """The public key of a certificate or private key; a public key as it is."""
    return key.public_key() if hasattr(key, "public_key") else key


__all__ = ["suite_usable", "signature_name", "check_signing_key", "sign", "verify",
           "RSA_SIGN", "ECDSA_SIGN"]
