"""Loopback servers for fleet tests and the fleet benchmark, and a real scan function.

:class:`FleetLab` runs many servers on 127.0.0.1 from one background thread: TLS servers in several configurations (Python ``ssl``), slow ones, and the bad
kinds a fleet meets: closed ports, servers that accept and stall, answer in plain text,
reset, or close half-way.

:func:`handshake_scan` stands in for ``tlslab.scan.run.scan_target`` until that lands:
same signature, a JSON document whose ``protocols``/``cipher_suites``/``certificate``
depend on the server's configuration, found with real handshakes (Python ``ssl``), and
``error`` with a code when the server is not a working TLS server.  It is a module-level
function so that Dask ships it to workers by reference.

Loopback only: nothing here talks to another host.
"""
from __future__ import annotations

import datetime
import hashlib
import selectors
import socket
import ssl
import struct
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"

#: server configurations: (min version, max version, TLS 1.2 cipher list or None)
CONFIGS = {
    "modern": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, None),
    "tls13": (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3, None),
    "tls12-gcm": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2,
                  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"),
    "tls12-chacha": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2,
                     "ECDHE-ECDSA-CHACHA20-POLY1305"),
}

#: the TLS 1.2 suites handshake_scan tries one by one (OpenSSL names)
SUITES_12 = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
             "ECDHE-ECDSA-CHACHA20-POLY1305")


# ------------------------------------------------------------------ the scan function

class _Fatal(Exception):
    """The server is not a working TLS server: (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _handshake(host: str, port: int, timeout: float, version: ssl.TLSVersion,
               cipher: str | None = None) -> tuple[str, str, bytes] | None:
    """One handshake: (version, cipher, certificate DER), or None when the server
    refused this offer with an alert; :class:`_Fatal` when it is not TLS at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    if cipher:
        ctx.set_ciphers(cipher)
    if timeout <= 0:
        raise _Fatal("timeout", "timed out (no time left)")
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw) as tls:
                return tls.version(), tls.cipher()[0], tls.getpeercert(binary_form=True)
    except ConnectionRefusedError:
        raise _Fatal("connection-refused", f"connection refused by {host}:{port}") from None
    except (socket.timeout, TimeoutError):
        raise _Fatal("timeout", "timed out waiting for the server") from None
    except ConnectionResetError:
        raise _Fatal("connection-reset", "the server reset the connection") from None
    except ssl.SSLEOFError:
        raise _Fatal("eof", "the server closed the connection mid-handshake") from None
    except ssl.SSLError as e:
        reason = (e.reason or str(e)).upper()
        if "ALERT" in reason or "NO_CIPHERS" in reason or "NO_PROTOCOLS" in reason:
            return None
        if "EOF" in reason:
            raise _Fatal("eof", "the server closed the connection mid-handshake") from None
        raise _Fatal("not-tls", f"not a TLS server ({e.reason or e})") from None
    except OSError as e:
        raise _Fatal("connect-failed", f"cannot connect: {e.strerror or e}") from None


def handshake_scan(target: dict, options: dict) -> dict:
    """A small real scan: which of TLS 1.2/1.3 and which TLS 1.2 suites the server takes.

    Honours ``options["deadline_unix"]`` (every connection's timeout ends before it) and
    ``options["max_connections_per_second"]`` (connections paced)."""
    t0 = time.monotonic()
    host, port = target["host"], int(target["port"])
    deadline = float(options.get("deadline_unix") or time.time() + 30)
    gap = 1.0 / float(options.get("max_connections_per_second") or 1000)
    last = [0.0]

    def connect(version, cipher=None):
        wait = last[0] + gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        last[0] = time.monotonic()
        # stop a little before the task's own limit, so the scan says why itself
        left = min(float(target.get("timeout") or 5), deadline - time.time() - 0.2)
        return _handshake(host, port, left, version, cipher)

    doc: dict = {"target": target}
    try:
        t13 = connect(ssl.TLSVersion.TLSv1_3)
        t12 = connect(ssl.TLSVersion.TLSv1_2)
        if t13 is None and t12 is None:
            raise _Fatal("no-protocol", "the server accepts neither TLS 1.2 nor TLS 1.3")
        suites12 = [s for s in SUITES_12 if t12 is not None
                    and connect(ssl.TLSVersion.TLSv1_2, s) is not None]
    except _Fatal as e:
        doc["error"] = {"code": e.code, "message": e.message}
        doc["duration_s"] = round(time.monotonic() - t0, 4)
        return doc
    cert = (t13 or t12)[2]
    doc.update({
        "protocols": {"TLSv1.2": t12 is not None, "TLSv1.3": t13 is not None},
        "cipher_suites": {"TLSv1.2": suites12, "TLSv1.3": [t13[1]] if t13 else []},
        "certificate": {"fingerprint_sha256": hashlib.sha256(cert).hexdigest()},
        "findings": ([{"id": "no-tls13", "summary": "TLS 1.3 is not enabled"}]
                     if t13 is None else []),
        "duration_s": round(time.monotonic() - t0, 4),
    })
    return doc


