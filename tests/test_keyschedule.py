"""Known-answer tests for the TLS 1.3 key schedule (RFC 8446 §7.1) against RFC 8448 and
The Illustrated TLS 1.3 Connection: every secret is recomputed from the handshake
messages alone, then compared with the published value."""
from __future__ import annotations

import hashlib
import io
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tlslab.proto.keylog import LABELS, KeyLog, keylog_from_env
from tlslab.proto.keyschedule import (SUITES, KeySchedule, Transcript, derive_secret,
                                      hash_bytes, hkdf_expand_label, hkdf_extract,
                                      traffic_key_iv)

from conftest import vector_path as _vector_path


def load(name: str) -> dict:
    return json.loads(_vector_path(name).read_text())


def hx(value: str) -> bytes:
    return bytes.fromhex(value)


# Handshake flows of the three RFC 8448 traces: (ClientHello part, server flight before
# Finished, client messages before Finished).  HRR: the transcript restarts after CH1.
FLOWS = {
    "rfc8448_simple_1rtt.json": (["client_hello"], ["encrypted_extensions", "server_certificate",
                                                    "server_certificate_verify"], []),
    "rfc8448_hello_retry_request.json": (
        ["client_hello_1", "hello_retry_request", "client_hello_2"],
        ["encrypted_extensions", "server_certificate", "server_certificate_verify"], []),
    "rfc8448_resumed_0rtt.json": (["client_hello"], ["encrypted_extensions"],
                                  ["end_of_early_data"]),
}

WRITE_KEYS = {
    "client_handshake": "client_handshake_traffic_secret",
    "server_handshake": "server_handshake_traffic_secret",
    "client_application": "client_application_traffic_secret_0",
    "server_application": "server_application_traffic_secret_0",
    "client_early_application": "client_early_traffic_secret",
}


@pytest.mark.parametrize("filename", sorted(FLOWS))
def test_rfc8448_schedule_from_messages(filename):
    vec = load(filename)
    n = {k: hx(v) for k, v in vec["named"].items()}
    ch_part, server_flight, client_flight = FLOWS[filename]
    suite = SUITES[0x1301]
    seen: dict[str, bytes] = {}
    ks = KeySchedule(suite)
    ks.on_secret = seen.__setitem__

    psk = n.get("psk")
    assert ks.extract_early(psk) == n["early_secret"]
    if psk is not None:
        # §4.2.11.2: the binder is a Finished-style HMAC over the truncated ClientHello.
        assert ks.binder_key(resumption=True) == n["binder_key"]
        prefix_hash = hash_bytes("sha256", n["client_hello_prefix"])
        assert prefix_hash == n["binder_transcript_hash"]
        assert ks.finished_key(n["binder_key"]) == n["binder_finished_key"]
        assert ks.verify_data(n["binder_key"], prefix_hash) == n["binder"]
        assert n["client_hello"].endswith(n["binder"])
        ch_hash = hash_bytes("sha256", n["client_hello"])
        assert ch_hash == n["transcript_hash_for_client_early_traffic_secret"]
        assert ch_hash == n["transcript_hash_for_early_exporter_master_secret"]
        assert ks.early_traffic(ch_hash) == n["client_early_traffic_secret"]
        assert ks.secrets["early_exporter_master_secret"] == n["early_exporter_master_secret"]

    empty = hash_bytes("sha256", b"")
    assert derive_secret("sha256", n["early_secret"], b"derived", empty) == \
        n["derived_secret_for_handshake"]
    assert ks.extract_handshake(n["ecdhe_shared_secret"]) == n["handshake_secret"]

    t = Transcript("sha256")
    for name in ch_part:
        t.update(n[name])
        if name == "client_hello_1":
            t.restart_for_hrr()
    t.update(n["server_hello"])
    th = t.digest()
    assert th == n["transcript_hash_for_client_handshake_traffic_secret"]
    assert th == n["transcript_hash_for_server_handshake_traffic_secret"]
    c_hs, s_hs = ks.handshake_traffic(th)
    assert (c_hs, s_hs) == (n["client_handshake_traffic_secret"],
                            n["server_handshake_traffic_secret"])

    for name in server_flight:
        t.update(n[name])
    assert ks.finished_key(s_hs) == n["server_finished_key"]
    verify = ks.verify_data(s_hs, t.digest())
    assert verify == n["server_finished_verify_data"]
    assert n["server_finished"] == b"\x14\x00\x00" + bytes((len(verify),)) + verify
    t.update(n["server_finished"])

    assert derive_secret("sha256", n["handshake_secret"], b"derived", empty) == \
        n["derived_secret_for_master"]
    assert ks.extract_master() == n["master_secret"]
    th = t.digest()
    assert th == n["transcript_hash_for_client_application_traffic_secret_0"]
    assert th == n["transcript_hash_for_exporter_master_secret"]
    assert ks.application_traffic(th) == (n["client_application_traffic_secret_0"],
                                          n["server_application_traffic_secret_0"])
    assert ks.secrets["exporter_master_secret"] == n["exporter_master_secret"]

    for name in client_flight:
        t.update(n[name])
    assert ks.finished_key(c_hs) == n["client_finished_key"]
    verify = ks.verify_data(c_hs, t.digest())
    assert verify == n["client_finished_verify_data"]
    assert n["client_finished"] == b"\x14\x00\x00\x20" + verify
    t.update(n["client_finished"])
    th = t.digest()
    assert th == n["transcript_hash_for_resumption_master_secret"]
    assert ks.resumption_master(th) == n["resumption_master_secret"]

    for prefix, secret_name in WRITE_KEYS.items():
        if f"{prefix}_write_key" in n:
            assert ks.traffic_key_iv(n[secret_name]) == (n[f"{prefix}_write_key"],
                                                         n[f"{prefix}_write_iv"]), prefix

    if "ticket_nonce" in n:
        assert ks.resumption_psk(n["resumption_master_secret"], n["ticket_nonce"]) == \
            n["resumption_psk"]

    # Every stored secret went through on_secret, and every RFC-named value in the
    # vector that the schedule derives is there.
    assert seen == ks.secrets
    for name, value in ks.secrets.items():
        if name in n:
            assert value == n[name], name


