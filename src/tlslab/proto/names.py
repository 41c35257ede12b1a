"""IANA code points and their names (RFC 8446 §4, §B.3 and the IANA TLS registries).

Unknown values are never rejected by the codec: :func:`name_of` renders them as
``0x1234`` (or ``GREASE(0x0a0a)`` for RFC 8701 values) so traces stay readable.
"""
from __future__ import annotations

import enum


class ContentType(enum.IntEnum):
    """RFC 8446 §5.1."""

    invalid = 0
    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23
    heartbeat = 24


class HandshakeType(enum.IntEnum):
    """RFC 8446 §4 plus the TLS 1.2 types (RFC 5246 §7.4)."""

    hello_request = 0
    client_hello = 1
    server_hello = 2
    hello_verify_request = 3
    new_session_ticket = 4
    end_of_early_data = 5
    hello_retry_request = 6  # not on the wire in TLS 1.3 (HRR is a ServerHello)
    encrypted_extensions = 8
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14
    certificate_verify = 15
    client_key_exchange = 16
    finished = 20
    certificate_url = 21
    certificate_status = 22
    key_update = 24
    compressed_certificate = 25
    message_hash = 254


class ExtensionType(enum.IntEnum):
    """IANA "TLS ExtensionType Values"."""

    server_name = 0
    max_fragment_length = 1
    client_certificate_url = 2
    trusted_ca_keys = 3
    truncated_hmac = 4
    status_request = 5
    user_mapping = 6
    client_authz = 7
    server_authz = 8
    cert_type = 9
    supported_groups = 10
    ec_point_formats = 11
    srp = 12
    signature_algorithms = 13
    use_srtp = 14
    heartbeat = 15
    application_layer_protocol_negotiation = 16
    status_request_v2 = 17
    signed_certificate_timestamp = 18
    client_certificate_type = 19
    server_certificate_type = 20
    padding = 21
    encrypt_then_mac = 22
    extended_master_secret = 23
    token_binding = 24
    cached_info = 25
    compress_certificate = 27
    record_size_limit = 28
    delegated_credential = 34
    session_ticket = 35
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    oid_filters = 48
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    transparency_info = 52
    connection_id = 54
    quic_transport_parameters = 57
    ticket_request = 58
    dnssec_chain = 59
    application_settings_old = 17513
    application_settings = 17613
    encrypted_client_hello = 65037
    renegotiation_info = 65281


class CipherSuite(enum.IntEnum):
    """TLS 1.3 suites (RFC 8446 §B.4) and the TLS 1.2 suites real peers offer."""

    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303
    TLS_AES_128_CCM_SHA256 = 0x1304
    TLS_AES_128_CCM_8_SHA256 = 0x1305
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
    TLS_FALLBACK_SCSV = 0x5600
    TLS_RSA_WITH_3DES_EDE_CBC_SHA = 0x000A
    TLS_RSA_WITH_AES_128_CBC_SHA = 0x002F
    TLS_DHE_RSA_WITH_AES_128_CBC_SHA = 0x0033
    TLS_RSA_WITH_AES_256_CBC_SHA = 0x0035
    TLS_DHE_RSA_WITH_AES_256_CBC_SHA = 0x0039
    TLS_RSA_WITH_AES_128_CBC_SHA256 = 0x003C
    TLS_RSA_WITH_AES_256_CBC_SHA256 = 0x003D
    TLS_DHE_RSA_WITH_AES_128_CBC_SHA256 = 0x0067
    TLS_DHE_RSA_WITH_AES_256_CBC_SHA256 = 0x006B
    TLS_RSA_WITH_AES_128_GCM_SHA256 = 0x009C
    TLS_RSA_WITH_AES_256_GCM_SHA384 = 0x009D
    TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 = 0x009E
    TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 = 0x009F
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA = 0xC009
    TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA = 0xC00A
    TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA = 0xC013
    TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA = 0xC014
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 = 0xC023
    TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384 = 0xC024
    TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 = 0xC027
    TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 = 0xC028
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9
    TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCAA


class NamedGroup(enum.IntEnum):
    """IANA "TLS Supported Groups"."""

    secp256r1 = 0x0017
    secp384r1 = 0x0018
    secp521r1 = 0x0019
    x25519 = 0x001D
    x448 = 0x001E
    brainpoolP256r1tls13 = 0x001F
    brainpoolP384r1tls13 = 0x0020
    brainpoolP512r1tls13 = 0x0021
    ffdhe2048 = 0x0100
    ffdhe3072 = 0x0101
    ffdhe4096 = 0x0102
    ffdhe6144 = 0x0103
    ffdhe8192 = 0x0104
    SecP256r1MLKEM768 = 0x11EB
    X25519MLKEM768 = 0x11EC
    SecP384r1MLKEM1024 = 0x11ED
    X25519Kyber768Draft00 = 0x6399


