"""The lab: ``tlslab serve --scenario NAME`` against real clients on loopback.

Every scenario is played by the server ``tlslab serve --scenario`` runs
(:func:`tlslab.lab.scenarios.start_scenario_server`, in a thread here for speed; a few
through the real command line), and real clients (curl, openssl s_client, Python ``ssl``,
``tlslab connect``) connect to it.  Each must fail (or work) the way the scenario says,
print what the scenario's listing says it prints, and the server's line for that
connection (and its JSON log) must name the scenario's cause in the diagnosis
vocabulary.  ``tlslab diagnose`` against every scenario must name the same cause.

Only 127.0.0.1 is used; every client runs under a time limit.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

import tlslab
from conftest import require_tool, run_bounded
from tlslab.cli.main import app
from tlslab.io.blocking import HandshakeError
from tlslab.lab.scenarios import CATEGORIES, SCENARIOS, conflicts, get_scenario, start_scenario_server

VOCABULARY = {"ok", "untrusted-root", "missing-intermediate", "self-signed", "expired",
              "not-yet-valid", "hostname-mismatch", "no-san", "protocol-version-mismatch",
              "no-common-cipher", "no-common-group", "no-common-signature-algorithm",
              "client-certificate-required", "weak-key", "sha1-signature", "wrong-key-usage",
              "sni-required", "alpn-mismatch", "not-tls", "connection-refused", "timeout"}

EXPECTED = {
    "certificates": ["ok", "expired", "not-yet-valid", "wrong-host", "no-san", "self-signed",
                     "untrusted-root", "missing-intermediate", "sha1", "rsa1024", "wrong-eku"],
    "protocol": ["tls1.0-only", "tls1.1-only", "tls1.2-only", "tls1.3-only"],
    "algorithms": ["rsa-kx-only", "dhe-only", "3des-only", "no-common-group", "pkcs1-only-tls13",
                   "ecdsa-cert-rsa-suites"],
    "others": ["client-cert-required", "sni-required", "alpn-strict"],
    "vulnerabilities": ["heartbleed", "ccs-injection", "robot", "ticketbleed"],
}

PY = sys.executable

pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")


# --------------------------------------------------------------------------- the data

def test_every_scenario_of_the_issue_is_there_once():
    assert list(SCENARIOS) == [n for c in CATEGORIES for n in EXPECTED[c]]
    for s in SCENARIOS.values():
        assert s.category in CATEGORIES and s.name in EXPECTED[s.category]
        assert s.code in VOCABULARY, s.name
        assert s.summary and s.works and s.fails, s.name
        assert all(f.client and f.error for f in s.fails), s.name
        assert "cert" in s.fixes  # every scenario makes its own certificate


def test_legacy_versions_and_3des_only_where_asked_for():
    """TLS 1.0/1.1 and 3DES on the server are opt-in: only their scenarios name them."""
    for s in SCENARIOS.values():
        versions = s.server.get("versions") or []
        suites = s.server.get("cipher_suites") or []
        assert ("TLS 1.0" in versions) == (s.name == "tls1.0-only"), s.name
        assert ("TLS 1.1" in versions) == (s.name == "tls1.1-only"), s.name
        assert any("3DES" in x for x in suites) == (s.name == "3des-only"), s.name


def test_conflicts_and_close_names():
    assert conflicts(get_scenario("tls1.3-only"), ["tls"]) == [("--tls", "sets the TLS versions itself")]
    assert conflicts(get_scenario("expired"), ["tls", "group"]) == []
    assert conflicts(get_scenario("alpn-strict"), ["alpn", "cert"])
    with pytest.raises(ValueError) as e:
        get_scenario("expird")
    assert "expired" in str(e.value)


# --------------------------------------------------------------------------- the CLI: bad input

def _one_line_error(result) -> str:
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in result.output
    return err


@pytest.mark.parametrize("args, needles", [
    (["--scenario", "expird"], ["unknown scenario", "expired"]),
    (["--scenario", "tls13-only"], ["unknown scenario", "tls1.3-only"]),
    (["--scenario", "nonsense-xyz"], ["unknown scenario", "--list-scenarios"]),
    (["--scenario", "tls1.3-only", "--tls", "1.2"], ["tls1.3-only", "drop --tls"]),
    (["--scenario", "expired", "--cert", "c.pem", "--key", "k.pem"],
     ["own certificate", "drop --cert/--key"]),
    (["--scenario", "no-common-group", "--group", "x25519"], ["drop --group"]),
    (["--scenario", "alpn-strict", "--alpn", "h2"], ["drop --alpn"]),
    (["--scenario", "pkcs1-only-tls13", "--sigalg", "rsa_pss_rsae_sha256"], ["drop --sigalg"]),
    (["--scenario", "rsa-kx-only", "--cipher", "TLS_AES_128_GCM_SHA256"], ["drop --cipher"]),
    (["--scenario", "client-cert-required", "--require-client-cert", "--client-ca", "ca.pem"],
     ["drop --client-ca"]),
    (["--json"], ["--list-scenarios", "--json-log"]),
    (["--scenario", "expired", "--ca-out", "/nonexistent-dir/ca.pem"], ["--ca-out", "no such directory"]),
    (["--scenario", "expired", "--json-log", "/nonexistent-dir/log.jsonl"], ["--json-log"]),
    (["--ca-out", "x.pem", "--cert", "c.pem", "--key", "k.pem"], ["--ca-out", "--cert"]),
])
def test_serve_scenario_bad_input_is_one_line_exit_2(args, needles):
    result = CliRunner().invoke(app, ["serve", "--port", "0", *args])
    assert result.exit_code == 2, result.output
    line = _one_line_error(result)
    for needle in needles:
        assert needle in line, line


def test_list_scenarios_json():
    for args in (["--list-scenarios", "--json"], ["--scenario", "list", "--json"]):
        result = CliRunner().invoke(app, ["serve", *args])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        names = [s["name"] for s in doc["scenarios"]]
        assert names == list(SCENARIOS)
        for s in doc["scenarios"]:
            assert s["code"] in VOCABULARY and s["category"] in CATEGORIES
            assert s["summary"] and s["fails"] and all(f["client"] and f["error"] for f in s["fails"])
            assert s["server"]["certificate"]
        by_name = {s["name"]: s for s in doc["scenarios"]}
        assert by_name["tls1.3-only"]["server"]["versions"] == ["TLS 1.3"]
        assert by_name["missing-intermediate"]["note"] and "AIA" in by_name["missing-intermediate"]["note"]
        assert by_name["sni-required"]["diagnose"].endswith("--profile no-sni")


def test_list_scenarios_human():
    result = CliRunner().invoke(app, ["serve", "--scenario", "list"])
    assert result.exit_code == 0, result.output
    for name, s in SCENARIOS.items():
        assert name in result.stdout and s.code in result.stdout
    assert "fails" in result.stdout and "works" in result.stdout
    assert "Traceback" not in result.output


def test_serve_help_has_examples_and_exit_codes():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for needle in ("Example", "--scenario", "--list-scenarios", "--ca-out", "--json-log",
                   "Exit codes"):
        assert needle in result.stdout


# --------------------------------------------------------------------------- serving in-process

class _Lab:
    """A scenario server in a thread (what ``serve --scenario`` runs), with its log lines."""

    def __init__(self, name: str) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.srv = start_scenario_server(name, "127.0.0.1", 0, log=self._log,
                                         handshake_timeout=5, io_timeout=5)
        self.port = self.srv.port
        self.ca = self.srv.lab.ca_file
        self.dir = self.srv.lab.directory
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _log(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    @property
    def reports(self) -> list:
        return list(self.srv.explainer.reports)

    def wait_report(self, before: int, timeout: float = 8.0):
        """The first connection report logged after ``before`` reports existed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reports = self.reports
            if len(reports) > before:
                return reports[before]
            time.sleep(0.05)
        pytest.fail(f"the server logged no line for the connection; lines: {self.lines}")

    def wait_line(self, peer: str, timeout: float = 8.0) -> str:
        """The log line of ``peer``: the report is recorded a moment before its line is
        written, so the line is waited for (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in reversed(self.lines) if line.startswith(peer + " ")]
            if found:
                return found[0]
            time.sleep(0.02)
        pytest.fail(f"no log line for {peer}; lines: {self.lines}")

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)
        self.srv.close_lab()


@pytest.fixture(scope="module")
def lab():
    """Factory: the running server of scenario NAME (one per scenario for this module)."""
    labs: dict[str, _Lab] = {}

    def get(name: str) -> _Lab:
        if name not in labs:
            labs[name] = _Lab(name)
        return labs[name]

    yield get
    for running in labs.values():
        running.close()


# --------------------------------------------------------------------------- the clients

PY_CLIENT = r"""
import socket, ssl, sys
port, ca, sni, option = int(sys.argv[1]), sys.argv[2], sys.argv[3] or None, sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
if option == "min13":
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
elif option == "max12":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
elif option == "alpn-h2":
    ctx.set_alpn_protocols(["h2"])
