"""Certification path building over what the peer sent (RFC 5280 §6.1, RFC 8446
§4.4.2), bounded like webpki: a budget of signature checks and visits, issuers tried once."""
from __future__ import annotations

import datetime
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.verification import PolicyBuilder, Store

from .cert_info import _public_key, _spki, _time_valid


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

    __slots__ = ("certs", "anchors", "serial", "_store", "_builder", "_lock")

    def __init__(self, trust: Sequence[x509.Certificate]) -> None:
        #: unique for the life of the process, unlike id(): results remembered for this
        #: context (certificates._STATIC_OK) can never be taken for another context's after
        #: this one is evicted from the cache and its memory reused
        self.serial = next(_context_serials)
        # Holding the certificates keeps their id()s from being reused while
        # this entry is cached, which is what makes the id-tuple key sound.
        self.certs = tuple(trust)
        self.anchors = _Anchors(self.certs)
        self._store: Store | None = None
        self._builder: PolicyBuilder | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> Store | None:
        if self._store is None and self.certs:
            with self._lock:
                if self._store is None:
                    store = Store(list(self.certs))
                    self._builder = PolicyBuilder().store(store)
                    self._store = store  # set last: readers test _store
        return self._store

    @property
    def policy_builder(self) -> PolicyBuilder | None:
        """``PolicyBuilder().store(store)``: builders are immutable (each setter returns a
        new one), so one serves every verification against this trust list."""
        return self._builder if self.store is not None else None


_context_serials = itertools.count(1)
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
    ctx = _cached_trust_context(trust)
    if ctx is not None:
        return ctx
    ctx = _TrustContext(trust)
    key = tuple(map(id, trust))
    with _trust_cache_lock:
        _trust_cache[key] = ctx
        _trust_cache.move_to_end(key)
        while len(_trust_cache) > _TRUST_CACHE_SIZE:
            _trust_cache.popitem(last=False)
    return ctx


def _cached_trust_context(trust: Sequence[x509.Certificate]) -> _TrustContext | None:
    """The :class:`_TrustContext` for ``trust`` if one is cached, else None (nothing built).

    Lets a caller look up what it remembered for this context before doing any work
    that could fail, and so keep the order in which a first verification fails."""
    key = tuple(map(id, trust))
    with _trust_cache_lock:
        ctx = _trust_cache.get(key)
        if ctx is not None:
            _trust_cache.move_to_end(key)
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
