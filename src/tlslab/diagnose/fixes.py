"""Fixes per stack, read from ``fixes/<code>.toml`` (one file per cause; a user can read
and extend them).  Each ``[[fix]]`` names its stack and side; ``text`` and ``example``
may hold placeholders ({host}, {port}, {ca_file}, {chain_file}, {versions}, {suites},
{groups}, {sigalgs}) filled from the diagnosis."""
from __future__ import annotations

import functools
import string
import tomllib
from importlib import resources
from typing import Any, Callable

STACKS = ("java", "curl", "openssl", "python", "go", "node", "dotnet", "browser", "nginx",
          "apache", "java-server", "haproxy", "iis", "generic")
SIDES = ("client", "server")
PLACEHOLDERS = ("host", "port", "ca_file", "chain_file", "versions", "suites", "groups", "sigalgs",
                "cert_name", "address")
_TOP = {"code", "title", "explanation", "symptoms", "fix"}
_FIX = {"stack", "side", "text", "example", "source", "when"}
#: ``when`` narrows a fix to one situation, set by the diagnosis in the context
WHEN = ("server-newer", "server-older", "banner", "http-answer")


class FixDataError(ValueError):
    pass


def _check_placeholders(text: str, where: str) -> None:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in PLACEHOLDERS:
            raise FixDataError(f"{where}: unknown placeholder {{{name}}}")


def parse_fix_file(data: dict, where: str) -> dict[str, Any]:
    unknown = set(data) - _TOP
    if unknown:
        raise FixDataError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("code", "title", "explanation"):
        if not isinstance(data.get(key), str):
            raise FixDataError(f"{where}: {key} missing")
    fixes = data.get("fix", [])
    for i, fix in enumerate(fixes):
        w = f"{where} fix {i + 1}"
        if set(fix) - _FIX or not {"stack", "side", "text"} <= set(fix):
            raise FixDataError(f"{w}: keys must be among {sorted(_FIX)} (stack, side, text required)")
        if fix["stack"] not in STACKS or fix["side"] not in SIDES:
            raise FixDataError(f"{w}: stack {fix['stack']!r} / side {fix['side']!r} unknown")
        if fix.get("when", WHEN[0]) not in WHEN:
            raise FixDataError(f"{w}: when {fix['when']!r} unknown (one of {', '.join(WHEN)})")
        _check_placeholders(fix["text"], w)
        _check_placeholders(fix.get("example", ""), w)
    return data


@functools.lru_cache(maxsize=None)
def cause_data(code: str) -> dict[str, Any]:
    """The parsed ``fixes/<code>.toml`` (empty title/explanation when there is none)."""
    resource = resources.files("tlslab.diagnose") / "fixes" / f"{code}.toml"
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {"code": code, "title": code.replace("-", " "), "explanation": "", "fix": []}
    return parse_fix_file(tomllib.loads(text), f"fixes/{code}.toml")


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def fill_fixes(fixes: list[dict[str, Any]], context: dict[str, Any], *,
               stacks: tuple[str, ...] | None = None,
               keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """``fixes`` (the ``[[fix]]`` tables of a fix file) with placeholders filled from
    ``context``; only those of ``stacks`` (when given) and those ``keep`` accepts."""
    values = _Values({k: str(v) for k, v in context.items()
                      if v not in (None, "", []) and k in PLACEHOLDERS})
    out = []
    for fix in fixes:
        if (stacks and fix["stack"] not in stacks) or (keep is not None and not keep(fix)):
            continue
        item = {"stack": fix["stack"], "side": fix["side"],
                "text": fix["text"].format_map(values)}
        if fix.get("example"):
            item["example"] = fix["example"].format_map(values)
        if fix.get("source"):
            item["source"] = fix["source"]
        out.append(item)
    return out


def fixes_for(code: str, context: dict[str, Any], stacks: tuple[str, ...] | None = None
              ) -> list[dict[str, Any]]:
    """The fixes of ``code`` with placeholders filled from ``context``."""
    when = context.get("when")
    # e.g. downgrade advice only when the server is the newer side
    return fill_fixes(cause_data(code).get("fix", []), context, stacks=stacks,
                      keep=lambda fix: not (fix.get("when") and when and fix["when"] != when))
