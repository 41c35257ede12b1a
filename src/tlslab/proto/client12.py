"""TLS 1.2 (and 1.0/1.1) client state machine (RFC 5246 §7.3, RFC 8422, RFC 7627, RFC 5746, RFC 5077).

The client always sends one ClientHello; when the ServerHello selects TLS 1.2 or
older, the TLS 1.3 handshake object hands its offer over to a :class:`ClientHandshake12`
and these states:

full:        WAIT_SH → WAIT_CERT → WAIT_SKE_CR_SHD → (send flight) → WAIT_CCS → WAIT_FINISHED → CONNECTED
abbreviated: WAIT_SH → WAIT_CCS → WAIT_FINISHED → (send CCS + Finished) → CONNECTED
"""
from __future__ import annotations

import hmac

from cryptography.exceptions import UnsupportedAlgorithm

from .connection import State
from .handshake import note_server_answers
from .handshake12 import Handshake12
from .peer_chain import check_ocsp, load_peer_chain, validate_peer_chain
from .errors import (BadCertificate, DecodeError, HandshakeFailure, IllegalParameter, ProtocolVersion,
                     TLSError, UnexpectedMessage, UnsupportedCertificate, UnsupportedExtension)
from .extensions import ET, Extension
from .messages import DOWNGRADE_TLS11, DOWNGRADE_TLS12, Finished
from .messages12 import (Certificate12, CertificateVerify11,
                         CertificateVerify12, ClientKeyExchange, NewSessionTicket12)
from .names import VERSION_NAMES, CipherSuite, HandshakeType as HT, NamedGroup, SignatureScheme, name_of
from .tls12 import keyexchange as kx
from .tls12 import legacy
from .tls12.prf import handshake_hash, master_secret
from .tls12.suites import KX_RSA, SUITES12

#: extensions a TLS 1.2 ServerHello may carry (each only if we offered it)
SH12_ALLOWED = {ET.server_name, ET.ec_point_formats, ET.renegotiation_info, ET.extended_master_secret,
                ET.encrypt_then_mac, ET.session_ticket, ET.application_layer_protocol_negotiation,
                ET.status_request, ET.record_size_limit, ET.max_fragment_length,
                ET.signed_certificate_timestamp}


class WaitCertificate12(State):
    """RFC 5246 §7.4.2: the server's chain."""

    name = "WAIT_CERT"
    expects = frozenset({HT.certificate})

    @classmethod
    def handle(cls, hs, msg: Certificate12) -> type[State]:
        hs.on_certificate(msg)
        return WaitServerKeyExchange12


class WaitServerKeyExchange12(State):
    """RFC 5246 §7.4.3-§7.4.5 (+ RFC 6066 §8 CertificateStatus): until ServerHelloDone."""

    name = "WAIT_SKE_CR_SHD"
    expects = frozenset({HT.certificate_status, HT.server_key_exchange, HT.certificate_request,
                         HT.server_hello_done})

    @classmethod
    def handle(cls, hs, msg) -> type[State]:
        return hs.on_server_flight(msg)


class WaitNewTicketOrCCS12(State):
    """RFC 5077 §3.3: an optional NewSessionTicket, then ChangeCipherSpec."""

    name = "WAIT_CCS"
    expects = frozenset({HT.new_session_ticket})

    @classmethod
    def handle(cls, hs, msg: NewSessionTicket12) -> type[State]:
        hs.on_new_session_ticket(msg)
        return WaitNewTicketOrCCS12


class WaitServerFinished12(State):
    """RFC 5246 §7.4.9."""

    name = "WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, hs, msg: Finished) -> type[State]:
        hs.on_server_finished(msg)
        return ClientConnected12


class ClientConnected12(State):
    """Application data; a HelloRequest is refused with a no_renegotiation warning (RFC 5746 §4.2)."""

    name = "CONNECTED"
    expects = frozenset({HT.hello_request})

    @classmethod
    def handle(cls, hs, msg) -> type[State]:
        hs.refuse_renegotiation()
        return ClientConnected12


WaitNewTicketOrCCS12.after_ccs = WaitServerFinished12

CLIENT12_TRANSITIONS = {
    WaitCertificate12: {WaitServerKeyExchange12},
    WaitServerKeyExchange12: {WaitServerKeyExchange12, WaitNewTicketOrCCS12},
    WaitNewTicketOrCCS12: {WaitNewTicketOrCCS12, WaitServerFinished12},
    WaitServerFinished12: {ClientConnected12},
    ClientConnected12: {ClientConnected12},
}


