"""Bounds on the work a peer can make us do for free (issue 14, finding 5).

Each test sends the flood through the real engines in memory (or over loopback for the
I/O adapters) and checks that the limit is enforced exactly: the last allowed message is
taken without complaint, the next one is answered with one alert.
"""
from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import pki_client_config as client_config, pki_server_config as server_config

import tlslab
from tlslab.io import blocking
from tlslab.io.blocking import MAX_KEPT_TICKETS, make_server
from tlslab.io.memory import MemoryPair
from tlslab.proto import client13 as client_mod
from tlslab.proto.client_hello import add_psk as real_add_psk
from tlslab.proto.handshake import psk_binder
from tlslab.proto import limits as conn_mod  # the bounds live in limits.py
from tlslab.proto import pha as pha_mod
from tlslab.proto import server13 as server_mod
from tlslab.proto.server13 import send_tickets
from tlslab.proto import extensions as X
from tlslab.proto.alerts import AlertDescription as AD, AlertLevel
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import load_identity
from tlslab.proto.events import ApplicationData, ConnectionClosed
from tlslab.proto.extensions import ET, Extension
from tlslab.proto.keyschedule import SUITES
from tlslab.proto.messages import truncated_for_binders
from tlslab.proto.names import ContentType
from tlslab.proto.server import ServerConnection
from tlslab.proto.tickets import TicketStore


# ``pki`` (a throwaway CA and leaf) is the conftest fixture


def connected(ccfg, scfg, client_cls=ClientConnection) -> MemoryPair:
    pair = MemoryPair(client_cls(ccfg), ServerConnection(scfg))
    pair.handshake()
    assert pair.client.handshake_complete and pair.server.handshake_complete
    return pair


def deliver(pair: MemoryPair) -> list:
    """Server -> client only: what the client answers is dropped (a flooding peer does not read)."""
    pair.client.data_to_send()
    return pair.client.receive_data(pair.server.data_to_send())


def alerts_sent(conn) -> list[str]:
    return [e.name for e in conn.trace.entries if e.kind == "alert" and e.direction == "sent"]


def assert_cut_off(conn, events, alert="unexpected_message"):
    closed = [e for e in events if isinstance(e, ConnectionClosed)]
    assert len(closed) == 1 and closed[0].alert_sent == alert, closed
    assert conn.closed and alerts_sent(conn) == [alert]   # sent once


def assert_open(conn):
    assert not conn.closed and conn.error is None and alerts_sent(conn) == []


# -- warning alerts: TLS 1.3 user_canceled, TLS 1.2 warnings --------------------------------

@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_user_canceled_flood(pki, version):
    pair = connected(client_config(pki), server_config(pki, versions=[version]))
    limit = conn_mod.MAX_WARNING_ALERTS
    for _ in range(limit):
        pair.server._send_alert(AlertLevel.warning, AD.user_canceled)
    deliver(pair)
    assert_open(pair.client)
    pair.server._send_alert(AlertLevel.warning, AD.user_canceled)
    assert_cut_off(pair.client, deliver(pair))
    assert "warning alerts" in str(pair.client.error)


# -- empty records ------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_empty_record_flood(pki, version):
    pair = connected(client_config(pki), server_config(pki, versions=[version]))
    limit = conn_mod.MAX_EMPTY_RECORDS
    for _ in range(limit):
        pair.server._send_records(ContentType.application_data, b"")
    deliver(pair)
    assert_open(pair.client)
    # a record with data resets the run: another full run is fine
    pair.server.send_application_data(b"x")
    for _ in range(limit):
        pair.server._send_records(ContentType.application_data, b"")
    events = deliver(pair)
    assert_open(pair.client)
    assert b"".join(e.data for e in events if isinstance(e, ApplicationData)) == b"x"
    pair.server._send_records(ContentType.application_data, b"")
    assert_cut_off(pair.client, deliver(pair))
    assert "empty records" in str(pair.client.error)


# -- KeyUpdate ------------------------------------------------------------------------------------

