"""Post-quantum hybrid key exchange (draft-ietf-tls-ecdhe-mlkem): X25519MLKEM768 and
SecP256r1MLKEM768.

Unit tests check the share layouts and that every defect in a hybrid share is an
``illegal_parameter`` (draft §3.1: "abort with an illegal_parameter alert").  Interop tests
run tlslab against a real implementation: OpenSSL (3.5+ negotiates X25519MLKEM768 by
default) through pyOpenSSL, on 127.0.0.1 only, in both directions, including a
HelloRetryRequest that moves the handshake from x25519 to the hybrid.

pyOpenSSL is a test-only dependency (``pip install -e .[test]``); without it, or on a
``cryptography``/OpenSSL without ML-KEM, the tests skip and say why.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
from pathlib import Path

import pytest

import tlslab
from tlslab.io.blocking import make_server
from tlslab.proto import groups
from tlslab.proto.errors import IllegalParameter
from tlslab.proto.groups import new_key_share, server_key_share
from tlslab.proto.provider import Provider

try:
    from OpenSSL import SSL
    from OpenSSL._util import lib as _ossl_lib
except ImportError:  # pragma: no cover - depends on the environment
    SSL = None
    _ossl_lib = None

X25519MLKEM768 = 0x11EC
SECP256R1MLKEM768 = 0x11EB
HAVE_P256_HYBRID = groups.HAVE_MLKEM and SECP256R1MLKEM768 in groups.SUPPORTED_GROUPS

CERTS = Path(os.environ.get("TLSLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "peers" / "certs"


def _certs() -> Path:
    """The shared test PKI; the test skips when the shared data is not there."""
    if not (CERTS / "ecdsa-chain.pem").is_file():
        pytest.skip(f"shared test PKI not found at {CERTS} "
                    "(put shared/ beside the repository or set TLSLAB_SHARED)")
    return CERTS
TIMEOUT = 10.0  # seconds: bounds every socket operation of a test

needs_mlkem = pytest.mark.skipif(
    not groups.HAVE_MLKEM, reason="this cryptography/OpenSSL build has no ML-KEM-768")
needs_p256_hybrid = pytest.mark.skipif(
    not HAVE_P256_HYBRID, reason="SecP256r1MLKEM768 is not supported by this tlslab/cryptography")


def _share(group: int):
    return new_key_share(group, Provider())


# ------------------------------------------------------------------- share layouts

@needs_mlkem
def test_x25519mlkem768_share_sizes():
    # draft §3.1: client = ML-KEM-768 ek (1184) || X25519 (32); server = ct (1088) || X25519 (32)
    share = _share(X25519MLKEM768)
    server_public, secret = server_key_share(X25519MLKEM768, share.public, Provider())
    assert (len(share.public), len(server_public), len(secret)) == (1216, 1120, 64)
    assert share.shared_secret(server_public) == secret
    kem_key, ecdh_key = share.private_key
    assert share.public[:1184] == kem_key.public_key().public_bytes_raw()
    assert share.public[1184:] == ecdh_key.public_key().public_bytes_raw()
    # shared secret = ML-KEM secret || X25519 secret: the ML-KEM half decapsulates
    assert secret[:32] == kem_key.decapsulate(server_public[:1088])


@needs_p256_hybrid
def test_secp256r1mlkem768_share_sizes_and_order():
    # draft §3.1: the ECDH half comes first in both shares and in the secret
    share = _share(SECP256R1MLKEM768)
    server_public, secret = server_key_share(SECP256R1MLKEM768, share.public, Provider())
    assert (len(share.public), len(server_public), len(secret)) == (1249, 1153, 64)
    assert share.shared_secret(server_public) == secret
    kem_key, ecdh_key = share.private_key
    assert share.public[0] == 4 and share.public[65:] == kem_key.public_key().public_bytes_raw()
    assert server_public[0] == 4
    assert secret[32:] == kem_key.decapsulate(server_public[65:])


@needs_mlkem
def test_hybrid_fixed_keys_from_provider():
    """A replay provider's (ML-KEM key, ECDH key) pair is used as is (deterministic shares)."""
    from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
    from tlslab.proto.provider import ReplayProvider
    pair = (mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())
    a = new_key_share(X25519MLKEM768, ReplayProvider(keys={"X25519MLKEM768": [pair]}))
    b = new_key_share(X25519MLKEM768, ReplayProvider(keys={"X25519MLKEM768": [pair]}))
    assert a.public == b.public


# ------------------------------------------------------------------- invalid shares

def _low_order_x25519() -> bytes:
    return bytes(32)  # u = 0: the X25519 result would be all zeros (RFC 7748 §6.1)


