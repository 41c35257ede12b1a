"""Fleets: ``tlslab scan --targets`` on a local Dask cluster against loopback servers.

Most tests use :func:`fleet_lab.handshake_scan` (a few real handshakes with Python ``ssl``)
as the scan of one target, so that 50 servers fit in seconds; one fleet runs the real
``tlslab.scan.run.scan_target``.  The fleet machinery is the real one.  Loopback only.
"""
from __future__ import annotations

import json
import socket
import sqlite3
import time

import pytest

from fleet_lab import CONFIGS, HOST, FleetLab, free_port, handshake_scan
from tlslab.cli.scan_fleet import fleet_command
from tlslab.scan.cluster import FleetError, open_cluster
from tlslab.scan.db import ScanDatabase, ScanDatabaseError
from tlslab.scan.diff import diff_scans
from tlslab.scan.fleet import run_fleet
from tlslab.scan.politeness import HostLimiter, TokenBucket, backoff_delay, in_flight_limit
from tlslab.scan.target import ScanTarget
from tlslab.scan.targets_file import parse_targets, target_key

#: a small in-process cluster: 2 workers × 4 threads (threads start in ~0.05 s, worker
#: processes in ~1 s; scans here wait on sockets, so threads are enough)
CLUSTER = dict(workers=2, threads_per_worker=4, processes=False)
#: politeness loose enough for loopback, strict enough to be exercised
POLITE = dict(time_limit=2.0, rate=500.0, per_target_rate=200.0, per_host=8, retries=1,
              backoff=0.1)


@pytest.fixture(scope="module")
def lab():
    lab = FleetLab()
    yield lab
    lab.close()


def _fleet_json(capsys, *args, **kw) -> tuple[int, dict, str]:
    code = fleet_command(*args, json_out=True, scan=handshake_scan, **CLUSTER, **POLITE, **kw)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


# ------------------------------------------------------------------ the 50-server fleet

def test_fleet_of_50_servers_then_diff_names_the_two_changed(lab, tmp_path, capsys):
    ports: dict[str, list[int]] = {}
    for name in CONFIGS:  # 32 working servers in four configurations
        ports[name] = [lab.tls(name) for _ in range(8)]
    ports["slow"] = [lab.tls("modern", delay=0.15) for _ in range(4)]
    ports["dead"] = [lab.dead() for _ in range(5)]
    ports["stall"] = [lab.stall() for _ in range(3)]
    ports["plaintext"] = [lab.plaintext() for _ in range(2)]
    ports["reset"] = [lab.reset() for _ in range(2)]
    ports["half-open"] = [lab.half_open() for _ in range(2)]
    every = [p for group in ports.values() for p in group]
    assert len(every) == 50
    targets = tmp_path / "targets.txt"
    targets.write_text("# the lab\n" + "".join(f"{HOST}:{p}\n" for p in every))
    db_path = tmp_path / "scans.sqlite"

    t0 = time.monotonic()
    code, doc, err = _fleet_json(capsys, targets, db=db_path)
    first_run = time.monotonic() - t0
    assert code == 1, err  # some targets failed; the fleet still finished
    assert doc["targets"] == 50 and len(doc["results"]) == 50
    by_port = {int(r["target"].rsplit(":", 1)[1]): r for r in doc["results"]}
    for p in ports["tls12-chacha"]:
        assert by_port[p]["protocols"] == {"TLSv1.2": True, "TLSv1.3": False}
        assert by_port[p]["cipher_suites"]["TLSv1.2"] == ["ECDHE-ECDSA-CHACHA20-POLY1305"]
    for p in ports["tls13"] + ports["slow"]:
        assert by_port[p]["status"] == "ok" and by_port[p]["protocols"]["TLSv1.3"]
    expected_errors = {"dead": "connection-refused", "stall": "timeout",
                       "plaintext": "not-tls", "reset": "connection-reset", "half-open": "eof"}
    for kind, code_ in expected_errors.items():
        for p in ports[kind]:
            assert by_port[p]["status"] == "failed"
            assert by_port[p]["error"]["code"] == code_, (kind, by_port[p])
    assert doc["ok"] == 36 and doc["failed"] == 14
    # transient failures were retried once, refused connections were not
    assert all(by_port[p]["attempts"] == 2 for p in ports["stall"] + ports["reset"])
    assert all(by_port[p]["attempts"] == 1 for p in ports["dead"])

    with ScanDatabase.open(db_path) as db:  # one row per target, the JSON whole
        assert db.count() == 50
        assert all(db.count(f"{HOST}:{p}") == 1 for p in every)
        row = db.latest(f"{HOST}:{ports['modern'][0]}")
        assert row.status == "ok" and row.result["certificate"]["fingerprint_sha256"]
        dead = db.latest(f"{HOST}:{ports['dead'][0]}")
        assert dead.status == "failed" and "refused" in dead.error

    # two servers change; the rescan with --diff names exactly those two
    changed = {ports["tls12-gcm"][0]: "modern", ports["tls13"][1]: "tls12-chacha"}
    for port, config in changed.items():
        lab.reconfigure(port, config)
    code, doc, err = _fleet_json(capsys, targets, db=db_path, diff=True)
    assert code == 1, err
    names = {d["target"] for d in doc["diff"]["changed"]}
    assert names == {f"{HOST}:{p}" for p in changed}, doc["diff"]["changed"]
    assert doc["diff"]["unchanged"] == 48 and doc["diff"]["new"] == []
    summaries = {d["target"]: [c["summary"] for c in d["changes"]] for d in doc["diff"]["changed"]}
    gcm = summaries[f"{HOST}:{ports['tls12-gcm'][0]}"]
    assert "TLSv1.3 enabled" in gcm and any("finding resolved: no-tls13" in s for s in gcm)
    assert any("CHACHA20" in s and "added" in s for s in gcm)
    t13 = summaries[f"{HOST}:{ports['tls13'][1]}"]
    assert "TLSv1.3 disabled" in t13 and "TLSv1.2 enabled" in t13
    with ScanDatabase.open(db_path) as db:
        assert db.count() == 100 and len(db.runs()) == 2
    assert first_run < 30


