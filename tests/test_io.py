"""I/O adapters: in-memory pair, blocking sockets, asyncio streams (127.0.0.1 only),
plus the renderers and the HTTP page on the traces they produce."""
from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from conftest import pki_client_config as client_config, pki_server_config as server_config

import tlslab
from tlslab.io.blocking import HandshakeError, make_server
from tlslab.io.memory import MemoryPair, closed_event, handshake
from tlslab.proto import events as ev
from tlslab.proto.trace import Trace
from tlslab.workbench import httppage, render
from rich.console import Console


# ``pki`` (a throwaway CA and leaf) is the conftest fixture


@pytest.fixture
def tls_server(pki):
    """Factory: start a blocking TLSServer in a thread on an ephemeral port."""
    started = []

    def start(handler, **config_kw):
        logs: list[str] = []
        srv = make_server("127.0.0.1", 0, server_config(pki, **config_kw), handler,
                          log=logs.append, handshake_timeout=5.0, io_timeout=5.0)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        srv.logs = logs
        started.append((srv, t))
        return srv

    yield start
    for srv, t in started:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def echo(sock):
    while True:
        data = sock.recv()
        if not data:
            return
        sock.send(data)


def wait_for(pred, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- memory

def test_memory_pair_handshake_and_data(pki):
    pair = MemoryPair(tlslab.ClientConnection(client_config(pki, alpn_protocols=["h2"])),
                      tlslab.ServerConnection(server_config(pki, alpn_protocols=["h2"])))
    c_events, s_events = pair.handshake()
    assert any(isinstance(e, ev.HandshakeComplete) for e in c_events)
    assert any(isinstance(e, ev.HandshakeComplete) for e in s_events)
    assert pair.client.negotiated["alpn_protocol"] == "h2"
    assert not pair.failed

    pair.client.send_application_data(b"ping")
    c_events, s_events = pair.pump()
    assert [e.data for e in s_events if isinstance(e, ev.ApplicationData)] == [b"ping"]

    pair.server.send_application_data(b"pong" * 10000)  # several records
    c_events, _ = pair.pump()
    assert b"".join(e.data for e in c_events if isinstance(e, ev.ApplicationData)) == b"pong" * 10000

    pair.client.close()
    c_events, s_events = pair.pump()
    assert closed_event(s_events) is not None and closed_event(s_events).error is None
    assert pair.client.closed and pair.server.closed


def test_memory_handshake_helper_hrr_and_failure(pki):
    pair = handshake(client_config(pki), server_config(pki, cookie_hrr=True))
    assert pair.client.handshake_complete and pair.client.negotiated["hello_retry"]

    bad = handshake(client_config(pki, server_name="wrong.example"), server_config(pki))
    assert bad.failed and not bad.client.handshake_complete
    assert getattr(bad.client.error, "code", None) == "hostname-mismatch"


def test_memory_pump_is_bounded(pki):
    pair = MemoryPair(tlslab.ClientConnection(client_config(pki)),
                      tlslab.ServerConnection(server_config(pki)))
    assert pair.pump() == ([], [])  # nothing started: nothing moves


# --------------------------------------------------------------------------- blocking

def test_blocking_roundtrip(pki, tls_server):
    srv = tls_server(echo, alpn_protocols=["http/1.1"])
    with tlslab.connect("127.0.0.1", srv.port, config=client_config(
            pki, alpn_protocols=["h2", "http/1.1"]), timeout=5) as sock:
        assert sock.negotiated["version"] == "TLS 1.3"
        assert sock.negotiated["alpn_protocol"] == "http/1.1"
        assert sock.peer_certificates
        sock.send(b"hello")
        assert sock.recv() == b"hello"
        big = b"x" * 100_000
        sock.send(big)
        got = b""
        while len(got) < len(big):
            got += sock.recv()
        assert got == big
        t = sock.timings_ms
        assert {"tcp_connect", "first_byte", "handshake", "total"} <= set(t)
        assert any(e.kind == "message" for e in sock.trace.entries)
    assert wait_for(lambda: any("handshake ok" in line for line in srv.logs))


def test_blocking_recv_returns_empty_on_close_notify(pki, tls_server):
    def hello_and_close(sock):
        sock.send(b"bye")

    srv = tls_server(hello_and_close)
    sock = tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5)
    assert sock.recv_all() == b"bye"
    assert sock.recv() == b""
    assert sock.closed_event is not None and sock.closed_event.alert_received == "close_notify"
    sock.close()


