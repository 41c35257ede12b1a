"""The TLS 1.3 key schedule (RFC 8446 §7.1), Finished (§4.4.4), traffic keys (§7.3),
key update (§7.2), resumption (§4.6.1) and exporters (§7.5).

HMAC and hashing use the standard library's OpenSSL bindings: the inputs are a few
dozen bytes, and a one-shot C call there is far cheaper than building
``cryptography`` HMAC objects; a handshake makes about twenty HMAC calls per side.
Every HkdfLabel the handshake uses is a constant per hash (label and length are fixed,
the context is a transcript hash or empty), so it is encoded once at import.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from .errors import InternalError

try:
    # ``_hashlib.hmac_new(key, msg, name).digest()`` is the C HMAC object behind ``hmac.new``.
    # Measured (CPython 3.11, OpenSSL 3.0, an 80-byte input): 0.95 µs against 1.35 µs for
    # the one-shot ``hmac.digest`` (OpenSSL 3's one-shot ``HMAC()`` is the slower path), and
    # 1.6 against 2.0 µs for SHA-384.  Under cProfile it looks no faster: it is two C calls,
    # and the profiler charges each one.  The TLS 1.2 PRF and record MAC use it too.
    from _hashlib import hmac_new
except ImportError:  # pragma: no cover - CPython without OpenSSL hashes
    hmac_new = hmac.new


@dataclass(frozen=True)
class SuiteInfo:
    """What the key schedule and record protection need to know about a TLS 1.3
    cipher suite (RFC 8446 §B.4)."""

    code: int
    name: str
    hash_name: str
    hash_len: int
    key_len: int
    iv_len: int
    aead: Callable
    #: bytes of AEAD tag per record: 16, except 8 for AES-128-CCM-8 (RFC 6655 §3)
    tag_len: int = 16


SUITES: dict[int, SuiteInfo] = {
    0x1301: SuiteInfo(0x1301, "TLS_AES_128_GCM_SHA256", "sha256", 32, 16, 12, AESGCM),
    0x1302: SuiteInfo(0x1302, "TLS_AES_256_GCM_SHA384", "sha384", 48, 32, 12, AESGCM),
    0x1303: SuiteInfo(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "sha256", 32, 32, 12,
                      ChaCha20Poly1305),
    # RFC 8446 §B.4 also lists the CCM suites (RFC 5116 §5.3, RFC 6655).  They are never in
    # a default list (OpenSSL's neither): only a configuration naming them enables them,
    # e.g. for IoT peers (RFC 7925); CCM_8's short tag is "not recommended" (RFC 8447 §8).
    0x1304: SuiteInfo(0x1304, "TLS_AES_128_CCM_SHA256", "sha256", 32, 16, 12, AESCCM),
    0x1305: SuiteInfo(0x1305, "TLS_AES_128_CCM_8_SHA256", "sha256", 32, 16, 12,
                      functools.partial(AESCCM, tag_length=8), tag_len=8),
}

_HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}
# Hash("") per hash, used by every "derived" step and the binder key (RFC 8446 §7.1).
_EMPTY_HASH = {name: hashlib.new(name).digest() for name in _HASH_LEN}
#: the hash constructors by name (TLS 1.3 and the TLS 1.2 PRF): hashlib.new(name) looks the
#: name up on every call
HASH_CONSTRUCTORS = {name: getattr(hashlib, name) for name in _HASH_LEN}
_BYTE = [bytes((i,)) for i in range(256)]


def hash_bytes(hash_name: str, data: bytes) -> bytes:
    """``Transcript-Hash`` / ``Hash`` of ``data`` (RFC 8446 §4.4.1)."""
    return HASH_CONSTRUCTORS[hash_name](data).digest()


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2); an empty salt is ``HashLen`` zeros, which HMAC
    treats identically, so no special case is needed."""
    return hmac_new(salt, ikm, hash_name).digest()


def _hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    hash_len = _HASH_LEN[hash_name]
    if length <= hash_len:
        # every TLS 1.3 secret, key and IV fits in one block: T(1) = HMAC(PRK, info | 0x01)
        return hmac_new(prk, info + b"\x01", hash_name).digest()[:length]
    if length > 255 * hash_len:
        raise InternalError("HKDF-Expand output too long")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_new(prk, block + info + _BYTE[counter], hash_name).digest()
        out += block
        counter += 1
    return out[:length]


def _label_prefix(label: bytes, length: int) -> bytes:
    """``uint16 length || opaque label<7..255>`` of an HkdfLabel (RFC 8446 §7.1)."""
    full_label = b"tls13 " + label
    if len(full_label) > 255:
        raise InternalError("HKDF label too long")
    return length.to_bytes(2, "big") + _BYTE[len(full_label)] + full_label


def hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes,
                      length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1); ``label`` is given without the "tls13 " prefix."""
    prefix = _LABEL_PREFIX.get((label, length))
    if prefix is None:
        prefix = _label_prefix(label, length)
        if len(_LABEL_PREFIX) < 256:  # exporter labels come from applications: bounded
            _LABEL_PREFIX[(label, length)] = prefix
    n = len(context)
    if n > 255:
        raise InternalError("HKDF context too long")
    if length <= _HASH_LEN[hash_name]:  # one HKDF-Expand block (all of TLS 1.3's outputs)
        return hmac_new(secret, prefix + _BYTE[n] + context + b"\x01", hash_name).digest()[:length]
    return _hkdf_expand(hash_name, secret, prefix + _BYTE[n] + context, length)


#: encoded HkdfLabel prefixes (length, label) -> bytes; the labels are a handful of constants
_LABEL_PREFIX: dict[tuple[bytes, int], bytes] = {}

#: The Derive-Secret labels of RFC 8446 §7.1.
_DERIVE_LABELS = (b"ext binder", b"res binder", b"c e traffic", b"e exp master", b"derived",
                  b"c hs traffic", b"s hs traffic", b"c ap traffic", b"s ap traffic",
                  b"exp master", b"res master")

#: hash name -> {label: HkdfLabel up to and including the context length byte}.  The
#: context of Derive-Secret is a Transcript-Hash, always Hash.length bytes, so for a
#: Derive-Secret the whole HKDF-Expand input is ``prefix || transcript_hash || 0x01``.
_DERIVE_PREFIX: dict[str, dict[bytes, bytes]] = {
    name: {label: _label_prefix(label, n) + _BYTE[n] for label in _DERIVE_LABELS}
    for name, n in _HASH_LEN.items()}

#: hash name -> HKDF-Expand input of finished_key and of "traffic upd": both have an
#: empty context (RFC 8446 §4.4.4, §7.2).
_FINISHED_INFO = {name: _label_prefix(b"finished", n) + b"\x00\x01" for name, n in _HASH_LEN.items()}
_TRAFFIC_UPD_INFO = {name: _label_prefix(b"traffic upd", n) + b"\x00\x01"
                     for name, n in _HASH_LEN.items()}


def derive_secret(hash_name: str, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    """Derive-Secret (RFC 8446 §7.1), taking the transcript hash rather than the messages,
    because the engine keeps a running transcript hash anyway."""
    return hkdf_expand_label(hash_name, secret, label, transcript_hash, _HASH_LEN[hash_name])


def _no_psk_secrets(hash_name: str) -> tuple[bytes, bytes]:
    """(Early Secret, Derive-Secret(Early Secret, "derived", "")) without a PSK (RFC 8446
    §7.1): HKDF-Extract(0, 0) has no input that varies, so both are constants per hash."""
    zeros = bytes(_HASH_LEN[hash_name])
    early = hkdf_extract(hash_name, zeros, zeros)
    return early, derive_secret(hash_name, early, b"derived", _EMPTY_HASH[hash_name])


#: hash name -> (early secret without PSK, its "derived" secret), computed once at import
_NO_PSK = {name: _no_psk_secrets(name) for name in _HASH_LEN}


class Transcript:
    """The running handshake transcript hash (RFC 8446 §4.4.1).

    A running :mod:`hashlib` object is kept so that :meth:`digest` costs one
    ``copy()`` however long the transcript is.
    """

    def __init__(self, hash_name: str, initial: bytes = b"") -> None:
        self.hash_name = hash_name
        self.hash_len = _HASH_LEN[hash_name]
        self._h = HASH_CONSTRUCTORS[hash_name]()
        if initial:
            self._h.update(initial)

    def update(self, message: bytes) -> None:
        """Append one or more complete handshake messages (header included)."""
        self._h.update(message)

    def digest(self) -> bytes:
        """Transcript-Hash of everything appended so far."""
        return self._h.copy().digest()

    def copy(self) -> "Transcript":
        other = Transcript.__new__(Transcript)
        other.hash_name = self.hash_name
        other.hash_len = self.hash_len
        other._h = self._h.copy()
        return other

    def restart_for_hrr(self) -> None:
        """Replace ClientHello1 by the synthetic ``message_hash`` message (RFC 8446 §4.4.1):
        handshake type 254, a 3-byte length of Hash.length, then Hash(ClientHello1).

        Call it after ClientHello1 was appended and before the HelloRetryRequest is.
        """
        ch1_hash = self._h.digest()
        self._h = HASH_CONSTRUCTORS[self.hash_name]()
        self._h.update(bytes((254, 0, 0, self.hash_len)) + ch1_hash)


class KeySchedule:
    """The staged TLS 1.3 key schedule of RFC 8446 §7.1.

    Every named secret derived is stored in :attr:`secrets` under its RFC 8446
    name and reported to :attr:`on_secret` (``callable(name, secret)``), which the
    connection uses for the trace and the key log.  Stages must be called in
    order: ``extract_early`` → (``binder_key``, ``early_traffic``) →
    ``extract_handshake`` → ``handshake_traffic`` → ``extract_master`` →
    ``application_traffic`` → ``resumption_master``.
    """

    def __init__(self, suite: SuiteInfo,
                 on_secret: Callable[[str, bytes], None] | None = None) -> None:
        self.suite = suite
        self.hash_name = suite.hash_name
        self.hash_len = suite.hash_len
        self.secrets: dict[str, bytes] = {}
        self.on_secret = on_secret
        self._zeros = bytes(self.hash_len)
        self._empty_hash = _EMPTY_HASH[self.hash_name]
        self._prefix = _DERIVE_PREFIX[self.hash_name]
        self._app_generation = {"client": 0, "server": 0}
        self._psk_used = False

    # -- bookkeeping ---------------------------------------------------------
    def _store(self, name: str, secret: bytes) -> bytes:
        self.secrets[name] = secret
        if self.on_secret is not None:
            self.on_secret(name, secret)
        return secret

    def _need(self, name: str) -> bytes:
        try:
            return self.secrets[name]
        except KeyError:
            raise InternalError(f"key schedule: {name} not derived yet") from None

    def _derive(self, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
        """Derive-Secret (§7.1): one HMAC over the prebuilt HkdfLabel of an RFC label."""
        prefix = self._prefix.get(label)
        if prefix is None or len(transcript_hash) != self.hash_len:
            return derive_secret(self.hash_name, secret, label, transcript_hash)
        return hmac_new(secret, prefix + transcript_hash + b"\x01", self.hash_name).digest()

    # -- stages --------------------------------------------------------------
    def extract_early(self, psk: bytes | None = None) -> bytes:
        """Early Secret = HKDF-Extract(0, PSK), with PSK = zeros when none is used (§7.1)."""
        if psk:
            self._psk_used = True
            early = hmac_new(self._zeros, psk, self.hash_name).digest()
        else:
            self._psk_used = False
            early = _NO_PSK[self.hash_name][0]  # HKDF-Extract(0, 0): a constant
        return self._store("early_secret", early)

    def binder_key(self, resumption: bool = True) -> bytes:
        """binder_key from "res binder" (resumption PSK) or "ext binder" (external PSK) (§7.1)."""
        label = b"res binder" if resumption else b"ext binder"
        return self._store("binder_key",
                           self._derive(self._need("early_secret"), label, self._empty_hash))

    def early_traffic(self, transcript_hash: bytes) -> bytes:
        """client_early_traffic_secret (returned) and early_exporter_master_secret, over
        Hash(ClientHello) (§7.1)."""
        early = self._need("early_secret")
        secret = self._store("client_early_traffic_secret",
                             self._derive(early, b"c e traffic", transcript_hash))
        self._store("early_exporter_master_secret",
                    self._derive(early, b"e exp master", transcript_hash))
        return secret

    def extract_handshake(self, shared_secret: bytes | None) -> bytes:
        """Handshake Secret = HKDF-Extract(Derive-Secret(Early, "derived", ""), (EC)DHE) (§7.1).

        ``None`` (psk_ke mode, no (EC)DHE) extracts zeros.  If no early secret was
        extracted yet (full handshake without PSK) it is extracted first.
        """
        if "early_secret" not in self.secrets:
            self.extract_early(None)
        if self._psk_used:
            derived = self._derive(self.secrets["early_secret"], b"derived", self._empty_hash)
        else:
            derived = _NO_PSK[self.hash_name][1]  # from the constant early secret: a constant
        return self._store("handshake_secret", hmac_new(derived, shared_secret or self._zeros,
                                                         self.hash_name).digest())

    def handshake_traffic(self, transcript_hash: bytes) -> tuple[bytes, bytes]:
        """(client_handshake_traffic_secret, server_handshake_traffic_secret) over
        Hash(ClientHello..ServerHello) (§7.1)."""
        hs = self._need("handshake_secret")
        client = self._store("client_handshake_traffic_secret",
                             self._derive(hs, b"c hs traffic", transcript_hash))
        server = self._store("server_handshake_traffic_secret",
                             self._derive(hs, b"s hs traffic", transcript_hash))
        return client, server

    def extract_master(self) -> bytes:
        """Master Secret = HKDF-Extract(Derive-Secret(Handshake, "derived", ""), 0) (§7.1)."""
        derived = self._derive(self._need("handshake_secret"), b"derived", self._empty_hash)
        return self._store("master_secret",
                           hmac_new(derived, self._zeros, self.hash_name).digest())

    def application_traffic(self, transcript_hash: bytes) -> tuple[bytes, bytes]:
        """(client_application_traffic_secret_0, server_application_traffic_secret_0), and
        exporter_master_secret, over Hash(ClientHello..server Finished) (§7.1)."""
        ms = self._need("master_secret")
        client = self._store("client_application_traffic_secret_0",
                             self._derive(ms, b"c ap traffic", transcript_hash))
        server = self._store("server_application_traffic_secret_0",
                             self._derive(ms, b"s ap traffic", transcript_hash))
        self._store("exporter_master_secret", self._derive(ms, b"exp master", transcript_hash))
        self._app_generation = {"client": 0, "server": 0}
        return client, server

    def resumption_master(self, transcript_hash: bytes) -> bytes:
        """resumption_master_secret over Hash(ClientHello..client Finished) (§7.1)."""
        return self._store("resumption_master_secret",
                           self._derive(self._need("master_secret"), b"res master",
                                        transcript_hash))

    # -- helpers -------------------------------------------------------------
    def finished_key(self, secret: bytes) -> bytes:
        """finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (§4.4.4)."""
        return hmac_new(secret, _FINISHED_INFO[self.hash_name], self.hash_name).digest()

    def verify_data(self, base_key_secret: bytes, transcript_hash: bytes) -> bytes:
        """Finished.verify_data = HMAC(finished_key, Transcript-Hash) (§4.4.4); also the
        PSK binder when ``base_key_secret`` is the binder_key (§4.2.11.2)."""
        h = self.hash_name
        finished_key = hmac_new(base_key_secret, _FINISHED_INFO[h], h).digest()
        return hmac_new(finished_key, transcript_hash, h).digest()

    def traffic_key_iv(self, secret: bytes) -> tuple[bytes, bytes]:
        """(write_key, write_iv) from a traffic secret (§7.3)."""
        return traffic_key_iv(self.suite, secret)

    def next_traffic_secret(self, secret: bytes) -> bytes:
        """application_traffic_secret_N+1 = HKDF-Expand-Label(N, "traffic upd", "", Hash.length)
        (§7.2).  Pure: does not record anything (see :meth:`update_application_traffic`)."""
        return hmac_new(secret, _TRAFFIC_UPD_INFO[self.hash_name], self.hash_name).digest()

    def update_application_traffic(self, client: bool) -> bytes:
        """Advance one side's application traffic secret after a KeyUpdate (§4.6.3, §7.2),
        storing it as ``{client,server}_application_traffic_secret_N``."""
        side = "client" if client else "server"
        n = self._app_generation[side]
        current = self._need(f"{side}_application_traffic_secret_{n}")
        n += 1
        self._app_generation[side] = n
        return self._store(f"{side}_application_traffic_secret_{n}",
                           self.next_traffic_secret(current))

    def resumption_psk(self, resumption_master_secret: bytes, nonce: bytes) -> bytes:
        """PSK for a ticket = HKDF-Expand-Label(resumption_master_secret, "resumption",
        ticket_nonce, Hash.length) (§4.6.1)."""
        return hkdf_expand_label(self.hash_name, resumption_master_secret, b"resumption", nonce,
                                 self.hash_len)

    def exporter(self, label: bytes | str, context: bytes | None, length: int,
                 early: bool = False) -> bytes:
        """TLS-Exporter(label, context_value, key_length) (RFC 8446 §7.5).

        ``context=None`` is the "no context" case, which RFC 8446 §7.5 defines to be
        the same as an empty context.  ``early=True`` uses the early exporter secret.
        """
        if isinstance(label, str):
            label = label.encode("ascii")
        base = self._need("early_exporter_master_secret" if early else "exporter_master_secret")
        secret = self._derive(base, label, self._empty_hash)
        return hkdf_expand_label(self.hash_name, secret, b"exporter",
                                 hash_bytes(self.hash_name, context or b""), length)


def traffic_key_iv(suite: SuiteInfo, secret: bytes) -> tuple[bytes, bytes]:
    """[sender]_write_key and [sender]_write_iv from a traffic secret (RFC 8446 §7.3).

    Both are one HKDF-Expand block over a constant HkdfLabel (empty context), so the
    whole ``info || 0x01`` input is precomputed per suite: this runs 8 times per handshake.
    """
    infos = _KEY_IV_INFO.get(suite.code)
    if infos is None:
        infos = _KEY_IV_INFO[suite.code] = (_label_prefix(b"key", suite.key_len) + b"\x00\x01",
                                            _label_prefix(b"iv", suite.iv_len) + b"\x00\x01")
    h = suite.hash_name
    return (hmac_new(secret, infos[0], h).digest()[:suite.key_len],
            hmac_new(secret, infos[1], h).digest()[:suite.iv_len])


#: suite code -> (HkdfLabel || 0x01 for "key", the same for "iv")
_KEY_IV_INFO: dict[int, tuple[bytes, bytes]] = {}
