"""``tlslab scan --targets FILE``: a fleet of servers scanned on Dask, stored in SQLite.

Arguments and output only; the work is :mod:`tlslab.scan.fleet` (driver),
:mod:`tlslab.scan.targets_file`, :mod:`tlslab.scan.db` and :mod:`tlslab.scan.diff`.
The ``scan`` command (:mod:`tlslab.cli.scan`) calls :func:`fleet_command` when it is
given ``--targets``.
"""
from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from .common import Failure, UsageProblem, _fail_line, _safe, run_command

#: where results go without --db
DEFAULT_DB = "tlslab-scans.sqlite"

#: the largest fleet whose every target is listed in the summary table
TABLE_ROWS = 100

FLEET_EPILOG = """\
[bold]Fleets[/bold]

  tlslab scan --targets hosts.txt                           # local Dask cluster, ./tlslab-scans.sqlite
  tlslab scan --targets hosts.txt --db scans.sqlite --diff  # and what changed since each host's last scan
  tlslab scan --targets hosts.txt --cluster tcp://10.0.0.5:8786 --json

The targets file holds one target a line: HOST[:PORT] [servername=NAME] [starttls=PROTO], '#' comments, blank lines. Lines that cannot be read are reported (line number and reason) and skipped; the rest are scanned.

Politeness: at most --rate connections a second overall, --per-host connections at once to one host; failures that may be transient (reset, timeout) are retried --retries times after --backoff, 2×, 4× ... seconds; every target has --time-limit seconds.

Every finished target is stored at once (one row per target and scan, the JSON whole), so an interrupted fleet loses nothing that finished. --diff compares each target's scan with its previous one in the database.

--json prints {"targets_file", "targets", "rejected_lines", "cluster", "db", "run_id", "results": [{"target", "status", "attempts", "duration_s", "scan_id", "error", ...}], "ok", "failed", "diff" (with --diff), "duration_s", "timings"}, also for bad input ("error").

Exit codes: 0 every target scanned; 1 some target failed or some line was skipped; 2 bad input (unreadable targets file, not-SQLite database, no scheduler); 130 interrupted.
"""


def fleet_command(targets_file: Path | str, cluster: str = "local",
                  db: Path | str | None = None, diff: bool = False, json_out: bool = False,
                  *, time_limit: float = 120.0, rate: float = 50.0,
                  per_target_rate: float = 10.0, per_host: int = 2, retries: int = 2,
                  backoff: float = 1.0, workers: int | None = None,
                  threads_per_worker: int = 4, processes: bool = True,
                  options: dict | None = None, scan: Callable[[dict, dict], dict] | None = None,
                  no_progress: bool = False) -> int:
    """Run ``tlslab scan --targets FILE``; returns the exit code (0 all scanned, 1 some
    target failed or line skipped, 2 bad input, 130 interrupted).

    ``scan`` replaces the scan of one target (tests, benchmarks); ``options`` are passed
    to it; ``workers``/``threads_per_worker``/``processes`` shape the local cluster.
    """
    emit = partial(_emit_error, json_out, str(targets_file))
    return run_command(
        lambda: _fleet(Path(targets_file), cluster, Path(db or DEFAULT_DB), diff, json_out,
                       dict(per_target_timeout=time_limit, max_rate=rate,
                            per_target_rate=per_target_rate, per_host_concurrency=per_host,
                            retries=retries, backoff=backoff, workers=workers,
                            threads_per_worker=threads_per_worker, processes=processes,
                            options=options, scan=scan),
                       no_progress),
        emit_error=emit, bad_input=(UsageProblem,))


def _emit_error(json_out: bool, targets_file: str, code: str, message: str) -> None:
    """The fleet's JSON shape on failure: no results, and ``error``."""
    if json_out:
        print(json.dumps({"targets_file": targets_file, "targets": 0, "rejected_lines": [],
                          "results": [], "error": {"code": code,
                                                   "message": " ".join(message.split())}},
                         indent=2))
    _fail_line(message)


