"""A throwaway PKI that issues every kind of broken server certificate a diagnosis must
tell apart, next to a healthy one.

::

    from tlslab.lab.pki import make_pki, CERT_KINDS
    pki = make_pki(names=("localhost", "127.0.0.1", "::1"), key_type="ecdsa-p256")
    bundle = pki.server("missing-intermediate")
    files = bundle.write(tmp_dir)     # {"chain", "key", "ca", "leaf", "client_ca", ...}

Hierarchy (fresh keys on every :func:`make_pki`; for local tests only, never for anything
real): a root CA and an intermediate CA below it, both **RSA-2048** signing with
sha256WithRSAEncryption.  RSA CAs are chosen on purpose: every TLS stack verifies them,
and the SHA-1 kind can then be produced by swapping one AlgorithmIdentifier of the same
length (see :func:`_resign_sha1`).  Leaves use ``key_type`` (``ecdsa-p256``, ``rsa2048``,
``ed25519`` or ``ecdsa-p521``) unless the kind itself is about the key.  A second,
unrelated root and intermediate (created on first use) issue the ``untrusted-root`` leaf.

The healthy profile is the one strict verifiers accept (the same as
:mod:`tlslab.workbench.certgen`, whose helpers are reused):

* CAs: basicConstraints CA:TRUE, critical (RFC 5280 §4.2.1.9; pathLenConstraint 0 on the
  intermediate), keyUsage keyCertSign + cRLSign, critical (§4.2.1.3);
* every certificate has a subjectKeyIdentifier (§4.2.1.2) and, the roots' self-signature
  aside, an authorityKeyIdentifier naming its issuer's key (§4.2.1.1);
* leaves: basicConstraints CA:FALSE, keyUsage digitalSignature (+ keyEncipherment for RSA
  keys, used by TLS 1.2 static-RSA key transport), extendedKeyUsage serverAuth
  (§4.2.1.12), identities only in subjectAltName (§4.2.1.6; RFC 6125 §6.4.4: the CN is
  not used for matching), serials of 127 random bits (§4.1.2.2).

Each kind breaks exactly one thing (see :data:`CERT_KINDS`); the code that
:func:`tlslab.proto.certificates.verify_server_chain` gives it, and what ``openssl
verify`` says, are pinned by ``tests/test_lab_pki.py``.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ..workbench import certgen

__all__ = [
    "CERT_KINDS",
    "DEFAULT_AIA_URL",
    "KEY_TYPES",
    "PKI",
    "ServerCert",
    "make_pki",
]

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]

#: Leaf key types ``make_pki`` accepts.
KEY_TYPES = ("ecdsa-p256", "rsa2048", "ed25519", "ecdsa-p521")

#: Where the ``missing-intermediate`` leaf says its issuer can be fetched (RFC 5280
#: §4.2.2.1 caIssuers).  Port 1 on loopback: nothing answers unless a test serves the
#: intermediate there, so no client can quietly "fix" the chain by fetching it.
DEFAULT_AIA_URL = "http://127.0.0.1:1/intermediate.der"

#: Every kind :meth:`PKI.server` issues, with a one-line description.
CERT_KINDS: dict[str, str] = {
    "ok": "healthy: root -> intermediate -> leaf; the server sends leaf + intermediate",
    "expired": "the leaf expired 10 days ago (notAfter in the past, RFC 5280 §4.1.2.5)",
    "not-yet-valid": "the leaf becomes valid in 10 days (notBefore in the future)",
    "expiring-soon": "valid now, but the leaf expires in 10 days",
    "wrong-host": "subjectAltName names only www.example.net and other.test",
    "no-san": "the name is only in the subject CN; no subjectAltName extension",
    "self-signed": "the leaf signs itself (not a CA) and is in no trust store",
    "untrusted-root": "a complete chain, leaf + intermediate, from a second root the client does not trust",
    "missing-intermediate": "the server sends the leaf only; its AIA caIssuers URL points to the intermediate",
    "sha1": "the intermediate signed the leaf with sha1WithRSAEncryption",
    "rsa1024": "the leaf has an RSA-1024 key",
    "wrong-eku": "extendedKeyUsage is clientAuth only (no serverAuth)",
    "wrong-key-usage": "ECDSA leaf whose keyUsage is keyEncipherment only (no digitalSignature)",
    "client": "a client certificate (extendedKeyUsage clientAuth) from the same intermediate, for mTLS",
}

_ORG = "tlslab lab"
_DAY = datetime.timedelta(days=1)

# Validity windows relative to ``now``: (notBefore offset, notAfter offset).
_CA_VALIDITY = (-400 * _DAY, 3650 * _DAY)
_LEAF_VALIDITY = {
    "expired": (-100 * _DAY, -10 * _DAY),
    "not-yet-valid": (10 * _DAY, 100 * _DAY),
    "expiring-soon": (-80 * _DAY, 10 * _DAY),
}
_DEFAULT_LEAF_VALIDITY = (-datetime.timedelta(hours=1), 90 * _DAY)

_WRONG_HOST_NAMES = ("www.example.net", "other.test")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ServerCert:
    """One certificate kind, ready to configure a server (or, for ``client``, a client).

    ``chain`` is what the peer should *send* (leaf first; RFC 8446 §4.4.2), ``key`` the
    leaf's private key, ``trust`` the anchors a client is given (always the PKI's usual
    root: for ``self-signed`` and ``untrusted-root`` that is the point), ``client_ca``
    what a server should trust for client certificates.  ``issued_path`` is the path as
    issued, leaf to its real root, whatever is sent.  For ``missing-intermediate``,
    ``intermediate_der`` is the DER an HTTP server at ``aia_url`` should answer with.
    """

    kind: str
    description: str
    chain: list[x509.Certificate]
    key: PrivateKey
    trust: list[x509.Certificate]
    client_ca: list[x509.Certificate]
    issued_path: list[x509.Certificate]
    names: tuple[str, ...]
    aia_url: str | None = None
    intermediate_der: bytes | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    def write(self, directory: str | os.PathLike[str]) -> dict[str, str]:
        """Write the PEM files into ``directory`` (created if needed); return their paths.

        Keys: ``chain`` (as sent, leaf first), ``key`` (PKCS#8, mode 0600), ``ca`` (the
        client's trust anchors), ``leaf``, ``client_ca``, and ``intermediate`` (the
        certificates sent after the leaf) when there are any; ``intermediate_der`` for
        ``missing-intermediate``.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: str(out / f"{name}.pem") for name in ("chain", "key", "ca", "leaf", "client_ca")}
        # write_pem creates the key file 0600 but keeps the mode of one that exists:
        # remove it first so the key is never written into a wider file
        Path(paths["key"]).unlink(missing_ok=True)
        certgen.write_pem(self.chain, self.key, paths["chain"], paths["key"])
        _write_certs(paths["ca"], self.trust)
        _write_certs(paths["leaf"], self.chain[:1])
        _write_certs(paths["client_ca"], self.client_ca)
        if len(self.chain) > 1:
            paths["intermediate"] = str(out / "intermediate.pem")
            _write_certs(paths["intermediate"], self.chain[1:])
        if self.intermediate_der is not None:
            paths["intermediate_der"] = str(out / "intermediate.der")
            Path(paths["intermediate_der"]).write_bytes(self.intermediate_der)
        return paths


