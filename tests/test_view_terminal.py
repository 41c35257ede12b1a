"""What a newcomer meets in the terminal (issue 13, "What a newcomer met today"), and the
illustrated view of ``connect --trace``: records taken apart, fields with their length
prefixes and explanations, long values folded, the key schedule; ``--no-color``/NO_COLOR,
the terminal's width, pipes; ``--lang zh``; ``--insecure`` made visible; the serve log of
a client that closed normally.

Every server is in-process on 127.0.0.1.
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time

import pytest
from conftest import run_bounded
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

import tlslab
from tlslab.cli.main import app, http_handler
from tlslab.io.blocking import connect as tls_connect, make_server
from tlslab.workbench.certgen import make_throwaway_chain

#: Python's spelling leaking into user output: reprs of dicts/lists, None/True/False,
#: engine class names, enum member names
REPRS = re.compile(r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|\bCertificate12\b|\bCertificateVerify12\b|"
                   r"\bNewSessionTicket12\b|\bUnknownCA\b|\bBadCertificate\b|\bTLSv1_[0-3]\b|"
                   r"<[a-zA-Z_.]+ object at")
ANSI = re.compile(r"\x1b\[")
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-7]|9[0-7]|38;[25])[;m]")


def tlslab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tlslab", *args]


def _start(config, log=None):
    srv = make_server("127.0.0.1", 0, config, http_handler, log=log or (lambda line: None),
                      handshake_timeout=5, io_timeout=5)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv, t


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tlslab server (TLS 1.3 and 1.2, tickets without 0-RTT) and its CA file."""
    chain, key, ca = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    ca_path = tmp_path_factory.mktemp("view") / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(Encoding.PEM))
    log: list[str] = []
    srv, t = _start(tlslab.ServerConfig(certificate_chain=chain, private_key=key,
                                        alpn_protocols=["http/1.1"]), log.append)
    yield srv.port, str(ca_path), log
    srv.shutdown()
    srv.server_close()
    t.join(5)


def run(args: list[str], columns: int = 100, **env) -> "tuple[int, str, str]":
    env = {"COLUMNS": str(columns), "NO_COLOR": None, "FORCE_COLOR": None, **env}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def _fits(text: str, columns: int) -> None:
    for line in text.splitlines():
        assert len(line) <= columns, f"{len(line)} > {columns}: {line!r}"


# --------------------------------------------------------------------------- the default view

def test_default_view_words_not_reprs_and_one_handshake_time(served):
    port, ca, _ = served
    for args in (["--tls", "1.3"], ["--tls", "1.2"]):
        rc, out, err = run(["connect", f"127.0.0.1:{port}", "--ca-file", ca, "--servername",
                            "localhost", "--timeout", "5", *args])
        assert rc == 0, out + err
        assert not REPRS.search(out), REPRS.search(out).group(0)
        assert out.count("handshake time") == 1 and "timing" not in out
        assert "verified: chains to a trusted CA" in out
        if "1.2" in args:
            assert "Certificate " in out and "Certificate12" not in out


def test_insecure_is_visible_in_the_summary_and_the_json(served):
    port, _, _ = served
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--timeout", "5"])
    assert rc == 0, out + err
    assert "NOT VERIFIED (--insecure)" in out
    # the throwaway CA is in no system trust store: say what verification would have said
    assert "would have failed" in out
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--json", "--timeout", "5"])
    doc = json.loads(out)
    assert doc["verified"] is False
    wf = doc["verification"]["would_fail"]
    assert wf["code"] in ("untrusted-root", "missing-intermediate", "self-signed") and wf["reason"]
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--ca-file", served[1], "--servername",
                        "localhost", "--json", "--timeout", "5"])
    assert json.loads(out)["verified"] is True


