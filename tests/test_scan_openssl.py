"""`tlslab scan` against openssl s_server configured by the test: the scan's answer must equal
the configuration (versions, suites and their order, groups, signature schemes, OCSP,
tickets, 0-RTT, ALPN, renegotiation, fallback SCSV)."""
from __future__ import annotations

import asyncio
import datetime
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tlslab.scan import enumerate as E
from tlslab.scan import features as F
from tlslab.scan.registry import TLS12, TLS13, suites
from tlslab.scan.target import ScanTarget


def _prober(port: int, limit: float = 30) -> E.Prober:
    return E.Prober(ScanTarget("127.0.0.1", port, server_name="localhost"), time.monotonic() + limit)


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def _code(name: str) -> int:
    return next(s.code for s in suites().values() if s.name == name)


SERVER_ORDER = ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
OPENSSL_NAMES = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-GCM-SHA256"]


def test_versions_follow_the_configuration(openssl_server):
    port = openssl_server("-no_tls1_3")
    accepted, answers = _run(E.protocols(_prober(port)))
    assert accepted == {"SSL 2.0": False, "SSL 3.0": False, "TLS 1.0": False, "TLS 1.1": False,
                        "TLS 1.2": True, "TLS 1.3": False}
    assert answers["TLS 1.3"].alert is not None or answers["TLS 1.3"].version == TLS12
    port = openssl_server("-tls1_3")
    accepted, _ = _run(E.protocols(_prober(port)))
    assert [k for k, v in accepted.items() if v] == ["TLS 1.3"]


def test_tls10_and_tls11_when_enabled(openssl_server):
    port = openssl_server("-cipher", "DEFAULT:@SECLEVEL=0", "-no_tls1_3")
    accepted, _ = _run(E.protocols(_prober(port)))
    assert accepted["TLS 1.0"] and accepted["TLS 1.1"] and accepted["TLS 1.2"]
    assert not accepted["TLS 1.3"] and not accepted["SSL 3.0"]


def test_suites_in_server_order(openssl_server):
    port = openssl_server("-serverpref", "-cipher", ":".join(OPENSSL_NAMES), "-no_tls1_3")
    res = _run(E.cipher_suites(_prober(port), TLS12))
    assert E.names("suite", res.accepted) == SERVER_ORDER
    assert res.server_order is True and E.names("suite", res.order) == SERVER_ORDER


def test_suites_in_client_order(openssl_server):
    port = openssl_server("-cipher", ":".join(OPENSSL_NAMES), "-no_tls1_3")
    res = _run(E.cipher_suites(_prober(port), TLS12))
    assert sorted(E.names("suite", res.accepted)) == sorted(SERVER_ORDER)
    assert res.server_order is False and res.order == []


def test_tls13_suites_and_order(openssl_server):
    port = openssl_server("-tls1_3", "-serverpref", "-ciphersuites",
                          "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")
    res = _run(E.cipher_suites(_prober(port), TLS13))
    assert E.names("suite", res.accepted) == ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]
    assert res.server_order is True


def test_groups_and_their_order(openssl_server):
    port = openssl_server("-groups", "secp384r1:x25519:secp521r1")
    p = _prober(port)
    g13 = _run(E.groups13(p, [0x1301, 0x1302, 0x1303]))
    assert E.names("group", g13.accepted) == ["secp384r1", "x25519", "secp521r1"]
    assert g13.server_order is True
    res = _run(E.cipher_suites(p, TLS12))
    ecdhe, _ = E.ecdhe_and_dhe(res.accepted)
    g12 = _run(E.groups12(p, TLS12, ecdhe))
    assert sorted(E.names("group", g12.accepted)) == ["secp384r1", "secp521r1", "x25519"]


