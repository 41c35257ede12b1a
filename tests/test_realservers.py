"""The real servers of tests/realservers.py behave as intended, on 127.0.0.1 only.

For every server kind a healthy configuration completes a handshake (``openssl s_client``
and Python ``ssl``, trusting the lab PKI's root) and each broken configuration fails for a
*modern client* the way the module docstring of realservers.py records: which alert, sent
by whom, after which message.  The modern client is ``openssl s_client`` restricted to what
browsers, Python and Java offer today (TLS 1.2+, ECDHE with AEAD only, X25519/P-256/P-384);
the *default client* is a bare ``openssl s_client`` (OpenSSL 3.0 still offers DHE, static
RSA, P-521 and FFDHE groups, and TLS 1.0/1.1 in the ClientHello), which shows why "works
with curl" proves little.  The flow is read from ``s_client -msg``.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

import realservers
from realservers import (
    PeerMissing,
    banner_server,
    closed_port,
    garbage_server,
    gnutls_server,
    java_server,
    nginx_server,
    openssl_server,
    plain_http_server,
    reset_server,
    silent_server,
    ssh_like_server,
)
from tlslab.lab.pki import make_pki

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

#: What a modern client offers (TLS 1.2 suites only matter if 1.3 is not agreed)
MODERN = ("-min_protocol", "TLSv1.2", "-groups", "X25519:P-256:P-384",
          "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20")
HTTP_GET = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
IO_TIMEOUT = 10.0
LOOPBACK = {"127.0.0.1", "::1"}

RSA_DHE = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
RSA_STATIC = "AES128-GCM-SHA256:AES256-GCM-SHA384"


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Files of two lab PKIs: ``lab["ecdsa"]`` and ``lab["rsa"]`` (healthy server
    chains) and ``lab["client"]`` (client certificate of the ECDSA PKI)."""
    base = tmp_path_factory.mktemp("realservers-pki")
    ec, rsa = make_pki(), make_pki(key_type="rsa2048")
    return {"ecdsa": ec.server("ok").write(base / "ecdsa"),
            "rsa": rsa.server("ok").write(base / "rsa"),
            "client": ec.server("client").write(base / "client")}


@contextmanager
def running(factory, *args, **kwargs):
    """Start a realservers server; a missing binary skips the test with the reason."""
    try:
        cm = factory(*args, **kwargs)
        server = cm.__enter__()
    except PeerMissing as exc:
        pytest.skip(str(exc))
    try:
        yield server
    except BaseException as exc:
        if not cm.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        cm.__exit__(None, None, None)


# --------------------------------------------------------------------------- s_client

_MSG = re.compile(r"^(<<<|>>>) (?:\S+ [\d.]+|\?\?\?), (\w+) \[length [0-9a-f]+\](?:, (.*))?$", re.M)


@dataclass
class Handshake:
    """One ``openssl s_client -msg`` run, read back."""

    rc: int
    out: str
    err: str
    flow: list[str] = field(default_factory=list)  # "<ServerHello", ">Finished", "<alert fatal x"

    @property
    def alert(self) -> str | None:
        """The first alert the server sent (description only)."""
        return next((m.split()[-1] for m in self.flow if m.startswith("<alert ")), None)

    @property
    def client_alert(self) -> str | None:
        return next((m.split()[-1] for m in self.flow if m.startswith(">alert ")), None)

    @property
    def before_alert(self) -> list[str]:
        """The messages before the first alert (from either side)."""
        out = []
        for m in self.flow:
            if m[1:].startswith("alert "):
                return out
            out.append(m)
        return out

    @property
    def version(self) -> str | None:
        m = re.search(r"^\s*Protocol\s*: (\S+)", self.out, re.M)
        return m.group(1) if m else None

    @property
    def cipher(self) -> str | None:
        m = re.search(r"^(?:New|Reused), \S+, Cipher is (\S+)", self.out, re.M)
        return m.group(1) if m and m.group(1) != "(NONE)" else None

    @property
    def http_status(self) -> str | None:
        m = re.search(r"^HTTP/1\.[01] (\d{3}[^\r\n]*)", self.out, re.M)
        return m.group(1) if m else None

    @property
    def ok(self) -> bool:
        """Handshake completed, verified, and the server answered the GET with 200."""
        return (self.rc == 0 and "Verify return code: 0 (ok)" in self.out
                and (self.http_status or "").startswith("200"))

    def __str__(self) -> str:
        return (f"rc={self.rc} version={self.version} cipher={self.cipher} alert={self.alert} "
                f"client_alert={self.client_alert} http={self.http_status}\n"
                f"flow: {' '.join(self.flow)}\n--- stderr ---\n{self.err[-1500:]}")


