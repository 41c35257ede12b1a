"""Active vulnerability checks: crafted messages that make a vulnerable server show itself.

Each check is ``async def check_X(target: ScanTarget, deadline: float) -> CheckResult``
(``deadline`` an absolute :func:`time.monotonic` time) and lives in its own module under
:mod:`tlslab.scan.active`:

* :func:`check_heartbleed`     CVE-2014-0160, RFC 6520 §4
* :func:`check_ccs_injection`  CVE-2014-0224, RFC 5246 §7.1
* :func:`check_robot`          ROBOT (Bleichenbacher oracle), RFC 5246 §7.4.7.1
* :func:`check_ticketbleed`    CVE-2016-9244, RFC 5077 §3.4

They are proved against the lab's scenarios of the same names (``tlslab serve --scenario
heartbleed`` ...), whose servers misbehave through the engine's LAB ONLY options, and must
stay quiet on healthy servers (tests/test_scan_vulns.py).
"""
from __future__ import annotations

import asyncio
import time

from .active.ccs_injection import check_ccs_injection
from .active.heartbleed import check_heartbleed
from .active.result import CheckResult
from .active.robot import check_robot
from .active.ticketbleed import check_ticketbleed

#: every active check by the name its result carries (the keys of doc["vulnerabilities"])
ACTIVE_CHECKS = {"HEARTBLEED": check_heartbleed, "CCS_INJECTION": check_ccs_injection,
                 "ROBOT": check_robot, "TICKETBLEED": check_ticketbleed}
_LEGACY = ("SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2")


async def run_active_checks(target, deadline: float | None = None,
                            names=None) -> list[CheckResult]:
    """The checks in ``names`` (default: all), one after the other (ROBOT alone opens up to
    31 connections; running the checks in parallel would only load the target more); a
    check never raises for what a server does: it reports ``vulnerable=None`` and why."""
    if deadline is None:
        deadline = time.monotonic() + 120
    results = []
    for name in names or ACTIVE_CHECKS:
        try:
            results.append(await ACTIVE_CHECKS[name](target, deadline))
        except (asyncio.TimeoutError, OSError) as e:
            results.append(CheckResult(name, None, f"not decided: {type(e).__name__}: {e}",
                                       {"error": str(e), "connections": 0}))
    return results


async def run_all(target, deadline: float, doc: dict | None = None) -> list[CheckResult]:
    """What :func:`tlslab.scan.weaknesses.assess` calls: the four checks, skipping (without a
    connection) those the scan's findings in ``doc`` already rule out: all four when the
    server speaks no TLS 1.2 or older, ROBOT when it accepted no TLS_RSA_* suite."""
    doc = doc or {}
    protocols = doc.get("protocols")
    skipped: dict[str, str] = {}
    if protocols is not None and not any(protocols.get(v) for v in _LEGACY):
        for name in ACTIVE_CHECKS:
            skipped[name] = ("not applicable: the server speaks no TLS 1.2 or older (the scan "
                             "found only " + (", ".join(v for v, on in protocols.items() if on)
                                              or "nothing") + ")")
    suites = doc.get("cipher_suites")
    if suites is not None and "ROBOT" not in skipped:
        legacy = [n for v, part in suites.items() if v in _LEGACY for n in part.get("accepted", [])]
        if not any(n.startswith("TLS_RSA_") for n in legacy):
            skipped["ROBOT"] = ("not applicable: the scan found no static RSA key exchange "
                                "(no TLS_RSA_* suite accepted)")
    results = []
    for name, check in ACTIVE_CHECKS.items():
        if name in skipped:
            results.append(CheckResult(name, False, skipped[name],
                                       {"applicable": False, "connections": 0}))
        else:
            results += await run_active_checks(target, deadline, [name])
    return results


__all__ = ["ACTIVE_CHECKS", "CheckResult", "check_ccs_injection", "check_heartbleed",
           "check_robot", "check_ticketbleed", "run_active_checks", "run_all"]
