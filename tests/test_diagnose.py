"""``tlslab diagnose`` against tlslab's own servers on loopback, one broken thing at a time.

Each case configures a real tlslab server (the engine under a configuration, not a canned
reply) and checks that the diagnosis names exactly the expected cause(s) for the profile,
with evidence, and fixes.  Real third-party servers are in test_diagnose_realservers.py.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from tlslab.diagnose import Target, VOCABULARY, diagnose
from tlslab.io.blocking import make_server
from tlslab.lab.pki import make_pki
from tlslab.proto.config import ServerConfig
from tlslab.profiles import load_profile


@pytest.fixture(scope="module")
def pki():
    return make_pki(names=("localhost", "127.0.0.1", "::1"), key_type="ecdsa-p256")


@pytest.fixture(scope="module")
def rsa_pki():
    return make_pki(names=("localhost", "127.0.0.1", "::1"), key_type="rsa2048")


def _answer(sock) -> None:
    try:
        sock.recv(4096)
        sock.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except Exception:
        pass


@contextmanager
def tlslab_server(cert, **options):
    config = ServerConfig(certificate_chain=cert.chain, private_key=cert.key, **options)
    srv = make_server("127.0.0.1", 0, config, _answer)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.port
    finally:
        srv.shutdown()
        srv.server_close()


def run(port, trust, *, profile="default", name="localhost", timeout=5.0, **kw):
    profiles = [load_profile(p) for p in ([profile] if isinstance(profile, str) else profile)]
    target = Target("127.0.0.1", port, name, list(trust), timeout=timeout, **kw)
    report = asyncio.run(diagnose(target, profiles))
    doc = report.to_json()
    json.dumps(doc)  # always serialisable
    return report, doc


def codes(doc):
    return [c["code"] for c in doc["causes"]]


def test_healthy_server_is_ok_without_false_alarm(pki):
    cert = pki.server("ok")
    with tlslab_server(cert, cipher_suites=None) as port:
        report, doc = run(port, cert.trust)
    assert doc["ok"] is True
    assert codes(doc) == ["ok"]
    assert doc["causes"][0]["summary"]
    assert all(o["works"] for o in doc["other_profiles"]), doc["other_profiles"]
    # a healthy server needs few handshakes
    assert doc["handshake_count"] <= 15
    assert set(doc) >= {"target", "ok", "causes", "handshakes", "warnings"}


@pytest.mark.parametrize("kind,code", [
    ("expired", "expired"), ("not-yet-valid", "not-yet-valid"), ("wrong-host", "hostname-mismatch"),
    ("no-san", "no-san"), ("self-signed", "self-signed"), ("untrusted-root", "untrusted-root"),
    ("missing-intermediate", "missing-intermediate"), ("sha1", "sha1-signature"),
    ("rsa1024", "weak-key"), ("wrong-eku", "wrong-key-usage"),
])
def test_certificate_causes(pki, kind, code):
    cert = pki.server(kind)
    with tlslab_server(cert) as port:
        report, doc = run(port, cert.trust)
    assert codes(doc) == [code], doc["causes"]
    cause = doc["causes"][0]
    assert cause["evidence"], cause
    assert cause["fixes"], f"no fixes for {code}"
    assert all(f["side"] in ("client", "server") for f in cause["fixes"])
    assert doc["ok"] is False


def test_expiring_soon_is_a_warning_not_a_cause(pki):
    cert = pki.server("expiring-soon")
    with tlslab_server(cert) as port:
        _, doc = run(port, cert.trust)
    assert codes(doc) == ["ok"]
    assert any(w["code"] == "expires-soon" for w in doc["warnings"])


def test_untrusted_root_evidence_has_root_and_fingerprint(pki):
    cert = pki.server("untrusted-root")
    with tlslab_server(cert) as port:
        _, doc = run(port, cert.trust)
    ev = doc["causes"][0]["evidence"]
    assert "root_subject" in ev and ev["root_subject"]
    stacks = {f["stack"] for f in doc["causes"][0]["fixes"]}
    assert {"java", "curl", "python", "node", "go"} <= stacks


def test_missing_intermediate_fetched_from_aia_and_chain_written(pki, tmp_path):
    """The AIA URL points to a loopback HTTP server that serves the intermediate."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    der = pki.intermediate_der

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-cert")
            self.send_header("Content-Length", str(len(der)))
            self.end_headers()
            self.wfile.write(der)

        def log_message(self, *a):
            pass

    http = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{http.server_address[1]}/int.der"
        cert = pki.server("missing-intermediate", aia_url=url)
        out = tmp_path / "fullchain.pem"
        with tlslab_server(cert) as port:
            _, doc = run(port, cert.trust, write_chain=str(out))
            # a client that fetches AIA (the browser profile) connects: a warning, not a cause
            _, doc_browser = run(port, cert.trust, profile="browser")
    finally:
        http.shutdown()
    cause = doc["causes"][0]
    assert cause["code"] == "missing-intermediate"
    fetch = cause["evidence"]["aia_fetch"]
    assert fetch["fetched"] and fetch["completes_chain"], fetch
    assert doc["written_chain"] == str(out)
    from cryptography import x509
    written = x509.load_pem_x509_certificates(out.read_bytes())
    assert [c.subject for c in written] == [cert.chain[0].subject, pki.intermediate.subject] \
        if hasattr(pki, "intermediate") else len(written) == 2
    assert codes(doc_browser) == ["ok"]
    assert any(w["code"] == "missing-intermediate-fetched" for w in doc_browser["warnings"])


