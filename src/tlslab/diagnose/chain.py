"""The server's chain, judged for one client profile.

The verdict and the first analysis come from the engine's verifier
(:func:`tlslab.proto.certificates.verify_server_chain`: ``cryptography``'s RFC 5280 path
validation plus tlslab's chain analysis, which tells a missing intermediate from an
untrusted root).  Here each finding is turned into a cause with its evidence, and the
profile's verifier rules (SHA-1 accepted, minimum RSA size, CN fallback) are applied.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..proto.certificates import describe_certificate, verify_server_chain

#: engine codes outside the diagnosis vocabulary, and the vocabulary word that fits them
_CODE_MAP = {
    "unsupported-key": "weak-key",
    "bad-signature": "untrusted-root",
    "verification-failed": "untrusted-root",
    "invalid-ca": "wrong-key-usage",
    "unsupported-extension": "wrong-key-usage",
    "empty-chain": "untrusted-root",
    # the path search gave up (a crafted or absurd chain): no path to a trusted root
    "path-limit-exceeded": "untrusted-root",
}
#: certificates expiring sooner than this get a warning (renewal usually happens at 30 days left)
EXPIRY_WARNING_DAYS = 21


@dataclass
class CertProblem:
    code: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _fingerprint(cert: x509.Certificate) -> str:
    fp = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))


def _ago(delta: datetime.timedelta) -> str:
    days = abs(delta.total_seconds()) / 86400
    if days >= 2:
        return f"{days:.0f} days"
    hours = abs(delta.total_seconds()) / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{abs(delta.total_seconds()) / 60:.0f} minutes"


def _cn(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def _resolve(evidence: Any) -> dict[str, Any]:
    try:
        value = evidence() if callable(evidence) else evidence
    except Exception:  # evidence is a courtesy: never let it break the diagnosis
        return {}
    return dict(value) if isinstance(value, dict) else {}


def _engine_findings(chain: list, check_name: str | None, trust: list,
                     now: datetime.datetime) -> list:
    """The engine's verdict: ``[]`` when the chain verifies, else its findings as
    ``(code, message, evidence)``."""
    try:
        verify_server_chain(chain, check_name, trust, now)
        return []
    except Exception as e:  # the engine's typed certificate errors
        return getattr(e, "finding_details", None) or [
            (getattr(e, "code", "verification-failed"), str(e), getattr(e, "evidence", {}))]


def analyse_chain(chain: Sequence[x509.Certificate], check_name: str | None,
                  trust: list[x509.Certificate], now: datetime.datetime, verifier,
                  cache: dict | None = None) -> list[CertProblem]:
    """Every problem of ``chain`` for a client with ``verifier`` rules (a
    :class:`~tlslab.profiles.model.Verifier`); empty when the chain verifies.

    ``cache`` (one dict per diagnosis): the engine's verdict does not depend on the
    profile, so a run that judges one chain for many profiles verifies it once; the
    problems themselves are built fresh each time (callers add to their evidence)."""
    chain = list(chain)
    if cache is None:
        details = _engine_findings(chain, check_name, trust, now)
    else:
        key = (tuple(c.fingerprint(hashes.SHA256()) for c in chain), check_name)
        details = cache.get(key)
        if details is None:
            details = cache[key] = _engine_findings(chain, check_name, trust, now)
    if not details:
        return []
    problems: list[CertProblem] = []
    seen: set[str] = set()
    for engine_code, message, evidence in details:
        code = _CODE_MAP.get(engine_code, engine_code)
        ev = _resolve(evidence)
        if engine_code != code:
            ev["analysis_code"] = engine_code
        problem = _explain(code, message, ev, chain, check_name, trust, now)
        if problem is None or not _applies(problem, verifier, chain, check_name):
            continue
        if code in seen:
            continue
        seen.add(code)
        problems.append(problem)
    return problems


def _applies(p: CertProblem, verifier, chain: list, check_name: str | None) -> bool:
    """The profile's verifier rules: what this client tolerates."""
    if p.code == "sha1-signature" and verifier.sha1_accepted:
        return False
    if p.code == "weak-key":
        bits = p.evidence.get("rsa_bits")
        if bits is not None and bits >= verifier.min_rsa_bits:
            return False
    if p.code == "no-san" and verifier.cn_fallback and check_name:
        if (_cn(chain[0]) or "").lower() == check_name.lower():
            return False
    return True


