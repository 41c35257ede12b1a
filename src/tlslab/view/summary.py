"""What a connection amounts to, for every view: the summary rows, whether the certificate
was verified (and, with ``--insecure``, what verification would have said), where a failed
handshake broke and why, the flights and round trips, one handshake time."""
from __future__ import annotations

from typing import Any

from .common import (TLS12_VERSIONS, entries_of, from_client, jsonable, ms_of, perspective,
                     rfc_name, t0_of, value_text)
from .fields import client_offer, message_details
from .i18n import texts

__all__ = ["error_parts", "certificate_status", "failure_point", "summary_rows",
           "connection_rows", "client_certificate_subject", "flights", "handshake_profile",
           "handshake_ms", "app_data_counts", "info_line"]


def error_parts(error: Any) -> tuple[str | None, str | None, str | None]:
    if error is None:
        return None, None, None
    if isinstance(error, str):
        return error, None, None
    return (getattr(error, "reason", None) or str(error), getattr(error, "alert_sent", None),
            getattr(error, "alert_received", None))


def info_line(e) -> str:
    """An info entry's details in words: never a Python repr."""
    s = e.summary or {}
    if "path" in s:
        return "path: " + " → ".join(str(p) for p in s["path"])
    if e.name == "certificate chain" and "certificates" in s:
        return texts().ui("certificates_count", n=s["certificates"])
    if e.name == "handshake complete":
        return ", ".join(str(s[k]) for k in ("version", "cipher_suite", "group") if s.get(k))
    parts = [f"{k.replace('_', ' ')} {value_text(v, 60)}" for k, v in s.items()]
    return "; ".join(parts) or e.detail or ""


def handshake_ms(trace) -> float | None:
    """One handshake time: from the first trace entry to the move to CONNECTED."""
    t0 = t0_of(trace)
    done = next((e for e in entries_of(trace) if e.kind == "state" and e.name == "CONNECTED"), None)
    return None if done is None else ms_of(done, t0)


def app_data_counts(entries: list) -> dict:
    out = {"sent": 0, "received": 0}
    for e in entries:
        if e.kind == "record" and e.name == "application_data" and e.direction in out:
            out[e.direction] += 1
    return out


def certificate_status(trace, verification: dict | None = None) -> dict:
    """``{"verified": True | False | None, "how", "would_fail"?: {"code", "reason"}}``.

    From the trace: the engine records "certificate verified" or "certificate not verified
    (--insecure)"; ``verification`` (from ``connect``) adds what a verification against the
    system trust store would have said."""
    out: dict[str, Any] = {"verified": None}
    cert_alerts = {"bad_certificate", "unknown_ca", "certificate_expired", "certificate_revoked",
                   "unsupported_certificate", "certificate_unknown"}
    side = perspective(trace)
    for e in entries_of(trace):
        if e.kind == "info" and e.name == "certificate verified":
            out = {"verified": True, "how": "trust store"}
        elif e.kind == "info" and e.name == "certificate not verified (--insecure)":
            out = {"verified": False, "how": "--insecure"}
        elif (e.kind == "error" and side == "client" and out["verified"] is None
              and (e.summary or {}).get("alert") in cert_alerts):
            out = {"verified": False, "how": "trust store", "failed": e.detail}
    if verification:
        out.update({k: v for k, v in verification.items() if k != "verified" or out["verified"] is None})
    return out


