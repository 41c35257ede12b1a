"""ClientHellos in a byte stream, a capture or a file, found with the engine's codec.

Records are split by :class:`tlslab.proto.record.RecordReader`, handshake messages
reassembled across records by :class:`tlslab.proto.messages.HandshakeBuffer`, and a
ClientHello parsed by :meth:`tlslab.proto.messages.ClientHello.parse` (RFC 8446 §5.1,
§4.1.2): no second parser.  A ClientHello may span several records and TCP segments.

The scan of a client's stream stops where the plaintext handshake ends: at the first
application_data record (TLS 1.3 protects everything after the hellos), or after a
ChangeCipherSpec at the first handshake message that is not a ClientHello (TLS 1.2's
encrypted Finished; TLS 1.3's compatibility-mode CCS may be followed by a second
ClientHello after a HelloRetryRequest, RFC 8446 §4.1.4 and §D.4).
"""
from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field

from ..proto.errors import TLSError
from ..proto.messages import ClientHello, HandshakeBuffer
from ..proto.names import ContentType, HandshakeType, name_of
from ..proto.record import HEADER_LEN, RecordReader
from .files import CaptureError, sniff_format
from .tcp import CLIENT, SERVER, Connection, open_capture


class NotAClientHello(Exception):
    """The input is neither a capture nor a ClientHello (one line for the user)."""


@dataclass(frozen=True)
class ConnectionInfo:
    """Which connection of a capture a ClientHello came from (bytes not kept)."""

    index: int
    client: str
    server: str
    roles: str
    first_time: float


@dataclass
class FoundHello:
    hello: ClientHello
    #: position in the stream (or file) of the first byte of the record that starts it;
    #: for a bare handshake message, 0
    offset: int
    #: records it spans (0: a bare handshake message with no record layer)
    records: int
    #: legacy_record_version of its first record (None without a record layer)
    record_version: int | None = None
    connection: ConnectionInfo | None = None
    #: "STARTTLS" / "HTTP CONNECT" when the TLS started after a plaintext upgrade
    upgraded_from: str = ""


@dataclass
class HelloScan:
    hellos: list[FoundHello] = field(default_factory=list)
    #: why the scan stopped before the end of the bytes, when it matters (not TLS, a
    #: ClientHello that does not parse, bytes that end inside a ClientHello)
    problem: str | None = None


# --------------------------------------------------------------------------- streams

def scan_client_hellos(data: bytes, base: int = 0) -> HelloScan:
    """Every plaintext ClientHello at the start of one direction's TLS bytes (normally
    one; two after a HelloRetryRequest).  ``base`` is added to the offsets reported."""
    out = HelloScan()
    reader = RecordReader()
    reader.add(data)
    hs = HandshakeBuffer()
    pos = 0                      # stream position of the next record
    msg_start = msg_version = None
    msg_records = 0
    after_ccs = False
    while True:
        try:
            rec = reader.next_record(protected=True, tls12=True)
        except TLSError as e:
            if not out.hellos:
                out.problem = _first_words(str(e)) if pos == 0 else (
                    f"record at byte {base + pos}: {_first_words(str(e))}")
            return out
        if rec is None:
            break
        header, fragment = rec
        start, pos = pos, pos + HEADER_LEN + len(fragment)
        ctype = header[0]
        if ctype == ContentType.application_data:
            return out
        if ctype == ContentType.change_cipher_spec:
            after_ccs = True
            continue
        if ctype != ContentType.handshake:
            continue
        if not len(hs):
            msg_start, msg_version, msg_records = start, (header[1] << 8) | header[2], 0
        msg_records += 1
        hs.add(fragment)
        while True:
            try:
                raw = hs.pop_message()
            except TLSError as e:
                if not after_ccs and not out.hellos:
                    out.problem = f"handshake data at byte {base + msg_start}: {_first_words(str(e))}"
                return out
            if raw is None:
                break
            if raw[0] != HandshakeType.client_hello:
                if after_ccs:
                    return out  # encrypted from here on
                msg_start, msg_records = pos, 0
                continue
            try:
                hello = ClientHello.parse(raw)
            except TLSError as e:
                out.problem = (f"the ClientHello at byte {base + msg_start} does not parse: "
                               f"{_first_words(str(e))}")
                return out
            out.hellos.append(FoundHello(hello, base + msg_start, msg_records, msg_version))
            msg_start, msg_records = pos, 0
    if len(hs) and not after_ccs:
        out.problem = (f"the bytes end inside a handshake message at byte "
                       f"{base + (msg_start or 0)} ({len(hs)} bytes of it captured)")
    elif len(reader) and not out.hellos:
        out.problem = f"the bytes end inside a record at byte {base + pos}"
    return out


