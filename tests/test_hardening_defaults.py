"""Issue 14, security findings 2 and 3: safer defaults.

2. A verifying client without a name to check is a configuration error (as in Go), unless
   it says ``check_hostname=False``; IP literals are checked against IP SANs.
3. The server's default suites leave out static RSA key exchange (opt-in by naming the
   suites); where it is on, bad premaster ciphertexts take the same path as good ones
   (implicit rejection) and never raise.

Everything runs in memory (client ↔ server objects, no sockets).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.server import ServerConnection
from tlslab.proto.tls12 import keyexchange as kx
from tlslab.proto.tls12.suites import (DEFAULT_SERVER_SUITES12, DEFAULT_SUITES12, KX_RSA,
                                       SUITES12, suite_name)
from tlslab.workbench.certgen import make_throwaway_chain

pytestmark = pytest.mark.timeout(120)

STATIC_RSA = ["TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A server certificate for www.example.test and 127.0.0.1 (RSA, so static RSA works)."""
    chain, key, ca = make_throwaway_chain(("www.example.test", "127.0.0.1"), key_type="rsa2048")
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    return chain, key, str(d / "ca.pem")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    _, _, ca = make_throwaway_chain(("www.example.test",), key_type="ecdsa-p256")
    d = tmp_path_factory.mktemp("other")
    (d / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    return str(d / "ca.pem")


def handshake(client_cfg: ClientConfig, server_cfg: ServerConfig):
    client, server = ClientConnection(client_cfg), ServerConnection(server_cfg)
    client.start_handshake()
    for _ in range(30):
        moved = False
        data = client.data_to_send()
        if data:
            moved = True
            server.receive_data(data)
        data = server.data_to_send()
        if data:
            moved = True
            client.receive_data(data)
        if not moved:
            break
    return client, server


def server_config(pki, **options) -> ServerConfig:
    chain, key, _ = pki
    return ServerConfig(certificate_chain=chain, private_key=key, **options)


# --------------------------------------------------------------------------- 2. hostname check

def test_verifying_client_without_server_name_is_a_configuration_error(pki):
    with pytest.raises(ValueError, match="server_name"):
        ClientConfig(ca_file=pki[2])
    with pytest.raises(ValueError, match="check_hostname=False"):
        ClientConfig(ca_file=pki[2], server_name="")


def test_insecure_client_needs_no_name(pki):
    client, _ = handshake(ClientConfig(insecure=True), server_config(pki))
    assert client.handshake_complete


def test_check_hostname_false_skips_only_the_name(pki, other_ca):
    # any name is accepted, the chain is still validated
    for name in (None, "wrong.example.test"):
        client, _ = handshake(ClientConfig(ca_file=pki[2], server_name=name, check_hostname=False),
                              server_config(pki))
        assert client.handshake_complete, client.error
    client, _ = handshake(ClientConfig(ca_file=other_ca, check_hostname=False), server_config(pki))
    assert not client.handshake_complete and client.error is not None


@pytest.mark.parametrize("name,ok", [("www.example.test", True), ("wrong.example.test", False),
                                     ("127.0.0.1", True), ("127.0.0.2", False)])
@pytest.mark.parametrize("version", ["TLS 1.3", "TLS 1.2"])
def test_names_and_ip_literals_are_checked(pki, name, ok, version):
    client, _ = handshake(ClientConfig(ca_file=pki[2], server_name=name, versions=[version]),
                          server_config(pki))
    assert client.handshake_complete is ok, client.error
    if not ok:
        assert "does not match" in str(client.error)


# --------------------------------------------------------------------------- 3. static RSA

def test_server_defaults_have_no_static_rsa(pki):
    assert not any(SUITES12[c].kx == KX_RSA for c in DEFAULT_SERVER_SUITES12)
    cfg = server_config(pki)
    assert cfg.suites12 and not any(SUITES12[c].kx == KX_RSA for c in cfg.suites12), \
        [suite_name(c) for c in cfg.suites12]
    # everything else of the old default is kept, in the same order
    assert [c for c in DEFAULT_SUITES12 if SUITES12[c].kx != KX_RSA] == list(DEFAULT_SERVER_SUITES12)
    # the client still offers them, last, for probing old servers
    client = ClientConfig(insecure=True)
    rsa = [c for c in client.suites12 if SUITES12[c].kx == KX_RSA]
    assert rsa and client.suites12[-len(rsa):] == rsa


def test_static_rsa_only_client_is_refused_by_default_and_served_on_request(pki):
    cfg = ClientConfig(ca_file=pki[2], server_name="www.example.test", versions=["TLS 1.2"],
                       cipher_suites=STATIC_RSA)
    client, server = handshake(cfg, server_config(pki))
    assert not client.handshake_complete
    assert type(server.error).__name__ == "HandshakeFailure", server.error
    assert "no cipher suite in common" in str(server.error)
    client, _ = handshake(cfg, server_config(pki, cipher_suites=STATIC_RSA))
    assert client.handshake_complete, client.error
    assert client.negotiated["cipher_suite"] in STATIC_RSA


class _Provider:
    def random(self, n: int) -> bytes:
        return os.urandom(n)


def test_premaster_handling_never_raises_and_keeps_its_shape(pki):
    _, key, _ = pki
    pub = key.public_key()
    size = pub.key_size // 8
    premaster = b"\x03\x03" + os.urandom(46)
    good = pub.encrypt(premaster, padding.PKCS1v15())
    assert kx.decrypt_premaster(key, good, 0x0303, _Provider()) == premaster
    # wrong version bytes inside: replaced by ClientHello.client_version, not checked
    inner = b"\x02\x00" + premaster[2:]
    assert kx.decrypt_premaster(key, pub.encrypt(inner, padding.PKCS1v15()), 0x0303,
                                _Provider()) == premaster
    n = pub.public_numbers().n
    bad = [int.from_bytes(os.urandom(size), "big") % n for _ in range(20)]
    cases = [c.to_bytes(size, "big") for c in bad] + [
        pub.encrypt(premaster[:47], padding.PKCS1v15()),     # 47 bytes
        pub.encrypt(premaster + b"\x00", padding.PKCS1v15()),  # 49 bytes
        (n + 1).to_bytes(size, "big"),                      # not below the modulus
        b"\x00" * (size - 1), b"",                          # wrong length
    ]
    for c in cases:
        out = kx.decrypt_premaster(key, c, 0x0303, _Provider())
        assert len(out) == 48 and out[:2] == b"\x03\x03" and out != premaster


def test_this_build_does_implicit_rejection(pki):
    """cryptography on OpenSSL 3.2+ answers bad PKCS#1 v1.5 padding with a synthetic,
    key-derived message instead of an exception (so the server takes no exception path
    on a bad ciphertext).  If a future build turns it off, this test says so."""
    if not kx.implicit_rejection_available():
        pytest.skip("this cryptography/OpenSSL build raises on bad padding (no implicit rejection)")
    _, key, _ = pki
    size = key.key_size // 8
    n = key.public_key().public_numbers().n
    c = (int.from_bytes(os.urandom(size), "big") % n).to_bytes(size, "big")
    first = key.decrypt(c, padding.PKCS1v15())
    assert key.decrypt(c, padding.PKCS1v15()) == first   # deterministic, key-derived
