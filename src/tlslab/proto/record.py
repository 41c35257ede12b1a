"""TLS record framing (RFC 8446 §5.1, §5.2).

This module only splits bytes into records and checks the header; protection
(AEAD) lives in :mod:`tlslab.proto.protection`.
"""
from __future__ import annotations

from .codec import Struct, UInt
from .errors import DecodeError, RecordOverflow, UnexpectedMessage
from .names import ContentType, ProtocolVersion

MAX_PLAINTEXT = 1 << 14
#: RFC 8446 §5.2: TLSCiphertext.length MUST NOT exceed 2^14 + 256.
MAX_CIPHERTEXT = MAX_PLAINTEXT + 256
MAX_CIPHERTEXT12 = MAX_PLAINTEXT + 2048
HEADER_LEN = 5
KNOWN_CONTENT_TYPES = frozenset({20, 21, 22, 23})
#: fragments longer than this are copied out of the buffer through a memoryview (measured)
_VIEW_THRESHOLD = 4096


class RecordHeader(Struct):
    """RFC 8446 §5.1 TLSPlaintext / §5.2 TLSCiphertext header."""

    FIELDS = (("type", UInt(1, ContentType)), ("legacy_record_version", UInt(2, ProtocolVersion)),
              ("length", UInt(2)))


class RecordReader:
    """Accumulates received bytes and yields complete ``(header, fragment)`` pairs.

    The header is checked as soon as its 5 bytes are present, so a bogus length
    is rejected before we wait for (and buffer) the bytes it announces.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.seen_first = False
        #: content types accepted beyond the four of RFC 5246 §6.2.1 (the lab's heartbeat, 24)
        self.extra_types: frozenset[int] = frozenset()

    def add(self, data: bytes) -> None:
        self._buf += data

    def take_whole(self, data: bytes) -> bytes | None:
        """Fast path: if nothing is buffered and ``data`` is exactly one record whose header
        is plausible, return it without copying it through the buffer (bulk transfer)."""
        if self._buf or len(data) < HEADER_LEN or data[0] != 23 or data[1] != 3:
            return None
        if ((data[3] << 8) | data[4]) + HEADER_LEN != len(data):
            return None
        return data

    def __len__(self) -> int:
        return len(self._buf)

    def next_record(self, protected: bool, tls12: bool = False) -> tuple[bytes, bytes] | None:
        buf = self._buf
        if len(buf) < HEADER_LEN:
            return None
        ctype = buf[0]
        if ctype not in KNOWN_CONTENT_TYPES and ctype not in self.extra_types:
            if not self.seen_first:
                raise DecodeError(f"not a TLS record: first bytes {bytes(buf[:5]).hex()}"
                                  + _guess_protocol(bytes(buf[:16])))
            raise UnexpectedMessage(f"record of unknown content type {ctype}")
        if buf[1] != 3:
            raise DecodeError(f"record version 0x{buf[1]:02x}{buf[2]:02x} is not TLS")
        length = (buf[3] << 8) | buf[4]
        # RFC 5246 §6.2.3 allows 2^14 + 2048 for TLS 1.2 ciphertext, RFC 8446 §5.2 2^14 + 256
        limit = (MAX_CIPHERTEXT12 if tls12 else MAX_CIPHERTEXT) if protected else MAX_PLAINTEXT
        if length > limit:
            raise RecordOverflow(f"record length {length} exceeds the {limit}-byte limit")
        end = HEADER_LEN + length
        if len(buf) < end:
            return None
        if length > _VIEW_THRESHOLD:
            # a bytearray slice is a copy, and bytes() of it a second one: through a view
            # the fragment is copied once (0.2 µs less per 16 KiB record)
            with memoryview(buf) as view:
                header = bytes(view[:HEADER_LEN])
                fragment = bytes(view[HEADER_LEN:end])
        else:  # small records: creating the view costs more than the copy it saves
            header = bytes(buf[:HEADER_LEN])
            fragment = bytes(buf[HEADER_LEN:end])
        del buf[:end]  # O(1): CPython moves the start of a bytearray when deleting its head
        self.seen_first = True
        return header, fragment


def plaintext_record(content_type: int, fragment: bytes, version: int = 0x0303) -> bytes:
    """A TLSPlaintext record (unprotected)."""
    return bytes((content_type, version >> 8, version & 0xFF,
                  len(fragment) >> 8, len(fragment) & 0xFF)) + fragment


def _guess_protocol(first: bytes) -> str:
    """A hint for the most common non-TLS answers (an HTTP server on a TLS port, SSH, ...)."""
    if first[:5] in (b"HTTP/", b"<html", b"<!DOC"):
        return " (the peer answered in plain HTTP, not TLS)"
    if first.startswith(b"SSH-"):
        return " (the peer is an SSH server)"
    if first[:4] in (b"220 ", b"220-"):
        return " (the peer sent an SMTP/FTP greeting; it may need STARTTLS)"
    if first[:4] in (b"GET ", b"POST", b"HEAD"):
        return " (the peer sent a plain HTTP request)"
    return ""
