"""Every real ClientHello in ../shared/peers/clienthellos gets the answer a real server gives.

The captures come from openssl, GnuTLS, NSS, Java, Go, Node, curl, Python and browser
fingerprints.  Fed to a default tlslab server, each must get a ServerHello for the
highest version both sides support (TLS 1.3 when offered, else TLS 1.2), or a
protocol_version alert when the client offers nothing the server speaks (TLS 1.0 only).
The folder is iterated, so new captures are covered automatically.
"""
from __future__ import annotations

import pytest

from tlslab.proto.config import ServerConfig
from tlslab.proto.extensions import ET
from tlslab.proto.messages import ClientHello, ServerHello
from tlslab.proto.server import ServerConnection


def captures(shared):
    folder = shared / "peers" / "clienthellos"
    return sorted(folder.glob("*.bin")) if folder.is_dir() else []



@pytest.fixture(scope="module")
def server_config(certs_dir):
    return ServerConfig.from_files(str(certs_dir / "ecdsa-chain.pem"), str(certs_dir / "ecdsa.key"))


def split(data: bytes):
    out, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        out.append(data[i:i + 5 + n])
        i += 5 + n
    return out


def test_every_capture_is_answered(shared_dir, server_config):
    files = captures(shared_dir)
    assert files, "no ClientHello captures found"
    for path in files:
        data = path.read_bytes()
        ch = ClientHello.parse(b"".join(r[5:] for r in split(data)))
        sv = ch.ext_value(ET.supported_versions)
        offers13 = sv is not None and 0x0304 in sv.versions
        server = ServerConnection(server_config)
        events = server.receive_data(data)
        out = server.data_to_send()
        assert out, f"{path.name}: no answer"
        first = split(out)[0]
        if first[0] == 21:  # an alert
            assert first[5:7] == b"\x02\x46", f"{path.name}: unexpected alert {first.hex()} ({server.error})"
            assert server.error is not None and "TLS 1.0" in str(server.error), path.name
            continue
        assert first[0] == 22 and first[5] == 2, f"{path.name}: {first[:10].hex()}"
        body = first[5:]
        sh = ServerHello.parse(body[:4 + int.from_bytes(body[1:4], "big")])
        version = server.negotiated["version"]
        if offers13:
            assert version == "TLS 1.3", f"{path.name}: negotiated {version}"
        else:
            assert version == "TLS 1.2", f"{path.name}: negotiated {version}"
            assert sh.random[-8:] == bytes.fromhex("444f574e47524401"), f"{path.name}: no downgrade sentinel"
        assert server.error is None, f"{path.name}: {server.error}"
        assert not any(type(e).__name__ == "ConnectionClosed" for e in events), path.name
