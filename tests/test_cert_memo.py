"""The success-path memo of tlslab.proto.certificates (``_STATIC_OK``).

A chain that passed once is not parsed and checked by us again, but every part those
checks depend on (the chain's bytes, the trust list, the name, the purpose) is in the
key, and the library validates every chain again with the time it is given.  Each test
first makes a chain known good, then changes one input and expects the verdict that
input deserves.
"""
from __future__ import annotations

import datetime
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlslab.proto import certificates
from tlslab.proto.certificates import verify_client_chain, verify_server_chain
from tlslab.proto.errors import BadCertificate, CertificateExpired, UnknownCA, UnsupportedCertificate
from tlslab.workbench.certgen import make_throwaway_chain

NOW = datetime.datetime(2026, 6, 1, 12, tzinfo=datetime.timezone.utc)
DER = serialization.Encoding.DER


@pytest.fixture
def pki():
    chain, _key, ca = make_throwaway_chain(("localhost", "a.test", "127.0.0.1"), now=NOW)
    return chain, ca, [c.public_bytes(DER) for c in chain]


def _fresh(ders):
    # as a connection has them: newly parsed objects from the bytes of the message
    return [x509.load_der_x509_certificate(d) for d in ders]


@pytest.fixture
def calls(monkeypatch):
    """How often the static checks and the library run."""
    counts = {"parse": 0, "library": 0}
    check_parsable, library_verify = certificates._check_parsable, certificates._library_verify

    def counted_parse(*a, **k):
        counts["parse"] += 1
        return check_parsable(*a, **k)

    def counted_library(*a, **k):
        counts["library"] += 1
        return library_verify(*a, **k)

    monkeypatch.setattr(certificates, "_check_parsable", counted_parse)
    monkeypatch.setattr(certificates, "_library_verify", counted_library)
    return counts


def test_known_chain_skips_static_work_but_not_the_library(pki, calls):
    _chain, ca, ders = pki
    for _ in range(3):
        path = verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)
        assert path[-1] is ca
    assert calls == {"parse": 1, "library": 3}
    # without the bytes the key is the same (the certificates are encoded again)
    verify_server_chain(_fresh(ders), "localhost", [ca], NOW)
    assert calls == {"parse": 1, "library": 4}


@pytest.mark.parametrize(
    "when, code",
    [(NOW + datetime.timedelta(days=31), "expired"), (NOW - datetime.timedelta(hours=2), "not-yet-valid")],
)
def test_a_changed_time_is_validated_again(pki, calls, when, code):
    _chain, ca, ders = pki
    verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)
    with pytest.raises(CertificateExpired) as ei:
        verify_server_chain(_fresh(ders), "localhost", [ca], when, ders=ders)
    assert ei.value.code == code
    # and the memo still serves the right time afterwards
    assert verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)[-1] is ca


def test_a_changed_name_is_checked_again(pki, calls):
    _chain, ca, ders = pki
    verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain(_fresh(ders), "other.test", [ca], NOW, ders=ders)
    assert ei.value.code == "hostname-mismatch"
    with pytest.raises(BadCertificate) as ei:
        verify_server_chain(_fresh(ders), "127.0.0.2", [ca], NOW, ders=ders)
    assert ei.value.code == "hostname-mismatch"
    for name in ("a.test", "127.0.0.1", None, None):  # None: path only, name from the SAN
        assert verify_server_chain(_fresh(ders), name, [ca], NOW, ders=ders)[-1] is ca


def test_a_changed_trust_list_is_a_new_context(pki, calls):
    chain, ca, ders = pki
    verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)
    # the same anchors in a new list (as load_trust_store returns them): still known
    verify_server_chain(_fresh(ders), "localhost", list([ca]), NOW, ders=ders)
    assert calls["parse"] == 1
    _, _, other_ca = make_throwaway_chain(now=NOW)
    with pytest.raises(UnknownCA):
        verify_server_chain(_fresh(ders), "localhost", [other_ca], NOW, ders=ders)
    # a CA with the same name but another key (re-keyed, or a look-alike)
    key = ec.generate_private_key(ec.SECP256R1())
    lookalike = (
        x509.CertificateBuilder()
        .subject_name(ca.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.not_valid_before_utc)
        .not_valid_after(ca.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(UnknownCA) as ei:
        verify_server_chain(_fresh(ders), "localhost", [lookalike], NOW, ders=ders)
    assert ei.value.code == "untrusted-root"
    for _ in range(2):  # no anchors at all (the second time from a cached context)
        with pytest.raises(UnknownCA) as ei:
            verify_server_chain(_fresh(ders), "localhost", [], NOW, ders=ders)
        assert ei.value.code == "missing-intermediate"
    # more anchors make another context: checked again, and still good
    before = calls["parse"]
    assert verify_server_chain(_fresh(ders), "localhost", [other_ca, ca], NOW, ders=ders)[-1] is ca
    assert calls["parse"] > before
    assert verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)[-1] is ca


def test_a_pinned_leaf_in_a_changed_trust_list_is_not_taken_for_the_known_path(pki):
    chain, ca, ders = pki
    assert len(verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)) == 2
    # with the leaf itself an anchor, the path is the leaf alone (our checks decide;
    # the library would build past it): twice, the second time from a cached context
    for _ in range(2):
        path = verify_server_chain(_fresh(ders), "localhost", [ca, chain[0]], NOW, ders=ders)
        assert path == [chain[0]]


