"""ROBOT: is the server's static RSA key exchange a Bleichenbacher padding oracle?

RFC 5246 §7.4.7.1: a server that finds a badly formatted RSA premaster "MUST NOT" tell the
client; it continues with a random premaster so that the handshake fails the same way at
Finished.  Böck, Somorovsky and Young ("Return Of Bleichenbacher's Oracle Threat", USENIX
Security 2018) found many stacks that still answered differently (another alert, a closed
connection, a timeout) depending on the padding, which lets an attacker decrypt recorded
sessions and forge signatures with the server's key.

The probe (one connection per ciphertext): a TLS 1.2 ClientHello offering only TLS_RSA_*
suites; the RSA key of the certificate the server sends; then a ClientKeyExchange with one of
the paper's five premaster encodings, each encrypted with the raw RSA operation (so that
broken paddings can be made at all), followed by ChangeCipherSpec and a Finished record that
no key authenticates.  A sound server answers all five the same way.  Each round is repeated
(:data:`ROUNDS`), and only answers that differ consistently count.  When the five answers are
all alike, the paper's second form is tried: the ClientKeyExchange alone, no
ChangeCipherSpec, where some stacks leak by closing early versus waiting.
"""
from __future__ import annotations

import hashlib
import time

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ...proto.messages12 import ClientKeyExchange
from ...proto.names import ContentType
from ...proto.provider import Provider
from ...proto.tls12 import keyexchange as kx
from .exchange import Exchange, client_hello, describe_flight, guarded, remaining
from .result import CheckResult

NAME = "ROBOT"
#: TLS_RSA_WITH_AES_128_GCM_SHA256, _256_GCM_SHA384, _128_CBC_SHA256, _256_CBC_SHA256,
#: _128_CBC_SHA, _256_CBC_SHA, TLS_RSA_WITH_3DES_EDE_CBC_SHA (RFC 5246, 5288)
RSA_SUITES = (0x009C, 0x009D, 0x003C, 0x003D, 0x002F, 0x0035, 0x000A)
CLIENT_VERSION = 0x0303
ROUNDS = 3
#: how long a server gets to answer one ClientKeyExchange
WAIT = 3.0
#: the second form (no ChangeCipherSpec): a server that is fine waits for more, so every
#: connection of a sound server lasts this long (five in a row).  The wait adapts to the
#: server: ten times its slowest answer in the first form, within these bounds (on
#: loopback a sound server costs 5 x 0.1 s, not 5 x 1 s)
WAIT_SHORT = 1.0
WAIT_SHORT_MIN = 0.1
#: a Finished record that no key authenticates (48 bytes: a valid length for AES-GCM and
#: AES-CBC records)
BAD_FINISHED = hashlib.sha256(b"tlslab robot finished").digest() + bytes(16)

#: the five encodings of the ROBOT paper (section 4): name, what it is
VARIANTS = (
    ("correct", "correct padding and premaster"),
    ("wrong-first-bytes", "wrong first bytes (0x41 0x17 instead of 0x00 0x02)"),
    ("zero-in-padding", "0x00 inside the first 8 padding bytes"),
    ("no-separator", "no 0x00 separator before the premaster"),
    ("wrong-version", "correct padding, wrong version (0x0202) in the premaster"),
)


def encoded_message(variant: str, k: int, provider: Provider) -> bytes:
    """The k-byte RSA plaintext block of ``variant`` (RFC 8017 §7.2.1 EM = 0x00 || 0x02 ||
    PS || 0x00 || M, with M the 48-byte premaster of RFC 5246 §7.4.7.1), broken as the
    variant says."""
    premaster = CLIENT_VERSION.to_bytes(2, "big") + provider.random(46)
    if variant == "wrong-version":
        premaster = b"\x02\x02" + premaster[2:]
    ps = bytes(b | 1 if b == 0 else b for b in provider.random(k - 3 - len(premaster)))
    em = bytearray(b"\x00\x02" + ps + b"\x00" + premaster)
    if variant == "wrong-first-bytes":
        em[0:2] = b"\x41\x17"
    elif variant == "zero-in-padding":
        em[6] = 0  # PS must be at least 8 nonzero bytes (RFC 8017 §7.2.2 step 3)
    elif variant == "no-separator":
        sep = 2 + len(ps)
        em[sep:] = bytes(b or 1 for b in em[sep:])  # nothing ends the padding
    return bytes(em)


def raw_encrypt(public_key: rsa.RSAPublicKey, em: bytes) -> bytes:
    """c = m^e mod n: the RSA operation without padding, which ``cryptography`` does not
    offer (it would refuse the broken blocks)."""
    nums = public_key.public_numbers()
    k = (nums.n.bit_length() + 7) // 8
    return pow(int.from_bytes(em, "big"), nums.e, nums.n).to_bytes(k, "big")


async def check_robot(target, deadline: float) -> CheckResult:
    """ROBOT (RFC 5246 §7.4.7.1; Böck, Somorovsky, Young 2018) against ``target``;
    ``deadline`` is an absolute :func:`time.monotonic` time."""
    return await guarded(NAME, _check, target, deadline)


