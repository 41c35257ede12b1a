"""``tlslab fingerprint``: JA3 and JA4 of a ClientHello, or of every ClientHello in a capture,
and the closest known client profile.

Arguments and output only: finding ClientHellos is :mod:`tlslab.capture`'s, fingerprints
and profile matching :mod:`tlslab.profiles.fingerprint`'s.
"""
from __future__ import annotations

import json
import math
import sys
from functools import partial
from pathlib import Path
from typing import Any, Optional

import typer

from .common import _fail_line, _out, run_command
from .main import app

EPILOG = """\
[bold]Examples[/bold]

  tlslab fingerprint hello.bin                 # a ClientHello: TLS record(s) or handshake message
  tlslab fingerprint hello.hex                 # the same as hex text (spaces, colons, 0x allowed)
  tlslab fingerprint trace.pcapng              # every ClientHello in a capture, any port
  tlslab fingerprint trace.pcap --json | jq '.client_hellos[].ja4.ja4'
  tlslab fingerprint trace.pcap --raw          # also JA4_r / JA4_o / JA4_ro

JA3: the Salesforce definition (MD5 of version, suites, extensions, groups, point formats;
GREASE left out).  JA4: FoxIO's TLS client fingerprint (BSD-3-Clause); the other JA4+
methods are not implemented.  The closest profile is an exact JA4 match among the
profiles with a recorded ClientHello, else the most similar one (suites, extensions,
groups, signature algorithms, versions, ALPN) with its score; below 0.80 "no close
profile".

--json prints {"file", "kind", "format", "client_hellos": [{"connection", "offset",
"ja3": {"string", "hash"}, "ja4": {"ja4", "ja4_r", "ja4_o", "ja4_ro"}, "offer",
"closest_profile", "candidates"}], "problems"}, and {"file", "error": {"code",
"message"}} for bad input.

Exit codes: 0 at least one ClientHello; 1 none found in the capture; 2 bad input
(missing file, neither a ClientHello nor a capture).
"""


