"""OCSP stapling (RFC 6066 §8, RFC 8446 §4.4.2.1) against ``openssl s_server -status_file``.

A real OCSP response for the shared test leaf is built with
``cryptography.x509.ocsp.OCSPResponseBuilder`` and signed by the issuing intermediate
(the issuer may sign its own responses, RFC 6960 §4.2.2.2), written to a temporary file
and handed to ``openssl s_server -status_file``. The tlslab client then has to:

* TLS 1.3: take the response from the first CertificateEntry's status_request extension;
* TLS 1.2: take it from the CertificateStatus handshake message;
* store the exact DER bytes in ``negotiated["ocsp_response"]``;
* with ``ocsp_stapling=False``: not send status_request and get no response;
* refuse a CertificateStatus it did not ask for (TLS 1.2, spliced in from a real
  openssl flight) and a ServerHello status_request it did not offer;

and ``tlslab connect`` has to show the stapled response (text and ``--json``).

Only 127.0.0.1 is used; every socket and subprocess has a time limit.
"""
from __future__ import annotations

import datetime
import json
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import run_bounded
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from test_interop_openssl import run_client

from tlslab.proto import extensions as X
from tlslab.proto.alerts import AlertDescription as AD
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig
from tlslab.proto.extensions import ET, Extension
from tlslab.proto.messages import ClientHello, HandshakeBuffer, ServerHello
from tlslab.proto.names import HandshakeType as HT
from tlslab.proto.record import plaintext_record

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

HANDSHAKE = 22
IO_TIMEOUT = 10.0
VERSIONS = {"1.3": ("-tls1_3", "TLS 1.3"), "1.2": ("-tls1_2", "TLS 1.2")}


# --------------------------------------------------------------------------- OCSP response

def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def make_ocsp_response(certs_dir: Path, leaf: str = "ecdsa") -> bytes:
    """A signed, successful OCSP response (status good) for ``{leaf}.pem``, DER."""
    cert = _load_cert(certs_dir / f"{leaf}.pem")
    issuer = _load_cert(certs_dir / "intermediate.pem")
    issuer_key = serialization.load_pem_private_key(
        (certs_dir / "intermediate.key").read_bytes(), password=None)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=cert, issuer=issuer, algorithm=hashes.SHA1(),
                             cert_status=ocsp.OCSPCertStatus.GOOD,
                             this_update=now - datetime.timedelta(minutes=5),
                             next_update=now + datetime.timedelta(days=1),
                             revocation_time=None, revocation_reason=None)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer))
    resp = builder.sign(issuer_key, hashes.SHA256())
    return resp.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def ocsp_server(openssl_server, certs_dir: Path, tmp_path: Path):
    """Factory: ``port, der = ocsp_server("1.3", leaf="ecdsa")`` starts ``openssl s_server
    -www -status_file resp.der`` for that version and leaf."""

    def start(version: str, leaf: str = "ecdsa", *extra: str) -> tuple[int, bytes]:
        der = make_ocsp_response(certs_dir, leaf)
        resp_file = tmp_path / f"ocsp-{leaf}-{version}.der"
        resp_file.write_bytes(der)
        port = openssl_server(VERSIONS[version][0], "-status_file", str(resp_file),
                              "-status_verbose", *extra, key_type=leaf)
        return port, der

    start.output = openssl_server.output
    return start


def _config(certs_dir: Path, version: str, **kw) -> ClientConfig:
    return ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"),
                        versions=[version], **kw)


def _sent_client_hello(conn: ClientConnection) -> ClientHello:
    entry = next(e for e in conn.trace.entries
                 if e.kind == "message" and e.direction == "sent" and e.name == "ClientHello")
    return ClientHello.parse(entry.raw)


def _received_messages(conn: ClientConnection) -> list[str]:
    return [e.name for e in conn.trace.entries if e.kind == "message" and e.direction == "received"]


