"""Conformance checks of the kind a TLS test suite (tlsfuzzer and the like) runs against a
server and a client, written from the RFC text; in memory, no network.

Every test drives a real tlslab client against a real tlslab server and changes one thing:
the ClientHello is edited *inside* the client before it is sent (so the client's transcript
agrees with what the server saw and, when the server accepts, the handshake completes), or
records are injected between the two, or a server message is forged for the client.  Each
test asserts the exact alert (the RFC section is named) or that the handshake succeeds and
data flows both ways.  Where the RFC names no alert, the test accepts a reasonable set and
says so.

Server under test: ``ServerConfig`` defaults (TLS 1.3 and TLS 1.2).
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Callable

import pytest
from conftest import split_records

from tlslab.proto import events as ev
from tlslab.proto import extensions as X
from tlslab.proto.alerts import AlertDescription as AD
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.extensions import ET, Extension
from tlslab.proto.messages import (HRR_RANDOM, ClientHello, EncryptedExtensions, HandshakeBuffer,
                                   ServerHello)
from tlslab.proto.protection import RecordProtector
from tlslab.proto.record import plaintext_record
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain

pytestmark = pytest.mark.timeout(60)

HANDSHAKE, ALERT, CCS, APPDATA = 22, 21, 20, 23
WARNING, FATAL = 1, 2
X25519, SECP256R1, SECP384R1 = 0x001D, 0x0017, 0x0018
ECDHE_RSA_GCM = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
ECDHE_RSA_CBC = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"


# --------------------------------------------------------------------------- PKI

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Throwaway RSA and ECDSA chains for "localhost" and the CA file that trusts them."""
    from cryptography.hazmat.primitives.serialization import Encoding
    d = tmp_path_factory.mktemp("conformance-pki")
    out = {}
    for kind, key_type in (("rsa", "rsa2048"), ("ecdsa", "ecdsa-p256")):
        chain, key, ca = make_throwaway_chain(key_type=key_type)
        ca_file = d / f"{kind}-ca.pem"
        ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
        out[kind] = {"chain": chain, "key": key, "ca_file": str(ca_file)}
    return out


def server_config(pki, kind: str = "rsa", **options) -> ServerConfig:
    return ServerConfig(certificate_chain=pki[kind]["chain"], private_key=pki[kind]["key"], **options)


def client_config(pki, kind: str = "rsa", **options) -> ClientConfig:
    options.setdefault("server_name", "localhost")
    return ClientConfig(ca_file=pki[kind]["ca_file"], **options)


# --------------------------------------------------------------------------- harness

def sent_hellos(conn) -> list[bytes]:
    """The ClientHellos a connection sent, as bytes (from its trace)."""
    return [e.raw for e in conn.trace.entries
            if e.kind == "message" and e.direction == "sent" and e.name == "ClientHello"]


class EditingClient(ClientConnection):
    """A tlslab client whose ClientHello is changed by ``edit`` before it is sent (and before
    a PSK binder is computed), so its own transcript matches what it really sent."""

    def __init__(self, config: ClientConfig, edit: Callable[[ClientHello], None] | None = None):
        super().__init__(config)
        self._edit = edit

    def _build_client_hello(self) -> ClientHello:
        ch = super()._build_client_hello()
        if self._edit is not None:
            self._edit(ch)
            ch.raw = None  # _pad() may have cached the unedited encoding
        return ch


@dataclass
class Pair:
    client: ClientConnection
    server: ServerConnection
    client_events: list = field(default_factory=list)
    server_events: list = field(default_factory=list)

    def of(self, side: str, kind) -> list:
        events = self.client_events if side == "client" else self.server_events
        return [e for e in events if isinstance(e, kind)]

    def pump(self, rounds: int = 30) -> "Pair":
        """Move bytes both ways until neither side has anything to send."""
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
                return self
        raise AssertionError("the connection did not settle")

    def describe(self) -> str:
        out = []
        for side, conn in (("client", self.client), ("server", self.server)):
            errors = [f"{e.name}: {e.detail}" for e in conn.trace.entries if e.kind == "error"]
            alerts = [f"{e.direction} {e.name}" for e in conn.trace.entries if e.kind == "alert"]
            out.append(f"{side}: state={conn.state.name} complete={conn.handshake_complete} "
                       f"error={conn.error!r} errors={errors} alerts={alerts}")
        return "\n".join(out)


def make_pair(ccfg: ClientConfig, scfg: ServerConfig, edit=None) -> Pair:
    pair = Pair(EditingClient(ccfg, edit), ServerConnection(scfg))
    pair.client.start_handshake()
    return pair


def connect(ccfg: ClientConfig, scfg: ServerConfig, edit=None) -> Pair:
    return make_pair(ccfg, scfg, edit).pump()


