"""The client's offer: its ClientHello and what was made for it (RFC 8446 §4.1.2, §4.2;
RFC 5246 §7.4.1.2).

One ClientHello offers every version the config allows, so it is built before the
version is known: :class:`ClientOffer` holds the hello (and the second one after a
HelloRetryRequest), the key shares behind it, the PSK and TLS 1.2 session it offers,
and the 0-RTT data to send.  The TLS 1.3 or TLS 1.2 handshake object that follows the
ServerHello takes the offer over.
"""
from __future__ import annotations

import functools

from . import extensions as X
from .extensions import (ET, Extension, KeyShareCH, KeyShareEntry, NamedGroupList, ProtocolNameList,
                         RecordSizeLimit, ServerName, ServerNameList, SharedExtension,
                         SignatureSchemeList, SupportedVersionsCH)
from .groups import new_key_share
from .keyschedule import SUITES, Transcript
from .messages import ClientHello, truncated_for_binders
from .names import is_grease


class ClientOffer:
    """What one client offered: the hellos sent, the key shares and sessions behind them."""

    __slots__ = ("client_hello", "ch_raw", "key_shares", "session", "session12", "early_data",
                 "early_schedule")

    def __init__(self) -> None:
        self.client_hello: ClientHello | None = None   # the latest ClientHello sent
        self.ch_raw: list[bytes] = []                  # every ClientHello sent, as bytes
        self.key_shares: dict[int, object] = {}        # group -> our private share
        self.session = None            # the TLS 1.3 Session offered as a PSK, if any
        self.session12 = None          # the TLS 1.2 Session12 offered for resumption, if any
        self.early_data: bytes | None = None           # 0-RTT data to send (RFC 8446 §4.2.10)
        self.early_schedule = None     # the PSK's key schedule (binder, early traffic secret)

    # -- what was offered --------------------------------------------------------------
    def offered(self, ext_type: int):
        return self.client_hello.ext_value(ext_type)

    def offered_types(self) -> set[int]:
        return {e.type for e in self.client_hello.extensions or []}

    def offered_groups(self) -> list[int]:
        v = self.offered(ET.supported_groups)
        return v.named_group_list if v is not None else []

    def offered_schemes(self) -> list[int]:
        v = self.offered(ET.signature_algorithms)
        return v.supported_signature_algorithms if v is not None else []

    def make_share(self, group: int, provider) -> KeyShareEntry:
        share = new_key_share(group, provider)
        self.key_shares[group] = share
        return KeyShareEntry(group=group, key_exchange=share.public)


# -- building ------------------------------------------------------------------------------
def build_client_hello(offer: ClientOffer, cfg, provider, client_random: bytes,
                       with_store: bool) -> ClientHello:
    """The ClientHello for ``cfg`` (or its recorded template), with fresh shares."""
    template = cfg.client_hello_template
    if template is not None:
        return from_template(offer, template, cfg, provider, client_random)
    tls13 = cfg.max_version >= 0x0304
    tls12 = cfg.min_version <= 0x0303
    s12 = offer.session12
    if s12 is not None and s12.session_id and not s12.ticket:
        session_id = s12.session_id          # RFC 5246 §7.4.1.2: resume by session ID
    elif (tls13 and cfg.compatibility_mode) or (s12 is not None and s12.ticket):
        session_id = provider.random(32)     # §D.4, or RFC 5077 §3.4 with a ticket
    else:
        session_id = b""
    exts: list[Extension] = []
    plan, suites = cfg.hello_plan(tls12, tls13, with_store)
    for item in plan:
        if type(item) is not str:   # the plan's Extension objects, shared and never modified
            exts.append(item)
        elif item == "session_ticket":
            ticket = s12.ticket if s12 is not None else b""
            exts.append(Extension(ET.session_ticket, X.RawBody(data=ticket)))
        else:  # "key_share"
            exts.append(Extension(ET.key_share, KeyShareCH(client_shares=[
                offer.make_share(g, provider) for g in cfg.key_share_codes])))
    ch = ClientHello(legacy_version=min(cfg.max_version, 0x0303), random=client_random,
                     legacy_session_id=session_id, cipher_suites=list(suites),
                     legacy_compression_methods=b"\x00", extensions=exts)
    if offer.session is None:
        pad(ch, cfg)
    return ch


