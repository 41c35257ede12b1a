"""Shared fixtures and helpers for the tlslab test suite.

Helpers (plain functions; test modules can ``from conftest import ...`` since
``tests/`` is on ``pythonpath`` in pyproject.toml):

* ``require_tool(name)``  -> absolute path of a binary, or skip the test saying what is missing
* ``free_port(host)``     -> a TCP port on loopback that was free a moment ago
* ``run_bounded(cmd, input=None, timeout=20)`` -> ``(returncode, stdout, stderr)``
* ``wait_for_port(port, host, timeout, proc)`` -> block until something accepts there

Fixtures: ``shared_dir``, ``certs_dir``, ``vectors_dir``, ``peers_dir``, and
``openssl_server``: a factory that starts ``openssl s_server`` on loopback and returns
its port (a plain ``int``); ``openssl_server.servers[port]`` has ``.proc``, ``.log_path``,
``.args`` and ``.output()``, and ``openssl_server.output(port)`` is a shortcut.

Only 127.0.0.1 and ::1 are ever used: nothing here talks to another host.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pytest

LOOPBACK = ("127.0.0.1", "::1")

# Debian package that provides each binary a test may ask for (for skip messages).
TOOL_PACKAGES = {
    "openssl": "openssl",
    "curl": "curl",
    "tshark": "tshark",
    "gnutls-cli": "gnutls-bin",
    "gnutls-serv": "gnutls-bin",
    "certutil": "libnss3-tools",
    "tstclnt": "libnss3-tools",
    "go": "golang-go",
    "java": "default-jdk-headless",
    "keytool": "default-jdk-headless",
    "node": "nodejs",
}


# --------------------------------------------------------------------------- helpers

def split_records(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(header, fragment)`` for every record in ``data``, which must hold whole records."""
    out, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        out.append((data[i:i + 5], data[i + 5:i + 5 + n]))
        i += 5 + n
    assert i == len(data), "output ends with a partial record"
    return out


def whole_records(data: bytes) -> list[bytes]:
    """Every record in ``data`` (header included), which must hold whole records."""
    return [header + fragment for header, fragment in split_records(data)]


def require_tool(name: str) -> str:
    """Return the absolute path of binary ``name``; skip the calling test if absent."""
    path = shutil.which(name)
    if path is None:
        pkg = TOOL_PACKAGES.get(name)
        how = (f"Debian package {pkg}; `make peers` installs it"
               if pkg else "install it and put it on PATH")
        pytest.skip(f"peer missing: `{name}` is not on PATH ({how})")
    return path


def _check_loopback(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"tests only use loopback ({', '.join(LOOPBACK)}), not {host!r}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now (bind to port 0)."""
    _check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                  proc: subprocess.Popen | None = None) -> None:
    """Block until ``host:port`` accepts a TCP connection, at most ``timeout`` seconds.

    Raises ``RuntimeError`` if ``proc`` exits first or the time runs out.
    """
    _check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before "
                               f"listening on {host}:{port}")
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"nothing accepted on {host}:{port} within {timeout:g} s")
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Terminate ``proc`` and everything in its process group; never raises."""
    if proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    else:
        # the leader is gone; children it left in the group may not be
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def run_bounded(cmd: Sequence[str], input: str | bytes | None = None, timeout: float = 20,
                *, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
                fail_on_timeout: bool = True) -> tuple[int, str | bytes, str | bytes]:
    """Run ``cmd`` (never through a shell) with a time limit; return (rc, stdout, stderr).

    Text in, text out: with ``input`` as ``bytes`` the outputs are ``bytes`` too,
    otherwise ``str`` (decoded as UTF-8, invalid bytes replaced). Stdin is closed
    when ``input`` is None, so a peer waiting for input sees EOF instead of hanging.

    On timeout the whole process group is killed; the test fails (with the partial
    output) unless ``fail_on_timeout=False``, in which case rc is -9 and stderr ends
    with a "[run_bounded: timed out ...]" line.
    """
    binary = isinstance(input, (bytes, bytearray))
    data = input if binary or input is None else input.encode()
    proc = subprocess.Popen(
        list(map(str, cmd)),
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=cwd, start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc, grace=1.0)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            _kill_group(proc, grace=1.0)
    if not binary:
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
    if timed_out:
        note = f"[run_bounded: timed out after {timeout:g} s: {' '.join(map(str, cmd))}]"
        if fail_on_timeout:
            tail = lambda b: (b if isinstance(b, str) else b.decode("utf-8", "replace"))[-2000:]
            pytest.fail(f"{note}\n--- stdout ---\n{tail(out)}\n--- stderr ---\n{tail(err)}",
                        pytrace=False)
        err = err + (note.encode() if binary else "\n" + note)
        return -9, out, err
    return proc.returncode, out, err


# --------------------------------------------------------------------------- shared data

SHARED = Path(os.environ.get("TLSLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def vector_path(name: str) -> Path:
    """A file of ../shared/vectors, for module-level loaders; the test skips when the
    shared data is not there."""
    path = SHARED / "vectors" / name
    if not path.is_file():
        pytest.skip(f"shared test vectors not found at {path} "
                    "(put shared/ beside the repository or set TLSLAB_SHARED)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (or ``$TLSLAB_SHARED``); skip if absent."""
    path = SHARED
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} "
                    "(put shared/ beside the repository or set TLSLAB_SHARED)")
    return path


