"""``connect/demo --html FILE``: the illustrated handshake as one self-contained page.

Every server here is in-process on 127.0.0.1 (the one ``tlslab serve`` uses).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import re
import sys
import threading

import pytest
from conftest import free_port, run_bounded
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

import tlslab
from tlslab.cli.main import app, http_handler
from tlslab.io.blocking import make_server
from tlslab.workbench.certgen import make_throwaway_chain
from tlslab.workbench.html import render_html

EVIL = "<script>alert(1)</script>"


def tlslab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tlslab", *args]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def _start(config):
    srv = make_server("127.0.0.1", 0, config, http_handler, log=lambda line: None,
                      handshake_timeout=5, io_timeout=5)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv, t


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chain, key, ca = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    ca_path = tmp_path_factory.mktemp("html") / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(Encoding.PEM))
    srv, t = _start(tlslab.ServerConfig(certificate_chain=chain, private_key=key,
                                        alpn_protocols=["http/1.1"]))
    yield srv.port, str(ca_path)
    srv.shutdown()
    srv.server_close()
    t.join(5)


@pytest.fixture(scope="module")
def evil_server():
    """A server whose (self-signed) certificate has an HTML/JS payload in its names."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, EVIL),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'a"b\'<i>&amp;')])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    srv, t = _start(tlslab.ServerConfig(certificate_chain=[cert], private_key=key))
    yield srv.port, cert.subject.rfc4514_string()
    srv.shutdown()
    srv.server_close()
    t.join(5)


