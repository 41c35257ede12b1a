"""TLS 1.3 client authentication steps, in the handshake and after it (RFC 8446 §4.3.2,
§4.4.2, §4.4.3, §4.6.2).

The same two steps serve a CertificateRequest inside the handshake and a post-handshake
one; only the transcript they sign or check differs, so it is passed in.
"""
from __future__ import annotations

from .errors import IllegalParameter
from .extensions import ET
from .messages import Certificate, CertificateVerify, certificate_entries
from .names import SignatureScheme, name_of
from .signatures import TLS13_CERTVERIFY_SCHEMES, certificate_verify_input, schemes_for_key, sign, verify


def answer_certificate_request(conn, cr, transcript) -> None:
    """A client's answer: our chain and CertificateVerify if a scheme the request allows fits
    our key, else an empty Certificate.  ``transcript`` is the one the CertificateVerify
    signs; it is updated with what is sent."""
    allowed = cr.ext_value(ET.signature_algorithms).supported_signature_algorithms
    cfg = conn.config
    scheme = None
    if cfg.certificate_chain and cfg.private_key is not None:
        scheme = next((s for s in schemes_for_key(cfg.certificate_chain[0])
                       if s in allowed and s in TLS13_CERTVERIFY_SCHEMES), None)
        if scheme is None:
            conn.trace.add("info", "local", "client certificate not sent",
                           detail="no signature scheme allowed by the CertificateRequest fits our key")
        else:
            cas = cr.ext_value(ET.certificate_authorities)
            if cas is not None and not _chain_matches(cfg.certificate_chain, cas.authorities):
                conn.trace.add("info", "local", "client certificate does not match certificate_authorities",
                               detail="sent anyway: the server may still accept it")
    else:
        conn.trace.add("info", "local", "server asked for a client certificate; none configured")
    entries = certificate_entries(cfg.certificate_chain) if scheme is not None else []
    transcript.update(conn._send_message(Certificate(
        certificate_request_context=cr.certificate_request_context, certificate_list=entries)))
    if scheme is not None:
        data = certificate_verify_input(transcript.digest(), server=False)
        transcript.update(conn._send_message(CertificateVerify(
            algorithm=scheme, signature=sign(cfg.private_key, scheme, data))))
        conn.negotiated["client_certificate"] = cfg.certificate_chain[0].subject.rfc4514_string()


def check_client_certificate_verify(conn, cr, transcript, msg) -> None:
    """A server's check of the client's signature, with a scheme the CertificateRequest
    allowed, over ``transcript`` (which is then updated with the message)."""
    offered = cr.ext_value(ET.signature_algorithms).supported_signature_algorithms
    if msg.algorithm not in offered:
        raise IllegalParameter(f"client signed with {name_of(SignatureScheme, msg.algorithm)}, "
                               "which the CertificateRequest did not allow")
    data = certificate_verify_input(transcript.digest(), server=False)
    verify(conn.peer_certificates[0], msg.algorithm, data, msg.signature)
    conn.negotiated["client_signature_scheme"] = name_of(SignatureScheme, msg.algorithm)
    transcript.update(msg.raw)


def _chain_matches(chain, authorities: list[bytes]) -> bool:
    """RFC 8446 §4.2.4: does any certificate of our chain come from one of the named CAs?"""
    for cert in chain:
        if cert.issuer.public_bytes() in authorities or cert.subject.public_bytes() in authorities:
            return True
    return False
