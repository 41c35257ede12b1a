"""``tlslab decode``: every TLS connection of a pcap/pcapng capture, decrypted with an NSS
key log when one is given, shown by the same views as ``connect``.

Arguments and output only: reading, reassembly, decoding and decryption are
:mod:`tlslab.capture`'s; the views are :mod:`tlslab.view`'s.
"""
from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import Optional

import typer

from .common import _fail_line, _out, run_command
from .main import app

EPILOG = """\
[bold]Examples[/bold]

  tlslab decode trace.pcapng                           # what is visible in clear, and what needs a key
  tlslab decode trace.pcap --keylog sslkeys.log        # decrypted (SSLKEYLOGFILE / NSS key log)
  tlslab decode trace.pcap --keylog keys.log --stream 3 --trace   # one connection, byte by byte
  tlslab decode trace.pcap --keylog keys.log --html report.html
  tlslab decode trace.pcap --keylog keys.log --json | jq '.connections[].application_data'

Any TCP port: TLS is recognised by parsing (also after SMTP/IMAP/POP3 STARTTLS or an HTTP
CONNECT).  Key log labels read: CLIENT_RANDOM, RSA and PMS_CLIENT_RANDOM (TLS 1.0-1.2);
CLIENT_EARLY_TRAFFIC_SECRET, CLIENT/SERVER_HANDSHAKE_TRAFFIC_SECRET,
CLIENT/SERVER_TRAFFIC_SECRET_0 (later ones derived after KeyUpdate, RFC 8446 §7.2),
EXPORTER_SECRET, EARLY_EXPORTER_SECRET (TLS 1.3).  --stream N is the connection's number,
as Wireshark's tcp.stream counts (order of first packet, from 0).

--json prints {"file", "keylog", "connections": [{"stream", "client", "server",
"version", "cipher_suite", "decrypted", "messages": [{"direction", "type", "offset",
"length", "fields", ...}], "application_data": [{"direction", "length", "data_hex",
...}], "problems", ...}], "summary", "problems"}; direction is "client_to_server" or
"server_to_client"; secrets appear by label only.  Bad input gives {"file", "error":
{"code", "message"}, "connections": []}.

Exit codes: 0 decoded; 1 no TLS connection in the capture, or a key log was given and not
one encrypted record could be decrypted with it; 2 bad input (missing or unreadable file,
not a capture, not a key log, no such --stream).
"""

#: connections put in one HTML page (the page holds every message's bytes)
HTML_LIMIT = 50
#: connections shown in full by the terminal view; later ones get one line each (--all
#: shows every one in full, --stream N one)
FULL_VIEWS = 20


class _BadInput(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@app.command(epilog=EPILOG)
def decode(
    capture: Optional[Path] = typer.Argument(None, metavar="CAPTURE",
                                             help="A pcap or pcapng capture file."),
    keylog: Optional[Path] = typer.Option(None, "--keylog", metavar="FILE",
                                          help="NSS key log (SSLKEYLOGFILE) to decrypt with."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also on bad input)."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE",
                                        help="Also write the connections as one self-contained "
                                             f"HTML page (the first {HTML_LIMIT})."),
    stream: Optional[int] = typer.Option(None, "--stream", metavar="N",
                                         help="Only TCP connection N (Wireshark's tcp.stream)."),
    trace: bool = typer.Option(False, "--trace", help="Byte-level view of every record and "
                                                      "message."),
    full: bool = typer.Option(False, "--full", help="With --trace: long values whole."),
    show_all: bool = typer.Option(False, "--all", help=f"Show every connection in full (by "
                                                       f"default the first {FULL_VIEWS} are, "
                                                       "then one line each)."),
    max_data: int = typer.Option(1 << 16, "--max-data", metavar="BYTES",
                                 help="Decrypted application data kept per connection for "
                                      "--json and the views (default 65536)."),
    no_color: bool = typer.Option(False, "--no-color", help="No colours or styles (as "
                                                            "NO_COLOR=1 does)."),
    lang: str = typer.Option("en", "--lang", metavar="LANG",
                             help="Language of the explanations: en or zh."),
) -> None:
    """Decode the TLS connections of a capture; decrypt them with a key log."""
    name = str(capture) if capture is not None else None
    code = run_command(lambda: _decode(capture, keylog, json_out, html, stream, trace, full,
                                       max_data, no_color, lang, show_all),
                       emit_error=partial(_error, json_out, name), bad_input=(_BadInput,),
                       failure=(), broken_pipe_exit=1)
    raise typer.Exit(code)


def _error(json_out: bool, name: Optional[str], code: str, message: str) -> None:
    message = " ".join(message.split())
    if json_out:
        print(json.dumps({"file": name, "error": {"code": code, "message": message},
                          "connections": []}, indent=2))
    _fail_line(message)


def _options(no_color: bool, lang: str) -> None:
    from . import common
    setter = getattr(common, "set_output_options", None)
    if setter is None:
        if no_color:
            os.environ["NO_COLOR"] = "1"
        return
    try:
        setter(no_color, lang)
    except common.UsageProblem as e:
        raise _BadInput("bad-option", str(e)) from None


