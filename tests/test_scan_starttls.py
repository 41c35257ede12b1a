"""STARTTLS dialogues (tlslab.scan.starttls) against fronts on loopback.

Each front is a small asyncio server that speaks the protocol's plaintext dialogue as its
RFC describes it and then hands the same connection to Python's ``ssl`` (OpenSSL, a real
TLS stack) with ``StreamWriter.start_tls``; the client side runs ``negotiate()`` and then
a full handshake of tlslab's own engine over the same streams, and exchanges application
data.  The failure fronts refuse, stall, flood, close, or inject bytes.
"""
from __future__ import annotations

import asyncio
import ssl
import struct
import time

import pytest

from conftest import pki_client_config
from starttls_servers import RealServers, write_identity
from tlslab.proto.client import ClientConnection
from tlslab.proto.events import ApplicationData
from tlslab.scan.starttls import StartTLSError, StartTLSInfo, negotiate, open_starttls
from tlslab.scan.starttls_binary import (LDAP_STARTTLS_REQUEST, PG_SSL_REQUEST,
                                        RDP_CONNECTION_REQUEST)
from tlslab.scan.target import STARTTLS_PROTOCOLS

TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"


@pytest.fixture(scope="module")
def server_ssl(pki, tmp_path_factory) -> ssl.SSLContext:
    d = tmp_path_factory.mktemp("starttls")
    write_identity(pki, d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


# ------------------------------------------------------------------ harness

async def serve(front, ctx: ssl.SSLContext | None = None):
    """A loopback server running ``front(reader, writer)``; when it returns True the
    connection is upgraded with ``ctx`` and echoes one read of application data."""
    async def handler(reader, writer):
        try:
            if await front(reader, writer) and ctx is not None:
                await writer.start_tls(ctx)
                data = await reader.read(1024)
                writer.write(b"echo:" + data)
                await writer.drain()
                await reader.read(1024)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def tls_over(reader, writer, pki, echo=True) -> bytes | None:
    """A full handshake of tlslab's engine over the streams, then one echo round trip."""
    conn = ClientConnection(pki_client_config(pki, server_name="localhost"))
    conn.start_handshake()
    writer.write(conn.data_to_send())
    await writer.drain()
    while not conn.handshake_complete:
        data = await reader.read(65536)
        assert data, "the server closed the connection during the handshake"
        conn.receive_data(data)
        writer.write(conn.data_to_send())
        await writer.drain()
    if not echo:
        return None
    conn.send_application_data(b"ping")
    writer.write(conn.data_to_send())
    await writer.drain()
    while True:
        data = await reader.read(65536)
        assert data, "no echo"
        for event in conn.receive_data(data):
            if isinstance(event, ApplicationData):
                return event.data


def run(front, protocol, *, ctx=None, pki=None, deadline=3.0, server_name="localhost"):
    """negotiate() against ``front``; with ``pki`` also the TLS handshake and the echo.
    Returns (info, echo) or raises StartTLSError; every run is bounded to 10 s."""
    async def main():
        server, port = await serve(front, ctx)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                info = await negotiate(protocol, reader, writer, server_name=server_name,
                                       deadline=time.monotonic() + deadline)
                echo = await tls_over(reader, writer, pki) if pki else None
                return info, echo
            finally:
                writer.transport.abort()
        finally:
            server.close()
    return asyncio.run(asyncio.wait_for(main(), 10))


def fails(front, protocol, **kw) -> str:
    with pytest.raises(StartTLSError) as e:
        run(front, protocol, **kw)
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message
    return message


async def line(reader) -> bytes:
    return (await reader.readline()).rstrip(b"\r\n")


def send(writer, *lines: str | bytes) -> None:
    for item in lines:
        writer.write(item if isinstance(item, bytes) else item.encode() + b"\r\n")


# ------------------------------------------------------------------ faithful fronts

def smtp_front(ehlo=("PIPELINING", "SIZE 10240000", "STARTTLS"), starttls="220 2.0.0 Ready"):
    """RFC 3207 §4 / RFC 5321 §4.2: a multi-line EHLO answer, STARTTLS, 220."""
    async def front(reader, writer):
        send(writer, "220 mail.example.test ESMTP test")
        assert (await line(reader)) == b"EHLO tlslab.invalid"
        lines = ["mail.example.test greets you", *ehlo]
        send(writer, *(f"250{'-' if i < len(lines) - 1 else ' '}{t}" for i, t in enumerate(lines)))
        assert (await line(reader)) == b"STARTTLS"
        send(writer, starttls)
        return starttls.startswith("220")
    return front


def imap_front(caps="IMAP4rev1 STARTTLS LOGINDISABLED", answer="OK Begin TLS negotiation now"):
    """RFC 9051 §6.2.1: untagged CAPABILITY, then the tagged completion."""
    async def front(reader, writer):
        send(writer, "* OK [CAPABILITY IMAP4rev1] test IMAP ready")
        assert (await line(reader)) == b"a1 CAPABILITY"
        send(writer, f"* CAPABILITY {caps}", "a1 OK CAPABILITY completed")
        assert (await line(reader)) == b"a2 STARTTLS"
        send(writer, f"a2 {answer}")
        return answer.startswith("OK")
    return front


def pop3_front(capa=("TOP", "USER", "STLS"), stls="+OK Begin TLS"):
    """RFC 2449 §5 CAPA (multi-line, ends with '.'), RFC 2595 §4 STLS."""
    async def front(reader, writer):
        send(writer, "+OK test POP3 ready")
        assert (await line(reader)) == b"CAPA"
        send(writer, "+OK Capability list follows", *capa, ".")
        assert (await line(reader)) == b"STLS"
        send(writer, stls)
        return stls.startswith("+OK")
    return front


def ftp_front(feat=("AUTH TLS", "PBSZ", "PROT", "UTF8"), auth="234 AUTH TLS successful"):
    """RFC 959 §4.2 multi-line greeting, RFC 2389 FEAT, RFC 4217 §4 AUTH TLS -> 234."""
    async def front(reader, writer):
        send(writer, "220-Welcome to the test FTP server", "this line has no code",
             "220 ready")
        assert (await line(reader)) == b"FEAT"
        send(writer, "211-Extensions supported:", *(f" {f}" for f in feat), "211 End")
        assert (await line(reader)) == b"AUTH TLS"
        send(writer, auth)
        return auth.startswith("234")
    return front


def xmpp_front(features=f"<starttls xmlns='{TLS_NS}'><required/></starttls>"
                        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                        "<mechanism>PLAIN</mechanism></mechanisms>",
               answer=f"<proceed xmlns='{TLS_NS}'/>", seen=None):
    """RFC 6120 §5.4.2: stream headers, features with <starttls/>, <proceed/>."""
    async def front(reader, writer):
        header = await reader.readuntil(b"version='1.0'>")
        if seen is not None:
            seen.append(header)
        assert header.startswith(b"<?xml version='1.0'?><stream:stream")
        # the features may come in pieces: split them over two writes
        send(writer, b"<?xml version='1.0'?><stream:stream from='example.test' id='x1' "
                     b"version='1.0' xmlns='jabber:client' "
                     b"xmlns:stream='http://etherx.jabber.org/streams'><stream:features>")
        await writer.drain()
        await asyncio.sleep(0.05)
        send(writer, features.encode() + b"</stream:features>")
        if "<starttls" not in features:
            await reader.read(1)
            return False
        assert (await reader.readuntil(b"/>")) == f"<starttls xmlns='{TLS_NS}'/>".encode()
        send(writer, answer.encode())
        return answer.startswith("<proceed")
    return front


def ldap_response(code: int, diag: bytes = b"", message_id: int = 1) -> bytes:
    """RFC 4511 §4.12 ExtendedResponse: resultCode, matchedDN '', diagnosticMessage."""
    op = bytes([0x0A, 1, code, 0x04, 0, 0x04, len(diag)]) + diag
    body = bytes([0x02, 1, message_id, 0x78, len(op)]) + op
    return bytes([0x30, len(body)]) + body


def ldap_front(code=0, diag=b"", message_id=1):
    async def front(reader, writer):
        assert (await reader.readexactly(len(LDAP_STARTTLS_REQUEST))) == LDAP_STARTTLS_REQUEST
        send(writer, ldap_response(code, diag, message_id))
        return code == 0 and message_id == 1
    return front


def postgres_front(answer=b"S"):
    async def front(reader, writer):
        assert (await reader.readexactly(8)) == PG_SSL_REQUEST == struct.pack("!ii", 8, 80877103)
        send(writer, answer)
        return answer == b"S"
    return front


def rdp_confirm(kind: int | None, flags: int = 0, value: int = 1) -> bytes:
    """[MS-RDPBCGR] 2.2.1.2: TPKT, X.224 CC (SRC-REF 0x1234), RDP_NEG_RSP/FAILURE."""
    neg = struct.pack("<BBHI", kind, flags, 8, value) if kind is not None else b""
    x224 = bytes([6 + len(neg), 0xD0, 0, 0, 0x12, 0x34, 0]) + neg
    return bytes([3, 0]) + (4 + len(x224)).to_bytes(2, "big") + x224


def rdp_front(kind=2, flags=0x1F, value=1):
    async def front(reader, writer):
        assert (await reader.readexactly(19)) == RDP_CONNECTION_REQUEST
        send(writer, rdp_confirm(kind, flags, value))
        return kind == 2 and value in (1, 2)
    return front


GOOD = {"smtp": smtp_front(), "imap": imap_front(), "pop3": pop3_front(), "ftp": ftp_front(),
        "xmpp": xmpp_front(), "ldap": ldap_front(), "postgres": postgres_front(),
        "rdp": rdp_front()}


# ------------------------------------------------------------------ success, then real TLS

@pytest.mark.parametrize("protocol", STARTTLS_PROTOCOLS)
def test_dialogue_then_tls_handshake(protocol, server_ssl, pki):
    info, echo = run(GOOD[protocol], protocol, ctx=server_ssl, pki=pki)
    assert isinstance(info, StartTLSInfo) and info.protocol == protocol
    assert echo == b"echo:ping"


def test_what_the_dialogues_show(server_ssl, pki):
    info, _ = run(GOOD["smtp"], "smtp", ctx=server_ssl, pki=pki)
    assert info.banner == "220 mail.example.test ESMTP test"
    assert info.capabilities == ["PIPELINING", "SIZE 10240000", "STARTTLS"]
    info, _ = run(GOOD["imap"], "imap", ctx=server_ssl, pki=pki)
    assert info.capabilities == ["IMAP4rev1", "STARTTLS", "LOGINDISABLED"]
    info, _ = run(GOOD["pop3"], "pop3", ctx=server_ssl, pki=pki)
    assert info.banner == "+OK test POP3 ready" and "STLS" in info.capabilities
    info, _ = run(GOOD["ftp"], "ftp", ctx=server_ssl, pki=pki)
    assert info.banner.startswith("220 Welcome") and info.capabilities[0] == "AUTH TLS"
    info, _ = run(GOOD["xmpp"], "xmpp", ctx=server_ssl, pki=pki)
    assert info.capabilities == ["starttls (required)", "mechanisms", "SASL PLAIN"]
    assert "from='example.test'" in info.banner
    info, _ = run(GOOD["rdp"], "rdp", ctx=server_ssl, pki=pki)
    assert info.capabilities[0] == "selected PROTOCOL_SSL"
    assert "RESTRICTED_ADMIN_MODE_SUPPORTED" in info.capabilities


def test_xmpp_names_the_server_and_escapes_it():
    seen: list[bytes] = []
    run(xmpp_front(seen=seen), "xmpp", server_name="example.test")
    assert b" to='example.test' " in seen[0]
    seen.clear()
    run(xmpp_front(seen=seen), "xmpp", server_name="a'b<c")
    assert b"to='a&apos;b&lt;c'" in seen[0]


def test_rdp_credssp_is_tls_too(server_ssl, pki):
    info, echo = run(rdp_front(value=2), "rdp", ctx=server_ssl, pki=pki)
    assert info.capabilities[0] == "selected PROTOCOL_HYBRID" and echo == b"echo:ping"


# ------------------------------------------------------------------ not offered, refused

def test_smtp_without_starttls():
    assert fails(smtp_front(ehlo=("PIPELINING", "SIZE 10240000")), "smtp") == (
        "the SMTP server does not offer STARTTLS (EHLO lists: PIPELINING, SIZE 10240000)")


def test_smtp_refuses():
    assert fails(smtp_front(starttls="454 TLS not available"), "smtp") == (
        "the server refused STARTTLS: 454 TLS not available")


def test_smtp_rejects_the_session():
    async def front(reader, writer):
        send(writer, "554 no service for you")
    assert fails(front, "smtp") == "the SMTP server refused the session: 554 no service for you"


def test_imap_refuses_and_does_not_offer():
    assert fails(imap_front(answer="NO TLS is broken"), "imap") == (
        "the server refused STARTTLS: NO TLS is broken")
    assert fails(imap_front(caps="IMAP4rev1 AUTH=PLAIN"), "imap") == (
        "the IMAP server does not offer STARTTLS (CAPABILITY lists: IMAP4rev1, AUTH=PLAIN)")


def test_pop3_refuses_and_does_not_offer():
    assert fails(pop3_front(stls="-ERR not now"), "pop3") == "the server refused STLS: -ERR not now"
    assert "does not offer STLS (CAPA lists: TOP, USER)" in fails(pop3_front(capa=("TOP", "USER")),
                                                                 "pop3")


def test_ftp_refuses_and_does_not_offer():
    assert fails(ftp_front(auth="534 policy"), "ftp") == "the server refused AUTH TLS: 534 policy"
    msg = fails(ftp_front(feat=("UTF8",), auth="500 unknown command"), "ftp")
    assert msg.startswith("the FTP server does not offer AUTH TLS (FEAT lists: UTF8;")


def test_xmpp_refuses_and_does_not_offer():
    assert fails(xmpp_front(answer=f"<failure xmlns='{TLS_NS}'/>"), "xmpp") == (
        "the server refused STARTTLS: <failure/>")
    msg = fails(xmpp_front(features="<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                    "<mechanism>PLAIN</mechanism></mechanisms>"), "xmpp")
    assert msg == "the XMPP server does not offer STARTTLS (features: mechanisms, SASL PLAIN)"


def test_xmpp_stream_error():
    async def front(reader, writer):
        await reader.readuntil(b"'1.0'>")
        send(writer, b"<stream:stream version='1.0'><stream:error><host-unknown xmlns="
                     b"'urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
    assert fails(front, "xmpp") == "the XMPP server ended the stream with an error: host-unknown"


def test_ldap_refuses():
    assert fails(ldap_front(code=2, diag=b"unsupported extended operation"), "ldap") == (
        "the LDAP server refused StartTLS: protocolError (2): unsupported extended operation")
    assert fails(ldap_front(code=52, message_id=0), "ldap") == (
        "the LDAP server is closing the connection: unavailable (52)")


def test_postgres_refuses():
    assert fails(postgres_front(b"N"), "postgres") == "PostgreSQL refused SSL (answered 'N')"
    fields = b"SFATAL\0MTLS? no\0\0"
    msg = fails(postgres_front(b"E" + struct.pack("!i", 4 + len(fields)) + fields), "postgres")
    assert msg == "PostgreSQL answered the SSLRequest with an error: FATAL: TLS? no"


def test_rdp_refuses():
    assert fails(rdp_front(kind=3, flags=0, value=2), "rdp") == (
        "the RDP server refused TLS and CredSSP: SSL_NOT_ALLOWED_BY_SERVER (2)")
    assert fails(rdp_front(value=0), "rdp") == "the RDP server selected PROTOCOL_RDP, not TLS"
    assert "only Standard RDP Security" in fails(rdp_front(kind=None), "rdp")


# ------------------------------------------------------------------ stalls, floods, closes

async def stall(reader, writer):
    await reader.read(65536)  # take what the client sends, answer nothing
    await asyncio.sleep(30)


@pytest.mark.parametrize("protocol", STARTTLS_PROTOCOLS)
def test_stall_hits_the_deadline(protocol):
    start = time.monotonic()
    msg = fails(stall, protocol, deadline=0.5)
    assert time.monotonic() - start < 2.0
    assert msg.startswith("no ") and msg.endswith("within 0.5 s")


def test_stall_messages_say_what_was_awaited():
    assert fails(stall, "smtp", deadline=0.5) == "no greeting within 0.5 s"
    assert fails(stall, "postgres", deadline=0.5) == (
        "no answer to the SSLRequest within 0.5 s")

    async def after_greeting(reader, writer):
        send(writer, "220 hello")
        await stall(reader, writer)
    assert fails(after_greeting, "smtp", deadline=0.5) == "no answer to EHLO within 0.5 s"


@pytest.mark.parametrize("protocol", STARTTLS_PROTOCOLS)
def test_closed_connection(protocol):
    async def front(reader, writer):
        return False  # the harness closes at once
    msg = fails(front, protocol)
    assert msg.startswith("the server closed the connection while waiting for ")


def flood(unit: bytes, prefix: bytes = b""):
    async def front(reader, writer):
        writer.write(prefix)
        try:
            for _ in range(2000):  # up to ~2 MB; the client must give up long before
                writer.write(unit * 64)
                await writer.drain()
        except ConnectionError:
            return
        # stay open: closing with the client's request unread would reset the connection
        # and lose what was sent before the client read it
        await asyncio.sleep(10)
    return front


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "ftp"])
def test_endless_line(protocol):
    start = time.monotonic()
    msg = fails(flood(b"A" * 16), protocol)
    assert msg.startswith("a line longer than 4096 bytes") and time.monotonic() - start < 3


def test_endless_lines_are_bounded_in_total():
    assert fails(flood(b"220-a banner line that never ends\r\n"), "smtp").startswith(
        "the server sent more than 64 KiB before TLS started")
    assert fails(flood(b"* OK flood\r\n"), "imap").startswith("the server sent more than 64 KiB")


def test_xmpp_flood_is_bounded():
    msg = fails(flood(b"<a x='1'", prefix=b"<stream:stream version='1.0'>"), "xmpp")
    assert msg.startswith("the server sent more than 64 KiB")
    assert fails(flood(b"HTTP/1.1 400 Bad\r\n"), "xmpp").startswith("not an XMPP stream")


def test_binary_lengths_are_bounded():
    # an LDAP answer that claims 16 MB, an RDP TPKT of 64 KiB
    assert "more than 16384" in fails(flood(b"\0", prefix=b"\x30\x83\xff\xff\xff"), "ldap")
    assert fails(flood(b"\0", prefix=b"\x03\x00\xff\xff"), "rdp").startswith("not an RDP answer")


# ------------------------------------------------------------------ hostile content

def test_bytes_after_the_go_are_refused():
    """Plaintext queued behind the server's 'go' would be read as TLS (or, worse, trusted
    as if protected): STARTTLS response injection."""
    async def front(reader, writer):
        await smtp_front(starttls="220 go\r\n250 injected")(reader, writer)
    msg = fails(front, "smtp")
    assert msg.startswith("the SMTP server sent ") and "after agreeing to TLS" in msg

    async def pg(reader, writer):
        await postgres_front(b"SX")(reader, writer)
    assert "PostgreSQL server sent 1 bytes after agreeing to TLS" in fails(pg, "postgres")


def test_server_text_is_sanitised():
    async def front(reader, writer):
        send(writer, b"220 evil\x1b[31m red \xff\xfe \xe2\x80\xae rtl\r\n")
        await line(reader)
        send(writer, "250-x", "250 SIZE 1\x07")
    msg = fails(front, "smtp")
    assert "\x1b" not in msg and "\x07" not in msg and "\u202e" not in msg
    assert msg == "the SMTP server does not offer STARTTLS (EHLO lists: SIZE 1)"

    async def banner(reader, writer):
        send(writer, b"220 evil\x1b[31m red \xff\r\n")
        await stall(reader, writer)
    assert fails(banner, "smtp", deadline=0.3) == "no answer to EHLO within 0.3 s"


def test_not_the_protocol():
    async def http(reader, writer):
        send(writer, "HTTP/1.1 400 Bad Request")
    assert fails(http, "smtp") == ("not an SMTP reply while waiting for the greeting: "
                                   "'HTTP/1.1 400 Bad Request'")
    assert fails(http, "postgres") == "not a PostgreSQL answer to the SSLRequest (first byte 0x48)"


def test_open_starttls(server_ssl, pki):
    """The helper a scan uses: connect, upgrade, hand back streams at the start of TLS."""
    async def main(front, protocol="pop3"):
        server, port = await serve(front, server_ssl)
        try:
            reader, writer, info = await open_starttls(
                "127.0.0.1", port, protocol, server_name="localhost",
                deadline=time.monotonic() + 3)
            try:
                return info, await tls_over(reader, writer, pki)
            finally:
                writer.transport.abort()
        finally:
            server.close()
    info, echo = asyncio.run(asyncio.wait_for(main(pop3_front()), 10))
    assert info.protocol == "pop3" and echo == b"echo:ping"
    with pytest.raises(StartTLSError, match="refused STLS"):
        asyncio.run(asyncio.wait_for(main(pop3_front(stls="-ERR no")), 10))
    info, _ = asyncio.run(asyncio.wait_for(main(GOOD["smtp"], "SMTP"), 10))
    assert info.protocol == "smtp"


def test_unknown_protocol():
    with pytest.raises(StartTLSError, match="unknown STARTTLS protocol 'gopher'"):
        run(stall, "gopher")


# ------------------------------------------------------------------ real servers

@pytest.fixture(scope="module")
def real(pki):
    servers = RealServers(pki)
    yield servers
    servers.stop()


def connect_and_negotiate(port, protocol, pki=None):
    async def main():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            info = await negotiate(protocol, reader, writer, server_name="localhost",
                                   deadline=time.monotonic() + 5)
            if pki:
                await tls_over(reader, writer, pki, echo=False)
            return info
        finally:
            writer.transport.abort()
    return asyncio.run(asyncio.wait_for(main(), 15))


REAL = [("postfix", "smtp"), ("dovecot", "imap"), ("dovecot", "pop3"), ("slapd", "ldap"),
        ("postgres", "postgres")]


@pytest.mark.parametrize("kind, protocol", REAL)
def test_real_server_then_tls(real, pki, kind, protocol):
    info = connect_and_negotiate(real.start(kind)[protocol], protocol, pki)
    assert info.protocol == protocol


@pytest.mark.parametrize("kind, protocol, message", [
    ("postfix", "smtp", "the SMTP server does not offer STARTTLS (EHLO lists: PIPELINING,"),
    ("dovecot", "imap", "the IMAP server does not offer STARTTLS (CAPABILITY lists: IMAP4rev1"),
    ("dovecot", "pop3", "the POP3 server does not offer STLS (CAPA lists: CAPA,"),
    ("slapd", "ldap", "the LDAP server refused StartTLS: "),
    ("postgres", "postgres", "PostgreSQL refused SSL (answered 'N')")])
def test_real_server_without_tls(real, kind, protocol, message):
    with pytest.raises(StartTLSError) as e:
        connect_and_negotiate(real.start(kind, tls=False)[protocol], protocol)
    assert str(e.value).startswith(message)


def test_scan_speaks_starttls_before_every_probe(server_ssl):
    """The scan's probes go through the SMTP dialogue each time: the TLS versions found are
    those of the (Python ssl) server behind the upgrade."""
    from tlslab.scan import enumerate as E
    from tlslab.scan.target import ScanTarget

    async def main():
        server, port = await serve(smtp_front(), server_ssl)
        try:
            target = ScanTarget("127.0.0.1", port, server_name="localhost", starttls="smtp",
                                timeout=3)
            return await E.protocols(E.Prober(target, time.monotonic() + 20))
        finally:
            server.close()

    accepted, answers = asyncio.run(asyncio.wait_for(main(), 30))
    assert accepted["TLS 1.2"] and accepted["TLS 1.3"]
    assert not accepted["SSL 3.0"] and not accepted["TLS 1.0"]
    # and a server that does not offer STARTTLS stops the scan with what it said
    async def refused():
        server, port = await serve(smtp_front(ehlo=("PIPELINING",)), server_ssl)
        try:
            target = ScanTarget("127.0.0.1", port, starttls="smtp", timeout=3)
            return await E.protocols(E.Prober(target, time.monotonic() + 20))
        finally:
            server.close()

    accepted, answers = asyncio.run(asyncio.wait_for(refused(), 30))
    assert not any(accepted.values())
    assert {a.kind for a in answers.values()} == {"starttls_failed"}
    assert "does not offer STARTTLS" in answers["TLS 1.2"].detail
