"""What a probe offers: a client configuration, by dimension.

A probe varies the ClientHello along a few *dimensions* (versions, cipher suites, groups,
signature schemes, SNI, ALPN), so that a diagnosis can swap one dimension between the
user's client and a "broad" client that offers everything the engine can build, and see
which swap makes the server answer (DESIGN.md "Packages": probe/).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..proto.client_hello import is_ip  # noqa: F401 (the one definition; re-exported by probe)

#: the dimensions a probe can vary; diagnose maps each to one cause code
DIMENSIONS = ("versions", "cipher_suites", "groups", "signature_algorithms", "sni", "alpn")


@dataclass(frozen=True)
class ProbeSpec:
    """One ClientHello to try.  Names are IANA names, as in :class:`ClientConfig`.

    ``sni``: send server_name (only possible for a DNS name, RFC 6066 §3).
    ``purpose``: one line saying why the plan runs it (shown with the outcome).
    """

    name: str
    versions: tuple[str, ...]
    cipher_suites: tuple[str, ...]
    groups: tuple[str, ...]
    key_shares: tuple[str, ...]
    signature_algorithms: tuple[str, ...]
    alpn: tuple[str, ...] = ()
    sni: bool = True
    purpose: str = ""
    #: a recorded ClientHello (handshake message) sent byte for byte instead of one built
    #: from the lists above (which then only describe it); see ClientConfig.client_hello_template
    client_hello: bytes | None = None
    #: accept PKCS#1 in a TLS 1.3 CertificateVerify (a client that does, e.g. JSSE 17)
    tls13_pkcs1: bool = False

    def key(self) -> tuple:
        """Identity of the ClientHello (two probes with the same key are one probe)."""
        return (self.versions, self.cipher_suites, self.groups, self.key_shares,
                self.signature_algorithms, self.alpn, self.sni, self.client_hello, self.tls13_pkcs1)

    def with_dimension(self, dim: str, other: "ProbeSpec", name: str, purpose: str) -> "ProbeSpec":
        """This spec with dimension ``dim`` taken from ``other``."""
        # a changed hello is built from the lists: the recording no longer describes it
        changes: dict[str, Any] = {dim: getattr(other, dim), "name": name, "purpose": purpose,
                                   "client_hello": None}
        if dim == "groups":
            changes["key_shares"] = other.key_shares
        spec = replace(self, **changes)
        return spec.fixed()

    def fixed(self) -> "ProbeSpec":
        """Key shares kept among the offered groups (else the first offered group)."""
        shares = tuple(g for g in self.key_shares if g in self.groups) or self.groups[:1]
        return replace(self, key_shares=shares) if shares != self.key_shares else self

    def client_config_kwargs(self, server_name: str | None) -> dict[str, Any]:
        """Keyword arguments of :class:`~tlslab.proto.config.ClientConfig`.  The probe never
        verifies (``insecure``): it wants the chain as sent; diagnose judges it afterwards
        for the user's client."""
        sni_name = server_name if (self.sni and server_name and not is_ip(server_name)) else None
        return dict(server_name=sni_name, insecure=True, versions=list(self.versions),
                    cipher_suites=list(self.cipher_suites), groups=list(self.groups),
                    key_share_groups=list(self.key_shares),
                    signature_algorithms=list(self.signature_algorithms),
                    alpn_protocols=list(self.alpn) or None, session_store=None,
                    # no TLS 1.2 session ticket / OCSP noise in a probe's answer (a
                    # recorded hello keeps what the client really asked for)
                    ocsp_stapling=False, client_hello_template=self.client_hello,
                    accept_tls13_pkcs1_signatures=self.tls13_pkcs1)

    def offer_json(self) -> dict[str, Any]:
        return {"versions": list(self.versions), "cipher_suites": len(self.cipher_suites),
                "groups": list(self.groups), "signature_algorithms": len(self.signature_algorithms),
                "alpn": list(self.alpn), "sni": self.sni, "recorded": self.client_hello is not None}


def spec_from_profile(profile, name: str | None = None, purpose: str = "") -> ProbeSpec:
    """The ClientHello of a :class:`~tlslab.profiles.Profile`."""
    o = profile.offer
    return ProbeSpec(name=name or f"profile {profile.name}", versions=tuple(o.versions),
                     cipher_suites=tuple(o.cipher_suites), groups=tuple(o.groups),
                     key_shares=tuple(o.key_shares),
                     signature_algorithms=tuple(o.signature_algorithms), alpn=tuple(o.alpn),
                     sni=o.sni, purpose=purpose or f"what {profile.name} offers",
                     client_hello=o.client_hello,
                     tls13_pkcs1=profile.verifier.tls13_pkcs1_accepted).fixed()


def broad_spec() -> ProbeSpec:
    """Everything the engine can offer: TLS 1.0-1.3, every suite it implements (3DES and
    RC4 last), every group, every signature scheme, SNI, no ALPN."""
    from ..proto.config import DEFAULT_CIPHER_SUITES, DEFAULT_SIGNATURE_ALGORITHMS, default_groups
    from ..proto.groups import SUPPORTED_GROUPS
    from ..proto.names import NamedGroup, name_of
    from ..proto.tls12.suites import DEFAULT_SUITES12, SUITES12
    suites12 = [SUITES12[c].name for c in DEFAULT_SUITES12 if SUITES12[c].available]
    legacy = [s.name for c, s in SUITES12.items() if c not in DEFAULT_SUITES12 and s.available]
    groups = list(default_groups())
    groups += [name_of(NamedGroup, g) for g in SUPPORTED_GROUPS
               if name_of(NamedGroup, g) not in groups]
    return ProbeSpec(name="broad", versions=("TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"),
                     cipher_suites=tuple(DEFAULT_CIPHER_SUITES + suites12 + legacy),
                     groups=tuple(groups), key_shares=tuple(groups[:2]),
                     signature_algorithms=tuple(DEFAULT_SIGNATURE_ALGORITHMS), alpn=(),
                     sni=True, purpose="everything tlslab can offer").fixed()


#: suite families, by the IANA name's parts (RFC 5246 App. A.5, RFC 8446 §B.4)
def suite_family(name: str) -> str:
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return "TLS 1.3 AEAD"
    kx, cipher = name[4:].split("_WITH_", 1)
    kx_name = {"ECDHE_ECDSA": "ECDHE-ECDSA", "ECDHE_RSA": "ECDHE-RSA", "DHE_RSA": "DHE-RSA",
               "RSA": "static RSA"}.get(kx, kx.replace("_", "-"))
    if "3DES" in cipher:
        bulk = "3DES"
    elif "RC4" in cipher:
        bulk = "RC4"
    elif "GCM" in cipher or "CHACHA20" in cipher or "CCM" in cipher:
        bulk = "AEAD"
    else:
        bulk = "CBC"
    return f"{kx_name} {bulk}"
