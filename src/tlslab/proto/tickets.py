"""Session tickets and PSK resumption state (RFC 8446 §4.6.1, §4.2.11, §8).

Server side: :class:`TicketKeys` seals the resumption state into an opaque
ticket with AES-256-GCM under keys that rotate (a key encrypts for one period
and still decrypts for one more), and keeps a bounded cache of tickets already
used for 0-RTT (single-use for early data, RFC 8446 §8.1).  Any object with
the same ``seal``/``open`` methods can replace it (e.g. a shared cache).

Client side: :class:`Session` is what the client keeps from a NewSessionTicket;
:class:`TicketStore` (memory) and :class:`FileTicketStore` (JSON file, for the
CLI) hold them per server name.
"""
from __future__ import annotations

import contextlib
import hmac
import json
import os
import stat
import struct
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: RFC 8446 §4.6.1: servers MUST NOT use a lifetime longer than 7 days.
MAX_TICKET_LIFETIME = 604800


@dataclass
class TicketState:
    """What the server needs to resume: sealed inside the ticket."""

    suite: int
    psk: bytes
    issued_ms: int
    lifetime: int
    age_add: int
    max_early_data: int = 0
    alpn: str = ""
    server_name: str = ""
    version: int = 0x0304      # TLS 1.2 tickets (RFC 5077) carry the master secret as ``psk``
    ems: bool = False          # TLS 1.2: extended master secret was used (RFC 7627 §5.3)
    peer_cert: bytes = b""     # the client chain the session was authenticated with (resumption.py)

    _FMT = ">BHQIIIHB"

    def encode(self) -> bytes:
        def v(b: bytes) -> bytes:
            return bytes([len(b)]) + b
        return (struct.pack(self._FMT, 1, self.suite, self.issued_ms, self.lifetime, self.age_add,
                            self.max_early_data, self.version, int(self.ems))
                + v(self.psk) + v(self.alpn.encode()) + v(self.server_name.encode())
                + len(self.peer_cert).to_bytes(3, "big") + self.peer_cert)

    @classmethod
    def decode(cls, data: bytes) -> "TicketState | None":
        try:
            fmt, suite, issued, lifetime, age_add, max_ed, version, ems = struct.unpack_from(cls._FMT, data)
            if fmt != 1:
                return None
            pos = struct.calcsize(cls._FMT)
            parts = []
            for _ in range(3):
                n = data[pos]
                parts.append(data[pos + 1:pos + 1 + n])
                if len(parts[-1]) != n:
                    return None
                pos += 1 + n
            n = int.from_bytes(data[pos:pos + 3], "big")
            peer_cert = data[pos + 3:pos + 3 + n]
            if len(peer_cert) != n or pos + 3 + n != len(data):
                return None
            return cls(suite, parts[0], issued, lifetime, age_add, max_ed,
                       parts[1].decode(), parts[2].decode(), version, bool(ems), peer_cert)
        except (struct.error, IndexError, UnicodeDecodeError):
            return None


