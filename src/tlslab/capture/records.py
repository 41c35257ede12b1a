"""One direction of a TCP stream cut into TLS records, as it arrives.

Records are split by the engine's :class:`tlslab.proto.record.RecordReader` (RFC 8446
§5.1 / RFC 5246 §6.2 framing: type, version, 16-bit length): nothing here reads a
record header by other rules, except to *find* where records start again.

Two situations need that search, because TCP gives bytes without boundaries:

- a **gap** (bytes never captured): the record that was cut is lost, and the next
  record starts at an unknown place after it;
- a capture that **starts mid-connection**: the first captured byte is anywhere inside
  a record.

:func:`find_record_chain` looks for a position where two record headers follow each
other exactly (type 20-23, version 3.x, a length within RFC 5246 §6.2.3's limit, and
the next header where that length says).  A false match in random bytes needs 6
specific header bytes twice: about one chance in 10^13 per position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..proto.errors import TLSError
from ..proto.record import HEADER_LEN, MAX_CIPHERTEXT12, RecordReader

#: bytes of one direction held while looking for where TLS starts or resumes
SEARCH_LIMIT = 1 << 16

#: a plausible record header start: content type 20-23, major version 3, minor 0-4
_HEADER = re.compile(rb"[\x14-\x17]\x03[\x00-\x04]", re.S)


def _length_at(buf, i: int) -> int:
    return (buf[i + 3] << 8) | buf[i + 4]


def find_record_chain(buf: bytes | bytearray, start: int = 0, final: bool = False
                      ) -> tuple[int | None, int]:
    """Where a run of TLS records starts in ``buf[start:]``.

    Returns ``(position, resume)``: ``position`` is the first offset where two plausible
    record headers follow each other exactly (or, with ``final``, where records run
    exactly to the end of ``buf``), else None; ``resume`` is where a later call should
    start looking (bytes before it can be dropped) when more bytes arrive."""
    n = len(buf)
    pos = start
    while True:
        m = _HEADER.search(buf, pos)
        if m is None:
            return None, max(start, n - 4)
        i = m.start()
        if i + HEADER_LEN > n:
            return None, i
        j, count = i, 0
        while j + HEADER_LEN <= n and buf[j] in (20, 21, 22, 23) and buf[j + 1] == 3 \
                and buf[j + 2] <= 4 and 0 < _length_at(buf, j) <= MAX_CIPHERTEXT12:
            j += HEADER_LEN + _length_at(buf, j)
            count += 1
            if count >= 2:
                return i, i
        if count == 1 and j >= n:
            if final and j == n:
                return i, i
            if not final:
                return None, i   # the next header is not here yet: look again from i
        pos = i + 1


@dataclass
class Record:
    """One record: ``offset`` is the position of its header in the direction's stream."""

    offset: int
    header: bytes
    fragment: bytes

    @property
    def content_type(self) -> int:
        return self.header[0]