def test_blocking_handshake_error(pki, tls_server):
    srv = tls_server(echo)
    with pytest.raises(HandshakeError) as info:
        tlslab.connect("127.0.0.1", srv.port, config=client_config(pki, server_name="wrong.example"),
                       timeout=5)
    e = info.value
    assert e.code == "hostname-mismatch"
    assert e.alert_sent == "bad_certificate"
    assert "sent alert bad_certificate" in str(e)
    assert e.trace is not None and any(x.name == "Certificate" for x in e.trace.entries)
    assert wait_for(lambda: any("handshake failed" in line and "bad_certificate" in line
                                for line in srv.logs))


def test_server_survives_misbehaving_clients(pki, tls_server):
    srv = tls_server(echo)
    # not TLS at all
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            s.recv(100)  # the server's alert, then close
        except OSError:
            pass
    # connect and hang up without a byte
    socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
    # the server still works
    with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5) as sock:
        sock.send(b"still there?")
        assert sock.recv() == b"still there?"
    assert wait_for(lambda: sum("handshake failed" in line for line in srv.logs) >= 2)
    assert all("\n" not in line for line in srv.logs)


def test_blocking_timeout_is_a_handshake_error(pki):
    with socket.socket() as lsock:  # accepts the TCP connection, never answers
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        with pytest.raises(HandshakeError) as info:
            tlslab.connect("127.0.0.1", lsock.getsockname()[1], config=client_config(pki),
                           timeout=0.5)
    assert info.value.code == "timeout"


# --------------------------------------------------------------------------- asyncio

def test_aio_roundtrip(pki):
    import tlslab.aio  # importable as a module too

    async def main():
        async def handler(stream):
            data = await stream.read(100)
            stream.write(data.upper())
            await stream.drain()

        logs: list[str] = []
        server = await tlslab.aio.start_server(server_config(pki), handler, "127.0.0.1", 0,
                                               log=logs.append)
        port = server.sockets[0].getsockname()[1]
        try:
            stream = await tlslab.aio.connect("127.0.0.1", port, config=client_config(pki),
                                              timeout=5)
            assert stream.negotiated["version"] == "TLS 1.3"
            stream.write(b"abc")
            await stream.drain()
            assert await asyncio.wait_for(stream.read(), 5) == b"ABC"
            await stream.close()
            with pytest.raises(tlslab.HandshakeError):
                await tlslab.aio.connect("127.0.0.1", port,
                                         config=client_config(pki, server_name="nope.example"),
                                         timeout=5)
        finally:
            server.close()
            await server.wait_closed()
        return logs

    logs = asyncio.run(asyncio.wait_for(main(), 20))
    assert any("handshake ok" in line for line in logs)


# --------------------------------------------------------------------------- openssl

@pytest.mark.interop
def test_connect_to_openssl(openssl_server, certs_dir):
    port = openssl_server("-tls1_3")
    with tlslab.connect("127.0.0.1", port, server_name="localhost",
                        ca_file=str(certs_dir / "ca.pem"), timeout=5) as sock:
        sock.send(b"GET / HTTP/1.0\r\n\r\n")
        body = sock.recv_all()
    assert body.startswith(b"HTTP/1.0 200")


# --------------------------------------------------------------------------- rendering

def _console():
    return Console(file=__import__("io").StringIO(), width=120, force_terminal=False)


