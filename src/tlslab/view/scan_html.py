"""A scan as one self-contained HTML page (``tlslab scan --html FILE``), in the style of
the connect report (:mod:`tlslab.view.html`: same style sheet, same escaping, same kind of
Content-Security-Policy).

The page holds what the terminal report holds (:mod:`tlslab.view.scan`), built from the
scan document alone: the findings most severe first, each with the clients it locks out or
exposes and the fix per server stack behind a ``<details>``; then protocols, cipher
suites per version with strength marks, groups and signature schemes, certificates,
features, vulnerabilities, the client table and the Mozilla comparison.

It needs no script: expanding uses ``<details>``, so the policy allows no script at all,
only the inline style sheet by its hash; every value goes through :func:`html.escape`
(a certificate subject is the server's to choose).  It works offline.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import os
from html import escape
from typing import Any, Iterable

from .html_assets import CSS
from .scan_parts import (OLD_VERSIONS, VERSIONS, error_message, feature_rows, severity_counts, sorted_findings,
                         suite_detail, suite_strength, target_text, vulnerability_rows)

__all__ = ["render_scan_html", "write_scan_html"]

SCAN_CSS = """
nav.toc{margin:.6em 0 1em;font-size:.92em}nav.toc a{margin-right:1em;color:#1f6feb}
.sev{display:inline-block;min-width:5.5em;text-align:center;font-size:.8em;font-weight:700;
padding:.05em .5em;border-radius:3px;color:#fff;text-transform:uppercase}
.sev.critical{background:#7f0000}.sev.high{background:var(--bad)}.sev.medium{background:#e08a00}
.sev.low{background:#1f6feb}.sev.info{background:#7a7f8a}
.finding{background:var(--card);border:1px solid var(--line);border-left:6px solid #7a7f8a;
border-radius:6px;padding:.6em .9em;margin:.6em 0}
.finding.critical{border-left-color:#7f0000}.finding.high{border-left-color:var(--bad)}
.finding.medium{border-left-color:#e08a00}.finding.low{border-left-color:#1f6feb}
.finding h3{margin:.1em 0 .3em;font-size:1.05em}.finding .fid{color:var(--dim);font-weight:400;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;margin-left:.4em}
.finding .evidence{margin:.2em 0;overflow-wrap:anywhere}
.affects{margin:.3em 0;padding:.3em .6em;background:#f6f0ff;border-radius:4px;color:#4a2380}
.affects.broken{background:#fff0f0;color:#7f1d1d;font-weight:600}
.clients{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}
table.fixes{border-collapse:collapse;width:100%;margin:.3em 0}
table.fixes td{border-top:1px solid var(--line);padding:.3em .5em;vertical-align:top}
table.fixes td.stack{font-weight:600;color:#0b6e69;white-space:nowrap}
pre.example{background:#f3f6f3;border:1px solid #d5e5d5;border-radius:4px;padding:.3em .5em;
margin:.3em 0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.88em}
.src{font-size:.82em;color:var(--dim);overflow-wrap:anywhere}
.proto{display:inline-block;padding:.2em .7em;margin:.15em;border-radius:4px;font-weight:600;
border:1px solid var(--line)}
.proto.on{background:#e8f5e9;color:var(--ok)}.proto.on.old{background:#fde8e8;color:var(--bad)}
.proto.off{background:#f3f3f6;color:#99a;text-decoration:line-through}
.proto.off.wanted{background:#fff4e0;color:var(--warn);text-decoration:none}
table.grid{border-collapse:collapse;margin:.4em 0;font-size:.92em}
table.grid th,table.grid td{border:1px solid var(--line);padding:.2em .5em;text-align:left;
vertical-align:top}
table.grid td{overflow-wrap:anywhere}
.strong{color:var(--ok)}.ok{color:#334}.weak{color:var(--warn);font-weight:600}
.insecure{color:var(--bad);font-weight:700}
.good{color:var(--ok)}.bad{color:var(--bad);font-weight:700}.warn{color:var(--warn)}
.mark{font-weight:700;width:1.4em;text-align:center}
ul.changes{margin:.2em 0 .6em}
"""


def _e(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _names(names: Iterable[str]) -> str:
    return ", ".join(_e(n) for n in names)


# ---------------------------------------------------------------------- sections
def _findings(doc: dict) -> str:
    found = sorted_findings(doc)
    out = [f'<h2 id="findings">Findings ({len(found)})</h2>']
    if not found:
        out.append('<p class="good">Nothing to report.</p>')
    for f in found:
        sev = f.get("severity") if f.get("severity") in ("critical", "high", "medium", "low", "info") else "info"
        aff = f.get("affects") or {}
        broken = aff.get("clients_broken") or []
        risk = aff.get("clients_at_risk") or []
        parts = [f'<section class="finding {sev}"><h3><span class="sev {sev}">{_e(sev)}</span> '
                 f'{_e(f.get("title"))}<span class="fid">{_e(f.get("id"))}</span></h3>']
        if f.get("evidence"):
            parts.append(f'<div class="evidence"><b>Evidence:</b> {_e(f["evidence"])}</div>')
        if aff.get("summary"):
            parts.append(f'<div class="affects{" broken" if broken else ""}">{_e(aff["summary"])}</div>')
        if broken or risk:
            rows = []
            if broken:
                label = ("cannot connect now" if aff.get("broken_when") == "now"
                         else "can no longer connect after the fix")
                rows.append(f"<tr><th>{_e(label)}</th><td class=\"clients\">{_names(broken)}</td></tr>")
            if risk:
                rows.append(f'<tr><th>use it today</th><td class="clients">{_names(risk)}</td></tr>')
            parts.append(f'<details><summary>Clients ({len(broken)} locked out, {len(risk)} exposed)</summary>'
                         f'<table class="params">{"".join(rows)}</table></details>')
        fixes = f.get("fixes") or []
        if fixes:
            rows = []
            for fix in fixes:
                body = _e(fix.get("text"))
                if fix.get("example"):
                    body += f'<pre class="example">{_e(fix["example"])}</pre>'
                if fix.get("source"):
                    body += f'<div class="src">source: {_e(fix["source"])}</div>'
                rows.append(f'<tr><td class="stack">{_e(fix.get("stack"))}</td><td>{body}</td></tr>')
            stacks = ", ".join(dict.fromkeys(_e(x.get("stack")) for x in fixes))
            parts.append(f"<details><summary>Fix for {stacks}</summary>"
                         f'<table class="fixes">{"".join(rows)}</table></details>')
        parts.append("</section>")
        out.append("".join(parts))
    return "".join(out)


def _protocols(doc: dict) -> str:
    protocols = doc.get("protocols") or {}
    items = []
    for v in VERSIONS:
        if v not in protocols:
            continue
        on = bool(protocols[v])
        cls = "on" + (" old" if v in OLD_VERSIONS else "") if on else "off" + (" wanted" if v == "TLS 1.3" else "")
        items.append(f'<span class="proto {cls}" title="{_e(v + (" accepted" if on else " refused"))}">'
                     f'{"✓" if on else "✗"} {_e(v)}</span>')
    return f'<h2 id="protocols">Protocols</h2><div>{"".join(items)}</div>'


def _suites(doc: dict) -> str:
    out = ['<h2 id="suites">Cipher suites</h2>']
    marks = {"strong": "✓", "ok": "•", "weak": "!", "insecure": "✗"}
    for v in reversed(VERSIONS):
        part = (doc.get("cipher_suites") or {}).get(v)
        if not part:
            continue
        names = list(part.get("order") or []) if part.get("server_order") else []
        names += [s for s in part.get("accepted") or [] if s not in names]
        order = ("in the server's order" if part.get("server_order") else
                 "the server follows the client's order" if part.get("server_order") is False else "order unknown")
        rows = []
        for s in names:
            st = suite_strength(s)
            rows.append(f'<tr class="{st}"><td class="mark">{marks[st]}</td><td class="mono">{_e(s)}</td>'
                        f"<td>{_e(suite_detail(s))}</td><td>{_e(st)}</td></tr>")
        out.append(f"<h3>{_e(v)}: {len(names)} accepted, {_e(order)}</h3>"
                   f'<table class="grid"><tr><th></th><th>suite</th><th>key exchange</th><th>strength</th></tr>'
                   f'{"".join(rows)}</table>')
    return "".join(out)


def _groups(doc: dict) -> str:
    g = doc.get("groups") or {}
    rows = []
    for v, part in (g.get("per_version") or {}).items():
        order = " (server's order)" if part.get("server_order") else ""
        rows.append(f"<tr><th>groups {_e(v)}</th><td>{_names(part.get('accepted') or [])}{_e(order)}</td></tr>")
    if not g.get("per_version") and g.get("accepted"):
        rows.append(f"<tr><th>groups</th><td>{_names(g['accepted'])}</td></tr>")
    dh = g.get("dh_parameters")
    if dh:
        cls = ' class="warn"' if (dh.get("bits") or 0) < 2048 else ""
        rows.append(f"<tr><th>DHE group</th><td{cls}>{_e(dh.get('bits'))} bits"
                    f"{_e(' (' + dh['group'] + ')') if dh.get('group') else ''}</td></tr>")
    for v, schemes in (doc.get("signature_algorithms") or {}).items():
        rows.append(f"<tr><th>signatures {_e(v)}</th><td>{_names(schemes) or 'none'}</td></tr>")
    return f'<h2 id="groups">Groups and signature schemes</h2><table class="params">{"".join(rows)}</table>'


def _certificates(doc: dict) -> str:
    out = ['<h2 id="certificates">Certificates</h2>']
    for i, entry in enumerate(doc.get("certificates") or [], start=1):
        trusted = entry.get("trusted")
        found = ", ".join(dict.fromkeys(entry.get("found_with") or []))
        out.append(f'<h3>Chain {i}: <span class="{"good" if trusted else "bad"}">'
                   f'{"trusted" if trusted else "not trusted"}</span>'
                   + (f' <span class="note">sent for {_e(found)}</span>' if found else "") + "</h3>")
        rows = []
        for j, c in enumerate(entry.get("certificates") or []):
            rows.append("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in (
                j, c.get("subject"), c.get("issuer"), ", ".join(c.get("san") or []) or "none",
                f"{c.get('not_before', '?')} → {c.get('not_after', '?')}", c.get("key"),
                c.get("signature_algorithm"))) + "</tr>")
        out.append('<table class="certs"><tr><th>#</th><th>subject</th><th>issuer</th><th>names</th>'
                   f'<th>valid</th><th>key</th><th>signature</th></tr>{"".join(rows)}</table>')
        for p in entry.get("problems") or []:
            out.append(f'<div class="errline">✗ {_e(p.get("code"))}: {_e(p.get("summary"))}</div>')
        w = entry.get("expiry_warning")
        if w:
            out.append(f'<div class="warn">! expires in {_e(w.get("expires_in"))} ({_e(w.get("not_after"))})</div>')
    return "".join(out)


def _features(doc: dict) -> str:
    rows = "".join(f'<tr><th>{_e(label)}</th><td class="{mood}">{_e(value)}</td></tr>'
                   for label, value, mood in feature_rows(doc))
    return f'<h2 id="features">Features</h2><table class="params">{rows}</table>'


def _vulnerabilities(doc: dict) -> str:
    rows = "".join(f'<tr><td>{_e(n)}</td><td class="{mood}">{_e(verdict)}</td><td>{_e(ev)}</td></tr>'
                   for n, verdict, mood, ev in vulnerability_rows(doc))
    if not rows:
        return ""
    return ('<h2 id="vulnerabilities">Vulnerabilities</h2><table class="grid">'
            f"<tr><th>check</th><th>verdict</th><th>evidence</th></tr>{rows}</table>")


def _simulation(doc: dict) -> str:
    sims = doc.get("simulation") or []
    if not sims:
        return ""
    ok = sum(1 for s in sims if s.get("outcome") == "ok")
    rows = []
    for s in sims:
        if s.get("outcome") == "ok":
            detail = "  ".join(_e(x) for x in (s.get("version"), s.get("cipher_suite"), s.get("group"),
                                               s.get("signature_scheme")) if x)
            rows.append(f'<tr><td class="mono">{_e(s.get("profile"))}</td><td class="good mark">✓</td>'
                        f"<td>{detail}</td></tr>")
        else:
            rows.append(f'<tr><td class="mono">{_e(s.get("profile"))}</td><td class="bad mark">✗</td>'
                        f'<td><b class="bad">{_e(", ".join(s.get("codes") or []) or "fails")}</b>: '
                        f'{_e(s.get("reason"))}</td></tr>')
    return (f'<h2 id="clients">Clients: {ok} of {len(sims)} connect</h2>'
            '<p class="note">Decided from the scan\'s answers, without new connections; '
            "<code>tlslab simulate</code> connects with each client's own hello.</p>"
            f'<table class="grid"><tr><th>client</th><th></th><th>result</th></tr>{"".join(rows)}</table>')


def _mozilla(doc: dict) -> str:
    m = doc.get("mozilla")
    if not m:
        return ""
    out = [f'<h2 id="mozilla">Mozilla Server Side TLS {_e(m.get("guidelines"))}</h2>',
           f'<p>Closest configuration: <b>{_e(m.get("closest"))}</b>'
           + (f"; compared against <b>{_e(m['against'])}</b>" if m.get("against") else "") + "</p>"]
    for name, c in (m.get("configurations") or {}).items():
        if c.get("meets"):
            out.append(f'<h3 class="good">✓ {_e(name)}: meets it</h3>')
            continue
        items = "".join(f"<li>{_e(ch)}</li>" for ch in c.get("changes") or [])
        out.append(f"<h3>✗ {_e(name)}: {len(c.get('changes') or [])} changes to meet it</h3>"
                   f'<ul class="changes">{items}</ul>')
    first = next(iter((m.get("configurations") or {}).values()), {})
    for note in first.get("not_checked") or []:
        out.append(f'<p class="note">Not checked: {_e(note)}</p>')
    if m.get("source"):
        out.append(f'<p class="note">Source: {_e(m["source"])}</p>')
    return "".join(out)


def render_scan_html(doc: dict) -> str:
    """The whole page for one scan document."""
    from .. import __version__
    target = target_text(doc)
    counts = "".join(f'<span class="sev {sev}">{n} {_e(sev)}</span> ' for sev, n in severity_counts(doc))
    meta = [f"scanned {doc['scanned_at']}"] if doc.get("scanned_at") else []
    if doc.get("duration_s") is not None:
        meta.append(f"{doc['duration_s']:.1f} s")
    if doc.get("connections") is not None:
        meta.append(f"{doc['connections']} connections")
    head = (f"<h1>TLS scan of {_e(target)}</h1>"
            f'<p class="note">{_e(", ".join(meta))}</p>' + (f"<p>{counts}</p>" if counts else ""))
    if doc.get("error"):
        body = head + f'<div class="failure"><h2>Scan failed</h2>{_e(error_message(doc))}</div>'
    else:
        toc = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
            ("findings", "Findings"), ("protocols", "Protocols"), ("suites", "Cipher suites"),
            ("groups", "Groups"), ("certificates", "Certificates"), ("features", "Features"),
            ("vulnerabilities", "Vulnerabilities"), ("clients", "Clients"), ("mozilla", "Mozilla")))
        body = (head + f'<nav class="toc">{toc}</nav>' + _findings(doc) + _protocols(doc) + _suites(doc)
                + _groups(doc) + _certificates(doc) + _features(doc) + _vulnerabilities(doc)
                + _simulation(doc) + _mozilla(doc))
    style = CSS + SCAN_CSS
    csp = f"default-src 'none'; style-src {_csp_hash(style)}; img-src data:; base-uri 'none'; form-action 'none'"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="tlslab {_e(__version__)}">'
            f"<title>{_e('tlslab scan: ' + target)}</title><style>{style}</style></head><body><main>"
            + body + f"<footer>Generated by tlslab {_e(__version__)} at {_e(now)}.</footer>"
            "</main></body></html>\n")


def write_scan_html(path: str | os.PathLike, doc: dict) -> str:
    """Render the page and write it to ``path`` (UTF-8); returns the path written."""
    text = render_scan_html(doc)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)
