#!/usr/bin/env python3
"""Load on ``tlslab serve`` over loopback: many idle clients, slow clients, a burst of
handshakes, clients vanishing mid-handshake; a probe measures how long a *new* client waits
for its handshake meanwhile.  Stops by itself (``--deadline``).

Usage::

    python benchmarks/load.py                        # starts `python -m tlslab serve --port 0`
    python benchmarks/load.py --json out.json        # also the figures as JSON
    python benchmarks/load.py --quick                # smaller numbers, ~40 s
    python benchmarks/load.py --server-pythonpath /tmp/old/src   # another tlslab (before/after)
    python benchmarks/load.py --serve-arg=--max-connections=500  # extra `serve` options
    python benchmarks/load.py --port 4433 --pid PID  # a server already running

Phases (each with the probe running; see benchmarks/README.md for the figures):

``idle``    N connections (default 1,000) complete a handshake and stay open, silent
``slow``    200 clients send a ClientHello one byte per second (reconnecting when closed)
``burst``   5,000 full handshakes, at most ``--burst-window`` in flight at once
``vanish``  clients send a ClientHello and reset the connection (RST), or read the
            server's first flight and close without answering
``mixed``   all of the above at once (smaller burst and vanish counts)

Clients: Python ``ssl`` (OpenSSL) over asyncio for the handshakes, session-less (every
handshake is a full one, TLS 1.3, x25519), no certificate check (the client's cost is not
what is measured); the ClientHello bytes of the slow and vanishing clients come from an
``ssl.SSLObject`` over a memory BIO.  The probe runs in a separate process (so that the
load's own event loop cannot delay it): every ``--probe-interval`` seconds a new TCP
connection and a full handshake, timed from connect() to the handshake's end.

Server figures come from /proc/PID: peak RSS (VmHWM), file descriptors (fd/), threads
(task/) before the load, at their highest during it, and after it (once every client has
gone and the server had ``--settle`` seconds).  Exit status 0: the run completed (the
figures are reported, never asserted); 1: the server could not be started or died.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"


# --------------------------------------------------------------------------- the server

def proc_figures(pid: int) -> dict:
    """RSS now and at its peak (KiB), open file descriptors and threads of process ``pid``."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        out["threads"] = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (/proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def start_server(args, log_path: str) -> tuple[subprocess.Popen, int]:
    """``python -m tlslab serve --port 0`` with its log in ``log_path``; (process, port)."""
    env = dict(os.environ)
    if args.server_pythonpath:
        env["PYTHONPATH"] = args.server_pythonpath
    env.pop("SSLKEYLOGFILE", None)
    cmd = [args.python, "-m", "tlslab", "serve", "--host", HOST, "--port", "0", *args.serve_arg]
    log = open(log_path, "w")
    # the log goes to a file: a pipe nobody drains fast enough would stall the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True,
                            preexec_fn=(lambda: _limit_fds(args.server_nofile))
                            if args.server_nofile else None)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log_path) as f:
            m = re.search(r"listening on [^\s]+:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_server(proc)
    with open(log_path) as f:
        raise SystemExit(f"load.py: the server did not start:\n{f.read()[-2000:]}")


def _limit_fds(n: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def stop_server(proc: subprocess.Popen) -> int | None:
    """SIGINT (as Ctrl-C), then SIGKILL to the group if it does not stop within 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


# --------------------------------------------------------------------------- clients

def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_hello_bytes() -> bytes:
    """A real ClientHello (OpenSSL's), as the slow and vanishing clients send it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


@dataclass
class Stats:
    """What the load clients saw in one phase."""
    handshakes: int = 0
    errors: dict = field(default_factory=dict)
    closed_by_server: list = field(default_factory=list)  # seconds each client lasted
    started: float = 0.0
    ended: float = 0.0
    cpu: float = 0.0  # the server's CPU seconds during the phase

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _kind(e: BaseException) -> str:
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(e, ssl.SSLError):
        return f"ssl:{e.reason or type(e).__name__}"
    return type(e).__name__


async def handshake(port: int, ctx: ssl.SSLContext, timeout: float):
    return await asyncio.wait_for(
        asyncio.open_connection(HOST, port, ssl=ctx, server_hostname="localhost",
                                ssl_handshake_timeout=timeout), timeout)


async def idle_clients(port: int, n: int, hold_until: float, st: Stats, ctx,
                       window: int = 50) -> None:
    """``n`` connections that complete a handshake and stay silent until ``hold_until``;
    one the server closes is noted (and not replaced: it shows in the figures)."""
    gate = asyncio.Semaphore(window)
    writers = []

    async def one() -> None:
        async with gate:
            try:
                reader, writer = await handshake(port, ctx, 30)
            except Exception as e:
                st.error(_kind(e))
                return
        st.handshakes += 1
        writers.append(writer)
        t0 = time.monotonic()
        try:
            left = hold_until - time.monotonic()
            if left > 0 and await asyncio.wait_for(reader.read(1), left) == b"":
                st.closed_by_server.append(time.monotonic() - t0)
        except asyncio.TimeoutError:
            pass
        except Exception as e:
            st.error("idle:" + _kind(e))
            st.closed_by_server.append(time.monotonic() - t0)

    await asyncio.gather(*(one() for _ in range(n)))
    for w in writers:
        w.transport.abort()


async def slow_clients(port: int, n: int, until: float, st: Stats, hello: bytes) -> None:
    """``n`` clients sending ``hello`` one byte per second; when the server closes one, it
    connects again (as a slowloris attacker would) until ``until``."""
    async def one(i: int) -> None:
        await asyncio.sleep(i * 0.005)  # not all in the same millisecond
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
            except Exception as e:
                st.error("connect:" + _kind(e))
                await asyncio.sleep(0.5)
                continue
            t0 = time.monotonic()
            closed = False
            try:
                for b in hello:
                    if time.monotonic() >= until:
                        break
                    writer.write(bytes([b]))
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(4096), 1.0) == b"":
                            closed = True
                            break
                    except asyncio.TimeoutError:
                        pass
            except (ConnectionError, OSError):
                closed = True
            if closed:
                st.closed_by_server.append(time.monotonic() - t0)
            writer.transport.abort()
            if time.monotonic() - t0 < 1.0:
                await asyncio.sleep(0.5)  # refused at once: no tight reconnect loop

    await asyncio.gather(*(one(i) for i in range(n)))


async def burst(port: int, n: int, window: int, st: Stats, ctx) -> None:
    """``n`` full handshakes, at most ``window`` at once; each closes right after."""
    gate = asyncio.Semaphore(window)

    async def one() -> None:
        async with gate:
            try:
                _, writer = await handshake(port, ctx, 30)
            except Exception as e:
                st.error(_kind(e))
                return
            st.handshakes += 1
            writer.transport.abort()

    await asyncio.gather(*(one() for _ in range(n)))


async def vanishers(port: int, n: int, window: int, st: Stats, hello: bytes) -> None:
    """``n`` clients vanishing mid-handshake: odd ones send the ClientHello and reset
    (SO_LINGER 0 → RST) at once; even ones read the server's first flight, then close."""
    gate = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
                writer.write(hello)
                await writer.drain()
                if i % 2 == 0:
                    await asyncio.wait_for(reader.read(1), 10)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort() if i % 2 else writer.close()
                st.handshakes += 1  # counts clients that vanished as planned
            except Exception as e:
                st.error(_kind(e))

    await asyncio.gather(*(one(i) for i in range(n)))


# --------------------------------------------------------------------------- the probe

def probe_main(port: int, interval: float, timeout: float) -> None:
    """Probe process: one JSON line per new full handshake (or failure)."""
    ctx = client_context()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        t0 = time.monotonic()
        rec = {"t": t0}
        try:
            with socket.create_connection((HOST, port), timeout=timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    rec["ms"] = (time.monotonic() - t0) * 1000
                    rec["version"] = tls.version()
        except Exception as e:
            rec["ms"] = (time.monotonic() - t0) * 1000
            rec["error"] = _kind(e)
        print(json.dumps(rec), flush=True)
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


async def run_probe(args, port: int, samples: list) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--probe-port", str(port),
        "--probe-interval", str(args.probe_interval), stdout=asyncio.subprocess.PIPE)

    async def read() -> None:
        while line := await proc.stdout.readline():
            samples.append(json.loads(line))

    asyncio.get_running_loop().create_task(read())
    return proc


# --------------------------------------------------------------------------- the run

def pct(values: list, p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def sampler(pid: int, peak: dict, stop: asyncio.Event) -> None:
    while not stop.is_set():
        f = proc_figures(pid)
        for k in ("fds", "threads", "VmRSS"):
            if k in f:
                peak[k] = max(peak.get(k, 0), f[k])
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except asyncio.TimeoutError:
            pass


async def main_async(args) -> dict:
    hello = client_hello_bytes()
    ctx = client_context()
    pid, port = args.pid, args.port
    result: dict = {"phases": [], "args": {k: v for k, v in vars(args).items()
                                           if k not in ("probe_port",)}}
    samples: list = []
    before = proc_figures(pid)
    result["server_before"] = before
    peak: dict = {}
    stop = asyncio.Event()
    watch = asyncio.get_running_loop().create_task(sampler(pid, peak, stop))
    probe = await run_probe(args, port, samples)
    # the load clients share the machine with the server and the probe: at a lower
    # priority they cannot starve them (on a real network they would run elsewhere)
    os.nice(args.nice)
    await asyncio.sleep(1.5)  # a few probes on an idle server: the baseline

    async def phase(name: str, *work) -> None:
        st = Stats(started=time.monotonic())
        cpu0 = cpu_seconds(pid)
        await asyncio.gather(*(w(st) for w in work))
        st.ended = time.monotonic()
        st.cpu = cpu_seconds(pid) - cpu0
        result["phases"].append((name, st))
        await asyncio.sleep(args.pause)

    idle_n, slow_n, burst_n, vanish_n = args.idle, args.slow, args.burst, args.vanish

    def idle(st, extra: float = 0.0):
        return idle_clients(port, idle_n, time.monotonic() + args.hold + extra, st, ctx)

    def slow(st):
        return slow_clients(port, slow_n, time.monotonic() + args.slow_seconds, st, hello)

    phases = {
        "idle": lambda: phase("idle", idle),
        "slow": lambda: phase("slow", slow),
        "burst": lambda: phase("burst", lambda st: burst(port, burst_n, args.burst_window, st, ctx)),
        "vanish": lambda: phase("vanish", lambda st: vanishers(port, vanish_n, 50, st, hello)),
        # everything at once; the burst and the vanishing clients come once the idle ones
        # are arriving, and fewer of them
        "mixed": lambda: phase(
            "mixed", lambda st: idle(st, 10.0), slow,
            lambda st: _after(3, burst(port, burst_n // 5, args.burst_window, st, ctx)),
            lambda st: _after(3, vanishers(port, vanish_n // 2, 50, st, hello))),
    }
    t_start = time.monotonic()
    for name in args.phases:
        await phases[name]()
    result["load_seconds"] = time.monotonic() - t_start
    # every client is gone: let the server finish closing, then look at what it holds
    settle_end = time.monotonic() + args.settle
    while time.monotonic() < settle_end:
        now = proc_figures(pid)
        if now.get("fds", 0) <= before.get("fds", 0) and now.get("threads", 0) <= before.get("threads", 0):
            break
        await asyncio.sleep(0.25)
    stop.set()
    await watch
    probe.terminate()
    await probe.wait()
    result["server_after"] = proc_figures(pid)
    result["server_peak"] = peak
    result["probes"] = samples
    return result


async def _after(delay: float, coro):
    await asyncio.sleep(delay)
    return await coro


def summarize(result: dict) -> dict:
    """Per phase: probe latencies, handshakes/s, errors; the server's figures."""
    probes = result["probes"]
    rows = []
    windows = [("baseline", probes[0]["t"] if probes else 0,
                result["phases"][0][1].started if result["phases"] else 0, None)]
    windows += [(name, st.started, st.ended, st) for name, st in result["phases"]]
    for name, t0, t1, st in windows:
        ps = [p for p in probes if t0 <= p["t"] < t1]
        ok = [p["ms"] for p in ps if "error" not in p]
        row = {"phase": name, "probes": len(ps), "probe_failures": len(ps) - len(ok),
               "probe_errors": sorted({p["error"] for p in ps if "error" in p}),
               "probe_p50_ms": pct(ok, 50), "probe_p99_ms": pct(ok, 99),
               "probe_max_ms": max([p["ms"] for p in ps], default=None),
               "seconds": round(t1 - t0, 1)}
        if st is not None:
            row.update(clients_ok=st.handshakes, client_errors=st.errors,
                       closed_by_server=len(st.closed_by_server),
                       closed_after_s_p50=pct(st.closed_by_server, 50),
                       server_cpu_percent=round(100 * st.cpu / max(t1 - t0, 1e-9)))
            if name == "burst":
                row["handshakes_per_s"] = round(st.handshakes / max(t1 - t0, 1e-9), 1)
                row["server_cpu_ms_per_handshake"] = round(1000 * st.cpu / max(st.handshakes, 1), 2)
        rows.append(row)
    return {"rows": rows, "before": result["server_before"], "peak": result["server_peak"],
            "after": result["server_after"], "load_seconds": round(result["load_seconds"], 1)}


def print_summary(s: dict, label: str) -> None:
    def ms(v):
        return "-" if v is None else f"{v:.0f}"
    print(f"\n{label}")
    print(f"{'phase':<9} {'probes':>6} {'fail':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'clients ok':>10} {'closed':>6}  errors / notes")
    for r in s["rows"]:
        notes = []
        if r.get("client_errors"):
            notes.append("clients: " + ", ".join(f"{k}×{v}" for k, v in r["client_errors"].items()))
        if r["probe_errors"]:
            notes.append("probe: " + ", ".join(r["probe_errors"]))
        if r.get("handshakes_per_s") is not None:
            notes.append(f"{r['handshakes_per_s']} handshakes/s, "
                         f"{r['server_cpu_ms_per_handshake']} ms server CPU each")
        if r.get("server_cpu_percent") is not None:
            notes.append(f"server CPU {r['server_cpu_percent']}%")
        if r.get("closed_after_s_p50") is not None:
            notes.append(f"closed after {r['closed_after_s_p50']:.1f} s (p50)")
        print(f"{r['phase']:<9} {r['probes']:>6} {r['probe_failures']:>4} {ms(r['probe_p50_ms']):>7} "
              f"{ms(r['probe_p99_ms']):>7} {ms(r['probe_max_ms']):>7} {r.get('clients_ok', '-'):>10} "
              f"{r.get('closed_by_server', '-'):>6}  {'; '.join(notes)}")
    b, p, a = s["before"], s["peak"], s["after"]
    print(f"server: peak RSS {a.get('VmHWM', 0) / 1024:.0f} MiB (before the load "
          f"{b.get('VmRSS', 0) / 1024:.0f} MiB, after {a.get('VmRSS', 0) / 1024:.0f} MiB); "
          f"fds {b.get('fds')} → peak {p.get('fds')} → {a.get('fds')}; "
          f"threads {b.get('threads')} → peak {p.get('threads')} → {a.get('threads')}; "
          f"load {s['load_seconds']} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, help="a server already listening on 127.0.0.1:PORT")
    ap.add_argument("--pid", type=int, help="with --port: its process id (for /proc figures)")
    ap.add_argument("--python", default=sys.executable, help="the Python that runs `tlslab serve`")
    ap.add_argument("--server-pythonpath", help="PYTHONPATH for the server (another tlslab)")
    ap.add_argument("--server-nofile", type=int, help="RLIMIT_NOFILE (soft and hard) of the server")
    ap.add_argument("--serve-arg", action="append", default=[], help="an extra `serve` argument")
    ap.add_argument("--phases", default="idle,slow,burst,vanish,mixed")
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=10.0, help="seconds idle clients stay")
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--slow-seconds", type=float, default=15.0)
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--burst-window", type=int, default=100)
    ap.add_argument("--vanish", type=int, default=2000)
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between phases")
    ap.add_argument("--settle", type=float, default=15.0)
    ap.add_argument("--probe-interval", type=float, default=0.5)
    ap.add_argument("--nice", type=int, default=10,
                    help="niceness of the load clients (not of the server or the probe)")
    ap.add_argument("--deadline", type=float, default=600.0, help="the whole run, in seconds")
    ap.add_argument("--quick", action="store_true", help="300 idle, 50 slow, 1,000 burst, 400 vanish")
    ap.add_argument("--label", default="tlslab serve under load")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--probe-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe_port:
        probe_main(args.probe_port, args.probe_interval, 5.0)
        return 0
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if args.quick:
        args.idle, args.slow, args.burst, args.vanish = 300, 50, 1000, 400
        args.slow_seconds, args.hold, args.settle = 12.0, 6.0, 12.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle * 2 + args.slow + args.burst_window + 200
    if soft < want:  # the generator's own sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    proc = None
    log_path = tempfile.mktemp(prefix="tlslab-load-serve-", suffix=".log")
    if args.port is None:
        proc, args.port = start_server(args, log_path)
        args.pid = proc.pid
    try:
        result = asyncio.run(asyncio.wait_for(main_async(args), args.deadline))
    except asyncio.TimeoutError:
        print(f"load.py: the run passed its deadline ({args.deadline:g} s)", file=sys.stderr)
        return 1
    finally:
        died = proc is not None and proc.poll() is not None
        if proc is not None:
            rc = stop_server(proc)
            print(f"server log: {log_path} (exit status {rc})")
            with open(log_path) as f:
                served = [line for line in f if " served " in line]
            if served:
                print("server: " + served[-1].split(" ", 1)[1].strip())
    summary = summarize(result)
    summary["server_died"] = died
    print_summary(summary, args.label)
    if args.json:
        with open(args.json, "w") as f:
            t0 = result["probes"][0]["t"] if result["probes"] else 0
            probes = [{**p, "t": round(p["t"] - t0, 3)} for p in result["probes"]]
            json.dump({"summary": summary, "args": result["args"], "probes": probes}, f,
                      indent=1, default=str)
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
