"""Handshake messages (RFC 8446 §4; TLS 1.2 hello forms from RFC 5246 §7.4.1).

Every message is a :class:`Message`: ``raw`` is the complete handshake message
(4-byte header included, exactly what goes into the transcript) and
:attr:`~tlslab.proto.codec.Struct.spans` gives the offset and length of every
field within it.
"""
from __future__ import annotations

from typing import Any, ClassVar

from .codec import Fixed, Opaque, Reader, Rest, Struct, StructKind, UInt, Vector
from .errors import DecodeError, UnexpectedMessage
from .extensions import (CH, CR, CT, EE, HRR, NST, SH, Extension, ExtensionsKind)
from .names import CipherSuite, HandshakeType, ProtocolVersion, SignatureScheme, name_of
from .trace import FieldSpan

HT = HandshakeType

#: RFC 8446 §4.1.3: ServerHello.random of a HelloRetryRequest is SHA-256("HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
#: RFC 8446 §4.1.3 downgrade sentinels in the last 8 bytes of ServerHello.random.
DOWNGRADE_TLS12 = bytes.fromhex("444f574e47524401")
DOWNGRADE_TLS11 = bytes.fromhex("444f574e47524400")

#: RFC 8446 §4.4.2 / §5.1: no handshake message we accept is larger than this.
MAX_HANDSHAKE_MESSAGE = 1 << 18
#: handshake types whose body has a small fixed size, and the most it can be: Finished is
#: Hash.length (RFC 8446 §4.4.4; 12 bytes in TLS 1.2, RFC 5246 §7.4.9), KeyUpdate one byte
#: (§4.6.3), EndOfEarlyData, HelloRequest and ServerHelloDone empty (§4.5, RFC 5246 §7.4.1.1,
#: §7.4.5).  A longer announcement is malformed as soon as its header is read.
MAX_FIXED_BODY = {20: ("Finished", 64), 24: ("KeyUpdate", 1), 5: ("EndOfEarlyData", 0),
                  0: ("HelloRequest", 0), 14: ("ServerHelloDone", 0)}


class Message(Struct):
    """A handshake message: ``msg_type`` (1 byte), ``length`` (3 bytes), then the body fields."""

    MSG_TYPE: ClassVar[int] = -1
    CONTEXT: ClassVar[str | None] = None  # extension context for bodies
    #: (MSG_TYPE, MSG_TYPE << 24): the header to which build() adds the body length,
    #: for the MSG_TYPE it was computed from (None: not a valid type)
    _HEAD: ClassVar[tuple] = (None, None)

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        t = cls.MSG_TYPE
        cls._HEAD = (t, int(t) << 24 if isinstance(t, int) and 0 <= t < 256 else None)

    @property
    def msg_type(self) -> int:
        return self.MSG_TYPE

    @property
    def name(self) -> str:
        return type(self).__name__

    @classmethod
    def parse(cls, data: bytes, ctx: Any = None, record: bool = False) -> "Message":
        """Parse one complete handshake message (header included, RFC 8446 §4)."""
        end = len(data)
        if end < 4:
            raise DecodeError(f"truncated handshake message header ({end} bytes)")
        if data[0] != cls.MSG_TYPE:
            raise DecodeError(f"not a {cls.__name__}: type {data[0]}")
        length = data[1] << 16 | data[2] << 8 | data[3]
        if length != end - 4:
            raise DecodeError(f"{cls.__name__} length {length} does not match {end - 4} body bytes")
        if record:
            r = Reader(data, pos=4, record=True, ctx=cls.CONTEXT)
            obj = cls._read_fields(r)
            pos = r.pos
        else:
            obj, pos = cls._cread(data, 4, end, cls.CONTEXT)
        if pos != end:
            raise DecodeError(f"{end - pos} unexpected trailing bytes in {cls.__name__}")
        obj.raw = bytes(data)
        obj._ctx = ctx
        if record:
            header = [FieldSpan("msg_type", 0, 1, name_of(HandshakeType, data[0])),
                      FieldSpan("length", 1, 3, length)]
            obj._spans = header + obj._spans
        return obj

    def build(self) -> bytes:
        """The complete message: type, 3-byte length, body (RFC 8446 §4)."""
        body = self._encode()
        n = len(body)
        t, head = self._HEAD
        if head is None or n > 0xFFFFFF or t is not self.MSG_TYPE:
            return bytes([self.MSG_TYPE]) + n.to_bytes(3, "big") + bytes(body)  # and its errors
        return (head | n).to_bytes(4, "big") + body

    def encode(self) -> bytes:
        """Build, and remember the result as ``raw`` (what the transcript will hash)."""
        self.raw = self.build()
        return self.raw

    def ext(self, ext_type: int) -> Extension | None:
        exts = self.__dict__.get("extensions")
        if not exts:
            return None
        for e in exts:
            if e.type == ext_type:
                return e
        return None

    def ext_value(self, ext_type: int) -> Any:
        e = self.ext(ext_type)
        return e.value if e is not None else None


