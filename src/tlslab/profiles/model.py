"""A client profile: one TOML file per real (or reference) client.

A profile answers two questions for the diagnosis: *what does this client offer* (the
``[offer]`` table: versions, suites, groups, key shares, signature schemes, ALPN, SNI, as
IANA names the engine builds into a ClientHello) and *what does its verifier accept*
(the ``[verifier]`` table: CN fallback, SHA-1, minimum RSA size, AIA fetching, trust
store).  ``[behaviour]`` holds protocol habits (HelloRetryRequest, version fallback,
whether an incompatible ALPN answer is fatal).  ``[sources]`` names where each fact comes
from.  Unknown keys are errors, so that a typo in a user's profile is not silently ignored.
"""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

_TOP = {"name", "client", "version", "released", "summary", "offer", "behaviour", "verifier",
        "sources"}
_OFFER = {"versions", "cipher_suites", "groups", "key_shares", "signature_algorithms", "alpn",
          "sni", "extensions", "grease", "client_hello"}
_BEHAVIOUR = {"follows_hrr", "falls_back", "fallback_versions", "alpn_required", "notes"}
_VERIFIER = {"cn_fallback", "sha1_accepted", "min_rsa_bits", "min_dh_bits", "max_dh_bits",
             "aia_fetching", "trust", "eku_required", "legacy_signatures_accepted",
             "tls13_pkcs1_accepted"}


class ProfileError(ValueError):
    """A profile that cannot be found or read (one line, for the command line)."""


@dataclass(frozen=True)
class Offer:
    """What the client puts in its ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2)."""

    versions: tuple[str, ...]
    cipher_suites: tuple[str, ...]
    groups: tuple[str, ...]
    key_shares: tuple[str, ...]
    signature_algorithms: tuple[str, ...]
    alpn: tuple[str, ...] = ()
    sni: bool = True
    #: the recorded ClientHello handshake message (type, length, body), when there is one:
    #: sent byte for byte with a fresh random, session id and key shares, and the target's
    #: name in server_name (RFC 8446 §4.1.2)
    client_hello: bytes | None = None


@dataclass(frozen=True)
class Verifier:
    """How the client judges the server's chain (RFC 5280 §6, RFC 6125 §6)."""

    cn_fallback: bool = False
    sha1_accepted: bool = False
    min_rsa_bits: int = 2048
    #: smallest finite-field DH group accepted in TLS 1.2 DHE (RFC 7919 §3 context)
    min_dh_bits: int = 1024
    #: largest finite-field DH group the client can use (0: no limit; Java 7 and older
    #: stop at 1024 bits)
    max_dh_bits: int = 0
    aia_fetching: bool = False
    eku_required: bool = True
    trust: str = "system"
    #: accepts the MD5+SHA-1 / SHA-1 ServerKeyExchange signatures of TLS 1.0/1.1 (RFC 4346
    #: §7.4.3); OpenSSL 3 refuses them at security level 1 and up
    legacy_signatures_accepted: bool = True
    #: accepts a TLS 1.3 CertificateVerify signed with PKCS#1 v1.5 (RFC 8446 §4.4.3 forbids it)
    tls13_pkcs1_accepted: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    client: str
    version: str
    released: str
    summary: str
    offer: Offer
    verifier: Verifier
    follows_hrr: bool = True
    falls_back: bool = False
    #: versions it retries with after a failed handshake (old browsers' "fallback dance")
    fallback_versions: tuple[str, ...] = ()
    alpn_required: bool = False
    notes: str = ""
    sources: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        o, v = self.offer, self.verifier
        return {
            "name": self.name, "client": self.client, "version": self.version,
            "released": self.released, "summary": self.summary,
            "offer": {"versions": list(o.versions), "cipher_suites": list(o.cipher_suites),
                      "groups": list(o.groups), "key_shares": list(o.key_shares),
                      "signature_algorithms": list(o.signature_algorithms),
                      "alpn": list(o.alpn), "sni": o.sni,
                      "recorded_client_hello": o.client_hello is not None},
            "verifier": {"cn_fallback": v.cn_fallback, "sha1_accepted": v.sha1_accepted,
                         "min_rsa_bits": v.min_rsa_bits, "min_dh_bits": v.min_dh_bits,
                         "max_dh_bits": v.max_dh_bits, "aia_fetching": v.aia_fetching,
                         "eku_required": v.eku_required, "trust": v.trust,
                         "legacy_signatures_accepted": v.legacy_signatures_accepted,
                         "tls13_pkcs1_accepted": v.tls13_pkcs1_accepted},
            "behaviour": {"follows_hrr": self.follows_hrr, "falls_back": self.falls_back,
                          "fallback_versions": list(self.fallback_versions),
                          "alpn_required": self.alpn_required, "notes": self.notes},
            "sources": dict(self.sources),
        }


def _data_dir():
    return resources.files("tlslab.profiles") / "data"


def builtin_profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in _data_dir().iterdir() if p.name.endswith(".toml"))


profile_names = builtin_profile_names


def close_names(name: str) -> list[str]:
    names = builtin_profile_names()
    return difflib.get_close_matches(name, names, n=3, cutoff=0.4) or [
        n for n in names if name.lower() in n][:3]