def s_client(server, *args: str, ca: str, servername: str | None = "localhost",
             cert: dict | None = None, timeout: float = 20) -> Handshake:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("peer missing: `openssl` (the client of these tests; Debian package openssl)")
    assert server.host == "127.0.0.1"
    cmd = [openssl, "s_client", "-connect", f"{server.host}:{server.port}", "-msg", "-ign_eof",
           "-CAfile", ca, "-verify_return_error"]
    if servername:
        cmd += ["-servername", servername, "-verify_hostname", servername]
    else:
        cmd.append("-noservername")
    if cert:
        cmd += ["-cert", cert["leaf"], "-key", cert["key"], "-cert_chain", cert["intermediate"]]
    cmd += list(args)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(HTTP_GET.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"s_client timed out after {timeout} s\n{out.decode()[-2000:]}\n"
                    f"--- server ---\n{server.log()[-2000:]}")
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    flow = []
    for m in _MSG.finditer(out):
        direction = "<" if m.group(1) == "<<<" else ">"
        kind, detail = m.group(2), m.group(3)
        if kind in ("RecordHeader", "InnerContent"):
            continue
        if kind == "Handshake":
            flow.append(direction + (detail or "?"))
        elif kind == "Alert":
            flow.append(f"{direction}alert {detail}")
        else:
            flow.append(direction + kind)
    return Handshake(proc.returncode, out, err, flow)


