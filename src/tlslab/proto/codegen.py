"""Parse and build functions generated from a structure's description (RFC 8446 §3).

Each :class:`~tlslab.proto.codec.Struct` is described once, by its ``FIELDS``.  The
first time a structure is parsed or built without field spans, the description is
turned into Python source for one reader and one writer, much as ``dataclasses``
writes ``__init__``: every field kind emits its own lines (bounds check, value, new
position), so a ClientHello is read by a single function with a loop per vector,
where interpreting the description costs a method call, a bound check and a slice
object per integer.

The generated code gives exactly what interpreting the description gives (the kinds'
``read``/``write`` methods, still used when spans are recorded): the same values and
types, the same ``DecodeError`` text for the same damage, checked in the same order.
Every loop advances by at least the bytes it checks, so work stays bounded by the input.

Contract for a kind's ``emit_read(code, what, end)``: locals ``data``, ``pos`` and
``ctx`` hold the input, the cursor and the parsing context, and the local named by
``end`` the bound of the enclosing structure; ``what`` is the field's name as text
to put inside an f-string (it may hold ``{...}`` for an element index).  It emits
lines that check, read, advance ``pos``, and returns the name of a local holding the
value.  ``emit_write(code, value)`` emits lines appending the encoding of the local
named ``value`` to the bytearray ``out``.
"""
from __future__ import annotations

import keyword

import struct
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .errors import DecodeError

_FORMAT = {1: "B", 2: "H", 4: "I"}
#: vectors of up to this many integers are read and written with a struct.Struct made
#: once per count and kind of vector (at most 8 kinds: bounded); longer ones with one
#: made for the call
MAX_CACHED_COUNT = 256


class _Structs(dict):
    """count -> struct.Struct(format % count).<method>, made on first use."""

    def __init__(self, fmt: str, method: str) -> None:
        super().__init__()
        self.fmt, self.method = fmt, method

    def __missing__(self, count: int) -> Callable:
        fn = getattr(struct.Struct(self.fmt % count), self.method)
        if count <= MAX_CACHED_COUNT:
            self[count] = fn
        return fn


_unpackers = {size: _Structs(f">%d{_FORMAT[size]}", "unpack_from") for size in (2, 4)}
_packers: dict[tuple[int, int], _Structs] = {}


def unpackers(size: int) -> _Structs:
    """count -> unpack_from(data, pos): ``count`` big-endian unsigned integers of
    ``size`` (2 or 4) bytes in one call."""
    return _unpackers[size]


def packers(prefix: int, size: int) -> _Structs:
    """count -> pack(length, *values): a vector of ``size``-byte integers with its
    ``prefix``-byte length (1 or 2) in one call."""
    key = (prefix, size)
    if key not in _packers:
        _packers[key] = _Structs(f">{_FORMAT[prefix]}%d{_FORMAT[size]}", "pack")
    return _packers[key]


def uint_expr(n: int, at: str = "pos") -> str:
    """An expression reading an ``n``-byte big-endian integer from ``data`` at ``at``
    (indexing is faster than int.from_bytes of a slice for up to 3 bytes)."""
    if n == 1:
        return f"data[{at}]"
    if n == 2:
        return f"(data[{at}] << 8 | data[{at} + 1])"
    if n == 3:
        return f"(data[{at}] << 16 | data[{at} + 1] << 8 | data[{at} + 2])"
    if n == 4:
        return f"_u32(data, {at})[0]"
    return f"int.from_bytes(data[{at}:{at} + {n}], 'big')"


class Code:
    """Source of one generated function, with the objects it refers to (``env``)."""

    def __init__(self, header: str) -> None:
        self.lines = [header]
        self.env: dict[str, Any] = {"DecodeError": DecodeError, "_u32": struct.Struct(">I").unpack_from,
                                    "struct_error": struct.error}
        self.depth = 1
        self._n = 0
        #: how many structures deep the code being emitted is inlined
        self.inlined = 0

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def use(self, **names: Any) -> None:
        """Make ``names`` visible to the generated code under those names."""
        self.env.update(names)

    def var(self, hint: str) -> str:
        """A fresh local name."""
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "k") -> str:
        """A name under which the generated code sees ``value``."""
        for k, v in self.env.items():
            if v is value:
                return k
        name = self.var(hint)
        self.env[name] = value
        return name

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def check(self, n: Any, what: str, end: str) -> None:
        """``Reader.uint``/``Reader.take``'s bound check for ``n`` bytes at ``pos``."""
        self(f"if pos + {n} > {end}: raise DecodeError("
             f"f\"truncated {what}: need {{{n}}} bytes, {{{end} - pos}} left\")")

    def function(self, name: str) -> Callable:
        ns: dict = {}
        exec(compile("\n".join(self.lines) + "\n", f"<codec {name}>", "exec"), self.env, ns)
        fn = next(iter(ns.values()))
        fn.__qualname__ = name
        fn.__source__ = "\n".join(self.lines)  # for reading what was generated
        return fn


