"""Record protection rebuilt from secrets, for traffic the engine did not carry itself.

A capture decoder (``tlslab decode``) watches both directions of a connection and
gets its secrets from an NSS key log rather than from a handshake it ran.  It needs
the same record protection and key derivations the live engine uses, from a
different starting point: a traffic secret (TLS 1.3) or a master / pre-master
secret (TLS 1.2).  This module is that entry point, so nothing above the engine
reaches into the key schedule or the protectors' internals:

* TLS 1.3: :func:`tls13_reader` builds the :class:`~.protection.RecordProtector` of one
  direction from a ``*_traffic_secret`` (RFC 8446 §7.3 traffic keys, §5.2/§5.3 record
  protection); :func:`tls13_next_secret` is ``application_traffic_secret_N+1``
  (RFC 8446 §7.2, after a KeyUpdate).
* TLS 1.0-1.2: :func:`tls12_master_secret` derives the master secret from a
  pre-master secret (RFC 5246 §8.1; the extended master secret of RFC 7627 §4 with a
  session hash from :func:`tls12_session_hash`), and :func:`tls12_readers` the two
  directions' :class:`~.tls12.protection.RecordProtector12` from the master secret
  (RFC 5246 §6.3 key block; AEAD, CBC with or without encrypt-then-MAC, RFC 7366).

Everything here is pure: secrets in, objects out; no files, no clocks.
"""
from __future__ import annotations

from .errors import InternalError
from .keyschedule import SUITES, SuiteInfo, hkdf_expand_label
from .protection import RecordProtector
from .tls12.prf import handshake_hash, key_material, master_secret
from .tls12.protection import RecordProtector12
from .tls12.suites import SUITES12, Suite12

__all__ = ["tls13_suite", "tls13_reader", "tls13_next_secret", "tls12_suite",
           "tls12_master_secret", "tls12_session_hash", "tls12_readers"]


# --------------------------------------------------------------------------- TLS 1.3

def tls13_suite(code: int) -> SuiteInfo | None:
    """The TLS 1.3 suite the engine can protect records with (RFC 8446 §B.4), or None
    (CCM suites, unknown code points)."""
    return SUITES.get(code)


def tls13_reader(suite_code: int, secret: bytes, seq: int = 0) -> RecordProtector:
    """The protector that opens one direction's records under ``secret`` (any of the
    ``*_traffic_secret`` values of RFC 8446 §7.1): key and IV per §7.3, nonces per §5.3.

    Raises :class:`~.errors.InternalError` for a suite the engine cannot run or a secret
    whose length is not the suite's hash length (a key log line from another suite)."""
    suite = SUITES.get(suite_code)
    if suite is None:
        raise InternalError(f"no TLS 1.3 record protection for suite 0x{suite_code:04x}")
    if len(secret) != suite.hash_len:
        raise InternalError(f"{suite.name} needs {suite.hash_len}-byte traffic secrets, "
                            f"not {len(secret)} bytes")
    return RecordProtector(suite, secret, seq)


def tls13_next_secret(suite_code: int, secret: bytes) -> bytes:
    """application_traffic_secret_N+1 = HKDF-Expand-Label(application_traffic_secret_N,
    "traffic upd", "", Hash.length) (RFC 8446 §7.2)."""
    suite = SUITES.get(suite_code)
    if suite is None:
        raise InternalError(f"no TLS 1.3 key schedule for suite 0x{suite_code:04x}")
    return hkdf_expand_label(suite.hash_name, secret, b"traffic upd", b"", suite.hash_len)


# --------------------------------------------------------------------------- TLS 1.2

def tls12_suite(code: int) -> Suite12 | None:
    """The TLS 1.0-1.2 suite the engine knows (RFC 5246 Appendix C and the AEAD suites
    of RFC 5288 / 5289 / 7905), or None."""
    return SUITES12.get(code)


def tls12_session_hash(handshake_messages: bytes, suite_code: int, version: int = 0x0303) -> bytes:
    """The RFC 7627 §3 ``session_hash``: the hash of the handshake messages from
    ClientHello up to and including ClientKeyExchange (the suite's PRF hash in TLS 1.2,
    MD5 || SHA-1 before)."""
    suite = _need12(suite_code)
    return handshake_hash(handshake_messages, suite.prf_hash, version)


def tls12_master_secret(pre_master_secret: bytes, client_random: bytes, server_random: bytes,
                        suite_code: int, version: int = 0x0303,
                        session_hash: bytes | None = None) -> bytes:
    """The 48-byte master secret from a pre-master secret: RFC 5246 §8.1, or with a
    ``session_hash`` the extended master secret of RFC 7627 §4."""
    suite = _need12(suite_code)
    return master_secret(pre_master_secret, client_random, server_random,
                         hash_name=suite.prf_hash, session_hash=session_hash, version=version)


def tls12_readers(suite_code: int, master: bytes, client_random: bytes, server_random: bytes,
                  version: int = 0x0303, encrypt_then_mac: bool = False
                  ) -> tuple[RecordProtector12, RecordProtector12]:
    """``(client_writes, server_writes)``: the protectors that open the records each side
    sends, from the key block of RFC 5246 §6.3.  ``encrypt_then_mac`` is the negotiated
    RFC 7366 extension (it changes CBC suites only)."""
    suite = _need12(suite_code)
    if not suite.available:
        raise InternalError(f"{suite.name}: this cryptography build cannot run its cipher")
    if len(master) != 48:
        raise InternalError(f"a TLS 1.2 master secret has 48 bytes, not {len(master)}")
    keys = key_material(suite, master, client_random, server_random, version)
    out = []
    for client in (True, False):
        key, mac_key, iv = keys.writer(client)
        out.append(RecordProtector12(suite, key, mac_key, iv, version, encrypt_then_mac))
    return out[0], out[1]


def _need12(code: int) -> Suite12:
    suite = SUITES12.get(code)
    if suite is None:
        raise InternalError(f"no TLS 1.2 record protection for suite 0x{code:04x}")
    return suite
