"""``tlslab explain``: the pattern data, the ranking, the host:port and profile of the
diagnose command, input handling (stdin, empty, binary, a 10 MB paste) and the CLI contract
(JSON shape, exit codes, --help).  What real clients print is checked against the patterns
in test_explain_capture.py."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from conftest import run_bounded
from tlslab.diagnose import VOCABULARY as DIAGNOSE_VOCABULARY
from tlslab.diagnose.explain import (
    MAX_INPUT,
    VOCABULARY,
    BadInput,
    Pattern,
    PatternDataError,
    explain,
    find_target,
    how_to_tell,
    load_patterns,
    normalise,
    parse_pattern_file,
    read_input,
)
from tlslab.diagnose.fixes import cause_data

FAMILIES = ("java", "curl", "openssl", "python", "go", "node", "gnutls", "browser-chrome",
            "browser-firefox", "dotnet", "nginx", "apache", "android", "apple")


def tlslab(*args, input=None, timeout: float = 30):
    """``python -m tlslab explain ARGS`` -> (rc, stdout, stderr)."""
    return run_bounded([sys.executable, "-m", "tlslab", "explain", *args], input=input,
                       timeout=timeout)


def _entry(**over) -> dict:
    entry = {"match": "some error text", "client": "X", "example": "we got some error text here",
             "client_version": "1.0", "source": "https://example.invalid/doc", "profile": "default",
             "causes": [{"code": "expired", "weight": 60}, {"code": "not-yet-valid", "weight": 40}]}
    entry.update(over)
    return {k: v for k, v in entry.items() if v is not None}


def _pattern(text: str, causes, profile="default", regex=False, family="t") -> Pattern:
    key = "regex" if regex else "match"
    entry = _entry(**{key: text, "example": f"xx {text.replace(chr(92), '')} yy" if not regex else text,
                      "causes": [{"code": c, "weight": w} for c, w in causes], "profile": profile})
    if regex:
        entry.pop("match", None)
    return parse_pattern_file(family, {"pattern": [entry]}, "test")[0]


# --------------------------------------------------------------------------- the data


def test_every_client_family_has_a_pattern_file():
    families = {p.family for p in load_patterns()}
    assert set(FAMILIES) <= families, set(FAMILIES) - families


def test_vocabulary_is_the_diagnosis_vocabulary():
    assert set(VOCABULARY) == set(DIAGNOSE_VOCABULARY) and len(VOCABULARY) == len(set(VOCABULARY))


def test_every_cause_has_a_summary_and_how_to_tell():
    tell = how_to_tell()
    used = {code for p in load_patterns() for code, _ in p.causes}
    assert used <= set(VOCABULARY) - {"ok"}
    for code in used:
        assert len(tell.get(code, "")) > 40, code
        assert cause_data(code)["title"] and cause_data(code)["title"] != code.replace("-", " "), code


def test_every_profile_named_exists():
    from tlslab.profiles import builtin_profile_names
    names = set(builtin_profile_names())
    bad = {(p.key, p.profile) for p in load_patterns() if p.profile not in names}
    assert not bad, bad


def test_every_source_is_a_capture_test_or_a_url():
    """A captured string names the capture test that pins it; the others a documentation
    URL.  A source naming a test case that does not exist would never be checked."""
    import test_explain_capture as cap
    cases = {f"test_capture[{cap._node_id(c, f)}]" for c, f in cap.CASES if (c, f) not in cap.ACCEPTS}
    cases |= {f"test_server_log[{c.name}]" for c in cap.LOG_CASES}
    cases |= {f"test_server_refuses_weak_certificate[{s}-{k}]" for s, k, _ in cap.WEAK_CERTS}
    captured = 0
    for p in load_patterns():
        if p.source.startswith("captured: "):
            node = p.source.removeprefix("captured: tests/test_explain_capture.py::")
            assert node in cases, f"{p.key}: no such capture {p.source!r}"
            captured += 1
        else:
            assert re.match(r"https://[a-z0-9.-]{3,}/", p.source), f"{p.key}: source {p.source!r}"
    assert captured >= 100, captured


def test_every_example_is_explained_by_its_own_pattern():
    """Each example, explained alone, matches its pattern, or a longer one of the same
    client family that contains it."""
    for p in load_patterns():
        result = explain(p.example)
        families = {m.pattern.family for m in result.matched}
        assert p.family in families, (p.key, [m.pattern.key for m in result.matched])


def test_pattern_files_have_no_duplicates():
    keys = [p.key for p in load_patterns()]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("over,message", [
    ({"causes": [{"code": "broken", "weight": 10}]}, "vocabulary"),
    ({"causes": [{"code": "ok", "weight": 10}]}, "vocabulary"),
    ({"causes": [{"code": "expired", "weight": 0}]}, "weight"),
    ({"causes": [{"code": "expired", "weight": 101}]}, "weight"),
    ({"causes": [{"code": "expired", "weight": True}]}, "weight"),
    ({"causes": [{"code": "expired", "weight": 5}, {"code": "expired", "weight": 5}]}, "twice"),
    ({"causes": []}, "causes"),
    ({"example": "nothing alike"}, "example does not match"),
    ({"regex": "some error"}, "exactly one"),
    ({"match": None, "regex": "some.*error", "example": "some error"}, "bounded"),
    ({"match": None, "regex": "some .+error", "example": "some error"}, "bounded"),
    ({"match": None, "regex": "some .{0,}error", "example": "some error"}, "bounded"),
    ({"match": None, "regex": "x{0,5000}some error", "example": "some error"}, "bounded"),
    ({"match": None, "regex": "(?:a{1,9}b){1,9}some error", "example": "some error"}, "nested"),
    ({"match": None, "regex": r"(some) \1", "example": "some some"}, "backreference"),
    ({"match": None, "regex": "(some", "example": "some"}, "regex"),
    ({"match": "abc"}, "too short"),
    ({"profile": "No Such/Profile"}, "profile"),
    ({"colour": "red"}, "unknown keys"),
    ({"source": None}, "missing"),
])
def test_loader_rejects_bad_entries(over, message):
    with pytest.raises(PatternDataError, match=message):
        parse_pattern_file("t", {"pattern": [_entry(**over)]}, "test")


def test_loader_accepts_a_linear_regex():
    p = parse_pattern_file("t", {"pattern": [_entry(match=None, regex=r"some (?:error|fault) \d{1,3}",
                                                    example="some error 42")]}, "test")[0]
    assert p.compiled is not None and p.text == r"some (?:error|fault) \d{1,3}"


# --------------------------------------------------------------------------- ranking


def test_ranks_by_summed_weights_over_all_matched_patterns():
    a = _pattern("first message", [("expired", 60), ("untrusted-root", 40)])
    b = _pattern("second message", [("untrusted-root", 50), ("self-signed", 50)])
    r = explain("first message, then the second message", patterns=[a, b])
    assert [(c.code, c.rank) for c in r.causes] == [("untrusted-root", 1), ("expired", 2),
                                                    ("self-signed", 3)]
    assert [c.weight for c in r.causes] == [90, 60, 50]
    assert abs(sum(c.share for c in r.causes) - 1) < 1e-9


def test_ties_go_to_the_higher_single_weight_then_vocabulary_order():
    a = _pattern("first message", [("timeout", 50), ("expired", 30), ("self-signed", 20)])
    b = _pattern("second message", [("expired", 20), ("self-signed", 30)])
    r = explain("first message second message", patterns=[a, b])
    # timeout 50 (best 50), expired 50 (best 30), self-signed 50 (best 30): vocabulary
    # puts self-signed before expired
    assert [c.code for c in r.causes] == ["timeout", "self-signed", "expired"]


def test_a_match_inside_a_longer_match_counts_once():
    inner = _pattern("alert handshake failure", [("no-common-cipher", 100)])
    outer = _pattern("curl: (35) alert handshake failure", [("client-certificate-required", 100)])
    r = explain("curl: (35) alert handshake failure", patterns=[inner, outer])
    assert [m.pattern.text for m in r.matched] == ["curl: (35) alert handshake failure"]
    assert [c.code for c in r.causes] == ["client-certificate-required"]
    # the same words elsewhere in the text are evidence of their own
    r = explain("curl: (35) alert handshake failure; later: alert handshake failure",
                patterns=[inner, outer])
    assert len(r.matched) == 2 and {c.code for c in r.causes} == {"no-common-cipher",
                                                                 "client-certificate-required"}


def test_a_repeated_message_counts_once():
    p = _pattern("same words", [("expired", 70), ("not-yet-valid", 30)])
    r = explain("same words\n" * 50, patterns=[p])
    assert [c.weight for c in r.causes] == [70, 30]


def test_matching_ignores_case_escape_sequences_and_line_wrapping():
    p = _pattern("unable to find valid certification path", [("untrusted-root", 100)])
    text = "\x1b[31mUnable to find valid\n   certification\tpath\x1b[0m to requested target"
    assert explain(text, patterns=[p]).matched
    assert normalise("a\r\n\tb\x1b[1mc") == "a bc"


def test_real_messages_rank_their_cause_first():
    cases = {
        "javax.net.ssl.SSLHandshakeException: PKIX path building failed": "untrusted-root",
        "curl: (60) SSL certificate problem: certificate has expired": "expired",
        "x509: certificate relies on legacy Common Name field, use SANs instead": "no-san",
        "NET::ERR_CERT_DATE_INVALID": "expired",
        "SSL_ERROR_RX_RECORD_TOO_LONG": "not-tls",
        "The remote certificate is invalid according to the validation procedure: "
        "RemoteCertificateNameMismatch": "hostname-mismatch",
        "[ssl:error] AH02039: Certificate Verification: Error (20): unable to get local issuer "
        "certificate": "client-certificate-required",
        "2024/05/01 10:00:00 [info] 12#12: *3 SSL_do_handshake() failed (SSL: error:0A0000C1:SSL "
        "routines::no shared cipher) while SSL handshaking": "no-common-cipher",
        "java.security.cert.CertPathValidatorException: Trust anchor for certification path not "
        "found.": "missing-intermediate",
    }
    for text, code in cases.items():
        r = explain(text)
        assert r.causes and r.causes[0].code == code, (text, [c.code for c in r.causes])


def test_an_apache_client_certificate_error_is_not_a_server_chain_problem():
    """Error (20) in Apache's log is about the client's certificate, although the words
    are OpenSSL's "unable to get local issuer certificate"."""
    r = explain("AH02039: Certificate Verification: Error (20): unable to get local issuer certificate")
    assert r.causes[0].code == "client-certificate-required"
    assert [m.pattern.family for m in r.matched] == ["apache", "openssl"]


