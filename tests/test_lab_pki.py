"""The lab PKI (tlslab.lab.pki): every kind gets exactly the diagnosis code it is made
for from our verifier, and ``openssl verify`` agrees where it checks the same thing.

``openssl verify`` runs the way a TLS client at Debian's SECLEVEL=2 judges a server:
``-auth_level 2`` (without it, OpenSSL's verify command checks neither key sizes nor
digests: the RSA-1024 and SHA-1 leaves pass), ``-purpose sslserver`` (otherwise the EKU
is not looked at), ``-verify_hostname`` and ``-x509_strict`` (RFC 5280 profile checks).
Two kinds are *meant* to differ: OpenSSL still matches the CN when there is no
subjectAltName (no-san passes) and its sslserver purpose accepts keyEncipherment alone
(wrong-key-usage passes); both tests pin that, so a change in OpenSSL shows up here.
"""
from __future__ import annotations

import datetime
import os
import re
import shutil
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from conftest import run_bounded
from tlslab.lab.pki import CERT_KINDS, DEFAULT_AIA_URL, KEY_TYPES, make_pki
from tlslab.proto.certificates import verify_client_chain, verify_server_chain

NAMES = ("localhost", "127.0.0.1", "::1")

#: kind -> the code verify_server_chain must raise (None: it must pass)
EXPECTED_CODE = {
    "ok": None,
    "expiring-soon": None,
    "expired": "expired",
    "not-yet-valid": "not-yet-valid",
    "wrong-host": "hostname-mismatch",
    "no-san": "no-san",
    "self-signed": "self-signed",
    "untrusted-root": "untrusted-root",
    "missing-intermediate": "missing-intermediate",
    "sha1": "sha1-signature",
    "rsa1024": "weak-key",
    "wrong-eku": "wrong-key-usage",
    "wrong-key-usage": "wrong-key-usage",
}

#: kind -> OpenSSL's X509_V_ERR number (0 = verified), with the flags in _openssl_verify
OPENSSL_EXPECTED = {
    "ok": 0,
    "expiring-soon": 0,
    "expired": 10,                # certificate has expired
    "not-yet-valid": 9,           # certificate is not yet valid
    "wrong-host": 62,             # hostname mismatch
    "no-san": 0,                  # differs on purpose: OpenSSL falls back to the CN
    "self-signed": 18,            # self-signed certificate (depth 0)
    "untrusted-root": 20,         # unable to get local issuer certificate (depth 1)
    "missing-intermediate": 20,   # unable to get local issuer certificate (depth 0)
    "sha1": 68,                   # CA signature digest algorithm too weak
    "rsa1024": 66,                # EE certificate key too weak
    "wrong-eku": 26,              # unsuitable certificate purpose
    "wrong-key-usage": 0,         # differs on purpose: sslserver accepts keyEncipherment
    "client": 0,                  # with -purpose sslclient against client_ca
}


@pytest.fixture(scope="module")
def pki():
    return make_pki(names=NAMES)


@pytest.fixture(scope="module")
def written(pki, tmp_path_factory):
    base = tmp_path_factory.mktemp("lab-pki")
    return {kind: pki.server(kind).write(base / kind) for kind in CERT_KINDS}


def _verdict(bundle, name, now, trust=None, chain=None):
    try:
        verify_server_chain(chain or bundle.chain, name, trust or bundle.trust, now)
    except Exception as exc:  # the typed errors carry .code
        return getattr(exc, "code", f"no code: {type(exc).__name__}: {exc}")
    return None


def test_kinds_are_described():
    assert set(CERT_KINDS) == set(EXPECTED_CODE) | {"client"}
    for kind, text in CERT_KINDS.items():
        assert text and "\n" not in text and len(text) < 120, kind


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", sorted(EXPECTED_CODE))
def test_verifier_code(pki, kind, name):
    assert _verdict(pki.server(kind), name, pki.now) == EXPECTED_CODE[kind]


@pytest.mark.parametrize("kind", ["expired", "not-yet-valid"])
def test_time_kinds_break_only_time(pki, kind):
    """At a moment inside its validity period the same chain passes."""
    leaf = pki.server(kind).leaf
    inside = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    assert _verdict(pki.server(kind), "localhost", inside) is None


def test_validity_windows(pki):
    day = datetime.timedelta(days=1)
    assert pki.server("expired").leaf.not_valid_after_utc == pki.now - 10 * day
    assert pki.server("not-yet-valid").leaf.not_valid_before_utc == pki.now + 10 * day
    soon = pki.server("expiring-soon").leaf
    assert soon.not_valid_after_utc == pki.now + 10 * day
    assert soon.not_valid_before_utc < pki.now
    assert pki.server("ok").leaf.not_valid_after_utc - pki.now > 30 * day