def test_ocsp_response_builder_is_valid(certs_dir):
    """The fixture itself: a successful, signed response naming the leaf's serial."""
    der = make_ocsp_response(certs_dir)
    resp = ocsp.load_der_ocsp_response(der)
    issuer = _load_cert(certs_dir / "intermediate.pem")
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.serial_number == _load_cert(certs_dir / "ecdsa.pem").serial_number
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    # signed by the intermediate (RSA): raises InvalidSignature otherwise
    issuer.public_key().verify(resp.signature, resp.tbs_response_bytes,
                               padding.PKCS1v15(), resp.signature_hash_algorithm)


# --------------------------------------------------------------------------- positive

@pytest.mark.parametrize("version,leaf", [("1.3", "ecdsa"), ("1.3", "rsa"),
                                          ("1.2", "ecdsa"), ("1.2", "rsa")])
def test_stapled_response_is_received(ocsp_server, certs_dir, version, leaf):
    port, der = ocsp_server(version, leaf)
    res = run_client(_config(certs_dir, version), port)
    conn = res.conn
    assert res.complete is not None, res.describe()
    assert res.verified, res.describe()
    assert conn.negotiated["version"] == VERSIONS[version][1]
    assert b"HTTP/1.0 200 ok" in res.data, res.data[:200]

    # we asked for it: status_request(ocsp) in the ClientHello
    ch = _sent_client_hello(conn)
    sr = ch.ext(ET.status_request)
    assert sr is not None
    assert sr.value.status_type == 1

    got = conn.negotiated.get("ocsp_response")
    assert got is not None, f"no stapled OCSP response stored; {res.describe()}"
    assert bytes(got) == der
    parsed = ocsp.load_der_ocsp_response(bytes(got))
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.serial_number == _load_cert(certs_dir / f"{leaf}.pem").serial_number
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD

    # the engine said so in its trace
    staple = [e for e in conn.trace.entries if e.kind == "info" and e.name == "stapled OCSP response"]
    assert len(staple) == 1 and staple[0].summary.get("bytes") == len(der)

    received = _received_messages(conn)
    if version == "1.2":
        # RFC 6066 §8: CertificateStatus right after Certificate
        assert "CertificateStatus" in received, received
        cert = next(n for n in received if n.startswith("Certificate") and n != "CertificateStatus")
        assert received.index("CertificateStatus") == received.index(cert) + 1, received
        sh = ServerHello.parse(next(e.raw for e in conn.trace.entries
                                    if e.kind == "message" and e.name == "ServerHello"))
        assert sh.ext(ET.status_request) is not None
    else:
        # RFC 8446 §4.4.2.1: no separate message in TLS 1.3
        assert "CertificateStatus" not in received, received


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_no_stapling_when_not_requested(ocsp_server, certs_dir, version):
    port, _ = ocsp_server(version)
    res = run_client(_config(certs_dir, version, ocsp_stapling=False), port)
    conn = res.conn
    assert res.complete is not None, res.describe()
    assert res.verified, res.describe()
    assert _sent_client_hello(conn).ext(ET.status_request) is None
    assert "ocsp_response" not in conn.negotiated
    assert not any(e.name == "stapled OCSP response" for e in conn.trace.entries)
    assert "CertificateStatus" not in _received_messages(conn)
    if version == "1.2":
        sh = ServerHello.parse(next(e.raw for e in conn.trace.entries
                                    if e.kind == "message" and e.name == "ServerHello"))
        assert sh.ext(ET.status_request) is None


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_server_without_status_file(openssl_server, certs_dir, version):
    """We ask, the server has nothing to staple: the handshake still completes."""
    port = openssl_server(VERSIONS[version][0])
    res = run_client(_config(certs_dir, version), port)
    assert res.complete is not None, res.describe()
    assert _sent_client_hello(res.conn).ext(ET.status_request) is not None
    assert "ocsp_response" not in res.conn.negotiated
    assert "CertificateStatus" not in _received_messages(res.conn)


# --------------------------------------------------------------------------- negative (TLS 1.2)

