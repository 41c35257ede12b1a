"""Key exchange groups for TLS 1.3 key shares (RFC 8446 §4.2.7, §4.2.8, §7.4; RFC 7919;
draft-ietf-tls-ecdhe-mlkem for X25519MLKEM768 and SecP256r1MLKEM768).

The client side is a :class:`KeyShare` (made by :func:`new_key_share`) that later
turns the server's share into the shared secret; the server side is the single
call :func:`server_key_share`.  Peer shares are validated here and any defect
is an ``illegal_parameter`` alert (RFC 8446 §4.2.8.1, §4.2.8.2).

Private keys come from ``provider.private_key(group_name)`` when it returns one
(so RFC 8448 can be replayed); otherwise ``cryptography`` generates them.
"""
from __future__ import annotations

import contextlib
import hmac
import warnings

from cryptography.hazmat.primitives.asymmetric import dh, ec, x448, x25519
from cryptography.utils import CryptographyDeprecationWarning

from .errors import IllegalParameter, InternalError

try:  # ML-KEM appeared in cryptography 46 only on some OpenSSL builds
    from cryptography.hazmat.primitives.asymmetric import mlkem as _mlkem

    _mlkem.MLKEM768PrivateKey.generate()
    HAVE_MLKEM = True
except Exception:  # ImportError, or UnsupportedAlgorithm on a backend without it
    _mlkem = None
    HAVE_MLKEM = False

X25519 = 0x001D
X448 = 0x001E
SECP256R1 = 0x0017
SECP384R1 = 0x0018
SECP521R1 = 0x0019
FFDHE2048 = 0x0100
FFDHE3072 = 0x0101
FFDHE4096 = 0x0102
FFDHE6144 = 0x0103
FFDHE8192 = 0x0104
SECP256R1MLKEM768 = 0x11EB
X25519MLKEM768 = 0x11EC

SUPPORTED_GROUPS: dict[int, str] = {
    X25519: "x25519",
    SECP256R1: "secp256r1",
    SECP384R1: "secp384r1",
    SECP521R1: "secp521r1",
    X448: "x448",
    FFDHE2048: "ffdhe2048",
    FFDHE3072: "ffdhe3072",
    FFDHE4096: "ffdhe4096",
    FFDHE6144: "ffdhe6144",
    FFDHE8192: "ffdhe8192",
}
if HAVE_MLKEM:
    SUPPORTED_GROUPS[X25519MLKEM768] = "X25519MLKEM768"
    SUPPORTED_GROUPS[SECP256R1MLKEM768] = "SecP256r1MLKEM768"

#: RFC 8446 §4.2.7 / Appendix B.3.1.4: code points of the groups TLS 1.3 made obsolete
#: (the binary sect* curves, secp160/192/224 and secp256k1, the TLS 1.2 brainpool curves,
#: the explicit-curve markers); they "MUST NOT be offered or negotiated by TLS 1.3
#: implementations".
OBSOLETE_TLS13_GROUPS = (range(0x0001, 0x0016 + 1), range(0x001A, 0x001C + 1),
                         range(0xFF01, 0xFF02 + 1))


_OBSOLETE_TLS13 = frozenset(g for r in OBSOLETE_TLS13_GROUPS for g in r)


def obsolete_in_tls13(group: int) -> bool:
    """Whether ``group`` is one of :data:`OBSOLETE_TLS13_GROUPS`."""
    return group in _OBSOLETE_TLS13


_CURVES = {SECP256R1: ec.SECP256R1(), SECP384R1: ec.SECP384R1(), SECP521R1: ec.SECP521R1()}
_CURVE_BYTES = {SECP256R1: 32, SECP384R1: 48, SECP521R1: 66}
# bound once: these run on every x25519 handshake
_X25519_GENERATE = x25519.X25519PrivateKey.generate
_X25519_PUBLIC = x25519.X25519PublicKey.from_public_bytes
#: the all-zero X25519 / X448 result (RFC 7748 §6), by length
_ZEROS = {32: bytes(32), 56: bytes(56)}

