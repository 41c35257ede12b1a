"""What each handshake message of a captured connection tells the decoder, and the keys it
unlocks.

:class:`HandshakeReader` is the part of :class:`~tlslab.capture.tls.ConnectionDecoder`
that reads handshake messages (parsed with the engine's descriptions:
:mod:`tlslab.proto.messages`, :mod:`tlslab.proto.messages12`) and acts on them:

- ClientHello (RFC 8446 §4.1.2): the client random that keys the key log, SNI, the
  offer of 0-RTT (§4.2.10) and of TLS 1.3;
- ServerHello / HelloRetryRequest (§4.1.3, §4.1.4): version, suite, group, resumption;
  for TLS 1.3 the epochs of RFC 8446 §7.1 from the key log's secrets;
- EncryptedExtensions (§4.3.1): 0-RTT accepted, ALPN; Certificate / CertificateVerify
  (§4.4.2, §4.4.3): who signed, the client certificate; Finished (§4.4.4) and
  EndOfEarlyData (§4.5): the next key; KeyUpdate (§4.6.3): the next application secret
  (§7.2);
- TLS 1.0-1.2 (RFC 5246 §7.4): ServerKeyExchange, ClientKeyExchange (the RSA-encrypted
  pre-master secret an ``RSA`` key log line is found by), NewSessionTicket (RFC 5077),
  and at each ChangeCipherSpec the key block of the master secret (§6.3), found in the
  key log, derived from a pre-master secret (§8.1, RFC 7627 §4), or remembered from the
  session an abbreviated handshake resumes (:class:`SessionCache`).

A mixin: it works on the decoder's state (``self.out``, ``self._sides``, the hellos, the
key log's secrets for this connection).
"""
from __future__ import annotations

from ..proto import offline
from ..proto.errors import TLSError
from ..proto.messages import ClientHello, ServerHello, parse_message
from ..proto.messages12 import parse_message12
from ..proto.names import CipherSuite, ExtensionType, NamedGroup, SignatureScheme, name_of
from ..proto.tls12.suites import suite_name as suite12_name
from . import decrypt
from .decoded import CLIENT, SERVER, MessageInfo, rfc_message_name
from .keylog import TLS13_LABELS, nss_label

_ARROW = {CLIENT: "client → server", SERVER: "server → client"}
_DIR = {CLIENT: "sent", SERVER: "received"}
_VERSIONS = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0",
             0x0300: "SSL 3.0"}


def version_name(code: int | None) -> str | None:
    if code is None:
        return None
    return _VERSIONS.get(code, f"0x{code:04x}")


def _suite_name(code: int) -> str:
    if code in CipherSuite._value2member_map_:
        return name_of(CipherSuite, code)
    return suite12_name(code)


