"""An in-memory client/server pair: two sans-IO connections wired back to back.

Used by tests and benchmarks: no sockets, no threads, no copies beyond what the
engine itself makes.  ``pump()`` moves bytes both ways until neither side has
anything left to send.
"""
from __future__ import annotations

from ..proto.events import ConnectionClosed, Event


class MemoryPair:
    """``client_conn`` and ``server_conn`` talking through memory.

    >>> pair = MemoryPair(ClientConnection(ccfg), ServerConnection(scfg))
    >>> client_events, server_events = pair.handshake()
    >>> pair.client.send_application_data(b"ping")
    >>> pair.pump()   # -> ([], [ApplicationData(b"ping")])
    """

    __slots__ = ("client", "server")

    def __init__(self, client_conn, server_conn) -> None:
        self.client = client_conn
        self.server = server_conn

    def pump(self, max_rounds: int = 64) -> tuple[list[Event], list[Event]]:
        """Move bytes both ways until quiet; return ``(client_events, server_events)``.

        ``max_rounds`` bounds the exchange (a TLS 1.3 handshake needs 3 round trips,
        with a HelloRetryRequest 4), so a bug can never loop forever.
        """
        client, server = self.client, self.server
        client_events: list[Event] = []
        server_events: list[Event] = []
        for _ in range(max_rounds):
            moved = False
            data = client.data_to_send()
            if data:
                moved = True
                server_events += server.receive_data(data)
            data = server.data_to_send()
            if data:
                moved = True
                client_events += client.receive_data(data)
            if not moved:
                break
        return client_events, server_events

    def handshake(self) -> tuple[list[Event], list[Event]]:
        """Start the client's handshake (if not started yet) and pump until quiet.

        Returns the events of both sides; check ``client.handshake_complete`` /
        ``client.error`` (or the :class:`ConnectionClosed` events) for the outcome.
        """
        if self.client.state is self.client.INITIAL:
            self.client.start_handshake()
        return self.pump()

    @property
    def failed(self) -> bool:
        """True when either side closed with an error."""
        return self.client.error is not None or self.server.error is not None


def handshake(client_config, server_config, provider=None) -> MemoryPair:
    """Build a :class:`MemoryPair` from two configs and run the handshake.

    Returns the pair (inspect ``pair.client.negotiated``, ``pair.client.trace``...).
    """
    from ..proto.client import ClientConnection
    from ..proto.server import ServerConnection

    pair = MemoryPair(ClientConnection(client_config, provider),
                      ServerConnection(server_config, provider))
    pair.handshake()
    return pair


def closed_event(events: list[Event]) -> ConnectionClosed | None:
    """The :class:`ConnectionClosed` among ``events``, if any."""
    for e in events:
        if isinstance(e, ConnectionClosed):
            return e
    return None
