"""TLS 1.3 server state machine (RFC 8446 §2, §4, Appendix A.2).

States: START → (HelloRetryRequest → WAIT_CH2) → WAIT_FINISHED → CONNECTED.
The server's whole first flight (ServerHello … Finished) is produced while
handling the ClientHello, as in the RFC's diagram (RECVD_CH → NEGOTIATED →
WAIT_FLIGHT2).
"""
from __future__ import annotations

import hmac



from .config import ServerConfig
from .connection import Connection, State
from .errors import (CertificateRequired, DecryptError, HandshakeFailure, IllegalParameter,
                     InappropriateFallback, MissingExtension,
                     NoApplicationProtocol, ProtocolVersion, UnexpectedMessage, UnrecognizedName)
from . import extensions as X
from .extensions import ET, Extension
from .groups import SUPPORTED_GROUPS, obsolete_in_tls13, server_key_share
from .keyschedule import SUITES, Transcript
from .messages import (Certificate, certificate_entries, truncated_for_binders, CertificateRequest, CertificateVerify, ClientHello,
                       EncryptedExtensions, Finished, HRR_RANDOM, KeyUpdate, ServerHello)
from .names import (VERSION_NAMES, CipherSuite, HandshakeType as HT, NamedGroup,
                    ProtocolVersion as PV, SignatureScheme, name_of)
from .provider import Provider
from .pha import PhaWaitCertificate, PhaWaitCertificateVerify, PhaWaitFinished, ServerPha
from .resumption import encode_chain, may_resume
from .server12 import SERVER12_ENTRY, SERVER12_TRANSITIONS, Server12
from .signatures import TLS13_CERTVERIFY_SCHEMES, certificate_verify_input, schemes_for_key, sign, verify

TLS13 = 0x0304
#: RFC 8446 §8.2: early data is refused when the ticket age is off by more than 10 s, so a
#: replay can only succeed within that window; the replay cache covers twice as much
AGE_SKEW_LIMIT = 10
REPLAY_WINDOW = 2 * AGE_SKEW_LIMIT



#: PSK identities of one ClientHello the server tries (RFC 8446 §4.2.11: the server selects
#: one; trying each costs a ticket decryption).  Go tries 5 (maxClientPSKIdentities) and
#: ignores the rest, so that a cheap ClientHello cannot make us decrypt hundreds of tickets;
#: the rest are ignored, not an error (a full handshake follows if none of these fits).
MAX_PSK_IDENTITIES_TRIED = 5


class ServerStart(State):
    """RFC 8446 §4.1.2: waiting for the ClientHello."""

    name = "START"
    expects = frozenset({HT.client_hello})

    @classmethod
    def handle(cls, conn: "ServerConnection", msg: ClientHello) -> type[State]:
        return conn._on_client_hello(msg, second=False)


class WaitClientHello2(State):
    """RFC 8446 §4.1.4: after a HelloRetryRequest, the updated ClientHello."""

    name = "WAIT_CH2"
    expects = frozenset({HT.client_hello})

    @classmethod
    def handle(cls, conn: "ServerConnection", msg: ClientHello) -> type[State]:
        return conn._on_client_hello(msg, second=True)


class WaitEndOfEarlyData(State):
    """RFC 8446 §4.5: 0-RTT application data, until EndOfEarlyData."""

    name = "WAIT_EOED"
    expects = frozenset({HT.end_of_early_data})

    @classmethod
    def handle(cls, conn: "ServerConnection", msg) -> type[State]:
        conn._on_end_of_early_data(msg)
        return WaitClientFinished


class WaitClientCertificate(State):
    """RFC 8446 §4.4.2: the client's Certificate after our CertificateRequest."""

    name = "WAIT_CERT"
    expects = frozenset({HT.certificate})

    @classmethod
    def handle(cls, conn: "ServerConnection", msg: Certificate) -> type[State]:
        return conn._on_client_certificate(msg)


class WaitClientCertificateVerify(State):
    """RFC 8446 §4.4.3: the client's proof of possession of its key."""

    name = "WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, conn: "ServerConnection", msg: CertificateVerify) -> type[State]:
        conn._on_client_certificate_verify(msg)
        return WaitClientFinished


class WaitClientFinished(State):
    """RFC 8446 §4.4.4: the client's Finished."""

    name = "WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, conn: "ServerConnection", msg: Finished) -> type[State]:
        conn._on_client_finished(msg)
        return ServerConnected


class ServerConnected(State):
    name = "CONNECTED"
    expects = frozenset({HT.key_update})  # a post-handshake CertificateRequest moves to PHA_WAIT_CERT

    @classmethod
    def handle(cls, conn: "ServerConnection", msg: KeyUpdate) -> type[State]:
        conn._handle_key_update(msg)
        return ServerConnected


