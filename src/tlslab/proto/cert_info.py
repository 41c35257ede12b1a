"""Certificate facts for evidence and checks: names, keys, signature algorithms, SANs,
validity (RFC 5280 §4.1, §4.2.1.6), and a short JSON-able description."""
from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import SignatureAlgorithmOID


_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

_SIG_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsa-with-SHA1",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa-with-SHA256",
    SignatureAlgorithmOID.ED25519: "Ed25519",
    SignatureAlgorithmOID.ED448: "Ed448",
}

def _dn(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty DN)"


def _key_description(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__.lstrip("_")


def _public_key(cert: x509.Certificate) -> Any:
    try:
        return cert.public_key()
    except Exception:  # unknown SPKI algorithm (e.g. GOST, ML-DSA on old builds)
        return None


def _signature_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    name = _SIG_NAMES.get(oid, oid.dotted_string)
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        h = _signature_hash(cert)
        if h is not None:
            name = f"{name} ({h.name.upper()})"
    return name


def _signature_hash(cert: x509.Certificate) -> hashes.HashAlgorithm | None:
    try:
        return cert.signature_hash_algorithm
    except Exception:
        return None


def _san_entries(cert: x509.Certificate) -> list[x509.GeneralName] | None:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return None


def _san_strings(cert: x509.Certificate) -> list[str]:
    out = []
    for gn in _san_entries(cert) or []:
        if isinstance(gn, x509.DNSName):
            out.append(f"DNS:{gn.value}")
        elif isinstance(gn, x509.IPAddress):
            out.append(f"IP:{gn.value}")
        elif isinstance(gn, x509.RFC822Name):
            out.append(f"email:{gn.value}")
        elif isinstance(gn, x509.UniformResourceIdentifier):
            out.append(f"URI:{gn.value}")
        else:
            out.append(f"{type(gn).__name__}:{gn.value}")
    return out


def _iso(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def describe_certificate(cert: x509.Certificate) -> dict[str, Any]:
    """A short JSON-able summary of ``cert`` for the trace and for error evidence.

    Keys: subject, issuer (RFC 4514 strings), serial (hex), not_before,
    not_after (ISO 8601 UTC), san (``DNS:``/``IP:`` strings), key (e.g.
    "ECDSA P-256", "RSA 2048", "Ed25519"), signature_algorithm, is_ca,
    self_issued and sha256 (colon-separated fingerprint as ``openssl x509
    -fingerprint -sha256`` prints it).
    """
    fp = cert.fingerprint(hashes.SHA256()).hex().upper()
    return {
        "subject": _dn(cert.subject),
        "issuer": _dn(cert.issuer),
        "serial": format(cert.serial_number, "x"),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "san": _san_strings(cert),
        "key": _key_description(_public_key(cert)),
        "signature_algorithm": _signature_name(cert),
        "is_ca": _is_ca(cert),
        "self_issued": cert.issuer == cert.subject,
        "sha256": ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)),
    }


# --------------------------------------------------------------------------- analysis helpers


def _utc(now: datetime.datetime) -> datetime.datetime:
    if now.tzinfo is None:
        return now.replace(tzinfo=datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc)


def _fmt_time(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _time_valid(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _spki(cert: x509.Certificate) -> bytes | None:
    key = _public_key(cert)
    if key is None:
        return None
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
