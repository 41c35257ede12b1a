"""Run probes: a bounded, concurrent runner on asyncio.

Each probe is one TCP connection and one handshake of tlslab's own engine
(:class:`~tlslab.proto.client.ClientConnection`), read back through its trace.  The
runner bounds the whole plan: a deadline (monotonic time), a budget of handshakes, and
a number of connections in flight.  Identical ClientHellos are sent once (a cache keyed
by :meth:`ProbeSpec.key`).  Only loopback-safe I/O happens here; the engine stays sans-IO.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Iterable

from .outcome import CertificateRequestInfo, ProbeOutcome
from .spec import ProbeSpec

_READ = 65536
#: bytes of a non-TLS answer kept to say what it looks like
_FIRST_BYTES = 512
#: how long to wait after a completed handshake for the server's verdict on our (empty)
#: client certificate: TLS 1.3 servers send it after the client's Finished (RFC 8446
#: §4.4.2.4), nginx answers the HTTP request with 400
_VERDICT_WAIT = 1.0
_HTTP_LIMIT = 16384
#: closure alerts (RFC 8446 §6.1): the end of a connection, not a failure (JSSE sends
#: user_canceled before close_notify when it closes a healthy TLS 1.3 connection)
_CLOSURE_ALERTS = ("close_notify", "user_canceled")


def looks_like_tls(data: bytes) -> bool:
    """RFC 8446 §5.1 / RFC 5246 §6.2.1: a record starts with a known content type and a
    major version of 3 (SSL 3.0 to TLS 1.3); an SSL 2 server hello starts with 0x80."""
    if not data:
        return True
    if data[0] & 0x80 and len(data) >= 3 and data[2] == 4:
        return True  # SSLv2 SERVER-HELLO (RFC 6176 context): still TLS-family
    if data[0] not in (20, 21, 22, 23, 24):
        return False
    return len(data) < 2 or data[1] == 3


class ProbeRunner:
    """Runs :class:`ProbeSpec` against one server.

    ``connect_host``/``port``: where to connect; ``server_name``: SNI (when the spec sends
    it) and the HTTP Host; ``deadline``: ``time.monotonic()`` value after which nothing
    new starts and running probes are cut; ``max_handshakes``: budget of connections.
    ``certificate_chain``/``private_key``: a client identity every probe offers.
    """

    def __init__(self, connect_host: str, port: int, server_name: str | None, *,
                 deadline: float, max_handshakes: int = 40, concurrency: int = 8,
                 certificate_chain: list | None = None, private_key: Any = None) -> None:
        self.host = connect_host
        self.port = port
        self.server_name = server_name
        self.deadline = deadline
        self.max_handshakes = max_handshakes
        self.identity = (certificate_chain, private_key)
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: dict[tuple, asyncio.Task] = {}
        self.started = 0
        self.outcomes: list[ProbeOutcome] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def run(self, spec: ProbeSpec) -> ProbeOutcome:
        """The outcome of ``spec`` (shared with an identical probe already run, under this
        request's own name and purpose)."""
        key = spec.key()
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(self._run(spec))
        outcome = await asyncio.shield(task)
        if outcome.spec is not spec and outcome.spec.name != spec.name:
            outcome = dataclasses.replace(outcome, spec=spec)
        return outcome

    async def run_all(self, specs: Iterable[ProbeSpec]) -> list[ProbeOutcome]:
        return list(await asyncio.gather(*(self.run(s) for s in specs)))

    async def _run(self, spec: ProbeSpec) -> ProbeOutcome:
        async with self._sem:
            if self.started >= self.max_handshakes:
                return ProbeOutcome(spec, "skipped", f"handshake budget of {self.max_handshakes} used")
            if self.remaining() <= 0.02:
                return ProbeOutcome(spec, "skipped", "time budget used")
            self.started += 1
            order = self.started
            try:
                outcome = await probe_once(self.host, self.port, self.server_name, spec,
                                           deadline=self.deadline, identity=self.identity)
            except Exception as e:  # noqa: BLE001 - a probe never takes the plan down
                # (an engine bug must be reported as what it is, not as a task traceback)
                outcome = ProbeOutcome(spec, "local-error",
                                       f"internal error in tlslab: {type(e).__name__}: {e}")
            outcome.order = order
            self.outcomes.append(outcome)
            self.outcomes.sort(key=lambda o: o.order)  # listed in the order they were started
            return outcome


async def probe_once(host: str, port: int, server_name: str | None, spec: ProbeSpec, *,
                     deadline: float, identity: tuple = (None, None)) -> ProbeOutcome:
    """One connection and handshake; never raises for anything the server does."""
    from ..proto.client import ClientConnection
    from ..proto.config import ClientConfig

    start = time.monotonic()
    kwargs = spec.client_config_kwargs(server_name)
    chain, key = identity
    if chain:
        kwargs.update(certificate_chain=chain, private_key=key)
    try:
        config = ClientConfig(**kwargs)
    except ValueError as e:
        # a swapped dimension can make a hello the engine refuses to build (TLS 1.3 with
        # no TLS 1.3 suite): nothing to send, nothing learnt
        return ProbeOutcome(spec, "skipped", f"this ClientHello cannot be built: {e}")

    def done(outcome: ProbeOutcome) -> ProbeOutcome:
        outcome.elapsed_ms = (time.monotonic() - start) * 1000
        return outcome

    budget = deadline - start
    if budget <= 0:
        return done(ProbeOutcome(spec, "skipped", "time budget used"))
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), budget)
    except ConnectionRefusedError:
        return done(ProbeOutcome(spec, "refused", f"connection refused by port {port}"))
    except asyncio.TimeoutError:
        return done(ProbeOutcome(spec, "timeout", f"no TCP connection within {budget:.1f} s"))
    except OSError as e:
        return done(ProbeOutcome(spec, "unreachable", e.strerror or str(e)))
    conn = ClientConnection(config)
    state: dict[str, Any] = {"first": bytearray(), "received": 0, "eof": False, "reset": False}
    try:
        conn.start_handshake()
        try:
            await asyncio.wait_for(_handshake(conn, reader, writer, state), deadline - time.monotonic())
        except asyncio.TimeoutError:
            state["timeout"] = True
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            state["reset"] = True
        if conn.handshake_complete and not conn.closed and _certificate_requested(conn.trace):
            await _server_verdict(conn, reader, writer, state, server_name, deadline)
    finally:
        writer.transport.abort()
    return done(read_outcome(spec, conn, state, deadline - start))


