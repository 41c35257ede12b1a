"""An asyncio TLS server for many clients at once: what ``tlslab serve`` runs.

One event loop, one task per connection, no thread per client.  Handshakes go through the
sans-IO engine (:class:`~tlslab.proto.server.ServerConnection`) and its crypto runs inline
on the loop: a full handshake costs a few milliseconds of CPU, which bounds the rate of new
handshakes (see ``benchmarks/README.md``), not the number of clients held open.

What keeps the server answering under load (each bound is a constructor argument):

* a **handshake deadline** per connection (``handshake_timeout``): a client dripping its
  ClientHello a byte a second (slowloris) is closed when it runs out;
* an **idle deadline** after the handshake (``idle_timeout``): the handler (the HTTP page)
  must have read the request and written its answer by then;
* a **bounded input**: the stream reader pauses the socket past ``read_limit`` bytes not yet
  consumed, and a client may send at most ``max_handshake_bytes`` before its handshake
  completes;
* a **cap on connections** (``max_connections``, lowered to what the file-descriptor limit
  allows).  At the cap the server keeps accepting: each new client closes the *least
  recently active* connection (the one that sent nothing for the longest, handshake or
  not).  New clients are therefore never left in the listen backlog behind idle or
  dripping ones, and a client that keeps talking keeps its place;
* every socket is closed on every path (timeouts, resets, evictions, shutdown), so file
  descriptors and tasks return to their baseline.

>>> srv = AsyncTLSServer("127.0.0.1", 0, config, handler)   # bound and listening
>>> srv.serve_forever()        # until SIGINT/SIGTERM (main thread) or srv.shutdown()
>>> srv.server_close()
"""
from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Awaitable, Callable

from .aio import AsyncTLSStream
from .blocking import (HandshakeError, LogLine, _logger, _one_line, _strip_brackets,
                       default_log_line, format_peer)

__all__ = ["AsyncTLSServer", "HandshakeTooLarge", "connection_budget"]

#: bytes a StreamReader holds before it pauses the socket (it pauses at twice this)
READ_LIMIT = 16384
#: bytes a client may send before its handshake completes: a ClientHello is at most
#: ~130 KiB (RFC 8446 §4.1.2: 2^16-2 bytes of suites, 2^16-1 of extensions), a client
#: certificate chain a few KiB; the engine itself refuses a message over 256 KiB
MAX_HANDSHAKE_BYTES = 192 * 1024
#: sockets accepted per wake-up of the listening socket (then connected clients get a turn)
ACCEPT_BATCH = 64
#: seconds before accepting again after accept() failed for want of descriptors
ACCEPT_RETRY = 0.1
#: sockets accepted past the cap while the evicted ones close (abort() closes a socket on
#: the loop's next turn): the descriptors come out of FD_RESERVE
CAP_SLACK = 16
#: seconds between two looks at the event loop's lateness (see max_loop_lag)
LAG_TICK = 0.1
#: a stall of the loop this long (seconds) gets a log line
LAG_WARNING = 0.5
#: file descriptors kept free for everything that is not a client (listening socket,
#: stdio, log files, the event loop's own, a keylog...)
FD_RESERVE = 32


class HandshakeTooLarge(ConnectionError):
    """The client sent more than ``max_handshake_bytes`` before its handshake completed."""


