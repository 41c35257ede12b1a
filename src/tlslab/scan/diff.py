"""What changed on a server between two of its scans (``tlslab scan --targets F --diff``).

:func:`diff_scans` walks two scan documents as plain JSON, so it keeps working as the scan
document grows: dicts key by key, lists as sets (plus their order, which matters for
cipher suites), scalars by value.  The keys a scan document is known to have get
sentences a person reads ("TLSv1.0 enabled", "cipher suite X removed (TLSv1.2)",
"certificate changed", "finding resolved: ..."); any other key gets a generic one
("path: a → b").  Keys that change on every scan (durations, timestamps) are ignored.

A failed scan (a document with ``error``) is compared by its reachability first: a server
that became unreachable reports that alone (not a hundred removed suites), one that came
back reports that it is reachable again, and two failures differ only if their error code
(or message, without a code) differs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

#: values that differ on every scan and say nothing about the server
VOLATILE_KEYS = frozenset({
    "duration_s", "started_at", "finished_at", "scanned_at", "timestamp", "time",
    "elapsed_s", "worker", "attempts", "target", "timings", "scanner_version",
})

#: singular names of the known list/dict keys, for sentences
LABELS = {
    "protocols": "protocol", "versions": "protocol", "cipher_suites": "cipher suite",
    "groups": "group", "signature_algorithms": "signature algorithm",
    "signature_schemes": "signature algorithm", "findings": "finding", "alpn": "ALPN protocol",
    "extensions": "extension", "certificate": "certificate", "certificates": "certificate",
}

#: keys that name an element of a list of objects (findings, certificates ...), in order
IDENTITY_KEYS = ("id", "code", "name", "fingerprint_sha256", "fingerprint", "version")

_ENABLED_WORDS = {"protocols", "versions"}

#: the order changes are told in: what a reader checks first, then everything else by name
KEY_ORDER = ("protocols", "versions", "cipher_suites", "groups", "signature_algorithms",
             "signature_schemes", "certificate", "certificates", "findings")


def _key_order(key: Any) -> tuple:
    return (KEY_ORDER.index(key), "") if key in KEY_ORDER else (len(KEY_ORDER), str(key))


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` (added, removed, enabled, disabled, changed, order,
    unreachable, reachable, error), the JSON ``path`` where it is, a ``summary`` sentence,
    and the values ``before`` and ``after``."""

    kind: str
    path: str
    summary: str
    before: Any = None
    after: Any = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "summary": self.summary,
                "before": self.before, "after": self.after}


@dataclass
class TargetDiff:
    """A target's latest scan against its previous one: ``status`` is ``new`` (no
    previous scan), ``changed`` or ``unchanged``."""

    target: str
    status: str
    changes: list[Change] = field(default_factory=list)
    scan_id: int | None = None
    previous_scan_id: int | None = None
    previous_at: str | None = None

    def to_json(self) -> dict:
        return {"target": self.target, "status": self.status,
                "scan_id": self.scan_id, "previous_scan_id": self.previous_scan_id,
                "previous_at": self.previous_at,
                "changes": [c.to_json() for c in self.changes]}


# ------------------------------------------------------------------ whole documents

def error_of(doc: dict) -> tuple[str, str] | None:
    """(code, message) of a failed scan document, or None when it did not fail."""
    err = doc.get("error")
    if not err:
        return None
    if isinstance(err, dict):
        message = str(err.get("message") or err.get("code") or "failed")
        return str(err.get("code") or message), message
    return str(err), str(err)


def diff_scans(old: dict, new: dict) -> list[Change]:
    """Every difference between two scan documents of one target, old -> new."""
    old_err, new_err = error_of(old), error_of(new)
    if old_err and new_err:
        if old_err[0] == new_err[0]:
            return []
        return [Change("error", "error", f"still failing, differently: {old_err[1]} → "
                       f"{new_err[1]}", old_err[1], new_err[1])]
    if new_err:
        return [Change("unreachable", "error", f"became unreachable: {new_err[1]}",
                       None, new_err[1])]
    if old_err:
        return [Change("reachable", "error", f"reachable again (was: {old_err[1]})",
                       old_err[1], None)]
    changes: list[Change] = []
    _walk((), old, new, changes)
    return changes


# ------------------------------------------------------------------ the walk

def _walk(path: tuple, a: Any, b: Any, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=_key_order if not path else str):
            if key in VOLATILE_KEYS or (not path and key == "error"):
                continue
            _walk(path + (key,), a.get(key), b.get(key), out)
    elif isinstance(a, list) and isinstance(b, list):
        _walk_list(path, a, b, out)
    elif a != b:
        _scalar_change(path, a, b, out)


