#!/usr/bin/env python3
"""tlslab's key derivation, record protection and key exchange vs the bare library calls.

Usage::

    python benchmarks/primitives.py              # table, fastest of 15 runs per row
    python benchmarks/primitives.py --json
    PYTHONPATH=/other/checkout/src python benchmarks/primitives.py   # compare two trees

Each row times one tlslab operation and the ``cryptography`` / :mod:`hashlib` /
:mod:`hmac` calls a straightforward implementation makes (the "bare" column), measured
in the same run, so the difference is the Python overhead tlslab adds.  HMAC in the bare
column is the cheapest standard-library call (``_hashlib.hmac_new(...).digest()``, about
0.4 µs less than ``hmac.digest`` with OpenSSL 3).  Only public names that have been
stable for a while are used, so an older checkout can be measured too.

Rows:

* ``tls13 key schedule``: one side of a full TLS 1.3 handshake without PSK
  (RFC 8446 §7.1): early, handshake, master secrets, the five traffic/exporter
  secrets, both Finished values and the resumption master secret.  Bare: the
  same HMAC calls (15, two of which, the early secret and its "derived" secret, are
  constants without a PSK) on prebuilt inputs.
* ``tls13 RecordProtector()``: key and IV from a traffic secret (§7.3) and the AEAD
  object.  Bare: two HMACs and ``AESGCM(key)``.
* ``tls13 seal/open 16 KiB``: one full record each way, AES-128-GCM.  Bare:
  ``AESGCM.encrypt`` / ``decrypt`` of the same sizes.
* ``x25519 client+server``: the client's key share, the server's share and secret,
  the client's secret (RFC 8446 §4.2.8).  Bare: two generates, two
  ``public_bytes_raw``, two ``from_public_bytes`` and two ``exchange``.
* ``tls12 keys``: extended master secret, key block and both Finished values
  (RFC 7627 §4, RFC 5246 §6.3, §7.4.9).  Bare: the same HMAC calls.
* ``tls12 seal/open 16 KiB``: AES-128-GCM (RFC 5288).  Bare: ``AESGCM``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import timeit
from pathlib import Path

try:
    import tlslab  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from cryptography.hazmat.primitives.asymmetric import x25519  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from tlslab.proto.groups import X25519, new_key_share, server_key_share  # noqa: E402
from tlslab.proto.keyschedule import SUITES, KeySchedule  # noqa: E402
from tlslab.proto.keyschedule import hmac_new as _hmac_new  # noqa: E402  (the bare C call)
from tlslab.proto.protection import RecordProtector  # noqa: E402
from tlslab.proto.tls12 import prf as prf12  # noqa: E402
from tlslab.proto.tls12.protection import RecordProtector12  # noqa: E402
from tlslab.proto.tls12.suites import SUITES12  # noqa: E402

SUITE = SUITES[0x1301]
RECORD = 16 * 1024


def _noop(name: str, secret: bytes) -> None:
    """Stands for the connection's trace/key-log reporter (its cost is not ours)."""


def tls13_schedule_pair():
    th = hashlib.sha256(b"transcript").digest()
    shared = bytes(range(32))

    def ours() -> None:
        ks = KeySchedule(SUITE, _noop)
        ks.extract_handshake(shared)
        c, s = ks.handshake_traffic(th)
        ks.verify_data(s, th)
        ks.verify_data(c, th)
        ks.extract_master()
        ks.application_traffic(th)
        ks.resumption_master(th)

    key = bytes(32)
    info = b"\x00\x20\x12tls13 c hs traffic\x20" + th + b"\x01"

    def bare() -> None:
        # extract early, extract handshake, extract master: 3; derived (early, master): 2;
        # c/s hs, c/s ap, exp, res: 6; finished key + HMAC, twice: 4
        for _ in range(15):
            _hmac_new(key, info, "sha256").digest()

    return ours, bare


def protector_pair():
    secret = bytes(range(32))
    info = b"\x00\x10\x09tls13 key\x00\x01"

    def ours() -> None:
        RecordProtector(SUITE, secret)

    def bare() -> None:
        k = _hmac_new(secret, info, "sha256").digest()[:16]
        _hmac_new(secret, info, "sha256").digest()
        AESGCM(k)

    return ours, bare


