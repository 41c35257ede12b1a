"""Why a chain fails: each check (path, time, name, key, signature, usage, extensions)
turns into findings with a typed error, a diagnosis code and its evidence (RFC 5280 §6.1,
RFC 6125 §6, RFC 8446 §4.4.2.2)."""
from __future__ import annotations

import datetime
import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID

from .errors import BadCertificate, CertificateExpired, TLSError, UnknownCA, UnsupportedCertificate
from .cert_info import (
    _CURVE_NAMES,
    _dn,
    _fmt_time,
    _is_ca,
    _iso,
    _key_description,
    _public_key,
    _san_entries,
    _san_strings,
    _signature_hash,
    _signature_name,
    describe_certificate,
)
from .cert_paths import (
    _Anchors,
    _PathResult,
    _self_signed,
)


#: RSA moduli below this are refused (CA/B Baseline Requirements §6.1.5; the
#: library's own minimum is the same).
MIN_RSA_BITS = 2048
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}

# Extensions our own checks understand; in fallback mode (see _library_can_judge)
# any other critical extension fails closed, as RFC 5280 §4.2 requires.
_UNDERSTOOD_EXTENSIONS = {
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
}


@dataclass
class _Finding:
    cls: type[TLSError]
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


class _LazyEvidence:
    """``{"certificate": describe_certificate(cert)}``, built on first call only.

    Describing a certificate (DN strings, fingerprint, SANs) costs tens of
    microseconds; a successful verification makes no finding and needs none.
    Calls share one dict, as the eager code shared one per certificate.
    """

    __slots__ = ("_cert", "_ev")

    def __init__(self, cert: x509.Certificate) -> None:
        self._cert = cert
        self._ev: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self._ev is None:
            self._ev = {"certificate": describe_certificate(self._cert)}
        return self._ev


def _path_findings(
    leaf: x509.Certificate, built: _PathResult, anchors: _Anchors, peer: str
) -> list[_Finding]:
    """Why no path reaches a trust anchor (RFC 5280 §6.1; RFC 8446 §4.4.2.4)."""
    partial = built.deepest
    last = partial[-1]
    ev: dict[str, Any] = {"path": [describe_certificate(c) for c in partial]}
    if len(partial) == 1 and _self_signed(leaf):
        return [
            _Finding(
                UnknownCA,
                "self-signed",
                f"certificate for {_dn(leaf.subject)} is self-signed and is not in the trust store",
                ev,
            )
        ]
    bad = [(c, i) for (c, i) in built.bad_signatures if c == last]
    if bad:
        child, issuer = bad[0]
        ev["issuer_candidate"] = describe_certificate(issuer)
        ev["missing_issuer"] = _dn(child.issuer)
        if anchors.contains(issuer):
            return [
                _Finding(
                    UnknownCA,
                    "untrusted-root",
                    f"{_dn(child.subject)} was issued by a CA named {_dn(child.issuer)}, and "
                    "the trust store has a CA of that name but with a different key "
                    "(re-keyed or look-alike CA): the actual issuer is not trusted",
                    ev,
                )
            ]
        return [
            _Finding(
                BadCertificate,
                "bad-signature",
                f"signature on {_dn(child.subject)} does not verify with the key of "
                f"{_dn(issuer.subject)} (same name, different key: wrong or re-keyed issuer)",
                ev,
            )
        ]
    if len(partial) > 1 and _self_signed(last):
        ev["missing_issuer"] = _dn(last.subject)
        return [
            _Finding(
                UnknownCA,
                "untrusted-root",
                f"chain ends at root {_dn(last.subject)}, which the {peer} sent "
                "but is not in the trust store",
                ev,
            )
        ]
    ev["missing_issuer"] = _dn(last.issuer)
    if _is_ca(last):
        return [
            _Finding(
                UnknownCA,
                "untrusted-root",
                f"chain ends at {_dn(last.subject)}, whose issuer {_dn(last.issuer)} "
                "is not in the trust store (untrusted root)",
                ev,
            )
        ]
    aia = _ca_issuers_urls(last)
    if aia:
        ev["ca_issuers"] = aia
    hint = f"; the certificate says it can be fetched from {aia[0]}" if aia else ""
    return [
        _Finding(
            UnknownCA,
            "missing-intermediate",
            f"issuer {_dn(last.issuer)} of {_dn(last.subject)} was not sent by the {peer} "
            "and is not in the trust store: missing intermediate certificate "
            f"(or an untrusted root){hint}",
            ev,
        )
    ]


