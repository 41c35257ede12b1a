"""The sans-IO connection shared by client and server (RFC 8446 §5, §6).

Bytes come in through :meth:`Connection.receive_data` and go out through
:meth:`Connection.data_to_send`; nothing here touches a socket, a clock or the
global random generator.  The connection is the record layer and what outlives the
handshake: protection and the keys in use, the negotiated results, events, the trace.
The handshake itself is a *handshake object* per version and side (``self.hs``:
:class:`~tlslab.proto.client13.ClientHandshake13`,
:class:`~tlslab.proto.server12.ServerHandshake12`, ...; see :mod:`tlslab.proto.handshake`)
that holds that handshake's data and is replaced, once the handshake completes, by a
small post-handshake object.  One class per state checks each message with the
handshake object's data, and a table of allowed transitions per side
(:mod:`tlslab.proto.client`, :mod:`tlslab.proto.server`) bounds the moves.

Failure handling follows RFC 8446 §6.2: every :class:`~tlslab.proto.errors.TLSError`
maps to one alert; the connection sends it once, records it in the trace, reports
a :class:`~tlslab.proto.events.ConnectionClosed` event and fails closed.
"""
from __future__ import annotations

import datetime
import time
import weakref

from typing import ClassVar

from . import events as ev
from .alerts import AlertDescription, AlertLevel, alert_name
from .errors import (BadRecordMac, DecodeError, InternalError, RecordOverflow,
                     TLSError, UnexpectedMessage)
from .keylog import LABELS
from .keyschedule import KeySchedule, SuiteInfo
from .messages import MAX_FIXED_BODY, HandshakeBuffer, KeyUpdate, Message, parse_message
from .messages12 import parse_message12
from .names import ContentType, HandshakeType, name_of
from .protection import RecordProtector
from .provider import Provider
from .record import MAX_CIPHERTEXT, MAX_PLAINTEXT, RecordReader, plaintext_record
from .limits import (ALWAYS_FATAL, MAX_EMPTY_RECORDS, MAX_KEY_UPDATES_IN_A_ROW,
                     MAX_WARNING_ALERTS, TRACED_APP_RECORDS, TRACED_POST_HANDSHAKE,
                     _key_update_limit)
from .trace import Trace

_HELLO_REQUEST = int(HandshakeType.hello_request)
_from_timestamp = datetime.datetime.fromtimestamp
_UTC = datetime.timezone.utc
#: record content types as plain ints: reading an IntEnum member costs about 70 ns, and the
#: record path compares content types several times per record
_CCS, _ALERT, _HANDSHAKE, _APPLICATION_DATA, _HEARTBEAT = (
    int(ContentType.change_cipher_spec), int(ContentType.alert), int(ContentType.handshake),
    int(ContentType.application_data), int(ContentType.heartbeat))
CCS_RECORD = plaintext_record(ContentType.change_cipher_spec, b"\x01")
#: content type names for the trace, looked up once per record
_CONTENT_NAMES = {t: name_of(ContentType, t) for t in (_CCS, _ALERT, _HANDSHAKE, _APPLICATION_DATA)}


class State:
    """One handshake state.  ``expects`` lists the handshake types accepted in it."""

    name: ClassVar[str] = "?"
    expects: ClassVar[frozenset[int]] = frozenset()
    #: TLS 1.2: the state a ChangeCipherSpec moves to from this one (None: CCS not allowed here)
    after_ccs: ClassVar[type["State"] | None] = None

    @classmethod
    def handle(cls, hs, msg: Message) -> type["State"]:  # pragma: no cover
        """Check ``msg`` with the data of ``hs`` (the connection's current handshake object)
        and return the next state."""
        raise UnexpectedMessage(f"{msg.name} is not expected in state {cls.name}")


class Closed(State):
    name = "CLOSED"


