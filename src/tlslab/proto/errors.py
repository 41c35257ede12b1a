"""Typed engine errors.

Each error class maps to exactly one alert description (RFC 8446 §6.2).  The
connection catches :class:`TLSError`, sends that alert once, records it in the
trace and fails closed.  Messages are one line and say what was wrong, never
include secrets.
"""
from __future__ import annotations

from .alerts import AlertDescription


class TLSError(Exception):
    """Base class: a fatal protocol failure that is answered with one alert."""

    alert: AlertDescription = AlertDescription.internal_error

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.alert.name.replace("_", " "))

    @property
    def reason(self) -> str:
        return str(self)


class UnexpectedMessage(TLSError):
    alert = AlertDescription.unexpected_message


class BadRecordMac(TLSError):
    alert = AlertDescription.bad_record_mac


class RecordOverflow(TLSError):
    alert = AlertDescription.record_overflow


class HandshakeFailure(TLSError):
    alert = AlertDescription.handshake_failure


class BadCertificate(TLSError):
    alert = AlertDescription.bad_certificate


class UnsupportedCertificate(TLSError):
    alert = AlertDescription.unsupported_certificate


class CertificateExpired(TLSError):
    alert = AlertDescription.certificate_expired


class CertificateRevoked(TLSError):
    alert = AlertDescription.certificate_revoked


class BadCertificateStatusResponse(TLSError):
    alert = AlertDescription.bad_certificate_status_response


class CertificateUnknown(TLSError):
    alert = AlertDescription.certificate_unknown


class IllegalParameter(TLSError):
    alert = AlertDescription.illegal_parameter


class UnknownCA(TLSError):
    alert = AlertDescription.unknown_ca


class DecodeError(TLSError):
    alert = AlertDescription.decode_error


class DecryptError(TLSError):
    alert = AlertDescription.decrypt_error


class ProtocolVersion(TLSError):
    alert = AlertDescription.protocol_version


class InsufficientSecurity(TLSError):
    alert = AlertDescription.insufficient_security


class InappropriateFallback(TLSError):
    """RFC 7507 §3: a fallback connection to a server that supports a higher version."""

    alert = AlertDescription.inappropriate_fallback


class NoRenegotiation(TLSError):
    alert = AlertDescription.no_renegotiation


class InternalError(TLSError):
    alert = AlertDescription.internal_error


class MissingExtension(TLSError):
    alert = AlertDescription.missing_extension


class UnsupportedExtension(TLSError):
    alert = AlertDescription.unsupported_extension


class UnrecognizedName(TLSError):
    alert = AlertDescription.unrecognized_name


class CertificateRequired(TLSError):
    alert = AlertDescription.certificate_required


class NoApplicationProtocol(TLSError):
    alert = AlertDescription.no_application_protocol


class AlertReceivedError(Exception):
    """Raised by I/O adapters when the peer sent a fatal alert (not a local failure)."""

    def __init__(self, description: int, message: str = "") -> None:
        from .alerts import alert_name

        self.description = description
        super().__init__(message or f"peer sent fatal alert {alert_name(description)}")


class ConnectionClosedError(Exception):
    """Raised by I/O adapters when the connection is closed and data is requested."""