@needs_mlkem
@pytest.mark.parametrize("length", [0, 32, 1184, 1215, 1217])
def test_x25519mlkem768_client_share_wrong_length(length):
    with pytest.raises(IllegalParameter):
        server_key_share(X25519MLKEM768, bytes(length), Provider())


@needs_mlkem
@pytest.mark.parametrize("length", [0, 32, 1088, 1119, 1121])
def test_x25519mlkem768_server_share_wrong_length(length):
    with pytest.raises(IllegalParameter):
        _share(X25519MLKEM768).shared_secret(bytes(length))


@needs_mlkem
def test_x25519mlkem768_bad_halves():
    share = _share(X25519MLKEM768)
    # FIPS 203 §7.2 encapsulation key check: 12-bit coefficients 0xFFF are >= q
    with pytest.raises(IllegalParameter):
        server_key_share(X25519MLKEM768, b"\xff" * 1184 + share.public[1184:], Provider())
    with pytest.raises(IllegalParameter):  # client's X25519 half is a low-order point
        server_key_share(X25519MLKEM768, share.public[:1184] + _low_order_x25519(), Provider())
    server_public, _ = server_key_share(X25519MLKEM768, share.public, Provider())
    with pytest.raises(IllegalParameter):  # server's X25519 half is a low-order point
        share.shared_secret(server_public[:1088] + _low_order_x25519())


@needs_p256_hybrid
def test_secp256r1mlkem768_bad_halves():
    share = _share(SECP256R1MLKEM768)
    point, ek = share.public[:65], share.public[65:]
    compressed = bytes([2 + (point[-1] & 1)]) + point[1:33]
    off_curve = point[:-1] + bytes([point[-1] ^ 1])
    for bad in (b"", share.public[:-1], share.public + b"\x00",
                ek + point,                        # X25519MLKEM768's order: ML-KEM first
                off_curve + ek,
                compressed + bytes(32) + ek,       # right length, not an uncompressed point
                point + b"\xff" * 1184):           # ML-KEM key fails the FIPS 203 check
        with pytest.raises(IllegalParameter):
            server_key_share(SECP256R1MLKEM768, bad, Provider())
    server_public, _ = server_key_share(SECP256R1MLKEM768, share.public, Provider())
    spoint, ct = server_public[:65], server_public[65:]
    for bad in (server_public[:-1], server_public + b"\x00", ct + spoint,
                spoint[:-1] + bytes([spoint[-1] ^ 1]) + ct):
        with pytest.raises(IllegalParameter):
            share.shared_secret(bad)


@needs_mlkem
def test_engine_sends_illegal_parameter_for_bad_hybrid_client_share():
    """End to end: the server answers a ClientHello whose ML-KEM key fails the FIPS 203
    check with an illegal_parameter alert and closes."""
    client = tlslab.ClientConnection(tlslab.ClientConfig(server_name="localhost", insecure=True))
    client.start_handshake()
    hello = client.data_to_send()
    ek = client.hs.offer.key_shares[X25519MLKEM768].public[:1184]
    assert hello.count(ek) == 1
    hello = hello.replace(ek, b"\xff\xff\xff" + ek[3:])  # same length, invalid coefficients
    server = tlslab.ServerConnection(tlslab.ServerConfig.from_files(
        str(_certs() / "ecdsa-chain.pem"), str(_certs() / "ecdsa.key")))
    events = server.receive_data(hello)
    closed = [e for e in events if isinstance(e, tlslab.ConnectionClosed)]
    assert closed and closed[0].alert_sent == "illegal_parameter"
    assert isinstance(server.error, IllegalParameter)


@needs_mlkem
def test_engine_client_rejects_low_order_x25519_in_hybrid_server_share():
    client = tlslab.ClientConnection(tlslab.ClientConfig(server_name="localhost", insecure=True))
    server = tlslab.ServerConnection(tlslab.ServerConfig.from_files(
        str(_certs() / "ecdsa-chain.pem"), str(_certs() / "ecdsa.key")))
    client.start_handshake()
    server.receive_data(client.data_to_send())
    assert server.negotiated["group"] == "X25519MLKEM768"
    flight = server.data_to_send()
    x_half = flight[flight.index(b"\x11\xec\x04\x60") + 4 + 1088:][:32]  # group, len 1120
    assert flight.count(x_half) == 1
    events = client.receive_data(flight.replace(x_half, _low_order_x25519()))
    closed = [e for e in events if isinstance(e, tlslab.ConnectionClosed)]
    assert closed and closed[0].alert_sent == "illegal_parameter"


# ------------------------------------------------------------------- interop: pyOpenSSL

