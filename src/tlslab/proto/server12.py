"""TLS 1.2 (and 1.0/1.1) server state machine (RFC 5246 §7.3, RFC 8422, RFC 7627, RFC 5746,
RFC 5077, RFC 7507; RFC 2246 and RFC 4346 for TLS 1.0/1.1).

Chosen when the client does not offer TLS 1.3 (or the server has it disabled):

full:        START → (SH, Certificate, [SKE], [CR], SHD) → [WAIT_CERT → WAIT_CKE → [WAIT_CV]]
             → WAIT_CCS → WAIT_FINISHED → ([NST], CCS, Finished) → CONNECTED
abbreviated: START → (SH, [NST], CCS, Finished) → WAIT_CCS → WAIT_FINISHED → CONNECTED

TLS 1.0/1.1 are negotiated only when ``ServerConfig.versions`` lists them (never by
default); what differs in them is in :mod:`.tls12.legacy`.  Likewise 3DES and RC4
suites are chosen only when ``ServerConfig.cipher_suites`` names them.
"""
from __future__ import annotations

from . import extensions as X
from .connection import State
from .handshake12 import Handshake12
from .peer_chain import load_peer_chain, validate_peer_chain
from .resumption import encode_chain, may_resume, sni_host
from .server13 import choose_alpn, ordered
from .errors import (HandshakeFailure, IllegalParameter, InappropriateFallback,
                     InsufficientSecurity, ProtocolVersion, TLSError)
from .extensions import ET, Extension, SharedExtension
from .messages import DOWNGRADE_TLS11, DOWNGRADE_TLS12, Finished, ServerHello
from .messages12 import (Certificate12, CertificateRequest11, CertificateRequest12, CertificateVerify12,
                         ClientKeyExchange, NewSessionTicket12, ServerHelloDone, ServerKeyExchange)
from .names import VERSION_NAMES, CipherSuite, HandshakeType as HT, NamedGroup, SignatureScheme, name_of
from .tls12 import keyexchange as kx
from .tls12 import legacy
from .tls12.prf import handshake_hash, master_secret
from .tls12.suites import KX_DHE_RSA, KX_RSA, SUITES12

FALLBACK_SCSV = 0x5600
EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
_FFDHE_NAMES = {0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096",
                0x0103: "ffdhe6144", 0x0104: "ffdhe8192"}
#: RFC 8422 §4: a client without supported_groups lets the server pick any curve; P-256 is
#: the one every ECC client implements (RFC 8422 §5.1.1 "MUST support secp256r1"), where
#: x25519 would fail an old client that never heard of it
_CURVE_WITHOUT_EXTENSION = 0x0017

#: the constant extensions of our hellos, encoded once (extensions.SharedExtension)
_SNI_ACK = SharedExtension(ET.server_name, X.Empty())
_RENEGOTIATION_INFO_EMPTY = SharedExtension(ET.renegotiation_info, X.RenegotiationInfo(renegotiated_connection=b""))
_EMS_ACK = SharedExtension(ET.extended_master_secret, X.Empty())
_ETM_ACK = SharedExtension(ET.encrypt_then_mac, X.Empty())
_EC_POINT_FORMATS = SharedExtension(ET.ec_point_formats, X.ECPointFormats(ec_point_format_list=[0]))


class WaitClientCertificate12(State):
    name = "WAIT_CERT"
    expects = frozenset({HT.certificate})

    @classmethod
    def handle(cls, hs, msg: Certificate12) -> type[State]:
        hs.on_client_certificate(msg)
        return WaitClientKeyExchange12


class WaitClientKeyExchange12(State):
    """RFC 5246 §7.4.7."""

    name = "WAIT_CKE"
    expects = frozenset({HT.client_key_exchange})

    @classmethod
    def handle(cls, hs, msg: ClientKeyExchange) -> type[State]:
        hs.on_client_key_exchange(msg)
        return WaitClientCertificateVerify12 if hs.conn.peer_certificates else WaitClientCCS12


class WaitClientCertificateVerify12(State):
    """RFC 5246 §7.4.8."""

    name = "WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, hs, msg: CertificateVerify12) -> type[State]:
        hs.on_client_certificate_verify(msg)
        return WaitClientCCS12


class WaitClientCCS12(State):
    """RFC 5246 §7.1: only ChangeCipherSpec may come now."""

    name = "WAIT_CCS"


class WaitClientFinished12(State):
    name = "WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, hs, msg: Finished) -> type[State]:
        hs.on_client_finished(msg)
        return ServerConnected12


