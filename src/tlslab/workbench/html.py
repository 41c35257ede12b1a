"""Moved to :mod:`tlslab.view.html` (DESIGN.md "Packages"); still importable from here."""
from __future__ import annotations

from ..view.html import render_html, write_html

__all__ = ["render_html", "write_html"]
