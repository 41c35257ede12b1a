"""Signature schemes (RFC 8446 §4.2.3) and the CertificateVerify signature input (§4.4.3).

Keys are ``cryptography`` key objects.  Where a public key is expected an
``x509.Certificate`` is accepted too, and is the only way to tell an RSASSA-PSS
key (OID id-RSASSA-PSS, usable only with rsa_pss_pss_*) from an rsaEncryption
key (usable only with rsa_pss_rsae_* in TLS 1.3): ``cryptography`` loads both
as the same ``RSAPublicKey`` type.  A bare RSA key is taken to be rsaEncryption,
by far the common case.
"""
from __future__ import annotations

from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from .errors import DecryptError, IllegalParameter, InternalError

RSA_PKCS1_SHA1 = 0x0201
ECDSA_SHA1 = 0x0203
RSA_PKCS1_SHA256 = 0x0401
ECDSA_SECP256R1_SHA256 = 0x0403
RSA_PKCS1_SHA384 = 0x0501
ECDSA_SECP384R1_SHA384 = 0x0503
RSA_PKCS1_SHA512 = 0x0601
ECDSA_SECP521R1_SHA512 = 0x0603
RSA_PSS_RSAE_SHA256 = 0x0804
RSA_PSS_RSAE_SHA384 = 0x0805
RSA_PSS_RSAE_SHA512 = 0x0806
ED25519 = 0x0807
ED448 = 0x0808
RSA_PSS_PSS_SHA256 = 0x0809
RSA_PSS_PSS_SHA384 = 0x080A
RSA_PSS_PSS_SHA512 = 0x080B

# §4.4.3: RSA signatures in CertificateVerify MUST be PSS; SHA-1 is not allowed at all.
TLS13_CERTVERIFY_SCHEMES = frozenset({
    ECDSA_SECP256R1_SHA256, ECDSA_SECP384R1_SHA384, ECDSA_SECP521R1_SHA512,
    RSA_PSS_RSAE_SHA256, RSA_PSS_RSAE_SHA384, RSA_PSS_RSAE_SHA512,
    RSA_PSS_PSS_SHA256, RSA_PSS_PSS_SHA384, RSA_PSS_PSS_SHA512,
    ED25519, ED448,
})

_ECDSA = {
    ECDSA_SECP256R1_SHA256: (hashes.SHA256, "secp256r1"),
    ECDSA_SECP384R1_SHA384: (hashes.SHA384, "secp384r1"),
    ECDSA_SECP521R1_SHA512: (hashes.SHA512, "secp521r1"),
    ECDSA_SHA1: (hashes.SHA1, None),
}
_RSA_PSS_RSAE = {RSA_PSS_RSAE_SHA256: hashes.SHA256, RSA_PSS_RSAE_SHA384: hashes.SHA384,
                 RSA_PSS_RSAE_SHA512: hashes.SHA512}
_RSA_PSS_PSS = {RSA_PSS_PSS_SHA256: hashes.SHA256, RSA_PSS_PSS_SHA384: hashes.SHA384,
                RSA_PSS_PSS_SHA512: hashes.SHA512}
_RSA_PKCS1 = {RSA_PKCS1_SHA256: hashes.SHA256, RSA_PKCS1_SHA384: hashes.SHA384,
              RSA_PKCS1_SHA512: hashes.SHA512, RSA_PKCS1_SHA1: hashes.SHA1}
_SIGN_ONLY_FORBIDDEN = {RSA_PKCS1_SHA1, ECDSA_SHA1}  # we never produce SHA-1 signatures

_RSASSA_PSS_OID = x509.ObjectIdentifier("1.2.840.113549.1.1.10")
_CURVE_SCHEME = {"secp256r1": ECDSA_SECP256R1_SHA256, "secp384r1": ECDSA_SECP384R1_SHA384,
                 "secp521r1": ECDSA_SECP521R1_SHA512}

_SERVER_CONTEXT = b"TLS 1.3, server CertificateVerify"
_CLIENT_CONTEXT = b"TLS 1.3, client CertificateVerify"
_SERVER_PREFIX = b"\x20" * 64 + _SERVER_CONTEXT + b"\x00"
_CLIENT_PREFIX = b"\x20" * 64 + _CLIENT_CONTEXT + b"\x00"


def certificate_verify_input(transcript_hash: bytes, server: bool) -> bytes:
    """The content covered by a CertificateVerify signature (RFC 8446 §4.4.3): 64 spaces,
    the context string, a zero byte, then the transcript hash."""
    return (_SERVER_PREFIX if server else _CLIENT_PREFIX) + transcript_hash


