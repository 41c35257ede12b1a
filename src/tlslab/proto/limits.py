"""The bounds of one connection: what is traced record by record before only counters
are kept, the work a peer can make us do for free (issue 14, finding 5), the alerts that
are always fatal, and when a key must be updated (RFC 8446 §5.5).  Each limit is named
here, with the reason for its value."""
from __future__ import annotations

from .alerts import AlertDescription

#: application data records traced one by one before only counters are kept
TRACED_APP_RECORDS = 16
#: RFC 5246 §7.2.2: descriptions that are fatal whatever level they are sent with
ALWAYS_FATAL = frozenset({
    AlertDescription.unexpected_message, AlertDescription.bad_record_mac,
    AlertDescription.decryption_failed, AlertDescription.record_overflow,
    AlertDescription.decompression_failure, AlertDescription.handshake_failure,
    AlertDescription.illegal_parameter, AlertDescription.unknown_ca, AlertDescription.access_denied,
    AlertDescription.decode_error, AlertDescription.decrypt_error,
    AlertDescription.export_restriction, AlertDescription.protocol_version,
    AlertDescription.insufficient_security, AlertDescription.internal_error,
    AlertDescription.inappropriate_fallback, AlertDescription.missing_extension,
    AlertDescription.unsupported_extension, AlertDescription.no_application_protocol,
    AlertDescription.certificate_required})
#: post-handshake messages (KeyUpdate, tickets, refused renegotiations) traced one by one
TRACED_POST_HANDSHAKE = 64

# -- bounds on work a peer can make us do for free (issue 14, finding 5) ----------------------
#: Warning alerts (TLS 1.2 warnings and TLS 1.3 user_canceled) per connection.  A real peer
#: sends at most a few (an unrecognized_name, one user_canceled before its close_notify,
#: RFC 8446 §6.1); OpenSSL stops at 5 in a row (MAX_WARN_ALERT_COUNT), Go at 16 records that
#: carry nothing (maxUselessRecords).  Beyond: unexpected_message.
MAX_WARNING_ALERTS = 16
#: Empty (zero-length) records in a row.  RFC 8446 §5.1 allows zero-length application data
#: records, so a few are fine, but each costs an AEAD open and yields nothing; OpenSSL
#: (MAX_EMPTY_RECORDS) and rustls (ALLOWED_CONSECUTIVE_EMPTY_FRAGMENTS_MAX) both stop at 32.
#: Reset by any non-empty record.  Beyond: unexpected_message.
MAX_EMPTY_RECORDS = 32
#: KeyUpdate messages received with no application data in between.  Each one costs an HKDF
#: derivation and, with update_requested, a KeyUpdate of ours; OpenSSL allows 32 in a row
#: (MAX_KEY_UPDATE_MESSAGES, reset by application data), Go 16 post-handshake records.
#: Beyond: unexpected_message.
MAX_KEY_UPDATES_IN_A_ROW = 32
#: NewSessionTicket messages received with no application data in between.  Servers send
#: one to a few (OpenSSL 2, one more after post-handshake auth); Go cuts the connection after
#: 16 post-handshake messages in a row, so no deployed server sends more.  Beyond:
#: unexpected_message.
MAX_TICKETS_IN_A_ROW = 32


#: RFC 8446 §5.5 and draft-irtf-cfrg-aead-limits: AES-GCM may protect about 2^24.5 full-size
#: records per key; we rekey at 2^23 to keep a wide margin.  ChaCha20-Poly1305's limit
#: (2^62 per key) is out of reach, so it is only rekeyed before the sequence number wraps.
_AEAD_RECORD_LIMITS = {0x1303: 1 << 60}   # TLS_CHACHA20_POLY1305_SHA256; the AES suites: 2^23


def _key_update_limit(suite, config) -> int:
    """Records under one key before we rekey: the config's ``key_update_after_records``,
    else the AEAD's limit above."""
    return config.key_update_after_records or _AEAD_RECORD_LIMITS.get(suite.code, 1 << 23)
