"""The key schedule as a derivation chain, from the secrets the trace names (never their
values): which secret comes from which inputs (RFC 8446 §7.1; TLS 1.2: RFC 5246 §8.1,
RFC 7627 §4), and which records each traffic key protected."""
from __future__ import annotations

from typing import Any

from .common import entries_of, from_client, perspective
from .i18n import texts
from .records import is_tls12, protection_keys

__all__ = ["key_schedule"]

#: secret -> (inputs, RFC section); order is the order of the schedule
_TLS13: list[tuple[str, list[str], str]] = [
    ("early_secret", ["PSK (resumption) or 32 zero bytes", "salt 0"], "RFC 8446 §7.1"),
    ("binder_key", ["early_secret", "\"res binder\" / \"ext binder\""], "RFC 8446 §7.1"),
    ("client_early_traffic_secret", ["early_secret", "\"c e traffic\"", "ClientHello"], "RFC 8446 §7.1"),
    ("early_exporter_master_secret", ["early_secret", "\"e exp master\"", "ClientHello"], "RFC 8446 §7.1"),
    ("handshake_secret", ["early_secret → \"derived\"", "(EC)DHE shared secret"], "RFC 8446 §7.1"),
    ("client_handshake_traffic_secret", ["handshake_secret", "\"c hs traffic\"", "ClientHello…ServerHello"], "RFC 8446 §7.1"),
    ("server_handshake_traffic_secret", ["handshake_secret", "\"s hs traffic\"", "ClientHello…ServerHello"], "RFC 8446 §7.1"),
    ("master_secret", ["handshake_secret → \"derived\"", "32 zero bytes"], "RFC 8446 §7.1"),
    ("client_application_traffic_secret_0", ["master_secret", "\"c ap traffic\"", "ClientHello…server Finished"], "RFC 8446 §7.1"),
    ("server_application_traffic_secret_0", ["master_secret", "\"s ap traffic\"", "ClientHello…server Finished"], "RFC 8446 §7.1"),
    ("exporter_master_secret", ["master_secret", "\"exp master\"", "ClientHello…server Finished"], "RFC 8446 §7.5"),
    ("resumption_master_secret", ["master_secret", "\"res master\"", "ClientHello…client Finished"], "RFC 8446 §7.1"),
]

_TLS12: list[tuple[str, list[str], str]] = [
    ("master_secret", ["pre-master secret ((EC)DHE shared secret or RSA-encrypted random)",
                       "\"master secret\" + client_random + server_random, or \"extended master secret\" + session hash"],
     "RFC 5246 §8.1, RFC 7627 §4"),
    ("client_write_key", ["master_secret", "\"key expansion\" + server_random + client_random"], "RFC 5246 §6.3"),
    ("server_write_key", ["master_secret", "\"key expansion\" + server_random + client_random"], "RFC 5246 §6.3"),
]


def key_schedule(trace, negotiated: dict | None = None, *, lang: str | None = None) -> dict[str, Any]:
    """``{"version_family", "steps": [{"secret", "inputs", "rfc", "explanation", "derived",
    "length", "protects": {"sent": n, "received": n, "messages": [...]}}]}``.

    Only secrets the trace shows as derived are listed (plus, for TLS 1.2, the write keys,
    which the engine derives from the master secret without naming them)."""
    T = texts(lang)
    entries = entries_of(trace)
    tls12 = is_tls12(trace, negotiated)
    side = perspective(trace)
    derived: dict[str, dict] = {}
    updates = 0
    for e in entries:
        if e.kind == "secret":
            if e.name in ("write key updated", "read key updated"):
                updates += 1
            derived.setdefault(e.name, {"length": (e.summary or {}).get("length")})
    keys = protection_keys(trace, negotiated)
    protects: dict[str, dict] = {}
    for i, k in keys.items():
        if not k or k in ("plaintext", "not sent"):
            continue
        e = entries[i]
        p = protects.setdefault(k, {"records_sent": 0, "records_received": 0, "messages": []})
        if e.kind == "record":
            p["records_" + ("sent" if e.direction == "sent" else "received")] += 1
        elif e.kind == "message":
            who = "client" if from_client(e.direction, side) else "server"
            from .common import rfc_name
            p["messages"].append(f"{who} {rfc_name(e.name)}")
        elif e.kind == "alert":
            p["messages"].append(f"alert {e.name}")
    steps = []
    for name, inputs, rfc in (_TLS12 if tls12 else _TLS13):
        if name not in derived and not (tls12 and name.endswith("write_key") and "master_secret" in derived):
            continue
        steps.append({"secret": name, "inputs": inputs, "rfc": rfc,
                      "explanation": T.secret(name) or "",
                      "length": derived.get(name, {}).get("length"),
                      "protects": protects.get(name)})
    for name, info in derived.items():  # anything the table above does not know
        if not any(s["secret"] == name for s in steps):
            steps.append({"secret": name, "inputs": [], "rfc": "", "explanation": T.secret(name) or "",
                          "length": info.get("length"), "protects": None})
    # later application keys (after KeyUpdate) carry generation numbers
    for k, p in protects.items():
        if not any(s["secret"] == k for s in steps):
            steps.append({"secret": k, "inputs": [k[:-1] + str(int(k[-1]) - 1) if k[-1].isdigit() else ""],
                          "rfc": "RFC 8446 §7.2", "explanation": "", "length": None, "protects": p})
    return {"tls12": tls12, "steps": steps, "key_updates": updates}
