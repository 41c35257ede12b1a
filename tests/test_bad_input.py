"""Bad input at every handshake stage: one table, one alert per row (RFC 8446 §6.2).

Each row names the side under test, the state it is driven to by a real in-memory
client <-> server handshake, a function building the bytes to inject (a mutation of the
real handshake bytes, or bytes written from scratch) and the alert the engine must send
(``None``: the engine must simply wait for more bytes).

For every row we check that nothing escapes ``receive_data``, that exactly one alert
record goes out (plaintext alerts are read directly; encrypted ones are opened with a
copy of the connection's own write protector taken just before the injection), that
``.error.alert`` and the ``ConnectionClosed`` event agree with it, that the error text
is a single non-empty line, and that the closed connection ignores further input.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Callable

import pytest
from conftest import split_records
from cryptography.hazmat.primitives.serialization import Encoding

from tlslab.proto import events as ev
from tlslab.proto.alerts import AlertDescription as AD
from tlslab.proto.errors import InternalError
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.extensions import (ET, Extension, KeyShareCH, KeyShareEntry, KeyShareSH,
                                     NamedGroupList, SupportedVersionsCH, SupportedVersionsSH)
from tlslab.proto.messages import (Certificate, CertificateEntry, CertificateVerify, ClientHello, Finished,
                                   HandshakeBuffer, KeyUpdate, ServerHello)
from tlslab.proto.protection import RecordProtector
from tlslab.proto.record import plaintext_record
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain

HANDSHAKE, ALERT, CCS, APPDATA = 22, 21, 20, 23


# --------------------------------------------------------------------------- PKI

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway chain, its CA file, and a second, unrelated CA file."""
    chain, key, ca = make_throwaway_chain()
    _, _, other_ca = make_throwaway_chain()
    d = tmp_path_factory.mktemp("bad-input-pki")
    ca_file, other_file = d / "ca.pem", d / "other-ca.pem"
    ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
    other_file.write_bytes(other_ca.public_bytes(Encoding.PEM))
    return {"chain": chain, "key": key, "ca_file": str(ca_file), "other_ca_file": str(other_file)}


# --------------------------------------------------------------------------- helpers


def split_messages(data: bytes) -> list[bytes]:
    buf = HandshakeBuffer()
    buf.add(data)
    msgs = []
    while (m := buf.pop_message()) is not None:
        msgs.append(m)
    assert not len(buf)
    return msgs


def hs_record(msg: bytes, version: int = 0x0303) -> bytes:
    return plaintext_record(HANDSHAKE, msg, version)


def reframe(msg: bytes) -> bytes:
    """Fix the 3-byte handshake length after a byte-level edit of the body."""
    return msg[:1] + (len(msg) - 4).to_bytes(3, "big") + msg[4:]


def flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


@dataclass
class Ctx:
    """Everything a row's builder may use: the real handshake messages and sealers."""

    client: ClientConnection
    server: ServerConnection
    ch: bytes = b""                     # the client's ClientHello message
    sh: bytes = b""                     # the server's ServerHello message
    sh_record: bytes = b""
    flight_record: bytes = b""          # the server's encrypted EE..Finished record
    flight: dict = field(default_factory=dict)  # ee, cert, cv, fin (plaintext messages)
    client_fin: bytes = b""
    to_client: RecordProtector | None = None  # seals as the server, handshake keys
    to_server: RecordProtector | None = None  # seals as the client, handshake keys

    def seal_to_client(self, ctype: int, payload: bytes) -> bytes:
        return self.to_client.seal(ctype, payload)

    def seal_to_server(self, ctype: int, payload: bytes) -> bytes:
        return self.to_server.seal(ctype, payload)

    def ch_record(self, edit: Callable[[ClientHello], None]) -> bytes:
        """The real ClientHello, parsed, edited, rebuilt, as a plaintext record."""
        msg = ClientHello.parse(self.ch)
        edit(msg)
        return hs_record(msg.build(), 0x0301)

    def sh_record_edited(self, edit: Callable[[ServerHello], None]) -> bytes:
        msg = ServerHello.parse(self.sh)
        edit(msg)
        return hs_record(msg.build())


def _drop(msg, ext_type: int) -> None:
    msg.extensions = [e for e in msg.extensions if e.type != ext_type]


