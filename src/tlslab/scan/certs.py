"""The certificate chains a server sends, and how a client would judge them.

A server can hold several chains and pick one by key type (RSA, ECDSA, EdDSA) or by the
name in SNI.  TLS 1.0-1.2 chains come in clear with the first answers; a TLS 1.3 chain
only inside a completed handshake, asked for once per signature family (RFC 8446 §4.4.2.2:
the server picks its certificate by signature_algorithms).  Each chain is then checked as
diagnose checks it (:func:`tlslab.diagnose.chain.analyse_chain`) for the reference client.
"""
from __future__ import annotations

import datetime
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes

#: TLS 1.3 signature families, each asked in its own handshake (IANA names)
FAMILIES13 = {
    "ECDSA": ("ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384", "ecdsa_secp521r1_sha512"),
    "RSA": ("rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512",
            "rsa_pss_pss_sha256", "rsa_pss_pss_sha384", "rsa_pss_pss_sha512"),
    "EdDSA": ("ed25519", "ed448"),
}


def load_chain(ders: Iterable[bytes]) -> list[x509.Certificate]:
    out = []
    for der in ders:
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break  # a certificate we cannot read ends what can be judged
    return out


def pem(chain: list[x509.Certificate]) -> str:
    """The chain as sent, in PEM (leaf first), so that the document can be judged again."""
    from cryptography.hazmat.primitives.serialization import Encoding
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in chain)


def fingerprint(chain: list[x509.Certificate]) -> str:
    return chain[0].fingerprint(hashes.SHA256()).hex() if chain else ""


def judge(chain: list[x509.Certificate], *, name: str, trust: list, now: datetime.datetime,
          cache: dict) -> dict:
    """The chain as JSON: each certificate summarised, and the problems the reference
    client (the ``default`` profile: a current OpenSSL-based client) finds."""
    from ..diagnose.chain import analyse_chain, expiry_warning
    from ..profiles.model import load_profile
    from ..proto.cert_info import describe_certificate
    verifier = load_profile("default").verifier
    problems = analyse_chain(chain, name, trust, now, verifier, cache=cache) if chain else []
    doc = {
        "certificates": [describe_certificate(c) for c in chain],
        "trusted": not problems and bool(chain),
        "problems": [{"code": p.code, "summary": p.summary} for p in problems],
    }
    warning = expiry_warning(chain, now) if chain else None
    if warning:
        doc["expiry_warning"] = warning
    return doc
