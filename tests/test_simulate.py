"""``tlslab simulate``: every profile through the handshake and its own verifier."""
from __future__ import annotations

import asyncio
import json
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import run_bounded
from test_diagnose import raw_listener, _http, tlslab_server
from tlslab.diagnose import Target
from tlslab.diagnose.simulate import simulate
from tlslab.lab.pki import make_pki
from tlslab.profiles import load_profile, load_profile_file

KEYS = {"profile", "client", "connects", "version", "cipher_suite", "group", "signature_scheme",
        "alpn", "causes"}


@pytest.fixture(scope="module")
def pki():
    return make_pki(names=("localhost", "127.0.0.1"), key_type="rsa2048")


def run(port, trust, names, name="localhost"):
    profiles = [load_profile_file(n) if str(n).endswith(".toml") else load_profile(n) for n in names]
    return asyncio.run(simulate(Target("127.0.0.1", port, name, list(trust)), profiles)).to_json()


def by_profile(doc):
    return {r["profile"]: r for r in doc["results"]}


BASIC = ["default", "browser", "tls12-only", "no-sni", "alpn-http"]


def test_healthy_server_everyone_connects(pki):
    cert = pki.server("ok")
    with tlslab_server(cert) as port:
        doc = run(port, cert.trust, BASIC)
    for r in doc["results"]:
        assert KEYS <= set(r)
        assert r["connects"], r
        assert r["version"] and r["cipher_suite"] and r["causes"] == []
    assert by_profile(doc)["tls12-only"]["version"] == "TLS 1.2"
    assert by_profile(doc)["browser"]["alpn"] is None  # the server speaks no ALPN


def test_dhe_only_server_fails_the_browser_only(pki):
    cert = pki.server("ok")
    with tlslab_server(cert, versions=["TLS 1.2"],
                       cipher_suites=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]) as port:
        doc = run(port, cert.trust, BASIC)
    rows = by_profile(doc)
    assert not rows["browser"]["connects"]
    assert [c["code"] for c in rows["browser"]["causes"]] == ["no-common-cipher"]
    assert all(rows[p]["connects"] for p in BASIC if p != "browser")


def test_verification_is_followed_through_for_every_client(pki):
    """The handshake itself succeeds for everyone; each client's own verifier refuses."""
    cert = pki.server("expired")
    with tlslab_server(cert) as port:
        doc = run(port, cert.trust, BASIC)
    for r in doc["results"]:
        assert not r["connects"]
        assert [c["code"] for c in r["causes"]] == ["expired"]


def test_recorded_client_hello_is_sent_byte_for_byte(pki, peers_dir, tmp_path):
    """A profile carrying a real client's bytes (curl 7.88 here) connects with them."""
    from importlib import resources
    hello = (peers_dir / "clienthellos" / "curl_default.bin").read_bytes()[5:]
    text = (resources.files("tlslab.profiles") / "data" / "default.toml").read_text()
    text = text.replace('name = "default"', 'name = "curl-test"').replace(
        "[offer]\n", f'[offer]\nclient_hello = "{hello.hex()}"\n')
    path = tmp_path / "curl-test.toml"
    path.write_text(text)
    cert = pki.server("ok")
    with tlslab_server(cert) as port:
        doc = run(port, cert.trust, [str(path)])
    r = doc["results"][0]
    assert r["recorded_client_hello"] and r["connects"], r


def test_non_tls_port_every_profile_says_not_tls():
    with raw_listener(_http) as port:
        doc = run(port, [], BASIC)
    for r in doc["results"]:
        assert not r["connects"]
        assert [c["code"] for c in r["causes"]] == ["not-tls"]


def _cli(*args):
    rc, out, err = run_bounded([sys.executable, "-m", "tlslab", "simulate", *args], timeout=60)
    return rc, out, err


def test_cli_json_and_exit_codes(pki, tmp_path):
    cert = pki.server("ok")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in cert.trust))
    with tlslab_server(cert, versions=["TLS 1.3"]) as port:
        rc, out, err = _cli(f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file", str(ca),
                            "--profile", "default", "--profile", "tls12-only", "--json")
        rc_ok, out_ok, _ = _cli(f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file", str(ca),
                                "--profile", "default")
    assert rc == 1, err
    doc = json.loads(out)
    assert set(doc) >= {"target", "results"}
    rows = by_profile(doc)
    assert rows["default"]["connects"] and not rows["tls12-only"]["connects"]
    assert rows["tls12-only"]["causes"][0]["code"] == "protocol-version-mismatch"
    assert rc_ok == 0 and "default" in out_ok


@pytest.mark.parametrize("args,needle", [
    (["localhost:4433", "--profile", "jav-17"], "unknown profile"),
    (["localhost:4433", "--profile", "default", "--all"], "exclude"),
    (["localhost:4433", "--timeout", "soon"], "--timeout"),
    ([], "missing HOST"),
])
def test_cli_bad_input(args, needle):
    rc, out, err = _cli(*args, "--json")
    assert rc == 2
    assert needle in json.loads(out)["error"]["message"]
    assert "Traceback" not in err


def test_cli_list():
    rc, out, _ = _cli("--list", "--json")
    assert rc == 0
    names = [p["name"] for p in json.loads(out)["profiles"]]
    assert set(BASIC) <= set(names)


def test_dh_group_larger_than_java7_can_use(pki):
    """Java 7 cannot use DHE groups above 1024 bits; a 2048-bit group fails it, not Java 8."""
    cert = pki.server("ok")
    with tlslab_server(cert, versions=["TLS 1.2", "TLS 1.1", "TLS 1.0"],
                       cipher_suites=["TLS_DHE_RSA_WITH_AES_128_CBC_SHA"]) as port:
        doc = run(port, cert.trust, ["java-7u80", "java-8u292", "default"])
    rows = by_profile(doc)
    assert [c["code"] for c in rows["java-7u80"]["causes"]] == ["no-common-group"], rows["java-7u80"]
    assert rows["java-7u80"]["causes"][0]["evidence"]["dh_bits"] == 2048
    assert rows["default"]["connects"] and rows["java-8u292"]["connects"]
