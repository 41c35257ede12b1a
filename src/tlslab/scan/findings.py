"""The scan's findings, each saying whom it hurts: ``add_findings(doc)``.

A finding is ``{"id", "severity", "title", "evidence", "affects", "fix", "fixes",
"fix_id"}``.  ``affects`` is computed, not written: the client profiles
(``tlslab.profiles``) are judged against the document (:mod:`.simulation`), then against
the document as it would be after the fix ("TLS 1.0 off"), so that

- ``clients_broken`` lists the profiles that can no longer connect once the fix is made
  (``broken_when: "after-fix"``), or that cannot connect now because of the finding
  (``broken_when: "now"``: an expired certificate, only DHE suites);
- ``clients_at_risk`` lists the profiles that connect today *using* the weakness (they
  negotiate TLS 1.0, RC4, a 1024-bit DH group ...).

``fix`` maps each server stack to what to do; ``fixes`` holds the same with the
configuration example and the vendor documentation it comes from (``scan/fixes/*.toml``,
diagnose's format).  The rules live in :mod:`.findings_weak` (vulnerabilities, cipher
suites, key exchange) and :mod:`.findings_setup` (versions, extensions, certificates).
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable

from ..profiles.model import Profile
from .fixes import server_fixes
from .simulation import ClientOutcome, Judge, all_profiles

SEVERITIES = ("critical", "high", "medium", "low", "info")
#: profiles released within this many days count as current clients: a finding that
#: locks them out is serious, one that locks out a 2013 client is expected
CURRENT_DAYS = 3 * 366


@dataclass
class Context:
    """What every rule needs: the document, the profiles, today's outcomes."""

    doc: dict
    profiles: list[Profile]
    judge: Judge
    now: datetime.datetime
    baseline: dict[str, ClientOutcome] = field(default_factory=dict)
    #: the handshakes alone, certificates set aside: a finding about versions or suites
    #: is judged on these, so that a broken chain (everyone fails) does not hide whom
    #: turning TLS 1.0 off would lock out
    handshakes: dict[str, ClientOutcome] = field(default_factory=dict)
    hs_judge: Judge | None = None
    #: profiles whose failure today a finding already explains
    explained: set[str] = field(default_factory=set)

    def outcomes(self, doc: dict, judge: Judge | None = None) -> dict[str, ClientOutcome]:
        j = judge or self.judge
        return {p.name: j.judge(doc, p) for p in self.profiles}

    def broken_by(self, what_if: dict) -> list[str]:
        """Profiles whose handshake completes today and would not in ``what_if`` (the
        fixed server)."""
        after = self.outcomes(what_if, self.hs_judge)
        return [n for n, o in self.handshakes.items() if o.ok and not after[n].ok]

    def fixed_by(self, what_if: dict) -> list[str]:
        """Profiles whose handshake fails today and would complete in ``what_if``."""
        after = self.outcomes(what_if, self.hs_judge)
        return [n for n, o in self.handshakes.items() if not o.ok and after[n].ok]

    def using(self, pred: Callable[[ClientOutcome], bool]) -> list[str]:
        """Profiles whose handshake completes today with what ``pred`` looks for."""
        return [n for n, o in self.handshakes.items() if o.ok and pred(o)]

    def failing_with(self, code: str) -> list[str]:
        return [n for n, o in self.baseline.items() if not o.ok and code in o.codes]

    def connecting(self) -> list[str]:
        return [n for n, o in self.handshakes.items() if o.ok]

    def fix_context(self, **more: Any) -> dict[str, Any]:
        t = self.doc.get("target") or {}
        ctx = {"host": t.get("server_name") or t.get("host"), "port": t.get("port"),
               "address": t.get("host")}
        ctx.update(more)
        return ctx

    def is_current(self, name: str) -> bool:
        p = next((q for q in self.profiles if q.name == name), None)
        try:
            released = datetime.date.fromisoformat(p.released) if p and p.released else None
        except ValueError:
            released = None
        return released is not None and (self.now.date() - released).days <= CURRENT_DAYS


def names_text(names: list[str], limit: int = 6) -> str:
    if len(names) <= 1:
        return "".join(names)
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return ", ".join(names[:-1]) + " and " + names[-1]


