"""Extension bodies (RFC 8446 §4.2 and the RFCs that define each extension).

An :class:`Extension` keeps its type, its exact body bytes (``data``) and, when
the type is known *in the message it appears in*, the parsed body (``value``).
The same extension type can have a different shape per message (``key_share``
in ClientHello / ServerHello / HelloRetryRequest), so bodies are looked up by
``(type, context)``.  Unknown and GREASE extensions keep ``value = None`` and
round-trip unchanged.
"""
from __future__ import annotations

from typing import Any, ClassVar

import struct

from .codec import Kind, Opaque, Reader, Rest, Struct, StructKind, UInt, Vector, _emit_prefix, reader_of
from .codegen import Code
from .errors import DecodeError, IllegalParameter
from .names import (ExtensionType, NamedGroup, ProtocolVersion,
                    PskKeyExchangeMode, SignatureScheme, member_view, name_of)
from .trace import FieldSpan

#: the extension types, read as fast as plain class attributes (the members themselves)
ET = member_view(ExtensionType)

# Message contexts in which extensions appear (RFC 8446 §4.2 table).
CH, SH, HRR, EE, CT, CR, NST = ("client_hello", "server_hello", "hello_retry_request",
                                "encrypted_extensions", "certificate", "certificate_request",
                                "new_session_ticket")


# --- bodies ---------------------------------------------------------------------------

class Empty(Struct):
    """An extension whose body must be empty (e.g. early_data in EncryptedExtensions)."""

    FIELDS = ()


class ServerName(Struct):
    """RFC 6066 §3."""

    FIELDS = (("name_type", UInt(1)), ("host_name", Opaque(2, min=1)))


class ServerNameList(Struct):
    FIELDS = (("server_name_list", Vector(2, StructKind(ServerName), min=1)),)


class NamedGroupList(Struct):
    """RFC 8446 §4.2.7."""

    FIELDS = (("named_group_list", Vector(2, UInt(2, NamedGroup), min=2)),)


class SignatureSchemeList(Struct):
    """RFC 8446 §4.2.3 (also signature_algorithms_cert)."""

    FIELDS = (("supported_signature_algorithms", Vector(2, UInt(2, SignatureScheme), min=2)),)


class ProtocolNameList(Struct):
    """RFC 7301 §3.1."""

    FIELDS = (("protocol_name_list", Vector(2, Opaque(1, min=1), min=2)),)


class SupportedVersionsCH(Struct):
    """RFC 8446 §4.2.1."""

    FIELDS = (("versions", Vector(1, UInt(2, ProtocolVersion), min=2, max=254)),)


class SupportedVersionsSH(Struct):
    FIELDS = (("selected_version", UInt(2, ProtocolVersion)),)


class KeyShareEntry(Struct):
    """RFC 8446 §4.2.8.

    ``key_exchange<1..2^16-1>`` is read with no minimum: an empty share is a share of the
    wrong size for its group, which the key exchange answers with illegal_parameter
    (§4.2.8.1, §4.2.8.2), as tlslite-ng does, rather than a decode_error here."""

    FIELDS = (("group", UInt(2, NamedGroup)), ("key_exchange", Opaque(2)))


class KeyShareCH(Struct):
    FIELDS = (("client_shares", Vector(2, StructKind(KeyShareEntry))),)


class KeyShareSH(Struct):
    FIELDS = (("server_share", StructKind(KeyShareEntry)),)


class KeyShareHRR(Struct):
    FIELDS = (("selected_group", UInt(2, NamedGroup)),)


class PskKeyExchangeModes(Struct):
    """RFC 8446 §4.2.9."""

    FIELDS = (("ke_modes", Vector(1, UInt(1, PskKeyExchangeMode), min=1)),)


class PskIdentity(Struct):
    FIELDS = (("identity", Opaque(2, min=1)), ("obfuscated_ticket_age", UInt(4)))


class OfferedPsks(Struct):
    """RFC 8446 §4.2.11."""

    FIELDS = (("identities", Vector(2, StructKind(PskIdentity), min=7)),
              ("binders", Vector(2, Opaque(1, min=32), min=33)))


class SelectedPsk(Struct):
    FIELDS = (("selected_identity", UInt(2)),)


class EarlyDataNST(Struct):
    """RFC 8446 §4.2.10."""

    FIELDS = (("max_early_data_size", UInt(4)),)


class Cookie(Struct):
    """RFC 8446 §4.2.2."""

    FIELDS = (("cookie", Opaque(2, min=1)),)


