"""The handshake in the terminal (rich), for ``connect``, ``demo`` and ``decode``.

* :func:`render_sequence` — the default view: one line per handshake message with its
  direction, time and key fields and the key that protected it; for a failed handshake,
  where it broke and why; then a summary panel.
* :func:`render_bytes` — ``--trace``: every record (the 5-byte header decoded, what the
  payload is made of: ciphertext, inner content type, AEAD tag), every message field by
  field (offset, length prefixes, raw hex, value, a one-line explanation with its RFC
  section; long values folded), every secret, state change and alert.
* :func:`render_key_schedule` — the derivation chain of the secrets.

Everything reads only the trace.  The texts come from ``view/texts/<lang>.toml``.  Output
fits the console's width, and rich drops colours when the output is not a terminal or when
``NO_COLOR`` is set (``--no-color`` sets it).
"""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .common import (arrow as _arrow, display_name, entries_of, hex_lines, level_name,
                     ms_of, perspective, safe_text, styled, t0_of, value_text)
from .fields import FOLD_AT, FOLD_SHOW, details_line, field_rows, message_details
from .i18n import texts
from .keyschedule import key_schedule
from .records import alert_protected, is_tls12, protection_keys, record_parts
from .summary import failure_point, info_line, summary_rows

__all__ = ["render_sequence", "render_bytes", "render_comparison", "render_key_schedule",
           "key_label"]


def key_label(key: str | None) -> str:
    """A protection key in words: ``server_handshake_traffic_secret`` -> "server handshake key"."""
    T = texts()
    if key is None:
        return ""
    if key == "plaintext":
        return T.ui("plaintext")
    if key == "not sent":
        return T.ui("not_sent")
    if key.endswith("_write_key"):
        return T.ui("key_" + key.replace("_key", ""))
    if key == "client_early_traffic_secret":
        return T.ui("key_client_early")
    who = key.split("_")[0]
    if "_handshake_" in key:
        return T.ui(f"key_{who}_handshake")
    if "_application_" in key:
        gen = key.rsplit("_", 1)[-1]
        label = T.ui(f"key_{who}_application")
        return label if gen == "0" else f"{label} #{gen}"
    return key


# --------------------------------------------------------------------------- (a) sequence

def render_sequence(trace, negotiated: dict | None = None, *, console: Console | None = None,
                    error: Any = None, title: str | None = None, explain: bool = False,
                    show_summary: bool = True, extra: dict | None = None,
                    verification: dict | None = None, timing_ms: dict | None = None,
                    lang: str | None = None) -> None:
    """Print the readable handshake: one line per message, alerts, where a failed handshake
    broke, then a summary panel.

    ``error`` is a reason string or an exception (e.g. :class:`tlslab.HandshakeError`);
    ``explain`` adds a sentence per message for newcomers; ``extra`` adds rows to the
    summary; ``verification`` says what certificate verification would have said
    (``--insecure``); ``timing_ms`` adds the TCP connect time.
    """
    console = console or Console()
    if lang is not None:
        from .i18n import use_language
        use_language(lang)
    try:
        _render_sequence(trace, negotiated or {}, console, error, title, explain, show_summary,
                         extra or {}, verification, timing_ms)
    except Exception as e:  # rendering must never hide the result
        console.print(f"[red](could not render the trace: {type(e).__name__}: "
                      f"{escape(safe_text(e))})[/]")


def _name_width(entries: list) -> int:
    names = [len(display_name(e)) for e in entries if e.kind == "message"]
    names += [len("ChangeCipherSpec")]
    return min(max(names), 28)


def _grid(console: Console, name_width: int) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim", no_wrap=True, width=7)
    grid.add_column(no_wrap=True, width=5)
    grid.add_column(no_wrap=False, width=name_width, overflow="fold")
    grid.add_column(overflow="fold", ratio=1)
    return grid