def test_ok_profile(pki):
    ok = pki.server("ok")
    leaf, inter = ok.chain
    assert inter == pki.intermediate and ok.trust == [pki.root]
    assert leaf.issuer == inter.subject and inter.issuer == pki.root.subject
    ext = leaf.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ext.get_extension_for_class(x509.KeyUsage).critical
    assert ext.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki == ski
    for ca in (pki.root, pki.intermediate):
        assert isinstance(ca.public_key(), rsa.RSAPublicKey) and ca.public_key().key_size == 2048
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert pki.intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_key_types(key_type):
    pki = make_pki(key_type=key_type)
    ok = pki.server("ok")
    want = {"ecdsa-p256": (ec.EllipticCurvePublicKey, "secp256r1"),
            "ecdsa-p521": (ec.EllipticCurvePublicKey, "secp521r1"),
            "rsa2048": (rsa.RSAPublicKey, None), "ed25519": (ed25519.Ed25519PublicKey, None)}[key_type]
    assert isinstance(ok.leaf.public_key(), want[0])
    if want[1]:
        assert ok.leaf.public_key().curve.name == want[1]
    assert _verdict(ok, "localhost", pki.now) is None
    assert _verdict(pki.server("wrong-host"), "localhost", pki.now) == "hostname-mismatch"


def test_bad_arguments():
    with pytest.raises(ValueError, match="key type"):
        make_pki(key_type="dsa")
    with pytest.raises(ValueError, match="name"):
        make_pki(names=())
    with pytest.raises(ValueError, match="kind"):
        make_pki().server("nope")


def test_wrong_host_names(pki):
    san = pki.server("wrong-host").leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.net", "other.test"]
    assert not san.get_values_for_type(x509.IPAddress)
    assert _verdict(pki.server("wrong-host"), "other.test", pki.now) is None


def test_no_san_has_the_name_in_cn(pki):
    leaf = pki.server("no-san").leaf
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "localhost"


def test_self_signed_is_not_a_ca(pki):
    b = pki.server("self-signed")
    assert b.chain == [b.leaf] and b.leaf.issuer == b.leaf.subject
    b.leaf.verify_directly_issued_by(b.leaf)
    assert b.leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert b.trust == [pki.root]


def test_untrusted_root_is_complete(pki):
    """Only the trust is wrong: given its own root, the chain verifies."""
    b = pki.server("untrusted-root")
    leaf, inter, root = b.issued_path
    assert b.chain == [leaf, inter] and root.subject != pki.root.subject
    assert b.trust == [pki.root]
    assert _verdict(b, "localhost", pki.now, trust=[root]) is None


def test_missing_intermediate_aia(pki):
    b = pki.server("missing-intermediate")
    assert b.chain == [b.leaf]
    aia = b.leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert not aia.critical
    urls = [d.access_location.value for d in aia.value
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]
    assert urls == [DEFAULT_AIA_URL] == [b.aia_url]
    # what the URL should serve completes the chain
    fetched = x509.load_der_x509_certificate(b.intermediate_der)
    assert fetched == pki.intermediate and b.intermediate_der == pki.intermediate_der
    assert _verdict(b, "localhost", pki.now, chain=[b.leaf, fetched]) is None
    # the other kinds carry no AIA
    with pytest.raises(x509.ExtensionNotFound):
        pki.server("ok").leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def test_aia_url_settable():
    pki = make_pki(aia_url="http://127.0.0.1:8080/a.der")

    def url(bundle):
        return bundle.leaf.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess).value[0].access_location.value

    assert url(pki.server("missing-intermediate")) == "http://127.0.0.1:8080/a.der"
    other = pki.server("missing-intermediate", aia_url="http://127.0.0.1:9/b.der")
    assert url(other) == "http://127.0.0.1:9/b.der" == other.aia_url


def test_sha1_signature_is_real(pki):
    """The hand-built SHA-1 certificate is well formed and really signed by the intermediate."""
    leaf = pki.server("sha1").leaf
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA1)
    assert leaf.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA1
    pki.intermediate.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                                         padding.PKCS1v15(), hashes.SHA1())
    # the TBS copy of the algorithm (RFC 5280 §4.1.2.3) was changed too
    assert bytes.fromhex("06092a864886f70d010105") in leaf.tbs_certificate_bytes
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_key_kinds(pki):
    assert pki.server("rsa1024").leaf.public_key().key_size == 1024
    ku_leaf = pki.server("wrong-key-usage").leaf
    assert isinstance(ku_leaf.public_key(), ec.EllipticCurvePublicKey)
    ku = ku_leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_encipherment and not ku.digital_signature
    eku = pki.server("wrong-eku").leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_client_certificate(pki):
    c = pki.server("client")
    assert c.client_ca == pki.client_ca == [pki.root]
    assert c.chain[1] == pki.intermediate
    verify_client_chain(c.chain, c.client_ca, pki.now)
    # a server certificate is no client certificate, and the other way round
    with pytest.raises(Exception) as info:
        verify_client_chain(pki.server("ok").chain, pki.client_ca, pki.now)
    assert info.value.code == "wrong-key-usage"
    assert _verdict(c, None, pki.now) == "wrong-key-usage"