def test_resumed_psk_comes_from_simple_trace():
    simple = load("rfc8448_simple_1rtt.json")["named"]
    resumed = load("rfc8448_resumed_0rtt.json")["named"]
    assert simple["resumption_psk"] == resumed["psk"]


def _illustrated_messages(vec):
    recs = vec["records"]
    ch, sh = hx(recs[0]["record"])[5:], hx(recs[1]["record"])[5:]
    inner = {r["index"]: hx(r["inner_plaintext"])[:-1] for r in recs if r["protected"]}
    return ch, sh, [inner[i] for i in (3, 4, 5)], inner[6], inner[8]


def test_illustrated_tls13_sha384_schedule():
    vec = load("illustrated_tls13.json")
    n = {k: hx(v) for k, v in vec["named"].items() if not k.startswith("server_rsa")}
    ch, sh, flight, sfin, cfin = _illustrated_messages(vec)
    suite = SUITES[0x1302]
    assert suite.hash_name == "sha384"
    ks = KeySchedule(suite)
    ks.extract_early()
    assert ks.extract_handshake(n["ecdhe_shared_secret"]) == n["handshake_secret"]
    t = Transcript("sha384", ch)
    t.update(sh)
    assert t.digest() == n["hello_hash"]
    c_hs, s_hs = ks.handshake_traffic(t.digest())
    assert c_hs == n["client_handshake_traffic_secret"]
    assert s_hs == n["server_handshake_traffic_secret"]
    assert traffic_key_iv(suite, s_hs) == (n["server_handshake_key"], n["server_handshake_iv"])
    assert traffic_key_iv(suite, c_hs) == (n["client_handshake_key"], n["client_handshake_iv"])
    for m in flight:
        t.update(m)
    assert ks.verify_data(s_hs, t.digest()) == n["server_finished_verify_data"]
    assert sfin[4:] == n["server_finished_verify_data"]
    t.update(sfin)
    assert t.digest() == n["handshake_hash"]
    ks.extract_master()
    c_ap, s_ap = ks.application_traffic(t.digest())
    assert c_ap == n["client_application_traffic_secret_0"]
    assert s_ap == n["server_application_traffic_secret_0"]
    assert ks.secrets["exporter_master_secret"] == n["exporter_master_secret"]
    assert ks.verify_data(c_hs, t.digest()) == n["client_finished_verify_data"] == cfin[4:]
    assert traffic_key_iv(suite, s_ap) == (n["server_application_key"],
                                           n["server_application_iv"])
    assert traffic_key_iv(suite, c_ap) == (n["client_application_key"],
                                           n["client_application_iv"])

    # The NSS key log we write is the one recorded with the capture.
    out = io.StringIO()
    log = KeyLog(out)
    for name, secret in ks.secrets.items():
        log.write(name, n["client_random"], secret)
    assert sorted(out.getvalue().splitlines()) == sorted(vec["keylog_lines"])