SERVER_TRANSITIONS = {
    **SERVER12_TRANSITIONS,
    ServerStart: {WaitClientHello2, WaitClientFinished, WaitClientCertificate, WaitEndOfEarlyData,
                  *SERVER12_ENTRY},
    WaitClientHello2: {WaitClientFinished, WaitClientCertificate},
    WaitEndOfEarlyData: {WaitClientFinished},
    WaitClientCertificate: {WaitClientCertificateVerify, WaitClientFinished},
    WaitClientCertificateVerify: {WaitClientFinished},
    WaitClientFinished: {ServerConnected},
    ServerConnected: {ServerConnected, PhaWaitCertificate},
    PhaWaitCertificate: {PhaWaitCertificate, PhaWaitCertificateVerify, PhaWaitFinished},
    PhaWaitCertificateVerify: {PhaWaitFinished},
    PhaWaitFinished: {ServerConnected},
}


class ServerConnection(ServerPha, Server12, Connection):
    """The server side of one TLS 1.3 connection (sans-IO)."""

    is_client = False
    TRANSITIONS = SERVER_TRANSITIONS
    INITIAL = ServerStart
    CONNECTED_STATE = ServerConnected

    def __init__(self, config: ServerConfig, provider: Provider | None = None) -> None:
        super().__init__(config, provider)
        self._ch1: ClientHello | None = None
        self._hrr_group: int | None = None
        self._cookie_key: bytes | None = None
        self.client_hello: ClientHello | None = None
        self._cert_request: CertificateRequest | None = None
        self.resumed = False
        self._early_accepted = False
        self._early_bytes = 0
        self._own_receive_limit = 0x4001

    def _can_send_application_data(self) -> bool:
        # RFC 8446 §4.4.4: the server may send data right after its Finished (0.5-RTT), to a
        # peer not yet authenticated (§E.1).  When it asked for a client certificate, that
        # data could be meant only for the certificate's holder: nothing is sent before the
        # certificate (or its absence) has been checked and the client's Finished verified.
        if self.handshake_complete:
            return True
        if self._cert_request is not None:
            return False
        return self.state in (WaitEndOfEarlyData, WaitClientFinished)

    def _ccs_allowed(self) -> bool:
        return self.state is not ServerStart

    # -- ClientHello -------------------------------------------------------------------
    def _on_client_hello(self, ch: ClientHello, second: bool) -> type[State]:
        cfg: ServerConfig = self.config
        self.client_hello = ch
        if not second:
            self.client_random = ch.random
            if cfg.require_sni:
                _require_server_name(ch)
        else:
            # RFC 8446 §4.2.10: records skipped after a HelloRetryRequest are the 0-RTT data
            # sent with the first ClientHello; the second may not offer early data, so from
            # here a record that does not decrypt is bad_record_mac, not more skipped 0-RTT
            self._skip_early_budget = 0
        sv = ch.ext_value(ET.supported_versions)
        if sv is None or TLS13 not in sv.versions or TLS13 not in cfg.version_codes:
            if second:
                raise IllegalParameter("second ClientHello no longer offers TLS 1.3")
            # RFC 8446 §4.2.1: with supported_versions, legacy_version is ignored
            offered = ([v for v in sv.versions if v <= 0x0303] if sv is not None
                       else [v for v in (0x0303, 0x0302, 0x0301, 0x0300) if v <= ch.legacy_version])
            _refuse_fallback(ch, sv, cfg)
            if cfg.min_version > 0x0303 or not offered:
                theirs = (", ".join(name_of(PV, v) for v in sv.versions) if sv is not None
                          else _legacy_name(ch.legacy_version))
                mine = ", ".join(VERSION_NAMES[v] for v in cfg.version_codes)
                raise ProtocolVersion(f"no protocol version in common: client offers {theirs}; "
                                      f"server supports {mine}")
            return self._on_client_hello12(ch, offered)
        if ch.legacy_version < 0x0303:
            raise ProtocolVersion(f"ClientHello legacy_version 0x{ch.legacy_version:04x} with TLS 1.3 offered")
        if ch.legacy_compression_methods != b"\x00":
            raise IllegalParameter("TLS 1.3 ClientHello must offer only the null compression method")
        exts = ch.extensions or []
        for i, e in enumerate(exts):
            if e.type == ET.pre_shared_key and i != len(exts) - 1:
                raise IllegalParameter("pre_shared_key is not the last extension (RFC 8446 §4.2.11)")
        if second:
            self._check_second_hello(ch)
        # cipher suite
        suite_code = _choose(cfg.suites13, ch.cipher_suites, cfg.prefer_server_order)
        if suite_code is None:
            raise HandshakeFailure("no cipher suite in common: client offers "
                                   + _names(CipherSuite, ch.cipher_suites, 8))
        if second and suite_code != self.suite.code:
            raise IllegalParameter("cipher suite changed after HelloRetryRequest")
        self.suite = SUITES[suite_code]
        if second and ch.ext(ET.early_data) is not None:
            raise IllegalParameter("early_data in the ClientHello after a HelloRetryRequest (RFC 8446 §4.2.10)")
        # PSK modes (RFC 8446 §4.2.9): psk_dhe_ke when the client allows it, else psk_ke
        modes_ext = ch.ext_value(ET.psk_key_exchange_modes)
        client_modes = modes_ext.ke_modes if modes_ext is not None else []
        if ch.ext(ET.pre_shared_key) is not None and modes_ext is None:
            raise MissingExtension("pre_shared_key offered without psk_key_exchange_modes")
        psk_ke_only = 1 not in client_modes and 0 in client_modes and 0 in cfg.psk_mode_codes
        # signature scheme for our certificate (not needed if a PSK is accepted)
        sa = ch.ext_value(ET.signature_algorithms)
        scheme = None
        if sa is not None:
            ours = cfg.__dict__.get("_our_schemes13")
            if ours is None:  # fixed per certificate and config
                ours = cfg.__dict__["_our_schemes13"] = [
                    s for s in schemes_for_key(cfg.certificate_chain[0]) if s in cfg.signature_scheme_codes]
            scheme = next((s for s in ours if s in sa.supported_signature_algorithms
                           and s in TLS13_CERTVERIFY_SCHEMES), None)
        if cfg.tls13_pkcs1_signatures and sa is not None:
            scheme = _pkcs1_scheme(cfg.certificate_chain[0], sa) or scheme
        # key exchange group
        sg = ch.ext_value(ET.supported_groups)
        ks = ch.ext_value(ET.key_share)
        _refuse_obsolete_groups(sg, ks)
        if psk_ke_only and ch.ext(ET.pre_shared_key) is not None:
            psk = self._select_psk(ch, second, psk_ke=True)
            if psk is not None:
                return self._answer(ch, None, None, scheme, psk)
        if sg is None or ks is None:
            raise MissingExtension("ClientHello lacks " + ("supported_groups" if sg is None else "key_share")
                                   + " (required without a PSK, RFC 8446 §9.2)")
        shares: dict = {}
        for entry in ks.client_shares:
            if entry.group in shares:
                raise IllegalParameter(f"two key shares for {name_of(NamedGroup, entry.group)}")
            if entry.group not in sg.named_group_list:
                raise IllegalParameter(f"key share for {name_of(NamedGroup, entry.group)}, "
                                       "which is not in supported_groups")
            shares[entry.group] = entry
        mutual = [g for g in _order(cfg.group_codes, sg.named_group_list, cfg.prefer_server_order)
                  if g in SUPPORTED_GROUPS]
        if not mutual:
            raise HandshakeFailure("no key exchange group in common: client offers "
                                   + _names(NamedGroup, sg.named_group_list, 8))
        group = next((g for g in mutual if g in shares), None)
        if second:
            if list(shares) != [self._hrr_group] and self._hrr_group is not None:
                raise IllegalParameter("second ClientHello must carry exactly the key share requested")
            group = self._hrr_group if self._hrr_group is not None else group
        need_cookie = cfg.cookie_hrr and not second
        if not second and (group is None or need_cookie):
            return self._send_hello_retry_request(ch, group if group is not None else mutual[0], shares)
        if group is None:
            raise IllegalParameter("no usable key share after HelloRetryRequest")
        psk = None
        if ch.ext(ET.pre_shared_key) is not None and 1 in client_modes and 1 in cfg.psk_mode_codes:
            psk = self._select_psk(ch, second, psk_ke=False)
        return self._answer(ch, group, shares[group], scheme, psk)

    def _answer(self, ch: ClientHello, group, share, scheme, psk) -> type[State]:
        """Send ServerHello and the rest of our flight; pick the next state."""
        if psk is None and scheme is None:
            sa = ch.ext_value(ET.signature_algorithms)
            if sa is None:
                raise MissingExtension("ClientHello has no signature_algorithms (needed for a certificate)")
            ours = [s for s in schemes_for_key(self.config.certificate_chain[0])
                    if s in self.config.signature_scheme_codes]
            raise HandshakeFailure("no signature algorithm in common for our certificate: we can sign with "
                                   + _names(SignatureScheme, ours) + "; client accepts "
                                   + _names(SignatureScheme, sa.supported_signature_algorithms, 8))
        alpn = self._choose_alpn(ch)
        sni = ch.ext_value(ET.server_name)
        if sni is not None:
            names = [s.host_name.decode("ascii", "replace") for s in sni.server_name_list if s.name_type == 0]
            self.negotiated["server_name"] = names[0] if names else None
        self._send_first_flight(ch, group, share, scheme, alpn, psk)
        if self._early_accepted:
            return WaitEndOfEarlyData
        return WaitClientCertificate if self._cert_request is not None else WaitClientFinished

    # -- PSK (RFC 8446 §4.2.11) ------------------------------------------------------------
    def _select_psk(self, ch: ClientHello, second: bool, psk_ke: bool):
        """The first offered ticket we can resume, with its binder checked; or None.

        Unknown, forged or expired tickets are skipped (a full handshake follows);
        a wrong binder on the ticket we would use is fatal (decrypt_error).
        """
        offered = ch.ext_value(ET.pre_shared_key)
        if len(offered.identities) != len(offered.binders):
            raise IllegalParameter(f"{len(offered.identities)} PSK identities but "
                                   f"{len(offered.binders)} binders")
        now = self.provider.time()
        keys = self.config.ticket_keys
        for index, ident in enumerate(offered.identities):
            if index >= MAX_PSK_IDENTITIES_TRIED:
                self.trace.add("info", "local", "PSK identities not tried",
                               detail=f"identities {index} to {len(offered.identities) - 1}: only the "
                                      f"first {MAX_PSK_IDENTITIES_TRIED} are tried")
                break
            state = keys.open(ident.identity, now)
            if state is None:
                self.trace.add("info", "local", "PSK identity not usable",
                               detail=f"identity {index}: not a ticket we issued (or its key has rotated)")
                continue
            age = now - state.issued_ms / 1000
            if age > state.lifetime or age < -10:
                self.trace.add("info", "local", "PSK identity not usable",
                               detail=f"identity {index}: ticket expired {age - state.lifetime:.0f}s ago")
                continue
            if state.version != 0x0304 or state.suite not in SUITES or \
                    SUITES[state.suite].hash_name != self.suite.hash_name:
                self.trace.add("info", "local", "PSK identity not usable",
                               detail=f"identity {index}: its hash differs from the chosen suite's")
                continue
            # binder over the ClientHello truncated before the binders list
            expected, sched = self._psk_binder(self.suite, state.psk, self.transcript if second else None,
                                               truncated_for_binders(ch.raw, offered.binders))
            if not hmac.compare_digest(expected, offered.binders[index]):
                raise DecryptError(f"PSK binder {index} does not verify")
            if not may_resume(self, ch, state.server_name, state.peer_cert):
                continue
            client_age_ms = (ident.obfuscated_ticket_age - state.age_add) & 0xFFFFFFFF
            self.trace.add("info", "local", "PSK accepted",
                           summary={"identity": index, "mode": "psk_ke" if psk_ke else "psk_dhe_ke",
                                    "ticket_age_s": round(age, 3), "client_age_s": client_age_ms / 1000})
            return {"index": index, "state": state, "psk_ke": psk_ke, "binder": offered.binders[index],
                    "age_skew": abs(client_age_ms / 1000 - age), "schedule": sched}
        return None

    def _early_data_ok(self, ch: ClientHello, psk, alpn) -> bool:
        """RFC 8446 §4.2.10: accept 0-RTT only for the first identity, same suite and ALPN,
        a fresh ticket, and a binder not seen before (single use, §8.1)."""
        cfg = self.config
        if ch.ext(ET.early_data) is None or psk is None:
            return False
        reasons = []
        st = psk["state"]
        if cfg.max_early_data_size <= 0 or st.max_early_data <= 0:
            reasons.append("0-RTT is disabled")
        if psk["index"] != 0:
            reasons.append("PSK is not the first identity")
        if st.suite != self.suite.code:
            reasons.append("cipher suite differs from the ticket's")
        if (alpn or "") != st.alpn:
            reasons.append("ALPN differs from the ticket's")
        if psk["age_skew"] > AGE_SKEW_LIMIT:
            reasons.append(f"ticket age off by {psk['age_skew']:.1f}s (freshness window is {AGE_SKEW_LIMIT}s)")
        if not reasons and not cfg.ticket_keys.first_use(psk["binder"], self.provider.time(), REPLAY_WINDOW):
            reasons.append("replayed: this ClientHello was seen before")
        if reasons:
            self.trace.add("info", "local", "0-RTT early data rejected", detail="; ".join(reasons))
            return False
        return True

    def _check_second_hello(self, ch: ClientHello) -> None:
        """RFC 8446 §4.1.2: ClientHello2 must match ClientHello1 except for the allowed changes."""
        ch1 = self._ch1
        if (ch.random != ch1.random or ch.legacy_session_id != ch1.legacy_session_id
                or ch.cipher_suites != ch1.cipher_suites):
            raise IllegalParameter("second ClientHello changed random, session id or cipher suites")
        if _fixed_extensions(ch) != _fixed_extensions(ch1):
            raise IllegalParameter("second ClientHello changed, added, removed or reordered "
                                   "extensions other than those RFC 8446 §4.1.2 lets it change")
        if self._cookie_key is not None:
            c = ch.ext_value(ET.cookie)
            if c is None:
                raise MissingExtension("second ClientHello did not return the cookie")
            if not self._cookie_valid(c.cookie):
                raise IllegalParameter("second ClientHello returned a cookie we did not issue")

    def _send_hello_retry_request(self, ch: ClientHello, group: int, shares: dict) -> type[State]:
        """RFC 8446 §4.1.4: ask for another key share and/or return a cookie."""
        self._ch1 = ch
        self.transcript = Transcript(self.suite.hash_name)
        self.transcript.update(ch.raw)
        self.transcript.restart_for_hrr()
        exts = [Extension(ET.supported_versions, X.SupportedVersionsSH(selected_version=TLS13))]
        if group not in shares:
            self._hrr_group = group
            exts.append(Extension(ET.key_share, X.KeyShareHRR(selected_group=group)))
        if self.config.cookie_hrr:
            self._cookie_key = self.provider.random(32)
            ch1_hash = self.transcript.digest()  # hash of the message_hash message
            cookie = ch1_hash + hmac.new(self._cookie_key, ch1_hash, "sha256").digest()
            exts.append(Extension(ET.cookie, X.Cookie(cookie=cookie)))
        hrr = ServerHello(legacy_version=0x0303, random=HRR_RANDOM,
                          legacy_session_id_echo=ch.legacy_session_id, cipher_suite=self.suite.code,
                          legacy_compression_method=0, extensions=self._ordered(exts))
        self.transcript.update(self._send_message(hrr))
        self.negotiated["hello_retry"] = True
        self._ccs_received = 0  # the client may send a compatibility CCS before each ClientHello
        if ch.ext(ET.early_data) is not None:
            # RFC 8446 §4.2.10: after a HelloRetryRequest, skip the 0-RTT records
            self._skip_early_budget = max(self.config.max_early_data_size, 16384) + 256
        if ch.legacy_session_id:
            self._send_ccs()  # RFC 8446 §D.4
            self._ccs_sent = True
        return WaitClientHello2

    def _ordered(self, exts: list) -> list:
        """Apply ``ServerConfig.extension_order`` (to mimic a given server's byte layout)."""
        order = self.config.extension_order_codes
        if not order:
            return exts
        rank = {code: i for i, code in enumerate(order)}
        return sorted(exts, key=lambda e: rank.get(e.type, len(rank)))

    def _cookie_valid(self, cookie: bytes) -> bool:
        n = self.suite.hash_len
        if len(cookie) != n + 32:
            return False
        mac = hmac.new(self._cookie_key, cookie[:n], "sha256").digest()
        return hmac.compare_digest(mac, cookie[n:]) and hmac.compare_digest(cookie[:n], self._ch1_hash())

    def _ch1_hash(self) -> bytes:
        t = Transcript(self.suite.hash_name)
        t.update(self._ch1.raw)
        t.restart_for_hrr()
        return t.digest()

    def _choose_alpn(self, ch: ClientHello) -> str | None:
        """RFC 7301 §3.2: our first preference that the client offers, else no_application_protocol."""
        offered = ch.ext_value(ET.application_layer_protocol_negotiation)
        if offered is None or not self.config.alpn_protocols:
            return None
        names = [p.decode("latin-1") for p in offered.protocol_name_list]
        for p in self.config.alpn_protocols:
            if p in names:
                return p
        raise NoApplicationProtocol(f"no ALPN protocol in common: client offers {names}, "
                                    f"server supports {self.config.alpn_protocols}")

    # -- first flight ------------------------------------------------------------------
    def _send_first_flight(self, ch: ClientHello, group: int | None, share, scheme: int | None,
                           alpn: str | None, psk) -> None:
        """ServerHello, then EncryptedExtensions, Certificate, CertificateVerify, Finished (RFC 8446 §2);
        with a PSK, no Certificate or CertificateVerify (§2.2)."""
        cfg: ServerConfig = self.config
        sh_exts = []
        shared = None
        if group is not None:
            server_public, shared = server_key_share(group, share.key_exchange, self.provider)
            sh_exts.append(Extension(ET.key_share, X.KeyShareSH(server_share=X.KeyShareEntry(
                group=group, key_exchange=server_public))))
        if psk is not None:
            sh_exts.append(Extension(ET.pre_shared_key, X.SelectedPsk(selected_identity=psk["index"])))
        sh_exts.append(Extension(ET.supported_versions, X.SupportedVersionsSH(selected_version=TLS13)))
        sh = ServerHello(
            legacy_version=0x0303, random=self.provider.random(32),
            legacy_session_id_echo=ch.legacy_session_id, cipher_suite=self.suite.code,
            legacy_compression_method=0, extensions=self._ordered(sh_exts))
        if self.transcript is None:
            self.transcript = Transcript(self.suite.hash_name)
            self.transcript.update(ch.raw)
        else:
            self.transcript.update(ch.raw)  # ClientHello2 after the HRR
        self.transcript.update(self._send_message(sh))
        n = self.negotiated
        n.update(version="TLS 1.3", cipher_suite=self.suite.name,
                 group=name_of(NamedGroup, group) if group is not None else None,
                 signature_scheme=name_of(SignatureScheme, scheme) if psk is None else None,
                 alpn_protocol=alpn)
        self.resumed = psk is not None
        self._early_accepted = self._early_data_ok(ch, psk, alpn)
        ks = self.schedule = self._new_schedule(self.suite)
        ks.extract_early(psk["state"].psk if psk is not None else None)
        if self._early_accepted:
            t = Transcript(self.suite.hash_name)
            t.update(ch.raw)
            self._early_read_secret = ks.early_traffic(t.digest())
        elif ch.ext(ET.early_data) is not None:
            # §4.2.10: skip the client's 0-RTT records that will not decrypt
            self._skip_early_budget = max(cfg.max_early_data_size, 16384) + 256
        ks.extract_handshake(shared)
        c_hs, s_hs = ks.handshake_traffic(self.transcript.digest())
        self._c_hs = c_hs
        if ch.legacy_session_id and not getattr(self, "_ccs_sent", False):
            self._send_ccs()  # RFC 8446 §D.4: after the ServerHello
        self._set_write_secret(s_hs)
        if ch.ext(ET.record_size_limit) is not None:
            self._apply_peer_record_size_limit(ch.ext_value(ET.record_size_limit).record_size_limit)
            # RFC 8449 §4: our own limit, announced in EncryptedExtensions, binds the client
            # from its handshake records on (its 0-RTT data was sent before it knew it)
            self._own_receive_limit = min(cfg.record_size_limit, 0x4001)
        # EncryptedExtensions
        ee_exts = []
        if cfg.advertised_group_codes:
            ee_exts.append(Extension(ET.supported_groups, X.NamedGroupList(
                named_group_list=list(cfg.advertised_group_codes))))
        rsl = ch.ext_value(ET.record_size_limit)
        if rsl is not None:
            ee_exts.append(Extension(ET.record_size_limit, X.RecordSizeLimit(
                record_size_limit=cfg.record_size_limit)))
        if n["server_name"] is not None and cfg.acknowledge_server_name:
            ee_exts.append(Extension(ET.server_name, X.Empty()))
        if self._early_accepted:
            ee_exts.append(Extension(ET.early_data, X.Empty()))
        if alpn is not None:
            ee_exts.append(Extension(ET.application_layer_protocol_negotiation,
                                     X.ProtocolNameList(protocol_name_list=[alpn.encode("latin-1")])))
        self.transcript.update(self._send_message(EncryptedExtensions(extensions=self._ordered(ee_exts))))
        if psk is None:
            if cfg.client_trust and cfg.client_auth_in_handshake:
                self._cert_request = self._certificate_request()
                self.transcript.update(self._send_message(self._cert_request))
            self._send_certificate(scheme)
        # Finished
        fin = Finished(verify_data=ks.verify_data(s_hs, self.transcript.digest()))
        self.transcript.update(self._send_message(fin))
        ks.extract_master()
        c_ap, s_ap = ks.application_traffic(self.transcript.digest())
        self._app_read_secret, self._app_write_secret = c_ap, s_ap
        self._set_write_secret(s_ap)
        if self._early_accepted:
            self._set_read_secret(self._early_read_secret, "ClientHello")
        else:
            self._set_read_secret(c_hs, "ClientHello")
            self._receive_limit = self._own_receive_limit

    def _send_certificate(self, scheme: int) -> None:
        """RFC 8446 §4.4.2, §4.4.3: our chain, then the signature over the transcript."""
        cfg = self.config
        msg = cfg.__dict__.get("_certificate_message")
        if msg is None:
            # the same bytes for every handshake with this config: encode them once
            msg = Certificate(certificate_request_context=b"",
                              certificate_list=certificate_entries(cfg.certificate_chain))
            msg.encode()
            cfg.__dict__["_certificate_message"] = msg
        self.transcript.update(self._send_message(msg))
        signed = certificate_verify_input(self.transcript.digest(), server=True)
        sig = self.provider.recorded_signature(scheme)
        # tls13=False only for the lab's deliberate PKCS#1 v1.5 (ServerConfig.tls13_pkcs1_signatures)
        tls13 = scheme in TLS13_CERTVERIFY_SCHEMES
        if sig is not None:
            verify(cfg.certificate_chain[0], scheme, signed, sig, tls13=tls13)  # a replayed signature must be valid
        else:
            sig = sign(cfg.private_key, scheme, signed, tls13=tls13)
        self.transcript.update(self._send_message(CertificateVerify(algorithm=scheme, signature=sig)))

    def _on_end_of_early_data(self, msg) -> None:
        """RFC 8446 §4.5: the end of 0-RTT; from here the client uses its handshake key."""
        self.transcript.update(msg.raw)
        self._set_read_secret(self._c_hs, "EndOfEarlyData")
        self._receive_limit = self._own_receive_limit

    def _note_application_data(self, fragment: bytes) -> bool:
        """Count 0-RTT bytes against max_early_data_size (§4.2.10); True if the data is early."""
        if self.state is not WaitEndOfEarlyData:
            return False
        self._early_bytes += len(fragment)
        if self._early_bytes > self.config.max_early_data_size:
            raise UnexpectedMessage(f"client sent {self._early_bytes} bytes of early data, more than "
                                    f"max_early_data_size {self.config.max_early_data_size}")
        return True

    def _can_receive_application_data(self) -> bool:
        return self.handshake_complete or self.state is WaitEndOfEarlyData

    def _send_tickets(self) -> None:
        """RFC 8446 §4.6.1: NewSessionTicket messages, each with its own nonce and age_add."""
        cfg = self.config
        modes = self.client_hello.ext_value(ET.psk_key_exchange_modes) if self.client_hello else None
        if cfg.tickets <= 0 or modes is None:
            return
        import struct
        from .messages import NewSessionTicket as NST
        from .tickets import TicketState
        now = self.provider.time()
        rms = self.schedule.secrets["resumption_master_secret"]
        lifetime = min(cfg.ticket_lifetime, 604800)
        for i in range(cfg.tickets):
            nonce = i.to_bytes(1, "big")
            age_add = struct.unpack(">I", self.provider.random(4))[0]
            state = TicketState(suite=self.suite.code, psk=self.schedule.resumption_psk(rms, nonce),
                                issued_ms=int(now * 1000), lifetime=lifetime, age_add=age_add,
                                max_early_data=cfg.max_early_data_size,
                                alpn=self.negotiated["alpn_protocol"] or "",
                                server_name=self.negotiated["server_name"] or "",
                                peer_cert=encode_chain(self.peer_certificates))
            exts = []
            if cfg.max_early_data_size > 0:
                exts.append(Extension(ET.early_data, X.EarlyDataNST(max_early_data_size=cfg.max_early_data_size)))
            self._send_message(NST(ticket_lifetime=lifetime, ticket_age_add=age_add, ticket_nonce=nonce,
                                   ticket=cfg.ticket_keys.seal(state, now, self.provider), extensions=exts))

    def _certificate_request(self) -> CertificateRequest:
        """RFC 8446 §4.3.2: the schemes we verify, and the CAs we trust as certificate_authorities."""
        schemes = [s for s in self.config.signature_scheme_codes if s in TLS13_CERTVERIFY_SCHEMES]
        exts = [Extension(ET.signature_algorithms, X.SignatureSchemeList(
            supported_signature_algorithms=schemes))]
        names = []
        for ca in self.config.client_trust:
            der = ca.subject.public_bytes()
            if der not in names:
                names.append(der)
        if names:
            exts.append(Extension(ET.certificate_authorities, X.DistinguishedNames(authorities=names)))
        return CertificateRequest(certificate_request_context=b"", extensions=exts)

    def _on_client_certificate(self, msg: Certificate) -> type[State]:
        """RFC 8446 §4.4.2, §4.4.2.4: validate the client's chain (or accept none, if allowed)."""
        if msg.certificate_request_context != b"":
            raise IllegalParameter("client Certificate has a non-empty request context")
        if not msg.certificate_list:
            if self.config.require_client_cert:
                raise CertificateRequired("client sent no certificate, and one is required")
            self.trace.add("info", "local", "client sent no certificate (optional)")
            self.transcript.update(msg.raw)
            return WaitClientFinished
        certs = self._load_peer_chain([entry.cert_data for entry in msg.certificate_list])
        self._validate_peer_chain(certs)
        self.transcript.update(msg.raw)
        return WaitClientCertificateVerify

    def _on_client_certificate_verify(self, msg: CertificateVerify) -> None:
        self._check_client_certificate_verify(self._cert_request, self.transcript, msg)

    def _on_client_finished(self, msg: Finished) -> None:
        self._check_finished(self.schedule.verify_data(self._c_hs, self.transcript.digest()),
                             msg.verify_data, "client Finished")
        self.transcript.update(msg.raw)
        self.schedule.resumption_master(self.transcript.digest())
        self._handshake_transcript = self.transcript.copy()  # the base of post-handshake auth
        self._set_read_secret(self._app_read_secret, "client Finished")
        self._complete(resumed=self.resumed,
                       early_data_accepted=self._early_accepted if self.client_hello.ext(ET.early_data) else None)
        self._send_tickets()