def _render_sequence(trace, negotiated, console, error, title, explain, show_summary, extra,
                     verification, timing_ms):
    T = texts()
    entries = entries_of(trace)
    side = perspective(trace)
    t0 = t0_of(trace)
    keys = protection_keys(trace, negotiated)
    explained: set[str] = set()
    tls12 = is_tls12(trace, negotiated)
    ccs_text = T.ui("ccs_tls12") if tls12 else T.ui("ccs_tls13")
    if title:
        console.print(styled(title, "bold"))
    width = _name_width(entries)
    grid = _grid(console, width)
    grid.add_row(Text(T.ui("header_ms"), style="bold dim"), "", Text(T.ui("header_message"), style="bold dim"),
                 Text(T.ui("header_details"), style="bold dim"))
    for i, e in enumerate(entries):
        ms = f"{ms_of(e, t0):.1f}"
        arrow = _arrow(e.direction, side)
        if e.kind == "message":
            name = display_name(e)
            details = details_line(e.name, message_details(e))
            key = key_label(keys.get(i))
            style = "cyan" if arrow == "C → S" else "magenta"
            cell = styled(details)
            if key:
                cell.append(f"  [{key}]", style="dim")
            grid.add_row(ms, Text(arrow, style=style), styled(name, "bold " + style), cell)
            if explain and name not in explained:
                explained.add(name)
                explanation = T.message(name, tls12)
                if explanation:
                    grid.add_row("", "", "", Text(explanation, style="dim italic"))
        elif e.kind == "record" and e.name == "change_cipher_spec":
            grid.add_row(ms, Text(arrow, style="dim"), Text("ChangeCipherSpec", style="dim"),
                         Text(f"{ccs_text}  [{T.ui('plaintext')}]", style="dim"))
        elif e.kind == "alert":
            fatal = e.name not in ("close_notify", "user_canceled")
            style = "bold red" if fatal else "yellow"
            key = keys.get(i)
            if key is None:
                key = "plaintext" if not alert_protected(entries, i) else None
            grid.add_row(ms, Text(arrow, style=style), Text(T.ui("alert"), style=style),
                         styled(f"{e.name} ({level_name((e.summary or {}).get('level'))})"
                                f"  [{key_label(key) or T.ui('encrypted')}]", style))
        elif e.kind == "error":
            grid.add_row(ms, Text("  ✗", style="bold red"), Text(T.ui("error"), style="bold red"),
                         styled(e.detail, "red"))
        elif e.kind == "info" and e.name != "handshake complete":
            label = T.info(e.name)
            style = "bold yellow" if "insecure" in e.name else "dim"
            line = info_line(e)
            grid.add_row(ms, Text("  ·", style="dim"), "",
                         styled(label + (f": {line}" if line else ""), style))
    console.print(grid)
    fp = failure_point(trace, error)
    if fp is not None:
        console.print(_failure_panel(fp))
    if show_summary:
        console.print(_summary_panel(trace, negotiated, error, extra, verification, timing_ms))


def _failure_panel(fp: dict) -> Panel:
    T = texts()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(T.ui("failure_where"), styled(fp["where"]))
    grid.add_row(T.ui("failure_cause"), styled(fp["reason"], "red"))
    if fp.get("code"):
        grid.add_row(T.ui("diagnosis_code"), styled(fp["code"]))
    if fp.get("alert_sent"):
        grid.add_row(T.ui("alert_sent"), styled(fp["alert_sent"]))
    if fp.get("alert_received"):
        grid.add_row(T.ui("alert_received"), styled(fp["alert_received"]))
    for k, v in (fp.get("evidence") or {}).items():
        grid.add_row(styled(f"{T.ui('failure_evidence')}: {k.replace('_', ' ')}"), styled(_evidence_text(v)))
    return Panel(grid, title=T.ui("failure_title"), border_style="red", expand=False)