def _decode(capture, keylog_path, json_out, html, stream, trace, full, max_data, no_color,
            lang, show_all=False) -> int:
    from ..capture.decode import CaptureDecoder
    from ..capture.files import CaptureError
    from ..capture.keylog import KeyLogError, read_keylog

    _options(no_color, lang)
    if capture is None:
        raise _BadInput("missing-file", "missing CAPTURE: a pcap or pcapng file (try --help)")
    if stream is not None and stream < 0:
        raise _BadInput("bad-option", f"--stream {stream}: connection numbers start at 0")
    if max_data < 0:
        raise _BadInput("bad-option", f"--max-data {max_data}: must be 0 or more")
    if html is not None:
        parent = html.parent if str(html.parent) else Path(".")
        if html.is_dir() or not parent.is_dir():
            raise _BadInput("bad-option", f"--html {html}: cannot write there")
    keylog = None
    if keylog_path is not None:
        try:
            keylog = read_keylog(keylog_path)
        except KeyLogError as e:
            raise _BadInput(e.code, str(e)) from None
    try:
        decoder = CaptureDecoder(capture, keylog, stream=stream, max_data=max_data,
                                 spans=json_out)
    except CaptureError as e:
        raise _BadInput("not-a-capture" if "not a" in str(e) else "unreadable", str(e)) from None
    writer = (_JsonWriter(str(capture), keylog, stream is not None) if json_out
              else _Human(trace, full, keylog, show_all))
    pages: list[dict] = []
    count = decrypted_any = protected_any = 0
    try:
        for conn in decoder.connections():
            count += 1
            protected_any += conn.protected_records
            decrypted_any += conn.decrypted_records
            writer.connection(conn)
            if html is not None and len(pages) < HTML_LIMIT:
                pages.append(_page(conn))
    finally:
        decoder.close()
    summary = decoder.summary
    if stream is not None and count == 0 and stream >= summary.tcp_connections:
        writer.abandon()
        raise _BadInput("no-such-stream",
                        f"--stream {stream}: the capture has {summary.tcp_connections} TCP "
                        f"connection{'s' if summary.tcp_connections != 1 else ''}"
                        + (f" (0 to {summary.tcp_connections - 1})" if summary.tcp_connections else ""))
    failed_entirely = keylog is not None and protected_any and not decrypted_any
    verdict = _verdict(summary, count, stream, failed_entirely, keylog)
    writer.end(summary, verdict)
    if html is not None and pages:
        _write_html(html, pages, str(capture), json_out, count)
    if count == 0 or failed_entirely:
        return 1
    return 0


def _verdict(summary, count: int, stream, failed_entirely: bool, keylog) -> str | None:
    """The one line said when the command fails (exit code 1)."""
    if count == 0:
        where = (f"TCP connection {stream} is not TLS" if stream is not None else
                 f"no TLS connection in the capture ({summary.tcp_connections} TCP "
                 f"connection{'s' if summary.tcp_connections != 1 else ''}"
                 f"{', ' + str(summary.packets) + ' packets' if summary.packets else ''})")
        if summary.not_tls:
            where += f"; {summary.not_tls[0][3]}"
        if summary.problems:
            where += f"; {summary.problems[0]}"
        return where
    if failed_entirely:
        return (f"the key log {keylog.path} decrypts none of the encrypted records: it holds "
                f"no usable secret for these connections (see the problems listed)")
    return None


def _page(conn) -> dict:
    title = (f"connection {conn.index}: {conn.client} → {conn.server}"
             + (f" ({conn.version}, {conn.cipher_suite})" if conn.version else ""))
    return {"trace": conn.trace, "negotiated": dict(conn.negotiated), "error": conn.error,
            "title": title}


def _write_html(path: Path, pages: list[dict], capture: str, json_out: bool,
                total: int) -> None:
    try:
        from ..view.html import write_html
    except ImportError:  # pragma: no cover - the older location
        from ..workbench.html import write_html
    first = dict(pages[0])
    trace, negotiated = first.pop("trace"), first.pop("negotiated")
    try:
        write_html(path, trace, negotiated, more=pages[1:], **first)
    except OSError as e:
        _fail_line(f"--html {path}: cannot write: {e.strerror or e}")
        return
    if not json_out:
        more = (f" (the first {len(pages)} of {total} connections; --stream N for another)"
                if total > len(pages) else "")
        print(f"HTML report written to {path}{more}", file=sys.stderr)


# --------------------------------------------------------------------------- outputs

