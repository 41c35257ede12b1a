"""Why a ClientHello is refused: swap one dimension at a time.

For the user's ClientHello P and a "broad" one B (everything the engine can offer), the
plan sends, for each dimension d where they differ (versions, suites, groups, signature
schemes, SNI, ALPN):

* ``P with B's d``: if the server now answers, d is (one of) the reason(s) P fails;
* ``B with P's d``: if B works but this fails, P's d alone is enough to break it.

A dimension flagged by either is a cause.  When no single swap explains the failure, the
dimensions are swapped cumulatively until the server answers.  Then the server's side of
each cause is measured (which versions, suite families, groups it accepts) for the evidence.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from ..probe import ProbeOutcome, ProbeRunner, ProbeSpec, suite_family

#: dimension -> cause code (DESIGN.md vocabulary)
DIMENSION_CAUSE = {
    "versions": "protocol-version-mismatch",
    "cipher_suites": "no-common-cipher",
    "groups": "no-common-group",
    "signature_algorithms": "no-common-signature-algorithm",
    "sni": "sni-required",
    "alpn": "alpn-mismatch",
}

#: an alert from the server that names the cause by itself (RFC 8446 §6.2, RFC 5246 §7.2)
ALERT_CAUSE = {
    "protocol_version": "protocol-version-mismatch",
    "unrecognized_name": "sni-required",
    "no_application_protocol": "alpn-mismatch",
    "certificate_required": "client-certificate-required",
}

#: words in tlslab's own refusal of a server answer, and the cause they point to
LOCAL_ERROR_CAUSE = (
    ("signature", "no-common-signature-algorithm"),
    ("signed with", "no-common-signature-algorithm"),
    ("scheme", "no-common-signature-algorithm"),
    ("group", "no-common-group"),
    ("key share", "no-common-group"),
    ("curve", "no-common-group"),
    ("version", "protocol-version-mismatch"),
    ("cipher suite", "no-common-cipher"),
    ("application protocol", "alpn-mismatch"),
    ("alpn", "alpn-mismatch"),
)

ALPN_CANDIDATES = ("h2", "http/1.1", "http/1.0", "h3", "acme-tls/1", "imap", "pop3",
                   "managesieve", "smtp", "xmpp-client", "xmpp-server", "postgresql", "mqtt",
                   "dot", "coap", "ftp", "grpc-exp")


def negotiated(o: ProbeOutcome) -> bool:
    """The server accepted the ClientHello's parameters (it may still want a client
    certificate: that is decided elsewhere)."""
    return o.ok or o.certificate_request is not None


def client_cert_refusal(o: ProbeOutcome) -> bool:
    """The server asked for a certificate and then refused the connection (alert or
    close after the client's Certificate, or an HTTP-level refusal as nginx does)."""
    if o.certificate_request is None:
        return False
    if o.status in ("alert", "closed"):
        return True
    verdict = (o.after_handshake or "").lower()
    return "certificate" in verdict and (" 400" in verdict or " 403" in verdict or
                                         "required" in verdict)


def local_error_cause(o: ProbeOutcome) -> str | None:
    text = o.detail.lower()
    for word, code in LOCAL_ERROR_CAUSE:
        if word in text:
            return code
    return None


def differing_dimensions(p: ProbeSpec, b: ProbeSpec, check_name_is_ip: bool) -> list[str]:
    dims = []
    below_12 = not ({"TLS 1.3", "TLS 1.2"} & set(p.versions))
    for d in DIMENSION_CAUSE:
        if d == "sni" and check_name_is_ip:
            continue  # no SNI can be sent for an IP literal (RFC 6066 §3) either way
        if d == "signature_algorithms" and below_12:
            continue  # TLS 1.0/1.1 have no signature_algorithms (RFC 5246 §7.4.1.4.1)
        if d == "groups":
            if (p.groups, p.key_shares) != (b.groups, b.key_shares):
                dims.append(d)
        elif getattr(p, d) != getattr(b, d):
            dims.append(d)
    return dims


async def failing_dimensions(runner: ProbeRunner, p: ProbeSpec, b: ProbeSpec, b_out: ProbeOutcome,
                             dims: list[str], label: str) -> tuple[list[str], dict[str, list[ProbeOutcome]]]:
    """The dimensions of ``p`` that make the server refuse it, with the probes that show it."""
    fix_specs = {d: p.with_dimension(d, b, f"{label} with broad {d}",
                                     f"does {label} work with every {d.replace('_', ' ')} tlslab has?")
                 for d in dims}
    break_specs = {d: b.with_dimension(d, p, f"broad with {label}'s {d}",
                                       f"is {label}'s {d.replace('_', ' ')} enough to break it?")
                   for d in dims}
    outs = await runner.run_all(list(fix_specs.values()) + list(break_specs.values()))
    fixed = dict(zip(fix_specs, outs[:len(dims)]))
    broken = dict(zip(break_specs, outs[len(dims):]))
    causes, evidence = [], {}
    for d in dims:
        a, bd = fixed[d], broken[d]
        if negotiated(a) or (negotiated(b_out) and not negotiated(bd) and bd.status != "skipped"):
            causes.append(d)
            evidence[d] = [o for o in (a, bd) if o.status != "skipped"]
    if causes or not dims:
        return causes, evidence
    # no single swap explains it: swap cumulatively, in order, until the server answers
    cur = p
    swapped: list[str] = []
    for d in dims:
        cur = cur.with_dimension(d, b, f"{label} with broad {', '.join(swapped + [d])}",
                                 "which combination of changes makes the server answer?")
        swapped.append(d)
        out = await runner.run(cur)
        if negotiated(out):
            return swapped, {d: [out] for d in swapped}
        if out.status == "skipped":
            break
    return [], {}


def _only(b: ProbeSpec, name: str, purpose: str, **changes: Any) -> ProbeSpec:
    return replace(b, name=name, purpose=purpose, **changes).fixed()


async def accepted_versions(runner: ProbeRunner, b: ProbeSpec) -> dict[str, ProbeOutcome]:
    specs = {v: _only(b, f"only {v}", f"does the server speak {v}?", versions=(v,))
             for v in ("TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0")}
    outs = await runner.run_all(specs.values())
    return dict(zip(specs, outs))


def family_specs(b: ProbeSpec) -> dict[str, ProbeSpec]:
    families: dict[str, list[str]] = {}
    for s in b.cipher_suites:
        families.setdefault(suite_family(s), []).append(s)
    out = {}
    for fam, suites in families.items():
        versions = ("TLS 1.3",) if fam == "TLS 1.3 AEAD" else tuple(
            v for v in b.versions if v != "TLS 1.3")
        out[fam] = _only(b, f"suites: {fam}", f"does the server accept {fam} suites?",
                         cipher_suites=tuple(suites), versions=versions)
    return out


async def accepted_families(runner: ProbeRunner, b: ProbeSpec) -> dict[str, ProbeOutcome]:
    specs = family_specs(b)
    outs = await runner.run_all(specs.values())
    return dict(zip(specs, outs))


async def accepted_groups(runner: ProbeRunner, b: ProbeSpec) -> dict[str, ProbeOutcome]:
    """One probe per group, with only suites whose key exchange uses a group (no static RSA)."""
    suites = tuple(s for s in b.cipher_suites if suite_family(s).split()[0] != "static")
    specs = {g: _only(b, f"only group {g}", f"does the server accept {g}?", groups=(g,),
                      key_shares=(g,), cipher_suites=suites) for g in b.groups}
    outs = await runner.run_all(specs.values())
    return dict(zip(specs, outs))


async def accepted_schemes(runner: ProbeRunner, b: ProbeSpec) -> dict[str, ProbeOutcome]:
    """One probe per signature scheme (RFC 8446 §4.2.3): which ones the server can sign with."""
    specs = {s: _only(b, f"only scheme {s}", f"can the server sign with {s}?",
                      signature_algorithms=(s,)) for s in b.signature_algorithms}
    outs = await runner.run_all(specs.values())
    return dict(zip(specs, outs))


async def accepted_alpn(runner: ProbeRunner, b: ProbeSpec) -> ProbeOutcome:
    return await runner.run(_only(b, "ALPN: many protocols", "which ALPN protocol does the server speak?",
                                  alpn=ALPN_CANDIDATES))


async def gather_dict(coros: dict[str, Any]) -> dict[str, Any]:
    values = await asyncio.gather(*coros.values())
    return dict(zip(coros, values))
