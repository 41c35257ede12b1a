"""``tlslab decode`` against tshark: the same handshake messages in the same order per
connection and direction, and the same decrypted application data.

Three sources of captures, each with its NSS key log:

1. every capture in ``../shared/peers/captures`` (real peers recorded on loopback);
2. captures of engine pairs written by :mod:`tlslab.capture.writer` (every suite and
   feature: HelloRetryRequest, resumption, 0-RTT, KeyUpdate, client certificates, TLS 1.2
   AEAD / CBC with and without encrypt-then-MAC / RSA key exchange, STARTTLS);
3. live loopback traffic captured by ``dumpcap -i lo`` while it happens (bounded in time):
   ``tlslab connect`` against ``tlslab serve``, ``openssl s_client`` against
   ``openssl s_server`` (TLS 1.3 and 1.2), and each of them against the other.  Skipped,
   with the reason, where capturing is not permitted.

tshark's view: ``-T fields -e tcp.stream -e tcp.srcport -e tls.handshake.type`` for the
messages, ``-z follow,tls,raw,N`` for the decrypted application data of stream N.  The
totals compared are printed at the end (``pytest -s``).
"""
from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import _kill_group, free_port, require_tool, run_bounded, wait_for_port
from test_decode import SHARED_CAPTURES, run_case, starttls_capture

from tlslab.capture.decode import CaptureDecoder
from tlslab.capture.keylog import read_keylog

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]

#: what was compared, over the whole module (printed by the last test)
TOTALS: Counter = Counter()


# --------------------------------------------------------------------------- the two views

def tshark_view(tshark: str, pcap: Path, keylog: Path | None, ports: set[int]) -> dict:
    """stream -> {"messages": [(srcport, type)], "data": {(srcport): bytes}} as tshark sees it."""
    opts = []
    if keylog is not None:
        opts += ["-o", f"tls.keylog_file:{keylog}"]
    for port in sorted(ports):
        opts += ["-d", f"tcp.port=={port},tls"]
    rc, out, err = run_bounded([tshark, "-n", "-r", str(pcap), *opts, "-Y", "tls", "-T", "fields",
                                "-e", "tcp.stream", "-e", "tcp.srcport",
                                "-e", "tls.handshake.type", "-E", "occurrence=a"], timeout=60)
    assert rc == 0, err
    view: dict = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        stream, port, types = int(parts[0]), int(parts[1]), parts[2]
        entry = view.setdefault(stream, {"messages": [], "data": {}})
        entry["messages"] += [(port, int(t)) for t in types.split(",") if t]
    for stream, entry in view.items():
        entry["data"] = follow_tls(tshark, pcap, opts, stream)
    return view


def follow_tls(tshark: str, pcap: Path, opts: list[str], stream: int) -> dict[int, bytes]:
    """Decrypted application data per source port (``-z follow,tls,raw``: lines from node 0
    start in column 0, lines from the other node with a tab)."""
    rc, out, err = run_bounded([tshark, "-n", "-r", str(pcap), *opts, "-q", "-z",
                                f"follow,tls,raw,{stream}"], timeout=60)
    assert rc == 0, err
    nodes: dict[int, int] = {}
    data: dict[int, bytearray] = {}
    for line in out.splitlines():
        m = re.match(r"Node (\d): (.*):(\d+)$", line)
        if m:
            node = int(m.group(1))
            nodes[node] = int(m.group(3)) or (-1 - node)   # ":0": tshark could not name it
            continue
        if not line.strip() or line.startswith("=") or ":" in line:
            continue
        node = 1 if line.startswith("\t") else 0
        port = nodes.get(node, -1 - node)
        data.setdefault(port, bytearray()).extend(bytes.fromhex(line.strip()))
    # a node tshark could not name (":0") holds the data of the port not named
    return {p: bytes(b) for p, b in data.items()}


