"""The line-oriented upgrades: SMTP, IMAP, POP3 and FTP (see :mod:`.starttls`).

Each function runs the client's side of one dialogue on a :class:`Dialogue` and returns
once the server has agreed to TLS; it raises :class:`StartTLSError` with what the server
said otherwise.
"""
from __future__ import annotations

from .starttls_io import Dialogue, StartTLSError, StartTLSInfo, show

#: the EHLO argument: RFC 5321 §4.1.1.1 wants our domain, which a scanner has none of; the
#: .invalid TLD (RFC 2606 §2) is a syntactically valid name that can never be anyone's
EHLO_NAME = b"tlslab.invalid"


def listing(items: list[str], limit: int = 200) -> str:
    return show(", ".join(items), limit) if items else "nothing"


# ------------------------------------------------------------------ numeric replies

async def _reply(d: Dialogue, what: str, *, ftp: bool = False) -> tuple[int, list[bytes]]:
    """A reply: a three-digit code and its text lines.

    SMTP (RFC 5321 §4.2.1): every line starts with the code, ``-`` after it on all but the
    last.  FTP (RFC 959 §4.2): the first line is ``CODE-``, the lines in between are free
    text, and the reply ends at a line starting with the same code and a space.
    """
    first = await d.line(what)
    code = first[:3]
    if len(first) < 3 or not code.isdigit() or first[3:4] not in (b"", b" ", b"-"):
        raise StartTLSError(f"not an {d.protocol} reply while waiting for {what}: "
                            f"'{show(first, 80)}'")
    texts = [first[4:]]
    while first[3:4] == b"-":
        line = await d.line(what)
        if ftp:
            if line[:3] == code and line[3:4] in (b" ", b""):
                texts.append(line[4:])
                break
            texts.append(line)
            continue
        if line[:3] != code:
            raise StartTLSError(f"a broken multi-line {d.protocol} reply while waiting for "
                                f"{what}: '{show(line, 80)}'")
        texts.append(line[4:])
        if line[3:4] != b"-":
            break
    return int(code), texts


def _said(code: int, texts: list[bytes]) -> str:
    return show(f"{code} " + texts[0].decode("utf-8", "replace"), 120)