def _evidence_text(v: Any) -> str:
    if isinstance(v, dict):
        if "subject" in v:
            bits = [str(v.get("subject"))]
            if v.get("issuer"):
                bits.append(f"issuer {v['issuer']}")
            if v.get("san"):
                bits.append("SAN " + ", ".join(v["san"]))
            if v.get("not_after"):
                bits.append(f"not after {v['not_after']}")
            return "; ".join(bits)
        return ", ".join(f"{k} {_evidence_text(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "\n".join(_evidence_text(x) for x in v)
    return value_text(v, 400)


def _summary_panel(trace, n: dict, error, extra, verification, timing_ms) -> Panel:
    T = texts()
    s = summary_rows(trace, n, error=error, verification=verification, extra=extra,
                     timing_ms=timing_ms)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    fp = s["failure"]
    status = Text(T.ui("handshake_complete"), style="bold green") if s["ok"] else \
        Text(T.ui("handshake_failed") if fp else T.ui("handshake_incomplete"), style="bold red")
    grid.add_row(T.ui("result"), status)
    if fp:
        grid.add_row(T.ui("reason"), styled(fp["reason"], "red"))
        if fp.get("alert_sent"):
            grid.add_row(T.ui("alert_sent"), styled(fp["alert_sent"]))
        if fp.get("alert_received"):
            grid.add_row(T.ui("alert_received"), styled(fp["alert_received"]))
    for label, value in s["rows"]:
        style = "bold yellow" if value.startswith(T.ui("certificate_not_verified")[:6]) and \
            label == T.ui("certificate") else ""
        grid.add_row(styled(label), styled(value, style))
    side = T.ui("side_" + s["side"])
    return Panel(grid, title=T.ui("summary_title", side=side),
                 border_style="green" if s["ok"] else "red", expand=False)


# --------------------------------------------------------------------------- comparison

def render_comparison(profiles: list[dict], *, console: Console | None = None,
                      title: str = "handshakes side by side") -> None:
    """A table with one column per connection (full, resumed, 0-RTT ...); a "—" in the
    0-RTT row comes with its reason (``early_data_note``) below the table."""
    console = console or Console()
    table = Table(title=title, title_style="bold", show_lines=True)
    table.add_column("", style="bold", no_wrap=True)
    for i, p in enumerate(profiles):
        table.add_column(styled(f"#{i + 1} {p['kind']}"), overflow="fold")

    def row(label, fn):
        table.add_row(label, *[styled(fn(p)) for p in profiles])

    def ms(key):
        return lambda p: (f"{p['timing_ms'][key]:.1f}" if key in p["timing_ms"] else "—")

    def early(p):
        v = p["early_data_accepted"]
        if v is None:
            return "— (" + p["early_data_note"] + ")" if p.get("early_data_note") else "—"
        return "accepted" if v else "rejected"

    row("resumed", lambda p: "yes" if p["resumed"] else "no")
    row("0-RTT data", early)
    row("version", lambda p: str(p.get("version") or "—"))
    row("flights C→S / C←S", lambda p: f"{p['flights_client_to_server']} / {p['flights_server_to_client']}")
    row("round trips", lambda p: str(p["round_trips"]))
    row("RTTs before app data", lambda p: str(p["round_trips_before_data"]))
    row("messages", lambda p: "\n".join(f"{f['direction']} " + ", ".join(f["messages"])
                                        for f in p["flights"]))
    row("TCP connect ms", ms("tcp_connect"))
    row("handshake ms", ms("handshake"))
    if any("first_data" in p["timing_ms"] for p in profiles):
        row("first response ms", ms("first_data"))
    console.print(table)


# --------------------------------------------------------------------------- (b) bytes

def render_bytes(trace, *, console: Console | None = None, max_leaf_bytes: int | None = None,
                 full: bool = False, negotiated: dict | None = None, lang: str | None = None,
                 show_key_schedule: bool = True) -> None:
    """Print every trace entry in order: records taken apart, messages field by field.

    Message columns: offset (within the handshake message, header included), length,
    field = value with its explanation, bytes.  Values longer than 64 bytes are folded to
    32 (``full=True`` shows all; ``max_leaf_bytes`` folds at that size).  Secrets are shown
    by name and length only.  Ends with the key schedule.
    """
    console = console or Console()
    if lang is not None:
        from .i18n import use_language
        use_language(lang)
    entries = entries_of(trace)
    side = perspective(trace)
    t0 = t0_of(trace)
    n = negotiated or _negotiated_from(entries)
    keys = protection_keys(trace, n)
    tls12 = is_tls12(trace, n)
    fold_at, fold_show = (FOLD_AT, FOLD_SHOW) if max_leaf_bytes is None else (max_leaf_bytes, max_leaf_bytes)
    _said.pop(id(console), None)
    for i, e in enumerate(entries):
        try:
            _render_entry_bytes(e, i, side, t0, console, not full, fold_at, fold_show, keys,
                                n.get("cipher_suite"), tls12)
        except Exception as exc:
            console.print(f"[red](could not render {escape(safe_text(e.name))}: "
                          f"{type(exc).__name__}: {escape(safe_text(exc))})[/]")
            if e.raw:
                console.print("\n".join(hex_lines(e.raw)), highlight=False)
    if show_key_schedule and any(e.kind == "secret" for e in entries):
        console.print()
        render_key_schedule(trace, n, console=console)


def _negotiated_from(entries: list) -> dict:
    for e in entries:
        if e.kind == "info" and e.name == "handshake complete":
            return dict(e.summary or {})
    for e in entries:
        if e.kind == "message" and e.name == "ServerHello":
            d = message_details(e)
            return {"version": d.get("version"), "cipher_suite": d.get("cipher_suite")}
    return {}


def _render_entry_bytes(e, i, side, t0, console, fold, fold_at, fold_show, keys, suite, tls12):
    T = texts()
    ms = f"{ms_of(e, t0):8.1f} ms"
    arrow = _arrow(e.direction, side)
    if e.kind == "message":
        key = key_label(keys.get(i))
        head = Text.assemble((f"{ms}  {arrow}  ", "dim"), (safe_text(display_name(e)), "bold"),
                             (f"  ({len(e.raw)} bytes" + (f", {key}" if key else "") + ")", "dim"))
        console.print(head)
        explanation = T.message(display_name(e), tls12)
        if explanation:
            console.print(Text("  " + explanation, style="dim italic"))
        try:
            spans = e.field_spans()
        except Exception as exc:
            spans = []
            console.print(Text(f"  ({T.ui('no_field_spans')}: {safe_text(exc)})", style="yellow"))
        if not spans:
            console.print("\n".join("    " + l for l in hex_lines(e.raw)), highlight=False)
            return
        rows = field_rows(e.raw, spans, fold=fold, fold_at=fold_at, fold_show=fold_show)
        # bytes per hex line: as many as leave the field column room for the longest
        # identifiers (a 45-character cipher suite name must not break in the middle)
        width = 16 if console.width >= 150 else 8 if console.width >= 100 else 4
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False,
                      padding=(0, 1), expand=True)
        table.add_column("offset", justify="right", style="dim", no_wrap=True, width=6)
        table.add_column("len", justify="right", style="dim", no_wrap=True, width=5)
        table.add_column("field = value", overflow="fold", ratio=1)
        table.add_column("bytes", style="green", no_wrap=True, width=width * 3 - 1)
        explained: set[str] = set()
        for r in rows:
            label = Text("  " * r.depth)
            if r.kind == "container":
                label.append(safe_text(r.name), style="bold")
            elif r.kind == "length":
                label.append(safe_text(T.ui("length_prefix")), style="dim")
            else:
                label.append(safe_text(r.name))
            if r.value:
                label.append(" = ")
                label.append(safe_text(r.value), style="cyan")
            if r.explanation and r.name not in explained and not r.name.endswith("]"):
                explained.add(r.name)  # once per field name and message: the rest is noise
                label.append("  " + r.explanation, style="dim italic")
            lines = hex_lines(r.data, width) if r.kind != "container" else []
            if r.more:  # said beside the bytes, where there is room for it
                lines.append("…")
                label.append("\n" + "  " * r.depth + T.ui("folded", n=r.more), style="dim")
            table.add_row(f"{r.offset:04x}", str(r.length), label, "\n".join(lines))
        console.print(table)
    elif e.kind in ("record", "alert"):
        _render_record(e, i, ms, arrow, console, keys, suite, tls12, not fold)
    elif e.kind == "secret":
        length = (e.summary or {}).get("length")
        line = Text(f"{ms}    ·    {T.ui('secret')} {safe_text(e.name)}", style="yellow")
        if length:
            line.append(f" ({T.ui('secret_value_hidden', n=length)})", style="yellow")
        explanation = T.secret(e.name)
        if explanation:
            line.append("  " + explanation, style="dim")
        console.print(line)
    elif e.kind == "state":
        frm = (e.summary or {}).get("from", "?")
        words = T.state(e.name)
        console.print(Text(f"{ms}    ·    " + T.ui("state_change", **{"from": frm, "to": e.name})
                           + (f" ({words})" if words else ""), style="blue"))
    elif e.kind == "error":
        console.print(styled(f"{ms}    ✗    {T.ui('error')}: {e.detail}", "bold red"))
        alert = (e.summary or {}).get("alert")
        if alert:
            console.print(styled(f"              → alert {value_text(alert)}", "red"))
    else:
        label = T.info(e.name)
        line = info_line(e)
        style = "bold yellow" if "insecure" in e.name else "dim"
        console.print(styled(f"{ms}    ·    {label}" + (f": {line}" if line else ""), style))