async def _handshake(conn, reader, writer, state: dict) -> None:
    writer.write(conn.data_to_send())
    await writer.drain()
    while not conn.handshake_complete and not conn.closed:
        data = await reader.read(_READ)
        if not data:
            state["eof"] = True
            return
        if not state["received"] and not looks_like_tls(data):
            state["not_tls"] = True
        state["received"] += len(data)
        if len(state["first"]) < _FIRST_BYTES:
            state["first"] += data[:_FIRST_BYTES - len(state["first"])]
        if state.get("not_tls"):
            # a banner may come in pieces: wait briefly for the rest, to show it whole
            try:
                more = await asyncio.wait_for(reader.read(_FIRST_BYTES), 0.2)
                state["first"] += more[:_FIRST_BYTES - len(state["first"])]
            except (asyncio.TimeoutError, OSError):
                pass
            return
        conn.receive_data(data)
        out = conn.data_to_send()
        if out:
            writer.write(out)
            await writer.drain()


def _certificate_requested(trace) -> bool:
    return any(e.kind == "message" and e.direction == "received" and
               e.name.startswith("CertificateRequest") for e in trace.entries)


async def _server_verdict(conn, reader, writer, state: dict, server_name: str | None,
                          deadline: float) -> None:
    """After a handshake in which the server asked for a certificate: its verdict, an
    alert (RFC 8446 §4.4.2.4) or a close, or, from servers that complete the handshake
    and refuse at the HTTP level (nginx), the answer to a GET request."""
    from ..proto.events import ApplicationData

    async def read_some(limit: float) -> bytes | None:
        try:
            data = await asyncio.wait_for(reader.read(_READ), limit)
        except (asyncio.TimeoutError, OSError):
            return None
        if not data:
            state["eof"] = True
            return None
        body = bytearray()
        for event in conn.receive_data(data):
            if isinstance(event, ApplicationData):
                body += event.data
        out = conn.data_to_send()
        if out:
            writer.write(out)
        return bytes(body)

    # ask at once: a server that refuses sends its alert before it reads the request
    # (TLS 1.3 checks the client's Certificate with its Finished), one that refuses at the
    # HTTP level answers the request, and one that accepts answers it too
    host = server_name or "localhost"
    try:
        conn.send_application_data(f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tlslab-diagnose"
                                   f"\r\nConnection: close\r\n\r\n".encode("ascii", "replace"))
        writer.write(conn.data_to_send())
        await writer.drain()
    except Exception:  # noqa: BLE001 - the server may be gone already; the trace says why
        return
    response = bytearray()
    end = time.monotonic() + max(min(_VERDICT_WAIT, deadline - time.monotonic()), 0)
    while time.monotonic() < end and not conn.closed and len(response) < _HTTP_LIMIT:
        data = await read_some(end - time.monotonic())
        if data is None:
            break
        response += data
        if b"\r\n\r\n" in response:
            break  # the status line and headers say enough
    if response:
        state["http"] = bytes(response[:_HTTP_LIMIT])


def _cr_info(entry, version: str | None) -> CertificateRequestInfo:
    from ..proto.names import ExtensionType, SignatureScheme, name_of
    from .names import dn_text
    msg = entry.message
    info = CertificateRequestInfo(version=version or "?")
    try:
        if entry.name == "CertificateRequest":  # TLS 1.3, RFC 8446 §4.3.2
            sa = msg.ext_value(ExtensionType.signature_algorithms)
            cas = msg.ext_value(ExtensionType.certificate_authorities)
            schemes = list(sa.supported_signature_algorithms) if sa is not None else []
            names = list(cas.authorities) if cas is not None else []
        else:  # TLS 1.2 / 1.1, RFC 5246 §7.4.4
            schemes = list(getattr(msg, "supported_signature_algorithms", None) or [])
            names = list(msg.certificate_authorities or [])
        info.signature_algorithms = [name_of(SignatureScheme, s) for s in schemes]
        info.ca_names = [dn_text(bytes(n)) for n in names[:64]]
    except (AttributeError, TypeError, ValueError):
        pass
    return info


