"""TLS 1.3 features beyond the plain 1-RTT handshake, client ↔ server in memory (no network).

* Session tickets and PSK resumption (RFC 8446 §4.6.1, §4.2.11): resumption without a
  Certificate, psk_ke-only offers, forged and expired tickets, a wrong binder, a
  pre_shared_key that is not the last extension, resumption after a HelloRetryRequest.
* 0-RTT early data (RFC 8446 §4.2.10, §8): accepted, over the limit, rejected and
  skipped, replayed to a second server.
* Client certificates (RFC 8446 §4.3.2, §4.4.2.4): required and sent, required and
  missing, issued by a CA the server does not trust.
* KeyUpdate (RFC 8446 §4.6.3): both directions with update_requested, and a bad
  request_update value.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import whole_records as split_records

from tlslab.proto import events as ev
from tlslab.proto import extensions as X
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig, load_identity
from tlslab.proto.extensions import ET, Extension
from tlslab.proto.messages import ClientHello, KeyUpdate, ServerHello
from tlslab.proto.provider import Provider
from tlslab.proto.server import ServerConnection

pytestmark = pytest.mark.timeout(60)

SERVER_NAME = "localhost"


# --------------------------------------------------------------------------- helpers

class FutureProvider(Provider):
    """Real randomness, but a clock ``offset`` seconds ahead of the wall clock."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return super().time() + self.offset


def server_config(certs_dir: Path, **options) -> ServerConfig:
    return ServerConfig.from_files(str(certs_dir / "ecdsa-chain.pem"), str(certs_dir / "ecdsa.key"),
                                   **options)


def client_config(certs_dir: Path, **options) -> ClientConfig:
    options.setdefault("server_name", SERVER_NAME)
    return ClientConfig(ca_file=str(certs_dir / "ca.pem"), **options)


@dataclasses.dataclass
class Pair:
    client: ClientConnection
    server: ServerConnection
    client_events: list
    server_events: list

    def of(self, side: str, kind) -> list:
        events = self.client_events if side == "client" else self.server_events
        return [e for e in events if isinstance(e, kind)]

    def messages(self, conn, direction: str) -> list[str]:
        return [e.name for e in conn.trace.entries if e.kind == "message" and e.direction == direction]

    def describe(self) -> str:
        out = []
        for side, conn in (("client", self.client), ("server", self.server)):
            errors = [f"{e.name}: {e.detail}" for e in conn.trace.entries if e.kind == "error"]
            alerts = [f"{e.direction} {e.name}" for e in conn.trace.entries if e.kind == "alert"]
            out.append(f"{side}: state={conn.state.name} complete={conn.handshake_complete} "
                       f"error={conn.error!r} errors={errors} alerts={alerts}")
        return "\n".join(out)


def pump(pair: Pair, rounds: int = 20) -> Pair:
    """Move bytes both ways until neither side has anything to send."""
    for _ in range(rounds):
        moved = False
        data = pair.client.data_to_send()
        if data:
            moved = True
            pair.server_events += pair.server.receive_data(data)
        data = pair.server.data_to_send()
        if data:
            moved = True
            pair.client_events += pair.client.receive_data(data)
        if not moved:
            return pair
    raise AssertionError("connection did not settle")


def handshake(ccfg: ClientConfig, scfg: ServerConfig, early_data: bytes | None = None,
              server_provider: Provider | None = None) -> Pair:
    client = ClientConnection(ccfg)
    server = ServerConnection(scfg, server_provider)
    client.start_handshake(early_data=early_data)
    return pump(Pair(client, server, [], []))


def check_ok(pair: Pair, resumed: bool) -> None:
    assert pair.client.handshake_complete and pair.server.handshake_complete, pair.describe()
    assert pair.client.error is None and pair.server.error is None, pair.describe()
    assert pair.client.negotiated["resumed"] is resumed, pair.describe()
    assert pair.server.negotiated["resumed"] is resumed, pair.describe()
    (done,) = pair.of("client", ev.HandshakeComplete)
    assert done.resumed is resumed
    certificate_sent = "Certificate" in pair.messages(pair.server, "sent")
    certificate_received = "Certificate" in pair.messages(pair.client, "received")
    assert certificate_sent is (not resumed) and certificate_received is (not resumed)
    # data flows both ways
    pair.client.send_application_data(b"ping")
    pair.server.send_application_data(b"pong")
    pump(pair)
    assert b"ping" in b"".join(e.data for e in pair.of("server", ev.ApplicationData))
    assert b"pong" in b"".join(e.data for e in pair.of("client", ev.ApplicationData))


