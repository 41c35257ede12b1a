"""``tlslab serve``: a TLS server that answers HTTP GET with a page about the handshake,
and, with ``--scenario``, a lab of broken servers that explain each failing client.

Arguments and output only; the scenarios live in :mod:`tlslab.lab.scenarios`, the
explanations in :mod:`tlslab.lab.clientview`.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.padding import Padding
from rich.text import Text

from ..workbench.httppage import http_handler
from .common import (Failure, UsageProblem, _check_file, _check_host_name, _check_keylog,
                     _check_versions, _out, _run, _safe, _split)
from .main import app

__all__ = ["serve", "http_handler"]

#: client connections ``serve`` holds at once unless --max-connections says otherwise
DEFAULT_MAX_CONNECTIONS = 4096

SERVE_EPILOG = """\
[bold]Examples[/bold]

  tlslab serve                      # throwaway certificate, 127.0.0.1:4433
  curl --cacert /tmp/tlslab-ca-<random>.pem https://localhost:4433/
  tlslab serve --cert chain.pem --key key.pem --port 8443
  tlslab serve --hrr                # force a HelloRetryRequest
  tlslab serve --client-ca ca.pem --require-client-cert   # mutual TLS
  tlslab serve --early-data 16384   # accept 0-RTT data from resuming clients
  tlslab serve --tls 1.2 --prefer-client-order

[bold]The lab: broken servers on purpose[/bold]

  tlslab serve --list-scenarios     # what each scenario breaks, who fails, with which error
  tlslab serve --scenario expired --ca-out ca.pem
  curl --cacert ca.pem https://localhost:4433/        # fails: certificate has expired
  tlslab serve --scenario tls1.3-only --json-log clients.jsonl
  tlslab serve --list-scenarios --json

Scenarios: ok, expired, not-yet-valid, wrong-host, no-san, self-signed, untrusted-root, missing-intermediate, sha1, rsa1024, wrong-eku; tls1.0-only, tls1.1-only, tls1.2-only, tls1.3-only; rsa-kx-only, dhe-only, 3des-only, no-common-group, pkcs1-only-tls13, ecdsa-cert-rsa-suites; client-cert-required, sni-required, alpn-strict.  A scenario sets some options itself (--cert always; --tls, --cipher, --group, --sigalg, --alpn or --client-ca for some): giving those too is an error.  TLS 1.0/1.1 and 3DES are never on by default: only in their scenarios or with an explicit --tls 1.0 / --cipher.

Each client gets a page describing its handshake (like openssl s_server -www).  One log line per connection: the handshake's result, what the client offered (highest version, suite families, groups, SNI, ALPN, client certificate) and, when it failed, why, with the diagnosis code ("client offered TLS 1.2 at most; this server speaks only TLS 1.3 → protocol-version-mismatch").  --json-log FILE appends the same as one JSON object per line: time, peer, scenario, offered, outcome, negotiated, alert_sent, alert_received, code, explanation.

Without --alpn the server chooses http/1.1 when a client offers it (its page speaks HTTP/1.x only; never h2), and refuses a client offering only other protocols (no_application_protocol, RFC 7301).  Under load: one event loop, no thread per client; a client has 10 s to complete its handshake and 30 s more to send its request; at --max-connections (lowered to what ulimit -n allows) a new client closes the least recently active one, so new clients are always accepted.