def check_ok(pair: Pair, version: str | None = None) -> None:
    """Both sides completed without error, and application data flows both ways."""
    assert pair.client.handshake_complete and pair.server.handshake_complete, pair.describe()
    assert pair.client.error is None and pair.server.error is None, pair.describe()
    assert not pair.client.closed and not pair.server.closed, pair.describe()
    if version is not None:
        assert pair.server.negotiated["version"] == version
        assert pair.client.negotiated["version"] == version
    pair.client.send_application_data(b"ping")
    pair.server.send_application_data(b"pong")
    pair.pump()
    assert b"ping" in b"".join(e.data for e in pair.of("server", ev.ApplicationData))
    assert b"pong" in b"".join(e.data for e in pair.of("client", ev.ApplicationData))
    assert pair.client.error is None and pair.server.error is None, pair.describe()



def split_messages(data: bytes) -> list[bytes]:
    buf = HandshakeBuffer()
    buf.add(data)
    msgs = []
    while (m := buf.pop_message()) is not None:
        msgs.append(m)
    return msgs


def wire_alerts(out: bytes, opener=None) -> list[tuple[int, int]]:
    """(level, description) of every alert in ``out``; protected records are opened with
    ``opener`` (a copy of the sender's write protector taken before the input)."""
    alerts = []
    for header, frag in split_records(out):
        ctype = header[0]
        if opener is not None and ctype in (APPDATA, ALERT) and not (ctype == ALERT and len(frag) == 2):
            ctype, frag = opener.open(header, frag)
        if ctype == ALERT:
            assert len(frag) == 2, f"alert of {len(frag)} bytes"
            alerts.append((frag[0], frag[1]))
    return alerts


def sent_alerts(conn) -> list[tuple[int, str]]:
    """What the connection recorded in its trace as alerts it sent."""
    return [(e.summary["level"], e.name) for e in conn.trace.entries
            if e.kind == "alert" and e.direction == "sent"]


def inject(conn, data: bytes, opener="auto") -> tuple[list, bytes, list[tuple[int, int]]]:
    """Feed ``data`` to ``conn``; return its events, its output and the alerts in it."""
    if opener == "auto":
        opener = copy.copy(conn._write_prot) if conn._write_prot is not None else None
    events = conn.receive_data(data)
    out = conn.data_to_send()
    return events, out, wire_alerts(out, opener)


def assert_fatal(conn, events: list, alerts: list, expected) -> None:
    """Exactly one fatal alert went out, one of ``expected``; the connection is closed."""
    expected = expected if isinstance(expected, tuple) else (expected,)
    names = [AD(d).name if d in AD._value2member_map_ else d for _, d in alerts]
    assert len(alerts) == 1 and alerts[0][0] == FATAL and alerts[0][1] in [int(a) for a in expected], (
        f"expected one fatal {'/'.join(a.name for a in expected)}, got {names} (error: {conn.error!r})")
    assert conn.closed
    assert conn.error is not None and conn.error.alert in expected
    closed = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert len(closed) == 1 and closed[0].alert_sent == AD(alerts[0][1]).name


def server_refuses(ccfg: ClientConfig, scfg: ServerConfig, edit, expected) -> Pair:
    """The edited ClientHello goes to the server, which must answer one fatal alert (in
    plaintext: no keys exist yet); the client then reads that alert."""
    pair = make_pair(ccfg, scfg, edit)
    events, out, alerts = inject(pair.server, pair.client.data_to_send(), opener=None)
    assert_fatal(pair.server, events, alerts, expected)
    got = pair.client.receive_data(out)
    assert any(isinstance(e, ev.AlertReceived) and e.description == alerts[0][1] for e in got), got
    return pair


def sent_message(conn, name: str):
    return next(e.message for e in conn.trace.entries
                if e.kind == "message" and e.direction == "sent" and e.name == name)


def replace_ext(ch, ext: Extension) -> None:
    ch.extensions = [ext if e.type == ext.type else e for e in ch.extensions]


def drop_ext(ch, ext_type: int) -> None:
    ch.extensions = [e for e in ch.extensions if e.type != ext_type]


def insert_before_psk(ch, exts: list[Extension]) -> None:
    """Add extensions while keeping pre_shared_key last (RFC 8446 §4.2.11)."""
    tail = [e for e in ch.extensions if e.type == ET.pre_shared_key]
    ch.extensions = [e for e in ch.extensions if e.type != ET.pre_shared_key] + exts + tail


# =========================================================================== server: ClientHello tolerance

def test_client_hello_in_one_byte_records(pki):
    """RFC 8446 §5.1 / RFC 5246 §6.2.1: handshake messages may be fragmented across any
    number of records; a ClientHello in 1-byte records must still be understood."""
    pair = make_pair(client_config(pki), server_config(pki))
    ((header, fragment),) = split_records(pair.client.data_to_send())
    pieces = b"".join(plaintext_record(HANDSHAKE, fragment[i:i + 1], 0x0301)
                      for i in range(len(fragment)))
    assert len(split_records(pieces)) == len(fragment) > 200
    pair.server_events += pair.server.receive_data(pieces)
    pair.pump()
    check_ok(pair, "TLS 1.3")


