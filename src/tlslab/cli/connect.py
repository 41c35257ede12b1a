"""``tlslab connect``: connect to a TLS server and show the handshake, message by message."""
from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.text import Text

from .common import (Failure, UsageProblem, _check_file, _check_host_name, _check_keylog,
                     _check_output, _check_timeout, _check_versions, _connect_error,
                     _format_handshake_error, _http_get, _http_request, _load_client_identity,
                     _out, _run, _safe, _split, _terminal_response, _write_html_page,
                     output_options, parse_target)
from .main import app


CONNECT_EPILOG = """\
[bold]Examples[/bold]

  tlslab connect example.com               # port 443, system trust store
  tlslab connect localhost:4433 --ca-file ca.pem --http
  tlslab connect [::1]:4433 --servername localhost --insecure --trace
  tlslab connect example.com --group secp256r1 --json
  tlslab connect localhost:4433 --ca-file ca.pem --reconnect 2 --early-data hello
  tlslab connect localhost:4433 --ca-file ca.pem --cert client-chain.pem --key client.key
  tlslab connect localhost:4433 --ca-file ca.pem --tls 1.2 --http
  tlslab connect example.com --html handshake.html   # open the file in a browser
  tlslab connect example.com --trace --full    # every record and field, nothing folded
  tlslab connect example.com --lang zh         # explanations in Simplified Chinese

--reconnect N makes N more connections that resume the session with the tickets of the previous ones (kept in memory for this command); each prints resumed=true|false, then a table compares the full, resumed and 0-RTT handshakes (flights, round trips, messages, timings).

Exit codes: 0 handshake ok; 1 connection or handshake failed (one line on stderr; with --json an object with "ok": false); 2 bad input.
"""


@app.command(epilog=CONNECT_EPILOG)
def connect(
    target: str = typer.Argument(..., metavar="HOST[:PORT]",
                                 help="Server to connect to; IPv6 as [::1]:4433; default port 443."),
    servername: Optional[str] = typer.Option(None, "--servername", "--sni", metavar="NAME",
                                             help="Name for SNI and certificate checks (default: HOST)."),
    tls: Optional[List[str]] = typer.Option(None, "--tls", metavar="VERSION",
                                            help="TLS version to offer (1.3, 1.2, ...), repeatable; default: the engine's."),
    cipher: Optional[List[str]] = typer.Option(None, "--cipher", metavar="SUITE",
                                               help="Cipher suite (IANA name), repeatable."),
    group: Optional[List[str]] = typer.Option(None, "--group", metavar="GROUP",
                                              help="Key exchange group (e.g. x25519), repeatable."),
    sigalg: Optional[List[str]] = typer.Option(None, "--sigalg", metavar="SCHEME",
                                               help="Signature scheme (e.g. ecdsa_secp256r1_sha256), repeatable."),
    alpn: Optional[List[str]] = typer.Option(None, "--alpn", metavar="PROTO",
                                             help="ALPN protocol to offer (e.g. h2, http/1.1), repeatable."),
    ca_file: Optional[Path] = typer.Option(None, "--ca-file", metavar="PEM",
                                           help="Trust these CA certificates instead of the system store."),
    insecure: bool = typer.Option(False, "--insecure", "-k",
                                  help="Do not verify the server certificate."),
    keylog: Optional[Path] = typer.Option(None, "--keylog", metavar="FILE",
                                          help="Append secrets in NSS key log format (for Wireshark)."),
    trace: bool = typer.Option(False, "--trace", help="Byte-level view of every message."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also on failure)."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE",
                                        help="Also write the illustrated handshake as one "
                                             "self-contained HTML page (also on failure)."),
    http: bool = typer.Option(False, "--http",
                              help="Send GET / HTTP/1.1 after the handshake and print the response."),
    timeout: float = typer.Option(10.0, "--timeout", metavar="SECONDS",
                                  help="Time limit for the TCP connect and the handshake, and "
                                       "(with --http) for the whole HTTP exchange."),
    cert: Optional[Path] = typer.Option(None, "--cert", metavar="PEM",
                                        help="Client certificate chain (leaf first), for servers that ask for one."),
    key: Optional[Path] = typer.Option(None, "--key", metavar="PEM",
                                       help="Private key of --cert (PEM, unencrypted)."),
    reconnect: int = typer.Option(0, "--reconnect", metavar="N",
                                  help="Make N more connections resuming the session; each prints "
                                       "resumed=true|false, then a table compares the handshakes."),
    early_data: Optional[str] = typer.Option(None, "--early-data", metavar="TEXT",
                                             help="Send TEXT (with --http: the HTTP request) as 0-RTT "
                                                  "data on resumed connections when the ticket allows it."),
    full: bool = typer.Option(False, "--full",
                              help="With --trace: show long values (key shares, certificates) "
                                   "whole instead of folded."),
    no_color: bool = typer.Option(False, "--no-color",
                                  help="No colours or styles (as NO_COLOR=1 does)."),
    lang: str = typer.Option("en", "--lang", metavar="LANG",
                             help="Language of the explanations: en (English) or zh (简体中文)."),
) -> None:
    """Connect to a TLS server and show the handshake, message by message."""
    _run(_connect, target, servername, tls, cipher, group, sigalg, alpn, ca_file, insecure,
         keylog, trace, json_out, http, timeout, cert, key, reconnect, early_data, html,
         full=full, no_color=no_color, lang=lang)