def _write_certs(path: str, certs: Iterable[x509.Certificate]) -> None:
    with open(path, "wb") as f:
        for cert in certs:
            f.write(cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class _CA:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass
class PKI:
    """A root CA, an intermediate CA below it, and the leaves :meth:`server` issues."""

    names: tuple[str, ...]
    key_type: str
    now: datetime.datetime
    aia_url: str
    root: x509.Certificate
    intermediate: x509.Certificate
    _root: _CA = field(repr=False)
    _intermediate: _CA = field(repr=False)
    _other: tuple[_CA, _CA] | None = field(default=None, repr=False)
    _cache: dict[tuple[str, str | None], ServerCert] = field(default_factory=dict, repr=False)

    @property
    def trust(self) -> list[x509.Certificate]:
        """The anchors a client should be given: the root."""
        return [self.root]

    @property
    def client_ca(self) -> list[x509.Certificate]:
        """What a server should trust for client certificates (the same root)."""
        return [self.root]

    @property
    def intermediate_der(self) -> bytes:
        """The intermediate in DER, as served at an AIA caIssuers URL (RFC 5280 §4.2.2.1)."""
        return self.intermediate.public_bytes(serialization.Encoding.DER)

    def server(self, kind: str = "ok", *, aia_url: str | None = None) -> ServerCert:
        """Issue (once per kind, then cached) the certificate of ``kind`` (see CERT_KINDS).

        ``aia_url`` overrides the PKI's caIssuers URL for ``missing-intermediate``.
        """
        if kind not in CERT_KINDS:
            raise ValueError(f"unknown certificate kind {kind!r}; choose one of {', '.join(CERT_KINDS)}")
        url = (aia_url or self.aia_url) if kind == "missing-intermediate" else None
        cached = self._cache.get((kind, url))
        if cached is None:
            cached = self._cache[(kind, url)] = self._issue(kind, url)
        return cached

    # ----------------------------------------------------------------------- issuing

    def _issue(self, kind: str, aia_url: str | None) -> ServerCert:
        inter, root = self._intermediate, self._root
        names = list(self.names)
        cn = _common_name(names)
        key_type = self.key_type
        eku = [ExtendedKeyUsageOID.SERVER_AUTH]
        key_usage: x509.KeyUsage | None = None
        san: list[str] | None = names
        extra_aia: str | None = None
        if kind == "untrusted-root":
            inter, root = self._other_ca()
        elif kind == "wrong-host":
            san = list(_WRONG_HOST_NAMES)
            cn = _WRONG_HOST_NAMES[0]
        elif kind == "no-san":
            san = None  # the name lives in the CN only (RFC 6125 §6.4.4: ignored when matching)
        elif kind == "rsa1024":
            key_type = "rsa1024"
        elif kind == "wrong-eku":
            eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
        elif kind == "wrong-key-usage":
            # ECDSA cannot encipher: keyEncipherment without digitalSignature means the key
            # may not sign a TLS handshake (RFC 5280 §4.2.1.3, RFC 8446 §4.4.2.2).
            key_type = "ecdsa-p521" if key_type == "ecdsa-p521" else "ecdsa-p256"
            key_usage = _key_usage(key_encipherment=True)
        elif kind == "missing-intermediate":
            extra_aia = aia_url
        elif kind == "client":
            eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
            san = None  # client certificates name their subject in the DN
            cn = f"{_ORG} client"

        key = _leaf_key(key_type)
        start, end = _LEAF_VALIDITY.get(kind, _DEFAULT_LEAF_VALIDITY)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, cn[:64]),
            ]
        )
        if key_usage is None:
            key_usage = _key_usage(
                digital_signature=True,
                # keyEncipherment only matters for TLS 1.2 RSA key transport
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
            )
        self_signed = kind == "self-signed"
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else inter.cert.subject)
            .public_key(key.public_key())
            .serial_number(certgen._serial())
            .not_valid_before(self.now + start)
            .not_valid_after(self.now + end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if san is not None:
            # RFC 5280 §4.2.1.6: critical only when the subject is empty; it is not.
            builder = builder.add_extension(
                x509.SubjectAlternativeName(certgen._general_names(san)), critical=False
            )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(inter.key.public_key()),
                critical=False,
            )
        if extra_aia is not None:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(extra_aia),
                        )
                    ]
                ),
                critical=False,  # RFC 5280 §4.2.2.1: MUST be non-critical
            )

        if self_signed:
            leaf = builder.sign(key, _sign_hash(key))
        elif kind == "sha1":
            leaf = _resign_sha1(builder.sign(inter.key, hashes.SHA256()), inter.key)
        else:
            leaf = builder.sign(inter.key, hashes.SHA256())

        issued_path = [leaf] if self_signed else [leaf, inter.cert, root.cert]
        if self_signed or kind == "missing-intermediate":
            chain = [leaf]
        else:
            chain = [leaf, inter.cert]
        return ServerCert(
            kind=kind,
            description=CERT_KINDS[kind],
            chain=chain,
            key=key,
            trust=self.trust,
            client_ca=self.client_ca,
            issued_path=issued_path,
            names=self.names,
            aia_url=extra_aia,
            intermediate_der=self.intermediate_der if kind == "missing-intermediate" else None,
        )

    def _other_ca(self) -> tuple[_CA, _CA]:
        if self._other is None:
            tag = os.urandom(4).hex()
            root = _make_ca(f"{_ORG} untrusted root CA {tag}", self.now)
            inter = _make_ca(f"{_ORG} untrusted intermediate CA {tag}", self.now, issuer=root)
            self._other = (inter, root)
        return self._other


