"""The Heartbeat extension and messages (RFC 6520), and how a conforming peer answers them.

The engine does not offer or negotiate Heartbeat on its own: a record of content type 24
reaching a default connection is an unexpected record type, answered with
``unexpected_message`` (RFC 5246 §6).  The descriptions here exist so that probes can build
a HeartbeatRequest and read a HeartbeatResponse with the one codec, and so that the lab
(``ServerConfig.lab_heartbeat``) can play both a conforming and a Heartbleed server
(CVE-2014-0160).

``payload_length`` is deliberately a plain field, not the length prefix of ``payload``: the
whole point of Heartbleed is a message whose ``payload_length`` disagrees with the bytes
that follow, and the codec must be able to build and parse that message as it is.
"""
from __future__ import annotations

from .codec import Rest, Struct, UInt

#: RFC 6520 §3: HeartbeatMessageType
HEARTBEAT_REQUEST = 1
HEARTBEAT_RESPONSE = 2
#: RFC 6520 §2: HeartbeatMode
PEER_ALLOWED_TO_SEND = 1
PEER_NOT_ALLOWED_TO_SEND = 2
#: RFC 6520 §4: "The padding_length MUST be at least 16"
MIN_PADDING = 16


class HeartbeatMode(Struct):
    """RFC 6520 §2: the body of the ``heartbeat`` extension (type 15).  Not registered with
    the extension parser (:data:`tlslab.proto.extensions.BODIES`): the default engine keeps
    this extension as raw bytes, as before; who needs it parses ``Extension.data`` with it."""

    FIELDS = (("mode", UInt(1)),)


class HeartbeatMessage(Struct):
    """RFC 6520 §4: ``type``, ``payload_length``, then ``payload[payload_length]`` and at
    least 16 bytes of padding, kept together in ``rest`` (see the module docstring)."""

    FIELDS = (("type", UInt(1)), ("payload_length", UInt(2)), ("rest", Rest()))

    @property
    def consistent(self) -> bool:
        """RFC 6520 §4: the message really holds ``payload_length`` bytes and 16 of padding."""
        return len(self.rest) >= self.payload_length + MIN_PADDING

    @property
    def payload(self) -> bytes:
        return self.rest[:self.payload_length]


def request(payload: bytes, payload_length: int | None = None, padding: bytes = b"") -> bytes:
    """A HeartbeatRequest body; ``payload_length`` may lie (a Heartbleed probe)."""
    length = len(payload) if payload_length is None else payload_length
    return HeartbeatMessage(type=HEARTBEAT_REQUEST, payload_length=length,
                            rest=payload + padding).build()


def conforming_response(message: HeartbeatMessage, padding: bytes) -> bytes | None:
    """RFC 6520 §4: the HeartbeatResponse a conforming peer sends for ``message``, or None
    when it must be discarded silently (a response, an unknown type, or a
    ``payload_length`` larger than what arrived)."""
    if message.type != HEARTBEAT_REQUEST or not message.consistent:
        return None
    return HeartbeatMessage(type=HEARTBEAT_RESPONSE, payload_length=message.payload_length,
                            rest=message.payload + padding).build()


__all__ = ["HEARTBEAT_REQUEST", "HEARTBEAT_RESPONSE", "PEER_ALLOWED_TO_SEND",
           "PEER_NOT_ALLOWED_TO_SEND", "HeartbeatMessage", "HeartbeatMode", "conforming_response",
           "request"]
