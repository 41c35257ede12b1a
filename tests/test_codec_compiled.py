"""The generated readers and writers (proto/codegen.py) against the description interpreted.

Every structure is parsed and built two ways: by the code generated from its FIELDS
(``parse()``, ``build()``) and by the kinds' own ``read``/``write`` (``parse(record=True)``,
which records spans, and ``_write_described``).  Hypothesis makes the inputs: instances
of every described structure, valid or not (values out of range, of the wrong type,
missing), and arbitrary or damaged bytes.  Both ways must give the same objects, bytes
and exceptions (type and text).
"""
from __future__ import annotations

import enum

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tlslab.proto.heartbeat  # noqa: F401 - registers its structures
import tlslab.proto.record  # noqa: F401
import tlslab.proto.sslv2  # noqa: F401
import tlslab.proto.tls12.keyexchange  # noqa: F401
from codec_golden import dump
from tlslab.proto import extensions as X
from tlslab.proto.codec import Fixed, Opaque, Rest, Struct, StructKind, UInt, Vector
from tlslab.proto.extensions import Extension, ExtensionsKind
from tlslab.proto.messages import Message
from tlslab.proto.messages12 import parse_message12  # noqa: F401 - registers TLS 1.2 messages

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _all_structs() -> list[type[Struct]]:
    out, todo = [], [Struct]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in out:
                out.append(sub)
                todo.append(sub)
    return sorted((c for c in out if c.FIELDS or c.__module__ != "tlslab.proto.codec"),
                  key=lambda c: (c.__module__, c.__qualname__))


STRUCTS = [c for c in _all_structs() if c is not Message]
IDS = [f"{c.__module__.rsplit('.', 1)[-1]}.{c.__qualname__}" for c in STRUCTS]

# values a caller might wrongly put in a field: the writers must fail (or not) as the
# interpreter does
class _Color(enum.IntEnum):
    red = 1


WEIRD = [lambda: v for v in (None, -1, 0, 1, 255, 256, 65536, 2 ** 40, 1.5, "ab", "", b"", b"x" * 3,
                              True, _Color.red, [1, 2], (1, 2), [], [1.5], [-1], [b"x"], ["a"], [None],
                              [70000], [_Color.red, True])]
WEIRD += [lambda: bytearray(b"ab"), lambda: memoryview(b"abc"), lambda: (x for x in (1, 2)),
          lambda: iter([b"ab"])]


# --------------------------------------------------------------------------- strategies

def _value(kind, ctx, depth: int):
    """A strategy for a value of ``kind``: mostly well formed, sometimes not."""
    t = type(kind)
    if t is UInt:
        return st.integers(0, (1 << (8 * kind.size)) - 1)
    if t is Fixed:
        return st.binary(min_size=kind.size, max_size=kind.size)
    if t is Opaque:
        return st.binary(min_size=kind.min, max_size=min(kind.max, kind.min + 24))
    if t is Rest:
        return st.binary(max_size=24)
    if t is StructKind:
        return _instance(kind.cls, ctx, depth + 1)
    if isinstance(kind, ExtensionsKind):
        return st.lists(_extension(ctx, depth + 1), max_size=4 if depth < 2 else 0)
    if isinstance(kind, Vector):
        return st.lists(_value(kind.elem, ctx, depth + 1), max_size=4 if depth < 3 else 0)
    return st.nothing()


def _extension(ctx, depth: int):
    known = sorted({t for t, _ in X.BODIES})
    raw = st.builds(lambda t, d: Extension(t, data=d),
                    st.sampled_from(known + [0x0A0A, 0xFFFF, 1234]), st.binary(max_size=12))

    def with_value(t):
        cls = X.body_class(t, ctx)
        if cls is None:
            return raw
        return _instance(cls, ctx, depth).map(lambda v: Extension(t, v))
    return st.one_of(raw, st.sampled_from(known).flatmap(with_value))


def _instance(cls, ctx, depth: int = 0):
    ctx = getattr(cls, "CONTEXT", None) or ctx
    fields = {}
    for name, kind in cls.FIELDS:
        good = _value(kind, ctx, depth)
        if name in cls.OPTIONAL_TAIL:
            good = st.one_of(st.none(), good)
        fields[name] = good
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


