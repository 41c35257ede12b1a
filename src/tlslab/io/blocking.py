"""Blocking sockets around the sans-IO engine: ``connect()``, ``TLSSocket`` and ``serve()``.

The engine never raises on a protocol failure: it queues the alert and reports
:class:`~tlslab.proto.events.ConnectionClosed`.  This adapter turns that into
:class:`HandshakeError` (reason, alert sent/received, the partial trace) after
making sure the alert actually went out on the wire.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from typing import Any, Callable

from ..proto.events import (ApplicationData, ConnectionClosed, HandshakeComplete,
                            NewSessionTicket)
from .view import ConnectionView

__all__ = ["HandshakeError", "TLSSocket", "TLSServer", "connect", "make_server", "serve",
           "negotiated_summary", "format_peer", "handshake_log_line", "failure_log_line",
           "default_log_line"]

_logger = logging.getLogger("tlslab.serve")

_RECV_SIZE = 65536
#: NewSessionTicket events a TLSSocket / AsyncTLSStream keeps (the newest): RFC 8446 §4.6.1 lets
#: a server send tickets at any time, in any number; rustls keeps 8 TLS 1.3 tickets per server.
MAX_KEPT_TICKETS = 8


class HandshakeError(Exception):
    """The TLS handshake did not complete.

    ``reason`` is one line; ``alert_sent`` / ``alert_received`` name the alert (or are
    ``None``); ``trace`` is the partial :class:`~tlslab.proto.trace.Trace`; ``code`` is a
    diagnosis code when the engine knows one (e.g. ``"hostname-mismatch"``,
    ``"timeout"``); ``error`` is the engine's TLSError, if the failure was local.
    """

    def __init__(self, reason: str, alert_sent: str | None = None,
                 alert_received: str | None = None, trace: Any = None, *,
                 code: str | None = None, error: BaseException | None = None,
                 negotiated: dict | None = None, peer_certificates: list | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.alert_sent = alert_sent
        self.alert_received = alert_received
        self.trace = trace
        self.code = code
        self.error = error
        self.negotiated = negotiated or {}
        self.peer_certificates = peer_certificates or []

    def __str__(self) -> str:
        text = self.reason
        if self.alert_sent:
            text += f" (sent alert {self.alert_sent})"
        elif self.alert_received and self.alert_received not in text:
            text += f" (received alert {self.alert_received})"
        return text


def format_peer(address: Any) -> str:
    """``host:port`` with IPv6 hosts in brackets."""
    try:
        host, port = address[0], address[1]
    except (TypeError, IndexError):
        return str(address)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def negotiated_summary(n: dict) -> str:
    """One line: ``TLS 1.3 TLS_AES_128_GCM_SHA256 x25519 ecdsa_secp256r1_sha256 alpn=h2 sni=x hrr=no``."""
    parts = [str(n.get(k)) for k in ("version", "cipher_suite", "group", "signature_scheme")
             if n.get(k)]
    parts.append(f"alpn={n.get('alpn_protocol') or '-'}")
    parts.append(f"sni={n.get('server_name') or '-'}")
    parts.append(f"hrr={'yes' if n.get('hello_retry') else 'no'}")
    if n.get("resumed"):
        parts.append("resumed=yes")
    if n.get("early_data_accepted") is not None:
        parts.append(f"0rtt={'accepted' if n['early_data_accepted'] else 'rejected'}")
    if n.get("version") in ("TLS 1.2", "TLS 1.1", "TLS 1.0"):
        parts.append(f"ems={'yes' if n.get('extended_master_secret') else 'no'}")
        parts.append(f"reneg_info={'yes' if n.get('secure_renegotiation') else 'no'}")
    return " ".join(parts)


def _client_certificate_subject(tls) -> str | None:
    """The subject of the certificate the client authenticated with (server side), if any."""
    conn = tls.connection
    if getattr(conn, "is_client", True):
        return tls.negotiated.get("client_certificate")
    certs = conn.peer_certificates
    return certs[0].subject.rfc4514_string() if certs else None


def handshake_log_line(tls, peer: str) -> str:
    """``127.0.0.1:5555 handshake ok: TLS 1.3 ... client_cert="CN=..."`` (server logs)."""
    line = f"{peer} handshake ok: {negotiated_summary(tls.negotiated)}"
    subject = _client_certificate_subject(tls)
    if subject:
        line += f' client_cert="{subject}"'
    elif getattr(tls.connection.config, "client_ca_file", None) and not tls.negotiated.get("resumed"):
        line += " client_cert=none"
    return line


#: alerts a server sends when it rejects the client's certificate
_CLIENT_CERT_ALERTS = {"certificate_required", "bad_certificate", "unknown_ca",
                       "certificate_expired", "unsupported_certificate", "certificate_unknown",
                       "certificate_revoked", "access_denied"}


def failure_log_line(e: "HandshakeError", peer: str, config=None) -> str:
    """One log line for a failed server-side handshake; says so when it was the client
    certificate that was rejected (and why)."""
    if (config is not None and getattr(config, "client_ca_file", None)
            and e.alert_sent in _CLIENT_CERT_ALERTS):
        return f"{peer} handshake failed: client certificate rejected: {e}"
    return f"{peer} handshake failed: {e}"


#: ``log_line(peer, tls, error) -> str``: the one line a server logs per connection;
#: ``tls`` is the connection (its trace and negotiated parameters), ``error`` the
#: :class:`HandshakeError` when the handshake failed; ``None``: nothing now (the hook
#: logs later itself)
LogLine = Callable[[str, Any, "HandshakeError | None"], "str | None"]


def default_log_line(config=None) -> LogLine:
    """The plain ``log_line``: :func:`handshake_log_line` or :func:`failure_log_line`."""
    def line(peer: str, tls, error: "HandshakeError | None") -> str:
        if error is not None:
            return failure_log_line(error, peer, config)
        return handshake_log_line(tls, peer)
    return line


class TLSSocket(ConnectionView):
    """A TLS connection over a connected TCP socket (client or server side).

    ``timing`` holds ``time.monotonic()`` stamps: ``start`` (before the TCP connect),
    ``tcp_connected``, ``first_byte`` (first bytes from the peer),
    ``handshake_complete`` and ``first_data`` (first application data received);
    :attr:`timings_ms` gives durations.

    :attr:`resumed` tells whether the handshake resumed a session (a TLS 1.3 PSK from a
    ticket, or a TLS 1.2 session ticket / session ID); :attr:`early_data_accepted` is
    ``None`` when no 0-RTT data was offered, else whether the server accepted it.

    :attr:`truncated` is true when the peer closed the TCP connection after the handshake
    without a close_notify alert: :meth:`recv` then returns ``b""`` as at a clean end,
    but the data may have been cut short (a careless peer, or a truncation attack).

    0-RTT on the server side: early data is read like any other data, first and in
    order, but a :meth:`recv` never mixes early and 1-RTT bytes and sets
    :attr:`last_read_early` for the bytes it returned; :attr:`early_data_received` holds
    all the early bytes and :attr:`early_bytes_pending` how many are still unread.
    Early data can be replayed by an attacker: act on it only for idempotent requests.
    """

    def __init__(self, sock: socket.socket, connection, *, peer: Any = None) -> None:
        try:
            # a handshake flight and the first data are separate small writes: without
            # this, Nagle + delayed ACK add ~40 ms to every exchange
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self._sock = sock
        self.connection = connection
        self.peer = peer
        self._inbox = bytearray()
        self._early_received = bytearray()
        self._lock = threading.RLock()
        self.closed_event: ConnectionClosed | None = None
        self.tcp_eof = False
        #: the newest MAX_KEPT_TICKETS NewSessionTicket events (a server may send any number)
        self.tickets: list[NewSessionTicket] = []
        self.tickets_received = 0   # all of them, kept or not
        now = time.monotonic()
        self.timing: dict[str, float] = {"start": now, "tcp_connected": now}

    # -- engine state ----------------------------------------------------------------
    @property
    def timings_ms(self) -> dict[str, float]:
        """Durations in milliseconds: tcp_connect, first_byte and handshake (from the
        TCP connect), total (from start to handshake complete)."""
        t = self.timing
        out: dict[str, float] = {"tcp_connect": (t["tcp_connected"] - t["start"]) * 1000}
        if "first_byte" in t:
            out["first_byte"] = (t["first_byte"] - t["tcp_connected"]) * 1000
        if "handshake_complete" in t:
            out["handshake"] = (t["handshake_complete"] - t["tcp_connected"]) * 1000
            out["total"] = (t["handshake_complete"] - t["start"]) * 1000
        if "first_data" in t:
            out["first_data"] = (t["first_data"] - t["tcp_connected"]) * 1000
        return {k: round(v, 3) for k, v in out.items()}

    def fileno(self) -> int:
        return self._sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def getpeername(self):
        return self._sock.getpeername()

    # -- plumbing --------------------------------------------------------------------
    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data:
            self._sock.sendall(data)

    def _read_once(self) -> bool:
        """Read from the socket and feed the engine; False on TCP EOF."""
        data = self._sock.recv(_RECV_SIZE)
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
        try:
            self._flush()
        except OSError:
            if not self.connection.closed:
                raise
        return True

    def _handshake_error(self, reason: str | None = None, code: str | None = None) -> HandshakeError:
        conn = self.connection
        ce = self.closed_event
        err = conn.error
        return HandshakeError(
            reason or (ce.error if ce and ce.error else str(err) if err else "handshake failed"),
            alert_sent=ce.alert_sent if ce else None,
            alert_received=ce.alert_received if ce else None,
            trace=conn.trace, code=code or getattr(err, "code", None), error=err,
            negotiated=dict(conn.negotiated), peer_certificates=list(conn.peer_certificates))

    def do_handshake(self, timeout: float | None = None, *, early_data: bytes | None = None) -> None:
        """Run the handshake to completion or raise :class:`HandshakeError`.

        ``timeout`` bounds the whole handshake (default: the socket's timeout).
        ``early_data`` (client only): sent as 0-RTT data right after the ClientHello when
        the session store holds a ticket that allows it (RFC 8446 §4.2.10); check
        :attr:`early_data_accepted` afterwards.
        """
        conn = self.connection
        if timeout is None:
            timeout = self._sock.gettimeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if conn.is_client and conn.state is conn.INITIAL:
                if early_data:
                    conn.start_handshake(early_data=bytes(early_data))
                else:
                    conn.start_handshake()
            try:
                self._flush()
                while not conn.handshake_complete:
                    if conn.closed:
                        raise self._handshake_error()
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise socket.timeout
                        self._sock.settimeout(left)
                    if not self._read_once():
                        if conn.closed:
                            raise self._handshake_error()
                        what = ("before sending anything" if "first_byte" not in self.timing
                                else f"during the handshake (in state {conn.state.name})")
                        raise self._handshake_error(
                            f"peer closed the connection {what}, without an alert")
            except socket.timeout:
                raise self._handshake_error(
                    f"timed out after {timeout:g} s waiting for the peer "
                    f"(in state {conn.state.name})", code="timeout") from None
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
                what = {ConnectionResetError: "reset by peer",
                        BrokenPipeError: "closed by peer (broken pipe)"}.get(type(e), "aborted")
                raise self._handshake_error(
                    f"connection {what} during the handshake (in state {conn.state.name})") from None
            finally:
                if deadline is not None:
                    self._sock.settimeout(timeout)
            self.timing.setdefault("handshake_complete", time.monotonic())

    def wait_for_tickets(self, timeout: float = 2.0, count: int = 1) -> int:
        """Read until ``count`` NewSessionTickets arrived (TLS 1.3 sends them after the
        handshake, RFC 8446 §4.6.1), the peer closed, or ``timeout`` seconds passed.

        Application data read meanwhile is kept for :meth:`recv`.  Returns the number of
        tickets received so far.  Raises :class:`HandshakeError` when the peer aborted with
        an alert instead: in TLS 1.3 the server judges the client's certificate after the
        client already considers the handshake complete, so a ``certificate_required``
        (or ``bad_certificate``...) alert only shows up here or on the first read.
        """
        deadline = time.monotonic() + timeout
        old = self._sock.gettimeout()
        with self._lock:
            try:
                while (self.tickets_received < count and self.closed_event is None
                       and not self.tcp_eof and not self.connection.closed
                       and self.negotiated.get("version") == "TLS 1.3"):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._sock.settimeout(left)
                    try:
                        if not self._read_once():
                            break
                    except (socket.timeout, ConnectionResetError):
                        break
            finally:
                try:
                    self._sock.settimeout(old)
                except OSError:
                    pass
            error = self.post_handshake_error()
            if error is not None:
                raise error
            return self.tickets_received

    def post_handshake_error(self) -> "HandshakeError | None":
        """A :class:`HandshakeError` when the peer aborted with a fatal alert after the
        handshake (e.g. TLS 1.3 client certificate rejected), else None."""
        ce = self.closed_event
        if ce is not None and ce.error and (ce.alert_received or ce.alert_sent):
            if ce.alert_sent:  # we found fault with what the peer sent (the alert says what)
                who = "we"
            else:
                who = "the server" if getattr(self.connection, "is_client", True) else "the client"
            return self._handshake_error(f"{who} aborted the connection after the handshake: {ce.error}")
        return None

    # -- application data -------------------------------------------------------------
    def send(self, data: bytes) -> int:
        """Encrypt and send all of ``data``; returns ``len(data)``."""
        with self._lock:
            self.connection.send_application_data(bytes(data))
            self._flush()
        return len(data)

    sendall = send

    def recv(self, max_bytes: int = _RECV_SIZE, *, deadline: float | None = None) -> bytes:
        """Up to ``max_bytes`` of application data; ``b""`` once the peer closed
        (close_notify or TCP EOF: see :attr:`tcp_eof` and :attr:`closed_event`; after a
        TCP EOF without close_notify :attr:`truncated` is true).

        ``deadline`` (a ``time.monotonic()`` value) bounds the whole call, however slowly
        the peer drips its bytes; past it, ``TimeoutError`` (``socket.timeout``).  Without
        it, the socket timeout applies to each read from the socket.

        0-RTT (server side): one call never returns both early and 1-RTT bytes;
        :attr:`last_read_early` tells whether the bytes it returned arrived as early data
        (replayable: see :attr:`early_data_received`).
        """
        with self._lock:
            old = self._sock.gettimeout() if deadline is not None else None
            self.last_read_early = False
            try:
                while not self._inbox:
                    if self.closed_event is not None:
                        if self.closed_event.error:
                            raise ConnectionError(f"TLS connection failed: {self.closed_event.error}")
                        return b""
                    if self.tcp_eof or self.connection.closed:
                        return b""
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise socket.timeout("timed out")
                        self._sock.settimeout(left if old is None else min(left, old))
                    self._read_once()
            finally:
                if deadline is not None:
                    try:
                        self._sock.settimeout(old)
                    except OSError:
                        pass
            return self._take(max_bytes)

    def recv_all(self, limit: int = 16 << 20) -> bytes:
        """Everything until the peer closes (at most ``limit`` bytes);
        :attr:`last_read_early` is then true when any of it arrived as 0-RTT."""
        chunks = bytearray()
        early = False
        while len(chunks) < limit:
            data = self.recv()
            early = early or self.last_read_early
            if not data:
                break
            chunks += data
        self.last_read_early = early
        return bytes(chunks)

    def close(self) -> None:
        """Send close_notify (if the connection is still open) and close the socket."""
        with self._lock:
            try:
                if not self.connection.closed:
                    self.connection.close()
                self._flush()
            except (OSError, ConnectionError):
                pass
            finally:
                try:
                    self._sock.close()
                except OSError:
                    pass

    def __enter__(self) -> "TLSSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def connect(host: str, port: int = 443, config=None, timeout: float = 10.0, *,
            early_data: bytes | None = None, **client_config_kwargs) -> TLSSocket:
    """Open a TCP connection to ``host:port`` and run a TLS handshake.

    ``config`` is a :class:`~tlslab.proto.config.ClientConfig`; without one, the keyword
    arguments build it (``server_name`` defaults to ``host``).  Raises
    :class:`HandshakeError` when the handshake fails, ``OSError`` (``socket.gaierror``,
    ``ConnectionRefusedError``, ``TimeoutError``) when the TCP connection does.

    Resumption: tickets are kept in ``config.session_store`` (a
    :class:`~tlslab.proto.tickets.TicketStore` per config by default, or a
    :class:`~tlslab.proto.tickets.FileTicketStore`; ``None`` disables it), so connecting
    again *with the same config* (or another config sharing the store) resumes; see
    :attr:`TLSSocket.resumed`.  TLS 1.3 tickets arrive after the handshake: read some
    data, or call :meth:`TLSSocket.wait_for_tickets`, before closing.

    ``early_data``: bytes to send as 0-RTT data when the store holds a ticket that allows
    it (RFC 8446 §4.2.10; the server must set ``max_early_data_size``).  Afterwards
    :attr:`TLSSocket.early_data_accepted` is ``None`` (not sent), ``True`` or ``False``
    (rejected: the data was not delivered, send it again).  0-RTT data can be replayed by
    an attacker: send only idempotent requests this way.

    Client certificates: ``certificate_chain`` and ``private_key`` in the config, e.g.
    from :func:`tlslab.proto.config.load_identity`.
    """
    from ..proto.client import ClientConnection
    from ..proto.config import ClientConfig

    host = _strip_brackets(host)
    if config is None:
        client_config_kwargs.setdefault("server_name", host)
        config = ClientConfig(**client_config_kwargs)
    elif client_config_kwargs:
        raise TypeError("pass either config or ClientConfig keyword arguments, not both")
    conn = ClientConnection(config)
    start = time.monotonic()
    sock = socket.create_connection((host, port), timeout=timeout)
    tls = TLSSocket(sock, conn, peer=(host, port))
    tls.timing["start"] = start
    try:
        tls.do_handshake(timeout, early_data=early_data)
    except BaseException:
        try:
            sock.close()
        except OSError:
            pass
        raise
    return tls


# ------------------------------------------------------------------------------- server

class _Handler(socketserver.BaseRequestHandler):
    server: "TLSServer"

    def handle(self) -> None:
        srv = self.server
        peer = format_peer(self.client_address)
        sock: socket.socket = self.request
        tls = None
        try:
            sock.settimeout(srv.handshake_timeout)
            from ..proto.server import ServerConnection
            tls = TLSSocket(sock, ServerConnection(srv.config), peer=self.client_address)
            try:
                tls.do_handshake(srv.handshake_timeout)
            except HandshakeError as e:
                line = srv.log_line(peer, tls, e)
                if line:
                    srv.log(line)
                if srv.on_failure is not None:
                    srv.on_failure(e, self.client_address)
                return
            line = srv.log_line(peer, tls, None)
            if line:  # None: the hook logs later itself (e.g. after the HTTP exchange)
                srv.log(line)
            sock.settimeout(srv.io_timeout)
            srv.handler(tls)
        except ConnectionError as e:
            # A client that sent close_notify (or ended TCP) before our answer went out closed
            # normally: say so, rather than "error: ConnectionError: connection is closed".
            ce = getattr(tls, "closed_event", None) if tls is not None else None
            if tls is not None and (tls.tcp_eof or (ce is not None and not ce.error)):
                how = "close_notify" if ce is not None else "TCP FIN, no close_notify"
                srv.log(f"{peer} closed by the client ({how}) before the answer was sent")
            else:
                srv.log(f"{peer} error: {_one_line(e)}")
        except Exception as e:  # a misbehaving client must never take the server down
            srv.log(f"{peer} error: {_one_line(e)}")
        finally:
            if tls is not None:
                tls.close()


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class TLSServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A TCP server running one thread per client; each gets a handshake, then
    ``handler(tls_socket)``.  ``log(line)`` receives one line per handshake and per failure.

    At most ``max_connections`` clients are served at once; beyond that, new connections
    are closed at once (one log line each).  ``handshake_timeout`` bounds the whole
    handshake; ``io_timeout`` is the socket timeout the handler starts with (see
    :meth:`TLSSocket.recv` ``deadline=`` for a total limit).  ``log_line(peer, tls,
    error)`` makes the line logged after each handshake (default: :func:`default_log_line`).
    """

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128  # listen() backlog (socketserver's default, 5, drops bursts)

    def __init__(self, host: str, port: int, config, handler: Callable[[TLSSocket], Any], *,
                 log: Callable[[str], Any] | None = None, handshake_timeout: float = 10.0,
                 io_timeout: float | None = 30.0,
                 on_failure: Callable[[HandshakeError, Any], Any] | None = None,
                 max_connections: int = 256, log_line: LogLine | None = None) -> None:
        host = _strip_brackets(host)
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.config = config
        self.handler = handler
        self.log = log or _logger.info
        self.handshake_timeout = handshake_timeout
        self.io_timeout = io_timeout
        self.on_failure = on_failure
        self.log_line = log_line or default_log_line(config)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.log(f"{format_peer(client_address)} refused: already serving "
                     f"{self.max_connections} connections")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts the client's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        import sys
        self.log(f"{format_peer(client_address)} error: {_one_line(sys.exc_info()[1])}")


def make_server(host: str, port: int, config, handler: Callable[[TLSSocket], Any], **kw) -> TLSServer:
    """A bound, listening :class:`TLSServer` (port 0 picks a free one: see ``.port``);
    call ``serve_forever()`` (e.g. in a thread) and ``shutdown()`` to stop."""
    return TLSServer(host, port, config, handler, **kw)


def serve(host: str, port: int, config, handler: Callable[[TLSSocket], Any], *,
          ready: Callable[[TLSServer], Any] | None = None, **kw) -> None:
    """Serve TLS clients until interrupted (KeyboardInterrupt propagates after cleanup).

    ``ready(server)`` is called once the socket listens (e.g. to print the port).
    """
    srv = make_server(host, port, config, handler, **kw)
    try:
        if ready is not None:
            ready(srv)
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
