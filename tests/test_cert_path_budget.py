"""Security finding 1 of issue 14: certificate path building must not hang the process.

A hostile peer sends a Certificate message whose certificates can be combined in
millions of ways, none reaching a trust anchor: 9 layers of 5 candidate issuers that
share a subject name (and, in the shape that made the unbounded depth-first search
explode, a key: each of the 5 verifies every certificate of the layer below).  Before
the fix that message kept one core busy for minutes, before any authentication, on a
server with ``client_ca_file`` and on any client.  Now it is answered in well under a
second with the alert the engine's typed error names.

Every test counts the signature verifications the certificate code makes and stops the
search (by raising) after :data:`GUARD` of them, so the test suite cannot hang on an
engine without the budget: such an engine fails the test, quickly, with
``internal_error`` and a message naming the count.
"""
from __future__ import annotations

import dataclasses
import datetime
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlslab.proto import cert_paths as P  # the path search and its budgets
from tlslab.proto import certificates as C
from tlslab.proto import events as ev
from tlslab.proto.client import ClientConnection
from tlslab.proto.config import ClientConfig, ServerConfig
from tlslab.proto.errors import BadCertificate, UnknownCA
from tlslab.proto.server import ServerConnection

pytestmark = pytest.mark.timeout(120)

LAYERS = 9
WIDTH = 5
#: far above what a bounded search needs (about 2 per certificate), far below what the
#: unbounded one made (millions): reaching it means the search is not bounded
GUARD = 5_000
#: "well under a second" for the whole handshake, path search included
DEADLINE = 1.0

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, key, signer, ca: bool, san: str | None = None) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san or "localhost")]), critical=False)
    return b.sign(signer, hashes.SHA256())


@dataclasses.dataclass
class Crafted:
    anchor: x509.Certificate  # the trust anchor (nothing sent chains to it)
    anchor_key: object
    chain: list[x509.Certificate]  # leaf, then LAYERS x WIDTH candidate issuers
    leaf_key: object


def _keygen():
    return ec.generate_private_key(ec.SECP256R1())


def craft(shared_key: bool, layers: int = LAYERS, width: int = WIDTH) -> Crafted:
    """Leaf issued by "Layer 1"; layer i holds ``width`` CA certificates with subject
    "Layer i" and issuer "Layer i+1"; "Layer layers+1" is never sent and the anchor is
    another CA.  With ``shared_key`` the certificates of a layer share one key (so
    each of them verifies every certificate of the layer below: width**layers paths),
    else each has its own (the layer below is signed by the first one's key)."""
    anchor_key = _keygen()
    anchor = _cert("Budget Test Anchor", "Budget Test Anchor", anchor_key, anchor_key, True)
    keys = []
    for _ in range(layers + 2):
        first = _keygen()
        keys.append([first] * width if shared_key else [first] + [_keygen() for _ in range(width - 1)])
    leaf_key = _keygen()
    chain = [_cert("budget leaf", "Layer 1", leaf_key, keys[1][0], False)]
    for i in range(1, layers + 1):
        for j in range(width):
            chain.append(_cert(f"Layer {i}", f"Layer {i + 1}", keys[i][j], keys[i + 1][0], True))
    return Crafted(anchor, anchor_key, chain, leaf_key)


@pytest.fixture(scope="module")
def crafted() -> Crafted:
    return craft(shared_key=True)


@pytest.fixture(scope="module")
def crafted_distinct_keys() -> Crafted:
    return craft(shared_key=False)


@pytest.fixture
def signature_guard(monkeypatch):
    """Counts the certificate code's signature verifications; raises past GUARD."""
    calls = {"n": 0}
    real = P._signed_by

    def counting(child, parent):
        calls["n"] += 1
        if calls["n"] > GUARD:
            raise RuntimeError(f"path search made more than {GUARD} signature checks: unbounded")
        return real(child, parent)

    monkeypatch.setattr(P, "_signed_by", counting)
    return calls


# --------------------------------------------------------------------------- in-memory engine


@dataclasses.dataclass
class Pair:
    client: ClientConnection
    server: ServerConnection
    client_events: list = dataclasses.field(default_factory=list)
    server_events: list = dataclasses.field(default_factory=list)

    def pump(self, rounds: int = 30) -> "Pair":
        for _ in range(rounds):
            moved = False
            data = self.client.data_to_send()
            if data:
                moved = True
                self.server_events += self.server.receive_data(data)
            data = self.server.data_to_send()
            if data:
                moved = True
                self.client_events += self.client.receive_data(data)
            if not moved:
                break
        return self