def test_fleet_with_the_real_scan_then_diff(lab, tmp_path, capsys):
    """The real scan of each target (tlslab.scan.run.scan_target) on the cluster: the
    documents are complete scans, failures carry their codes, --diff names the change."""
    tls = {name: lab.tls(name) for name in CONFIGS}
    dead, plain = lab.dead(), lab.plaintext()
    every = [*tls.values(), dead, plain]
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"{HOST}:{p}\n" for p in every))
    db_path = tmp_path / "real.sqlite"
    kw = dict(json_out=True, **CLUSTER, time_limit=60.0, rate=2000.0, per_target_rate=1000.0,
              per_host=8, retries=0, options={"active": False})
    code = fleet_command(targets, db=db_path, **kw)
    doc = json.loads(capsys.readouterr()[0])
    assert code == 1 and doc["ok"] == 4 and doc["failed"] == 2
    by_port = {int(r["target"].rsplit(":", 1)[1]): r for r in doc["results"]}
    assert by_port[dead]["error"]["code"] == "connection-refused"
    assert by_port[plain]["error"]["code"] == "not-tls"
    with ScanDatabase.open(db_path) as db:
        full = db.latest(f"{HOST}:{tls['tls12-chacha']}").result
        assert full["protocols"]["TLS 1.2"] and not full["protocols"]["TLS 1.3"]
        assert full["cipher_suites"]["TLS 1.2"]["accepted"] == [
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
        assert full["findings"] and full["simulation"] and full["certificates"]
        assert db.latest(f"{HOST}:{tls['tls13']}").result["protocols"]["TLS 1.3"]
    lab.reconfigure(tls["tls12-chacha"], "modern")
    code = fleet_command(targets, db=db_path, diff=True, **kw)
    doc = json.loads(capsys.readouterr()[0])
    assert {d["target"] for d in doc["diff"]["changed"]} == {f"{HOST}:{tls['tls12-chacha']}"}


# ------------------------------------------------------------------ bad input

def test_targets_file_with_garbage_lines_is_reported_and_the_rest_scanned(lab, tmp_path, capsys):
    good = [lab.tls("modern"), lab.tls("tls13")]
    text = (f"# fleet\n{HOST}:{good[0]}\n"
            "not a host!!\n"
            f"{HOST}:99999\n"
            "\x00\x01\x02binary\n"
            f"{HOST}:{good[1]} servername=fleet.test\n"
            f"{HOST}:{good[0]}   # again\n"
            f"{HOST}:{good[1]} bogus=1\n"
            "example..com:443\n"
            f"{HOST}:{good[1]} starttls=gopher\n"
            "\n   \n")
    path = tmp_path / "targets.txt"
    path.write_bytes(text.encode() + b"\xff\xfe:443\n")
    code, doc, err = _fleet_json(capsys, path, db=tmp_path / "s.sqlite")
    assert code == 1  # every target scanned, but lines were skipped
    assert [r["status"] for r in doc["results"]] == ["ok", "ok"]
    assert doc["results"][1]["target"] == f"{HOST}:{good[1]} servername=fleet.test"
    rejected = {r["line"]: r["reason"] for r in doc["rejected_lines"]}
    assert sorted(rejected) == [3, 4, 5, 7, 8, 9, 10, 13]
    assert "duplicate of line 2" in rejected[7]
    assert "outside 1..65535" in rejected[4]
    assert "unknown option 'bogus'" in rejected[8]
    assert "UTF-8" in rejected[13]
    # human output: every skipped line on stderr with its number; no traceback
    code = fleet_command(path, db=tmp_path / "s.sqlite", scan=handshake_scan, no_progress=True,
                         **CLUSTER, **POLITE)
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert f"{path}:3: skipped 'not a host!!'" in err
    assert "2 targets: 2 ok, 0 failed, 8 lines skipped" in " ".join(out.split())


def test_targets_file_missing_or_empty_is_bad_input(tmp_path, capsys):
    code, doc, err = _fleet_json(capsys, tmp_path / "nope.txt", db=tmp_path / "s.sqlite")
    assert code == 2 and doc["error"]["code"] == "targets-file"
    assert "no such file" in err and "Traceback" not in err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    code, doc, err = _fleet_json(capsys, empty, db=tmp_path / "s.sqlite")
    assert code == 2 and "no targets in" in doc["error"]["message"]


def test_missing_scheduler_is_a_clear_error_within_seconds(lab, tmp_path, capsys):
    targets = tmp_path / "t.txt"
    targets.write_text(f"{HOST}:{lab.tls('modern')}\n")
    port = free_port()
    t0 = time.monotonic()
    code, doc, err = _fleet_json(capsys, targets, cluster=f"tcp://{HOST}:{port}",
                                 db=tmp_path / "s.sqlite")
    assert time.monotonic() - t0 < 5
    assert code == 2 and doc["error"]["code"] == "cluster"
    assert doc["error"]["message"] == f"no Dask scheduler at tcp://{HOST}:{port}: connection refused"
    assert err.strip() == f"error: {doc['error']['message']}"
    with pytest.raises(FleetError, match="expected 'local' or tcp://"):
        open_cluster("udp://somewhere")


def test_a_listener_that_is_not_a_scheduler(tmp_path):
    with socket.create_server((HOST, 0)) as silent:  # accepts, never speaks
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(FleetError, match="no Dask scheduler"):
            open_cluster(f"tcp://{HOST}:{port}", connect_timeout=1.0)
        assert time.monotonic() - t0 < 8


def test_not_sqlite_database_is_refused_and_left_unchanged(lab, tmp_path, capsys):
    targets = tmp_path / "t.txt"
    targets.write_text(f"{HOST}:{lab.tls('modern')}\n")
    db_file = tmp_path / "notes.sqlite"
    content = b"these are my notes, not a database\n" * 50
    db_file.write_bytes(content)
    code, doc, err = _fleet_json(capsys, targets, db=db_file)
    assert code == 2 and doc["error"]["code"] == "database"
    assert doc["error"]["message"] == f"{db_file} is not a SQLite database (left unchanged)"
    assert "Traceback" not in err
    assert db_file.read_bytes() == content
    other = tmp_path / "other.sqlite"  # SQLite, but another program's
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE mine (x)")
    with pytest.raises(ScanDatabaseError, match="not a tlslab scan database"):
        ScanDatabase.open(other)


# ------------------------------------------------------------------ the driver itself

def flaky_scan(target: dict, options: dict) -> dict:
    """Raises on odd ports, hangs past the limit on ports divisible by 10."""
    if target["port"] % 10 == 0:
        time.sleep(options["time_limit_s"] + 1)
    if target["port"] % 2:
        raise RuntimeError("scanner bug")
    return {"target": target, "protocols": {"TLSv1.3": True}, "options": sorted(options)}


def test_raising_and_hanging_scans_fail_alone_after_retries(tmp_path):
    targets = [ScanTarget(HOST, p) for p in (1000, 1001, 1002, 1003, 1004)]
    seen = []
    report = run_fleet(targets, scan=flaky_scan, db_path=tmp_path / "f.sqlite",
                       per_target_timeout=0.5, grace=2, retries=2, backoff=0.05,
                       max_rate=1000, per_target_rate=10, per_host_concurrency=10,
                       progress=lambda o, done, total: seen.append((o.key, done, total)),
                       **CLUSTER)
    by = {o.target.port: o for o in report.outcomes}
    assert by[1000].status == "failed" and "per-target time limit" in by[1000].error
    assert by[1001].status == "failed" and by[1001].error == "the scan raised RuntimeError: scanner bug"
    assert by[1001].attempts == 3 and by[1000].attempts == 3
    assert by[1002].status == "ok" and by[1002].attempts == 1
    assert {"time_limit_s", "deadline_unix", "max_connections_per_second",
            "max_concurrent_connections"} <= set(by[1002].document["options"])
    assert sorted(d for _, d, _ in seen) == [1, 2, 3, 4, 5] and all(t == 5 for *_, t in seen)
    with ScanDatabase.open(tmp_path / "f.sqlite") as db:
        assert db.count() == 5 and db.runs()[0]["status"] == "finished"


def steady_scan(target: dict, options: dict) -> dict:
    time.sleep(0.02)
    return {"target": target, "protocols": {"TLSv1.3": True}}


def test_interrupted_fleet_keeps_what_finished(tmp_path):
    targets = [ScanTarget(HOST, p) for p in range(2000, 2020)]

    def stop_after_three(outcome, done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fleet(targets, scan=steady_scan, db_path=tmp_path / "i.sqlite",
                  per_target_timeout=5, max_rate=1000, per_target_rate=10,
                  per_host_concurrency=1, progress=stop_after_three, **CLUSTER)
    with ScanDatabase.open(tmp_path / "i.sqlite") as db:
        assert db.count() == 3
        assert db.runs()[0]["status"] == "interrupted"


# ------------------------------------------------------------------ pieces

def test_targets_file_syntax():
    parsed = parse_targets("a.example\n[::1]:8443\nmail.example starttls=smtp servername=mx.example\n"
                           "10.0.0.1:443 # a comment\nbad host\n")
    keys = [target_key(t) for t in parsed.targets]
    assert keys == ["a.example:443", "[::1]:8443",
                    "mail.example:25 servername=mx.example starttls=smtp", "10.0.0.1:443"]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (5, "unexpected 'host' after the target (options are servername=, starttls=)")]


def test_diff_of_written_documents():
    old = {"protocols": {"TLSv1.0": True, "TLSv1.2": True, "TLSv1.3": False},
           "cipher_suites": {"TLSv1.2": ["A", "B", "C"]}, "groups": ["x25519", "secp256r1"],
           "certificate": {"fingerprint_sha256": "aa", "not_after": "2027-01-01"},
           "findings": [{"id": "tls10", "summary": "TLS 1.0 enabled"}], "duration_s": 3}
    new = {"protocols": {"TLSv1.0": False, "TLSv1.2": True, "TLSv1.3": True},
           "cipher_suites": {"TLSv1.2": ["B", "A"]}, "groups": ["x25519", "secp256r1"],
           "certificate": {"fingerprint_sha256": "bb", "not_after": "2028-01-01"},
           "findings": [{"id": "no-ocsp"}], "duration_s": 9}
    summaries = [c.summary for c in diff_scans(old, new)]
    assert summaries == [
        "TLSv1.0 disabled",
        "TLSv1.3 enabled",
        "cipher suite C removed (TLSv1.2)",
        "cipher suite order changed (TLSv1.2): A, B, C → B, A",
        "certificate changed (fingerprint_sha256 aa → bb)",
        "certificate expiry changed: 2027-01-01 → 2028-01-01",
        "finding resolved: tls10 (TLS 1.0 enabled)",
        "new finding: no-ocsp",
    ]
    assert diff_scans(old, dict(old, duration_s=1)) == []
    down = {"error": {"code": "timeout", "message": "timed out"}}
    assert [c.summary for c in diff_scans(old, down)] == ["became unreachable: timed out"]
    assert [c.kind for c in diff_scans(down, old)] == ["reachable"]
    assert diff_scans(down, {"error": {"code": "timeout", "message": "timed out after 9 s"}}) == []
    suites = [{"name": "A", "bits": 128}, {"name": "B", "bits": 256}]
    assert [c.summary for c in diff_scans(
        {"cipher_suites": suites, "protocols": [{"version": "TLSv1.2", "supported": True}]},
        {"cipher_suites": suites[::-1], "protocols": [{"version": "TLSv1.2", "supported": False}]},
    )] == ["TLSv1.2 disabled", "cipher suite order changed: A, B → B, A"]
    assert [c.summary for c in diff_scans({"protocols": ["TLSv1.2"]},
                                          {"protocols": ["TLSv1.2", "TLSv1.3"]})] == ["TLSv1.3 enabled"]


def test_politeness_pieces():
    now = [0.0]
    bucket = TokenBucket(10, burst=2, clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    assert bucket.take() == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.take() == 0
    hosts = HostLimiter(1)
    hosts.start("Example.COM.")
    assert not hosts.can_start("example.com") and hosts.can_start("other.example")
    hosts.finish("example.com")
    assert hosts.can_start("example.com")
    assert [backoff_delay(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert in_flight_limit(worker_threads=8, max_rate=50, per_target_rate=10) == 5
    assert in_flight_limit(worker_threads=2, max_rate=50, per_target_rate=10) == 4
    assert in_flight_limit(worker_threads=1, max_rate=50, per_target_rate=10) == 2


def test_fleet_on_a_named_scheduler(lab, tmp_path):
    """``--cluster tcp://...``: a scheduler reached over TCP (started here, on loopback)."""
    from dask.distributed import LocalCluster
    cluster = LocalCluster(n_workers=1, threads_per_worker=4, processes=False, protocol="tcp",
                           host=HOST, dashboard_address=None, silence_logs=50)
    try:
        ports = [lab.tls("modern"), lab.tls("tls12-gcm"), lab.dead()]
        report = run_fleet([ScanTarget(HOST, p) for p in ports], scan=handshake_scan,
                           cluster=cluster.scheduler_address, db_path=tmp_path / "n.sqlite",
                           max_rate=500, per_target_rate=200, per_host_concurrency=8,
                           retries=0, per_target_timeout=2)
        assert [o.status for o in report.outcomes] == ["ok", "ok", "failed"]
        assert report.cluster == cluster.scheduler_address
    finally:
        cluster.close()


def test_database_that_cannot_be_written_mid_fleet(tmp_path):
    """Writes start failing after two targets (the file turned read-only): the fleet stops
    with a ScanDatabaseError in one line, and the two rows written stay."""
    db = ScanDatabase.open(tmp_path / "ro.sqlite")

    def turn_read_only(outcome, done, total):
        if done == 2:
            db.conn.execute("PRAGMA query_only = ON")

    with pytest.raises(ScanDatabaseError, match="cannot write to .*ro.sqlite: attempt to write a readonly"):
        run_fleet([ScanTarget(HOST, p) for p in range(3000, 3010)], scan=steady_scan, db=db,
                  per_host_concurrency=1, max_rate=1000, per_target_rate=10,
                  progress=turn_read_only, **CLUSTER)
    db.close()
    with ScanDatabase.open(tmp_path / "ro.sqlite") as db:
        assert db.count() == 2
