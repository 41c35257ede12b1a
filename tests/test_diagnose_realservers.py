"""``tlslab diagnose`` against real servers on loopback: openssl s_server, gnutls-serv, nginx,
a Java SSLServerSocket and listeners that do not speak TLS.

For every code of the vocabulary a real server shows that cause and the diagnosis names it
(and only it); healthy servers of each kind get ``ok``.  The servers' own behaviour on
each failure (which alert, when) is described in tests/realservers.py; the diagnosis is
built to it (e.g. JSSE answers an unknown group with unexpected_message, gnutls-serv a
missing TLS 1.2 client certificate with decode_error, nginx with HTTP 400).
"""
from __future__ import annotations

import asyncio
import os
import time
from contextlib import contextmanager

import pytest

import realservers as rs
from tlslab.diagnose import Target, diagnose
from tlslab.lab.pki import make_pki
from tlslab.proto.certificates import load_trust_store
from tlslab.profiles import load_profile, load_profile_file

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """PEM files of every certificate kind, ECDSA P-256 leaves (plus RSA and P-521 ones)."""
    base = tmp_path_factory.mktemp("diag-pki")
    pki = make_pki(names=("localhost", "127.0.0.1", "::1"))
    out = {kind: pki.server(kind).write(base / kind) for kind in (
        "ok", "expired", "not-yet-valid", "wrong-host", "no-san", "self-signed", "untrusted-root",
        "missing-intermediate", "sha1", "rsa1024", "wrong-eku")}
    out["rsa"] = make_pki(names=("localhost", "127.0.0.1"), key_type="rsa2048").server("ok").write(base / "rsa")
    out["p521"] = make_pki(names=("localhost", "127.0.0.1"), key_type="ecdsa-p521").server("ok").write(base / "p521")
    return out


def _diagnose(server, ca_pem, profile="default", name="localhost", timeout=5.0):
    profiles = [load_profile_file(profile) if str(profile).endswith(".toml") else load_profile(profile)]
    target = Target(server.host, server.port, name, load_trust_store(ca_pem), timeout=timeout)
    start = time.monotonic()
    doc = asyncio.run(diagnose(target, profiles)).to_json()
    doc["_took"] = time.monotonic() - start
    return doc


def _check(doc, expected, server):
    got = [c["code"] for c in doc["causes"]]
    assert got == expected, (f"expected {expected}, got {got}\n"
                             + "\n".join(f"  {c['code']}: {c['summary']}" for c in doc["causes"])
                             + "\n" + "\n".join(f"  probe {h['probe']}: {h['summary']}" for h in doc["handshakes"])
                             + f"\nserver log:\n{server.log()[-3000:]}")
    assert doc["handshake_count"] <= 40
    for c in doc["causes"]:
        assert c["summary"] and c["evidence"]
        if c["code"] != "ok":
            assert c["fixes"]


@contextmanager
def _server(factory):
    try:
        with factory() as server:
            yield server
    except rs.PeerMissing as e:
        pytest.skip(f"{e}")


def _chain(files):
    return files["chain"], files["key"]


# ----------------------------------------------------------------------- openssl s_server

CERT_CASES = [
    ("ok", ["ok"]), ("expired", ["expired"]), ("not-yet-valid", ["not-yet-valid"]),
    ("wrong-host", ["hostname-mismatch"]), ("no-san", ["no-san"]), ("self-signed", ["self-signed"]),
    ("untrusted-root", ["untrusted-root"]), ("missing-intermediate", ["missing-intermediate"]),
    ("sha1", ["sha1-signature"]), ("rsa1024", ["weak-key"]), ("wrong-eku", ["wrong-key-usage"]),
]


@pytest.mark.parametrize("kind,expected", CERT_CASES)
def test_openssl_certificates(certs, kind, expected):
    f = certs[kind]
    # SECLEVEL=0 lets s_server load the SHA-1 and RSA-1024 certificates at all
    extra = ["-cipher", "DEFAULT:@SECLEVEL=0"] if kind in ("sha1", "rsa1024") else []
    with _server(lambda: rs.openssl_server(*_chain(f), extra=extra)) as server:
        doc = _diagnose(server, f["ca"])
    _check(doc, expected, server)