def _require_server_name(ch: ClientHello) -> None:
    """RFC 6066 §3: a server that cannot serve a client without a name "SHOULD ... abort the
    handshake by sending a fatal-level unrecognized_name(112) alert" (ServerConfig.require_sni).
    An extension without a host_name entry names nothing either."""
    sni = ch.ext_value(ET.server_name)
    names = [s for s in sni.server_name_list if s.name_type == 0] if sni is not None else []
    if not names:
        raise UnrecognizedName("ClientHello has no server_name (SNI), and this server requires one "
                               "(RFC 6066 §3)")


#: PKCS#1 v1.5 schemes, best first (SHA-1 is never signed: signatures.py refuses it)
_PKCS1_SCHEMES = (SignatureScheme.rsa_pkcs1_sha256, SignatureScheme.rsa_pkcs1_sha384,
                  SignatureScheme.rsa_pkcs1_sha512)


def _pkcs1_scheme(cert, sa) -> int | None:
    """ServerConfig.tls13_pkcs1_signatures (lab only): the scheme a broken server signs its
    TLS 1.3 CertificateVerify with, against RFC 8446 §4.4.3, which requires RSASSA-PSS: the
    first rsa_pkcs1_* scheme the client offered, else rsa_pkcs1_sha256 all the same (such
    servers do not look).  None unless the certificate has an rsaEncryption key (an
    RSASSA-PSS key cannot make PKCS#1 v1.5 signatures at all)."""
    from cryptography.x509.oid import PublicKeyAlgorithmOID
    if cert.public_key_algorithm_oid != PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5:
        return None
    return next((s for s in sa.supported_signature_algorithms if s in _PKCS1_SCHEMES),
                SignatureScheme.rsa_pkcs1_sha256)


