"""A captured TCP connection rebuilt as a TLS conversation, with the engine's codec only.

:class:`ConnectionDecoder` is fed both directions' bytes in capture order (``data``),
told about bytes that were never captured (``gap``), and ``finish``-ed at the end; it
returns a :class:`~tlslab.capture.decoded.DecodedConnection` whose
:class:`~tlslab.proto.trace.Trace` the shared renderers show like a live ``connect``.
The trace is written from the **client's point of view** (what the client sent is
``"sent"``), as a ``connect`` trace is.

Everything TLS is read with the engine: records split by
:class:`~tlslab.proto.record.RecordReader`, handshake messages reassembled by
:class:`~tlslab.proto.messages.HandshakeBuffer` and parsed by the message descriptions
of :mod:`tlslab.proto.messages` / :mod:`tlslab.proto.messages12` (so field spans come
from the same codec), records opened by the engine's protectors built through
:mod:`tlslab.proto.offline` from the key log (:mod:`tlslab.capture.decrypt`).

Where TLS starts is found by parsing, not by port: the first ClientHello record in
either direction (after a STARTTLS / STLS command, an HTTP CONNECT or another preamble,
:func:`~tlslab.capture.hellos.find_tls_start`) makes that direction the client.  A
capture that starts mid-connection is recognised by its record framing
(:func:`~tlslab.capture.records.find_record_chain`) and reported without keys: the key
log is keyed by the ClientHello's random, which such a capture does not hold.

The work per byte is bounded: held bytes before TLS is found, handshake messages
(RFC 8446 §4: the engine's 256 KiB limit), trace entries, kept application data
(``max_data``) and the number of records listed are all capped.
"""
from __future__ import annotations

from collections import deque

from ..proto.alerts import alert_name
from ..proto.errors import TLSError
from ..proto import offline
from ..proto.messages import ClientHello, HandshakeBuffer, ServerHello
from ..proto.names import ContentType, ExtensionType, name_of
from ..proto.record import RecordReader
from ..proto.trace import Trace
from . import decrypt
from .decoded import (CLIENT, SERVER, AlertInfo, AppData, DecodedConnection, Undecrypted)
from .handshake import _ARROW, _DIR, HandshakeReader, SessionCache, version_name
from .hellos import find_tls_start
from .keylog import KeyLog, empty_keylog
from .records import SEARCH_LIMIT, Record, RecordSplitter, find_record_chain

#: trace directions (_DIR) are the client's point of view, as in a ``connect`` trace
_OTHER = {CLIENT: SERVER, SERVER: CLIENT}

#: application data / undecrypted records traced one by one per direction (the rest are
#: counted): a long transfer must not grow the trace without bound, as in the engine
TRACED_RECORDS = 16
#: application data records listed in the result (each with at most its share of
#: ``max_data`` bytes); past this they are counted only
MAX_APP_RECORDS = 100_000
#: records tried with later sequence numbers after a gap (RFC 8446 §5.3 nonces depend on
#: the number of records lost, which the gap's size bounds but does not give)
MAX_SEQ_SKIP = 1024
_PREVIEW = 72
_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


def preview(data: bytes, limit: int = _PREVIEW) -> str:
    """Printable ASCII of the first bytes; other bytes as ``.`` (for one-line views)."""
    text = bytes(data[:limit]).translate(_PRINTABLE).decode("ascii")
    return text + ("…" if len(data) > limit else "")