def _pyopenssl_skip_reason() -> str | None:
    if SSL is None:
        return "pyOpenSSL is not installed (pip install pyOpenSSL, or pip install -e .[test])"
    if not groups.HAVE_MLKEM:
        return "this cryptography build has no ML-KEM, so tlslab cannot offer X25519MLKEM768"
    ctx = SSL.Context(SSL.TLS_METHOD)
    if _ossl_lib is None or not hasattr(_ossl_lib, "SSL_CTX_set1_curves_list"):
        return "pyOpenSSL's binding has no SSL_CTX_set1_curves_list to restrict groups"
    if _ossl_lib.SSL_CTX_set1_curves_list(ctx._context, b"X25519MLKEM768") != 1:
        version = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()
        return f"{version} (used by pyOpenSSL) does not know X25519MLKEM768 (needs OpenSSL 3.5+)"
    return None


_SKIP = _pyopenssl_skip_reason()
needs_pyopenssl = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def _set_groups(ctx, names: str) -> None:
    """``SSL_CTX_set1_groups_list`` (pyOpenSSL has no public wrapper; set1_curves_list is
    the same OpenSSL call under its older name)."""
    if _ossl_lib.SSL_CTX_set1_curves_list(ctx._context, names.encode()) != 1:
        pytest.skip(f"OpenSSL refuses the group list {names!r}")


def _bounded(sock: socket.socket) -> socket.socket:
    """Blocking socket (pyOpenSSL needs one) whose reads and writes give up after TIMEOUT."""
    sock.setblocking(True)
    tv = struct.pack("ll", int(TIMEOUT), 0)  # struct timeval on LP64 (Linux)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    except OSError:  # another timeval layout: pytest-timeout still bounds the test
        pass
    return sock


def _group_name(conn) -> str | None:
    getter = getattr(conn, "get_group_name", None)
    return getter() if getter is not None else None


def _server_context(groups_list: str | None = None):
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate_chain_file(str(_certs() / "ecdsa-chain.pem"))
    ctx.use_privatekey_file(str(_certs() / "ecdsa.key"))
    ctx.check_privatekey()
    if groups_list is not None:
        _set_groups(ctx, groups_list)
    return ctx


