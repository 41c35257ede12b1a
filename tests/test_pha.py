"""Post-handshake client authentication (RFC 8446 §4.6.2): in memory and with openssl."""
from __future__ import annotations

import socket
import subprocess
import threading

import pytest

from tlslab.proto.server13 import certificate_request
from conftest import require_tool

from tlslab.io.memory import MemoryPair
from tlslab.proto.alerts import AlertDescription as AD
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig, load_identity
from tlslab.proto.events import PeerAuthenticated
from tlslab.proto.messages import CertificateRequest
from tlslab.proto.server import ServerConnection


@pytest.fixture
def identity(certs_dir):
    return load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))


def server_config(certs_dir, **kw):
    return ServerConfig.from_files(str(certs_dir / "ecdsa-chain.pem"), str(certs_dir / "ecdsa.key"),
                                   client_ca_file=str(certs_dir / "ca.pem"), client_auth_in_handshake=False,
                                   **kw)


def client_config(certs_dir, identity=None, pha=True):
    chain, key = identity if identity else (None, None)
    return ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"), post_handshake_auth=pha,
                        certificate_chain=chain, private_key=key)


def connected(ccfg, scfg):
    pair = MemoryPair(ClientConnection(ccfg), ServerConnection(scfg))
    pair.handshake()
    assert pair.client.handshake_complete and pair.server.handshake_complete
    assert pair.server.peer_certificates == []  # nothing asked during the handshake
    return pair


def test_post_handshake_certificate(certs_dir, identity):
    pair = connected(client_config(certs_dir, identity), server_config(certs_dir))
    pair.server.request_client_certificate()
    _, server_events = pair.pump()
    auth = [e for e in server_events if isinstance(e, PeerAuthenticated)]
    assert len(auth) == 1 and auth[0].certificates[0].subject == identity[0][0].subject
    assert pair.server.negotiated["client_certificate"].startswith("CN=tlslab test client")
    pair.client.send_application_data(b"after")  # the connection goes on
    assert [e.data for e in pair.pump()[1]] == [b"after"]
    pair.server.request_client_certificate()  # a second request works too (fresh context)
    assert any(isinstance(e, PeerAuthenticated) for e in pair.pump()[1])


def test_client_without_certificate_answers_empty(certs_dir):
    pair = connected(client_config(certs_dir), server_config(certs_dir))
    pair.server.request_client_certificate()
    _, server_events = pair.pump()
    assert [e.certificates for e in server_events if isinstance(e, PeerAuthenticated)] == [[]]


def test_required_certificate_missing(certs_dir):
    pair = connected(client_config(certs_dir), server_config(certs_dir, require_client_cert=True))
    pair.server.request_client_certificate()
    pair.pump()
    assert pair.server.closed and pair.server.error.alert == AD.certificate_required


def test_not_offered(certs_dir, identity):
    pair = connected(client_config(certs_dir, identity, pha=False), server_config(certs_dir))
    with pytest.raises(ConnectionError, match="post_handshake_auth"):
        pair.server.request_client_certificate()


def test_unsolicited_request_is_unexpected(certs_dir, identity):
    pair = connected(client_config(certs_dir, identity, pha=False), server_config(certs_dir))
    cr = certificate_request(pair.server.config)
    cr.certificate_request_context = b"\x01" * 8
    pair.server._send_message(cr)
    pair.pump()
    assert pair.client.error.alert == AD.unexpected_message


def test_empty_context_is_illegal(certs_dir, identity):
    pair = connected(client_config(certs_dir, identity), server_config(certs_dir))
    cr = certificate_request(pair.server.config)  # context b"": only valid during the handshake
    assert isinstance(cr, CertificateRequest)
    pair.server._send_message(cr)
    pair.pump()
    assert pair.client.error.alert == AD.illegal_parameter


@pytest.mark.interop
def test_openssl_client_answers_post_handshake_request(certs_dir):
    require_tool("openssl")
    cfg = server_config(certs_dir)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.settimeout(20)
    result = {}

    def serve():
        conn, _ = listener.accept()
        conn.settimeout(10)
        server = ServerConnection(cfg)
        requested = False
        try:
            while not server.closed:
                data = conn.recv(65536)
                if not data:
                    break
                for event in server.receive_data(data):
                    if isinstance(event, PeerAuthenticated):
                        result["certs"] = event.certificates
                        server.send_application_data(b"authenticated\n")
                        server.close()
                if server.handshake_complete and not requested:
                    server.request_client_certificate()
                    requested = True
                conn.sendall(server.data_to_send())
        finally:
            result["error"] = server.error
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-enable_pha",
         "-CAfile", str(certs_dir / "ca.pem"), "-servername", "localhost",
         "-cert", str(certs_dir / "client.pem"), "-key", str(certs_dir / "client.key"),
         "-cert_chain", str(certs_dir / "intermediate.pem"), "-ign_eof"],
        input=b"hello\n", capture_output=True, timeout=30)
    thread.join(15)
    listener.close()
    assert result.get("error") is None, result
    assert result["certs"][0].subject.rfc4514_string().startswith("CN=tlslab test client")
    assert b"authenticated" in proc.stdout
