"""Throwaway test PKI: a one-off CA and a server leaf signed by it.

Used by ``tlslab demo``, ``tlslab serve`` without ``--cert`` and by tests.  The
output follows the RFC 5280 profile closely enough for strict verifiers
(``cryptography.x509.verification``, ``openssl verify``): the CA carries
basicConstraints CA:TRUE (critical) and keyUsage keyCertSign/cRLSign, every
certificate has a subjectKeyIdentifier and the leaf an authorityKeyIdentifier
(RFC 5280 §4.2.1.1-2), and the leaf names its identities only in
subjectAltName (RFC 6125 §6.4.4: CN is not used for matching) with the
serverAuth extended key usage.

Keys are generated fresh on each call and are for local testing only.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Iterable, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KEY_TYPES", "make_throwaway_chain", "write_pem"]

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]

KEY_TYPES = ("ecdsa-p256", "rsa2048", "ed25519")

_ORG = "tlslab throwaway"


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def _sign_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    # Ed25519 signs the message itself (RFC 8410 §6): no separate digest.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        text = name.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            out.append(x509.DNSName(text.rstrip(".").lower()))
    return out


def _serial() -> int:
    # RFC 5280 §4.1.2.2: positive, at most 20 octets; 64+ bits of randomness as CAs do.
    return int.from_bytes(os.urandom(16), "big") >> 1 or 1


def make_throwaway_chain(
    names: Iterable[str] = ("localhost", "127.0.0.1", "::1"),
    key_type: str = "ecdsa-p256",
    now: datetime.datetime | None = None,
) -> tuple[list[x509.Certificate], PrivateKey, x509.Certificate]:
    """Create a throwaway CA and a server certificate for ``names``.

    ``names`` may mix DNS names and IPv4/IPv6 literals; each becomes a dNSName
    or iPAddress subjectAltName entry.  Both keys use ``key_type``
    ("ecdsa-p256", "rsa2048" or "ed25519").  Validity is ``now - 1h`` to
    ``now + 30 days`` (``now`` defaults to the current UTC time).

    Returns ``(chain, leaf_private_key, ca_cert)`` where ``chain`` is what a
    server sends in its Certificate message (RFC 8446 §4.4.2): the leaf only,
    since the CA is the trust anchor the client is given.
    """
    names = list(names)
    if not names:
        raise ValueError("at least one name is needed for the certificate")
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = _new_key(key_type)
    leaf_key = _new_key(key_type)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            # A unique name per CA: a client still trusting an older throwaway
            # CA then sees "unknown issuer", not a same-name key mismatch.
            x509.NameAttribute(NameOID.COMMON_NAME, f"tlslab throwaway CA {os.urandom(4).hex()}"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, _sign_hash(ca_key))
    )

    sans = _general_names(names)
    first_dns = next((g.value for g in sans if isinstance(g, x509.DNSName)), None)
    leaf_cn = first_dns or str(sans[0].value)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                    x509.NameAttribute(NameOID.COMMON_NAME, leaf_cn[:64]),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # keyEncipherment only matters for TLS 1.2 RSA key transport.
                key_encipherment=isinstance(leaf_key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        # RFC 5280 §4.2.1.6: critical only when the subject is empty; it is not.
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, _sign_hash(ca_key))
    )
    return [leaf], leaf_key, ca_cert


def write_pem(
    chain: list[x509.Certificate],
    key: PrivateKey,
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> None:
    """Write ``chain`` (leaf first) as a PEM bundle and ``key`` as unencrypted PKCS#8 PEM.

    The key file is created with mode 0600.
    """
    with open(cert_path, "wb") as f:
        for cert in chain:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