# ------------------------------------------------------------------ the servers

def _certificate(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("fleet.test")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class FleetLab:
    """Many loopback servers, one accept thread for all of them (a selector) and a short
    thread per connection.  Blocking ``ssl`` sockets on the server side, because OpenSSL
    then sends its alert when it refuses an offer (asyncio's TLS drops it), and a
    scanner tells "refused this version" from "hung up" by that alert."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fleet-lab-")
        self.cert, self.key = _certificate(Path(self._tmp.name))
        self.contexts = {name: self._context(*cfg) for name, cfg in CONFIGS.items()}
        self.kinds: dict[int, str] = {}
        self._handlers: dict[int, object] = {}
        self._listeners: dict[int, socket.socket] = {}
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []  # stalled connections, open until close()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="fleet-lab-accept")
        self._thread.start()

    def _context(self, low, high, ciphers) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.minimum_version, ctx.maximum_version = low, high
        if ciphers:
            ctx.set_ciphers(ciphers)
        return ctx

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                ready = self._selector.select(timeout=0.05) if self._listeners else []
            if not ready:
                time.sleep(0.01) if not self._listeners else None
                continue
            for key, _ in ready:
                try:
                    conn, _addr = key.fileobj.accept()
                except OSError:
                    continue
                port = key.data
                handler = self._handlers.get(port)
                if handler is None:
                    conn.close()
                    continue
                threading.Thread(target=self._run, args=(handler, conn), daemon=True).start()

    @staticmethod
    def _run(handler, conn: socket.socket) -> None:
        conn.settimeout(5)
        keep = False
        try:
            keep = handler(conn)  # True: the handler keeps the connection open
        except OSError:  # the client went away: normal for refused probes
            pass
        finally:
            if not keep:
                conn.close()

    def _listen(self, handler, kind: str) -> int:
        sock = socket.create_server((HOST, 0), backlog=512)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        with self._lock:
            self._selector.register(sock, selectors.EVENT_READ, data=port)
            self._listeners[port] = sock
        self._handlers[port], self.kinds[port] = handler, kind
        return port

    # -------------------------------------------------------------- kinds of server

    def _tls_handler(self, config: str, delay: float):
        ctx = self.contexts[config]

        def handle(conn: socket.socket) -> None:
            if delay:
                time.sleep(delay)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes
            except (ssl.SSLError, OSError):
                pass
        return handle

    def tls(self, config: str, delay: float = 0.0) -> int:
        """A TLS server in configuration ``config``; ``delay`` s of silence first."""
        return self._listen(self._tls_handler(config, delay),
                            f"tls:{config}" + (f":slow{delay:g}" if delay else ""))

    def stall(self) -> int:
        """Accepts, reads the ClientHello, never answers."""
        def handle(conn):
            conn.recv(65536)
            self._held.append(conn)
            return True
        return self._listen(handle, "stall")

    def plaintext(self) -> int:
        """Not TLS: an HTTP error in clear as soon as the client speaks."""
        def handle(conn):
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return self._listen(handle, "plaintext")

    def reset(self) -> int:
        """Reads the ClientHello, then resets the connection (RST)."""
        def handle(conn):
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return self._listen(handle, "reset")

    def half_open(self) -> int:
        """Reads the ClientHello, then closes without a word (FIN mid-handshake)."""
        def handle(conn):
            conn.recv(65536)
            conn.shutdown(socket.SHUT_WR)
        return self._listen(handle, "half-open")

    def dead(self) -> int:
        """A port nobody listens on (connection refused)."""
        port = free_port()
        self.kinds[port] = "dead"
        return port

    # -------------------------------------------------------------- changes

    def reconfigure(self, port: int, config: str) -> None:
        """The TLS server on ``port`` answers in another configuration from now on."""
        self._handlers[port] = self._tls_handler(config, 0.0)
        self.kinds[port] = f"tls:{config}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for sock in self._listeners.values():
                self._selector.unregister(sock)
                sock.close()
            self._listeners.clear()
        for conn in self._held:
            conn.close()
        self._selector.close()
        self._tmp.cleanup()
