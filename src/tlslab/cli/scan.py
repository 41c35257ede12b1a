"""``tlslab scan``: everything a server accepts, in which order, and what is wrong with it.

Arguments and output only; the work is :mod:`tlslab.scan`.
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

from .common import (UsageProblem, _check_file, _check_host_name, _fail_line, _out,
                     run_command)
from .main import app

EPILOG = """\
[bold]Examples[/bold]

  tlslab scan example.com                              # versions, suites, groups, chains, weaknesses
  tlslab scan localhost:4433 --ca-file ca.pem --json   # the whole document as JSON
  tlslab scan mail.example.com --starttls smtp          # port 25 by default
  tlslab scan localhost:4433 --against intermediate    # what to change for Mozilla's intermediate
  tlslab scan localhost:4433 --html report.html --stack nginx
  tlslab scan --targets hosts.txt --db scans.sqlite     # a fleet, on a local Dask cluster
  tlslab scan --targets hosts.txt --db scans.sqlite --diff

Every ClientHello is built byte by byte from the IANA registries, so suites, groups and versions tlslab itself cannot complete are found too; the server's first answer is enough for most questions. A server that picks by its own preference reveals its full cipher order (one connection per accepted suite).

--json prints {"target", "protocols", "cipher_suites": {version: {"accepted", "server_order", "order"}}, "groups", "signature_algorithms", "certificates", "session_resumption", "early_data", "ocsp_stapling", "alpn", "secure_renegotiation", "client_renegotiation", "fallback_scsv", "extended_master_secret", "encrypt_then_mac", "compression", "vulnerabilities", "findings", "simulation", "mozilla", "duration_s", ...}; on failure also "error".

STARTTLS: --starttls smtp|imap|pop3|ftp|xmpp|ldap|postgres|rdp speaks the protocol's own upgrade first.

