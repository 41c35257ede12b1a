"""Broken servers on purpose: one scenario per classic handshake failure.

Each :class:`Scenario` says what is wrong, which clients fail and what they print, the
diagnosis code (DESIGN.md vocabulary) a diagnosis should name, and the server it builds:
a certificate kind from the throwaway PKI (:mod:`tlslab.lab.pki`) and
:class:`~tlslab.proto.config.ServerConfig` options.  Every failure is the engine's real
behaviour under that configuration, not a canned reply.

::

    from tlslab.lab.scenarios import SCENARIOS, start_scenario_server
    srv = start_scenario_server("expired", "127.0.0.1", 0, log=print)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ...                                   # srv.port, srv.lab.ca_file, srv.reports
    srv.shutdown(); srv.close_lab()

``tlslab serve --scenario NAME`` runs the same function.
"""
from __future__ import annotations

import difflib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .clientview import ServerExplainer, ServerProfile
from .pki import make_pki

__all__ = ["CAPTURED_WITH", "CATEGORIES", "ClientResult", "Lab", "SCENARIOS", "Scenario", "UnknownScenario",
           "build_lab", "close_names", "conflicts", "get_scenario", "start_scenario_server",
           "make_async_scenario_server"]

CATEGORIES = ("certificates", "protocol", "algorithms", "others", "vulnerabilities")

#: where the client messages in :attr:`Scenario.fails` come from (tests/test_scenarios.py
#: runs these clients against every scenario and fails when a message changes)
CAPTURED_WITH = ("curl 7.88.1 and openssl s_client (OpenSSL 3.0.19), Python 3.11 ssl and "
                 "tlslab connect on Debian 12; browser, Go and Java lines are their documented "
                 "messages")

#: options of ``tlslab serve`` a scenario can set itself (a user giving one too is a
#: conflict): the flag, and what the scenario does instead
OPTION_FLAGS = {"cert": ("--cert/--key", "makes its own certificate"),
                "tls": ("--tls", "sets the TLS versions itself"),
                "cipher": ("--cipher", "sets the cipher suites itself"),
                "group": ("--group", "sets the key exchange groups itself"),
                "sigalg": ("--sigalg", "sets the signature schemes itself"),
                "alpn": ("--alpn", "sets the ALPN protocols itself"),
                "client-ca": ("--client-ca/--require-client-cert", "sets the client CA itself")}


@dataclass(frozen=True)
class ClientResult:
    """What one client does against a scenario: ``error`` is what it prints (or
    ``works``); ``how`` the command line that shows it, when it is not the default."""

    client: str
    error: str
    how: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"client": self.client, "error": self.error}
        if self.how:
            out["how"] = self.how
        return out


@dataclass(frozen=True)
class Scenario:
    """One broken (or, for ``ok``, healthy) server."""

    name: str
    category: str
    #: what is wrong, one line
    summary: str
    #: the diagnosis code a diagnosis of this server should name (DESIGN.md)
    code: str
    #: the cause as a clause for the server's explanations ("because <problem>")
    problem: str
    #: which clients fail, with what they print
    fails: tuple[ClientResult, ...]
    #: which clients still work
    works: str
    #: the certificate kind (:data:`tlslab.lab.pki.CERT_KINDS`) and the leaf key type
    cert_kind: str = "ok"
    key_type: str = "ecdsa-p256"
    #: ServerConfig options (IANA names); ``client_auth="required"`` adds the lab CA as
    #: client CA
    server: dict = field(default_factory=dict)
    #: serve options this scenario sets itself (a user giving them too is a conflict)
    fixes: tuple[str, ...] = ("cert",)
    #: the client decides the failure, after the server's flight (certificate problems)
    client_decides: bool = False
    #: which clients accept the problem anyway, and why (for the server's explanations)
    lenient: str = ""
    #: the ``tlslab diagnose`` profile that fails here (None: no built-in profile does)
    profile: str | None = "default"
    #: commands that show the failure ({ca}, {host}, {ip}, {port}, {dir} are filled in)
    try_commands: tuple[str, ...] = ()
    note: str = ""

    @property
    def diagnose_command(self) -> str | None:
        """The ``tlslab diagnose`` command (a template) that names this scenario's cause."""
        if self.profile is None:
            return None
        more = f" --profile {self.profile}" if self.profile != "default" else ""
        return "tlslab diagnose {host}:{port} --ca-file {ca}" + more

    @property
    def commands(self) -> tuple[str, ...]:
        """Commands (templates) that show the failure, then the diagnosis."""
        return self.try_commands + ((self.diagnose_command,) if self.diagnose_command else ())

    def to_json(self) -> dict[str, Any]:
        server = {k: v for k, v in self.server.items()}
        server["certificate"] = self.cert_kind
        server["key_type"] = self.key_type
        return {"name": self.name, "category": self.category, "summary": self.summary,
                "code": self.code, "fails": [f.to_json() for f in self.fails],
                "works": self.works, "server": server, "note": self.note or None,
                "try": list(self.try_commands), "diagnose": self.diagnose_command,
                "diagnose_profile": self.profile}


# --------------------------------------------------------------------------- the scenarios

_VERIFY = ("curl --cacert {ca} https://{host}:{port}/",
           "openssl s_client -connect {ip}:{port} -servername {host} -CAfile {ca} "
           "-verify_return_error </dev/null",
           "tlslab connect {host}:{port} --ca-file {ca}")