def _spaceless(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _check_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    low = page.lower()
    for needle in ("<link", " src=", "href=\"http", "url(", "@import", "//cdn"):
        assert needle not in low, needle
    # the CSP names the hashes of the inline style and script: they must match
    # (otherwise a browser would refuse to apply them)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    for tag in ("style", "script"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"sha256-{digest}" in csp, tag
    assert page.count("<script") == 1


def _field_span(page: str, name: str) -> str:
    """The hex inside the first byte-view span for field ``name`` (a title starting with it)."""
    m = re.search(r'<span class="f [^"]*" data-f="[^"]+" title="' + re.escape(name)
                  + r'[ =\[][^"]*">([0-9a-f ]+)', page)
    assert m, f"no hex span for {name}"
    return m.group(1)


# --------------------------------------------------------------------------- success

def test_connect_html_messages_fields_and_no_secrets(served, tmp_path):
    port, ca = served
    out, keylog = tmp_path / "hs.html", tmp_path / "keys.log"
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                      "--servername", "localhost", "--alpn", "http/1.1",
                                      "--keylog", str(keylog), "--html", str(out), "--json",
                                      "--timeout", "5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # --json: stdout stays pure JSON ...
    assert f"written to {out}" in result.stderr  # ... and the file line goes to stderr
    page = out.read_text(encoding="utf-8")
    _check_self_contained(page)

    assert "handshake complete" in page and f"127.0.0.1:{port}" in page
    for label in ("TLS 1.3", doc["negotiated"]["cipher_suite"], doc["negotiated"]["group"],
                  "http/1.1"):
        assert label in page
    names = [m["name"] for m in doc["messages"]]
    assert {"ClientHello", "ServerHello", "EncryptedExtensions", "Certificate",
            "CertificateVerify", "Finished"} <= set(names)
    for name in names:
        assert f'<span class="name">{name}</span>' in page
    assert "client → server" in page and "server → client" in page
    assert "plaintext" in page and "encrypted: server_handshake_traffic_secret" in page
    assert "encrypted: client_handshake_traffic_secret" in page

    # ClientHello fields as hoverable hex spans, nested for extensions
    assert _field_span(page, "msg_type").strip() == "01"
    suites = _field_span(page, "cipher_suites")  # first bytes inside: the length prefix
    assert re.fullmatch(r"[0-9a-f]{2} [0-9a-f]{2} ", suites)
    assert 'title="cipher_suites[0] = TLS_AES_128_GCM_SHA256' in page
    assert 'title="extensions = server_name' in page
    assert 'title="host_name = &quot;localhost&quot;' in page
    assert 'title="extension_type = key_share' in page

    # certificate summary
    assert "CN=localhost" in page and "DNS:localhost" in page and "ECDSA P-256" in page

    # secrets: names yes, values never (not even with the spaces of the hex view removed)
    for secret in doc["secrets"]:
        assert secret["name"] in page
    lines = [l.split() for l in keylog.read_text().splitlines() if l and not l.startswith("#")]
    assert len(lines) >= 4
    flat = _spaceless(page)
    client_random = lines[0][1].lower()
    assert client_random in flat  # the check below would see a value if it were there
    for label, _, secret in lines:
        assert secret.lower() not in flat, label


def test_demo_html(tmp_path):
    out = tmp_path / "demo.html"
    result = CliRunner().invoke(app, ["demo", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert f"illustrated handshake written to {out}" in result.stdout.splitlines()
    page = out.read_text(encoding="utf-8")
    _check_self_contained(page)
    for name in ("ClientHello", "ServerHello", "EncryptedExtensions", "Certificate",
                 "CertificateVerify", "Finished", "handshake complete", "HTTP/1.1 200 OK",
                 "server_handshake_traffic_secret", "Which keys protect which messages"):
        assert name in page


def test_connect_html_tls12(served, tmp_path):
    port, ca = served
    out = tmp_path / "tls12.html"
    result = CliRunner().invoke(app, ["connect", f"localhost:{port}", "--ca-file", ca,
                                      "--tls", "1.2", "--html", str(out), "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert f"illustrated handshake written to {out}" in result.stdout
    page = out.read_text(encoding="utf-8")
    for name in ("ServerKeyExchange", "ServerHelloDone", "ClientKeyExchange", "TLS 1.2",
                 "write key", "master_secret"):
        assert name in page


# --------------------------------------------------------------------------- failures

def test_connect_html_wrong_servername(served, tmp_path):
    port, ca = served
    out = tmp_path / "fail.html"
    rc, stdout, stderr = run_bounded(tlslab_cmd("connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                                "--servername", "wrong.example", "--html",
                                                str(out), "--timeout", "5"), timeout=30)
    assert rc == 1
    line = one_error_line(stderr)  # still exactly one error line
    assert f"illustrated handshake written to {out}" in stdout
    page = out.read_text(encoding="utf-8")
    _check_self_contained(page)
    assert "handshake failed" in page
    assert "hostname" in page and "bad_certificate" in page
    assert line.removeprefix("error: ").split(" (sent alert")[0][:40] in page
    assert 'class="card alert' in page and "Alert: bad_certificate" in page
    for name in ("ClientHello", "ServerHello", "Certificate"):
        assert f'<span class="name">{name}</span>' in page
    assert "wrong.example" in page  # the SNI that was sent


def test_connect_html_refused_and_bad_path(tmp_path):
    out = tmp_path / "refused.html"
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{free_port()}", "--html", str(out)])
    assert result.exit_code == 1
    page = out.read_text(encoding="utf-8")
    assert "handshake failed" in page and "refused" in page
    assert "No handshake message was exchanged" in page

    result = CliRunner().invoke(app, ["connect", "127.0.0.1:1", "--html",
                                      str(tmp_path / "missing" / "x.html")])
    assert result.exit_code == 2
    assert "no such directory" in one_error_line(result.stderr)


# --------------------------------------------------------------------------- escaping

def test_connect_html_escapes_certificate_subject(evil_server, tmp_path):
    port, subject = evil_server
    out = tmp_path / "evil.html"
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--insecure",
                                      "--servername", "localhost", "--alpn", "<b>x</b>",
                                      "--html", str(out), "--timeout", "5"])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert EVIL not in page and "<b>x</b>" not in page and "<i>" not in page
    # the subject as RFC 4514 writes it (which backslash-escapes < and >), HTML-escaped
    assert "<" in subject and html.escape(subject) in page
    assert "&lt;script\\&gt;alert(1)" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # the ALPN offered, in the ClientHello summary
    _check_self_contained(page)  # still only our own script


def test_render_html_tolerates_no_trace():
    page = render_html(None, None, error="connection refused", target="<x>:1")
    assert "handshake failed" in page and "&lt;x&gt;:1" in page and "<x>" not in page
