"""Client and server configuration (DESIGN.md "Public Python API").

Names of suites, groups and signature schemes are IANA names; ``None`` means the
sensible default below.  Validation happens here, at construction, so that a bad
name is a clear ``ValueError`` before any byte is sent.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from .names import CipherSuite, NamedGroup, SignatureScheme, lookup

DEFAULT_VERSIONS = ["TLS 1.3", "TLS 1.2"]
DEFAULT_CIPHER_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                         "TLS_CHACHA20_POLY1305_SHA256"]
DEFAULT_GROUPS = ["x25519", "secp256r1", "secp384r1", "x448", "ffdhe2048"]
#: groups a server accepts by default beyond DEFAULT_GROUPS (last in its preference): a
#: client that offers only P-521 or a larger RFC 7919 group is answered rather than refused
#: (RFC 8446 §4.2.7 lists them; OpenSSL 3 servers accept them by default; tlsfuzzer expects
#: them).  Clients do not offer them by default (profiles/data/default.toml).
SERVER_EXTRA_GROUPS = ["secp521r1", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"]
#: likewise the second hybrid, for clients that need an ECDH half from P-256 (FIPS)
SERVER_EXTRA_HYBRIDS = ["SecP256r1MLKEM768"]
# groups the client sends a key share for when none is configured
DEFAULT_KEY_SHARE_GROUPS = ["x25519"]
DEFAULT_SIGNATURE_ALGORITHMS = [
    "ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384", "ecdsa_secp521r1_sha512",
    "ed25519", "ed448",
    "rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512",
    "rsa_pss_pss_sha256", "rsa_pss_pss_sha384", "rsa_pss_pss_sha512",
    "rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512",
]

VERSION_CODES = {"TLS 1.3": 0x0304, "TLS 1.2": 0x0303, "TLS 1.1": 0x0302, "TLS 1.0": 0x0301}
_VERSION_ALIASES = {}
for _name in VERSION_CODES:
    _n = _name.split()[1]
    for _alias in (_n, "tls" + _n, "tlsv" + _n, "tls " + _n, "tls_" + _n, _name.lower()):
        _VERSION_ALIASES[_alias] = _name


def normalize_version(v: str) -> str:
    """"1.2", "TLSv1.2", "TLS 1.2" ... -> "TLS 1.2" (ValueError for anything else)."""
    name = _VERSION_ALIASES.get(v.strip().lower())
    if name is None:
        raise ValueError(f"unknown TLS version {v!r} (use 1.3, 1.2, 1.1 or 1.0)")
    return name


def default_groups() -> list[str]:
    """DEFAULT_GROUPS, led by X25519MLKEM768 when this ``cryptography`` has ML-KEM."""
    from .groups import SUPPORTED_GROUPS
    if NamedGroup.X25519MLKEM768 in SUPPORTED_GROUPS:
        return ["X25519MLKEM768"] + DEFAULT_GROUPS
    return list(DEFAULT_GROUPS)


def lookup_name(code: int) -> str:
    from .names import name_of
    return name_of(CipherSuite, code)


def _codes(enum_cls, names, default):
    return [lookup(enum_cls, n) for n in (names if names else default)]


@dataclass
class _Common:
    versions: list[str] | None = None
    cipher_suites: list[str] | None = None
    groups: list[str] | None = None
    signature_algorithms: list[str] | None = None
    alpn_protocols: list[str] | None = None
    keylog_file: Any = None  # path or writable text file object
    #: put each handshake message in a record of its own (OpenSSL's habit) instead of coalescing
    one_message_per_record: bool = False
    #: send a KeyUpdate after this many records under one key (None: the AEAD's safe limit)
    key_update_after_records: int | None = None

    #: honour the ``SSLKEYLOGFILE`` environment variable when ``keylog_file`` is not given.
    #: None: yes for a client (as curl, browsers and Python's ssl do), no for a server, where
    #: a variable left in the environment would silently expose every client's traffic; a
    #: server must ask (True), and then a warning names the file on the "tlslab" logger
    sslkeylogfile: bool | None = None
    _SSLKEYLOGFILE_DEFAULT = True

    def keylog(self):
        """The key log shared by every connection made with this config (``keylog_file``,
        else ``SSLKEYLOGFILE`` where honoured), opened once, when the config is made."""
        return self.__dict__.get("_keylog")

    def _open_keylog(self) -> None:
        from .keylog import KeyLog, keylog_from_env
        if self.keylog_file is not None:
            log = KeyLog(self.keylog_file)
        elif self.sslkeylogfile if self.sslkeylogfile is not None else self._SSLKEYLOGFILE_DEFAULT:
            log = keylog_from_env()
            if log is not None and not self._SSLKEYLOGFILE_DEFAULT:
                import logging
                import os
                logging.getLogger("tlslab").warning(
                    "SSLKEYLOGFILE: this server writes every connection's TLS secrets to %s",
                    os.environ.get("SSLKEYLOGFILE"))
        else:
            log = None
        self.__dict__["_keylog"] = log

    #: TLS 1.2 suites used when ``cipher_suites`` is not given (see tls12/suites.py)
    _default_suites12_name = "DEFAULT_SUITES12"

    def _validate(self) -> None:
        self._open_keylog()
        from .keyschedule import SUITES
        from .groups import SUPPORTED_GROUPS
        from .tls12 import suites as _suites12
        from .tls12.suites import SUITES12, SUITES12_BY_NAME
        default_suites12 = getattr(_suites12, self._default_suites12_name)
        self.version_names = [normalize_version(v) for v in (self.versions or DEFAULT_VERSIONS)]
        self.version_codes = sorted({VERSION_CODES[v] for v in self.version_names}, reverse=True)
        self.max_version, self.min_version = self.version_codes[0], self.version_codes[-1]
        if self.cipher_suites:
            codes = []
            for name in self.cipher_suites:
                suite12 = SUITES12_BY_NAME.get(name.strip().upper())
                codes.append(suite12.code if suite12 else lookup(CipherSuite, name))
            self.cipher_suite_codes = codes
        else:
            self.cipher_suite_codes = _codes(CipherSuite, None, DEFAULT_CIPHER_SUITES)
            if self.min_version <= 0x0303:
                self.cipher_suite_codes += [c for c in default_suites12 if SUITES12[c].available]
        self.suites13 = [c for c in self.cipher_suite_codes if c in SUITES]
        self.suites12 = [c for c in self.cipher_suite_codes if c in SUITES12]
        self.group_codes = _codes(NamedGroup, self.groups, default_groups())
        self.signature_scheme_codes = _codes(SignatureScheme, self.signature_algorithms,
                                             DEFAULT_SIGNATURE_ALGORITHMS)
        for code in self.cipher_suite_codes:
            if code not in SUITES and code not in SUITES12:
                raise ValueError(f"cipher suite {lookup_name(code)} is not supported by tlslab")
            if code in SUITES12 and not SUITES12[code].available:
                raise ValueError(f"{SUITES12[code].name}: this cryptography build cannot run its cipher")
        if 0x0304 in self.version_codes and not self.suites13:
            if self.versions or not self.suites12:
                raise ValueError("TLS 1.3 is enabled but none of the cipher suites is a TLS 1.3 suite")
            self.version_codes = [v for v in self.version_codes if v != 0x0304]  # 1.2 suites only
            self.max_version = self.version_codes[0]
        if self.min_version <= 0x0303 and not self.suites12:
            if self.max_version <= 0x0303:
                raise ValueError("TLS 1.2 or older is enabled but no TLS 1.2 cipher suite is")
            self.version_codes = [0x0304]  # only TLS 1.3 suites given: TLS 1.3 only
            self.max_version = self.min_version = 0x0304
        for code in self.group_codes:
            if code not in SUPPORTED_GROUPS:
                raise ValueError(f"group 0x{code:04x} is not supported")
        for p in self.alpn_protocols or []:
            if not 0 < len(p.encode()) < 256:
                raise ValueError(f"ALPN protocol {p!r} must be 1..255 bytes")


@dataclass
class ClientConfig(_Common):
    server_name: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    #: check the server's certificate against ``server_name`` (RFC 6125; an IP literal
    #: against the IP addresses in subjectAltName).  A verifying client (``insecure`` off)
    #: with no ``server_name`` is a configuration error, as in Go's crypto/tls, unless this
    #: is set to False: then the chain is still validated up to a trust anchor, but any
    #: name is accepted (``server_name``, if given, is only sent as SNI)
    check_hostname: bool = True
    key_share_groups: list[str] | None = None   # groups to send shares for (default: first offered)
    certificate_chain: list | None = None       # client certificate chain, leaf first
    private_key: Any = None                     # its private key
    #: RFC 8446 §D.4 middlebox compatibility: a 32-byte legacy_session_id and a CCS record
    compatibility_mode: bool = True
    #: RFC 8449 record_size_limit to announce (None: don't send the extension)
    record_size_limit: int | None = None
    #: offer post-handshake client authentication (RFC 8446 §4.2.6, §4.6.2)
    post_handshake_auth: bool = False
    #: ask for a stapled OCSP response (status_request, RFC 6066 §8)
    ocsp_stapling: bool = True
    #: send TLS_FALLBACK_SCSV (RFC 7507): only when retrying with a lower version on purpose
    fallback_scsv: bool = False
    #: where tickets are kept for resumption (RFC 8446 §4.6.1); one in-memory store per
    #: config by default, so connections made with the same config resume; None disables
    session_store: Any = "default"
    #: RFC 7685 padding: grow a ClientHello of 256..511 bytes to 512 (as OpenSSL and NSS do,
    #: to get past servers that choke on those lengths)
    pad_client_hello: bool = True
    #: a recorded ClientHello (Message or raw bytes) to send instead of our own: its suites,
    #: groups, extensions and order are kept; random, session id and key shares are fresh
    client_hello_template: Any = None
    #: accept a TLS 1.3 CertificateVerify signed with RSASSA-PKCS1-v1_5, which RFC 8446
    #: §4.4.3 forbids; off by default.  Only for simulating clients that do accept it
    #: (JSSE 17 checks the scheme against its own list, which holds PKCS#1 for TLS 1.2)
    accept_tls13_pkcs1_signatures: bool = False

    def __post_init__(self) -> None:
        if not self.insecure and self.check_hostname and not self.server_name:
            raise ValueError("a verifying client needs server_name to check the certificate "
                             "against (or check_hostname=False, or insecure=True)")
        self._validate()
        if not self.insecure:
            self.trust_store()  # file reading belongs here, not in the sans-IO engine
        #: how this config authenticates (trust anchors, name check, client identity), as a
        #: digest: sessions remember it and are resumed only by a config with the same one
        #: (built once here; the fields it covers are not meant to change after)
        self.verifier_id = self._verifier_id()
        self._hello_plans: dict = {}   # see hello_plan()
        if isinstance(self.session_store, str) and self.session_store == "default":
            from .tickets import TicketStore
            self.session_store = TicketStore()
        if isinstance(self.client_hello_template, (bytes, bytearray)):
            from .messages import ClientHello
            self.client_hello_template = ClientHello.parse(bytes(self.client_hello_template))
        if self.record_size_limit is not None and not 64 <= self.record_size_limit <= 0x4001:
            raise ValueError("record_size_limit must be 64..16385 (RFC 8449 §4)")
        if self.key_share_groups:
            self.key_share_codes = _codes(NamedGroup, self.key_share_groups, [])
        elif self.groups is None and self.group_codes[0] == NamedGroup.X25519MLKEM768:
            # draft-ietf-tls-ecdhe-mlkem: the hybrid share plus a classic x25519 one, so
            # servers without post-quantum support need no HelloRetryRequest
            self.key_share_codes = self.group_codes[:2]
        else:
            self.key_share_codes = self.group_codes[:1]
        for code in self.key_share_codes:
            if code not in self.group_codes:
                raise ValueError(f"key share group 0x{code:04x} is not among the offered groups")


    def _verifier_id(self) -> str:
        from cryptography.hazmat.primitives import hashes
        h = hashlib.sha256()
        if self.insecure:
            h.update(b"insecure")
        else:
            h.update(b"verify+name" if self.check_hostname else b"verify")
            h.update(b"+pkcs1" if self.accept_tls13_pkcs1_signatures else b"")
            for fp in sorted(c.fingerprint(hashes.SHA256()) for c in self.trust_store()):
                h.update(fp)
        for cert in self.certificate_chain or []:
            h.update(b"client" + cert.fingerprint(hashes.SHA256()))
        return h.hexdigest()[:32]

    def hello_plan(self, tls12: bool, tls13: bool, with_store: bool) -> tuple[list, list[int]]:
        """The ClientHello's extensions in order (placeholders "key_share" and
        "session_ticket" for the parts made per connection) and its cipher suites.

        Owned by the config by design: derived from its fields only, built once per shape
        (three booleans, so at most eight entries) and never modified after; the fields it
        covers are not meant to change once the config is made, like ``verifier_id``."""
        key = (tls12, tls13, with_store)
        plan = self._hello_plans.get(key)
        if plan is None:
            from .client_hello import build_hello_plan
            plan = self._hello_plans[key] = build_hello_plan(self, tls12, tls13, with_store)
        return plan

    def trust_store(self) -> list:
        """The trust anchors (``ca_file`` or the system store), loaded once per config
        (when the config is made, so that the engine itself never reads files)."""
        store = self.__dict__.get("_trust_store")
        if store is None:
            from .certificates import load_trust_store
            store = self.__dict__["_trust_store"] = load_trust_store(self.ca_file)
        return store


@dataclass
class ServerConfig(_Common):
    #: no static RSA key exchange unless named in ``cipher_suites`` (no forward secrecy,
    #: and a Bleichenbacher oracle to guard: see decrypt_premaster in tls12/keyexchange.py)
    _default_suites12_name = "DEFAULT_SERVER_SUITES12"
    _SSLKEYLOGFILE_DEFAULT = False  # see _Common.sslkeylogfile

    certificate_chain: list = field(default_factory=list)  # x509.Certificate, leaf first
    private_key: Any = None
    prefer_server_order: bool = True
    cookie_hrr: bool = False  # always send a HelloRetryRequest with a cookie (for testing/demos)
    #: RFC 8446 §4.2.7: groups to announce in EncryptedExtensions (None: don't announce)
    advertised_groups: list[str] | None = None
    #: RFC 8449: our record_size_limit, sent when the client offers the extension
    record_size_limit: int = 0x4001
    #: RFC 6066 §3: answer a client's SNI with an empty server_name in EncryptedExtensions
    acknowledge_server_name: bool = True
    #: extension names in the order to send them (mimics a given server's byte layout)
    extension_order: list[str] | None = None
    #: PEM file of CAs that issue client certificates: when set, the server sends a
    #: CertificateRequest (RFC 8446 §4.3.2) naming them in certificate_authorities
    client_ca_file: str | None = None
    #: abort with certificate_required when the client sends no certificate (§4.4.2.4)
    require_client_cert: bool = False
    #: with client_ca_file: ask during the handshake (True), or only later with
    #: ServerConnection.request_client_certificate() (post-handshake auth, TLS 1.3)
    client_auth_in_handshake: bool = True
    #: NewSessionTicket messages sent after each handshake (RFC 8446 §4.6.1); 0 disables resumption
    tickets: int = 2
    ticket_lifetime: int = 7200
    #: seals tickets; share one object between servers (and connections) that should resume
    ticket_keys: Any = None
    #: RFC 8446 §4.2.10: accept up to this many bytes of 0-RTT data (0 = no early data)
    max_early_data_size: int = 0
    #: TLS 1.2 session-ID cache (RFC 5246 §7.3); share it between configs to resume across them
    session_cache: Any = "default"
    #: PSK key exchange modes we accept (RFC 8446 §4.2.9)
    psk_modes: list[str] = field(default_factory=lambda: ["psk_dhe_ke", "psk_ke"])
    #: RFC 6066 §3: refuse a ClientHello without server_name with a fatal unrecognized_name
    require_sni: bool = False
    #: LAB ONLY, a deliberate violation of RFC 8446 §4.4.3 ("RSA signatures MUST use an
    #: RSASSA-PSS algorithm"): with an RSA certificate, sign the TLS 1.3 CertificateVerify
    #: with PKCS#1 v1.5 (the first rsa_pkcs1_* scheme the client offered, else
    #: rsa_pkcs1_sha256), as some broken servers do.  Conforming clients abort.
    tls13_pkcs1_signatures: bool = False
    # -- LAB ONLY: servers that misbehave as vulnerable stacks did (tlslab.proto.lab_faults;
    # the lab scenarios heartbleed, ccs-injection, robot, ticketbleed).  All off by default;
    # never set them on a server anyone relies on.
    #: LAB ONLY, RFC 6520 Heartbeat in TLS 1.0-1.2: None (default) does not negotiate it and
    #: answers a heartbeat record with unexpected_message (RFC 5246 §6); "rfc6520" negotiates
    #: it and answers as §4 says (a payload_length beyond the message is discarded silently);
    #: "heartbleed" answers with payload_length bytes whatever arrived, the missing ones
    #: taken from obviously fake "memory" (CVE-2014-0160), even before the handshake ends
    lab_heartbeat: str | None = None
    #: LAB ONLY, CVE-2014-0224: accept a TLS 1.2 ChangeCipherSpec before the
    #: ClientKeyExchange (RFC 5246 §7.1 makes it unexpected_message) and switch to keys
    #: derived from an empty premaster, so the next record fails with bad_record_mac
    lab_early_ccs: bool = False
    #: LAB ONLY, a Bleichenbacher oracle (ROBOT, Böck/Somorovsky/Young 2018): decrypt a
    #: static-RSA ClientKeyExchange with the raw RSA operation and answer bad PKCS#1 v1.5
    #: padding at once with handshake_failure, instead of RFC 5246 §7.4.7.1's random premaster
    lab_rsa_padding_oracle: bool = False
    #: LAB ONLY, CVE-2016-9244 (F5 "Ticketbleed"): when resuming a TLS 1.2 session from a
    #: ticket offered with a session ID of 1..31 bytes, echo 32 bytes, the extra ones fake
    #: "memory" (RFC 5077 §3.4 says the same session ID)
    lab_ticketbleed: bool = False

    def __post_init__(self) -> None:
        self._validate()
        if self.lab_heartbeat not in (None, "rfc6520", "heartbleed"):
            raise ValueError("lab_heartbeat must be None, 'rfc6520' or 'heartbleed'")
        self.advertised_group_codes = [lookup(NamedGroup, g) for g in self.advertised_groups or []]
        from .names import PskKeyExchangeMode
        self.psk_mode_codes = [lookup(PskKeyExchangeMode, m) for m in self.psk_modes]
        if isinstance(self.session_cache, str) and self.session_cache == "default":
            from .tickets import SessionCache
            self.session_cache = SessionCache()
        if self.groups is None:
            from .groups import SUPPORTED_GROUPS
            # SecP256r1MLKEM768 (draft-ietf-tls-ecdhe-mlkem) when this cryptography has ML-KEM
            extra = SERVER_EXTRA_GROUPS + [g for g in SERVER_EXTRA_HYBRIDS
                                           if lookup(NamedGroup, g) in SUPPORTED_GROUPS]
            self.group_codes += [c for c in _codes(NamedGroup, extra, [])
                                 if c not in self.group_codes]
        if self.max_version < 0x0303:
            # TLS 1.0/1.1 only (listed explicitly: never a default): RFC 5246 Appendix A.5
            from .tls12.suites import SUITES12
            if not any(SUITES12[c].min_version <= self.max_version for c in self.suites12):
                raise ValueError(f"{' and '.join(self.version_names)} need a CBC suite (e.g. "
                                 "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA): AEAD and SHA-256/384 suites "
                                 "exist only from TLS 1.2 (RFC 5246 Appendix A.5)")
        if self.ticket_keys is None:
            from .tickets import TicketKeys
            self.ticket_keys = TicketKeys()
        if not 0 <= self.ticket_lifetime <= 604800:
            raise ValueError("ticket_lifetime must be 0..604800 seconds (RFC 8446 §4.6.1)")
        self.client_trust: list = []
        if self.client_ca_file:
            from .certificates import load_trust_store
            self.client_trust = load_trust_store(self.client_ca_file)
        elif self.require_client_cert:
            raise ValueError("require_client_cert needs client_ca_file (the CAs to trust)")
        from .names import ExtensionType
        self.extension_order_codes = [lookup(ExtensionType, e) for e in self.extension_order or []]
        if not self.certificate_chain or self.private_key is None:
            raise ValueError("ServerConfig needs certificate_chain and private_key "
                             "(use ServerConfig.from_files or tlslab.workbench.certgen)")

    # -- derived once, owned by the config (its identity does not change once it is made) ----
    @functools.cached_property
    def schemes13(self) -> list[int]:
        """The signature schemes our certificate's key can make, in our order of preference
        (RFC 8446 §4.2.3), limited to ``signature_algorithms``."""
        from .signatures import schemes_for_key
        return [s for s in schemes_for_key(self.certificate_chain[0]) if s in self.signature_scheme_codes]

    @functools.cached_property
    def certificate_key(self):
        """Our leaf certificate's public key, parsed once (what TLS 1.2 suite selection
        checks against each key exchange, RFC 5246 §7.4.2, RFC 8422 §5.3)."""
        return self.certificate_chain[0].public_key()

    @functools.cached_property
    def schemes12(self) -> list[int]:
        """The TLS 1.2 signature schemes our certificate's key can make, best first
        (RFC 5246 §7.4.1.4.1); the client's list and ``signature_algorithms`` decide later."""
        from .tls12.keyexchange import our_preference
        return our_preference(self.certificate_chain[0])

    @functools.cached_property
    def certificate_message13(self):
        """Our TLS 1.3 Certificate message (RFC 8446 §4.4.2): the same bytes in every full
        handshake, so encoded once; never modified after."""
        from .messages import Certificate, certificate_entries
        msg = Certificate(certificate_request_context=b"",
                          certificate_list=certificate_entries(self.certificate_chain))
        msg.encode()
        return msg

    @functools.cached_property
    def certificate_ders(self) -> list[bytes]:
        """Our chain as DER, leaf first: the TLS 1.2 Certificate message's body (RFC 5246
        §7.4.2), the same in every full handshake; never modified after."""
        from cryptography.hazmat.primitives.serialization import Encoding
        return [c.public_bytes(Encoding.DER) for c in self.certificate_chain]

    @classmethod
    def from_files(cls, cert_file: str, key_file: str, **options) -> "ServerConfig":
        """Load a PEM certificate chain (leaf first) and a PEM private key."""
        chain, key = load_identity(cert_file, key_file)
        return cls(certificate_chain=chain, private_key=key, **options)


def load_identity(cert_file: str, key_file: str) -> tuple[list, Any]:
    """A PEM certificate chain (leaf first) and its PEM private key, checked to belong together."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    with open(cert_file, "rb") as f:
        data = f.read()
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"{cert_file}: no PEM certificate found") from None
    with open(key_file, "rb") as f:
        try:
            key = load_pem_private_key(f.read(), password=None)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{key_file}: cannot load the private key ({e})") from None
    fmt = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if chain[0].public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
        raise ValueError(f"{key_file} is not the private key of the certificate in {cert_file}")
    return chain, key
