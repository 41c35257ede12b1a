"""Fleets: thousands of targets scanned on Dask, each result stored as it arrives.

:func:`run_fleet` is the driver.  It runs in one thread of the calling process and does
four things in a loop:

1. **start** scans while politeness allows (:mod:`.politeness`): a free slot among the
   scans in flight, a token from the overall rate bucket, the target's host below its
   concurrency limit, its retry pause over;
2. **collect** finished tasks as they complete (a done-callback puts each on a queue: the
   loop also has timers to keep, so it waits on the queue with a timeout rather than
   blocking in ``as_completed``);
3. **store** each final result in the database at once, in its own transaction, and
   report progress;
4. **time out** tasks the cluster has not answered within the time limit plus a grace
   (a lost worker, a hung task): they fail with "timed out" like any other.

A failure (the scan's document has ``error``, the task raised, timed out, or its worker
died) is retried after ``backoff``, 2×, 4× ... seconds while attempts remain and the
failure may be transient (:func:`.task.is_retryable`); then it is stored as failed.
Nothing a target does stops the fleet.
"""
from __future__ import annotations

import queue
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .cluster import ClusterHandle, FleetError, open_cluster, quiet_dask
from .db import ScanDatabase, utc_now
from .diff import error_of
from .politeness import (QUEUE_DEPTH, HostLimiter, TokenBucket, backoff_delay,
                         in_flight_limit)
from .target import ScanTarget
from .targets_file import target_key
from .task import ScanFunction, default_scan, failure_document, is_retryable, run_scan_task

__all__ = ["FleetError", "FleetReport", "TargetOutcome", "run_fleet"]


@dataclass
class TargetOutcome:
    """The final result of one target in a fleet run (after any retries)."""

    target: ScanTarget
    key: str
    status: str                 # ok | failed
    error: str | None
    attempts: int
    duration_s: float           # the last attempt's time in the scan
    scan_id: int | None         # its row in the database
    document: dict

    def summary(self) -> dict:
        """What ``--json`` prints per target (the whole document is in the database)."""
        doc = self.document
        out: dict[str, Any] = {"target": self.key, "status": self.status,
                               "attempts": self.attempts,
                               "duration_s": round(self.duration_s, 3),
                               "scan_id": self.scan_id}
        if self.error:
            err = error_of(doc)
            out["error"] = {"code": err[0] if err else "failed", "message": self.error}
        for k in ("protocols", "cipher_suites", "findings"):
            if k in doc:
                out[k] = doc[k]
        return out


@dataclass
class FleetReport:
    """A fleet run: its row in ``runs``, every target's outcome, and where time went."""

    run_id: int | None
    cluster: str
    outcomes: list[TargetOutcome]
    duration_s: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.status != "ok"]


ProgressCallback = Callable[[TargetOutcome, int, int], None]

#: how far down the queue one start pass looks for a target it may start: bounded, so a
#: queue of thousands held up by one busy host costs no more than this per pass
LOOKAHEAD = 512


@dataclass
class _Attempt:
    index: int                  # the target's position in the fleet
    target: ScanTarget
    key: str
    number: int = 1             # 1 = first try
    not_before: float = 0.0     # monotonic time before which it must not start
    submitted: float = 0.0
    submitted_unix: float = 0.0
    deadline: float = 0.0
    future: Any = None