def failure_point(trace, error: Any = None) -> dict | None:
    """Where a failed handshake broke: the last message that went through, the state the
    engine was in (with its meaning), who gave up, the alert, the cause and its evidence."""
    T = texts()
    entries = entries_of(trace)
    reason, alert_sent, alert_received = error_parts(error)
    err_entry = next((e for e in entries if e.kind == "error"), None)
    if reason is None and err_entry is not None:
        reason, alert_sent = err_entry.detail, (err_entry.summary or {}).get("alert")
    if reason is None:
        for e in entries:
            if e.kind == "alert" and e.direction == "received" and e.name != "close_notify":
                reason, alert_received = f"peer sent fatal alert {e.name}", e.name
    if reason is None:
        return None
    side = perspective(trace)
    last = None
    state = "START"
    for e in entries:
        if e.kind == "message":
            last = e
        elif e.kind == "state" and e.name != "CLOSED":
            state = e.name
        elif e.kind in ("error", "alert") and e.name != "close_notify":
            break
    who = None
    if last is not None:
        who = "client" if from_client(last.direction, side) else "server"
    code = getattr(error, "code", None) if error is not None and not isinstance(error, str) else None
    engine_error = getattr(error, "error", None) if error is not None else None
    evidence = getattr(engine_error, "evidence", None) or getattr(error, "evidence", None)
    out = {
        "last_message": rfc_name(last.name) if last is not None else None,
        "last_message_from": who,
        "state": state,
        "state_words": T.state(state),
        "reason": reason,
        "alert_sent": alert_sent,
        "alert_received": alert_received,
        "code": code,
        "gave_up": ("we" if alert_sent else "peer" if alert_received else None),
        "evidence": jsonable(evidence) if evidence else None,
    }
    if last is None:
        out["where"] = T.ui("failure_at_start")
    else:
        out["where"] = T.ui("failure_after", message=out["last_message"],
                            who=T.ui("side_" + who) if who else "?", state=state,
                            state_words=out["state_words"] or state)
    return out


def client_certificate_subject(trace, negotiated: dict | None = None) -> str | None:
    """The client certificate's subject: what the client sent, or what the server verified."""
    n = negotiated or {}
    if n.get("client_certificate"):
        return str(n["client_certificate"])
    for e in entries_of(trace):
        if e.kind == "info" and e.name == "client certificate verified":
            subject = (e.summary or {}).get("subject")
            if subject:
                return str(subject)
    return None


def _yes_no(v: Any) -> str:
    T = texts()
    return T.ui("yes") if v else T.ui("no")


def connection_rows(n: dict, trace=None, side: str = "client") -> list[tuple[str, str]]:
    """Rows beyond the basics: resumption, 0-RTT, client certificate and, for TLS 1.2 and
    older, extended master secret, secure renegotiation, encrypt-then-MAC; the size of a
    stapled OCSP response."""
    T = texts()
    rows: list[tuple[str, str]] = []
    if "resumed" in n:
        rows.append((T.ui("resumed"), T.ui("resumed_value") if n.get("resumed") else T.ui("no")))
    if n.get("early_data_accepted") is not None:
        rows.append((T.ui("early_data"), T.ui("early_accepted") if n["early_data_accepted"]
                     else T.ui("early_rejected_client") if side == "client"
                     else T.ui("early_rejected")))
    subject = client_certificate_subject(trace, n) if trace is not None else n.get("client_certificate")
    if subject:
        rows.append((T.ui("client_certificate"), subject))
    if n.get("version") in TLS12_VERSIONS:
        rows.append((T.ui("ems"), _yes_no(n.get("extended_master_secret"))
                     + ("" if n.get("extended_master_secret") else T.ui("ems_missing"))))
        rows.append((T.ui("secure_reneg"), _yes_no(n.get("secure_renegotiation"))
                     + ("" if n.get("secure_renegotiation") else T.ui("secure_reneg_missing"))))
        suite = str(n.get("cipher_suite") or "")
        aead = any(t in suite for t in ("GCM", "CHACHA20", "CCM"))
        etm = n.get("encrypt_then_mac")
        rows.append((T.ui("etm"), T.ui("etm_na") if aead and not etm else _yes_no(etm)))
    if side == "client" and n.get("version"):
        ocsp = n.get("ocsp_response")
        status = n.get("ocsp_status") or {}
        text = T.ui("none")
        if ocsp:
            text = f"{len(ocsp)} bytes"
            if status:
                text += f", status {status.get('status')}"
                if status.get("next_update"):
                    text += f", valid until {status['next_update']}"
                text += f", signature {status.get('signature', 'not checked')}" if "signature" in status else ""
        rows.append((T.ui("ocsp"), text))
    return rows