class _JsonWriter:
    """Streams the JSON document: connections are printed as they are decoded."""

    def __init__(self, path: str, keylog, buffered: bool = False) -> None:
        self._first = True
        # with --stream the document is held until the end: "no such stream" is only known
        # then, and must replace it rather than follow it
        self._parts: list[str] | None = [] if buffered else None
        head = {"file": path, "keylog": keylog.summary() if keylog is not None else None}
        text = json.dumps(head, indent=2)
        self._write(text[:-2] + ',\n  "connections": [')

    def _write(self, text: str) -> None:
        if self._parts is not None:
            self._parts.append(text)
        else:
            sys.stdout.write(text)

    def connection(self, conn) -> None:
        from ..capture.report import connection_json
        # one connection per line: compact enough for a thousand connections (the C encoder
        # runs only without indent), still one object per line for grep and jq
        doc = json.dumps(connection_json(conn), ensure_ascii=False)
        self._write(("\n" if self._first else ",\n") + doc)
        self._first = False

    def abandon(self) -> None:
        """Bad input found at the end (--stream N): the error document replaces this one."""
        self._parts = []

    def end(self, summary, verdict: str | None) -> None:
        tail = {"summary": summary.to_json(), "problems": list(summary.problems)}
        if verdict:
            tail["error"] = {"code": "no-tls" if "no TLS" in verdict or "not TLS" in verdict
                             else "not-decrypted", "message": verdict}
        text = json.dumps(tail, indent=2)
        self._write(("\n],\n" if not self._first else "],\n") + text[2:] + "\n")
        if self._parts is not None:
            sys.stdout.write("".join(self._parts))
        sys.stdout.flush()
        if verdict:
            _fail_line(verdict)


class _Human:
    """The terminal view: per connection a heading, the shared sequence (or byte) view,
    and what could not be decoded."""

    def __init__(self, trace: bool, full: bool, keylog, show_all: bool = False) -> None:
        self.console = _out()
        self.trace = trace
        self.full = full
        self.keylog = keylog
        self.show_all = show_all
        self.shown = 0
        if keylog is not None and keylog.problems:
            from rich.text import Text
            self.console.print(Text(f"key log {keylog.path}: {keylog.entries} secrets read; "
                                    f"{keylog.skipped} line(s) skipped", style="yellow"))
            for p in keylog.summary()["problems"][:10]:
                self.console.print(Text(f"  · {p}", style="yellow"))

    def connection(self, conn) -> None:
        from rich.text import Text
        from ..view.common import safe_text
        from ..view.terminal import render_bytes, render_sequence
        c = self.console
        head = f"connection {conn.index}: {conn.client} → {conn.server}"
        bits = [b for b in (conn.version, conn.cipher_suite) if b]
        if conn.upgraded_from:
            bits.append(f"after {conn.upgraded_from}")
        bits.append({"complete": "decrypted", "partial": "partly decrypted",
                     "none": "encrypted (not decrypted)",
                     "not needed": "nothing encrypted"}[conn.decryption])
        self.shown += 1
        if not self.show_all and self.shown > FULL_VIEWS:
            # past the first connections, one line each: a thousand sequence diagrams are
            # neither readable nor quick to draw
            if self.shown == FULL_VIEWS + 1:
                c.print()
                c.print(Text(f"(more than {FULL_VIEWS} connections: one line each from here; "
                             "--stream N shows one in full, --all every one)", style="dim"))
            bits.append(f"{len(conn.messages)} messages")
            if conn.application_data:
                bits.append(f"{sum(a.length for a in conn.application_data)} bytes of "
                            "application data")
            if conn.problems:
                bits.append(f"{len(conn.problems)} problem(s): {conn.problems[0]}")
            c.print(Text(safe_text(head + "  —  " + ", ".join(bits))))
            return
        c.print()
        c.print(Text(safe_text(head + "  —  " + ", ".join(bits)), style="bold"))
        if self.trace:
            render_bytes(conn.trace, console=c, negotiated=dict(conn.negotiated), full=self.full)
        else:
            render_sequence(conn.trace, dict(conn.negotiated), console=c, error=conn.error)
        if conn.problems:
            c.print(Text("what could not be decoded:", style="yellow"))
            for p in conn.problems:
                c.print(Text(safe_text(f"  · {p}"), style="yellow"))

    def abandon(self) -> None:
        pass

    def end(self, summary, verdict: str | None) -> None:
        from rich.text import Text
        from ..view.common import safe_text
        c = self.console
        c.print()
        line = (f"{summary.path}: {summary.format} capture, {summary.packets} packets, "
                f"{summary.tcp_connections} TCP connection{'s' if summary.tcp_connections != 1 else ''}, "
                f"{summary.tls_connections} with TLS")
        c.print(Text(safe_text(line), style="bold"))
        for index, client, server, reason in summary.not_tls[:20]:
            c.print(Text(safe_text(f"  · connection {index} ({client} → {server}): {reason}"),
                         style="dim"))
        if len(summary.not_tls) > 20:
            c.print(Text(f"  · … {len(summary.not_tls) - 20} more connections without TLS",
                         style="dim"))
        for p in summary.problems:
            c.print(Text(safe_text(f"  · {p}"), style="yellow"))
        if summary.out_of_order:
            c.print(Text("  · (connections shown partly out of order: more than 256 finished "
                         "while an earlier one stayed open)", style="dim"))
        if verdict:
            _fail_line(verdict)