class ECPointFormats(Struct):
    """RFC 8422 §5.1.2."""

    FIELDS = (("ec_point_format_list", Vector(1, UInt(1), min=1)),)


class StatusRequest(Struct):
    """RFC 6066 §8 (CertificateStatusRequest, ocsp type)."""

    FIELDS = (("status_type", UInt(1)), ("responder_id_list", Opaque(2)),
              ("request_extensions", Opaque(2)))


class CertificateStatus(Struct):
    """RFC 8446 §4.4.2.1: the OCSP response in a CertificateEntry extension."""

    FIELDS = (("status_type", UInt(1)), ("response", Opaque(3, min=1)))


class RenegotiationInfo(Struct):
    """RFC 5746 §3.2."""

    FIELDS = (("renegotiated_connection", Opaque(1)),)


class RecordSizeLimit(Struct):
    """RFC 8449 §4."""

    FIELDS = (("record_size_limit", UInt(2)),)


class MaxFragmentLength(Struct):
    """RFC 6066 §4."""

    FIELDS = (("max_fragment_length", UInt(1)),)


class CompressCertificate(Struct):
    """RFC 8879 §3."""

    FIELDS = (("algorithms", Vector(1, UInt(2), min=2)),)


class ApplicationSettings(Struct):
    """draft-vvv-tls-alps: the protocols a client supports ALPS for."""

    FIELDS = (("supported_protocols", Vector(2, Opaque(1, min=1))),)


class DelegatedCredentialCH(Struct):
    """RFC 9345 §4.1.1."""

    FIELDS = (("signature_algorithms", Vector(2, UInt(2, SignatureScheme), min=2)),)


class StatusRequestV2(Struct):
    """RFC 6961 §2.2 (kept as the raw request list: nobody sends more than one item)."""

    FIELDS = (("certificate_status_req_list", Opaque(2)),)


class HpkeSymmetricCipherSuite(Struct):
    FIELDS = (("kdf_id", UInt(2)), ("aead_id", UInt(2)))


class EncryptedClientHello(Struct):
    """draft-ietf-tls-esni §5: the outer ClientHello form (type 0).  Inner (type 1) is one byte."""

    FIELDS = (("type", UInt(1)), ("body", Rest()))


class DistinguishedNames(Struct):
    """RFC 8446 §4.2.4 certificate_authorities."""

    FIELDS = (("authorities", Vector(2, Opaque(2, min=1), min=3)),)


class OIDFilter(Struct):
    FIELDS = (("certificate_extension_oid", Opaque(1, min=1)),
              ("certificate_extension_values", Opaque(2)))


class OIDFilters(Struct):
    """RFC 8446 §4.2.5."""

    FIELDS = (("filters", Vector(2, StructKind(OIDFilter))),)


class RawBody(Struct):
    """Opaque bodies we name but do not decompose (session_ticket, padding, SCT list, ...)."""

    FIELDS = (("data", Rest()),)


_ANY = object()

# (type, context) -> body; (type, _ANY) applies to every context not listed.
BODIES: dict[tuple[int, Any], type[Struct]] = {
    (ET.server_name, CH): ServerNameList,
    (ET.server_name, _ANY): Empty,
    (ET.max_fragment_length, _ANY): MaxFragmentLength,
    (ET.status_request, CH): StatusRequest,
    (ET.status_request, CR): Empty,  # RFC 8446 §4.4.2.1: an empty request for the client's OCSP
    (ET.status_request, CT): CertificateStatus,
    (ET.status_request, _ANY): Empty,
    (ET.supported_groups, _ANY): NamedGroupList,
    (ET.ec_point_formats, _ANY): ECPointFormats,
    (ET.signature_algorithms, _ANY): SignatureSchemeList,
    (ET.signature_algorithms_cert, _ANY): SignatureSchemeList,
    (ET.application_layer_protocol_negotiation, _ANY): ProtocolNameList,
    (ET.status_request_v2, CH): StatusRequestV2,
    (ET.signed_certificate_timestamp, CH): Empty,
    (ET.signed_certificate_timestamp, CR): Empty,
    (ET.signed_certificate_timestamp, _ANY): RawBody,
    (ET.padding, _ANY): RawBody,
    (ET.encrypt_then_mac, _ANY): Empty,
    (ET.extended_master_secret, _ANY): Empty,
    (ET.compress_certificate, _ANY): CompressCertificate,
    (ET.record_size_limit, _ANY): RecordSizeLimit,
    (ET.delegated_credential, CH): DelegatedCredentialCH,
    (ET.delegated_credential, CR): DelegatedCredentialCH,
    (ET.session_ticket, _ANY): RawBody,
    (ET.pre_shared_key, CH): OfferedPsks,
    (ET.pre_shared_key, SH): SelectedPsk,
    (ET.early_data, NST): EarlyDataNST,
    (ET.early_data, _ANY): Empty,
    (ET.supported_versions, CH): SupportedVersionsCH,
    (ET.supported_versions, SH): SupportedVersionsSH,
    (ET.supported_versions, HRR): SupportedVersionsSH,
    (ET.cookie, _ANY): Cookie,
    (ET.psk_key_exchange_modes, _ANY): PskKeyExchangeModes,
    (ET.certificate_authorities, _ANY): DistinguishedNames,
    (ET.oid_filters, _ANY): OIDFilters,
    (ET.post_handshake_auth, _ANY): Empty,
    (ET.key_share, CH): KeyShareCH,
    (ET.key_share, SH): KeyShareSH,
    (ET.key_share, HRR): KeyShareHRR,
    (ET.renegotiation_info, _ANY): RenegotiationInfo,
    (ET.application_settings, CH): ApplicationSettings,
    (ET.application_settings_old, CH): ApplicationSettings,
    (ET.encrypted_client_hello, CH): EncryptedClientHello,
}


