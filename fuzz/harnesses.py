"""Coverage-guided fuzz harnesses for tlslab (issue 14, "Fuzzing that can find crashes").

Each harness is ``one_input(data: bytes) -> None``: it feeds ``data`` to one part of the
engine and raises only for a *bug*: any Python exception other than the engine's typed
``TLSError`` escaping a parser, or a connection that answered with ``internal_error``
(connection.py turns an unexpected exception into InternalError so the peer sees one
alert; for fuzz input that is a crash).  ``seeds()`` gives real inputs to start from:
the ClientHellos in ../shared/peers/clienthellos and the messages of real in-memory
handshakes (every flight of TLS 1.3 and TLS 1.2).

Run with fuzz/run.py (atheris); this module does not import atheris, so the harnesses
can also be replayed with plain Python (``python fuzz/run.py NAME --replay FILES``).
"""
from __future__ import annotations

import datetime
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.errors import InternalError, TLSError
from tlslab.proto.messages import (MESSAGE_CLASSES, CertificateRequest, ClientHello,
                                   HandshakeBuffer, NewSessionTicket, ServerHello, parse_message)
from tlslab.proto.messages12 import MESSAGE_CLASSES_12, parse_message12
from tlslab.proto.protection import RecordProtector
from tlslab.proto.record import RecordReader, plaintext_record
from tlslab.proto.server import ServerConnection

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TLSLAB_SHARED") or ROOT.parent / "shared")
CLIENTHELLOS = SHARED / "peers" / "clienthellos"
CERTS = SHARED / "peers" / "certs"
HANDSHAKE = 22


class Crash(Exception):
    """The engine answered fuzz input with internal_error (an unexpected exception)."""


# --------------------------------------------------------------------------- set-up

@lru_cache(maxsize=1)
def _pki():
    from tlslab.workbench.certgen import make_throwaway_chain
    return make_throwaway_chain()


@lru_cache(maxsize=1)
def _ca_file() -> str:
    import tempfile
    from cryptography.hazmat.primitives.serialization import Encoding
    fd, path = tempfile.mkstemp(prefix="tlslab-fuzz-ca-", suffix=".pem")
    os.write(fd, _pki()[2].public_bytes(Encoding.PEM))
    os.close(fd)
    return path


def _server(**opts) -> ServerConnection:
    return ServerConnection(_server_config(**opts))


def _client(**opts) -> ClientConnection:
    return ClientConnection(_client_config(**opts))


def _frozen(opts: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in opts.items()))


@lru_cache(maxsize=16)
def _server_config_for(key: tuple) -> ServerConfig:
    opts = {k: list(v) if isinstance(v, tuple) else v for k, v in key}
    if opts.pop("client_auth", False):
        opts["client_ca_file"] = _ca_file()
    chain, key_, _ = _pki()
    return ServerConfig(certificate_chain=chain, private_key=key_, **opts)


@lru_cache(maxsize=16)
def _client_config_for(key: tuple) -> ClientConfig:
    opts = {k: list(v) if isinstance(v, tuple) else v for k, v in key}
    # no tickets carried from one input to the next: every input starts a full handshake
    opts.setdefault("session_store", None)
    return ClientConfig(server_name="localhost", insecure=True, **opts)


# configs are built once per set of options and shared, as an application shares them
# (a config is immutable once built); building one per input tripled the cost of the
# handshake harnesses.  Each connection still gets fresh state.
def _server_config(**opts) -> ServerConfig:
    return _server_config_for(_frozen(opts))


def _client_config(**opts) -> ClientConfig:
    return _client_config_for(_frozen(opts))


