"""Regression tests for the conformance fixes found with tlsfuzzer (scripts/tlsfuzzer.py).

Each test builds the offending ClientHello with tlslab's own codec (an editing client)
and checks the server's alert, or the server's choice; each failed before its fix.
"""
from __future__ import annotations

import pytest

from tlslab.proto.alerts import AlertDescription as AD
from tlslab.proto.extensions import (ET, Extension, KeyShareCH, KeyShareEntry, NamedGroupList,
                                     ProtocolNameList)
from tlslab.proto.names import CipherSuite

from test_conformance import (check_ok, client_config, connect, drop_ext, make_pair,
                              pki,  # noqa: F401  (the fixture)
                              replace_ext, server_config, server_refuses, split_records)

SECP256R1 = 0x0017


# --------------------------------------------------------------------------- display-only extensions

@pytest.mark.parametrize("ext_type,body", [
    (17513, b"\x00\x05junk"),        # ALPS (old code point), body not a protocol list
    (17613, b"\xff"),                # ALPS, truncated
    (0xFE0D, b""),                   # ECH outer extension with no body
    (ET.status_request_v2, b"\x01"),
    (ET.compress_certificate, b"\x00"),
])
@pytest.mark.parametrize("versions", [["TLS 1.3"], ["TLS 1.2"]])
def test_malformed_display_only_extension_is_ignored(pki, ext_type, body, versions):
    """RFC 8446 §4.2 / §9.3: a server ignores extensions it does not negotiate, so one tlslab
    only decodes for display must not abort the handshake with decode_error."""
    def edit(ch):
        ch.extensions.insert(0, Extension(ext_type, data=body))
    check_ok(connect(client_config(pki, versions=versions), server_config(pki), edit))


def test_malformed_ec_point_formats_ignored_in_tls13(pki):
    """ec_point_formats is not used in TLS 1.3 (RFC 8446 §4.2): an empty one is ignored."""
    def edit(ch):
        ch.extensions.insert(0, Extension(ET.ec_point_formats, data=b"\x00"))
    check_ok(connect(client_config(pki, versions=["TLS 1.3"]), server_config(pki), edit), "TLS 1.3")


@pytest.mark.parametrize("body,alert", [(b"\x00", AD.decode_error),
                                        (b"\x01\x01", AD.illegal_parameter)])
def test_ec_point_formats_checked_in_tls12_ecdhe(pki, body, alert):
    """RFC 8422 §5.1.2: with ECDHE in TLS 1.2 the list must parse and offer uncompressed."""
    def edit(ch):
        drop_ext(ch, ET.ec_point_formats)
        ch.extensions.insert(0, Extension(ET.ec_point_formats, data=body))
    server_refuses(client_config(pki, versions=["TLS 1.2"],
                                 cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]),
                   server_config(pki), edit, alert)


# --------------------------------------------------------------------------- groups

@pytest.mark.parametrize("obsolete", [0x0001, 0x0013, 0x0015, 0x0016, 0x001A, 0xFF01])
@pytest.mark.parametrize("where", ["supported_groups", "key_share"])
def test_obsolete_group_in_tls13_hello_is_illegal_parameter(pki, obsolete, where):
    """RFC 8446 §4.2.7: obsolete_RESERVED groups MUST NOT be offered in TLS 1.3."""
    def edit(ch):
        groups = [obsolete, SECP256R1]
        shares = [ch.ext_value(ET.key_share).client_shares[0]]
        if where == "key_share":
            shares.append(KeyShareEntry(group=obsolete, key_exchange=b"\xab" * 32))
        else:
            groups = [SECP256R1, obsolete]
        replace_ext(ch, Extension(ET.supported_groups, NamedGroupList(named_group_list=groups)))
        replace_ext(ch, Extension(ET.key_share, KeyShareCH(client_shares=shares)))
    server_refuses(client_config(pki, versions=["TLS 1.3"], groups=["secp256r1"]),
                   server_config(pki), edit, AD.illegal_parameter)


def test_obsolete_group_ignored_in_tls12(pki):
    """TLS 1.2 still lists these groups (RFC 8422 §5.1.1): skipped, not refused."""
    def edit(ch):
        groups = ch.ext_value(ET.supported_groups).named_group_list
        replace_ext(ch, Extension(ET.supported_groups,
                                  NamedGroupList(named_group_list=[0x0013] + list(groups))))
    check_ok(connect(client_config(pki, versions=["TLS 1.2"]), server_config(pki), edit), "TLS 1.2")


