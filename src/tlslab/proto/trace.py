"""What the engine emits for the workbench: every record, message, secret and transition.

The workbench (rendering, diagnosis) reads only this; it never reaches into
engine internals.  Secrets are recorded by *name* and length only, never their
value, unless the caller asked for a keylog (RFC: secrets are never logged).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldSpan:
    """One field of a parsed structure: name, offset and length within ``raw``, and a
    human value.  ``children`` holds nested structures (extensions, entries)."""

    name: str
    offset: int
    length: int
    value: Any = None
    children: list["FieldSpan"] = field(default_factory=list)


@dataclass(slots=True)
class TraceEntry:
    """One thing that happened.

    kind: "record" | "message" | "secret" | "state" | "alert" | "info" | "error"
    direction: "sent" | "received" | "local"
    """

    kind: str
    direction: str
    name: str
    time: float = 0.0
    raw: bytes = b""
    fields: list[FieldSpan] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    detail: str = ""
    #: the parsed structure (a Message) this entry is about, for lazily computed field spans
    message: Any = None

    def field_spans(self) -> list[FieldSpan]:
        """Spans of every field of ``raw`` (computed on first use from the message description)."""
        if not self.fields and self.message is not None:
            self.fields = self.message.spans
        return self.fields


class Trace:
    """An append-only list of :class:`TraceEntry` for one connection.

    Recording happens on every handshake, reading only when someone looks, so
    :meth:`add` keeps a plain tuple and :attr:`entries` builds the entry objects
    on first access.
    """

    #: entries kept per connection; later ones are only counted (a long-lived connection
    #: with a chatty peer must not grow without bound)
    MAX_ENTRIES = 4096

    def __init__(self, clock=None) -> None:
        self._pending: list[tuple] = []
        self._entries: list[TraceEntry] = []
        self._clock = clock if clock is not None else _no_clock
        self._count = 0
        self.dropped = 0

    def add(self, kind: str, direction: str, name: str, raw: bytes = b"",
            summary: dict | tuple | None = None, detail: str = "", message: Any = None) -> None:
        """Record one entry.  ``summary`` is a dict, or ``(builder, *facts)`` to build it
        only when the entry is read."""
        # called ~30 times per handshake and side: one counter, one clock read, one tuple
        count = self._count = self._count + 1
        if count > self.MAX_ENTRIES:
            self.dropped += 1
            return
        self._pending.append((kind, direction, name, self._clock(), raw, summary, detail, message))

    # The most frequent kinds keep their facts in the tuple and build the summary
    # dict only when the entry is read (a trace nobody reads costs a tuple each).  They
    # call add() with positional arguments: keywords cost a slower call on every entry.
    def record(self, direction: str, content_type: str, raw: bytes, length: int,
               protected: bool) -> None:
        """A record sent or received (RFC 8446 §5.1): its content type, length, protection."""
        self.add("record", direction, content_type, raw,
                 (_record_summary, content_type, length, protected))

    def message(self, direction: str, name: str, raw: bytes, message: Any) -> None:
        """A handshake message sent or received, with its bytes and the parsed structure
        (whose field spans are computed when someone asks)."""
        self.add("message", direction, name, raw, None, "", message)

    def state(self, name: str, previous: str) -> None:
        """A move of the state machine from ``previous`` to ``name``."""
        self.add("state", "local", name, b"", (_state_summary, previous))

    def secret_named(self, name: str, secret: bytes) -> None:
        """A secret derived, as a key schedule reports it (``on_secret(name, secret)``): by
        name and length only, the value is never kept."""
        self.add("secret", "local", name, b"", (_secret_summary, len(secret)))

    @property
    def entries(self) -> list[TraceEntry]:
        if self._pending:
            self._entries.extend(
                TraceEntry(k, d, n, t, raw, [], _summary(summary), detail, message)
                for (k, d, n, t, raw, summary, detail, message) in self._pending)
            self._pending.clear()
        return self._entries

    def of_kind(self, kind: str) -> list[TraceEntry]:
        return [e for e in self.entries if e.kind == kind]


def _no_clock() -> float:
    return 0.0


def _summary(summary) -> dict:
    if summary is None:
        return {}
    if type(summary) is tuple:   # (builder, *facts) from record(), state() or secret()
        return summary[0](*summary[1:])
    return summary


def _record_summary(content_type: str, length: int, protected: bool) -> dict:
    return {"content_type": content_type, "length": length, "protected": protected}


def _state_summary(previous: str) -> dict:
    return {"from": previous}


def _secret_summary(length: int) -> dict:
    return {"length": length}
