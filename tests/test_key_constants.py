"""The key schedule's shortcuts (precomputed constants, prebuilt HkdfLabels, the HMAC
call it uses) against a plain RFC 8446 §7.1 schedule built from ``cryptography``'s HMAC
and HKDFExpand, for every hash and every TLS 1.3 suite: same secrets, same names, in
the same order (the trace and the key log depend on that order)."""
from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tlslab.proto import keyschedule as ksmod
from tlslab.proto.keyschedule import SUITES, KeySchedule, traffic_key_iv

HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def ref_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    mac = c_hmac.HMAC(salt or bytes(HASHES[hash_name].digest_size), HASHES[hash_name]())
    mac.update(ikm)
    return mac.finalize()


def ref_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes,
                     length: int) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(HASHES[hash_name](), length, info).derive(secret)


def ref_derive(hash_name: str, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    return ref_expand_label(hash_name, secret, label, transcript_hash,
                            HASHES[hash_name].digest_size)


def ref_schedule(hash_name: str, psk: bytes | None, shared: bytes | None,
                 th: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Every secret of one handshake, named and in the order KeySchedule reports them."""
    n = HASHES[hash_name].digest_size
    zeros = bytes(n)
    empty = hashlib.new(hash_name).digest()
    out = []
    early = ref_extract(hash_name, zeros, psk or zeros)
    out.append(("early_secret", early))
    if psk is not None:
        out.append(("binder_key", ref_derive(hash_name, early, b"res binder", empty)))
        out.append(("client_early_traffic_secret", ref_derive(hash_name, early, b"c e traffic", th["ch"])))
        out.append(("early_exporter_master_secret",
                    ref_derive(hash_name, early, b"e exp master", th["ch"])))
    hs = ref_extract(hash_name, ref_derive(hash_name, early, b"derived", empty), shared or zeros)
    out.append(("handshake_secret", hs))
    out.append(("client_handshake_traffic_secret", ref_derive(hash_name, hs, b"c hs traffic", th["sh"])))
    out.append(("server_handshake_traffic_secret", ref_derive(hash_name, hs, b"s hs traffic", th["sh"])))
    ms = ref_extract(hash_name, ref_derive(hash_name, hs, b"derived", empty), zeros)
    out.append(("master_secret", ms))
    out.append(("client_application_traffic_secret_0", ref_derive(hash_name, ms, b"c ap traffic", th["sf"])))
    out.append(("server_application_traffic_secret_0", ref_derive(hash_name, ms, b"s ap traffic", th["sf"])))
    out.append(("exporter_master_secret", ref_derive(hash_name, ms, b"exp master", th["sf"])))
    out.append(("resumption_master_secret", ref_derive(hash_name, ms, b"res master", th["cf"])))
    return out


def run_schedule(suite, psk, shared, th) -> tuple[KeySchedule, list[tuple[str, bytes]]]:
    reported: list[tuple[str, bytes]] = []
    ks = KeySchedule(suite, lambda name, secret: reported.append((name, secret)))
    if psk is not None:
        ks.extract_early(psk)
        ks.binder_key(resumption=True)
        ks.early_traffic(th["ch"])
    ks.extract_handshake(shared)  # without a PSK this extracts the early secret first
    ks.handshake_traffic(th["sh"])
    ks.extract_master()
    ks.application_traffic(th["sf"])
    ks.resumption_master(th["cf"])
    return ks, reported


def transcript_hashes(hash_name: str) -> dict[str, bytes]:
    return {k: hashlib.new(hash_name, k.encode()).digest() for k in ("ch", "sh", "sf", "cf")}


@pytest.mark.parametrize("hash_name", sorted(HASHES))
def test_no_psk_constants_equal_the_computed_values(hash_name):
    n = HASHES[hash_name].digest_size
    early, derived = ksmod._NO_PSK[hash_name]
    assert early == ref_extract(hash_name, bytes(n), bytes(n))
    assert derived == ref_derive(hash_name, early, b"derived", hashlib.new(hash_name).digest())


@pytest.mark.parametrize("hash_name", sorted(HASHES))
def test_prebuilt_labels_equal_the_encoded_hkdf_label(hash_name):
    n = HASHES[hash_name].digest_size
    secret = bytes(range(n))
    context = hashlib.new(hash_name, b"transcript").digest()
    assert set(ksmod._DERIVE_PREFIX[hash_name]) == set(ksmod._DERIVE_LABELS)
    for label, prefix in ksmod._DERIVE_PREFIX[hash_name].items():
        full = b"tls13 " + label
        assert prefix == n.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([n])
        assert ksmod.derive_secret(hash_name, secret, label, context) == \
            ref_derive(hash_name, secret, label, context)
    ks = KeySchedule(next(s for s in SUITES.values() if s.hash_name == hash_name)) \
        if any(s.hash_name == hash_name for s in SUITES.values()) else None
    if ks is not None:
        assert ks.finished_key(secret) == ref_expand_label(hash_name, secret, b"finished", b"", n)
        assert ks.next_traffic_secret(secret) == \
            ref_expand_label(hash_name, secret, b"traffic upd", b"", n)
        for label in ksmod._DERIVE_LABELS:
            assert ks._derive(secret, label, context) == ref_derive(hash_name, secret, label, context)
        # a context that is not Hash.length bytes, and a label outside the table, still work
        assert ks._derive(secret, b"c hs traffic", b"short") == \
            ref_derive(hash_name, secret, b"c hs traffic", b"short")
        assert ks._derive(secret, b"EXPORTER-x", context) == \
            ref_derive(hash_name, secret, b"EXPORTER-x", context)


@pytest.mark.parametrize("code", sorted(SUITES))
@pytest.mark.parametrize("psk", [None, b"\x07" * 32, b"\x00" * 48])
@pytest.mark.parametrize("shared", [None, bytes(range(32))])
def test_schedule_reports_the_reference_secrets_in_order(code, psk, shared):
    suite = SUITES[code]
    th = transcript_hashes(suite.hash_name)
    ks, reported = run_schedule(suite, psk, shared, th)
    expected = ref_schedule(suite.hash_name, psk, shared, th)
    assert [name for name, _ in reported] == [name for name, _ in expected]
    assert reported == expected
    assert ks.secrets == dict(expected)
    for name, secret in expected:
        if name.endswith(("_traffic_secret", "_traffic_secret_0")):
            key, iv = traffic_key_iv(suite, secret)
            assert key == ref_expand_label(suite.hash_name, secret, b"key", b"", suite.key_len)
            assert iv == ref_expand_label(suite.hash_name, secret, b"iv", b"", suite.iv_len)
    fin = ks.secrets["server_handshake_traffic_secret"]
    mac = c_hmac.HMAC(ref_expand_label(suite.hash_name, fin, b"finished", b"", suite.hash_len),
                      HASHES[suite.hash_name]())
    mac.update(th["sf"])
    assert ks.verify_data(fin, th["sf"]) == mac.finalize()


def test_a_psk_schedule_does_not_change_the_next_full_one():
    """The old code cached the "derived" secret lazily; a PSK schedule run first (or a
    schedule re-extracted without its PSK) must still give the no-PSK values."""
    suite = SUITES[0x1301]
    th = transcript_hashes("sha256")
    run_schedule(suite, b"\x01" * 32, bytes(32), th)
    _, reported = run_schedule(suite, None, bytes(32), th)
    assert reported == ref_schedule("sha256", None, bytes(32), th)
    ks = KeySchedule(suite)
    ks.extract_early(b"\x02" * 32)
    ks.extract_early(None)
    assert ks.extract_handshake(bytes(32)) == dict(ref_schedule("sha256", None, bytes(32), th))[
        "handshake_secret"]
