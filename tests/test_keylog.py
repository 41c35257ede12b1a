"""The key log (NSS format): owner-only permissions, one file per config, SSLKEYLOGFILE."""
from __future__ import annotations

import os
import stat

from tlslab.io.memory import MemoryPair
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.server import ServerConnection


def _server(certs_dir):
    return ServerConfig.from_files(str(certs_dir / "ecdsa-chain.pem"), str(certs_dir / "ecdsa.key"))


def test_keylog_file_is_private_and_shared(tmp_path, certs_dir):
    path = tmp_path / "keys.log"
    old = os.umask(0o022)
    try:
        cfg = ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"), keylog_file=str(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    scfg = _server(certs_dir)
    for _ in range(2):
        pair = MemoryPair(ClientConnection(cfg), ServerConnection(scfg))
        pair.handshake()
        assert pair.client.handshake_complete
        assert pair.client.keylog is cfg.keylog()
    lines = path.read_text().splitlines()
    labels = [line.split()[0] for line in lines]
    # two connections, each with the four traffic secrets and the exporter secret
    assert labels.count("CLIENT_HANDSHAKE_TRAFFIC_SECRET") == 2
    assert labels.count("SERVER_TRAFFIC_SECRET_0") == 2
    assert all(len(line.split()[1]) == 64 for line in lines)


def test_sslkeylogfile_environment(tmp_path, certs_dir, monkeypatch):
    path = tmp_path / "env.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    cfg = ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"))
    pair = MemoryPair(ClientConnection(cfg), ServerConnection(_server(certs_dir)))
    pair.handshake()
    assert "CLIENT_TRAFFIC_SECRET_0" in path.read_text()


def test_no_keylog_by_default(certs_dir, monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    cfg = ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"))
    assert cfg.keylog() is None
