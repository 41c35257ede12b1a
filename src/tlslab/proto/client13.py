"""The TLS 1.3 client handshake (RFC 8446 §2, §4; Appendix A.1).

:class:`ClientHandshake13` sends the ClientHello (which may also offer TLS 1.2), then
checks the server's flight message by message.  Its data lives exactly as long as the
handshake: the offer, the transcript, the handshake traffic secrets.  When the server
answers with TLS 1.2, :meth:`ClientHandshake13.to_tls12` hands the offer to a
:class:`~tlslab.proto.client12.ClientHandshake12`; when the handshake completes, the
connection keeps a :class:`ClientPostHandshake13` for the messages that may follow.
"""
from __future__ import annotations

from . import events as ev
from .cert_auth13 import answer_certificate_request
from .client_hello import ClientOffer, add_psk, pad
from .errors import (DecodeError, IllegalParameter, MissingExtension, ProtocolVersion, UnexpectedMessage,
                     UnsupportedExtension)
from .extensions import ET, Cookie, Extension, KeyShareCH
from .handshake import Handshake, check_finished, note_server_answers
from .keyschedule import SUITES, Transcript
from .messages import (DOWNGRADE_TLS11, DOWNGRADE_TLS12, Certificate, CertificateRequest, CertificateVerify,
                       ClientHello, EncryptedExtensions, EndOfEarlyData, Finished, NewSessionTicket, ServerHello)
from .names import VERSION_NAMES, CipherSuite, NamedGroup, SignatureScheme, name_of
from .peer_chain import check_ocsp, load_peer_chain, validate_peer_chain
from .signatures import TLS13_CERTVERIFY_SCHEMES, certificate_verify_input, verify

TLS13 = 0x0304
#: extensions a server may put in ServerHello / HelloRetryRequest (RFC 8446 §4.2 table)
SH_ALLOWED = frozenset({ET.key_share, ET.pre_shared_key, ET.supported_versions})
HRR_ALLOWED = frozenset({ET.key_share, ET.cookie, ET.supported_versions})
#: RFC 8446 §4.2 table: what EncryptedExtensions may carry (unknown ones fall to the
#: "not offered" check below)
EE_ALLOWED = frozenset({ET.server_name, ET.max_fragment_length, ET.supported_groups, ET.use_srtp,
                        ET.heartbeat, ET.application_layer_protocol_negotiation,
                        ET.client_certificate_type, ET.server_certificate_type, ET.early_data,
                        ET.record_size_limit})
#: extensions that must never appear in EncryptedExtensions (they belong to other messages)
EE_FORBIDDEN = frozenset({ET.key_share, ET.pre_shared_key, ET.supported_versions, ET.cookie,
                          ET.psk_key_exchange_modes, ET.signature_algorithms,
                          ET.signature_algorithms_cert, ET.certificate_authorities, ET.oid_filters,
                          ET.post_handshake_auth, ET.status_request, ET.signed_certificate_timestamp,
                          ET.padding})
#: RSASSA-PKCS1-v1_5 schemes (RFC 8446 §4.2.3: "legacy", not for TLS 1.3 CertificateVerify)
PKCS1_SCHEMES = frozenset({SignatureScheme.rsa_pkcs1_sha256, SignatureScheme.rsa_pkcs1_sha384,
                           SignatureScheme.rsa_pkcs1_sha512})
#: NewSessionTickets of one connection put in the session store.  The store keeps a few per
#: server anyway (TicketStore.per_server, 4; rustls keeps 8 TLS 1.3 tickets per server) and a
#: FileTicketStore rewrites its file on each one, so later tickets are reported, not stored.
MAX_TICKETS_STORED_PER_CONNECTION = 8


