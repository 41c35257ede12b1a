"""benchmarks/handshake.py and its helpers: the crypto floor census and replay
(handshake_floor.py), the forked memory measurement (handshake_memory.py), and one short
run of the whole benchmark with --json.

handshake.py itself runs only as a subprocess: importing it would set OPENSSL_CONF (its
TLS 1.3 cipher suite pin) in this process and every process the other tests start.
"""
from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.groups import HAVE_MLKEM
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain, write_pem

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import handshake_floor  # noqa: E402
import handshake_memory  # noqa: E402


def _pair(tmp_path, key_type="ecdsa-p256", version="1.3", group="x25519"):
    """(handshake function, key, chain, CA) for a tlslab client and server in memory."""
    chain, key, ca = make_throwaway_chain(names=["localhost"], key_type=key_type)
    cert_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    write_pem(chain, key, str(cert_file), str(key_file))
    from cryptography.hazmat.primitives.serialization import Encoding
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
    ccfg = ClientConfig(server_name="localhost", ca_file=str(ca_file), versions=[version],
                        groups=[group], session_store=None)
    scfg = ServerConfig.from_files(str(cert_file), str(key_file), versions=[version],
                                   groups=[group], tickets=0)

    def handshake():
        client, server = ClientConnection(ccfg), ServerConnection(scfg)
        client.start_handshake()
        for _ in range(8):
            server.receive_data(client.data_to_send())
            data = server.data_to_send()
            if not data:
                break
            client.receive_data(data)
        assert client.handshake_complete and server.handshake_complete
        return client, server

    return handshake, key, chain, ca


def _inputs(key, chain, ca, scheme):
    from cryptography.hazmat.primitives.serialization import Encoding
    return handshake_floor.FloorInputs(key=key, scheme=scheme,
                                       chain_ders=[c.public_bytes(Encoding.DER) for c in chain],
                                       ca_cert=ca, server_name="localhost")


def test_census_counts_a_tls13_handshake(tmp_path):
    handshake, key, chain, ca = _pair(tmp_path)
    client, _ = handshake()  # warm: caches, the verified-chain memo
    found = handshake_floor.census(handshake)
    calls = found.calls
    # both sides: one x25519 key pair each, one exchange each
    assert calls["x25519.generate_key"] == 2 and calls["X25519PrivateKey.exchange"] == 2
    assert calls["ECPrivateKey.sign"] == 1 and calls["ECPublicKey.verify"] == 1
    assert calls["_rust.x509.load_der_x509_certificate"] == len(chain)
    assert calls["ServerVerifier.verify"] == 1
    # the key schedule, both sides: one C HMAC object and its digest per HMAC
    assert calls["_hashlib.hmac_new"] >= 20 and calls["HMAC.digest"] == calls["_hashlib.hmac_new"]
    assert calls["AESGCM()"] == 8                 # hs + app, read + write, both sides
    assert sum(found.sizes["HASH.update"]) > 500  # the transcript, with the certificate
    assert found.sizes["ECPrivateKey.sign"] == [130]  # RFC 8446 §4.4.3 content, SHA-256
    assert found.unmodelled == {}
    step = handshake_floor.floor_step(found, _inputs(key, chain, ca,
                                                     client.negotiated["signature_scheme"]))
    assert step() == 1
    assert handshake_floor.summary(calls)["HMAC"] == calls["_hashlib.hmac_new"] + calls["HMAC.digest"]


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa2048"])
def test_census_and_floor_tls12(tmp_path, key_type):
    handshake, key, chain, ca = _pair(tmp_path, key_type=key_type, version="1.2")
    client, _ = handshake()
    found = handshake_floor.census(handshake)
    assert found.calls["x25519.generate_key"] == 2
    assert found.calls["_hashlib.hmac_new"] > 0 and found.calls["_hashlib.openssl_sha256"] > 0
    assert found.unmodelled == {}
    step = handshake_floor.floor_step(found, _inputs(key, chain, ca,
                                                     client.negotiated["signature_scheme"]))
    assert step() == 1


