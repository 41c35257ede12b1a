"""The ``tlslab`` command line (typer + rich): connect, serve, demo.

Exit codes (every command): 0 success; 1 the connection or handshake failed;
2 bad input (unknown option value, missing file, ...).  Errors are one line on
stderr, ``error: ...``; never a traceback (``TLSLAB_DEBUG=1`` shows it).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import typer

from .. import __version__
from .common import _safe, quiet_stdout
from .common import parse_target  # noqa: F401  (imported from here by tests and tools)

app = typer.Typer(
    name="tlslab",
    help="TLS 1.3 workbench: see, byte by byte, what happens in a handshake.\n\n"
         "Exit codes: 0 ok, 1 connection or handshake failed, 2 bad input.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tlslab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version_callback,
                                       is_eager=True, help="Print the version and exit.")) -> None:
    """TLS 1.3 workbench."""


# commands with a module of their own register on ``app`` when imported
from . import connect as _connect_command  # noqa: E402,F401
from . import demo as _demo_command  # noqa: E402,F401
from . import decode as _decode_command  # noqa: E402,F401
from . import diagnose as _diagnose_command  # noqa: E402,F401
from . import explain as _explain_command  # noqa: E402,F401
from . import fingerprint as _fingerprint_command  # noqa: E402,F401
from . import serve as _serve_command  # noqa: E402,F401
from . import scan as _scan_command  # noqa: E402,F401
from . import simulate as _simulate_command  # noqa: E402,F401
from ..workbench.httppage import http_handler  # noqa: E402,F401  (the page serve and demo answer with)


def __getattr__(name: str) -> Any:
    """Names that moved to :mod:`tlslab.cli.serve`, still importable from here."""
    if name in ("_server_config", "_Logger"):
        from . import serve
        return getattr(serve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``tlslab`` and ``python -m tlslab``.

    Usage errors found by the option parser (an unknown option, a missing value) exit 2
    like the commands' own bad-input errors, and with ``--json`` they print a JSON error
    too, so that scripts get JSON on every path."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="tlslab", standalone_mode=False)
    except BrokenPipeError:  # a command that did not catch it: `| head` is not a failure
        quiet_stdout()
        sys.exit(0)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except typer.TyperException as e:  # the parser's usage errors (exit code 2)
        code = getattr(e, "exit_code", 2)
        if "--json" in args and hasattr(e, "format_message"):
            print(json.dumps({"ok": False, "error": {"code": "bad-input",
                                                     "message": _safe(e.format_message())}}, indent=2))
        e.show()
        sys.exit(code)
    code = result if isinstance(result, int) else 0
    try:
        sys.stdout.flush()  # what is still buffered: a closed pipe shows here, not as a failure
    except BrokenPipeError:
        quiet_stdout()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
