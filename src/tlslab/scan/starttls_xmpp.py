"""XMPP's upgrade, RFC 6120 §5.4 (see :mod:`.starttls`).

The client opens a stream (§4.2), the server answers with its own stream header and
``<stream:features/>`` (§4.3.2), which must contain ``<starttls/>`` in the
``urn:ietf:params:xml:ns:xmpp-tls`` namespace; the client sends ``<starttls/>`` and the
server answers ``<proceed/>`` (go) or ``<failure/>`` (§5.4.2).  We do not run an XML
parser on untrusted input: the few tags we need are found with bounded regular
expressions, and a DTD (forbidden by §11.1) ends the dialogue.
"""
from __future__ import annotations

import re
from xml.sax.saxutils import escape

from .starttls_io import Dialogue, StartTLSError, StartTLSInfo, show

TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
# Every pattern stops at the next '<' (XML attribute values cannot hold one), so a hostile
# stream of unclosed tags costs linear time, not quadratic.
_TAG = re.compile(rb"<(/?)([A-Za-z_][\w.:-]*)((?:[^<>'\"/]|'[^<']*'|\"[^<\"]*\")*)(/?)>")
_HEADER = re.compile(rb"<(?:[\w.-]+:)?stream\b[^<>]*>")
_FEATURES_START = re.compile(rb"<(?:[\w.-]+:)?features\b")
_FEATURES_END = re.compile(rb"</(?:[\w.-]+:)?features\s*>|<(?:[\w.-]+:)?features\b[^<>]*/>")
_ERROR_START = re.compile(rb"<(?:[\w.-]+:)?error\b[^<>]*>")
_ERROR_END = re.compile(rb"</(?:[\w.-]+:)?error\s*>")
_ANSWER = re.compile(rb"<(?:[\w.-]+:)?(proceed|failure)\b[^<>]*?(/?)>")
_PROCEED_END = re.compile(rb"</(?:[\w.-]+:)?proceed\s*>")


def _local(name: bytes) -> str:
    return name.rsplit(b":", 1)[-1].decode("ascii", "replace")


def stream_header(server_name: str | None) -> bytes:
    """§4.7.2: 'to' SHOULD name the service; without a name (an IP literal) it is left out."""
    to = f" to='{escape(server_name, {chr(39): '&apos;'})}'" if server_name else ""
    return (f"<?xml version='1.0'?><stream:stream{to} xmlns='jabber:client' "
            f"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>").encode()


def _stream_error(d: Dialogue, data: bytes) -> None:
    """§4.9: a stream error names its condition as the first child element."""
    if b"<!" in data.replace(b"<![CDATA[", b""):
        raise StartTLSError("the XMPP server sent a DTD or declaration, which RFC 6120 "
                            "§11.1 forbids")
    start = _ERROR_START.search(data)
    end = start and _ERROR_END.search(data, start.end())
    if end:
        inner = data[start.end():end.start()]
        cond = next((_local(t.group(2)) for t in _TAG.finditer(inner) if not t.group(1)),
                    "no condition given")
        raise StartTLSError(f"the XMPP server ended the stream with an error: {show(cond, 60)}")


async def _wait_for(d: Dialogue, pattern: re.Pattern, what: str) -> re.Match:
    while True:
        data = bytes(d.buffer)
        _stream_error(d, data)
        if data.lstrip()[:1] not in (b"", b"<"):
            raise StartTLSError(f"not an XMPP stream while waiting for {what}: "
                                f"'{show(data, 80)}'")
        m = pattern.search(data)
        if m:
            return m
        await d.fill(what)


def features_of(block: bytes) -> list[str]:
    """The children of <features/> by local name, e.g. ``starttls (required)``, plus the
    SASL mechanisms (RFC 6120 §6.4.1) as ``SASL PLAIN``."""
    out: list[str] = []
    depth = 0
    parent = ""
    for t in _TAG.finditer(block):
        closing, name, selfclosing = t.group(1), _local(t.group(2)), t.group(4)
        if closing:
            depth -= 1
            continue
        if depth == 1:
            out.append(show(name, 40))
            parent = name
        elif depth == 2 and parent == "starttls" and name == "required":
            out[-1] = "starttls (required)"
        elif depth == 2 and parent == "mechanisms" and name == "mechanism":
            text = block[t.end():block.find(b"<", t.end())]
            out.append("SASL " + show(text, 40))
        if not selfclosing:
            depth += 1
    return out[:64]


async def xmpp(d: Dialogue, server_name: str | None) -> StartTLSInfo:
    """RFC 6120 §5.4.2: stream header, features with <starttls/>, <starttls/>, <proceed/>."""
    await d.send(stream_header(server_name), "the stream header")
    header = await _wait_for(d, _HEADER, "a stream header")
    banner = show(header.group(0), 160)
    end = await _wait_for(d, _FEATURES_END, "the stream features")
    start = _FEATURES_START.search(d.buffer, header.end(), end.end())
    block = bytes(d.buffer[start.start() if start else end.start():end.end()])
    del d.buffer[:end.end()]
    feats = features_of(block)
    offered = re.search(rb"<(?:[\w.-]+:)?starttls\b[^<>]*" + re.escape(TLS_NS.encode()), block)
    if not offered:
        raise StartTLSError(f"the XMPP server does not offer STARTTLS (features: "
                            f"{show(', '.join(feats), 200) or 'none'})")
    await d.send(f"<starttls xmlns='{TLS_NS}'/>".encode(), "<starttls/>")
    answer = await _wait_for(d, _ANSWER, "the answer to <starttls/>")
    kind = answer.group(1)
    if kind == b"proceed" and not answer.group(2):
        answer = await _wait_for(d, _PROCEED_END, "the end of <proceed>")
    del d.buffer[:answer.end()]
    if kind != b"proceed":
        raise StartTLSError("the server refused STARTTLS: <failure/>")
    return d.ready(StartTLSInfo("xmpp", banner, feats))
