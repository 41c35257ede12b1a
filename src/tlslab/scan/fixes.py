"""Fixes for the scan's findings, read from ``scan/fixes/<id>.toml``.

The files use diagnose's house format (``code``, ``title``, ``explanation``, ``[[fix]]``
tables with ``stack``, ``side``, ``text``, ``example`` and ``source``), parsed and checked
by :func:`tlslab.diagnose.fixes.parse_fix_file`.  Certificate findings reuse diagnose's own
files (``diagnose/fixes/<code>.toml``): a server's expired certificate is fixed the same way
whichever command found it.  Only server-side fixes apply to a scan.
"""
from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

from ..diagnose.fixes import cause_data, fill_fixes, parse_fix_file


@functools.lru_cache(maxsize=None)
def fix_data(fix_id: str) -> dict[str, Any]:
    """The parsed ``scan/fixes/<fix_id>.toml``, else diagnose's file of that code."""
    resource = resources.files("tlslab.scan") / "fixes" / f"{fix_id}.toml"
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return cause_data(fix_id)
    return parse_fix_file(tomllib.loads(text), f"scan/fixes/{fix_id}.toml")


def server_fixes(fix_id: str, context: dict[str, Any]) -> list[dict[str, Any]]:
    """The server-side fixes of ``fix_id`` with placeholders filled from ``context``
    ("when" fixes answer a client-side situation of diagnose and are left out)."""
    fixes = fill_fixes(fix_data(fix_id).get("fix", []), context,
                       keep=lambda fix: fix["side"] == "server" and not fix.get("when"))
    return [{k: v for k, v in item.items() if k != "side"} for item in fixes]
