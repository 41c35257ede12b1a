"""A recorded ClientHello replayed as a template (how profiles simulate real clients):
everything the client chose is kept; random, session id, key shares and the server name
are this connection's (RFC 8446 §4.1.2, RFC 6066 §3, RFC 8701, RFC 7685)."""
from __future__ import annotations

import pytest

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig
from tlslab.proto.extensions import ET
from tlslab.proto.messages import ClientHello
from tlslab.proto.names import is_grease


def _hello(peers_dir, name: str) -> bytes:
    return (peers_dir / "clienthellos" / f"{name}.bin").read_bytes()[5:]


def _sent(template: bytes, server_name: str | None) -> tuple[ClientHello, ClientHello]:
    c = ClientConnection(ClientConfig(server_name=server_name, insecure=True, session_store=None,
                                      client_hello_template=template))
    c.start_handshake()
    out = c.data_to_send()
    return ClientHello.parse(template), ClientHello.parse(out[5:5 + int.from_bytes(out[3:5], "big")])


def _sni(ch: ClientHello):
    v = ch.ext_value(ET.server_name)
    return None if v is None else [s.host_name.decode() for s in v.server_name_list]


@pytest.mark.parametrize("name", ["curl_cffi_chrome", "curl_cffi_firefox", "openssl_s_client_default",
                                  "go_tls_dial", "node20_tls_connect"])
def test_template_keeps_the_client_choices_and_takes_this_name(peers_dir, name):
    rec, sent = _sent(_hello(peers_dir, name), "example.org")
    assert sent.cipher_suites == rec.cipher_suites
    others = lambda ch: [e.type for e in ch.extensions if e.type != ET.server_name]  # noqa: E731
    assert others(sent) == others(rec)
    assert _sni(sent) == ["example.org"]
    assert sent.random != rec.random


def test_grease_key_share_is_sent_as_recorded(peers_dir):
    rec, sent = _sent(_hello(peers_dir, "curl_cffi_chrome"), "example.org")
    shares = sent.ext_value(ET.key_share).client_shares
    grease = [s for s in shares if is_grease(s.group)]
    assert grease and all(len(s.key_exchange) == 1 for s in grease)
    real = {s.group: s.key_exchange for s in shares if not is_grease(s.group)}
    recorded = {s.group: s.key_exchange for s in rec.ext_value(ET.key_share).client_shares}
    assert all(real[g] != recorded[g] for g in real)  # fresh keys


def test_name_added_first_when_the_recording_had_none(peers_dir):
    rec, sent = _sent(_hello(peers_dir, "java17_sslsocket"), "www.example.org")
    assert _sni(rec) is None
    assert sent.extensions[0].type == ET.server_name and _sni(sent) == ["www.example.org"]


def test_no_name_for_an_ip_literal(peers_dir):
    _, sent = _sent(_hello(peers_dir, "curl_default"), "127.0.0.1")
    assert _sni(sent) is None


def test_padding_absorbs_a_longer_name(peers_dir):
    """A padded recording (OpenSSL/NSS pad to 512) keeps its length with another name."""
    for name in ("openssl_s_client_default", "nss_tstclnt_default", "curl_default"):
        raw = _hello(peers_dir, name)
        rec = ClientHello.parse(raw)
        if rec.ext_value(ET.padding) is None and not any(e.type == ET.padding for e in rec.extensions):
            continue
        _, sent = _sent(raw, "a-much-longer-host-name.example.org")
        assert len(sent.raw) == len(raw), name
        return
    pytest.skip("no padded recording among the captured ClientHellos")


def test_renegotiation_scsv_counts_as_offering_renegotiation_info():
    """RFC 5746 §3.6: a client that sends TLS_EMPTY_RENEGOTIATION_INFO_SCSV instead of the
    extension (OpenSSL 1.0.2 does) gets the extension back in a TLS 1.2 ServerHello."""
    import tlslab
    from test_diagnose import tlslab_server
    from tlslab.lab.pki import make_pki
    from tlslab.profiles import load_profile
    hello = load_profile("openssl-1.0.2").offer.client_hello
    rec = ClientHello.parse(hello)
    assert 0x00FF in rec.cipher_suites and rec.ext_value(ET.renegotiation_info) is None
    cert = make_pki(names=("localhost",), key_type="rsa2048").server("ok")
    with tlslab_server(cert, versions=["TLS 1.2"]) as port:
        config = ClientConfig(server_name="localhost", insecure=True, session_store=None,
                              client_hello_template=hello)
        sock = tlslab.connect("127.0.0.1", port, config=config, timeout=5)
        try:
            assert sock.negotiated["version"] == "TLS 1.2"
            assert sock.negotiated["secure_renegotiation"] is True
        finally:
            sock.close()


def test_pkcs1_in_tls13_refused_unless_the_client_is_lenient():
    """RFC 8446 §4.4.3 forbids PKCS#1 in a TLS 1.3 CertificateVerify; tlslab refuses it,
    except when told to behave like a client that accepts it (JSSE 17, for simulate)."""
    import tlslab
    from test_diagnose import tlslab_server
    from tlslab.lab.pki import make_pki
    cert = make_pki(names=("localhost",), key_type="rsa2048").server("ok")
    with tlslab_server(cert, versions=["TLS 1.3"], tls13_pkcs1_signatures=True) as port:
        strict = ClientConfig(server_name="localhost", insecure=True, session_store=None)
        with pytest.raises(tlslab.HandshakeError) as e:
            tlslab.connect("127.0.0.1", port, config=strict, timeout=5)
        assert e.value.alert_sent == "illegal_parameter"
        lenient = ClientConfig(server_name="localhost", insecure=True, session_store=None,
                               accept_tls13_pkcs1_signatures=True)
        sock = tlslab.connect("127.0.0.1", port, config=lenient, timeout=5)
        try:
            assert sock.negotiated["signature_scheme"].startswith("rsa_pkcs1_")
        finally:
            sock.close()
