"""Findings, the paper simulation, the Mozilla comparison and the scan report views, all
from scan documents: the real sample of an ``openssl s_server`` scan
(tests/data/scan_sample_openssl.json) and variations of it (TLS 1.0 on, RC4, only DHE,
a weak DH group, an expired certificate, a configuration that meets Mozilla intermediate).
No connection is made."""
from __future__ import annotations

import copy
import datetime
import html
import io
import json
import re
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from rich.console import Console

from tlslab.scan.findings import SEVERITIES, add_findings
from tlslab.scan.fixes import fix_data
from tlslab.scan.mozilla import UnknownConfiguration, comparison
from tlslab.view.scan import render_scan
from tlslab.view.scan_html import render_scan_html, write_scan_html

SAMPLE = Path(__file__).parent / "data" / "scan_sample_openssl.json"
FIX_DIR = Path(__file__).parents[1] / "src" / "tlslab" / "scan" / "fixes"
NOW = datetime.datetime.now(datetime.timezone.utc)


def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def trusted(doc: dict) -> dict:
    """The sample as if its chain verified (the sample's test CA is not trusted here)."""
    for entry in doc["certificates"]:
        entry["problems"] = []
        entry["trusted"] = True
    return doc


def by_id(doc: dict) -> dict[str, dict]:
    return {f["id"]: f for f in doc["findings"]}


def sim(doc: dict) -> dict[str, dict]:
    return {s["profile"]: s for s in doc["simulation"]}


def with_tls10(doc: dict, suites: list[str]) -> dict:
    doc["protocols"]["TLS 1.0"] = True
    doc["cipher_suites"]["TLS 1.0"] = {"accepted": list(suites), "server_order": True, "order": list(suites)}
    return doc


# ---------------------------------------------------------------------- the sample
def test_sample_has_findings_simulation_and_mozilla_in_the_contracted_shape():
    doc = sample()
    add_findings(doc, trust=[])
    json.dumps(doc)  # the document stays JSON
    ids = by_id(doc)
    assert {"certificate-missing-intermediate", "static-rsa", "lucky13", "no-ocsp-stapling"} <= set(ids)
    for f in doc["findings"]:
        assert set(f) >= {"id", "severity", "title", "evidence", "affects", "fix"}
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", f["id"]), f["id"]
        assert f["severity"] in SEVERITIES
        assert f["evidence"] and isinstance(f["evidence"], str)
        assert set(f["affects"]) >= {"clients_broken", "clients_at_risk"}
    severities = [SEVERITIES.index(f["severity"]) for f in doc["findings"]]
    assert severities == sorted(severities)
    # the missing intermediate locks every profile out, now
    mi = ids["certificate-missing-intermediate"]
    assert mi["severity"] == "high" and mi["affects"]["broken_when"] == "now"
    assert "browser" in mi["affects"]["clients_broken"] and "nginx" in mi["fix"]
    assert len(doc["simulation"]) >= 40
    assert {s["outcome"] for s in doc["simulation"]} == {"fails"}
    assert doc["mozilla"]["closest"] in ("modern", "intermediate", "old")


def test_sample_simulation_decides_each_profile_from_the_scan():
    doc = trusted(sample())
    add_findings(doc, trust=[])
    s = sim(doc)
    assert s["browser"]["outcome"] == "ok" and s["browser"]["version"] == "TLS 1.3"
    # the server imposes its group order in TLS 1.3: x25519 first
    assert s["browser"]["group"] == "x25519"
    assert s["java-8u292"]["version"] == "TLS 1.2" and s["java-8u292"]["cipher_suite"].startswith("TLS_ECDHE_RSA")
    for old in ("android-4.4", "java-7u80", "java-6u45"):
        assert s[old]["outcome"] == "fails"
        assert s[old]["codes"] == ["protocol-version-mismatch"] and "TLS 1.0" in s[old]["reason"]
    # the old clients failing are expected: reported, but as info
    generic = by_id(doc)["clients-cannot-connect"]
    assert generic["severity"] == "info" and set(generic["affects"]["clients_broken"]) == {
        "android-4.4", "java-7u80", "java-6u45"}


