"""``tlslab decode``: TLS connections rebuilt from captures with the engine's codec.

* Engine pairs recorded as captures (:mod:`tlslab.capture.writer`): every suite and
  feature the engine has (TLS 1.3 AES-GCM / ChaCha20-Poly1305, HelloRetryRequest,
  resumption, 0-RTT accepted and rejected, KeyUpdate, client certificates; TLS 1.2 AEAD,
  CBC with and without encrypt-then-MAC, RSA key exchange, resumption), IPv6, tiny and
  out-of-order segments, retransmissions, STARTTLS.  The decoded messages must be the
  ones the engine's own client traced, the decrypted application data what was sent.
* The recorded real-peer captures in ``../shared/peers/captures`` (skipped without them),
  with the key log, with only its ``RSA`` line, and without it.
* Bad input, each through the command: truncated and corrupt captures, a file that is
  not a capture, plain HTTP on port 443, key logs with wrong, missing and malformed
  secrets, a capture that starts mid-connection, a handshake that never completed.

``test_decode_tshark.py`` compares the same kind of captures with tshark.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tlslab.capture.decode import CaptureDecoder, decode_connection
from tlslab.capture.keylog import KeyLogError, read_keylog
from tlslab.capture.report import connection_json
from tlslab.capture.tcp import read_connections
from tlslab.capture.writer import Conversation, write_pcap
from tlslab.cli.main import app
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.extensions import ET
from tlslab.proto.messages import ClientHello
from tlslab.proto.server import ServerConnection
from tlslab.workbench.certgen import make_throwaway_chain

pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")

SHARED_CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "peers" / "captures"
REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
ANSWER = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"decoded by tlslab\n" * 40


# --------------------------------------------------------------------------- recording helpers

@pytest.fixture(scope="module")
def pki():
    chain, key, _ = make_throwaway_chain(key_type="rsa2048")
    return chain, key


def rfc(name: str) -> str:
    """The engine's class name of a message -> its RFC name (Certificate12 -> Certificate)."""
    return re.sub(r"1[0-2]$", "", name)


@dataclass
class Recorded:
    """What the engine pair did, to compare the decoded capture with."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    data: dict = field(default_factory=lambda: {"client": b"", "server": b""})
    client: ClientConnection | None = None
    server: ServerConnection | None = None


def wire(client, server, conv: Conversation, rounds: int = 60) -> None:
    """Move bytes between the two engines, recording each flight as TCP segments."""
    for _ in range(rounds):
        moved = False
        data = client.data_to_send()
        if data:
            conv.send("client", data)
            server.receive_data(data)
            moved = True
        data = server.data_to_send()
        if data:
            conv.send("server", data)
            client.receive_data(data)
            moved = True
        if not moved:
            return


def session(client_config: ClientConfig, server_config: ServerConfig, conv: Conversation, *,
            early_data: bytes | None = None, key_update: bool = False,
            request: bytes = REQUEST, answer: bytes = ANSWER) -> Recorded:
    """One connection: handshake, a request and an answer, optionally a KeyUpdate, then
    close_notify both ways and FINs."""
    client, server = ClientConnection(client_config), ServerConnection(server_config)
    rec = Recorded(client=client, server=server)
    client.start_handshake(early_data=early_data)
    wire(client, server, conv)
    assert client.handshake_complete and server.handshake_complete, (client.error, server.error)
    if early_data is not None and client.early_data_accepted:
        rec.data["client"] += early_data
    client.send_application_data(request)
    wire(client, server, conv)
    server.send_application_data(answer)
    wire(client, server, conv)
    rec.data["client"] += request
    rec.data["server"] += answer
    if key_update:
        client.send_key_update(request_update=True)
        wire(client, server, conv)
        client.send_application_data(b"after the key update")
        server.send_application_data(b"and the server's after its own")
        wire(client, server, conv)
        rec.data["client"] += b"after the key update"
        rec.data["server"] += b"and the server's after its own"
    client.close()
    wire(client, server, conv)
    conv.close()
    rec.messages = [("client" if e.direction == "sent" else "server", rfc(e.name))
                    for e in client.trace.entries if e.kind == "message"]
    return rec


def decoded(pcap: Path, keylog: Path | None = None, **kw):
    kl = read_keylog(keylog) if keylog is not None else None
    return list(CaptureDecoder(pcap, kl, **kw).connections())


def messages_of(conn) -> list[tuple[str, str]]:
    return [(m.direction, m.type) for m in conn.messages]


def data_of(conn, direction: str, early: bool | None = None) -> bytes:
    return b"".join(a.data for a in conn.application_data if a.direction == direction
                    and (early is None or a.early == early))


def without_etm(kwargs: dict) -> ClientHello:
    """A ClientHello template like the engine's but without encrypt_then_mac (RFC 7366),
    so that a CBC suite runs MAC-then-encrypt."""
    probe = ClientConnection(ClientConfig(**kwargs))
    probe.start_handshake()
    ch = ClientHello.parse(probe.data_to_send()[5:])
    ch.extensions = [e for e in ch.extensions if e.type != ET.encrypt_then_mac]
    return ch


def run_case(tmp_path: Path, pki, *, ckw: dict | None = None, skw: dict | None = None,
             connections: int = 1, early_data: bytes | None = None, key_update: bool = False,
             client_addr: str = "10.0.0.1", server_addr: str = "10.0.0.2", port: int = 443,
             mss: int = 1460, name: str = "case") -> tuple[Path, Path, list[Recorded]]:
    """Record ``connections`` connections made with one client config (so later ones resume)
    into ``name.pcap``, the client's key log into ``name.keylog``."""
    chain, key = pki
    keylog = tmp_path / f"{name}.keylog"
    ckw = dict(ckw or {})
    if ckw.pop("no_etm", False):
        ckw["client_hello_template"] = without_etm(dict(server_name="localhost", insecure=True,
                                                        **ckw))
    ccfg = ClientConfig(server_name="localhost", insecure=True, keylog_file=str(keylog), **ckw)
    scfg = ServerConfig(certificate_chain=chain, private_key=key, **(skw or {}))
    convs, recs = [], []
    for i in range(connections):
        conv = Conversation((client_addr, 40000 + i), (server_addr, port), start=1e9 + i, mss=mss)
        conv.open()
        recs.append(session(ccfg, scfg, conv, early_data=early_data if i else None,
                            key_update=key_update))
        convs.append(conv)
    pcap = write_pcap(tmp_path / f"{name}.pcap", convs)
    return Path(pcap), keylog, recs