def our_view(pcap: Path, keylog: Path | None) -> dict:
    kl = read_keylog(keylog) if keylog is not None else None
    view = {}
    for conn in CaptureDecoder(pcap, kl, max_data=1 << 30).connections():
        cport, sport = int(conn.client.rsplit(":", 1)[1]), int(conn.server.rsplit(":", 1)[1])
        port = {"client": cport, "server": sport}
        view[conn.index] = {
            "conn": conn, "ports": (cport, sport),
            "messages": [(port[m.direction], int(m.raw[0])) for m in conn.messages],
            "data": {port[d]: b"".join(a.data for a in conn.application_data if a.direction == d)
                     for d in ("client", "server")},
        }
    return view


def compare(tshark: str, pcap: Path, keylog: Path | None, what: str) -> None:
    ours = our_view(pcap, keylog)
    assert ours, f"{what}: no TLS connection decoded"
    ports = {p for v in ours.values() for p in v["ports"]}
    theirs = tshark_view(tshark, pcap, keylog, ports)
    for stream, mine in ours.items():
        other = theirs.get(stream, {"messages": [], "data": {}})
        assert mine["messages"] == other["messages"], (
            f"{what}, stream {stream}: handshake messages differ\n"
            f"  tlslab: {mine['messages']}\n  tshark: {other['messages']}")
        cport, sport = mine["ports"]
        tdata = dict(other["data"])
        # tshark could not name a node: its data belongs to the port it did not name
        for unknown in [p for p in tdata if p < 0]:
            named = {p for p in tdata if p >= 0}
            rest = [p for p in (cport, sport) if p not in named]
            if len(rest) == 1:
                tdata[rest[0]] = tdata.pop(unknown)
        for port in (cport, sport):
            assert mine["data"].get(port, b"") == tdata.get(port, b""), (
                f"{what}, stream {stream}: decrypted application data from port {port} differ "
                f"({len(mine['data'].get(port, b''))} bytes by tlslab, "
                f"{len(tdata.get(port, b''))} by tshark)")
        conn = mine["conn"]
        if keylog is not None:
            assert conn.decrypted, (what, stream, conn.problems)
        TOTALS["connections"] += 1
        TOTALS["messages"] += len(mine["messages"])
        TOTALS["application data bytes"] += sum(len(b) for b in mine["data"].values())
    TOTALS["captures"] += 1


@pytest.fixture(scope="module")
def tshark():
    return require_tool("tshark")


# --------------------------------------------------------------------------- 1. the shared captures

def _shared_names() -> list[str]:
    if not SHARED_CAPTURES.is_dir():
        return []
    return sorted(p.stem for p in SHARED_CAPTURES.glob("*.pcap"))


@pytest.mark.parametrize("name", _shared_names() or ["(none)"])
def test_shared_captures_match_tshark(tshark, name):
    if name == "(none)":
        pytest.skip(f"{SHARED_CAPTURES} is not here (the shared peer data)")
    pcap, keylog = SHARED_CAPTURES / f"{name}.pcap", SHARED_CAPTURES / f"{name}.keylog"
    compare(tshark, pcap, keylog if keylog.is_file() else None, name)
    compare(tshark, pcap, None, f"{name} without key log")


# --------------------------------------------------------------------------- 2. engine pairs

