"""TLS 1.3 interop matrix on loopback (127.0.0.1 / ::1 only): tlslab against GnuTLS, NSS,
Java JSSE, Node.js and Go crypto/tls, both directions (tlslab client → peer server, peer
client → tlslab server).  TLS 1.3 is forced on both sides.

For every peer, in both directions:

* the three TLS 1.3 cipher suites (RFC 8446 §B.4), chosen on the peer's side where the peer
  can choose them (Go cannot: there the tlslab side offers only that suite);
* the groups x25519 and secp256r1, plus x448 and ffdhe2048 where the peer has them
  (RFC 8446 §4.2.7);
* an ECDSA P-256 and an RSA leaf (RSA means rsa_pss_rsae_*, RFC 8446 §4.2.3);
* a HelloRetryRequest (RFC 8446 §4.1.4): the side that sends the ClientHello offers
  x25519 and secp256r1 but sends only an x25519 key share, the server accepts secp256r1
  only;
* a client certificate (RFC 8446 §4.3.2, §4.4.2): the server requires and verifies it.

Session resumption with a ticket (RFC 8446 §2.2, §4.6.1) is tested where the peer's API
makes it easy: ``gnutls-cli --resume --waitresumption``, Go's ClientSessionCache, a second
JSSE connection from the same SSLContext, Node's ``session`` option, ``tstclnt -L 2 -A
request``, and the tlslab client against every peer server (``selfserv``, ``gnutls-serv``,
JSSE, Node, Go).

The peer programs for TLS 1.3 are ``tests/peers/go_peer13.go``, ``node_peer13.js`` and
``JavaPeer13.java`` (built once into the same cache as the TLS 1.2 ones).  Process and
build helpers (``peers``, ``interact``, the NSS databases, the loopback shim for
``gnutls-serv``/``selfserv``) come from ``test_interop_tls12``.  A peer that is missing or
cannot be built is skipped with the reason; every process and socket is bounded in time.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_tool, run_bounded
from test_interop_openssl import HTTP_GET, TlslabServer, run_client

# fixtures are imported so that pytest finds them in this module too
from test_interop_tls12 import (  # noqa: F401
    PEERS_SRC,
    _cache_dir,
    _tool_version,
    check_served,
    check_tlslab_client,
    interact,
    ipv6_loopback,
    loopback_shim,
    nss_db,
    peers,
    pkcs12,
    shim_env,
)

from tlslab.proto.config import ClientConfig, ServerConfig, load_identity

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60),
              # ffdhe2048 is exercised on purpose; cryptography deprecates FFDH
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]

TLS13 = "TLS 1.3"
SUITES13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
SUITE_CODE = {"TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302,
              "TLS_CHACHA20_POLY1305_SHA256": 0x1303}

# tlslab (IANA) group name -> the peer's spelling; a group missing here is one the peer lacks
GROUP_NAMES = {
    "gnutls": {"x25519": "GROUP-X25519", "secp256r1": "GROUP-SECP256R1", "x448": "GROUP-X448",
               "ffdhe2048": "GROUP-FFDHE2048", "secp384r1": "GROUP-SECP384R1"},
    "nss": {"x25519": "x25519", "secp256r1": "P256", "ffdhe2048": "FF2048"},
    "java": {"x25519": "x25519", "secp256r1": "secp256r1", "x448": "x448", "ffdhe2048": "ffdhe2048",
             "secp384r1": "secp384r1"},
    "node": {"x25519": "X25519", "secp256r1": "P-256", "x448": "X448", "ffdhe2048": "ffdhe2048"},
    # Go's crypto/tls has neither X448 nor finite-field groups
    "go": {"x25519": "X25519", "secp256r1": "P256"},
}
# the groups of the matrix (secp384r1 above only serves the HRR case below)
MATRIX_GROUPS = ["x25519", "secp256r1", "x448", "ffdhe2048"]
# The HRR case as a client: GnuTLS and JSSE send two key shares, for their first group and
# the first one of the other curve family (x25519 + secp256r1 for "x25519,x448,secp256r1"),
# so secp384r1 takes the NIST-curve share; the other peers share their first group only.
HRR_CLIENT_GROUPS = {"gnutls": ["x25519", "secp384r1", "secp256r1"],
                     "java": ["x25519", "secp384r1", "secp256r1"]}
# peers whose API cannot restrict the TLS 1.3 suites (the tlslab side then offers one)
NO_SUITE_CHOICE = {"go"}
PEER_NAMES = list(GROUP_NAMES)
GNUTLS_CIPHER = {"TLS_AES_128_GCM_SHA256": "AES-128-GCM", "TLS_AES_256_GCM_SHA384": "AES-256-GCM",
                 "TLS_CHACHA20_POLY1305_SHA256": "CHACHA20-POLY1305"}


@dataclass(frozen=True)
class Case:
    """One handshake of the matrix: a suite, a group, the server's key type, or an HRR."""

    name: str
    suite: str | None = None
    group: str | None = None
    kt: str = "ecdsa"
    hrr: bool = False

    @property
    def expected_group(self) -> str | None:
        return "secp256r1" if self.hrr else self.group