def build_hello_plan(cfg, tls12: bool, tls13: bool, with_store: bool) -> tuple[list, list[int]]:
    """Everything of the ClientHello but the key shares and a TLS 1.2 ticket, which are
    made per connection (see ClientConfig.hello_plan, which keeps the result).  The plan's
    extensions are encoded once, here (:class:`SharedExtension`)."""
    from .tls12.suites import SUITES12
    plan: list = []
    if cfg.server_name and not is_ip(cfg.server_name):
        # RFC 6066 §3: literal IP addresses are not permitted in SNI
        plan.append(SharedExtension(ET.server_name, ServerNameList(server_name_list=[
            ServerName(name_type=0, host_name=cfg.server_name.encode("idna"))])))
    if tls12:
        plan.append(SharedExtension(ET.ec_point_formats, X.ECPointFormats(ec_point_format_list=[0])))
    groups = list(cfg.group_codes) if tls13 else [g for g in cfg.group_codes if g < 0x1000]
    plan.append(SharedExtension(ET.supported_groups, NamedGroupList(named_group_list=groups)))
    if cfg.max_version >= 0x0303:
        plan.append(SharedExtension(ET.signature_algorithms, SignatureSchemeList(
            supported_signature_algorithms=list(cfg.signature_scheme_codes))))
    if cfg.ocsp_stapling:
        plan.append(SharedExtension(ET.status_request, X.StatusRequest(
            status_type=1, responder_id_list=b"", request_extensions=b"")))
    if cfg.alpn_protocols:
        plan.append(SharedExtension(ET.application_layer_protocol_negotiation, ProtocolNameList(
            protocol_name_list=[p.encode() for p in cfg.alpn_protocols])))
    if cfg.record_size_limit:
        plan.append(SharedExtension(ET.record_size_limit, RecordSizeLimit(record_size_limit=cfg.record_size_limit)))
    if tls12:
        if any(SUITES12[c].cbc for c in cfg.suites12):
            plan.append(SharedExtension(ET.encrypt_then_mac, X.Empty()))
        plan.append(SharedExtension(ET.extended_master_secret, X.Empty()))
        plan.append(SharedExtension(ET.renegotiation_info, X.RenegotiationInfo(renegotiated_connection=b"")))
        if with_store:
            plan.append("session_ticket")
    if tls13:
        plan.append(SharedExtension(ET.supported_versions, SupportedVersionsCH(
            versions=[v for v in cfg.version_codes])))
        if cfg.post_handshake_auth:
            plan.append(SharedExtension(ET.post_handshake_auth, X.Empty()))  # RFC 8446 §4.2.6
        plan.append("key_share")
    if with_store and tls13:
        # lets the server issue tickets we can use (RFC 8446 §4.2.9)
        plan.append(SharedExtension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[1])))
    suites = list(cfg.suites13 if tls13 else []) + [
        c for c in cfg.suites12 if SUITES12[c].min_version <= cfg.max_version]
    if cfg.fallback_scsv:
        suites.append(0x5600)  # RFC 7507: this is a fallback connection
    return plan, suites


def pad(ch: ClientHello, cfg, reserve: int = 0) -> None:
    """RFC 7685: pad a ClientHello whose length is 256..511 bytes up to 512.

    ``reserve`` counts bytes still to be appended (a pre_shared_key, which must stay last).
    """
    if not cfg.pad_client_hello:
        return
    built = ch.build()
    size = len(built) + reserve
    if not reserve and not 256 <= size < 512:
        ch.raw = built  # already final: no need to build it again when sending
        return
    if 256 <= size < 512:
        # the padding extension's own header takes 4 bytes
        ch.extensions.append(Extension(ET.padding, X.RawBody(data=bytes(max(0, 512 - size - 4)))))


