"""tlslab against OpenSSL on loopback (127.0.0.1 only).

* tlslab client ↔ ``openssl s_server -tls1_3 -www``: every cipher suite, every group,
  every server signature scheme we can get a certificate for, and a HelloRetryRequest.
* tlslab server ↔ ``openssl s_client``: suites, groups, an HRR forced by the server's
  group preference and a cookie HRR.

The socket loops live here on purpose (``tlslab.io`` is tested on its own): each test
drives the sans-IO engine directly, so a failure points at the engine, not an adapter.
Other interop modules import the helpers below (``run_client``, ``TlslabServer``, ...).
"""
from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import require_tool, run_bounded
from tlslab.proto import events as ev
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.server import ServerConnection

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60),
              # ffdhe2048 is exercised on purpose; cryptography deprecates FFDH
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]

SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
GROUPS = ["x25519", "secp256r1", "secp384r1", "x448", "ffdhe2048"]
# tlslab group name -> the name OpenSSL 3 accepts in -groups
OPENSSL_GROUP = {"x25519": "X25519", "secp256r1": "P-256", "secp384r1": "P-384",
                 "x448": "X448", "ffdhe2048": "ffdhe2048"}
# group -> how s_client prints it in "Server Temp Key: ..."
OPENSSL_TEMP_KEY = {"x25519": "X25519, 253 bits", "secp256r1": "ECDH, prime256v1, 256 bits",
                    "secp384r1": "ECDH, secp384r1, 384 bits", "x448": "X448, 448 bits",
                    "ffdhe2048": "DH, 2048 bits"}
HTTP_GET = b"GET / HTTP/1.0\r\n\r\n"
IO_TIMEOUT = 10.0


# --------------------------------------------------------------------------- client driver

@dataclass
class ClientResult:
    conn: ClientConnection
    complete: ev.HandshakeComplete | None = None
    data: bytes = b""
    events: list = field(default_factory=list)
    closed: ev.ConnectionClosed | None = None

    @property
    def verified(self) -> bool:
        """The engine recorded a successful path validation (trace "certificate verified")."""
        return any(e.kind == "info" and e.name == "certificate verified"
                   for e in self.conn.trace.entries)

    def describe(self) -> str:
        errors = [f"{e.name}: {e.detail}" for e in self.conn.trace.entries if e.kind == "error"]
        alerts = [f"{e.direction} {e.name}" for e in self.conn.trace.entries if e.kind == "alert"]
        return (f"state={self.conn.state.name} complete={self.conn.handshake_complete} "
                f"error={self.conn.error!r} errors={errors} alerts={alerts} closed={self.closed}")


def run_client(config: ClientConfig, port: int, host: str = "127.0.0.1",
               request: bytes | None = HTTP_GET, timeout: float = IO_TIMEOUT) -> ClientResult:
    """Connect, handshake, send ``request`` once the handshake is complete, read until the
    peer closes (close_notify or EOF) or ``timeout`` runs out."""
    conn = ClientConnection(config)
    result = ClientResult(conn)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        conn.start_handshake()
        sock.sendall(conn.data_to_send())
        sent_request = False
        data = bytearray()
        while not conn.closed and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                result.events.append(event)
                if isinstance(event, ev.HandshakeComplete):
                    result.complete = event
                elif isinstance(event, ev.ApplicationData):
                    data += event.data
                elif isinstance(event, ev.ConnectionClosed):
                    result.closed = event
            if conn.handshake_complete and not sent_request and not conn.closed:
                sent_request = True
                if request is not None:
                    conn.send_application_data(request)
                else:
                    conn.close()
            out = conn.data_to_send()
            if out:
                try:
                    sock.sendall(out)
                except OSError:
                    break
        result.data = bytes(data)
    return result


# --------------------------------------------------------------------------- server driver

