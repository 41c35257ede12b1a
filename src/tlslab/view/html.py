"""The illustrated handshake as one self-contained HTML page (``connect/demo/decode --html``).

The page is built only from what the engine emitted: the trace entries (raw bytes and
field spans of every message, records, secrets by name, states, alerts, errors) and what
the other view modules derive from them.  There is no second parser.

It holds: the result (and, for a failed handshake, where and why it broke; with
``--insecure``, a banner saying the certificate was not verified and what verification
would have said), a sequence diagram of the flights with round trips and times, every
message as a card that expands into its annotated hex (hovering a field lights up its
bytes, and the reverse), the records and their keys, and the key schedule.

It works offline: no external resource, inline CSS and one inline script, allowed by a
Content-Security-Policy that names their hashes, so that nothing else can run even if an
escaping bug slipped through.  Every string that may come from the peer goes through
:func:`html.escape`.  Secrets appear by name and length only; their values are never in
the trace.  The explanation texts come from ``view/texts/<lang>.toml``.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import os
from html import escape
from typing import Any, Iterable

from .common import (TLS12_VERSIONS, arrow as _arrow, display_name, entries_of, jsonable,
                     level_name, ms_of, perspective, t0_of, value_text)
from .fields import FOLD_AT, FOLD_SHOW, _prefix_len, details_line, leaf_value, message_details
from .html_assets import CSS, JS
from .i18n import current_language, texts, use_language
from .jsonview import to_json
from .keyschedule import key_schedule
from .records import alert_protected, is_tls12, protection_keys, record_parts
from .summary import flights, info_line, summary_rows

__all__ = ["render_html", "write_html"]

#: containers whose entries are coloured one by one in the byte view
_COLOURED_LISTS = ("extensions", "certificate_list")


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _e(v: Any) -> str:
    """Escape any value for text and attribute context."""
    return escape("" if v is None else str(v), quote=True)


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _plural(n: int) -> str:
    return "s" if n != 1 else ""


# --------------------------------------------------------------------------- byte view

def _short_value(v: Any, limit: int = 100) -> str:
    """A container's value in one short line: lists joined, dicts as key value."""
    v = jsonable(v)
    text = value_text(v, limit)
    return text


def _span_title(s, raw: bytes, T) -> str:
    chunk = raw[s.offset:s.offset + s.length]
    children = list(getattr(s, "children", None) or [])
    if children:
        value = _short_value(s.value) if s.value not in (None, "", {}, []) else ""
    else:
        value = leaf_value(s.value, chunk)
    text = s.name + (f" = {value}" if value else "")
    title = f"{text}  [offset {s.offset}, {s.length} byte{_plural(s.length)}]"
    explanation = T.field(s.name)
    return title + (f" — {explanation}" if explanation else "")