def cases_for(peer: str) -> list[Case]:
    out = [Case(f"suite-{s}", suite=s) for s in SUITES13]
    out += [Case(f"group-{g}", group=g) for g in MATRIX_GROUPS if g in GROUP_NAMES[peer]]
    out += [Case("cert-rsa", kt="rsa"), Case("hrr", hrr=True)]
    return out


# (test, peer, case) -> reason: cases that hit a known engine bug stay in the matrix, skipped
KNOWN_BUGS: dict = {}


def matrix(direction: str) -> list:
    out = []
    for peer in PEER_NAMES:
        for case in cases_for(peer):
            bug = KNOWN_BUGS.get((direction, peer, case.name))
            out.append(pytest.param(peer, case, id=f"{peer}-{case.name}",
                                    marks=[pytest.mark.skip(reason=bug)] if bug else []))
    return out


# --------------------------------------------------------------------------- tlslab configs

def client13(certs_dir: Path, case: Case | None = None, peer: str = "", **options) -> ClientConfig:
    """The tlslab client for ``case``: all three suites unless the peer cannot choose, the
    case's group alone (with its key share), or x25519+secp256r1 with an x25519 share."""
    options.setdefault("versions", ["1.3"])
    if case is not None:
        if case.suite and peer in NO_SUITE_CHOICE:
            options.setdefault("cipher_suites", [case.suite])
        if case.hrr:
            options.setdefault("groups", ["x25519", "secp256r1"])
            options.setdefault("key_share_groups", ["x25519"])
        elif case.group:
            options.setdefault("groups", [case.group])
            options.setdefault("key_share_groups", [case.group])
    return ClientConfig(server_name="localhost", ca_file=str(certs_dir / "ca.pem"), **options)


def server13(certs_dir: Path, case: Case | None = None, peer: str = "", kt: str = "ecdsa",
             **options) -> ServerConfig:
    """The tlslab server for ``case``: secp256r1 only for an HRR, one suite only when the
    peer client cannot choose; otherwise tlslab's defaults (every suite, every group)."""
    options.setdefault("versions", ["1.3"])
    if case is not None:
        kt = case.kt
        if case.suite and peer in NO_SUITE_CHOICE:
            options.setdefault("cipher_suites", [case.suite])
        if case.hrr:
            options.setdefault("groups", ["secp256r1"])
    return ServerConfig.from_files(str(certs_dir / f"{kt}-chain.pem"), str(certs_dir / f"{kt}.key"),
                                   **options)


def client_identity(certs_dir: Path) -> dict:
    chain, key = load_identity(str(certs_dir / "client-chain.pem"), str(certs_dir / "client.key"))
    return {"certificate_chain": chain, "private_key": key}


def peer_groups(peer: str, case: Case, side: str) -> list[str]:
    """The groups the peer is restricted to, in its spelling ([] = its defaults).

    As a server in the HRR case it takes secp256r1 only; as a client it offers x25519 first
    and secp256r1 last, so that none of the shares it sends is for secp256r1."""
    names = GROUP_NAMES[peer]
    if case.hrr and side == "server":
        wanted = ["secp256r1"]
    elif case.hrr:
        wanted = HRR_CLIENT_GROUPS.get(peer, ["x25519", "secp256r1"])
    elif case.group:
        wanted = [case.group]
    else:
        return []
    return [names[g] for g in wanted]


def peer_suite(peer: str, case: Case) -> str | None:
    return None if peer in NO_SUITE_CHOICE else case.suite


