"""The worker side of a fleet: one target's scan, run on a Dask worker.

:func:`run_scan_task` is what the driver submits.  It is a plain module-level function of
its inputs (the scan function, the target and the options as JSON), so any worker that
can import tlslab runs it, and everything it returns is JSON.  It never raises: whatever
the scan function does (raise, hang, return garbage) becomes a failed result with a
one-line message, so a bad target can never take a worker or the fleet down.
"""
from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

ScanFunction = Callable[[dict, dict], dict]

#: error codes of a scan document that are worth another attempt after a pause; a
#: document's own ``error.retryable`` (true/false) overrides this
RETRYABLE_CODES = frozenset({"timeout", "connection-reset", "reset", "connect-failed",
                             "internal", "stalled", "eof"})


def default_scan() -> ScanFunction:
    """``tlslab.scan.run.scan_target``, imported when first needed (it may not exist in
    this build yet; the fleet machinery does not depend on it)."""
    try:
        from .run import scan_target  # type: ignore[attr-defined]
    except ImportError:
        from .cluster import FleetError
        raise FleetError("the scan of one target (tlslab.scan.run.scan_target) is not in "
                         "this build of tlslab") from None
    return scan_target


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def failure_document(target_json: dict, code: str, message: str, *,
                     retryable: bool) -> dict:
    """The document stored for a target whose scan produced none."""
    return {"target": target_json,
            "error": {"code": code, "message": message, "retryable": retryable}}


def is_retryable(doc: dict) -> bool:
    """Whether a failed document is worth another attempt."""
    err = doc.get("error")
    if isinstance(err, dict):
        if isinstance(err.get("retryable"), bool):
            return err["retryable"]
        return str(err.get("code")) in RETRYABLE_CODES
    return False  # a bare message: nothing says it is transient


def run_scan_task(scan: ScanFunction, target_json: dict, options_json: dict) -> dict:
    """Run ``scan(target_json, options)`` within ``options_json["time_limit_s"]`` seconds.

    The scan gets ``time_limit_s`` and ``deadline_unix`` (this worker's clock: workers and
    driver may disagree about the time, never about a duration) and should finish by
    then; if it does not, it is abandoned in its thread (a Python thread cannot be
    killed; its sockets time out on their own) and the target fails with ``timeout``.

    Returns ``{"document", "started_at", "finished_at", "duration_s", "worker",
    "started_unix", "finished_unix"}``.
    """
    limit = float(options_json.get("time_limit_s") or 60.0)
    options = dict(options_json, deadline_unix=time.time() + limit)
    started_at, started_unix, t0 = _now(), time.time(), time.monotonic()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["doc"] = scan(target_json, options)
        except BaseException as e:  # noqa: BLE001 - a scan must never escape its task
            box["exc"] = e

    thread = threading.Thread(target=work, name="tlslab-scan", daemon=True)
    thread.start()
    thread.join(limit)
    duration = time.monotonic() - t0
    if thread.is_alive():
        doc = failure_document(target_json, "timeout",
                               f"timed out after {limit:g} s (the per-target time limit)",
                               retryable=True)
    elif "exc" in box:
        e = box["exc"]
        text = " ".join(str(e).split()) or "no message"
        doc = failure_document(target_json, "internal",
                               f"the scan raised {type(e).__name__}: {text}", retryable=True)
    elif not isinstance(box.get("doc"), dict):
        doc = failure_document(target_json, "internal",
                               "the scan returned no document", retryable=False)
    else:
        doc = box["doc"]
    return {"document": doc, "started_at": started_at, "finished_at": _now(),
            "duration_s": round(duration, 6), "worker": socket.gethostname(),
            # for the driver's account of where time goes (same clock only on one host)
            "started_unix": started_unix, "finished_unix": time.time()}