# ---------------------------------------------------------------------- who it hurts
def test_tls10_on_says_which_clients_lose_their_only_version():
    doc = with_tls10(trusted(sample()), ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"])
    add_findings(doc, trust=[])
    f = by_id(doc)["tls10-enabled"]
    assert f["severity"] == "medium"
    broken = set(f["affects"]["clients_broken"])
    assert {"android-4.4", "java-7u80"} <= broken
    assert "browser" not in broken and "java-8u292" not in broken
    assert set(f["affects"]["clients_at_risk"]) == broken  # they negotiate TLS 1.0 today
    assert "android-4.4" in f["affects"]["summary"] and "turning TLS 1.0 off" in f["affects"]["summary"]
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in f["fix"]["nginx"]
    assert all(fx["source"].startswith("https://") for fx in f["fixes"])
    # without TLS 1.0 there is no such finding
    plain = trusted(sample())
    add_findings(plain, trust=[])
    assert "tls10-enabled" not in by_id(plain)


def test_rc4_only_old_version_locks_out_its_users_when_removed():
    doc = with_tls10(trusted(sample()), ["TLS_RSA_WITH_RC4_128_SHA"])
    doc["vulnerabilities"]["RC4"] = True
    doc["vulnerability_evidence"]["RC4"] = "RC4 suites accepted: TLS_RSA_WITH_RC4_128_SHA"
    add_findings(doc, trust=[])
    f = by_id(doc)["rc4"]
    assert f["severity"] == "high"
    assert {"android-4.4", "java-7u80"} <= set(f["affects"]["clients_broken"])
    assert {"android-4.4", "java-7u80"} <= set(f["affects"]["clients_at_risk"])
    assert "TLS_RSA_WITH_RC4_128_SHA" in f["fix"]["nginx"]  # the {suites} placeholder is filled
    assert sim(doc)["java-7u80"]["cipher_suite"] == "TLS_RSA_WITH_RC4_128_SHA"


def test_only_dhe_suites_browsers_cannot_connect():
    doc = trusted(sample())
    doc["protocols"]["TLS 1.3"] = False
    del doc["cipher_suites"]["TLS 1.3"]
    part = doc["cipher_suites"]["TLS 1.2"]
    part["accepted"] = [s for s in part["accepted"] if s.startswith("TLS_DHE_RSA")]
    doc["groups"] = {"accepted": [], "server_order": None, "order": [], "per_version": {},
                     "dh_parameters": {"bits": 2048, "group": None, "suite": part["accepted"][0]}}
    add_findings(doc, trust=[])
    f = by_id(doc)["dhe-only"]
    assert f["severity"] == "high" and f["affects"]["broken_when"] == "now"
    assert {"browser", "chrome-131", "firefox-155"} <= set(f["affects"]["clients_broken"])
    assert sim(doc)["chrome-131"]["outcome"] == "fails"
    assert sim(doc)["chrome-131"]["codes"] == ["no-common-cipher"]
    assert sim(doc)["java-8u292"]["outcome"] == "ok"  # Java still offers DHE
    assert "tls13-disabled" in by_id(doc)


def test_weak_dh_fix_breaks_java7_which_cannot_go_past_1024_bits():
    doc = with_tls10(trusted(sample()), ["TLS_DHE_RSA_WITH_AES_128_CBC_SHA"])
    doc["groups"]["dh_parameters"] = {"bits": 1024, "group": None, "suite": "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"}
    doc["vulnerabilities"]["WEAK_DH"] = True
    doc["vulnerability_evidence"]["WEAK_DH"] = "DHE uses a 1024-bit group"
    add_findings(doc, trust=[])
    f = by_id(doc)["weak-dh"]
    assert "java-7u80" in f["affects"]["clients_broken"]
    assert "java-7u80" in f["affects"]["clients_at_risk"]
    assert sim(doc)["java-7u80"]["group"] == "DH 1024"


def _chain_pem(days_ago: int) -> tuple[str, object]:
    from tlslab.workbench.certgen import make_throwaway_chain
    chain, _key, ca = make_throwaway_chain(["localhost"], key_type="rsa2048",
                                           now=NOW - datetime.timedelta(days=days_ago))
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in chain), ca


def _with_chain(doc: dict, pem: str, ca) -> dict:
    from cryptography import x509

    from tlslab.scan.certs import judge
    chain = x509.load_pem_x509_certificates(pem.encode())
    entry = judge(chain, name="localhost", trust=[ca], now=NOW, cache={})
    entry["found_with"] = doc["certificates"][0]["found_with"]
    entry["pem"] = pem
    doc["certificates"] = [entry]
    return doc


