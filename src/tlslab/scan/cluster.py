"""The Dask cluster a fleet runs on: a local one by default, a named scheduler otherwise.

``local`` starts a :class:`distributed.LocalCluster` in this process (worker processes by
default: the engine is Python, so scans of many targets want more than one core; threads
in each worker, because a scan mostly waits for the network).  ``tcp://HOST:PORT`` joins
a running scheduler; its workers must be able to import tlslab (and the scan function).
A scheduler that is not there is found out in a few seconds and said in one line.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

#: ``tcp://host:port``, ``tcp://[v6]:port`` (the scheme may be left out)
_ADDRESS = re.compile(r"^(?:tcp://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


class FleetError(Exception):
    """The fleet cannot run (no scheduler, a bad cluster address, no workers)."""


@dataclass
class ClusterHandle:
    """A connected client, what to close, and how it was made (for the report)."""

    client: Any
    cluster: Any | None
    description: str
    start_s: float

    def worker_threads(self) -> int:
        try:
            return sum(self.client.nthreads().values())
        except Exception:  # noqa: BLE001 - a closing cluster: the caller is done anyway
            return 0

    def close(self) -> None:
        """Close client then cluster, each bounded: shutdown must not hang a Ctrl-C."""
        for thing in (self.client, self.cluster):
            if thing is None:
                continue
            try:
                thing.close(timeout=5) if thing is self.client else thing.close(timeout=10)
            except Exception:  # noqa: BLE001 - already gone is as good as closed
                pass


def parse_scheduler_address(text: str) -> tuple[str, str, int]:
    """``tcp://HOST:PORT`` -> (normalised address, host, port); :class:`FleetError`."""
    m = _ADDRESS.match(text.strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise FleetError(f"--cluster {text!r}: expected 'local' or tcp://SCHEDULER:PORT "
                         "(e.g. tcp://10.0.0.5:8786)")
    host, port = m.group(1), int(m.group(2))
    return f"tcp://{host}:{port}", host.strip("[]"), port


def _probe_scheduler(address: str, host: str, port: int, timeout: float) -> None:
    """Check, with a plain socket, that a Dask scheduler answers at ``address``.

    Dask's client would retry a refused connection until its timeout and then say
    little, and it waits without any limit for the greeting of a peer that accepts and
    stays silent.  A scheduler greets first: its handshake message begins with the
    message's length and its frame count, two little-endian 64-bit numbers
    (distributed.comm.tcp); anything else is not a scheduler."""
    connected, greeting = False, b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            connected = True
            deadline = time.monotonic() + timeout
            while len(greeting) < 16:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(16 - len(greeting))
                if not chunk:
                    break
                greeting += chunk
    except ConnectionRefusedError:
        raise FleetError(f"no Dask scheduler at {address}: connection refused") from None
    except (TimeoutError, socket.timeout):
        if connected:
            raise FleetError(f"no Dask scheduler at {address}: something accepts "
                             f"connections there but says nothing (waited {timeout:g} s)"
                             ) from None
        raise FleetError(f"no Dask scheduler at {address}: no answer within "
                         f"{timeout:g} s") from None
    except socket.gaierror as e:
        raise FleetError(f"no Dask scheduler at {address}: cannot resolve {host!r}: "
                         f"{e.strerror or e}") from None
    except OSError as e:
        raise FleetError(f"no Dask scheduler at {address}: {e.strerror or e}") from None
    total = int.from_bytes(greeting[:8], "little")
    frames = int.from_bytes(greeting[8:16], "little")
    if len(greeting) < 16 or not (16 <= total < 1 << 26 and 0 < frames < 1000):
        raise FleetError(f"no Dask scheduler at {address}: something answers there, but "
                         "not in Dask's protocol")


@contextmanager
def quiet_dask(level: int = logging.CRITICAL) -> Iterator[None]:
    """Dask logs tracebacks for events a fleet handles itself (a worker lost, a
    connection closed at shutdown): keep them off the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, saved):
            lg.setLevel(lvl)


def _bounded_client(client_class: Any, address: str, timeout: float) -> Any:
    """``Client(address)``, given ``timeout`` plus a few seconds at most: Dask's own
    timeout does not cover every read of its handshake.  A client that never connects is
    left to its daemon thread."""
    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = client_class(address, timeout=timeout)
        except BaseException as e:  # noqa: BLE001 - reported below, in one line
            box["error"] = e

    thread = threading.Thread(target=connect, name="tlslab-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if "client" in box:
        return box["client"]
    # what Dask raises for a peer speaking another protocol means nothing to a user (a
    # MemoryError from a garbage frame length, a timeout, a closed comm)
    raise FleetError(f"no Dask scheduler at {address}: no working Dask connection "
                     f"within {timeout:g} s")


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl-C reaches every process of the terminal's process group.  Worker processes
    started meanwhile inherit "ignore SIGINT" (and Python keeps an inherited ignore), so
    Ctrl-C is the driver's alone: it stores what finished and closes the cluster, and
    no worker prints a KeyboardInterrupt traceback on its way down."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change signal handlers; nothing to protect
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def open_cluster(cluster: str = "local", *, workers: int | None = None,
                 threads_per_worker: int = 4, processes: bool = True,
                 connect_timeout: float = 5.0) -> ClusterHandle:
    """Connect a :class:`distributed.Client` to the cluster named by ``cluster``."""
    t0 = time.monotonic()
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise FleetError("fleets need Dask: pip install 'dask[distributed]'") from None
    if cluster == "local":
        n = workers or default_workers()
        try:
            with _sigint_ignored():
                local = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                                     processes=processes, dashboard_address=None,
                                     silence_logs=logging.CRITICAL)
        except Exception as e:  # noqa: BLE001 - e.g. no process could be spawned
            raise FleetError(f"cannot start a local Dask cluster: {e}") from None
        client = Client(local)
        how = "worker processes" if processes else "in-process workers"
        return ClusterHandle(client, local, f"local ({n} {how} × {threads_per_worker} "
                             "threads)", time.monotonic() - t0)
    address, host, port = parse_scheduler_address(cluster)
    _probe_scheduler(address, host, port, connect_timeout)
    client = _bounded_client(Client, address, connect_timeout)
    handle = ClusterHandle(client, None, address, 0.0)
    try:
        client.wait_for_workers(1, timeout=connect_timeout)
    except Exception:  # noqa: BLE001 - dask raises TimeoutError
        handle.close()
        raise FleetError(f"the Dask scheduler at {address} has no workers "
                         f"(waited {connect_timeout:g} s)") from None
    handle.start_s = time.monotonic() - t0
    return handle
