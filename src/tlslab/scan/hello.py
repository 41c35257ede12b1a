"""ClientHellos from any code points, and the server's first answer, with the engine's codec.

A scan learns what a server accepts from its first flight alone: the ServerHello (version,
suite, extensions, the group of a HelloRetryRequest or TLS 1.3 key share), and in TLS 1.0-1.2
the Certificate, CertificateStatus and ServerKeyExchange that follow in clear (RFC 5246
§7.3).  So a probe can offer suites, groups and versions the engine could never complete:
nothing after the server's first flight is needed.  Bytes are built and parsed only through
:mod:`tlslab.proto`'s codec (messages, extensions, records, the SSL 2.0 structures).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..proto import extensions as X
from ..proto.errors import TLSError
from ..proto.extensions import ET, Extension
from ..proto.messages import ClientHello, HandshakeBuffer, ServerHello
from ..proto.provider import Provider
from ..proto.record import RecordReader, plaintext_record
from .registry import SSL3, TLS10, TLS12, TLS13, suites

#: how much of a first flight is read at most (a chain of a few certificates fits easily)
MAX_FIRST_FLIGHT = 256 * 1024
#: TLS 1.3 groups whose key share the scan can make (others are offered without a share:
#: a server that prefers them answers with a HelloRetryRequest naming them, RFC 8446 §4.1.4)
SHAREABLE = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x11EC, 0x11EB)


@dataclass
class HelloOffer:
    """What one ClientHello offers.  Codes are IANA values (see :mod:`.registry`).

    ``version``: the highest version (legacy_version up to TLS 1.2; TLS 1.3 is offered in
    supported_versions, with ``versions`` listing all, highest first).
    ``key_shares``: TLS 1.3 groups to send a real share for (default: none, so that the
    server names its choice in a HelloRetryRequest; that needs no key at all).
    """

    version: int
    cipher_suites: tuple[int, ...]
    groups: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()
    versions: tuple[int, ...] = ()
    key_shares: tuple[int, ...] = ()
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    status_request: bool = True
    session_ticket: bytes | None = b""      # None: no extension; b"": ask for a ticket
    extended_master_secret: bool = True
    encrypt_then_mac: bool = True
    renegotiation_info: bool = True
    ec_point_formats: bool = True
    heartbeat: bool = False
    record_size_limit: int | None = None
    psk_modes: tuple[int, ...] = (1,)
    compression_methods: bytes = b"\x00"
    session_id: bytes | None = None         # None: 32 random bytes (TLS 1.3 style) or empty
    fallback_scsv: bool = False
    empty_renegotiation_scsv: bool = False
    extra: tuple[tuple[int, bytes], ...] = ()  # further raw extensions (type, body)

    def all_versions(self) -> tuple[int, ...]:
        if self.versions:
            return self.versions
        return (self.version,)


def build_client_hello(offer: HelloOffer, provider: Provider | None = None) -> tuple[bytes, dict]:
    """The ClientHello record(s) for ``offer``, and the key shares made (group -> KeyShare)."""
    from ..proto.groups import new_key_share
    provider = provider or Provider()
    versions = offer.all_versions()
    tls13 = max(versions) >= TLS13
    legacy = min(max(versions), TLS12)
    exts: list[Extension] = []
    if offer.sni:
        exts.append(Extension(ET.server_name, X.ServerNameList(server_name_list=[
            X.ServerName(name_type=0, host_name=offer.sni.encode("idna"))])))
    if offer.ec_point_formats and min(versions) < TLS13:
        exts.append(Extension(ET.ec_point_formats, X.ECPointFormats(ec_point_format_list=[0])))
    if offer.groups:
        exts.append(Extension(ET.supported_groups, X.NamedGroupList(named_group_list=list(offer.groups))))
    if offer.signature_algorithms and max(versions) >= TLS12:
        exts.append(Extension(ET.signature_algorithms, X.SignatureSchemeList(
            supported_signature_algorithms=list(offer.signature_algorithms))))
    if offer.status_request:
        exts.append(Extension(ET.status_request, X.StatusRequest(
            status_type=1, responder_id_list=b"", request_extensions=b"")))
    if offer.alpn:
        exts.append(Extension(ET.application_layer_protocol_negotiation, X.ProtocolNameList(
            protocol_name_list=[p.encode() for p in offer.alpn])))
    if offer.record_size_limit:
        exts.append(Extension(ET.record_size_limit, X.RecordSizeLimit(
            record_size_limit=offer.record_size_limit)))
    if min(versions) < TLS13:
        if offer.encrypt_then_mac:
            exts.append(Extension(ET.encrypt_then_mac, X.Empty()))
        if offer.extended_master_secret:
            exts.append(Extension(ET.extended_master_secret, X.Empty()))
        if offer.renegotiation_info:
            exts.append(Extension(ET.renegotiation_info, X.RenegotiationInfo(renegotiated_connection=b"")))
        if offer.session_ticket is not None:
            exts.append(Extension(ET.session_ticket, X.RawBody(data=offer.session_ticket)))
    if offer.heartbeat:
        exts.append(Extension(15, None, data=b"\x01"))  # RFC 6520 §2: peer_allowed_to_send
    for ext_type, body in offer.extra:
        exts.append(Extension(ext_type, None, data=body))
    shares: dict = {}
    if tls13:
        exts.append(Extension(ET.supported_versions, X.SupportedVersionsCH(versions=list(versions))))
        if offer.psk_modes:
            exts.append(Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(
                ke_modes=list(offer.psk_modes))))
        entries = []
        for g in offer.key_shares:
            share = shares[g] = new_key_share(g, provider)
            entries.append(X.KeyShareEntry(group=g, key_exchange=share.public))
        exts.append(Extension(ET.key_share, X.KeyShareCH(client_shares=entries)))
    suites_list = list(offer.cipher_suites)
    if offer.empty_renegotiation_scsv:
        suites_list.append(0x00FF)  # RFC 5746 §3.3
    if offer.fallback_scsv:
        suites_list.append(0x5600)  # RFC 7507 §4
    if offer.session_id is not None:
        session_id = offer.session_id
    else:
        session_id = provider.random(32) if tls13 else b""
    ch = ClientHello(legacy_version=legacy, random=provider.random(32),
                     legacy_session_id=session_id, cipher_suites=suites_list,
                     legacy_compression_methods=offer.compression_methods,
                     extensions=exts if exts else None)
    raw = ch.build()
    if 256 <= len(raw) < 512 and exts:
        # RFC 7685: some servers hang on ClientHellos of 256-511 bytes; pad to 512 as
        # OpenSSL and NSS do (the padding extension goes last, 4 bytes of header)
        pad = 512 - len(raw) - 4
        exts.append(Extension(ET.padding, X.RawBody(data=bytes(max(pad, 0)))))
        ch.extensions = exts
        raw = ch.build()
    # the record version of a first flight is 0x0301 by convention (RFC 8446 §5.1 and
    # appendix E of RFC 5246), except for SSL 3.0, which knows no other
    record_version = SSL3 if max(versions) == SSL3 else TLS10
    out = bytearray()
    for i in range(0, len(raw), 16384):
        out += plaintext_record(22, raw[i:i + 16384], record_version)
    return bytes(out), shares


@dataclass
class HelloAnswer:
    """What the server answered to one ClientHello (its first flight, in clear).

    ``kind``: ``server_hello`` (TLS 1.3 ServerHello or a TLS 1.0-1.2 one),
    ``hello_retry_request``, ``alert``, ``closed`` (no answer, connection closed), ``reset``,
    ``timeout``, ``not_tls`` (the answer is not TLS), ``malformed`` (TLS, but not parseable),
    ``sslv2`` (an SSL 2.0 SERVER-HELLO), ``refused``/``unreachable`` (no TCP connection),
    ``starttls_failed``.
    """

    kind: str
    detail: str = ""
    version: int | None = None
    cipher_suite: int | None = None
    selected_group: int | None = None          # TLS 1.3: the ServerHello key share or HRR
    session_id: bytes = b""
    compression_method: int | None = None
    extensions: dict[int, Extension] = field(default_factory=dict)
    alert: tuple[int, int] | None = None        # (level, description)
    certificates: list[bytes] = field(default_factory=list)   # TLS <= 1.2, as sent
    ocsp_response: bytes | None = None
    server_key_exchange: bytes | None = None    # its body (parsed on demand by the caller)
    certificate_request: bool = False
    messages: list[str] = field(default_factory=list)
    sslv2_ciphers: list[int] = field(default_factory=list)
    received: int = 0
    first_bytes: bytes = b""

    @property
    def accepted(self) -> bool:
        return self.kind in ("server_hello", "hello_retry_request", "sslv2")

    def ext(self, ext_type: int) -> Extension | None:
        return self.extensions.get(ext_type)


class FirstFlightParser:
    """Incrementally reads a server's first flight; :attr:`done` once enough is known."""

    def __init__(self) -> None:
        self.records = RecordReader()
        self.handshake = HandshakeBuffer()
        self.answer = HelloAnswer(kind="closed")
        self.done = False
        self._sh_seen = False
        self._tls13 = False
        self._v2 = False
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        a = self.answer
        if not data or self.done:
            return
        if not a.received:
            a.first_bytes = bytes(data[:64])
            # RFC 6101 App. E / SSL 2.0: a two-byte header with the top bit set, then
            # SERVER-HELLO (type 4); only an SSL 2.0 server answers that way
            self._v2 = bool(data[0] & 0x80 and len(data) >= 3 and data[2] == 4)
        a.received += len(data)
        if self._v2:
            self._sslv2(data)
            return
        try:
            self.records.add(data)
            while not self.done:
                rec = self.records.next_record(protected=self._sh_seen, tls12=True)
                if rec is None:
                    break
                header, fragment = rec
                self._record(header[0], fragment)
        except TLSError as e:
            if not self._sh_seen and a.kind in ("closed", "alert"):
                first = a.first_bytes
                a.kind = "not_tls" if first and (first[0] not in (20, 21, 22, 23, 24)
                                                 or first[1:2] != b"\x03") else "malformed"
                a.detail = str(e)
            self.done = True
        if a.received > MAX_FIRST_FLIGHT:
            self.done = True

    def _sslv2(self, data: bytes) -> None:
        from ..proto.sslv2 import parse_server_hello_v2
        a = self.answer
        self._buffer += data
        try:
            hello = parse_server_hello_v2(bytes(self._buffer))
        except TLSError as e:
            a.kind, a.detail, self.done = "malformed", str(e), True
            return
        if hello is None:
            if a.received > MAX_FIRST_FLIGHT:
                a.kind, a.detail, self.done = "malformed", "SSL 2.0 answer too long", True
            return  # more bytes needed
        a.kind, a.version = "sslv2", 0x0002
        a.sslv2_ciphers = list(hello.cipher_specs)
        a.certificates = [hello.certificate] if hello.certificate else []
        a.messages.append("SSLv2 SERVER-HELLO")
        self.done = True

    def _record(self, content_type: int, fragment: bytes) -> None:
        a = self.answer
        if content_type == 21:
            if len(fragment) >= 2:
                a.alert = (fragment[0], fragment[1])
                if not self._sh_seen:
                    a.kind = "alert"
            self.done = True
            return
        if content_type != 22 or (self._tls13 and self._sh_seen):
            if self._sh_seen:
                self.done = True  # encrypted flight (TLS 1.3) or a CCS: nothing more in clear
            return
        self.handshake.add(fragment)
        while not self.done:
            raw = self.handshake.pop_message()
            if raw is None:
                return
            self._message(raw)

    def _message(self, raw: bytes) -> None:
        a = self.answer
        msg_type = raw[0]
        if not self._sh_seen:
            if msg_type != 2:
                a.kind, a.detail, self.done = "malformed", f"first message of type {msg_type}", True
                return
            sh = ServerHello.parse(raw)
            self._sh_seen = True
            a.messages.append(sh.name)
            a.cipher_suite = sh.cipher_suite
            a.session_id = bytes(sh.legacy_session_id_echo)
            a.compression_method = sh.legacy_compression_method
            a.extensions = {e.type: e for e in (sh.extensions or [])}
            sv = a.extensions.get(ET.supported_versions)
            a.version = sv.value.selected_version if sv is not None and sv.value is not None \
                else sh.legacy_version
            ks = a.extensions.get(ET.key_share)
            if sh.is_hello_retry_request:
                a.kind = "hello_retry_request"
                if ks is not None and ks.value is not None:
                    a.selected_group = ks.value.selected_group
                self.done = True
                return
            a.kind = "server_hello"
            if a.version >= TLS13:
                self._tls13 = True
                if ks is not None and ks.value is not None:
                    a.selected_group = ks.value.server_share.group
                self.done = True
            return
        from ..proto.messages12 import parse_message12
        names = {11: "Certificate", 22: "CertificateStatus", 12: "ServerKeyExchange",
                 13: "CertificateRequest", 14: "ServerHelloDone"}
        a.messages.append(names.get(msg_type, f"message {msg_type}"))
        if msg_type == 11:
            a.certificates = [bytes(c) for c in parse_message12(raw, a.version or TLS12).certificate_list]
        elif msg_type == 22:
            a.ocsp_response = bytes(parse_message12(raw, a.version or TLS12).response)
        elif msg_type == 12:
            a.server_key_exchange = raw[4:]
        elif msg_type == 13:
            a.certificate_request = True
        elif msg_type == 14:
            self.done = True

    def finish(self, how: str | None = None, detail: str = "") -> HelloAnswer:
        """The answer; ``how`` says why reading stopped early (``timeout``, ``reset``)."""
        a = self.answer
        if how and a.kind == "closed" and not a.received:
            a.kind, a.detail = how, detail
        elif a.kind == "closed" and a.received:
            a.kind = "malformed" if a.first_bytes[:1] in (b"\x14", b"\x15", b"\x16", b"\x17") \
                else "not_tls"
            a.detail = a.detail or "the answer ended before a complete ServerHello"
        return a


def suite_kx(code: int | None) -> str | None:
    """The engine's key-exchange name for a TLS 1.2 suite (to parse a ServerKeyExchange)."""
    s = suites().get(code or -1)
    if s is None:
        return None
    if s.kx == "ECDHE":
        return "ECDHE_ECDSA" if s.auth == "ECDSA" else "ECDHE_RSA"
    if s.kx == "DHE":
        return "DHE_RSA"
    return None