class _ByteView:
    """The hex dump with one nested ``<span>`` per field, and the matching field tree."""

    def __init__(self, raw: bytes, prefix: str) -> None:
        self.raw = raw
        self.prefix = prefix
        self.count = 0
        self.T = texts()

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

    def _folded(self, data: bytes) -> str:
        """Hex of a leaf; a long one shows its first bytes and a button for the rest."""
        if len(data) <= FOLD_AT:
            return _hex(data) + " "
        more = len(data) - FOLD_SHOW
        return (_hex(data[:FOLD_SHOW]) + " " + f'<span class="fold">{_hex(data[FOLD_SHOW:])} </span>'
                + f'<button type="button" class="unfold" title="{_e(self.T.ui("show_all"))}">'
                + f"+{_e(self.T.ui('folded_html', n=more))}</button>")

    def _length_prefix(self, parent: str, start: int, end: int, hex_out, tree_out) -> None:
        """Bytes of a vector before its content: its length (RFC 8446 §3.4)."""
        chunk = self.raw[start:end]
        fid = self._id()
        value = int.from_bytes(chunk, "big")
        title = (f"{self.T.ui('length_of', name=parent)} = {value}  "
                 f"[offset {start}, {len(chunk)} byte{_plural(len(chunk))}] — "
                 f"{self.T.field('length')}")
        hex_out.append(f'<span class="f len" data-f="{fid}" title="{_e(title)}">{_hex(chunk)} </span>')
        tree_out.append(f'<li><span data-f="{fid}" title="{_e(title)}"><span class="off">'
                        f"{start:04x} {len(chunk):>4}</span> {_e(self.T.ui('length_prefix'))} = "
                        f'<span class="v">{value}</span></span></li>')

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
            title = _span_title(s, self.raw, self.T)
            # each top-level field, and each extension, gets its own colour
            own = depth == 0 or parent in _COLOURED_LISTS
            h = (k if depth == 0 else k + 1 + (hue or 0)) % 6 if own else hue
            children = list(getattr(s, "children", None) or [])
            chunk = self.raw[s.offset:s.offset + s.length]
            explanation = self.T.field(s.name)
            tree_out.append(f'<li><span data-f="{fid}" title="{_e(title)}">'
                            f'<span class="off">{s.offset:04x} {s.length:>4}</span> '
                            f"{_e(s.name)}")
            if not children:
                value = leaf_value(s.value, chunk)
                if value:
                    tree_out.append(f' = <span class="v">{_e(value)}</span>')
            if explanation and not s.name.endswith("]"):
                tree_out.append(f' <span class="x">{_e(explanation)}</span>')
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
                data = self.raw[s_start:s_end]
                k = _prefix_len(s.value, chunk) if s_end - s_start == s.length else 0
                if 0 < k < len(data):  # opaque<..>: its length prefix, shown as for lists
                    tree_out.append("<ul>")
                    self._length_prefix(s.name, s_start, s_start + k, hex_out, tree_out)
                    tree_out.append("</ul>")
                    hex_out.append(self._folded(data[k:]))
                else:
                    hex_out.append(self._folded(data))
            hex_out.append("</span>")
            tree_out.append("</li>")
            pos = s_end
        self._gap(pos, end, hex_out)


def _bytes_block(entry, prefix: str) -> str:
    T = texts()
    raw = bytes(entry.raw or b"")
    try:
        spans = list(entry.field_spans() or [])
        problem = ""
    except Exception as exc:  # a broken message must not break the page
        spans, problem = [], f"{T.ui('no_field_spans')}: {type(exc).__name__}: {exc}"
    if spans:
        hex_html, tree_html = _ByteView(raw, prefix).build(spans)
    else:
        hex_html, tree_html = _e(_hex(raw)), ""
    out = [f'<details class="raw"><summary>{_e(T.ui("bytes_and_fields", n=len(raw)))}</summary>']
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
    T = texts()
    rows = []
    for i, c in enumerate(certs):
        if "error" in c:
            rows.append(f"<tr><td>{i}</td><td colspan=6>{_e(c['error'])}</td></tr>")
            continue
        validity = f"{c.get('not_before', '?')} → {c.get('not_after', '?')}"
        rows.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in (
            i, c.get("subject"), c.get("issuer"), ", ".join(c.get("san") or []) or T.ui("no_san"),
            validity, c.get("key"),
            (c.get("signature_algorithm") or "") + (f", {T.ui('ca')}" if c.get("is_ca") else ""))) + "</tr>")
    if not rows:
        return f'<div class="note">{_e(T.ui("no_certificates"))}</div>'
    cols = T.get("ui", "cert_cols", ["#", "subject", "issuer", "SAN", "valid", "key", "signature"])
    head = "".join(f"<th>{_e(h)}</th>" for h in cols)
    return f'<table class="certs"><tr>{head}</tr>{"".join(rows)}</table>'


def _direction(arrow: str) -> tuple[str, str]:
    T = texts()
    if arrow.strip() == "C → S":
        return "c2s", T.ui("from_client")
    if arrow.strip() == "C ← S":
        return "s2c", T.ui("from_server")
    return "local", T.ui("local")


def _protection_badge(key: str | None) -> tuple[str, str]:
    """(css class, text): which key protected the record that carried this message."""
    T = texts()
    if key is None:
        return "", T.ui("protection_unknown")
    if key == "plaintext":
        return "plain", T.ui("plaintext")
    if key == "not sent":
        return "", T.ui("not_sent")
    if key.endswith("_write_key"):
        who = key.split("_")[0]
        return "enc", f"{T.ui('encrypted')}: {T.ui('key_' + who + '_write')}"
    return "enc", f"{T.ui('encrypted')}: {key}"