async def smtp(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """RFC 3207 §4 (with RFC 5321): greeting 220, ``EHLO``, STARTTLS among the EHLO
    keywords, ``STARTTLS``, 220 "ready to start TLS"."""
    code, texts = await _reply(d, "the greeting")
    if code != 220:
        raise StartTLSError(f"the SMTP server refused the session: {_said(code, texts)}")
    banner = _said(code, texts)
    await d.send(b"EHLO " + EHLO_NAME + b"\r\n", "EHLO")
    code, texts = await _reply(d, "the answer to EHLO")
    if code != 250:
        raise StartTLSError(f"the SMTP server refused EHLO: {_said(code, texts)}")
    keywords = [show(t, 80) for t in texts[1:]]  # the first line is the server's name
    if not any(k.split(" ")[0].upper() == "STARTTLS" for k in keywords if k):
        raise StartTLSError(f"the SMTP server does not offer STARTTLS (EHLO lists: "
                            f"{listing(keywords)})")
    await d.send(b"STARTTLS\r\n", "STARTTLS")
    code, texts = await _reply(d, "the answer to STARTTLS")
    if code != 220:
        raise StartTLSError(f"the server refused STARTTLS: {_said(code, texts)}")
    return d.ready(StartTLSInfo("smtp", banner, keywords))


async def ftp(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """RFC 4217 §4 and §6 (AUTH from RFC 2228 §3): greeting 220 (after a 120 "ready in
    n minutes", RFC 959 §5.4), ``FEAT`` (RFC 2389 §3; only to report the features),
    ``AUTH TLS``, 234."""
    code, texts = await _reply(d, "the greeting", ftp=True)
    if code == 120:
        code, texts = await _reply(d, "the greeting after 120", ftp=True)
    if code != 220:
        raise StartTLSError(f"the FTP server refused the session: {_said(code, texts)}")
    banner = _said(code, texts)
    await d.send(b"FEAT\r\n", "FEAT")
    code, texts = await _reply(d, "the answer to FEAT", ftp=True)
    # RFC 2389 §3.2: the features are the lines between the first and the last
    features = [show(t, 80) for t in texts[1:-1] if t.strip()] if code == 211 else []
    await d.send(b"AUTH TLS\r\n", "AUTH TLS")
    code, texts = await _reply(d, "the answer to AUTH TLS", ftp=True)
    if code != 234:
        if code == 211 or features:
            offered = any(f.upper().startswith("AUTH") and "TLS" in f.upper() for f in features)
            if not offered:
                raise StartTLSError(f"the FTP server does not offer AUTH TLS (FEAT lists: "
                                    f"{listing(features)}; AUTH TLS got {_said(code, texts)})")
        raise StartTLSError(f"the server refused AUTH TLS: {_said(code, texts)}")
    return d.ready(StartTLSInfo("ftp", banner, features))


# ------------------------------------------------------------------ IMAP and POP3

async def _tagged(d: Dialogue, tag: bytes, what: str, caps: list[str]) -> tuple[str, str]:
    """Lines up to the tagged completion (RFC 9051 §7.1); untagged CAPABILITY data
    (§7.2.2) goes into ``caps``.  Returns (OK/NO/BAD, the whole line for display)."""
    while True:
        line = await d.line(what)
        if line.upper().startswith(b"* CAPABILITY "):
            caps[:] = [show(c, 40) for c in line[13:].split()][:64]
        elif line.upper().startswith(b"* BYE"):
            # §7.1.5: the server is closing the connection
            raise StartTLSError(f"the IMAP server ended the session while waiting for "
                                f"{what}: '{show(line, 120)}'")
        elif line.startswith(tag + b" "):
            status = line[len(tag) + 1:].split(b" ", 1)[0].upper()
            return status.decode("ascii", "replace"), show(line[len(tag) + 1:], 120)


async def imap(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """RFC 9051 §6.2.1 (RFC 3501 §6.2.1): greeting ``* OK``, ``a1 CAPABILITY``, STARTTLS
    among the capabilities, ``a2 STARTTLS``, ``a2 OK``."""
    greeting = await d.line("the greeting")
    banner = show(greeting, 120)
    word = greeting[2:].split(b" ", 1)[0].upper() if greeting.startswith(b"* ") else b""
    if word == b"PREAUTH":
        # §3: STARTTLS is valid only in the not-authenticated state
        raise StartTLSError(f"the IMAP server pre-authenticated the session, so STARTTLS is "
                            f"not possible: '{banner}'")
    if word != b"OK":
        raise StartTLSError(f"the IMAP server refused the session: '{banner}'")
    caps: list[str] = []
    await d.send(b"a1 CAPABILITY\r\n", "CAPABILITY")
    status, said = await _tagged(d, b"a1", "the answer to CAPABILITY", caps)
    if status == "OK" and not any(c.upper() == "STARTTLS" for c in caps):
        raise StartTLSError(f"the IMAP server does not offer STARTTLS (CAPABILITY lists: "
                            f"{listing(caps)})")
    await d.send(b"a2 STARTTLS\r\n", "STARTTLS")
    status, said = await _tagged(d, b"a2", "the answer to STARTTLS", [])
    if status != "OK":
        raise StartTLSError(f"the server refused STARTTLS: {said}")
    return d.ready(StartTLSInfo("imap", banner, caps))


async def pop3(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """RFC 2595 §4 (with RFC 1939 and RFC 2449 §5): greeting ``+OK``, ``CAPA`` (STLS among
    the capabilities when CAPA works), ``STLS``, ``+OK``."""
    greeting = await d.line("the greeting")
    banner = show(greeting, 120)
    if not greeting.startswith(b"+OK"):
        raise StartTLSError(f"the POP3 server refused the session: '{banner}'")
    await d.send(b"CAPA\r\n", "CAPA")
    answer = await d.line("the answer to CAPA")
    caps: list[str] = []
    if answer.startswith(b"+OK"):
        # RFC 1939 §3: a multi-line answer ends with a lone "."; a leading "." is doubled
        while (line := await d.line("the end of the CAPA list")) != b".":
            caps.append(show(line[1:] if line.startswith(b".") else line, 80))
        if not any(c.split(" ")[0].upper() == "STLS" for c in caps if c):
            raise StartTLSError(f"the POP3 server does not offer STLS (CAPA lists: "
                                f"{listing(caps)})")
    await d.send(b"STLS\r\n", "STLS")
    answer = await d.line("the answer to STLS")
    if not answer.startswith(b"+OK"):
        raise StartTLSError(f"the server refused STLS: {show(answer, 120)}")
    return d.ready(StartTLSInfo("pop3", banner, caps[:64]))