@pytest.mark.parametrize("options,profile,expected", [
    (dict(tls=("1.3",)), "tls12-only", ["protocol-version-mismatch"]),
    (dict(tls=("1.0",)), "default", ["protocol-version-mismatch"]),
    (dict(tls=("1.2",), ciphers="DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"), "browser",
     ["no-common-cipher"]),
    (dict(tls=("1.2",), ciphers="AES128-GCM-SHA256:AES256-SHA"), "browser", ["no-common-cipher"]),
    (dict(groups="P-521"), "browser", ["no-common-group"]),
    (dict(groups="ffdhe2048:ffdhe3072"), "browser", ["no-common-group"]),
    (dict(verify_client="require", tls=("1.3",)), "default", ["client-certificate-required"]),
    (dict(verify_client="require", tls=("1.2",)), "default", ["client-certificate-required"]),
    (dict(tls=("1.2", "1.3")), "tls12-only", ["ok"]),
])
def test_openssl_negotiation(certs, options, profile, expected):
    f = certs["rsa"]
    if "verify_client" in options:
        options = dict(options, client_ca=f["client_ca"])
    with _server(lambda: rs.openssl_server(*_chain(f), **options)) as server:
        doc = _diagnose(server, f["ca"], profile)
    _check(doc, expected, server)
    if expected == ["client-certificate-required"]:
        ev = doc["causes"][0]["evidence"]
        assert ev["certificate_request"]["ca_names"], ev


def test_openssl_p521_certificate_and_browser_schemes(certs):
    """Chrome offers no ecdsa_secp521r1_sha512: a P-521 certificate cannot sign for it."""
    f = certs["p521"]
    with _server(lambda: rs.openssl_server(*_chain(f))) as server:
        doc = _diagnose(server, f["ca"], "browser")
        doc_default = _diagnose(server, f["ca"], "default")
    _check(doc, ["no-common-signature-algorithm"], server)
    assert "P-521" in doc["causes"][0]["evidence"]["server_key"]
    _check(doc_default, ["ok"], server)


# ----------------------------------------------------------------------- gnutls-serv


@pytest.mark.parametrize("options,profile,expected", [
    (dict(), "default", ["ok"]),
    (dict(tls=("1.3",)), "tls12-only", ["protocol-version-mismatch"]),
    (dict(priority="NORMAL:-KX-ALL:+DHE-RSA", tls=("1.2",)), "browser", ["no-common-cipher"]),
    (dict(verify_client="require", tls=("1.3",)), "default", ["client-certificate-required"]),
    (dict(verify_client="require", tls=("1.2",)), "default", ["client-certificate-required"]),
    (dict(alpn="imap", extra=("--alpn-fatal",)), "alpn-http", ["alpn-mismatch"]),
    # gnutls-serv never says protocol_version itself: handshake_failure to a modern client
    (dict(priority="NORMAL:%VERIFY_ALLOW_SIGN_WITH_SHA1", tls=("1.0",)), "default",
     ["protocol-version-mismatch"]),
])
def test_gnutls(certs, options, profile, expected):
    f = certs["rsa"]
    if "verify_client" in options:
        options = dict(options, client_ca=f["client_ca"])
    with _server(lambda: rs.gnutls_server(*_chain(f), **options)) as server:
        doc = _diagnose(server, f["ca"], profile)
    _check(doc, expected, server)


def test_gnutls_expired(certs):
    f = certs["expired"]
    with _server(lambda: rs.gnutls_server(*_chain(f))) as server:
        doc = _diagnose(server, f["ca"])
    _check(doc, ["expired"], server)


# ----------------------------------------------------------------------- nginx


@pytest.mark.parametrize("kind,options,profile,name,expected", [
    ("ok", dict(), "default", "localhost", ["ok"]),
    ("ok", dict(), "browser", "localhost", ["ok"]),
    ("missing-intermediate", dict(), "default", "localhost", ["missing-intermediate"]),
    ("ok", dict(verify_client="require"), "default", "localhost", ["client-certificate-required"]),
    ("ok", dict(sni_required_name="localhost"), "no-sni", "localhost", ["sni-required"]),
    ("ok", dict(sni_required_name="localhost"), "default", "127.0.0.1", ["sni-required"]),
    ("ok", dict(sni_required_name="localhost"), "default", "localhost", ["ok"]),
    ("ok", dict(tls=("1.3",)), "tls12-only", "localhost", ["protocol-version-mismatch"]),
    ("ok", dict(groups="secp521r1"), "browser", "localhost", ["no-common-group"]),
])
def test_nginx(certs, kind, options, profile, name, expected):
    f = certs[kind]
    if "verify_client" in options:
        options = dict(options, client_ca=f["client_ca"])
    with _server(lambda: rs.nginx_server(*_chain(f), **options)) as server:
        doc = _diagnose(server, f["ca"], profile, name=name)
    _check(doc, expected, server)
    if expected == ["client-certificate-required"]:
        assert "400" in doc["causes"][0]["summary"] or "400" in str(doc["causes"][0]["evidence"])


