"""The crypto floor of a tlslab handshake, for ``benchmarks/handshake.py``.

:func:`census` runs one real tlslab handshake (client and server) under ``sys.setprofile``
and counts every call it makes into ``cryptography`` and ``_hashlib`` (what ``hashlib`` and
``hmac`` call), with the size of the data where the caller's frame shows it, and the AEAD
contexts its record protectors build.  :func:`floor_step` replays exactly those calls, with
inputs of the same kind and size and nothing else around them.  Its rate is the most
handshakes a second that a stack making these calls could reach if everything else (parsing,
state machines, buffers, Python) cost nothing.  See benchmarks/README.md, "Crypto floor".

Nothing here imports ``ssl`` or sets the environment: ``handshake.py`` does that.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import sys
import types
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import cryptography
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store

try:
    from cryptography.hazmat.primitives.asymmetric import mlkem
except ImportError:  # pragma: no cover - cryptography without ML-KEM
    mlkem = None
try:  # what tlslab's key schedule calls (hmac.digest is a Python wrapper around it)
    from _hashlib import hmac_digest as _hmac_digest
    from _hashlib import hmac_new as _hmac_new_c
except ImportError:  # pragma: no cover
    _hmac_digest = hmac.digest
    _hmac_new_c = hmac.new

#: C functions owned by these modules are crypto calls
_CRYPTO_MODULES = ("cryptography", "_hashlib", "_rust")
_CRYPTOGRAPHY_DIR = os.path.dirname(cryptography.__file__)
#: caller locals that hold the data a crypto call works on, most specific first
_DATA_LOCALS = ("inner", "data", "message", "plaintext", "ciphertext", "transcript")
DEFAULT_SIZE = 64   # bytes, when the caller's frame does not show the data (HMAC inputs)
HMAC_KEY_SIZE = 32  # the SHA-256 secrets of the key schedule / the TLS 1.2 PRF


@dataclass
class Census:
    """The crypto calls of one handshake, both sides together."""

    calls: Counter = field(default_factory=Counter)   # call name -> times per handshake
    sizes: dict = field(default_factory=dict)         # call name -> [bytes of data, ...]
    hash_names: list = field(default_factory=list)    # the name given to each hashlib.new

    @property
    def unmodelled(self) -> dict:
        """Crypto calls the floor has no replay for (it would understate the floor)."""
        return {name: n for name, n in self.calls.items() if name not in _REPLAY}

    def as_json(self) -> dict:
        return {"calls_per_handshake": dict(sorted(self.calls.items())),
                "data_bytes_per_handshake": {name: sum(s) for name, s in sorted(self.sizes.items())},
                "unmodelled_calls": self.unmodelled}


def _callee(fn, frame) -> tuple[str, bool]:
    """(name, whether it is a crypto call) of the C function of a ``c_call`` event."""
    name = getattr(fn, "__name__", "?")
    owner = getattr(fn, "__self__", None)
    if owner is None or isinstance(owner, types.ModuleType):  # a module-level function
        module = getattr(fn, "__module__", None) or getattr(owner, "__name__", "") or ""
        # cryptography's Rust functions name short modules ("x25519", "mlkem"): they count
        # when cryptography's own Python code calls them
        crypto = module.startswith(_CRYPTO_MODULES) or (
            module not in ("builtins", "") and frame.f_code.co_filename.startswith(_CRYPTOGRAPHY_DIR))
        return f"{module}.{name}", crypto
    cls = type(owner)
    return f"{cls.__qualname__}.{name}", cls.__module__.startswith(_CRYPTO_MODULES)


def _data_size(frame, name: str) -> int | None:
    loc = frame.f_locals
    if name.endswith(".encrypt_into"):  # TLS 1.3 seal: plaintext + content type + padding
        plaintext = loc.get("plaintext")
        return None if plaintext is None else len(plaintext) + 1 + (loc.get("padding") or 0)
    for key in _DATA_LOCALS:
        value = loc.get(key)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return len(value)
    return None


def census(handshake: Callable[[], object]) -> Census:
    """Run ``handshake()`` once and count its crypto calls (see the module docstring)."""
    result = Census()

    def watch(frame, event, arg):
        if event == "c_call":
            name, crypto = _callee(arg, frame)
            if crypto:
                result.calls[name] += 1
                size = _data_size(frame, name)
                if size is not None:
                    result.sizes.setdefault(name, []).append(size)
                if name == "_hashlib.new":
                    result.hash_names.append(frame.f_locals.get("name"))
        elif event == "return" and frame.f_code.co_name == "__init__":
            # AEAD objects are built by calling their type, which c_call does not report:
            # count the ones tlslab's record protectors (TLS 1.3 and 1.2) hold
            obj = frame.f_locals.get("self")
            if type(obj).__name__.startswith("RecordProtector"):
                aead = getattr(obj, "_aead", None)
                if aead is not None:
                    result.calls[f"{type(aead).__name__}()"] += 1

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        handshake()
    finally:
        sys.setprofile(previous)
    return result


# -- the replay ---------------------------------------------------------------------------
@dataclass
class FloorInputs:
    """What the replay needs from the scenario: the same keys, certificates and name."""

    key: object                 # the server's private key
    scheme: str                 # the negotiated signature scheme (IANA name)
    chain_ders: list            # the server's chain as sent, leaf first
    ca_cert: x509.Certificate   # the client's trust anchor
    server_name: str


def _signature_params(scheme: str) -> Callable[[], tuple]:
    """The arguments tlslab passes to sign()/verify() for ``scheme`` (built per call, as
    tlslab does)."""
    hash_cls = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[
        scheme.rsplit("_", 1)[1]]
    if scheme.startswith("ecdsa_"):
        return lambda: (ec.ECDSA(hash_cls()),)
    if scheme.startswith("rsa_pss_"):
        return lambda: (padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size),
                        hash_cls())
    if scheme.startswith("rsa_pkcs1_"):
        return lambda: (padding.PKCS1v15(), hash_cls())
    raise ValueError(f"no floor replay for signature scheme {scheme}")


# Each replay is fn(env, arg); the plan lists them in this order (a handshake's order, so a
# call works on what the call before it made, e.g. the verify on the freshly loaded leaf).
def _x_generate(e, _):
    e.xkey = x25519.X25519PrivateKey.generate()


def _x_public_key(e, _):
    e.xpub = e.xkey.public_key()


def _x_public_bytes(e, _):
    e.xpub_raw = e.xpub.public_bytes_raw()


def _x_from_bytes(e, _):
    e.xpeer = x25519.X25519PublicKey.from_public_bytes(e.xpub_raw)


def _x_exchange(e, _):
    e.xkey.exchange(e.xpeer)


def _m_generate(e, _):
    e.mkey = mlkem.MLKEM768PrivateKey.generate()


def _m_public_key(e, _):
    e.mpub = e.mkey.public_key()


def _m_public_bytes(e, _):
    e.mpub_raw = e.mpub.public_bytes_raw()


def _m_from_bytes(e, _):
    e.mpeer = mlkem.MLKEM768PublicKey.from_public_bytes(e.mpub_raw)


def _m_encapsulate(e, _):
    e.mct = e.mpeer.encapsulate()[1]


def _m_decapsulate(e, _):
    e.mkey.decapsulate(e.mct)


def _private_public_key(e, _):
    e.key.public_key()


def _sign(e, data):
    e.signed = data
    e.signature = e.key.sign(data, *e.sig_params())


def _load_der(e, der):
    cert = x509.load_der_x509_certificate(der)
    if der is e.leaf_der:
        e.leaf = cert


def _cert_public_key(e, _):
    e.peer_key = e.leaf.public_key()


def _cert_public_bytes(e, _):
    e.leaf.public_bytes(Encoding.DER)


def _policy_store(e, _):
    e.builder1 = PolicyBuilder().store(e.store)


def _policy_time(e, _):
    e.builder2 = e.builder1.time(e.now)


def _policy_build(e, _):
    e.verifier = e.builder2.build_server_verifier(x509.DNSName(e.server_name))


def _chain_verify(e, _):
    e.verifier.verify(e.leaf, e.intermediates)


def _public_verify(e, _):
    e.peer_key.verify(e.signature, e.signed, *e.sig_params())


def _hmac(e, _):
    _hmac_digest(e.hmac_key, e.hmac_msg, "sha256")


def _hash_new(e, arg):
    hashlib.new(*arg)


def _hmac_new(e, _):
    e.hmac_obj = _hmac_new_c(e.hmac_key, e.hmac_msg, "sha256")


def _hmac_obj_digest(e, _):
    e.hmac_obj.digest()


def _sha256_new(e, data):
    hashlib.sha256(data)   # data of the size tlslab hashed (empty for a new transcript)


def _sha384_new(e, data):
    hashlib.sha384(data)


def _hash_update(e, data):
    e.hash.update(data)


def _hash_copy(e, _):
    e.hash.copy()


def _hash_digest(e, _):
    e.hash.digest()


def _compare_digest(e, _):
    hmac.compare_digest(e.digest_a, e.digest_b)


def _aesgcm_new(e, _):
    AESGCM(e.aes_key)


def _aesgcm_encrypt_into(e, arg):
    e.aead.encrypt_into(e.nonce, arg[0], e.aad, arg[1])


def _aesgcm_encrypt(e, plaintext):
    e.aead.encrypt(e.nonce, plaintext, e.aad)


def _aesgcm_decrypt(e, ciphertext):
    e.aead.decrypt(e.nonce, ciphertext, e.aad)


_REPLAY: dict[str, Callable] = {
    "x25519.generate_key": _x_generate,
    "X25519PrivateKey.public_key": _x_public_key,
    "X25519PublicKey.public_bytes_raw": _x_public_bytes,
    "x25519.from_public_bytes": _x_from_bytes,
    "mlkem.generate_mlkem768_key": _m_generate,
    "MLKEM768PrivateKey.public_key": _m_public_key,
    "MLKEM768PublicKey.public_bytes_raw": _m_public_bytes,
    "mlkem.from_mlkem768_public_bytes": _m_from_bytes,
    "MLKEM768PublicKey.encapsulate": _m_encapsulate,
    "MLKEM768PrivateKey.decapsulate": _m_decapsulate,
    "X25519PrivateKey.exchange": _x_exchange,
    "ECPrivateKey.public_key": _private_public_key,
    "RSAPrivateKey.public_key": _private_public_key,
    "ECPrivateKey.sign": _sign,
    "RSAPrivateKey.sign": _sign,
    "_rust.x509.load_der_x509_certificate": _load_der,
    "Certificate.public_key": _cert_public_key,
    "Certificate.public_bytes": _cert_public_bytes,
    "PolicyBuilder.store": _policy_store,
    "PolicyBuilder.time": _policy_time,
    "PolicyBuilder.build_server_verifier": _policy_build,
    "ServerVerifier.verify": _chain_verify,
    "ECPublicKey.verify": _public_verify,
    "RSAPublicKey.verify": _public_verify,
    "_hashlib.hmac_digest": _hmac,
    "_hashlib.hmac_new": _hmac_new,
    "HMAC.digest": _hmac_obj_digest,
    "_hashlib.new": _hash_new,
    "_hashlib.openssl_sha256": _sha256_new,
    "_hashlib.openssl_sha384": _sha384_new,
    "HASH.update": _hash_update,
    "HASH.copy": _hash_copy,
    "HASH.digest": _hash_digest,
    "_hashlib.compare_digest": _compare_digest,
    "AESGCM()": _aesgcm_new,
    "AESGCM.encrypt_into": _aesgcm_encrypt_into,
    "AESGCM.encrypt": _aesgcm_encrypt,
    "AESGCM.decrypt": _aesgcm_decrypt,
}

#: what each call counts as, for README-style summaries
CATEGORIES = {
    "key exchange": ("x25519.", "X25519", "mlkem.", "MLKEM768"),
    "signature": ("PrivateKey.sign", "PublicKey.verify", "PrivateKey.public_key"),
    "certificate": ("_rust.x509.", "Certificate.", "PolicyBuilder.", "ServerVerifier."),
    "HMAC": ("_hashlib.hmac_digest", "_hashlib.hmac_new", "HMAC.digest"),
    "hash": ("_hashlib.new", "_hashlib.openssl_sha", "HASH.", "_hashlib.compare_digest"),
    "AEAD": ("AESGCM",),
}


def summary(calls: dict) -> dict[str, int]:
    """Calls per category (see :data:`CATEGORIES`); anything else under "other"."""
    out: dict[str, int] = {}
    for name, n in calls.items():
        cat = next((c for c, marks in CATEGORIES.items() if any(m in name for m in marks)), "other")
        out[cat] = out.get(cat, 0) + n
    return out


def floor_step(found: Census, inputs: FloorInputs) -> Callable[[], int]:
    """A function running the census' calls once (one handshake's worth); returns 1."""
    e = types.SimpleNamespace()
    e.key, e.server_name = inputs.key, inputs.server_name
    e.sig_params = _signature_params(inputs.scheme) if inputs.scheme else None
    e.leaf_der = inputs.chain_ders[0]
    e.leaf = x509.load_der_x509_certificate(e.leaf_der)
    e.intermediates = [x509.load_der_x509_certificate(d) for d in inputs.chain_ders[1:]]
    e.peer_key = e.leaf.public_key()
    e.store = Store([inputs.ca_cert])  # tlslab builds its store once per trust list, too
    e.now = datetime.datetime.now(datetime.timezone.utc)
    e.builder1 = PolicyBuilder().store(e.store)
    e.builder2 = e.builder1.time(e.now)
    e.verifier = e.builder2.build_server_verifier(x509.DNSName(e.server_name))
    e.xkey = x25519.X25519PrivateKey.generate()
    e.xpub = e.xkey.public_key()
    e.xpub_raw = e.xpub.public_bytes_raw()
    e.xpeer = e.xpub
    e.hmac_key, e.hmac_msg = os.urandom(HMAC_KEY_SIZE), os.urandom(DEFAULT_SIZE)
    e.hash = hashlib.sha256(os.urandom(DEFAULT_SIZE))
    e.digest_a, e.digest_b = os.urandom(32), os.urandom(32)
    e.aes_key, e.nonce, e.aad = os.urandom(16), os.urandom(12), os.urandom(5)
    e.aead = AESGCM(e.aes_key)
    e.signed, e.signature = b"", b""

    def sizes(name: str) -> list[int]:
        got = found.sizes.get(name, [])
        return (got + [DEFAULT_SIZE] * found.calls[name])[:found.calls[name]]

    plan: list[tuple[Callable, object]] = []
    for name, replay in _REPLAY.items():
        n = found.calls.get(name, 0)
        if not n:
            continue
        if name in ("ECPrivateKey.sign", "RSAPrivateKey.sign"):
            args = [os.urandom(s) for s in sizes(name)]
        elif name == "_rust.x509.load_der_x509_certificate":
            args = [inputs.chain_ders[i % len(inputs.chain_ders)] for i in range(n)]
        elif name == "_hashlib.new":
            names = (found.hash_names + ["sha256"] * n)[:n]
            args = [(h or "sha256", os.urandom(s)) for h, s in zip(names, sizes(name))]
        elif name in ("HASH.update", "AESGCM.encrypt", "_hashlib.openssl_sha256",
                      "_hashlib.openssl_sha384"):
            args = [os.urandom(s) for s in sizes(name)]
        elif name == "AESGCM.encrypt_into":
            args = [(os.urandom(s), bytearray(s + 16)) for s in sizes(name)]
        elif name == "AESGCM.decrypt":
            # a ciphertext of the size tlslab opened (tag included) that opens under e.aead
            args = [e.aead.encrypt(e.nonce, os.urandom(max(s - 16, 0)), e.aad) for s in sizes(name)]
        else:
            args = [None] * n
        plan += [(replay, a) for a in args]
    if any(r is _m_generate for r, _ in plan) and mlkem is None:  # pragma: no cover
        raise RuntimeError("the handshake used ML-KEM but this cryptography has no mlkem module")
    if any(r in (_sign, _public_verify) for r, _ in plan) and e.sig_params is None:
        raise RuntimeError("the handshake signed, but no signature scheme was given")

    def step() -> int:
        for replay, arg in plan:
            replay(e, arg)
        return 1

    step()  # fail now, not in the middle of a measurement
    return step
