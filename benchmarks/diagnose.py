"""How long ``tlslab diagnose`` takes, over a set of healthy and broken servers on loopback.

Targets (the diagnose issue): a broken server diagnosed in under 3 s, a healthy one in
under 1.5 s, no more than ~40 handshakes.  Each server is a real ``openssl s_server``
process (another process, so that its CPU does not count against tlslab's), plus
non-TLS listeners.  For scale, the same run times one ``openssl s_client`` handshake
with each server, the tool a user would otherwise reach for (it says far less).

    .venv/bin/python benchmarks/diagnose.py [--rounds 3] [--json]

Reports, per kind (healthy / broken), the median and max wall time of a whole diagnosis
and the handshakes it used; never asserts.  Exit status 1 means a diagnosis named the
wrong cause (the benchmark then is not measuring what it says).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from tlslab.diagnose import Target, diagnose  # noqa: E402
from tlslab.lab.pki import make_pki  # noqa: E402
from tlslab.profiles import load_profile  # noqa: E402


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@contextmanager
def s_server(files: dict, *extra: str):
    port = free_port()
    cmd = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", files["leaf"],
           "-key", files["key"], "-www", "-quiet", *extra]
    if "intermediate" in files:
        cmd += ["-cert_chain", files["intermediate"]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def http_listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            try:
                c.recv(4096)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            c.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(1)
        srv.close()


def s_client_seconds(port: int, ca: str) -> float:
    start = time.monotonic()
    subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                    "localhost", "-CAfile", ca, "-verify_return_error", "-brief"],
                   input=b"", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return time.monotonic() - start


def cases(pki, tmp: str):
    """(label, kind, profile, expected codes, server context manager factory, CA file)."""
    def files(kind):
        return pki.server(kind).write(os.path.join(tmp, kind))
    ok = files("ok")
    out = [
        ("openssl default", "healthy", "default", ["ok"], lambda: s_server(ok), ok["ca"]),
        ("openssl TLS 1.3 only", "healthy", "default", ["ok"], lambda: s_server(ok, "-tls1_3"), ok["ca"]),
        ("openssl TLS 1.2 only", "healthy", "browser", ["ok"], lambda: s_server(ok, "-tls1_2"), ok["ca"]),
    ]
    for kind, code in (("expired", "expired"), ("wrong-host", "hostname-mismatch"),
                       ("untrusted-root", "untrusted-root"), ("self-signed", "self-signed"),
                       ("missing-intermediate", "missing-intermediate")):
        f = files(kind)
        out.append((f"openssl {kind}", "broken", "default", [code], (lambda f=f: s_server(f)), f["ca"]))
    out += [
        ("openssl TLS 1.3 only vs tls12-only", "broken", "tls12-only", ["protocol-version-mismatch"],
         lambda: s_server(ok, "-tls1_3"), ok["ca"]),
        ("openssl P-521 only", "broken", "browser", ["no-common-group"],
         lambda: s_server(ok, "-groups", "P-521"), ok["ca"]),
        ("openssl client cert required (TLS 1.3)", "broken", "default", ["client-certificate-required"],
         lambda: s_server(ok, "-Verify", "1", "-CAfile", ok["client_ca"]), ok["ca"]),
        ("openssl client cert required (TLS 1.2)", "broken", "default", ["client-certificate-required"],
         lambda: s_server(ok, "-Verify", "1", "-CAfile", ok["client_ca"], "-tls1_2"), ok["ca"]),
        ("plain HTTP", "broken", "default", ["not-tls"], http_listener, ok["ca"]),
    ]
    return out


async def one(port: int, ca: list, profile: str) -> tuple[float, list[str], int]:
    start = time.monotonic()
    report = await diagnose(Target("127.0.0.1", port, "localhost", ca, timeout=5.0),
                            [load_profile(profile)])
    took = time.monotonic() - start
    doc = report.to_json()
    return took, [c["code"] for c in doc["causes"]], doc["handshake_count"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="diagnoses per server (default 3)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    if not shutil.which("openssl"):
        print("openssl is not installed: run `make peers`", file=sys.stderr)
        return 1
    from tlslab.proto.certificates import load_trust_store
    pki = make_pki(names=("localhost", "127.0.0.1", "::1"))
    rows, wrong = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, kind, profile, expected, server, ca_path in cases(pki, tmp):
            ca = load_trust_store(ca_path)
            with server() as port:
                times, shakes, got = [], [], None
                for _ in range(args.rounds):
                    took, got, n = asyncio.run(one(port, ca, profile))
                    times.append(took)
                    shakes.append(n)
                    if got != expected:
                        wrong.append(f"{label}: expected {expected}, got {got}")
                try:
                    ref = s_client_seconds(port, ca_path) if kind != "broken" or "HTTP" not in label else None
                except Exception:
                    ref = None
            rows.append({"server": label, "kind": kind, "profile": profile, "causes": got,
                         "median_s": statistics.median(times), "max_s": max(times),
                         "handshakes": max(shakes), "s_client_s": ref})
    summary = {}
    for kind, target in (("healthy", 1.5), ("broken", 3.0)):
        ts = [r["median_s"] for r in rows if r["kind"] == kind]
        mx = [r["max_s"] for r in rows if r["kind"] == kind]
        summary[kind] = {"servers": len(ts), "median_s": statistics.median(ts), "max_s": max(mx),
                         "target_s": target, "met": max(mx) < target,
                         "max_handshakes": max(r["handshakes"] for r in rows if r["kind"] == kind)}
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary, "wrong": wrong}, indent=2))
    else:
        print(f"{'server':42} {'profile':11} {'causes':30} {'median':>7} {'max':>7} {'hs':>3} {'s_client':>8}")
        for r in rows:
            ref = f"{r['s_client_s']:.3f}" if r["s_client_s"] is not None else "-"
            print(f"{r['server']:42} {r['profile']:11} {','.join(r['causes']):30} "
                  f"{r['median_s']:7.3f} {r['max_s']:7.3f} {r['handshakes']:3d} {ref:>8}")
        for kind, s in summary.items():
            print(f"{kind}: {s['servers']} servers, median {s['median_s']:.3f} s, max {s['max_s']:.3f} s "
                  f"(target < {s['target_s']} s: {'met' if s['met'] else 'NOT met'}), "
                  f"at most {s['max_handshakes']} handshakes")
        for w in wrong:
            print("WRONG:", w)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
