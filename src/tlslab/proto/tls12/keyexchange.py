"""TLS 1.2 (and 1.0/1.1) key exchange: ServerKeyExchange and ClientKeyExchange bodies,
the ServerKeyExchange signature, (EC)DHE parameter validation and static RSA.

* ECDHE: RFC 8422 §5.4 (ServerECDHParams, named_curve only), §5.7 (ClientECDiffieHellmanPublic),
  §5.10 (premaster = x-coordinate / X25519 output, fixed length).
* DHE: RFC 5246 §7.4.3 (ServerDHParams), §7.4.7.2 (ClientDiffieHellmanPublic),
  §8.1.2 (premaster = Z with leading zero bytes stripped); RFC 7919 groups.
* Signatures: RFC 5246 §7.4.3 (signed content client_random + server_random +
  params), §7.4.1.4.1 (signature_algorithms, defaults when absent); RFC 2246
  §7.4.3 / RFC 4492 §5.4 for TLS 1.0/1.1 (MD5+SHA-1 RSA, SHA-1 ECDSA).
* Static RSA: RFC 5246 §7.4.7.1 (EncryptedPreMasterSecret, Bleichenbacher defence).

The message bodies are described once with :mod:`..codec` structures, so the trace
gets the byte span of every field from the same description used to parse.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dh, ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from .. import groups, signatures
from ..codec import Opaque, Reader, Struct, StructKind, UInt
from ..errors import (HandshakeFailure, IllegalParameter, InsufficientSecurity,
                      InternalError, UnsupportedCertificate)
from ..names import NamedGroup, SignatureScheme, name_of
from . import legacy
from .suites import KX_DHE_RSA, KX_ECDHE_ECDSA, KX_ECDHE_RSA, KX_RSA

TLS1_2 = 0x0303
NAMED_CURVE = 3                 # ECCurveType.named_curve (RFC 8422 §5.4)
PREMASTER_LEN = 48              # RFC 5246 §7.4.7.1

# Groups usable for ECDHE in TLS 1.2 (RFC 8422 §5.1.1, RFC 8446 keeps the same code points).
ECDHE_GROUPS = frozenset({groups.X25519, groups.X448, groups.SECP256R1, groups.SECP384R1,
                          groups.SECP521R1})
_EC_CURVES = {groups.SECP256R1: ec.SECP256R1(), groups.SECP384R1: ec.SECP384R1(),
              groups.SECP521R1: ec.SECP521R1()}
_MONTGOMERY_LEN = {groups.X25519: 32, groups.X448: 56}

# Known DH groups, so a trace can say "ffdhe2048" rather than "a 2048-bit prime".
_KNOWN_DH = {(groups.FFDHE2048_P, 2): "ffdhe2048", (groups.FFDHE3072_P, 2): "ffdhe3072"}
_FFDHE_PRIMES = {"ffdhe2048": groups.FFDHE2048_P, "ffdhe3072": groups.FFDHE3072_P,
                 "ffdhe4096": groups.FFDHE4096_P, "ffdhe6144": groups.FFDHE6144_P,
                 "ffdhe8192": groups.FFDHE8192_P}


# --------------------------------------------------------------------------- codec

class ServerECDHParams(Struct):
    """RFC 8422 §5.4: ECParameters (curve_type named_curve + NamedCurve) and ECPoint."""

    FIELDS = (("curve_type", UInt(1)), ("named_curve", UInt(2, NamedGroup)),
              ("public", Opaque(1, min=1)))
    HOOKED_FIELDS = ("curve_type",)

    def _after_field(self, name: str, r: Reader) -> None:
        if name == "curve_type" and self.curve_type != NAMED_CURVE:
            # explicit_prime (1) / explicit_char2 (2) are deprecated (RFC 8422 §5.4) and
            # would need their own structure; nobody legitimate sends them.
            raise IllegalParameter(f"ServerKeyExchange uses curve_type {self.curve_type}; only "
                                   "named_curve (3) is allowed (RFC 8422 §5.4)")


class ServerDHParams(Struct):
    """RFC 5246 §7.4.3: dh_p, dh_g, dh_Ys, each opaque<1..2^16-1>."""

    FIELDS = (("dh_p", Opaque(2, min=1)), ("dh_g", Opaque(2, min=1)), ("dh_Ys", Opaque(2, min=1)))

    @property
    def p(self) -> int:
        return int.from_bytes(self.dh_p, "big")

    @property
    def g(self) -> int:
        return int.from_bytes(self.dh_g, "big")

    @property
    def ys(self) -> int:
        return int.from_bytes(self.dh_Ys, "big")


class DigitallySigned(Struct):
    """TLS 1.2 ``digitally-signed`` (RFC 5246 §4.7): SignatureAndHashAlgorithm + signature."""

    FIELDS = (("algorithm", UInt(2, SignatureScheme)), ("signature", Opaque(2)))


class DigitallySigned10(Struct):
    """TLS 1.0/1.1 ``digitally-signed`` (RFC 2246 §4.7): the signature only."""

    FIELDS = (("signature", Opaque(2)),)


class ServerKeyExchangeECDHE(Struct):
    """RFC 8422 §5.4 ServerKeyExchange for ECDHE_ECDSA / ECDHE_RSA (TLS 1.2)."""

    FIELDS = (("params", StructKind(ServerECDHParams)), ("signed_params", StructKind(DigitallySigned)))


class ServerKeyExchangeDHE(Struct):
    """RFC 5246 §7.4.3 ServerKeyExchange for DHE_RSA (TLS 1.2)."""

    FIELDS = (("params", StructKind(ServerDHParams)), ("signed_params", StructKind(DigitallySigned)))


class ServerKeyExchangeECDHE10(Struct):
    """ECDHE ServerKeyExchange in TLS 1.0/1.1 (RFC 4492 §5.4): no algorithm field."""

    FIELDS = (("params", StructKind(ServerECDHParams)), ("signed_params", StructKind(DigitallySigned10)))


class ServerKeyExchangeDHE10(Struct):
    """DHE ServerKeyExchange in TLS 1.0/1.1 (RFC 2246 §7.4.3): no algorithm field."""

    FIELDS = (("params", StructKind(ServerDHParams)), ("signed_params", StructKind(DigitallySigned10)))


class ClientECDHPublic(Struct):
    """RFC 8422 §5.7 ClientECDiffieHellmanPublic (explicit form): ECPoint ecdh_Yc<1..2^8-1>."""

    FIELDS = (("ecdh_Yc", Opaque(1, min=1)),)


class ClientDHPublic(Struct):
    """RFC 5246 §7.4.7.2 ClientDiffieHellmanPublic (explicit form): dh_Yc<1..2^16-1>."""

    FIELDS = (("dh_Yc", Opaque(2, min=1)),)


class EncryptedPreMasterSecret(Struct):
    """RFC 5246 §7.4.7.1: the PKCS#1 v1.5 ciphertext with a two-byte length (TLS 1.0+)."""

    FIELDS = (("encrypted_pre_master_secret", Opaque(2)),)


