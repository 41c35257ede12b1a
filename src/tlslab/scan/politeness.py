"""Politeness of a fleet: how fast, and how many at once, tlslab connects to servers.

Both limits are enforced by the fleet driver (the one process that submits scans to the
cluster), not by the workers: the driver sees every target, so one token bucket and one
set of per-host counters bound the whole fleet however many workers there are.  Each
scan gets its own share in its options (``max_connections_per_second``,
``max_concurrent_connections``) and paces the connections it makes itself; the driver
then keeps the number of scans in flight so that the shares add up to the overall limits
(:func:`in_flight_limit`).  The driver is single-threaded, so nothing here locks.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.  :meth:`take` never blocks:
    the driver has results to collect while it waits for the next token."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate / 10))
        self.clock = clock
        self.tokens = self.burst
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens and return 0, or take nothing and return how many seconds
        until there will be enough."""
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class HostLimiter:
    """At most ``limit`` scans at once per host (the host as written: a name and its
    address are two hosts to it; resolving thousands of names in the driver would cost
    more than it saves)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.active: Counter[str] = Counter()

    @staticmethod
    def key(host: str) -> str:
        return host.strip("[]").lower().rstrip(".")

    def can_start(self, host: str) -> bool:
        return self.active[self.key(host)] < self.limit

    def start(self, host: str) -> None:
        self.active[self.key(host)] += 1

    def finish(self, host: str) -> None:
        k = self.key(host)
        self.active[k] -= 1
        if self.active[k] <= 0:
            del self.active[k]


#: scans submitted per worker thread: one running and one queued behind it, so that a
#: worker starts its next scan at once instead of idling through the round trip to the
#: driver and back (measured: ~45 ms a task on 2 cores, as long as a loopback scan)
QUEUE_DEPTH = 2


def in_flight_limit(*, worker_threads: int, max_rate: float, per_target_rate: float,
                    max_in_flight: int | None = None) -> int:
    """How many scans may be submitted at once: :data:`QUEUE_DEPTH` per cluster thread
    (more would only wait on the cluster, eating into their time limits), and few enough
    that their connection rates add up to ``max_rate``."""
    by_rate = max(1, int(max_rate // per_target_rate))
    limit = min(max(1, worker_threads) * QUEUE_DEPTH, by_rate)
    if max_in_flight is not None:
        limit = min(limit, max(1, max_in_flight))
    return limit


def backoff_delay(attempt: int, base: float, cap: float = 60.0) -> float:
    """Seconds before retry number ``attempt`` (1, 2, ...): ``base``, 2×, 4× ... capped."""
    return min(cap, base * (2 ** (attempt - 1)))