def _replace(msg, ext: Extension) -> None:
    msg.extensions = [ext if e.type == ext.type else e for e in msg.extensions]


CLIENT_STATES = ["WAIT_SH", "WAIT_EE", "WAIT_CERT_CR", "WAIT_CV", "WAIT_FINISHED", "CONNECTED"]


def reach(side: str, state: str, pki, client_options: dict) -> tuple[object, Ctx]:
    """Run a real handshake and stop the connection under test in ``state``."""
    options = {"server_name": "localhost", "ca_file": pki["ca_file"], **client_options}
    client = ClientConnection(ClientConfig(**options))
    # a TLS 1.3-only server: the version rows below test its refusal of older clients
    server = ServerConnection(ServerConfig(certificate_chain=pki["chain"], private_key=pki["key"],
                                           versions=["1.3"]))
    ctx = Ctx(client, server)
    client.start_handshake()
    c1 = client.data_to_send()
    (ch_hdr, ch_frag), = split_records(c1)
    ctx.ch = ch_frag
    if side == "server" and state == "START":
        return server, ctx
    assert server.receive_data(c1) == []
    s1 = server.data_to_send()
    recs = split_records(s1)
    assert [h[0] for h, _ in recs] == [HANDSHAKE, CCS, APPDATA]
    ctx.sh_record = recs[0][0] + recs[0][1]
    ctx.sh = recs[0][1]
    ctx.flight_record = recs[2][0] + recs[2][1]
    s_hs = server.schedule.secrets["server_handshake_traffic_secret"]
    ctype, inner = RecordProtector(server.suite, s_hs).open(*recs[2])
    assert ctype == HANDSHAKE
    ctx.flight = dict(zip(("ee", "cert", "cv", "fin"), split_messages(inner)))
    ctx.to_client = RecordProtector(server.suite, s_hs)
    if side == "client" and state == "WAIT_SH":
        return client, ctx
    # The client learns the handshake keys from the real ServerHello.
    assert client.receive_data(ctx.sh_record + recs[1][0] + recs[1][1]) == []
    assert client.state.name == "WAIT_EE"
    if side == "client":
        for name, target in (("ee", "WAIT_CERT_CR"), ("cert", "WAIT_CV"), ("cv", "WAIT_FINISHED"),
                             ("fin", "CONNECTED")):
            if client.state.name == state:
                break
            events = client.receive_data(ctx.seal_to_client(HANDSHAKE, ctx.flight[name]))
            assert client.state.name == target, events
        client.data_to_send()
        assert client.state.name == state
        return client, ctx
    # server side, after its first flight: WAIT_FINISHED (or CONNECTED)
    c_hs = server.schedule.secrets["client_handshake_traffic_secret"]
    ctx.to_server = RecordProtector(server.suite, c_hs)
    events = client.receive_data(ctx.flight_record)
    assert client.handshake_complete, events
    c2 = client.data_to_send()
    crecs = [r for r in split_records(c2) if r[0][0] == APPDATA]
    ctype, ctx.client_fin = RecordProtector(client.suite, c_hs).open(*crecs[0])
    assert ctype == HANDSHAKE
    if state == "CONNECTED":
        server.receive_data(ctx.seal_to_server(HANDSHAKE, ctx.client_fin))
        server.data_to_send()
    assert server.state.name == state
    return server, ctx


# --------------------------------------------------------------------------- builders

def _zero_x25519_share(ch: ClientHello) -> None:
    _replace(ch, Extension(ET.key_share, KeyShareCH(client_shares=[
        KeyShareEntry(group=0x001D, key_exchange=bytes(32))])))


def _no_common_group(ch: ClientHello) -> None:
    # brainpoolP256r1tls13 (RFC 8734) is a real TLS 1.3 group tlslab does not implement
    # (secp521r1 and the larger FFDHE groups are enabled on servers by default now)
    _replace(ch, Extension(ET.supported_groups, NamedGroupList(named_group_list=[0x001F])))
    _replace(ch, Extension(ET.key_share, KeyShareCH(client_shares=[
        KeyShareEntry(group=0x001F, key_exchange=b"\x04" + bytes(64))])))


