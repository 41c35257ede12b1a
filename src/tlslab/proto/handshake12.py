"""What TLS 1.2 (and 1.0/1.1) handshakes share on both sides (RFC 5246 §6.3, §7.1, §7.4.9;
RFC 5746; RFC 7627).

:class:`Handshake12` is the base of :class:`~tlslab.proto.client12.ClientHandshake12` and
:class:`~tlslab.proto.server12.ServerHandshake12`: the handshake log that Finished,
extended master secret and CertificateVerify cover, the master secret, the key block.
:class:`PostHandshake12` is what a connection keeps after a TLS 1.2 handshake: enough to
refuse a renegotiation, or (a client) to probe whether the server allows one.
"""
from __future__ import annotations

from .errors import UnexpectedMessage
from .handshake import Handshake, check_finished
from .messages import Finished
from .tls12.prf import handshake_hash, key_material, verify_data
from .tls12.protection import RecordProtector12


class Handshake12(Handshake):
    """The data and steps both sides of a TLS 1.0-1.2 handshake have."""

    __slots__ = ("hs_log", "master", "ems", "etm", "own_verify_data")

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.hs_log = bytearray()   # RFC 5246 §7.4.9: every handshake message but HelloRequest
        self.master: bytes | None = None
        self.ems = False            # RFC 7627 extended master secret negotiated
        self.etm = False            # RFC 7366 encrypt-then-MAC negotiated
        self.own_verify_data = b""  # our Finished, for RFC 5746 §3.5

    def install_keys(self) -> None:
        """RFC 5246 §6.3: the key block; the writer becomes active at our CCS, the reader at theirs."""
        conn = self.conn
        suite = conn.suite12
        keys = key_material(suite, self.master, conn.client_random, conn.server_random, conn.version)
        client = conn.is_client
        mine, theirs = keys.writer(client), keys.writer(not client)
        conn._pending_write = RecordProtector12(suite, *mine, version=conn.version,
                                                encrypt_then_mac=self.etm, provider=self.provider)
        conn._pending_read = RecordProtector12(suite, *theirs, version=conn.version,
                                               encrypt_then_mac=self.etm, provider=self.provider)

    def log_master(self) -> None:
        """The master secret goes to the trace by name and to the key log as CLIENT_RANDOM."""
        conn = self.conn
        self.trace.add("secret", "local", "master_secret", summary={"length": 48, "ems": self.ems})
        if conn.keylog is not None:
            conn.keylog.write("CLIENT_RANDOM", conn.client_random, self.master)

    def finished(self, client: bool, log: bytes | None = None) -> bytes:
        conn = self.conn
        suite = conn.suite12
        h = handshake_hash(self.hs_log if log is None else log, suite.prf_hash, conn.version)
        return verify_data(self.master, h, client, hash_name=suite.prf_hash, version=conn.version)

    def send_finished(self) -> None:
        # kept for RFC 5746 §3.5: a renegotiating ClientHello carries our last verify_data
        self.own_verify_data = self.finished(self.conn.is_client)
        self.send(Finished(verify_data=self.own_verify_data))

    def send(self, msg) -> None:
        """Send a handshake message and add it to the log."""
        self.hs_log += self.conn._send_message(msg)

    def check_peer_finished(self, msg: Finished, client: bool) -> None:
        """The peer's Finished, already appended to the log, covers the messages before it."""
        # hashed through a view: no copy of the log (released before the log grows again)
        with memoryview(self.hs_log) as log:
            expected = self.finished(client, log[:len(log) - len(msg.raw)])
        check_finished(expected, msg.verify_data, "client Finished" if client else "server Finished")

    def complete(self) -> None:
        """The handshake is over: the connection keeps a PostHandshake12 in its place."""
        conn = self.conn
        conn.hs = PostHandshake12(conn, self.own_verify_data, self.ems)
        conn._complete(resumed=conn.resumed)


class PostHandshake12(Handshake):
    """After a TLS 1.0-1.2 handshake: renegotiation is refused (RFC 5746 §4.2, §4.4); a
    client can still probe whether the server would renegotiate."""

    __slots__ = ("own_verify_data", "ems", "renegotiations_refused")

    def __init__(self, conn, own_verify_data: bytes, ems: bool) -> None:
        super().__init__(conn)
        self.own_verify_data = own_verify_data
        self.ems = ems
        self.renegotiations_refused = 0

    def refuse_renegotiation(self) -> None:
        """RFC 5746 §4.2 / RFC 5246 §7.2.2: answer a HelloRequest (or a renegotiating
        ClientHello) with a no_renegotiation warning; a peer that insists is cut off."""
        from .alerts import AlertDescription, AlertLevel
        self.renegotiations_refused += 1
        if self.renegotiations_refused > 3:
            raise UnexpectedMessage("repeated renegotiation attempts after being refused")
        self.trace.add("info", "local", "renegotiation refused",
                       detail="server sent HelloRequest; answered with a no_renegotiation warning")
        self.conn._send_alert(AlertLevel.warning, AlertDescription.no_renegotiation)