@pytest.fixture(scope="session")
def peers_dir(shared_dir: Path) -> Path:
    path = shared_dir / "peers"
    if not path.is_dir():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="session")
def certs_dir(peers_dir: Path) -> Path:
    """Test-only PKI: ca.pem → intermediate.pem → {ecdsa,rsa}.pem (+ *-chain.pem, keys)."""
    path = peers_dir / "certs"
    if not (path / "ca.pem").is_file():
        pytest.skip(f"test certificates missing in {path}")
    return path


@pytest.fixture(scope="session")
def vectors_dir(shared_dir: Path) -> Path:
    path = shared_dir / "vectors"
    if not path.is_dir():
        pytest.skip(f"{path} missing")
    return path


# --------------------------------------------------------------------------- real peers

@dataclass
class PeerServer:
    """A peer server process started by a fixture (the port is a plain int: socket
    functions reject int subclasses)."""

    port: int
    host: str
    proc: subprocess.Popen
    log_path: Path
    args: list[str]

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr together)."""
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""


@pytest.fixture
def openssl_server(certs_dir: Path, tmp_path_factory) -> Callable[..., int]:
    """Factory: ``port = openssl_server("-tls1_3", "-groups", "X25519", key_type="rsa")``.

    Starts ``openssl s_server -accept HOST:PORT -cert ... -key ... -www`` plus the extra
    arguments, waits (at most 10 s) until the port accepts, and returns the port. The
    leaf is ``{key_type}.pem`` ("ecdsa" or "rsa") with ``intermediate.pem`` sent as the
    chain, so clients should trust ``certs_dir / "ca.pem"``. ``cert=``/``key=`` override
    the files, ``chain=None`` sends the leaf alone, ``www=False`` drops ``-www``.
    ``openssl_server.servers[port]`` is the ``PeerServer`` (process, log, arguments) and
    ``openssl_server.output(port)`` what it printed so far. Every server started is killed (whole process group) at teardown.
    """
    openssl = require_tool("openssl")
    started: list[PeerServer] = []
    servers: dict[int, PeerServer] = {}
    logs = tmp_path_factory.mktemp("openssl-server")

    def start(*extra: str, key_type: str = "ecdsa", cert: str | os.PathLike | None = None,
              key: str | os.PathLike | None = None,
              chain: str | os.PathLike | None = "intermediate",
              www: bool = True, host: str = "127.0.0.1", startup_timeout: float = 10.0,
              ) -> int:
        _check_loopback(host)
        cert_file = Path(cert) if cert else certs_dir / f"{key_type}.pem"
        key_file = Path(key) if key else certs_dir / f"{key_type}.key"
        last_error = ""
        for attempt in range(3):  # the port from free_port() can be taken in between
            port = free_port(host)
            accept = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            args = [openssl, "s_server", "-accept", accept,
                    "-cert", str(cert_file), "-key", str(key_file)]
            if chain == "intermediate":
                args += ["-cert_chain", str(certs_dir / "intermediate.pem")]
            elif chain:
                args += ["-cert_chain", str(chain)]
            if www:
                args.append("-www")
            args += [str(a) for a in extra]
            log_path = logs / f"s_server-{len(started)}-{attempt}.log"
            log = open(log_path, "wb")
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            handle = PeerServer(port, host, proc, log_path, args)
            started.append(handle)
            try:
                wait_for_port(port, host, startup_timeout, proc)
                servers[port] = handle
                return port
            except RuntimeError as exc:
                _kill_group(proc)
                last_error = f"{exc}\n{' '.join(args)}\n{handle.output()[-2000:]}"
                if "in use" not in handle.output().lower():
                    break
        pytest.fail(f"openssl s_server did not start: {last_error}", pytrace=False)

    start.servers = servers
    start.output = lambda port: servers[port].output()
    yield start

    for handle in started:
        if handle.proc.stdin:
            try:
                handle.proc.stdin.close()
            except OSError:
                pass
        _kill_group(handle.proc)


# --------------------------------------------------------------------------- report

def pytest_report_header(config) -> list[str]:
    found = []
    for tool in ("openssl", "curl", "tshark", "gnutls-cli", "certutil", "go", "java", "node"):
        found.append(f"{tool}={'yes' if shutil.which(tool) else 'MISSING'}")
    return ["tlslab peers: " + " ".join(found)]


# --------------------------------------------------------------------------- a throwaway PKI

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(chain, key, CA file path) of a throwaway CA and a leaf for localhost/127.0.0.1;
    modules that need another PKI define their own ``pki``."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from tlslab.workbench.certgen import make_throwaway_chain
    chain, key, ca = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    path = tmp_path_factory.mktemp("pki") / "ca.pem"
    path.write_bytes(ca.public_bytes(Encoding.PEM))
    return chain, key, str(path)


def pki_server_config(pki, **kw):
    """A ServerConfig with the ``pki`` fixture's leaf."""
    import tlslab
    chain, key, _ = pki
    return tlslab.ServerConfig(certificate_chain=chain, private_key=key, **kw)


def pki_client_config(pki, **kw):
    """A ClientConfig trusting the ``pki`` fixture's CA, for the name localhost."""
    import tlslab
    kw.setdefault("server_name", "localhost")
    return tlslab.ClientConfig(ca_file=pki[2], **kw)
