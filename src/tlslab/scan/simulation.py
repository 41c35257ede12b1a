"""The client profiles judged against a scan document, without a new connection.

The scan already knows what the server accepts (versions, suites per version and whether
it imposes its order, groups, DH size, signature schemes, the chains it sends), so each
profile's handshake can be decided on paper, the way a server decides it:

1. the highest version both speak (RFC 8446 §4.2.1; RFC 5246 §7.4.1.3 for TLS 1.2 and
   older) — a client with a version fallback (``fallback_versions``) retries lower ones;
2. a suite both accept at that version, in the server's order when it imposes one, else in
   the client's (RFC 5246 §7.4.1.3, RFC 8446 §4.1.3); an ECDHE suite needs a common curve
   (RFC 8422 §5.1), a DHE group must fit the client's limits (RFC 7919 §1);
3. a group both accept (TLS 1.3: RFC 8446 §4.2.7), a signature scheme both accept (RFC
   8446 §4.2.3; RFC 5246 §7.4.1.4.1), and the TLS 1.0/1.1 key-exchange signature the
   client must accept (RFC 4346 §7.4.3);
4. the chain the server sends for that key type (and without SNI for a client sending
   none), judged with the client's own verifier rules by
   :func:`tlslab.diagnose.chain.analyse_chain`, as ``tlslab simulate`` judges it.

The outcome's ``codes`` use the diagnosis vocabulary (DESIGN.md "Diagnosis vocabulary").
What the scan cannot see (client certificates, the server's reaction to a recorded hello's
exact bytes) is not judged: ``tlslab simulate`` connects for that.
"""
from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..profiles.model import Profile, builtin_profile_names, load_profile
from .registry import suites

#: problems that depend on the trust store rather than on the chain and the client
TRUST_CODES = ("untrusted-root", "self-signed", "missing-intermediate")
#: newest first: the order in which a server looks for a common version
VERSION_ORDER = ("TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0", "SSL 3.0", "SSL 2.0")


@dataclass
class ClientOutcome:
    """One profile's handshake with the scanned server, decided from the document."""

    profile: str
    client: str
    ok: bool
    version: str | None = None
    cipher_suite: str | None = None
    group: str | None = None
    signature_scheme: str | None = None
    codes: list[str] = field(default_factory=list)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "client": self.client,
                "outcome": "ok" if self.ok else "fails", "version": self.version,
                "cipher_suite": self.cipher_suite, "group": self.group,
                "signature_scheme": self.signature_scheme, "codes": list(self.codes),
                "reason": self.reason}


def _suite_table() -> dict[str, Any]:
    return {s.name: s for s in suites().values()}


def _join(items: Iterable[str], limit: int = 4) -> str:
    items = list(items)
    if not items:
        return "none"
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


