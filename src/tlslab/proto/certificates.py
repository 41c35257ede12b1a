"""Certificate path validation with a diagnosis of why it failed.

The verdict comes from ``cryptography.x509.verification`` (RFC 5280 §6 path
validation under the CA/Browser Forum profile, RFC 6125 name matching).  The
library reports a failure as one string, so before calling it we analyse the
chain ourselves (RFC 5280 §6.1, RFC 8446 §4.4.2) and raise a typed error that
says *which* thing is wrong — missing intermediate, untrusted root, self-signed,
expired, wrong host, weak key — with the evidence.

Every error raised here carries, as instance attributes:

``code``
    a diagnosis code (DESIGN.md vocabulary: ``untrusted-root``,
    ``missing-intermediate``, ``self-signed``, ``expired``, ``not-yet-valid``,
    ``hostname-mismatch``, ``no-san``, ``weak-key``, ``sha1-signature``,
    ``wrong-key-usage``; plus ``empty-chain``, ``client-certificate-required``,
    ``unsupported-key``, ``bad-signature``, ``invalid-ca``,
    ``unsupported-extension``, ``path-limit-exceeded`` (the path search gave
    up, see :func:`_build_paths`) and ``verification-failed`` for the cases the
    vocabulary has no word for);
``evidence``
    a dict (certificate summaries, the DN that could not be found, ...);
``findings``
    every problem the analysis found, as ``(code, message)`` pairs, the raised
    one first (a chain can be both expired and missing an intermediate).

Only :func:`load_trust_store` touches the file system; the rest is pure and
takes the validation time as an argument (the engine has no clock).
"""
from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import re
import ssl
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from .errors import (
    BadCertificate,
    CertificateExpired,
    CertificateRequired,
    DecodeError,
    TLSError,
    UnknownCA,
    UnsupportedCertificate,
)

__all__ = [
    "describe_certificate",
    "load_trust_store",
    "verify_client_chain",
    "verify_server_chain",
]

#: RSA moduli below this are refused (CA/B Baseline Requirements §6.1.5; the
#: library's own minimum is the same).
MIN_RSA_BITS = 2048
#: Longest path the fallback search builds, leaf and anchor included (real paths have 2-5).
_MAX_DEPTH = 10
#: Complete paths collected before the search stops looking for alternatives.
_MAX_PATHS = 64

# Bounds on the fallback path search (:func:`_build_paths`).  The search runs on
# whatever the peer sent, before the peer is authenticated (a server with
# client_ca_file, any client), so its cost must not grow with the number of ways a
# hostile chain can be combined: 5 certificates per layer with one subject and one
# key, 9 layers, make ~2 million paths, minutes of CPU for 46 certificates.  Like
# rustls-webpki's ``Budget`` (and Go's crypto/x509), the search gives up once
# either limit is spent, whatever it has found so far; and issuers that cannot
# lead anywhere new (same subject, key and issuer name as one already tried) are
# tried once.
#: Signature verifications one search may make.  webpki and Go both stop at 100; an
#: honest chain needs one per certificate (a few more with look-alike issuers).
_MAX_SIGNATURE_CHECKS = 100
#: Certificates one search may visit (the recursive calls of the depth-first walk).
#: An honest chain visits fewer than 20; 1,000 costs a few milliseconds here.
#: (webpki allows 200,000 calls, each of them far cheaper than one in Python.)
_MAX_PATH_VISITS = 1_000
#: Most certificates a peer's Certificate message may carry (checked where the
#: message is read, before any certificate is parsed).  Real chains have 2-5
#: certificates, a server sending a whole CA bundle a few dozen; a cap bounds the
#: parsing and indexing work the budgets above do not count.
MAX_PEER_CERTIFICATES = 64

_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

_SIG_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsa-with-SHA1",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa-with-SHA256",
    SignatureAlgorithmOID.ED25519: "Ed25519",
    SignatureAlgorithmOID.ED448: "Ed448",
}

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


# --------------------------------------------------------------------------- trust store


_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL
)


