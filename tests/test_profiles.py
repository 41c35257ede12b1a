"""Client profiles: every built-in file loads and can be built by the engine; the format
rejects what it does not know; ``default`` is exactly tlslab's default client."""
from __future__ import annotations

import pytest

from tlslab.profiles import ProfileError, builtin_profile_names, close_names, load_profile
from tlslab.profiles.model import parse_profile


def test_required_profiles_exist():
    assert {"default", "browser", "tls12-only", "no-sni", "alpn-http"} <= set(builtin_profile_names())


@pytest.mark.parametrize("name", builtin_profile_names())
def test_every_profile_loads_and_names_its_sources(name):
    p = load_profile(name)
    assert p.name == name
    assert p.sources, f"{name} cites no source"
    assert p.offer.versions and p.offer.cipher_suites and p.offer.groups


def test_default_profile_is_the_engine_default():
    from tlslab.proto.config import ClientConfig
    from tlslab.proto.names import CipherSuite, NamedGroup, SignatureScheme, lookup
    from tlslab.proto.tls12.suites import SUITES12_BY_NAME
    c = ClientConfig(insecure=True)
    p = load_profile("default").offer
    codes = [SUITES12_BY_NAME[s].code if s in SUITES12_BY_NAME else lookup(CipherSuite, s)
             for s in p.cipher_suites]
    assert codes == c.cipher_suite_codes
    assert [lookup(NamedGroup, g) for g in p.groups] == c.group_codes
    assert [lookup(NamedGroup, g) for g in p.key_shares] == c.key_share_codes
    assert [lookup(SignatureScheme, s) for s in p.signature_algorithms] == c.signature_scheme_codes
    assert list(p.versions) == c.version_names


def _doc(**offer):
    base = {"versions": ["TLS 1.3"], "cipher_suites": ["TLS_AES_128_GCM_SHA256"], "groups": ["x25519"],
            "signature_algorithms": ["ecdsa_secp256r1_sha256"]}
    base.update(offer)
    return {"name": "t", "client": "test", "version": "1", "offer": base, "sources": {"offer": "test"}}


def test_unknown_key_is_an_error():
    doc = _doc()
    doc["verifier"] = {"sha1_acepted": True}
    with pytest.raises(ProfileError, match="sha1_acepted"):
        parse_profile(doc, "t.toml")


def test_unbuildable_offer_is_an_error():
    with pytest.raises(ProfileError, match="cannot build"):
        parse_profile(_doc(cipher_suites=["TLS_NO_SUCH_SUITE"]), "t.toml")


def test_recorded_client_hello_must_parse():
    with pytest.raises(ProfileError, match="client_hello"):
        parse_profile(_doc(client_hello="01000003aabbcc"), "t.toml")
    with pytest.raises(ProfileError, match="hex"):
        parse_profile(_doc(client_hello="zz"), "t.toml")


def test_recorded_client_hello_from_a_real_capture(peers_dir):
    data = (peers_dir / "clienthellos" / "java17_sslsocket.bin").read_bytes()[5:]
    p = parse_profile(_doc(client_hello=data.hex()), "t.toml")
    assert p.offer.client_hello == data


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ProfileError, match="browser"):
        load_profile("browsr")
    assert "tls12-only" in close_names("tls12")
