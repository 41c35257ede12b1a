"""Server options the lab's broken servers are built from (``tlslab serve --scenario``).

Each scenario is real engine behaviour under a configuration; these tests pin that
behaviour, in memory against tlslab's own client and on loopback against real peers:

* TLS 1.0 / TLS 1.1 on the server, only when ``ServerConfig.versions`` lists them
  (RFC 2246, RFC 4346; version negotiation per RFC 5246 Appendix E.1, RFC 7507);
* 3DES (and RC4) suites on the server, only when ``cipher_suites`` names them;
* ``require_sni``: no server_name → fatal ``unrecognized_name`` (RFC 6066 §3);
* ``tls13_pkcs1_signatures``: a TLS 1.3 CertificateVerify signed with PKCS#1 v1.5, the
  deliberate violation of RFC 8446 §4.4.3 that conforming clients refuse;
* an ECDSA certificate with only RSA suites: every client gets ``handshake_failure``;
* ALPN mismatch → ``no_application_protocol`` (RFC 7301 §3.2);
* secp521r1 among the server's (not the client's) default groups.

What real OpenSSL 3.0 ``s_client`` prints against these servers (pinned below):

* TLS 1.0 / 1.1 with ``-cipher 'DEFAULT:@SECLEVEL=0'``: a normal session,
  ``Protocol  : TLSv1`` / ``TLSv1.1``.  Without ``@SECLEVEL=0`` it negotiates the version
  and then gives up on the MD5+SHA-1 ServerKeyExchange signature: ``tls_process_key_exchange:
  legacy sigalg disallowed or unsupported`` (alert internal_error); static RSA suites,
  which sign nothing, still complete.
* ``-tls1_2`` against a TLS 1.0-only server: ``ssl_choose_client_version:unsupported
  protocol`` (it sends protocol_version); ``-tls1`` against a TLS 1.2/1.3 server:
  ``tlsv1 alert protocol version ... SSL alert number 70``.
* PKCS#1 v1.5 in a TLS 1.3 CertificateVerify: ``tls12_check_peer_sigalg:wrong signature
  type`` (it sends illegal_parameter).
* ``-noservername`` against ``require_sni``: ``tlsv1 unrecognized name ... SSL alert
  number 112``.
* This OpenSSL build has no 3DES suites at all (``openssl ciphers`` knows no DES-CBC3-SHA),
  so 3DES is checked with GnuTLS ``gnutls-cli`` (``+3DES-CBC``) and tlslab's client.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import require_tool, run_bounded
from tlslab.io.memory import MemoryPair
from tlslab.proto import signatures
from tlslab.proto.alerts import AlertDescription as AD
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import DEFAULT_GROUPS, ClientConfig, ServerConfig, default_groups
from tlslab.proto.messages import DOWNGRADE_TLS11, DOWNGRADE_TLS12
from tlslab.proto.names import NamedGroup
from tlslab.proto.server import ServerConnection
from tlslab.proto.tls12.suites import HAVE_3DES, HAVE_RC4

pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")

LEGACY = ["TLS 1.0", "TLS 1.1"]
#: one suite per key exchange that TLS 1.0/1.1 have (CBC with HMAC-SHA1), and its leaf
LEGACY_SUITES = [
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "rsa"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ecdsa"),
    ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "rsa"),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", "rsa"),
]
P521 = NamedGroup.secp521r1


# --------------------------------------------------------------------------- helpers

def server_config(certs_dir: Path, kt: str = "rsa", **options) -> ServerConfig:
    return ServerConfig.from_files(str(certs_dir / f"{kt}-chain.pem"), str(certs_dir / f"{kt}.key"),
                                   **options)


def client_config(certs_dir: Path, **options) -> ClientConfig:
    options.setdefault("server_name", "localhost")
    return ClientConfig(ca_file=str(certs_dir / "ca.pem"), **options)


def run(client_cfg: ClientConfig, server_cfg: ServerConfig) -> MemoryPair:
    pair = MemoryPair(ClientConnection(client_cfg), ServerConnection(server_cfg))
    pair.handshake()
    return pair


def alerts(conn, direction: str) -> list[str]:
    return [e.name for e in conn.trace.entries if e.kind == "alert" and e.direction == direction]


def assert_refused(pair: MemoryPair, alert: AD, by: str = "server") -> None:
    """``by`` failed with ``alert``, sent exactly once; the other side received it."""
    failing, other = (pair.server, pair.client) if by == "server" else (pair.client, pair.server)
    assert failing.error is not None and failing.error.alert == alert, failing.error
    assert alerts(failing, "sent") == [alert.name], alerts(failing, "sent")
    assert alert.name in alerts(other, "received")
    assert not pair.client.handshake_complete and not pair.server.handshake_complete


def sent_messages(conn, name: str) -> list:
    return [e for e in conn.trace.entries if e.kind == "message" and e.direction == "sent" and e.name == name]


def exchange(pair: MemoryPair, size: int = 40_000) -> None:
    """Application data both ways (several records: the CBC IV chain runs across them)."""
    payload = bytes(range(256)) * (size // 256)
    pair.client.send_application_data(payload)
    _, server_events = pair.pump()
    assert b"".join(e.data for e in server_events if hasattr(e, "data")) == payload
    pair.server.send_application_data(payload[::-1])
    client_events, _ = pair.pump()
    assert b"".join(e.data for e in client_events if hasattr(e, "data")) == payload[::-1]


# =========================================================================== configuration

def test_legacy_versions_only_when_listed(certs_dir):
    """Defaults are unchanged (TLS 1.3 + 1.2): a TLS 1.0 client gets protocol_version."""
    default = server_config(certs_dir)
    assert default.version_codes == [0x0304, 0x0303]
    pair = run(client_config(certs_dir, versions=["1.0"]), default)
    assert_refused(pair, AD.protocol_version)
    for versions in (["TLS 1.0"], ["TLS 1.1"], ["1.2", "1.1", "1.0"], ["1.3", "1.2", "1.1", "1.0"]):
        server_config(certs_dir, versions=versions)  # accepted


def test_legacy_only_server_needs_a_cbc_suite(certs_dir):
    """RFC 5246 Appendix A.5: AEAD and SHA-256/384 suites are TLS 1.2-only."""
    with pytest.raises(ValueError, match="CBC suite"):
        server_config(certs_dir, versions=["TLS 1.0"],
                      cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"])
    server_config(certs_dir, versions=["TLS 1.0", "TLS 1.2"],
                  cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])  # 1.2 can use it


def test_new_options_default_off(certs_dir):
    cfg = server_config(certs_dir)
    assert cfg.require_sni is False and cfg.tls13_pkcs1_signatures is False


# =========================================================================== TLS 1.0 / 1.1 in memory

@pytest.mark.parametrize("version", LEGACY)
@pytest.mark.parametrize("suite,kt", LEGACY_SUITES)
def test_legacy_handshake_in_memory(certs_dir, version, suite, kt):
    """tlslab client ↔ tlslab server at TLS 1.0 / 1.1: every key exchange, records both ways."""
    pair = run(client_config(certs_dir, versions=[version], cipher_suites=[suite]),
               server_config(certs_dir, kt, versions=[version], cipher_suites=[suite]))
    assert pair.client.handshake_complete and pair.server.handshake_complete, \
        (pair.client.error, pair.server.error)
    for conn in (pair.client, pair.server):
        assert conn.negotiated["version"] == version and conn.negotiated["cipher_suite"] == suite
    code = {"TLS 1.0": 0x0301, "TLS 1.1": 0x0302}[version]
    # RFC 2246 §6.2.3.2: TLS 1.0 chains the IV; RFC 4346 §6.2.3.2: TLS 1.1 sends one per record
    assert pair.server._write_prot._explicit_iv is (version == "TLS 1.1")
    assert pair.server._write_prot.version == code
    for fin in sent_messages(pair.server, "Finished") + sent_messages(pair.client, "Finished"):
        assert len(fin.message.verify_data) == 12  # RFC 2246 §7.4.9
    ske = sent_messages(pair.server, "ServerKeyExchange")
    if suite.startswith("TLS_RSA_"):
        assert not ske
    else:
        # RFC 2246 §7.4.3 / RFC 4492 §5.4: params then a bare signature, no algorithm field
        assert pair.client.negotiated["signature_scheme"] is None
        assert any(e.name == "TLS 1.0/1.1 ServerKeyExchange signature" for e in pair.server.trace.entries)
    exchange(pair)


@pytest.mark.parametrize("version", LEGACY)
def test_legacy_mac_then_encrypt(certs_dir, version):
    """Without encrypt_then_mac (RFC 7366 is optional) the records are MAC-then-encrypt CBC."""
    from tlslab.proto.extensions import ET
    options = dict(versions=[version], cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"])
    probe = ClientConnection(client_config(certs_dir, **options))
    probe.start_handshake()
    hello = probe.hs.offer.client_hello
    hello.extensions = [e for e in hello.extensions if e.type != ET.encrypt_then_mac]
    hello.raw = None
    pair = run(client_config(certs_dir, client_hello_template=hello.build(), **options),
               server_config(certs_dir, versions=[version]))
    assert pair.server.handshake_complete, (pair.client.error, pair.server.error)
    assert pair.server.negotiated["encrypt_then_mac"] is False
    assert pair.client.negotiated["encrypt_then_mac"] is False
    exchange(pair)


@pytest.mark.parametrize("version", LEGACY)
def test_legacy_client_certificate(certs_dir, version):
    """RFC 4346 §7.4.4: CertificateRequest without supported_signature_algorithms; the client's
    CertificateVerify (§7.4.8, no algorithm field, SHA-1 ECDSA here) is checked."""
    from tlslab.proto.config import load_identity
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    pair = run(client_config(certs_dir, versions=[version], certificate_chain=chain, private_key=key),
               server_config(certs_dir, versions=[version], client_ca_file=str(certs_dir / "ca.pem"),
                             require_client_cert=True))
    assert pair.server.handshake_complete, (pair.client.error, pair.server.error)
    cr = sent_messages(pair.server, "CertificateRequest11")[0].message
    assert not hasattr(cr, "supported_signature_algorithms")
    assert "tlslab test client" in pair.server.negotiated["client_certificate"]
    assert sent_messages(pair.client, "CertificateVerify11")


@pytest.mark.parametrize("version", LEGACY)
def test_legacy_resumption(certs_dir, version):
    """Session tickets and session IDs work at TLS 1.0/1.1 too (RFC 5077, RFC 2246 §7.3)."""
    scfg = server_config(certs_dir, versions=[version])
    ccfg = client_config(certs_dir, versions=[version])
    first = run(ccfg, scfg)
    assert first.client.handshake_complete
    second = run(ccfg, scfg)
    assert second.client.handshake_complete and second.client.resumed, second.client.error
    assert second.client.negotiated["version"] == version


# --------------------------------------------------------------------------- version negotiation

def test_modern_client_gets_protocol_version(certs_dir):
    """A client offering TLS 1.3 and 1.2 (supported_versions) shares nothing with a 1.0-only
    server: protocol_version, from the server (RFC 8446 §4.2.1, RFC 5246 Appendix E.1)."""
    pair = run(client_config(certs_dir, versions=["1.3", "1.2"]), server_config(certs_dir, versions=["TLS 1.0"]))
    assert_refused(pair, AD.protocol_version)


def test_tls12_client_refuses_tls10_server(certs_dir):
    """Without supported_versions the server picks the highest version up to the client's
    legacy_version (Appendix E.1), here TLS 1.0; the 1.2-only client refuses it."""
    pair = run(client_config(certs_dir, versions=["1.2"]), server_config(certs_dir, versions=["TLS 1.0"]))
    assert sent_messages(pair.server, "ServerHello")[0].message.legacy_version == 0x0301
    assert_refused(pair, AD.protocol_version, by="client")


@pytest.mark.parametrize("client_versions,server_versions,expected", [
    (["1.2", "1.1", "1.0"], ["TLS 1.0"], "TLS 1.0"),
    (["1.2", "1.1", "1.0"], ["TLS 1.1", "TLS 1.0"], "TLS 1.1"),
    (["1.1", "1.0"], ["TLS 1.2", "TLS 1.1", "TLS 1.0"], "TLS 1.1"),
    (["1.0"], ["TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"], "TLS 1.0"),
    (["1.3", "1.2"], ["TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"], "TLS 1.3"),
    (["1.3", "1.2", "1.1"], ["TLS 1.1"], "TLS 1.1"),
])
def test_highest_common_version(certs_dir, client_versions, server_versions, expected):
    pair = run(client_config(certs_dir, versions=client_versions),
               server_config(certs_dir, versions=server_versions))
    assert pair.client.handshake_complete, (pair.client.error, pair.server.error)
    assert pair.server.negotiated["version"] == expected


@pytest.mark.parametrize("server_versions,tail", [
    (["TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"], DOWNGRADE_TLS11),
    (["TLS 1.2", "TLS 1.1", "TLS 1.0"], DOWNGRADE_TLS11),
    (["TLS 1.1", "TLS 1.0"], None),
])
def test_downgrade_sentinel(certs_dir, server_versions, tail):
    """RFC 8446 §4.1.3: a server able to do TLS 1.2 (or 1.3) marks a TLS 1.0/1.1 ServerHello."""
    pair = run(client_config(certs_dir, versions=["1.0"]), server_config(certs_dir, versions=server_versions))
    assert pair.client.handshake_complete
    random = sent_messages(pair.server, "ServerHello")[0].message.random
    if tail is None:
        assert random[-8:] not in (DOWNGRADE_TLS11, DOWNGRADE_TLS12)
    else:
        assert random[-8:] == tail


def test_legacy_fallback_scsv(certs_dir):
    """RFC 7507 §3: TLS_FALLBACK_SCSV at a version below the server's best is refused."""
    scfg = server_config(certs_dir, versions=["TLS 1.1", "TLS 1.0"])
    pair = run(client_config(certs_dir, versions=["1.0"], fallback_scsv=True), scfg)
    assert_refused(pair, AD.inappropriate_fallback)
    pair = run(client_config(certs_dir, versions=["1.1"], fallback_scsv=True), scfg)
    assert pair.client.handshake_complete  # 1.1 is the server's best: no fallback
    pair = run(client_config(certs_dir, versions=["1.0"], fallback_scsv=True),
               server_config(certs_dir, versions=["TLS 1.0"]))
    assert pair.client.handshake_complete