def test_unknown_text_gets_no_guess():
    r = explain("the printer is on fire")
    assert r.matched == () and r.causes == ()
    assert r.diagnose == "tlslab diagnose HOST:PORT"
    assert r.to_json() == {"input": "the printer is on fire", "matched": [], "causes": [],
                           "diagnose": "tlslab diagnose HOST:PORT"}


# --------------------------------------------------------------------------- the diagnose command


@pytest.mark.parametrize("text,command", [
    ("javax.net.ssl.SSLHandshakeException: Received fatal alert: protocol_version",
     "tlslab diagnose HOST:PORT --profile tls12-only"),
    ("The client supported protocol versions [TLSv1.2] are not accepted by server preferences [TLSv1.3]",
     "tlslab diagnose HOST:PORT --profile tls12-only"),
    ("NET::ERR_CERT_AUTHORITY_INVALID", "tlslab diagnose HOST:PORT --profile browser"),
    ("SEC_ERROR_UNKNOWN_ISSUER", "tlslab diagnose HOST:PORT --profile firefox-155"),
    ("curl: (35) OpenSSL/3.0.13: error:0A000458:SSL routines::tlsv1 unrecognized name",
     "tlslab diagnose HOST:PORT --profile no-sni"),
    ("ssl.SSLError: [SSL] tlsv1 alert no application protocol (_ssl.c:1006)",
     "tlslab diagnose HOST:PORT --profile alpn-http"),
    ("curl: (60) SSL certificate problem: certificate has expired",
     "tlslab diagnose HOST:PORT --profile curl-7.88"),
    ('Get "https://api.example.com/v1": x509: certificate signed by unknown authority',
     "tlslab diagnose api.example.com:443 --profile go-1.19"),
    ("requests.exceptions.SSLError: HTTPSConnectionPool(host='db.internal', port=8443): Max retries "
     "exceeded with url: / (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
     "CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)')))",
     "tlslab diagnose db.internal:8443 --profile python-3.11"),
])
def test_diagnose_command_has_the_profile_and_target(text, command):
    assert explain(text).diagnose == command


