"""LAB ONLY: a TLS 1.2 server that misbehaves exactly as known-vulnerable servers did.

Each behaviour is switched on by one ``ServerConfig.lab_*`` option (all off by default) and
exists so that ``tlslab scan``'s active checks can be tested against a server that really
is vulnerable, on loopback (the lab scenarios heartbleed, ccs-injection, robot and
ticketbleed).  Nothing here is reachable with a default configuration.

The "memory" these servers leak is :data:`FAKE_MEMORY`, repeated: an obviously fake,
deterministic filler.  No real process memory is ever read or sent.
"""
from __future__ import annotations

from .errors import HandshakeFailure, UnexpectedMessage
from .heartbeat import (HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE, MIN_PADDING, PEER_ALLOWED_TO_SEND,
                        HeartbeatMessage, HeartbeatMode, conforming_response)
from .names import ContentType
from .record import MAX_PLAINTEXT, plaintext_record

#: what the lab's vulnerable servers leak instead of memory
FAKE_MEMORY = b"tlslab-lab-memory "
HEARTBEAT = ContentType.heartbeat
ET_HEARTBEAT = 15


def fake_memory(n: int) -> bytes:
    """``n`` bytes of the lab's fake memory."""
    reps = n // len(FAKE_MEMORY) + 1
    return (FAKE_MEMORY * reps)[:n]


# -- Heartbeat (RFC 6520; CVE-2014-0160) ------------------------------------------------------

def heartbeat_extensions(conn, ch) -> list:
    """The ServerHello's heartbeat extension: RFC 6520 §2 lets the server answer only a
    client that offered it."""
    from .extensions import Extension
    if conn.config.lab_heartbeat is None or ch.ext(ET_HEARTBEAT) is None:
        return []
    conn._lab_heartbeat_negotiated = True
    return [Extension(ET_HEARTBEAT, HeartbeatMode(mode=PEER_ALLOWED_TO_SEND))]


def handle_heartbeat(conn, fragment: bytes) -> None:
    """One received heartbeat record (TLS 1.0-1.2, clear or protected, in or after the
    handshake).

    ``rfc6520``: answered as RFC 6520 §4 says, discarded silently when the message is not a
    request or its payload_length exceeds what arrived; a client that did not negotiate
    Heartbeat gets unexpected_message (RFC 5246 §6).  ``heartbleed``: a request is answered
    with ``payload_length`` bytes of "payload" whatever arrived, as OpenSSL 1.0.1-1.0.1f
    did (it copied payload_length bytes from its receive buffer without checking it against
    the record length), and whether or not Heartbeat was negotiated."""
    mode = conn.config.lab_heartbeat
    negotiated = conn._lab_heartbeat_negotiated
    if mode is None or not conn.tls12 or (mode == "rfc6520" and not negotiated):
        raise UnexpectedMessage(f"unexpected {ContentType.heartbeat.name} record")
    try:
        msg = HeartbeatMessage.parse(fragment)
    except Exception:  # RFC 6520 §4: what cannot be read is discarded silently
        conn.trace.add("info", "local", "heartbeat message discarded", detail="malformed")
        return
    padding = conn.provider.random(MIN_PADDING)
    if mode == "rfc6520":
        body = conforming_response(msg, padding)
        if body is None:
            conn.trace.add("info", "local", "heartbeat message discarded",
                           detail=f"type {msg.type}, payload_length {msg.payload_length}, "
                                  f"{len(msg.rest)} bytes of payload and padding (RFC 6520 §4)")
            return
    else:
        if msg.type != HEARTBEAT_REQUEST:
            return
        got = msg.rest[:msg.payload_length]
        leaked = msg.payload_length - len(got)
        body = HeartbeatMessage(type=HEARTBEAT_RESPONSE, payload_length=msg.payload_length,
                                rest=got + fake_memory(leaked) + padding).build()
        conn.trace.add("info", "local", "LAB: heartbleed",
                       detail=f"HeartbeatRequest claims {msg.payload_length} bytes of payload, "
                              f"carries {len(got)}: answered with {leaked} bytes of fake memory "
                              "(CVE-2014-0160)")
    _send_heartbeat(conn, body)