#: TLS 1.0 / 1.1 suites: ECDHE-RSA with AES-CBC.  No static RSA on purpose: OpenSSL 3
#: still completes that one (it signs nothing), and the scenario would not fail
_LEGACY_SUITES = ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"]


def _cert(name: str, summary: str, code: str, problem: str, fails, works: str, **kw) -> Scenario:
    return Scenario(name=name, category="certificates", summary=summary, code=code,
                    problem=problem, fails=tuple(ClientResult(*f) for f in fails), works=works,
                    cert_kind=kw.pop("cert_kind", name), client_decides=True,
                    try_commands=kw.pop("try_commands", _VERIFY), **kw)


def _other(name: str, category: str, summary: str, code: str, problem: str, fails, works: str,
           **kw) -> Scenario:
    return Scenario(name=name, category=category, summary=summary, code=code, problem=problem,
                    fails=tuple(ClientResult(*f) for f in fails), works=works, **kw)


def _vuln(name: str, summary: str, problem: str, scan_says: str, **kw) -> Scenario:
    """A vulnerable server: every ordinary client works; ``tlslab scan`` says what it found."""
    kw.setdefault("fixes", ("cert", "tls"))
    return Scenario(name=name, category="vulnerabilities", summary=summary, code="ok",
                    problem="", note=problem,
                    fails=(ClientResult("tlslab scan (active check)", scan_says,
                                        "tlslab scan {host}:{port}"),),
                    works="every ordinary client: the handshakes themselves are healthy; only "
                          "the crafted messages of an active check show the flaw",
                    profile=None, try_commands=("tlslab scan {host}:{port}",
                                                "tlslab connect {host}:{port} --ca-file {ca} "
                                                "--tls 1.2"), **kw)


_CURL_HS = "curl: (35) OpenSSL/3.0.19: error:0A000410:SSL routines::sslv3 alert handshake failure"
_OSSL_HS = "error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure ... SSL alert number 40"
_PY_HS = "ssl.SSLError: [SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"
_TLSLAB_HS = "error: handshake failed: peer sent fatal alert handshake_failure"


def _verify_fails(curl: str, openssl: str, python: str, tlslab: str) -> list[tuple[str, str]]:
    """What the four verifying clients print against a certificate scenario."""
    return [("curl", f"curl: (60) {curl}"),
            ("openssl s_client", f"verify error:{openssl}"),
            ("Python ssl", "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] "
                           f"certificate verify failed: {python}"),
            ("tlslab connect", f"error: handshake failed: certificate verify failed: {tlslab}")]


