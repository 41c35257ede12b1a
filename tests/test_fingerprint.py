"""JA3 and JA4 (tlslab.profiles.fingerprint), the closest profile, and ``tlslab fingerprint``.

Reference values, and where they come from:
- JA4: the worked example of FoxIO's specification, technical_details/JA4.md (BSD-3-Clause,
  https://github.com/FoxIO-LLC/ja4/blob/main/LICENSE-JA4), rebuilt here as a ClientHello
  with the same suites, extensions and signature algorithms, and its ALPN examples;
  FoxIO's published test output for their reference captures when a checkout of
  https://github.com/FoxIO-LLC/ja4 is named by $TLSLAB_JA4_REFERENCE (the captures carry
  no licence of their own, so they are read from there, not copied here).
- JA3: the two examples of https://github.com/salesforce/ja3 README (BSD-3-Clause),
  rebuilt as ClientHellos; the ja3_string of the 21 recorded ClientHellos of
  ../shared/peers/clienthellos; tshark's tls.handshake.ja3 on ../shared/peers/captures.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_bounded
from tlslab.capture import hellos_in_file
from tlslab.proto.extensions import (ApplicationSettings, CompressCertificate, ECPointFormats,
                                     Empty, Extension, KeyShareCH, KeyShareEntry, NamedGroupList,
                                     ProtocolNameList, PskKeyExchangeModes, RawBody,
                                     RenegotiationInfo, ServerName, ServerNameList,
                                     SignatureSchemeList, StatusRequest, SupportedVersionsCH)
from tlslab.proto.messages import ClientHello
from tlslab.profiles.fingerprint import (THRESHOLD, KnownHello, closest_profiles, fingerprint, ja3,
                                         ja4, known_hellos, similarity)

# --------------------------------------------------------------------------- building hellos

SPEC_SUITES = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
               0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
SPEC_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def _body(ext_type: int, alpn=(b"h2", b"http/1.1"), sigalgs=SPEC_SIGALGS, versions=(0x0304, 0x0303),
          groups=(0x001D, 0x0017, 0x0018)):
    """An extension body built with the engine's codec classes."""
    return {
        0x0000: lambda: ServerNameList(server_name_list=[ServerName(name_type=0, host_name=b"example.com")]),
        0x0005: lambda: StatusRequest(status_type=1, responder_id_list=b"", request_extensions=b""),
        0x000A: lambda: NamedGroupList(named_group_list=list(groups)),
        0x000B: lambda: ECPointFormats(ec_point_format_list=[0]),
        0x000D: lambda: SignatureSchemeList(supported_signature_algorithms=list(sigalgs)),
        0x0010: lambda: ProtocolNameList(protocol_name_list=list(alpn)),
        0x0012: Empty, 0x0017: Empty,
        0x0015: lambda: RawBody(data=bytes(12)),
        0x001B: lambda: CompressCertificate(algorithms=[2]),
        0x0023: lambda: RawBody(data=b""),
        0x002B: lambda: SupportedVersionsCH(versions=list(versions)),
        0x002D: lambda: PskKeyExchangeModes(ke_modes=[1]),
        0x0039: lambda: RawBody(data=bytes.fromhex("0404c0000000")),  # QUIC transport parameters
        0x0033: lambda: KeyShareCH(client_shares=[KeyShareEntry(group=0x001D, key_exchange=bytes(32))]),
        0x4469: lambda: ApplicationSettings(supported_protocols=[b"h2"]),
        0xFF01: lambda: RenegotiationInfo(renegotiated_connection=b""),
    }[ext_type]()


def make_hello(suites, ext_types, legacy_version=0x0303, **bodies) -> ClientHello:
    """A ClientHello built and re-parsed by the engine's codec; ``ext_types`` None: no
    extensions block at all (SSL 3.0 / TLS 1.0 style); a GREASE type gets an empty body."""
    exts = None
    if ext_types is not None:
        exts = [Extension(t, data=b"") if (t & 0x0F0F) == 0x0A0A else Extension(t, _body(t, **bodies))
                for t in ext_types]
    hello = ClientHello(legacy_version=legacy_version, random=bytes(32), legacy_session_id=bytes(32),
                        cipher_suites=list(suites), legacy_compression_methods=b"\x00",
                        extensions=exts)
    return ClientHello.parse(hello.encode())