Fleets: --targets FILE holds one target a line (HOST[:PORT] [servername=NAME] [starttls=PROTO], '#' comments); lines that cannot be read are reported and skipped. Targets are scanned on a local Dask cluster (or --cluster tcp://SCHEDULER:8786) within --rate connections a second overall and --per-host at once to a host, retried --retries times when a failure may pass, each within --timeout seconds; every result goes to --db (default ./tlslab-scans.sqlite) as soon as it finishes, and --diff says what changed on each host since its previous scan.

Exit codes: 0 the server was scanned; 1 it could not be scanned (unreachable, not TLS, STARTTLS refused) or, with --targets, some target failed or some line was skipped; 2 bad input (also: no Dask scheduler at --cluster, a --db file that is not SQLite).
"""

@app.command(epilog=EPILOG)
def scan(
    target: Optional[str] = typer.Argument(None, metavar="HOST[:PORT]",
                                           help="Server to scan; IPv6 as [::1]:4433; default port 443 "
                                                "(or the STARTTLS protocol's)."),
    servername: Optional[str] = typer.Option(None, "--servername", "--sni", metavar="NAME",
                                             help="Name for SNI and the certificate check (default: HOST)."),
    ca_file: Optional[Path] = typer.Option(None, "--ca-file", metavar="PEM",
                                           help="Judge certificates against these CAs instead of the system store."),
    starttls: Optional[str] = typer.Option(None, "--starttls", metavar="PROTO",
                                           help="smtp, imap, pop3, ftp, xmpp, ldap, postgres or rdp."),
    against: Optional[str] = typer.Option(None, "--against", metavar="CONFIG",
                                          help="Compare with Mozilla's modern, intermediate or old configuration."),
    active: bool = typer.Option(True, "--active/--no-active",
                                help="Run the active checks (Heartbleed, CCS injection, ROBOT, Ticketbleed)."),
    timeout: str = typer.Option("120", "--timeout", metavar="SECONDS",
                                help="Time limit for the whole scan of one server."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also on failure)."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE",
                                        help="Also write a self-contained HTML report."),
    stack: Optional[List[str]] = typer.Option(None, "--stack", metavar="NAME",
                                              help="Show only fixes for these server stacks (nginx, apache, "
                                                   "haproxy, iis, java-server, go, generic; repeatable)."),
    targets: Optional[Path] = typer.Option(None, "--targets", metavar="FILE",
                                           help="Scan every target in FILE (one HOST[:PORT] per line) on Dask."),
    cluster: str = typer.Option("local", "--cluster", metavar="local|tcp://HOST:8786",
                                help="With --targets: a local Dask cluster, or a scheduler's address."),
    db: Optional[Path] = typer.Option(None, "--db", metavar="FILE.sqlite",
                                      help="With --targets: keep every result in this SQLite file."),
    diff: bool = typer.Option(False, "--diff", help="With --targets and --db: what changed since the last scan."),
    rate: float = typer.Option(200.0, "--rate", metavar="N",
                               help="With --targets: at most N new connections a second overall."),
    per_host: int = typer.Option(2, "--per-host", metavar="N",
                                 help="With --targets: at most N connections at once to one host."),
    retries: int = typer.Option(2, "--retries", metavar="N",
                                help="With --targets: retries of a target that failed in a way that may pass."),
) -> None:
    """Find everything a server accepts (versions, suites and order, groups, chains,
    features, weaknesses), who each problem hurts, and how to fix it."""
    if targets is not None:
        raise typer.Exit(_fleet(targets, target, cluster, db, diff, json_out, timeout, active,
                                against, ca_file, rate, per_host, retries))
    code = run_command(lambda: _scan(target, servername, ca_file, starttls, against, active,
                                     timeout, json_out, html, db, diff, stack),
                       emit_error=partial(_emit_error, json_out, target))
    raise typer.Exit(code)


def _fleet(targets, target, cluster, db, diff, json_out, timeout_text, active, against,
           ca_file, rate, per_host, retries) -> int:
    """``--targets FILE``: the fleet (tlslab.cli.scan_fleet), with the options checked here."""
    from .scan_fleet import fleet_command

    def check() -> dict:
        if target:
            raise UsageProblem("give either HOST[:PORT] or --targets FILE, not both")
        try:
            limit = float(timeout_text)
        except ValueError:
            raise UsageProblem(f"--timeout {timeout_text!r}: expected seconds") from None
        if not (math.isfinite(limit) and 1 <= limit <= 3600):
            raise UsageProblem(f"--timeout {timeout_text}: expected seconds, between 1 and 3600")
        if not (math.isfinite(rate) and 0 < rate <= 10000):
            raise UsageProblem(f"--rate {rate}: expected connections a second, 0 to 10000")
        if not 1 <= per_host <= 1000 or not 0 <= retries <= 10:
            raise UsageProblem("--per-host is 1..1000 and --retries 0..10")
        if against is not None:
            from ..scan.mozilla import UnknownConfiguration, check_name
            try:
                check_name(against)
            except UnknownConfiguration as e:
                raise UsageProblem(str(e)) from None
        return {"limit": limit, "options": {"active": active, "against": against,
                                            "ca_file": _check_file(ca_file, "--ca-file")}}

    checked: dict = {}

    def body() -> int:
        checked.update(check())
        return -1

    code = run_command(body, emit_error=partial(_emit_error, json_out, str(targets)))
    if code != -1:
        return code
    return fleet_command(targets, cluster, db, diff, json_out, time_limit=checked["limit"],
                         rate=rate, per_target_rate=min(40.0, rate), per_host=per_host,
                         retries=retries,
                         options=checked["options"])


def _emit_error(json_out: bool, target: Optional[str], code: str, message: str) -> None:
    if json_out:
        print(json.dumps({"target": target, "error": {"code": code,
                                                      "message": " ".join(message.split())}}, indent=2))
    _fail_line(message)


def _scan(target, servername, ca_file, starttls, against, active, timeout_text, json_out,
          html, db, diff, stack=None) -> int:
    from ..scan.run import scan as run_scan
    from ..scan.target import STARTTLS_PROTOCOLS, TargetError, parse_target

    if not target:
        raise UsageProblem("missing HOST[:PORT] (or --targets FILE; try --help)")
    if db is not None or diff:
        raise UsageProblem("--db and --diff go with --targets FILE")
    if starttls is not None and starttls not in STARTTLS_PROTOCOLS:
        raise UsageProblem(f"--starttls {starttls!r}: expected one of {', '.join(STARTTLS_PROTOCOLS)}")
    if against is not None:
        from ..scan.mozilla import UnknownConfiguration, check_name
        try:
            check_name(against)
        except UnknownConfiguration as e:
            raise UsageProblem(str(e)) from None
    try:
        limit = float(timeout_text)
    except ValueError:
        raise UsageProblem(f"--timeout {timeout_text!r}: expected seconds") from None
    if not (math.isfinite(limit) and 1 <= limit <= 3600):
        raise UsageProblem(f"--timeout {timeout_text}: expected seconds, between 1 and 3600")
    if servername is not None:
        _check_host_name(servername, "--servername")
    stacks = _stacks(stack)
    ca_path = _check_file(ca_file, "--ca-file")
    if ca_path:
        from ..proto.cert_store import load_trust_store
        try:
            load_trust_store(ca_path)
        except OSError as e:
            raise UsageProblem(f"--ca-file {ca_file}: cannot read: {e.strerror or e}") from None
        except ValueError as e:
            raise UsageProblem(f"--ca-file {ca_file}: {e}") from None
    html_path = _html_path(html)
    try:
        t = parse_target(target, starttls=starttls, server_name=servername, ca_file=ca_path,
                         timeout=min(10.0, limit))
    except TargetError as e:
        raise UsageProblem(str(e)) from None
    _check_host_name(t.host)
    doc = _run_with_progress(lambda step: run_scan(t, limit=limit, active=active, against=against,
                                                   progress=step), json_out)
    if html_path:
        # written first: the report on stdout may meet a closed pipe (`| head`)
        from ..view.scan_html import write_scan_html
        write_scan_html(html_path, doc)
    if json_out:
        print(json.dumps(_public(doc), indent=2, default=str))
    else:
        from ..view.scan import render_scan
        render_scan(doc, _out(), stacks=stacks or None)
        if html_path:
            _out().print(f"HTML report written to {html_path}")
    sys.stdout.flush()
    return 1 if doc.get("error") else 0


def _stacks(stack: Optional[List[str]]) -> tuple[str, ...]:
    from ..diagnose.fixes import STACKS
    stacks = tuple(s.strip().lower() for item in (stack or []) for s in item.split(",") if s.strip())
    for s in stacks:
        if s not in STACKS:
            raise UsageProblem(f"--stack {s}: unknown (known: {', '.join(STACKS)})")
    return stacks


def _public(doc: dict) -> dict:
    """The document as printed: bytes never reach the JSON."""
    return {k: v for k, v in doc.items() if not isinstance(v, (bytes, bytearray))}


def _html_path(html: Optional[Path]) -> str | None:
    if html is None:
        return None
    if html.exists() and html.is_dir():
        raise UsageProblem(f"--html {html}: is a directory")
    parent = html.parent if str(html.parent) else Path(".")
    if not parent.is_dir():
        raise UsageProblem(f"--html {html}: no such directory {parent}")
    return str(html)


def _run_with_progress(make, json_out: bool) -> dict:
    """Run ``make(progress)`` (the scan coroutine) with a progress bar on stderr (drawn only
    when stderr is a terminal, and never with --json)."""
    if json_out:
        return asyncio.run(make(None))
    from ..view.scan import scan_progress
    with scan_progress() as step:
        return asyncio.run(make(step))