def run_fleet(targets: Sequence[ScanTarget], *,
              scan: ScanFunction | None = None,
              cluster: str = "local",
              db: ScanDatabase | None = None,
              db_path: str | Path | None = None,
              options: dict | None = None,
              per_target_timeout: float = 60.0,
              grace: float = 10.0,
              max_rate: float = 50.0,
              per_target_rate: float = 10.0,
              per_host_concurrency: int = 2,
              per_target_concurrency: int = 1,
              max_in_flight: int | None = None,
              retries: int = 2,
              backoff: float = 1.0,
              workers: int | None = None,
              threads_per_worker: int = 4,
              processes: bool = True,
              connect_timeout: float = 5.0,
              progress: ProgressCallback | None = None,
              handle: ClusterHandle | None = None) -> FleetReport:
    """Scan ``targets`` on Dask and store one row per target in the database.

    ``scan(target_json, options_json) -> dict`` is the scan of one target (default
    ``tlslab.scan.run.scan_target``, imported lazily); it must be a module-level function
    (Dask ships it to workers by reference).  It receives ``options`` plus
    ``time_limit_s`` (= ``per_target_timeout``), ``deadline_unix``,
    ``max_connections_per_second`` (= ``per_target_rate``) and
    ``max_concurrent_connections`` (= ``per_target_concurrency``).

    Politeness: at most ``max_rate`` connections a second overall (scans start from a
    token bucket at that rate, and no more scans run at once than ``max_rate /
    per_target_rate``), at most ``per_host_concurrency`` connections at once to one host
    (``per_host_concurrency // per_target_concurrency`` scans of it at once).

    ``cluster`` is ``local`` (``workers`` × ``threads_per_worker``, worker processes
    unless ``processes`` is false) or ``tcp://HOST:PORT``; a ready ``handle`` may be
    given instead (benchmarks reuse one).  Results go to ``db`` (an open database) or a
    database opened at ``db_path`` (closed again), or nowhere when both are None.

    Raises :class:`FleetError` when the cluster cannot be reached, KeyboardInterrupt when
    interrupted (after closing the cluster; every finished target is already stored).
    """
    if per_target_timeout <= 0 or max_rate <= 0 or per_target_rate <= 0:
        raise ValueError("time limit and rates must be positive")
    targets = list(targets)
    scan = scan or default_scan()  # before the cluster: a missing scan fails at once
    own_db = db is None and db_path is not None
    if own_db:
        db = ScanDatabase.open(db_path)
    t_start = time.monotonic()
    own_handle = handle is None
    try:
        with quiet_dask():
            if handle is None:
                handle = open_cluster(cluster, workers=workers,
                                      threads_per_worker=threads_per_worker,
                                      processes=processes, connect_timeout=connect_timeout)
            driver = _Driver(targets, scan, handle, db, options or {},
                             per_target_timeout=per_target_timeout, grace=grace,
                             max_rate=max_rate, per_target_rate=per_target_rate,
                             per_host_concurrency=per_host_concurrency,
                             per_target_concurrency=per_target_concurrency,
                             max_in_flight=max_in_flight, retries=retries, backoff=backoff,
                             progress=progress)
            try:
                outcomes = driver.run()
            finally:
                if own_handle:
                    t_close = time.monotonic()
                    handle.close()
                    driver.timings["cluster_close_s"] = time.monotonic() - t_close
    finally:
        if own_db and db is not None:
            db.close()
    timings = dict(driver.timings, cluster_start_s=handle.start_s)
    return FleetReport(driver.run_id, handle.description, outcomes,
                       time.monotonic() - t_start, timings)