ENGINE_CASES = {
    "tls13-aes128": dict(ckw={"cipher_suites": ["TLS_AES_128_GCM_SHA256"]}),
    "tls13-chacha": dict(ckw={"cipher_suites": ["TLS_CHACHA20_POLY1305_SHA256"]},
                         skw={"cipher_suites": ["TLS_CHACHA20_POLY1305_SHA256"]}),
    "tls13-hrr": dict(skw={"cookie_hrr": True}),
    "tls13-resumption-keyupdate": dict(connections=2, key_update=True,
                                       ckw={"cipher_suites": ["TLS_AES_256_GCM_SHA384"]}),
    "tls13-0rtt": dict(connections=2, early_data=b"GET /early HTTP/1.0\r\n\r\n",
                       skw={"max_early_data_size": 4096}),
    "tls12-gcm": dict(ckw={"versions": ["1.2"]}, skw={"versions": ["1.2"]}),
    "tls12-chacha": dict(ckw={"versions": ["1.2"],
                              "cipher_suites": ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]},
                         skw={"versions": ["1.2"]}),
    "tls12-cbc-etm": dict(ckw={"versions": ["1.2"],
                               "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"]},
                          skw={"versions": ["1.2"]}),
    "tls12-cbc-mte": dict(ckw={"versions": ["1.2"], "no_etm": True,
                               "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"]},
                          skw={"versions": ["1.2"]}),
    "tls12-rsa-resumption": dict(connections=2, ckw={"versions": ["1.2"],
                                                     "cipher_suites": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]},
                                 skw={"versions": ["1.2"],
                                      "cipher_suites": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]}),
    "ipv6-small-segments": dict(client_addr="fd00::1", server_addr="fd00::2", mss=50),
}


@pytest.fixture(scope="module")
def pki():
    from tlslab.workbench.certgen import make_throwaway_chain
    chain, key, _ = make_throwaway_chain(key_type="rsa2048")
    return chain, key


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_engine_captures_match_tshark(tshark, tmp_path, pki, case):
    pcap, keylog, recs = run_case(tmp_path, pki, name=case, **ENGINE_CASES[case])
    if case == "tls12-rsa-resumption":
        # The engine logs no CLIENT_RANDOM line for a resumed TLS 1.2 session (OpenSSL and
        # NSS do: the resumed master secret under the new client random).  tlslab decode
        # finds it in its session cache (test_decode.py::test_tls12_resumption); tshark here
        # does not, so the line is added as the other stacks would write it.
        first = keylog.read_text().split()
        assert first[0] == "CLIENT_RANDOM"
        with open(keylog, "a") as f:
            for rec in recs[1:]:
                f.write(f"CLIENT_RANDOM {rec.client.client_random.hex()} {first[2]}\n")
    compare(tshark, pcap, keylog, case)


def test_smtp_starttls_matches_tshark(tshark, tmp_path, pki):
    """SMTP on port 25 (tshark follows the STARTTLS upgrade itself)."""
    pcap, keylog, _ = starttls_capture(tmp_path, pki, "smtp")
    compare(tshark, pcap, keylog, "smtp-starttls")


# --------------------------------------------------------------------------- 3. live loopback

