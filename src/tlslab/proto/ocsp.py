"""Checking a stapled OCSP response (RFC 6066 §8, RFC 8446 §4.4.2.1, RFC 6960 §3.2).

The client asks for a staple with status_request; what comes back is checked
here: it must be a successful response about *our* leaf, signed by the leaf's
issuer (or by a responder the issuer delegated to with the OCSPSigning EKU),
and current.  A "revoked" answer fails the handshake with certificate_revoked;
an unusable response with bad_certificate_status_response.  "unknown" is
reported but not fatal (the certificate path was already validated).
"""
from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from .errors import BadCertificateStatusResponse, CertificateRevoked


#: allowed clock skew when comparing thisUpdate / nextUpdate with now
SKEW = datetime.timedelta(minutes=5)


def check_stapled_response(der: bytes, chain: list[x509.Certificate],
                           now: datetime.datetime) -> dict:
    """Validate a stapled response for ``chain[0]``; returns a summary for the trace.

    Raises :class:`CertificateRevoked` or :class:`BadCertificateStatusResponse`.
    """
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError as e:
        raise BadCertificateStatusResponse(f"stapled OCSP response is not valid DER: {e}") from None
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise BadCertificateStatusResponse(f"stapled OCSP response status is {resp.response_status.name}")
    leaf = chain[0]
    # the verified path holds the issuer (for a trusted self-issued leaf, the leaf itself)
    issuer = next((c for c in chain[1:] if c.subject == leaf.issuer),
                  leaf if leaf.subject == leaf.issuer else None)
    if issuer is None:
        # RFC 6960 §3.2: a response whose signature cannot be checked is unusable; trusting
        # its "good" (or "revoked") would let anyone on the path write it
        raise BadCertificateStatusResponse("stapled OCSP response cannot be checked: the "
                                           "issuer of the server's certificate is not in the chain")
    if resp.serial_number != leaf.serial_number:
        raise BadCertificateStatusResponse("stapled OCSP response is about another certificate "
                                           f"(serial {resp.serial_number:x}, ours {leaf.serial_number:x})")
    if not _same_cert_id(resp, leaf, issuer):
        # RFC 6960 §4.1.1: a CertID is the issuer's name and key hashes plus the serial;
        # serials are unique only per issuer
        raise BadCertificateStatusResponse("stapled OCSP response is about a certificate of "
                                           "another issuer (its issuer name or key hash differs)")
    summary = {"status": resp.certificate_status.name.lower(),
               "this_update": resp.this_update_utc.isoformat(),
               "next_update": resp.next_update_utc.isoformat() if resp.next_update_utc else None}
    signer = _signer(resp, issuer)
    try:
        _verify(signer.public_key(), resp)
    except (InvalidSignature, ValueError, TypeError):
        raise BadCertificateStatusResponse("stapled OCSP response signature does not verify") from None
    summary["signature"] = "valid" if signer is issuer else "valid (delegated responder)"
    now = now.astimezone(datetime.timezone.utc)
    if resp.this_update_utc > now + SKEW:
        raise BadCertificateStatusResponse(f"stapled OCSP response is not valid before {resp.this_update_utc}")
    if resp.next_update_utc is not None and resp.next_update_utc < now - SKEW:
        raise BadCertificateStatusResponse(f"stapled OCSP response expired on {resp.next_update_utc}")
    if resp.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        reason = resp.revocation_reason.name if resp.revocation_reason else "unspecified"
        raise CertificateRevoked(f"the server's certificate was revoked on {resp.revocation_time_utc} "
                                 f"(reason: {reason}), says its stapled OCSP response")
    return summary


def _same_cert_id(resp: ocsp.OCSPResponse, leaf: x509.Certificate,
                  issuer: x509.Certificate) -> bool:
    """Whether the response's CertID names ``leaf`` as issued by ``issuer`` (the library
    computes the issuer hashes of a request built for them, with the response's hash)."""
    try:
        want = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, resp.hash_algorithm).build()
    except Exception:  # a hash the library cannot use in a CertID (UnsupportedAlgorithm, ...)
        return False  # cannot be matched, so not usable
    return (want.issuer_name_hash == resp.issuer_name_hash
            and want.issuer_key_hash == resp.issuer_key_hash)


def _signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate:
    """The issuer itself, or a delegated responder certificate it issued (RFC 6960 §4.2.2.2)."""
    for cert in resp.certificates:
        if cert.issuer == issuer.subject:
            try:
                eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
                try:
                    cert.verify_directly_issued_by(issuer)
                except (InvalidSignature, ValueError, TypeError):
                    continue
                return cert
    return issuer


def _verify(public_key, resp: ocsp.OCSPResponse) -> None:
    algo = resp.signature_hash_algorithm
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algo)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(algo))
    else:
        public_key.verify(resp.signature, resp.tbs_response_bytes)