# --------------------------------------------------------------------------- building blocks


def make_pki(
    names: Iterable[str] = ("localhost", "127.0.0.1", "::1"),
    key_type: str = "ecdsa-p256",
    now: datetime.datetime | None = None,
    aia_url: str = DEFAULT_AIA_URL,
) -> PKI:
    """A fresh root CA and intermediate CA (RSA-2048) issuing leaves for ``names``.

    ``names`` mixes DNS names and IPv4/IPv6 literals (each becomes a dNSName or
    iPAddress subjectAltName); ``key_type`` is the leaf key (:data:`KEY_TYPES`); validity
    periods are relative to ``now`` (default: the current UTC time; naive means UTC;
    truncated to the second).  ``aia_url`` is the caIssuers URL of the
    ``missing-intermediate`` leaf (:data:`DEFAULT_AIA_URL`).
    """
    names = tuple(names)
    if not names:
        raise ValueError("at least one name is needed for the certificates")
    if key_type not in KEY_TYPES:
        raise ValueError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    # X.509 times have whole seconds (RFC 5280 §4.1.2.5): ``pki.now + 10 days`` is then
    # exactly the notAfter written.
    now = now.replace(microsecond=0)
    # A unique name per PKI: a client still trusting an older lab root then sees
    # "unknown issuer", not a same-name key mismatch.
    tag = os.urandom(4).hex()
    root = _make_ca(f"{_ORG} root CA {tag}", now)
    inter = _make_ca(f"{_ORG} intermediate CA {tag}", now, issuer=root)
    return PKI(
        names=names,
        key_type=key_type,
        now=now,
        aia_url=aia_url,
        root=root.cert,
        intermediate=inter.cert,
        _root=root,
        _intermediate=inter,
    )


