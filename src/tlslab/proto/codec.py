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

Two ways of running a description: each kind's ``read``/``write`` interpret it (used
when spans are recorded, and the reference the tests hold the other to), and its
``emit_read``/``emit_write`` turn it into the source of one reader and one writer per
structure (:mod:`.codegen`), generated on first use and used otherwise.
"""
from __future__ import annotations

import enum
from typing import Any, ClassVar

from . import codegen
from .codegen import Code, uint_expr
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


def _reader_at(data: Any, pos: int, end: int, ctx: Any) -> Reader:
    """A Reader without span recording, for generated code calling a kind's ``read``."""
    return Reader(data, pos, end, ctx=ctx)


_STRUCT_FORMAT = {1: "B", 2: "H", 4: "I"}


def _full(prefix: int) -> int:
    return (1 << (8 * prefix)) - 1


def _emit_prefix(code: Code, prefix: int, lo: int, hi: int, what: str, end: str) -> str:
    """A length prefix, read and checked against ``lo..hi`` (RFC 8446 §3 ``<floor..ceiling>``)."""
    code.check(prefix, f"{what} length", end)
    n = code.var("n")
    code(f"{n} = {uint_expr(prefix)}")
    code(f"pos += {prefix}")
    if lo > 0 or hi < _full(prefix):
        code(f'if {n} < {lo} or {n} > {hi}: raise DecodeError(f"{what} length {{{n}}} outside {lo}..{hi}")')
    return n


class Kind:
    """How one field is encoded. Subclasses implement read/write, and emit_read/emit_write
    to be compiled into a structure's reader and writer (see :mod:`.codegen` for the
    contract); a kind without them is called through read/write from the generated code."""

    #: True when read() records its own span (structures), so a Vector must not add one
    self_spans = False

    def read(self, r: Reader, what: str) -> Any:  # pragma: no cover - interface
        raise TypeError

    def write(self, value: Any, out: bytearray) -> None:  # pragma: no cover - interface
        raise TypeError

    def display(self, value: Any) -> Any:
        return value

    def emit_read(self, code: Code, what: str, end: str) -> str:
        k = code.const(self, "kind")
        r, v = code.var("r"), code.var("v")
        code(f"{r} = {code.const(_reader_at, 'reader_at')}(data, pos, {end}, ctx)")
        code(f'{v} = {k}.read({r}, f"{what}")')
        code(f"pos = {r}.pos")
        return v

    def emit_write(self, code: Code, value: str) -> None:
        code(f"{code.const(self, 'kind')}.write({value}, out)")

    def flat(self, code: Code, value: str) -> tuple[list[str], list[tuple[str, str]]] | None:
        """For the writers' fast path (codegen.compile_writers): ``(conditions, parts)``,
        the conditions under which the local ``value`` is encoded by ``parts``, each ``("int", struct format char,
        expression)``, ``("bytes", expression giving bytes)`` or ``("raw", expression
        giving what the caller set, to be checked as bytes-like)``; None for a kind that
        has no such form."""
        return None


