"""The plaintext dialogue before TLS: STARTTLS and its kin.

:func:`negotiate` runs the client's side of a protocol's upgrade over asyncio streams and
returns when the next bytes on the stream are TLS, so that the caller can send its
ClientHello:

========  ==========================================================  ===================
smtp      RFC 3207 §4 (EHLO, STARTTLS, 220)                           :mod:`.starttls_text`
imap      RFC 9051 §6.2.1 / RFC 3501 §6.2.1 (a2 STARTTLS, a2 OK)       :mod:`.starttls_text`
pop3      RFC 2595 §4 (STLS, +OK)                                     :mod:`.starttls_text`
ftp       RFC 4217 §4 (AUTH TLS, 234)                                 :mod:`.starttls_text`
xmpp      RFC 6120 §5.4 (<starttls/>, <proceed/>)                     :mod:`.starttls_xmpp`
ldap      RFC 4511 §4.14 (ExtendedRequest 1.3.6.1.4.1.1466.20037)     :mod:`.starttls_binary`
postgres  PostgreSQL protocol, SSLRequest (answer 'S')                :mod:`.starttls_binary`
rdp       [MS-RDPBCGR] 2.2.1.1-2.2.1.2 (X.224 with RDP_NEG_REQ)       :mod:`.starttls_binary`
========  ==========================================================  ===================

Everything the server sends is bounded in time (the caller's deadline) and size (see
:mod:`.starttls_io`), and failures are :class:`StartTLSError` with a one-line message
saying what the server answered.
"""
from __future__ import annotations

import asyncio
import time

from . import starttls_binary, starttls_text, starttls_xmpp
from .starttls_io import Dialogue, StartTLSError, StartTLSInfo, seconds, show
from .target import STARTTLS_PROTOCOLS

__all__ = ["negotiate", "open_starttls", "StartTLSError", "StartTLSInfo", "PROTOCOLS"]

PROTOCOLS = {
    "smtp": starttls_text.smtp,
    "imap": starttls_text.imap,
    "pop3": starttls_text.pop3,
    "ftp": starttls_text.ftp,
    "xmpp": starttls_xmpp.xmpp,
    "ldap": starttls_binary.ldap,
    "postgres": starttls_binary.postgres,
    "rdp": starttls_binary.rdp,
}
assert set(PROTOCOLS) == set(STARTTLS_PROTOCOLS)
#: the names used in messages
DISPLAY = {"smtp": "SMTP", "imap": "IMAP", "pop3": "POP3", "ftp": "FTP", "xmpp": "XMPP",
           "ldap": "LDAP", "postgres": "PostgreSQL", "rdp": "RDP"}
#: the outer bound waits a little past the deadline so that the inner, more precise
#: message ("no greeting within 5 s") wins the race
_GRACE = 0.25


async def negotiate(protocol: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    *, server_name: str | None, deadline: float) -> StartTLSInfo:
    """Upgrade a fresh connection with ``protocol``'s dialogue.

    ``deadline`` is a :func:`time.monotonic` value bounding every read and write;
    ``server_name`` is used where the protocol names the server (XMPP's stream 'to').
    Returns what the dialogue showed; raises :class:`StartTLSError` otherwise.  On success
    nothing the server sent is left unread, so the stream is at the start of TLS.
    """
    protocol = protocol.lower()
    run = PROTOCOLS.get(protocol)
    if run is None:
        raise StartTLSError(f"unknown STARTTLS protocol '{protocol}' (one of "
                            f"{', '.join(STARTTLS_PROTOCOLS)})")
    name = DISPLAY[protocol]
    d = Dialogue(name, reader, writer, deadline)
    try:
        # a second bound around the whole dialogue: every read is already bounded, this
        # catches anything that is not (a stuck drain, a pathological scan)
        return await asyncio.wait_for(run(d, server_name),
                                      max(deadline - time.monotonic(), 0) + _GRACE)
    except asyncio.TimeoutError:
        raise StartTLSError(f"the {name} dialogue did not finish within "
                            f"{seconds(deadline - d.start)} s") from None
    except (ConnectionError, OSError) as e:
        raise StartTLSError(f"the connection failed during the {name} dialogue: "
                            f"{e.strerror or type(e).__name__}") from None
    except StartTLSError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug of ours must not look like a crash
        raise StartTLSError(f"internal error in tlslab during the {name} dialogue: "
                            f"{type(e).__name__}: {show(str(e), 120)}") from e


async def open_starttls(host: str, port: int, protocol: str, *, server_name: str | None,
                        deadline: float
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, StartTLSInfo]:
    """Connect and :func:`negotiate`: the streams are then at the start of TLS.

    Failing to connect raises what :func:`asyncio.open_connection` raises (OSError,
    ConnectionRefusedError) or :class:`asyncio.TimeoutError` at the deadline, so that a
    caller tells "no server" from "a server that would not upgrade"
    (:class:`StartTLSError`, after which the connection is closed).
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                            max(deadline - time.monotonic(), 0.001))
    try:
        info = await negotiate(protocol, reader, writer, server_name=server_name,
                               deadline=deadline)
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer, info