def test_expired_certificate_judged_from_the_pem_for_each_client():
    pem, ca = _chain_pem(days_ago=60)  # valid for 30 days from 60 days ago
    doc = _with_chain(sample(), pem, ca)
    add_findings(doc, trust=[ca], now=NOW)
    f = by_id(doc)["certificate-expired"]
    assert f["severity"] == "critical" and f["affects"]["broken_when"] == "now"
    assert {"browser", "java-8u292", "python-3.13"} <= set(f["affects"]["clients_broken"])
    assert sim(doc)["browser"]["codes"] == ["expired"]
    assert "renew" in " ".join(f["fix"].values()).lower()


def test_valid_certificate_from_the_pem_connects_and_expires_soon_is_reported():
    pem, ca = _chain_pem(days_ago=15)  # 15 days left: within the warning window
    doc = _with_chain(sample(), pem, ca)
    add_findings(doc, trust=[ca], now=NOW)
    assert sim(doc)["browser"]["outcome"] == "ok"
    assert "certificate-expired" not in by_id(doc)
    soon = by_id(doc)["certificate-expires-soon"]
    assert soon["severity"] == "medium" and "browser" in soon["affects"]["clients_at_risk"]
    # the same chain judged against another trust store is untrusted for everyone
    other = copy.deepcopy(doc)
    add_findings(other, trust=[], now=NOW)
    assert sim(other)["browser"]["outcome"] == "fails"


# ---------------------------------------------------------------------- Mozilla
def meets_intermediate() -> dict:
    doc = trusted(sample())
    doc["cipher_suites"]["TLS 1.2"] = {
        "accepted": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                     "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"], "server_order": False, "order": []}
    doc["groups"]["dh_parameters"] = None
    leaf = doc["certificates"][0]["certificates"][0]
    leaf["not_before"], leaf["not_after"] = "2026-11-01T00:00:00Z", "2027-01-30T00:00:00Z"
    doc["ocsp_stapling"] = {"stapled": True, "version": "TLS 1.3", "bytes": 1500, "status": "good"}
    for k in ("STATIC_RSA", "LUCKY13"):
        doc["vulnerabilities"][k] = False
    return doc


def test_a_configuration_that_meets_intermediate():
    m = comparison(meets_intermediate())
    assert m["configurations"]["intermediate"]["meets"] is True
    assert m["configurations"]["intermediate"]["changes"] == []
    assert m["closest"] == "intermediate"
    modern = m["configurations"]["modern"]
    assert modern["meets"] is False and "Turn off TLS 1.2" in modern["changes"]
    assert any("ECDSA" in c for c in modern["changes"])
    assert m["guidelines"] == "5.7" and "5.7" in m["source"]


def test_the_sample_does_not_meet_intermediate_and_says_what_to_change():
    doc = sample()
    add_findings(doc, against="intermediate", trust=[])
    inter = doc["mozilla"]["configurations"]["intermediate"]
    assert inter["meets"] is False
    assert any(c.startswith("Remove 14 cipher suites") for c in inter["changes"])
    assert "Staple OCSP responses" in inter["changes"]
    assert doc["mozilla"]["against"] == "intermediate"
    ids = by_id(doc)
    assert "mozilla-intermediate-cipher-suites" in ids and "mozilla-intermediate-ocsp-stapling" in ids
    assert "ECDHE-RSA-AES128-GCM-SHA256" in ids["mozilla-intermediate-cipher-suites"]["fix"]["nginx"]
    # without --against, no deviation findings
    plain = sample()
    add_findings(plain, trust=[])
    assert not any(f["id"].startswith("mozilla-") for f in plain["findings"])


def test_old_asks_for_tls10_and_server_order():
    changes = comparison(meets_intermediate())["configurations"]["old"]["changes"]
    assert any(c.startswith("Turn on TLS 1.0") for c in changes)
    assert "Choose the cipher suite in the server's order" in changes


def test_unknown_configuration_is_refused():
    with pytest.raises(UnknownConfiguration):
        add_findings(sample(), against="paranoid", trust=[])


def test_mozilla_data_matches_the_guidelines_facts():
    data = tomllib.loads((FIX_DIR.parent / "data" / "mozilla.toml").read_text())
    assert data["version"] == "5.7"
    assert data["intermediate"]["cipher_suites"][-1] == "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    for name in ("modern", "intermediate", "old"):
        c = data[name]
        assert len(c["cipher_suites"]) == len(c["openssl_ciphers"])
    assert data["old"]["server_preferred_order"] is True and data["modern"]["protocols"] == ["TLS 1.3"]


# ---------------------------------------------------------------------- fix data
def test_every_fix_file_parses_and_cites_a_source():
    files = sorted(FIX_DIR.glob("*.toml"))
    assert len(files) >= 15
    for path in files:
        data = fix_data(path.stem)
        assert data["code"] == path.stem and data["fix"], path.name
        for fix in data["fix"]:
            assert fix["side"] == "server" and fix["source"].startswith("https://"), path.name


