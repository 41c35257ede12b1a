"""The command line: demo, connect, serve (127.0.0.1 only, every network step bounded)."""
from __future__ import annotations

import json
import os
import re
import signal
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
    for cmd in ("connect", "serve", "demo"):
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.stdout
    result = runner.invoke(app, ["--help"])
    assert "diagnose" not in result.stdout and "scan" not in result.stdout


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
