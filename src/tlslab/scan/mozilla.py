"""A scan document compared with Mozilla's Server Side TLS guidelines (version 5.7).

The three configurations (modern, intermediate, old) are facts in ``data/mozilla.toml``,
taken from https://ssl-config.mozilla.org/guidelines/5.7.json and explained at
https://wiki.mozilla.org/Security/Server_Side_TLS.  A server *meets* a configuration when
it offers exactly its versions, no TLS 1.0-1.2 or TLS 1.3 suite outside its lists, every
group it recommends, a certificate of its key types, sizes, curves, signature and lifetime,
DH parameters of its size, a stapled OCSP response, and the server's suite order where the
configuration asks for it.  HSTS is an HTTP header, outside what a TLS scan sees: it is
listed as not checked.

Each deviation is one step a person can take ("Turn off TLS 1.0"), with configuration lines
per server stack built from the same data, so that ``--against NAME`` can turn them into
findings.
"""
from __future__ import annotations

import datetime
import functools
import tomllib
from importlib import resources
from typing import Any

CONFIGURATIONS = ("modern", "intermediate", "old")
#: tlslab's version names and the names server configurations use for them
_CONF_VERSION = {"TLS 1.0": "TLSv1", "TLS 1.1": "TLSv1.1", "TLS 1.2": "TLSv1.2", "TLS 1.3": "TLSv1.3",
                 "SSL 3.0": "SSLv3", "SSL 2.0": "SSLv2"}
#: TLS group names (RFC 8446 §4.2.7) and OpenSSL's curve names in server configurations
_CONF_GROUP = {"x25519": "X25519", "secp256r1": "prime256v1", "secp384r1": "secp384r1",
               "secp521r1": "secp521r1", "x448": "X448"}
_CURVES = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}


class UnknownConfiguration(ValueError):
    """``--against`` names no Mozilla configuration (one line for the command line)."""


@functools.cache
def guidelines() -> dict[str, Any]:
    text = resources.files("tlslab.scan").joinpath("data", "mozilla.toml").read_text("utf-8")
    return tomllib.loads(text)


def check_name(name: str) -> str:
    if name not in CONFIGURATIONS:
        raise UnknownConfiguration(f"unknown Mozilla configuration {name!r} (one of "
                                   f"{', '.join(CONFIGURATIONS)})")
    return name


def _join(items: list[str], limit: int = 6) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _generator(name: str) -> str:
    g = guidelines()
    return f"{g['generator']}#config={name}&guideline={g['version']}"


def _deviation(aspect: str, change: str, evidence: str, fix: dict[str, str]) -> dict[str, Any]:
    return {"aspect": aspect, "change": change, "evidence": evidence, "fix": fix}