def _ske_class(kx: str, version: int) -> type[Struct]:
    if kx in (KX_ECDHE_ECDSA, KX_ECDHE_RSA):
        return ServerKeyExchangeECDHE if version >= TLS1_2 else ServerKeyExchangeECDHE10
    if kx == KX_DHE_RSA:
        return ServerKeyExchangeDHE if version >= TLS1_2 else ServerKeyExchangeDHE10
    raise InternalError(f"key exchange {kx} has no ServerKeyExchange")


@dataclass(frozen=True)
class ServerKeyExchange12:
    """A parsed ServerKeyExchange body.

    ``params_raw`` are the exact ServerECDHParams / ServerDHParams bytes that were
    signed; ``scheme`` is ``None`` before TLS 1.2.  ``message`` is the codec
    structure (for field spans).
    """

    kx: str
    params: ServerECDHParams | ServerDHParams
    params_raw: bytes
    scheme: int | None
    signature: bytes
    message: Struct


def parse_server_key_exchange(kx: str, body: bytes, version: int = TLS1_2,
                              record: bool = False) -> ServerKeyExchange12:
    """Parse a ServerKeyExchange body (without the 4-byte handshake header) for ``kx``.

    DecodeError for malformed bytes; IllegalParameter for a non-named curve.
    """
    msg = _ske_class(kx, version).parse(body, record=record)
    signed = msg.signed_params
    scheme = getattr(signed, "algorithm", None) if version >= TLS1_2 else None
    return ServerKeyExchange12(kx, msg.params, msg.params.raw, scheme, signed.signature, msg)