# RFC 7919 Appendix A.1 to A.5 safe primes (generator 2).  Each equals
# 2^b - 2^(b-64) + {[2^(b-130) e] + c} * 2^64 - 1 (the tests recompute that).
FFDHE2048_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF", 16)
FFDHE3072_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B66C62E37FFFFFFFFFFFFFFFF", 16)
FFDHE4096_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B669E1EF16E6F52C3164DF4FB"
    "7930E9E4E58857B6AC7D5F42D69F6D187763CF1D5503400487F55BA57E31CC7A"
    "7135C886EFB4318AED6A1E012D9E6832A907600A918130C46DC778F971AD0038"
    "092999A333CB8B7A1A1DB93D7140003C2A4ECEA9F98D0ACC0A8291CDCEC97DCF"
    "8EC9B55A7F88A46B4DB5A851F44182E1C68A007E5E655F6AFFFFFFFFFFFFFFFF", 16)
FFDHE6144_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B669E1EF16E6F52C3164DF4FB"
    "7930E9E4E58857B6AC7D5F42D69F6D187763CF1D5503400487F55BA57E31CC7A"
    "7135C886EFB4318AED6A1E012D9E6832A907600A918130C46DC778F971AD0038"
    "092999A333CB8B7A1A1DB93D7140003C2A4ECEA9F98D0ACC0A8291CDCEC97DCF"
    "8EC9B55A7F88A46B4DB5A851F44182E1C68A007E5E0DD9020BFD64B645036C7A"
    "4E677D2C38532A3A23BA4442CAF53EA63BB454329B7624C8917BDD64B1C0FD4C"
    "B38E8C334C701C3ACDAD0657FCCFEC719B1F5C3E4E46041F388147FB4CFDB477"
    "A52471F7A9A96910B855322EDB6340D8A00EF092350511E30ABEC1FFF9E3A26E"
    "7FB29F8C183023C3587E38DA0077D9B4763E4E4B94B2BBC194C6651E77CAF992"
    "EEAAC0232A281BF6B3A739C1226116820AE8DB5847A67CBEF9C9091B462D538C"
    "D72B03746AE77F5E62292C311562A846505DC82DB854338AE49F5235C95B9117"
    "8CCF2DD5CACEF403EC9D1810C6272B045B3B71F9DC6B80D63FDD4A8E9ADB1E69"
    "62A69526D43161C1A41D570D7938DAD4A40E329CD0E40E65FFFFFFFFFFFFFFFF", 16)
FFDHE8192_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B669E1EF16E6F52C3164DF4FB"
    "7930E9E4E58857B6AC7D5F42D69F6D187763CF1D5503400487F55BA57E31CC7A"
    "7135C886EFB4318AED6A1E012D9E6832A907600A918130C46DC778F971AD0038"
    "092999A333CB8B7A1A1DB93D7140003C2A4ECEA9F98D0ACC0A8291CDCEC97DCF"
    "8EC9B55A7F88A46B4DB5A851F44182E1C68A007E5E0DD9020BFD64B645036C7A"
    "4E677D2C38532A3A23BA4442CAF53EA63BB454329B7624C8917BDD64B1C0FD4C"
    "B38E8C334C701C3ACDAD0657FCCFEC719B1F5C3E4E46041F388147FB4CFDB477"
    "A52471F7A9A96910B855322EDB6340D8A00EF092350511E30ABEC1FFF9E3A26E"
    "7FB29F8C183023C3587E38DA0077D9B4763E4E4B94B2BBC194C6651E77CAF992"
    "EEAAC0232A281BF6B3A739C1226116820AE8DB5847A67CBEF9C9091B462D538C"
    "D72B03746AE77F5E62292C311562A846505DC82DB854338AE49F5235C95B9117"
    "8CCF2DD5CACEF403EC9D1810C6272B045B3B71F9DC6B80D63FDD4A8E9ADB1E69"
    "62A69526D43161C1A41D570D7938DAD4A40E329CCFF46AAA36AD004CF600C838"
    "1E425A31D951AE64FDB23FCEC9509D43687FEB69EDD1CC5E0B8CC3BDF64B10EF"
    "86B63142A3AB8829555B2F747C932665CB2C0F1CC01BD70229388839D2AF05E4"
    "54504AC78B7582822846C0BA35C35F5C59160CC046FD8251541FC68C9C86B022"
    "BB7099876A460E7451A8A93109703FEE1C217E6C3826E52C51AA691E0E423CFC"
    "99E9E31650C1217B624816CDAD9A95F9D5B8019488D9C0A0A1FE3075A577E231"
    "83F81D4A3F2FA4571EFC8CE0BA8A4FE8B6855DFE72B0A66EDED2FBABFBE58A30"
    "FAFABE1C5D71A87E2F741EF8C1FE86FEA6BBFDE530677F0D97D11D49F7A8443D"
    "0822E506A9F4614E011E2A94838FF88CD68C8BB7C5C6424CFFFFFFFFFFFFFFFF", 16)