def test_render_full_and_failed_traces(pki):
    ok = handshake(client_config(pki), server_config(pki, cookie_hrr=True))
    bad = handshake(client_config(pki, server_name="wrong.example"), server_config(pki))
    for conn in (ok.client, ok.server, bad.client, bad.server):
        con = _console()
        render.render_sequence(conn.trace, conn.negotiated, console=con, explain=True)
        render.render_bytes(conn.trace, console=con)
        out = con.file.getvalue()
        assert "ClientHello" in out and "could not render" not in out
        doc = render.to_json(conn.trace, conn.negotiated, error=conn.error and str(conn.error))
        json.dumps(doc)
        assert doc["messages"][0]["name"] == "ClientHello"
        assert doc["messages"][0]["fields"][0]["name"] == "msg_type"
    assert render.perspective(ok.server.trace) == "server"
    assert render.to_json(ok.client.trace, ok.client.negotiated)["ok"] is True
    assert render.to_json(bad.client.trace, bad.client.negotiated, error=bad.client.error)["ok"] is False
    secrets = render.to_json(ok.client.trace)["secrets"]
    assert secrets and all(set(s) == {"name", "time_ms", "length"} for s in secrets)


def test_render_survives_garbage_entries():
    trace = Trace()
    trace.add("message", "received", "ServerHello", raw=b"\x02\x00\x00\x05abc")  # truncated
    trace.add("message", "received", "Mystery", raw=b"\xfe\x00\x00\x00")
    trace.add("record", "received", "handshake", raw=b"\x16\x03\x03\x00\x05", summary={})
    trace.add("alert", "received", "handshake_failure", raw=b"\x02\x28", summary={"level": 2})
    trace.add("error", "local", "Weird", detail="something", summary={"alert": "internal_error"})
    trace.add("info", "local", "note", summary={"x": object()})
    con = _console()
    render.render_sequence(trace, {}, console=con, error="boom")
    render.render_bytes(trace, console=con)
    json.dumps(render.to_json(trace, {}, error="boom"))
    render.render_sequence(Trace(), None, console=con)
    json.dumps(render.to_json(Trace()))


def test_http_page(pki):
    pair = handshake(client_config(pki, alpn_protocols=["http/1.1"]),
                     server_config(pki, alpn_protocols=["http/1.1"]))
    resp = httppage.response_for_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                         pair.server.negotiated, pair.server.trace, peer="1.2.3.4:5")
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"Content-Length: {len(body)}".encode() in head
    text = body.decode()
    for needle in ("TLS 1.3", "TLS_AES_128_GCM_SHA256", "x25519", "http/1.1", "localhost",
                   "HelloRetryRequest:   no", "cipher suites:"):
        assert needle in text
    assert httppage.response_for_request(b"\x16\x03\x01", {}, None).startswith(b"HTTP/1.1 400")
    assert httppage.response_for_request(b"POST / HTTP/1.1\r\n\r\n", {}, None).startswith(b"HTTP/1.1 405")


# --------------------------------------------------------------------------- resumption and 0-RTT

def test_blocking_resumption_and_early_data(pki, tls_server, tmp_path):
    from tlslab.proto.tickets import FileTicketStore

    srv = tls_server(echo, max_early_data_size=1024)
    store_path = str(tmp_path / "tickets.json")

    def config():  # separate configs sharing one ticket file resume each other's sessions
        return client_config(pki, session_store=FileTicketStore(store_path))

    with tlslab.connect("127.0.0.1", srv.port, config=config(), timeout=5,
                        early_data=b"too early") as first:
        assert first.resumed is False
        assert first.early_data_accepted is None        # no ticket yet: nothing sent as 0-RTT
        first.send(b"ping")
        assert first.recv() == b"ping"
        assert first.wait_for_tickets(timeout=5) >= 1
    with tlslab.connect("127.0.0.1", srv.port, config=config(), timeout=5,
                        early_data=b"early!") as again:
        assert again.resumed is True
        assert again.early_data_accepted is True
        assert again.negotiated["resumed"] is True
        assert again.recv() == b"early!"                # the server echoed the 0-RTT data
        assert "first_data" in again.timings_ms
    assert wait_for(lambda: any("resumed=yes 0rtt=accepted" in l for l in srv.logs))


def test_blocking_resumption_without_store(pki, tls_server):
    srv = tls_server(echo)
    cfg = client_config(pki, session_store=None)
    for _ in range(2):
        with tlslab.connect("127.0.0.1", srv.port, config=cfg, timeout=5) as s:
            s.send(b"x")
            assert s.recv() == b"x"
            assert s.resumed is False