def summary_rows(trace, negotiated: dict | None, *, error: Any = None,
                 verification: dict | None = None, extra: dict | None = None,
                 timing_ms: dict | None = None) -> dict:
    """Everything the summary panel (terminal) and the page header (HTML) show.

    ``timing_ms`` (``tcp_connect``) adds the TCP connect time to the one handshake time,
    which is always the engine's (first trace entry to CONNECTED)."""
    T = texts()
    extra = dict(extra or {})
    n = dict(negotiated or {})
    entries = entries_of(trace)
    side = perspective(trace)
    fp = failure_point(trace, error)
    ok = fp is None and bool(n.get("version"))
    rows: list[tuple[str, str]] = []
    for label, key in (("version", "version"), ("cipher_suite", "cipher_suite"),
                       ("key_exchange", "group"), ("signature", "signature_scheme"),
                       ("alpn", "alpn_protocol"), ("sni", "server_name")):
        if n.get(key) or key in ("version", "cipher_suite"):
            rows.append((T.ui(label), str(n.get(key) or "—")))
    if n.get("version") or n.get("hello_retry"):
        rows.append((T.ui("hello_retry"), T.ui("yes") if n.get("hello_retry") else T.ui("no")))
    rows += connection_rows(n, trace, side)
    offer = client_offer(trace)
    if offer.get("sni") and not n.get("server_name"):
        rows.append((T.ui("sni_sent"), offer["sni"]))
    if not n.get("version") and offer.get("versions"):
        rows.append((T.ui("versions_offered"), ", ".join(offer["versions"])))
    if not n.get("cipher_suite") and offer.get("cipher_suites"):
        from .common import short_list
        rows.append((T.ui("suites_offered"), short_list(offer["cipher_suites"], 6)))
    if not n.get("group") and offer.get("key_shares"):
        rows.append((T.ui("key_shares_sent"), ", ".join(offer["key_shares"])))
    cert = certificate_status(trace, verification)
    cert_row = None
    if side == "client":
        if cert["verified"] is True:
            host = n.get("server_name") or offer.get("sni")
            cert_row = (T.ui("certificate_verified", host=host) if host
                        else T.ui("certificate_verified_plain"))
        elif cert["verified"] is False and cert.get("how") == "--insecure":
            cert_row = T.ui("certificate_not_verified")
            wf = cert.get("would_fail")
            if wf:
                cert_row += "; " + T.ui("would_have_failed", reason=wf.get("reason") or wf.get("code"))
            elif cert.get("would_pass"):
                cert_row += "; " + T.ui("would_have_passed")
        elif not ok and any(e.kind == "message" and e.name in ("Certificate", "Certificate12")
                            and e.direction == "received" for e in entries):
            cert_row = None  # the failure row says it
        if cert_row:
            rows.append((T.ui("certificate"), cert_row))
    hs = handshake_ms(trace)
    timing = dict(timing_ms or {})
    if hs is not None or timing.get("handshake") is not None:
        parts = []
        if timing.get("tcp_connect") is not None:
            parts.append(f"{T.ui('tcp_connect')} {timing['tcp_connect']:.1f} ms")
        if timing.get("handshake") is not None:
            parts.append(T.ui("handshake_time_value", ms=f"{timing['handshake']:.1f}"))
        elif hs is not None:
            parts.append(T.ui("handshake_time_trace", ms=f"{hs:.1f}"))
        rows.append((T.ui("handshake_time"), "; ".join(parts)))
    app = app_data_counts(entries)
    if app["sent"] or app["received"]:
        counts = [T.ui("records_" + k, n=app[k]) for k in ("sent", "received") if app[k]]
        rows.append((T.ui("application_data"), T.ui("application_data_value", counts=", ".join(counts))))
    for k, v in extra.items():
        rows.append((str(k), value_text(v, 400)))
    return {"ok": ok, "failure": fp, "rows": rows, "side": side, "certificate": cert}


