"""Known weaknesses: those the scan's answers already decide, and the active checks that
need crafted messages (Heartbleed, CCS injection, ROBOT, Ticketbleed; :mod:`.vulns_active`).

Each entry of ``doc["vulnerabilities"]`` is True (exposed), False (not exposed) or None
(could not be decided, with why), and ``doc["vulnerability_evidence"]`` says what decided it.
"""
from __future__ import annotations

from .registry import suites


def _accepted_codes(doc: dict) -> dict[str, list[int]]:
    by_name = {s.name: s.code for s in suites().values()}
    return {v: [by_name[n] for n in part.get("accepted", []) if n in by_name]
            for v, part in (doc.get("cipher_suites") or {}).items() if v != "SSL 2.0"}


def passive(doc: dict) -> tuple[dict[str, bool | None], dict[str, str]]:
    """The weaknesses decided by what the server accepted."""
    table = suites()
    per_version = _accepted_codes(doc)
    protocols = doc.get("protocols") or {}
    every = [c for codes in per_version.values() for c in codes]

    def named(pred, versions=None) -> list[str]:
        out = []
        for v, codes in per_version.items():
            if versions and v not in versions:
                continue
            out += [table[c].name for c in codes if pred(table[c]) and table[c].name not in out]
        return out

    vulns: dict[str, bool | None] = {}
    ev: dict[str, str] = {}

    def put(name: str, hits: list[str], what: str, none: str) -> None:
        vulns[name] = bool(hits)
        ev[name] = (f"{what}: {', '.join(hits[:6])}" + (f" and {len(hits) - 6} more" if len(hits) > 6 else "")
                    if hits else none)

    block64 = ("3DES", "DES", "IDEA", "RC2")
    put("SWEET32", named(lambda s: s.cipher.startswith(block64) or "_DES" in s.cipher),
        "64-bit block ciphers accepted (CVE-2016-2183)", "no 64-bit block cipher accepted")
    put("FREAK", named(lambda s: s.export and s.kx == "RSA"),
        "RSA export suites accepted (CVE-2015-0204)", "no RSA export suite accepted")
    put("LOGJAM", named(lambda s: s.export and s.kx in ("DHE", "DH")),
        "DH export suites accepted (CVE-2015-4000)", "no DH export suite accepted")
    ssl3_cbc = named(lambda s: s.cbc, ["SSL 3.0"])
    put("POODLE", ssl3_cbc, "SSL 3.0 with CBC suites (CVE-2014-3566)",
        "SSL 3.0 is off" if not protocols.get("SSL 3.0") else "SSL 3.0 without CBC suites")
    beast = named(lambda s: s.cbc, ["SSL 3.0", "TLS 1.0"])
    put("BEAST", beast, "CBC suites in TLS 1.0 or SSL 3.0 (CVE-2011-3389; clients mitigate it "
        "with 1/n-1 splitting)", "no CBC suite below TLS 1.1")
    put("RC4", named(lambda s: "RC4" in s.cipher), "RC4 suites accepted (RFC 7465 prohibits them)",
        "no RC4 suite accepted")
    vulns["DROWN"] = bool(protocols.get("SSL 2.0"))
    ev["DROWN"] = ("SSL 2.0 is enabled on this port (CVE-2016-0800); any server sharing this "
                   "key is exposed too" if vulns["DROWN"] else
                   "SSL 2.0 is off on this port (other servers sharing the key are not checked)")
    put("LUCKY13", named(lambda s: s.cbc, ["TLS 1.0", "TLS 1.1", "TLS 1.2"]),
        "CBC suites accepted, whose MAC-then-encrypt timing must be constant (CVE-2013-0169)",
        "no CBC suite accepted")
    dh = (doc.get("groups") or {}).get("dh_parameters")
    if dh:
        vulns["WEAK_DH"] = dh["bits"] < 2048
        ev["WEAK_DH"] = f"DHE uses a {dh['bits']}-bit group" + (f" ({dh['group']})" if dh.get("group") else "")
    else:
        has_dhe = any(table[c].kx == "DHE" for c in every)
        vulns["WEAK_DH"] = None if has_dhe else False
        ev["WEAK_DH"] = "DHE accepted but its group could not be read" if has_dhe else "no DHE suite accepted"
    put("STATIC_RSA", named(lambda s: s.kx == "RSA"),
        "RSA key exchange accepted (no forward secrecy)", "no RSA key exchange suite accepted")
    put("NULL_OR_ANON", named(lambda s: s.null_cipher or s.anonymous),
        "suites without encryption or without authentication accepted", "none accepted")
    return vulns, ev


async def assess(doc: dict, prober, deadline: float, suite_results: dict, *, active: bool) -> None:
    """Fill ``doc["vulnerabilities"]`` and ``doc["vulnerability_evidence"]``."""
    vulns, ev = passive(doc)
    if active:
        from .vulns_active import run_all
        for r in await run_all(prober.target, deadline, doc):
            vulns[r.name] = r.vulnerable
            ev[r.name] = r.evidence
    doc["vulnerabilities"] = vulns
    doc["vulnerability_evidence"] = ev