def _explain(code: str, message: str, ev: dict, chain: list, name: str | None,
             trust: list, now: datetime.datetime) -> CertProblem | None:
    leaf = chain[0]
    ev.setdefault("analysis", message)
    now_utc = now if now.tzinfo else now.replace(tzinfo=datetime.timezone.utc)
    if code == "expired":
        cert = _find_cert(ev, chain) or leaf
        delta = now_utc - cert.not_valid_after_utc
        ev.update(not_after=cert.not_valid_after_utc.isoformat(), expired_ago=_ago(delta),
                  subject=cert.subject.rfc4514_string())
        return CertProblem(code, f"The certificate {cert.subject.rfc4514_string()} expired "
                                 f"{_ago(delta)} ago ({cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC).", ev)
    if code == "not-yet-valid":
        cert = _find_cert(ev, chain) or leaf
        delta = cert.not_valid_before_utc - now_utc
        ev.update(not_before=cert.not_valid_before_utc.isoformat(), starts_in=_ago(delta),
                  subject=cert.subject.rfc4514_string())
        return CertProblem(code, f"The certificate {cert.subject.rfc4514_string()} is not valid "
                                 f"for another {_ago(delta)} (from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
                                 "UTC): issued too early, or this machine's clock is wrong.", ev)
    if code in ("hostname-mismatch", "no-san"):
        present = describe_certificate(leaf)["san"]
        ev.update(name_asked=name, names_present=present, common_name=_cn(leaf))
        if code == "no-san":
            return CertProblem(code, f"The certificate has no subjectAltName; its name "
                                     f"{_cn(leaf)!r} is only in the subject CN, which clients "
                                     "no longer match (RFC 6125 §6.4.4, CA/B Forum).", ev)
        shown = ", ".join(present[:6]) or "none"
        return CertProblem(code, f"The certificate is for {shown}, not for {name!r}.", ev)
    if code == "untrusted-root":
        path = ev.get("path") or []
        last = chain[-1]
        root = next((c for c in chain if c.issuer == c.subject), None)
        if root is not None:
            ev.update(root_subject=root.subject.rfc4514_string(), root_sha256=_fingerprint(root),
                      root_sent_by_server=True)
            summary = (f"The chain ends at the root {root.subject.rfc4514_string()} (SHA-256 "
                       f"{_fingerprint(root)[:23]}…), which this client does not trust.")
        else:
            issuer = ev.get("missing_issuer") or last.issuer.rfc4514_string()
            ev.update(root_subject=issuer, root_sent_by_server=False)
            summary = f"The chain leads to the CA {issuer}, which this client does not trust."
        if path:
            ev["path"] = path
        return CertProblem(code, summary, ev)
    if code == "missing-intermediate":
        last = _last_of(ev, chain)
        urls = ev.get("ca_issuers") or []
        ev.update(missing_issuer=last.issuer.rfc4514_string(), aia_ca_issuers=urls)
        return CertProblem(code, f"The server does not send the intermediate CA "
                                 f"{last.issuer.rfc4514_string()} that issued its certificate"
                                 + (f" (the certificate points to it at {urls[0]})." if urls else "."), ev)
    if code == "self-signed":
        ev.update(subject=leaf.subject.rfc4514_string(), sha256=_fingerprint(leaf))
        return CertProblem(code, f"The server's certificate {leaf.subject.rfc4514_string()} is "
                                 f"self-signed (SHA-256 {_fingerprint(leaf)[:23]}…) and not trusted "
                                 "by this client.", ev)
    if code == "weak-key":
        cert = _find_cert(ev, chain) or leaf
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            ev["rsa_bits"] = key.key_size
        ev.update(key=describe_certificate(cert)["key"], subject=cert.subject.rfc4514_string())
        return CertProblem(code, f"The certificate {cert.subject.rfc4514_string()} has a weak "
                                 f"{ev['key']} key.", ev)
    if code == "sha1-signature":
        cert = _find_cert(ev, chain) or leaf
        ev.update(subject=cert.subject.rfc4514_string(),
                  signature_algorithm=describe_certificate(cert)["signature_algorithm"])
        return CertProblem(code, f"The certificate {cert.subject.rfc4514_string()} is signed "
                                 "with SHA-1, which clients refuse.", ev)
    if code == "wrong-key-usage":
        cert = _find_cert(ev, chain) or leaf
        ev.update(subject=cert.subject.rfc4514_string(), **_usage(cert))
        return CertProblem(code, f"The certificate {cert.subject.rfc4514_string()} may not be "
                                 f"used by a TLS server: {message}", ev)
    return CertProblem(code, message, ev)


def _usage(cert: x509.Certificate) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        out["extended_key_usage"] = [f"{o._name} ({o.dotted_string})" for o in eku]
    except x509.ExtensionNotFound:
        out["extended_key_usage"] = None
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        names = ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
        out["key_usage"] = [n for n in names if getattr(ku, n)]
    except x509.ExtensionNotFound:
        out["key_usage"] = None
    return out


def _find_cert(ev: dict, chain: list) -> x509.Certificate | None:
    desc = ev.get("certificate")
    if isinstance(desc, dict) and desc.get("sha256"):
        for c in chain:
            if _fingerprint(c) == desc["sha256"]:
                return c
        subject = desc.get("subject")
        return next((c for c in chain if c.subject.rfc4514_string() == subject), None)
    return None


def _last_of(ev: dict, chain: list) -> x509.Certificate:
    path = ev.get("path")
    if isinstance(path, list) and path and isinstance(path[-1], dict):
        for c in chain:
            if _fingerprint(c) == path[-1].get("sha256"):
                return c
    return chain[-1]


def expiry_warning(chain: Sequence[x509.Certificate], now: datetime.datetime) -> dict[str, Any] | None:
    """The certificate of the chain that expires first, if within EXPIRY_WARNING_DAYS."""
    now_utc = now if now.tzinfo else now.replace(tzinfo=datetime.timezone.utc)
    soon = [c for c in chain if now_utc < c.not_valid_after_utc <=
            now_utc + datetime.timedelta(days=EXPIRY_WARNING_DAYS)]
    if not soon:
        return None
    cert = min(soon, key=lambda c: c.not_valid_after_utc)
    return {"subject": cert.subject.rfc4514_string(), "not_after": cert.not_valid_after_utc.isoformat(),
            "expires_in": _ago(cert.not_valid_after_utc - now_utc)}


def sha1_in_chain(chain: Sequence[x509.Certificate]) -> list[str]:
    out = []
    for c in chain:
        if c.issuer == c.subject:
            continue  # a root's own signature is not checked (RFC 5280 §6.1)
        algo = c.signature_hash_algorithm
        if isinstance(algo, hashes.SHA1):
            out.append(c.subject.rfc4514_string())
    return out
