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
from ..proto.messages import ClientHello, HandshakeBuffer, ServerHello, parse_message
from ..proto.messages12 import parse_message12
from ..proto.names import (CipherSuite, ContentType, ExtensionType, NamedGroup, SignatureScheme,
                           name_of)
from ..proto.record import RecordReader
from ..proto.trace import Trace
from ..proto.tls12.suites import suite_name as suite12_name
from . import decrypt
from .decoded import (CLIENT, SERVER, AlertInfo, AppData, DecodedConnection, MessageInfo,
                      Undecrypted, rfc_message_name)
from .hellos import find_tls_start
from ..proto import offline
from .keylog import TLS13_LABELS, KeyLog, empty_keylog, nss_label
from .records import SEARCH_LIMIT, Record, RecordSplitter, find_record_chain

#: trace directions: the client's point of view, as in a ``connect`` trace
_DIR = {CLIENT: "sent", SERVER: "received"}
_OTHER = {CLIENT: SERVER, SERVER: CLIENT}
_ARROW = {CLIENT: "client → server", SERVER: "server → client"}
_VERSIONS = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0",
             0x0300: "SSL 3.0"}

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


def version_name(code: int | None) -> str | None:
    if code is None:
        return None
    return _VERSIONS.get(code, f"0x{code:04x}")


def _suite_name(code: int) -> str:
    if code in CipherSuite._value2member_map_:
        return name_of(CipherSuite, code)
    return suite12_name(code)


_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


def preview(data: bytes, limit: int = _PREVIEW) -> str:
    """Printable ASCII of the first bytes; other bytes as ``.`` (for one-line views)."""
    text = bytes(data[:limit]).translate(_PRINTABLE).decode("ascii")
    return text + ("…" if len(data) > limit else "")


