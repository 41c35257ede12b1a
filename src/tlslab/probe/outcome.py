"""What a probe found, read from the engine's trace (never from engine internals).

``status`` is one of:

``ok``            the handshake completed (and nothing went wrong right after it)
``alert``         the server sent a fatal alert (``alert_received``)
``local-error``   tlslab refused the server's answer and sent ``alert_sent``
``closed``        the server closed (or reset) the connection without an alert
``timeout``       no answer in time (``received_bytes`` tells whether anything came)
``refused``       nothing listens on the port
``unreachable``   no route, DNS failure, ...
``not-tls``       the server answered with something that is not a TLS record
``skipped``       the plan ran out of time or of its handshake budget before this probe
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .spec import ProbeSpec


@dataclass
class CertificateRequestInfo:
    """RFC 8446 §4.3.2 / RFC 5246 §7.4.4: what the server asked of the client."""

    version: str
    ca_names: list[str] = field(default_factory=list)
    signature_algorithms: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "ca_names": self.ca_names,
                "signature_algorithms": self.signature_algorithms}


@dataclass
class ProbeOutcome:
    spec: ProbeSpec
    status: str
    detail: str = ""
    version: str | None = None
    cipher_suite: str | None = None
    group: str | None = None
    signature_scheme: str | None = None
    alpn: str | None = None
    hello_retry: bool = False
    alert_received: str | None = None
    alert_sent: str | None = None
    #: names of the handshake messages the server sent, in order
    server_messages: list[str] = field(default_factory=list)
    #: the message after which the server gave up (or "ClientHello" when it answered nothing)
    failed_after: str | None = None
    certificate_request: CertificateRequestInfo | None = None
    #: what came after the handshake: an alert name, or the HTTP status line
    after_handshake: str | None = None
    client_certificate_sent: bool = False
    peer_certificates: list = field(default_factory=list)
    #: the first bytes the server sent (for not-tls: what it looks like)
    first_bytes: bytes = b""
    received_bytes: int = 0
    elapsed_ms: float = 0.0
    trace: Any = None
    server_key_exchange: dict = field(default_factory=dict)
    #: the runner's start order (probes finish in any order; they are listed as started)
    order: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def dh_bits(self) -> int | None:
        """Size of the finite-field DH group of a DHE key exchange (RFC 7919 names or the
        server-chosen prime), else None."""
        if not self.cipher_suite or "_DHE_" not in self.cipher_suite or not self.group:
            return None
        digits = "".join(ch if ch.isdigit() else " " for ch in self.group).split()
        return int(digits[0]) if digits else None

    @property
    def negotiated_text(self) -> str:
        parts = [p for p in (self.version, self.cipher_suite, self.group, self.signature_scheme) if p]
        if self.alpn:
            parts.append(f"ALPN {self.alpn}")
        return " ".join(parts)

    def outcome_text(self) -> str:
        """One line: what happened."""
        if self.status == "ok":
            text = f"ok: {self.negotiated_text}"
            if self.after_handshake:
                text += f"; then {self.after_handshake}"
            return text
        if self.status == "alert":
            where = f" after {self.failed_after}" if self.failed_after else ""
            return f"server sent alert {self.alert_received}{where}"
        if self.status == "local-error":
            return f"tlslab refused the answer ({self.detail}); sent alert {self.alert_sent}"
        if self.status == "closed":
            where = f" after {self.failed_after}" if self.failed_after else ""
            return f"server closed the connection{where} without an alert" + (
                f" ({self.detail})" if self.detail else "")
        return f"{self.status}: {self.detail}" if self.detail else self.status

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "probe": self.spec.name, "purpose": self.spec.purpose, "offered": self.spec.offer_json(),
            "outcome": self.status, "summary": self.outcome_text(),
            "version": self.version, "cipher_suite": self.cipher_suite, "group": self.group,
            "signature_scheme": self.signature_scheme, "alpn": self.alpn,
            "hello_retry": self.hello_retry,
            "alert_received": self.alert_received, "alert_sent": self.alert_sent,
            "server_messages": self.server_messages, "failed_after": self.failed_after,
            "certificate_request": (self.certificate_request.to_json()
                                    if self.certificate_request else None),
            "after_handshake": self.after_handshake,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }
        if self.status == "not-tls":
            doc["first_bytes_hex"] = self.first_bytes[:64].hex()
        return doc
