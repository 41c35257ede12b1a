"""One server, scanned completely: :func:`scan` (async) and :func:`scan_target` (a plain
function of JSON inputs, so a fleet can run it anywhere).

The order is the order of dependence: protocol versions first (one connection each, in
parallel), then per version the suites, then what needs an accepted suite (groups, DH
size, signature schemes, extensions), then full handshakes (TLS 1.3 chains and schemes,
resumption, 0-RTT, ALPN, renegotiation), then what is derived from all of it (weaknesses,
findings, client simulation).  The document's keys are a stable contract (README "scan").
"""
from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any, Callable

from . import certs as C
from . import enumerate as E
from . import features as F
from .registry import (SSL3, TLS10, TLS11, TLS12, TLS13, VERSION_NAMES, groups_for, scheme_name,
                       suite_name, suites)
from .target import ScanTarget

#: the whole scan's time limit by default (a healthy loopback server takes well under 1 s)
DEFAULT_LIMIT = 120.0
_VERSIONS = {"SSL 3.0": SSL3, "TLS 1.0": TLS10, "TLS 1.1": TLS11, "TLS 1.2": TLS12, "TLS 1.3": TLS13}

Progress = Callable[[str, float], None]


def _list_json(res: E.ListResult, kind: str) -> dict:
    return {"accepted": E.names(kind, res.accepted), "server_order": res.server_order,
            "order": E.names(kind, res.order)}


async def scan(target: ScanTarget, *, limit: float = DEFAULT_LIMIT, progress: Progress | None = None,
               active: bool = True, against: str | None = None, rate: float | None = None,
               concurrency: int = 4) -> dict:
    """Everything ``target`` accepts, as the scan document (never raises for what the
    server does: a target that cannot be reached gives a document with ``error``).

    ``rate``: at most this many new connections per second (None: as fast as the server
    answers); ``concurrency``: connections at once."""
    from .pacing import CURRENT, Pacer
    pacer = Pacer(rate)
    token = CURRENT.set(pacer)
    try:
        return await _scan(target, limit, progress, active, against, pacer, concurrency)
    finally:
        CURRENT.reset(token)


