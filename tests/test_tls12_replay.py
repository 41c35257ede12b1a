"""TLS 1.2 known-answer replay (The Illustrated TLS 1.2 Connection) and in-memory round trips.

The illustrated connection is TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA over x25519 without the
extended master secret (RFC 5246 §8.1, RFC 8422 §5.4): the client sends "ping", the server
"pong", then the client sends close_notify.  A :class:`ReplayProvider` hands the engine the
recorded randoms, the x25519 private keys and the explicit CBC IVs (RFC 5246 §6.2.3.2), in
the order the engine draws them, and every record the engine writes is compared with the
recorded one.  The master secret is read back from the key log (CLIENT_RANDOM line).

The second half runs client <-> server in memory for each key-exchange family (static RSA,
DHE_RSA, ECDHE_RSA, ECDHE_ECDSA) and each record protection (CBC, GCM, ChaCha20-Poly1305).
"""
from __future__ import annotations

import io
import json

import pytest
from conftest import whole_records as split_records
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.serialization import load_der_private_key

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.events import AlertReceived, ApplicationData, ConnectionClosed, HandshakeComplete
from tlslab.proto.extensions import ET
from tlslab.proto.messages import ClientHello, ServerHello
from tlslab.proto.provider import ReplayProvider
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain


# --------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def ill(vectors_dir):
    return json.loads((vectors_dir / "illustrated_tls12.json").read_text())



def recs(vec, direction: str) -> list[bytes]:
    return [bytes.fromhex(r["record"]) for r in vec["records"] if r["direction"] == direction]


def explicit_ivs(vec, direction: str) -> list[bytes]:
    return [bytes.fromhex(r["explicit_iv"]) for r in vec["records"]
            if r["direction"] == direction and r["protected"] in (True, "True", "true")]


def x25519_key(hexstr: str) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(hexstr))


def keylog_master(text: str, client_random: bytes) -> bytes:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    found = [bytes.fromhex(ln[2]) for ln in lines
             if ln[0] == "CLIENT_RANDOM" and ln[1] == client_random.hex()]
    assert len(found) == 1, text
    return found[0]


# --------------------------------------------------------------------------- the vector itself

def test_vector_is_the_documented_connection(ill):
    """Sanity: 13 records, the documented suite, and the keylog line matches the master secret."""
    n = ill["named"]
    assert len(ill["records"]) == 13
    assert ill["cipher_suite"] == "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    assert ill["keylog_lines"] == [f"CLIENT_RANDOM {n['client_random']} {n['master_secret']}"]
    ch = ClientHello.parse(recs(ill, "client->server")[0][5:])
    assert ch.random.hex() == n["client_random"]
    assert ch.ext(ET.extended_master_secret) is None  # no RFC 7627


# --------------------------------------------------------------------------- client replay

def test_illustrated_tls12_client(ill):
    n = ill["named"]
    c_recs, s_recs = recs(ill, "client->server"), recs(ill, "server->client")
    ch = ClientHello.parse(c_recs[0][5:])
    # client random, then the explicit IVs of: Finished, "ping", close_notify
    provider = ReplayProvider(randoms=[ch.random] + explicit_ivs(ill, "client->server"),
                              keys={"x25519": [x25519_key(n["client_x25519_private_key"])]})
    keylog = io.StringIO()
    cert = x509.load_der_x509_certificate(bytes.fromhex(n["server_certificate_der"]))
    client = ClientConnection(ClientConfig(server_name="example.ulfheim.net", insecure=True,
                                           client_hello_template=ch, keylog_file=keylog,
                                           session_store=None), provider)
    client.start_handshake()
    assert client.data_to_send() == c_recs[0]                       # ClientHello
    # ServerHello, Certificate, ServerKeyExchange, ServerHelloDone
    assert client.receive_data(b"".join(s_recs[:4])) == []
    assert client.state.name == "WAIT_CCS"
    assert client.peer_certificates == [cert]
    out = split_records(client.data_to_send())
    assert out == c_recs[1:4]                                       # CKE, CCS, Finished
    assert keylog_master(keylog.getvalue(), ch.random).hex() == n["master_secret"]
    assert keylog.getvalue().splitlines() == ill["keylog_lines"]
    events = client.receive_data(s_recs[4] + s_recs[5])           # CCS, Finished
    assert [type(e) for e in events] == [HandshakeComplete]
    done = events[0]
    assert done.version == "TLS 1.2"
    assert done.cipher_suite == "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    assert done.group == "x25519"
    assert done.signature_scheme == "rsa_pkcs1_sha256"
    assert client.negotiated["extended_master_secret"] is False
    assert client.negotiated["encrypt_then_mac"] is False
    client.send_application_data(b"ping")
    assert client.data_to_send() == c_recs[4]
    events = client.receive_data(s_recs[6])
    assert events == [ApplicationData(b"pong")]
    client.close()
    assert client.data_to_send() == c_recs[5]                      # encrypted close_notify
    assert not client.closed  # the recorded server never answered with its close_notify


