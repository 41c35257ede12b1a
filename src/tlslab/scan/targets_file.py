"""The targets file of a fleet scan: one target a line, garbage reported and skipped.

Syntax (one line)::

    HOST[:PORT] [servername=NAME] [starttls=PROTO]   # comment

* ``HOST[:PORT]`` as for a single scan (:func:`.target.parse_target`): a DNS name, an IPv4
  literal, ``[V6]:PORT`` or a bare IPv6 literal; the port defaults to 443, or to the
  STARTTLS protocol's own port;
* ``servername=NAME``: the SNI and the name the certificate is checked against (default:
  HOST unless it is an IP literal);
* ``starttls=PROTO``: one of :data:`.target.STARTTLS_PROTOCOLS`;
* ``#`` starts a comment (whole line or after the tokens); blank lines are skipped.

A line that cannot be read becomes a :class:`RejectedLine` (its number, its text, why)
and the rest of the file is still read: one bad line never stops a fleet.  A target
written twice (same key, :func:`target_key`) is rejected the second time, so that the
database holds one row per target and scan.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .target import ScanTarget, TargetError, is_ip, parse_target

#: longer lines are garbage (a binary file, a pasted blob), not targets
MAX_LINE = 1000

# RFC 1123 labels; "_" is allowed because real inventories hold such names (_dmarc, SRV)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_OPTIONS = ("servername", "starttls")


@dataclass(frozen=True)
class RejectedLine:
    """A line of the targets file that was skipped: 1-based ``line``, its ``text``
    (shortened, control characters replaced), and the ``reason``."""

    line: int
    text: str
    reason: str

    def to_json(self) -> dict:
        return {"line": self.line, "text": self.text, "reason": self.reason}


@dataclass
class TargetsFile:
    """What a targets file holds: the targets in file order, and the rejected lines."""

    targets: list[ScanTarget]
    rejected: list[RejectedLine]


class TargetsFileError(Exception):
    """The targets file itself cannot be read (missing, a directory, unreadable)."""


def target_key(t: ScanTarget) -> str:
    """The name a target is stored and diffed under: its line in targets-file syntax
    (``host:port`` plus the options that change what is scanned), so it reads back."""
    key = t.label()
    if t.server_name is not None:
        key += f" servername={t.server_name}"
    if t.starttls is not None:
        key += f" starttls={t.starttls}"
    return key


def valid_host(host: str) -> bool:
    """An IP literal or a syntactically valid DNS name (IDNA names allowed)."""
    if is_ip(host):
        return True
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    ascii_name = ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
    if not ascii_name or len(ascii_name) > 253:
        return False
    return all(_LABEL.match(label) for label in ascii_name.split("."))


def _printable(text: str, limit: int = 120) -> str:
    """A line as it can be shown back to the user: no control characters, bounded."""
    shown = "".join(c if c.isprintable() else "\ufffd" for c in text)
    return shown if len(shown) <= limit else shown[:limit - 1] + "\u2026"


def parse_line(text: str, *, timeout: float = 5.0) -> ScanTarget | None:
    """One line -> a target, or None for a blank/comment line; :class:`TargetError` says
    what is wrong with anything else."""
    body = text.split("#", 1)[0].strip()
    if not body:
        return None
    if len(text) > MAX_LINE:
        raise TargetError(f"line longer than {MAX_LINE} characters")
    if "\ufffd" in body:
        raise TargetError("not UTF-8 text")
    if any(not c.isprintable() for c in body.replace("\t", " ")):
        raise TargetError("control characters or binary data")
    first, *rest = body.split()
    opts: dict[str, str] = {}
    for token in rest:
        name, sep, value = token.partition("=")
        if not sep:
            raise TargetError(f"unexpected {token!r} after the target "
                              f"(options are {', '.join(o + '=' for o in _OPTIONS)})")
        if name not in _OPTIONS:
            raise TargetError(f"unknown option {name!r} (known: {', '.join(_OPTIONS)})")
        if name in opts:
            raise TargetError(f"{name}= given twice")
        if not value:
            raise TargetError(f"empty {name}=")
        opts[name] = value
    server_name = opts.get("servername")
    if server_name is not None and (is_ip(server_name) or not valid_host(server_name)):
        raise TargetError(f"servername={server_name!r} is not a DNS name")
    target = parse_target(first, starttls=opts.get("starttls"), server_name=server_name,
                          timeout=timeout)
    if not valid_host(target.host):
        raise TargetError(f"{target.host!r} is neither a host name nor an IP address")
    return target


def parse_targets(text: str, *, timeout: float = 5.0) -> TargetsFile:
    """Every target of a targets file's text, and every line that was skipped, and why."""
    targets: list[ScanTarget] = []
    rejected: list[RejectedLine] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            target = parse_line(line, timeout=timeout)
        except TargetError as e:
            rejected.append(RejectedLine(number, _printable(line.strip()), str(e)))
            continue
        if target is None:
            continue
        key = target_key(target)
        if key in seen:
            rejected.append(RejectedLine(number, _printable(line.strip()),
                                         f"duplicate of line {seen[key]}"))
            continue
        seen[key] = number
        targets.append(target)
    return TargetsFile(targets, rejected)


def read_targets_file(path: str | Path, *, timeout: float = 5.0) -> TargetsFile:
    """:func:`parse_targets` on a file; :class:`TargetsFileError` when it cannot be read.
    Bytes that are not UTF-8 only spoil their own line (it is rejected, the rest read)."""
    p = Path(path)
    if p.is_dir():
        raise TargetsFileError(f"targets file {p}: is a directory")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TargetsFileError(f"targets file {p}: no such file") from None
    except OSError as e:
        raise TargetsFileError(f"targets file {p}: cannot read: {e.strerror or e}") from None
    # U+FFFD from undecodable bytes makes parse_line reject just that line
    return parse_targets(data.decode("utf-8", "replace"), timeout=timeout)