def seal_open_pair():
    secret = bytes(range(32))
    sealer, opener = RecordProtector(SUITE, secret), RecordProtector(SUITE, secret)
    data = os.urandom(RECORD)
    aead = AESGCM(bytes(16))
    nonce = bytes(12)
    header = b"\x17\x03\x03\x40\x11"
    inner = data + b"\x17"
    ct = aead.encrypt(nonce, inner, header)

    def ours() -> None:
        rec = sealer.seal(23, data)
        opener.open(rec[:5], rec[5:])

    def bare() -> None:
        aead.encrypt(nonce, inner, header)
        aead.decrypt(nonce, ct, header)

    return ours, bare


def x25519_pair():
    def ours() -> None:
        share = new_key_share(X25519, None)
        server_public, _ = server_key_share(X25519, share.public, None)
        share.shared_secret(server_public)

    gen, load = x25519.X25519PrivateKey.generate, x25519.X25519PublicKey.from_public_bytes

    def bare() -> None:
        c = gen()
        cp = c.public_key().public_bytes_raw()
        s = gen()
        sp = s.public_key().public_bytes_raw()
        s.exchange(load(cp))
        c.exchange(load(sp))

    return ours, bare


def tls12_keys_pair():
    suite = next(s for s in SUITES12.values() if s.name == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    pms, cr, sr = bytes(range(32)), bytes(32), bytes(range(32, 64))
    sh = hashlib.sha256(b"handshake").digest()

    def ours() -> None:
        ms = prf12.master_secret(pms, cr, sr, session_hash=sh)
        prf12.key_material(suite, ms, cr, sr)
        prf12.verify_data(ms, sh, True)
        prf12.verify_data(ms, sh, False)

    seed = b"extended master secret" + sh

    def bare() -> None:
        # master secret 48 B: 2 blocks (4 HMACs); key block 40 B: 2 blocks (4);
        # 2 Finished of 12 B: 1 block each (2 HMACs each)
        for _ in range(12):
            _hmac_new(pms, seed, "sha256").digest()

    return ours, bare


def tls12_seal_open_pair():
    suite = next(s for s in SUITES12.values() if s.name == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    key, salt = bytes(16), bytes(4)
    sealer, opener = RecordProtector12(suite, key, iv=salt), RecordProtector12(suite, key, iv=salt)
    data = os.urandom(RECORD)
    aead = AESGCM(key)
    nonce = bytes(12)
    aad = bytes(13)
    ct = aead.encrypt(nonce, data, aad)

    def ours() -> None:
        rec = sealer.seal(23, data)
        opener.open(rec[:5], rec[5:])

    def bare() -> None:
        aead.encrypt(nonce, data, aad)
        aead.decrypt(nonce, ct, aad)

    return ours, bare


ROWS = {
    "tls13 key schedule (one side)": tls13_schedule_pair,
    "tls13 RecordProtector()": protector_pair,
    "tls13 seal+open 16 KiB": seal_open_pair,
    "x25519 client+server": x25519_pair,
    "tls12 keys (EMS, key block, 2 Finished)": tls12_keys_pair,
    "tls12 seal+open 16 KiB (AES-GCM)": tls12_seal_open_pair,
}


def measure(ours, bare, number: int, repeat: int) -> tuple[float, float]:
    """Fastest µs per call of each over ``repeat`` runs of ``number`` calls, the two
    interleaved run by run: the machine is shared, and other work only ever adds time,
    so the minimum is the least disturbed run, and interleaving exposes both to the
    same conditions."""
    best_ours = best_bare = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, timeit.timeit(ours, number=number))
        best_bare = min(best_bare, timeit.timeit(bare, number=number))
    return best_ours / number * 1e6, best_bare / number * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", help="substring of the row names to run")
    args = ap.parse_args()
    results = {}
    for name, make in ROWS.items():
        if args.only and args.only not in name:
            continue
        ours, bare = make()
        # about 0.05 s per run at the speed of the bare calls
        per = timeit.timeit(bare, number=100) / 100 * 1e6
        number = max(20, int(0.05e6 / max(per, 0.1)))
        tlslab_us, bare_us = measure(ours, bare, number, args.repeat)
        results[name] = {"tlslab_us": tlslab_us, "bare_us": bare_us}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'':42} {'tlslab µs':>10} {'bare µs':>10} {'overhead µs':>12}")
    for name, r in results.items():
        print(f"{name:42} {r['tlslab_us']:10.2f} {r['bare_us']:10.2f} "
              f"{r['tlslab_us'] - r['bare_us']:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
