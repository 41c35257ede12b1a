"""TLS 1.2 (and 1.0/1.1) handshake messages that differ from TLS 1.3 (RFC 5246 §7.4).

ClientHello, ServerHello and Finished have the same shape in every version and
live in :mod:`tlslab.proto.messages`.  The key-exchange bodies are kept as
described opaque fields here; :mod:`tlslab.proto.tls12.keyexchange` interprets
them for the negotiated key exchange.
"""
from __future__ import annotations

from .codec import Opaque, Rest, UInt, Vector
from .errors import DecodeError, UnexpectedMessage
from .messages import (ClientHello, Finished, Message, ServerHello)
from .names import HandshakeType as HT, SignatureScheme, name_of, HandshakeType


class HelloRequest(Message):
    """RFC 5246 §7.4.1.1: the server asks the client to renegotiate."""

    MSG_TYPE = HT.hello_request
    FIELDS = ()


class Certificate12(Message):
    """RFC 5246 §7.4.2: ``ASN.1Cert certificate_list<0..2^24-1>``."""

    MSG_TYPE = HT.certificate
    FIELDS = (("certificate_list", Vector(3, Opaque(3, min=1))),)


class ServerKeyExchange(Message):
    """RFC 5246 §7.4.3 / RFC 8422 §5.4: params and signature, kept as one body here
    (its layout depends on the negotiated key exchange)."""

    MSG_TYPE = HT.server_key_exchange
    FIELDS = (("body", Rest()),)


class CertificateRequest12(Message):
    """RFC 5246 §7.4.4."""

    MSG_TYPE = HT.certificate_request
    FIELDS = (("certificate_types", Vector(1, UInt(1), min=1)),
              ("supported_signature_algorithms", Vector(2, UInt(2, SignatureScheme), min=2)),
              ("certificate_authorities", Vector(2, Opaque(2, min=1))))


class CertificateRequest11(Message):
    """RFC 4346 §7.4.4 (TLS 1.0/1.1): no signature algorithms."""

    MSG_TYPE = HT.certificate_request
    FIELDS = (("certificate_types", Vector(1, UInt(1), min=1)),
              ("certificate_authorities", Vector(2, Opaque(2, min=1))))


class ServerHelloDone(Message):
    """RFC 5246 §7.4.5."""

    MSG_TYPE = HT.server_hello_done
    FIELDS = ()


class ClientKeyExchange(Message):
    """RFC 5246 §7.4.7: exchange_keys, interpreted per key exchange."""

    MSG_TYPE = HT.client_key_exchange
    FIELDS = (("body", Rest()),)


class CertificateVerify12(Message):
    """RFC 5246 §7.4.8 (digitally-signed: algorithm then signature)."""

    MSG_TYPE = HT.certificate_verify
    FIELDS = (("algorithm", UInt(2, SignatureScheme)), ("signature", Opaque(2)))


class CertificateVerify11(Message):
    """RFC 4346 §7.4.8: no algorithm field before TLS 1.2."""

    MSG_TYPE = HT.certificate_verify
    FIELDS = (("signature", Opaque(2)),)


class NewSessionTicket12(Message):
    """RFC 5077 §3.3."""

    MSG_TYPE = HT.new_session_ticket
    FIELDS = (("ticket_lifetime_hint", UInt(4)), ("ticket", Opaque(2)))


class CertificateStatus(Message):
    """RFC 6066 §8: the stapled OCSP response."""

    MSG_TYPE = HT.certificate_status
    FIELDS = (("status_type", UInt(1)), ("response", Opaque(3, min=1)))


MESSAGE_CLASSES_12: dict[int, type[Message]] = {
    cls.MSG_TYPE: cls for cls in (HelloRequest, ClientHello, ServerHello, Certificate12,
                                  ServerKeyExchange, CertificateRequest12, ServerHelloDone,
                                  ClientKeyExchange, CertificateVerify12, Finished,
                                  NewSessionTicket12, CertificateStatus)
}


def parse_message12(data: bytes, version: int = 0x0303, record: bool = False) -> Message:
    """Parse one complete TLS 1.0-1.2 handshake message."""
    if len(data) < 4:
        raise DecodeError("truncated handshake message header")
    cls = MESSAGE_CLASSES_12.get(data[0])
    if version < 0x0303:
        if cls is CertificateRequest12:
            cls = CertificateRequest11
        elif cls is CertificateVerify12:
            cls = CertificateVerify11
    if cls is None:
        raise UnexpectedMessage(f"unexpected handshake message type {name_of(HandshakeType, data[0])}")
    return cls.parse(data, record=record)


__all__ = ["HelloRequest", "Certificate12", "ServerKeyExchange", "CertificateRequest12",
           "CertificateRequest11", "ServerHelloDone", "ClientKeyExchange", "CertificateVerify12",
           "CertificateVerify11", "NewSessionTicket12", "CertificateStatus", "parse_message12",
           "MESSAGE_CLASSES_12"]