def _limit_finding(built: _PathResult, peer: str) -> _Finding:
    """The search gave up (a budget of :func:`_build_paths` is spent) before reaching
    a trust anchor.  No honest chain gets here; like Go's crypto/x509 (and rustls),
    this is a bad_certificate, not a verdict on who issued what."""
    what = (
        f"{built.signature_checks} signature checks"
        if built.limit == "signature-checks"
        else f"{built.visits} certificates visited"
    )
    return _Finding(
        BadCertificate,
        "path-limit-exceeded",
        f"no path to a trust anchor was found before the search limit ({what}): the "
        f"{peer}'s certificates can be combined in too many ways to try them all",
        {
            "path": [describe_certificate(c) for c in built.deepest],
            "limit": built.limit,
            "signature_checks": built.signature_checks,
            "certificates_visited": built.visits,
        },
    )


def _ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def _time_findings(path: Sequence[x509.Certificate], now: datetime.datetime) -> list[_Finding]:
    """RFC 5280 §6.1.3 (a)(2): every certificate must be valid at ``now``."""
    out = []
    for cert in path:
        if now > cert.not_valid_after_utc:
            out.append(
                _Finding(
                    CertificateExpired,
                    "expired",
                    f"certificate for {_dn(cert.subject)} expired on "
                    f"{_fmt_time(cert.not_valid_after_utc)} (now {_fmt_time(now)})",
                    {"certificate": describe_certificate(cert), "now": _iso(now)},
                )
            )
        elif now < cert.not_valid_before_utc:
            out.append(
                _Finding(
                    CertificateExpired,
                    "not-yet-valid",
                    f"certificate for {_dn(cert.subject)} is not valid before "
                    f"{_fmt_time(cert.not_valid_before_utc)} (now {_fmt_time(now)}; "
                    "check the clock)",
                    {"certificate": describe_certificate(cert), "now": _iso(now)},
                )
            )
    return out


@functools.lru_cache(maxsize=1024)
def _normalise_dns(name: str) -> str:
    # Cached: called for the server name and for every SAN pattern, and IDNA
    # encoding is slow.  Pure function of an immutable str.
    name = name.strip().rstrip(".")
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return name.lower()


