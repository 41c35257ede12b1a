"""Reading an NSS key log (the SSLKEYLOGFILE format), to decrypt a capture.

The format (NSS "Key Log Format", also written by OpenSSL, BoringSSL, GnuTLS, Go, curl,
browsers and :mod:`tlslab.proto.keylog`): one ``LABEL <hex> <hex>`` line per secret,
``#`` comments and blank lines ignored.  The labels this reader knows:

- TLS 1.3 (RFC 8446 §7.1 secrets, keyed by the ClientHello's random):
  ``CLIENT_EARLY_TRAFFIC_SECRET``, ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``,
  ``SERVER_HANDSHAKE_TRAFFIC_SECRET``, ``CLIENT_TRAFFIC_SECRET_0``,
  ``SERVER_TRAFFIC_SECRET_0`` (``_N`` lines, which a few stacks write after a KeyUpdate,
  are read too), ``EXPORTER_SECRET``, ``EARLY_EXPORTER_SECRET``; and the ECH lines
  ``ECH_SECRET`` / ``ECH_CONFIG`` (kept by name only: nothing to decrypt with them here);
- TLS 1.0-1.2: ``CLIENT_RANDOM <client random> <master secret>`` (RFC 5246 §8.1),
  ``RSA <first 8 bytes of the encrypted pre-master secret> <pre-master secret>``
  (RFC 5246 §7.4.7.1: the only key log line that does not name the client random), and
  Wireshark's ``PMS_CLIENT_RANDOM <client random> <pre-master secret>``.

A line that cannot be used is not fatal: it is described in :attr:`KeyLog.problems`
(by line number and label, never with its secret) and the rest is read.  A file with
no usable line at all while it has other lines is not a key log:
:class:`KeyLogError`.  Reading is bounded (line length, number of entries).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

#: TLS 1.3 labels -> the RFC 8446 name of the secret
TLS13_LABELS: dict[str, str] = {
    "CLIENT_EARLY_TRAFFIC_SECRET": "client_early_traffic_secret",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": "client_handshake_traffic_secret",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": "server_handshake_traffic_secret",
    "CLIENT_TRAFFIC_SECRET_0": "client_application_traffic_secret_0",
    "SERVER_TRAFFIC_SECRET_0": "server_application_traffic_secret_0",
    "EXPORTER_SECRET": "exporter_master_secret",
    "EARLY_EXPORTER_SECRET": "early_exporter_master_secret",
}
#: RFC 8446 secret name -> NSS label (the reverse of :data:`TLS13_LABELS`)
NSS_LABEL_OF = {v: k for k, v in TLS13_LABELS.items()}
TLS12_LABELS = ("CLIENT_RANDOM", "PMS_CLIENT_RANDOM", "RSA")
OTHER_LABELS = ("ECH_SECRET", "ECH_CONFIG")
_TRAFFIC_N = re.compile(r"(CLIENT|SERVER)_TRAFFIC_SECRET_([0-9]{1,5})")
_HEX = re.compile(r"[0-9a-fA-F]*")

#: a key log line is ~200 characters; a longer one is not a key log line
MAX_LINE = 4096
#: entries kept (a busy server's key log of a day); more are counted, not kept
MAX_ENTRIES = 2_000_000
#: distinct secrets kept per (client random, label): a stack that logs twice, a bad merge
MAX_CANDIDATES = 4
#: problems described one by one; the rest are counted
MAX_PROBLEMS = 20


class KeyLogError(Exception):
    """The key log cannot be used at all (missing, unreadable, not a key log): one line
    for the user.  ``code`` is a short machine name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def nss_label(secret_name: str) -> str:
    """The key log label of an RFC 8446 secret name (``client_application_traffic_secret_2``
    -> ``CLIENT_TRAFFIC_SECRET_2``)."""
    if secret_name in NSS_LABEL_OF:
        return NSS_LABEL_OF[secret_name]
    m = re.fullmatch(r"(client|server)_application_traffic_secret_([0-9]+)", secret_name)
    if m:
        return f"{m.group(1).upper()}_TRAFFIC_SECRET_{m.group(2)}"
    return secret_name


