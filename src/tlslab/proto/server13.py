"""The TLS 1.3 server handshake (RFC 8446 §2, §4, Appendix A.2).

States: START → (HelloRetryRequest → WAIT_CH2) → [WAIT_EOED] → [WAIT_CERT → WAIT_CV]
→ WAIT_FINISHED → CONNECTED.  The server's whole first flight (ServerHello …
Finished) is produced while handling the ClientHello, as in the RFC's diagram
(RECVD_CH → NEGOTIATED → WAIT_FLIGHT2).

:class:`ServerHandshake13` holds that handshake's data (the ClientHello, the transcript,
the PSK and 0-RTT decisions, the client handshake secret); a ClientHello without TLS 1.3
goes to :class:`~tlslab.proto.server12.ServerHandshake12` instead.  After the client's
Finished the connection keeps a :class:`ServerPostHandshake13`.
"""
from __future__ import annotations

import hmac
import struct

from . import extensions as X
from .cert_auth13 import check_client_certificate_verify
from .config import ServerConfig
from .connection import State
from .errors import (CertificateRequired, DecryptError, HandshakeFailure, IllegalParameter,
                     InappropriateFallback, MissingExtension,
                     NoApplicationProtocol, ProtocolVersion, UnexpectedMessage, UnrecognizedName)
from .extensions import ET, Extension, SharedExtension
from .groups import SUPPORTED_GROUPS, obsolete_in_tls13, server_key_share
from .handshake import Handshake, check_finished, psk_binder
from .keyschedule import SUITES, Transcript
from .messages import (Certificate, CertificateRequest, CertificateVerify, ClientHello, EncryptedExtensions,
                       Finished, HRR_RANDOM, KeyUpdate, NewSessionTicket, ServerHello, truncated_for_binders)
from .names import (VERSION_NAMES, CipherSuite, HandshakeType as HT, NamedGroup,
                    ProtocolVersion as PV, SignatureScheme, name_of)
from .peer_chain import load_peer_chain, validate_peer_chain
from .resumption import encode_chain, may_resume, sni_host
from .signatures import TLS13_CERTVERIFY_SCHEMES, certificate_verify_input, sign, verify

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

#: the constant extensions of our hellos, encoded once (extensions.SharedExtension)
_SUPPORTED_VERSIONS_13 = SharedExtension(ET.supported_versions, X.SupportedVersionsSH(selected_version=TLS13))
_SNI_ACK = SharedExtension(ET.server_name, X.Empty())
_EARLY_DATA_ACK = SharedExtension(ET.early_data, X.Empty())


class ServerStart(State):
    """RFC 8446 §4.1.2: waiting for the ClientHello."""

    name = "START"
    expects = frozenset({HT.client_hello})

    @classmethod
    def handle(cls, hs: "ServerHandshake13", msg: ClientHello) -> type[State]:
        return hs.on_client_hello(msg, second=False)


class WaitClientHello2(State):
    """RFC 8446 §4.1.4: after a HelloRetryRequest, the updated ClientHello."""

    name = "WAIT_CH2"
    expects = frozenset({HT.client_hello})

    @classmethod
    def handle(cls, hs: "ServerHandshake13", msg: ClientHello) -> type[State]:
        return hs.on_client_hello(msg, second=True)


class WaitEndOfEarlyData(State):
    """RFC 8446 §4.5: 0-RTT application data, until EndOfEarlyData."""

    name = "WAIT_EOED"
    expects = frozenset({HT.end_of_early_data})

    @classmethod
    def handle(cls, hs: "ServerHandshake13", msg) -> type[State]:
        hs.on_end_of_early_data(msg)
        return WaitClientFinished


class WaitClientCertificate(State):
    """RFC 8446 §4.4.2: the client's Certificate after our CertificateRequest."""

    name = "WAIT_CERT"
    expects = frozenset({HT.certificate})

    @classmethod
    def handle(cls, hs: "ServerHandshake13", msg: Certificate) -> type[State]:
        return hs.on_client_certificate(msg)