def _weird_spec(cls):
    """Per field: ("good", value) or ("weird", factory); see _from_spec."""
    ctx = getattr(cls, "CONTEXT", None)
    return st.fixed_dictionaries({
        name: st.one_of(_value(kind, ctx, 0).map(lambda v: ("good", v)),
                        st.sampled_from(WEIRD).map(lambda f: ("weird", f)))
        for name, kind in cls.FIELDS})


def _from_spec(cls, spec):
    return cls(**{n: (v if tag == "good" else v()) for n, (tag, v) in spec.items()})


# --------------------------------------------------------------------------- both ways

def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - compared, not hidden
        return ("error", type(e).__name__, str(e))


def _described_build(obj: Struct) -> bytes:
    body = bytearray()
    obj._write_described(body)
    if isinstance(obj, Message):
        return bytes([obj.MSG_TYPE]) + len(body).to_bytes(3, "big") + bytes(body)
    return bytes(body)


def _parsed(cls, data: bytes, record: bool):
    obj = cls.parse(data, record=record)
    return dump(obj)


def _same_parse(cls, data: bytes) -> None:
    compiled = _outcome(lambda: _parsed(cls, data, False))
    interpreted = _outcome(lambda: _parsed(cls, data, True))
    assert compiled == interpreted, (cls.__name__, data.hex())


def _framed(cls, body: bytes) -> bytes:
    if issubclass(cls, Message) and 0 <= cls.MSG_TYPE < 256:
        return bytes([cls.MSG_TYPE]) + len(body).to_bytes(3, "big") + body
    return body


# --------------------------------------------------------------------------- tests

def test_every_structure_is_covered():
    names = {c.__name__ for c in STRUCTS}
    assert {"ClientHello", "ServerHello", "Certificate", "KeyShareCH", "OfferedPsks",
            "ServerKeyExchangeECDHE", "CertificateRequest12", "HeartbeatMessage"} <= names


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_build_and_parse_agree(cls, data):
    """Well-formed instances: same bytes both ways, and the bytes parse back the same
    both ways (or fail the same way, when a vector breaks its bounds)."""
    obj = data.draw(_instance(cls, None))
    built = _outcome(obj.build)
    assert built == _outcome(lambda: _described_build(obj))
    if built[0] == "ok":
        _same_parse(cls, built[1])


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_bad_values_fail_the_same_way(cls, data):
    """Fields holding what they should not (None, negative, too large, floats, text, wrong
    sizes, enums, generators): the generated writer's fast paths fall back to the
    interpreter's steps, so the result or the exception is the same."""
    spec = data.draw(_weird_spec(cls))
    # each way gets its own instance: a generator is used up by the first
    obj, again = _from_spec(cls, spec), _from_spec(cls, spec)
    assert _outcome(obj.build) == _outcome(lambda: _described_build(again))


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
@SETTINGS
@given(body=st.binary(max_size=80))
def test_arbitrary_bytes(cls, body):
    _same_parse(cls, _framed(cls, body))


@pytest.mark.parametrize("cls", STRUCTS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_damaged_bytes(cls, data):
    """A well-formed encoding with a few bytes changed, cut or added: lengths that lie
    are where the two ways could part."""
    obj = data.draw(_instance(cls, None))
    try:
        raw = bytearray(obj.build())
    except Exception:  # noqa: BLE001 - a vector out of bounds: nothing to damage
        return
    start = 4 if isinstance(obj, Message) else 0
    for _ in range(data.draw(st.integers(1, 3))):
        if len(raw) <= start:
            break
        i = data.draw(st.integers(start, len(raw) - 1))
        op = data.draw(st.sampled_from(["set", "cut", "insert", "bump"]))
        if op == "set":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=3))
        else:
            raw[i] = (raw[i] + 1) & 0xFF
    body = bytes(raw[start:])
    _same_parse(cls, _framed(cls, body) if start else body)


def test_generated_source_is_kept_for_reading():
    """What codegen made can be read (e.g. when a profile shows <codec ClientHello.read>)."""
    from tlslab.proto.messages import ClientHello
    ClientHello.parse(ClientHello(legacy_version=0x0303, random=bytes(32), legacy_session_id=b"",
                                  cipher_suites=[0x1301], legacy_compression_methods=b"\x00",
                                  extensions=[]).build())
    src = ClientHello._cread.__source__
    assert src.startswith("def read(data, pos, end, ctx):") and "cipher_suites" in src
