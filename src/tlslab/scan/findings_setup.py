"""Findings about the server's set-up: protocol versions, TLS extensions and features,
and the certificate chains.

Versions: RFC 6176 (SSL 2.0 prohibited), RFC 7568 (SSL 3.0 deprecated), RFC 8996 (TLS 1.0
and 1.1 deprecated).  Extensions: RFC 5746 (secure renegotiation), RFC 7507 (fallback
SCSV), RFC 7627 (extended master secret), RFC 7457 §2.6 (CRIME and compression), RFC 6066
§8 (OCSP stapling), RFC 8446 §8 (0-RTT replay).  Certificates: the problems the scan found
(diagnose's vocabulary), fixed with diagnose's own fix files.
"""
from __future__ import annotations

from typing import Any

from .findings import Context, finding
from .simulation import VERSION_ORDER, with_versions, without_versions

_OLD = {"SSL 2.0": ("ssl2-enabled", "critical", "SSL 2.0 is on (prohibited by RFC 6176)"),
        "SSL 3.0": ("ssl3-enabled", "high", "SSL 3.0 is on (deprecated by RFC 7568)"),
        "TLS 1.0": ("tls10-enabled", "medium", "TLS 1.0 is on (deprecated by RFC 8996)"),
        "TLS 1.1": ("tls11-enabled", "medium", "TLS 1.1 is on (deprecated by RFC 8996)")}
_CERT_SEVERITY = {"expired": "critical", "not-yet-valid": "high", "untrusted-root": "high",
                  "self-signed": "high", "missing-intermediate": "high", "hostname-mismatch": "high",
                  "weak-key": "high", "wrong-key-usage": "high", "no-san": "medium",
                  "sha1-signature": "medium"}


