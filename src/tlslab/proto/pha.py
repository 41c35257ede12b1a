"""Post-handshake client authentication (RFC 8446 §4.6.2, §4.4).

A client that sent the post_handshake_auth extension may be asked for a
certificate at any time after the handshake: the server sends a
CertificateRequest with a fresh, non-empty context; the client answers with
Certificate (same context), CertificateVerify (if it has a certificate) and
Finished.  The transcript is the handshake's (through the client Finished)
followed by these messages; the Finished key comes from the *current* client
application traffic secret (§4.4, "post-handshake").
"""
from __future__ import annotations


from . import events as ev
from .cert_auth13 import answer_certificate_request, check_client_certificate_verify
from .connection import State
from .errors import CertificateRequired, IllegalParameter, MissingExtension, UnexpectedMessage
from .extensions import ET
from .handshake import check_finished
from .messages import Certificate, CertificateRequest, Finished
from .names import HandshakeType as HT
from .peer_chain import load_peer_chain, validate_peer_chain

#: Post-handshake CertificateRequests a client answers per connection.  Each answer costs us
#: a private-key signature (CertificateVerify) while the request costs the server nothing; a
#: server re-authenticates a few times per connection at most (OpenSSL, NSS and Go set no
#: number, Go does not do post-handshake auth at all).  Beyond: unexpected_message.
MAX_POST_HANDSHAKE_AUTH = 16


# -- server side ---------------------------------------------------------------------------

class PhaWaitCertificate(State):
    name = "PHA_WAIT_CERT"
    expects = frozenset({HT.certificate, HT.key_update})

    @classmethod
    def handle(cls, hs, msg) -> type[State]:
        if msg.msg_type == HT.key_update:
            hs.conn._handle_key_update(msg)
            return cls
        return on_certificate(hs, msg)


class PhaWaitCertificateVerify(State):
    name = "PHA_WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, hs, msg) -> type[State]:
        check_client_certificate_verify(hs.conn, hs.pha_request, hs.pha_transcript, msg)
        return PhaWaitFinished


class PhaWaitFinished(State):
    name = "PHA_WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, hs, msg) -> type[State]:
        on_finished(hs, msg)
        return hs.conn.CONNECTED_STATE


def request_client_certificate(conn) -> None:
    """Send a post-handshake CertificateRequest (RFC 8446 §4.6.2); see
    :meth:`tlslab.proto.server.ServerConnection.request_client_certificate`."""
    hs = conn.hs
    if not conn.handshake_complete or conn.tls12 or conn.closed:
        raise ConnectionError("post-handshake authentication needs an open TLS 1.3 connection")
    if not hs.pha_offered:
        raise ConnectionError("the client did not offer post_handshake_auth (RFC 8446 §4.2.6)")
    if not conn.config.client_trust:
        raise ConnectionError("post-handshake authentication needs ServerConfig(client_ca_file=...)")
    if conn.state is not conn.CONNECTED_STATE:
        raise ConnectionError("a post-handshake CertificateRequest is already outstanding")
    from .server13 import certificate_request
    cr = certificate_request(conn.config)
    cr.certificate_request_context = conn.provider.random(8)
    hs.pha_transcript = hs.handshake_transcript.copy()
    hs.pha_transcript.update(conn._send_message(cr))
    hs.pha_request = cr
    conn._move(PhaWaitCertificate)


def on_certificate(hs, msg: Certificate) -> type[State]:
    if msg.certificate_request_context != hs.pha_request.certificate_request_context:
        raise IllegalParameter("client Certificate context does not match the CertificateRequest")
    hs.pha_transcript.update(msg.raw)
    if not msg.certificate_list:
        if hs.config.require_client_cert:
            raise CertificateRequired("client sent no certificate after a post-handshake request")
        hs.pha_certs = []
        return PhaWaitFinished
    ders = [e.cert_data for e in msg.certificate_list]
    certs = load_peer_chain(hs.conn, ders)
    validate_peer_chain(hs.conn, certs, ders)
    hs.pha_certs = certs
    return PhaWaitCertificateVerify


def on_finished(hs, msg: Finished) -> None:
    conn = hs.conn
    check_finished(conn.schedule.verify_data(conn._app_read_secret, hs.pha_transcript.digest()),
                   msg.verify_data, "post-handshake Finished")
    hs.trace.add("info", "local", "post-handshake authentication",
                 summary={"certificates": len(hs.pha_certs)})
    conn._events.append(ev.PeerAuthenticated(certificates=list(hs.pha_certs)))


# -- client side ---------------------------------------------------------------------------

def answer_post_handshake_request(hs, cr: CertificateRequest) -> None:
    """A client's answer to a post-handshake CertificateRequest: Certificate,
    [CertificateVerify], Finished over the handshake transcript and these (RFC 8446 §4.4)."""
    conn = hs.conn
    if not hs.pha_offered:
        raise UnexpectedMessage("post-handshake CertificateRequest without post_handshake_auth offered")
    if not cr.certificate_request_context:
        raise IllegalParameter("post-handshake CertificateRequest with an empty context (RFC 8446 §4.3.2)")
    hs.pha_requests += 1
    if hs.pha_requests > MAX_POST_HANDSHAKE_AUTH:
        raise UnexpectedMessage(f"more than {MAX_POST_HANDSHAKE_AUTH} post-handshake "
                                "CertificateRequests on one connection")
    if cr.ext_value(ET.signature_algorithms) is None:
        raise MissingExtension("CertificateRequest without signature_algorithms")
    t = hs.handshake_transcript.copy()
    t.update(cr.raw)
    answer_certificate_request(conn, cr, t)
    conn._send_message(Finished(verify_data=conn.schedule.verify_data(conn._app_write_secret, t.digest())))
    hs.trace.add("info", "local", "post-handshake authentication answered")