def finding(ctx: Context, fid: str, severity: str, title: str, evidence: str, fix_id: str | None, *,
            broken: list[str] | None = None, at_risk: list[str] | None = None,
            broken_when: str = "after-fix", fix_what: str = "the fix",
            fix_context: dict[str, Any] | None = None,
            fixes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One finding in the document's shape (the keys are a stable contract)."""
    broken = list(broken or [])
    at_risk = list(at_risk or [])
    if broken_when == "now":
        ctx.explained.update(broken)
        summary = (f"{names_text(broken)} cannot connect now." if broken else
                   "No client profile is locked out by it.")
    else:
        summary = (f"Fix ({fix_what}): {names_text(broken)} can no longer connect." if broken else
                   f"Fix ({fix_what}): no client profile loses its connection.")
    if at_risk:
        many = len(at_risk) != 1
        summary += (f" {len(at_risk)} profile{'s' if many else ''} use{'' if many else 's'} it "
                    f"today: {names_text(at_risk, 4)}.")
    if fixes is None:
        fixes = server_fixes(fix_id, ctx.fix_context(**(fix_context or {}))) if fix_id else []
    fix_map: dict[str, str] = {}
    for f in fixes:
        text = f["text"] + (f"\n{f['example']}" if f.get("example") else "")
        fix_map[f["stack"]] = fix_map[f["stack"]] + "\n" + text if f["stack"] in fix_map else text
    return {"id": fid, "severity": severity, "title": title, "evidence": evidence,
            "affects": {"clients_broken": broken, "clients_at_risk": at_risk,
                        "broken_when": broken_when, "summary": summary},
            "fix": fix_map, "fixes": fixes, "fix_id": fix_id}


def _clients_finding(ctx: Context) -> dict[str, Any] | None:
    """Clients that fail for a reason no other finding explains, grouped by reason."""
    rest = [o for n, o in ctx.baseline.items() if not o.ok and n not in ctx.explained]
    if not rest:
        return None
    by_code: dict[str, list[str]] = {}
    for o in rest:
        by_code.setdefault(o.codes[0] if o.codes else "unknown", []).append(o.profile)
    evidence = "; ".join(f"{code}: {names_text(names, 8)}" for code, names in by_code.items())
    current = [o.profile for o in rest if ctx.is_current(o.profile)]
    severity = "high" if current else "info"
    title = (f"{len(rest)} client profile{'s' if len(rest) != 1 else ''} cannot connect"
             + (f", {len(current)} of them current" if current else " (all of them old clients)"))
    # old clients failing is the price of a current configuration: no fix is offered for
    # them; for current ones, the fix of their most common reason
    codes = [ctx.baseline[n].codes[0] for n in current if ctx.baseline[n].codes]
    main = max(set(codes), key=codes.count) if codes else None
    fix_id = {"protocol-version-mismatch": "enable-tls12", "no-common-cipher": "add-ecdhe-suites",
              "no-common-group": "add-ecdhe-suites"}.get(main or "")
    return finding(ctx, "clients-cannot-connect", severity, title, evidence, fix_id,
                   broken=[o.profile for o in rest], broken_when="now")


def _mozilla_findings(ctx: Context, against: str) -> list[dict[str, Any]]:
    """One finding per deviation from the configuration the user named."""
    from .mozilla import guidelines
    from .simulation import without_suites, without_versions
    conf = guidelines()[against]
    out = []
    seen: dict[str, int] = {}
    for d in ctx.doc["mozilla"]["configurations"][against]["deviations"]:
        aspect = d["aspect"]
        seen[aspect] = seen.get(aspect, 0) + 1  # one certificate aspect per chain
        fid = f"mozilla-{against}-{aspect.replace('_', '-')}" + (f"-{seen[aspect]}" if seen[aspect] > 1 else "")
        broken: list[str] = []
        if aspect == "protocols_off":
            off = [v for v, on in (ctx.doc.get("protocols") or {}).items() if on and v not in conf["protocols"]]
            broken = ctx.broken_by(without_versions(ctx.doc, off))
        elif aspect == "cipher_suites":
            allowed = set(conf["cipher_suites"]) | set(conf["tls13_cipher_suites"])
            broken = ctx.broken_by(without_suites(ctx.doc, lambda s: s not in allowed))
        fixes = [{"stack": stack, "text": f"Mozilla {against} (guidelines {guidelines()['version']}) sets it so:",
                  "example": line,
                  "source": guidelines()["source"]} for stack, line in d["fix"].items()]
        severity = "medium" if aspect in ("protocols_off", "protocols_on", "cipher_suites") else "low"
        out.append(finding(ctx, fid, severity, f"Mozilla {against}: {d['change']}", d["evidence"], None,
                           broken=broken, fix_what=f"meeting {against} on this point", fixes=fixes))
    return out


def add_findings(doc: dict, against: str | None = None, *, trust: list | None = None,
                 now: datetime.datetime | None = None, profiles: list[Profile] | None = None) -> None:
    """Add ``doc["findings"]`` (sorted by severity), ``doc["simulation"]`` (every client
    profile's outcome, decided without connecting) and ``doc["mozilla"]`` (the comparison
    with the guidelines; with ``against``, findings for each deviation from it).

    ``trust``: the CA certificates the scan judged by (default: the target's ``ca_file``
    in the document; without either, whether a chain is trusted is taken from the scan's
    own verdict in ``certificates[i]["problems"]``)."""
    from .findings_setup import certificate_findings, extension_findings, protocol_findings
    from .findings_weak import suite_findings, vulnerability_findings
    from .mozilla import comparison
    now = now or datetime.datetime.now(datetime.timezone.utc)
    doc["mozilla"] = comparison(doc, against)
    if doc.get("error") or not any((doc.get("protocols") or {}).values()):
        doc["findings"], doc["simulation"] = [], []
        return
    trust_known = trust is not None or bool((doc.get("target") or {}).get("ca_file"))
    if trust is None:
        trust = _trust_for(doc)
    ctx = Context(doc, profiles or all_profiles(), Judge(trust=trust, now=now, trust_known=trust_known), now)
    ctx.baseline = ctx.outcomes(doc)
    ctx.hs_judge = Judge(trust=trust, now=now, check_certificates=False)
    ctx.handshakes = ctx.outcomes(doc, ctx.hs_judge)
    doc["simulation"] = [o.to_json() for o in ctx.baseline.values()]
    found: list[dict[str, Any]] = []
    for rule in (certificate_findings, protocol_findings, vulnerability_findings, suite_findings,
                 extension_findings):
        found += [f for f in rule(ctx) if f]
    if against:
        found += _mozilla_findings(ctx, against)
    generic = _clients_finding(ctx)
    if generic:
        found.append(generic)
    found.sort(key=lambda f: (SEVERITIES.index(f["severity"]), f["id"].startswith("mozilla-"), f["id"]))
    doc["findings"] = found


def _trust_for(doc: dict) -> list:
    from ..proto.cert_store import load_trust_store
    try:
        return load_trust_store((doc.get("target") or {}).get("ca_file"))
    except (OSError, ValueError):
        return []
