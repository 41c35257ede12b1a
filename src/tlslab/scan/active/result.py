"""What an active check returns: the verdict and the evidence that decided it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CheckResult:
    """One active check against one server.

    ``vulnerable``: True, False, or None when it could not be decided (``evidence`` then
    says why).  ``evidence``: what was sent and what came back, in words a reader can check
    against a capture.  ``details``: the same facts for machines (alerts by name, sizes,
    the leaked bytes in hex, per-variant answers).
    """

    name: str
    vulnerable: bool | None
    evidence: str
    details: dict = field(default_factory=dict)

    @property
    def applicable(self) -> bool:
        """False when the server lacks what the attack needs (no RSA key exchange, no
        tickets, no TLS 1.0-1.2): then ``vulnerable`` is False."""
        return self.details.get("applicable", True)

    def to_json(self) -> dict:
        return asdict(self)


__all__ = ["CheckResult"]