def _walk_list(path: tuple, a: list, b: list, out: list[Change]) -> None:
    ident = _identity_key(a + b)
    if ident is not None:  # objects with a name: match them by name, then compare each
        old = {str(x.get(ident)): x for x in a}
        new = {str(x.get(ident)): x for x in b}
        for name in [n for n in old if n not in new]:
            out.append(_member_change("removed", path, name, old[name], None))
        for name in [n for n in new if n not in old]:
            out.append(_member_change("added", path, name, None, new[name]))
        for name in [n for n in new if n in old]:
            _walk(path + (name,), old[name], new[name], out)
        _order_change(path, [n for n in old if n in new], [n for n in new if n in old],
                      list(old), list(new), out)
        return
    old_keys, new_keys = [_canon(x) for x in a], [_canon(x) for x in b]
    old_set, new_set = set(old_keys), set(new_keys)
    for x, k in zip(a, old_keys):
        if k not in new_set:
            out.append(_member_change("removed", path, _show(x), x, None))
    for x, k in zip(b, new_keys):
        if k not in old_set:
            out.append(_member_change("added", path, _show(x), None, x))
    _order_change(path, [k for k in old_keys if k in new_set],
                  [k for k in new_keys if k in old_set], a, b, out)


def _order_change(path: tuple, common_old: list, common_new: list, a: list, b: list,
                  out: list[Change]) -> None:
    """The elements both scans have, in another order: the server's preference changed."""
    if common_old != common_new:
        out.append(Change("order", _where(path), f"{_label(path)} order changed"
                          f"{_context(path)}: {_short_list(a)} → {_short_list(b)}", a, b))


def _identity_key(items: list) -> str | None:
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    for key in IDENTITY_KEYS:
        values = [x.get(key) for x in items]
        if all(v is not None and not isinstance(v, (dict, list)) for v in values):
            return key
    return None


def _member_change(kind: str, path: tuple, name: str, before: Any, after: Any) -> Change:
    top = path[0] if path else ""
    where = _where(path)
    if top in _ENABLED_WORDS:
        word = "enabled" if kind == "added" else "disabled"
        return Change(word, where, f"{name} {word}{_context(path)}", before, after)
    if top == "findings":
        if kind == "added":
            text = f"new finding: {_finding_text(after, name)}"
        else:
            text = f"finding resolved: {_finding_text(before, name)}"
        return Change(kind, where, text, before, after)
    return Change(kind, where, f"{_label(path)} {name} {kind}{_context(path)}", before, after)


def _scalar_change(path: tuple, a: Any, b: Any, out: list[Change]) -> None:
    top = path[0] if path else ""
    where = _where(path)
    last = str(path[-1]) if path else ""
    if top in _ENABLED_WORDS and (isinstance(b, bool) or isinstance(a, bool)):
        # {"protocols": {"TLSv1.0": false}} or {"protocols": {"TLSv1.0": {"supported": ...}}}
        name = str(path[1]) if len(path) > 1 else "protocol"
        word = "enabled" if b else "disabled"
        out.append(Change(word, where, f"{name} {word}", a, b))
        return
    if top in ("certificate", "certificates") and "fingerprint" in last:
        out.append(Change("changed", where, f"certificate changed ({last} {_show(a)} → "
                          f"{_show(b)})", a, b))
        return
    if top in ("certificate", "certificates") and last in ("not_after", "expires", "expiry"):
        out.append(Change("changed", where, f"certificate expiry changed: {_show(a)} → "
                          f"{_show(b)}", a, b))
        return
    if a is None:
        text = f"{where}: now {_show(b)}"
    elif b is None:
        text = f"{where}: no longer reported (was {_show(a)})"
    else:
        text = f"{where}: {_show(a)} → {_show(b)}"
    out.append(Change("changed", where, text, a, b))


# ------------------------------------------------------------------ wording helpers

def _label(path: tuple) -> str:
    return LABELS.get(str(path[0]), str(path[0])) if path else "value"


def _context(path: tuple) -> str:
    """`` (TLSv1.2)`` for a list nested under a known key, e.g. suites per version."""
    inner = [str(p) for p in path[1:]]
    return f" ({'.'.join(inner)})" if inner else ""


def _where(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "document"


def _finding_text(finding: Any, name: str) -> str:
    if isinstance(finding, dict):
        summary = finding.get("summary") or finding.get("title") or finding.get("message")
        if summary and str(summary) != name:
            return f"{name} ({_show(summary)})"
    return name


def _canon(x: Any) -> str:
    return x if isinstance(x, str) else json.dumps(x, sort_keys=True, default=str)


def _show(x: Any, limit: int = 80) -> str:
    text = x if isinstance(x, str) else json.dumps(x, sort_keys=True, default=str)
    text = "".join(c if c.isprintable() else "\ufffd" for c in text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _short_list(items: list, n: int = 4) -> str:
    shown = ", ".join(_show(x, 40) for x in items[:n])
    return shown + (f", … ({len(items)})" if len(items) > n else "")


# ------------------------------------------------------------------ from the database

def diff_stored(db, targets: Iterable[str]) -> list[TargetDiff]:
    """For each target key: its latest stored scan against the one before it."""
    out: list[TargetDiff] = []
    for target in targets:
        pair = db.latest_two(target)
        if not pair:
            continue
        if len(pair) == 1:
            out.append(TargetDiff(target, "new", scan_id=pair[0].id))
            continue
        latest, previous = pair
        changes = diff_scans(previous.result, latest.result)
        out.append(TargetDiff(target, "changed" if changes else "unchanged", changes,
                              scan_id=latest.id, previous_scan_id=previous.id,
                              previous_at=previous.started_at))
    return out
