"""TCP stream reassembly (RFC 9293): a capture's packets in, each connection's two byte
streams out.

    from tlslab.capture import read_connections
    for conn in read_connections("trace.pcapng"):
        conn.client, conn.server          # Endpoint: .host, .port; str() "[::1]:4433"
        conn.client_bytes, conn.server_bytes
        conn.gaps                         # [Gap(direction, at, length, reason)]

What the reassembler does, and the choices it makes:

- **Connections** are keyed by the 4-tuple; both directions, IPv4 and IPv6.  Who is the
  client: the sender of a SYN without ACK, else the receiver of a SYN+ACK; a capture that
  starts mid-connection has neither, so the endpoint with the lower port is taken as the
  server (``conn.roles == "guessed"``; TLS code that finds a ClientHello coming from the
  "server" may swap them with :meth:`Connection.swapped`).
- **Sequence numbers** are unwrapped to 64-bit stream offsets relative to the SYN (or, with
  no SYN, to the first data segment seen), so streams longer than 4 GiB and ISNs near
  2^32 work.
- **Out-of-order segments** wait in a per-direction buffer until the bytes before them
  arrive; **retransmissions** of bytes already delivered are dropped.
- **Overlaps: the first data wins.**  When two segments disagree about the same stream
  bytes, the bytes seen first in the capture are kept and the later ones counted in
  ``conn.conflicts`` (Linux and the BSDs keep the first copy too; Windows kept the last
  in old versions: an IDS evasion trick, not normal traffic).
- **SYN / FIN / RST**: data after a FIN's sequence number is ignored; a RST ends the
  connection (``conn.end == "reset"``).  A new SYN with another ISN on a 4-tuple whose
  connection is over starts a new connection (port reuse).
- **Gaps**: bytes never captured (a lost packet, a snap length, a fragment) cannot be
  invented.  The stream bytes skip them and ``conn.gaps`` says where (``at``: position in
  ``client_bytes`` / ``server_bytes``), how many bytes are missing, and why.
- **Bounded memory** (the limits are keyword arguments of :func:`read_connections`):
  ``max_out_of_order`` bytes wait per direction (1 MiB): past it the earliest hole is
  declared a gap ("buffer-limit") and the bytes after it are delivered;
  ``max_stream_bytes`` bytes are kept per direction (64 MiB): later bytes are counted,
  not kept (one "size-limit" gap at the end); ``max_connections`` connections are open
  at once (10,000): past it the least recently active one is finished early and yielded
  with ``end == "evicted"`` (its later packets, if any, start a new, mid-stream
  connection).  Nothing else is dropped silently: the packet counts by reason are in
  :attr:`Capture.stats`.
- **Streaming**: packets are read one at a time; a connection is yielded as soon as it is
  over (both FINs delivered, or a RST), the others at the end of the file, so a
  connection's ``index`` (order of its first packet, from 0, like Wireshark's
  ``tcp.stream``) rather than the iteration order gives file order.
"""
from __future__ import annotations

import bisect
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

from . import packets as pk
from .files import CaptureFile

_MASK = 0xFFFFFFFF
_HALF = 1 << 31
#: streaming (:meth:`Capture.stream`): stream bytes kept per direction to compare
#: retransmissions with (first data wins either way; only conflicts older than this are
#: not counted)
STREAM_WINDOW = 4096

CLIENT, SERVER = "client", "server"

#: gap reasons
MISSING = "missing"            # never in the capture (lost, cut by the snap length, fragment)
BUFFER_LIMIT = "buffer-limit"  # given up on: too many bytes waited behind it
SIZE_LIMIT = "size-limit"      # captured, but not kept: over max_stream_bytes
GAP_REASONS = {
    MISSING: "bytes not in the capture (a packet lost or cut short)",
    BUFFER_LIMIT: "bytes still missing when the out-of-order buffer was full",
    SIZE_LIMIT: "bytes not kept: over the size limit per stream",
}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Gap:
    """``length`` stream bytes of ``direction`` that are not in the reassembled bytes; they
    belong at position ``at`` of ``client_bytes`` / ``server_bytes``."""

    direction: str
    at: int
    length: int
    reason: str

    def describe(self) -> str:
        return (f"{self.direction} bytes: {self.length} missing at byte {self.at} "
                f"({GAP_REASONS.get(self.reason, self.reason)})")


