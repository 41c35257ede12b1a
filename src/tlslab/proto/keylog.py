"""NSS key log output (the SSLKEYLOGFILE format read by Wireshark, curl, browsers).

Each line is ``LABEL <client_random hex> <secret hex>``; the TLS 1.3 labels are the
NSS names of the RFC 8446 §7.1 secrets.  This module is the one place in the
engine package that opens a file: the engine itself only calls :meth:`KeyLog.write`.
"""
from __future__ import annotations

import os
import threading
from typing import TextIO

# RFC 8446 secret name -> NSS key log label.
LABELS: dict[str, str] = {
    "client_early_traffic_secret": "CLIENT_EARLY_TRAFFIC_SECRET",
    "client_handshake_traffic_secret": "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "server_handshake_traffic_secret": "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "client_application_traffic_secret_0": "CLIENT_TRAFFIC_SECRET_0",
    "server_application_traffic_secret_0": "SERVER_TRAFFIC_SECRET_0",
    "exporter_master_secret": "EXPORTER_SECRET",
    "early_exporter_master_secret": "EARLY_EXPORTER_SECRET",
}
_NSS_LABELS = frozenset(LABELS.values()) | {"CLIENT_RANDOM"}  # CLIENT_RANDOM: TLS 1.2 master secret


class KeyLog:
    """Appends NSS key log lines to a path (opened in append mode, line-buffered) or to an
    open text file object (flushed after each line, not closed by :meth:`close`)."""

    def __init__(self, target: str | os.PathLike | TextIO) -> None:
        if isinstance(target, (str, os.PathLike)):
            # the file holds traffic secrets: readable by its owner only (0600), whatever the umask
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", buffering=1, encoding="ascii")
            self._owned = True
        else:
            self._file = target
            self._owned = False
        # Several connections (e.g. a server's) may share one key log file.
        self._lock = threading.Lock()

    def write(self, label: str, client_random: bytes, secret: bytes) -> bool:
        """Write one line.  ``label`` is an RFC 8446 name from :data:`LABELS` or an NSS
        label; other names (secrets that have no NSS label, such as handshake_secret)
        are skipped and False is returned, so every derived secret can be passed in."""
        nss = LABELS.get(label, label if label in _NSS_LABELS else None)
        if nss is None:
            return False
        line = f"{nss} {client_random.hex()} {secret.hex()}\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
        return True

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> "KeyLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def keylog_from_env() -> KeyLog | None:
    """A :class:`KeyLog` for the file named by ``SSLKEYLOGFILE``, or None when it is unset."""
    path = os.environ.get("SSLKEYLOGFILE")
    return KeyLog(path) if path else None
