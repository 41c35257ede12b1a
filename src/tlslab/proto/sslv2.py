"""SSL 2.0 CLIENT-HELLO and SERVER-HELLO (draft-hickman-netscape-ssl-00, "The SSL Protocol"
1995, §2.6), only so that a scan can ask whether a server still speaks SSL 2.0, which RFC
6176 prohibits.  Nothing here negotiates SSL 2.0.

SSL 2.0 puts all length fields first and the variable parts after them, so the fixed part is
one codec structure and the variable parts are cut from its body by those lengths.
"""
from __future__ import annotations

from dataclasses import dataclass

from .codec import Rest, Struct, UInt
from .errors import DecodeError

MSG_ERROR, MSG_CLIENT_HELLO, MSG_SERVER_HELLO = 0, 1, 4
SSL2_VERSION = 0x0002

#: the SSL 2.0 cipher kinds (§C.1 of the draft): 3-byte codes
CIPHER_KINDS = {
    0x010080: "SSL_CK_RC4_128_WITH_MD5",
    0x020080: "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
    0x030080: "SSL_CK_RC2_128_CBC_WITH_MD5",
    0x040080: "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
    0x050080: "SSL_CK_IDEA_128_CBC_WITH_MD5",
    0x060040: "SSL_CK_DES_64_CBC_WITH_MD5",
    0x0700C0: "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
}


class ClientHelloV2(Struct):
    """§2.6 CLIENT-HELLO: lengths first, then cipher specs, session id and challenge."""

    FIELDS = (("msg_type", UInt(1)), ("version", UInt(2)), ("cipher_specs_length", UInt(2)),
              ("session_id_length", UInt(2)), ("challenge_length", UInt(2)), ("body", Rest()))


class ServerHelloV2(Struct):
    """§2.6 SERVER-HELLO: lengths first, then certificate, cipher specs and connection id."""

    FIELDS = (("msg_type", UInt(1)), ("session_id_hit", UInt(1)), ("certificate_type", UInt(1)),
              ("server_version", UInt(2)), ("certificate_length", UInt(2)),
              ("cipher_specs_length", UInt(2)), ("connection_id_length", UInt(2)),
              ("body", Rest()))


@dataclass
class ServerHelloInfo:
    version: int
    certificate: bytes
    cipher_specs: list[int]
    connection_id: bytes


def build_client_hello_v2(kinds: list[int], challenge: bytes) -> bytes:
    """A CLIENT-HELLO record (2-byte header, §1.2) offering ``kinds``."""
    if not 16 <= len(challenge) <= 32:
        raise ValueError("the SSL 2.0 challenge is 16 to 32 bytes")
    specs = b"".join(k.to_bytes(3, "big") for k in kinds)
    body = ClientHelloV2(msg_type=MSG_CLIENT_HELLO, version=SSL2_VERSION,
                         cipher_specs_length=len(specs), session_id_length=0,
                         challenge_length=len(challenge), body=specs + challenge).build()
    return (0x8000 | len(body)).to_bytes(2, "big") + body


def parse_server_hello_v2(data: bytes) -> ServerHelloInfo | None:
    """The SERVER-HELLO in ``data`` (a record with a 2-byte header); None if incomplete.

    DecodeError for anything else (an SSL 2.0 ERROR message, inconsistent lengths)."""
    if len(data) < 2:
        return None
    if not data[0] & 0x80:
        raise DecodeError("not an SSL 2.0 record with a 2-byte header")
    length = ((data[0] & 0x7F) << 8) | data[1]
    if len(data) < 2 + length:
        return None
    record = data[2:2 + length]
    if record[:1] == bytes([MSG_ERROR]):
        code = int.from_bytes(record[1:3], "big") if len(record) >= 3 else -1
        raise DecodeError(f"the server answered with SSL 2.0 ERROR {code}")
    msg = ServerHelloV2.parse(record)
    if msg.msg_type != MSG_SERVER_HELLO:
        raise DecodeError(f"SSL 2.0 message type {msg.msg_type}, expected SERVER-HELLO")
    body = msg.body
    c, s, i = msg.certificate_length, msg.cipher_specs_length, msg.connection_id_length
    if c + s + i != len(body) or s % 3:
        raise DecodeError("SSL 2.0 SERVER-HELLO lengths do not add up")
    specs = [int.from_bytes(body[c + k:c + k + 3], "big") for k in range(0, s, 3)]
    return ServerHelloInfo(msg.server_version, bytes(body[:c]), specs, bytes(body[c + s:]))
