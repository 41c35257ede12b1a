"""RFC 8448 §4, "Resumed 0-RTT Handshake", replayed through the real state machines.

The §4 client resumes with the ticket the §3 server issued (NewSessionTicket in
rfc8448_simple_1rtt.json): its PSK is §3's resumption_psk, it offers early_data and
sends six bytes of 0-RTT data.  The client side uses a :class:`Session` built from that
NewSessionTicket in a :class:`TicketStore`; the server side a tiny ticket codec that maps
the RFC's (opaque) ticket bytes to a :class:`TicketState`.  Every wire byte and every
secret is compared with the trace.
"""
from __future__ import annotations

import pytest
from test_replay import (
    SECRET_NAMES,
    cert_chain_from,
    check_secrets,
    load,
    records,
    rfc8448_rsa_key,
    split_records,
    x25519_key,
)

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.events import ApplicationData, ConnectionClosed, HandshakeComplete
from tlslab.proto.extensions import ET
from tlslab.proto.keyschedule import SUITES, KeySchedule, Transcript, hash_bytes
from tlslab.proto.messages import parse_message
from tlslab.proto.names import NamedGroup, name_of
from tlslab.proto.protection import RecordProtector
from tlslab.proto.provider import ReplayProvider
from tlslab.proto.server import ServerConnection
from tlslab.proto.tickets import Session, TicketState, TicketStore

SUITE = SUITES[0x1301]
EARLY_SECRET_NAMES = ["early_secret", "binder_key", "client_early_traffic_secret",
                      "early_exporter_master_secret"]


@pytest.fixture
def simple(vectors_dir):
    return load(vectors_dir, "rfc8448_simple_1rtt")


@pytest.fixture
def resumed(vectors_dir):
    return load(vectors_dir, "rfc8448_resumed_0rtt")