def _bad(code: str, message: str) -> UsageProblem:
    e = UsageProblem(message)
    e.code = code  # type: ignore[attr-defined]  # run_command reports it as the JSON code
    return e


def _check_options(run: dict) -> None:
    import math
    checks = [("--time-limit", run["per_target_timeout"], 0.1, 3600),
              ("--rate", run["max_rate"], 0.01, 100000),
              ("--per-target-rate", run["per_target_rate"], 0.01, 100000),
              ("--per-host", run["per_host_concurrency"], 1, 10000),
              ("--retries", run["retries"], 0, 20),
              ("--backoff", run["backoff"], 0, 3600)]
    for name, value, low, high in checks:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise _bad("bad-input", f"{name} {value}: expected a number from {low:g} to {high:g}")


def _fleet(targets_file: Path, cluster: str, db_path: Path, diff: bool, json_out: bool,
           run: dict, no_progress: bool) -> int:
    from ..scan.cluster import FleetError
    from ..scan.db import ScanDatabase, ScanDatabaseError
    from ..scan.diff import diff_stored
    from ..scan.fleet import run_fleet
    from ..scan.targets_file import TargetsFileError, read_targets_file, target_key

    t0 = time.monotonic()
    _check_options(run)
    try:
        parsed = read_targets_file(targets_file)
    except TargetsFileError as e:
        raise _bad("targets-file", str(e)) from None
    if not json_out:
        for r in parsed.rejected:
            _warn(f"{targets_file}:{r.line}: skipped '{r.text}': {r.reason}")
    if not parsed.targets:
        raise _bad("targets-file", f"no targets in {targets_file}"
                   + (f" ({len(parsed.rejected)} lines skipped)" if parsed.rejected else ""))
    try:
        db = ScanDatabase.open(db_path)
    except ScanDatabaseError as e:
        raise _bad("database", str(e)) from None
    try:
        progress = None if (json_out or no_progress) else _ProgressBar(len(parsed.targets))
        try:
            if progress:
                progress.start()
            report = run_fleet(parsed.targets, cluster=cluster, db=db,
                               progress=progress.update if progress else None, **run)
        except FleetError as e:
            raise _bad("cluster", str(e)) from None
        except ScanDatabaseError as e:  # a write failed mid-fleet (disk full, read-only)
            raise Failure(f"{e}; every target finished before it is stored") from None
        except KeyboardInterrupt:
            if progress:
                progress.stop()
            _emit_error(json_out, str(targets_file), "interrupted",
                        f"interrupted: every target finished so far is stored in {db_path} "
                        f"({db.count()} scans in it)")
            return 130
        finally:
            if progress:
                progress.stop()
        diffs = diff_stored(db, [target_key(t) for t in parsed.targets]) if diff else None
    finally:
        db.close()
    doc = _document(targets_file, parsed, report, db_path, diffs, time.monotonic() - t0)
    if json_out:
        print(json.dumps(doc, indent=2, default=str))
    else:
        _render(doc)
    sys.stdout.flush()
    return 0 if doc["failed"] == 0 and not parsed.rejected else 1


def _warn(line: str) -> None:
    sys.stderr.write(_safe(" ".join(line.split())) + "\n")
    sys.stderr.flush()


def _document(targets_file: Path, parsed, report, db_path: Path, diffs, duration: float) -> dict:
    results = [o.summary() for o in report.outcomes]
    doc: dict[str, Any] = {
        "targets_file": str(targets_file), "targets": len(parsed.targets),
        "rejected_lines": [r.to_json() for r in parsed.rejected],
        "cluster": report.cluster, "db": str(db_path), "run_id": report.run_id,
        "results": results,
        "ok": sum(1 for r in results if r["status"] == "ok"),
        "failed": sum(1 for r in results if r["status"] != "ok"),
    }
    if diffs is not None:
        doc["diff"] = {
            "changed": [d.to_json() for d in diffs if d.status == "changed"],
            "new": [d.target for d in diffs if d.status == "new"],
            "unchanged": sum(1 for d in diffs if d.status == "unchanged"),
        }
    doc["duration_s"] = round(duration, 3)
    doc["timings"] = {k: round(v, 3) for k, v in report.timings.items()}
    return doc