def test_failed_connect_shows_where_it_broke(served):
    port, ca, _ = served
    import os
    rc, out, err = run_bounded(tlslab_cmd("connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                          "--servername", "wrong.example", "--timeout", "5"),
                               timeout=60, env={**os.environ, "COLUMNS": "100"})
    assert rc == 1
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: handshake failed"), err
    # the handshake up to the failure, where it broke, the cause with its evidence
    for needle in ("ClientHello", "ServerHello", "Certificate", "Where it broke",
                   "after Certificate (server)", "WAIT_CERT_CR", "hostname-mismatch",
                   "evidence", "wrong.example", "handshake failed"):
        assert needle in out, needle
    # the alert went out under the client's handshake key, not "plaintext"
    alert = next(l for l in out.splitlines() if "bad_certificate (fatal)" in l)
    assert "client handshake key" in alert and "plaintext" not in alert
    assert not REPRS.search(out), REPRS.search(out).group(0)


def test_labels_use_the_width_and_output_fits_it(served):
    port, _, _ = served
    for columns in (80, 120, 200):
        rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--timeout", "5"],
                           columns=columns)
        assert rc == 0
        _fits(out, columns)
        assert "…" not in out.replace("… (+", "")  # nothing cut short, lists excepted
    # on a wide terminal a long label stays on one line
    assert any("certificate NOT verified (--insecure)" in l for l in out.splitlines())
    # a long identifier is never broken in the middle
    assert "TLS_AES_128_GCM_SHA256" in out


def test_no_color_and_pipes(served):
    port, _, _ = served
    args = ["connect", f"127.0.0.1:{port}", "--insecure", "--timeout", "5"]
    rc, out, _ = run(args, FORCE_COLOR="1")
    assert COLOUR.search(out)  # the check below can see colours when there are some
    rc, out, _ = run([*args, "--no-color"], FORCE_COLOR="1")
    assert rc == 0 and not COLOUR.search(out)
    rc, out, _ = run(args, FORCE_COLOR="1", NO_COLOR="1")
    assert rc == 0 and not COLOUR.search(out)
    # a pipe (a real subprocess): no escape sequences at all
    rc, out, err = run_bounded(tlslab_cmd(*args), timeout=60)
    assert rc == 0 and out and not ANSI.search(out), out[:200]


# --------------------------------------------------------------------------- --trace

def test_trace_accounts_for_the_record_layer(served):
    port, ca, _ = served
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--ca-file", ca, "--servername",
                        "localhost", "--trace", "--tls", "1.3", "--timeout", "5"], columns=160)
    assert rc == 0, out + err
    # the 5-byte header of records sent and received, decoded
    assert re.search(r"C → S\s+record handshake, \d+ bytes\s+\[plaintext\]", out)
    assert re.search(r"C ← S\s+record handshake, \d+ bytes\s+\[server handshake key\]", out)
    assert re.search(r"16\s+content type 22 = handshake", out)
    assert re.search(r"17\s+content type 23 = application_data", out)  # outer type of TLS 1.3
    assert re.search(r"03 03\s+legacy_record_version 0x0303", out)
    # what a protected record holds, from its bytes: ciphertext (with the inner content
    # type inside), AEAD tag
    assert re.search(r"encrypted_record, \d+ bytes: content \+ inner type handshake", out)
    assert "AEAD tag, 16 bytes" in out
    assert "C ← S  record handshake" in out and "C → S  record handshake" in out
    # length prefixes of opaque fields, as for lists; explanations with their RFC section
    assert re.search(r"host_name\s+the server's DNS name.*\(RFC 6066 §3\)", out)
    assert re.search(r"length = 9\s+00 09", out)
    assert re.search(r'value = "localhost"', out)
    assert "legacy_version = TLS 1.2" in out
    # states in words; the key schedule with what each key protected
    assert "state START → WAIT_SH (waiting for the ServerHello)" in out
    assert "Key schedule (RFC 8446 §7.1)" in out
    assert re.search(r"server_handshake_traffic_secret \(32 bytes\)\n\s+from: handshake_secret", out)
    assert re.search(r"protects: \d+ record\(s\) received: server EncryptedExtensions", out)
    assert not REPRS.search(out), REPRS.search(out).group(0)
    _fits(out, 160)


def test_trace_folds_long_values_and_full_unfolds(served):
    port, _, _ = served
    args = ["connect", f"127.0.0.1:{port}", "--insecure", "--trace", "--group", "secp384r1",
            "--timeout", "5"]
    rc, folded, _ = run(args, columns=120)
    assert rc == 0
    # the P-384 key share is 97 bytes: folded to 32 and a line saying how many more
    assert "… 65 more bytes (--full shows them)" in folded
    rc, full, _ = run([*args, "--full"], columns=120)
    assert rc == 0 and "more bytes (--full" not in full
    assert len(full.splitlines()) > len(folded.splitlines())