_said: dict[int, bool] = {}


def _payload_parts(rp, suite, tls12) -> list[tuple[str, bytes]]:
    """A protected record's payload cut into its parts (RFC 8446 §5.2, RFC 5246 §6.2.3)."""
    from .records import aead_overhead
    ov = aead_overhead(suite, tls12)
    p = rp.payload
    if not tls12:
        tag = ov["tag"]
        return [(f"encrypted_record, {max(0, len(p) - tag)} bytes: content + inner type "
                 f"{rp.content_type}", p[:-tag] if len(p) > tag else p),
                (f"AEAD tag, {tag} bytes", p[-tag:] if len(p) > tag else b"")]
    if ov.get("cbc"):
        iv = ov["nonce"]
        return [(f"IV, {iv} bytes", p[:iv]),
                (f"encrypted content + MAC ({ov['mac']} bytes) + padding, {max(0, len(p) - iv)} bytes",
                 p[iv:])]
    out = []
    if ov["nonce"]:
        out.append((f"explicit nonce, {ov['nonce']} bytes", p[:ov["nonce"]]))
    body = p[ov["nonce"]:len(p) - ov["tag"]]
    out.append((f"ciphertext ({rp.content_type}), {len(body)} bytes", body))
    out.append((f"AEAD tag, {ov['tag']} bytes", p[len(p) - ov["tag"]:]))
    return out


