"""Who a resumed session belongs to (RFC 6066 §3, RFC 8446 §4.2.11, §4.6.1, RFC 5077 §4).

A ticket or cached session is only resumed for the same server name it was made
for, and a client identity it carries (the client's certificate chain) is checked
again against the *current* configuration's client CAs: configurations that share
ticket keys or a session cache must not accept each other's clients blindly.
"""
from __future__ import annotations


from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import TLSError
from .extensions import ET


def encode_chain(certs: list) -> bytes:
    """The client chain as DER certificates, each with a 3-byte length (empty: no client cert)."""
    out = bytearray()
    for cert in certs:
        der = cert.public_bytes(Encoding.DER)
        out += len(der).to_bytes(3, "big") + der
    return bytes(out)


def decode_chain(blob: bytes) -> list:
    certs, pos = [], 0
    while pos + 3 <= len(blob):
        n = int.from_bytes(blob[pos:pos + 3], "big")
        certs.append(x509.load_der_x509_certificate(blob[pos + 3:pos + 3 + n]))
        pos += 3 + n
    return certs


def sni_host(ch) -> str | None:
    """The host_name the ClientHello asks for (RFC 6066 §3), None without one."""
    sni = ch.ext_value(ET.server_name)
    if sni is None:
        return None
    return next((s.host_name.decode("ascii", "replace") for s in sni.server_name_list
                 if s.name_type == 0), None)


def client_sni(ch) -> str:
    """The host_name the ClientHello asks for ("" without SNI)."""
    return sni_host(ch) or ""


def may_resume(conn, ch, session_sni: str, chain_blob: bytes) -> bool:
    """Whether ``conn`` (a server) may resume a session made for ``session_sni`` with the
    client chain ``chain_blob``; on success the client identity is restored on ``conn``."""
    cfg = conn.config
    sni = client_sni(ch)
    if sni.lower() != (session_sni or "").lower():
        conn.trace.add("info", "local", "session not resumed",
                       detail=f"made for server name {session_sni or '(none)'!r}, now {sni or '(none)'!r} "
                              "(RFC 6066 §3)")
        return False
    if not chain_blob:
        if cfg.require_client_cert:
            conn.trace.add("info", "local", "session not resumed",
                           detail="the session has no client certificate and one is required")
            return False
        return True
    if not cfg.client_trust:
        return True  # this configuration authenticates no clients: the stored identity is not ours
    try:
        chain = decode_chain(chain_blob)
    except ValueError:
        return False
    from .certificates import verify_client_chain
    try:
        verify_client_chain(chain, cfg.client_trust, conn._now_utc())
    except (TLSError, ValueError) as err:
        conn.trace.add("info", "local", "session not resumed",
                       detail=f"its client certificate is not accepted here: {err}")
        return False
    conn.peer_certificates = chain
    conn.negotiated["client_certificate"] = chain[0].subject.rfc4514_string()
    return True
