"""tlslab against tlslite-ng (a pure-Python TLS 1.3/1.2 implementation) on loopback.

Both directions, TLS 1.3 and TLS 1.2:

* tlslite-ng client (``TLSConnection.handshakeClientCert``) → tlslab server (a
  ``ServerConnection`` in a thread, ``TlslabServer`` from test_interop_openssl).
* tlslab client (``run_client`` from test_interop_openssl) → tlslite-ng server
  (``TLSConnection.handshakeServer`` in a thread, defined here).

Each test exchanges an HTTP-like request and answer in both directions and checks that
both sides agree on what was negotiated: version, cipher suite, group, HelloRetryRequest,
resumption, extended master secret (RFC 7627) and encrypt-then-MAC (RFC 7366).

Only 127.0.0.1 is used; every socket has a timeout and every thread is joined with one.
tlslite-ng is an optional test dependency (``pip install tlslite-ng``, in the ``test``
extras): without it the module is skipped.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

tlslite_api = pytest.importorskip("tlslite.api", reason="tlslite-ng is not installed "
                                  "(pip install tlslite-ng, or the project's test extras)")
from tlslite.api import (HandshakeSettings, SessionCache, TLSConnection,  # noqa: E402
                         X509CertChain, parsePEMKey)

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402

from test_interop_openssl import (HTTP_GET, TlslabServer, http_response,  # noqa: E402
                                  run_client, server_config)
from tlslab.proto.config import ClientConfig  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]

HOST = "127.0.0.1"
IO_TIMEOUT = 10.0
TLS13, TLS12 = (3, 4), (3, 3)

# tlslite-ng cipher name -> (IANA name as tlslab reports it, per key exchange)
SUITES13 = {
    "aes128gcm": "TLS_AES_128_GCM_SHA256",
    "aes256gcm": "TLS_AES_256_GCM_SHA384",
    "chacha20-poly1305": "TLS_CHACHA20_POLY1305_SHA256",
}


# --------------------------------------------------------------------------- helpers

_TLS12_BRAINPOOL = ("brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1")


def settings(version: tuple[int, int], *, ciphers: list[str] | None = None,
             kex: list[str] | None = None, groups: list[str] | None = None,
             key_shares: list[str] | None = None, etm: bool = True, ems: bool = True,
             macs: list[str] | None = None) -> HandshakeSettings:
    """A tlslite-ng HandshakeSettings pinned to one protocol version."""
    s = HandshakeSettings()
    s.minVersion = s.maxVersion = version
    if ciphers is not None:
        s.cipherNames = list(ciphers)
    if kex is not None:
        s.keyExchangeNames = list(kex)
    if macs is not None:
        s.macNames = list(macs)
    if groups is not None:
        s.eccCurves = [g for g in groups if not g.startswith("ffdhe")]
        s.dhGroups = [g for g in groups if g.startswith("ffdhe")] or s.dhGroups
    elif version == TLS13:
        # tlslite-ng's default list has the TLS 1.2 brainpool curves (0x1A-0x1C) even in a
        # TLS 1.3 ClientHello; RFC 8446 §4.2.7 forbids offering them and the tlslab server
        # answers illegal_parameter (test_tlslite_client_tls13_obsolete_groups_refused)
        s.eccCurves = [g for g in s.eccCurves if g not in _TLS12_BRAINPOOL]
    if key_shares is not None:
        s.keyShares = list(key_shares)
    elif groups is not None:
        s.keyShares = [g for g in ("x25519", "secp256r1") if g in groups][:1] or groups[:1]
    else:
        s.keyShares = ["x25519"]  # no ML-KEM hybrid share unless a test asks for it
    s.useEncryptThenMAC = etm
    s.useExtendedMasterSecret = ems
    return s


def leaf_fingerprint(certs_dir: Path, key_type: str) -> str:
    leaf = x509.load_pem_x509_certificates((certs_dir / f"{key_type}-chain.pem").read_bytes())[0]
    return leaf.fingerprint(hashes.SHA1()).hex()


@dataclass
class TlsliteClientResult:
    """What tlslite-ng negotiated, read before ``close()`` (which resets the connection)."""

    conn: TLSConnection
    data: bytes = b""
    version: tuple = ()
    resumed: bool = False
    cipher: str = ""
    ems: bool = False
    etm: bool = False


def tlslite_client(port: int, hs: HandshakeSettings, session=None,
                   request: bytes = HTTP_GET, timeout: float = IO_TIMEOUT) -> TlsliteClientResult:
    """Handshake, send ``request``, read until the server closes, close."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        conn = TLSConnection(sock)
        conn.handshakeClientCert(settings=hs, session=session, serverName="localhost")
        result = TlsliteClientResult(conn, version=tuple(conn.version), resumed=bool(conn.resumed),
                                     cipher=conn.getCipherName(),
                                     ems=bool(conn.extendedMasterSecret),
                                     etm=bool(conn._recordLayer.encryptThenMAC))
        conn.write(request)
        data = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = conn.read()
            except Exception:  # abrupt close after the answer: the data is what matters
                break
            if not chunk:
                break
            data += chunk
        try:
            conn.close()
        except Exception:
            pass
        result.data = bytes(data)
        return result
    finally:
        sock.close()


