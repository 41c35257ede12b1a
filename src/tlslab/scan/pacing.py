"""How fast one scan opens connections: a token bucket every connection of the scan waits
on (hellos, engine handshakes and the active checks all open theirs through
:func:`.wire.open_stream`), and the count of connections made.

The pacer of the running scan is found through a context variable, so the tasks a scan
starts inherit it without being handed it, and two scans in one process never share one.
"""
from __future__ import annotations

import asyncio
import contextvars
import time


class Pacer:
    """At most ``rate`` connections per second (None: no limit), counted in :attr:`count`."""

    def __init__(self, rate: float | None = None, burst: int = 4) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self.count = 0

    async def acquire(self) -> None:
        self.count += 1
        if self.rate is None:
            return
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)


CURRENT: contextvars.ContextVar[Pacer | None] = contextvars.ContextVar("tlslab_scan_pacer",
                                                                       default=None)


async def before_connection() -> None:
    """Wait for the running scan's pacer (if any); called before every connection."""
    pacer = CURRENT.get()
    if pacer is not None:
        await pacer.acquire()