def _duplicate_ext(ch: ClientHello) -> None:
    first = next(e for e in ch.extensions if e.type == ET.supported_groups)
    ch.extensions.insert(0, Extension(first.type, data=first.data))


def _truncated_extensions(ctx: Ctx) -> bytes:
    # keep the extensions length field, drop the block's last 7 bytes, fix the message length
    return hs_record(reframe(ctx.ch[:-7]), 0x0301)


def _length_disagrees(ctx: Ctx) -> bytes:
    # handshake header announces one byte less than the body that follows
    msg = ctx.ch[:1] + (len(ctx.ch) - 5).to_bytes(3, "big") + ctx.ch[4:]
    return hs_record(msg, 0x0301)


def _sh_share(group: int, key_exchange: bytes | None = None):
    def edit(sh: ServerHello) -> None:
        old = sh.ext_value(ET.key_share).server_share
        _replace(sh, Extension(ET.key_share, KeyShareSH(server_share=KeyShareEntry(
            group=group, key_exchange=old.key_exchange if key_exchange is None else key_exchange))))
    return edit


def _set(attr: str, value):
    def edit(msg) -> None:
        setattr(msg, attr, value)
    return edit


def _malformed_san(ctx: Ctx) -> bytes:
    """The real server Certificate, its leaf's subjectAltName value cut short inside: the outer
    DER still loads, the extension only fails when first read (found by fuzz/chain_analysis)."""
    cert = Certificate.parse(ctx.flight["cert"])
    der = bytearray(cert.certificate_list[0].cert_data)
    i = der.index(bytes.fromhex("0603551d11"))  # OID 2.5.29.17, then [critical] OCTET STRING
    i = der.index(b"\x04", i + 5)
    assert der[i + 2] == 0x30 and der[i + 3] < 0x80  # OCTET STRING { SEQUENCE (short length) }
    der[i + 3] += 40  # the GeneralNames SEQUENCE now claims more bytes than it has
    cert.certificate_list[0].cert_data = bytes(der)
    return ctx.seal_to_client(HANDSHAKE, cert.build())


def _duplicate_cert_extension(ctx: Ctx) -> bytes:
    """The real server Certificate, its leaf's subjectAltName OID rewritten to extKeyUsage: two
    2.5.29.37 extensions (RFC 5280 §4.2).  cryptography raises DuplicateExtension, not a
    ValueError, when the extensions are first read: that was an internal_error (fuzz/)."""
    cert = Certificate.parse(ctx.flight["cert"])
    der = cert.certificate_list[0].cert_data
    assert bytes.fromhex("0603551d25") in der
    cert.certificate_list[0].cert_data = der.replace(bytes.fromhex("0603551d11"), bytes.fromhex("0603551d25"))
    return ctx.seal_to_client(HANDSHAKE, cert.build())


def _bad_cv(ctx: Ctx) -> bytes:
    cv = CertificateVerify.parse(ctx.flight["cv"])
    cv.signature = flip(cv.signature, len(cv.signature) - 1)
    return ctx.seal_to_client(HANDSHAKE, cv.build())


def _bad_finished(ctx: Ctx) -> bytes:
    fin = Finished.parse(ctx.flight["fin"])
    fin.verify_data = flip(fin.verify_data, 0)
    return ctx.seal_to_client(HANDSHAKE, fin.build())


def _bad_client_finished(ctx: Ctx) -> bytes:
    return ctx.seal_to_server(HANDSHAKE, flip(ctx.client_fin, len(ctx.client_fin) - 1))


def _seal_inner(ctx: Ctx, inner: bytes) -> bytes:
    """Encrypt a hand-made TLSInnerPlaintext as the server would (RFC 8446 §5.2, §5.3),
    bypassing the length and padding checks of RecordProtector.seal."""
    prot = ctx.to_client
    nonce = (int.from_bytes(prot.iv, "big") ^ prot.seq).to_bytes(len(prot.iv), "big")
    prot.seq += 1
    header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
    return header + prot.suite.aead(prot.key).encrypt(nonce, inner, header)


def _oversized_inner(ctx: Ctx) -> bytes:
    # a correctly authenticated record whose TLSInnerPlaintext is 2^14 + 2 bytes (§5.4)
    return _seal_inner(ctx, bytes(1 << 14) + b"\x16\x00")