def check_tlslite_client(result: TlsliteClientResult, server: TlslabServer, certs_dir: Path,
                         key_type: str, version: tuple[int, int], suite: str | None = None,
                         group: str | None = None, hello_retry: bool | None = None,
                         resumed: bool = False) -> None:
    served = server.served[-1]
    detail = served.describe()
    assert served.exception is None, detail
    assert served.complete is not None, detail
    assert served.request.startswith(b"GET / HTTP/1.0"), detail
    assert result.data.startswith(b"HTTP/1.1 200 OK"), (result.data[:200], detail)
    assert b"tlslab says hello" in result.data
    n = served.conn.negotiated
    assert result.version == version
    assert n["version"] == {TLS13: "TLS 1.3", TLS12: "TLS 1.2"}[version]
    assert f"version={n['version']}".encode() in result.data
    if suite is not None:
        assert n["cipher_suite"] == suite, detail
    if group is not None:
        assert n["group"] == group, detail
    if hello_retry is not None:
        assert n["hello_retry"] is hello_retry, detail
    assert result.resumed is resumed, detail
    if not resumed:
        # the certificate tlslite-ng received is our leaf
        chain = result.conn.session.serverCertChain
        assert chain.getFingerprint() == leaf_fingerprint(certs_dir, key_type)


# --------------------------------------------------------------------------- tlslite-ng server

@dataclass
class TlsliteServed:
    conn: TLSConnection | None = None
    request: bytes = b""
    exception: BaseException | None = None


class TlsliteServer:
    """tlslite-ng ``handshakeServer`` per accepted connection, in a background thread.

    Reads until an HTTP request head arrived, answers with a page naming the version and
    cipher it negotiated, sends close_notify and closes.
    """

    def __init__(self, certs_dir: Path, hs: HandshakeSettings, key_type: str = "rsa",
                 connections: int = 1, session_cache: SessionCache | None = None,
                 timeout: float = IO_TIMEOUT) -> None:
        self.chain = X509CertChain()
        self.chain.parsePemList((certs_dir / f"{key_type}-chain.pem").read_text())
        self.key = parsePEMKey((certs_dir / f"{key_type}.key").read_text(), private=True)
        self.settings = hs
        self.session_cache = session_cache
        self.timeout = timeout
        self.remaining = connections
        self.served: list[TlsliteServed] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(4)
        self.listener.settimeout(timeout)
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, name=f"tlslite-server-{self.port}",
                                       daemon=True)

    def __enter__(self) -> "TlsliteServer":
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
            served = TlsliteServed()
            self.served.append(served)
            sock.settimeout(self.timeout)
            try:
                conn = served.conn = TLSConnection(sock)
                conn.handshakeServer(certChain=self.chain, privateKey=self.key,
                                     settings=self.settings, sessionCache=self.session_cache)
                request = bytearray()
                while b"\r\n\r\n" not in request:
                    chunk = conn.read()
                    if not chunk:
                        break
                    request += chunk
                served.request = bytes(request)
                body = (f"tlslite-ng says hello\nversion={conn.getVersionName()}\n"
                        f"cipher={conn.getCipherName()}\nresumed={conn.resumed}\n").encode()
                conn.write(http_response(body))
                conn.close()
            except BaseException as exc:  # reported by the test
                served.exception = exc
            finally:
                sock.close()


def tlslab_client_config(certs_dir: Path, **options) -> ClientConfig:
    options.setdefault("server_name", "localhost")
    return ClientConfig(ca_file=str(certs_dir / "ca.pem"), **options)