@pytest.mark.parametrize("group", ["secp521r1", "ffdhe3072", "ffdhe4096", "ffdhe8192"])
def test_server_accepts_p521_and_large_ffdhe_by_default(pki, group):
    pair = connect(client_config(pki, versions=["TLS 1.3"], groups=[group]), server_config(pki))
    check_ok(pair, "TLS 1.3")
    assert pair.server.negotiated["group"] == group


@pytest.mark.parametrize("group", [0x001D, 0x001E, 0x0100])
def test_empty_key_share_is_illegal_parameter(pki, group):
    """An empty key_exchange is a share of the wrong size (RFC 8446 §4.2.8.1/§4.2.8.2)."""
    def edit(ch):
        replace_ext(ch, Extension(ET.supported_groups, NamedGroupList(named_group_list=[group])))
        replace_ext(ch, Extension(ET.key_share, KeyShareCH(client_shares=[
            KeyShareEntry(group=group, key_exchange=b"")])))
    server_refuses(client_config(pki, versions=["TLS 1.3"]), server_config(pki), edit,
                   AD.illegal_parameter)


# --------------------------------------------------------------------------- fallback SCSV

@pytest.mark.parametrize("client_version", [0x0302, 0x0301])
def test_fallback_scsv_beats_protocol_version(pki, client_version):
    """RFC 7507 §3: SCSV with a version below ours is inappropriate_fallback, also when we do
    not speak that version at all (TLS 1.1/1.0 are off)."""
    def edit(ch):
        drop_ext(ch, ET.supported_versions)
        ch.legacy_version = client_version
        ch.cipher_suites = list(ch.cipher_suites) + [CipherSuite.TLS_FALLBACK_SCSV]
    server_refuses(client_config(pki, versions=["TLS 1.2"]), server_config(pki), edit,
                   AD.inappropriate_fallback)


def test_old_version_without_scsv_is_still_protocol_version(pki):
    def edit(ch):
        drop_ext(ch, ET.supported_versions)
        ch.legacy_version = 0x0302
    server_refuses(client_config(pki, versions=["TLS 1.2"]), server_config(pki), edit,
                   AD.protocol_version)


# --------------------------------------------------------------------------- HelloRetryRequest

def _hrr_pair(pki):
    """A client whose first ClientHello forces an HRR (no share for the server's group)."""
    ccfg = client_config(pki, versions=["TLS 1.3"], groups=["x448", "secp256r1"],
                         key_share_groups=["x448"])
    return make_pair(ccfg, server_config(pki, groups=["secp256r1"]))


def _second_hello(pair, edit) -> bytes:
    """Run CH1 -> HRR, and return the client's second flight with its ClientHello edited."""
    from tlslab.proto.messages import ClientHello
    pair.server.receive_data(pair.client.data_to_send())
    pair.client.receive_data(pair.server.data_to_send())
    out = b""
    for header, frag in split_records(pair.client.data_to_send()):
        if header[0] == 22:
            ch = ClientHello.parse(frag)
            edit(ch)
            frag = ch.build()
        out += header[:3] + len(frag).to_bytes(2, "big") + frag
    return out


def test_second_client_hello_with_reordered_extensions_is_refused(pki):
    """RFC 8446 §4.1.2: the second ClientHello repeats the first except for the listed
    changes; reordering the other extensions is illegal_parameter."""
    def reorder(ch):
        moved = [e for e in ch.extensions if e.type in (ET.supported_groups, ET.signature_algorithms)]
        ch.extensions = list(reversed(moved)) + [e for e in ch.extensions if e not in moved]
    pair = _hrr_pair(pki)
    pair.server.receive_data(_second_hello(pair, reorder))
    assert pair.server.error is not None and pair.server.error.alert == AD.illegal_parameter
    assert "reordered" in str(pair.server.error)


def test_second_client_hello_unchanged_order_completes(pki):
    pair = _hrr_pair(pki)
    pair.server.receive_data(_second_hello(pair, lambda ch: None))
    pair.client.receive_data(pair.server.data_to_send())
    pair.pump()
    check_ok(pair, "TLS 1.3")
    assert pair.server.negotiated["hello_retry"]


