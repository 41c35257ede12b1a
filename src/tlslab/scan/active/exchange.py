"""One TCP connection for a crafted exchange: send records, read records, read the server's
first TLS 1.0-1.2 flight.  Every byte is built and parsed with :mod:`tlslab.proto`'s codec.

Connections go through :func:`tlslab.scan.wire.open_stream` (TCP, and STARTTLS when the target
asks).  Time: ``deadline`` is an absolute :func:`time.monotonic` value; every wait is bounded
by it and by the target's own per-connection timeout.
"""
from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field

from ...proto.alerts import alert_name
from ...proto.errors import TLSError
from ...proto.messages import HandshakeBuffer, ServerHello
from ...proto.messages12 import parse_message12
from ...proto.names import ContentType
from .result import CheckResult
from ...proto.provider import Provider
from ...proto.record import RecordReader, plaintext_record

TLS12 = 0x0303
#: what a crafted probe reads at most before giving up on a connection
MAX_READ = 512 * 1024

#: TLS 1.2 suites a probe offers to get any handshake going: ECDHE, DHE and RSA key
#: exchange with AES-GCM, ChaCha20 and AES-CBC (IANA code points)
BROAD_SUITES = (0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009E, 0x009F,
                0xC023, 0xC027, 0xC009, 0xC013, 0xC00A, 0xC014, 0x0033, 0x0039,
                0x009C, 0x009D, 0x003C, 0x003D, 0x002F, 0x0035, 0x000A)
GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x0100)
SIGNATURE_SCHEMES = (0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601,
                     0x0807, 0x0203, 0x0201)


class CheckAborted(Exception):
    """The time budget ran out, or the target could not be reached."""


def remaining(deadline: float, cap: float | None = None) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CheckAborted("the time budget of the check ran out")
    return left if cap is None else min(left, cap)


#: connections opened by the running check (a list, so that tasks started by asyncio.gather,
#: which get a copy of the context, count into the same one)
_CONNECTIONS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "tlslab_scan_active_connections", default=None)


async def guarded(name: str, check, target, deadline: float):
    """Run ``check(target, deadline)``; a run out of time or a target out of reach becomes an
    undecided :class:`CheckResult`; ``details["connections"]`` counts what it opened."""
    from .result import CheckResult
    count = [0]
    token = _CONNECTIONS.set(count)
    try:
        result = await check(target, deadline)
    except CheckAborted as e:
        result = CheckResult(name, None, f"not decided: {e}", {"error": str(e)})
    finally:
        _CONNECTIONS.reset(token)
    result.details["connections"] = count[0]
    return result


@dataclass
class Flight:
    """A server's answer to a ClientHello, up to ServerHelloDone (full handshake) or its
    ChangeCipherSpec (abbreviated handshake), or how it ended instead."""

    server_hello: ServerHello | None = None
    certificates: list[bytes] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    done: bool = False          # ServerHelloDone seen
    resumed: bool = False       # CCS right after ServerHello (and NewSessionTicket)
    ended: str = ""             # "", "alert <name>", "closed", "reset", "timeout", "malformed"

    @property
    def version(self) -> int | None:
        return self.server_hello.legacy_version if self.server_hello is not None else None

    def ext(self, ext_type: int):
        return self.server_hello.ext(ext_type) if self.server_hello is not None else None


@dataclass
class Answer:
    """What came back after a crafted message: records (content type, payload), then how
    the wait ended: ``alert <name>``, ``closed``, ``reset``, ``timeout`` or ``malformed``."""

    records: list[tuple[int, bytes]] = field(default_factory=list)
    ended: str = "timeout"

    @property
    def alert(self) -> str | None:
        return self.ended[6:] if self.ended.startswith("alert ") else None

    def of_type(self, ctype: int) -> bytes:
        return b"".join(f for t, f in self.records if t == ctype)