def http_response(body: bytes, version: str = "HTTP/1.1") -> bytes:
    return (f"{version} 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


@dataclass
class ServedConnection:
    conn: ServerConnection
    request: bytes = b""
    complete: ev.HandshakeComplete | None = None
    closed: ev.ConnectionClosed | None = None
    exception: BaseException | None = None

    def describe(self) -> str:
        errors = [f"{e.name}: {e.detail}" for e in self.conn.trace.entries if e.kind == "error"]
        alerts = [f"{e.direction} {e.name}" for e in self.conn.trace.entries if e.kind == "alert"]
        return (f"state={self.conn.state.name} complete={self.conn.handshake_complete} "
                f"error={self.conn.error!r} errors={errors} alerts={alerts} "
                f"exception={self.exception!r}")


class TlslabServer:
    """A ``ServerConnection`` per accepted TCP connection, in a background thread.

    Reads until an HTTP request head (``\\r\\n\\r\\n``) arrived, answers an HTTP/1.1 page
    that names the negotiated parameters, sends close_notify and closes.
    """

    def __init__(self, config: ServerConfig, host: str = "127.0.0.1", connections: int = 1,
                 timeout: float = IO_TIMEOUT) -> None:
        self.config = config
        self.host = host
        self.timeout = timeout
        self.remaining = connections
        self.served: list[ServedConnection] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(4)
        self.listener.settimeout(timeout)
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, name=f"tlslab-server-{self.port}",
                                       daemon=True)

    def __enter__(self) -> "TlslabServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        self.thread.join(self.timeout + 2)

    def _run(self) -> None:
        while self.remaining > 0:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.remaining -= 1
            with sock:
                self._serve(sock)

    def _serve(self, sock: socket.socket) -> None:
        conn = ServerConnection(self.config)
        served = ServedConnection(conn)
        self.served.append(served)
        deadline = time.monotonic() + self.timeout
        request = bytearray()
        answered = False
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
                    if isinstance(event, ev.HandshakeComplete):
                        served.complete = event
                    elif isinstance(event, ev.ApplicationData):
                        request += event.data
                    elif isinstance(event, ev.ConnectionClosed):
                        served.closed = event
                if not answered and b"\r\n\r\n" in request and not conn.closed:
                    answered = True
                    n = conn.negotiated
                    body = (f"tlslab says hello\nversion={n['version']}\n"
                            f"cipher_suite={n['cipher_suite']}\ngroup={n['group']}\n"
                            f"hello_retry={n['hello_retry']}\n").encode()
                    conn.send_application_data(http_response(body))
                    conn.close()
                out = conn.data_to_send()
                if out:
                    try:
                        sock.sendall(out)
                    except OSError:
                        break
                if answered:
                    break
            served.request = bytes(request)
            try:
                sock.shutdown(socket.SHUT_WR)
                # drain what the peer still sends (its close_notify) so the close is not an RST
                sock.settimeout(1.0)
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        except BaseException as exc:  # reported by the test, not lost in the thread
            served.exception = exc


def server_config(certs_dir: Path, key_type: str = "ecdsa", **options) -> ServerConfig:
    return ServerConfig.from_files(str(certs_dir / f"{key_type}-chain.pem"),
                                   str(certs_dir / f"{key_type}.key"), **options)


# --------------------------------------------------------------------------- extra certificates

def _make_leaf(openssl: str, out: Path, certs_dir: Path, name: str, genpkey: list[str]) -> tuple[Path, Path]:
    key, csr, pem, ext = (out / f"{name}.key", out / f"{name}.csr", out / f"{name}.pem",
                          out / f"{name}.ext")
    ext.write_text("[v3]\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    steps = [
        [openssl, "genpkey", *genpkey, "-out", key],
        [openssl, "req", "-new", "-key", key, "-subj", f"/O=tlslab test/CN=localhost {name}",
         "-out", csr],
        [openssl, "x509", "-req", "-in", csr, "-CA", certs_dir / "intermediate.pem",
         "-CAkey", certs_dir / "intermediate.key", "-set_serial", f"0x{secrets.token_hex(12)}",
         "-days", "30", "-sha256", "-extfile", ext, "-extensions", "v3", "-out", pem],
    ]
    for cmd in steps:
        rc, _, err = run_bounded(cmd, timeout=30)
        if rc != 0:
            pytest.skip(f"could not create the {name} test certificate with openssl: {err.strip()}")
    return pem, key


