"""The diagnosis as data: causes, warnings, the probes that ran.

JSON shape (DESIGN.md "Diagnosis vocabulary"), keys kept stable::

    {"target", "ok", "causes": [{"code", "summary", "evidence", "fixes"}], "handshakes": [...],
     "warnings": [{"code", "summary", "evidence"}], "profiles": {...}, "other_profiles": [...]}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the diagnosis vocabulary (DESIGN.md), in the order causes are reported
VOCABULARY = (
    "ok", "connection-refused", "timeout", "not-tls",
    "protocol-version-mismatch", "no-common-cipher", "no-common-group",
    "no-common-signature-algorithm", "sni-required", "alpn-mismatch",
    "client-certificate-required",
    "missing-intermediate", "untrusted-root", "self-signed", "expired", "not-yet-valid",
    "hostname-mismatch", "no-san", "weak-key", "sha1-signature", "wrong-key-usage",
)


@dataclass
class Cause:
    code: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fixes: list[dict[str, Any]] = field(default_factory=list)
    #: the profiles this cause breaks
    profiles: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "summary": self.summary, "evidence": self.evidence,
                "fixes": self.fixes, "profiles": self.profiles}


@dataclass
class Warning_:
    """Something that does not break this client but deserves attention."""

    code: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "summary": self.summary, "evidence": self.evidence}


@dataclass
class Report:
    target: str
    server_name: str | None
    profiles: list[str]
    causes: list[Cause] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    handshakes: list[Any] = field(default_factory=list)   # ProbeOutcome
    other_profiles: list[dict[str, Any]] = field(default_factory=list)
    elapsed_ms: float = 0.0
    chain: list[dict[str, Any]] = field(default_factory=list)
    written_chain: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.code == "ok" for c in self.causes)

    def add_cause(self, cause: Cause) -> None:
        """Merge by code: one cause per code, with the profiles it breaks."""
        for c in self.causes:
            if c.code == cause.code:
                for p in cause.profiles:
                    if p not in c.profiles:
                        c.profiles.append(p)
                return
        self.causes.append(cause)

    def sort(self) -> None:
        order = {code: i for i, code in enumerate(VOCABULARY)}
        self.causes.sort(key=lambda c: order.get(c.code, len(order)))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "server_name": self.server_name,
            "ok": self.ok,
            "profiles": self.profiles,
            "causes": [c.to_json() for c in self.causes],
            "warnings": [w.to_json() for w in self.warnings],
            "other_profiles": self.other_profiles,
            "chain": self.chain,
            "written_chain": self.written_chain,
            "handshakes": [h.to_json() for h in self.handshakes],
            "handshake_count": sum(1 for h in self.handshakes if h.status != "skipped"),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "notes": self.notes,
        }