class Connection:
    """Common record, alert and application-data handling for both sides."""

    # Slots for every attribute __init__ sets (about 55): an instance dict stops sharing
    # its keys with the class past 30 keys, and then each connection grows its own dict
    # (1.6 KB) store by store, and every attribute read takes the slower hashed path.
    # "__dict__" keeps ad-hoc attributes possible (subclasses, tools, tests); it is only
    # made when one is set.
    __slots__ = (
        "config", "provider", "trace", "state", "handshake_complete", "closed", "error",
        "internal_error_detail", "negotiated", "peer_certificates", "verified_path", "resumed",
        "client_random", "server_random", "hs", "suite", "suite12", "schedule",
        "_app_read_secret", "_app_write_secret", "_read_prot", "_write_prot", "_pending_read",
        "_pending_write", "_key_update_after", "tls12", "version", "_reader", "_hs_buffer",
        "_out", "_pending_hs", "_plain_records_sent", "_max_fragment", "_receive_limit",
        "_one_message_per_record", "_skip_early_budget", "_ccs_received", "_ccs_sent",
        "_app_records_traced", "_app_records_sent_traced", "_post_handshake_traced",
        "_warnings_received", "_empty_records_in_a_row", "_key_updates_in_a_row",
        "_tickets_in_a_row", "stats", "_events", "_alert_sent", "_close_sent",
        "_received_close", "_now", "_lab_heartbeat_negotiated", "keylog", "_lab_heartbeat",
        "__dict__", "__weakref__")

    is_client: ClassVar[bool] = True
    #: state class -> the state classes it may move to (checked on every transition)
    TRANSITIONS: ClassVar[dict] = {}
    INITIAL: ClassVar[type[State]] = Closed

    def __init__(self, config, provider: Provider | None = None) -> None:
        self.config = config
        self.provider = provider or Provider()
        # the default provider's clock is time.time itself: read it without a method in between
        self.trace = Trace(clock=time.time if type(self.provider) is Provider else self.provider.time)
        self.state: type[State] = self.INITIAL
        self.handshake_complete = False
        self.closed = False
        self.error: TLSError | None = None
        #: the Python traceback of an internal error (a tlslab bug), for developers only
        self.internal_error_detail: str | None = None
        # -- what the handshake settles and the connection keeps ----------------------------
        self.negotiated: dict = {"version": None, "cipher_suite": None, "group": None,
                                 "signature_scheme": None, "alpn_protocol": None,
                                 "server_name": None, "hello_retry": False}
        self.peer_certificates: list = []
        self.verified_path: list = []   # leaf .. trust anchor, once the peer's chain is verified
        self.resumed = False
        self.client_random: bytes = b""
        self.server_random: bytes = b""
        #: the handshake object while the handshake runs (ClientHandshake13, ServerHandshake12,
        #: ...), then the small object that handles post-handshake messages
        self.hs = None
        # -- keys in use ----------------------------------------------------------------------
        self.suite: SuiteInfo | None = None     # TLS 1.3 cipher suite
        self.suite12 = None                     # TLS 1.0-1.2 cipher suite
        self.schedule: KeySchedule | None = None   # TLS 1.3: KeyUpdate and resumption
        self._app_read_secret: bytes | None = None
        self._app_write_secret: bytes | None = None
        self._read_prot: RecordProtector | None = None
        self._write_prot: RecordProtector | None = None
        self._pending_read = None     # TLS 1.2: the read state ChangeCipherSpec activates
        self._pending_write = None    # TLS 1.2: the write state our ChangeCipherSpec activates
        self._key_update_after = 1 << 64
        # -- record layer ---------------------------------------------------------------------
        #: TLS 1.0-1.2 once negotiated: records, CCS, alerts and messages follow RFC 5246
        self.tls12 = False
        self.version = 0x0304
        self._reader = RecordReader()
        self._hs_buffer = HandshakeBuffer()
        self._out: list[bytes] = []    # records to send, in order (joined by data_to_send)
        self._pending_hs = bytearray()
        self._plain_records_sent = 0
        #: largest plaintext we put in one record (RFC 8449 lowers it)
        self._max_fragment = MAX_PLAINTEXT
        self._receive_limit = MAX_PLAINTEXT + 1   # RFC 8449: lowered once our limit is agreed
        #: send each handshake message in its own record (as OpenSSL does) instead of coalescing
        self._one_message_per_record = bool(config.one_message_per_record)
        self._skip_early_budget = 0   # bytes of rejected 0-RTT records still skipped
        self._ccs_received = 0        # compatibility CCS records received (RFC 8446 §D.4)
        self._ccs_sent = False
        self._app_records_traced = 0
        self._app_records_sent_traced = 0
        self._post_handshake_traced = 0   # messages after the handshake, traced one by one
        self._warnings_received = 0   # bounded by MAX_WARNING_ALERTS
        self._empty_records_in_a_row = 0   # bounded by MAX_EMPTY_RECORDS
        self._key_updates_in_a_row = 0     # bounded by MAX_KEY_UPDATES_IN_A_ROW
        self._tickets_in_a_row = 0         # bounded by MAX_TICKETS_IN_A_ROW
        #: counters for what the trace does not keep one by one
        self.stats = {"records_sent": 0, "records_received": 0, "app_bytes_sent": 0,
                      "app_bytes_received": 0}
        self._events: list[ev.Event] = []
        self._alert_sent = False
        self._close_sent = False
        self._received_close = False
        self._now = None              # a fixed validation time (tests), else the provider's clock
        self._lab_heartbeat_negotiated = False
        self.keylog = config.keylog()
        #: LAB ONLY (proto/lab_faults.py): a lab server's deliberate heartbeat handling
        self._lab_heartbeat = None if self.is_client else config.lab_heartbeat
        if self._lab_heartbeat:
            self._reader.extra_types = frozenset({_HEARTBEAT})

    # -- public API ----------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """Bytes to write to the peer now (and clears them)."""
        if self._pending_hs:
            self._flush_handshake()
        out = self._out
        if not out:
            return b""
        self._out = []
        # one record (bulk transfer) is handed over as it is: join returns it without a copy
        return b"".join(out)

    def receive_data(self, data: bytes) -> list[ev.Event]:
        """Feed bytes received from the peer; returns the events they caused."""
        if not self.closed and data:
            try:
                whole = (self._reader.take_whole(data)
                         if self._read_prot is not None and not self.tls12 else None)
                if whole is not None:
                    # one complete protected record and nothing buffered: skip the buffer copies
                    self._reader.seen_first = True
                    if len(whole) - 5 > MAX_CIPHERTEXT:
                        raise RecordOverflow(f"record length {len(whole) - 5} exceeds the "
                                             f"{MAX_CIPHERTEXT}-byte limit")
                    # the AEAD reads a view as well as bytes: no copy of the record body
                    body = memoryview(whole)[5:]
                    if (self.handshake_complete and self._app_records_traced >= TRACED_APP_RECORDS
                            and not self._skip_early_budget):
                        self._receive_protected13(whole[:5], body)
                    else:
                        self._handle_record(whole[:5], body)
                else:
                    self._reader.add(data)
                    self._process_records()
            except TLSError as err:
                self._fail(err)
            except Exception:  # a bug of ours must still fail closed, with one alert
                import traceback
                # the traceback is for developers (tests, fuzzers, TLSLAB_DEBUG): kept on the
                # connection, never in the trace, which users see as text, JSON and HTML
                self.internal_error_detail = traceback.format_exc()
                self._fail(InternalError("internal error while processing input (a tlslab "
                                         "bug: please report it)"))
        events, self._events = self._events, []
        return events

    def send_application_data(self, data: bytes) -> None:
        """Queue application data (RFC 8446 §5.1: fragmented into records of at most 2^14 bytes)."""
        if self.closed or self._close_sent:
            raise ConnectionError("connection is closed")
        if not self.handshake_complete and not self._can_send_application_data():
            raise ConnectionError("handshake not complete: cannot send application data yet")
        self._send_records(_APPLICATION_DATA, data)

    def _send_records(self, content_type: int, data: bytes) -> None:
        """Protect ``data`` in records of at most the peer's limit (RFC 8446 §5.1, RFC 8449)."""
        if self._pending_hs:
            self._flush_handshake()
        prot = self._write_prot
        seal = prot.seal
        out = self._out.append
        size = self._max_fragment
        n = len(data)
        stats = self.stats
        stats["app_bytes_sent"] += n
        if self._app_records_sent_traced < TRACED_APP_RECORDS and content_type == _APPLICATION_DATA:
            self._app_records_sent_traced += 1
            self.trace.record("sent", "application_data", b"", n, True)
        if n <= size:   # one record, the bulk-transfer case: sealed straight into the output
            out(seal(content_type, data))
            stats["records_sent"] += 1
        else:
            view = memoryview(data)
            for i in range(0, n, size):
                out(seal(content_type, bytes(view[i:i + size])))
                stats["records_sent"] += 1
        if (prot.seq >= self._key_update_after and self.handshake_complete
                and content_type == _APPLICATION_DATA and not self.tls12):
            # RFC 8446 §5.5: rekey well before the AEAD's confidentiality limit
            self.trace.add("info", "local", "automatic KeyUpdate",
                           detail=f"{prot.seq} records under one key")
            self.send_key_update(request_update=False)

    def close(self) -> None:
        """Queue a close_notify alert (RFC 8446 §6.1); further sends are refused."""
        if self._close_sent or self._alert_sent:
            return
        self._close_sent = True
        self._send_alert(AlertLevel.warning, AlertDescription.close_notify)
        if self._received_close:
            self._finish_closed(None)

    def send_key_update(self, request_update: bool = False) -> None:
        """Send a KeyUpdate and move to the next write secret (RFC 8446 §4.6.3)."""
        if not self.handshake_complete or self.closed:
            raise ConnectionError("KeyUpdate needs a completed, open connection")
        self._send_message(KeyUpdate(request_update=1 if request_update else 0))
        self._update_write_key()

    # -- records in ----------------------------------------------------------------
    def _process_records(self) -> None:
        while not self.closed:
            rec = self._reader.next_record(protected=self._read_prot is not None,
                                           tls12=self.tls12)
            if rec is None:
                return
            header, fragment = rec
            self._handle_record(header, fragment)
            if self._pending_hs:
                # the flight this record completed goes out even if a later record in the
                # same input fails: RFC 8446 Appendix D.3 / tlsfuzzer expect a TLS 1.2
                # ServerHello flight before the alert for 0-RTT data that follows the
                # ClientHello; only a flight cut short by the failure itself is dropped
                self._flush_handshake()

    def _handle_record(self, header: bytes, fragment: bytes) -> None:
        ctype = header[0]
        if ctype == _CCS:
            if self.tls12:
                self._handle_ccs12(fragment)
            else:
                self._handle_ccs(fragment)
            return
        wire = fragment  # the record's payload as received (ciphertext once keys are in use)
        if self.tls12 and self._read_prot is not None:
            # RFC 5246 §6.2: every record after ChangeCipherSpec is protected, header type kept
            ctype, fragment = self._read_prot.open(header, fragment)
            protected = True
        elif self._read_prot is not None and ctype == _APPLICATION_DATA:
            if len(fragment) - self._read_prot.tag_len > self._receive_limit:
                self._inner_too_large(len(fragment) - self._read_prot.tag_len)
            if self._skip_early_budget:
                try:
                    ctype, fragment = self._read_prot.open(header, fragment)
                except BadRecordMac:
                    self._skip_rejected_early_data(fragment)
                    return
                self._skip_early_budget = 0
            else:
                ctype, fragment = self._read_prot.open(header, fragment)
            protected = True
        elif ctype == _APPLICATION_DATA:
            if self._skip_early_budget:
                self._skip_rejected_early_data(fragment)
                return
            raise UnexpectedMessage("encrypted record received before keys were established")
        elif self._read_prot is not None and not self.tls12 and (
                ctype != _ALERT or self.handshake_complete):
            # RFC 8446 §5: once keys are in use every record is protected.  A plaintext
            # alert is still read during the handshake, so that we can report why the peer
            # gave up; after it, an unprotected alert (a forged close_notify truncating the
            # data, say) is refused.
            raise UnexpectedMessage(f"unprotected {name_of(ContentType, ctype)} record after keys "
                                    "were established")
        else:
            protected = False
        if (ctype != _APPLICATION_DATA and not self.handshake_complete) or \
                self._app_records_traced < TRACED_APP_RECORDS:
            # Application data records are traced individually only at first: a long
            # transfer would otherwise grow the trace without bound (counters keep the rest).
            if ctype == _APPLICATION_DATA or self.handshake_complete:
                self._app_records_traced += 1
            # the whole record, so that the views can take it apart (nonce, ciphertext,
            # AEAD tag); bounded by the number of traced records above
            self.trace.record("received", _CONTENT_NAMES.get(ctype) or name_of(ContentType, ctype),
                              header + wire, (header[3] << 8) | header[4], protected)
        self._dispatch_record(ctype, fragment, protected)

    def _receive_protected13(self, header: bytes, body) -> None:
        """One whole TLS 1.3 protected record once the handshake is over and the trace no
        longer keeps records one by one (bulk transfer): open it and hand application data
        over with the fewest steps; anything else takes the general path."""
        prot = self._read_prot
        if len(body) - prot.tag_len > self._receive_limit:
            self._inner_too_large(len(body) - prot.tag_len)
        ctype, fragment = prot.open(header, body)
        if ctype == _APPLICATION_DATA and fragment and not len(self._hs_buffer):
            stats = self.stats
            stats["records_received"] += 1
            stats["app_bytes_received"] += len(fragment)
            # progress: the flood counters count runs without data
            self._empty_records_in_a_row = self._key_updates_in_a_row = self._tickets_in_a_row = 0
            self._events.append(ev.ApplicationData(fragment))
        else:
            self._dispatch_record(ctype, fragment, True)

    def _inner_too_large(self, n: int) -> None:
        """RFC 8449 §4: a TLSInnerPlaintext larger than the limit we advertised (the
        comparison stays at the call sites: it runs on every record)."""
        raise RecordOverflow(f"protected record with {n} bytes of inner plaintext "
                             f"exceeds our record_size_limit {self._receive_limit}")

    def _dispatch_record(self, ctype: int, fragment: bytes, protected: bool) -> None:
        """A record's content, deprotected: handshake messages, alert or application data."""
        self.stats["records_received"] += 1
        if fragment:
            self._empty_records_in_a_row = 0
        else:
            # RFC 8446 §5.1 allows empty application data records; a run of them is a flood
            self._empty_records_in_a_row += 1
            if self._empty_records_in_a_row > MAX_EMPTY_RECORDS:
                raise UnexpectedMessage(f"more than {MAX_EMPTY_RECORDS} empty records in a row")
        if ctype == _HANDSHAKE:
            if not fragment:
                raise UnexpectedMessage("zero-length handshake record")
            self._hs_buffer.add(fragment)
            while (raw := self._hs_buffer.pop_message()) is not None:
                self._handle_handshake(raw)
                if self.closed:
                    return
            if len(self._hs_buffer):
                self._check_announced()
        elif ctype == _ALERT:
            self._handle_alert(fragment, protected)
        elif ctype == _APPLICATION_DATA:
            complete = self.handshake_complete
            if not complete and not self._can_receive_application_data():
                raise UnexpectedMessage("application data received before the handshake completed")
            if len(self._hs_buffer):
                raise UnexpectedMessage("application data interleaved with a fragmented handshake message")
            if fragment:
                # progress: the post-handshake message counters count runs without data
                self._key_updates_in_a_row = self._tickets_in_a_row = 0
            self.stats["app_bytes_received"] += len(fragment)
            # 0-RTT data can only arrive before the handshake completes (RFC 8446 §4.2.10)
            if not complete and self._note_application_data(fragment):
                self._events.append(ev.ApplicationData(fragment, early=True))
            else:
                self._events.append(ev.ApplicationData(fragment))
        elif ctype == _HEARTBEAT and self._lab_heartbeat:
            from .lab_faults import handle_heartbeat  # LAB ONLY: RFC 6520 / CVE-2014-0160
            handle_heartbeat(self, fragment)
        else:
            raise UnexpectedMessage(f"unexpected {name_of(ContentType, ctype)} record")

    def _check_announced(self) -> None:
        """A message expected here whose header announces more than its type can hold is
        a decode_error now, not after buffering up to MAX_HANDSHAKE_MESSAGE bytes of it
        (as OpenSSL does: a Finished padded to 192 KiB is refused at its first record)."""
        announced = self._hs_buffer.announced()
        if announced is None:
            return
        msg_type, length = announced
        fixed = MAX_FIXED_BODY.get(msg_type)
        if fixed is not None and length > fixed[1] and msg_type in self.state.expects:
            name, limit = fixed
            raise DecodeError(f"{name} announces {length} bytes; a {name} has at most {limit}")

    def _skip_rejected_early_data(self, fragment: bytes) -> None:
        """RFC 8446 §4.2.10: drop 0-RTT records we rejected, up to a bounded amount."""
        self._skip_early_budget -= len(fragment)
        if self._skip_early_budget <= 0:
            raise BadRecordMac("undecryptable records beyond the rejected early data allowance")
        self.trace.add("record", "received", "application_data",
                       summary={"length": len(fragment), "protected": True,
                                "note": "rejected 0-RTT early data, skipped"})

    def _handle_ccs12(self, fragment: bytes) -> None:
        """RFC 5246 §7.1: ChangeCipherSpec switches the read side to the pending state;
        it is allowed only where the state machine expects it."""
        if fragment != b"\x01":
            # RFC 5246 §7.1: the message is the single byte 1.  RFC 5246 names no alert for
            # another value; RFC 8446 §5 says unexpected_message for the same record in TLS
            # 1.3, and TLS 1.2 stacks (tlslite-ng, tlsfuzzer's expectation) answer the same
            raise UnexpectedMessage(f"invalid change_cipher_spec message {fragment.hex()}")
        nxt = self.state.after_ccs
        if nxt is None or self._pending_read is None:
            if not self.is_client and self.config.lab_early_ccs:
                from .lab_faults import accept_early_ccs  # LAB ONLY: CVE-2014-0224
                if accept_early_ccs(self):
                    return
            raise UnexpectedMessage(f"ChangeCipherSpec received in state {self.state.name}")
        if len(self._hs_buffer):
            raise UnexpectedMessage("ChangeCipherSpec inside a fragmented handshake message")
        self.trace.add("record", "received", "change_cipher_spec",
                       summary={"note": "the peer switches to the new keys (RFC 5246 §7.1)"})
        self._read_prot, self._pending_read = self._pending_read, None
        self._move(nxt)

    def _handle_ccs(self, fragment: bytes) -> None:
        """RFC 8446 §5, §D.4: a 0x01 CCS between the first ClientHello and the peer's Finished
        is dropped.  A peer sends one per handshake flight in compatibility mode (JSSE sends
        one after its HelloRetryRequest and another after the ServerHello), so one is accepted
        before and one after a HelloRetryRequest; two in a row are unexpected, as OpenSSL and
        tlsfuzzer have it."""
        if fragment != b"\x01":
            raise UnexpectedMessage(f"invalid change_cipher_spec value {fragment.hex()}")
        if self.handshake_complete or not self._ccs_allowed() or self._ccs_received:
            raise UnexpectedMessage("change_cipher_spec record outside the handshake")
        self._ccs_received = 1
        self.trace.add("record", "received", "change_cipher_spec",
                       summary={"note": "middlebox compatibility (RFC 8446 §D.4), ignored"})

    def _handle_alert(self, fragment: bytes, protected: bool) -> None:
        if not fragment:
            # RFC 8446 §5.1: zero-length alert fragments MUST NOT be sent (as OpenSSL answers)
            raise UnexpectedMessage("zero-length alert record")
        if len(fragment) != 2:
            raise DecodeError(f"alert record of {len(fragment)} bytes (must be 2)")
        level, desc = fragment[0], fragment[1]
        name = alert_name(desc)
        self.trace.add("alert", "received", name, raw=fragment,
                       summary={"level": level, "description": name, "protected": protected})
        warning = desc == AlertDescription.user_canceled or (
            self.tls12 and level == AlertLevel.warning and desc not in ALWAYS_FATAL)
        fatal = desc != AlertDescription.close_notify and not warning
        self._events.append(ev.AlertReceived(level=level, description=desc, name=name,
                                             fatal=fatal))
        if desc == AlertDescription.close_notify:
            self._received_close = True
            if not self._close_sent and not self._alert_sent:
                self._close_sent = True
                self._send_alert(AlertLevel.warning, AlertDescription.close_notify)
            error = None if self.handshake_complete else "peer closed the connection during the handshake"
            self._finish_closed(error, alert_received=name)
        elif warning:
            # RFC 8446 §6.1: user_canceled is followed by close_notify; RFC 5246 §7.2.2:
            # warnings (no_renegotiation, unrecognized_name, ...) end nothing.  A peer that
            # sends either without end is cut off.
            self._warnings_received += 1
            if self._warnings_received > MAX_WARNING_ALERTS:
                raise UnexpectedMessage(f"more than {MAX_WARNING_ALERTS} warning alerts")
            return
        else:
            # RFC 8446 §6.2: every error alert is fatal in TLS 1.3, whatever its level says
            self.error = None
            self._finish_closed(f"peer sent fatal alert {name}", alert_received=name)

    # -- handshake in --------------------------------------------------------------
    def _handle_handshake(self, raw: bytes) -> None:
        state = self.state
        t = raw[0]
        if t not in state.expects and not (t == _HELLO_REQUEST and self._ignores_hello_request()):
            self._refuse_unexpected(raw, state)
        if self.tls12:
            msg = parse_message12(raw, self.version)
            if t == _HELLO_REQUEST:
                if self._ignores_hello_request():
                    # RFC 5246 §7.4.1.1: ignored while a handshake is being negotiated
                    self.trace.add("message", "received", msg.name, raw=raw, message=msg,
                                   detail="ignored during the handshake (RFC 5246 §7.4.1.1)")
                    return
            elif not self.handshake_complete:
                self.hs.hs_log += raw  # RFC 5246 §7.4.9: all messages except HelloRequest
        else:
            msg = parse_message(raw)
        if self._post_handshake_traced < TRACED_POST_HANDSHAKE:
            self.trace.message("received", msg.name, raw, msg)
            if self.handshake_complete:
                self._post_handshake_traced += 1
        self._move(state.handle(self.hs, msg))

    def _ignores_hello_request(self) -> bool:
        """RFC 5246 §7.4.1.1: a TLS 1.2 client ignores HelloRequest during a handshake."""
        return self.tls12 and self.is_client and not self.handshake_complete

    def _refuse_unexpected(self, raw: bytes, state: type[State]) -> None:
        """RFC 8446 §6.2 / RFC 5246 §7.2.2: a message type this state does not allow is
        unexpected_message whatever its body holds, so it is refused before parsing (a
        malformed body would otherwise turn it into a decode_error)."""
        wanted = ", ".join(name_of(HandshakeType, t) for t in sorted(state.expects)) or "nothing"
        msg = self._parse_for_trace(raw)
        name = msg.name if msg is not None else name_of(HandshakeType, raw[0])
        self.trace.add("message", "received", name, raw=raw, message=msg)
        raise UnexpectedMessage(f"{name} received in state {state.name} (expected {wanted})")

    def _parse_for_trace(self, raw: bytes):
        """The message, parsed for the trace only (None if its body does not parse)."""
        try:
            if self.tls12:
                return parse_message12(raw, self.version)
            return parse_message(raw)
        except TLSError:
            return None

    def _move(self, nxt: type[State]) -> None:
        state = self.state
        if nxt is state:
            return
        if nxt not in self.TRANSITIONS.get(state, ()):
            raise InternalError(f"illegal transition {state.name} -> {nxt.name}")
        self.trace.state(nxt.name, state.name)
        self.state = nxt

    def _check_key_change_boundary(self, what: str) -> None:
        """RFC 8446 §5.1: handshake messages must not span a key change."""
        if len(self._hs_buffer):
            raise UnexpectedMessage(f"handshake data after {what} is not aligned with a record boundary")

    # -- out -----------------------------------------------------------------------
    def _send_message(self, msg: Message) -> bytes:
        raw = msg.raw if msg.raw is not None else msg.encode()
        self._pending_hs += raw
        self.trace.message("sent", msg.name, raw, msg)
        if self._one_message_per_record:
            self._flush_handshake()
        return raw

    def _flush_handshake(self) -> None:
        pending = self._pending_hs
        if not pending:
            return
        size = self._max_fragment if self._write_prot is not None else MAX_PLAINTEXT
        for i in range(0, len(pending), size):
            chunk = bytes(pending[i:i + size])
            if self._write_prot is not None:
                rec = self._write_prot.seal(_HANDSHAKE, chunk)
            else:
                # RFC 8446 §5.1: the very first ClientHello record may say 0x0301 for old middleboxes
                first = self.is_client and not self._plain_records_sent
                rec = plaintext_record(_HANDSHAKE, chunk,
                                       0x0301 if first else self._record_version())
                self._plain_records_sent += 1
            self._out.append(rec)
            self.trace.record("sent", "handshake", rec, len(rec) - 5, self._write_prot is not None)
        pending.clear()

    def _record_version(self) -> int:
        """legacy_record_version: the negotiated version in TLS 1.0-1.2, else 0x0303."""
        return self.version if self.tls12 else 0x0303

    def _send_ccs12(self, writer) -> None:
        """RFC 5246 §7.1: send ChangeCipherSpec, then protect with the new write state."""
        self._flush_handshake()
        rec = plaintext_record(_CCS, b"\x01", self.version)
        self._out.append(rec)
        self.trace.add("record", "sent", "change_cipher_spec", raw=rec,
                       summary={"note": "from here our records use the new keys (RFC 5246 §7.1)"})
        self._write_prot = writer

    def _send_ccs(self) -> None:
        self._flush_handshake()
        self._out.append(CCS_RECORD)
        self.trace.add("record", "sent", "change_cipher_spec", raw=CCS_RECORD,
                       summary={"note": "middlebox compatibility (RFC 8446 §D.4)"})

    def _set_write_secret(self, secret: bytes) -> None:
        self._flush_handshake()  # what is pending belongs under the old keys
        self._write_prot = RecordProtector(self.suite, secret)
        self._key_update_after = _key_update_limit(self.suite, self.config)

    def _apply_peer_record_size_limit(self, limit: int) -> None:
        """RFC 8449 §4: the peer takes protected records of at most ``limit`` bytes of
        TLSInnerPlaintext, content type included, so our fragments are ``limit - 1``."""
        from .errors import IllegalParameter
        if limit < 64:
            raise IllegalParameter(f"record_size_limit {limit} is below the minimum of 64 (RFC 8449 §4)")
        self._max_fragment = min(MAX_PLAINTEXT, limit - 1)
        self.trace.add("info", "local", "peer record_size_limit", summary={"limit": limit})

    def _set_read_secret(self, secret: bytes, what: str) -> None:
        self._check_key_change_boundary(what)
        self._read_prot = RecordProtector(self.suite, secret)

    def _send_alert(self, level: int, desc: int) -> None:
        self._flush_handshake()
        payload = bytes((level, desc))
        if self._write_prot is not None:
            rec = self._write_prot.seal(_ALERT, payload)
        else:
            rec = plaintext_record(_ALERT, payload, self._record_version())
        self._out.append(rec)
        self.trace.add("alert", "sent", alert_name(desc), raw=payload,
                       summary={"level": int(level), "description": alert_name(desc),
                                "protected": self._write_prot is not None})

    def _fail(self, err: TLSError) -> None:
        """Send the error's alert once and close (RFC 8446 §6.2)."""
        self.error = err
        self.trace.add("error", "local", type(err).__name__, detail=str(err),
                       summary={"alert": err.alert.name})
        self._pending_hs.clear()  # a half-built flight must not go out
        if not self.handshake_complete:
            self.hs.protect_alert()   # a TLS 1.3 client's alert under its handshake key
        if not self._alert_sent:
            self._alert_sent = True
            try:
                self._send_alert(AlertLevel.fatal, err.alert)
            except TLSError:
                pass
        self._finish_closed(str(err), alert_sent=err.alert.name)

    def _finish_closed(self, error: str | None, alert_sent: str | None = None,
                       alert_received: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.trace.add("state", "local", "CLOSED", summary={"from": self.state.name})
        self.state = Closed
        self._events.append(ev.ConnectionClosed(error=error, alert_sent=alert_sent,
                                                alert_received=alert_received))

    # -- keys ----------------------------------------------------------------------
    def _new_schedule(self, suite: SuiteInfo) -> KeySchedule:
        # not a bound method of the connection: a schedule that holds its connection makes
        # every connection a reference cycle, freed only by the cyclic collector, whose full
        # passes stall a server holding thousands of connections (measured: 0.3-0.5 s).
        # Without a key log the trace's own method is all a secret needs.
        return KeySchedule(suite, on_secret=self.trace.secret_named if self.keylog is None
                           else _SecretReporter(self))

    def _update_write_key(self) -> None:
        self._flush_handshake()
        self._app_write_secret = self.schedule.next_traffic_secret(self._app_write_secret)
        self._write_prot = RecordProtector(self.suite, self._app_write_secret)
        self._key_update_after = _key_update_limit(self.suite, self.config)
        self.trace.add("secret", "local", "write key updated", summary={"length": len(self._app_write_secret)})

    def _handle_key_update(self, msg: KeyUpdate) -> None:
        """RFC 8446 §4.6.3: move to the next read secret, and answer if asked."""
        from .errors import IllegalParameter
        if msg.request_update not in (0, 1):
            raise IllegalParameter(f"KeyUpdate request_update value {msg.request_update}")
        self._key_updates_in_a_row += 1
        if self._key_updates_in_a_row > MAX_KEY_UPDATES_IN_A_ROW:
            raise UnexpectedMessage(f"more than {MAX_KEY_UPDATES_IN_A_ROW} KeyUpdates without "
                                    "application data in between")
        self._check_key_change_boundary("KeyUpdate")
        self._app_read_secret = self.schedule.next_traffic_secret(self._app_read_secret)
        self._read_prot = RecordProtector(self.suite, self._app_read_secret)
        self.trace.add("secret", "local", "read key updated", summary={"length": len(self._app_read_secret)})
        if msg.request_update == 1 and not self._close_sent:
            self._send_message(KeyUpdate(request_update=0))
            self._update_write_key()

    # -- shared derivations -------------------------------------------------------------
    def _now_utc(self):
        """The validation time: the provider's clock (or the fixed ``now`` a client was given), in UTC."""
        return self._now or _from_timestamp(self.provider.time(), _UTC)

    # -- hooks for subclasses ------------------------------------------------------
    def _can_send_application_data(self) -> bool:
        return self.handshake_complete

    def _can_receive_application_data(self) -> bool:
        return self.handshake_complete

    def _ccs_allowed(self) -> bool:
        return True

    def _note_application_data(self, fragment: bytes) -> bool:
        """Hook: account for received application data; True if it is 0-RTT data."""
        return False

    def _complete(self, resumed: bool = False, early_data_accepted: bool | None = None) -> None:
        self.handshake_complete = True
        n = self.negotiated
        n["resumed"] = resumed
        n["early_data_accepted"] = early_data_accepted
        self.trace.add("info", "local", "handshake complete", summary=dict(n))
        self._events.append(ev.HandshakeComplete(
            version=n["version"], cipher_suite=n["cipher_suite"], group=n["group"],
            signature_scheme=n["signature_scheme"], alpn_protocol=n["alpn_protocol"],
            server_name=n["server_name"], peer_certificates=list(self.peer_certificates),
            hello_retry=n["hello_retry"], resumed=resumed, early_data_accepted=early_data_accepted))


class _SecretReporter:
    """What a key schedule calls for each secret it derives: the trace entry (by name, never
    the value) and the key log line.  It holds the connection weakly (see _new_schedule)."""

    __slots__ = ("_conn", "_trace", "_keylog")

    def __init__(self, conn) -> None:
        self._conn = weakref.ref(conn)
        self._trace = conn.trace
        self._keylog = conn.keylog

    def __call__(self, name: str, secret: bytes) -> None:
        self._trace.secret_named(name, secret)
        if self._keylog is not None and name in LABELS:
            conn = self._conn()
            if conn is not None:
                self._keylog.write(LABELS[name], conn.client_random, secret)
