"""Property tests: arbitrary and mutated bytes never escape the engine as anything but
a TLSError (parsers) or one alert (connections), and the codec round-trips.

Example counts are kept moderate so the whole file runs in well under 30 s.
"""
from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.errors import InternalError, TLSError
from tlslab.proto.extensions import (ET, Extension, KeyShareCH, KeyShareEntry, NamedGroupList,
                                     SignatureSchemeList, SupportedVersionsCH)
from tlslab.proto.messages import ClientHello, HandshakeBuffer, parse_message
from tlslab.proto.protection import RecordProtector
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain

CLIENTHELLOS = Path(os.environ.get("TLSLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "peers" / "clienthellos"
FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
GREASE = [0x0A0A + 0x1010 * i for i in range(16)]


# --------------------------------------------------------------------------- set-up

@lru_cache(maxsize=1)
def _pki():
    chain, key, ca = make_throwaway_chain()
    return chain, key, ca


def _server() -> ServerConnection:
    chain, key, _ = _pki()
    return ServerConnection(ServerConfig(certificate_chain=chain, private_key=key))


def _client_wait_sh() -> tuple[ClientConnection, bytes]:
    """A client that sent its ClientHello, and the bytes it sent."""
    c = ClientConnection(ClientConfig(server_name="localhost", insecure=True))
    c.start_handshake()
    return c, c.data_to_send()


def _client_wait_ee() -> tuple[ClientConnection, RecordProtector]:
    """A client in WAIT_EE (handshake keys installed) and a sealer for the server's side."""
    c, hello = _client_wait_sh()
    s = _server()
    s.receive_data(hello)
    out = s.data_to_send()
    n = int.from_bytes(out[3:5], "big")
    c.receive_data(out[:5 + n])  # the ServerHello record alone
    assert c.state.name == "WAIT_EE"
    sealer = RecordProtector(s.suite, s.schedule.secrets["server_handshake_traffic_secret"])
    return c, sealer


def _feed(conn, chunks: list[bytes]) -> None:
    """Feed chunks; nothing may escape, at most one alert may go out, and it must be quick."""
    start = time.monotonic()
    out = bytearray()
    for chunk in chunks:
        conn.receive_data(chunk)  # an exception here fails the example
        out += conn.data_to_send()
        if conn.closed:
            assert conn.receive_data(chunk or b"\x00") == []
    # plaintext alerts can be counted directly; encrypted ones by the engine's own bookkeeping
    assert_no_crash(conn, chunks)
    plain_alerts = _count_plain_alerts(bytes(out))
    assert plain_alerts <= 1
    if conn.error is not None:
        assert conn.closed
        assert str(conn.error) and "\n" not in str(conn.error)
    alerts_sent = [e for e in conn.trace.of_kind("alert") if e.direction == "sent"]
    assert len(alerts_sent) <= 1
    assert time.monotonic() - start < 5


def assert_no_crash(conn, data) -> None:
    """internal_error means a Python exception escaped a parser or a handler (connection.py
    turns it into InternalError so the peer sees one alert): for fuzz input that is a bug."""
    if isinstance(conn.error, InternalError):
        tb = conn.internal_error_detail
        pytest.fail(f"internal_error on fuzz input: {conn.error}\ninput: {data!r}\n"
                    + (tb or ""))


def _count_plain_alerts(out: bytes) -> int:
    i = n = 0
    while i + 5 <= len(out):
        length = int.from_bytes(out[i + 3:i + 5], "big")
        if out[i] == 21:
            n += 1
        i += 5 + length
    return n


# --------------------------------------------------------------------------- engines

chunks = st.lists(st.binary(max_size=600), min_size=1, max_size=4)


def _record(ctype: int, body: bytes) -> bytes:
    return bytes((ctype, 3, 3)) + len(body).to_bytes(2, "big") + body


#: bytes that are mostly well-framed records, so the fuzzer gets past the record layer
framed = st.lists(st.tuples(st.sampled_from([20, 21, 22, 23, 24]), st.binary(max_size=300))
                  .map(lambda t: _record(*t)), min_size=1, max_size=4)


@FAST
@given(data=st.one_of(chunks, framed))
def test_server_receive_arbitrary_bytes(data):
    _feed(_server(), data)


@FAST
@given(body=st.binary(max_size=400), msg_type=st.integers(0, 255))
def test_server_receive_arbitrary_handshake_message(body, msg_type):
    msg = bytes((msg_type,)) + len(body).to_bytes(3, "big") + body
    _feed(_server(), [_record(22, msg)])


@FAST
@given(data=st.one_of(chunks, framed))
def test_client_wait_sh_arbitrary_bytes(data):
    _feed(_client_wait_sh()[0], data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(st.tuples(st.sampled_from([21, 22, 23, 20, 0, 99]),
                                   st.binary(max_size=300)), min_size=1, max_size=3),
       raw=st.binary(max_size=200))
def test_client_wait_ee_arbitrary_bytes(payloads, raw):
    client, sealer = _client_wait_ee()
    # correctly encrypted records with arbitrary content, then arbitrary raw bytes
    chunks = [sealer.seal(ctype, body) if ctype else _record(23, body) for ctype, body in payloads]
    _feed(client, chunks + [raw])


# --------------------------------------------------------------------------- parsers

@FAST
@given(data=st.binary(max_size=400))
def test_parse_message_arbitrary_bytes(data):
    try:
        parse_message(data)
    except TLSError:
        pass


@FAST
@given(body=st.binary(max_size=400), msg_type=st.integers(0, 30))
def test_parse_message_well_framed(body, msg_type):
    try:
        msg = parse_message(bytes((msg_type,)) + len(body).to_bytes(3, "big") + body)
    except TLSError:
        return
    assert msg.build() == msg.raw


@FAST
@given(data=st.binary(max_size=400))
def test_client_hello_parse_arbitrary_bytes(data):
    framed = b"\x01" + len(data).to_bytes(3, "big") + data
    for candidate in (data, framed):
        try:
            ClientHello.parse(candidate)
        except TLSError:
            pass


# --------------------------------------------------------------------------- round trip

u16 = st.integers(0, 0xFFFF)
known_suites = st.sampled_from([0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0x00FF, 0xCCA9])
known_groups = st.sampled_from([0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x0100, 0x11EC])
reserved_types = {int(t) for t in ET}


@st.composite
def client_hellos(draw):
    suites = draw(st.lists(st.one_of(known_suites, st.sampled_from(GREASE), u16), min_size=1, max_size=20))
    groups = draw(st.lists(st.one_of(known_groups, st.sampled_from(GREASE), u16), min_size=1, max_size=10))
    exts = [Extension(ET.supported_groups, NamedGroupList(named_group_list=groups)),
            Extension(ET.signature_algorithms, SignatureSchemeList(
                supported_signature_algorithms=draw(st.lists(u16, min_size=1, max_size=10)))),
            Extension(ET.supported_versions, SupportedVersionsCH(
                versions=draw(st.lists(st.one_of(st.sampled_from([0x0304, 0x0303]),
                                                 st.sampled_from(GREASE)), min_size=1, max_size=5)))),
            Extension(ET.key_share, KeyShareCH(client_shares=[
                KeyShareEntry(group=g, key_exchange=draw(st.binary(min_size=1, max_size=40)))
                for g in draw(st.lists(st.one_of(known_groups, st.sampled_from(GREASE)),
                                       max_size=3, unique=True))]))]
    unknown_types = draw(st.lists(
        st.one_of(st.sampled_from(GREASE), u16.filter(lambda t: t not in reserved_types)),
        max_size=5, unique=True))
    for t in unknown_types:
        if t in {e.type for e in exts}:
            continue
        exts.insert(draw(st.integers(0, len(exts))),
                    Extension(t, data=draw(st.binary(max_size=50))))
    return ClientHello(legacy_version=draw(st.sampled_from([0x0303, 0x0301, 0x0302])),
                       random=draw(st.binary(min_size=32, max_size=32)),
                       legacy_session_id=draw(st.binary(max_size=32)),
                       cipher_suites=suites,
                       legacy_compression_methods=draw(st.sampled_from([b"\x00", b"\x01\x00"])),
                       extensions=exts)


@FAST
@given(ch=client_hellos())
def test_client_hello_round_trip(ch):
    raw = ch.build()
    parsed = ClientHello.parse(raw)
    assert parsed.build() == raw
    assert parsed.raw == raw
    assert [e.type for e in parsed.extensions] == [e.type for e in ch.extensions]
    for e in parsed.extensions:
        if e.type not in reserved_types:
            assert e.value is None  # unknown and GREASE extensions stay raw
    assert parsed.cipher_suites == ch.cipher_suites


# --------------------------------------------------------------------------- real captures

def _capture_messages() -> list[tuple[str, bytes]]:
    """Every ClientHello capture, record headers stripped (a hello may span records)."""
    if not CLIENTHELLOS.is_dir():
        return []
    out = []
    for path in sorted(CLIENTHELLOS.glob("*.bin")):
        data, i, body = path.read_bytes(), 0, bytearray()
        while i + 5 <= len(data):
            n = int.from_bytes(data[i + 3:i + 5], "big")
            body += data[i + 5:i + 5 + n]
            i += 5 + n
        buf = HandshakeBuffer()
        buf.add(bytes(body))
        for msg in buf.pop_messages():
            out.append((path.stem, msg))
    return out


CAPTURES = _capture_messages()


@pytest.mark.skipif(not CAPTURES, reason=f"no ClientHello captures in {CLIENTHELLOS}")
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_real_client_hellos(data):
    name, msg = data.draw(st.sampled_from(CAPTURES), label="capture")
    b = bytearray(msg)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "byte", "delete", "insert"]))
        if not b:
            break
        pos = data.draw(st.integers(0, len(b) - 1))
        if kind == "flip":
            b[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "truncate":
            del b[pos:]
        elif kind == "byte":
            b[pos] = data.draw(st.integers(0, 255))
        elif kind == "delete":
            del b[pos]
        else:
            b.insert(pos, data.draw(st.integers(0, 255)))
    mutated = bytes(b)
    for parse in (ClientHello.parse, parse_message):
        try:
            m = parse(mutated)
        except TLSError:
            continue
        m.spans  # the trace view must not fail either
    # and the same bytes through a real server: at most one alert, nothing escapes
    server = _server()
    _feed(server, [b"\x16\x03\x01" + len(mutated).to_bytes(2, "big") + mutated
                   if len(mutated) <= 1 << 14 else mutated])


# --------------------------------------------------------------------------- regressions (fuzz/)

def _with_malformed_san(der: bytes) -> bytes:
    """``der`` with its subjectAltName's GeneralNames SEQUENCE claiming 40 bytes too many:
    the certificate still loads; the extension fails only when first read."""
    b = bytearray(der)
    i = b.index(bytes.fromhex("0603551d11"))
    i = b.index(b"\x04", i + 5)
    assert b[i + 2] == 0x30 and b[i + 3] < 0x80
    b[i + 3] += 40
    return bytes(b)


def test_verify_chain_malformed_extension_is_typed():
    """fuzz/chain_analysis crash: a chain that does not reach a trust anchor was described
    for the error's evidence, and reading the malformed subjectAltName raised ValueError
    out of verify_server_chain (now: BadCertificate, RFC 8446 §6.2 bad_certificate)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from tlslab.proto.certificates import verify_client_chain, verify_server_chain
    from tlslab.proto.errors import BadCertificate
    chain, _, _ = _pki()
    _, _, other_ca = make_throwaway_chain()
    leaf = x509.load_der_x509_certificate(_with_malformed_san(chain[0].public_bytes(Encoding.DER)))
    now = datetime.datetime.now(datetime.timezone.utc)
    for verify in (lambda: verify_server_chain([leaf, *chain[1:]], "localhost", [other_ca], now),
                   lambda: verify_server_chain([leaf], None, [other_ca], now),
                   lambda: verify_client_chain([leaf, *chain[1:]], [other_ca], now)):
        with pytest.raises(BadCertificate):
            verify()


def test_verify_chain_duplicate_extension_is_typed():
    """fuzz/chain_analysis crash: x509.DuplicateExtension (not a ValueError) escaped
    verify_server_chain, and a server sending such a leaf got internal_error."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from tlslab.proto.certificates import verify_server_chain
    from tlslab.proto.errors import BadCertificate
    chain, _, ca = _pki()
    der = chain[0].public_bytes(Encoding.DER)
    leaf = x509.load_der_x509_certificate(der.replace(bytes.fromhex("0603551d11"), bytes.fromhex("0603551d25")))
    with pytest.raises(BadCertificate):
        verify_server_chain([leaf, *chain[1:]], "localhost", [ca], datetime.datetime.now(datetime.timezone.utc))


REGRESSIONS = Path(__file__).resolve().parents[1] / "fuzz" / "regressions"


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*/*")), ids=lambda p: f"{p.parent.name}/{p.name[:14]}")
def test_fuzz_regression_inputs(path):
    """Every crashing input the atheris harnesses found (fuzz/regressions/<harness>/),
    replayed through the same harness with plain Python: it must run clean now."""
    import sys
    sys.path.insert(0, str(REGRESSIONS.parent))
    from harnesses import HARNESSES
    HARNESSES[path.parent.name](path.read_bytes())