@dataclass(frozen=True)
class Delivery:
    """Bytes ``start:end`` of ``direction`` became available with the packet captured at
    ``time`` (packet ``packet``); in capture order, both directions interleaved."""

    direction: str
    start: int
    end: int
    time: float
    packet: int


class _Half:
    """One direction of a connection: its sequence space, bytes and out-of-order buffer."""

    __slots__ = ("base", "isn", "next", "data", "kept_limit", "skipped", "high",
                 "run_start", "pending", "starts", "pending_bytes", "fin", "gaps",
                 "retransmitted", "conflicts", "mid_stream", "conn", "limit_gap", "trimmed",
                 "direction")

    def __init__(self, conn: "Connection", kept_limit: int) -> None:
        self.conn = conn
        self.base: int | None = None   # sequence number of stream offset 0
        self.isn: int | None = None
        self.next = 0                  # stream offset of the next byte expected
        self.data = bytearray()
        self.kept_limit = kept_limit
        self.skipped = 0               # stream bytes not in data (gaps)
        self.run_start = 0             # stream offset where the current gap-free run began
        self.pending: dict[int, tuple[bytes, float, int]] = {}
        self.starts: list[int] = []
        self.pending_bytes = 0
        self.fin: int | None = None
        self.high = 0                  # end of the furthest segment seen (by its length)
        #: (at, length, reason): the direction is the connection's to say (see swapped())
        self.gaps: list[tuple[int, int, str]] = []
        self.retransmitted = 0
        self.conflicts = 0
        self.mid_stream = False
        self.limit_gap = False
        #: bytes dropped from the front of ``data`` (streaming: only a window is kept)
        self.trimmed = 0
        self.direction = ""

    # -- sequence space ------------------------------------------------------------
    def syn(self, seq: int) -> None:
        self.isn = seq
        self.base = (seq + 1) & _MASK

    def offset(self, seq: int) -> int:
        """Stream offset of ``seq``: the unwrapped value nearest to what we expect next."""
        rel = (seq - self.base) & _MASK
        return self.next + ((rel - self.next + _HALF) & _MASK) - _HALF

    # -- data in ---------------------------------------------------------------------
    def add(self, seq: int, payload: bytes, length: int, time: float, packet: int) -> None:
        if self.base is None:
            # no SYN seen in this direction: the capture starts mid-stream
            self.base = seq
            self.mid_stream = True
        start = self.offset(seq)
        end = start + len(payload)
        # a segment cut short by the snap length: the rest is a hole, unless retransmitted
        self.high = max(self.high, start + length)
        if self.fin is not None and end > self.fin:
            payload = payload[:max(0, self.fin - start)]
            end = start + len(payload)
        if start < 0:  # before the first byte this capture has of the stream
            payload, start = (payload[-start:] if end > 0 else b""), max(start, 0)
        if end <= self.next:
            if payload:
                self._compare(start, payload)
                self.retransmitted += len(payload)
            return
        if start < self.next:
            cut = self.next - start
            self._compare(start, payload[:cut])
            self.retransmitted += cut
            payload, start = payload[cut:], self.next
        if start == self.next:
            self._deliver(payload, time, packet)
            self._drain()
        else:
            self._buffer(start, payload, time, packet)
            limit = self.conn.limits.max_out_of_order
            while self.pending_bytes > limit and self.starts:
                self._skip_to(self.starts[0], BUFFER_LIMIT)
                self._drain()

    def set_fin(self, seq: int) -> None:
        if self.base is None:
            self.base = seq
            self.mid_stream = True
        at = self.offset(seq)
        if self.fin is None or at < self.fin:
            self.fin = max(at, self.next)

    @property
    def done(self) -> bool:
        """All bytes up to the FIN are delivered."""
        return self.fin is not None and self.next >= self.fin and not self.starts

    def _compare(self, start: int, payload: bytes) -> None:
        """First data wins; count a retransmission that disagrees with what we kept."""
        if start < self.run_start:
            return
        pos = start - self.skipped - self.trimmed
        if pos < 0:  # streaming: bytes before the kept window are not compared
            payload = payload[-pos:]
            pos = 0
        kept = self.data[pos:pos + len(payload)]
        if kept and kept != payload[:len(kept)]:
            self.conflicts += 1

    def _deliver(self, payload: bytes, time: float, packet: int) -> None:
        if not payload:
            return
        room = self.kept_limit - len(self.data)
        if room < len(payload):
            kept = payload[:max(room, 0)]
            lost = len(payload) - len(kept)
            if kept:
                self._record(kept, time, packet)
            at = len(self.data) + self.trimmed
            if self.limit_gap and self.gaps and self.gaps[-1][2] == SIZE_LIMIT:
                self.gaps[-1] = (at, self.gaps[-1][1] + lost, SIZE_LIMIT)
            else:
                self.gaps.append((at, lost, SIZE_LIMIT))
                self.limit_gap = True
            self.skipped += lost
            self.next += lost
            self.run_start = self.next
            return
        self._record(payload, time, packet)

    def _record(self, payload: bytes, time: float, packet: int) -> None:
        at = len(self.data) + self.trimmed
        self.data += payload
        self.next += len(payload)
        conn = self.conn
        if conn._sink is not None:
            # streaming: the bytes go to the consumer; only a window stays, for _compare
            conn._sink.append(("data", conn, self.direction, bytes(payload), time))
            extra = len(self.data) - STREAM_WINDOW
            if extra > STREAM_WINDOW:
                del self.data[:extra]
                self.trimmed += extra
            return
        conn._delivered(self, at, at + len(payload), time, packet)

    def _buffer(self, start: int, payload: bytes, time: float, packet: int) -> None:
        """Keep the parts of ``payload`` not already waiting (first data wins)."""
        end = start + len(payload)
        starts, pending = self.starts, self.pending
        i = bisect.bisect_right(starts, start) - 1
        if i < 0 or starts[i] + len(pending[starts[i]][0]) <= start:
            i += 1
        cur = start
        pieces = []
        while i < len(starts) and starts[i] < end:
            ps = starts[i]
            pb = pending[ps][0]
            pe = ps + len(pb)
            if ps > cur:
                pieces.append((cur, payload[cur - start:ps - start]))
            lo, hi = max(cur, ps), min(end, pe)
            if lo < hi:
                self.retransmitted += hi - lo
                if pb[lo - ps:hi - ps] != payload[lo - start:hi - start]:
                    self.conflicts += 1
            cur = max(cur, pe)
            i += 1
        if cur < end:
            pieces.append((cur, payload[cur - start:]))
        for s, b in pieces:
            bisect.insort(starts, s)
            pending[s] = (b, time, packet)
            self.pending_bytes += len(b)

    def _drain(self) -> None:
        starts, pending = self.starts, self.pending
        while starts and starts[0] <= self.next:
            s = starts.pop(0)
            b, time, packet = pending.pop(s)
            self.pending_bytes -= len(b)
            if s + len(b) <= self.next:
                self.retransmitted += len(b)
                continue
            self._deliver(b[self.next - s:], time, packet)

    def _skip_to(self, offset: int, reason: str) -> None:
        if offset <= self.next:
            return
        n = offset - self.next
        self.gaps.append((len(self.data) + self.trimmed, n, reason))
        if self.conn._sink is not None:
            self.conn._sink.append(("gap", self.conn, self.direction, n, reason))
        self.skipped += n
        self.next = offset
        self.run_start = offset
        self.limit_gap = False

    def finish(self) -> None:
        """End of the connection or of the capture: every hole left is a gap."""
        while self.starts:
            self._skip_to(self.starts[0], MISSING)
            self._drain()
        end = self.fin if self.fin is not None else self.high
        if self.next < end:
            self._skip_to(end, MISSING)


