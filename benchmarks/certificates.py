#!/usr/bin/env python3
"""Certificate and signature checks of a handshake against the bare ``cryptography`` calls.

Usage::

    python benchmarks/certificates.py               # table, ~1 s per measurement
    python benchmarks/certificates.py --seconds 3   # steadier
    python benchmarks/certificates.py --json        # one JSON object on stdout

For an ECDSA P-256 and an RSA-2048 throwaway chain (leaf only; its CA is the trust
anchor, as in ``benchmarks/handshake.py``) this measures, in microseconds per call:

``chain``
    ``verify_server_chain`` on certificates freshly parsed from the DER of the
    Certificate message (as a connection has them), for a chain already seen in this
    process (a server presents the same chain on every connection);
``chain-first``
    the same for a chain seen for the first time (the memo of static checks emptied);
``chain-bare``
    what the library alone does: parse, ``PolicyBuilder().store().time()``,
    ``build_server_verifier()``, ``verify()`` (the honest floor: the time and the
    signatures are checked on every connection);
``sigverify`` / ``sigverify-bare``
    ``signatures.verify`` of a CertificateVerify (RFC 8446 §4.4.3) with the leaf
    certificate freshly parsed, against ``public_key().verify()`` alone;
``sign`` / ``sign-bare``
    ``signatures.sign`` against the private key's ``sign()``.

The ratio ours/bare is what to read; the absolute numbers move with the machine.
Nothing is asserted.
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.verification import PolicyBuilder, Store

from tlslab.proto import certificates, signatures
from tlslab.workbench.certgen import make_throwaway_chain

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


def _measure(cases: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """Microseconds per call of each case: the best of many ~20 ms slices, the cases
    taking turns, so that a busy moment of a shared machine hits them alike and the
    minimum (the least noisy estimate) is taken over the same conditions."""
    sizes = {}
    for name, fn in cases.items():
        fn()
        n, start = 1, time.perf_counter()
        while time.perf_counter() - start < 0.02:
            fn()
            n += 1
        sizes[name] = n
    best = {name: float("inf") for name in cases}
    deadline = time.perf_counter() + seconds * len(cases)
    while time.perf_counter() < deadline:
        for name, fn in cases.items():
            n = sizes[name]
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t) / n * 1e6)
    return best


def _cases(key_type: str) -> dict[str, Callable[[], object]]:
    chain, key, ca = make_throwaway_chain(("localhost",), key_type=key_type, now=NOW)
    trust = [ca]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    load = x509.load_der_x509_certificate
    store = Store(trust)
    subject = x509.DNSName("localhost")

    def chain_ours() -> object:
        certs = [load(d) for d in ders]
        return certificates.verify_server_chain(certs, "localhost", trust, NOW, ders=ders)

    def chain_first() -> object:
        certificates._STATIC_OK.clear()
        return chain_ours()

    def chain_bare() -> object:
        certs = [load(d) for d in ders]
        builder = PolicyBuilder().store(store).time(NOW)
        return builder.build_server_verifier(subject).verify(certs[0], certs[1:])

    if key_type.startswith("ecdsa"):
        scheme = signatures.ECDSA_SECP256R1_SHA256
        args: tuple = (ec.ECDSA(hashes.SHA256()),)
    else:
        scheme = signatures.RSA_PSS_RSAE_SHA256
        args = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    data = signatures.certificate_verify_input(bytes(32), server=True)
    signature = signatures.sign(key, scheme, data)

    return {
        "chain": chain_ours,
        "chain-first": chain_first,
        "chain-bare": chain_bare,
        "sigverify": lambda: signatures.verify(load(ders[0]), scheme, data, signature),
        "sigverify-bare": lambda: load(ders[0]).public_key().verify(signature, data, *args),
        "sign": lambda: signatures.sign(key, scheme, data),
        "sign-bare": lambda: key.sign(data, *args),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    opts = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for key_type in ("ecdsa-p256", "rsa2048"):
        measured = _measure(_cases(key_type), opts.seconds)
        results[key_type] = {name: round(us, 2) for name, us in measured.items()}
    if opts.json:
        print(json.dumps(results))
        return
    for key_type, r in results.items():
        print(key_type)
        for what in ("chain", "chain-first", "sigverify", "sign"):
            bare = r[f"{what}-bare" if what != "chain-first" else "chain-bare"]
            print(f"  {what:12s} {r[what]:8.1f} us   bare {bare:8.1f} us   "
                  f"ours/bare {r[what] / bare:5.2f}")


if __name__ == "__main__":
    main()