class ClientHandshake12(Handshake12):
    """One TLS 1.0-1.2 client handshake, from the server's ServerHello on (the ClientHello
    was sent by the TLS 1.3 handshake object, which handed over its offer)."""

    __slots__ = ("offer", "server_session_id", "ticket_expected", "ocsp_expected", "ske", "cr12",
                 "new_ticket", "peer_key")

    def __init__(self, conn, offer) -> None:
        super().__init__(conn)
        self.offer = offer
        self.server_session_id = b""
        self.ticket_expected = False   # RFC 5077 §3.2: the server answered session_ticket
        self.ocsp_expected = False     # RFC 6066 §8: the server answered status_request
        self.ske = None                # the ServerKeyExchange, parsed and verified
        self.peer_key = None           # the server certificate's public key, parsed once
        self.cr12 = None               # the CertificateRequest, if any
        self.new_ticket: NewSessionTicket12 | None = None

    # -- ServerHello ---------------------------------------------------------------------
    def on_server_hello(self, sh) -> type[State]:
        """RFC 5246 §7.4.1.3 with RFC 8446 §4.1.3's downgrade protection."""
        conn, cfg, offer = self.conn, self.config, self.offer
        ch = offer.client_hello
        version = sh.legacy_version
        if offer.early_data is not None:
            conn._write_prot = None  # a TLS 1.2 server cannot read our early-data key: alert in clear
            raise ProtocolVersion("0-RTT data was sent but the server answered with TLS 1.2 or older "
                                  "(RFC 8446 §D.3)")
        if version not in cfg.version_codes or version > 0x0303:
            offered = ", ".join(VERSION_NAMES.get(v, hex(v)) for v in cfg.version_codes)
            raise ProtocolVersion(f"server selected {VERSION_NAMES.get(version, f'0x{version:04x}')}; "
                                  f"we offered {offered}")
        tail = sh.random[-8:]
        if (cfg.max_version >= 0x0304 and tail in (DOWNGRADE_TLS12, DOWNGRADE_TLS11)) or \
                (cfg.max_version == 0x0303 and tail == DOWNGRADE_TLS11):
            raise IllegalParameter("ServerHello.random carries the TLS 1.3 downgrade sentinel (RFC 8446 "
                                   "§4.1.3): the server supports a newer version, so this is an attack "
                                   "or a broken middlebox")
        suite = SUITES12.get(sh.cipher_suite)
        if suite is None or sh.cipher_suite not in ch.cipher_suites or suite.min_version > version:
            raise IllegalParameter(f"server selected cipher suite {name_of(CipherSuite, sh.cipher_suite)} "
                                   f"that was not offered for {VERSION_NAMES[version]}")
        if sh.legacy_compression_method != 0:
            raise IllegalParameter("ServerHello selected a compression method we did not offer")
        offered = offer.offered_types()
        if 0x00FF in (ch.cipher_suites or []):
            # RFC 5746 §3.3: TLS_EMPTY_RENEGOTIATION_INFO_SCSV offers secure renegotiation as
            # the extension does, and the server answers with the extension (§3.6)
            offered.add(ET.renegotiation_info)
        for e in sh.extensions or []:
            if e.type not in offered:
                raise UnsupportedExtension(f"server sent extension {e.name} that was not offered")
            if e.type not in SH12_ALLOWED:
                raise IllegalParameter(f"extension {e.name} is not allowed in a TLS 1.2 ServerHello")
        conn.tls12 = True
        conn.version = version
        self.server_session_id = sh.legacy_session_id_echo
        conn.suite12 = suite
        conn.server_random = sh.random
        n = self.negotiated
        n.update(version=VERSION_NAMES[version], cipher_suite=suite.name)
        ri = sh.ext_value(ET.renegotiation_info)
        if ri is not None and ri.renegotiated_connection != b"":
            raise HandshakeFailure("renegotiation_info is not empty on the initial handshake (RFC 5746 §3.4)")
        n["secure_renegotiation"] = ri is not None
        if ri is None:
            self.trace.add("info", "local", "server does not support secure renegotiation (RFC 5746)")
        self.ems = sh.ext(ET.extended_master_secret) is not None
        n["extended_master_secret"] = self.ems
        self.etm = sh.ext(ET.encrypt_then_mac) is not None and suite.cbc
        n["encrypt_then_mac"] = self.etm
        self.ticket_expected = sh.ext(ET.session_ticket) is not None
        rsl = sh.ext_value(ET.record_size_limit)
        if rsl is not None:
            if rsl.record_size_limit < 64:
                raise IllegalParameter(f"record_size_limit {rsl.record_size_limit} is below 64 (RFC 8449 §4)")
            # RFC 8449 §4: in TLS 1.2 the limit counts the plaintext only
            conn._max_fragment = min(1 << 14, rsl.record_size_limit)
        self.ocsp_expected = sh.ext(ET.status_request) is not None
        note_server_answers(cfg, n, sh)
        self.hs_log = bytearray(offer.ch_raw[-1])
        self.hs_log += sh.raw
        sess = offer.session12
        if sess is not None and sh.legacy_session_id_echo and \
                hmac.compare_digest(sh.legacy_session_id_echo, ch.legacy_session_id):
            # RFC 5246 §7.3 / RFC 5077 §3.4: the server resumes our session
            if sess.ems and not self.ems:
                raise HandshakeFailure("server resumed an extended-master-secret session without the "
                                       "extension (RFC 7627 §5.3)")
            if sess.suite != suite.code or sess.version != version or sess.ems != self.ems:
                raise IllegalParameter("server resumed a session with other parameters (RFC 5246 §7.4.1.3)")
            conn.resumed = True
            self.master = sess.master_secret
            self.install_keys()
            return WaitNewTicketOrCCS12
        return WaitCertificate12

    # -- server flight ---------------------------------------------------------------------
    def on_certificate(self, msg: Certificate12) -> None:
        conn = self.conn
        if not msg.certificate_list:
            raise DecodeError("server sent an empty Certificate message")
        certs = load_peer_chain(conn, msg.certificate_list)
        validate_peer_chain(conn, certs, msg.certificate_list)
        kx_name = conn.suite12.kx
        try:
            self.peer_key = certs[0].public_key()
            kx.check_key_for_kx(kx_name, self.peer_key)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise UnsupportedCertificate(f"the server's certificate key cannot be used: {e}") from None
        if kx_name == KX_RSA:
            # RFC 5246 §7.4.2 / RFC 5280 §4.2.1.3: RSA key transport needs keyEncipherment
            from cryptography import x509
            try:
                ku = certs[0].extensions.get_extension_for_class(x509.KeyUsage).value
            except x509.ExtensionNotFound:
                ku = None
            except (ValueError, x509.DuplicateExtension) as e:
                # extensions are parsed lazily; with insecure=True no path validation read
                # them before: a corrupt one is bad_certificate (RFC 8446 §6.2, RFC 5280 §4.2),
                # not an escaping exception (found by fuzz/client_wait_sh)
                raise BadCertificate(f"the server's certificate has a malformed extension: {e}") from None
            if ku is not None and not ku.key_encipherment:
                raise UnsupportedCertificate("the server's certificate does not allow keyEncipherment, "
                                             "which RSA key exchange needs")
        self.ske = None
        self.cr12 = None

    def on_server_flight(self, msg) -> type[State]:
        conn = self.conn
        suite = conn.suite12
        if msg.msg_type == HT.certificate_status:
            if not self.ocsp_expected or self.ske is not None or self.cr12 is not None \
                    or "ocsp_response" in self.negotiated:
                raise UnexpectedMessage("CertificateStatus out of place")
            check_ocsp(conn, msg.response, conn.peer_certificates)
            return WaitServerKeyExchange12
        if msg.msg_type == HT.server_key_exchange:
            if suite.kx == KX_RSA or self.ske is not None or self.cr12 is not None:
                raise UnexpectedMessage("ServerKeyExchange is not expected here")
            version = conn.version
            ske = kx.parse_server_key_exchange(suite.kx, msg.body, version)
            ch = self.offer.client_hello
            offered = None
            if version >= 0x0303 and ch.ext(ET.signature_algorithms) is not None:
                offered = self.offer.offered_schemes()
            kx.verify_server_key_exchange(conn.peer_certificates[0], ske, ch.random, conn.server_random,
                                          offered_schemes=offered, version=version, key=self.peer_key)
            if ske.scheme is not None:
                self.negotiated["signature_scheme"] = name_of(SignatureScheme, ske.scheme)
            self.ske = ske
            return WaitServerKeyExchange12
        if msg.msg_type == HT.certificate_request:
            if self.cr12 is not None:
                raise UnexpectedMessage("second CertificateRequest")
            if suite.ephemeral and self.ske is None:
                raise UnexpectedMessage("CertificateRequest before ServerKeyExchange")
            self.cr12 = msg
            return WaitServerKeyExchange12
        # ServerHelloDone
        if suite.ephemeral and self.ske is None:
            raise UnexpectedMessage("ServerHelloDone without the ServerKeyExchange this key exchange needs")
        self._send_client_flight()
        return WaitNewTicketOrCCS12

    def _send_client_flight(self) -> None:
        """RFC 5246 §7.3: [Certificate], ClientKeyExchange, [CertificateVerify], CCS, Finished."""
        conn = self.conn
        suite, version = conn.suite12, conn.version
        ch = self.offer.client_hello
        identity = self._client_identity() if self.cr12 is not None else None
        if self.cr12 is not None:
            certs = [] if identity is None else [c.public_bytes(_DER) for c in identity[0]]
            self.send(Certificate12(certificate_list=certs))
        if suite.kx == KX_RSA:
            encrypted, premaster = kx.encrypt_premaster(self.peer_key, ch.legacy_version,
                                                        self.provider)
            body = kx.build_client_key_exchange(suite.kx, encrypted)
        elif suite.kx.startswith("ECDHE"):
            group = self.ske.params.named_curve
            public, premaster = kx.ecdhe_client_exchange(self.ske.params, self.provider,
                                                         self.offer.offered_groups())
            self.negotiated["group"] = name_of(NamedGroup, group)
            body = kx.build_client_key_exchange(suite.kx, public)
        else:
            res = kx.dhe_client_exchange(self.ske.params, self.provider)
            public, premaster = res.public, res.premaster
            bits = self.ske.params.p.bit_length()
            known = kx.known_dh_group(self.ske.params.p, self.ske.params.g)
            self.negotiated["group"] = known or f"DH {bits} bits (server-chosen)"
            if res.warning:
                self.negotiated.setdefault("warnings", []).append(res.warning)
                self.trace.add("info", "local", "weak DH parameters", detail=res.warning)
            body = kx.build_client_key_exchange(suite.kx, public)
        self.send(ClientKeyExchange(body=body))
        session_hash = handshake_hash(self.hs_log, suite.prf_hash, version) if self.ems else None
        self.master = master_secret(premaster, ch.random, conn.server_random, hash_name=suite.prf_hash,
                                    session_hash=session_hash, version=version)
        self.log_master()
        if identity is not None:
            chain, key, scheme = identity
            from .signatures import sign
            if version >= 0x0303:
                sig = sign(key, scheme, bytes(self.hs_log), tls13=False)
                self.send(CertificateVerify12(algorithm=scheme, signature=sig))
            else:  # RFC 2246 §7.4.8: no algorithm field, the key type fixes the signature
                self.send(CertificateVerify11(signature=legacy.sign(key, bytes(self.hs_log))))
        self.install_keys()
        conn._send_ccs12(conn._pending_write)
        self.send_finished()

    def _client_identity(self):
        """The chain, key and scheme to answer a CertificateRequest with, or None (RFC 5246 §7.4.6)."""
        cfg = self.config
        if not (cfg.certificate_chain and cfg.private_key is not None):
            self.trace.add("info", "local", "server asked for a client certificate; none configured")
            return None
        if self.conn.version < 0x0303:
            return self._client_identity11()
        from .signatures import schemes_for_key
        allowed = self.cr12.supported_signature_algorithms or []
        scheme = next((s for s in schemes_for_key(cfg.certificate_chain[0]) if s in allowed), None)
        if scheme is None:
            # TLS 1.2 also allows PKCS#1 v1.5 for RSA keys (RFC 5246 §7.4.1.4.1)
            from cryptography.hazmat.primitives.asymmetric import rsa
            if isinstance(cfg.certificate_chain[0].public_key(), rsa.RSAPublicKey):
                scheme = next((s for s in (SignatureScheme.rsa_pkcs1_sha256, SignatureScheme.rsa_pkcs1_sha384,
                                           SignatureScheme.rsa_pkcs1_sha512) if s in allowed), None)
        if scheme is None:
            self.trace.add("info", "local", "client certificate not sent",
                           detail="no signature algorithm allowed by the CertificateRequest fits our key")
            return None
        self.negotiated["client_certificate"] = cfg.certificate_chain[0].subject.rfc4514_string()
        return cfg.certificate_chain, cfg.private_key, scheme

    def _client_identity11(self):
        """TLS 1.0/1.1 (RFC 2246 §7.4.4, RFC 4492 §5.5): our chain if its key type is among the
        request's certificate_types (rsa_sign, ecdsa_sign); the signature is then fixed."""
        cfg = self.config
        try:
            kind = legacy.signature_name(cfg.certificate_chain[0])
        except TLSError:
            kind = None
        wanted = {"rsa_md5_sha1": legacy.RSA_SIGN, "ecdsa_sha1": legacy.ECDSA_SIGN}.get(kind)
        if wanted not in self.cr12.certificate_types:
            self.trace.add("info", "local", "client certificate not sent",
                           detail="the CertificateRequest's certificate_types do not include our key type")
            return None
        self.negotiated["client_certificate"] = cfg.certificate_chain[0].subject.rfc4514_string()
        return cfg.certificate_chain, cfg.private_key, None

    def on_server_finished(self, msg: Finished) -> None:
        # the Finished itself is already in hs_log: check against the log before it
        conn = self.conn
        self.check_peer_finished(msg, client=False)
        if conn.resumed:
            conn._send_ccs12(conn._pending_write)
            self.send_finished()
        self._store_session()
        self.complete()

    def on_new_session_ticket(self, msg: NewSessionTicket12) -> None:
        if not self.ticket_expected or self.new_ticket is not None:
            raise UnexpectedMessage("NewSessionTicket not expected here (RFC 5077 §3.3: one, and only "
                                    "after a session_ticket extension)")
        self.new_ticket = msg

    def _store_session(self) -> None:
        """Keep what resumption needs: the session id and/or ticket, and the master secret."""
        conn = self.conn
        store = conn.session_store
        if store is None:
            return
        from .tickets import Session12
        ticket = self.new_ticket
        sid = self.server_session_id
        s12 = self.offer.session12
        if ticket is not None and ticket.ticket:
            lifetime = ticket.ticket_lifetime_hint or 7200
            blob = ticket.ticket
        elif conn.resumed and s12 is not None:
            blob, lifetime = s12.ticket, s12.lifetime
        else:
            blob, lifetime = b"", 7200
        if not blob and not sid:
            return
        store.add(Session12(server_name=conn._session_key(), session_id=sid, ticket=blob,
                            master_secret=self.master, suite=conn.suite12.code, version=conn.version,
                            ems=self.ems, received_at=self.provider.time(), lifetime=lifetime,
                            verifier=self.config.verifier_id))