def first_connection(ccfg: ClientConfig, scfg: ServerConfig) -> Pair:
    """A full handshake that leaves tickets in the client's store."""
    pair = handshake(ccfg, scfg)
    check_ok(pair, resumed=False)
    tickets = pair.of("client", ev.NewSessionTicket)
    assert len(tickets) == scfg.tickets, pair.describe()
    assert ccfg.session_store.count(SERVER_NAME) == scfg.tickets
    return pair



def record(content_type: int, version: int, body: bytes) -> bytes:
    return bytes([content_type]) + version.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def alert_sent(conn) -> list[str]:
    return [e.name for e in conn.trace.entries if e.kind == "alert" and e.direction == "sent"]


def sessions(ccfg: ClientConfig) -> list:
    return ccfg.session_store._by_name[SERVER_NAME]


# --------------------------------------------------------------------------- resumption

def test_resumption_skips_certificate(certs_dir):
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    pair = handshake(ccfg, scfg)
    check_ok(pair, resumed=True)
    assert "CertificateVerify" not in pair.messages(pair.client, "received")
    assert pair.client.peer_certificates == []
    # psk_dhe_ke (the client's only mode): a key share is still exchanged
    assert pair.server.negotiated["group"] is not None
    assert pair.server.negotiated["group"] == pair.client.negotiated["group"]
    # the resumed connection issues fresh tickets in turn; one ticket was used up
    assert ccfg.session_store.count(SERVER_NAME) == min(4, 2 * scfg.tickets - 1)
    third = handshake(ccfg, scfg)
    check_ok(third, resumed=True)


def test_separate_client_configs_do_not_resume(certs_dir):
    scfg = server_config(certs_dir)
    first_connection(client_config(certs_dir), scfg)
    pair = handshake(client_config(certs_dir), scfg)
    check_ok(pair, resumed=False)


def test_session_store_none_disables_resumption(certs_dir):
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir, session_store=None)
    for _ in range(2):
        pair = handshake(ccfg, scfg)
        check_ok(pair, resumed=False)
        # no psk_key_exchange_modes offered → RFC 8446 §4.6.1: the server sends no tickets
        assert pair.of("client", ev.NewSessionTicket) == []


def test_psk_ke_only_offer_is_answered_without_key_share(certs_dir):
    """A client allowing only psk_ke (RFC 8446 §4.2.9) gets a ServerHello without key_share.

    tlslab's client offers psk_dhe_ke only, so the offer is crafted by rewriting the
    psk_key_exchange_modes extension before the binder is computed; only the server's
    answer is checked (the client would rightly refuse a ServerHello without key_share).
    """
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)

    class PskKeOnlyClient(ClientConnection):
        def _build_client_hello(self):
            ch = super()._build_client_hello()
            ch.extensions = [Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[0]))
                             if e.type == ET.psk_key_exchange_modes else e for e in ch.extensions]
            return ch

    client = PskKeOnlyClient(ccfg)
    server = ServerConnection(scfg)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    assert server.error is None, server.trace.entries
    accepted = [e for e in server.trace.entries if e.kind == "info" and e.name == "PSK accepted"]
    assert accepted and accepted[0].summary["mode"] == "psk_ke"
    sh = next(e.message for e in server.trace.entries
              if e.kind == "message" and e.direction == "sent" and e.name == "ServerHello")
    assert isinstance(sh, ServerHello)
    assert sh.ext(ET.key_share) is None and sh.ext(ET.pre_shared_key) is not None
    assert server.negotiated["group"] is None
    assert "Certificate" not in [e.name for e in server.trace.entries
                                 if e.kind == "message" and e.direction == "sent"]