def check_against_engine(conns, recs: list[Recorded]) -> None:
    assert len(conns) == len(recs)
    for conn, rec in zip(conns, recs):
        assert conn.tls and not conn.problems, conn.problems
        assert conn.decryption == "complete", connection_json(conn, fields=False)
        assert conn.handshake_complete is True
        assert messages_of(conn) == rec.messages
        assert data_of(conn, "client") == rec.data["client"]
        assert data_of(conn, "server") == rec.data["server"]
        assert conn.version == rec.client.negotiated["version"]
        assert conn.cipher_suite == rec.client.negotiated["cipher_suite"]


# --------------------------------------------------------------------------- every suite and feature

TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]


@pytest.mark.parametrize("suite", TLS13_SUITES)
def test_tls13_suites(tmp_path, pki, suite):
    pcap, keylog, recs = run_case(tmp_path, pki, ckw={"cipher_suites": [suite]},
                                  skw={"cipher_suites": [suite]})
    check_against_engine(decoded(pcap, keylog), recs)


TLS12_CASES = [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", False),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", False),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", False),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", False),   # encrypt-then-MAC (RFC 7366)
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", True),       # MAC-then-encrypt
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", False),         # RSA key transport
    ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", False),
]


@pytest.mark.parametrize("suite, mte", TLS12_CASES,
                         ids=[s + ("-mte" if m else "") for s, m in TLS12_CASES])
def test_tls12_suites(tmp_path, pki, suite, mte):
    ckw = {"versions": ["1.2"], "cipher_suites": [suite], "no_etm": mte}
    pcap, keylog, recs = run_case(tmp_path, pki, ckw=ckw,
                                  skw={"versions": ["1.2"], "cipher_suites": [suite]})
    (conn,) = decoded(pcap, keylog)
    check_against_engine([conn], recs)
    assert conn.negotiated["encrypt_then_mac"] is ("CBC" in suite and not mte)
    assert conn.negotiated["extended_master_secret"] is True