@pytest.mark.parametrize("versions", [["1.3", "1.2"], ["1.2"]], ids=["tls13", "tls12"])
def test_client_hello_with_200_unknown_extensions(pki, versions):
    """RFC 8446 §4.2 / RFC 5246 §7.4.1.4: servers ignore extensions they do not know."""
    # 0x4000-0x40c7: unassigned code points, each with a little opaque data
    unknown = [Extension(0x4000 + i, data=bytes([i % 251]) * (i % 5)) for i in range(200)]

    def edit(ch):
        insert_before_psk(ch, unknown)
    pair = connect(client_config(pki, versions=versions), server_config(pki), edit)
    check_ok(pair, "TLS " + versions[0])
    sent = ClientHello.parse(sent_hellos(pair.client)[0])
    assert sum(1 for e in sent.extensions if 0x4000 <= e.type < 0x40C8) == 200


@pytest.mark.parametrize("versions", [["1.3", "1.2"], ["1.2"]], ids=["tls13", "tls12"])
def test_client_hello_with_1000_signature_algorithms(pki, versions):
    """RFC 8446 §4.2.3: unknown signature schemes are ignored; the list may be long
    (up to 2^15-1 entries)."""
    # 0xfe00-0xffff is reserved for private use, 0x0b00.. unassigned
    unknown = [0xFE00 + i for i in range(512)] + [0x0B00 + i for i in range(486)]
    real = [0x0804, 0x0401]  # rsa_pss_rsae_sha256, rsa_pkcs1_sha256 (the latter for TLS 1.2)

    def edit(ch):
        replace_ext(ch, Extension(ET.signature_algorithms, X.SignatureSchemeList(
            supported_signature_algorithms=unknown + real)))
    pair = connect(client_config(pki, versions=versions), server_config(pki), edit)
    check_ok(pair, "TLS " + versions[0])
    assert len(ClientHello.parse(sent_hellos(pair.client)[0]).ext_value(
        ET.signature_algorithms).supported_signature_algorithms) == 1000


@pytest.mark.parametrize("seed", range(5))
def test_client_hello_extensions_in_random_order(pki, seed):
    """RFC 8446 §4.2: "Extensions can appear in any order" (except pre_shared_key, last)."""
    rng = random.Random(seed)
    orders = []

    def edit(ch):
        exts = list(ch.extensions)
        rng.shuffle(exts)
        ch.extensions = exts
        orders.append([e.type for e in exts])
    pair = connect(client_config(pki), server_config(pki), edit)
    check_ok(pair, "TLS 1.3")
    assert [e.type for e in ClientHello.parse(sent_hellos(pair.client)[0]).extensions] == orders[0]


def test_heartbeat_extension_is_ignored(pki):
    """RFC 6520 §2: a server that does not implement Heartbeat ignores the extension (and
    must not answer it, RFC 8446 §4.2 / RFC 5246 §7.4.1.4)."""
    def edit(ch):
        insert_before_psk(ch, [Extension(ET.heartbeat, data=b"\x01")])  # peer_allowed_to_send
    pair = connect(client_config(pki), server_config(pki), edit)
    check_ok(pair, "TLS 1.3")
    for name in ("ServerHello", "EncryptedExtensions"):
        assert sent_message(pair.server, name).ext(ET.heartbeat) is None


def test_heartbeat_extension_is_ignored_tls12(pki):
    def edit(ch):
        insert_before_psk(ch, [Extension(ET.heartbeat, data=b"\x01")])
    pair = connect(client_config(pki, versions=["1.2"]), server_config(pki), edit)
    check_ok(pair, "TLS 1.2")
    sh = next(e for e in pair.server.trace.entries
              if e.kind == "message" and e.direction == "sent" and e.name == "ServerHello")
    assert ET.heartbeat not in [x.type for x in (ServerHello.parse(sh.raw).extensions or [])]


def test_sni_with_unknown_name_type_is_tolerated(pki):
    """RFC 6066 §3: ServerNameList may carry name types other than host_name (0); the
    server uses the host_name it understands. Encoded as opaque<1..2^16-1> like host_name,
    which is how deployed implementations read a name type they do not know."""
    host = b"localhost"
    entries = (b"\x00" + len(host).to_bytes(2, "big") + host
               + b"\x07" + (4).to_bytes(2, "big") + b"abcd")
    data = len(entries).to_bytes(2, "big") + entries

    def edit(ch):
        replace_ext(ch, Extension(ET.server_name, data=data))
    pair = connect(client_config(pki), server_config(pki), edit)
    check_ok(pair, "TLS 1.3")
    assert pair.server.negotiated["server_name"] == "localhost"


# =========================================================================== server: records after the handshake

@pytest.mark.parametrize("versions, suites", [(["1.3"], None), (["1.2"], [ECDHE_RSA_GCM]),
                                              (["1.2"], [ECDHE_RSA_CBC])],
                         ids=["tls13", "tls12-gcm", "tls12-cbc"])
def test_zero_length_application_data_is_accepted(pki, versions, suites):
    """RFC 8446 §5.1: "Zero-length fragments of Application Data MAY be sent"; RFC 5246
    §6.2.1 likewise. The server must not answer with an alert."""
    pair = connect(client_config(pki, versions=versions, cipher_suites=suites), server_config(pki))
    assert pair.client.handshake_complete and pair.server.handshake_complete, pair.describe()
    data = b"".join(pair.client._write_prot.seal(APPDATA, b"") for _ in range(3))
    events, out, alerts = inject(pair.server, data)
    assert alerts == [] and pair.server.error is None and not pair.server.closed, pair.describe()
    assert all(isinstance(e, ev.ApplicationData) and e.data == b"" for e in events), events
    check_ok(pair)


