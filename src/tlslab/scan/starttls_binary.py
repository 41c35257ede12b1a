"""The binary upgrades: LDAP's StartTLS, PostgreSQL's SSLRequest, RDP's X.224 negotiation
(see :mod:`.starttls`).  Each message is a handful of fixed bytes, built and read here by
hand and documented field by field; every length read from the server is bounded.
"""
from __future__ import annotations

import struct

from .starttls_io import Dialogue, StartTLSError, StartTLSInfo, show

# ------------------------------------------------------------------ LDAP

#: RFC 4511 §4.14.1: the StartTLS extended operation's name
LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
#: RFC 4511 §4.12 ExtendedRequest in an LDAPMessage (§4.1.1), BER as §5.1 restricts it
#: (definite lengths, short form here):
#:   30 1d            LDAPMessage SEQUENCE, 29 bytes
#:     02 01 01         messageID INTEGER 1
#:     77 18            extendedReq [APPLICATION 23] constructed, 24 bytes
#:       80 16 <OID>      requestName [0] LDAPOID, 22 bytes; no requestValue
LDAP_STARTTLS_REQUEST = (b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + LDAP_STARTTLS_OID)
_LDAP_MAX = 16384
#: RFC 4511 §4.1.9 and Appendix A: the result codes a StartTLS answer plausibly carries
LDAP_RESULTS = {0: "success", 1: "operationsError", 2: "protocolError",
                7: "authMethodNotSupported", 8: "strongerAuthRequired",
                12: "unavailableCriticalExtension", 13: "confidentialityRequired",
                50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
                53: "unwillingToPerform", 80: "other"}


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the BER element at ``pos`` (RFC 4511 §5.1:
    definite lengths only; LDAP uses single-byte tags)."""
    if pos + 2 > len(data):
        raise StartTLSError("a truncated LDAP answer")
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        start, length = pos + 2, first
    else:
        n = first & 0x7F
        if n == 0 or n > 3 or pos + 2 + n > len(data):
            raise StartTLSError("an LDAP answer with a bad BER length")
        start, length = pos + 2 + n, int.from_bytes(data[pos + 2:pos + 2 + n], "big")
    if start + length > len(data):
        raise StartTLSError("a truncated LDAP answer")
    return tag, start, start + length


async def _ldap_message(d: Dialogue) -> bytes:
    what = "the answer to StartTLS"
    head = await d.exactly(2, what)
    if head[0] != 0x30:
        raise StartTLSError(f"not an LDAP answer (first bytes {head.hex(' ')})")
    extra = head[1] & 0x7F if head[1] & 0x80 else 0
    if head[1] == 0x80 or extra > 3:
        raise StartTLSError("an LDAP answer with a bad BER length")
    more = await d.exactly(extra, what) if extra else b""
    length = int.from_bytes(more, "big") if extra else head[1]
    if length > _LDAP_MAX:
        raise StartTLSError(f"an LDAP answer of {length} bytes (more than {_LDAP_MAX})")
    return head + more + await d.exactly(length, what)


async def ldap(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """RFC 4511 §4.14: send the StartTLS ExtendedRequest; the ExtendedResponse (§4.12)
    carries an LDAPResult whose resultCode 0 means go."""
    await d.send(LDAP_STARTTLS_REQUEST, "the StartTLS request")
    msg = await _ldap_message(d)
    _, body, _ = _tlv(msg, 0)
    tag, id_start, id_end = _tlv(msg, body)
    if tag != 0x02:
        raise StartTLSError("an LDAP answer without a messageID")
    message_id = int.from_bytes(msg[id_start:id_end], "big", signed=True)
    op, op_start, op_end = _tlv(msg, id_end)
    if op != 0x78:  # extendedResp [APPLICATION 24] constructed
        raise StartTLSError(f"an unexpected LDAP answer to StartTLS (operation tag 0x{op:02x})")
    fields = []
    pos = op_start
    while pos < op_end and len(fields) < 3:  # resultCode, matchedDN, diagnosticMessage
        t, s, e = _tlv(msg, pos)
        fields.append((t, msg[s:e]))
        pos = e
    if len(fields) < 1 or fields[0][0] != 0x0A:
        raise StartTLSError("an LDAP ExtendedResponse without a resultCode")
    code = int.from_bytes(fields[0][1][:4], "big")
    diag = show(fields[2][1], 120) if len(fields) > 2 else ""
    said = f"{LDAP_RESULTS.get(code, 'resultCode')} ({code})" + (f": {diag}" if diag else "")
    if message_id == 0:
        # §4.4.1: an unsolicited Notice of Disconnection instead of our answer
        raise StartTLSError(f"the LDAP server is closing the connection: {said}")
    if message_id != 1:
        raise StartTLSError(f"an LDAP answer to another request (messageID {message_id})")
    if code != 0:
        raise StartTLSError(f"the LDAP server refused StartTLS: {said}")
    return d.ready(StartTLSInfo("ldap", "", []))


# ------------------------------------------------------------------ PostgreSQL

#: PostgreSQL Frontend/Backend Protocol, "SSLRequest" message: Int32 length 8, then the
#: request code 80877103 (1234 in the upper 16 bits, 5679 in the lower)
PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


async def postgres(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """PostgreSQL protocol, "SSL Session Encryption": after the SSLRequest the server
    answers one byte, ``S`` (go) or ``N`` (no); a server that does not know the request
    answers with an ErrorResponse (``E``)."""
    await d.send(PG_SSL_REQUEST, "the SSLRequest")
    answer = await d.exactly(1, "the answer to the SSLRequest")
    if answer == b"S":
        return d.ready(StartTLSInfo("postgres", "", []))
    if answer == b"N":
        raise StartTLSError("PostgreSQL refused SSL (answered 'N')")
    if answer == b"E":
        raise StartTLSError(f"PostgreSQL answered the SSLRequest with an error: "
                            f"{await _pg_error(d)}")
    raise StartTLSError(f"not a PostgreSQL answer to the SSLRequest (first byte "
                        f"0x{answer[0]:02x})")


async def _pg_error(d: Dialogue) -> str:
    """ErrorResponse: Int32 length, then fields (a type byte and a C string) ending in a
    zero byte; the 'M' field is the human message, 'S' its severity."""
    try:
        length = struct.unpack("!i", await d.exactly(4, "the error message"))[0]
        if not 4 < length <= 8192:
            return "(unreadable)"
        body = await d.exactly(length - 4, "the error message")
    except StartTLSError:
        return "(unreadable)"
    fields = {f[:1]: f[1:] for f in body.split(b"\0") if f}
    return show(b": ".join(v for k, v in ((b"S", fields.get(b"S")), (b"M", fields.get(b"M")))
                           if v) or b"(no message)", 160)


# ------------------------------------------------------------------ RDP

PROTOCOL_SSL, PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX = 0x1, 0x2, 0x8
#: [MS-RDPBCGR] 2.2.1.1 Client X.224 Connection Request PDU, without the optional cookie:
#:   03 00 00 13        TPKT header (T.123 §8): version 3, reserved, length 19
#:   0e e0 00 00 00 00 00   X.224 CR TPDU (X.224 §13.3): LI 14, CR code, DST-REF 0,
#:                          SRC-REF 0, class 0
#:   01 00 08 00 03 00 00 00   RDP_NEG_REQ (2.2.1.1.1): type 1, flags 0, length 8,
#:                          requestedProtocols PROTOCOL_SSL | PROTOCOL_HYBRID (LE)
RDP_CONNECTION_REQUEST = (bytes.fromhex("03000013" "0ee00000000000") +
                          struct.pack("<BBHI", 1, 0, 8, PROTOCOL_SSL | PROTOCOL_HYBRID))
#: 2.2.1.2.1 RDP_NEG_RSP selectedProtocol values
RDP_PROTOCOLS = {0x0: "PROTOCOL_RDP", 0x1: "PROTOCOL_SSL", 0x2: "PROTOCOL_HYBRID",
                 0x4: "PROTOCOL_RDSTLS", 0x8: "PROTOCOL_HYBRID_EX", 0x10: "PROTOCOL_RDSAAD"}
#: 2.2.1.2.1 RDP_NEG_RSP flags
RDP_FLAGS = {0x01: "EXTENDED_CLIENT_DATA_SUPPORTED", 0x02: "DYNVC_GFX_PROTOCOL_SUPPORTED",
             0x08: "RESTRICTED_ADMIN_MODE_SUPPORTED",
             0x10: "REDIRECTED_AUTHENTICATION_MODE_SUPPORTED"}
#: 2.2.1.2.2 RDP_NEG_FAILURE failureCode values
RDP_FAILURES = {1: "SSL_REQUIRED_BY_SERVER", 2: "SSL_NOT_ALLOWED_BY_SERVER",
                3: "SSL_CERT_NOT_ON_SERVER", 4: "INCONSISTENT_FLAGS",
                5: "HYBRID_REQUIRED_BY_SERVER", 6: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER"}


async def rdp(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """[MS-RDPBCGR] 1.3.1.1 and 2.2.1.1-2.2.1.2: X.224 Connection Request with RDP_NEG_REQ;
    the Connection Confirm's RDP_NEG_RSP must select TLS (PROTOCOL_SSL) or CredSSP
    (PROTOCOL_HYBRID, which starts with a TLS handshake, 5.4.5.2)."""
    await d.send(RDP_CONNECTION_REQUEST, "the X.224 Connection Request")
    what = "an X.224 Connection Confirm"
    tpkt = await d.exactly(4, what)
    length = int.from_bytes(tpkt[2:4], "big")
    if tpkt[0] != 3 or not 11 <= length <= 512:
        raise StartTLSError(f"not an RDP answer (first bytes {tpkt.hex(' ')})")
    x224 = await d.exactly(length - 4, what)
    if x224[1] & 0xF0 != 0xD0:  # CC TPDU code (X.224 §13.4)
        raise StartTLSError(f"the RDP server did not confirm the connection (X.224 code "
                            f"0x{x224[1]:02x})")
    neg = x224[7:15]
    if len(neg) < 8:
        raise StartTLSError("the RDP server does not negotiate security: it offers only "
                            "Standard RDP Security, no TLS")
    kind, flags, _, value = struct.unpack("<BBHI", neg)
    if kind == 3:
        name = RDP_FAILURES.get(value, "unknown failure")
        raise StartTLSError(f"the RDP server refused TLS and CredSSP: {name} ({value})")
    if kind != 2:
        raise StartTLSError(f"not an RDP negotiation response (type {kind})")
    name = RDP_PROTOCOLS.get(value, f"0x{value:x}")
    if value not in (PROTOCOL_SSL, PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX):
        raise StartTLSError(f"the RDP server selected {name}, not TLS")
    caps = [f"selected {name}"] + [n for bit, n in RDP_FLAGS.items() if flags & bit]
    return d.ready(StartTLSInfo("rdp", "", caps))
