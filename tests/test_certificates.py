"""Certificate path validation and diagnosis (tlslab.proto.certificates, workbench.certgen)."""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlslab.proto.alerts import AlertDescription
from tlslab.proto.certificates import (
    describe_certificate,
    load_trust_store,
    verify_client_chain,
    verify_server_chain,
)
from tlslab.proto.errors import (
    BadCertificate,
    CertificateExpired,
    CertificateRequired,
    DecodeError,
    UnknownCA,
    UnsupportedCertificate,
)
from tlslab.workbench.certgen import make_throwaway_chain, write_pem

SHARED = Path(os.environ.get("TLSLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared")
CERTS = SHARED / "peers" / "certs"

pytestmark = pytest.mark.skipif(not CERTS.is_dir(), reason=f"shared test PKI not found at {CERTS}")

UTC = datetime.timezone.utc


def _load(name: str) -> list[x509.Certificate]:
    return load_trust_store(str(CERTS / name))


@pytest.fixture(scope="module")
def root() -> x509.Certificate:
    (ca,) = _load("ca.pem")
    return ca


@pytest.fixture(params=["ecdsa-chain.pem", "rsa-chain.pem"])
def chain(request) -> list[x509.Certificate]:
    certs = _load(request.param)
    assert len(certs) == 2  # leaf + intermediate, as a server sends them
    return certs


def _now_for(cert: x509.Certificate) -> datetime.datetime:
    # The shared PKI has fixed dates; validate inside them, not at the wall clock.
    return cert.not_valid_before_utc + datetime.timedelta(days=1)


def _san_values(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(g.value) for g in ext]


# --------------------------------------------------------------------------- a tiny CA for edge cases


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_cert(
    subject_key,
    issuer_key,
    subject: str,
    issuer: str,
    *,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
    eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    sign_hash=hashes.SHA256(),
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    now = now or datetime.datetime.now(UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer_key, sign_hash)


def _code(excinfo) -> str:
    return excinfo.value.code


# --------------------------------------------------------------------------- shared PKI: success


@pytest.mark.parametrize("host", ["localhost", "LocalHost.", "127.0.0.1", "::1", "[::1]"])
def test_shared_chain_verifies(chain, root, host):
    leaf = chain[0]
    if host.strip("[]") in ("::1",) and "::1" not in _san_values(leaf):
        pytest.skip("leaf has no ::1 subjectAltName")
    path = verify_server_chain(chain, host, [root], _now_for(leaf))
    assert [c.subject for c in path] == [leaf.subject, chain[1].subject, root.subject]
    assert path[-1] == root


def test_shared_chain_without_hostname_check(chain, root):
    path = verify_server_chain(chain, None, [root], _now_for(chain[0]))
    assert len(path) == 3


def test_shared_chain_with_bundle_anchor_and_extra_certs(chain, root):
    # Trusting the intermediate directly ends the path there; extra and
    # unordered certificates in the chain are tolerated (RFC 8446 §4.4.2).
    bundle = _load("ca-bundle.pem")
    path = verify_server_chain(chain, "localhost", bundle, _now_for(chain[0]))
    assert path[0] == chain[0]
    unordered = [chain[0], root, chain[1]]
    path = verify_server_chain(unordered, "localhost", [root], _now_for(chain[0]))
    assert path[-1] == root


# --------------------------------------------------------------------------- shared PKI: failures


def test_missing_intermediate(chain, root):
    leaf = chain[0]
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain([leaf], "localhost", [root], _now_for(leaf))
    assert _code(ei) == "missing-intermediate"
    assert ei.value.alert == AlertDescription.unknown_ca
    assert leaf.issuer.rfc4514_string() in str(ei.value)
    assert "Intermediate CA" in str(ei.value)
    assert ei.value.evidence["missing_issuer"] == leaf.issuer.rfc4514_string()


def test_untrusted_root_empty_trust(chain, root):
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain(chain, "localhost", [], _now_for(chain[0]))
    assert _code(ei) == "untrusted-root"
    assert root.subject.rfc4514_string() in str(ei.value)


def test_untrusted_root_other_ca(chain):
    _, _, other_ca = make_throwaway_chain()
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain(chain, "localhost", [other_ca], _now_for(chain[0]))
    assert _code(ei) == "untrusted-root"


def test_untrusted_root_sent_by_server(chain, root):
    _, _, other_ca = make_throwaway_chain()
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain(chain + [root], "localhost", [other_ca], _now_for(chain[0]))
    assert _code(ei) == "untrusted-root"
    assert "sent" in str(ei.value)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "::2", "sub.localhost"])