@pytest.mark.parametrize("receiver", ["client", "server"])
def test_key_update_flood(pki, receiver):
    pair = connected(client_config(pki), server_config(pki))
    sender, target = (pair.server, pair.client) if receiver == "client" else (pair.client, pair.server)
    limit = conn_mod.MAX_KEY_UPDATES_IN_A_ROW

    def send_flood(n):
        for _ in range(n):
            sender.send_key_update(request_update=True)   # each asks for an answer, too
        target.data_to_send()
        return target.receive_data(sender.data_to_send())

    send_flood(limit)
    assert_open(target)
    # application data in between ends the run
    sender.send_application_data(b"data")
    send_flood(limit)
    assert_open(target)
    assert_cut_off(target, send_flood(1))
    assert "KeyUpdates" in str(target.error)


# -- NewSessionTicket -----------------------------------------------------------------------

class CountingStore(TicketStore):
    """A store that counts its saves (a FileTicketStore rewrites its file on each)."""

    def __init__(self):
        super().__init__()
        self.saves = 0

    def _saved(self):
        self.saves += 1


def test_new_session_ticket_flood(pki):
    store = CountingStore()
    scfg = server_config(pki, tickets=0)
    pair = connected(client_config(pki, session_store=store), scfg)
    scfg.tickets = 1
    limit = conn_mod.MAX_TICKETS_IN_A_ROW
    for _ in range(limit):
        send_tickets(pair.server)
    events = deliver(pair)
    assert_open(pair.client)
    assert sum(type(e).__name__ == "NewSessionTicket" for e in events) == limit
    # only the first few go to the store: a file store is not rewritten per ticket
    assert store.saves == client_mod.MAX_TICKETS_STORED_PER_CONNECTION
    assert store.count("localhost") == store.per_server
    pair.server.send_application_data(b"x")   # data ends the run
    for _ in range(limit):
        send_tickets(pair.server)
    deliver(pair)
    assert_open(pair.client)
    assert store.saves == client_mod.MAX_TICKETS_STORED_PER_CONNECTION
    send_tickets(pair.server)
    assert_cut_off(pair.client, deliver(pair))
    assert "NewSessionTickets" in str(pair.client.error)


def test_file_ticket_store_written_a_bounded_number_of_times(pki, tmp_path, monkeypatch):
    from tlslab.proto.tickets import FileTicketStore
    writes = []
    real = FileTicketStore._saved
    monkeypatch.setattr(FileTicketStore, "_saved", lambda self: (writes.append(1), real(self)))
    store = FileTicketStore(str(tmp_path / "tickets.json"))
    scfg = server_config(pki, tickets=0)
    pair = connected(client_config(pki, session_store=store), scfg)
    scfg.tickets = 30
    send_tickets(pair.server)
    deliver(pair)
    assert_open(pair.client)
    assert len(writes) == client_mod.MAX_TICKETS_STORED_PER_CONNECTION