def _order(ours: list[int], theirs: list[int], server_first: bool) -> list[int]:
    if server_first:
        return [x for x in ours if x in theirs]
    return [x for x in theirs if x in ours]


def _choose(ours: list[int], theirs: list[int], server_first: bool) -> int | None:
    both = _order(ours, theirs, server_first)
    return both[0] if both else None


def _names(enum_cls, values, limit: int = 100) -> str:
    shown = [name_of(enum_cls, v) for v in values[:limit]]
    more = f" (+{len(values) - limit} more)" if len(values) > limit else ""
    return ", ".join(shown) + more if shown else "nothing"


def _legacy_name(v: int) -> str:
    from .names import VERSION_NAMES
    return VERSION_NAMES.get(v, f"0x{v:04x}") + " only"


def _refuse_obsolete_groups(sg, ks) -> None:
    """RFC 8446 §4.2.7: groups in the obsolete_RESERVED ranges "MUST NOT be offered or
    negotiated by TLS 1.3 implementations".  A ClientHello that offers TLS 1.3 with one in
    supported_groups or key_share breaks that rule; the stricter reading (tlslite-ng's, and
    what tlsfuzzer expects) answers illegal_parameter instead of quietly skipping it."""
    offered = list(sg.named_group_list if sg is not None else [])
    offered += [e.group for e in (ks.client_shares if ks is not None else [])]
    bad = next((g for g in offered if obsolete_in_tls13(g)), None)
    if bad is not None:
        raise IllegalParameter(f"ClientHello offering TLS 1.3 lists {name_of(NamedGroup, bad)}, "
                               "a group TLS 1.3 made obsolete (RFC 8446 §4.2.7)")