@pytest.mark.parametrize("text,target", [
    ('Get "https://localhost:4433/": x509: boom', "localhost:4433"),
    ("see https://user@Example.COM/path?q=1 for details", "example.com:443"),
    ("HTTPSConnectionPool(host='example.com', port=8443)", "example.com:8443"),
    ("curl: (7) Failed to connect to localhost port 4433 after 0 ms", "localhost:4433"),
    ("* Connected to example.org (93.184.216.34) port 443 (#0)", "example.org:443"),
    ("dial tcp 127.0.0.1:4433: connect: connection refused", "127.0.0.1:4433"),
    ("Error: connect ECONNREFUSED [::1]:443", "[::1]:443"),
    ("openssl s_client -connect mail.example.net:993 -servername x", "mail.example.net:993"),
    ("*1 SSL_do_handshake() failed while SSL handshaking, client: 10.1.2.3, server: 0.0.0.0:443",
     "HOST:443"),
    ("No subject alternative DNS name matching api.example.com found.", "api.example.com:PORT"),
    ("certificate verify failed: Hostname mismatch, certificate is not valid for 'www.a.test'.",
     "www.a.test:PORT"),
    # not a server: file names in stack traces, times, client addresses
    ("\tat sun.security.ssl.Alert.createSSLException(Alert.java:131) (_ssl.c:1006)", None),
    ("2024/05/01 10:20:30 something at 10:20", None),
    ("[ssl:error] [pid 7] [client 10.0.0.7:52514] AH02039: Certificate Verification", None),
    ("http: TLS handshake error from 10.0.0.7:52514: tls: client didn't provide a certificate", None),
    ("connect to 999.1.1.1 port 443", None),
    ("https://exa$(reboot)mple.com:443/", None),
    ("nothing here", None),
])
def test_target_from_the_text(text, target):
    assert find_target(text) == target


