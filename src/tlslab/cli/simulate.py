"""``tlslab simulate``: which real clients would connect to this server, and why not.

Arguments and output only; the work is :mod:`tlslab.diagnose.simulate`.
"""
from __future__ import annotations

import asyncio
import json
import math
import sys
from functools import partial
from pathlib import Path
from typing import List, Optional

import typer

from .diagnose import _check_syntax, _profiles, _resolve
from .common import _fail_line
from .common import (UsageProblem, _check_file, _check_host_name, _out, parse_target,
                     run_command)
from .main import app

EPILOG = """\
[bold]Examples[/bold]

  tlslab simulate example.com                          # every profile, system trust store
  tlslab simulate localhost:4433 --ca-file ca.pem --profile java-8u151 --profile browser
  tlslab simulate localhost:4433 --ca-file ca.pem --json
  tlslab simulate --list                               # the profiles, their versions and dates

Each profile's own ClientHello (the recorded bytes when the profile has them) goes through the whole handshake and the profile's own certificate checks (CN fallback, SHA-1, key sizes, AIA fetching); a client that would fail gets the reason in the diagnosis vocabulary (see `tlslab diagnose --help`). --ca-file stands in for every profile's trust store.

--json prints {"target", "results": [{"profile", "client", "connects", "version", "cipher_suite", "group", "signature_scheme", "alpn", "causes": [{"code", "summary", "evidence"}]}]}, also for bad input ("error").

Exit codes: 0 every simulated client connects; 1 at least one would fail; 2 bad input.
"""


@app.command(epilog=EPILOG)
def simulate(
    target: Optional[str] = typer.Argument(None, metavar="HOST[:PORT]",
                                           help="Server to test; IPv6 as [::1]:4433; default port 443."),
    servername: Optional[str] = typer.Option(None, "--servername", "--sni", metavar="NAME",
                                             help="Name for SNI and the certificate check (default: HOST)."),
    ca_file: Optional[Path] = typer.Option(None, "--ca-file", metavar="PEM",
                                           help="Trust these CAs (for every profile) instead of the system store."),
    profile: Optional[List[str]] = typer.Option(None, "--profile", metavar="NAME",
                                                help="A client to simulate (repeatable; name or .toml file)."),
    all_profiles: bool = typer.Option(False, "--all", help="Every built-in profile (the default)."),
    list_profiles: bool = typer.Option(False, "--list", help="List the profiles and exit."),
    timeout: str = typer.Option("10", "--timeout", metavar="SECONDS",
                                help="Time limit for the whole simulation, in seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also on failure)."),
) -> None:
    """Say which clients would connect to a server, and exactly why the others would not."""
    code = run_command(lambda: _simulate(target, servername, ca_file, profile, all_profiles,
                                         list_profiles, timeout, json_out),
                       emit_error=partial(_emit_error, json_out, target))
    raise typer.Exit(code)


def _emit_error(json_out: bool, target: Optional[str], code: str, message: str) -> None:
    """simulate's own JSON shape on failure: ``{"target", "results": [], "error"}``."""
    if json_out:
        print(json.dumps({"target": target, "results": [],
                          "error": {"code": code, "message": " ".join(message.split())}}, indent=2))
    _fail_line(message)


def _natural(name: str) -> tuple:
    """python-3.9 before python-3.10 (numbers compared as numbers)."""
    import re
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _list(json_out: bool) -> int:
    from ..profiles import builtin_profile_names, load_profile
    profiles = [load_profile(n) for n in sorted(builtin_profile_names(), key=_natural)]
    if json_out:
        print(json.dumps({"profiles": [{"name": p.name, "client": p.client, "version": p.version,
                                        "released": p.released, "summary": p.summary,
                                        "recorded_client_hello": p.offer.client_hello is not None}
                                       for p in profiles]}, indent=2))
        return 0
    from rich.table import Table
    from ..workbench.render import safe_text
    table = Table(header_style="bold")
    for col in ("profile", "client", "version", "released", "hello", "what it is"):
        # names are copied into --profile: never cut them
        table.add_column(col, no_wrap=col in ("profile", "released", "hello"))
    for p in profiles:
        table.add_row(*(safe_text(x) for x in (p.name, p.client, p.version, p.released,
                                                "recorded" if p.offer.client_hello else "built",
                                                p.summary)))
    _out().print(table)
    return 0


def _simulate(target, servername, ca_file, profile_names, all_profiles, list_profiles,
              timeout_text, json_out) -> int:
    from ..diagnose import Target
    from ..diagnose.simulate import simulate as run_simulation
    from ..profiles import builtin_profile_names
    from ..proto.certificates import load_trust_store

    if list_profiles:
        return _list(json_out)
    if not target:
        raise UsageProblem("missing HOST[:PORT] (try --help)")
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise UsageProblem(f"--timeout {timeout_text!r}: expected seconds") from None
    if not (math.isfinite(timeout) and 0.2 <= timeout <= 600):
        raise UsageProblem(f"--timeout {timeout_text}: expected seconds, between 0.2 and 600")
    if profile_names and all_profiles:
        raise UsageProblem("--profile and --all exclude each other")
    host, port = parse_target(target)
    _check_host_name(host)
    _check_syntax(host.strip("[]"), "host")
    if servername is not None:
        _check_host_name(servername, "--servername")
        _check_syntax(servername, "--servername")
    profiles = _profiles(profile_names or sorted(builtin_profile_names(), key=_natural))
    ca_path = _check_file(ca_file, "--ca-file")
    try:
        trust = load_trust_store(ca_path)
    except OSError as e:
        raise UsageProblem(f"--ca-file {ca_file}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageProblem(f"--ca-file {ca_file}: {e}") from None
    name = servername or host.strip("[]")
    t = Target(host=host.strip("[]"), port=port, server_name=name, trust=trust, ca_file=ca_path,
               timeout=timeout)
    _resolve(t.host, port, timeout)
    sim = asyncio.run(run_simulation(t, profiles))
    doc = sim.to_json()
    if json_out:
        print(json.dumps(doc, indent=2, default=str))
    else:
        from ..view.simulation import render_simulation
        render_simulation(doc, _out())
    sys.stdout.flush()
    return 0 if doc["fails"] == 0 else 1
