#!/usr/bin/env python3
"""``tlslab decode`` vs ``tshark -V`` on a 100 MB capture of 1,000 TLS connections.

Usage::

    python benchmarks/decode.py                    # make the capture, time both, print a table
    python benchmarks/decode.py --size-mb 20 --connections 200   # smaller, quicker
    python benchmarks/decode.py --keep DIR         # keep the capture and key log in DIR
    python benchmarks/decode.py --profile          # cProfile of tlslab's decode only
    python benchmarks/decode.py --json             # one JSON object on stdout

The capture is made here, then both tools read the same file with the same key log in
the same run (one after the other, each alone on the machine's cores as far as this
script is concerned):

- ``tshark -r FILE -o tls.keylog_file:KEYLOG -V > /dev/null`` (full dissection with
  decryption, the "show me everything" run a user would compare with);
- ``tlslab decode FILE --keylog KEYLOG > /dev/null`` (the default terminal view of
  every connection) and ``... --json > /dev/null`` (every message with its fields and
  every decrypted byte, up to --max-data per connection).

Wall time and peak memory (max RSS of the child process) are measured for each.  The
target (tlslab at least as fast as tshark -V, memory bounded) is reported, never
asserted; the exit status is 1 only when a tool fails or tlslab does not decrypt every
connection.

How the capture is made: distinct connections are recorded from tlslab engine pairs in
memory (TLS 1.3 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305; TLS 1.2 ECDHE with
AES-GCM, CBC encrypt-then-MAC and ChaCha20-Poly1305; each a full handshake, a request
and a ~100 KB answer in 16 KB records, close_notify), together with the real-peer
captures of ``../shared/peers/captures`` when present, their client key logs collected.
They are then replicated with rewritten addresses and ports (dpkt) to the number of
connections asked for, 64 of them open at any time and their packets interleaved, in
1448-byte segments like an Ethernet capture, and written packet by packet.  Replicas
share their template's client random, so the key log holds one line per template.

Results (2 cores shared with other work, Debian bookworm, Python 3.11.7, tshark 4.0.17;
each block one run of this script, both tools in the same run)::

    capture                     tool                   wall s   max RSS MB   vs tshark -V
    101.7 MB, 78,438 packets,   tshark -V                4.40        488.6        1.00x
    1,000 connections           tlslab decode            3.54        141.3        1.24x
                                tlslab decode --json     4.45        109.5        0.99x
    305.2 MB, 235,314 packets,  tshark -V               13.75       1148.5        1.00x
    3,000 connections           tlslab decode            8.53        146.7        1.61x
                                tlslab decode --json    12.14        110.8        1.13x

Between runs on the shared machine the ratios moved by about 10 % (another 100 MB run:
1.39x and 1.09x).  ``--json`` writes every message with its field spans and up to 64 KiB
of decrypted data per connection as hex (about 130 MB of JSON here), so it is at par with
tshark -V at 100 MB and ahead at 300 MB.

Every connection decrypted completely (or had nothing encrypted).  tlslab's memory stays
flat as the capture grows (streaming: bytes go from the TCP reassembly to the TLS decoder
as they arrive; per connection only its trace and ``--max-data`` bytes of application
data are kept); tshark's grows with the capture.

Profile (``--profile``, cProfile of the decode alone) before optimising: the terminal
view drew 1,000 sequence diagrams with rich (70 % of the time, ~40 ms each), ``--json``
spent a third of its time in the pure-Python JSON encoder (``indent=2``) and the second
parse of every message for its field spans; the decoding itself was per-packet TCP work
(pcap reading, IP/TCP headers, reassembly: ~40 %), record splitting and message parsing.
Changed after that: the first 20 connections are drawn in full and the rest get one line
each (``--all`` for every one), JSON is one compact line per connection (C encoder),
messages are parsed once with their spans when ``--json`` needs them, the TCP header is
read with one ``struct`` unpack, ``Packet`` is a named tuple, and bulk application data
records keep only their header in the trace.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED_CAPTURES = ROOT.parent / "shared" / "peers" / "captures"

#: (versions, suite) of the engine-made templates
TEMPLATES = [
    (["1.3"], "TLS_AES_128_GCM_SHA256"),
    (["1.3"], "TLS_AES_256_GCM_SHA384"),
    (["1.3"], "TLS_CHACHA20_POLY1305_SHA256"),
    (["1.2"], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (["1.2"], "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (["1.2"], "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
]
CONCURRENT = 64
MSS = 1448


# --------------------------------------------------------------------------- the capture

def _engine_template(versions, suite, answer_size: int, keylog: Path, index: int):
    """One connection of an engine pair as (relative time, direction, payload) segments."""
    from tlslab.proto.client import ClientConnection
    from tlslab.proto.config import ClientConfig, ServerConfig
    from tlslab.proto.server import ServerConnection
    chain, key = _pki()
    client = ClientConnection(ClientConfig(server_name="localhost", insecure=True,
                                           versions=versions, cipher_suites=[suite],
                                           keylog_file=str(keylog), session_store=None))
    server = ServerConnection(ServerConfig(certificate_chain=chain, private_key=key,
                                           versions=versions, cipher_suites=[suite], tickets=1))
    out: list[tuple[str, bytes]] = []

    def pump():
        for _ in range(50):
            moved = False
            for a, b, d in ((client, server, "client"), (server, client, "server")):
                data = a.data_to_send()
                if data:
                    out.append((d, data))
                    b.receive_data(data)
                    moved = True
            if not moved:
                return
    client.start_handshake()
    pump()
    assert client.handshake_complete, client.error
    client.send_application_data(f"GET /object/{index} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    pump()
    body = (b"tlslab decode benchmark payload " * (answer_size // 32 + 1))[:answer_size]
    server.send_application_data(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    pump()
    client.close()
    pump()
    return out


_PKI = None


def _pki():
    global _PKI
    if _PKI is None:
        from tlslab.workbench.certgen import make_throwaway_chain
        chain, key, _ = make_throwaway_chain(key_type="rsa2048")
        _PKI = (chain, key)
    return _PKI


def _shared_templates(keylog: Path):
    """The real-peer captures' connections as segment lists (their key logs appended)."""
    from tlslab.capture.tcp import read_connections
    out = []
    if not SHARED_CAPTURES.is_dir():
        return out
    with open(keylog, "a") as log:
        for pcap in sorted(SHARED_CAPTURES.glob("*.pcap")):
            kl = pcap.with_suffix(".keylog")
            if kl.is_file():
                log.write(kl.read_text())
            for conn in read_connections(pcap):
                data = {d: conn.data(d) for d in ("client", "server")}
                segs = [(dl.direction, data[dl.direction][dl.start:dl.end]) for dl in conn.timeline]
                if segs:
                    out.append(segs)
    return out