elif option == "p256":
    ctx.set_ecdh_curve("prime256v1")
if sni is None:
    ctx.check_hostname = False
try:
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                         server_hostname=sni) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = s.recv(100)
        print("OK", s.version(), data[:15])
except Exception as e:
    print(f"ssl.{type(e).__name__}: {e}")
    sys.exit(1)
"""


def _curl(t: _Lab, *args: str, url: str | None = None, trust: bool = True) -> list[str]:
    return ["curl", "-sS", "-o", "/dev/null", "--max-time", "8",
            *(["--cacert", t.ca] if trust else []), *args, url or f"https://localhost:{t.port}/"]


def _openssl(t: _Lab, *args: str, verify: bool = True) -> list[str]:
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{t.port}", "-CAfile", t.ca]
    if verify:
        base += ["-servername", "localhost", "-verify_return_error", "-verify_hostname", "localhost"]
    return base + list(args)


def _python(t: _Lab, option: str = "-", sni: str = "localhost") -> list[str]:
    return [PY, "-c", PY_CLIENT, str(t.port), t.ca, sni, option]


def _tlslab(t: _Lab, *args: str, host: str = "localhost") -> list[str]:
    return [PY, "-m", "tlslab", "connect", f"{host}:{t.port}", "--ca-file", t.ca,
            "--timeout", "5", *args]


CLIENTS = {
    "curl": lambda t, *a, **k: _curl(t, *a, **k),
    "openssl": lambda t, *a, **k: _openssl(t, *a, **k),
    "python": lambda t, *a, **k: _python(t, *a, **k),
    "tlslab": lambda t, *a, **k: _tlslab(t, *a, **k),
}
TOOLS = {"curl": "curl", "openssl": "openssl", "python": None, "tlslab": None}

_CERT_STRINGS = {
    # scenario: (curl, openssl, python, tlslab) -- what each verifying client prints
    "expired": ("SSL certificate problem: certificate has expired", "certificate has expired",
                "certificate has expired", "certificate verify failed: expired"),
    "not-yet-valid": ("SSL certificate problem: certificate is not yet valid",
                      "certificate is not yet valid", "certificate is not yet valid",
                      "certificate verify failed: not yet valid"),
    "wrong-host": ("no alternative certificate subject name matches target host name 'localhost'",
                   "hostname mismatch", "Hostname mismatch, certificate is not valid for 'localhost'",
                   "certificate verify failed: hostname mismatch"),
    "self-signed": ("SSL certificate problem: self-signed certificate", "self-signed certificate",
                    "self-signed certificate", "certificate verify failed: self signed"),
    "untrusted-root": ("unable to get local issuer certificate", "unable to get local issuer certificate",
                       "unable to get local issuer certificate", "certificate verify failed: untrusted root"),
    "missing-intermediate": ("unable to get local issuer certificate",
                             "unable to get local issuer certificate",
                             "unable to get local issuer certificate",
                             "certificate verify failed: missing intermediate"),
    "sha1": ("CA signature digest algorithm too weak", "CA signature digest algorithm too weak",
             "CA signature digest algorithm too weak", "certificate verify failed: sha1 signature"),
    "rsa1024": ("EE certificate key too weak", "EE certificate key too weak",
                "EE certificate key too weak", "certificate verify failed: weak key"),
    "wrong-eku": ("unsuitable certificate purpose", "unsuitable certificate purpose",
                  "unsuitable certificate purpose", "certificate verify failed: wrong key usage"),
}

#: (scenario, client, client args, client kwargs, works?, what the client prints, the code
#: the server's line names)
CASES: list[tuple] = []
_CERT_CODES = {"expired": "expired", "not-yet-valid": "not-yet-valid",
               "wrong-host": "hostname-mismatch", "self-signed": "self-signed",
               "untrusted-root": "untrusted-root", "missing-intermediate": "missing-intermediate",
               "sha1": "sha1-signature", "rsa1024": "weak-key", "wrong-eku": "wrong-key-usage"}
for _name, _strings in _CERT_STRINGS.items():
    for _client, _text in zip(("curl", "openssl", "python", "tlslab"), _strings):
        CASES.append((_name, _client, (), {}, False, _text, _CERT_CODES[_name]))
CASES += [
    ("ok", "curl", (), {}, True, "", "ok"),
    ("ok", "openssl", (), {}, True, "Verify return code: 0 (ok)", "ok"),
    ("ok", "python", (), {}, True, "OK TLSv1.3", "ok"),
    ("ok", "tlslab", ("--http",), {}, True, "lab scenario:", "ok"),
    # a client not given the lab CA: unknown_ca, and the server says which file to trust
    ("ok", "curl", (), {"trust": False}, False, "unable to get local issuer certificate",
     "untrusted-root"),
    # no SAN: OpenSSL falls back to the CN, tlslab does not; the server says so either way
    ("no-san", "tlslab", (), {}, False, "certificate verify failed: no san", "no-san"),
    ("no-san", "python", (), {}, True, "OK TLSv1.3", "no-san"),
    ("no-san", "curl", (), {}, True, "", "no-san"),
    # protocol
    ("tls1.0-only", "curl", (), {}, False, "legacy sigalg disallowed or unsupported",
     "protocol-version-mismatch"),
    ("tls1.0-only", "python", (), {}, False, "TLSV1_ALERT_PROTOCOL_VERSION", "protocol-version-mismatch"),
    ("tls1.0-only", "tlslab", (), {}, False, "peer sent fatal alert protocol_version",
     "protocol-version-mismatch"),
    ("tls1.0-only", "openssl", ("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"), {"verify": False},
     True, "Protocol  : TLSv1\n", "ok"),
    ("tls1.0-only", "tlslab", ("--tls", "1.0"), {}, True, "TLS 1.0", "ok"),
    ("tls1.1-only", "curl", (), {}, False, "legacy sigalg disallowed or unsupported",
     "protocol-version-mismatch"),
    ("tls1.1-only", "python", (), {}, False, "TLSV1_ALERT_PROTOCOL_VERSION", "protocol-version-mismatch"),
    ("tls1.1-only", "openssl", ("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"), {"verify": False},
     True, "Protocol  : TLSv1.1", "ok"),
    ("tls1.2-only", "curl", ("--tlsv1.3",), {}, False, "tlsv1 alert protocol version",
     "protocol-version-mismatch"),
    ("tls1.2-only", "openssl", ("-tls1_3",), {}, False, "tlsv1 alert protocol version",
     "protocol-version-mismatch"),
    ("tls1.2-only", "python", ("min13",), {}, False, "TLSV1_ALERT_PROTOCOL_VERSION",
     "protocol-version-mismatch"),
    ("tls1.2-only", "tlslab", ("--tls", "1.3"), {}, False, "protocol_version", "protocol-version-mismatch"),
    ("tls1.2-only", "curl", (), {}, True, "", "ok"),
    ("tls1.3-only", "curl", ("--tls-max", "1.2"), {}, False, "tlsv1 alert protocol version",
     "protocol-version-mismatch"),
    ("tls1.3-only", "openssl", ("-tls1_2",), {}, False, "tlsv1 alert protocol version",
     "protocol-version-mismatch"),
    ("tls1.3-only", "python", ("max12",), {}, False, "TLSV1_ALERT_PROTOCOL_VERSION",
     "protocol-version-mismatch"),
    ("tls1.3-only", "tlslab", ("--tls", "1.2"), {}, False, "protocol_version", "protocol-version-mismatch"),
    ("tls1.3-only", "python", (), {}, True, "OK TLSv1.3", "ok"),
    # algorithms
    ("rsa-kx-only", "python", (), {}, False, "SSLV3_ALERT_HANDSHAKE_FAILURE", "no-common-cipher"),
    ("rsa-kx-only", "openssl", ("-cipher", "ECDHE"), {}, False, "sslv3 alert handshake failure",
     "no-common-cipher"),
    ("rsa-kx-only", "curl", (), {}, True, "", "ok"),
    ("rsa-kx-only", "tlslab", (), {}, True, "TLS_RSA_WITH_AES_128_CBC_SHA", "ok"),
    ("dhe-only", "curl", ("--ciphers", "ECDHE:!DHE"), {}, False, "sslv3 alert handshake failure",
     "no-common-cipher"),
    ("dhe-only", "openssl", ("-cipher", "ECDHE"), {}, False, "sslv3 alert handshake failure",
     "no-common-cipher"),
    ("dhe-only", "tlslab", ("--cipher", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), {}, False,
     "handshake_failure", "no-common-cipher"),
    ("dhe-only", "python", (), {}, True, "OK TLSv1.2", "ok"),
    ("3des-only", "curl", (), {}, False, "sslv3 alert handshake failure", "no-common-cipher"),
    ("3des-only", "openssl", (), {}, False, "sslv3 alert handshake failure", "no-common-cipher"),
    ("3des-only", "python", (), {}, False, "SSLV3_ALERT_HANDSHAKE_FAILURE", "no-common-cipher"),
    ("3des-only", "tlslab", (), {}, False, "handshake_failure", "no-common-cipher"),
    ("no-common-group", "tlslab", (), {}, False, "handshake_failure", "no-common-group"),
    ("no-common-group", "curl", ("--curves", "X25519:P-256:P-384"), {}, False,
     "sslv3 alert handshake failure", "no-common-group"),
    ("no-common-group", "openssl", ("-groups", "X25519:P-256:P-384"), {}, False,
     "sslv3 alert handshake failure", "no-common-group"),
    ("no-common-group", "python", ("p256",), {}, False, "SSLV3_ALERT_HANDSHAKE_FAILURE",
     "no-common-group"),
    ("no-common-group", "python", (), {}, True, "OK TLSv1.3", "ok"),
    ("pkcs1-only-tls13", "curl", (), {}, False, "wrong signature type", "no-common-signature-algorithm"),
    ("pkcs1-only-tls13", "openssl", (), {}, False, "wrong signature type",
     "no-common-signature-algorithm"),
    ("pkcs1-only-tls13", "python", (), {}, False, "WRONG_SIGNATURE_TYPE", "no-common-signature-algorithm"),
    ("pkcs1-only-tls13", "tlslab", (), {}, False, "rsa_pkcs1_sha256", "no-common-signature-algorithm"),
    ("ecdsa-cert-rsa-suites", "curl", (), {}, False, "sslv3 alert handshake failure", "no-common-cipher"),
    ("ecdsa-cert-rsa-suites", "python", (), {}, False, "SSLV3_ALERT_HANDSHAKE_FAILURE",
     "no-common-cipher"),
    ("ecdsa-cert-rsa-suites", "tlslab", (), {}, False, "handshake_failure", "no-common-cipher"),
    # others
    ("client-cert-required", "curl", (), {}, False, "tlsv13 alert certificate required",
     "client-certificate-required"),
    ("client-cert-required", "python", (), {}, False, "TLSV13_ALERT_CERTIFICATE_REQUIRED",
     "client-certificate-required"),
    ("client-cert-required", "tlslab", (), {}, False, "certificate_required",
     "client-certificate-required"),
    ("client-cert-required", "curl", ("--cert", "{dir}/client.pem", "--key", "{dir}/client.key"),
     {}, True, "", "ok"),
    ("sni-required", "curl", (), {"url": "https://127.0.0.1:{port}/"}, False,
     "tlsv1 unrecognized name", "sni-required"),
    ("sni-required", "openssl", ("-noservername",), {"verify": False}, False,
     "tlsv1 unrecognized name", "sni-required"),
    ("sni-required", "python", (), {"sni": ""}, False, "TLSV1_UNRECOGNIZED_NAME", "sni-required"),
    ("sni-required", "tlslab", (), {"host": "127.0.0.1"}, False, "unrecognized_name", "sni-required"),
    ("sni-required", "curl", (), {}, True, "", "ok"),
    ("alpn-strict", "openssl", ("-alpn", "h2"), {}, False, "no application protocol", "alpn-mismatch"),
    ("alpn-strict", "python", ("alpn-h2",), {}, False, "no application protocol", "alpn-mismatch"),
    ("alpn-strict", "tlslab", ("--alpn", "h2"), {}, False, "no_application_protocol", "alpn-mismatch"),
    ("alpn-strict", "curl", (), {}, True, "", "ok"),
]


_LABELS = {"curl": "curl", "openssl": "openssl s_client", "python": "Python ssl",
           "tlslab": "tlslab connect"}


def test_the_listing_says_what_the_clients_print():
    """What ``--list-scenarios`` says a default client prints is what the test below sees
    it print (the same words), for every default client that fails."""
    checked = 0
    for name, client, args, kwargs, works, printed, _ in CASES:
        if works or args or kwargs or not printed:
            continue
        listed = {f.client: f.error for f in SCENARIOS[name].fails}
        assert _LABELS[client] in listed, (name, client, sorted(listed))
        assert printed in listed[_LABELS[client]], (name, client, listed[_LABELS[client]])
        checked += 1
    assert checked >= 50


def _case_id(case) -> str:
    name, client, args, kwargs, works = case[:5]
    extra = " ".join(args) or " ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}-{client}{'-' + extra if extra else ''}-{'works' if works else 'fails'}"


def _fill(value, t: _Lab):
    return value.format(port=t.port, dir=t.dir) if isinstance(value, str) else value


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_scenario_against_real_client(lab, case):
    name, client, args, kwargs, works, printed, code = case
    if TOOLS[client]:
        require_tool(TOOLS[client])
    t = lab(name)
    before = len(t.reports)
    cmd = CLIENTS[client](t, *[_fill(a, t) for a in args],
                          **{k: _fill(v, t) for k, v in kwargs.items()})
    rc, out, err = run_bounded(cmd, input="" if client == "openssl" else None, timeout=20)
    said = out + err
    if client == "openssl":
        # s_client exits 0 after some failures (TLS 1.3: the alert comes after the handshake)
        failed = rc != 0 or "alert" in said or "error:" in said
    else:
        failed = rc != 0
    assert failed != works, f"{cmd}: rc={rc}\n{said[-1500:]}"
    if printed:
        assert printed in said, f"{client} no longer prints {printed!r}:\n{said[-1500:]}"
    report = t.wait_report(before)
    line = t.wait_line(report.peer)
    assert report.code == code, (report.code, report.explanation, line)
    if code != "ok":
        assert f"→ {code}" in line, line
        assert report.explanation
    else:
        assert "handshake ok" in line and "→" not in line, line
    assert report.offer is not None and report.offer.max_version, line
    assert "client: TLS" in line  # what the client offered, in the same line


# --------------------------------------------------------------------------- explanations

@pytest.mark.timeout(60)
def test_server_explains_version_mismatch_in_the_words_of_the_issue(lab):
    t = lab("tls1.3-only")
    before = len(t.reports)
    with pytest.raises(HandshakeError):
        tlslab.connect("127.0.0.1", t.port, server_name="localhost", ca_file=t.ca,
                       versions=["TLS 1.2", "TLS 1.1"], timeout=5)
    report = t.wait_report(before)
    assert report.why() == ("client offered TLS 1.2 at most; this server speaks only TLS 1.3 "
                            "→ protocol-version-mismatch")
    assert report.outcome == "server-refused" and report.alert_sent == "protocol_version"
    t = lab("tls1.2-only")
    before = len(t.reports)
    with pytest.raises(HandshakeError):
        tlslab.connect("127.0.0.1", t.port, server_name="localhost", ca_file=t.ca,
                       versions=["TLS 1.3"], timeout=5)
    report = t.wait_report(before)
    assert report.why() == ("client offered only TLS 1.3; this server speaks only TLS 1.2 "
                            "→ protocol-version-mismatch")


@pytest.mark.timeout(60)
def test_client_abort_is_explained_with_the_scenario(lab):
    """unknown_ca after our Certificate: the client does not trust this chain, because..."""
    t = lab("untrusted-root")
    before = len(t.reports)
    with pytest.raises(HandshakeError):
        tlslab.connect("127.0.0.1", t.port, server_name="localhost", ca_file=t.ca, timeout=5)
    report = t.wait_report(before)
    assert report.outcome == "client-aborted" and report.alert_received == "unknown_ca"
    assert "after our Certificate" in report.explanation
    assert "with this scenario, because the chain leads to a root CA the client does not trust" \
        in report.explanation


@pytest.mark.timeout(60)
def test_not_tls_and_silent_clients(lab):
    import socket
    t = lab("ok")
    before = len(t.reports)
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(100)
    report = t.wait_report(before)
    assert report.code == "not-tls" and report.offer is None
    assert "http://" in report.explanation
    before = len(t.reports)
    socket.create_connection(("127.0.0.1", t.port), timeout=5).close()
    report = t.wait_report(before)
    assert report.code is None and "without sending a ClientHello" in report.explanation


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_missing_intermediate_is_served_over_aia(lab):
    """The leaf's AIA URL is real: the intermediate comes back over plain HTTP on
    127.0.0.1, it issued the leaf, and the fetch is logged."""
    t = lab("missing-intermediate")
    url = t.srv.lab.aia_url
    leaf = t.srv.lab.leaf
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [url]
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["Content-Type"] == "application/pkix-cert"
        der = answer.read()
    intermediate = x509.load_der_x509_certificate(der)
    leaf.verify_directly_issued_by(intermediate)
    deadline = time.monotonic() + 5
    while not any("AIA: fetched the intermediate" in l for l in t.lines):
        assert time.monotonic() < deadline, t.lines
        time.sleep(0.05)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url.rsplit("/", 1)[0] + "/other", timeout=5)


# --------------------------------------------------------------------------- diagnose agrees

#: where ``tlslab diagnose`` (not the lab) names another cause today; strict, so that the
#: marker goes once diagnose agrees
DIAGNOSE_XFAIL: dict[str, str] = {}  # scenario -> reason, while diagnose disagrees with one


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", [n for n, s in SCENARIOS.items() if s.profile is not None])
def test_diagnose_names_each_scenarios_cause(lab, name, request):
    scenario = SCENARIOS[name]
    if name in DIAGNOSE_XFAIL:
        request.applymarker(pytest.mark.xfail(reason=DIAGNOSE_XFAIL[name], strict=True))
    t = lab(name)
    args = ["diagnose", f"localhost:{t.port}", "--ca-file", t.ca, "--json", "--timeout", "20"]
    if scenario.profile != "default":
        args += ["--profile", scenario.profile]
    result = CliRunner().invoke(app, args)
    doc = json.loads(result.stdout)
    codes = [c["code"] for c in doc.get("causes", [])] or (["ok"] if doc.get("ok") else [])
    assert scenario.code in codes, (codes, result.stdout[-2000:])
    assert result.exit_code == (0 if scenario.code == "ok" else 1)


# --------------------------------------------------------------------------- through the CLI

class _CliServer:
    """``python -m tlslab serve --scenario NAME --port 0 ...`` in a process of its own."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "tlslab", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
        self.head: list[str] = []
        self.port = self.ca = self.aia = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.head.append(line)
            if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                self.port = int(m.group(1))
            if m := re.search(r"its CA certificate: (\S+\.pem)", line):
                self.ca = m.group(1)
            if m := re.search(r"AIA fetching at (http://\S+)", line):
                self.aia = m.group(1)
            if line.startswith("Ctrl-C to stop"):
                break
        assert self.port and self.ca and os.path.isfile(self.ca), "".join(self.head)
        self.rest = ""

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.rest, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.rest, _ = self.proc.communicate()
        output = "".join(self.head) + self.rest
        assert self.proc.returncode == 0, output
        assert "Traceback" not in output
        return output