class UInt(Kind):
    """An unsigned big-endian integer of ``size`` bytes; ``names`` names known values."""

    def __init__(self, size: int, names: type[enum.IntEnum] | None = None) -> None:
        self.size = size
        self.names = names

    def read(self, r: Reader, what: str) -> int:
        return r.uint(self.size, what)

    def write(self, value: int, out: bytearray) -> None:
        out += int(value).to_bytes(self.size, "big")

    def emit_read(self, code: Code, what: str, end: str) -> str:
        code.check(self.size, what, end)
        v = code.var("v")
        code(f"{v} = {uint_expr(self.size)}")
        code(f"pos += {self.size}")
        return v

    def emit_write(self, code: Code, value: str) -> None:
        code(f"out += int({value}).to_bytes({self.size}, 'big')")

    def flat(self, code: Code, value: str):
        if self.size in _STRUCT_FORMAT:
            return [], [("int", _STRUCT_FORMAT[self.size], value)]
        return [], [("bytes", f"int({value}).to_bytes({self.size}, 'big')")]

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

    def emit_read(self, code: Code, what: str, end: str) -> str:
        code.check(self.size, what, end)
        v = code.var("v")
        code(f"{v} = data[pos:pos + {self.size}]")
        code(f"pos += {self.size}")
        return v

    def emit_write(self, code: Code, value: str) -> None:
        code(f"if len({value}) != {self.size}: raise ValueError("
             f"f'fixed field must be {self.size} bytes, got {{len({value})}}')")
        code(f"out += {value}")

    def flat(self, code: Code, value: str):
        return [f"len({value}) == {self.size}"], [("raw", value)]

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

    def emit_read(self, code: Code, what: str, end: str) -> str:
        n = _emit_prefix(code, self.prefix, self.min, self.max, what, end)
        code.check(n, what, end)
        v = code.var("v")
        code(f"{v} = data[pos:pos + {n}]")
        code(f"pos += {n}")
        return v

    def emit_write(self, code: Code, value: str) -> None:
        code(f"out += len({value}).to_bytes({self.prefix}, 'big')")
        code(f"out += {value}")

    def flat(self, code: Code, value: str):
        if self.prefix in _STRUCT_FORMAT:
            return [], [("int", _STRUCT_FORMAT[self.prefix], f"len({value})"), ("raw", value)]
        return [], [("bytes", f"len({value}).to_bytes({self.prefix}, 'big')"), ("raw", value)]

    def display(self, value: bytes) -> str:
        return value.hex()


