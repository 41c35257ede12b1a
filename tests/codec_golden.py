"""Golden outcomes of the codec: what parsing real and mutated handshake messages gives.

The fixture ``tests/data/codec_golden.json.gz`` was written by this module from the codec
as it was before parse and build were compiled from the descriptions (commit c368f88), so
``test_codec_golden.py`` can check that the compiled codec gives exactly the same objects,
field spans, summaries, rebuilt bytes and errors (type and text) on:

* every handshake message of the RFC 8448 and Illustrated TLS 1.2/1.3 vectors, of the
  real ClientHellos and decrypted peer captures in ``../shared/peers`` and of tlslab's own
  handshakes, plus hand-built messages for the types none of those holds;
* every extension body and TLS 1.2 key-exchange body in them, parsed on its own;
* deterministic mutants of each (truncated, bytes changed, inserted or deleted, mostly at
  field boundaries), with the handshake header's length kept consistent so that the body
  parser, not the header check, meets the damage.

The inputs are stored in the fixture, so the test needs nothing outside the repository.
Regenerate only from a reference commit::

    git archive c368f88 src | tar -x -C /tmp/orig
    PYTHONPATH=/tmp/orig/src python tests/codec_golden.py --write tests/data/codec_golden.json.gz
"""
from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import os
import random
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

from tlslab.proto.codec import Struct
from tlslab.proto.errors import TLSError
from tlslab.proto.extensions import Extension
from tlslab.proto.messages import HandshakeBuffer, parse_message
from tlslab.proto.messages12 import parse_message12
from tlslab.proto.trace import FieldSpan

FIXTURE = Path(__file__).resolve().parent / "data" / "codec_golden.json.gz"
SHARED = Path(os.environ.get("TLSLAB_SHARED") or Path(__file__).resolve().parents[2] / "shared")
MUTANTS = 40


# --------------------------------------------------------------------------- parsers

def parser(spec: str) -> Callable[[bytes], Any]:
    """``msg13`` / ``msg12`` / ``msg11`` (a framed handshake message) or
    ``struct:module.Class[@context]`` (a structure parsed on its own)."""
    if spec == "msg13":
        return parse_message
    if spec == "msg12":
        return lambda raw: parse_message12(raw, 0x0303)
    if spec == "msg11":
        return lambda raw: parse_message12(raw, 0x0302)
    assert spec.startswith("struct:"), spec
    path, _, ctx = spec[len("struct:"):].partition("@")
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return lambda raw: cls.parse(raw, ctx=ctx or None)


# --------------------------------------------------------------------------- outcomes