def _json_lines(path: Path, count: int, timeout: float = 8.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    pytest.fail(f"{path}: fewer than {count} JSON lines")


@pytest.mark.interop
@pytest.mark.timeout(90)
def test_cli_expired_with_ca_out_and_json_log(tmp_path):
    curl = require_tool("curl")
    ca_out, log = tmp_path / "ca.pem", tmp_path / "clients.jsonl"
    server = _CliServer("--scenario", "expired", "--ca-out", str(ca_out), "--json-log", str(log))
    try:
        head = "".join(server.head)
        assert "scenario expired (certificates): the leaf certificate expired 10 days ago" in head
        assert "diagnosis: expired" in head and "curl --cacert" in head
        assert ca_out.read_bytes() == Path(server.ca).read_bytes()
        x509.load_pem_x509_certificate(ca_out.read_bytes())
        rc, out, err = run_bounded([curl, "-sS", "-o", "/dev/null", "--cacert", str(ca_out),
                                    f"https://localhost:{server.port}/"], timeout=20)
        assert rc == 60 and "certificate has expired" in err, err
        result = CliRunner().invoke(app, ["connect", f"localhost:{server.port}", "--ca-file",
                                          str(ca_out), "--timeout", "5"])
        assert result.exit_code == 1 and "expired" in result.stderr
        rc, out, err = run_bounded([curl, "-sSk", f"https://localhost:{server.port}/"], timeout=20)
        assert rc == 0 and "lab scenario:        expired" in out, out
        docs = _json_lines(log, 3)
    finally:
        output = server.stop()
    assert not os.path.exists(server.ca)  # the lab's files go when the server stops
    assert ca_out.exists()                 # the copy the user asked for stays
    # the server writes each line when it is done with that client: the tlslab client's
    # line may come after the next connection's, so find each by what it is
    insecure_doc = next(d for d in docs[:3] if d["outcome"] == "ok")
    refused = [d for d in docs[:3] if d is not insecure_doc]
    curl_doc = next(d for d in refused if d["offered"]["alpn"] == ["h2", "http/1.1"])
    tlslab_doc = next(d for d in refused if d is not curl_doc)
    for doc in docs[:3]:
        assert set(doc) >= {"time", "peer", "offered", "outcome", "alert_sent", "alert_received",
                            "code", "explanation"}
        assert doc["scenario"] == "expired" and doc["code"] == "expired"
        assert doc["offered"]["sni"] == "localhost" and doc["offered"]["max_version"] == "TLS 1.3"
    assert curl_doc["outcome"] == "client-aborted"
    assert curl_doc["alert_received"] == "certificate_expired"
    assert curl_doc["offered"]["alpn"] == ["h2", "http/1.1"]
    assert "because the leaf certificate expired 10 days ago" in curl_doc["explanation"]
    assert tlslab_doc["alert_received"] == "certificate_expired"
    assert insecure_doc["outcome"] == "ok" and "does not verify" in insecure_doc["explanation"]
    assert output.count("→ expired") >= 3


@pytest.mark.interop
@pytest.mark.timeout(90)
def test_cli_tls13_only_explains_a_tls12_client(tmp_path):
    curl = require_tool("curl")
    log = tmp_path / "log.jsonl"
    server = _CliServer("--scenario", "tls1.3-only", "--json-log", str(log))
    try:
        rc, out, err = run_bounded([curl, "-sS", "-o", "/dev/null", "--tls-max", "1.2",
                                    "--cacert", server.ca, f"https://localhost:{server.port}/"],
                                   timeout=20)
        assert rc == 35 and "alert protocol version" in err, err
        doc = _json_lines(log, 1)[0]
    finally:
        output = server.stop()
    assert doc["outcome"] == "server-refused" and doc["alert_sent"] == "protocol_version"
    assert doc["code"] == "protocol-version-mismatch"
    # OpenSSL capped at TLS 1.2 sends no supported_versions: 1.2 is its highest
    assert doc["explanation"] == "client offered TLS 1.2 at most; this server speaks only TLS 1.3"
    assert ("client offered TLS 1.2 at most; this server speaks only TLS 1.3 → "
            "protocol-version-mismatch") in output


@pytest.mark.interop
@pytest.mark.timeout(90)
def test_cli_missing_intermediate_serves_its_aia_url():
    openssl = require_tool("openssl")
    server = _CliServer("--scenario", "missing-intermediate")
    try:
        assert server.aia and server.aia.startswith("http://127.0.0.1:"), server.head
        with urllib.request.urlopen(server.aia, timeout=5) as answer:
            x509.load_der_x509_certificate(answer.read())
        rc, out, err = run_bounded([openssl, "s_client", "-connect", f"127.0.0.1:{server.port}",
                                    "-servername", "localhost", "-CAfile", server.ca,
                                    "-verify_return_error"], input="", timeout=20)
        assert rc != 0 and "unable to get local issuer certificate" in out + err
        time.sleep(0.5)
    finally:
        output = server.stop()
    assert "AIA: fetched the intermediate CA" in output
    assert "→ missing-intermediate" in output


@pytest.mark.interop
@pytest.mark.timeout(90)
def test_cli_sni_required_and_the_page_names_the_scenario():
    curl = require_tool("curl")
    server = _CliServer("--scenario", "sni-required")
    try:
        rc, out, err = run_bounded([curl, "-sS", "--cacert", server.ca,
                                    f"https://127.0.0.1:{server.port}/"], timeout=20)
        assert rc == 35 and "unrecognized name" in err, err
        rc, out, err = run_bounded([curl, "-sS", "--cacert", server.ca,
                                    f"https://localhost:{server.port}/"], timeout=20)
        assert rc == 0 and "lab scenario:        sni-required" in out, out + err
        time.sleep(0.3)
    finally:
        output = server.stop()
    assert "client sent no SNI" in output and "→ sni-required" in output


@pytest.mark.timeout(90)
def test_cli_plain_serve_explains_too_and_tls10_is_opt_in(tmp_path):
    """Without --scenario: the same line format; TLS 1.0 only when asked for."""
    ca_out = tmp_path / "ca.pem"
    server = _CliServer("--tls", "1.3", "--ca-out", str(ca_out))
    try:
        assert "(TLS 1.3," in server.head[0]
        assert ca_out.read_bytes() == Path(server.ca).read_bytes()
        result = CliRunner().invoke(app, ["connect", f"localhost:{server.port}", "--ca-file",
                                          str(ca_out), "--tls", "1.2", "--timeout", "5"])
        assert result.exit_code == 1
        time.sleep(0.3)
    finally:
        output = server.stop()
    assert "client offered TLS 1.2 at most; this server speaks only TLS 1.3 → protocol-version-mismatch" \
        in output
    default = _CliServer()
    try:
        assert "TLS 1.3, TLS 1.2," in default.head[0] and "TLS 1.0" not in default.head[0]
    finally:
        default.stop()
    legacy = _CliServer("--tls", "1.0", "--cipher", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")
    try:
        assert "(TLS 1.0," in legacy.head[0]
        assert any("enabled on purpose" in l for l in legacy.head)
    finally:
        legacy.stop()


@pytest.mark.timeout(60)
def test_asyncio_server_takes_the_same_log_line_hook():
    """tlslab.aio.start_server explains clients with the same hook as the blocking server."""
    import asyncio

    from tlslab.lab.clientview import ServerExplainer
    from tlslab.lab.scenarios import build_lab

    lab_ = build_lab("tls1.3-only")
    lines: list[str] = []
    explainer = ServerExplainer(lab_.config, lab_.profile)

    async def handler(stream):
        await stream.read(10)

    async def run():
        server = await tlslab.aio.start_server(lab_.config, handler, "127.0.0.1", 0,
                                               log=lines.append, log_line=explainer)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(HandshakeError):
                await tlslab.aio.connect("127.0.0.1", port, server_name="localhost",
                                         ca_file=lab_.ca_file, versions=["TLS 1.2"], timeout=5)
            stream = await tlslab.aio.connect("127.0.0.1", port, server_name="localhost",
                                              ca_file=lab_.ca_file, timeout=5)
            await stream.close()
            for _ in range(100):
                if len(lines) >= 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            server.close()
            await server.wait_closed()

    try:
        asyncio.run(run())
    finally:
        lab_.close()
    assert len(lines) == 2, lines
    refused = next(l for l in lines if "handshake failed" in l)
    assert "client offered TLS 1.2 at most; this server speaks only TLS 1.3 → " \
           "protocol-version-mismatch" in refused
    assert any("handshake ok" in l and "client: TLS 1.3 max" in l for l in lines), lines


def test_log_line_names_the_client_fingerprint_and_closest_profile(peers_dir):
    """Issue 12: the server logs each client's JA4 and the closest known profile."""
    from tlslab.lab.clientview import ClientReport, fingerprint_of
    from tlslab.proto.messages import ClientHello
    from tlslab.profiles import load_profile
    from tlslab.profiles.fingerprint import ja4

    hello = ClientHello.parse(load_profile("java-17").offer.client_hello)

    class Entry:
        kind, name, direction, message = "message", "ClientHello", "received", hello

    class Trace:
        entries = [Entry()]

    fp, looks = fingerprint_of(Trace())
    assert fp == ja4(hello).fingerprint
    assert looks and looks.startswith("java-") and "same JA4" in looks
    report = ClientReport(peer="p", offer=None, outcome="ok", code="ok", explanation="",
                          ja4=fp, looks_like=looks)
    assert f"ja4 {fp}, looks like java-" in report.line()
    assert report.to_json()["ja4"] == fp
