"""SSL 2.0 and SSL 3.0 detection.  No stack on this machine still speaks them (OpenSSL 3 and
GnuTLS 3.7 removed both), so the servers here are faithful fakes: they read the scan's
ClientHello with the engine's codec and answer as an SSL 2.0 server (SERVER-HELLO, the
draft's §2.6 layout) or an SSL 3.0 server (ServerHello version 0x0300, RFC 6101 §5.6.1.3)
did, built with the same codec."""
from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

from tlslab.proto.messages import ServerHello
from tlslab.proto.messages12 import Certificate12, ServerHelloDone
from tlslab.proto.record import plaintext_record
from tlslab.proto.sslv2 import ServerHelloV2
from tlslab.scan import enumerate as E
from tlslab.scan.target import ScanTarget


class _Fake:
    """A thread answering each connection's first bytes with ``answer(first_bytes)``."""

    def __init__(self, answer) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    data = conn.recv(65536)
                    out = self.answer(data)
                    if out:
                        conn.sendall(out)
                    time.sleep(0.05)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _ssl2_answer(data: bytes) -> bytes | None:
    if not data or not data[0] & 0x80 or data[2] != 1:
        return plaintext_record(21, b"\x02\x46", 0x0300)  # not SSL 2.0: protocol_version
    specs = bytes.fromhex("0100800700c0")  # RC4_128_WITH_MD5, DES_192_EDE3_CBC_WITH_MD5
    body = ServerHelloV2(msg_type=4, session_id_hit=0, certificate_type=1, server_version=2,
                         certificate_length=3, cipher_specs_length=len(specs),
                         connection_id_length=16, body=b"\x30\x01\x00" + specs + os.urandom(16)).build()
    return (0x8000 | len(body)).to_bytes(2, "big") + body


def _ssl3_answer(data: bytes) -> bytes | None:
    from tlslab.proto.messages import ClientHello
    if not data or data[0] != 22:
        return None
    ch = ClientHello.parse(data[5:5 + int.from_bytes(data[3:5], "big")])
    if ch.legacy_version != 0x0300 or 0x000A not in ch.cipher_suites:
        return plaintext_record(21, b"\x02\x46", 0x0300)  # SSL 3.0 only: protocol_version
    sh = ServerHello(legacy_version=0x0300, random=os.urandom(32), legacy_session_id_echo=b"",
                     cipher_suite=0x000A, legacy_compression_method=0, extensions=None).build()
    return plaintext_record(22, sh + Certificate12(certificate_list=[]).build()
                            + ServerHelloDone().build(), 0x0300)


def _protocols(port: int):
    target = ScanTarget("127.0.0.1", port, timeout=2)
    return asyncio.run(asyncio.wait_for(E.protocols(E.Prober(target, time.monotonic() + 20)), 30))


def test_sslv2_server_is_found_with_its_cipher_kinds():
    fake = _Fake(_ssl2_answer)
    try:
        accepted, answers = _protocols(fake.port)
    finally:
        fake.close()
    assert [k for k, v in accepted.items() if v] == ["SSL 2.0"]
    assert answers["SSL 2.0"].sslv2_ciphers == [0x010080, 0x0700C0]


def test_sslv3_only_server_is_found():
    fake = _Fake(_ssl3_answer)
    try:
        accepted, answers = _protocols(fake.port)
    finally:
        fake.close()
    assert [k for k, v in accepted.items() if v] == ["SSL 3.0"]
    assert answers["SSL 3.0"].cipher_suite == 0x000A
    assert answers["TLS 1.2"].kind == "alert"
