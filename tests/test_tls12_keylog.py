"""TLS 1.2 key log: a tlslab client and a tlslab server on 127.0.0.1, captured with dumpcap.

The client writes its NSS key log (``ClientConfig(keylog_file=path)``): for TLS 1.2 that is
one ``CLIENT_RANDOM <client random> <master secret>`` line.  With it, ``tshark -o
tls.keylog_file:...`` must decrypt the HTTP request and answer in the capture; without it,
no HTTP must be visible.  One AEAD (GCM) suite and CBC suites, with encrypt-then-MAC
(RFC 7366, what tlslab negotiates by default) and with MAC-then-encrypt.

Skipped with a reason when tshark/dumpcap are missing or capturing on lo is not permitted.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import _kill_group, require_tool, run_bounded
from tlslab.proto import events as ev
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.extensions import ET
from tlslab.proto.messages import ClientHello
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90),
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]

HOST = "127.0.0.1"
IO_TIMEOUT = 10.0
ANSWER = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\ntlslab 1.2 ok\n"


# --------------------------------------------------------------------------- a one-shot server

class OneShotServer:
    """Accepts one connection on 127.0.0.1 and answers one HTTP request, in a thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(1)
        self.sock.settimeout(IO_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.conn: ServerConnection | None = None
        self.request = b""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "OneShotServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(IO_TIMEOUT)
        self.sock.close()

    def _run(self) -> None:
        try:
            raw, _ = self.sock.accept()
            with raw:
                raw.settimeout(IO_TIMEOUT)
                tls = self.conn = ServerConnection(self.config)
                answered = False
                while not tls.closed:
                    data = raw.recv(65536)
                    if not data:
                        break
                    for event in tls.receive_data(data):
                        if isinstance(event, ev.ApplicationData):
                            self.request += event.data
                            if b"\r\n\r\n" in self.request and not answered:
                                answered = True
                                tls.send_application_data(ANSWER)
                                tls.close()
                    out = tls.data_to_send()
                    if out:
                        raw.sendall(out)
        except BaseException as exc:  # reported by the test
            self.error = exc


def run_client(config: ClientConfig, port: int, request: bytes) -> tuple[ClientConnection, bytes]:
    tls = ClientConnection(config)
    answer = bytearray()
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as raw:
        tls.start_handshake()
        raw.sendall(tls.data_to_send())
        sent = False
        while not tls.closed:
            data = raw.recv(65536)
            if not data:
                break
            for event in tls.receive_data(data):
                if isinstance(event, ev.HandshakeComplete) and not sent:
                    sent = True
                    tls.send_application_data(request)
                elif isinstance(event, ev.ApplicationData):
                    answer += event.data
            out = tls.data_to_send()
            if out:
                raw.sendall(out)
    return tls, bytes(answer)


# --------------------------------------------------------------------------- capture

def start_capture(dumpcap: str, port: int, pcap: Path, timeout: float = 10.0) -> subprocess.Popen:
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
                time.sleep(1.0)  # dumpcap reports a little before packets are really seen
                return proc
            if not chunk:
                break
        if proc.poll() is not None:
            break
    _kill_group(proc, grace=1.0)
    message = seen.decode("utf-8", "replace").strip()
    lowered = message.lower()
    if any(w in lowered for w in ("permission", "not permitted", "privileges", "don't have")):
        pytest.skip(f"packet capture on lo is not permitted here: {message}")
    pytest.fail(f"dumpcap did not start capturing within {timeout:g} s: {message}", pytrace=False)


def stop_capture(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)  # dumpcap finishes the file on SIGINT
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    _kill_group(proc, grace=1.0)
    if proc.stderr:
        proc.stderr.close()


# --------------------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    chain, key, ca = make_throwaway_chain(key_type="rsa2048")
    d = tmp_path_factory.mktemp("tls12-keylog")
    (d / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    return chain, key, str(d / "ca.pem")


def _without_etm(config_kwargs: dict) -> ClientHello:
    probe = ClientConnection(ClientConfig(**config_kwargs))
    probe.start_handshake()
    ch = ClientHello.parse(probe.data_to_send()[5:])
    ch.extensions = [e for e in ch.extensions if e.type != ET.encrypt_then_mac]
    return ch


CASES = [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", True),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", True),    # encrypt-then-MAC
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", False),      # MAC-then-encrypt
    ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", True),
]


@pytest.mark.parametrize("suite, etm", CASES,
                         ids=[f"{s}{'' if e or 'CBC' not in s else '-mte'}" for s, e in CASES])
def test_tls12_keylog_decrypts_capture(pki, tmp_path, suite, etm):
    tshark = require_tool("tshark")
    dumpcap = require_tool("dumpcap")
    chain, key, ca_file = pki
    pcap, keylog = tmp_path / "tls12.pcap", tmp_path / "keylog.txt"
    uri = f"/tlslab-tls12-{suite.lower()}"
    request = f"GET {uri} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode()
    ckw = dict(server_name="localhost", ca_file=ca_file, versions=["1.2"], cipher_suites=[suite],
               session_store=None, keylog_file=str(keylog))
    if not etm:
        ckw["client_hello_template"] = _without_etm({k: v for k, v in ckw.items() if k != "keylog_file"})
    config = ClientConfig(**ckw)
    server_config = ServerConfig(certificate_chain=chain, private_key=key, versions=["1.2"],
                                 cipher_suites=[suite], tickets=0)
    with OneShotServer(server_config) as server:
        capture = start_capture(dumpcap, server.port, pcap)
        try:
            client, answer = run_client(config, server.port, request)
            time.sleep(0.3)  # let the last packets reach the capture buffer
        finally:
            stop_capture(capture)
    assert server.error is None, repr(server.error)
    assert client.error is None, client.error
    assert client.negotiated["version"] == "TLS 1.2" and client.negotiated["cipher_suite"] == suite
    assert client.negotiated["encrypt_then_mac"] is (etm and "CBC" in suite)
    assert server.request == request
    assert answer == ANSWER

    lines = [ln.split() for ln in keylog.read_text().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0][0] == "CLIENT_RANDOM", lines
    _, client_random, master = lines[0]
    assert client_random == client.client_random.hex() and len(bytes.fromhex(master)) == 48
    assert pcap.is_file() and pcap.stat().st_size > 0, "empty capture"

    # the capture's ClientHello carries the random the key log names
    rc, out, err = run_bounded([tshark, "-n", "-r", pcap, "-d", f"tcp.port=={server.port},tls",
                                "-Y", "tls.handshake.type == 1", "-T", "fields",
                                "-e", "tls.handshake.random"], timeout=30)
    assert rc == 0, err
    assert out.split() == [client_random], out

    rc, out, err = run_bounded(
        [tshark, "-n", "-r", pcap, "-o", f"tls.keylog_file:{keylog}",
         "-d", f"tcp.port=={server.port},tls", "-Y", "http",
         "-T", "fields", "-e", "http.request.method", "-e", "http.request.uri",
         "-e", "http.response.code"], timeout=30)
    assert rc == 0, err
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert ["GET", uri, ""] in rows, (out, err)
    assert any(row[-1] == "200" for row in rows), (out, err)

    # without the key log the same capture shows no HTTP at all
    rc, out, err = run_bounded([tshark, "-n", "-r", pcap, "-d", f"tcp.port=={server.port},tls",
                                "-Y", "http", "-T", "fields", "-e", "http.request.method"], timeout=30)
    assert rc == 0 and out.strip() == "", (out, err)