class Judge:
    """Decides profiles against one document; the chain verdicts are cached per chain
    and verifier (the same chain is judged for ~47 profiles and many what-ifs)."""

    def __init__(self, *, trust: list | None = None, now: datetime.datetime | None = None,
                 check_name: str | None = None, check_certificates: bool = True,
                 trust_known: bool = True) -> None:
        self.trust = trust
        #: False when the trust store the scan judged by is not known here: whether the
        #: chain reaches a trusted root is then the scan's own verdict (the document's
        #: problems), and only what does not depend on trust is judged per profile
        self.trust_known = trust_known
        #: False: the handshake alone (what a finding about suites or versions changes)
        self.check_certificates = check_certificates
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self.check_name = check_name
        self._chains: dict[str, list] = {}
        self._verdicts: dict[tuple, list] = {}
        self._engine_cache: dict = {}

    # ------------------------------------------------------------------ certificates
    def _chain(self, pem: str) -> list:
        if pem not in self._chains:
            from cryptography import x509
            try:
                self._chains[pem] = x509.load_pem_x509_certificates(pem.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                self._chains[pem] = []
        return self._chains[pem]

    def certificate_problems(self, entry: dict, profile: Profile, name: str) -> list[tuple[str, str]]:
        """``(code, summary)`` of what this profile's verifier finds in one chain entry of
        the document: judged afresh from ``pem`` when the scan put the chain there, else
        the reference client's problems, filtered by this profile's tolerances."""
        pem = entry.get("pem")
        chain = self._chain(pem) if isinstance(pem, str) and pem else []
        if chain:
            key = (pem, profile.verifier, name)
            if key not in self._verdicts:
                from ..diagnose.chain import analyse_chain
                problems = analyse_chain(chain, name, self.trust or [], self.now, profile.verifier,
                                         cache=self._engine_cache)
                found = [(p.code, p.summary) for p in problems]
                if not self.trust_known:
                    found = [f for f in found if f[0] not in TRUST_CODES] + [
                        (p.get("code", ""), p.get("summary", "")) for p in entry.get("problems") or []
                        if p.get("code") in TRUST_CODES]
                self._verdicts[key] = found
            return self._verdicts[key]
        out = []
        for p in entry.get("problems") or []:
            if p.get("code") == "sha1-signature" and profile.verifier.sha1_accepted:
                continue  # this client still accepts SHA-1 signatures
            out.append((p.get("code", "untrusted-root"), p.get("summary", "")))
        return out

    # ------------------------------------------------------------------ one profile
    def judge(self, doc: dict, profile: Profile) -> ClientOutcome:
        client = f"{profile.client} {profile.version}".strip()
        server_versions = [v for v in VERSION_ORDER if (doc.get("protocols") or {}).get(v)]
        offered = list(profile.offer.versions)
        tries = [v for v in server_versions if v in offered]
        if not tries:
            return ClientOutcome(profile.name, client, False, codes=["protocol-version-mismatch"],
                                 reason=f"no version in common: it offers {_join(offered)}; the server "
                                        f"accepts {_join(server_versions)}")
        if profile.falls_back and profile.fallback_versions:
            tries += [v for v in server_versions if v in profile.fallback_versions and v not in tries]
        else:
            tries = tries[:1]  # a server answers with the highest common version, once
        first: ClientOutcome | None = None
        for version in tries:
            out = self._at_version(doc, profile, client, version)
            if out.ok:
                return out
            first = first or out
        return first  # type: ignore[return-value]

    def _at_version(self, doc: dict, profile: Profile, client: str, version: str) -> ClientOutcome:
        table = _suite_table()
        part = (doc.get("cipher_suites") or {}).get(version) or {}
        accepted = list(part.get("accepted") or [])
        tls13 = version == "TLS 1.3"
        groups = _groups_for(doc, version)
        common_groups = [g for g in profile.offer.groups if g in groups["accepted"]]
        candidates = [s for s in profile.offer.cipher_suites if s in accepted
                      and ((table[s].kx == "TLS13") == tls13 if s in table else True)]
        if not tls13:
            # an ECDHE suite without a common curve cannot be chosen (RFC 8422 §5.1)
            without_curve = [s for s in candidates if s in table and table[s].kx == "ECDHE"]
            if not common_groups and groups["accepted"]:
                candidates = [s for s in candidates if s not in without_curve]
        if not candidates:
            if not tls13 and not common_groups and groups["accepted"] and any(
                    s in accepted for s in profile.offer.cipher_suites):
                return ClientOutcome(profile.name, client, False, version, codes=["no-common-group"],
                                     reason=f"{version}: its ECDHE suites need a curve it shares with "
                                            f"the server; it offers {_join(profile.offer.groups)}, the "
                                            f"server accepts {_join(groups['accepted'])}")
            return ClientOutcome(profile.name, client, False, version, codes=["no-common-cipher"],
                                 reason=f"{version}: no cipher suite in common; the server accepts "
                                        f"{_join(accepted, 3)}")
        order = list(part.get("order") or []) if part.get("server_order") else []
        suite = next((s for s in order if s in candidates), None) or candidates[0]
        info = table.get(suite)
        kx = info.kx if info else ""
        out = ClientOutcome(profile.name, client, True, version, suite)

        # the key exchange group
        if (tls13 or kx == "ECDHE") and not groups["accepted"]:
            # the document does not say which groups the server takes: the client's first
            out.group = (profile.offer.key_shares or profile.offer.groups or (None,))[0]
        elif tls13 or kx == "ECDHE":
            if not common_groups:
                return _fail(out, "no-common-group", f"{version}: no group in common; it offers "
                             f"{_join(profile.offer.groups)}, the server accepts {_join(groups['accepted'])}")
            g_order = groups["order"] if groups["server_order"] else []
            shared = [g for g in profile.offer.key_shares if g in common_groups]
            out.group = (next((g for g in g_order if g in common_groups), None)
                         or (shared[0] if shared else common_groups[0]))
            if tls13 and out.group not in profile.offer.key_shares and not profile.follows_hrr:
                return _fail(out, "no-common-group", f"the server needs a HelloRetryRequest for "
                             f"{out.group}, which this client does not follow")
        elif kx == "DHE":
            dh = (doc.get("groups") or {}).get("dh_parameters") or {}
            bits = dh.get("bits")
            if bits:
                out.group = dh.get("group") or f"DH {bits}"
                v = profile.verifier
                if v.max_dh_bits and bits > v.max_dh_bits:
                    return _fail(out, "no-common-group", f"the server's DHE group has {bits} bits; "
                                 f"this client can use at most {v.max_dh_bits}")
                if bits < v.min_dh_bits:
                    return _fail(out, "weak-key", f"the server's DHE group has {bits} bits; this "
                                 f"client refuses fewer than {v.min_dh_bits}")

        # the signature over the handshake
        sigs = (doc.get("signature_algorithms") or {}).get(version if tls13 else "TLS 1.2") or []
        auth = "TLS13" if tls13 else (info.auth if info else "")
        if tls13 or (version == "TLS 1.2" and kx in ("ECDHE", "DHE")):
            fitting = [s for s in sigs if tls13 or _fits(s, auth)]
            common = [s for s in profile.offer.signature_algorithms if s in fitting]
            if fitting and not common:
                return _fail(out, "no-common-signature-algorithm", f"{version}: the server signs with "
                             f"{_join(fitting, 3)}; this client offers none of them")
            out.signature_scheme = common[0] if common else None
        elif version in ("TLS 1.0", "TLS 1.1") and kx in ("ECDHE", "DHE") \
                and not profile.verifier.legacy_signatures_accepted:
            return _fail(out, "protocol-version-mismatch", f"{version} signs the key exchange with "
                         "MD5+SHA-1 or SHA-1 (RFC 4346 §7.4.3), which this client refuses")

        # the application protocol: only a client that treats a mismatch as fatal fails
        alpn = (doc.get("alpn") or {}).get("accepted") or []
        if profile.alpn_required and profile.offer.alpn and alpn \
                and not set(profile.offer.alpn) & set(alpn):
            return _fail(out, "alpn-mismatch", f"it offers ALPN {_join(profile.offer.alpn)}; the "
                         f"server speaks {_join(alpn)}")

        # the chain
        entry = _chain_for(doc, version, auth, out.signature_scheme, profile.offer.sni)
        if entry is not None and self.check_certificates:
            name = self.check_name or (doc.get("target") or {}).get("server_name") \
                or (doc.get("target") or {}).get("host") or ""
            problems = self.certificate_problems(entry, profile, name)
            if problems:
                out.ok = False
                out.codes = [c for c, _ in problems]
                out.reason = "; ".join(s for _, s in problems)
                return out
        out.reason = "  ".join(p for p in (version, suite, out.group, out.signature_scheme) if p)
        return out

    def run(self, doc: dict, profiles: list[Profile]) -> list[ClientOutcome]:
        return [self.judge(doc, p) for p in profiles]


def _fail(out: ClientOutcome, code: str, reason: str) -> ClientOutcome:
    out.ok = False
    out.codes = [code]
    out.reason = reason
    return out


def _fits(scheme: str, auth: str) -> bool:
    """Does a TLS 1.2 signature scheme fit a suite's authentication (RFC 5246 §7.4.1.4.1)?"""
    if auth == "RSA":
        return scheme.startswith(("rsa", "RSA"))
    if auth == "ECDSA":
        return scheme.startswith("ecdsa") or scheme in ("ed25519", "ed448")
    if auth == "DSS":
        return scheme.startswith("dsa")
    return True


def _groups_for(doc: dict, version: str) -> dict[str, Any]:
    g = doc.get("groups") or {}
    per = g.get("per_version") or {}
    part = per.get(version)
    if part is None and version != "TLS 1.3":
        # the scan reads groups once for the best of TLS 1.0-1.2; servers use one list for all
        part = next((p for v, p in per.items() if v != "TLS 1.3"), None)
    if part is None:
        part = {"accepted": g.get("accepted") or [], "server_order": g.get("server_order"),
                "order": g.get("order") or []}
    return {"accepted": list(part.get("accepted") or []), "server_order": bool(part.get("server_order")),
            "order": list(part.get("order") or [])}


_FAMILY = {"ecdsa": "ECDSA", "rsa": "RSA", "ed25519": "EdDSA", "ed448": "EdDSA"}


def _chain_for(doc: dict, version: str, auth: str, scheme: str | None, sni: bool) -> dict | None:
    """The chain entry a server would send: found with this version's key type (the scan
    labels each chain with how it was obtained), the no-SNI one for a client without SNI."""
    chains = [c for c in doc.get("certificates") or [] if isinstance(c, dict)]
    if not chains:
        return None
    if not sni:
        bare = next((c for c in chains if "without SNI" in (c.get("found_with") or [])), None)
        if bare is not None:
            return bare
    if version == "TLS 1.3":
        family = _FAMILY.get((scheme or "").split("_")[0], "")
        label = f"TLS 1.3 {family} signatures"
    else:
        label = f"{version} {auth} suites"
    hit = next((c for c in chains if label in (c.get("found_with") or [])), None)
    if hit is not None:
        return hit
    want = {"RSA": "RSA", "ECDSA": "ECDSA", "EdDSA": "Ed"}.get(
        _FAMILY.get((scheme or "").split("_")[0], auth), "")
    for c in chains:
        leaf = (c.get("certificates") or [{}])[0]
        if want and str(leaf.get("key", "")).startswith(want):
            return c
    return chains[0]


# ---------------------------------------------------------------------- what-ifs
def without_versions(doc: dict, versions: Iterable[str]) -> dict:
    """``doc`` as if the server had these versions turned off."""
    out = copy.deepcopy(doc)
    for v in versions:
        (out.setdefault("protocols", {}))[v] = False
        (out.get("cipher_suites") or {}).pop(v, None)
    return out


def without_suites(doc: dict, drop: Callable[[str], bool]) -> dict:
    """``doc`` as if the server had the suites ``drop`` names removed; a version left with
    no suite is off."""
    out = copy.deepcopy(doc)
    for v, part in list((out.get("cipher_suites") or {}).items()):
        part["accepted"] = [s for s in part.get("accepted") or [] if not drop(s)]
        part["order"] = [s for s in part.get("order") or [] if not drop(s)]
        if not part["accepted"]:
            out["protocols"][v] = False
    return out


def with_versions(doc: dict, versions: Iterable[str], suites_by_version: dict[str, list[str]]) -> dict:
    """``doc`` as if these versions were turned on with these suites."""
    out = copy.deepcopy(doc)
    for v in versions:
        out.setdefault("protocols", {})[v] = True
        out.setdefault("cipher_suites", {})[v] = {"accepted": list(suites_by_version.get(v, [])),
                                                  "server_order": False, "order": []}
        if v == "TLS 1.3":
            _tls13_defaults(out)
    return out


def _tls13_defaults(doc: dict) -> None:
    """What a server turning TLS 1.3 on gets from its library: the common groups (RFC 8446
    §9.1: secp256r1 is mandatory, x25519 recommended) and the schemes of its key."""
    groups = doc.setdefault("groups", {})
    per = groups.setdefault("per_version", {})
    if not (per.get("TLS 1.3") or {}).get("accepted"):
        per["TLS 1.3"] = {"accepted": ["x25519", "secp256r1", "secp384r1"], "server_order": False, "order": []}
    sigs = doc.setdefault("signature_algorithms", {})
    if not sigs.get("TLS 1.3"):
        keys = [str(((c.get("certificates") or [{}])[0]).get("key", ""))
                for c in doc.get("certificates") or []]
        schemes = []
        if any(k.startswith("RSA") for k in keys) or not keys:
            schemes += ["rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512"]
        for k, s in (("ECDSA P-256", "ecdsa_secp256r1_sha256"), ("ECDSA P-384", "ecdsa_secp384r1_sha384"),
                     ("ECDSA P-521", "ecdsa_secp521r1_sha512"), ("Ed25519", "ed25519"), ("Ed448", "ed448")):
            if k in keys:
                schemes.append(s)
        sigs["TLS 1.3"] = schemes


def all_profiles() -> list[Profile]:
    return [load_profile(n) for n in builtin_profile_names()]


def simulate_document(doc: dict, profiles: list[Profile] | None = None, *, trust: list | None = None,
                      now: datetime.datetime | None = None) -> list[dict]:
    """Every profile's outcome against ``doc`` as JSON (``doc["simulation"]``'s entries)."""
    judge = Judge(trust=trust, now=now)
    return [o.to_json() for o in judge.run(doc, profiles or all_profiles())]