def test_psk_ke_refused_by_server_config_means_full_handshake(certs_dir):
    """Server allows only psk_dhe_ke; a psk_ke-only client gets a full handshake."""
    scfg = server_config(certs_dir, psk_modes=["psk_dhe_ke"])
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)

    class PskKeOnlyClient(ClientConnection):
        def _build_client_hello(self):
            ch = super()._build_client_hello()
            ch.extensions = [Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[0]))
                             if e.type == ET.psk_key_exchange_modes else e for e in ch.extensions]
            return ch

    client = PskKeOnlyClient(ccfg)
    server = ServerConnection(scfg)
    client.start_handshake()
    pair = pump(Pair(client, server, [], []))
    check_ok(pair, resumed=False)


def test_forged_ticket_falls_back_to_full_handshake(certs_dir):
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    for s in sessions(ccfg):
        t = bytearray(s.ticket)
        t[len(t) // 2] ^= 0x01
        s.ticket = bytes(t)
    pair = handshake(ccfg, scfg)
    check_ok(pair, resumed=False)
    notes = [e.detail for e in pair.server.trace.entries if e.kind == "info"
             and e.name == "PSK identity not usable"]
    assert notes and "not a ticket we issued" in notes[0]


def test_ticket_from_another_server_is_ignored(certs_dir):
    """Tickets sealed under other ticket keys are unreadable: full handshake, no error."""
    ccfg = client_config(certs_dir)
    first_connection(ccfg, server_config(certs_dir))
    pair = handshake(ccfg, server_config(certs_dir))  # a fresh TicketKeys
    check_ok(pair, resumed=False)


def test_expired_ticket_on_the_server_side_means_full_handshake(certs_dir):
    """The server's clock is 3 hours ahead: the ticket (lifetime 7200 s) has expired, though
    the key that sealed it is still in use (keys live two 12-hour periods)."""
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    pair = handshake(ccfg, scfg, server_provider=FutureProvider(3 * 3600))
    check_ok(pair, resumed=False)
    notes = [e.detail for e in pair.server.trace.entries if e.kind == "info"
             and e.name == "PSK identity not usable"]
    assert notes and "expired" in notes[0]


def test_client_drops_expired_tickets(certs_dir):
    scfg = server_config(certs_dir, ticket_lifetime=60)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    client = ClientConnection(ccfg, FutureProvider(120))
    client.start_handshake()
    ch = next(e.message for e in client.trace.entries if e.kind == "message" and e.name == "ClientHello")
    assert ch.ext(ET.pre_shared_key) is None
    assert ccfg.session_store.count(SERVER_NAME) == 0


def test_wrong_binder_is_decrypt_error(certs_dir):
    """RFC 8446 §4.2.11: a binder that does not verify MUST abort the handshake."""
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    client = ClientConnection(ccfg)
    server = ServerConnection(scfg)
    client.start_handshake()
    records = split_records(client.data_to_send())
    ch_record = bytearray(records[0])
    assert ch_record[0] == 22 and ch_record[5] == 1
    ch_record[-1] ^= 0xFF  # the binder is the last hash_len bytes of the ClientHello
    events = server.receive_data(bytes(ch_record) + b"".join(records[1:]))
    assert type(server.error).__name__ == "DecryptError", server.trace.entries
    assert alert_sent(server) == ["decrypt_error"]
    closed = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert closed and closed[0].alert_sent == "decrypt_error"
    client_events = client.receive_data(server.data_to_send())
    assert any(isinstance(e, ev.AlertReceived) and e.name == "decrypt_error" for e in client_events)


def test_pre_shared_key_not_last_is_illegal_parameter(certs_dir):
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    client = ClientConnection(ccfg)
    client.start_handshake()
    rec = split_records(client.data_to_send())[0]
    ch = ClientHello.parse(rec[5:])
    assert ch.extensions[-1].type == ET.pre_shared_key
    moved = next(e for e in ch.extensions if e.type == ET.supported_versions)
    ch.extensions = [e for e in ch.extensions if e is not moved] + [moved]
    server = ServerConnection(scfg)
    server.receive_data(record(22, 0x0301, ch.build()))
    assert type(server.error).__name__ == "IllegalParameter"
    assert "last" in str(server.error)
    assert alert_sent(server) == ["illegal_parameter"]


def test_resumption_after_hello_retry_request(certs_dir):
    """The server wants P-256, the client sends an X25519 share: HRR, then a resumed handshake
    whose binder covers ClientHello1's hash and the HRR (RFC 8446 §4.2.11.2)."""
    scfg = server_config(certs_dir, groups=["secp256r1"])
    ccfg = client_config(certs_dir, groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    first = first_connection(ccfg, scfg)
    assert first.client.negotiated["hello_retry"] is True
    pair = handshake(ccfg, scfg)
    check_ok(pair, resumed=True)
    assert pair.client.negotiated["hello_retry"] is True
    assert pair.server.negotiated["hello_retry"] is True
    assert pair.server.negotiated["group"] == "secp256r1"
    assert pair.messages(pair.client, "sent").count("ClientHello") == 2


# --------------------------------------------------------------------------- 0-RTT

def test_early_data_accepted(certs_dir):
    scfg = server_config(certs_dir, max_early_data_size=1024)
    ccfg = client_config(certs_dir)
    first = first_connection(ccfg, scfg)
    assert all(t.max_early_data_size == 1024 for t in first.of("client", ev.NewSessionTicket))
    pair = handshake(ccfg, scfg, early_data=b"GET /early HTTP/1.0\r\n\r\n")
    check_ok(pair, resumed=True)
    assert pair.client.early_data_accepted is True
    (done,) = pair.of("client", ev.HandshakeComplete)
    assert done.early_data_accepted is True
    early = [e for e in pair.of("server", ev.ApplicationData) if e.early]
    assert b"".join(e.data for e in early) == b"GET /early HTTP/1.0\r\n\r\n"
    # the data sent after the handshake is not early
    assert [e.data for e in pair.of("server", ev.ApplicationData) if not e.early] == [b"ping"]
    assert "EndOfEarlyData" in pair.messages(pair.server, "received")


def test_early_data_not_sent_without_permission(certs_dir):
    """Tickets without early_data (server max 0): the client does not send 0-RTT at all."""
    scfg = server_config(certs_dir)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    pair = handshake(ccfg, scfg, early_data=b"too early")
    check_ok(pair, resumed=True)
    assert pair.client.early_data_accepted is None
    assert not any(e.early for e in pair.of("server", ev.ApplicationData))


def test_server_half_rtt_data(certs_dir):
    """RFC 8446 §4.4.4: the server may send data right after its Finished (0.5-RTT)."""
    ccfg, scfg = client_config(certs_dir), server_config(certs_dir)
    client, server = ClientConnection(ccfg), ServerConnection(scfg)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    server.send_application_data(b"half-rtt")
    events = client.receive_data(server.data_to_send())
    assert client.handshake_complete
    assert [e.data for e in events if isinstance(e, ev.ApplicationData)] == [b"half-rtt"]


def test_server_half_rtt_data_while_waiting_for_eoed(certs_dir):
    scfg = server_config(certs_dir, max_early_data_size=1024)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    client, server = ClientConnection(ccfg), ServerConnection(scfg)
    client.start_handshake(early_data=b"GET / HTTP/1.0\r\n\r\n")
    events = server.receive_data(client.data_to_send())
    assert [e.data for e in events if isinstance(e, ev.ApplicationData) and e.early]
    server.send_application_data(b"answer to the early request")
    pair = pump(Pair(client, server, [], list(events)))
    check_ok(pair, resumed=True)
    assert pair.of("client", ev.ApplicationData)[0].data == b"answer to the early request"


def test_early_data_over_the_limit_is_unexpected_message(certs_dir):
    """RFC 8446 §4.2.10: more 0-RTT data than max_early_data_size → unexpected_message.

    The ticket allows 16384 bytes (issued by config A); the server that receives it (config B,
    same ticket keys) allows only 16, so the client's own check does not stop it."""
    issuing = server_config(certs_dir, max_early_data_size=16384)
    strict = server_config(certs_dir, max_early_data_size=16, ticket_keys=issuing.ticket_keys)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, issuing)
    pair = handshake(ccfg, strict, early_data=b"x" * 100)
    assert not pair.server.handshake_complete
    assert type(pair.server.error).__name__ == "UnexpectedMessage", pair.describe()
    assert alert_sent(pair.server) == ["unexpected_message"]
    assert pair.client.closed


def test_early_data_rejected_is_skipped(certs_dir):
    """Server with max_early_data_size=0 (ticket from a server that allowed it): the handshake
    completes, the 0-RTT records are skipped (RFC 8446 §4.2.10), the client is told."""
    issuing = server_config(certs_dir, max_early_data_size=1024)
    refusing = server_config(certs_dir, max_early_data_size=0, ticket_keys=issuing.ticket_keys)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, issuing)
    pair = handshake(ccfg, refusing, early_data=b"early bytes" * 20)
    check_ok(pair, resumed=True)
    assert pair.client.early_data_accepted is False
    assert pair.of("client", ev.HandshakeComplete)[0].early_data_accepted is False
    assert not any(e.early for e in pair.of("server", ev.ApplicationData))
    assert [e.data for e in pair.of("server", ev.ApplicationData)] == [b"ping"]
    skipped = [e for e in pair.server.trace.entries if e.kind == "record"
               and "rejected 0-RTT" in str(e.summary.get("note", ""))]
    assert skipped
    assert "EndOfEarlyData" not in pair.messages(pair.client, "sent")


