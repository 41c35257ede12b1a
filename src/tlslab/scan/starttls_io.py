"""Bounded reads and writes for the plaintext dialogue before TLS (see :mod:`.starttls`).

Nothing a server sends is trusted: every read waits at most until the caller's deadline,
one line is at most :data:`LINE_LIMIT` bytes, the whole dialogue at most
:data:`TOTAL_LIMIT`, and anything shown to a user goes through :func:`show` (decoded with
``errors='replace'``, control and format characters removed, cut short).
"""
from __future__ import annotations

import asyncio
import time
import unicodedata
from dataclasses import dataclass, field

#: one reply line; RFC 5321 §4.5.3.1.5 allows 512 octets, but real banners run longer
LINE_LIMIT = 4096
#: everything the server may send before TLS starts
TOTAL_LIMIT = 64 * 1024
#: characters of server text kept for display
SHOW_LIMIT = 160


class StartTLSError(Exception):
    """The upgrade to TLS did not happen; ``str()`` is one line saying what the server
    answered (or did not)."""


@dataclass(frozen=True)
class StartTLSInfo:
    """What the plaintext dialogue showed: ``banner`` (the greeting, sanitised and short;
    empty for protocols without one) and ``capabilities`` (e.g. EHLO keywords)."""

    protocol: str
    banner: str = ""
    capabilities: list[str] = field(default_factory=list)


def show(data: bytes | str, limit: int = SHOW_LIMIT) -> str:
    """Server text made safe to print: decoded leniently, control and format characters
    (Unicode Cc/Cf, which include bidi overrides) dropped, whitespace runs folded."""
    data = data[:limit * 4]  # enough for `limit` characters of UTF-8; the rest is cut anyway
    text = data.decode("utf-8", errors="replace") if isinstance(data, (bytes, bytearray)) \
        else data
    text = "".join(" " if ch in "\t\r\n" else ch for ch in text
                   if ch in "\t\r\n" or unicodedata.category(ch) not in ("Cc", "Cf"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def seconds(value: float) -> str:
    """5.0 -> '5', 0.5 -> '0.5' (how long we waited, for messages)."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _bare(what: str) -> str:
    """'the greeting' -> 'greeting', for "no greeting within 5 s"."""
    for article in ("the ", "an ", "a "):
        if what.startswith(article):
            return what[len(article):]
    return what


class Dialogue:
    """The client's side of a line- or message-oriented exchange over asyncio streams.

    Reads go through our own buffer with ``reader.read()`` (never ``readuntil``, whose bound
    is the caller's stream limit), so every size and time limit here holds whatever the
    stream was built with.
    """

    def __init__(self, protocol: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, deadline: float) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self.deadline = deadline
        self.start = time.monotonic()
        self.buffer = bytearray()
        self.received = 0

    # ------------------------------------------------------------------ writing
    async def send(self, data: bytes, what: str) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self._left(what))
        except asyncio.TimeoutError:
            raise StartTLSError(f"could not send {what} within "
                                f"{seconds(time.monotonic() - self.start)} s") from None
        except (ConnectionError, OSError) as e:
            raise StartTLSError(f"the connection failed while sending {what}: "
                                f"{show(e.strerror or type(e).__name__)}") from None

    # ------------------------------------------------------------------ reading
    def _left(self, what: str) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StartTLSError(f"no {_bare(what)} within {seconds(self.deadline - self.start)} s")
        return left

    async def fill(self, what: str) -> None:
        """Read once more into the buffer, or fail saying what we were waiting for."""
        if self.received >= TOTAL_LIMIT:
            raise StartTLSError(f"the server sent more than {TOTAL_LIMIT // 1024} KiB before "
                                f"TLS started (waiting for {what})")
        try:
            chunk = await asyncio.wait_for(
                self.reader.read(min(4096, TOTAL_LIMIT - self.received)), self._left(what))
        except asyncio.TimeoutError:
            raise StartTLSError(f"no {_bare(what)} within "
                                f"{seconds(time.monotonic() - self.start)} s") from None
        except (ConnectionError, OSError) as e:
            raise StartTLSError(f"the connection failed while waiting for {what}: "
                                f"{show(e.strerror or type(e).__name__)}") from None
        if not chunk:
            got = f" (after '{show(self.buffer, 60)}')" if self.buffer else ""
            raise StartTLSError(f"the server closed the connection while waiting for {what}{got}")
        self.received += len(chunk)
        self.buffer += chunk

    async def line(self, what: str) -> bytes:
        """One line without its CRLF (a bare LF is accepted too)."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                if end + 1 > LINE_LIMIT:
                    break
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buffer) >= LINE_LIMIT:
                break
            await self.fill(what)
        raise StartTLSError(f"a line longer than {LINE_LIMIT} bytes from the server while "
                            f"waiting for {what}: '{show(self.buffer, 60)}'")

    async def exactly(self, n: int, what: str) -> bytes:
        while len(self.buffer) < n:
            await self.fill(what)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def until(self, marker: bytes, what: str) -> bytes:
        """Bytes up to and including ``marker`` (for XML, where lines mean nothing)."""
        while (end := self.buffer.find(marker)) < 0:
            await self.fill(what)
        data = bytes(self.buffer[:end + len(marker)])
        del self.buffer[:end + len(marker)]
        return data

    def ready(self, info: StartTLSInfo) -> StartTLSInfo:
        """The server said go: the next bytes must be TLS, so anything it already sent is
        plaintext injected ahead of the handshake (the STARTTLS response-injection class of
        flaws, e.g. CVE-2021-23222 in libpq); we refuse rather than pass it on or drop it."""
        if self.buffer:
            raise StartTLSError(f"the {self.protocol} server sent {len(self.buffer)} bytes after "
                                f"agreeing to TLS, before the handshake: "
                                f"'{show(self.buffer, 60)}'")
        return info
