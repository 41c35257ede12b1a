"""The peer's certificate chain, for both versions and both sides (RFC 8446 §4.4.2,
RFC 5246 §7.4.2, RFC 6066 §8).

Loading, validating and the stapled OCSP response are steps every handshake object takes
the same way; their results (``peer_certificates``, ``verified_path``, the negotiated
client certificate and OCSP status) belong to the connection, which keeps them after the
handshake.
"""
from __future__ import annotations

from cryptography import x509

from .cert_paths import MAX_PEER_CERTIFICATES
from .errors import BadCertificate, TLSError


def load_peer_chain(conn, ders: list[bytes]) -> list:
    """Parse the peer's chain: DER X.509, leaf first (bounded by MAX_PEER_CERTIFICATES)."""
    who = "server's" if conn.is_client else "client's"
    if len(ders) > MAX_PEER_CERTIFICATES:
        raise BadCertificate(f"the {who} Certificate message carries {len(ders)} certificates; "
                             f"at most {MAX_PEER_CERTIFICATES} are accepted")
    certs = []
    for i, der in enumerate(ders):
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion) as e:
            raise BadCertificate(f"certificate {i} in the {who} chain is not valid DER X.509: {e}") from None
    conn.peer_certificates = certs
    conn.trace.add("info", "local", "certificate chain", summary={"certificates": len(certs)})
    return certs


def validate_peer_chain(conn, certs: list, ders: list[bytes]) -> None:
    """Path validation and name check (a client), or the client's chain against the client
    CAs (a server).  ``ders`` are the certificates as received."""
    from .certificates import verify_client_chain, verify_server_chain
    cfg = conn.config
    now = conn._now_utc()
    if conn.is_client:
        if cfg.insecure:
            conn.trace.add("info", "local", "certificate not verified (--insecure)")
            return
        try:
            conn.verified_path = verify_server_chain(
                certs, cfg.server_name if cfg.check_hostname else None, cfg.trust_store(), now, ders=ders)
        except (ValueError, TypeError) as e:
            # a certificate that parses but whose contents cryptography cannot interpret
            raise BadCertificate(f"the server's certificate cannot be interpreted: {e}") from None
        conn.trace.add("info", "local", "certificate verified",
                       summary={"path_length": len(conn.verified_path)})
    else:
        try:
            verify_client_chain(certs, cfg.client_trust, now, ders=ders)
        except (ValueError, TypeError) as e:
            raise BadCertificate(f"the client's certificate cannot be interpreted: {e}") from None
        conn.negotiated["client_certificate"] = certs[0].subject.rfc4514_string()
        conn.trace.add("info", "local", "client certificate verified",
                       summary={"subject": conn.negotiated["client_certificate"]})


def check_ocsp(conn, der: bytes, certs: list) -> None:
    """A stapled OCSP response (RFC 6066 §8): checked, summarised; fatal when it says
    revoked or is unusable, unless verification is switched off (--insecure)."""
    from .ocsp import check_stapled_response
    conn.negotiated["ocsp_response"] = der
    now = conn._now_utc()
    try:
        summary = check_stapled_response(der, conn.verified_path or certs, now)
    except TLSError as err:
        if not conn.config.insecure:
            raise
        summary = {"status": "not usable", "error": str(err)}
    conn.negotiated["ocsp_status"] = summary
    conn.trace.add("info", "local", "stapled OCSP response", summary={"bytes": len(der), **summary})