class ClientHandshake13(Handshake):
    """One client handshake, from the ClientHello to the client's Finished."""

    __slots__ = ("offer", "hrr", "transcript", "cert_request", "c_hs", "s_hs", "resumed",
                 "early_write")

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.offer = ClientOffer()
        self.hrr: ServerHello | None = None
        self.transcript: Transcript | None = None   # from the ServerHello (or HRR) on
        self.cert_request: CertificateRequest | None = None
        self.c_hs: bytes | None = None   # handshake traffic secrets, from the ServerHello on
        self.s_hs: bytes | None = None
        self.resumed = False
        self.early_write = False         # our write key is the 0-RTT one

    # -- ClientHello -----------------------------------------------------------------------
    def start(self, early_data: bytes | None) -> None:
        """Pick the sessions to offer, then send the ClientHello (and 0-RTT data)."""
        conn, cfg, offer = self.conn, self.config, self.offer
        store = conn.session_store
        template = cfg.client_hello_template
        # a template is replayed as recorded; one that offered a PSK gets a stored ticket in its place
        if store is not None and (template is None or template.ext(ET.pre_shared_key) is not None):
            now = self.provider.time()
            key = conn._session_key()
            if cfg.max_version >= 0x0304:
                offer.session = store.take(key, now, verifier=cfg.verifier_id)
                if offer.session is not None and offer.session.suite not in SUITES:
                    offer.session = None
            if offer.session is None and cfg.min_version <= 0x0303 and template is None:
                from .tickets import Session12
                s12 = store.take(key, now, kind=Session12, verifier=cfg.verifier_id)
                if s12 is not None and s12.version in cfg.version_codes and s12.suite in cfg.suites12:
                    offer.session12 = s12
        if early_data and offer.session is not None and len(early_data) <= offer.session.max_early_data:
            offer.early_data = bytes(early_data)
        conn.client_random = self.provider.random(32)
        ch = conn._build_client_hello()
        if offer.session is not None:
            ch = add_psk(offer, ch, None, conn)
        offer.client_hello = ch
        offer.ch_raw.append(conn._send_message(ch))

    def send_early_data(self) -> None:
        """RFC 8446 §4.2.10: 0-RTT data under client_early_traffic_secret, after a CCS in
        compatibility mode (§D.4)."""
        conn, offer = self.conn, self.offer
        ks = offer.early_schedule
        t = Transcript(ks.suite.hash_name)
        t.update(offer.ch_raw[0])
        early_secret = ks.early_traffic(t.digest())
        self._compat_ccs()
        conn.suite = ks.suite
        conn._set_write_secret(early_secret)
        self.early_write = True
        self.trace.add("info", "local", "sending 0-RTT early data", summary={"bytes": len(offer.early_data)})
        conn._send_records(23, offer.early_data)

    def _compat_ccs(self) -> None:
        """RFC 8446 §D.4: one CCS before our second flight (or 0-RTT data) in compatibility mode."""
        conn = self.conn
        if self.offer.client_hello.legacy_session_id and not conn._ccs_sent:
            conn._ccs_sent = True
            conn._send_ccs()

    # -- ServerHello / HelloRetryRequest -------------------------------------------------------
    def is_tls12_answer(self, sh: ServerHello) -> bool:
        """RFC 8446 §4.1.3: a ServerHello without supported_versions is TLS 1.2 or older."""
        return (sh.ext(ET.supported_versions) is None and self.config.min_version <= 0x0303
                and self.hrr is None)

    def to_tls12(self, sh: ServerHello):
        """Hand the offer to a TLS 1.2 handshake, which takes the ServerHello from here."""
        from .client12 import ClientHandshake12
        hs = ClientHandshake12(self.conn, self.offer)
        self.conn.hs = hs
        return hs.on_server_hello(sh)

    def _check_common_hello(self, msg: ServerHello, allowed: frozenset) -> None:
        """Checks shared by ServerHello and HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4)."""
        ch = self.offer.client_hello
        sv = msg.ext_value(ET.supported_versions)
        if sv is None:
            v = msg.legacy_version
            if msg.random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
                raise IllegalParameter("ServerHello.random carries the TLS 1.3 downgrade sentinel "
                                       "(RFC 8446 §4.1.3): a downgrade attack or a broken middlebox")
            offered = ", ".join(_version_name(x) for x in self.config.version_codes)
            raise ProtocolVersion(f"server selected {_version_name(v)}; the client offered {offered}")
        if sv.selected_version != TLS13:
            raise IllegalParameter(f"server selected version {_version_name(sv.selected_version)} "
                                   "that was not offered")
        if msg.legacy_version != 0x0303:
            raise IllegalParameter(f"ServerHello legacy_version 0x{msg.legacy_version:04x} (must be 0x0303)")
        if msg.legacy_session_id_echo != ch.legacy_session_id:
            raise IllegalParameter("ServerHello legacy_session_id_echo does not echo our session id")
        if msg.cipher_suite not in ch.cipher_suites or msg.cipher_suite not in SUITES:
            raise IllegalParameter(f"server selected cipher suite {name_of(CipherSuite, msg.cipher_suite)} "
                                   "that was not offered")
        if msg.legacy_compression_method != 0:
            raise IllegalParameter("ServerHello legacy_compression_method is not 0")
        offered = self.offer.offered_types()
        for e in msg.extensions or []:
            if e.type not in offered and e.type != ET.cookie:
                raise UnsupportedExtension(f"server sent extension {e.name} that was not offered")
            if e.type not in allowed:
                raise IllegalParameter(f"extension {e.name} is not allowed in {msg.name}")

    def on_hello_retry_request(self, hrr: ServerHello) -> None:
        """RFC 8446 §4.1.4: send the second ClientHello the server asks for."""
        conn, offer = self.conn, self.offer
        if self.hrr is not None:
            raise UnexpectedMessage("second HelloRetryRequest")
        self._check_common_hello(hrr, HRR_ALLOWED)
        self.hrr = hrr
        suite = conn.suite = SUITES[hrr.cipher_suite]
        ks = hrr.ext_value(ET.key_share)
        cookie = hrr.ext_value(ET.cookie)
        if ks is None and cookie is None:
            raise IllegalParameter("HelloRetryRequest would not change the ClientHello")
        ch1 = offer.client_hello
        new_exts = []
        for e in ch1.extensions:
            if e.type == ET.key_share and ks is not None:
                g = ks.selected_group
                if g not in offer.offered_groups():
                    raise IllegalParameter(f"HelloRetryRequest selected group {name_of(NamedGroup, g)} "
                                           "that was not offered")
                if g in offer.key_shares:
                    raise IllegalParameter(f"HelloRetryRequest asks for {name_of(NamedGroup, g)}, "
                                           "for which a key share was already sent")
                offer.key_shares.clear()
                e = Extension(ET.key_share, KeyShareCH(client_shares=[offer.make_share(g, self.provider)]))
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
        t = self.transcript = Transcript(suite.hash_name)
        t.update(offer.ch_raw[0])
        t.restart_for_hrr()
        t.update(hrr.raw)
        conn._ccs_received = 0  # the server may send another compatibility CCS after its ServerHello
        if offer.early_data is not None:
            conn.early_data_accepted = False
            offer.early_data = None
        if offer.session is not None and SUITES[offer.session.suite].hash_name == suite.hash_name:
            ch2 = add_psk(offer, ch2, t, conn)
        else:
            offer.session = None
            pad(ch2, self.config)
        conn._write_prot = None  # ClientHello2 goes in the clear even after 0-RTT records
        self.early_write = False
        self.negotiated["hello_retry"] = True
        self._compat_ccs()
        offer.client_hello = ch2
        raw = conn._send_message(ch2)
        offer.ch_raw.append(raw)
        t.update(raw)

    def on_server_hello(self, sh: ServerHello) -> None:
        """RFC 8446 §4.1.3: negotiate, then derive the handshake secrets (§7.1)."""
        conn, offer, hrr = self.conn, self.offer, self.hrr
        if hrr is not None:
            conn._ccs_received = 0  # JSSE sends a CCS after its HRR and another after this
        self._check_common_hello(sh, SH_ALLOWED)
        if hrr is not None and sh.cipher_suite != hrr.cipher_suite:
            raise IllegalParameter("ServerHello cipher suite differs from the HelloRetryRequest's")
        psk = None
        sel_psk = sh.ext_value(ET.pre_shared_key)
        if sel_psk is not None:
            if offer.session is None or sel_psk.selected_identity != 0:
                raise IllegalParameter(f"server selected PSK identity {sel_psk.selected_identity}, "
                                       "which was not offered")
            if SUITES[offer.session.suite].hash_name != SUITES[sh.cipher_suite].hash_name:
                raise IllegalParameter("server selected a cipher suite whose hash does not match the PSK's")
            psk = offer.session.psk
            self.resumed = conn.resumed = True
        ks = sh.ext_value(ET.key_share)
        if ks is None:
            # we only offer psk_dhe_ke, so a key share is always required
            raise MissingExtension("ServerHello has no key_share")
        share = ks.server_share
        if hrr is not None:
            sel = hrr.ext_value(ET.key_share)
            if sel is not None and share.group != sel.selected_group:
                raise IllegalParameter("ServerHello key share group differs from the one HelloRetryRequest chose")
        my_share = offer.key_shares.get(share.group)
        if my_share is None:
            raise IllegalParameter(f"server key share for {name_of(NamedGroup, share.group)}, "
                                   "for which no share was sent")
        shared = my_share.shared_secret(share.key_exchange)
        suite = conn.suite = SUITES[sh.cipher_suite]
        if self.transcript is None:
            self.transcript = Transcript(suite.hash_name)
            self.transcript.update(offer.ch_raw[0])
        self.transcript.update(sh.raw)
        n = self.negotiated
        n["version"] = "TLS 1.3"
        n["cipher_suite"] = suite.name
        n["group"] = name_of(NamedGroup, share.group)
        schedule = conn.schedule = conn._new_schedule(suite)
        schedule.extract_early(psk)
        schedule.extract_handshake(shared)
        self.c_hs, self.s_hs = schedule.handshake_traffic(self.transcript.digest())
        conn._set_read_secret(self.s_hs, "ServerHello")

    # -- the server's encrypted flight -------------------------------------------------------
    def on_encrypted_extensions(self, msg: EncryptedExtensions) -> None:
        conn, cfg, offer = self.conn, self.config, self.offer
        offered = offer.offered_types()
        for e in msg.extensions:
            if e.type in EE_FORBIDDEN or (e.type not in EE_ALLOWED and e.value is not None):
                # RFC 8446 §4.2: a known extension where it is not defined is illegal_parameter
                raise IllegalParameter(f"extension {e.name} is not allowed in EncryptedExtensions")
            if e.type not in offered and e.type != ET.supported_groups:
                raise UnsupportedExtension(f"server sent extension {e.name} that was not offered")
        note_server_answers(cfg, self.negotiated, msg)
        rsl = msg.ext_value(ET.record_size_limit)
        if rsl is not None:
            conn._apply_peer_record_size_limit(rsl.record_size_limit)
            if cfg.record_size_limit:
                conn._receive_limit = cfg.record_size_limit
        if msg.ext(ET.early_data) is not None:
            if offer.early_data is None or not self.resumed:
                raise IllegalParameter("server accepted early data that was not sent")
            if (offer.session.alpn or None) != self.negotiated["alpn_protocol"]:
                # RFC 8446 §4.2.10: 0-RTT needs the ALPN of the ticket's connection
                raise IllegalParameter("server accepted early data under another ALPN protocol than "
                                       "the ticket's")
            conn.early_data_accepted = True
        elif offer.early_data is not None:
            conn.early_data_accepted = False
            self.trace.add("info", "local", "server rejected 0-RTT early data",
                           detail="the application must send it again")
        self.transcript.update(msg.raw)

    def on_certificate_request(self, msg: CertificateRequest) -> None:
        """RFC 8446 §4.3.2: remembered; we answer with our certificate or an empty one."""
        if msg.certificate_request_context != b"":
            raise IllegalParameter("CertificateRequest context must be empty during the handshake")
        if msg.ext(ET.signature_algorithms) is None:
            raise MissingExtension("CertificateRequest without signature_algorithms")
        self.cert_request = msg
        self.transcript.update(msg.raw)

    def on_certificate(self, msg: Certificate) -> None:
        """RFC 8446 §4.4.2, §4.4.2.4: parse and validate the server's chain."""
        conn = self.conn
        if msg.certificate_request_context != b"":
            raise IllegalParameter("server Certificate has a non-empty request context")
        entries = msg.certificate_list
        if not entries:
            raise DecodeError("server sent an empty Certificate message")
        ders = [entry.cert_data for entry in entries]
        certs = load_peer_chain(conn, ders)
        offered = None
        for entry in entries:
            for e in entry.extensions:
                if offered is None:
                    offered = self.offer.offered_types()
                # RFC 8446 §4.4.2: only extensions the client offered, and only these two kinds
                if e.type not in offered or e.type not in (ET.status_request, ET.signed_certificate_timestamp):
                    raise UnsupportedExtension(f"CertificateEntry extension {e.name} was not offered")
        validate_peer_chain(conn, certs, ders)
        ocsp = next((e.value for e in entries[0].extensions if e.type == ET.status_request), None)
        if ocsp is not None:
            check_ocsp(conn, ocsp.response, certs)
        self.transcript.update(msg.raw)

    def on_certificate_verify(self, msg: CertificateVerify) -> None:
        """RFC 8446 §4.4.3: the signature over the transcript up to Certificate."""
        scheme = msg.algorithm
        allowed = TLS13_CERTVERIFY_SCHEMES
        if self.config.accept_tls13_pkcs1_signatures:
            allowed = allowed | PKCS1_SCHEMES  # a simulated JSSE client (config docs)
        if scheme not in self.offer.offered_schemes() or scheme not in allowed:
            raise IllegalParameter(f"server signed with {name_of(SignatureScheme, scheme)}, "
                                   "which was not offered for TLS 1.3")
        data = certificate_verify_input(self.transcript.digest(), server=True)
        verify(self.conn.peer_certificates[0], scheme, data, msg.signature,
               tls13=scheme not in PKCS1_SCHEMES)  # only reachable with the leniency above
        self.negotiated["signature_scheme"] = name_of(SignatureScheme, scheme)
        self.transcript.update(msg.raw)

    def on_server_finished(self, msg: Finished) -> None:
        """RFC 8446 §4.4.4: check the server's Finished, then send ours and switch keys."""
        conn, t = self.conn, self.transcript
        schedule = conn.schedule
        check_finished(schedule.verify_data(self.s_hs, t.digest()), msg.verify_data, "server Finished")
        t.update(msg.raw)
        schedule.extract_master()
        c_ap, s_ap = schedule.application_traffic(t.digest())
        conn._app_read_secret, conn._app_write_secret = s_ap, c_ap
        conn._set_read_secret(s_ap, "server Finished")
        self._compat_ccs()
        if conn.early_data_accepted:
            t.update(conn._send_message(EndOfEarlyData()))  # §4.5, under the early key
        conn._set_write_secret(self.c_hs)
        self.early_write = False
        if self.cert_request is not None:
            answer_certificate_request(conn, self.cert_request, t)
        t.update(conn._send_message(Finished(verify_data=schedule.verify_data(self.c_hs, t.digest()))))
        schedule.resumption_master(t.digest())
        conn._set_write_secret(c_ap)
        # what post-handshake messages need: the transcript through our Finished (the base of
        # post-handshake auth, §4.4) and whether post_handshake_auth was offered (§4.2.6)
        conn.hs = ClientPostHandshake13(conn, t.copy(), self.offer.client_hello.ext(ET.post_handshake_auth)
                                        is not None)
        conn._complete(resumed=self.resumed, early_data_accepted=conn.early_data_accepted)

    # -- failure -------------------------------------------------------------------------------
    def protect_alert(self) -> None:
        """RFC 8446 §6: alerts go under the current keys.  Between ServerHello and our
        Finished the server reads with client_handshake_traffic_secret, so a client that
        fails there (e.g. on the certificate) encrypts its alert with that key."""
        conn = self.conn
        if self.c_hs is None or (conn._write_prot is not None and not self.early_write):
            return
        self._compat_ccs()
        conn._set_write_secret(self.c_hs)