@pytest.mark.skipif(not HAVE_MLKEM, reason="this cryptography build has no ML-KEM")
def test_census_and_floor_hybrid(tmp_path):
    handshake, key, chain, ca = _pair(tmp_path, group="X25519MLKEM768")
    client, _ = handshake()
    assert client.negotiated["group"] == "X25519MLKEM768"
    found = handshake_floor.census(handshake)
    for call in ("mlkem.generate_mlkem768_key", "MLKEM768PublicKey.encapsulate",
                 "MLKEM768PrivateKey.decapsulate"):
        assert found.calls[call] == 1
    assert found.unmodelled == {}
    step = handshake_floor.floor_step(found, _inputs(key, chain, ca,
                                                     client.negotiated["signature_scheme"]))
    assert step() == 1


@pytest.mark.skipif(handshake_memory.available() is not None, reason="needs Linux /proc and fork")
def test_memory_measures_what_is_kept():
    size = 64 * 1024

    def make_side():
        return lambda: (bytearray(size), b"dropped" * 10)

    report = handshake_memory.measure(make_side, lambda r: (r[0],), 200)
    assert size <= report["bytes_per_connection"] < size * 1.2


@pytest.mark.skipif(handshake_memory.available() is not None, reason="needs Linux /proc and fork")
def test_memory_child_failure_is_reported():
    def make_side():
        raise ValueError("no side today")

    with pytest.raises(RuntimeError, match="no side today"):
        handshake_memory.measure(make_side, lambda r: r, 10)


@pytest.mark.slow
def test_handshake_benchmark_json_run():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "handshake.py"), "--json", "--seconds", "0.05",
         "--warmup", "0", "--idle-connections", "60"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    results = report["results"]
    for key in ("handshake_ecdsa_p256", "handshake_rsa2048", "handshake_tls12_ecdsa_p256",
                "handshake_tls12_rsa2048"):
        floor = results[key]["crypto_floor"]
        assert floor["rate"] > 0 and floor["unmodelled_calls"] == {}
        assert floor["ssl_over_floor"] > 0
    assert "crypto_floor" not in results["handshake_resumed_ecdsa_p256"]
    for part in ("client", "server", "pair"):
        row = results[f"memory_idle_{part}"]
        assert row["tlslab"] > 0 and row["ssl"] > 0 and row["unit"] == "bytes/connection"
    if HAVE_MLKEM:
        hybrid = results["handshake_x25519mlkem768"]
        assert report["negotiated"]["x25519mlkem768"]["tlslab"]["group"] == "X25519MLKEM768"
        assert hybrid["tlslab"] > 0
        if ssl.OPENSSL_VERSION_INFO[:2] < (3, 5):  # never a made-up ssl rate or ratio
            assert hybrid["ssl"] is None and hybrid["ratio"] is None
            assert hybrid["status"] == "n/a"
            assert "has no X25519MLKEM768" in hybrid["ssl_note"]
            assert hybrid["crypto_floor"]["ssl_over_floor"] is None
    else:
        assert any("ML-KEM" in note for note in report["notes"])


def _is_git_checkout() -> bool:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _is_git_checkout(), reason="ab.py compares git revisions")
def test_ab_compares_a_revision_with_the_working_tree():
    """benchmarks/ab.py: one short same-process comparison, and a bad revision is exit 2."""
    import re
    ab = str(ROOT / "benchmarks" / "ab.py")
    run = subprocess.run([sys.executable, ab, "--base", "HEAD", "--seconds", "0.8"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    m = re.search(r"speed-up (\d+\.\d{3})x \(quartiles (\d+\.\d{3})-(\d+\.\d{3}), (\d+) rounds\)", run.stdout)
    assert m, run.stdout
    low, med, high = float(m.group(2)), float(m.group(1)), float(m.group(3))
    assert 0.3 < low <= med <= high < 3.0  # the same code on both sides: near 1
    bad = subprocess.run([sys.executable, ab, "--base", "no-such-revision"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no-such-revision" in bad.stderr