def h(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


def nst_of(simple):
    """§3's NewSessionTicket: lifetime 30 s, one ticket, nonce 0000, early_data 1024."""
    return parse_message(h(simple["named"]["new_session_ticket"]))


def offered_psk(resumed):
    return parse_message(h(resumed["named"]["client_hello"])).ext_value(ET.pre_shared_key)


def client_age_ms(simple, resumed) -> int:
    """The ticket age the §4 client reported: obfuscated_ticket_age - ticket_age_add (6 ms)."""
    obfuscated = offered_psk(resumed).identities[0].obfuscated_ticket_age
    return (obfuscated - nst_of(simple).ticket_age_add) & 0xFFFFFFFF


def rfc_session(simple, resumed, now: float) -> Session:
    """What the §3 client keeps from the NewSessionTicket, received so that its
    obfuscated age at ``now`` is the one the §4 ClientHello carries."""
    nst = nst_of(simple)
    sn = simple["named"]
    psk = KeySchedule(SUITE).resumption_psk(h(sn["resumption_master_secret"]), nst.ticket_nonce)
    ed = nst.ext_value(ET.early_data)
    # half a millisecond more: int() in Session.obfuscated_age truncates, and now - x is not exact
    received_at = now - (client_age_ms(simple, resumed) + 0.5) / 1000
    return Session(server_name="server", ticket=nst.ticket, psk=psk, suite=0x1301,
                   age_add=nst.ticket_age_add, lifetime=nst.ticket_lifetime, received_at=received_at,
                   max_early_data=ed.max_early_data_size,
                   verifier=client_config().verifier_id)  # earned by the (insecure) §3 client


class RfcTicketCodec:
    """A ticket codec (``ServerConfig.ticket_keys``) that knows exactly one ticket: the one
    the RFC's server issued in §3.  Its state is what that server must have sealed in it."""

    def __init__(self, simple, resumed) -> None:
        nst = nst_of(simple)
        self.ticket = nst.ticket
        self.psk = h(simple["named"]["resumption_psk"])
        self.lifetime = nst.ticket_lifetime
        self.age_add = nst.ticket_age_add
        self.max_early_data = nst.ext_value(ET.early_data).max_early_data_size
        self.age_ms = client_age_ms(simple, resumed)
        self.tokens: list[bytes] = []

    def seal(self, state, now, provider) -> bytes:
        raise AssertionError("the §4 server issues no ticket")

    def open(self, ticket: bytes, now: float) -> TicketState | None:
        if ticket != self.ticket:
            return None
        return TicketState(suite=0x1301, psk=self.psk, issued_ms=int(now * 1000) - self.age_ms,
                           lifetime=self.lifetime, age_add=self.age_add,
                           max_early_data=self.max_early_data, server_name="server")  # the §3 SNI

    def first_use(self, token: bytes, now: float, window: float) -> bool:
        self.tokens.append(token)
        return True


def client_config(**kw) -> ClientConfig:
    return ClientConfig(server_name="server", insecure=True, **kw)


def server_config(simple, resumed, vectors_dir) -> ServerConfig:
    """The §4 server: ServerHello extensions in the RFC's order (pre_shared_key first), the
    RFC's supported_groups in EncryptedExtensions, 0-RTT up to 1024 bytes, no new ticket."""
    rn = resumed["named"]
    sn = simple["named"]
    ee = parse_message(h(rn["encrypted_extensions"]))
    advertised = ee.ext_value(ET.supported_groups).named_group_list
    codec = RfcTicketCodec(simple, resumed)
    return ServerConfig(certificate_chain=cert_chain_from(sn["server_certificate"]),
                        private_key=rfc8448_rsa_key(vectors_dir),
                        advertised_groups=[name_of(NamedGroup, g) for g in advertised],
                        extension_order=["pre_shared_key", "key_share", "supported_versions"],
                        max_early_data_size=codec.max_early_data, ticket_keys=codec, tickets=0)


# -- what matches with the engine as it is ---------------------------------------------------

def test_rfc8448_0rtt_ticket_session_and_records(simple, resumed):
    """§3's ticket becomes the §4 PSK; the Session reproduces the obfuscated age; the
    early-data, EndOfEarlyData and Finished records are sealed under the right keys and
    sequence numbers (early key: seq 0 data, seq 1 EndOfEarlyData; handshake key: seq 0)."""
    rn, sn = resumed["named"], simple["named"]
    provider = ReplayProvider()
    now = provider.time()
    sess = rfc_session(simple, resumed, now)
    assert sess.psk.hex() == sn["resumption_psk"] == rn["psk"]
    assert sess.max_early_data == 1024 and sess.lifetime == 30
    ident = offered_psk(resumed).identities[0]
    assert ident.identity == sess.ticket
    assert sess.obfuscated_age(now) == ident.obfuscated_ticket_age
    assert not sess.expired(now)
    store = TicketStore()
    store.add(sess)
    assert store.take("server", now) is sess

    # the binder and early secrets, as the client's _add_psk derives them
    ks = KeySchedule(SUITE)
    ks.extract_early(sess.psk)
    t = Transcript(SUITE.hash_name)
    t.update(h(rn["client_hello_prefix"]))
    assert ks.verify_data(ks.binder_key(resumption=True), t.digest()).hex() == rn["binder"]
    t = Transcript(SUITE.hash_name)
    t.update(h(rn["client_hello"]))
    assert ks.early_traffic(t.digest()).hex() == rn["client_early_traffic_secret"]
    check_secrets(ks, rn, EARLY_SECRET_NAMES)

    c_recs = records(resumed, "client")
    early = RecordProtector(SUITE, h(rn["client_early_traffic_secret"]))
    assert bytes(early.seal(23, h(resumed["records"][1]["payload"]))) == c_recs[1]
    assert bytes(early.seal(22, h(rn["end_of_early_data"]))) == c_recs[2]
    hs = RecordProtector(SUITE, h(rn["client_handshake_traffic_secret"]))
    assert bytes(hs.seal(22, h(rn["client_finished"]))) == c_recs[3]


def test_rfc8448_0rtt_client_own_hello_offers_rfc_ticket(simple, resumed, vectors_dir):
    """Without a template the client builds its own ClientHello, so the bytes differ from
    the RFC's, but the PSK offer is the RFC's: same ticket, same obfuscated age, a binder
    under the RFC's binder_key; and the RFC server (ticket codec) resumes it with 0-RTT."""
    rn = resumed["named"]
    ch_rfc = parse_message(h(rn["client_hello"]))
    cprov = ReplayProvider(randoms=[ch_rfc.random],
                           keys={"x25519": [x25519_key(rn["client_ephemeral_x25519_private_key"])]})
    store = TicketStore()
    store.add(rfc_session(simple, resumed, cprov.time()))
    client = ClientConnection(client_config(session_store=store, compatibility_mode=False,
                                            groups=["x25519"]), cprov)
    early_data = h(resumed["records"][1]["payload"])
    client.start_handshake(early_data=early_data)
    flight = split_records(client.data_to_send())
    assert len(flight) == 2  # ClientHello, then the 0-RTT record
    ch = parse_message(flight[0][5:])
    assert ch.extensions[-1].type == ET.pre_shared_key
    assert ch.ext(ET.early_data) is not None
    offer = ch.ext_value(ET.pre_shared_key)
    rfc_ident = offered_psk(resumed).identities[0]
    assert [(i.identity, i.obfuscated_ticket_age) for i in offer.identities] == \
        [(rfc_ident.identity, rfc_ident.obfuscated_ticket_age)]
    check_secrets(client.hs.offer.early_schedule, rn, ["early_secret", "binder_key"])
    ks = KeySchedule(SUITE)
    truncated = flight[0][5:len(flight[0]) - (2 + 1 + SUITE.hash_len)]
    assert offer.binders == [ks.verify_data(h(rn["binder_key"]), hash_bytes("sha256", truncated))]
    # the 0-RTT record is under client_early_traffic_secret over this ClientHello
    c_early = client.hs.offer.early_schedule.secrets["client_early_traffic_secret"]
    ks.extract_early(h(rn["psk"]))
    assert c_early == ks.early_traffic(hash_bytes("sha256", flight[0][5:]))
    opened = RecordProtector(SUITE, c_early).open(flight[1][:5], flight[1][5:])
    assert opened == (23, early_data)

    # against the server configured as the RFC's (it knows the §3 ticket)
    sh_rfc = parse_message(h(rn["server_hello"]))
    sprov = ReplayProvider(randoms=[sh_rfc.random],
                           keys={"x25519": [x25519_key(rn["server_ephemeral_x25519_private_key"])]})
    config = server_config(simple, resumed, vectors_dir)
    server = ServerConnection(config, sprov)
    assert server.receive_data(flight[0]) == []
    assert server.receive_data(flight[1]) == [ApplicationData(early_data, early=True)]
    events = client.receive_data(server.data_to_send())
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].resumed and events[0].early_data_accepted
    assert client.early_data_accepted is True
    events = server.receive_data(client.data_to_send())  # EndOfEarlyData, Finished
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].resumed and events[0].early_data_accepted
    assert config.ticket_keys.tokens == [offer.binders[0]]
    for name in SECRET_NAMES:
        assert server.schedule.secrets[name] == client.schedule.secrets[name], name
    assert server.schedule.secrets["client_early_traffic_secret"] == c_early