def test_undecryptable_record_after_second_client_hello_is_bad_record_mac(pki):
    """RFC 8446 §4.2.10: 0-RTT records are skipped between the first ClientHello and the
    second; after the second, a record that does not decrypt is bad_record_mac."""
    pair = _hrr_pair(pki)
    pair.server.receive_data(pair.client.data_to_send())  # CH1 -> HRR
    pair.client.receive_data(pair.server.data_to_send())
    assert pair.server.negotiated.get("hello_retry")
    pair.server._skip_early_budget = 20000  # as if CH1 had come with 0-RTT data
    pair.server.receive_data(pair.client.data_to_send())  # CH2
    assert pair.server._skip_early_budget == 0
    pair.server.data_to_send()
    pair.server.receive_data(b"\x17\x03\x03\x00\x40" + bytes(64))
    assert pair.server.error is not None and pair.server.error.alert == AD.bad_record_mac


# --------------------------------------------------------------------------- output on failure

def test_flight_already_built_goes_out_before_a_later_records_alert(pki):
    """A TLS 1.2 ServerHello flight answered to the ClientHello is sent even when the next
    record in the same input (0-RTT data a TLS 1.3 client sent) fails: the client sees the
    downgrade, then unexpected_message (RFC 8446 Appendix D.3)."""
    pair = make_pair(client_config(pki, versions=["TLS 1.2"]), server_config(pki))
    data = pair.client.data_to_send() + b"\x17\x03\x03\x00\x20" + bytes(32)
    pair.server.receive_data(data)
    out = pair.server.data_to_send()
    types = [h[0] for h, _ in split_records(out)]
    assert types[0] == 22 and types[-1] == 21, types  # handshake flight first, the alert last
    assert pair.server.error.alert == AD.unexpected_message


# --------------------------------------------------------------------------- serve's page

def test_serve_alpn_is_http1_and_never_h2():
    from tlslab.lab.serve_http import serve_alpn
    assert serve_alpn(None) == ["http/1.1", "http/1.0"]
    assert serve_alpn(["http/1.1"]) == ["http/1.1"]
    with pytest.raises(ValueError, match="HTTP/2"):
        serve_alpn(["h2", "http/1.1"])


@pytest.mark.parametrize("offered,chosen", [(["h2", "http/1.1"], "http/1.1"),
                                            (["http/1.1"], "http/1.1"),
                                            (["http/1.0"], "http/1.0")])
def test_serve_config_selects_http1(pki, offered, chosen):
    from tlslab.lab.serve_http import serve_alpn
    pair = connect(client_config(pki, alpn_protocols=offered),
                   server_config(pki, alpn_protocols=serve_alpn(None)))
    check_ok(pair)
    assert pair.server.negotiated["alpn_protocol"] == chosen


def test_serve_config_refuses_h2_only_client(pki):
    from tlslab.lab.serve_http import serve_alpn

    def edit(ch):
        replace_ext(ch, Extension(ET.application_layer_protocol_negotiation,
                                  ProtocolNameList(protocol_name_list=[b"h2"])))
    server_refuses(client_config(pki, alpn_protocols=["http/1.1"]),
                   server_config(pki, alpn_protocols=serve_alpn(None)), edit,
                   AD.no_application_protocol)


def test_page_for_huge_client_hello_fits_one_record(pki):
    """4096 unknown extensions in the ClientHello: the page still fits 2^14 bytes."""
    from tlslab.workbench.httppage import MAX_RESPONSE, build_response

    def edit(ch):
        ch.extensions[:0] = [Extension(0x4000 + i, data=b"") for i in range(4000)]
    pair = connect(client_config(pki), server_config(pki), edit)
    check_ok(pair)
    response = build_response(pair.server.negotiated, pair.server.trace, peer="127.0.0.1:1",
                              request_line="GET / HTTP/1.1")
    assert len(response) <= MAX_RESPONSE
    head, body = response.split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"more)" in body


def test_page_with_huge_request_line_is_cut_to_one_record():
    from tlslab.workbench.httppage import MAX_RESPONSE, build_response
    response = build_response({"version": "TLS 1.3"}, None, request_line="GET /" + "a" * 40000)
    head, body = response.split(b"\r\n\r\n", 1)
    assert len(response) <= MAX_RESPONSE
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"more characters)" in body  # the request line is clipped, the page kept whole


# --------------------------------------------------------------------------- CCM suites

@pytest.mark.parametrize("suite", ["TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"])
def test_ccm_suites_when_named(pki, suite):
    """RFC 8446 §B.4: the CCM suites work when a configuration names them (on both sides)."""
    pair = connect(client_config(pki, versions=["TLS 1.3"], cipher_suites=[suite]),
                   server_config(pki, cipher_suites=["TLS_AES_128_GCM_SHA256", suite]))
    check_ok(pair, "TLS 1.3")
    assert pair.server.negotiated["cipher_suite"] == suite


