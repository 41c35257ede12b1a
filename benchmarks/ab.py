"""Same-process A/B of the engine: a git revision against the working tree.

Timing two checkouts in two processes is at the mercy of the machine: on a shared
2-core VM, handshake times drift by 10-15 % between runs minutes apart, more than most
single optimisations are worth.  This script loads the package of ``--base`` (a git
revision) under another name next to the working tree's, and alternates short slices of
full handshakes (client and server in memory, as ``handshake.py`` measures them) between
the two in one process, so both see the same machine at the same time.  It reports the
median of the per-round speed-ups, with its quartiles.

Examples::

    python benchmarks/ab.py                              # HEAD against the working tree
    python benchmarks/ab.py --base main~3 --scenario tls12-ecdsa-p256 --seconds 30

It changes nothing in the repository: the base package is extracted with ``git archive``
into a temporary directory.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SLICE = 0.2  # seconds per side and round


def extract_base(revision: str, into: str) -> None:
    """The ``src/tlslab`` package of ``revision``, as the package ``tlslab_base`` in ``into``
    (the engine imports itself relatively, so a renamed copy is self-contained)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", revision, "src/tlslab"],
                             capture_output=True, check=True).stdout
    path = os.path.join(into, "base.tar")
    with open(path, "wb") as f:
        f.write(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    os.rename(os.path.join(into, "src", "tlslab"), os.path.join(into, "tlslab_base"))


def handshake_step(package: str, scenario, pki, server_name: str):
    """A function making one full handshake with ``package``'s engine, both sides."""
    client = importlib.import_module(package + ".proto.client")
    server = importlib.import_module(package + ".proto.server")
    config = importlib.import_module(package + ".proto.config")
    memory_pair = importlib.import_module(package + ".io.memory").MemoryPair
    common = dict(versions=[scenario.version], cipher_suites=[scenario.suite], groups=[scenario.group])
    client_config = config.ClientConfig(server_name=server_name, ca_file=pki.ca_file,
                                        session_store=None, **common)
    server_config = config.ServerConfig.from_files(pki.cert_file, pki.key_file, tickets=0, **common)
    new_client, new_server = client.ClientConnection, server.ServerConnection

    def step() -> None:
        pair = memory_pair(new_client(client_config), new_server(server_config))
        pair.handshake()
        if not (pair.client.handshake_complete and pair.server.handshake_complete):
            raise SystemExit(f"{package}: the handshake did not complete: "
                             f"{pair.client.error or pair.server.error}")
    return step


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, HERE)
    import handshake as bench  # benchmarks/handshake.py: scenarios and throwaway PKI

    full = [sc.name for sc in bench.HANDSHAKES if not sc.resume]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("Examples::")[1].split("It changes")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git revision to compare against (default HEAD)")
    parser.add_argument("--scenario", default="ecdsa-p256", choices=full,
                        help="full-handshake scenario of handshake.py (default ecdsa-p256)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured time per side (default 20)")
    args = parser.parse_args(argv)
    scenario = bench.SCENARIOS[args.scenario]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            extract_base(args.base, tmp)
        except subprocess.CalledProcessError as err:
            print(f"ab.py: cannot read src/tlslab at {args.base!r}: {err.stderr.decode().strip()}",
                  file=sys.stderr)
            return 2
        sys.path.insert(0, tmp)
        sys.path.insert(0, os.path.join(ROOT, "src"))
        pki = bench.make_pki(scenario.cert, tmp)
        steps = {"base": handshake_step("tlslab_base", scenario, pki, bench.SERVER_NAME),
                 "new": handshake_step("tlslab", scenario, pki, bench.SERVER_NAME)}
        for step in steps.values():  # warm up
            for _ in range(200):
                step()
        times: dict[str, list[float]] = {name: [] for name in steps}
        rounds = max(4, round(args.seconds / SLICE))
        for i in range(rounds):
            for name in (("base", "new") if i % 2 == 0 else ("new", "base")):
                gc.collect()
                step, n = steps[name], 0
                start = time.perf_counter()
                while True:
                    step()
                    n += 1
                    now = time.perf_counter()
                    if now - start >= SLICE:
                        break
                times[name].append((now - start) / n * 1e6)
    ratios = [b / n for b, n in zip(times["base"], times["new"])]
    q1, med, q3 = statistics.quantiles(ratios, n=4)
    print(f"{args.scenario}: {args.base} {statistics.median(times['base']):.1f} µs, working tree "
          f"{statistics.median(times['new']):.1f} µs per handshake; speed-up {med:.3f}x "
          f"(quartiles {q1:.3f}-{q3:.3f}, {rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
