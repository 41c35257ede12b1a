"""`tlslab scan` against nginx, gnutls-serv and a JSSE server configured by the test: the
versions, suites and groups found must be exactly the configured ones."""
from __future__ import annotations

import asyncio
import time

import pytest

from tlslab.scan import enumerate as E
from tlslab.scan.registry import TLS12, TLS13
from tlslab.scan.target import ScanTarget

realservers = pytest.importorskip("realservers")


def _prober(port: int) -> E.Prober:
    return E.Prober(ScanTarget("127.0.0.1", port, server_name="localhost"), time.monotonic() + 40)


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def _start(factory, *args, **kw):
    try:
        return factory(*args, **kw)
    except realservers.PeerMissing as e:
        pytest.skip(str(e))


def test_nginx_suites_and_groups(certs_dir):
    with _start(realservers.nginx_server, certs_dir / "ecdsa-chain.pem", certs_dir / "ecdsa.key",
                tls=("1.2",), ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA",
                groups="secp384r1:prime256v1") as srv:
        p = _prober(srv.port)
        accepted, _ = _run(E.protocols(p))
        assert [k for k, v in accepted.items() if v] == ["TLS 1.2"]
        res = _run(E.cipher_suites(p, TLS12))
        assert sorted(E.names("suite", res.accepted)) == [
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
        g = _run(E.groups12(p, TLS12, res.accepted))
        assert sorted(E.names("group", g.accepted)) == ["secp256r1", "secp384r1"]


def test_gnutls_versions_and_suites(certs_dir):
    priority = ("NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305"
                ":-KX-ALL:+ECDHE-ECDSA:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1")
    with _start(realservers.gnutls_server, certs_dir / "ecdsa-chain.pem", certs_dir / "ecdsa.key",
                priority=priority) as srv:
        p = _prober(srv.port)
        accepted, _ = _run(E.protocols(p))
        assert [k for k, v in accepted.items() if v] == ["TLS 1.2", "TLS 1.3"]
        res = _run(E.cipher_suites(p, TLS12))
        assert sorted(E.names("suite", res.accepted)) == [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
        res13 = _run(E.cipher_suites(p, TLS13))
        assert sorted(E.names("suite", res13.accepted)) == [
            "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
        g = _run(E.groups13(p, res13.accepted))
        assert sorted(E.names("group", g.accepted)) == ["secp256r1", "x25519"]


def test_java_server_order(certs_dir):
    suites = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
              "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"]
    with _start(realservers.java_server, certs_dir / "rsa-chain.pem", certs_dir / "rsa.key",
                tls=("1.2",), ciphers=suites) as srv:
        p = _prober(srv.port)
        res = _run(E.cipher_suites(p, TLS12))
        # JSSE honours its own order by default (jdk.tls.server.cipherSuites order)
        assert E.names("suite", res.accepted) == suites
        assert res.server_order is True