class ServerConnected12(State):
    """A ClientHello now is a renegotiation attempt, which we refuse (RFC 5746 §4.4)."""

    name = "CONNECTED"
    expects = frozenset({HT.client_hello})

    @classmethod
    def handle(cls, hs, msg) -> type[State]:
        hs.refuse_renegotiation()
        return ServerConnected12


WaitClientCCS12.after_ccs = WaitClientFinished12

SERVER12_TRANSITIONS = {
    WaitClientCertificate12: {WaitClientKeyExchange12},
    WaitClientKeyExchange12: {WaitClientCertificateVerify12, WaitClientCCS12},
    WaitClientCertificateVerify12: {WaitClientCCS12},
    WaitClientCCS12: {WaitClientFinished12},
    WaitClientFinished12: {ServerConnected12},
    ServerConnected12: {ServerConnected12},
}
SERVER12_ENTRY = {WaitClientCertificate12, WaitClientKeyExchange12, WaitClientCCS12}


class ServerHandshake12(Handshake12):
    """One TLS 1.0-1.2 server handshake, from the ClientHello (handed over by the TLS 1.3
    handshake object when TLS 1.3 is not negotiated) to the client's Finished."""

    __slots__ = ("client_hello", "kx_key", "cr12", "issue_ticket", "session_id")

    def __init__(self, conn, client_hello) -> None:
        super().__init__(conn)
        self.client_hello = client_hello
        self.kx_key = None          # our ephemeral (EC)DH private key
        self.cr12 = None            # the CertificateRequest we sent, if any
        self.issue_ticket = False   # RFC 5077 §3.2: the client asked, and we issue tickets
        self.session_id = b""       # the session ID a full handshake puts in the cache

    def on_client_hello(self, ch, offered_versions: list[int]) -> type[State]:
        """RFC 5246 §7.4.1.2-§7.4.1.3: negotiate version, suite, extensions; send our flight.

        The version is the highest one both sides support (RFC 5246 Appendix E.1; without
        supported_versions the client supports everything up to its legacy_version); none
        in common is protocol_version."""
        cfg = self.config
        ours = [v for v in cfg.version_codes if v <= 0x0303]
        version = next((v for v in sorted(offered_versions, reverse=True) if v in ours), None)
        if version is None:
            sv = ch.ext_value(ET.supported_versions)
            if sv is not None:
                theirs = ", ".join(VERSION_NAMES.get(v, f"0x{v:04x}") for v in sv.versions)
            else:  # RFC 5246 Appendix E.1: legacy_version is the highest the client supports
                theirs = "up to " + VERSION_NAMES.get(ch.legacy_version, f"0x{ch.legacy_version:04x}")
            mine = ", ".join(VERSION_NAMES[v] for v in cfg.version_codes)
            raise ProtocolVersion(f"no protocol version in common: client offers {theirs}; "
                                  f"server supports {mine}")
        if FALLBACK_SCSV in ch.cipher_suites and version < cfg.max_version:
            raise InappropriateFallback("client signalled a fallback (TLS_FALLBACK_SCSV) but the server "
                                        f"supports {VERSION_NAMES[cfg.max_version]} (RFC 7507)")
        if b"\x00" not in ch.legacy_compression_methods:
            raise IllegalParameter("ClientHello does not offer the null compression method")
        X.check_tls12_only(ch.extensions)
        ri = ch.ext_value(ET.renegotiation_info)
        if ri is not None and ri.renegotiated_connection != b"":
            raise HandshakeFailure("renegotiation_info is not empty on the initial handshake (RFC 5746 §3.6)")
        secure_reneg = ri is not None or EMPTY_RENEGOTIATION_INFO_SCSV in ch.cipher_suites
        self.conn.tls12 = True
        self.conn.version = version
        self.hs_log = bytearray(ch.raw)
        self.conn.client_random = ch.random
        self.ems = ch.ext(ET.extended_master_secret) is not None
        n = self.negotiated
        n.update(version=VERSION_NAMES[version], secure_renegotiation=secure_reneg,
                 extended_master_secret=self.ems)
        n["server_name"] = sni_host(ch)
        alpn = choose_alpn(cfg, ch)
        n["alpn_protocol"] = alpn
        resumed = self._try_resume(ch, version)
        if resumed is not None:
            return self._resume(ch, resumed)
        return self._full_handshake(ch, version, secure_reneg)

    # -- choices ---------------------------------------------------------------------------
    def _choose_suite(self, ch, version: int):
        """Suite, group, signature scheme: the first of our (or the client's) preferences that
        our certificate and the client's groups/signature algorithms can serve."""
        cfg = self.config
        cert = cfg.certificate_chain[0]
        sg = ch.ext_value(ET.supported_groups)
        client_groups = sg.named_group_list if sg is not None else None
        sa = ch.ext_value(ET.signature_algorithms)
        client_schemes = sa.supported_signature_algorithms if sa is not None else None
        order = ([c for c in cfg.suites12 if c in ch.cipher_suites] if cfg.prefer_server_order
                 else [c for c in ch.cipher_suites if c in cfg.suites12])
        reasons = []
        ffdhe_mismatch = False
        for code in order:
            suite = SUITES12[code]
            # 3DES / RC4 (suite.legacy) are in cfg.suites12 only when named explicitly:
            # no default list has them, so reaching one here is the configuration's choice
            if not legacy.suite_usable(suite, version) or not suite.available:
                continue
            try:
                kx.check_key_for_kx(suite.kx, cfg.certificate_key)
                if version < 0x0303 and suite.ephemeral:
                    legacy.check_signing_key(cert)
            except TLSError:
                reasons.append(f"{suite.name}: needs another certificate type")
                continue
            group = None
            if suite.kx.startswith("ECDHE"):
                candidates = [g for g in cfg.group_codes if g in kx.ECDHE_GROUPS]
                if client_groups is not None:
                    candidates = [g for g in candidates if g in client_groups]
                elif _CURVE_WITHOUT_EXTENSION in candidates:
                    candidates = [_CURVE_WITHOUT_EXTENSION]
                if not candidates:
                    reasons.append(f"{suite.name}: no common curve")
                    continue
                group = candidates[0]
            elif suite.kx == KX_DHE_RSA:
                # RFC 7919 §4: use a named FFDHE group the client lists; none listed -> ffdhe2048.
                # Any code point 256..511 counts as listed, even one unknown to us.
                listed = [g for g in (client_groups or []) if 0x0100 <= g <= 0x01FF]
                if listed:
                    ours = [g for g in cfg.group_codes if g in listed and g in _FFDHE_NAMES]
                    if not ours:
                        reasons.append(f"{suite.name}: no common FFDHE group")
                        ffdhe_mismatch = True
                        continue
                    group = ours[0]
                else:
                    group = 0x0100
            scheme = None
            if suite.ephemeral and version >= 0x0303:  # TLS 1.0/1.1 have fixed signatures
                try:
                    scheme = kx.select_signature_scheme(cert, client_schemes, allow_sha1=False,
                                                        preference=cfg.schemes12)
                except TLSError as e:
                    reasons.append(f"{suite.name}: {e}")
                    continue
                if scheme not in cfg.signature_scheme_codes:
                    reasons.append(f"{suite.name}: signature scheme disabled")
                    continue
            return suite, group, scheme
        offered = ", ".join(name_of(CipherSuite, c) for c in ch.cipher_suites[:8])
        detail = "; ".join(reasons[:4])
        if ffdhe_mismatch:
            # RFC 7919 §4: FFDHE groups listed, none acceptable, and no other suite fits
            raise InsufficientSecurity(
                f"no FFDHE group in common for TLS 1.2 DHE (client lists "
                f"{', '.join(name_of(NamedGroup, g) for g in client_groups if g in range(0x100, 0x200))}) "
                "and no other cipher suite fits (RFC 7919 §4)")
        raise HandshakeFailure(f"no cipher suite in common for {VERSION_NAMES[version]}: client offers "
                               f"{offered}" + (f" ({detail})" if detail else ""))

    # -- resumption (RFC 5246 §7.3, RFC 5077) ---------------------------------------------------
    def _check_ems_on_resumption(self, session_ems: bool) -> bool:
        """RFC 7627 §5.3: a session made with EMS must not be resumed without it (abort);
        one made without EMS is not resumed when the client now offers it (full handshake)."""
        if session_ems and not self.ems:
            raise HandshakeFailure("the session used the extended master secret but this ClientHello "
                                   "does not offer it (RFC 7627 §5.3)")
        return session_ems == self.ems

    def _try_resume(self, ch, version: int):
        cfg = self.config
        now = self.provider.time()
        st = ch.ext_value(ET.session_ticket)
        if st is not None and st.data and cfg.tickets > 0:
            state = cfg.ticket_keys.open(st.data, now)
            if state is not None and state.version == version and now - state.issued_ms / 1000 <= state.lifetime:
                if state.suite in ch.cipher_suites and state.suite in cfg.suites12 \
                        and self._check_ems_on_resumption(state.ems) \
                        and may_resume(self.conn, ch, state.server_name, state.peer_cert):
                    self.trace.add("info", "local", "session ticket accepted")
                    return (state.psk, state.suite, "ticket")
            self.trace.add("info", "local", "session ticket not usable: full handshake")
        sid = ch.legacy_session_id
        if sid and cfg.session_cache is not None:
            item = cfg.session_cache.get(sid, now)
            if item is not None:
                master, suite, v, ems, peer, sni = item
                if v == version and suite not in ch.cipher_suites:
                    # RFC 5246 §7.4.1.2: a ClientHello resuming a session "MUST include at
                    # least the cipher_suite from that session" (OpenSSL: illegal_parameter)
                    raise IllegalParameter(f"ClientHello resumes a session of "
                                           f"{name_of(CipherSuite, suite)} without offering it")
                if v == version and suite in ch.cipher_suites and suite in cfg.suites12 \
                        and self._check_ems_on_resumption(ems) and may_resume(self.conn, ch, sni, peer):
                    self.trace.add("info", "local", "session ID resumed")
                    return (master, suite, "session_id")
        return None

    def _server_hello(self, ch, suite, session_id: bytes, extra: list) -> None:
        random = self.provider.random(32)
        if self.config.max_version >= 0x0304:
            # RFC 8446 §4.1.3: tell a TLS 1.3 client that we could have done better
            random = random[:24] + (DOWNGRADE_TLS12 if self.conn.version == 0x0303 else DOWNGRADE_TLS11)
        elif self.config.max_version == 0x0303 and self.conn.version < 0x0303:
            # RFC 8446 §4.1.3: a TLS 1.2 server negotiating TLS 1.1 or below SHOULD say so too
            random = random[:24] + DOWNGRADE_TLS11
        self.conn.server_random = random
        exts = []
        if self.negotiated["secure_renegotiation"]:
            exts.append(_RENEGOTIATION_INFO_EMPTY)
        if self.ems:
            exts.append(_EMS_ACK)
        exts += extra
        if self.config.lab_heartbeat is not None:
            from .lab_faults import heartbeat_extensions  # LAB ONLY (RFC 6520 §2)
            exts += heartbeat_extensions(self.conn, ch)
        alpn = self.negotiated["alpn_protocol"]
        if alpn is not None:
            exts.append(Extension(ET.application_layer_protocol_negotiation,
                                  X.ProtocolNameList(protocol_name_list=[alpn.encode("latin-1")])))
        if self.negotiated["server_name"] is not None and self.config.acknowledge_server_name:
            exts.append(_SNI_ACK)
        sh = ServerHello(legacy_version=self.conn.version, random=random, legacy_session_id_echo=session_id,
                         cipher_suite=suite.code, legacy_compression_method=0,
                         extensions=ordered(self.config, exts))
        self.send(sh)
        self.conn.suite12 = suite
        self.negotiated["cipher_suite"] = suite.name

    def _resume(self, ch, resumed) -> type[State]:
        """Abbreviated handshake: ServerHello, [NewSessionTicket], ChangeCipherSpec, Finished."""
        master, suite_code, how = resumed
        suite = SUITES12[suite_code]
        self.etm = ch.ext(ET.encrypt_then_mac) is not None and suite.cbc
        self.negotiated["encrypt_then_mac"] = self.etm
        issue = ch.ext(ET.session_ticket) is not None and self.config.tickets > 0
        extra = []
        if self.etm:
            extra.append(_ETM_ACK)
        if issue:
            extra.append(Extension(ET.session_ticket, X.RawBody(data=b"")))
        sid = ch.legacy_session_id
        if self.config.lab_ticketbleed:
            from .lab_faults import ticketbleed_session_id  # LAB ONLY: CVE-2016-9244
            sid = ticketbleed_session_id(self.conn, sid, how)
        self._server_hello(ch, suite, sid, extra)
        self.master = master
        self.conn.resumed = True
        self.log_master()
        if issue:
            self._send_ticket()
        self.install_keys()
        self.conn._send_ccs12(self.conn._pending_write)
        self.send_finished()
        return WaitClientCCS12

    # -- full handshake ------------------------------------------------------------------------
    def _full_handshake(self, ch, version: int, secure_reneg: bool) -> type[State]:
        cfg = self.config
        suite, group, scheme = self._choose_suite(ch, version)
        self.etm = ch.ext(ET.encrypt_then_mac) is not None and suite.cbc
        self.negotiated["encrypt_then_mac"] = self.etm
        self.issue_ticket = ch.ext(ET.session_ticket) is not None and cfg.tickets > 0
        extra = []
        if suite.kx.startswith("ECDHE"):
            X.check_point_formats(ch.ext(ET.ec_point_formats))
        if suite.kx.startswith("ECDHE") and ch.ext(ET.ec_point_formats) is not None:
            extra.append(_EC_POINT_FORMATS)
        if self.etm:
            extra.append(_ETM_ACK)
        if self.issue_ticket:
            extra.append(Extension(ET.session_ticket, X.RawBody(data=b"")))
        self.session_id = self.provider.random(32) if cfg.session_cache is not None else b""
        self._server_hello(ch, suite, self.session_id, extra)
        self.send(Certificate12(certificate_list=list(cfg.certificate_ders)))
        if suite.ephemeral:
            if suite.kx.startswith("ECDHE"):
                self.kx_key, params = kx.ecdhe_server_key(group, self.provider)
                self.negotiated["group"] = name_of(NamedGroup, group)
            else:
                self.kx_key, params = kx.dhe_server_key(self.provider, _FFDHE_NAMES[group])
                self.negotiated["group"] = _FFDHE_NAMES[group]
            sig = self._sign_server_params(ch, scheme, params)
            self.send(ServerKeyExchange(body=kx.build_server_key_exchange(params, scheme, sig,
                                                                                     version)))
            if scheme is not None:
                self.negotiated["signature_scheme"] = name_of(SignatureScheme, scheme)
        self.cr12 = None
        if cfg.client_trust and cfg.client_auth_in_handshake:
            self.cr12 = self._certificate_request()
            self.send(self.cr12)
        self.send(ServerHelloDone())
        return WaitClientCertificate12 if self.cr12 is not None else WaitClientKeyExchange12

    def _sign_server_params(self, ch, scheme: int | None, params: bytes) -> bytes:
        """The ServerKeyExchange signature (RFC 5246 §7.4.3); ``scheme`` None means TLS 1.0/1.1,
        whose signature algorithm is fixed by the key type (RFC 2246 §7.4.3, RFC 4492 §5.4)."""
        cfg = self.config
        signed = kx.signed_content(ch.random, self.conn.server_random, params)
        sig = self.provider.recorded_signature(scheme)
        if scheme is None:
            if sig is not None:  # replaying a recorded trace: the signature must still verify
                legacy.verify(cfg.certificate_chain[0], signed, sig, "recorded ServerKeyExchange")
                return sig
            self.trace.add("info", "local", "TLS 1.0/1.1 ServerKeyExchange signature",
                           detail=f"{legacy.signature_name(cfg.private_key)}: fixed by the key type, "
                                  "no signature_algorithms before TLS 1.2 (RFC 2246 §7.4.3)")
            return legacy.sign(cfg.private_key, signed)
        if sig is not None:
            from .signatures import verify
            verify(cfg.certificate_chain[0], scheme, signed, sig, tls13=False)
            return sig
        return kx.sign_server_params(cfg.private_key, scheme, ch.random, self.conn.server_random, params)

    def _certificate_request(self):
        """RFC 5246 §7.4.4: the certificate types and CAs we accept, and in TLS 1.2 the
        signature algorithms; TLS 1.0/1.1 have no such list (RFC 4346 §7.4.4)."""
        cfg = self.config
        cas = []
        for ca in cfg.client_trust:
            der = ca.subject.public_bytes()
            if der not in cas:
                cas.append(der)
        types = [legacy.RSA_SIGN, legacy.ECDSA_SIGN]  # RFC 4492 §5.5 adds ecdsa_sign
        if self.conn.version < 0x0303:
            return CertificateRequest11(certificate_types=types, certificate_authorities=cas)
        schemes = [s for s in cfg.signature_scheme_codes if s < 0x0900]
        return CertificateRequest12(certificate_types=types, supported_signature_algorithms=schemes,
                                    certificate_authorities=cas)

    def on_client_certificate(self, msg: Certificate12) -> None:
        if not msg.certificate_list:
            if self.config.require_client_cert:
                # certificate_required exists only in TLS 1.3; RFC 5246 §7.4.6 says handshake_failure
                raise HandshakeFailure("client sent no certificate, and one is required")
            self.trace.add("info", "local", "client sent no certificate (optional)")
            return
        certs = load_peer_chain(self.conn, msg.certificate_list)
        validate_peer_chain(self.conn, certs, msg.certificate_list)

    def on_client_key_exchange(self, msg: ClientKeyExchange) -> None:
        """RFC 5246 §7.4.7, §8.1: the premaster, then the (extended) master secret."""
        suite = self.conn.suite12
        value = kx.parse_client_key_exchange(suite.kx, msg.body)
        if suite.kx == KX_RSA and self.config.lab_rsa_padding_oracle:
            from .lab_faults import leaky_decrypt_premaster  # LAB ONLY: a ROBOT oracle
            premaster = leaky_decrypt_premaster(self.config.private_key,
                                                value.encrypted_pre_master_secret)
        elif suite.kx == KX_RSA:
            premaster = kx.decrypt_premaster(self.config.private_key, value.encrypted_pre_master_secret,
                                             self.client_hello.legacy_version, self.provider)
        elif suite.kx.startswith("ECDHE"):
            premaster = kx.ecdhe_server_premaster(self.kx_key, value.ecdh_Yc)
        else:
            premaster = kx.dhe_server_premaster(self.kx_key, value.dh_Yc)
        conn = self.conn
        session_hash = handshake_hash(self.hs_log, suite.prf_hash, conn.version) if self.ems else None
        self.master = master_secret(premaster, conn.client_random, conn.server_random,
                                    hash_name=suite.prf_hash, session_hash=session_hash, version=conn.version)
        self.log_master()
        self.install_keys()

    def on_client_certificate_verify(self, msg: CertificateVerify12) -> None:
        """RFC 5246 §7.4.8: the client's signature over the handshake messages before it;
        in TLS 1.0/1.1 without an algorithm field, MD5+SHA-1 RSA or SHA-1 ECDSA (RFC 2246 §7.4.8)."""
        if self.conn.version < 0x0303:
            signed = bytes(self.hs_log[:-len(msg.raw)])
            legacy.verify(self.conn.peer_certificates[0], signed, msg.signature, "client CertificateVerify")
            self.trace.add("info", "local", "client CertificateVerify verified",
                           detail=legacy.signature_name(self.conn.peer_certificates[0]))
            return
        if msg.algorithm not in self.cr12.supported_signature_algorithms:
            raise IllegalParameter(f"client signed with {name_of(SignatureScheme, msg.algorithm)}, "
                                   "which the CertificateRequest did not allow")
        from .signatures import verify
        signed = bytes(self.hs_log[:-len(msg.raw)])
        verify(self.conn.peer_certificates[0], msg.algorithm, signed, msg.signature, tls13=False)
        self.negotiated["client_signature_scheme"] = name_of(SignatureScheme, msg.algorithm)

    def on_client_finished(self, msg: Finished) -> None:
        self.check_peer_finished(msg, client=True)
        if not self.conn.resumed:
            if self.issue_ticket:
                self._send_ticket()
            self.conn._send_ccs12(self.conn._pending_write)
            self.send_finished()
            if self.session_id and self.config.session_cache is not None:
                self.config.session_cache.put(
                    self.session_id, (self.master, self.conn.suite12.code, self.conn.version, self.ems,
                                       encode_chain(self.conn.peer_certificates),
                                       self.negotiated["server_name"] or ""),
                    self.provider.time())
        self.complete()

    def _send_ticket(self) -> None:
        """RFC 5077 §3.3: the session state sealed under our ticket keys."""
        from .tickets import TicketState
        cfg = self.config
        now = self.provider.time()
        lifetime = min(cfg.ticket_lifetime, 86400)
        state = TicketState(suite=self.conn.suite12.code, psk=self.master, issued_ms=int(now * 1000),
                            lifetime=lifetime, age_add=0, alpn=self.negotiated["alpn_protocol"] or "",
                            server_name=self.negotiated["server_name"] or "", version=self.conn.version,
                            ems=self.ems, peer_cert=encode_chain(self.conn.peer_certificates))
        self.send(NewSessionTicket12(ticket_lifetime_hint=lifetime,
                                                ticket=cfg.ticket_keys.seal(state, now, self.provider)))


__all__ = ["ServerHandshake12", "SERVER12_TRANSITIONS", "SERVER12_ENTRY"]