class WaitClientCertificateVerify(State):
    """RFC 8446 §4.4.3: the client's proof of possession of its key."""

    name = "WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, hs: "ServerHandshake13", msg: CertificateVerify) -> type[State]:
        hs.on_client_certificate_verify(msg)
        return WaitClientFinished


class WaitClientFinished(State):
    """RFC 8446 §4.4.4: the client's Finished."""

    name = "WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, hs: "ServerHandshake13", msg: Finished) -> type[State]:
        hs.on_client_finished(msg)
        return ServerConnected


class ServerConnected(State):
    name = "CONNECTED"
    expects = frozenset({HT.key_update})  # a post-handshake CertificateRequest moves to PHA_WAIT_CERT

    @classmethod
    def handle(cls, hs: "ServerPostHandshake13", msg: KeyUpdate) -> type[State]:
        hs.conn._handle_key_update(msg)
        return ServerConnected


class ServerHandshake13(Handshake):
    """One server handshake, from the ClientHello to the client's Finished."""

    __slots__ = ("client_hello", "ch1", "hrr_group", "cookie_key", "transcript", "cert_request",
                 "c_hs", "resumed", "early_accepted", "early_read_secret", "early_bytes",
                 "own_receive_limit")

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.client_hello: ClientHello | None = None   # the latest ClientHello
        self.ch1: ClientHello | None = None            # the first one, after a HelloRetryRequest
        self.hrr_group: int | None = None              # the group the HelloRetryRequest asked for
        self.cookie_key: bytes | None = None           # keys the HelloRetryRequest's cookie
        self.transcript: Transcript | None = None
        self.cert_request: CertificateRequest | None = None
        self.c_hs: bytes | None = None                 # client_handshake_traffic_secret
        self.resumed = False
        self.early_accepted = False                    # 0-RTT accepted (RFC 8446 §4.2.10)
        self.early_read_secret: bytes | None = None
        self.early_bytes = 0                           # 0-RTT bytes received so far
        self.own_receive_limit = 0x4001                # RFC 8449: our limit, once announced

    def to_tls12(self, ch: ClientHello, offered_versions: list[int]) -> type[State]:
        """A ClientHello without TLS 1.3 (or a server without it): a TLS 1.2 handshake
        takes over from here."""
        from .server12 import ServerHandshake12
        hs = ServerHandshake12(self.conn, ch)
        self.conn.hs = hs
        return hs.on_client_hello(ch, offered_versions)

    def note_early_data(self, fragment: bytes) -> None:
        """Count 0-RTT bytes against max_early_data_size (RFC 8446 §4.2.10)."""
        self.early_bytes += len(fragment)
        if self.early_bytes > self.config.max_early_data_size:
            raise UnexpectedMessage(f"client sent {self.early_bytes} bytes of early data, more than "
                                    f"max_early_data_size {self.config.max_early_data_size}")

    # -- ClientHello -------------------------------------------------------------------
    def on_client_hello(self, ch: ClientHello, second: bool) -> type[State]:
        cfg: ServerConfig = self.config
        self.client_hello = ch
        if not second:
            self.conn.client_random = ch.random
            if cfg.require_sni:
                _require_server_name(ch)
        else:
            # RFC 8446 §4.2.10: records skipped after a HelloRetryRequest are the 0-RTT data
            # sent with the first ClientHello; the second may not offer early data, so from
            # here a record that does not decrypt is bad_record_mac, not more skipped 0-RTT
            self.conn._skip_early_budget = 0
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
            return self.to_tls12(ch, offered)
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
        if second and suite_code != self.conn.suite.code:
            raise IllegalParameter("cipher suite changed after HelloRetryRequest")
        self.conn.suite = SUITES[suite_code]
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
            scheme = next((s for s in cfg.schemes13 if s in sa.supported_signature_algorithms
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
            if list(shares) != [self.hrr_group] and self.hrr_group is not None:
                raise IllegalParameter("second ClientHello must carry exactly the key share requested")
            group = self.hrr_group if self.hrr_group is not None else group
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
            ours = self.config.schemes13
            raise HandshakeFailure("no signature algorithm in common for our certificate: we can sign with "
                                   + _names(SignatureScheme, ours) + "; client accepts "
                                   + _names(SignatureScheme, sa.supported_signature_algorithms, 8))
        alpn = choose_alpn(self.config, ch)
        self.negotiated["server_name"] = sni_host(ch)
        self._send_first_flight(ch, group, share, scheme, alpn, psk)
        if self.early_accepted:
            return WaitEndOfEarlyData
        return WaitClientCertificate if self.cert_request is not None else WaitClientFinished

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
                    SUITES[state.suite].hash_name != self.conn.suite.hash_name:
                self.trace.add("info", "local", "PSK identity not usable",
                               detail=f"identity {index}: its hash differs from the chosen suite's")
                continue
            # binder over the ClientHello truncated before the binders list
            expected, sched = psk_binder(self.conn, self.conn.suite, state.psk,
                                         self.transcript if second else None,
                                         truncated_for_binders(ch.raw, offered.binders))
            if not hmac.compare_digest(expected, offered.binders[index]):
                raise DecryptError(f"PSK binder {index} does not verify")
            if not may_resume(self.conn, ch, state.server_name, state.peer_cert):
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
        if st.suite != self.conn.suite.code:
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
        ch1 = self.ch1
        if (ch.random != ch1.random or ch.legacy_session_id != ch1.legacy_session_id
                or ch.cipher_suites != ch1.cipher_suites):
            raise IllegalParameter("second ClientHello changed random, session id or cipher suites")
        if _fixed_extensions(ch) != _fixed_extensions(ch1):
            raise IllegalParameter("second ClientHello changed, added, removed or reordered "
                                   "extensions other than those RFC 8446 §4.1.2 lets it change")
        if self.cookie_key is not None:
            c = ch.ext_value(ET.cookie)
            if c is None:
                raise MissingExtension("second ClientHello did not return the cookie")
            if not self._cookie_valid(c.cookie):
                raise IllegalParameter("second ClientHello returned a cookie we did not issue")

    def _send_hello_retry_request(self, ch: ClientHello, group: int, shares: dict) -> type[State]:
        """RFC 8446 §4.1.4: ask for another key share and/or return a cookie."""
        self.ch1 = ch
        self.transcript = Transcript(self.conn.suite.hash_name)
        self.transcript.update(ch.raw)
        self.transcript.restart_for_hrr()
        exts = [_SUPPORTED_VERSIONS_13]
        if group not in shares:
            self.hrr_group = group
            exts.append(Extension(ET.key_share, X.KeyShareHRR(selected_group=group)))
        if self.config.cookie_hrr:
            self.cookie_key = self.provider.random(32)
            ch1_hash = self.transcript.digest()  # hash of the message_hash message
            cookie = ch1_hash + hmac.new(self.cookie_key, ch1_hash, "sha256").digest()
            exts.append(Extension(ET.cookie, X.Cookie(cookie=cookie)))
        hrr = ServerHello(legacy_version=0x0303, random=HRR_RANDOM,
                          legacy_session_id_echo=ch.legacy_session_id, cipher_suite=self.conn.suite.code,
                          legacy_compression_method=0, extensions=ordered(self.config, exts))
        self.transcript.update(self.conn._send_message(hrr))
        self.negotiated["hello_retry"] = True
        self.conn._ccs_received = 0  # the client may send a compatibility CCS before each ClientHello
        if ch.ext(ET.early_data) is not None:
            # RFC 8446 §4.2.10: after a HelloRetryRequest, skip the 0-RTT records
            self.conn._skip_early_budget = max(self.config.max_early_data_size, 16384) + 256
        if ch.legacy_session_id:
            self.conn._send_ccs()  # RFC 8446 §D.4
            self.conn._ccs_sent = True
        return WaitClientHello2

    def _cookie_valid(self, cookie: bytes) -> bool:
        n = self.conn.suite.hash_len
        if len(cookie) != n + 32:
            return False
        mac = hmac.new(self.cookie_key, cookie[:n], "sha256").digest()
        return hmac.compare_digest(mac, cookie[n:]) and hmac.compare_digest(cookie[:n], self._ch1_hash())

    def _ch1_hash(self) -> bytes:
        t = Transcript(self.conn.suite.hash_name)
        t.update(self.ch1.raw)
        t.restart_for_hrr()
        return t.digest()

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
        sh_exts.append(_SUPPORTED_VERSIONS_13)
        sh = ServerHello(
            legacy_version=0x0303, random=self.provider.random(32),
            legacy_session_id_echo=ch.legacy_session_id, cipher_suite=self.conn.suite.code,
            legacy_compression_method=0, extensions=ordered(self.config, sh_exts))
        if self.transcript is None:
            self.transcript = Transcript(self.conn.suite.hash_name)
            self.transcript.update(ch.raw)
        else:
            self.transcript.update(ch.raw)  # ClientHello2 after the HRR
        self.transcript.update(self.conn._send_message(sh))
        n = self.negotiated
        n.update(version="TLS 1.3", cipher_suite=self.conn.suite.name,
                 group=name_of(NamedGroup, group) if group is not None else None,
                 signature_scheme=name_of(SignatureScheme, scheme) if psk is None else None,
                 alpn_protocol=alpn)
        self.resumed = self.conn.resumed = psk is not None
        self.early_accepted = self._early_data_ok(ch, psk, alpn)
        ks = self.conn.schedule = self.conn._new_schedule(self.conn.suite)
        ks.extract_early(psk["state"].psk if psk is not None else None)
        if self.early_accepted:
            t = Transcript(self.conn.suite.hash_name)
            t.update(ch.raw)
            self.early_read_secret = ks.early_traffic(t.digest())
        elif ch.ext(ET.early_data) is not None:
            # §4.2.10: skip the client's 0-RTT records that will not decrypt
            self.conn._skip_early_budget = max(cfg.max_early_data_size, 16384) + 256
        ks.extract_handshake(shared)
        c_hs, s_hs = ks.handshake_traffic(self.transcript.digest())
        self.c_hs = c_hs
        if ch.legacy_session_id and not self.conn._ccs_sent:
            self.conn._send_ccs()  # RFC 8446 §D.4: after the ServerHello
        self.conn._set_write_secret(s_hs)
        if ch.ext(ET.record_size_limit) is not None:
            self.conn._apply_peer_record_size_limit(ch.ext_value(ET.record_size_limit).record_size_limit)
            # RFC 8449 §4: our own limit, announced in EncryptedExtensions, binds the client
            # from its handshake records on (its 0-RTT data was sent before it knew it)
            self.own_receive_limit = min(cfg.record_size_limit, 0x4001)
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
            ee_exts.append(_SNI_ACK)
        if self.early_accepted:
            ee_exts.append(_EARLY_DATA_ACK)
        if alpn is not None:
            ee_exts.append(Extension(ET.application_layer_protocol_negotiation,
                                     X.ProtocolNameList(protocol_name_list=[alpn.encode("latin-1")])))
        self.transcript.update(self.conn._send_message(EncryptedExtensions(extensions=ordered(self.config, ee_exts))))
        if psk is None:
            if cfg.client_trust and cfg.client_auth_in_handshake:
                self.cert_request = certificate_request(cfg)
                self.transcript.update(self.conn._send_message(self.cert_request))
            self._send_certificate(scheme)
        # Finished
        fin = Finished(verify_data=ks.verify_data(s_hs, self.transcript.digest()))
        self.transcript.update(self.conn._send_message(fin))
        ks.extract_master()
        c_ap, s_ap = ks.application_traffic(self.transcript.digest())
        self.conn._app_read_secret, self.conn._app_write_secret = c_ap, s_ap
        self.conn._set_write_secret(s_ap)
        if self.early_accepted:
            self.conn._set_read_secret(self.early_read_secret, "ClientHello")
        else:
            self.conn._set_read_secret(c_hs, "ClientHello")
            self.conn._receive_limit = self.own_receive_limit

    def _send_certificate(self, scheme: int) -> None:
        """RFC 8446 §4.4.2, §4.4.3: our chain, then the signature over the transcript."""
        cfg = self.config
        # the same bytes for every handshake with this config: encoded once, by the config
        self.transcript.update(self.conn._send_message(cfg.certificate_message13))
        signed = certificate_verify_input(self.transcript.digest(), server=True)
        sig = self.provider.recorded_signature(scheme)
        # tls13=False only for the lab's deliberate PKCS#1 v1.5 (ServerConfig.tls13_pkcs1_signatures)
        tls13 = scheme in TLS13_CERTVERIFY_SCHEMES
        if sig is not None:
            verify(cfg.certificate_chain[0], scheme, signed, sig, tls13=tls13)  # a replayed signature must be valid
        else:
            sig = sign(cfg.private_key, scheme, signed, tls13=tls13)
        self.transcript.update(self.conn._send_message(CertificateVerify(algorithm=scheme, signature=sig)))

    def on_end_of_early_data(self, msg) -> None:
        """RFC 8446 §4.5: the end of 0-RTT; from here the client uses its handshake key."""
        self.transcript.update(msg.raw)
        self.conn._set_read_secret(self.c_hs, "EndOfEarlyData")
        self.conn._receive_limit = self.own_receive_limit

    def on_client_certificate(self, msg: Certificate) -> type[State]:
        """RFC 8446 §4.4.2, §4.4.2.4: validate the client's chain (or accept none, if allowed)."""
        if msg.certificate_request_context != b"":
            raise IllegalParameter("client Certificate has a non-empty request context")
        if not msg.certificate_list:
            if self.config.require_client_cert:
                raise CertificateRequired("client sent no certificate, and one is required")
            self.trace.add("info", "local", "client sent no certificate (optional)")
            self.transcript.update(msg.raw)
            return WaitClientFinished
        ders = [entry.cert_data for entry in msg.certificate_list]
        certs = load_peer_chain(self.conn, ders)
        validate_peer_chain(self.conn, certs, ders)
        self.transcript.update(msg.raw)
        return WaitClientCertificateVerify

    def on_client_certificate_verify(self, msg: CertificateVerify) -> None:
        check_client_certificate_verify(self.conn, self.cert_request, self.transcript, msg)

    def on_client_finished(self, msg: Finished) -> None:
        conn, ch, t = self.conn, self.client_hello, self.transcript
        check_finished(conn.schedule.verify_data(self.c_hs, t.digest()), msg.verify_data, "client Finished")
        t.update(msg.raw)
        conn.schedule.resumption_master(t.digest())
        conn._set_read_secret(conn._app_read_secret, "client Finished")
        # what post-handshake messages need: the transcript through the client Finished (the
        # base of post-handshake auth, §4.4) and what the client offered for it and for tickets
        conn.hs = ServerPostHandshake13(conn, t.copy(), ch.ext(ET.post_handshake_auth) is not None,
                                        ch.ext(ET.psk_key_exchange_modes) is not None)
        conn._complete(resumed=self.resumed,
                       early_data_accepted=self.early_accepted if ch.ext(ET.early_data) else None)
        send_tickets(conn)


class ServerPostHandshake13(Handshake):
    """What a TLS 1.3 server keeps for post-handshake messages (RFC 8446 §4.6): tickets
    and post-handshake client authentication (KeyUpdate is the connection's)."""

    __slots__ = ("handshake_transcript", "pha_offered", "tickets_allowed", "pha_transcript",
                 "pha_request", "pha_certs")

    def __init__(self, conn, handshake_transcript: Transcript, pha_offered: bool,
                 tickets_allowed: bool) -> None:
        super().__init__(conn)
        self.handshake_transcript = handshake_transcript
        self.pha_offered = pha_offered          # the client sent post_handshake_auth (§4.2.6)
        self.tickets_allowed = tickets_allowed  # the client sent psk_key_exchange_modes (§4.2.9)
        self.pha_transcript: Transcript | None = None   # of the outstanding request
        self.pha_request: CertificateRequest | None = None
        self.pha_certs: list = []


def send_tickets(conn) -> None:
    """RFC 8446 §4.6.1: NewSessionTicket messages, each with its own nonce and age_add
    (only to a client that sent psk_key_exchange_modes, §4.2.9)."""
    cfg = conn.config
    if cfg.tickets <= 0 or not conn.hs.tickets_allowed:
        return
    from .tickets import TicketState
    provider, negotiated, schedule = conn.provider, conn.negotiated, conn.schedule
    now = provider.time()
    rms = schedule.secrets["resumption_master_secret"]
    lifetime = min(cfg.ticket_lifetime, 604800)
    peer_cert = encode_chain(conn.peer_certificates)
    for i in range(cfg.tickets):
        nonce = i.to_bytes(1, "big")
        age_add = struct.unpack(">I", provider.random(4))[0]
        state = TicketState(suite=conn.suite.code, psk=schedule.resumption_psk(rms, nonce),
                            issued_ms=int(now * 1000), lifetime=lifetime, age_add=age_add,
                            max_early_data=cfg.max_early_data_size,
                            alpn=negotiated["alpn_protocol"] or "",
                            server_name=negotiated["server_name"] or "", peer_cert=peer_cert)
        exts = []
        if cfg.max_early_data_size > 0:
            exts.append(Extension(ET.early_data, X.EarlyDataNST(max_early_data_size=cfg.max_early_data_size)))
        conn._send_message(NewSessionTicket(ticket_lifetime=lifetime, ticket_age_add=age_add,
                                            ticket_nonce=nonce,
                                            ticket=cfg.ticket_keys.seal(state, now, provider),
                                            extensions=exts))


def certificate_request(cfg: ServerConfig) -> CertificateRequest:
    """RFC 8446 §4.3.2: the schemes we verify, and the CAs we trust as certificate_authorities
    (an empty context: a post-handshake request sets its own)."""
    schemes = [s for s in cfg.signature_scheme_codes if s in TLS13_CERTVERIFY_SCHEMES]
    exts = [Extension(ET.signature_algorithms, X.SignatureSchemeList(
        supported_signature_algorithms=schemes))]
    names = []
    for ca in cfg.client_trust:
        der = ca.subject.public_bytes()
        if der not in names:
            names.append(der)
    if names:
        exts.append(Extension(ET.certificate_authorities, X.DistinguishedNames(authorities=names)))
    return CertificateRequest(certificate_request_context=b"", extensions=exts)


def ordered(cfg: ServerConfig, exts: list) -> list:
    """Apply ``ServerConfig.extension_order`` (to mimic a given server's byte layout)."""
    order = cfg.extension_order_codes
    if not order:
        return exts
    rank = {code: i for i, code in enumerate(order)}
    return sorted(exts, key=lambda e: rank.get(e.type, len(rank)))


def choose_alpn(cfg: ServerConfig, ch: ClientHello) -> str | None:
    """RFC 7301 §3.2: our first preference that the client offers, else no_application_protocol."""
    offered = ch.ext_value(ET.application_layer_protocol_negotiation)
    if offered is None or not cfg.alpn_protocols:
        return None
    names = [p.decode("latin-1") for p in offered.protocol_name_list]
    for p in cfg.alpn_protocols:
        if p in names:
            return p
    raise NoApplicationProtocol(f"no ALPN protocol in common: client offers {names}, "
                                f"server supports {cfg.alpn_protocols}")


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