def test_hostname_mismatch(chain, root, host):
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain(chain, host, [root], _now_for(chain[0]))
    assert _code(ei) == "hostname-mismatch"
    assert ei.value.alert == AlertDescription.bad_certificate
    assert "DNS:localhost" in str(ei.value) and "IP:127.0.0.1" in str(ei.value)


def test_expired(chain, root):
    now = chain[0].not_valid_after_utc + datetime.timedelta(days=365)
    with pytest.raises(CertificateExpired) as ei:
        verify_server_chain(chain, "localhost", [root], now)
    assert _code(ei) == "expired"
    assert ei.value.alert == AlertDescription.certificate_expired
    msg = str(ei.value)
    assert "CN=localhost" in msg
    assert chain[0].not_valid_after_utc.strftime("%Y-%m-%d") in msg
    assert now.strftime("%Y-%m-%d") in msg


def test_not_yet_valid(chain, root):
    now = chain[0].not_valid_before_utc - datetime.timedelta(days=30)
    with pytest.raises(CertificateExpired) as ei:
        verify_server_chain(chain, "localhost", [root], now.replace(tzinfo=None))  # naive = UTC
    assert _code(ei) == "not-yet-valid"


def test_findings_list_every_problem(chain, root):
    now = chain[0].not_valid_after_utc + datetime.timedelta(days=1)
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain([chain[0]], "example.com", [root], now)
    codes = [code for code, _ in ei.value.findings]
    assert codes[0] == "missing-intermediate"
    assert "expired" in codes and "hostname-mismatch" in codes


def test_self_signed_leaf():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _make_cert(key, key, "self.test", "self.test", sans=[x509.DNSName("self.test")])
    _, _, other_ca = make_throwaway_chain()
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain([cert], "self.test", [other_ca], datetime.datetime.now(UTC))
    assert _code(ei) == "self-signed"
    # Explicitly trusting it (curl --cacert self.pem) works.
    assert verify_server_chain([cert], "self.test", [cert], datetime.datetime.now(UTC)) == [cert]


def test_empty_chain():
    with pytest.raises(DecodeError):
        verify_server_chain([], "localhost", [], datetime.datetime.now(UTC))
    with pytest.raises(CertificateRequired) as ei:
        verify_client_chain([], [], datetime.datetime.now(UTC))
    assert _code(ei) == "client-certificate-required"


# --------------------------------------------------------------------------- generated edge cases


@pytest.fixture(scope="module")
def rsa_ca():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _make_cert(key, key, "Edge CA", "Edge CA", ca=True)


def test_no_san(rsa_ca):
    ca_key, ca = rsa_ca
    leaf = _make_cert(ec.generate_private_key(ec.SECP256R1()), ca_key, "nosan.test", "Edge CA")
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain([leaf], "nosan.test", [ca], datetime.datetime.now(UTC))
    assert _code(ei) == "no-san"


def test_wildcard(rsa_ca):
    ca_key, ca = rsa_ca
    leaf = _make_cert(
        ec.generate_private_key(ec.SECP256R1()), ca_key, "*.w.test", "Edge CA",
        sans=[x509.DNSName("*.w.test")],
    )
    now = datetime.datetime.now(UTC)
    assert verify_server_chain([leaf], "a.w.test", [ca], now)[0] == leaf
    for bad in ("w.test", "a.b.w.test"):
        with pytest.raises(BadCertificate) as ei:
            verify_server_chain([leaf], bad, [ca], now)
        assert _code(ei) == "hostname-mismatch"


