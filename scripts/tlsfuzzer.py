#!/usr/bin/env python3
"""Run a chosen set of tlsfuzzer conformance scripts against ``tlslab serve``.

Not part of ``make test``: it needs tlsfuzzer, which is not on PyPI, and takes
several minutes.

Getting tlsfuzzer
-----------------
tlsfuzzer is a public repository (https://github.com/tlsfuzzer/tlsfuzzer).  Its
master branch needs the master branch of tlslite-ng (new names such as the ML-DSA
signature schemes), so install both from git into a virtualenv of their own::

    git clone https://github.com/tlsfuzzer/tlsfuzzer /work/tlsfuzzer
    python3 -m venv /work/tlsfuzzer-venv
    /work/tlsfuzzer-venv/bin/pip install ecdsa kyber-py \\
        git+https://github.com/tlsfuzzer/tlslite-ng

(kyber-py is only needed by the ML-KEM scripts.)  Last run: tlsfuzzer 14555fe,
tlslite-ng 0d03169.

Running
-------
::

    PYTHONPATH=src .venv/bin/python scripts/tlsfuzzer.py \\
        --tlsfuzzer /work/tlsfuzzer --fuzzer-python /work/tlsfuzzer-venv/bin/python
    ... --only tls13-hrr --only fallback      # a subset (substring of the entry name)
    ... --list                                # the entries, their options and xfails
    ... --json results.json --logs DIR        # machine output, every script's output

Each entry starts its own ``tlslab serve`` on 127.0.0.1 (ports from ``--port``,
24600 by default) with the options the script needs (an RSA or ECDSA certificate
from tlsfuzzer's ``tests/`` directory, ``--tls 1.2`` for the scripts about servers
without TLS 1.3, ``--early-data``, ``--client-ca``...), runs the script with a
timeout and stops the server.  The cases a script reports are counted: PASS, XFAIL
(an expected failure named below, with the reason) count as passed; FAIL and XPASS
(an expected failure that passed) as failed; a script that crashes or times out
counts as one failed case.

Expected failures (``xfail`` below) are only for what tlslab deliberately does not do
(TLS 1.0/1.1 and SHA-1 signatures are off by default, renegotiation is refused, h2 is
never chosen by serve) or what one server certificate cannot do (a P-256 key cannot sign
for a P-384-only client); each names the alert or message expected and the reason.
Scripts left out entirely are listed in ``EXCLUDED`` with the reason (``--list``).  A few
server configurations name suites that are never on by default (static RSA key exchange
for scripts that offer nothing else, the TLS 1.3 CCM suites): the defaults themselves
stay as they are.

Exit codes: 0 every case passed (or failed as expected), 1 some case failed,
2 bad usage (tlsfuzzer or its Python not found, unknown --only name).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- servers

#: serve options per server kind; {tests} is tlsfuzzer's tests/ directory
SERVERS: dict[str, list[str]] = {
    "rsa": ["--cert", "{tests}/serverX509Cert.pem", "--key", "{tests}/serverX509Key.pem"],
    "ecdsa": ["--cert", "{tests}/serverECCert.pem", "--key", "{tests}/serverECKey.pem"],
    "rsa-pss": ["--cert", "{tests}/serverRSAPSSCert.pem", "--key", "{tests}/serverRSAPSSKey.pem"],
    "rsa-tls12": ["--cert", "{tests}/serverX509Cert.pem", "--key", "{tests}/serverX509Key.pem",
                  "--tls", "1.2"],
    "rsa-early": ["--cert", "{tests}/serverX509Cert.pem", "--key", "{tests}/serverX509Key.pem",
                  "--early-data", "16384"],
    # the CCM suites are never on by default (nor in OpenSSL); this script tests all five
    "rsa-ccm": ["--cert", "{tests}/serverX509Cert.pem", "--key", "{tests}/serverX509Key.pem"]
               + [a for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                  "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                                  "TLS_AES_128_CCM_8_SHA256") for a in ("--cipher", suite)],
    "ed25519": ["--cert", "{tests}/serverEd25519Cert.pem", "--key", "{tests}/serverEd25519Key.pem"],
    # a fresh CA and client certificate made by this script ({client_ca}): tlsfuzzer's own
    # client certificates expired in 2017/2018, and tlslab checks dates
    "client-cert": ["--cert", "{tests}/serverX509Cert.pem", "--key", "{tests}/serverX509Key.pem",
                    "--client-ca", "{client_ca}"],
    # static RSA key exchange named explicitly (never on by default), for the scripts that
    # offer nothing else; ECDHE and the TLS 1.3 suites stay
    "rsa-kx": ["--cert", "{tests}/serverX509Cert.pem", "--key", "{tests}/serverX509Key.pem"]
              + [a for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                 "TLS_CHACHA20_POLY1305_SHA256",
                                 "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                 "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                                 "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
                                 "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
                                 "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA",
                                 "TLS_RSA_WITH_AES_256_CBC_SHA")
                 for a in ("--cipher", suite)],
}

# reasons, named once
NO_TLS10 = "TLS 1.0/1.1 are off by default (RFC 8996)"
NO_SHA1 = "SHA-1 signatures are off by default (RFC 9155)"
NO_RENEG = "renegotiation is refused (only secure-renegotiation signalling is supported)"
NO_SHA1_IMPLICIT = ("no signature_algorithms in a TLS 1.2 ClientHello means SHA-1 signatures "
                    "(RFC 5246 §7.4.1.4.1); " + NO_SHA1)
NO_TICKETS_WITHOUT_MODES = ("the ClientHello has no psk_key_exchange_modes, so no ticket could be "
                            "used: tlslab sends none (RFC 8446 §4.2.9: SHOULD NOT)")
#: what tlslab's CertificateRequest lists (RFC 8446 §4.3.2; no PKCS#1 in TLS 1.3 CertificateVerify)
TLS13_CR_SCHEMES = ("ecdsa_secp256r1_sha256 ecdsa_secp384r1_sha384 ecdsa_secp521r1_sha512 ed25519 "
                    "ed448 rsa_pss_rsae_sha256 rsa_pss_rsae_sha384 rsa_pss_rsae_sha512 "
                    "rsa_pss_pss_sha256 rsa_pss_pss_sha384 rsa_pss_pss_sha512")


@dataclass
class Entry:
    """One run of one tlsfuzzer script: its arguments, the server it needs, and the cases
    expected to fail ({case name: (expected error substring or None, reason)})."""
    script: str
    args: list[str] = field(default_factory=list)
    server: str = "rsa"
    xfail: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    exclude: dict[str, str] = field(default_factory=dict)
    timeout: int = 300
    label: str = ""

    @property
    def name(self) -> str:
        return self.script + (f" [{self.label}]" if self.label else "")

    def argv(self) -> list[str]:
        out = list(self.args)
        for case, reason in self.exclude.items():
            out += ["-e", case]
        for case, (error, reason) in self.xfail.items():
            out += ["-x", case] + (["-X", error] if error else [])
        return out


ENTRIES: list[Entry] = [
    # ---- TLS 1.3
    Entry("test-tls13-conversation"),
    Entry("test-tls13-conversation", server="ecdsa", label="ecdsa"),
    Entry("test-tls13-hrr"),
    # a client offering only TLS 1.1 besides a version from the future gets protocol_version
    Entry("test-tls13-version-negotiation", ["-d"], xfail={
        "fallback from TLS 1.8 to 1.1": ("protocol_version", NO_TLS10)}),
    Entry("test-tls13-legacy-version"),
    Entry("test-tls13-keyshare-omitted"),
    Entry("test-tls13-unrecognised-groups"),
    Entry("test-tls13-obsolete-curves"),
    Entry("test-tls13-crfg-curves"),
    Entry("test-tls13-ecdhe-curves"),
    Entry("test-tls13-ffdhe-groups"),
    Entry("test-tls13-ffdhe-sanity"),
    Entry("test-tls13-dhe-shared-secret-padding"),
    Entry("test-tls13-signature-algorithms"),
    Entry("test-tls13-rsa-signatures"),
    Entry("test-tls13-rsapss-signatures", server="rsa-pss"),
    Entry("test-tls13-pkcs-signature"),
    Entry("test-tls13-ecdsa-support", server="ecdsa", xfail={
        **{f"Test with ecdsa_brainpoolP{n}r1tls13_sha{n}": (
            "handshake_failure", "the server's key is P-256: a client accepting only a brainpool "
            "scheme has none in common (RFC 8446 §4.2.3)") for n in ("256", "384", "512")},
        **{f"Test with ecdsa_secp{n}r1_sha{h}": (
            "handshake_failure", "the server has one P-256 key and TLS 1.3 binds the curve to the "
            "scheme (RFC 8446 §4.2.3); tlslite-ng passes it with three certificates")
            for n, h in (("384", "384"), ("521", "512"))}}),
    Entry("test-tls13-invalid-ciphers"),
    Entry("test-tls13-nociphers"),
    Entry("test-tls13-empty-alert"),
    Entry("test-tls13-zero-length-data"),
    Entry("test-tls13-zero-content-type"),
    Entry("test-tls13-record-padding"),
    Entry("test-tls13-record-layer-limits"),
    Entry("test-tls13-finished"),
    Entry("test-tls13-finished-plaintext"),
    # its ClientHello has no psk_key_exchange_modes, so no ticket could be used: RFC 8446
    # §4.2.9 says a server SHOULD NOT send tickets then, and tlslab sends none (-t 0)
    Entry("test-tls13-count-tickets", ["-t", "0"]),  # see NO_TICKETS_WITHOUT_MODES
    Entry("test-tls13-session-resumption", ["-d"]),
    Entry("test-tls13-0rtt-garbage", ["-d"], server="rsa-early"),
    Entry("test-tls13-ccs"),
    Entry("test-tls13-multiple-ccs-messages"),
    Entry("test-tls13-keyupdate"),
    Entry("test-tls13-large-number-of-extensions"),
    Entry("test-tls13-shuffled-extentions"),
    Entry("test-tls13-symetric-ciphers", server="rsa-ccm"),
    Entry("test-tls13-serverhello-random"),
    Entry("test-tls13-unencrypted-alert"),
    Entry("test-tls13-non-support", server="rsa-tls12"),
    Entry("test-tls13-certificate-request", [
        "-E", "47:CR key_share:SH supported_versions:SH", "-s", TLS13_CR_SCHEMES],
          server="client-cert"),
    # ---- TLS 1.2 (ECDHE/DHE: -d where the script has it; static RSA key exchange is off)
    Entry("test-conversation", ["-d"]),
    Entry("test-alpn-negotiation", ["-d"], xfail={
        **{name: ("no_renegotiation", NO_RENEG) for name in (
            "renegotiation 2nd handshake alpn", "renegotiation with protocol change",
            "renegotiation without protocol change")},
        "resumption with alpn change": (
            "no_application_protocol", "serve's page is HTTP/1.x: it never "
            "selects h2, which this case asks for on resumption")}),
    Entry("test-fallback-scsv", ["--tls-1.3", "-d"], xfail={
        name: ("protocol_version", NO_TLS10) for name in (
            "sanity - TLSv1.1", "record TLSv1.1 hello TLSv1.1")}),
    Entry("test-fallback-scsv", ["-d"], server="rsa-tls12", label="TLS 1.2 server", xfail={
        name: ("protocol_version", NO_TLS10) for name in (
            "sanity - TLSv1.1", "record TLSv1.1 hello TLSv1.1")}),
    Entry("test-extended-master-secret-extension", ["-d"], xfail={
        "sanity TLSv1.1": ("protocol_version", NO_TLS10),
        "extended master secret in TLSv1.1": ("protocol_version", NO_TLS10),
        **{name: ("no_renegotiation", NO_RENEG) for name in (
            "extended master secret with renegotiation",
            "renegotiate with EMS in session without EMS",
            "renegotiate without EMS in session with EMS")}}),
    Entry("test-sig-algs", xfail={
        f"rsa_pss_pss_sha{n} only": ("handshake_failure", "the server's key is rsaEncryption: "
                                     "rsa_pss_pss_* needs an RSASSA-PSS key (RFC 8446 §4.2.3)")
        for n in ("256", "384", "512")}),
    Entry("test-signature-algorithms", ["--no-sha1"]),
    Entry("test-aes-gcm-nonces", ["-d"]),
    # the script samples its conversations; when it draws this one, a TLS 1.1-only hello
    # gets protocol_version (TLS 1.1 is off), where the script expects handshake_failure
    Entry("test-chacha20", ["--extra-exts"], xfail={
        "Chacha20 in TLS1.1": ("protocol_version", NO_TLS10)}),
    Entry("test-invalid-compression-methods", ["-d"]),
    Entry("test-truncating-of-client-hello", ["-d"]),
    Entry("test-encrypt-then-mac", ["-d"]),
    Entry("test-large-number-of-extensions", ["-d"]),
    Entry("test-zero-length-data", ["-d"]),
    Entry("test-version-numbers", ["-d"]),
    Entry("test-invalid-client-hello", server="rsa-kx"),
    Entry("test-x25519", xfail={
        "default to P-256/sha-1 when no extensions specified": ("handshake_failure", NO_SHA1_IMPLICIT)}),
    Entry("test-ecdhe-rsa-key-exchange-with-bad-messages"),
    Entry("test-dhe-rsa-key-exchange-with-bad-messages"),
    # its "fallback to non-ffdhe" cases offer TLS_RSA_* as the only other suite: rsa-kx server
    Entry("test-ffdhe-negotiation", ["-S", "rsa_pss_rsae_sha256 rsa_pkcs1_sha256 rsa_pss_rsae_sha384"],
          server="rsa-kx"),
    Entry("test-renegotiation-disabled", ["-d"]),
    Entry("test-sessionID-resumption", ["-d"]),
    Entry("test-session-ticket-resumption", ["-d"], xfail={
        name: ("no_renegotiation", NO_RENEG) for name in (
            "renegotiation with removal of session_ticket ext",
            "session resumption with renegotiation")}),
    # tlslab prefers AES-128 suites (server order), as the script's --swap-ciphers says
    Entry("test-resumption-with-wrong-ciphers", ["-d", "--swap-ciphers"]),
    Entry("test-message-skipping", ["-d"]),
    Entry("test-interleaved-CKE-with-CCS"),
    Entry("test-invalid-content-type", ["-d"]),
    Entry("test-large-hello", ["-d"]),
    Entry("test-record-layer-fragmentation", ["-d"]),
    Entry("test-no-mlkem-in-old-tls", ["-d"]),
    Entry("test-hello-request-by-client", ["-d"]),
    Entry("test-ccs", ["-d"]),
    Entry("test-client-hello-max-size", ["-d"]),
    Entry("test-sslv2-connection"),
    Entry("test-point-extension"),
    Entry("test-no-heartbeat", ["-d"]),
    Entry("test-atypical-padding", ["-d"]),
    Entry("test-cve-2016-2107", ["-d"]),
    Entry("test-cve-2016-7054"),
    Entry("test-legacy-renegotiation", ["-d"], xfail={
        name: (None, NO_RENEG) for name in (
            "insecure (legacy) renegotiation with GET after 2nd handshake",
            "insecure (legacy) renegotiation with incomplete GET",
            "secure renegotiation with GET after 2nd handshake",
            "secure renegotiation with incomplete GET",
            "sending both SCSV and renegotiation_info in renegotiated handshake",
            "sending SCSV in renegotiated handshake",
            "sending both SCSV and renegotiation_info in renegotiation+resumption")}),
    # scripts whose ClientHellos offer only static RSA key exchange (no -d): a server that
    # names TLS_RSA_* suites explicitly ("rsa-kx"), as tlslite-ng's test server does
    Entry("test-message-duplication", server="rsa-kx"),
    Entry("test-fuzzed-finished", server="rsa-kx"),
    Entry("test-truncating-of-finished", server="rsa-kx"),
    Entry("test-invalid-session-id", server="rsa-kx"),
    Entry("test-invalid-version", server="rsa-kx"),
    Entry("test-invalid-cipher-suites", server="rsa-kx"),
    Entry("test-extensions", server="rsa-kx"),
    Entry("test-empty-extensions", server="rsa-kx"),
    Entry("test-tls13-keyupdate-from-server", xfail={
        "post-handshake KeyUpdate msg from server": (
            "ApplicationData", "serve never sends a KeyUpdate of its own (the engine can: "
            "ServerConnection.send_key_update)")}),
    Entry("test-tls13-connection-abort", xfail={
        "After NewSessionTicket": ("ApplicationData", NO_TICKETS_WITHOUT_MODES)}),
    Entry("test-tls13-eddsa", server="ed25519", xfail={
        "ed448 only": ("handshake_failure", "the server's key is Ed25519: a client accepting "
                       "only ed448 has no scheme in common")}),
    Entry("test-tls13-certificate-verify", ["-k", "{client_key}", "-c", "{client_cert}", "-s",
                                            TLS13_CR_SCHEMES], server="client-cert"),
    Entry("test-certificate-verify", ["-d", "-k", "{client_key}", "-c", "{client_cert}"],
          server="client-cert"),
    Entry("test-rsa-sigs-on-certificate-verify", ["-d", "-k", "{client_key}", "-c",
                                                  "{client_cert}"], server="client-cert", xfail={
        f"check sha1 w/sha{n} PRF": ("illegal_parameter", "a client CertificateVerify signed "
                                     "with SHA-1: " + NO_SHA1) for n in ("256", "384")}),
    # SecP384r1MLKEM1024 is not implemented
    Entry("test-tls13-mlkem", ["--kems", "x25519mlkem768,secp256r1mlkem768"]),
    Entry("test-tls13-no-unknown-groups", ["--groups",
                                           "x25519mlkem768,secp256r1mlkem768,secp256r1,secp384r1,"
                                           "secp521r1,x25519,x448,ffdhe2048,ffdhe3072,ffdhe4096,"
                                           "ffdhe6144,ffdhe8192"], xfail={
        name: ("illegal_parameter", "the list holds obsolete_RESERVED groups (1-22, 26-28, "
               "0xFF01-0xFF02), which a TLS 1.3 ClientHello must not offer (RFC 8446 §4.2.7): "
               "tlslab answers illegal_parameter, as test-tls13-obsolete-curves expects")
        for name in ("long list of unknown (between 1 and 266)",
                     "long list of unknown (between 1 and 266) plus a recognised group",
                     "long list of unknown (between 65037 and 65292)")}),
    Entry("test-downgrade-protection", ["-d", "--server-max-protocol=TLSv1.3"], xfail={
        f"TLS 1.3 downgrade check for Protocol (3, {n})": ("protocol_version", NO_TLS10)
        for n in ("1", "2")}),
]

#: tlsfuzzer scripts looked at and left out, with the reason (``--list`` prints them)
EXCLUDED: dict[str, str] = {
    "test-ecdhe-padded-shared-secret, test-ecdhe-rsa-key-exchange, test-dhe-rsa-key-exchange, "
    "test-unsupported-curve-fallback, test-serverhello-random, test-ecdhe-rsa-key-share-random,"
    " test-dhe-key-share-random":
        "their TLS 1.2 ClientHellos carry no signature_algorithms (SHA-1, RFC 5246 §7.4.1.4.1) "
        "and most of their cases are SSLv3/TLS 1.0/1.1 or SSLv2-format hellos; " + NO_SHA1,
    "test-export-ciphers-rejected, test-TLSv1_2-rejected-without-TLSv1_2, test-SSLv3-padding, "
    "test-sslv2-force-*, test-sslv2hello-protocol, test-lucky13, test-aesccm":
        "about SSLv3/TLS 1.0/1.1 servers or TLS 1.2 CCM suites; " + NO_TLS10,
    "test-record-size-limit, test-lengths, test-tls13-lengths":
        "need an echo server or a fixed response size (--reply-AD-size); serve's page varies",
    "test-tls13-psk_ke, test-tls13-psk_dhe_ke":
        "need an external PSK (tlslab resumes with its own tickets only)",
    "test-tls13-post-handshake-auth":
        "needs the server to ask for a certificate after the handshake on a request; serve "
        "does not (the engine can: ServerConnection.request_client_certificate)",
    "test-tls13-ecdhe-brainpool-curves, test-tls13-ecdsa-brainpool-in-certificate-verify, "
    "test-tls13-mldsa-in-certificate-verify, test-dsa-*":
        "brainpool TLS 1.3 groups, ML-DSA and DSA are not implemented",
    "test-tls13-certificate-compression, test-tls13-client-certificate-compression":
        "certificate compression (RFC 8879) is not implemented",
    "test-bleichenbacher-*, test-tls13-minerva, test-*-timing-*":
        "timing side-channel measurements (hours, packet capture)",
    "test-fuzzed-ciphertext, test-fuzzed-MAC, test-fuzzed-padding, test-fuzzed-plaintext":
        "long fuzzing runs; the engine has its own fuzzers (fuzz/)",
    "test-ocsp-stapling": "serve does not staple OCSP responses",
}

# ----------------------------------------------------------------------------- running

SUMMARY = re.compile(r"^(TOTAL|SKIP|PASS|XFAIL|FAIL|XPASS): (\d+)\s*$", re.M)


@dataclass
class Result:
    name: str
    passed: int = 0
    xfail: int = 0
    failed: int = 0
    xpass: int = 0
    skipped: int = 0
    failed_cases: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def cases(self) -> int:
        return self.passed + self.xfail + self.failed + self.xpass

    @property
    def ok(self) -> int:
        return self.passed + self.xfail

    def to_json(self) -> dict:
        return {"script": self.name, "cases": self.cases, "passed": self.passed,
                "xfail": self.xfail, "failed": self.failed, "xpass": self.xpass,
                "skipped": self.skipped, "failed_cases": self.failed_cases,
                "error": self.error, "seconds": round(self.seconds, 1)}


def parse_output(name: str, text: str) -> Result:
    """Counts from a tlsfuzzer script's closing summary (TOTAL/PASS/FAIL... lines)."""
    r = Result(name)
    counts = {k: int(v) for k, v in SUMMARY.findall(text)}
    if "PASS" not in counts:
        r.error = "no summary (crashed?)"
        r.failed = 1
        return r
    r.passed, r.xfail = counts.get("PASS", 0), counts.get("XFAIL", 0)
    r.failed, r.xpass = counts.get("FAIL", 0), counts.get("XPASS", 0)
    r.skipped = counts.get("SKIP", 0)
    for block in ("FAILED", "XPASSED"):
        m = re.search(rf"^{block}:\n((?:\t.*\n?)*)", text, re.M)
        if m:
            r.failed_cases += [line.strip().strip("'\"") for line in m.group(1).splitlines()]
    return r


