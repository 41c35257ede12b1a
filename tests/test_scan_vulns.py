"""The scan's active vulnerability checks (tlslab.scan.vulns_active): each fires on the lab
scenario of its vulnerability, with evidence that says what was sent and what came back,
and stays quiet on healthy servers: every other scenario, the default tlslab server,
``openssl s_server`` and ``gnutls-serv``.  Every check runs under a deadline."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tlslab.lab.scenarios import SCENARIOS, start_scenario_server
from tlslab.proto.lab_faults import FAKE_MEMORY
from tlslab.scan.target import ScanTarget
from tlslab.scan.vulns_active import ACTIVE_CHECKS, run_all

pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")

#: scenario -> the check that must fire on it, and words its evidence must hold
VULNERABLE = {
    "heartbleed": ("HEARTBLEED", ["payload_length=16384", "got a 16403-byte HeartbeatResponse",
                                  "reads past its buffer"]),
    "ccs-injection": ("CCS_INJECTION", ["no alert came back", "answered with bad_record_mac"]),
    "robot": ("ROBOT", ["correct padding and premaster -> alert bad_record_mac",
                        "wrong first bytes (0x41 0x17 instead of 0x00 0x02) -> alert handshake_failure",
                        "Bleichenbacher oracle (strong)"]),
    "ticketbleed": ("TICKETBLEED", ["1-byte session ID (5a)", "echoed a 32-byte session ID",
                                    "31 bytes the client never sent"]),
}
#: how long one check may take (the deadline it is given, and the test's own bound)
BUDGET = 30.0


def run_check(name: str, port: int, *, sni: str | None = "localhost"):
    target = ScanTarget("127.0.0.1", port, server_name=sni, timeout=5)
    started = time.monotonic()
    result = asyncio.run(asyncio.wait_for(ACTIVE_CHECKS[name](target, started + BUDGET), BUDGET + 5))
    assert time.monotonic() - started < BUDGET + 1
    assert result.name == name and result.evidence
    assert result.details["connections"] >= 1
    return result


class _Lab:
    """A scenario server in a thread (what ``tlslab serve --scenario`` runs)."""

    def __init__(self, name: str, **options) -> None:
        self.srv = start_scenario_server(name, "127.0.0.1", 0, handshake_timeout=5,
                                         io_timeout=5, **options)
        self.port = self.srv.port
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)
        self.srv.close_lab()


@pytest.fixture(scope="module")
def lab():
    """Factory: the running server of a scenario (with extra ServerConfig options)."""
    labs: dict = {}

    def get(name: str, **options) -> _Lab:
        key = (name, repr(sorted(options.items())))
        if key not in labs:
            labs[key] = _Lab(name, **options)
        return labs[key]

    yield get
    for running in labs.values():
        running.close()


# -------------------------------------------------------------------------- the lab

@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", list(VULNERABLE))
def test_check_fires_on_its_lab_scenario(lab, scenario):
    name, words = VULNERABLE[scenario]
    result = run_check(name, lab(scenario).port)
    assert result.vulnerable is True, result.evidence
    for w in words:
        assert w in result.evidence, result.evidence
    # the scenario's card (serve --list-scenarios) quotes this very evidence
    (card,) = [f.error for f in SCENARIOS[scenario].fails if f.client.startswith("tlslab scan")]
    assert card.startswith(f"{name} vulnerable: ")
    for part in card[len(f"{name} vulnerable: "):].split("; "):
        assert part.removesuffix("...") in result.evidence, (part, result.evidence)
    if scenario in ("heartbleed", "ticketbleed"):
        # what leaked is the lab's fake memory, shown in the details as hex
        leaked = bytes.fromhex(result.details.get("leaked_sample") or result.details["leaked"])
        assert leaked and leaked in (FAKE_MEMORY * 8)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(ACTIVE_CHECKS))
@pytest.mark.parametrize("scenario", ["ok", *VULNERABLE])
def test_check_is_quiet_on_the_other_scenarios(lab, scenario, name):
    """The default tlslab server ("ok") and the three scenarios of the other faults."""
    if VULNERABLE.get(scenario, ("",))[0] == name:
        pytest.skip("its own scenario")
    result = run_check(name, lab(scenario).port)
    assert result.vulnerable is False, result.evidence


def test_heartbleed_is_quiet_on_a_conforming_heartbeat_server(lab):
    """RFC 6520 negotiated and answered: the lying request is discarded, the honest one
    echoed, and the check tells the two apart without waiting for a timeout."""
    result = run_check("HEARTBLEED", lab("ok", lab_heartbeat="rfc6520", versions=["TLS 1.2"]).port)
    assert result.vulnerable is False and result.details["heartbeat_negotiated"]
    assert "discarded" in result.evidence and "echoed" in result.evidence


@pytest.mark.timeout(60)
def test_robot_is_quiet_on_static_rsa_with_implicit_rejection(lab):
    """The default engine with TLS_RSA_* suites (rsa-kx-only): every padding gets the same
    bad_record_mac (RFC 5246 §7.4.7.1)."""
    result = run_check("ROBOT", lab("rsa-kx-only").port)
    assert result.vulnerable is False and result.applicable, result.evidence
    answers = result.details["answers"]
    assert {a for per in answers.values() for a in per} == {"alert bad_record_mac"}
    assert "the same answer for every padding" in result.evidence


def test_robot_is_not_applicable_without_rsa_key_exchange(lab):
    result = run_check("ROBOT", lab("ok").port)
    assert result.vulnerable is False and not result.applicable
    assert result.evidence.startswith("not applicable")


def test_an_unreachable_target_is_undecided():
    from conftest import free_port
    result = run_check("HEARTBLEED", free_port())
    assert result.vulnerable is None and "cannot connect" in result.evidence


def test_run_all_skips_what_the_scan_rules_out(lab):
    port = lab("ok").port
    target = ScanTarget("127.0.0.1", port, server_name="localhost", timeout=5)
    doc = {"protocols": {"TLS 1.3": True, "TLS 1.2": False}}
    results = asyncio.run(run_all(target, time.monotonic() + BUDGET, doc))
    assert [r.name for r in results] == list(ACTIVE_CHECKS)
    assert all(r.vulnerable is False and r.details["connections"] == 0 for r in results)
    doc = {"protocols": {"TLS 1.2": True},
           "cipher_suites": {"TLS 1.2": {"accepted": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]}}}
    results = {r.name: r for r in asyncio.run(run_all(target, time.monotonic() + 60, doc))}
    assert results["ROBOT"].details["connections"] == 0 and not results["ROBOT"].applicable
    assert results["TICKETBLEED"].details["connections"] == 2
    assert not any(r.vulnerable for r in results.values())


# -------------------------------------------------------------------------- real servers

@pytest.mark.interop
@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", list(ACTIVE_CHECKS))
def test_check_is_quiet_on_openssl(openssl_server, name):
    """OpenSSL 3 (TLS 1.2 and 1.3, its default suites, static RSA among them, tickets)."""
    port = openssl_server(key_type="rsa")
    result = run_check(name, port)
    assert result.vulnerable is False, result.evidence
    if name == "ROBOT":
        assert result.applicable, result.evidence  # OpenSSL 3 still accepts TLS_RSA_*
    if name == "TICKETBLEED":
        assert result.details["resumed"], result.evidence


@pytest.mark.interop
@pytest.mark.timeout(120)
def test_checks_are_quiet_on_gnutls(certs_dir):
    """GnuTLS with static RSA enabled and Heartbeat on (``gnutls-serv --heartbeat``)."""
    from realservers import PeerMissing, gnutls_server
    try:
        server = gnutls_server(certs_dir / "rsa-chain.pem", certs_dir / "rsa.key",
                               priority="NORMAL:+RSA", tls=("1.2",), extra=["--heartbeat"])
        running = server.__enter__()
    except PeerMissing as e:
        pytest.skip(f"{e.name} is missing")
    try:
        results = {name: run_check(name, running.port) for name in ACTIVE_CHECKS}
    finally:
        server.__exit__(None, None, None)
    for name, result in results.items():
        assert result.vulnerable is False, (name, result.evidence)
    assert results["ROBOT"].applicable
    assert results["HEARTBLEED"].details["heartbeat_negotiated"]


# -------------------------------------------------------------------------- the CLI

@pytest.mark.timeout(90)
@pytest.mark.parametrize("scenario", list(VULNERABLE))
def test_serve_scenario_runs_the_vulnerable_server(scenario):
    """``tlslab serve --scenario NAME`` serves the same vulnerable server."""
    import os
    import re
    import signal
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "tlslab", "serve", "--port", "0", "--scenario",
                             scenario], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    head, port = [], None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and port is None:
            line = proc.stdout.readline()
            if not line:
                break
            head.append(line)
            if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        assert port, "".join(head)
        name = VULNERABLE[scenario][0]
        result = run_check(name, port)
        assert result.vulnerable is True, result.evidence
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert "Traceback" not in "".join(head) + out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(ACTIVE_CHECKS))
def test_checks_on_servers_they_cannot_test(lab, name):
    """TLS 1.3 only: not applicable (False).  A client certificate required: never True
    (Ticketbleed, which needs a completed handshake for its ticket, says it cannot tell)."""
    result = run_check(name, lab("tls1.3-only").port)
    assert result.vulnerable is False and not result.applicable, result.evidence
    assert "not applicable" in result.evidence
    result = run_check(name, lab("client-cert-required").port)
    assert result.vulnerable is not True, result.evidence
    if name == "TICKETBLEED":
        assert result.vulnerable is None and "did not complete" in result.evidence