def test_every_finding_names_fix_data_that_exists():
    doc = with_tls10(sample(), ["TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"])
    doc["vulnerabilities"].update(RC4=True, SWEET32=True, BEAST=True, HEARTBLEED=True, ROBOT=None)
    doc["compression"] = True
    doc["client_renegotiation"] = {"accepted": True, "evidence": "renegotiated"}
    doc["early_data"] = {"accepted": True, "max_early_data_size": 16384}
    doc["signature_algorithms"]["TLS 1.2"].append("rsa_pkcs1_sha1")
    add_findings(doc, against="old", trust=[])
    ids = by_id(doc)
    assert {"heartbleed", "sweet32", "beast", "compression", "client-renegotiation",
            "early-data-accepted", "checks-undecided", "weak-signature-schemes"} <= set(ids)
    assert "ROBOT" in ids["checks-undecided"]["evidence"]
    for f in doc["findings"]:
        if f["fix_id"]:
            assert fix_data(f["fix_id"])["fix"], f["id"]
            assert f["fix"], f["id"]


# ---------------------------------------------------------------------- views
def _rendered(doc: dict, width: int) -> str:
    console = Console(record=True, width=width, force_terminal=False, highlight=False, file=io.StringIO())
    render_scan(doc, console)
    return console.export_text()


@pytest.mark.parametrize("width", [60, 120])
def test_terminal_report_has_its_sections_and_no_python_reprs(width):
    doc = with_tls10(sample(), ["TLS_RSA_WITH_RC4_128_SHA"])
    doc["vulnerabilities"]["ROBOT"] = None
    add_findings(doc, against="intermediate", trust=[])
    text = _rendered(doc, width)
    for section in ("Findings (", "Protocols", "Cipher suites", "Groups and signature schemes",
                    "Certificates", "Features", "Vulnerabilities", "Clients (", "Mozilla Server Side TLS 5.7"):
        assert section in text, section
    assert "certificate-missing-intermediate" in text and "ssl_protocols TLSv1.2 TLSv1.3;" in text
    for bad in ("None", "True", "False", "{'", "['", "Traceback"):
        assert bad not in text, bad
    assert max(len(line) for line in text.splitlines()) <= width


def test_terminal_report_of_a_failed_scan():
    doc = {"target": {"host": "127.0.0.1", "port": 9, "server_name": None, "starttls": None},
           "scanned_at": "2026-12-06T00:00:00+00:00", "protocols": {}, "error": "connection refused"}
    add_findings(doc, trust=[])
    assert doc["findings"] == [] and doc["simulation"] == []
    text = _rendered(doc, 80)
    assert "scan failed" in text and "connection refused" in text and "None" not in text


def test_terminal_escapes_control_characters_from_the_server():
    doc = sample()
    doc["certificates"][0]["certificates"][0]["subject"] = "CN=evil\x1b]52;c;AAAA\x07"
    add_findings(doc, trust=[])
    console = Console(record=True, width=100, force_terminal=True, highlight=False, file=io.StringIO())
    render_scan(doc, console)
    out = console.export_text(styles=False)
    assert "\x1b]52" not in out and "\\x1b]52" in out


HOSTILE = "CN=<script>alert(1)</script>\"'&"


def hostile_doc() -> dict:
    doc = sample()
    doc["certificates"][0]["certificates"][0]["subject"] = HOSTILE
    doc["certificates"][0]["problems"][0]["summary"] = "missing <img src=x onerror=alert(2)>"
    doc["target"]["server_name"] = "<b>name</b>"
    add_findings(doc, against="intermediate", trust=[])
    return doc


def test_html_escapes_hostile_strings_and_runs_no_script():
    page = render_scan_html(hostile_doc())
    assert "<script" not in page and "<img" not in page and "<b>name" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1))
    assert "default-src 'none'" in csp and "script-src" not in csp
    for anchor in ("findings", "protocols", "suites", "certificates", "clients", "mozilla"):
        assert f'id="{anchor}"' in page


def test_html_style_matches_its_csp_hash():
    import base64
    import hashlib
    page = render_scan_html(hostile_doc())
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1))
    assert f"style-src 'sha256-{digest}'" in csp


