"""TLS 1.2 (and 1.0/1.1) record protection.

* AES-GCM: RFC 5288 §3 (4-byte salt from the key block, 8-byte explicit nonce in
  each record) with the AEAD additional data of RFC 5246 §6.2.3.3.
* ChaCha20-Poly1305: RFC 7905 §2 (nonce = IV XOR the padded sequence number, no
  explicit nonce).
* CBC with HMAC, MAC-then-encrypt: RFC 5246 §6.2.3.2; explicit per-record IV in
  TLS 1.1+ (RFC 4346 §6.2.3.2), chained IV in TLS 1.0 (RFC 2246 §6.2.3.2).
* CBC with encrypt-then-MAC: RFC 7366 §3.
* RC4 with HMAC (legacy, client side only): RFC 5246 §6.2.3.1.

One :class:`RecordProtector12` protects one direction of one connection state;
a ChangeCipherSpec installs new protectors, restarting the sequence number at 0
(RFC 5246 §6.1).
"""
from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..errors import BadRecordMac, DecodeError, InternalError, RecordOverflow
from ..keyschedule import hmac_new  # the C HMAC object (see there)
from .suites import Suite12


MAX_PLAINTEXT = 2 ** 14                 # RFC 5246 §6.2.1
MAX_CIPHERTEXT = 2 ** 14 + 2048         # RFC 5246 §6.2.3
AEAD_TAG_LEN = 16
_SEQ_LIMIT = 2 ** 64
TLS1_1 = 0x0302

# One message for every way a protected record can fail to authenticate, so neither
# the alert nor the text tells a padding error from a MAC error (RFC 5246 §6.2.3.2).
BAD_RECORD_MAC_TEXT = "record authentication failed (bad MAC, padding or length)"

_HASH = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}


def _block_algorithm(suite: Suite12, key: bytes):
    if suite.cipher in ("AES_128_CBC", "AES_256_CBC"):
        return algorithms.AES(key)
    if suite.cipher == "3DES_EDE_CBC":
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

        return TripleDES(key)
    if suite.cipher == "RC4_128":
        from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4

        return ARC4(key)
    raise InternalError(f"{suite.name}: not a CBC or stream cipher")