_LIST: list[Scenario] = [
    # ------------------------------------------------------------------ certificates
    _cert("ok", "nothing: a healthy chain (leaf + intermediate) from the lab CA", "ok", "",
          [("a client not given the lab CA",
            "curl: (60) SSL certificate problem: unable to get local issuer certificate",
            "curl https://{host}:{port}/")],
          "every client given the lab CA (curl --cacert, openssl -CAfile, tlslab --ca-file)"),
    _cert("expired", "the leaf certificate expired 10 days ago", "expired",
          "the leaf certificate expired 10 days ago",
          _verify_fails("SSL certificate problem: certificate has expired",
                        "num=10:certificate has expired", "certificate has expired",
                        "expired: certificate for CN=localhost,O=tlslab lab expired on ..."),
          "only clients that skip verification (curl -k)"),
    _cert("not-yet-valid", "the leaf certificate becomes valid only in 10 days", "not-yet-valid",
          "the leaf certificate is not valid yet (notBefore is 10 days ahead)",
          _verify_fails("SSL certificate problem: certificate is not yet valid",
                        "num=9:certificate is not yet valid", "certificate is not yet valid",
                        "not yet valid: certificate for CN=localhost,O=tlslab lab is not valid "
                        "before ..."),
          "only clients that skip verification, or whose clock is 10 days ahead"),
    _cert("wrong-host", "the certificate names www.example.net and other.test, not this host",
          "hostname-mismatch",
          "the certificate names only www.example.net and other.test, not the name the client "
          "asked for",
          _verify_fails("SSL: no alternative certificate subject name matches target host name "
                        "'localhost'", "num=62:hostname mismatch (with -verify_hostname)",
                        "Hostname mismatch, certificate is not valid for 'localhost'.",
                        "hostname mismatch: certificate for CN=www.example.net,O=tlslab lab does "
                        "not match name 'localhost'"),
          "clients that do not check the name (openssl s_client without -verify_hostname)",
          note="curl checks the name after the handshake: the server sees a completed handshake "
               "and a client that hangs up"),
    _cert("no-san", "no subjectAltName: the host name is only in the subject CN", "no-san",
          "the certificate has no subjectAltName; the name is only in the subject CN, which "
          "RFC 6125 clients ignore",
          [("tlslab connect", "error: handshake failed: certificate verify failed: no san: "
                              "certificate for CN=localhost,O=tlslab lab has no subjectAltName "
                              "extension"),
           ("Chrome", "NET::ERR_CERT_COMMON_NAME_INVALID"),
           ("Go (1.15+)", "x509: certificate relies on legacy Common Name field, use SANs "
                          "instead")],
          "OpenSSL-based clients (curl, Python ssl, openssl s_client) fall back to the CN and "
          "accept it",
          lenient="OpenSSL-based clients such as curl and Python ssl fall back to the CN"),
    _cert("self-signed", "the server sends a self-signed leaf that nobody trusts", "self-signed",
          "the server sends a self-signed certificate that no trust store holds",
          _verify_fails("SSL certificate problem: self-signed certificate",
                        "num=18:self-signed certificate", "self-signed certificate",
                        "self signed: certificate for CN=localhost,O=tlslab lab is self-signed "
                        "and is not in the trust store"),
          "clients told to trust that very certificate, or not to verify"),
    _cert("untrusted-root", "a complete chain, but from a second root CA the client is not given",
          "untrusted-root",
          "the chain leads to a root CA the client does not trust (a second lab root, not the "
          "one in the CA file)",
          _verify_fails("SSL certificate problem: unable to get local issuer certificate",
                        "num=20:unable to get local issuer certificate",
                        "unable to get local issuer certificate",
                        "untrusted root: chain ends at CN=tlslab lab untrusted intermediate CA ..."),
          "clients that trust the second root (it is not written anywhere)"),
    _cert("missing-intermediate", "the server sends its leaf without the intermediate CA",
          "missing-intermediate",
          "the server sends the leaf without its intermediate CA, so the client cannot build a "
          "chain to the root it trusts",
          _verify_fails("SSL certificate problem: unable to get local issuer certificate",
                        "num=20:unable to get local issuer certificate",
                        "unable to get local issuer certificate",
                        "missing intermediate: issuer CN=tlslab lab intermediate CA ... was not "
                        "sent by the server and is not in the trust store"),
          "clients that fetch the intermediate from the leaf's AIA URL (Chrome and Edge on "
          "Windows, macOS and Android; Java with -Dcom.sun.security.enableAIAcaIssuers=true; "
          "tlslab diagnose --profile browser)",
          note="the intermediate is served over plain HTTP on 127.0.0.1 by this process, at the "
               "leaf's AIA caIssuers URL, so that AIA-fetching clients can complete the chain",
          profile="default"),
    _cert("sha1", "the intermediate signed the leaf with SHA-1", "sha1-signature",
          "the leaf certificate is signed with SHA-1 (sha1WithRSAEncryption), which verifiers "
          "refuse",
          _verify_fails("SSL certificate problem: CA signature digest algorithm too weak",
                        "num=68:CA signature digest algorithm too weak",
                        "CA signature digest algorithm too weak",
                        "sha1 signature: certificate for CN=localhost,O=tlslab lab is signed with "
                        "sha1WithRSAEncryption"),
          "clients at OpenSSL security level 0, and old clients"),
    _cert("rsa1024", "the leaf has a 1024-bit RSA key", "weak-key",
          "the leaf certificate has a 1024-bit RSA key, below the 2048 bits clients require",
          _verify_fails("SSL certificate problem: EE certificate key too weak",
                        "num=66:EE certificate key too weak", "EE certificate key too weak",
                        "weak key: certificate for CN=localhost,O=tlslab lab has a weak RSA "
                        "1024 key"),
          "clients at OpenSSL security level 0 or 1"),
    _cert("wrong-eku", "the leaf's extendedKeyUsage is clientAuth only, without serverAuth",
          "wrong-key-usage",
          "the leaf certificate is for clients only: its extendedKeyUsage lacks serverAuth",
          _verify_fails("SSL certificate problem: unsuitable certificate purpose",
                        "num=26:unsuitable certificate purpose", "unsuitable certificate purpose",
                        "wrong key usage: certificate for CN=localhost,O=tlslab lab is not for "
                        "TLS server authentication"),
          "clients that do not check extendedKeyUsage"),
    # ------------------------------------------------------------------ protocol
    _other("tls1.0-only", "protocol", "the server speaks only TLS 1.0 (ECDHE-RSA, AES-CBC)",
           "protocol-version-mismatch",
           "this server speaks only TLS 1.0, which clients disabled around 2020 (RFC 8996)",
           [("curl", "curl: (35) OpenSSL/3.0.19: error:0A00014D:SSL routines::legacy sigalg "
                     "disallowed or unsupported"),
            ("openssl s_client", "tls_process_key_exchange:legacy sigalg disallowed or "
                                 "unsupported"),
            ("Python ssl", "ssl.SSLError: [SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert "
                           "protocol version"),
            ("tlslab connect", "error: handshake failed: peer sent fatal alert protocol_version")],
           "clients that still enable TLS 1.0 (openssl s_client -tls1 -cipher "
           "'DEFAULT:@SECLEVEL=0', tlslab connect --tls 1.0)",
           key_type="rsa2048", server={"versions": ["TLS 1.0"], "cipher_suites": _LEGACY_SUITES},
           fixes=("cert", "tls", "cipher"),
           note="OpenSSL 3 still negotiates TLS 1.0, then refuses the MD5+SHA-1 signature of "
                "the ServerKeyExchange below security level 0",
           try_commands=("curl --cacert {ca} https://{host}:{port}/",
                         "openssl s_client -connect {ip}:{port} -tls1 -cipher 'DEFAULT:@SECLEVEL=0' "
                         "-CAfile {ca} </dev/null",
                         "tlslab connect {host}:{port} --ca-file {ca} --tls 1.0")),
    _other("tls1.1-only", "protocol", "the server speaks only TLS 1.1 (ECDHE-RSA, AES-CBC)",
           "protocol-version-mismatch",
           "this server speaks only TLS 1.1, which clients disabled around 2020 (RFC 8996)",
           [("curl", "curl: (35) OpenSSL/3.0.19: error:0A00014D:SSL routines::legacy sigalg "
                     "disallowed or unsupported"),
            ("openssl s_client", "tls_process_key_exchange:legacy sigalg disallowed or "
                                 "unsupported"),
            ("Python ssl", "ssl.SSLError: [SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert "
                           "protocol version"),
            ("tlslab connect", "error: handshake failed: peer sent fatal alert protocol_version")],
           "clients that still enable TLS 1.1 (openssl s_client -tls1_1 -cipher "
           "'DEFAULT:@SECLEVEL=0', tlslab connect --tls 1.1)",
           key_type="rsa2048", server={"versions": ["TLS 1.1"], "cipher_suites": _LEGACY_SUITES},
           fixes=("cert", "tls", "cipher"),
           note="OpenSSL 3 still negotiates TLS 1.1, then refuses the MD5+SHA-1 signature of "
                "the ServerKeyExchange below security level 0",
           try_commands=("curl --cacert {ca} https://{host}:{port}/",
                         "openssl s_client -connect {ip}:{port} -tls1_1 -cipher "
                         "'DEFAULT:@SECLEVEL=0' -CAfile {ca} </dev/null",
                         "tlslab connect {host}:{port} --ca-file {ca} --tls 1.1")),
    _other("tls1.2-only", "protocol", "the server speaks only TLS 1.2",
           "protocol-version-mismatch", "this server speaks only TLS 1.2",
           [("curl --tlsv1.3", "curl: (35) OpenSSL/3.0.19: error:0A00042E:SSL routines::tlsv1 "
             "alert protocol version"),
            ("openssl s_client -tls1_3", "ssl3_read_bytes:tlsv1 alert protocol version ... SSL "
                                         "alert number 70"),
            ("Python ssl, minimum_version TLSv1_3", "ssl.SSLError: [SSL: "
             "TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"),
            ("tlslab connect --tls 1.3", "error: handshake failed: peer sent fatal alert "
                                         "protocol_version")],
           "every client that still offers TLS 1.2 (nearly all)",
           server={"versions": ["TLS 1.2"]}, fixes=("cert", "tls"), profile="tls13-only",
           try_commands=("curl --tlsv1.3 --cacert {ca} https://{host}:{port}/",
                         "tlslab connect {host}:{port} --ca-file {ca} --tls 1.3")),
    _other("tls1.3-only", "protocol", "the server speaks only TLS 1.3",
           "protocol-version-mismatch", "this server speaks only TLS 1.3",
           [("curl --tls-max 1.2", "curl: (35) OpenSSL/3.0.19: error:0A00042E:SSL "
             "routines::tlsv1 alert protocol version"),
            ("openssl s_client -tls1_2", "ssl3_read_bytes:tlsv1 alert protocol version ... SSL "
                                         "alert number 70"),
            ("Python ssl, maximum_version TLSv1_2", "ssl.SSLError: [SSL: "
             "TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"),
            ("tlslab connect --tls 1.2", "error: handshake failed: peer sent fatal alert "
                                         "protocol_version"),
            ("Java 8 before 8u261, Android 9 and older", "Received fatal alert: protocol_version")],
           "every client that offers TLS 1.3",
           server={"versions": ["TLS 1.3"]}, fixes=("cert", "tls"), profile="tls12-only",
           try_commands=("curl --tls-max 1.2 --cacert {ca} https://{host}:{port}/",
                         "tlslab connect {host}:{port} --ca-file {ca} --tls 1.2")),
    # ------------------------------------------------------------------ algorithms
    _other("rsa-kx-only", "algorithms", "TLS 1.2 with static RSA key exchange and AES-CBC only "
           "(no forward secrecy)", "no-common-cipher",
           "this server accepts only static-RSA key exchange with AES-CBC "
           "(TLS_RSA_WITH_AES_*_CBC_SHA*)",
           [("Python ssl", _PY_HS),
            ("openssl s_client -cipher ECDHE", _OSSL_HS),
            ("Chrome and other clients without TLS_RSA_* suites",
             "ERR_SSL_VERSION_OR_CIPHER_MISMATCH")],
           "clients that still offer TLS_RSA_* suites (curl, openssl s_client, tlslab connect)",
           key_type="rsa2048",
           server={"versions": ["TLS 1.2"],
                   "cipher_suites": ["TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
                                     "TLS_RSA_WITH_AES_128_CBC_SHA256"]},
           fixes=("cert", "tls", "cipher"), profile="browser",
           try_commands=("python3 -c \"import ssl,socket; ssl.create_default_context(cafile='{ca}')"
                         ".wrap_socket(socket.create_connection(('{ip}', {port})), "
                         "server_hostname='{host}')\"",
                         "openssl s_client -connect {ip}:{port} -cipher ECDHE -CAfile {ca} "
                         "</dev/null")),
    _other("dhe-only", "algorithms", "TLS 1.2 with finite-field DHE suites only",
           "no-common-cipher",
           "this server accepts only DHE-RSA suites (finite-field Diffie-Hellman), which "
           "browsers and Go do not offer",
           [("curl --ciphers 'ECDHE:!DHE'", _CURL_HS),
            ("openssl s_client -cipher ECDHE", _OSSL_HS),
            ("tlslab connect --cipher TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", _TLSLAB_HS),
            ("Chrome, Firefox, Go", "ERR_SSL_VERSION_OR_CIPHER_MISMATCH / "
             "SSL_ERROR_NO_CYPHER_OVERLAP / remote error: tls: handshake failure")],
           "clients that offer DHE suites (curl, openssl, Python ssl, tlslab by default)",
           key_type="rsa2048",
           server={"versions": ["TLS 1.2"],
                   "cipher_suites": ["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
                                     "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"]},
           fixes=("cert", "tls", "cipher"), profile="browser",
           try_commands=("openssl s_client -connect {ip}:{port} -cipher ECDHE -CAfile {ca} "
                         "</dev/null",
                         "curl --ciphers 'ECDHE:!DHE' --cacert {ca} https://{host}:{port}/")),
    _other("3des-only", "algorithms", "TLS 1.2 with 3DES suites only (64-bit blocks, Sweet32)",
           "no-common-cipher",
           "this server accepts only 3DES suites (TLS_*_WITH_3DES_EDE_CBC_SHA), which current "
           "clients no longer offer",
           [("curl", _CURL_HS), ("openssl s_client", _OSSL_HS), ("Python ssl", _PY_HS),
            ("tlslab connect", _TLSLAB_HS)],
           "clients that enable 3DES on purpose (gnutls-cli --priority NORMAL:+3DES-CBC; "
           "Debian's OpenSSL 3 has no 3DES at all)",
           key_type="rsa2048",
           server={"versions": ["TLS 1.2"],
                   "cipher_suites": ["TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
                                     "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]},
           fixes=("cert", "tls", "cipher"),
           try_commands=("curl --cacert {ca} https://{host}:{port}/",
                         "gnutls-cli --x509cafile {ca} --priority NORMAL:+3DES-CBC -p {port} "
                         "{host} </dev/null")),
    _other("no-common-group", "algorithms", "the server accepts only the P-521 curve "
           "(secp521r1) for key exchange", "no-common-group",
           "this server accepts only secp521r1 for key exchange, which browsers do not offer",
           [("tlslab connect", _TLSLAB_HS),
            ("curl --curves X25519:P-256:P-384", _CURL_HS),
            ("openssl s_client -groups X25519:P-256:P-384", _OSSL_HS),
            ("Chrome, Edge", "ERR_SSL_VERSION_OR_CIPHER_MISMATCH")],
           "clients that offer P-521 (curl, openssl, Python ssl, Go, Java, Firefox)",
           server={"groups": ["secp521r1"]}, fixes=("cert", "group"),
           try_commands=("tlslab connect {host}:{port} --ca-file {ca}",
                         "curl --curves X25519:P-256:P-384 --cacert {ca} https://{host}:{port}/")),
    _other("pkcs1-only-tls13", "algorithms", "TLS 1.3 with an RSA certificate, signing the "
           "CertificateVerify with PKCS#1 v1.5 (forbidden in TLS 1.3)",
           "no-common-signature-algorithm",
           "the server signs its TLS 1.3 CertificateVerify with rsa_pkcs1_sha256, which RFC 8446 "
           "§4.4.3 forbids (TLS 1.3 requires RSA-PSS)",
           [("curl", "curl: (35) OpenSSL/3.0.19: error:0A000172:SSL routines::wrong signature "
                     "type"),
            ("openssl s_client", "tls12_check_peer_sigalg:wrong signature type"),
            ("Python ssl", "ssl.SSLError: [SSL: WRONG_SIGNATURE_TYPE] wrong signature type"),
            ("tlslab connect", "error: handshake failed: server signed with rsa_pkcs1_sha256, "
                               "which was not offered for TLS 1.3 (sent alert illegal_parameter)")],
           "no conforming TLS 1.3 client",
           key_type="rsa2048",
           server={"versions": ["TLS 1.3"], "tls13_pkcs1_signatures": True},
           fixes=("cert", "tls", "sigalg"), client_decides=True,
           try_commands=("curl --cacert {ca} https://{host}:{port}/",
                         "tlslab connect {host}:{port} --ca-file {ca} --trace")),
    _other("ecdsa-cert-rsa-suites", "algorithms", "an ECDSA certificate, but only ECDHE-RSA "
           "suites, which need an RSA certificate", "no-common-cipher",
           "this server has an ECDSA certificate but accepts only ECDHE-RSA suites, which need "
           "an RSA certificate: no suite fits",
           [("curl", _CURL_HS), ("openssl s_client", _OSSL_HS), ("Python ssl", _PY_HS),
            ("tlslab connect", _TLSLAB_HS)],
           "no client: the server cannot complete any handshake",
           server={"versions": ["TLS 1.2"],
                   "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                     "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]},
           fixes=("cert", "tls", "cipher"),
           try_commands=("curl --cacert {ca} https://{host}:{port}/",)),
    # ------------------------------------------------------------------ others
    _other("client-cert-required", "others", "the server requires a client certificate "
           "(mutual TLS) issued by the lab CA", "client-certificate-required",
           "this server requires a client certificate issued by the lab CA",
           [("curl", "curl: (56) OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL "
                     "routines::tlsv13 alert certificate required, errno 0"),
            ("Python ssl", "ssl.SSLError: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
                           "certificate required"),
            ("tlslab connect", "error: handshake failed: the server aborted the connection after "
                               "the handshake: peer sent fatal alert certificate_required")],
           "clients that present the lab's client certificate ({dir}/client.pem and "
           "{dir}/client.key)",
           server={"client_auth": "required"}, fixes=("cert", "client-ca"),
           note="in TLS 1.3 the client sees the refusal only after its handshake is done, on "
                "its first read",
           try_commands=("curl --cacert {ca} https://{host}:{port}/",
                         "curl --cacert {ca} --cert {dir}/client.pem --key {dir}/client.key "
                         "https://{host}:{port}/")),
    _other("sni-required", "others", "the server refuses a ClientHello without SNI "
           "(unrecognized_name)", "sni-required",
           "this server requires SNI (server_name) and refuses clients that send none",
           [("curl https://127.0.0.1:PORT/", "curl: (35) OpenSSL/3.0.19: error:0A000458:SSL "
             "routines::tlsv1 unrecognized name"),
            ("openssl s_client -noservername", "ssl3_read_bytes:tlsv1 unrecognized name ... SSL "
                                               "alert number 112"),
            ("Python ssl, server_hostname=None", "ssl.SSLError: [SSL: TLSV1_UNRECOGNIZED_NAME] "
                                                 "tlsv1 unrecognized name"),
            ("tlslab connect 127.0.0.1:PORT", "error: handshake failed: peer sent fatal alert "
                                              "unrecognized_name")],
           "clients that connect by name: they send SNI",
           server={"require_sni": True}, fixes=("cert",), profile="no-sni",
           try_commands=("curl --cacert {ca} https://{ip}:{port}/",
                         "curl --cacert {ca} https://{host}:{port}/")),
    _other("alpn-strict", "others", "the server speaks only ALPN http/1.1 and refuses clients "
           "that offer only other protocols (no_application_protocol)", "alpn-mismatch",
           "this server speaks only the ALPN protocol http/1.1 and refuses clients that offer "
           "only others",
           [("openssl s_client -alpn h2", "ssl3_read_bytes:tlsv1 alert no application protocol "
                                          "... SSL alert number 120"),
            ("Python ssl, set_alpn_protocols(['h2'])", "ssl.SSLError: [SSL] tlsv1 alert no "
                                                       "application protocol"),
            ("tlslab connect --alpn h2", "error: handshake failed: peer sent fatal alert "
                                         "no_application_protocol"),
            ("gRPC and other h2-only clients", "no_application_protocol")],
           "clients that offer http/1.1 (curl, browsers) or no ALPN at all",
           server={"alpn_protocols": ["http/1.1"]}, fixes=("cert", "alpn"), profile="alpn-h2",
           try_commands=("openssl s_client -connect {ip}:{port} -alpn h2 -CAfile {ca} </dev/null",
                         "tlslab connect {host}:{port} --ca-file {ca} --alpn h2")),
    # ------------------------------------------------------------------ vulnerabilities
    # Servers that complete every ordinary handshake but misbehave as known-vulnerable
    # stacks did, through the engine's LAB ONLY options (tlslab/proto/lab_faults.py).  What
    # they leak is fake memory ("tlslab-lab-memory ..."), never real process memory.  Only
    # an active check (tlslab scan, tlslab.scan.vulns_active) shows the fault.
    _vuln("heartbleed", "Heartbleed (CVE-2014-0160): the server answers a HeartbeatRequest "
          "with as many bytes as its payload_length claims, whatever it carried",
          "this server negotiates the heartbeat extension (RFC 6520) and answers a "
          "HeartbeatRequest whose payload_length exceeds its payload with that many bytes, the "
          "missing ones taken from (fake) memory, even before the handshake completes, as "
          "OpenSSL 1.0.1 to 1.0.1f did",
          "HEARTBLEED vulnerable: sent (after ServerHelloDone, in clear, heartbeat negotiated) "
          "a HeartbeatRequest with payload_length=16384 and 1 byte of payload; got a "
          "16403-byte HeartbeatResponse with payload_length=16384: the server reads past its "
          "buffer and sent 16383 bytes that were never sent to it",
          server={"versions": ["TLS 1.2"], "lab_heartbeat": "heartbleed"}),
    _vuln("ccs-injection", "CCS injection (CVE-2014-0224): the server accepts a "
          "ChangeCipherSpec before the key exchange",
          "this server accepts a ChangeCipherSpec sent right after its ServerHelloDone, before "
          "the ClientKeyExchange (RFC 5246 §7.1 makes it unexpected_message), and switches to "
          "keys derived from an empty premaster, as OpenSSL before 1.0.1h did",
          "CCS_INJECTION vulnerable: sent a ChangeCipherSpec right after the server's "
          "ServerHelloDone, before any key exchange; no alert came back within 1.5 s (a fixed "
          "server answers unexpected_message), and the record sent next was answered with "
          "bad_record_mac: the server had switched to keys made without a key exchange",
          server={"versions": ["TLS 1.2"], "lab_early_ccs": True}),
    _vuln("robot", "ROBOT: static RSA key exchange with a Bleichenbacher padding oracle",
          "this server accepts static RSA key exchange (TLS_RSA_WITH_AES_*) and answers a "
          "ClientKeyExchange with bad PKCS#1 v1.5 padding with handshake_failure, but one with "
          "good padding and a wrong Finished with bad_record_mac: a Bleichenbacher oracle "
          "(ROBOT, Böck, Somorovsky and Young 2018) that lets an attacker decrypt recorded "
          "sessions and sign with the server's key",
          "ROBOT vulnerable: sent ClientKeyExchanges with the five ROBOT paddings (each with "
          "ChangeCipherSpec and a wrong Finished), 3 rounds: correct padding and premaster -> "
          "alert bad_record_mac; wrong first bytes (0x41 0x17 instead of 0x00 0x02) -> alert "
          "handshake_failure; ...",
          key_type="rsa2048",
          server={"versions": ["TLS 1.2"],
                  "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                    "TLS_RSA_WITH_AES_128_GCM_SHA256",
                                    "TLS_RSA_WITH_AES_256_GCM_SHA384",
                                    "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"],
                  "lab_rsa_padding_oracle": True},
          fixes=("cert", "tls", "cipher")),
    _vuln("ticketbleed", "Ticketbleed (CVE-2016-9244): resuming from a session ticket, the "
          "server echoes 32 bytes of session ID whatever length the client sent",
          "this server, resuming a TLS 1.2 session from a ticket offered with a session ID "
          "shorter than 32 bytes, echoes 32 bytes in its ServerHello, the extra ones from (fake) "
          "memory, as F5 BIG-IP did (RFC 5077 §3.4 says: the same session ID)",
          "TICKETBLEED vulnerable: resumed with the ticket of a first handshake and a 1-byte "
          "session ID (5a); the ServerHello echoed a 32-byte session ID: 31 bytes the client "
          "never sent (memory of the server: b'tlslab-lab-memor'...)",
          server={"versions": ["TLS 1.2"], "lab_ticketbleed": True}),
]