class _ConnectionFailed(Exception):
    """One connection of ``connect`` failed: ``line`` for stderr, ``doc`` for --json."""

    def __init__(self, line: str, doc: dict, handshake_error=None) -> None:
        super().__init__(line)
        self.line, self.doc, self.handshake_error = line, doc, handshake_error



def _connect_once(host, port, config, timeout, target_text, *, http: bool, sni: str,
                  early: bytes | None, want_tickets: bool) -> dict:
    """One connection: handshake (with 0-RTT data if possible), the post-handshake read
    the server's verdict needs, and the HTTP exchange.  Raises _ConnectionFailed."""
    from ..io.blocking import HandshakeError, connect as tls_connect
    from ..workbench import render

    def handshake_failed(e) -> _ConnectionFailed:
        line = _format_handshake_error(e)
        doc = render.to_json(e.trace, e.negotiated, error=e,
                             peer_certificates=e.peer_certificates, target=target_text)
        doc["error"]["summary"] = line
        return _ConnectionFailed(line, doc, e)

    try:
        sock = tls_connect(host, port, config=config, timeout=timeout, early_data=early)
    except HandshakeError as e:
        raise handshake_failed(e) from None
    except OSError as e:
        code, line = _connect_error(e, host, port, timeout)
        raise _ConnectionFailed(line, {"ok": False, "target": target_text,
                                       "error": {"code": code, "reason": line, "summary": line}}) from None
    result: dict[str, Any] = {"sock": sock, "http": None, "early_data_sent": early is not None
                              and sock.early_data_accepted is not None}
    try:
        tls13 = sock.negotiated.get("version") == "TLS 1.3"
        cert_requested = any(e.kind == "message" and e.name == "CertificateRequest"
                             and e.direction == "received" for e in sock.trace.entries)
        if early is not None and not sock.early_data_accepted and not http:
            sock.send(early)  # not sent as 0-RTT, or rejected: send it as ordinary data
        if http:
            result["http"] = _http_get(sock, sni, port, timeout,
                                       already_sent=bool(sock.early_data_accepted))
            error = sock.post_handshake_error()
            if error is not None:
                raise handshake_failed(error)
        elif tls13 and (cert_requested or want_tickets):
            # TLS 1.3: the server checks our certificate (and sends tickets) after our
            # Finished; read briefly so a rejection is reported, and tickets are kept
            try:
                sock.wait_for_tickets(min(timeout, 2.0))
            except HandshakeError as e:
                raise handshake_failed(e) from None
    finally:
        sock.close()
    return result


def _connect(target, servername, tls, cipher, group, sigalg, alpn, ca_file, insecure, keylog,
             trace, json_out, http, timeout, cert=None, key=None, reconnect=0,
             early_data=None, html=None, *, full=False, no_color=False, lang="en") -> None:
    """``connect``; with --json, every failure with exit code 1 prints a document with
    ``"ok": false`` (bad input, exit code 2, prints nothing on stdout)."""
    emitted: list[dict] = []
    with output_options(no_color, lang):
        _connect_with_options(target, servername, tls, cipher, group, sigalg, alpn, ca_file,
                              insecure, keylog, trace, json_out, http, timeout, cert, key,
                              reconnect, early_data, html, full, emitted)