def _expand_reference(hash_cls, secret, label, context, length):
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hash_cls(), length, info).derive(secret)


@pytest.mark.parametrize("hash_name,hash_cls", [("sha256", hashes.SHA256), ("sha384", hashes.SHA384)])
@pytest.mark.parametrize("length", [1, 12, 32, 48, 100, 255])
def test_hkdf_matches_cryptography(hash_name, hash_cls, length):
    secret = bytes(range(48))
    assert hkdf_expand_label(hash_name, secret, b"key", b"ctx", length) == \
        _expand_reference(hash_cls, secret, b"key", b"ctx", length)
    import hmac
    assert hkdf_extract(hash_name, b"", b"ikm") == hmac.new(bytes(hash_cls.digest_size), b"ikm",
                                                            hash_name).digest()


def test_transcript_digest_is_repeatable_and_hrr_shape():
    t = Transcript("sha256", b"abc")
    assert t.digest() == t.digest() == hashlib.sha256(b"abc").digest()
    t.update(b"def")
    assert t.digest() == hashlib.sha256(b"abcdef").digest()
    t.restart_for_hrr()
    assert t.digest() == hashlib.sha256(b"\xfe\x00\x00\x20" + hashlib.sha256(b"abcdef").digest()).digest()
    copy = t.copy()
    copy.update(b"x")
    assert copy.digest() != t.digest()


def test_key_update_and_exporter():
    suite = SUITES[0x1303]
    ks = KeySchedule(suite)
    ks.extract_handshake(bytes(32))
    ks.handshake_traffic(bytes(32))
    ks.extract_master()
    c0, s0 = ks.application_traffic(bytes(32))
    c1 = ks.update_application_traffic(client=True)
    assert c1 == ks.next_traffic_secret(c0) == _expand_reference(hashes.SHA256, c0, b"traffic upd", b"", 32)
    assert ks.secrets["client_application_traffic_secret_1"] == c1
    c2 = ks.update_application_traffic(client=True)
    assert ks.secrets["client_application_traffic_secret_2"] == c2 == ks.next_traffic_secret(c1)
    assert ks.update_application_traffic(client=False) == ks.next_traffic_secret(s0)
    # §7.5: no context and an empty context give the same value; labels separate outputs.
    assert ks.exporter(b"EXPERIMENTAL a", None, 32) == ks.exporter("EXPERIMENTAL a", b"", 32)
    assert ks.exporter(b"EXPERIMENTAL a", b"", 32) != ks.exporter(b"EXPERIMENTAL b", b"", 32)
    assert len(ks.exporter(b"EXPERIMENTAL a", b"ctx", 77)) == 77


def test_stage_order_is_enforced():
    from tlslab.proto.errors import InternalError

    ks = KeySchedule(SUITES[0x1301])
    with pytest.raises(InternalError):
        ks.extract_master()
    with pytest.raises(InternalError):
        ks.binder_key()


def test_keylog_file_and_env(tmp_path, monkeypatch):
    path = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    log = keylog_from_env()
    assert log is not None
    assert log.write("client_handshake_traffic_secret", b"\x01" * 32, b"\xaa\xbb")
    assert not log.write("handshake_secret", b"\x01" * 32, b"\xaa")
    assert log.write("CLIENT_RANDOM", b"\x02" * 32, b"\xcc")
    log.close()
    assert path.read_text().splitlines() == [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET " + "01" * 32 + " aabb",
        "CLIENT_RANDOM " + "02" * 32 + " cc",
    ]
    monkeypatch.delenv("SSLKEYLOGFILE")
    assert keylog_from_env() is None
    assert LABELS["server_application_traffic_secret_0"] == "SERVER_TRAFFIC_SECRET_0"