def _banner(cert: dict) -> str:
    T = texts()
    if cert.get("verified") is not False or cert.get("how") != "--insecure":
        return ""
    why = ""
    wf = cert.get("would_fail")
    if wf:
        why = T.ui("would_have_failed", reason=wf.get("reason") or wf.get("code"))
    elif cert.get("would_pass"):
        why = T.ui("would_have_passed")
    return (f'<div class="banner" id="insecure">⚠ {_e(T.ui("insecure_banner"))}'
            + (f'<span class="why">{_e(why)}</span>' if why else "") + "</div>")


def _failure_box(fp: dict | None, error_line: str | None) -> str:
    if not fp:
        return ""
    T = texts()
    rows = [(T.ui("failure_where"), fp.get("where")), (T.ui("failure_cause"), error_line or fp.get("reason"))]
    if fp.get("code"):
        rows.append((T.ui("diagnosis_code"), fp["code"]))
    if fp.get("alert_sent"):
        rows.append((T.ui("alert_sent"), fp["alert_sent"]))
    if fp.get("alert_received"):
        rows.append((T.ui("alert_received"), fp["alert_received"]))
    for k, v in (fp.get("evidence") or {}).items():
        rows.append((f"{T.ui('failure_evidence')}: {k.replace('_', ' ')}", value_text(v, 600)))
    body = "".join(f"<tr><th>{_e(a)}</th><td>{_e(b)}</td></tr>" for a, b in rows if b)
    return (f'<section class="failure" id="failure"><h2>{_e(T.ui("failure_title"))}</h2>'
            f"<table>{body}</table></section>")


def _header(doc: dict, trace, negotiated: dict, side: str, error, error_line: str | None,
            extra: dict, verification: dict | None, timing_ms: dict | None) -> str:
    T = texts()
    s = summary_rows(trace, negotiated, error=error, verification=verification, extra=extra,
                     timing_ms=timing_ms)
    ok = bool(doc.get("ok")) and s["ok"] if trace is not None else bool(doc.get("ok"))
    out = [f'<p><span class="result {"ok" if ok else "failed"}">'
           f'{_e(T.ui("handshake_complete") if ok else T.ui("handshake_failed"))}</span>'
           f'<span class="badge">{_e(T.ui("side_badge", side=T.ui("side_" + side)))}</span></p>']
    out.append(_banner(s["certificate"]))
    err = doc.get("error") or {}
    if not ok:
        line = error_line or err.get("reason") or T.ui("handshake_incomplete")
        out.append(f'<p class="errline">{_e(line)}</p>')
        alerts = []
        if err.get("alert_sent"):
            alerts.append(f'{_e(T.ui("alert_sent"))}: <span class="badge alert">{_e(err["alert_sent"])}</span>')
        if err.get("alert_received"):
            alerts.append(f'{_e(T.ui("alert_received"))}: <span class="badge alert">{_e(err["alert_received"])}</span>')
        if err.get("code"):
            alerts.append(f'{_e(T.ui("diagnosis_code"))}: <code>{_e(err["code"])}</code>')
        if alerts:
            out.append("<p>" + " &nbsp; ".join(alerts) + "</p>")
        out.append(_failure_box(s["failure"], None))
    cert_label = T.ui("certificate")
    out.append('<table class="params">' + "".join(
        f"<tr><th>{_e(k)}</th><td{' class=warn' if k == cert_label and s['certificate'].get('how') == '--insecure' else ''}>"
        f"{_e(v)}</td></tr>" for k, v in s["rows"]) + "</table>")
    if doc.get("peer_certificates"):
        title = T.ui("peer_chain") if side == "server" else T.ui("server_chain")
        note = T.ui("as_received") + ("" if ok else "; " + T.ui("see_error"))
        out.append(f"<h3>{_e(title)} ({_e(note)})</h3>")
        out.append(_cert_table(doc["peer_certificates"]))
    return "".join(out)


# --------------------------------------------------------------------------- sequence diagram