#: ClientHello extensions a server acts on (RFC 8446 §4.2, RFC 5246 §7.4.1.4 and the
#: extension RFCs): their bodies must parse, or the handshake ends with decode_error.
#: The TLS 1.2-only ones (ec_point_formats, encrypt_then_mac, extended_master_secret) are
#: not here: a TLS 1.3 server ignores them (RFC 8446 §4.2), so they are parsed leniently
#: and the TLS 1.2 server checks them (:func:`check_tls12_only`, :func:`check_point_formats`).
NEGOTIATED_IN_CH = frozenset({
    ET.server_name, ET.supported_groups, ET.signature_algorithms,
    ET.application_layer_protocol_negotiation, ET.record_size_limit, ET.session_ticket, ET.pre_shared_key, ET.early_data,
    ET.supported_versions, ET.cookie, ET.psk_key_exchange_modes,
    ET.post_handshake_auth, ET.key_share, ET.renegotiation_info, ET.padding,
})


def lenient(ext_type: int, context: str | None) -> bool:
    """Whether a malformed body of ``ext_type`` is kept as raw bytes instead of failing.

    RFC 8446 §4.2 and §9.3: a server ignores extensions it does not negotiate, so one it
    only decodes for display (ALPS 17513/17613, ECH 0xfe0d, status_request_v2, ...) must
    not abort the handshake when its body is not what we expect (it may be a newer draft,
    or a value in the unassigned space a client uses as it likes)."""
    return context == CH and ext_type not in NEGOTIATED_IN_CH


#: empty-bodied extensions only TLS 1.2 negotiates (RFC 7366 §2, RFC 7627 §5.1)
TLS12_ONLY_EMPTY = (ET.encrypt_then_mac, ET.extended_master_secret)


def check_tls12_only(extensions: "list[Extension] | None") -> None:
    """For a TLS 1.2 server: encrypt_then_mac and extended_master_secret "MUST be empty"
    (RFC 7366 §2, RFC 7627 §5.1); one with a body is decode_error."""
    for e in extensions or ():
        if e.type in TLS12_ONLY_EMPTY and e.value is None:
            raise DecodeError(f"{e.name} extension must be empty, has {len(e.data)} bytes")


def check_point_formats(ext: "Extension | None") -> None:
    """RFC 8422 §5.1.2, for a TLS 1.2 server choosing ECDHE: the client's ec_point_formats,
    when sent, must be well formed (decode_error) and list uncompressed (illegal_parameter)."""
    if ext is None:
        return
    if ext.value is None:
        raise DecodeError("malformed ec_point_formats extension")
    if 0 not in ext.value.ec_point_format_list:
        raise IllegalParameter("ec_point_formats does not offer the uncompressed format "
                               "(RFC 8422 §5.1.2)")


def body_class(ext_type: int, context: str | None) -> type[Struct] | None:
    cls = BODIES.get((ext_type, context))
    if cls is None:
        cls = BODIES.get((ext_type, _ANY))
    return cls


#: context -> {extension type: generated reader of its body class}: :func:`body_class`
#: for every type, made on first use per context (BODIES is not meant to change after import)
_READERS_BY_CONTEXT: dict[Any, dict[int, Any]] = {}


