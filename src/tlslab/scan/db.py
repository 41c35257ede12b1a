"""The scan database: every scan of every target, kept whole, in SQLite (stdlib sqlite3).

One row per target and scan in ``scans`` (the scan's JSON document whole in
``result_json``, plus the columns needed to find and judge it without parsing JSON), one
row per fleet run in ``runs``.  ``PRAGMA user_version`` holds :data:`SCHEMA_VERSION`.

Why it is built this way:

* WAL journal and one transaction per finished target: a fleet interrupted by Ctrl-C, a
  crash or a lost cluster loses nothing that already finished, and readers (``--diff``,
  another terminal) never block the writer;
* a file that is not SQLite is refused before sqlite3 touches it (its header is read
  first): opening it would not destroy it, but writing the schema into something else's
  file must never happen; a SQLite file that holds some other program's tables is
  refused too;
* ``busy_timeout``: two tlslab processes writing one database wait for each other
  instead of failing with "database is locked".
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

#: bump when the schema changes; :meth:`ScanDatabase.open` migrates or refuses
SCHEMA_VERSION = 1

_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,          -- ISO 8601, UTC
    finished_at TEXT,                   -- NULL while running, or when interrupted
    cluster     TEXT,
    targets     INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'running'   -- running, finished, interrupted
);
CREATE TABLE IF NOT EXISTS scans (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER REFERENCES runs(id),
    target      TEXT NOT NULL,          -- targets-file syntax: host:port [servername=] [starttls=]
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    server_name TEXT,
    starttls    TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_s  REAL,
    status      TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 1,
    result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scans_by_target ON scans (target, id);
"""


class ScanDatabaseError(Exception):
    """The database cannot be used (not SQLite, someone else's, unwritable, newer)."""


@dataclass(frozen=True)
class StoredScan:
    """One row of ``scans``, with the document parsed back."""

    id: int
    run_id: int | None
    target: str
    host: str
    port: int
    server_name: str | None
    starttls: str | None
    started_at: str
    finished_at: str
    duration_s: float | None
    status: str
    error: str | None
    attempts: int
    result: dict

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "StoredScan":
        fields = {k: row[k] for k in row.keys() if k != "result_json"}
        try:
            result = json.loads(row["result_json"])
        except ValueError:  # a row edited by hand: keep going, show what is there
            result = {"error": "stored result is not JSON"}
        return cls(result=result if isinstance(result, dict) else {"result": result}, **fields)


