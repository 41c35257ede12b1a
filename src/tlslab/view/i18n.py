"""The explanation texts, one TOML data file per language (``view/texts/<code>.toml``).

Renderers ask for a text by section and key; a key missing from a language falls back to
English, and a key missing from English gives ``default`` (never an exception: a view
must always render).  ``--lang`` sets the language for the whole command.
"""
from __future__ import annotations

import functools
import re
import tomllib
from importlib import resources
from typing import Any

__all__ = ["LANGUAGES", "Texts", "texts", "use_language", "current_language"]

#: the languages with a data file: code -> its name
LANGUAGES = {"en": "English", "zh": "简体中文 (Simplified Chinese)"}

_current = "en"


@functools.lru_cache(maxsize=None)
def _load(code: str) -> dict:
    data = resources.files(__package__).joinpath("texts", f"{code}.toml").read_text("utf-8")
    return tomllib.loads(data)


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Texts:
    """The texts of one language, with English underneath."""

    def __init__(self, code: str = "en") -> None:
        if code not in LANGUAGES:
            raise ValueError(f"unknown language {code!r} (known: {', '.join(LANGUAGES)})")
        self.code = code
        self._own = _load(code)
        self._en = _load("en")

    def get(self, section: str, key: str, default: Any = None) -> Any:
        for data in (self._own, self._en):
            value = data.get(section, {}).get(key)
            if value not in (None, ""):
                return value
        return default

    def section(self, section: str) -> dict:
        out = dict(self._en.get(section, {}))
        out.update({k: v for k, v in self._own.get(section, {}).items() if v not in (None, "")})
        return out

    def ui(self, key: str, **values: Any) -> str:
        text = self.get("ui", key, key)
        return text.format_map(_Default({k: v for k, v in values.items()})) if values else text

    def message(self, name: str, tls12: bool = False) -> str | None:
        """What a handshake message does (TLS 1.2's own text where it differs)."""
        return (self.get("messages12", name) if tls12 else None) or self.get("messages", name)

    def field(self, name: str) -> str | None:
        """The one-line explanation of a field (``cipher_suites[3]`` -> ``cipher_suites[]``)."""
        base = re.sub(r"\[\d+\]$", "", name)
        if base != name:
            return self.get("fields", base + "[]")
        return self.get("fields", name) or self.get("extensions", name)

    def state(self, name: str) -> str:
        return self.get("states", name, "")

    def info(self, name: str) -> str:
        return self.get("info", name, name)

    def secret(self, name: str) -> str | None:
        return self.get("secrets", name)

    def alert(self, name: str, benign: bool) -> str:
        if name == "close_notify":
            return self.get("alerts", "close_notify")
        return self.get("alerts", "warning" if benign else "fatal")


def use_language(code: str | None) -> Texts:
    """Set the language of every view in this process (``--lang``); returns its texts."""
    global _current
    t = Texts(code or "en")
    _current = t.code
    return t


def current_language() -> str:
    return _current


def texts(code: str | None = None) -> Texts:
    return Texts(code or _current)
