"""0-RTT data stays marked through the I/O adapters (issue 14, finding 4).

The engine marks early data (``ApplicationData(early=True)``); ``TLSSocket`` and
``AsyncTLSStream`` must tell the application which bytes arrived that way, and the page
``tlslab serve`` answers with must refuse a non-idempotent request sent as 0-RTT with
425 Too Early (RFC 8470 §5.2).  Everything runs through the real engine on 127.0.0.1,
with every network step bounded in time.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

import tlslab
from tlslab.io.blocking import make_server
from tlslab.proto import events as ev
from tlslab.proto.client import ClientConnection
from tlslab.workbench import httppage

STEP = 5.0          # seconds: the bound on every connect / read / handshake below
EARLY = b"early-part:0123456789"
LATE = b"late-part:abcdefghij"

pytestmark = pytest.mark.timeout(60)


# ``pki`` (a throwaway CA and leaf) is the conftest fixture


def server_config(pki, **kw):
    chain, key, _ = pki
    kw.setdefault("max_early_data_size", 4096)
    return tlslab.ServerConfig(certificate_chain=chain, private_key=key, **kw)


def client_config(pki):
    return tlslab.ClientConfig(ca_file=pki[2], server_name="localhost")


@pytest.fixture
def blocking_server(pki):
    """Factory: a TLSServer on an ephemeral port, serving ``handler`` in its threads."""
    started = []

    def start(handler, config=None):
        srv = make_server("127.0.0.1", 0, config or server_config(pki), handler,
                          log=lambda line: None, handshake_timeout=STEP, io_timeout=STEP)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True)
        t.start()
        started.append((srv, t))
        return srv

    yield start
    for srv, t in started:
        srv.shutdown()
        srv.server_close()
        t.join(STEP)


def get_ticket(port: int, config) -> None:
    """A full handshake that leaves a 0-RTT-capable ticket in ``config.session_store``."""
    with tlslab.connect("127.0.0.1", port, config=config, timeout=STEP) as s:
        assert s.resumed is False
        s.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert s.wait_for_tickets(timeout=STEP) >= 1
        assert all(t.max_early_data_size for t in s.tickets)


def raw_client(port: int, config, early: bytes, late: bytes) -> tuple[bool | None, bytes]:
    """Resume with ``early`` as 0-RTT data, then send ``late`` as 1-RTT data in the same
    TCP write as the client's Finished, so that the server's engine delivers both from
    one socket read.  Returns (early_data_accepted, everything the server sent back)."""
    conn = ClientConnection(config)
    deadline = time.monotonic() + STEP
    with socket.create_connection(("127.0.0.1", port), timeout=STEP) as sock:
        conn.start_handshake(early_data=early)
        sock.sendall(conn.data_to_send())
        received = bytearray()
        sent_late = False
        while not conn.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("raw client: no end of the exchange in time")
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, ev.ApplicationData):
                    received += event.data
            if conn.handshake_complete and not sent_late:
                conn.send_application_data(late)   # queued right behind our Finished
                sent_late = True
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if sent_late and len(received) >= len(early) + len(late):
                break
        accepted = conn.negotiated.get("early_data_accepted")
        if not conn.closed:
            conn.close()
            try:
                sock.sendall(conn.data_to_send())
            except OSError:
                pass
    return accepted, bytes(received)


# --------------------------------------------------------------------------- blocking adapter

def recording_echo(seen: list):
    """A TLSServer handler: read ``EARLY + LATE``, noting (bytes, last_read_early) per read
    and what the socket says about early data, then echo it all back."""
    def handler(sock) -> None:
        pending = sock.early_bytes_pending
        chunks = []
        deadline = time.monotonic() + STEP
        total = bytearray()
        while len(total) < len(EARLY) + len(LATE):
            chunk = sock.recv(65536, deadline=deadline)
            if not chunk:
                break
            chunks.append((chunk, sock.last_read_early))
            total += chunk
        seen.append({"pending": pending, "chunks": chunks, "resumed": sock.resumed,
                     "early_data_received": sock.early_data_received})
        sock.send(bytes(total))
    return handler


def test_blocking_server_tells_early_from_1rtt_data(pki, blocking_server):
    seen: list = []
    srv = blocking_server(recording_echo(seen))
    config = client_config(pki)
    get_ticket(srv.port, config)

    accepted, echoed = raw_client(srv.port, config, EARLY, LATE)
    assert accepted is True
    assert echoed == EARLY + LATE
    resumed = [r for r in seen if r["resumed"]]   # not the connection that got the ticket
    assert len(resumed) == 1
    record = resumed[0]
    assert record["early_data_received"] == EARLY
    # both were in the inbox before the first read: a read must not run across the border
    assert record["pending"] == len(EARLY)
    assert record["chunks"] == [(EARLY, True), (LATE, False)]


def test_blocking_server_without_0rtt_reports_nothing_early(pki, blocking_server):
    seen: list = []
    srv = blocking_server(recording_echo(seen))
    with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=STEP) as s:
        s.send(EARLY + LATE)
        got = bytearray()
        deadline = time.monotonic() + STEP
        while len(got) < len(EARLY + LATE):
            chunk = s.recv(deadline=deadline)
            assert chunk
            got += chunk
            assert s.last_read_early is False
        assert s.early_data_received == b""
    assert len(seen) == 1
    assert seen[0]["early_data_received"] == b""
    assert seen[0]["chunks"] and all(flag is False for _, flag in seen[0]["chunks"])


# --------------------------------------------------------------------------- asyncio adapter

def test_aio_server_tells_early_from_1rtt_data(pki):
    async def main():
        seen: list = []

        async def handler(stream):
            pending = stream.early_bytes_pending
            chunks = []
            total = bytearray()
            while len(total) < len(EARLY) + len(LATE):
                chunk = await asyncio.wait_for(stream.read(65536), STEP)
                if not chunk:
                    break
                chunks.append((chunk, stream.last_read_early))
                total += chunk
            seen.append({"pending": pending, "chunks": chunks, "resumed": stream.resumed,
                         "early_data_received": stream.early_data_received})
            stream.write(bytes(total))
            await asyncio.wait_for(stream.drain(), STEP)

        server = await tlslab.aio.start_server(server_config(pki), handler, "127.0.0.1", 0,
                                               log=lambda line: None, handshake_timeout=STEP)
        port = server.sockets[0].getsockname()[1]
        config = client_config(pki)
        try:
            await asyncio.wait_for(asyncio.to_thread(get_ticket, port, config), 2 * STEP)
            result = await asyncio.wait_for(
                asyncio.to_thread(raw_client, port, config, EARLY, LATE), 2 * STEP)
            # the handler finishes after the client has its answer
            for _ in range(int(STEP / 0.02)):
                if any(r["resumed"] for r in seen):
                    break
                await asyncio.sleep(0.02)
            return result, seen
        finally:
            server.close()
            await asyncio.wait_for(server.wait_closed(), STEP)

    (accepted, echoed), seen = asyncio.run(asyncio.wait_for(main(), 30))
    assert accepted is True
    assert echoed == EARLY + LATE
    resumed = [r for r in seen if r["resumed"]]
    assert len(resumed) == 1
    assert resumed[0]["early_data_received"] == EARLY
    assert resumed[0]["pending"] == len(EARLY)
    assert resumed[0]["chunks"] == [(EARLY, True), (LATE, False)]


def test_aio_read_all_flags_any_early_byte(pki):
    async def main():
        seen: list = []

        async def handler(stream):
            data = await asyncio.wait_for(stream.read(-1), STEP)  # until the client closes
            if stream.resumed:
                seen.append((data, stream.last_read_early))

        server = await tlslab.aio.start_server(server_config(pki), handler, "127.0.0.1", 0,
                                               log=lambda line: None, handshake_timeout=STEP)
        port = server.sockets[0].getsockname()[1]
        config = client_config(pki)
        try:
            await asyncio.wait_for(asyncio.to_thread(get_ticket, port, config), 2 * STEP)
            stream = await tlslab.aio.connect("127.0.0.1", port, config=config, timeout=STEP,
                                              early_data=EARLY)
            accepted = stream.early_data_accepted
            stream.write(LATE)
            await asyncio.wait_for(stream.drain(), STEP)
            await stream.close(timeout=STEP)
            for _ in range(int(STEP / 0.02)):
                if seen:
                    break
                await asyncio.sleep(0.02)
            return accepted, seen
        finally:
            server.close()
            await asyncio.wait_for(server.wait_closed(), STEP)

    accepted, seen = asyncio.run(asyncio.wait_for(main(), 30))
    assert accepted is True
    assert seen == [(EARLY + LATE, True)]


# --------------------------------------------------------------------------- serve's page

POST = (b"POST /transfer?to=mallory&amount=100 HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 0\r\n\r\n")
GET = b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"


def read_response(s) -> bytes:
    deadline = time.monotonic() + STEP
    out = bytearray()
    while True:
        chunk = s.recv(deadline=deadline)
        if not chunk:
            return bytes(out)
        out += chunk


@pytest.fixture
def page_server(blocking_server):
    """A server answering with ``serve``'s page handler."""
    return blocking_server(httppage.http_handler)