class SessionCache:
    """TLS 1.0-1.2 master secrets seen in a capture, by session ID and by session ticket
    (RFC 5246 §7.4.1.2, RFC 5077 §3.4): a resumed connection reuses the master secret of
    an earlier one, and not every stack logs it again for the new client random
    (Wireshark keeps the same cache).  Bounded: the oldest entries go first."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._by_key: dict[bytes, bytes] = {}

    def remember(self, key: bytes, master: bytes) -> None:
        if not key:
            return
        if len(self._by_key) >= self.LIMIT:
            self._by_key.pop(next(iter(self._by_key)))
        self._by_key[bytes(key)] = master

    def find(self, key: bytes) -> bytes | None:
        return self._by_key.get(bytes(key)) if key else None


class HandshakeReader:
    """Handshake messages and the keys they unlock (see the module documentation)."""

    def _parse(self, raw: bytes):
        mt = raw[0]
        spans = self._spans
        try:
            if mt == 1:
                return ClientHello.parse(raw, record=spans), None
            if mt == 2:
                return ServerHello.parse(raw, record=spans), None
            if self.tls13:
                return parse_message(raw, record=spans), None
            if self.tls13 is None:
                try:
                    return parse_message(raw, record=spans), None
                except TLSError:
                    pass
            return parse_message12(raw, self.version or 0x0303, record=spans), None
        except TLSError as e:
            return None, " ".join(str(e).split())

    def _message(self, side: str, raw: bytes, offset: int, record_offset: int,
                 epoch: decrypt.Epoch | None) -> None:
        msg, err = self._parse(raw)
        mt = raw[0]
        hrr = mt == 2 and msg is not None and msg.is_hello_retry_request
        rfc = rfc_message_name(mt, hrr)
        name = msg.name if msg is not None else rfc
        out = self.out
        out.trace.add("message", _DIR[side], name, raw=raw, message=msg,
                      detail=f"could not be parsed: {err}" if err else "")
        out.messages.append(MessageInfo(side, rfc, name, offset, record_offset, len(raw), raw,
                                        msg, epoch is not None,
                                        epoch.name if epoch is not None else None, self._now, err))
        if err:
            out.problem(f"{_ARROW[side]}: the {rfc} at byte {offset} does not parse: {err}")
            return
        if not self._t12_done and mt != 0 and self.tls13 is not True:
            self._t12 += raw   # RFC 7627 §3: the session hash runs to ClientKeyExchange
        handler = getattr(self, f"_on_{rfc}", None)
        if handler is not None:
            try:
                handler(side, msg)
            except (TLSError, ValueError, TypeError, AttributeError) as e:
                out.problem(f"{_ARROW[side]}: {rfc}: {' '.join(str(e).split())}")

    def _on_ClientHello(self, side: str, msg: ClientHello) -> None:
        out = self.out
        if side != CLIENT:
            out.problem("the server sent a ClientHello")
            return
        renegotiation = self.client_hello is not None and msg.random != self.client_random
        if self.client_hello is not None and not renegotiation:
            self.client_hello = msg   # the second ClientHello after a HelloRetryRequest
            return
        if renegotiation:
            out.trace.add("info", "local", "renegotiation",
                          detail="a new handshake inside the connection (RFC 5246 §7.4.1.2)")
            self._t12 = bytearray(msg.raw)
            self._t12_done = False
            self._encrypted_pms = None
            self._pending12 = None
            self._masters_traced = False
        self.client_hello = msg
        self.client_random = bytes(msg.random)
        out.client_random = self.client_random
        self._keys = self.keylog.secrets_for(self.client_random)
        out.keys_found = sorted(self._keys)
        sni = msg.ext_value(ExtensionType.server_name)
        if sni is not None:
            try:
                out.negotiated["server_name"] = ", ".join(
                    bytes(s.host_name).decode("ascii", "replace") for s in sni.server_name_list)
            except (AttributeError, TypeError):
                pass
        self.early_offered = msg.ext(ExtensionType.early_data) is not None
        if self.early_offered and not renegotiation:
            st = self._sides[CLIENT]
            offered = [c for c in (msg.cipher_suites or [])]
            st.epochs = [decrypt.early_epoch(self._keys.get("CLIENT_EARLY_TRAFFIC_SECRET", []),
                                             offered, self._missing("CLIENT_EARLY_TRAFFIC_SECRET"))]
            st.current = 0
            self._trace_secret(st.epochs[0])

    def _on_ServerHello(self, side: str, msg: ServerHello) -> None:
        out = self.out
        if side != SERVER:
            out.problem("the client sent a ServerHello")
            return
        n = out.negotiated
        if msg.is_hello_retry_request:
            self.hello_retry = True
            n["hello_retry"] = True
            ks = msg.ext_value(ExtensionType.key_share)
            if ks is not None and hasattr(ks, "selected_group"):
                n["hello_retry_group"] = name_of(NamedGroup, ks.selected_group)
            self.tls13 = True
            return
        sv = msg.ext_value(ExtensionType.supported_versions)
        version = sv.selected_version if sv is not None else msg.legacy_version
        self.server_hello = msg
        self.version = int(version)
        self.suite = int(msg.cipher_suite)
        out.version_code = self.version
        out.version = n["version"] = version_name(self.version)
        out.cipher_suite = n["cipher_suite"] = _suite_name(self.suite)
        if self.version == 0x0304:
            self.tls13 = True
            self._setup13(msg)
            return
        self.tls13 = False
        ch = self.client_hello
        both = (lambda t: ch is not None and ch.ext(t) is not None and msg.ext(t) is not None)
        n["extended_master_secret"] = both(ExtensionType.extended_master_secret)
        suite = offline.tls12_suite(self.suite)
        n["encrypt_then_mac"] = bool(both(ExtensionType.encrypt_then_mac) and suite is not None
                                     and suite.cbc)
        n["secure_renegotiation"] = msg.ext(ExtensionType.renegotiation_info) is not None
        alpn = msg.ext_value(ExtensionType.application_layer_protocol_negotiation)
        if alpn is not None and alpn.protocol_name_list:
            n["alpn_protocol"] = bytes(alpn.protocol_name_list[0]).decode("latin-1")
        sid = bytes(ch.legacy_session_id or b"") if ch is not None else b""
        n["resumed"] = bool(sid) and sid == bytes(msg.legacy_session_id_echo or b"")

    _on_HelloRetryRequest = _on_ServerHello   # RFC 8446 §4.1.4: a ServerHello by its random

    def _setup13(self, sh: ServerHello) -> None:
        """RFC 8446 §7.1 secrets for this connection, by their key log labels."""
        n = self.out.negotiated
        ks = sh.ext_value(ExtensionType.key_share)
        if ks is not None and hasattr(ks, "server_share"):
            n["group"] = name_of(NamedGroup, ks.server_share.group)
        n["resumed"] = sh.ext(ExtensionType.pre_shared_key) is not None
        if self.early_offered:
            n["early_data_accepted"] = False   # until EncryptedExtensions says otherwise
        suite = self.suite
        if offline.tls13_suite(suite) is None:
            self.out.problem(f"{_suite_name(suite)}: the engine cannot decrypt this cipher "
                             "suite (only AES-GCM and ChaCha20-Poly1305)")
        client, server = self._sides[CLIENT], self._sides[SERVER]
        made = []
        for st, who in ((client, "client"), (server, "server")):
            for name in (f"{who}_handshake_traffic_secret", f"{who}_application_traffic_secret_0"):
                label = nss_label(name)
                if offline.tls13_suite(suite) is None:
                    ep = decrypt.Epoch(name, label, missing=f"{_suite_name(suite)} is not "
                                                            "supported for decryption")
                else:
                    ep = decrypt.tls13_epoch(name, self._keys.get(label, []), suite, "key log",
                                             self._missing(label))
                st.epochs.append(ep)
                made.append(ep)
        # a key log may name later application secrets (*_TRAFFIC_SECRET_N, written by a
        # few stacks after a KeyUpdate): they are tried too when the previous key is missing
        for st, who in ((client, "CLIENT"), (server, "SERVER")):
            later = sorted((int(label.rsplit("_", 1)[1]), label) for label in self._keys
                           if label.startswith(f"{who}_TRAFFIC_SECRET_")
                           and label.rsplit("_", 1)[1] not in ("", "0"))
            for n, label in later[:16]:
                name = f"{who.lower()}_application_traffic_secret_{n}"
                ep = decrypt.tls13_epoch(name, self._keys[label], suite, "key log", "")
                st.epochs.append(ep)
                made.append(ep)
        server.current = 0
        if client.current < 0:
            client.current = client.index_of("client_handshake_traffic_secret")
        for ep in made:
            if ep.available:
                self._trace_secret(ep)
        missing = [ep for ep in made if not ep.available]
        if missing:
            # one line for what is missing (usually all of it, for one reason)
            reasons = sorted({ep.missing for ep in missing})
            self.out.trace.add("info", "local", "keys not available",
                               summary={"needs": ", ".join(ep.label for ep in missing),
                                        "why": "; ".join(reasons)})
        for label in ("EXPORTER_SECRET", "EARLY_EXPORTER_SECRET"):
            if self._keys.get(label):
                self.out.trace.add("secret", "local", TLS13_LABELS[label],
                                   summary={"length": len(self._keys[label][0]),
                                            "source": "key log", "label": label,
                                            "note": "exporter secret: not needed to decrypt"})

    def _without_server_hello(self) -> bool:
        """The ServerHello is not in the capture (lost in a gap) but the ClientHello offered
        TLS 1.3 and the key log has this connection's secrets: try each TLS 1.3 suite the
        ClientHello offered (only one will authenticate records)."""
        ch = self.client_hello
        if ch is None or self._guessing or not self._offers_tls13() or not self._keys \
                or self.tls13 is False or self.out.mid_connection:
            return False
        suites = [int(c) for c in (ch.cipher_suites or []) if offline.tls13_suite(int(c))]
        if not suites:
            return False
        self._guessing = True
        client, server = self._sides[CLIENT], self._sides[SERVER]
        for st, who in ((client, "client"), (server, "server")):
            for name in (f"{who}_handshake_traffic_secret", f"{who}_application_traffic_secret_0"):
                label = nss_label(name)
                st.epochs.append(decrypt.tls13_epoch(name, self._keys.get(label, []), suites,
                                                     "key log", self._missing(label)))
        server.current = 0
        if client.current < 0:
            client.current = client.index_of("client_handshake_traffic_secret")
        self.out.problem("the ServerHello is not in the capture: the cipher suite is found by "
                         "trying the ClientHello's TLS 1.3 suites with the key log's secrets")
        return True

    def _suite_found(self, opened: decrypt.Opened) -> None:
        """A record opened while the suite was being guessed: now it is known."""
        if not self._guessing or self.suite is not None:
            return
        suite = opened.epoch.candidates[0][1].suite
        self.suite, self.tls13, self.version = suite.code, True, 0x0304
        self.out.version_code = 0x0304
        self.out.version = self.out.negotiated["version"] = "TLS 1.3"
        self.out.cipher_suite = self.out.negotiated["cipher_suite"] = suite.name

    def _missing(self, label: str) -> str:
        if not self.out.keylog_given:
            return "no key log given (--keylog)"
        if not self._keys:
            return (f"the key log has no line for this connection's client random "
                    f"{(self.client_random or b'').hex()}")
        return f"the key log has no {label} line for client random {(self.client_random or b'').hex()}"

    def _trace_secret(self, ep: decrypt.Epoch) -> None:
        if ep.available:
            self.out.trace.add("secret", "local", ep.name,
                               summary={"length": len(ep.secret), "source": ep.source or "key log",
                                        "label": ep.label})
        else:
            self.out.trace.add("info", "local", f"no key: {ep.name}",
                               summary={"needs": ep.label}, detail=ep.missing)

    def _on_EncryptedExtensions(self, side: str, msg) -> None:
        n = self.out.negotiated
        if self.early_offered:
            n["early_data_accepted"] = msg.ext(ExtensionType.early_data) is not None
        alpn = msg.ext_value(ExtensionType.application_layer_protocol_negotiation)
        if alpn is not None and alpn.protocol_name_list:
            n["alpn_protocol"] = bytes(alpn.protocol_name_list[0]).decode("latin-1")

    def _on_CertificateVerify(self, side: str, msg) -> None:
        key = "signature_scheme" if side == SERVER else "client_signature_scheme"
        self.out.negotiated[key] = name_of(SignatureScheme, msg.algorithm)

    def _on_Certificate(self, side: str, msg) -> None:
        if side != CLIENT:
            return
        entries = list(getattr(msg, "certificate_list", None) or [])
        if not entries:
            self.out.negotiated["client_certificate"] = None
            return
        der = getattr(entries[0], "cert_data", entries[0])
        try:
            from cryptography import x509
            subject = x509.load_der_x509_certificate(bytes(der)).subject.rfc4514_string()
        except Exception:  # a certificate cryptography cannot read is still a certificate
            subject = "(a certificate that could not be read)"
        self.out.negotiated["client_certificate"] = subject

    def _on_Finished(self, side: str, msg) -> None:
        st = self._sides[side]
        st.finished = True
        if self.tls13:
            i = st.index_of(f"{side}_application_traffic_secret_0")
            if i >= 0:
                st.current = i
            if side == CLIENT:
                self._complete()
        else:
            self._check_complete12()

    def _on_EndOfEarlyData(self, side: str, msg) -> None:
        st = self._sides[CLIENT]
        i = st.index_of("client_handshake_traffic_secret")
        if i >= 0:
            st.current = i

    def _on_KeyUpdate(self, side: str, msg) -> None:
        """RFC 8446 §4.6.3: the sender's next records use application_traffic_secret_N+1."""
        st = self._sides[side]
        ep = st.epoch()
        if ep is None or not ep.name.startswith(f"{side}_application_traffic_secret_"):
            return
        base = ep.name.rpartition("_")[0]
        n = int(ep.name.rpartition("_")[2]) + 1
        extra = self._keys.get(nss_label(f"{base}_{n}"), [])
        nxt = decrypt.next_application_epoch(ep, self.suite, extra)
        following = st.epochs[st.current + 1] if st.current + 1 < len(st.epochs) else None
        if following is not None and following.name == nxt.name:
            # the key log named this generation already: keep that epoch (it may have
            # opened records), adding the derived secret to its candidates
            for cand in nxt.candidates:
                if all(cand[0] != c[0] for c in following.candidates):
                    following.candidates.insert(0, cand)
            nxt = following
        else:
            st.epochs.insert(st.current + 1, nxt)
        st.current += 1
        # named as the engine names its own key updates (client's point of view)
        self.out.trace.add("secret", "local",
                           "write key updated" if side == CLIENT else "read key updated",
                           summary={"length": len(nxt.secret) if nxt.available else None,
                                    "secret": nxt.name, "label": nxt.label,
                                    "source": nxt.source if nxt.available else "",
                                    "missing": nxt.missing})

    def _on_ServerKeyExchange(self, side: str, msg) -> None:
        from ..proto.tls12.keyexchange import parse_server_key_exchange
        suite = offline.tls12_suite(self.suite or 0)
        if suite is None or not suite.ephemeral:
            return
        ske = parse_server_key_exchange(suite.kx, bytes(msg.body), self.version or 0x0303)
        n = self.out.negotiated
        if hasattr(ske.params, "named_curve"):
            n["group"] = name_of(NamedGroup, ske.params.named_curve)
        else:
            n["group"] = f"DH {ske.params.p.bit_length()} bits"
        if ske.scheme is not None:
            n["signature_scheme"] = name_of(SignatureScheme, ske.scheme)

    def _on_ClientKeyExchange(self, side: str, msg) -> None:
        self._t12_done = True
        suite = offline.tls12_suite(self.suite or 0)
        if suite is not None and suite.kx == "RSA":
            from ..proto.tls12.keyexchange import parse_client_key_exchange
            epms = parse_client_key_exchange("RSA", bytes(msg.body))
            self._encrypted_pms = bytes(epms.encrypted_pre_master_secret)

    def _on_NewSessionTicket(self, side: str, msg) -> None:
        if self.tls13 is False and side == SERVER and getattr(msg, "ticket", None):
            self._tickets12.append(bytes(msg.ticket))   # RFC 5077 §3.3 (kept at the end)

    def _on_HelloRequest(self, side: str, msg) -> None:
        self.out.trace.add("info", "local", "the server asks for renegotiation",
                           detail="HelloRequest (RFC 5246 §7.4.1.1)")

    # -- TLS 1.2 keys ----------------------------------------------------------------
    def _install12(self, side: str) -> None:
        """RFC 5246 §7.1: this side's records are protected from here on."""
        st = self._sides[side]
        if self.server_hello is None or self.client_random is None or self.suite is None:
            st.cipher12 = decrypt.Epoch(f"{side}_write_key", "CLIENT_RANDOM",
                                        missing="the hellos are not in the capture")
            return
        if side == SERVER and self._sides[CLIENT].cipher12 is None and not self._t12_done:
            # the server changes keys first: an abbreviated handshake (RFC 5246 §7.3)
            self.out.negotiated["resumed"] = True
        if self._pending12 is None:
            session_hash = None
            if self.out.negotiated.get("extended_master_secret") and self._t12_done:
                session_hash = offline.tls12_session_hash(bytes(self._t12), self.suite,
                                                                  self.version)
            sr = bytes(self.server_hello.random)
            if offline.tls12_suite(self.suite) is None:
                empty = decrypt.MasterSecrets(missing=f"{_suite_name(self.suite)} is not "
                                                      "supported for decryption")
                masters = empty
            elif not self.out.keylog_given:
                masters = decrypt.MasterSecrets(missing="no key log given (--keylog)")
            else:
                masters = decrypt.tls12_masters(self.keylog, self.client_random, sr, self.suite,
                                                 self.version, self._encrypted_pms, session_hash)
                if self.out.negotiated.get("resumed"):
                    cached = self._resumed_master()
                    if cached is not None and all(cached != m for m, _ in masters.masters):
                        masters.masters.append((cached, "the master secret of the session "
                                                        "resumed (an earlier connection)"))
                        masters.missing = ""
            self._pending12 = decrypt.tls12_epochs(masters, self.client_random, sr, self.suite,
                                                   self.version,
                                                   bool(self.out.negotiated.get("encrypt_then_mac")))
            if masters.masters and not self._masters_traced:
                self._masters_traced = True
                self.out.trace.add("secret", "local", "master_secret",
                                   summary={"length": 48, "source": masters.masters[0][1],
                                            "label": "CLIENT_RANDOM",
                                            "ems": bool(self.out.negotiated.get(
                                                "extended_master_secret"))})
            elif not masters.masters:
                self.out.trace.add("info", "local", "no key: master_secret",
                                   summary={"needs": "CLIENT_RANDOM"}, detail=masters.missing)
        client_ep, server_ep = self._pending12
        st.cipher12 = client_ep if side == CLIENT else server_ep

    def _resumed_master(self) -> bytes | None:
        ch = self.client_hello
        if ch is None:
            return None
        ticket = ch.ext(ExtensionType.session_ticket)
        if ticket is not None:
            found = self.sessions.find(bytes(ticket.data))
            if found is not None:
                return found
        return self.sessions.find(bytes(ch.legacy_session_id or b""))

    def _remember_session(self, ticket: bytes | None = None) -> None:
        """The master secret that decrypted this connection, for later resumptions."""
        if self._pending12 is None:
            return
        ep = self._pending12[0] if self._pending12[0].pinned else self._pending12[1]
        if not ep.pinned or ep.secret is None:
            return
        if ticket is not None:
            self.sessions.remember(ticket, ep.secret)
        elif self.server_hello is not None:
            self.sessions.remember(bytes(self.server_hello.legacy_session_id_echo or b""),
                                   ep.secret)

    def _check_complete12(self) -> None:
        if self._sides[CLIENT].finished and self._sides[SERVER].finished:
            self._complete()
            self._remember_session()
            for ticket in self._tickets12:
                self._remember_session(ticket)

    def _complete(self) -> None:
        if not self.out.handshake_complete:
            self.out.handshake_complete = True
            self.out.trace.add("state", "local", "CONNECTED", summary={"from": "handshake"})
