"""The server's features: resumption (session ID, tickets, TLS 1.3 PSK), 0-RTT, OCSP
stapling, ALPN, renegotiation, TLS_FALLBACK_SCSV, extended master secret, encrypt-then-MAC,
compression, record_size_limit and HelloRetryRequest behaviour.

Each result carries its evidence: what was offered and what the server answered.  Checks
that need a version the server does not speak say ``None`` ("not applicable") with why.
"""
from __future__ import annotations

import dataclasses

from ..proto.extensions import ET
from .enumerate import Prober
from .handshake import handshake
from .registry import TLS12, TLS13, VERSION_NAMES, suites

#: ALPN protocol IDs tried (IANA "TLS Application-Layer Protocol Negotiation (ALPN)
#: Protocol IDs"), the common ones first
ALPN_CANDIDATES = ("h2", "http/1.1", "http/1.0", "h3", "spdy/3.1", "stun.turn", "webrtc",
                   "c-webrtc", "ftp", "imap", "pop3", "managesieve", "xmpp-client",
                   "xmpp-server", "acme-tls/1", "mqtt", "dot", "ntske/1", "sunrpc", "postgresql",
                   "smb", "irc", "nntp", "nnsp", "coap", "sip/2")
_HTTP_REQUEST = "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tlslab-scan\r\nConnection: close\r\n\r\n"


def _ev(offered: str, answered: str) -> str:
    return f"offered {offered}; the server {answered}"


async def resumption12(p: Prober, deadline: float) -> dict:
    """RFC 5246 §7.3 (session IDs) and RFC 5077 (tickets), in TLS 1.2."""
    from ..proto.tickets import TicketStore
    t = p.target
    store = TicketStore()
    first = await handshake(t, deadline, versions=["TLS 1.2"], session_store=store)
    out: dict = {"session_id": None, "tickets": None, "ticket_lifetime_hint": None, "evidence": []}
    if not first.ok:
        out["evidence"].append(f"no TLS 1.2 handshake: {first.failure}")
        return out
    sess = store.take(t.sni or "", first.conn.provider.time(), kind=_session12_type(),
                      verifier=first.conn.config.verifier_id)
    if sess is None:
        out.update(session_id=False, tickets=False)
        out["evidence"].append("the server gave neither a session ID nor a ticket")
        return out
    out["tickets"] = bool(sess.ticket)
    if sess.ticket:
        out["ticket_lifetime_hint"] = sess.lifetime
        # resume with the ticket
        store.add(sess)
        again = await handshake(t, deadline, versions=["TLS 1.2"], session_store=store)
        ok = again.ok and bool(again.conn.negotiated.get("resumed"))
        out["tickets"] = ok
        out["evidence"].append(_ev("the ticket of the first handshake",
                                   "resumed the session" if ok else "did a full handshake"))
    if sess.session_id:
        store.add(dataclasses.replace(sess, ticket=b""))
        again = await handshake(t, deadline, versions=["TLS 1.2"], session_store=store)
        ok = again.ok and bool(again.conn.negotiated.get("resumed"))
        out["session_id"] = ok
        out["evidence"].append(_ev("the session ID of the first handshake",
                                   "resumed the session" if ok else "did a full handshake"))
    else:
        out["session_id"] = False
        out["evidence"].append("the server sent an empty session ID (no session cache)")
    return out


def _session12_type():
    from ..proto.tickets import Session12
    return Session12