def build_ecdhe_params(group: int, public: bytes) -> bytes:
    """ServerECDHParams bytes (RFC 8422 §5.4): named_curve, the group, the point."""
    return ServerECDHParams(curve_type=NAMED_CURVE, named_curve=group, public=public).build()


def build_dhe_params(p: int, g: int, ys: int) -> bytes:
    """ServerDHParams bytes (RFC 5246 §7.4.3); Ys is left-padded to the length of p
    (as RFC 7919 §3 asks for the named groups; harmless otherwise)."""
    size = (p.bit_length() + 7) // 8
    return ServerDHParams(dh_p=p.to_bytes(size, "big"), dh_g=g.to_bytes((g.bit_length() + 7) // 8, "big"),
                          dh_Ys=ys.to_bytes(size, "big")).build()


def build_server_key_exchange(params_raw: bytes, scheme: int | None, signature: bytes,
                              version: int = TLS1_2) -> bytes:
    """ServerKeyExchange body: params || digitally-signed (RFC 5246 §7.4.3)."""
    if version >= TLS1_2:
        if scheme is None:
            raise InternalError("TLS 1.2 ServerKeyExchange needs a signature algorithm")
        signed = DigitallySigned(algorithm=scheme, signature=signature).build()
    else:
        signed = DigitallySigned10(signature=signature).build()
    return params_raw + signed


def build_client_key_exchange(kx: str, value: bytes) -> bytes:
    """ClientKeyExchange body for ``kx``: the client's (EC)DH public value or the
    encrypted premaster (RFC 8422 §5.7, RFC 5246 §7.4.7)."""
    if kx in (KX_ECDHE_ECDSA, KX_ECDHE_RSA):
        return ClientECDHPublic(ecdh_Yc=value).build()
    if kx == KX_DHE_RSA:
        return ClientDHPublic(dh_Yc=value).build()
    if kx == KX_RSA:
        return EncryptedPreMasterSecret(encrypted_pre_master_secret=value).build()
    raise InternalError(f"unknown key exchange {kx}")


def parse_client_key_exchange(kx: str, body: bytes, record: bool = False) -> Struct:
    """Parse a ClientKeyExchange body; the value is the structure's one field."""
    if kx in (KX_ECDHE_ECDSA, KX_ECDHE_RSA):
        return ClientECDHPublic.parse(body, record=record)
    if kx == KX_DHE_RSA:
        return ClientDHPublic.parse(body, record=record)
    if kx == KX_RSA:
        return EncryptedPreMasterSecret.parse(body, record=record)
    raise InternalError(f"unknown key exchange {kx}")


# --------------------------------------------------------------------------- signatures

def signed_content(client_random: bytes, server_random: bytes, params_raw: bytes) -> bytes:
    """What the ServerKeyExchange signature covers (RFC 5246 §7.4.3, RFC 8422 §5.4):
    ``ClientHello.random + ServerHello.random + params``."""
    if len(client_random) != 32 or len(server_random) != 32:
        raise InternalError("client and server randoms must be 32 bytes")
    return client_random + server_random + params_raw


def _scheme_name(scheme: int | None) -> str:
    return "none" if scheme is None else name_of(SignatureScheme, scheme)


def _public(key):
    if isinstance(key, x509.Certificate) or signatures.is_private_key(key):
        return key.public_key()
    return key


def default_scheme(key) -> int:
    """The scheme to assume when the client sent no signature_algorithms: SHA-1 with
    the key's type (RFC 5246 §7.4.1.4.1)."""
    pub = _public(key)
    if isinstance(pub, rsa.RSAPublicKey):
        return signatures.RSA_PKCS1_SHA1
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return signatures.ECDSA_SHA1
    raise HandshakeFailure("an EdDSA key needs the client's signature_algorithms (RFC 8422 §5.1.3)")


def check_key_for_kx(kx: str, key) -> None:
    """The server certificate key must fit the suite (RFC 5246 §7.4.2, RFC 8422 §5.3):
    RSA for ECDHE_RSA / DHE_RSA / RSA, ECDSA or EdDSA for ECDHE_ECDSA."""
    pub = _public(key)
    # the family of a public key (a type lookup, not isinstance against cryptography's ABCs)
    family = signatures.key_family(pub)
    if kx == KX_ECDHE_ECDSA:
        ok = family in (signatures.KEY_EC, signatures.KEY_ED25519, signatures.KEY_ED448)
    else:
        ok = family == signatures.KEY_RSA
    if not ok:
        raise UnsupportedCertificate(f"a {type(pub).__name__.replace('PublicKey', '')} "
                                     f"certificate key cannot be used with {kx}")


def our_preference(key) -> list[int]:
    """Schemes we can sign with for ``key`` in TLS 1.2, best first."""
    pub = _public(key)
    if isinstance(pub, rsa.RSAPublicKey):
        # RFC 8446 §4.2.3 makes the PSS schemes usable in TLS 1.2 too; then PKCS#1 v1.5.
        return signatures.schemes_for_key(key) + [
            signatures.RSA_PKCS1_SHA256, signatures.RSA_PKCS1_SHA384, signatures.RSA_PKCS1_SHA512]
    if isinstance(pub, ec.EllipticCurvePublicKey):
        # In TLS 1.2 an ECDSA code point names only the hash (RFC 5246 §7.4.1.4.1); the
        # one matching the curve goes first.
        first = signatures.schemes_for_key(key)
        rest = [signatures.ECDSA_SECP256R1_SHA256, signatures.ECDSA_SECP384R1_SHA384,
                signatures.ECDSA_SECP521R1_SHA512]
        return first + [s for s in rest if s not in first]
    return signatures.schemes_for_key(key)


def select_signature_scheme(key, peer_schemes: Iterable[int] | None, *,
                            allow_sha1: bool = False, preference: list[int] | None = None) -> int:
    """Choose the ServerKeyExchange / CertificateVerify scheme for ``key`` (RFC 5246 §7.4.1.4.1).

    ``peer_schemes`` is the client's signature_algorithms, or ``None`` when it sent
    none: then TLS 1.2 says SHA-1 with the key type, which we only do with
    ``allow_sha1`` (signatures.py never makes SHA-1 signatures by default).
    HandshakeFailure when nothing fits.  ``preference`` is :func:`our_preference` of
    ``key`` when the caller keeps it (a server config does).
    """
    if peer_schemes is None:
        scheme = default_scheme(key)
        if not allow_sha1:
            raise HandshakeFailure("the client sent no signature_algorithms, so TLS 1.2 requires "
                                   "a SHA-1 signature (RFC 5246 §7.4.1.4.1), which is disabled")
        return scheme
    offered = list(peer_schemes)
    for scheme in (our_preference(key) if preference is None else preference):
        if scheme in offered:
            return scheme
    if allow_sha1:
        legacy = default_scheme(key)
        if legacy in offered:
            return legacy
    names = ", ".join(_scheme_name(s) for s in offered) or "none"
    raise HandshakeFailure(f"no common signature algorithm for the server key (client offered: {names})")


def _sign_sha1(private_key, scheme: int, data: bytes) -> bytes:
    """SHA-1 signatures, only for legacy peers and only when explicitly allowed."""
    if scheme == signatures.RSA_PKCS1_SHA1 and isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA1())
    if scheme == signatures.ECDSA_SHA1 and isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA1()))
    raise InternalError(f"scheme 0x{scheme:04x} does not fit the private key")


