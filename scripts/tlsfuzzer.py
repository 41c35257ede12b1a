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
    /work/tlsfuzzer-venv/bin/pip install ecdsa \\
        git+https://github.com/tlsfuzzer/tlslite-ng

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

Expected failures (``XFAIL`` below) are only for what tlslab deliberately does not do
(TLS 1.0/1.1 and SHA-1 signatures are off by default; no external PSKs, no
renegotiation).  Excluded cases (``-e``) are those that need a server feature the
script cannot be told about (an echo server...).

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
    "rsa-client-cert": ["--cert", "{tests}/serverX509Cert.pem",
                        "--key", "{tests}/serverX509Key.pem",
                        "--client-ca", "{tests}/clientX509Cert.pem"],
}

# reasons, named once
NO_TLS10 = "TLS 1.0/1.1 are off by default (RFC 8996)"
NO_SHA1 = "SHA-1 signatures are off by default (RFC 9155)"
NO_RENEG = "renegotiation is refused (only secure-renegotiation signalling is supported)"
NO_RSA_KX = "static RSA key exchange is off by default; the script is run with -d"


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
    Entry("test-tls13-version-negotiation", ["-d"]),
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
    Entry("test-tls13-count-tickets", ["-t", "0"]),
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
        "-E", "47:CR key_share:SH supported_versions:SH", "-s",
        "ecdsa_secp256r1_sha256 ecdsa_secp384r1_sha384 ecdsa_secp521r1_sha512 ed25519 ed448 "
        "rsa_pss_rsae_sha256 rsa_pss_rsae_sha384 rsa_pss_rsae_sha512 rsa_pss_pss_sha256 "
        "rsa_pss_pss_sha384 rsa_pss_pss_sha512"], server="rsa-client-cert"),
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
    Entry("test-ecdhe-padded-shared-secret", xfail={
        name: ("handshake_failure", "the script sends no signature_algorithms, which in TLS 1.2 "
               "means SHA-1 signatures (RFC 5246 §7.4.1.4.1); " + NO_SHA1)
        for name in ["sanity"] + [f"Protocol (3, 3) with {g} group" for g in (
            "x25519", "x448", "secp256r1", "secp384r1", "secp521r1")]}),
    Entry("test-sig-algs", xfail={
        f"rsa_pss_pss_sha{n} only": ("handshake_failure", "the server's key is rsaEncryption: "
                                     "rsa_pss_pss_* needs an RSASSA-PSS key (RFC 8446 §4.2.3)")
        for n in ("256", "384", "512")}),
    Entry("test-signature-algorithms", ["--no-sha1"]),
    Entry("test-aes-gcm-nonces", ["-d"]),
    Entry("test-chacha20", ["--extra-exts"]),
    Entry("test-invalid-compression-methods", ["-d"]),
    Entry("test-truncating-of-client-hello", ["-d"]),
    Entry("test-encrypt-then-mac", ["-d"]),
    Entry("test-large-number-of-extensions", ["-d"]),
    Entry("test-zero-length-data", ["-d"]),
    Entry("test-version-numbers", ["-d"]),
    Entry("test-invalid-client-hello", xfail={
        "sanity": ("handshake_failure", "the script offers only TLS_RSA_WITH_AES_128_CBC_SHA "
                   "and has no -d; " + NO_RSA_KX.split(";")[0])}),
    Entry("test-downgrade-protection", ["-d", "--server-max-protocol=TLSv1.3"], xfail={
        f"TLS 1.3 downgrade check for Protocol (3, {n})": ("protocol_version", NO_TLS10)
        for n in ("1", "2")}),
]

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


def run_entry(entry: Entry, port: int, fuzzer: Path, fuzzer_python: str, tlslab_python: str,
              logs: Path | None) -> Result:
    tests = fuzzer / "tests"
    serve_args = [a.replace("{tests}", str(tests)) for a in SERVERS[entry.server]]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    log_file = open(logs / f"{entry.name.replace(' ', '_').replace('/', '_')}.serve.log", "w") \
        if logs else subprocess.DEVNULL
    server = subprocess.Popen([tlslab_python, "-m", "tlslab", "serve", "--host", "127.0.0.1",
                               "--port", str(port)] + serve_args,
                              stdout=log_file, stderr=subprocess.STDOUT, env=env)
    start = time.monotonic()
    try:
        if not wait_port(port, server):
            r = Result(entry.name, failed=1, error="tlslab serve did not start")
            return r
        cmd = [fuzzer_python, str(fuzzer / "scripts" / f"{entry.script}.py"),
               "-h", "127.0.0.1", "-p", str(port)] + entry.argv()
        try:
            out = subprocess.run(cmd, cwd=fuzzer, env=dict(os.environ, PYTHONPATH=str(fuzzer)),
                                 capture_output=True, text=True, timeout=entry.timeout)
            text = out.stdout + out.stderr
        except subprocess.TimeoutExpired as e:
            text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
                else (e.stdout or "")
            r = Result(entry.name, failed=1, error=f"timed out after {entry.timeout} s")
            if logs:
                (logs / f"{entry.name.replace(' ', '_')}.out").write_text(text)
            return r
        if logs:
            (logs / f"{entry.name.replace(' ', '_').replace('/', '_')}.out").write_text(text)
        return parse_output(entry.name, text)
    finally:
        stop(server)
        if logs:
            log_file.close()
        # the time is set by the caller's view of it too; kept here for the table
        _elapsed[entry.name] = time.monotonic() - start


_elapsed: dict[str, float] = {}


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
        return 0
    fuzzer = Path(a.tlsfuzzer)
    if not (fuzzer / "scripts").is_dir():
        print(f"error: {fuzzer} is not a tlsfuzzer checkout (see --help)", file=sys.stderr)
        return 2
    if not Path(a.fuzzer_python).exists():
        print(f"error: {a.fuzzer_python} not found (see --help)", file=sys.stderr)
        return 2
    logs = Path(a.logs) if a.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    results = []
    for i, e in enumerate(entries):
        if a.timeout:
            e.timeout = a.timeout
        print(f"[{i + 1}/{len(entries)}] {e.name} ...", file=sys.stderr, flush=True)
        r = run_entry(e, a.port + i % 100, fuzzer, a.fuzzer_python, a.tlslab_python, logs)
        r.seconds = _elapsed.get(e.name, 0.0)
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
