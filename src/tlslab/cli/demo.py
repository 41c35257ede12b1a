"""``tlslab demo``: the first thing a newcomer sees.

Part 1: a server and a client in this process, on loopback, and the handshake between them
explained message by message.  Part 2: a broken server from the lab (a missing
intermediate certificate), a real client (Python's ``ssl``) failing against it with the
error it really prints, what ``tlslab diagnose`` says and how to fix it, and the fix
applied.  Offline, loopback only, a few seconds.
"""
from __future__ import annotations

import os
import ssl
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import typer
from rich.panel import Panel
from rich.text import Text

from .common import (Failure, _check_output, _format_handshake_error, _http_get, _out, _run, _safe,
                     _terminal_response, _write_html_page, output_options)
from .main import app
from ..workbench.httppage import http_handler

DEMO_EPILOG = """\
[bold]Example[/bold]

  tlslab demo
  tlslab demo --html demo.html      # the same handshake, illustrated byte by byte
  tlslab demo --handshake-only      # part 1 only

Part 1 starts a server on 127.0.0.1 (any free port, throwaway certificate) in this process, connects to it trusting the throwaway CA, sends an HTTP GET and explains each step of the handshake. Part 2 starts a broken server (the lab scenario missing-intermediate), shows Python's ssl failing against it, what tlslab diagnose finds and how to fix it, and the fixed server. Uses no network beyond loopback. Exit codes: 0 ok, 1 failed.
"""



@app.command(epilog=DEMO_EPILOG)
def demo(
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE",
                                        help="Also write the illustrated handshake as one "
                                             "self-contained HTML page."),
    handshake_only: bool = typer.Option(False, "--handshake-only",
                                        help="Only part 1 (the explained handshake)."),
    trace: bool = typer.Option(False, "--trace",
                               help="Also show every record and message byte by byte."),
    no_color: bool = typer.Option(False, "--no-color",
                                  help="No colours or styles (as NO_COLOR=1 does)."),
    lang: str = typer.Option("en", "--lang", metavar="LANG",
                             help="Language of the explanations: en (English) or zh (简体中文)."),
) -> None:
    """Show an explained handshake, then a broken server diagnosed and fixed."""
    options = output_options(no_color, lang)
    _run(options.__enter__)
    try:
        _run(_demo, html, trace)
        if not handshake_only:
            _run(_broken_server_part)
    finally:
        options.__exit__(None, None, None)


