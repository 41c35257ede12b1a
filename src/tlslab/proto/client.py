"""TLS 1.3 client state machine (RFC 8446 §2, §4, Appendix A.1).

States follow the RFC's client diagram: START → WAIT_SH → WAIT_EE → WAIT_CERT_CR
→ WAIT_CV → WAIT_FINISHED → CONNECTED.  Each state is a class whose ``handle``
checks one message and returns the next state; :data:`CLIENT_TRANSITIONS` lists
the moves allowed.
"""
from __future__ import annotations

import datetime
import functools


from .config import ClientConfig
from .connection import Connection, State
from .errors import (DecodeError, IllegalParameter, MissingExtension,
                     ProtocolVersion, UnexpectedMessage, UnsupportedExtension)
from .extensions import (ET, Cookie, Extension, KeyShareCH, KeyShareEntry, NamedGroupList,
                         ProtocolNameList, RecordSizeLimit,
                         ServerName, ServerNameList, SignatureSchemeList, SupportedVersionsCH)
from . import extensions as X
from .client12 import CLIENT12_TRANSITIONS, Client12, WaitCertificate12, WaitNewTicketOrCCS12
from .groups import new_key_share
from .pha import ClientPha, pha_extension
from .keyschedule import SUITES, Transcript
from .messages import (DOWNGRADE_TLS11, DOWNGRADE_TLS12, truncated_for_binders, Certificate, CertificateRequest,
                       CertificateVerify, ClientHello, EncryptedExtensions, Finished,
                       KeyUpdate, NewSessionTicket, ServerHello)
from .names import CipherSuite, HandshakeType as HT, NamedGroup, SignatureScheme, is_grease, name_of
from .provider import Provider
from .signatures import TLS13_CERTVERIFY_SCHEMES, certificate_verify_input, verify
from . import events as ev

TLS13 = 0x0304
#: extensions a server may put in ServerHello / HelloRetryRequest (RFC 8446 §4.2 table)
SH_ALLOWED = {ET.key_share, ET.pre_shared_key, ET.supported_versions}
HRR_ALLOWED = {ET.key_share, ET.cookie, ET.supported_versions}
#: RFC 8446 §4.2 table: what EncryptedExtensions may carry (unknown ones fall to the
#: "not offered" check below)
EE_ALLOWED = {ET.server_name, ET.max_fragment_length, ET.supported_groups, ET.use_srtp,
              ET.heartbeat, ET.application_layer_protocol_negotiation, ET.client_certificate_type,
              ET.server_certificate_type, ET.early_data, ET.record_size_limit}
#: extensions that must never appear in EncryptedExtensions (they belong to other messages)
EE_FORBIDDEN = {ET.key_share, ET.pre_shared_key, ET.supported_versions, ET.cookie,
                ET.psk_key_exchange_modes, ET.signature_algorithms, ET.signature_algorithms_cert,
                ET.certificate_authorities, ET.oid_filters, ET.post_handshake_auth,
                ET.status_request, ET.signed_certificate_timestamp, ET.padding}



#: NewSessionTickets of one connection put in the session store.  The store keeps a few per
#: server anyway (TicketStore.per_server, 4; rustls keeps 8 TLS 1.3 tickets per server) and a
#: FileTicketStore rewrites its file on each one, so later tickets are reported, not stored.
MAX_TICKETS_STORED_PER_CONNECTION = 8


class ClientStart(State):
    name = "START"


class WaitServerHello(State):
    """RFC 8446 §4.1.3, §4.1.4: ServerHello or HelloRetryRequest."""

    name = "WAIT_SH"
    expects = frozenset({HT.server_hello})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg: ServerHello) -> type[State]:
        if msg.is_hello_retry_request:
            return conn._on_hello_retry_request(msg)
        if msg.ext(ET.supported_versions) is None and conn.config.min_version <= 0x0303 \
                and conn._hrr is None:
            return conn._on_server_hello12(msg)  # RFC 8446 §4.1.3: a TLS 1.2 (or older) server
        conn._on_server_hello(msg)
        return WaitEncryptedExtensions


class WaitEncryptedExtensions(State):
    """RFC 8446 §4.3.1 (a PSK handshake goes straight on to the server's Finished)."""

    name = "WAIT_EE"
    expects = frozenset({HT.encrypted_extensions})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg: EncryptedExtensions) -> type[State]:
        conn._on_encrypted_extensions(msg)
        return WaitFinished if conn.resumed else WaitCertCR


class WaitCertCR(State):
    """RFC 8446 §4.3.2, §4.4.2: Certificate, or CertificateRequest then Certificate."""

    name = "WAIT_CERT_CR"
    expects = frozenset({HT.certificate, HT.certificate_request})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg) -> type[State]:
        if isinstance(msg, CertificateRequest):
            conn._on_certificate_request(msg)
            return WaitCert
        conn._on_certificate(msg)
        return WaitCertificateVerify