class _ProgressBar:
    """A rich progress bar on stderr, advanced as targets finish (any order)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        self.failed = 0
        self.progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[failed]} failed"),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[last]}"),
                                 console=Console(stderr=True, highlight=False),
                                 transient=False)
        self.task = self.progress.add_task("fleet", total=total, failed=0, last="")

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        if self.progress.live.is_started:  # stopped early on Ctrl-C, then again on the way out
            self.progress.stop()

    def update(self, outcome, done: int, total: int) -> None:
        from rich.markup import escape
        if outcome.status != "ok":
            self.failed += 1
        self.progress.update(self.task, completed=done, failed=self.failed,
                             last=escape(_safe(outcome.key)))


def _render(doc: dict) -> None:
    from rich.table import Table
    from rich.text import Text
    from .common import _out

    out = _out()
    results = doc["results"]
    shown = results if len(results) <= TABLE_ROWS else [r for r in results
                                                        if r["status"] != "ok"][:TABLE_ROWS]
    table = Table(header_style="bold", title=None if shown is results else
                  f"failed targets (first {TABLE_ROWS})")
    for col in ("target", "status", "protocols", "suites", "tries", "time", "error"):
        table.add_column(col, no_wrap=col in ("target", "status", "tries", "time"))
    for r in shown:
        err = r.get("error", {}).get("message", "") if r.get("error") else ""
        table.add_row(Text(_safe(r["target"])),
                      Text(r["status"], style="green" if r["status"] == "ok" else "red"),
                      Text(_safe(_names(r.get("protocols")))),
                      Text(_count(r.get("cipher_suites"))), str(r["attempts"]),
                      f"{r['duration_s']:.1f} s", Text(_safe(err)))
    if shown:
        out.print(table)
    out.print(Text(f"{doc['targets']} targets: {doc['ok']} ok, {doc['failed']} failed"
                   + (f", {_plural(len(doc['rejected_lines']), 'line')} skipped"
                      if doc["rejected_lines"] else "")
                   + f" in {doc['duration_s']:.1f} s on {doc['cluster']}; stored in "
                   f"{_safe(doc['db'])} (run {doc['run_id']})"))
    if "diff" in doc:
        _render_diff(out, doc["diff"])


def _render_diff(out, diff: dict) -> None:
    from rich.text import Text
    changed = diff["changed"]
    out.print(Text(f"since the previous scans: {len(changed)} changed, "
                   f"{diff['unchanged']} unchanged, {len(diff['new'])} scanned for the "
                   "first time", style="bold"))
    for d in changed:
        out.print(Text(_safe(d["target"]), style="bold"))
        for c in d["changes"]:
            out.print(Text("  • " + _safe(c["summary"])))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _names(value: Any) -> str:
    """protocols as a short list, whatever their shape (list, {name: bool}, objects)."""
    if isinstance(value, dict):
        return ", ".join(str(k) for k, v in value.items() if v)
    if isinstance(value, list):
        return ", ".join(str(v.get("name", v) if isinstance(v, dict) else v) for v in value)
    return "" if value is None else str(value)


def _count(value: Any) -> str:
    """How many suites: a scan document's ``cipher_suites`` is version ->
    ``{"accepted": [...], ...}``; distinct suites are counted across versions."""
    if isinstance(value, dict):
        names: set = set()
        for v in value.values():
            accepted = v.get("accepted") if isinstance(v, dict) else v
            if isinstance(accepted, list):
                names.update(map(str, accepted))
        return str(len(names))
    if isinstance(value, list):
        return str(len(value))
    return ""
