"""Client fingerprints of a ClientHello: JA3 and JA4, and the closest known profile.

**JA3** (Salesforce, 2017; BSD-3-Clause; https://github.com/salesforce/ja3, README "How it
works"): the decimal values of ``SSLVersion,Cipher,SSLExtension,EllipticCurve,
EllipticCurvePointFormat`` (``legacy_version``; suites, extension types and named groups in
the order sent; EC point formats), values joined by "-", fields by ",", GREASE values
(RFC 8701) left out everywhere; the fingerprint is the MD5 of that string.

**JA4** (FoxIO, the TLS client fingerprint only), implemented from its specification
https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md, which is published
under the BSD 3-Clause licence (https://github.com/FoxIO-LLC/ja4/blob/main/LICENSE-JA4,
"Copyright (c) 2026 FoxIO. All rights reserved. Software: JA4 (TLS client
fingerprinting)": redistribution and use in source and binary forms, with or without
modification, are permitted provided that the copyright notice, this list of conditions
and the disclaimer are retained; the name of FoxIO may not be used to endorse or promote
products derived from it without permission; provided "as is", without warranty).  Only
JA4 is implemented here: JA4S, JA4H, JA4X, JA4SSH, JA4T and the other JA4+ methods are
under the FoxIO License 1.1, which does not fit Apache-2.0, and are not.

JA4 = ``a_b_c``: ``a`` is the transport (``t`` TCP, ``q`` QUIC, ``d`` DTLS), the highest
version offered (supported_versions without GREASE, else legacy_version: ``13``, ``12``,
``11``, ``10``, ``s3``, ``s2``, ``d1``/``d2``/``d3``, else ``00``), ``d`` with SNI or
``i`` without, the number of suites and of extensions (GREASE not counted; at most 99) and
the first and last characters of the first ALPN value (``00`` without ALPN; the hex
digits' first and last when either character is not ASCII alphanumeric); ``b`` the first 12
hex digits of SHA-256 over the suites as 4-digit hex, sorted, comma-joined; ``c`` the same
over the extension types sorted without SNI and ALPN, then "_" and the signature_algorithms
in the order sent (no "_" when there are none); ``000000000000`` for an empty list.
``ja4_r`` is the same with the lists instead of hashes; ``ja4_o`` / ``ja4_ro`` keep the
order sent (and SNI and ALPN) instead of sorting.

Where the specification and FoxIO's own tools differ, we follow the specification:
a single-character ALPN value is "both the first and last character" ("a" -> "aa"), and a
first or last ALPN byte that is not ASCII alphanumeric gives the first and last hex digit
of the value (the spec's rule since 2024-08; FoxIO's Python, Rust and Wireshark tools,
and their published test output for tls-non-ascii-alpn.pcapng, still print "99").  GREASE
is left out of the signature algorithms too ("ignore GREASE values anywhere"), which
changes nothing for real clients, which do not send it there.  And as FoxIO's reference
output does, ``ja4_o``'s last part is zeros when the sorted list (without SNI and ALPN) is
empty.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Iterable

from ..proto.messages import ClientHello
from ..proto.names import (CipherSuite, ExtensionType, NamedGroup, SignatureScheme, VERSION_NAMES,
                           is_grease, name_of)

ET = ExtensionType

_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}
#: RFC 9001 §8.2: only QUIC's ClientHello carries quic_transport_parameters
_QUIC_TRANSPORT_PARAMETERS = 0x0039
_EMPTY = "000000000000"


# --------------------------------------------------------------------------- fields

def _ext_value(hello: ClientHello, ext_type: int, attr: str) -> list:
    ext = hello.ext(ext_type)
    if ext is None or ext.value is None:
        return []
    return list(getattr(ext.value, attr, None) or [])


def suites(hello: ClientHello) -> list[int]:
    return [s for s in hello.cipher_suites if not is_grease(s)]


def extension_types(hello: ClientHello) -> list[int]:
    return [e.type for e in hello.extensions or () if not is_grease(e.type)]


def groups(hello: ClientHello) -> list[int]:
    return [g for g in _ext_value(hello, ET.supported_groups, "named_group_list") if not is_grease(g)]


def point_formats(hello: ClientHello) -> list[int]:
    return _ext_value(hello, ET.ec_point_formats, "ec_point_format_list")


def signature_algorithms(hello: ClientHello) -> list[int]:
    return [s for s in _ext_value(hello, ET.signature_algorithms, "supported_signature_algorithms")
            if not is_grease(s)]


def versions(hello: ClientHello) -> list[int]:
    """supported_versions without GREASE (RFC 8446 §4.2.1), else [legacy_version]."""
    if hello.ext(ET.supported_versions) is not None:
        return [v for v in _ext_value(hello, ET.supported_versions, "versions") if not is_grease(v)]
    return [hello.legacy_version]


def alpn(hello: ClientHello) -> list[bytes]:
    return _ext_value(hello, ET.application_layer_protocol_negotiation, "protocol_name_list")


def server_name(hello: ClientHello) -> str | None:
    names = _ext_value(hello, ET.server_name, "server_name_list")
    for n in names:
        if n.name_type == 0:
            return n.host_name.decode("ascii", "replace")
    return None


def key_share_groups(hello: ClientHello) -> list[int]:
    return [e.group for e in _ext_value(hello, ET.key_share, "client_shares") if not is_grease(e.group)]


# --------------------------------------------------------------------------- JA3

@dataclass(frozen=True)
class JA3:
    string: str
    hash: str


def ja3(hello: ClientHello) -> JA3:
    """JA3 of a ClientHello (Salesforce's definition; GREASE left out)."""
    fields = [str(hello.legacy_version),
              "-".join(map(str, suites(hello))),
              "-".join(map(str, extension_types(hello))),
              "-".join(map(str, groups(hello))),
              "-".join(map(str, point_formats(hello)))]
    text = ",".join(fields)
    return JA3(text, hashlib.md5(text.encode()).hexdigest())


# --------------------------------------------------------------------------- JA4

@dataclass(frozen=True)
class JA4:
    fingerprint: str     # ja4
    raw: str             # ja4_r
    original: str        # ja4_o
    original_raw: str    # ja4_ro


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else _EMPTY


def _alpn_chars(value: bytes | None) -> str:
    if not value:
        return "00"
    first, last = value[0], value[-1]

    def alnum(b: int) -> bool:
        return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A

    if alnum(first) and alnum(last):
        return chr(first) + chr(last)
    digits = value.hex()
    return digits[0] + digits[-1]


def ja4(hello: ClientHello, transport: str | None = None) -> JA4:
    """JA4 of a ClientHello.  ``transport``: "t" (TCP), "q" (QUIC) or "d" (DTLS); by
    default "q" when the ClientHello carries quic_transport_parameters, else "t"."""
    exts = extension_types(hello)
    if transport is None:
        transport = "q" if _QUIC_TRANSPORT_PARAMETERS in exts else "t"
    offered = versions(hello)
    version = _JA4_VERSIONS.get(max(offered) if offered else hello.legacy_version, "00")
    sni = "d" if ET.server_name in exts else "i"
    cs = suites(hello)
    protocols = alpn(hello)
    a = (f"{transport}{version}{sni}{min(len(cs), 99):02d}{min(len(exts), 99):02d}"
         f"{_alpn_chars(protocols[0] if protocols else None)}")
    hex4 = lambda values: ",".join(f"{v:04x}" for v in values)  # noqa: E731
    sigs = hex4(signature_algorithms(hello))

    def c_part(ext_list: list[int]) -> str:
        text = hex4(ext_list)
        return f"{text}_{sigs}" if sigs else text

    sorted_c = c_part(sorted(e for e in exts if e not in (ET.server_name,
                                                          ET.application_layer_protocol_negotiation)))
    original_c = c_part(exts)
    sorted_b, original_b = hex4(sorted(cs)), hex4(cs)
    # "no extensions in the sorted list" zeroes c in ja4_o too, even when SNI or ALPN is
    # there (FoxIO's reference output for https3-301-get.pcap: t10d230100_ce175d585f73_
    # 000000000000 for a ClientHello whose only extension is server_name)
    original_c_hash = _hash12(original_c) if sorted_c else _EMPTY
    return JA4(fingerprint=f"{a}_{_hash12(sorted_b)}_{_hash12(sorted_c)}",
               raw=f"{a}_{sorted_b}_{sorted_c}",
               original=f"{a}_{_hash12(original_b)}_{original_c_hash}",
               original_raw=f"{a}_{original_b}_{original_c}")


# --------------------------------------------------------------------------- summary

@dataclass
class Fingerprint:
    """JA3, JA4 and the fields that make them, for display and JSON."""

    ja3: JA3
    ja4: JA4
    hello: ClientHello

    def summary(self) -> dict[str, Any]:
        h = self.hello
        vs = versions(h)
        protocols = alpn(h)
        return {
            "versions": [VERSION_NAMES.get(v, f"0x{v:04x}") for v in vs],
            "cipher_suites": [name_of(CipherSuite, s) for s in suites(h)],
            "extensions": [name_of(ExtensionType, e) for e in extension_types(h)],
            "groups": [name_of(NamedGroup, g) for g in groups(h)],
            "key_shares": [name_of(NamedGroup, g) for g in key_share_groups(h)],
            "signature_algorithms": [name_of(SignatureScheme, s) for s in signature_algorithms(h)],
            "alpn": [p.decode("ascii", "replace") for p in protocols],
            "server_name": server_name(h),
            "grease": any(is_grease(v) for v in list(h.cipher_suites) + [
                e.type for e in h.extensions or ()]),
            "length": len(h.raw) if h.raw is not None else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {"ja3": {"string": self.ja3.string, "hash": self.ja3.hash},
                "ja4": {"ja4": self.ja4.fingerprint, "ja4_r": self.ja4.raw,
                        "ja4_o": self.ja4.original, "ja4_ro": self.ja4.original_raw},
                "offer": self.summary()}


def fingerprint(hello: ClientHello, transport: str | None = None) -> Fingerprint:
    return Fingerprint(ja3(hello), ja4(hello, transport), hello)


# --------------------------------------------------------------------------- matching

#: extensions whose presence depends on the connection, not on the client: the server
#: name (an IP address has none), padding (added only at some lengths, RFC 7685 §4),
#: pre_shared_key and early_data (only when resuming)
_CIRCUMSTANTIAL = frozenset({ET.server_name, ET.padding, ET.pre_shared_key, ET.early_data})

#: weights of the parts of the similarity (sum 1)
WEIGHTS = {"cipher_suites": 0.35, "extensions": 0.25, "groups": 0.15,
           "signature_algorithms": 0.15, "versions": 0.05, "alpn": 0.05}
#: below this score no profile is "close"
THRESHOLD = 0.80


@dataclass(frozen=True)
class KnownHello:
    """A ClientHello recorded for a profile (``[offer] client_hello``)."""

    name: str
    client: str
    version: str
    hello: ClientHello
    ja4: str = ""


@dataclass
class Match:
    name: str
    client: str
    version: str
    #: 0..1; 1.0 for an exact JA4 match
    score: float
    exact: bool
    #: per part, what differs (names of what this ClientHello has more / less)
    differences: list[str] = field(default_factory=list)
    #: the similarity itself (equal to ``score`` unless the JA4 matched exactly)
    similarity: float = 0.0
    #: other profiles with this very JA4 (several versions of a client often share one)
    same_ja4: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.name, "client": self.client, "version": self.version,
                "score": round(self.score, 3), "exact_ja4": self.exact,
                "differences": list(self.differences), "same_ja4": list(self.same_ja4)}


def _features(hello: ClientHello) -> dict[str, list]:
    return {
        "cipher_suites": suites(hello),
        "extensions": [e for e in extension_types(hello) if e not in _CIRCUMSTANTIAL],
        "groups": groups(hello),
        "signature_algorithms": signature_algorithms(hello),
        "versions": versions(hello),
        "alpn": alpn(hello),
    }


def _list_similarity(a: list, b: list, order_weight: float) -> float:
    """Set overlap (Jaccard) and order (difflib's ratio over the sequences) mixed."""
    if not a and not b:
        return 1.0
    sa, sb = set(a), set(b)
    jaccard = len(sa & sb) / len(sa | sb)
    order = SequenceMatcher(None, a, b, autojunk=False).ratio()
    return (1 - order_weight) * jaccard + order_weight * order


#: order matters for suites, groups and signature schemes (each stack has its own); not
#: for extensions, which Chrome (since 110) and others send in a random order
_ORDER_WEIGHT = {"cipher_suites": 0.4, "extensions": 0.1, "groups": 0.4,
                 "signature_algorithms": 0.4, "versions": 0.2, "alpn": 0.3}


def similarity(a: ClientHello, b: ClientHello) -> tuple[float, list[str]]:
    """A score in 0..1 of how alike two ClientHellos are (suites, extensions, groups,
    signature algorithms, versions, ALPN; each as set overlap and order, weighted by
    :data:`WEIGHTS`), and what differs, in words."""
    fa, fb = _features(a), _features(b)
    score = 0.0
    diffs = []
    for part, weight in WEIGHTS.items():
        score += weight * _list_similarity(fa[part], fb[part], _ORDER_WEIGHT[part])
        d = _difference(part, fa[part], fb[part])
        if d:
            diffs.append(d)
    # not scored, but said: they explain a JA4 that differs while the offer is the same
    ca = [e for e in extension_types(a) if e in _CIRCUMSTANTIAL]
    cb = [e for e in extension_types(b) if e in _CIRCUMSTANTIAL]
    if set(ca) != set(cb):
        diffs.append(_difference("extensions", ca, cb,
                                 label="extensions that depend on the target or on resumption"))
    return score, diffs


_NAMERS = {"cipher_suites": lambda v: name_of(CipherSuite, v),
           "extensions": lambda v: name_of(ExtensionType, v),
           "groups": lambda v: name_of(NamedGroup, v),
           "signature_algorithms": lambda v: name_of(SignatureScheme, v),
           "versions": lambda v: VERSION_NAMES.get(v, f"0x{v:04x}"),
           "alpn": lambda v: v.decode("ascii", "replace")}


def _difference(part: str, mine: list, theirs: list, shown: int = 3, label: str = "") -> str:
    if mine == theirs:
        return ""
    name = _NAMERS[part]
    extra = [v for v in mine if v not in theirs]
    missing = [v for v in theirs if v not in mine]
    label = label or part.replace("_", " ")
    bits = []
    for sign, values in (("+", extra), ("-", missing)):
        if values:
            listed = ", ".join(name(v) for v in values[:shown])
            more = f" and {len(values) - shown} more" if len(values) > shown else ""
            bits.append(f"{sign}{listed}{more}")
    if not bits:
        return f"{label}: same, in another order"
    return f"{label}: " + "; ".join(bits)


def known_hellos(names: Iterable[str] | None = None) -> list[KnownHello]:
    """The recorded ClientHellos of the built-in profiles (those that have one)."""
    from .model import ProfileError, builtin_profile_names, load_profile
    out = []
    for n in names if names is not None else builtin_profile_names():
        try:
            p = load_profile(n)
        except ProfileError:
            continue  # a broken profile is the profile command's to report, not ours
        if p.offer.client_hello is None:
            continue
        hello = ClientHello.parse(p.offer.client_hello)
        out.append(KnownHello(p.name, p.client, p.version, hello, ja4(hello).fingerprint))
    return out


def closest_profiles(hello: ClientHello, known: list[KnownHello] | None = None,
                     limit: int = 3) -> list[Match]:
    """The known ClientHellos most like ``hello``, best first: exact JA4 matches (score 1;
    among several, the most similar first, and the others named in ``same_ja4``), then by
    :func:`similarity`."""
    if known is None:
        known = known_hellos()
    mine = ja4(hello).fingerprint
    matches = []
    for k in known:
        exact = (k.ja4 or ja4(k.hello).fingerprint) == mine
        score, diffs = similarity(hello, k.hello)
        matches.append(Match(k.name, k.client, k.version, 1.0 if exact else min(score, 0.999),
                             exact, diffs, score))
    matches.sort(key=lambda m: (-m.exact, -m.similarity, m.name))
    if matches and matches[0].exact:
        matches[0].same_ja4 = [m.name for m in matches[1:] if m.exact]
    return matches[:limit]