def check_tlslab_client(result, server: TlsliteServer, version: str, suite: str | None = None,
                        group: str | None = None, hello_retry: bool | None = None,
                        resumed: bool = False, **expected) -> None:
    served = server.served[-1]
    detail = f"{result.describe()}\ntlslite-ng server: {served.exception!r}"
    assert served.exception is None, detail
    assert result.complete is not None, detail
    assert result.conn.error is None, detail
    n = result.conn.negotiated
    assert n["version"] == version, detail
    if suite is not None:
        assert n["cipher_suite"] == suite, detail
    if group is not None:
        assert n["group"] == group, detail
    if hello_retry is not None:
        assert n["hello_retry"] is hello_retry, detail
    assert bool(n.get("resumed")) is resumed, detail
    for key, value in expected.items():
        assert n.get(key) == value, f"negotiated {key}={n.get(key)!r}, expected {value!r}\n{detail}"
    if not resumed:
        assert result.verified, detail
    assert served.request.startswith(b"GET / HTTP/1.0"), detail
    assert result.data.startswith(b"HTTP/1.1 200 OK"), (result.data[:200], detail)
    assert b"tlslite-ng says hello" in result.data
    assert {"TLS 1.3": b"version=TLS 1.3", "TLS 1.2": b"version=TLS 1.2"}[version] in result.data
    if version == "TLS 1.2":
        # (tlslite-ng's TLS 1.3 server reports resumed=False even after a PSK handshake)
        assert b"resumed=" + str(resumed).encode() in result.data
    if resumed:
        received = [e.name for e in result.conn.trace.entries
                    if e.kind == "message" and e.direction == "received"]
        assert "Certificate" not in received, received


# =========================================================================== TLS 1.3

@pytest.mark.parametrize("group", ["x25519", "secp256r1"])
@pytest.mark.parametrize("cipher", list(SUITES13))
def test_tlslite_client_tls13(certs_dir, cipher, group):
    with TlslabServer(server_config(certs_dir, key_type="rsa")) as server:
        result = tlslite_client(server.port, settings(TLS13, ciphers=[cipher], groups=[group]))
    check_tlslite_client(result, server, certs_dir, "rsa", TLS13, suite=SUITES13[cipher],
                         group=group, hello_retry=False)


def test_tlslite_client_tls13_ecdsa(certs_dir):
    with TlslabServer(server_config(certs_dir, key_type="ecdsa")) as server:
        result = tlslite_client(server.port, settings(TLS13, groups=["x25519", "secp256r1"]))
    check_tlslite_client(result, server, certs_dir, "ecdsa", TLS13, group="x25519")
    assert server.served[0].conn.negotiated["signature_scheme"] == "ecdsa_secp256r1_sha256"


def test_tlslite_client_tls13_hello_retry_request(certs_dir):
    """tlslite-ng sends an X25519 share, the tlslab server only accepts P-256 → HRR."""
    config = server_config(certs_dir, key_type="rsa", groups=["secp256r1"])
    with TlslabServer(config) as server:
        hs = settings(TLS13, groups=["x25519", "secp256r1"], key_shares=["x25519"])
        result = tlslite_client(server.port, hs)
    check_tlslite_client(result, server, certs_dir, "rsa", TLS13, group="secp256r1", hello_retry=True)


def test_tlslite_client_tls13_cookie_hrr(certs_dir):
    with TlslabServer(server_config(certs_dir, key_type="rsa", cookie_hrr=True)) as server:
        result = tlslite_client(server.port, settings(TLS13, groups=["x25519"]))
    check_tlslite_client(result, server, certs_dir, "rsa", TLS13, group="x25519", hello_retry=True)


def test_tlslite_client_tls13_obsolete_groups_refused(certs_dir):
    """tlslite-ng's default groups put brainpoolP256r1/384r1/512r1 (TLS 1.2 code points,
    obsolete in TLS 1.3) in its TLS 1.3 ClientHello: illegal_parameter (RFC 8446 §4.2.7)."""
    from tlslite.errors import TLSRemoteAlert
    hs = settings(TLS13)
    hs.eccCurves = HandshakeSettings().eccCurves  # tlslite-ng's own default, brainpool included
    with TlslabServer(server_config(certs_dir, key_type="rsa")) as server:
        with pytest.raises(TLSRemoteAlert, match="illegal_parameter"):
            tlslite_client(server.port, hs)
    assert "obsolete" in str(server.served[0].conn.error)


def test_tlslite_client_tls13_resumption(certs_dir):
    """A ticket from the first connection resumes the second (RFC 8446 §2.2)."""
    config = server_config(certs_dir, key_type="rsa")
    with TlslabServer(config, connections=2) as server:
        first = tlslite_client(server.port, settings(TLS13))
        assert first.conn.session is not None and first.conn.session.tickets, "no ticket received"
        second = tlslite_client(server.port, settings(TLS13), session=first.conn.session)
    assert server.served[0].complete is not None, server.served[0].describe()
    assert not first.resumed
    check_tlslite_client(second, server, certs_dir, "rsa", TLS13, resumed=True)
    assert server.served[1].conn.negotiated["resumed"] is True