class WaitCert(State):
    name = "WAIT_CERT"
    expects = frozenset({HT.certificate})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg: Certificate) -> type[State]:
        conn._on_certificate(msg)
        return WaitCertificateVerify


class WaitCertificateVerify(State):
    """RFC 8446 §4.4.3."""

    name = "WAIT_CV"
    expects = frozenset({HT.certificate_verify})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg: CertificateVerify) -> type[State]:
        conn._on_certificate_verify(msg)
        return WaitFinished


class WaitFinished(State):
    """RFC 8446 §4.4.4."""

    name = "WAIT_FINISHED"
    expects = frozenset({HT.finished})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg: Finished) -> type[State]:
        conn._on_server_finished(msg)
        return ClientConnected


class ClientConnected(State):
    """RFC 8446 §4.6: post-handshake messages."""

    name = "CONNECTED"
    expects = frozenset({HT.new_session_ticket, HT.key_update, HT.certificate_request})

    @classmethod
    def handle(cls, conn: "ClientConnection", msg) -> type[State]:
        if isinstance(msg, KeyUpdate):
            conn._handle_key_update(msg)
        elif isinstance(msg, CertificateRequest):
            conn._pha_on_certificate_request(msg)  # RFC 8446 §4.6.2
        else:
            conn._on_new_session_ticket(msg)
        return ClientConnected


CLIENT_TRANSITIONS = {
    **CLIENT12_TRANSITIONS,
    ClientStart: {WaitServerHello},
    WaitServerHello: {WaitServerHello, WaitEncryptedExtensions, WaitCertificate12, WaitNewTicketOrCCS12},
    WaitEncryptedExtensions: {WaitCertCR, WaitFinished},
    WaitCertCR: {WaitCert, WaitCertificateVerify},
    WaitCert: {WaitCertificateVerify},
    WaitCertificateVerify: {WaitFinished},
    WaitFinished: {ClientConnected},
    ClientConnected: {ClientConnected},
}