def test_ccm_suites_are_not_enabled_by_default(pki):
    cfg = server_config(pki)
    assert 0x1304 not in cfg.suites13 and 0x1305 not in cfg.suites13
    server_refuses(client_config(pki, versions=["TLS 1.3"],
                                 cipher_suites=["TLS_AES_128_CCM_SHA256"]),
                   server_config(pki), None, AD.handshake_failure)


def test_ccm8_tamper_is_bad_record_mac(pki):
    """The 8-byte tag is checked: a flipped tag byte is bad_record_mac."""
    suite = "TLS_AES_128_CCM_8_SHA256"
    pair = connect(client_config(pki, versions=["TLS 1.3"], cipher_suites=[suite]),
                   server_config(pki, cipher_suites=[suite]))
    check_ok(pair, "TLS 1.3")
    pair.client.send_application_data(b"hello")
    rec = bytearray(pair.client.data_to_send())
    assert len(rec) == 5 + 5 + 1 + 8
    rec[-1] ^= 1
    pair.server.receive_data(bytes(rec))
    assert pair.server.error is not None and pair.server.error.alert == AD.bad_record_mac


# --------------------------------------------------------------------------- TLS 1.2-only extensions

@pytest.mark.parametrize("ext_type", [ET.encrypt_then_mac, ET.extended_master_secret])
def test_tls12_only_extension_with_body_ignored_in_tls13(pki, ext_type):
    """RFC 8446 §4.2: TLS 1.3 does not use them, so their body does not matter there."""
    def edit(ch):
        drop_ext(ch, ext_type)
        ch.extensions.insert(0, Extension(ext_type, data=b"\x17" * 22))
    check_ok(connect(client_config(pki, versions=["TLS 1.3"]), server_config(pki), edit), "TLS 1.3")


@pytest.mark.parametrize("ext_type", [ET.encrypt_then_mac, ET.extended_master_secret])
def test_tls12_only_extension_with_body_is_decode_error_in_tls12(pki, ext_type):
    """RFC 7366 §2, RFC 7627 §5.1: the extension_data is empty."""
    def edit(ch):
        drop_ext(ch, ext_type)
        ch.extensions.insert(0, Extension(ext_type, data=b"\x01"))
    server_refuses(client_config(pki, versions=["TLS 1.2"]), server_config(pki), edit,
                   AD.decode_error)


# --------------------------------------------------------------------------- TLS 1.2 choices

def test_tls12_ecdhe_without_supported_groups_uses_p256(pki):
    """RFC 8422 §4: without supported_groups the server picks a curve; P-256 is the one
    every ECC client has (§5.1.1), where x25519 would break an old client."""
    pair = make_pair(client_config(pki, versions=["TLS 1.2"]), server_config(pki),
                     lambda ch: drop_ext(ch, ET.supported_groups))
    pair.server.receive_data(pair.client.data_to_send())
    assert pair.server.error is None and pair.server.data_to_send()
    assert pair.server.negotiated["group"] == "secp256r1"


def test_tls12_ffdhe_groups_listed_none_common_is_insufficient_security(pki):
    """RFC 7919 §4: FFDHE groups listed (any of 256..511), none acceptable, no other suite:
    insufficient_security."""
    def edit(ch):
        replace_ext(ch, Extension(ET.supported_groups, NamedGroupList(named_group_list=[0x01FC])))
    server_refuses(client_config(pki, versions=["TLS 1.2"],
                                 cipher_suites=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]),
                   server_config(pki), edit, AD.insufficient_security)