def _records(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        out.append((data[i:i + 5], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def _messages(body: bytes) -> list[bytes]:
    buf = HandshakeBuffer()
    buf.add(body)
    out = []
    while (m := buf.pop_message()) is not None:
        out.append(m)
    return out


def _check(conn, data: bytes) -> None:
    if isinstance(conn.error, InternalError):
        tb = conn.internal_error_detail
        raise Crash(f"internal_error for input {data[:64].hex()}...: {conn.error}\n"
                    + (tb or ""))


def _feed(conn, data: bytes) -> None:
    conn.receive_data(data)  # an exception escaping receive_data is a crash too
    conn.data_to_send()
    _check(conn, data)


def _parse(fn: Callable, *args) -> object | None:
    try:
        m = fn(*args)
    except TLSError:
        return None
    getattr(m, "spans", None)  # the trace view of a parsed message must not fail either
    return m


# --------------------------------------------------------------------------- parsers

def record_layer(data: bytes) -> None:
    """RecordReader framing (RFC 8446 §5.1, RFC 5246 §6.2): first byte picks the mode."""
    if not data:
        return
    mode, data = data[0], data[1:]
    r = RecordReader()
    r.seen_first = bool(mode & 4)
    step = (mode >> 3) or len(data) or 1
    for i in range(0, len(data) or 1, step):
        r.add(data[i:i + step])
        try:
            while r.next_record(protected=bool(mode & 1), tls12=bool(mode & 2)) is not None:
                pass
        except TLSError:
            return


def messages13(data: bytes) -> None:
    """Every TLS 1.3 handshake message parser, via parse_message and each class directly."""
    _parse(parse_message, data)
    _parse(parse_message, data, True)  # record=True: field spans for the trace view
    if data:
        cls = MESSAGE_CLASSES.get(data[0])
        if cls is not None:
            _parse(cls.parse, data)


def hellos(data: bytes) -> None:
    """ClientHello / ServerHello (with HelloRetryRequest) / CertificateRequest / NewSessionTicket
    bodies, whatever the first byte says."""
    for cls in (ClientHello, ServerHello, CertificateRequest, NewSessionTicket):
        framed = bytes((cls.MSG_TYPE,)) + len(data).to_bytes(3, "big") + data
        _parse(cls.parse, framed)


def messages12(data: bytes) -> None:
    """Every TLS 1.0-1.2 handshake message parser (RFC 5246 §7.4, RFC 4346, RFC 4492)."""
    for version in (0x0303, 0x0301):
        _parse(parse_message12, data, version)
    _parse(parse_message12, data, 0x0303, True)
    if data:
        cls = MESSAGE_CLASSES_12.get(data[0])
        if cls is not None:
            _parse(cls.parse, data)


@lru_cache(maxsize=1)
def _trust():
    from cryptography import x509
    trust = [_pki()[2]]
    try:
        trust += x509.load_pem_x509_certificates((CERTS / "ca.pem").read_bytes())
    except (OSError, ValueError):
        pass
    return trust


def chain_analysis(data: bytes) -> None:
    """Certificate chain path building and checks (RFC 5280 §6, RFC 6125): the input is a
    TLS 1.2 certificate_list (3-byte lengths); each DER that loads joins the chain."""
    from cryptography import x509
    from tlslab.proto.certificates import verify_client_chain, verify_server_chain
    chain, ders, i = [], [], 0
    while i + 3 <= len(data) and len(chain) < 12:
        n = int.from_bytes(data[i:i + 3], "big")
        der = data[i + 3:i + 3 + n]
        i += 3 + n
        try:
            chain.append(x509.load_der_x509_certificate(der))
            ders.append(der)
        except (ValueError, x509.InvalidVersion):  # as connection.py: bad_certificate
            continue
    if not chain:
        return
    now = datetime.datetime(2026, 6, 1)
    for fn in (lambda: verify_server_chain(chain, "localhost", _trust(), now, ders),
               lambda: verify_server_chain(chain, None, _trust(), now),
               lambda: verify_client_chain(chain, _trust(), now)):
        try:
            fn()
        except TLSError:
            pass


# --------------------------------------------------------------------------- state machines

def server13_start(data: bytes) -> None:
    """A server (TLS 1.3 + 1.2) in START, fed raw bytes (seeds: real ClientHellos)."""
    _feed(_server(), data)


def client_wait_sh(data: bytes) -> None:
    """A client (TLS 1.3 + 1.2) that sent its ClientHello, fed raw bytes (ServerHello/HRR)."""
    c = _client()
    c.start_handshake()
    c.data_to_send()
    _feed(c, data)


def _client13_encrypted_setup():
    c = _client()
    c.start_handshake()
    s = _server()
    s.receive_data(c.data_to_send())
    recs = _records(s.data_to_send())
    c.receive_data(recs[0][0] + recs[0][1])  # the ServerHello record alone: WAIT_EE
    sealer = RecordProtector(s.suite, s.schedule.secrets["server_handshake_traffic_secret"])
    opener = RecordProtector(s.suite, s.schedule.secrets["server_handshake_traffic_secret"])
    flight = b"".join(opener.open(h, f)[1] for h, f in recs[1:] if h[0] == 23)
    return c, s, sealer, _messages(flight)


def client13_encrypted(data: bytes) -> None:
    """A TLS 1.3 client past ServerHello.  The first input byte says how many of the real
    server messages (EE, Certificate, CertificateVerify, Finished) go first, so the rest,
    sealed as handshake records, reaches WAIT_EE, WAIT_CERT_CR, WAIT_CV or WAIT_FINISHED."""
    if not data:
        return
    c, _, sealer, flight = _client13_encrypted_setup()
    n, body = data[0] % 4, data[1:]
    for m in flight[:n]:
        c.receive_data(sealer.seal(HANDSHAKE, m))
    _check(c, data)
    for i in range(0, len(body), 1 << 14):
        _feed(c, sealer.seal(HANDSHAKE, body[i:i + 1 << 14]) if body else b"")
    if not body:
        _feed(c, sealer.seal(HANDSHAKE, b""))


def server13_wait_finished(data: bytes) -> None:
    """A TLS 1.3 server that sent its flight, fed sealed client handshake data (WAIT_FINISHED;
    with first byte odd the server asked for a client certificate: WAIT_CERT)."""
    if not data:
        return
    c = _client()
    c.start_handshake()
    s = _server(client_auth=True) if data[0] & 1 else _server()
    s.receive_data(c.data_to_send())
    s.data_to_send()
    sealer = RecordProtector(s.suite, s.schedule.secrets["client_handshake_traffic_secret"])
    _feed(s, sealer.seal(HANDSHAKE, data[1:1 + (1 << 14)]))


def _tls12_pair(**sopts):
    c = _client(versions=["1.2"], session_store=None)
    s = _server(versions=["1.2"], tickets=0, **sopts)
    c.start_handshake()
    return c, s


def client12(data: bytes) -> None:
    """A TLS 1.2 client; the first byte says how many of the real server messages
    (ServerHello, Certificate, ServerKeyExchange, ServerHelloDone) it gets first, so the rest,
    as plaintext handshake records, reaches WAIT_SH, WAIT_CERT, WAIT_SKE or WAIT_SHD."""
    if not data:
        return
    c, s = _tls12_pair()
    s.receive_data(c.data_to_send())
    msgs = _messages(b"".join(f for _, f in _records(s.data_to_send())))
    for m in msgs[:data[0] % 4]:
        c.receive_data(plaintext_record(HANDSHAKE, m))
    _check(c, data)
    body = data[1:]
    _feed(c, b"".join(plaintext_record(HANDSHAKE, body[i:i + (1 << 14)])
                      for i in range(0, len(body), 1 << 14)) or plaintext_record(HANDSHAKE, b""))


def server12(data: bytes) -> None:
    """A TLS 1.2-only server: first byte even, in START fed raw bytes (a 1.2 ClientHello);
    odd, in WAIT_CKE fed plaintext handshake records (ClientKeyExchange, Certificate)."""
    if not data:
        return
    if data[0] & 1:
        c, s = _tls12_pair(client_auth=True) if data[0] & 2 else _tls12_pair()
        s.receive_data(c.data_to_send())
        s.data_to_send()
        _check(s, data)
        body = data[1:1 + (1 << 14)]
        _feed(s, plaintext_record(HANDSHAKE, body))
    else:
        _feed(_server(versions=["1.2"], tickets=0), data[1:])


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "record_layer": record_layer,
    "messages13": messages13,
    "hellos": hellos,
    "messages12": messages12,
    "chain_analysis": chain_analysis,
    "server13_start": server13_start,
    "client_wait_sh": client_wait_sh,
    "client13_encrypted": client13_encrypted,
    "server13_wait_finished": server13_wait_finished,
    "client12": client12,
    "server12": server12,
}


# --------------------------------------------------------------------------- seeds

def _clienthello_files() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CLIENTHELLOS.glob("*.bin"))] if CLIENTHELLOS.is_dir() else []