class ClientPostHandshake13(Handshake):
    """What a TLS 1.3 client keeps for post-handshake messages (RFC 8446 §4.6):
    NewSessionTicket and post-handshake CertificateRequest (KeyUpdate is the connection's)."""

    __slots__ = ("handshake_transcript", "pha_offered", "pha_requests", "tickets_received")

    def __init__(self, conn, handshake_transcript: Transcript, pha_offered: bool) -> None:
        super().__init__(conn)
        self.handshake_transcript = handshake_transcript
        self.pha_offered = pha_offered
        self.pha_requests = 0        # bounded by pha.MAX_POST_HANDSHAKE_AUTH
        self.tickets_received = 0    # the first MAX_TICKETS_STORED_PER_CONNECTION are stored

    def on_new_session_ticket(self, msg: NewSessionTicket) -> None:
        """RFC 8446 §4.6.1: keep the ticket (with its PSK) in the store, and report it.

        Bounded: MAX_TICKETS_IN_A_ROW without application data in between, and only the
        first MAX_TICKETS_STORED_PER_CONNECTION go to the store (a file store is rewritten
        on each one)."""
        from .limits import MAX_TICKETS_IN_A_ROW
        conn = self.conn
        conn._tickets_in_a_row += 1
        if conn._tickets_in_a_row > MAX_TICKETS_IN_A_ROW:
            raise UnexpectedMessage(f"more than {MAX_TICKETS_IN_A_ROW} NewSessionTickets without "
                                    "application data in between")
        self.tickets_received += 1
        ed = msg.ext_value(ET.early_data)
        if self.tickets_received > MAX_TICKETS_STORED_PER_CONNECTION:
            if self.tickets_received == MAX_TICKETS_STORED_PER_CONNECTION + 1:
                self.trace.add("info", "local", "ticket not stored",
                               detail=f"only the first {MAX_TICKETS_STORED_PER_CONNECTION} tickets of a "
                                      "connection are kept")
        elif conn.session_store is not None and msg.ticket_lifetime > 0:
            from .tickets import Session
            schedule = conn.schedule
            rms = schedule.secrets["resumption_master_secret"]
            conn.session_store.add(Session(
                server_name=conn._session_key(), ticket=msg.ticket,
                psk=schedule.resumption_psk(rms, msg.ticket_nonce), suite=conn.suite.code,
                age_add=msg.ticket_age_add, lifetime=msg.ticket_lifetime,
                received_at=self.provider.time(),
                max_early_data=ed.max_early_data_size if ed is not None else 0,
                alpn=self.negotiated["alpn_protocol"], verifier=self.config.verifier_id))
        conn._events.append(ev.NewSessionTicket(
            lifetime=msg.ticket_lifetime, age_add=msg.ticket_age_add, nonce=msg.ticket_nonce,
            ticket=msg.ticket, max_early_data_size=ed.max_early_data_size if ed is not None else None))


def _version_name(v: int) -> str:
    return VERSION_NAMES.get(v, f"0x{v:04x}")
