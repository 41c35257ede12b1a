"""One scan connection: TCP (after a STARTTLS dialogue when the target asks), a ClientHello
out, the server's first flight in.  Every step is bounded by the caller's deadline
(``time.monotonic()``); nothing here raises for what a server does."""
from __future__ import annotations

import asyncio
import contextlib
import time

from .hello import FirstFlightParser, HelloAnswer, HelloOffer, build_client_hello
from .target import ScanTarget

_READ = 65536


class ConnectFailed(Exception):
    """No stream to speak TLS on: ``kind`` is refused, timeout, unreachable or starttls_failed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


async def open_stream(target: ScanTarget, deadline: float):
    """A TCP connection to ``target``, past its STARTTLS dialogue if it has one.

    Returns ``(reader, writer)``; raises :class:`ConnectFailed` with a one-line reason."""
    from .pacing import before_connection
    await before_connection()
    budget = min(deadline - time.monotonic(), target.timeout)
    if budget <= 0:
        raise ConnectFailed("timeout", "no time left for another connection")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), budget)
    except ConnectionRefusedError:
        raise ConnectFailed("refused", f"connection refused by port {target.port}") from None
    except asyncio.TimeoutError:
        raise ConnectFailed("timeout", f"no TCP connection within {budget:.1f} s") from None
    except OSError as e:
        raise ConnectFailed("unreachable", e.strerror or str(e)) from None
    if target.starttls:
        from .starttls import StartTLSError, negotiate
        try:
            await negotiate(target.starttls, reader, writer, server_name=target.sni,
                            deadline=min(deadline, time.monotonic() + target.timeout))
        except StartTLSError as e:
            writer.transport.abort()
            raise ConnectFailed("starttls_failed", str(e)) from None
        except (OSError, asyncio.IncompleteReadError) as e:
            writer.transport.abort()
            raise ConnectFailed("starttls_failed", f"the connection broke during STARTTLS: "
                                f"{getattr(e, 'strerror', None) or e}") from None
    return reader, writer


async def read_first_flight(reader, parser: FirstFlightParser, deadline: float,
                            timeout: float) -> HelloAnswer:
    """Feed ``parser`` until it has the answer, the peer closes, or time is up."""
    end = min(deadline, time.monotonic() + timeout)
    try:
        while not parser.done:
            left = end - time.monotonic()
            if left <= 0:
                return parser.finish("timeout", f"no answer within {timeout:.1f} s")
            data = await asyncio.wait_for(reader.read(_READ), left)
            if not data:
                return parser.finish("closed", "the server closed the connection")
            parser.feed(data)
    except asyncio.TimeoutError:
        return parser.finish("timeout", f"no complete answer within {timeout:.1f} s")
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return parser.finish("reset", "the server reset the connection")
    except OSError as e:
        return parser.finish("reset", e.strerror or str(e))
    return parser.finish()


async def send_hello(target: ScanTarget, offer: HelloOffer | bytes, deadline: float) -> HelloAnswer:
    """Connect, send one ClientHello (an offer, or ready-made bytes such as an SSL 2.0
    CLIENT-HELLO), and read the server's first answer."""
    try:
        reader, writer = await open_stream(target, deadline)
    except ConnectFailed as e:
        return HelloAnswer(kind=e.kind, detail=str(e))
    try:
        data = offer if isinstance(offer, bytes) else build_client_hello(offer)[0]
        writer.write(data)
        try:
            await asyncio.wait_for(writer.drain(), max(deadline - time.monotonic(), 0.01))
        except (asyncio.TimeoutError, OSError):
            return HelloAnswer(kind="reset", detail="could not send the ClientHello")
        return await read_first_flight(reader, FirstFlightParser(), deadline, target.timeout)
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()