def _connected13(pki) -> Pair:
    pair = connect(client_config(pki, versions=["1.3"]), server_config(pki))
    assert pair.server.handshake_complete and pair.client.handshake_complete, pair.describe()
    return pair


def _connected12(pki) -> Pair:
    pair = connect(client_config(pki, versions=["1.2"]), server_config(pki))
    assert pair.server.handshake_complete and pair.client.handshake_complete, pair.describe()
    return pair


@pytest.mark.parametrize("ctype", [0x18, 0xFF])
def test_unknown_content_type_after_handshake_tls13(pki, ctype):
    """RFC 8446 §5: "If a TLS implementation receives an unexpected record type, it MUST
    terminate the connection with an unexpected_message alert." (0x18 is heartbeat, which
    tlslab does not negotiate; 0xff is unassigned.)"""
    pair = _connected13(pki)
    events, _, alerts = inject(pair.server, bytes([ctype]) + b"\x03\x03\x00\x01\x00")
    assert_fatal(pair.server, events, alerts, AD.unexpected_message)


@pytest.mark.parametrize("ctype", [0x18, 0xFF])
def test_unknown_inner_content_type_after_handshake_tls13(pki, ctype):
    """The same inside a protected record (the inner content type, RFC 8446 §5.2)."""
    pair = _connected13(pki)
    events, _, alerts = inject(pair.server, pair.client._write_prot.seal(ctype, b"\x00"))
    assert_fatal(pair.server, events, alerts, AD.unexpected_message)


@pytest.mark.parametrize("ctype", [0x18, 0xFF])
def test_unknown_content_type_after_handshake_tls12(pki, ctype):
    """RFC 5246 §6: "If a TLS implementation receives an unexpected record type, it MUST
    send an unexpected_message alert." (a correctly protected record of that type)"""
    pair = _connected12(pki)
    events, _, alerts = inject(pair.server, pair.client._write_prot.seal(ctype, b"\x00"))
    assert_fatal(pair.server, events, alerts, AD.unexpected_message)


def _client_second_flight(pki) -> tuple[Pair, bytes]:
    """A TLS 1.3 pair where the server has sent its flight and the client's answer
    (CCS, Finished) is held back."""
    pair = make_pair(client_config(pki, versions=["1.3"]), server_config(pki))
    pair.server.receive_data(pair.client.data_to_send())
    pair.client.receive_data(pair.server.data_to_send())
    assert pair.client.handshake_complete, pair.describe()
    flight = pair.client.data_to_send()
    assert [h[0] for h, _ in split_records(flight)] == [CCS, APPDATA]
    return pair, flight


def test_two_ccs_records_tls13(pki):
    """RFC 8446 §5: the compatibility CCS is "a single byte value 0x01" record that may be
    received once between the first ClientHello and the peer's Finished; tlsfuzzer and
    OpenSSL treat a second one as an unexpected record → unexpected_message."""
    pair, flight = _client_second_flight(pki)
    ccs = plaintext_record(CCS, b"\x01")
    events, _, alerts = inject(pair.server, ccs + flight)
    assert_fatal(pair.server, events, alerts, AD.unexpected_message)
    assert "change_cipher_spec" in str(pair.server.error)


def test_ccs_after_client_finished_tls13(pki):
    """RFC 8446 §5: CCS is allowed only "before the peer's Finished message has been
    received"; after it, it is an unexpected record type → unexpected_message."""
    pair = _connected13(pki)
    events, _, alerts = inject(pair.server, plaintext_record(CCS, b"\x01"))
    assert_fatal(pair.server, events, alerts, AD.unexpected_message)


# RFC 8446 §5.1 / §6 say alert records hold exactly one 2-byte alert but name no alert for an
# empty one: unexpected_message (OpenSSL's choice, and tlsfuzzer's expectation) and
# decode_error are both reasonable.
EMPTY_ALERT_ANSWERS = (AD.unexpected_message, AD.decode_error)


def test_empty_alert_record_during_handshake(pki):
    pair, flight = _client_second_flight(pki)
    events, _, alerts = inject(pair.server, plaintext_record(ALERT, b""))
    assert_fatal(pair.server, events, alerts, EMPTY_ALERT_ANSWERS)


def test_empty_alert_record_after_handshake_tls13(pki):
    pair = _connected13(pki)
    events, _, alerts = inject(pair.server, pair.client._write_prot.seal(ALERT, b""))
    assert_fatal(pair.server, events, alerts, EMPTY_ALERT_ANSWERS)


def test_empty_alert_record_after_handshake_tls12(pki):
    pair = _connected12(pki)
    events, _, alerts = inject(pair.server, pair.client._write_prot.seal(ALERT, b""))
    assert_fatal(pair.server, events, alerts, EMPTY_ALERT_ANSWERS)


# =========================================================================== server: negotiation