def make_capture(path: Path, keylog: Path, size_mb: float, connections: int) -> dict:
    """Write the benchmark capture (see the module documentation); returns its facts."""
    import dpkt
    keylog.write_text("")
    per_conn = size_mb * 1e6 / connections
    shared = _shared_templates(keylog)
    engine = TEMPLATES * 3
    # the engine templates' answers are sized so that the average connection gives the size
    shared_bytes = sum(len(d) for segs in shared for _, d in segs)
    answer = int((per_conn * (len(engine) + len(shared)) - shared_bytes) / len(engine)) - 9000
    templates = [_engine_template(v, s, max(1000, answer), keylog, i)
                 for i, (v, s) in enumerate(engine)]
    templates += shared
    # each template cut into MSS segments once; replicas only rewrite addresses and ports
    frames = []
    for segs in templates:
        frames.append(_template_frames(segs))
    written = packets = 0
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB)
        heap: list = []
        next_conn = 0
        t = 1_700_000_000.0

        def start(i: int, at: float):
            tpl = frames[i % len(frames)]
            gen = _replica(tpl, i, at)
            first = next(gen, None)
            if first is not None:
                heapq.heappush(heap, (first[0], i, first[1], gen))

        while next_conn < min(CONCURRENT, connections):
            start(next_conn, t + next_conn * 0.001)
            next_conn += 1
        while heap:
            ts, i, frame, gen = heapq.heappop(heap)
            w.writepkt(frame, ts=ts)
            written += len(frame)
            packets += 1
            nxt = next(gen, None)
            if nxt is not None:
                heapq.heappush(heap, (nxt[0], i, nxt[1], gen))
            elif next_conn < connections:
                start(next_conn, ts + 0.0005)
                next_conn += 1
    return {"bytes": path.stat().st_size, "packets": packets, "connections": connections,
            "templates": len(templates)}


def _template_frames(segs):
    """(relative time, direction, tcp flags, seq offset, payload) of one connection."""
    out = []
    seq = {"client": 1, "server": 1}
    dt = 0.0
    out.append((dt, "client", "S", 0, b""))
    out.append((dt, "server", "SA", 0, b""))
    out.append((dt, "client", "A", 1, b""))
    for direction, data in segs:
        dt += 0.0002
        for i in range(0, len(data), MSS):
            chunk = data[i:i + MSS]
            out.append((dt, direction, "PA", seq[direction], chunk))
            seq[direction] += len(chunk)
            dt += 0.00001
    dt += 0.0002
    out.append((dt, "client", "FA", seq["client"], b""))
    out.append((dt, "server", "FA", seq["server"], b""))
    out.append((dt, "client", "A", seq["client"] + 1, b""))
    return out


_FLAGS = {"S": 0x02, "SA": 0x12, "A": 0x10, "PA": 0x18, "FA": 0x11}