class _BadInput(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@app.command(epilog=EPILOG)
def fingerprint(
    file: Optional[Path] = typer.Argument(None, metavar="FILE",
                                          help="A ClientHello (binary or hex; a TLS record or a "
                                               "handshake message) or a pcap/pcapng capture."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also on bad input)."),
    raw: bool = typer.Option(False, "--raw", help="Also show JA4_r, JA4_o and JA4_ro."),
) -> None:
    """JA3 and JA4 of a ClientHello or of every ClientHello in a capture, and the closest
    known client profile."""
    name = str(file) if file is not None else None
    code = run_command(lambda: _fingerprint(file, json_out, raw),
                       emit_error=partial(_error, json_out, name), bad_input=(_BadInput,),
                       failure=(), unexpected="unexpected error: {error}")
    raise typer.Exit(code)


def _error(json_out: bool, name: Optional[str], code: str, message: str) -> None:
    message = " ".join(message.split())
    if json_out:
        print(json.dumps({"file": name, "error": {"code": code, "message": message}}, indent=2))
    _fail_line(message)


def _fingerprint(file: Optional[Path], json_out: bool, raw: bool) -> int:
    from ..capture import CaptureError, NotAClientHello, hellos_in_file
    from ..profiles.fingerprint import closest_profiles, fingerprint as fp_of, known_hellos

    if file is None:
        raise _BadInput("missing-file", "missing FILE: a ClientHello or a pcap/pcapng capture "
                                        "(try --help)")
    if not file.exists():
        raise _BadInput("missing-file", f"{file}: no such file")
    if file.is_dir():
        raise _BadInput("missing-file", f"{file}: is a directory, not a file")
    try:
        found = hellos_in_file(file)
    except CaptureError as e:
        raise _BadInput("unreadable", str(e)) from None
    except NotAClientHello as e:
        raise _BadInput("not-a-client-hello-or-capture", str(e)) from None
    known = known_hellos()
    items = []
    for h in found.hellos:
        fp = fp_of(h.hello, "t")
        matches = closest_profiles(h.hello, known, limit=3)
        items.append((h, fp, matches))
    doc = _document(found, items, known)
    if json_out:
        print(json.dumps(doc, indent=2))
    else:
        _render(doc, raw)
    sys.stdout.flush()
    return 0 if items else 1


# --------------------------------------------------------------------------- output

def _document(found, items, known) -> dict[str, Any]:
    from ..profiles.fingerprint import THRESHOLD
    hellos = []
    for h, fp, matches in items:
        entry: dict[str, Any] = {}
        c = h.connection
        entry["connection"] = None if c is None else {
            "index": c.index, "client": c.client, "server": c.server,
            "roles": "from the TCP handshake" if c.roles in ("syn", "syn-ack") else
            "guessed (the capture starts mid-connection)"}
        entry["offset"] = h.offset
        entry["records"] = h.records
        if h.upgraded_from:
            entry["after"] = h.upgraded_from
        entry.update(fp.to_json())
        best = matches[0] if matches else None
        close = best is not None and (best.exact or best.score >= THRESHOLD)
        entry["closest_profile"] = best.to_json() if close else None
        entry["candidates"] = [m.to_json() for m in matches]
        hellos.append(entry)
    return {"file": found.path, "kind": found.kind, "format": found.format,
            "connections": found.connections if found.kind == "capture" else None,
            "packets": found.packets if found.kind == "capture" else None,
            "profiles_with_client_hello": len(known),
            "client_hellos": hellos, "problems": list(found.problems)}


def _render(doc: dict[str, Any], raw: bool) -> None:
    from rich.table import Table
    from rich.text import Text
    from ..workbench.render import safe_text
    from ..profiles.fingerprint import THRESHOLD

    console = _out()
    hellos = doc["client_hellos"]
    if doc["kind"] == "capture":
        console.print(Text(safe_text(
            f"{doc['file']}: {doc['format']} capture, {doc['packets']} packets, "
            f"{doc['connections']} TCP connections, {len(hellos)} ClientHello"
            f"{'' if len(hellos) == 1 else 's'}"), style="bold"))
    else:
        console.print(Text(safe_text(f"{doc['file']}: a ClientHello ({doc['format']})"),
                           style="bold"))
    for i, h in enumerate(hellos):
        console.print()
        c = h["connection"]
        if c is not None:
            where = (f"connection {c['index']}: {c['client']} → {c['server']}"
                     + (f", after {h['after']}" if h.get("after") else "")
                     + (f", byte {h['offset']} of the client's stream" if h["offset"] else ""))
            if c["roles"].startswith("guessed"):
                where += " (client and server guessed: the capture starts mid-connection)"
            console.print(Text(safe_text(f"ClientHello {i + 1} — {where}"), style="bold cyan"))
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("JA3", safe_text(h["ja3"]["string"]))
        table.add_row("JA3 hash", h["ja3"]["hash"])
        table.add_row("JA4", h["ja4"]["ja4"])
        if raw:
            table.add_row("JA4_r", h["ja4"]["ja4_r"])
            table.add_row("JA4_o", h["ja4"]["ja4_o"])
            table.add_row("JA4_ro", h["ja4"]["ja4_ro"])
        table.add_row("offers", safe_text(_offer_line(h["offer"])))
        table.add_row("closest", _closest_text(h, THRESHOLD))
        console.print(table)
    if not hellos:
        console.print()
        what = (f"no ClientHello in the {doc['connections']} TCP connections of this capture"
                if doc["kind"] == "capture" else "no ClientHello")
        console.print(Text(what, style="yellow"))
    if doc["profiles_with_client_hello"] == 0 and hellos:
        console.print(Text("No profile has a recorded ClientHello yet: nothing to compare with.",
                           style="dim"))
    for p in doc["problems"]:
        console.print(Text(safe_text(f"note: {p}"), style="dim"))


def _offer_line(offer: dict[str, Any]) -> str:
    parts = [", ".join(offer["versions"]) or "no version",
             f"{len(offer['cipher_suites'])} suites",
             f"{len(offer['extensions'])} extensions"]
    if offer["groups"]:
        parts.append("groups " + ", ".join(offer["groups"][:4])
                     + (" …" if len(offer["groups"]) > 4 else ""))
    parts.append(f"SNI {offer['server_name']}" if offer["server_name"] else "no SNI")
    parts.append("ALPN " + ", ".join(offer["alpn"]) if offer["alpn"] else "no ALPN")
    if offer["grease"]:
        parts.append("GREASE")
    return " · ".join(parts)


def _closest_text(h: dict[str, Any], threshold: float):
    from rich.text import Text
    from ..workbench.render import safe_text
    best = h["closest_profile"]
    cands = h["candidates"]
    if best is not None:
        label = f"{best['profile']} ({best['client']} {best['version']})"
        if best["exact_ja4"]:
            also = best.get("same_ja4") or []
            more = (f" (so do {', '.join(also[:4])}" + (" …" if len(also) > 4 else "") + ")"
                    if also else "")
            return Text(safe_text(f"{label}: same JA4{more}"), style="green")
        diffs = "; ".join(best["differences"][:3])
        return Text(safe_text(f"{label}: score {_floor2(best['score'])}"
                              + (f" — differs in {diffs}" if diffs else "")), style="green")
    if not cands:
        return Text("no profile to compare with", style="dim")
    top = cands[0]
    return Text(safe_text(f"no close profile (best: {top['profile']} at {_floor2(top['score'])}, "
                          f"below {threshold:.2f})"), style="yellow")


def _floor2(score: float) -> str:
    """0.999 is not shown as 1.00, which only an exact match earns."""
    return f"{math.floor(score * 100) / 100:.2f}"