def sign_server_params(private_key, scheme: int, client_random: bytes, server_random: bytes,
                       params_raw: bytes, *, allow_sha1: bool = False) -> bytes:
    """Sign the ServerKeyExchange params for TLS 1.2 (RFC 5246 §7.4.3) with ``scheme``.

    SHA-1 schemes only with ``allow_sha1`` (see :func:`select_signature_scheme`).
    """
    data = signed_content(client_random, server_random, params_raw)
    if scheme in (signatures.RSA_PKCS1_SHA1, signatures.ECDSA_SHA1):
        if not allow_sha1:
            raise InternalError("SHA-1 ServerKeyExchange signatures are disabled")
        return _sign_sha1(private_key, scheme, data)
    return signatures.sign(private_key, scheme, data, tls13=False)


def verify_server_key_exchange(public_key, ske: ServerKeyExchange12, client_random: bytes,
                               server_random: bytes, *, offered_schemes: Iterable[int] | None = None,
                               version: int = TLS1_2, key=None) -> None:
    """Verify the ServerKeyExchange signature with the server certificate's key (``key``,
    when the caller parsed it already from the certificate ``public_key``).

    TLS 1.2 (RFC 5246 §7.4.3): the scheme must be one the client offered in
    signature_algorithms (``offered_schemes``; ``None`` means the client sent no
    extension, so only SHA-1 with the key's type is allowed, §7.4.1.4.1) and must
    fit the key and the suite, else IllegalParameter.  TLS 1.0/1.1: RSA signs
    MD5 || SHA-1 without DigestInfo, ECDSA signs SHA-1 (RFC 2246 §7.4.3, RFC 4492 §5.4).
    A wrong signature is DecryptError (RFC 5246 §7.4.3 / RFC 8446 §6.2 decrypt_error).
    """
    pub = _public(public_key) if key is None else key
    check_key_for_kx(ske.kx, pub)
    data = signed_content(client_random, server_random, ske.params_raw)
    if version < TLS1_2:
        _verify_legacy(pub, data, ske.signature)
        return
    scheme = ske.scheme
    allowed = [default_scheme(pub)] if offered_schemes is None else list(offered_schemes)
    if scheme not in allowed:
        raise IllegalParameter(f"ServerKeyExchange signed with {_scheme_name(scheme)}, "
                               "which the client did not offer")
    # A certificate (not just its key) lets signatures.py tell RSASSA-PSS keys apart.
    signatures.verify(public_key, scheme, data, ske.signature, tls13=False,
                      key=pub if isinstance(public_key, x509.Certificate) else None)


