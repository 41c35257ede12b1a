"""The code points a scan offers: every TLS cipher suite, group and signature scheme of the
IANA registries (data/*.toml, each with its source), not only those the engine implements.

A cipher suite's properties are read from its IANA name, which RFC 5246 Appendix A.5 and
its successors build as ``TLS_<key exchange>_WITH_<cipher>_<MAC or PRF hash>``.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

SSL3, TLS10, TLS11, TLS12, TLS13 = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
VERSION_NAMES = {0x0002: "SSL 2.0", SSL3: "SSL 3.0", TLS10: "TLS 1.0", TLS11: "TLS 1.1",
                 TLS12: "TLS 1.2", TLS13: "TLS 1.3"}

_AEAD = ("GCM", "CCM", "CHACHA20_POLY1305", "POLY1305")


@dataclass(frozen=True)
class Suite:
    """One cipher suite and what its name says about it."""

    code: int
    name: str
    iana: bool
    kx: str          # RSA, ECDHE, DHE, DH, ECDH, PSK, ECDHE_PSK, SRP, KRB5, NULL, TLS13, ...
    auth: str        # RSA, ECDSA, DSS, anon, PSK, KRB5, SRP, NULL, ...
    cipher: str      # AES_128_GCM, 3DES_EDE_CBC, RC4_128, NULL, ...
    mac: str         # SHA, SHA256, SHA384, MD5, AEAD (the PRF hash for AEAD suites)
    min_version: int
    max_version: int

    @property
    def aead(self) -> bool:
        return any(a in self.cipher for a in _AEAD)

    @property
    def cbc(self) -> bool:
        return "CBC" in self.cipher

    @property
    def export(self) -> bool:
        return "EXPORT" in self.name

    @property
    def anonymous(self) -> bool:
        return self.auth == "anon"

    @property
    def null_cipher(self) -> bool:
        return self.cipher == "NULL"

    @property
    def forward_secret(self) -> bool:
        return self.kx in ("ECDHE", "DHE", "TLS13", "ECDHE_PSK", "DHE_PSK")

    @property
    def bits(self) -> int:
        """Effective symmetric key strength (3DES: 112; export: 40/56)."""
        c = self.cipher
        if c == "NULL":
            return 0
        if "3DES" in c:
            return 112
        if self.export:
            return 56 if "56" in c or "1024" in self.name else 40
        for part in c.split("_"):
            if part.isdigit() and int(part) >= 40:
                return int(part)
        if c.startswith(("DES", "DES40")):
            return 56
        if c.startswith(("IDEA", "SEED", "CHACHA20", "SM4")):
            return 256 if c.startswith("CHACHA20") else 128
        return 128

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


def _parse_suite(code: int, name: str, iana: bool) -> Suite:
    if 0x1301 <= code <= 0x13FF or code in (0x00C6, 0x00C7, 0xC0B4, 0xC0B5):
        # RFC 8446 §B.4 (and RFC 8998, RFC 9150): TLS 1.3 suites name only the AEAD and hash
        body = name[4:]
        cipher, _, mac = body.rpartition("_")
        return Suite(code, name, iana, "TLS13", "TLS13", cipher, mac, TLS13, TLS13)
    kx_auth, _, rest = name[4:].partition("_WITH_")
    parts = rest.split("_")
    if parts[-1] in ("SHA", "SHA256", "SHA384", "MD5", "NULL", "SM3", "IMIT", "GOSTR3411"):
        mac, cipher = parts[-1], "_".join(parts[:-1])
    else:
        mac, cipher = "AEAD", rest  # AES_128_CCM, AES_128_CCM_8: no hash in the name
    kx, auth = _kx_auth(kx_auth.replace("_EXPORT1024", "").replace("_EXPORT", ""))
    min_v, max_v = SSL3, TLS12
    if mac in ("SHA256", "SHA384") or any(a in cipher for a in _AEAD) or mac == "AEAD":
        min_v = TLS12  # RFC 5246: SHA-256 PRF suites and AEAD are TLS 1.2 only
    if "EXPORT" in name:
        max_v = TLS10  # RFC 4346 §A.5: TLS 1.1 forbids negotiating export suites
    if kx in ("ECDHE", "ECDH", "ECDHE_PSK"):
        min_v = max(min_v, TLS10)  # RFC 4492 defines them for TLS 1.0 and later
    return Suite(code, name, iana, kx, auth, cipher or "NULL", mac, min_v, max_v)


def _kx_auth(text: str) -> tuple[str, str]:
    table = {
        "NULL": ("NULL", "NULL"), "RSA": ("RSA", "RSA"), "RSA_PSK": ("RSA_PSK", "RSA"),
        "DH_DSS": ("DH", "DSS"), "DH_RSA": ("DH", "RSA"), "DHE_DSS": ("DHE", "DSS"),
        "DHE_RSA": ("DHE", "RSA"), "DH_anon": ("DH", "anon"), "DHE_PSK": ("DHE_PSK", "PSK"),
        "ECDH_ECDSA": ("ECDH", "ECDSA"), "ECDHE_ECDSA": ("ECDHE", "ECDSA"),
        "ECDH_RSA": ("ECDH", "RSA"), "ECDHE_RSA": ("ECDHE", "RSA"), "ECDH_anon": ("ECDH", "anon"),
        "ECDHE_PSK": ("ECDHE_PSK", "PSK"), "PSK": ("PSK", "PSK"), "KRB5": ("KRB5", "KRB5"),
        "SRP_SHA": ("SRP", "SRP"), "SRP_SHA_RSA": ("SRP", "RSA"), "SRP_SHA_DSS": ("SRP", "DSS"),
        "ECCPWD": ("ECCPWD", "PWD"), "GOSTR341094": ("GOST", "GOST"), "GOSTR341001": ("GOST", "GOST"),
        "GOSTR341112_256": ("GOST", "GOST"),
    }
    return table.get(text, (text, text))


@dataclass(frozen=True)
class Group:
    code: int
    name: str
    kind: str          # ec, ffdhe, pq, pq-hybrid, gost
    tls12: bool
    tls13: bool
    bits: int = 0
    deprecated: bool = False


@dataclass(frozen=True)
class Scheme:
    code: int
    name: str
    tls12: bool
    tls13: bool
    weak: bool = False


def _load(name: str) -> dict:
    text = resources.files("tlslab.scan").joinpath("data", name).read_text("utf-8")
    return tomllib.loads(text)


@functools.cache
def suites() -> dict[int, Suite]:
    """Every cipher suite a scan may offer, by code (TLS_NULL_WITH_NULL_NULL excluded: no
    server may select it, RFC 5246 §A.5)."""
    out = {}
    for row in _load("cipher_suites.toml")["suite"]:
        if row["code"] == 0:
            continue
        out[row["code"]] = _parse_suite(row["code"], row["name"], row.get("iana", True))
    return out


@functools.cache
def groups() -> dict[int, Group]:
    return {row["code"]: Group(**row) for row in _load("groups.toml")["group"]}


@functools.cache
def schemes() -> dict[int, Scheme]:
    return {row["code"]: Scheme(**row) for row in _load("signature_schemes.toml")["scheme"]}


def suite_name(code: int) -> str:
    s = suites().get(code)
    return s.name if s else f"0x{code:04X}"


def group_name(code: int) -> str:
    g = groups().get(code)
    return g.name if g else f"0x{code:04X}"


def scheme_name(code: int) -> str:
    s = schemes().get(code)
    return s.name if s else f"0x{code:04X}"


def suites_for(version: int) -> list[int]:
    """The codes a ClientHello of ``version`` can offer, strongest first (AEAD and forward
    secrecy first, so a server that follows the client's order picks a good one)."""
    chosen = [s for s in suites().values() if s.supports(version)]
    chosen.sort(key=lambda s: (not s.forward_secret, not s.aead, s.export, -s.bits, s.code))
    return [s.code for s in chosen]


def groups_for(version: int) -> list[int]:
    return [g.code for g in groups().values() if (g.tls13 if version >= TLS13 else g.tls12)]


def schemes_for(version: int) -> list[int]:
    return [s.code for s in schemes().values() if (s.tls13 if version >= TLS13 else s.tls12)]