def _closed(events: list) -> ev.ConnectionClosed:
    found = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert found, f"no ConnectionClosed among {events!r}"
    return found[-1]


def _pem(tmp_path, name: str, cert: x509.Certificate) -> str:
    path = tmp_path / name
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return str(path)


def _handshake(client_cfg: ClientConfig, server_cfg: ServerConfig) -> tuple[Pair, float]:
    client = ClientConnection(client_cfg)
    server = ServerConnection(server_cfg)
    t0 = time.perf_counter()
    client.start_handshake()
    pair = Pair(client, server).pump()
    return pair, time.perf_counter() - t0


def _assert_rejected(conn, events: list, elapsed: float, checks: int) -> None:
    """``conn`` refused the crafted chain in time, with the alert its typed error names."""
    assert conn.error is not None, "the crafted chain was accepted"
    err = conn.error
    assert isinstance(err, (UnknownCA, BadCertificate)), (
        f"expected a certificate error, got {type(err).__name__}: {err}"
    )
    expected = "unknown_ca" if isinstance(err, UnknownCA) else "bad_certificate"
    closed = _closed(events)
    assert closed.alert_sent == expected, (closed.alert_sent, err)
    assert elapsed < DEADLINE, f"answered in {elapsed:.2f} s"
    assert checks <= P._MAX_SIGNATURE_CHECKS + 4, f"{checks} signature checks"


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_server_with_client_ca_answers_crafted_client_chain_in_time(
    tmp_path, crafted, signature_guard, version
):
    """Reachable before authentication: a server with client_ca_file validates the
    client's Certificate before it has seen the client's CertificateVerify."""
    from tlslab.workbench.certgen import make_throwaway_chain

    server_chain, server_key, server_ca = make_throwaway_chain(names=("localhost",))
    server_cfg = ServerConfig(
        certificate_chain=server_chain,
        private_key=server_key,
        client_ca_file=_pem(tmp_path, "client-ca.pem", crafted.anchor),
        require_client_cert=True,
    )
    client_cfg = ClientConfig(
        server_name="localhost",
        ca_file=_pem(tmp_path, "server-ca.pem", server_ca),
        certificate_chain=crafted.chain,
        private_key=crafted.leaf_key,
        versions=[version],
    )
    pair, elapsed = _handshake(client_cfg, server_cfg)
    assert not pair.server.handshake_complete
    _assert_rejected(pair.server, pair.server_events, elapsed, signature_guard["n"])
    # what the client learns: the same alert
    assert _closed(pair.client_events).alert_received == _closed(pair.server_events).alert_sent


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_client_answers_crafted_server_chain_in_time(tmp_path, crafted, signature_guard, version):
    """Any server a client connects to can send the crafted Certificate message."""
    server_cfg = ServerConfig(certificate_chain=crafted.chain, private_key=crafted.leaf_key)
    client_cfg = ClientConfig(
        server_name="localhost",
        ca_file=_pem(tmp_path, "anchor.pem", crafted.anchor),
        versions=[version],
    )
    pair, elapsed = _handshake(client_cfg, server_cfg)
    assert not pair.client.handshake_complete
    _assert_rejected(pair.client, pair.client_events, elapsed, signature_guard["n"])


# --------------------------------------------------------------------------- the path search itself


def test_crafted_chain_keeps_its_diagnosis(crafted, signature_guard):
    """Collapsing the look-alike issuers loses nothing: the search still walks all 9
    layers and says the chain ends at an untrusted root."""
    t0 = time.perf_counter()
    with pytest.raises(UnknownCA) as excinfo:
        C.verify_server_chain(crafted.chain, "localhost", [crafted.anchor], NOW)
    assert time.perf_counter() - t0 < DEADLINE
    assert excinfo.value.code == "untrusted-root"
    assert excinfo.value.evidence["missing_issuer"] == f"CN=Layer {LAYERS + 1}"
    assert len(excinfo.value.evidence["path"]) == LAYERS + 1
    assert signature_guard["n"] <= P._MAX_SIGNATURE_CHECKS + 4


def test_distinct_keys_shape_is_answered_in_time(crafted_distinct_keys, signature_guard):
    """Same shape, each candidate with its own key (only one of a layer verifies the
    layer below): a typed verdict, quickly, for the client and the server side."""
    c = crafted_distinct_keys
    t0 = time.perf_counter()
    with pytest.raises(UnknownCA) as excinfo:
        C.verify_client_chain(c.chain, [c.anchor], NOW)
    assert time.perf_counter() - t0 < DEADLINE
    assert excinfo.value.code == "untrusted-root"


