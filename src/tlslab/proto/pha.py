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


from .connection import State
from .errors import CertificateRequired, IllegalParameter, UnexpectedMessage
from .extensions import ET, Extension
from . import extensions as X
from .messages import Certificate, CertificateRequest, CertificateVerify, Finished
from .names import HandshakeType as HT
from . import events as ev

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
    def handle(cls, conn, msg) -> type[State]:
        if msg.msg_type == HT.key_update:
            conn._handle_key_update(msg)
            return cls
        return conn._pha_on_certificate(msg)


class PhaWaitCertificateVerify(State):
    name = "PHA_WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, conn, msg) -> type[State]:
        conn._pha_on_certificate_verify(msg)
        return PhaWaitFinished


class PhaWaitFinished(State):
    name = "PHA_WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, conn, msg) -> type[State]:
        conn._pha_on_finished(msg)
        return conn.CONNECTED_STATE


class ServerPha:
    """Post-handshake authentication, server side (mixed into ServerConnection)."""

    def request_client_certificate(self) -> None:
        """Ask the client for a certificate now (RFC 8446 §4.6.2).

        Needs a completed TLS 1.3 handshake with a client that sent post_handshake_auth,
        and ``ServerConfig(client_ca_file=...)`` to validate the answer.  The outcome
        arrives as a :class:`~tlslab.proto.events.PeerAuthenticated` event (or a fatal
        alert when ``require_client_cert`` is set and none comes).
        """
        if not self.handshake_complete or self.tls12 or self.closed:
            raise ConnectionError("post-handshake authentication needs an open TLS 1.3 connection")
        if self.client_hello.ext(ET.post_handshake_auth) is None:
            raise ConnectionError("the client did not offer post_handshake_auth (RFC 8446 §4.2.6)")
        if not self.config.client_trust:
            raise ConnectionError("post-handshake authentication needs ServerConfig(client_ca_file=...)")
        if self.state is not self.CONNECTED_STATE:
            raise ConnectionError("a post-handshake CertificateRequest is already outstanding")
        context = self.provider.random(8)
        cr = self._certificate_request()
        cr.certificate_request_context = context
        cr.raw = None
        self._pha_transcript = self._handshake_transcript.copy()
        self._pha_transcript.update(self._send_message(cr))
        self._pha_request = cr
        self._move(PhaWaitCertificate)

    def _pha_on_certificate(self, msg: Certificate) -> type[State]:
        if msg.certificate_request_context != self._pha_request.certificate_request_context:
            raise IllegalParameter("client Certificate context does not match the CertificateRequest")
        self._pha_transcript.update(msg.raw)
        if not msg.certificate_list:
            if self.config.require_client_cert:
                raise CertificateRequired("client sent no certificate after a post-handshake request")
            self._pha_certs = []
            return PhaWaitFinished
        certs = self._load_peer_chain([e.cert_data for e in msg.certificate_list])
        self._validate_peer_chain(certs)
        self._pha_certs = certs
        return PhaWaitCertificateVerify

    def _pha_on_certificate_verify(self, msg: CertificateVerify) -> None:
        self._check_client_certificate_verify(self._pha_request, self._pha_transcript, msg)

    def _pha_on_finished(self, msg: Finished) -> None:
        self._check_finished(self.schedule.verify_data(self._app_read_secret, self._pha_transcript.digest()),
                             msg.verify_data, "post-handshake Finished")
        self.trace.add("info", "local", "post-handshake authentication",
                       summary={"certificates": len(self._pha_certs)})
        self._events.append(ev.PeerAuthenticated(certificates=list(self._pha_certs)))


# -- client side ---------------------------------------------------------------------------

class ClientPha:
    """Post-handshake authentication, client side (mixed into ClientConnection)."""

    def _pha_on_certificate_request(self, cr: CertificateRequest) -> None:
        if self._client_hello.ext(ET.post_handshake_auth) is None:
            raise UnexpectedMessage("post-handshake CertificateRequest without post_handshake_auth offered")
        if not cr.certificate_request_context:
            raise IllegalParameter("post-handshake CertificateRequest with an empty context (RFC 8446 §4.3.2)")
        self._pha_requests = getattr(self, "_pha_requests", 0) + 1
        if self._pha_requests > MAX_POST_HANDSHAKE_AUTH:
            raise UnexpectedMessage(f"more than {MAX_POST_HANDSHAKE_AUTH} post-handshake "
                                    "CertificateRequests on one connection")
        sa = cr.ext_value(ET.signature_algorithms)
        if sa is None:
            from .errors import MissingExtension
            raise MissingExtension("CertificateRequest without signature_algorithms")
        t = self._handshake_transcript.copy()
        t.update(cr.raw)
        self._answer_certificate_request(cr, t)
        fin = Finished(verify_data=self.schedule.verify_data(self._app_write_secret, t.digest()))
        self._send_message(fin)
        self.trace.add("info", "local", "post-handshake authentication answered")


def pha_extension() -> Extension:
    return Extension(ET.post_handshake_auth, X.Empty())