SPEC_EXTS = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005, 0x0023, 0x0012,
             0x002B, 0xFF01, 0x000B, 0x000A, 0x0015]


def spec_hello(**kw) -> ClientHello:
    return make_hello(SPEC_SUITES, SPEC_EXTS, **kw)


# --------------------------------------------------------------------------- JA4: the specification

def test_ja4_specification_example():
    """technical_details/JA4.md, "Example" and "Raw Output"."""
    f = ja4(spec_hello())
    assert f.fingerprint == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert f.raw == ("t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,"
                     "cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,"
                     "ff01_0403,0804,0401,0503,0805,0501,0806,0601")
    assert f.original_raw == (
        "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
        "001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_"
        "0403,0804,0401,0503,0805,0501,0806,0601")
    assert f.original == "t13d1516h2_acb858a92679_18f69afefd3d"


def test_grease_changes_neither_fingerprint():
    """RFC 8701 values anywhere (suites, extensions, groups, versions) are left out."""
    plain = spec_hello()
    greased = make_hello([0x2A2A] + SPEC_SUITES, [0x0A0A] + SPEC_EXTS + [0xFAFA],
                         versions=(0x5A5A, 0x0304, 0x0303), groups=(0x6A6A, 0x001D, 0x0017, 0x0018))
    assert ja4(greased) == ja4(plain)
    assert ja3(greased) == ja3(plain)


@pytest.mark.parametrize("alpn, chars", [
    # JA4.md "ALPN Extension Value", including its examples of non-alphanumeric values
    ((b"h2",), "h2"), ((b"http/1.1", b"h2"), "h1"), ((b"a",), "aa"), ((b"\xab",), "ab"),
    ((b"\x20",), "20"), ((b"\xab\xcd",), "ad"), ((b"\x20\x61",), "21"), ((b"\x30\xab",), "3b"),
    ((b"\x61\x20",), "60"), ((b"\x30\x31\xab\xcd",), "3d"), ((b"\x30\xab\xcd\x31",), "01"),
])
def test_ja4_alpn_characters(alpn, chars):
    assert ja4(spec_hello(alpn=alpn)).fingerprint[8:10] == chars


def test_ja4_a_part_rules():
    no_alpn = make_hello(SPEC_SUITES, [e for e in SPEC_EXTS if e != 0x0010])
    assert ja4(no_alpn).fingerprint.startswith("t13d151500_")
    no_sni = make_hello(SPEC_SUITES, [e for e in SPEC_EXTS if e != 0x0000])
    assert ja4(no_sni).fingerprint.startswith("t13i1515h2_")
    # without supported_versions, legacy_version decides; the record version never does
    tls10 = make_hello([0x002F], [0x000A], legacy_version=0x0301)
    assert ja4(tls10).fingerprint.startswith("t10i0101")
    assert ja4(make_hello([0x002F], None, legacy_version=0x0300)).fingerprint == \
        "ts3i010000_" + hashlib.sha256(b"002f").hexdigest()[:12] + "_000000000000"
    many = make_hello(list(range(0x0100, 0x0100 + 120)), [0x000A])
    assert ja4(many).fingerprint[4:6] == "99"
    # a GREASE-only suite list hashes to zeros, not to the hash of nothing
    assert ja4(make_hello([0x0A0A], [0x000A])).fingerprint.split("_")[1] == "000000000000"
    # QUIC: inferred from quic_transport_parameters, or said explicitly
    quic = make_hello(SPEC_SUITES, SPEC_EXTS[:-1] + [0x0039])
    assert ja4(quic).fingerprint[0] == "q" and ja4(quic, "t").fingerprint[0] == "t"


# --------------------------------------------------------------------------- JA3: the README

