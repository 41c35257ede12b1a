"""Fetch a missing intermediate from the AIA caIssuers URL (RFC 5280 §4.2.2.1).

Only ``http://`` URLs (caIssuers are served over plain HTTP so that fetching them needs no
trust first), only the URL the certificate itself names, bounded in size and time.  The
answer may be a DER or PEM certificate or a "certs-only" CMS/PKCS #7 bundle (RFC 5280
§4.2.2.1 allows both).
"""
from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

#: a CA certificate is a few KB; a bundle of several is still small
MAX_BYTES = 256 * 1024


class FetchError(Exception):
    pass


async def fetch_certificates(url: str, timeout: float) -> list[x509.Certificate]:
    """The certificates at ``url``; :class:`FetchError` with a one-line reason otherwise."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        raise FetchError(f"not fetched: {url} is not an http:// URL")
    if not parts.hostname:
        raise FetchError(f"not fetched: {url} names no host")
    try:
        port = parts.port or 80
    except ValueError:
        raise FetchError(f"not fetched: bad port in {url}") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if port == 80 else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:
        host_header = f"[{parts.hostname}]" + ("" if port == 80 else f":{port}")
    deadline = time.monotonic() + timeout

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(parts.hostname, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host_header}\r\n"
                         f"User-Agent: tlslab-diagnose\r\nAccept: */*\r\n\r\n".encode("ascii"))
            await writer.drain()
            data = bytearray()
            while len(data) <= MAX_BYTES + 8192:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
            return bytes(data)
        finally:
            writer.transport.abort()

    try:
        raw = await asyncio.wait_for(go(), max(deadline - time.monotonic(), 0.05))
    except asyncio.TimeoutError:
        raise FetchError(f"fetching {url} timed out after {timeout:.1f} s") from None
    except (OSError, UnicodeError) as e:
        raise FetchError(f"cannot fetch {url}: {getattr(e, 'strerror', None) or e}") from None
    head, sep, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if not sep or not status.startswith("HTTP/"):
        raise FetchError(f"{url} did not answer with HTTP")
    if status.split()[1:2] != ["200"]:
        raise FetchError(f"{url} answered {status.strip()[:60]}")
    if len(body) > MAX_BYTES:
        raise FetchError(f"{url} sent more than {MAX_BYTES // 1024} KiB")
    return parse_certificates(body, url)


def parse_certificates(body: bytes, url: str = "the answer") -> list[x509.Certificate]:
    loaders = (
        lambda b: [x509.load_der_x509_certificate(b)],
        lambda b: x509.load_pem_x509_certificates(b),
        lambda b: pkcs7.load_der_pkcs7_certificates(b),
        lambda b: pkcs7.load_pem_pkcs7_certificates(b),
    )
    for load in loaders:
        try:
            certs = load(body)
        except (ValueError, TypeError):
            continue
        if certs:
            return list(certs)
    raise FetchError(f"{url}: not a certificate (DER, PEM or PKCS #7)")
