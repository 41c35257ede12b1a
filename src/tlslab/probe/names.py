"""Distinguished names from a CertificateRequest, as text.

RFC 8446 §4.2.4 and RFC 5246 §7.4.4 send the acceptable CAs as DER-encoded X.501
``Name`` values.  ``cryptography`` loads names only inside certificates and CSRs, so a
name is placed as the subject of a template CSR and read back through the library (the
signature of such a CSR is never checked, only its structure): the DER itself is parsed
by ``cryptography``, not here.
"""
from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

_PLACEHOLDER = "tlslab-dn-placeholder-0123456789"


def _der_length(n: int) -> bytes:
    """X.690 §8.1.3 definite length octets."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _sequence(content: bytes) -> bytes:
    return b"\x30" + _der_length(len(content)) + content


def _header_length(der: bytes, at: int) -> int:
    """Length of the tag + length octets of the element at ``at`` (one-byte tag)."""
    first = der[at + 1]
    return 2 + (first & 0x7F if first & 0x80 else 0)


@functools.lru_cache(maxsize=1)
def _template() -> tuple[bytes, bytes, bytes]:
    """(CertificationRequestInfo before subject, after subject, signature part) of a CSR
    whose subject is a placeholder name (RFC 2986 §4.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _PLACEHOLDER)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    der = csr.public_bytes(Encoding.DER)
    subject = name.public_bytes()
    info_at = _header_length(der, 0)
    info_len = _header_length(der, info_at)
    info_body_at = info_at + info_len
    start = der.index(subject, info_body_at)
    info_end = info_at + info_len + int.from_bytes(
        der[info_at + 2:info_at + info_len], "big") if der[info_at + 1] & 0x80 else \
        info_at + 2 + der[info_at + 1]
    return der[info_body_at:start], der[start + len(subject):info_end], der[info_end:]


def dn_text(der: bytes) -> str:
    """RFC 4514 text of a DER Name, or a short hex note when it is not a Name."""
    if not 2 <= len(der) <= 4096:
        return f"(a name of {len(der)} bytes)"
    before, after, signature = _template()
    try:
        csr = x509.load_der_x509_csr(_sequence(_sequence(before + der + after) + signature))
        return csr.subject.rfc4514_string() or "(empty name)"
    except ValueError:
        return f"(undecodable name: {der[:24].hex()}{'…' if len(der) > 24 else ''})"