def test_a_server_chain_known_good_is_not_good_for_a_client(pki, calls):
    _chain, ca, ders = pki
    verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)
    verify_server_chain(_fresh(ders), None, [ca], NOW, ders=ders)
    assert calls["parse"] == 2  # the name is part of the key, even when None
    with pytest.raises(UnsupportedCertificate) as ei:  # its extendedKeyUsage is serverAuth
        verify_client_chain(_fresh(ders), [ca], NOW, ders=ders)
    assert ei.value.code == "wrong-key-usage"
    assert calls["parse"] == 3  # and so is the purpose


_START, _END = NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=30)


def _ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "memo test CA")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_START).not_valid_after(_END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca, ca_key, eku, names=(), digital_signature=True):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "memo leaf")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_START).not_valid_after(_END)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False, signs=digital_signature), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(cert_sign: bool, signs: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        signs and not cert_sign, False, not signs, False, False, cert_sign, cert_sign, False, False
    )


def _client_chain():
    """A CA and a client certificate (clientAuth, no subjectAltName) under it."""
    ca, ca_key = _ca()
    return _leaf(ca, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH), ca


def test_another_chain_for_the_same_name_is_checked_on_its_own():
    ca, ca_key = _ca()
    good = _leaf(ca, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, ["memo.test"])
    # keyUsage without digitalSignature: the library accepts it, our check does not
    bad = _leaf(ca, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, ["memo.test"], digital_signature=False)
    good_ders, bad_ders = [good.public_bytes(DER)], [bad.public_bytes(DER)]
    for _ in range(2):
        assert verify_server_chain(_fresh(good_ders), "memo.test", [ca], NOW, ders=good_ders)[-1] is ca
        with pytest.raises(UnsupportedCertificate) as ei:
            verify_server_chain(_fresh(bad_ders), "memo.test", [ca], NOW, ders=bad_ders)
        assert ei.value.code == "wrong-key-usage"


def test_client_chains_are_remembered_and_validated_each_time(calls):
    leaf, ca = _client_chain()
    ders = [leaf.public_bytes(DER)]
    for _ in range(2):
        assert verify_client_chain(_fresh(ders), [ca], NOW, ders=ders)[-1] is ca
    assert calls == {"parse": 1, "library": 2}
    with pytest.raises(CertificateExpired):
        verify_client_chain(_fresh(ders), [ca], NOW + datetime.timedelta(days=31), ders=ders)
    # known good as a client chain says nothing about it as a server chain
    with pytest.raises(UnsupportedCertificate) as ei:
        verify_server_chain(_fresh(ders), None, [ca], NOW, ders=ders)
    assert ei.value.code == "wrong-key-usage"


def test_the_memo_is_bounded(pki, calls, monkeypatch):
    chain, ca, ders = pki
    monkeypatch.setattr(certificates, "_STATIC_OK_SIZE", 2)
    monkeypatch.setattr(certificates, "_STATIC_OK", {})
    names = ["localhost", "a.test", "127.0.0.1"]
    for name in names * 2:
        verify_server_chain(_fresh(ders), name, [ca], NOW, ders=ders)
        assert len(certificates._STATIC_OK) <= 2
    # each name was evicted before it came back: checked every time, never wrongly
    assert calls == {"parse": 6, "library": 6}


def test_threads_get_their_own_verdicts(pki):
    _chain, ca, ders = pki
    expired = NOW + datetime.timedelta(days=40)
    errors: list[str] = []

    def worker(i: int) -> None:
        for j in range(30):
            case = (i + j) % 3
            try:
                if case == 0:
                    verify_server_chain(_fresh(ders), "localhost", [ca], NOW, ders=ders)
                elif case == 1:
                    verify_server_chain(_fresh(ders), "localhost", [ca], expired, ders=ders)
                    errors.append("expired chain accepted")
                else:
                    verify_server_chain(_fresh(ders), "other.test", [ca], NOW, ders=ders)
                    errors.append("wrong name accepted")
            except (CertificateExpired, BadCertificate) as e:
                if case == 0 or e.code != ("expired" if case == 1 else "hostname-mismatch"):
                    errors.append(f"case {case}: {e.code}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