def _sequence_svg(trace) -> str:
    """Flights between client and server as arrows on two lanes, with times and round trips."""
    T = texts()
    entries = entries_of(trace)
    side = perspective(trace)
    t0 = t0_of(trace)
    rows: list[dict] = [dict(f, bad=False, alert=False) for f in flights(trace)]
    # alerts that ended a handshake (or closed it) are drawn too
    for e in entries:
        if e.kind == "alert":
            fc = (e.direction == "sent") == (side == "client")
            rows.append({"direction": "C→S" if fc else "C←S", "messages": [f"Alert: {e.name}"],
                         "start_ms": ms_of(e, t0), "end_ms": ms_of(e, t0),
                         "bad": e.name not in ("close_notify", "user_canceled"), "alert": True})
    rows.sort(key=lambda r: r["start_ms"])
    if not rows:
        return ""
    width, left, right = 760, 150, 610
    y = 50
    parts = [f'<text class="lanename c" x="{left}" y="22" text-anchor="middle">{_e(T.ui("side_client"))}</text>',
             f'<text class="lanename s" x="{right}" y="22" text-anchor="middle">{_e(T.ui("side_server"))}</text>']
    rtt = 0
    bodies = []
    pending_c2s_y = None
    for r in rows:
        h = 18 + 15 * len(r["messages"])
        c2s = r["direction"] == "C→S"
        x1, x2 = (left, right) if c2s else (right, left)
        cls = "bad" if r["bad"] else ("c2s" if c2s else "s2c")
        ya = y + h - 8
        tip = x2 + (-2 if c2s else 2)
        back = tip + (-10 if c2s else 10)
        bodies.append(f'<line class="{cls}" x1="{x1}" y1="{ya}" x2="{back}" y2="{ya}"/>'
                      f'<polygon class="head {cls}" points="{tip},{ya} {back},{ya - 5} {back},{ya + 5}"/>')
        for j, m in enumerate(r["messages"]):
            bodies.append(f'<text x="{(left + right) // 2}" y="{y + 12 + 15 * j}" text-anchor="middle"'
                          f'{" class=badtext" if r["bad"] else ""}>{_e(m)}</text>')
        t = f"{r['start_ms']:.1f} ms"
        bodies.append(f'<text class="t" x="{left - 12}" y="{ya + 4}" text-anchor="end">{_e(t)}</text>')
        if r["alert"]:
            pass  # an alert ends or closes the conversation: no round trip of the handshake
        elif c2s:
            pending_c2s_y = ya
        elif pending_c2s_y is not None:
            rtt += 1
            bodies.append(f'<path class="rtt" d="M{right + 14},{pending_c2s_y} h10 V{ya} h-10"/>')
            bodies.append(f'<text class="rtt" x="{right + 30}" y="{(pending_c2s_y + ya) // 2 + 4}">'
                          f'{_e(T.ui("round_trip", n=rtt))}</text>')
            pending_c2s_y = None
        y += h + 10
    height = y + 10
    lanes = (f'<line class="lane" x1="{left}" y1="30" x2="{left}" y2="{height - 5}"/>'
             f'<line class="lane" x1="{right}" y1="30" x2="{right}" y2="{height - 5}"/>')
    n_flights = sum(1 for r in rows if not r["alert"])
    caption = T.ui("flights_summary", flights=n_flights, rtts=rtt)
    return (f'<h2>{_e(T.ui("sequence_title"))}</h2><p class="note">{_e(caption)}</p>'
            f'<svg class="seq" id="sequence" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
            f"{lanes}{''.join(parts)}{''.join(bodies)}</svg>")


# --------------------------------------------------------------------------- timeline

