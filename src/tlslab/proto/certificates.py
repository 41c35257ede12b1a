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

The work is split by concern: :mod:`.cert_store` (the only file reading: trust
stores), :mod:`.cert_info` (certificate facts), :mod:`.cert_paths` (bounded path
building), :mod:`.cert_findings` (each check and its evidence); this module verifies.
Only :func:`load_trust_store` touches the file system; the rest is pure and
takes the validation time as an argument (the engine has no clock).

What is remembered between calls (each bounded and safe across threads) never
decides a verdict: trust contexts (anchor index and library ``Store`` per trust
list, :func:`.cert_paths._trust_context`) and, for chains that passed, the
outcome of our own static checks (:data:`_STATIC_OK`, keyed by purpose, name,
trust context and the chain's bytes).  The library validates every chain again
with the caller's time, so expiry and signatures are checked on every call.
"""
from __future__ import annotations

import datetime
import threading
from typing import NamedTuple, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import SignatureAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    VerificationError,
)

from .errors import BadCertificate, CertificateRequired, DecodeError
from .cert_findings import (
    _Finding,
    _check_parsable,
    _extension_findings,
    _hostname_findings,
    _key_findings,
    _library_can_judge,
    _limit_finding,
    _name_subject,
    _path_findings,
    _raise,
    _signature_findings,
    _time_findings,
    _usage_findings,
)
from .cert_info import _san_entries, _utc, describe_certificate
from .cert_paths import (
    _TrustContext,
    _build_paths,
    _cached_trust_context,
    _pick_path,
    _trust_context,
)
from .cert_store import load_trust_store
# the limits and names the rest of the engine reads from this module
from .cert_findings import MIN_RSA_BITS  # noqa: E402
from .cert_paths import MAX_PEER_CERTIFICATES  # noqa: E402


__all__ = [
    "MAX_PEER_CERTIFICATES",
    "MIN_RSA_BITS",
    "describe_certificate",
    "load_trust_store",
    "verify_client_chain",
    "verify_server_chain",
]

# --------------------------------------------------------------------------- verification


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
    # A server presents the same chain on every connection.  What depends only on the
    # certificates, the anchors, the name and the purpose (not on the time) is remembered
    # for chains that passed it: that they parse, that the library may judge them, our
    # own checks of the path it built.  The library still validates every chain, with
    # this connection's time (validity periods, and its signatures verified again).
    ctx = _cached_trust_context(trust)
    key: tuple | None = None
    known: _Known | None = None
    if ctx is not None:
        key = _memo_key(purpose, server_name, ctx, chain, ders)
        known = _STATIC_OK.get(key)
    if known is None:
        _check_parsable(chain, purpose)
        if ctx is None:
            ctx = _trust_context(trust)
            key = _memo_key(purpose, server_name, ctx, chain, ders)
        if not _fast_path_eligible(chain, ctx):
            return _diagnose(chain, server_name, ctx, now, purpose, None)
    assert key is not None
    subject = known.subject if known is not None else None
    if subject is None and purpose == "server":
        subject = _library_subject(chain[0], server_name)
    try:
        verified = _library_verify(chain, server_name, ctx, now, purpose, subject)
    except VerificationError as e:
        # diagnose below, without asking the library twice
        return _diagnose(chain, server_name, ctx, now, purpose, e)
    if verified is None:
        return _diagnose(chain, server_name, ctx, now, purpose, None)
    # the path is the same one when it has the same length and ends at the same anchor
    # object (anchors live in the cached trust context; the rest of the path comes from
    # this very chain, whose bytes are part of the key)
    path = (len(verified), id(verified[-1]))
    if known is not None and known.path == path:
        return verified
    if _success_findings(verified, chain[0], server_name, purpose):
        return _diagnose(chain, server_name, ctx, now, purpose, None)
    with _STATIC_LOCK:
        _STATIC_OK[key] = _Known(path, subject)
        while len(_STATIC_OK) > _STATIC_OK_SIZE:
            _STATIC_OK.pop(next(iter(_STATIC_OK)))
    return verified


def _memo_key(
    purpose: str,
    server_name: str | None,
    ctx: _TrustContext,
    chain: list[x509.Certificate],
    ders: Sequence[bytes] | None,
) -> tuple:
    # ``ders`` are the bytes the chain was parsed from (the caller's word); re-encoding
    # costs a few microseconds per certificate, so it is done only when they are missing.
    if ders is None or len(ders) != len(chain):
        ders = [c.public_bytes(_DER) for c in chain]
    return (purpose, server_name, ctx.serial, tuple(ders))


class _Known(NamedTuple):
    """What :data:`_STATIC_OK` remembers of a chain whose static checks passed."""

    #: (length, id of the anchor) of the path the library built and our checks passed
    path: tuple[int, int]
    #: the name the library was asked to check (server chains; see _library_subject)
    subject: x509.verification.Subject | None


_DER = serialization.Encoding.DER
#: (purpose, name, trust context serial, chain DERs) -> :class:`_Known`, for chains whose
#: static checks passed.  Every part that those checks depend on is in the key: the
#: serial is never reused (see _TrustContext.serial), so a changed trust list can never
#: meet an old entry, and the anchor is an object of that very context, so its id is
#: stable while the context lives.  Only static facts are kept, never a verdict: the time
#: is not in the key because the library validates every chain with the connection's
#: time.  A dict read is atomic; writes and evictions (oldest first) take the lock.
_STATIC_OK: dict[tuple, _Known] = {}
_STATIC_OK_SIZE = 256
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
    subject: x509.verification.Subject | None = None,
) -> list[x509.Certificate] | None:
    """The library's validated path, or None if it cannot be asked (no usable
    subject, or a name its DNS syntax refuses).  Raises ``VerificationError``.

    ``subject`` is the name to check for a server chain if already known (see
    :class:`_Known`); None derives it from ``server_name`` and the leaf.

    The verifier is built on every call: its validation time is fixed when it is
    built (``PolicyBuilder.time``) and must be this connection's ``now``, and
    building one costs about 1 µs, under 2 % of the validation itself.  The builder
    holding the trust list's store is the trust context's."""
    leaf = chain[0]
    base = ctx.policy_builder
    assert base is not None
    builder = base.time(now)
    if purpose == "server":
        if subject is None:
            subject = _library_subject(leaf, server_name)
        if subject is None:
            return None
        try:
            verifier = builder.build_server_verifier(subject)
        except ValueError:
            return None
        return list(verifier.verify(leaf, chain[1:]))
    builder = builder.extension_policies(ca_policy=_CLIENT_CA_POLICY, ee_policy=_CLIENT_EE_POLICY)
    return list(builder.build_client_verifier().verify(leaf, chain[1:]).chain)


# Client certificates often name their subject only in the DN; the web-PKI default of
# a mandatory subjectAltName does not apply to them.  Policies are immutable: built once.
_CLIENT_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)
_CLIENT_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()


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
    ``ders``, if given, must be the bytes ``chain`` was parsed from (the
    Certificate message's cert_data): they identify a chain already checked, and
    spare encoding each certificate again.

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
    ders: Sequence[bytes] | None = None,
) -> list[x509.Certificate]:
    """Validate a client's Certificate message for mutual TLS (RFC 8446 §4.4.2, §4.4.2.4).

    Like :func:`verify_server_chain` without a name check and requiring the
    clientAuth extended key usage.  An empty chain raises
    ``CertificateRequired`` (code ``client-certificate-required``).
    """
    return _verify(chain, None, trust, now, "client", ders)
