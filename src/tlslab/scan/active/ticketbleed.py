"""Ticketbleed (CVE-2016-9244): does the server echo more session ID than the client sent
when it resumes from a session ticket?

RFC 5077 §3.4: a client resuming with a ticket may send a session ID; "If the server
accepts the ticket and the Session ID is not empty, then it MUST respond with the same
Session ID present in the ClientHello."  F5 BIG-IP always echoed 32 bytes, so a client that
sent 1 byte got 31 bytes of uninitialised memory back, on every resumption.

The probe: one full TLS 1.2 handshake with the engine's own client, which asks for a ticket
(RFC 5077 §3.2); then a ClientHello offering that ticket with a 1-byte session ID.  If the
server resumes (ChangeCipherSpec right after the ServerHello), its session ID echo decides.
"""
from __future__ import annotations

from ...proto.tls12.suites import SUITES12_BY_NAME
from .exchange import BROAD_SUITES, Exchange, client_hello, guarded
from .result import CheckResult

NAME = "TICKETBLEED"
#: the session ID offered with the ticket: one byte, as in the original report
SESSION_ID = b"\x5a"


async def check_ticketbleed(target, deadline: float) -> CheckResult:
    """Ticketbleed (CVE-2016-9244, RFC 5077 §3.4) against ``target``; ``deadline`` is an
    absolute :func:`time.monotonic` time."""
    return await guarded(NAME, _check, target, deadline)


async def _check(target, deadline: float) -> CheckResult:
    import tlslab
    config = tlslab.ClientConfig(server_name=target.sni, insecure=True, versions=["TLS 1.2"],
                                 ocsp_stapling=False)
    conn = tlslab.ClientConnection(config)
    async with await Exchange.open(target, deadline) as x:
        done = await x.handshake(conn)
    if not done:
        alerts = [e.name for e in conn.trace.entries if e.kind == "alert" and e.direction == "received"]
        why = (f"it sent alert {alerts[0]}" if alerts else str(conn.error or "the connection ended"))
        if alerts and alerts[0] in ("protocol_version", "handshake_failure") and not conn.peer_certificates:
            # refused before its certificate: it speaks no TLS 1.2 (with the suites offered)
            return CheckResult(NAME, False, f"not applicable: no TLS 1.2 handshake with the server "
                               f"({why})", {"applicable": False, "hello": alerts[0]})
        return CheckResult(NAME, None, f"not decided: the first TLS 1.2 handshake, needed for a "
                           f"ticket, did not complete ({why})", {"error": why})
    tickets = [e.message.ticket for e in conn.trace.entries
               if e.kind == "message" and e.direction == "received" and e.name == "NewSessionTicket12"]
    if not tickets or not tickets[-1]:
        return CheckResult(NAME, False, "not applicable: after a full TLS 1.2 handshake that "
                           "asked for one, the server sent no session ticket (RFC 5077)",
                           {"applicable": False})
    ticket = tickets[-1]
    suite = SUITES12_BY_NAME[conn.negotiated["cipher_suite"]].code
    ems = bool(conn.negotiated.get("extended_master_secret"))
    hello = client_hello(target, suites=(suite,) + tuple(s for s in BROAD_SUITES if s != suite),
                         session_id=SESSION_ID, ticket=ticket, extended_master_secret=ems)
    async with await Exchange.open(target, deadline) as x:
        flight = await x.hello(hello)
    what = (f"resumed with the ticket of a first handshake and a {len(SESSION_ID)}-byte "
            f"session ID ({SESSION_ID.hex()})")
    if flight.server_hello is None:
        return CheckResult(NAME, None, f"not decided: {what}; the server answered "
                           f"{flight.ended or 'nothing usable'}", {"hello": flight.ended})
    echo = bytes(flight.server_hello.legacy_session_id_echo)
    details = {"ticket_bytes": len(ticket), "session_id_sent": SESSION_ID.hex(),
               "session_id_echoed": echo.hex(), "resumed": flight.resumed}
    if not flight.resumed:
        return CheckResult(NAME, None, f"not decided: {what}; the server did not resume (it "
                           f"started a full handshake), so its {len(echo)}-byte session ID is "
                           "a new one and says nothing", details)
    if echo == SESSION_ID:
        return CheckResult(NAME, False, f"{what}; the ServerHello echoed exactly that session ID, "
                           "as RFC 5077 §3.4 requires", details)
    if len(echo) > len(SESSION_ID) and echo.startswith(SESSION_ID):
        extra = echo[len(SESSION_ID):]
        details["leaked"] = extra.hex()
        return CheckResult(NAME, True, f"{what}; the ServerHello echoed a {len(echo)}-byte session "
                           f"ID: {len(extra)} bytes the client never sent (memory of the server: "
                           f"{extra[:16]!r}...)", details)
    return CheckResult(NAME, None, f"{what}; the ServerHello echoed another session ID "
                       f"({echo.hex()}): not the Ticketbleed pattern, but not RFC 5077 §3.4 "
                       "either", details)


__all__ = ["check_ticketbleed"]