def python_get(server, ca: str, timeout: float = IO_TIMEOUT) -> tuple[str, bytes]:
    """Python ``ssl`` default client context: (TLS version, HTTP response)."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(HTTP_GET.encode())
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = tls.recv(4096)
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    break
                if not chunk:
                    break
                data += chunk
            return tls.version(), data


def detail(h: Handshake, server) -> str:
    return f"{h}\n--- server ---\n{server.log()[-2500:]}"


def assert_refused_after_hello(h: Handshake, server, alert: str) -> None:
    """The server answered the ClientHello with a fatal ``alert`` and nothing else."""
    assert h.alert == alert and h.before_alert == [">ClientHello"], detail(h, server)
    assert f"<alert fatal {alert}" in h.flow and h.rc != 0, detail(h, server)


def assert_loopback_only(server) -> None:
    addrs = server.listening()
    assert addrs, f"no listening socket found for {server}"
    for a in addrs:
        host = a.rsplit(":", 1)[0].strip("[]")
        assert host in LOOPBACK, f"{server} listens on {a}"
    assert f"127.0.0.1:{server.port}" in addrs


# --------------------------------------------------------------------------- healthy

SERVERS = {"openssl": openssl_server, "gnutls": gnutls_server, "nginx": nginx_server,
           "java": java_server}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_healthy(lab, kind):
    files = lab["ecdsa"]
    with running(SERVERS[kind], files["chain"], files["key"]) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        assert_loopback_only(server)
        h = s_client(server, ca=files["ca"])
        assert h.ok and h.version == "TLSv1.3", detail(h, server)
        assert h.flow[:2] == [">ClientHello", "<ServerHello"], detail(h, server)
        # JSSE sends one TLS 1.3 ticket, the OpenSSL- and GnuTLS-based servers two
        assert h.flow.count("<NewSessionTicket") == (1 if kind == "java" else 2), detail(h, server)
        # the chain as sent has the intermediate (s_client verifies from ca.pem = root only)
        assert "depth=1 O = tlslab lab, CN = tlslab lab intermediate CA" in h.err, detail(h, server)
        modern = s_client(server, *MODERN, ca=files["ca"])
        assert modern.ok, detail(modern, server)
        version, response = python_get(server, files["ca"])
        assert version == "TLSv1.3" and response.startswith(b"HTTP/1."), response[:200]
        assert b" 200 " in response.split(b"\r\n", 1)[0], response[:200]
        assert server.log(), "log() is empty"
        proc, port = server.proc, server.port
    # stopped: the process group is gone and nothing accepts on the port any more
    assert proc.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_healthy_java_closes_with_user_canceled(lab):
    """JSSE ends a TLS 1.3 connection with a warning user_canceled before close_notify
    (a diagnosis must not read it as a failure) and sends one NewSessionTicket."""
    files = lab["ecdsa"]
    with running(java_server, files["chain"], files["key"]) as server:
        h = s_client(server, ca=files["ca"])
        assert h.ok, detail(h, server)
        assert "<alert warning user_canceled" in h.flow, detail(h, server)
        assert h.flow.count("<NewSessionTicket") == 1, detail(h, server)
        assert server.wait_for("served version=TLSv1.3"), server.log()


# --------------------------------------------------------------------------- TLS 1.0 only

@pytest.mark.parametrize("kind", ["openssl", "gnutls", "nginx"])
def test_tls10_only(lab, kind):
    files = lab["ecdsa"]
    with running(SERVERS[kind], files["chain"], files["key"], tls=("1.0",)) as server:
        modern = s_client(server, *MODERN, ca=files["ca"])
        if kind == "gnutls":
            # GnuTLS does not refuse the version: with no TLS 1.0 suite among the
            # client's (AEAD suites are TLS 1.2+) it finds no cipher first
            assert_refused_after_hello(modern, server, "handshake_failure")
            # with suites that exist in TLS 1.0 it answers a TLS 1.0 ServerHello, and the
            # client refuses the version
            h = s_client(server, "-min_protocol", "TLSv1.2", ca=files["ca"])
            assert h.alert is None and h.client_alert == "protocol_version", detail(h, server)
            assert h.before_alert == [">ClientHello", "<ServerHello"], detail(h, server)
        else:
            # OpenSSL (nginx is OpenSSL) reads supported_versions, finds no common one
            assert_refused_after_hello(modern, server, "protocol_version")
            # a TLS 1.3-only client gets the same
            h = s_client(server, "-tls1_3", ca=files["ca"])
            assert_refused_after_hello(h, server, "protocol_version")
        # OpenSSL 3's default client still offers TLS 1.0, gets a TLS 1.0 ServerHello and
        # fails on the SHA-1 ServerKeyExchange signature with its own internal_error
        default = s_client(server, ca=files["ca"])
        assert default.alert is None and default.client_alert == "internal_error", detail(default, server)
        assert default.before_alert == [">ClientHello", "<ServerHello", "<Certificate",
                                        "<ServerKeyExchange"], detail(default, server)
        assert "legacy sigalg disallowed" in default.err, detail(default, server)


# --------------------------------------------------------------------------- cipher suites

@pytest.mark.parametrize("kind", ["openssl", "gnutls", "nginx", "nginx-no-dhparam", "java"])
def test_dhe_only(lab, kind):
    files = lab["rsa"]
    if kind == "gnutls":
        cm = running(gnutls_server, files["chain"], files["key"], priority="NORMAL:-KX-ALL:+DHE-RSA", tls=("1.2",))
    elif kind == "java":
        cm = running(java_server, files["chain"], files["key"], tls=("1.2",),
                     ciphers=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"])
    elif kind == "nginx":
        cm = running(nginx_server, files["chain"], files["key"], tls=("1.2",), ciphers=RSA_DHE, dhparam=True)
    elif kind == "nginx-no-dhparam":
        cm = running(nginx_server, files["chain"], files["key"], tls=("1.2",), ciphers=RSA_DHE)
    else:
        cm = running(openssl_server, files["chain"], files["key"], tls=("1.2",), ciphers=RSA_DHE)
    with cm as server:
        assert_refused_after_hello(s_client(server, *MODERN, ca=files["ca"]), server, "handshake_failure")
        default = s_client(server, ca=files["ca"])
        if kind == "nginx-no-dhparam":
            # nginx sets no DH parameters unless ssl_dhparam is given: no DHE suite is
            # usable at all, and every client gets handshake_failure ("no shared cipher")
            assert_refused_after_hello(default, server, "handshake_failure")
            assert server.wait_for("no shared cipher"), server.log()
        else:
            assert default.ok and default.cipher.startswith("DHE-RSA-"), detail(default, server)
            assert "<ServerKeyExchange" in default.flow
        if kind == "java":
            assert server.wait_for("no cipher suites in common"), server.log()


@pytest.mark.parametrize("kind", ["openssl", "gnutls", "nginx"])
def test_static_rsa_only(lab, kind):
    files = lab["rsa"]
    if kind == "gnutls":
        cm = running(gnutls_server, files["chain"], files["key"], priority="NORMAL:-KX-ALL:+RSA", tls=("1.2",))
    else:
        cm = running(SERVERS[kind], files["chain"], files["key"], tls=("1.2",), ciphers=RSA_STATIC)
    with cm as server:
        assert_refused_after_hello(s_client(server, *MODERN, ca=files["ca"]), server, "handshake_failure")
        default = s_client(server, ca=files["ca"])
        assert default.ok and default.cipher in ("AES128-GCM-SHA256", "AES256-GCM-SHA384"), detail(default, server)
        # RSA key transport: no ServerKeyExchange
        assert "<ServerKeyExchange" not in default.flow and "<ServerHelloDone" in default.flow


# --------------------------------------------------------------------------- groups

GROUP_CONFIG = {
    # kind -> (files key, keyword arguments) per group family
    ("openssl", "p521"): ("ecdsa", {"groups": "P-521"}),
    ("openssl", "ffdhe"): ("rsa", {"groups": "ffdhe2048:ffdhe3072"}),
    ("gnutls", "p521"): ("ecdsa", {"priority": "NORMAL:-GROUP-ALL:+GROUP-SECP521R1"}),
    ("gnutls", "ffdhe"): ("rsa", {"priority": "NORMAL:-GROUP-ALL:+GROUP-FFDHE2048:+GROUP-FFDHE3072"}),
    ("nginx", "p521"): ("ecdsa", {"groups": "secp521r1"}),
    ("nginx", "ffdhe"): ("rsa", {"groups": "ffdhe2048:ffdhe3072"}),
    ("java", "p521"): ("ecdsa", {"groups": ["secp521r1"]}),
    ("java", "ffdhe"): ("rsa", {"groups": ["ffdhe2048"]}),
}


@pytest.mark.parametrize("kind,family", sorted(GROUP_CONFIG))
def test_groups_only(lab, kind, family):
    which, options = GROUP_CONFIG[(kind, family)]
    files = lab[which]
    with running(SERVERS[kind], files["chain"], files["key"], **options) as server:
        modern = s_client(server, *MODERN, ca=files["ca"])
        # JSSE answers "no common named group" with unexpected_message, the others with
        # handshake_failure; all of them right after the ClientHello (no HelloRetryRequest)
        assert_refused_after_hello(modern, server, "unexpected_message" if kind == "java" else "handshake_failure")
        if kind == "java":
            assert server.wait_for("No common named group"), server.log()
        if kind == "nginx":
            assert server.wait_for("no suitable key share"), server.log()
        # OpenSSL's default client lists P-521 and FFDHE but sends an X25519 key share:
        # the server asks again with a HelloRetryRequest (s_client prints it as ServerHello)
        default = s_client(server, ca=files["ca"])
        assert default.ok and default.version == "TLSv1.3", detail(default, server)
        assert default.flow[:4] == [">ClientHello", "<ServerHello", ">ChangeCipherSpec", ">ClientHello"], \
            detail(default, server)


# --------------------------------------------------------------------------- client certificates

# (kind, version) -> the alert a client without a certificate gets after its Finished
# (None: no alert, the handshake completes and nginx answers HTTP 400)
CLIENT_CERT_ALERT = {
    ("openssl", "1.3"): "certificate_required",
    ("openssl", "1.2"): "handshake_failure",
    ("gnutls", "1.3"): "certificate_required",
    ("gnutls", "1.2"): "decode_error",
    ("java", "1.3"): "bad_certificate",
    ("java", "1.2"): "bad_certificate",
    ("nginx", "1.3"): None,
    ("nginx", "1.2"): None,
}


@pytest.mark.parametrize("kind,version", sorted(CLIENT_CERT_ALERT))
def test_client_certificate_required(lab, kind, version):
    files, client = lab["ecdsa"], lab["client"]
    if kind == "java":
        cm = running(java_server, files["chain"], files["key"], tls=(version,), client_auth="need",
                     client_ca=files["client_ca"])
    else:
        cm = running(SERVERS[kind], files["chain"], files["key"], tls=(version,),
                     client_ca=files["client_ca"], verify_client="require")
    with cm as server:
        h = s_client(server, *MODERN, ca=files["ca"])
        assert "<CertificateRequest" in h.flow, detail(h, server)
        # the client answers with an empty Certificate and finishes its side
        assert ">Certificate" in h.flow and ">Finished" in h.flow, detail(h, server)
        alert = CLIENT_CERT_ALERT[(kind, version)]
        if alert is None:
            assert h.alert == "close_notify" and h.http_status == "400 Bad Request", detail(h, server)
            assert "No required SSL certificate was sent" in h.out, detail(h, server)
            assert server.wait_for("client sent no required SSL certificate"), server.log()
        else:
            assert h.alert == alert and h.before_alert[-1] == ">Finished", detail(h, server)
            assert h.http_status is None and h.rc != 0, detail(h, server)
        if kind == "java":
            assert server.wait_for("Empty client certificate chain"), server.log()
        if kind == "gnutls" and version == "1.2":
            assert server.wait_for("No certificate was found"), server.log()
        # with the lab's client certificate (and its intermediate) it works
        with_cert = s_client(server, *MODERN, ca=files["ca"], cert=client)
        assert with_cert.ok and ">CertificateVerify" in with_cert.flow, detail(with_cert, server)
        assert with_cert.version == f"TLSv{version}", detail(with_cert, server)
        if kind == "nginx":
            assert "client_verify=SUCCESS" in with_cert.out, detail(with_cert, server)


# --------------------------------------------------------------------------- SNI required

@pytest.mark.parametrize("kind", ["nginx", "openssl", "gnutls"])
def test_sni_required(lab, kind):
    files = lab["ecdsa"]
    with running(SERVERS[kind], files["chain"], files["key"], sni_required_name="localhost") as server:
        no_sni = s_client(server, ca=files["ca"], servername=None)
        if kind == "nginx":
            # ssl_reject_handshake on the default server: fatal unrecognized_name
            assert_refused_after_hello(no_sni, server, "unrecognized_name")
            assert server.wait_for("handshake rejected"), server.log()
        else:
            # s_server -servername_fatal / gnutls-serv --sni-hostname-fatal only check a
            # name that is sent: without SNI the handshake goes ahead
            assert no_sni.ok, detail(no_sni, server)
        other = s_client(server, ca=files["ca"], servername="other.test")
        assert_refused_after_hello(other, server, "unrecognized_name")
        matching = s_client(server, ca=files["ca"])
        assert matching.ok and matching.version == "TLSv1.3", detail(matching, server)


# --------------------------------------------------------------------------- Java versions

def test_java_tls12_only(lab):
    files = lab["ecdsa"]
    with running(java_server, files["chain"], files["key"], tls=("1.2",)) as server:
        # a client offering 1.2 and 1.3 simply gets TLS 1.2
        modern = s_client(server, *MODERN, ca=files["ca"])
        assert modern.ok and modern.version == "TLSv1.2", detail(modern, server)
        # a TLS 1.3-only client is refused right after its ClientHello
        h = s_client(server, "-tls1_3", ca=files["ca"])
        assert_refused_after_hello(h, server, "protocol_version")
        assert server.wait_for("not accepted by server preferences [TLSv1.2]"), server.log()


# --------------------------------------------------------------------------- not TLS

def _client_hello() -> bytes:
    """A real ClientHello (Python ssl, in memory) to send to the non-TLS listeners."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _exchange(server, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        return got