def test_ja3_readme_examples():
    """github.com/salesforce/ja3 README, "How it works"."""
    with_exts = make_hello([47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
                           [0x0000, 0x000A, 0x000B], legacy_version=0x0301,
                           groups=(23, 24, 25))
    f = ja3(with_exts)
    assert f.string == "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
    assert f.hash == "ada70206e40642a3e4461f35503241d5"
    bare = make_hello([4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], None, legacy_version=0x0301)
    f = ja3(bare)
    assert f.string == "769,4-5-10-9-100-98-3-6-19-18-99,,,"
    assert f.hash == "de350869b8c85de67a350c8d186f11e6"


# --------------------------------------------------------------------------- recorded hellos

def _recorded(peers_dir: Path) -> list[Path]:
    files = sorted((peers_dir / "clienthellos").glob("*.bin"))
    if not files:
        pytest.skip(f"no recorded ClientHellos in {peers_dir / 'clienthellos'}")
    return files


def test_recorded_client_hellos_ja3_strings(peers_dir):
    checked = 0
    for path in _recorded(peers_dir):
        meta = json.loads(path.with_suffix(".json").read_text())
        (found,) = hellos_in_file(path).hellos
        f = fingerprint(found.hello)
        assert f.ja3.string == meta["summary"]["ja3_string"], path.name
        assert f.ja3.hash == hashlib.md5(f.ja3.string.encode()).hexdigest()
        assert re.fullmatch(r"t(13|12|11|10)[di]\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}",
                            f.ja4.fingerprint), (path.name, f.ja4.fingerprint)
        checked += 1
    assert checked >= 20


def test_ja3_equals_tsharks_on_the_shared_captures(peers_dir):
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (Debian package tshark): nothing to compare with")
    captures = sorted((peers_dir / "captures").glob("*.pcap"))
    if not captures:
        pytest.skip("no shared captures")
    compared = 0
    for path in captures:
        out = subprocess.run([tshark, "-r", str(path), "-Y", "tls.handshake.type == 1", "-T",
                              "fields", "-e", "tls.handshake.ja3_full", "-e", "tls.handshake.ja3"],
                             capture_output=True, text=True, timeout=60).stdout
        theirs = [tuple(line.split("\t")) for line in out.splitlines() if line.strip()]
        ours = [(ja3(h.hello).string, ja3(h.hello).hash) for h in hellos_in_file(path).hellos]
        assert ours == theirs, path.name
        compared += len(ours)
    assert compared >= 10


# --------------------------------------------------------------------------- FoxIO's reference output

def _ja4_reference() -> Path:
    ref = os.environ.get("TLSLAB_JA4_REFERENCE")
    if not ref:
        pytest.skip("set TLSLAB_JA4_REFERENCE to a checkout of github.com/FoxIO-LLC/ja4 to check "
                    "JA4 against FoxIO's test output for their captures (not copied here: the "
                    "captures carry no licence of their own)")
    path = Path(ref)
    if not (path / "python" / "test" / "testdata").is_dir() or not (path / "pcap").is_dir():
        pytest.skip(f"{path} is not a checkout of FoxIO-LLC/ja4 (no pcap/ and python/test/testdata/)")
    return path


def _endpoint(host: str, port) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def test_ja4_against_foxio_reference_output():
    """Every JA4, JA4_r, JA4_o and JA4_ro that FoxIO's python/test/testdata gives for a TLS
    over TCP ClientHello of their pcap/ directory.  One deliberate difference: a first ALPN
    value that is not ASCII alphanumeric gives "99" in their (older) output, the hex digits
    in their specification, which we follow."""
    ref = _ja4_reference()
    compared = deviations = 0
    for expected_file in sorted((ref / "python" / "test" / "testdata").glob("*.json")):
        capture = ref / "pcap" / expected_file.name[:-len(".json")]
        if not capture.is_file():
            continue
        entries = json.loads(expected_file.read_text())
        by_connection: dict[str, list] = {}
        for h in hellos_in_file(capture).hellos:
            by_connection.setdefault(f"{h.connection.client} {h.connection.server}", []).append(h)
        for e in entries:
            keys = [k for k in e if re.fullmatch(r"JA4(_r|_o|_ro)?\.\d+", k)]
            if not keys or any(str(e[k]).startswith("q") for k in keys):
                continue  # QUIC is not read from captures
            hellos = by_connection.get(f"{_endpoint(e['src'], e['srcport'])} "
                                       f"{_endpoint(e['dst'], e['dstport'])}", [])
            for k in keys:
                kind, n = k.split(".")
                assert int(n) <= len(hellos), (capture.name, e["stream"], k)
                f = ja4(hellos[int(n) - 1].hello)
                ours = {"JA4": f.fingerprint, "JA4_r": f.raw, "JA4_o": f.original,
                        "JA4_ro": f.original_raw}[kind]
                if capture.name == "tls-non-ascii-alpn.pcapng":
                    assert ours[8:10] == "bd" and e[k][8:10] == "99"
                    ours, deviations = ours[:8] + "99" + ours[10:], deviations + 1
                assert ours == e[k], (capture.name, e["stream"], k)
                compared += 1
    assert compared >= 600 and deviations == 4


# --------------------------------------------------------------------------- closest profile

def _known(peers_dir: Path, exclude=()) -> list[KnownHello]:
    out = []
    for path in _recorded(peers_dir):
        if path.stem in exclude:
            continue
        hello = hellos_in_file(path).hellos[0].hello
        out.append(KnownHello(path.stem, path.stem.split("_")[0], "", hello))
    return out


def test_closest_is_itself_by_ja4(peers_dir):
    known = _known(peers_dir)
    for k in known:
        best = closest_profiles(k.hello, known)[0]
        assert best.exact and best.score == 1.0
        assert ja4(k.hello).fingerprint == ja4(next(x.hello for x in known if x.name == best.name)).fingerprint


def test_nearest_by_similarity(peers_dir):
    known = _known(peers_dir, exclude=("python_ssl_default",))
    python = hellos_in_file(peers_dir / "clienthellos" / "python_ssl_default.bin").hellos[0].hello
    best = closest_profiles(python, known)[0]
    assert not best.exact and best.name.startswith("openssl_s_client") and best.score >= THRESHOLD
    assert best.differences and all(isinstance(d, str) for d in best.differences)
    # a browser against non-browser clients only: nothing is close
    chrome = hellos_in_file(peers_dir / "clienthellos" / "curl_cffi_chrome.bin").hellos[0].hello
    others = _known(peers_dir, exclude=("curl_cffi_chrome", "curl_cffi_firefox", "curl_cffi_safari"))
    assert closest_profiles(chrome, others)[0].score < THRESHOLD


def test_similarity_ignores_extension_order_and_circumstance():
    """Chrome sends its extensions in a random order; SNI and padding depend on the target."""
    a = spec_hello()
    shuffled = make_hello(SPEC_SUITES, list(reversed(SPEC_EXTS)))
    assert ja4(a).fingerprint == ja4(shuffled).fingerprint
    assert similarity(a, shuffled)[0] > 0.97
    by_ip = make_hello(SPEC_SUITES, [e for e in SPEC_EXTS if e not in (0x0000, 0x0015)])
    assert similarity(a, by_ip)[0] == pytest.approx(1.0)
    fewer = make_hello(SPEC_SUITES[:3], SPEC_EXTS)
    score, diffs = similarity(a, fewer)
    assert score < similarity(a, shuffled)[0]
    assert any(d.startswith("cipher suites: +") and "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" in d
               for d in diffs)


def test_builtin_profiles_with_a_recorded_hello_match_themselves():
    known = known_hellos()
    for k in known:
        best = closest_profiles(k.hello, known)[0]
        assert best.exact, k.name


# --------------------------------------------------------------------------- the command

def tlslab(*args: str):
    return run_bounded([sys.executable, "-m", "tlslab", "fingerprint", *args], timeout=60)


def _clean(out: str, err: str) -> None:
    assert "Traceback" not in out + err and "ClientHello(" not in out + err, out + err


def test_cli_record_hex_and_handshake_give_the_same_answer(peers_dir, tmp_path):
    path = peers_dir / "clienthellos" / "curl_default.bin"
    meta = json.loads(path.with_suffix(".json").read_text())
    record = path.read_bytes()
    hex_file = tmp_path / "hello.hex"
    hex_file.write_text("\n".join(record[i:i + 16].hex(" ") for i in range(0, len(record), 16)))
    bare = tmp_path / "hello.hs"
    bare.write_bytes(record[5:])
    answers = []
    for f, fmt in ((path, "record"), (hex_file, "hex record"), (bare, "handshake")):
        rc, out, err = tlslab(str(f), "--json")
        assert rc == 0, err
        _clean(out, err)
        doc = json.loads(out)
        assert doc["kind"] == "client_hello" and doc["format"] == fmt
        (h,) = doc["client_hellos"]
        assert h["ja3"]["string"] == meta["summary"]["ja3_string"]
        assert set(h["ja4"]) == {"ja4", "ja4_r", "ja4_o", "ja4_ro"}
        assert {"closest_profile", "candidates", "offer", "connection"} <= set(h)
        answers.append((h["ja3"]["hash"], h["ja4"]["ja4"]))
    assert len(set(answers)) == 1


def test_cli_capture_human_and_json(peers_dir):
    path = peers_dir / "captures" / "tls13_hrr.pcap"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    rc, out, err = tlslab(str(path))
    assert rc == 0, err
    _clean(out, err)
    assert "JA3 hash" in out and "JA4" in out and "connection 0" in out
    assert "127.0.0.1:4433" in out
    rc, out, err = tlslab(str(path), "--json")
    doc = json.loads(out)
    assert doc["kind"] == "capture" and doc["connections"] == 1
    assert [h["connection"]["index"] for h in doc["client_hellos"]] == [0, 0]
    assert doc["client_hellos"][1]["offset"] > 0  # the second ClientHello, after the HRR


def test_cli_capture_without_tls_exits_1(tmp_path):
    from test_capture_tcp import Flow, write_pcap
    flow = Flow(sport=80).handshake().send(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").close()
    path = write_pcap(tmp_path / "http.pcap", flow.packets)
    rc, out, err = tlslab(str(path), "--json")
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["client_hellos"] == [] and doc["connections"] == 1
    rc, out, err = tlslab(str(path))
    assert rc == 1 and "no ClientHello in the 1 TCP connections" in out
    _clean(out, err)


@pytest.mark.parametrize("content, code, words", [
    (None, "missing-file", "no such file"),
    (b"hello, world\n", "not-a-client-hello-or-capture", "neither a capture"),
    (b"", "not-a-client-hello-or-capture", "empty"),
    (bytes.fromhex("010001fc0303") + bytes(30), "not-a-client-hello-or-capture", "cut short"),
    (bytes.fromhex("1703030005") + bytes(5), "not-a-client-hello-or-capture", "no ClientHello"),
    (b"16 03 01 00 zz", "not-a-client-hello-or-capture", "neither a capture"),
])
def test_cli_bad_input_exits_2(tmp_path, content, code, words):
    path = tmp_path / "input"
    if content is not None:
        path.write_bytes(content)
    rc, out, err = tlslab(str(path), "--json")
    assert rc == 2
    doc = json.loads(out)
    assert doc["error"]["code"] == code and words in doc["error"]["message"], doc
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err
    _clean(out, err)
    rc, out, err = tlslab(str(path))
    assert rc == 2 and out == "" and words in err


def test_cli_directory_and_no_argument(tmp_path):
    rc, out, err = tlslab(str(tmp_path), "--json")
    assert rc == 2 and json.loads(out)["error"]["code"] == "missing-file"
    rc, out, err = tlslab("--json")
    assert rc == 2 and "missing FILE" in json.loads(out)["error"]["message"]


def test_cli_help_has_examples():
    rc, out, err = tlslab("--help")
    assert rc == 0 and "Examples" in out and "tlslab fingerprint trace.pcapng" in out


def test_cli_names_the_profile_recorded_from_the_same_client(peers_dir):
    """The profile library's ClientHellos were recorded from the clients installed here:
    the recordings in ../shared/peers match them by JA4."""
    from tlslab.profiles import builtin_profile_names
    names = set(builtin_profile_names())
    cases = [("curl_default", "curl-7.88"), ("gnutls_cli_default", "gnutls-3.7"),
             ("node20_https_get", "node-20"), ("go_tls_dial", "go-1.19")]
    cases = [(hello, profile) for hello, profile in cases if profile in names]
    if not cases:
        pytest.skip("none of curl-7.88, gnutls-3.7, node-20, go-1.19 is in the profile library")
    for hello, profile in cases:
        rc, out, err = tlslab(str(peers_dir / "clienthellos" / f"{hello}.bin"), "--json")
        assert rc == 0, err
        best = json.loads(out)["client_hellos"][0]["closest_profile"]
        assert best["profile"] == profile and best["exact_ja4"], (hello, best)
        rc, out, err = tlslab(str(peers_dir / "clienthellos" / f"{hello}.bin"))
        assert f"{profile} (" in out and "same JA4" in out
