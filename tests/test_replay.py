"""Known-answer replays through the real state machines (RFC 8448, Illustrated TLS 1.3).

Every wire byte tlslab produces is compared with the recorded trace, and every
secret its key schedule derives with the trace's value.  Randomness and
ephemeral keys come from a :class:`ReplayProvider` loaded with the vectors.
"""
from __future__ import annotations

import json

import pytest
from conftest import whole_records as split_records
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.serialization import load_der_private_key

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.events import ApplicationData, ConnectionClosed, HandshakeComplete
from tlslab.proto.messages import Certificate, parse_message
from tlslab.proto.provider import ReplayProvider
from tlslab.proto.server import ServerConnection


def load(vectors_dir, name):
    return json.loads((vectors_dir / f"{name}.json").read_text())


def x25519_key(hexstr):
    return x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(hexstr))


def p256_key(hexstr):
    return ec.derive_private_key(int(hexstr, 16), ec.SECP256R1())


def rfc8448_rsa_key(vectors_dir):
    d = load(vectors_dir, "rfc8448_private_keys")
    vals = {k: int(v["hex"] if isinstance(v, dict) else v, 16) for k, v in _rsa_fields(d).items()}
    pub = rsa.RSAPublicNumbers(vals["e"], vals["n"])
    return rsa.RSAPrivateNumbers(vals["p"], vals["q"], vals["d"], vals["dmp1"], vals["dmq1"],
                                 vals["iqmp"], pub).private_key()


def _rsa_fields(d):
    """Map the private-key vector's labels to RSA number names."""
    named = d.get("named", {})
    want = {"n": ["modulus", "n"], "e": ["public_exponent", "e"], "d": ["private_exponent", "d"],
            "p": ["prime1", "p"], "q": ["prime2", "q"], "dmp1": ["exponent1", "dmp1"],
            "dmq1": ["exponent2", "dmq1"], "iqmp": ["coefficient", "iqmp"]}
    out = {}
    for k, labels in want.items():
        for key, value in named.items():
            if any(key == lab or key.endswith("_" + lab) for lab in labels):
                out[k] = value
                break
    assert set(out) == set(want), f"private key vector fields not found: {sorted(named)}"
    return out


def cert_chain_from(message_hex):
    msg = parse_message(bytes.fromhex(message_hex))
    assert isinstance(msg, Certificate)
    return [x509.load_der_x509_certificate(e.cert_data) for e in msg.certificate_list]



def records(vec, sender):
    return [bytes.fromhex(r["record"]) for r in vec["records"] if r["sender"] == sender]


def check_secrets(schedule, named, names):
    for name in names:
        assert schedule.secrets[name].hex() == named[name], name


SECRET_NAMES = ["early_secret", "handshake_secret", "client_handshake_traffic_secret",
                "server_handshake_traffic_secret", "master_secret",
                "client_application_traffic_secret_0", "server_application_traffic_secret_0",
                "exporter_master_secret", "resumption_master_secret"]


# -- RFC 8448 §3: Simple 1-RTT Handshake -------------------------------------------------

@pytest.fixture
def simple(vectors_dir):
    return load(vectors_dir, "rfc8448_simple_1rtt")


def test_rfc8448_simple_client(simple):
    n = simple["named"]
    ch = parse_message(bytes.fromhex(n["client_hello"]))
    provider = ReplayProvider(randoms=[ch.random],
                              keys={"x25519": [x25519_key(n["client_ephemeral_x25519_private_key"])]})
    client = ClientConnection(ClientConfig(server_name="server", insecure=True,
                                           client_hello_template=ch), provider)
    client.start_handshake()
    server_recs = records(simple, "server")
    client_recs = records(simple, "client")
    assert client.data_to_send() == client_recs[0]
    events = client.receive_data(server_recs[0] + server_recs[1])
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].cipher_suite == "TLS_AES_128_GCM_SHA256"
    assert events[0].signature_scheme == "rsa_pss_rsae_sha256"
    assert client.data_to_send() == client_recs[1]  # the client's Finished
    check_secrets(client.schedule, n, SECRET_NAMES)
    # NewSessionTicket, then the server's application data
    events = client.receive_data(server_recs[2] + server_recs[3])
    assert [type(e).__name__ for e in events] == ["NewSessionTicket", "ApplicationData"]
    payload = bytes.fromhex(simple["records"][5]["payload"])
    assert events[1].data == payload
    client.send_application_data(payload)
    assert client.data_to_send() == client_recs[2]
    client.close()
    assert client.data_to_send() == client_recs[3]  # close_notify, encrypted
    events = client.receive_data(server_recs[4])
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error is None


def test_rfc8448_simple_server(simple, vectors_dir):
    n = simple["named"]
    sh = parse_message(bytes.fromhex(n["server_hello"]))
    cv = parse_message(bytes.fromhex(n["server_certificate_verify"]))
    provider = ReplayProvider(randoms=[sh.random], signatures=[cv.signature],
                              keys={"x25519": [x25519_key(n["server_ephemeral_x25519_private_key"])]})
    ee = parse_message(bytes.fromhex(n["encrypted_extensions"]))
    advertised = [g for g in ee.extensions if g.name == "supported_groups"][0].value
    from tlslab.proto.names import NamedGroup, name_of
    config = ServerConfig(certificate_chain=cert_chain_from(n["server_certificate"]),
                          private_key=rfc8448_rsa_key(vectors_dir),
                          advertised_groups=[name_of(NamedGroup, g) for g in advertised.named_group_list],
                          tickets=0)
    server = ServerConnection(config, provider)
    client_recs = records(simple, "client")
    server_recs = records(simple, "server")
    assert server.receive_data(client_recs[0]) == []
    out = split_records(server.data_to_send())
    assert out == server_recs[:2]  # ServerHello, then EE+Certificate+CertificateVerify+Finished
    events = server.receive_data(client_recs[1])
    assert [type(e) for e in events] == [HandshakeComplete]
    check_secrets(server.schedule, n, SECRET_NAMES)
    # The RFC's server sent a NewSessionTicket (application key, seq 0) before its data;
    # tickets are not issued yet, so the client's data and close_notify are what we can check.
    events = server.receive_data(client_recs[2])
    assert events == [ApplicationData(bytes.fromhex(simple["records"][6]["payload"]))]
    events = server.receive_data(client_recs[3])
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error is None