def add_psk(offer: ClientOffer, ch: ClientHello, prefix: Transcript | None, conn) -> ClientHello:
    """RFC 8446 §4.2.11: append pre_shared_key (last) with the offered session's ticket, and
    compute its binder over the truncated ClientHello (after ``prefix``, the transcript up
    to a HelloRetryRequest).  The PSK's key schedule is kept for 0-RTT."""
    from .handshake import psk_binder
    sess = offer.session
    suite = SUITES[sess.suite]
    exts = [e for e in ch.extensions if e.type not in (ET.pre_shared_key, ET.padding)]
    if not any(e.type == ET.psk_key_exchange_modes for e in exts):
        exts.append(Extension(ET.psk_key_exchange_modes, X.PskKeyExchangeModes(ke_modes=[1])))
    if offer.early_data is None or prefix is not None:
        exts = [e for e in exts if e.type != ET.early_data]
    elif not any(e.type == ET.early_data for e in exts):  # a template's stays where it was
        exts.append(Extension(ET.early_data, X.Empty()))
    ch.extensions = exts
    pad(ch, conn.config, reserve=4 + 2 + 2 + len(sess.ticket) + 4 + 2 + 1 + suite.hash_len)
    identity = X.PskIdentity(identity=sess.ticket,
                             obfuscated_ticket_age=sess.obfuscated_age(conn.provider.time()))
    offered = X.OfferedPsks(identities=[identity], binders=[bytes(suite.hash_len)])
    ch.extensions.append(Extension(ET.pre_shared_key, offered))
    binder, ks = psk_binder(conn, suite, sess.psk, prefix, truncated_for_binders(ch.build(), offered.binders))
    offered.binders = [binder]
    ch.extensions[-1] = Extension(ET.pre_shared_key, offered)
    offer.early_schedule = ks
    return ch


def from_template(offer: ClientOffer, template: ClientHello, cfg, provider,
                  client_random: bytes) -> ClientHello:
    """Copy a recorded ClientHello, with a fresh random, session id and key shares.

    This is how tlslab replays RFC 8448 and simulates real clients byte for byte:
    everything the client *chose* is kept, everything that must be fresh is new.
    """
    sid = template.legacy_session_id
    session_id = provider.random(len(sid)) if sid else b""
    exts = []
    name = cfg.server_name
    sni = (Extension(ET.server_name, ServerNameList(server_name_list=[
        ServerName(name_type=0, host_name=name.encode("idna"))]))
        if name and not is_ip(name) else None)
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
                s if is_grease(s.group) else offer.make_share(s.group, provider)
                for s in e.value.client_shares])))
        elif e.type == ET.pre_shared_key:
            continue  # a recorded PSK offer cannot be reused
        elif e.type == ET.early_data and offer.early_data is None:
            continue  # only offered with a ticket and 0-RTT data to send (RFC 8446 §4.2.10)
        else:
            exts.append(e)
    ch = ClientHello(legacy_version=template.legacy_version, random=client_random,
                     legacy_session_id=session_id, cipher_suites=list(template.cipher_suites),
                     legacy_compression_methods=template.legacy_compression_methods,
                     extensions=exts)
    _keep_recorded_length(ch, template)
    return ch


def _keep_recorded_length(ch: ClientHello, template: ClientHello) -> None:
    """RFC 7685: a recorded padding extension grew the hello to a chosen length; a
    different server name changes the length, so the padding absorbs the difference."""
    pad_ext = next((e for e in ch.extensions if e.type == ET.padding), None)
    if pad_ext is None:
        return

    def sni_size(exts) -> int:
        return sum(4 + len(e.data) for e in exts if e.type == ET.server_name)

    delta = sni_size(template.extensions or []) - sni_size(ch.extensions)
    value = pad_ext.value
    body = bytes(value.data if isinstance(value, X.RawBody) else b"")
    if delta and len(body) + delta >= 0:
        pad_ext.value = X.RawBody(data=bytes(len(body) + delta))


@functools.lru_cache(maxsize=256)
def is_ip(name: str) -> bool:
    """Whether ``name`` is an IP literal (RFC 6066 §3 keeps those out of SNI)."""
    import ipaddress
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False