def test_wait_for_tickets_reports_client_certificate_rejection(pki, tls_server, certs_dir):
    srv = tls_server(echo, client_ca_file=str(certs_dir / "ca.pem"), require_client_cert=True)
    # TLS 1.3: the client's handshake completes before the server judges its certificate
    s = tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5)
    try:
        with pytest.raises(HandshakeError) as info:
            s.wait_for_tickets(timeout=5)
        assert info.value.alert_received == "certificate_required"
    finally:
        s.close()
    assert wait_for(lambda: any("client certificate rejected" in l for l in srv.logs))


def test_aio_resumption_and_early_data(pki):
    async def main():
        async def handler(stream):
            data = await stream.read(100)
            stream.write(data.upper())
            await stream.drain()

        server = await tlslab.aio.start_server(server_config(pki, max_early_data_size=512),
                                               handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cfg = client_config(pki)            # its default in-memory store keeps the tickets
        try:
            results = []
            for _ in range(2):
                stream = await tlslab.aio.connect("127.0.0.1", port, config=cfg, timeout=5,
                                                  early_data=b"hello")
                if not stream.early_data_accepted:
                    stream.write(b"hello")
                    await stream.drain()
                data = await asyncio.wait_for(stream.read(), 5)
                results.append((stream.resumed, stream.early_data_accepted, data))
                await stream.close()
            return results
        finally:
            server.close()
            await server.wait_closed()

    first, second = asyncio.run(asyncio.wait_for(main(), 20))
    assert first == (False, None, b"HELLO")
    assert second == (True, True, b"HELLO")


def test_http_page_shows_resumption_and_tls12(pki):
    pair = handshake(client_config(pki), server_config(pki, versions=["1.2"]))
    client, server = pair.client, pair.server
    assert client.handshake_complete
    page = httppage.page_text(server.negotiated, server.trace)
    assert "protocol version:    TLS 1.2" in page
    assert "extended master secret: yes" in page and "secure renegotiation: yes" in page
    assert "resumed:             no" in page and "0-RTT early data:    not sent" in page
    console = Console(record=True, width=120)
    render.render_sequence(client.trace, client.negotiated, console=console)
    text = console.export_text()
    assert "extended master secret" in text and "encrypt-then-MAC" in text
    profile = render.handshake_profile(client.trace, client.negotiated)
    assert profile["round_trips"] == 2 and profile["kind"] == "full"


# --------------------------------------------------------------------------- review fixes

def _end_without_close_notify(sock):
    sock.recv()
    sock.send(b"partial")
    sock._sock.shutdown(socket.SHUT_RDWR)  # TCP FIN, no close_notify


def test_blocking_recv_reports_truncation(pki, tls_server):
    srv = tls_server(_end_without_close_notify)
    with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5) as sock:
        sock.send(b"hi")
        assert sock.recv_all() == b"partial"
        assert sock.recv() == b""  # still b"" (callers loop on it) ...
        assert sock.truncated is True  # ... but the end was not a clean one
    clean = tls_server(lambda s: s.send(b"bye"))
    with tlslab.connect("127.0.0.1", clean.port, config=client_config(pki), timeout=5) as sock:
        assert sock.recv_all() == b"bye"
        assert sock.truncated is False


def test_aio_read_reports_truncation(pki, tls_server):
    srv = tls_server(_end_without_close_notify)

    async def main():
        stream = await tlslab.aio.connect("127.0.0.1", srv.port, config=client_config(pki),
                                          timeout=5)
        stream.write(b"hi")
        await stream.drain()
        data = await asyncio.wait_for(stream.read(), 5)
        truncated = stream.truncated
        await stream.close()
        return data, truncated

    assert asyncio.run(asyncio.wait_for(main(), 20)) == (b"partial", True)


def test_aio_close_is_bounded_when_the_peer_stops_reading(pki, tls_server):
    import time
    started = threading.Event()

    def never_reads(sock):
        started.set()
        time.sleep(15)

    srv = tls_server(never_reads)

    async def main():
        stream = await tlslab.aio.connect("127.0.0.1", srv.port, config=client_config(pki),
                                          timeout=5)
        stream.write(b"x" * (32 << 20))  # far more than the socket buffers hold
        t = time.monotonic()
        await asyncio.wait_for(stream.close(), 10)  # used to wait in drain() forever
        return time.monotonic() - t

    assert asyncio.run(main()) < 8
    assert started.is_set()