async def resumption13(p: Prober, deadline: float) -> dict:
    """RFC 8446 §4.6.1 tickets, §2.2 PSK resumption and §4.2.10 0-RTT."""
    from ..proto.tickets import TicketStore
    t = p.target
    store = TicketStore()
    request = _HTTP_REQUEST.format(host=t.sni or t.host).encode()
    first = await handshake(t, deadline, versions=["TLS 1.3"], session_store=store,
                            request=request, wait_after=0.3)
    out: dict = {"psk": None, "tickets_sent": 0, "ticket_lifetime": None,
                 "early_data": {"accepted": None, "max_early_data_size": None}, "evidence": []}
    if not first.ok:
        out["evidence"].append(f"no TLS 1.3 handshake: {first.failure}")
        return out
    from ..proto.events import NewSessionTicket
    tickets = [e for e in first.events if isinstance(e, NewSessionTicket)]
    out["tickets_sent"] = len(tickets)
    if not tickets:
        out["psk"] = False
        out["evidence"].append("no NewSessionTicket after the handshake (waited 0.3 s)")
        return out
    out["ticket_lifetime"] = max(e.lifetime for e in tickets)
    max_early = max((e.max_early_data_size or 0) for e in tickets)
    out["early_data"]["max_early_data_size"] = max_early
    again = await handshake(t, deadline, versions=["TLS 1.3"], session_store=store)
    ok = again.ok and bool(again.conn.negotiated.get("resumed"))
    out["psk"] = ok
    out["evidence"].append(_ev(f"a ticket ({len(tickets)} received, lifetime "
                               f"{out['ticket_lifetime']} s)",
                               "resumed with it" if ok else "did a full handshake"))
    if max_early > 0:
        ed = await handshake(t, deadline, versions=["TLS 1.3"], session_store=store,
                             early_data=request[:max_early], wait_after=0.2)
        accepted = ed.ok and bool(ed.conn.negotiated.get("early_data_accepted")
                                  or getattr(ed.conn, "early_data_accepted", False))
        out["early_data"]["accepted"] = accepted
        out["evidence"].append(_ev(f"{min(len(request), max_early)} bytes of 0-RTT data",
                                   "accepted them" if accepted else "rejected them"))
    else:
        out["early_data"]["accepted"] = False
        out["evidence"].append("the tickets allow no early data (max_early_data_size 0)")
    return out


async def alpn(p: Prober, deadline: float, tls12_suites: list[int], tls13: bool) -> dict:
    """The ALPN protocols the server accepts (RFC 7301), in its preference order."""
    remaining = list(ALPN_CANDIDATES)
    accepted: list[str] = []
    evidence = []
    while remaining:
        if tls12_suites:
            answer = await p.hello(p.base_offer(TLS12, tls12_suites, alpn=tuple(remaining)))
            ext = answer.ext(ET.application_layer_protocol_negotiation) if answer.accepted else None
            chosen = ext.value.protocol_name_list[0].decode("latin-1") if ext is not None and \
                ext.value is not None else None
            refusal = answer.alert
        else:
            hs = await handshake(p.target, deadline, versions=["TLS 1.3"],
                                 alpn_protocols=list(remaining), session_store=None)
            chosen = hs.conn.negotiated.get("alpn_protocol") if hs.ok else None
            refusal = None
        if chosen is None or chosen not in remaining:
            if refusal is not None and refusal[1] == 120:
                evidence.append("no_application_protocol alert once no accepted protocol was left")
            break
        accepted.append(chosen)
        remaining.remove(chosen)
    server_order = None
    if len(accepted) >= 2 and tls12_suites:
        answer = await p.hello(p.base_offer(TLS12, tls12_suites, alpn=tuple(reversed(accepted))))
        ext = answer.ext(ET.application_layer_protocol_negotiation)
        if ext is not None and ext.value is not None:
            server_order = ext.value.protocol_name_list[0].decode("latin-1") == accepted[0]
    evidence.insert(0, f"offered {len(ALPN_CANDIDATES)} protocol IDs, taking out each pick")
    return {"accepted": accepted, "server_order": server_order, "evidence": evidence}


async def tls12_extensions(p: Prober, accepted12: list[int]) -> dict:
    """Secure renegotiation (RFC 5746), extended master secret (RFC 7627), encrypt-then-MAC
    (RFC 7366), compression (RFC 3749), record_size_limit (RFC 8449), heartbeat (RFC 6520),
    OCSP stapling (RFC 6066 §8), all from TLS 1.2 ServerHellos."""
    out: dict = {}
    answer = await p.hello(p.base_offer(TLS12, accepted12, record_size_limit=16385,
                                        heartbeat=True))
    if not answer.accepted:
        return {"note": f"TLS 1.2 refused: {answer.kind}"}
    out["secure_renegotiation"] = answer.ext(ET.renegotiation_info) is not None
    out["extended_master_secret"] = answer.ext(ET.extended_master_secret) is not None
    out["record_size_limit"] = answer.ext(ET.record_size_limit) is not None
    out["heartbeat"] = answer.ext(15) is not None
    out["ocsp_stapling"] = answer.ocsp_response is not None
    out["ocsp_response"] = answer.ocsp_response
    cbc = [c for c in accepted12 if suites()[c].cbc]
    if cbc:
        etm = await p.hello(p.base_offer(TLS12, cbc))
        out["encrypt_then_mac"] = etm.accepted and etm.ext(ET.encrypt_then_mac) is not None
    else:
        out["encrypt_then_mac"] = None  # no CBC suite: nothing to apply it to (RFC 7366 §3)
    comp = await p.hello(p.base_offer(TLS12, accepted12, compression_methods=b"\x01\x00"))
    out["compression"] = bool(comp.accepted and comp.compression_method not in (0, None))
    return out


