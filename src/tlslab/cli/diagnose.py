"""``tlslab diagnose``: why does a handshake with this server fail, for this client?

Arguments and output only; the plan lives in :mod:`tlslab.diagnose`.
"""
from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import sys
from functools import partial
from pathlib import Path
from typing import List, Optional

import typer

from .common import (UsageProblem, _check_file, _check_host_name, _fail_line,
                     _load_client_identity, _out, parse_target, run_command)
from .main import app

EPILOG = """\
[bold]Examples[/bold]

  tlslab diagnose example.com                          # port 443, system trust store
  tlslab diagnose localhost:4433 --ca-file ca.pem      # trust this CA instead
  tlslab diagnose localhost:4433 --ca-file ca.pem --profile browser --profile tls12-only
  tlslab diagnose 10.0.0.5:8443 --servername api.internal --json
  tlslab diagnose localhost:4433 --ca-file ca.pem --write-chain fullchain.pem
  tlslab diagnose localhost:4433 --cert client.pem --key client.key --stack java
  tlslab diagnose localhost:4433 --profile java-8u151     # any client of the library (tlslab simulate --list)
  tlslab diagnose --list-profiles

Profiles (--profile, repeatable; default "default") model the client that fails: default (tlslab's modern client), browser (a current Chrome), tls12-only, tls13-only, no-sni, alpn-http, alpn-h2, any client of the library such as java-17 or python-3.11, or a path to a profile TOML file.

Causes: ok, untrusted-root, missing-intermediate, self-signed, expired, not-yet-valid, hostname-mismatch, no-san, protocol-version-mismatch, no-common-cipher, no-common-group, no-common-signature-algorithm, client-certificate-required, weak-key, sha1-signature, wrong-key-usage, sni-required, alpn-mismatch, not-tls, connection-refused, timeout (see the README).

--json prints {"target", "ok", "causes": [{"code", "summary", "evidence", "fixes"}], "warnings", "other_profiles", "handshakes", ...}, also on failure and for bad input.

Exit codes: 0 the server is fine for the profile(s); 1 a cause was found; 2 bad input.
"""


@app.command(epilog=EPILOG)
def diagnose(
    target: Optional[str] = typer.Argument(None, metavar="HOST[:PORT]",
                                           help="Server to diagnose; IPv6 as [::1]:4433; default port 443."),
    servername: Optional[str] = typer.Option(None, "--servername", "--sni", metavar="NAME",
                                             help="Name for SNI and the certificate check (default: HOST)."),
    ca_file: Optional[Path] = typer.Option(None, "--ca-file", metavar="PEM",
                                           help="Trust these CA certificates instead of the system store."),
    profile: Optional[List[str]] = typer.Option(None, "--profile", metavar="NAME",
                                                help="The client to judge for (repeatable): a profile "
                                                     "name or a .toml file; default: default."),
    cert: Optional[Path] = typer.Option(None, "--cert", metavar="PEM",
                                        help="Client certificate chain (leaf first) to offer."),
    key: Optional[Path] = typer.Option(None, "--key", metavar="PEM", help="Private key of --cert."),
    timeout: float = typer.Option(5.0, "--timeout", metavar="SECONDS",
                                  help="Time limit for the whole diagnosis (default 5)."),
    write_chain: Optional[Path] = typer.Option(None, "--write-chain", metavar="FILE",
                                               help="With a missing intermediate fetched from AIA: "
                                                    "write the chain the server should send."),
    stack: Optional[List[str]] = typer.Option(None, "--stack", metavar="NAME",
                                              help="Show only fixes for these stacks (java, curl, "
                                                   "openssl, python, go, node, nginx, apache, ...)."),
    no_aia: bool = typer.Option(False, "--no-aia", help="Never fetch a missing intermediate."),
    probes: bool = typer.Option(True, "--probes/--no-probes", help="List the probes that ran."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also on failure)."),
    list_profiles: bool = typer.Option(False, "--list-profiles", help="List the profiles and exit."),
) -> None:
    """Say why a TLS handshake with a server fails, with the evidence and the fix per stack."""
    code = run_command(lambda: _diagnose(target, servername, ca_file, profile, cert, key,
                                         timeout, write_chain, stack, no_aia, probes, json_out,
                                         list_profiles),
                       emit_error=partial(_emit_error, json_out, target))
    raise typer.Exit(code)


def _emit_error(json_out: bool, target: Optional[str], code: str, message: str) -> None:
    if json_out:
        print(json.dumps({"target": target, "ok": False, "causes": [], "handshakes": [],
                          "error": {"code": code, "message": " ".join(message.split())}}, indent=2))
    _fail_line(message)


def _profiles(names: Optional[List[str]]):
    from ..profiles import ProfileError, load_profile
    out = []
    for n in [x.strip() for item in (names or ["default"]) for x in item.split(",") if x.strip()]:
        try:
            p = load_profile(n)
        except ProfileError as e:
            raise UsageProblem(f"--profile: {e}") from None
        if p.name not in [q.name for q in out]:
            out.append(p)
    if not out:
        raise UsageProblem("--profile: no profile named")
    return out