def test_sha1_signature(tmp_path, root):
    # cryptography no longer signs with SHA-1, so let openssl issue one from the
    # shared intermediate.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    leaf_path = tmp_path / "sha1.pem"
    proc = subprocess.run(
        [
            openssl, "req", "-x509", "-new", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(tmp_path / "sha1.key"), "-subj", "/CN=sha1.test",
            "-addext", "subjectAltName=DNS:sha1.test",
            "-addext", "extendedKeyUsage=serverAuth",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-sha1", "-days", "10",
            "-CA", str(CERTS / "intermediate.pem"), "-CAkey", str(CERTS / "intermediate.key"),
            "-out", str(leaf_path),
        ],
        capture_output=True, text=True, timeout=30,
    )
    if proc.returncode != 0:
        pytest.skip(f"openssl cannot issue a SHA-1 certificate: {proc.stderr.strip()[:200]}")
    leaf = load_trust_store(str(leaf_path))[0]
    assert describe_certificate(leaf)["signature_algorithm"] == "sha1WithRSAEncryption"
    (intermediate,) = _load("intermediate.pem")
    now = max(leaf.not_valid_before_utc, intermediate.not_valid_before_utc) + datetime.timedelta(
        minutes=1
    )
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain([leaf, intermediate], "sha1.test", [root], now)
    assert _code(ei) == "sha1-signature"
    assert "SHA-1" in str(ei.value)


def test_weak_key(rsa_ca):
    ca_key, ca = rsa_ca
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    leaf = _make_cert(weak, ca_key, "weak.test", "Edge CA", sans=[x509.DNSName("weak.test")])
    with pytest.raises(UnsupportedCertificate) as ei:
        verify_server_chain([leaf], "weak.test", [ca], datetime.datetime.now(UTC))
    assert _code(ei) == "weak-key"
    assert "RSA 1024" in str(ei.value)


def test_wrong_key_usage(rsa_ca):
    ca_key, ca = rsa_ca
    leaf = _make_cert(
        ec.generate_private_key(ec.SECP256R1()), ca_key, "client.test", "Edge CA",
        sans=[x509.DNSName("client.test")], eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    )
    with pytest.raises(UnsupportedCertificate) as ei:
        verify_server_chain([leaf], "client.test", [ca], datetime.datetime.now(UTC))
    assert _code(ei) == "wrong-key-usage"
    assert "serverAuth" in str(ei.value)


# --------------------------------------------------------------------------- client certificates


def test_client_chain(root):
    chain = _load("client-chain.pem")
    path = verify_client_chain(chain, [root], _now_for(chain[0]))
    assert path[0] == chain[0] and path[-1] == root


def test_server_cert_as_client_cert(root):
    chain = _load("ecdsa-chain.pem")
    with pytest.raises(UnsupportedCertificate) as ei:
        verify_client_chain(chain, [root], _now_for(chain[0]))
    assert _code(ei) == "wrong-key-usage"


def test_client_chain_untrusted():
    chain = _load("client-chain.pem")
    with pytest.raises(UnknownCA) as ei:
        verify_client_chain(chain, [], _now_for(chain[0]))
    assert _code(ei) == "untrusted-root"


# --------------------------------------------------------------------------- describe / trust store


def test_describe_certificate():
    ecdsa_leaf = _load("ecdsa.pem")[0]
    d = describe_certificate(ecdsa_leaf)
    assert d["subject"] == "CN=localhost,O=tlslab test"
    assert d["issuer"] == "CN=tlslab Test Intermediate CA,O=tlslab test"
    assert d["key"] == "ECDSA P-256"
    assert d["signature_algorithm"] == "sha256WithRSAEncryption"
    assert "DNS:localhost" in d["san"] and "IP:127.0.0.1" in d["san"]
    assert int(d["serial"], 16) == ecdsa_leaf.serial_number
    assert d["not_after"].endswith("Z")
    assert len(d["sha256"].split(":")) == 32
    assert describe_certificate(_load("rsa.pem")[0])["key"] == "RSA 2048"
    chain, _, _ = make_throwaway_chain(key_type="ed25519")
    assert describe_certificate(chain[0])["key"] == "Ed25519"