@pytest.mark.parametrize("group", ["x25519", "secp256r1"])
@pytest.mark.parametrize("suite", list(SUITES13.values()))
def test_tlslab_client_tls13(certs_dir, suite, group):
    with TlsliteServer(certs_dir, settings(TLS13)) as server:
        result = run_client(tlslab_client_config(certs_dir, versions=["1.3"], cipher_suites=[suite],
                                                 groups=[group]), server.port)
    check_tlslab_client(result, server, "TLS 1.3", suite=suite, group=group, hello_retry=False)


def test_tlslab_client_tls13_ecdsa(certs_dir):
    with TlsliteServer(certs_dir, settings(TLS13), key_type="ecdsa") as server:
        result = run_client(tlslab_client_config(certs_dir, versions=["1.3"]), server.port)
    check_tlslab_client(result, server, "TLS 1.3", signature_scheme="ecdsa_secp256r1_sha256")


def test_tlslab_client_tls13_hello_retry_request(certs_dir):
    """The tlslab client sends an X25519 share; tlslite-ng only accepts P-256 → HRR."""
    with TlsliteServer(certs_dir, settings(TLS13, groups=["secp256r1"])) as server:
        config = tlslab_client_config(certs_dir, versions=["1.3"], groups=["x25519", "secp256r1"],
                                      key_share_groups=["x25519"])
        result = run_client(config, server.port)
    check_tlslab_client(result, server, "TLS 1.3", group="secp256r1", hello_retry=True)


def test_tlslab_client_tls13_resumption(certs_dir):
    hs = settings(TLS13)
    hs.ticketKeys = [bytes(range(32))]  # tlslite-ng issues tickets only with ticket keys
    with TlsliteServer(certs_dir, hs, connections=2) as server:
        config = tlslab_client_config(certs_dir, versions=["1.3"])
        first = run_client(config, server.port)
        check_tlslab_client(first, server, "TLS 1.3")
        assert config.session_store.count("localhost") > 0, "no ticket stored"
        second = run_client(config, server.port)
    check_tlslab_client(second, server, "TLS 1.3", resumed=True)


# =========================================================================== TLS 1.2