class RecordProtector12:
    """Protection for one direction under one TLS 1.0-1.2 connection state.

    ``key``, ``mac_key`` and ``iv`` are this direction's values from the key block
    (:meth:`~.prf.KeyBlock.writer`).  ``version`` is the negotiated version; it is
    written into record headers and covered by the MAC / AEAD additional data.
    ``provider`` supplies the explicit CBC IVs of TLS 1.1+ (``provider.random``);
    only :meth:`seal` on such a suite needs it.  ``encrypt_then_mac`` is the
    negotiated RFC 7366 extension; it only changes CBC suites (RFC 7366 §3 rules
    it out for AEAD and stream ciphers), so it is ignored for the others.

    :meth:`seal` returns a complete TLSCiphertext record; :meth:`open` takes the
    5-byte header and the fragment and returns ``(content_type, plaintext)``.
    ``seq`` is the sequence number of the next record.
    """

    def __init__(self, suite: Suite12, key: bytes, mac_key: bytes = b"", iv: bytes = b"",
                 version: int = 0x0303, encrypt_then_mac: bool = False, provider=None,
                 seq: int = 0) -> None:
        if not suite.available:
            raise InternalError(f"{suite.name}: cipher not available in this cryptography build")
        if len(key) != suite.key_len or len(mac_key) != suite.mac_key_len:
            raise InternalError(f"{suite.name}: wrong key or MAC key length")
        if len(iv) != suite.fixed_iv_len:
            raise InternalError(f"{suite.name}: IV must be {suite.fixed_iv_len} bytes")
        if suite.min_version > version:
            raise InternalError(f"{suite.name} cannot be used before TLS 1.2")
        self.suite = suite
        self.version = version
        self.provider = provider
        self.seq = seq
        self.encrypt_then_mac = bool(encrypt_then_mac and suite.cbc)
        self._version_bytes = version.to_bytes(2, "big")
        self._mac_key = mac_key
        self._hash = _HASH.get(suite.mac or "", "")
        self._mac_len = suite.mac_len
        self._explicit_iv = suite.cbc and version >= TLS1_1
        self._v1, self._v2 = version >> 8, version & 0xFF
        if suite.cipher in ("AES_128_GCM", "AES_256_GCM"):
            self._mode = "gcm"
            self._aead = AESGCM(key)
            self._salt = iv
        elif suite.cipher == "CHACHA20_POLY1305":
            self._mode = "chacha"
            self._aead = ChaCha20Poly1305(key)
            self._iv_int = int.from_bytes(iv, "big")
        elif suite.cbc:
            self._mode = "cbc"
            self._algorithm = _block_algorithm(suite, key)
            # TLS 1.0: the first IV is from the key block, later ones are the last
            # ciphertext block of the previous record (RFC 2246 §6.2.3.2).
            self._chain = iv
        else:
            self._mode = "stream"
            # RC4 state runs on across records (RFC 5246 §6.2.3.1); one per direction of use.
            cipher = Cipher(_block_algorithm(suite, key), mode=None)
            self._rc4_enc = cipher.encryptor()
            self._rc4_dec = cipher.decryptor()

    # -- helpers -------------------------------------------------------------

    def _seq_bytes(self) -> bytes:
        if self.seq >= _SEQ_LIMIT:
            # RFC 5246 §6.1: sequence numbers must not wrap; renegotiate or close first.
            raise InternalError("TLS 1.2 sequence number would wrap")
        return self.seq.to_bytes(8, "big")

    def _pseudo_header(self, seq: bytes, content_type: int, length: int) -> bytes:
        """seq_num || type || version || length: the MAC input prefix (RFC 5246 §6.2.3.1)
        and the AEAD additional_data (§6.2.3.3)."""
        return seq + bytes((content_type,)) + self._version_bytes + length.to_bytes(2, "big")

    def _mac(self, data: bytes) -> bytes:
        return hmac_new(self._mac_key, data, self._hash).digest()

    def _header(self, content_type: int, length: int) -> bytes:
        return bytes((content_type,)) + self._version_bytes + length.to_bytes(2, "big")

    def _next_iv(self) -> bytes:
        if not self._explicit_iv:
            return self._chain
        if self.provider is None:
            raise InternalError("CBC in TLS 1.1+ needs a provider for explicit IVs")
        return self.provider.random(self.suite.block_size)

    def _pad(self, data: bytes) -> bytes:
        """CBC padding: padding_length + 1 bytes, each of value padding_length (RFC 5246
        §6.2.3.2).  We send the minimum; any up to 255 is legal."""
        bs = self.suite.block_size
        pad_len = bs - 1 - (len(data) % bs)
        return data + bytes((pad_len,)) * (pad_len + 1)

    def _cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        enc = Cipher(self._algorithm, modes.CBC(iv)).encryptor()
        ct = enc.update(data) + enc.finalize()
        if not self._explicit_iv:
            self._chain = ct[-self.suite.block_size:]
        return ct

    def _cbc_decrypt(self, iv: bytes, ct: bytes) -> bytes:
        dec = Cipher(self._algorithm, modes.CBC(iv)).decryptor()
        if not self._explicit_iv:
            self._chain = ct[-self.suite.block_size:]
        return dec.update(ct) + dec.finalize()

    @property
    def max_overhead(self) -> int:
        """Largest number of bytes :meth:`seal` adds to a plaintext (header excluded)."""
        s = self.suite
        if s.aead:
            return s.record_iv_len + AEAD_TAG_LEN
        if s.cbc:
            iv = s.block_size if self._explicit_iv else 0
            return iv + s.mac_len + s.block_size
        return s.mac_len

    # -- sealing -------------------------------------------------------------

    def seal(self, content_type: int, plaintext: bytes) -> bytes:
        """Protect one record and return header || fragment (RFC 5246 §6.2.3).

        The caller fragments: more than 2^14 bytes of plaintext is a programming error.
        """
        if len(plaintext) > MAX_PLAINTEXT:
            raise InternalError(f"record plaintext of {len(plaintext)} bytes exceeds 2^14")
        seq = self._seq_bytes()
        mode = self._mode
        if mode == "gcm" or mode == "chacha":
            return self._seal_aead(seq, content_type, plaintext)
        pseudo = self._pseudo_header(seq, content_type, len(plaintext))
        if mode == "cbc":
            iv = self._next_iv()
            iv_part = iv if self._explicit_iv else b""
            if self.encrypt_then_mac:
                # RFC 7366 §3: MAC over IV || ciphertext, with the length of those.
                body = iv_part + self._cbc_encrypt(iv, self._pad(plaintext))
                mac = self._mac(self._pseudo_header(seq, content_type, len(body)) + body)
                fragment = body + mac
            else:
                mac = self._mac(pseudo + plaintext)
                fragment = iv_part + self._cbc_encrypt(iv, self._pad(plaintext + mac))
        else:
            fragment = self._rc4_enc.update(plaintext + self._mac(pseudo + plaintext))
        self.seq += 1
        return self._header(content_type, len(fragment)) + fragment

    def _seal_aead(self, seq: bytes, content_type: int, plaintext: bytes) -> bytes:
        """AES-GCM (RFC 5288 §3) or ChaCha20-Poly1305 (RFC 7905 §2): header, explicit
        nonce (GCM only) and ciphertext joined by one copy of the ciphertext."""
        n = len(plaintext)
        v1, v2 = self._v1, self._v2
        # additional_data = seq_num || type || version || length (RFC 5246 §6.2.3.3)
        aad = seq + bytes((content_type, v1, v2, n >> 8, n & 0xFF))
        if self._mode == "gcm":
            # RFC 5288 §3: the explicit nonce must never repeat under one key; the
            # sequence number is the simplest value with that property.
            length = 8 + n + AEAD_TAG_LEN
            prefix = bytes((content_type, v1, v2, length >> 8, length & 0xFF)) + seq
            ciphertext = self._aead.encrypt(self._salt + seq, plaintext, aad)
        else:
            length = n + AEAD_TAG_LEN
            prefix = bytes((content_type, v1, v2, length >> 8, length & 0xFF))
            ciphertext = self._aead.encrypt((self._iv_int ^ self.seq).to_bytes(12, "big"),
                                            plaintext, aad)
        self.seq += 1
        # one concatenation: measured faster than encrypt_into() a zero-filled bytearray
        return prefix + ciphertext

    # -- opening -------------------------------------------------------------

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes]:
        """Deprotect one record; returns ``(content_type, plaintext)``.

        RecordOverflow for a fragment over 2^14 + 2048 bytes or a plaintext over
        2^14 (RFC 5246 §6.2.3, §6.2.1); BadRecordMac, always with the same text,
        for any authentication, padding or length failure (RFC 5246 §6.2.3.2).
        The sequence number advances only on success.
        """
        if len(header) != 5:
            raise InternalError("record header must be 5 bytes")
        if int.from_bytes(header[3:5], "big") != len(fragment):
            raise DecodeError("record length field does not match the record body")
        if len(fragment) > MAX_CIPHERTEXT:
            raise RecordOverflow(f"protected record of {len(fragment)} bytes exceeds 2^14 + 2048")
        content_type = header[0]
        seq = self._seq_bytes()
        mode = self._mode
        if mode == "gcm" or mode == "chacha":
            plaintext = self._open_aead(seq, content_type, fragment)
        elif mode == "cbc":
            if self.encrypt_then_mac:
                plaintext = self._open_etm(seq, content_type, fragment)
            else:
                plaintext = self._open_mte(seq, content_type, fragment)
        else:
            plaintext = self._open_stream(seq, content_type, fragment)
        if len(plaintext) > MAX_PLAINTEXT:
            raise RecordOverflow(f"record plaintext of {len(plaintext)} bytes exceeds 2^14")
        self.seq += 1
        return content_type, plaintext

    def _open_aead(self, seq: bytes, content_type: int, fragment: bytes) -> bytes:
        if self._mode == "gcm":
            if len(fragment) < 8 + AEAD_TAG_LEN:
                raise BadRecordMac(BAD_RECORD_MAC_TEXT)
            nonce = self._salt + fragment[:8]
            # a view, not a copy of the record (the AEAD reads any buffer)
            ciphertext = memoryview(fragment)[8:]
        else:
            if len(fragment) < AEAD_TAG_LEN:
                raise BadRecordMac(BAD_RECORD_MAC_TEXT)
            nonce = (self._iv_int ^ self.seq).to_bytes(12, "big")
            ciphertext = fragment
        aad = self._pseudo_header(seq, content_type, len(ciphertext) - AEAD_TAG_LEN)
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise BadRecordMac(BAD_RECORD_MAC_TEXT) from None

    def _split_cbc(self, body: bytes) -> tuple[bytes, bytes]:
        """(iv, ciphertext) of a CBC body; the length checks use public values only."""
        bs = self.suite.block_size
        iv_len = bs if self._explicit_iv else 0
        ct_len = len(body) - iv_len
        if ct_len < bs or ct_len % bs:
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        if self._explicit_iv:
            return body[:bs], body[bs:]
        return self._chain, body

    def _open_mte(self, seq: bytes, content_type: int, fragment: bytes) -> bytes:
        """MAC-then-encrypt CBC (RFC 5246 §6.2.3.2).

        Padding and MAC are both always checked and combined before the one
        decision, and the MAC is computed even when the padding is bad (over the
        record as if it had a zero-length pad, the RFC's implementation note), so
        no early exit tells a padding oracle apart from a MAC failure.  To blunt
        Lucky Thirteen (AlFardan & Paterson, 2013), the HMAC work is also evened
        out: after the real MAC, a dummy HMAC runs over the bytes the padding
        removed, so the amount of data hashed barely depends on the pad length.

        Residual caveat, stated plainly: this is Python.  Slicing, ``bytes``
        construction, the interpreter and the allocator all take time that
        depends on lengths, and the HMAC call runs per-call work we cannot
        balance exactly, so this code is *not* constant-time; it removes the
        gross, easily measured differences only.  Prefer AEAD suites or
        encrypt-then-MAC (both offered first by default).
        """
        mac_len = self._mac_len
        bs = self.suite.block_size
        iv, ciphertext = self._split_cbc(fragment)
        if len(ciphertext) < ((mac_len + 1 + bs - 1) // bs) * bs:
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)  # cannot hold a MAC and a pad byte
        padded = self._cbc_decrypt(iv, ciphertext)
        n = len(padded)
        pad_len = padded[-1]
        # Padding check over a window of fixed size (the last up to 256 bytes), compared
        # with compare_digest, instead of a loop that stops at the first bad byte.
        window = min(256, n)
        tail = padded[n - window:]
        k = min(pad_len + 1, window)
        expected_tail = tail[:window - k] + bytes((pad_len,)) * k
        good_pad = hmac.compare_digest(tail, expected_tail) & (pad_len + 1 + mac_len <= n)
        strip = (pad_len + 1) * good_pad + 1 * (not good_pad)
        content_len = n - strip - mac_len
        content = padded[:content_len]
        received = padded[content_len:content_len + mac_len]
        expected_mac = self._mac(self._pseudo_header(seq, content_type, content_len) + content)
        # Lucky 13 balance: hash the bytes the padding took away (none when the
        # padding was bad and only one byte was stripped), with the same call as _mac.
        hmac_new(self._mac_key, padded[:strip - 1], self._hash).digest()
        good_mac = hmac.compare_digest(received, expected_mac)
        if not (good_pad & good_mac):
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        return content

    def _open_etm(self, seq: bytes, content_type: int, fragment: bytes) -> bytes:
        """Encrypt-then-MAC CBC (RFC 7366 §3): check the MAC over IV || ciphertext first;
        only an authentic record is decrypted, so the padding is no longer an oracle."""
        mac_len = self._mac_len
        if len(fragment) < mac_len:
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        body, received = fragment[:-mac_len], fragment[-mac_len:]
        expected = self._mac(self._pseudo_header(seq, content_type, len(body)) + body)
        if not hmac.compare_digest(received, expected):
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        iv, ciphertext = self._split_cbc(body)
        padded = self._cbc_decrypt(iv, ciphertext)
        pad_len = padded[-1]
        if pad_len + 1 > len(padded) or padded[-(pad_len + 1):] != bytes((pad_len,)) * (pad_len + 1):
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        return padded[:-(pad_len + 1)]

    def _open_stream(self, seq: bytes, content_type: int, fragment: bytes) -> bytes:
        """RC4 + HMAC (RFC 5246 §6.2.3.1); no padding, so no padding oracle."""
        mac_len = self._mac_len
        if len(fragment) < mac_len:
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        data = self._rc4_dec.update(fragment)
        content, received = data[:-mac_len], data[-mac_len:]
        expected = self._mac(self._pseudo_header(seq, content_type, len(content)) + content)
        if not hmac.compare_digest(received, expected):
            raise BadRecordMac(BAD_RECORD_MAC_TEXT)
        return content


def protector_pair(suite: Suite12, keys, *, client: bool, version: int = 0x0303,
                   encrypt_then_mac: bool = False, provider=None
                   ) -> tuple[RecordProtector12, RecordProtector12]:
    """``(writer, reader)`` for one side from a :class:`~.prf.KeyBlock` (RFC 5246 §6.3):
    the client writes with the client_write_* values and reads with the server's."""
    wkey, wmac, wiv = keys.writer(client)
    rkey, rmac, riv = keys.writer(not client)
    return (RecordProtector12(suite, wkey, wmac, wiv, version, encrypt_then_mac, provider),
            RecordProtector12(suite, rkey, rmac, riv, version, encrypt_then_mac, provider))