class SessionCache:
    """TLS 1.0-1.2 master secrets seen in a capture, by session ID and by session ticket
    (RFC 5246 §7.4.1.2, RFC 5077 §3.4): a resumed connection reuses the master secret of
    an earlier one, and not every stack logs it again for the new client random
    (Wireshark keeps the same cache).  Bounded: the oldest entries go first."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._by_key: dict[bytes, bytes] = {}

    def remember(self, key: bytes, master: bytes) -> None:
        if not key:
            return
        if len(self._by_key) >= self.LIMIT:
            self._by_key.pop(next(iter(self._by_key)))
        self._by_key[bytes(key)] = master

    def find(self, key: bytes) -> bytes | None:
        return self._by_key.get(bytes(key)) if key else None


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


class ConnectionDecoder:
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

    def _parse(self, raw: bytes):
        mt = raw[0]
        spans = self._spans
        try:
            if mt == 1:
                return ClientHello.parse(raw, record=spans), None
            if mt == 2:
                return ServerHello.parse(raw, record=spans), None
            if self.tls13:
                return parse_message(raw, record=spans), None
            if self.tls13 is None:
                try:
                    return parse_message(raw, record=spans), None
                except TLSError:
                    pass
            return parse_message12(raw, self.version or 0x0303, record=spans), None
        except TLSError as e:
            return None, " ".join(str(e).split())

    def _message(self, side: str, raw: bytes, offset: int, record_offset: int,
                 epoch: decrypt.Epoch | None) -> None:
        msg, err = self._parse(raw)
        mt = raw[0]
        hrr = mt == 2 and msg is not None and msg.is_hello_retry_request
        rfc = rfc_message_name(mt, hrr)
        name = msg.name if msg is not None else rfc
        out = self.out
        out.trace.add("message", _DIR[side], name, raw=raw, message=msg,
                      detail=f"could not be parsed: {err}" if err else "")
        out.messages.append(MessageInfo(side, rfc, name, offset, record_offset, len(raw), raw,
                                        msg, epoch is not None,
                                        epoch.name if epoch is not None else None, self._now, err))
        if err:
            out.problem(f"{_ARROW[side]}: the {rfc} at byte {offset} does not parse: {err}")
            return
        if not self._t12_done and mt != 0 and self.tls13 is not True:
            self._t12 += raw   # RFC 7627 §3: the session hash runs to ClientKeyExchange
        handler = getattr(self, f"_on_{rfc}", None)
        if handler is not None:
            try:
                handler(side, msg)
            except (TLSError, ValueError, TypeError, AttributeError) as e:
                out.problem(f"{_ARROW[side]}: {rfc}: {' '.join(str(e).split())}")

    def _on_ClientHello(self, side: str, msg: ClientHello) -> None:
        out = self.out
        if side != CLIENT:
            out.problem("the server sent a ClientHello")
            return
        renegotiation = self.client_hello is not None and msg.random != self.client_random
        if self.client_hello is not None and not renegotiation:
            self.client_hello = msg   # the second ClientHello after a HelloRetryRequest
            return
        if renegotiation:
            out.trace.add("info", "local", "renegotiation",
                          detail="a new handshake inside the connection (RFC 5246 §7.4.1.2)")
            self._t12 = bytearray(msg.raw)
            self._t12_done = False
            self._encrypted_pms = None
            self._pending12 = None
            self._masters_traced = False
        self.client_hello = msg
        self.client_random = bytes(msg.random)
        out.client_random = self.client_random
        self._keys = self.keylog.secrets_for(self.client_random)
        out.keys_found = sorted(self._keys)
        sni = msg.ext_value(ExtensionType.server_name)
        if sni is not None:
            try:
                out.negotiated["server_name"] = ", ".join(
                    bytes(s.host_name).decode("ascii", "replace") for s in sni.server_name_list)
            except (AttributeError, TypeError):
                pass
        self.early_offered = msg.ext(ExtensionType.early_data) is not None
        if self.early_offered and not renegotiation:
            st = self._sides[CLIENT]
            offered = [c for c in (msg.cipher_suites or [])]
            st.epochs = [decrypt.early_epoch(self._keys.get("CLIENT_EARLY_TRAFFIC_SECRET", []),
                                             offered, self._missing("CLIENT_EARLY_TRAFFIC_SECRET"))]
            st.current = 0
            self._trace_secret(st.epochs[0])

    def _on_ServerHello(self, side: str, msg: ServerHello) -> None:
        out = self.out
        if side != SERVER:
            out.problem("the client sent a ServerHello")
            return
        n = out.negotiated
        if msg.is_hello_retry_request:
            self.hello_retry = True
            n["hello_retry"] = True
            ks = msg.ext_value(ExtensionType.key_share)
            if ks is not None and hasattr(ks, "selected_group"):
                n["hello_retry_group"] = name_of(NamedGroup, ks.selected_group)
            self.tls13 = True
            return
        sv = msg.ext_value(ExtensionType.supported_versions)
        version = sv.selected_version if sv is not None else msg.legacy_version
        renegotiation = self.server_hello is not None
        self.server_hello = msg
        self.version = int(version)
        self.suite = int(msg.cipher_suite)
        out.version_code = self.version
        out.version = n["version"] = version_name(self.version)
        out.cipher_suite = n["cipher_suite"] = _suite_name(self.suite)
        if self.version == 0x0304:
            self.tls13 = True
            self._setup13(msg)
            return
        self.tls13 = False
        ch = self.client_hello
        both = (lambda t: ch is not None and ch.ext(t) is not None and msg.ext(t) is not None)
        n["extended_master_secret"] = both(ExtensionType.extended_master_secret)
        suite = offline.tls12_suite(self.suite)
        n["encrypt_then_mac"] = bool(both(ExtensionType.encrypt_then_mac) and suite is not None
                                     and suite.cbc)
        n["secure_renegotiation"] = msg.ext(ExtensionType.renegotiation_info) is not None
        alpn = msg.ext_value(ExtensionType.application_layer_protocol_negotiation)
        if alpn is not None and alpn.protocol_name_list:
            n["alpn_protocol"] = bytes(alpn.protocol_name_list[0]).decode("latin-1")
        sid = bytes(ch.legacy_session_id or b"") if ch is not None else b""
        n["resumed"] = bool(sid) and sid == bytes(msg.legacy_session_id_echo or b"")

    _on_HelloRetryRequest = _on_ServerHello   # RFC 8446 §4.1.4: a ServerHello by its random

    def _setup13(self, sh: ServerHello) -> None:
        """RFC 8446 §7.1 secrets for this connection, by their key log labels."""
        n = self.out.negotiated
        ks = sh.ext_value(ExtensionType.key_share)
        if ks is not None and hasattr(ks, "server_share"):
            n["group"] = name_of(NamedGroup, ks.server_share.group)
        n["resumed"] = sh.ext(ExtensionType.pre_shared_key) is not None
        if self.early_offered:
            n["early_data_accepted"] = False   # until EncryptedExtensions says otherwise
        suite = self.suite
        if offline.tls13_suite(suite) is None:
            self.out.problem(f"{_suite_name(suite)}: the engine cannot decrypt this cipher "
                             "suite (only AES-GCM and ChaCha20-Poly1305)")
        client, server = self._sides[CLIENT], self._sides[SERVER]
        made = []
        for st, who in ((client, "client"), (server, "server")):
            for name in (f"{who}_handshake_traffic_secret", f"{who}_application_traffic_secret_0"):
                label = nss_label(name)
                if offline.tls13_suite(suite) is None:
                    ep = decrypt.Epoch(name, label, missing=f"{_suite_name(suite)} is not "
                                                            "supported for decryption")
                else:
                    ep = decrypt.tls13_epoch(name, self._keys.get(label, []), suite, "key log",
                                             self._missing(label))
                st.epochs.append(ep)
                made.append(ep)
        # a key log may name later application secrets (*_TRAFFIC_SECRET_N, written by a
        # few stacks after a KeyUpdate): they are tried too when the previous key is missing
        for st, who in ((client, "CLIENT"), (server, "SERVER")):
            later = sorted((int(label.rsplit("_", 1)[1]), label) for label in self._keys
                           if label.startswith(f"{who}_TRAFFIC_SECRET_")
                           and label.rsplit("_", 1)[1] not in ("", "0"))
            for n, label in later[:16]:
                name = f"{who.lower()}_application_traffic_secret_{n}"
                ep = decrypt.tls13_epoch(name, self._keys[label], suite, "key log", "")
                st.epochs.append(ep)
                made.append(ep)
        server.current = 0
        if client.current < 0:
            client.current = client.index_of("client_handshake_traffic_secret")
        for ep in made:
            if ep.available:
                self._trace_secret(ep)
        missing = [ep for ep in made if not ep.available]
        if missing:
            # one line for what is missing (usually all of it, for one reason)
            reasons = sorted({ep.missing for ep in missing})
            self.out.trace.add("info", "local", "keys not available",
                               summary={"needs": ", ".join(ep.label for ep in missing),
                                        "why": "; ".join(reasons)})
        for label in ("EXPORTER_SECRET", "EARLY_EXPORTER_SECRET"):
            if self._keys.get(label):
                self.out.trace.add("secret", "local", TLS13_LABELS[label],
                                   summary={"length": len(self._keys[label][0]),
                                            "source": "key log", "label": label,
                                            "note": "exporter secret: not needed to decrypt"})

    def _without_server_hello(self) -> bool:
        """The ServerHello is not in the capture (lost in a gap) but the ClientHello offered
        TLS 1.3 and the key log has this connection's secrets: try each TLS 1.3 suite the
        ClientHello offered (only one will authenticate records)."""
        ch = self.client_hello
        if ch is None or self._guessing or not self._offers_tls13() or not self._keys \
                or self.tls13 is False or self.out.mid_connection:
            return False
        suites = [int(c) for c in (ch.cipher_suites or []) if offline.tls13_suite(int(c))]
        if not suites:
            return False
        self._guessing = True
        client, server = self._sides[CLIENT], self._sides[SERVER]
        for st, who in ((client, "client"), (server, "server")):
            for name in (f"{who}_handshake_traffic_secret", f"{who}_application_traffic_secret_0"):
                label = nss_label(name)
                st.epochs.append(decrypt.tls13_epoch(name, self._keys.get(label, []), suites,
                                                     "key log", self._missing(label)))
        server.current = 0
        if client.current < 0:
            client.current = client.index_of("client_handshake_traffic_secret")
        self.out.problem("the ServerHello is not in the capture: the cipher suite is found by "
                         "trying the ClientHello's TLS 1.3 suites with the key log's secrets")
        return True

    def _suite_found(self, opened: decrypt.Opened) -> None:
        """A record opened while the suite was being guessed: now it is known."""
        if not self._guessing or self.suite is not None:
            return
        suite = opened.epoch.candidates[0][1].suite
        self.suite, self.tls13, self.version = suite.code, True, 0x0304
        self.out.version_code = 0x0304
        self.out.version = self.out.negotiated["version"] = "TLS 1.3"
        self.out.cipher_suite = self.out.negotiated["cipher_suite"] = suite.name

    def _missing(self, label: str) -> str:
        if not self.out.keylog_given:
            return "no key log given (--keylog)"
        if not self._keys:
            return (f"the key log has no line for this connection's client random "
                    f"{(self.client_random or b'').hex()}")
        return f"the key log has no {label} line for client random {(self.client_random or b'').hex()}"

    def _trace_secret(self, ep: decrypt.Epoch) -> None:
        if ep.available:
            self.out.trace.add("secret", "local", ep.name,
                               summary={"length": len(ep.secret), "source": ep.source or "key log",
                                        "label": ep.label})
        else:
            self.out.trace.add("info", "local", f"no key: {ep.name}",
                               summary={"needs": ep.label}, detail=ep.missing)

    def _on_EncryptedExtensions(self, side: str, msg) -> None:
        n = self.out.negotiated
        if self.early_offered:
            n["early_data_accepted"] = msg.ext(ExtensionType.early_data) is not None
        alpn = msg.ext_value(ExtensionType.application_layer_protocol_negotiation)
        if alpn is not None and alpn.protocol_name_list:
            n["alpn_protocol"] = bytes(alpn.protocol_name_list[0]).decode("latin-1")

    def _on_CertificateVerify(self, side: str, msg) -> None:
        key = "signature_scheme" if side == SERVER else "client_signature_scheme"
        self.out.negotiated[key] = name_of(SignatureScheme, msg.algorithm)

    def _on_Certificate(self, side: str, msg) -> None:
        if side != CLIENT:
            return
        entries = list(getattr(msg, "certificate_list", None) or [])
        if not entries:
            self.out.negotiated["client_certificate"] = None
            return
        der = getattr(entries[0], "cert_data", entries[0])
        try:
            from cryptography import x509
            subject = x509.load_der_x509_certificate(bytes(der)).subject.rfc4514_string()
        except Exception:  # a certificate cryptography cannot read is still a certificate
            subject = "(a certificate that could not be read)"
        self.out.negotiated["client_certificate"] = subject

    def _on_Finished(self, side: str, msg) -> None:
        st = self._sides[side]
        st.finished = True
        if self.tls13:
            i = st.index_of(f"{side}_application_traffic_secret_0")
            if i >= 0:
                st.current = i
            if side == CLIENT:
                self._complete()
        else:
            self._check_complete12()

    def _on_EndOfEarlyData(self, side: str, msg) -> None:
        st = self._sides[CLIENT]
        i = st.index_of("client_handshake_traffic_secret")
        if i >= 0:
            st.current = i

    def _on_KeyUpdate(self, side: str, msg) -> None:
        """RFC 8446 §4.6.3: the sender's next records use application_traffic_secret_N+1."""
        st = self._sides[side]
        ep = st.epoch()
        if ep is None or not ep.name.startswith(f"{side}_application_traffic_secret_"):
            return
        base = ep.name.rpartition("_")[0]
        n = int(ep.name.rpartition("_")[2]) + 1
        extra = self._keys.get(nss_label(f"{base}_{n}"), [])
        nxt = decrypt.next_application_epoch(ep, self.suite, extra)
        following = st.epochs[st.current + 1] if st.current + 1 < len(st.epochs) else None
        if following is not None and following.name == nxt.name:
            # the key log named this generation already: keep that epoch (it may have
            # opened records), adding the derived secret to its candidates
            for cand in nxt.candidates:
                if all(cand[0] != c[0] for c in following.candidates):
                    following.candidates.insert(0, cand)
            nxt = following
        else:
            st.epochs.insert(st.current + 1, nxt)
        st.current += 1
        # named as the engine names its own key updates (client's point of view)
        self.out.trace.add("secret", "local",
                           "write key updated" if side == CLIENT else "read key updated",
                           summary={"length": len(nxt.secret) if nxt.available else None,
                                    "secret": nxt.name, "label": nxt.label,
                                    "source": nxt.source if nxt.available else "",
                                    "missing": nxt.missing})

    def _on_ServerKeyExchange(self, side: str, msg) -> None:
        from ..proto.tls12.keyexchange import parse_server_key_exchange
        suite = offline.tls12_suite(self.suite or 0)
        if suite is None or not suite.ephemeral:
            return
        ske = parse_server_key_exchange(suite.kx, bytes(msg.body), self.version or 0x0303)
        n = self.out.negotiated
        if hasattr(ske.params, "named_curve"):
            n["group"] = name_of(NamedGroup, ske.params.named_curve)
        else:
            n["group"] = f"DH {ske.params.p.bit_length()} bits"
        if ske.scheme is not None:
            n["signature_scheme"] = name_of(SignatureScheme, ske.scheme)

    def _on_ClientKeyExchange(self, side: str, msg) -> None:
        self._t12_done = True
        suite = offline.tls12_suite(self.suite or 0)
        if suite is not None and suite.kx == "RSA":
            from ..proto.tls12.keyexchange import parse_client_key_exchange
            epms = parse_client_key_exchange("RSA", bytes(msg.body))
            self._encrypted_pms = bytes(epms.encrypted_pre_master_secret)

    def _on_NewSessionTicket(self, side: str, msg) -> None:
        if self.tls13 is False and side == SERVER and getattr(msg, "ticket", None):
            self._tickets12.append(bytes(msg.ticket))   # RFC 5077 §3.3 (kept at the end)

    def _on_HelloRequest(self, side: str, msg) -> None:
        self.out.trace.add("info", "local", "the server asks for renegotiation",
                           detail="HelloRequest (RFC 5246 §7.4.1.1)")

    # -- TLS 1.2 keys ----------------------------------------------------------------
    def _install12(self, side: str) -> None:
        """RFC 5246 §7.1: this side's records are protected from here on."""
        st = self._sides[side]
        if self.server_hello is None or self.client_random is None or self.suite is None:
            st.cipher12 = decrypt.Epoch(f"{side}_write_key", "CLIENT_RANDOM",
                                        missing="the hellos are not in the capture")
            return
        if side == SERVER and self._sides[CLIENT].cipher12 is None and not self._t12_done:
            # the server changes keys first: an abbreviated handshake (RFC 5246 §7.3)
            self.out.negotiated["resumed"] = True
        if self._pending12 is None:
            session_hash = None
            if self.out.negotiated.get("extended_master_secret") and self._t12_done:
                session_hash = offline.tls12_session_hash(bytes(self._t12), self.suite,
                                                                  self.version)
            sr = bytes(self.server_hello.random)
            if offline.tls12_suite(self.suite) is None:
                empty = decrypt.MasterSecrets(missing=f"{_suite_name(self.suite)} is not "
                                                      "supported for decryption")
                masters = empty
            elif not self.out.keylog_given:
                masters = decrypt.MasterSecrets(missing="no key log given (--keylog)")
            else:
                masters = decrypt.tls12_masters(self.keylog, self.client_random, sr, self.suite,
                                                 self.version, self._encrypted_pms, session_hash)
                if self.out.negotiated.get("resumed"):
                    cached = self._resumed_master()
                    if cached is not None and all(cached != m for m, _ in masters.masters):
                        masters.masters.append((cached, "the master secret of the session "
                                                        "resumed (an earlier connection)"))
                        masters.missing = ""
            self._pending12 = decrypt.tls12_epochs(masters, self.client_random, sr, self.suite,
                                                   self.version,
                                                   bool(self.out.negotiated.get("encrypt_then_mac")))
            if masters.masters and not self._masters_traced:
                self._masters_traced = True
                self.out.trace.add("secret", "local", "master_secret",
                                   summary={"length": 48, "source": masters.masters[0][1],
                                            "label": "CLIENT_RANDOM",
                                            "ems": bool(self.out.negotiated.get(
                                                "extended_master_secret"))})
            elif not masters.masters:
                self.out.trace.add("info", "local", "no key: master_secret",
                                   summary={"needs": "CLIENT_RANDOM"}, detail=masters.missing)
        client_ep, server_ep = self._pending12
        st.cipher12 = client_ep if side == CLIENT else server_ep

    def _resumed_master(self) -> bytes | None:
        ch = self.client_hello
        if ch is None:
            return None
        ticket = ch.ext(ExtensionType.session_ticket)
        if ticket is not None:
            found = self.sessions.find(bytes(ticket.data))
            if found is not None:
                return found
        return self.sessions.find(bytes(ch.legacy_session_id or b""))

    def _remember_session(self, ticket: bytes | None = None) -> None:
        """The master secret that decrypted this connection, for later resumptions."""
        if self._pending12 is None:
            return
        ep = self._pending12[0] if self._pending12[0].pinned else self._pending12[1]
        if not ep.pinned or ep.secret is None:
            return
        if ticket is not None:
            self.sessions.remember(ticket, ep.secret)
        elif self.server_hello is not None:
            self.sessions.remember(bytes(self.server_hello.legacy_session_id_echo or b""),
                                   ep.secret)

    def _check_complete12(self) -> None:
        if self._sides[CLIENT].finished and self._sides[SERVER].finished:
            self._complete()
            self._remember_session()
            for ticket in self._tickets12:
                self._remember_session(ticket)

    def _complete(self) -> None:
        if not self.out.handshake_complete:
            self.out.handshake_complete = True
            self.out.trace.add("state", "local", "CONNECTED", summary={"from": "handshake"})

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
