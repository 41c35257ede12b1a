"""A diagnosis for the terminal (rich): one panel per cause with its summary, evidence and
fixes, then warnings, how other clients fare, and the probes that ran."""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..workbench.render import safe_text

#: evidence keys shown first, with their label
_LABELS = {
    "refusal": "refusal",
    "client_offers": "client offers",
    "server_accepts": "server accepts",
    "server_speaks": "server speaks",
    "server_key": "server key",
    "server_signed_with": "server signs with",
    "tlslab_refused": "tlslab refused",
    "certificate_request": "certificate request",
    "client_certificate_sent": "client certificate sent",
    "name_asked": "name asked",
    "names_present": "names in certificate",
    "common_name": "subject CN",
    "not_after": "not after",
    "expired_ago": "expired",
    "not_before": "not before",
    "starts_in": "valid in",
    "root_subject": "root",
    "root_sha256": "root SHA-256",
    "missing_issuer": "missing issuer",
    "aia_ca_issuers": "AIA caIssuers",
    "aia_fetch": "AIA fetch",
    "subject": "certificate",
    "sha256": "SHA-256",
    "key": "key",
    "signature_algorithm": "signature",
    "extended_key_usage": "extended key usage",
    "key_usage": "key usage",
    "chain_as_sent": "chain as sent",
    "deciding_probes": "deciding probes",
    "probe": "probe",
    "outcome": "outcome",
    "first_bytes_text": "first bytes",
    "analysis": "analysis",
}
_SKIP = {"path", "certificate", "analysis_code", "first_bytes_hex", "issuer_candidate", "now",
         "rsa_bits", "sni_sent", "root_sent_by_server", "profiles", "ca_issuers"}


def _t(value: Any) -> str:
    return safe_text(value)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and "probe" in value[0]:
            return "; ".join(f"{v['probe']}: {v['outcome']}" for v in value)
        return ", ".join(_value(v) for v in value) or "none"
    if isinstance(value, dict):
        if "outcome" in value and "probe" in value:
            return f"{value['probe']}: {value['outcome']}"
        if "fetched" in value:
            if not value.get("fetched"):
                return f"not fetched ({value.get('reason')})"
            done = "completes the chain" if value.get("completes_chain") else "does not complete the chain"
            return f"{value.get('url')}: {_value(value.get('certificates'))}, {done}"
        if "ca_names" in value:
            return (f"{value.get('version')}, CAs: {_value(value.get('ca_names'))}; schemes: "
                    f"{_value(value.get('signature_algorithms')[:6])}")
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)


def _evidence_table(evidence: dict) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    keys = [k for k in _LABELS if k in evidence] + sorted(
        k for k in evidence if k not in _LABELS and k not in _SKIP)
    for k in keys:
        if k in _SKIP:
            continue
        table.add_row(_t(_LABELS.get(k, k.replace("_", " "))), Text(_t(_value(evidence[k]))))
    return table


def _fixes_table(fixes: list[dict]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="cyan", no_wrap=True)
    # configuration lines are copied: fold them at the edge, never cut them
    table.add_column(overflow="fold")
    for side in ("client", "server"):
        for fix in (f for f in fixes if f["side"] == side):
            body = Text(_t(fix["text"]))
            if fix.get("example"):
                body.append("\n" + _t(fix["example"]), style="green")
            table.add_row(_t(f"{side} · {fix['stack']}"), body)
    return table


def render_report(doc: dict, console: Console | None = None, *, show_probes: bool = True) -> None:
    """``doc`` is :meth:`Report.to_json` (the human view shows exactly what --json says)."""
    console = console or Console(highlight=False)
    causes = [c for c in doc["causes"] if c["code"] != "ok"]
    head = Text()
    head.append("tlslab diagnose ", style="bold")
    head.append(_t(doc["target"]))
    if doc.get("server_name"):
        head.append(_t(f"  name {doc['server_name']}"))
    head.append(_t(f"  profile {', '.join(doc['profiles'])}"))
    console.print(head)
    if not causes:
        ok = doc["causes"][0]
        console.print(Panel(Text(_t(ok["summary"])), title="[bold green]ok[/]", border_style="green",
                            title_align="left"))
    for c in causes:
        parts: list[Any] = [Text(_t(c["summary"]), style="bold")]
        if c.get("profiles") and len(doc["profiles"]) > 1:
            parts.append(Text(_t(f"breaks: {', '.join(c['profiles'])}"), style="dim"))
        parts += [Text(""), Text("Evidence", style="underline"), _evidence_table(c["evidence"])]
        if c.get("fixes_note"):
            parts += [Text(""), Text(_t(c["fixes_note"]), style="yellow")]
        if c.get("fixes"):
            parts += [Text(""), Text("Fixes", style="underline"), _fixes_table(c["fixes"])]
        console.print(Panel(Group(*parts), title=f"[bold red]✗ {_t(c['code'])}[/]",
                            border_style="red", title_align="left"))
    for note in doc.get("notes") or []:
        console.print(Text(_t(f"note: {note}"), style="dim"))
    if doc.get("written_chain"):
        console.print(Text(_t(f"the chain the server should send was written to {doc['written_chain']}"),
                           style="green"))
    if doc.get("warnings"):
        console.print(Text("Warnings (not what breaks this client)", style="bold yellow"))
        for w in doc["warnings"]:
            console.print(Text(_t(f"  ! {w['code']}: {w['summary']}"), style="yellow"))
    others = doc.get("other_profiles") or []
    if others:
        works = [o["profile"] for o in others if o["works"]]
        fails = [f"{o['profile']} ({', '.join(o['causes'])})" for o in others if not o["works"]]
        line = Text("Other clients: ", style="bold")
        line.append(_t(f"works for {', '.join(works)}" if works else "works for none of them"))
        if fails:
            line.append(_t(f"; fails for {', '.join(fails)}"))
        console.print(line)
    if show_probes:
        table = Table(title=None, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("probe", ratio=2, overflow="fold")
        table.add_column("outcome", ratio=3, overflow="fold")
        table.add_column("ms", justify="right", no_wrap=True, min_width=3)
        for h in doc["handshakes"]:
            style = "green" if h["outcome"] == "ok" else ("dim" if h["outcome"] == "skipped" else "red")
            table.add_row(_t(h["probe"]), Text(_t(h["summary"]), style=style),
                          f"{h['elapsed_ms']:.0f}")
        console.print(Text(_t(f"Probes: {doc['handshake_count']} handshakes in "
                              f"{doc['elapsed_ms'] / 1000:.2f} s"), style="bold"))
        console.print(table)