def test_html_in_headless_chromium(tmp_path):
    import shutil

    from conftest import run_bounded
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None:
        pytest.skip("peer missing: chromium (Debian package chromium; `make peers` installs it)")
    page = write_scan_html(tmp_path / "scan.html", hostile_doc())
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--user-data-dir={tmp_path / 'profile'}"]
    rc, dom, err = run_bounded([chromium, *flags, "--dump-dom", f"file://{page}"], timeout=60)
    assert rc == 0, err[-500:]
    assert "TLS scan of 127.0.0.1:45119" in dom
    assert dom.count('class="finding ') == len(hostile_doc()["findings"])
    assert "&lt;script&gt;alert(1)" in dom and "<script" not in dom
    shot = tmp_path / "scan.png"
    rc, _, err = run_bounded([chromium, *flags, "--window-size=1280,2000", f"--screenshot={shot}",
                              f"file://{page}"], timeout=60)
    assert rc == 0 and shot.stat().st_size > 10_000, err[-500:]
    print(f"screenshot: {shot}")


def test_without_a_known_trust_store_the_scans_own_verdict_decides_trust():
    pem, ca = _chain_pem(days_ago=1)
    doc = _with_chain(sample(), pem, ca)  # judged trusted by the scan (its CA given)
    assert doc["certificates"][0]["problems"] == []
    add_findings(doc, now=NOW)  # no trust passed, no ca_file in the document
    assert sim(doc)["browser"]["outcome"] == "ok"
    untrusted = _with_chain(sample(), pem, ca)
    untrusted["certificates"][0]["problems"] = [{"code": "untrusted-root", "summary": "not trusted"}]
    add_findings(untrusted, now=NOW)
    assert sim(untrusted)["browser"]["codes"] == ["untrusted-root"]
    assert "certificate-untrusted-root" in by_id(untrusted)


def test_against_intermediate_turns_versions_off_and_on_as_two_findings():
    doc = with_tls10(trusted(sample()), ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"])
    doc["protocols"]["TLS 1.3"] = False
    del doc["cipher_suites"]["TLS 1.3"]
    add_findings(doc, against="intermediate", trust=[])
    ids = by_id(doc)
    off, on = ids["mozilla-intermediate-protocols-off"], ids["mozilla-intermediate-protocols-on"]
    assert off["title"] == "Mozilla intermediate: Turn off TLS 1.0"
    assert {"android-4.4", "java-7u80"} <= set(off["affects"]["clients_broken"])
    assert on["title"] == "Mozilla intermediate: Turn on TLS 1.3"
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in off["fix"]["nginx"]
    # the server's own findings come before the Mozilla deviations of the same severity
    order = [f["id"] for f in doc["findings"] if f["severity"] == "medium"]
    assert order.index("tls10-enabled") < order.index("mozilla-intermediate-protocols-off")


@pytest.mark.interop
def test_a_real_scan_of_openssl_gets_findings_simulation_and_views(openssl_server, certs_dir):
    """The scan core and this module together: openssl s_server with TLS 1.0 to 1.2."""
    import asyncio

    from tlslab.scan.run import scan
    from tlslab.scan.target import ScanTarget
    port = openssl_server("-cipher", "DEFAULT:@SECLEVEL=0", "-no_tls1_3")
    target = ScanTarget("127.0.0.1", port, server_name="localhost", ca_file=str(certs_dir / "ca.pem"))
    doc = asyncio.run(asyncio.wait_for(scan(target, limit=60, against="intermediate"), 90))
    ids = by_id(doc)
    assert {"tls10-enabled", "tls11-enabled", "tls13-disabled"} <= set(ids)
    assert {"android-4.4", "java-7u80"} <= set(ids["tls10-enabled"]["affects"]["clients_broken"])
    s = sim(doc)
    assert s["browser"]["outcome"] == "ok" and s["browser"]["version"] == "TLS 1.2"
    assert s["tls13-only"]["codes"] == ["protocol-version-mismatch"]
    assert doc["mozilla"]["configurations"]["intermediate"]["meets"] is False
    text = _rendered(doc, 100)
    assert "tls10-enabled" in text and "None" not in text
    assert "tls10-enabled" in render_scan_html(doc)


def test_terminal_fixes_limited_to_the_stacks_asked_for():
    doc = with_tls10(trusted(sample()), ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"])
    add_findings(doc, trust=[])
    console = Console(record=True, width=120, force_terminal=False, highlight=False, file=io.StringIO())
    render_scan(doc, console, stacks=("nginx",))
    text = console.export_text()
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "SSLProtocol -all" not in text and "MinProtocol" not in text
    full = _rendered(doc, 120)
    assert "SSLProtocol -all" in full
