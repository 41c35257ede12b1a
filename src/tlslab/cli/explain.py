"""``tlslab explain``: what does this TLS error message usually mean, and which
``tlslab diagnose`` command tells its possible causes apart?

Arguments and output only; the matching lives in :mod:`tlslab.diagnose.explain`.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .common import _fail_line, _out, run_command
from .main import app

EPILOG = """\
[bold]Examples[/bold]

  tlslab explain "PKIX path building failed"
  tlslab explain "curl: (35) ... sslv3 alert handshake failure"
  tlslab explain "NET::ERR_CERT_AUTHORITY_INVALID" --json
  java -jar app.jar 2>&1 | tlslab explain    [dim]# a whole stack trace, from stdin[/dim]
  tlslab explain - < /var/log/nginx/error.log
  tlslab explain -- "--- text that starts with a dash"

The text is matched against messages of Java, curl, OpenSSL, Python (ssl, requests), Go, Node, GnuTLS, Chrome, Firefox, .NET, Android, Apple platforms, nginx and Apache (data files in src/tlslab/diagnose/patterns/, each with its source: a capture from the real client, or its documentation). The possible causes, in the vocabulary of tlslab diagnose, are ranked by how often that message means each, with what a trace shows for each one; the last line is the tlslab diagnose command that decides between them, with the server's host:port when the text names it and the --profile closest to the client that failed.

Only the first 64 KiB of the input are read (a longer input is cut, with a note on stderr). Pasted escape sequences and line wrapping do not matter.

--json prints {"input", "matched": [{"client", "pattern", "source"}], "causes": [{"code", "rank", "summary", "how_to_tell"}], "diagnose"}, causes in rank order; for bad input {"input", "error": {"code", "message"}}.

Exit codes: 0 a known message was found; 1 none was (the generic diagnose command is printed); 2 bad input (empty, binary, not UTF-8).
"""

_HELP_TEXT = "The error message or log excerpt; '-' or nothing (with a pipe): read stdin."


@app.command("explain", epilog=EPILOG)
def explain_command(
    text: Optional[str] = typer.Argument(None, metavar='"ERROR TEXT"', help=_HELP_TEXT,
                                         show_default=False),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON (also for bad input)."),
) -> None:
    """Say what a TLS error message usually means, and how to find out which cause it is."""
    from ..diagnose.explain import BadInput

    read: list[bytes | str] = []

    def body() -> int:
        read.append(_read_input(text))
        return _explain(read[0], json_out)

    def emit_error(code: str, message: str) -> None:
        # echo blank input as it was; binary input is not echoed
        echo = None
        if code == "empty-input" and read:
            echo = read[0].decode("utf-8", "replace") if isinstance(read[0], bytes) else read[0]
        _emit_error(json_out, echo, code, message)

    raise typer.Exit(run_command(body, emit_error=emit_error, bad_input=(BadInput,), failure=()))


def _read_input(text: Optional[str]) -> bytes | str:
    """The argument, or at most MAX_INPUT + 1 bytes of stdin (one more, to know that the
    input was longer)."""
    from ..diagnose.explain import MAX_INPUT, BadInput

    if text is not None and text != "-":
        return text
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise BadInput("empty-input", "no error text: give it as an argument, or pipe it in")
    try:
        interactive = stdin.isatty()
    except (OSError, ValueError):
        interactive = False
    if text is None and interactive:
        raise BadInput("empty-input", 'no error text: give it as an argument (tlslab explain "..."), '
                                      "pipe it in, or use '-' and end the paste with Ctrl-D")
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return buffer.read(MAX_INPUT + 1)
    return stdin.read(MAX_INPUT + 1)


def _explain(data: bytes | str, json_out: bool) -> int:
    from ..diagnose.explain import MAX_INPUT, explain, read_input

    text, truncated = read_input(data)
    if truncated:
        sys.stderr.write(f"note: the input is longer than {MAX_INPUT // 1024} KiB; only its first "
                         f"{MAX_INPUT // 1024} KiB were read\n")
        sys.stderr.flush()
    result = explain(text)
    if json_out:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        _render(result, _out())
    sys.stdout.flush()
    return 0 if result.matched else 1


def _emit_error(json_out: bool, text: Optional[str], code: str, message: str) -> None:
    message = " ".join(message.split())
    if json_out:
        try:
            print(json.dumps({"input": text, "error": {"code": code, "message": message}}, indent=2))
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
    _fail_line(message)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- rendering


def _t(value: Any, style: str = "") -> Text:
    from ..workbench.render import safe_text
    return Text(safe_text(value), style=style)


def _render(result, console) -> None:
    if not result.matched:
        console.print(_t("No known TLS error message in this text.", "bold yellow"))
        console.print(_t("tlslab explain knows messages of Java, curl, OpenSSL, Python, Go, Node, "
                         "GnuTLS, browsers, .NET, Android, Apple, nginx and Apache. A diagnosis of "
                         "the server says what is wrong without one:"))
        console.print()
        console.print(Text("  ") + _t(result.diagnose, "bold green"))
        console.print(_t("  (replace HOST:PORT with the server's name and port, e.g. example.com:443)", "dim"))
        return

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("recognised", ratio=3)
    table.add_column("as printed by", ratio=2)
    for m in result.matched:
        table.add_row(_t(result.excerpt(m)),
                      _t(m.pattern.client) + _t(f"\n{m.pattern.client_version}", "dim"))
    console.print(table)
    console.print()

    for cause in result.causes:
        title = Text(f" {cause.rank}. ", style="bold") + _t(cause.code, "bold cyan") \
            + _t(f"  about {max(1, round(cause.share * 100))} % ", "dim")
        body = Group(
            _t(cause.summary, "bold"),
            Text(""),
            Text("How to tell: ", style="italic") + _t(cause.how_to_tell),
        )
        console.print(Panel(body, title=title, title_align="left",
                            border_style="cyan" if cause.rank == 1 else "dim"))

    console.print()
    console.print(_t("Decide with:", "bold"))
    console.print(Text("  ") + _t(result.diagnose, "bold green"))
    hints = []
    if "HOST:" in result.diagnose or ":PORT" in result.diagnose:
        hints.append("replace HOST / PORT with the server's name and port; https uses 443")
    hints.append("add --ca-file CA.pem if the server's certificates come from a private CA")
    for hint in hints:
        console.print(_t(f"  ({hint})", "dim"))