Ctrl-C stops the server (exit 0).  Exit codes: 0 stopped cleanly (or listed); 1 cannot listen; 2 bad input (unknown scenario, conflicting options, unreadable files).
"""


@app.command(epilog=SERVE_EPILOG)
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(4433, "--port", help="Port to listen on (0: any free port)."),
    cert: Optional[Path] = typer.Option(None, "--cert", metavar="PEM",
                                        help="Certificate chain, leaf first (default: a throwaway one)."),
    key: Optional[Path] = typer.Option(None, "--key", metavar="PEM", help="Private key for --cert."),
    tls: Optional[List[str]] = typer.Option(None, "--tls", metavar="VERSION",
                                            help="TLS version to accept (1.3, 1.2; 1.1 and 1.0 only when "
                                                 "given), repeatable; default: 1.3 and 1.2."),
    cipher: Optional[List[str]] = typer.Option(None, "--cipher", metavar="SUITE",
                                               help="Cipher suite to accept, repeatable."),
    group: Optional[List[str]] = typer.Option(None, "--group", metavar="GROUP",
                                              help="Key exchange group to accept, repeatable."),
    sigalg: Optional[List[str]] = typer.Option(None, "--sigalg", metavar="SCHEME",
                                               help="Signature scheme to use, repeatable."),
    alpn: Optional[List[str]] = typer.Option(None, "--alpn", metavar="PROTO",
                                             help="ALPN protocol to accept, repeatable."),
    keylog: Optional[Path] = typer.Option(None, "--keylog", metavar="FILE",
                                          help="Append secrets in NSS key log format."),
    hrr: bool = typer.Option(False, "--hrr",
                             help="Always answer with a HelloRetryRequest carrying a cookie."),
    client_ca: Optional[Path] = typer.Option(None, "--client-ca", metavar="PEM",
                                             help="Ask clients for a certificate issued by these CAs."),
    require_client_cert: bool = typer.Option(False, "--require-client-cert",
                                             help="With --client-ca: reject clients without a certificate."),
    early_data: int = typer.Option(0, "--early-data", metavar="BYTES",
                                   help="Accept up to BYTES of 0-RTT data from resuming clients (0: off)."),
    prefer_client_order: bool = typer.Option(False, "--prefer-client-order",
                                             help="Pick suites and groups in the client's order, not ours."),
    tickets: int = typer.Option(2, "--tickets", metavar="N",
                                help="Session tickets sent after each handshake (0: no resumption)."),
    scenario: Optional[str] = typer.Option(None, "--scenario", metavar="NAME",
                                           help="Play a broken server from the lab (\"list\": list them)."),
    list_scenarios: bool = typer.Option(False, "--list-scenarios",
                                        help="List the scenarios (what is wrong, who fails, how) and exit."),
    json_out: bool = typer.Option(False, "--json", help="With --list-scenarios: print JSON."),
    ca_out: Optional[Path] = typer.Option(None, "--ca-out", metavar="FILE",
                                          help="Also write the CA certificate clients should trust to FILE."),
    json_log: Optional[Path] = typer.Option(None, "--json-log", metavar="FILE",
                                            help="Append one JSON object per connection to FILE."),
    max_connections: int = typer.Option(DEFAULT_MAX_CONNECTIONS, "--max-connections", metavar="N",
                                        help="Clients held at once; at the cap a new client closes "
                                             "the least recently active one."),
) -> None:
    """Run a TLS server with a page about each handshake, or a broken one (--scenario)."""
    _run(_serve, host, port, cert, key, tls, cipher, group, sigalg, alpn, keylog, hrr,
         client_ca, require_client_cert, early_data, prefer_client_order, tickets,
         scenario=scenario, list_scenarios=list_scenarios, json_out=json_out, ca_out=ca_out,
         json_log=json_log, max_connections=max_connections)


class _Logger:
    """Thread-safe one-line log to stdout, each line stamped with the time."""

    def __init__(self, stream=None) -> None:
        self._lock = threading.Lock()
        self._stream = stream

    def close(self) -> None:
        """No more lines: client threads still running (daemon threads) must not touch
        stdout while the interpreter shuts down, so the lock is kept for good."""
        self._lock.acquire()
        try:
            (self._stream or sys.stdout).flush()
        except (OSError, ValueError):
            pass

    def __call__(self, line: str) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        text = _safe(" ".join(line.split()))  # SNI, certificate names... come from clients
        with self._lock:
            stream = self._stream or sys.stdout
            try:
                stream.write(f"{stamp} {text}\n")
                stream.flush()
            except BrokenPipeError:  # `tlslab serve | head -1`: nobody reads the log any more
                if stream is sys.stdout:
                    try:
                        devnull = os.open(os.devnull, os.O_WRONLY)
                        os.dup2(devnull, sys.stdout.fileno())
                    except OSError:
                        pass


def _server_options(tls, cipher, group, sigalg, alpn, keylog, hrr, client_ca=None,
                    require_client_cert=False, early_data=0, prefer_client_order=False,
                    tickets=2) -> dict:
    """ServerConfig keyword arguments from serve's options, checked (one-line errors)."""
    if require_client_cert and client_ca is None:
        raise UsageProblem("--require-client-cert needs --client-ca PEM (the CAs to trust)")
    if not 0 <= early_data <= 0xFFFFFFFF:
        raise UsageProblem("--early-data must be 0..4294967295 bytes")
    if not 0 <= tickets <= 16:
        raise UsageProblem("--tickets must be 0..16")
    if early_data and not tickets:
        raise UsageProblem("--early-data needs tickets (0-RTT resumes a session): drop --tickets 0")
    return dict(versions=_check_versions(tls), cipher_suites=_split(cipher),
                groups=_split(group), signature_algorithms=_split(sigalg),
                alpn_protocols=_split(alpn), keylog_file=_check_keylog(keylog),
                cookie_hrr=hrr, client_ca_file=_check_file(client_ca, "--client-ca"),
                require_client_cert=require_client_cert, max_early_data_size=early_data,
                prefer_server_order=not prefer_client_order, tickets=tickets)


