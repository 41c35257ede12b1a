"""What a scan connects to: host, port, the name to send, STARTTLS, the trust to judge by."""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass

#: well-known ports of the protocols that start in clear and upgrade (RFC 3207, 2595,
#: 4217, 6120, 4511/4513; PostgreSQL's SSLRequest; RDP's X.224 negotiation)
STARTTLS_PORTS = {"smtp": 25, "imap": 143, "pop3": 110, "ftp": 21, "xmpp": 5222,
                  "ldap": 389, "postgres": 5432, "rdp": 3389}
STARTTLS_PROTOCOLS = tuple(STARTTLS_PORTS)


class TargetError(ValueError):
    """A target that cannot be scanned as written (bad port, bad name, unknown protocol)."""


@dataclass(frozen=True)
class ScanTarget:
    """One server to scan.

    ``host`` is where to connect (a DNS name or an IP literal); ``server_name`` the SNI and
    the name certificates are checked against (default: ``host`` unless it is an IP
    literal); ``starttls`` one of :data:`STARTTLS_PROTOCOLS` or None; ``timeout`` the
    bound on each connection, in seconds.
    """

    host: str
    port: int = 443
    server_name: str | None = None
    starttls: str | None = None
    ca_file: str | None = None
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.host:
            raise TargetError("empty host")
        if not 0 < int(self.port) < 65536:
            raise TargetError(f"port {self.port} is outside 1..65535")
        if self.starttls is not None and self.starttls not in STARTTLS_PORTS:
            raise TargetError(f"unknown STARTTLS protocol {self.starttls!r} (one of "
                              f"{', '.join(STARTTLS_PROTOCOLS)})")
        if not 0 < self.timeout <= 300:
            raise TargetError("timeout must be 0..300 seconds")

    @property
    def sni(self) -> str | None:
        """The name sent as SNI: never an IP literal (RFC 6066 §3)."""
        name = self.server_name if self.server_name is not None else self.host
        return None if is_ip(name) else name

    @property
    def check_name(self) -> str:
        """The name the certificate must match (an IP literal is checked against IP SANs)."""
        return self.server_name or self.host

    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ScanTarget":
        fields = {k: d[k] for k in ("host", "port", "server_name", "starttls", "ca_file",
                                    "timeout") if k in d}
        return cls(**fields)


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def parse_target(text: str, *, starttls: str | None = None, server_name: str | None = None,
                 ca_file: str | None = None, timeout: float = 5.0) -> ScanTarget:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or ``V6`` -> :class:`ScanTarget`.  The default
    port is 443, or the STARTTLS protocol's own port."""
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        raise TargetError(f"not a target: {text!r} (HOST[:PORT])")
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise TargetError(f"unclosed '[' in {text!r}")
        if rest:
            if not rest.startswith(":"):
                raise TargetError(f"expected ':PORT' after ']' in {text!r}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p, text)
    else:
        host = text  # a name, an IPv4 literal, or a bare IPv6 literal
    if ":" in host and not is_ip(host):
        raise TargetError(f"not a host: {host!r}")
    if port is None:
        port = STARTTLS_PORTS.get(starttls or "", 443)
    return ScanTarget(host=host, port=port, server_name=server_name, starttls=starttls,
                      ca_file=ca_file, timeout=timeout)


def _port(text: str, whole: str) -> int:
    if not text.isdigit():
        raise TargetError(f"bad port {text!r} in {whole!r}")
    return int(text)