@functools.lru_cache(maxsize=256)
def _parse_ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: a DNS name makes ipaddress raise (and build a message) every
    # time; the result (an immutable address or None) only depends on ``name``.
    text = name.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # IPv6 zone id is local, never in a certificate
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _dns_matches(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4.1 and §6.4.3: exact match, or ``*`` as the whole left-most label
    standing for exactly one label (no partial wildcards, none for IP literals)."""
    pattern = _normalise_dns(pattern)
    if pattern == host:
        return True
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:] and rest.count(".") >= 1
    return False


@functools.lru_cache(maxsize=256)
def _name_subject(
    server_name: str,
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, x509.verification.Subject | None]:
    """``server_name`` as an IP address (or None) and as the library's verification
    subject (None if the library's DNS syntax refuses it).  Cached per name: the
    same few names are verified handshake after handshake."""
    ip = _parse_ip(server_name)
    if ip is not None:
        return ip, x509.IPAddress(ip)
    try:
        return None, x509.DNSName(_normalise_dns(server_name))
    except ValueError:
        return None, None


def _hostname_findings(
    leaf: x509.Certificate, server_name: str
) -> tuple[list[_Finding], x509.verification.Subject | None]:
    """RFC 6125 §6: match ``server_name`` against the subjectAltName (never the CN)."""
    sans = _san_entries(leaf)
    ip, subject = _name_subject(server_name)

    def desc() -> dict[str, Any]:
        return {"certificate": describe_certificate(leaf), "server_name": server_name}

    if sans is None:
        return [
            _Finding(
                BadCertificate,
                "no-san",
                f"certificate for {_dn(leaf.subject)} has no subjectAltName extension; "
                "the CN is not used for name matching (RFC 6125 §6.4.4)",
                desc(),
            )
        ], subject
    if ip is not None:
        matched = any(isinstance(g, x509.IPAddress) and g.value == ip for g in sans)
    else:
        host = _normalise_dns(server_name)
        matched = any(isinstance(g, x509.DNSName) and _dns_matches(g.value, host) for g in sans)
    if matched:
        return [], subject
    names = ", ".join(_san_strings(leaf)) or "none"
    kind = "IP address" if ip is not None else "name"
    return [
        _Finding(
            BadCertificate,
            "hostname-mismatch",
            f"certificate for {_dn(leaf.subject)} does not match {kind} {server_name!r}; "
            f"it is valid for: {names}",
            desc(),
        )
    ], subject


def _key_findings(path: Sequence[x509.Certificate]) -> list[_Finding]:
    """Keys we can use: RSA >= 2048, ECDSA P-256/384/521, Ed25519, Ed448 (RFC 8446 §4.2.3)."""
    out = []
    for cert in path:
        key = _public_key(cert)
        desc = _key_description(key)  # a few isinstance checks; cheap
        ev = _LazyEvidence(cert)
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                out.append(
                    _Finding(
                        UnsupportedCertificate,
                        "weak-key",
                        f"certificate for {_dn(cert.subject)} has a weak {desc} key "
                        f"(at least {MIN_RSA_BITS} bits required)",
                        ev(),
                    )
                )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in _CURVE_NAMES:
                out.append(
                    _Finding(
                        UnsupportedCertificate,
                        "weak-key" if key.curve.key_size < 256 else "unsupported-key",
                        f"certificate for {_dn(cert.subject)} uses curve {key.curve.name}, "
                        "which TLS 1.3 signature schemes do not cover",
                        ev(),
                    )
                )
        elif not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            out.append(
                _Finding(
                    UnsupportedCertificate,
                    "unsupported-key",
                    f"certificate for {_dn(cert.subject)} has a {desc} key, "
                    "which cannot sign in TLS 1.3",
                    ev(),
                )
            )
    return out


def _signature_findings(path: Sequence[x509.Certificate], anchored: bool) -> list[_Finding]:
    """SHA-1/MD5 signatures are refused on every certificate but the anchor, whose
    self-signature is never checked (RFC 8446 §4.4.2.2)."""
    out = []
    for cert in path[:-1] if anchored else path:
        h = _signature_hash(cert)
        if isinstance(h, (hashes.SHA1, hashes.MD5)):
            out.append(
                _Finding(
                    BadCertificate,
                    "sha1-signature",
                    f"certificate for {_dn(cert.subject)} is signed with "
                    f"{_signature_name(cert)}: {h.name.upper().replace('SHA1', 'SHA-1')} "
                    "signatures are collision-prone and no longer accepted",
                    {"certificate": describe_certificate(cert)},
                )
            )
    return out


def _usage_findings(
    path: Sequence[x509.Certificate], purpose: str, issuers: bool = True
) -> list[_Finding]:
    """Leaf keyUsage/extKeyUsage (RFC 8446 §4.4.2.2, RFC 5280 §4.2.1.3, §4.2.1.12) and,
    unless ``issuers`` is false, issuer basicConstraints/keyCertSign/pathLen
    (RFC 5280 §6.1.4 (k)-(n))."""
    out = []
    leaf = path[0]
    want = ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    want_name = "serverAuth" if purpose == "server" else "clientAuth"
    ev = _LazyEvidence(leaf)
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if want not in eku:
            names = ", ".join(_EKU_NAMES.get(o, o.dotted_string) for o in eku) or "none"
            out.append(
                _Finding(
                    UnsupportedCertificate,
                    "wrong-key-usage",
                    f"certificate for {_dn(leaf.subject)} is not for TLS {purpose} "
                    f"authentication: extendedKeyUsage lacks {want_name} (has {names})",
                    ev(),
                )
            )
    except x509.ExtensionNotFound:
        pass
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.digital_signature:
            out.append(
                _Finding(
                    UnsupportedCertificate,
                    "wrong-key-usage",
                    f"certificate for {_dn(leaf.subject)} has keyUsage without "
                    "digitalSignature, which TLS 1.3 requires (RFC 8446 §4.4.2.2)",
                    ev(),
                )
            )
    except x509.ExtensionNotFound:
        pass
    for depth, issuer in enumerate(path[1:] if issuers else (), start=1):
        iev = _LazyEvidence(issuer)
        try:
            bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            out.append(
                _Finding(
                    BadCertificate,
                    "invalid-ca",
                    f"{_dn(issuer.subject)} issued {_dn(path[depth - 1].subject)} but is not "
                    "a CA (basicConstraints CA:TRUE missing)",
                    iev(),
                )
            )
        elif bc.path_length is not None and depth - 1 > bc.path_length:
            out.append(
                _Finding(
                    BadCertificate,
                    "invalid-ca",
                    f"{_dn(issuer.subject)} allows {bc.path_length} intermediate(s) below it "
                    f"(pathLenConstraint) but the path has {depth - 1}",
                    iev(),
                )
            )
        try:
            ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
            if not ku.key_cert_sign:
                out.append(
                    _Finding(
                        UnsupportedCertificate,
                        "wrong-key-usage",
                        f"{_dn(issuer.subject)} issued a certificate but its keyUsage "
                        "lacks keyCertSign",
                        iev(),
                    )
                )
        except x509.ExtensionNotFound:
            pass
    return out


def _extension_findings(path: Sequence[x509.Certificate]) -> list[_Finding]:
    """RFC 5280 §4.2: a critical extension we do not process fails validation.

    Only used when the library cannot judge the path and our checks are the verdict.
    """
    out = []
    for cert in path:
        for ext in cert.extensions:
            unknown_critical = ext.critical and ext.oid not in _UNDERSTOOD_EXTENSIONS
            if unknown_critical or ext.oid == ExtensionOID.NAME_CONSTRAINTS:
                out.append(
                    _Finding(
                        UnsupportedCertificate,
                        "unsupported-extension",
                        f"certificate for {_dn(cert.subject)} has extension "
                        f"{ext.oid.dotted_string} that this validator cannot check",
                        {"certificate": describe_certificate(cert)},
                    )
                )
    return out


def _library_can_judge(path: Sequence[x509.Certificate]) -> bool:
    """cryptography's web-PKI policy forbids Ed25519/Ed448 keys and signatures and
    does not accept a pinned end-entity certificate as its own anchor; for those
    paths (all legal in TLS 1.3, RFC 8446 §4.2.3) our own checks are the verdict."""
    if len(path) < 2:
        return False
    for cert in path:
        if isinstance(_public_key(cert), (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            return False
        if cert.signature_algorithm_oid in (SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448):
            return False
    return True


def _raise(findings: list[_Finding]) -> None:
    first = findings[0]
    exc = first.cls(first.message)
    exc.code = first.code  # type: ignore[attr-defined]
    exc.evidence = first.evidence  # type: ignore[attr-defined]
    exc.findings = [(f.code, f.message) for f in findings]  # type: ignore[attr-defined]
    # every finding with its own evidence (a dict, or a callable that builds it), for a
    # diagnosis that reports each problem of the chain, not only the first
    exc.finding_details = [(f.code, f.message, f.evidence) for f in findings]  # type: ignore[attr-defined]
    raise exc


def _check_parsable(chain: Sequence[x509.Certificate], purpose: str) -> None:
    """cryptography parses names and extensions lazily: a certificate whose outer DER loads
    can still hold a malformed extension or name that raises ValueError on first use, deep
    inside the checks.  Touch them once here so such a chain is a typed bad_certificate
    ("a certificate was corrupt", RFC 8446 §6.2; RFC 5280 §4.1, §4.2), not an exception."""
    for i, cert in enumerate(chain):
        try:
            cert.subject, cert.issuer, cert.extensions  # noqa: B018 (forces the parse)
        except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
            # RFC 5280 §4.2: "MUST NOT include more than one instance of a particular extension"
            _raise([_Finding(BadCertificate, "verification-failed",
                             f"certificate {i} in the {purpose} chain is malformed: {e}")])