def _timeline(trace, negotiated: dict, prefix: str) -> str:
    T = texts()
    entries = entries_of(trace)
    if not entries:
        return f'<p class="note">{_e(T.ui("no_messages"))}</p>'
    side = perspective(trace)
    t0 = t0_of(trace)
    keys = protection_keys(trace, negotiated)
    tls12 = is_tls12(trace, negotiated)
    suite = negotiated.get("cipher_suite")
    out = [f'<div class="lanes"><span class="c">{_e(T.ui("side_client"))}</span>'
           f'<span class="s">{_e(T.ui("side_server"))}</span></div>']
    for i, e in enumerate(entries):
        ms = f"{ms_of(e, t0):.1f} ms"
        cls, dir_text = _direction(_arrow(e.direction, side))
        try:
            if e.kind == "message":
                out.append(_message_card(e, ms, cls, dir_text, keys.get(i), f"{prefix}m{i}", tls12))
            elif e.kind == "alert":
                s = e.summary or {}
                benign = e.name in ("close_notify", "user_canceled")
                key = keys.get(i)
                protected = key not in (None, "plaintext") if key is not None else alert_protected(entries, i)
                level = level_name(s.get("level"))
                badge = _protection_badge(key)[1] if key else (T.ui("encrypted") if protected else T.ui("plaintext"))
                out.append(
                    f'<section class="card alert{" benign" if benign else ""}"><div class="head">'
                    f'<span class="t">{ms}</span><span class="dir">{_e(dir_text)}</span>'
                    f'<span class="name">Alert: {_e(e.name)}</span>'
                    f'<span class="badge{"" if benign else " alert"}">{_e(level)}</span>'
                    f'<span class="badge">{_e(badge)}</span>'
                    f'<span class="badge">{_e(T.ui("we_sent") if e.direction == "sent" else T.ui("peer_sent"))}</span>'
                    f'</div><div class="explain">{_e(T.alert(e.name, benign))}</div>'
                    + (f'<div class="mono">{_e(_hex(bytes(e.raw)))}</div>' if e.raw else "")
                    + "</section>")
            elif e.kind == "error":
                alert = (e.summary or {}).get("alert")
                out.append(f'<section class="card error"><div class="head"><span class="t">{ms}</span>'
                           f'<span class="name">{_e(T.ui("error"))}</span>'
                           + (f'<span class="badge alert">alert {_e(jsonable(alert))}</span>'
                              if alert else "")
                           + f'</div><div class="details">{_e(e.detail)}</div></section>')
            elif e.kind == "record":
                out.append(_record_note(e, ms, dir_text, keys.get(i), suite, tls12))
            elif e.kind == "secret":
                length = (e.summary or {}).get("length")
                out.append(f'<div class="note secret"><span class="t">{ms}</span> {_e(T.ui("derived"))} '
                           f"<code>{_e(e.name)}</code>"
                           + (f" ({_e(T.ui('secret_value_hidden', n=length))})" if length else "")
                           + "</div>")
            elif e.kind == "state":
                frm = (e.summary or {}).get("from", "?")
                words = T.state(e.name)
                out.append(f'<div class="note"><span class="t">{ms}</span> '
                           f"{_e(T.ui('state_change', **{'from': frm, 'to': e.name}))}"
                           + (f" ({_e(words)})" if words else "") + "</div>")
            else:
                line = info_line(e)
                out.append(f'<div class="note"><span class="t">{ms}</span> {_e(T.info(e.name))}'
                           f"{': ' + _e(line) if line else ''}</div>")
        except Exception as exc:  # one odd entry must not lose the rest of the page
            out.append(f'<div class="note">(could not show {_e(e.kind)} {_e(e.name)}: '
                       f"{_e(type(exc).__name__)}: {_e(exc)})</div>")
    return "".join(out)


