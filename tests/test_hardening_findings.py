"""Regression tests for the review's smaller findings (issue 14, finding 6).

Each test failed before its fix: ticket keys that outlived their period, 0.5-RTT data
to a client whose certificate was not yet checked, TLS 1.2 warnings reported as fatal,
tracebacks in the trace, servers that honoured SSLKEYLOGFILE silently, a ticket file
written through symlinks, a trust-context cache keyed by id(), and resumed sessions not
bound to the trust store that verified the server.
"""
from __future__ import annotations

import json
import logging
import os

import pytest
from conftest import pki_client_config, pki_server_config

import tlslab
from tlslab.io.memory import MemoryPair
from tlslab.proto import events as ev
from tlslab.proto.alerts import AlertDescription, AlertLevel
from tlslab.proto.client import ClientConnection
from tlslab.proto.server import ServerConnection
from tlslab.proto.tickets import (FileTicketStore, Session, TicketFileError, TicketKeys,
                                  TicketState, TicketStore)


class _Fixed:
    """Injected randomness and a fixed clock (the engine reads no global state)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def random(self, n: int) -> bytes:
        return os.urandom(n)

    def time(self) -> float:
        return self.now


def _state() -> TicketState:
    return TicketState(0x1301, b"p" * 32, 1000, 7200, 1, 0, "", "", 0x0304, False, b"")


# -- ticket keys die with the clock, not with the next sealed ticket -----------------------
def test_ticket_keys_expire_by_the_clock_alone():
    keys = TicketKeys(rotation=3600)
    t0 = 10 * 3600 + 5
    ticket = keys.seal(_state(), t0, _Fixed(t0))
    assert keys.open(ticket, t0 + 3600) is not None  # next period: still readable
    # two periods later, with no ticket sealed in between, the key is gone
    assert keys.open(ticket, t0 + 2 * 3600) is None
    assert keys.open(ticket, t0) is None  # and it does not come back


def test_ticket_from_the_future_period_is_refused():
    keys = TicketKeys(rotation=3600)
    t = 20 * 3600
    ticket = keys.seal(_state(), t, _Fixed(t))
    assert keys.open(ticket, t - 2 * 3600) is None  # a clock set back does not revive it


# -- no 0.5-RTT data before the client's certificate is checked ---------------------------
def _server_after_client_hello(pki, **server_kw):
    client = ClientConnection(pki_client_config(pki))
    server = ServerConnection(pki_server_config(pki, **server_kw))
    client.start_handshake()
    server.receive_data(client.data_to_send())
    assert server.error is None and not server.handshake_complete
    return server


def test_half_rtt_data_refused_when_a_client_certificate_was_requested(pki):
    server = _server_after_client_hello(pki, client_ca_file=pki[2], require_client_cert=True)
    with pytest.raises(ConnectionError):
        server.send_application_data(b"secret for the certificate's holder")
    optional = _server_after_client_hello(pki, client_ca_file=pki[2])
    with pytest.raises(ConnectionError):
        optional.send_application_data(b"also gated: the app may decide by identity")


def test_half_rtt_data_still_allowed_without_client_authentication(pki):
    server = _server_after_client_hello(pki)
    server.send_application_data(b"0.5-RTT")  # RFC 8446 §4.4.4 (no exception)


# -- warnings are not fatal in TLS 1.2; everything but close_notify/user_canceled is in 1.3 --
@pytest.mark.parametrize("version,level,desc,fatal", [
    ("TLS 1.2", AlertLevel.warning, AlertDescription.no_renegotiation, False),
    ("TLS 1.2", AlertLevel.fatal, AlertDescription.handshake_failure, True),
    ("TLS 1.2", AlertLevel.warning, AlertDescription.close_notify, False),
    ("TLS 1.3", AlertLevel.warning, AlertDescription.handshake_failure, True),
    ("TLS 1.3", AlertLevel.warning, AlertDescription.user_canceled, False),
])
def test_alert_received_fatal_follows_the_version(pki, version, level, desc, fatal):
    pair = MemoryPair(ClientConnection(pki_client_config(pki, versions=[version])),
                      ServerConnection(pki_server_config(pki)))
    pair.handshake()
    assert pair.client.handshake_complete
    pair.server._send_alert(level, desc)
    events = pair.client.receive_data(pair.server.data_to_send())
    got = [e for e in events if isinstance(e, ev.AlertReceived)]
    assert len(got) == 1 and got[0].fatal is fatal, got


# -- an internal error's traceback stays out of the trace ---------------------------------
def test_internal_error_traceback_is_not_in_the_trace(pki, monkeypatch):
    server = ServerConnection(pki_server_config(pki))
    client = ClientConnection(pki_client_config(pki))
    client.start_handshake()

    def boom(*a, **k):
        raise IndexError("list index out of range")

    monkeypatch.setattr(server, "_process_records", boom)
    server.receive_data(client.data_to_send())
    assert server.error is not None and server.error.alert.name == "internal_error"
    assert "Traceback" in (server.internal_error_detail or "")
    dumped = json.dumps([[e.kind, e.name, str(e.detail), str(e.summary)]
                         for e in server.trace.entries])
    assert "Traceback" not in dumped and "IndexError" not in dumped
    assert "IndexError" not in str(server.error)


# -- SSLKEYLOGFILE: honoured by clients, by servers only when asked, and then loudly -------
def test_server_ignores_sslkeylogfile_unless_asked(pki, tmp_path, monkeypatch, caplog):
    path = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    assert pki_server_config(pki).keylog() is None
    assert pki_client_config(pki).keylog() is not None  # clients: as curl and browsers
    with caplog.at_level(logging.WARNING, logger="tlslab"):
        cfg = pki_server_config(pki, sslkeylogfile=True)
    assert cfg.keylog() is not None
    assert any(str(path) in r.getMessage() for r in caplog.records)
    pair = MemoryPair(ClientConnection(pki_client_config(pki, sslkeylogfile=False)),
                      ServerConnection(cfg))
    pair.handshake()
    assert "SERVER_TRAFFIC_SECRET_0" in path.read_text()


# -- the ticket file: no symlinks, no foreign modes, atomic rewrite -----------------------
def _session(name: str = "localhost") -> Session:
    return Session(server_name=name, ticket=b"t" * 40, psk=b"k" * 32, suite=0x1301, age_add=1,
                   lifetime=3600, received_at=1000.0)


def test_ticket_file_is_never_written_through_a_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "tickets.json"
    link.symlink_to(victim)
    with pytest.raises(TicketFileError, match="symbolic link"):
        FileTicketStore(str(link))
    assert victim.read_text() == "precious"


def test_ticket_file_rewrite_replaces_a_planted_link_and_fixes_the_mode(tmp_path):
    path = tmp_path / "tickets.json"
    store = FileTicketStore(str(path))
    store.add(_session())
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # someone swaps the file for a link between two saves: the rename replaces the link
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path.unlink()
    path.symlink_to(victim)
    store.add(_session("other"))
    assert victim.read_text() == "precious" and not path.is_symlink()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(json.loads(path.read_text())) == ["localhost", "other"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tlslab")] == []


def test_ticket_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "tickets.json"
    FileTicketStore(str(path)).add(_session())
    os.chmod(path, 0o644)
    with pytest.raises(TicketFileError, match="0644"):
        FileTicketStore(str(path))


# -- a trust context's identity is never reused ------------------------------------------
def test_trust_context_serials_are_unique_after_eviction(pki):
    from tlslab.proto import cert_paths
    from tlslab.proto.cert_store import load_trust_store
    trust = load_trust_store(pki[2])
    first = cert_paths._trust_context(trust)
    serial = first.serial
    # evict it by filling the cache with other trust lists
    for k in range(2, cert_paths._TRUST_CACHE_SIZE + 3):
        cert_paths._trust_context(list(trust) * k)  # another key: the same anchor k times
    again = cert_paths._trust_context(trust)
    assert again is not first and again.serial != serial


# -- resumed sessions are bound to how the server was verified ----------------------------
def test_session_from_an_insecure_client_is_not_resumed_by_a_verifying_one(pki, tmp_path):
    from tlslab.workbench.certgen import make_throwaway_chain
    other_chain, other_key, _ = make_throwaway_chain(names=["localhost"])
    # an impostor server for localhost, under another CA, meets an insecure client
    impostor = tlslab.ServerConfig(certificate_chain=other_chain, private_key=other_key,
                                   ticket_keys=TicketKeys())
    store = TicketStore()
    insecure = tlslab.ClientConfig(server_name="localhost", insecure=True, session_store=store)
    pair = MemoryPair(ClientConnection(insecure), ServerConnection(impostor))
    pair.handshake()
    assert pair.client.handshake_complete and store.count("localhost") > 0
    # a verifying client sharing the store must not resume with the impostor
    verifying = pki_client_config(pki, session_store=store)
    pair = MemoryPair(ClientConnection(verifying), ServerConnection(impostor))
    pair.handshake()
    assert not pair.client.handshake_complete
    assert pair.client.error is not None and pair.client.error.alert.name in (
        "unknown_ca", "bad_certificate")
    assert pair.client.negotiated.get("resumed") is not True


# -- a finished connection is freed by reference counting, not by the cyclic collector -----
@pytest.mark.parametrize("version", ["TLS 1.3", "TLS 1.2"])
def test_connections_are_not_reference_cycles(pki, version):
    """The key schedule used to hold a bound method of its connection: every connection was
    a cycle, and a server with thousands of them stalled in full collections."""
    import gc
    import weakref
    pair = MemoryPair(ClientConnection(pki_client_config(pki, versions=[version])),
                      ServerConnection(pki_server_config(pki)))
    pair.handshake()
    assert pair.client.handshake_complete
    refs = (weakref.ref(pair.client), weakref.ref(pair.server))
    gc.disable()
    try:
        del pair
        assert [r() is None for r in refs] == [True, True]
    finally:
        gc.enable()


@pytest.mark.parametrize("with_flag", [False, True])
def test_serve_key_log_is_explicit_and_loud(tmp_path, with_flag):
    """serve ignores SSLKEYLOGFILE (with a note) and announces --keylog on stderr."""
    import signal
    import subprocess
    import sys
    env_file = tmp_path / "env.log"
    flag_file = tmp_path / "flag.log"
    env = dict(os.environ, SSLKEYLOGFILE=str(env_file))
    cmd = [sys.executable, "-m", "tlslab", "serve", "--port", "0"]
    if with_flag:
        cmd += ["--keylog", str(flag_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        line = proc.stdout.readline()  # the banner: the notices were printed before it
        assert "listening on" in line
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    if with_flag:
        assert "warning: writing the TLS secrets" in err and str(flag_file) in err
    else:
        assert "SSLKEYLOGFILE is set but serve ignores it" in err
    assert not env_file.exists()
