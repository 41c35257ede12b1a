"""The small HTTP/1.1 page ``tlslab serve`` answers with (like ``openssl s_server -www``).

It tells the client what was negotiated and what it offered, as read from the
server's own trace of the handshake.
"""
from __future__ import annotations

import datetime
import time
from typing import Any

from .render import client_offer, connection_rows, safe_text

__all__ = ["page_text", "build_response", "parse_request_head", "response_for_request",
           "http_handler", "async_http_handler", "EARLY_SAFE_METHODS", "MAX_RESPONSE"]

#: methods answered when the request arrived as 0-RTT early data, which an attacker can
#: replay (RFC 8446 §8): the safe, idempotent ones.  Any other gets 425 Too Early
#: (RFC 8470 §5.2), and the client sends it again after the handshake.
EARLY_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: the whole answer (head and page) fits one TLS record (RFC 8446 §5.1: 2^14 bytes of
#: plaintext), whatever the client sent: the page repeats its ClientHello, which may list
#: thousands of suites or extensions, and its request line, which may be 64 KiB long (a
#: client that reads one record and closes, as tlsfuzzer does, finds nothing left over)
MAX_RESPONSE = 1 << 14
#: items of one offered list, and characters of one value, the page shows
_MAX_ITEMS = 32
_MAX_VALUE = 200


def _clip(text: str, limit: int = _MAX_VALUE) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _clip_list(values) -> str:
    """The first items of an offered list, saying how many more there were."""
    values = [_clip(v, 64) for v in values]
    shown = ", ".join(values[:_MAX_ITEMS])
    return shown + (f", ... ({len(values) - _MAX_ITEMS} more)" if len(values) > _MAX_ITEMS else "")


def page_text(negotiated: dict, trace: Any = None, *, peer: str | None = None,
              request_line: str | None = None, scenario: str | None = None,
              request_early: bool = False) -> str:
    """The plain-text body describing the connection; ``scenario`` (one line: the lab
    scenario this server plays, and what is wrong with it) comes first when given;
    ``request_early``: the request arrived (at least in part) as 0-RTT early data."""
    n = negotiated or {}
    offer = client_offer(trace) if trace is not None else {}
    lines = ["tlslab: your TLS connection", "=" * 27, ""]
    if scenario:
        lines += [f"lab scenario:        {scenario}", ""]
    if peer:
        lines.append(f"client:              {peer}")
    if request_line:
        lines.append(f"request:             {_clip(request_line)}"
                     + (" (sent as 0-RTT early data)" if request_early else ""))
    rows = [
        ("protocol version", n.get("version")),
        ("cipher suite", n.get("cipher_suite")),
        ("key exchange group", n.get("group")),
        ("signature scheme", n.get("signature_scheme")),
        ("ALPN protocol", n.get("alpn_protocol") or "(none)"),
        ("SNI (server name)", n.get("server_name") or offer.get("sni") or "(none sent)"),
        ("HelloRetryRequest", "yes" if n.get("hello_retry") else "no"),
    ]
    rows.append(("resumed", "yes" if n.get("resumed") else "no"))
    ed = n.get("early_data_accepted")
    rows.append(("0-RTT early data", "not sent" if ed is None else "accepted" if ed else "rejected"))
    extra = {label: value for label, value in connection_rows(n, trace, side="server")}
    rows.append(("client certificate", extra.get("client certificate")
                 or ("(resumed session)" if n.get("resumed") else "(none)")))
    for label in ("extended master secret", "secure renegotiation", "encrypt-then-MAC"):
        if label in extra:
            rows.append((label, extra[label]))
    for label, value in rows:
        head = label + ":"
        head = head.ljust(21) if len(head) < 21 else head + " "
        lines.append(f"{head}{_clip(value) if value is not None else '-'}")
    if offer:
        lines += ["", "your ClientHello offered:"]
        for label, key in (("versions", "versions"), ("cipher suites", "cipher_suites"),
                           ("groups", "groups"), ("key shares", "key_shares"),
                           ("signature algorithms", "signature_algorithms"), ("ALPN", "alpn"),
                           ("extensions", "extensions")):
            values = offer.get(key)
            if values:
                lines.append(f"  {label + ':':<23}{_clip_list(values)}")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines += ["", f"served by tlslab at {now}", ""]
    # the request line, SNI, ALPN and certificate names come from the client: no escape
    # sequences for the terminal that shows this page (curl, tlslab connect --http)
    return safe_text("\n".join(lines))


def build_response(negotiated: dict, trace: Any = None, *, peer: str | None = None,
                   request_line: str | None = None, head_only: bool = False,
                   status: str = "200 OK", scenario: str | None = None,
                   request_early: bool = False) -> bytes:
    """A complete HTTP/1.1 response (``Connection: close``) carrying :func:`page_text`."""
    body = page_text(negotiated, trace, peer=peer, request_line=request_line,
                     scenario=scenario, request_early=request_early).encode("utf-8")

    def head_for(body: bytes) -> bytes:
        return (f"HTTP/1.1 {status}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n"
                "Server: tlslab\r\n"
                "\r\n").encode("ascii")

    head = head_for(body)
    if len(head) + len(body) > MAX_RESPONSE:
        # the lists are clipped already; this is the backstop: cut at a line boundary
        note = b"\n(page cut to fit one TLS record)\n"
        room = MAX_RESPONSE - len(head) - len(note)
        body = body[:body.rfind(b"\n", 0, room) + 1] + note
        head = head_for(body)
    return head if head_only else head + body


def _error_response(status: str, text: str) -> bytes:
    body = (text + "\n").encode("utf-8")
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nServer: tlslab\r\n\r\n"
            ).encode("ascii") + body