def _all_padding(ctx: Ctx) -> bytes:
    # §5.4: no non-zero content type byte at all
    return _seal_inner(ctx, bytes(8))


def _hex(s: str) -> Callable[[Ctx], bytes]:
    data = bytes.fromhex(s.replace(" ", ""))
    return lambda ctx: data


# --------------------------------------------------------------------------- the table
# (name, side, state before injection, build(ctx) -> bytes, expected alert or None,
#  client config overrides)

ROWS = [
    # -- record layer (RFC 8446 §5.1, §5.2) -----------------------------------------
    ("truncated record header (waits)", "server", "START", _hex("16 03 01"), None, {}),
    ("handshake length beyond body (waits)", "server", "START",
     lambda c: hs_record(c.ch[:1] + (len(c.ch) - 3).to_bytes(3, "big") + c.ch[4:], 0x0301), None, {}),
    ("plaintext record 2^14+1", "server", "START", _hex("16 03 01 40 01"), AD.record_overflow, {}),
    ("protected record 2^14+257 (server)", "server", "WAIT_FINISHED", _hex("17 03 03 41 01"),
     AD.record_overflow, {}),
    ("protected record 2^14+257 (client)", "client", "WAIT_EE", _hex("17 03 03 41 01"),
     AD.record_overflow, {}),
    ("inner plaintext 2^14+2", "client", "WAIT_EE", _oversized_inner, AD.record_overflow, {}),
    ("inner plaintext all padding", "client", "WAIT_EE", _all_padding, AD.unexpected_message, {}),
    ("unknown content type, first record", "server", "START", _hex("18 03 03 00 01 00"),
     AD.decode_error, {}),
    ("unknown content type, later record", "client", "WAIT_EE", _hex("18 03 03 00 01 00"),
     AD.unexpected_message, {}),
    ("plain HTTP request", "server", "START", lambda c: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
     AD.decode_error, {}),
    ("plain HTTP answer", "client", "WAIT_SH", lambda c: b"HTTP/1.1 400 Bad Request\r\n\r\n",
     AD.decode_error, {}),
    ("SSLv2-style ClientHello", "server", "START", _hex("80 2e 01 00 02 00 15 00 00 00 10"),
     AD.decode_error, {}),
    ("application data before handshake (server)", "server", "START",
     _hex("17 03 03 00 05 68 65 6c 6c 6f"), AD.unexpected_message, {}),
    ("application data before keys (client)", "client", "WAIT_SH",
     _hex("17 03 03 00 05 68 65 6c 6c 6f"), AD.unexpected_message, {}),
    ("CCS with value 2", "client", "WAIT_SH", _hex("14 03 03 00 01 02"), AD.unexpected_message, {}),
    ("CCS before ClientHello", "server", "START", _hex("14 03 03 00 01 01"),
     AD.unexpected_message, {}),
    ("protected CCS", "client", "WAIT_EE", lambda c: c.seal_to_client(CCS, b"\x01"),
     AD.unexpected_message, {}),
    ("alert record of 3 bytes", "server", "START", _hex("15 03 03 00 03 02 28 00"),
     AD.decode_error, {}),
    ("handshake message announcing 16 MiB", "server", "START", _hex("16 03 01 00 04 01 ff ff ff"),
     AD.decode_error, {}),
    ("zero-length handshake record", "server", "START", _hex("16 03 01 00 00"),
     AD.unexpected_message, {}),
    ("unprotected handshake after keys", "client", "WAIT_EE", lambda c: hs_record(c.flight["ee"]),
     AD.unexpected_message, {}),
    # §5.1: handshake messages must not span a key change
    ("ServerHello and a partial EncryptedExtensions in one record", "client", "WAIT_SH",
     lambda c: hs_record(c.sh + c.flight["ee"][:3]), AD.unexpected_message, {}),
    ("ServerHello and plaintext EncryptedExtensions in one record", "client", "WAIT_SH",
     lambda c: hs_record(c.sh + c.flight["ee"]), AD.unexpected_message, {}),
    ("ServerHello and the whole flight in plaintext in one record", "client", "WAIT_SH",
     lambda c: hs_record(c.sh + c.flight["ee"] + c.flight["cert"] + c.flight["cv"] + c.flight["fin"]),
     AD.unexpected_message, {}),
    ("ClientHello and plaintext Finished in one record", "server", "START",
     lambda c: hs_record(c.ch + Finished(verify_data=bytes(32)).build(), 0x0301),
     AD.unexpected_message, {}),
    # -- ClientHello (RFC 8446 §4.1.2, §4.2) ------------------------------------------
    ("handshake length disagrees with body", "server", "START", _length_disagrees,
     AD.decode_error, {}),
    ("ClientHello with truncated extensions", "server", "START", _truncated_extensions,
     AD.decode_error, {}),
    ("ClientHello session id of 33 bytes", "server", "START",
     lambda c: c.ch_record(_set("legacy_session_id", bytes(33))), AD.decode_error, {}),
    ("ClientHello duplicate extension", "server", "START", lambda c: c.ch_record(_duplicate_ext),
     AD.illegal_parameter, {}),
    ("ClientHello without supported_versions", "server", "START",
     lambda c: c.ch_record(lambda m: _drop(m, ET.supported_versions)), AD.protocol_version, {}),
    ("ClientHello offering only TLS 1.2", "server", "START",
     lambda c: c.ch_record(lambda m: _replace(m, Extension(ET.supported_versions, SupportedVersionsCH(
         versions=[0x0303])))), AD.protocol_version, {}),
    ("ClientHello no common cipher suite", "server", "START",
     lambda c: c.ch_record(_set("cipher_suites", [0xC02F, 0x009C])), AD.handshake_failure, {}),
    ("ClientHello no common group", "server", "START", lambda c: c.ch_record(_no_common_group),
     AD.handshake_failure, {}),
    ("ClientHello missing key_share", "server", "START",
     lambda c: c.ch_record(lambda m: _drop(m, ET.key_share)), AD.missing_extension, {}),
    ("ClientHello compression method 1", "server", "START",
     lambda c: c.ch_record(_set("legacy_compression_methods", b"\x01\x00")), AD.illegal_parameter, {}),
    ("ClientHello all-zero x25519 share", "server", "START", lambda c: c.ch_record(_zero_x25519_share),
     AD.illegal_parameter, {}),
    ("ClientHello short x25519 share", "server", "START",
     lambda c: c.ch_record(lambda m: _replace(m, Extension(ET.key_share, KeyShareCH(client_shares=[
         KeyShareEntry(group=0x001D, key_exchange=b"\x09" * 31)])))), AD.illegal_parameter, {}),
    ("Finished while waiting for ClientHello", "server", "START",
     lambda c: hs_record(Finished(verify_data=bytes(32)).build()), AD.unexpected_message, {}),
    # -- ServerHello (RFC 8446 §4.1.3, §4.2.1, §4.2.8) --------------------------------
    ("ServerHello selects unoffered suite", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(_set("cipher_suite", 0x1304)), AD.illegal_parameter, {}),
    ("ServerHello key share for unoffered group", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(_sh_share(0x0017)), AD.illegal_parameter, {}),
    ("ServerHello all-zero x25519 share", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(_sh_share(0x001D, bytes(32))), AD.illegal_parameter, {}),
    ("ServerHello selects TLS 1.2 in supported_versions", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(lambda m: _replace(m, Extension(
         ET.supported_versions, SupportedVersionsSH(selected_version=0x0303)))),
     AD.illegal_parameter, {}),
    ("ServerHello wrong session id echo", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(_set("legacy_session_id_echo", bytes(32))), AD.illegal_parameter, {}),
    ("ServerHello compression method 1", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(_set("legacy_compression_method", 1)), AD.illegal_parameter, {}),
    ("ServerHello unsolicited extension", "client", "WAIT_SH",
     lambda c: c.sh_record_edited(lambda m: m.extensions.append(Extension(0xFF00, data=b""))),
     AD.unsupported_extension, {}),
    # -- order of messages (RFC 8446 §4, Appendix A.1) ---------------------------------
    ("Certificate while waiting for ServerHello", "client", "WAIT_SH",
     lambda c: hs_record(Certificate(certificate_request_context=b"", certificate_list=[]).build()),
     AD.unexpected_message, {}),
    ("second ServerHello (encrypted)", "client", "WAIT_EE",
     lambda c: c.seal_to_client(HANDSHAKE, c.sh), AD.unexpected_message, {}),
    ("second ServerHello (plaintext)", "client", "WAIT_EE", lambda c: c.sh_record,
     AD.unexpected_message, {}),
    ("Finished before Certificate", "client", "WAIT_CERT_CR",
     lambda c: c.seal_to_client(HANDSHAKE, c.flight["fin"]), AD.unexpected_message, {}),
    ("CertificateVerify before Certificate", "client", "WAIT_CERT_CR",
     lambda c: c.seal_to_client(HANDSHAKE, c.flight["cv"]), AD.unexpected_message, {}),
    ("application data during the handshake", "client", "WAIT_CV",
     lambda c: c.seal_to_client(APPDATA, b"early"), AD.unexpected_message, {}),
    ("unknown handshake type", "client", "WAIT_EE",
     lambda c: c.seal_to_client(HANDSHAKE, b"\x63\x00\x00\x00"), AD.unexpected_message, {}),
    # -- protection (RFC 8446 §5.2) ------------------------------------------------------
    ("flipped ciphertext byte in server flight", "client", "WAIT_EE",
     lambda c: flip(c.flight_record, 40), AD.bad_record_mac, {}),
    ("flipped tag byte in server flight", "client", "WAIT_EE",
     lambda c: flip(c.flight_record, len(c.flight_record) - 1), AD.bad_record_mac, {}),
    ("flipped byte in encrypted server Finished", "client", "WAIT_FINISHED",
     lambda c: flip(c.seal_to_client(HANDSHAKE, c.flight["fin"]), 8), AD.bad_record_mac, {}),
    ("flipped byte in encrypted client Finished", "server", "WAIT_FINISHED",
     lambda c: flip(c.seal_to_server(HANDSHAKE, c.client_fin), 8), AD.bad_record_mac, {}),
    ("protected record shorter than the tag", "client", "WAIT_EE", _hex("17 03 03 00 05 0102030405"),
     AD.bad_record_mac, {}),
    # -- authentication (RFC 8446 §4.4) ------------------------------------------------
    ("server Finished verify_data wrong", "client", "WAIT_FINISHED", _bad_finished,
     AD.decrypt_error, {}),
    ("client Finished verify_data wrong", "server", "WAIT_FINISHED", _bad_client_finished,
     AD.decrypt_error, {}),
    ("server Finished of 31 bytes", "client", "WAIT_FINISHED",
     lambda c: c.seal_to_client(HANDSHAKE, Finished(verify_data=bytes(31)).build()),
     AD.decode_error, {}),
    ("CertificateVerify signature invalid", "client", "WAIT_CV", _bad_cv, AD.decrypt_error, {}),
    ("empty server Certificate", "client", "WAIT_CERT_CR",
     lambda c: c.seal_to_client(HANDSHAKE, Certificate(certificate_request_context=b"",
                                                       certificate_list=[]).build()),
     AD.decode_error, {}),
    ("certificate from an untrusted CA", "client", "WAIT_CERT_CR",
     lambda c: c.seal_to_client(HANDSHAKE, c.flight["cert"]), AD.unknown_ca, {"ca_file": "other"}),
    ("certificate for another host name", "client", "WAIT_CERT_CR",
     lambda c: c.seal_to_client(HANDSHAKE, c.flight["cert"]), AD.bad_certificate,
     {"server_name": "example.com"}),
    ("certificate with a malformed subjectAltName", "client", "WAIT_CERT_CR", _malformed_san,
     AD.bad_certificate, {}),
    ("malformed subjectAltName, untrusted CA", "client", "WAIT_CERT_CR", _malformed_san,
     AD.bad_certificate, {"ca_file": "other"}),
    ("certificate with a duplicated extension", "client", "WAIT_CERT_CR", _duplicate_cert_extension,
     AD.bad_certificate, {}),
    ("certificate that is not DER", "client", "WAIT_CERT_CR",
     lambda c: c.seal_to_client(HANDSHAKE, Certificate(certificate_request_context=b"", certificate_list=[
         CertificateEntry(cert_data=b"\x30\x03\x02\x01\x00", extensions=[])]).build()),
     AD.bad_certificate, {}),
    # -- post-handshake (RFC 8446 §4.6.3) -----------------------------------------------
    ("KeyUpdate request_update 2", "server", "CONNECTED",
     lambda c: None, AD.illegal_parameter, {}),  # built in the test (needs application keys)
]

