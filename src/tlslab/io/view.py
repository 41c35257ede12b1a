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
    #: 0-RTT (RFC 8446 §4.2.10): whether the bytes the last read returned (``recv()`` /
    #: ``read()``) arrived as early data, which an attacker can replay.  A bounded read
    #: never mixes early and 1-RTT bytes, so the flag covers the whole chunk; a read of
    #: everything (``read(-1)``, ``recv_all()``) sets it when *any* of it was early.
    last_read_early = False
    _early_pending = 0      # how many bytes at the head of the inbox arrived as 0-RTT
    _early_received = b""   # every 0-RTT byte received (bounded by max_early_data_size)

    # -- 0-RTT bookkeeping shared by the adapters ------------------------------------
    def _queue_data(self, event) -> None:
        """Append an ApplicationData event's bytes to ``self._inbox``, remembering the
        0-RTT ones.  Early data precedes 1-RTT data on the wire, so the early bytes are
        a prefix of the inbox; were a 0-RTT record ever to follow 1-RTT data still in
        the inbox, all of it is marked early (the safe side)."""
        self._inbox += event.data
        if getattr(event, "early", False):
            self._early_pending = len(self._inbox)
            self._early_received += event.data

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes from the head of the inbox (``n < 0``: all of it), never
        running past the end of the 0-RTT prefix for ``n >= 0``; sets
        :attr:`last_read_early`."""
        early = self._early_pending
        if n < 0:
            n = len(self._inbox)
        elif early:
            n = min(n, early)
        out = bytes(self._inbox[:n])
        del self._inbox[:n]
        self._early_pending = max(0, early - len(out))
        self.last_read_early = bool(out) and early > 0
        return out

    @property
    def early_data_received(self) -> bytes:
        """Every byte the peer sent as 0-RTT early data (server side; ``b""`` when none),
        whether or not it has been read yet.  It may be a replay: act on it only if the
        request is idempotent (RFC 8446 §8, RFC 8470)."""
        return bytes(self._early_received)

    @property
    def early_bytes_pending(self) -> int:
        """How many of the bytes waiting to be read arrived as 0-RTT (they come first)."""
        return self._early_pending

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