@dataclass
class Limits:
    max_out_of_order: int = 1 << 20
    max_stream_bytes: int = 64 << 20
    max_connections: int = 10_000


class Connection:
    """One TCP connection of a capture, both directions reassembled.

    Attributes: ``index`` (order of its first packet, from 0), ``client`` / ``server``
    (:class:`Endpoint`), ``client_bytes`` / ``server_bytes``, ``gaps`` (:class:`Gap`, both
    directions), ``roles`` ("syn": from the SYN, "syn-ack": from the SYN+ACK, "guessed":
    lower port = server, "swapped": a guess turned round by :meth:`swapped`),
    ``started_mid_stream`` (a direction had no SYN in the capture),
    ``end`` ("fin", "reset", "open": still open at the end of the capture, "evicted"),
    ``first_time`` / ``last_time``, ``packets``, ``timeline`` (:class:`Delivery`),
    ``retransmitted`` bytes and ``conflicts`` (overlaps whose bytes differed).
    """

    def __init__(self, index: int, client: tuple[bytes, int], server: tuple[bytes, int],
                 roles: str, limits: Limits, time: float) -> None:
        self.index = index
        self._client_key = client
        self._server_key = server
        self.client = Endpoint(pk.address_text(client[0]), client[1])
        self.server = Endpoint(pk.address_text(server[0]), server[1])
        self.roles = roles
        self.limits = limits
        self._halves = {CLIENT: _Half(self, limits.max_stream_bytes),
                        SERVER: _Half(self, limits.max_stream_bytes)}
        for direction, half in self._halves.items():
            half.direction = direction
        #: streaming: where deliveries and gaps go as events (see Capture.stream)
        self._sink: list | None = None
        self.end = "open"
        self.first_time = self.last_time = time
        self.packets = 0
        self.timeline: list[Delivery] = []
        self.finished = False

    # -- results ---------------------------------------------------------------------
    @property
    def client_bytes(self) -> bytes:
        return bytes(self._halves[CLIENT].data)

    @property
    def server_bytes(self) -> bytes:
        return bytes(self._halves[SERVER].data)

    def data(self, direction: str) -> bytes:
        """``client_bytes`` or ``server_bytes`` by name ("client" / "server")."""
        return bytes(self._halves[direction].data)

    def first_bytes(self, direction: str, n: int) -> bytes:
        return bytes(self._halves[direction].data[:n])

    @property
    def gaps(self) -> list[Gap]:
        """Client gaps, then server gaps, each in stream order."""
        return self.gaps_in(CLIENT) + self.gaps_in(SERVER)

    def gaps_in(self, direction: str) -> list[Gap]:
        return [Gap(direction, at, n, reason) for at, n, reason in self._halves[direction].gaps]

    @property
    def started_mid_stream(self) -> bool:
        return any(h.mid_stream for h in self._halves.values())

    @property
    def retransmitted(self) -> int:
        return sum(h.retransmitted for h in self._halves.values())

    @property
    def conflicts(self) -> int:
        return sum(h.conflicts for h in self._halves.values())

    def swapped(self) -> "Connection":
        """The same connection with client and server exchanged (for a guess that the
        bytes prove wrong), for a connection already yielded: a new object, with the
        roles ``"swapped"``."""
        other = Connection.__new__(Connection)
        other.__dict__.update(self.__dict__)
        other.client, other.server = self.server, self.client
        other._client_key, other._server_key = self._server_key, self._client_key
        other._halves = {CLIENT: self._halves[SERVER], SERVER: self._halves[CLIENT]}
        flip = {CLIENT: SERVER, SERVER: CLIENT}
        other.timeline = [Delivery(flip[d.direction], d.start, d.end, d.time, d.packet)
                          for d in self.timeline]
        other.roles = "swapped"
        return other

    def __repr__(self) -> str:
        return (f"<Connection {self.index} {self.client} -> {self.server} "
                f"{len(self._halves[CLIENT].data)}/{len(self._halves[SERVER].data)} bytes, "
                f"{len(self.gaps)} gaps, {self.end}>")

    # -- reassembly --------------------------------------------------------------------
    def _delivered(self, half: _Half, start: int, end: int, time: float, packet: int) -> None:
        direction = CLIENT if half is self._halves[CLIENT] else SERVER
        tl = self.timeline
        if tl and tl[-1].direction == direction and tl[-1].packet == packet and tl[-1].end == start:
            tl[-1] = Delivery(direction, tl[-1].start, end, tl[-1].time, packet)
        else:
            tl.append(Delivery(direction, start, end, time, packet))

    def _direction(self, src: tuple[bytes, int]) -> str:
        return CLIENT if src == self._client_key else SERVER

    def _segment(self, seg: pk.Segment, time: float, packet: int) -> None:
        self.packets += 1
        self.last_time = time
        direction = self._direction((seg.src, seg.sport))
        half = self._halves[direction]
        flags = seg.flags
        seq = seg.seq
        if flags & pk.SYN:
            if half.isn is None and not half.data:
                half.syn(seq)
                half.mid_stream = False
            other = self._halves[SERVER if direction == CLIENT else CLIENT]
            if flags & pk.ACK and other.base is None:
                # a SYN+ACK whose SYN was not captured acknowledges the client's ISN + 1
                other.isn, other.base = (seg.ack - 1) & _MASK, seg.ack
            seq = (seq + 1) & _MASK
        if (seg.payload or seg.length) and not flags & pk.RST:  # RST text is not stream data
            half.add(seq, seg.payload, seg.length, time, packet)
        if flags & pk.FIN:
            half.set_fin((seq + seg.length) & _MASK)
        if flags & pk.RST:
            self.end = "reset"

    @property
    def over(self) -> bool:
        if self.end == "reset":
            return True
        c, s = self._halves[CLIENT], self._halves[SERVER]
        return c.done and s.done

    def _finish(self, end: str | None = None) -> None:
        for h in self._halves.values():
            h.finish()
        if end is not None:
            self.end = end
        elif self.end == "open" and self._halves[CLIENT].fin is not None \
                and self._halves[SERVER].fin is not None:
            self.end = "fin"
        self.finished = True