_CLIENT_PKI: dict[str, str] = {}


def fill(arg: str, tests: Path) -> str:
    """An argument with {tests} and the client PKI ({client_ca}, {client_key},
    {client_cert}) filled in."""
    arg = arg.replace("{tests}", str(tests))
    for key, value in _CLIENT_PKI.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def make_client_pki(directory: Path) -> None:
    """A throwaway CA and an RSA client certificate it issued (clientAuth), as PEM files."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(name("tlsfuzzer run CA"))
          .issuer_name(name("tlsfuzzer run CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(name("tlsfuzzer client"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = {"client_ca": ca.public_bytes(serialization.Encoding.PEM),
             "client_cert": cert.public_bytes(serialization.Encoding.PEM),
             "client_key": key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())}
    for label, data in files.items():
        path = directory / f"{label}.pem"
        path.write_bytes(data)
        _CLIENT_PKI[label] = str(path)


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (its own process group: the serve process only)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _log_name(entry: Entry) -> str:
    return entry.name.replace(" ", "_").replace("/", "_")


def run_entry(entry: Entry, port: int, fuzzer: Path, fuzzer_python: str, tlslab_python: str,
              logs: Path | None) -> Result:
    """Start ``tlslab serve`` for ``entry``, run its script against it, stop the server."""
    start = time.monotonic()
    result = _run_entry(entry, port, fuzzer, fuzzer_python, tlslab_python, logs)
    result.seconds = time.monotonic() - start
    return result


def _run_entry(entry: Entry, port: int, fuzzer: Path, fuzzer_python: str, tlslab_python: str,
               logs: Path | None) -> Result:
    tests = fuzzer / "tests"
    serve_args = [fill(a, tests) for a in SERVERS[entry.server]]
    serve_log = open(logs / f"{_log_name(entry)}.serve.log", "w") if logs else subprocess.DEVNULL
    server = subprocess.Popen([tlslab_python, "-m", "tlslab", "serve", "--host", "127.0.0.1",
                               "--port", str(port)] + serve_args,
                              stdout=serve_log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    try:
        if not wait_port(port, server):
            return Result(entry.name, failed=1, error="tlslab serve did not start")
        cmd = [fuzzer_python, str(fuzzer / "scripts" / f"{entry.script}.py"),
               "-h", "127.0.0.1", "-p", str(port)] + [fill(a, tests) for a in entry.argv()]
        try:
            out = subprocess.run(cmd, cwd=fuzzer, env=dict(os.environ, PYTHONPATH=str(fuzzer)),
                                 capture_output=True, text=True, timeout=entry.timeout)
            text, result = out.stdout + out.stderr, None
        except subprocess.TimeoutExpired as e:
            text = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            result = Result(entry.name, failed=1, error=f"timed out after {entry.timeout} s")
        if logs:
            (logs / f"{_log_name(entry)}.out").write_text(text)
        return result or parse_output(entry.name, text)
    finally:
        stop(server)
        if logs:
            serve_log.close()


def select(names: list[str] | None) -> list[Entry]:
    if not names:
        return ENTRIES
    chosen = [e for e in ENTRIES if any(n in e.name for n in names)]
    return chosen


def print_table(results: list[Result]) -> None:
    width = max(len(r.name) for r in results)
    print(f"{'script':<{width}}  cases  pass  xfail  fail  note")
    for r in results:
        note = r.error or (", ".join(r.failed_cases[:4]) + (" ..." if len(r.failed_cases) > 4
                                                            else ""))
        print(f"{r.name:<{width}}  {r.cases:5d}  {r.passed:4d}  {r.xfail:5d}  "
              f"{r.failed + r.xpass:4d}  {note}")
    cases = sum(r.cases for r in results)
    ok = sum(r.ok for r in results)
    print(f"{'total':<{width}}  {cases:5d}  {sum(r.passed for r in results):4d}  "
          f"{sum(r.xfail for r in results):5d}  {cases - ok:4d}")
    print(f"passed (incl. expected failures): {ok}/{cases}"
          + (f" = {100.0 * ok / cases:.1f}%" if cases else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring (this file) for set-up.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tlsfuzzer", default=os.environ.get("TLSFUZZER_DIR", "/work/tlsfuzzer"),
                   help="tlsfuzzer checkout (default $TLSFUZZER_DIR or /work/tlsfuzzer)")
    p.add_argument("--fuzzer-python",
                   default=os.environ.get("TLSFUZZER_PYTHON", "/work/tlsfuzzer-venv/bin/python"),
                   help="Python with tlslite-ng and ecdsa (default $TLSFUZZER_PYTHON)")
    p.add_argument("--tlslab-python", default=sys.executable,
                   help="Python that runs tlslab serve (default: this one)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run entries whose name contains NAME (repeatable)")
    p.add_argument("--port", type=int, default=24600, help="first port (one per entry)")
    p.add_argument("--timeout", type=int, help="per-script timeout in seconds (default: per entry)")
    p.add_argument("--json", metavar="FILE", help="write results as JSON to FILE ('-': stdout)")
    p.add_argument("--logs", metavar="DIR", help="keep each script's and server's output in DIR")
    p.add_argument("--list", action="store_true", help="list the entries and exit")
    a = p.parse_args(argv)
    entries = select(a.only)
    if not entries:
        print(f"error: no entry matches {a.only}", file=sys.stderr)
        return 2
    if a.list:
        for e in entries:
            print(f"{e.name}: server {e.server}; args {' '.join(e.args) or '-'}")
            for case, (error, reason) in e.xfail.items():
                print(f"    xfail {case!r}" + (f" ({error})" if error else "") + f": {reason}")
            for case, reason in e.exclude.items():
                print(f"    exclude {case!r}: {reason}")
        print("\nleft out:")
        for names, reason in EXCLUDED.items():
            print(f"  {names}: {reason}")
        return 0
    fuzzer = Path(a.tlsfuzzer)
    if not (fuzzer / "scripts").is_dir():
        print(f"error: {fuzzer} is not a tlsfuzzer checkout (see --help)", file=sys.stderr)
        return 2
    if not Path(a.fuzzer_python).exists():
        print(f"error: {a.fuzzer_python} not found (see --help)", file=sys.stderr)
        return 2
    import tempfile
    pki_dir = tempfile.TemporaryDirectory(prefix="tlslab-tlsfuzzer-")
    make_client_pki(Path(pki_dir.name))
    logs = Path(a.logs) if a.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    results = []
    for i, e in enumerate(entries):
        if a.timeout:
            e.timeout = a.timeout
        print(f"[{i + 1}/{len(entries)}] {e.name} ...", file=sys.stderr, flush=True)
        r = run_entry(e, a.port + i % 100, fuzzer, a.fuzzer_python, a.tlslab_python, logs)
        results.append(r)
        print(f"    {r.ok}/{r.cases}" + (f" ({r.error})" if r.error else ""), file=sys.stderr,
              flush=True)
    print_table(results)
    if a.json:
        doc = {"results": [r.to_json() for r in results],
               "cases": sum(r.cases for r in results), "passed": sum(r.ok for r in results)}
        text = json.dumps(doc, indent=2) + "\n"
        if a.json == "-":
            sys.stdout.write(text)
        else:
            Path(a.json).write_text(text)
    return 0 if all(r.failed == 0 and r.xpass == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
