"""The adaptive plan of ``tlslab diagnose``: probes in, causes out.

1. In parallel: the user's ClientHello (per profile), a broad one, one per TLS version,
   the weak options worth a warning (static RSA, 3DES), and every other built-in profile.
2. Transport first: nothing listening, silence, or an answer that is not TLS end it.
3. For each profile that is refused: which dimensions of its ClientHello cause it
   (:mod:`.negotiation`), then what the server accepts on those dimensions (evidence).
4. Client certificates: a CertificateRequest followed by a refusal (an alert after the
   client's empty Certificate or Finished, a close, or nginx's HTTP 400).
5. The chain as sent, judged for each profile (:mod:`.chain`); a missing intermediate is
   fetched from its AIA URL.
6. Warnings: what does not break this client (old versions, static RSA, 3DES, expiry soon).

The whole plan is bounded by one deadline and ~40 handshakes (:class:`ProbeRunner`).
"""
from __future__ import annotations

import asyncio
import datetime
import time
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509

from ..probe import ProbeOutcome, ProbeRunner, ProbeSpec, broad_spec, is_ip, spec_from_profile, suite_family
from ..profiles import Profile, load_profile
from . import aia
from .chain import analyse_chain, expiry_warning, sha1_in_chain
from .fixes import fixes_for
from .negotiation import (ALERT_CAUSE, DIMENSION_CAUSE, accepted_alpn, accepted_families,
                          accepted_groups, accepted_schemes, accepted_versions, client_cert_refusal,
                          differing_dimensions, failing_dimensions, local_error_cause, negotiated)
from .report import Cause, Report, Warning_

MAX_HANDSHAKES = 40
#: the clients a report compares with ("fine for curl; fails for browsers"); the whole
#: library is `tlslab simulate`'s
REFERENCE_PROFILES = ("default", "browser", "tls12-only", "no-sni", "alpn-http")
_TRANSPORT = ("refused", "unreachable", "timeout", "not-tls")


