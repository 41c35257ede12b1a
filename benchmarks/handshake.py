#!/usr/bin/env python3
"""tlslab vs Python ``ssl``: TLS 1.3 and 1.2 handshakes per second and bulk throughput, in memory.

Usage::

    python benchmarks/handshake.py                  # table, 3 s per measurement and side
    python benchmarks/handshake.py --seconds 1      # quicker, noisier
    python benchmarks/handshake.py --json           # one JSON object on stdout
    python benchmarks/handshake.py --profile bulk   # cProfile of the tlslab side only

Both stacks run in this process, without sockets: tlslab's client and server
connections hand bytes to each other directly; ``ssl`` runs an ``SSLObject``
pair over ``ssl.MemoryBIO``.  Both use the same throwaway CA and server
certificate and X25519, and the client verifies the chain and the name
"localhost" on both sides.  Measured: full TLS 1.3 handshakes
(TLS_AES_128_GCM_SHA256), resumed TLS 1.3 handshakes (psk_dhe_ke, a fresh
ticket each time), full TLS 1.2 handshakes (ECDHE-ECDSA / ECDHE-RSA with
AES128-GCM-SHA256) and TLS 1.3 bulk throughput.  Measurements are
interleaved in short slices so that both stacks run under the same machine
conditions.  The targets (ratio tlslab/ssl >= 0.8) are reported, never asserted.
See benchmarks/README.md.
"""
from __future__ import annotations

import os
import sys
import tempfile