async def fallback_scsv(p: Prober, supported: list[int]) -> dict:
    """RFC 7507: a ClientHello below the server's best version, with TLS_FALLBACK_SCSV,
    must be answered with inappropriate_fallback."""
    below = [v for v in supported if v < max(supported)] if supported else []
    if not below:
        return {"supported": None, "evidence": "only one protocol version: no fallback to detect"}
    version = max(below)
    answer = await p.hello(p.base_offer(version, _suites_for(version), fallback_scsv=True))
    ok = answer.alert is not None and answer.alert[1] == 86
    got = (f"answered alert {answer.alert[1]}" if answer.alert else
           f"answered with {answer.kind.replace('_', ' ')}"
           + (f" ({VERSION_NAMES.get(answer.version or 0, '')})" if answer.accepted else ""))
    return {"supported": ok, "evidence": _ev(f"{VERSION_NAMES[version]} with TLS_FALLBACK_SCSV", got)}


def _suites_for(version: int) -> list[int]:
    from .registry import suites_for
    return suites_for(version)


async def client_renegotiation(p: Prober, deadline: float) -> dict:
    """Whether the server accepts a renegotiation the client starts (RFC 5746 §3.5): after a
    TLS 1.2 handshake the client sends a new ClientHello under the connection's keys, and
    the server answers with a ServerHello (accepted), a no_renegotiation warning, or by
    ending the connection (both refusals)."""
    t = p.target
    def answered(conn) -> bool:
        names = [(e.kind, e.direction, e.name) for e in conn.trace.entries[-4:]]
        return any(k == "alert" and d == "received" or (k, d, n) == ("message", "received", "ServerHello")
                   for k, d, n in names)

    hs = await handshake(t, deadline, versions=["TLS 1.2"], session_store=None,
                         after=lambda conn: conn.send_renegotiation_probe(), wait_after=1.0,
                         until=answered)
    if not hs.ok:
        return {"accepted": None, "evidence": f"no TLS 1.2 handshake: {hs.failure}"}
    entries = hs.conn.trace.entries
    start = next((i for i, e in enumerate(entries) if e.name == "renegotiation probe"), None)
    after = entries[start + 1:] if start is not None else []
    for e in after:
        if e.kind == "message" and e.direction == "received" and e.name == "ServerHello":
            return {"accepted": True, "evidence": "sent a new ClientHello after the handshake; "
                    "the server answered with a ServerHello (renegotiation accepted)"}
        if e.kind == "alert" and e.direction == "received":
            return {"accepted": False, "evidence": "sent a new ClientHello after the handshake; "
                    f"the server answered with a {e.name} alert"}
    closed = hs.conn.closed
    return {"accepted": False, "evidence": "sent a new ClientHello after the handshake; the server "
            + ("closed the connection" if closed else "did not answer within 1 s")}


async def hello_retry(p: Prober, suites13: list[int], groups13: list[int]) -> dict:
    """RFC 8446 §4.1.4: a ClientHello without a usable key share gets a HelloRetryRequest
    naming the server's group (and maybe a cookie, §4.2.2)."""
    answer = await p.hello(p.base_offer(TLS13, suites13, groups=tuple(groups13)))
    if answer.kind != "hello_retry_request":
        return {"sent": False, "evidence": f"no key share offered; the server answered {answer.kind}"}
    from .registry import group_name
    return {"sent": True, "group": group_name(answer.selected_group or 0),
            "cookie": answer.ext(ET.cookie) is not None,
            "evidence": f"no key share offered; HelloRetryRequest for {group_name(answer.selected_group or 0)}"}
