"""A scan for the terminal (rich): :func:`render_scan` prints the report in sections, and
:func:`scan_progress` draws the progress bar while the scan runs.

Sections, in the order a reader acts on them after the header: the findings (most severe
first, each with whom it hurts and the fix per server stack), then the evidence behind
them: protocols, cipher suites per version in the server's order with a strength mark,
groups, signature schemes, certificates, features, vulnerabilities, the client
simulation, and the comparison with Mozilla's guidelines.

The view shows exactly what ``--json`` holds (the scan document); every string from the
server or the user goes through :func:`~tlslab.view.common.safe_text`, so a hostile
certificate subject cannot drive the terminal.  Output fits the console's width; long
configuration lines fold rather than being cut.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .common import safe_text
from .scan_parts import (OLD_VERSIONS, VERSIONS, error_message, feature_rows, severity_counts, sorted_findings,
                         suite_detail, suite_strength, target_text, vulnerability_rows)

__all__ = ["render_scan", "scan_progress"]

_SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "bold yellow",
                   "low": "cyan", "info": "dim"}
_BORDER = {"critical": "red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
_MOOD = {"good": "green", "bad": "bold red", "warn": "yellow", "plain": ""}
_STRENGTH = {"strong": ("✓", "green"), "ok": ("•", ""), "weak": ("!", "yellow"), "insecure": ("✗", "bold red")}
#: stacks shown first in a finding's fixes (the others follow in the data's order)
_STACK_ORDER = ("nginx", "apache", "haproxy", "iis", "java-server", "go", "generic")


def _t(value: Any) -> Text:
    return Text(safe_text("" if value is None else value))


def _heading(console: Console, title: str) -> None:
    console.print()
    console.print(Text(title, style="bold underline"))


def _names(names: list[str], limit: int = 10) -> str:
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return ", ".join(names)


# ---------------------------------------------------------------------- sections
def _header(doc: dict, console: Console) -> None:
    head = Text("tlslab scan ", style="bold")
    head.append(safe_text(target_text(doc)))
    console.print(head)
    bits = [f"scanned {doc['scanned_at']}"] if doc.get("scanned_at") else []
    if doc.get("duration_s") is not None:
        bits.append(f"{doc['duration_s']:.1f} s")
    if doc.get("connections") is not None:
        bits.append(f"{doc['connections']} connections")
    if bits:
        console.print(Text(safe_text(", ".join(bits)), style="dim"))
    counts = severity_counts(doc)
    if counts:
        line = Text("findings: ")
        for i, (sev, n) in enumerate(counts):
            if i:
                line.append(", ")
            line.append(f"{n} {sev}", style=_SEVERITY_STYLE[sev])
        console.print(line)


def _protocols(doc: dict, console: Console) -> None:
    _heading(console, "Protocols")
    protocols = doc.get("protocols") or {}
    line = Text()
    for v in VERSIONS:
        if v not in protocols:
            continue
        on = protocols[v]
        if on:
            style = "bold red" if v in OLD_VERSIONS else "green"
            line.append(f"✓ {v}", style=style)
        else:
            style = "yellow" if v == "TLS 1.3" else "dim"
            line.append(f"✗ {v}", style=style)
        line.append("   ")
    console.print(line)


def _suites(doc: dict, console: Console) -> None:
    _heading(console, "Cipher suites")
    parts = doc.get("cipher_suites") or {}
    for v in reversed(VERSIONS):
        part = parts.get(v)
        if not part:
            continue
        names = list(part.get("order") or []) if part.get("server_order") else []
        names += [s for s in part.get("accepted") or [] if s not in names]
        order = ("server's order" if part.get("server_order") else
                 "client's order (the server follows the client)" if part.get("server_order") is False
                 else "order unknown")
        console.print(Text(safe_text(f"{v}: {len(names)} accepted, {order}"), style="bold"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        table.add_column(style="dim", overflow="fold")
        for s in names:
            mark, style = _STRENGTH[suite_strength(s)]
            table.add_row(Text(mark, style=style), Text(safe_text(s), style=style), _t(suite_detail(s)))
        console.print(table)
    console.print(Text("✓ strong (forward secret AEAD)  • ok (forward secret CBC)  ! weak  ✗ insecure",
                       style="dim"))


def _groups(doc: dict, console: Console) -> None:
    _heading(console, "Groups and signature schemes")
    g = doc.get("groups") or {}
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for v, part in (g.get("per_version") or {}).items():
        order = " (server's order)" if part.get("server_order") else ""
        table.add_row(_t(f"groups {v}"), _t(", ".join(part.get("accepted") or []) + order))
    if not g.get("per_version") and g.get("accepted"):
        table.add_row("groups", _t(", ".join(g["accepted"])))
    dh = g.get("dh_parameters")
    if dh:
        mood = "bold red" if (dh.get("bits") or 0) < 2048 else ""
        group = f" ({dh['group']})" if dh.get("group") else ""
        table.add_row("DHE group", Text(safe_text(f"{dh.get('bits')} bits{group}"), style=mood))
    for v, schemes in (doc.get("signature_algorithms") or {}).items():
        table.add_row(_t(f"signatures {v}"), _t(", ".join(schemes) or "none"))
    console.print(table)


def _certificates(doc: dict, console: Console) -> None:
    _heading(console, "Certificates")
    for i, entry in enumerate(doc.get("certificates") or [], start=1):
        ok = entry.get("trusted")
        title = Text(f"chain {i}: ", style="bold")
        title.append("trusted" if ok else "not trusted", style="green" if ok else "bold red")
        found = list(dict.fromkeys(entry.get("found_with") or []))
        if found:
            title.append(safe_text(f"  (sent for {', '.join(found)})"), style="dim")
        console.print(title)
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for j, c in enumerate(entry.get("certificates") or []):
            table.add_row(_t(f"#{j} subject"), _t(c.get("subject")))
            table.add_row("   issuer", _t(c.get("issuer")))
            table.add_row("   key, signature", _t(f"{c.get('key')}, {c.get('signature_algorithm')}"))
            table.add_row("   valid", _t(f"{c.get('not_before')} to {c.get('not_after')}"))
            if c.get("san"):
                table.add_row("   names", _t(", ".join(c["san"][:12]) + (" …" if len(c["san"]) > 12 else "")))
        console.print(table)
        for p in entry.get("problems") or []:
            line = Text(f"  ✗ {safe_text(p.get('code'))}: ", style="bold red")
            line.append(safe_text(p.get("summary", "")))
            console.print(line)
        if entry.get("expiry_warning"):
            w = entry["expiry_warning"]
            console.print(Text(safe_text(f"  ! expires in {w.get('expires_in')} ({w.get('not_after')})"),
                               style="yellow"))


def _features(doc: dict, console: Console) -> None:
    _heading(console, "Features")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value, mood in feature_rows(doc):
        table.add_row(label, Text(safe_text(value), style=_MOOD[mood]))
    console.print(table)


def _vulnerabilities(doc: dict, console: Console) -> None:
    rows = vulnerability_rows(doc)
    if not rows:
        return
    _heading(console, "Vulnerabilities")
    table = Table(show_edge=False, pad_edge=False, header_style="bold", expand=False)
    table.add_column("check", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    for name, verdict, mood, evidence in rows:
        table.add_row(_t(name), Text(verdict, style=_MOOD[mood]), _t(evidence))
    console.print(table)


def _fixes(f: dict, stacks: tuple[str, ...] | None) -> list[dict]:
    fixes = [x for x in f.get("fixes") or [] if not stacks or x.get("stack") in stacks]
    return sorted(fixes, key=lambda x: _STACK_ORDER.index(x["stack"])
                  if x.get("stack") in _STACK_ORDER else len(_STACK_ORDER))


def _fixes_table(fixes: list[dict]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")  # configuration lines are copied: fold, never cut
    for fix in fixes:
        body = Text(safe_text(fix.get("text", "")))
        if fix.get("example"):
            body.append("\n" + safe_text(fix["example"]), style="green")
        if fix.get("source"):
            body.append("\n" + safe_text(fix["source"]), style="dim")
        table.add_row(_t(fix.get("stack")), body)
    return table


def _findings(doc: dict, console: Console, stacks: tuple[str, ...] | None) -> None:
    found = sorted_findings(doc)
    _heading(console, f"Findings ({len(found)})")
    if not found:
        console.print(Text("nothing to report", style="green"))
    for f in found:
        sev = f.get("severity", "info")
        parts: list[Any] = [Text(safe_text(f.get("title", "")), style="bold")]
        if f.get("evidence"):
            ev = Text("evidence: ", style="dim")
            ev.append(safe_text(f["evidence"]))
            parts.append(ev)
        aff = f.get("affects") or {}
        if aff.get("summary"):
            parts.append(Text(safe_text(aff["summary"]),
                              style="bold magenta" if aff.get("clients_broken") else "magenta"))
        fixes = _fixes(f, stacks)
        if fixes:
            parts += [Text("Fix", style="underline"), _fixes_table(fixes)]
        elif f.get("fixes"):
            others = ", ".join(dict.fromkeys(str(x.get("stack")) for x in f["fixes"]))
            parts.append(Text(safe_text(f"fixes for {others} (not among the stacks asked for)"), style="dim"))
        console.print(Panel(Group(*parts), title=Text(safe_text(f"{sev} · {f.get('id')}"),
                                                      style=_SEVERITY_STYLE.get(sev, "")),
                            title_align="left", border_style=_BORDER.get(sev, "")))


def _simulation(doc: dict, console: Console) -> None:
    sims = doc.get("simulation") or []
    if not sims:
        return
    ok = sum(1 for s in sims if s.get("outcome") == "ok")
    _heading(console, f"Clients ({ok} of {len(sims)} connect; decided from the scan, no new connections)")
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("client", no_wrap=True)  # names are what --profile takes
    table.add_column("", no_wrap=True)
    table.add_column("result", overflow="fold")
    for s in sims:
        if s.get("outcome") == "ok":
            parts = [s.get("version"), s.get("cipher_suite"), s.get("group"), s.get("signature_scheme")]
            table.add_row(_t(s.get("profile")), Text("✓", style="bold green"),
                          Text(safe_text("  ".join(p for p in parts if p)), style="green"))
        else:
            result = Text(safe_text(", ".join(s.get("codes") or []) or "fails"), style="bold red")
            result.append(safe_text(f": {s.get('reason', '')}"))
            table.add_row(_t(s.get("profile")), Text("✗", style="bold red"), result)
    console.print(table)


def _mozilla(doc: dict, console: Console) -> None:
    m = doc.get("mozilla")
    if not m:
        return
    _heading(console, f"Mozilla Server Side TLS {m.get('guidelines', '')}")
    line = Text("closest configuration: ")
    line.append(safe_text(m.get("closest")), style="bold")
    if m.get("against"):
        line.append(safe_text(f"   compared against: {m['against']}"))
    console.print(line)
    for name, c in (m.get("configurations") or {}).items():
        head = Text(f"{'✓' if c.get('meets') else '✗'} {safe_text(name)}",
                    style="bold green" if c.get("meets") else ("bold" if name == m.get("against") else ""))
        if c.get("meets"):
            head.append(": meets it", style="green")
            console.print(head)
            continue
        n = len(c.get("changes") or [])
        head.append(f": {n} change{'s' if n != 1 else ''} to meet it", style="dim")
        console.print(head)
        for change in c.get("changes") or []:
            console.print(Text(safe_text(f"    - {change}")))
    first = next(iter((m.get("configurations") or {}).values()), {})
    for note in first.get("not_checked") or []:
        console.print(Text(safe_text(f"not checked: {note}"), style="dim"))
    if m.get("source"):
        console.print(Text(safe_text(f"source: {m['source']}"), style="dim"))


def render_scan(doc: dict, console: Console | None = None, *, simulation: bool = True,
                stacks: tuple[str, ...] | None = None) -> None:
    """The whole report of one scan document (``scan()``'s result, as ``--json`` prints it).
    ``stacks`` limits the fixes shown to these server stacks (nginx, apache, haproxy, iis,
    java-server, go, generic, ...); ``simulation=False`` leaves out the client table."""
    console = console or Console(highlight=False)
    _header(doc, console)
    if doc.get("error"):
        console.print(Panel(Text(safe_text(error_message(doc))), title="[bold red]scan failed[/]",
                            border_style="red", title_align="left"))
        return
    _findings(doc, console, stacks)
    _protocols(doc, console)
    _suites(doc, console)
    _groups(doc, console)
    _certificates(doc, console)
    _features(doc, console)
    _vulnerabilities(doc, console)
    if simulation:
        _simulation(doc, console)
    _mozilla(doc, console)


@contextlib.contextmanager
def scan_progress(console: Console | None = None) -> Iterator[Callable[[str, float], None]]:
    """A progress bar for ``scan(progress=...)``: yields the callback ``(step, fraction)``.
    Drawn on stderr so that ``--json`` on stdout stays clean; nothing is drawn when stderr
    is not a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    console = console or Console(stderr=True, highlight=False)
    progress = Progress(TextColumn("[bold]scan[/]"), BarColumn(), TextColumn("{task.description}"),
                        TimeElapsedColumn(), console=console, transient=True,
                        disable=not console.is_terminal)
    with progress:
        task = progress.add_task("starting", total=1.0)

        def update(step: str, fraction: float) -> None:
            progress.update(task, completed=max(0.0, min(1.0, fraction)), description=safe_text(step))

        yield update