class ClientHello(Message):
    """RFC 8446 §4.1.2 (also the TLS 1.2 form, whose extensions may be absent)."""

    MSG_TYPE = HT.client_hello
    CONTEXT = CH
    FIELDS = (
        ("legacy_version", UInt(2, ProtocolVersion)),
        ("random", Fixed(32)),
        ("legacy_session_id", Opaque(1, max=32)),
        ("cipher_suites", Vector(2, UInt(2, CipherSuite), min=2, max=0xFFFE)),
        ("legacy_compression_methods", Opaque(1, min=1)),
        ("extensions", ExtensionsKind()),
    )
    OPTIONAL_TAIL = ("extensions",)


class ServerHello(Message):
    """RFC 8446 §4.1.3; a HelloRetryRequest is a ServerHello with :data:`HRR_RANDOM`."""

    MSG_TYPE = HT.server_hello
    CONTEXT = SH
    FIELDS = (
        ("legacy_version", UInt(2, ProtocolVersion)),
        ("random", Fixed(32)),
        ("legacy_session_id_echo", Opaque(1, max=32)),
        ("cipher_suite", UInt(2, CipherSuite)),
        ("legacy_compression_method", UInt(1)),
        ("extensions", ExtensionsKind()),
    )
    OPTIONAL_TAIL = ("extensions",)
    HOOKED_FIELDS = ("random",)

    def _after_field(self, name: str, r: Reader) -> None:
        if name == "random" and self.random == HRR_RANDOM:
            r.ctx = HRR  # extension bodies of a HelloRetryRequest differ (§4.2.8)

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HRR_RANDOM

    @property
    def name(self) -> str:
        return "HelloRetryRequest" if self.is_hello_retry_request else "ServerHello"


class EndOfEarlyData(Message):
    """RFC 8446 §4.5."""

    MSG_TYPE = HT.end_of_early_data
    FIELDS = ()


class EncryptedExtensions(Message):
    """RFC 8446 §4.3.1."""

    MSG_TYPE = HT.encrypted_extensions
    CONTEXT = EE
    FIELDS = (("extensions", ExtensionsKind()),)


class CertificateRequest(Message):
    """RFC 8446 §4.3.2."""

    MSG_TYPE = HT.certificate_request
    CONTEXT = CR
    FIELDS = (("certificate_request_context", Opaque(1)), ("extensions", ExtensionsKind()))


class CertificateEntry(Struct):
    """RFC 8446 §4.4.2 (X.509 certificate type)."""

    FIELDS = (("cert_data", Opaque(3, min=1)), ("extensions", ExtensionsKind()))


def certificate_entries(chain: list) -> list["CertificateEntry"]:
    """CertificateEntry list for a chain of x509 certificates, leaf first, no extensions."""
    from cryptography.hazmat.primitives.serialization import Encoding
    return [CertificateEntry(cert_data=c.public_bytes(Encoding.DER), extensions=[]) for c in chain]


def truncated_for_binders(raw: bytes, binders: list[bytes]) -> bytes:
    """RFC 8446 §4.2.11.2: a ClientHello up to, not including, its binders list (which is last)."""
    return raw[:len(raw) - (2 + sum(1 + len(b) for b in binders))]


