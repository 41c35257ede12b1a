"""Helpers shared by the commands of the ``tlslab`` command line: one-line errors and exit
codes, argument checks, output options, the pipe-aware console, the HTML page, HTTP GET.

Exit codes (every command): 0 success; 1 the connection or handshake failed;
2 bad input (unknown option value, missing file, ...).  Errors are one line on
stderr, ``error: ...``; never a traceback (``TLSLAB_DEBUG=1`` shows it).
"""
from __future__ import annotations

import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console

from .. import __version__


class UsageProblem(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class Failure(Exception):
    """The operation failed (network, handshake): one line, exit code 1."""


def _safe(value: Any) -> str:
    """Text for the terminal: control characters and escape sequences made visible."""
    from ..workbench.render import safe_text
    return safe_text(value)


def _fail_line(message: str) -> None:
    text = _safe(" ".join(str(message).split()))  # one line, always; no escape sequences
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def _run(fn, *args, **kwargs) -> None:
    """Run a command body, turning every failure into one line and an exit code."""
    try:
        fn(*args, **kwargs)
    except UsageProblem as e:
        _fail_line(str(e))
        raise typer.Exit(2)
    except Failure as e:
        _fail_line(str(e))
        raise typer.Exit(1)
    except typer.Exit:
        raise
    except BrokenPipeError:  # `tlslab ... | head`: the reader had enough; not a failure
        quiet_stdout()
        raise typer.Exit(0)
    except KeyboardInterrupt:
        raise typer.Exit(130)
    except Exception as e:  # never a traceback for users
        if os.environ.get("TLSLAB_DEBUG"):
            raise
        _fail_line(f"unexpected {type(e).__name__}: {e} (TLSLAB_DEBUG=1 shows the traceback)")
        raise typer.Exit(1)


def run_command(body: Callable[[], int], *, emit_error: Callable[[str, str], None],
                bad_input: tuple[type[BaseException], ...] = (UsageProblem,),
                failure: tuple[type[BaseException], ...] = (Failure,),
                broken_pipe_exit: int = 0,
                unexpected: str = "unexpected {type}: {error}") -> int:
    """Run a command body that reports its own errors (with --json, in the command's own
    JSON shape): the body's exit code, or the exit code of its failure.

    ``emit_error(code, message)`` reports one failure: ``bad_input`` exceptions (code: the
    exception's ``code`` attribute, else ``bad-input``) exit 2, ``failure`` ones
    (``failed``) 1, anything else (``internal``, worded by ``unexpected``) 1, or its
    traceback with ``TLSLAB_DEBUG`` set; Ctrl-C exits 130, a closed pipe (``| head``)
    ``broken_pipe_exit``; ``typer.Exit`` passes through."""
    try:
        return body()
    except bad_input as e:
        emit_error(getattr(e, "code", "bad-input"), str(e))
        return 2
    except failure as e:
        emit_error("failed", str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `| head`: the reader had enough
        try:
            quiet_stdout()
        except ValueError:  # a stdout without a file descriptor
            pass
        return broken_pipe_exit
    except typer.Exit:
        raise
    except Exception as e:  # never a traceback for users
        if os.environ.get("TLSLAB_DEBUG"):
            raise
        emit_error("internal", unexpected.format(type=type(e).__name__, error=e)
                   + " (TLSLAB_DEBUG=1 shows the traceback)")
        return 1


def quiet_stdout() -> None:
    """After a broken pipe: send what is still buffered for stdout to /dev/null, so that
    Python's exit does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


class _PipeAwareConsole(Console):
    """rich's Console exits with status 1 when the reader of a pipe goes away
    (`tlslab ... | head`); here that is not a failure of the command: exit 0, quietly."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        quiet_stdout()
        raise SystemExit(0)


# every Console of the command line (the commands', typer's help) gets this behaviour
import rich.console as _rich_console  # noqa: E402
_rich_console.Console.on_broken_pipe = _PipeAwareConsole.on_broken_pipe

# --------------------------------------------------------------------------- helpers

def parse_target(target: str, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port``, bare ``v6`` or an https:// URL -> (host, port)."""
    t = target.strip()
    for scheme in ("https://", "tls://"):
        if t.lower().startswith(scheme):
            t = t[len(scheme):].split("/", 1)[0]
    if not t:
        raise UsageProblem("empty target: expected HOST[:PORT]")
    port_text: str | None = None
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep:
            raise UsageProblem(f"bad target {target!r}: missing ']' after the IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise UsageProblem(f"bad target {target!r}: expected [IPv6]:PORT")
            port_text = rest[1:]
    elif t.count(":") == 1:
        host, port_text = t.split(":")
    else:
        host = t  # a name, an IPv4 address, or a bare IPv6 address
    if not host:
        raise UsageProblem(f"bad target {target!r}: no host")
    if port_text is None:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise UsageProblem(f"bad port {port_text!r} in {target!r}") from None
    if not 0 < port < 65536:
        raise UsageProblem(f"port {port} out of range 1..65535")
    return host, port


def _split(values: Optional[List[str]]) -> list[str] | None:
    """Repeatable options also accept comma-separated lists (``--cipher A,B``)."""
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def _check_versions(tls: Optional[List[str]]) -> list[str] | None:
    from ..proto.config import normalize_version
    versions = _split(tls)
    if not versions:
        return None
    try:
        return [normalize_version(v) for v in versions]
    except ValueError as e:
        raise UsageProblem(f"--tls: {e}") from None


def _check_file(path: Optional[Path], option: str) -> str | None:
    """The path of an input file; pipes and /dev/fd/N (``<(...)``) are fine too: the
    loader reports what it cannot read."""
    if path is None:
        return None
    if not path.exists():
        raise UsageProblem(f"{option} {path}: no such file")
    if path.is_dir():
        raise UsageProblem(f"{option} {path}: is a directory")
    return str(path)


def _check_keylog(path: Optional[Path]) -> str | None:
    """The --keylog path, once it is known to be writable (created, mode 0600, if new)."""
    if path is None:
        return None
    if path.is_dir():
        raise UsageProblem(f"--keylog {path}: is a directory")
    try:
        if path.exists() and not path.is_file():  # a FIFO, /dev/stderr...: do not open it twice
            if not os.access(path, os.W_OK):
                raise PermissionError(13, "Permission denied")
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError as e:
        raise UsageProblem(f"--keylog {path}: cannot write: {e.strerror or e}") from None
    return str(path)


def _check_timeout(timeout: float) -> None:
    if not (math.isfinite(timeout) and 0 < timeout <= 86400):
        raise UsageProblem(f"--timeout {timeout}: expected seconds, more than 0 and at most 86400")


def _check_host_name(name: str, option: str = "host") -> None:
    """A name the resolver and SNI can take: IDNA-encodable, no control characters."""
    bad = _safe(name) != name
    try:
        name.encode("idna")
    except UnicodeError:
        bad = True
    if bad:
        raise UsageProblem(f"bad host name {name!r} ({option}): not a valid (IDNA) host name")


def _format_handshake_error(e) -> str:
    """``handshake failed: certificate verify failed: hostname mismatch: ... (sent alert X)``."""
    reason = " ".join(str(e.reason).split())
    code = getattr(e, "code", None)
    cert_alerts = {"bad_certificate", "unknown_ca", "certificate_expired",
                   "unsupported_certificate", "certificate_unknown", "certificate_revoked"}
    if code and code != "timeout" and (e.alert_sent in cert_alerts or "certif" in reason.lower()):
        core = f"certificate verify failed: {code.replace('-', ' ')}: {reason}"
    elif code and code != "timeout" and code not in reason:
        core = f"{reason} [{code}]"
    else:
        core = reason
    if e.alert_sent:
        core += f" (sent alert {e.alert_sent})"
    elif e.alert_received and e.alert_received not in core:
        core += f" (received alert {e.alert_received})"
    if e.alert_received == "certificate_required":
        core += "; the server requires a client certificate: pass --cert PEM --key PEM"
    return f"handshake failed: {core}"


def _connect_error(e: OSError, host: str, port: int, timeout: float) -> tuple[str, str]:
    """(code, one-line message) for a TCP-level failure."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(e, socket.gaierror):
        return "dns", f"cannot resolve host {host!r}: {e.strerror or e}"
    if isinstance(e, ConnectionRefusedError):
        return "connection-refused", f"connection refused by {where} (is a TLS server listening there?)"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return "timeout", f"timed out after {timeout:g} s connecting to {where}"
    return "connect-failed", f"cannot connect to {where}: {e.strerror or e}"


def _out() -> Console:
    return Console(highlight=False)


# --------------------------------------------------------------------------- connect

def _load_client_identity(cert: Optional[Path], key: Optional[Path]) -> tuple[list | None, Any]:
    """(chain, private key) from --cert/--key, or (None, None); one-line errors."""
    from ..proto.config import load_identity
    if cert is None and key is None:
        return None, None
    if cert is None or key is None:
        raise UsageProblem("--cert and --key go together")
    cert_path, key_path = _check_file(cert, "--cert"), _check_file(key, "--key")
    try:
        return load_identity(cert_path, key_path)
    except OSError as e:
        raise UsageProblem(f"cannot read {e.filename or cert_path}: {e.strerror or e}") from None
    except (ValueError, TypeError) as e:
        raise UsageProblem(f"--cert/--key: {e}") from None


def _http_request(host: str, port: int) -> str:
    host_header = f"[{host}]" if ":" in host else host
    if port != 443:
        host_header += f":{port}"
    return (f"GET / HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: tlslab/{__version__}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n")


def set_output_options(no_color: bool = False, lang: str | None = "en") -> None:
    """``--no-color`` (for every console this process makes: rich honours NO_COLOR) and
    ``--lang`` (the explanation texts of every view).  :func:`output_options` undoes them
    when the command ends."""
    from ..view.i18n import LANGUAGES, use_language
    code = (lang or "en").strip().lower()
    code = {"zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh", "cn": "zh", "english": "en"}.get(code, code)
    if code not in LANGUAGES:
        raise UsageProblem(f"--lang {lang}: unknown language (known: {', '.join(LANGUAGES)})")
    if no_color:
        os.environ["NO_COLOR"] = "1"
    use_language(code)


class output_options:
    """``with output_options(no_color, lang): ...``: the command's options, undone at its end
    (commands run in-process one after another: tests, ``python -c``)."""

    def __init__(self, no_color: bool = False, lang: str | None = "en") -> None:
        self.no_color, self.lang = no_color, lang

    def __enter__(self) -> "output_options":
        from ..view.i18n import current_language
        self._lang, self._env = current_language(), os.environ.get("NO_COLOR")
        set_output_options(self.no_color, self.lang)
        return self

    def __exit__(self, *exc) -> None:
        from ..view.i18n import use_language
        use_language(self._lang)
        if self._env is None:
            os.environ.pop("NO_COLOR", None)
        else:
            os.environ["NO_COLOR"] = self._env


def _check_output(path: Optional[Path], option: str) -> None:
    """Fail early (bad input) when an output file cannot be created where asked."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageProblem(f"{option} {path}: is a directory")
    if not parent.is_dir():
        raise UsageProblem(f"{option} {path}: no such directory {parent}")


def _write_html_page(path: Path, pages: list[dict], json_out: bool = False) -> None:
    """Write the illustrated page(s) and say where, in one line (stderr with --json)."""
    from ..workbench.html import write_html
    first, more = dict(pages[0]), pages[1:]
    trace, negotiated = first.pop("trace", None), first.pop("negotiated", None)
    try:
        write_html(path, trace, negotiated, more=more, **first)
    except OSError as e:
        raise Failure(f"cannot write --html {path}: {e.strerror or e}") from None
    line = _safe(f"illustrated handshake written to {path}")
    if json_out:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    else:
        print(line, flush=True)



def _terminal_response(response: str) -> str:
    """An HTTP response (from the peer) for the terminal: CRLF as newlines, every other
    control character (ESC, OSC 52 ...) shown as an escape."""
    return _safe(response.replace("\r\n", "\n"))


#: what connect --http reports when the server ends TCP without close_notify
TRUNCATED = "connection closed without close_notify (the response may be truncated)"


def _http_get(sock, host: str, port: int, timeout: float, *, already_sent: bool = False) -> dict:
    """GET / (unless ``already_sent``: it went out as 0-RTT data) and read the answer,
    within ``timeout`` seconds in all."""
    request = _http_request(host, port)
    result: dict[str, Any] = {"request": request}
    if already_sent:
        result["sent_as_early_data"] = True
    data = bytearray()
    deadline = time.monotonic() + timeout
    try:
        sock.settimeout(timeout)
        if not already_sent:
            sock.send(request.encode("ascii"))
        while len(data) < (4 << 20):
            chunk = sock.recv(deadline=deadline)
            if not chunk:
                if getattr(sock, "truncated", False):
                    result["error"] = TRUNCATED
                break
            data += chunk
    except (TimeoutError, socket.timeout):
        result["error"] = f"timed out after {timeout:g} s waiting for the HTTP response"
    except (OSError, ConnectionError) as e:
        result["error"] = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    result["response"] = data.decode("utf-8", "replace")
    return result