def _leaf_checks(doc: dict, conf: dict, name: str) -> list[dict[str, Any]]:
    out = []
    now = datetime.datetime.now(datetime.timezone.utc)
    seen: set[str] = set()
    for entry in doc.get("certificates") or []:
        leaf = (entry.get("certificates") or [None])[0]
        if not isinstance(leaf, dict) or leaf.get("sha256") in seen:
            continue
        seen.add(leaf.get("sha256"))
        key = str(leaf.get("key", ""))
        kind, _, size = key.partition(" ")
        types = conf["certificate_types"]
        where = f"certificate {leaf.get('subject', '')}"
        gen = {"generic": f"Make the new key and certificate request as the configuration asks "
                          f"({_generator(name)})."}
        if kind == "RSA":
            if "rsa" not in types:
                out.append(_deviation("certificate_type", "Use an ECDSA certificate "
                                      f"({_join(conf['certificate_curves'])}) instead of RSA", f"{where} has an {key} key", gen))
            elif size.isdigit() and int(size) < conf["rsa_key_size"]:
                out.append(_deviation("certificate_key_size", f"Use an RSA key of at least "
                                      f"{conf['rsa_key_size']} bits", f"{where} has an {key} key", gen))
        elif kind == "ECDSA":
            curve = _CURVES.get(size, size)
            if "ecdsa" not in types:
                out.append(_deviation("certificate_type", "Use an RSA certificate (2048 bits) instead of ECDSA",
                                      f"{where} has an {key} key", gen))
            elif curve not in conf["certificate_curves"]:
                out.append(_deviation("certificate_curve", f"Use an ECDSA key on {_join(conf['certificate_curves'])}",
                                      f"{where} has an {key} key", gen))
        elif key:
            out.append(_deviation("certificate_type", f"Use a certificate of type {_join(types)}",
                                  f"{where} has an {key} key", gen))
        sig = str(leaf.get("signature_algorithm", ""))
        if sig and sig not in conf["certificate_signatures"]:
            out.append(_deviation("certificate_signature", f"Have the certificate signed with "
                                  f"{_join(conf['certificate_signatures'])}",
                                  f"{where} is signed with {sig}", gen))
        try:
            start = datetime.datetime.fromisoformat(str(leaf["not_before"]).replace("Z", "+00:00"))
            end = datetime.datetime.fromisoformat(str(leaf["not_after"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        days = (end - start).days
        if days > conf["maximum_certificate_lifespan"] and end > now:
            rec = conf["recommended_certificate_lifespan"]
            out.append(_deviation("certificate_lifespan", f"Use certificates valid for at most "
                                  f"{conf['maximum_certificate_lifespan']} days"
                                  + (f" ({rec} recommended)" if rec != conf["maximum_certificate_lifespan"] else ""),
                                  f"{where} is valid for {days} days", gen))
    return out


def compare(doc: dict, name: str) -> dict[str, Any]:
    """How ``doc`` differs from the configuration ``name``: ``meets``, ``changes`` (the
    steps, in words) and ``deviations`` (each step with its evidence and fixes)."""
    conf = guidelines()[check_name(name)]
    devs: list[dict[str, Any]] = []
    protocols = doc.get("protocols") or {}
    on = [v for v in ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3") if protocols.get(v)]
    wanted = conf["protocols"]
    conf_versions = " ".join(_CONF_VERSION[v] for v in wanted)
    proto_fix = {"nginx": f"ssl_protocols {conf_versions};",
                 "apache": "SSLProtocol -all " + " ".join("+" + _CONF_VERSION[v] for v in wanted),
                 "haproxy": f"ssl-default-bind-options ssl-min-ver {_CONF_VERSION[wanted[0]]}",
                 "generic": f"MinProtocol = {_CONF_VERSION[wanted[0]]}  (OpenSSL configuration file)"}
    extra = [v for v in on if v not in wanted]
    missing = [v for v in wanted if v not in on]
    if extra:
        devs.append(_deviation("protocols_off", f"Turn off {_and(extra)}", f"the server accepts {_join(on)}; "
                               f"{name} allows {_join(wanted)}", proto_fix))
    if missing:
        devs.append(_deviation("protocols_on", f"Turn on {_and(missing)}",
                               f"the server accepts {_join(on) or 'no version'}; {name} has {_join(wanted)}",
                               proto_fix))

    suites_part = doc.get("cipher_suites") or {}
    old_suites: list[str] = []
    for v in ("SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2"):
        for s in (suites_part.get(v) or {}).get("accepted") or []:
            if s not in old_suites:
                old_suites.append(s)
    allowed = conf["cipher_suites"]
    cipher_fix = {"nginx": f"ssl_ciphers {':'.join(conf['openssl_ciphers'])};" if conf["openssl_ciphers"]
                  else "remove ssl_ciphers (only TLS 1.3 is on)",
                  "apache": f"SSLCipherSuite {':'.join(conf['openssl_ciphers'])}" if conf["openssl_ciphers"]
                  else "remove SSLCipherSuite (only TLS 1.3 is on)",
                  "haproxy": f"ssl-default-bind-ciphers {':'.join(conf['openssl_ciphers'])}" if conf["openssl_ciphers"]
                  else "ssl-default-bind-options ssl-min-ver TLSv1.3"}
    bad = [s for s in old_suites if s not in allowed]
    # a suite of a version the configuration turns off is covered by "Turn off" above
    if bad and allowed:
        devs.append(_deviation("cipher_suites", f"Remove {len(bad)} cipher suite{'s' if len(bad) != 1 else ''} "
                               f"outside the {name} list: {_join(bad, 4)}",
                               f"accepted for TLS 1.2 and older: {_join(old_suites, 4)}", cipher_fix))
    s13 = (suites_part.get("TLS 1.3") or {}).get("accepted") or []
    bad13 = [s for s in s13 if s not in conf["tls13_cipher_suites"]]
    if bad13:
        devs.append(_deviation("tls13_cipher_suites", f"Remove the TLS 1.3 suites {_join(bad13)}",
                               f"accepted for TLS 1.3: {_join(s13)}",
                               {"nginx": "ssl_conf_command Ciphersuites " + ":".join(conf["tls13_cipher_suites"]) + ";",
                                "apache": "SSLCipherSuite TLSv1.3 " + ":".join(conf["tls13_cipher_suites"]),
                                "haproxy": "ssl-default-bind-ciphersuites " + ":".join(conf["tls13_cipher_suites"])}))

    groups = (doc.get("groups") or {}).get("accepted") or []
    if groups or any(protocols.get(v) for v in wanted):
        missing_g = [g for g in conf["groups"] if g not in groups]
        if missing_g:
            curves = ":".join(_CONF_GROUP.get(g, g) for g in conf["groups"])
            devs.append(_deviation("groups", f"Turn on the groups {_join(missing_g)}",
                                   f"the server accepts {_join(groups) or 'no group'}",
                                   {"nginx": f"ssl_ecdh_curve {curves};",
                                    "apache": f"SSLOpenSSLConfCmd Curves {curves}",
                                    "haproxy": f"ssl-default-bind-curves {curves}"}))

    devs += _leaf_checks(doc, conf, name)

    dh = (doc.get("groups") or {}).get("dh_parameters") or {}
    if dh.get("bits") and conf["dh_param_size"] and dh["bits"] < conf["dh_param_size"]:
        devs.append(_deviation("dh_param_size", f"Use DH parameters of at least {conf['dh_param_size']} bits",
                               f"DHE uses a {dh['bits']}-bit group",
                               {"nginx": "ssl_dhparam /etc/nginx/ffdhe2048.pem;",
                                "generic": "the ffdhe2048 group of RFC 7919 is a well-known 2048-bit choice"}))
    ocsp = doc.get("ocsp_stapling") or {}
    if conf["ocsp_staple"] and not ocsp.get("stapled"):
        devs.append(_deviation("ocsp_stapling", "Staple OCSP responses", "the server sent no OCSP response",
                               {"nginx": "ssl_stapling on; ssl_stapling_verify on;",
                                "apache": "SSLUseStapling On",
                                "haproxy": "crt-list line option [ocsp-update on]"}))
    if conf["server_preferred_order"]:
        off = [v for v in ("TLS 1.0", "TLS 1.1", "TLS 1.2") if (suites_part.get(v) or {}).get("server_order") is False
               and len((suites_part.get(v) or {}).get("accepted") or []) > 1]
        if off:
            devs.append(_deviation("server_order", "Choose the cipher suite in the server's order",
                                   f"the server follows the client's order in {_join(off)}",
                                   {"nginx": "ssl_prefer_server_ciphers on;", "apache": "SSLHonorCipherOrder on"}))
    for d in devs:
        d["fix"].setdefault("generic", f"The whole configuration for your server: {_generator(name)}")
    return {"meets": not devs, "changes": [d["change"] for d in devs], "deviations": devs,
            "not_checked": ["HSTS (an HTTP header; the guidelines ask for max-age "
                            f"{conf['hsts_min_age']})"]}


def comparison(doc: dict, against: str | None = None) -> dict[str, Any]:
    """``doc["mozilla"]``: every configuration compared, the closest one (the strictest
    met, else the one needing the fewest changes) and the one the user named."""
    if against is not None:
        check_name(against)
    g = guidelines()
    configs = {name: compare(doc, name) for name in CONFIGURATIONS}
    met = [n for n in CONFIGURATIONS if configs[n]["meets"]]
    closest = met[0] if met else min(CONFIGURATIONS, key=lambda n: (len(configs[n]["changes"]),
                                                                    n != "intermediate"))
    return {"guidelines": g["version"], "source": g["source"], "closest": closest,
            "configurations": configs, "against": against}
