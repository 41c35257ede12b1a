"""Real TLS servers, and listeners that are not TLS, on 127.0.0.1 for the diagnosis tests.

Pytest-independent (tests do ``from realservers import ...``).  Every server is a context
manager yielding a :class:`Server`: ``.host`` (always "127.0.0.1"), ``.port``, ``.log()``
(what it printed so far, for failure messages) and ``.listening()`` (its listening sockets,
read from /proc).  Ports come from binding port 0; every wait is bounded (20 s to start
listening); on exit the whole process group gets SIGTERM, then SIGKILL after 3 s, and the temp
dir is removed (``TLSLAB_KEEP_SERVER_DIRS=1`` keeps it).  A missing binary raises
:class:`PeerMissing` (``.name``); a server that does not come up, :class:`ServerFailed`.

=====================  ====================================================================
``openssl_server``     ``openssl s_server -accept 127.0.0.1:PORT -www`` (``-cert`` reads one
                       certificate, so the chain is split into ``-cert`` + ``-cert_chain``)
``gnutls_server``      ``gnutls-serv --http`` under tests/peers/loopback_bind.c (LD_PRELOAD):
                       it has no listen-address option and binds the wildcard, which the shim
                       turns into 127.0.0.1:PORT *and* [::1]:PORT (its log still says
                       "0.0.0.0" and "::"); by default it *asks* for a client certificate, so
                       ``verify_client=False`` passes ``--disable-client-cert``
``nginx_server``       ``nginx -c TMP/nginx.conf -p TMP``: daemon off, master_process off,
                       ``user root`` when root, logs/pid/temp paths in TMP, error log on stderr
``java_server``        tests/peers/DiagServer.java (JSSE ``SSLServerSocket``; PKCS#12 made by
                       ``openssl pkcs12 -export``), compiled once per machine and javac
                       version under $TMPDIR/tlslab-interop-peers/ like the other Java peers
``plain_http_server``  in Python threads, on 127.0.0.1:0: HTTP 400 to anything; also
                       ``banner_server`` (SMTP-like: a 220 banner first), ``ssh_like_server``,
                       ``garbage_server``, ``silent_server``, ``reset_server`` (RST after
                       the ClientHello); ``closed_port()`` is a port nothing listens on
=====================  ====================================================================

What the servers really do (measured with OpenSSL 3.0.19, GnuTLS 3.7.9, nginx 1.22.1 on
OpenSSL 3.0, OpenJDK 17.0.15; client ``openssl s_client -msg``; each line is pinned by
tests/test_realservers.py).  A *modern client* offers TLS 1.2-1.3, ECDHE with AEAD suites
and the groups X25519, P-256, P-384 (as browsers, Python and Java do).  The *default client*
is a bare OpenSSL 3.0 ``s_client``: it still puts TLS 1.0/1.1, DHE and static-RSA suites and
the P-521, X448 and ffdhe2048-8192 groups in its ClientHello, so it "works" where modern
clients fail.  "After CH" means the server's first and only answer to the ClientHello.

TLS 1.0 only
    * s_server, nginx: fatal ``protocol_version`` after CH to a client that lists 1.2/1.3
      in supported_versions (modern, or TLS 1.3-only).
    * gnutls-serv: never ``protocol_version`` itself.  To the modern client (only AEAD
      suites, none of which exists in TLS 1.0) fatal ``handshake_failure`` after CH; to a
      1.2+1.3 client with TLS 1.0-capable suites a TLS 1.0 ServerHello, and it is the
      *client* that sends ``protocol_version``.
    * all three, default client: ServerHello (TLS 1.0), Certificate, ServerKeyExchange;
      then the client sends ``internal_error`` ("legacy sigalg disallowed or unsupported":
      the TLS 1.0 ServerKeyExchange signature, SHA-1 or MD5+SHA-1, is refused at SECLEVEL
      1 and up), not a version alert.
    * JSSE: not tested, the JDK disables TLS 1.0 (``jdk.tls.disabledAlgorithms``).
DHE suites only (TLS 1.2)
    * modern client: fatal ``handshake_failure`` after CH from s_server, gnutls-serv, nginx
      (with ``ssl_dhparam``) and JSSE ("no cipher suites in common"); the default client
      gets DHE-RSA.
    * nginx *without* ``ssl_dhparam``: ``handshake_failure`` after CH for *every* client,
      log "no shared cipher": nginx sets no DH parameters, so no DHE suite is usable.
Static RSA suites only (TLS 1.2)
    * modern client: fatal ``handshake_failure`` after CH (s_server, gnutls-serv, nginx);
      the default client gets an RSA key-transport suite (AES256-GCM-SHA384; no
      ServerKeyExchange).
Only P-521, or only ffdhe2048/3072
    * modern client: fatal ``handshake_failure`` after CH (s_server, gnutls-serv, nginx:
      log "no suitable key share"); JSSE answers ``unexpected_message`` after CH (log
      "No common named group").  No HelloRetryRequest is tried.
    * default client: HelloRetryRequest to the server's group, then TLS 1.3 works.
Client certificate required, client has none (it answers with an empty Certificate)
    * s_server: TLS 1.3 ``certificate_required``, TLS 1.2 ``handshake_failure``.
    * gnutls-serv: TLS 1.3 ``certificate_required``, TLS 1.2 ``decode_error`` (log "No
      certificate was found").
    * JSSE (needClientAuth): ``bad_certificate`` in both versions (log "Empty client
      certificate chain").
    * all of these come after the *client's* Finished: in TLS 1.3 the client has already
      counted the handshake as complete and only sees the alert on its first read.
    * nginx (``ssl_verify_client on``): no alert at all.  The handshake completes in both
      versions, the request gets ``HTTP/1.1 400 Bad Request`` whose title is "400 No
      required SSL certificate was sent"; then close_notify (log "client sent no required
      SSL certificate").
SNI required
    * nginx (default_server with ``ssl_reject_handshake on``): fatal ``unrecognized_name``
      after CH, both without SNI and with an unknown name (log "handshake rejected").
    * s_server ``-servername N -servername_fatal`` and gnutls-serv ``--sni-hostname N
      --sni-hostname-fatal`` cannot *require* SNI: a ClientHello without it is served
      normally; only a *different* name gets fatal ``unrecognized_name`` after CH.
TLS 1.2-only server (JSSE)
    * a 1.2+1.3 client simply gets TLS 1.2; a TLS 1.3-only client gets fatal
      ``protocol_version`` after CH ("The client supported protocol versions [TLSv1.3] are
      not accepted by server preferences [TLSv1.2]").
Not TLS
    * HTTP (400 reply), SMTP-like banner, SSH banner: OpenSSL clients fail with "wrong
      version number" (Python: ``SSLError WRONG_VERSION_NUMBER``) reading those bytes as a
      record header; banner servers speak first, before any ClientHello.
    * random bytes: "wrong version number", or "packet length too long" when the first byte
      has its high bit set (read as an SSLv2 header).
    * silent: the client's own timeout, nothing received.  reset: ECONNRESET after the
      ClientHello (s_client "errno=104", Python ``ConnectionResetError``).  closed port:
      ECONNREFUSED.
Healthy, worth knowing
    * JSSE ends a TLS 1.3 connection with a *warning* ``user_canceled`` before close_notify
      and sends one NewSessionTicket (the others two): not a failure.

Configuration pitfalls met on the way (handled here, worth a fix text in the diagnosis):
nginx takes ssl_protocols/ciphers from the server owning the listening socket (the
default_server) *before* SNI chooses a name-based server, so they are set at http level
(in a named server they are ignored; nginx 1.22's own default is TLSv1 TLSv1.1 TLSv1.2,
without 1.3); ``s_server -servername`` needs ``-cert2``/``-key2`` and its second context has no chain
option (a matching name would get the leaf alone), so the chain is also given as
``-xcert/-xkey/-xchain``.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

__all__ = [
    "HOST",
    "PeerMissing",
    "ServerFailed",
    "Server",
    "banner_server",
    "closed_port",
    "free_port",
    "garbage_server",
    "gnutls_server",
    "java_server",
    "nginx_server",
    "openssl_server",
    "plain_http_server",
    "reset_server",
    "silent_server",
    "ssh_like_server",
]

#: The only address anything here listens on or connects to.
HOST = "127.0.0.1"
#: Bound on waiting for a server to listen (a JVM start is the slowest, ~1 s).
STARTUP_TIMEOUT = 20.0
#: Bound on stopping a server: SIGTERM, then SIGKILL after this many seconds.
STOP_GRACE = 3.0

PEERS_SRC = Path(__file__).resolve().parent / "peers"

VERSIONS = ("1.0", "1.1", "1.2", "1.3")

# Debian packages, for the PeerMissing message
_PACKAGES = {
    "openssl": "openssl",
    "gnutls-serv": "gnutls-bin",
    "nginx": "nginx-light",
    "java": "default-jdk-headless",
    "javac": "default-jdk-headless",
    "cc": "gcc",
}


class PeerMissing(RuntimeError):
    """A binary a server needs is not installed; ``name`` is the binary.

    Tests turn it into ``pytest.skip(str(exc))``.
    """

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        pkg = _PACKAGES.get(name)
        how = f"Debian package {pkg}; `make peers` installs it" if pkg else "install it"
        super().__init__(f"peer missing: `{name}` ({detail or how})")


class ServerFailed(RuntimeError):
    """The server process exited or did not accept TCP in time; the message has its log."""


# --------------------------------------------------------------------------- basics


def _which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        # nginx lives in /usr/sbin, which a non-root PATH often lacks
        for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
            if os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
        raise PeerMissing(name)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: a connection gets RST (ECONNREFUSED).

    The port was bound (never listened on) and released; another process could take
    it, as with any free port, but nothing in this test run listens without asking
    :func:`free_port` first.
    """
    return free_port()


