"""What every handshake object shares (RFC 8446 §4, RFC 5246 §7.3).

A connection runs one handshake at a time through a *handshake object*: one class per
version and side (:class:`~tlslab.proto.client13.ClientHandshake13`,
:class:`~tlslab.proto.server12.ServerHandshake12`, ...).  The object holds exactly that
handshake's data (transcript, key shares, what was offered and chosen, the secrets not
yet in use) and is dropped when the handshake ends; the
:class:`~tlslab.proto.connection.Connection` keeps only what outlives it (record layer,
keys in use, results, events, trace).

Handshake objects reach their connection through a weak proxy: a connection owns its
handshake, never the reverse, so connections are never reference cycles (a server with
thousands of them must not depend on the cyclic garbage collector).
"""
from __future__ import annotations

import hmac
import weakref

from .errors import DecodeError, DecryptError, IllegalParameter
from .extensions import ET
from .keyschedule import KeySchedule, SuiteInfo, Transcript


class Handshake:
    """Base of the handshake objects: the connection and what every step reads from it."""

    __slots__ = ("conn", "config", "provider", "trace", "negotiated")

    def __init__(self, conn) -> None:
        # a handshake object made by another one gets the same proxy
        self.conn = conn if type(conn) is weakref.ProxyType else weakref.proxy(conn)
        self.config = conn.config
        self.provider = conn.provider
        self.trace = conn.trace
        self.negotiated = conn.negotiated

    def protect_alert(self) -> None:
        """Before a fatal alert goes out during the handshake: switch to the keys the peer
        reads with, where they differ from ours (only a TLS 1.3 client has such a moment,
        see :meth:`ClientHandshake13.protect_alert`)."""


def check_finished(expected: bytes, received: bytes, what: str) -> None:
    """RFC 8446 §4.4.4 / RFC 5246 §7.4.9: a wrong length is decode_error (§6.2), a wrong
    value decrypt_error; compared in constant time."""
    if len(received) != len(expected):
        raise DecodeError(f"{what} has {len(received)} bytes of verify_data, expected {len(expected)}")
    if not hmac.compare_digest(expected, received):
        raise DecryptError(f"{what} verify_data is wrong")


def psk_binder(conn, suite: SuiteInfo, psk: bytes, prefix: Transcript | None,
               truncated_hello: bytes) -> tuple[bytes, KeySchedule]:
    """RFC 8446 §4.2.11.2: the binder over the transcript up to the ClientHello truncated
    before its binders (after ``prefix``, the HelloRetryRequest part, if any).  Returns
    (binder, the key schedule with the PSK's early secret)."""
    t = Transcript(suite.hash_name) if prefix is None else prefix.copy()
    t.update(truncated_hello)
    ks = conn._new_schedule(suite)
    ks.extract_early(psk)
    return ks.verify_data(ks.binder_key(resumption=True), t.digest()), ks


def note_server_answers(cfg, negotiated: dict, msg) -> None:
    """A client reads the ALPN protocol (RFC 7301 §3.1: exactly one, among those offered,
    else illegal_parameter) and the server_name acknowledgement (RFC 6066 §3) from the
    message that carries them: EncryptedExtensions in TLS 1.3, ServerHello before."""
    alpn = msg.ext_value(ET.application_layer_protocol_negotiation)
    if alpn is not None:
        names = alpn.protocol_name_list
        if len(names) != 1 or names[0].decode("latin-1") not in (cfg.alpn_protocols or []):
            raise IllegalParameter(f"server selected ALPN {names!r}, which was not offered")
        negotiated["alpn_protocol"] = names[0].decode("latin-1")
    if msg.ext(ET.server_name) is not None:
        negotiated["server_name"] = cfg.server_name