def test_rsa_pkcs1_only_signature_algorithms_tls13(pki):
    """RFC 8446 §4.2.3: RSASSA-PKCS1-v1_5 "MUST NOT be used in CertificateVerify"; with only
    those offered an RSA server has no scheme to sign with. RFC 8446 §4.1.1: "If the server
    is unable to negotiate a supported set of parameters ... it MUST abort the handshake
    with either a handshake_failure or insufficient_security fatal alert"."""
    ccfg = client_config(pki, versions=["1.3"],
                         signature_algorithms=["rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512"])
    pair = make_pair(ccfg, server_config(pki))
    events, out, alerts = inject(pair.server, pair.client.data_to_send(), opener=None)
    assert_fatal(pair.server, events, alerts, AD.handshake_failure)


def test_key_share_group_not_in_supported_groups(pki):
    """RFC 8446 §4.2.8: "Clients MUST NOT offer any KeyShareEntry values for groups not
    listed in the client's supported_groups extension. Servers MAY check for violations of
    these rules and abort the handshake with an illegal_parameter alert"."""
    def edit(ch):
        assert [s.group for s in ch.ext_value(ET.key_share).client_shares] == [X25519]
        replace_ext(ch, Extension(ET.supported_groups, X.NamedGroupList(named_group_list=[SECP256R1, SECP384R1])))
    ccfg = client_config(pki, versions=["1.3"], groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    pair = server_refuses(ccfg, server_config(pki), edit, AD.illegal_parameter)
    assert "x25519" in str(pair.server.error).lower()


def test_supported_versions_with_only_unknown_versions(pki):
    """RFC 8446 §4.2.1: the server selects from supported_versions and ignores unknown
    values; with none it can use, RFC 8446 §4.1.1 / RFC 5246 §E.1 → protocol_version."""
    def edit(ch):
        replace_ext(ch, Extension(ET.supported_versions, X.SupportedVersionsCH(versions=[0x7F1C, 0x0305])))
    server_refuses(client_config(pki, versions=["1.3"]), server_config(pki), edit, AD.protocol_version)


def test_legacy_version_tls13_without_supported_versions_negotiates_tls12(pki):
    """RFC 8446 §4.2.1: "If this extension is not present, servers which are compliant with
    this specification and which also support TLS 1.2 MUST negotiate TLS 1.2 or prior as
    specified in [RFC5246], even if ClientHello.legacy_version is 0x0304 or later."""
    def edit(ch):
        assert ch.ext(ET.supported_versions) is None
        ch.legacy_version = 0x0304
    pair = connect(client_config(pki, versions=["1.2"]), server_config(pki), edit)
    check_ok(pair, "TLS 1.2")
    assert ClientHello.parse(sent_hellos(pair.client)[0]).legacy_version == 0x0304


def test_legacy_version_ssl3_only(pki):
    """RFC 8446 §D.5 / RFC 7568: SSL 3.0 must not be negotiated; a server without a common
    version answers protocol_version (RFC 5246 §E.1, RFC 8446 §4.1.1)."""
    def edit(ch):
        ch.legacy_version = 0x0300
    server_refuses(client_config(pki, versions=["1.2"]), server_config(pki), edit, AD.protocol_version)


def test_compression_methods_without_null_tls13(pki):
    """RFC 8446 §4.1.2: "If a TLS 1.3 ClientHello is received with any other value in this
    field [than a single null], the server MUST abort the handshake with an
    illegal_parameter alert"."""
    def edit(ch):
        ch.legacy_compression_methods = b"\x01"
    server_refuses(client_config(pki, versions=["1.3"]), server_config(pki), edit, AD.illegal_parameter)


def test_compression_methods_without_null_tls12(pki):
    """RFC 5246 §7.4.1.2: the vector "MUST contain ... CompressionMethod.null"; no alert is
    named. illegal_parameter (a field out of range, RFC 5246 §7.2.2) is what tlslab sends;
    decode_error and handshake_failure are also reasonable readings."""
    def edit(ch):
        ch.legacy_compression_methods = b"\x01"
    server_refuses(client_config(pki, versions=["1.2"]), server_config(pki), edit,
                   (AD.illegal_parameter, AD.decode_error, AD.handshake_failure))


@pytest.mark.parametrize("versions", [["1.3"], ["1.2"]], ids=["tls13", "tls12"])
def test_alpn_without_overlap(pki, versions):
    """RFC 7301 §3.2: "In the event that the server supports no protocols that the client
    advertises, then the server SHALL respond with a fatal no_application_protocol alert"."""
    ccfg = client_config(pki, versions=versions, alpn_protocols=["http/1.1", "spdy/3"])
    server_refuses(ccfg, server_config(pki, alpn_protocols=["h2"]), None, AD.no_application_protocol)


def test_fallback_scsv_with_tls12_to_a_tls13_server(pki):
    """RFC 7507 §3: "If TLS_FALLBACK_SCSV appears in ClientHello.cipher_suites and the
    highest protocol version supported by the server is higher than the version indicated
    by the client, the server MUST respond with a fatal inappropriate_fallback alert"."""
    ccfg = client_config(pki, versions=["1.2"], fallback_scsv=True)
    server_refuses(ccfg, server_config(pki), None, AD.inappropriate_fallback)


def test_fallback_scsv_at_the_servers_highest_version_is_fine(pki):
    """RFC 7507 §3: only a client below the server's highest version is refused."""
    pair = connect(client_config(pki, versions=["1.2"], fallback_scsv=True),
                   server_config(pki, versions=["1.2"]))
    check_ok(pair, "TLS 1.2")


# =========================================================================== server: TLS 1.3 features

def test_psk_ke_only_resumption(pki):
    """RFC 8446 §4.2.9: with psk_ke only, the server resumes without (EC)DHE: a ServerHello
    with pre_shared_key and no key_share (§4.2.8, §4.2.11), and no Certificate."""
    scfg, ccfg = server_config(pki), client_config(pki, versions=["1.3"])
    first = connect(ccfg, scfg)
    check_ok(first)
    assert ccfg.session_store.count("localhost") > 0

    def psk_ke_only(ch):
        replace_ext(ch, Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[0])))
    pair = make_pair(ccfg, scfg, psk_ke_only)
    pair.server_events += pair.server.receive_data(pair.client.data_to_send())
    assert pair.server.error is None, pair.describe()
    sh = sent_message(pair.server, "ServerHello")
    assert sh.ext(ET.key_share) is None and sh.ext(ET.pre_shared_key) is not None
    assert sh.ext_value(ET.pre_shared_key).selected_identity == 0
    sent = [e.name for e in pair.server.trace.entries if e.kind == "message" and e.direction == "sent"]
    assert "Certificate" not in sent and "EncryptedExtensions" in sent and "Finished" in sent
    assert pair.server.negotiated["group"] is None