def _wait_tcp(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Until 127.0.0.1:port accepts a TCP connection; RuntimeError if ``proc`` exits or
    ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before listening on {HOST}:{port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"nothing accepted on {HOST}:{port} within {timeout:g} s")
        time.sleep(0.05)


def _wait_listening(port: int, timeout: float, proc: subprocess.Popen) -> None:
    """Until ``proc`` itself listens on 127.0.0.1:port (read from /proc, so a stranger
    that grabbed the port in the meantime is not mistaken for it, and no probe connection
    shows up in the server's log); a TCP connect where /proc is not readable."""
    if not os.path.isdir(f"/proc/{proc.pid}/fd") or not os.path.exists("/proc/net/tcp"):
        _wait_tcp(port, timeout, proc)
        return
    deadline = time.monotonic() + timeout
    want = f"{HOST}:{port}"
    while want not in _listening_sockets(proc.pid):
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before listening on {want}")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"not listening on {want} within {timeout:g} s")
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers; never raises."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=grace)
            # the leader is gone; anything it left in its group goes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def _split_pem(path: str | os.PathLike) -> list[str]:
    text = Path(path).read_text()
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    if not blocks:
        raise ValueError(f"no PEM certificate in {path}")
    return [b + "\n" for b in blocks]


def _check_versions(tls: Sequence[str]) -> list[str]:
    tls = list(tls)
    bad = [v for v in tls if v not in VERSIONS]
    if bad or not tls:
        raise ValueError(f"tls must be a non-empty subset of {VERSIONS}, not {tls!r}")
    return sorted(set(tls), key=VERSIONS.index)


@dataclass
class Server:
    """A running server: ``host``, ``port``, ``log()`` (what it printed so far)."""

    name: str
    port: int
    host: str = HOST
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    workdir: Path | None = None
    log_paths: list[Path] = field(default_factory=list)
    _events: list[str] | None = None

    def log(self) -> str:
        parts = []
        if self.args:
            parts.append("$ " + " ".join(self.args))
        for p in self.log_paths:
            try:
                text = p.read_text("utf-8", "replace")
            except OSError:
                continue
            if len(self.log_paths) > 1:
                parts.append(f"--- {p.name}")
            parts.append(text)
        if self._events is not None:
            parts.extend(list(self._events))
        return "\n".join(parts)

    def wait_for(self, text: str, timeout: float = 5.0) -> bool:
        """Whether ``text`` shows up in :meth:`log` within ``timeout`` seconds (a server
        logs a failed handshake just *after* sending its alert)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def listening(self) -> list[str]:
        """Addresses the server process listens on ("127.0.0.1:PORT", "[::1]:PORT"), from
        /proc (Linux); for the thread listeners, their one socket."""
        if self.proc is None:
            return [f"{self.host}:{self.port}"]
        return _listening_sockets(self.proc.pid)

    @property
    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def __str__(self) -> str:
        return f"{self.name} on {self.host}:{self.port}"


def _listening_sockets(pid: int) -> list[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    out = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[3] != "0A" or f[9] not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = f[1].split(":")
            raw = bytes.fromhex(addr_hex)
            # the kernel prints the address as 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            addr = socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, raw)
            if addr.startswith("::ffff:") and "." in addr:  # IPv4-mapped (a JVM's socket)
                addr, v6 = addr[7:], False
            port = int(port_hex, 16)
            out.append(f"[{addr}]:{port}" if v6 else f"{addr}:{port}")
    return sorted(out)


@contextmanager
def _workdir(name: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"tlslab-{name}-"))
    try:
        yield path
    finally:
        if os.environ.get("TLSLAB_KEEP_SERVER_DIRS") != "1":
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _process(
    name: str,
    workdir: Path,
    make_args: Callable[[int], list[str]],
    *,
    env: dict[str, str] | None = None,
    extra_logs: Callable[[int], list[Path]] = lambda port: [],
    port_from_log: str | None = None,
    startup: float = STARTUP_TIMEOUT,
) -> Iterator[Server]:
    """Start ``make_args(port)`` in its own process group, wait until it listens on
    127.0.0.1:port, yield the Server, kill the group on exit.

    The port comes from :func:`free_port` (a few retries if something took it in
    between), or, with ``port_from_log`` (a regex with one group), from the program's
    own "listening PORT" line (it binds port 0 itself: no race).
    """
    last = ""
    for attempt in range(3):
        port = 0 if port_from_log else free_port()
        args = [str(a) for a in make_args(port)]
        log_path = workdir / f"{name}-{attempt}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=workdir, start_new_session=True,
            )
        server = Server(name, port, HOST, args, proc, workdir, [log_path, *extra_logs(port)])
        try:
            if port_from_log:
                # printed after listen(): no TCP probe, which the server would log as a
                # failed handshake
                server.port = _port_from_log(log_path, port_from_log, startup, proc)
            else:
                _wait_listening(server.port, startup, proc)
        except RuntimeError as exc:
            _stop_process(proc)
            last = f"{name} did not start: {exc}\n{server.log()[-3000:]}"
            if "in use" in server.log().lower():
                continue
            raise ServerFailed(last) from None
        try:
            yield server
        finally:
            _stop_process(proc)
        return
    raise ServerFailed(last)


def _port_from_log(path: Path, pattern: str, timeout: float, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, path.read_text("utf-8", "replace"), re.M)
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before printing its port")
        time.sleep(0.05)
    raise RuntimeError(f"no line matching {pattern!r} within {timeout:g} s")


def _stop_process(proc: subprocess.Popen) -> None:
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass
    _kill_group(proc)


def _cache_dir(kind: str, *inputs: bytes) -> Path:
    """Build cache shared with tests/test_interop_tls12.py's layout: one directory per
    hash of the source and the tool version, so a build happens once per machine."""
    digest = hashlib.sha256(b"\0".join(inputs)).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / "tlslab-interop-peers" / f"{kind}-{digest}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(cmd: Sequence[str], timeout: float) -> tuple[int, str]:
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace=1.0)
        out, _ = proc.communicate()
        return -9, out.decode("utf-8", "replace") + f"\n[timed out after {timeout:g} s]"
    return proc.returncode, out.decode("utf-8", "replace")


# --------------------------------------------------------------------------- openssl s_server

_OPENSSL_VERSION_NAME = {"1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}
_OPENSSL_NO = {"1.0": "-no_tls1", "1.1": "-no_tls1_1", "1.2": "-no_tls1_2", "1.3": "-no_tls1_3"}


@contextmanager
def openssl_server(
    chain_pem: str | os.PathLike,
    key_pem: str | os.PathLike,
    *,
    tls: Sequence[str] = ("1.2", "1.3"),
    ciphers: str | None = None,
    ciphersuites: str | None = None,
    groups: str | None = None,
    sigalgs: str | None = None,
    client_ca: str | os.PathLike | None = None,
    verify_client: bool | str = False,
    alpn: str | None = None,
    sni_required_name: str | None = None,
    www: bool = True,
    extra: Sequence[str] = (),
) -> Iterator[Server]:
    """``openssl s_server`` on 127.0.0.1 with ``chain_pem`` (leaf first) and ``key_pem``.

    ``tls``: versions to enable ("1.0" ... "1.3"); TLS 1.0/1.1 add ``@SECLEVEL=0`` to the
    cipher string (OpenSSL 3 refuses them at level 1 and up: their handshake signatures
    use SHA-1/MD5).  ``ciphers``: the TLS 1.2-and-below cipher string (OpenSSL syntax),
    ``ciphersuites``: TLS 1.3 suites, ``groups``/``sigalgs``: colon lists (OpenSSL
    names).  ``verify_client``: False, "optional" (``-verify``) or "require"/True
    (``-Verify``), checked against ``client_ca`` with ``-verify_return_error``.
    ``alpn``: comma list.  ``sni_required_name``: ``-servername NAME -servername_fatal``
    (see the module docstring: a ClientHello *without* SNI is still served; one naming
    another host gets unrecognized_name; one naming NAME is served the same chain).
    ``www``: ``-www`` (an HTTP GET gets a status page).  ``extra``: more arguments.
    """
    openssl = _which("openssl")
    versions = _check_versions(tls)
    with _workdir("openssl") as wd:
        certs = _split_pem(chain_pem)
        (wd / "leaf.pem").write_text(certs[0])
        base = [openssl, "s_server", "-cert", wd / "leaf.pem", "-key", key_pem]
        if len(certs) > 1:
            (wd / "chain-rest.pem").write_text("".join(certs[1:]))
            base += ["-cert_chain", wd / "chain-rest.pem"]
        base += ["-min_protocol", _OPENSSL_VERSION_NAME[versions[0]],
                 "-max_protocol", _OPENSSL_VERSION_NAME[versions[-1]]]
        base += [_OPENSSL_NO[v] for v in VERSIONS if v not in versions
                 and VERSIONS.index(versions[0]) < VERSIONS.index(v) < VERSIONS.index(versions[-1])]
        cipher = ciphers
        if versions[0] in ("1.0", "1.1"):
            cipher = f"{ciphers or 'DEFAULT'}:@SECLEVEL=0"
        if cipher:
            base += ["-cipher", cipher]
        if ciphersuites:
            base += ["-ciphersuites", ciphersuites]
        if groups:
            base += ["-groups", groups]
        if sigalgs:
            base += ["-sigalgs", sigalgs]
        if verify_client:
            base += ["-Verify" if verify_client in (True, "require") else "-verify", "4",
                     "-verify_return_error"]
        if client_ca:
            base += ["-CAfile", client_ca]
        if alpn:
            base += ["-alpn", alpn]
        if sni_required_name:
            # A matching name switches s_server to its second context (-cert2/-key2,
            # mandatory with -servername), which has no chain option: -xcert/-xkey/-xchain
            # (picked by a certificate callback on both contexts) send the chain there too.
            base += ["-servername", sni_required_name, "-servername_fatal",
                     "-cert2", wd / "leaf.pem", "-key2", key_pem,
                     "-xcert", wd / "leaf.pem", "-xkey", key_pem]
            if len(certs) > 1:
                base += ["-xchain", wd / "chain-rest.pem"]
        if www:
            base.append("-www")
        base += list(extra)
        with _process("s_server", wd, lambda port: [*base, "-accept", f"{HOST}:{port}"]) as server:
            yield server


# --------------------------------------------------------------------------- gnutls-serv

_GNUTLS_VERSION = {"1.0": "+VERS-TLS1.0", "1.1": "+VERS-TLS1.1", "1.2": "+VERS-TLS1.2", "1.3": "+VERS-TLS1.3"}


@lru_cache(maxsize=None)
def loopback_shim() -> Path:
    """tests/peers/loopback_bind.c as a preload library: gnutls-serv has no option for
    the address to listen on, and its wildcard bind becomes a 127.0.0.1 bind."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise PeerMissing("cc", "a C compiler builds tests/peers/loopback_bind.c, which keeps "
                                "gnutls-serv on loopback; Debian package gcc")
    src = PEERS_SRC / "loopback_bind.c"
    out = _cache_dir("shim", src.read_bytes())
    lib = out / "loopback_bind.so"
    if not lib.is_file():
        tmp = out / f"loopback_bind.{os.getpid()}.tmp"
        rc, text = _run([cc, "-shared", "-fPIC", "-O2", "-o", tmp, src, "-ldl"], timeout=60)
        if rc != 0:
            raise PeerMissing("cc", f"cannot build tests/peers/loopback_bind.c: {text[-500:]}")
        tmp.rename(lib)
    return lib


