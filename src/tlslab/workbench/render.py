"""Moved to :mod:`tlslab.view` (DESIGN.md "Packages"); these names stay importable here.

* :mod:`tlslab.view.terminal` — ``render_sequence``, ``render_bytes``, ``render_comparison``
* :mod:`tlslab.view.jsonview` — ``to_json``
* :mod:`tlslab.view.fields` — ``message_details``, ``client_offer``
* :mod:`tlslab.view.summary` — ``connection_rows``, ``flights``, ``handshake_profile``
* :mod:`tlslab.view.common` — ``safe_text``, ``perspective``
"""
from __future__ import annotations

from ..view.common import (arrow as _arrow, hex_lines as _hex_lines, jsonable as _jsonable,
                           level_name as _level_name, ms_of as _ms, perspective, safe_text,
                           short_list as _short_list, styled as _t, t0_of as _t0,
                           value_text as _value_text)
from ..view.fields import client_offer, details_line as _details_line, leaf_value as _leaf_value
from ..view.fields import message_details
from ..view.i18n import texts as _texts
from ..view.jsonview import to_json
from ..view.records import alert_protected as _alert_protected
from ..view.summary import (client_certificate_subject, connection_rows, error_parts as _error_parts,
                            flights, handshake_profile, info_line as _info_line)
from ..view.terminal import render_bytes, render_comparison, render_sequence

__all__ = ["perspective", "message_details", "render_sequence", "render_bytes", "to_json",
           "client_offer", "EXPLANATIONS", "explain_lines", "connection_rows", "flights",
           "handshake_profile", "render_comparison", "client_certificate_subject", "safe_text"]

#: what each step does, for newcomers (English; other languages: tlslab.view.i18n)
EXPLANATIONS: dict[str, str] = dict(_texts("en").section("messages"))


def _last_sent_protected(entries: list, index: int) -> bool:
    return _alert_protected(entries, index)


def explain_lines() -> list[tuple[str, str]]:
    """(message, explanation) pairs in handshake order, for a legend."""
    order = ["ClientHello", "HelloRetryRequest", "ServerHello", "EncryptedExtensions",
             "Certificate", "CertificateVerify", "Finished", "NewSessionTicket"]
    return [(k, EXPLANATIONS[k]) for k in order]


def _protection_map(entries: list) -> dict[int, bool | None]:
    """index of each message entry -> was the record carrying it protected? (old interface)"""
    from ..view.records import protection_keys

    class _T:
        pass
    t = _T()
    t.entries = entries
    keys = protection_keys(t)
    return {i: (None if k in (None, "not sent") else k != "plaintext")
            for i, k in keys.items() if entries[i].kind == "message"}


def _key_for(name: str, direction: str, side: str, protected: bool | None,
             tls12: bool = False) -> str:
    if protected is None:
        return "not sent" if direction == "sent" else ""
    if not protected:
        return "plaintext"
    from_client = (direction == "sent") == (side == "client")
    who = "client" if from_client else "server"
    if tls12:
        return f"{who} write key"
    if name in ("NewSessionTicket", "KeyUpdate"):
        return f"{who} application key"
    return f"{who} handshake key"