def test_load_trust_store_skips_bad_blocks(tmp_path):
    good = (CERTS / "ca.pem").read_bytes()
    bogus = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    path = tmp_path / "bundle.pem"
    path.write_bytes(bogus + good)
    certs = load_trust_store(str(path))
    assert len(certs) == 1 and certs[0].subject.rfc4514_string().startswith("CN=tlslab Test Root")


def test_load_trust_store_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_trust_store(str(tmp_path / "nope.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ValueError):
        load_trust_store(str(empty))


def test_system_store_is_cached():
    first = load_trust_store(None)
    second = load_trust_store(None)
    if not first:
        pytest.skip("no system trust store on this machine")
    assert all(a is b for a, b in zip(first, second))


# --------------------------------------------------------------------------- certgen


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa2048", "ed25519"])
def test_certgen_verifies(key_type):
    chain, key, ca = make_throwaway_chain(key_type=key_type)
    now = datetime.datetime.now(UTC)
    for host in ("localhost", "127.0.0.1", "::1"):
        path = verify_server_chain(chain, host, [ca], now)
        assert path == [chain[0], ca]
    with pytest.raises(BadCertificate):
        verify_server_chain(chain, "example.com", [ca], now)
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain(chain, "localhost", [make_throwaway_chain()[2]], now)
    assert _code(ei) in ("missing-intermediate", "untrusted-root")


def test_certgen_custom_names_and_time():
    then = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    chain, _, ca = make_throwaway_chain(names=("api.example.test", "10.1.2.3"), now=then)
    assert verify_server_chain(chain, "api.example.test", [ca], then)
    assert verify_server_chain(chain, "10.1.2.3", [ca], then)
    with pytest.raises(CertificateExpired) as ei:
        verify_server_chain(chain, "10.1.2.3", [ca], then + datetime.timedelta(days=31))
    assert _code(ei) == "expired"


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa2048", "ed25519"])
def test_certgen_openssl_verify(tmp_path, key_type):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    chain, key, ca = make_throwaway_chain(key_type=key_type)
    cert_path, key_path, ca_path = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    write_pem(chain, key, cert_path, key_path)
    write_pem([ca], key, ca_path, tmp_path / "unused.key")
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    for extra in ([], ["-purpose", "sslserver", "-verify_hostname", "localhost"],
                  ["-verify_ip", "::1"]):
        proc = subprocess.run(
            [openssl, "verify", "-CAfile", str(ca_path), *extra, str(cert_path)],
            capture_output=True, text=True, timeout=30,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ": OK" in proc.stdout
    # The key file matches the certificate.
    loaded = load_trust_store(str(cert_path))
    assert loaded == chain
    proc = subprocess.run(
        [openssl, "pkey", "-in", str(key_path), "-pubout"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr


def test_same_name_different_key_anchor():
    # Two CAs with one name: the trusted one did not sign this leaf.
    now = datetime.datetime.now(UTC)
    k1, k2 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca1 = _make_cert(k1, k1, "Twin CA", "Twin CA", ca=True)
    ca2 = _make_cert(k2, k2, "Twin CA", "Twin CA", ca=True)
    leaf = _make_cert(
        ec.generate_private_key(ec.SECP256R1()), k2, "twin.test", "Twin CA",
        sans=[x509.DNSName("twin.test")],
    )
    assert verify_server_chain([leaf], "twin.test", [ca1, ca2], now)[-1] == ca2
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain([leaf], "twin.test", [ca1], now)
    assert _code(ei) == "untrusted-root"
    assert "different key" in str(ei.value)
    # A wrong intermediate sent by the server is a bad signature, not a trust problem.
    ki = ec.generate_private_key(ec.SECP256R1())
    wrong_int = _make_cert(ki, k1, "Twin CA", "Twin CA", ca=True)
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain([leaf, wrong_int], "twin.test", [], now)
    assert _code(ei) == "bad-signature"


# --------------------------------------------------------------------------- library first

from tlslab.proto import cert_paths as _paths  # noqa: E402  (trust contexts live with the path search)
from tlslab.proto import certificates as _certs  # noqa: E402


def test_success_builds_no_evidence_and_no_own_paths(chain, root, monkeypatch):
    # A successful verification that the library can judge neither describes
    # certificates (evidence is for findings) nor builds paths itself (the
    # library already checked every signature).
    def boom(*a, **k):
        raise AssertionError("not on the success path")

    monkeypatch.setattr(_certs, "describe_certificate", boom)
    monkeypatch.setattr(_certs, "_build_paths", boom)
    trust = load_trust_store(str(CERTS / "ca.pem"))
    path = verify_server_chain(chain, "localhost", trust, _now_for(chain[0]))
    assert path[-1] == root
    cli = _load("client-chain.pem")
    assert verify_client_chain(cli, [root], _now_for(cli[0]))[-1] == root


def test_failure_asks_library_once(rsa_ca, monkeypatch):
    # Our checks pass but the library refuses (an unknown critical extension):
    # the diagnosis reuses the library's verdict instead of asking again.
    ca_key, ca = rsa_ca
    now = datetime.datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("crit.test")).issuer_name(_name("Edge CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("crit.test")]), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    calls = []
    real = _certs._library_verify  # the one place that asks the library

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_certs, "_library_verify", counting)
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain([leaf], "crit.test", [ca], now)
    assert _code(ei) == "verification-failed"
    assert ei.value.evidence["library_error"]
    assert len(calls) == 1


def test_leaf_checks_the_library_does_not_make(rsa_ca):
    # cryptography accepts these; our checks must still refuse them on a path
    # the library judges.
    ca_key, ca = rsa_ca
    now = datetime.datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    star = _make_cert(key, ca_key, "star", "Edge CA", sans=[x509.DNSName("*.test")])
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain([star], "a.test", [ca], now)  # no wildcard over a TLD
    assert _code(ei) == "hostname-mismatch"
    no_ds = (
        x509.CertificateBuilder()
        .subject_name(_name("kex.test")).issuer_name(_name("Edge CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("kex.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    with pytest.raises(UnsupportedCertificate) as ei:
        verify_server_chain([no_ds], "kex.test", [ca], now)
    assert _code(ei) == "wrong-key-usage"
    assert "digitalSignature" in str(ei.value)
    assert ei.value.evidence["certificate"]["subject"] == "CN=kex.test"


def test_trust_context_is_cached_per_certificate_set(chain, root):
    first = load_trust_store(str(CERTS / "ca.pem"))
    second = load_trust_store(str(CERTS / "ca.pem"))
    assert first is not second  # a fresh list per call, as the client gets it
    ctx = _paths._trust_context(first)
    assert _paths._trust_context(second) is ctx
    store = ctx.store
    verify_server_chain(chain, "localhost", second, _now_for(chain[0]))
    assert _paths._trust_context(first).store is store
    # A different set of anchors is a different context, and the cache does
    # not leak a verdict from one trust list into another.
    _, _, other_ca = make_throwaway_chain()
    assert _paths._trust_context([other_ca]) is not ctx
    assert _paths._trust_context([root, other_ca]) is not ctx
    with pytest.raises(UnknownCA):
        verify_server_chain(chain, "localhost", [other_ca], _now_for(chain[0]))
    assert verify_server_chain(chain, "localhost", [other_ca, root], _now_for(chain[0]))[-1] == root
    for _ in range(_paths._TRUST_CACHE_SIZE + 2):  # evicted entries are rebuilt
        _paths._trust_context([make_throwaway_chain()[2]])
    assert len(_paths._trust_cache) <= _paths._TRUST_CACHE_SIZE
    assert verify_server_chain(chain, "localhost", first, _now_for(chain[0]))[-1] == root