def test_client_key_update_requested_is_answered(pki):
    """RFC 8446 §4.6.3: on KeyUpdate(update_requested) the receiver "MUST send its own
    KeyUpdate with request_update set to update_not_requested" before its next
    application data; both directions then use the new keys."""
    pair = _connected13(pki)
    pair.client.send_key_update(request_update=True)
    pair.pump()
    ku_sent = [e for e in pair.server.trace.entries
               if e.kind == "message" and e.direction == "sent" and e.name == "KeyUpdate"]
    assert len(ku_sent) == 1 and ku_sent[0].message.request_update == 0, pair.describe()
    ku_got = [e for e in pair.client.trace.entries
              if e.kind == "message" and e.direction == "received" and e.name == "KeyUpdate"]
    assert len(ku_got) == 1
    check_ok(pair)


# =========================================================================== server: TLS 1.2 features

def test_tls12_renegotiation_is_refused_with_a_warning(pki):
    """RFC 5746 §4.4 / RFC 5246 §7.2.2: a server that does not renegotiate answers a
    ClientHello on an established connection with a no_renegotiation *warning*; the
    connection continues."""
    pair = _connected12(pki)
    ch = ClientHello.parse(sent_hellos(pair.client)[0])
    # the server refuses before looking at renegotiation_info (RFC 5746 §3.7 would want the
    # client's verify_data there; any 12 bytes do for a refusal)
    ch.extensions = [Extension(ET.renegotiation_info, X.RenegotiationInfo(
        renegotiated_connection=bytes(12))) if e.type == ET.renegotiation_info else e
        for e in ch.extensions]
    events, out, alerts = inject(pair.server, pair.client._write_prot.seal(HANDSHAKE, ch.build()))
    assert alerts == [(WARNING, int(AD.no_renegotiation))], (alerts, pair.describe())
    assert not pair.server.closed and pair.server.error is None
    got = pair.client.receive_data(out)
    assert [e.name for e in got if isinstance(e, ev.AlertReceived)] == ["no_renegotiation"]
    assert not pair.client.closed
    check_ok(pair, "TLS 1.2")


def _drop_ems(ch):
    drop_ext(ch, ET.extended_master_secret)


def test_tls12_ems_session_resumed_without_ems_is_refused(pki):
    """RFC 7627 §5.3: "If the original session used the extended_master_secret extension
    but the new ClientHello does not contain it, the server MUST abort the abbreviated
    handshake" (tlslab: handshake_failure)."""
    scfg = server_config(pki, tickets=0)  # resumption by session ID (RFC 5246 §7.3)
    ccfg = client_config(pki, versions=["1.2"])
    first = connect(ccfg, scfg)
    check_ok(first, "TLS 1.2")
    assert first.server.negotiated["extended_master_secret"] is True
    pair = make_pair(ccfg, scfg, _drop_ems)
    offered = ClientHello.parse(sent_hellos(pair.client)[0])
    assert offered.legacy_session_id, "the client did not offer the session ID"
    events, _, alerts = inject(pair.server, pair.client.data_to_send(), opener=None)
    assert_fatal(pair.server, events, alerts, AD.handshake_failure)


def test_tls12_ems_session_resumed_with_ems_still_works(pki):
    scfg = server_config(pki, tickets=0)
    ccfg = client_config(pki, versions=["1.2"])
    check_ok(connect(ccfg, scfg), "TLS 1.2")
    pair = connect(ccfg, scfg)
    check_ok(pair, "TLS 1.2")
    assert pair.server.negotiated.get("resumed") is True, pair.describe()