class SignatureScheme(enum.IntEnum):
    """RFC 8446 §4.2.3 plus later registrations."""

    rsa_pkcs1_sha1 = 0x0201
    ecdsa_sha1 = 0x0203
    rsa_pkcs1_sha256 = 0x0401
    ecdsa_secp256r1_sha256 = 0x0403
    rsa_pkcs1_sha384 = 0x0501
    ecdsa_secp384r1_sha384 = 0x0503
    rsa_pkcs1_sha512 = 0x0601
    ecdsa_secp521r1_sha512 = 0x0603
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807
    ed448 = 0x0808
    rsa_pss_pss_sha256 = 0x0809
    rsa_pss_pss_sha384 = 0x080A
    rsa_pss_pss_sha512 = 0x080B
    ecdsa_brainpoolP256r1tls13_sha256 = 0x081A
    ecdsa_brainpoolP384r1tls13_sha384 = 0x081B
    ecdsa_brainpoolP512r1tls13_sha512 = 0x081C
    mldsa44 = 0x0904
    mldsa65 = 0x0905
    mldsa87 = 0x0906
    # TLS 1.2 (hash, signature) pairs that are not TLS 1.3 schemes
    rsa_pkcs1_sha224 = 0x0301
    dsa_sha224 = 0x0302
    ecdsa_sha224 = 0x0303
    dsa_sha1 = 0x0202
    dsa_sha256 = 0x0402
    dsa_sha384 = 0x0502
    dsa_sha512 = 0x0602


class PskKeyExchangeMode(enum.IntEnum):
    """RFC 8446 §4.2.9."""

    psk_ke = 0
    psk_dhe_ke = 1


class ProtocolVersion(enum.IntEnum):
    SSLv3 = 0x0300
    TLSv1_0 = 0x0301
    TLSv1_1 = 0x0302
    TLSv1_2 = 0x0303
    TLSv1_3 = 0x0304


VERSION_NAMES = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1",
                 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def is_grease(value: int) -> bool:
    """RFC 8701 §2: 0x0A0A, 0x1A1A, ... 0xFAFA (and single-byte 0x0B, 0x2A, ... for some fields)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


class _MemberView(type):
    """The metaclass of :func:`member_view`: iterating a view iterates its enum."""

    def __iter__(cls):
        return iter(cls._enum)

    def __len__(cls) -> int:
        return len(cls._enum)


def member_view(enum_cls: type[enum.IntEnum]) -> type:
    """A plain class whose attributes are ``enum_cls``'s members, the same objects.

    For code that reads members in its hot path: on CPython 3.11 ``Enum.member`` costs
    about 75 ns a read (the enum machinery's lookup), a plain class attribute about 20."""
    return _MemberView(enum_cls.__name__, (), {"_enum": enum_cls, **enum_cls.__members__})


def name_of(enum_cls: type[enum.IntEnum], value: int) -> str:
    """The IANA name of ``value`` in ``enum_cls``; GREASE and unknown values are rendered, not rejected."""
    names = _NAME_TABLES.get(enum_cls)
    if names is None:
        names = _NAME_TABLES[enum_cls] = {int(m): m.name for m in enum_cls}
    name = names.get(value)
    if name is not None:
        return name
    if is_grease(value):
        return f"GREASE(0x{value:04x})"
    return f"0x{value:04x}"


#: enum class -> {value: IANA name} (enum lookups by value are slow on the handshake path)
_NAME_TABLES: dict = {}


def lookup(enum_cls: type[enum.IntEnum], name: str) -> int:
    """Code point for an IANA name (case-insensitive; ``0x1234`` accepted too).

    Raises ``ValueError`` with the list of known names for a bad one, so the CLI can
    show a clear message.
    """
    text = name.strip()
    if text.lower().startswith("0x"):
        return int(text, 16)
    for member in enum_cls:
        if member.name.lower() == text.lower():
            return int(member)
    import difflib
    names = [m.name for m in enum_cls]
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5) or \
        difflib.get_close_matches(text.upper(), [n.upper() for n in names], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; e.g. {', '.join(names[:3])}"
    raise ValueError(f"unknown {enum_cls.__name__} {name!r}{hint}")