def utc_now() -> str:
    """Now, as stored: ISO 8601 in UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_sqlite_file(path: Path) -> None:
    """Refuse, before sqlite3 opens it, a path that is not a SQLite database (or empty/new)."""
    if path.is_dir():
        raise ScanDatabaseError(f"{path} is a directory, not a SQLite database")
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ScanDatabaseError(f"{path}: no such directory {parent}")
        return
    if not path.is_file():
        raise ScanDatabaseError(f"{path} is not a regular file, not a SQLite database")
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as e:
        raise ScanDatabaseError(f"{path}: cannot read: {e.strerror or e}") from None
    if head and head != _SQLITE_MAGIC:  # an empty file is a new database to SQLite
        raise ScanDatabaseError(f"{path} is not a SQLite database (left unchanged)")


class ScanDatabase:
    """The scans of fleets, in one SQLite file.  Use as a context manager, or call
    :meth:`close`.  Not shared between threads: the fleet driver writes from one."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn, self.path = conn, path

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | Path) -> "ScanDatabase":
        """Open (creating if needed) the database at ``path``; :class:`ScanDatabaseError`
        with a one-line message for anything that is not ours to write."""
        p = Path(path)
        check_sqlite_file(p)
        try:
            conn = sqlite3.connect(str(p), timeout=10.0, isolation_level=None)
        except sqlite3.Error as e:
            raise ScanDatabaseError(f"{p}: cannot open: {e}") from None
        conn.row_factory = sqlite3.Row
        try:
            cls._prepare(conn, p)
        except sqlite3.DatabaseError as e:
            conn.close()
            text = str(e)
            if "not a database" in text or "malformed" in text:
                raise ScanDatabaseError(f"{p} is not a SQLite database (left unchanged)") from None
            raise ScanDatabaseError(f"{p}: {text}") from None
        except ScanDatabaseError:
            conn.close()
            raise
        return cls(conn, str(p))

    @staticmethod
    def _prepare(conn: sqlite3.Connection, p: Path) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if version > SCHEMA_VERSION:
            raise ScanDatabaseError(f"{p} was written by a newer tlslab (schema "
                                    f"{version}, this one knows {SCHEMA_VERSION})")
        if version == 0 and tables:
            raise ScanDatabaseError(f"{p} is a SQLite database, but not a tlslab scan "
                                    f"database (it has tables {', '.join(sorted(tables))})")
        conn.execute("PRAGMA busy_timeout = 10000")
        # WAL may be refused (a file system without shared memory): the rollback journal
        # SQLite then keeps is slower but just as safe, so the answer is not checked
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at each checkpoint
        conn.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with _transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ScanDatabase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- writing

    def start_run(self, *, cluster: str, targets: int) -> int:
        with _transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, cluster, targets) VALUES (?, ?, ?)",
                (utc_now(), cluster, targets))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        with _transaction(self.conn):
            self.conn.execute("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?",
                              (utc_now(), status, run_id))

    def add_scan(self, *, run_id: int | None, target: str, host: str, port: int,
                 server_name: str | None, starttls: str | None, started_at: str,
                 finished_at: str, duration_s: float | None, status: str,
                 error: str | None, attempts: int, result: dict) -> int:
        """Store one finished scan, committed before returning (nothing finished is lost)."""
        if status not in ("ok", "failed"):
            raise ValueError(f"status must be ok or failed, not {status!r}")
        doc = json.dumps(result, sort_keys=True, default=str)
        with _transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO scans (run_id, target, host, port, server_name, starttls, "
                "started_at, finished_at, duration_s, status, error, attempts, result_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, target, host, port, server_name, starttls, started_at, finished_at,
                 duration_s, status, error, attempts, doc))
        return int(cur.lastrowid)

    # ----------------------------------------------------------------- reading

    def count(self, target: str | None = None) -> int:
        if target is None:
            return self.conn.execute("SELECT count(*) FROM scans").fetchone()[0]
        return self.conn.execute("SELECT count(*) FROM scans WHERE target = ?",
                                 (target,)).fetchone()[0]

    def scans(self, target: str | None = None) -> Iterator[StoredScan]:
        """Every scan (of one target), oldest first."""
        if target is None:
            rows = self.conn.execute("SELECT * FROM scans ORDER BY id")
        else:
            rows = self.conn.execute("SELECT * FROM scans WHERE target = ? ORDER BY id",
                                     (target,))
        for row in rows:
            yield StoredScan.from_row(row)

    def latest(self, target: str) -> StoredScan | None:
        """The latest scan of a target."""
        pair = self.latest_two(target)
        return pair[0] if pair else None

    def latest_two(self, target: str, *, before_id: int | None = None) -> list[StoredScan]:
        """The latest scan of ``target`` and the one before it (newest first; fewer when
        there are fewer), optionally only among scans older than ``before_id``."""
        if before_id is None:
            rows = self.conn.execute(
                "SELECT * FROM scans WHERE target = ? ORDER BY id DESC LIMIT 2", (target,))
        else:
            rows = self.conn.execute(
                "SELECT * FROM scans WHERE target = ? AND id < ? ORDER BY id DESC LIMIT 2",
                (target, before_id))
        return [StoredScan.from_row(r) for r in rows]

    def previous(self, scan_id: int) -> StoredScan | None:
        """The scan of the same target just before scan ``scan_id``."""
        row = self.conn.execute("SELECT target FROM scans WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            return None
        older = self.latest_two(row["target"], before_id=scan_id)
        return older[0] if older else None

    def targets(self) -> list[str]:
        """Every target ever scanned, in the order first seen."""
        return [r[0] for r in self.conn.execute(
            "SELECT target FROM scans GROUP BY target ORDER BY min(id)")]

    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write lock is taken
    up front, so a concurrent writer waits at BEGIN rather than failing mid-way."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise ScanDatabaseError(_write_error(self.conn, e)) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # nothing was written; the original error says why
            if issubclass(exc_type, sqlite3.Error):
                raise ScanDatabaseError(_write_error(self.conn, exc)) from None
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise ScanDatabaseError(_write_error(self.conn, e)) from None


def _write_error(conn: sqlite3.Connection, e: BaseException) -> str:
    """One line for a failed write (disk full, read-only file, locked too long)."""
    path = next((row[2] for row in conn.execute("PRAGMA database_list")
                 if row[1] == "main"), "the database") if _alive(conn) else "the database"
    return f"cannot write to {path}: {e}"


def _alive(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except sqlite3.Error:
        return False


def open_database(path: str | Path) -> ScanDatabase:
    """:meth:`ScanDatabase.open`."""
    return ScanDatabase.open(path)