def test_a_target_never_carries_shell_syntax():
    for text in ["https://`id`.example.com/", "host='a;rm -rf /', port=443",
                 "dial tcp $(id):443", "connect to a|b port 443", "https://[::1;id]:443/"]:
        target = find_target(text)
        assert target is None or re.fullmatch(r"[A-Za-z0-9.\-\[\]:]{1,300}", target), (text, target)


# --------------------------------------------------------------------------- input


def test_read_input_rejects_empty_and_blank():
    for data in (b"", b"   \n\t\r\n", "", "\x1b[0m  "):
        with pytest.raises(BadInput) as e:
            read_input(data)
        assert e.value.code == "empty-input"


def test_read_input_rejects_binary():
    for data in (b"PKIX path\x00building failed", b"\xc3\x28 invalid utf-8",
                 "argv bytes \udcff".encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass"),
                 bytes(range(1, 32)) * 20):
        with pytest.raises(BadInput) as e:
            read_input(data)
        assert e.value.code == "binary-input"


def test_read_input_reads_utf16_with_bom_and_strips_a_utf8_bom():
    assert read_input("unable to find valid".encode("utf-16"))[0] == "unable to find valid"
    assert read_input(b"\xef\xbb\xbfhello")[0] == "hello"


def test_read_input_cuts_at_the_limit_even_inside_a_character():
    data = b"a" * (MAX_INPUT - 1) + "é".encode() + b"tail"   # é straddles the limit
    text, truncated = read_input(data)
    assert truncated and len(text.encode()) <= MAX_INPUT and text == "a" * (MAX_INPUT - 1)
    text, truncated = read_input(b"x" * MAX_INPUT)
    assert not truncated and len(text) == MAX_INPUT