# -- key families --------------------------------------------------------------------
# ``cryptography``'s key classes are ABCs with the backend's types registered under them,
# and isinstance against an ABC costs far more than a dict lookup.  What a concrete type
# is never changes, so it is classified once per type: its family (public and private key
# types alike: a private key's family and curve need no public key derived from it) and
# whether it is a private key.
KEY_EC, KEY_RSA, KEY_ED25519, KEY_ED448 = "ec", "rsa", "ed25519", "ed448"
_FAMILY_CLASSES = (
    (KEY_EC, ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey),
    (KEY_RSA, rsa.RSAPublicKey, rsa.RSAPrivateKey),
    (KEY_ED25519, ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey),
    (KEY_ED448, ed448.Ed448PublicKey, ed448.Ed448PrivateKey),
)
#: concrete key type -> (family or None: no key we sign or verify with, private key?).
#: Bounded: a process has a handful of key types; past the bound, types are classified
#: each time.
_FAMILIES: dict[type, tuple[str | None, bool]] = {}
_FAMILIES_MAX = 64


def _classify(key) -> tuple[str | None, bool]:
    kind = type(key)
    try:
        return _FAMILIES[kind]
    except KeyError:
        pass
    found = (None, False)
    for family, public, private in _FAMILY_CLASSES:
        if isinstance(key, private):
            found = (family, True)
            break
        if isinstance(key, public):
            found = (family, False)
            break
    if len(_FAMILIES) < _FAMILIES_MAX:
        _FAMILIES[kind] = found  # same value whichever thread writes it
    return found


def key_family(key) -> str | None:
    """:data:`KEY_EC`, :data:`KEY_RSA`, :data:`KEY_ED25519`, :data:`KEY_ED448` or None, for a
    public or a private key."""
    return _classify(key)[0]


def is_private_key(key) -> bool:
    """Whether ``key`` is an RSA, ECDSA or EdDSA private key."""
    return _classify(key)[1]


# -- what each scheme needs and how it signs (RFC 8446 §4.2.3) ---------------------------
class _Scheme(NamedTuple):
    family: str
    curve: str | None  # ECDSA: the curve TLS 1.3 ties to the scheme
    #: RSA: which key the scheme needs: "pss" (RSASSA-PSS), "rsae" (rsaEncryption),
    #: "pkcs1" (not RSASSA-PSS; any RSA key for a private key)
    rsa_key: str | None
    #: the arguments after (signature,) data for verify and after data for sign
    args: tuple


def _pss(hash_cls) -> padding.PSS:
    # §4.2.3: salt length equal to the digest length, MGF1 with the same hash.
    return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)


# Algorithm and padding objects hold no state once built: one per scheme serves every
# signature, from any thread.
_SCHEMES: dict[int, _Scheme] = {}
for _code, (_hash, _curve) in _ECDSA.items():
    _SCHEMES[_code] = _Scheme(KEY_EC, _curve, None, (ec.ECDSA(_hash()),))
for _code, _hash in _RSA_PKCS1.items():
    _SCHEMES[_code] = _Scheme(KEY_RSA, None, "pkcs1", (padding.PKCS1v15(), _hash()))
for _code, _hash in _RSA_PSS_PSS.items():
    _SCHEMES[_code] = _Scheme(KEY_RSA, None, "pss", (_pss(_hash), _hash()))
for _code, _hash in _RSA_PSS_RSAE.items():
    _SCHEMES[_code] = _Scheme(KEY_RSA, None, "rsae", (_pss(_hash), _hash()))
_SCHEMES[ED25519] = _Scheme(KEY_ED25519, None, None, ())
_SCHEMES[ED448] = _Scheme(KEY_ED448, None, None, ())
_NEEDS = {KEY_EC: "an ECDSA key", KEY_RSA: "an RSA key"}


def _params(key, is_pss_key, scheme: int, tls13: bool, error) -> _Scheme:
    """Check that ``scheme`` fits ``key`` (a public or private key) and return its entry.

    ``is_pss_key`` None means "unknown" (a private key): either RSA-PSS family fits.
    """
    if tls13 and scheme not in TLS13_CERTVERIFY_SCHEMES:
        # §4.4.3: no PKCS#1 v1.5 and no SHA-1 in a TLS 1.3 CertificateVerify, even when
        # offered in signature_algorithms (where they may be listed for certificates).
        raise error(f"signature scheme {_scheme_name(scheme)} is not allowed in TLS 1.3 "
                    "CertificateVerify")
    entry = _SCHEMES.get(scheme)
    if entry is None:
        raise error(f"signature scheme 0x{scheme:04x} is not supported")
    family = key_family(key)
    if family != entry.family:
        if entry.family == KEY_ED25519:
            raise error("ed25519 needs an Ed25519 key")
        if entry.family == KEY_ED448:
            raise error("ed448 needs an Ed448 key")
        raise error(f"signature scheme 0x{scheme:04x} needs {_NEEDS[entry.family]}")
    if family == KEY_EC:
        # §4.2.3: in TLS 1.3 the scheme fixes the curve; TLS 1.2 only named the hash.
        curve = entry.curve
        if tls13 and curve is not None and key.curve.name != curve:
            raise error(f"signature scheme 0x{scheme:04x} needs a {curve} key, "
                        f"not {key.curve.name}")
    elif family == KEY_RSA:
        rsa_key = entry.rsa_key
        if rsa_key == "pkcs1":
            if is_pss_key:
                raise error("an RSASSA-PSS key cannot make PKCS#1 v1.5 signatures")
        # §4.2.3: rsae schemes are for rsaEncryption keys, pss schemes for RSASSA-PSS keys.
        elif rsa_key == "pss":
            if is_pss_key is False:
                raise error("rsa_pss_pss_* needs an RSASSA-PSS certificate key, "
                            "the certificate has an rsaEncryption key")
        elif is_pss_key:
            raise error("rsa_pss_rsae_* needs an rsaEncryption key, the certificate key is "
                        "RSASSA-PSS")
    return entry