def _server_config(cert, key, tls, cipher, group, sigalg, alpn, keylog, hrr, names,
                   client_ca=None, require_client_cert=False, early_data=0,
                   prefer_client_order=False, tickets=2):
    """(ServerConfig, throwaway CA certificate or None) from serve's options."""
    from ..proto.config import ServerConfig
    options = _server_options(tls, cipher, group, sigalg, alpn, keylog, hrr, client_ca,
                              require_client_cert, early_data, prefer_client_order, tickets)
    ca = None
    try:
        # the page speaks HTTP/1.x only: http/1.1 (then http/1.0) by default, never h2 (a
        # client told h2 would talk HTTP/2 to it and fail, as curl does)
        from ..lab.serve_http import serve_alpn
        options["alpn_protocols"] = serve_alpn(options["alpn_protocols"])
        if cert is not None or key is not None:
            if cert is None or key is None:
                raise UsageProblem("--cert and --key go together")
            try:
                config = ServerConfig.from_files(_check_file(cert, "--cert"),
                                                 _check_file(key, "--key"), **options)
            except (OSError, TypeError) as e:
                raise UsageProblem(f"cannot load --cert/--key: {e}") from None
        else:
            from ..workbench.certgen import make_throwaway_chain
            chain, private_key, ca = make_throwaway_chain(names=names)
            config = ServerConfig(certificate_chain=chain, private_key=private_key, **options)
    except ValueError as e:
        raise UsageProblem(str(e)) from None
    except OSError as e:
        raise UsageProblem(f"cannot read {e.filename or 'a file'}: {e.strerror or e}") from None
    return config, ca


