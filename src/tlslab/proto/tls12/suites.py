"""TLS 1.2 (and 1.0/1.1) cipher suites: what the key block, the record protection and
the key exchange need to know about each one.

Sources: RFC 5246 Appendix A.5 and C (RSA, DHE_RSA, CBC, RC4, 3DES), RFC 8422 §6
(ECDHE_*_CBC_SHA), RFC 5288 §3 (AES-GCM with RSA / DHE), RFC 5289 §3 (ECDHE with
SHA-256/384 and GCM), RFC 7905 §2 (ChaCha20-Poly1305).  Code points are the IANA
"TLS Cipher Suites" registry values.

``legacy`` suites (3DES, RC4) exist so the workbench can talk to, and diagnose,
old servers, and so the lab can play one: they are never in a default list, on
either side, and are used only when a configuration names them.  Whether
``cryptography`` can still run their cipher (it moved them to
``cryptography.hazmat.decrepit`` and may drop them) is in ``available``; an
unavailable suite is kept in the table, so it is still named in traces.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..names import CipherSuite

try:  # cryptography >= 43 keeps TripleDES / ARC4 here
    from cryptography.hazmat.decrepit.ciphers import algorithms as _decrepit
except ImportError:  # pragma: no cover - depends on the installed cryptography
    _decrepit = None


def _probe(name: str, key_len: int) -> bool:
    """True if the decrepit cipher ``name`` is importable and the backend runs it."""
    if _decrepit is None or not hasattr(_decrepit, name):
        return False
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, modes

        algo = getattr(_decrepit, name)(bytes(range(1, key_len + 1)))
        mode = modes.CBC(bytes(8)) if name == "TripleDES" else None
        Cipher(algo, mode).encryptor().update(bytes(8))
        return True
    except Exception:  # UnsupportedAlgorithm on an OpenSSL without the legacy provider
        return False


HAVE_3DES = _probe("TripleDES", 24)
HAVE_RC4 = _probe("ARC4", 16)

KX_ECDHE_ECDSA = "ECDHE_ECDSA"
KX_ECDHE_RSA = "ECDHE_RSA"
KX_DHE_RSA = "DHE_RSA"
KX_RSA = "RSA"

# cipher: (key_len, block_size or 0, fixed_iv_len, record_iv_len, aead)
#   AES-GCM: 4-byte salt + 8-byte explicit nonce (RFC 5288 §3)
#   ChaCha20-Poly1305: 12-byte IV from the key block, no explicit nonce (RFC 7905 §2)
#   CBC: block-sized IV (implicit in TLS 1.0, explicit per record in 1.1+)
_CIPHERS = {
    "AES_128_GCM": (16, 0, 4, 8, True),
    "AES_256_GCM": (32, 0, 4, 8, True),
    "CHACHA20_POLY1305": (32, 0, 12, 0, True),
    "AES_128_CBC": (16, 16, 16, 16, False),
    "AES_256_CBC": (32, 16, 16, 16, False),
    "3DES_EDE_CBC": (24, 8, 8, 8, False),
    "RC4_128": (16, 0, 0, 0, False),
}
_MACS = {"MD5": 16, "SHA1": 20, "SHA256": 32, "SHA384": 48}


@dataclass(frozen=True)
class Suite12:
    """One TLS 1.2 cipher suite (RFC 5246 §6.1 SecurityParameters, Appendix C)."""

    code: int
    name: str
    kx: str                   # "ECDHE_ECDSA", "ECDHE_RSA", "DHE_RSA" or "RSA"
    cipher: str               # "AES_128_GCM", ..., "RC4_128"
    mac: str | None           # "MD5", "SHA1", "SHA256", "SHA384"; None for AEAD suites
    prf_hash: str             # TLS 1.2 PRF / Finished hash: "sha256" or "sha384"
    key_len: int              # enc_key_length
    fixed_iv_len: int         # IV bytes taken from the key block
    record_iv_len: int        # explicit IV / nonce bytes carried in each record (TLS 1.1+)
    mac_len: int              # HMAC output length (0 for AEAD)
    mac_key_len: int          # MAC key length from the key block (0 for AEAD)
    block_size: int           # cipher block size for CBC, 0 for stream / AEAD
    aead: bool
    legacy: bool              # 3DES / RC4: only when named, never in a default list
    min_version: int          # AEAD and SHA-256/384 suites exist only from TLS 1.2
    available: bool = True    # False when cryptography cannot run the cipher any more

    @property
    def cbc(self) -> bool:
        return self.block_size > 0

    @property
    def stream(self) -> bool:
        return self.cipher == "RC4_128"

    @property
    def ephemeral(self) -> bool:
        """Forward secret key exchange (ECDHE / DHE): a ServerKeyExchange follows."""
        return self.kx != KX_RSA

    @property
    def signature_key(self) -> str:
        """The server certificate key type the suite needs: "RSA" or "EC"."""
        return "EC" if self.kx == KX_ECDHE_ECDSA else "RSA"


def _suite(code: int, name: str) -> Suite12:
    body = name[len("TLS_"):]
    kx, rest = body.split("_WITH_")
    if rest == "CHACHA20_POLY1305_SHA256":
        cipher, tail = "CHACHA20_POLY1305", "SHA256"
    else:
        cipher, tail = rest.rsplit("_", 1)
    key_len, block, fixed_iv, record_iv, aead = _CIPHERS[cipher]
    if tail == "SHA":  # registry names say "SHA" for HMAC-SHA1 (RFC 5246 Appendix C)
        tail = "SHA1"
    mac = None if aead else tail
    mac_len = 0 if aead else _MACS[tail]
    prf_hash = "sha384" if tail == "SHA384" else "sha256"
    legacy = cipher in ("3DES_EDE_CBC", "RC4_128")
    available = (cipher != "3DES_EDE_CBC" or HAVE_3DES) and (cipher != "RC4_128" or HAVE_RC4)
    min_version = 0x0303 if aead or tail in ("SHA256", "SHA384") else 0x0301
    return Suite12(code, name, kx, cipher, mac, prf_hash, key_len, fixed_iv, record_iv,
                   mac_len, mac_len, block, aead, legacy, min_version, available)


# IANA "TLS Cipher Suites" registry.  Names are the registry names, parsed by _suite.
_REGISTRY = {
    # RSA key transport (RFC 5246 Appendix A.5, RFC 5288 §3)
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    # DHE_RSA (RFC 5246, RFC 5288, RFC 7905)
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    # ECDHE_ECDSA (RFC 8422, RFC 5289, RFC 7905)
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    # ECDHE_RSA (RFC 8422, RFC 5289, RFC 7905)
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

SUITES12: dict[int, Suite12] = {code: _suite(code, name) for code, name in _REGISTRY.items()}
SUITES12_BY_NAME: dict[str, Suite12] = {s.name: s for s in SUITES12.values()}

# Code points this table knows that names.CipherSuite does not (yet): to be merged there.
EXTRA_CIPHER_SUITE_NAMES: dict[int, str] = {
    code: name for code, name in _REGISTRY.items()
    if code not in CipherSuite._value2member_map_
}

# Our preference order: forward secrecy first, then AEAD (ECDSA before RSA when both are
# possible, AES-GCM before ChaCha20), then CBC; static RSA last.  No legacy suites.
DEFAULT_SUITES12: tuple[int, ...] = (
    0xC02B, 0xC02C, 0xCCA9, 0xC02F, 0xC030, 0xCCA8,
    0x009E, 0x009F, 0xCCAA,
    0xC009, 0xC00A, 0xC023, 0xC024, 0xC013, 0xC014, 0xC027, 0xC028,
    0x0033, 0x0039, 0x0067, 0x006B,
    0x009C, 0x009D, 0x002F, 0x0035, 0x003C, 0x003D,
)


# A server's defaults: the same without static RSA key exchange (TLS_RSA_*), which has no
# forward secrecy and makes the server a potential Bleichenbacher oracle (ROBOT); a server
# enables it only by naming the suites (ServerConfig(cipher_suites=[...]), the lab's
# rsa-kx-only scenario).  A client keeps offering them last by default, as OpenSSL and
# Go still do: offering them costs a client nothing (the server picks, and tlslab's own
# server never does by default), and probing and diagnosing old servers needs them.
DEFAULT_SERVER_SUITES12: tuple[int, ...] = tuple(
    c for c in DEFAULT_SUITES12 if SUITES12[c].kx != KX_RSA)


def suite12(code: int) -> Suite12 | None:
    """The suite for ``code``, or ``None`` if it is not a TLS 1.2 suite we know."""
    return SUITES12.get(code)


def suite_name(code: int) -> str:
    """IANA name of a TLS 1.2 suite code (``0x1234`` for unknown ones)."""
    suite = SUITES12.get(code)
    if suite is not None:
        return suite.name
    try:
        return CipherSuite(code).name
    except ValueError:
        return f"0x{code:04x}"