def test_missing_intermediate_unfetchable_aia_says_why(pki):
    cert = pki.server("missing-intermediate")  # AIA points to port 1: nothing there
    with tlslab_server(cert) as port:
        _, doc = run(port, cert.trust, profile="browser")
    cause = doc["causes"][0]
    assert cause["code"] == "missing-intermediate"
    assert cause["evidence"]["aia_fetch"]["fetched"] is False


@pytest.mark.parametrize("options,profile,code", [
    (dict(versions=["TLS 1.3"]), "tls12-only", "protocol-version-mismatch"),
    (dict(versions=["TLS 1.2"], cipher_suites=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]),
     "browser", "no-common-cipher"),
    (dict(groups=["secp521r1"], versions=["TLS 1.3"]), "default", "no-common-group"),
    (dict(groups=["ffdhe3072"], versions=["TLS 1.3"]), "browser", "no-common-group"),
    (dict(alpn_protocols=["imap"]), "alpn-http", "alpn-mismatch"),
])
def test_negotiation_causes(rsa_pki, options, profile, code):
    cert = rsa_pki.server("ok")
    with tlslab_server(cert, **options) as port:
        _, doc = run(port, cert.trust, profile=profile)
    assert codes(doc) == [code], doc["causes"]
    ev = doc["causes"][0]["evidence"]
    assert ev["refusal"]["alert_received"] or ev["refusal"]["alert_sent"]
    assert doc["handshake_count"] <= 40


def test_server_accepts_listed_for_group_mismatch(rsa_pki):
    cert = rsa_pki.server("ok")
    with tlslab_server(cert, groups=["secp521r1"], versions=["TLS 1.3"]) as port:
        _, doc = run(port, cert.trust, profile="browser")
    ev = doc["causes"][0]["evidence"]
    assert ev["server_accepts"] == ["secp521r1"]
    assert "secp521r1" not in ev["client_offers"]


def test_signature_scheme_mismatch_ed25519_for_browser():
    pki = make_pki(names=("localhost",), key_type="ed25519")
    cert = pki.server("ok")
    with tlslab_server(cert) as port:
        _, doc = run(port, cert.trust, profile="browser")
        _, doc_default = run(port, cert.trust, profile="default")
    assert codes(doc) == ["no-common-signature-algorithm"], doc["causes"]
    assert "Ed25519" in doc["causes"][0]["evidence"]["server_key"]
    assert codes(doc_default) == ["ok"]


@pytest.mark.parametrize("versions", [["TLS 1.3"], ["TLS 1.2"]])
def test_client_certificate_required(pki, tmp_path, versions):
    cert = pki.server("ok")
    ca = tmp_path / "client-ca.pem"
    from cryptography.hazmat.primitives.serialization import Encoding
    ca.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in pki.client_ca))
    with tlslab_server(cert, client_ca_file=str(ca), require_client_cert=True,
                       versions=versions) as port:
        _, doc = run(port, cert.trust)
    assert codes(doc) == ["client-certificate-required"], doc["causes"]
    ev = doc["causes"][0]["evidence"]
    assert ev["certificate_request"]["version"] == versions[0]
    assert ev["certificate_request"]["ca_names"], ev


def test_client_certificate_given_is_accepted(pki, tmp_path):
    cert = pki.server("ok")
    client = pki.server("client")
    ca = tmp_path / "client-ca.pem"
    from cryptography.hazmat.primitives.serialization import Encoding
    ca.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in pki.client_ca))
    with tlslab_server(cert, client_ca_file=str(ca), require_client_cert=True) as port:
        _, doc = run(port, cert.trust, certificate_chain=client.chain, private_key=client.key)
    assert codes(doc) == ["ok"], doc["causes"]
    # the certificate we sent was required: no "optional client certificate" false alarm
    assert not any(w["code"] == "client-certificate-optional" for w in doc["warnings"])


