"""The illustrated handshake as one self-contained HTML page (``connect/demo --html FILE``).

The page is built only from what the engine emitted: the trace entries (raw bytes and
field spans of every message, records, secrets by name, states, alerts, errors) and
what :mod:`tlslab.workbench.render` derives from them.  There is no second parser.

It works offline: no external resource, inline CSS and a few lines of inline script
(allowed by a Content-Security-Policy that names their hashes, so that nothing else
can run even if an escaping bug slipped through).  Every string that may come from the
peer (certificate names, SNI, ALPN, alert text) goes through :func:`html.escape`.
Secrets appear by name and length only; their values are never in the trace.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import os
from html import escape
from typing import Any, Iterable

from . import render

__all__ = ["render_html", "write_html"]

#: explanations for messages that ``render.EXPLANATIONS`` does not cover (TLS 1.2, 0-RTT)
_MORE_EXPLANATIONS: dict[str, str] = {
    "Certificate12": "The server's certificate chain (TLS 1.2 format). The client checks it "
                     "chains to a CA it trusts, is valid now, and names the host it wanted.",
    "ServerKeyExchange": "TLS 1.2: the server's ephemeral (EC)DH public value and group, signed "
                         "with the certificate's key so the client knows who sent it.",
    "CertificateRequest12": "The server asks the client for a certificate (mutual TLS).",
    "ServerHelloDone": "TLS 1.2: the server has finished its first flight and waits for the client.",
    "ClientKeyExchange": "TLS 1.2: the client's (EC)DH public value. Both sides now compute the "
                         "pre-master secret, then the master secret and the write keys.",
    "CertificateVerify12": "A signature by the client over the handshake so far: proves it "
                           "holds the private key of its certificate.",
    "NewSessionTicket12": "TLS 1.2: a ticket the client may present later to resume the session.",
    "CertificateStatus": "A stapled OCSP response: the CA's signed statement that the "
                         "certificate is not revoked.",
    "EndOfEarlyData": "The client has finished sending 0-RTT data (protected with the "
                      "client_early_traffic_secret).",
}

_TLS12 = ("TLS 1.2", "TLS 1.1", "TLS 1.0")

#: containers whose entries are coloured one by one in the byte view
_COLOURED_LISTS = ("extensions", "certificate_list")

_CSS = """
:root{--c2s:#1f6feb;--s2c:#a0307a;--bad:#c62828;--ok:#2e7d32;--dim:#667;--bg:#fafafa;
--card:#fff;--line:#dde}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:var(--bg);color:#1b1b1f}
main{max-width:1100px;margin:0 auto;padding:1.2em 1.2em 4em}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line)}
code,.mono,.hex,.tree{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
.result{display:inline-block;padding:.15em .6em;border-radius:4px;font-weight:600;color:#fff}
.result.ok{background:var(--ok)}.result.failed{background:var(--bad)}
.errline{color:var(--bad);font-weight:600;margin:.4em 0}
table.params{border-collapse:collapse;margin:.6em 0}
table.params th{text-align:left;padding:.15em 1.2em .15em 0;color:var(--dim);font-weight:500;
vertical-align:top}
table.params td{padding:.15em 0}
.badge{display:inline-block;font-size:.8em;padding:0 .45em;border-radius:3px;
border:1px solid var(--line);background:#f3f3f6;color:#334;margin-left:.3em;white-space:nowrap}
.badge.plain{background:#fff8e1;border-color:#f0d890}
.badge.enc{background:#e8f5e9;border-color:#a5d6a7}
.badge.alert{background:var(--bad);color:#fff;border-color:var(--bad)}
.lanes{display:flex;justify-content:space-between;font-weight:600;margin:.8em 0 .3em;
padding:0 .3em}
.lanes .c{color:var(--c2s)}.lanes .s{color:var(--s2c)}
.card{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--dim);
border-radius:6px;padding:.6em .8em;margin:.55em 0;width:88%}
.card.c2s{border-left-color:var(--c2s);margin-right:auto}
.card.s2c{border-left-color:var(--s2c);margin-left:auto}
.card.alert,.card.error{border-left-color:var(--bad);background:#fff5f5;width:100%}
.card.alert.benign{border-left-color:#e0a800;background:#fffbea}
.card .head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2em .6em}
.card .name{font-weight:700;font-size:1.08em}
.c2s .name,.c2s .dir{color:var(--c2s)}.s2c .name,.s2c .dir{color:var(--s2c)}
.alert .name,.error .name{color:var(--bad)}
.t{color:var(--dim);font-size:.85em;min-width:5.5em}
.details{margin:.25em 0;white-space:pre-wrap}
.explain{color:#445;font-style:italic;margin:.25em 0}
.note{color:var(--dim);font-size:.85em;margin:.15em 0 .15em .4em}
.note.record{font-family:ui-monospace,Menlo,Consolas,monospace}
.note.secret::before{content:"\\25C6  ";color:#b8860b}
body.hide-local .note{display:none}
details{margin-top:.4em}
summary{cursor:pointer;color:var(--dim)}
.bytes{display:flex;flex-wrap:wrap;gap:1em;margin-top:.4em}
.hex{font-size:12.5px;line-height:1.75;width:49ch;word-spacing:0;flex:none;
overflow-wrap:anywhere}
.hex .f{border-radius:2px}
.hex .f.d0{background:hsl(var(--h),70%,88%)}
.hex .f.d1{box-shadow:inset 0 -2px hsl(var(--h),55%,55%)}
.hex .f.d2{box-shadow:inset 0 -2px hsl(var(--h),55%,40%);background:hsla(var(--h),60%,75%,.35)}
.hex .f.d3,.hex .f.d4,.hex .f.d5{text-decoration:underline dotted}
.hex .gap{color:#99a}
.hex .f.len{color:#556;font-style:italic}
.h0{--h:210}.h1{--h:130}.h2{--h:35}.h3{--h:280}.h4{--h:0}.h5{--h:175}
.hex .f.hl,.tree .hl{outline:2px solid #111;background:#ffe082!important}
.tree{font-size:12.5px;flex:1;min-width:22em;margin:0;padding-left:0;list-style:none}
.tree ul{list-style:none;padding-left:1.2em;margin:0}
.tree li>span{cursor:default}
.tree .off{color:var(--dim)}.tree .v{color:#0b6e69}
.status{position:sticky;bottom:0;background:#263238;color:#fff;padding:.3em .6em;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;min-height:1.8em;
border-radius:4px;margin-top:.4em}
table.certs{border-collapse:collapse;margin:.4em 0;font-size:.92em}
table.certs th,table.certs td{border:1px solid var(--line);padding:.2em .5em;text-align:left;
vertical-align:top}
.legend li{margin:.1em 0}
.toolbar{margin:.6em 0}
.toolbar button,.toolbar label{font:inherit;font-size:.9em;margin-right:.8em}
footer{color:var(--dim);font-size:.85em;margin-top:3em}
"""

_JS = """
(function(){
  var bar=document.getElementById('status');
  function mark(id,on){
    var els=document.querySelectorAll('[data-f="'+id+'"]');
    for(var i=0;i<els.length;i++){els[i].classList.toggle('hl',on);}
  }
  var cur=null;
  function over(ev){
    var el=ev.target.closest?ev.target.closest('[data-f]'):null;
    var id=el?el.getAttribute('data-f'):null;
    if(id===cur){return;}
    if(cur){mark(cur,false);}
    cur=id;
    if(id){mark(id,true);bar.textContent=el.getAttribute('title')||'';}
  }
  document.addEventListener('mouseover',over);
  document.getElementById('expand').addEventListener('click',function(){
    var d=document.querySelectorAll('details.raw');
    var open=!d.length||!d[0].open;
    for(var i=0;i<d.length;i++){d[i].open=open;}
  });
  document.getElementById('local').addEventListener('change',function(ev){
    document.body.classList.toggle('hide-local',!ev.target.checked);
  });
})();
"""


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _e(v: Any) -> str:
    """Escape any value for text and attribute context."""
    return escape("" if v is None else str(v), quote=True)


# --------------------------------------------------------------------------- byte view

def _short_value(v: Any, limit: int = 100) -> str:
    """A container's value in one short line: lists joined, dicts as key=value."""
    v = render._jsonable(v)
    if isinstance(v, list):
        text = ", ".join(render._value_text(x, 40) for x in v)
    elif isinstance(v, dict):
        text = ", ".join(f"{k}={render._value_text(x, 40)}" for k, x in v.items())
    else:
        text = str(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _span_title(s, raw: bytes) -> str:
    chunk = raw[s.offset:s.offset + s.length]
    children = list(getattr(s, "children", None) or [])
    if children:
        value = _short_value(s.value) if s.value not in (None, "", {}, []) else ""
    else:
        value = render._leaf_value(s.value, chunk)
    text = s.name + (f" = {value}" if value else "")
    return f"{text}  [offset {s.offset}, {s.length} byte{'s' if s.length != 1 else ''}]"


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


class _ByteView:
    """The hex dump with one nested ``<span>`` per field, and the matching field tree."""

    def __init__(self, raw: bytes, prefix: str) -> None:
        self.raw = raw
        self.prefix = prefix
        self.count = 0

    def _id(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count}"

    def build(self, spans: list) -> tuple[str, str]:
        hex_parts: list[str] = []
        tree_parts: list[str] = []
        self._region(spans, 0, len(self.raw), 0, None, hex_parts, tree_parts)
        return "".join(hex_parts), "".join(tree_parts)

    def _gap(self, start: int, end: int, out: list[str]) -> None:
        if end > start:
            out.append(f'<span class="gap" title="{_e(f"bytes {start}..{end - 1} (no field)")}">'
                       f"{_hex(self.raw[start:end])} </span>")

    def _length_prefix(self, parent: str, start: int, end: int, hex_out, tree_out) -> None:
        """Bytes of a container before its first field: the vector's length (RFC 8446 §3.4)."""
        chunk = self.raw[start:end]
        fid = self._id()
        title = (f"length of {parent} = {int.from_bytes(chunk, 'big')}  "
                 f"[offset {start}, {len(chunk)} byte{'s' if len(chunk) != 1 else ''}]")
        hex_out.append(f'<span class="f len" data-f="{fid}" title="{_e(title)}">{_hex(chunk)} </span>')
        tree_out.append(f'<li><span data-f="{fid}" title="{_e(title)}"><span class="off">'
                        f"{start:04x} {len(chunk):>4}</span> length = "
                        f'<span class="v">{int.from_bytes(chunk, "big")}</span></span></li>')

    def _region(self, spans, start, end, depth, hue, hex_out, tree_out, parent=None) -> None:
        pos = start
        ordered = sorted(spans, key=lambda s: (s.offset, -s.length))
        if parent is not None and ordered and 0 < ordered[0].offset - start <= 4 \
                and ordered[0].offset <= end:
            self._length_prefix(parent, start, ordered[0].offset, hex_out, tree_out)
            pos = ordered[0].offset
        for k, s in enumerate(ordered):
            s_start = max(s.offset, start)
            s_end = min(s.offset + s.length, end)
            fid = self._id()
            title = _span_title(s, self.raw)
            # each top-level field, and each extension, gets its own colour
            own = depth == 0 or parent in _COLOURED_LISTS
            h = (k if depth == 0 else k + 1 + (hue or 0)) % 6 if own else hue
            children = list(getattr(s, "children", None) or [])
            tree_out.append(f'<li><span data-f="{fid}" title="{_e(title)}">'
                            f'<span class="off">{s.offset:04x} {s.length:>4}</span> '
                            f"{_e(s.name)}")
            if not children:
                value = render._leaf_value(s.value, self.raw[s.offset:s.offset + s.length])
                if value:
                    tree_out.append(f' = <span class="v">{_e(value)}</span>')
            tree_out.append("</span>")
            if s_start < pos or s_end < s_start:
                # overlapping or out of range: keep it in the tree, not in the dump
                if children:
                    tree_out.append("<ul>")
                    self._region(children, s_start, max(s_start, s_end), depth + 1, h, [],
                                 tree_out, s.name)
                    tree_out.append("</ul>")
                tree_out.append("</li>")
                continue
            self._gap(pos, s_start, hex_out)
            level = 0 if own else min(depth, 5)
            hex_out.append(f'<span class="f d{level} h{h}" data-f="{fid}" '
                           f'title="{_e(title)}">')
            if children:
                tree_out.append("<ul>")
                self._region(children, s_start, s_end, depth + 1, h, hex_out, tree_out, s.name)
                tree_out.append("</ul>")
            elif s_end > s_start:
                hex_out.append(_hex(self.raw[s_start:s_end]) + " ")
            hex_out.append("</span>")
            tree_out.append("</li>")
            pos = s_end
        self._gap(pos, end, hex_out)


def _bytes_block(entry, prefix: str) -> str:
    raw = bytes(entry.raw or b"")
    try:
        spans = list(entry.field_spans() or [])
        problem = ""
    except Exception as exc:  # a broken message must not break the page
        spans, problem = [], f"no field spans: {type(exc).__name__}: {exc}"
    if spans:
        hex_html, tree_html = _ByteView(raw, prefix).build(spans)
    else:
        hex_html, tree_html = _e(_hex(raw)), ""
    out = [f'<details class="raw"><summary>bytes ({len(raw)}) and fields</summary>']
    if problem:
        out.append(f'<div class="note">{_e(problem)}</div>')
    out.append('<div class="bytes">')
    out.append(f'<div class="hex">{hex_html}</div>')
    if tree_html:
        out.append(f'<ul class="tree">{tree_html}</ul>')
    out.append("</div></details>")
    return "".join(out)


# --------------------------------------------------------------------------- pieces

def _cert_table(certs: Iterable[dict]) -> str:
    rows = []
    for i, c in enumerate(certs):
        if "error" in c:
            rows.append(f"<tr><td>{i}</td><td colspan=6>{_e(c['error'])}</td></tr>")
            continue
        validity = f"{c.get('not_before', '?')} → {c.get('not_after', '?')}"
        rows.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in (
            i, c.get("subject"), c.get("issuer"), ", ".join(c.get("san") or []) or "(none)",
            validity, c.get("key"),
            (c.get("signature_algorithm") or "") + (", CA" if c.get("is_ca") else ""))) + "</tr>")
    if not rows:
        return '<div class="note">no certificates</div>'
    head = "".join(f"<th>{h}</th>" for h in ("#", "subject", "issuer", "SAN", "valid",
                                             "key", "signature"))
    return f'<table class="certs"><tr>{head}</tr>{"".join(rows)}</table>'


def _direction_text(arrow: str) -> tuple[str, str]:
    if arrow.strip() == "C → S":
        return "c2s", "client → server"
    if arrow.strip() == "C ← S":
        return "s2c", "server → client"
    return "local", "local"


def _protection(name: str, direction: str, side: str, protected, tls12: bool,
                key_updates: bool) -> tuple[str, str]:
    """(css class, text): which key protected the record that carried this message."""
    key = render._key_for(name, direction, side, protected, tls12)
    if not key:
        return "", "protection unknown"
    if key == "plaintext":
        return "plain", "plaintext"
    if key == "not sent":
        return "", "queued, never sent"
    who = key.split()[0]
    if tls12:
        return "enc", f"encrypted: {key}"
    if name == "EndOfEarlyData":
        return "enc", "encrypted: client_early_traffic_secret"
    if "application" in key:
        return "enc", f"encrypted: {who}_application_traffic_secret_{'N' if key_updates else '0'}"
    return "enc", f"encrypted: {who}_handshake_traffic_secret"


def _param_rows(doc: dict, trace, negotiated: dict, side: str, extra: dict) -> list[tuple[str, str]]:
    n = negotiated
    rows: list[tuple[str, str]] = []
    for label, key in (("version", "version"), ("cipher suite", "cipher_suite"),
                       ("key exchange", "group"), ("signature", "signature_scheme"),
                       ("ALPN", "alpn_protocol"), ("SNI", "server_name")):
        if n.get(key) or key in ("version", "cipher_suite"):
            rows.append((label, str(n.get(key) or "—")))
    rows.append(("HelloRetryRequest", "yes" if n.get("hello_retry") else "no"))
    try:
        rows += render.connection_rows(n, trace, side)
    except Exception:  # the extra rows are a bonus; the basic ones above are enough
        rows.append(("details", "(could not summarise the connection)"))
    offer = doc.get("client_offer") or {}
    if offer.get("sni") and not n.get("server_name"):
        rows.append(("SNI sent", offer["sni"]))
    if not n.get("version") and offer.get("versions"):
        rows.append(("versions offered", ", ".join(offer["versions"])))
    if not n.get("cipher_suite") and offer.get("cipher_suites"):
        rows.append(("suites offered", render._short_list(offer["cipher_suites"], 6)))
    if not n.get("group") and offer.get("key_shares"):
        rows.append(("key shares sent", ", ".join(offer["key_shares"])))
    for k, v in (extra or {}).items():
        rows.append((str(k), str(v)))
    return rows


def _header(doc: dict, trace, negotiated: dict, side: str, error_line: str | None,
            extra: dict) -> str:
    out = []
    ok = bool(doc.get("ok"))
    out.append(f'<p><span class="result {"ok" if ok else "failed"}">'
               f'{"handshake complete" if ok else "handshake failed"}</span>'
               f'<span class="badge">{_e(side)} side</span></p>')
    err = doc.get("error") or {}
    if not ok:
        line = error_line or err.get("reason") or "the handshake did not complete"
        out.append(f'<p class="errline">{_e(line)}</p>')
        alerts = []
        if err.get("alert_sent"):
            alerts.append(f'alert sent: <span class="badge alert">{_e(err["alert_sent"])}</span>')
        if err.get("alert_received"):
            alerts.append(f'alert received: <span class="badge alert">{_e(err["alert_received"])}</span>')
        if err.get("code"):
            alerts.append(f'diagnosis code: <code>{_e(err["code"])}</code>')
        if alerts:
            out.append("<p>" + " &nbsp; ".join(alerts) + "</p>")
    rows = _param_rows(doc, trace, negotiated, side, extra)
    out.append('<table class="params">' + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>")
    if doc.get("peer_certificates"):
        title = ("Peer certificate chain" if side == "server" else "Server certificate chain")
        out.append(f"<h3>{title} (as received{'' if ok else '; see the error above'})</h3>")
        out.append(_cert_table(doc["peer_certificates"]))
    return "".join(out)


def _timeline(trace, negotiated: dict, prefix: str) -> str:
    entries = list(getattr(trace, "entries", None) or [])
    if not entries:
        return '<p class="note">No handshake message was exchanged.</p>'
    side = render.perspective(trace)
    t0 = render._t0(trace)
    prot = render._protection_map(entries)
    tls12 = negotiated.get("version") in _TLS12 or any(
        e.kind == "message" and e.name in ("ServerHelloDone", "ClientKeyExchange") for e in entries)
    key_updates = any(e.kind == "secret" and "updated" in e.name for e in entries)
    out = ['<div class="lanes"><span class="c">client</span><span class="s">server</span></div>']
    for i, e in enumerate(entries):
        ms = f"{render._ms(e, t0):.1f} ms"
        arrow = render._arrow(e.direction, side)
        cls, dir_text = _direction_text(arrow)
        try:
            if e.kind == "message":
                out.append(_message_card(e, i, ms, cls, dir_text, side, prot.get(i), tls12,
                                         key_updates, f"{prefix}m{i}"))
            elif e.kind == "alert":
                s = e.summary or {}
                benign = e.name in ("close_notify", "user_canceled")
                protected = s.get("protected")
                if protected is None and e.direction == "sent":
                    protected = render._last_sent_protected(entries, i)
                level = render._level_name(s.get("level"))
                out.append(
                    f'<section class="card alert{" benign" if benign else ""}"><div class="head">'
                    f'<span class="t">{ms}</span><span class="dir">{_e(dir_text)}</span>'
                    f'<span class="name">Alert: {_e(e.name)}</span>'
                    f'<span class="badge{"" if benign else " alert"}">{_e(level)}</span>'
                    f'<span class="badge">{"encrypted" if protected else "plaintext"}</span>'
                    f'<span class="badge">{"we sent it" if e.direction == "sent" else "the peer sent it"}</span>'
                    f'</div><div class="explain">{_e(_alert_text(e.name, benign))}</div>'
                    + (f'<div class="mono">{_e(_hex(bytes(e.raw)))}</div>' if e.raw else "")
                    + "</section>")
            elif e.kind == "error":
                alert = (e.summary or {}).get("alert")
                out.append(f'<section class="card error"><div class="head"><span class="t">{ms}</span>'
                           f'<span class="name">error: {_e(e.name)}</span>'
                           + (f'<span class="badge alert">alert {_e(render._jsonable(alert))}</span>'
                              if alert else "")
                           + f'</div><div class="details">{_e(e.detail)}</div></section>')
            elif e.kind == "record":
                out.append(_record_note(e, ms, dir_text, tls12))
            elif e.kind == "secret":
                length = (e.summary or {}).get("length")
                out.append(f'<div class="note secret"><span class="t">{ms}</span> derived '
                           f"<code>{_e(e.name)}</code>"
                           + (f" ({_e(length)} bytes, value not shown)" if length else "")
                           + "</div>")
            elif e.kind == "state":
                out.append(f'<div class="note"><span class="t">{ms}</span> state '
                           f"{_e((e.summary or {}).get('from', '?'))} → {_e(e.name)}</div>")
            else:
                out.append(f'<div class="note"><span class="t">{ms}</span> {_e(e.name)}'
                           f"{': ' + _e(render._info_line(e)) if render._info_line(e) else ''}</div>")
        except Exception as exc:  # one odd entry must not lose the rest of the page
            out.append(f'<div class="note">(could not show {_e(e.kind)} {_e(e.name)}: '
                       f"{_e(type(exc).__name__)}: {_e(exc)})</div>")
    return "".join(out)


def _alert_text(name: str, benign: bool) -> str:
    if name == "close_notify":
        return "An orderly close: the sender will send nothing more on this connection."
    if benign:
        return "A warning-level alert; the connection is being closed."
    return ("A fatal alert: the sender gives up on the handshake and closes the connection. "
            "The alert names the reason, as seen by the side that sent it.")


def _record_note(e, ms: str, dir_text: str, tls12: bool) -> str:
    s = e.summary or {}
    if e.name == "change_cipher_spec":
        what = ("ChangeCipherSpec: switch to the negotiated keys (RFC 5246 §7.1)" if tls12
                else "ChangeCipherSpec: middlebox compatibility record (RFC 8446 §D.4), ignored")
        return f'<div class="note record"><span class="t">{ms}</span> {_e(dir_text)}: {_e(what)}</div>'
    parts = [f"record {e.name}"]
    if "length" in s:
        parts.append(f"{s['length']} bytes")
    parts.append("encrypted" if s.get("protected") else "plaintext")
    if e.raw:
        parts.append(f"header {_hex(bytes(e.raw[:5]))}")
    return (f'<div class="note record"><span class="t">{ms}</span> {_e(dir_text)}: '
            f"{_e(', '.join(parts))}</div>")


def _message_card(e, i: int, ms: str, cls: str, dir_text: str, side: str, protected,
                  tls12: bool, key_updates: bool, prefix: str) -> str:
    details = render.message_details(e)
    pcls, ptext = _protection(e.name, e.direction, side, protected, tls12, key_updates)
    out = [(f'<section class="card {cls}" id="{prefix}"><div class="head">'
            f'<span class="t">{ms}</span><span class="dir">{_e(dir_text)}</span>'
            f'<span class="name">{_e(e.name)}</span>'
            f'<span class="badge {pcls}">{_e(ptext)}</span>'
            f'<span class="badge">{len(e.raw or b"")} bytes</span></div>')]
    explanation = render.EXPLANATIONS.get(e.name) or _MORE_EXPLANATIONS.get(e.name)
    if explanation:
        out.append(f'<div class="explain">{_e(explanation)}</div>')
    if e.name in ("Certificate", "Certificate12") and "certificates" in details:
        out.append(_cert_table(details["certificates"]))
    else:
        line = render._details_line(e.name, details)
        if line:
            out.append(f'<div class="details">{_e(line)}</div>')
    out.append(_bytes_block(e, prefix))
    out.append("</section>")
    return "".join(out)


def _secrets_list(doc: dict) -> str:
    secrets = doc.get("secrets") or []
    if not secrets:
        return ""
    items = "".join(f"<li><code>{_e(s.get('name'))}</code>"
                    + (f" ({_e(s.get('length'))} bytes)" if s.get("length") else "") + "</li>"
                    for s in secrets)
    return ("<h2>Secrets derived</h2><p>Names only (RFC 8446 §7.1 key schedule): their values "
            "are never recorded in the trace, so never shown here. Use <code>--keylog FILE</code> "
            f"to decrypt a capture in Wireshark.</p><ul>{items}</ul>")


def _legend(tls12: bool) -> str:
    if tls12:
        items = [("ClientHello … ServerHelloDone, ClientKeyExchange", "plaintext"),
                 ("after each side's ChangeCipherSpec (Finished, application data)",
                  "that side's write key, from the master secret")]
    else:
        items = [("ClientHello, ServerHello", "plaintext (no keys yet; key shares are public values)"),
                 ("EncryptedExtensions … server Finished", "server_handshake_traffic_secret"),
                 ("client Certificate … client Finished", "client_handshake_traffic_secret"),
                 ("application data, NewSessionTicket",
                  "client_/server_application_traffic_secret_0")]
    lis = "".join(f"<li><b>{_e(a)}</b> → {_e(b)}</li>" for a, b in items)
    return f'<h2>Which keys protect which messages</h2><ul class="legend">{lis}</ul>'


def _section(index: int, trace, negotiated: dict | None, *, error: Any = None,
             error_line: str | None = None, peer_certificates: Iterable | None = None,
             target: str | None = None, title: str | None = None, extra: dict | None = None) -> str:
    n = dict(negotiated or {})
    doc = render.to_json(trace, n, error=error, peer_certificates=peer_certificates,
                         include_fields=False)
    side = doc.get("side", "client")
    heading = title or (f"TLS handshake with {target}" if target else "TLS handshake")
    tls12 = n.get("version") in _TLS12
    out = [f"<h1>{_e(heading)}</h1>" if index == 0 else f"<h2>{_e(heading)}</h2>",
           _header(doc, trace, n, side, error_line, extra or {}),
           "<h2>The handshake, message by message</h2>",
           ('<p class="note">Each card is one handshake message; the bytes are the message '
            "as it is hashed into the transcript (handshake header included, record layer "
            "excluded). Hover a byte or a field to see its name and value.</p>"),
           _timeline(trace, n, f"c{index}"),
           _secrets_list(doc) if index == 0 else "",
           _legend(tls12) if index == 0 else ""]
    return f'<article id="conn{index}">{"".join(out)}</article>'


def render_html(trace, negotiated: dict | None = None, *, error: Any = None,
                error_line: str | None = None, peer_certificates: Iterable | None = None,
                target: str | None = None, title: str | None = None, extra: dict | None = None,
                more: list[dict] | None = None) -> str:
    """The whole page for one connection (``more``: further connections, each a dict of the
    same keyword arguments plus ``trace`` and ``negotiated``, e.g. ``--reconnect``)."""
    from .. import __version__
    sections = [_section(0, trace, negotiated, error=error, error_line=error_line,
                         peer_certificates=peer_certificates, target=target, title=title,
                         extra=extra)]
    for j, kw in enumerate(more or [], start=1):
        kw = dict(kw)
        sections.append(_section(j, kw.pop("trace", None), kw.pop("negotiated", None), **kw))
    page_title = title or (f"tlslab: TLS handshake with {target}" if target else "tlslab handshake")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    csp = (f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="tlslab {_e(__version__)}">'
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body><main>"
        '<div class="toolbar"><button type="button" id="expand">expand / collapse all bytes</button>'
        '<label><input type="checkbox" id="local" checked> show records, secrets and states</label>'
        "</div>"
        + "".join(sections)
        + '<div class="status" id="status">hover a byte or a field</div>'
        f"<footer>Generated by tlslab {_e(__version__)} at {_e(now)} from the engine's trace. "
        "Self-contained: no network access needed to view it.</footer>"
        f"</main><script>{_JS}</script></body></html>\n")


def write_html(path: str | os.PathLike, trace, negotiated: dict | None = None, **kwargs: Any) -> str:
    """Render the page and write it to ``path`` (UTF-8); returns the path written."""
    text = render_html(trace, negotiated, **kwargs)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)
