"""Findings about known weaknesses and the cipher suites: from ``doc["vulnerabilities"]``
with ``doc["vulnerability_evidence"]``, and from the suites accepted per version.

Each weakness names the fix that removes it, and the what-if document of that fix
(:mod:`.simulation`), from which :mod:`.findings` computes the clients it would lock out.
References: RFC 7457 (summary of known attacks), RFC 7465 (RC4), RFC 7568 (SSL 3.0),
RFC 6176 (SSL 2.0), CVE entries named in each title.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from .findings import Context, finding
from .registry import suites
from .simulation import ClientOutcome, without_suites, without_versions

_BLOCK64 = ("3DES", "DES", "IDEA", "RC2")


def _table() -> dict[str, Any]:
    return {s.name: s for s in suites().values()}


def _is(pred: Callable[[Any], bool]) -> Callable[[str], bool]:
    table = _table()
    return lambda name: name in table and pred(table[name])


def _negotiates(pred: Callable[[str], bool]) -> Callable[[ClientOutcome], bool]:
    return lambda o: bool(o.cipher_suite) and pred(o.cipher_suite)


def _accepted(doc: dict, pred: Callable[[str], bool]) -> list[str]:
    out: list[str] = []
    for v, part in (doc.get("cipher_suites") or {}).items():
        out += [s for s in part.get("accepted") or [] if pred(s) and s not in out]
    return out


#: name in doc["vulnerabilities"] -> (finding id, severity, title, what the fix removes)
_SUITE_WEAKNESSES: dict[str, tuple[str, str, str, Callable[[Any], bool]]] = {
    "SWEET32": ("sweet32", "medium", "64-bit block ciphers (SWEET32, CVE-2016-2183)",
                lambda s: s.cipher.startswith(_BLOCK64) or "_DES" in s.cipher),
    "FREAK": ("freak", "high", "RSA export suites (FREAK, CVE-2015-0204)",
              lambda s: s.export and s.kx == "RSA"),
    "LOGJAM": ("logjam", "high", "DH export suites (Logjam, CVE-2015-4000)",
               lambda s: s.export and s.kx in ("DHE", "DH")),
    "RC4": ("rc4", "high", "RC4 suites accepted (prohibited by RFC 7465)", lambda s: "RC4" in s.cipher),
    "LUCKY13": ("lucky13", "low", "CBC suites (Lucky Thirteen timing, CVE-2013-0169)", lambda s: s.cbc),
    "STATIC_RSA": ("static-rsa", "medium", "RSA key exchange: no forward secrecy", lambda s: s.kx == "RSA"),
    "NULL_OR_ANON": ("null-or-anon", "critical", "Suites without encryption or without authentication",
                     lambda s: s.null_cipher or s.anonymous),
}
#: weaknesses fixed by turning a version off
_VERSION_WEAKNESSES = {
    "POODLE": ("poodle", "high", "SSL 3.0 with CBC suites (POODLE, CVE-2014-3566)", ["SSL 3.0"]),
    "DROWN": ("drown", "critical", "SSL 2.0 on (DROWN, CVE-2016-0800)", ["SSL 2.0"]),
    "BEAST": ("beast", "low", "CBC suites in TLS 1.0 (BEAST, CVE-2011-3389)", ["SSL 3.0", "TLS 1.0"]),
}
#: weaknesses of the implementation, found by the active checks
_ACTIVE = {
    "HEARTBLEED": ("heartbleed", "critical", "Heartbleed: the server leaks memory (CVE-2014-0160)"),
    "CCS_INJECTION": ("ccs-injection", "high", "Early ChangeCipherSpec accepted (CCS injection, CVE-2014-0224)"),
    "ROBOT": ("robot", "high", "RSA padding oracle (ROBOT, CVE-2017-13099 and others)"),
    "TICKETBLEED": ("ticketbleed", "high", "Ticketbleed: session IDs leak memory (CVE-2016-9244)"),
}


def vulnerability_findings(ctx: Context) -> list[dict[str, Any]]:
    doc = ctx.doc
    vulns = doc.get("vulnerabilities") or {}
    ev = doc.get("vulnerability_evidence") or {}
    out = []
    undecided = []
    for name, value in vulns.items():
        evidence = str(ev.get(name, ""))
        if value is None:
            undecided.append(f"{name}: {evidence}" if evidence else name)
            continue
        if not value:
            continue
        if name in _SUITE_WEAKNESSES:
            fid, sev, title, pred = _SUITE_WEAKNESSES[name]
            hit = _is(pred)
            named = _accepted(doc, hit)
            out.append(finding(ctx, fid, sev, title, evidence, "remove-weak-suites",
                               broken=ctx.broken_by(without_suites(doc, hit)),
                               at_risk=ctx.using(_negotiates(hit)),
                               fix_what="removing these suites",
                               fix_context={"suites": ", ".join(named)}))
        elif name in _VERSION_WEAKNESSES:
            fid, sev, title, versions = _VERSION_WEAKNESSES[name]
            off = [v for v in versions if (doc.get("protocols") or {}).get(v)]
            cbc = _is(lambda s: s.cbc)
            out.append(finding(ctx, fid, sev, title, evidence, "disable-old-protocols",
                               broken=ctx.broken_by(without_versions(doc, off)),
                               at_risk=ctx.using(lambda o: o.version in versions and
                                                 (name != "BEAST" or cbc(o.cipher_suite or ""))),
                               fix_what=f"turning {' and '.join(off)} off",
                               fix_context={"versions": ", ".join(off)}))
        elif name == "WEAK_DH":
            out.append(_weak_dh(ctx, evidence))
        elif name in _ACTIVE:
            fid, sev, title = _ACTIVE[name]
            if name == "ROBOT":
                rsa = _is(lambda s: s.kx == "RSA")
                out.append(finding(ctx, fid, sev, title, evidence, "robot",
                                   broken=ctx.broken_by(without_suites(doc, rsa)),
                                   at_risk=ctx.using(_negotiates(rsa)),
                                   fix_what="removing the RSA key-exchange suites"))
            else:
                # every client that connects talks to the flawed implementation
                out.append(finding(ctx, fid, sev, title, evidence, fid, at_risk=ctx.connecting(),
                                   fix_what="updating"))
        else:
            # a check this module does not know yet: reported as the scan says it
            out.append(finding(ctx, name.lower().replace("_", "-"), "high", f"{name} detected",
                               evidence, None))
    if undecided:
        out.append(finding(ctx, "checks-undecided", "info",
                           f"{len(undecided)} check{'s' if len(undecided) != 1 else ''} could not be decided",
                           "; ".join(undecided), None))
    return out


def _weak_dh(ctx: Context, evidence: str) -> dict[str, Any]:
    doc = ctx.doc
    fixed = copy.deepcopy(doc)
    dh = (fixed.get("groups") or {}).get("dh_parameters")
    if dh:
        dh["bits"], dh["group"] = 2048, "ffdhe2048"
    dhe = _is(lambda s: s.kx == "DHE")
    return finding(ctx, "weak-dh", "medium", "DHE with a group smaller than 2048 bits", evidence, "weak-dh",
                   broken=ctx.broken_by(fixed), at_risk=ctx.using(_negotiates(dhe)),
                   fix_what="moving to a 2048-bit group")


def suite_findings(ctx: Context) -> list[dict[str, Any]]:
    """No forward secrecy, no AEAD, only DHE, the client choosing among weak suites."""
    doc = ctx.doc
    table = _table()
    every = _accepted(doc, lambda s: s in table)
    known = [table[s] for s in every]
    out = []
    if not known:
        return out
    if not any(s.forward_secret for s in known):
        out.append(finding(ctx, "no-forward-secrecy", "high", "No forward secrecy with any client",
                           f"no accepted suite has an ephemeral key exchange (accepted: {', '.join(every[:4])}"
                           + (f" and {len(every) - 4} more)" if len(every) > 4 else ")"),
                           "add-ecdhe-suites", at_risk=ctx.connecting(), fix_what="adding ECDHE suites"))
    if not any(s.aead for s in known):
        out.append(finding(ctx, "no-aead", "medium", "No AEAD cipher (GCM, ChaCha20-Poly1305) accepted",
                           "every accepted suite uses CBC or a stream cipher with a separate MAC",
                           "add-ecdhe-suites", at_risk=ctx.connecting(), fix_what="adding AEAD suites"))
    protocols = doc.get("protocols") or {}
    if (not protocols.get("TLS 1.3") and any(s.kx == "DHE" for s in known)
            and not any(s.kx == "ECDHE" for s in known)):
        what_if = copy.deepcopy(doc)
        ecdhe = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                 "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]
        for part in (what_if.get("cipher_suites") or {}).values():
            part["accepted"] = ecdhe + list(part.get("accepted") or [])
        g = what_if.setdefault("groups", {})
        g["accepted"] = list(dict.fromkeys(list(g.get("accepted") or []) + ["x25519", "secp256r1", "secp384r1"]))
        g["per_version"] = {}
        out.append(finding(ctx, "dhe-only", "high", "Only DHE key exchange: browsers cannot connect",
                           "forward-secret suites accepted are all finite-field DHE (no ECDHE, no TLS 1.3); "
                           "browsers offer no DHE suites", "add-ecdhe-suites",
                           broken=ctx.fixed_by(what_if), broken_when="now"))
    sigs = (doc.get("signature_algorithms") or {}).get("TLS 1.2") or []
    legacy = [s for s in sigs if s.endswith(("_md5", "_sha1"))]
    if legacy:
        fixed = copy.deepcopy(doc)
        fixed["signature_algorithms"]["TLS 1.2"] = [s for s in sigs if s not in legacy]
        out.append(finding(ctx, "weak-signature-schemes", "low",
                           "MD5 or SHA-1 signatures accepted in TLS 1.2 (deprecated by RFC 9155)",
                           f"the server signs TLS 1.2 key exchanges with {', '.join(legacy)} when asked",
                           "weak-signature-schemes", broken=ctx.broken_by(fixed),
                           at_risk=ctx.using(lambda o: o.signature_scheme in legacy),
                           fix_what="allowing SHA-256 and stronger only"))
    weak_order = [v for v, part in (doc.get("cipher_suites") or {}).items()
                  if v != "TLS 1.3" and part.get("server_order") is False and _mixed(part, table)]
    if weak_order:
        strong = lambda n: n in table and table[n].aead and table[n].forward_secret  # noqa: E731
        out.append(finding(ctx, "no-server-order", "low",
                           "The client picks the suite, and weak suites are still accepted",
                           f"{', '.join(weak_order)}: the server follows the client's order and accepts "
                           "suites without forward secrecy or AEAD next to strong ones",
                           "server-cipher-order",
                           at_risk=ctx.using(lambda o: o.version in weak_order and bool(o.cipher_suite)
                                             and not strong(o.cipher_suite)),
                           fix_what="letting the server choose"))
    return out


def _mixed(part: dict, table: dict) -> bool:
    names = [table[s] for s in part.get("accepted") or [] if s in table]
    strong = [s for s in names if s.aead and s.forward_secret]
    return bool(strong) and len(strong) < len(names)
