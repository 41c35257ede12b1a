"""The views read from the trace: which key protected each record and message (TLS 1.3
full, 0-RTT, KeyUpdate, TLS 1.2, either side), the JSON contract (RFC message names,
records taken apart, the key schedule, states in words, one handshake time), and views of
odd traces that must not break."""
from __future__ import annotations

import io
import json
import re
import threading

from rich.console import Console

import tlslab
from tlslab.io.blocking import make_server
from tlslab.io.memory import MemoryPair
from tlslab.proto.trace import Trace
from tlslab.view.html import render_html
from tlslab.view.jsonview import to_json
from tlslab.view.keyschedule import key_schedule
from tlslab.view.records import protection_keys
from tlslab.view.terminal import render_bytes, render_sequence

REPRS = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|object at 0x")


# ``pki`` (a throwaway CA and leaf) is the conftest fixture


def _pair(pki, client_kw=None, server_kw=None) -> MemoryPair:
    chain, key, ca = pki
    pair = MemoryPair(tlslab.ClientConnection(tlslab.ClientConfig(server_name="localhost", ca_file=ca,
                                                                  **(client_kw or {}))),
                      tlslab.ServerConnection(tlslab.ServerConfig(certificate_chain=chain,
                                                                  private_key=key, **(server_kw or {}))))
    pair.handshake()
    assert not pair.failed
    return pair


def _keyed(trace, kind: str) -> list[tuple[str, str, str | None]]:
    keys = protection_keys(trace)
    return [(e.direction, e.name, keys.get(i)) for i, e in enumerate(trace.entries) if e.kind == kind]


def test_tls13_keys_of_every_message_and_record(pki):
    pair = _pair(pki)
    pair.client.send_application_data(b"ping")
    pair.pump()
    pair.server.send_application_data(b"pong")
    pair.pump()
    pair.client.send_key_update(request_update=False)
    pair.client.send_application_data(b"after")
    pair.pump()
    pair.client.close()
    pair.pump()
    msgs = _keyed(pair.client.trace, "message")
    assert msgs[0] == ("sent", "ClientHello", "plaintext")
    assert ("received", "ServerHello", "plaintext") in msgs
    for name in ("EncryptedExtensions", "Certificate", "CertificateVerify", "Finished"):
        assert ("received", name, "server_handshake_traffic_secret") in msgs, name
    assert ("sent", "Finished", "client_handshake_traffic_secret") in msgs
    assert ("received", "NewSessionTicket", "server_application_traffic_secret_0") in msgs
    assert ("sent", "KeyUpdate", "client_application_traffic_secret_0") in msgs
    records = [r for r in _keyed(pair.client.trace, "record") if r[1] == "application_data"]
    assert records[0] == ("sent", "application_data", "client_application_traffic_secret_0")
    assert ("received", "application_data", "server_application_traffic_secret_0") in records
    assert records[-1] == ("sent", "application_data", "client_application_traffic_secret_1")
    alerts = _keyed(pair.client.trace, "alert")
    assert alerts[0] == ("sent", "close_notify", "client_application_traffic_secret_1")
    # the server's trace, its own perspective
    smsgs = _keyed(pair.server.trace, "message")
    assert smsgs[0] == ("received", "ClientHello", "plaintext")
    assert ("sent", "EncryptedExtensions", "server_handshake_traffic_secret") in smsgs
    assert ("received", "Finished", "client_handshake_traffic_secret") in smsgs