@contextmanager
def gnutls_server(
    chain_pem: str | os.PathLike,
    key_pem: str | os.PathLike,
    *,
    priority: str = "NORMAL",
    tls: Sequence[str] | None = ("1.2", "1.3"),
    client_ca: str | os.PathLike | None = None,
    verify_client: bool | str = False,
    alpn: str | None = None,
    sni_required_name: str | None = None,
    www: bool = True,
    extra: Sequence[str] = (),
) -> Iterator[Server]:
    """``gnutls-serv`` on 127.0.0.1 (through the loopback shim: it binds the wildcard).

    ``priority``: a GnuTLS priority string (e.g. ``NORMAL:-KX-ALL:+DHE-RSA``);
    ``tls`` appends ``:-VERS-ALL:+VERS-TLS1.x...`` (None: the versions ``priority`` says).  ``verify_client``:
    False (``--disable-client-cert``: gnutls-serv otherwise *asks* for one),
    "optional" (``--verify-client-cert``: asked for, verified if sent) or
    "require"/True (``--require-client-cert``); ``client_ca`` is ``--x509cafile``.
    ``alpn``: comma list (one ``--alpn`` each).  ``sni_required_name``:
    ``--sni-hostname NAME --sni-hostname-fatal``.  ``www``: ``--http`` (else echo).
    """
    gnutls = _which("gnutls-serv")
    shim = loopback_shim()
    prio = priority
    if tls is not None:
        prio += ":-VERS-ALL:" + ":".join(_GNUTLS_VERSION[v] for v in reversed(_check_versions(tls)))
    base = [gnutls, "--x509certfile", chain_pem, "--x509keyfile", key_pem, f"--priority={prio}"]
    if verify_client in (True, "require"):
        base.append("--require-client-cert")
    elif verify_client:
        base.append("--verify-client-cert")
    else:
        base.append("--disable-client-cert")
    if client_ca:
        base += ["--x509cafile", client_ca]
    for proto in (alpn.split(",") if alpn else []):
        base += ["--alpn", proto]
    if sni_required_name:
        base += ["--sni-hostname", sni_required_name, "--sni-hostname-fatal"]
    base.append("--http" if www else "--echo")
    base += list(extra)
    env = dict(os.environ, LD_PRELOAD=str(shim))
    with _workdir("gnutls") as wd:
        with _process("gnutls-serv", wd, lambda port: [*base, "--port", str(port)], env=env) as server:
            yield server