def _render_record(e, i, ms, arrow, console, keys, suite, tls12, full=False):
    """A record: its header decoded, and what its payload holds."""
    T = texts()
    key = keys.get(i)
    rp = record_parts(e, key, suite, tls12)
    if e.kind == "alert":
        fatal = e.name not in ("close_notify", "user_canceled")
        style = "bold red" if fatal else "yellow"
        console.print(styled(f"{ms}  {arrow}  {T.ui('alert')} {e.name} "
                             f"({level_name((e.summary or {}).get('level'))}), "
                             f"{key_label(key) if key else T.ui('encrypted')}: "
                             f"{bytes(e.raw).hex(' ')}", style))
    line = Text(f"{ms}  {arrow}  ", style="dim")
    line.append(f"{T.ui('trace_title_record')} ", style="dim")
    line.append(safe_text(rp.content_type), style="bold dim")
    if rp.length is not None:
        line.append(f", {rp.length} bytes", style="dim")
    label = key_label(key)
    if label:
        line.append(f"  [{label}]", style="dim")
    if e.kind == "record":
        console.print(line)
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(width=14, no_wrap=True)
    grid.add_column(style="green", no_wrap=True)
    grid.add_column(overflow="fold", style="dim", ratio=1)
    if rp.header:
        h = rp.header
        grid.add_row("", h[0:1].hex(), f"{T.ui('record_content_type')} {h[0]} = {rp.outer_type}")
        grid.add_row("", h[1:3].hex(" "), f"{T.ui('record_version')} 0x{h[1:3].hex()} "
                                          f"({rp.version or '?'})")
        grid.add_row("", h[3:5].hex(" "), f"{T.ui('record_length')} {rp.length}")
    elif rp.length is not None and e.name != "change_cipher_spec":
        ct = {"handshake": 22, "alert": 21, "application_data": 23}.get(rp.outer_type, 0)
        grid.add_row("", f"{ct:02x}", f"{T.ui('record_content_type')} {ct} = {rp.outer_type}")
        grid.add_row("", "03 03", f"{T.ui('record_version')} 0x0303 (TLS 1.2)")
        grid.add_row("", f"{rp.length:04x}"[:2] + " " + f"{rp.length:04x}"[2:],
                     f"{T.ui('record_length')} {rp.length}")
    if rp.protected and rp.payload:
        # the bytes are in the trace (a decoded capture): each part with its own bytes
        width = 16 if console.width >= 120 else 8
        for label, chunk in _payload_parts(rp, suite, tls12):
            shown = chunk if (full or len(chunk) <= FOLD_AT) else chunk[:FOLD_SHOW]
            lines = hex_lines(shown, width) or [""]
            if len(shown) < len(chunk):
                lines.append(T.ui("folded", n=len(chunk) - len(shown)))
            grid.add_row("", "\n".join(lines), label)
    elif rp.protected:
        for what, n in rp.parts:
            grid.add_row("", "", f"{what}: {n if n is not None else '?'} bytes"
                         + (f" ({rp.content_type})" if "inner content type" in what else ""))
        if e.kind == "record" and not _said.get(id(console)):
            _said[id(console)] = True  # once per output: it is true of every record
            grid.add_row("", "", T.ui("record_bytes_not_kept"))
    elif e.kind == "record" and e.direction == "sent" and rp.content_type == "application_data":
        grid.add_row("", "", T.ui("record_sent_app", n=(e.summary or {}).get("length")))
    if grid.row_count:
        console.print(grid)