# --------------------------------------------------------------------------- flights

#: post-handshake messages: not part of a handshake's flights
_POST_HANDSHAKE = {"NewSessionTicket", "KeyUpdate"}


def flights(trace) -> list[dict]:
    """The handshake as flights: consecutive handshake messages in the same direction.

    Each flight is ``{"direction": "C→S" | "C←S", "messages": [...], "start_ms", "end_ms"}``;
    0-RTT data sent after the ClientHello shows as ``"0-RTT data (N bytes)"`` in the
    client's first flight.  TLS 1.3 post-handshake messages (NewSessionTicket, KeyUpdate)
    are left out.
    """
    side = perspective(trace)
    t0 = t0_of(trace)
    out: list[dict] = []
    for e in entries_of(trace):
        if e.kind == "message" and e.name not in _POST_HANDSHAKE:
            arrow = "C→S" if from_client(e.direction, side) else "C←S"
            name = rfc_name(e.name)
        elif e.kind == "info" and e.name == "sending 0-RTT early data":
            arrow = "C→S" if side == "client" else "C←S"
            name = f"0-RTT data ({(e.summary or {}).get('bytes', '?')} bytes)"
        else:
            continue
        t = ms_of(e, t0)
        if out and out[-1]["direction"] == arrow:
            out[-1]["messages"].append(name)
            out[-1]["end_ms"] = t
        else:
            out.append({"direction": arrow, "messages": [name], "start_ms": t, "end_ms": t})
    return out


def handshake_profile(trace, negotiated: dict | None = None, timings_ms: dict | None = None,
                      *, label: str | None = None) -> dict:
    """One connection, for comparing handshakes side by side (``connect --reconnect``).

    ``round_trips`` counts the server's flights: each one costs the client a round trip
    before it may send application data (TLS 1.3 full or resumed: 1; TLS 1.2 full: 2;
    HelloRetryRequest: one more).  ``round_trips_before_data`` is 0 when 0-RTT data was
    accepted.  ``early_data_note`` says why no 0-RTT data was sent.
    """
    n = negotiated or {}
    fl = [{"direction": f["direction"], "messages": f["messages"]} for f in flights(trace)]
    c2s = sum(1 for f in fl if f["direction"] == "C→S")
    s2c = len(fl) - c2s
    early = n.get("early_data_accepted")
    kind = label or ("0-RTT" if early else "resumed" if n.get("resumed") else "full")
    if early is False:
        kind += " (0-RTT rejected)"
    t = timings_ms or {}
    return {
        "kind": kind,
        "version": n.get("version"),
        "cipher_suite": n.get("cipher_suite"),
        "group": n.get("group"),
        "resumed": bool(n.get("resumed")),
        "early_data_accepted": early,
        "flights": fl,
        "flights_client_to_server": c2s,
        "flights_server_to_client": s2c,
        "round_trips": s2c,
        "round_trips_before_data": 0 if early else s2c,
        "messages": [m for f in fl for m in f["messages"]],
        "timing_ms": {k: t[k] for k in ("tcp_connect", "handshake", "first_data") if k in t},
    }


def tickets_allow_early_data(trace) -> bool | None:
    """Did the server's NewSessionTickets (TLS 1.3) allow 0-RTT?  None: no ticket seen."""
    seen = None
    for e in entries_of(trace):
        if e.kind == "message" and e.name == "NewSessionTicket" and e.direction == "received":
            d = message_details(e)
            seen = bool(seen) or bool(d.get("max_early_data_size"))
    return seen
