"""What a server accepts: protocol versions, cipher suites and their order, groups, and the
signature schemes of its ServerKeyExchange, each learnt from first answers only.

The method for a list (suites, groups, schemes) is the same: offer everything not yet
seen, note what the server picks, take it out, and offer the rest again, until the server
refuses.  A server that picks by its own preference has then revealed its full order; one
that follows the client is found out by offering the accepted items in reverse (if its
first pick changes with our order, it follows ours).  That costs one connection per
accepted item plus two, whatever the size of the registry.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..proto.errors import TLSError
from .hello import HelloAnswer, HelloOffer, suite_kx
from .registry import (SSL3, TLS10, TLS11, TLS12, TLS13, VERSION_NAMES, group_name, groups,
                       groups_for, scheme_name, schemes_for, suite_name, suites, suites_for)
from .target import ScanTarget
from .wire import send_hello

PROTOCOLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
#: a ClientHello offering more suites than this is split in chunks when the server fails on
#: the whole list (some old stacks fail on very long lists instead of picking one)
CHUNK = 64
#: bound on the pick-and-remove loops (a server cannot keep a scan going for ever)
MAX_PICKS = 400


class Prober:
    """Sends ClientHellos for one target under one deadline, ``concurrency`` at a time (the
    pace and the count of connections are the scan's :class:`.pacing.Pacer`)."""

    def __init__(self, target: ScanTarget, deadline: float, concurrency: int = 4) -> None:
        self.target = target
        self.deadline = deadline
        self.concurrency = concurrency
        self._sem: asyncio.Semaphore | None = None
        self._loop = None

    def _semaphore(self) -> asyncio.Semaphore:
        # one per event loop: a semaphore is bound to the loop it first waited in
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:
            self._sem, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._sem

    async def hello(self, offer: HelloOffer | bytes) -> HelloAnswer:
        async with self._semaphore():
            return await send_hello(self.target, offer, self.deadline)

    def base_offer(self, version: int, suites_list, **kw) -> HelloOffer:
        """A broad ClientHello of ``version``: every group and signature scheme of that
        version, SNI, and ``suites_list``."""
        versions = (TLS13,) if version == TLS13 else (version,)
        kw.setdefault("groups", tuple(groups_for(version)))
        kw.setdefault("signature_algorithms", tuple(schemes_for(version)) if version >= TLS12 else ())
        return HelloOffer(version=version, versions=versions, cipher_suites=tuple(suites_list),
                          sni=self.target.sni, **kw)


def _picked(answer: HelloAnswer, version: int) -> bool:
    if not answer.accepted or answer.kind == "sslv2":
        return False
    return answer.version == version


# -- protocols -----------------------------------------------------------------------------
async def protocols(p: Prober) -> tuple[dict[str, bool], dict[str, HelloAnswer]]:
    """Each version, asked alone; returns name -> accepted, and the answers (evidence)."""
    from ..proto.sslv2 import CIPHER_KINDS, build_client_hello_v2
    from ..proto.provider import Provider

    async def one(version: int) -> tuple[str, HelloAnswer]:
        if version == 0x0002:
            return "SSL 2.0", await p.hello(build_client_hello_v2(list(CIPHER_KINDS), Provider().random(16)))
        return VERSION_NAMES[version], await p.hello(p.base_offer(version, suites_for(version)))

    results = await asyncio.gather(*(one(v) for v in (0x0002, SSL3, TLS10, TLS11, TLS12, TLS13)))
    answers = dict(results)
    accepted = {}
    for name, answer in answers.items():
        if name == "SSL 2.0":
            accepted[name] = answer.kind == "sslv2" and bool(answer.sslv2_ciphers)
        else:
            version = {v: k for k, v in VERSION_NAMES.items()}[name]
            accepted[name] = _picked(answer, version)
    return accepted, answers


# -- lists: pick and remove --------------------------------------------------------------
@dataclass
class ListResult:
    """An enumerated list: what was accepted, in the order picked, and the server's stance."""

    accepted: list[int] = field(default_factory=list)
    server_order: bool | None = None     # None: fewer than two accepted, or undecided
    answers: list[HelloAnswer] = field(default_factory=list)
    note: str = ""

    @property
    def order(self) -> list[int]:
        return list(self.accepted) if self.server_order else []


async def _pick_loop(p: Prober, make_offer, candidates: list[int], read_pick) -> ListResult:
    """Offer ``candidates``; take out each pick (``read_pick(answer) -> code | None``)."""
    result = ListResult()
    remaining = list(candidates)
    while remaining and len(result.accepted) < MAX_PICKS:
        answer = await p.hello(make_offer(remaining))
        result.answers.append(answer)
        pick = read_pick(answer)
        if pick is None or pick not in remaining:
            if pick is not None:
                result.note = f"the server picked {pick:#06x}, which was not offered"
            break
        result.accepted.append(pick)
        remaining.remove(pick)
    return result


async def _server_order(p: Prober, make_offer, result: ListResult, read_pick) -> None:
    """Reverse the accepted list: the same first pick means the server's own order."""
    if len(result.accepted) < 2:
        return
    answer = await p.hello(make_offer(list(reversed(result.accepted))))
    result.answers.append(answer)
    pick = read_pick(answer)
    if pick is None:
        result.note = "the server refused its own accepted items in reverse order"
        return
    result.server_order = pick == result.accepted[0]


async def cipher_suites(p: Prober, version: int) -> ListResult:
    """Every suite of the registry the server accepts in ``version``, and its order."""
    def offer(codes):
        return p.base_offer(version, codes)

    def pick(answer):
        return answer.cipher_suite if _picked(answer, version) else None

    candidates = suites_for(version)
    result = await _pick_loop(p, offer, candidates, pick)
    if not result.accepted and result.answers and result.answers[-1].kind in (
            "closed", "reset", "timeout", "malformed") and len(candidates) > CHUNK:
        # some stacks fail on long lists: ask in chunks, then merge
        merged = ListResult(answers=list(result.answers))
        for i in range(0, len(candidates), CHUNK):
            part = await _pick_loop(p, offer, candidates[i:i + CHUNK], pick)
            merged.accepted += part.accepted
            merged.answers += part.answers
        result = merged
        result.note = "asked in chunks of 64 suites (the server fails on longer lists)"
        if len(result.accepted) > 1:
            # the chunks' picks are not one order: find the order among the accepted ones
            ordered = await _pick_loop(p, offer, list(result.accepted), pick)
            result.answers += ordered.answers
            if sorted(ordered.accepted) == sorted(result.accepted):
                result.accepted = ordered.accepted
    await _server_order(p, offer, result, pick)
    return result


async def groups13(p: Prober, suites13: list[int]) -> ListResult:
    """TLS 1.3 groups, from HelloRetryRequests (no key share is sent, RFC 8446 §4.1.4)."""
    def offer(codes):
        return p.base_offer(TLS13, suites13, groups=tuple(codes))

    def pick(answer):
        if answer.kind == "hello_retry_request" and answer.version == TLS13:
            return answer.selected_group
        if answer.kind == "server_hello" and answer.version == TLS13:
            return answer.selected_group
        return None

    result = await _pick_loop(p, offer, groups_for(TLS13), pick)
    await _server_order(p, offer, result, pick)
    return result


def _ske(answer: HelloAnswer, version: int):
    kx = suite_kx(answer.cipher_suite)
    if kx is None or answer.server_key_exchange is None:
        return None
    from ..proto.tls12.keyexchange import parse_server_key_exchange
    try:
        return parse_server_key_exchange(kx, answer.server_key_exchange, version)
    except (TLSError, ValueError):
        return None


async def groups12(p: Prober, version: int, ecdhe_suites: list[int]) -> ListResult:
    """TLS 1.0-1.2 ECDHE curves, from the named_curve of each ServerKeyExchange (RFC 8422 §5.4).

    With ECDHE_RSA suites every curve can be taken out in turn.  With only ECDHE_ECDSA ones
    the certificate's own curve must stay offered (RFC 4492 §5.1: the client's curves also
    bound the server's ECDSA key, and OpenSSL enforces it), so once it is picked the other
    curves are asked one by one next to it; a curve the server ranks below its
    certificate's then looks unsupported, and the note says so."""
    table = suites()
    rsa = [c for c in ecdhe_suites if table[c].auth == "RSA"]
    use = rsa or ecdhe_suites
    ec = [g for g in groups_for(version) if groups()[g].kind == "ec"]
    keep: list[int] = []

    def offer(codes):
        return p.base_offer(version, use, groups=tuple(list(codes) + [k for k in keep if k not in codes]))

    def pick(answer):
        if not _picked(answer, version):
            return None
        ske = _ske(answer, version)
        return getattr(ske.params, "named_curve", None) if ske is not None else None

    result = await _pick_loop(p, offer, ec, pick)
    if not rsa and result.accepted:
        cert_curve = _certificate_curve(result.answers)
        if cert_curve is not None and cert_curve in result.accepted:
            keep.append(cert_curve)
            rest = [g for g in ec if g not in result.accepted]
            answers = await asyncio.gather(*(p.hello(offer([g])) for g in rest))
            for g, answer in zip(rest, answers):
                result.answers.append(answer)
                if pick(answer) == g:
                    result.accepted.append(g)
            result.note = ("only ECDSA suites: the certificate's curve stayed offered, so the "
                           "server's order among curves is not known")
            return result
    await _server_order(p, offer, result, pick)
    return result


def _certificate_curve(answers: list[HelloAnswer]) -> int | None:
    """The NamedGroup of the ECDSA leaf certificate of the first answer that has one."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    codes = {"secp256r1": 0x0017, "secp384r1": 0x0018, "secp521r1": 0x0019}
    for answer in answers:
        if answer.certificates:
            try:
                key = x509.load_der_x509_certificate(answer.certificates[0]).public_key()
            except ValueError:
                return None
            if isinstance(key, ec.EllipticCurvePublicKey):
                return codes.get(key.curve.name)
            return None
    return None


async def dh_parameters(p: Prober, version: int, dhe_suites: list[int]) -> dict | None:
    """The finite-field group a DHE suite uses: its size, and its name when it is a known
    group (RFC 7919 ffdhe*, RFC 3526), offered with the ffdhe groups (RFC 7919 §3)."""
    if not dhe_suites:
        return None
    ffdhe = [g for g in groups_for(version) if groups()[g].kind == "ffdhe"]
    answer = await p.hello(p.base_offer(version, dhe_suites, groups=tuple(ffdhe)))
    ske = _ske(answer, version) if _picked(answer, version) else None
    if ske is None:
        return None
    from ..proto.tls12.keyexchange import known_dh_group
    prime = ske.params.p
    return {"bits": prime.bit_length(), "group": known_dh_group(prime, ske.params.g),
            "suite": suite_name(answer.cipher_suite)}


async def schemes12(p: Prober, version: int, signing_suites: list[int]) -> ListResult:
    """TLS 1.2 signature schemes, from the algorithm of each ServerKeyExchange (RFC 5246 §7.4.3)."""
    def offer(codes):
        return p.base_offer(version, signing_suites, signature_algorithms=tuple(codes))

    def pick(answer):
        if not _picked(answer, version):
            return None
        ske = _ske(answer, version)
        return ske.scheme if ske is not None else None

    result = await _pick_loop(p, offer, schemes_for(TLS12), pick)
    await _server_order(p, offer, result, pick)
    return result


def names(kind: str, codes: list[int]) -> list[str]:
    fn = {"suite": suite_name, "group": group_name, "scheme": scheme_name}[kind]
    return [fn(c) for c in codes]


def ecdhe_and_dhe(accepted: list[int]) -> tuple[list[int], list[int]]:
    table = suites()
    ecdhe = [c for c in accepted if table[c].kx == "ECDHE"]
    dhe = [c for c in accepted if table[c].kx == "DHE"]
    return ecdhe, dhe


__all__ = ["Prober", "ListResult", "protocols", "cipher_suites", "groups13", "groups12",
           "dh_parameters", "schemes12", "names", "ecdhe_and_dhe", "PROTOCOLS",
           "TLS10", "TLS11"]