class _Driver:
    """The loop of :func:`run_fleet` and its state (one instance per run)."""

    def __init__(self, targets: list[ScanTarget], scan: ScanFunction, handle: ClusterHandle,
                 db: ScanDatabase | None, options: dict, *, per_target_timeout: float,
                 grace: float, max_rate: float, per_target_rate: float,
                 per_host_concurrency: int, per_target_concurrency: int,
                 max_in_flight: int | None, retries: int, backoff: float,
                 progress: ProgressCallback | None) -> None:
        self.targets, self.scan, self.handle, self.db = targets, scan, handle, db
        self.limit, self.grace = per_target_timeout, grace
        self.retries, self.backoff, self.progress = max(0, retries), backoff, progress
        per_conn = max(1, per_target_concurrency)
        self.options = dict(options, time_limit_s=per_target_timeout,
                            max_connections_per_second=per_target_rate,
                            max_concurrent_connections=min(per_conn, per_host_concurrency))
        self.bucket = TokenBucket(max_rate)
        self.hosts = HostLimiter(max(1, per_host_concurrency // per_conn))
        self.cap = in_flight_limit(worker_threads=handle.worker_threads(), max_rate=max_rate,
                                   per_target_rate=per_target_rate, max_in_flight=max_in_flight)
        self.pending: deque[_Attempt] = deque(
            _Attempt(i, t, target_key(t)) for i, t in enumerate(targets))
        self.in_flight: dict[str, _Attempt] = {}
        self.done: "queue.Queue[Any]" = queue.Queue()
        self.outcomes: list[TargetOutcome | None] = [None] * len(targets)
        self.finished = 0
        self.run_id: int | None = None
        self._rate_limited = False  # the last start pass stopped for want of a token
        # sums over tasks; dispatch/return compare this host's clock with the worker's
        self.timings = {"scan_s": 0.0, "task_overhead_s": 0.0, "dispatch_s": 0.0,
                        "return_s": 0.0, "db_write_s": 0.0, "politeness_wait_s": 0.0,
                        "in_flight_limit": float(self.cap),
                        "worker_threads": float(handle.worker_threads())}

    # ---------------------------------------------------------------- the loop

    def run(self) -> list[TargetOutcome]:
        if self.db is not None:
            self.run_id = self.db.start_run(cluster=self.handle.description,
                                            targets=len(self.targets))
        try:
            while self.pending or self.in_flight:
                wake = self._start_what_may()
                wake = min(wake, self._expire_overdue())
                self._collect(wake)
        except BaseException:  # Ctrl-C, a lost database ...: stop the cluster's work
            for att in self.in_flight.values():
                try:
                    att.future.cancel()
                except Exception:  # noqa: BLE001 - the client may be gone already
                    pass
            if self.db is not None and self.run_id is not None:
                try:
                    self.db.finish_run(self.run_id, "interrupted")
                except Exception:  # noqa: BLE001 - keep the original error
                    pass
            raise
        if self.db is not None and self.run_id is not None:
            self.db.finish_run(self.run_id)
        return [o for o in self.outcomes if o is not None]

    def _start_what_may(self) -> float:
        """Submit every attempt politeness allows now; seconds until one more might be."""
        now = time.monotonic()
        wake = 0.5
        blocked_hosts: set[str] = set()
        skipped: list[_Attempt] = []
        while self.pending and len(self.in_flight) < self.cap and len(skipped) < LOOKAHEAD:
            att = self.pending.popleft()
            host = HostLimiter.key(att.target.host)
            if att.not_before > now or host in blocked_hosts or not self.hosts.can_start(host):
                if att.not_before > now:
                    wake = min(wake, att.not_before - now)
                else:
                    blocked_hosts.add(host)
                skipped.append(att)
                continue
            wait = self.bucket.take()
            if wait > 0:
                self.pending.appendleft(att)
                wake = min(wake, wait)
                self._rate_limited = True
                break
            self._submit(att)
        # keep file order for what could not start yet
        self.pending.extendleft(reversed(skipped))
        return max(0.0, wake)

    def _submit(self, att: _Attempt) -> None:
        self.hosts.start(att.target.host)
        att.submitted, att.submitted_unix = time.monotonic(), time.time()
        # queued behind at most QUEUE_DEPTH - 1 scans of its worker thread, each bounded
        att.deadline = att.submitted + QUEUE_DEPTH * self.limit + self.grace
        key = f"tlslab-scan-{att.index}-{att.number}-{self.run_id or 0}-{id(self)}"
        att.future = self.handle.client.submit(run_scan_task, self.scan, att.target.to_json(),
                                               self.options, key=key, pure=False)
        self.in_flight[key] = att
        att.future.add_done_callback(self.done.put)

    def _expire_overdue(self) -> float:
        """Fail tasks the cluster has not answered in time; seconds to the next deadline."""
        now = time.monotonic()
        wake = 0.5
        for key, att in list(self.in_flight.items()):
            if now >= att.deadline:
                del self.in_flight[key]
                self.hosts.finish(att.target.host)
                try:
                    att.future.cancel()
                except Exception:  # noqa: BLE001
                    pass
                msg = (f"timed out: no result from the cluster within "
                       f"{att.deadline - att.submitted:g} s")
                self._failed_or_retry(att, failure_document(att.target.to_json(), "timeout",
                                                            msg, retryable=True),
                                      envelope=None)
            else:
                wake = min(wake, att.deadline - now)
        return wake

    def _collect(self, wait: float) -> None:
        """Handle every finished task, waiting up to ``wait`` seconds for the first."""
        t0 = time.monotonic()
        try:
            future = self.done.get(timeout=max(0.001, wait))
        except queue.Empty:
            if self._rate_limited:  # idle only because of the rate limit
                self.timings["politeness_wait_s"] += time.monotonic() - t0
            self._rate_limited = False
            return
        self._rate_limited = False
        ready = [future]
        while True:
            try:
                ready.append(self.done.get_nowait())
            except queue.Empty:
                break
        ready = [f for f in ready if f.key in self.in_flight]  # not timed out meanwhile
        results = self._gather([f for f in ready if f.status == "finished"])
        for f in ready:
            self._handle(f, results.get(f.key))

    def _gather(self, futures: list) -> dict[str, Any]:
        """The results of finished tasks, fetched in one round trip to the cluster (one
        ``result()`` each costs a round trip per task: measured 40-60 ms a task on a busy
        2-core machine, longer than a loopback scan)."""
        if not futures:
            return {}
        try:
            values = self.handle.client.gather(futures)
        except Exception:  # noqa: BLE001 - one lost result: fetch them one by one
            return {}
        return {f.key: v for f, v in zip(futures, values)}

    # ---------------------------------------------------------------- results

    def _handle(self, future: Any, fetched: dict | None = None) -> None:
        att = self.in_flight.pop(future.key, None)
        if att is None:  # timed out and replaced already, or cancelled by us
            return
        self.hosts.finish(att.target.host)
        round_trip = time.monotonic() - att.submitted
        if future.status == "finished":
            try:
                envelope = fetched if fetched is not None else future.result(timeout=5)
            except Exception as e:  # noqa: BLE001 - lost between done and result
                envelope, doc = None, self._task_error(att, e)
            else:
                doc = envelope["document"]
                self.timings["scan_s"] += envelope["duration_s"]
                self.timings["task_overhead_s"] += max(0.0, round_trip - envelope["duration_s"])
                self.timings["dispatch_s"] += max(0.0, envelope["started_unix"]
                                                  - att.submitted_unix)
                self.timings["return_s"] += max(0.0, time.time() - envelope["finished_unix"])
        elif future.status == "cancelled":
            envelope, doc = None, failure_document(att.target.to_json(), "internal",
                                                   "the task was cancelled by the cluster",
                                                   retryable=True)
        else:  # "error": the task itself failed (a worker died, could not unpickle ...)
            try:
                exc = future.exception(timeout=5)
            except Exception as e:  # noqa: BLE001
                exc = e
            envelope, doc = None, self._task_error(att, exc)
        if error_of(doc):
            self._failed_or_retry(att, doc, envelope)
        else:
            self._store(att, doc, envelope)

    def _task_error(self, att: _Attempt, exc: BaseException | None) -> dict:
        name = type(exc).__name__ if exc is not None else "error"
        text = " ".join(str(exc).split()) if exc is not None else ""
        if name == "KilledWorker":
            text = "the worker running this scan died"
        return failure_document(att.target.to_json(), "internal",
                                f"the task failed on the cluster: {name}"
                                + (f": {text}" if text else ""), retryable=True)

    def _failed_or_retry(self, att: _Attempt, doc: dict, envelope: dict | None) -> None:
        if att.number <= self.retries and is_retryable(doc):
            again = _Attempt(att.index, att.target, att.key, att.number + 1,
                             time.monotonic() + backoff_delay(att.number, self.backoff))
            self.pending.append(again)
            return
        self._store(att, doc, envelope)

    def _store(self, att: _Attempt, doc: dict, envelope: dict | None) -> None:
        err = error_of(doc)
        now = utc_now()
        started = envelope["started_at"] if envelope else now
        finished = envelope["finished_at"] if envelope else now
        duration = envelope["duration_s"] if envelope else time.monotonic() - att.submitted
        scan_id = None
        if self.db is not None:
            t0 = time.monotonic()
            t = att.target
            scan_id = self.db.add_scan(
                run_id=self.run_id, target=att.key, host=t.host, port=t.port,
                server_name=t.server_name, starttls=t.starttls, started_at=started,
                finished_at=finished, duration_s=duration,
                status="failed" if err else "ok", error=err[1] if err else None,
                attempts=att.number, result=doc)
            self.timings["db_write_s"] += time.monotonic() - t0
        outcome = TargetOutcome(att.target, att.key, "failed" if err else "ok",
                                err[1] if err else None, att.number, duration, scan_id, doc)
        self.outcomes[att.index] = outcome
        self.finished += 1
        if self.progress is not None:
            self.progress(outcome, self.finished, len(self.targets))


def scan_keys(targets: Iterable[ScanTarget]) -> list[str]:
    """The database keys of ``targets``, in order."""
    return [target_key(t) for t in targets]