# -- byte-for-byte client: needs the engine patch ----------------------------------------------

def test_rfc8448_0rtt_client(simple, resumed):
    rn = resumed["named"]
    ch = parse_message(h(rn["client_hello"]))
    provider = ReplayProvider(randoms=[ch.random],
                              keys={"x25519": [x25519_key(rn["client_ephemeral_x25519_private_key"])]})
    store = TicketStore()
    store.add(rfc_session(simple, resumed, provider.time()))
    client = ClientConnection(client_config(client_hello_template=ch, session_store=store), provider)
    c_recs = records(resumed, "client")
    s_recs = records(resumed, "server")
    client.start_handshake(early_data=h(resumed["records"][1]["payload"]))
    # ClientHello with the RFC's binder, then the 0-RTT data under client_early_traffic_secret
    assert split_records(client.data_to_send()) == c_recs[:2]
    assert store.count("server") == 0  # the ticket is used once (RFC 8446 §C.4)
    check_secrets(client.hs.offer.early_schedule, rn, EARLY_SECRET_NAMES)
    events = client.receive_data(s_recs[0] + s_recs[1])
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].resumed and events[0].early_data_accepted
    assert events[0].signature_scheme is None and events[0].peer_certificates == []
    # EndOfEarlyData (early key), then Finished (client handshake key)
    assert split_records(client.data_to_send()) == c_recs[2:4]
    check_secrets(client.schedule, rn, SECRET_NAMES)
    client.send_application_data(h(resumed["records"][6]["payload"]))
    assert client.data_to_send() == c_recs[4]
    events = client.receive_data(s_recs[2])
    assert events == [ApplicationData(h(resumed["records"][7]["payload"]))]
    client.close()
    assert client.data_to_send() == c_recs[5]
    events = client.receive_data(s_recs[3])
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error is None


# -- byte-for-byte server ----------------------------------------------------------------------

def test_rfc8448_0rtt_server(simple, resumed, vectors_dir):
    rn = resumed["named"]
    sh = parse_message(h(rn["server_hello"]))
    provider = ReplayProvider(randoms=[sh.random],
                              keys={"x25519": [x25519_key(rn["server_ephemeral_x25519_private_key"])]})
    config = server_config(simple, resumed, vectors_dir)
    server = ServerConnection(config, provider)
    c_recs = records(resumed, "client")
    s_recs = records(resumed, "server")
    assert server.receive_data(c_recs[0]) == []
    # ServerHello, then EncryptedExtensions (with early_data) + Finished in one record
    assert split_records(server.data_to_send()) == s_recs[:2]
    assert config.ticket_keys.tokens == [h(rn["binder"])]  # the replay check saw the binder
    check_secrets(server.schedule, rn, ["early_secret", "client_early_traffic_secret",
                                        "early_exporter_master_secret"])
    assert server.receive_data(c_recs[1]) == [ApplicationData(h(resumed["records"][1]["payload"]),
                                                              early=True)]
    assert server.receive_data(c_recs[2]) == []  # EndOfEarlyData
    events = server.receive_data(c_recs[3])      # Finished
    assert [type(e) for e in events] == [HandshakeComplete]
    assert events[0].resumed and events[0].early_data_accepted
    assert events[0].server_name == "server" and events[0].signature_scheme is None
    check_secrets(server.schedule, rn, SECRET_NAMES)
    assert server.data_to_send() == b""  # tickets=0: the §4 server sends no NewSessionTicket
    events = server.receive_data(c_recs[4])
    assert events == [ApplicationData(h(resumed["records"][6]["payload"]))]
    server.send_application_data(h(resumed["records"][7]["payload"]))
    assert server.data_to_send() == s_recs[2]
    events = server.receive_data(c_recs[5])
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error is None
    assert server.data_to_send() == s_recs[3]  # our close_notify in answer