def dump(v: Any) -> Any:
    """A JSON form of a parsed value that keeps the types (bytes vs bytearray, int vs enum)
    and, for structures, the attribute order and the ``raw`` of every nested one."""
    if isinstance(v, Struct):
        d = v.__dict__
        return {"__struct": f"{type(v).__module__}.{type(v).__qualname__}",
                "keys": [k for k in d],
                "raw": dump(d.get("raw")),
                "ctx": dump(d.get("_ctx")),
                "fields": {n: dump(d.get(n, "<missing>")) for n, _ in v.FIELDS}}
    if isinstance(v, Extension):
        return {"__ext": dump(v.type), "value": dump(v.value), "data": dump(v._data)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return f"{type(v).__name__}:{bytes(v).hex()}"
    if isinstance(v, bool) or v is None or isinstance(v, str) and type(v) is str:
        return v
    if isinstance(v, int):
        return v if type(v) is int else {"__int": type(v).__name__, "v": int(v)}
    if isinstance(v, list):
        return [dump(x) for x in v]
    if isinstance(v, tuple):
        return {"__tuple": [dump(x) for x in v]}
    if isinstance(v, dict):
        return {"__dict": [[dump(k), dump(x)] for k, x in v.items()]}
    return {"__repr": repr(v)}


def dump_spans(spans: list[FieldSpan]) -> list:
    return [[s.name, s.offset, s.length, dump(s.value), dump_spans(s.children or [])] for s in spans]


def _error(e: BaseException) -> dict:
    return {"error": type(e).__name__, "message": str(e),
            "alert": int(e.alert) if isinstance(e, TLSError) else None}


def outcome(spec: str, raw: bytes) -> dict:
    """Everything observable about parsing ``raw`` with ``spec``: the objects, then (in
    this order, as a user would) name, summary, repr, spans, the rebuilt bytes."""
    try:
        obj = parser(spec)(raw)
    except Exception as e:  # noqa: BLE001 - whatever escapes is part of the behaviour
        return _error(e)
    out: dict = {"obj": dump(obj), "name": getattr(obj, "name", None)}
    for key, fn in (("summary", lambda: dump(obj.summary())), ("repr", lambda: repr(obj)),
                    ("spans", lambda: dump_spans(obj.spans)),
                    ("build", lambda: (lambda b: "same" if b == raw else b.hex())(obj.build())),
                    ("record", lambda: dump(parser_record(spec)(raw)))):
        try:
            out[key] = fn()
        except Exception as e:  # noqa: BLE001 - recorded, compared like any outcome
            out[key] = _error(e)
    out["obj_after"] = dump(obj)  # spans computed and kept: what the trace view sees later
    return out


def parser_record(spec: str) -> Callable[[bytes], Any]:
    """The same parser with spans recorded while parsing (``record=True``)."""
    if spec == "msg13":
        return lambda raw: parse_message(raw, record=True)
    if spec in ("msg12", "msg11"):
        version = 0x0303 if spec == "msg12" else 0x0302
        return lambda raw: parse_message12(raw, version, record=True)
    path, _, ctx = spec[len("struct:"):].partition("@")
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return lambda raw: cls.parse(raw, ctx=ctx or None, record=True)


def digest(o: Any) -> str:
    return hashlib.sha256(json.dumps(o, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- mutants

def _boundaries(spec: str, raw: bytes) -> list[int]:
    """Offsets where a field starts or ends (where length prefixes live), from the spans."""
    try:
        spans = parser(spec)(raw).spans
    except Exception:  # noqa: BLE001
        return []
    out: set[int] = set()

    def walk(ss):
        for s in ss:
            out.update((s.offset, s.offset + s.length - 1))
            walk(s.children or [])
    walk(spans)
    return sorted(o for o in out if 0 <= o < len(raw))


def mutants(spec: str, raw: bytes, count: int = MUTANTS) -> list[bytes]:
    """``count`` damaged copies of ``raw``, the same on every run and Python version."""
    rng = random.Random(zlib.crc32(spec.encode() + raw))
    framed = spec.startswith("msg")
    head = 4 if framed else 0
    bounds = [b - head for b in _boundaries(spec, raw) if b >= head] or [0]
    body = raw[head:]
    out = []
    for _ in range(count):
        b = bytearray(body)
        op = rng.choices(range(6), (15, 25, 30, 10, 15, 5))[0]
        j = rng.choice(bounds) if rng.random() < 0.85 else rng.randrange(max(1, len(b)))
        j = min(j, max(0, len(b) - 1))
        if op == 0:
            del b[j:]
        elif op == 1 and b:
            b[j] = rng.randrange(256)
        elif op == 2 and b:
            b[j] = (b[j] + rng.choice((1, -1, 2, -2, 0x80))) & 0xFF
        elif op == 3:
            b[j:j] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        elif op == 4 and b:
            del b[j:j + rng.randrange(1, 4)]
        else:
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3)))
        if framed:
            out.append(raw[:1] + len(b).to_bytes(3, "big") + bytes(b))
        else:
            out.append(bytes(b))
    if framed:  # the header checks themselves
        out += [raw[:3], raw[:4] + b"\x00", bytes([raw[0] ^ 0x40]) + raw[1:]]
    return out


def mutant_outcome(spec: str, raw: bytes) -> Any:
    o = outcome(spec, raw)
    return o if "error" in o else digest(o)


# --------------------------------------------------------------------------- inputs

