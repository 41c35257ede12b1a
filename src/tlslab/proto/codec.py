"""A small declarative codec for TLS presentation-language structures (RFC 8446 §3).

Each structure is described once, as a tuple of ``(field name, kind)`` pairs, and
that one description is used both to parse and to build.  Parsing checks every
length against the bytes actually present and against the limits the RFC gives
for that vector, and raises :class:`~tlslab.proto.errors.DecodeError` (alert
``decode_error``) on any violation: never an ``IndexError`` or a hang.

Parsing keeps the original bytes (``raw``) and, on request, the offset and length
of every field (:attr:`Struct.spans`).  Spans are produced by running the same
description again with recording switched on, so the trace never depends on a
second parser and the handshake hot path does not pay for them.
"""
from __future__ import annotations

import enum
from typing import Any, ClassVar

from .errors import DecodeError
from .trace import FieldSpan


class Reader:
    """Bounds-checked cursor over ``data`` (positions are absolute in ``data``)."""

    __slots__ = ("data", "pos", "end", "spans", "ctx", "_children")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None,
                 record: bool = False, ctx: Any = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.spans: list[FieldSpan] | None = [] if record else None
        self.ctx = ctx
        self._children = None

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str = "field") -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError(f"truncated {what}: need {n} bytes, {self.end - self.pos} left")
        start = self.pos
        self.pos += n
        return self.data[start:self.pos]

    def uint(self, n: int, what: str = "field") -> int:
        if self.pos + n > self.end:
            raise DecodeError(f"truncated {what}: need {n} bytes, {self.end - self.pos} left")
        start = self.pos
        self.pos += n
        return int.from_bytes(self.data[start:self.pos], "big")

    def sub(self, length: int, what: str) -> "Reader":
        """A reader limited to the next ``length`` bytes; advances this one past them."""
        if self.pos + length > self.end:
            raise DecodeError(f"{what} length {length} exceeds the {self.end - self.pos} bytes left")
        r = Reader.__new__(Reader)
        r.data = self.data
        r.pos = self.pos
        r.end = self.pos + length
        r.spans = [] if self.spans is not None else None
        r.ctx = self.ctx
        r._children = None
        self.pos += length
        return r


class Kind:
    """How one field is encoded. Subclasses implement read/write."""

    #: True when read() records its own span (structures), so a Vector must not add one
    self_spans = False

    def read(self, r: Reader, what: str) -> Any:  # pragma: no cover - interface
        raise TypeError

    def write(self, value: Any, out: bytearray) -> None:  # pragma: no cover - interface
        raise TypeError

    def display(self, value: Any) -> Any:
        return value


class UInt(Kind):
    """An unsigned big-endian integer of ``size`` bytes; ``names`` names known values."""

    def __init__(self, size: int, names: type[enum.IntEnum] | None = None) -> None:
        self.size = size
        self.names = names

    def read(self, r: Reader, what: str) -> int:
        return r.uint(self.size, what)

    def write(self, value: int, out: bytearray) -> None:
        out += int(value).to_bytes(self.size, "big")

    def display(self, value: int) -> Any:
        if self.names is not None:
            from .names import name_of
            return name_of(self.names, value)
        return value