def parse_request_head(data: bytes) -> tuple[str, str, str] | None:
    """``(method, target, version)`` from the first line of an HTTP request, or None."""
    line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1], parts[2]


def response_for_request(request: bytes, negotiated: dict, trace: Any = None, *,
                         peer: str | None = None, scenario: str | None = None,
                         early: bool = False) -> bytes:
    """The answer to ``request`` (the bytes read so far): the page for GET/HEAD,
    405 for other methods, 400 for something that is not HTTP.

    ``early``: some of the request arrived as 0-RTT early data, which may be a replay;
    a method outside :data:`EARLY_SAFE_METHODS` then gets ``425 Too Early`` (RFC 8470
    §5.2) and is not acted on; a GET in 0-RTT is answered."""
    head = parse_request_head(request)
    if head is None:
        return _error_response("400 Bad Request",
                               "tlslab serve speaks HTTP/1.1 over TLS: send `GET / HTTP/1.1`")
    method, target, version = head
    if early and method not in EARLY_SAFE_METHODS:
        return _error_response("425 Too Early",
                               f"{_clip(method, 32)} arrived as 0-RTT early data, which can be "
                               "replayed: send it again after the handshake (RFC 8470)")
    if method not in ("GET", "HEAD"):
        return _error_response("405 Method Not Allowed",
                               f"{_clip(method, 32)} is not supported; use GET")
    return build_response(negotiated, trace, peer=peer,
                          request_line=f"{method} {target} {version}",
                          head_only=method == "HEAD", scenario=scenario,
                          request_early=early)


def http_handler(tls_sock, scenario: str | None = None) -> None:
    """Read one HTTP request head from a server-side TLS socket and answer it with the
    handshake page (what ``tlslab serve`` does after each handshake).

    A request any part of which arrived as 0-RTT early data is treated as early (RFC 8470
    §5.2): only GET, HEAD and OPTIONS are answered; anything else gets 425 Too Early."""
    from ..io.blocking import format_peer

    # the socket timeout (serve's io_timeout) bounds reading the whole request head, not
    # each read: a client dripping a byte at a time cannot hold the thread for longer
    budget = tls_sock.gettimeout()
    deadline = None if budget is None else time.monotonic() + budget
    data = bytearray()
    early = False
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < 65536:
        chunk = tls_sock.recv(deadline=deadline)
        if not chunk:
            break
        early = early or bool(getattr(tls_sock, "last_read_early", False))
        data += chunk
    if not data:
        return
    tls_sock.send(response_for_request(bytes(data), tls_sock.negotiated, tls_sock.trace,
                                       peer=format_peer(tls_sock.peer), scenario=scenario,
                                       early=early))


async def async_http_handler(stream, scenario: str | None = None) -> None:
    """:func:`http_handler` for an :class:`~tlslab.io.aio.AsyncTLSStream` (what
    ``tlslab serve`` runs on its asyncio server): one request head read, the page answered.

    The server's idle deadline bounds the whole exchange (reads raise ``TimeoutError``),
    so a client dripping its request a byte at a time cannot hold the connection longer."""
    from ..io.blocking import format_peer

    data = bytearray()
    early = False
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < 65536:
        chunk = await stream.read(65536)
        if not chunk:
            break
        early = early or bool(getattr(stream, "last_read_early", False))
        data += chunk
    if not data:
        return
    stream.write(response_for_request(bytes(data), stream.negotiated, stream.trace,
                                      peer=format_peer(getattr(stream, "peer", None)),
                                      scenario=scenario, early=early))
    await stream.drain()