def test_tls12_keys_and_rfc_names(pki):
    pair = _pair(pki, {"versions": ["TLS 1.2"]})
    pair.client.send_application_data(b"x")
    pair.pump()
    msgs = _keyed(pair.client.trace, "message")
    assert ("received", "Certificate12", "plaintext") in msgs
    assert ("sent", "ClientKeyExchange", "plaintext") in msgs
    assert ("sent", "Finished", "client_write_key") in msgs
    assert ("received", "Finished", "server_write_key") in msgs
    doc = to_json(pair.client.trace, pair.client.negotiated)
    names = [m["name"] for m in doc["messages"]]
    assert "Certificate" in names and "Certificate12" not in names
    assert all(m["type"] == m["name"] for m in doc["messages"])
    ks = doc["key_schedule"]
    assert ks["tls12"] and [s["secret"] for s in ks["steps"]][:3] == \
        ["master_secret", "client_write_key", "server_write_key"]
    assert ks["steps"][1]["protects"]["records_sent"] >= 2  # Finished and the data


def test_json_contract_tls13(pki):
    pair = _pair(pki)
    doc = json.loads(json.dumps(to_json(pair.client.trace, pair.client.negotiated)))
    assert doc["ok"] is True and doc["verified"] is True and doc["failure"] is None
    assert isinstance(doc["handshake_ms"], float)
    first = doc["records"][0]
    assert first["header"].startswith("160301") and first["outer_content_type"] == "handshake"
    protected = next(r for r in doc["records"] if r["direction"] == "received" and r.get("protected"))
    assert protected["outer_content_type"] == "application_data"
    assert protected["content_type"] == "handshake"
    assert [p["name"] for p in protected["parts"]][-1] == "AEAD tag"
    assert protected["parts"][-1]["length"] == 16
    assert protected["key"] == "server_handshake_traffic_secret"
    ch = doc["messages"][0]
    assert ch["type"] == "ClientHello" and ch["key"] == "plaintext"
    random = next(f for f in ch["fields"] if f["name"] == "random")
    assert "RFC 8446 §4.1.2" in random["explanation"]
    assert doc["states"][0]["to"] == "WAIT_SH" and doc["states"][0]["meaning"] == "waiting for the ServerHello"
    steps = {s["secret"]: s for s in doc["key_schedule"]["steps"]}
    assert steps["handshake_secret"]["inputs"][1] == "(EC)DHE shared secret"
    assert "server EncryptedExtensions" in steps["server_handshake_traffic_secret"]["protects"]["messages"]
    # failed handshake: where it broke
    chain, key, ca = pki
    bad = MemoryPair(tlslab.ClientConnection(tlslab.ClientConfig(server_name="wrong.example", ca_file=ca)),
                     tlslab.ServerConnection(tlslab.ServerConfig(certificate_chain=chain, private_key=key)))
    bad.handshake()
    doc = to_json(bad.client.trace, bad.client.negotiated, error=bad.client.error)
    assert doc["ok"] is False
    assert doc["failure"]["last_message"] == "Certificate" and doc["failure"]["state"] == "WAIT_CERT_CR"
    assert doc["alerts"][0]["key"] == "client_handshake_traffic_secret" and doc["alerts"][0]["protected"]
    assert doc["verified"] is False and "wrong.example" in doc["verification"]["failed"]
    assert "NOT verified" not in render_html(bad.client.trace, bad.client.negotiated, error=bad.client.error)


def test_0rtt_keys(pki):
    chain, key, ca = pki
    srv = make_server("127.0.0.1", 0, tlslab.ServerConfig(certificate_chain=chain, private_key=key,
                                                          max_early_data_size=1024),
                      lambda s: s.send(s.recv() or b""), log=lambda line: None,
                      handshake_timeout=5, io_timeout=5)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        config = tlslab.ClientConfig(server_name="localhost", ca_file=ca)
        with tlslab.connect("127.0.0.1", srv.port, config=config, timeout=5) as s:
            s.send(b"hi")
            s.recv()
            s.wait_for_tickets(timeout=5)
        with tlslab.connect("127.0.0.1", srv.port, config=config, timeout=5, early_data=b"early") as s:
            assert s.early_data_accepted
            trace, negotiated = s.trace, s.negotiated
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
    records = _keyed(trace, "record")
    assert ("sent", "application_data", "client_early_traffic_secret") in records
    msgs = _keyed(trace, "message")
    assert ("sent", "EndOfEarlyData", "client_early_traffic_secret") in msgs
    assert ("sent", "Finished", "client_handshake_traffic_secret") in msgs
    steps = {s["secret"]: s for s in key_schedule(trace, negotiated)["steps"]}
    assert steps["client_early_traffic_secret"]["protects"]["records_sent"] >= 1
    out = io.StringIO()
    render_sequence(trace, negotiated, console=Console(file=out, width=120))
    assert "client early-data key" in out.getvalue()


