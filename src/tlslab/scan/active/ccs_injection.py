"""CCS injection (CVE-2014-0224): does the server accept a ChangeCipherSpec before the key
exchange?

RFC 5246 §7.1: ChangeCipherSpec comes after the key exchange; one received earlier is an
unexpected message (RFC 5246 §7.2.2: unexpected_message).  OpenSSL before 0.9.8za, 1.0.0m
and 1.0.1h accepted it and switched to keys computed from an empty master secret, which a
man in the middle can compute too.

The probe: a TLS 1.2 ClientHello, the server's flight up to ServerHelloDone, then a
ChangeCipherSpec record.  A fixed server answers with an alert (unexpected_message); a
vulnerable one says nothing.  Silence alone is weak evidence (a slow server is silent too),
so the probe then sends one more record, in clear: a server that switched keys at the early
CCS cannot authenticate it and answers bad_record_mac (or decryption_failed).
"""
from __future__ import annotations

import hashlib

from ...proto.names import ContentType
from .exchange import Exchange, client_hello, guarded, hello_not_answered, remaining
from .result import CheckResult

NAME = "CCS_INJECTION"
#: how long a server gets to refuse the early ChangeCipherSpec
WAIT_REFUSAL = 1.5
#: and to answer the record sent after it
WAIT_FOLLOW_UP = 2.0
#: the record sent after the CCS: 48 bytes, a valid size for AES-GCM, ChaCha20 and CBC
#: records, that no key authenticates
FOLLOW_UP = hashlib.sha256(b"tlslab ccs injection").digest() + bytes(16)
KEYS_IN_USE = ("bad_record_mac", "decryption_failed", "decrypt_error", "record_overflow")


async def check_ccs_injection(target, deadline: float) -> CheckResult:
    """CCS injection (CVE-2014-0224, RFC 5246 §7.1) against ``target``; ``deadline`` is an
    absolute :func:`time.monotonic` time."""
    return await guarded(NAME, _check, target, deadline)


async def _check(target, deadline: float) -> CheckResult:
    async with await Exchange.open(target, deadline) as x:
        flight = await x.hello(client_hello(target))
        if flight.server_hello is None or not flight.done:
            return hello_not_answered(NAME, flight, "CCS injection")
        what = ("sent a ChangeCipherSpec right after the server's ServerHelloDone, before any "
                "key exchange")
        if not await x.send(x.record(ContentType.change_cipher_spec, b"\x01")):
            return CheckResult(NAME, False, f"{what}; the server had already closed the "
                               "connection", {"answer": "closed"})
        first = await x.answer(remaining(deadline, WAIT_REFUSAL))
        details = {"answer_to_ccs": first.ended}
        if first.alert:
            return CheckResult(NAME, False, f"{what}; the server refused it with alert "
                               f"{first.alert}", details)
        if first.ended in ("closed", "reset"):
            return CheckResult(NAME, False, f"{what}; the server {first.ended} the connection "
                               "without accepting it", details)
        if first.records:
            return CheckResult(NAME, None, f"{what}; the server answered with "
                               f"{len(first.records)} record(s) that are not an alert: "
                               "inconclusive", details)
        sent = await x.send(x.record(ContentType.handshake, FOLLOW_UP))
        second = await x.answer(remaining(deadline, WAIT_FOLLOW_UP)) if sent else None
    after = second.ended if second is not None else "closed"
    details["answer_to_next_record"] = after
    silent = f"{what}; no alert came back within {WAIT_REFUSAL:g} s (a fixed server answers unexpected_message)"
    if second is not None and second.alert in KEYS_IN_USE:
        return CheckResult(NAME, True, f"{silent}, and the record sent next was answered with "
                           f"{second.alert}: the server had switched to keys made without a key "
                           "exchange", details)
    if second is not None and second.alert:
        return CheckResult(NAME, None, f"{silent}; the record sent next was answered with "
                           f"{second.alert}, which does not show whether keys were switched", details)
    return CheckResult(NAME, None, f"{silent}; nor to the record sent next ({after}): the "
                       "server neither refused the early ChangeCipherSpec nor showed that it "
                       "used it", details)


__all__ = ["check_ccs_injection"]