@dataclass
class Target:
    """Where and what to diagnose.  ``server_name`` is the name checked against the
    certificate (a DNS name or an IP literal) and sent as SNI when it is a DNS name."""

    host: str
    port: int
    server_name: str
    trust: list
    ca_file: str | None = None
    certificate_chain: list | None = None
    private_key: Any = None
    timeout: float = 5.0
    write_chain: str | None = None
    fetch_aia: bool = True

    @property
    def text(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _short(items, limit: int = 6) -> str:
    items = list(items)
    if not items:
        return "none"
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _families(suites) -> list[str]:
    out: list[str] = []
    for s in suites:
        f = suite_family(s)
        if f not in out:
            out.append(f)
    return out


class Diagnosis:
    """One run of the plan (holds the runner, the shared probes and the report)."""

    def __init__(self, target: Target, profiles: list[Profile], now: datetime.datetime | None = None,
                 *, other_profiles: bool = True, max_handshakes: int = MAX_HANDSHAKES):
        self.target = target
        self.profiles = profiles
        self.other_profiles = other_profiles
        #: each profile's own causes (the report merges them by code) and own handshake
        self.per_profile: dict[str, list[Cause]] = {p.name: [] for p in profiles}
        self.profile_outcomes: dict[str, ProbeOutcome] = {}
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self.start = time.monotonic()
        self.runner = ProbeRunner(target.host, target.port, target.server_name,
                                  deadline=self.start + target.timeout,
                                  max_handshakes=max_handshakes,
                                  certificate_chain=target.certificate_chain,
                                  private_key=target.private_key)
        self.ip_name = is_ip(target.server_name)
        self.broad = broad_spec()
        self.report = Report(target=target.text, server_name=target.server_name,
                             profiles=[p.name for p in profiles])
        self.context: dict[str, Any] = {"host": target.server_name, "port": target.port,
                                        "address": target.host,
                                        "ca_file": target.ca_file or "ca.pem",
                                        "chain_file": target.write_chain or "fullchain.pem"}
        self._versions: dict[str, ProbeOutcome] = {}
        self._aia_cache: dict[str, dict] = {}
        #: the engine's verdict on each chain, shared by the profiles judged in this run
        self._chain_cache: dict = {}

    # ------------------------------------------------------------------ the plan
    async def run(self) -> Report:
        r = self.runner
        mains = {p.name: spec_from_profile(p) for p in self.profiles}
        others = [load_profile(n) for n in REFERENCE_PROFILES
                  if n not in mains] if self.other_profiles else []
        weak = self._weak_specs()
        main_tasks = {n: asyncio.ensure_future(r.run(s)) for n, s in mains.items()}
        broad_task = asyncio.ensure_future(r.run(self.broad))
        versions_task = asyncio.ensure_future(accepted_versions(r, self.broad))
        weak_tasks = {k: asyncio.ensure_future(r.run(s)) for k, s in weak.items()}
        first = await main_tasks[self.profiles[0].name]
        self.profile_outcomes[self.profiles[0].name] = first
        if first.status in _TRANSPORT or (first.status == "closed" and not first.received_bytes):
            b_out = await broad_task
            if self._transport_cause(first, b_out):
                await self._settle(broad_task, versions_task, *weak_tasks.values())
                return self._finish()
        b_out = await broad_task
        self._versions = await versions_task
        outs = {p.name: await main_tasks[p.name] for p in self.profiles}
        self.profile_outcomes.update(outs)
        await asyncio.gather(*(self._judge(p, mains[p.name], outs[p.name], b_out)
                               for p in self.profiles))
        weak_outs = {k: await t for k, t in weak_tasks.items()}
        self._warnings(weak_outs)
        # the other reference clients come last: they must not take the budget the
        # analysis of the user's own client needs
        other_outs = await r.run_all(spec_from_profile(q) for q in others)
        for q, q_out in zip(others, other_outs):
            self.report.other_profiles.append(await self._other(q, q_out, b_out))
        return self._finish()

    async def _settle(self, *tasks) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    def _finish(self) -> Report:
        rep = self.report
        if not rep.causes:
            names = ", ".join(p.name for p in self.profiles)
            rep.causes.append(Cause("ok", f"The handshake completes and the certificate verifies "
                                          f"for {names}.", {"profiles": [p.name for p in self.profiles]},
                                    [], [p.name for p in self.profiles]))
        rep.sort()
        for c in rep.causes:
            if c.code != "ok" and not c.fixes:
                c.fixes = fixes_for(c.code, self.context)
        rep.handshakes = list(self.runner.outcomes)
        rep.elapsed_ms = (time.monotonic() - self.start) * 1000
        return rep

    def _weak_specs(self) -> dict[str, ProbeSpec]:
        b = self.broad
        old = tuple(v for v in b.versions if v != "TLS 1.3")
        rsa = tuple(s for s in b.cipher_suites if suite_family(s) in ("static RSA AEAD", "static RSA CBC"))
        des = tuple(s for s in b.cipher_suites if "3DES" in s)
        out = {}
        if rsa:
            out["rsa-kx"] = replace(b, name="static RSA only", versions=old, cipher_suites=rsa,
                                    purpose="does the server accept static RSA key exchange?")
        if des:
            out["3des"] = replace(b, name="3DES only", versions=old, cipher_suites=des,
                                  purpose="does the server accept 3DES (SWEET32)?")
        return out

    # ------------------------------------------------------------------ transport
    def _transport_cause(self, first: ProbeOutcome, b_out: ProbeOutcome) -> bool:
        t = self.target
        ev = {"probe": first.spec.name, "outcome": first.outcome_text()}
        if first.status == "refused":
            self._cause("connection-refused", f"Nothing accepts TCP connections on {t.text}: "
                        "the connection was refused (no service on this port, or a firewall "
                        "rejecting it).", ev)
        elif first.status == "unreachable":
            self._cause("connection-refused", f"Cannot connect to {t.text}: {first.detail}.", ev)
        elif first.status == "timeout":
            if first.received_bytes:
                return False
            self._cause("timeout", f"{t.text} accepted no TLS handshake within {t.timeout:g} s: "
                        + ("the TCP connection was never established (filtered port?)."
                           if "TCP" in first.detail else
                           "the TCP connection opened but the server never answered the ClientHello."),
                        ev)
        elif first.status == "not-tls":
            ev["first_bytes_hex"] = first.first_bytes[:64].hex()
            ev["first_bytes_text"] = first.first_bytes[:200].decode("latin-1", "replace")
            head = first.first_bytes[:8]
            # STARTTLS advice fits a banner (SMTP, IMAP, POP3, SSH), not an HTTP answer
            self.context["when"] = ("http-answer" if head.startswith(b"HTTP/") or head[:1] == b"<"
                                    else "banner" if head[:3].isdigit() or head[:1] in (b"*", b"+")
                                    or head.startswith(b"SSH-") else None)
            self._cause("not-tls", f"{t.text} does not speak TLS: it looks like "
                        f"{first.detail}.", ev)
        elif first.status == "closed" and not negotiated(b_out) and not b_out.received_bytes:
            self._cause("not-tls", f"{t.text} closes the connection on every ClientHello without "
                        "any TLS answer (no ServerHello, no alert"
                        + (", reset" if first.detail == "reset" else "")
                        + "): it does not seem to speak TLS on this port, or something in between "
                        "cuts TLS connections.", ev)
        else:
            return False
        return True

    # ------------------------------------------------------------------ per profile
    async def _judge(self, profile: Profile, p: ProbeSpec, p_out: ProbeOutcome,
                     b_out: ProbeOutcome) -> None:
        chain_source = p_out
        if negotiated(p_out):
            if client_cert_refusal(p_out):
                self._client_cert_cause(profile, p_out)
            self._dh_size(profile, p_out)
            self._legacy_signature(profile, p_out)
        else:
            chain_source = await self._refused(profile, p, p_out, b_out)
            if chain_source is not None and client_cert_refusal(chain_source):
                # once its ClientHello is fixed, this client meets the certificate demand too
                self._client_cert_cause(profile, chain_source)
        chain = chain_source.peer_certificates if chain_source is not None else []
        if chain:
            await self._certificate_causes(profile, chain)
            if (p_out.certificate_request is not None and not client_cert_refusal(p_out) and p_out.ok
                    and not p_out.client_certificate_sent):
                self._warn("client-certificate-optional",
                           "The server asks for a client certificate but accepts connections "
                           "without one.", {"certificate_request": p_out.certificate_request.to_json()})

    async def _refused(self, profile: Profile, p: ProbeSpec, p_out: ProbeOutcome,
                       b_out: ProbeOutcome) -> ProbeOutcome | None:
        """Causes of a refused ClientHello; returns a probe that got the chain, if any."""
        r, label = self.runner, profile.name
        reference = b_out if negotiated(b_out) else next(
            (o for o in self._versions.values() if negotiated(o)), None)
        if reference is None:
            fams = await accepted_families(r, self.broad)
            reference = next((o for o in fams.values() if negotiated(o)), None)
        codes: dict[str, list[ProbeOutcome]] = {}
        recorded_only = False
        if p.client_hello is not None:
            # the swaps below build hellos from the profile's lists: first see whether the
            # same lists, built by tlslab, fail too; if not, what fails is in the recorded
            # bytes themselves (an extension, an order, a value tlslab does not model)
            built = replace(p, client_hello=None, name=f"{label} built from its lists",
                            purpose="does the same offer fail when tlslab builds the hello?")
            built_out = await r.run(built)
            if negotiated(built_out):
                recorded_only = True
                reference = built_out
            else:
                p = built
        if reference is not None and not recorded_only:
            dims = differing_dimensions(p, reference.spec, self.ip_name)
            found, evidence = await failing_dimensions(r, p, reference.spec, reference, dims, label)
            for d in found:
                codes[DIMENSION_CAUSE[d]] = evidence.get(d, [])
        direct = ALERT_CAUSE.get(p_out.alert_received or "")
        if p_out.status == "local-error":
            direct = local_error_cause(p_out) or direct
        if direct and direct not in codes and (not codes or direct != "client-certificate-required"):
            codes[direct] = []
        if not codes and reference is None and p_out.status == "local-error" and not p_out.alert_received:
            # nothing negotiates and tlslab itself rejects every answer as malformed: the
            # server speaks something TLS-like that is not TLS (or is badly broken)
            t = self.target
            self._cause("not-tls", f"{t.text} answers with records that are not valid TLS: "
                        f"tlslab rejects them ({p_out.detail}; sent alert {p_out.alert_sent}).",
                        {"probe": p_out.spec.name, "outcome": p_out.outcome_text(),
                         "first_bytes_hex": p_out.first_bytes[:64].hex()}, profile.name)
            return None
        if not codes:
            # refused, and no single parameter explains it: the suites are the usual reason
            codes["no-common-cipher"] = []
        if recorded_only:
            self.report.notes.append(
                f"{label}: its recorded ClientHello fails ({p_out.outcome_text()}) while the same "
                "offer built by tlslab works; the cause is in the recorded bytes, and tlslab's "
                "replay of them may differ from the real client there")
        for code, outs in codes.items():
            await self._negotiation_cause(code, profile, p, p_out, reference, outs)
        good = [o for outs in codes.values() for o in outs if negotiated(o) and o.peer_certificates]
        return good[0] if good else reference

    async def _negotiation_cause(self, code: str, profile: Profile, p: ProbeSpec, p_out: ProbeOutcome,
                                 reference: ProbeOutcome | None, outs: list[ProbeOutcome]) -> None:
        label, r = profile.name, self.runner
        ev: dict[str, Any] = {"refusal": {"probe": p_out.spec.name, "outcome": p_out.outcome_text(),
                                          "alert_received": p_out.alert_received,
                                          "alert_sent": p_out.alert_sent,
                                          "after": p_out.failed_after},
                              "deciding_probes": [{"probe": o.spec.name, "outcome": o.outcome_text()}
                                                  for o in outs]}
        nothing = reference is None
        if code == "protocol-version-mismatch":
            accepted = [v for v, o in self._versions.items() if negotiated(o)]
            ev.update(client_offers=list(p.versions), server_accepts=accepted)
            self.context["versions"] = ", ".join(accepted) or "none of TLS 1.0-1.3"
            order = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
            if accepted:
                newer = max(order.index(v) for v in accepted) > max(
                    (order.index(v) for v in p.versions if v in order), default=-1)
                # the fix differs: enable the newer version on the client, or upgrade the server
                self.context["when"] = "server-newer" if newer else "server-older"
            summary = (f"No TLS version in common: {label} offers {_short(p.versions)}; the server "
                       f"accepts only {_short(accepted) if accepted else 'none of TLS 1.0-1.3 as tlslab offers them'}.")
        elif code == "no-common-cipher":
            fams = await accepted_families(r, self.broad)
            accepted = {f: o.cipher_suite for f, o in fams.items() if negotiated(o)}
            ev.update(client_offers=_families(p.cipher_suites), server_accepts=accepted)
            self.context["suites"] = ", ".join(v for v in accepted.values() if v) or "none"
            if nothing and not accepted:
                summary = (f"The server refuses every ClientHello tlslab can build (TLS 1.0-1.3, "
                           f"{len(self.broad.cipher_suites)} suites, {len(self.broad.groups)} groups): "
                           "no suite it enables is usable, either because it is misconfigured "
                           "(e.g. an ECDSA certificate with only RSA suites enabled, or DHE "
                           "suites without DH parameters) or because it accepts only parameters "
                           "outside tlslab's engine (CAMELLIA, ARIA or CCM suites, brainpool "
                           "groups, SSL 3.0).")
            elif accepted:
                chosen = [f"{suite} ({fam})" for fam, suite in accepted.items() if suite]
                summary = (f"No cipher suite in common: the server accepts {_short(chosen, 4)} "
                           f"and the like; {label} offers none of them "
                           f"(its {len(p.cipher_suites)} suites: {_short(_families(p.cipher_suites), 4)}).")
            else:
                summary = (f"No cipher suite in common: the server accepts only suites outside "
                           f"what tlslab offers; {label} offers {_short(_families(p.cipher_suites))}.")
        elif code == "no-common-group":
            groups = await accepted_groups(r, self.broad)
            accepted = [g for g, o in groups.items() if negotiated(o)]
            ev.update(client_offers=list(p.groups), server_accepts=accepted)
            self.context["groups"] = ", ".join(accepted) or "none"
            summary = (f"No key exchange group in common: the server accepts only "
                       f"{_short(accepted) if accepted else 'groups tlslab does not offer'}; "
                       f"{label} offers {_short(p.groups)}.")
        elif code == "no-common-signature-algorithm":
            ref = reference or p_out
            leaf = ref.peer_certificates[0] if ref.peer_certificates else None
            key = _key_text(leaf)
            schemes = await accepted_schemes(r, self.broad)
            ev.update(client_offers=list(p.signature_algorithms), server_key=key,
                      server_signed_with=ref.signature_scheme if reference else None,
                      server_can_sign_with=[s for s, o in schemes.items() if negotiated(o)])
            if p_out.status == "local-error":
                ev["tlslab_refused"] = p_out.detail
                summary = (f"The server signs with a scheme {label} cannot accept: {p_out.detail}.")
            else:
                used = f", which signs with {ref.signature_scheme}" if reference and ref.signature_scheme else ""
                can = ev["server_can_sign_with"]
                article = "an" if key[:1].upper() in "AEIOU" else "a"
                more = can and can != [ref.signature_scheme]
                summary = (f"No signature scheme in common: the server's certificate has {article} "
                           f"{key} key{used}" + (f" (it can sign with {_short(can, 4)})" if more else "")
                           + f"; {label} offers {_short(p.signature_algorithms, 4)} and none "
                           "fits that key.")
            self.context["sigalgs"] = ref.signature_scheme or key
        elif code == "sni-required":
            sent = p.sni and not self.ip_name
            ev["sni_sent"] = sent
            alert = f": alert {p_out.alert_received}." if p_out.alert_received else "."
            if sent:
                summary = (f"The server does not serve the name {self.target.server_name!r} that "
                           f"{label} sends in server_name (SNI){alert} It serves other names only.")
            else:
                why = (f" ({self.target.server_name} is an IP address, and SNI cannot carry one: "
                       "RFC 6066 §3)" if self.ip_name else f" ({label} sends none)")
                summary = (f"The server requires the server_name (SNI) extension and refuses a "
                           f"ClientHello without it{why}{alert}")
        elif code == "alpn-mismatch":
            alpn_out = await accepted_alpn(r, self.broad)
            speaks = alpn_out.alpn if negotiated(alpn_out) else None
            ev.update(client_offers=list(p.alpn), server_speaks=speaks)
            summary = (f"No application protocol in common: {label} offers ALPN "
                       f"{_short(p.alpn)}, and the server refuses them"
                       + (f" with alert {p_out.alert_received}" if p_out.alert_received else "")
                       + (f"; it speaks {speaks}." if speaks else "."))
        elif code == "client-certificate-required":
            self._client_cert_cause(profile, p_out)
            return
        else:
            summary = p_out.outcome_text()
        self._cause(code, summary, ev, profile.name)

    def _client_cert_cause(self, profile: Profile, o: ProbeOutcome) -> None:
        cr = o.certificate_request
        ev: dict[str, Any] = {"probe": o.spec.name, "outcome": o.outcome_text(),
                              "certificate_request": cr.to_json() if cr else None,
                              "client_certificate_sent": o.client_certificate_sent}
        cas = f" issued by {_short(cr.ca_names, 3)}" if cr and cr.ca_names else ""
        how = (f"alert {o.alert_received} after {o.failed_after}" if o.alert_received else
               o.after_handshake or f"closed the connection after {o.failed_after}")
        if o.client_certificate_sent:
            summary = (f"The server asks for a client certificate{cas} ({cr.version if cr else ''}) "
                       f"and rejects the one sent ({how}).")
        else:
            summary = (f"The server requires a client certificate{cas} ({cr.version if cr else ''} "
                       f"CertificateRequest); {profile.name} sent none and the server refused: {how}.")
        self._cause("client-certificate-required", summary, ev, profile.name)

    def _legacy_signature(self, profile: Profile, o: ProbeOutcome) -> None:
        """TLS 1.0/1.1 sign the key exchange with MD5+SHA-1 (RSA) or SHA-1 (ECDSA), RFC 4346
        §7.4.3; clients such as OpenSSL 3 offer those versions but refuse the signature."""
        if (profile.verifier.legacy_signatures_accepted or o.version not in ("TLS 1.0", "TLS 1.1")
                or not o.cipher_suite or "DHE_" not in o.cipher_suite):
            return  # a static RSA key exchange carries no signature
        self._cause("protocol-version-mismatch",
                    f"The server negotiates {o.version} at most and signs its key exchange the "
                    f"{o.version} way (MD5+SHA-1 or SHA-1); {profile.name} offers {o.version} but "
                    "refuses such signatures (OpenSSL 3: 'legacy sigalg disallowed or "
                    "unsupported'), so it fails.",
                    {"probe": o.spec.name, "outcome": o.outcome_text(), "version": o.version,
                     "cipher_suite": o.cipher_suite}, profile.name)

    def _dh_size(self, profile: Profile, o: ProbeOutcome) -> None:
        """The server's DHE group against the client's limits (RFC 7919 §1: clients cap
        or floor the size; Java 7 and older cannot go past 1024 bits)."""
        bits, v = o.dh_bits, profile.verifier
        if bits is None:
            return
        ev = {"probe": o.spec.name, "cipher_suite": o.cipher_suite, "dh_bits": bits,
              "client_min_dh_bits": v.min_dh_bits, "client_max_dh_bits": v.max_dh_bits or None}
        if v.max_dh_bits and bits > v.max_dh_bits:
            self._cause("no-common-group", f"The server's DHE group has {bits} bits; {profile.name} "
                        f"can use at most {v.max_dh_bits} (it fails generating its DH key pair).",
                        ev, profile.name)
        elif bits < v.min_dh_bits:
            self._cause("weak-key", f"The server's DHE group has only {bits} bits; {profile.name} "
                        f"refuses fewer than {v.min_dh_bits}.", ev, profile.name)

    # ------------------------------------------------------------------ certificates
    async def _certificate_causes(self, profile: Profile, chain: list) -> None:
        t = self.target
        from ..proto.certificates import describe_certificate
        if not self.report.chain:
            self.report.chain = [describe_certificate(c) for c in chain]
        problems = analyse_chain(chain, t.server_name, t.trust, self.now, profile.verifier,
                                  cache=self._chain_cache)
        for pr in problems:
            pr.evidence.setdefault("chain_as_sent", [c.subject.rfc4514_string() for c in chain])
            if pr.code == "missing-intermediate":
                rescued = await self._missing_intermediate(pr, chain, profile)
                if rescued:
                    self._warn("missing-intermediate-fetched",
                               f"{pr.summary} {profile.name} fetches it from the AIA URL and "
                               "connects, but clients that do not fetch (Java, curl, Python, "
                               "Go, Node) fail.", pr.evidence)
                    continue
            if pr.code == "hostname-mismatch":
                names = [n.split(":", 1)[1] for n in pr.evidence.get("names_present") or []
                         if n.startswith("DNS:") and "*" not in n]
                if names:
                    self.context["cert_name"] = names[0]
            if pr.code in ("untrusted-root", "self-signed"):
                self.context["ca_file"] = t.ca_file or "the-ca.pem"
            self._cause(pr.code, pr.summary, pr.evidence, profile.name)
        warn = expiry_warning(chain, self.now)
        if warn and not any(pr.code == "expired" for pr in problems):
            self._warn("expires-soon", f"The certificate {warn['subject']} expires in "
                       f"{warn['expires_in']} ({warn['not_after'][:10]}).", warn)
        sha1 = sha1_in_chain(chain)
        if sha1 and profile.verifier.sha1_accepted:
            self._warn("sha1-signature", f"SHA-1 signatures in the chain ({_short(sha1, 2)}): "
                       f"{profile.name} accepts them, current clients do not.", {"certificates": sha1})

    async def _missing_intermediate(self, pr, chain: list, profile: Profile) -> bool:
        """Fetch the issuer from the AIA URL and check it completes the chain; True when
        this profile itself would do the same and connect."""
        urls = pr.evidence.get("aia_ca_issuers") or []
        if not urls or not self.target.fetch_aia:
            pr.evidence["aia_fetch"] = {"fetched": False, "reason": "no caIssuers URL in the certificate"
                                        if not urls else "fetching disabled"}
            return False
        url = urls[0]
        fetch = self._aia_cache.get(url)
        if fetch is None:
            remaining = max(min(2.0, self.runner.remaining()), 0.2)
            try:
                certs = await aia.fetch_certificates(url, remaining)
            except aia.FetchError as e:
                fetch = {"url": url, "fetched": False, "reason": str(e)}
            else:
                full = list(chain) + [c for c in certs if c not in chain]
                leftover = analyse_chain(full, self.target.server_name, self.target.trust, self.now,
                                         profile.verifier)
                completes = not any(p.code in ("missing-intermediate", "untrusted-root") for p in leftover)
                fetch = {"url": url, "fetched": True,
                         "certificates": [c.subject.rfc4514_string() for c in certs],
                         "completes_chain": completes,
                         "remaining_problems": [p.code for p in leftover]}
                if completes and self.target.write_chain:
                    self._write_chain(full)
                    fetch["written_to"] = self.target.write_chain
            self._aia_cache[url] = fetch
        pr.evidence["aia_fetch"] = fetch
        if fetch.get("fetched") and fetch.get("completes_chain"):
            pr.summary += " It can be fetched from there and completes the chain."
        return bool(profile.verifier.aia_fetching and fetch.get("completes_chain"))

    def _write_chain(self, chain: list) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding
        # the server sends the leaf then the intermediates, not the root (RFC 8446 §4.4.2)
        to_send = [c for c in chain if c.subject != c.issuer or c is chain[0]]
        data = b"".join(c.public_bytes(Encoding.PEM) for c in to_send)
        with open(self.target.write_chain, "wb") as f:
            f.write(data)
        self.report.written_chain = self.target.write_chain
        self.context["chain_file"] = self.target.write_chain

    # ------------------------------------------------------------------ warnings
    def _warnings(self, weak: dict[str, ProbeOutcome]) -> None:
        for v in ("TLS 1.0", "TLS 1.1"):
            o = self._versions.get(v)
            if o is not None and negotiated(o):
                self._warn("old-version", f"The server still accepts {v} (deprecated by RFC 8996).",
                           {"probe": o.spec.name, "outcome": o.outcome_text()})
        o = weak.get("rsa-kx")
        if o is not None and negotiated(o):
            self._warn("static-rsa", "The server accepts static RSA key exchange "
                       f"({o.cipher_suite}): no forward secrecy, and a Bleichenbacher (ROBOT) risk.",
                       {"probe": o.spec.name, "outcome": o.outcome_text()})
        o = weak.get("3des")
        if o is not None and negotiated(o):
            self._warn("3des", f"The server accepts 3DES ({o.cipher_suite}): 64-bit blocks (SWEET32).",
                       {"probe": o.spec.name, "outcome": o.outcome_text()})

    # ------------------------------------------------------------------ other profiles
    async def _other(self, q: Profile, q_out: ProbeOutcome, b_out: ProbeOutcome) -> dict[str, Any]:
        entry: dict[str, Any] = {"profile": q.name, "summary": q.summary}
        codes: list[str] = []
        if negotiated(q_out):
            if client_cert_refusal(q_out):
                codes.append("client-certificate-required")
            if q_out.peer_certificates:
                codes += [p.code for p in analyse_chain(q_out.peer_certificates, self.target.server_name,
                                                        self.target.trust, self.now, q.verifier,
                                                        cache=self._chain_cache)]
        elif q_out.status in _TRANSPORT or q_out.status == "skipped":
            codes.append(q_out.status)
        else:
            direct = ALERT_CAUSE.get(q_out.alert_received or "")
            if direct:
                codes.append(direct)
            if negotiated(b_out):
                q_spec = spec_from_profile(q)
                for d in differing_dimensions(q_spec, b_out.spec, self.ip_name):
                    code = DIMENSION_CAUSE[d]
                    if code in codes:
                        continue
                    o = await self.runner.run(b_out.spec.with_dimension(
                        d, q_spec, f"broad with {q.name}'s {d}", f"is {q.name}'s {d} enough to break it?"))
                    if o.status != "skipped" and not negotiated(o):
                        codes.append(code)
            if not codes:
                codes.append(local_error_cause(q_out) or "no-common-cipher")
            if b_out.peer_certificates:
                codes += [p.code for p in analyse_chain(b_out.peer_certificates, self.target.server_name,
                                                        self.target.trust, self.now, q.verifier,
                                                        cache=self._chain_cache)
                          if p.code not in codes]
        if "missing-intermediate" in codes and q.verifier.aia_fetching and any(
                f.get("completes_chain") for f in self._aia_cache.values()):
            codes.remove("missing-intermediate")  # this client fetches it, as the AIA URL allows
        entry["works"] = not codes
        entry["causes"] = codes
        entry["handshake"] = q_out.outcome_text()  # the handshake alone (its chain is judged above)
        return entry

    # ------------------------------------------------------------------ helpers
    def _cause(self, code: str, summary: str, evidence: dict, profile: str | None = None) -> None:
        profiles = [profile] if profile else [p.name for p in self.profiles]
        for name in profiles:
            own = self.per_profile.setdefault(name, [])
            if not any(c.code == code for c in own):
                own.append(Cause(code, summary, evidence, [], [name]))
        self.report.add_cause(Cause(code, summary, evidence, [], profiles))

    def _warn(self, code: str, summary: str, evidence: dict) -> None:
        if not any(w.code == code and w.summary == summary for w in self.report.warnings):
            self.report.warnings.append(Warning_(code, summary, evidence))


def _key_text(cert: x509.Certificate | None) -> str:
    if cert is None:
        return "unknown"
    from ..proto.certificates import describe_certificate
    return describe_certificate(cert)["key"]


async def diagnose(target: Target, profiles: list[Profile],
                   now: datetime.datetime | None = None) -> Report:
    """Run the plan against ``target`` for ``profiles`` (the first is the user's client)."""
    return await Diagnosis(target, profiles, now).run()
