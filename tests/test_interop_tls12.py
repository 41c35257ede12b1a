"""TLS 1.2 interop matrix on loopback (127.0.0.1 only): tlslab against real peers, both
directions wherever the peer has both roles.

Suite families (IANA names): ECDHE_ECDSA (ECDSA P-256 leaf), ECDHE_RSA, DHE_RSA and static
RSA (RSA leaf), each with AES-GCM, ChaCha20-Poly1305 where the family has it, and AES-CBC
with HMAC-SHA1 and HMAC-SHA256/384.  TLS 1.2 is forced on both sides.

* OpenSSL ``s_server``/``s_client``: every suite both ways, session resumption by ticket
  and by session ID, extended master secret, version negotiation against 1.2-only peers,
  TLS_FALLBACK_SCSV, client certificates, and the tlslab client at TLS 1.0 / 1.1.
* GnuTLS ``gnutls-cli``/``gnutls-serv``: every suite both ways, resumption both ways (ticket
  and session ID), and peers without extended master secret (``%NO_SESSION_HASH``).
* NSS ``tstclnt``/``selfserv``, Java JSSE, Node.js, Go crypto/tls, Python ``ssl``: a few
  representative suites both ways; curl as a client; 100 kB each way with Python ``ssl``.

The Go, Java and Node peers are the small programs in ``tests/peers/``; the Go and Java
ones are compiled once into a cache under the system temporary directory (keyed by a hash
of the source and the tool's version).  ``gnutls-serv`` and ``selfserv`` cannot be told which address to
listen on: they run with ``tests/peers/loopback_bind.c`` preloaded, which turns their
wildcard bind into a loopback bind.  A peer that is missing or cannot be built is skipped
with the reason; every process and socket is bounded in time.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import _kill_group, free_port, require_tool, run_bounded, wait_for_port
from test_interop_openssl import HTTP_GET, IO_TIMEOUT, TlslabServer, run_client
from tlslab.proto.config import ClientConfig, ServerConfig, load_identity
from tlslab.proto.tls12.suites import DEFAULT_SUITES12, SUITES12

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60),
              # DHE_RSA suites use FFDHE on purpose; cryptography deprecates FFDH
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]

PEERS_SRC = Path(__file__).resolve().parent / "peers"

# --------------------------------------------------------------------------- suites

ECDHE_ECDSA = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
]
ECDHE_RSA = [s.replace("ECDHE_ECDSA", "ECDHE_RSA") for s in ECDHE_ECDSA]
DHE_RSA = [
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
]
STATIC_RSA = [
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA256",
]
ALL_SUITES = ECDHE_ECDSA + ECDHE_RSA + DHE_RSA + STATIC_RSA

# one of each key exchange, spread over GCM, ChaCha20, CBC-SHA1 and CBC-SHA256/384
REPRESENTATIVE = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
]
# Go's crypto/tls has no DHE suites and no CBC-SHA384 suites
GO_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
]


def key_type(suite: str) -> str:
    """The leaf a suite needs: ECDHE_ECDSA signs with the ECDSA key, the rest use RSA."""
    return "ecdsa" if "_ECDSA_" in suite else "rsa"


def parts(suite: str) -> tuple[str, str, str]:
    """TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 -> ("ECDHE_RSA", "AES_128_CBC", "SHA256")."""
    kx, rest = suite[len("TLS_"):].split("_WITH_")
    if rest == "CHACHA20_POLY1305_SHA256":
        return kx, "CHACHA20_POLY1305", "AEAD"
    cipher, mac = rest.rsplit("_", 1)
    if "GCM" in cipher:
        mac = "AEAD"
    return kx, cipher, {"SHA": "SHA1"}.get(mac, mac)


@lru_cache(maxsize=None)
def openssl_cipher_names() -> dict[str, str]:
    """IANA name -> OpenSSL name, from ``openssl ciphers -stdname`` (not a hand-kept table)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return {}
    rc, out, _ = run_bounded([openssl, "ciphers", "-stdname", "ALL:@SECLEVEL=0"], timeout=20)
    names = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "-":
            names[fields[0]] = fields[2]
    return names


def openssl_name(suite: str) -> str:
    name = openssl_cipher_names().get(suite)
    if name is None:
        pytest.skip(f"this OpenSSL has no {suite} (not in `openssl ciphers -stdname`)")
    return name


# --------------------------------------------------------------------------- configs and checks

def client12(certs_dir: Path, suite: str | None = None, **options) -> ClientConfig:
    options.setdefault("versions", ["1.2"])
    if suite is not None:
        options.setdefault("cipher_suites", [suite])
    return ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"), **options)


# every TLS 1.2 suite tlslab runs, static RSA included: a server enables TLS_RSA_* only
# when it names the suites (they are not in its defaults)
ALL_SUITES12 = [SUITES12[c].name for c in DEFAULT_SUITES12 if SUITES12[c].available]


def server12(certs_dir: Path, kt: str = "rsa", **options) -> ServerConfig:
    options.setdefault("versions", ["1.2"])
    options.setdefault("cipher_suites", ALL_SUITES12)
    return ServerConfig.from_files(str(certs_dir / f"{kt}-chain.pem"), str(certs_dir / f"{kt}.key"),
                                   **options)