def _demo(html: Optional[Path] = None, trace: bool = False) -> None:
    from ..io.blocking import HandshakeError, connect as tls_connect, make_server
    from ..proto.config import ServerConfig
    from ..view.i18n import texts
    from ..workbench import render
    from ..workbench.certgen import make_throwaway_chain

    T = texts()
    console = _out()
    _check_output(html, "--html")
    chain, private_key, ca = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    server_log: list[str] = []
    config = ServerConfig(certificate_chain=chain, private_key=private_key,
                          alpn_protocols=["http/1.1"])
    try:
        srv = make_server("127.0.0.1", 0, config, http_handler, log=server_log.append,
                          handshake_timeout=5.0, io_timeout=5.0)
    except OSError as e:
        raise Failure(f"cannot listen on 127.0.0.1: {e.strerror or e}") from None
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              name="tlslab-demo-server", daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory(prefix="tlslab-demo-") as tmp:
        ca_path = os.path.join(tmp, "ca.pem")
        from cryptography.hazmat.primitives import serialization
        with open(ca_path, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        try:
            console.print(Panel(Text(T.ui("demo_intro", port=srv.port)), title="tlslab demo",
                                expand=False))
            try:
                sock = tls_connect("127.0.0.1", srv.port, server_name="localhost",
                                   ca_file=ca_path, alpn_protocols=["h2", "http/1.1"],
                                   timeout=5.0)
            except HandshakeError as e:
                render.render_sequence(e.trace, e.negotiated, console=console, error=e,
                                       explain=True)
                if html is not None:
                    _write_html_page(html, [{
                        "trace": e.trace, "negotiated": e.negotiated, "error": e,
                        "error_line": _format_handshake_error(e),
                        "peer_certificates": e.peer_certificates,
                        "target": f"localhost (127.0.0.1:{srv.port})",
                        "title": "tlslab demo: a TLS handshake on loopback"}])
                raise Failure(_format_handshake_error(e)) from None
            try:
                http_result = _http_get(sock, "localhost", srv.port, 5.0)
            finally:
                sock.close()
            if trace:
                render.render_bytes(sock.trace, console=console, negotiated=sock.negotiated)
                console.print()
            render.render_sequence(sock.trace, sock.negotiated, console=console, explain=True,
                                   title=T.ui("demo_seen_by_client"), timing_ms=sock.timings_ms)
            console.print()
            console.print(Text(T.ui("which_keys"), style="bold"))
            for what, key in T.section("legend13").items():
                console.print(Text.assemble(("  " + what, "cyan"), "  →  ", key))
            if not trace:
                from ..view.terminal import render_key_schedule
                console.print()
                render_key_schedule(sock.trace, sock.negotiated, console=console)
            console.print()
            console.print(Text(T.ui("demo_http"), style="bold"))
            if http_result.get("error"):
                console.print(Text(_safe(f"HTTP: {http_result['error']}"), style="red"))
            console.print(Text(_terminal_response(http_result.get("response", ""))))
            time.sleep(0.05)  # let the server thread write its log line
            for line in server_log:
                console.print(Text(_safe(f"{T.ui('server_log')}: {line}"), style="dim"))
            if html is not None:
                status = (http_result.get("response") or "").split("\r\n", 1)[0]
                _write_html_page(html, [{
                    "trace": sock.trace, "negotiated": sock.negotiated,
                    "peer_certificates": sock.peer_certificates,
                    "target": f"localhost (127.0.0.1:{srv.port})",
                    "title": "tlslab demo: a TLS handshake on loopback",
                    "timing_ms": sock.timings_ms,
                    "extra": {"HTTP": status or http_result.get("error") or "no response"}}])
        finally:
            srv.shutdown()
            srv.server_close()
    if http_result.get("error") or not http_result.get("response"):
        raise Failure(f"HTTP request failed: {http_result.get('error') or 'empty response'}")


# --------------------------------------------------------------------------- part 2

DEMO_SCENARIO = "missing-intermediate"


def _python_ssl_attempt(port: int, ca_file: str) -> str | None:
    """Python's own ``ssl`` (OpenSSL) as the real client; its error text, or None when it
    connects.  Bounded by a 5 s socket timeout; loopback only."""
    ctx = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                tls.recv(1)
        return None
    except ssl.SSLCertVerificationError as e:
        return f"ssl.SSLCertVerificationError: {e}"
    except (ssl.SSLError, OSError) as e:
        return f"{type(e).__name__}: {e}"


def _broken_server_part() -> None:
    import asyncio

    from ..diagnose import Target, diagnose
    from ..io.blocking import make_server
    from ..lab.scenarios import start_scenario_server
    from ..profiles import load_profile
    from ..proto.certificates import load_trust_store
    from ..proto.config import ServerConfig
    from ..view.diagnosis import render_report

    console = _out()
    console.print()
    lab_log: list[str] = []
    try:
        srv = start_scenario_server(DEMO_SCENARIO, log=lab_log.append, handshake_timeout=5.0,
                                    io_timeout=5.0)
    except OSError as e:
        raise Failure(f"cannot listen on 127.0.0.1: {e.strerror or e}") from None
    lab = srv.lab
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     name="tlslab-demo-broken", daemon=True).start()
    fixed = None
    try:
        console.print(Panel(
            f"Part 2: a broken server.  127.0.0.1:{srv.port} plays the lab scenario "
            f"[bold]{DEMO_SCENARIO}[/bold] ({_safe(lab.scenario.summary)}).  Its CA is "
            "trusted, as in part 1; what could go wrong?  (Try it yourself: "
            f"tlslab serve --scenario {DEMO_SCENARIO})", title="tlslab demo", expand=False))
        error = _python_ssl_attempt(srv.port, lab.ca_file)
        console.print(Text("1. A real client, Python's ssl (OpenSSL), connects:", style="bold"))
        console.print(Text(_safe(f"   {error or 'it connected (unexpected for this scenario)'}"),
                           style="red" if error else "yellow"))
        console.print(Text("   curl says the same thing: curl: (60) SSL certificate problem: "
                           "unable to get local issuer certificate", style="dim"))
        time.sleep(0.05)
        for line in lab_log[-1:]:
            console.print(Text(_safe(f"   server log: {line}"), style="dim"))
        console.print()
        console.print(Text(f"2. tlslab diagnose localhost:{srv.port} --ca-file ca.pem "
                           "--write-chain fullchain.pem --stack python --stack nginx", style="bold"))
        with tempfile.TemporaryDirectory(prefix="tlslab-demo-") as tmp:
            chain_file = os.path.join(tmp, "fullchain.pem")
            target = Target("127.0.0.1", srv.port, "localhost", load_trust_store(lab.ca_file),
                            ca_file="ca.pem", timeout=5.0, write_chain=chain_file)
            report = asyncio.run(diagnose(target, [load_profile("default")]))
            for c in report.causes:
                c.fixes = [f for f in c.fixes if f["stack"] in ("python", "nginx")]
            render_report(report.to_json(), console, show_probes=False)
            if not os.path.exists(chain_file):
                raise Failure("diagnose did not write the completed chain")
            console.print()
            console.print(Text("3. The fix: serve the chain diagnose wrote (leaf, then the "
                               "intermediate it fetched from the AIA URL), and try again:",
                               style="bold"))
            from cryptography import x509
            with open(chain_file, "rb") as f:
                chain = x509.load_pem_x509_certificates(f.read())
            config = ServerConfig(certificate_chain=chain, private_key=lab.config.private_key)
            fixed = make_server("127.0.0.1", 0, config, http_handler, handshake_timeout=5.0,
                                io_timeout=5.0)
            threading.Thread(target=fixed.serve_forever, kwargs={"poll_interval": 0.05},
                             name="tlslab-demo-fixed", daemon=True).start()
            again = _python_ssl_attempt(fixed.port, lab.ca_file)
            if again:
                raise Failure(f"the fixed server still fails: {again}")
            console.print(Text(f"   Python's ssl connects to 127.0.0.1:{fixed.port}: the chain "
                               f"now has {len(chain)} certificates.", style="green"))
    finally:
        srv.shutdown()
        srv.server_close()
        srv.close_lab()
        if fixed is not None:
            fixed.shutdown()
            fixed.server_close()
