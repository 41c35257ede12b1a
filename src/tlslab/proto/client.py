"""TLS 1.3 client state machine (RFC 8446 §2, §4, Appendix A.1) and the client connection.

States follow the RFC's client diagram: START → WAIT_SH → WAIT_EE → WAIT_CERT_CR
→ WAIT_CV → WAIT_FINISHED → CONNECTED.  Each state is a class whose ``handle``
checks one message with the data of the handshake object
(:class:`~tlslab.proto.client13.ClientHandshake13`) and returns the next state;
:data:`CLIENT_TRANSITIONS` lists the moves allowed.  A TLS 1.2 answer hands over to
:mod:`tlslab.proto.client12`.
"""
from __future__ import annotations

import datetime

from .client12 import CLIENT12_TRANSITIONS, WaitCertificate12, WaitNewTicketOrCCS12, send_renegotiation_probe
from .client_hello import build_client_hello
from .client13 import ClientHandshake13, ClientPostHandshake13
from .config import ClientConfig
from .connection import Connection, State
from .messages import Certificate, CertificateVerify, EncryptedExtensions, Finished, ServerHello
from .names import HandshakeType as HT
from .pha import answer_post_handshake_request
from .provider import Provider


class ClientStart(State):
    name = "START"


class WaitServerHello(State):
    """RFC 8446 §4.1.3, §4.1.4: ServerHello or HelloRetryRequest."""

    name = "WAIT_SH"
    expects = frozenset({HT.server_hello})

    @classmethod
    def handle(cls, hs: ClientHandshake13, msg: ServerHello) -> type[State]:
        if msg.is_hello_retry_request:
            hs.on_hello_retry_request(msg)
            return WaitServerHello
        if hs.is_tls12_answer(msg):
            return hs.to_tls12(msg)  # RFC 8446 §4.1.3: a TLS 1.2 (or older) server
        hs.on_server_hello(msg)
        return WaitEncryptedExtensions


class WaitEncryptedExtensions(State):
    """RFC 8446 §4.3.1 (a PSK handshake goes straight on to the server's Finished)."""

    name = "WAIT_EE"
    expects = frozenset({HT.encrypted_extensions})

    @classmethod
    def handle(cls, hs: ClientHandshake13, msg: EncryptedExtensions) -> type[State]:
        hs.on_encrypted_extensions(msg)
        return WaitFinished if hs.resumed else WaitCertCR


class WaitCertCR(State):
    """RFC 8446 §4.3.2, §4.4.2: Certificate, or CertificateRequest then Certificate."""

    name = "WAIT_CERT_CR"
    expects = frozenset({HT.certificate, HT.certificate_request})

    @classmethod
    def handle(cls, hs: ClientHandshake13, msg) -> type[State]:
        if msg.msg_type == HT.certificate_request:
            hs.on_certificate_request(msg)
            return WaitCert
        hs.on_certificate(msg)
        return WaitCertificateVerify


class WaitCert(State):
    name = "WAIT_CERT"
    expects = frozenset({HT.certificate})

    @classmethod
    def handle(cls, hs: ClientHandshake13, msg: Certificate) -> type[State]:
        hs.on_certificate(msg)
        return WaitCertificateVerify


class WaitCertificateVerify(State):
    """RFC 8446 §4.4.3."""

    name = "WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, hs: ClientHandshake13, msg: CertificateVerify) -> type[State]:
        hs.on_certificate_verify(msg)
        return WaitFinished


class WaitFinished(State):
    """RFC 8446 §4.4.4."""

    name = "WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, hs: ClientHandshake13, msg: Finished) -> type[State]:
        hs.on_server_finished(msg)
        return ClientConnected


class ClientConnected(State):
    """RFC 8446 §4.6: post-handshake messages."""

    name = "CONNECTED"
    expects = frozenset({HT.new_session_ticket, HT.key_update, HT.certificate_request})

    @classmethod
    def handle(cls, hs: ClientPostHandshake13, msg) -> type[State]:
        t = msg.msg_type
        if t == HT.key_update:
            hs.conn._handle_key_update(msg)
        elif t == HT.certificate_request:
            answer_post_handshake_request(hs, msg)  # RFC 8446 §4.6.2
        else:
            hs.on_new_session_ticket(msg)
        return ClientConnected


CLIENT_TRANSITIONS = {
    **CLIENT12_TRANSITIONS,
    ClientStart: {WaitServerHello},
    WaitServerHello: {WaitServerHello, WaitEncryptedExtensions, WaitCertificate12, WaitNewTicketOrCCS12},
    WaitEncryptedExtensions: {WaitCertCR, WaitFinished},
    WaitCertCR: {WaitCert, WaitCertificateVerify},
    WaitCert: {WaitCertificateVerify},
    WaitCertificateVerify: {WaitFinished},
    WaitFinished: {ClientConnected},
    ClientConnected: {ClientConnected},
}


class ClientConnection(Connection):
    """The client side of one connection, TLS 1.3 or 1.2 (sans-IO)."""

    __slots__ = ("session_store", "early_data_accepted")
    is_client = True
    TRANSITIONS = CLIENT_TRANSITIONS
    INITIAL = ClientStart

    def __init__(self, config: ClientConfig, provider: Provider | None = None, *,
                 now: datetime.datetime | None = None) -> None:
        super().__init__(config, provider)
        self._now = now
        #: where tickets from this connection go, and where the ticket it offers comes from
        self.session_store = config.session_store
        #: whether the server took our 0-RTT data (None: none was sent)
        self.early_data_accepted: bool | None = None
        self.hs = ClientHandshake13(self)

    def start_handshake(self, early_data: bytes | None = None) -> None:
        """Queue the ClientHello (RFC 8446 §4.1.2).

        With ``early_data`` and a stored ticket that allows it, the data is sent as
        0-RTT right after the ClientHello (RFC 8446 §4.2.10); ``early_data_accepted``
        (and the HandshakeComplete event) then tell whether the server took it.  If it
        did not, the application must send the data again.
        """
        if self.state is not ClientStart:
            raise RuntimeError("start_handshake() was already called")
        hs = self.hs
        hs.start(early_data)
        self._move(WaitServerHello)
        if hs.offer.early_data is not None:
            hs.send_early_data()

    def send_renegotiation_probe(self) -> None:
        """Ask a TLS 1.2 server to renegotiate, only to see its answer (see
        :func:`tlslab.proto.client12.send_renegotiation_probe`)."""
        if not self.tls12 or not self.handshake_complete or self.closed:
            raise ConnectionError("a renegotiation probe needs a completed TLS 1.2 client connection")
        send_renegotiation_probe(self)

    def _build_client_hello(self):
        """The first ClientHello of this connection, before any PSK is added.  A subclass
        (tests, the lab) may override it to edit what is offered; the binder is computed
        afterwards, over what it returns."""
        hs = self.hs
        return build_client_hello(hs.offer, self.config, self.provider, self.client_random,
                                  self.session_store is not None)

    def _session_key(self) -> str:
        return self.config.server_name or ""

    def _ccs_allowed(self) -> bool:
        return self.state is not ClientStart