class LiveCapture:
    """``dumpcap -i lo -f 'tcp port N' -w FILE`` for the duration of a ``with`` block."""

    def __init__(self, port: int, path: Path, timeout: float = 10.0) -> None:
        self.port, self.path, self.timeout = port, path, timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LiveCapture":
        dumpcap = shutil.which("dumpcap") or shutil.which("tshark")
        if dumpcap is None:
            pytest.skip("neither dumpcap nor tshark is installed (Debian package tshark)")
        self.proc = subprocess.Popen([dumpcap, "-i", "lo", "-f", f"tcp port {self.port}",
                                      "-w", str(self.path)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.monotonic() + self.timeout
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                seen += chunk
                if b"Capturing on" in seen:
                    time.sleep(1.0)   # dumpcap says so a little before packets are seen
                    return self
                if not chunk:
                    break
            if self.proc.poll() is not None:
                break
        _kill_group(self.proc, grace=1.0)
        text = seen.decode("utf-8", "replace").strip()
        if any(w in text.lower() for w in ("permission", "not permitted", "privileges",
                                           "don't have")):
            pytest.skip(f"packet capture on lo is not permitted here: {text}")
        pytest.fail(f"dumpcap did not start within {self.timeout:g} s: {text}", pytrace=False)

    def __exit__(self, *exc) -> None:
        time.sleep(0.5)   # the last packets reach the capture buffer
        try:
            os.killpg(self.proc.pid, signal.SIGINT)   # dumpcap finishes the file on SIGINT
            self.proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        _kill_group(self.proc, grace=1.0)
        if self.proc.stderr:
            self.proc.stderr.close()


def _server(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    f = open(log, "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)
    f.close()
    try:
        wait_for_port(port, proc=proc, timeout=15)
    except RuntimeError as e:
        _kill_group(proc)
        pytest.fail(f"{cmd[0]} did not start: {e}: {log.read_text(errors='replace')[-500:]}")
    return proc


def _tlslab() -> list[str]:
    import sys
    return [sys.executable, "-m", "tlslab"]


def _openssl_server(openssl: str, certs: dict, port: int, extra: list[str]) -> list[str]:
    return [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-www", "-cert", certs["leaf"],
            "-cert_chain", certs["intermediate"], "-key", certs["key"], "-naccept", "4", *extra]


@pytest.fixture(scope="module")
def live_certs(tmp_path_factory):
    from tlslab.lab.pki import make_pki
    d = tmp_path_factory.mktemp("live-certs")
    return make_pki(key_type="rsa2048").server("ok").write(d)


LIVE = ["tlslab-tlslab", "openssl-openssl-tls13", "openssl-openssl-tls12-cbc",
        "tlslab-openssl", "openssl-tlslab"]


@pytest.mark.parametrize("pairing", LIVE)
def test_live_loopback_matches_tshark(tshark, tmp_path, live_certs, pairing):
    openssl = require_tool("openssl") if "openssl" in pairing else None
    port = free_port()
    pcap, keylog = tmp_path / f"{pairing}.pcap", tmp_path / f"{pairing}.keylog"
    server_kind, client_kind = pairing.split("-")[:2]
    tls12 = "tls12" in pairing
    if server_kind == "tlslab":
        server_cmd = [*_tlslab(), "serve", "--port", str(port), "--cert", live_certs["chain"],
                      "--key", live_certs["key"]]
    else:
        extra = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"] if tls12 else ["-tls1_3"]
        server_cmd = _openssl_server(openssl, live_certs, port, extra)
    with LiveCapture(port, pcap):
        server = _server(server_cmd, port, tmp_path / "server.log")
        try:
            for i in range(2):   # a second connection: resumption where the client keeps tickets
                if client_kind == "tlslab":
                    cmd = [*_tlslab(), "connect", f"127.0.0.1:{port}", "--servername", "localhost",
                           "--ca-file", live_certs["ca"], "--keylog", str(keylog), "--http"]
                    if tls12:
                        cmd += ["--tls", "1.2"]
                    rc, out, err = run_bounded(cmd, timeout=30)
                    assert rc == 0, err
                else:
                    cmd = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                           "localhost", "-CAfile", live_certs["ca"], "-keylogfile", str(keylog),
                           "-ign_eof"]
                    cmd += ["-tls1_2"] if tls12 else []
                    rc, out, err = run_bounded(cmd, input="GET / HTTP/1.0\r\n\r\n", timeout=30)
                    assert rc == 0, err[-2000:]
        finally:
            _kill_group(server, grace=2.0)
    assert pcap.is_file() and pcap.stat().st_size > 24, "empty capture"
    assert keylog.is_file(), "the client wrote no key log"
    compare(tshark, pcap, keylog, pairing)
    # the probe that waited for the server's port is a connection too (without a hello)
    ours = [v for v in our_view(pcap, keylog).values() if v["messages"]]
    assert len(ours) == 2
    for v in ours:
        assert b"HTTP/1." in v["data"][v["ports"][1]]


# --------------------------------------------------------------------------- totals

def test_zz_totals():
    """Prints what was compared (run with ``-s``)."""
    print(f"\ntlslab decode vs tshark: {TOTALS['captures']} captures, {TOTALS['connections']} "
          f"connections, {TOTALS['messages']} handshake messages, "
          f"{TOTALS['application data bytes']} bytes of decrypted application data: identical")
