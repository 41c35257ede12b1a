#!/usr/bin/env python3
"""tlslab vs Python ``ssl``: TLS 1.3 and 1.2 handshakes per second, memory per idle connection
and bulk throughput, in memory.

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
(TLS_AES_128_GCM_SHA256), with X25519 and with the hybrid X25519MLKEM768
(compared with ``ssl`` only where its OpenSSL has the group), resumed TLS 1.3
handshakes (psk_dhe_ke, a fresh ticket each time), full TLS 1.2 handshakes
(ECDHE-ECDSA / ECDHE-RSA with AES128-GCM-SHA256), the memory an idle
connection holds (RSS growth in a forked child), and TLS 1.3 bulk throughput.
Under the full handshakes, a "crypto floor" row replays the cryptography and
hashlib calls of a tlslab handshake alone (handshake_floor.py).  Measurements
are interleaved in short slices so that all sides run under the same machine
conditions.  The targets (ratio tlslab/ssl >= 1.0) are reported, never asserted.
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
from tlslab.proto.groups import HAVE_MLKEM  # noqa: E402
from tlslab.workbench.certgen import make_throwaway_chain, write_pem  # noqa: E402

if str(Path(__file__).resolve().parent) not in sys.path:  # imported rather than run
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import handshake_floor  # noqa: E402  (benchmarks/, next to this file)
import handshake_memory  # noqa: E402

SUITE = "TLS_AES_128_GCM_SHA256"
GROUP = "x25519"
SERVER_NAME = "localhost"
RECORD = 16 * 1024          # bytes of application data per record (the TLS maximum, 2^14)
TARGET = 1.0                # the target: tlslab at least as fast as ssl (OpenSSL)
SLICE = 0.25                # seconds per interleaved slice
IDLE_CONNECTIONS = 500      # default connections kept per memory measurement
HYBRID = "X25519MLKEM768"   # tlslab's name of the hybrid group (proto/groups.py)
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
    group: str = GROUP          # the only group enabled on both sides (tlslab's name)
    floor: bool = False         # also measure the crypto floor (handshake_floor.py)


HANDSHAKES = [
    Scenario("handshake_ecdsa_p256", "ecdsa-p256", "TLS 1.3 handshakes/s, ECDSA P-256 cert",
             "ecdsa-p256", floor=True),
    Scenario("handshake_rsa2048", "rsa2048", "TLS 1.3 handshakes/s, RSA-2048 cert", "rsa2048",
             floor=True),
    Scenario("handshake_x25519mlkem768", "x25519mlkem768",
             f"TLS 1.3 handshakes/s, {HYBRID}, ECDSA P-256 cert", "ecdsa-p256", group=HYBRID,
             floor=True),
    Scenario("handshake_resumed_ecdsa_p256", "resumed-ecdsa-p256",
             "TLS 1.3 resumed handshakes/s, psk_dhe_ke", "ecdsa-p256", resume=True),
    Scenario("handshake_tls12_ecdsa_p256", "tls12-ecdsa-p256",
             "TLS 1.2 handshakes/s, ECDHE-ECDSA P-256", "ecdsa-p256", version="1.2",
             suite="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
             ssl_cipher="ECDHE-ECDSA-AES128-GCM-SHA256", floor=True),
    Scenario("handshake_tls12_rsa2048", "tls12-rsa2048",
             "TLS 1.2 handshakes/s, ECDHE-RSA-2048", "rsa2048", version="1.2",
             suite="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
             ssl_cipher="ECDHE-RSA-AES128-GCM-SHA256", floor=True),
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
    ca_cert: object


def make_pki(key_type: str, directory: str) -> Pki:
    chain, key, ca_cert = make_throwaway_chain(key_type=key_type)
    cert_file = os.path.join(directory, f"{key_type}-chain.pem")
    key_file = os.path.join(directory, f"{key_type}-key.pem")
    ca_file = os.path.join(directory, f"{key_type}-ca.pem")
    write_pem(chain, key, cert_file, key_file)
    with open(ca_file, "wb") as f:
        from cryptography.hazmat.primitives.serialization import Encoding
        f.write(ca_cert.public_bytes(Encoding.PEM))
    return Pki(key_type, cert_file, key_file, ca_file, chain, key, ca_cert)


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
                                          groups=[sc.group],
                                          session_store=TicketStore() if sc.resume else None)
        # Loaded from the files, as `tlslab serve --cert/--key` would.
        self.server_config = ServerConfig.from_files(pki.cert_file, pki.key_file,
                                                     versions=[sc.version], cipher_suites=[sc.suite],
                                                     groups=[sc.group], tickets=1 if sc.resume else 0)
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
def ssl_group_problem(group: str) -> str | None:
    """None if Python's ``ssl`` can use ``group`` as the only group *and report it*, so that
    the run can check it was negotiated; otherwise the reason, for the table and the JSON."""
    if group == GROUP:
        return None  # set_ecdh_curve("X25519"), as in every row
    major, minor = ssl.OPENSSL_VERSION_INFO[:2]
    if (major, minor) < (3, 5):  # OpenSSL 3.5 is the first with ML-KEM hybrids in TLS
        return f"n/a (OpenSSL {major}.{minor} has no {group})"
    # set_ecdh_curve() only takes curve names; SSLContext.set_groups() and SSLObject.group()
    # (Python 3.15) are needed to pin the group and to check what was negotiated
    if not (hasattr(ssl.SSLContext, "set_groups") and hasattr(ssl.SSLObject, "group")):
        return (f"n/a (Python {platform.python_version()}'s ssl cannot select or report "
                f"{group})")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_groups(group)
    except (ssl.SSLError, ValueError) as err:
        return f"n/a (ssl refuses {group}: {err})"
    return None


class SslSide:
    """An ssl.SSLObject client and server over ssl.MemoryBIO."""

    name = "ssl"

    def __init__(self, pki: Pki, scenario: Scenario = HANDSHAKES[0]) -> None:
        self.scenario = sc = scenario
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED
        cctx.load_verify_locations(cafile=pki.ca_file)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(pki.cert_file, pki.key_file)
        if sc.group == GROUP:
            # the server's only group (OpenSSL 3: SSL_CTX_set1_groups), so x25519 is certain
            sctx.set_ecdh_curve("X25519")
        else:  # only where ssl_group_problem() found no problem
            for ctx in (cctx, sctx):
                ctx.set_groups(sc.group)
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
        if self.scenario.group == GROUP:
            group = f"{GROUP} (the ssl server's only group)"
        else:  # ssl_group_problem() made sure ssl can report it
            group = client.group()
            if group != server.group():
                raise BenchError(f"ssl client and server disagree on the group: {group} / "
                                 f"{server.group()}")
        return {"version": client.version(), "cipher_suite": client.cipher()[0],
                "group": group, "signature_scheme": None, "resumed": client.session_reused}

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
def _spread(tallies: dict[str, Tally]) -> dict:
    return {name: {"min": min(t.slices), "max": max(t.slices), "slices": len(t.slices)}
            for name, t in tallies.items()}


def _row(metric: str, unit: str, tallies: dict[str, Tally], ssl_note: str | None = None,
         **extra) -> dict:
    """A result row; without an ``ssl`` tally the ssl rate, the ratio and the status are
    null / "n/a" and ``ssl_note`` says why."""
    ours, theirs = tallies["tlslab"], tallies.get("ssl")
    row = {"metric": metric, "unit": unit, "tlslab": ours.rate,
           "ssl": theirs.rate if theirs else None, "ratio": None, "target": TARGET,
           "status": "n/a", "spread": _spread({k: v for k, v in tallies.items() if k != "floor"})}
    if theirs:
        row["ratio"] = ratio = ours.rate / theirs.rate if theirs.rate else float("nan")
        row["status"] = "PASS" if ratio >= TARGET else "BELOW"
    else:
        row["ssl_note"] = ssl_note
    return {**row, **extra}


def _floor_row(tallies: dict[str, Tally], found: handshake_floor.Census) -> dict:
    floor = tallies["floor"].rate
    theirs = tallies.get("ssl")
    return {"metric": "crypto floor (cryptography calls alone)", "unit": "handshakes/s",
            "rate": floor, "tlslab_over_floor": tallies["tlslab"].rate / floor,
            "ssl_over_floor": theirs.rate / floor if theirs else None,
            "spread": _spread({"floor": tallies["floor"]}),
            "calls_by_kind": handshake_floor.summary(found.calls), **found.as_json()}


def _floor_inputs(pki: Pki, neg: dict) -> handshake_floor.FloorInputs:
    from cryptography.hazmat.primitives.serialization import Encoding
    return handshake_floor.FloorInputs(
        key=pki.key, scheme=neg["signature_scheme"],
        chain_ders=[c.public_bytes(Encoding.DER) for c in pki.chain], ca_cert=pki.ca_cert,
        server_name=SERVER_NAME)


#: what an idle connection holds on to, per stack and part: picks from what handshake() returns
_KEEP = {
    "tlslab": {"client": lambda r: (r[0],), "server": lambda r: (r[1],), "pair": lambda r: r},
    # ssl: the SSLObject and its two MemoryBIOs (an application keeps those, as a socket)
    "ssl": {"client": lambda r: (r[0], r[2][0], r[2][1]),
            "server": lambda r: (r[1], r[2][2], r[2][3]), "pair": lambda r: r},
}


def memory_rows(pki: Pki, n: int, progress: Callable[[str], None]) -> list[dict]:
    """Bytes of RSS per idle TLS 1.3 connection (ECDSA P-256, after a full handshake), for
    the client, the server and a pair of each stack, each in its own forked child."""
    sc = HANDSHAKES[0]
    factories = {"tlslab": lambda: TlslabSide(pki, sc).handshake,
                 "ssl": lambda: SslSide(pki, sc).handshake}
    got: dict[str, dict[str, dict]] = {"tlslab": {}, "ssl": {}}
    for part in ("client", "server", "pair"):
        progress(f"memory per idle connection, {part}, {n:,} connections ...")
        for stack in ("tlslab", "ssl"):
            try:
                got[stack][part] = handshake_memory.measure(factories[stack], _KEEP[stack][part], n)
            except RuntimeError as err:
                raise BenchError(f"memory, {stack} {part}: {err}") from None
    rows = []
    for part in ("client", "server", "pair"):
        ours, theirs = (got[s][part]["bytes_per_connection"] for s in ("tlslab", "ssl"))
        rows.append({
            "key": f"memory_idle_{part}",
            "metric": f"memory per idle connection, {part}" + (" (client + server)" if part == "pair" else ""),
            "unit": "bytes/connection", "tlslab": ours, "ssl": theirs,
            "ratio": ours / theirs if theirs > 0 else None, "target": None, "status": "info",
            "lower_is_better": True, "connections": n,
            "method": f"RSS growth in a forked child per stack and part ({sc.name}, TLS 1.3)",
            "rss": {s: {k: got[s][part][k] for k in ("rss_before", "rss_after")} for s in got},
            "malloc_trim": got["tlslab"][part]["malloc_trim"]})
    return rows


def run_all(seconds: float, warmup: float, progress: Callable[[str], None],
            idle_connections: int = IDLE_CONNECTIONS) -> dict:
    rows = []
    negotiated = {}
    notes = []  # rows left out, and why

    def skip(msg: str) -> None:
        notes.append(msg)
        progress(msg)

    pkis = {kt: make_pki(kt, _TMPDIR.name) for kt in CERT_TYPES}
    # memory first: the forked children start from a parent that has run nothing yet
    memory = []
    if idle_connections > 0:
        why_not = handshake_memory.available()
        if why_not:
            skip(f"memory per idle connection: left out, it {why_not}")
        else:
            memory = memory_rows(pkis["ecdsa-p256"], idle_connections, progress)
    for sc in HANDSHAKES:
        if sc.group == HYBRID and not HAVE_MLKEM:
            skip(f"{sc.metric}: left out, this cryptography build has no ML-KEM")
            continue
        ssl_note = ssl_group_problem(sc.group)
        tls = TlslabSide(pkis[sc.cert], sc)
        ossl = SslSide(pkis[sc.cert], sc) if ssl_note is None else None
        negotiated[sc.name] = {"tlslab": tls.describe(),
                               "ssl": ossl.describe() if ossl else {"unsupported": ssl_note}}
        _check_negotiated(sc, negotiated[sc.name])
        progress(f"{sc.metric} ...")

        def tls_step(side=tls) -> int:
            side.handshake()
            return 1

        def ssl_step(side=ossl) -> int:
            side.handshake()
            return 1

        steps = {"tlslab": tls_step}
        if ossl:
            steps["ssl"] = ssl_step
        found = None
        if sc.floor:
            found = handshake_floor.census(tls.handshake)
            try:
                steps["floor"] = handshake_floor.floor_step(
                    found, _floor_inputs(pkis[sc.cert], negotiated[sc.name]["tlslab"]))
            except (RuntimeError, ValueError) as err:
                raise BenchError(f"{sc.name}: the crypto floor cannot replay this handshake: {err}") from None
        tallies = interleaved(steps, seconds, warmup)
        extra = {"ssl_session_getter_us": ossl.session_getter_us()} if sc.resume else {}
        if found is not None:
            extra["crypto_floor"] = _floor_row(tallies, found)
        rows.append(_row(sc.metric, "handshakes/s", tallies, ssl_note=ssl_note, key=sc.key, **extra))
    rows += memory

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
        "notes": notes,
    }


def _check_negotiated(sc: Scenario, neg: dict) -> None:
    """Stop unless both sides negotiated the scenario's version, suite, group and resumption."""
    want = {"tlslab": (f"TLS {sc.version}", sc.suite), "ssl": (f"TLSv{sc.version}", sc.ssl_cipher)}
    for side, info in neg.items():
        if "unsupported" in info:
            continue
        version, suite = want[side]
        if info["cipher_suite"] != suite:
            hint = (" (ssl was imported before the OpenSSL configuration could be set)"
                    if side == "ssl" and _SSL_IMPORTED_EARLY else "")
            raise BenchError(f"{sc.name}: {side} negotiated {info['cipher_suite']}, not {suite}{hint}")
        if info["version"] != version:
            raise BenchError(f"{sc.name}: {side} negotiated {info['version']}, not {version}")
        if info["resumed"] != sc.resume:
            raise BenchError(f"{sc.name}: {side} resumed={info['resumed']}, expected {sc.resume}")
    if neg["tlslab"]["group"] != sc.group:
        raise BenchError(f"{sc.name}: tlslab negotiated group {neg['tlslab']['group']}, not {sc.group}")
    ssl_group = neg["ssl"].get("group")
    if sc.group != GROUP and ssl_group is not None and ssl_group.lower() != sc.group.lower():
        raise BenchError(f"{sc.name}: ssl negotiated group {ssl_group}, not {sc.group}")


