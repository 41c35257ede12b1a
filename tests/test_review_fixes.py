"""Regression tests for the review findings (one test, or one parametrised test, per finding).

Everything runs in memory (client ↔ server objects, no sockets).  Each test asserts the
behaviour the RFCs ask for and fails on the engine as it was before the fixes:

1. a plaintext close_notify after the TLS 1.3 handshake is a truncation attack, not a close;
2. resumption is bound to the server name and re-checks the client identity (RFC 6066 §3);
3. the 0-RTT replay cache cannot be flushed by filling it (RFC 8446 §8);
4. 0-RTT data sent, TLS 1.2 ServerHello received → protocol_version (RFC 8446 §D.3);
5. a peer cannot grow a connection's state without bound (renegotiation, tickets, KeyUpdate);
6. record_size_limit is enforced by the TLS 1.3 server and honoured by the TLS 1.2 client;
7. TLS 1.2-only extensions in EncryptedExtensions → illegal_parameter (RFC 8446 §4.2);
8. TLS 1.2 client certificate whose key fits no requested scheme → empty Certificate;
9. TLS 1.2 server certificate with an unusable key → a certificate alert, not internal_error;
10. TLS 1.2 warning alerts end nothing, except the descriptions that are always fatal.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import whole_records as records
from cryptography.hazmat.primitives.serialization import Encoding

from tlslab.proto import events as ev
from tlslab.proto import extensions as X
from tlslab.proto import server13
from tlslab.proto import server12
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig, load_identity
from tlslab.proto.extensions import ET, Extension
from tlslab.proto.messages import ClientHello
from tlslab.proto.server import ServerConnection
from tlslab.proto.tickets import Session, Session12, SessionCache, TicketKeys
from tlslab.proto.trace import Trace
from tlslab.workbench.certgen import make_throwaway_chain

pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- helpers

def server_config(certs_dir: Path, key_type: str = "ecdsa", **options) -> ServerConfig:
    return ServerConfig.from_files(str(certs_dir / f"{key_type}-chain.pem"),
                                   str(certs_dir / f"{key_type}.key"), **options)


def client_config(certs_dir: Path, **options) -> ClientConfig:
    options.setdefault("server_name", "localhost")
    options.setdefault("ca_file", str(certs_dir / "ca.pem"))
    return ClientConfig(**options)


@dataclasses.dataclass
class Pair:
    client: ClientConnection
    server: ServerConnection
    client_events: list = dataclasses.field(default_factory=list)
    server_events: list = dataclasses.field(default_factory=list)

    def pump(self, rounds: int = 30) -> "Pair":
        for _ in range(rounds):
            moved = False
            data = self.client.data_to_send()
            if data:
                moved = True
                self.server_events += self.server.receive_data(data)
            data = self.server.data_to_send()
            if data:
                moved = True
                self.client_events += self.client.receive_data(data)
            if not moved:
                break
        return self


def connect(client_cfg: ClientConfig, server_cfg: ServerConfig, early_data: bytes | None = None) -> Pair:
    client = ClientConnection(client_cfg)
    server = ServerConnection(server_cfg)
    client.start_handshake(early_data=early_data)
    return Pair(client, server).pump()



def closed_event(events: list) -> ev.ConnectionClosed:
    found = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert found, f"no ConnectionClosed among {events!r}"
    return found[-1]


def alerts_sent(conn) -> list[str]:
    return [e.name for e in conn.trace.entries if e.kind == "alert" and e.direction == "sent"]


def app_data(events: list) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ev.ApplicationData))


# --------------------------------------------------------------------------- 1. close_notify

def test_plaintext_close_notify_after_tls13_handshake_is_refused(certs_dir):
    """RFC 8446 §5: once keys are in use every record is protected; an unprotected
    close_notify injected after the handshake must not end the stream cleanly."""
    p = connect(client_config(certs_dir), server_config(certs_dir))
    assert p.client.handshake_complete and p.client.version == 0x0304
    p.server.send_application_data(b"part 1 of response ")
    events = p.client.receive_data(p.server.data_to_send())
    assert app_data(events) == b"part 1 of response "
    events = p.client.receive_data(bytes.fromhex("15030300020100"))  # plaintext close_notify
    closed = closed_event(events)
    assert closed.error is not None, "forged close_notify accepted as a clean close (truncation)"
    assert closed.alert_sent == "unexpected_message"
    assert closed.alert_received is None
    assert p.client.closed and p.client.error is not None


# --------------------------------------------------------------------------- 2. resumption & SNI

MODES = ["tls12-ticket", "tls12-session-id", "tls13-psk"]


@pytest.fixture(scope="module")
def vhost_pki(tmp_path_factory):
    """A throwaway CA that issued a server certificate for a.example and b.example.  The
    CA doubles as vhost B's client CA, which did not issue the shared client certificate."""
    chain, key, ca = make_throwaway_chain(names=("a.example", "b.example"))
    ca_file = tmp_path_factory.mktemp("vhosts") / "other-ca.pem"
    ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
    return chain, key, ca_file