def test_two_causes_at_once(pki):
    """An expired certificate on a server that only speaks TLS 1.3: both are reported."""
    cert = pki.server("expired")
    with tlslab_server(cert, versions=["TLS 1.3"]) as port:
        _, doc = run(port, cert.trust, profile="tls12-only")
    assert codes(doc) == ["protocol-version-mismatch", "expired"], doc["causes"]


def test_ip_literal_checked_against_ip_san(pki):
    cert = pki.server("ok")
    with tlslab_server(cert) as port:
        _, doc = run(port, cert.trust, name="127.0.0.1")
        _, doc_bad = run(port, cert.trust, name="127.0.0.2")
    assert codes(doc) == ["ok"]
    assert codes(doc_bad) == ["hostname-mismatch"]


def test_several_profiles_merge_causes(rsa_pki):
    cert = rsa_pki.server("ok")
    with tlslab_server(cert, versions=["TLS 1.2"],
                       cipher_suites=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]) as port:
        _, doc = run(port, cert.trust, profile=["default", "browser"])
    assert codes(doc) == ["no-common-cipher"]
    assert doc["causes"][0]["profiles"] == ["browser"]


# ----------------------------------------------------------------------- transport


def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    _, doc = run(port, [])
    assert codes(doc) == ["connection-refused"]


@contextmanager
def raw_listener(behaviour):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(32)
    stop = threading.Event()
    conns = []

    def loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            conns.append(c)
            threading.Thread(target=behaviour, args=(c,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(2)
        srv.close()
        for c in conns:
            try:
                c.close()
            except OSError:
                pass


def _http(c):
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass


def _smtp(c):
    try:
        c.sendall(b"220 mail.example.test ESMTP Postfix\r\n")
        c.recv(4096)
        c.sendall(b"500 5.5.2 Error: bad syntax\r\n")
    except OSError:
        pass


def _garbage(c):
    try:
        c.recv(4096)
        c.sendall(bytes(range(200, 256)) * 4)
    except OSError:
        pass


def _silent(c):
    time.sleep(10)


def _reset(c):
    import struct
    try:
        c.recv(4096)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    except OSError:
        pass


def _bad_tls(c):
    """A handshake record header, then bytes no ServerHello can be made of."""
    try:
        c.recv(4096)
        # a ServerHello of 4 bytes: far too short to be one (RFC 8446 §4.1.3)
        c.sendall(b"\x16\x03\x03\x00\x08" + b"\x02\x00\x00\x04" + b"\xff" * 4)
        time.sleep(0.5)
    except OSError:
        pass


@pytest.mark.parametrize("behaviour,looks_like", [
    (_http, "HTTP"), (_smtp, "SMTP"), (_garbage, "not a TLS record"), (_reset, "closes the connection"),
    (_bad_tls, "not valid TLS"),
])
def test_not_tls(behaviour, looks_like):
    with raw_listener(behaviour) as port:
        _, doc = run(port, [])
    assert codes(doc) == ["not-tls"], doc["causes"]
    assert looks_like in doc["causes"][0]["summary"]


def test_silent_server_times_out_within_the_timeout():
    with raw_listener(_silent) as port:
        start = time.monotonic()
        _, doc = run(port, [], timeout=1.5)
        took = time.monotonic() - start
    assert codes(doc) == ["timeout"]
    assert took < 3.0, took


def test_every_code_is_in_the_vocabulary_and_has_fix_data():
    from tlslab.diagnose.fixes import cause_data
    for code in VOCABULARY:
        data = cause_data(code)
        assert data["code"] == code
        if code != "ok":
            assert data.get("fix"), f"fixes/{code}.toml has no fix"


def test_version_fixes_follow_the_direction_of_the_mismatch(rsa_pki):
    """A TLS 1.3-only server and a TLS 1.2 client: enable 1.3, never 'downgrade to TLS 1.0'."""
    cert = rsa_pki.server("ok")
    with tlslab_server(cert, versions=["TLS 1.3"]) as port:
        _, doc = run(port, cert.trust, profile="tls12-only")
    fixes = doc["causes"][0]["fixes"]
    text = " ".join(f["text"] + f.get("example", "") for f in fixes)
    assert "--tlsv1.3" in text and "TLSv1.3" in text
    assert "--tlsv1.0" not in text and "TLSVersion.TLSv1\n" not in text and "VersionTLS10" not in text


def test_cipher_mismatch_names_the_suites_the_server_accepts(rsa_pki):
    cert = rsa_pki.server("ok")
    with tlslab_server(cert, versions=["TLS 1.2"],
                       cipher_suites=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]) as port:
        _, doc = run(port, cert.trust, profile="browser")
    assert "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" in doc["causes"][0]["summary"]
