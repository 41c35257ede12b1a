"""The handshake as JSON (``--json``): the same facts as the terminal and HTML views."""
from __future__ import annotations

from typing import Any, Iterable

from .common import entries_of, jsonable, ms_of, perspective, rfc_name, t0_of
from .fields import client_offer, field_rows, message_details
from .i18n import texts
from .keyschedule import key_schedule
from .records import is_tls12, protection_keys, record_parts
from .summary import certificate_status, error_parts, failure_point, handshake_ms

__all__ = ["to_json"]


def _span_json(s, T) -> dict:
    out = {"name": s.name, "offset": s.offset, "length": s.length, "value": jsonable(s.value)}
    explanation = T.field(s.name)
    if explanation:
        out["explanation"] = explanation
    if getattr(s, "children", None):
        out["children"] = [_span_json(c, T) for c in s.children]
    return out


def to_json(trace, negotiated: dict | None = None, *, error: Any = None,
            peer_certificates: Iterable | None = None, include_fields: bool = True,
            verification: dict | None = None, **extra: Any) -> dict:
    """A JSON-serialisable description of the connection.

    Keys: ok, side, negotiated, error (reason/alert_sent/alert_received/code or null),
    failure (where a failed handshake broke, or null), verified (true, false with
    ``verification`` saying why and what it would have said, or null when no certificate
    was checked), messages (direction, name and type (the RFC name), time_ms, length, raw
    hex, key, details, fields with their explanations), records (header decoded, key, what
    the payload holds), secrets (names only), key_schedule, states (with their meaning),
    alerts, handshake_ms, peer_certificates, plus ``extra``.
    """
    T = texts()
    entries = entries_of(trace)
    side = perspective(trace)
    t0 = t0_of(trace)
    n = dict(negotiated or {})
    keys = protection_keys(trace, n)
    tls12 = is_tls12(trace, n)
    messages, records, secrets, states, alerts, errors = [], [], [], [], [], []
    for i, e in enumerate(entries):
        t = ms_of(e, t0)
        try:
            if e.kind == "message":
                m = {"direction": e.direction, "name": rfc_name(e.name), "type": rfc_name(e.name),
                     "time_ms": t, "length": len(e.raw), "raw": e.raw.hex(), "key": keys.get(i),
                     "details": message_details(e)}
                if include_fields:
                    try:
                        m["fields"] = [_span_json(s, T) for s in e.field_spans()]
                    except Exception as exc:
                        m["fields"] = []
                        m["fields_error"] = str(exc)
                messages.append(m)
            elif e.kind == "record":
                rp = record_parts(e, keys.get(i), n.get("cipher_suite"), tls12)
                rec = {"direction": e.direction, "content_type": e.name, "time_ms": t,
                       **jsonable(e.summary or {})}
                rec.update({"outer_content_type": rp.outer_type, "header": rp.header.hex() or None,
                            "record_length": rp.length, "key": rp.key,
                            "parts": [{"name": a, "length": b} for a, b in rp.parts]})
                records.append(rec)
            elif e.kind == "secret":
                secrets.append({"name": e.name, "time_ms": t,
                                "length": (e.summary or {}).get("length")})
            elif e.kind == "state":
                frm = (e.summary or {}).get("from")
                states.append({"from": frm, "to": e.name, "meaning": T.state(e.name) or None,
                               "time_ms": t})
            elif e.kind == "alert":
                s = e.summary or {}
                alerts.append({"direction": e.direction, "description": e.name,
                               "level": jsonable(s.get("level")), "key": keys.get(i),
                               "protected": keys.get(i) not in (None, "plaintext"), "time_ms": t})
            elif e.kind == "error":
                errors.append({"type": e.name, "reason": e.detail,
                               "alert": jsonable((e.summary or {}).get("alert")), "time_ms": t})
        except Exception as exc:
            errors.append({"type": "RenderError", "reason": f"{e.kind} {e.name}: {exc}"})
    reason, alert_sent, alert_received = error_parts(error)
    err = None
    if reason is not None:
        err = {"reason": reason, "alert_sent": alert_sent, "alert_received": alert_received,
               "code": getattr(error, "code", None) if not isinstance(error, str) else None}
    elif errors:
        err = {"reason": errors[-1]["reason"], "alert_sent": errors[-1]["alert"],
               "alert_received": None, "code": None}
    certs = []
    for c in peer_certificates or []:
        try:
            from ..proto.certificates import describe_certificate
            certs.append(describe_certificate(c))
        except Exception as exc:
            certs.append({"error": str(exc)})
    cert = certificate_status(trace, verification)
    out = {
        "ok": err is None and bool(n.get("version")),
        "side": side,
        "negotiated": jsonable(n),
        "error": err,
        "failure": jsonable(failure_point(trace, error)) if err is not None else None,
        "verified": cert["verified"],
        "verification": jsonable(cert) if cert["verified"] is not None else None,
        "handshake_ms": handshake_ms(trace),
        "client_offer": client_offer(trace),
        "messages": messages,
        "records": records,
        "secrets": secrets,
        "key_schedule": jsonable(key_schedule(trace, n)),
        "states": states,
        "alerts": alerts,
        "engine_errors": errors,
        "peer_certificates": certs,
    }
    out.update(jsonable(extra))
    return out