@dataclass
class KeyLog:
    """The secrets of a key log, by client random (and, for ``RSA`` lines, by the first 8
    bytes of the encrypted pre-master secret)."""

    path: str = ""
    #: client random -> label -> distinct secrets in file order
    by_random: dict[bytes, dict[str, list[bytes]]] = field(default_factory=dict)
    #: first 8 bytes of an RSA-encrypted pre-master secret -> pre-master secrets
    rsa: dict[bytes, list[bytes]] = field(default_factory=dict)
    #: lines that could not be used, in words (no secret values)
    problems: list[str] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)
    lines: int = 0
    entries: int = 0
    skipped: int = 0

    # -- lookups -------------------------------------------------------------------
    def secrets_for(self, client_random: bytes) -> dict[str, list[bytes]]:
        """Every secret logged for a connection, by label ({} when none)."""
        return self.by_random.get(bytes(client_random), {})

    def premasters_for(self, encrypted_pre_master: bytes) -> list[bytes]:
        """Pre-master secrets of ``RSA`` lines whose 8-byte prefix matches."""
        return self.rsa.get(bytes(encrypted_pre_master[:8]), [])

    def __len__(self) -> int:
        return self.entries

    # -- reading -------------------------------------------------------------------
    def _problem(self, text: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def add_line(self, number: int, raw: str) -> None:
        """Read one line (``number`` counts from 1, for the messages)."""
        line = raw.strip()
        if not line or line.startswith("#"):
            return
        parts = line.split()
        label = parts[0]
        shown = _shown_label(label)
        if len(parts) != 3:
            self._problem(f"line {number}: {shown}: expected LABEL <hex> <hex>, "
                          f"found {len(parts)} fields")
            return
        _, first, second = parts
        if not _HEX.fullmatch(first) or not _HEX.fullmatch(second) or len(first) % 2 \
                or len(second) % 2:
            self._problem(f"line {number}: {shown}: the values are not hex digits")
            return
        key, secret = bytes.fromhex(first), bytes.fromhex(second)
        if label == "RSA":
            if len(key) != 8:
                self._problem(f"line {number}: RSA: the encrypted pre-master prefix has "
                              f"{len(key)} bytes, expected 8")
                return
            if len(secret) != 48:
                self._problem(f"line {number}: RSA: the pre-master secret has {len(secret)} "
                              "bytes, expected 48 (RFC 5246 §7.4.7.1)")
                return
            self._keep(self.rsa.setdefault(key, []), secret, label)
            return
        traffic_n = _TRAFFIC_N.fullmatch(label)
        if label not in TLS13_LABELS and label not in TLS12_LABELS \
                and label not in OTHER_LABELS and not traffic_n:
            self._problem(f"line {number}: unknown label {shown} (ignored)")
            return
        if label in OTHER_LABELS:
            self._keep(self.by_random.setdefault(key, {}).setdefault(label, []), secret, label)
            return
        if len(key) != 32:
            self._problem(f"line {number}: {label}: the client random has {len(key)} bytes, "
                          "expected 32")
            return
        if label in ("CLIENT_RANDOM", "PMS_CLIENT_RANDOM"):
            if len(secret) != 48:
                what = "master" if label == "CLIENT_RANDOM" else "pre-master"
                self._problem(f"line {number}: {label}: the {what} secret has {len(secret)} "
                              "bytes, expected 48")
                return
        elif len(secret) not in (32, 48, 64):
            # RFC 8446 §7.1: secrets are Hash.length long (SHA-256: 32, SHA-384: 48)
            self._problem(f"line {number}: {label}: the secret has {len(secret)} bytes, "
                          "expected 32 or 48 (the suite's hash length)")
            return
        self._keep(self.by_random.setdefault(key, {}).setdefault(label, []), secret, label)

    def _keep(self, slot: list[bytes], secret: bytes, label: str) -> None:
        if self.entries >= MAX_ENTRIES:
            self.skipped += 1
            if self.skipped == 1 or len(self.problems) < MAX_PROBLEMS:
                self.problems.append(f"more than {MAX_ENTRIES} entries: the rest were not read")
            return
        self.labels[label] += 1
        if secret in slot:
            return
        if len(slot) < MAX_CANDIDATES:
            slot.append(secret)
            self.entries += 1

    def summary(self) -> dict:
        """Counts for reports: lines, entries, connections, labels (names only)."""
        return {"path": self.path, "lines": self.lines, "entries": self.entries,
                "client_randoms": len(self.by_random), "rsa_premasters": len(self.rsa),
                "labels": dict(sorted(self.labels.items())), "lines_skipped": self.skipped,
                "problems": self.problems
                + ([f"{self.skipped - len(self.problems)} more lines skipped"]
                   if self.skipped > len(self.problems) else [])}


def _shown_label(label: str) -> str:
    """A label as it may be shown: printable and short (a binary file is not a key log)."""
    if len(label) <= 40 and label.isascii() and label.isprintable():
        return label
    return "(a label that is not text)"


def read_keylog(path: str | os.PathLike) -> KeyLog:
    """Read the key log at ``path``.  :class:`KeyLogError` when it is missing, unreadable
    or not a key log; usable lines are kept and the others described in ``problems``."""
    name = os.fspath(path)
    try:
        f = open(name, "rb")
    except FileNotFoundError:
        raise KeyLogError("missing-keylog", f"{name}: no such key log file") from None
    except IsADirectoryError:
        raise KeyLogError("missing-keylog", f"{name}: is a directory, not a key log") from None
    except OSError as e:
        raise KeyLogError("unreadable-keylog",
                          f"{name}: cannot read the key log: {e.strerror or e}") from None
    log = KeyLog(path=name)
    content_lines = 0
    with f:
        head = f.read(4)
        f.seek(0)
        if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a",
                        b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            raise KeyLogError("not-a-keylog", f"{name}: this is a capture (pcap/pcapng), "
                                              "not a key log; give the capture first and the "
                                              "key log with --keylog")
        number = 0
        while True:
            try:
                raw = f.readline(MAX_LINE + 1)
            except OSError as e:
                raise KeyLogError("unreadable-keylog",
                                  f"{name}: cannot read the key log: {e.strerror or e}") from None
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                # skip the rest of an overlong line without keeping it in memory
                while raw and not raw.endswith(b"\n"):
                    raw = f.readline(MAX_LINE + 1)
                log._problem(f"line {number}: longer than {MAX_LINE} characters (not a key "
                             "log line)")
                content_lines += 1
                continue
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                log._problem(f"line {number}: not text (not a key log line)")
                content_lines += 1
                continue
            stripped = text.strip()
            if stripped and not stripped.startswith("#"):
                content_lines += 1
            log.add_line(number, text)
        log.lines = number
    if content_lines and not log.entries:
        raise KeyLogError("not-a-keylog",
                          f"{name}: not an NSS key log: none of its {content_lines} lines is "
                          "a usable 'LABEL <client random hex> <secret hex>' line"
                          + (f" ({log.problems[0]})" if log.problems else ""))
    return log


def empty_keylog() -> KeyLog:
    """No key log: every encrypted record will be reported with the key it needs."""
    return KeyLog()
