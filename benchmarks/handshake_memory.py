"""Memory per idle connection, for ``benchmarks/handshake.py``.

Each measurement runs in a forked child, so that neither stack's earlier allocations (nor
the other stack's) are in its heap: the child builds its side, runs a few handshakes it
throws away, then keeps ``n`` completed connections (client objects, server objects, or
both) and reports the growth of its resident set size (``/proc/self/statm``) divided by
``n``.  RSS sees everything: Python objects, ``cryptography``'s and OpenSSL's C allocations,
allocator overhead; ``tracemalloc`` would see only the first.  ``gc.collect()`` and, with
glibc, ``malloc_trim(0)`` run before both readings, so freed memory the allocator still
holds is not counted on either side.  See benchmarks/README.md, "Memory per idle connection".
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
from typing import Callable

WARMUP_HANDSHAKES = 50  # thrown away before the first reading: caches, code paths, arenas


def _malloc_trim() -> Callable[[], object] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def rss_bytes() -> int:
    """This process's resident set size, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def available() -> str | None:
    """None if the measurement can run here, else why not."""
    if not hasattr(os, "fork"):
        return "needs os.fork"
    if not os.path.exists("/proc/self/statm"):
        return "needs /proc/self/statm (Linux)"
    return None


def _settle(trim) -> int:
    gc.collect()
    if trim is not None:
        trim()
    return rss_bytes()


def _child(make_side: Callable[[], Callable[[], tuple]], keep: Callable[[tuple], tuple],
           n: int) -> dict:
    handshake = make_side()
    for _ in range(WARMUP_HANDSHAKES):
        handshake()
    kept: list = [None] * n
    trim = _malloc_trim()
    before = _settle(trim)
    for i in range(n):
        kept[i] = keep(handshake())
    after = _settle(trim)
    return {"bytes_per_connection": (after - before) / n, "rss_before": before,
            "rss_after": after, "connections": n, "malloc_trim": trim is not None}


def measure(make_side: Callable[[], Callable[[], tuple]], keep: Callable[[tuple], tuple],
            n: int) -> dict:
    """In a forked child: ``make_side()`` returns a handshake function (returning what one
    handshake made); ``keep`` picks what an idle connection holds on to.  Returns the
    child's report (``bytes_per_connection`` and the two RSS readings).  Raises
    RuntimeError if the child failed."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code
        code = 1
        try:
            os.close(read_fd)
            report = _child(make_side, keep, n)
            code = 0
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            report = {"error": f"{type(err).__name__}: {err}"}
        try:
            with os.fdopen(write_fd, "w") as f:
                json.dump(report, f)
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    try:
        report = json.loads(text)
    except ValueError:
        report = {"error": f"the child exited with status {status} and no report"}
    if "error" in report:
        raise RuntimeError(report["error"])
    return report