# ----------------------------------------------------------------------- Java (JSSE)


@pytest.fixture(scope="module")
def tls13_only_profile(tmp_path_factory):
    """A user's own profile file: tlslab's default client, TLS 1.3 only."""
    from importlib import resources
    text = (resources.files("tlslab.profiles") / "data" / "default.toml").read_text()
    text = text.replace('name = "default"', 'name = "tls13-only"').replace(
        'versions = ["TLS 1.3", "TLS 1.2"]', 'versions = ["TLS 1.3"]')
    path = tmp_path_factory.mktemp("profiles") / "tls13-only.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("options,profile,expected", [
    (dict(), "default", ["ok"]),
    (dict(groups=["secp521r1"]), "browser", ["no-common-group"]),
    (dict(tls=("1.2",), ciphers=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]), "browser", ["no-common-cipher"]),
    (dict(client_auth="need"), "default", ["client-certificate-required"]),
    (dict(client_auth="need", tls=("1.2",)), "default", ["client-certificate-required"]),
    (dict(tls=("1.2",)), "TLS13", ["protocol-version-mismatch"]),
])
def test_java(certs, tls13_only_profile, options, profile, expected):
    f = certs["rsa"]
    if options.get("client_auth") == "need":
        options = dict(options, client_ca=f["client_ca"])
    if profile == "TLS13":
        profile = tls13_only_profile
    with _server(lambda: rs.java_server(*_chain(f), **options)) as server:
        doc = _diagnose(server, f["ca"], profile, timeout=8.0)
    _check(doc, expected, server)


# ----------------------------------------------------------------------- not TLS


@pytest.mark.parametrize("factory,expected,says", [
    (rs.plain_http_server, ["not-tls"], "HTTP"),
    (rs.banner_server, ["not-tls"], "SMTP"),
    (rs.ssh_like_server, ["not-tls"], "SSH"),
    (rs.garbage_server, ["not-tls"], "not"),
    (rs.reset_server, ["not-tls"], "closes the connection"),
])
def test_not_tls(factory, expected, says):
    with _server(factory) as server:
        doc = _diagnose(server, _any_ca())
    _check(doc, expected, server)
    assert says in doc["causes"][0]["summary"]


def test_silent_server_is_a_timeout_within_the_limit():
    with _server(rs.silent_server) as server:
        doc = _diagnose(server, _any_ca(), timeout=2.0)
    _check(doc, ["timeout"], server)
    assert doc["_took"] < 3.5


def test_closed_port_is_connection_refused():
    port = rs.closed_port()

    class Closed:
        host, port_ = "127.0.0.1", 0

        def log(self):
            return ""
    s = Closed()
    s.port = port
    doc = _diagnose(s, _any_ca())
    _check(doc, ["connection-refused"], s)


def _any_ca():
    from tlslab.lab.pki import make_pki as _mk
    import tempfile
    path = os.path.join(tempfile.mkdtemp(prefix="tlslab-ca-"), "ca.pem")
    from cryptography.hazmat.primitives.serialization import Encoding
    with open(path, "wb") as fh:
        fh.write(b"".join(c.public_bytes(Encoding.PEM) for c in _mk(names=("localhost",)).trust))
    return path


def test_openssl_servername_fatal_for_another_name(certs):
    """s_server -servername other.test -servername_fatal: the name sent is not served."""
    f = certs["rsa"]
    with _server(lambda: rs.openssl_server(*_chain(f), sni_required_name="other.test")) as server:
        doc = _diagnose(server, f["ca"])
    _check(doc, ["sni-required"], server)
    assert "does not serve the name 'localhost'" in doc["causes"][0]["summary"]


def test_client_certificate_and_cipher_mismatch_together(certs):
    """Both are reported: the suites first, and the certificate demand that comes after."""
    f = certs["rsa"]
    with _server(lambda: rs.openssl_server(*_chain(f), tls=("1.2",), ciphers="DHE-RSA-AES128-GCM-SHA256",
                                           verify_client="require", client_ca=f["client_ca"])) as server:
        doc = _diagnose(server, f["ca"], "browser")
    _check(doc, ["no-common-cipher", "client-certificate-required"], server)