def test_tls12_non_ems_session_resumed_with_ems_is_a_full_handshake(pki):
    """RFC 7627 §5.3: "If the original session did not use the extended_master_secret
    extension but the new ClientHello contains the extension, then the server MUST NOT
    perform the abbreviated handshake. Instead, it SHOULD continue with a full handshake"."""
    scfg = server_config(pki, tickets=0)
    ccfg = client_config(pki, versions=["1.2"])
    first = connect(ccfg, scfg, _drop_ems)
    check_ok(first, "TLS 1.2")
    assert first.server.negotiated["extended_master_secret"] is False
    pair = make_pair(ccfg, scfg)
    assert ClientHello.parse(sent_hellos(pair.client)[0]).legacy_session_id
    pair.pump()
    check_ok(pair, "TLS 1.2")
    assert not pair.server.negotiated.get("resumed"), pair.describe()
    assert pair.server.negotiated["extended_master_secret"] is True
    assert "Certificate12" in [e.name for e in pair.server.trace.entries
                               if e.kind == "message" and e.direction == "sent"]


def test_tls12_encrypt_then_mac_with_only_aead_suites_is_not_echoed(pki):
    """RFC 7366 §3: "If a server receives an encrypt-then-MAC request extension from a
    client and then selects a stream or AEAD ciphersuite, it MUST NOT send an
    encrypt-then-MAC response extension back to the client"."""
    def add_etm(ch):
        if ch.ext(ET.encrypt_then_mac) is None:
            insert_before_psk(ch, [Extension(ET.encrypt_then_mac, X.Empty())])
    pair = connect(client_config(pki, versions=["1.2"], cipher_suites=[ECDHE_RSA_GCM]),
                   server_config(pki), add_etm)
    check_ok(pair, "TLS 1.2")
    assert ClientHello.parse(sent_hellos(pair.client)[0]).ext(ET.encrypt_then_mac) is not None
    sh = next(e for e in pair.server.trace.entries
              if e.kind == "message" and e.direction == "sent" and e.name == "ServerHello")
    assert ET.encrypt_then_mac not in [x.type for x in ServerHello.parse(sh.raw).extensions or []]
    assert pair.server.negotiated["encrypt_then_mac"] is False


# =========================================================================== client

def _client_waiting_for_sh(pki, ccfg=None, scfg=None) -> tuple[Pair, list[tuple[bytes, bytes]]]:
    """The client has sent its ClientHello; the server's answer is returned, not delivered."""
    pair = make_pair(ccfg or client_config(pki), scfg or server_config(pki))
    pair.server.receive_data(pair.client.data_to_send())
    return pair, split_records(pair.server.data_to_send())


def _sh_record(sh: ServerHello) -> bytes:
    return plaintext_record(HANDSHAKE, sh.build())


def client_refuses(pair: Pair, data: bytes, expected, opener="auto") -> None:
    events, _, alerts = inject(pair.client, data, opener)
    assert_fatal(pair.client, events, alerts, expected)


def test_client_server_selects_tls12_not_offered(pki):
    """A TLS 1.3-only client gets a TLS 1.2 ServerHello (no supported_versions).
    RFC 5246 §E.1: "If the version chosen by the server is not supported by the client
    (or not acceptable), the client MUST send a protocol_version alert"."""
    pair, recs = _client_waiting_for_sh(pki, client_config(pki, versions=["1.3"]))
    sh = ServerHello.parse(recs[0][1])
    drop_ext(sh, ET.supported_versions)
    client_refuses(pair, _sh_record(sh), AD.protocol_version)


def test_client_server_selects_tls11_not_offered(pki):
    """A TLS 1.3/1.2 client gets a TLS 1.1 ServerHello: protocol_version (RFC 5246 §E.1)."""
    pair, recs = _client_waiting_for_sh(pki)
    sh = ServerHello.parse(recs[0][1])
    drop_ext(sh, ET.supported_versions)
    sh.legacy_version = 0x0302
    client_refuses(pair, _sh_record(sh), AD.protocol_version)


def test_client_supported_versions_selects_unoffered_version(pki):
    """RFC 8446 §4.2.1: "If the supported_versions extension in the ServerHello contains a
    version not offered by the client ... the client MUST abort the handshake with an
    illegal_parameter alert"."""
    pair, recs = _client_waiting_for_sh(pki, client_config(pki, versions=["1.3"]))
    sh = ServerHello.parse(recs[0][1])
    replace_ext(sh, Extension(ET.supported_versions, X.SupportedVersionsSH(selected_version=0x0305)))
    client_refuses(pair, _sh_record(sh), AD.illegal_parameter)


def test_client_session_id_echo_mismatch(pki):
    """RFC 8446 §4.1.3: "A client which receives a legacy_session_id_echo field that does
    not match what it sent in the ClientHello MUST abort the handshake with an
    illegal_parameter alert"."""
    pair, recs = _client_waiting_for_sh(pki, client_config(pki, versions=["1.3"]))
    sh = ServerHello.parse(recs[0][1])
    assert len(sh.legacy_session_id_echo) == 32
    sh.legacy_session_id_echo = bytes(b ^ 0xFF for b in sh.legacy_session_id_echo)
    client_refuses(pair, _sh_record(sh), AD.illegal_parameter)