def test_dh_parameter_size(openssl_server, tmp_path):
    port = openssl_server("-cipher", "DHE-RSA-AES128-GCM-SHA256", "-no_tls1_3", key_type="rsa")
    p = _prober(port)
    res = _run(E.cipher_suites(p, TLS12))
    assert E.names("suite", res.accepted) == ["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]
    dh = _run(E.dh_parameters(p, TLS12, res.accepted))
    assert dh is not None and dh["bits"] >= 2048


def test_tls12_signature_schemes(openssl_server):
    port = openssl_server("-no_tls1_3", "-sigalgs", "ECDSA+SHA384:ECDSA+SHA256")
    p = _prober(port)
    res = _run(E.cipher_suites(p, TLS12))
    s12 = _run(E.schemes12(p, TLS12, res.accepted))
    # OpenSSL signs with the client's first acceptable scheme (no server preference here)
    assert sorted(E.names("scheme", s12.accepted)) == ["ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384"]
    assert s12.server_order is False


def test_alpn_accepted_in_order(openssl_server):
    port = openssl_server("-alpn", "http/1.1,h2", "-no_tls1_3")
    p = _prober(port)
    res = _run(E.cipher_suites(p, TLS12))
    out = _run(F.alpn(p, time.monotonic() + 30, res.accepted, False))
    assert sorted(out["accepted"]) == ["h2", "http/1.1"]


def test_alpn_in_tls13_needs_handshakes(openssl_server):
    port = openssl_server("-alpn", "h2", "-tls1_3")
    out = _run(F.alpn(_prober(port), time.monotonic() + 30, [], True))
    assert out["accepted"] == ["h2"]


def test_tickets_and_no_ticket(openssl_server):
    port = openssl_server("-no_tls1_3")
    out = _run(F.resumption12(_prober(port), time.monotonic() + 30))
    assert out["tickets"] is True and out["ticket_lifetime_hint"] == 7200
    port = openssl_server("-no_tls1_3", "-no_ticket")
    out = _run(F.resumption12(_prober(port), time.monotonic() + 30))
    assert out["tickets"] is False
    assert out["session_id"] is True  # -no_ticket: OpenSSL's session cache takes over


def test_tls13_psk_and_early_data(openssl_server):
    port = openssl_server("-tls1_3", "-early_data", www=False)  # (-early_data excludes -www)
    out = _run(F.resumption13(_prober(port), time.monotonic() + 30))
    assert out["psk"] is True and out["tickets_sent"] >= 1
    assert out["early_data"]["max_early_data_size"] > 0
    assert out["early_data"]["accepted"] is True
    port = openssl_server("-tls1_3")
    out = _run(F.resumption13(_prober(port), time.monotonic() + 30))
    assert out["psk"] is True and out["early_data"] == {"accepted": False, "max_early_data_size": 0}


def test_fallback_scsv(openssl_server):
    port = openssl_server()
    out = _run(F.fallback_scsv(_prober(port), [TLS12, TLS13]))
    assert out["supported"] is True and "alert 86" in out["evidence"]
    out = _run(F.fallback_scsv(_prober(port), [TLS13]))
    assert out["supported"] is None


def test_tls12_extensions(openssl_server):
    port = openssl_server("-no_tls1_3", key_type="rsa")
    p = _prober(port)
    res = _run(E.cipher_suites(p, TLS12))
    ext = _run(F.tls12_extensions(p, res.accepted))
    assert ext["secure_renegotiation"] is True and ext["extended_master_secret"] is True
    assert ext["encrypt_then_mac"] is True and ext["compression"] is False
    assert ext["ocsp_stapling"] is False


def _ocsp_response(certs_dir, tmp_path) -> str:
    leaf = x509.load_pem_x509_certificate((certs_dir / "ecdsa.pem").read_bytes())
    inter = x509.load_pem_x509_certificate((certs_dir / "intermediate.pem").read_bytes())
    key = serialization.load_pem_private_key((certs_dir / "intermediate.key").read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    der = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf, issuer=inter, algorithm=hashes.SHA256(), cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=now - datetime.timedelta(hours=1), next_update=now + datetime.timedelta(days=1),
        revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, inter).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER)
    path = tmp_path / "ocsp.der"
    path.write_bytes(der)
    return str(path)


def test_ocsp_stapling_in_tls12(openssl_server, certs_dir, tmp_path):
    port = openssl_server("-no_tls1_3", "-status_file", _ocsp_response(certs_dir, tmp_path))
    p = _prober(port)
    res = _run(E.cipher_suites(p, TLS12))
    ext = _run(F.tls12_extensions(p, res.accepted))
    assert ext["ocsp_stapling"] is True and len(ext["ocsp_response"]) > 100


def test_client_renegotiation(openssl_server):
    """OpenSSL 3 refuses a client's renegotiation by default (a no_renegotiation warning) and
    accepts it with -client_renegotiation (it answers with a ServerHello)."""
    port = openssl_server("-no_tls1_3")
    out = _run(F.client_renegotiation(_prober(port), time.monotonic() + 30))
    assert out["accepted"] is False and "no_renegotiation" in out["evidence"]
    port = openssl_server("-no_tls1_3", "-client_renegotiation")
    out = _run(F.client_renegotiation(_prober(port), time.monotonic() + 30))
    assert out["accepted"] is True and "ServerHello" in out["evidence"]


def test_legacy_renegotiation_still_announces_secure_renegotiation(openssl_server):
    """-legacy_renegotiation lets OpenSSL renegotiate with clients that lack RFC 5746; it
    still answers renegotiation_info, which is what the scan reports."""
    port = openssl_server("-no_tls1_3", "-legacy_renegotiation")
    p = _prober(port)
    res = _run(E.cipher_suites(p, TLS12))
    ext = _run(F.tls12_extensions(p, res.accepted))
    assert ext["secure_renegotiation"] is True


def test_unreachable_and_not_tls(tmp_path):
    import socket
    import threading
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    accepted, answers = _run(E.protocols(_prober(port)))
    assert not any(accepted.values()) and {a.kind for a in answers.values()} == {"refused"}

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def http():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            c.close()

    t = threading.Thread(target=http, daemon=True)
    t.start()
    try:
        accepted, answers = _run(E.protocols(_prober(srv.getsockname()[1])))
        assert not any(accepted.values())
        assert "not_tls" in {a.kind for a in answers.values()}
    finally:
        stop.set()
        t.join(2)
        srv.close()


def test_half_open_server_is_bounded():
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)  # accepts (the kernel does) and never answers
    try:
        target = ScanTarget("127.0.0.1", srv.getsockname()[1], timeout=0.5)
        start = time.monotonic()
        accepted, answers = _run(E.protocols(E.Prober(target, time.monotonic() + 10)))
        assert time.monotonic() - start < 3
        assert not any(accepted.values()) and {a.kind for a in answers.values()} == {"timeout"}
    finally:
        srv.close()