class Rest(Kind):
    """All remaining bytes of the enclosing structure (e.g. ``verify_data``, padding)."""

    def read(self, r: Reader, what: str) -> bytes:
        return r.take(r.remaining(), what)

    def write(self, value: bytes, out: bytearray) -> None:
        out += value

    def emit_read(self, code: Code, what: str, end: str) -> str:
        v = code.var("v")
        code(f"{v} = data[pos:{end}]")
        code(f"pos = {end}")
        return v

    def emit_write(self, code: Code, value: str) -> None:
        code(f"out += {value}")

    def flat(self, code: Code, value: str):
        return [], [("raw", value)]

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

    def emit_read(self, code: Code, what: str, end: str) -> str:
        n = _emit_prefix(code, self.prefix, self.min, self.max, what, end)
        code(f'if pos + {n} > {end}: raise DecodeError('
             f'f"{what} length {{{n}}} exceeds the {{{end} - pos}} bytes left")')
        elem = self.elem
        if isinstance(elem, UInt):
            size = elem.size
            if size > 1:
                code(f'if {n} % {size}: raise DecodeError(f"{what} length {{{n}}} is not a multiple of {size}")')
            v = code.var("v")
            if size == 1:
                code(f"{v} = list(data[pos:pos + {n}])")
            elif size in (2, 4):
                unpack = code.const(codegen.unpackers(size), "unpack")
                code(f"{v} = list({unpack}[{n} // {size}](data, pos))")
            else:
                code(f"{v} = [int.from_bytes(data[i:i + {size}], 'big') for i in range(pos, pos + {n}, {size})]")
            code(f"pos += {n}")
            return v
        stop, items = code.var("stop"), code.var("items")
        code(f"{stop} = pos + {n}")
        code(f"{items} = []")
        with code.block(f"while pos < {stop}:"):
            x = elem.emit_read(code, f"{what}[{{len({items})}}]", stop)
            code(f"{items}.append({x})")
        return items

    def emit_write(self, code: Code, value: str) -> None:
        p, elem = self.prefix, self.elem
        if type(elem) is UInt and elem.size in (1, 2, 4) and p in (1, 2):
            # the common lists of suites, groups and schemes, length included, in one
            # struct call; anything else (a value out of range or not an int, a length
            # that does not fit) goes the long way and fails as it always did
            pk, b = code.const(codegen.packers(p, elem.size), "pack"), code.var("b")
            with code.block("try:"):  # iterates the value as the loop below would
                n = code.var("n")
                code(f"{b} = {pk}[({n} := len({value}))]({n} * {elem.size}, *{value})")
            with code.block("except (struct_error, TypeError):"):
                code(f"{b} = None")
            with code.block(f"if {b} is not None:"):
                code(f"out += {b}")
            with code.block("else:"):
                self._emit_write_each(code, value)
        else:
            self._emit_write_each(code, value)

    def flat(self, code: Code, value: str):
        elem = self.elem
        if type(elem) is UInt and elem.size in _STRUCT_FORMAT and self.prefix in (1, 2):
            pk = code.const(codegen.packers(self.prefix, elem.size), "pack")
            n = code.var("n")
            return [], [("bytes", f"{pk}[({n} := len({value}))]({n} * {elem.size}, *{value})")]
        return None

    def _emit_write_each(self, code: Code, value: str) -> None:
        p = self.prefix
        at, x = code.var("at"), code.var("x")
        code(f"{at} = len(out)")
        code(f"out += {bytes(p)!r}")  # the length, filled in once the elements are written
        with code.block(f"for {x} in {value}:"):
            self.elem.emit_write(code, x)
        code(f"out[{at}:{at} + {p}] = (len(out) - {at} - {p}).to_bytes({p}, 'big')")

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

    #: structures nested deeper than this are called, not inlined
    MAX_INLINE = 2

    def emit_read(self, code: Code, what: str, end: str) -> str:
        """Inline (saving a call per element of a vector), unless the structure has a
        hook or is nested deep: then through its own generated reader."""
        cls = self.cls
        start, v = code.var("start"), code.var("v")
        code(f"{start} = pos")
        if _hooked(cls) or code.inlined >= self.MAX_INLINE:
            code(f"{v}, pos = {code.const(reader_of(cls), 'read')}(data, pos, {end}, ctx)")
        else:
            code.inlined += 1
            codegen.emit_struct_read(code, cls, v, end)
            code.inlined -= 1
        code(f"{v}.raw = data[{start}:pos]")
        return v

    def emit_write(self, code: Code, value: str) -> None:
        """Inline for a value of exactly this class (whose writer it is); anything else
        writes itself, as ``write`` lets it."""
        cls = self.cls
        own = cls.__dict__.get("_write")
        if code.inlined >= self.MAX_INLINE or not (own is None or own is _compile_and_write
                                                    or hasattr(own, "__source__")):
            code(f"{value}._write(out)")
            return
        with code.block(f"if type({value}) is {code.const(cls, 'cls')}:"):
            code.inlined += 1
            codegen.emit_struct_write(code, cls, value)
            code.inlined -= 1
        with code.block("else:"):
            code(f"{value}._write(out)")

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
    #: the fields after which :meth:`_after_field` does something (None: every field); the
    #: generated reader calls the hook after these only
    HOOKED_FIELDS: ClassVar[tuple | None] = None

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        # reader and writer are generated from FIELDS on first use (codegen); a subclass
        # starts from the stubs again, as what its parent compiled is for other fields
        if "__init__" not in cls.__dict__:
            cls.__init__ = _compile_and_init
        if "_cread" not in cls.__dict__:
            cls._cread = classmethod(_compile_and_read)
        if "_write" not in cls.__dict__:
            cls._write = _compile_and_write
        if "_encode" not in cls.__dict__:
            cls._encode = _compile_and_encode
        # what build() gives, as an extension body needs it: the generated encoder unless
        # build() is the class's own (a Message adds its header)
        cls._body = cls._encode if cls.build is Struct.build else cls.build

    def __init__(self, **values: Any) -> None:
        d = self.__dict__
        for name, _ in self.FIELDS:
            d[name] = values.pop(name, None)
        if values:
            d.update(values)
        d["raw"] = None
        d["_spans"] = None

    # -- parsing -----------------------------------------------------------------
    #: ``_cread(data, pos, end, ctx) -> (obj, pos)``: the generated reader (codegen)
    _cread: ClassVar[Any]

    @classmethod
    def _read_fields(cls, r: Reader) -> "Struct":
        if r.spans is None:
            obj, r.pos = cls._cread(r.data, r.pos, r.end, r.ctx)
            return obj
        # recording spans: the description interpreted, field by field
        obj = cls.__new__(cls)
        obj.raw = None
        obj._spans = None
        spans = []
        for name, kind in cls.FIELDS:
            if name in cls.OPTIONAL_TAIL and r.pos == r.end:
                setattr(obj, name, None)
                continue
            start = r.pos
            r._children = None
            saved = r.spans
            r.spans = []
            value = kind.read(r, name)
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
        if record:
            r = Reader(data, record=True, ctx=ctx)
            obj = cls._read_fields(r)
            pos, end = r.pos, r.end
        else:
            end = len(data)
            obj, pos = cls._cread(data, 0, end, ctx)
        if pos != end:
            raise DecodeError(f"{end - pos} unexpected trailing bytes after {cls.__name__}")
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
    def _write(self, out: bytearray) -> None:  # replaced per class by the generated writer
        _compile_and_write(self, out)

    def _encode(self) -> bytearray:  # replaced per class by the generated encoder
        return _compile_and_encode(self)

    def _write_described(self, out: bytearray) -> None:
        """The fields appended to ``out`` by interpreting the description (the reference
        the generated writer is tested against; nested structures write themselves)."""
        d = self.__dict__
        for name, kind in self.FIELDS:
            value = d.get(name)
            if value is None:
                if name in self.OPTIONAL_TAIL:
                    continue
                raise ValueError(f"{type(self).__name__}.{name} is not set")
            kind.write(value, out)

    def build(self) -> bytes:
        return bytes(self._encode())

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