def _send_heartbeat(conn, body: bytes) -> None:
    # a response longer than 2^14 bytes goes in several records, as OpenSSL's record layer
    # fragmented it; clear before the ChangeCipherSpec, protected after
    conn._flush_handshake()
    for i in range(0, len(body), MAX_PLAINTEXT):
        chunk = body[i:i + MAX_PLAINTEXT]
        if conn._write_prot is not None:
            rec = conn._write_prot.seal(HEARTBEAT, chunk)
        else:
            rec = plaintext_record(HEARTBEAT, chunk, conn._record_version())
        conn._out.append(rec)
    conn.trace.add("record", "sent", "heartbeat", summary={"length": len(body)})


# -- early ChangeCipherSpec (CVE-2014-0224) ----------------------------------------------------

def accept_early_ccs(conn) -> bool:
    """A ChangeCipherSpec before the ClientKeyExchange: as OpenSSL before 1.0.1h, accept it
    and switch the read side to keys derived from an empty premaster (the master secret
    of a key exchange that has not happened), so the records that follow no longer
    authenticate.  True if accepted (only with ``lab_early_ccs``)."""
    from .tls12.prf import key_material, master_secret
    from .tls12.protection import RecordProtector12
    if conn.is_client or not conn.config.lab_early_ccs:
        return False
    suite = conn.suite12
    if suite is None or conn._read_prot is not None or conn.state.name not in ("WAIT_CKE", "WAIT_CERT"):
        return False
    master = master_secret(b"", conn.client_random, conn.server_random, hash_name=suite.prf_hash,
                           version=conn.version)
    keys = key_material(suite, master, conn.client_random, conn.server_random, conn.version)
    conn._read_prot = RecordProtector12(suite, *keys.writer(True), version=conn.version,
                                        encrypt_then_mac=conn.hs.etm,
                                        provider=conn.provider)
    conn.trace.add("info", "local", "LAB: early ChangeCipherSpec accepted",
                   detail="before the ClientKeyExchange, with keys from an empty premaster "
                          "(CVE-2014-0224)")
    return True


# -- Bleichenbacher oracle (ROBOT) -------------------------------------------------------------

def leaky_decrypt_premaster(private_key, encrypted: bytes) -> bytes:
    """RSAES-PKCS1-v1_5 decryption that tells bad padding apart, as ROBOT-vulnerable stacks
    did (Böck, Somorovsky, Young, USENIX Security 2018): bad padding raises
    HandshakeFailure right away, good padding yields the 48 bytes as the premaster, version
    bytes unchecked.

    ``cryptography`` offers no raw RSA decryption (and does implicit rejection), so the
    raw operation m = c^d mod n is done here on Python integers from the private numbers:
    slow, not constant-time, LAB ONLY."""
    numbers = private_key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (n.bit_length() + 7) // 8
    c = int.from_bytes(encrypted, "big")
    if len(encrypted) != k or c >= n:
        raise HandshakeFailure("LAB: RSA ciphertext of the wrong size")
    em = pow(c, d, n).to_bytes(k, "big")
    # RFC 8017 §7.2.2 step 3: EM = 0x00 || 0x02 || PS (>= 8 nonzero bytes) || 0x00 || M
    sep = em.find(b"\x00", 2)
    if em[:2] != b"\x00\x02" or sep < 10:
        raise HandshakeFailure("LAB: ClientKeyExchange has bad PKCS#1 v1.5 padding")
    message = em[sep + 1:]
    if len(message) != 48:
        raise HandshakeFailure(f"LAB: decrypted premaster is {len(message)} bytes, not 48")
    return message


# -- Ticketbleed (CVE-2016-9244) ---------------------------------------------------------------

def ticketbleed_session_id(conn, session_id: bytes, how: str) -> bytes:
    """The session ID echoed when resuming: with ``lab_ticketbleed`` and a ticket offered
    with a session ID of 1..31 bytes, 32 bytes, as F5 BIG-IP did (it copied 32 bytes
    whatever the client's length)."""
    if not conn.config.lab_ticketbleed or how != "ticket" \
            or not 0 < len(session_id) < 32:
        return session_id
    conn.trace.add("info", "local", "LAB: ticketbleed",
                   detail=f"client session ID of {len(session_id)} bytes echoed as 32 "
                          "(CVE-2016-9244)")
    return session_id + fake_memory(32 - len(session_id))


__all__ = ["FAKE_MEMORY", "accept_early_ccs", "fake_memory", "handle_heartbeat",
           "heartbeat_extensions", "leaky_decrypt_premaster", "ticketbleed_session_id"]