def _mode_options(mode: str) -> tuple[str, dict]:
    """(client version, ServerConfig options) that make ``mode`` the only way to resume."""
    if mode == "tls12-ticket":
        return "1.2", {"session_cache": None}
    if mode == "tls12-session-id":
        return "1.2", {"session_cache": SessionCache(), "tickets": 0}
    return "1.3", {"session_cache": None}


def _vhost(vhost_pki, shared: dict, client_ca: str, require: bool) -> ServerConfig:
    chain, key, _ = vhost_pki
    return ServerConfig(certificate_chain=chain, private_key=key, client_ca_file=client_ca,
                        require_client_cert=require, **shared)


def _client(vhost_pki, certs_dir, version, server_name, store="default", with_cert=True):
    options = {}
    if with_cert:
        chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
        options = {"certificate_chain": chain, "private_key": key}
    return ClientConfig(ca_file=str(vhost_pki[2]), server_name=server_name, versions=[version],
                        session_store=store, **options)


def _not_resumed_notes(server) -> list[str]:
    return [e.detail for e in server.trace.entries
            if e.kind == "info" and e.name == "session not resumed"]


@pytest.mark.parametrize("mode", MODES)
def test_resumption_under_another_server_name_is_refused(mode, certs_dir, vhost_pki):
    """RFC 6066 §3: a server MUST NOT resume a session made for a different server name;
    vhost B (other client CA) must not inherit the client identity vhost A authenticated."""
    version, shared = _mode_options(mode)
    shared["ticket_keys"] = TicketKeys()
    vhost_a = _vhost(vhost_pki, shared, str(certs_dir / "ca.pem"), require=True)
    vhost_b = _vhost(vhost_pki, shared, str(vhost_pki[2]), require=False)

    cc = _client(vhost_pki, certs_dir, version, "a.example")
    first = connect(cc, vhost_a)
    assert first.server.handshake_complete and not first.server.negotiated["resumed"]
    assert "tlslab test client" in first.server.negotiated["client_certificate"]

    # the client offers the session it got from a.example to b.example (shared keys/cache)
    store = cc.session_store
    kind = Session if version == "1.3" else Session12
    session = store.take("a.example", first.server.provider.time(), kind)
    assert session is not None
    client_b = _client(vhost_pki, certs_dir, version, "b.example", store=store, with_cert=False)
    # (as if client_b had earned it: a client only offers sessions it verified the same way)
    store.add(dataclasses.replace(session, server_name="b.example",
                                  verifier=client_b.verifier_id))

    p = connect(client_b, vhost_b)
    assert p.server.error is None and p.server.handshake_complete, p.server.error
    assert p.server.negotiated["resumed"] is False
    assert p.client.negotiated["resumed"] is False
    assert p.server.negotiated.get("client_certificate") is None
    assert not p.server.peer_certificates
    # the session was offered and refused for its server name, not ignored for another reason
    assert any("a.example" in note and "b.example" in note for note in _not_resumed_notes(p.server))