_UPGRADES = (
    # SMTP (RFC 3207), IMAP (RFC 3501 §6.2.1: "tag STARTTLS"), POP3 (RFC 2595 §4: STLS),
    # and an HTTP proxy tunnel (RFC 9110 §9.3.6)
    ("STARTTLS", re.compile(rb"(?im)^(?:[a-z0-9.]+ )?(?:starttls|stls)\r?\n")),
    ("HTTP CONNECT", re.compile(rb"(?s)\ACONNECT [^\r\n]+ HTTP/1\.[01]\r\n.*?\r\n\r\n")),
)


#: the first bytes of a handshake record holding the start of a ClientHello (RFC 8446
#: §5.1: type 22, version 03 0x, 2-byte length, then handshake type 1)
_HELLO_RECORD = re.compile(rb"\x16\x03[\x00-\x04]..\x01", re.S)


def tls_start(client_bytes: bytes) -> tuple[int, str]:
    """Where the TLS bytes of a client's stream begin, and after what: (0, "") for TLS
    from the first byte; after a STARTTLS / STLS command, an HTTP CONNECT request, a
    SOCKS handshake or any other preamble, the first thing in the first 64 KiB that looks
    like a ClientHello record (the codec then has to parse it, so a look-alike inside
    other data is not taken for one)."""
    if client_bytes[:1] == b"\x16":
        return 0, ""
    return find_tls_start(client_bytes) or (0, "")


def find_tls_start(client_bytes: bytes) -> tuple[int, str] | None:
    """Like :func:`tls_start`, but None when nothing in the first 64 KiB looks like the
    start of a ClientHello record (so that "TLS at byte 0" and "no TLS" differ)."""
    head = client_bytes[:1 << 16]
    if _HELLO_RECORD.match(head):
        return 0, ""
    for how, pattern in _UPGRADES:
        m = pattern.search(head)
        if m:
            found = _HELLO_RECORD.search(head, m.end())
            if found:
                return found.start(), how
    found = _HELLO_RECORD.search(head)
    if found:
        how = {4: "SOCKS4", 5: "SOCKS5"}.get(head[0], f"{found.start()} bytes of another protocol")
        return found.start(), how
    return None


def hellos_in_connection(conn: Connection) -> HelloScan:
    """The ClientHellos a connection's client sent; when the roles were guessed (no SYN in
    the capture) and the "server" is the one sending a ClientHello, the roles are
    swapped.  Only bytes before the first gap are read."""
    scan, direction = _scan_direction(conn, CLIENT)
    if not scan.hellos and conn.roles == "guessed":
        other, _ = _scan_direction(conn, SERVER)
        if other.hellos:
            conn = conn.swapped()
            scan = other
    info = ConnectionInfo(conn.index, str(conn.client), str(conn.server), conn.roles,
                          conn.first_time)
    for h in scan.hellos:
        h.connection = info
    return scan


def _scan_direction(conn: Connection, direction: str) -> tuple[HelloScan, str]:
    data = conn.data(direction)
    gaps = conn.gaps_in(direction)
    end = gaps[0].at if gaps else len(data)
    start, how = tls_start(data[:end])
    scan = scan_client_hellos(data[start:end], base=start)
    for h in scan.hellos:
        h.upgraded_from = how
    if gaps and not scan.hellos and scan.problem is None:
        scan.problem = f"not read past a gap: {gaps[0].describe()}"
    return scan, direction


# --------------------------------------------------------------------------- files

@dataclass
class HelloFile:
    """What :func:`hellos_in_file` found."""

    path: str
    #: "capture" or "client_hello"
    kind: str
    #: "pcap", "pcapng"; or for a ClientHello "record", "handshake", "hex record",
    #: "hex handshake"
    format: str
    hellos: list[FoundHello] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: TCP connections in the capture (0 for a ClientHello file)
    connections: int = 0
    packets: int = 0


#: a raw ClientHello file larger than this is not one (a ClientHello is < 64 KiB; with
#: post-quantum key shares and padding, a few KiB)
_MAX_HELLO_FILE = 1 << 20


