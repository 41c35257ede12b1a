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

#: every active check by name, in the order a report lists them
ACTIVE_CHECKS = {"heartbleed": check_heartbleed, "ccs-injection": check_ccs_injection,
                 "robot": check_robot, "ticketbleed": check_ticketbleed}


async def run_active_checks(target, deadline: float | None = None,
                            names=None) -> list[CheckResult]:
    """The checks in ``names`` (default: all), one after the other (ROBOT alone opens up to
    31 connections; running them in parallel would only hurt the target); a check that
    raises is reported as undecided, not propagated."""
    if deadline is None:
        deadline = time.monotonic() + 120
    results = []
    for name in names or ACTIVE_CHECKS:
        try:
            results.append(await ACTIVE_CHECKS[name](target, deadline))
        except (asyncio.TimeoutError, OSError) as e:
            results.append(CheckResult(name, None, f"not decided: {type(e).__name__}: {e}",
                                       {"error": str(e)}))
    return results


__all__ = ["ACTIVE_CHECKS", "CheckResult", "check_ccs_injection", "check_heartbleed",
           "check_robot", "check_ticketbleed", "run_active_checks"]