def _body_readers(context: Any) -> dict[int, Any]:
    table = _READERS_BY_CONTEXT.get(context)
    if table is None:
        table = {t: reader_of(cls) for t in {t for t, _ in BODIES}
                 if (cls := body_class(t, context)) is not None}
        if len(_READERS_BY_CONTEXT) > 64:  # contexts are a handful of names; bound it anyway
            _READERS_BY_CONTEXT.clear()
        _READERS_BY_CONTEXT[context] = table
    return table


class Extension:
    """One extension: ``type``, exact body bytes ``data``, parsed ``value`` (or None if unknown)."""

    __slots__ = ("type", "_data", "value")

    def __init__(self, type: int, value: Struct | None = None, data: bytes | None = None) -> None:
        self.type = type
        self.value = value
        self._data = data if data is not None else (None if value is not None else b"")

    @property
    def data(self) -> bytes:
        """The exact body bytes (built from ``value`` on first use for new extensions)."""
        if self._data is None:
            self._data = self.value.build()
        return self._data

    @property
    def name(self) -> str:
        return name_of(ExtensionType, self.type)

    def __repr__(self) -> str:
        return f"Extension({self.name}, {self.value if self.value is not None else self.data.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Extension) and self.type == other.type and self.data == other.data

    #: True for a :class:`SharedExtension`, whose body bytes are final
    shared: ClassVar[bool] = False


class SharedExtension(Extension):
    """An extension made once (from a config) and put in many messages: its body is encoded
    when it is made, and every message that carries it writes those bytes instead of
    encoding ``value`` again.  ``value`` stays readable and must never be modified."""

    __slots__ = ()
    shared: ClassVar[bool] = True

    def __init__(self, type: int, value: Struct) -> None:
        super().__init__(type, value, value.build())


class ExtensionKind(Kind):
    """``Extension extensions<0..2^16-1>`` body element: type, length, then the body."""

    self_spans = True

    def read(self, r: Reader, what: str) -> Extension:
        start = r.pos
        ext_type = r.uint(2, "extension type")
        length = r.uint(2, "extension length")
        sub = r.sub(length, f"extension {name_of(ExtensionType, ext_type)}")
        data = r.data[sub.pos:sub.end]
        cls = body_class(ext_type, r.ctx)
        value = None
        if cls is not None:
            try:
                value = cls._read_fields(sub)
                if sub.pos != sub.end:
                    raise DecodeError(f"{sub.end - sub.pos} trailing bytes in extension "
                                      f"{name_of(ExtensionType, ext_type)}")
                value.raw = data
            except DecodeError:
                if not lenient(ext_type, r.ctx):
                    raise
                value = None  # shown as raw bytes; nothing negotiates it
        if r.spans is not None:
            children = [FieldSpan("extension_type", start, 2, name_of(ExtensionType, ext_type)),
                        FieldSpan("length", start + 2, 2, length)]
            body = FieldSpan("extension_data", start + 4, length, data.hex(),
                             (value._spans or []) if value is not None else [])
            children.append(body)
            if value is not None:
                value._spans = None
            r.spans.append(FieldSpan(name_of(ExtensionType, ext_type), start, r.pos - start,
                                     value.summary() if value is not None else data.hex(), children))
        return Extension(ext_type, value, data)

    def write(self, value: Extension, out: bytearray) -> None:
        body = value.value.build() if value.value is not None and not value.shared else value.data
        out += value.type.to_bytes(2, "big")
        out += len(body).to_bytes(2, "big")
        out += body

    def display(self, value: Extension) -> Any:
        return value.name


