#!/usr/bin/env python3
"""Parse and build time of every handshake message of a real TLS 1.3 and TLS 1.2 handshake.

Usage::

    python benchmarks/codec.py                 # table, both versions
    python benchmarks/codec.py --spans         # also the field spans the trace views ask for
    python benchmarks/codec.py --json          # one JSON object on stdout
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/codec.py   # another version

A tlslab client and server (the benchmark's configuration of handshake.py: X25519, an
ECDSA P-256 certificate, one suite, no tickets) complete one handshake in memory; every
message either side sent is then timed on its own:

- parse: ``parse_message`` (TLS 1.3) or ``parse_message12`` (TLS 1.2) of its bytes;
- build: ``build()`` of the engine's own message object (IntEnum values, the client's
  shared extension objects, as in a handshake);
- spans (``--spans``): parse, then ``.spans`` (what ``TraceEntry.field_spans()`` costs
  the first time a view asks).

Each time is the best of 7 rounds of ``--number`` calls, in process CPU time (less
disturbed by other load than wall time).  To compare two versions, run the script on
each checkout in turn (``PYTHONPATH=.../src``), a few times, and compare the best
numbers: timings from one process only compare with the same run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

if "tlslab" not in sys.modules and not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from tlslab.proto.client import ClientConnection  # noqa: E402
from tlslab.proto.config import ClientConfig, ServerConfig  # noqa: E402
from tlslab.proto.messages import parse_message  # noqa: E402
from tlslab.proto.messages12 import parse_message12  # noqa: E402
from tlslab.proto.server import ServerConnection  # noqa: E402
from tlslab.workbench.certgen import make_throwaway_chain, write_pem  # noqa: E402

SUITES = {"1.3": "TLS_AES_128_GCM_SHA256", "1.2": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}


def handshake_messages(version: str, directory: str) -> list:
    """The trace entries of the messages both sides sent, in wire order."""
    chain, key, ca = make_throwaway_chain(key_type="ecdsa-p256")
    write_pem(chain, key, f"{directory}/chain.pem", f"{directory}/key.pem")
    Path(f"{directory}/ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    opts = dict(versions=[version], cipher_suites=[SUITES[version]], groups=["x25519"])
    client = ClientConnection(ClientConfig(server_name="localhost", ca_file=f"{directory}/ca.pem", **opts))
    server = ServerConnection(ServerConfig.from_files(f"{directory}/chain.pem", f"{directory}/key.pem",
                                                      tickets=0, **opts))
    client.start_handshake()
    sent = []
    for _ in range(8):
        for a, b in ((client, server), (server, client)):
            data = a.data_to_send()
            sent += [e for e in a.trace.entries if e.kind == "message" and e.direction == "sent"
                     and e not in sent]
            if data:
                b.receive_data(data)
    if not (client.handshake_complete and server.handshake_complete):
        raise SystemExit(f"TLS {version} handshake failed: {client.error or server.error!r}")
    return sent


def best(fn, number: int) -> float:
    """Microseconds per call: the best of 7 rounds."""
    gc.collect()
    return min(timeit.repeat(fn, number=number, repeat=7, timer=time.process_time)) / number * 1e6


def measure(version: str, number: int, spans: bool, directory: str) -> dict:
    parse = parse_message if version == "1.3" else parse_message12
    rows = []
    for entry in handshake_messages(version, directory):
        msg, raw = entry.message, entry.raw
        if msg.build() != raw:
            raise SystemExit(f"{entry.name} does not build back to what was sent")
        row = {"message": entry.name, "bytes": len(raw),
               "parse_us": best(lambda: parse(raw), number),
               "build_us": best(msg.build, number)}
        if spans:
            row["spans_us"] = best(lambda: parse(raw).spans, max(1, number // 10))
        rows.append(row)
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k.endswith("_us")}
    return {"messages": rows, "total": total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--number", type=int, default=2000, help="calls per round (default 2000)")
    ap.add_argument("--spans", action="store_true", help="also time field spans")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--version", choices=["1.3", "1.2"], action="append",
                    help="only this TLS version (repeatable; default both)")
    args = ap.parse_args()
    import tlslab
    results = {"benchmark": "codec", "tlslab": str(Path(tlslab.__file__).parent),
               "python": sys.version.split()[0], "number": args.number, "versions": {}}
    with tempfile.TemporaryDirectory(prefix="tlslab-codec-") as directory:
        for version in args.version or ["1.3", "1.2"]:
            results["versions"][version] = measure(version, args.number, args.spans, directory)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"tlslab from {results['tlslab']}, Python {results['python']}; "
          f"best of 7 x {args.number} calls, process CPU time")
    for version, res in results["versions"].items():
        cols = [k for k in res["total"]]
        print(f"\nTLS {version}: {'message':22} {'bytes':>6} " + " ".join(f"{c[:-3] + ' us':>10}" for c in cols))
        for r in res["messages"]:
            print(f"          {r['message']:22} {r['bytes']:6} " + " ".join(f"{r[c]:10.2f}" for c in cols))
        print(f"          {'total':22} {'':6} " + " ".join(f"{res['total'][c]:10.2f}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