def _hello_messages() -> list[bytes]:
    out = []
    for raw in _clienthello_files():
        out += _messages(b"".join(f for _, f in _records(raw)))
    return out


CAPTURES = SHARED / "peers" / "captures"


@lru_cache(maxsize=1)
def _capture_flights() -> dict[str, list[bytes]]:
    """The plaintext first flights of every connection in ../shared/peers/captures/*.pcap:
    each side's bytes up to its first non-handshake record, and their handshake messages."""
    out: dict[str, list[bytes]] = {"client_bytes": [], "server_bytes": [], "client_msgs": [],
                                   "server_msgs": []}
    try:
        from tlslab.capture.tcp import open_capture
    except ImportError:
        return out
    for path in sorted(CAPTURES.glob("*.pcap")) if CAPTURES.is_dir() else []:
        try:
            conns = list(open_capture(str(path), max_stream_bytes=1 << 20).connections())
        except Exception:  # a capture we cannot read is just not a seed
            continue
        for conn in conns:
            for side in ("client", "server"):
                recs, size = [], 0
                for h, f in _records(conn.data(side)):
                    if h[0] != HANDSHAKE:
                        break
                    recs.append((h, f))
                if not recs:
                    continue
                out[f"{side}_bytes"].append(b"".join(h + f for h, f in recs))
                try:
                    out[f"{side}_msgs"] += _messages(b"".join(f for _, f in recs))
                except TLSError:
                    pass
    return out


