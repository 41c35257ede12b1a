"""Would these clients connect?  Every profile's own ClientHello (recorded bytes when the
profile has them), followed through the handshake and the profile's own certificate
verification; the reason, in the diagnosis vocabulary, for every client that would fail.

The plan is diagnose's (:class:`~tlslab.diagnose.plan.Diagnosis`) run for many profiles at
once: probes with the same ClientHello are sent once, and the probes that measure the
server (versions, suite families, groups) are shared by all profiles.
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from ..profiles import Profile
from .negotiation import client_cert_refusal, negotiated
from .plan import Diagnosis, Target

#: handshakes per profile on top of the shared ones (its own, and what explains a failure)
PER_PROFILE_HANDSHAKES = 10


@dataclass
class SimulationResult:
    profile: Profile
    connects: bool
    outcome: Any = None               # its own ProbeOutcome
    causes: list = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        ok = o is not None and negotiated(o)
        return {
            "profile": self.profile.name,
            "client": f"{self.profile.client} {self.profile.version}".strip(),
            "released": self.profile.released,
            "connects": self.connects,
            "version": o.version if ok else None,
            "cipher_suite": o.cipher_suite if ok else None,
            "group": o.group if ok else None,
            "signature_scheme": o.signature_scheme if ok else None,
            "alpn": o.alpn if ok else None,
            "recorded_client_hello": self.profile.offer.client_hello is not None,
            "handshake": (o.outcome_text() if o is not None and o.status != "skipped" else
                          "not tried: " + (self.causes[0].summary if self.causes else
                                           "the time or handshake budget ran out")),
            "causes": [{"code": c.code, "summary": c.summary, "evidence": c.evidence}
                       for c in self.causes],
        }


@dataclass
class Simulation:
    target: str
    server_name: str
    results: list[SimulationResult]
    handshakes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    elapsed_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "server_name": self.server_name,
                "results": [r.to_json() for r in self.results],
                "connects": sum(r.connects for r in self.results),
                "fails": sum(not r.connects for r in self.results),
                "warnings": [w.to_json() for w in self.warnings],
                "handshake_count": sum(1 for h in self.handshakes if h.status != "skipped"),
                "elapsed_ms": round(self.elapsed_ms, 1)}


async def simulate(target: Target, profiles: list[Profile],
                   now: datetime.datetime | None = None) -> Simulation:
    start = time.monotonic()
    d = Diagnosis(target, profiles, now, other_profiles=False,
                  max_handshakes=40 + PER_PROFILE_HANDSHAKES * len(profiles))
    report = await d.run()
    results = []
    for p in profiles:
        causes = list(d.per_profile.get(p.name, []))
        outcome = d.profile_outcomes.get(p.name)
        if not causes and outcome is not None and not negotiated(outcome):
            # the transport cause was found once, for the first profile: it is everyone's
            causes = [c for c in report.causes if c.code != "ok"]
        if outcome is not None and client_cert_refusal(outcome) and not any(
                c.code == "client-certificate-required" for c in causes):
            causes = causes + [c for c in report.causes if c.code == "client-certificate-required"]
        results.append(SimulationResult(p, connects=not causes, outcome=outcome, causes=causes))
    return Simulation(target=target.text, server_name=target.server_name, results=results,
                      handshakes=report.handshakes, warnings=report.warnings,
                      elapsed_ms=(time.monotonic() - start) * 1000)