def _strings(table: dict, key: str, where: str, required: bool = True) -> tuple[str, ...]:
    value = table.get(key)
    if value is None:
        if required:
            raise ProfileError(f"{where}: [offer] {key} is missing")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"{where}: [offer] {key} must be a list of strings")
    return tuple(value)


def _hello_bytes(value: Any, where: str) -> bytes | None:
    """``client_hello``: hex of the handshake message (whitespace ignored); checked to parse
    with the engine's codec (RFC 8446 §4.1.2)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProfileError(f"{where}: [offer] client_hello must be a hex string")
    try:
        data = bytes.fromhex("".join(value.split()))
    except ValueError:
        raise ProfileError(f"{where}: [offer] client_hello is not valid hex") from None
    if len(data) < 4 or data[0] != 1 or int.from_bytes(data[1:4], "big") != len(data) - 4:
        raise ProfileError(f"{where}: [offer] client_hello must be one ClientHello handshake "
                           "message (type 1, 3-byte length, body)")
    from ..proto.messages import ClientHello
    try:
        ClientHello.parse(data)
    except Exception as e:  # the codec's typed errors: say which, in one line
        raise ProfileError(f"{where}: [offer] client_hello does not parse: {e}") from None
    return data


def _check_keys(table: Any, allowed: set[str], section: str, where: str) -> dict:
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: {section} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(unknown)} in {section}")
    return table


def parse_profile(data: dict, where: str) -> Profile:
    """A :class:`Profile` from a parsed TOML document; every name is checked against the
    engine's registry so that a profile that cannot be built fails here, not mid-probe."""
    _check_keys(data, _TOP, "the profile", where)
    offer_t = _check_keys(data.get("offer", {}), _OFFER, "[offer]", where)
    verifier_t = _check_keys(data.get("verifier", {}), _VERIFIER, "[verifier]", where)
    behaviour_t = _check_keys(data.get("behaviour", {}), _BEHAVIOUR, "[behaviour]", where)
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise ProfileError(f"{where}: [sources] must map facts to strings")
    for key in ("name", "client", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ProfileError(f"{where}: {key} is missing")
    groups = _strings(offer_t, "groups", where)
    offer = Offer(
        versions=_strings(offer_t, "versions", where),
        cipher_suites=_strings(offer_t, "cipher_suites", where),
        groups=groups,
        key_shares=_strings(offer_t, "key_shares", where, required=False) or groups[:1],
        signature_algorithms=_strings(offer_t, "signature_algorithms", where),
        alpn=_strings(offer_t, "alpn", where, required=False),
        sni=bool(offer_t.get("sni", True)),
        client_hello=_hello_bytes(offer_t.get("client_hello"), where),
    )
    try:
        verifier = Verifier(**verifier_t)
    except TypeError as e:
        raise ProfileError(f"{where}: [verifier]: {e}") from None
    profile = Profile(
        name=data["name"], client=data["client"], version=str(data["version"]),
        released=str(data.get("released", "")), summary=str(data.get("summary", "")),
        offer=offer, verifier=verifier,
        follows_hrr=bool(behaviour_t.get("follows_hrr", True)),
        falls_back=bool(behaviour_t.get("falls_back", False)),
        fallback_versions=_strings(behaviour_t, "fallback_versions", where, required=False),
        notes=str(behaviour_t.get("notes", "")),
        alpn_required=bool(behaviour_t.get("alpn_required", False)),
        sources=dict(sources), path=where)
    _check_buildable(profile, where)
    return profile


def _check_buildable(profile: Profile, where: str) -> None:
    from ..proto.config import ClientConfig
    o = profile.offer
    try:
        ClientConfig(insecure=True, versions=list(o.versions), cipher_suites=list(o.cipher_suites),
                     groups=list(o.groups), key_share_groups=list(o.key_shares),
                     signature_algorithms=list(o.signature_algorithms),
                     alpn_protocols=list(o.alpn) or None, session_store=None)
    except ValueError as e:
        raise ProfileError(f"{where}: the engine cannot build this offer: {e}") from None


def load_profile_file(path: str | Path) -> Profile:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProfileError(f"cannot read profile {p}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProfileError(f"profile {p} is not valid TOML: {e}") from None
    return parse_profile(data, str(p))


_CACHE: dict[str, Profile] = {}


def load_profile(name: str) -> Profile:
    """A built-in profile by name, or a profile file given by path (ends in ``.toml``)."""
    if name.endswith(".toml"):
        return load_profile_file(name)
    cached = _CACHE.get(name)
    if cached is not None:
        return cached
    if name not in builtin_profile_names():
        close = close_names(name)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ProfileError(f"unknown profile {name!r}{hint} (known: "
                           f"{', '.join(builtin_profile_names())})")
    resource = _data_dir() / f"{name}.toml"
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    profile = parse_profile(data, f"profiles/data/{name}.toml")
    if profile.name != name:
        raise ProfileError(f"profiles/data/{name}.toml names itself {profile.name!r}")
    _CACHE[name] = profile
    return profile