def test_tls13_hello_retry_request(tmp_path, pki):
    pcap, keylog, recs = run_case(tmp_path, pki, skw={"cookie_hrr": True})
    (conn,) = decoded(pcap, keylog)
    check_against_engine([conn], recs)
    assert [m.type for m in conn.messages[:4]] == ["ClientHello", "HelloRetryRequest",
                                                  "ClientHello", "ServerHello"]
    assert conn.negotiated["hello_retry"] is True


def test_tls13_resumption_and_key_update(tmp_path, pki):
    pcap, keylog, recs = run_case(tmp_path, pki, connections=2, key_update=True)
    conns = decoded(pcap, keylog)
    check_against_engine(conns, recs)
    assert conns[0].negotiated["resumed"] is False and conns[1].negotiated["resumed"] is True
    assert "Certificate" not in [t for _, t in messages_of(conns[1])]
    # KeyUpdate both ways: the records after it were opened with the derived secrets
    keys = {a.key for a in conns[0].application_data}
    assert {"client_application_traffic_secret_1",
            "server_application_traffic_secret_1"} <= keys
    names = [e.name for e in conns[0].trace.entries if e.kind == "secret"]
    assert "write key updated" in names and "read key updated" in names


def test_tls13_key_log_with_later_traffic_secrets(tmp_path, pki):
    """A key log without the *_TRAFFIC_SECRET_0 lines but with *_TRAFFIC_SECRET_1 (as a few
    stacks write after a KeyUpdate): the records after the KeyUpdate are decrypted with
    them, the ones before are reported as needing *_TRAFFIC_SECRET_0."""
    from tlslab.proto.offline import tls13_next_secret
    pcap, keylog, recs = run_case(tmp_path, pki, key_update=True,
                                  ckw={"cipher_suites": ["TLS_AES_128_GCM_SHA256"]})
    lines = []
    for line in keylog.read_text().splitlines():
        label, cr, secret = line.split()
        if label.endswith("_TRAFFIC_SECRET_0"):
            nxt = tls13_next_secret(0x1301, bytes.fromhex(secret)).hex()
            lines.append(f"{label[:-1]}1 {cr} {nxt}")
        else:
            lines.append(line)
    later = tmp_path / "later.keylog"
    later.write_text("\n".join(lines) + "\n")
    (conn,) = decoded(pcap, later)
    assert data_of(conn, "client").endswith(b"after the key update")
    assert data_of(conn, "server").endswith(b"and the server's after its own")
    assert REQUEST not in data_of(conn, "client")
    needs = {u.needs for u in conn.undecrypted.values()}
    assert needs == {"CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"}


def test_tls13_early_data_accepted(tmp_path, pki):
    early = b"GET /early HTTP/1.0\r\n\r\n"
    pcap, keylog, recs = run_case(tmp_path, pki, connections=2, early_data=early,
                                  skw={"max_early_data_size": 4096})
    conns = decoded(pcap, keylog)
    check_against_engine(conns, recs)
    second = conns[1]
    assert second.negotiated["early_data_accepted"] is True
    assert data_of(second, "client", early=True) == early
    assert ("client", "EndOfEarlyData") in messages_of(second)
    assert "CLIENT_EARLY_TRAFFIC_SECRET" in second.keys_found


def test_tls13_early_data_rejected(tmp_path, pki):
    """The server refuses 0-RTT: the client's early records are still decrypted (its key
    log has the early secret) and reported as 0-RTT; the handshake key takes over after."""
    chain, key = pki
    keylog = tmp_path / "k.log"
    ccfg = ClientConfig(server_name="localhost", insecure=True, keylog_file=str(keylog))
    issuing = ServerConfig(certificate_chain=chain, private_key=key, max_early_data_size=4096)
    refusing = ServerConfig(certificate_chain=chain, private_key=key, max_early_data_size=0,
                            ticket_keys=issuing.ticket_keys)
    convs = [Conversation(("10.0.0.1", 40000 + i), ("10.0.0.2", 443), start=1e9 + i).open()
             for i in range(2)]
    first = session(ccfg, issuing, convs[0])
    second = session(ccfg, refusing, convs[1], early_data=b"too early")
    assert second.client.early_data_accepted is False
    pcap = write_pcap(tmp_path / "rejected.pcap", convs)
    conns = decoded(pcap, keylog)
    check_against_engine(conns[:1], [first])
    conn = conns[1]
    assert conn.decryption == "complete" and conn.handshake_complete
    assert messages_of(conn) == second.messages
    assert conn.negotiated["early_data_accepted"] is False
    assert data_of(conn, "client", early=True) == b"too early"
    assert data_of(conn, "client", early=False) == REQUEST