@pytest.mark.parametrize("group", ["ffdhe4096", "ffdhe8192"])
def test_tls12_dhe_with_large_ffdhe_group(pki, group):
    pair = connect(client_config(pki, versions=["TLS 1.2"], groups=[group],
                                 cipher_suites=["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]),
                   server_config(pki))
    check_ok(pair, "TLS 1.2")
    assert pair.server.negotiated["group"] == group


def test_tls12_malformed_change_cipher_spec_is_unexpected_message(pki):
    """A CCS other than the single byte 1: unexpected_message (RFC 8446 §5's rule; RFC 5246
    names no alert)."""
    pair = make_pair(client_config(pki, versions=["TLS 1.2"]), server_config(pki))
    pair.server.receive_data(pair.client.data_to_send())
    pair.client.receive_data(pair.server.data_to_send())
    pair.server.receive_data(b"\x14\x03\x03\x00\x02\x01\x01")
    assert pair.server.error is not None and pair.server.error.alert == AD.unexpected_message


def test_tls12_session_id_resumption_without_its_suite_is_illegal_parameter(pki):
    """RFC 5246 §7.4.1.2: a ClientHello resuming a session MUST offer that session's suite."""
    scfg = server_config(pki, tickets=0)
    ccfg = client_config(pki, versions=["TLS 1.2"], cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                                                   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"])
    first = connect(ccfg, scfg)
    check_ok(first, "TLS 1.2")
    sh = next(e.message for e in first.server.trace.entries
              if e.kind == "message" and e.direction == "sent" and e.name == "ServerHello")
    session_id = sh.legacy_session_id_echo
    assert session_id

    def edit(ch):
        ch.legacy_session_id = session_id
        ch.cipher_suites = [c for c in ch.cipher_suites if c != 0xC02F]
    server_refuses(ccfg, scfg, edit, AD.illegal_parameter)


# --------------------------------------------------------------------------- message types

@pytest.mark.parametrize("msg_type", [11, 20, 15])  # Certificate, Finished, CertificateVerify
def test_wrong_message_type_first_is_unexpected_message_even_if_malformed(pki, msg_type):
    """RFC 8446 §6.2 / RFC 5246 §7.2.2: a message type the state does not allow is
    unexpected_message, whatever its (here malformed) body holds."""
    from tlslab.proto.server import ServerConnection
    server = ServerConnection(server_config(pki))
    body = b"\x00\x05\xff\xff\xff\xff\xff" + bytes(40)
    msg = bytes([msg_type]) + len(body).to_bytes(3, "big") + body
    server.receive_data(b"\x16\x03\x01" + len(msg).to_bytes(2, "big") + msg)
    assert server.error is not None and server.error.alert == AD.unexpected_message


def test_server_accepts_secp256r1mlkem768_by_default(pki):
    from tlslab.proto.groups import HAVE_MLKEM
    if not HAVE_MLKEM:
        pytest.skip("this cryptography has no ML-KEM")
    pair = connect(client_config(pki, versions=["TLS 1.3"], groups=["SecP256r1MLKEM768"]),
                   server_config(pki))
    check_ok(pair, "TLS 1.3")
    assert pair.server.negotiated["group"] == "SecP256r1MLKEM768"


def test_serve_command_config_offers_http1_alpn_and_refuses_h2():
    """What ``tlslab serve`` builds: ALPN http/1.1, http/1.0 without --alpn; --alpn h2 is a
    usage error (its page is HTTP/1.x)."""
    from tlslab.cli.common import UsageProblem
    from tlslab.cli.serve import _server_config
    config, ca = _server_config(None, None, None, None, None, None, None, None, False,
                                ["localhost"])
    assert config.alpn_protocols == ["http/1.1", "http/1.0"] and ca is not None
    with pytest.raises(UsageProblem, match="HTTP/2"):
        _server_config(None, None, None, None, None, None, ["h2"], None, False, ["localhost"])


# --------------------------------------------------------------------------- oversized Finished

@pytest.mark.parametrize("length", [65, 196656, 0x3FFFF])
def test_oversized_finished_is_decode_error_at_its_first_record(pki, length):
    """test-tls13-finished pads the client Finished to hundreds of KiB over many records:
    its header already says it cannot be a Finished (at most 64 bytes, RFC 8446 §4.4.4), so
    the server answers decode_error after the first record instead of buffering the rest
    (which `tlslab serve` cut off at 192 KiB with close_notify, failing the test)."""
    from tlslab.proto.client import ClientConnection
    from tlslab.proto.keyschedule import SUITES
    from tlslab.proto.protection import RecordProtector
    from tlslab.proto.server import ServerConnection
    client, server = ClientConnection(client_config(pki)), ServerConnection(server_config(pki))
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    client.data_to_send()  # its real Finished is not sent
    writer = RecordProtector(SUITES[client.schedule.suite.code],
                             client.schedule.secrets["client_handshake_traffic_secret"])
    first = b"\x14" + length.to_bytes(3, "big") + bytes(10)  # the rest would follow
    server.receive_data(writer.seal(22, first))
    assert server.closed
    assert [e.name for e in server.trace.of_kind("alert") if e.direction == "sent"] == ["decode_error"]
    assert f"Finished announces {length} bytes" in str(server.error)
