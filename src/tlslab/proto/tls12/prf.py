"""The TLS 1.2 pseudo-random function and what is derived with it.

* :func:`prf` is ``PRF(secret, label, seed) = P_<hash>(secret, label + seed)``
  (RFC 5246 §5); :func:`prf_tls10` is the TLS 1.0/1.1 PRF that XORs P_MD5 over the
  first half of the secret with P_SHA-1 over the second half (RFC 2246 §5,
  RFC 4346 §5).
* :func:`master_secret`: RFC 5246 §8.1, or the extended master secret of
  RFC 7627 §4 when a ``session_hash`` is given.
* :func:`key_block` / :func:`key_material`: RFC 5246 §6.3.
* :func:`verify_data`: the Finished value (RFC 5246 §7.4.9, RFC 2246 §7.4.9).

HMAC and hashes come from the standard library's OpenSSL bindings (the inputs are
tiny, and a C call there is the cheapest way to run them from Python).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import InternalError
from ..keyschedule import HASH_CONSTRUCTORS, hmac_new


TLS1_0 = 0x0301
TLS1_1 = 0x0302
TLS1_2 = 0x0303

MASTER_SECRET_LEN = 48          # RFC 5246 §8.1
VERIFY_DATA_LEN = 12            # RFC 5246 §7.4.9 (verify_data_length for every suite we know)

_PRF_HASHES = ("sha256", "sha384", "sha512")


def p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """``P_hash(secret, seed)`` truncated to ``length`` bytes (RFC 5246 §5).

    A(0) = seed, A(i) = HMAC(secret, A(i-1)); output = HMAC(secret, A(1) + seed) +
    HMAC(secret, A(2) + seed) + ...
    """
    if length < 0:
        raise InternalError("negative PRF output length")
    out = b""
    a = seed
    while len(out) < length:
        a = hmac_new(secret, a, hash_name).digest()
        out += hmac_new(secret, a + seed, hash_name).digest()
    return out[:length]


def prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF (RFC 5246 §5): ``P_<hash_name>(secret, label + seed)``.

    ``hash_name`` is the suite's PRF hash, ``"sha256"`` unless the suite says
    otherwise (``"sha384"`` for the ``*_SHA384`` suites, RFC 5289 §3 / RFC 5288 §3).
    """
    if hash_name not in _PRF_HASHES:
        raise InternalError(f"no TLS 1.2 PRF with hash {hash_name!r}")
    return p_hash(hash_name, secret, label + seed, length)