def test_replayed_early_data_is_rejected(certs_dir):
    """RFC 8446 §8: the same ClientHello with 0-RTT data, sent to a second server sharing the
    ticket keys, must not have its early data accepted again."""
    scfg = server_config(certs_dir, max_early_data_size=1024)
    ccfg = client_config(certs_dir)
    first_connection(ccfg, scfg)
    client = ClientConnection(ccfg)
    client.start_handshake(early_data=b"transfer 100 coins")
    flight = client.data_to_send()

    server1 = ServerConnection(scfg)
    events1 = server1.receive_data(flight)
    assert [e.data for e in events1 if isinstance(e, ev.ApplicationData) and e.early] == \
        [b"transfer 100 coins"]

    server2 = ServerConnection(server_config(certs_dir, max_early_data_size=1024,
                                             ticket_keys=scfg.ticket_keys))
    events2 = server2.receive_data(flight)
    assert server2.error is None, server2.trace.entries
    assert not [e for e in events2 if isinstance(e, ev.ApplicationData)]
    assert server2.resumed  # the PSK is still fine; only the 0-RTT data is refused
    notes = [e.detail for e in server2.trace.entries if e.kind == "info"
             and e.name == "0-RTT early data rejected"]
    assert notes and "replayed" in notes[0]
    sent = [e.message for e in server2.trace.entries if e.kind == "message" and e.direction == "sent"
            and e.name == "EncryptedExtensions"]
    assert sent and sent[0].ext(ET.early_data) is None

    # the genuine connection completes with server1
    pair = pump(Pair(client, server1, [], list(events1)))
    check_ok(pair, resumed=True)
    assert client.early_data_accepted is True