#: every scenario by name, in listing order
SCENARIOS: dict[str, Scenario] = {s.name: s for s in _LIST}


class UnknownScenario(ValueError):
    """A scenario name that does not exist; ``close`` holds the similar names."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.close = close_names(name)
        hint = (f"did you mean {', '.join(self.close)}?" if self.close
                else "`tlslab serve --list-scenarios` lists them")
        super().__init__(f"unknown scenario {name!r}: {hint}")


def close_names(name: str) -> list[str]:
    """Scenario names close to ``name`` (difflib), best first."""
    key = name.strip().lower()
    close = difflib.get_close_matches(key, list(SCENARIOS), n=4, cutoff=0.5)
    close += [n for n in SCENARIOS if key and key in n and n not in close]
    return close[:5]


def get_scenario(name: str) -> Scenario:
    scenario = SCENARIOS.get(name.strip().lower())
    if scenario is None:
        raise UnknownScenario(name)
    return scenario


def conflicts(scenario: Scenario, given: Iterable[str]) -> list[tuple[str, str]]:
    """``(flag, what the scenario does instead)`` for each serve option in ``given`` (keys
    of :data:`OPTION_FLAGS`) that the scenario sets itself."""
    return [OPTION_FLAGS[g] for g in given if g in scenario.fixes]


# --------------------------------------------------------------------------- building it

class _AiaHandler(http.server.BaseHTTPRequestHandler):
    server_version = "tlslab-aia"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        srv: "_AiaServer" = self.server  # type: ignore[assignment]
        if self.path.split("?", 1)[0] != srv.path:
            self.send_error(404, "only the intermediate CA is served here")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-cert")  # RFC 2585 §4.1
        self.send_header("Content-Length", str(len(srv.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(srv.body)
        if srv.log is not None:
            host, port = self.client_address[:2]
            srv.log(f"{host}:{port} AIA: fetched the intermediate CA ({srv.url}): "
                    "this client completes the chain itself")

    def log_message(self, format: str, *args: Any) -> None:  # our own one-line log instead
        pass


class _AiaServer(http.server.ThreadingHTTPServer):
    """Plain HTTP on 127.0.0.1 answering the AIA caIssuers URL with the intermediate (DER)."""

    daemon_threads = True
    path = "/intermediate.der"
    body = b""
    url = ""
    log: Callable[[str], Any] | None = None


@dataclass
class Lab:
    """A scenario's certificates, files and :class:`~tlslab.proto.config.ServerConfig`.

    ``directory`` (removed by :meth:`close`) holds ``ca.pem`` (what clients should trust),
    and for ``client-cert-required`` ``client.pem`` / ``client.key``.  ``aia_url`` is set
    for ``missing-intermediate``, whose intermediate this process serves over HTTP.
    """

    scenario: Scenario
    config: Any
    ca: x509.Certificate
    leaf: x509.Certificate
    directory: str
    ca_file: str
    profile: ServerProfile
    aia_url: str | None = None
    files: dict = field(default_factory=dict)
    _aia: _AiaServer | None = None

    def close(self) -> None:
        if self._aia is not None:
            self._aia.shutdown()
            self._aia.server_close()
            self._aia = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def fill(self, template: str, host: str, port: int) -> str:
        """A try-command or client note with the paths and address filled in."""
        bare = host.strip("[]")
        ip = {"localhost": "127.0.0.1", "0.0.0.0": "127.0.0.1", "": "127.0.0.1",
              "::": "::1"}.get(bare, bare)
        if ":" in ip:
            ip = f"[{ip}]"  # both -connect and URLs want IPv6 in brackets
        return template.format(ca=self.ca_file, host=host, ip=ip, port=port, dir=self.directory)


def _pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def build_lab(name: str | Scenario, names: Iterable[str] = ("localhost", "127.0.0.1", "::1"), *,
              log: Callable[[str], Any] | None = None, **options: Any) -> Lab:
    """Make the scenario's certificates and server configuration.

    ``options`` are more ServerConfig options (``keylog_file``, ``tickets``, ...); the
    scenario's own settings win (callers check :func:`conflicts` first).  ``log`` receives
    one line per AIA fetch (``missing-intermediate``).  Raises :class:`UnknownScenario` or
    ``ValueError`` (a ServerConfig the engine refuses).
    """
    from ..proto.config import ServerConfig

    scenario = name if isinstance(name, Scenario) else get_scenario(name)
    names = tuple(names)
    directory = tempfile.mkdtemp(prefix=f"tlslab-lab-{scenario.name}-")
    aia = None
    try:
        aia_url = None
        if scenario.cert_kind == "missing-intermediate":
            aia = _AiaServer(("127.0.0.1", 0), _AiaHandler)
            aia_url = f"http://127.0.0.1:{aia.server_address[1]}{aia.path}"
        pki = make_pki(names=names, key_type=scenario.key_type)
        bundle = pki.server(scenario.cert_kind, aia_url=aia_url)
        ca_file = os.path.join(directory, "ca.pem")
        with open(ca_file, "wb") as f:
            f.write(_pem(bundle.trust))
        files = {"ca": ca_file}
        server = dict(scenario.server)
        client_auth = server.pop("client_auth", None)
        if client_auth:
            client = pki.server("client")
            files["client_ca"] = os.path.join(directory, "client-ca.pem")
            with open(files["client_ca"], "wb") as f:
                f.write(_pem(bundle.client_ca))
            files["client_cert"] = os.path.join(directory, "client.pem")
            files["client_key"] = os.path.join(directory, "client.key")
            from ..workbench.certgen import write_pem
            write_pem(client.chain, client.key, files["client_cert"], files["client_key"])
            os.chmod(files["client_key"], 0o600)
            server.update(client_ca_file=files["client_ca"],
                          require_client_cert=client_auth == "required")
        merged = {**options, **server}
        config = ServerConfig(certificate_chain=bundle.chain, private_key=bundle.key, **merged)
        if aia is not None:
            aia.body = pki.intermediate_der
            aia.url = aia_url
            aia.log = log
            threading.Thread(target=aia.serve_forever, kwargs={"poll_interval": 0.2},
                             name="tlslab-aia", daemon=True).start()
        profile = ServerProfile.from_config(
            config, scenario=scenario.name, problem=scenario.problem or None,
            problem_code=scenario.code if scenario.code != "ok" else None,
            client_decides=scenario.client_decides, lenient=scenario.lenient or None,
            ca_file=ca_file)
        return Lab(scenario=scenario, config=config, ca=pki.root, leaf=bundle.leaf,
                   directory=directory, ca_file=ca_file, profile=profile, aia_url=aia_url,
                   files=files, _aia=aia)
    except BaseException:
        if aia is not None:
            aia.server_close()
        shutil.rmtree(directory, ignore_errors=True)
        raise


def start_scenario_server(name: str | Scenario | Lab, host: str = "127.0.0.1", port: int = 0, *,
                          log: Callable[[str], Any] | None = None, json_log: Any = None,
                          handshake_timeout: float = 10.0, io_timeout: float | None = 30.0,
                          names: Iterable[str] | None = None, **options: Any):
    """A listening :class:`~tlslab.io.blocking.TLSServer` playing scenario ``name`` (what
    ``tlslab serve --scenario`` runs): each connection is explained in one ``log`` line
    (and one JSON object per line to ``json_log``, a writable text file).

    The server has ``.lab`` (:class:`Lab`), ``.explainer`` (its ``.reports``) and
    ``.close_lab()``; call ``serve_forever()``, then ``shutdown()``, ``server_close()``
    and ``close_lab()``.  ``OSError`` if it cannot listen (the lab is cleaned up).
    """
    from ..io.blocking import make_server
    from ..workbench.httppage import http_handler

    if isinstance(name, Lab):
        lab = name
    else:
        if names is None:
            names = ["localhost", "127.0.0.1", "::1"]
            bare = host.strip("[]")
            if bare and bare not in names and bare not in ("0.0.0.0", "::"):
                names.append(bare)
        lab = build_lab(name, names, log=log, **options)
    explainer = ServerExplainer(lab.config, lab.profile, json_log=json_log)
    page_note = f"{lab.scenario.name}: {lab.scenario.summary}"
    say = log or (lambda line: None)
    handler = explainer.page_handler(functools.partial(http_handler, scenario=page_note), say)
    try:
        srv = make_server(host, port, lab.config, handler, log=say, log_line=explainer,
                          handshake_timeout=handshake_timeout, io_timeout=io_timeout)
    except BaseException:
        lab.close()
        raise
    srv.lab = lab
    srv.explainer = explainer
    srv.close_lab = lab.close
    return srv


def make_async_scenario_server(lab: Lab, host: str = "127.0.0.1", port: int = 0, *,
                               log: Callable[[str], Any] | None = None, json_log: Any = None,
                               **server_options: Any):
    """:func:`start_scenario_server` on the asyncio server that ``tlslab serve --scenario``
    runs (:class:`~tlslab.io.aio_server.AsyncTLSServer`; ``server_options`` are its
    keyword arguments).  The caller owns ``lab`` and closes it.  ``OSError`` if it cannot
    listen."""
    from ..io.aio_server import AsyncTLSServer
    from ..workbench.httppage import async_http_handler

    explainer = ServerExplainer(lab.config, lab.profile, json_log=json_log)
    page_note = f"{lab.scenario.name}: {lab.scenario.summary}"
    say = log or (lambda line: None)
    handler = explainer.async_page_handler(
        functools.partial(async_http_handler, scenario=page_note), say)
    srv = AsyncTLSServer(host, port, lab.config, handler, log=say, log_line=explainer,
                         **server_options)
    srv.lab = lab
    srv.explainer = explainer
    return srv
