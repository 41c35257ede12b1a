"""tlslab against other real peers on loopback: Python ``ssl``, curl, IPv6 (::1), and a
capture decrypted by tshark with the key log tlslab wrote.

Socket drivers (``run_client``, ``TlslabServer``) come from ``test_interop_openssl``.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import _kill_group, require_tool, run_bounded
from test_interop_openssl import (HTTP_GET, IO_TIMEOUT, TlslabServer, check_client,
                                  check_s_client, client_config, run_client, s_client,
                                  server_config)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60),
              # ffdhe2048 is exercised on purpose; cryptography deprecates FFDH
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]


# --------------------------------------------------------------------------- Python ssl

def python_ssl_get(certs_dir: Path, port: int, host: str = "127.0.0.1") -> tuple[bytes, str, str]:
    ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            version, cipher = tls.version(), tls.cipher()[0]
            tls.sendall(HTTP_GET)
            data = bytearray()
            while True:
                try:
                    chunk = tls.recv(65536)
                except ssl.SSLZeroReturnError:
                    break
                if not chunk:
                    break
                data += chunk
    return bytes(data), version, cipher


@pytest.mark.parametrize("key_type,scheme", [("ecdsa", "ecdsa_secp256r1_sha256"),
                                             ("rsa", "rsa_pss_rsae_sha256")])
def test_server_python_ssl(certs_dir, key_type, scheme):
    with TlslabServer(server_config(certs_dir, key_type=key_type)) as server:
        data, version, cipher = python_ssl_get(certs_dir, server.port)
    served = server.served[0]
    assert served.exception is None and served.complete is not None, served.describe()
    assert version == "TLSv1.3"
    assert cipher == served.conn.negotiated["cipher_suite"]
    assert served.conn.negotiated["signature_scheme"] == scheme
    assert served.request.startswith(b"GET / HTTP/1.0")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"tlslab says hello" in data


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_server_curl(certs_dir, key_type):
    curl = require_tool("curl")
    with TlslabServer(server_config(certs_dir, key_type=key_type)) as server:
        port = server.port
        rc, out, err = run_bounded(
            [curl, "-sS", "-v", "--max-time", "10", "--tlsv1.3", "--cacert", certs_dir / "ca.pem",
             "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
            timeout=20)
    served = server.served[0]
    detail = f"rc={rc}\n{out}\n{err[-3000:]}\n{served.describe()}"
    assert rc == 0, detail
    assert served.exception is None and served.complete is not None, detail
    assert "tlslab says hello" in out, detail
    assert "TLSv1.3" in err, detail
    assert served.request.startswith(b"GET / HTTP/1.1"), detail


# --------------------------------------------------------------------------- IPv6

@pytest.fixture(scope="session")
def ipv6_loopback() -> str:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"::1 is not available here ({exc})")
    return "::1"


def test_client_ipv6(openssl_server, certs_dir, ipv6_loopback):
    port = openssl_server("-tls1_3", host=ipv6_loopback)
    result = run_client(client_config(certs_dir), port, host=ipv6_loopback)
    check_client(result, group="x25519", signature_scheme="ecdsa_secp256r1_sha256")


def test_client_ipv6_ip_literal_server_name(openssl_server, certs_dir, ipv6_loopback):
    """Connecting to an IP literal: no SNI is sent (RFC 6066 §3) and the certificate is
    matched against its iPAddress SAN."""
    port = openssl_server("-tls1_3", host=ipv6_loopback)
    result = run_client(client_config(certs_dir, server_name="::1"), port, host=ipv6_loopback)
    check_client(result, group="x25519")


def test_server_ipv6(certs_dir, ipv6_loopback):
    with TlslabServer(server_config(certs_dir), host=ipv6_loopback) as server:
        rc, out, err = s_client(certs_dir, server.port, host=ipv6_loopback)
    check_s_client(rc, out, err, server.served[0], group="x25519", hello_retry=False)


# --------------------------------------------------------------------------- keylog + tshark

def _start_capture(dumpcap: str, port: int, pcap: Path, timeout: float = 10.0) -> subprocess.Popen:
    """Start dumpcap on lo for ``port`` and wait until it says it is capturing."""
    proc = subprocess.Popen([dumpcap, "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            seen += chunk
            if b"Capturing on" in seen:
                # "Capturing on" comes a little before packets are really seen: without
                # this pause a handshake started at once was missing from the capture
                time.sleep(1.0)
                return proc
            if not chunk:  # dumpcap exited
                break
        if proc.poll() is not None:
            break
    _kill_group(proc, grace=1.0)
    message = seen.decode("utf-8", "replace").strip()
    lowered = message.lower()
    if "permission" in lowered or "operation not permitted" in lowered or "privileges" in lowered:
        pytest.skip(f"packet capture on lo is not permitted here: {message}")
    pytest.fail(f"dumpcap did not start capturing within {timeout:g} s: {message}", pytrace=False)


def _stop_capture(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)  # dumpcap finishes the file on SIGINT
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    _kill_group(proc, grace=1.0)
    if proc.stderr:
        proc.stderr.close()


def test_keylog_tshark_decrypts_capture(certs_dir, tmp_path):
    tshark = require_tool("tshark")
    dumpcap = require_tool("dumpcap")
    pcap, keylog = tmp_path / "tlslab.pcap", tmp_path / "keylog.txt"
    with TlslabServer(server_config(certs_dir, alpn_protocols=["http/1.1"])) as server:
        port = server.port
        capture = _start_capture(dumpcap, port, pcap)
        try:
            config = client_config(certs_dir, keylog_file=str(keylog),
                                   alpn_protocols=["http/1.1"])
            result = run_client(config, port, request=b"GET /tlslab-keylog HTTP/1.0\r\n\r\n")
            time.sleep(0.3)  # let the last packets reach the capture buffer
        finally:
            _stop_capture(capture)
    assert result.complete is not None, result.describe()
    assert result.data.startswith(b"HTTP/1.1 200 OK")
    labels = {line.split()[0] for line in keylog.read_text().splitlines() if line.strip()}
    assert {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"} <= labels, labels
    assert pcap.is_file() and pcap.stat().st_size > 0, "empty capture"

    rc, out, err = run_bounded(
        [tshark, "-n", "-r", pcap, "-o", f"tls.keylog_file:{keylog}",
         "-d", f"tcp.port=={port},tls", "-Y", "http",
         "-T", "fields", "-e", "http.request.method", "-e", "http.request.uri",
         "-e", "http.response.code"], timeout=30)
    assert rc == 0, err
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert ["GET", "/tlslab-keylog", ""] in rows, (out, err)
    assert any(row[-1] == "200" for row in rows), (out, err)

    # without the key log, the same capture shows no HTTP at all
    rc, out, err = run_bounded([tshark, "-n", "-r", pcap, "-d", f"tcp.port=={port},tls",
                                "-Y", "http", "-T", "fields", "-e", "http.request.method"],
                               timeout=30)
    assert rc == 0 and out.strip() == "", (out, err)