def hellos_in_file(path: str | os.PathLike) -> HelloFile:
    """Every ClientHello in ``path``: a pcap/pcapng capture (every TCP connection, any
    port) or one ClientHello (a TLS record or a bare handshake message, binary or hex).

    Raises :class:`~tlslab.capture.files.CaptureError` for a file that cannot be read (or
    a capture that cannot be opened) and :class:`NotAClientHello` for anything else."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise CaptureError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{name}: is a directory") from None
    except OSError as e:
        raise CaptureError(f"{name}: cannot read: {e.strerror or e}") from None
    fmt = sniff_format(head)
    if fmt is not None:
        return _hellos_in_capture(name, fmt)
    return _hello_in_bytes_file(name)


def _hellos_in_capture(name: str, fmt: str) -> HelloFile:
    # a ClientHello is at the start of a stream: 1 MiB per direction is plenty
    cap = open_capture(name, max_stream_bytes=1 << 20)
    out = HelloFile(name, "capture", fmt)
    try:
        for conn in cap.connections():
            out.connections += 1
            scan = hellos_in_connection(conn)
            out.hellos.extend(scan.hellos)
            # a connection that is not TLS at all (HTTP, SSH, ...) is not a problem here
            if scan.problem and (scan.hellos or conn.first_bytes(CLIENT, 1) == b"\x16"):
                out.problems.append(f"connection {conn.index} ({conn.client} -> {conn.server}): "
                                    f"{scan.problem}")
    finally:
        cap.file.close()
    out.hellos.sort(key=lambda h: (h.connection.index, h.offset))
    out.problems = cap.problems + out.problems
    out.packets = cap.stats.get("packets", 0)
    return out


def _hello_in_bytes_file(name: str) -> HelloFile:
    try:
        with open(name, "rb") as f:
            data = f.read(_MAX_HELLO_FILE + 1)
    except OSError as e:
        raise CaptureError(f"{name}: cannot read: {e.strerror or e}") from None
    if not data:
        raise NotAClientHello(f"{name}: the file is empty: expected a capture (pcap or pcapng) "
                              "or a ClientHello")
    if len(data) > _MAX_HELLO_FILE:
        raise NotAClientHello(f"{name}: neither a capture (no pcap or pcapng header) nor a "
                              "ClientHello (larger than 1 MiB)")
    hex_form = ""
    if data[0] in (0x14, 0x15, 0x17) and data[1:2] == b"\x03":
        raise NotAClientHello(f"{name}: a TLS {name_of(ContentType, data[0])} record, not a "
                              "handshake record: no ClientHello in it")
    if data[0] not in (0x16, 0x01):
        decoded = _from_hex_text(data)
        if decoded is None:
            raise NotAClientHello(
                f"{name}: neither a capture (no pcap or pcapng header) nor a ClientHello "
                f"(a TLS record starts with 16 03, a handshake message with 01; "
                f"this file starts with {_show_start(data)})")
        data, hex_form = decoded, "hex "
        if not data or data[0] not in (0x16, 0x01):
            raise NotAClientHello(
                f"{name}: hex text, but not of a ClientHello (a TLS record starts with 16 03, "
                f"a handshake message with 01; this starts with {data[:8].hex(' ') or 'nothing'})")
    if data[0] == 0x16:
        scan = scan_client_hellos(data)
        if not scan.hellos:
            raise NotAClientHello(f"{name}: a TLS record, but no ClientHello in it: "
                                  f"{scan.problem or 'no handshake message'}")
        out = HelloFile(name, "client_hello", hex_form + "record", scan.hellos[:1])
        if scan.problem:
            out.problems.append(scan.problem)
        return out
    # a bare handshake message: type 1, 3-byte length, body
    if len(data) < 4:
        raise NotAClientHello(f"{name}: a handshake message header needs 4 bytes, "
                              f"the file has {len(data)}")
    length = int.from_bytes(data[1:4], "big")
    if len(data) < 4 + length:
        raise NotAClientHello(f"{name}: the ClientHello is cut short: its header announces "
                              f"{length} bytes, {len(data) - 4} follow")
    try:
        hello = ClientHello.parse(data[:4 + length])
    except TLSError as e:
        raise NotAClientHello(f"{name}: a ClientHello that does not parse: "
                              f"{_first_words(str(e))}") from None
    out = HelloFile(name, "client_hello", hex_form + "handshake", [FoundHello(hello, 0, 0)])
    if len(data) > 4 + length:
        out.problems.append(f"{len(data) - 4 - length} bytes after the ClientHello were ignored")
    return out


_HEX_JUNK = re.compile(r"0x|\\x|[\s:,]")


def _from_hex_text(data: bytes) -> bytes | None:
    """Hex text (whitespace, ``:`` / ``,`` separators, ``0x`` / ``\\x`` prefixes allowed)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    digits = _HEX_JUNK.sub("", text)
    if not digits or len(digits) % 2 or any(c not in string.hexdigits for c in digits):
        return None
    return bytes.fromhex(digits)


def _show_start(data: bytes) -> str:
    shown = data[:8].hex(" ")
    printable = data[:24].decode("ascii", "replace")
    if all(c.isprintable() or c in "\r\n\t" for c in printable):
        text = " ".join(printable.split())[:24]
        return f"{shown} (text: {text!r})"
    return shown


def _first_words(text: str) -> str:
    return " ".join(text.split())