def protocol_findings(ctx: Context) -> list[dict[str, Any]]:
    doc = ctx.doc
    protocols = doc.get("protocols") or {}
    on = [v for v in VERSION_ORDER if protocols.get(v)]
    out = []
    for version, (fid, severity, title) in _OLD.items():
        if not protocols.get(version):
            continue
        n = len((doc.get("cipher_suites") or {}).get(version, {}).get("accepted") or [])
        out.append(finding(ctx, fid, severity, title,
                           f"the server completed a {version} handshake ({n} suite{'s' if n != 1 else ''} accepted)",
                           "disable-old-protocols",
                           broken=ctx.broken_by(without_versions(doc, [version])),
                           at_risk=ctx.using(lambda o, v=version: o.version == v),
                           fix_what=f"turning {version} off", fix_context={"versions": version}))
    if on and not protocols.get("TLS 1.3"):
        speakers = [p.name for p in ctx.profiles if "TLS 1.3" in p.offer.versions]
        what_if = with_versions(doc, ["TLS 1.3"], {"TLS 1.3": [
            "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]})
        locked = ctx.fixed_by(what_if)
        ctx.explained.update(locked)  # TLS 1.3-only clients: this finding is their reason
        out.append(finding(ctx, "tls13-disabled", "medium" if locked else "low", "TLS 1.3 is off",
                           f"the server refused TLS 1.3; {len(speakers)} of the {len(ctx.profiles)} client "
                           "profiles speak it and settle for an older version here"
                           + (f"; {', '.join(locked)} speak{'s' if len(locked) == 1 else ''} nothing else "
                              "and cannot connect" if locked else ""), "enable-tls13",
                           broken=ctx.broken_by(what_if), fix_what="turning TLS 1.3 on"))
    if protocols.get("TLS 1.3") and not any(protocols.get(v) for v in ("TLS 1.2", "TLS 1.1", "TLS 1.0")):
        locked = [n for n in ctx.failing_with("protocol-version-mismatch")
                  if "TLS 1.2" in next(p for p in ctx.profiles if p.name == n).offer.versions]
        out.append(finding(ctx, "tls12-disabled", "low", "Only TLS 1.3: clients without it cannot connect",
                           "the server refused TLS 1.2 and older", "enable-tls12",
                           broken=locked, broken_when="now"))
    return out


def extension_findings(ctx: Context) -> list[dict[str, Any]]:
    doc = ctx.doc
    protocols = doc.get("protocols") or {}
    old_on = [v for v in ("TLS 1.2", "TLS 1.1", "TLS 1.0", "SSL 3.0") if protocols.get(v)]
    below13 = lambda o: o.version in old_on  # noqa: E731 - clients on TLS 1.2 and older
    out = []
    if old_on and doc.get("secure_renegotiation") is False:
        out.append(finding(ctx, "no-secure-renegotiation", "medium",
                           "No secure renegotiation (RFC 5746)",
                           "the server's answer has no renegotiation_info extension",
                           "secure-renegotiation", at_risk=ctx.using(below13), fix_what="updating"))
    reneg = doc.get("client_renegotiation") or {}
    if reneg.get("accepted"):
        out.append(finding(ctx, "client-renegotiation", "medium",
                           "Client-initiated renegotiation accepted (a denial-of-service lever)",
                           str(reneg.get("evidence") or "the server renegotiated at the client's request"),
                           "client-renegotiation", fix_what="refusing it"))
    scsv = doc.get("fallback_scsv") or {}
    if scsv.get("supported") is False and len([v for v in VERSION_ORDER if protocols.get(v)]) > 1:
        out.append(finding(ctx, "no-fallback-scsv", "low", "No downgrade protection (TLS_FALLBACK_SCSV)",
                           str(scsv.get("evidence") or "the server accepted a fallback hello"),
                           "fallback-scsv",
                           at_risk=[p.name for p in ctx.profiles if p.falls_back and p.name in ctx.connecting()],
                           fix_what="updating, or turning the old versions off"))
    if protocols.get("TLS 1.2") and doc.get("extended_master_secret") is False:
        out.append(finding(ctx, "no-extended-master-secret", "low",
                           "No extended master secret (RFC 7627)",
                           "the TLS 1.2 ServerHello has no extended_master_secret extension",
                           "extended-master-secret", at_risk=ctx.using(below13), fix_what="updating"))
    if doc.get("compression"):
        out.append(finding(ctx, "compression", "high", "TLS compression on (CRIME, CVE-2012-4929)",
                           "the server accepted DEFLATE compression", "tls-compression",
                           at_risk=ctx.using(below13), fix_what="turning compression off"))
    ocsp = doc.get("ocsp_stapling") or {}
    if ocsp.get("stapled") is False:
        out.append(finding(ctx, "no-ocsp-stapling", "info", "No OCSP response stapled",
                           "asked for a stapled OCSP response"
                           + (f" in {ocsp['version']}" if ocsp.get("version") else "") + "; none came",
                           "ocsp-stapling", fix_what="stapling OCSP"))
    early = doc.get("early_data") or {}
    if early.get("accepted"):
        out.append(finding(ctx, "early-data-accepted", "info",
                           "0-RTT early data accepted: replayable requests",
                           f"the server accepted early data (max_early_data_size "
                           f"{early.get('max_early_data_size')})", "early-data",
                           fix_what="limiting 0-RTT to safe requests"))
    return out


def certificate_findings(ctx: Context) -> list[dict[str, Any]]:
    out = []
    seen: set[str] = set()
    for i, entry in enumerate(ctx.doc.get("certificates") or []):
        leaf = (entry.get("certificates") or [{}])[0]
        found = ", ".join(dict.fromkeys(entry.get("found_with") or [])) or "every handshake"
        where = f"{leaf.get('subject', 'the certificate')} (sent for {found})"
        for p in entry.get("problems") or []:
            code = p.get("code", "")
            if code in seen:
                continue  # one finding per problem; the evidence names the first chain
            seen.add(code)
            out.append(finding(ctx, f"certificate-{code}", _CERT_SEVERITY.get(code, "high"),
                               p.get("summary") or code.replace("-", " "),
                               f"{where}: {code}", code,
                               broken=ctx.failing_with(code), broken_when="now",
                               fix_context=_cert_context(ctx, leaf)))
        warn = entry.get("expiry_warning")
        if warn and "certificate-expires-soon" not in seen:
            seen.add("certificate-expires-soon")
            out.append(finding(ctx, "certificate-expires-soon", "medium",
                               f"The certificate expires in {warn.get('expires_in')}",
                               f"{warn.get('subject')} is valid until {warn.get('not_after')}", "expired",
                               at_risk=ctx.connecting(), fix_what="renewing it",
                               fix_context=_cert_context(ctx, leaf)))
    return out


def _cert_context(ctx: Context, leaf: dict) -> dict[str, Any]:
    names = [n.split(":", 1)[1] for n in leaf.get("san") or [] if n.startswith("DNS:") and "*" not in n]
    t = ctx.doc.get("target") or {}
    return {"cert_name": names[0] if names else None, "ca_file": t.get("ca_file")}
