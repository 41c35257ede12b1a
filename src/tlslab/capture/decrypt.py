"""Keys for a captured connection: from the key log's secrets to record protectors.

A passive observer does not run the handshake: it learns secrets from the key log
(:mod:`tlslab.capture.keylog`) by the ClientHello's random, and builds the same record
protectors the engine uses through :mod:`tlslab.proto.offline`.

Each direction moves through **epochs**, one per key (RFC 8446 §5.2 and §7.3: a new key
restarts the record sequence number at 0; RFC 5246 §6.1: a ChangeCipherSpec installs the
pending state):

- TLS 1.3 client: ``client_early_traffic_secret`` (0-RTT, when offered), then
  ``client_handshake_traffic_secret`` (after EndOfEarlyData, or at once), then
  ``client_application_traffic_secret_0`` after its Finished, ``_1`` ... after each
  KeyUpdate (RFC 8446 §7.2, derived here);
- TLS 1.3 server: ``server_handshake_traffic_secret``, then
  ``server_application_traffic_secret_0`` after its Finished, then ``_N``;
- TLS 1.0-1.2: one epoch per ChangeCipherSpec, keys from the master secret's key block
  (RFC 5246 §6.3).

An :class:`Epoch` may hold several candidate keys (a key log with two lines for one
connection); the first that authenticates a record is kept.  A record that no key
opens is reported with the key log label that would open it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..proto import offline
from ..proto.errors import TLSError
from .keylog import KeyLog, nss_label

#: a record that fails to authenticate under a key is tried under the next epochs too:
#: how far ahead (a key missing from the key log, a Finished that was not decrypted)
LOOKAHEAD = 2


@dataclass
class Opened:
    """A record decrypted: its real content type, plaintext and the key that opened it."""

    content_type: int
    plaintext: bytes
    epoch: "Epoch"
    sequence: int


@dataclass
class Epoch:
    """One key of one direction.  ``name``: the RFC 8446 §7.1 secret name (TLS 1.3) or
    ``client_write_key`` / ``server_write_key`` (TLS 1.2, RFC 5246 §6.3); ``label``: the
    key log line that provides it."""

    name: str
    label: str
    #: (secret, protector) pairs to try; the one that works is moved first and kept
    candidates: list[tuple[bytes, Any]] = field(default_factory=list)
    source: str = ""
    #: why there is no key, in words (for records that stay encrypted)
    missing: str = ""
    pinned: bool = False
    opened: int = 0
    failed: int = 0
    #: records of this epoch that stayed encrypted (its sequence numbers advance anyway)
    skipped: int = 0

    @property
    def available(self) -> bool:
        return bool(self.candidates)

    @property
    def secret(self) -> bytes | None:
        """The secret in use (the first candidate until one has authenticated a record)."""
        return self.candidates[0][0] if self.candidates else None

    def open(self, header: bytes, fragment: bytes) -> Opened | None:
        """Decrypt one record; None when no candidate key authenticates it."""
        for i, (secret, reader) in enumerate(self.candidates):
            if self.pinned and i:
                break
            seq = reader.seq
            try:
                ctype, plaintext = reader.open(header, fragment)
            except TLSError:
                continue
            if i:
                self.candidates.insert(0, self.candidates.pop(i))
            for _, other in self.candidates[1:]:
                other.seq = reader.seq  # keep the others in step while not pinned
            self.pinned = True
            self.opened += 1
            return Opened(ctype, plaintext, self, seq)
        self.failed += 1
        return None

    def skip_record(self) -> None:
        """A record of this epoch that stayed encrypted: the next one has the next
        sequence number (RFC 8446 §5.3, RFC 5246 §6.1)."""
        self.skipped += 1
        for _, reader in self.candidates:
            reader.seq += 1


# --------------------------------------------------------------------------- TLS 1.3

def tls13_epoch(name: str, secrets: list[bytes], suite_code: int | list[int], source: str,
                missing: str) -> Epoch:
    """An epoch of a TLS 1.3 connection from the key log's secrets for ``name``.  Several
    ``suite_code`` values: the ServerHello that names the suite is not in the capture, so
    each offered suite whose hash has the secret's length is tried (RFC 8446 §7.1: a
    secret is Hash.length bytes)."""
    epoch = Epoch(name, nss_label(name), source=source, missing=missing)
    codes = suite_code if isinstance(suite_code, list) else [suite_code]
    for secret in secrets:
        for code in codes:
            suite = offline.tls13_suite(code)
            if len(codes) > 1 and (suite is None or suite.hash_len != len(secret)):
                continue
            try:
                epoch.candidates.append((secret, offline.tls13_reader(code, secret)))
            except TLSError as e:
                epoch.missing = f"the key log's {epoch.label} does not fit the suite: {e}"
    if secrets and not epoch.candidates and not epoch.missing:
        epoch.missing = f"the key log's {epoch.label} does not fit the suite"
    return epoch


def early_epoch(secrets: list[bytes], offered_suites: list[int], missing: str) -> Epoch:
    """client_early_traffic_secret: its suite is the PSK's, which the ClientHello does not
    say; every offered TLS 1.3 suite with the secret's hash length is a candidate
    (RFC 8446 §4.2.10: 0-RTT uses the suite of the PSK's first session)."""
    epoch = Epoch("client_early_traffic_secret", "CLIENT_EARLY_TRAFFIC_SECRET",
                  source="key log", missing=missing)
    suites = [s for s in offered_suites if offline.tls13_suite(s) is not None] or [0x1301, 0x1302, 0x1303]
    for secret in secrets:
        for code in suites:
            suite = offline.tls13_suite(code)
            if suite.hash_len == len(secret):
                epoch.candidates.append((secret, offline.tls13_reader(code, secret)))
    return epoch


def next_application_epoch(previous: Epoch, suite_code: int, extra: list[bytes]) -> Epoch:
    """The epoch after a KeyUpdate (RFC 8446 §4.6.3, §7.2): derived from the previous
    application traffic secret, plus any ``*_TRAFFIC_SECRET_N`` line of the key log."""
    base, _, n = previous.name.rpartition("_")
    name = f"{base}_{int(n) + 1}"
    secrets: list[bytes] = []
    for secret, _ in previous.candidates[:1]:
        secrets.append(offline.tls13_next_secret(suite_code, secret))
    for s in extra:
        if s not in secrets:
            secrets.append(s)
    missing = "" if secrets else (f"derived from {previous.label}, which is not available"
                                  if not previous.available else "")
    source = "derived (RFC 8446 §7.2 traffic upd)" if previous.available else "key log"
    return tls13_epoch(name, secrets, suite_code, source, missing)


# --------------------------------------------------------------------------- TLS 1.2

@dataclass
class MasterSecrets:
    """The master secret candidates of a TLS 1.0-1.2 connection, and where they came from."""

    masters: list[tuple[bytes, str]] = field(default_factory=list)
    #: what was looked for and not found, in words
    missing: str = ""


def tls12_masters(keylog: KeyLog, client_random: bytes, server_random: bytes, suite_code: int,
                  version: int, encrypted_pre_master: bytes | None,
                  session_hash: bytes | None) -> MasterSecrets:
    """Master secrets from ``CLIENT_RANDOM`` lines, or derived (RFC 5246 §8.1, RFC 7627 §4
    when ``session_hash`` is given) from a pre-master secret of a ``PMS_CLIENT_RANDOM``
    line or of an ``RSA`` line matching the first 8 bytes of the encrypted pre-master
    secret (RFC 5246 §7.4.7.1)."""
    out = MasterSecrets()
    found = keylog.secrets_for(client_random)
    for m in found.get("CLIENT_RANDOM", []):
        out.masters.append((m, "key log CLIENT_RANDOM"))
    premasters = [(p, "PMS_CLIENT_RANDOM") for p in found.get("PMS_CLIENT_RANDOM", [])]
    if encrypted_pre_master:
        premasters += [(p, "RSA") for p in keylog.premasters_for(encrypted_pre_master)]
    for pms, label in premasters:
        try:
            m = offline.tls12_master_secret(pms, client_random, server_random, suite_code,
                                            version, session_hash)
        except TLSError:
            continue
        if all(m != x for x, _ in out.masters):
            how = "extended master secret, RFC 7627 §4" if session_hash else "RFC 5246 §8.1"
            out.masters.append((m, f"derived from the key log's {label} pre-master secret ({how})"))
    if not out.masters:
        what = f"no CLIENT_RANDOM line for client random {client_random.hex()}"
        if encrypted_pre_master:
            what += (f" and no RSA line for the encrypted pre-master secret starting "
                     f"{encrypted_pre_master[:8].hex()}")
        out.missing = what
    return out


def tls12_epochs(masters: MasterSecrets, client_random: bytes, server_random: bytes,
                 suite_code: int, version: int, encrypt_then_mac: bool
                 ) -> tuple[Epoch, Epoch]:
    """``(client_write, server_write)`` epochs from the master secret candidates: the key
    block of RFC 5246 §6.3 for each."""
    label = "CLIENT_RANDOM"
    client = Epoch("client_write_key", label, missing=masters.missing)
    server = Epoch("server_write_key", label, missing=masters.missing)
    for master, source in masters.masters:
        try:
            c, s = offline.tls12_readers(suite_code, master, client_random, server_random,
                                         version, encrypt_then_mac)
        except TLSError as e:
            client.missing = server.missing = f"cannot decrypt this suite: {e}"
            continue
        client.candidates.append((master, c))
        server.candidates.append((master, s))
        client.source = server.source = source
    return client, server