async def _scan(target: ScanTarget, limit: float, progress: Progress | None, active: bool,
                against: str | None, pacer, concurrency: int) -> dict:
    started = time.monotonic()
    deadline = started + limit
    say = progress or (lambda step, frac: None)
    p = E.Prober(target, deadline, concurrency=max(1, concurrency))
    doc: dict[str, Any] = {"target": {"host": target.host, "port": target.port,
                                      "server_name": target.sni, "starttls": target.starttls},
                           "scanned_at": datetime.datetime.now(datetime.timezone.utc)
                           .replace(microsecond=0).isoformat()}

    say("protocol versions", 0.02)
    accepted, answers = await E.protocols(p)
    doc["protocols"] = accepted
    if not any(accepted.values()):
        reason = _unreachable(answers)
        doc.update(error=reason, duration_s=round(time.monotonic() - started, 3),
                   connections=pacer.count)
        return doc
    supported = [v for name, v in _VERSIONS.items() if accepted.get(name)]

    say("cipher suites", 0.15)
    suite_results: dict[str, E.ListResult] = {}
    for name, version in _VERSIONS.items():
        if accepted.get(name):
            suite_results[name] = await E.cipher_suites(p, version)
    doc["cipher_suites"] = {name: _list_json(res, "suite") for name, res in suite_results.items()}
    if accepted.get("SSL 2.0"):
        from ..proto.sslv2 import CIPHER_KINDS
        v2 = answers["SSL 2.0"].sslv2_ciphers
        doc["cipher_suites"]["SSL 2.0"] = {"accepted": [CIPHER_KINDS.get(c, f"0x{c:06X}") for c in v2],
                                           "server_order": None, "order": []}

    say("groups and signature schemes", 0.35)
    best12 = next((v for v in (TLS12, TLS11, TLS10) if v in supported), None)
    accepted12 = suite_results[VERSION_NAMES[best12]].accepted if best12 else []
    ecdhe, dhe = E.ecdhe_and_dhe(accepted12)
    groups_doc: dict[str, Any] = {}
    g13 = g12 = None
    if TLS13 in supported:
        g13 = await E.groups13(p, suite_results["TLS 1.3"].accepted)
        groups_doc["TLS 1.3"] = _list_json(g13, "group")
    if best12 and ecdhe:
        g12 = await E.groups12(p, best12, ecdhe)
        groups_doc[VERSION_NAMES[best12]] = _list_json(g12, "group")
    main = g13 or g12
    all_groups: list[str] = []
    for part in groups_doc.values():
        all_groups += [g for g in part["accepted"] if g not in all_groups]
    doc["groups"] = {"accepted": all_groups,
                     "server_order": main.server_order if main else None,
                     "order": E.names("group", main.order) if main else [],
                     "per_version": groups_doc,
                     "dh_parameters": await E.dh_parameters(p, best12, dhe) if best12 else None}
    sig: dict[str, list[str]] = {}
    if best12 == TLS12 and (ecdhe or dhe):
        s12 = await E.schemes12(p, TLS12, ecdhe + dhe)
        sig["TLS 1.2"] = E.names("scheme", s12.accepted)
    if TLS13 in supported:
        sig["TLS 1.3"] = await _schemes13(p, deadline)
    doc["signature_algorithms"] = sig

    say("certificates", 0.5)
    from ..proto.cert_store import load_trust_store
    try:
        trust = load_trust_store(target.ca_file)
    except (OSError, ValueError):
        trust = []  # judged without anchors: every chain is reported untrusted, with why
    doc["certificates"] = await _certificates(p, deadline, suite_results, supported, trust)

    say("resumption, 0-RTT, ALPN", 0.65)
    resumption: dict[str, Any] = {"session_id": None, "tickets": None, "psk": None}
    early = {"accepted": None, "max_early_data_size": None}
    evidence: list[str] = []
    tasks = []
    if TLS12 in supported:
        tasks.append(F.resumption12(p, deadline))
    if TLS13 in supported:
        tasks.append(F.resumption13(p, deadline))
    for part in await asyncio.gather(*tasks):
        evidence += part.pop("evidence", [])
        if "early_data" in part:
            early = part.pop("early_data")
            resumption["psk"] = part.pop("psk")
            resumption["tickets_tls13"] = part.pop("tickets_sent")
            resumption["ticket_lifetime"] = part.pop("ticket_lifetime")
        else:
            resumption.update(session_id=part["session_id"], tickets=part["tickets"],
                              ticket_lifetime_hint=part["ticket_lifetime_hint"])
    resumption["evidence"] = evidence
    doc["session_resumption"] = resumption
    doc["early_data"] = early
    doc["alpn"] = await F.alpn(p, deadline, accepted12 if best12 == TLS12 else [], TLS13 in supported)

    say("extensions and renegotiation", 0.8)
    ext12 = await F.tls12_extensions(p, accepted12) if best12 == TLS12 else {}
    doc["ocsp_stapling"] = await _ocsp(p, deadline, ext12, supported)
    doc["secure_renegotiation"] = ext12.get("secure_renegotiation")
    doc["fallback_scsv"] = await F.fallback_scsv(p, supported)
    doc["extended_master_secret"] = ext12.get("extended_master_secret")
    doc["encrypt_then_mac"] = ext12.get("encrypt_then_mac")
    doc["compression"] = ext12.get("compression", False if supported else None)
    doc["record_size_limit"] = ext12.get("record_size_limit")
    doc["heartbeat"] = ext12.get("heartbeat")
    if TLS13 in supported:
        doc["hello_retry_request"] = await F.hello_retry(
            p, suite_results["TLS 1.3"].accepted, groups_for(TLS13))
    say("weaknesses", 0.9)
    from .weaknesses import assess
    await assess(doc, p, deadline, suite_results, active=active)
    # last: a single-threaded server (openssl s_server) lingers about a second on a refused
    # renegotiation before it serves the next connection
    doc["client_renegotiation"] = (await F.client_renegotiation(p, deadline)) if best12 == TLS12 \
        else {"accepted": None, "evidence": "no TLS 1.2"}
    from .findings import add_findings
    add_findings(doc, against=against, trust=trust)
    doc["duration_s"] = round(time.monotonic() - started, 3)
    doc["connections"] = pacer.count
    say("done", 1.0)
    return doc


def _unreachable(answers: dict) -> dict:
    """``{"code", "message", "retryable"}`` for a server no version could be scanned on."""
    kinds = {a.kind for a in answers.values()}
    first = next(iter(answers.values()))

    def err(code: str, message: str, retryable: bool) -> dict:
        return {"code": code, "message": message, "retryable": retryable}

    if kinds <= {"refused"}:
        return err("connection-refused", first.detail or "connection refused", False)
    if kinds <= {"timeout"}:
        return err("timeout", "no answer: " + (first.detail or "timed out"), True)
    if kinds <= {"unreachable"}:
        return err("unreachable", first.detail or "unreachable", True)
    if "starttls_failed" in kinds:
        return err("starttls-failed",
                   next(a.detail for a in answers.values() if a.kind == "starttls_failed"), False)
    if "not_tls" in kinds:
        a = next(a for a in answers.values() if a.kind == "not_tls")
        shown = a.first_bytes[:40].decode("latin-1", "replace")
        shown = "".join(ch if ch.isprintable() else "." for ch in shown)
        return err("not-tls", f"the server does not speak TLS (it answered {shown!r})", False)
    if kinds <= {"reset", "closed", "timeout"}:
        return err("connection-reset", "the server closed or reset every connection without "
                   "a TLS answer", True)
    return err("no-protocol", "the server refused every protocol version offered ("
               + ", ".join(sorted(kinds)) + ")", False)