EXTRA_LEAVES = {
    "ecdsa384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "ed25519": ["-algorithm", "ED25519"],
    "rsapss": ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
}


@pytest.fixture(scope="session")
def extra_leaves(certs_dir: Path, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """ECDSA P-384, Ed25519 and RSA-PSS (id-RSASSA-PSS key) leaves for localhost, signed by
    the test intermediate; created once per session in a temporary directory."""
    openssl = require_tool("openssl")
    out = tmp_path_factory.mktemp("extra-leaves")
    return {name: _make_leaf(openssl, out, certs_dir, name, args)
            for name, args in EXTRA_LEAVES.items()}


# --------------------------------------------------------------------------- tlslab client ↔ s_server

def client_config(certs_dir: Path, **options) -> ClientConfig:
    options.setdefault("server_name", "localhost")
    return ClientConfig(ca_file=str(certs_dir / "ca.pem"), **options)


def check_client(result: ClientResult, **expected) -> None:
    assert result.complete is not None, f"handshake did not complete: {result.describe()}"
    assert result.conn.error is None, result.describe()
    assert result.verified, "no 'certificate verified' in the client trace"
    n = result.conn.negotiated
    assert n["version"] == "TLS 1.3"
    for key, value in expected.items():
        assert n[key] == value, f"negotiated {key}={n[key]!r}, expected {value!r}"
        assert getattr(result.complete, key) == value
    leaf = result.complete.peer_certificates[0]
    assert "localhost" in leaf.subject.rfc4514_string()
    assert result.data.startswith(b"HTTP/1.0 200"), (result.data[:200], result.describe())
    # -www echoes the session: the page names the cipher OpenSSL agreed on
    assert b"New, TLSv1.3, Cipher is " + n["cipher_suite"].encode() in result.data
    # s_server -www ends with close_notify, which we answer: a clean close, no error
    assert result.closed is not None and result.closed.error is None, result.describe()
    assert result.closed.alert_received == "close_notify", result.describe()


@pytest.mark.parametrize("suite", SUITES)
def test_client_cipher_suites(openssl_server, certs_dir, suite):
    port = openssl_server("-tls1_3", "-ciphersuites", suite)
    result = run_client(client_config(certs_dir, cipher_suites=[suite]), port)
    check_client(result, cipher_suite=suite, group="x25519",
                 signature_scheme="ecdsa_secp256r1_sha256", hello_retry=False)


@pytest.mark.parametrize("group", GROUPS)
def test_client_groups(openssl_server, certs_dir, group):
    port = openssl_server("-tls1_3", "-groups", OPENSSL_GROUP[group])
    result = run_client(client_config(certs_dir, groups=[group], key_share_groups=[group]), port)
    check_client(result, group=group, hello_retry=False)


@pytest.mark.parametrize("scheme", ["rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384",
                                    "rsa_pss_rsae_sha512"])
def test_client_rsa_pss_rsae(openssl_server, certs_dir, scheme):
    port = openssl_server("-tls1_3", "-sigalgs", scheme, key_type="rsa")
    result = run_client(client_config(certs_dir), port)
    check_client(result, signature_scheme=scheme)


def test_client_ecdsa_p256(openssl_server, certs_dir):
    port = openssl_server("-tls1_3", key_type="ecdsa")
    result = run_client(client_config(certs_dir, signature_algorithms=["ecdsa_secp256r1_sha256"]),
                        port)
    check_client(result, signature_scheme="ecdsa_secp256r1_sha256")


@pytest.mark.parametrize("leaf,scheme", [
    ("ecdsa384", "ecdsa_secp384r1_sha384"),
    ("ed25519", "ed25519"),
    ("rsapss", "rsa_pss_pss_sha256"),
])
def test_client_generated_leaves(openssl_server, certs_dir, extra_leaves, leaf, scheme):
    cert, key = extra_leaves[leaf]
    port = openssl_server("-tls1_3", cert=cert, key=key)
    result = run_client(client_config(certs_dir), port)
    check_client(result, signature_scheme=scheme)


def test_client_hello_retry_request(openssl_server, certs_dir):
    """We send only an X25519 share; the server accepts only P-256 → HelloRetryRequest."""
    port = openssl_server("-tls1_3", "-groups", "P-256")
    config = client_config(certs_dir, groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    result = run_client(config, port)
    check_client(result, group="secp256r1", hello_retry=True)
    sent = [e.name for e in result.conn.trace.entries if e.kind == "message" and e.direction == "sent"]
    assert sent.count("ClientHello") == 2, sent


# --------------------------------------------------------------------------- s_client ↔ tlslab server

def s_client(certs_dir: Path, port: int, *extra: str, host: str = "127.0.0.1",
             timeout: float = 20) -> tuple[int, str, str]:
    openssl = require_tool("openssl")
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd = [openssl, "s_client", "-connect", target, "-tls1_3",
           "-CAfile", str(certs_dir / "ca.pem"), "-servername", "localhost",
           "-verify_hostname", "localhost", "-verify_return_error", "-ign_eof", *extra]
    return run_bounded(cmd, input=HTTP_GET.decode(), timeout=timeout)


def check_s_client(rc: int, out: str, err: str, served: ServedConnection,
                   suite: str | None = None, group: str | None = None, hello_retry: bool | None = None) -> None:
    detail = f"rc={rc}\n--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-2000:]}\n" \
             f"--- server ---\n{served.describe()}"
    assert served.exception is None, detail
    assert served.complete is not None, detail
    suite = suite or served.conn.negotiated["cipher_suite"]
    assert served.conn.negotiated["cipher_suite"] == suite, detail
    assert "Verify return code: 0 (ok)" in out, detail
    assert re.search(r"Protocol\s*: TLSv1\.3", out) or "New, TLSv1.3" in out, detail
    assert f"Cipher is {suite}" in out or re.search(rf"Cipher\s*: {suite}", out), detail
    if group is not None:
        assert f"Server Temp Key: {OPENSSL_TEMP_KEY[group]}" in out, detail
        assert served.conn.negotiated["group"] == group
    if hello_retry is not None:
        assert served.conn.negotiated["hello_retry"] is hello_retry
    assert served.request.startswith(b"GET / HTTP/1.0"), detail
    assert "HTTP/1.1 200 OK" in out and "tlslab says hello" in out, detail
    assert rc == 0, detail


@pytest.mark.parametrize("suite", SUITES)
def test_server_cipher_suites_s_client(certs_dir, suite):
    with TlslabServer(server_config(certs_dir)) as server:
        rc, out, err = s_client(certs_dir, server.port, "-ciphersuites", suite)
    check_s_client(rc, out, err, server.served[0], suite)
    assert server.served[0].conn.negotiated["cipher_suite"] == suite


@pytest.mark.parametrize("group", GROUPS)
def test_server_groups_s_client(certs_dir, group):
    with TlslabServer(server_config(certs_dir, key_type="rsa")) as server:
        rc, out, err = s_client(certs_dir, server.port, "-groups", OPENSSL_GROUP[group])
    check_s_client(rc, out, err, server.served[0], group=group, hello_retry=False)


def test_server_hrr_group_preference_s_client(certs_dir):
    """s_client sends an X25519 share; the server only accepts P-256 → HelloRetryRequest."""
    config = server_config(certs_dir, groups=["secp256r1", "secp384r1"])
    with TlslabServer(config) as server:
        rc, out, err = s_client(certs_dir, server.port, "-groups", "X25519:P-256")
    check_s_client(rc, out, err, server.served[0], group="secp256r1", hello_retry=True)


def test_server_cookie_hrr_s_client(certs_dir):
    with TlslabServer(server_config(certs_dir, cookie_hrr=True)) as server:
        rc, out, err = s_client(certs_dir, server.port)
    check_s_client(rc, out, err, server.served[0], group="x25519", hello_retry=True)