def prf_tls10(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.0 / 1.1 PRF (RFC 2246 §5, unchanged in RFC 4346 §5).

    The secret is split into two halves (sharing the middle byte when its length
    is odd); ``PRF = P_MD5(S1, label + seed) XOR P_SHA-1(S2, label + seed)``.
    """
    half = (len(secret) + 1) // 2
    s1, s2 = secret[:half], secret[len(secret) - half:]
    md5 = p_hash("md5", s1, label + seed, length)
    sha = p_hash("sha1", s2, label + seed, length)
    # XOR as two integers: one operation instead of a Python loop over every byte
    return (int.from_bytes(md5, "big") ^ int.from_bytes(sha, "big")).to_bytes(length, "big")


def version_prf(version: int, hash_name: str, secret: bytes, label: bytes, seed: bytes,
                length: int) -> bytes:
    """The PRF for a protocol version: :func:`prf` for TLS 1.2, :func:`prf_tls10` before."""
    if version >= TLS1_2:
        return prf(hash_name, secret, label, seed, length)
    return prf_tls10(secret, label, seed, length)


def handshake_hash(transcript: bytes, hash_name: str = "sha256", version: int = TLS1_2) -> bytes:
    """The hash of the handshake messages used by Finished (RFC 5246 §7.4.9) and by the
    extended master secret's ``session_hash`` (RFC 7627 §3).

    TLS 1.2 uses the suite's PRF hash; TLS 1.0/1.1 use ``MD5(m) + SHA-1(m)`` (36 bytes,
    RFC 2246 §7.4.9, RFC 7627 §3).
    """
    if version >= TLS1_2:
        return HASH_CONSTRUCTORS[hash_name](transcript).digest()
    return hashlib.md5(transcript).digest() + hashlib.sha1(transcript).digest()


def master_secret(pre_master_secret: bytes, client_random: bytes, server_random: bytes, *,
                  hash_name: str = "sha256", session_hash: bytes | None = None,
                  version: int = TLS1_2) -> bytes:
    """The 48-byte master secret.

    Without ``session_hash``: ``PRF(pre_master_secret, "master secret",
    client_random + server_random)`` (RFC 5246 §8.1).  With it (the
    extended_master_secret extension was negotiated): ``PRF(pre_master_secret,
    "extended master secret", session_hash)`` (RFC 7627 §4), where ``session_hash``
    is :func:`handshake_hash` of ClientHello up to and including ClientKeyExchange.
    """
    if session_hash is not None:
        return version_prf(version, hash_name, pre_master_secret, b"extended master secret",
                           session_hash, MASTER_SECRET_LEN)
    if len(client_random) != 32 or len(server_random) != 32:
        raise InternalError("client and server randoms must be 32 bytes")
    return version_prf(version, hash_name, pre_master_secret, b"master secret",
                       client_random + server_random, MASTER_SECRET_LEN)


def key_block(master: bytes, server_random: bytes, client_random: bytes, length: int, *,
              hash_name: str = "sha256", version: int = TLS1_2) -> bytes:
    """``PRF(master_secret, "key expansion", server_random + client_random)`` (RFC 5246 §6.3).

    Note the order of the randoms: server first, unlike the master secret.
    """
    return version_prf(version, hash_name, master, b"key expansion",
                       server_random + client_random, length)


@dataclass(frozen=True)
class KeyBlock:
    """The key block partitioned as RFC 5246 §6.3 lists it."""

    client_mac_key: bytes
    server_mac_key: bytes
    client_key: bytes
    server_key: bytes
    client_iv: bytes
    server_iv: bytes

    def writer(self, client: bool) -> tuple[bytes, bytes, bytes]:
        """``(key, mac_key, iv)`` for the side that writes: client or server."""
        if client:
            return self.client_key, self.client_mac_key, self.client_iv
        return self.server_key, self.server_mac_key, self.server_iv


def key_material(suite, master: bytes, client_random: bytes, server_random: bytes,
                 version: int = TLS1_2) -> KeyBlock:
    """Derive and split the key block for ``suite`` (a :class:`~.suites.Suite12`), RFC 5246 §6.3.

    The IVs are the suite's ``fixed_iv_len`` bytes: the 4-byte salt of AES-GCM
    (RFC 5288 §3), the 12-byte ChaCha20-Poly1305 IV (RFC 7905 §2), and for CBC
    the block-sized IV that only TLS 1.0 uses (RFC 2246 §6.3).  TLS 1.1+ CBC
    ignores it (explicit per-record IVs, RFC 4346 §6.2.3.2) but deriving it costs
    nothing and it sits after everything else, so the other values are unchanged;
    this matches what OpenSSL and "The Illustrated TLS 1.2 Connection" show.
    """
    mac, key, iv = suite.mac_key_len, suite.key_len, suite.fixed_iv_len
    block = key_block(master, server_random, client_random, 2 * (mac + key + iv),
                      hash_name=suite.prf_hash, version=version)
    parts = []
    pos = 0
    for size in (mac, mac, key, key, iv, iv):
        parts.append(block[pos:pos + size])
        pos += size
    return KeyBlock(*parts)


def verify_data(master: bytes, handshake_hash_value: bytes, client: bool, *,
                hash_name: str = "sha256", version: int = TLS1_2) -> bytes:
    """Finished.verify_data: ``PRF(master_secret, finished_label, Hash(handshake_messages))``
    truncated to 12 bytes (RFC 5246 §7.4.9); ``finished_label`` is "client finished"
    or "server finished".  ``handshake_hash_value`` comes from :func:`handshake_hash`.
    """
    label = b"client finished" if client else b"server finished"
    return version_prf(version, hash_name, master, label, handshake_hash_value, VERIFY_DATA_LEN)