def test_tls12_only_suites_refused_below_tls12(certs_dir):
    """The server picks TLS 1.0 (Appendix E.1) but the client offers only a GCM suite, which
    does not exist there: handshake_failure."""
    pair = run(client_config(certs_dir, versions=["1.2", "1.0"],
                             cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]),
               server_config(certs_dir, versions=["TLS 1.0"]))
    assert_refused(pair, AD.handshake_failure)


def test_eddsa_certificate_cannot_sign_tls10(certs_dir, tmp_path):
    """EdDSA arrived with TLS 1.2 (RFC 8422 §5.1.3): an Ed25519 leaf has no TLS 1.0 suite."""
    chain, key = _ed25519_identity()
    scfg = ServerConfig(certificate_chain=chain, private_key=key, versions=["TLS 1.0"])
    pair = run(ClientConfig(server_name="localhost", insecure=True, versions=["1.0"]), scfg)
    assert_refused(pair, AD.handshake_failure)


def _ed25519_identity():
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, None))
    return [cert], key


# =========================================================================== 3DES / RC4

THREE_DES = ["TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"]
needs_3des = pytest.mark.skipif(not HAVE_3DES, reason="this cryptography build cannot run 3DES")


@needs_3des
@pytest.mark.parametrize("version", ["TLS 1.2", "TLS 1.0"])
@pytest.mark.parametrize("suite", THREE_DES)
def test_3des_when_named(certs_dir, suite, version):
    pair = run(client_config(certs_dir, versions=[version], cipher_suites=[suite]),
               server_config(certs_dir, versions=[version], cipher_suites=[suite]))
    assert pair.server.handshake_complete, (pair.client.error, pair.server.error)
    assert pair.server.negotiated["cipher_suite"] == suite
    exchange(pair, 20_000)