def check_tlslab_client(result, suite: str | None, marker: bytes | re.Pattern, version: str = "TLS 1.2",
                        peer_output: str = "", resumed: bool = False) -> None:
    detail = f"{result.describe()}\ndata={result.data[:400]!r}\n--- peer ---\n{peer_output[-3000:]}"
    assert result.complete is not None, f"handshake did not complete: {detail}"
    assert result.conn.error is None, detail
    if not resumed:  # an abbreviated handshake carries no certificate to verify
        assert result.verified, f"no 'certificate verified' in the client trace: {detail}"
    assert result.complete.resumed is resumed, detail
    n = result.conn.negotiated
    assert n["version"] == version, detail
    if suite is not None:
        assert n["cipher_suite"] == suite, detail
    if isinstance(marker, re.Pattern):
        assert marker.search(result.data), detail
    else:
        assert marker in result.data, detail


def check_served(server: TlslabServer, suite: str | None, peer_output: str,
                 version: str = "TLS 1.2", index: int = 0) -> None:
    detail = f"--- peer ---\n{peer_output[-3000:]}\n--- tlslab server ---\n" + \
             "\n".join(s.describe() for s in server.served)
    assert len(server.served) > index, f"the peer never connected: {detail}"
    served = server.served[index]
    assert served.exception is None, detail
    assert served.complete is not None, detail
    n = served.conn.negotiated
    assert n["version"] == version, detail
    if suite is not None:
        assert n["cipher_suite"] == suite, detail
    assert served.request.startswith(b"GET /"), detail
    assert "tlslab says hello" in peer_output, detail


# --------------------------------------------------------------------------- peer processes