@pytest.mark.parametrize("factory,first", [
    (plain_http_server, b"HTTP/1.1 400 Bad Request\r\n"),
    (banner_server, b"220 mail.example ESMTP\r\n"),
    (ssh_like_server, b"SSH-2.0-OpenSSH_9.2\r\n"),
    (garbage_server, None),
])
def test_not_tls(lab, factory, first):
    with running(factory) as server:
        assert_loopback_only(server)
        reply = _exchange(server, _client_hello())
        if first is None:
            assert len(reply) == 512 and not 20 <= reply[0] <= 24, reply[:16]
        else:
            assert reply.startswith(first), reply[:100]
        # OpenSSL: "wrong version number" for text; random bytes whose first byte has the
        # high bit set read as an SSLv2 header, and give "packet length too long" instead
        errors = "WRONG_VERSION_NUMBER" if first else "WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG"
        with pytest.raises(ssl.SSLError, match=errors):
            python_get(server, lab["ecdsa"]["ca"], timeout=5)
        h = s_client(server, ca=lab["ecdsa"]["ca"], timeout=15)
        assert h.rc != 0 and h.flow == [">ClientHello"], detail(h, server)
        assert re.search(errors.lower().replace("_", " "), h.err), detail(h, server)
        assert server.wait_for("read "), server.log()