def _http_verdict(data: bytes) -> str:
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").strip()
    text = body.decode("latin-1", "replace")
    note = ""
    lowered = text.lower()
    for phrase in ("no required ssl certificate was sent", "ssl certificate error",
                   "client certificate"):
        if phrase in lowered:
            at = lowered.index(phrase)
            note = " (" + " ".join(text[at:at + len(phrase)].split()) + ")"
            break
    return f"HTTP answer {status[:80]}{note}" if status.startswith("HTTP/") else \
        f"{len(data)} bytes of application data"


def read_outcome(spec: ProbeSpec, conn, state: dict, budget: float) -> ProbeOutcome:
    """The :class:`ProbeOutcome` of a finished connection, from the engine's trace."""
    trace = conn.trace
    neg = dict(conn.negotiated)
    out = ProbeOutcome(spec, "ok", trace=trace, first_bytes=bytes(state["first"]),
                       received_bytes=state["received"],
                       peer_certificates=list(conn.peer_certificates))
    out.version = neg.get("version")
    out.hello_retry = bool(neg.get("hello_retry"))
    last_server = None
    for e in trace.entries:
        if e.kind == "message" and e.direction == "received":
            out.server_messages.append(e.name)
            last_server = e.name
            if e.name.startswith("CertificateRequest"):
                out.certificate_request = _cr_info(e, out.version)
        elif e.kind == "message" and e.direction == "sent" and e.name.startswith("Certificate") \
                and not e.name.startswith("CertificateVerify"):
            msg = e.message
            certs = getattr(msg, "certificate_list", None)
            out.client_certificate_sent = bool(certs)
        elif e.kind == "alert" and e.direction == "received" and e.name not in _CLOSURE_ALERTS:
            out.alert_received = e.name
        elif e.kind == "alert" and e.direction == "sent" and e.name != "close_notify":
            out.alert_sent = e.name
    if state.get("not_tls"):
        out.status = "not-tls"
        out.detail = describe_non_tls(out.first_bytes)
        return out
    if conn.handshake_complete:
        out.cipher_suite = neg.get("cipher_suite")
        out.group = neg.get("group")
        out.signature_scheme = neg.get("signature_scheme")
        out.alpn = neg.get("alpn_protocol")
        if out.alert_received:
            out.status = "alert"
            out.failed_after = "the client's Finished"
            out.after_handshake = f"alert {out.alert_received}"
        elif state.get("http"):
            out.after_handshake = _http_verdict(state["http"])
        elif state["eof"] and out.certificate_request is not None:
            out.status = "closed"
            out.failed_after = "the client's Finished"
            out.after_handshake = "connection closed"
        return out
    out.failed_after = last_server or "ClientHello"
    if out.alert_received and (conn.error is None or not out.alert_sent):
        out.status = "alert"
    elif conn.error is not None or out.alert_sent:
        out.status = "local-error"
        out.detail = " ".join(str(conn.error or "").split())[:300]
    elif state.get("timeout"):
        out.status = "timeout"
        out.detail = (f"no answer within {budget:.1f} s" if not state["received"] else
                      f"the server stopped answering after {last_server or 'some bytes'}")
    else:
        out.status = "closed"
        out.detail = "reset" if state.get("reset") else ""
    return out


def describe_non_tls(data: bytes) -> str:
    """What a non-TLS answer looks like (RFC 9112 status line, RFC 5321 banner, RFC 4253
    identification string, ...)."""
    text = data[:120].decode("latin-1", "replace")
    first = text.split("\n", 1)[0].strip()
    printable = "".join(ch if 32 <= ord(ch) < 127 else "." for ch in first)[:80]
    if data.startswith(b"HTTP/"):
        return f"an HTTP server (it answered {printable!r}): this port speaks plain HTTP, not TLS"
    if data.startswith(b"SSH-"):
        return f"an SSH server (banner {printable!r})"
    if data[:3].isdigit() and data[3:4] in (b" ", b"-"):
        code = data[:3].decode()
        kind = {"220": "an SMTP or FTP server", "421": "an SMTP or FTP server"}.get(code, "a line-based protocol")
        return f"{kind} (banner {printable!r}): it may need STARTTLS first"
    if data.startswith(b"* OK") or data.startswith(b"+OK"):
        return f"an IMAP or POP3 server (banner {printable!r}): it may need STARTTLS first"
    if data[:1] == b"<" or data.lower().startswith(b"<html"):
        return "an HTML/XML answer, not TLS"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:64]):
        return f"plain text, not TLS ({printable!r})"
    return f"{len(data)} bytes that are not a TLS record (starting {data[:8].hex(' ')})"