def _two_way_chain(layers: int) -> tuple[list[x509.Certificate], x509.Certificate, object]:
    """A shape the (subject, key, issuer) de-duplication cannot collapse: at every layer
    two subjects A/B share a key and each is issued under both names of the next layer
    (4 distinct certificates per layer, 2**layers paths).  Only the budgets bound it."""
    anchor_key = _keygen()
    anchor = _cert("Budget Test Anchor", "Budget Test Anchor", anchor_key, anchor_key, True)
    keys = [_keygen() for _ in range(layers + 2)]
    leaf_key = _keygen()
    chain = [_cert("budget leaf", "A 1", leaf_key, keys[1], False)]
    for i in range(1, layers + 1):
        for subject in (f"A {i}", f"B {i}"):
            for issuer in (f"A {i + 1}", f"B {i + 1}"):
                chain.append(_cert(subject, issuer, keys[i], keys[i + 1], True))
    return chain, anchor, leaf_key


def test_visit_budget_stops_a_search_deduplication_cannot_shrink(signature_guard, monkeypatch):
    chain, anchor, _ = _two_way_chain(layers=12)  # 49 certificates, within the message cap
    assert len(chain) <= C.MAX_PEER_CERTIFICATES
    t0 = time.perf_counter()
    with pytest.raises(BadCertificate) as excinfo:
        C.verify_client_chain(chain, [anchor], NOW)
    assert time.perf_counter() - t0 < DEADLINE
    assert excinfo.value.code == "path-limit-exceeded"
    assert excinfo.value.evidence["limit"] == "path-visits"
    assert excinfo.value.evidence["certificates_visited"] == P._MAX_PATH_VISITS
    assert signature_guard["n"] <= P._MAX_SIGNATURE_CHECKS + 4
    # a smaller budget stops it sooner
    monkeypatch.setattr(P, "_MAX_PATH_VISITS", 200)
    with pytest.raises(BadCertificate) as excinfo:
        C.verify_client_chain(chain, [anchor], NOW)
    assert excinfo.value.evidence["certificates_visited"] == 200


def test_signature_budget_stops_a_degenerate_chain(signature_guard):
    """webpki's degenerate chain: every certificate has the same subject and issuer
    name and its own key, so each step tries every certificate sent."""
    anchor_key = _keygen()
    anchor = _cert("Budget Test Anchor", "Budget Test Anchor", anchor_key, anchor_key, True)
    signer = _keygen()  # never sent
    certs = []
    for _ in range(C.MAX_PEER_CERTIFICATES - 1):
        key = _keygen()
        certs.append(_cert("Bogus Subject", "Bogus Subject", key, signer, True))
        signer = key
    leaf_key = _keygen()
    chain = [_cert("budget leaf", "Bogus Subject", leaf_key, signer, False)] + certs[::-1]
    t0 = time.perf_counter()
    with pytest.raises(BadCertificate) as excinfo:
        C.verify_server_chain(chain, "localhost", [anchor], NOW)
    assert time.perf_counter() - t0 < DEADLINE
    assert excinfo.value.code == "path-limit-exceeded"
    assert excinfo.value.evidence["limit"] == "signature-checks"
    assert excinfo.value.evidence["signature_checks"] == P._MAX_SIGNATURE_CHECKS
    assert signature_guard["n"] <= P._MAX_SIGNATURE_CHECKS + 4


# --------------------------------------------------------------------------- the message cap


def test_certificate_message_cap(tmp_path):
    """More certificates than MAX_PEER_CERTIFICATES: refused where the message is read
    (bad_certificate), before any of them is parsed or searched."""
    from tlslab.workbench.certgen import make_throwaway_chain

    chain, key, ca = make_throwaway_chain(names=("localhost",))
    padded = chain + [ca] * (C.MAX_PEER_CERTIFICATES + 1 - len(chain))
    assert len(padded) == C.MAX_PEER_CERTIFICATES + 1
    server_cfg = ServerConfig(certificate_chain=padded, private_key=key)
    client_cfg = ClientConfig(server_name="localhost", ca_file=_pem(tmp_path, "ca.pem", ca))
    pair, _ = _handshake(client_cfg, server_cfg)
    assert isinstance(pair.client.error, BadCertificate), pair.client.error
    assert "at most" in str(pair.client.error)
    assert _closed(pair.client_events).alert_sent == "bad_certificate"
    # at the cap itself the chain is fine (extra copies of the CA are tolerated)
    server_cfg = ServerConfig(certificate_chain=padded[:-1], private_key=key)
    pair, _ = _handshake(client_cfg, server_cfg)
    assert pair.client.handshake_complete, pair.client.error