def test_views_of_odd_traces_never_break():
    trace = Trace()
    trace.add("message", "received", "Mystery", raw=b"\xfe\x00\x00\x01\x00")
    trace.add("record", "received", "handshake", raw=b"\x16\x03", summary={"protected": None})
    trace.add("alert", "sent", "decode_error", raw=b"\x02\x32", summary={"level": 2})
    trace.add("info", "local", "something new", summary={"items": [1, 2], "flag": False, "x": None})
    trace.add("state", "local", "WAIT_SH", summary={"from": "START"})
    trace.add("error", "local", "DecodeError", detail="bad <bytes>", summary={"alert": "decode_error"})
    out = io.StringIO()
    console = Console(file=out, width=90)
    render_sequence(trace, {}, console=console, error="boom")
    render_bytes(trace, console=console)
    text = out.getvalue()
    assert "could not render" not in text and "boom" in text
    assert not REPRS.search(text), REPRS.search(text).group(0)
    doc = json.loads(json.dumps(to_json(trace, {}, error="boom")))
    assert doc["ok"] is False and doc["failure"]["reason"] == "boom"
    page = render_html(trace, {}, error="boom", target="<x>")
    assert "bad &lt;bytes&gt;" in page and "<x>" not in page
    for empty in (Trace(), None):
        render_sequence(empty, None, console=console)
        json.dumps(to_json(empty))
        assert "<!DOCTYPE html>" in render_html(empty, None, error="refused")


def test_html_in_chinese(pki):
    pair = _pair(pki)
    page = render_html(pair.client.trace, pair.client.negotiated, target="x", lang="zh")
    try:
        assert '<html lang="zh-Hans">' in page
        for needle in ("握手完成", "逐条消息看握手", "密钥调度（RFC 8446 §7.1）", "客户端提出方案",
                       "32 个随机字节"):
            assert needle in page, needle
        assert "The client proposes" not in page
    finally:
        from tlslab.view.i18n import use_language
        use_language("en")
    assert "The client proposes" in render_html(pair.client.trace, pair.client.negotiated)


def test_record_with_its_bytes_is_cut_into_parts():
    """A trace that holds whole records (``tlslab decode``): the ciphertext is shown part by
    part, with the tag's own bytes, in the terminal, JSON and HTML."""
    payload = bytes(range(40)) + bytes.fromhex("aa" * 16)
    header = b"\x17\x03\x03" + len(payload).to_bytes(2, "big")
    trace = Trace()
    trace.add("message", "sent", "ClientHello", raw=b"\x01\x00\x00\x00")
    trace.add("record", "received", "handshake", raw=header + payload,
              summary={"content_type": "handshake", "length": len(payload), "protected": True})
    out = io.StringIO()
    render_bytes(trace, console=Console(file=out, width=130),
                 negotiated={"version": "TLS 1.3", "cipher_suite": "TLS_AES_128_GCM_SHA256"})
    text = out.getvalue()
    assert "content type 23 = application_data" in text
    assert "encrypted_record, 40 bytes: content + inner type handshake" in text
    assert re.search(r"aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa\s+AEAD tag, 16 bytes", text)
    rec = to_json(trace, {"version": "TLS 1.3"})["records"][0]
    assert rec["header"] == header.hex() and rec["record_length"] == 56
    page = render_html(trace, {"version": "TLS 1.3", "cipher_suite": "TLS_AES_128_GCM_SHA256"})
    assert 'title="AEAD tag, 16 bytes">' + "aa " * 16 in page