class ExtensionsKind(Vector):
    """The extensions block: a 2-byte length, then extensions; duplicates are illegal (RFC 8446 §4.2)."""

    def __init__(self) -> None:
        super().__init__(2, ExtensionKind())

    def read(self, r: Reader, what: str) -> list:
        items = super().read(r, what)
        if len(items) > 1:
            seen = set()
            for e in items:
                if e.type in seen:
                    raise IllegalParameter(f"duplicate extension {e.name}")
                seen.add(e.type)
        return items

    def emit_read(self, code: Code, what: str, end: str) -> str:
        """The list in one loop: each extension's type, length and body, its body parsed by
        the generated reader of its class for this context (RFC 8446 §4.2), then the
        duplicate check, as :meth:`read` does it."""
        code.use(Extension=Extension, name_of=name_of, ExtensionType=ExtensionType, lenient=lenient,
                 body_readers=_body_readers, check_duplicates=_check_duplicates,
                 unpack_hh=_UNPACK_HH, new_extension=Extension.__new__)
        n = _emit_prefix(code, self.prefix, self.min, self.max, what, end)
        code(f'if pos + {n} > {end}: raise DecodeError('
             f'f"{what} length {{{n}}} exceeds the {{{end} - pos}} bytes left")')
        stop, items, table = code.var("stop"), code.var("items"), code.var("table")
        t, ln, e, body, rd, value, p, x = (code.var(h) for h in ("t", "ln", "e", "body", "rd", "value", "p", "x"))
        name = f"{{name_of(ExtensionType, {t})}}"
        code(f"{stop} = pos + {n}")
        code(f"{items} = []")
        code(f"{table} = None")
        with code.block(f"while pos < {stop}:"):
            with code.block(f"if pos + 4 > {stop}:"):
                code.check(2, "extension type", stop)
                code(f'raise DecodeError(f"truncated extension length: need 2 bytes, {{{stop} - pos - 2}} left")')
            code(f"{t}, {ln} = unpack_hh(data, pos)")
            code("pos += 4")
            code(f"{e} = pos + {ln}")
            code(f'if {e} > {stop}: raise DecodeError('
                 f'f"extension {name} length {{{ln}}} exceeds the {{{stop} - pos}} bytes left")')
            code(f"{body} = data[pos:{e}]")
            code(f"if {table} is None: {table} = body_readers(ctx)")
            code(f"{rd} = {table}.get({t})")
            with code.block(f"if {rd} is None:"):
                code(f"{value} = None")
            with code.block("else:"):
                with code.block("try:"):
                    code(f"{value}, {p} = {rd}(data, pos, {e}, ctx)")
                    code(f'if {p} != {e}: raise DecodeError(f"{{{e} - {p}}} trailing bytes in extension {name}")')
                    code(f"{value}.raw = {body}")
                with code.block("except DecodeError:"):
                    code(f"if not lenient({t}, ctx): raise")
                    code(f"{value} = None  # shown as raw bytes; nothing negotiates it")
            code(f"{x} = new_extension(Extension)")
            code(f"{x}.type = {t}")
            code(f"{x}.value = {value}")
            code(f"{x}._data = {body}")
            code(f"{items}.append({x})")
            code(f"pos = {e}")
        code(f"if len({items}) > 1: check_duplicates({items})")
        return items

    def emit_write(self, code: Code, value: str) -> None:
        """Each extension (RFC 8446 §4.2): its body, built as ``value.build()`` builds it
        (the generated encoder of a structure), then type and length in one struct call.
        The interpreter's own steps, and errors, take over for a value that is not a
        structure, a type that is not a 16-bit int, a body too long."""
        code.use(pack_hh=_HH)
        at, x, v, b, t, tb, h, err = (code.var(n) for n in ("at", "x", "v", "b", "t", "tb", "h", "err"))
        code(f"{at} = len(out)")
        code("out += b'\\x00\\x00'")
        with code.block(f"for {x} in {value}:"):
            code(f"{v} = {x}.value")
            with code.block(f"if {v} is None or {x}.shared:"):
                code(f"{b} = {x}.data")
            with code.block("else:"):
                with code.block("try:"):
                    code(f"{b} = {v}._body()")
                with code.block(f"except AttributeError as {err}:"):
                    code(f"if {err}.obj is not {v} or {err}.name != '_body': raise")
                    code(f"{b} = None  # not a structure")
                code(f"if {b} is None: {b} = {v}.build()")
            code(f"{t} = {x}.type")
            code(f"{tb} = {t}.to_bytes  # where the interpreter fails for a type that is no int")
            with code.block("try:"):
                code(f"{h} = pack_hh({t}, len({b}))")
            with code.block("except (struct_error, TypeError):"):
                code(f"{h} = None")
            code(f"if {h} is None: {h} = {tb}(2, 'big') + len({b}).to_bytes(2, 'big')")
            code(f"out += {h}")
            code(f"out += {b}")
        code(f"out[{at}:{at} + 2] = (len(out) - {at} - 2).to_bytes(2, 'big')")

    def display(self, value: list) -> Any:
        return [e.name for e in value]


_HH = struct.Struct(">HH").pack
_UNPACK_HH = struct.Struct(">HH").unpack_from


def _check_duplicates(items: list[Extension]) -> None:
    """RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type"."""
    if len({e.type for e in items}) == len(items):
        return
    seen = set()
    for e in items:
        if e.type in seen:
            raise IllegalParameter(f"duplicate extension {e.name}")
        seen.add(e.type)


def find(extensions: list[Extension] | None, ext_type: int) -> Extension | None:
    """The extension of ``ext_type`` in a list, or None."""
    for e in extensions or ():
        if e.type == ext_type:
            return e
    return None

