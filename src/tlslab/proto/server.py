"""The server connection (RFC 8446, RFC 5246): the record layer of
:class:`~tlslab.proto.connection.Connection` with the server's state machine.

The handshake itself lives in handshake objects: TLS 1.3 in :mod:`tlslab.proto.server13`,
TLS 1.0-1.2 in :mod:`tlslab.proto.server12`, post-handshake authentication in
:mod:`tlslab.proto.pha`.  :data:`SERVER_TRANSITIONS` lists every move the server's
states may make.
"""
from __future__ import annotations

from .config import ServerConfig
from .connection import Connection
from .pha import PhaWaitCertificate, PhaWaitCertificateVerify, PhaWaitFinished, request_client_certificate
from .provider import Provider
from .server12 import SERVER12_ENTRY, SERVER12_TRANSITIONS
from .server13 import (ServerConnected, ServerHandshake13, ServerStart, WaitClientCertificate,
                       WaitClientCertificateVerify, WaitClientFinished, WaitClientHello2,
                       WaitEndOfEarlyData)

SERVER_TRANSITIONS = {
    **SERVER12_TRANSITIONS,
    ServerStart: {WaitClientHello2, WaitClientFinished, WaitClientCertificate, WaitEndOfEarlyData,
                  *SERVER12_ENTRY},
    WaitClientHello2: {WaitClientFinished, WaitClientCertificate},
    WaitEndOfEarlyData: {WaitClientFinished},
    WaitClientCertificate: {WaitClientCertificateVerify, WaitClientFinished},
    WaitClientCertificateVerify: {WaitClientFinished},
    WaitClientFinished: {ServerConnected},
    ServerConnected: {ServerConnected, PhaWaitCertificate},
    PhaWaitCertificate: {PhaWaitCertificate, PhaWaitCertificateVerify, PhaWaitFinished},
    PhaWaitCertificateVerify: {PhaWaitFinished},
    PhaWaitFinished: {ServerConnected},
}


class ServerConnection(Connection):
    """The server side of one connection, TLS 1.3 or 1.2 (sans-IO)."""

    __slots__ = ()
    is_client = False
    TRANSITIONS = SERVER_TRANSITIONS
    INITIAL = ServerStart
    CONNECTED_STATE = ServerConnected

    def __init__(self, config: ServerConfig, provider: Provider | None = None) -> None:
        super().__init__(config, provider)
        self.hs = ServerHandshake13(self)

    def request_client_certificate(self) -> None:
        """Ask the client for a certificate now (RFC 8446 §4.6.2).

        Needs a completed TLS 1.3 handshake with a client that sent post_handshake_auth,
        and ``ServerConfig(client_ca_file=...)`` to validate the answer.  The outcome
        arrives as a :class:`~tlslab.proto.events.PeerAuthenticated` event (or a fatal
        alert when ``require_client_cert`` is set and none comes).
        """
        request_client_certificate(self)

    def _can_send_application_data(self) -> bool:
        # RFC 8446 §4.4.4: the server may send data right after its Finished (0.5-RTT), to a
        # peer not yet authenticated (§E.1).  When it asked for a client certificate, that
        # data could be meant only for the certificate's holder: nothing is sent before the
        # certificate (or its absence) has been checked and the client's Finished verified.
        if self.handshake_complete:
            return True
        # both are TLS 1.3 states, so the handshake object is a ServerHandshake13
        return self.state in (WaitEndOfEarlyData, WaitClientFinished) and self.hs.cert_request is None

    def _can_receive_application_data(self) -> bool:
        return self.handshake_complete or self.state is WaitEndOfEarlyData

    def _note_application_data(self, fragment: bytes) -> bool:
        """Count 0-RTT bytes (§4.2.10); True if the data is early."""
        if self.state is not WaitEndOfEarlyData:
            return False
        self.hs.note_early_data(fragment)
        return True

    def _ccs_allowed(self) -> bool:
        return self.state is not ServerStart