# --------------------------------------------------------------------------- key schedule

def render_key_schedule(trace, negotiated: dict | None = None, *, console: Console | None = None) -> None:
    """The derivation chain: each secret, the inputs it comes from, and what it protected."""
    console = console or Console()
    T = texts()
    ks = key_schedule(trace, negotiated)
    console.print(Text(T.ui("keyschedule_title12" if ks["tls12"] else "keyschedule_title"),
                       style="bold"))
    if not ks["steps"]:
        console.print(Text("  " + T.ui("keyschedule_none"), style="dim"))
        return
    for step in ks["steps"]:
        line = Text("  ")
        line.append(safe_text(step["secret"]), style="bold yellow")
        if step.get("length"):
            line.append(f" ({step['length']} bytes)", style="dim")
        console.print(line)
        if step["inputs"]:
            console.print(Text(f"      {T.ui('keyschedule_inputs')}: " + " + ".join(step["inputs"])
                               + (f"  ({step['rfc']})" if step.get("rfc") else ""), style="dim"))
        p = step.get("protects")
        if p:
            bits = []
            if p["records_sent"]:
                bits.append(T.ui("records_sent", n=p["records_sent"]))
            if p["records_received"]:
                bits.append(T.ui("records_received", n=p["records_received"]))
            what = ", ".join(bits)
            if p["messages"]:
                what += (": " if what else "") + ", ".join(p["messages"])
            console.print(styled(f"      {T.ui('keyschedule_protects')}: {what}", "green"))
    console.print(Text("  " + T.ui("secrets_note"), style="dim"))