def test_tls13_client_certificate(tmp_path, pki):
    from tlslab.lab.pki import make_pki
    client = make_pki().server("client")
    files = client.write(tmp_path / "client")
    pcap, keylog, recs = run_case(
        tmp_path, pki, ckw={"certificate_chain": client.chain, "private_key": client.key},
        skw={"client_ca_file": files["client_ca"], "require_client_cert": True})
    (conn,) = decoded(pcap, keylog)
    check_against_engine([conn], recs)
    assert ("client", "Certificate") in messages_of(conn)
    assert ("client", "CertificateVerify") in messages_of(conn)
    assert conn.negotiated["client_certificate"]


def test_tls12_resumption(tmp_path, pki):
    pcap, keylog, recs = run_case(tmp_path, pki, connections=2,
                                  ckw={"versions": ["1.2"]}, skw={"versions": ["1.2"]})
    conns = decoded(pcap, keylog)
    check_against_engine(conns, recs)
    assert conns[1].negotiated["resumed"] is True
    assert [t for _, t in messages_of(conns[1])][:2] == ["ClientHello", "ServerHello"]
    assert "ClientKeyExchange" not in [t for _, t in messages_of(conns[1])]


def test_ipv6_tiny_segments_any_port(tmp_path, pki):
    """Records cut into 7-byte TCP segments, IPv6, a port that is not 443: found by parsing."""
    pcap, keylog, recs = run_case(tmp_path, pki, client_addr="fd00::1", server_addr="fd00::2",
                                  port=8765, mss=7)
    (conn,) = decoded(pcap, keylog)
    check_against_engine([conn], recs)
    assert conn.server == "[fd00::2]:8765"


def test_out_of_order_and_retransmitted_segments(tmp_path, pki):
    pcap, keylog, recs = run_case(tmp_path, pki, mss=100, name="plain")
    shuffled = _packets(pcap)
    # swap neighbours of one direction and repeat some segments: what TCP reassembly must
    # undo (a swap across directions would change the order of the conversation itself)
    sender = [_sport(f) for _, f in shuffled]
    for i in range(3, len(shuffled) - 1, 3):
        if sender[i] == sender[i + 1]:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    shuffled[10:10] = [shuffled[12], shuffled[20]]
    shuffled = [(1e9 + i * 1e-4, frame) for i, (_, frame) in enumerate(shuffled)]
    out = write_pcap(tmp_path / "shuffled.pcap", packets=shuffled)
    (conn,) = decoded(Path(out), keylog)
    check_against_engine([conn], recs)
    assert conn.tcp["retransmitted_bytes"] > 0