# (id, tlslite kex, tlslite cipher, tlslite mac, IANA suite)
SUITES12 = [
    ("ecdhe-rsa-aes128-gcm", "ecdhe_rsa", "aes128gcm", "aead", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ecdhe-rsa-aes256-gcm", "ecdhe_rsa", "aes256gcm", "aead", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ecdhe-rsa-chacha20", "ecdhe_rsa", "chacha20-poly1305", "aead",
     "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ecdhe-rsa-aes128-cbc-sha", "ecdhe_rsa", "aes128", "sha", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    ("ecdhe-rsa-aes128-cbc-sha256", "ecdhe_rsa", "aes128", "sha256",
     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    ("dhe-rsa-aes128-gcm", "dhe_rsa", "aes128gcm", "aead", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("dhe-rsa-aes256-cbc-sha", "dhe_rsa", "aes256", "sha", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    ("rsa-aes128-gcm", "rsa", "aes128gcm", "aead", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    ("rsa-aes256-cbc-sha256", "rsa", "aes256", "sha256", "TLS_RSA_WITH_AES_256_CBC_SHA256"),
]


def _suite_params():
    """Every suite; CBC suites twice, with and without encrypt-then-MAC (RFC 7366 only
    changes CBC records)."""
    out = []
    for name, kex, cipher, mac, iana in SUITES12:
        for etm in ((True, False) if _is_cbc(iana) else (True,)):
            label = name + ("" if not _is_cbc(iana) else ("-etm" if etm else "-no-etm"))
            out.append(pytest.param(kex, cipher, mac, iana, etm, id=label))
    return out


def _is_cbc(iana: str) -> bool:
    return "_CBC_" in iana


@pytest.mark.parametrize("kex, cipher, mac, suite, etm", _suite_params())
def test_tlslite_client_tls12(certs_dir, kex, cipher, mac, suite, etm):
    # static RSA is not in a server's defaults: name the suite
    with TlslabServer(server_config(certs_dir, key_type="rsa", cipher_suites=[suite])) as server:
        hs = settings(TLS12, kex=[kex], ciphers=[cipher], macs=[mac], etm=etm,
                      groups=["x25519", "secp256r1", "ffdhe2048"])
        result = tlslite_client(server.port, hs)
    check_tlslite_client(result, server, certs_dir, "rsa", TLS12, suite=suite)
    n = server.served[0].conn.negotiated
    assert n["extended_master_secret"] is True and result.ems
    # RFC 7366 §2: encrypt-then-MAC is used only with CBC suites
    assert n["encrypt_then_mac"] is (etm and _is_cbc(suite))
    assert result.etm is (etm and _is_cbc(suite))


def test_tlslite_client_tls12_ecdhe_ecdsa(certs_dir):
    with TlslabServer(server_config(certs_dir, key_type="ecdsa")) as server:
        hs = settings(TLS12, kex=["ecdhe_ecdsa"], ciphers=["aes128gcm"], groups=["secp256r1"])
        result = tlslite_client(server.port, hs)
    check_tlslite_client(result, server, certs_dir, "ecdsa", TLS12,
                         suite="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", group="secp256r1")


def test_tlslite_client_tls12_without_ems(certs_dir):
    """A client that does not offer EMS (RFC 7627) still gets a handshake, with the legacy
    master secret."""
    with TlslabServer(server_config(certs_dir, key_type="rsa")) as server:
        hs = settings(TLS12, kex=["ecdhe_rsa"], ciphers=["aes128gcm"], ems=False)
        result = tlslite_client(server.port, hs)
    check_tlslite_client(result, server, certs_dir, "rsa", TLS12)
    assert server.served[0].conn.negotiated["extended_master_secret"] is False
    assert not result.ems


@pytest.mark.parametrize("ems", [True, False], ids=["ems", "no-ems"])
def test_tlslite_client_tls12_session_id_resumption(certs_dir, ems):
    """RFC 5246 §7.3: the second connection offers the first one's session ID."""
    config = server_config(certs_dir, key_type="rsa", tickets=0)
    with TlslabServer(config, connections=2) as server:
        hs = settings(TLS12, kex=["ecdhe_rsa"], ciphers=["aes128gcm"], ems=ems)
        first = tlslite_client(server.port, hs)
        assert first.conn.session.sessionID, "the server gave no session ID"
        second = tlslite_client(server.port, hs, session=first.conn.session)
    assert not first.resumed
    check_tlslite_client(second, server, certs_dir, "rsa", TLS12, resumed=True)
    assert second.conn.session.sessionID == first.conn.session.sessionID
    assert server.served[1].conn.negotiated["extended_master_secret"] is ems


@pytest.mark.parametrize("kex, cipher, mac, suite, etm", _suite_params())
def test_tlslab_client_tls12(certs_dir, kex, cipher, mac, suite, etm):
    hs = settings(TLS12, kex=[kex], ciphers=[cipher], macs=[mac], etm=etm,
                  groups=["x25519", "secp256r1", "ffdhe2048"])
    with TlsliteServer(certs_dir, hs) as server:
        result = run_client(tlslab_client_config(certs_dir, versions=["1.2"], cipher_suites=[suite]),
                            server.port)
    check_tlslab_client(result, server, "TLS 1.2", suite=suite,
                        extended_master_secret=True,
                        encrypt_then_mac=etm and _is_cbc(suite))
    assert server.served[0].conn.extendedMasterSecret


def test_tlslab_client_tls12_ecdhe_ecdsa(certs_dir):
    with TlsliteServer(certs_dir, settings(TLS12), key_type="ecdsa") as server:
        suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        result = run_client(tlslab_client_config(certs_dir, versions=["1.2"], cipher_suites=[suite]),
                            server.port)
    check_tlslab_client(result, server, "TLS 1.2", suite=suite)


def test_tlslab_client_tls12_server_without_ems(certs_dir):
    """tlslite-ng configured without EMS: the handshake still completes without it."""
    hs = settings(TLS12, ems=False)
    with TlsliteServer(certs_dir, hs) as server:
        result = run_client(tlslab_client_config(certs_dir, versions=["1.2"]), server.port)
    check_tlslab_client(result, server, "TLS 1.2", extended_master_secret=False)


def test_tlslab_client_tls12_session_id_resumption(certs_dir):
    """tlslite-ng with a session cache and no tickets: the tlslab client resumes by
    session ID (RFC 5246 §7.3)."""
    with TlsliteServer(certs_dir, settings(TLS12), connections=2,
                       session_cache=SessionCache()) as server:
        config = tlslab_client_config(certs_dir, versions=["1.2"])
        first = run_client(config, server.port)
        check_tlslab_client(first, server, "TLS 1.2")
        second = run_client(config, server.port)
    check_tlslab_client(second, server, "TLS 1.2", resumed=True)
    assert server.served[1].conn.resumed