def test_serve_refuses_post_sent_as_0rtt_with_425(pki, page_server):
    config = client_config(pki)
    get_ticket(page_server.port, config)
    with tlslab.connect("127.0.0.1", page_server.port, config=config, timeout=STEP,
                        early_data=POST) as s:
        assert s.resumed is True and s.early_data_accepted is True
        response = read_response(s)
    assert response.startswith(b"HTTP/1.1 425 Too Early\r\n"), response[:80]
    assert b"tlslab: your TLS connection" not in response      # the request was not served
    assert b"/transfer" not in response
    # the same request after the handshake is not "too early": it gets the usual answer
    with tlslab.connect("127.0.0.1", page_server.port, config=config, timeout=STEP) as s:
        s.send(POST)
        assert read_response(s).startswith(b"HTTP/1.1 405 ")


def test_serve_answers_get_sent_as_0rtt(pki, page_server):
    config = client_config(pki)
    get_ticket(page_server.port, config)
    with tlslab.connect("127.0.0.1", page_server.port, config=config, timeout=STEP,
                        early_data=GET) as s:
        assert s.resumed is True and s.early_data_accepted is True
        response = read_response(s)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response[:80]
    assert b"GET /hello HTTP/1.1 (sent as 0-RTT early data)" in response
    assert b"0-RTT early data:    accepted" in response


def test_serve_refuses_request_that_starts_in_0rtt(pki, page_server):
    """RFC 8470 §5.2: a request counts as early when any part of it came in 0-RTT."""
    config = client_config(pki)
    get_ticket(page_server.port, config)
    head, rest = POST[:10], POST[10:]
    accepted, response = raw_client(page_server.port, config, head, rest)
    assert accepted is True
    assert response.startswith(b"HTTP/1.1 425 Too Early\r\n"), response[:80]


def test_page_methods_allowed_in_0rtt():
    for method in ("GET", "HEAD", "OPTIONS"):
        answer = httppage.response_for_request(f"{method} / HTTP/1.1\r\n\r\n".encode(), {},
                                               None, early=True)
        assert not answer.startswith(b"HTTP/1.1 425"), method
    for method in ("POST", "PUT", "DELETE", "PATCH", "BREW"):
        answer = httppage.response_for_request(f"{method} / HTTP/1.1\r\n\r\n".encode(), {},
                                               None, early=True)
        assert answer.startswith(b"HTTP/1.1 425 Too Early"), method
        assert httppage.response_for_request(f"{method} / HTTP/1.1\r\n\r\n".encode(), {},
                                             None).startswith(b"HTTP/1.1 405"), method