def _store(cls: type, obj: str, name: str, value: str) -> str:
    """``obj.name = value``, or through ``__dict__`` where the class has an attribute of
    that name (a property would otherwise intercept the store)."""
    if hasattr(cls, name):
        return f"{obj}.__dict__[{name!r}] = {value}"
    return f"{obj}.{name} = {value}"


def _load(code: "Code", cls: type, obj: str, target: str, name: str) -> None:
    """``target = obj.__dict__.get(name)``, as an attribute load where that is the same
    thing (no class attribute of that name, no __getattr__), which is faster."""
    if hasattr(cls, name) or hasattr(cls, "__getattr__") or cls.__getattribute__ is not object.__getattribute__:
        code(f"{target} = {obj}.__dict__.get({name!r})")
        return
    with code.block("try:"):
        code(f"{target} = {obj}.{name}")
    with code.block("except AttributeError:"):
        code(f"{target} = None")


def compile_reader(cls: type, hooked: bool, make_reader: Callable) -> Callable:
    """``read(data, pos, end, ctx) -> (obj, pos)`` for ``cls.FIELDS``: the structure at
    ``pos``, within ``end``, with the cursor after it (``raw`` is left to the caller,
    which knows whether the bytes are a slice or the whole input).

    Attributes are set in the order the interpreter sets them (``raw``, ``_spans``, then
    the fields), so parsed objects look the same either way.  ``hooked``: the class has
    an ``_after_field`` hook, called after each field with a Reader
    (``make_reader(data, end)``) positioned after it, as when interpreted; a context the
    hook sets applies to the rest of this structure.  The hook is called after the
    fields in ``cls.HOOKED_FIELDS`` only, when the class names them."""
    code = Code("def read(data, pos, end, ctx):")
    emit_struct_read(code, cls, "obj", "end", hooked, make_reader)
    code("return obj, pos")
    return code.function(f"{cls.__qualname__}.read")


def emit_struct_read(code: Code, cls: type, obj: str, end: str, hooked: bool = False,
                     make_reader: Callable | None = None) -> None:
    """The lines reading ``cls`` at ``pos`` (within the local ``end``) into a new object
    in the local ``obj``: the body of its reader, or inline in an enclosing one."""
    code(f"{obj} = {code.const(cls.__new__, 'new')}({code.const(cls, 'cls')})")
    code(_store(cls, obj, "raw", "None"))
    code(_store(cls, obj, "_spans", "None"))
    if hooked:
        code(f"r = {code.const(make_reader, 'make_reader')}(data, {end})")
    for name, kind in cls.FIELDS:
        assert name.isidentifier(), name
        optional = name in cls.OPTIONAL_TAIL
        if optional:
            with code.block(f"if pos == {end}:"):
                code(_store(cls, obj, name, "None"))
            code("else:")
            code.depth += 1
        code(_store(cls, obj, name, kind.emit_read(code, name, end)))
        if hooked and (cls.HOOKED_FIELDS is None or name in cls.HOOKED_FIELDS):
            code("r.pos = pos")
            code("r.ctx = ctx")
            code(f"{obj}._after_field({name!r}, r)")
            code("ctx = r.ctx")
            code("pos = r.pos")
        if optional:
            code.depth -= 1


def compile_init(cls: type, generic: Callable) -> Callable:
    """``__init__(self, *, field=None, ..., **values)`` for ``cls.FIELDS``, as ``generic``
    (Struct.__init__) does it: each field from its keyword or None, other keywords kept
    too, then ``raw`` and ``_spans``, in that order.  An instance of a subclass (one with
    its own ``__init__`` calling this one) goes to ``generic``, which reads the subclass's
    FIELDS."""
    names = [name for name, _ in cls.FIELDS]
    if not all(n.isidentifier() and not keyword.iskeyword(n) and n not in ("self", "values")
               for n in names) or len(set(names)) != len(names):
        return generic  # names that cannot be parameters: the interpreted __init__ (none today)
    # the fields as keyword-only parameters: the interpreter binds them (no dict of
    # keywords to build and pop from); any other keyword lands in ``values`` as before
    params = ", ".join(f"{n}=None" for n in names)
    code = Code(f"def __init__(self, *, {params}, **values):" if names
                else "def __init__(self, **values):")
    c = code.const(cls, "cls")
    # self.__class__, not type(self): a field may be called "type"
    with code.block(f"if self.__class__ is not {c}:"):
        # the fields given (a field left None is None either way) and the other keywords
        given = ", ".join(f"({n!r}, {n})" for n in names)
        code(f"values.update((k, v) for k, v in ({given},) if v is not None)" if names else "pass")
        code(f"return {code.const(generic, 'generic')}(self, **values)")
    for name in names:
        code(_store(cls, "self", name, name))
    code("if values: self.__dict__.update(values)")
    code(_store(cls, "self", "raw", "None"))
    code(_store(cls, "self", "_spans", "None"))
    return code.function("Struct.__init__")  # the name errors about the arguments give