class Certificate(Message):
    """RFC 8446 §4.4.2."""

    MSG_TYPE = HT.certificate
    CONTEXT = CT
    FIELDS = (("certificate_request_context", Opaque(1)),
              ("certificate_list", Vector(3, StructKind(CertificateEntry))))


class CertificateVerify(Message):
    """RFC 8446 §4.4.3."""

    MSG_TYPE = HT.certificate_verify
    FIELDS = (("algorithm", UInt(2, SignatureScheme)), ("signature", Opaque(2)))


class Finished(Message):
    """RFC 8446 §4.4.4 (the verify_data length is the hash length, checked by the state machine)."""

    MSG_TYPE = HT.finished
    FIELDS = (("verify_data", Rest()),)


class NewSessionTicket(Message):
    """RFC 8446 §4.6.1."""

    MSG_TYPE = HT.new_session_ticket
    CONTEXT = NST
    FIELDS = (("ticket_lifetime", UInt(4)), ("ticket_age_add", UInt(4)),
              ("ticket_nonce", Opaque(1)), ("ticket", Opaque(2, min=1)),
              ("extensions", ExtensionsKind()))


class KeyUpdate(Message):
    """RFC 8446 §4.6.3."""

    MSG_TYPE = HT.key_update
    FIELDS = (("request_update", UInt(1)),)


class MessageHash(Message):
    """RFC 8446 §4.4.1: the synthetic message replacing ClientHello1 after a HelloRetryRequest."""

    MSG_TYPE = HT.message_hash
    FIELDS = (("hash", Rest()),)


MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.MSG_TYPE: cls for cls in (ClientHello, ServerHello, EndOfEarlyData, EncryptedExtensions,
                                  CertificateRequest, Certificate, CertificateVerify, Finished,
                                  NewSessionTicket, KeyUpdate, MessageHash)
}


def parse_message(data: bytes, record: bool = False) -> Message:
    """Parse one complete handshake message of any known type.

    An unknown or TLS 1.2-only type is an ``unexpected_message`` (RFC 8446 §4: a
    message that is not allowed in the current state).
    """
    if len(data) < 4:
        raise DecodeError("truncated handshake message header")
    cls = MESSAGE_CLASSES.get(data[0])
    if cls is None or cls is MessageHash:
        raise UnexpectedMessage(f"unexpected handshake message type {name_of(HandshakeType, data[0])}")
    return cls.parse(data, record=record)


class HandshakeBuffer:
    """Reassembles handshake messages from record fragments (RFC 8446 §5.1).

    Messages may span records and records may hold several messages.  The total
    buffered is bounded by :data:`MAX_HANDSHAKE_MESSAGE` so a peer announcing a
    huge length cannot make us buffer without limit.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def add(self, data: bytes) -> None:
        self._buf += data

    def pop_message(self) -> bytes | None:
        """The next complete message, or None.  One at a time, so that a key change
        made by one message can see what is still buffered behind it (§5.1)."""
        buf = self._buf
        if len(buf) < 4:
            return None
        length = buf[1] << 16 | buf[2] << 8 | buf[3]
        if length > MAX_HANDSHAKE_MESSAGE:
            raise DecodeError(f"handshake message of {length} bytes exceeds the "
                              f"{MAX_HANDSHAKE_MESSAGE}-byte limit")
        n = 4 + length
        if len(buf) <= n:
            if len(buf) < n:
                return None
            out = bytes(buf)  # the usual case: the buffer holds exactly this message
            buf.clear()
            return out
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def announced(self) -> tuple[int, int] | None:
        """(type, body length) of the message being reassembled, once its header is in."""
        buf = self._buf
        if len(buf) < 4:
            return None
        return buf[0], buf[1] << 16 | buf[2] << 8 | buf[3]

    def pop_messages(self) -> list[bytes]:
        """Every complete message buffered (for tools; the engine pops one at a time)."""
        out = []
        while (m := self.pop_message()) is not None:
            out.append(m)
        return out