def _parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM bundle or a single DER), skipping bad ones."""
    out: list[x509.Certificate] = []
    blocks = _PEM_CERT.findall(data)
    if not blocks and b"-----BEGIN" not in data and data:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            return []
    with warnings.catch_warnings():
        # Old roots with non-positive serials load with a deprecation warning.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in blocks:
            try:
                out.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                # Trust bundles carry the odd certificate cryptography refuses
                # (bad encodings, future stricter parsing): one bad apple must
                # not empty the store.
                continue
    return out


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> tuple[x509.Certificate, ...]:
    # mtime and size are part of the key so an edited file is re-read.
    if os.path.isdir(path):
        seen: set[bytes] = set()
        certs: list[x509.Certificate] = []
        for entry in sorted(os.listdir(path)):
            full = os.path.join(path, entry)
            if not os.path.isfile(full):
                continue
            try:
                with open(full, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for cert in _parse_certificates(data):
                fp = cert.fingerprint(hashes.SHA256())
                if fp not in seen:
                    seen.add(fp)
                    certs.append(cert)
        return tuple(certs)
    with open(path, "rb") as f:
        return tuple(_parse_certificates(f.read()))


def _load_path(path: str) -> tuple[x509.Certificate, ...]:
    st = os.stat(path)
    return _load_cached(os.path.abspath(path), st.st_mtime_ns, st.st_size)


def _system_store_candidates() -> list[str]:
    paths = ssl.get_default_verify_paths()
    candidates = [
        paths.cafile,
        paths.openssl_cafile,
        paths.capath,
        paths.openssl_capath,
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    try:
        import certifi  # type: ignore[import-not-found]

        candidates.append(certifi.where())
    except ImportError:
        pass
    return [c for c in candidates if c]


def load_trust_store(ca_file: str | os.PathLike[str] | None = None) -> list[x509.Certificate]:
    """Trust anchors: the certificates in ``ca_file``, or the system store.

    ``ca_file`` is a PEM bundle (a single DER certificate or a directory of
    such files also works).  Without it the system store is used, first found
    of: ``ssl.get_default_verify_paths()`` cafile/capath, OpenSSL's compiled-in
    defaults, ``/etc/ssl/certs/ca-certificates.crt``, ``certifi``.  Results are
    cached per path (a system bundle holds ~150 roots).  Certificates
    ``cryptography`` cannot parse are skipped.  Returns an empty list if no
    system store is found; raises ``FileNotFoundError`` for a missing
    ``ca_file`` and ``ValueError`` if it holds no certificate.
    """
    if ca_file is not None:
        path = os.fspath(ca_file)
        if not os.path.exists(path):
            raise FileNotFoundError(f"CA file not found: {path}")
        certs = _load_path(path)
        if not certs:
            raise ValueError(f"no certificate could be read from CA file {path}")
        return list(certs)
    for candidate in _system_store_candidates():
        try:
            if not os.path.exists(candidate):
                continue
            certs = _load_path(candidate)
        except OSError:
            continue
        if certs:
            return list(certs)
    return []


# --------------------------------------------------------------------------- description


def _dn(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty DN)"


def _key_description(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__.lstrip("_")


def _public_key(cert: x509.Certificate) -> Any:
    try:
        return cert.public_key()
    except Exception:  # unknown SPKI algorithm (e.g. GOST, ML-DSA on old builds)
        return None


def _signature_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    name = _SIG_NAMES.get(oid, oid.dotted_string)
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        h = _signature_hash(cert)
        if h is not None:
            name = f"{name} ({h.name.upper()})"
    return name


def _signature_hash(cert: x509.Certificate) -> hashes.HashAlgorithm | None:
    try:
        return cert.signature_hash_algorithm
    except Exception:
        return None


def _san_entries(cert: x509.Certificate) -> list[x509.GeneralName] | None:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return None


def _san_strings(cert: x509.Certificate) -> list[str]:
    out = []
    for gn in _san_entries(cert) or []:
        if isinstance(gn, x509.DNSName):
            out.append(f"DNS:{gn.value}")
        elif isinstance(gn, x509.IPAddress):
            out.append(f"IP:{gn.value}")
        elif isinstance(gn, x509.RFC822Name):
            out.append(f"email:{gn.value}")
        elif isinstance(gn, x509.UniformResourceIdentifier):
            out.append(f"URI:{gn.value}")
        else:
            out.append(f"{type(gn).__name__}:{gn.value}")
    return out


def _iso(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def describe_certificate(cert: x509.Certificate) -> dict[str, Any]:
    """A short JSON-able summary of ``cert`` for the trace and for error evidence.

    Keys: subject, issuer (RFC 4514 strings), serial (hex), not_before,
    not_after (ISO 8601 UTC), san (``DNS:``/``IP:`` strings), key (e.g.
    "ECDSA P-256", "RSA 2048", "Ed25519"), signature_algorithm, is_ca,
    self_issued and sha256 (colon-separated fingerprint as ``openssl x509
    -fingerprint -sha256`` prints it).
    """
    fp = cert.fingerprint(hashes.SHA256()).hex().upper()
    return {
        "subject": _dn(cert.subject),
        "issuer": _dn(cert.issuer),
        "serial": format(cert.serial_number, "x"),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "san": _san_strings(cert),
        "key": _key_description(_public_key(cert)),
        "signature_algorithm": _signature_name(cert),
        "is_ca": _is_ca(cert),
        "self_issued": cert.issuer == cert.subject,
        "sha256": ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)),
    }


# --------------------------------------------------------------------------- analysis helpers


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


def _utc(now: datetime.datetime) -> datetime.datetime:
    if now.tzinfo is None:
        return now.replace(tzinfo=datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc)


def _fmt_time(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _time_valid(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """True/False if ``parent``'s key does/doesn't verify ``child``; None if names differ.

    Uses RFC 5280 §6.1.3 (a)(1) and (a)(4): the signature and the
    issuer/subject name chaining.
    """
    if child.issuer != parent.subject:
        return None
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, TypeError):
        return False
    except UnsupportedAlgorithm:
        # a parent key of a type cryptography does not know (an unknown SPKI algorithm OID):
        # it cannot be shown to have signed the child (RFC 5280 §6.1.3 (a)(1)); was an
        # escaping exception, i.e. internal_error (found by fuzz/chain_analysis)
        return False
    except ValueError:
        # Refused algorithm (SHA-1, MD5): check it by hand so the path still
        # builds and the finding says "SHA-1", not "bad signature".
        return _legacy_signature_ok(child, parent)
    return True


def _legacy_signature_ok(child: x509.Certificate, parent: x509.Certificate) -> bool:
    key = _public_key(parent)
    try:
        params = child.signature_algorithm_parameters
        digest = child.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and digest is not None:
            key.verify(child.signature, child.tbs_certificate_bytes, params, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(child.signature, child.tbs_certificate_bytes, params)
        elif isinstance(key, dsa.DSAPublicKey) and digest is not None:
            key.verify(child.signature, child.tbs_certificate_bytes, digest)
        else:
            return False
    except Exception:  # InvalidSignature, or an algorithm even the primitives refuse
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return _signed_by(cert, cert) is True


def _spki(cert: x509.Certificate) -> bytes | None:
    key = _public_key(cert)
    if key is None:
        return None
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class _Anchors:
    """Trust anchors indexed by subject; a presented certificate is an anchor if it
    *is* one, or has the same subject and key as one (a re-issued root)."""

    def __init__(self, trust: Sequence[x509.Certificate]) -> None:
        self.by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        self.exact: set[bytes] = set()
        for cert in trust:
            self.by_subject.setdefault(cert.subject, []).append(cert)
            self.exact.add(cert.fingerprint(hashes.SHA256()))

    def contains(self, cert: x509.Certificate) -> bool:
        if cert.fingerprint(hashes.SHA256()) in self.exact:
            return True
        spki = _spki(cert)
        return spki is not None and any(
            _spki(t) == spki for t in self.by_subject.get(cert.subject, ())
        )

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        return list(self.by_subject.get(cert.issuer, ()))


class _TrustContext:
    """What one trust list costs to prepare: our anchor index and the library's
    ``Store`` (built on first use; None for an empty list, which it refuses)."""

    __slots__ = ("certs", "anchors", "_store", "_lock")

    def __init__(self, trust: Sequence[x509.Certificate]) -> None:
        # Holding the certificates keeps their id()s from being reused while
        # this entry is cached, which is what makes the id-tuple key sound.
        self.certs = tuple(trust)
        self.anchors = _Anchors(self.certs)
        self._store: Store | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> Store | None:
        if self._store is None and self.certs:
            with self._lock:
                if self._store is None:
                    self._store = Store(list(self.certs))
        return self._store


_TRUST_CACHE_SIZE = 8
_trust_cache: OrderedDict[tuple[int, ...], _TrustContext] = OrderedDict()
_trust_cache_lock = threading.Lock()


def _trust_context(trust: Sequence[x509.Certificate]) -> _TrustContext:
    """The cached :class:`_TrustContext` for ``trust``.

    :func:`load_trust_store` returns a fresh list per call but the same
    certificate objects, so the key is the tuple of their ``id()``s: cheap for a
    150-root system store (no hashing of DER) and exact, since the cached entry
    keeps those very objects alive.  A small LRU covers a client and a server
    (or a few configurations) in one process.
    """
    key = tuple(map(id, trust))
    with _trust_cache_lock:
        ctx = _trust_cache.get(key)
        if ctx is not None:
            _trust_cache.move_to_end(key)
            return ctx
    ctx = _TrustContext(trust)
    with _trust_cache_lock:
        _trust_cache[key] = ctx
        _trust_cache.move_to_end(key)
        while len(_trust_cache) > _TRUST_CACHE_SIZE:
            _trust_cache.popitem(last=False)
    return ctx


@dataclass
class _PathResult:
    paths: list[list[x509.Certificate]]  # complete paths leaf..anchor
    deepest: list[x509.Certificate]  # longest dead end, for diagnosis
    bad_signatures: list[tuple[x509.Certificate, x509.Certificate]]  # (child, would-be issuer)
    limit: str | None = None  # which budget stopped the search, if one did
    signature_checks: int = 0
    visits: int = 0


class _SearchLimit(Exception):
    """A budget of :func:`_build_paths` is spent: the search stops (webpki: a fatal error)."""


def _build_paths(
    chain: Sequence[x509.Certificate], anchors: _Anchors, now: datetime.datetime
) -> _PathResult:
    """Depth-first path building (RFC 4158 in miniature) from the leaf to an anchor.

    Candidates are the trust anchors and the certificates the peer sent, in any
    order (RFC 8446 §4.4.2 lets the peer send extra or unordered certificates).
    Anchors and currently valid certificates are tried first so a cross-signed
    alternative wins over an expired one.

    The work is bounded whatever the peer sent: of the candidates with the same
    subject, key and issuer name only the first (in that order) is tried, since
    the others verify the same signatures and lead to the same issuers (a
    cross-signed version, which has another issuer name, is still tried); a
    signature is verified once per (certificate, issuer subject and key); and the
    search stops after :data:`_MAX_SIGNATURE_CHECKS` signature verifications or
    :data:`_MAX_PATH_VISITS` visited certificates, with ``limit`` saying which.
    """
    leaf = chain[0]
    result = _PathResult(paths=[], deepest=[leaf], bad_signatures=[])
    sent_by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for c in chain[1:]:
        sent_by_subject.setdefault(c.subject, []).append(c)
    spkis: dict[int, bytes | None] = {}
    signatures: dict[tuple[int, bytes | None, x509.Name], bool | None] = {}

    def spki(cert: x509.Certificate) -> bytes | None:
        k = id(cert)
        if k not in spkis:
            spkis[k] = _spki(cert)
        return spkis[k]

    def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
        if child.issuer != parent.subject:
            return None  # names do not chain: no signature to check
        parent_key = spki(parent)
        if parent_key is None:  # a key we cannot read: never share its verdict
            parent_key = parent.fingerprint(hashes.SHA256())
        key = (id(child), parent_key, parent.subject)
        if key not in signatures:
            if result.signature_checks >= _MAX_SIGNATURE_CHECKS:
                result.limit = "signature-checks"
                raise _SearchLimit
            result.signature_checks += 1
            signatures[key] = _signed_by(child, parent)
        return signatures[key]

    def candidates(cert: x509.Certificate) -> list[x509.Certificate]:
        ordered = anchors.issuers_of(cert) + sent_by_subject.get(cert.issuer, [])
        ordered.sort(key=lambda c: (not _time_valid(c, now)))  # stable: anchors first
        out: list[x509.Certificate] = []
        seen: set[tuple] = set()
        for c in ordered:
            k = spki(c)
            ident = (c.subject, c.issuer, k if k is not None else c.fingerprint(hashes.SHA256()))
            if ident not in seen:
                seen.add(ident)
                out.append(c)
        return out

    def walk(path: list[x509.Certificate]) -> None:
        if len(result.paths) >= _MAX_PATHS:
            return
        if result.visits >= _MAX_PATH_VISITS:
            result.limit = "path-visits"
            raise _SearchLimit
        result.visits += 1
        current = path[-1]
        if anchors.contains(current):
            result.paths.append(list(path))
            return
        if len(path) > len(result.deepest):
            result.deepest = list(path)
        if len(path) >= _MAX_DEPTH or (len(path) > 1 and signed_by(current, current)):
            return  # a self-signed cert that is not an anchor ends the path
        for cand in candidates(current):
            if any(cand == p for p in path):
                continue
            ok = signed_by(current, cand)
            if ok:
                walk(path + [cand])
            elif ok is False:
                result.bad_signatures.append((current, cand))

    try:
        walk([leaf])
    except _SearchLimit:
        pass
    return result


def _pick_path(paths: list[list[x509.Certificate]], now: datetime.datetime) -> list[x509.Certificate]:
    for p in paths:
        if all(_time_valid(c, now) for c in p):
            return p
    return paths[0]


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
        f"{_MAX_SIGNATURE_CHECKS} signature checks"
        if built.limit == "signature-checks"
        else f"{_MAX_PATH_VISITS} certificates visited"
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


# --------------------------------------------------------------------------- verification


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


def _verify(
    chain: Sequence[x509.Certificate],
    server_name: str | None,
    trust: Sequence[x509.Certificate],
    now: datetime.datetime,
    purpose: str,
    ders: Sequence[bytes] | None = None,
) -> list[x509.Certificate]:
    now = _utc(now)
    if not chain:
        if purpose == "server":
            # RFC 8446 §4.4.2.4: an empty server Certificate is a decode_error.
            _raise([_Finding(DecodeError, "empty-chain", "the server sent no certificate")])
        _raise(
            [
                _Finding(
                    CertificateRequired,
                    "client-certificate-required",
                    "the client sent no certificate but one is required (RFC 8446 §4.4.2.4)",
                )
            ]
        )
    chain = list(chain)
    _check_parsable(chain, purpose)
    ctx = _trust_context(trust)
    library_error: VerificationError | None = None
    # A server presents the same chain on every connection: the checks that depend
    # only on the certificates and the name (not on the time) are remembered for
    # chains that passed them.  The library still validates every time (validity
    # periods depend on ``now``).
    if ders is None or len(ders) != len(chain):
        ders = [c.public_bytes(_DER) for c in chain]
    key = (purpose, server_name, id(ctx), tuple(ders))
    known_path = _STATIC_OK.get(key)
    if known_path is not None or _fast_path_eligible(chain, ctx):
        try:
            verified = _library_verify(chain, server_name, ctx, now, purpose)
        except VerificationError as e:
            library_error = e  # diagnose below, without asking the library twice
        else:
            if verified is not None:
                # the path is the same one when it has the same length and ends at the same
                # anchor object (anchors live in the cached trust context; the rest of the
                # path comes from this very chain, whose bytes are part of the key)
                path = (len(verified), id(verified[-1]))
                if known_path == path:
                    return verified
                if not _success_findings(verified, chain[0], server_name, purpose):
                    with _STATIC_LOCK:
                        _STATIC_OK[key] = path
                        while len(_STATIC_OK) > 256:
                            _STATIC_OK.pop(next(iter(_STATIC_OK)))
                    return verified
    return _diagnose(chain, server_name, ctx, now, purpose, library_error)


_DER = serialization.Encoding.DER
#: (purpose, name, trust context id, chain DERs) -> path DERs whose static checks passed.
#: Trust contexts are cached objects that keep their id while they live (see _trust_context).
_STATIC_OK: dict[tuple, tuple] = {}
_STATIC_LOCK = threading.Lock()


def _fast_path_eligible(chain: list[x509.Certificate], ctx: _TrustContext) -> bool:
    """Whether to ask the library first (the common, successful case).

    Anything the library cannot judge goes straight to :func:`_diagnose`, which
    then decides on our checks alone: an empty store, a leaf that is (or shares
    its subject with) an anchor (pinned certificate; the library would build past
    it), Ed25519/Ed448 signatures (refused by the web-PKI policy, see
    :func:`_library_can_judge`; Ed keys signed otherwise make the library raise
    and are sent to the diagnosis the same way).
    """
    if ctx.store is None or chain[0].subject in ctx.anchors.by_subject:
        return False
    return not any(c.signature_algorithm_oid in _ED_SIGNATURES for c in chain)


_ED_SIGNATURES = (SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448)


def _library_subject(
    leaf: x509.Certificate, server_name: str | None
) -> x509.verification.Subject | None:
    if server_name is not None:
        subject = _name_subject(server_name)[1]
        if subject is not None:
            return subject
    # Hostname check skipped on request (or a name the library cannot
    # represent): give the library a name the certificate does hold, so it
    # still validates the path.
    return next(
        (g for g in _san_entries(leaf) or [] if isinstance(g, (x509.DNSName, x509.IPAddress))),
        None,
    )


def _library_verify(
    chain: list[x509.Certificate],
    server_name: str | None,
    ctx: _TrustContext,
    now: datetime.datetime,
    purpose: str,
) -> list[x509.Certificate] | None:
    """The library's validated path, or None if it cannot be asked (no usable
    subject, or a name its DNS syntax refuses).  Raises ``VerificationError``."""
    leaf = chain[0]
    store = ctx.store
    assert store is not None
    builder = PolicyBuilder().store(store).time(now)
    if purpose == "server":
        subject = _library_subject(leaf, server_name)
        if subject is None:
            return None
        try:
            verifier = builder.build_server_verifier(subject)
        except ValueError:
            return None
        return list(verifier.verify(leaf, chain[1:]))
    # Client certificates often name their subject only in the DN; the
    # web-PKI default of a mandatory subjectAltName does not apply to them.
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    builder = builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
    )
    return list(builder.build_client_verifier().verify(leaf, chain[1:]).chain)


def _success_findings(
    path: list[x509.Certificate],
    leaf: x509.Certificate,
    server_name: str | None,
    purpose: str,
) -> bool:
    """Whether our own checks object to a path the library accepted.

    Path building, signatures, validity times (every certificate, the anchor
    included), extendedKeyUsage and the issuers' basicConstraints, keyCertSign,
    pathLen and key strength are the library's (RFC 5280 §6.1 under the CA/B
    profile).  It does *not* check the end-entity key (an RSA-1024, DSA or
    secp256k1 leaf passes), keyUsage digitalSignature (RFC 8446 §4.4.2.2), or name
    matching as strictly as we do (it lets ``*.test`` match ``a.test``); those, the
    key and SHA-1 checks on the whole path (cheap, and a safety net), and the
    "can the library judge this path at all" test run here.  Any objection sends
    the chain to the full diagnosis, which reports it.
    """
    if not _library_can_judge(path):
        return True
    if purpose == "server" and server_name is not None:
        if _hostname_findings(leaf, server_name)[0]:
            return True
    return bool(
        _key_findings(path)
        or _signature_findings(path, anchored=True)
        or _usage_findings(path, purpose, issuers=False)
    )


def _diagnose(
    chain: list[x509.Certificate],
    server_name: str | None,
    ctx: _TrustContext,
    now: datetime.datetime,
    purpose: str,
    library_error: VerificationError | None,
) -> list[x509.Certificate]:
    """Full analysis: build paths ourselves, collect every finding, and raise the
    first; if there is none, the library (or, where it cannot judge, our checks)
    has the last word.  ``library_error`` is the library's verdict if it has
    already been asked with the same inputs."""
    peer = "server" if purpose == "server" else "client"
    leaf = chain[0]
    anchors = ctx.anchors
    built = _build_paths(chain, anchors, now)

    findings: list[_Finding] = []
    if built.paths:
        path = _pick_path(built.paths, now)
    else:
        path = built.deepest
        if built.limit is not None:
            findings.append(_limit_finding(built, peer))
        else:
            findings += _path_findings(leaf, built, anchors, peer)
    findings += _time_findings(path, now)
    subject: x509.verification.Subject | None = None
    if purpose == "server" and server_name is not None:
        name_findings, subject = _hostname_findings(leaf, server_name)
        findings += name_findings
    findings += _key_findings(path)
    findings += _signature_findings(path, anchored=bool(built.paths))
    findings += _usage_findings(path, purpose)
    library = built.paths and _library_can_judge(path)
    if purpose == "server" and subject is None:
        subject = _library_subject(leaf, None)
        if subject is None:
            library = False
    if not library:
        findings += _extension_findings(path)
    if findings:
        _raise(findings)
    if not library:
        return list(path)

    try:
        if library_error is not None:
            raise library_error
        verified = _library_verify(chain, server_name, ctx, now, purpose)
        if verified is None:
            # A name the library's DNS syntax refuses (e.g. "my_host"): our
            # RFC 6125 match above already passed, so our checks decide.
            return list(path)
        return verified
    except VerificationError as e:
        _raise(
            [
                _Finding(
                    BadCertificate,
                    "verification-failed",
                    f"certificate verification failed: {e}",
                    {"path": [describe_certificate(c) for c in path], "library_error": str(e)},
                )
            ]
        )
    raise AssertionError("unreachable")


def verify_server_chain(
    chain: list[x509.Certificate],
    server_name: str | None,
    trust: list[x509.Certificate],
    now: datetime.datetime,
    ders: Sequence[bytes] | None = None,
) -> list[x509.Certificate]:
    """Validate a server's Certificate message (RFC 8446 §4.4.2) for ``server_name``.

    ``chain`` is as sent: leaf first, then whatever the server added (order and
    extras are tolerated, RFC 8446 §4.4.2).  ``server_name`` is a DNS name or an
    IPv4/IPv6 literal matched against the subjectAltName per RFC 6125 §6
    (``None`` skips the name check but still validates the path).  ``trust``
    holds the anchors; ``now`` is the validation time (naive means UTC).

    Returns the validated path, leaf to trust anchor (RFC 5280 §6.1).  Raises
    ``UnknownCA`` (self-signed, untrusted-root, missing-intermediate),
    ``CertificateExpired`` (expired, not-yet-valid), ``BadCertificate``
    (hostname-mismatch, no-san, sha1-signature, bad-signature, invalid-ca,
    path-limit-exceeded, verification-failed), ``UnsupportedCertificate`` (weak-key,
    unsupported-key, wrong-key-usage, unsupported-extension) or ``DecodeError``
    (empty-chain); see the module docstring for the attributes they carry.
    """
    return _verify(chain, server_name, trust, now, "server", ders)


def verify_client_chain(
    chain: list[x509.Certificate],
    trust: list[x509.Certificate],
    now: datetime.datetime,
) -> list[x509.Certificate]:
    """Validate a client's Certificate message for mutual TLS (RFC 8446 §4.4.2, §4.4.2.4).

    Like :func:`verify_server_chain` without a name check and requiring the
    clientAuth extended key usage.  An empty chain raises
    ``CertificateRequired`` (code ``client-certificate-required``).
    """
    return _verify(chain, None, trust, now, "client")