def test_keylog_says_where_it_wrote(served, tmp_path):
    port, _, _ = served
    keylog = tmp_path / "keys.log"
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--keylog", str(keylog),
                        "--timeout", "5"])
    assert rc == 0
    assert f"keys written to {keylog}" in out and keylog.stat().st_size > 0
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--keylog", str(keylog),
                        "--json", "--timeout", "5"])
    assert json.loads(out)["keylog_file"] == str(keylog)  # stdout stays pure JSON
    assert f"keys written to {keylog}" in err


def test_reconnect_early_data_without_0rtt_says_why(served):
    port, _, _ = served
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--reconnect", "1",
                        "--early-data", "hello", "--timeout", "5"], columns=160)
    assert rc == 0, out + err
    assert "the server's tickets do not allow 0-RTT" in out
    assert "no ticket from an earlier connection" in out
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--insecure", "--reconnect", "1",
                        "--early-data", "hello", "--json", "--timeout", "5"])
    doc = json.loads(out)
    assert "do not allow 0-RTT" in doc["reconnections"][0]["early_data_note"]


# --------------------------------------------------------------------------- languages

def test_lang_zh_from_the_data_file(served):
    port, ca, _ = served
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--ca-file", ca, "--servername",
                        "localhost", "--lang", "zh", "--trace", "--timeout", "5"], columns=140)
    assert rc == 0, out + err
    for needle in ("握手完成", "密码套件", "客户端握手密钥", "等待 ServerHello", "32 个随机字节",
                   "密钥调度（RFC 8446 §7.1）"):
        assert needle in out, needle
    for english in ("handshake complete", "waiting for the ServerHello", "32 random bytes"):
        assert english not in out, english
    rc, out, err = run(["connect", f"127.0.0.1:{port}", "--lang", "xx"])
    assert rc == 2 and "--lang xx: unknown language" in err


def test_demo_lang_zh():
    rc, out, err = run(["demo", "--handshake-only", "--lang", "zh"], columns=120)
    assert rc == 0, out + err
    assert "客户端眼中的握手" in out and "客户端提出方案" in out and "握手完成" in out


def test_texts_are_data_and_complete():
    """Every text the views ask for exists in English; every Chinese key has an English one."""
    import pathlib
    import tomllib

    import tlslab.view as view
    root = pathlib.Path(view.__file__).parent
    en = tomllib.loads((root / "texts" / "en.toml").read_text("utf-8"))
    zh = tomllib.loads((root / "texts" / "zh.toml").read_text("utf-8"))
    for section, keys in zh.items():
        assert section in en, section
        extra = set(keys) - set(en[section])
        assert not extra, f"[{section}] keys only in zh.toml: {extra}"
    asked = set()
    for path in list(root.glob("*.py")) + [root.parent / "cli" / "main.py", root.parent / "cli" / "demo.py"]:
        asked |= set(re.findall(r"""\bT\.ui\(\s*["']([a-z0-9_]+)["']""", path.read_text("utf-8")))
        asked |= set(re.findall(r"""texts\(\)\.ui\(\s*["']([a-z0-9_]+)["']""", path.read_text("utf-8")))
    assert len(asked) > 50
    asked = {k for k in asked if not k.endswith("_")}  # "key_" + who ...: built keys
    missing = asked - set(en["ui"])
    assert not missing, missing
    untranslated = set(en["ui"]) - set(zh["ui"]) - {"early_data_none", "lang_note"}
    assert not untranslated, untranslated
    assert set(en["messages"]) == set(zh["messages"]) and set(en["fields"]) == set(zh["fields"])
    assert set(en["states"]) == set(zh["states"])


# --------------------------------------------------------------------------- serve's log

def test_serve_log_after_a_client_that_closed_normally(served):
    port, _, log = served
    before = len(log)
    # a client that says something that is not HTTP and closes at once (close_notify):
    # the server's answer finds the connection closed
    with tls_connect("127.0.0.1", port, server_name="localhost", insecure=True, timeout=5) as s:
        s.send(b"hello\n")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("closed by the client" in l or " error:" in l
                                                  for l in log[before:]):
        time.sleep(0.05)
    lines = log[before:]
    assert any("closed by the client (close_notify) before the answer was sent" in l
               for l in lines), lines
    assert not any("ConnectionError" in l for l in lines), lines