def test_post_handshake_error_says_who_aborted(pki, tls_server):
    def bad_record(sock):
        sock.recv()
        sock._sock.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)  # garbage, not decryptable
        sock._sock.recv(100)

    srv = tls_server(bad_record)
    with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5) as sock:
        sock.send(b"hi")
        with pytest.raises(ConnectionError):
            sock.recv_all()
        e = sock.post_handshake_error()
    assert e is not None and e.alert_sent == "bad_record_mac"
    assert str(e).startswith("we aborted the connection after the handshake")
    assert "sent alert bad_record_mac" in str(e)


class _BrokenPipeSocket:
    """Connected, then the peer is gone: every send fails with EPIPE."""

    def setsockopt(self, *a):
        pass

    def gettimeout(self):
        return 5.0

    def settimeout(self, t):
        pass

    def sendall(self, data):
        raise BrokenPipeError(32, "Broken pipe")

    def recv(self, n):
        raise ConnectionAbortedError(103, "Software caused connection abort")

    def close(self):
        pass


@pytest.mark.parametrize("fail_on", ["send", "recv"])
def test_handshake_broken_pipe_is_a_handshake_error(pki, fail_on):
    from tlslab.io.blocking import TLSSocket
    fake = _BrokenPipeSocket()
    if fail_on == "recv":
        fake.sendall = lambda data: None
    tls = TLSSocket(fake, tlslab.ClientConnection(client_config(pki)))
    with pytest.raises(HandshakeError) as info:
        tls.do_handshake(5)
    assert ("broken pipe" if fail_on == "send" else "aborted") in info.value.reason


def test_server_caps_concurrent_connections(pki):
    from tlslab.io.blocking import TLSServer
    assert TLSServer.request_queue_size >= 128
    logs: list[str] = []
    srv = make_server("127.0.0.1", 0, server_config(pki), echo, log=logs.append,
                      handshake_timeout=5.0, io_timeout=5.0, max_connections=1)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5):  # idle client
            assert wait_for(lambda: srv._slots._value == 0)  # its thread waits for a ClientHello
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as extra:
                assert extra.recv(10) == b""  # closed at once, not after the handshake timeout
            assert wait_for(lambda: any("refused" in line for line in logs))
        # the slot comes back when the first client is gone
        assert wait_for(lambda: srv._slots._value == 1)
        with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5) as sock:
            sock.send(b"ok")
            assert sock.recv() == b"ok"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_recv_deadline_bounds_a_dripping_peer(pki, tls_server):
    import time

    def drip(sock):
        sock._sock.sendall(b"\x17\x03\x03\x00\x40")  # a record header, then its body
        for _ in range(40):  # one byte at a time: each socket read succeeds
            sock._sock.sendall(b"\x00")
            time.sleep(0.1)

    srv = tls_server(drip)
    with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki), timeout=5) as sock:
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            sock.recv(deadline=time.monotonic() + 0.5)
        assert time.monotonic() - t < 2


def test_safe_text_escapes_control_characters():
    assert render.safe_text("a\x1b]52;c;eA==\x07b\n\tc\r\u200b\x9bé") == \
        "a\\x1b]52;c;eA==\\x07b\n\tc\\x0d\\u200b\\x9bé"


def test_render_shows_peer_text_escaped_and_literal(pki):
    """Certificate names, SNI and errors: no escape sequences, no rich markup."""
    console = Console(record=True, width=200, force_terminal=False)
    sock_trace = Trace()
    render.render_sequence(sock_trace, {"version": "TLS 1.3", "cipher_suite": "X",
                                        "server_name": "[/]\x1b]0;T\x07"},
                           console=console, error="peer said [bold]\x1b[2J",
                           extra={"HTTP": "[red]x"})
    out = console.export_text()
    assert "\x1b" not in out and "could not render" not in out
    assert "[/]\\x1b]0;T\\x07" in out
    assert "peer said [bold]\\x1b[2J" in out and "[red]x" in out