def _record_note(e, ms: str, dir_text: str, key, suite, tls12: bool) -> str:
    T = texts()
    if e.name == "change_cipher_spec":
        what = "ChangeCipherSpec: " + (T.ui("ccs_tls12") if tls12 else T.ui("ccs_tls13"))
        return f'<div class="note record"><span class="t">{ms}</span> {_e(dir_text)}: {_e(what)}</div>'
    rp = record_parts(e, key, suite, tls12)
    parts = [f"{T.ui('trace_title_record')} {rp.content_type}"]
    if rp.length is not None:
        parts.append(f"{rp.length} bytes")
    parts.append(_protection_badge(key)[1] if key else
                 (T.ui("encrypted") if rp.protected else T.ui("plaintext")))
    if rp.header:
        h = rp.header
        parts.append(f"{T.ui('record_header')} {_hex(h)} = {T.ui('record_content_type')} {h[0]} "
                     f"({rp.outer_type}), {T.ui('record_version')} 0x{h[1:3].hex()}, "
                     f"{T.ui('record_length')} {rp.length}")
    if rp.protected and rp.parts:
        parts.append(" + ".join(f"{n} {'?' if l is None else l}" for n, l in rp.parts))
    cipher = ""
    if rp.protected and rp.payload:
        # the trace holds the record's bytes (a decoded capture): the ciphertext, part by part
        from .terminal import _payload_parts
        spans = []
        for k, (label, chunk) in enumerate(_payload_parts(rp, suite, tls12)):
            if len(chunk) > FOLD_AT:
                body = (_hex(chunk[:FOLD_SHOW]) + f' <span class="fold">{_hex(chunk[FOLD_SHOW:])} </span>'
                        f'<button type="button" class="unfold">+{_e(T.ui("folded_html", n=len(chunk) - FOLD_SHOW))}</button>')
            else:
                body = _hex(chunk) + " "
            spans.append(f'<span class="f d0 h{(k * 2) % 6}" title="{_e(label)}">{body}</span>')
        cipher = (f'<details class="raw rec"><summary>{_e(T.ui("record_encrypted_payload"))} '
                  f'({len(rp.payload)} bytes)</summary><div class="hex">{"".join(spans)}</div></details>')
    return (f'<div class="note record"><span class="t">{ms}</span> {_e(dir_text)}: '
            f"{_e('; '.join(parts))}{cipher}</div>")


def _message_card(e, ms: str, cls: str, dir_text: str, key, prefix: str, tls12: bool = False) -> str:
    T = texts()
    name = display_name(e)
    details = message_details(e)
    pcls, ptext = _protection_badge(key)
    out = [(f'<section class="card msg {cls}" id="{prefix}" data-message="{_e(name)}"><div class="head">'
            f'<span class="t">{ms}</span><span class="dir">{_e(dir_text)}</span>'
            f'<span class="name">{_e(name)}</span>'
            f'<span class="badge {pcls}">{_e(ptext)}</span>'
            f'<span class="badge">{len(e.raw or b"")} bytes</span></div>')]
    explanation = T.message(name, tls12)
    if explanation:
        out.append(f'<div class="explain">{_e(explanation)}</div>')
    if name == "Certificate" and "certificates" in details:
        out.append(_cert_table(details["certificates"]))
    else:
        line = details_line(e.name, details)
        if line:
            out.append(f'<div class="details">{_e(line)}</div>')
    out.append(_bytes_block(e, prefix))
    out.append("</section>")
    return "".join(out)


def _key_schedule_panel(trace, negotiated: dict) -> str:
    T = texts()
    ks = key_schedule(trace, negotiated)
    title = T.ui("keyschedule_title12" if ks["tls12"] else "keyschedule_title")
    if not ks["steps"]:
        return (f'<h2 id="keyschedule">{_e(title)}</h2>'
                f'<p class="note">{_e(T.ui("keyschedule_none"))}</p>')
    rows = []
    for s in ks["steps"]:
        p = s.get("protects")
        prot = ""
        if p:
            bits = []
            if p["records_sent"]:
                bits.append(T.ui("records_sent", n=p["records_sent"]))
            if p["records_received"]:
                bits.append(T.ui("records_received", n=p["records_received"]))
            prot = ", ".join(bits) + ((": " if bits else "") + ", ".join(p["messages"]) if p["messages"] else "")
        rows.append(f'<tr><td class="secret">{_e(s["secret"])}</td>'
                    f'<td>{_e(" + ".join(s["inputs"]))}<div class="note">{_e(s.get("explanation") or "")}'
                    f'{(" (" + _e(s["rfc"]) + ")") if s.get("rfc") else ""}</div></td>'
                    f'<td class="protects">{_e(prot)}</td></tr>')
    head = (f"<tr><th>{_e(T.ui('secret'))}</th><th>{_e(T.ui('keyschedule_inputs'))}</th>"
            f"<th>{_e(T.ui('keyschedule_protects'))}</th></tr>")
    return (f'<h2 id="keyschedule">{_e(title)}</h2><table class="ks">{head}{"".join(rows)}</table>'
            f'<p class="note">{_e(T.ui("secrets_note"))}</p>')