def check_case_client(result, case: Case, marker, peer_output: str) -> None:
    """tlslab client side: the handshake, the suite, the group, HRR, the signature."""
    check_tlslab_client(result, case.suite, marker, version=TLS13, peer_output=peer_output)
    n = result.conn.negotiated
    detail = f"{n}\n{result.describe()}\n--- peer ---\n{peer_output[-2000:]}"
    if case.expected_group:
        assert n["group"] == case.expected_group, detail
    assert n["hello_retry"] is case.hrr, detail
    assert n["signature_scheme"].startswith("rsa_pss_rsae_" if case.kt == "rsa" else "ecdsa_"), detail
    sent = [e.name for e in result.conn.trace.entries if e.kind == "message" and e.direction == "sent"]
    assert sent.count("ClientHello") == (2 if case.hrr else 1), sent


def check_case_served(server: TlslabServer, case: Case, peer_output: str, index: int = 0) -> None:
    check_served(server, case.suite, peer_output, version=TLS13, index=index)
    n = server.served[index].conn.negotiated
    detail = f"{n}\n--- peer ---\n{peer_output[-2000:]}"
    if case.expected_group:
        assert n["group"] == case.expected_group, detail
    assert n["hello_retry"] is case.hrr, detail
    assert n["signature_scheme"].startswith("rsa_pss_rsae_" if case.kt == "rsa" else "ecdsa_"), detail


def check_resumed_served(server: TlslabServer, peer_output: str) -> None:
    """Second connection to the tlslab server: a PSK resumption, no certificate sent."""
    check_served(server, None, peer_output, version=TLS13, index=1)
    second = server.served[1]
    detail = f"{second.describe()}\n--- peer ---\n{peer_output[-3000:]}"
    assert server.served[0].conn.negotiated["resumed"] is False, detail
    assert second.conn.negotiated["resumed"] is True, detail
    assert second.complete.resumed is True, detail
    sent = [e.name for e in second.conn.trace.entries if e.kind == "message" and e.direction == "sent"]
    assert "Certificate" not in sent and "CertificateVerify" not in sent, sent


def check_mtls_served(server: TlslabServer, peer_output: str) -> None:
    check_served(server, None, peer_output, version=TLS13)
    served = server.served[0]
    received = [e.name for e in served.conn.trace.entries
                if e.kind == "message" and e.direction == "received"]
    assert "Certificate" in received and "CertificateVerify" in received, received
    assert "tlslab test client" in (served.conn.negotiated.get("client_certificate") or ""), \
        served.conn.negotiated


def check_mtls_client(result, marker, peer_output: str) -> None:
    check_tlslab_client(result, None, marker, version=TLS13, peer_output=peer_output)
    names = [(e.direction, e.name) for e in result.conn.trace.entries if e.kind == "message"]
    assert ("received", "CertificateRequest") in names, names
    assert ("sent", "Certificate") in names and ("sent", "CertificateVerify") in names, names


# --------------------------------------------------------------------------- peer builds