def test_illustrated_tls12_client_one_byte_at_a_time(ill):
    """The same replay, the server's bytes fed one at a time (record/handshake reassembly)."""
    n = ill["named"]
    c_recs, s_recs = recs(ill, "client->server"), recs(ill, "server->client")
    ch = ClientHello.parse(c_recs[0][5:])
    provider = ReplayProvider(randoms=[ch.random] + explicit_ivs(ill, "client->server"),
                              keys={"x25519": [x25519_key(n["client_x25519_private_key"])]})
    client = ClientConnection(ClientConfig(server_name="example.ulfheim.net", insecure=True,
                                           client_hello_template=ch, session_store=None), provider)
    client.start_handshake()
    client.data_to_send()
    events = []
    for b in b"".join(s_recs[:6]):
        events += client.receive_data(bytes([b]))
    assert [type(e) for e in events] == [HandshakeComplete]
    assert b"".join(split_records(client.data_to_send())) == b"".join(c_recs[1:4])


# --------------------------------------------------------------------------- server replay

def _illustrated_server(ill, keylog=None, cls=ServerConnection):
    n = ill["named"]
    s_recs = recs(ill, "server->client")
    ske = s_recs[2][5 + 4:]
    # ServerECDHParams: curve_type(1) named_curve(2) point<1..255>; then scheme(2), signature<2>
    plen = ske[3]
    sig = ske[4 + plen + 2 + 2:]
    assert len(sig) == int.from_bytes(ske[4 + plen + 2:4 + plen + 4], "big")
    provider = ReplayProvider(randoms=[bytes.fromhex(n["server_random"])]
                              + explicit_ivs(ill, "server->client")
                              + [bytes(16)],  # IV of our answering close_notify (not in the trace)
                              keys={"x25519": [x25519_key(n["server_x25519_private_key"])]},
                              signatures=[sig])
    cert = x509.load_der_x509_certificate(bytes.fromhex(n["server_certificate_der"]))
    key = load_der_private_key(bytes.fromhex(n["server_rsa_private_key_pkcs1_der"]), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    config = ServerConfig(certificate_chain=[cert], private_key=key, versions=["1.2"],
                          acknowledge_server_name=False, tickets=0, session_cache=None,
                          cipher_suites=[ill["cipher_suite"]], prefer_server_order=False,
                          keylog_file=keylog,
                          one_message_per_record=True)
    return cls(config, provider)


@pytest.fixture
def no_point_formats(monkeypatch):
    """Test-only shim: the recorded server did not echo ec_point_formats in its ServerHello.

    RFC 8422 §5.2 says a server that selects an ECC suite for a ClientHello carrying the
    extension appends it, which tlslab does; ServerConfig has no switch to leave it out
    (extension_order only reorders), so the extension ordering step drops it here to
    reproduce the trace.
    """
    from tlslab.proto import server12
    real = server12.ordered
    monkeypatch.setattr(server12, "ordered",
                        lambda cfg, exts: [e for e in real(cfg, exts) if e.type != ET.ec_point_formats])


def test_illustrated_tls12_server_flight_engine_as_is(ill):
    """Without the shim, the server's first flight differs from the trace only by the
    ec_point_formats extension (RFC 8422 §5.2) in the ServerHello."""
    c_recs, s_recs = recs(ill, "client->server"), recs(ill, "server->client")
    server = _illustrated_server(ill)
    assert server.receive_data(c_recs[0]) == []
    out = split_records(server.data_to_send())
    assert out[1:] == s_recs[1:4]             # Certificate, ServerKeyExchange, ServerHelloDone
    sh_ours, sh_recorded = out[0], s_recs[0]
    ext = bytes.fromhex("000b00020100")      # ec_point_formats: [uncompressed]
    assert ext in sh_ours and ext not in sh_recorded
    ours = ServerHello.parse(sh_ours[5:])
    assert [e.type for e in ours.extensions] == [ET.renegotiation_info, ET.ec_point_formats]
    ours.extensions = [e for e in ours.extensions if e.type != ET.ec_point_formats]
    assert b"\x16\x03\x03" + len(ours.build()).to_bytes(2, "big") + ours.build() == sh_recorded


def test_illustrated_tls12_server(ill, no_point_formats):
    c_recs, s_recs = recs(ill, "client->server"), recs(ill, "server->client")
    keylog = io.StringIO()
    server = _illustrated_server(ill, keylog)
    assert server.receive_data(c_recs[0]) == []
    assert split_records(server.data_to_send()) == s_recs[:4]   # SH, Certificate, SKE, SHD
    assert server.state.name == "WAIT_CKE"
    assert server.receive_data(c_recs[1]) == []                 # ClientKeyExchange
    assert keylog.getvalue().splitlines() == ill["keylog_lines"]
    events = server.receive_data(c_recs[2] + c_recs[3])         # CCS, Finished
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].cipher_suite == "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    assert events[0].group == "x25519"
    assert split_records(server.data_to_send()) == s_recs[4:6]  # CCS, Finished
    assert server.receive_data(c_recs[4]) == [ApplicationData(b"ping")]
    server.send_application_data(b"pong")
    assert server.data_to_send() == s_recs[6]
    events = server.receive_data(c_recs[5])
    assert isinstance(events[0], AlertReceived) and events[0].name == "close_notify"
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error is None
    assert server.closed