# --------------------------------------------------------------------------- nginx

_NGINX_VERSION = {"1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}


def _nginx_conf(
    wd: Path, port: int, chain_pem: str, key_pem: str, *, tls: list[str], ciphers: str | None,
    ciphersuites: str | None, groups: str | None, sigalgs: str | None, client_ca: str | None,
    verify_client: bool | str, sni_required_name: str | None, dhparam: str | None, http2: bool,
) -> str:
    listen = f"listen {HOST}:{port} ssl{' http2' if http2 else ''}"
    # Protocol settings live at http level, not in a server block: nginx takes
    # ssl_protocols (and the rest of the handshake set-up) from the server that owns the
    # listening socket (the default_server), *before* SNI picks a name-based server.  In
    # the SNI-required layout the named server's ssl_protocols would be ignored and nginx
    # 1.22's default (TLSv1 TLSv1.1 TLSv1.2, no 1.3) used instead.
    tls_lines = [f"ssl_protocols {' '.join(_NGINX_VERSION[v] for v in tls)};"]
    cipher = ciphers
    if tls[0] in ("1.0", "1.1"):
        cipher = f"{ciphers or 'DEFAULT'}:@SECLEVEL=0"
    if cipher:
        tls_lines.append(f"ssl_ciphers {cipher};")
    if groups:
        tls_lines.append(f"ssl_ecdh_curve {groups};")
    if dhparam:
        tls_lines.append(f"ssl_dhparam {dhparam};")
    # Settings nginx has no directive for go straight to OpenSSL's SSL_CONF
    if ciphersuites:
        tls_lines.append(f"ssl_conf_command Ciphersuites {ciphersuites};")
    if sigalgs:
        tls_lines.append(f"ssl_conf_command SignatureAlgorithms {sigalgs};")
    if verify_client:
        mode = "on" if verify_client in (True, "require") else "optional"
        # ssl_verify_depth stays at its default of 1: it counts intermediates, and the
        # lab's client chain (leaf + one intermediate, root trusted) fits
        tls_lines.append(f"ssl_verify_client {mode};")
    if client_ca:
        tls_lines.append(f"ssl_client_certificate {client_ca};")
    http_tls = "\n    ".join(tls_lines)
    cert = f"ssl_certificate {chain_pem};\n            ssl_certificate_key {key_pem};"
    location = ('location / { default_type text/plain; '
                'return 200 "nginx says hello\\nprotocol=$ssl_protocol cipher=$ssl_cipher '
                'sni=$ssl_server_name client_verify=$ssl_client_verify\\n"; }')
    if sni_required_name:
        servers = f"""
    server {{
        {listen} default_server;
        server_name _;
        # no certificate here: a ClientHello without a configured name is refused
        ssl_reject_handshake on;
    }}
    server {{
        {listen};
        server_name {sni_required_name};
        {cert}
        {location}
    }}"""
    else:
        servers = f"""
    server {{
        {listen} default_server;
        server_name _;
        {cert}
        {location}
    }}"""
    # "user" only means something to a root master; as root, stay root (the key files in
    # 0600 temp dirs must stay readable).  One process, no daemon: the group kill ends it.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""# written by tests/realservers.py
{user}
daemon off;
master_process off;
worker_processes 1;
pid {wd}/nginx.pid;
error_log stderr info;
events {{ worker_connections 64; }}
http {{
    access_log {wd}/access.log;
    client_body_temp_path {wd}/client_body;
    proxy_temp_path {wd}/proxy;
    fastcgi_temp_path {wd}/fastcgi;
    uwsgi_temp_path {wd}/uwsgi;
    scgi_temp_path {wd}/scgi;
    {http_tls}
    {servers}
}}
"""


def _ffdhe2048(wd: Path) -> Path:
    out = wd / "ffdhe2048.pem"
    rc, text = _run([_which("openssl"), "genpkey", "-genparam", "-algorithm", "DH",
                     "-pkeyopt", "group:ffdhe2048", "-out", out], timeout=30)
    if rc != 0:
        raise ServerFailed(f"openssl genpkey (ffdhe2048 parameters) failed: {text}")
    return out


@contextmanager
def nginx_server(
    chain_pem: str | os.PathLike,
    key_pem: str | os.PathLike,
    *,
    tls: Sequence[str] = ("1.2", "1.3"),
    ciphers: str | None = None,
    ciphersuites: str | None = None,
    groups: str | None = None,
    sigalgs: str | None = None,
    client_ca: str | os.PathLike | None = None,
    verify_client: bool | str = False,
    sni_required_name: str | None = None,
    dhparam: bool | str | os.PathLike = False,
    http2: bool = False,
) -> Iterator[Server]:
    """nginx with its own ``nginx.conf`` in a temp dir (``nginx -c FILE -p DIR``).

    ``tls`` -> ``ssl_protocols``; ``ciphers`` -> ``ssl_ciphers`` (OpenSSL syntax);
    ``groups`` -> ``ssl_ecdh_curve`` (colon list); ``dhparam`` -> ``ssl_dhparam`` (a PEM
    path, or True for RFC 7919 ffdhe2048 made by ``openssl genpkey``: without it nginx has
    no DH parameters and *no* DHE suite can be chosen); ``ciphersuites``/``sigalgs`` ->
    ``ssl_conf_command Ciphersuites/SignatureAlgorithms``; ``verify_client`` -> ``ssl_verify_client
    on|optional`` with ``ssl_client_certificate client_ca``; ``sni_required_name``: a
    ``default_server`` with ``ssl_reject_handshake on`` and the real server only under
    that name.  Every request gets ``200 nginx says hello`` with the protocol, cipher,
    SNI and client verification result.
    """
    nginx = _which("nginx")
    versions = _check_versions(tls)
    with _workdir("nginx") as wd:
        dh = None
        if dhparam is True:
            dh = str(_ffdhe2048(wd))
        elif dhparam:
            dh = str(Path(dhparam).resolve())

        def make(port: int) -> list[str]:
            conf = wd / "nginx.conf"
            conf.write_text(_nginx_conf(
                wd, port, str(Path(chain_pem).resolve()), str(Path(key_pem).resolve()),
                tls=versions, ciphers=ciphers, ciphersuites=ciphersuites, groups=groups,
                sigalgs=sigalgs, client_ca=str(Path(client_ca).resolve()) if client_ca else None,
                verify_client=verify_client, sni_required_name=sni_required_name,
                dhparam=dh, http2=http2))
            # -e: the error log before the configuration is read (nginx >= 1.19.5)
            return [nginx, "-e", "stderr", "-c", conf, "-p", wd]

        with _process("nginx", wd, make, extra_logs=lambda port: [wd / "access.log"]) as server:
            server.log_paths.insert(0, wd / "nginx.conf")
            yield server


# --------------------------------------------------------------------------- Java JSSE


@lru_cache(maxsize=None)
def java_diag_server() -> tuple[str, Path]:
    """Compile tests/peers/DiagServer.java once (cached by source and javac version);
    return ``(java, class_dir)``."""
    java, javac = _which("java"), _which("javac")
    src = PEERS_SRC / "DiagServer.java"
    _, version = _run([javac, "-version"], timeout=60)
    out = _cache_dir("diagserver", src.read_bytes(), version.encode())
    if not (out / "DiagServer.class").is_file():
        build = out / f"build-{os.getpid()}"
        rc, text = _run([javac, "-d", build, src], timeout=180)
        if rc != 0:
            raise PeerMissing("javac", f"cannot compile tests/peers/DiagServer.java: {text[-800:]}")
        for cls in build.glob("*.class"):
            cls.replace(out / cls.name)
        shutil.rmtree(build, ignore_errors=True)
    return java, out


def _pkcs12(wd: Path, chain_pem: str | os.PathLike, key_pem: str | os.PathLike, password: str) -> Path:
    """A PKCS#12 keystore for JSSE, made by ``openssl pkcs12 -export`` (leaf, key, chain)."""
    openssl = _which("openssl")
    certs = _split_pem(chain_pem)
    (wd / "p12-leaf.pem").write_text(certs[0])
    cmd = [openssl, "pkcs12", "-export", "-in", wd / "p12-leaf.pem", "-inkey", key_pem,
           "-name", "server", "-passout", f"pass:{password}", "-out", wd / "server.p12"]
    if len(certs) > 1:
        (wd / "p12-chain.pem").write_text("".join(certs[1:]))
        cmd += ["-certfile", wd / "p12-chain.pem"]
    rc, text = _run(cmd, timeout=30)
    if rc != 0:
        raise ServerFailed(f"openssl pkcs12 -export failed: {text}")
    return wd / "server.p12"


_JAVA_VERSION = {"1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}


@contextmanager
def java_server(
    chain_pem: str | os.PathLike,
    key_pem: str | os.PathLike,
    *,
    tls: Sequence[str] = ("1.2", "1.3"),
    ciphers: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    client_auth: str = "none",
    client_ca: str | os.PathLike | None = None,
    watchdog: int = 120,
    security_properties: str | None = None,
) -> Iterator[Server]:
    """A JSSE ``SSLServerSocket`` (tests/peers/DiagServer.java) on 127.0.0.1.

    ``tls`` -> ``setEnabledProtocols``; ``ciphers``: IANA suite names ->
    ``setEnabledCipherSuites``; ``groups`` -> ``jdk.tls.namedGroups`` (e.g.
    ``["secp521r1"]``, ``["ffdhe2048"]``); ``client_auth``: "none", "want" or "need";
    ``client_ca``: PEM trusted for client certificates (default: the JDK's cacerts).
    ``security_properties``: text appended to java.security (``-Djava.security.properties``),
    e.g. to re-enable TLS 1.0.  The JVM exits by itself after ``watchdog`` seconds.
    """
    java, classes = java_diag_server()
    versions = _check_versions(tls)
    if client_auth not in ("none", "want", "need"):
        raise ValueError("client_auth is none, want or need")
    with _workdir("java") as wd:
        password = "tlslab"
        p12 = _pkcs12(wd, chain_pem, key_pem, password)
        props = []
        if security_properties:
            (wd / "java.security").write_text(security_properties)
            props.append(f"-Djava.security.properties={wd / 'java.security'}")
        args = [java, "-Xss1m", "-XX:TieredStopAtLevel=1", *props, "-cp", classes, "DiagServer",
                p12, password, ",".join(_JAVA_VERSION[v] for v in versions),
                ",".join(ciphers) if ciphers else "-", ",".join(groups) if groups else "-",
                client_auth, client_ca or "-", str(watchdog)]
        with _process("java", wd, lambda port: args, port_from_log=r"^listening (\d+)$") as server:
            yield server


# --------------------------------------------------------------------------- non-TLS listeners


class _ThreadListener:
    """A listening socket on 127.0.0.1:0 served by threads; ``handler(conn, note)``
    runs once per connection with a 5 s socket timeout."""

    def __init__(self, name: str, handler: Callable[[socket.socket, Callable[[str], None]], None],
                 listen: bool = True) -> None:
        self.name = name
        self.handler = handler
        self.events: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._acceptor.start()

    def note(self, text: str) -> None:
        with self._lock:
            self.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(5.0)
            with self._lock:
                self._conns.append(conn)
            self.note(f"accepted {peer[0]}:{peer[1]}")
            t = threading.Thread(target=self._serve, args=(conn,), name=f"{self.name}-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, self.note)
        except OSError as exc:
            self.note(f"connection error: {exc}")
        except Exception as exc:  # a bug here must show in log(), not kill the thread silently
            self.note(f"handler failed: {type(exc).__name__}: {exc}")
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:  # wakes handlers blocked in recv
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=2.0)
        for t in self._threads:
            t.join(timeout=2.0)


@contextmanager
def _listener(name: str, handler, on_stop: Callable[[], None] | None = None) -> Iterator[Server]:
    lst = _ThreadListener(name, handler)
    server = Server(name, lst.port, HOST, _events=lst.events)
    try:
        yield server
    finally:
        if on_stop is not None:
            on_stop()
        lst.stop()


def _read_some(conn: socket.socket, note, limit: int = 16384, wait: float = 5.0) -> bytes:
    """The first bytes the client sends (one recv; a ClientHello arrives in one segment
    on loopback), or b"" on EOF/timeout."""
    conn.settimeout(wait)
    try:
        data = conn.recv(limit)
    except socket.timeout:
        note("client sent nothing")
        return b""
    note(f"read {len(data)} bytes: {data[:16].hex()}")
    return data


def _linger(conn: socket.socket, limit: float = 2.0) -> None:
    """Close gracefully but boundedly: FIN, then drain what the client still sends (so
    the close is no RST), for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    try:
        conn.shutdown(socket.SHUT_WR)
        while time.monotonic() < deadline:
            conn.settimeout(max(0.05, deadline - time.monotonic()))
            if not conn.recv(4096):
                break
    except OSError:
        pass


@contextmanager
def plain_http_server() -> Iterator[Server]:
    """An HTTP server that answers anything, a ClientHello included, with
    ``HTTP/1.1 400 Bad Request`` (what nginx/Apache answer on a plain-HTTP port)."""

    def handle(conn, note):
        _read_some(conn, note)
        body = b"<html><body><h1>400 Bad Request</h1></body></html>\n"
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        note("sent HTTP/1.1 400 Bad Request")
        _linger(conn)

    with _listener("plain-http", handle) as server:
        yield server


@contextmanager
def banner_server(banner: bytes = b"220 mail.example ESMTP\r\n",
                  reply: bytes | None = b"500 5.5.2 Error: command not recognized\r\n") -> Iterator[Server]:
    """A server that speaks first (SMTP, FTP, POP3, IMAP style): ``banner`` on accept,
    then ``reply`` to whatever the client sends, then close."""

    def handle(conn, note):
        conn.sendall(banner)
        note(f"sent banner {banner[:40]!r}")
        data = _read_some(conn, note)
        if data and reply:
            conn.sendall(reply)
            note(f"sent {reply[:40]!r}")
        _linger(conn)

    with _listener("banner", handle) as server:
        yield server


@contextmanager
def ssh_like_server(banner: bytes = b"SSH-2.0-OpenSSH_9.2\r\n") -> Iterator[Server]:
    """An SSH-like server: its identification string first (RFC 4253 §4.2), then it
    closes when the client's first bytes are no SSH identification."""
    with banner_server(banner, reply=None) as server:
        server.name = "ssh-like"
        yield server


@contextmanager
def garbage_server(size: int = 512, seed: int | None = None) -> Iterator[Server]:
    """Reads the ClientHello and answers ``size`` random bytes whose first byte is no
    TLS record type (20-24), so no parser can mistake them for a record, then closes."""
    rng = random.Random(seed)

    def handle(conn, note):
        _read_some(conn, note)
        data = bytearray(rng.getrandbits(8) for _ in range(size))
        if 20 <= data[0] <= 24:
            data[0] ^= 0x80
        conn.sendall(bytes(data))
        note(f"sent {size} random bytes: {bytes(data[:8]).hex()}...")
        _linger(conn)

    with _listener("garbage", handle) as server:
        yield server


@contextmanager
def silent_server() -> Iterator[Server]:
    """Accepts and never sends a byte; the connection stays open until the client gives
    up or the server is stopped (then it is closed)."""
    stopping = threading.Event()

    def handle(conn, note):
        conn.settimeout(0.2)
        got = 0
        while not stopping.is_set():
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            if not data:
                note(f"client closed after sending {got} bytes")
                return
            got += len(data)
        note(f"stopped; client had sent {got} bytes")

    with _listener("silent", handle, on_stop=stopping.set) as server:
        yield server


@contextmanager
def reset_server() -> Iterator[Server]:
    """Accepts, reads the ClientHello, then resets the connection (SO_LINGER 0 -> RST)."""

    def handle(conn, note):
        _read_some(conn, note)
        # struct linger {l_onoff = 1, l_linger = 0}: close() discards and sends RST
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        note("closing with RST (SO_LINGER 0)")

    with _listener("reset", handle) as server:
        yield server