class PeerProcess:
    """A peer server process: output to a log file, whole process group killed at the end."""

    def __init__(self, args: list, log_path: Path, env: dict | None = None) -> None:
        self.args = [str(a) for a in args]
        self.log_path = log_path
        log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        self.port: int = 0

    def output(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def wait_listening(self, timeout: float = 15.0) -> int:
        """For our own peers: wait for the "listening PORT" line they print."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"^listening (\d+)$", self.output(), re.M)
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"peer did not start listening: {' '.join(self.args)}\n{self.output()[-2000:]}",
                    pytrace=False)

    def wait_exit(self, timeout: float = 15.0) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        _kill_group(self.proc, grace=2.0)


@pytest.fixture
def peers(tmp_path):
    """Factory for peer server processes; every one is killed at teardown.

    ``peers(args)`` starts a program that prints "listening PORT";
    ``peers.on_port(lambda port: args)`` picks a free port, starts the program with it and
    waits until the port accepts (retrying if the port was taken meanwhile).
    """
    started: list[PeerProcess] = []

    def start(args, env=None) -> PeerProcess:
        p = PeerProcess(args, tmp_path / f"peer-{len(started)}.log", env)
        started.append(p)
        p.wait_listening()
        return p

    def on_port(make_args, env=None, startup: float = 15.0, host: str = "127.0.0.1") -> PeerProcess:
        last = ""
        for attempt in range(3):
            port = free_port(host)
            p = PeerProcess(make_args(port), tmp_path / f"peer-{len(started)}.log", env)
            started.append(p)
            try:
                wait_for_port(port, host, startup, p.proc)
                p.port = port
                return p
            except RuntimeError as exc:
                p.stop()
                last = f"{exc}\n{' '.join(p.args)}\n{p.output()[-2000:]}"
                if "in use" not in p.output().lower():
                    break
        pytest.fail(f"peer server did not start: {last}", pytrace=False)

    start.on_port = on_port
    start.output = lambda: "\n".join(p.output() for p in started)
    yield start
    for p in started:
        p.stop()


def interact(args: list, send: bytes, until: str, timeout: float = 15.0,
             env: dict | None = None) -> tuple[int | None, str]:
    """Run a client that reads stdin (gnutls-cli, tstclnt): write ``send``, keep stdin open
    until ``until`` shows in its output (or it exits, or ``timeout``), then end it."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([str(a) for a in args], stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.stdin.write(send)
            proc.stdin.flush()
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            log.seek(0)
            seen = log.read().decode("utf-8", "replace")
            if until in seen or proc.poll() is not None:
                break
            time.sleep(0.02)
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            rc = proc.wait(timeout=0.5 if until in seen else 2)
        except subprocess.TimeoutExpired:
            rc = None
        _kill_group(proc, grace=1.0)
        log.seek(0)
        return rc, log.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------- build cache

def _cache_dir(kind: str, *inputs: bytes) -> Path:
    digest = hashlib.sha256(b"\0".join(inputs)).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / "tlslab-interop-peers" / f"{kind}-{digest}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tool_version(cmd: list[str]) -> bytes:
    rc, out, err = run_bounded(cmd, timeout=30, fail_on_timeout=False)
    return (out + err).encode()


@pytest.fixture(scope="session")
def go_peer() -> Path:
    go = require_tool("go")
    src = PEERS_SRC / "go_peer.go"
    out = _cache_dir("go", src.read_bytes(), _tool_version([go, "version"]))
    binary = out / "go_peer"
    if not binary.is_file():
        env = dict(os.environ, GOCACHE=str(out / "gocache"), GOPATH=str(out / "gopath"),
                   GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0", GOTOOLCHAIN="local")
        rc, _, err = run_bounded([go, "build", "-o", binary.with_suffix(".tmp"), src], env=env,
                                 timeout=240, fail_on_timeout=False)
        if rc != 0:
            pytest.skip(f"cannot build tests/peers/go_peer.go with {go}: {err.strip()[-800:]}")
        binary.with_suffix(".tmp").rename(binary)
    return binary


# The JDK's default jdk.tls.disabledAlgorithms (java.security) less "TLS_RSA_*": recent
# JDK updates disable static-RSA key exchange; the matrix still wants to test it with JSSE.
JAVA_SECURITY = ("jdk.tls.disabledAlgorithms=SSLv3, TLSv1, TLSv1.1, DTLSv1.0, RC4, DES, "
                 "MD5withRSA, DH keySize < 1024, EC keySize < 224, 3DES_EDE_CBC, anon, NULL, ECDH\n")


@pytest.fixture(scope="session")
def java_peer() -> tuple[list[str], Path]:
    java, javac = require_tool("java"), require_tool("javac")
    src = PEERS_SRC / "JavaPeer.java"
    out = _cache_dir("java", src.read_bytes(), _tool_version([javac, "-version"]))
    if not (out / "JavaPeer.class").is_file():
        rc, _, err = run_bounded([javac, "-d", out, src], timeout=120, fail_on_timeout=False)
        if rc != 0:
            pytest.skip(f"cannot compile tests/peers/JavaPeer.java with {javac}: {err.strip()[-800:]}")
    props = out / "tlslab-java.security"
    props.write_text(JAVA_SECURITY)
    # -Xshare:auto and a small heap keep the JVM start quick; the security file is appended
    # to the JDK's own (one "=" sign), so only the property above changes
    return [java, "-Xss1m", "-XX:TieredStopAtLevel=1", f"-Djava.security.properties={props}",
            "-cp", str(out), "JavaPeer"], out


@pytest.fixture(scope="session")
def loopback_shim() -> Path:
    """tests/peers/loopback_bind.c built as a preload library (see its header)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) to build tests/peers/loopback_bind.c, which keeps "
                    "gnutls-serv/selfserv on loopback (they have no listen-address option)")
    src = PEERS_SRC / "loopback_bind.c"
    out = _cache_dir("shim", src.read_bytes())
    lib = out / "loopback_bind.so"
    if not lib.is_file():
        rc, _, err = run_bounded([cc, "-shared", "-fPIC", "-O2", "-o", lib.with_suffix(".tmp"), src,
                                  "-ldl"], timeout=60, fail_on_timeout=False)
        if rc != 0:
            pytest.skip(f"cannot build tests/peers/loopback_bind.c: {err.strip()[-800:]}")
        lib.with_suffix(".tmp").rename(lib)
    return lib


def shim_env(lib: Path) -> dict:
    return dict(os.environ, LD_PRELOAD=str(lib))


@pytest.fixture(scope="session")
def pkcs12(certs_dir, tmp_path_factory) -> dict[str, Path]:
    """{rsa,ecdsa,client}.p12 (leaf, key and intermediate; password "tlslab") for Java / NSS."""
    openssl = require_tool("openssl")
    out = tmp_path_factory.mktemp("p12")
    files = {}
    for name in ("rsa", "ecdsa", "client"):
        path = out / f"{name}.p12"
        rc, _, err = run_bounded([openssl, "pkcs12", "-export", "-in", certs_dir / f"{name}.pem",
                                  "-inkey", certs_dir / f"{name}.key",
                                  "-certfile", certs_dir / "intermediate.pem", "-name", name,
                                  "-passout", "pass:tlslab", "-out", path], timeout=30)
        if rc != 0:
            pytest.skip(f"openssl pkcs12 -export failed: {err.strip()}")
        files[name] = path
    return files


@pytest.fixture(scope="session")
def nss_db(certs_dir, pkcs12, tmp_path_factory) -> dict[str, Path]:
    """NSS databases (sql:) trusting ca.pem: ``{"rsa": db, "ecdsa": db}``, each holding that
    identity.  One database per key: both leaves have the same subject, and NSS gives
    certificates with the same subject the same nickname."""
    certutil, pk12util = require_tool("certutil"), require_tool("pk12util")
    dbs = {}
    for kt in ("rsa", "ecdsa"):
        db = tmp_path_factory.mktemp(f"nssdb-{kt}")
        steps = [
            [certutil, "-N", "-d", f"sql:{db}", "--empty-password"],
            [certutil, "-A", "-d", f"sql:{db}", "-n", "tlslab-ca", "-t", "CT,C,C",
             "-i", certs_dir / "ca.pem"],
            [pk12util, "-i", pkcs12[kt], "-d", f"sql:{db}", "-W", "tlslab", "-K", ""],
        ]
        for cmd in steps:
            rc, out, err = run_bounded(cmd, timeout=30)
            if rc != 0:
                pytest.skip(f"could not build the NSS database ({' '.join(map(str, cmd[:2]))}): "
                            f"{(out + err).strip()[-500:]}")
        dbs[kt] = db
    return dbs


# =========================================================================== OpenSSL

def s_server12(openssl_server, suite: str, *extra: str) -> int:
    return openssl_server("-tls1_2", "-cipher", f"{openssl_name(suite)}:@SECLEVEL=0", *extra,
                          key_type=key_type(suite))


def s_server_page(protocol: str, suite: str) -> re.Pattern:
    """What ``s_server -www`` prints about the session.  (Its "New, TLSv1.0, Cipher is ..."
    line names the version that introduced the suite, not the protocol in use.)"""
    return re.compile(rf"Protocol\s*: {re.escape(protocol)}\n\s*Cipher\s*: "
                      rf"{re.escape(openssl_name(suite))}\n".encode())


def s_client12(certs_dir: Path, port: int, *extra: str, timeout: float = 20) -> tuple[int, str, str]:
    openssl = require_tool("openssl")
    cmd = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", certs_dir / "ca.pem",
           "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error",
           "-ign_eof", *extra]
    return run_bounded(cmd, input=HTTP_GET.decode(), timeout=timeout)


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_openssl_server(openssl_server, certs_dir, suite):
    """tlslab client → ``openssl s_server -tls1_2 -cipher X``."""
    port = s_server12(openssl_server, suite)
    result = run_client(client12(certs_dir, suite), port)
    check_tlslab_client(result, suite, s_server_page("TLSv1.2", suite),
                        peer_output=openssl_server.output(port))
    n = result.conn.negotiated
    assert n["extended_master_secret"] is True
    # RFC 7366: OpenSSL agrees to encrypt-then-MAC for CBC suites (and only for them)
    assert n["encrypt_then_mac"] is ("_CBC_" in suite), n


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_openssl_client(certs_dir, suite):
    """``openssl s_client -tls1_2 -cipher X`` → tlslab server (all TLS 1.2 suites enabled)."""
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out, err = s_client12(certs_dir, server.port, "-tls1_2", "-cipher",
                                  f"{openssl_name(suite)}:@SECLEVEL=0")
    check_served(server, suite, out + err)
    assert re.search(r"Protocol\s*: TLSv1\.2", out), out
    assert f"Cipher is {openssl_name(suite)}" in out, out
    assert "Verify return code: 0 (ok)" in out, out
    assert "Extended master secret: yes" in out, out
    n = server.served[0].conn.negotiated
    assert n["extended_master_secret"] is True
    assert n["encrypt_then_mac"] is ("_CBC_" in suite), n
    assert rc == 0, err


# --------------------------------------------------------------------------- resumption

@pytest.mark.parametrize("how", ["ticket", "session_id"])
def test_openssl_server_resumption(openssl_server, certs_dir, how):
    """tlslab client resumes with s_server: a RFC 5077 ticket, or (``-no_ticket``) the
    RFC 5246 §7.3 session ID."""
    suite = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    port = s_server12(openssl_server, suite, *(["-no_ticket"] if how == "session_id" else []))
    config = client12(certs_dir, suite)
    first = run_client(config, port)
    check_tlslab_client(first, suite, b"New, TLSv1.2", peer_output=openssl_server.output(port))
    assert first.conn.negotiated["extended_master_secret"] is True
    second = run_client(config, port)
    check_tlslab_client(second, suite, b"Reused, TLSv1.2", peer_output=openssl_server.output(port),
                        resumed=True)
    received = [e.name for e in second.conn.trace.entries
                if e.kind == "message" and e.direction == "received"]
    # abbreviated handshake (RFC 5246 §7.3): no certificate, no key exchange
    assert not [m for m in received if m.startswith(("Certificate", "ServerKeyExchange"))], received
    first_received = [e.name for e in first.conn.trace.entries
                      if e.kind == "message" and e.direction == "received"]
    assert any(m.startswith("NewSessionTicket") for m in first_received) is (how == "ticket"), \
        first_received


@pytest.mark.parametrize("how", ["ticket", "session_id"])
def test_openssl_client_resumption(certs_dir, tmp_path, how):
    """``s_client -sess_out`` then ``-sess_in`` (``-no_ticket`` for a session-ID resumption)."""
    suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    sess = tmp_path / "session.pem"
    extra = ["-tls1_2", "-cipher", openssl_name(suite)] + (["-no_ticket"] if how == "session_id" else [])
    with TlslabServer(server12(certs_dir, "ecdsa"), connections=2) as server:
        rc1, out1, err1 = s_client12(certs_dir, server.port, *extra, "-sess_out", sess)
        rc2, out2, err2 = s_client12(certs_dir, server.port, *extra, "-sess_in", sess)
    check_served(server, suite, out1 + err1, index=0)
    check_served(server, suite, out2 + err2, index=1)
    assert "New, TLSv1.2" in out1, out1
    assert "Reused, TLSv1.2" in out2, out2
    assert server.served[0].conn.negotiated["resumed"] is False
    assert server.served[1].conn.negotiated["resumed"] is True, server.served[1].describe()
    names = [e.name for e in server.served[1].conn.trace.entries if e.kind == "info"]
    assert ("session ticket accepted" if how == "ticket" else "session ID resumed") in names, names
    assert rc1 == 0 and rc2 == 0, (err1, err2)


# --------------------------------------------------------------------------- version negotiation

def test_openssl_server_12_only_default_client(openssl_server, certs_dir):
    """A 1.2+1.3 tlslab client against a 1.2-only server settles on TLS 1.2 (and finds no
    RFC 8446 §4.1.3 downgrade sentinel, since the server cannot do 1.3)."""
    port = openssl_server("-tls1_2", key_type="rsa")
    result = run_client(ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem")), port)
    check_tlslab_client(result, None, b"New, TLSv1.2", peer_output=openssl_server.output(port))
    assert result.conn.negotiated["cipher_suite"].startswith("TLS_ECDHE_RSA_WITH_")
    assert result.conn.negotiated["extended_master_secret"] is True


def test_openssl_client_12_only_default_server(certs_dir):
    """``s_client -tls1_2`` against the default (1.2+1.3) tlslab server gets TLS 1.2."""
    config = ServerConfig.from_files(str(certs_dir / "ecdsa-chain.pem"), str(certs_dir / "ecdsa.key"))
    with TlslabServer(config) as server:
        rc, out, err = s_client12(certs_dir, server.port, "-tls1_2")
    check_served(server, None, out + err)
    assert re.search(r"Protocol\s*: TLSv1\.2", out), out
    assert rc == 0, err


def test_openssl_fallback_scsv_rejected(certs_dir):
    """RFC 7507 §3: TLS_FALLBACK_SCSV at 1.2 to a server that does 1.3 → inappropriate_fallback."""
    config = ServerConfig.from_files(str(certs_dir / "ecdsa-chain.pem"), str(certs_dir / "ecdsa.key"))
    with TlslabServer(config) as server:
        rc, out, err = s_client12(certs_dir, server.port, "-tls1_2", "-fallback_scsv")
    served = server.served[0]
    detail = f"rc={rc}\n{out[-2000:]}\n{err[-2000:]}\n{served.describe()}"
    assert rc != 0, detail
    assert served.complete is None, detail
    assert "inappropriate fallback" in (out + err).lower(), detail
    assert type(served.conn.error).__name__ == "InappropriateFallback", detail
    sent = [e.name for e in served.conn.trace.entries if e.kind == "alert" and e.direction == "sent"]
    assert any("inappropriate_fallback" in a for a in sent), sent


def test_openssl_fallback_scsv_accepted_by_12_only_server(certs_dir):
    """The same SCSV to a server whose best version is 1.2 is no fallback: it must succeed."""
    with TlslabServer(server12(certs_dir, "ecdsa")) as server:
        rc, out, err = s_client12(certs_dir, server.port, "-tls1_2", "-fallback_scsv")
    check_served(server, None, out + err)
    assert rc == 0, err


@pytest.mark.parametrize("version,flag", [("1.0", "-tls1"), ("1.1", "-tls1_1")])
@pytest.mark.parametrize("suite", ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"])
def test_openssl_server_legacy_versions(openssl_server, certs_dir, version, flag, suite):
    """The probing client at TLS 1.0 / 1.1 (CBC, implicit vs explicit IV) against s_server;
    OpenSSL 3 needs SECLEVEL=0 to speak them at all."""
    port = openssl_server(flag, "-cipher", "ALL:@SECLEVEL=0", key_type="rsa")
    result = run_client(client12(certs_dir, suite, versions=[version]), port)
    label = {"1.0": "TLSv1", "1.1": "TLSv1.1"}[version]
    check_tlslab_client(result, suite, s_server_page(label, suite),
                        version=f"TLS {version}", peer_output=openssl_server.output(port))


# --------------------------------------------------------------------------- client certificates

def test_openssl_server_client_certificate(openssl_server, certs_dir):
    """tlslab client presents client.pem to ``s_server -Verify 1`` (RFC 5246 §7.4.8)."""
    port = openssl_server("-tls1_2", "-Verify", "1", "-CAfile", certs_dir / "ca.pem",
                          "-verify_return_error", key_type="rsa")
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    config = client12(certs_dir, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", certificate_chain=chain,
                      private_key=key)
    result = run_client(config, port)
    check_tlslab_client(result, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", b"New, TLSv1.2",
                        peer_output=openssl_server.output(port))
    assert "tlslab test client" in result.conn.negotiated["client_certificate"]
    assert "tlslab test client" in result.data.decode("latin-1") or \
        "tlslab test client" in openssl_server.output(port)


def test_openssl_client_certificate(certs_dir):
    """``s_client -cert client.pem`` → tlslab server with require_client_cert."""
    config = server12(certs_dir, "rsa", client_ca_file=str(certs_dir / "ca.pem"),
                      require_client_cert=True)
    with TlslabServer(config) as server:
        rc, out, err = s_client12(certs_dir, server.port, "-tls1_2",
                                  "-cert", certs_dir / "client.pem", "-key", certs_dir / "client.key",
                                  "-cert_chain", certs_dir / "intermediate.pem")
    check_served(server, None, out + err)
    n = server.served[0].conn.negotiated
    assert n.get("client_signature_scheme"), n
    assert rc == 0, err


def test_openssl_client_certificate_missing(certs_dir):
    """No client certificate while one is required: the server aborts (RFC 5246 §7.4.6:
    a fatal handshake_failure alert is allowed), s_client fails."""
    config = server12(certs_dir, "rsa", client_ca_file=str(certs_dir / "ca.pem"),
                      require_client_cert=True)
    with TlslabServer(config) as server:
        rc, out, err = s_client12(certs_dir, server.port, "-tls1_2")
    served = server.served[0]
    assert rc != 0, out
    assert served.complete is None and served.conn.error is not None, served.describe()


# =========================================================================== GnuTLS

GNUTLS_CIPHER = {"AES_128_GCM": "AES-128-GCM", "AES_256_GCM": "AES-256-GCM",
                 "CHACHA20_POLY1305": "CHACHA20-POLY1305", "AES_128_CBC": "AES-128-CBC",
                 "AES_256_CBC": "AES-256-CBC"}
GNUTLS_KX = {"ECDHE_ECDSA": "ECDHE-ECDSA", "ECDHE_RSA": "ECDHE-RSA", "DHE_RSA": "DHE-RSA",
             "RSA": "RSA"}


def gnutls_priority(suite: str) -> str:
    kx, cipher, mac = parts(suite)
    return (f"NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+{GNUTLS_CIPHER[cipher]}"
            f":-MAC-ALL:+{mac}:-KX-ALL:+{GNUTLS_KX[kx]}")


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_gnutls_server(peers, certs_dir, loopback_shim, suite):
    """tlslab client → ``gnutls-serv --http --priority ...``."""
    serv = require_tool("gnutls-serv")
    kt = key_type(suite)
    p = peers.on_port(lambda port: [serv, "--http", "--port", port, "--priority", gnutls_priority(suite),
                                    "--x509certfile", certs_dir / f"{kt}-chain.pem",
                                    "--x509keyfile", certs_dir / f"{kt}.key"],
                      env=shim_env(loopback_shim))
    result = run_client(client12(certs_dir, suite), p.port, timeout=IO_TIMEOUT)
    check_tlslab_client(result, suite, b"GnuTLS", peer_output=p.output())
    page = result.data.decode("latin-1")
    assert "TLS1.2" in page, page[:2000]


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_gnutls_client(certs_dir, suite):
    """``gnutls-cli --priority ...`` → tlslab server."""
    cli = require_tool("gnutls-cli")
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out = interact([cli, "--x509cafile", certs_dir / "ca.pem", "--port", server.port,
                            "--priority", gnutls_priority(suite), "--sni-hostname", "localhost",
                            "--verify-hostname", "localhost", "127.0.0.1"],
                           HTTP_GET, until="tlslab says hello")
    check_served(server, suite, out)
    kx, cipher, mac = parts(suite)
    assert "- Description: (TLS1.2-" in out, out
    assert f"-({GNUTLS_CIPHER[cipher]})" in out, out
    assert "extended master secret" in out, out


def gnutls_serv(peers, certs_dir, shim, priority: str, kt: str, *extra: str) -> PeerProcess:
    serv = require_tool("gnutls-serv")
    return peers.on_port(lambda port: [serv, "--http", "--port", port, "--priority", priority,
                                       "--x509certfile", certs_dir / f"{kt}-chain.pem",
                                       "--x509keyfile", certs_dir / f"{kt}.key", *extra],
                         env=shim_env(shim))


@pytest.mark.parametrize("suite", ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_GCM_SHA256"])
def test_gnutls_server_without_ems(peers, certs_dir, loopback_shim, suite):
    """GnuTLS with ``%NO_SESSION_HASH`` does not answer extended_master_secret: the tlslab
    client falls back to the RFC 5246 §8.1 master secret."""
    p = gnutls_serv(peers, certs_dir, loopback_shim, gnutls_priority(suite) + ":%NO_SESSION_HASH", "rsa")
    result = run_client(client12(certs_dir, suite), p.port)
    check_tlslab_client(result, suite, b"GnuTLS", peer_output=p.output())
    assert result.conn.negotiated["extended_master_secret"] is False


@pytest.mark.parametrize("suite", ["TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"])
def test_gnutls_client_without_ems(certs_dir, suite):
    cli = require_tool("gnutls-cli")
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out = interact([cli, "--x509cafile", certs_dir / "ca.pem", "--port", server.port,
                            "--priority", gnutls_priority(suite) + ":%NO_SESSION_HASH",
                            "--verify-hostname", "localhost", "127.0.0.1"],
                           HTTP_GET, until="tlslab says hello")
    check_served(server, suite, out)
    assert server.served[0].conn.negotiated["extended_master_secret"] is False
    assert "extended master secret" not in out, out


@pytest.mark.parametrize("how", ["ticket", "session_id"])
def test_gnutls_server_resumption(peers, certs_dir, loopback_shim, how):
    suite = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    p = gnutls_serv(peers, certs_dir, loopback_shim, gnutls_priority(suite), "ecdsa",
                    *(["--noticket"] if how == "session_id" else []))
    config = client12(certs_dir, suite)
    first = run_client(config, p.port)
    check_tlslab_client(first, suite, b"GnuTLS", peer_output=p.output())
    tickets = [e.name for e in first.conn.trace.entries
               if e.kind == "message" and e.name.startswith("NewSessionTicket")]
    assert bool(tickets) is (how == "ticket"), tickets
    second = run_client(config, p.port)
    check_tlslab_client(second, suite, b"GnuTLS", peer_output=p.output(), resumed=True)


@pytest.mark.parametrize("how", ["ticket", "session_id"])
def test_gnutls_client_resumption(certs_dir, how):
    """``gnutls-cli --resume`` → tlslab server; by session ID with ``%NO_TICKETS`` in the
    priority string (``--noticket`` alone still sends a TLS 1.2 ticket in GnuTLS 3.7)."""
    cli = require_tool("gnutls-cli")
    suite = "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"
    with TlslabServer(server12(certs_dir, "rsa"), connections=2) as server:
        rc, out = interact([cli, "--x509cafile", certs_dir / "ca.pem", "--port", server.port,
                            "--priority", gnutls_priority(suite) + (":%NO_TICKETS" if how == "session_id" else ""),
                            "--verify-hostname", "localhost", "--resume", "127.0.0.1"],
                           HTTP_GET, until="tlslab says hello")
    check_served(server, suite, out, index=1)
    assert "This is a resumed session" in out, out
    assert server.served[1].conn.negotiated["resumed"] is True, server.served[1].describe()
    names = [e.name for e in server.served[1].conn.trace.entries if e.kind == "info"]
    assert ("session ticket accepted" if how == "ticket" else "session ID resumed") in names, names


# =========================================================================== NSS

def nss_hex(suite: str) -> str:
    from tlslab.proto.tls12.suites import SUITES12_BY_NAME
    return f":{SUITES12_BY_NAME[suite].code:04X}"


@pytest.fixture(scope="session")
def ipv6_loopback() -> str:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"::1 is not available here ({exc}); selfserv listens on IPv6 only "
                    "once confined to loopback")
    return "::1"


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_nss_server(peers, certs_dir, nss_db, loopback_shim, ipv6_loopback, suite):
    """tlslab client → ``selfserv -V tls1.2:tls1.2 -c :XXXX`` (EMS and DHE switched on).

    selfserv opens one dual-stack socket on ``::``; the shim turns that into ``::1``."""
    selfserv = require_tool("selfserv")
    kt = key_type(suite)
    nick = ["-e", "ecdsa"] if kt == "ecdsa" else ["-n", "rsa"]
    p = peers.on_port(lambda port: [selfserv, "-p", port, "-d", f"sql:{nss_db[kt]}", *nick,
                                    "-V", "tls1.2:tls1.2", "-c", nss_hex(suite), "-G", "-H", "1",
                                    "-u"],
                      env=shim_env(loopback_shim), host=ipv6_loopback)
    result = run_client(client12(certs_dir, suite), p.port, host=ipv6_loopback)
    check_tlslab_client(result, suite, b"HTTP/1.0 200", peer_output=p.output())
    assert result.conn.negotiated["extended_master_secret"] is True


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_nss_client(certs_dir, nss_db, suite):
    """``tstclnt -V tls1.2:tls1.2 -c :XXXX`` (NSS db trusting ca.pem) → tlslab server."""
    tstclnt = require_tool("tstclnt")
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out = interact([tstclnt, "-h", "127.0.0.1", "-a", "localhost", "-p", server.port,
                            "-d", f"sql:{nss_db['rsa']}", "-V", "tls1.2:tls1.2", "-c", nss_hex(suite),
                            "-G", "-4"],
                           HTTP_GET, until="tlslab says hello")
    check_served(server, suite, out)
    assert server.served[0].conn.negotiated["extended_master_secret"] is True


# =========================================================================== Java

@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_java_server(peers, certs_dir, java_peer, pkcs12, suite):
    """tlslab client → JSSE ``SSLServerSocket`` (tests/peers/JavaPeer.java)."""
    java, _ = java_peer
    p = peers([*java, "server", pkcs12[key_type(suite)], "tlslab", suite, "1"])
    result = run_client(client12(certs_dir, suite), p.port)
    p.wait_exit(10)
    check_tlslab_client(result, suite, b"java says hello", peer_output=p.output())
    assert f"version=TLSv1.2 suite={suite}" in p.output()


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_java_client(certs_dir, java_peer, suite):
    """JSSE ``SSLSocket`` client → tlslab server."""
    java, _ = java_peer
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out, err = run_bounded([*java, "client", server.port,
                                    certs_dir / "ca.pem", suite], timeout=30)
    check_served(server, suite, out + err)
    assert f"version=TLSv1.2 suite={suite}" in out, out + err
    assert rc == 0, out + err


# =========================================================================== Node

@pytest.fixture(scope="session")
def node() -> str:
    return require_tool("node")


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_node_server(peers, certs_dir, node, suite):
    """tlslab client → ``tls.createServer`` (tests/peers/node_peer.js)."""
    kt = key_type(suite)
    p = peers([node, PEERS_SRC / "node_peer.js", "server", certs_dir / f"{kt}-chain.pem",
               certs_dir / f"{kt}.key", openssl_name(suite), "1"])
    result = run_client(client12(certs_dir, suite), p.port)
    p.wait_exit(10)
    check_tlslab_client(result, suite, b"node says hello", peer_output=p.output())
    assert f"version=TLSv1.2 suite={suite}" in p.output()


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_node_client(certs_dir, node, suite):
    """``tls.connect`` → tlslab server."""
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out, err = run_bounded([node, PEERS_SRC / "node_peer.js", "client", server.port,
                                    certs_dir / "ca.pem", openssl_name(suite)], timeout=30)
    check_served(server, suite, out + err)
    assert f"version=TLSv1.2 suite={suite}" in out, out + err
    assert rc == 0, out + err


# =========================================================================== Go

@pytest.mark.parametrize("suite", GO_SUITES)
def test_go_server(peers, certs_dir, go_peer, suite):
    """tlslab client → Go ``tls.Listen`` (tests/peers/go_peer.go)."""
    kt = key_type(suite)
    p = peers([go_peer, "-mode", "server", "-cert", certs_dir / f"{kt}-chain.pem",
               "-key", certs_dir / f"{kt}.key", "-suite", suite, "-conns", "1"])
    result = run_client(client12(certs_dir, suite), p.port)
    p.wait_exit(10)
    check_tlslab_client(result, suite, b"go says hello", peer_output=p.output())
    assert f"served version=TLSv1.2 suite={suite}" in p.output()


@pytest.mark.parametrize("suite", GO_SUITES)
def test_go_client(certs_dir, go_peer, suite):
    """Go ``tls.Dial`` → tlslab server."""
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        rc, out, err = run_bounded([go_peer, "-mode", "client", "-addr", f"127.0.0.1:{server.port}",
                                    "-ca", certs_dir / "ca.pem", "-suite", suite], timeout=30)
    check_served(server, suite, out + err)
    assert f"version=TLSv1.2 suite={suite}" in out, out + err
    assert rc == 0, out + err


# =========================================================================== curl

@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_curl_client(certs_dir, suite):
    """``curl --tlsv1.2 --tls-max 1.2 --ciphers X`` → tlslab server."""
    curl = require_tool("curl")
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        port = server.port
        rc, out, err = run_bounded(
            [curl, "-sS", "-v", "--max-time", "10", "--tlsv1.2", "--tls-max", "1.2",
             "--ciphers", openssl_name(suite), "--cacert", certs_dir / "ca.pem",
             "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"], timeout=20)
    check_served(server, suite, out + err)
    assert f"TLSv1.2 / {openssl_name(suite)}" in err, err
    assert rc == 0, err


# =========================================================================== Python ssl

@pytest.fixture(scope="session")
def dh_params(tmp_path_factory) -> Path:
    """RFC 7919 ffdhe2048 as PEM DH parameters, made by openssl.  Python's ``ssl`` server has
    no automatic DH parameters: without these its DHE suites are silently unavailable."""
    openssl = require_tool("openssl")
    path = tmp_path_factory.mktemp("dh") / "ffdhe2048.pem"
    rc, _, err = run_bounded([openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                              "group:ffdhe2048", "-out", path], timeout=30)
    if rc != 0:
        pytest.skip(f"openssl could not write ffdhe2048 parameters: {err.strip()}")
    return path


def py_context(server_side: bool, suite: str, certs_dir: Path,
               dh_params: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(f"{openssl_name(suite)}:@SECLEVEL=0")
    if server_side:
        kt = key_type(suite)
        ctx.load_cert_chain(certs_dir / f"{kt}-chain.pem", certs_dir / f"{kt}.key")
        ctx.load_dh_params(str(dh_params))
    else:
        ctx.load_verify_locations(certs_dir / "ca.pem")
    return ctx


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_python_ssl_server(certs_dir, dh_params, suite):
    """tlslab client → Python ``ssl`` server (in a thread)."""
    ctx = py_context(True, suite, certs_dir, dh_params)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(IO_TIMEOUT)
    port = listener.getsockname()[1]
    seen: dict = {}

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            raw.settimeout(IO_TIMEOUT)
            with ctx.wrap_socket(raw, server_side=True) as tls:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                seen.update(version=tls.version(), cipher=tls.cipher()[0])
                body = f"python says hello {tls.version()} {tls.cipher()[0]}\n".encode()
                tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                try:
                    tls.unwrap()
                except (ssl.SSLError, OSError):
                    pass
        except Exception as exc:  # reported below
            seen["error"] = repr(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = run_client(client12(certs_dir, suite), port)
    finally:
        thread.join(IO_TIMEOUT + 2)
        listener.close()
    check_tlslab_client(result, suite, b"python says hello", peer_output=repr(seen))
    assert seen.get("version") == "TLSv1.2" and seen.get("cipher") == openssl_name(suite), seen


@pytest.mark.parametrize("suite", REPRESENTATIVE)
def test_python_ssl_client(certs_dir, suite):
    """Python ``ssl`` client (TLSv1_2 max, set_ciphers) → tlslab server."""
    ctx = py_context(False, suite, certs_dir)
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                version, cipher = tls.version(), tls.cipher()[0]
                tls.sendall(HTTP_GET)
                data = b""
                while True:
                    try:
                        chunk = tls.recv(65536)
                    except ssl.SSLZeroReturnError:
                        break
                    if not chunk:
                        break
                    data += chunk
    check_served(server, suite, data.decode("latin-1"))
    assert version == "TLSv1.2" and cipher == openssl_name(suite)


# --------------------------------------------------------------------------- bulk data

BULK = 100_003  # several full 2^14-byte records plus a ragged end (CBC padding, AEAD nonces)


@pytest.mark.parametrize("suite", ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "TLS_RSA_WITH_AES_128_CBC_SHA",
                                   "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                   "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"])
def test_python_ssl_bulk_both_ways(certs_dir, dh_params, suite):
    """100 kB each way between the tlslab client and a Python ``ssl`` server, then 100 kB
    from a Python ``ssl`` client to the tlslab server: many full records in a row."""
    ctx = py_context(True, suite, certs_dir, dh_params)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(IO_TIMEOUT)
    port = listener.getsockname()[1]
    seen: dict = {}

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            raw.settimeout(IO_TIMEOUT)
            with ctx.wrap_socket(raw, server_side=True) as tls:
                got = b""
                while not got.endswith(b"\r\n\r\n"):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                seen["request"] = len(got)
                body = bytes(i % 251 for i in range(BULK))
                tls.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)
                try:
                    tls.unwrap()
                except (ssl.SSLError, OSError):
                    pass
        except Exception as exc:  # reported below
            seen["error"] = repr(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    request = b"GET / HTTP/1.0\r\nX-Fill: " + b"a" * BULK + b"\r\n\r\n"
    try:
        result = run_client(client12(certs_dir, suite), port, request=request)
    finally:
        thread.join(IO_TIMEOUT + 2)
        listener.close()
    check_tlslab_client(result, suite, b"HTTP/1.0 200 OK", peer_output=repr(seen))
    assert seen.get("request") == len(request), seen
    assert result.data == b"HTTP/1.0 200 OK\r\n\r\n" + bytes(i % 251 for i in range(BULK))

    client_ctx = py_context(False, suite, certs_dir)
    with TlslabServer(server12(certs_dir, key_type(suite))) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(request)
                data = b""
                while True:
                    try:
                        chunk = tls.recv(65536)
                    except ssl.SSLZeroReturnError:
                        break
                    if not chunk:
                        break
                    data += chunk
    check_served(server, suite, data.decode("latin-1"))
    assert server.served[0].request == request