@pytest.mark.parametrize("filler", [
    "a", "depth=0 ", "curl: (35) ", "java.net.SocketException: Broken pipe ", "localhost:1 ",
    "SSL_do_handshake() failed ", "https://a.b", "x509: certificate has expired or is not yet valid: current time ",
    "EPROTO ", "a.", "1.1.1.1:", "Could not connect to ",
])
def test_matching_is_bounded_on_adversarial_input(filler):
    """64 KiB made of pattern prefixes: every regex is linear, so this stays fast."""
    text = (filler * (MAX_INPUT // len(filler) + 1))[:MAX_INPUT]
    start = time.monotonic()
    explain(text)
    find_target(text)
    assert time.monotonic() - start < 5.0


# --------------------------------------------------------------------------- the command


def _json(out: str) -> dict:
    return json.loads(out)


def test_json_shape_is_exactly_the_contract():
    rc, out, err = tlslab("--json", "javax.net.ssl.SSLHandshakeException: PKIX path building failed: "
                                    "unable to find valid certification path to requested target")
    assert rc == 0, err
    doc = _json(out)
    assert list(doc) == ["input", "matched", "causes", "diagnose"]
    assert doc["matched"] and all(set(m) == {"client", "pattern", "source"} for m in doc["matched"])
    assert all(set(c) == {"code", "rank", "summary", "how_to_tell"} for c in doc["causes"])
    # competition ranking: equally likely causes share a rank (1, 2, 2, 4)
    ranks = [c["rank"] for c in doc["causes"]]
    assert ranks[0] == 1 and ranks == sorted(ranks)
    assert all(r == i + 1 or r == ranks[i - 1] for i, r in enumerate(ranks))
    assert [(c["code"], c["rank"]) for c in doc["causes"]] == [
        ("untrusted-root", 1), ("missing-intermediate", 2), ("self-signed", 2)]  # the same words for both
    for c in doc["causes"]:
        assert c["summary"] == cause_data(c["code"])["title"]
        assert c["how_to_tell"] == how_to_tell()[c["code"]]
    assert doc["diagnose"] == "tlslab diagnose HOST:PORT --profile java-17"
    assert doc["input"].startswith("javax.net.ssl.SSLHandshakeException")
    assert err == ""


def test_no_match_exits_1_with_the_generic_command():
    rc, out, err = tlslab("--json", "the printer is on fire")
    assert rc == 1
    assert _json(out) == {"input": "the printer is on fire", "matched": [], "causes": [],
                          "diagnose": "tlslab diagnose HOST:PORT"}
    rc, out, err = tlslab("the printer is on fire")
    assert rc == 1 and "No known TLS error message" in out and "tlslab diagnose HOST:PORT" in out


def test_human_output_has_a_panel_per_cause_and_the_command():
    rc, out, err = tlslab("curl: (35) OpenSSL/3.0.13: error:0A000410:SSL routines::sslv3 alert "
                          "handshake failure while talking to https://shop.example.com:8443/")
    assert rc == 0, err
    ranks = re.findall(r"^╭─ +(\d)\. ([a-z-]+)", out, re.M)
    assert [r for r, _ in ranks][:3] == ["1", "2", "2"] and len(ranks) >= 3  # a tie shares rank 2
    assert ranks[0][1] == "no-common-cipher"
    assert {ranks[1][1], ranks[2][1]} == {"client-certificate-required", "no-common-group"}
    assert "How to tell:" in out and "Client and server have no cipher suite in common" in out
    assert "tlslab diagnose shop.example.com:8443" in out
    assert "Traceback" not in out + err and "Explanation(" not in out


def test_stdin_when_no_argument_or_dash():
    text = "Exception in thread \"main\" javax.net.ssl.SSLHandshakeException: Received fatal alert: " \
           "handshake_failure\n\tat sun.security.ssl.Alert.createSSLException(Alert.java:131)\n"
    for args in ((), ("-",)):
        rc, out, err = tlslab("--json", *args, input=text)
        assert rc == 0, err
        doc = _json(out)
        assert doc["input"] == text and doc["causes"][0]["code"] == "no-common-cipher"


def test_no_argument_on_a_terminal_is_bad_input_not_a_hang():
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tlslab", "explain", "--json"], stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 2
    assert _json(out)["error"]["code"] == "empty-input"
    assert err.decode().count("\n") == 1 and err.startswith(b"error: ")


@pytest.mark.parametrize("data,code", [
    (b"", "empty-input"),
    (b"  \n\n\t ", "empty-input"),
    (b"\x00\x01\x02PKIX path building failed\x00", "binary-input"),
    (b"PKIX path building failed \xc3\x28\xff", "binary-input"),
])
def test_bad_input_exits_2_with_json_and_one_line(data, code):
    rc, out, err = tlslab("--json", input=data)
    assert rc == 2
    doc = json.loads(out)
    assert list(doc) == ["input", "error"] and set(doc["error"]) == {"code", "message"}
    assert doc["error"]["code"] == code
    assert doc["input"] is None or doc["input"].strip() == ""
    assert err.count(b"\n") == 1 and err.startswith(b"error: ") and b"Traceback" not in err
    rc, out, err = tlslab(input=data)
    assert rc == 2 and out == b"" and err.startswith(b"error: ")


def test_empty_argument_is_bad_input():
    rc, out, err = tlslab("")
    assert rc == 2 and err.startswith("error: the input is empty")


def test_an_argument_that_is_not_utf8_is_bad_input():
    proc = subprocess.run([os.fsencode(sys.executable), b"-m", b"tlslab", b"explain", b"--json",
                           b"unable to get local issuer certificate \xff\xfe"],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["code"] == "binary-input"


def test_a_10_mb_paste_is_read_up_to_the_limit_only():
    head = b"curl: (60) SSL certificate problem: certificate has expired\n"
    tail_message = b"\nNET::ERR_SSL_VERSION_OR_CIPHER_MISMATCH\n"
    data = head + b"log line without meaning\n" * (10 * 1024 * 1024 // 25) + tail_message
    assert len(data) > 10 * 1024 * 1024
    start = time.monotonic()
    rc, out, err = tlslab("--json", input=data, timeout=60)
    elapsed = time.monotonic() - start
    assert rc == 0, err
    doc = json.loads(out)
    assert len(doc["input"].encode()) <= MAX_INPUT
    assert [c["code"] for c in doc["causes"]] == ["expired"]     # the tail was never read
    assert b"only its first 64 KiB were read" in err
    assert elapsed < 20, elapsed


def test_escape_sequences_in_the_input_never_reach_the_terminal():
    rc, out, err = tlslab("\x1b]0;owned\x07\x1b[2JPKIX path building failed \x1b[31m")
    assert rc == 0
    assert "\x1b" not in out + err


def test_help_has_examples_and_exit_codes():
    rc, out, err = tlslab("--help")
    assert rc == 0, err
    text = " ".join(out.split())
    for needle in ("Examples", "tlslab explain", "Exit codes", "bad input", "--json", "64 KiB",
                   '"matched"', "stdin"):
        assert needle in text, needle


def test_an_endless_stdin_does_not_hang():
    """`some-log-producer | tlslab explain`: the command reads its 64 KiB and answers
    without waiting for the end of the stream (a reader of everything would never return)."""
    writer = subprocess.Popen([sys.executable, "-c",
                               "import sys\nline = b'SSL_ERROR_RX_RECORD_TOO_LONG log noise\\n' * 2000\n"
                               "try:\n    while True: sys.stdout.buffer.write(line)\n"
                               "except (BrokenPipeError, OSError): pass"],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "tlslab", "explain", "--json"], stdin=writer.stdout,
                              capture_output=True, timeout=30)
    finally:
        writer.stdout.close()
        writer.kill()
        writer.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["causes"][0]["code"] == "not-tls" and len(doc["input"].encode()) <= MAX_INPUT
    assert b"64 KiB" in proc.stderr


def test_the_profile_follows_the_evidence_for_the_first_cause():
    """s_client's long summary line says little about the client; the short alert line is
    what makes this an SNI problem, so its profile wins."""
    text = ("SSL handshake has read 7 bytes and written 315 bytes\n"
            "801BD36A827F0000:error:0A000458:SSL routines:ssl3_read_bytes:tlsv1 unrecognized name:"
            "../ssl/record/rec_layer_s3.c:1601:SSL alert number 112")
    r = explain(text)
    assert r.causes[0].code == "sni-required" and r.profile == "no-sni"
    assert r.diagnose == "tlslab diagnose HOST:PORT --profile no-sni"
