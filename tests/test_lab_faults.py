"""The engine's LAB ONLY server options (proto/lab_faults.py), in memory: each misbehaves only
when asked, and the default engine does what the RFCs say in the same situation.

* heartbeat (RFC 6520, CVE-2014-0160): default -> unexpected_message (RFC 5246 §6);
  ``rfc6520`` -> an oversized payload_length is discarded silently (§4); ``heartbleed``
  -> answered with payload_length bytes of fake memory, before the handshake ends.
* early ChangeCipherSpec (CVE-2014-0224): default -> unexpected_message (RFC 5246 §7.1).
* static RSA (ROBOT): default -> bad padding is not told apart (RFC 5246 §7.4.7.1).
* resumption from a ticket (CVE-2016-9244): default -> the session ID echoed as sent
  (RFC 5077 §3.4).
"""
from __future__ import annotations

import pytest

import tlslab
from tlslab.io.memory import MemoryPair
from tlslab.proto import events as ev
from tlslab.proto.errors import HandshakeFailure
from tlslab.proto.heartbeat import HeartbeatMessage, request
from tlslab.proto.lab_faults import FAKE_MEMORY, fake_memory, leaky_decrypt_premaster
from tlslab.proto.messages import ServerHello
from tlslab.proto.record import RecordReader, plaintext_record
from tlslab.proto.tls12 import keyexchange as kx
from tlslab.scan.active.exchange import client_hello
from tlslab.scan.active.robot import VARIANTS, encoded_message, raw_encrypt
from tlslab.scan.target import ScanTarget

TARGET = ScanTarget("localhost")


@pytest.fixture(scope="module")
def rsa_identity(certs_dir):
    from tlslab.proto.config import load_identity
    return load_identity(str(certs_dir / "rsa-chain.pem"), str(certs_dir / "rsa.key"))


def _server(identity, **options):
    chain, key = identity
    return tlslab.ServerConnection(tlslab.ServerConfig(certificate_chain=chain, private_key=key,
                                                       versions=["TLS 1.2"], **options))


def _records(data: bytes) -> list[tuple[int, bytes]]:
    reader = RecordReader()
    reader.extra_types = frozenset({24})
    reader.add(data)
    out = []
    while (rec := reader.next_record(protected=True, tls12=True)) is not None:
        out.append((rec[0][0], rec[1]))
    return out


def _flight(server, **hello) -> list[tuple[int, bytes]]:
    """Feed a TLS 1.2 ClientHello; the server's flight (up to ServerHelloDone) as records."""
    server.receive_data(client_hello(TARGET, **hello))
    return _records(server.data_to_send())


def _server_hello(records) -> ServerHello:
    from tlslab.proto.messages import HandshakeBuffer
    hs = HandshakeBuffer()
    hs.add(b"".join(f for t, f in records if t == 22))
    return ServerHello.parse(hs.pop_message())


def _alerts(records) -> list[int]:
    return [f[1] for t, f in records if t == 21]


def test_heartbeat_codec_builds_and_reads_a_lying_message():
    raw = request(b"\x01", payload_length=16384)
    assert raw == b"\x01\x40\x00\x01"  # RFC 6520 §4: type, payload_length, payload
    msg = HeartbeatMessage.parse(raw)
    assert (msg.type, msg.payload_length, msg.payload, msg.consistent) == (1, 16384, b"\x01", False)
    honest = HeartbeatMessage.parse(request(b"ping", padding=bytes(16)))
    assert honest.consistent and honest.payload == b"ping"
    assert HeartbeatMessage.parse(honest.build()) == honest


OVERSIZED = plaintext_record(24, request(b"\x01", payload_length=16384), 0x0303)


# -------------------------------------------------------------------------- heartbeat

def test_default_server_refuses_heartbeat_records(rsa_identity):
    server = _server(rsa_identity)
    flight = _flight(server, heartbeat=True)
    assert _server_hello(flight).ext(15) is None  # not negotiated (RFC 6520 §2)
    events = server.receive_data(OVERSIZED)
    assert _alerts(_records(server.data_to_send())) == [10]  # unexpected_message
    assert any(isinstance(e, ev.ConnectionClosed) for e in events)


def test_rfc6520_server_discards_an_oversized_payload_length(rsa_identity):
    server = _server(rsa_identity, lab_heartbeat="rfc6520")
    assert _server_hello(_flight(server, heartbeat=True)).ext(15) is not None
    assert server.receive_data(OVERSIZED) == []
    assert server.data_to_send() == b"" and not server.closed  # discarded silently (§4)
    server.receive_data(plaintext_record(24, request(b"ping", padding=bytes(16)), 0x0303))
    (rec,) = _records(server.data_to_send())
    msg = HeartbeatMessage.parse(rec[1])
    assert (rec[0], msg.type, msg.payload_length, msg.payload) == (24, 2, 4, b"ping")


def test_heartbleed_server_answers_with_fake_memory_before_the_handshake_ends(rsa_identity):
    server = _server(rsa_identity, lab_heartbeat="heartbleed")
    _flight(server, heartbeat=True)
    assert server.state.name == "WAIT_CKE"
    server.receive_data(OVERSIZED)
    records = _records(server.data_to_send())
    assert {t for t, _ in records} == {24} and len(records) == 2  # over 2^14: two records
    msg = HeartbeatMessage.parse(b"".join(f for _, f in records))
    assert msg.type == 2 and msg.payload_length == 16384
    # the one byte sent, then nothing but the lab's obviously fake memory
    assert msg.payload == b"\x01" + fake_memory(16383) and FAKE_MEMORY in msg.payload
    assert not server.closed


