"""What decoding one captured connection gives: the trace and the facts read from it.

:class:`DecodedConnection` holds the :class:`~tlslab.proto.trace.Trace` that the shared
renderers show (the same entry kinds the engine emits: records, messages with their raw
bytes and parsed objects, secrets by name, alerts, states, info), plus lists that reports
and tests read directly: handshake messages with their stream offsets, decrypted
application data, alerts, the encrypted records that could not be opened and the key
that would open them, and the problems met, in words.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..proto.trace import Trace

CLIENT, SERVER = "client", "server"

#: RFC names of handshake types (RFC 8446 §4, RFC 5246 §7.4, RFC 6066 §8, RFC 8879 §4)
RFC_MESSAGE_NAMES = {
    0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest",
    4: "NewSessionTicket", 5: "EndOfEarlyData", 8: "EncryptedExtensions", 11: "Certificate",
    12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
    15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished", 21: "CertificateURL",
    22: "CertificateStatus", 23: "SupplementalData", 24: "KeyUpdate",
    25: "CompressedCertificate", 254: "MessageHash",
}


def rfc_message_name(msg_type: int, hello_retry: bool = False) -> str:
    """``ClientHello``, ``HelloRetryRequest`` (a ServerHello with the RFC 8446 §4.1.3
    random), ``Certificate``, ...; ``handshake_type_N`` for unknown types."""
    if msg_type == 2 and hello_retry:
        return "HelloRetryRequest"
    return RFC_MESSAGE_NAMES.get(msg_type, f"handshake_type_{msg_type}")


@dataclass
class MessageInfo:
    """One handshake message.  ``offset``: the stream position of its first byte for a
    message sent in clear; for a decrypted one, the position of the record that carried
    its first byte (``record_offset`` in both cases)."""

    direction: str
    type: str
    name: str
    offset: int
    record_offset: int
    length: int
    raw: bytes
    message: Any
    protected: bool
    key: str | None
    time: float
    error: str | None = None


@dataclass
class AppData:
    """One application_data record's plaintext (``data`` may be cut to the report's limit:
    ``truncated``)."""

    direction: str
    offset: int
    length: int
    data: bytes
    time: float
    key: str | None
    truncated: bool = False
    early: bool = False


@dataclass
class AlertInfo:
    direction: str
    level: int | None
    description: str
    protected: bool
    time: float
    offset: int


@dataclass
class Undecrypted:
    """Encrypted records of one direction that stayed encrypted, grouped by the key log
    label that would open them."""

    direction: str
    needs: str
    reason: str
    records: int = 0
    bytes: int = 0
    first_offset: int = -1


@dataclass
class DecodedConnection:
    index: int
    client: str
    server: str
    roles: str = ""
    tls: bool = False
    #: why the connection is not TLS (the engine's framing error, with a protocol guess)
    not_tls: str = ""
    upgraded_from: str = ""
    mid_connection: bool = False
    version: str | None = None
    version_code: int | None = None
    cipher_suite: str | None = None
    negotiated: dict = field(default_factory=dict)
    trace: Trace = field(default_factory=Trace)
    messages: list[MessageInfo] = field(default_factory=list)
    application_data: list[AppData] = field(default_factory=list)
    #: application data records past the report's limit: counted, not kept
    application_data_dropped: int = 0
    alerts: list[AlertInfo] = field(default_factory=list)
    undecrypted: dict[tuple[str, str], Undecrypted] = field(default_factory=dict)
    #: per direction: "plaintext", "protected", "decrypted" record counts
    records: dict[str, Counter] = field(default_factory=lambda: {CLIENT: Counter(),
                                                                 SERVER: Counter()})
    problems: list[str] = field(default_factory=list)
    client_random: bytes | None = None
    #: key log labels found for this connection (names only)
    keys_found: list[str] = field(default_factory=list)
    keylog_given: bool = False
    handshake_complete: bool = False
    #: why the handshake did not complete, when it did not (for the summary)
    error: str | None = None
    tcp: dict = field(default_factory=dict)
    first_time: float = 0.0

    @property
    def protected_records(self) -> int:
        return sum(c["protected"] for c in self.records.values())

    @property
    def decrypted_records(self) -> int:
        return sum(c["decrypted"] for c in self.records.values())

    @property
    def decrypted(self) -> bool:
        """Everything that was encrypted could be read (also true with nothing encrypted)."""
        return self.protected_records == self.decrypted_records

    @property
    def decryption(self) -> str:
        """"not needed" (nothing encrypted), "complete", "partial" or "none"."""
        p, d = self.protected_records, self.decrypted_records
        if not p:
            return "not needed"
        if d == p:
            return "complete"
        return "partial" if d else "none"

    def problem(self, text: str) -> None:
        if text not in self.problems and len(self.problems) < 64:
            self.problems.append(text)
