"""The command line: demo, connect, serve (127.0.0.1 only, every network step bounded)."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

import tlslab
from conftest import free_port, run_bounded
from tlslab.cli.main import app, http_handler, parse_target
from tlslab.io.blocking import make_server
from tlslab.workbench.certgen import make_throwaway_chain

PY = sys.executable


def tlslab_cmd(*args: str) -> list[str]:
    return [PY, "-m", "tlslab", *args]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tlslab HTTP page server (the one `serve` uses) in a thread; yields (port, ca_path, logs)."""
    chain, key, ca = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    ca_path = tmp_path_factory.mktemp("cli") / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(Encoding.PEM))
    logs: list[str] = []
    srv = make_server("127.0.0.1", 0, tlslab.ServerConfig(certificate_chain=chain, private_key=key,
                                                          alpn_protocols=["http/1.1"]),
                      http_handler, log=logs.append, handshake_timeout=5, io_timeout=5)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv.port, str(ca_path), logs
    srv.shutdown()
    srv.server_close()
    t.join(5)


def one_error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --------------------------------------------------------------------------- demo

def test_demo_in_process():
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for needle in ("ClientHello", "ServerHello", "EncryptedExtensions", "Certificate",
                   "CertificateVerify", "Finished", "handshake complete", "HTTP/1.1 200 OK"):
        assert needle in result.stdout


def test_demo_subprocess_is_quick():
    start = time.monotonic()
    rc, out, err = run_bounded(tlslab_cmd("demo"), timeout=30)
    assert rc == 0, err
    assert "ClientHello" in out and "ServerHello" in out and "Finished" in out
    assert time.monotonic() - start < 15


# --------------------------------------------------------------------------- connect

def test_connect_json(served):
    port, ca, logs = served
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                      "--servername", "localhost", "--alpn", "http/1.1",
                                      "--json", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert doc["negotiated"]["version"] == "TLS 1.3"
    assert doc["negotiated"]["alpn_protocol"] == "http/1.1"
    assert [m["name"] for m in doc["messages"]][:2] == ["ClientHello", "ServerHello"]
    assert doc["peer_certificates"][0]["subject"].startswith("CN=localhost")