# -- pin Python ssl's TLS 1.3 cipher suite ------------------------------------------------
# The ssl module has no API for TLS 1.3 cipher suites (set_ciphers() is TLS 1.2 only) and
# OpenSSL would otherwise pick TLS_AES_256_GCM_SHA384.  OpenSSL applies the
# "system_default" section of its configuration file to every new SSL_CTX, and reads that
# file when the _ssl extension initialises it, so the variable must be set before anything
# imports ssl (tlslab.proto.certificates does).  The pin is checked after each handshake.
_OPENSSL_CNF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = TLS_AES_128_GCM_SHA256
"""
_SSL_IMPORTED_EARLY = "ssl" in sys.modules or "_ssl" in sys.modules
_TMPDIR = tempfile.TemporaryDirectory(prefix="tlslab-bench-")
_cnf_path = os.path.join(_TMPDIR.name, "openssl.cnf")
with open(_cnf_path, "w") as _f:
    _f.write(_OPENSSL_CNF)
os.environ["OPENSSL_CONF"] = _cnf_path
# Neither side may write a key log during the benchmark (tlslab honours SSLKEYLOGFILE).
os.environ.pop("SSLKEYLOGFILE", None)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import ssl  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

try:
    import tlslab  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import cryptography  # noqa: E402

from tlslab.proto.client import ClientConnection  # noqa: E402
from tlslab.proto.config import ClientConfig, ServerConfig  # noqa: E402
from tlslab.proto.events import ApplicationData  # noqa: E402
from tlslab.proto.server import ServerConnection  # noqa: E402
from tlslab.proto.tickets import TicketStore  # noqa: E402
from tlslab.workbench.certgen import make_throwaway_chain, write_pem  # noqa: E402

SUITE = "TLS_AES_128_GCM_SHA256"
GROUP = "x25519"
SERVER_NAME = "localhost"
RECORD = 16 * 1024          # bytes of application data per record (the TLS maximum, 2^14)
TARGET = 0.8                # issue target: tlslab >= 0.8 x ssl
SLICE = 0.25                # seconds per interleaved slice
CERT_TYPES = {"ecdsa-p256": "ECDSA P-256", "rsa2048": "RSA-2048"}


@dataclass(frozen=True)
class Scenario:
    """One handshake measurement: what both sides are configured to do."""

    key: str                    # key in the JSON "results"
    name: str                   # key in the JSON "negotiated"; --profile handshake-<name>
    metric: str                 # table row
    cert: str                   # a CERT_TYPES key
    version: str = "1.3"        # "1.3" or "1.2" (the only version enabled on both sides)
    resume: bool = False        # TLS 1.3 resumption with a fresh ticket per handshake
    suite: str = SUITE          # IANA name, as tlslab reports it
    ssl_cipher: str = SUITE     # the name Python ssl reports (and set_ciphers takes, for 1.2)


HANDSHAKES = [
    Scenario("handshake_ecdsa_p256", "ecdsa-p256", "TLS 1.3 handshakes/s, ECDSA P-256 cert",
             "ecdsa-p256"),
    Scenario("handshake_rsa2048", "rsa2048", "TLS 1.3 handshakes/s, RSA-2048 cert", "rsa2048"),
    Scenario("handshake_resumed_ecdsa_p256", "resumed-ecdsa-p256",
             "TLS 1.3 resumed handshakes/s, psk_dhe_ke", "ecdsa-p256", resume=True),
    Scenario("handshake_tls12_ecdsa_p256", "tls12-ecdsa-p256",
             "TLS 1.2 handshakes/s, ECDHE-ECDSA P-256", "ecdsa-p256", version="1.2",
             suite="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
             ssl_cipher="ECDHE-ECDSA-AES128-GCM-SHA256"),
    Scenario("handshake_tls12_rsa2048", "tls12-rsa2048",
             "TLS 1.2 handshakes/s, ECDHE-RSA-2048", "rsa2048", version="1.2",
             suite="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
             ssl_cipher="ECDHE-RSA-AES128-GCM-SHA256"),
]
SCENARIOS = {sc.name: sc for sc in HANDSHAKES}


class BenchError(RuntimeError):
    """A side did not do what the benchmark needs (handshake failed, wrong suite...)."""


# -- certificates -----------------------------------------------------------------------
@dataclass
class Pki:
    key_type: str
    cert_file: str
    key_file: str
    ca_file: str
    chain: list
    key: object


def make_pki(key_type: str, directory: str) -> Pki:
    chain, key, ca_cert = make_throwaway_chain(key_type=key_type)
    cert_file = os.path.join(directory, f"{key_type}-chain.pem")
    key_file = os.path.join(directory, f"{key_type}-key.pem")
    ca_file = os.path.join(directory, f"{key_type}-ca.pem")
    write_pem(chain, key, cert_file, key_file)
    with open(ca_file, "wb") as f:
        from cryptography.hazmat.primitives.serialization import Encoding
        f.write(ca_cert.public_bytes(Encoding.PEM))
    return Pki(key_type, cert_file, key_file, ca_file, chain, key)


# -- tlslab side --------------------------------------------------------------------------
class TlslabSide:
    """ClientConnection + ServerConnection wired back to back in memory."""

    name = "tlslab"

    def __init__(self, pki: Pki, scenario: Scenario = HANDSHAKES[0]) -> None:
        self.scenario = sc = scenario
        # Full handshakes: no tickets (the ssl server sends none either).  Resumption: the
        # client keeps tickets in its own store, and the server sends one per handshake,
        # resumed ones included, so each resumption uses a fresh ticket.
        self.client_config = ClientConfig(server_name=SERVER_NAME, ca_file=pki.ca_file,
                                          versions=[sc.version], cipher_suites=[sc.suite],
                                          groups=[GROUP],
                                          session_store=TicketStore() if sc.resume else None)
        # Loaded from the files, as `tlslab serve --cert/--key` would.
        self.server_config = ServerConfig.from_files(pki.cert_file, pki.key_file,
                                                     versions=[sc.version], cipher_suites=[sc.suite],
                                                     groups=[GROUP], tickets=1 if sc.resume else 0)
        if sc.resume:  # a full handshake for the first ticket
            client, _ = self._handshake()
            if client.negotiated["resumed"]:
                raise BenchError("tlslab: the priming handshake resumed")
            # whether it left a ticket shows in the next handshake, which must resume

    def handshake(self) -> tuple[ClientConnection, ServerConnection]:
        client, server = self._handshake()
        if self.scenario.resume and not (client.negotiated["resumed"] and server.negotiated["resumed"]):
            raise BenchError("tlslab: the handshake did not resume (client "
                             f"{client.negotiated['resumed']}, server {server.negotiated['resumed']})")
        return client, server

    def _handshake(self) -> tuple[ClientConnection, ServerConnection]:
        client = ClientConnection(self.client_config)
        server = ServerConnection(self.server_config)
        client.start_handshake()
        for _ in range(8):  # two flights each way, then the server's NewSessionTicket
            data = client.data_to_send()
            if data:
                server.receive_data(data)
            data = server.data_to_send()
            if data:
                client.receive_data(data)
            elif client.handshake_complete and server.handshake_complete:
                break
        if not (client.handshake_complete and server.handshake_complete):
            err = client.error or server.error
            raise BenchError(f"tlslab handshake did not complete: {err!r}")
        return client, server

    def describe(self) -> dict:
        client, server = self.handshake()
        n = client.negotiated
        if (server.negotiated["cipher_suite"], server.negotiated["version"]) != (n["cipher_suite"], n["version"]):
            raise BenchError(f"tlslab client and server disagree: {n} / {server.negotiated}")
        return {"version": n["version"], "cipher_suite": n["cipher_suite"], "group": n["group"],
                "signature_scheme": n["signature_scheme"], "resumed": n["resumed"]}

    def bulk_runner(self) -> Callable[[int], int]:
        """A function sending ``n`` 16 KiB records client -> server; returns bytes received."""
        sender, receiver = self.handshake()
        payload = os.urandom(RECORD)
        send, flush, recv = sender.send_application_data, sender.data_to_send, receiver.receive_data

        def run(n: int) -> int:
            got = 0
            for _ in range(n):
                send(payload)
                for event in recv(flush()):
                    if type(event) is ApplicationData:
                        got += len(event.data)
            return got

        if run(1) != RECORD:
            raise BenchError("tlslab bulk transfer did not deliver the record")
        return run


# -- Python ssl side ----------------------------------------------------------------------
class SslSide:
    """An ssl.SSLObject client and server over ssl.MemoryBIO."""

    name = "ssl"

    def __init__(self, pki: Pki, scenario: Scenario = HANDSHAKES[0]) -> None:
        self.scenario = sc = scenario
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED
        cctx.load_verify_locations(cafile=pki.ca_file)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(pki.cert_file, pki.key_file)
        # the server's only group (OpenSSL 3: SSL_CTX_set1_groups), so x25519 is certain
        sctx.set_ecdh_curve("X25519")
        version = ssl.TLSVersion.TLSv1_3 if sc.version == "1.3" else ssl.TLSVersion.TLSv1_2
        for ctx in (cctx, sctx):
            ctx.minimum_version = ctx.maximum_version = version
            if sc.version == "1.2":
                ctx.set_ciphers(sc.ssl_cipher)
        if sc.version == "1.2":
            sctx.options |= ssl.OP_NO_TICKET  # full handshakes; tlslab sends no ticket either
        # full handshakes: no NewSessionTickets (tlslab's server is set to send none);
        # resumption: one per handshake on both sides
        sctx.num_tickets = 1 if sc.resume else 0
        self.cctx, self.sctx = cctx, sctx
        self.session = None
        if sc.resume:  # a full handshake for the first ticket
            client, _, _ = self._handshake()
            if client.session_reused or self.session is None or not self.session.has_ticket:
                raise BenchError("ssl: the priming handshake did not leave a ticket")

    def handshake(self):
        client, server, bios = self._handshake()
        if self.scenario.resume and not (client.session_reused and server.session_reused):
            raise BenchError("ssl: the handshake did not resume (client "
                             f"{client.session_reused}, server {server.session_reused})")
        return client, server, bios

    def _handshake(self):
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = self.cctx.wrap_bio(c_in, c_out, server_hostname=SERVER_NAME, session=self.session)
        server = self.sctx.wrap_bio(s_in, s_out, server_side=True)
        c_done = s_done = False
        for _ in range(8):
            if not c_done:
                try:
                    client.do_handshake()
                    c_done = True
                except ssl.SSLWantReadError:
                    pass
            data = c_out.read()
            if data:
                s_in.write(data)
            if not s_done:
                try:
                    server.do_handshake()
                    s_done = True
                except ssl.SSLWantReadError:
                    pass
            data = s_out.read()
            if data:
                c_in.write(data)
            if c_done and s_done:
                break
        if not (c_done and s_done):
            raise BenchError("ssl handshake did not complete")
        if self.scenario.resume:
            # the server's NewSessionTicket is in c_in: one read lets the client process it
            try:
                client.read(1)
            except ssl.SSLWantReadError:
                pass
            self.session = client.session
        return client, server, (c_in, c_out, s_in, s_out)

    def session_getter_us(self, n: int = 200) -> float:
        """Microseconds per ``SSLObject.session`` read, which the resumed side pays once per
        handshake (CPython copies the session through i2d/d2i_SSL_SESSION on each read)."""
        client, _, _ = self.handshake()
        clock = time.perf_counter
        start = clock()
        for _ in range(n):
            client.session  # noqa: B018
        return (clock() - start) / n * 1e6

    def describe(self) -> dict:
        client, server, _ = self.handshake()
        if (server.cipher()[0], server.version()) != (client.cipher()[0], client.version()):
            raise BenchError(f"ssl client and server disagree: {client.cipher()} / {server.cipher()}")
        return {"version": client.version(), "cipher_suite": client.cipher()[0],
                "group": f"{GROUP} (the ssl server's only group)", "signature_scheme": None,
                "resumed": client.session_reused}

    def bulk_runner(self) -> Callable[[int], int]:
        sender, receiver, (_, s_out_bio, r_in_bio, _) = self.handshake()
        payload = os.urandom(RECORD)
        write, pull, push, read = sender.write, s_out_bio.read, r_in_bio.write, receiver.read

        def run(n: int) -> int:
            got = 0
            for _ in range(n):
                write(payload)
                push(pull())
                got += len(read(RECORD))
            return got

        if run(1) != RECORD:
            raise BenchError("ssl bulk transfer did not deliver the record")
        return run


# -- timing -------------------------------------------------------------------------------
@dataclass
class Tally:
    ops: int = 0          # handshakes, or bytes for bulk
    seconds: float = 0.0
    slices: list = field(default_factory=list)  # per-slice rates

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def _slice(step: Callable[[], int], seconds: float) -> tuple[int, float]:
    """Run ``step`` (returns units done) until ``seconds`` of wall time have passed."""
    clock = time.perf_counter
    ops = 0
    start = clock()
    deadline = start + seconds
    while True:
        ops += step()
        now = clock()
        if now >= deadline:
            return ops, now - start


def interleaved(steps: dict[str, Callable[[], int]], seconds: float,
                warmup: float) -> dict[str, Tally]:
    """Alternate short slices of each step until each has run ``seconds``; the order of
    the sides flips every round so neither always runs right after the other."""
    for step in steps.values():
        _slice(step, warmup)
    tallies = {name: Tally() for name in steps}
    names = list(steps)
    rounds = max(1, round(seconds / SLICE))
    per_slice = seconds / rounds
    for i in range(rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            gc.collect()
            ops, took = _slice(steps[name], per_slice)
            t = tallies[name]
            t.ops += ops
            t.seconds += took
            t.slices.append(ops / took)
    return tallies


# -- the benchmark --------------------------------------------------------------------------
def _row(metric: str, unit: str, tallies: dict[str, Tally], **extra) -> dict:
    ours, theirs = tallies["tlslab"], tallies["ssl"]
    ratio = ours.rate / theirs.rate if theirs.rate else float("nan")
    return {"metric": metric, "unit": unit,
            "tlslab": ours.rate, "ssl": theirs.rate, "ratio": ratio, "target": TARGET,
            "status": "PASS" if ratio >= TARGET else "BELOW",
            "spread": {name: {"min": min(t.slices), "max": max(t.slices), "slices": len(t.slices)}
                       for name, t in tallies.items()},
            **extra}


def run_all(seconds: float, warmup: float, progress: Callable[[str], None]) -> dict:
    rows = []
    negotiated = {}
    pkis = {kt: make_pki(kt, _TMPDIR.name) for kt in CERT_TYPES}
    for sc in HANDSHAKES:
        tls, ossl = TlslabSide(pkis[sc.cert], sc), SslSide(pkis[sc.cert], sc)
        negotiated[sc.name] = {"tlslab": tls.describe(), "ssl": ossl.describe()}
        _check_negotiated(sc, negotiated[sc.name])
        progress(f"{sc.metric} ...")

        def tls_step(side=tls) -> int:
            side.handshake()
            return 1

        def ssl_step(side=ossl) -> int:
            side.handshake()
            return 1

        tallies = interleaved({"tlslab": tls_step, "ssl": ssl_step}, seconds, warmup)
        extra = {"ssl_session_getter_us": ossl.session_getter_us()} if sc.resume else {}
        rows.append(_row(sc.metric, "handshakes/s", tallies, key=sc.key, **extra))

    progress(f"bulk transfer, {RECORD // 1024} KiB records, {SUITE} ...")
    pki = pkis["ecdsa-p256"]
    tls_run, ssl_run = TlslabSide(pki).bulk_runner(), SslSide(pki).bulk_runner()
    batch = 64  # records per step call: keeps the clock reads out of the measurement
    tallies = interleaved({"tlslab": lambda: tls_run(batch), "ssl": lambda: ssl_run(batch)},
                          seconds, warmup)
    for t in tallies.values():  # bytes/s -> MB/s (10^6 bytes)
        t.ops /= 1e6
        t.slices = [r / 1e6 for r in t.slices]
    rows.append(_row(f"bulk MB/s, {RECORD // 1024} KiB records", "MB/s", tallies,
                     key="bulk_aes128gcm_16k"))
    return {
        "benchmark": "tlslab vs Python ssl, in memory",
        "seconds_per_side": seconds,
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "ssl_openssl": ssl.OPENSSL_VERSION,
            "cryptography": cryptography.__version__,
            "cryptography_openssl": _cryptography_openssl(),
            "tlslab": getattr(sys.modules.get("tlslab"), "__version__", "?"),
        },
        "negotiated": negotiated,
        "results": {r.pop("key"): r for r in rows},
    }


def _check_negotiated(sc: Scenario, neg: dict) -> None:
    """Stop unless both sides negotiated the scenario's version, suite and resumption."""
    want = {"tlslab": (f"TLS {sc.version}", sc.suite), "ssl": (f"TLSv{sc.version}", sc.ssl_cipher)}
    for side, info in neg.items():
        version, suite = want[side]
        if info["cipher_suite"] != suite:
            hint = (" (ssl was imported before the OpenSSL configuration could be set)"
                    if side == "ssl" and _SSL_IMPORTED_EARLY else "")
            raise BenchError(f"{sc.name}: {side} negotiated {info['cipher_suite']}, not {suite}{hint}")
        if info["version"] != version:
            raise BenchError(f"{sc.name}: {side} negotiated {info['version']}, not {version}")
        if info["resumed"] != sc.resume:
            raise BenchError(f"{sc.name}: {side} resumed={info['resumed']}, expected {sc.resume}")
    if neg["tlslab"]["group"] != GROUP:
        raise BenchError(f"{sc.name}: tlslab negotiated group {neg['tlslab']['group']}, not {GROUP}")


