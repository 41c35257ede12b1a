"""Trust anchors from PEM/DER files or the system store (the only file reading of the
certificate code; the engine gets the loaded list)."""
from __future__ import annotations

import functools
import os
import re
import ssl
import warnings

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.hazmat.primitives import hashes


# --------------------------------------------------------------------------- trust store


_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL
)


def _parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM bundle or a single DER), skipping bad ones."""
    out: list[x509.Certificate] = []
    blocks = _PEM_CERT.findall(data)
    if not blocks and b"-----BEGIN" not in data and data:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            return []
    with warnings.catch_warnings():
        # Old roots with non-positive serials load with a deprecation warning.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in blocks:
            try:
                out.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                # Trust bundles carry the odd certificate cryptography refuses
                # (bad encodings, future stricter parsing): one bad apple must
                # not empty the store.
                continue
    return out


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> tuple[x509.Certificate, ...]:
    # mtime and size are part of the key so an edited file is re-read.
    if os.path.isdir(path):
        seen: set[bytes] = set()
        certs: list[x509.Certificate] = []
        for entry in sorted(os.listdir(path)):
            full = os.path.join(path, entry)
            if not os.path.isfile(full):
                continue
            try:
                with open(full, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for cert in _parse_certificates(data):
                fp = cert.fingerprint(hashes.SHA256())
                if fp not in seen:
                    seen.add(fp)
                    certs.append(cert)
        return tuple(certs)
    with open(path, "rb") as f:
        return tuple(_parse_certificates(f.read()))


def _load_path(path: str) -> tuple[x509.Certificate, ...]:
    st = os.stat(path)
    return _load_cached(os.path.abspath(path), st.st_mtime_ns, st.st_size)


def _system_store_candidates() -> list[str]:
    paths = ssl.get_default_verify_paths()
    candidates = [
        paths.cafile,
        paths.openssl_cafile,
        paths.capath,
        paths.openssl_capath,
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    try:
        import certifi  # type: ignore[import-not-found]

        candidates.append(certifi.where())
    except ImportError:
        pass
    return [c for c in candidates if c]


def load_trust_store(ca_file: str | os.PathLike[str] | None = None) -> list[x509.Certificate]:
    """Trust anchors: the certificates in ``ca_file``, or the system store.

    ``ca_file`` is a PEM bundle (a single DER certificate or a directory of
    such files also works).  Without it the system store is used, first found
    of: ``ssl.get_default_verify_paths()`` cafile/capath, OpenSSL's compiled-in
    defaults, ``/etc/ssl/certs/ca-certificates.crt``, ``certifi``.  Results are
    cached per path (a system bundle holds ~150 roots).  Certificates
    ``cryptography`` cannot parse are skipped.  Returns an empty list if no
    system store is found; raises ``FileNotFoundError`` for a missing
    ``ca_file`` and ``ValueError`` if it holds no certificate.
    """
    if ca_file is not None:
        path = os.fspath(ca_file)
        if not os.path.exists(path):
            raise FileNotFoundError(f"CA file not found: {path}")
        certs = _load_path(path)
        if not certs:
            raise ValueError(f"no certificate could be read from CA file {path}")
        return list(certs)
    for candidate in _system_store_candidates():
        try:
            if not os.path.exists(candidate):
                continue
            certs = _load_path(candidate)
        except OSError:
            continue
        if certs:
            return list(certs)
    return []


# --------------------------------------------------------------------------- description