def _params_for(public_key, scheme: int, tls13: bool, key=None):
    """(key object, scheme entry) for :func:`verify`; ``public_key`` may be a certificate,
    whose key algorithm OID is read only for RSA schemes (the only ones it decides), and
    ``key`` its public key if the caller has it already."""
    if isinstance(public_key, x509.Certificate):
        if key is None:
            key = public_key.public_key()
        entry = _SCHEMES.get(scheme)
        is_pss_key = (public_key.public_key_algorithm_oid == _RSASSA_PSS_OID
                      if entry is not None and entry.family == KEY_RSA else False)
        return key, _params(key, is_pss_key, scheme, tls13, IllegalParameter)
    return public_key, _params(public_key, False, scheme, tls13, IllegalParameter)


def sign(private_key, scheme: int, data: bytes, *, tls13: bool = True) -> bytes:
    """Sign ``data`` with ``scheme`` (RFC 8446 §4.2.3).

    A scheme that does not fit the key is a local configuration error
    (InternalError).  rsa_pss_pss_* is accepted with any RSA private key, since
    the key object cannot show whether its certificate is RSASSA-PSS: choose
    the scheme with :func:`schemes_for_key` on the certificate.  SHA-1 schemes
    are refused.
    """
    if scheme in _SIGN_ONLY_FORBIDDEN:
        raise InternalError("tlslab does not make SHA-1 signatures")
    entry = _params(private_key, None, scheme, tls13, InternalError)
    return private_key.sign(data, *entry.args)


def verify(public_key, scheme: int, data: bytes, signature: bytes, *, tls13: bool = True,
           key=None) -> None:
    """Verify a signature (RFC 8446 §4.2.3, §4.4.3); ``public_key`` may be a certificate.

    Raises IllegalParameter when ``scheme`` does not fit the key (with
    ``tls13=True`` the ECDSA curve must match the scheme and the scheme must be in
    :data:`TLS13_CERTVERIFY_SCHEMES`; pass ``tls13=False`` for TLS 1.2 or for
    PKCS#1 / SHA-1 signatures) and DecryptError when
    the signature is wrong, the alert §4.4.3 asks for.  ``key`` is the certificate's
    public key when the caller parsed it already (parsing costs about 5 µs).
    """
    key, entry = _params_for(public_key, scheme, tls13, key)
    try:
        key.verify(signature, data, *entry.args)
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        raise DecryptError(f"signature ({_scheme_name(scheme)}) does not verify") from None


def schemes_for_key(key) -> list[int]:
    """The TLS 1.3 CertificateVerify schemes usable with ``key`` (a private key, public
    key or certificate), in our order of preference (RFC 8446 §4.2.3)."""
    is_pss_key = False
    if isinstance(key, x509.Certificate):
        is_pss_key = key.public_key_algorithm_oid == _RSASSA_PSS_OID
        key = key.public_key()
    family = key_family(key)
    if family == KEY_EC:
        scheme = _CURVE_SCHEME.get(key.curve.name)
        return [scheme] if scheme else []
    if family == KEY_RSA:
        table = _RSA_PSS_PSS if is_pss_key else _RSA_PSS_RSAE
        # RFC 8017 §9.1.1: PSS with an hLen-byte salt needs emLen >= 2 * hLen + 2, where
        # emLen = ceil((modBits - 1) / 8); e.g. a 1024-bit key cannot do SHA-512.
        em_len = (key.key_size - 1 + 7) // 8
        return [s for s, h in table.items() if em_len >= 2 * h.digest_size + 2]
    if family == KEY_ED25519:
        return [ED25519]
    if family == KEY_ED448:
        return [ED448]
    return []


def _scheme_name(scheme: int) -> str:
    from .names import SignatureScheme, name_of

    return name_of(SignatureScheme, scheme)