FFDHE_GENERATOR = 2
_FFDHE_P = {FFDHE2048: FFDHE2048_P, FFDHE3072: FFDHE3072_P, FFDHE4096: FFDHE4096_P,
            FFDHE6144: FFDHE6144_P, FFDHE8192: FFDHE8192_P}
_FFDHE_PARAMS: dict[int, dh.DHParameters] = {}

_MLKEM768_EK_LEN = 1184
_MLKEM768_CT_LEN = 1088

# draft-ietf-tls-ecdhe-mlkem §3 ("Negotiated Groups"): each hybrid pairs ML-KEM-768 with a
# classic group, and the order of the two halves differs.  X25519MLKEM768 puts ML-KEM first
# in both shares and in the shared secret (for historical reasons); SecP256r1MLKEM768 puts
# the ECDH half first everywhere, so that the first secret fed to HKDF is FIPS-approved.
# group -> (classic group, classic share length, ML-KEM first?)
_HYBRIDS = {
    X25519MLKEM768: (X25519, 32, True),
    SECP256R1MLKEM768: (SECP256R1, 65, False),
}


def _ffdhe_parameters(group: int) -> dh.DHParameters:
    # Built lazily and cached: loading DH parameters is not free and most runs never use them.
    params = _FFDHE_PARAMS.get(group)
    if params is None:
        with _quiet_ffdh():
            params = dh.DHParameterNumbers(_FFDHE_P[group], FFDHE_GENERATOR).parameters()
        _FFDHE_PARAMS[group] = params
    return params


@contextlib.contextmanager
def _quiet_ffdh():
    """cryptography 50 deprecates finite-field DH; the RFC 7919 groups are offered on
    purpose (real peers use them), so the warning would only be noise for users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _group_name(group: int) -> str:
    try:
        return SUPPORTED_GROUPS[group]
    except KeyError:
        raise InternalError(f"group 0x{group:04x} is not supported") from None


def _check_len(group: int, data: bytes, expected: int) -> None:
    if len(data) != expected:
        raise IllegalParameter(f"{SUPPORTED_GROUPS[group]} key share has {len(data)} bytes, "
                               f"expected {expected}")


def _generate(group: int, provider):
    """A private key for ``group``: the provider's fixed one if it has one, else a fresh one."""
    key = provider.private_key(_group_name(group)) if provider is not None else None
    if key is not None:
        return key
    if group == X25519:
        return _X25519_GENERATE()
    if group == X448:
        return x448.X448PrivateKey.generate()
    if group in _CURVES:
        return ec.generate_private_key(_CURVES[group])
    if group in _FFDHE_P:
        with _quiet_ffdh():
            return _ffdhe_parameters(group).generate_private_key()
    if group in _HYBRIDS:
        return (_mlkem.MLKEM768PrivateKey.generate(), _generate_classic(_HYBRIDS[group][0]))
    raise InternalError(f"group 0x{group:04x} is not supported")


