"""asyncio streams around the sans-IO engine (``tlslab.aio``).

>>> stream = await tlslab.aio.connect("example.com", 443, ca_file="ca.pem")
>>> stream.write(b"GET / HTTP/1.1\\r\\nHost: example.com\\r\\nConnection: close\\r\\n\\r\\n")
>>> await stream.drain()
>>> body = await stream.read()
>>> await stream.close()
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from ..proto.events import (ApplicationData, ConnectionClosed, HandshakeComplete,
                            NewSessionTicket)
from .view import ConnectionView
from .blocking import MAX_KEPT_TICKETS, HandshakeError, LogLine, default_log_line, format_peer, _one_line

__all__ = ["AsyncTLSStream", "connect", "start_server", "HandshakeError"]

_READ_SIZE = 65536


class AsyncTLSStream(ConnectionView):
    """A TLS connection over an asyncio ``StreamReader``/``StreamWriter`` pair.

    :attr:`truncated` is true when the peer closed the TCP connection after the handshake
    without a close_notify alert: :meth:`read` then ends with ``b""`` as at a clean end,
    but the data may have been cut short.

    0-RTT on the server side: early data comes first, in order, as in
    :class:`~tlslab.io.blocking.TLSSocket`; :attr:`last_read_early` tells whether the
    last :meth:`read` returned early (replayable) data, :attr:`early_data_received` holds
    all of it.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 connection) -> None:
        self._reader = reader
        self._writer = writer
        self.connection = connection
        self._inbox = bytearray()
        self._early_received = bytearray()
        self.closed_event: ConnectionClosed | None = None
        self.tcp_eof = False
        #: the newest MAX_KEPT_TICKETS NewSessionTicket events (a server may send any number)
        self.tickets: list[NewSessionTicket] = []
        self.tickets_received = 0   # all of them, kept or not
        now = time.monotonic()
        self.timing: dict[str, float] = {"start": now, "tcp_connected": now}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._writer.get_extra_info(name, default)

    # -- plumbing --------------------------------------------------------------------
    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _read_once(self) -> bool:
        data = await self._reader.read(_READ_SIZE)
        if not data:
            self.tcp_eof = True
            return False
        self.timing.setdefault("first_byte", time.monotonic())
        for event in self.connection.receive_data(data):
            if isinstance(event, ApplicationData):
                self._queue_data(event)
                self.timing.setdefault("first_data", time.monotonic())
            elif isinstance(event, ConnectionClosed):
                self.closed_event = event
            elif isinstance(event, HandshakeComplete):
                self.timing["handshake_complete"] = time.monotonic()
            elif isinstance(event, NewSessionTicket):
                self.tickets.append(event)
                self.tickets_received += 1
                del self.tickets[:-MAX_KEPT_TICKETS]
        self._flush()
        return True

    def _error(self, reason: str | None = None, code: str | None = None) -> HandshakeError:
        conn, ce, err = self.connection, self.closed_event, self.connection.error
        return HandshakeError(
            reason or (ce.error if ce and ce.error else str(err) if err else "handshake failed"),
            alert_sent=ce.alert_sent if ce else None,
            alert_received=ce.alert_received if ce else None,
            trace=conn.trace, code=code or getattr(err, "code", None), error=err,
            negotiated=dict(conn.negotiated), peer_certificates=list(conn.peer_certificates))

    async def do_handshake(self, timeout: float | None = 10.0, *,
                           early_data: bytes | None = None) -> None:
        """Run the handshake or raise :class:`HandshakeError`.

        ``early_data`` (client only): sent as 0-RTT when a stored ticket allows it.
        """
        conn = self.connection
        if conn.is_client and conn.state is conn.INITIAL:
            if early_data:
                conn.start_handshake(early_data=bytes(early_data))
            else:
                conn.start_handshake()

        async def run() -> None:
            self._flush()
            await self._writer.drain()
            while not conn.handshake_complete:
                if conn.closed:
                    raise self._error()
                if not await self._read_once():
                    if conn.closed:
                        raise self._error()
                    raise self._error(f"peer closed the connection during the handshake "
                                      f"(in state {conn.state.name}), without an alert")
                await self._writer.drain()

        try:
            await asyncio.wait_for(run(), timeout)
        except asyncio.TimeoutError:
            raise self._error(f"timed out after {timeout:g} s waiting for the peer "
                              f"(in state {conn.state.name})", code="timeout") from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            what = {ConnectionResetError: "reset by peer",
                    BrokenPipeError: "closed by peer (broken pipe)"}.get(type(e), "aborted")
            raise self._error(f"connection {what} during the handshake") from None
        finally:
            try:
                await self._writer.drain()  # the alert, if the handshake failed
            except (OSError, ConnectionError):
                pass
        self.timing.setdefault("handshake_complete", time.monotonic())

    # -- application data -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue ``data`` (encrypted); ``await drain()`` to wait for the socket."""
        self.connection.send_application_data(bytes(data))
        self._flush()

    async def drain(self) -> None:
        await self._writer.drain()

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: everything until the peer closes); ``b""`` at the end
        (check :attr:`truncated`: the end may have come without close_notify).

        0-RTT (server side): a bounded read never returns both early and 1-RTT bytes;
        :attr:`last_read_early` tells whether the bytes returned arrived as early data
        (for ``read(-1)``: whether any of them did).
        """
        self.last_read_early = False
        if n < 0:
            while await self._fill():
                pass
            return self._take(-1)
        if not self._inbox:
            await self._fill()
        return self._take(n)

    async def _fill(self) -> bool:
        """Read until some application data arrived; False at the end of the stream."""
        start = len(self._inbox)
        while len(self._inbox) == start:
            if self.closed_event is not None:
                if self.closed_event.error:
                    raise ConnectionError(f"TLS connection failed: {self.closed_event.error}")
                return False
            if self.tcp_eof or self.connection.closed:
                return False
            await self._read_once()
            await self._writer.drain()
        return True

    async def close(self, timeout: float = 3.0) -> None:
        """Send close_notify and close the transport.

        Waits at most ``timeout`` seconds for the peer to take the pending data (a peer
        that stops reading would otherwise block this forever), then aborts the transport.
        """
        deadline = time.monotonic() + timeout
        graceful = True
        try:
            if not self.connection.closed:
                self.connection.close()
            self._flush()
            await asyncio.wait_for(self._writer.drain(), timeout)
        except asyncio.TimeoutError:
            graceful = False
        except (OSError, ConnectionError):
            pass
        if graceful:
            self._writer.close()
            try:
                await asyncio.wait_for(self._writer.wait_closed(),
                                       max(deadline - time.monotonic(), 0.01))
            except asyncio.TimeoutError:
                graceful = False
            except (OSError, ConnectionError):
                pass
        if not graceful:
            self._writer.transport.abort()

    async def __aenter__(self) -> "AsyncTLSStream":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def connect(host: str, port: int = 443, config=None, *, timeout: float = 10.0,
                  early_data: bytes | None = None, **client_config_kwargs) -> AsyncTLSStream:
    """Connect and handshake; like :func:`tlslab.connect` but with asyncio streams.

    Connections made with the same config (or configs sharing ``session_store``, a
    :class:`~tlslab.proto.tickets.TicketStore` or ``FileTicketStore``) resume; TLS 1.3
    tickets arrive after the handshake, so read before closing.  ``early_data`` is sent as
    0-RTT when a stored ticket allows it: see :attr:`AsyncTLSStream.early_data_accepted`
    (``False``: rejected, write it again).  A client certificate goes in the config
    (``certificate_chain``, ``private_key``).
    """
    from ..proto.client import ClientConnection
    from ..proto.config import ClientConfig

    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if config is None:
        client_config_kwargs.setdefault("server_name", host)
        config = ClientConfig(**client_config_kwargs)
    elif client_config_kwargs:
        raise TypeError("pass either config or ClientConfig keyword arguments, not both")
    conn = ClientConnection(config)
    start = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    stream = AsyncTLSStream(reader, writer, conn)
    stream.timing["start"] = start
    try:
        await stream.do_handshake(timeout, early_data=early_data)
    except BaseException:
        writer.close()
        raise
    return stream


async def start_server(config, handler: Callable[[AsyncTLSStream], Awaitable[Any]],
                       host: str = "127.0.0.1", port: int = 4433, *,
                       log: Callable[[str], Any] | None = None,
                       handshake_timeout: float = 10.0,
                       log_line: LogLine | None = None) -> asyncio.AbstractServer:
    """Start an asyncio TLS server; ``await handler(stream)`` runs for each client after
    its handshake.  Returns the ``asyncio.Server`` (``server.sockets[0].getsockname()``
    gives the port when ``port=0``).  Each handshake and each failure is logged, one line
    made by ``log_line(peer, stream, error)`` (default: ``default_log_line``)."""
    from ..proto.server import ServerConnection
    from .blocking import _logger

    say = log or _logger.info
    line_of = log_line or default_log_line(config)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = format_peer(writer.get_extra_info("peername"))
        stream = AsyncTLSStream(reader, writer, ServerConnection(config))
        try:
            try:
                await stream.do_handshake(handshake_timeout)
            except HandshakeError as e:
                line = line_of(peer, stream, e)
                if line:
                    say(line)
                return
            line = line_of(peer, stream, None)
            if line:  # None: the hook logs later itself
                say(line)
            await handler(stream)
        except Exception as e:
            say(f"{peer} error: {_one_line(e)}")
        finally:
            await stream.close()

    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return await asyncio.start_server(on_client, host, port)
