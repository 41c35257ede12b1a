"""Resumption, 0-RTT, client certificates and KeyUpdate against OpenSSL on loopback.

* tlslab client ↔ ``openssl s_server -tls1_3``: PSK resumption (and after a
  HelloRetryRequest), 0-RTT early data, a client certificate, a KeyUpdate we start.
* ``openssl s_client`` ↔ tlslab server: resumption with ``-sess_out``/``-sess_in`` (and
  after a HelloRetryRequest), 0-RTT with ``-early_data``, a client certificate, and a
  KeyUpdate typed as ``K`` on s_client's stdin.

Only 127.0.0.1 is used; every socket read and every process is bounded in time.
"""
from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import _kill_group, require_tool
from test_interop_openssl import (HTTP_GET, IO_TIMEOUT, TlslabServer, check_s_client, client_config,
                                  run_client, s_client, server_config)
from tlslab.proto import events as ev
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, load_identity

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]


# --------------------------------------------------------------------------- helpers

def trace_names(conn, kind: str, direction: str | None = None) -> list[str]:
    return [e.name for e in conn.trace.entries
            if e.kind == kind and (direction is None or e.direction == direction)]


def wait_until(predicate, timeout: float = IO_TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


class ClientDriver:
    """A tlslab client on a TCP socket, driven step by step (every read bounded in time)."""

    def __init__(self, config: ClientConfig, port: int, host: str = "127.0.0.1",
                 early_data: bytes | None = None) -> None:
        self.conn = ClientConnection(config)
        self.events: list = []
        self.data = bytearray()
        self.complete: ev.HandshakeComplete | None = None
        self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        self.conn.start_handshake(early_data=early_data)
        self.flush()

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def pump(self, until, timeout: float = IO_TIMEOUT, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or self.conn.closed:
                raise AssertionError(f"gave up waiting for {what}: {self.describe()}")
            self.sock.settimeout(min(left, 0.5))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"peer closed while waiting for {what}: {self.describe()}")
            for event in self.conn.receive_data(chunk):
                self.events.append(event)
                if isinstance(event, ev.HandshakeComplete):
                    self.complete = event
                elif isinstance(event, ev.ApplicationData):
                    self.data += event.data
            self.flush()

    def drain(self, seconds: float) -> None:
        """Read (and answer) whatever arrives for ``seconds`` (e.g. NewSessionTickets)."""
        deadline = time.monotonic() + seconds
        while not self.conn.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.events += self.conn.receive_data(chunk)
            self.flush()

    def tickets(self) -> int:
        return sum(isinstance(e, ev.NewSessionTicket) for e in self.events)

    def send(self, data: bytes) -> None:
        self.conn.send_application_data(data)
        self.flush()

    def close(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.close()
                self.flush()
        except OSError:
            pass
        self.sock.close()

    def describe(self) -> str:
        errors = [f"{e.name}: {e.detail}" for e in self.conn.trace.entries if e.kind == "error"]
        alerts = [f"{e.direction} {e.name}" for e in self.conn.trace.entries if e.kind == "alert"]
        return (f"state={self.conn.state.name} complete={self.conn.handshake_complete} "
                f"error={self.conn.error!r} errors={errors} alerts={alerts} data={bytes(self.data[-300:])!r}")

    def __enter__(self) -> "ClientDriver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get_tickets(config: ClientConfig, port: int) -> None:
    """A full handshake with a plain-mode s_server that leaves its tickets in config's store."""
    with ClientDriver(config, port) as c:
        c.pump(lambda: c.complete is not None and c.tickets() >= 1, what="handshake + ticket")
        assert not c.complete.resumed
        c.drain(0.3)
    assert config.session_store.count("localhost") >= 1


def server_log(openssl_server, port: int) -> str:
    return openssl_server.output(port)


class PatientServer(TlslabServer):
    """Like ``TlslabServer``, but answers only once the handshake is complete, and keeps
    every event (so 0-RTT data, ``ApplicationData.early``, can be checked).

    ``TlslabServer`` answers as soon as a request head has arrived, which with 0-RTT is
    before the client's Finished (see ``test_server_half_rtt_data_while_waiting_for_eoed``
    in test_tls13_features.py for why that cannot work yet).
    """

    def _serve(self, sock: socket.socket) -> None:
        from tlslab.proto.server import ServerConnection
        from test_interop_openssl import ServedConnection, http_response
        conn = ServerConnection(self.config)
        served = ServedConnection(conn)
        served.events = []
        self.served.append(served)
        deadline = time.monotonic() + self.timeout
        request = bytearray()
        try:
            while not conn.closed and time.monotonic() < deadline:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                for event in conn.receive_data(chunk):
                    served.events.append(event)
                    if isinstance(event, ev.HandshakeComplete):
                        served.complete = event
                    elif isinstance(event, ev.ApplicationData):
                        request += event.data
                    elif isinstance(event, ev.ConnectionClosed):
                        served.closed = event
                done = conn.handshake_complete and b"\r\n\r\n" in request and not conn.closed
                if done:
                    conn.send_application_data(http_response(b"tlslab says hello\n"))
                    conn.close()
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
                if done:
                    break
            served.request = bytes(request)
            try:
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(1.0)
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        except BaseException as exc:
            served.exception = exc


def client_identity(certs_dir: Path) -> dict:
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    return {"certificate_chain": chain, "private_key": key}


# --------------------------------------------------------------------------- tlslab client ↔ s_server

def test_client_resumption_s_server(openssl_server, certs_dir):
    port = openssl_server("-tls1_3")
    config = client_config(certs_dir)
    first = run_client(config, port)
    assert first.complete is not None and not first.complete.resumed, first.describe()
    assert b"New, TLSv1.3" in first.data
    assert config.session_store.count("localhost") >= 1, "no ticket stored from s_server"
    second = run_client(config, port)
    assert second.complete is not None, second.describe()
    assert second.complete.resumed is True and second.conn.negotiated["resumed"] is True
    assert b"Reused, TLSv1.3" in second.data, second.data[:400]
    assert "Certificate" not in trace_names(second.conn, "message", "received")
    assert second.closed is not None and second.closed.error is None, second.describe()


def test_client_resumption_after_hrr_s_server(openssl_server, certs_dir):
    """s_server accepts only P-256, we send an X25519 share: HRR on both connections."""
    port = openssl_server("-tls1_3", "-groups", "P-256")
    config = client_config(certs_dir, groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    first = run_client(config, port)
    assert first.complete is not None and first.complete.hello_retry, first.describe()
    second = run_client(config, port)
    assert second.complete is not None, second.describe()
    assert second.complete.hello_retry is True and second.complete.resumed is True, second.describe()
    assert b"Reused, TLSv1.3" in second.data, second.data[:400]
    assert trace_names(second.conn, "message", "sent").count("ClientHello") == 2


def test_client_early_data_s_server(openssl_server, certs_dir):
    """0-RTT accepted by ``s_server -early_data`` (plain mode: it prints what it read)."""
    port = openssl_server("-tls1_3", "-early_data", "-max_early_data", "16384", www=False)
    config = client_config(certs_dir)
    get_tickets(config, port)
    early = b"tlslab-0rtt-" + str(time.monotonic_ns()).encode() + b"\n"
    with ClientDriver(config, port, early_data=early) as c:
        c.pump(lambda: c.complete is not None, what="resumed handshake")
        assert c.complete.resumed is True, c.describe()
        assert c.complete.early_data_accepted is True and c.conn.early_data_accepted is True
        assert "EndOfEarlyData" in trace_names(c.conn, "message", "sent")
        c.send(b"after-handshake-data\n")
        wait_until(lambda: "after-handshake-data" in server_log(openssl_server, port),
                   what="s_server to print the 1-RTT data")
    log = server_log(openssl_server, port)
    assert "Early data received" in log, log[-2000:]
    assert early.decode().strip() in log, log[-2000:]
    assert log.index(early.decode().strip()) < log.index("after-handshake-data")


def test_client_early_data_rejected_s_server(openssl_server, certs_dir):
    """Tickets allow 0-RTT (``-max_early_data``) but s_server does not read early data
    (no ``-early_data``): OpenSSL rejects it, skips the records, the handshake completes and
    we are told to send the data again (RFC 8446 §4.2.10)."""
    port = openssl_server("-tls1_3", "-max_early_data", "16384", www=False)
    config = client_config(certs_dir)
    get_tickets(config, port)
    with ClientDriver(config, port, early_data=b"rejected-early-data\n") as c:
        c.pump(lambda: c.complete is not None, what="resumed handshake")
        assert c.complete.resumed is True, c.describe()
        assert c.complete.early_data_accepted is False and c.conn.early_data_accepted is False
        assert "EndOfEarlyData" not in trace_names(c.conn, "message", "sent")
        c.send(b"resent-after-rejection\n")
        wait_until(lambda: "resent-after-rejection" in server_log(openssl_server, port),
                   what="s_server to print the resent data")
    log = server_log(openssl_server, port)
    assert "rejected-early-data" not in log, log[-2000:]


def test_client_early_data_then_hrr_s_server(openssl_server, certs_dir):
    """0-RTT sent with an X25519 share to a P-256-only s_server: HelloRetryRequest, so the
    early data is rejected (RFC 8446 §4.1.2), ClientHello2 goes out in the clear, resumed.

    ``-no_anti_replay``: with its anti-replay cache on, OpenSSL takes the ticket out of its
    cache while reading ClientHello1 (single use for 0-RTT), so ClientHello2's PSK is
    unknown to it and it falls back to a full handshake (allowed by RFC 8446 §4.2.11)."""
    port = openssl_server("-tls1_3", "-early_data", "-max_early_data", "16384", "-groups", "P-256",
                          "-no_anti_replay", www=False)
    config = client_config(certs_dir, groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    get_tickets(config, port)
    with ClientDriver(config, port, early_data=b"early-before-hrr\n") as c:
        c.pump(lambda: c.complete is not None, what="resumed handshake after HRR")
        assert c.complete.hello_retry is True and c.complete.resumed is True, c.describe()
        assert c.complete.early_data_accepted is False
        c.send(b"sent-after-hrr\n")
        wait_until(lambda: "sent-after-hrr" in server_log(openssl_server, port),
                   what="s_server to print the 1-RTT data")
    assert "early-before-hrr" not in server_log(openssl_server, port)


def test_client_mtls_s_server(openssl_server, certs_dir):
    port = openssl_server("-tls1_3", "-Verify", "1", "-CAfile", str(certs_dir / "ca.pem"))
    result = run_client(client_config(certs_dir, **client_identity(certs_dir)), port)
    assert result.complete is not None, result.describe()
    assert "CertificateRequest" in trace_names(result.conn, "message", "received")
    sent = trace_names(result.conn, "message", "sent")
    assert "Certificate" in sent and "CertificateVerify" in sent, sent
    assert result.data.startswith(b"HTTP/1.0 200"), result.data[:300]
    # s_server -www shows the peer certificate it verified
    assert b"tlslab test client" in result.data or "tlslab test client" in \
        server_log(openssl_server, port), result.data[:2000]


def test_client_mtls_missing_certificate_s_server(openssl_server, certs_dir):
    """``-Verify 1`` requires a certificate: OpenSSL answers our empty Certificate with
    certificate_required (RFC 8446 §4.4.2.4)."""
    port = openssl_server("-tls1_3", "-Verify", "1", "-CAfile", str(certs_dir / "ca.pem"))
    result = run_client(client_config(certs_dir), port)
    alerts = trace_names(result.conn, "alert", "received")
    assert alerts == ["certificate_required"], result.describe()


def test_client_key_update_s_server(openssl_server, certs_dir):
    """We send KeyUpdate(update_requested); s_server answers with its own KeyUpdate and data
    keeps flowing both ways (s_server in plain mode prints what it reads and sends its stdin)."""
    port = openssl_server("-tls1_3", www=False)
    proc = openssl_server.servers[port].proc
    with ClientDriver(client_config(certs_dir), port) as c:
        c.pump(lambda: c.complete is not None, what="handshake")
        c.drain(0.3)  # tickets
        for n in range(1, 3):
            c.conn.send_key_update(request_update=True)
            c.flush()
            c.send(b"client-line-%d\n" % n)
            wait_until(lambda: f"client-line-{n}" in server_log(openssl_server, port),
                       what=f"s_server to print client-line-{n}")
            proc.stdin.write(b"server-line-%d\n" % n)
            proc.stdin.flush()
            c.pump(lambda: b"server-line-%d" % n in c.data, what=f"server-line-{n}")
            updates = trace_names(c.conn, "secret")
            assert updates.count("write key updated") == n, updates
            assert updates.count("read key updated") == n, updates  # s_server's answer
        assert c.conn.error is None, c.describe()
        received = [e.message for e in c.conn.trace.entries
                    if e.kind == "message" and e.direction == "received" and e.name == "KeyUpdate"]
        assert len(received) == 2 and all(m.request_update == 0 for m in received)


# --------------------------------------------------------------------------- s_client ↔ tlslab server

def s_client_ok(out: str) -> None:
    assert "Verify return code: 0 (ok)" in out, out[-2000:]


def test_server_resumption_s_client(certs_dir, tmp_path):
    sess = tmp_path / "session.pem"
    with TlslabServer(server_config(certs_dir), connections=2) as server:
        rc1, out1, err1 = s_client(certs_dir, server.port, "-sess_out", str(sess))
        check_s_client(rc1, out1, err1, server.served[0])
        assert sess.is_file() and sess.stat().st_size > 0, "s_client saved no session"
        assert "New, TLSv1.3" in out1
        rc2, out2, err2 = s_client(certs_dir, server.port, "-sess_in", str(sess))
    served = server.served[1]
    assert served.exception is None and served.complete is not None, served.describe()
    assert "Reused, TLSv1.3" in out2, out2[-3000:]
    assert served.complete.resumed is True and served.conn.negotiated["resumed"] is True
    assert "Certificate" not in trace_names(served.conn, "message", "sent")
    assert "tlslab says hello" in out2 and rc2 == 0, (rc2, out2[-2000:], err2[-1000:])


def test_server_resumption_after_hrr_s_client(certs_dir, tmp_path):
    """Server accepts only P-256, s_client sends an X25519 share first: HRR both times."""
    sess = tmp_path / "session.pem"
    config = server_config(certs_dir, groups=["secp256r1"])
    with TlslabServer(config, connections=2) as server:
        rc1, out1, err1 = s_client(certs_dir, server.port, "-groups", "X25519:P-256",
                                   "-sess_out", str(sess))
        check_s_client(rc1, out1, err1, server.served[0], group="secp256r1", hello_retry=True)
        rc2, out2, err2 = s_client(certs_dir, server.port, "-groups", "X25519:P-256",
                                   "-sess_in", str(sess))
    served = server.served[1]
    assert served.exception is None and served.complete is not None, served.describe()
    assert "Reused, TLSv1.3" in out2, out2[-3000:]
    assert served.conn.negotiated["hello_retry"] is True
    assert served.complete.resumed is True
    assert trace_names(served.conn, "message", "received").count("ClientHello") == 2
    assert "tlslab says hello" in out2 and rc2 == 0


def test_server_early_data_s_client(certs_dir, tmp_path):
    sess = tmp_path / "session.pem"
    early = tmp_path / "early.txt"
    early.write_bytes(b"GET /early HTTP/1.0\r\n\r\n")
    config = server_config(certs_dir, max_early_data_size=16384)
    with PatientServer(config, connections=2) as server:
        rc1, out1, err1 = s_client(certs_dir, server.port, "-sess_out", str(sess))
        check_s_client(rc1, out1, err1, server.served[0])
        assert "Max Early Data: 16384" in out1, out1[-3000:]
        rc2, out2, err2 = s_client(certs_dir, server.port, "-sess_in", str(sess),
                                   "-early_data", str(early))
    served = server.served[1]
    detail = f"{served.describe()}\n{out2[-3000:]}\n{err2[-1000:]}"
    assert served.exception is None and served.complete is not None, detail
    assert served.complete.resumed is True, detail
    assert served.complete.early_data_accepted is True, detail
    assert "Early data was accepted" in out2, detail
    # the request the server answered is the one that came as 0-RTT
    assert served.request.startswith(b"GET /early HTTP/1.0"), detail
    early_events = [e for e in served.events if isinstance(e, ev.ApplicationData) and e.early]
    assert b"".join(e.data for e in early_events) == early.read_bytes(), detail
    assert "EndOfEarlyData" in trace_names(served.conn, "message", "received"), detail
    assert "tlslab says hello" in out2, detail


def test_server_early_data_rejected_s_client(certs_dir, tmp_path):
    """Tickets allow 0-RTT but the server that gets it does not: s_client's early data is
    skipped, the handshake completes and s_client reports the rejection."""
    sess = tmp_path / "session.pem"
    early = tmp_path / "early.txt"
    early.write_bytes(b"GET /early HTTP/1.0\r\n\r\n")
    issuing = server_config(certs_dir, max_early_data_size=16384)
    refusing = server_config(certs_dir, max_early_data_size=0, ticket_keys=issuing.ticket_keys)
    with TlslabServer(issuing) as server:
        rc1, out1, err1 = s_client(certs_dir, server.port, "-sess_out", str(sess))
        check_s_client(rc1, out1, err1, server.served[0])
    with PatientServer(refusing) as server:
        rc2, out2, err2 = s_client(certs_dir, server.port, "-sess_in", str(sess),
                                   "-early_data", str(early))
    served = server.served[0]
    detail = f"{served.describe()}\n{out2[-3000:]}\n{err2[-1000:]}"
    assert served.exception is None and served.complete is not None, detail
    assert served.complete.resumed is True and served.complete.early_data_accepted is False, detail
    assert "Early data was rejected" in out2, detail
    # s_client's stdin request (sent after the handshake) is what got answered
    assert served.request.startswith(b"GET / HTTP/1.0"), detail


def test_server_early_data_then_hrr_s_client(certs_dir, tmp_path):
    """s_client sends 0-RTT with an X25519 share; the server (P-256 only) answers with a
    HelloRetryRequest and must skip the early records, then resume."""
    sess = tmp_path / "session.pem"
    early = tmp_path / "early.txt"
    early.write_bytes(b"GET /early HTTP/1.0\r\n\r\n")
    config = server_config(certs_dir, max_early_data_size=16384, groups=["secp256r1"])
    with PatientServer(config, connections=2) as server:
        rc1, out1, err1 = s_client(certs_dir, server.port, "-groups", "X25519:P-256",
                                   "-sess_out", str(sess))
        check_s_client(rc1, out1, err1, server.served[0], group="secp256r1", hello_retry=True)
        rc2, out2, err2 = s_client(certs_dir, server.port, "-groups", "X25519:P-256",
                                   "-sess_in", str(sess), "-early_data", str(early))
    served = server.served[1]
    detail = f"{served.describe()}\n{out2[-3000:]}\n{err2[-1000:]}"
    assert served.exception is None and served.complete is not None, detail
    assert served.complete.hello_retry and served.complete.resumed, detail
    assert not served.complete.early_data_accepted, detail
    assert "Early data was rejected" in out2, detail
    assert served.request.startswith(b"GET / HTTP/1.0"), detail


def test_server_mtls_s_client(certs_dir):
    config = server_config(certs_dir, client_ca_file=str(certs_dir / "ca.pem"), require_client_cert=True)
    with TlslabServer(config) as server:
        rc, out, err = s_client(certs_dir, server.port, "-cert", str(certs_dir / "client.pem"),
                                "-key", str(certs_dir / "client.key"),
                                "-cert_chain", str(certs_dir / "intermediate.pem"))
    served = server.served[0]
    check_s_client(rc, out, err, served)
    assert served.conn.peer_certificates, served.describe()
    assert "tlslab test client" in served.conn.peer_certificates[0].subject.rfc4514_string()
    assert "Acceptable client certificate CA names" in out, out[-3000:]


def test_server_mtls_s_client_without_certificate(certs_dir):
    config = server_config(certs_dir, client_ca_file=str(certs_dir / "ca.pem"), require_client_cert=True)
    with TlslabServer(config) as server:
        rc, out, err = s_client(certs_dir, server.port)
    served = server.served[0]
    assert not served.conn.handshake_complete
    assert trace_names(served.conn, "alert", "sent") == ["certificate_required"], served.describe()
    assert "certificate required" in (out + err).lower(), (out[-1500:], err[-1500:])
    assert rc != 0


def test_server_key_update_from_s_client(certs_dir):
    """A line "K" on s_client's stdin sends KeyUpdate(update_requested) (no -ign_eof then:
    s_client only reads commands without it).  The tlslab server must update its read key,
    answer with its own KeyUpdate, and still read the request and send the page."""
    openssl = require_tool("openssl")
    with TlslabServer(server_config(certs_dir), timeout=20) as server:
        cmd = [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_3",
               "-CAfile", str(certs_dir / "ca.pem"), "-servername", "localhost",
               "-verify_return_error"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_until(lambda: server.served and server.served[0].conn.handshake_complete,
                       what="the handshake")
            time.sleep(0.3)  # let s_client finish reading the tickets
            proc.stdin.write(b"K\n")
            proc.stdin.flush()
            conn = server.served[0].conn
            wait_until(lambda: "KeyUpdate" in trace_names(conn, "message", "received"),
                       what="the server to receive KeyUpdate")
            proc.stdin.write(HTTP_GET)
            proc.stdin.flush()
            # stdin stays open: EOF would make s_client quit before it reads the page;
            # it exits by itself on our close_notify
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
            out, err = proc.communicate(timeout=5)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    served = server.served[0]
    detail = f"{served.describe()}\n--- stdout ---\n{out[-2500:]}\n--- stderr ---\n{err[-1500:]}"
    assert served.exception is None and served.conn.error is None, detail
    assert "KEYUPDATE" in err or "KEYUPDATE" in out, detail
    received = [e.message for e in served.conn.trace.entries if e.kind == "message"
                and e.direction == "received" and e.name == "KeyUpdate"]
    sent = [e.message for e in served.conn.trace.entries if e.kind == "message"
            and e.direction == "sent" and e.name == "KeyUpdate"]
    assert [m.request_update for m in received] == [1], detail
    assert [m.request_update for m in sent] == [0], detail
    secrets = trace_names(served.conn, "secret")
    assert secrets.count("read key updated") == 1 and secrets.count("write key updated") == 1
    # the request came under the new key, and s_client read our page under our new key
    assert served.request.startswith(b"GET / HTTP/1.0"), detail
    assert "tlslab says hello" in out, detail
    assert re.search(r"HTTP/1\.1 200 OK", out), detail