def _connect_with_options(target, servername, tls, cipher, group, sigalg, alpn, ca_file,
                          insecure, keylog, trace, json_out, http, timeout, cert, key,
                          reconnect, early_data, html, full, emitted) -> None:

    def emit(doc: dict) -> None:
        emitted.append(doc)
        print(json.dumps(doc, indent=2))

    try:
        _connect_body(target, servername, tls, cipher, group, sigalg, alpn, ca_file, insecure,
                      keylog, trace, json_out, http, timeout, cert, key, reconnect, early_data,
                      html, emit, full)
    except (UsageProblem, typer.Exit, KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as e:
        if json_out and not emitted:
            line = str(e) if isinstance(e, Failure) else f"unexpected {type(e).__name__}: {e}"
            emit({"ok": False, "target": target,
                  "error": {"code": "failed" if isinstance(e, Failure) else "internal",
                            "reason": line, "summary": line}})
        raise


def _connect_body(target, servername, tls, cipher, group, sigalg, alpn, ca_file, insecure,
                  keylog, trace, json_out, http, timeout, cert, key, reconnect, early_data,
                  html, emit, full=False) -> None:
    from ..proto.config import ClientConfig
    from ..proto.tickets import TicketStore
    from ..workbench import render

    host, port = parse_target(target)
    _check_host_name(host)
    if servername is not None:
        _check_host_name(servername, "--servername")
    if ca_file is not None and insecure:
        raise UsageProblem("--ca-file and --insecure exclude each other")
    _check_timeout(timeout)
    if not 0 <= reconnect <= 100:
        raise UsageProblem("--reconnect must be 0..100")
    if early_data is not None and not early_data and not http:
        raise UsageProblem("--early-data needs some text to send")
    _check_output(html, "--html")
    keylog_path = _check_keylog(keylog)
    chain, private_key = _load_client_identity(cert, key)
    try:
        config = ClientConfig(
            server_name=servername or host, ca_file=_check_file(ca_file, "--ca-file"),
            insecure=insecure, versions=_check_versions(tls), cipher_suites=_split(cipher),
            groups=_split(group), signature_algorithms=_split(sigalg),
            alpn_protocols=_split(alpn), keylog_file=keylog_path,
            certificate_chain=chain, private_key=private_key,
            # with a certificate at hand, also answer post-handshake requests (RFC 8446 §4.6.2)
            post_handshake_auth=chain is not None,
            # tickets from one connection resume the next ones (this process only)
            session_store=TicketStore())
    except ValueError as e:
        raise UsageProblem(str(e)) from None
    except OSError as e:
        raise UsageProblem(f"cannot read {e.filename or ca_file}: {e.strerror or e}") from None

    target_text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sni = servername or host
    early: bytes | None = None
    if early_data is not None:
        early = _http_request(sni, port).encode("ascii") if http else early_data.encode("utf-8")
    console = None if json_out else _out()
    results: list[dict] = []
    total = 1 + reconnect
    for i in range(total):
        try:
            res = _connect_once(host, port, config, timeout, target_text, http=http, sni=sni,
                                early=early, want_tickets=i < total - 1)
        except _ConnectionFailed as f:
            prefix = f"connection {i + 1} of {total}: " if total > 1 else ""
            if json_out:
                doc = f.doc
                if results:
                    doc["previous_connections"] = [
                        render.handshake_profile(r["sock"].trace, r["sock"].negotiated,
                                                 r["sock"].timings_ms) for r in results]
                emit(doc)
            elif f.handshake_error is not None:
                # the handshake up to the failure, where it broke, and the cause with its
                # evidence; the one error line still goes to stderr
                e = f.handshake_error
                if trace:
                    render.render_bytes(e.trace, console=console, full=full, negotiated=e.negotiated)
                    console.print()
                render.render_sequence(
                    e.trace, e.negotiated, console=console, error=e,
                    title=(f"connection {i + 1} of {total} (failed)" if total > 1
                           else _texts().ui("handshake_with_failed", target=target_text)))
            _say_keylog(keylog_path, json_out)
            if html is not None:
                pages = [_page_of_success(r, target_text, j, total) for j, r in enumerate(results)]
                pages.append(_page_of_failure(f, target_text, i, total))
                _write_html_page(html, pages, json_out)
            raise Failure(prefix + f.line) from None
        res["verification"] = _verification(res["sock"], config, sni) if insecure else None
        res["early_data_note"] = _early_data_note(early, res["sock"], results)
        results.append(res)
        if not json_out:
            _print_connection(console, res, i, total, target_text, trace, full)
    _say_keylog(keylog_path, json_out)

    first = results[0]
    sock = first["sock"]
    failure: str | None = None  # exit code 1 after all (HTTP failed, --html not written)
    failure_code = None
    for i, r in enumerate(results):
        h = r["http"]
        if h is not None and h.get("error"):
            where = f" (connection {i + 1} of {total})" if total > 1 else ""
            failure, failure_code = f"HTTP request failed{where}: {h['error']}", "http"
            break
    if html is not None:
        try:  # before the JSON, which then tells whether it failed
            _write_html_page(html, [_page_of_success(r, target_text, j, total)
                                    for j, r in enumerate(results)], json_out)
        except Exception as e:
            if not isinstance(e, Failure) and os.environ.get("TLSLAB_DEBUG"):
                raise
            failure = failure or (str(e) if isinstance(e, Failure)
                                  else f"cannot write --html {html}: {type(e).__name__}: {e}")
            failure_code = failure_code or "html"
    profiles = [render.handshake_profile(r["sock"].trace, r["sock"].negotiated, r["sock"].timings_ms)
                for r in results]
    for p, r in zip(profiles, results):
        if r.get("early_data_note"):
            p["early_data_note"] = r["early_data_note"]
    if json_out:
        doc = render.to_json(sock.trace, sock.negotiated, peer_certificates=sock.peer_certificates,
                             target=target_text, timing_ms=sock.timings_ms,
                             verification=first.get("verification"))
        if keylog_path:
            doc["keylog_file"] = os.path.abspath(keylog_path)
        if first["http"] is not None:
            doc["http"] = first["http"]
        if total > 1 or early is not None:
            reconnections = []
            for r in results[1:]:
                s2 = r["sock"]
                d = render.to_json(s2.trace, s2.negotiated, include_fields=False,
                                   timing_ms=s2.timings_ms, resumed=s2.resumed,
                                   early_data_sent=r["early_data_sent"],
                                   early_data_accepted=s2.early_data_accepted,
                                   verification=r.get("verification"))
                if r.get("early_data_note"):
                    d["early_data_note"] = r["early_data_note"]
                if r["http"] is not None:
                    d["http"] = r["http"]
                reconnections.append(d)
            doc["reconnections"] = reconnections
            doc["comparison"] = profiles
        if failure is not None:
            doc["ok"] = False
            doc["error"] = {"code": failure_code, "reason": failure, "alert_sent": None,
                            "alert_received": None, "summary": failure}
        emit(doc)
    else:
        if early is not None and total == 1:
            console.print(Text("note: 0-RTT needs a ticket from an earlier connection: "
                               "use --early-data with --reconnect N", style="yellow"))
        if total > 1:
            console.print()
            render.render_comparison(profiles, console=console)
    if failure is not None:
        raise Failure(failure)


def _page_of_success(r: dict, target_text: str, i: int, total: int) -> dict:
    s = r["sock"]
    t = s.timings_ms
    title = None
    if total > 1:
        title = (f"TLS handshake with {target_text} (connection {i + 1} of {total}"
                 f"{', resumed' if s.resumed else ''})")
    return {"trace": s.trace, "negotiated": s.negotiated, "peer_certificates": s.peer_certificates,
            "target": target_text, "title": title, "timing_ms": t,
            "verification": r.get("verification")}


def _page_of_failure(f: "_ConnectionFailed", target_text: str, i: int, total: int) -> dict:
    e = f.handshake_error
    title = f"TLS handshake with {target_text}" + (f" (connection {i + 1} of {total})"
                                                    if total > 1 else "")
    if e is None:  # no handshake at all (DNS, refused, timeout): an empty trace
        return {"trace": None, "negotiated": {}, "error": f.line, "error_line": f.line,
                "target": target_text, "title": title}
    return {"trace": e.trace, "negotiated": e.negotiated, "error": e, "error_line": f.line,
            "peer_certificates": e.peer_certificates, "target": target_text, "title": title}


def _print_connection(console, res: dict, i: int, total: int, target_text: str, trace: bool,
                      full: bool = False) -> None:
    """Human output for connection ``i``: the full view for the first, a compact one after."""
    from ..workbench import render
    sock = res["sock"]
    t = sock.timings_ms
    timing = f"TCP connect {t.get('tcp_connect', 0):.1f} ms, handshake {t.get('handshake', 0):.1f} ms"
    if i > 0:
        console.print()
        ed = sock.early_data_accepted
        early = "" if ed is None else f" early_data={'accepted' if ed else 'rejected'}"
        if ed is None and res.get("early_data_note"):
            early = f" early_data=not sent ({res['early_data_note']})"
        console.print(Text(_safe(f"reconnection {i} of {total - 1}: "
                                 f"resumed={'true' if sock.resumed else 'false'}"
                                 f"{early}  {sock.negotiated.get('version')} "
                                 f"{sock.negotiated.get('cipher_suite')}  {timing}"), style="bold"))
    if trace:
        render.render_bytes(sock.trace, console=console, full=full, negotiated=sock.negotiated)
        console.print()
    if i == 0:
        title = _texts().ui("handshake_with", target=target_text) + (
            f" ({_texts().ui('connection_of', i=1, n=total)})" if total > 1 else "")
        render.render_sequence(sock.trace, sock.negotiated, console=console, title=title,
                               timing_ms=t, verification=res.get("verification"))
    else:
        render.render_sequence(sock.trace, sock.negotiated, console=console, show_summary=False)
    h = res["http"]
    if h is not None:
        console.print()
        if h.get("error"):
            console.print(Text(_safe(f"HTTP: {h['error']}"), style="red"))
        if i == 0:
            console.print(Text(_terminal_response(h.get("response", ""))))
        else:
            status = (h.get("response") or "").split("\r\n", 1)[0]
            sent = " (request sent as 0-RTT data)" if sock.early_data_accepted else ""
            console.print(Text(_safe(f"HTTP: {status or 'no response'}{sent}, "
                                     f"{len(h.get('response') or '')} characters")))


def _verification(sock, config, sni: str) -> dict:
    """With --insecure: what verifying the server's chain against the system trust store
    would have said (the reason it would have failed, in the diagnosis vocabulary)."""
    from ..proto.certificates import load_trust_store, verify_server_chain
    out: dict[str, Any] = {"verified": False, "how": "--insecure"}
    chain = list(getattr(sock, "peer_certificates", None) or [])
    if not chain:
        return out
    try:
        verify_server_chain(chain, sni, load_trust_store(None),
                            datetime.datetime.now(datetime.timezone.utc))
        out["would_pass"] = True
    except Exception as e:  # the library's exceptions carry a code; anything else: a reason
        out["would_fail"] = {"code": getattr(e, "code", None),
                             "reason": " ".join(str(e).split()) or type(e).__name__}
    return out


def _early_data_note(early: bytes | None, sock, previous: list[dict]) -> str | None:
    """Why no 0-RTT data went out on this connection (``--early-data``), or None."""
    from ..view.i18n import texts
    from ..view.summary import tickets_allow_early_data
    if early is None or sock.early_data_accepted is not None:
        return None
    T = texts()
    if sock.negotiated.get("version") != "TLS 1.3":
        return T.ui("early_data_reason_tls12")
    if not previous:
        return T.ui("early_data_reason_no_ticket")
    allowed = [tickets_allow_early_data(r["sock"].trace) for r in previous]
    if not any(allowed) and any(a is False for a in allowed):
        return T.ui("early_data_reason_no_0rtt")
    if not any(a is not None for a in allowed):
        return T.ui("early_data_reason_no_ticket")
    if not sock.resumed:
        return T.ui("early_data_reason_not_resumed")
    return None


def _say_keylog(path: str | None, json_out: bool) -> None:
    """Where --keylog wrote (stderr with --json, so that stdout stays pure JSON)."""
    if not path:
        return
    from ..view.i18n import texts
    line = _safe(texts().ui("keylog_written", path=os.path.abspath(path)))
    if json_out:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    else:
        print(line, flush=True)


def _texts():
    from ..view.i18n import texts
    return texts()
