"""A full `tlslab scan` of a loopback server against sslyze's and testssl.sh's full scans of
the same server, measured in the same run.

    .venv/bin/python benchmarks/scan.py [--runs N] [--no-testssl] [--server openssl|nginx]

sslyze (PyPI) is installed in its own virtualenv (benchmarks/.venv-sslyze, made on first
use); testssl.sh is Debian's ``testssl`` (3.0.x; ``apt install testssl.sh``).  Each tool runs
as a user would run it, as a subprocess writing JSON: ``tlslab scan --json``, ``sslyze
--json_out`` with every scan command (its default), ``testssl --quiet --jsonfile`` (a full
run).  Reports the median wall time per tool, the ratios, and whether each tool gave the
server's full cipher suite order.  Loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CERTS = ROOT.parent / "shared" / "peers" / "certs"
TLSLAB = ROOT / ".venv" / "bin" / "tlslab"
SSLYZE_VENV = HERE / ".venv-sslyze"
#: a server with an order: TLS 1.2 and 1.3, several suites and groups, server preference
OPENSSL_ARGS = ["-serverpref", "-cipher",
                "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:AES128-SHA",
                "-groups", "x25519:secp256r1:secp384r1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def start_openssl() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}",
                             "-cert", str(CERTS / "rsa.pem"), "-key", str(CERTS / "rsa.key"),
                             "-cert_chain", str(CERTS / "intermediate.pem"), "-www", "-quiet",
                             *OPENSSL_ARGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port)
    return proc, port


def ensure_sslyze() -> Path:
    py = SSLYZE_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SSLYZE_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "sslyze"], check=True)
    return py


def timed(cmd: list[str], timeout: float = 600) -> tuple[float, int]:
    start = time.monotonic()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        timeout=timeout).returncode
    return time.monotonic() - start, rc


def run_tlslab(port: int, out: Path) -> float:
    start = time.monotonic()
    with open(out, "w") as f:
        subprocess.run([str(TLSLAB), "scan", f"127.0.0.1:{port}", "--servername", "localhost",
                        "--ca-file", str(CERTS / "ca.pem"), "--json"], stdout=f,
                       stderr=subprocess.DEVNULL, timeout=600)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-testssl", action="store_true")
    args = ap.parse_args()
    proc, port = start_openssl()
    tmp = Path(tempfile.mkdtemp(prefix="tlslab-bench-scan-"))
    results: dict[str, list[float]] = {"tlslab": [], "sslyze": [], "testssl.sh": []}
    try:
        sslyze = ensure_sslyze()
        for i in range(args.runs):
            results["tlslab"].append(run_tlslab(port, tmp / "tlslab.json"))
            t, _ = timed([str(sslyze), "-m", "sslyze", f"127.0.0.1:{port}", "--sni", "localhost",
                          "--json_out", str(tmp / "sslyze.json"), "--quiet"])
            results["sslyze"].append(t)
        testssl = shutil.which("testssl") or shutil.which("testssl.sh")
        if testssl and not args.no_testssl:
            json_path = tmp / "testssl.json"
            json_path.unlink(missing_ok=True)
            t, _ = timed([testssl, "--quiet", "--color", "0", "--warnings", "off",
                          "--jsonfile", str(json_path), f"127.0.0.1:{port}"], timeout=900)
            results["testssl.sh"].append(t)
    finally:
        os.killpg(proc.pid, 15)
    doc = json.loads((tmp / "tlslab.json").read_text())
    order = doc["cipher_suites"]["TLS 1.2"]["order"]
    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"server: openssl s_server on 127.0.0.1, TLS 1.2+1.3, server order, {len(order)} TLS 1.2 suites")
    print(f"tlslab scan: {med['tlslab']:.2f} s median of {args.runs} "
          f"({doc.get('connections')} connections; full TLS 1.2 order: {' > '.join(order)})")
    print(f"sslyze full scan: {med['sslyze']:.2f} s median of {args.runs} (no cipher order)")
    print(f"ratio sslyze / tlslab: {med['sslyze'] / med['tlslab']:.2f}x")
    if "testssl.sh" in med:
        print(f"testssl.sh full run: {med['testssl.sh']:.1f} s")
        print(f"ratio testssl.sh / tlslab: {med['testssl.sh'] / med['tlslab']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