@pytest.mark.parametrize("mode", MODES)
def test_resumption_rechecks_client_certificate_against_current_client_ca(mode, certs_dir, vhost_pki):
    """Same server name, shared keys/cache: a config whose client CA did not issue the
    session's client certificate does a full handshake (and then refuses the certificate);
    a config that trusts it resumes and restores the identity."""
    version, shared = _mode_options(mode)
    shared["ticket_keys"] = TicketKeys()
    vhost_a = _vhost(vhost_pki, shared, str(certs_dir / "ca.pem"), require=True)
    vhost_a2 = _vhost(vhost_pki, shared, str(certs_dir / "ca.pem"), require=True)
    vhost_b = _vhost(vhost_pki, shared, str(vhost_pki[2]), require=True)

    cc, cc_control = (_client(vhost_pki, certs_dir, version, "a.example") for _ in range(2))
    for config in (cc, cc_control):  # each with a session from vhost A in its own store
        full = connect(config, vhost_a)
        assert full.server.handshake_complete and not full.server.negotiated["resumed"]

    # control: another config trusting the same client CA resumes, identity restored
    ok = connect(cc_control, vhost_a2)
    assert ok.server.handshake_complete and ok.server.negotiated["resumed"] is True
    assert "tlslab test client" in ok.server.negotiated["client_certificate"]

    p = connect(cc, vhost_b)
    assert p.server.negotiated.get("resumed") is not True
    assert p.client.negotiated.get("resumed") is not True
    assert any("not accepted here" in note for note in _not_resumed_notes(p.server))
    # full handshake: B asked for a certificate, checked it against its own CA and refused it
    assert not p.server.handshake_complete
    assert p.server.error is not None and p.server.error.alert.name == "unknown_ca", p.server.error
    assert p.server.negotiated.get("client_certificate") is None


# --------------------------------------------------------------------------- 3. replay cache

def test_zero_rtt_replay_cache_cannot_be_flushed(certs_dir):
    """RFC 8446 §8: pushing fresh 0-RTT ClientHellos through the server must not evict a
    recorded one from the replay cache while it is still inside the replay window."""
    keys = TicketKeys(replay_cache_size=3)
    sc = server_config(certs_dir, ticket_keys=keys, max_early_data_size=4096, tickets=8)
    cc = client_config(certs_dir)
    assert connect(cc, sc).client.handshake_complete

    victim = ClientConnection(cc)
    victim.start_handshake(early_data=b"POST /transfer?amount=100")
    flight = victim.data_to_send()
    assert app_data(ServerConnection(sc).receive_data(flight)) == b"POST /transfer?amount=100"
    assert app_data(ServerConnection(sc).receive_data(flight)) == b""  # immediate replay

    for _ in range(3):  # a ticket holder churns the cache with its own 0-RTT handshakes
        attacker = ClientConnection(cc)
        attacker.start_handshake(early_data=b"x")
        ServerConnection(sc).receive_data(attacker.data_to_send())

    assert app_data(ServerConnection(sc).receive_data(flight)) == b"", \
        "recorded 0-RTT flight accepted again after the replay cache was churned"


def test_ticket_keys_first_use_fails_closed_when_full():
    keys = TicketKeys(replay_cache_size=3)
    window = 20.0
    assert all(keys.first_use(t, 100.0, window) for t in (b"a", b"b", b"c"))
    # full of fresh entries: nothing is forgotten, a new token is refused
    assert keys.first_use(b"d", 101.0, window) is False
    assert keys.first_use(b"a", 101.0, window) is False  # and the old ones are still known
    # once the entries are older than the window they expire and room is made
    assert keys.first_use(b"d", 100.0 + window + 1, window) is True
    assert keys.first_use(b"a", 100.0 + window + 1, window) is True
    assert keys.first_use(b"a", 100.0 + window + 2, window) is False  # replay within the window


