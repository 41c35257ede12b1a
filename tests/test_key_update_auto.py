"""Automatic KeyUpdate (RFC 8446 §5.5): a sender rekeys after ``key_update_after_records``
records under one key, on the records traced one by one and on the bulk path after them."""
from __future__ import annotations

import pytest

from conftest import pki_client_config as client_config, pki_server_config as server_config

from tlslab.io.memory import MemoryPair
from tlslab.proto.client import ClientConnection
from tlslab.proto.events import ApplicationData
from tlslab.proto.limits import TRACED_APP_RECORDS
from tlslab.proto.server import ServerConnection


@pytest.mark.parametrize("size", [100, 16384], ids=["small", "full-size"])
def test_sender_rekeys_every_n_records(pki, size):
    every = 5
    pair = MemoryPair(ClientConnection(client_config(pki, key_update_after_records=every)),
                      ServerConnection(server_config(pki)))
    pair.handshake()
    client, server = pair.client, pair.server
    n = TRACED_APP_RECORDS + 3 * every + 2   # past the records traced one by one
    got = []
    for i in range(n):
        payload = bytes([i % 251]) * size
        client.send_application_data(payload)
        got += [e.data for e in server.receive_data(client.data_to_send())
                if isinstance(e, ApplicationData)]
        assert got[-1] == payload, f"record {i} was not delivered intact"
    assert not server.closed and server.error is None
    sent_updates = [e for e in client.trace.entries if e.name == "automatic KeyUpdate"]
    read_updates = [e for e in server.trace.entries if e.name == "read key updated"]
    # the handshake's own Finished record counts under the first application key
    assert len(sent_updates) >= n // every - 1
    assert len(read_updates) == len(sent_updates)
    # and the connection still works in both directions after all the updates
    server.send_application_data(b"pong")
    assert [e.data for e in client.receive_data(server.data_to_send())
            if isinstance(e, ApplicationData)] == [b"pong"]