def _refuse_fallback(ch: ClientHello, sv, cfg: ServerConfig) -> None:
    """RFC 7507 §3: TLS_FALLBACK_SCSV with a highest offered version below the server's
    highest is answered with inappropriate_fallback, also when that version is one the
    server does not speak at all: the alert tells the client its retry was a downgrade
    (an attack, or a broken middlebox), where protocol_version would invite another."""
    if CipherSuite.TLS_FALLBACK_SCSV not in ch.cipher_suites:
        return
    real = [v for v in (sv.versions if sv is not None else [ch.legacy_version])
            if 0x0300 <= v <= 0x0304]  # GREASE and drafts are not versions offered
    client_max = max(real, default=ch.legacy_version)
    if client_max < cfg.max_version:
        theirs = VERSION_NAMES.get(client_max, f"0x{client_max:04x}")
        raise InappropriateFallback(f"client signalled a fallback (TLS_FALLBACK_SCSV) offering at "
                                    f"most {theirs}, but the server supports "
                                    f"{VERSION_NAMES[cfg.max_version]} (RFC 7507 §3)")


#: RFC 8446 §4.1.2: what the ClientHello after a HelloRetryRequest may change: a new
#: key_share, early_data removed, the cookie added, pre_shared_key updated, padding
#: resized; and ECH, whose payload is new in each ClientHello (draft-ietf-tls-esni §6.1.5).
_MAY_CHANGE_AFTER_HRR = frozenset({ET.key_share, ET.early_data, ET.cookie, ET.pre_shared_key,
                                   ET.padding, ET.encrypted_client_hello})


def _fixed_extensions(ch: ClientHello) -> list[tuple[int, bytes]]:
    """The extensions a second ClientHello must repeat, in the same order and byte for byte."""
    return [(e.type, e.data) for e in ch.extensions or [] if e.type not in _MAY_CHANGE_AFTER_HRR]