def _public_bytes(group: int, key) -> bytes:
    """The key_exchange field for our own key (RFC 8446 §4.2.8.1, §4.2.8.2)."""
    if group in (X25519, X448):
        return key.public_key().public_bytes_raw()
    if group in _CURVES:
        n = _CURVE_BYTES[group]
        nums = key.public_key().public_numbers()
        return b"\x04" + nums.x.to_bytes(n, "big") + nums.y.to_bytes(n, "big")
    if group in _FFDHE_P:
        # §4.2.8.1: Y left-padded with zeros to the size of p.
        return key.public_key().public_numbers().y.to_bytes(_ffdhe_len(group), "big")
    if group in _HYBRIDS:
        kem_key, ecdh_key = key
        classic, _, kem_first = _HYBRIDS[group]
        return _join(kem_first, kem_key.public_key().public_bytes_raw(),
                     _public_bytes(classic, ecdh_key))
    raise InternalError(f"group 0x{group:04x} is not supported")


def _generate_classic(group: int):
    if group == X25519:
        return _X25519_GENERATE()
    return ec.generate_private_key(_CURVES[group])


def _join(kem_first: bool, kem_part: bytes, classic_part: bytes) -> bytes:
    return kem_part + classic_part if kem_first else classic_part + kem_part


def _split_hybrid(group: int, data: bytes, kem_len: int) -> tuple[bytes, bytes]:
    """``(ML-KEM part, classic part)`` of a hybrid key_exchange, after checking its length."""
    _, classic_len, kem_first = _HYBRIDS[group]
    _check_len(group, data, kem_len + classic_len)
    if kem_first:
        return data[:kem_len], data[kem_len:]
    return data[classic_len:], data[:classic_len]


def _classic_secret(group: int, key, peer_public: bytes) -> bytes:
    """The ECDH half of a hybrid secret, validated as RFC 8446 §4.2.8.2 / §7.4.2 require."""
    classic = _HYBRIDS[group][0]
    if classic == X25519:
        return _montgomery(group, key, peer_public)
    return _ecdh(classic, key, peer_public)


def _ffdhe_len(group: int) -> int:
    return (_FFDHE_P[group].bit_length() + 7) // 8


def _montgomery(group: int, key, peer_public: bytes) -> bytes:
    """X25519 / X448 (RFC 7748 §5) with the checks of RFC 8446 §4.2.8.2 and §7.4.2."""
    cls, size = ((_X25519_PUBLIC, 32) if group == X25519 or group == X25519MLKEM768
                 else (x448.X448PublicKey.from_public_bytes, 56))
    if len(peer_public) != size:
        raise IllegalParameter(f"{SUPPORTED_GROUPS[group]} share has {len(peer_public)} bytes, "
                               f"expected {size}")
    try:
        shared = key.exchange(cls(peer_public))
    except ValueError:
        # OpenSSL refuses low-order points, whose result would be all zeros.
        raise IllegalParameter("x25519/x448 key share is a low-order point") from None
    # RFC 8446 §7.4.2 / RFC 7748 §6: an all-zero result MUST be rejected.  compare_digest
    # takes the same time whatever the secret is (any() would stop at its first non-zero byte).
    if hmac.compare_digest(shared, _ZEROS[size]):
        raise IllegalParameter("x25519/x448 shared secret is all zeros")
    return shared


def _ecdh(group: int, key, peer_public: bytes) -> bytes:
    n = _CURVE_BYTES[group]
    # §4.2.8.2: only the uncompressed form is allowed in TLS 1.3.
    if len(peer_public) != 1 + 2 * n or peer_public[0] != 4:
        raise IllegalParameter(f"{SUPPORTED_GROUPS[group]} key share is not an uncompressed point")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[group], peer_public)
        shared = key.exchange(ec.ECDH(), peer)
    except ValueError:
        raise IllegalParameter(f"{SUPPORTED_GROUPS[group]} key share is not a point on the curve") from None
    # §7.4.2: the shared secret is the x-coordinate, fixed-length big-endian.
    return shared.rjust(n, b"\x00")


def _ffdh(group: int, key, peer_public: bytes) -> bytes:
    size = _ffdhe_len(group)
    _check_len(group, peer_public, size)
    p = _FFDHE_P[group]
    y = int.from_bytes(peer_public, "big")
    # §4.2.8.1: peers MUST check 1 < Y < p - 1.
    if not 1 < y < p - 1:
        raise IllegalParameter(f"{SUPPORTED_GROUPS[group]} public value out of range")
    try:
        with _quiet_ffdh():
            peer = dh.DHPublicNumbers(y, dh.DHParameterNumbers(p, FFDHE_GENERATOR)).public_key()
            shared = key.exchange(peer)
    except ValueError:
        raise IllegalParameter(f"{SUPPORTED_GROUPS[group]} public value rejected") from None
    # §7.4.1: Z is left-padded with zeros to the size of p.
    return shared.rjust(size, b"\x00")