def test_cached_and_fresh(pki):
    assert pki.server("ok") is pki.server("ok")
    other = make_pki()
    assert other.root.subject != pki.root.subject
    assert _verdict(other.server("ok"), "localhost", pki.now, trust=[pki.root]) == "untrusted-root"


def test_write(pki, tmp_path):
    b = pki.server("ok")
    files = b.write(tmp_path / "ok")
    assert stat.S_IMODE(os.stat(files["key"]).st_mode) == 0o600
    chain = x509.load_pem_x509_certificates(open(files["chain"], "rb").read())
    assert chain == b.chain
    assert x509.load_pem_x509_certificates(open(files["intermediate"], "rb").read()) == b.chain[1:]
    assert x509.load_pem_x509_certificates(open(files["leaf"], "rb").read()) == [b.leaf]
    assert x509.load_pem_x509_certificates(open(files["ca"], "rb").read()) == [pki.root]
    key = serialization.load_pem_private_key(open(files["key"], "rb").read(), None)
    assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == b.leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # an existing, too open key file is tightened
    os.chmod(files["key"], 0o644)
    b.write(tmp_path / "ok")
    assert stat.S_IMODE(os.stat(files["key"]).st_mode) == 0o600
    missing = pki.server("missing-intermediate").write(tmp_path / "mi")
    assert "intermediate" not in missing
    assert open(missing["intermediate_der"], "rb").read() == pki.intermediate_der


# --------------------------------------------------------------------------- openssl verify

def _openssl_verify(files: dict, kind: str, *, auth_level: bool = True) -> tuple[int, str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("peer missing: `openssl` is not on PATH (Debian package openssl)")
    cmd = [openssl, "verify", "-x509_strict"]
    if auth_level:
        cmd += ["-auth_level", "2"]
    if kind == "client":
        cmd += ["-purpose", "sslclient", "-CAfile", files["client_ca"]]
    else:
        cmd += ["-purpose", "sslserver", "-verify_hostname", "localhost", "-CAfile", files["ca"]]
    if "intermediate" in files:
        cmd += ["-untrusted", files["intermediate"]]
    cmd.append(files["leaf"])
    rc, out, err = run_bounded(cmd, timeout=20)
    text = out + err
    if rc == 0:
        assert text.strip().endswith(": OK"), text
        return 0, text
    m = re.search(r"^error (\d+) at \d+ depth lookup", text, re.M)
    assert m, text
    return int(m.group(1)), text


@pytest.mark.parametrize("kind", sorted(CERT_KINDS))
def test_openssl_agrees(written, kind):
    code, text = _openssl_verify(written[kind], kind)
    assert code == OPENSSL_EXPECTED[kind], text
    if kind not in ("no-san", "wrong-key-usage", "client"):
        # same verdict as ours: pass exactly when we pass
        assert (code == 0) == (EXPECTED_CODE[kind] is None)


@pytest.mark.parametrize("kind", ["sha1", "rsa1024"])
def test_openssl_verify_without_auth_level_is_lax(written, kind):
    """Why -auth_level 2 is passed: the bare `openssl verify` accepts both."""
    code, text = _openssl_verify(written[kind], kind, auth_level=False)
    assert code == 0, text


def test_openssl_completes_missing_intermediate(written, tmp_path):
    """With the intermediate the AIA URL would serve, OpenSSL verifies the leaf."""
    files = dict(written["missing-intermediate"])
    pem = x509.load_der_x509_certificate(open(files["intermediate_der"], "rb").read()).public_bytes(
        serialization.Encoding.PEM)
    (tmp_path / "fetched.pem").write_bytes(pem)
    files["intermediate"] = str(tmp_path / "fetched.pem")
    assert _openssl_verify(files, "missing-intermediate")[0] == 0


@pytest.mark.parametrize("key_type", ["rsa2048", "ed25519", "ecdsa-p521"])
def test_openssl_accepts_other_key_types(key_type, tmp_path):
    files = make_pki(key_type=key_type).server("ok").write(tmp_path)
    code, text = _openssl_verify(files, "ok")
    assert code == 0, text