class _PyOpenSSLServer:
    """One-connection pyOpenSSL server on 127.0.0.1:<ephemeral>: handshake, echo once, close."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.group: str | None = None
        self.version: str | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_PyOpenSSLServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()

    def _run(self) -> None:
        try:
            raw, _ = self.listener.accept()
            conn = SSL.Connection(self.ctx, _bounded(raw))
            conn.set_accept_state()
            try:
                conn.do_handshake()
                self.group = _group_name(conn)
                self.version = conn.get_protocol_version_name()
                conn.sendall(conn.recv(4096))
                conn.shutdown()
            finally:
                conn.close()
                raw.close()
        except BaseException as e:  # reported by the test
            self.error = e


def _tlslab_client(port: int, **options):
    options.setdefault("server_name", "localhost")
    config = tlslab.ClientConfig(ca_file=str(_certs() / "ca.pem"), **options)
    return tlslab.connect("127.0.0.1", port, config=config, timeout=TIMEOUT)


def _echo_through(tls) -> None:
    tls.send(b"ping over a post-quantum hybrid")
    assert tls.recv() == b"ping over a post-quantum hybrid"
    tls.close()


@pytest.mark.interop
@needs_pyopenssl
def test_openssl_is_new_enough_for_pq():
    version = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()
    from cryptography.hazmat.backends.openssl import backend
    assert backend.openssl_version_text() == version  # pyOpenSSL runs on cryptography's OpenSSL


@pytest.mark.interop
@needs_pyopenssl
def test_tlslab_client_to_pyopenssl_server_default_is_x25519mlkem768():
    with _PyOpenSSLServer(_server_context()) as srv:
        tls = _tlslab_client(srv.port)
        n = dict(tls.negotiated)
        _echo_through(tls)
    assert srv.error is None, srv.error
    assert n["version"] == "TLS 1.3" and n["group"] == "X25519MLKEM768"
    assert not n["hello_retry"]
    if srv.group is not None:
        assert srv.group == "X25519MLKEM768"


@pytest.mark.interop
@needs_pyopenssl
def test_pyopenssl_client_to_tlslab_server_default_is_x25519mlkem768():
    server_view = _run_pyopenssl_client(tlslab.ServerConfig.from_files(
        str(_certs() / "ecdsa-chain.pem"), str(_certs() / "ecdsa.key")))
    n, client_group = server_view
    assert n["version"] == "TLS 1.3" and n["group"] == "X25519MLKEM768"
    assert not n["hello_retry"]  # OpenSSL sends X25519MLKEM768 + x25519 shares by default
    if client_group is None:
        pytest.skip("pyOpenSSL has no Connection.get_group_name: "
                    "only the tlslab side of the negotiated group was checked")
    assert client_group == "X25519MLKEM768"


def _run_pyopenssl_client(server_config, groups_list: str | None = None):
    """Connect a pyOpenSSL client to a tlslab server; returns (server negotiated, client group)."""
    seen: list[dict] = []
    failures: list = []

    def handler(tls) -> None:
        seen.append(dict(tls.negotiated))
        tls.send(tls.recv())

    srv = make_server("127.0.0.1", 0, server_config, handler, handshake_timeout=TIMEOUT,
                      io_timeout=TIMEOUT, on_failure=lambda e, peer: failures.append(e),
                      log=lambda line: None)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.load_verify_locations(str(_certs() / "ca.pem"))
        ctx.set_verify(SSL.VERIFY_PEER, lambda *args: args[-1])
        if groups_list is not None:
            _set_groups(ctx, groups_list)
        raw = _bounded(socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT))
        conn = SSL.Connection(ctx, raw)
        conn.set_tlsext_host_name(b"localhost")
        conn.set_connect_state()
        try:
            conn.do_handshake()
            client_group = _group_name(conn)
            assert conn.get_protocol_version_name() == "TLSv1.3"
            conn.sendall(b"hello hybrid")
            assert conn.recv(4096) == b"hello hybrid"
            conn.shutdown()
        finally:
            conn.close()
            raw.close()
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(TIMEOUT)
    assert not failures, failures
    assert len(seen) == 1
    return seen[0], client_group


@pytest.mark.interop
@needs_pyopenssl
@needs_p256_hybrid
def test_tlslab_client_to_pyopenssl_server_secp256r1mlkem768():
    with _PyOpenSSLServer(_server_context("SecP256r1MLKEM768")) as srv:
        tls = _tlslab_client(srv.port, groups=["SecP256r1MLKEM768"])
        n = dict(tls.negotiated)
        _echo_through(tls)
    assert srv.error is None, srv.error
    assert n["group"] == "SecP256r1MLKEM768" and not n["hello_retry"]
    if srv.group is not None:
        assert srv.group == "SecP256r1MLKEM768"


@pytest.mark.interop
@needs_pyopenssl
@needs_p256_hybrid
def test_pyopenssl_client_to_tlslab_server_secp256r1mlkem768():
    config = tlslab.ServerConfig.from_files(
        str(_certs() / "ecdsa-chain.pem"), str(_certs() / "ecdsa.key"),
        groups=["SecP256r1MLKEM768", "X25519MLKEM768", "x25519"])
    n, client_group = _run_pyopenssl_client(config, "SecP256r1MLKEM768")
    assert n["group"] == "SecP256r1MLKEM768"
    if client_group is not None:
        assert client_group == "SecP256r1MLKEM768"


@pytest.mark.interop
@needs_pyopenssl
def test_hello_retry_request_into_x25519mlkem768():
    """tlslab sends only an x25519 share; OpenSSL accepts only the hybrid, so it asks
    for an X25519MLKEM768 share with a HelloRetryRequest (RFC 8446 §4.1.4)."""
    with _PyOpenSSLServer(_server_context("X25519MLKEM768")) as srv:
        tls = _tlslab_client(srv.port, groups=["x25519", "X25519MLKEM768"],
                             key_share_groups=["x25519"])
        n = dict(tls.negotiated)
        _echo_through(tls)
    assert srv.error is None, srv.error
    assert n["hello_retry"] and n["group"] == "X25519MLKEM768"
    if srv.group is not None:
        assert srv.group == "X25519MLKEM768"


@pytest.mark.interop
@needs_pyopenssl
def test_pyopenssl_client_hello_retry_into_tlslab_hybrid():
    """The other direction: OpenSSL offers the hybrid but sends only an x25519 share; a
    tlslab server that accepts only X25519MLKEM768 retries, and OpenSSL follows."""
    config = tlslab.ServerConfig.from_files(
        str(_certs() / "ecdsa-chain.pem"), str(_certs() / "ecdsa.key"), groups=["X25519MLKEM768"])
    # OpenSSL group-list syntax: a leading "*" marks the groups that get a key share
    n, client_group = _run_pyopenssl_client(config, "*X25519:X25519MLKEM768")
    assert n["hello_retry"] and n["group"] == "X25519MLKEM768"
    if client_group is not None:
        assert client_group == "X25519MLKEM768"