def connection_budget(wanted: int, reserve: int = FD_RESERVE) -> int:
    """How many client connections the file-descriptor limit allows, at most ``wanted``.

    Raises the soft RLIMIT_NOFILE towards the hard limit first when ``wanted`` needs it
    (any process may, up to the hard limit), so ``ulimit -n`` 1024 does not cap a server
    whose hard limit is higher.  Each client takes one descriptor."""
    try:
        import resource
    except ImportError:  # not on POSIX: nothing to ask
        return wanted
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 16
    need = open_now + reserve + wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - open_now - reserve))


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening socket, made here rather than by asyncio: errors (address in
    use) come before the server starts, and no resolver thread is started."""
    host = _strip_brackets(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Slot:
    """One client connection as the server tracks it (for the cap and the deadlines)."""

    __slots__ = ("writer", "peer", "received", "last_active", "handshake_done", "evicted",
                 "task")

    def __init__(self, peer: str) -> None:
        self.writer: asyncio.StreamWriter | None = None  # None until the transport is up
        self.peer = peer
        self.received = 0
        self.last_active = time.monotonic()
        self.handshake_done = False
        self.evicted = False
        self.task: asyncio.Task | None = None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


class _ClientProtocol(asyncio.StreamReaderProtocol):
    """The stream protocol of one client, telling the server when its socket is closed
    (the descriptor is free only then: ``abort()`` closes it on the next loop turn)."""

    def __init__(self, reader: asyncio.StreamReader, on_closed: Callable[[], None]) -> None:
        super().__init__(reader)
        self._on_closed = on_closed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._on_closed()


class _MeteredReader:
    """The StreamReader a server stream reads through: it marks the connection active,
    counts the bytes sent before the handshake completes, and applies the idle deadline
    after it (a ``TimeoutError`` in the handler, as a socket timeout in the threaded
    server)."""

    def __init__(self, reader: asyncio.StreamReader, slot: _Slot, server: "AsyncTLSServer") -> None:
        self._reader = reader
        self._slot = slot
        self._server = server
        self.deadline: float | None = None  # loop time

    async def read(self, n: int = -1) -> bytes:
        if self.deadline is None:
            data = await self._reader.read(n)
        else:
            async with asyncio.timeout_at(self.deadline):
                data = await self._reader.read(n)
        slot = self._slot
        if data:
            self._server._touch(slot)
            if not slot.handshake_done:
                slot.received += len(data)
                if slot.received > self._server.max_handshake_bytes:
                    raise HandshakeTooLarge(
                        f"sent more than {self._server.max_handshake_bytes} bytes "
                        "without completing the handshake")
        return data


class _ServerStream(AsyncTLSStream):
    """A server-side stream whose writes also end at the idle deadline."""

    peer: Any = None

    async def drain(self) -> None:
        deadline = self._reader.deadline
        if deadline is None:
            await self._writer.drain()
        else:
            async with asyncio.timeout_at(deadline):
                await self._writer.drain()


class AsyncTLSServer:
    """A TLS server on one asyncio event loop; ``await handler(stream)`` runs for each
    client after its handshake (``stream`` is an :class:`~tlslab.io.aio.AsyncTLSStream`
    with ``.peer``, the client's address).

    The constructor binds and listens (``OSError`` if it cannot); :meth:`serve_forever`
    runs the loop in the calling thread until :meth:`shutdown` (from any thread) or, in the
    main thread, SIGINT/SIGTERM; :meth:`server_close` releases everything.

    ``log(line)`` receives one line per handshake, failure, deadline and eviction;
    ``log_line(peer, stream, error)`` makes the line after each handshake (default:
    :func:`~tlslab.io.blocking.default_log_line`).  ``max_connections`` is lowered to what
    the file-descriptor limit allows (see :func:`connection_budget`); at the cap each new
    client closes the least recently active connection (see the module docstring).
    """

    def __init__(self, host: str, port: int, config,
                 handler: Callable[[AsyncTLSStream], Awaitable[Any]], *,
                 log: Callable[[str], Any] | None = None, log_line: LogLine | None = None,
                 handshake_timeout: float = 10.0, idle_timeout: float | None = 30.0,
                 max_connections: int = 4096, max_handshake_bytes: int = MAX_HANDSHAKE_BYTES,
                 read_limit: int = READ_LIMIT, backlog: int = 1024,
                 on_failure: Callable[[HandshakeError, Any], Any] | None = None) -> None:
        self.config = config
        self.handler = handler
        self.log = log or _logger.info
        self.log_line = log_line or default_log_line(config)
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_handshake_bytes = max_handshake_bytes
        self.read_limit = read_limit
        self.backlog = backlog
        self.on_failure = on_failure
        #: the cap asked for, and the one in force (the file-descriptor limit may lower it)
        self.requested_connections = max_connections
        self.max_connections = connection_budget(max_connections)
        #: counters: accepted, handshakes (completed), failed, evicted, timed_out
        self.counts: collections.Counter[str] = collections.Counter()
        #: the longest the event loop was late, in seconds (crypto, GC pauses, or the
        #: process not getting the CPU): what a new client may wait on top of its handshake
        self.max_loop_lag = 0.0
        self._slots: "collections.OrderedDict[_Slot, None]" = collections.OrderedDict()
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        self._stop = asyncio.Event()
        self._closed = False
        self._accepting = False
        self._in_use = 0  # client sockets open (evicted ones until their close is done)
        self._tasks: set[asyncio.Task] = set()
        self._last_accept_error = 0.0
        self._sock: socket.socket | None = _listen(host, port, backlog)
        self.server_address = self._sock.getsockname()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return len(self._slots)

    # -- running -----------------------------------------------------------------------
    def serve_forever(self) -> bool:
        """Serve until :meth:`shutdown`, or SIGINT/SIGTERM when called in the main thread;
        True when a signal stopped it.  Open connections are closed before it returns, and
        so is the listening socket: a server serves once."""
        if self._closed or self._sock is None:
            raise RuntimeError("this server was stopped; make a new one")
        return self._loop.run_until_complete(self._serve())

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from any thread)."""
        try:
            self._loop.call_soon_threadsafe(self._stop.set)
        except RuntimeError:  # the loop is closed already
            pass

    def server_close(self) -> None:
        """Close the listening socket, every connection left and the event loop."""
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if not self._loop.is_running():
            if self._slots:  # serve_forever was interrupted: finish the connections' tasks
                self._loop.run_until_complete(self._close_connections())
            self._loop.close()

    async def _serve(self) -> bool:
        by_signal: list[int] = []
        restore = self._catch_signals(by_signal)
        self._accepting = False
        self._resume_accept()
        self._watch_lag(self._loop.time())
        try:
            await self._stop.wait()
        finally:
            self._pause_accept()  # no new clients while the others are closed
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            await self._close_connections()
            restore()
        self._stop.clear()
        return bool(by_signal)

    def _watch_lag(self, expected: float) -> None:
        """Every LAG_TICK seconds: how late this callback runs is how long the loop was busy."""
        now = self._loop.time()
        lag = now - expected
        self.max_loop_lag = max(self.max_loop_lag, lag)
        if lag >= LAG_WARNING:  # new clients waited that long: say so, with what is open
            self.log(f"server: the event loop was busy for {lag * 1000:.0f} ms "
                     f"({len(self._slots)} connections open)")
        if not self._stop.is_set():
            self._loop.call_at(now + LAG_TICK, self._watch_lag, now + LAG_TICK)

    def summary(self) -> str:
        """One line: what the server did since it started."""
        c = self.counts
        return (f"served {c['accepted']} connections: {c['handshakes']} handshakes, "
                f"{c['failed']} failed handshakes, {c['timed_out']} deadlines passed, "
                f"{c['evicted']} closed at the cap; longest event-loop stall "
                f"{self.max_loop_lag * 1000:.0f} ms")

    def _catch_signals(self, caught: list[int]) -> Callable[[], None]:
        """SIGINT and SIGTERM stop the loop cleanly (only the main thread can get them)."""
        if threading.current_thread() is not threading.main_thread() or sys.platform == "win32":
            # Windows event loops take no signal handlers: Ctrl-C then stops serve through
            # KeyboardInterrupt, as before
            return lambda: None
        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def stop(signum: int = signum) -> None:
                caught.append(signum)
                self._stop.set()

            try:
                self._loop.add_signal_handler(signum, stop)
            except (ValueError, RuntimeError):
                continue
            installed.append((signum, previous))

        def restore() -> None:
            for signum, previous in installed:
                self._loop.remove_signal_handler(signum)
                try:
                    signal.signal(signum, previous)
                except (ValueError, TypeError):
                    pass
        return restore

    async def _close_connections(self) -> None:
        for slot in list(self._slots):
            slot.abort()
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # the aborted transports close their sockets on the next turns of the loop
        for _ in range(3):
            await asyncio.sleep(0)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """asyncio's own errors as one log line, not a traceback on stderr."""
        error = context.get("exception")
        what = context.get("message") or "event loop error"
        self.log(f"server: {what}" + (f": {_one_line(error)}" if error is not None else ""))

    # -- accepting -----------------------------------------------------------------------
    # asyncio's own accept loop takes up to a whole backlog of sockets at once, past any
    # cap, and on EMFILE logs (with a traceback) once per socket it could not take; this
    # one evicts as it accepts at the cap, and stops CAP_SLACK sockets past it until the
    # evicted ones are closed
    def _resume_accept(self) -> None:
        if not self._accepting and self._sock is not None and not self._stop.is_set():
            self._loop.add_reader(self._sock.fileno(), self._accept)
            self._accepting = True

    def _pause_accept(self) -> None:
        if self._accepting and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._accepting = False

    def _accept(self) -> None:
        """The listening socket is readable: accept what the cap allows (a batch at a time,
        so that clients already connected get their turn)."""
        for _ in range(ACCEPT_BATCH):
            if self._in_use >= self.max_connections + CAP_SLACK:
                self._pause_accept()  # until an evicted socket is closed (_released)
                return
            try:
                conn, address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:
                self._accept_failed(e)
                return
            self._in_use += 1
            self.counts["accepted"] += 1
            if len(self._slots) >= self.max_connections:
                self._make_room()
            slot = _Slot(format_peer(address))
            self._slots[slot] = None
            slot.task = task = self._loop.create_task(self._on_client(conn, address, slot))
            self._tasks.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._tasks.discard)

    def _accept_failed(self, error: OSError) -> None:
        """Out of descriptors (another part of the process, or a lower limit than we were
        told): try again shortly; one log line a second at most."""
        self._pause_accept()
        self._loop.call_later(ACCEPT_RETRY, self._resume_accept)
        now = time.monotonic()
        if now - self._last_accept_error >= 1.0:
            self._last_accept_error = now
            self.log(f"server: cannot accept a client ({_one_line(error)}); "
                     f"trying again in {ACCEPT_RETRY:g} s")

    def _released(self) -> None:
        """A client's socket is closed: its descriptor is free again."""
        self._in_use -= 1
        if self._in_use < self.max_connections + CAP_SLACK:
            self._resume_accept()

    # -- the cap -----------------------------------------------------------------------
    def _touch(self, slot: _Slot) -> None:
        slot.last_active = time.monotonic()
        if slot in self._slots:
            self._slots.move_to_end(slot)

    def _make_room(self) -> None:
        """At the cap: close the least recently active connection (the head of the
        ordered dict: activity moves a connection to its end)."""
        oldest = next(iter(self._slots))
        del self._slots[oldest]
        oldest.evicted = True
        self.counts["evicted"] += 1
        idle = time.monotonic() - oldest.last_active
        where = "after its handshake" if oldest.handshake_done else "in its handshake"
        self.log(f"{oldest.peer} closed to make room for a new client: the least recently "
                 f"active of {self.max_connections} connections (the cap), silent for "
                 f"{idle:.1f} s {where}")
        oldest.abort()  # not yet up (writer None): _on_client closes it as it starts

    # -- one client --------------------------------------------------------------------
    async def _on_client(self, conn: socket.socket, address: Any, slot: _Slot) -> None:
        from ..proto.server import ServerConnection

        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._released()

        try:
            # a handshake flight and the first data are separate small writes: without
            # this, Nagle + delayed ACK add ~40 ms to every exchange
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        reader = asyncio.StreamReader(limit=self.read_limit)
        protocol = _ClientProtocol(reader, release)
        try:
            transport, _ = await self._loop.connect_accepted_socket(lambda: protocol, sock=conn)
        except BaseException:
            conn.close()
            release()
            self._slots.pop(slot, None)
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        slot.writer = writer
        if slot.evicted or self._stop.is_set():
            transport.abort()
            return
        metered = _MeteredReader(reader, slot, self)
        stream = _ServerStream(metered, writer, ServerConnection(self.config))
        stream.peer = address
        try:
            await self._client(stream, slot, metered)
        except asyncio.CancelledError:
            pass  # shutdown: the transport is aborted below
        finally:
            self._slots.pop(slot, None)
            if slot.evicted or self._stop.is_set():
                transport.abort()
            else:
                await self._close(stream)

    async def _client(self, stream: _ServerStream, slot: _Slot, metered: _MeteredReader) -> None:
        peer = slot.peer
        try:
            try:
                await stream.do_handshake(self.handshake_timeout)
            except HandshakeError as e:
                if slot.evicted or self._stop.is_set():
                    return  # the eviction line said it; a reset is not the client's doing
                self.counts["failed"] += 1
                if e.code == "timeout":
                    self.counts["timed_out"] += 1
                self._say(self.log_line(peer, stream, e))
                if self.on_failure is not None:
                    self.on_failure(e, stream.peer)
                return
            slot.handshake_done = True
            self.counts["handshakes"] += 1
            self._say(self.log_line(peer, stream, None))
            if self.idle_timeout is not None:
                metered.deadline = asyncio.get_running_loop().time() + self.idle_timeout
            await self.handler(stream)
        except HandshakeTooLarge as e:
            self.counts["failed"] += 1
            self.log(f"{peer} closed: {e}")
        except TimeoutError:
            if not slot.evicted:
                self.counts["timed_out"] += 1
                self.log(f"{peer} closed: no request within {self.idle_timeout:g} s "
                         "after the handshake")
        except ConnectionError as e:
            if slot.evicted or self._stop.is_set():
                return
            # a client that sent close_notify (or ended TCP) before our answer went out
            # closed normally: say so, rather than "error: ConnectionError: ..."
            ce = stream.closed_event
            if stream.tcp_eof or (ce is not None and not ce.error):
                how = "close_notify" if ce is not None else "TCP FIN, no close_notify"
                self.log(f"{peer} closed by the client ({how}) before the answer was sent")
            else:
                self.log(f"{peer} error: {_one_line(e)}")
        except Exception as e:  # a misbehaving client must never take the server down
            self.log(f"{peer} error: {_one_line(e)}")

    def _say(self, line: str | None) -> None:
        if line:  # None: the hook logs later itself (e.g. after the HTTP exchange)
            self.log(line)

    async def _close(self, stream: _ServerStream) -> None:
        """close_notify when the client is still there, and the socket closed in any case
        (a client that stopped reading gets a second, then an abort)."""
        try:
            await stream.close(timeout=1.0)
        except Exception:  # the socket goes whatever happened
            stream._writer.transport.abort()