class TicketKeys:
    """Rotating ticket-protection keys and the 0-RTT replay cache (server side).

    Keys are made from the connection's injected randomness when first needed,
    so the engine stays free of global randomness.  ``rotation`` is the period in
    seconds; a ticket stays decryptable for two periods, which bounds the useful
    ticket lifetime the server should advertise.
    """

    NAME_LEN = 8

    def __init__(self, rotation: int = 12 * 3600, replay_cache_size: int = 100_000) -> None:
        self.rotation = rotation
        self._keys: "OrderedDict[int, tuple[bytes, AESGCM]]" = OrderedDict()  # period -> (name, aead)
        self._lock = threading.Lock()
        self._seen: "OrderedDict[bytes, float]" = OrderedDict()
        self._seen_max = replay_cache_size

    def _key_for(self, period: int, provider) -> tuple[bytes, AESGCM]:
        with self._lock:
            if period not in self._keys:
                self._keys[period] = (provider.random(self.NAME_LEN), AESGCM(provider.random(32)))
                for old in [p for p in self._keys if p < period - 1]:
                    del self._keys[old]
            return self._keys[period]

    def seal(self, state: TicketState, now: float, provider) -> bytes:
        name, aead = self._key_for(int(now // self.rotation), provider)
        nonce = provider.random(12)
        return name + nonce + aead.encrypt(nonce, state.encode(), name)

    def open(self, ticket: bytes, now: float) -> TicketState | None:
        """The state in a ticket we issued and can still read; ``None`` for anything else."""
        if len(ticket) < self.NAME_LEN + 12 + 16:
            return None
        name, nonce, body = ticket[:self.NAME_LEN], ticket[self.NAME_LEN:self.NAME_LEN + 12], \
            ticket[self.NAME_LEN + 12:]
        # a key lives for two rotation periods, measured by the clock the caller gives, not
        # by when the next ticket happens to be sealed: a server that stops issuing tickets
        # must still stop accepting old ones
        oldest = int(now // self.rotation) - 1
        with self._lock:
            for old in [p for p in self._keys if p < oldest]:
                del self._keys[old]
            candidates = [aead for p, (n, aead) in self._keys.items()
                          if n == name and p <= oldest + 1]
        for aead in candidates:
            try:
                return TicketState.decode(aead.decrypt(nonce, body, name))
            except Exception:  # InvalidTag: forged or corrupted
                return None
        return None

    def first_use(self, token: bytes, now: float, window: float) -> bool:
        """Record ``token`` (e.g. a PSK binder); False if it was seen within ``window`` seconds.

        RFC 8446 §8.1/§8.2: entries older than ``window`` are dropped (the caller
        refuses 0-RTT outside that freshness window anyway); when the cache is full
        with fresh entries, 0-RTT is refused rather than an entry forgotten, so an
        attacker cannot flush the cache to replay a recorded flight.
        """
        with self._lock:
            seen = self._seen
            # insertion order is time order: expire from the front only
            while seen:
                first = next(iter(seen))
                if seen[first] >= now - window:
                    break
                del seen[first]
            if token in seen:
                return False
            if len(seen) >= self._seen_max:
                return False  # full: refuse 0-RTT rather than forget what was seen (fail closed)
            seen[token] = now
            return True


@dataclass
class Session:
    """A ticket as the client keeps it (RFC 8446 §4.6.1)."""

    server_name: str
    ticket: bytes
    psk: bytes
    suite: int
    age_add: int
    lifetime: int
    received_at: float
    max_early_data: int = 0
    alpn: str | None = None
    #: who checked the server when the ticket was earned (ClientConfig.verifier_id): a
    #: session is only resumed by a client that would have checked it the same way
    verifier: str = ""

    def expired(self, now: float) -> bool:
        return now > self.received_at + min(self.lifetime, MAX_TICKET_LIFETIME)

    def obfuscated_age(self, now: float) -> int:
        """RFC 8446 §4.2.11.1: age in milliseconds plus ticket_age_add, modulo 2^32."""
        age_ms = max(0, int((now - self.received_at) * 1000))
        return (age_ms + self.age_add) & 0xFFFFFFFF

    def to_json(self) -> dict:
        d = asdict(self)
        d["ticket"] = self.ticket.hex()
        d["psk"] = self.psk.hex()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Session":
        d = dict(d)
        d["ticket"] = bytes.fromhex(d["ticket"])
        d["psk"] = bytes.fromhex(d["psk"])
        return cls(**d)


class TicketStore:
    """In-memory client ticket store: a few tickets per server name, used once each.

    RFC 8446 §C.4: clients SHOULD NOT reuse a ticket, to keep connections unlinkable.
    """

    def __init__(self, per_server: int = 4) -> None:
        self._by_name: dict[str, list[Session]] = {}
        self.per_server = per_server
        self._lock = threading.Lock()

    def add(self, session: Session) -> None:
        with self._lock:
            lst = self._by_name.setdefault(session.server_name, [])
            lst.append(session)
            del lst[:-self.per_server]
            self._saved()

    def take(self, server_name: str, now: float, kind: type | None = None,
             verifier: str | None = None):
        """The newest unexpired session for ``server_name`` (of class ``kind``, default
        TLS 1.3 :class:`Session`), removed from the store.  With ``verifier``, only a
        session earned by a client that verified the server that same way (same trust
        anchors, name check and client identity: ``ClientConfig.verifier_id``) is taken,
        so a store shared with an ``insecure`` client never lets an unauthenticated
        session be resumed as an authenticated one."""
        kind = kind or Session
        with self._lock:
            lst = self._by_name.get(server_name, [])
            lst[:] = [s for s in lst if not s.expired(now)]
            for i in range(len(lst) - 1, -1, -1):
                if isinstance(lst[i], kind) and (verifier is None or hmac.compare_digest(
                        lst[i].verifier, verifier)):
                    s = lst.pop(i)
                    self._saved()
                    return s
            return None

    def count(self, server_name: str) -> int:
        return len(self._by_name.get(server_name, []))

    def _saved(self) -> None:
        """Hook for persistent stores."""


class TicketFileError(ValueError):
    """The ticket file is not one tlslab may read or write (a symlink, not a regular file,
    someone else's, or readable by others)."""


class FileTicketStore(TicketStore):
    """A :class:`TicketStore` kept in a JSON file (used by ``tlslab connect --reconnect``).

    The file holds resumption secrets, so it is handled like ssh handles its keys: it is
    never followed through a symbolic link, must be a regular file owned by this user and
    not readable by group or others (else :class:`TicketFileError`), and is rewritten by
    creating a new 0600 file beside it and renaming it into place, so a crash never leaves
    it half-written and a changed mode or a planted link never carries over.
    """

    def __init__(self, path: str, per_server: int = 4) -> None:
        super().__init__(per_server)
        self.path = path
        raw = self._read()
        try:
            for name, items in raw.items():
                self._by_name[name] = [Session12.from_json(d) if d.get("kind") == "tls12"
                                       else Session.from_json(d) for d in items]
        except (AttributeError, ValueError, TypeError, KeyError):
            self._by_name.clear()  # not our format: start afresh (rewritten on the next ticket)

    def _read(self) -> dict:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return {}
        except OSError as e:
            if os.path.islink(self.path):
                raise TicketFileError(f"{self.path}: is a symbolic link; a ticket file must "
                                      "be a regular file") from None
            raise TicketFileError(f"{self.path}: cannot read: {e.strerror or e}") from None
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise TicketFileError(f"{self.path}: is not a regular file")
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                raise TicketFileError(f"{self.path}: belongs to another user (uid {st.st_uid})")
            if st.st_mode & 0o077:
                raise TicketFileError(
                    f"{self.path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read its "
                    "resumption secrets; it must be 0600 (chmod 600, or delete it)")
            try:
                raw = json.load(f)
            except (ValueError, UnicodeDecodeError):
                return {}
        return raw if isinstance(raw, dict) else {}

    def _saved(self) -> None:
        data = {k: [s.to_json() for s in v] for k, v in self._by_name.items()}
        directory = os.path.dirname(os.path.abspath(self.path))
        # mkstemp: O_EXCL and mode 0600, so nobody can have the new file open or planted
        fd, tmp = tempfile.mkstemp(prefix=".tlslab-tickets-", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)  # rename: replaces a link itself, never its target
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise





@dataclass
class Session12:
    """A resumable TLS 1.0-1.2 session as the client keeps it (RFC 5246 §7.3, RFC 5077 §3.4)."""

    server_name: str
    session_id: bytes
    ticket: bytes
    master_secret: bytes
    suite: int
    version: int
    ems: bool
    received_at: float
    lifetime: int = 7200
    verifier: str = ""  # as Session.verifier

    def expired(self, now: float) -> bool:
        return now > self.received_at + min(self.lifetime, 86400)

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("session_id", "ticket", "master_secret"):
            d[k] = getattr(self, k).hex()
        d["kind"] = "tls12"
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Session12":
        d = {k: v for k, v in d.items() if k != "kind"}
        for k in ("session_id", "ticket", "master_secret"):
            d[k] = bytes.fromhex(d[k])
        return cls(**d)


class SessionCache:
    """Server-side TLS 1.2 session-ID cache (RFC 5246 §7.3), bounded and thread-safe."""

    def __init__(self, size: int = 10_000, lifetime: int = 7200) -> None:
        self._items: "OrderedDict[bytes, tuple]" = OrderedDict()
        self.size = size
        self.lifetime = lifetime
        self._lock = threading.Lock()

    def put(self, session_id: bytes, value: tuple, now: float) -> None:
        with self._lock:
            self._items[session_id] = (now, value)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, session_id: bytes, now: float):
        with self._lock:
            item = self._items.get(session_id)
            if item is None or now - item[0] > self.lifetime:
                return None
            return item[1]


__all__ = ["TicketState", "TicketKeys", "Session", "Session12", "SessionCache", "TicketStore",
           "FileTicketStore", "TicketFileError", "MAX_TICKET_LIFETIME"]