def _walk_vectors(out: list) -> None:
    for path in sorted((SHARED / "vectors").glob("*.json")):
        doc = json.loads(path.read_text())
        spec = "msg12" if "tls12" in path.stem else "msg13"
        payloads = []
        for name, value in (doc.get("named") or {}).items():
            if isinstance(value, str):
                try:
                    payloads.append((name, bytes.fromhex(value)))
                except ValueError:
                    pass
        for i, rec in enumerate(doc.get("records") or []):
            for key in ("inner_plaintext", "content", "payload", "record"):
                v = rec.get(key)
                if not isinstance(v, str):
                    continue
                b = bytes.fromhex(v)
                if key == "inner_plaintext":
                    b = b.rstrip(b"\x00")
                    if not b or b[-1] != 22:
                        continue
                    b = b[:-1]
                elif key == "record":
                    if b[:1] != b"\x16":
                        continue
                    b = b[5:]
                payloads.append((f"record{i}.{key}", b))
        for name, b in payloads:
            buf = HandshakeBuffer()
            buf.add(b)
            try:
                msgs = buf.pop_messages()
            except TLSError:
                continue
            if len(buf):
                continue
            for j, m in enumerate(msgs):
                out.append((f"{path.stem}:{name}.{j}", spec, m))


def _walk_peers(out: list) -> None:
    for path in sorted((SHARED / "peers" / "clienthellos").glob("*.bin")):
        data, body, i = path.read_bytes(), bytearray(), 0
        while i + 5 <= len(data):
            n = int.from_bytes(data[i + 3:i + 5], "big")
            body += data[i + 5:i + 5 + n]
            i += 5 + n
        out.append((f"clienthello:{path.stem}", "msg13", bytes(body)))
    from tlslab.capture.decode import CaptureDecoder
    from tlslab.capture.keylog import read_keylog
    for path in sorted((SHARED / "peers" / "captures").glob("*.pcap")):
        keylog = read_keylog(str(path.with_suffix(".keylog")))
        for c, conn in enumerate(CaptureDecoder(str(path), keylog=keylog).connections()):
            spec = "msg13" if conn.version == "TLS 1.3" else "msg12"
            for j, m in enumerate(conn.messages):
                out.append((f"capture:{path.stem}.{c}.{j}", spec, bytes(m.raw)))