def test_no_early_data_after_hello_retry_request(certs_dir):
    """RFC 8446 §4.1.2: early data is rejected when the server sends HelloRetryRequest."""
    scfg = server_config(certs_dir, max_early_data_size=1024, groups=["secp256r1"])
    ccfg = client_config(certs_dir, groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    first_connection(ccfg, scfg)
    pair = handshake(ccfg, scfg, early_data=b"early")
    check_ok(pair, resumed=True)
    assert pair.client.early_data_accepted is False
    assert not any(e.early for e in pair.of("server", ev.ApplicationData))


# --------------------------------------------------------------------------- client certificates

def mtls_server(certs_dir: Path, require: bool = True) -> ServerConfig:
    return server_config(certs_dir, client_ca_file=str(certs_dir / "ca.pem"), require_client_cert=require)


def client_identity(certs_dir: Path) -> dict:
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    return {"certificate_chain": chain, "private_key": key}


def test_mtls_required_and_sent(certs_dir):
    pair = handshake(client_config(certs_dir, **client_identity(certs_dir)), mtls_server(certs_dir))
    check_ok(pair, resumed=False)
    assert pair.server.peer_certificates
    assert pair.server.peer_certificates[0] == client_identity(certs_dir)["certificate_chain"][0]
    assert "CertificateRequest" in pair.messages(pair.client, "received")
    assert pair.messages(pair.server, "received")[1:3] == ["Certificate", "CertificateVerify"]
    assert pair.server.negotiated.get("client_signature_scheme")


def test_mtls_optional_without_certificate(certs_dir):
    pair = handshake(client_config(certs_dir), mtls_server(certs_dir, require=False))
    check_ok(pair, resumed=False)
    assert pair.server.peer_certificates == []


def test_mtls_required_but_missing_is_certificate_required(certs_dir):
    pair = handshake(client_config(certs_dir), mtls_server(certs_dir))
    assert not pair.server.handshake_complete
    assert alert_sent(pair.server) == ["certificate_required"]
    assert any(isinstance(e, ev.AlertReceived) and e.name == "certificate_required"
               for e in pair.client_events)


def test_mtls_untrusted_client_ca_is_unknown_ca(certs_dir):
    from tlslab.workbench.certgen import make_throwaway_chain
    chain, key, _ca = make_throwaway_chain(names=("client.example",))
    pair = handshake(client_config(certs_dir, certificate_chain=chain, private_key=key),
                     mtls_server(certs_dir))
    assert not pair.server.handshake_complete
    assert alert_sent(pair.server) == ["unknown_ca"], pair.describe()
    assert any(isinstance(e, ev.AlertReceived) and e.name == "unknown_ca" for e in pair.client_events)


def test_mtls_resumption_keeps_no_certificate_exchange(certs_dir):
    """A resumed handshake carries no CertificateRequest (RFC 8446 §4.3.2: not with a PSK)."""
    scfg = mtls_server(certs_dir)
    ccfg = client_config(certs_dir, **client_identity(certs_dir))
    first_connection(ccfg, scfg)
    pair = handshake(ccfg, scfg)
    check_ok(pair, resumed=True)
    assert "CertificateRequest" not in pair.messages(pair.client, "received")


# --------------------------------------------------------------------------- KeyUpdate

def key_updates(conn, which: str) -> int:
    return sum(1 for e in conn.trace.entries if e.kind == "secret" and e.name == f"{which} key updated")


@pytest.mark.parametrize("initiator", ["client", "server"])
def test_key_update_requested(certs_dir, initiator):
    pair = handshake(client_config(certs_dir), server_config(certs_dir))
    check_ok(pair, resumed=False)
    a, b = (pair.client, pair.server) if initiator == "client" else (pair.server, pair.client)
    for round_ in range(3):
        a.send_key_update(request_update=True)
        pump(pair)
        n = round_ + 1
        assert key_updates(a, "write") == n and key_updates(a, "read") == n, pair.describe()
        assert key_updates(b, "write") == n and key_updates(b, "read") == n, pair.describe()
        pair.client.send_application_data(b"c%d" % n)
        pair.server.send_application_data(b"s%d" % n)
        pump(pair)
    assert pair.client.error is None and pair.server.error is None, pair.describe()
    got_server = b"".join(e.data for e in pair.of("server", ev.ApplicationData))
    got_client = b"".join(e.data for e in pair.of("client", ev.ApplicationData))
    assert got_server.endswith(b"c1c2c3") and got_client.endswith(b"s1s2s3")
    assert pair.messages(b, "sent").count("KeyUpdate") == 3
    kus = [e.message for e in b.trace.entries if e.kind == "message" and e.name == "KeyUpdate"
           and e.direction == "sent"]
    assert all(m.request_update == 0 for m in kus)


def test_key_update_not_requested(certs_dir):
    pair = handshake(client_config(certs_dir), server_config(certs_dir))
    check_ok(pair, resumed=False)
    pair.client.send_key_update(request_update=False)
    pair.client.send_application_data(b"after")
    pump(pair)
    assert key_updates(pair.server, "read") == 1 and key_updates(pair.server, "write") == 0
    assert "KeyUpdate" not in pair.messages(pair.server, "sent")
    assert pair.of("server", ev.ApplicationData)[-1].data == b"after"


def test_key_update_bad_request_value_is_illegal_parameter(certs_dir):
    pair = handshake(client_config(certs_dir), server_config(certs_dir))
    check_ok(pair, resumed=False)
    pair.client._send_message(KeyUpdate(request_update=5))
    pair.client._update_write_key()
    pump(pair)
    assert type(pair.server.error).__name__ == "IllegalParameter", pair.describe()
    assert alert_sent(pair.server) == ["illegal_parameter"]
    assert pair.client.closed


def test_key_update_before_handshake_is_refused(certs_dir):
    client = ClientConnection(client_config(certs_dir))
    client.start_handshake()
    with pytest.raises(ConnectionError):
        client.send_key_update()