def test_connect_human_http_and_trace(served):
    port, ca, _ = served
    result = CliRunner().invoke(app, ["connect", f"localhost:{port}", "--ca-file", ca,
                                      "--http", "--trace", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ClientHello" in out and "Finished" in out
    assert "msg_type" in out                      # byte view
    assert "HTTP/1.1 200 OK" in out and "cipher suite:" in out


def test_connect_wrong_servername_fails_in_one_line(served):
    port, ca, _ = served
    rc, out, err = run_bounded(tlslab_cmd("connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                          "--servername", "wrong.example", "--timeout", "5"),
                               timeout=30)
    assert rc == 1
    line = one_error_line(err)
    assert "hostname" in line and "bad_certificate" in line


def test_connect_wrong_servername_json(served):
    port, ca, _ = served
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                      "--servername", "wrong.example", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["error"]["code"] == "hostname-mismatch"
    assert doc["error"]["alert_sent"] == "bad_certificate"


def test_connect_closed_port():
    port = free_port()
    rc, out, err = run_bounded(tlslab_cmd("connect", f"127.0.0.1:{port}", "--timeout", "5"),
                               timeout=30)
    assert rc == 1
    assert "refused" in one_error_line(err)
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "connection-refused"


@pytest.mark.parametrize("args, needle", [
    (["--tls", "ssl3"], "unknown TLS version"),
    (["--tls", "9"], "unknown TLS version"),
    (["--group", "nope"], "nope"),
    (["--cipher", "TLS_NOPE"], "TLS_NOPE"),
    (["--ca-file", "/nonexistent/ca.pem"], "no such file"),
])
def test_connect_bad_input(args, needle):
    result = CliRunner().invoke(app, ["connect", "127.0.0.1:1", *args])
    assert result.exit_code == 2
    assert needle in one_error_line(result.stderr)


def test_parse_target():
    assert parse_target("example.com") == ("example.com", 443)
    assert parse_target("example.com:8443") == ("example.com", 8443)
    assert parse_target("[::1]:4433") == ("::1", 4433)
    assert parse_target("[::1]") == ("::1", 443)
    assert parse_target("::1") == ("::1", 443)
    assert parse_target("https://example.com:444/path") == ("example.com", 444)


def test_help_has_examples_and_no_placeholders():
    runner = CliRunner()
    commands = ("connect", "serve", "demo", "diagnose", "simulate", "explain", "fingerprint",
                "decode", "scan")
    for cmd in commands:
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0, cmd
        assert "Example" in result.stdout, cmd
        assert "TODO" not in result.stdout, cmd
    result = runner.invoke(app, ["--help"])
    # every command is advertised, and none that does not exist
    listed = {line.split()[1] for line in result.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2}
    assert set(commands) <= listed, listed


# --------------------------------------------------------------------------- serve

def test_serve_command_end_to_end():
    proc = subprocess.Popen(tlslab_cmd("serve", "--port", "0", "--hrr"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        port = ca = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (port and ca):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
            if m := re.search(r"CA certificate: (\S+\.pem)", line):
                ca = m.group(1)
        assert port and ca and os.path.isfile(ca), "".join(lines)
        result = CliRunner().invoke(app, ["connect", f"localhost:{port}", "--ca-file", ca,
                                          "--http", "--json", "--timeout", "5"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["negotiated"]["hello_retry"] is True
        assert "HelloRetryRequest:   yes" in doc["http"]["response"]
        bad = CliRunner().invoke(app, ["connect", f"localhost:{port}", "--timeout", "5"])
        assert bad.exit_code == 1  # throwaway CA not trusted
        # the server logs the refusal once it has read the client's alert; give it a moment
        # before stopping it, or the SIGINT may come first
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "handshake ok" in output and "hrr=yes" in output
    assert "handshake failed" in output and "unknown_ca" in output
    assert "Traceback" not in output
    assert not os.path.exists(ca)  # the temporary CA file is removed on exit


# --------------------------------------------------------------------------- resumption, 0-RTT, mTLS, TLS 1.2

@pytest.fixture
def cli_server(certs_dir):
    """Factory: the server `tlslab serve` runs, configured through the same option handling
    (``_server_config``), in a thread on 127.0.0.1; returns (port, logs)."""
    from pathlib import Path
    from tlslab.cli.main import _server_config
    started = []

    def start(*, tls=None, client_ca=False, require=False, early_data=0, tickets=2,
              prefer_client_order=False):
        config, _ = _server_config(
            Path(certs_dir / "ecdsa-chain.pem"), Path(certs_dir / "ecdsa.key"), tls, None, None,
            None, None, None, False, ["localhost"],
            client_ca=Path(certs_dir / "ca.pem") if client_ca else None,
            require_client_cert=require, early_data=early_data,
            prefer_client_order=prefer_client_order, tickets=tickets)
        logs: list[str] = []
        srv = make_server("127.0.0.1", 0, config, http_handler, log=logs.append,
                          handshake_timeout=5, io_timeout=5)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        started.append((srv, t))
        return srv.port, logs

    yield start
    for srv, t in started:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def _connect_args(port, certs_dir, *more):
    return ["connect", f"localhost:{port}", "--ca-file", str(certs_dir / "ca.pem"),
            "--timeout", "5", *more]


def test_connect_reconnect_resumes(cli_server, certs_dir):
    port, logs = cli_server()
    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--reconnect", "2"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("resumed=true") == 2 and "resumed=false" not in out
    assert "handshakes side by side" in out and "round trips" in out and "handshake ms" in out

    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--reconnect", "2", "--json"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["negotiated"]["resumed"] is False
    assert [r["resumed"] for r in doc["reconnections"]] == [True, True]
    full, resumed, _ = doc["comparison"]
    assert (full["kind"], resumed["kind"]) == ("full", "resumed")
    assert "Certificate" in full["messages"] and "Certificate" not in resumed["messages"]
    assert full["flights_server_to_client"] == resumed["flights_server_to_client"] == 1
    assert full["round_trips"] == 1 and "handshake" in resumed["timing_ms"]
    assert resumed["flights"][0] == {"direction": "C→S", "messages": ["ClientHello"]}
    deadline = time.monotonic() + 5  # the server thread logs after its handshake
    while sum("resumed=yes" in line for line in logs) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum("resumed=yes" in line for line in logs) == 4, logs


def test_connect_reconnect_without_tickets(cli_server, certs_dir):
    port, _ = cli_server(tickets=0)
    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--reconnect", "1"))
    assert result.exit_code == 0, result.output
    assert "resumed=false" in result.stdout


def test_connect_early_data_accepted(cli_server, certs_dir):
    port, logs = cli_server(early_data=1024)
    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--reconnect", "1",
                                                   "--early-data", "x", "--http", "--json"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    again = doc["reconnections"][0]
    assert again["resumed"] is True and again["early_data_accepted"] is True
    assert again["http"]["sent_as_early_data"] is True
    assert "0-RTT early data:    accepted" in again["http"]["response"]
    assert "resumed:             yes" in again["http"]["response"]
    zero_rtt = doc["comparison"][1]
    assert zero_rtt["kind"] == "0-RTT" and zero_rtt["round_trips_before_data"] == 0
    assert "EndOfEarlyData" in zero_rtt["messages"]
    assert any(m.startswith("0-RTT data") for m in zero_rtt["flights"][0]["messages"])
    assert wait_for_log(logs, "0rtt=accepted")

    human = CliRunner().invoke(app, _connect_args(port, certs_dir, "--reconnect", "1",
                                                  "--early-data", "hello"))
    assert human.exit_code == 0, human.output
    assert "resumed=true early_data=accepted" in human.stdout
    assert "0-RTT" in human.stdout and "RTTs before app data" in human.stdout


def test_connect_early_data_not_allowed_by_ticket(cli_server, certs_dir):
    port, _ = cli_server()  # tickets without early_data: 0-RTT is not attempted
    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--reconnect", "1",
                                                   "--early-data", "x", "--http", "--json"))
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)["reconnections"][0]
    assert again["resumed"] is True and again["early_data_accepted"] is None
    assert "HTTP/1.1 200 OK" in again["http"]["response"]


def test_connect_client_certificate(cli_server, certs_dir):
    port, logs = cli_server(client_ca=True, require=True)
    ok = CliRunner().invoke(app, _connect_args(port, certs_dir, "--cert",
                                               str(certs_dir / "client-chain.pem"), "--key",
                                               str(certs_dir / "client.key"), "--http"))
    assert ok.exit_code == 0, ok.output
    assert "client certificate" in ok.stdout and "CN=tlslab test client" in ok.stdout
    assert wait_for_log(logs, 'client_cert="CN=tlslab test client'), logs

    bad = CliRunner().invoke(app, _connect_args(port, certs_dir))
    assert bad.exit_code == 1
    line = one_error_line(bad.stderr)
    assert "certificate_required" in line and "--cert" in line
    assert wait_for_log(logs, "client certificate rejected")

    bad_json = CliRunner().invoke(app, _connect_args(port, certs_dir, "--json", "--http"))
    assert bad_json.exit_code == 1
    assert json.loads(bad_json.stdout)["error"]["alert_received"] == "certificate_required"


def wait_for_log(logs, needle, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in line for line in logs):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("which, needle", [
    (("client-chain.pem", "ecdsa.key"), "is not the private key"),
    (("client.key", "client.key"), "no PEM certificate"),
    (("client-chain.pem", "client-chain.pem"), "cannot load the private key"),
    (("missing.pem", "client.key"), "no such file"),
    (("client-chain.pem", None), "go together"),
])
def test_connect_bad_client_identity(certs_dir, which, needle):
    cert, key = which
    args = ["connect", "127.0.0.1:1", "--cert", str(certs_dir / cert)]
    if key:
        args += ["--key", str(certs_dir / key)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert needle in one_error_line(result.stderr)


def test_connect_tls12(cli_server, certs_dir):
    port, logs = cli_server()
    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--tls", "1.2", "--http"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "TLS 1.2" in out and "ServerKeyExchange" in out
    assert "extended master secret" in out and "secure renegotiation" in out
    assert "encrypt-then-MAC" in out and "stapled OCSP response" in out
    assert "protocol version:    TLS 1.2" in out  # the server's page, over TLS 1.2

    result = CliRunner().invoke(app, _connect_args(port, certs_dir, "--tls", "1.2", "--json",
                                                   "--reconnect", "1"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["negotiated"]["version"] == "TLS 1.2"
    assert doc["negotiated"]["extended_master_secret"] is True
    assert doc["comparison"][0]["round_trips"] == 2
    assert doc["reconnections"][0]["resumed"] is True
    assert doc["comparison"][1]["round_trips"] == 1


def test_serve_bad_options():
    runner = CliRunner()
    for args, needle in ((["--require-client-cert"], "--client-ca"),
                         (["--early-data", "-1"], "--early-data"),
                         (["--tickets", "-1"], "--tickets"),
                         (["--client-ca", "/nonexistent.pem"], "no such file"),
                         (["--scenario", "tls1.3-only", "--tls", "1.2"], "drop --tls")):
        result = runner.invoke(app, ["serve", "--port", "0", *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in one_error_line(result.stderr)


def test_serve_command_mtls_and_early_data(certs_dir):
    c = certs_dir
    proc = subprocess.Popen(tlslab_cmd("serve", "--port", "0", "--cert", str(c / "ecdsa-chain.pem"),
                                       "--key", str(c / "ecdsa.key"), "--client-ca", str(c / "ca.pem"),
                                       "--require-client-cert", "--early-data", "1024",
                                       "--prefer-client-order", "--tickets", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    try:
        port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not port:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        assert port, "".join(lines)
        assert "client certificate required" in lines[-1] and "0-RTT up to 1024" in lines[-1]
        result = CliRunner().invoke(app, _connect_args(
            port, c, "--cert", str(c / "client-chain.pem"), "--key", str(c / "client.key"),
            "--reconnect", "1", "--early-data", "ping", "--http", "--json"))
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert "client certificate:  CN=tlslab test client" in doc["http"]["response"]
        assert doc["reconnections"][0]["early_data_accepted"] is True
        bad = CliRunner().invoke(app, _connect_args(port, c))
        assert bad.exit_code == 1 and "certificate_required" in bad.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert 'client_cert="CN=tlslab test client,O=tlslab test"' in output
    assert "resumed=yes 0rtt=accepted" in output
    assert "client certificate rejected: client sent no certificate" in output
    assert "Traceback" not in output


# --------------------------------------------------------------------------- review fixes

@pytest.fixture
def raw_server():
    """Factory: a TLS server in a thread whose handler is given (throwaway cert); -> port."""
    chain, key, _ = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    started = []

    def start(handler, **kw):
        kw.setdefault("handshake_timeout", 5)
        kw.setdefault("io_timeout", 5)
        logs: list[str] = []
        srv = make_server("127.0.0.1", 0, tlslab.ServerConfig(certificate_chain=chain,
                                                              private_key=key, tickets=0),
                          handler, log=logs.append, **kw)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        started.append((srv, t))
        srv.logs = logs
        return srv.port

    yield start
    for srv, t in started:
        srv.shutdown()
        srv.server_close()
        t.join(5)


EVIL = (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
        b"\x1b]0;PWNED\x1b\\\x1b[2J\x1b]52;c;ZWNobw==\x07body")


def test_connect_http_body_escape_sequences_are_shown_not_sent(raw_server):
    port = raw_server(lambda s: (s.recv(), s.send(EVIL)))
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--insecure", "--http",
                                      "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]52;c;ZWNobw==\\x07body" in result.stdout
    assert "HTTP/1.1 200 OK\n" in result.stdout  # CRLF shown as plain line ends


def test_connect_servername_with_markup_is_shown_literally(served):
    port, _, _ = served
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--insecure",
                                      "--servername", "[/]x", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert "could not render" not in result.stdout
    assert "handshake complete" in result.stdout and "[/]x" in result.stdout


def _truncating(sock):
    sock.recv()
    sock.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nshort")
    sock._sock.shutdown(socket.SHUT_RDWR)  # TCP FIN without close_notify


def test_connect_http_reports_truncation(raw_server):
    port = raw_server(_truncating)
    args = ["connect", f"127.0.0.1:{port}", "--insecure", "--http", "--timeout", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "connection closed without close_notify (the response may be truncated)" in \
        one_error_line(result.stderr)
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "close_notify" in doc["error"]["summary"]
    assert "close_notify" in doc["http"]["error"]


def test_connect_http_failure_after_handshake_is_not_ok_in_json(raw_server):
    import struct

    def reset(sock):
        sock.recv()
        sock._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock._sock.close()

    port = raw_server(reset)
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--insecure", "--http",
                                      "--json", "--timeout", "5"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "http"
    assert doc["negotiated"]["version"] == "TLS 1.3"  # the handshake itself is still there


def test_connect_http_timeout_is_a_total(raw_server):
    def drip(sock):
        sock.recv()
        for b in b"HTTP/1.1 200 OK\r\n":  # a byte every 0.4 s: no single read times out
            sock.send(bytes([b]))
            time.sleep(0.4)

    port = raw_server(drip)
    start = time.monotonic()
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--insecure", "--http",
                                      "--timeout", "1.5"])
    assert result.exit_code == 1
    assert "timed out after 1.5 s" in one_error_line(result.stderr)
    assert time.monotonic() - start < 5


def test_connect_json_printed_even_when_html_cannot_be_written(served):
    port, ca, _ = served
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                      "--servername", "localhost", "--json", "--timeout", "5",
                                      "--html", "/proc/self/no-such.html"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "html"
    assert "--html" in one_error_line(result.stderr)


@pytest.mark.parametrize("args, needle", [
    (["--timeout", "nan"], "--timeout"),
    (["--timeout", "inf"], "--timeout"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "86401"], "--timeout"),
    (["--servername", "a..b"], "bad host name"),
    (["--servername", "x" * 64 + ".example"], "bad host name"),
    (["--keylog", "/nonexistent-dir/keys.txt"], "--keylog"),
    (["--keylog", "/"], "--keylog"),
])
def test_connect_more_bad_input(args, needle):
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(app, ["connect", "127.0.0.1:1", *args, *extra])
        assert result.exit_code == 2, result.output
        assert needle in one_error_line(result.stderr)
        assert result.stdout == ""
    result = CliRunner().invoke(app, ["connect", "a..b:443"])
    assert result.exit_code == 2 and "bad host name" in one_error_line(result.stderr)


def test_serve_keylog_unwritable():
    result = CliRunner().invoke(app, ["serve", "--port", "0", "--keylog", "/nonexistent-dir/k"])
    assert result.exit_code == 2
    assert "--keylog" in one_error_line(result.stderr)


def test_connect_ca_file_from_a_pipe(served):
    """--ca-file <(cat ca.pem): /dev/fd/N is not a regular file, but readable."""
    port, ca, _ = served
    r, w = os.pipe()
    with open(ca, "rb") as f:
        os.write(w, f.read())
    os.close(w)
    try:
        proc = subprocess.run(tlslab_cmd("connect", f"127.0.0.1:{port}", "--servername",
                                         "localhost", "--ca-file", f"/dev/fd/{r}",
                                         "--timeout", "5"),
                              pass_fds=(r,), capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    finally:
        os.close(r)
    assert proc.returncode == 0, proc.stderr


def test_serve_request_head_deadline_is_a_total(raw_server):
    """A client dripping its request a byte at a time is dropped after io_timeout in all."""
    port = raw_server(http_handler, io_timeout=1)
    sock = tlslab.connect("127.0.0.1", port, insecure=True, timeout=5)
    start = time.monotonic()
    try:
        with pytest.raises(OSError):
            for b in b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 100:
                sock.send(bytes([b]))  # each one its own record: every read succeeds
                time.sleep(0.2)
    finally:
        sock.close()
    assert time.monotonic() - start < 4


def test_serve_logger_survives_a_closed_pipe():
    from tlslab.cli.main import _Logger

    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    _Logger(Closed())("127.0.0.1:1 handshake ok")  # no exception: `tlslab serve | head -1`


def test_serve_log_line_escapes_client_text():
    from io import StringIO
    from tlslab.cli.main import _Logger
    out = StringIO()
    _Logger(out)('127.0.0.1:1 handshake ok: sni=a\x1b]52;c;eA==\x07 client_cert="CN=\x1b[2J"')
    assert "\x1b" not in out.getvalue() and "\\x1b]52" in out.getvalue()


def test_page_text_escapes_client_text():
    from tlslab.workbench.httppage import page_text
    text = page_text({"version": "TLS 1.3", "server_name": "x\x1b[2J"},
                     request_line="GET /\x1b]0;t\x07 HTTP/1.1")
    assert "\x1b" not in text and "\x07" not in text and "x\\x1b[2J" in text
