"""Timing of the server's static-RSA premaster handling: good vs bad ciphertexts.

Measures ``tlslab.proto.tls12.keyexchange.decrypt_premaster`` (the code a TLS 1.2
server runs on a static-RSA ClientKeyExchange, RFC 5246 §7.4.7.1) on four kinds of
ciphertext, interleaved in a random order so that drift (CPU frequency, other load)
hits every kind alike:

- ``good``: a well-formed PKCS#1 v1.5 block holding a 48-byte premaster;
- ``bad-padding``: random bytes below the modulus (the padding is wrong);
- ``bad-length``: a well-formed block holding 47 bytes instead of 48;
- ``bad-version``: a well-formed 48-byte block with the wrong version bytes;
- ``not-below-n``: a value not below the modulus (public knowledge, rejected with an
  exception: shows what an exception path costs).

For each bad kind it reports the medians and a two-sided Mann-Whitney U test against
``good`` (normal approximation with tie correction; no SciPy needed), plus the
difference of medians.  It also says whether this ``cryptography``/OpenSSL build does
RSA implicit rejection (a synthetic message instead of an exception on bad padding).

    .venv/bin/python benchmarks/rsa_premaster_timing.py               # 20,000 per kind
    .venv/bin/python benchmarks/rsa_premaster_timing.py --samples 2000 --json

Not part of ``make test``; it never asserts, it reports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time

from cryptography.hazmat.backends.openssl import backend
from cryptography.hazmat.primitives.asymmetric import padding, rsa
import cryptography

from tlslab.proto.tls12.keyexchange import decrypt_premaster, implicit_rejection_available

CLIENT_VERSION = 0x0303


class _Provider:
    def random(self, n: int) -> bytes:
        return os.urandom(n)


def _pkcs1_block(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.public_key().encrypt(message, padding.PKCS1v15())


def _bad_padding(key: rsa.RSAPrivateKey) -> bytes:
    n = key.public_key().public_numbers().n
    size = (n.bit_length() + 7) // 8
    # a random value below n is a valid PKCS#1 v1.5 block with probability < 2^-15
    c = int.from_bytes(os.urandom(size), "big") % n
    return c.to_bytes(size, "big")


def _not_below_n(key: rsa.RSAPrivateKey) -> bytes:
    n = key.public_key().public_numbers().n
    size = (n.bit_length() + 7) // 8
    return (n + int.from_bytes(os.urandom(4), "big")).to_bytes(size, "big")


def make_ciphertexts(key: rsa.RSAPrivateKey, count: int) -> dict[str, list[bytes]]:
    good_pm = lambda: CLIENT_VERSION.to_bytes(2, "big") + os.urandom(46)  # noqa: E731
    return {
        "good": [_pkcs1_block(key, good_pm()) for _ in range(count)],
        "bad-padding": [_bad_padding(key) for _ in range(count)],
        "bad-length": [_pkcs1_block(key, good_pm()[:47]) for _ in range(count)],
        "bad-version": [_pkcs1_block(key, b"\x02\x00" + os.urandom(46)) for _ in range(count)],
        # not below the modulus: public knowledge; cryptography raises, so this shows what
        # an exception path costs (what bad padding would cost without implicit rejection)
        "not-below-n": [_not_below_n(key) for _ in range(count)],
    }


def mann_whitney(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Two-sided Mann-Whitney U: ``(U of a, z, p)`` (normal approximation, ties corrected)."""
    n1, n2 = len(a), len(b)
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    tie_term = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = r
        t = j - i + 1
        tie_term += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, pooled) if g == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    z = (u1 - mean) / math.sqrt(var) if var > 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))
    return u1, z, p


def measure(key: rsa.RSAPrivateKey, samples: int, seed: int) -> dict:
    cts = make_ciphertexts(key, samples)
    order = [(kind, i) for kind in cts for i in range(samples)]
    random.Random(seed).shuffle(order)
    provider = _Provider()
    for kind in cts:  # warm-up
        for c in cts[kind][:50]:
            decrypt_premaster(key, c, CLIENT_VERSION, provider)
    times: dict[str, list[float]] = {kind: [] for kind in cts}
    clock = time.perf_counter_ns
    for kind, i in order:
        c = cts[kind][i]
        t0 = clock()
        decrypt_premaster(key, c, CLIENT_VERSION, provider)
        times[kind].append(float(clock() - t0))
    good = times["good"]
    out = {"good": {"median_us": statistics.median(good) / 1000}}
    for kind in cts:
        if kind == "good":
            continue
        u, z, p = mann_whitney(times[kind], good)
        out[kind] = {
            "median_us": statistics.median(times[kind]) / 1000,
            "median_diff_us": (statistics.median(times[kind]) - statistics.median(good)) / 1000,
            "mann_whitney_u": u, "z": round(z, 3), "p": p,
            # probability that a bad sample is slower than a good one (0.5: indistinguishable)
            "effect_auc": round(u / (len(times[kind]) * len(good)), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000, help="ciphertexts per kind")
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    key = rsa.generate_private_key(65537, args.bits)
    result = {
        "python": platform.python_version(), "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(), "rsa_bits": args.bits,
        "samples_per_kind": args.samples,
        "implicit_rejection": implicit_rejection_available(),
        "kinds": measure(key, args.samples, args.seed),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['openssl']}, cryptography {result['cryptography']}, Python {result['python']}, "
          f"RSA-{args.bits}; implicit rejection: {'yes' if result['implicit_rejection'] else 'no'}")
    print(f"{args.samples} samples per kind, interleaved in random order")
    print(f"{'kind':<12} {'median µs':>10} {'Δ median µs':>12} {'AUC':>7} {'z':>8} {'p':>10}")
    for kind, r in result["kinds"].items():
        if kind == "good":
            print(f"{kind:<12} {r['median_us']:>10.1f}")
        else:
            print(f"{kind:<12} {r['median_us']:>10.1f} {r['median_diff_us']:>12.2f} "
                  f"{r['effect_auc']:>7.4f} {r['z']:>8.2f} {r['p']:>10.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
