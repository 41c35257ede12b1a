"""Servers that go bad in the middle of a scan: the scan ends within its limit, keeps what it
learnt, reports the rest as undecided, and never raises."""
from __future__ import annotations

import asyncio
import json
import time

from tlslab.scan.run import scan
from tlslab.scan.target import ScanTarget


class _Relay:
    """A TCP relay in front of a real server that serves ``good`` connections, then resets
    (``mode="reset"``) or accepts and says nothing (``mode="stall"``)."""

    def __init__(self, upstream: int, good: int, mode: str) -> None:
        self.upstream, self.good, self.mode = upstream, good, mode
        self.seen = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer) -> None:
        self.seen += 1
        if self.seen > self.good:
            if self.mode == "reset":
                writer.transport.abort()
            else:
                await asyncio.sleep(30)
                writer.close()
            return
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, uw), pipe(ur, writer))


def _scan_through(openssl_port: int, good: int, mode: str, limit: float) -> tuple[dict, float]:
    async def main():
        relay = _Relay(openssl_port, good, mode)
        port = await relay.start()
        try:
            target = ScanTarget("127.0.0.1", port, server_name="localhost", timeout=0.5)
            start = time.monotonic()
            doc = await scan(target, limit=limit)
            return doc, time.monotonic() - start
        finally:
            relay.server.close()
    return asyncio.run(asyncio.wait_for(main(), limit + 30))


def test_server_that_starts_resetting_mid_scan(openssl_server):
    port = openssl_server("-no_tls1_3")
    doc, took = _scan_through(port, good=12, mode="reset", limit=30)
    assert took < 30
    assert doc["protocols"]["TLS 1.2"] is True  # learnt before it went bad
    assert "error" not in doc and json.dumps(doc, default=str)
    # later steps could not decide: they say so instead of inventing an answer
    assert doc["session_resumption"]["tickets"] in (None, False)


def test_server_that_stalls_mid_scan_is_bounded(openssl_server):
    port = openssl_server("-no_tls1_3")
    doc, took = _scan_through(port, good=12, mode="stall", limit=8)
    assert took < 8 + 5  # the whole-scan limit holds even when every connection stalls
    assert doc["protocols"]["TLS 1.2"] is True
    assert "Traceback" not in json.dumps(doc, default=str)