# --------------------------------------------------------------------------- 4. 0-RTT vs TLS 1.2

def test_client_that_sent_early_data_refuses_tls12_server_hello(certs_dir):
    """RFC 8446 §D.3: a client that sent 0-RTT data MUST abort on a TLS 1.2 ServerHello."""
    keys = TicketKeys()
    cc = client_config(certs_dir, compatibility_mode=False)
    assert connect(cc, server_config(certs_dir, ticket_keys=keys, max_early_data_size=1024)) \
        .client.handshake_complete

    client = ClientConnection(cc)
    server = ServerConnection(server_config(certs_dir, versions=["1.2"], ticket_keys=keys))
    client.start_handshake(early_data=b"GET / HTTP/1.1\r\n\r\n")
    first_flight = records(client.data_to_send())
    assert [r[0] for r in first_flight] == [22, 23]  # ClientHello + early data
    server.receive_data(first_flight[0])
    events = client.receive_data(server.data_to_send())

    assert client.closed and not client.handshake_complete
    assert client.error is not None and client.error.alert.name == "protocol_version", client.error
    assert closed_event(events).alert_sent == "protocol_version"
    assert not client.tls12
    # nothing but the alert goes out: no TLS 1.2 ClientKeyExchange/Finished flight
    assert len(records(client.data_to_send())) <= 1


# --------------------------------------------------------------------------- 5. unbounded state

def test_tls12_renegotiation_flood_is_cut_off(certs_dir):
    """Post-handshake ClientHellos are refused with no_renegotiation; no handshake log is
    kept after the handshake to grow, and after three refusals the fourth ends the connection."""
    p = connect(client_config(certs_dir, versions=["1.2"]), server_config(certs_dir))
    assert p.server.handshake_complete and p.server.tls12
    client, server = p.client, p.server
    hello = ClientHello(legacy_version=0x0303, random=bytes(32), legacy_session_id=b"",
                        cipher_suites=[0xC02B, 0xC02F], legacy_compression_methods=b"\x00",
                        extensions=[Extension(ET.padding, X.RawBody(data=bytes(4000)))]).encode()
    from tlslab.proto.handshake12 import PostHandshake12
    assert type(server.hs) is PostHandshake12 and not hasattr(server.hs, "hs_log")
    for i in range(3):
        client._send_records(22, hello)
        server.receive_data(client.data_to_send())
        assert not server.closed, f"renegotiation attempt {i + 1} closed the connection"
        client.receive_data(server.data_to_send())  # the no_renegotiation warning
    assert alerts_sent(server).count("no_renegotiation") == 3
    client._send_records(22, hello)
    events = server.receive_data(client.data_to_send())
    assert server.closed
    assert closed_event(events).alert_sent == "unexpected_message"


def test_tls12_repeated_new_session_ticket_is_unexpected(certs_dir, monkeypatch):
    """RFC 5077 §3.3: one NewSessionTicket per handshake; a second one is unexpected_message."""
    original = server12.ServerHandshake12._send_ticket

    def twice(self):
        original(self)
        original(self)

    monkeypatch.setattr(server12.ServerHandshake12, "_send_ticket", twice)
    p = connect(client_config(certs_dir, versions=["1.2"]), server_config(certs_dir))
    assert not p.client.handshake_complete
    assert p.client.error is not None and p.client.error.alert.name == "unexpected_message", p.client.error
    assert alerts_sent(p.client) == ["unexpected_message"]


def test_key_update_flood_keeps_trace_bounded(certs_dir):
    p = connect(client_config(certs_dir), server_config(certs_dir))
    assert p.server.handshake_complete
    client, server = p.client, p.server
    count = Trace.MAX_ENTRIES + 500
    for i in range(count):
        client.send_key_update(False)
        if i % 16 == 15:  # data in between: a run of KeyUpdates alone is cut off (test_flood_limits)
            client.send_application_data(b".")
        server.receive_data(client.data_to_send())
    assert not server.closed and server.error is None
    assert len(server.trace.entries) <= Trace.MAX_ENTRIES
    assert server.trace.dropped > 0
    # the connection still works with the keys after all those updates
    client.send_application_data(b"still here")
    assert app_data(server.receive_data(client.data_to_send())) == b"still here"


