"""How long ``tlslab diagnose`` takes, over a set of healthy and broken servers on loopback.

Targets (the diagnose issue): a broken server diagnosed in under 3 s, a healthy one in
under 1.5 s, no more than ~40 handshakes.  The servers are the real ones the tests use
(tests/realservers.py): openssl s_server, gnutls-serv, nginx and a Java SSLServerSocket in
processes of their own (their CPU does not count against tlslab's), plus non-TLS listeners.  For scale, the same run times one ``openssl s_client`` handshake
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
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import realservers as rs  # noqa: E402  (the real servers the tests use)
from tlslab.diagnose import Target, diagnose  # noqa: E402
from tlslab.lab.pki import make_pki  # noqa: E402
from tlslab.profiles import load_profile  # noqa: E402


def s_client_seconds(port: int, ca: str) -> float:
    start = time.monotonic()
    subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                    "localhost", "-CAfile", ca, "-verify_return_error", "-brief"],
                   input=b"", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return time.monotonic() - start


def cases(pki, rsa_pki, tmp: str):
    """(label, kind, profile, name, expected codes, server factory, CA file)."""
    def files(p, kind, sub):
        return p.server(kind).write(os.path.join(tmp, sub))
    ok, rsa = files(pki, "ok", "ok"), files(rsa_pki, "ok", "rsa")
    chain = lambda f: (f["chain"], f["key"])  # noqa: E731
    out = [
        ("openssl s_server", "healthy", "default", "localhost", ["ok"], lambda: rs.openssl_server(*chain(ok)), ok),
        ("openssl s_server TLS 1.2 only", "healthy", "browser", "localhost", ["ok"],
         lambda: rs.openssl_server(*chain(ok), tls=("1.2",)), ok),
        ("gnutls-serv", "healthy", "default", "localhost", ["ok"], lambda: rs.gnutls_server(*chain(rsa)), rsa),
        ("nginx", "healthy", "browser", "localhost", ["ok"], lambda: rs.nginx_server(*chain(ok)), ok),
        ("Java SSLServerSocket", "healthy", "default", "localhost", ["ok"],
         lambda: rs.java_server(*chain(rsa)), rsa),
    ]
    for kind, code in (("expired", "expired"), ("wrong-host", "hostname-mismatch"),
                       ("untrusted-root", "untrusted-root"), ("self-signed", "self-signed"),
                       ("missing-intermediate", "missing-intermediate")):
        f = files(pki, kind, kind)
        out.append((f"openssl {kind}", "broken", "default", "localhost", [code],
                    (lambda f=f: rs.openssl_server(*chain(f))), f))
    out += [
        ("openssl TLS 1.3 only", "broken", "tls12-only", "localhost", ["protocol-version-mismatch"],
         lambda: rs.openssl_server(*chain(rsa), tls=("1.3",)), rsa),
        ("openssl P-521 only", "broken", "browser", "localhost", ["no-common-group"],
         lambda: rs.openssl_server(*chain(rsa), groups="P-521"), rsa),
        ("openssl client cert (TLS 1.3)", "broken", "default", "localhost", ["client-certificate-required"],
         lambda: rs.openssl_server(*chain(rsa), tls=("1.3",), verify_client="require",
                                   client_ca=rsa["client_ca"]), rsa),
        ("gnutls-serv DHE only", "broken", "browser", "localhost", ["no-common-cipher"],
         lambda: rs.gnutls_server(*chain(rsa), priority="NORMAL:-KX-ALL:+DHE-RSA", tls=("1.2",)), rsa),
        ("gnutls-serv client cert (TLS 1.2)", "broken", "default", "localhost", ["client-certificate-required"],
         lambda: rs.gnutls_server(*chain(rsa), tls=("1.2",), verify_client="require",
                                  client_ca=rsa["client_ca"]), rsa),
        ("nginx client cert (HTTP 400)", "broken", "default", "localhost", ["client-certificate-required"],
         lambda: rs.nginx_server(*chain(ok), verify_client="require", client_ca=ok["client_ca"]), ok),
        ("nginx SNI required", "broken", "no-sni", "localhost", ["sni-required"],
         lambda: rs.nginx_server(*chain(ok), sni_required_name="localhost"), ok),
        ("Java P-521 only", "broken", "browser", "localhost", ["no-common-group"],
         lambda: rs.java_server(*chain(rsa), groups=["secp521r1"]), rsa),
        ("Java need client auth", "broken", "default", "localhost", ["client-certificate-required"],
         lambda: rs.java_server(*chain(rsa), client_auth="need", client_ca=rsa["client_ca"]), rsa),
        ("plain HTTP", "broken", "default", "localhost", ["not-tls"], rs.plain_http_server, ok),
        ("reset after ClientHello", "broken", "default", "localhost", ["not-tls"], rs.reset_server, ok),
    ]
    return out


async def one(port: int, ca: list, profile: str, name: str) -> tuple[float, list[str], int]:
    start = time.monotonic()
    report = await diagnose(Target("127.0.0.1", port, name, ca, timeout=5.0),
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
    rsa_pki = make_pki(names=("localhost", "127.0.0.1", "::1"), key_type="rsa2048")
    rows, wrong, missing = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, kind, profile, name, expected, server, f in cases(pki, rsa_pki, tmp):
            ca = load_trust_store(f["ca"])
            try:
                with server() as srv:
                    times, shakes, got = [], [], None
                    for _ in range(args.rounds):
                        took, got, n = asyncio.run(one(srv.port, ca, profile, name))
                        times.append(took)
                        shakes.append(n)
                        if got != expected:
                            wrong.append(f"{label}: expected {expected}, got {got}")
                    ref = None
                    if label.startswith("openssl"):
                        ref = s_client_seconds(srv.port, f["ca"])
            except rs.PeerMissing as e:
                missing.append(f"{label}: {e}")
                continue
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
        for m in missing:
            print("skipped (peer missing):", m)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