class _Side:
    """One direction's TLS state: handshake reassembly and its keys."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hs = HandshakeBuffer()
        #: (buffer position, length, wire offset or None, record offset, epoch) per fragment
        self.frags: deque = deque()
        self.fed = 0
        self.popped = 0
        #: TLS 1.3: this direction's keys in order, and the one in use (-1: none yet)
        self.epochs: list[decrypt.Epoch] = []
        self.current = -1
        #: TLS 1.0-1.2: the keys installed by this direction's ChangeCipherSpec
        self.cipher12: decrypt.Epoch | None = None
        self.traced_app = 0
        self.traced_hidden = 0
        self.protected_flights = 0
        self.finished = False
        self.seq_unknown = 0      # after a gap: how many records may have been lost
        #: the last record that stayed encrypted: its length and epoch (see _guess_epoch)
        self.last_hidden_length: int | None = None
        self.last_hidden_epoch = None
        self.wrong_key_said: set[str] = set()

    def epoch(self) -> decrypt.Epoch | None:
        return self.epochs[self.current] if 0 <= self.current < len(self.epochs) else None

    def index_of(self, name: str) -> int:
        for i, e in enumerate(self.epochs):
            if e.name == name:
                return i
        return -1


class ConnectionDecoder(HandshakeReader):
    """Decode one TCP connection (see the module documentation)."""

    def __init__(self, index: int, client: str, server: str, *, roles: str = "",
                 keylog: KeyLog | None = None, max_data: int = 1 << 16,
                 first_time: float = 0.0, sessions: "SessionCache | None" = None,
                 spans: bool = False) -> None:
        self.keylog = keylog if keylog is not None else empty_keylog()
        self.sessions = sessions if sessions is not None else SessionCache()
        #: record field spans while parsing (one parse instead of two when every message's
        #: fields will be shown, as --json does)
        self._spans = spans
        self.out = DecodedConnection(index, client, server, roles=roles,
                                     keylog_given=keylog is not None, first_time=first_time)
        self._now = first_time
        self.out.trace = Trace(clock=self._clock)
        self.max_data = max(0, max_data)
        self._data_kept = 0
        self._split = {CLIENT: RecordSplitter(), SERVER: RecordSplitter()}
        #: TCP direction -> TLS side, once a ClientHello tells who the client is
        self._side_of: dict[str, str] | None = None
        self._searched = {CLIENT: 0, SERVER: 0}   # held bytes at the last look for a hello
        self._sides = {CLIENT: _Side(CLIENT), SERVER: _Side(SERVER)}
        self._last_protected_sender: str | None = None
        # handshake facts
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.client_random: bytes | None = None
        self.version: int | None = None
        self.suite: int | None = None
        self.tls13: bool | None = None
        self.early_offered = False
        self.hello_retry = False
        self._keys: dict[str, list[bytes]] = {}
        self._t12 = bytearray()          # TLS 1.2 transcript up to ClientKeyExchange
        self._t12_done = False
        self._encrypted_pms: bytes | None = None
        self._pending12: tuple | None = None
        self._masters_traced = False
        self._early_said = False
        self._tickets12: list[bytes] = []
        self._guessing = False
        self._finished = False

    def _clock(self) -> float:
        return self._now

    # ------------------------------------------------------------------ input
    def data(self, direction: str, data: bytes, time: float | None = None) -> None:
        """Bytes of one TCP direction (``"client"`` / ``"server"`` as the TCP layer named
        them), in capture order."""
        if time is not None:
            self._now = time
        sp = self._split[direction]
        records = sp.feed(data)
        if self._side_of is None:
            if sp.mode == "search":
                self._look_for_start(direction)
            return
        self._records(direction, records)

    def gap(self, direction: str, length: int, reason: str = "missing") -> None:
        """``length`` bytes of ``direction`` were not captured at this point."""
        sp = self._split[direction]
        at = sp.received
        sp.gap(length, reason)
        if self._side_of is None:
            return
        side = self._side_of[direction]
        st = self._sides[side]
        if len(st.hs):
            self.out.problem(f"{_ARROW[side]}: a handshake message was cut by {length} "
                             f"missing bytes at byte {at}; it cannot be read")
        st.hs = HandshakeBuffer()
        st.frags.clear()
        st.popped = st.fed
        # the records lost in the gap still used sequence numbers (RFC 8446 §5.3)
        st.seq_unknown = min(MAX_SEQ_SKIP, st.seq_unknown + 1 + length // 21)
        self.out.problem(f"{_ARROW[side]}: {length} bytes not in the capture at byte {at} "
                         f"({reason}); the records there are lost")

    def finish(self, tcp: dict | None = None) -> DecodedConnection:
        """End of the connection (or of the capture): what was left incomplete is said
        in ``problems``; returns the result."""
        if self._finished:
            return self.out
        self._finished = True
        out = self.out
        if tcp:
            out.tcp = dict(tcp)
        for direction in (CLIENT, SERVER):
            if self._side_of is None and self._split[direction].mode == "search":
                self._look_for_start(direction, force=True)
        if self._side_of is None:
            self._resolve_without_hello(final=True)
        if self._side_of is not None:
            for direction in (CLIENT, SERVER):
                records, left = self._split[direction].finish()
                self._records(direction, records)
                if left and out.tls:
                    out.problem(f"{_ARROW[self._side_of[direction]]}: {left}")
        if out.tls:
            self._finish_tls()
        return out

    # ------------------------------------------------------------------ where TLS starts
    def _look_for_start(self, direction: str, force: bool = False) -> None:
        sp = self._split[direction]
        held = len(sp.held)
        # searched again only when the held bytes grew by an eighth (or at the end): a peer
        # sending one byte per segment must not make the work quadratic
        if not force and held < SEARCH_LIMIT and held - self._searched[direction] < max(6, held // 8):
            return
        self._searched[direction] = held
        found = find_tls_start(bytes(sp.held))
        if found is None:
            if held >= SEARCH_LIMIT:
                self._resolve_without_hello(final=False)
            return
        offset, how = found
        other = _OTHER[direction]
        self._side_of = {direction: CLIENT, other: SERVER}
        out = self.out
        out.tls = True
        if direction == SERVER:
            # the capture's roles were guessed (no SYN) and the bytes prove them wrong
            out.client, out.server = out.server, out.client
            out.roles = "swapped"
        osp = self._split[other]
        server_start = 0 if (offset == 0 and not how) else osp.received
        if how:
            out.upgraded_from = how
            self.out.trace.add("info", "local", f"TLS starts after {how}",
                               summary={"client bytes before TLS": offset,
                                        "server bytes before TLS": server_start})
        first = sp.start_at(offset)
        second = osp.start_at(server_start)
        self._records(direction, first)
        self._records(other, second)

    def _resolve_without_hello(self, final: bool) -> None:
        """No ClientHello in the first bytes of either direction: TLS records that start
        mid-connection, or not TLS at all."""
        held = {d: bytes(self._split[d].held) for d in (CLIENT, SERVER)}
        chain = {d: find_record_chain(held[d], 0, final)[0] for d in (CLIENT, SERVER)}
        out = self.out
        if chain[CLIENT] is None and chain[SERVER] is None:
            if not final and max(len(h) for h in held.values()) < SEARCH_LIMIT:
                return
            out.tls = False
            out.not_tls = self._not_tls_reason(held)
            self._side_of = {CLIENT: CLIENT, SERVER: SERVER}
            for d in (CLIENT, SERVER):
                self._split[d].stop("not TLS")
            return
        self._side_of = {CLIENT: CLIENT, SERVER: SERVER}
        out.tls = True
        if out.roles in ("syn", "syn-ack") and not held[CLIENT] and chain[SERVER] == 0:
            # the connection's start is in the capture and the server's first byte starts a
            # record: TLS from the start, but the client sent nothing (a port probe answered
            # with an alert, say)
            self._records(SERVER, self._split[SERVER].start_at(0))
            self._split[CLIENT].start_at(0)
            return
        out.mid_connection = True
        out.problem("the capture starts in the middle of this connection: its ClientHello is "
                    "not in the capture, so the version and cipher suite are unknown and no "
                    "key log line can be matched to it (key logs are keyed by the ClientHello's "
                    "random); its records are shown encrypted")
        for d in (CLIENT, SERVER):
            sp = self._split[d]
            if chain[d] is None and not held[d]:
                sp.mode = "resync"   # nothing yet: look when bytes come
                continue
            self._records(d, sp.resync_from_held("mid-connection", final))

    def _not_tls_reason(self, held: dict[str, bytes]) -> str:
        first = held[CLIENT] or held[SERVER]
        who = "client" if held[CLIENT] else "server"
        if not first:
            return "no data was exchanged (TCP only)"
        reader = RecordReader()
        reader.add(first[:64])
        try:
            reader.next_record(protected=True, tls12=True)
        except TLSError as e:
            return f"not TLS (the {who}'s first bytes): {' '.join(str(e).split())}"
        return (f"not TLS: the {who}'s bytes do not hold a ClientHello or a run of TLS records "
                f"(first bytes {first[:8].hex(' ')})")

    # ------------------------------------------------------------------ records
    def _records(self, direction: str, records: list[Record]) -> None:
        if not records or self._side_of is None:
            return
        side = self._side_of[direction]
        for rec in records:
            self._record(side, rec)

    def _record(self, side: str, rec: Record) -> None:
        st = self._sides[side]
        ctype = rec.header[0]
        if st.cipher12 is not None:
            self._protected12(side, rec)
            return
        if ctype == ContentType.application_data:
            self._protected13(side, rec)
            return
        self.out.records[side]["plaintext"] += 1
        if ctype == ContentType.handshake:
            self._traced(side, rec, "handshake", {"protected": False},
                         lambda: self._handshake(side, rec.fragment, rec.offset + 5, rec.offset,
                                                 None))
        elif ctype == ContentType.change_cipher_spec:
            self._ccs(side, rec)
        elif ctype == ContentType.alert:
            self._traced(side, rec, "alert", {"protected": False},
                         lambda: self._alert(side, rec.fragment, False, rec.offset))

    def _traced(self, side: str, rec: Record, name: str, summary: dict, body,
                trace: bool = True) -> None:
        """Trace the record and run ``body`` (which traces the messages it carried) in the
        engine's order: a received record before its messages, a sent one after them."""
        def add() -> None:
            if trace:
                s = {"content_type": name, "length": len(rec.fragment), "offset": rec.offset}
                s.update(summary)
                # the whole record: the views take its ciphertext apart (nonce, encrypted
                # record, tag); bounded, since only TRACED_RECORDS application data records
                # per direction are traced
                self.out.trace.add("record", _DIR[side], name, raw=rec.header + rec.fragment,
                                   summary=s)
        if side == SERVER:
            add()
            body()
        else:
            body()
            add()

    def _ccs(self, side: str, rec: Record) -> None:
        """RFC 5246 §7.1 (keys switch) or RFC 8446 §D.4 (compatibility, ignored)."""
        compat = self.tls13 or (self.tls13 is None and self._offers_tls13())
        if compat:
            self._traced(side, rec, "change_cipher_spec",
                         {"protected": False,
                          "note": "middlebox compatibility (RFC 8446 §D.4), ignored"}, lambda: None)
            return
        if rec.fragment != b"\x01":
            self.out.problem(f"{_ARROW[side]}: a ChangeCipherSpec record holding "
                             f"{rec.fragment[:8].hex()} instead of 01 (RFC 5246 §7.1)")
        self._traced(side, rec, "change_cipher_spec",
                     {"protected": False,
                      "note": ("from here the client's records use the new keys (RFC 5246 §7.1)"
                               if side == CLIENT else
                               "from here the server's records use the new keys (RFC 5246 §7.1)")},
                     lambda: None)
        self._install12(side)

    def _offers_tls13(self) -> bool:
        ch = self.client_hello
        if ch is None:
            return False
        sv = ch.ext_value(ExtensionType.supported_versions)
        return bool(sv is not None and 0x0304 in list(sv.versions))

    # -- TLS 1.3 protected records -------------------------------------------------
    def _protected13(self, side: str, rec: Record) -> None:
        st = self._sides[side]
        out = self.out
        out.records[side]["protected"] += 1
        self._note_flight(side)
        if self.tls13 is False:
            # application data before this side's ChangeCipherSpec in TLS 1.2
            self._hidden(side, rec, None, "needs the keys of a ChangeCipherSpec that was not "
                                          "seen (RFC 5246 §7.1)", label="CLIENT_RANDOM")
            return
        if st.current < 0 and self.server_hello is None and self._without_server_hello():
            pass   # epochs made from the ClientHello's suites
        if st.current < 0:
            why = ("encrypted before the ServerHello" if side == CLIENT else
                   "the ServerHello that says which keys protect it is not in the capture")
            label = "CLIENT_EARLY_TRAFFIC_SECRET" if side == CLIENT else "the ServerHello"
            if out.mid_connection:
                why, label = "the ClientHello is not in the capture", "the ClientHello"
            self._hidden(side, rec, None, why, label=label)
            return
        self._guess_epoch(side)
        if side == CLIENT and not self._early_said and st.epoch() is not None \
                and st.epoch().name == "client_early_traffic_secret":
            self._early_said = True   # as the engine says it (the views look for this name)
            self.out.trace.add("info", "local", "sending 0-RTT early data",
                               summary={"bytes": max(0, len(rec.fragment) - 17)})
        opened = None
        cur = st.current
        for k in range(cur, min(len(st.epochs), cur + 1 + decrypt.LOOKAHEAD)):
            ep = st.epochs[k]
            if not ep.available:
                continue
            opened = self._open(st, ep, rec, after_gap=(k == cur))
            if opened is not None:
                if k != cur:
                    for skipped in st.epochs[cur:k]:
                        if skipped.available and skipped.opened == 0:
                            self._wrong_key(side, skipped, rec)
                    st.current = k
                break
        if opened is None:
            ep = st.epochs[cur]
            if ep.available:
                self._wrong_key(side, ep, rec)
            ep.skip_record()
            self._hidden(side, rec, ep, ep.missing or "the key does not authenticate the record")
            return
        st.seq_unknown = 0
        out.records[side]["decrypted"] += 1
        self._suite_found(opened)
        if side == CLIENT and opened.epoch.name.startswith("client_application_traffic_secret"):
            self._complete()   # application data from the client: its Finished was sent
        self._opened(side, rec, opened)

    def _open(self, st: _Side, ep: decrypt.Epoch, rec: Record, after_gap: bool):
        if not (after_gap and st.seq_unknown):
            return ep.open(rec.header, rec.fragment)
        # after a gap: the lost records used sequence numbers too; try the next ones
        base = [r.seq for _, r in ep.candidates]
        for skip in range(0, st.seq_unknown + 1):
            for (_, r), b in zip(ep.candidates, base):
                r.seq = b + skip
            opened = ep.open(rec.header, rec.fragment)
            if opened is not None:
                return opened
        for (_, r), b in zip(ep.candidates, base):
            r.seq = b
        return None

    def _guess_epoch(self, side: str) -> None:
        """Without the key of the current epoch, the Finished (or EndOfEarlyData) that ends it
        cannot be read, so that the key named as needed is right, the end is guessed:

        - by size: the last record held exactly one Finished (RFC 8446 §4.4.4: 4 + Hash.length
          bytes, + 1 content type byte + 16 tag bytes, §5.2) or EndOfEarlyData (4 + 1 + 16);
          records are seldom padded;
        - else by flights (RFC 8446 §2: the server's handshake flight, the client's Finished
          flight, then application data)."""
        st = self._sides[side]
        ep = st.epoch()
        if ep is None or ep.available or ep.opened:
            return
        nxt = st.current + 1
        if nxt >= len(st.epochs):
            return
        if st.last_hidden_length is not None and st.last_hidden_epoch is ep:
            suite = offline.tls13_suite(self.suite or 0)
            ends = 4 + 1 + 16 if ep.name == "client_early_traffic_secret" else \
                (4 + suite.hash_len + 1 + 16 if suite is not None else -1)
            if st.last_hidden_length == ends:
                st.current = nxt
                return
        if side == SERVER and ep.name == "server_handshake_traffic_secret":
            if self._sides[CLIENT].protected_flights >= 1 and st.protected_flights >= 2:
                st.current = nxt
        elif side == CLIENT and ep.name == "client_handshake_traffic_secret":
            if st.protected_flights >= 2:
                st.current = nxt
        elif side == CLIENT and ep.name == "client_early_traffic_secret":
            if self.server_hello is not None and self._sides[SERVER].protected_flights >= 1 \
                    and self._last_protected_sender == CLIENT and st.protected_flights >= 2:
                st.current = nxt

    def _note_flight(self, side: str) -> None:
        if self._last_protected_sender != side:
            self._sides[side].protected_flights += 1
            self._last_protected_sender = side

    # -- TLS 1.0-1.2 protected records -----------------------------------------------
    def _protected12(self, side: str, rec: Record) -> None:
        st = self._sides[side]
        ep = st.cipher12
        out = self.out
        out.records[side]["protected"] += 1
        self._note_flight(side)
        opened = self._open(st, ep, rec, after_gap=True) if ep.available else None
        if opened is None:
            if ep.available:
                self._wrong_key(side, ep, rec)
            ep.skip_record()
            what = {22: "the Finished (RFC 5246 §7.4.9)" if st.traced_hidden == 0
                    else "a handshake message",
                    21: "an alert", 23: "application data"}.get(rec.header[0], "")
            self._hidden(side, rec, ep, ep.missing or "the key does not authenticate the record",
                         what=what)
            if rec.header[0] == ContentType.handshake:
                st.finished = True
                self._check_complete12()
            return
        st.seq_unknown = 0
        out.records[side]["decrypted"] += 1
        self._opened(side, rec, opened)

    # -- a decrypted record ----------------------------------------------------------
    def _opened(self, side: str, rec: Record, opened: decrypt.Opened) -> None:
        inner = opened.content_type
        name = name_of(ContentType, inner)
        summary = {"protected": True, "decrypted": True, "key": opened.epoch.name,
                   "sequence": opened.sequence, "plaintext_length": len(opened.plaintext),
                   "outer_content_type": name_of(ContentType, rec.header[0])}
        if inner == ContentType.handshake:
            self._traced(side, rec, name, summary,
                         lambda: self._handshake(side, opened.plaintext, None, rec.offset,
                                                 opened.epoch))
        elif inner == ContentType.alert:
            self._traced(side, rec, name, summary,
                         lambda: self._alert(side, opened.plaintext, True, rec.offset))
        elif inner == ContentType.application_data:
            self._application_data(side, rec, opened, summary)
        elif inner == ContentType.change_cipher_spec and not self.tls13:
            self._traced(side, rec, name, summary, lambda: None)
            self._install12(side)   # renegotiation: the new keys (RFC 5246 §7.1)
        else:
            self._traced(side, rec, name, summary, lambda: None)
            self.out.problem(f"{_ARROW[side]}: a protected record of content type {name} at "
                             f"byte {rec.offset} (not allowed here)")

    def _application_data(self, side: str, rec: Record, opened: decrypt.Opened,
                          summary: dict) -> None:
        st = self._sides[side]
        out = self.out
        data = opened.plaintext
        early = opened.epoch.name == "client_early_traffic_secret"
        if len(out.application_data) < MAX_APP_RECORDS:
            room = max(0, self.max_data - self._data_kept)
            kept = data[:room]
            self._data_kept += len(kept)
            out.application_data.append(AppData(side, rec.offset, len(data), kept, self._now,
                                                opened.epoch.name, len(kept) < len(data), early))
        else:
            out.application_data_dropped += 1
        trace = st.traced_app < TRACED_RECORDS
        st.traced_app += 1

        def body() -> None:
            if trace:
                out.trace.add("info", "local", f"application data {_ARROW[side]}"
                              + (" (0-RTT)" if early else ""),
                              summary={"bytes": len(data), "text": preview(data)})
        self._traced(side, rec, "application_data", summary, body, trace=trace)

    def _hidden(self, side: str, rec: Record, ep: decrypt.Epoch | None, why: str,
                label: str | None = None, what: str = "") -> None:
        """A record that stays encrypted: counted under the key that would open it."""
        st = self._sides[side]
        st.last_hidden_length, st.last_hidden_epoch = len(rec.fragment), ep
        needs = label or (ep.label if ep is not None else "?")
        key = (side, needs)
        u = self.out.undecrypted.get(key)
        if u is None:
            u = self.out.undecrypted[key] = Undecrypted(side, needs, why, first_offset=rec.offset)
        u.records += 1
        u.bytes += len(rec.fragment)
        trace = st.traced_hidden < TRACED_RECORDS
        st.traced_hidden += 1
        if trace:
            summary = {"protected": True, "decrypted": False, "needs": needs, "reason": why}
            if ep is not None:
                summary["key"] = ep.name
            if what:
                summary["what"] = what

            def body() -> None:
                info = {"needs": needs, "bytes": len(rec.fragment), "at byte": rec.offset}
                if what:
                    info["probably"] = what
                self.out.trace.add("info", "local", f"encrypted record {_ARROW[side]}, not "
                                   "decrypted", summary=info, detail=why)
            self._traced(side, rec, name_of(ContentType, rec.header[0]), summary, body)

    def _wrong_key(self, side: str, ep: decrypt.Epoch, rec: Record) -> None:
        st = self._sides[side]
        if ep.name in st.wrong_key_said or ep.opened:
            return
        st.wrong_key_said.add(ep.name)
        self.out.problem(f"{_ARROW[side]}: the key log's {ep.label} ({ep.source or 'key log'}) "
                         f"does not decrypt the record at byte {rec.offset} (authentication "
                         "failed): a wrong secret, or one from another connection")

    # ------------------------------------------------------------------ handshake messages
    def _handshake(self, side: str, fragment: bytes, wire_offset: int | None,
                   record_offset: int, epoch: decrypt.Epoch | None) -> None:
        st = self._sides[side]
        st.frags.append((st.fed, len(fragment), wire_offset, record_offset, epoch))
        st.fed += len(fragment)
        st.hs.add(fragment)
        while True:
            try:
                raw = st.hs.pop_message()
            except TLSError as e:
                self.out.problem(f"{_ARROW[side]}: handshake data at byte {record_offset} "
                                 f"cannot be read: {' '.join(str(e).split())}")
                st.hs = HandshakeBuffer()
                st.frags.clear()
                st.popped = st.fed
                return
            if raw is None:
                return
            start = st.popped
            st.popped += len(raw)
            wire, rec_off, ep = self._locate(st, start)
            while st.frags and st.frags[0][0] + st.frags[0][1] <= st.popped:
                st.frags.popleft()
            self._message(side, raw, wire, rec_off, ep)

    @staticmethod
    def _locate(st: _Side, pos: int):
        for start, length, wire, rec_off, ep in st.frags:
            if start <= pos < start + length:
                return (wire + (pos - start) if wire is not None else rec_off), rec_off, ep
        return -1, -1, None

    # ------------------------------------------------------------------ alerts
    def _alert(self, side: str, fragment: bytes, protected: bool, offset: int) -> None:
        if len(fragment) != 2:
            self.out.problem(f"{_ARROW[side]}: an alert record of {len(fragment)} bytes at byte "
                             f"{offset} (RFC 8446 §6: an alert is 2 bytes)")
            if len(fragment) < 2:
                return
        level, desc = fragment[0], fragment[1]
        name = alert_name(desc)
        self.out.trace.add("alert", _DIR[side], name, raw=bytes(fragment[:2]),
                           summary={"level": level, "description": name, "protected": protected})
        self.out.alerts.append(AlertInfo(side, level, name, protected, self._now, offset))

    # ------------------------------------------------------------------ the end
    def _finish_tls(self) -> None:
        out = self.out
        for side in (CLIENT, SERVER):
            st = self._sides[side]
            if len(st.hs):
                out.problem(f"{_ARROW[side]}: the capture ends inside a handshake message "
                            f"({len(st.hs)} bytes of it captured)")
        if out.version is None and self.tls13 is None and not out.mid_connection:
            ch = self.client_hello
            if ch is not None:
                offered = ch.ext_value(ExtensionType.supported_versions)
                out.negotiated["versions_offered"] = (
                    [version_name(int(v)) for v in offered.versions] if offered is not None
                    else [version_name(int(ch.legacy_version))])
        if not out.handshake_complete and not out.mid_connection:
            self._judge_incomplete()
        for u in out.undecrypted.values():
            out.problem(f"{_ARROW[u.direction]}: {u.records} encrypted record(s) "
                        f"({u.bytes} bytes, first at byte {u.first_offset}) not decrypted: "
                        f"they need {u.needs}: {u.reason}")
        if out.keylog_given and self.client_random is not None and not self._keys \
                and out.protected_records and not (self.tls13 is False and self._pending12
                                                   and self._pending12[0].available):
            out.problem(f"the key log has no line for client random {self.client_random.hex()} "
                        "(this connection's ClientHello)")
        dropped = sum(max(0, s.traced_app - TRACED_RECORDS) for s in self._sides.values())
        if dropped:
            out.trace.add("info", "local", "more application data",
                          summary={"records not listed": dropped})
        out.negotiated.setdefault("version", out.version)
        out.negotiated.setdefault("cipher_suite", out.cipher_suite)

    def _judge_incomplete(self) -> None:
        """Why the handshake did not complete, from what was seen (for the summary)."""
        out = self.out
        fatal = [a for a in out.alerts if a.description not in ("close_notify", "user_canceled")]
        if self.client_hello is None:
            sent = self._split[CLIENT].received
            out.error = ("the client sent nothing" if not sent else
                         "the ClientHello is not complete in the capture"
                         if out.records[CLIENT]["plaintext"] == 0 else "no ClientHello was captured")
        elif fatal:
            a = fatal[0]
            out.error = (f"the {a.direction} sent a fatal alert {a.description}"
                         + ("" if a.protected else " (in clear)"))
        elif self.server_hello is None:
            out.error = ("the server never answered the ClientHello"
                         + (" (after its HelloRetryRequest)" if self.hello_retry else ""))
        elif self.tls13 and not self._sides[SERVER].finished:
            hidden = any(u.direction == SERVER for u in out.undecrypted.values())
            if hidden and self._sides[CLIENT].protected_flights:
                out.handshake_complete = None  # encrypted: cannot tell, but it went on
                out.error = None
                out.problem("the handshake messages after the ServerHello are encrypted and "
                            "were not decrypted: whether the handshake completed cannot be "
                            "checked (the client did send encrypted records)")
                return
            out.error = "the server's encrypted handshake flight did not complete (no Finished)"
        elif self.tls13:
            out.error = "the client never sent its Finished"
        else:
            c, s = self._sides[CLIENT], self._sides[SERVER]
            if c.cipher12 is None:
                out.error = "the client never sent ChangeCipherSpec and Finished"
            elif s.cipher12 is None:
                out.error = "the server never sent ChangeCipherSpec and Finished"
            else:
                out.error = "a Finished message is missing"
        if out.error:
            out.problem(f"the handshake did not complete: {out.error}")
