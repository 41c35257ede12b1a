"""Key exchange groups (RFC 8446 §4.2.8, §7.4; RFC 7919): RFC 8448 / Illustrated TLS 1.3
shared secrets from the recorded keys, round trips for every group, and rejection of
invalid peer shares with illegal_parameter."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from tlslab.proto import groups
from tlslab.proto.errors import IllegalParameter
from tlslab.proto.groups import (SUPPORTED_GROUPS, KeyShare, new_key_share,
                                 server_key_share)
from tlslab.proto.names import NamedGroup
from tlslab.proto.provider import Provider, ReplayProvider

from conftest import vector_path as _vector_path


def load(name: str) -> dict:
    return {k: bytes.fromhex(v) for k, v in
            json.loads(_vector_path(name).read_text())["named"].items()}


def _x25519(raw: bytes):
    return x25519.X25519PrivateKey.from_private_bytes(raw)


def _p256(raw: bytes):
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


@pytest.mark.parametrize("filename,prefix,group,make", [
    ("rfc8448_simple_1rtt.json", "ephemeral_x25519_", 0x1D, _x25519),
    ("rfc8448_resumed_0rtt.json", "ephemeral_x25519_", 0x1D, _x25519),
    ("rfc8448_hello_retry_request.json", "ephemeral_p256_", 0x17, _p256),
    ("illustrated_tls13.json", "x25519_", 0x1D, _x25519),
])
def test_vector_key_exchange(filename, prefix, group, make):
    n = load(filename)
    name = SUPPORTED_GROUPS[group]
    client_priv, server_priv = make(n[f"client_{prefix}private_key"]), make(n[f"server_{prefix}private_key"])
    share = new_key_share(group, ReplayProvider(keys={name: [client_priv]}))
    assert share.public == n[f"client_{prefix}public_key"]
    server_public, secret = server_key_share(group, share.public,
                                             ReplayProvider(keys={name: [server_priv]}))
    assert server_public == n[f"server_{prefix}public_key"]
    assert secret == n["ecdhe_shared_secret"]
    assert share.shared_secret(server_public) == n["ecdhe_shared_secret"]


def test_group_names_are_iana_names():
    for code, name in SUPPORTED_GROUPS.items():
        assert NamedGroup(code).name == name
    assert {0x1D, 0x17, 0x18, 0x19, 0x1E, 0x100, 0x101} <= set(SUPPORTED_GROUPS)
    assert (0x11EC in SUPPORTED_GROUPS) == groups.HAVE_MLKEM


# Expected key_exchange lengths: (client share, server share, shared secret).
LENGTHS = {0x1D: (32, 32, 32), 0x17: (65, 65, 32), 0x18: (97, 97, 48), 0x19: (133, 133, 66),
           0x1E: (56, 56, 56), 0x100: (256, 256, 256), 0x101: (384, 384, 384),
           0x102: (512, 512, 512), 0x103: (768, 768, 768), 0x104: (1024, 1024, 1024),
           0x11EC: (1216, 1120, 64), 0x11EB: (1249, 1153, 64)}


@pytest.mark.parametrize("group", sorted(SUPPORTED_GROUPS))
def test_round_trip(group):
    share = new_key_share(group, Provider())
    assert isinstance(share, KeyShare) and share.group == group
    server_public, secret = server_key_share(group, share.public, Provider())
    assert (len(share.public), len(server_public), len(secret)) == LENGTHS[group]
    assert share.shared_secret(server_public) == secret


def _rfc7919_prime(bits: int, constant: int) -> int:
    # p = 2^b - 2^(b-64) + {[2^(b-130) e] + c} * 2^64 - 1, e from its series with guard bits.
    precision = bits - 130 + 128
    total, factorial, k = 0, 1, 0
    while True:
        if k:
            factorial *= k
        term = (1 << precision) // factorial
        if not term:
            break
        total += term
        k += 1
    return (1 << bits) - (1 << (bits - 64)) + ((total >> 128) + constant) * (1 << 64) - 1


def test_ffdhe_primes_match_rfc7919_formula():
    assert groups.FFDHE2048_P == _rfc7919_prime(2048, 560316)
    assert groups.FFDHE3072_P == _rfc7919_prime(3072, 2625351)
    assert groups.FFDHE4096_P == _rfc7919_prime(4096, 5736041)
    assert groups.FFDHE6144_P == _rfc7919_prime(6144, 15705020)
    assert groups.FFDHE8192_P == _rfc7919_prime(8192, 10965728)


def _share(group):
    return new_key_share(group, Provider())


@pytest.mark.parametrize("group,bad", [
    (0x1D, bytes(31)),                                   # wrong length
    (0x1D, bytes(32)),                                   # u = 0: low order, all-zero result
    (0x1D, b"\x01" + bytes(31)),                         # u = 1: low order
    (0x1E, bytes(56)),
    (0x17, b"\x04" + bytes(64)),                         # not on the curve
    (0x17, b"\x02" + bytes(32)),                         # compressed form is not allowed
    (0x17, b"\x04" + bytes(63)),                         # wrong length
    (0x18, bytes(97)),
    (0x100, (1).to_bytes(256, "big")),                   # Y = 1
    (0x100, (groups.FFDHE2048_P - 1).to_bytes(256, "big")),  # Y = p - 1
    (0x100, groups.FFDHE2048_P.to_bytes(256, "big")),    # Y = p
    (0x100, (2).to_bytes(255, "big")),                   # not padded to the prime length
    (0x101, (0).to_bytes(384, "big")),
])
def test_invalid_peer_share_is_illegal_parameter(group, bad):
    with pytest.raises(IllegalParameter):
        _share(group).shared_secret(bad)
    with pytest.raises(IllegalParameter):
        server_key_share(group, bad, Provider())


def test_p256_point_off_curve():
    good = _share(0x17).public
    off = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(IllegalParameter):
        _share(0x17).shared_secret(off)


@pytest.mark.skipif(not groups.HAVE_MLKEM, reason="cryptography without ML-KEM")
def test_hybrid_invalid_shares():
    share = _share(0x11EC)
    with pytest.raises(IllegalParameter):
        share.shared_secret(bytes(1119))
    server_public, _ = server_key_share(0x11EC, share.public, Provider())
    with pytest.raises(IllegalParameter):           # X25519 half is a low-order point
        share.shared_secret(server_public[:1088] + bytes(32))
    with pytest.raises(IllegalParameter):
        server_key_share(0x11EC, share.public[:-1], Provider())
    with pytest.raises(IllegalParameter):           # ML-KEM key with out-of-range coefficients
        server_key_share(0x11EC, b"\xff" * 1184 + share.public[1184:], Provider())