def _pem_ders() -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    chains = []
    chain, _, ca = _pki()
    chains.append([c.public_bytes(Encoding.DER) for c in chain] + [ca.public_bytes(Encoding.DER)])
    for name in ("ecdsa-chain.pem", "client-chain.pem", "ca-bundle.pem"):
        try:
            certs = x509.load_pem_x509_certificates((CERTS / name).read_bytes())
        except (OSError, ValueError):
            continue
        chains.append([c.public_bytes(Encoding.DER) for c in certs])
    lists = [b"".join(len(d).to_bytes(3, "big") + d for d in ders) for ders in chains]
    # the TLS 1.2 Certificate messages of the captures: their body is exactly this format
    lists += [m[7:] for m in _capture_flights()["server_msgs"] if m[0] == 11 and len(m) > 7]
    return lists


@lru_cache(maxsize=1)
def _flights() -> dict[str, list[bytes]]:
    """Real handshake messages of an in-memory TLS 1.3 and a TLS 1.2 handshake."""
    c, s, _, flight13 = _client13_encrypted_setup()
    c12, s12 = _tls12_pair()
    ch12_rec = c12.data_to_send()
    s12.receive_data(ch12_rec)
    out12 = s12.data_to_send()
    msgs12 = _messages(b"".join(f for _, f in _records(out12)))
    c12.receive_data(out12)
    cflight12 = c12.data_to_send()
    cmsgs12 = [f for h, f in _records(cflight12) if h[0] == HANDSHAKE]
    c2 = _client()
    c2.start_handshake()
    ch13_rec = c2.data_to_send()
    s2 = _server()
    s2.receive_data(ch13_rec)
    out13 = s2.data_to_send()
    return {"ch13_rec": [ch13_rec], "ch12_rec": [ch12_rec], "sh13_rec": [_records(out13)[0][0] + _records(out13)[0][1]],
            "sh13": _messages(_records(out13)[0][1]), "flight13": flight13,
            "server12": msgs12, "client12": cmsgs12, "server12_out": [out12]}


def seeds(name: str) -> list[bytes]:
    f = _flights()
    hellos_ = _hello_messages()
    files = _clienthello_files()
    cap = _capture_flights()
    msgs13 = hellos_ + f["sh13"] + f["flight13"] + cap["client_msgs"] + cap["server_msgs"]
    msgs12 = f["server12"] + f["client12"] + hellos_ + cap["client_msgs"] + cap["server_msgs"]
    files = files + cap["client_bytes"]
    by_name = {
        "record_layer": [bytes((m,)) + r for r in files + f["ch13_rec"] + f["server12_out"] + cap["server_bytes"]
                         for m in (0, 1, 3, 4 | 8 * 3)],
        "messages13": msgs13,
        "hellos": [m[4:] for m in msgs13 if m[0] in (1, 2, 13, 4)],  # CH, SH/HRR, CR, NST
        "messages12": msgs12,
        "chain_analysis": _pem_ders(),
        "server13_start": files + f["ch13_rec"],
        "client_wait_sh": f["sh13_rec"] + f["server12_out"] + cap["server_bytes"],
        "client13_encrypted": [bytes((i,)) + m for i, m in enumerate(f["flight13"])],
        "server13_wait_finished": [b"\x00" + m for m in f["flight13"][-1:]] + [b"\x01" + m for m in f["flight13"][1:2]],
        "client12": [bytes((i,)) + m for i, m in enumerate(f["server12"])]
        + [b"\x00" + m for m in cap["server_msgs"]],
        "server12": [b"\x00" + r for r in files + f["ch12_rec"]] + [b"\x01" + m for m in f["client12"][:1]],
    }
    return [s for s in by_name[name] if s]
