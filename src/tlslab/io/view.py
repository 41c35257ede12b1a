"""What the blocking and asyncio adapters both expose about the engine's connection."""
from __future__ import annotations


class ConnectionView:
    """Read-only properties over ``self.connection`` (an engine connection), shared by
    :class:`~tlslab.io.blocking.TLSSocket` and :class:`~tlslab.io.aio.AsyncTLSStream`.
    The adapter keeps ``tcp_eof`` (the peer closed TCP) and ``closed_event`` (the
    engine's ConnectionClosed, if any)."""

    connection = None
    tcp_eof = False
    closed_event = None

    @property
    def negotiated(self) -> dict:
        return self.connection.negotiated

    @property
    def trace(self):
        return self.connection.trace

    @property
    def peer_certificates(self) -> list:
        return self.connection.peer_certificates

    @property
    def handshake_complete(self) -> bool:
        return self.connection.handshake_complete

    @property
    def resumed(self) -> bool:
        """True when this handshake resumed an earlier session (no certificate exchanged)."""
        return bool(self.connection.negotiated.get("resumed"))

    @property
    def early_data_accepted(self) -> bool | None:
        """0-RTT: ``None`` when none was sent, ``True`` accepted, ``False`` rejected (the
        data was then *not* delivered: send it again as ordinary data)."""
        value = self.connection.negotiated.get("early_data_accepted")
        if value is None:
            value = getattr(self.connection, "early_data_accepted", None)
        return value

    @property
    def truncated(self) -> bool:
        """True when the peer ended the TCP connection after the handshake without sending
        close_notify (RFC 8446 §6.1): the data received may be incomplete."""
        return (self.tcp_eof and self.closed_event is None
                and bool(self.connection.handshake_complete))