async def _schemes13(p: E.Prober, deadline: float) -> list[str]:
    """TLS 1.3 CertificateVerify schemes, by handshakes taking out each one used (the
    engine verifies the signature, so only the schemes it implements can be learnt)."""
    from ..proto.config import DEFAULT_SIGNATURE_ALGORITHMS
    from .handshake import handshake
    remaining = [s for s in DEFAULT_SIGNATURE_ALGORITHMS if not s.startswith("rsa_pkcs1")]
    found: list[str] = []
    while remaining:
        hs = await handshake(p.target, deadline, versions=["TLS 1.3"], signature_algorithms=remaining,
                             session_store=None)
        used = hs.conn.negotiated.get("signature_scheme") if hs.ok else None
        if used not in remaining:
            break
        found.append(used)
        remaining.remove(used)
    return found


async def _certificates(p: E.Prober, deadline: float, suite_results: dict, supported: list,
                        trust: list) -> list:
    """Every distinct chain: per key type in TLS 1.0-1.2 (from the suites' answers), per
    signature family in TLS 1.3 (handshakes), and with and without SNI."""
    from .handshake import handshake
    chains: dict[str, tuple[list, list[str]]] = {}

    def add(ders: list[bytes], how: str) -> None:
        chain = C.load_chain(ders)
        if not chain:
            return
        key = C.fingerprint(chain)
        if key in chains:
            if how not in chains[key][1]:
                chains[key][1].append(how)
        else:
            chains[key] = (chain, [how])

    for name, res in suite_results.items():
        if name == "TLS 1.3":
            continue
        for answer in res.answers:
            if answer.certificates and answer.cipher_suite is not None:
                auth = suites().get(answer.cipher_suite)
                add(answer.certificates, f"{name} {auth.auth if auth else ''} suites".replace("  ", " "))
    if TLS13 in supported:
        for family, schemes in C.FAMILIES13.items():
            hs = await handshake(p.target, deadline, versions=["TLS 1.3"],
                                 signature_algorithms=list(schemes), session_store=None)
            if hs.ok and hs.conn.peer_certificates:
                from cryptography.hazmat.primitives.serialization import Encoding
                add([c.public_bytes(Encoding.DER) for c in hs.conn.peer_certificates],
                    f"TLS 1.3 {family} signatures")
    if p.target.sni:
        best = max(supported)
        hs = await handshake(p.target, deadline, server_name=None, check_hostname=False,
                             versions=[VERSION_NAMES[best]] if best >= TLS10 else None,
                             session_store=None)
        if hs.ok and hs.conn.peer_certificates:
            from cryptography.hazmat.primitives.serialization import Encoding
            add([c.public_bytes(Encoding.DER) for c in hs.conn.peer_certificates], "without SNI")
    now = datetime.datetime.now(datetime.timezone.utc)
    cache: dict = {}
    out = []
    for chain, hows in chains.values():
        doc = C.judge(chain, name=p.target.check_name, trust=trust, now=now, cache=cache)
        doc["found_with"] = hows
        doc["pem"] = C.pem(chain)
        out.append(doc)
    return out


async def _ocsp(p: E.Prober, deadline: float, ext12: dict, supported: list) -> dict:
    """A stapled OCSP response (RFC 6066 §8; RFC 8446 §4.4.2.1 in TLS 1.3)."""
    if ext12.get("ocsp_stapling"):
        return {"stapled": True, "version": "TLS 1.2", "bytes": len(ext12.get("ocsp_response") or b"")}
    if TLS13 in supported:
        from .handshake import handshake
        hs = await handshake(p.target, deadline, versions=["TLS 1.3"], session_store=None,
                             ocsp_stapling=True)
        if hs.ok:
            der = hs.conn.negotiated.get("ocsp_response")
            status = hs.conn.negotiated.get("ocsp_status") or {}
            return {"stapled": bool(der), "version": "TLS 1.3", "bytes": len(der or b""),
                    "status": status.get("status")}
    return {"stapled": False}


def scan_target(target_json: dict, options_json: dict | None = None) -> dict:
    """The scan of one target as a plain function of JSON inputs (for fleets: it runs on
    any Dask worker).  ``options_json``: ``time_limit_s`` (or ``limit``), ``active``,
    ``against`` (a Mozilla configuration), ``ca_file`` (for targets without their own),
    ``max_connections_per_second`` and ``max_concurrent_connections`` (the fleet's
    politeness share for this target).  Never raises for what a server does."""
    import dataclasses
    options = options_json or {}
    try:
        target = ScanTarget.from_json(target_json)
    except (TypeError, ValueError) as e:
        return {"target": target_json,
                "error": {"code": "bad-target", "message": f"bad target: {e}", "retryable": False}}
    if options.get("ca_file") and not target.ca_file:
        target = dataclasses.replace(target, ca_file=options["ca_file"])
    limit = float(options.get("time_limit_s") or options.get("limit") or DEFAULT_LIMIT)
    return asyncio.run(scan(target, limit=limit, active=bool(options.get("active", True)),
                            against=options.get("against"),
                            rate=options.get("max_connections_per_second"),
                            concurrency=int(options.get("max_concurrent_connections") or 4)))


__all__ = ["scan", "scan_target", "DEFAULT_LIMIT", "scheme_name", "suite_name"]