@pytest.mark.parametrize("ext", [
    Extension(ET.application_layer_protocol_negotiation,
              X.ProtocolNameList(protocol_name_list=[b"h2"])),
    Extension(ET.early_data, X.Empty()),
    Extension(0x4A4B, data=b"\x00"),
], ids=["alpn", "early_data", "unknown-0x4a4b"])
def test_client_unsolicited_extension_in_encrypted_extensions(pki, ext):
    """RFC 8446 §4.2: "Implementations MUST NOT send extension responses if the remote
    endpoint did not send the corresponding extension requests ... Upon receiving such an
    extension, an endpoint MUST abort the handshake with an unsupported_extension alert"."""
    pair, recs = _client_waiting_for_sh(pki, client_config(pki, versions=["1.3"]))
    assert [h[0] for h, _ in recs] == [HANDSHAKE, CCS, APPDATA]
    secret = pair.server.schedule.secrets["server_handshake_traffic_secret"]
    ctype, inner = RecordProtector(pair.server.suite, secret).open(*recs[2])
    msgs = split_messages(inner)
    ee = EncryptedExtensions.parse(msgs[0])
    ee.extensions = list(ee.extensions or []) + [ext]
    flight = RecordProtector(pair.server.suite, secret).seal(HANDSHAKE, ee.build() + b"".join(msgs[1:]))
    pair.client.receive_data(b"".join(h + f for h, f in recs[:2]))
    assert pair.client.state.name == "WAIT_EE", pair.describe()
    # the client's alert goes out under client_handshake_traffic_secret (RFC 8446 §6)
    opener = RecordProtector(pair.server.suite,
                             pair.server.schedule.secrets["client_handshake_traffic_secret"])
    client_refuses(pair, flight, AD.unsupported_extension, opener)


def test_client_echoes_hrr_cookie(pki):
    """RFC 8446 §4.2.2: a client receiving a cookie in a HelloRetryRequest "MUST copy the
    contents of the extension received in the HelloRetryRequest into a cookie extension in
    the new ClientHello"; the handshake then completes."""
    pair, recs = _client_waiting_for_sh(pki, client_config(pki, versions=["1.3"]),
                                        server_config(pki, cookie_hrr=True))
    hrr = ServerHello.parse(recs[0][1])
    assert hrr.is_hello_retry_request
    cookie = hrr.ext_value(ET.cookie).cookie
    assert cookie
    pair.client_events += pair.client.receive_data(b"".join(h + f for h, f in recs))
    ch2 = ClientHello.parse(sent_hellos(pair.client)[1])
    assert ch2.ext_value(ET.cookie).cookie == cookie
    # the raw bytes of the extension: type 44, length, opaque cookie<1..2^16-1>
    raw = next(e for e in ch2.extensions if e.type == ET.cookie).data
    assert raw == len(cookie).to_bytes(2, "big") + cookie
    pair.pump()
    check_ok(pair, "TLS 1.3")
    assert pair.server.negotiated["hello_retry"] is True


def _hrr(ch: ClientHello, group: int, suite: int = 0x1301) -> bytes:
    msg = ServerHello(legacy_version=0x0303, random=HRR_RANDOM,
                      legacy_session_id_echo=ch.legacy_session_id, cipher_suite=suite,
                      legacy_compression_method=0, extensions=[
                          Extension(ET.supported_versions, X.SupportedVersionsSH(selected_version=0x0304)),
                          Extension(ET.key_share, X.KeyShareHRR(selected_group=group))])
    return plaintext_record(HANDSHAKE, msg.build())


def test_client_hrr_for_a_group_already_sent(pki):
    """RFC 8446 §4.2.8: the client MUST check that selected_group "does not correspond to a
    group which was provided in the key_share extension in the original ClientHello. If
    either of these checks fails, then the client MUST abort the handshake with an
    illegal_parameter alert"."""
    ccfg = client_config(pki, versions=["1.3"], groups=["x25519", "secp256r1"], key_share_groups=["x25519"])
    pair = make_pair(ccfg, server_config(pki))
    pair.client.data_to_send()
    client_refuses(pair, _hrr(pair.client.hs.offer.client_hello, X25519), AD.illegal_parameter)


def test_client_second_hrr(pki):
    """RFC 8446 §4.1.4: "If a client receives a second HelloRetryRequest in the same
    connection ... it MUST abort the handshake with an unexpected_message alert"."""
    ccfg = client_config(pki, versions=["1.3"], groups=["x25519", "secp256r1", "secp384r1"],
                         key_share_groups=["x25519"])
    pair = make_pair(ccfg, server_config(pki))
    pair.client.data_to_send()
    pair.client.receive_data(_hrr(pair.client.hs.offer.client_hello, SECP256R1))
    assert pair.client.error is None, pair.describe()
    ch2 = ClientHello.parse(sent_hellos(pair.client)[1])
    assert [s.group for s in ch2.ext_value(ET.key_share).client_shares] == [SECP256R1]
    pair.client.data_to_send()
    client_refuses(pair, _hrr(pair.client.hs.offer.client_hello, SECP384R1), AD.unexpected_message)