def _replica(tpl, i: int, at: float):
    """The template's frames with this replica's addresses and ports."""
    import dpkt
    client_ip = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
    server_ip = bytes([192, 0, 2, 1 + i % 200])
    cport, sport = 20000 + i % 40000, 443 if i % 5 else 8443
    isn = {"client": 1000 + i * 7919, "server": 5000 + i * 104729}
    last = {"client": 0, "server": 0}
    for dt, d, flags, seq, payload in tpl:
        other = "server" if d == "client" else "client"
        src, dst = (client_ip, server_ip) if d == "client" else (server_ip, client_ip)
        sp, dp = (cport, sport) if d == "client" else (sport, cport)
        ack = (isn[other] + last[other]) & 0xFFFFFFFF if flags != "S" else 0
        tcp = dpkt.tcp.TCP(sport=sp, dport=dp, seq=(isn[d] + seq) & 0xFFFFFFFF, ack=ack,
                           flags=_FLAGS[flags], win=65535, data=payload)
        ip = dpkt.ip.IP(src=src, dst=dst, p=6, ttl=64, data=tcp)
        ip.len = 20 + 20 + len(payload)
        last[d] = seq + len(payload) + (1 if "S" in flags or "F" in flags else 0)
        yield at + dt, bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6,
                                                    type=0x0800, data=ip))


# --------------------------------------------------------------------------- timing

def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` with stdout to /dev/null; wall time and the child's max RSS."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(cmd, stdout=null, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
    wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    return {"seconds": round(wall, 2), "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "exit": rc,
            "stderr": err.strip()[-400:]}


def check_decrypted(pcap: Path, keylog: Path) -> dict:
    from tlslab.capture.decode import CaptureDecoder
    from tlslab.capture.keylog import read_keylog
    total = complete = records = 0
    for conn in CaptureDecoder(pcap, read_keylog(keylog), max_data=0).connections():
        total += 1
        complete += conn.decryption in ("complete", "not needed")   # not needed: no encrypted record
        records += conn.decrypted_records
    return {"tls_connections": total, "fully_decrypted": complete, "records_decrypted": records}


def profile(pcap: Path, keylog: Path, top: int) -> None:
    import cProfile
    import pstats
    from tlslab.capture.decode import CaptureDecoder
    from tlslab.capture.keylog import read_keylog
    kl = read_keylog(keylog)
    prof = cProfile.Profile()
    prof.enable()
    for _ in CaptureDecoder(pcap, kl).connections():
        pass
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=100)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--keep", type=Path, help="write the capture and key log here and keep them")
    ap.add_argument("--profile", action="store_true", help="cProfile tlslab's decode only")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tlslab-decode-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pcap, keylog = work / "bench.pcap", work / "bench.keylog"
    t = time.perf_counter()
    facts = make_capture(pcap, keylog, args.size_mb, args.connections)
    facts["seconds_to_make"] = round(time.perf_counter() - t, 1)
    if args.profile:
        profile(pcap, keylog, args.top)
        return 0
    tshark = shutil.which("tshark")
    results = {"capture": facts, "machine": f"{platform.system()} {platform.machine()}, "
               f"{os.cpu_count()} cores, Python {platform.python_version()}"}
    if tshark:
        results["tshark -V"] = timed([tshark, "-n", "-r", str(pcap), "-o",
                                      f"tls.keylog_file:{keylog}", "-V"])
        version = subprocess.run([tshark, "--version"], capture_output=True, text=True).stdout
        results["tshark_version"] = version.splitlines()[0] if version else "?"
    tlslab = [sys.executable, "-m", "tlslab", "decode", str(pcap), "--keylog", str(keylog)]
    results["tlslab decode"] = timed(tlslab)
    results["tlslab decode --json"] = timed(tlslab + ["--json"])
    results["decrypted"] = check_decrypted(pcap, keylog)
    ok = results["decrypted"]["fully_decrypted"] == results["decrypted"]["tls_connections"] \
        and results["tlslab decode"]["exit"] == 0
    if tshark:
        ref = results["tshark -V"]["seconds"]
        for k in ("tlslab decode", "tlslab decode --json"):
            results[k]["speed_vs_tshark"] = round(ref / max(results[k]["seconds"], 1e-9), 2)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        c = facts
        print(f"capture: {c['bytes'] / 1e6:.1f} MB, {c['packets']} packets, {c['connections']} "
              f"connections from {c['templates']} templates (made in {c['seconds_to_make']} s)")
        print(f"machine: {results['machine']}")
        print(f"{'tool':28} {'wall s':>8} {'cpu s':>8} {'max RSS MB':>11} {'vs tshark':>10}")
        for k in ("tshark -V", "tlslab decode", "tlslab decode --json"):
            if k in results:
                r = results[k]
                print(f"{k:28} {r['seconds']:8.2f} {r['cpu_seconds']:8.2f} {r['max_rss_mb']:11.1f} "
                      f"{r.get('speed_vs_tshark', 1.0):9.2f}x" + ("" if r["exit"] == 0 else
                                                                  f"  exit {r['exit']}: {r['stderr']}"))
        d = results["decrypted"]
        print(f"decrypted: {d['fully_decrypted']}/{d['tls_connections']} connections completely "
              "(or nothing encrypted), "
              f"{d['records_decrypted']} records")
        if tshark:
            fast = results["tlslab decode"]["seconds"] <= results["tshark -V"]["seconds"]
            print(f"target (tlslab decode at least as fast as tshark -V): {'met' if fast else 'NOT met'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