_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _check_syntax(name: str, option: str) -> None:
    """A DNS name (RFC 1123 §2.1 labels, IDNA for Unicode; '_' tolerated as resolvers do)
    or an IP literal."""
    from ..probe import is_ip
    if is_ip(name):
        return
    try:
        ascii_name = name.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_name = ""
    if not ascii_name or len(ascii_name) > 253 or not all(
            _LABEL.match(label) for label in ascii_name.split(".")):
        raise UsageProblem(f"bad host name {name!r} ({option}): expected a DNS name or an IP address")


def _resolve(host: str, port: int, timeout: float) -> None:
    """A name that does not resolve is bad input (exit 2), said in one line."""
    from ..probe import is_ip
    if is_ip(host):
        return

    async def lookup() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)

    try:
        asyncio.run(lookup())
    except socket.gaierror as e:
        raise UsageProblem(f"cannot resolve host {host!r}: {e.strerror or e}") from None
    except asyncio.TimeoutError:
        raise UsageProblem(f"cannot resolve host {host!r}: no answer within {timeout:g} s") from None


def _list_profiles(json_out: bool) -> int:
    from ..profiles import builtin_profile_names, load_profile
    from .simulate import _natural
    profiles = [load_profile(n) for n in sorted(builtin_profile_names(), key=_natural)]
    if json_out:
        print(json.dumps({"profiles": [p.to_json() for p in profiles]}, indent=2))
        return 0
    from rich.table import Table
    from ..workbench.render import safe_text
    table = Table(header_style="bold")
    for col in ("profile", "client", "version", "released", "what it is"):
        table.add_column(col, no_wrap=col in ("profile", "released"))  # names are copied
    for p in profiles:
        table.add_row(*(safe_text(x) for x in (p.name, p.client, p.version, p.released, p.summary)))
    _out().print(table)
    return 0


def _diagnose(target, servername, ca_file, profile_names, cert, key, timeout, write_chain,
              stack, no_aia, probes, json_out, list_profiles) -> int:
    from ..diagnose import Target, diagnose as run_diagnosis
    from ..diagnose.fixes import STACKS
    from ..proto.certificates import load_trust_store

    if list_profiles:
        return _list_profiles(json_out)
    if not target:
        raise UsageProblem("missing HOST[:PORT] (try --help)")
    host, port = parse_target(target)
    _check_host_name(host)
    if servername is not None:
        _check_host_name(servername, "--servername")
    if not (math.isfinite(timeout) and 0.2 <= timeout <= 600):
        raise UsageProblem(f"--timeout {timeout}: expected seconds, between 0.2 and 600")
    _check_syntax(host.strip("[]"), "host")
    if servername is not None:
        _check_syntax(servername, "--servername")
    profiles = _profiles(profile_names)
    stacks = tuple(s.strip().lower() for item in (stack or []) for s in item.split(",") if s.strip())
    for s in stacks:
        if s not in STACKS:
            import difflib
            close = difflib.get_close_matches(s, STACKS, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UsageProblem(f"--stack {s}: unknown{hint} (known: {', '.join(STACKS)})")
    if write_chain is not None:
        if write_chain.is_dir():
            raise UsageProblem(f"--write-chain {write_chain}: is a directory")
        parent = write_chain.parent if str(write_chain.parent) else Path(".")
        if not parent.is_dir():
            raise UsageProblem(f"--write-chain {write_chain}: no such directory {parent}")
    ca_path = _check_file(ca_file, "--ca-file")
    try:
        trust = load_trust_store(ca_path)
    except OSError as e:
        raise UsageProblem(f"--ca-file {ca_file}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageProblem(f"--ca-file {ca_file}: {e}") from None
    if ca_path and not trust:
        raise UsageProblem(f"--ca-file {ca_file}: no PEM certificate in it")
    chain, private_key = _load_client_identity(cert, key)
    name = servername or host.strip("[]")
    t = Target(host=host.strip("[]"), port=port, server_name=name, trust=trust, ca_file=ca_path,
               certificate_chain=chain, private_key=private_key, timeout=timeout,
               write_chain=str(write_chain) if write_chain else None, fetch_aia=not no_aia)
    _resolve(t.host, port, timeout)
    report = asyncio.run(run_diagnosis(t, profiles))
    notes: dict[str, str] = {}
    if stacks:
        for c in report.causes:
            mine = [f for f in c.fixes if f["stack"] in stacks]
            if not mine and c.fixes:
                # nothing to change on the user's side: say so, and show the other side's fixes
                sides = sorted({f["side"] for f in c.fixes})
                notes[c.code] = (f"No fix for {', '.join(stacks)} here: this is fixed on the "
                                 f"{' or '.join(sides)} side.")
                mine = [f for f in c.fixes if f["side"] == "server"] or c.fixes
            c.fixes = mine
    if write_chain is not None and report.written_chain is None:
        report.notes.append(f"--write-chain {write_chain}: nothing written (there is no missing "
                            "intermediate that could be fetched to complete the chain)")
    doc = report.to_json()
    for c in doc["causes"]:
        if c["code"] in notes:
            c["fixes_note"] = notes[c["code"]]
    if json_out:
        print(json.dumps(doc, indent=2, default=str))
    else:
        from ..view.diagnosis import render_report
        render_report(doc, _out(), show_probes=probes)
    sys.stdout.flush()
    return 0 if report.ok else 1