#: rows that currently expose an engine bug: name -> reason (kept out of the green suite)
KNOWN_BUGS: dict[str, str] = {}


def _params():
    out = []
    for row in ROWS:
        marks = [pytest.mark.skip(reason=f"engine bug: {KNOWN_BUGS[row[0]]}")] if row[0] in KNOWN_BUGS else []
        out.append(pytest.param(*row, id=row[0], marks=marks))
    return out


def _inject_key_update(conn: ServerConnection) -> bytes:
    prot = RecordProtector(conn.suite, conn.schedule.secrets["client_application_traffic_secret_0"])
    return prot.seal(HANDSHAKE, KeyUpdate(request_update=2).build())


def sent_alerts(out: bytes, conn, snapshot: RecordProtector | None) -> list[tuple[int, int]]:
    """(level, description) of every alert record in ``out``.

    Encrypted records are opened with a copy of the write protector taken before the
    injection, or with a fresh protector for any traffic secret the connection derived
    while handling the input (e.g. a server that sent its flight, then failed).
    """
    candidates = [snapshot] if snapshot is not None else []
    if conn.schedule is not None:
        for name, secret in conn.schedule.secrets.items():
            if name.endswith("traffic_secret_0") or name.endswith("handshake_traffic_secret"):
                candidates.append(RecordProtector(conn.suite, secret))
    alerts = []
    for header, frag in split_records(out):
        if header[0] == ALERT:
            assert len(frag) == 2, f"alert record of {len(frag)} bytes"
            alerts.append((frag[0], frag[1]))
        elif header[0] == APPDATA:
            for prot in candidates:
                try:
                    ctype, content = prot.open(header, frag)
                except Exception:
                    continue
                if ctype == ALERT:
                    assert len(content) == 2
                    alerts.append((content[0], content[1]))
                break
            else:
                pytest.fail(f"could not open an encrypted record the connection sent: {header.hex()}")
    return alerts