def _engine_handshakes(out: list) -> None:
    """tlslab's own messages (ML-KEM hybrid shares, PSK, tickets, ALPN, TLS 1.2)."""
    import tempfile

    from cryptography.hazmat.primitives.serialization import Encoding

    from tlslab.io.memory import handshake
    from tlslab.proto.config import ClientConfig, ServerConfig
    from tlslab.proto.tickets import TicketStore
    from tlslab.workbench.certgen import make_throwaway_chain, write_pem

    d = tempfile.mkdtemp()
    chain, key, ca = make_throwaway_chain(key_type="ecdsa-p256")
    write_pem(chain, key, f"{d}/c.pem", f"{d}/k.pem")
    Path(f"{d}/ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))

    def run(tag, cc, sc):
        c = handshake(cc, sc).client
        spec = "msg12" if c.negotiated.get("version") == "TLS 1.2" else "msg13"
        for j, e in enumerate(x for x in c.trace.entries if x.kind == "message"):
            out.append((f"engine:{tag}.{j}", spec, bytes(e.raw)))

    store = TicketStore()
    cc = ClientConfig(server_name="localhost", ca_file=f"{d}/ca.pem", session_store=store,
                      alpn_protocols=["h2", "http/1.1"])
    sc = ServerConfig.from_files(f"{d}/c.pem", f"{d}/k.pem", tickets=2, alpn_protocols=["h2"])
    run("tls13", cc, sc)
    run("tls13-resumed", cc, sc)
    run("tls12", ClientConfig(server_name="localhost", ca_file=f"{d}/ca.pem", versions=["1.2"]),
        ServerConfig.from_files(f"{d}/c.pem", f"{d}/k.pem", versions=["1.2"]))


def _hand_built(out: list) -> None:
    """Message types and extension forms no capture above holds."""
    from tlslab.proto import extensions as X
    from tlslab.proto import messages as M
    from tlslab.proto import messages12 as M12
    ET = X.ET
    ocsp = X.Extension(ET.status_request, X.CertificateStatus(status_type=1, response=b"\x30\x03\x0a\x01\x00"))
    sct = X.Extension(ET.signed_certificate_timestamp, data=b"\x00\x04\x00\x02ab")
    entry = M.CertificateEntry(cert_data=b"\x30\x82\x00\x01\x00", extensions=[ocsp, sct])
    built = [
        ("certificate-with-ocsp", "msg13", M.Certificate(certificate_request_context=b"ctx",
                                                         certificate_list=[entry, entry])),
        ("end-of-early-data", "msg13", M.EndOfEarlyData()),
        ("key-update", "msg13", M.KeyUpdate(request_update=1)),
        ("message-hash", "msg13", M.MessageHash(hash=b"\x11" * 32)),
        ("certificate-request", "msg13", M.CertificateRequest(certificate_request_context=b"", extensions=[
            X.Extension(ET.signature_algorithms, X.SignatureSchemeList(supported_signature_algorithms=[0x0403, 0x0804])),
            X.Extension(ET.certificate_authorities, X.DistinguishedNames(authorities=[b"\x30\x01\x00", b"\x30\x00"])),
            X.Extension(ET.oid_filters, X.OIDFilters(filters=[X.OIDFilter(certificate_extension_oid=b"\x55\x1d\x25",
                                                                          certificate_extension_values=b"\x30\x00")])),
            X.Extension(ET.status_request, X.Empty())])),
        ("nst-early-data", "msg13", M.NewSessionTicket(ticket_lifetime=7200, ticket_age_add=5, ticket_nonce=b"\x00",
                                                       ticket=b"T" * 40, extensions=[
            X.Extension(ET.early_data, X.EarlyDataNST(max_early_data_size=16384)),
            X.Extension(0x0A0A, data=b"")])),
        ("ee-many", "msg13", M.EncryptedExtensions(extensions=[
            X.Extension(ET.server_name, X.Empty()),
            X.Extension(ET.application_layer_protocol_negotiation, X.ProtocolNameList(protocol_name_list=[b"h2"])),
            X.Extension(ET.record_size_limit, X.RecordSizeLimit(record_size_limit=16385)),
            X.Extension(ET.max_fragment_length, X.MaxFragmentLength(max_fragment_length=2)),
            X.Extension(ET.early_data, X.Empty()),
            X.Extension(ET.supported_groups, X.NamedGroupList(named_group_list=[29, 23])),
            X.Extension(0xFFAA, data=b"zz")])),
        ("hrr-cookie", "msg13", M.ServerHello(legacy_version=0x0303, random=M.HRR_RANDOM,
                                              legacy_session_id_echo=b"\x01" * 32, cipher_suite=0x1301,
                                              legacy_compression_method=0, extensions=[
            X.Extension(ET.supported_versions, X.SupportedVersionsSH(selected_version=0x0304)),
            X.Extension(ET.key_share, X.KeyShareHRR(selected_group=23)),
            X.Extension(ET.cookie, X.Cookie(cookie=b"C" * 20))])),
        ("sh12-no-extensions", "msg12", M.ServerHello(legacy_version=0x0303, random=b"\x02" * 32,
                                                      legacy_session_id_echo=b"", cipher_suite=0xC02F,
                                                      legacy_compression_method=0, extensions=None)),
        ("ch12-no-extensions", "msg12", M.ClientHello(legacy_version=0x0303, random=b"\x03" * 32,
                                                      legacy_session_id=b"", cipher_suites=[0xC02F, 0x00FF],
                                                      legacy_compression_methods=b"\x00", extensions=None)),
        ("hello-request", "msg12", M12.HelloRequest()),
        ("certificate-request12", "msg12", M12.CertificateRequest12(
            certificate_types=[1, 64], supported_signature_algorithms=[0x0403, 0x0804, 0x0401],
            certificate_authorities=[b"\x30\x03abc", b"\x30\x00"])),
        ("certificate-request11", "msg11", M12.CertificateRequest11(
            certificate_types=[1], certificate_authorities=[])),
        ("certificate-verify12", "msg12", M12.CertificateVerify12(algorithm=0x0804, signature=b"S" * 64)),
        ("certificate-verify11", "msg11", M12.CertificateVerify11(signature=b"S" * 64)),
        ("certificate-status", "msg12", M12.CertificateStatus(status_type=1, response=b"\x30\x00")),
    ]

    def ch(*exts):
        return M.ClientHello(legacy_version=0x0303, random=b"\x04" * 32, legacy_session_id=b"\x05" * 32,
                             cipher_suites=[0x1301, 0x1302], legacy_compression_methods=b"\x00",
                             extensions=[X.Extension(t, data=b) for t, b in exts])
    groups = (ET.supported_groups, b"\x00\x04\x00\x1d\x00\x17")
    built += [
        ("ch-duplicate", "msg13", ch(groups, (ET.extended_master_secret, b""), groups)),
        ("ch-duplicate-then-malformed", "msg13", ch(groups, groups, (ET.key_share, b"\x00\x05\x00\x1d"))),
        ("ch-lenient-malformed", "msg13", ch((ET.application_settings, b"\x00"), (0xFE0D, b""),
                                             (ET.status_request_v2, b"\x00\x05"), (ET.ec_point_formats, b""),
                                             (ET.encrypt_then_mac, b"x"), groups)),
        ("ch-malformed-groups", "msg13", ch((ET.supported_groups, b"\x00\x03\x00\x1d\x00"))),
        ("ee-malformed-alpn", "msg13", M.EncryptedExtensions(extensions=[
            X.Extension(ET.application_layer_protocol_negotiation, data=b"\x00\x01")])),
        ("certificate-malformed-entry-extension", "msg13", M.Certificate(
            certificate_request_context=b"", certificate_list=[M.CertificateEntry(
                cert_data=b"\x30\x00", extensions=[X.Extension(ET.status_request, data=b"\x01\x00")])])),
    ]
    for name, spec, msg in built:
        out.append((f"built:{name}", spec, msg.build()))


def _bodies(bases: list) -> list:
    """Extension bodies and TLS 1.2 key-exchange bodies of the messages, parsed on their own."""
    from tlslab.proto.extensions import body_class
    out = []
    for ident, spec, raw in bases:
        try:
            msg = parser(spec)(raw)
        except TLSError:
            continue
        ctx = getattr(type(msg), "CONTEXT", None)
        if getattr(msg, "is_hello_retry_request", False):
            ctx = "hello_retry_request"
        lists = [msg.__dict__.get("extensions") or []]
        lists += [e.extensions or [] for e in msg.__dict__.get("certificate_list") or [] if isinstance(e, Struct)]
        for exts in lists:
            for e in exts:
                cls = body_class(e.type, ctx if exts is lists[0] else "certificate")
                if cls is not None:
                    where = ctx if exts is lists[0] else "certificate"
                    out.append((f"{ident}/ext{e.type}", f"struct:{cls.__module__}.{cls.__qualname__}@{where}",
                                bytes(e.data)))
        kx = "tlslab.proto.tls12.keyexchange"
        if type(msg).__name__ == "ServerKeyExchange":
            for cls in ("ServerKeyExchangeECDHE", "ServerKeyExchangeDHE", "ServerKeyExchangeECDHE10"):
                out.append((f"{ident}/{cls}", f"struct:{kx}.{cls}", msg.body))
        if type(msg).__name__ == "ClientKeyExchange":
            for cls in ("ClientECDHPublic", "ClientDHPublic", "EncryptedPreMasterSecret"):
                out.append((f"{ident}/{cls}", f"struct:{kx}.{cls}", msg.body))
    return out


def collect() -> list[tuple[str, str, bytes]]:
    bases: list = []
    _walk_vectors(bases)
    _walk_peers(bases)
    _engine_handshakes(bases)
    _hand_built(bases)
    bases += _bodies(bases)
    seen, unique = set(), []
    for ident, spec, raw in bases:
        if (spec, raw) not in seen:
            seen.add((spec, raw))
            unique.append((ident, spec, raw))
    return unique


def load() -> dict:
    with gzip.open(FIXTURE, "rt") as f:
        return json.load(f)


def main(argv: list[str]) -> int:
    if argv[:1] != ["--write"] or len(argv) != 2:
        print(__doc__)
        return 2
    cases = []
    for ident, spec, raw in collect():
        cases.append({"id": ident, "parser": spec, "hex": raw.hex(), "outcome": outcome(spec, raw),
                      "mutants": [mutant_outcome(spec, m) for m in mutants(spec, raw)]})
    with gzip.open(argv[1], "wt") as f:
        json.dump({"reference": "c368f88", "mutants_per_case": MUTANTS, "cases": cases}, f,
                  sort_keys=True, separators=(",", ":"))
    errors = sum(1 for c in cases for m in c["mutants"] if isinstance(m, dict))
    print(f"{len(cases)} cases, {sum(len(c['mutants']) for c in cases)} mutants ({errors} errors) "
          f"-> {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