async def _check(target, deadline: float) -> CheckResult:
    async with await Exchange.open(target, deadline) as x:
        flight = await x.hello(client_hello(target, suites=RSA_SUITES))
    if flight.server_hello is None or not flight.done:
        if flight.ended.startswith("alert ") or flight.ended in ("closed", "reset"):
            return CheckResult(NAME, False, "not applicable: the server accepts no static RSA "
                               f"key exchange (offered only TLS_RSA_* suites; it "
                               f"{describe_flight(flight)})", {"applicable": False,
                                                               "hello": flight.ended})
        return CheckResult(NAME, None, f"not decided: the server {describe_flight(flight)} to a "
                           "ClientHello with TLS_RSA_* suites", {"hello": flight.ended})
    suite = flight.server_hello.cipher_suite
    if suite not in RSA_SUITES or not flight.certificates:
        return CheckResult(NAME, None, f"not decided: the server chose suite 0x{suite:04x} "
                           "without an RSA certificate", {"suite": suite})
    key = x509.load_der_x509_certificate(flight.certificates[0]).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return CheckResult(NAME, False, "not applicable: the certificate's key is not RSA",
                           {"applicable": False})
    base = {"suite": f"0x{suite:04x}", "modulus_bits": key.key_size, "rounds": ROUNDS}
    timings: list[float] = []
    rounds = await _rounds(target, deadline, key, with_finished=True, count=ROUNDS, timings=timings)
    wait_short = min(WAIT_SHORT, max(WAIT_SHORT_MIN, 10 * max(timings, default=WAIT_SHORT)))
    verdict = _judge(rounds)
    form = "each with ChangeCipherSpec and a wrong Finished"
    second = None
    if verdict is False:
        # the paper's second form: the ClientKeyExchange alone; one round first, repeated only
        # if it shows a difference (a sound server waits for more on all five).  It decides
        # only when it finds a consistent difference.
        second = await _rounds(target, deadline, key, with_finished=False, count=1, wait=wait_short)
        if _judge(second) is True:
            second += await _rounds(target, deadline, key, with_finished=False, count=ROUNDS - 1,
                                    wait=wait_short)
            if _judge(second) is True:
                rounds, verdict, form = second, True, "without ChangeCipherSpec and Finished"
    summary = "; ".join(f"{what} -> {_words(rounds[0][name])}" for name, what in VARIANTS)
    details = {**base, "form": form,
               "answers": {name: [r[name] for r in rounds] for name, _ in VARIANTS}}
    if second is not None and rounds is not second:
        details["answers_without_finished"] = {name: [r[name] for r in second] for name, _ in VARIANTS}
    sent = (f"sent ClientKeyExchanges with the five ROBOT paddings ({form}), "
            f"{len(rounds)} round{'s' if len(rounds) > 1 else ''}: {summary}")
    if verdict is True:
        strong = rounds[0]["correct"] != rounds[0]["wrong-first-bytes"]
        details["oracle"] = "strong" if strong else "weak"
        return CheckResult(NAME, True, f"{sent}: the answers differ with the padding, the same way "
                           f"every round: a Bleichenbacher oracle ({details['oracle']})", details)
    if verdict is None:
        return CheckResult(NAME, None, f"{sent}: the answers changed between rounds (noise): "
                           "not decided", details)
    return CheckResult(NAME, False, f"{sent}: the same answer for every padding, as RFC 5246 "
                       "§7.4.7.1 requires", details)


async def _rounds(target, deadline, key, *, with_finished: bool, count: int,
                  wait: float = WAIT, timings: list[float] | None = None) -> list[dict]:
    # one connection at a time: many servers (openssl s_server, gnutls-serv) serve one
    # connection at a time, and a queued handshake would look like an answer that differs
    out = []
    for _ in range(count):
        out.append({name: await _one(target, deadline, key, name, with_finished, wait, timings)
                    for name, _ in VARIANTS})
    return out


async def _one(target, deadline: float, key, variant: str, with_finished: bool,
               wait: float = WAIT, timings: list[float] | None = None) -> str:
    """One connection, one ClientKeyExchange: how the server answered (``alert <name>``,
    ``closed``, ``reset``, ``timeout``)."""
    provider = Provider()
    async with await Exchange.open(target, deadline) as x:
        flight = await x.hello(client_hello(target, suites=RSA_SUITES, provider=provider))
        if not flight.done:
            return f"hello: {flight.ended or 'no ServerHelloDone'}"
        em = encoded_message(variant, (key.key_size + 7) // 8, provider)
        body = kx.build_client_key_exchange("RSA", raw_encrypt(key, em))
        data = x.record(ContentType.handshake, ClientKeyExchange(body=body).build())
        if with_finished:
            data += x.record(ContentType.change_cipher_spec, b"\x01")
            data += x.record(ContentType.handshake, BAD_FINISHED)
        if not await x.send(data):
            return "closed"
        sent = time.monotonic()
        answer = await x.answer(remaining(deadline, WAIT if with_finished else wait))
        if timings is not None and answer.ended != "timeout":
            timings.append(time.monotonic() - sent)
    return answer.ended if not answer.records or answer.alert else f"{len(answer.records)} records, then {answer.ended}"


def _judge(rounds: list[dict]) -> bool | None:
    """True: the variants are answered differently, identically in every round; False: all
    alike in every round; None: noise, or a connection that failed before its
    ClientKeyExchange (nothing was measured)."""
    if any(a.startswith("hello:") for r in rounds for a in r.values()):
        return None
    if any(r != rounds[0] for r in rounds[1:]):
        return None
    return len(set(rounds[0].values())) > 1


def _words(answer: str) -> str:
    return {"timeout": "no answer (timeout)", "closed": "connection closed",
            "reset": "connection reset"}.get(answer, answer)


__all__ = ["check_robot", "encoded_message", "raw_encrypt", "VARIANTS"]