@dataclass
class Capture:
    """A capture being read: :meth:`connections` yields them, :attr:`stats` and
    :attr:`problems` tell what was not used and why."""

    file: CaptureFile
    limits: Limits = field(default_factory=Limits)
    stats: Counter = field(default_factory=Counter)

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    @property
    def problems(self) -> list[str]:
        out = list(self.file.problems)
        unsupported = {k: v for k, v in self.stats.items() if k.startswith("link type ")}
        for k, v in sorted(unsupported.items()):
            out.append(f"{v} packets skipped: {k} is not supported")
        if self.stats.get(pk.FRAGMENT):
            out.append(f"{self.stats[pk.FRAGMENT]} IP fragments not reassembled "
                       "(their bytes are gaps in the streams)")
        if self.stats.get("evicted"):
            out.append(f"{self.stats['evicted']} connections finished early: more than "
                       f"{self.limits.max_connections} open at once")
        return out

    def connections(self) -> Iterator[Connection]:
        """Every connection, each yielded when it is over (or at the end of the file) with
        both directions' bytes held (see the module documentation)."""
        for event in self._run(streaming=False):
            if event[0] == "close":
                yield event[1]

    def stream(self) -> Iterator[tuple]:
        """The capture as events, in capture order, without holding the streams' bytes:

        - ``("open", conn)``: a new connection (its ``client``/``server`` as guessed so far);
        - ``("data", conn, direction, data, time)``: bytes of ``direction`` ("client" /
          "server") that just became contiguous, in stream order;
        - ``("gap", conn, direction, length, reason)``: bytes of ``direction`` that will
          never come (see :data:`GAP_REASONS`);
        - ``("close", conn)``: the connection is over (``conn.end``, gaps, counters are
          final); its ``client_bytes`` / ``server_bytes`` are *not* kept in this mode.

        Memory per open connection: the out-of-order buffer and a small window of recent
        bytes (to notice retransmissions that disagree), not the stream."""
        return self._run(streaming=True)

    def _run(self, streaming: bool) -> Iterator[tuple]:
        limits = self.limits
        open_: OrderedDict[tuple, Connection] = OrderedDict()
        closed: OrderedDict[tuple, None] = OrderedDict()  # keys of connections yielded
        count = 0
        stats = self.stats
        sink: list = []
        kept = (1 << 62) if streaming else limits.max_stream_bytes

        def finish(conn: Connection, end: str | None = None) -> Iterator[tuple]:
            conn._finish(end)
            if sink:
                yield from sink
                sink.clear()
            yield ("close", conn)

        for packet in self.file.packets():
            stats["packets"] += 1
            seg = pk.decode(packet.linktype, packet.data)
            if isinstance(seg, str):
                if seg == pk.UNSUPPORTED_LINK:
                    seg = f"link type {packet.linktype}"
                stats[seg] += 1
                continue
            stats["tcp segments"] += 1
            a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
            key = (a, b) if a <= b else (b, a)
            conn = open_.get(key)
            flags = seg.flags
            syn_only = flags & pk.SYN and not flags & pk.ACK
            if conn is not None and syn_only:
                half = conn._halves[conn._direction(a)]
                if (half.isn is not None and half.isn != seg.seq) or \
                        (half.isn is None and (half.data or half.next)):
                    # port reuse: a new connection on the same 4-tuple
                    del open_[key]
                    yield from finish(conn)
                    conn = None
            if conn is None:
                if key in closed and not syn_only:
                    stats["after the end of their connection"] += 1
                    continue
                closed.pop(key, None)
                if syn_only:
                    client, server, roles = a, b, "syn"
                elif flags & pk.SYN:
                    client, server, roles = b, a, "syn-ack"
                elif seg.payload or seg.length:
                    # mid-connection: the lower port is the server's; a tie, the receiver
                    if seg.dport <= seg.sport:
                        client, server = a, b
                    else:
                        client, server = b, a
                    roles = "guessed"
                else:
                    stats["without a connection (no SYN, no data)"] += 1
                    continue
                conn = Connection(count, client, server, roles, limits, packet.time)
                if streaming:
                    conn._sink = sink
                    for half in conn._halves.values():
                        half.kept_limit = kept
                count += 1
                open_[key] = conn
                if len(open_) > limits.max_connections:
                    _, victim = open_.popitem(last=False)
                    stats["evicted"] += 1
                    yield from finish(victim, "evicted")
                if streaming:
                    yield ("open", conn)
            else:
                open_.move_to_end(key)
            conn._segment(seg, packet.time, packet.index)
            if sink:
                yield from sink
                sink.clear()
            if conn.over:
                del open_[key]
                closed[key] = None
                if len(closed) > 4 * limits.max_connections:
                    closed.popitem(last=False)
                yield from finish(conn)
        for conn in sorted(open_.values(), key=lambda c: c.index):
            yield from finish(conn)


def open_capture(path: str | os.PathLike, *, max_out_of_order: int = 1 << 20,
                 max_stream_bytes: int = 64 << 20, max_connections: int = 10_000) -> Capture:
    """Open a pcap or pcapng file for reading connections (:class:`CaptureError` if it is
    missing or not a capture)::

        with open_capture(path) as cap:
            for conn in cap.connections():
                ...
        cap.problems, cap.stats
    """
    return Capture(CaptureFile.open(path), Limits(max_out_of_order, max_stream_bytes,
                                                  max_connections))


def read_connections(path: str | os.PathLike, **limits) -> Iterator[Connection]:
    """Every TCP connection in the capture at ``path``, reassembled (see the module doc).

    Raises :class:`~tlslab.capture.files.CaptureError` at once for a missing file or one
    that is not a capture; damage later in the file ends the iteration early (use
    :func:`open_capture` to read :attr:`Capture.problems`)."""
    cap = open_capture(path, **limits)
    try:
        yield from cap.connections()
    finally:
        cap.file.close()