class KeyShare:
    """A client's ephemeral key for one group (RFC 8446 §4.2.8).

    ``public`` is the KeyShareEntry.key_exchange value to send; :meth:`shared_secret`
    turns the server's key_exchange value into the (EC)DHE / hybrid shared secret.
    """

    __slots__ = ("group", "name", "private_key", "public")

    def __init__(self, group: int, private_key) -> None:
        self.group = group
        self.name = _group_name(group)
        self.private_key = private_key
        self.public = _public_bytes(group, private_key)

    def shared_secret(self, peer_public: bytes) -> bytes:
        """The shared secret with the server's key_exchange; IllegalParameter if it is invalid."""
        group = self.group
        if group == X25519 or group == X448:
            return _montgomery(group, self.private_key, peer_public)
        if group in _CURVES:
            return _ecdh(group, self.private_key, peer_public)
        if group in _FFDHE_P:
            return _ffdh(group, self.private_key, peer_public)
        if group in _HYBRIDS:
            # draft-ietf-tls-ecdhe-mlkem §3.1: the server share holds the ML-KEM ciphertext and
            # the server's ECDH share, the secret both halves' secrets, in the group's order.
            ct, classic_public = _split_hybrid(group, peer_public, _MLKEM768_CT_LEN)
            kem_key, ecdh_key = self.private_key
            ecdh_secret = _classic_secret(group, ecdh_key, classic_public)
            try:
                kem_secret = kem_key.decapsulate(ct)
            except ValueError:
                raise IllegalParameter("ML-KEM-768 ciphertext rejected") from None
            return _join(_HYBRIDS[group][2], kem_secret, ecdh_secret)
        raise InternalError(f"group 0x{group:04x} is not supported")


def new_key_share(group: int, provider) -> KeyShare:
    """A client key share for ``group`` (RFC 8446 §4.2.8).

    ``provider.private_key(name)`` may return a fixed key (for X25519MLKEM768 a
    ``(MLKEM768PrivateKey, X25519PrivateKey)`` pair, for SecP256r1MLKEM768 a
    ``(MLKEM768PrivateKey, EllipticCurvePrivateKey)`` one); otherwise one is generated.
    """
    return KeyShare(group, _generate(group, provider))


def server_key_share(group: int, client_public: bytes, provider) -> tuple[bytes, bytes]:
    """The server side of the key exchange: ``(server key_exchange, shared secret)``.

    Raises IllegalParameter if the client's share is invalid.  For the hybrid
    groups the server encapsulates to the client's ML-KEM key (the encapsulation
    randomness comes from ``cryptography``, which has no way to inject it); the
    ECDH half (X25519 or P-256) uses the provider like the other groups.
    """
    if group in _HYBRIDS:
        classic, _, kem_first = _HYBRIDS[group]
        ek_bytes, classic_public = _split_hybrid(group, client_public, _MLKEM768_EK_LEN)
        try:
            # from_public_bytes runs the FIPS 203 §7.2 encapsulation key check
            ek = _mlkem.MLKEM768PublicKey.from_public_bytes(ek_bytes)
            kem_secret, ciphertext = ek.encapsulate()
        except ValueError:
            raise IllegalParameter("ML-KEM-768 encapsulation key rejected") from None
        key = provider.private_key(SUPPORTED_GROUPS[group]) if provider is not None else None
        ecdh_key = key[1] if isinstance(key, tuple) else (key or _generate_classic(classic))
        ecdh_secret = _classic_secret(group, ecdh_key, classic_public)
        return (_join(kem_first, ciphertext, _public_bytes(classic, ecdh_key)),
                _join(kem_first, kem_secret, ecdh_secret))
    share = new_key_share(group, provider)
    return share.public, share.shared_secret(client_public)