_compiling: set = set()


def _hooked(cls: type[Struct]) -> bool:
    return cls._after_field is not Struct._after_field


def reader_of(cls: type[Struct]):
    """The generated reader of ``cls``, generated now if it is not yet (a structure
    that contains itself gets a call through the class while it is being generated)."""
    fn = cls.__dict__.get("_cread")
    if isinstance(fn, staticmethod):
        return fn.__func__
    if cls in _compiling:
        return lambda data, pos, end, ctx: cls._cread(data, pos, end, ctx)
    _compiling.add(cls)
    try:
        fn = codegen.compile_reader(cls, _hooked(cls), _hook_reader)
    finally:
        _compiling.discard(cls)
    cls._cread = staticmethod(fn)
    return fn


def _compile_and_read(cls: type[Struct], data: Any, pos: int, end: int, ctx: Any) -> tuple:
    """First parse of ``cls``: generate its reader, keep it on the class, use it."""
    return reader_of(cls)(data, pos, end, ctx)


def _compile_and_init(self: Struct, **values: Any) -> None:
    """First construction of a class: generate its __init__ (see codegen.compile_init)."""
    cls = type(self)
    if cls.__dict__.get("__init__") is not _compile_and_init:  # a subclass with its own
        Struct.__init__(self, **values)
        return
    cls.__init__ = codegen.compile_init(cls, Struct.__init__)
    cls.__init__(self, **values)


def _install_writers(cls: type[Struct]) -> None:
    cls._write, cls._encode = codegen.compile_writers(cls)
    if cls.build is Struct.build:
        cls._body = cls._encode


def _compile_and_write(self: Struct, out: bytearray) -> None:
    """First build of this class: generate its writers, keep them on the class, use one."""
    _install_writers(type(self))
    type(self)._write(self, out)


def _compile_and_encode(self: Struct) -> bytearray:
    _install_writers(type(self))
    return type(self)._encode(self)


def _hook_reader(data: Any, end: int) -> Reader:
    r = Reader.__new__(Reader)
    r.data, r.pos, r.end, r.spans, r.ctx, r._children = data, 0, end, None, None, None
    return r


Struct._cread = classmethod(_compile_and_read)
Struct._body = Struct._encode