class Exchange:
    """One connection to the target, for one crafted exchange."""

    def __init__(self, target, deadline: float, reader, writer) -> None:
        self.target = target
        self.deadline = deadline
        self._reader = reader
        self._writer = writer
        self.records = RecordReader()
        # answers that do not follow the rules must still be read: a heartbeat record (24),
        # and records up to 2^16 - 1 bytes (a leaking server's, or a protected one)
        self.records.extra_types = frozenset({ContentType.heartbeat})
        self.received = 0
        self.version = TLS12

    @classmethod
    async def open(cls, target, deadline: float) -> "Exchange":
        from ..wire import ConnectFailed, open_stream  # TCP, and STARTTLS when asked
        remaining(deadline)
        count = _CONNECTIONS.get()
        if count is not None:
            count[0] += 1
        try:
            reader, writer = await open_stream(target, deadline)
        except ConnectFailed as e:
            raise CheckAborted(f"cannot connect to {target.label()}: {e}") from None
        return cls(target, deadline, reader, writer)

    async def __aenter__(self) -> "Exchange":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False if the server already closed the connection."""
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), remaining(self.deadline, self.target.timeout))
        except (OSError, ConnectionError):
            return False
        return True

    def record(self, content_type: int, fragment: bytes) -> bytes:
        """A record in clear, with the negotiated version in its header."""
        return plaintext_record(content_type, fragment, self.version)

    async def _next(self, timeout: float) -> tuple[int, bytes] | str:
        """The next record, or how reading ended (``closed``, ``reset``, ``timeout``,
        ``malformed``)."""
        end = time.monotonic() + timeout
        while True:
            try:
                rec = self.records.next_record(protected=True, tls12=True)
            except TLSError:
                return "malformed"
            if rec is not None:
                return rec[0][0], rec[1]
            if self.received > MAX_READ:
                return "malformed"
            left = min(end - time.monotonic(), self.deadline - time.monotonic())
            if left <= 0:
                return "timeout"
            try:
                data = await asyncio.wait_for(self._reader.read(65536), left)
            except asyncio.TimeoutError:
                return "timeout"
            except (ConnectionResetError, BrokenPipeError):
                return "reset"
            except OSError:
                return "reset"
            if not data:
                return "closed"
            self.received += len(data)
            self.records.add(data)

    async def answer(self, wait: float, enough=None) -> Answer:
        """Records for up to ``wait`` seconds, until an alert, the end of the connection, or
        ``enough(answer)`` says so."""
        ans = Answer()
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                ans.ended = "timeout"
                return ans
            got = await self._next(left)
            if isinstance(got, str):
                ans.ended = got
                return ans
            ctype, fragment = got
            ans.records.append((ctype, fragment))
            if ctype == ContentType.alert and len(fragment) == 2:
                ans.ended = f"alert {alert_name(fragment[1])}"
                return ans
            if enough is not None and enough(ans):
                ans.ended = "enough"
                return ans

    async def handshake(self, conn) -> bool:
        """Run the engine's own client (a :class:`tlslab.ClientConnection`) over this
        connection until its handshake completes (True) or fails (False)."""
        from ...proto import events as ev
        conn.start_handshake()
        while True:
            out = conn.data_to_send()
            if out and not await self.send(out):
                return False
            if conn.handshake_complete:
                return True
            if conn.closed:
                return False
            try:
                data = await asyncio.wait_for(self._reader.read(65536),
                                              remaining(self.deadline, self.target.timeout))
            except asyncio.TimeoutError:
                return False
            except OSError:
                return False
            if not data:
                return False
            for event in conn.receive_data(data):
                if isinstance(event, ev.ConnectionClosed):
                    out = conn.data_to_send()
                    if out:
                        await self.send(out)
                    return conn.handshake_complete

    async def hello(self, client_hello: bytes) -> Flight:
        """Send a ClientHello record and read the server's flight in clear."""
        flight = Flight()
        if not await self.send(client_hello):
            flight.ended = "reset"
            return flight
        hs = HandshakeBuffer()
        while True:
            got = await self._next(remaining(self.deadline, self.target.timeout))
            if isinstance(got, str):
                flight.ended = got
                return flight
            ctype, fragment = got
            if ctype == ContentType.alert and len(fragment) == 2:
                flight.ended = f"alert {alert_name(fragment[1])}"
                return flight
            if ctype == ContentType.change_cipher_spec and flight.server_hello is not None:
                flight.resumed = True
                return flight
            if ctype != ContentType.handshake:
                flight.ended = "malformed"
                return flight
            try:
                hs.add(fragment)
                while (raw := hs.pop_message()) is not None:
                    if flight.server_hello is None:
                        flight.server_hello = ServerHello.parse(raw)
                        flight.messages.append("ServerHello")
                        self.version = flight.server_hello.legacy_version
                        continue
                    msg = parse_message12(raw, self.version)
                    flight.messages.append(msg.name)
                    if msg.name == "Certificate12":
                        flight.certificates = [bytes(c) for c in msg.certificate_list]
                    elif msg.name == "ServerHelloDone":
                        flight.done = True
                        return flight
            except TLSError:
                flight.ended = "malformed"
                return flight


def client_hello(target, *, suites=BROAD_SUITES, session_id: bytes = b"",
                 ticket: bytes | None = None, heartbeat: bool = False,
                 extended_master_secret: bool = True, provider: Provider | None = None) -> bytes:
    """A TLS 1.2 ClientHello record, built by the scan's :func:`~tlslab.scan.hello.build_client_hello`
    (legacy_version TLS 1.2, no supported_versions, so the server negotiates TLS 1.2 or
    older).  ``ticket``: the session_ticket extension's body (b"" asks for one, None leaves
    it out); ``heartbeat``: offer RFC 6520 Heartbeat (peer_allowed_to_send)."""
    from ..hello import HelloOffer, build_client_hello
    offer = HelloOffer(version=TLS12, cipher_suites=tuple(suites), groups=GROUPS,
                       signature_algorithms=SIGNATURE_SCHEMES, sni=target.sni,
                       status_request=False, session_ticket=ticket,
                       extended_master_secret=extended_master_secret, heartbeat=heartbeat,
                       session_id=session_id)
    record, _ = build_client_hello(offer, provider)
    return record


def describe_flight(flight: Flight) -> str:
    """How a ClientHello was answered, in words, when it was not with a ServerHello."""
    return {"closed": "closed the connection", "reset": "reset the connection",
            "timeout": "did not answer in time", "malformed": "answered with something that is not TLS",
            }.get(flight.ended, f"answered with {flight.ended}") if flight.ended else "stopped"


def hello_not_answered(name: str, flight: Flight, check: str):
    """The result of check ``name`` (called ``check`` in the text) when its TLS 1.2 ClientHello
    got no complete ServerHello flight: not applicable if the server refused it with an
    alert (the check needs TLS 1.0-1.2), else not decided."""
    if flight.ended.startswith("alert "):
        return CheckResult(name, False, "not applicable: the server refused a TLS 1.2 "
                           f"ClientHello ({describe_flight(flight)}); {check} needs TLS 1.0-1.2",
                           {"applicable": False, "hello": flight.ended})
    return CheckResult(name, None, f"not decided: the server {describe_flight(flight)} "
                       "to a TLS 1.2 ClientHello", {"hello": flight.ended})


__all__ = ["Answer", "BROAD_SUITES", "CheckAborted", "Exchange", "Flight", "client_hello",
           "describe_flight", "guarded", "hello_not_answered", "remaining"]