def _ticket_server(pki, n):
    srv = make_server("127.0.0.1", 0, server_config(pki, tickets=n), lambda s: (s.send(b"hi"), s.recv()),
                      log=lambda line: None, handshake_timeout=5.0, io_timeout=5.0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv, t


def test_tls_socket_keeps_the_newest_tickets(pki):
    n = MAX_KEPT_TICKETS + 12
    assert n <= conn_mod.MAX_TICKETS_IN_A_ROW
    srv, t = _ticket_server(pki, n)
    try:
        with tlslab.connect("127.0.0.1", srv.port, config=client_config(pki),
                            timeout=5) as s:
            assert s.wait_for_tickets(timeout=5, count=n) == n
            assert s.tickets_received == n
            assert len(s.tickets) == MAX_KEPT_TICKETS
            assert [tk.nonce for tk in s.tickets] == [bytes([i]) for i in range(n - MAX_KEPT_TICKETS, n)]
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_async_stream_keeps_the_newest_tickets(pki):
    n = MAX_KEPT_TICKETS + 12

    async def main():
        async def handler(stream):
            stream.write(b"hi")
            await stream.drain()
            await stream.read(1)

        server = await tlslab.aio.start_server(server_config(pki, tickets=n), handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            stream = await tlslab.aio.connect("127.0.0.1", port, config=client_config(pki),
                                              timeout=5)
            assert await asyncio.wait_for(stream.read(2), 5) == b"hi"   # the tickets came first
            stream.write(b".")
            await stream.drain()
            result = (stream.tickets_received, [tk.nonce for tk in stream.tickets])
            await stream.close()
            return result
        finally:
            server.close()
            await server.wait_closed()

    received, nonces = asyncio.run(asyncio.wait_for(main(), 20))
    assert received == n
    assert nonces == [bytes([i]) for i in range(n - MAX_KEPT_TICKETS, n)]


# -- post-handshake CertificateRequest ---------------------------------------------------------

def test_post_handshake_certificate_request_flood(pki, certs_dir, monkeypatch):
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    scfg = server_config(pki, client_ca_file=str(certs_dir / "ca.pem"), client_auth_in_handshake=False)
    ccfg = client_config(pki, post_handshake_auth=True, certificate_chain=chain, private_key=key)
    pair = connected(ccfg, scfg)
    server, client = pair.server, pair.client
    limit = pha_mod.MAX_POST_HANDSHAKE_AUTH
    signatures = []
    real_answer = pha_mod.answer_certificate_request

    def counting_answer(conn, cr, transcript):
        signatures.append(cr.certificate_request_context)
        return real_answer(conn, cr, transcript)

    monkeypatch.setattr(pha_mod, "answer_certificate_request", counting_answer)

    def request():
        server.request_client_certificate()
        server.state = server.CONNECTED_STATE   # the flooding server does not wait for answers

    for i in range(limit):
        request()
        if i == 0:
            server.send_application_data(b"data does not reset this count")
    deliver(pair)
    assert_open(client)
    assert len(signatures) == limit
    request()
    assert_cut_off(client, deliver(pair))
    assert len(signatures) == limit    # no signature for the request beyond the limit
    assert "CertificateRequests" in str(client.error)


# -- PSK identities tried by the server ------------------------------------------------------

def many_psks(junk: int):
    """An add_psk that offers ``junk`` unknown identities before the real ticket (binders
    recomputed), for monkeypatching tlslab.proto.client13.add_psk."""
    def add(offer, ch, prefix, conn):
        ch = real_add_psk(offer, ch, prefix, conn)
        offered = ch.extensions[-1].value
        suite = SUITES[offer.session.suite]
        offered.identities = [X.PskIdentity(identity=b"junk%03d" % i, obfuscated_ticket_age=0)
                              for i in range(junk)] + offered.identities
        offered.binders = [bytes(suite.hash_len)] * (junk + 1)
        ch.extensions[-1] = Extension(ET.pre_shared_key, offered)
        binder, ks = psk_binder(conn, suite, offer.session.psk, prefix,
                                truncated_for_binders(ch.build(), offered.binders))
        offered.binders[-1] = binder
        ch.extensions[-1] = Extension(ET.pre_shared_key, offered)
        offer.early_schedule = ks
        return ch
    return add


@pytest.mark.parametrize("junk", [server_mod.MAX_PSK_IDENTITIES_TRIED - 1,
                                  server_mod.MAX_PSK_IDENTITIES_TRIED, 200])
def test_psk_identities_tried_are_bounded(pki, junk, monkeypatch):
    scfg = server_config(pki)
    ccfg = client_config(pki)
    first = connected(ccfg, scfg)
    assert not first.client.negotiated["resumed"]
    opened = []
    keys = scfg.ticket_keys
    real_open = keys.open
    keys.open = lambda ticket, now: (opened.append(ticket), real_open(ticket, now))[1]
    try:
        monkeypatch.setattr(client_mod, "add_psk", many_psks(junk))
        pair = MemoryPair(ClientConnection(ccfg), ServerConnection(scfg))
        pair.handshake()
    finally:
        del keys.open
    limit = server_mod.MAX_PSK_IDENTITIES_TRIED
    assert len(opened) == min(junk + 1, limit)
    accepted = [e.summary["identity"] for e in pair.server.trace.entries
                if e.kind == "info" and e.name == "PSK accepted"]
    if junk < limit:
        # the real ticket is among the identities tried: the server selects it (our client,
        # which offers one identity in real life, then refuses an index other than 0)
        assert accepted == [junk]
    else:
        # beyond the bound it is not even looked at: a full handshake follows
        assert accepted == []
        assert pair.client.handshake_complete and pair.server.handshake_complete
        assert pair.server.negotiated["resumed"] is False