def _records(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        if i + 5 + n > len(data):
            break
        out.append((data[i], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def _split_messages(data: bytes) -> list[bytes]:
    buf = HandshakeBuffer()
    buf.add(data)
    msgs = []
    while (m := buf.pop_message()) is not None:
        msgs.append(m)
    return msgs


def _openssl_flight_for_edited_hello(port: int, ch_record: bytes) -> list[bytes]:
    """Send a (rewritten) ClientHello to openssl and collect its first flight up to
    ServerHelloDone, as handshake messages."""
    deadline = time.monotonic() + IO_TIMEOUT
    data = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(ch_record)
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            hs = b"".join(body for t, body in _records(bytes(data)) if t == HANDSHAKE)
            msgs = _split_messages(hs)
            if msgs and msgs[-1][0] == HT.server_hello_done:
                return msgs
    pytest.fail(f"openssl sent no complete first flight: {bytes(data[:64]).hex()}...")


def _unsolicited_flight(ocsp_server, certs_dir) -> tuple[ClientConnection, list[bytes]]:
    """A tlslab client that did NOT ask for stapling, and openssl's real first flight to a
    copy of its ClientHello with status_request added (so it carries CertificateStatus)."""
    port, der = ocsp_server("1.2")
    conn = ClientConnection(_config(certs_dir, "1.2", ocsp_stapling=False))
    conn.start_handshake()
    out = conn.data_to_send()
    (ctype, body), = _records(out)
    assert ctype == HANDSHAKE
    ch = ClientHello.parse(body)
    assert ch.ext(ET.status_request) is None
    ch.extensions = list(ch.extensions) + [Extension(ET.status_request, X.StatusRequest(
        status_type=1, responder_id_list=b"", request_extensions=b""))]
    msgs = _openssl_flight_for_edited_hello(port, plaintext_record(HANDSHAKE, ch.build(), 0x0301))
    types = [m[0] for m in msgs]
    assert HT.certificate_status in types, f"openssl did not staple: {types}"
    status = msgs[types.index(HT.certificate_status)]
    assert status[4] == 1 and status[8:] == der  # status_type ocsp, 3-byte length, response
    return conn, msgs


def _feed(conn: ClientConnection, msgs: list[bytes]) -> None:
    for m in msgs:
        conn.receive_data(plaintext_record(HANDSHAKE, m, 0x0303))
        if conn.closed:
            break


def _alerts_sent(conn: ClientConnection) -> list[str]:
    return [e.name for e in conn.trace.entries if e.kind == "alert" and e.direction == "sent"]


def test_tls12_unsolicited_certificate_status_is_rejected(ocsp_server, certs_dir):
    """RFC 6066 §8: a server MUST NOT send CertificateStatus unless it returned
    status_request in its ServerHello (which it may only do if the client offered it).
    Here the ServerHello's status_request is removed, so the CertificateStatus that
    follows Certificate is out of place: unexpected_message, nothing stored."""
    conn, msgs = _unsolicited_flight(ocsp_server, certs_dir)
    sh = ServerHello.parse(msgs[0])
    assert sh.ext(ET.status_request) is not None
    sh.extensions = [e for e in sh.extensions if e.type != ET.status_request]
    _feed(conn, [sh.build()] + msgs[1:])
    assert conn.closed, f"client accepted an unsolicited CertificateStatus: {_received_messages(conn)}"
    # it got past ServerHello and Certificate and stopped exactly at CertificateStatus
    assert _received_messages(conn)[-1] == "CertificateStatus", _received_messages(conn)
    assert "CertificateStatus" in str(conn.error), repr(conn.error)
    assert not conn.handshake_complete
    assert "ocsp_response" not in conn.negotiated
    assert conn.error is not None
    assert getattr(conn.error, "alert", None) == AD.unexpected_message, repr(conn.error)
    assert _alerts_sent(conn) == ["unexpected_message"], _alerts_sent(conn)


def test_tls12_unsolicited_status_request_in_server_hello_is_rejected(ocsp_server, certs_dir):
    """The unedited flight: the ServerHello answers a status_request the client never sent
    (RFC 5246 §7.4.1.4: unsupported_extension)."""
    conn, msgs = _unsolicited_flight(ocsp_server, certs_dir)
    _feed(conn, msgs)
    assert conn.closed
    assert not conn.handshake_complete
    assert "ocsp_response" not in conn.negotiated
    assert getattr(conn.error, "alert", None) == AD.unsupported_extension, repr(conn.error)
    assert "status_request" in str(conn.error), repr(conn.error)
    assert _received_messages(conn) == ["ServerHello"]
    assert _alerts_sent(conn) == ["unsupported_extension"], _alerts_sent(conn)


@pytest.mark.skip(reason="TLS 1.3: the CertificateEntry is encrypted under handshake keys "
                  "negotiated with openssl, so an unsolicited status_request cannot be spliced "
                  "in from a real flight; tlslab's own server cannot staple OCSP. The engine "
                  "check (client.py _on_certificate: CertificateEntry extension not offered -> "
                  "unsupported_extension) is not exercised against a real peer here.")
def test_tls13_unsolicited_certificate_entry_status_request_is_rejected():
    pass


# --------------------------------------------------------------------------- CLI

def _tlslab_cli() -> str:
    exe = Path(sys.executable).with_name("tlslab")
    if exe.exists():
        return str(exe)
    found = shutil.which("tlslab")
    if found is None:
        pytest.skip("the `tlslab` console script is not installed in this environment")
    return found


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_cli_connect_shows_stapled_response(ocsp_server, certs_dir, version):
    port, der = ocsp_server(version)
    rc, out, err = run_bounded([_tlslab_cli(), "connect", f"127.0.0.1:{port}",
                                "--servername", "localhost",
                                "--ca-file", str(certs_dir / "ca.pem"),
                                "--tls", version, "--timeout", "10"],
                               timeout=30, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin",
                                                "NO_COLOR": "1", "TERM": "dumb"})
    assert rc == 0, f"rc={rc}\n{out[-3000:]}\n{err[-2000:]}"
    lines = [ln for ln in out.splitlines() if "stapled OCSP response" in ln]
    assert lines, f"`tlslab connect` does not mention the stapled OCSP response:\n{out[-3000:]}"
    assert any(f"{len(der)} bytes" in ln for ln in lines), lines  # the summary row


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_cli_connect_json_has_stapled_response(ocsp_server, certs_dir, version):
    port, der = ocsp_server(version)
    rc, out, err = run_bounded([_tlslab_cli(), "connect", f"127.0.0.1:{port}",
                                "--servername", "localhost",
                                "--ca-file", str(certs_dir / "ca.pem"),
                                "--tls", version, "--timeout", "10", "--json"], timeout=30)
    assert rc == 0, f"rc={rc}\n{out[-3000:]}\n{err[-2000:]}"
    doc = json.loads(out)
    assert doc["ok"] is True
    # negotiated.ocsp_response: the DER response, hex
    assert doc["negotiated"].get("ocsp_response") == der.hex()
    assert ocsp.load_der_ocsp_response(bytes.fromhex(doc["negotiated"]["ocsp_response"])) \
        .serial_number == _load_cert(certs_dir / "ecdsa.pem").serial_number
    names = [m["name"] for m in doc["messages"] if m.get("direction") == "received"]
    assert ("CertificateStatus" in names) == (version == "1.2"), names


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_cli_connect_without_staple_says_none(openssl_server, certs_dir, version):
    port = openssl_server(VERSIONS[version][0])
    rc, out, err = run_bounded([_tlslab_cli(), "connect", f"127.0.0.1:{port}",
                                "--servername", "localhost",
                                "--ca-file", str(certs_dir / "ca.pem"),
                                "--tls", version, "--timeout", "10"],
                               timeout=30, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin",
                                                "NO_COLOR": "1", "TERM": "dumb"})
    assert rc == 0, f"rc={rc}\n{out[-3000:]}\n{err[-2000:]}"
    lines = [ln for ln in out.splitlines() if "stapled OCSP response" in ln]
    assert lines and "none" in lines[0], out[-3000:]