def _cryptography_openssl() -> str:
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
        return backend.openssl_version_text()
    except Exception:  # pragma: no cover - depends on the cryptography build
        return "?"


# -- output ---------------------------------------------------------------------------------
def _fmt(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "handshakes/s" else f"{value:,.1f}"


def print_table(report: dict) -> None:
    env = report["environment"]
    title = (f"tlslab vs Python ssl, in memory, {report['seconds_per_side']:g} s per side")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for r in report["results"].values():
            print(f"  {r['metric']:<48} {_fmt(r['tlslab'], r['unit']):>10} {_fmt(r['ssl'], r['unit']):>10}"
                  f"  {r['ratio']:.2f}x {r['status']}")
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("tlslab", justify="right")
    table.add_column("ssl", justify="right")
    table.add_column(f"ratio (≥ {TARGET})", justify="right")
    for r in report["results"].values():
        style = "green" if r["status"] == "PASS" else "red"
        table.add_row(r["metric"], _fmt(r["tlslab"], r["unit"]), _fmt(r["ssl"], r["unit"]),
                      f"{r['ratio']:.2f}x [{style}]{r['status']}[/{style}]")
    console = Console()
    console.print(table)
    neg = "; ".join(f"{kt}: {v['tlslab']['cipher_suite']}, {v['tlslab']['signature_scheme']}"
                    for kt, v in report["negotiated"].items())
    console.print(f"[dim]{GROUP} everywhere; bulk: TLS 1.3, {SUITE}; tlslab negotiated: {neg}; "
                  f"Python {env['python']}, ssl with {env['ssl_openssl']}, "
                  f"cryptography {env['cryptography']} ({env['cryptography_openssl']}), "
                  f"{env['cpus']} CPUs[/dim]")


# -- profiling ------------------------------------------------------------------------------
def profile(what: str, seconds: float, top: int) -> None:
    """cProfile the tlslab side of one measurement and print the top functions."""
    import cProfile
    import pstats

    if what == "bulk":
        run = TlslabSide(make_pki("ecdsa-p256", _TMPDIR.name)).bulk_runner()

        def step() -> int:
            return run(64)
    else:
        sc = SCENARIOS[what.split("-", 1)[1]]
        side = TlslabSide(make_pki(sc.cert, _TMPDIR.name), sc)

        def step() -> int:
            side.handshake()
            return 1
    _slice(step, 0.2)
    prof = cProfile.Profile()
    prof.enable()
    ops, took = _slice(step, seconds)
    prof.disable()
    print(f"profile of tlslab {what}: {ops:,} units in {took:.2f} s under cProfile "
          "(absolute rates under the profiler are lower than in the benchmark)")
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See benchmarks/README.md for what is measured and how.")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="measured time per measurement and side (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="untimed warm-up per measurement and side (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--profile", choices=[f"handshake-{sc.name}" for sc in HANDSHAKES] + ["bulk"],
                        help="instead of the comparison, cProfile the tlslab side of one measurement")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be > 0 and --warmup >= 0")
    try:
        if args.profile:
            profile(args.profile, args.seconds, args.top)
            return 0

        def progress(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        report = run_all(args.seconds, args.warmup, progress if not args.json else (lambda m: None))
    except BenchError as err:
        print(f"benchmark error: {err}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