# --------------------------------------------------------------------------- 6. record_size_limit

def test_tls13_server_enforces_its_record_size_limit(certs_dir):
    """RFC 8449 §4: a record larger than the limit the server advertised → record_overflow."""
    p = connect(client_config(certs_dir, record_size_limit=0x4001),
                server_config(certs_dir, record_size_limit=256))
    assert p.server.handshake_complete and p.server.version == 0x0304
    # a well-behaved client fits the limit (255 bytes + the content type byte)
    p.client.send_application_data(b"B" * 1000)
    assert app_data(p.server.receive_data(p.client.data_to_send())) == b"B" * 1000
    # one that ignores it is refused
    p.client._max_fragment = 16384
    p.client.send_application_data(b"A" * 16000)
    events = p.server.receive_data(p.client.data_to_send())
    assert app_data(events) == b""
    assert p.server.closed
    assert closed_event(events).alert_sent == "record_overflow"


def test_tls12_client_honours_server_record_size_limit(certs_dir, monkeypatch):
    """RFC 8449 §4: a TLS 1.2 server's record_size_limit bounds the client's plaintext fragments."""
    original = server12.ServerHandshake12._server_hello

    def with_limit(self, ch, suite, sid, extra):  # an RFC 8449-aware TLS 1.2 server
        if ch.ext(ET.record_size_limit) is not None:
            extra = extra + [Extension(ET.record_size_limit, X.RecordSizeLimit(record_size_limit=256))]
        return original(self, ch, suite, sid, extra)

    monkeypatch.setattr(server12.ServerHandshake12, "_server_hello", with_limit)
    p = connect(client_config(certs_dir, versions=["1.2"], record_size_limit=1024),
                server_config(certs_dir))
    assert p.client.handshake_complete and p.client.tls12
    payload = b"A" * 5000
    p.client.send_application_data(payload)
    out = p.client.data_to_send()
    lengths = [int.from_bytes(r[3:5], "big") for r in records(out)]
    assert len(lengths) == -(-len(payload) // 256)
    overhead = lengths[-1] - len(payload) % 256  # the last record carries the remainder
    assert overhead >= 0
    assert max(lengths) - overhead <= 256
    assert app_data(p.server.receive_data(out)) == payload


# --------------------------------------------------------------------------- 7. EE extensions

@pytest.mark.parametrize("extension", [
    Extension(ET.renegotiation_info, X.RenegotiationInfo(renegotiated_connection=b"")),
    Extension(ET.extended_master_secret, X.Empty()),
    Extension(ET.ec_point_formats, X.ECPointFormats(ec_point_format_list=[0])),
], ids=["renegotiation_info", "extended_master_secret", "ec_point_formats"])
def test_tls13_client_refuses_tls12_extensions_in_encrypted_extensions(extension, certs_dir, monkeypatch):
    """RFC 8446 §4.2: a known extension in a message where it is not defined → illegal_parameter."""
    original = server13.ordered
    seen = []

    def patched(cfg, exts):
        exts = list(exts)
        if not seen and not any(e.type in (ET.supported_versions, ET.key_share) for e in exts):
            seen.append(True)  # the first list after ServerHello's is EncryptedExtensions'
            exts.append(extension)
        return original(cfg, exts)

    monkeypatch.setattr(server13, "ordered", patched)
    p = connect(client_config(certs_dir), server_config(certs_dir))
    assert seen
    assert not p.client.handshake_complete
    assert p.client.error is not None and p.client.error.alert.name == "illegal_parameter", p.client.error
    assert alerts_sent(p.client) == ["illegal_parameter"]


# --------------------------------------------------------------------------- 8. client cert scheme

def test_tls12_client_with_unusable_key_sends_empty_certificate(certs_dir):
    """RFC 5246 §7.4.6: an ECDSA client key and a CertificateRequest listing only RSA
    schemes → an empty Certificate, not internal_error."""
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    sc = server_config(certs_dir, key_type="rsa", client_ca_file=str(certs_dir / "ca.pem"),
                       signature_algorithms=["rsa_pss_rsae_sha256", "rsa_pkcs1_sha256"])
    p = connect(client_config(certs_dir, versions=["1.2"], certificate_chain=chain, private_key=key), sc)
    assert p.client.error is None and p.server.error is None, (p.client.error, p.server.error)
    assert p.client.handshake_complete and p.server.handshake_complete
    sent = [e for e in p.client.trace.entries
            if e.kind == "message" and e.direction == "sent" and e.name.startswith("Certificate")
            and not e.name.startswith("CertificateVerify")]
    assert len(sent) == 1 and sent[0].message.certificate_list == []
    assert not any(e.name.startswith("CertificateVerify") for e in p.client.trace.entries
                   if e.kind == "message" and e.direction == "sent")
    assert p.server.negotiated.get("client_certificate") is None


# --------------------------------------------------------------------------- 9. bad server key

@pytest.mark.parametrize("insecure", [False, True], ids=["verified", "insecure"])
def test_tls12_server_certificate_with_unsupported_curve(insecure, certs_dir):
    """A server certificate whose key uses an unknown curve: a certificate alert
    (bad_certificate / unsupported_certificate), never internal_error.  With verification
    the signature over the altered certificate fails; with ``insecure`` the key itself is
    the problem (the path that used to raise a raw ValueError)."""
    client = ClientConnection(client_config(certs_dir, versions=["1.2"], insecure=insecure))
    client.start_handshake()
    server = ServerConnection(server_config(certs_dir))
    server.receive_data(client.data_to_send())
    flight = bytearray(server.data_to_send())
    oid = bytes.fromhex("06082a8648ce3d030107")  # id prime256v1, 1.2.840.10045.3.1.7
    at = flight.find(oid)
    assert at > 0
    flight[at + 9] = 0x08  # ...3.1.8: no such curve
    events = client.receive_data(bytes(flight))
    assert client.closed
    alert = closed_event(events).alert_sent
    assert alert in ("bad_certificate", "unsupported_certificate"), client.error
    if insecure:
        assert alert == "unsupported_certificate"


# --------------------------------------------------------------------------- 10. warning alerts

def test_tls12_warning_unrecognized_name_does_not_close(certs_dir):
    """RFC 5246 §7.2.2 / RFC 6066 §3: unrecognized_name may come as a warning; it ends nothing."""
    p = connect(client_config(certs_dir, versions=["1.2"]), server_config(certs_dir))
    assert p.client.handshake_complete and p.client.tls12
    p.server._send_alert(1, 112)  # warning unrecognized_name
    events = p.client.receive_data(p.server.data_to_send())
    assert not p.client.closed and p.client.error is None
    assert not any(isinstance(e, ev.ConnectionClosed) for e in events)
    p.server.send_application_data(b"after the warning")
    assert app_data(p.client.receive_data(p.server.data_to_send())) == b"after the warning"


def test_tls12_warning_handshake_failure_closes(certs_dir):
    """RFC 5246 §7.2.2: handshake_failure is always fatal, whatever level it is sent with."""
    p = connect(client_config(certs_dir, versions=["1.2"]), server_config(certs_dir))
    assert p.client.handshake_complete and p.client.tls12
    p.server._send_alert(1, 40)  # "warning" handshake_failure
    events = p.client.receive_data(p.server.data_to_send())
    assert p.client.closed
    closed = closed_event(events)
    assert closed.error is not None
    assert closed.alert_received == "handshake_failure"
