"""``tlslab diagnose`` on the command line: output, exit codes, bad input."""
from __future__ import annotations

import json
import socket
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import run_bounded
from test_diagnose import tlslab_server
from tlslab.lab.pki import make_pki


class _Result:
    def __init__(self, rc, out, err):
        self.returncode, self.stdout, self.stderr = rc, out, err


def tlslab(*args: str, timeout: float = 30) -> _Result:
    return _Result(*run_bounded([sys.executable, "-m", "tlslab", "diagnose", *args], timeout=timeout))


@pytest.fixture(scope="module")
def pki():
    return make_pki(names=("localhost", "127.0.0.1", "::1"))


@pytest.fixture
def ca_file(pki, tmp_path):
    path = tmp_path / "ca.pem"
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in pki.trust))
    return str(path)


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and "tlslab." not in text.replace("tlslab.lab", ""), text


def test_ok_exit_0_and_human_view(pki, ca_file):
    with tlslab_server(pki.server("ok")) as port:
        r = tlslab(f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file", ca_file)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "Probes:" in r.stdout
    _no_traceback(r.stdout + r.stderr)


def test_cause_exit_1_json_shape(pki, ca_file):
    with tlslab_server(pki.server("expired")) as port:
        r = tlslab(f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file", ca_file, "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert [c["code"] for c in doc["causes"]] == ["expired"]
    cause = doc["causes"][0]
    assert set(cause) >= {"code", "summary", "evidence", "fixes"}
    assert isinstance(doc["handshakes"], list) and doc["handshakes"]


def test_human_view_has_panel_evidence_and_fixes(pki, ca_file):
    with tlslab_server(pki.server("wrong-host")) as port:
        r = tlslab(f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file", ca_file,
                   "--stack", "curl")
    assert r.returncode == 1
    out = r.stdout
    assert "hostname-mismatch" in out and "Evidence" in out and "Fixes" in out
    assert "client · curl" in out
    assert "client · java" not in out  # --stack filters
    _no_traceback(out + r.stderr)


def test_list_profiles():
    r = tlslab("--list-profiles", "--json")
    assert r.returncode == 0
    names = [p["name"] for p in json.loads(r.stdout)["profiles"]]
    assert {"default", "browser", "tls12-only", "no-sni", "alpn-http"} <= set(names)


@pytest.mark.parametrize("args,needle", [
    (["localhost:4433", "--profile", "browsr"], "browser"),
    (["localhost:4433", "--ca-file", "/nonexistent/ca.pem"], "no such file"),
    (["localhost:99999"], "out of range"),
    (["bad host name!:443"], "host name"),
    (["localhost:4433", "--timeout", "0"], "--timeout"),
    (["localhost:4433", "--stack", "cobol"], "--stack"),
    ([], "missing HOST"),
])
def test_bad_input_exit_2_with_json(args, needle):
    r = tlslab(*args, "--json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "bad-input"
    assert needle in doc["error"]["message"]
    assert r.stderr.startswith("error: ")
    _no_traceback(r.stderr)


def test_non_pem_ca_file_is_bad_input(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("this is not a certificate\n")
    r = tlslab("localhost:4433", "--ca-file", str(bad))
    assert r.returncode == 2
    assert "ca.pem" in r.stderr
    _no_traceback(r.stderr)


def test_refused_is_a_cause_exit_1():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = tlslab(f"127.0.0.1:{port}", "--json")
    assert r.returncode == 1
    assert [c["code"] for c in json.loads(r.stdout)["causes"]] == ["connection-refused"]


def test_ip_target_without_servername_checks_ip_san(pki, ca_file):
    with tlslab_server(pki.server("ok")) as port:
        r = tlslab(f"127.0.0.1:{port}", "--ca-file", ca_file, "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["server_name"] == "127.0.0.1"


def test_help_has_examples():
    r = tlslab("--help")
    assert r.returncode == 0
    assert "Examples" in r.stdout and "--profile" in r.stdout and "Exit codes" in r.stdout


@pytest.mark.parametrize("argv", [["diagnose", "localhost", "--bogus", "--json"],
                                  ["simulate", "localhost", "--json", "--timeout"],
                                  ["connect", "--no-such-option", "--json"]])
def test_parser_errors_are_bad_input_with_json(argv):
    rc, out, err = run_bounded([sys.executable, "-m", "tlslab", *argv], timeout=30)
    assert rc == 2, (out, err)
    doc = json.loads(out)
    assert doc["ok"] is False and doc["error"]["code"] == "bad-input" and doc["error"]["message"]
    assert "Traceback" not in err