# -------------------------------------------------------------------------- early CCS

CCS = plaintext_record(20, b"\x01", 0x0303)
CKE_LIKE = plaintext_record(22, bytes(48), 0x0303)


def test_default_server_refuses_an_early_change_cipher_spec(rsa_identity):
    server = _server(rsa_identity)
    _flight(server)
    server.receive_data(CCS)
    assert _alerts(_records(server.data_to_send())) == [10]
    assert server.closed and "ChangeCipherSpec" in str(server.error)


def test_early_ccs_server_accepts_it_then_fails_the_next_record(rsa_identity):
    server = _server(rsa_identity, lab_early_ccs=True)
    _flight(server)
    assert server.receive_data(CCS) == [] and server.data_to_send() == b""
    server.receive_data(CKE_LIKE)
    assert _alerts(_records(server.data_to_send())) == [20]  # bad_record_mac


# -------------------------------------------------------------------------- static RSA (ROBOT)

def _cke(server, key, variant: str) -> list[int]:
    from tlslab.proto.messages12 import ClientKeyExchange
    from tlslab.proto.provider import Provider
    em = encoded_message(variant, key.key_size // 8, Provider())
    body = kx.build_client_key_exchange("RSA", raw_encrypt(key.public_key(), em))
    server.receive_data(plaintext_record(22, ClientKeyExchange(body=body).build(), 0x0303))
    return _alerts(_records(server.data_to_send()))


@pytest.mark.parametrize("variant", [v for v, _ in VARIANTS])
def test_static_rsa_padding_is_told_apart_only_by_the_lab_option(rsa_identity, variant):
    key = rsa_identity[1]
    suites = ["TLS_RSA_WITH_AES_128_GCM_SHA256"]
    default = _server(rsa_identity, cipher_suites=suites)
    _flight(default, suites=(0x009C,))
    assert _cke(default, key, variant) == []  # RFC 5246 §7.4.7.1: nothing until Finished
    leaky = _server(rsa_identity, cipher_suites=suites, lab_rsa_padding_oracle=True)
    _flight(leaky, suites=(0x009C,))
    bad_padding = variant in ("wrong-first-bytes", "zero-in-padding", "no-separator")
    assert _cke(leaky, key, variant) == ([40] if bad_padding else [])  # handshake_failure


def test_leaky_decrypt_premaster_returns_the_premaster_of_good_padding(rsa_identity):
    from tlslab.proto.provider import Provider
    key = rsa_identity[1]
    em = encoded_message("correct", key.key_size // 8, Provider())
    assert leaky_decrypt_premaster(key, raw_encrypt(key.public_key(), em)) == em[-48:]
    with pytest.raises(HandshakeFailure):
        bad = encoded_message("no-separator", key.key_size // 8, Provider())
        leaky_decrypt_premaster(key, raw_encrypt(key.public_key(), bad))
    # the default path never raises and always yields 48 bytes
    out = kx.decrypt_premaster(key, raw_encrypt(key.public_key(), bad), 0x0303, Provider())
    assert len(out) == 48 and out[:2] == b"\x03\x03"


# -------------------------------------------------------------------------- tickets

def _resumption_echo(identity, **options) -> bytes:
    chain, key = identity
    config = tlslab.ServerConfig(certificate_chain=chain, private_key=key, versions=["TLS 1.2"],
                                 **options)
    client = tlslab.ClientConnection(tlslab.ClientConfig(insecure=True, versions=["TLS 1.2"],
                                                         server_name="localhost"))
    pair = MemoryPair(client, tlslab.ServerConnection(config))
    client.start_handshake()
    pair.pump()
    assert client.handshake_complete
    ticket = next(e.message.ticket for e in client.trace.entries
                  if e.kind == "message" and e.name == "NewSessionTicket12")
    server = tlslab.ServerConnection(config)
    server.receive_data(client_hello(TARGET, session_id=b"\x5a", ticket=ticket,
                                     suites=(0xC02B, 0xC02F, 0xC02C, 0xC030)))
    records = _records(server.data_to_send())
    assert 20 in [t for t, _ in records]  # resumed: ChangeCipherSpec follows the ServerHello
    return bytes(_server_hello(records).legacy_session_id_echo)


def test_default_server_echoes_the_session_id_it_got(rsa_identity):
    assert _resumption_echo(rsa_identity) == b"\x5a"  # RFC 5077 §3.4


def test_ticketbleed_server_echoes_32_bytes(rsa_identity):
    echo = _resumption_echo(rsa_identity, lab_ticketbleed=True)
    assert echo == b"\x5a" + (FAKE_MEMORY * 2)[:31]


def test_lab_options_are_off_by_default(rsa_identity):
    config = tlslab.ServerConfig(certificate_chain=rsa_identity[0], private_key=rsa_identity[1])
    assert (config.lab_heartbeat, config.lab_early_ccs, config.lab_rsa_padding_oracle,
            config.lab_ticketbleed) == (None, False, False, False)
    with pytest.raises(ValueError):
        tlslab.ServerConfig(certificate_chain=rsa_identity[0], private_key=rsa_identity[1],
                            lab_heartbeat="sometimes")