class ClientConnection(ClientPha, Client12, Connection):
    """The client side of one TLS 1.3 connection (sans-IO)."""

    is_client = True
    TRANSITIONS = CLIENT_TRANSITIONS
    INITIAL = ClientStart

    def __init__(self, config: ClientConfig, provider: Provider | None = None, *,
                 now: datetime.datetime | None = None) -> None:
        super().__init__(config, provider)
        self._key_shares: dict[int, object] = {}
        self._client_hello: ClientHello | None = None
        self._ch_raw: list[bytes] = []
        self._hrr: ServerHello | None = None
        self._cert_request: CertificateRequest | None = None
        self._certificate_raw_end = None
        self._ccs_sent = False
        self._now = now
        self.resumed = False
        self.verified_path: list = []   # leaf .. trust anchor, once verified
        self._session = None            # the Session offered as a PSK, if any
        self._early_data: bytes | None = None
        self.early_data_accepted: bool | None = None
        store = getattr(config, "session_store", None)
        self.session_store = store

    # -- start ---------------------------------------------------------------------
    def start_handshake(self, early_data: bytes | None = None) -> None:
        """Queue the ClientHello (RFC 8446 §4.1.2).

        With ``early_data`` and a stored ticket that allows it, the data is sent as
        0-RTT right after the ClientHello (RFC 8446 §4.2.10); ``early_data_accepted``
        (and the HandshakeComplete event) then tell whether the server took it.  If it
        did not, the application must send the data again.
        """
        if self.state is not ClientStart:
            raise RuntimeError("start_handshake() was already called")
        now = self.provider.time()
        self._session12 = None
        template = self.config.client_hello_template
        # a template is replayed as recorded; one that offered a PSK gets a stored ticket in its place
        if self.session_store is not None and (template is None or template.ext(ET.pre_shared_key) is not None):
            if self.config.max_version >= 0x0304:
                self._session = self.session_store.take(self._session_key(), now,
                                                        verifier=self.config.verifier_id)
                if self._session is not None and self._session.suite not in SUITES:
                    self._session = None
            if self._session is None and self.config.min_version <= 0x0303 and template is None:
                from .tickets import Session12
                s12 = self.session_store.take(self._session_key(), now, kind=Session12,
                                              verifier=self.config.verifier_id)
                if s12 is not None and s12.version in self.config.version_codes \
                        and s12.suite in self.config.suites12:
                    self._session12 = s12
        if (early_data and self._session is not None
                and len(early_data) <= self._session.max_early_data):
            self._early_data = bytes(early_data)
        ch = self._build_client_hello()
        if self._session is not None:
            ch = self._add_psk(ch, None)
        self._client_hello = ch
        self._ch_raw.append(self._send_message(ch))
        self._move(WaitServerHello)
        if self._early_data is not None:
            self._send_early_data()

    def _session_key(self) -> str:
        return self.config.server_name or ""

    # -- PSK offer (RFC 8446 §4.2.11) ------------------------------------------------------
    def _add_psk(self, ch: ClientHello, prefix: "Transcript | None") -> ClientHello:
        """Append pre_shared_key (last) and compute its binder over the truncated ClientHello."""
        sess = self._session
        suite = SUITES[sess.suite]
        exts = [e for e in ch.extensions if e.type not in (ET.pre_shared_key, ET.padding)]
        if not any(e.type == ET.psk_key_exchange_modes for e in exts):
            exts.append(Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[1])))
        if self._early_data is None or prefix is not None:
            exts = [e for e in exts if e.type != ET.early_data]
        elif not any(e.type == ET.early_data for e in exts):  # a template's stays where it was
            exts.append(Extension(ET.early_data, X.Empty()))
        ch.extensions = exts
        self._pad(ch, reserve=4 + 2 + 2 + len(sess.ticket) + 4 + 2 + 1 + suite.hash_len)
        identity = X.PskIdentity(identity=sess.ticket,
                                 obfuscated_ticket_age=sess.obfuscated_age(self.provider.time()))
        offered = X.OfferedPsks(identities=[identity], binders=[bytes(suite.hash_len)])
        ch.extensions.append(Extension(ET.pre_shared_key, offered))
        binder, ks = self._psk_binder(suite, sess.psk, prefix,
                                      truncated_for_binders(ch.build(), offered.binders))
        offered.binders = [binder]
        ch.extensions[-1] = Extension(ET.pre_shared_key, offered)
        self._early_schedule = ks
        return ch

    def _send_early_data(self) -> None:
        """RFC 8446 §4.2.10: 0-RTT data under client_early_traffic_secret, after a CCS in
        compatibility mode (§D.4)."""
        ks = self._early_schedule
        t = Transcript(ks.suite.hash_name)
        t.update(self._ch_raw[0])
        early_secret = ks.early_traffic(t.digest())
        if self._client_hello.legacy_session_id and not self._ccs_sent:
            self._ccs_sent = True
            self._send_ccs()
        self.suite = ks.suite
        self._set_write_secret(early_secret)
        self._early_write = True
        self.trace.add("info", "local", "sending 0-RTT early data", summary={"bytes": len(self._early_data)})
        self._send_records(23, self._early_data)

    def _build_client_hello(self) -> ClientHello:
        cfg: ClientConfig = self.config
        template = getattr(cfg, "client_hello_template", None)
        self.client_random = self.provider.random(32)
        if template is not None:
            return self._from_template(template)
        tls13 = cfg.max_version >= 0x0304
        tls12 = cfg.min_version <= 0x0303
        s12 = self._session12
        if s12 is not None and s12.session_id and not s12.ticket:
            session_id = s12.session_id          # RFC 5246 §7.4.1.2: resume by session ID
        elif (tls13 and cfg.compatibility_mode) or (s12 is not None and s12.ticket):
            session_id = self.provider.random(32)  # §D.4, or RFC 5077 §3.4 with a ticket
        else:
            session_id = b""
        exts: list[Extension] = []
        plan, suites = self._hello_plan(tls12, tls13)
        for item in plan:
            if item == "session_ticket":
                ticket = s12.ticket if s12 is not None else b""
                exts.append(Extension(ET.session_ticket, X.RawBody(data=ticket)))
            elif item == "key_share":
                exts.append(Extension(ET.key_share, KeyShareCH(client_shares=[
                    self._make_share(g) for g in cfg.key_share_codes])))
            else:
                exts.append(item)
        ch = ClientHello(legacy_version=min(cfg.max_version, 0x0303), random=self.client_random,
                         legacy_session_id=session_id,
                         cipher_suites=list(suites),
                         legacy_compression_methods=b"\x00", extensions=exts)
        if self._session is None:
            self._pad(ch)
        return ch

    def _hello_plan(self, tls12: bool, tls13: bool) -> tuple[list, list[int]]:
        """The ClientHello's extensions in order, and its cipher suites.

        Everything but the key shares and a TLS 1.2 ticket is the same for every
        connection made with one config, so it is built once and kept on the config
        (the Extension objects are never modified after construction).
        """
        cfg: ClientConfig = self.config
        key = (tls12, tls13, self.session_store is not None)
        cache = cfg.__dict__.setdefault("_hello_plans", {})
        if key in cache:
            return cache[key]
        plan: list = []
        if cfg.server_name and not _is_ip(cfg.server_name):
            # RFC 6066 §3: literal IP addresses are not permitted in SNI
            plan.append(Extension(ET.server_name, ServerNameList(server_name_list=[
                ServerName(name_type=0, host_name=cfg.server_name.encode("idna"))])))
        if tls12:
            plan.append(Extension(ET.ec_point_formats, X.ECPointFormats(ec_point_format_list=[0])))
        groups = list(cfg.group_codes) if tls13 else [g for g in cfg.group_codes if g < 0x1000]
        plan.append(Extension(ET.supported_groups, NamedGroupList(named_group_list=groups)))
        if cfg.max_version >= 0x0303:
            plan.append(Extension(ET.signature_algorithms, SignatureSchemeList(
                supported_signature_algorithms=list(cfg.signature_scheme_codes))))
        if cfg.ocsp_stapling:
            plan.append(Extension(ET.status_request, X.StatusRequest(
                status_type=1, responder_id_list=b"", request_extensions=b"")))
        if cfg.alpn_protocols:
            plan.append(Extension(ET.application_layer_protocol_negotiation, ProtocolNameList(
                protocol_name_list=[p.encode() for p in cfg.alpn_protocols])))
        if cfg.record_size_limit:
            plan.append(Extension(ET.record_size_limit, RecordSizeLimit(record_size_limit=cfg.record_size_limit)))
        if tls12:
            from .tls12.suites import SUITES12
            if any(SUITES12[c].cbc for c in cfg.suites12):
                plan.append(Extension(ET.encrypt_then_mac, X.Empty()))
            plan.append(Extension(ET.extended_master_secret, X.Empty()))
            plan.append(Extension(ET.renegotiation_info, X.RenegotiationInfo(renegotiated_connection=b"")))
            if self.session_store is not None:
                plan.append("session_ticket")
        if tls13:
            plan.append(Extension(ET.supported_versions, SupportedVersionsCH(
                versions=[v for v in cfg.version_codes])))
            if cfg.post_handshake_auth:
                plan.append(pha_extension())  # RFC 8446 §4.2.6
            plan.append("key_share")
        if self.session_store is not None and tls13:
            # lets the server issue tickets we can use (RFC 8446 §4.2.9)
            plan.append(Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[1])))
        suites = list(cfg.suites13 if tls13 else []) + [
            c for c in cfg.suites12 if _suite_min_version(c) <= cfg.max_version]
        if cfg.fallback_scsv:
            suites.append(0x5600)  # RFC 7507: this is a fallback connection
        cache[key] = (plan, suites)
        return plan, suites

    def _pad(self, ch: ClientHello, reserve: int = 0) -> None:
        """RFC 7685: pad a ClientHello whose length is 256..511 bytes up to 512.

        ``reserve`` counts bytes still to be appended (a pre_shared_key, which must stay last).
        """
        if not self.config.pad_client_hello:
            return
        built = ch.build()
        size = len(built) + reserve
        if not reserve and not 256 <= size < 512:
            ch.raw = built  # already final: no need to build it again when sending
            return
        if 256 <= size < 512:
            # the padding extension's own header takes 4 bytes
            ch.extensions.append(Extension(ET.padding, X.RawBody(data=bytes(max(0, 512 - size - 4)))))

    def _from_template(self, template: ClientHello) -> ClientHello:
        """Copy a recorded ClientHello, with a fresh random, session id and key shares.

        This is how tlslab replays RFC 8448 and simulates real clients byte for byte:
        everything the client *chose* is kept, everything that must be fresh is new.
        """
        sid = template.legacy_session_id
        session_id = self.provider.random(len(sid)) if sid else b""
        exts = []
        name = self.config.server_name
        sni = (Extension(ET.server_name, ServerNameList(server_name_list=[
            ServerName(name_type=0, host_name=name.encode("idna"))]))
            if name and not _is_ip(name) else None)
        recorded = template.extensions or []
        if sni is not None and not any(e.type == ET.server_name for e in recorded):
            # RFC 6066 §3: the recorded client sent no name (e.g. Java for a dotless host)
            # but this connection has one: clients put server_name first
            exts.append(sni)
        for e in recorded:
            if e.type == ET.server_name:
                if sni is not None:
                    exts.append(sni)  # the name of this connection, not the recorded one
            elif e.type == ET.key_share and e.value is not None:
                exts.append(Extension(ET.key_share, KeyShareCH(client_shares=[
                    # RFC 8701 §3.1: a GREASE share is sent as recorded (one byte, no key)
                    s if is_grease(s.group) else self._make_share(s.group)
                    for s in e.value.client_shares])))
            elif e.type == ET.pre_shared_key:
                continue  # a recorded PSK offer cannot be reused
            elif e.type == ET.early_data and self._early_data is None:
                continue  # only offered with a ticket and 0-RTT data to send (RFC 8446 §4.2.10)
            else:
                exts.append(e)
        ch = ClientHello(legacy_version=template.legacy_version, random=self.client_random,
                         legacy_session_id=session_id, cipher_suites=list(template.cipher_suites),
                         legacy_compression_methods=template.legacy_compression_methods,
                         extensions=exts)
        self._keep_recorded_length(ch, template)
        return ch

    @staticmethod
    def _keep_recorded_length(ch: ClientHello, template: ClientHello) -> None:
        """RFC 7685: a recorded padding extension grew the hello to a chosen length; a
        different server name changes the length, so the padding absorbs the difference."""
        pad = next((e for e in ch.extensions if e.type == ET.padding), None)
        if pad is None:
            return

        def sni_size(exts) -> int:
            return sum(4 + len(e.data) for e in exts if e.type == ET.server_name)

        delta = sni_size(template.extensions or []) - sni_size(ch.extensions)
        body = bytes(getattr(pad.value, "data", b"") or b"")
        if delta and len(body) + delta >= 0:
            pad.value = X.RawBody(data=bytes(len(body) + delta))

    def _make_share(self, group: int) -> KeyShareEntry:
        share = new_key_share(group, self.provider)
        self._key_shares[group] = share
        return KeyShareEntry(group=group, key_exchange=share.public)

    # -- what was offered --------------------------------------------------------------
    def _offered(self, ext_type: int):
        return self._client_hello.ext_value(ext_type)

    def _offered_suites(self) -> list[int]:
        return self._client_hello.cipher_suites

    def _offered_groups(self) -> list[int]:
        v = self._offered(ET.supported_groups)
        return v.named_group_list if v is not None else []

    def _offered_schemes(self) -> list[int]:
        v = self._offered(ET.signature_algorithms)
        return v.supported_signature_algorithms if v is not None else []

    # -- ServerHello / HRR -------------------------------------------------------------
    def _check_common_hello(self, msg: ServerHello, allowed: set[int]) -> int:
        """Checks shared by ServerHello and HelloRetryRequest; returns the negotiated version."""
        sv = msg.ext_value(ET.supported_versions)
        if sv is None:
            v = msg.legacy_version
            tail = msg.random[-8:]
            if tail in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
                raise IllegalParameter("ServerHello.random carries the TLS 1.3 downgrade sentinel "
                                       "(RFC 8446 §4.1.3): a downgrade attack or a broken middlebox")
            offered = ", ".join(_version_name(x) for x in self.config.version_codes)
            raise ProtocolVersion(f"server selected {_version_name(v)}; the client offered {offered}")
        if sv.selected_version != TLS13:
            raise IllegalParameter(f"server selected version {_version_name(sv.selected_version)} "
                                   "that was not offered")
        if msg.legacy_version != 0x0303:
            raise IllegalParameter(f"ServerHello legacy_version 0x{msg.legacy_version:04x} (must be 0x0303)")
        if msg.legacy_session_id_echo != self._client_hello.legacy_session_id:
            raise IllegalParameter("ServerHello legacy_session_id_echo does not echo our session id")
        if msg.cipher_suite not in self._offered_suites() or msg.cipher_suite not in SUITES:
            raise IllegalParameter(f"server selected cipher suite {name_of(CipherSuite, msg.cipher_suite)} "
                                   "that was not offered")
        if msg.legacy_compression_method != 0:
            raise IllegalParameter("ServerHello legacy_compression_method is not 0")
        offered = {e.type for e in self._client_hello.extensions or []}
        for e in msg.extensions or []:
            if e.type not in offered and e.type != ET.cookie:
                raise UnsupportedExtension(f"server sent extension {e.name} that was not offered")
            if e.type not in allowed:
                raise IllegalParameter(f"extension {e.name} is not allowed in {msg.name}")
        return TLS13

    def _on_hello_retry_request(self, hrr: ServerHello) -> type[State]:
        """RFC 8446 §4.1.4."""
        if self._hrr is not None:
            raise UnexpectedMessage("second HelloRetryRequest")
        self._check_common_hello(hrr, HRR_ALLOWED)
        self._hrr = hrr
        self.suite = SUITES[hrr.cipher_suite]
        ks = hrr.ext_value(ET.key_share)
        cookie = hrr.ext_value(ET.cookie)
        if ks is None and cookie is None:
            raise IllegalParameter("HelloRetryRequest would not change the ClientHello")
        ch1 = self._client_hello
        new_exts = []
        for e in ch1.extensions:
            if e.type == ET.key_share and ks is not None:
                g = ks.selected_group
                if g not in self._offered_groups():
                    raise IllegalParameter(f"HelloRetryRequest selected group {name_of(NamedGroup, g)} "
                                           "that was not offered")
                if g in self._key_shares:
                    raise IllegalParameter(f"HelloRetryRequest asks for {name_of(NamedGroup, g)}, "
                                           "for which a key share was already sent")
                self._key_shares.clear()
                e = Extension(ET.key_share, KeyShareCH(client_shares=[self._make_share(g)]))
            elif e.type in (ET.early_data, ET.pre_shared_key):
                continue  # RFC 8446 §4.1.2: no early data after HRR; the PSK binder is redone
            new_exts.append(e)
        new_exts = [e for e in new_exts if e.type != ET.padding]
        if cookie is not None:
            # Placed where NSS places it (before psk_key_exchange_modes), and in any case
            # before padding and pre_shared_key, which must stay last (RFC 8446 §4.2.11).
            idx = next((i for i, e in enumerate(new_exts)
                        if e.type in (ET.psk_key_exchange_modes, ET.pre_shared_key)), len(new_exts))
            new_exts.insert(idx, Extension(ET.cookie, Cookie(cookie=cookie.cookie)))
        ch2 = ClientHello(legacy_version=ch1.legacy_version, random=ch1.random,
                          legacy_session_id=ch1.legacy_session_id, cipher_suites=ch1.cipher_suites,
                          legacy_compression_methods=ch1.legacy_compression_methods,
                          extensions=new_exts)
        self.transcript = Transcript(self.suite.hash_name)
        self.transcript.update(self._ch_raw[0])
        self.transcript.restart_for_hrr()
        self.transcript.update(hrr.raw)
        self._ccs_received = 0  # the server may send another compatibility CCS after its ServerHello
        if self._early_data is not None:
            self.early_data_accepted = False
            self._early_data = None
        if self._session is not None and SUITES[self._session.suite].hash_name == self.suite.hash_name:
            ch2 = self._add_psk(ch2, self.transcript)
        else:
            self._session = None
            self._pad(ch2)
        self._write_prot = None  # ClientHello2 goes in the clear even after 0-RTT records
        self.negotiated["hello_retry"] = True
        if self._client_hello.legacy_session_id and not self._ccs_sent:  # RFC 8446 §D.4
            self._ccs_sent = True
            self._send_ccs()
        self._client_hello = ch2
        raw = self._send_message(ch2)
        self._ch_raw.append(raw)
        self.transcript.update(raw)
        return WaitServerHello

    def _on_server_hello(self, sh: ServerHello) -> None:
        """RFC 8446 §4.1.3: negotiate, then derive the handshake secrets (§7.1)."""
        if self._hrr is not None:
            self._ccs_received = 0  # JSSE sends a CCS after its HRR and another after this
        self._check_common_hello(sh, SH_ALLOWED)
        if self._hrr is not None and sh.cipher_suite != self._hrr.cipher_suite:
            raise IllegalParameter("ServerHello cipher suite differs from the HelloRetryRequest's")
        psk = None
        sel_psk = sh.ext_value(ET.pre_shared_key)
        if sel_psk is not None:
            if self._session is None or sel_psk.selected_identity != 0:
                raise IllegalParameter(f"server selected PSK identity {sel_psk.selected_identity}, "
                                       "which was not offered")
            if SUITES[self._session.suite].hash_name != SUITES[sh.cipher_suite].hash_name:
                raise IllegalParameter("server selected a cipher suite whose hash does not match the PSK's")
            psk = self._session.psk
            self.resumed = True
        ks = sh.ext_value(ET.key_share)
        if ks is None:
            # we only offer psk_dhe_ke, so a key share is always required
            raise MissingExtension("ServerHello has no key_share")
        share = ks.server_share
        if self._hrr is not None:
            sel = self._hrr.ext_value(ET.key_share)
            if sel is not None and share.group != sel.selected_group:
                raise IllegalParameter("ServerHello key share group differs from the one HelloRetryRequest chose")
        my_share = self._key_shares.get(share.group)
        if my_share is None:
            raise IllegalParameter(f"server key share for {name_of(NamedGroup, share.group)}, "
                                   "for which no share was sent")
        shared = my_share.shared_secret(share.key_exchange)
        self.suite = SUITES[sh.cipher_suite]
        if self.transcript is None:
            self.transcript = Transcript(self.suite.hash_name)
            self.transcript.update(self._ch_raw[0])
        self.transcript.update(sh.raw)
        n = self.negotiated
        n["version"] = "TLS 1.3"
        n["cipher_suite"] = self.suite.name
        n["group"] = name_of(NamedGroup, share.group)
        self.schedule = self._new_schedule(self.suite)
        self.schedule.extract_early(psk)
        self.schedule.extract_handshake(shared)
        c_hs, s_hs = self.schedule.handshake_traffic(self.transcript.digest())
        self._c_hs = c_hs
        self._s_hs = s_hs
        self._set_read_secret(s_hs, "ServerHello")

    # -- encrypted flight ------------------------------------------------------------
    def _on_encrypted_extensions(self, msg: EncryptedExtensions) -> None:
        offered = {e.type for e in self._client_hello.extensions or []}
        for e in msg.extensions:
            if e.type in EE_FORBIDDEN or (e.type not in EE_ALLOWED and e.value is not None):
                # RFC 8446 §4.2: a known extension where it is not defined is illegal_parameter
                raise IllegalParameter(f"extension {e.name} is not allowed in EncryptedExtensions")
            if e.type not in offered and e.type != ET.supported_groups:
                raise UnsupportedExtension(f"server sent extension {e.name} that was not offered")
        alpn = msg.ext_value(ET.application_layer_protocol_negotiation)
        if alpn is not None:
            names = alpn.protocol_name_list
            if len(names) != 1 or names[0].decode("latin-1") not in (self.config.alpn_protocols or []):
                raise IllegalParameter(f"server selected ALPN {names!r}, which was not offered")
            self.negotiated["alpn_protocol"] = names[0].decode("latin-1")
        if msg.ext(ET.server_name) is not None:
            self.negotiated["server_name"] = self.config.server_name
        rsl = msg.ext_value(ET.record_size_limit)
        if rsl is not None:
            self._apply_peer_record_size_limit(rsl.record_size_limit)
            if self.config.record_size_limit:
                self._receive_limit = self.config.record_size_limit
        if msg.ext(ET.early_data) is not None:
            if self._early_data is None or not self.resumed:
                raise IllegalParameter("server accepted early data that was not sent")
            if (self._session.alpn or None) != self.negotiated["alpn_protocol"]:
                # RFC 8446 §4.2.10: 0-RTT needs the ALPN of the ticket's connection
                raise IllegalParameter("server accepted early data under another ALPN protocol than "
                                       "the ticket's")
            self.early_data_accepted = True
        elif self._early_data is not None:
            self.early_data_accepted = False
            self.trace.add("info", "local", "server rejected 0-RTT early data",
                           detail="the application must send it again")
        self.transcript.update(msg.raw)

    def _on_certificate_request(self, msg: CertificateRequest) -> None:
        """RFC 8446 §4.3.2: remembered; we answer with our certificate or an empty one."""
        if msg.certificate_request_context != b"":
            raise IllegalParameter("CertificateRequest context must be empty during the handshake")
        if msg.ext(ET.signature_algorithms) is None:
            from .errors import MissingExtension
            raise MissingExtension("CertificateRequest without signature_algorithms")
        self._cert_request = msg
        self.transcript.update(msg.raw)

    def _on_certificate(self, msg: Certificate) -> None:
        """RFC 8446 §4.4.2, §4.4.2.4: parse and validate the server's chain."""
        if msg.certificate_request_context != b"":
            raise IllegalParameter("server Certificate has a non-empty request context")
        if not msg.certificate_list:
            raise DecodeError("server sent an empty Certificate message")
        certs = self._load_peer_chain([entry.cert_data for entry in msg.certificate_list])
        offered = {e.type for e in self._client_hello.extensions or []}
        for entry in msg.certificate_list:
            for e in entry.extensions:
                # RFC 8446 §4.4.2: only extensions the client offered, and only these two kinds
                if e.type not in offered or e.type not in (ET.status_request, ET.signed_certificate_timestamp):
                    raise UnsupportedExtension(f"CertificateEntry extension {e.name} was not offered")
        self._validate_peer_chain(certs)
        stapled = msg.certificate_list[0].extensions
        ocsp = next((e.value for e in stapled if e.type == ET.status_request), None)
        if ocsp is not None:
            self._check_ocsp(ocsp.response, certs)
        self.transcript.update(msg.raw)

    def _on_certificate_verify(self, msg: CertificateVerify) -> None:
        """RFC 8446 §4.4.3: the signature over the transcript up to Certificate."""
        scheme = msg.algorithm
        allowed = TLS13_CERTVERIFY_SCHEMES
        if self.config.accept_tls13_pkcs1_signatures:
            allowed = allowed | _PKCS1_SCHEMES  # a simulated JSSE client (config docs)
        if scheme not in self._offered_schemes() or scheme not in allowed:
            raise IllegalParameter(f"server signed with {name_of(SignatureScheme, scheme)}, "
                                   "which was not offered for TLS 1.3")
        data = certificate_verify_input(self.transcript.digest(), server=True)
        verify(self.peer_certificates[0], scheme, data, msg.signature,
               tls13=scheme not in _PKCS1_SCHEMES)  # only reachable with the leniency above
        self.negotiated["signature_scheme"] = name_of(SignatureScheme, scheme)
        self.transcript.update(msg.raw)

    def _on_server_finished(self, msg: Finished) -> None:
        """RFC 8446 §4.4.4: check the server's Finished, then send ours and switch keys."""
        self._check_finished(self.schedule.verify_data(self._s_hs, self.transcript.digest()),
                             msg.verify_data, "server Finished")
        self.transcript.update(msg.raw)
        self.schedule.extract_master()
        c_ap, s_ap = self.schedule.application_traffic(self.transcript.digest())
        self._app_read_secret, self._app_write_secret = s_ap, c_ap
        self._set_read_secret(s_ap, "server Finished")
        if self._client_hello.legacy_session_id and not self._ccs_sent:  # RFC 8446 §D.4
            self._ccs_sent = True
            self._send_ccs()
        if self.early_data_accepted:
            from .messages import EndOfEarlyData
            self.transcript.update(self._send_message(EndOfEarlyData()))  # §4.5, under the early key
        self._set_write_secret(self._c_hs)
        if self._cert_request is not None:
            self._answer_certificate_request(self._cert_request, self.transcript)
        fin = Finished(verify_data=self.schedule.verify_data(self._c_hs, self.transcript.digest()))
        self.transcript.update(self._send_message(fin))
        self._handshake_transcript = self.transcript.copy()  # the base of post-handshake auth
        self.schedule.resumption_master(self.transcript.digest())
        self._set_write_secret(c_ap)
        self._complete(resumed=self.resumed, early_data_accepted=self.early_data_accepted)

    def _on_new_session_ticket(self, msg: NewSessionTicket) -> None:
        """RFC 8446 §4.6.1: keep the ticket (with its PSK) in the store, and report it.

        Bounded: MAX_TICKETS_IN_A_ROW without application data in between, and only the
        first MAX_TICKETS_STORED_PER_CONNECTION go to the store (a file store is rewritten
        on each one)."""
        from .limits import MAX_TICKETS_IN_A_ROW
        from .errors import UnexpectedMessage as _Unexpected
        self._tickets_in_a_row += 1
        if self._tickets_in_a_row > MAX_TICKETS_IN_A_ROW:
            raise _Unexpected(f"more than {MAX_TICKETS_IN_A_ROW} NewSessionTickets without "
                              "application data in between")
        self._tickets_received = getattr(self, "_tickets_received", 0) + 1
        ed = msg.ext_value(ET.early_data)
        if self._tickets_received > MAX_TICKETS_STORED_PER_CONNECTION:
            if self._tickets_received == MAX_TICKETS_STORED_PER_CONNECTION + 1:
                self.trace.add("info", "local", "ticket not stored",
                               detail=f"only the first {MAX_TICKETS_STORED_PER_CONNECTION} tickets of a "
                                      "connection are kept")
        elif self.session_store is not None and msg.ticket_lifetime > 0:
            from .tickets import Session
            rms = self.schedule.secrets["resumption_master_secret"]
            self.session_store.add(Session(
                server_name=self._session_key(), ticket=msg.ticket,
                psk=self.schedule.resumption_psk(rms, msg.ticket_nonce), suite=self.suite.code,
                age_add=msg.ticket_age_add, lifetime=msg.ticket_lifetime,
                received_at=self.provider.time(),
                max_early_data=ed.max_early_data_size if ed is not None else 0,
                alpn=self.negotiated["alpn_protocol"], verifier=self.config.verifier_id))
        self._events.append(ev.NewSessionTicket(
            lifetime=msg.ticket_lifetime, age_add=msg.ticket_age_add, nonce=msg.ticket_nonce,
            ticket=msg.ticket, max_early_data_size=ed.max_early_data_size if ed is not None else None))

    def _ccs_allowed(self) -> bool:
        return self.state is not ClientStart

    def _protect_alert_if_possible(self) -> None:
        """RFC 8446 §6: alerts go under the current keys.  Between ServerHello and our
        Finished the server reads with client_handshake_traffic_secret, so a client that
        fails there (e.g. on the certificate) encrypts its alert with that key."""
        c_hs = getattr(self, "_c_hs", None)
        if self.tls12 or c_hs is None or self.handshake_complete or getattr(self, "_sent_finished", False):
            return
        if self._write_prot is not None and not getattr(self, "_early_write", False):
            return
        if self._client_hello.legacy_session_id and not self._ccs_sent:
            self._ccs_sent = True
            self._send_ccs()
        self._set_write_secret(c_hs)


def _suite_min_version(code: int) -> int:
    from .tls12.suites import SUITES12
    return SUITES12[code].min_version


#: RSASSA-PKCS1-v1_5 schemes (RFC 8446 §4.2.3: "legacy", not for TLS 1.3 CertificateVerify)
_PKCS1_SCHEMES = frozenset({SignatureScheme.rsa_pkcs1_sha256, SignatureScheme.rsa_pkcs1_sha384,
                            SignatureScheme.rsa_pkcs1_sha512})


@functools.lru_cache(maxsize=256)
def _is_ip(name: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def _version_name(v: int) -> str:
    from .names import VERSION_NAMES
    return VERSION_NAMES.get(v, f"0x{v:04x}")