class RecordSplitter:
    """Bytes of one direction in, :class:`Record` objects out.

    Modes: ``"search"`` (before TLS is found: bytes are held, up to
    :data:`SEARCH_LIMIT`, for the caller to look at), ``"tls"`` (framing by the
    engine's reader), ``"resync"`` (after a gap or a framing error: looking for the next
    record boundary), ``"off"`` (not TLS: bytes are counted and dropped).
    """

    def __init__(self) -> None:
        self.mode = "search"
        #: stream offset of the next byte to be fed
        self.received = 0
        #: held bytes (search / resync) and the stream offset of their first byte
        self.held = bytearray()
        self.held_at = 0
        self._look_from = 0
        self._reader: RecordReader | None = None
        self._next = 0          # stream offset of the next record in "tls" mode
        #: (stream offset, bytes) skipped while resynchronising, and why
        self.skipped: list[tuple[int, int, str]] = []
        self.error: str | None = None
        self._resync_reason = ""

    # -- feeding -------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Record]:
        start = self.received
        self.received += len(data)
        if self.mode == "tls":
            self._reader.add(data)
            return self._drain()
        if self.mode == "off" or not data:
            return []
        if self.mode == "search":
            room = SEARCH_LIMIT - len(self.held)
            # only bytes that continue the held ones: after a gap nothing more is held
            if room > 0 and self.held_at + len(self.held) == start:
                self.held += data[:room]
            return []
        if not self.held:
            self.held_at = start
        self.held += data
        return self._resync(final=False)

    def start_at(self, offset: int) -> list[Record]:
        """TLS starts at stream ``offset`` (within or after the held bytes)."""
        held, held_at = bytes(self.held), self.held_at
        self.held = bytearray()
        self._begin(offset)
        if offset < held_at + len(held):
            self._reader.add(held[max(0, offset - held_at):])
        if self.received > held_at + len(held) and self.received > offset:
            # bytes past the search limit were counted but not held: framing is lost there
            self.gap(0, "search-limit")
        return self._drain() if self.mode == "tls" else []

    def resync_from_held(self, reason: str, final: bool = False) -> list[Record]:
        """No ClientHello was found: look for records in the held bytes (a capture that
        starts mid-connection)."""
        self.mode = "resync"
        self._resync_reason = reason
        self._look_from = 0
        return self._resync(final)

    def stop(self, why: str) -> None:
        """This direction is not TLS (or is no longer followed): drop what comes."""
        self.mode = "off"
        self.held = bytearray()
        self.error = self.error or why

    def gap(self, length: int, reason: str) -> None:
        """``length`` bytes were not captured here: the record they cut is lost."""
        if self.mode == "tls":
            pending = len(self._reader)
            self.skipped.append((self._next, pending + length, reason))
        elif self.mode == "resync":
            self.skipped.append((self.held_at, len(self.held) + length, reason))
        else:
            self.received += length   # search: the held bytes stop here; off: nothing to do
            return
        self.mode = "resync"
        self._resync_reason = reason
        self.received += length
        self.held = bytearray()
        self.held_at = self.received
        self._look_from = 0
        self._reader = None

    def finish(self) -> tuple[list[Record], str | None]:
        """End of the stream: the records a final look finds, and what was left
        incomplete (a record cut by the end of the capture), in words."""
        out: list[Record] = []
        left = None
        if self.mode == "resync":
            out = self._resync(final=True)
        if self.mode == "tls" and self._reader is not None and len(self._reader):
            n = len(self._reader)
            left = (f"the stream ends {n} bytes into a record at byte {self._next}"
                    f" (the rest of it is not in the capture)")
        elif self.mode == "resync" and self.held:
            self.skipped.append((self.held_at, len(self.held), self._resync_reason or "resync"))
            self.held = bytearray()
        return out, left

    # -- internals -----------------------------------------------------------------
    def _begin(self, offset: int) -> None:
        self.mode = "tls"
        self._reader = RecordReader()
        self._next = offset

    def _drain(self) -> list[Record]:
        out: list[Record] = []
        reader = self._reader
        while True:
            try:
                rec = reader.next_record(protected=True, tls12=True)
            except TLSError as e:
                # not (or no longer) TLS framing here: what the reader holds is given up
                # (a corrupt stream is rare; the bytes that follow are searched again)
                self.error = f"byte {self._next}: {' '.join(str(e).split())}"
                self.skipped.append((self._next, len(reader), "framing"))
                self.mode = "resync"
                self._resync_reason = "framing"
                self._reader = None
                self.held = bytearray()
                self.held_at = self.received
                self._look_from = 0
                return out
            if rec is None:
                return out
            header, fragment = rec
            out.append(Record(self._next, header, fragment))
            self._next += HEADER_LEN + len(fragment)

    def _resync(self, final: bool) -> list[Record]:
        held = self.held
        pos, resume = find_record_chain(held, self._look_from, final)
        if pos is None:
            # keep only what a later match could still start in
            drop = min(resume, len(held))
            if len(held) - drop > SEARCH_LIMIT:
                drop = len(held) - SEARCH_LIMIT
            if drop:
                self._skip(drop)
            self._look_from = resume - drop if resume >= drop else 0
            return []
        if pos:
            self._skip(pos)
        rest = bytes(self.held)
        at = self.held_at
        self.held = bytearray()
        self._begin(at)
        self._reader.add(rest)
        return self._drain()

    def _skip(self, n: int) -> None:
        if self.skipped and self.skipped[-1][0] + self.skipped[-1][1] == self.held_at:
            off, length, why = self.skipped[-1]
            self.skipped[-1] = (off, length + n, why)
        else:
            self.skipped.append((self.held_at, n, self._resync_reason or "resync"))
        del self.held[:n]
        self.held_at += n