# --------------------------------------------------------------------------- in-memory round trips

@pytest.fixture(scope="module")
def identities():
    rsa_chain, rsa_key, _ = make_throwaway_chain(key_type="rsa2048")
    ec_chain, ec_key, _ = make_throwaway_chain(key_type="ecdsa-p256")
    assert isinstance(ec_chain[0].public_key(), ec.EllipticCurvePublicKey)
    return {"rsa": (rsa_chain, rsa_key), "ecdsa": (ec_chain, ec_key)}


def pump(client, server, limit: int = 20) -> list:
    """Shuttle bytes both ways until neither side has anything to send."""
    events = []
    for _ in range(limit):
        c = client.data_to_send()
        if c:
            events += [("server", e) for e in server.receive_data(c)]
        s = server.data_to_send()
        if s:
            events += [("client", e) for e in client.receive_data(s)]
        if not c and not s:
            return events
    raise AssertionError("handshake did not settle")


ROUND_TRIPS = [
    # suite, certificate key type, expected group (None: static RSA has no key exchange group)
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "rsa", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA256", "rsa", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", "rsa", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", "rsa", None),
    ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "rsa", "ffdhe2048"),
    ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "rsa", "ffdhe2048"),
    ("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "rsa", "ffdhe2048"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "rsa", "x25519"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "rsa", "x25519"),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "rsa", "x25519"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "rsa", "x25519"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ecdsa", "x25519"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ecdsa", "x25519"),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ecdsa", "x25519"),
]


def _connect(identities, suite, cert, *, client_extra=None, server_extra=None):
    chain, key = identities[cert]
    ck, sk = io.StringIO(), io.StringIO()
    client = ClientConnection(ClientConfig(insecure=True, versions=["1.2"], cipher_suites=[suite],
                                           keylog_file=ck, session_store=None,
                                           **(client_extra or {})))
    # static RSA is not in a server's defaults: name the suite
    server = ServerConnection(ServerConfig(certificate_chain=chain, private_key=key, versions=["1.2"],
                                           keylog_file=sk, **{"cipher_suites": [suite],
                                                              **(server_extra or {})}))
    client.start_handshake()
    events = pump(client, server)
    return client, server, events, ck, sk


