"""Events returned by ``Connection.receive_data`` (sans-IO, in the style of h11/aioquic)."""
from __future__ import annotations

from dataclasses import dataclass, field


class Event:
    """Base class of everything the engine reports to the application."""


@dataclass
class HandshakeComplete(Event):
    """Both Finished messages have been verified (RFC 8446 §4.4.4)."""

    version: str                 # "TLS 1.3"
    cipher_suite: str            # IANA name
    group: str | None            # key exchange group (IANA name)
    signature_scheme: str | None  # scheme the server signed CertificateVerify with
    alpn_protocol: str | None
    server_name: str | None
    peer_certificates: list = field(default_factory=list)  # cryptography x509.Certificate, leaf first
    hello_retry: bool = False
    resumed: bool = False
    early_data_accepted: bool | None = None


@dataclass
class ApplicationData(Event):
    data: bytes
    early: bool = False  # received as 0-RTT early data (RFC 8446 §4.2.10)


@dataclass
class AlertReceived(Event):
    """The peer sent an alert. ``fatal`` alerts end the connection.

    The engine says which alerts are fatal, because the rule depends on the version:
    in TLS 1.3 every alert but close_notify and user_canceled is fatal whatever its
    level (RFC 8446 §6); in TLS 1.0-1.2 a warning-level alert (no_renegotiation,
    unrecognized_name, ...) ends nothing (RFC 5246 §7.2.2) unless the alert is one
    that must always be fatal.
    """

    level: int
    description: int
    name: str
    fatal: bool = False


@dataclass
class ConnectionClosed(Event):
    """The connection is over: ``error`` is ``None`` after a clean close_notify."""

    error: str | None = None
    alert_sent: str | None = None
    alert_received: str | None = None


@dataclass
class NewSessionTicket(Event):
    """A NewSessionTicket arrived (RFC 8446 §4.6.1)."""

    lifetime: int
    age_add: int
    nonce: bytes
    ticket: bytes
    max_early_data_size: int | None = None


@dataclass
class PeerAuthenticated(Event):
    """The client answered a post-handshake CertificateRequest (RFC 8446 §4.6.2);
    ``certificates`` is its validated chain, empty if it sent none."""

    certificates: list = field(default_factory=list)