def _verify_legacy(pub, data: bytes, signature: bytes) -> None:
    if not isinstance(pub, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise IllegalParameter("TLS 1.0/1.1 ServerKeyExchange needs an RSA or ECDSA key")
    legacy.verify(pub, data, signature, "ServerKeyExchange")


# --------------------------------------------------------------------------- DHE

def known_dh_group(p: int, g: int) -> str | None:
    """The RFC 7919 name of (p, g), or None for server-generated parameters."""
    return _KNOWN_DH.get((p, g))


def validate_dh_params(p: int, g: int) -> str | None:
    """Check server-chosen DH parameters (RFC 5246 §7.4.3, RFC 7919 §3, §5.1).

    InsufficientSecurity for a prime below 1024 bits ("Logjam"-sized groups, RFC 7919
    §1), IllegalParameter for an even p or a generator outside 2..p-2.  Returns a
    warning string for a prime below 2048 bits (accepted, but weak), else None.
    """
    if p % 2 == 0:
        raise IllegalParameter("DH prime is even")
    bits = p.bit_length()
    if bits < 1024:  # i.e. p < 2^1023: p is odd, so p > 2^1023 exactly when bits >= 1024
        raise InsufficientSecurity(f"DH prime of {bits} bits, below 1024")
    if not 2 <= g <= p - 2:
        raise IllegalParameter("DH generator outside 2..p-2")
    if bits < 2048:
        return f"DH prime of {bits} bits, below 2048"
    return None


def validate_dh_public(p: int, y: int, who: str = "peer") -> None:
    """A DH public value must lie in 2..p-2 (RFC 7919 §5.1; 0, 1 and p-1 force the
    shared secret into a tiny subgroup).  IllegalParameter otherwise."""
    if not 2 <= y <= p - 2:
        raise IllegalParameter(f"{who} DH public value outside 2..p-2")


@contextlib.contextmanager
def _ffdh_allowed():
    """cryptography 50 deprecates finite-field DH; DHE_RSA is a deliberate (legacy-peer)
    feature here, so the warning would only be noise in the workbench's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _dh_private_key(p: int, g: int, provider):
    name = known_dh_group(p, g)
    key = provider.private_key(name or "dhe") if provider is not None else None
    if key is None:
        with _ffdh_allowed():
            key = dh.DHParameterNumbers(p, g).parameters().generate_private_key()
    return key


def _dh_premaster(private_key, p: int, g: int, y: int) -> bytes:
    try:
        with _ffdh_allowed():
            peer = dh.DHPublicNumbers(y, dh.DHParameterNumbers(p, g)).public_key()
            z = private_key.exchange(peer)
    except ValueError:
        raise IllegalParameter("DH public value rejected") from None
    # RFC 5246 §8.1.2: leading zero bytes of Z are stripped in TLS 1.0-1.2 (unlike TLS 1.3).
    return z.lstrip(b"\x00")


class DHEClientResult(NamedTuple):
    public: bytes          # dh_Yc for the ClientKeyExchange
    premaster: bytes
    warning: str | None    # from validate_dh_params (e.g. a 1024-bit prime)


def dhe_client_exchange(params: ServerDHParams, provider) -> DHEClientResult:
    """Client side of DHE: validate the server's p, g, Ys, make our key pair and the
    premaster (RFC 5246 §7.4.7.2, §8.1.2)."""
    p, g, ys = params.p, params.g, params.ys
    warning = validate_dh_params(p, g)
    validate_dh_public(p, ys, "server")
    key = _dh_private_key(p, g, provider)
    size = (p.bit_length() + 7) // 8
    public = key.public_key().public_numbers().y.to_bytes(size, "big")
    return DHEClientResult(public, _dh_premaster(key, p, g, ys), warning)


def dhe_server_key(provider, group: str = "ffdhe2048"):
    """Server side of DHE: a private key in an RFC 7919 group (RFC 7919 §4 servers use
    the named groups) and the ServerDHParams bytes to sign."""
    p = _FFDHE_PRIMES.get(group)
    if p is None:
        raise InternalError(f"unknown DHE group {group!r}")
    key = _dh_private_key(p, groups.FFDHE_GENERATOR, provider)
    ys = key.public_key().public_numbers().y
    return key, build_dhe_params(p, groups.FFDHE_GENERATOR, ys)


def dhe_server_premaster(private_key, dh_yc: bytes) -> bytes:
    """The premaster from the client's dh_Yc (validated: 2..p-2)."""
    nums = private_key.parameters().parameter_numbers()
    y = int.from_bytes(dh_yc, "big")
    validate_dh_public(nums.p, y, "client")
    return _dh_premaster(private_key, nums.p, nums.g, y)


# --------------------------------------------------------------------------- ECDHE

def check_ecdhe_group(group: int, offered: Iterable[int] | None = None) -> None:
    """The server's named_curve must be an ECDHE group and one the client offered
    (RFC 8422 §5.1.1, §5.4); IllegalParameter otherwise."""
    if group not in ECDHE_GROUPS:
        raise IllegalParameter(f"ServerKeyExchange names group 0x{group:04x}, not an ECDHE group "
                               "tlslab supports for TLS 1.2")
    if offered is not None and group not in set(offered):
        raise IllegalParameter(f"server chose group {groups.SUPPORTED_GROUPS.get(group, hex(group))}, "
                               "which the client did not offer")


def validate_ecdhe_point(group: int, point: bytes) -> None:
    """Check a peer ECPoint (RFC 8422 §5.4, §5.11): the right length for X25519/X448,
    an uncompressed point on the curve for the NIST curves.  IllegalParameter otherwise."""
    if group in _MONTGOMERY_LEN:
        if len(point) != _MONTGOMERY_LEN[group]:
            raise IllegalParameter(f"{groups.SUPPORTED_GROUPS[group]} point has {len(point)} bytes")
        return
    curve = _EC_CURVES.get(group)
    if curve is None:
        raise IllegalParameter(f"group 0x{group:04x} is not an ECDHE group")
    size = (curve.key_size + 7) // 8
    # RFC 8422 §5.1.2: compressed points are deprecated; uncompressed is the only format.
    if len(point) != 1 + 2 * size or point[0] != 4:
        raise IllegalParameter(f"{groups.SUPPORTED_GROUPS[group]} point is not an uncompressed point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError:
        raise IllegalParameter(f"{groups.SUPPORTED_GROUPS[group]} point is not on the curve") from None


def ecdhe_client_exchange(params: ServerECDHParams, provider,
                          offered_groups: Iterable[int] | None = None) -> tuple[bytes, bytes]:
    """Client side of ECDHE: ``(our point for ClientKeyExchange, premaster)`` (RFC 8422 §5.10).

    The group must be one we offered; the server's point is validated, and the
    all-zero X25519/X448 result rejected (groups.py, RFC 8422 §5.11).
    """
    group = params.named_curve
    check_ecdhe_group(group, offered_groups)
    validate_ecdhe_point(group, params.public)
    share = groups.new_key_share(group, provider)
    return share.public, share.shared_secret(params.public)


def ecdhe_server_key(group: int, provider) -> tuple[groups.KeyShare, bytes]:
    """Server side of ECDHE: our key share and the ServerECDHParams bytes to sign."""
    check_ecdhe_group(group)
    share = groups.new_key_share(group, provider)
    return share, build_ecdhe_params(group, share.public)


def ecdhe_server_premaster(share: groups.KeyShare, client_point: bytes) -> bytes:
    """The premaster from the client's ClientKeyExchange point (validated)."""
    validate_ecdhe_point(share.group, client_point)
    return share.shared_secret(client_point)


# --------------------------------------------------------------------------- static RSA

def _rsa_public(key) -> rsa.RSAPublicKey:
    pub = _public(key)
    if not isinstance(pub, rsa.RSAPublicKey):
        raise UnsupportedCertificate("RSA key exchange needs an RSA server certificate")
    return pub


def encrypt_premaster(server_public_key, client_version: int, provider) -> tuple[bytes, bytes]:
    """Client side of static RSA (RFC 5246 §7.4.7.1): ``(encrypted, premaster)``.

    premaster = ClientHello.client_version (the highest version offered, not the
    negotiated one) || 46 random bytes from the provider; encrypted with RSAES-
    PKCS1-v1_5.  The padding's own random bytes come from OpenSSL through
    ``cryptography`` and cannot be injected, so ``encrypted`` is not reproducible.
    ``server_public_key`` may be the certificate.
    """
    pub = _rsa_public(server_public_key)
    if pub.key_size < (PREMASTER_LEN + 11) * 8:
        # RFC 8017 §7.2.1: a message of mLen bytes needs a modulus of mLen + 11 bytes; a
        # smaller key (found by fuzzing) cannot carry the premaster at all
        raise InsufficientSecurity(f"the server's RSA key of {pub.key_size} bits is too small "
                                   f"for RSA key exchange (at least {(PREMASTER_LEN + 11) * 8} bits)")
    premaster = client_version.to_bytes(2, "big") + provider.random(PREMASTER_LEN - 2)
    try:
        return pub.encrypt(premaster, padding.PKCS1v15()), premaster
    except ValueError:
        # OpenSSL refuses keys it cannot use (an even modulus, a bad exponent): the
        # certificate is unusable, not our bug (found by fuzzing)
        raise UnsupportedCertificate("the server's RSA public key cannot be used for "
                                     "encryption (malformed modulus or exponent)") from None


def decrypt_premaster(private_key: rsa.RSAPrivateKey, encrypted: bytes, client_version: int,
                      provider) -> bytes:
    """Server side of static RSA, hardened against Bleichenbacher-style oracles
    (RFC 5246 §7.4.7.1; ROBOT, Böck et al. 2018).

    Never raises and never returns early: a bad ciphertext is only noticed when the
    Finished messages disagree, which is indistinguishable from a wrong key.

    1. R = 46 random bytes from the provider, drawn *before* decrypting, so the
       provider is used identically on every path.
    2. M = RSAES-PKCS1-v1_5 decryption of ``encrypted``.  ``cryptography`` on
       OpenSSL 3.2 or later (this project's build: cryptography 50, OpenSSL 4.0) does
       RSA *implicit rejection* (draft-irtf-cfrg-rsa-guidance §7.2), and does not turn
       it off: bad padding does not raise, it yields a synthetic message derived from
       the private key and the ciphertext (HMAC-based, deterministic, of a pseudo-
       random length), so a bad ciphertext takes the same path as a good one, in C,
       with no Python exception.  :func:`implicit_rejection_available` tells whether
       the running build does it.  ValueError is still raised, and caught here, for a
       ciphertext of the wrong length or one not below the modulus: both are facts
       anyone can check from the public key, so that path leaks nothing.  (On an
       older OpenSSL, bad padding raises too; the exception is then caught the same
       way, and the result is still the RFC's random premaster, but a Python
       exception then marks bad padding; this build cannot turn implicit rejection
       off, so that case was not measured.)
       Measured (benchmarks/rsa_premaster_timing.py, RSA-2048, 20,000 interleaved
       samples per kind, Mann-Whitney U; README "Static RSA on the server"): medians
       315.5 µs (good) and 315.6 µs (bad padding), p = 0.12; 47-byte and wrong-version
       blocks p = 0.92 and 0.74: no difference found.  Padding M by concatenation
       (work growing with M's length) instead of the bounded slice below gave
       +0.24 µs, p = 0.017.
    3. If M is not exactly 48 bytes, the premaster is client_version || R; else it
       is client_version || M[2..47].  Replacing M's version bytes with
       ClientHello.client_version (rather than checking them) is what §7.4.7.1
       specifies: a client that put other bytes there ends up with a different
       premaster, so the handshake fails at Finished with no separate signal.
       The choice is made with integer masks, not a branch on secret data.

    As everywhere in Python, this is not truly constant-time (see protection.py).
    """
    random_tail = provider.random(PREMASTER_LEN - 2)
    try:  # bad padding does not raise with implicit rejection; see 2. above
        message = private_key.decrypt(encrypted, padding.PKCS1v15())
    except ValueError:
        message = b""
    ok = int(len(message) == PREMASTER_LEN)
    # a slice of at most 46 bytes, padded: the same work whatever the length of M
    candidate = message[2:PREMASTER_LEN].ljust(PREMASTER_LEN - 2, b"\0")
    bits = 8 * (PREMASTER_LEN - 2)
    mask = -ok & ((1 << bits) - 1)
    chosen = ((int.from_bytes(candidate, "big") & mask)
              | (int.from_bytes(random_tail, "big") & ~mask)) & ((1 << bits) - 1)
    return client_version.to_bytes(2, "big") + chosen.to_bytes(PREMASTER_LEN - 2, "big")


_IMPLICIT_REJECTION: bool | None = None


def implicit_rejection_available() -> bool:
    """Whether this ``cryptography``/OpenSSL build answers bad PKCS#1 v1.5 padding with a
    synthetic message (RSA implicit rejection, OpenSSL 3.2+) instead of raising.

    Found out once, by decrypting a block with bad padding under a throwaway 1024-bit key
    (only this probe uses such a key)."""
    global _IMPLICIT_REJECTION
    if _IMPLICIT_REJECTION is None:
        key = rsa.generate_private_key(65537, 1024)
        n = key.public_key().public_numbers().n
        bad = (n - 1).to_bytes(128, "big")  # -1 mod n: never a valid block (00 02 ...)
        try:
            key.decrypt(bad, padding.PKCS1v15())
            _IMPLICIT_REJECTION = True
        except ValueError:
            _IMPLICIT_REJECTION = False
    return _IMPLICIT_REJECTION