def _legend(tls12: bool) -> str:
    T = texts()
    items = T.section("legend12" if tls12 else "legend13")
    lis = "".join(f"<li><b>{_e(a)}</b> → {_e(b)}</li>" for a, b in items.items())
    return f'<h2>{_e(T.ui("which_keys"))}</h2><ul class="legend">{lis}</ul>'


def _section(index: int, trace, negotiated: dict | None, *, error: Any = None,
             error_line: str | None = None, peer_certificates: Iterable | None = None,
             target: str | None = None, title: str | None = None, extra: dict | None = None,
             verification: dict | None = None, timing_ms: dict | None = None) -> str:
    T = texts()
    n = dict(negotiated or {})
    doc = to_json(trace, n, error=error, peer_certificates=peer_certificates,
                  include_fields=False, verification=verification)
    side = doc.get("side", "client")
    heading = title or (f"TLS handshake with {target}" if target else "TLS handshake")
    tls12 = n.get("version") in TLS12_VERSIONS or is_tls12(trace, n)
    out = [f"<h1>{_e(heading)}</h1>" if index == 0 else f"<h2>{_e(heading)}</h2>",
           _header(doc, trace, n, side, error, error_line, extra or {}, verification, timing_ms),
           _sequence_svg(trace) if trace is not None else "",
           f"<h2>{_e(T.ui('message_by_message'))}</h2>",
           f'<p class="note">{_e(T.ui("message_cards_note"))}</p>',
           _timeline(trace, n, f"c{index}"),
           _key_schedule_panel(trace, n) if trace is not None and any(
               e.kind == "secret" for e in entries_of(trace)) else "",
           _legend(tls12) if index == 0 else ""]
    return f'<article id="conn{index}">{"".join(out)}</article>'


def render_html(trace, negotiated: dict | None = None, *, error: Any = None,
                error_line: str | None = None, peer_certificates: Iterable | None = None,
                target: str | None = None, title: str | None = None, extra: dict | None = None,
                more: list[dict] | None = None, verification: dict | None = None,
                timing_ms: dict | None = None, lang: str | None = None) -> str:
    """The whole page for one connection (``more``: further connections, each a dict of the
    same keyword arguments plus ``trace`` and ``negotiated``, e.g. ``--reconnect``).

    ``verification`` says what certificate verification would have said (``--insecure``);
    ``timing_ms`` adds the TCP connect time; ``lang`` the language of the explanations."""
    from .. import __version__
    if lang is not None:
        use_language(lang)
    T = texts()
    sections = [_section(0, trace, negotiated, error=error, error_line=error_line,
                         peer_certificates=peer_certificates, target=target, title=title,
                         extra=extra, verification=verification, timing_ms=timing_ms)]
    for j, kw in enumerate(more or [], start=1):
        kw = dict(kw)
        sections.append(_section(j, kw.pop("trace", None), kw.pop("negotiated", None), **kw))
    page_title = title or (f"tlslab: TLS handshake with {target}" if target else "tlslab handshake")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    csp = (f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    html_lang = {"zh": "zh-Hans"}.get(current_language(), current_language())
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_e(html_lang)}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="tlslab {_e(__version__)}">'
        f"<title>{_e(page_title)}</title><style>{CSS}</style></head><body><main>"
        f'<div class="toolbar"><button type="button" id="expand">{_e(T.ui("expand_all"))}</button>'
        f'<label><input type="checkbox" id="local" checked> {_e(T.ui("show_local"))}</label>'
        "</div>"
        + "".join(sections)
        + f'<div class="status" id="status">{_e(T.ui("hover_hint"))}</div>'
        f"<footer>{_e(T.ui('generated', version=__version__, time=now))}</footer>"
        f"</main><script>{JS}</script></body></html>\n")


def write_html(path: str | os.PathLike, trace, negotiated: dict | None = None, **kwargs: Any) -> str:
    """Render the page and write it to ``path`` (UTF-8); returns the path written."""
    text = render_html(trace, negotiated, **kwargs)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)
