"""Injected randomness and time.

The engine never calls ``os.urandom`` or reads a clock itself: everything goes
through a :class:`Provider`, so that tests can replay RFC 8448 byte for byte with
a :class:`ReplayProvider`.
"""
from __future__ import annotations

import os
import time
from typing import Iterable


class Provider:
    """Source of randomness and wall-clock time for one connection."""

    def random(self, n: int) -> bytes:
        """``n`` cryptographically secure random bytes."""
        return os.urandom(n)

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    def private_key(self, group: str):
        """A fresh private key for ``group`` (IANA name), or ``None`` to let the
        group implementation generate one.  Replay providers return fixed keys."""
        return None

    def recorded_signature(self, scheme: int) -> bytes | None:
        """A recorded signature to use instead of signing, or ``None`` to sign.

        RSA-PSS and ECDSA signatures are randomised inside ``cryptography``, where
        the randomness cannot be injected; replaying a recorded trace therefore
        replays the recorded signature (the engine still verifies it before use).
        """
        return None


class ReplayProvider(Provider):
    """Returns pre-recorded random values and keys, in order (for known-answer tests).

    ``randoms`` is consumed in order by :meth:`random`; a request for a length
    that does not match the next value is an error, so a replay cannot silently
    drift.  ``keys`` maps a group name to a list of private keys (objects from
    ``cryptography``) handed out in order.
    """

    def __init__(self, randoms: Iterable[bytes] = (), keys: dict | None = None,
                 now: float = 1_700_000_000.0, signatures: Iterable[bytes] = ()) -> None:
        self._randoms = list(randoms)
        self._signatures = list(signatures)
        self._keys = {k: list(v) for k, v in (keys or {}).items()}
        self._now = now

    def random(self, n: int) -> bytes:
        if not self._randoms:
            raise RuntimeError(f"ReplayProvider: no recorded random value left (wanted {n} bytes)")
        value = self._randoms.pop(0)
        if len(value) != n:
            raise RuntimeError(f"ReplayProvider: next value has {len(value)} bytes, wanted {n}")
        return value

    def time(self) -> float:
        return self._now

    def private_key(self, group: str):
        keys = self._keys.get(group)
        if keys:
            return keys.pop(0)
        return None

    def recorded_signature(self, scheme: int) -> bytes | None:
        return self._signatures.pop(0) if self._signatures else None