def compile_writers(cls: type) -> tuple[Callable, Callable]:
    """``write(self, out)``, appending the fields of ``self`` to the bytearray ``out``,
    and ``encode(self) -> bytes-like``, the same on its own; a field left ``None`` is a
    ValueError, unless it is in the optional tail.

    Consecutive fields of flat kinds (integers, fixed and length-prefixed opaque bytes,
    integer vectors: see ``Kind.flat``) are written together: their integers and length
    prefixes in one struct call, their bytes appended.  That fast path only runs when
    every such field is set (and fixed ones have their size), and anything it cannot
    encode (a value out of range, not an integer, not bytes) undoes what it wrote and
    leaves the run to the field-by-field code, which gives the result or error the
    interpreter gives.  Where the fast path succeeds it writes the same bytes, since the
    integers are packed with the same sizes and iterated as the loop would."""
    out = []
    for fn in ("write", "encode"):
        code = Code(f"def {fn}(self{', out' if fn == 'write' else ''}):")
        if fn == "encode":
            runs = _runs(cls)
            if len(runs) == 1 and runs[0][0]:
                # a structure of flat fields only (most extension bodies): bytes in one go
                _emit_flat_run(code, cls, "self", runs[0][1], whole=True)
            code("out = bytearray()")
        emit_struct_write(code, cls, "self")
        if fn == "encode":
            code("return out")
        elif len(code.lines) == 1:
            code("pass")  # no fields
        out.append(code.function(f"{cls.__qualname__}.{fn}"))
    return out[0], out[1]


def emit_struct_write(code: Code, cls: type, obj: str) -> None:
    """The lines appending the fields of the object in the local ``obj`` to ``out``: the
    body of the writer of ``cls``, or inline in an enclosing one."""
    for flat, fields in _runs(cls):
        if flat:
            ok = _emit_flat_run(code, cls, obj, fields, whole=False)
            with code.block(f"if not {ok}:"):
                _emit_fields(code, cls, obj, fields)
        else:
            _emit_fields(code, cls, obj, fields)


def _runs(cls: type) -> list[tuple[bool, list]]:
    """FIELDS cut into runs of flat fields and of the others, in order.  A run is only
    worth its fast path when it packs two integers or more in one call (or is the whole
    structure, see compile_writers); otherwise its fields are written one by one."""
    runs: list[tuple[bool, list]] = []
    for name, kind in cls.FIELDS:
        flat = name not in cls.OPTIONAL_TAIL and kind.flat(Code(""), "v") is not None
        if runs and runs[-1][0] == flat:
            runs[-1][1].append((name, kind))
        else:
            runs.append((flat, [(name, kind)]))
    if len(runs) == 1 and runs[0][0]:
        return runs
    return [(flat and _ints(fields) >= 2, fields) for flat, fields in runs]


def _ints(fields: list) -> int:
    return sum(1 for _, kind in fields for part in kind.flat(Code(""), "v")[1] if part[0] == "int")


def _emit_fields(code: Code, cls: type, obj: str, fields: list) -> None:
    """Field by field, as the interpreter writes them (Struct._write_described)."""
    for name, kind in fields:
        v = code.var("v")
        _load(code, cls, obj, v, name)
        if name in cls.OPTIONAL_TAIL:
            with code.block(f"if {v} is not None:"):
                kind.emit_write(code, v)
        else:
            code(f"if {v} is None: raise ValueError('{cls.__name__}.{name} is not set')")
            kind.emit_write(code, v)


def _emit_flat_run(code: Code, cls: type, obj: str, fields: list, whole: bool) -> str:
    """The fast path for a run of flat fields (see compile_writers).  ``whole``: the run
    is the entire structure, whose encoding is returned as bytes when the path succeeds;
    otherwise the lines append to ``out`` and the name of a local is returned that says
    whether they did."""
    conds, parts = [], []
    for name, kind in fields:
        v = code.var("f")
        _load(code, cls, obj, v, name)
        more, ps = kind.flat(code, v)
        conds += [f"{v} is not None"] + more
        parts += ps
    # consecutive integers (and length prefixes) become one struct.pack
    merged: list[str] = []
    fmt, args = "", []
    for part in parts + [None]:
        if part is not None and part[0] == "int":
            fmt += part[1]
            args.append(part[2])
            continue
        if fmt:
            merged.append(f"{code.const(struct.Struct('>' + fmt).pack, 'pack')}({', '.join(args)})")
            fmt, args = "", []
        if part is not None:
            merged.append(part[1])
    if whole:
        if len(merged) == 1 and all(kind != "raw" for kind, *_ in parts):
            result = merged[0]
        else:
            result = f"b''.join(({', '.join(merged)},))"
        with code.block("try:"):  # the conditions too: len() of a wrong value may raise
            with code.block(f"if {' and '.join(conds)}:"):
                code(f"return {result}")
        with code.block("except Exception:"):
            code("pass  # the field-by-field code below says what is wrong")
        return ""
    at, ok = code.var("at"), code.var("ok")
    code(f"{at} = len(out)")
    code(f"{ok} = False")
    with code.block("try:"):
        with code.block(f"if {' and '.join(conds)}:"):
            for m in merged:
                code(f"out += {m}")
            code(f"{ok} = True")
    with code.block("except Exception:"):
        code(f"del out[{at}:]")
    return ok