@pytest.mark.parametrize("suite, cert, group", ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_tls12_round_trip(identities, suite, cert, group):
    client, server, events, ck, sk = _connect(identities, suite, cert)
    done = [(side, e) for side, e in events if isinstance(e, HandshakeComplete)]
    assert [side for side, _ in done] == ["server", "client"], events
    for _, e in done:
        assert e.version == "TLS 1.2" and e.cipher_suite == suite
        assert e.group == group
    assert client.negotiated["extended_master_secret"] is True   # RFC 7627, both sides offer it
    assert client.negotiated["encrypt_then_mac"] is ("CBC" in suite)  # RFC 7366 for CBC only
    assert client.negotiated["secure_renegotiation"] is True
    # both sides log the same CLIENT_RANDOM line
    assert ck.getvalue() == sk.getvalue() and ck.getvalue().startswith("CLIENT_RANDOM ")
    assert len(ck.getvalue().splitlines()) == 1
    # application data both ways, including a record bigger than one fragment
    big = bytes(range(256)) * 70  # 17920 bytes: two records
    client.send_application_data(b"hello server")
    client.send_application_data(big)
    got = server.receive_data(client.data_to_send())
    assert b"".join(e.data for e in got if isinstance(e, ApplicationData)) == b"hello server" + big
    server.send_application_data(b"hello client")
    got = client.receive_data(server.data_to_send())
    assert got == [ApplicationData(b"hello client")]
    client.close()
    got = server.receive_data(client.data_to_send())
    assert isinstance(got[-1], ConnectionClosed) and got[-1].error is None
    got = client.receive_data(server.data_to_send())
    assert isinstance(got[-1], ConnectionClosed) and got[-1].error is None
    assert client.closed and server.closed


@pytest.mark.parametrize("suite", ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_GCM_SHA256",
                                   "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"])
def test_tls12_round_trip_without_ems_and_etm(identities, suite):
    """A ClientHello without extended_master_secret / encrypt_then_mac (as in the illustrated
    trace): the RFC 5246 §8.1 master secret and MAC-then-encrypt are used."""
    chain, key = identities["rsa"]
    probe = ClientConnection(ClientConfig(insecure=True, versions=["1.2"], cipher_suites=[suite],
                                          session_store=None))
    probe.start_handshake()
    ch = ClientHello.parse(split_records(probe.data_to_send())[0][5:])
    ch.extensions = [e for e in ch.extensions
                     if e.type not in (ET.extended_master_secret, ET.encrypt_then_mac)]
    client = ClientConnection(ClientConfig(insecure=True, versions=["1.2"], cipher_suites=[suite],
                                           session_store=None, client_hello_template=ch))
    server = ServerConnection(ServerConfig(certificate_chain=chain, private_key=key, versions=["1.2"],
                                           cipher_suites=[suite]))
    client.start_handshake()
    events = pump(client, server)
    assert sum(isinstance(e, HandshakeComplete) for _, e in events) == 2, events
    assert client.negotiated["extended_master_secret"] is False
    assert server.negotiated["extended_master_secret"] is False
    assert client.negotiated["encrypt_then_mac"] is False
    client.send_application_data(b"x" * 1000)
    assert server.receive_data(client.data_to_send()) == [ApplicationData(b"x" * 1000)]


def test_tls12_rsa_premaster_uses_client_hello_version(identities):
    """RFC 5246 §7.4.7.1: the premaster starts with ClientHello.client_version; the server
    still completes (no version-rollback false positive) when the offer is 1.3-capable."""
    chain, key = identities["rsa"]
    client = ClientConnection(ClientConfig(insecure=True, session_store=None,
                                           cipher_suites=["TLS_AES_128_GCM_SHA256",
                                                          "TLS_RSA_WITH_AES_128_GCM_SHA256"]))
    server = ServerConnection(ServerConfig(certificate_chain=chain, private_key=key, versions=["1.2"],
                                           cipher_suites=["TLS_RSA_WITH_AES_128_GCM_SHA256"]))
    client.start_handshake()
    events = pump(client, server)
    done = [e for _, e in events if isinstance(e, HandshakeComplete)]
    assert len(done) == 2 and all(e.cipher_suite == "TLS_RSA_WITH_AES_128_GCM_SHA256" for e in done)
