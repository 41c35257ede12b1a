"""`tlslab scan` as a user runs it: the JSON contract, the exit codes, --html, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

PY = sys.executable
KEYS = {"target", "protocols", "cipher_suites", "groups", "signature_algorithms", "certificates",
        "session_resumption", "early_data", "ocsp_stapling", "alpn", "secure_renegotiation",
        "client_renegotiation", "fallback_scsv", "extended_master_secret", "encrypt_then_mac",
        "compression", "vulnerabilities", "findings", "simulation", "duration_s", "mozilla"}


def _scan(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    r = subprocess.run([PY, "-m", "tlslab", "scan", *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def test_json_document_of_a_real_server(openssl_server, certs_dir, tmp_path):
    port = openssl_server("-serverpref", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA")
    html = tmp_path / "report.html"
    code, out, err = _scan(f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file",
                           str(certs_dir / "ca.pem"), "--json", "--html", str(html),
                           "--against", "intermediate")
    assert code == 0, err
    doc = json.loads(out)
    assert KEYS <= set(doc)
    tls12 = doc["cipher_suites"]["TLS 1.2"]
    assert tls12["accepted"] == ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                 "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"]
    assert tls12["server_order"] is True and tls12["order"] == tls12["accepted"]
    assert doc["certificates"] and doc["certificates"][0]["trusted"] is True
    assert doc["mozilla"]["against"] == "intermediate"
    assert all(isinstance(v, (bool, type(None))) for v in doc["vulnerabilities"].values())
    page = html.read_text()
    assert "127.0.0.1" in page and "<script" not in page.lower()


def test_human_report_has_its_sections(openssl_server):
    port = openssl_server("-no_tls1_3")
    code, out, err = _scan(f"127.0.0.1:{port}", "--no-active", "--stack", "nginx")
    assert code == 0, err
    for section in ("Findings", "Protocols", "Cipher suites", "Certificates", "Vulnerabilities",
                    "Mozilla"):
        assert section in out, section
    assert "Traceback" not in out + err and "apache" not in out.split("Protocols")[0]


@pytest.mark.parametrize("args,code,words", [
    (["127.0.0.1:1"], 1, "connection refused"),
    (["bad host"], 2, "not a target"),
    (["127.0.0.1:443", "--against", "strict"], 2, "unknown Mozilla configuration"),
    (["127.0.0.1:443", "--starttls", "gopher"], 2, "--starttls"),
    (["127.0.0.1:443", "--timeout", "0"], 2, "--timeout"),
    (["127.0.0.1:443", "--stack", "tomcat9"], 2, "--stack"),
    ([], 2, "missing HOST"),
])
def test_failures_and_bad_input_in_json(args, code, words):
    got, out, err = _scan(*args, "--json")
    assert got == code, (out, err)
    doc = json.loads(out)
    message = doc["error"]["message"] if isinstance(doc["error"], dict) else doc["error"]
    assert words in message
    assert "Traceback" not in out + err