def _cryptography_openssl() -> str:
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
        return backend.openssl_version_text()
    except Exception:  # pragma: no cover - depends on the cryptography build
        return "?"


# -- output ---------------------------------------------------------------------------------
def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "bytes/connection":
        return f"{value / 1024:,.1f} KiB"
    return f"{value:,.0f}" if unit == "handshakes/s" else f"{value:,.1f}"


def table_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(metric, tlslab, ssl, ratio, style) per table line; the crypto floor goes on its own
    line under its handshake row, with its rate in the tlslab column (it is made of
    tlslab's calls) and both stacks' fraction of it in the ratio column."""
    lines = []
    for r in report["results"].values():
        unit = r["unit"]
        ssl_cell = _fmt(r["ssl"], unit) if r["ssl"] is not None else (r.get("ssl_note") or "n/a")
        if r["ratio"] is None:
            ratio, style = "—", ""
        elif r["status"] == "info":
            ratio, style = f"{r['ratio']:.2f}x (lower is better)", ""
        else:
            ratio, style = f"{r['ratio']:.2f}x {r['status']}", "green" if r["status"] == "PASS" else "red"
        lines.append((r["metric"], _fmt(r["tlslab"], unit), ssl_cell, ratio, style))
        floor = r.get("crypto_floor")
        if floor:
            vs = f"tlslab/floor {floor['tlslab_over_floor']:.2f}x"
            if floor["ssl_over_floor"] is not None:
                vs += f", ssl/floor {floor['ssl_over_floor']:.2f}x"
            lines.append(("  " + floor["metric"], _fmt(floor["rate"], floor["unit"]), "", vs, "floor"))
    return lines


def _footer(report: dict) -> list[str]:
    env = report["environment"]
    neg = "; ".join(f"{kt}: {v['tlslab']['cipher_suite']}, {v['tlslab']['group']}, "
                    f"{v['tlslab']['signature_scheme']}" for kt, v in report["negotiated"].items())
    lines = [f"tlslab negotiated: {neg}; bulk: TLS 1.3, {SUITE}, {GROUP}"]
    memory = report["results"].get("memory_idle_client")
    if memory:
        lines.append(f"memory: RSS growth per kept connection, {memory['connections']:,} connections "
                     f"after a full TLS 1.3 handshake (ECDSA P-256), each stack and part in its own "
                     f"forked child")
    lines.append("crypto floor: the cryptography/hashlib calls counted in one real tlslab handshake "
                 "(both sides), replayed alone; --json lists them")
    lines += report.get("notes", [])
    lines.append(f"Python {env['python']}, ssl with {env['ssl_openssl']}, cryptography "
                 f"{env['cryptography']} ({env['cryptography_openssl']}), {env['cpus']} CPUs")
    return lines


def print_table(report: dict) -> None:
    title = (f"tlslab vs Python ssl, in memory, {report['seconds_per_side']:g} s per side")
    lines = table_rows(report)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for metric, ours, theirs, ratio, _ in lines:
            print(f"  {metric:<52} {ours:>12} {theirs:>12}  {ratio}")
        for line in _footer(report):
            print(f"  {line}")
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("tlslab", justify="right")
    table.add_column("ssl", justify="right")
    table.add_column(f"ratio (≥ {TARGET})", justify="right")
    for metric, ours, theirs, ratio, style in lines:
        if style in ("green", "red"):
            number, status = ratio.rsplit(" ", 1)
            ratio = f"{number} [{style}]{status}[/{style}]"
        table.add_row(metric, ours, theirs, ratio, style="dim" if style == "floor" else None)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: no need to squeeze into 80 columns
        wide = console.options.update(max_width=1000)
        console = Console(width=max(console.width, console.measure(table, options=wide).maximum))
    console.print(table)
    for line in _footer(report):
        console.print(f"[dim]{line}[/dim]", highlight=False)


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
        if sc.group == HYBRID and not HAVE_MLKEM:
            raise BenchError(f"this cryptography build has no ML-KEM, so tlslab has no {HYBRID}")
        side = TlslabSide(make_pki(sc.cert, _TMPDIR.name), sc)
        if side.describe()["group"] != sc.group:
            raise BenchError(f"tlslab did not negotiate {sc.group}")

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
    parser.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS, metavar="N",
                        help="connections kept per memory measurement (default "
                             f"{IDLE_CONNECTIONS}; 0 skips the memory rows)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.idle_connections < 0:
        parser.error("--seconds must be > 0, --warmup and --idle-connections >= 0")
    try:
        if args.profile:
            profile(args.profile, args.seconds, args.top)
            return 0

        def progress(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        report = run_all(args.seconds, args.warmup, progress if not args.json else (lambda m: None),
                         args.idle_connections)
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