@pytest.fixture(scope="session")
def go_peer13() -> Path:
    go = require_tool("go")
    src = PEERS_SRC / "go_peer13.go"
    out = _cache_dir("go13", src.read_bytes(), _tool_version([go, "version"]))
    binary = out / "go_peer13"
    if not binary.is_file():
        env = dict(os.environ, GOCACHE=str(out / "gocache"), GOPATH=str(out / "gopath"),
                   GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0", GOTOOLCHAIN="local")
        rc, _, err = run_bounded([go, "build", "-o", binary.with_suffix(".tmp"), src], env=env,
                                 timeout=240, fail_on_timeout=False)
        if rc != 0:
            pytest.skip(f"cannot build tests/peers/go_peer13.go with {go}: {err.strip()[-800:]}")
        binary.with_suffix(".tmp").rename(binary)
    return binary


@pytest.fixture(scope="session")
def java13() -> tuple[str, Path]:
    """(java, class directory) for tests/peers/JavaPeer13.java, compiled once."""
    java, javac = require_tool("java"), require_tool("javac")
    src = PEERS_SRC / "JavaPeer13.java"
    out = _cache_dir("java13", src.read_bytes(), _tool_version([javac, "-version"]))
    if not (out / "JavaPeer13.class").is_file():
        rc, _, err = run_bounded([javac, "-d", out, src], timeout=120, fail_on_timeout=False)
        if rc != 0:
            pytest.skip(f"cannot compile tests/peers/JavaPeer13.java with {javac}: {err.strip()[-800:]}")
    return java, out


def java_cmd(java13, groups: list[str]) -> list:
    java, classes = java13
    cmd = [java, "-Xss1m", "-XX:TieredStopAtLevel=1", "-Xshare:auto"]
    if groups:
        cmd.append(f"-Djdk.tls.namedGroups={','.join(groups)}")
    return cmd + ["-cp", classes, "JavaPeer13"]


@pytest.fixture(scope="session")
def node() -> str:
    return require_tool("node")


@pytest.fixture(scope="session")
def nss_client_db(certs_dir, pkcs12, tmp_path_factory) -> Path:  # noqa: F811
    """An NSS database trusting ca.pem and holding the client identity (nickname "client")."""
    certutil, pk12util = require_tool("certutil"), require_tool("pk12util")
    db = tmp_path_factory.mktemp("nssdb-client")
    steps = [
        [certutil, "-N", "-d", f"sql:{db}", "--empty-password"],
        [certutil, "-A", "-d", f"sql:{db}", "-n", "tlslab-ca", "-t", "CT,C,C", "-i", certs_dir / "ca.pem"],
        [pk12util, "-i", pkcs12["client"], "-d", f"sql:{db}", "-W", "tlslab", "-K", ""],
    ]
    for cmd in steps:
        rc, out, err = run_bounded(cmd, timeout=30)
        if rc != 0:
            pytest.skip(f"could not build the NSS client database ({' '.join(map(str, cmd[:2]))}): "
                        f"{(out + err).strip()[-500:]}")
    return db


PEER_TOOLS = {"gnutls": ["gnutls-cli", "gnutls-serv"], "nss": ["tstclnt", "selfserv"],
              "java": [], "node": [], "go": []}
PEER_FIXTURES = {"gnutls": ["loopback_shim"],
                 "nss": ["nss_db", "nss_client_db", "loopback_shim", "ipv6_loopback"],
                 "java": ["java13", "pkcs12"], "node": ["node"], "go": ["go_peer13"]}


@pytest.fixture
def peer_env(request, certs_dir, peers, tmp_path):  # noqa: F811
    """``peer_env(name)`` -> a ``PeerEnv`` for one peer; its fixtures (builds, databases,
    the loopback shim) are only requested for the peer a test uses."""
    def make(name: str) -> PeerEnv:
        for tool in PEER_TOOLS[name]:
            require_tool(tool)
        fx = PEER_FIXTURES[name]
        return PeerEnv(name, certs_dir, peers, {f: request.getfixturevalue(f) for f in fx}, tmp_path)
    return make


# --------------------------------------------------------------------------- the peers

@dataclass
class Started:
    port: int
    host: str
    output: Callable[[], str]
    marker: bytes
    proc: object = None


class PeerEnv:
    """How to run one peer as a TLS 1.3 server or client for a ``Case``."""

    def __init__(self, name: str, certs_dir: Path, peers, fx: dict, tmp: Path) -> None:  # noqa: F811
        self.name, self.certs, self.peers, self.fx, self.tmp = name, certs_dir, peers, fx, tmp

    # ------------------------------------------------------------------ servers

    def server(self, case: Case, conns: int = 1, client_auth: bool = False) -> Started:
        return getattr(self, f"_{self.name}_server")(case, conns, client_auth)

    def _gnutls_server(self, case, conns, client_auth) -> Started:
        serv = require_tool("gnutls-serv")
        kt = case.kt
        # gnutls-serv asks for a client certificate unless told not to (see the mTLS tests)
        extra = ["--require-client-cert", "--verify-client-cert", "--x509cafile", self.certs / "ca.pem"] \
            if client_auth else ["--disable-client-cert"]
        p = self.peers.on_port(lambda port: [serv, "--http", "--port", port,
                                             "--priority", gnutls_priority(case, "server"),
                                             "--x509certfile", self.certs / f"{kt}-chain.pem",
                                             "--x509keyfile", self.certs / f"{kt}.key", *extra],
                               env=shim_env(self.fx["loopback_shim"]))
        return Started(p.port, "127.0.0.1", p.output, b"GnuTLS", p)

    def _nss_server(self, case, conns, client_auth) -> Started:
        selfserv = require_tool("selfserv")
        kt = case.kt
        nick = ["-e", "ecdsa"] if kt == "ecdsa" else ["-n", "rsa"]
        args = ["-V", "tls1.3:tls1.3", "-u", "-H", "1"]
        if case.suite:
            args += ["-c", f":{SUITE_CODE[case.suite]:04X}"]
        groups = peer_groups("nss", case, "server")
        if groups:
            args += ["-I", ",".join(groups)]
        if client_auth:
            args += ["-r", "-r"]
        host = self.fx["ipv6_loopback"]
        p = self.peers.on_port(lambda port: [selfserv, "-p", port, "-d", f"sql:{self.fx['nss_db'][kt]}",
                                             *nick, *args],
                               env=shim_env(self.fx["loopback_shim"]), host=host)
        return Started(p.port, host, p.output, b"HTTP/1.0 200", p)

    def _java_server(self, case, conns, client_auth) -> Started:
        p = self.peers([*java_cmd(self.fx["java13"], peer_groups("java", case, "server")), "server",
                        self.fx["pkcs12"][case.kt], "tlslab", case.suite or "-", conns,
                        self.certs / "ca.pem" if client_auth else "-"])
        return Started(p.port, "127.0.0.1", p.output, b"java says hello", p)

    def _node_server(self, case, conns, client_auth) -> Started:
        args = [f"cert={self.certs / f'{case.kt}-chain.pem'}", f"key={self.certs / f'{case.kt}.key'}",
                f"conns={conns}"]
        if case.suite:
            args.append(f"suites={case.suite}")
        groups = peer_groups("node", case, "server")
        if groups:
            args.append(f"groups={':'.join(groups)}")
        if client_auth:
            args.append(f"client_ca={self.certs / 'ca.pem'}")
        p = self.peers([self.fx["node"], PEERS_SRC / "node_peer13.js", "server", *args])
        return Started(p.port, "127.0.0.1", p.output, b"node says hello", p)

    def _go_server(self, case, conns, client_auth) -> Started:
        args = ["-mode", "server", "-cert", self.certs / f"{case.kt}-chain.pem",
                "-key", self.certs / f"{case.kt}.key", "-conns", conns]
        groups = peer_groups("go", case, "server")
        if groups:
            args += ["-groups", ",".join(groups)]
        if client_auth:
            args += ["-client-ca", self.certs / "ca.pem"]
        p = self.peers([self.fx["go_peer13"], *args])
        return Started(p.port, "127.0.0.1", p.output, b"go says hello", p)

    # ------------------------------------------------------------------ clients

    def client(self, case: Case, port: int, conns: int = 1, client_cert: bool = False) -> tuple[int | None, str]:
        """Run the peer client against 127.0.0.1:port; (exit code, everything it printed)."""
        return getattr(self, f"_{self.name}_client")(case, port, conns, client_cert)

    def _gnutls_client(self, case, port, conns, client_cert):
        cli = require_tool("gnutls-cli")
        args = [cli, "--x509cafile", self.certs / "ca.pem", "--port", port,
                "--priority", gnutls_priority(case, "client"), "--sni-hostname", "localhost",
                "--verify-hostname", "localhost"]
        if client_cert:
            args += ["--x509certfile", self.certs / "client-chain.pem",
                     "--x509keyfile", self.certs / "client.key"]
        if conns > 1:
            args += ["--resume", "--waitresumption"]
        return interact([*args, "127.0.0.1"], HTTP_GET, until="tlslab says hello")

    def _nss_client(self, case, port, conns, client_cert):
        tstclnt = require_tool("tstclnt")
        db = self.fx["nss_client_db"] if client_cert else self.fx["nss_db"]["rsa"]
        args = [tstclnt, "-h", "127.0.0.1", "-a", "localhost", "-p", port, "-d", f"sql:{db}",
                "-V", "tls1.3:tls1.3", "-4"]
        if case.suite:
            args += ["-c", f":{SUITE_CODE[case.suite]:04X}"]
        groups = peer_groups("nss", case, "client")
        if groups:
            args += ["-I", ",".join(groups)]
        if client_cert:
            args += ["-n", "client"]
        if conns > 1:
            # -L N: N connections in a row (NSS's client cache resumes the later ones), each
            # sending the request read from the -A file
            request = self.tmp / "request.txt"
            request.write_bytes(HTTP_GET)
            rc, out, err = run_bounded([*args, "-L", conns, "-A", request], timeout=20)
            return rc, out + err
        return interact(args, HTTP_GET, until="tlslab says hello")

    def _java_client(self, case, port, conns, client_cert):
        rc, out, err = run_bounded([*java_cmd(self.fx["java13"], peer_groups("java", case, "client")),
                                    "client", port, self.certs / "ca.pem", case.suite or "-",
                                    self.fx["pkcs12"]["client"] if client_cert else "-", conns],
                                   timeout=30)
        return rc, out + err

    def _node_client(self, case, port, conns, client_cert):
        args = [f"port={port}", f"ca={self.certs / 'ca.pem'}", f"conns={conns}"]
        if case.suite:
            args.append(f"suites={case.suite}")
        groups = peer_groups("node", case, "client")
        if groups:
            args.append(f"groups={':'.join(groups)}")
        if client_cert:
            args += [f"cert={self.certs / 'client-chain.pem'}", f"key={self.certs / 'client.key'}"]
        rc, out, err = run_bounded([self.fx["node"], PEERS_SRC / "node_peer13.js", "client", *args],
                                   timeout=30)
        return rc, out + err

    def _go_client(self, case, port, conns, client_cert):
        args = ["-mode", "client", "-addr", f"127.0.0.1:{port}", "-ca", self.certs / "ca.pem",
                "-conns", conns]
        groups = peer_groups("go", case, "client")
        if groups:
            args += ["-groups", ",".join(groups)]
        if client_cert:
            args += ["-cert", self.certs / "client-chain.pem", "-key", self.certs / "client.key"]
        rc, out, err = run_bounded([self.fx["go_peer13"], *args], timeout=30)
        return rc, out + err


def gnutls_priority(case: Case, side: str) -> str:
    prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3"
    if case.suite:
        prio += f":-CIPHER-ALL:+{GNUTLS_CIPHER[case.suite]}"
    groups = peer_groups("gnutls", case, side)
    if groups:
        prio += ":-GROUP-ALL:" + ":".join(f"+{g}" for g in groups)
    return prio


def peer_reports(peer: str, output: str, case: Case) -> None:
    """What the peer itself says it negotiated (our peer programs print it)."""
    if peer in ("java", "node", "go"):
        assert "version=TLSv1.3" in output, output[-3000:]
        if case.suite:
            assert f"suite={case.suite}" in output, output[-3000:]
    elif peer == "gnutls" and "- Description: (" in output:  # gnutls-cli
        assert "- Description: (TLS1.3" in output, output[-3000:]
        if case.suite:
            assert f"-({GNUTLS_CIPHER[case.suite]})" in output, output[-3000:]


# =========================================================================== the matrix

def _jdk_ffdhe_zero_byte(peer, case, result) -> bool:
    """JSSE (seen with JDK 17.0.15) drops leading zero bytes of the TLS 1.3 FFDHE shared
    secret, which RFC 8446 §7.4.1 says must be padded to the size of p: about 1 handshake
    in 256 then fails with bad_record_mac on our side (600 straight handshakes with
    openssl's ffdhe2048 all succeed).  Such a run is retried once, so the matrix still
    checks that JSSE and tlslab agree, without a 1-in-128 flake."""
    return (peer == "java" and "ffdhe" in case.name and result.conn is not None
            and result.conn.error is not None and result.conn.error.alert.name == "bad_record_mac")


@pytest.mark.parametrize("peer,case", matrix("client"))
def test_tlslab_client_to_peer_server(peer_env, certs_dir, peer, case):
    """tlslab client → peer server, one row of the matrix."""
    env = peer_env(peer)
    for attempt in range(2):
        s = env.server(case)
        result = run_client(client13(certs_dir, case, peer), s.port, host=s.host)
        if s.proc is not None and peer in ("java", "node", "go"):
            s.proc.wait_exit(10)
        if attempt == 0 and _jdk_ffdhe_zero_byte(peer, case, result):
            continue
        break
    check_case_client(result, case, s.marker, s.output())
    if peer in ("java", "node", "go"):
        peer_reports(peer, s.output(), case)


@pytest.mark.parametrize("peer,case", matrix("server"))
def test_peer_client_to_tlslab_server(peer_env, certs_dir, peer, case):
    """Peer client → tlslab server, one row of the matrix."""
    env = peer_env(peer)
    for attempt in range(2):
        with TlslabServer(server13(certs_dir, case, peer)) as server:
            rc, out = env.client(case, server.port)
        # see _jdk_ffdhe_zero_byte: JSSE's unpadded FFDHE secret fails ~1 handshake in 256
        if attempt == 0 and peer == "java" and "ffdhe" in case.name and rc != 0 \
                and "bad_record_mac" in out:
            continue
        break
    check_case_served(server, case, out)
    peer_reports(peer, out, case)
    if peer in ("java", "node", "go"):  # our own programs exit 0 only after a clean run
        assert rc == 0, out[-3000:]


# =========================================================================== resumption

@pytest.mark.parametrize("peer", PEER_NAMES)
def test_tlslab_client_resumes_with_peer_server(peer_env, certs_dir, peer):
    """Two connections from one tlslab ClientConfig: the second offers the peer's ticket
    (pre_shared_key, RFC 8446 §4.2.11) and the peer accepts it (no Certificate)."""
    env = peer_env(peer)
    case = Case("resume")
    s = env.server(case, conns=2)
    config = client13(certs_dir)
    first = run_client(config, s.port, host=s.host)
    check_case_client(first, case, s.marker, s.output())
    assert config.session_store.count("localhost") >= 1, \
        f"no NewSessionTicket stored from {peer}: {first.describe()}"
    second = run_client(config, s.port, host=s.host)
    check_tlslab_client(second, None, s.marker, version=TLS13, peer_output=s.output(), resumed=True)
    received = [e.name for e in second.conn.trace.entries
                if e.kind == "message" and e.direction == "received"]
    assert "Certificate" not in received, received


@pytest.mark.parametrize("peer", PEER_NAMES)
def test_peer_client_resumes_with_tlslab_server(peer_env, certs_dir, peer):
    """The peer client connects twice; the second connection resumes with the ticket the
    tlslab server issued on the first."""
    env = peer_env(peer)
    with TlslabServer(server13(certs_dir), connections=2) as server:
        _, out = env.client(Case("resume"), server.port, conns=2)
    check_resumed_served(server, out)
    if peer == "gnutls":
        assert "This is a resumed session" in out, out[-3000:]
    if peer in ("node", "go"):
        assert "resumed=true" in out, out[-3000:]
    if peer == "nss":
        assert "1 stateless resumes" in out, out[-3000:]


# =========================================================================== client certificates

@pytest.mark.parametrize("peer", [
    "gnutls",
    "nss", "java", "node",
    "go",
])
def test_tlslab_client_certificate_to_peer_server(peer_env, certs_dir, peer):
    """The peer server requires a client certificate: tlslab answers the CertificateRequest
    with client.pem (+ intermediate) and a CertificateVerify."""
    env = peer_env(peer)
    s = env.server(Case("mtls"), client_auth=True)
    result = run_client(client13(certs_dir, **client_identity(certs_dir)), s.port, host=s.host)
    if s.proc is not None and peer in ("java", "node", "go"):
        s.proc.wait_exit(10)
    check_mtls_client(result, s.marker, s.output())
    if peer in ("java", "node", "go"):
        assert "tlslab test client" in s.output(), s.output()[-3000:]


@pytest.mark.parametrize("peer", PEER_NAMES)
def test_peer_client_certificate_to_tlslab_server(peer_env, certs_dir, peer):
    """The tlslab server requires and verifies a client certificate from the peer client."""
    env = peer_env(peer)
    config = server13(certs_dir, client_ca_file=str(certs_dir / "ca.pem"), require_client_cert=True)
    with TlslabServer(config) as server:
        _, out = env.client(Case("mtls"), server.port, client_cert=True)
    check_mtls_served(server, out)


def test_tlslab_client_without_certificate_to_gnutls_serv_default(peer_env, certs_dir):
    """Plain ``gnutls-serv`` asks for (but does not require) a client certificate: a tlslab
    client without one must answer with an empty Certificate (RFC 8446 §4.4.2) and go on."""
    env = peer_env("gnutls")
    serv = require_tool("gnutls-serv")
    p = env.peers.on_port(lambda port: [serv, "--http", "--port", port, "--priority",
                                        "NORMAL:-VERS-ALL:+VERS-TLS1.3",
                                        "--x509certfile", certs_dir / "ecdsa-chain.pem",
                                        "--x509keyfile", certs_dir / "ecdsa.key"],
                          env=shim_env(env.fx["loopback_shim"]))
    result = run_client(client13(certs_dir), p.port)
    check_tlslab_client(result, None, b"GnuTLS", version=TLS13, peer_output=p.output())
    names = [(e.direction, e.name) for e in result.conn.trace.entries if e.kind == "message"]
    assert ("received", "CertificateRequest") in names and ("sent", "Certificate") in names, names