def test_banner_reply_and_ssh_close(lab):
    with running(banner_server) as server:
        assert _exchange(server, b"\x16\x03\x01\x00\x05hello") == \
            b"220 mail.example ESMTP\r\n500 5.5.2 Error: command not recognized\r\n"
    with running(ssh_like_server) as server:
        assert _exchange(server, b"\x16\x03\x01\x00\x05hello") == b"SSH-2.0-OpenSSH_9.2\r\n"


def test_silent_server_times_out(lab):
    with running(silent_server) as server:
        start = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):
            python_get(server, lab["ecdsa"]["ca"], timeout=1.5)
        assert time.monotonic() - start < 5
        # it read the ClientHello, answered nothing, and saw the client give up
        assert server.wait_for("client closed after sending"), server.log()
        assert "sent" not in server.log().replace("client closed after sending", "")


def test_reset_server_resets(lab):
    with running(reset_server) as server:
        with pytest.raises(ConnectionResetError):
            python_get(server, lab["ecdsa"]["ca"], timeout=5)
        assert server.wait_for("RST"), server.log()


def test_closed_port_refuses():
    port = closed_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --------------------------------------------------------------------------- the harness itself

def test_peer_missing(lab, monkeypatch, tmp_path):
    """A missing binary is a PeerMissing naming it (tests skip on it)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PeerMissing) as info:
        with openssl_server(lab["ecdsa"]["chain"], lab["ecdsa"]["key"]):
            pass
    assert info.value.name == "openssl" and "openssl" in str(info.value)
    with pytest.raises(PeerMissing) as info:
        with gnutls_server(lab["ecdsa"]["chain"], lab["ecdsa"]["key"]):
            pass
    assert info.value.name == "gnutls-serv"


def test_bad_versions_rejected(lab):
    with pytest.raises(ValueError, match="subset"):
        with openssl_server(lab["ecdsa"]["chain"], lab["ecdsa"]["key"], tls=("1.4",)):
            pass


def test_start_failure_is_reported(lab, tmp_path):
    """A server that cannot start raises ServerFailed with its output, and leaves nothing behind."""
    if shutil.which("openssl") is None:
        pytest.skip("peer missing: `openssl`")
    with pytest.raises(realservers.ServerFailed, match="s_server did not start"):
        with openssl_server(lab["ecdsa"]["chain"], tmp_path / "no-such-key.pem"):
            pass