@pytest.mark.parametrize("name, side, state, build, expected, client_options", _params())
def test_bad_input(pki, name, side, state, build, expected, client_options):
    opts = dict(client_options)
    if opts.get("ca_file") == "other":
        opts["ca_file"] = pki["other_ca_file"]
    conn, ctx = reach(side, state, pki, opts)
    assert conn.state.name == state
    assert conn.data_to_send() == b""
    data = _inject_key_update(conn) if name.startswith("KeyUpdate") else build(ctx)
    snapshot = copy.copy(getattr(conn, "_write_prot", None))
    try:
        events = conn.receive_data(data)
        out = conn.data_to_send()
    except Exception as exc:  # pragma: no cover - this is what the test guards against
        pytest.fail(f"{type(exc).__name__} escaped receive_data: {exc!r}\ninput: {data.hex()}")

    if expected is None:
        assert events == []
        assert out == b""
        assert not conn.closed and conn.error is None
        return

    alerts = sent_alerts(out, conn, snapshot)
    if expected != AD.internal_error and isinstance(conn.error, InternalError):
        # a Python exception turned into internal_error by receive_data: a parser/handler bug
        tb = conn.internal_error_detail
        pytest.fail(f"internal_error: {conn.error}\ninput: {data.hex()}\n" + (tb or ""))
    assert alerts == [(2, int(expected))], (
        f"expected one fatal {expected.name}, got "
        f"{[AD(d).name if d in AD._value2member_map_ else d for _, d in alerts]} "
        f"(error: {conn.error!r})")
    assert conn.closed
    assert conn.error is not None and conn.error.alert == expected
    message = str(conn.error)
    assert message.strip() and "\n" not in message
    closed = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert len(closed) == 1 and closed[0].alert_sent == expected.name
    assert closed[0].error and "\n" not in closed[0].error
    # a closed connection ignores everything that follows
    assert conn.receive_data(data + b"\x16\x03\x03\x00\x01\x01") == []
    assert conn.receive_data(os.urandom(64)) == []
    assert conn.data_to_send() == b""
