"""Decode every TLS connection of a capture file (``tlslab decode``).

    from tlslab.capture.decode import CaptureDecoder
    from tlslab.capture.keylog import read_keylog
    dec = CaptureDecoder("trace.pcapng", keylog=read_keylog("keys.log"))
    for conn in dec.connections():          # DecodedConnection, in capture order
        conn.version, conn.messages, conn.application_data, conn.problems
    dec.summary                             # counts, connections that are not TLS, file problems

Packets are read one at a time and TCP bytes handed to a
:class:`~tlslab.capture.tls.ConnectionDecoder` as they are reassembled
(:meth:`tlslab.capture.tcp.Capture.stream`), so a connection's bytes are never all held
in memory: what stays per connection is its trace (bounded) and at most ``max_data``
bytes of application data.  Connections come out in the order of their first packet
(Wireshark's ``tcp.stream`` numbers); one that stays open while many later ones finish
holds at most :data:`REORDER_LIMIT` finished ones back.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

from .decoded import CLIENT, SERVER, DecodedConnection
from .keylog import KeyLog
from .tcp import Connection, open_capture
from .tls import ConnectionDecoder, SessionCache

#: finished connections held back to give them out in capture order
REORDER_LIMIT = 256


@dataclass
class CaptureSummary:
    path: str
    format: str = ""
    packets: int = 0
    tcp_connections: int = 0
    tls_connections: int = 0
    #: (stream index, client, server, reason) of connections that are not TLS
    not_tls: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: the file's own problems (truncated, corrupt), and packets skipped by reason
    problems: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    out_of_order: bool = False

    def to_json(self) -> dict:
        return {"file": self.path, "format": self.format, "packets": self.packets,
                "tcp_connections": self.tcp_connections,
                "tls_connections": self.tls_connections,
                "not_tls": [{"stream": i, "client": c, "server": s, "reason": r}
                            for i, c, s, r in self.not_tls[:100]],
                "not_tls_count": len(self.not_tls),
                "problems": list(self.problems)}


def tcp_facts(conn: Connection) -> dict:
    """What the TCP layer says about a connection (for reports)."""
    return {"packets": conn.packets, "end": conn.end, "roles": conn.roles,
            "started_mid_stream": conn.started_mid_stream,
            "retransmitted_bytes": conn.retransmitted, "conflicting_overlaps": conn.conflicts,
            "gaps": [{"direction": g.direction, "at": g.at, "length": g.length,
                      "reason": g.reason} for g in conn.gaps[:50]],
            "first_time": conn.first_time, "last_time": conn.last_time}


def decode_connection(conn: Connection, keylog: KeyLog | None = None, *,
                      max_data: int = 1 << 16,
                      sessions: SessionCache | None = None) -> DecodedConnection:
    """Decode one reassembled :class:`~tlslab.capture.tcp.Connection` (its bytes already
    held), feeding both directions in capture order from its timeline."""
    dec = ConnectionDecoder(conn.index, str(conn.client), str(conn.server), roles=conn.roles,
                            keylog=keylog, max_data=max_data, first_time=conn.first_time,
                            sessions=sessions)
    data = {d: conn.data(d) for d in (CLIENT, SERVER)}
    gaps = {d: deque(conn.gaps_in(d)) for d in (CLIENT, SERVER)}
    for dl in conn.timeline:
        d = dl.direction
        while gaps[d] and gaps[d][0].at <= dl.start:
            g = gaps[d].popleft()
            dec.gap(d, g.length, g.reason)
        dec.data(d, data[d][dl.start:dl.end], dl.time)
    for d in (CLIENT, SERVER):
        for g in gaps[d]:
            dec.gap(d, g.length, g.reason)
    return dec.finish(tcp_facts(conn))


class CaptureDecoder:
    """Decode a capture file connection by connection (see the module documentation).

    Raises :class:`~tlslab.capture.files.CaptureError` when the file cannot be opened as a
    capture; damage later in the file ends the reading early and is said in
    :attr:`summary`.problems."""

    def __init__(self, path: str | os.PathLike, keylog: KeyLog | None = None, *,
                 stream: int | None = None, max_data: int = 1 << 16,
                 include_non_tls: bool = False, spans: bool = False) -> None:
        self.path = os.fspath(path)
        self.keylog = keylog
        self.stream = stream
        self.max_data = max_data
        self.include_non_tls = include_non_tls
        self.spans = spans
        self._capture = open_capture(self.path)
        self.summary = CaptureSummary(self.path, self._capture.file.format)

    def close(self) -> None:
        self._capture.file.close()

    def __enter__(self) -> "CaptureDecoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connections(self) -> Iterator[DecodedConnection]:
        """Every TLS connection (and with ``include_non_tls`` the others), by stream index."""
        held: dict[int, DecodedConnection] = {}
        started: set[int] = set()   # indexes opened and not yet given out
        try:
            for kind, obj in self._events():
                if kind == "open":
                    started.add(obj)
                    continue
                result: DecodedConnection = obj
                started.discard(result.index)
                held[result.index] = result
                # give out, in index order, everything no earlier open connection blocks
                while held:
                    lowest_open = min(started) if started else None
                    first = min(held)
                    if lowest_open is not None and lowest_open < first \
                            and len(held) <= REORDER_LIMIT:
                        break
                    if lowest_open is not None and lowest_open < first:
                        self.summary.out_of_order = True
                    item = held.pop(first)
                    if self._wanted(item):
                        yield item
            for index in sorted(held):
                if self._wanted(held[index]):
                    yield held[index]
        finally:
            self._finish_summary()
            self.close()

    def _wanted(self, item: DecodedConnection) -> bool:
        s = self.summary
        if item.tls:
            s.tls_connections += 1
        elif len(s.not_tls) < 10_000:
            s.not_tls.append((item.index, item.client, item.server, item.not_tls))
        if self.stream is not None and item.index != self.stream:
            return False
        return item.tls or self.include_non_tls

    def _events(self):
        """("open", index) when a connection starts, ("done", DecodedConnection) when it
        ends, in capture order, from the streaming reassembly."""
        decoders: dict[int, ConnectionDecoder] = {}
        sessions = SessionCache()   # TLS 1.2 resumption across the capture's connections
        for ev in self._capture.stream():
            kind, conn = ev[0], ev[1]
            if kind == "open":
                self.summary.tcp_connections += 1
                if self.stream is not None and conn.index != self.stream:
                    decoders[conn.index] = None
                    continue
                decoders[conn.index] = ConnectionDecoder(
                    conn.index, str(conn.client), str(conn.server), roles=conn.roles,
                    keylog=self.keylog, max_data=self.max_data, first_time=conn.first_time,
                    sessions=sessions, spans=self.spans)
                yield "open", conn.index
                continue
            dec = decoders.get(conn.index)
            if kind == "data":
                if dec is not None:
                    dec.data(ev[2], ev[3], ev[4])
            elif kind == "gap":
                if dec is not None:
                    dec.gap(ev[2], ev[3], ev[4])
            elif kind == "close":
                decoders.pop(conn.index, None)
                if dec is not None:
                    yield "done", dec.finish(tcp_facts(conn))

    def _finish_summary(self) -> None:
        cap = self._capture
        s = self.summary
        s.packets = cap.stats.get("packets", 0)
        s.stats = dict(cap.stats)
        s.problems = list(cap.problems)
