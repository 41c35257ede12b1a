"""A simulation for the terminal: one row per client, like SSL Labs' handshake
simulation, but with the reason in every failing row."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..workbench.render import safe_text


def render_simulation(doc: dict, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    head = Text("tlslab simulate ", style="bold")
    head.append(safe_text(f"{doc['target']}  name {doc['server_name']}"))
    console.print(head)
    table = Table(header_style="bold", show_lines=False)
    table.add_column("client", no_wrap=True)  # names are copied into --profile
    table.add_column("", no_wrap=True)
    table.add_column("result")
    for r in doc["results"]:
        if r["connects"]:
            parts = [r["version"], r["cipher_suite"], r["group"], r["signature_scheme"]]
            if r["alpn"]:
                parts.append(f"ALPN {r['alpn']}")
            result = Text(safe_text("  ".join(p for p in parts if p)), style="green")
            mark = Text("✓", style="bold green")
        else:
            result = Text()
            for i, c in enumerate(r["causes"]):
                if i:
                    result.append("\n")
                result.append(safe_text(c["code"]), style="bold red")
                result.append(safe_text(f": {c['summary']}"))
            mark = Text("✗", style="bold red")
        label = safe_text(r["profile"]) + ("" if r["recorded_client_hello"] else " *")
        table.add_row(label, mark, result)
    console.print(table)
    built = any(not r["recorded_client_hello"] for r in doc["results"])
    console.print(Text(safe_text(
        f"{doc['connects']} connect, {doc['fails']} fail; {doc['handshake_count']} handshakes in "
        f"{doc['elapsed_ms'] / 1000:.2f} s." + ("  * ClientHello built from the profile's lists "
                                                "(no recording)" if built else "")), style="dim"))
    for w in doc.get("warnings", []):
        console.print(Text(safe_text(f"  ! {w['code']}: {w['summary']}"), style="yellow"))
