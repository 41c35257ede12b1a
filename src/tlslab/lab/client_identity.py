"""Which known client a ClientHello looks like: its JA4, and the closest profile of the
library, remembered per kind of ClientHello and computed at a bounded rate (a server
under load cannot pay ~15 ms of CPU for every client).  Used by the server's
explanation of each client (:mod:`.clientview`)."""
from __future__ import annotations

import time
from typing import Any

#: below this similarity a client is said to look like no known profile
LOOKS_LIKE_THRESHOLD = 0.9


#: ``looks_like`` when the comparison was skipped: too many unfamiliar ClientHellos at once
NOT_COMPARED = "(not compared: too many unfamiliar clients at once)"
#: comparisons with the library kept (by what the ClientHello offers), and how many new
#: ones a second: one costs ~15 ms of CPU (difflib over ~30 profiles), which a server under
#: load (tlslab serve's single event loop) cannot pay for every client
_MATCHES_KEPT = 512
_NEW_MATCHES_PER_SECOND = 10.0


class _MatchCache:
    """The closest-profile answers per kind of ClientHello, and a token bucket for new
    ones (thread-safe: the threaded server explains clients from many threads)."""

    def __init__(self) -> None:
        import collections
        import threading
        self._answers: "collections.OrderedDict[tuple, str | None]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._tokens = _NEW_MATCHES_PER_SECOND
        self._stamp = time.monotonic()

    def get(self, key: tuple) -> tuple[bool, str | None]:
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return True, self._answers[key]
            return False, None

    def may_compute(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(_NEW_MATCHES_PER_SECOND,
                               self._tokens + (now - self._stamp) * _NEW_MATCHES_PER_SECOND)
            self._stamp = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def put(self, key: tuple, answer: str | None) -> None:
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > _MATCHES_KEPT:
                self._answers.popitem(last=False)


_MATCHES = _MatchCache()


def _offer_key(hello: Any, fp: str) -> tuple:
    """What the comparison with the library depends on (extension order aside: Chrome
    shuffles it on every connection, and it weighs little in the score)."""
    from ..profiles import fingerprint as f
    return (fp, tuple(f.suites(hello)), tuple(sorted(f.extension_types(hello))),
            tuple(f.groups(hello)), tuple(f.signature_algorithms(hello)),
            tuple(f.versions(hello)), tuple(f.alpn(hello)))


def fingerprint_of(trace: Any) -> tuple[str | None, str | None]:
    """(JA4, the closest profile) of the ClientHello the server received, from the trace's
    parsed message; (None, None) without one.  The closest profile is remembered per kind
    of ClientHello; past :data:`_NEW_MATCHES_PER_SECOND` unfamiliar ones a second it is
    :data:`NOT_COMPARED`."""
    from ..profiles.fingerprint import closest_profiles, ja4
    hello = None
    for e in getattr(trace, "entries", []):
        if e.kind == "message" and e.name == "ClientHello" and e.direction == "received":
            hello = e.message
    if hello is None:
        return None, None
    try:
        fp = ja4(hello).fingerprint
        key = _offer_key(hello, fp)
        known, answer = _MATCHES.get(key)
        if known:
            return fp, answer
        if not _MATCHES.may_compute():
            return fp, NOT_COMPARED
        best = closest_profiles(hello, _known_hellos(), limit=1)
    except Exception:  # a fingerprint is a courtesy: an odd hello must not break the log
        return None, None
    answer = _looks_like(best)
    _MATCHES.put(key, answer)
    return fp, answer


def _looks_like(best: list) -> str | None:
    if not best or best[0].similarity < LOOKS_LIKE_THRESHOLD:
        return None
    m = best[0]
    if not m.exact:
        return f"{m.name} ({m.similarity:.2f} similar)"
    others = list(getattr(m, "same_ja4", None) or [])
    more = f"; also {', '.join(others[:3])}{' …' if len(others) > 3 else ''}" if others else ""
    return f"{m.name} (same JA4{more})"


_KNOWN: list | None = None


def _known_hellos() -> list:
    """The library's recorded ClientHellos, parsed once per process."""
    global _KNOWN
    if _KNOWN is None:
        from ..profiles.fingerprint import known_hellos
        _KNOWN = known_hellos()
    return _KNOWN