def _stop_on_sigterm() -> None:
    """SIGTERM stops the server like Ctrl-C (so the temporary CA file is removed)."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (e.g. tests running the CLI in a thread)
        pass


def _pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_ca(ca) -> str:
    fd, path = tempfile.mkstemp(prefix="tlslab-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(_pem(ca))
    return path


# --------------------------------------------------------------------------- checks

def _check_out_file(path: Optional[Path], option: str) -> str | None:
    """A file this command will write: its directory exists, it is not a directory."""
    if path is None:
        return None
    if path.is_dir():
        raise UsageProblem(f"{option} {path}: is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageProblem(f"{option} {path}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageProblem(f"{option} {path}: cannot write there (permission denied)")
    return str(path)


def _open_json_log(path: Optional[Path]):
    target = _check_out_file(path, "--json-log")
    if target is None:
        return None
    try:
        return open(target, "a", encoding="utf-8")
    except OSError as e:
        raise UsageProblem(f"--json-log {path}: cannot write: {e.strerror or e}") from None


def _given_options(cert, key, tls, cipher, group, sigalg, alpn, client_ca,
                   require_client_cert) -> list[str]:
    given = []
    for flag, value in (("cert", cert or key), ("tls", tls), ("cipher", cipher),
                        ("group", group), ("sigalg", sigalg), ("alpn", alpn),
                        ("client-ca", client_ca or require_client_cert)):
        if value:
            given.append(flag)
    return given


# --------------------------------------------------------------------------- the lab listing

def _list_scenarios(json_out: bool) -> None:
    from ..lab.scenarios import CAPTURED_WITH, CATEGORIES, SCENARIOS
    if json_out:
        doc = {"scenarios": [s.to_json() for s in SCENARIOS.values()],
               "messages_from": CAPTURED_WITH,
               "placeholders": {"{host}": "the server's name", "{ip}": "its address",
                                "{port}": "its port", "{ca}": "the CA file it prints",
                                "{dir}": "the lab directory it prints"}}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    console = _out()
    shown = {"host": "localhost", "ip": "127.0.0.1", "port": "4433", "ca": "CA.pem",
             "dir": "LABDIR"}

    def fill(text: str) -> str:
        for key, value in shown.items():
            text = text.replace("{" + key + "}", value)
        return text

    def indented(text: Text, by: int = 6) -> None:
        console.print(Padding(text, (0, 0, 0, by), expand=False))  # wrapped lines keep the indent

    for category in CATEGORIES:
        console.print(Text(category, style="bold underline"))
        for s in SCENARIOS.values():
            if s.category != category:
                continue
            indented(Text.assemble((s.name, "cyan bold"), ("   diagnosis: ", "dim"),
                                   (s.code, "yellow")), 2)
            indented(Text(s.summary))
            if s.note:
                indented(Text(s.note, style="dim"))
            for f in s.fails:
                error = fill(f.error)
                if error.lower().startswith(fill(f.client).lower() + ":"):
                    # curl names itself in its own message: don't say it twice
                    indented(Text.assemble(("fails  ", "red"), error))
                else:
                    indented(Text.assemble(("fails  ", "red"), (fill(f.client), "bold"), ": ",
                                           error))
            indented(Text.assemble(("works  ", "green"), fill(s.works)))
        console.print()
    console.print(Text(f"Client messages: {CAPTURED_WITH}.", style="dim"))
    console.print(Text("Run one: tlslab serve --scenario NAME  (--ca-out FILE writes the CA to "
                       "trust; --json-log FILE logs each client as JSON)", style="dim"))


# --------------------------------------------------------------------------- serving

def _serve(host, port, cert, key, tls, cipher, group, sigalg, alpn, keylog, hrr,
           client_ca=None, require_client_cert=False, early_data=0, prefer_client_order=False,
           tickets=2, *, scenario=None, list_scenarios=False, json_out=False, ca_out=None,
           json_log=None, max_connections=DEFAULT_MAX_CONNECTIONS) -> None:
    if list_scenarios or (scenario is not None and scenario.strip().lower() == "list"):
        _list_scenarios(json_out)
        return
    if json_out:
        raise UsageProblem("--json goes with --list-scenarios (for the connection log as JSON "
                           "lines, use --json-log FILE)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host:
        _check_host_name(host, "--host")
    if not 0 <= port < 65536:
        raise UsageProblem(f"--port {port} out of range 0..65535")
    if not 1 <= max_connections <= 1_000_000:
        raise UsageProblem("--max-connections must be 1..1000000")
    names = ["localhost", "127.0.0.1", "::1"]
    if host not in names and host not in ("0.0.0.0", "::", ""):
        names.append(host)
    ca_out_path = _check_out_file(ca_out, "--ca-out")
    if keylog is not None:
        _check_keylog(keylog)  # a --keylog that cannot be written is bad input, before any notice
    _keylog_notice(keylog)
    if scenario is not None:
        _serve_scenario(host, port, names, scenario, ca_out_path, json_log,
                        _given_options(cert, key, tls, cipher, group, sigalg, alpn, client_ca,
                                       require_client_cert),
                        (tls, cipher, group, sigalg, alpn, keylog, hrr, client_ca,
                         require_client_cert, early_data, prefer_client_order, tickets),
                        max_connections)
        return
    if ca_out_path and cert is not None:
        raise UsageProblem("--ca-out writes the throwaway CA; with --cert the CA is yours")
    config, ca = _server_config(cert, key, tls, cipher, group, sigalg, alpn, keylog, hrr, names,
                                client_ca, require_client_cert, early_data, prefer_client_order,
                                tickets)
    json_file = _open_json_log(json_log)
    log = _Logger()
    from ..io.aio_server import AsyncTLSServer
    from ..lab.clientview import ServerExplainer, ServerProfile
    from ..workbench.httppage import async_http_handler
    ca_path = _write_ca(ca) if ca is not None else None
    explainer = ServerExplainer(config, ServerProfile.from_config(config, ca_file=ca_path),
                                json_log=json_file)
    try:
        srv = AsyncTLSServer(host, port, config, async_http_handler, log=log,
                             log_line=explainer, max_connections=max_connections)
    except OSError as e:
        _remove(ca_path)
        raise Failure(f"cannot listen on {host}:{port}: {e.strerror or e}") from None

    def banner() -> None:
        if ca_path and ca_out_path:
            _write_file(ca_out_path, _pem(ca))
        shown = f"[{host}]" if ":" in host else host
        url_host = "localhost" if host in ("127.0.0.1", "::1", "0.0.0.0", "::") else shown
        versions = ", ".join(getattr(config, "version_names", None) or ["TLS 1.3"])
        features = [versions]
        if hrr:
            features.append("HelloRetryRequest forced")
        if client_ca is not None:
            features.append("client certificate " + ("required" if require_client_cert else "requested"))
        features.append(f"{tickets} ticket(s) per handshake" if tickets else "no tickets")
        if early_data:
            features.append(f"0-RTT up to {early_data} bytes")
        if prefer_client_order:
            features.append("client's order preferred")
        print(f"tlslab serve: listening on {shown}:{srv.port} ({', '.join(features)})")
        _legacy_warning(config)
        _cap_warning(srv)
        if ca_path:
            print(f"throwaway certificate for {', '.join(names)}; its CA certificate: {ca_path}"
                  + (f" (also written to {ca_out_path})" if ca_out_path else ""))
            print(f"try:  curl --cacert {ca_path} https://{url_host}:{srv.port}/")
            print(f"      tlslab connect {url_host}:{srv.port} --ca-file {ca_path} --http")
        print("Ctrl-C to stop", flush=True)

    _run_until_stopped(srv, lambda: _remove(ca_path), json_file, banner, log)


def _keylog_notice(keylog: Optional[Path]) -> None:
    """A server's key log is explicit and loud: --keylog is announced on stderr, and an
    SSLKEYLOGFILE left in the environment is ignored, with a note saying so (the engine's
    ServerConfig honours it only when asked: ``sslkeylogfile=True``)."""
    import os
    if keylog is not None:
        print(f"warning: writing the TLS secrets of every connection to {keylog} (--keylog): "
              "whoever can read that file can decrypt all of this server's traffic",
              file=sys.stderr, flush=True)
    elif os.environ.get("SSLKEYLOGFILE"):
        print("note: SSLKEYLOGFILE is set but serve ignores it; to log this server's secrets, "
              "ask for it with --keylog FILE", file=sys.stderr, flush=True)


def _cap_warning(srv) -> None:
    """Say so when the file-descriptor limit holds the server below --max-connections."""
    if srv.max_connections < srv.requested_connections:
        print(f"note: at most {srv.max_connections} clients at once (the open-file limit, "
              f"ulimit -n, allows no more); beyond, a new client closes the least recently "
              "active one")


def _legacy_warning(config) -> None:
    old = [v for v in getattr(config, "version_names", []) if v in ("TLS 1.0", "TLS 1.1")]
    if old:
        print(f"note: {' and '.join(old)} enabled on purpose: deprecated since 2021 (RFC 8996), "
              "refused by current clients")


def _remove(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def _write_file(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise UsageProblem(f"--ca-out {path}: cannot write: {e.strerror or e}") from None


def _run_until_stopped(srv, cleanup, json_file, banner, log) -> None:
    """Print the banner and serve until Ctrl-C / SIGTERM; clean up whatever happens (a
    signal may come as soon as the banner says how to stop: the handler raising
    KeyboardInterrupt covers the banner, the server's own handlers the serving)."""
    try:
        _stop_on_sigterm()
        banner()
        if srv.serve_forever():
            print("\nstopped", flush=True)
        log(srv.summary())
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    finally:
        srv.server_close()
        cleanup()
        log.close()
        if json_file is not None:
            try:
                json_file.close()
            except OSError:
                pass


def _serve_scenario(host, port, names, name, ca_out_path, json_log, given, plain,
                    max_connections=DEFAULT_MAX_CONNECTIONS) -> None:
    from ..lab.scenarios import (UnknownScenario, build_lab, conflicts, get_scenario,
                                 make_async_scenario_server)
    (tls, cipher, group, sigalg, alpn, keylog, hrr, client_ca, require_client_cert, early_data,
     prefer_client_order, tickets) = plain
    try:
        scenario = get_scenario(name)
    except UnknownScenario as e:
        raise UsageProblem(str(e)) from None
    clash = conflicts(scenario, given)
    if clash:
        what = " and ".join(w for _, w in clash)
        flags = " and ".join(f for f, _ in clash)
        raise UsageProblem(f"--scenario {scenario.name} {what}: drop {flags}, or serve "
                           "without --scenario")
    options = _server_options(tls, cipher, group, sigalg, alpn, keylog, hrr, client_ca,
                              require_client_cert, early_data, prefer_client_order, tickets)
    json_file = _open_json_log(json_log)
    log = _Logger()
    try:
        lab = build_lab(scenario, names, log=log, **options)
    except ValueError as e:
        raise UsageProblem(f"--scenario {scenario.name}: {e}") from None
    try:
        srv = make_async_scenario_server(lab, host, port, log=log, json_log=json_file,
                                         max_connections=max_connections)
    except OSError as e:
        lab.close()
        raise Failure(f"cannot listen on {host}:{port}: {e.strerror or e}") from None

    def banner() -> None:
        if ca_out_path:
            try:
                shutil.copyfile(lab.ca_file, ca_out_path)
            except OSError as e:
                raise UsageProblem(f"--ca-out {ca_out_path}: cannot write: {e.strerror or e}") from None
        shown = f"[{host}]" if ":" in host else host
        url_host = "localhost" if host in ("127.0.0.1", "::1", "0.0.0.0", "::") else shown
        versions = ", ".join(lab.config.version_names)
        print(f"tlslab serve: listening on {shown}:{srv.port} (scenario {scenario.name}: {versions})")
        _legacy_warning(lab.config)
        _cap_warning(srv)
        print(f"scenario {scenario.name} ({scenario.category}): {scenario.summary}")
        for f in scenario.fails[:3]:
            print(f"  {f.client} fails: {lab.fill(f.error, url_host, srv.port)}")
        print(f"  works: {lab.fill(scenario.works, url_host, srv.port)}")
        print(f"  diagnosis: {scenario.code}")
        if lab.aia_url:
            print(f"  the intermediate CA is served for AIA fetching at {lab.aia_url}")
        print(f"certificate: {_describe_leaf(lab.leaf)}; its CA certificate: {lab.ca_file}"
              + (f" (also written to {ca_out_path})" if ca_out_path else ""))
        commands = [lab.fill(c, url_host, srv.port) for c in scenario.commands]
        for i, command in enumerate(commands):
            print(("try:  " if i == 0 else "      ") + command)
        print("Ctrl-C to stop", flush=True)

    _run_until_stopped(srv, lab.close, json_file, banner, log)


def _describe_leaf(leaf) -> str:
    from ..proto.certificates import describe_certificate
    d = describe_certificate(leaf)
    names = ", ".join(s.split(":", 1)[-1] for s in d.get("san") or []) or f"no SAN ({d['subject']})"
    return f"{names}, {d.get('key')}, expires {d.get('not_after', '?')[:10]}"
