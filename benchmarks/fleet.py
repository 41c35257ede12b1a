"""Fleet throughput: 200 loopback servers scanned on a local Dask cluster.

Reports scans per minute and where the time goes: starting the cluster, the scans
themselves (time inside the task), Dask's per-task overhead (round trip minus time in the
task), the database writes, politeness waits, and closing the cluster.  For scale, the
same scans run in a plain thread pool of the same width in the same run (no Dask, no
database): the difference is what the fleet machinery costs.

The scan is tests/fleet_lab.py's ``handshake_scan`` (5 real handshakes with Python
``ssl`` per target) until ``tlslab.scan.run.scan_target`` lands; ``--real-scan`` uses
that instead.  The servers (tests/fleet_lab.py, Python ``ssl`` in threads) run in this
process and share its CPU with the workers: on 2 cores that is a large share.

    .venv/bin/python benchmarks/fleet.py [--servers 200] [--workers 2] [--threads 4]
                                         [--in-process] [--real-scan] [--json]

Never asserts; exit status 1 only when the fleet could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from fleet_lab import CONFIGS, HOST, FleetLab, handshake_scan  # noqa: E402
from tlslab.scan.fleet import run_fleet  # noqa: E402
from tlslab.scan.politeness import QUEUE_DEPTH  # noqa: E402
from tlslab.scan.target import ScanTarget  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4, help="threads per worker")
    ap.add_argument("--in-process", action="store_true",
                    help="worker threads in this process instead of worker processes")
    ap.add_argument("--real-scan", action="store_true",
                    help="tlslab.scan.run.scan_target instead of the test's handshake scan")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    scan = handshake_scan
    if args.real_scan:
        from tlslab.scan.task import default_scan
        scan = default_scan()
    lab = FleetLab()
    names = list(CONFIGS)
    ports = [lab.tls(names[i % len(names)]) for i in range(args.servers)]
    targets = [ScanTarget(HOST, p) for p in ports]
    width = args.workers * args.threads
    # politeness out of the way (one host, loopback): this measures the machinery
    polite = dict(max_rate=100000, per_target_rate=1000,
                  per_host_concurrency=width * QUEUE_DEPTH,
                  per_target_timeout=30, retries=0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            report = run_fleet(targets, scan=scan, db_path=os.path.join(tmp, "b.sqlite"),
                               workers=args.workers, threads_per_worker=args.threads,
                               processes=not args.in_process, **polite)
            total = time.monotonic() - t0
        # the same scans without Dask or a database, as wide as the cluster
        t1 = time.monotonic()
        options = {"time_limit_s": 30, "deadline_unix": time.time() + 300,
                   "max_connections_per_second": 1000}
        with ThreadPoolExecutor(width) as pool:
            plain = list(pool.map(lambda t: scan(t.to_json(), options), targets))
        plain_s = time.monotonic() - t1
    finally:
        lab.close()

    t = report.timings
    scanning = total - t.get("cluster_start_s", 0) - t.get("cluster_close_s", 0)
    failed = len(report.failed)
    result = {
        "servers": args.servers, "cluster": report.cluster,
        "scan": "tlslab.scan.run.scan_target" if args.real_scan else "tests/fleet_lab.handshake_scan",
        "failed": failed, "plain_failed": sum(1 for d in plain if d.get("error")),
        "total_s": round(total, 3), "scanning_s": round(scanning, 3),
        "scans_per_minute": round(args.servers / scanning * 60, 1),
        "scans_per_minute_with_start": round(args.servers / total * 60, 1),
        "plain_thread_pool_s": round(plain_s, 3),
        "plain_scans_per_minute": round(args.servers / plain_s * 60, 1),
        "cluster_start_s": round(t.get("cluster_start_s", 0), 3),
        "cluster_close_s": round(t.get("cluster_close_s", 0), 3),
        "scan_in_task_s_sum": round(t["scan_s"], 3),
        "scan_in_task_ms_mean": round(t["scan_s"] / args.servers * 1000, 2),
        "task_overhead_s_sum": round(t["task_overhead_s"], 3),
        "task_overhead_ms_mean": round(t["task_overhead_s"] / args.servers * 1000, 2),
        "dispatch_ms_mean": round(t["dispatch_s"] / args.servers * 1000, 2),
        "return_ms_mean": round(t["return_s"] / args.servers * 1000, 2),
        "worker_threads": int(t["worker_threads"]),
        "worker_utilisation": round(t["scan_s"] / (scanning * t["worker_threads"]), 3),
        "db_write_s": round(t["db_write_s"], 3),
        "db_write_ms_mean": round(t["db_write_s"] / args.servers * 1000, 3),
        "politeness_wait_s": round(t["politeness_wait_s"], 3),
        "in_flight_limit": int(t["in_flight_limit"]),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _table(result)
    return 0 if failed < args.servers else 1


def _table(r: dict) -> None:
    print(f"fleet of {r['servers']} loopback servers on {r['cluster']}, scan: {r['scan']}")
    print(f"  failed targets                {r['failed']} (plain pool: {r['plain_failed']})")
    print(f"  scans per minute              {r['scans_per_minute']:>10} "
          f"(counting cluster start/close: {r['scans_per_minute_with_start']})")
    print(f"  same scans, plain threads     {r['plain_scans_per_minute']:>10} per minute "
          f"({r['plain_thread_pool_s']} s)")
    print("where the time goes")
    print(f"  cluster start                 {r['cluster_start_s']:>10} s")
    print(f"  scanning (wall)               {r['scanning_s']:>10} s  "
          f"({r['in_flight_limit']} scans in flight)")
    print(f"    time in the scan (sum)      {r['scan_in_task_s_sum']:>10} s  "
          f"{r['scan_in_task_ms_mean']} ms per target")
    print(f"    worker threads busy         {r['worker_utilisation']:>10.0%}   "
          f"of {r['worker_threads']} threads × the scanning wall time")
    print(f"    Dask round trip (sum)       {r['task_overhead_s_sum']:>10} s  "
          f"{r['task_overhead_ms_mean']} ms per target beyond the scan: "
          f"{r['dispatch_ms_mean']} ms submit→start (queued behind another scan "
          f"included), {r['return_ms_mean']} ms finish→driver")
    print(f"    database writes             {r['db_write_s']:>10} s  "
          f"{r['db_write_ms_mean']} ms per target")
    print(f"    politeness waits            {r['politeness_wait_s']:>10} s")
    print(f"  cluster close                 {r['cluster_close_s']:>10} s")


if __name__ == "__main__":
    sys.exit(main())