@needs_3des
@pytest.mark.parametrize("versions", [None, ["TLS 1.2"], ["TLS 1.0", "TLS 1.1", "TLS 1.2"]])
def test_3des_never_by_default(certs_dir, versions):
    """A client offering only 3DES gets handshake_failure from a server with default suites."""
    pair = run(client_config(certs_dir, versions=["1.2", "1.1", "1.0"], cipher_suites=THREE_DES),
               server_config(certs_dir, versions=versions))
    assert_refused(pair, AD.handshake_failure)


@needs_3des
def test_3des_preferred_last_when_named_with_others(certs_dir):
    """Named with a modern suite, 3DES is used only by clients that offer nothing better."""
    scfg = server_config(certs_dir, versions=["TLS 1.2"],
                         cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", *THREE_DES])
    pair = run(client_config(certs_dir, versions=["1.2"]), scfg)
    assert pair.server.negotiated["cipher_suite"] == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    pair = run(client_config(certs_dir, versions=["1.2"], cipher_suites=THREE_DES[:1]), scfg)
    assert pair.server.negotiated["cipher_suite"] == THREE_DES[0]


@pytest.mark.skipif(not HAVE_RC4, reason="this cryptography build cannot run RC4")
def test_rc4_when_named(certs_dir):
    suite = "TLS_RSA_WITH_RC4_128_SHA"
    pair = run(client_config(certs_dir, versions=["1.0"], cipher_suites=[suite]),
               server_config(certs_dir, versions=["TLS 1.0"], cipher_suites=[suite]))
    assert pair.server.negotiated["cipher_suite"] == suite, pair.server.error
    exchange(pair, 5_000)


# =========================================================================== require_sni

@pytest.mark.parametrize("versions", [["1.3"], ["1.2"], ["1.0"]])
def test_require_sni_refuses_without_server_name(certs_dir, versions):
    """RFC 6066 §3: no server_name → one fatal unrecognized_name, in every version."""
    scfg = server_config(certs_dir, require_sni=True, versions=["TLS " + v for v in versions])
    pair = run(ClientConfig(server_name=None, insecure=True, versions=versions), scfg)
    assert_refused(pair, AD.unrecognized_name)
    fatal = [e for e in pair.server.trace.entries if e.kind == "alert" and e.direction == "sent"]
    assert fatal[0].summary["level"] == 2
    pair = run(client_config(certs_dir, versions=versions), scfg)
    assert pair.client.handshake_complete and pair.server.negotiated["server_name"] == "localhost"


def test_without_require_sni_no_name_is_fine(certs_dir):
    pair = run(ClientConfig(server_name=None, insecure=True), server_config(certs_dir))
    assert pair.client.handshake_complete


# =========================================================================== PKCS#1 in TLS 1.3

def _server_certificate_verify(pair):
    return sent_messages(pair.server, "CertificateVerify")[0].message


@pytest.mark.parametrize("client_schemes,expected", [
    (None, "rsa_pkcs1_sha256"),
    (["rsa_pkcs1_sha384", "rsa_pss_rsae_sha256", "rsa_pkcs1_sha256"], "rsa_pkcs1_sha384"),
    (["rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384"], "rsa_pkcs1_sha256"),  # none offered: still
])
def test_tls13_pkcs1_signature_refused_by_tlslab(certs_dir, client_schemes, expected):
    """RFC 8446 §4.4.3: "RSA signatures MUST use an RSASSA-PSS algorithm": the client aborts
    with illegal_parameter.  The signature itself is a real, valid PKCS#1 v1.5 one."""
    from tlslab.proto.names import SignatureScheme, name_of
    scfg = server_config(certs_dir, tls13_pkcs1_signatures=True)
    pair = run(client_config(certs_dir, versions=["1.3"], signature_algorithms=client_schemes), scfg)
    assert_refused(pair, AD.illegal_parameter, by="client")
    cv = _server_certificate_verify(pair)
    assert name_of(SignatureScheme, cv.algorithm) == expected
    # the client refused before adding CertificateVerify to its transcript
    signed = signatures.certificate_verify_input(pair.client.hs.transcript.digest(), server=True)
    signatures.verify(scfg.certificate_chain[0], cv.algorithm, signed, cv.signature, tls13=False)


def test_tls13_pkcs1_signatures_other_cases(certs_dir):
    """Only the TLS 1.3 CertificateVerify of an RSA certificate changes: TLS 1.2 and ECDSA
    certificates work as usual; without the option RSA-PSS is used."""
    pair = run(client_config(certs_dir, versions=["1.2"]), server_config(certs_dir, tls13_pkcs1_signatures=True))
    assert pair.client.handshake_complete
    pair = run(client_config(certs_dir), server_config(certs_dir, "ecdsa", tls13_pkcs1_signatures=True))
    assert pair.client.negotiated["signature_scheme"] == "ecdsa_secp256r1_sha256"
    pair = run(client_config(certs_dir), server_config(certs_dir))
    assert pair.client.negotiated["signature_scheme"] == "rsa_pss_rsae_sha256"


# =========================================================================== ECDSA leaf, RSA suites

@pytest.mark.parametrize("versions", [["1.2"], ["1.3", "1.2"]])
def test_ecdsa_certificate_with_rsa_suites_only(certs_dir, versions):
    """RFC 5246 §7.4.2: no offered suite fits the certificate → handshake_failure, for every
    client; the configuration itself is accepted."""
    scfg = server_config(certs_dir, "ecdsa", versions=["TLS 1.2"],
                         cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
    pair = run(client_config(certs_dir, versions=versions), scfg)
    assert_refused(pair, AD.handshake_failure)
    assert "certificate type" in str(pair.server.error)


# =========================================================================== ALPN

@pytest.mark.parametrize("versions", [["1.3"], ["1.2"]])
def test_alpn_mismatch(certs_dir, versions):
    """RFC 7301 §3.2: no protocol in common → no_application_protocol; no ALPN offered →
    the handshake goes on without it."""
    scfg = server_config(certs_dir, alpn_protocols=["h2"])
    pair = run(client_config(certs_dir, versions=versions, alpn_protocols=["http/1.1"]), scfg)
    assert_refused(pair, AD.no_application_protocol)
    pair = run(client_config(certs_dir, versions=versions), scfg)
    assert pair.client.handshake_complete and pair.client.negotiated["alpn_protocol"] is None
    pair = run(client_config(certs_dir, versions=versions, alpn_protocols=["http/1.1", "h2"]), scfg)
    assert pair.client.negotiated["alpn_protocol"] == "h2"


# =========================================================================== secp521r1

def test_server_default_groups_include_p521_client_defaults_do_not(certs_dir):
    scfg = server_config(certs_dir)
    # after the client defaults, with the larger FFDHE groups (and the P-256 hybrid)
    extra = scfg.group_codes[len(ClientConfig(insecure=True).group_codes):]
    assert P521 in extra and extra[0] == P521
    assert P521 not in ClientConfig(insecure=True).group_codes
    assert "secp521r1" not in DEFAULT_GROUPS and "secp521r1" not in default_groups()
    explicit = server_config(certs_dir, groups=["x25519"])
    assert explicit.group_codes == [NamedGroup.x25519]


@pytest.mark.parametrize("versions", [["1.3"], ["1.2"]])
def test_server_accepts_p521_only_client(certs_dir, versions):
    pair = run(client_config(certs_dir, versions=versions, groups=["secp521r1"]), server_config(certs_dir))
    assert pair.client.handshake_complete, (pair.client.error, pair.server.error)
    assert pair.server.negotiated["group"] == "secp521r1"


# =========================================================================== real peers

OPENSSL_LEGACY = {"TLS 1.0": ("-tls1", "TLSv1"), "TLS 1.1": ("-tls1_1", "TLSv1.1")}
OPENSSL_SUITES = {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
                  "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
                  "TLS_DHE_RSA_WITH_AES_128_CBC_SHA": "DHE-RSA-AES128-SHA",
                  "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA"}


def _s_client(certs_dir, port, *extra, servername: bool = True):
    openssl = require_tool("openssl")
    name = ["-servername", "localhost"] if servername else ["-noservername"]
    cmd = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", certs_dir / "ca.pem",
           *name, "-verify_return_error", "-ign_eof", *extra]
    from test_interop_openssl import HTTP_GET
    return run_bounded(cmd, input=HTTP_GET.decode(), timeout=20)


def _serve(config):
    from test_interop_openssl import TlslabServer
    return TlslabServer(config)


def _served_ok(server, version: str, suite: str | None, out: str) -> None:
    served = server.served[0] if server.served else None
    detail = f"{out[-3000:]}\n--- tlslab ---\n{served.describe() if served else 'never connected'}"
    assert served is not None and served.complete is not None, detail
    assert served.conn.negotiated["version"] == version, detail
    if suite:
        assert served.conn.negotiated["cipher_suite"] == suite, detail
    assert "tlslab says hello" in out, detail


def _refused(server, alert_sent: str | None = None, alert_received: str | None = None) -> str:
    served = server.served[0]
    assert served.complete is None, served.describe()
    if alert_sent:
        assert alerts(served.conn, "sent") == [alert_sent], served.describe()
    if alert_received:
        assert alert_received in alerts(served.conn, "received"), served.describe()
    return served.describe()


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", LEGACY)
def test_openssl_legacy_default_ciphers(certs_dir, version):
    """``s_client -tls1 / -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'`` → a TLS 1.0 / 1.1-only
    tlslab server: handshake and HTTP exchange."""
    flag, label = OPENSSL_LEGACY[version]
    with _serve(server_config(certs_dir, versions=[version])) as server:
        rc, out, err = _s_client(certs_dir, server.port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
    _served_ok(server, version, None, out + err)
    assert re.search(rf"Protocol\s*: {re.escape(label)}\n", out), out
    assert "Verify return code: 0 (ok)" in out and rc == 0, err


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", LEGACY)
@pytest.mark.parametrize("suite,kt", LEGACY_SUITES)
@pytest.mark.parametrize("etm", [True, False], ids=["etm", "no_etm"])
def test_openssl_legacy_suites(certs_dir, version, suite, kt, etm):
    """Every key exchange at TLS 1.0 / 1.1, with encrypt-then-MAC and without (``-no_etm``:
    MAC-then-encrypt, the IV chained across records in TLS 1.0)."""
    flag, label = OPENSSL_LEGACY[version]
    extra = [] if etm else ["-no_etm"]
    with _serve(server_config(certs_dir, kt, versions=[version], cipher_suites=[suite])) as server:
        rc, out, err = _s_client(certs_dir, server.port, flag, "-cipher",
                                 f"{OPENSSL_SUITES[suite]}:@SECLEVEL=0", *extra)
    _served_ok(server, version, suite, out + err)
    assert server.served[0].conn.negotiated["encrypt_then_mac"] is etm
    assert re.search(rf"Protocol\s*: {re.escape(label)}\n", out), out


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", LEGACY)
def test_openssl_legacy_without_seclevel0(certs_dir, version):
    """At its default security level OpenSSL 3 still negotiates TLS 1.0 / 1.1 but refuses the
    MD5+SHA-1 ServerKeyExchange signature those versions use (``tls_process_key_exchange:
    legacy sigalg disallowed or unsupported``, alert internal_error); static RSA, which signs
    nothing, completes."""
    flag, label = OPENSSL_LEGACY[version]
    with _serve(server_config(certs_dir, versions=[version])) as server:
        rc, out, err = _s_client(certs_dir, server.port, flag)
    assert rc != 0 and "legacy sigalg disallowed or unsupported" in err, err
    _refused(server, alert_received="internal_error")
    # static RSA is not in a server's defaults: named
    with _serve(server_config(certs_dir, versions=[version],
                              cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                                             "TLS_RSA_WITH_AES_256_CBC_SHA"])) as server:
        rc, out, err = _s_client(certs_dir, server.port, flag, "-cipher", "AES256-SHA")
    _served_ok(server, version, "TLS_RSA_WITH_AES_256_CBC_SHA", out + err)


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_legacy_client_certificate(certs_dir):
    """``s_client -tls1 -cert client.pem``: OpenSSL's TLS 1.0 CertificateVerify (SHA-1 ECDSA,
    no algorithm field) verifies against require_client_cert."""
    cfg = server_config(certs_dir, versions=["TLS 1.0"], client_ca_file=str(certs_dir / "ca.pem"),
                        require_client_cert=True)
    with _serve(cfg) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0",
                                 "-cert", certs_dir / "client.pem", "-key", certs_dir / "client.key",
                                 "-cert_chain", certs_dir / "intermediate.pem")
    _served_ok(server, "TLS 1.0", None, out + err)
    assert "tlslab test client" in server.served[0].conn.negotiated["client_certificate"]


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_tls12_client_vs_tls10_server(certs_dir):
    """``s_client -tls1_2`` → TLS 1.0-only server: the server answers TLS 1.0 (Appendix E.1),
    OpenSSL says ``ssl_choose_client_version:unsupported protocol`` and sends protocol_version."""
    with _serve(server_config(certs_dir, versions=["TLS 1.0"])) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1_2")
    assert rc != 0
    assert "unsupported protocol" in err, err
    _refused(server, alert_received="protocol_version")


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_tls10_client_vs_default_server(certs_dir):
    """``s_client -tls1`` → default (TLS 1.3 + 1.2) server: protocol_version (alert 70)."""
    with _serve(server_config(certs_dir)) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert rc != 0 and "alert protocol version" in err, err
    _refused(server, alert_sent="protocol_version")


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_legacy_fallback_scsv(certs_dir):
    """``s_client -tls1 -fallback_scsv`` → a TLS 1.1 + 1.0 server: inappropriate_fallback."""
    with _serve(server_config(certs_dir, versions=["TLS 1.1", "TLS 1.0"])) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0",
                                 "-fallback_scsv")
    assert rc != 0 and "inappropriate fallback" in err, err
    _refused(server, alert_sent="inappropriate_fallback")


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_3des(certs_dir):
    """``s_client -cipher 'DES-CBC3-SHA:@SECLEVEL=0'``, if this OpenSSL still has 3DES."""
    openssl = require_tool("openssl")
    rc, out, _ = run_bounded([openssl, "ciphers", "DES-CBC3-SHA:@SECLEVEL=0"], timeout=20)
    if rc != 0 or "DES-CBC3-SHA" not in out:
        pytest.skip("this OpenSSL build has no 3DES suites (DES-CBC3-SHA); gnutls-cli covers it")
    if not HAVE_3DES:
        pytest.skip("this cryptography build cannot run 3DES")
    cfg = server_config(certs_dir, versions=["TLS 1.2"], cipher_suites=["TLS_RSA_WITH_3DES_EDE_CBC_SHA"])
    with _serve(cfg) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1_2", "-cipher", "DES-CBC3-SHA:@SECLEVEL=0")
    _served_ok(server, "TLS 1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", out + err)


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("suite,version,vers", [
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS 1.2", "VERS-TLS1.2"),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS 1.0", "VERS-TLS1.0"),
])
def test_gnutls_3des(certs_dir, suite, version, vers):
    """``gnutls-cli --priority NORMAL:+3DES-CBC`` → a server that names 3DES."""
    gnutls = require_tool("gnutls-cli")
    if not HAVE_3DES:
        pytest.skip("this cryptography build cannot run 3DES")
    from test_interop_openssl import HTTP_GET
    cfg = server_config(certs_dir, versions=["TLS 1.2", "TLS 1.0"], cipher_suites=[suite])
    with _serve(cfg) as server:
        rc, out, err = run_bounded([gnutls, "--port", str(server.port), "--x509cafile", certs_dir / "ca.pem",
                                    "--verify-hostname", "localhost",
                                    "--priority", f"NORMAL:+3DES-CBC:-VERS-ALL:+{vers}", "127.0.0.1"],
                                   input=HTTP_GET.decode(), timeout=20)
    _served_ok(server, version, suite, out + err)
    assert "(3DES-CBC)" in out, out


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_refuses_tls13_pkcs1_signature(certs_dir):
    """``s_client -tls1_3`` → tls13_pkcs1_signatures: OpenSSL prints
    ``tls12_check_peer_sigalg:wrong signature type`` and sends illegal_parameter."""
    with _serve(server_config(certs_dir, tls13_pkcs1_signatures=True)) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1_3")
    assert rc != 0 and "wrong signature type" in err, err
    _refused(server, alert_received="illegal_parameter")


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_openssl_require_sni(certs_dir, flag):
    """``s_client -noservername`` → require_sni: ``tlsv1 unrecognized name`` (alert 112)."""
    with _serve(server_config(certs_dir, require_sni=True)) as server:
        rc, out, err = _s_client(certs_dir, server.port, flag, servername=False)
    assert rc != 0 and "unrecognized name" in err, err
    _refused(server, alert_sent="unrecognized_name")


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_ecdsa_certificate_rsa_suites(certs_dir):
    """``s_client -tls1_2`` → ECDSA leaf with only ECDHE_RSA: handshake_failure (alert 40)."""
    cfg = server_config(certs_dir, "ecdsa", versions=["TLS 1.2"],
                        cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
    with _serve(cfg) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-tls1_2")
    assert rc != 0 and "handshake failure" in err, err
    _refused(server, alert_sent="handshake_failure")


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_openssl_alpn_mismatch(certs_dir, flag):
    """``s_client -alpn http/1.1`` → alpn_protocols=["h2"]: ``no application protocol`` (120)."""
    with _serve(server_config(certs_dir, alpn_protocols=["h2"])) as server:
        rc, out, err = _s_client(certs_dir, server.port, flag, "-alpn", "http/1.1")
    assert rc != 0 and "no application protocol" in err, err
    _refused(server, alert_sent="no_application_protocol")


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_openssl_p521_only(certs_dir):
    """``s_client -groups P-521`` → default server: TLS 1.3 over secp521r1."""
    with _serve(server_config(certs_dir)) as server:
        rc, out, err = _s_client(certs_dir, server.port, "-groups", "P-521")
    _served_ok(server, "TLS 1.3", None, out + err)
    assert server.served[0].conn.negotiated["group"] == "secp521r1"
    assert "secp521r1" in out