#: plaintext dialogues before TLS: SMTP (RFC 3207), IMAP (RFC 3501 §6.2.1), POP3 (RFC 2595 §4)
STARTTLS = {
    "smtp": (25, [("server", b"220 mail.example ESMTP\r\n"), ("client", b"EHLO me\r\n"),
                  ("server", b"250-mail.example\r\n250 STARTTLS\r\n"),
                  ("client", b"STARTTLS\r\n"), ("server", b"220 2.0.0 Ready to start TLS\r\n")]),
    "imap": (143, [("server", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
                   ("client", b"a001 STARTTLS\r\n"),
                   ("server", b"a001 OK Begin TLS negotiation now\r\n")]),
    "pop3": (110, [("server", b"+OK POP3 ready\r\n"), ("client", b"STLS\r\n"),
                   ("server", b"+OK Begin TLS negotiation\r\n")]),
}


def starttls_capture(tmp_path: Path, pki, protocol: str) -> tuple[Path, Path, Recorded]:
    """A connection that upgrades to TLS after ``protocol``'s plaintext dialogue."""
    chain, key = pki
    keylog = tmp_path / f"{protocol}.keylog"
    ccfg = ClientConfig(server_name="localhost", insecure=True, keylog_file=str(keylog))
    scfg = ServerConfig(certificate_chain=chain, private_key=key)
    port, dialogue = STARTTLS[protocol]
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", port)).open()
    for who, line in dialogue:
        conv.send(who, line)
    rec = session(ccfg, scfg, conv, request=b"a002 NOOP\r\n", answer=b"a002 OK done\r\n")
    return Path(write_pcap(tmp_path / f"{protocol}.pcap", [conv])), keylog, rec


@pytest.mark.parametrize("protocol", list(STARTTLS))
def test_starttls(tmp_path, pki, protocol):
    """TLS after SMTP STARTTLS, IMAP STARTTLS or POP3 STLS: found after the dialogue."""
    pcap, keylog, rec = starttls_capture(tmp_path, pki, protocol)
    (conn,) = decoded(pcap, keylog)
    check_against_engine([conn], [rec])
    assert conn.upgraded_from == "STARTTLS"


def test_stream_selection_and_json(tmp_path, pki):
    pcap, keylog, recs = run_case(tmp_path, pki, connections=2)
    (only,) = decoded(pcap, keylog, stream=1)
    assert only.index == 1
    result = CliRunner().invoke(app, ["decode", str(pcap), "--keylog", str(keylog), "--json",
                                      "--stream", "1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (c,) = doc["connections"]
    assert set(c) >= {"client", "server", "version", "cipher_suite", "decrypted", "messages",
                      "application_data", "problems"}
    assert c["stream"] == 1 and c["decrypted"] is True
    # the message starts after its record's 5-byte header (RFC 8446 §5.1)
    assert c["messages"][0]["type"] == "ClientHello" and c["messages"][0]["offset"] == 5
    assert c["messages"][0]["record_offset"] == 0
    first = c["messages"][0]
    assert {"direction", "type", "offset", "length", "fields"} <= set(first)
    assert first["direction"] == "client_to_server" and first["fields"]
    assert first["fields"][0]["name"] == "msg_type" or first["fields"][0]["name"] == "legacy_version"
    data = b"".join(bytes.fromhex(a["data_hex"]) for a in c["application_data"]
                    if a["direction"] == "client_to_server")
    assert data == recs[1].data["client"]
    # no secret value anywhere in the document
    secrets = [line.split()[2] for line in keylog.read_text().splitlines() if line.strip()]
    assert not any(s in result.stdout for s in secrets)


def test_views_html_and_trace(tmp_path, pki):
    pcap, keylog, _ = run_case(tmp_path, pki, key_update=True)
    html = tmp_path / "report.html"
    runner = CliRunner()
    result = runner.invoke(app, ["decode", str(pcap), "--keylog", str(keylog), "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert "EncryptedExtensions" in result.stdout and "KeyUpdate" in result.stdout
    page = html.read_text()
    assert "EncryptedExtensions" in page and "<script" in page and "http://" not in page.split("<body", 1)[1][:0]
    result = runner.invoke(app, ["decode", str(pcap), "--keylog", str(keylog), "--trace"])
    assert result.exit_code == 0, result.output
    assert "Finished" in result.stdout
    secrets = [line.split()[2] for line in keylog.read_text().splitlines() if line.strip()]
    assert not any(s in result.stdout + page for s in secrets)


def test_decode_connection_from_held_bytes(tmp_path, pki):
    """The non-streaming path (a Connection already reassembled) gives the same result."""
    pcap, keylog, recs = run_case(tmp_path, pki, skw={"cookie_hrr": True})
    (tcp,) = list(read_connections(pcap))
    conn = decode_connection(tcp, read_keylog(keylog))
    check_against_engine([conn], recs)


# --------------------------------------------------------------------------- recorded real peers

def _shared(name: str) -> tuple[Path, Path, dict]:
    pcap = SHARED_CAPTURES / f"{name}.pcap"
    if not pcap.is_file():
        pytest.skip(f"{SHARED_CAPTURES} is not here (the shared peer data)")
    return pcap, SHARED_CAPTURES / f"{name}.keylog", json.loads((SHARED_CAPTURES / f"{name}.json").read_text())


SHARED = ["tls12_ecdhe_rsa_aes128gcm", "tls12_no_shared_cipher", "tls12_rsa_aes128_sha",
          "tls13_curl", "tls13_hrr", "tls13_mtls", "tls13_resumption", "tls13_x25519_ecdsa"]


@pytest.mark.parametrize("name", SHARED)
def test_shared_captures_with_keylog(name):
    """The handshake types tshark saw with the key log (recorded in NAME.json), in order."""
    pcap, keylog, facts = _shared(name)
    conns = decoded(pcap, keylog)
    types = [str(int(m.raw[0])) for c in conns for m in c.messages]
    expected = [t for frame in facts["handshake_types_seen_with_keylog"] for t in frame.split(",")]
    assert types == expected
    assert sum(c.decrypted_records for c in conns) == sum(c.protected_records for c in conns)
    if facts.get("http_frames_decrypted"):
        assert all(b"HTTP/1." in data_of(c, "server") for c in conns)
    assert len([a for c in conns for a in c.alerts]) == len(facts.get("alerts_seen_with_keylog", []))


@pytest.mark.parametrize("name", SHARED)
def test_shared_captures_without_keylog(name):
    pcap, _, facts = _shared(name)
    conns = decoded(pcap)
    for conn in conns:
        assert conn.tls and conn.decrypted_records == 0
        hidden = {u.needs for u in conn.undecrypted.values()}
        if conn.version == "TLS 1.3":
            assert [t for _, t in messages_of(conn)][-1] == "ServerHello"
            assert hidden <= {"SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                              "SERVER_TRAFFIC_SECRET_0", "CLIENT_TRAFFIC_SECRET_0"}
            assert "SERVER_HANDSHAKE_TRAFFIC_SECRET" in hidden
        elif conn.protected_records:
            assert hidden == {"CLIENT_RANDOM"}
        assert all("no key log given" in u.reason for u in conn.undecrypted.values())


def test_shared_rsa_keylog_line(tmp_path):
    """TLS_RSA_*: the ``RSA`` line (first 8 bytes of the encrypted pre-master secret) alone
    decrypts (RFC 5246 §7.4.7.1, §8.1 with RFC 7627's extended master secret)."""
    pcap, keylog, _ = _shared("tls12_rsa_aes128_sha")
    only_rsa = tmp_path / "rsa.keylog"
    only_rsa.write_text("".join(l + "\n" for l in keylog.read_text().splitlines()
                                if l.startswith("RSA ")))
    (conn,) = decoded(pcap, only_rsa)
    assert conn.decryption == "complete"
    assert b"HTTP/1.0 200" in data_of(conn, "server")


# --------------------------------------------------------------------------- bad input

def cli(*args: str):
    result = CliRunner().invoke(app, ["decode", *args])
    assert "Traceback" not in result.output
    return result


def cli_json(*args: str) -> tuple[int, dict]:
    result = cli(*args, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture()
def good(tmp_path, pki):
    return run_case(tmp_path, pki, name="good")


def test_bad_input_not_a_capture(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a capture\n")
    result = cli(str(text))
    assert result.exit_code == 2
    assert "not a pcap or pcapng capture" in result.stderr
    code, doc = cli_json(str(text))
    assert code == 2 and doc["error"]["code"] == "not-a-capture" and doc["connections"] == []
    assert cli(str(tmp_path / "missing.pcap")).exit_code == 2
    assert cli(str(tmp_path)).exit_code == 2
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert "empty" in cli(str(empty)).stderr


def test_bad_input_truncated_capture(tmp_path, good):
    pcap, keylog, _ = good
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:len(data) * 2 // 3])   # ends inside a packet
    code, doc = cli_json(str(cut), "--keylog", str(keylog))
    assert code == 0
    assert any("truncated" in p for p in doc["problems"])
    (c,) = doc["connections"]
    assert [m["type"] for m in c["messages"]][:2] == ["ClientHello", "ServerHello"]
    assert c["handshake_complete"] is not True or c["problems"]
    result = cli(str(cut), "--keylog", str(keylog))
    assert result.exit_code == 0 and "truncated" in result.stdout


def test_bad_input_corrupt_capture(tmp_path, good):
    pcap, keylog, _ = good
    data = bytearray(pcap.read_bytes())
    # a packet header whose captured length is absurd, in the middle of the file
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(bytes(data[:24]) + b"\x00" * 8 + b"\xff\xff\xff\x7f" * 2 + bytes(data[40:]))
    code, doc = cli_json(str(corrupt), "--keylog", str(keylog))
    assert code in (1, 2)
    assert doc.get("error")
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(bytes(data[:24]) + bytes(range(256)) * 8)
    result = cli(str(garbage))
    assert result.exit_code == 1 and "no TLS connection" in result.stderr


def test_bad_input_http_on_port_443(tmp_path):
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 443)).open()
    conv.send("client", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    conv.send("server", b"HTTP/1.1 400 Bad Request\r\n\r\nThis is a TLS port")
    conv.close()
    pcap = write_pcap(tmp_path / "http.pcap", [conv])
    result = cli(pcap)
    assert result.exit_code == 1
    assert "not TLS" in result.stderr and "HTTP" in result.stderr
    code, doc = cli_json(pcap)
    assert code == 1 and doc["connections"] == []
    assert doc["summary"]["not_tls"][0]["reason"].startswith("not TLS")


def test_bad_input_keylog_wrong_secrets(tmp_path, good, pki):
    """A key log from other connections (no line for this client random), and one whose
    secrets for this client random are wrong (authentication fails): exit 1, said why."""
    pcap, keylog, _ = good
    _, other_keylog, _ = run_case(tmp_path, pki, name="other")
    code, doc = cli_json(str(pcap), "--keylog", str(other_keylog))
    assert code == 1 and doc["error"]["code"] == "not-decrypted"
    (c,) = doc["connections"]
    assert any("no line for" in p for p in c["problems"])
    assert c["messages"][-1]["type"] == "ServerHello"   # what is in clear is still shown
    wrong = tmp_path / "wrong.keylog"
    lines = []
    for line in keylog.read_text().splitlines():
        label, cr, secret = line.split()
        lines.append(f"{label} {cr} {'00' * (len(secret) // 2)}")
    wrong.write_text("\n".join(lines) + "\n")
    code, doc = cli_json(str(pcap), "--keylog", str(wrong))
    assert code == 1
    (c,) = doc["connections"]
    assert any("does not decrypt" in p and "authentication failed" in p for p in c["problems"])
    assert "00" * 32 not in json.dumps(doc)   # the (zeroed) secrets are never shown


def test_bad_input_keylog_missing_and_malformed_secrets(tmp_path, good):
    pcap, keylog, _ = good
    lines = keylog.read_text().splitlines()
    # the handshake secrets missing, the rest kept, plus malformed lines
    partial = tmp_path / "partial.keylog"
    kept = [l for l in lines if "HANDSHAKE" not in l]
    partial.write_text("\n".join(kept + ["CLIENT_RANDOM zz 11", "NOT_A_LABEL 00 11",
                                         "SERVER_TRAFFIC_SECRET_0 abcd 1234",
                                         "CLIENT_HANDSHAKE_TRAFFIC_SECRET only-two"]) + "\n")
    code, doc = cli_json(str(pcap), "--keylog", str(partial))
    assert code == 0
    (c,) = doc["connections"]
    assert c["decryption"] == "partial"
    assert "SERVER_HANDSHAKE_TRAFFIC_SECRET" in c["keys"]["needed"]
    assert [a for a in c["application_data"] if a["direction"] == "server_to_client"]
    problems = doc["keylog"]["problems"]
    assert any("line" in p and "not hex" in p for p in problems)
    assert any("unknown label NOT_A_LABEL" in p for p in problems)
    assert any("client random has 2 bytes" in p for p in problems)
    assert any("expected LABEL <hex> <hex>" in p for p in problems)
    # a key log that is no key log at all, and a missing one: bad input
    binary = tmp_path / "binary.keylog"
    binary.write_bytes(bytes(range(256)) * 4)
    code, doc = cli_json(str(pcap), "--keylog", str(binary))
    assert code == 2 and doc["error"]["code"] == "not-a-keylog"
    code, doc = cli_json(str(pcap), "--keylog", str(tmp_path / "nope.keylog"))
    assert code == 2 and doc["error"]["code"] == "missing-keylog"
    with pytest.raises(KeyLogError):
        read_keylog(pcap)


def test_bad_input_capture_starts_mid_connection(tmp_path, good):
    pcap, keylog, recs = good
    packets = _packets(pcap)
    # drop the TCP handshake, the hellos and a little more: the capture starts mid-stream
    late = [(1e9 + i * 1e-4, f) for i, (_, f) in enumerate(packets[9:])]
    mid = Path(write_pcap(tmp_path / "mid.pcap", packets=late))
    code, doc = cli_json(str(mid), "--keylog", str(keylog))
    (c,) = doc["connections"]
    assert c["mid_connection"] is True
    assert any("starts in the middle" in p for p in c["problems"])
    assert c["records"]["client_to_server"]["encrypted"] + c["records"]["server_to_client"]["encrypted"] > 0
    assert code == 1   # a key log was given and nothing could be decrypted with it
    result = cli(str(mid))
    assert result.exit_code == 0 and "middle" in result.stdout


def test_bad_input_handshake_never_completed(tmp_path, good):
    pcap, keylog, _ = good
    packets = _packets(pcap)
    # the TCP handshake, the ClientHello, the first segment of the server's answer
    first_server = next(i for i, (_, f) in enumerate(packets) if _sport(f) == 443 and _payload(f))
    cut = Path(write_pcap(tmp_path / "cut.pcap", packets=packets[:first_server + 1]))
    code, doc = cli_json(str(cut), "--keylog", str(keylog))
    (c,) = doc["connections"]
    assert c["handshake_complete"] is False
    assert any("did not complete" in p for p in c["problems"])
    assert code in (0, 1)
    only_hello = Path(write_pcap(tmp_path / "hello.pcap", packets=packets[:first_server]))
    code, doc = cli_json(str(only_hello))
    assert code == 0
    (c,) = doc["connections"]
    assert [m["type"] for m in c["messages"]] == ["ClientHello"]
    assert c["error"] == "the server never answered the ClientHello"


def _drop_server_bytes(packets, at: int):
    """The packets without the server segment that carries server stream byte ``at``."""
    seen = 0
    for i, (_, f) in enumerate(packets):
        if _sport(f) == 443 and _payload(f):
            n = len(_payload(f))
            if seen <= at < seen + n:
                return packets[:i] + packets[i + 1:]
            seen += n
    raise AssertionError("no such byte")


def test_bad_input_gap_in_the_encrypted_flight(tmp_path, pki):
    """A lost segment inside the server's encrypted flight: said; the records after the gap
    are found again and decrypted (the lost records' sequence numbers skipped, RFC 8446
    §5.3), so the answer is still read."""
    pcap, keylog, recs = run_case(tmp_path, pki, mss=200, name="gappy")
    packets = _drop_server_bytes(_packets(pcap), 2000)
    lossy = Path(write_pcap(tmp_path / "lossy.pcap", packets=packets))
    (conn,) = decoded(lossy, keylog)
    assert any("not in the capture" in p for p in conn.problems)
    assert data_of(conn, "server") == recs[0].data["server"]
    assert data_of(conn, "client") == recs[0].data["client"]
    assert ("client", "Finished") in messages_of(conn)


def test_bad_input_gap_in_the_server_hello(tmp_path, pki):
    """The ServerHello itself is lost: the suite is found by trying the ClientHello's TLS 1.3
    suites with the key log's secrets, and the rest is decrypted."""
    pcap, keylog, recs = run_case(tmp_path, pki, mss=200, name="nosh",
                                  ckw={"cipher_suites": ["TLS_CHACHA20_POLY1305_SHA256",
                                                         "TLS_AES_128_GCM_SHA256"]},
                                  skw={"cipher_suites": ["TLS_CHACHA20_POLY1305_SHA256"]})
    packets = _drop_server_bytes(_packets(pcap), 10)
    lossy = Path(write_pcap(tmp_path / "nosh.pcap", packets=packets))
    (conn,) = decoded(lossy, keylog)
    assert any("ServerHello is not in the capture" in p for p in conn.problems)
    assert conn.cipher_suite == "TLS_CHACHA20_POLY1305_SHA256"
    assert data_of(conn, "server") == recs[0].data["server"]


def test_bad_input_options(tmp_path, good):
    pcap, keylog, _ = good
    code, doc = cli_json(str(pcap), "--stream", "7")
    assert code == 2 and doc["error"]["code"] == "no-such-stream"
    assert cli(str(pcap), "--stream", "-1").exit_code == 2
    result = cli()
    assert result.exit_code == 2 and "missing CAPTURE" in result.stderr
    assert cli(str(pcap), "--html", str(tmp_path / "no" / "dir" / "x.html")).exit_code == 2


def test_help_has_examples():
    result = CliRunner().invoke(app, ["decode", "--help"])
    assert result.exit_code == 0
    assert "--keylog" in result.stdout and "Examples" in result.stdout


def _packets(pcap: Path) -> list[tuple[float, bytes]]:
    import dpkt
    with open(pcap, "rb") as f:
        return [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(f)]


def _tcp(frame: bytes):
    import dpkt
    return dpkt.ethernet.Ethernet(frame).data.data


def _sport(frame: bytes) -> int:
    return _tcp(frame).sport


def _payload(frame: bytes) -> bytes:
    return bytes(_tcp(frame).data)