def send_renegotiation_probe(conn) -> None:
    """Start a client-initiated renegotiation (RFC 5246 §7.4.1.2, with RFC 5746 §3.5's
    renegotiation_info), only to learn how the server answers: tlslab never completes
    one, so a ServerHello in answer ends the connection (unexpected_message), and a
    no_renegotiation warning leaves it open.  The trace records the answer."""
    from . import extensions as X
    from .messages import ClientHello
    post = conn.hs
    cfg = conn.config
    ext = [Extension(ET.renegotiation_info, X.RenegotiationInfo(renegotiated_connection=post.own_verify_data)),
           Extension(ET.supported_groups, X.NamedGroupList(
               named_group_list=[g for g in cfg.group_codes if g < 0x1000])),
           Extension(ET.ec_point_formats, X.ECPointFormats(ec_point_format_list=[0]))]
    if conn.version >= 0x0303:
        ext.append(Extension(ET.signature_algorithms, X.SignatureSchemeList(
            supported_signature_algorithms=list(cfg.signature_scheme_codes))))
    if post.ems:
        # RFC 7627 §5.3: a renegotiation must keep the extended master secret
        ext.append(Extension(ET.extended_master_secret, X.Empty()))
    hello = ClientHello(legacy_version=conn.version, random=conn.provider.random(32),
                        legacy_session_id=b"", cipher_suites=[conn.suite12.code],
                        legacy_compression_methods=b"\x00", extensions=ext)
    conn.trace.add("info", "local", "renegotiation probe",
                   detail="a new ClientHello under the connection's keys (RFC 5746 §3.5)")
    conn._send_message(hello)


from cryptography.hazmat.primitives.serialization import Encoding as _Encoding  # noqa: E402

_DER = _Encoding.DER
