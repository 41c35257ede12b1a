"""Full handshakes with tlslab's own engine, for what only a completed (or encrypted)
handshake shows: TLS 1.3 certificates and signature schemes, resumption, 0-RTT, ALPN in
EncryptedExtensions, stapled OCSP in TLS 1.3, renegotiation.  The engine stays sans-IO:
this module moves its bytes over a scan connection (:func:`.wire.open_stream`)."""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .target import ScanTarget
from .wire import ConnectFailed, open_stream

_READ = 65536


@dataclass
class Handshake:
    """One engine connection's result.  ``conn`` is the ClientConnection (its ``negotiated``,
    ``peer_certificates`` and ``trace`` are the evidence); ``failure`` says why there is no
    completed handshake (None when there is one)."""

    conn: Any = None
    failure: str | None = None
    kind: str = "ok"                 # ok, refused, timeout, unreachable, starttls_failed, failed
    events: list = field(default_factory=list)
    data: bytes = b""                # application data received (after ``request``)

    @property
    def ok(self) -> bool:
        return self.failure is None


async def handshake(target: ScanTarget, deadline: float, *, request: bytes | None = None,
                    early_data: bytes | None = None, wait_after: float = 0.0,
                    after: Callable[[Any], None] | None = None,
                    until: Callable[[Any], bool] | None = None, **config: Any) -> Handshake:
    """Connect and handshake with ``ClientConfig(**config)`` (never verifying: the scan
    judges certificates itself); then call ``after(conn)`` (which may queue something to
    send), send ``request``, and read the answer for up to ``wait_after`` seconds (tickets
    arrive after the handshake in TLS 1.3), or until ``until(conn)`` is true."""
    from ..proto.client import ClientConnection
    from ..proto.config import ClientConfig
    from ..proto.events import ApplicationData

    config.setdefault("server_name", target.sni)
    config.setdefault("insecure", True)
    try:
        cfg = ClientConfig(**config)
    except ValueError as e:
        return Handshake(failure=f"this ClientHello cannot be built: {e}", kind="failed")
    try:
        reader, writer = await open_stream(target, deadline)
    except ConnectFailed as e:
        return Handshake(failure=str(e), kind=e.kind)
    conn = ClientConnection(cfg)
    result = Handshake(conn=conn)
    end = min(deadline, time.monotonic() + target.timeout)
    try:
        conn.start_handshake(early_data=early_data)
        writer.write(conn.data_to_send())
        while not conn.handshake_complete and not conn.closed:
            left = end - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError
            data = await asyncio.wait_for(reader.read(_READ), left)
            if not data:
                break
            result.events += conn.receive_data(data)
            out = conn.data_to_send()
            if out:
                writer.write(out)
        if conn.handshake_complete and (request is not None or wait_after > 0 or after):
            if after is not None:
                after(conn)
                writer.write(conn.data_to_send())
            if request is not None:
                conn.send_application_data(request)
                writer.write(conn.data_to_send())
            stop = min(end, time.monotonic() + max(wait_after, 0.05))
            while not conn.closed and time.monotonic() < stop and not (until and until(conn)):
                try:
                    data = await asyncio.wait_for(reader.read(_READ), stop - time.monotonic())
                except asyncio.TimeoutError:
                    break
                if not data:
                    break
                events = conn.receive_data(data)
                result.events += events
                result.data += b"".join(e.data for e in events if isinstance(e, ApplicationData))
                out = conn.data_to_send()
                if out:
                    writer.write(out)
        if conn.handshake_complete and not conn.closed:
            # a clean close_notify: OpenSSL drops a session from its cache when the
            # connection ends without one, so resumption by session ID would look absent
            conn.close()
            writer.write(conn.data_to_send())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.drain(), 0.5)
    except asyncio.TimeoutError:
        result.failure, result.kind = f"no completed handshake within {target.timeout:.1f} s", "timeout"
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        result.failure, result.kind = "the server reset the connection", "failed"
    except OSError as e:
        result.failure, result.kind = e.strerror or str(e), "failed"
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()
    if result.failure is None and not conn.handshake_complete:
        result.kind = "failed"
        result.failure = str(conn.error) if conn.error is not None else "the server closed the connection"
    return result