def _make_ca(common_name: str, now: datetime.datetime, issuer: _CA | None = None) -> _CA:
    """A root (``issuer`` None, self-signed) or an intermediate CA, RFC 5280 §4.2.1.9 /
    §4.2.1.3 profile: CA:TRUE and keyCertSign + cRLSign, both critical."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    signer = issuer.key if issuer else key
    start, end = _CA_VALIDITY
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(certgen._serial())
        .not_valid_before(now + start)
        .not_valid_after(now + end)
        # the intermediate may only issue leaves (pathLenConstraint 0); the root, one level
        .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else 1), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
        .sign(signer, hashes.SHA256())
    )
    return _CA(cert=cert, key=key)


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key(key_type: str) -> PrivateKey:
    if key_type == "ecdsa-p521":
        return ec.generate_private_key(ec.SECP521R1())
    if key_type == "rsa1024":
        # cryptography still generates 1024-bit RSA (its floor is 1024): exactly the weak
        # key the "weak-key" diagnosis is about.
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return certgen._new_key(key_type)


def _sign_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    # Ed25519 signs the message itself (RFC 8410 §6): no separate digest.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _common_name(names: list[str]) -> str:
    sans = certgen._general_names(names)
    first_dns = next((g.value for g in sans if isinstance(g, x509.DNSName)), None)
    return first_dns or str(sans[0].value)


# --------------------------------------------------------------------------- SHA-1 by hand

# AlgorithmIdentifier DER (RFC 3279 §2.2.1 / §2.2.3): sha1WithRSAEncryption has NULL
# parameters, ecdsa-with-SHA1 none.
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
_SHA1_ECDSA = bytes.fromhex("300906072a8648ce3d0401")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_elements(data: bytes) -> list[bytes]:
    """The TLV elements (single-byte tags, definite lengths: DER) concatenated in ``data``."""
    out, i = [], 0
    while i < len(data):
        first = data[i + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            n = first & 0x7F
            header, length = 2 + n, int.from_bytes(data[i + 2 : i + 2 + n], "big")
        out.append(data[i : i + header + length])
        i += header + length
    if i != len(data):
        raise ValueError("malformed DER")
    return out


def _strip_header(element: bytes) -> bytes:
    first = element[1]
    header = 2 if first < 0x80 else 2 + (first & 0x7F)
    return element[header:]


def _resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """``cert`` re-signed by ``issuer_key`` with SHA-1.

    cryptography (46+) refuses SHA-1 in ``CertificateBuilder.sign`` but its primitives
    still sign with it, so the certificate is rebuilt from its TBSCertificate (RFC 5280
    §4.1): both copies of the AlgorithmIdentifier (``TBSCertificate.signature`` and
    ``Certificate.signatureAlgorithm``, §4.1.1.2, which must match) become SHA-1, and the
    new TBS bytes are signed.
    """
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        alg = _SHA1_RSA
    elif isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        alg = _SHA1_ECDSA
    else:
        raise TypeError("SHA-1 signatures need an RSA or ECDSA issuer key")
    fields = _der_elements(_strip_header(cert.tbs_certificate_bytes))
    # TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, ... }
    index = 2 if fields[0][0] == 0xA0 else 1
    fields[index] = alg
    tbs = _der_tlv(0x30, b"".join(fields))
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    else:
        signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    # signatureValue is a BIT STRING: a leading 0x00 says no unused bits
    der = _der_tlv(0x30, tbs + alg + _der_tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)
