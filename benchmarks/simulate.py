"""How long ``tlslab simulate`` takes for the whole profile library, over real servers.

Target (the simulate issue): about 30 profiles in under 5 s on loopback.  The servers are
the real ones the tests use (tests/realservers.py: openssl s_server, gnutls-serv, nginx,
JSSE), healthy and broken.  For scale, the same run times the tool a user would otherwise
reach for to check one client: one ``openssl s_client`` handshake, times the number of
profiles (what checking each client by hand would cost, at best).

    .venv/bin/python benchmarks/simulate.py [--rounds 3] [--json]

Never asserts; exit status 1 only when a simulation could not run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import realservers as rs  # noqa: E402
from tlslab.diagnose import Target  # noqa: E402
from tlslab.diagnose.simulate import simulate  # noqa: E402
from tlslab.lab.pki import make_pki  # noqa: E402
from tlslab.profiles import builtin_profile_names, load_profile  # noqa: E402
from tlslab.proto.certificates import load_trust_store  # noqa: E402


def servers(files):
    chain = (files["chain"], files["key"])
    return [
        ("openssl s_server", lambda: rs.openssl_server(*chain)),
        ("openssl TLS 1.2 DHE only", lambda: rs.openssl_server(*chain, tls=("1.2",),
                                                               ciphers="DHE-RSA-AES256-GCM-SHA384")),
        ("openssl TLS 1.3 only", lambda: rs.openssl_server(*chain, tls=("1.3",))),
        ("gnutls-serv", lambda: rs.gnutls_server(*chain)),
        ("nginx", lambda: rs.nginx_server(*chain)),
        ("Java SSLServerSocket", lambda: rs.java_server(*chain)),
    ]


def s_client_seconds(port: int) -> float:
    start = time.monotonic()
    subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                    "-brief"], input=b"", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    profiles = [load_profile(n) for n in builtin_profile_names()]
    rows, missing = [], []
    with tempfile.TemporaryDirectory() as tmp:
        files = make_pki(names=("localhost", "127.0.0.1"), key_type="rsa2048").server("ok").write(tmp)
        trust = load_trust_store(files["ca"])
        for label, factory in servers(files):
            try:
                with factory() as srv:
                    times, doc = [], None
                    for _ in range(args.rounds):
                        start = time.monotonic()
                        sim = asyncio.run(simulate(Target("127.0.0.1", srv.port, "localhost", trust,
                                                          timeout=20), profiles))
                        times.append(time.monotonic() - start)
                        doc = sim.to_json()
                    ref = s_client_seconds(srv.port) * len(profiles)
            except rs.PeerMissing as e:
                missing.append(f"{label}: {e}")
                continue
            rows.append({"server": label, "profiles": len(profiles), "connect": doc["connects"],
                         "fail": doc["fails"], "handshakes": doc["handshake_count"],
                         "median_s": statistics.median(times), "max_s": max(times),
                         "s_client_per_profile_s": ref})
    if args.json:
        print(json.dumps({"rows": rows, "missing": missing}, indent=2))
    else:
        print(f"{'server':28} {'profiles':>8} {'ok':>4} {'fail':>4} {'hs':>4} {'median':>7} {'max':>7} "
              f"{'s_client×N':>10}")
        for r in rows:
            print(f"{r['server']:28} {r['profiles']:8d} {r['connect']:4d} {r['fail']:4d} {r['handshakes']:4d} "
                  f"{r['median_s']:7.3f} {r['max_s']:7.3f} {r['s_client_per_profile_s']:10.3f}")
        if rows:
            worst = max(r["max_s"] for r in rows)
            print(f"worst {worst:.3f} s for {rows[0]['profiles']} profiles "
                  f"(target: about 30 profiles in under 5 s: {'met' if worst < 5 else 'NOT met'})")
        for m in missing:
            print("skipped (peer missing):", m)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