# -- RFC 8448 §5: HelloRetryRequest --------------------------------------------------------

def test_rfc8448_hello_retry_request_client(vectors_dir):
    vec = load(vectors_dir, "rfc8448_hello_retry_request")
    n = vec["named"]
    ch1 = parse_message(bytes.fromhex(n["client_hello_1"]))
    provider = ReplayProvider(randoms=[ch1.random], keys={
        "x25519": [x25519_key(n["client_ephemeral_x25519_private_key"])],
        "secp256r1": [p256_key(n["client_ephemeral_p256_private_key"])]})
    client = ClientConnection(ClientConfig(server_name="server", insecure=True,
                                           client_hello_template=ch1), provider)
    client.start_handshake()
    client_recs = records(vec, "client")
    server_recs = records(vec, "server")
    assert client.data_to_send() == client_recs[0]
    assert client.receive_data(server_recs[0]) == []
    assert client.data_to_send() == client_recs[1]  # ClientHello2 with P-256 share and the cookie
    events = client.receive_data(server_recs[1] + server_recs[2])
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].hello_retry and events[0].group == "secp256r1"
    assert client.data_to_send() == client_recs[2]
    check_secrets(client.schedule, n, SECRET_NAMES)
    client.close()
    assert client.data_to_send() == client_recs[3]


# -- The Illustrated TLS 1.3 Connection (AES-256-GCM-SHA384, compatibility mode) ------------

@pytest.fixture
def illustrated(vectors_dir):
    return load(vectors_dir, "illustrated_tls13")


def ill_records(vec, direction):
    return [bytes.fromhex(r["record"]) for r in vec["records"] if r["direction"] == direction]


def test_illustrated_tls13_client(illustrated):
    n = illustrated["named"]
    c_recs = ill_records(illustrated, "client->server")
    s_recs = ill_records(illustrated, "server->client")
    ch = parse_message(c_recs[0][5:])
    provider = ReplayProvider(randoms=[ch.random, ch.legacy_session_id],
                              keys={"x25519": [x25519_key(n["client_x25519_private_key"])]})
    client = ClientConnection(ClientConfig(server_name=illustrated["sni"], insecure=True,
                                           client_hello_template=ch), provider)
    client.start_handshake()
    assert client.data_to_send() == c_recs[0]
    events = client.receive_data(b"".join(s_recs[:6]))
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].cipher_suite == "TLS_AES_256_GCM_SHA384"
    assert client.data_to_send() == c_recs[1] + c_recs[2]  # CCS, then Finished
    client.send_application_data(b"ping")
    assert client.data_to_send() == c_recs[3]
    events = client.receive_data(b"".join(s_recs[6:]))
    assert [type(e).__name__ for e in events] == ["NewSessionTicket", "NewSessionTicket",
                                                  "ApplicationData"]
    assert events[2].data == b"pong"


def test_illustrated_tls13_server(illustrated):
    n = illustrated["named"]
    c_recs = ill_records(illustrated, "client->server")
    s_recs = ill_records(illustrated, "server->client")
    sh = parse_message(s_recs[0][5:])
    cv = parse_message(bytes.fromhex(next(r["inner_plaintext"] for r in illustrated["records"]
                                          if r["what"].startswith("CertificateVerify")))[:-1])
    provider = ReplayProvider(randoms=[sh.random], signatures=[cv.signature],
                              keys={"x25519": [x25519_key(n["server_x25519_private_key"])]})
    cert = x509.load_der_x509_certificate(bytes.fromhex(n["server_certificate_der"]))
    key = load_der_private_key(bytes.fromhex(n["server_rsa_private_key_pkcs1_der"]), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    server = ServerConnection(ServerConfig(certificate_chain=[cert], private_key=key,
                                           one_message_per_record=True, acknowledge_server_name=False, tickets=0,
                                           prefer_server_order=False,
                                           extension_order=["supported_versions", "key_share"]),
                              provider)
    assert server.receive_data(c_recs[0]) == []
    assert split_records(server.data_to_send()) == s_recs[:6]
    events = server.receive_data(c_recs[1] + c_recs[2] + c_recs[3])
    assert [type(e) for e in events] == [HandshakeComplete, ApplicationData]
    assert events[1].data == b"ping"
    check_secrets(server.schedule, {
        "client_handshake_traffic_secret": n["client_handshake_traffic_secret"],
        "server_handshake_traffic_secret": n["server_handshake_traffic_secret"],
        "client_application_traffic_secret_0": n["client_application_traffic_secret_0"],
        "server_application_traffic_secret_0": n["server_application_traffic_secret_0"]},
        ["client_handshake_traffic_secret", "server_handshake_traffic_secret",
         "client_application_traffic_secret_0", "server_application_traffic_secret_0"])