class Fixed(Kind):
    """Exactly ``size`` opaque bytes (e.g. ``Random``)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, r: Reader, what: str) -> bytes:
        return r.take(self.size, what)

    def write(self, value: bytes, out: bytearray) -> None:
        if len(value) != self.size:
            raise ValueError(f"fixed field must be {self.size} bytes, got {len(value)}")
        out += value

    def display(self, value: bytes) -> str:
        return value.hex()


class Opaque(Kind):
    """``opaque x<min..max>``: a length prefix of ``prefix`` bytes, then the bytes."""

    def __init__(self, prefix: int, min: int = 0, max: int | None = None) -> None:
        self.prefix = prefix
        self.min = min
        self.max = (1 << (8 * prefix)) - 1 if max is None else max

    def read(self, r: Reader, what: str) -> bytes:
        n = r.uint(self.prefix, f"{what} length")
        if n < self.min or n > self.max:
            raise DecodeError(f"{what} length {n} outside {self.min}..{self.max}")
        return r.take(n, what)

    def write(self, value: bytes, out: bytearray) -> None:
        out += len(value).to_bytes(self.prefix, "big")
        out += value

    def display(self, value: bytes) -> str:
        return value.hex()


class Rest(Kind):
    """All remaining bytes of the enclosing structure (e.g. ``verify_data``, padding)."""

    def read(self, r: Reader, what: str) -> bytes:
        return r.take(r.remaining(), what)

    def write(self, value: bytes, out: bytearray) -> None:
        out += value

    def display(self, value: bytes) -> str:
        return value.hex()


class Vector(Kind):
    """``T x<min..max>``: a byte-length prefix, then elements of ``elem`` until it is used up."""

    def __init__(self, prefix: int, elem: Kind, min: int = 0, max: int | None = None) -> None:
        self.prefix = prefix
        self.elem = elem
        self.min = min
        self.max = (1 << (8 * prefix)) - 1 if max is None else max

    def read(self, r: Reader, what: str) -> list:
        n = r.uint(self.prefix, f"{what} length")
        if n < self.min or n > self.max:
            raise DecodeError(f"{what} length {n} outside {self.min}..{self.max}")
        sub = r.sub(n, what)
        items = []
        elem = self.elem
        if isinstance(elem, UInt):
            if n % elem.size:
                raise DecodeError(f"{what} length {n} is not a multiple of {elem.size}")
            size = elem.size
            data = sub.data
            start = sub.pos
            if sub.spans is not None:
                for i in range(0, n, size):
                    v = int.from_bytes(data[start + i:start + i + size], "big")
                    items.append(v)
                    sub.spans.append(FieldSpan(f"{what}[{i // size}]", start + i, size, elem.display(v)))
            else:
                items = [int.from_bytes(data[start + i:start + i + size], "big") for i in range(0, n, size)]
            sub.pos = sub.end
        else:
            i = 0
            while sub.pos < sub.end:
                start = sub.pos
                v = elem.read(sub, f"{what}[{i}]")
                if sub.spans is not None and not elem.self_spans:
                    sub.spans.append(FieldSpan(f"{what}[{i}]", start, sub.pos - start, elem.display(v)))
                items.append(v)
                i += 1
        if r.spans is not None:
            r._children = sub.spans  # picked up by Struct.read for this field
        return items

    def write(self, value: list, out: bytearray) -> None:
        body = bytearray()
        for v in value:
            self.elem.write(v, body)
        out += len(body).to_bytes(self.prefix, "big")
        out += body

    def display(self, value: list) -> Any:
        return [self.elem.display(v) for v in value]


class StructKind(Kind):
    """A nested structure, written inline (no length prefix of its own)."""

    self_spans = True

    def __init__(self, cls: type["Struct"]) -> None:
        self.cls = cls

    def read(self, r: Reader, what: str) -> "Struct":
        start = r.pos
        obj = self.cls._read_fields(r)
        obj.raw = r.data[start:r.pos]
        if r.spans is not None:
            r.spans.append(FieldSpan(what, start, r.pos - start, self.cls.__name__, obj._spans))
            obj._spans = None
        return obj

    def write(self, value: "Struct", out: bytearray) -> None:
        value._write(out)

    def display(self, value: "Struct") -> Any:
        return value.summary()


class Struct:
    """Base class of every described structure.

    Subclasses set ``FIELDS = (("name", Kind), ...)``.  Instances are created with
    keyword arguments (missing fields default to ``None``), parsed with
    :meth:`parse`, and serialised with :meth:`build`.  ``raw`` holds the exact bytes a
    parsed instance came from.
    """

    FIELDS: ClassVar[tuple] = ()
    #: names of fields that may be absent at the end of the structure (TLS 1.2 extensions)
    OPTIONAL_TAIL: ClassVar[tuple] = ()
    #: computed per class: no optional tail and no _after_field hook (see __init_subclass__)
    _PLAIN: ClassVar[bool] = True

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        cls._PLAIN = not cls.OPTIONAL_TAIL and cls._after_field is Struct._after_field
        cls._fast_read, cls._fast_write = _compile(cls)

    def __init__(self, **values: Any) -> None:
        d = self.__dict__
        for name, _ in self.FIELDS:
            d[name] = values.pop(name, None)
        if values:
            d.update(values)
        d["raw"] = None
        d["_spans"] = None

    # -- parsing -----------------------------------------------------------------
    @classmethod
    def _read_fields(cls, r: Reader) -> "Struct":
        if r.spans is None and cls._PLAIN:
            # hot path (no span recording, no optional tail, no context hook): the reader
            # compiled from FIELDS for this class (see _compile)
            return cls._fast_read(cls, r)
        obj = cls.__new__(cls)
        obj.raw = None
        obj._spans = None
        record = r.spans is not None
        spans = [] if record else None
        for name, kind in cls.FIELDS:
            if name in cls.OPTIONAL_TAIL and r.pos == r.end:
                setattr(obj, name, None)
                continue
            start = r.pos
            if record:
                r._children = None
                saved = r.spans
                r.spans = []
            value = kind.read(r, name)
            if record:
                nested = r.spans
                r.spans = saved
                children = r._children or nested
                if kind.self_spans and len(children) == 1 and children[0].name == name:
                    children = children[0].children
                spans.append(FieldSpan(name, start, r.pos - start, kind.display(value), children or []))
            setattr(obj, name, value)
            obj._after_field(name, r)
        obj._spans = spans
        return obj

    def _after_field(self, name: str, r: Reader) -> None:
        """Hook: lets a structure set parsing context from an earlier field."""

    @classmethod
    def parse(cls, data: bytes, ctx: Any = None, record: bool = False) -> "Struct":
        """Parse exactly ``data`` (trailing bytes are a ``decode_error``)."""
        r = Reader(data, record=record, ctx=ctx)
        obj = cls._read_fields(r)
        if r.pos != r.end:
            raise DecodeError(f"{r.end - r.pos} unexpected trailing bytes after {cls.__name__}")
        obj.raw = bytes(data)
        obj._ctx = ctx
        return obj

    @property
    def spans(self) -> list[FieldSpan]:
        """Offset/length of every field in ``raw`` (recomputed on demand from the same description)."""
        if self._spans is None:
            data = self.raw if self.raw is not None else self.build()
            again = type(self).parse(data, ctx=getattr(self, "_ctx", None), record=True)
            self._spans = again._spans
        return self._spans

    # -- building ----------------------------------------------------------------
    def _write(self, out: bytearray) -> None:
        if self._PLAIN:
            self._fast_write(out)
            return
        d = self.__dict__
        for name, kind in self.FIELDS:
            value = d.get(name)
            if value is None:
                if name in self.OPTIONAL_TAIL:
                    continue
                raise ValueError(f"{type(self).__name__}.{name} is not set")
            kind.write(value, out)

    def build(self) -> bytes:
        out = bytearray()
        self._write(out)
        return bytes(out)

    # -- display -----------------------------------------------------------------
    def summary(self) -> dict:
        return {name: kind.display(getattr(self, name)) for name, kind in self.FIELDS
                if getattr(self, name, None) is not None}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n, None)!r}" for n, _ in self.FIELDS)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n, _ in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]


def _compile(cls: type[Struct]):
    """Generate a reader and a writer specialised to ``cls.FIELDS`` (same checks, same
    errors as the Kind objects, without a method call per integer or opaque field).

    This is how the one declarative description stays the only description while
    parsing and building run at the speed of hand-written code on the handshake path.
    """
    read = ["def _read(cls, r):",
            "    data = r.data; pos = r.pos; end = r.end",
            "    obj = cls.__new__(cls); d = obj.__dict__; d['raw'] = None; d['_spans'] = None"]
    write = ["def _write(self, out):", "    d = self.__dict__"]
    env = {"DecodeError": DecodeError}
    for i, (name, kind) in enumerate(cls.FIELDS):
        k = f"k{i}"
        env[k] = kind
        t = type(kind)
        write.append(f"    v = d.get({name!r})")
        write.append(f"    if v is None: raise ValueError('{cls.__name__}.{name} is not set')")
        if t is UInt:
            n = kind.size
            read += [f"    if pos + {n} > end: raise DecodeError(f'truncated {name}: need {n} bytes, {{end - pos}} left')",
                     f"    d[{name!r}] = int.from_bytes(data[pos:pos + {n}], 'big'); pos += {n}"]
            write.append(f"    out += int(v).to_bytes({n}, 'big')")
        elif t is Fixed:
            n = kind.size
            read += [f"    if pos + {n} > end: raise DecodeError(f'truncated {name}: need {n} bytes, {{end - pos}} left')",
                     f"    d[{name!r}] = data[pos:pos + {n}]; pos += {n}"]
            write.append(f"    {k}.write(v, out)")
        elif t is Opaque:
            p, lo, hi = kind.prefix, kind.min, kind.max
            read += [f"    if pos + {p} > end: raise DecodeError(f'truncated {name} length: need {p} bytes, {{end - pos}} left')",
                     f"    n = int.from_bytes(data[pos:pos + {p}], 'big'); pos += {p}",
                     f"    if n < {lo} or n > {hi}: raise DecodeError(f'{name} length {{n}} outside {lo}..{hi}')",
                     f"    if pos + n > end: raise DecodeError(f'truncated {name}: need {{n}} bytes, {{end - pos}} left')",
                     f"    d[{name!r}] = data[pos:pos + n]; pos += n"]
            write.append(f"    out += len(v).to_bytes({p}, 'big'); out += v")
        elif t is Rest:
            read += [f"    d[{name!r}] = data[pos:end]; pos = end"]
            write.append("    out += v")
        else:
            read += ["    r.pos = pos", f"    d[{name!r}] = {k}.read(r, {name!r})", "    pos = r.pos"]
            write.append(f"    {k}.write(v, out)")
    read += ["    r.pos = pos", "    return obj"]
    if len(write) == 2:
        write.append("    pass")
    ns: dict = {}
    exec(compile("\n".join(read) + "\n\n" + "\n".join(write) + "\n", f"<codec {cls.__name__}>", "exec"),
         env, ns)
    return ns["_read"], ns["_write"]
