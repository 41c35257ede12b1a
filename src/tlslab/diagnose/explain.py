"""What does this TLS error message usually mean?  ``tlslab explain`` in library form.

A pasted error (from Java, curl, OpenSSL, Python, Go, Node, GnuTLS, a browser, .NET, nginx
or Apache logs, ...) is matched against patterns kept as data, one TOML file per client
family in ``patterns/<client>.toml``.  Each pattern is a case-insensitive substring
(``match``) or a bounded regular expression (``regex``), with the causes that string has
in practice and a weight for each: an estimate of how often the string means that cause.
The causes of all matched patterns are ranked by their summed weights; each comes with a
plain-words summary (the ``title`` of ``fixes/<code>.toml``) and how a trace or
``tlslab diagnose`` tells it apart from the others (``patterns/_how_to_tell.toml``).  The
answer ends with the ``tlslab diagnose`` command that decides: the host and port found in
the text (else ``HOST:PORT``) and the ``--profile`` of the pattern that gives the first
cause the most weight (the client that most likely printed it).

::

    from tlslab.diagnose.explain import explain, read_input
    text, truncated = read_input(raw_bytes)        # BadInput for empty / binary input
    result = explain(text)
    result.to_json()   # {"input", "matched": [...], "causes": [...], "diagnose": "..."}

Matching is linear and bounded: the input is cut at :data:`MAX_INPUT` bytes, whitespace
runs become one space (a message wrapped by a terminal still matches), and regular
expressions may only use bounded repetition (``{m,n}``, n <= :data:`MAX_REPEAT`, never
``*`` or ``+``) without nesting, which the loader checks.
"""
from __future__ import annotations

import codecs
import functools
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable

from .fixes import cause_data

__all__ = [
    "BadInput",
    "Cause",
    "Explanation",
    "MAX_INPUT",
    "Match",
    "Pattern",
    "PatternDataError",
    "VOCABULARY",
    "diagnose_command",
    "explain",
    "find_target",
    "how_to_tell",
    "load_patterns",
    "normalise",
    "parse_pattern_file",
    "read_input",
]

#: The diagnosis vocabulary (DESIGN.md); every cause code in a pattern file is one of these.
VOCABULARY = (
    "ok", "untrusted-root", "missing-intermediate", "self-signed", "expired", "not-yet-valid",
    "hostname-mismatch", "no-san", "protocol-version-mismatch", "no-common-cipher",
    "no-common-group", "no-common-signature-algorithm", "client-certificate-required",
    "weak-key", "sha1-signature", "wrong-key-usage", "sni-required", "alpn-mismatch",
    "not-tls", "connection-refused", "timeout",
)
#: What a profile name in a pattern file may look like (tests check it is a built-in one).
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,40}")
#: At most this many bytes of input are read and matched (a pasted log is far smaller).
MAX_INPUT = 64 * 1024
#: Largest upper bound a pattern's regex may give a repetition.
MAX_REPEAT = 2000
#: Occurrences of one pattern looked at (for telling nested matches apart).
MAX_SPANS = 64
#: The command when nothing is known about the server.
GENERIC_TARGET = "HOST:PORT"

_PATTERN_KEYS = {"match", "regex", "client", "example", "client_version", "source", "profile",
                 "causes", "note"}
_REQUIRED = {"client", "example", "client_version", "source", "profile", "causes"}


class PatternDataError(ValueError):
    """A pattern file breaks the format (named with the file and entry)."""


class BadInput(ValueError):
    """Input that is not an error message: empty, binary, not UTF-8.  ``code`` names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class Pattern:
    """One ``[[pattern]]`` entry of ``patterns/<family>.toml``."""

    family: str
    index: int
    client: str
    match: str | None
    regex: str | None
    example: str
    client_version: str
    source: str
    profile: str
    causes: tuple[tuple[str, int], ...]
    note: str = ""
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The pattern as written (substring or regex)."""
        return self.match if self.match is not None else self.regex or ""

    @property
    def key(self) -> str:
        """Unique among all patterns: family and text."""
        return f"{self.family}:{self.text}"

    def spans(self, norm: str, lowered: str) -> list[tuple[int, int]]:
        """Where the pattern occurs in the normalised text (at most MAX_SPANS)."""
        out: list[tuple[int, int]] = []
        if self.compiled is not None:
            for m in self.compiled.finditer(norm):
                out.append(m.span())
                if len(out) >= MAX_SPANS:
                    break
            return out
        needle = normalise(self.match or "").lower()
        if not needle:
            return out
        start = lowered.find(needle)
        while start >= 0 and len(out) < MAX_SPANS:
            out.append((start, start + len(needle)))
            start = lowered.find(needle, start + 1)
        return out


_ESCAPED = re.compile(r"\\.")
_CLASS = re.compile(r"\[\^?\]?[^\]]*\]")
_BOUND = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _check_regex(regex: str, where: str) -> re.Pattern[str]:
    """Compile a pattern's regex if it can only do linear work: bounded repetition
    ``{m,n}`` (n <= MAX_REPEAT), no ``*``/``+``, no repetition of a group that itself
    repeats, no backreferences."""
    if re.search(r"\\[1-9]|\(\?P=", regex):
        raise PatternDataError(f"{where}: regex {regex!r}: no backreferences")
    bare = _CLASS.sub("C", _ESCAPED.sub("E", regex))
    if "*" in bare or "+" in bare:
        raise PatternDataError(f"{where}: regex {regex!r}: use bounded repetition {{m,n}}, not * or +")
    for m in _BOUND.finditer(bare):
        lo, comma, hi = m.groups()
        if comma and not hi or not (hi or lo) or int(hi or lo) > MAX_REPEAT:
            raise PatternDataError(f"{where}: regex {regex!r}: repetition {m.group()} must be "
                                   f"bounded by at most {MAX_REPEAT}")
    # a repeated group must not hold a repetition: (a{1,9}){1,9} is quadratic or worse
    inner_rep: list[bool] = []
    prev = ""
    for i, ch in enumerate(bare):
        if ch == "(":
            inner_rep.append(False)
        elif ch == ")":
            inner = inner_rep.pop() if inner_rep else False
            quantified = bare[i + 1:i + 2] in ("{", "?")
            if inner and bare[i + 1:i + 2] == "{":
                raise PatternDataError(f"{where}: regex {regex!r}: nested repetition")
            if inner_rep and (inner or quantified):
                inner_rep[-1] = True
        elif ch in "{?" and prev != "(" and inner_rep:
            inner_rep[-1] = True
        prev = ch
    try:
        return re.compile(regex, re.IGNORECASE)
    except re.error as e:
        raise PatternDataError(f"{where}: regex {regex!r}: {e}") from None


def parse_pattern_file(family: str, data: dict[str, Any], where: str) -> list[Pattern]:
    """The patterns of one file, checked (keys, vocabulary, weights, linear regexes, and
    that each ``example`` matches its own pattern)."""
    if set(data) - {"pattern", "family"}:
        raise PatternDataError(f"{where}: unknown top-level keys {sorted(set(data) - {'pattern', 'family'})}")
    entries = data.get("pattern")
    if not isinstance(entries, list) or not entries:
        raise PatternDataError(f"{where}: no [[pattern]] entries")
    out = []
    for i, entry in enumerate(entries):
        w = f"{where} pattern {i + 1}"
        if not isinstance(entry, dict):
            raise PatternDataError(f"{w}: not a table")
        unknown = set(entry) - _PATTERN_KEYS
        if unknown:
            raise PatternDataError(f"{w}: unknown keys {sorted(unknown)}")
        missing = _REQUIRED - set(entry)
        if missing:
            raise PatternDataError(f"{w}: missing {sorted(missing)}")
        if ("match" in entry) == ("regex" in entry):
            raise PatternDataError(f"{w}: exactly one of match / regex")
        for key in _REQUIRED - {"causes"} | ({"match"} if "match" in entry else {"regex"}):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise PatternDataError(f"{w}: {key} must be a non-empty string")
        if not _PROFILE_NAME.fullmatch(entry["profile"]):
            raise PatternDataError(f"{w}: profile {entry['profile']!r} is not a profile name")
        causes = entry["causes"]
        if not isinstance(causes, list) or not causes:
            raise PatternDataError(f"{w}: causes must be a non-empty list")
        seen = set()
        parsed = []
        for c in causes:
            if not isinstance(c, dict) or set(c) != {"code", "weight"}:
                raise PatternDataError(f"{w}: each cause is {{ code = ..., weight = ... }}")
            code, weight = c["code"], c["weight"]
            if code not in VOCABULARY or code == "ok":
                raise PatternDataError(f"{w}: cause {code!r} is not in the diagnosis vocabulary")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
                raise PatternDataError(f"{w}: weight of {code} must be an integer 1..100")
            if code in seen:
                raise PatternDataError(f"{w}: cause {code} twice")
            seen.add(code)
            parsed.append((code, weight))
        compiled = _check_regex(entry["regex"], w) if "regex" in entry else None
        if "match" in entry and len(normalise(entry["match"])) < 4:
            raise PatternDataError(f"{w}: match {entry['match']!r} is too short to mean anything")
        p = Pattern(family=family, index=i, client=entry["client"].strip(),
                    match=entry.get("match"), regex=entry.get("regex"),
                    example=entry["example"], client_version=entry["client_version"].strip(),
                    source=entry["source"].strip(), profile=entry["profile"],
                    causes=tuple(sorted(parsed, key=lambda cw: -cw[1])),
                    note=entry.get("note", ""), compiled=compiled)
        norm = normalise(p.example)
        if not p.spans(norm, norm.lower()):
            raise PatternDataError(f"{w}: its example does not match it")
        out.append(p)
    return out


@functools.lru_cache(maxsize=1)
def load_patterns() -> tuple[Pattern, ...]:
    """Every pattern of every ``patterns/<family>.toml`` (files starting with ``_`` hold
    other data), in file-name order, then file order."""
    base = resources.files("tlslab.diagnose") / "patterns"
    out: list[Pattern] = []
    keys: set[str] = set()
    for entry in sorted(base.iterdir(), key=lambda e: e.name):
        name = entry.name
        if not name.endswith(".toml") or name.startswith("_"):
            continue
        where = f"patterns/{name}"
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise PatternDataError(f"{where}: {e}") from None
        for p in parse_pattern_file(name[:-5], data, where):
            if p.key in keys:
                raise PatternDataError(f"{where}: pattern {p.text!r} appears twice")
            keys.add(p.key)
            out.append(p)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def how_to_tell() -> dict[str, str]:
    """``patterns/_how_to_tell.toml``: per cause, what a trace or a diagnosis shows."""
    text = (resources.files("tlslab.diagnose") / "patterns" / "_how_to_tell.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text).get("cause", {})
    unknown = set(data) - set(VOCABULARY)
    if unknown:
        raise PatternDataError(f"patterns/_how_to_tell.toml: unknown causes {sorted(unknown)}")
    return {code: " ".join(str(v.get("how_to_tell", "")).split()) for code, v in data.items()}


# --------------------------------------------------------------------------- input


_ANSI = re.compile(r"\x1b(?:\[[0-9;?]{0,32}[ -/]{0,4}[@-~]|\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?|[@-Z\\-_])")
_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Terminal escape sequences removed and every whitespace run one space: what patterns see."""
    return _WS.sub(" ", _ANSI.sub("", text)).strip()


def read_input(data: bytes | str, limit: int = MAX_INPUT) -> tuple[str, bool]:
    """The error text in ``data`` (at most ``limit`` bytes of it) and whether it was cut.

    Raises :class:`BadInput` for empty (or blank) input and for binary input: NUL bytes,
    invalid UTF-8 (UTF-16 with a byte-order mark, as Windows tools write it, is read)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")  # argv bytes that were not UTF-8
    truncated = len(data) > limit
    raw = data[:limit]
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        # final=False when cut: a character split at the limit is dropped, not an error
        text = decoder.decode(raw, final=not truncated)
    except UnicodeDecodeError as e:
        raise BadInput("binary-input", f"the input is not UTF-8 text (byte 0x{raw[e.start]:02x} at "
                                       f"offset {e.start}); paste the error message as text") from None
    if "\x00" in text:
        raise BadInput("binary-input", "the input holds NUL bytes: it looks binary, not like an "
                                       "error message; paste the message as text")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\x1b\x0c\x0b")
    if controls > max(8, len(text) // 20):
        raise BadInput("binary-input", f"the input holds {controls} control characters: it looks "
                                       "binary, not like an error message")
    if not normalise(text):
        raise BadInput("empty-input", "the input is empty: paste the error message (as an "
                                      "argument, or on stdin)")
    return text, truncated


# --------------------------------------------------------------------------- target


_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_DNS = rf"(?:{_LABEL}\.){{1,8}}[a-z][a-z0-9-]{{0,61}}[a-z0-9]|localhost"
_IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IPV6 = r"\[[0-9a-f:.]{2,45}\]"
_HOST = rf"(?:{_IPV6}|{_IPV4}|{_DNS})"
_PORT = r"(\d{1,5})"
# file names in stack traces and logs look like host:port (Alert.java:131, _ssl.c:1006)
_NOT_TLD = {"java", "py", "go", "js", "mjs", "cjs", "ts", "c", "h", "cc", "cpp", "cs", "rs",
            "kt", "scala", "rb", "php", "pl", "so", "jar", "class", "log", "txt", "conf",
            "xml", "json", "yaml", "yml", "toml", "ini", "pem", "crt", "key", "html", "sh",
            "swift", "m", "dart", "lua", "ex", "exs", "erl", "groovy", "vb", "fs", "dll", "exe",
            "zig", "nim", "clj", "cfg", "err", "out", "tmp", "lock", "pid", "sock", "d", "local"}
_WILDCARD = {"0.0.0.0", "[::]", "*", "[::0]"}
_TARGET_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rx, re.IGNORECASE), kind) for rx, kind in (
        # URLs: https://host[:port]/...
        (rf"\b(?:https|wss|ftps|ldaps)://(?:[^\s/@]{{1,64}}@)?({_HOST})(?::{_PORT})?(?![\w.-])", "url"),
        # urllib3 / requests: HTTPSConnectionPool(host='x', port=443)
        (rf"host='({_HOST})', port={_PORT}\b", "pair"),
        # curl: "Connected to x (1.2.3.4) port 443", "Failed to connect to x port 443"
        (rf"\bconnect(?:ed)? to ({_HOST})(?: \([0-9a-f:.]{{2,45}}\))? port {_PORT}\b", "pair"),
        # openssl s_client -connect x:443, gnutls-cli "Connecting to '1.2.3.4:443'"
        (rf"-connect ({_HOST}):{_PORT}\b", "pair"),
        (rf"Connecting to '({_HOST}):{_PORT}'", "pair"),
        # Go "dial tcp x:443", Node "connect ECONNREFUSED x:443"
        (rf"\b(?:dial tcp|ECONNREFUSED|ETIMEDOUT|ECONNRESET|EHOSTUNREACH) ({_HOST}):{_PORT}\b", "pair"),
        # nginx error log: "server: 0.0.0.0:443"; Apache "(server www.example.com:443)"
        (rf"\bserver:? ({_HOST}|\*):{_PORT}\b", "pair"),
        # any other host:port, not a client address ("client 1.2.3.4:5555", "error from 1.2.3.4:5555")
        (rf"(?<![^\s\"'(<=,;@])(?<!client )(?<!client: )(?<!\[client )(?<!from )({_HOST}):{_PORT}(?![\w:.-]*\w)", "pair"),
    )
)
# the name a client asked for, in hostname-mismatch messages: a target without a port
_NAME_RULES = tuple(re.compile(rx, re.IGNORECASE) for rx in (
    rf"No subject alternative DNS name matching ({_DNS}) found",
    rf"No subject alternative names matching IP address ({_IPV4}) found",
    rf"No name matching ({_DNS}) found",
    rf"certificate is not valid for '({_HOST})'",
    rf"Host: ({_HOST})\. is not in the cert's altnames",
    rf"IP: ({_IPV4}) is not in the cert's list",
    rf"x509: certificate is valid for [^,]{{1,253}}(?:, [^,]{{1,253}}){{0,20}}, not ({_HOST})\b",
    rf"x509: certificate is not valid for any names, but wanted to match ({_HOST})\b",
    rf"does not match target host name '({_HOST})'",
    rf"SSL: no alternative certificate subject name matches target host name '({_HOST})'",
))


def _valid_host(host: str) -> bool:
    h = host.strip("[]")
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    if host.startswith("[") or re.fullmatch(r"[\d.]+", h):
        return False  # a bracketed non-IPv6, or 999.1.1.1
    labels = h.lower().rstrip(".").split(".")
    if h.lower() == "localhost":
        return True
    return len(labels) >= 2 and labels[-1] not in _NOT_TLD and len(h) <= 253


def find_target(text: str) -> str | None:
    """``host:port`` of the server the error is about, when the text says it (a URL, a
    ``host:port``, curl's "port N", ...); ``host:PORT`` when only the name is known; None.
    Only syntactically valid names and IPs come out, so the command is safe to paste."""
    norm = normalise(text)
    for rx, kind in _TARGET_RULES:
        for m in rx.finditer(norm):
            host, port = m.group(1), m.group(2)
            if kind == "url" and port is None:
                port = "443"
            if port is None or not 0 < int(port) < 65536:
                continue
            if host.lower() in _WILDCARD:
                return f"HOST:{int(port)}"
            if not _valid_host(host):
                continue
            return f"{host.lower()}:{int(port)}"
    for rx in _NAME_RULES:
        m = rx.search(norm)
        if m and _valid_host(m.group(1)):
            return f"{m.group(1).lower()}:PORT"
    return None


def diagnose_command(target: str | None, profile: str) -> str:
    cmd = f"tlslab diagnose {target or GENERIC_TARGET}"
    if profile and profile != "default":
        cmd += f" --profile {profile}"
    return cmd


# --------------------------------------------------------------------------- explaining


@dataclass(frozen=True)
class Match:
    pattern: Pattern
    spans: tuple[tuple[int, int], ...]

    @property
    def length(self) -> int:
        return max(b - a for a, b in self.spans)

    def to_json(self) -> dict[str, str]:
        return {"client": self.pattern.client, "pattern": self.pattern.text,
                "source": self.pattern.source}


@dataclass(frozen=True)
class Cause:
    code: str
    rank: int
    weight: int
    share: float           # of all weights summed, 0..1
    summary: str
    how_to_tell: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "rank": self.rank, "summary": self.summary,
                "how_to_tell": self.how_to_tell}


@dataclass(frozen=True)
class Explanation:
    input: str
    matched: tuple[Match, ...]
    causes: tuple[Cause, ...]
    target: str | None
    profile: str
    diagnose: str

    def excerpt(self, match: Match, width: int = 110) -> str:
        """What ``match`` matched in the input (its first occurrence), on one line."""
        start, end = match.spans[0]
        piece = normalise(self.input)[start:end]
        return piece if len(piece) <= width else piece[: width - 1] + "…"

    def to_json(self) -> dict[str, Any]:
        """The stable ``--json`` shape: input, matched, causes (rank order), diagnose."""
        return {"input": self.input, "matched": [m.to_json() for m in self.matched],
                "causes": [c.to_json() for c in self.causes], "diagnose": self.diagnose}


def _contains(outer: tuple[int, int], inner: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def _keep(matches: list[Match]) -> list[Match]:
    """Drop a match whose every occurrence lies inside a longer match (or an equal one
    that comes first): "handshake failure" inside "sslv3 alert handshake failure" is the
    same evidence, counted once, under the more specific pattern."""
    kept = []
    for i, m in enumerate(matches):
        covered = all(
            any(_contains(span_o, span)
                and ((span_o[1] - span_o[0]) > (span[1] - span[0]) or j < i)
                for j, o in enumerate(matches) if j != i for span_o in o.spans)
            for span in m.spans)
        if not covered:
            kept.append(m)
    return kept


def _summary(code: str) -> str:
    data = cause_data(code)
    return " ".join(str(data.get("title") or code.replace("-", " ")).split())


def explain(text: str, patterns: Iterable[Pattern] | None = None) -> Explanation:
    """Match ``text`` (already read with :func:`read_input`) and rank the causes."""
    norm = normalise(text)
    lowered = norm.lower()
    found = []
    for p in (load_patterns() if patterns is None else patterns):
        spans = p.spans(norm, lowered)
        if spans:
            found.append(Match(p, tuple(spans)))
    matched = _keep(found)
    totals: dict[str, int] = {}
    best: dict[str, int] = {}
    for m in matched:
        for code, weight in m.pattern.causes:
            totals[code] = totals.get(code, 0) + weight
            best[code] = max(best.get(code, 0), weight)
    order = sorted(totals, key=lambda c: (-totals[c], -best[c], VOCABULARY.index(c)))
    grand = sum(totals.values()) or 1
    tell = how_to_tell()
    # causes the evidence makes equally likely share a rank (competition ranking: 1, 2, 2, 4);
    # the list stays in a stable order within a rank
    causes = tuple(Cause(code=c, rank=1 + sum(totals[o] > totals[c] for o in order),
                         weight=totals[c], share=totals[c] / grand,
                         summary=_summary(c), how_to_tell=tell.get(c, ""))
                   for c in order)
    profile = "default"
    if causes:
        # the client to model is the one behind the strongest evidence for the first cause
        # (then the most specific, longest, match)
        top = causes[0].code

        def evidence(im: tuple[int, Match]) -> tuple[int, int, int]:
            i, m = im
            return dict(m.pattern.causes).get(top, 0), m.length, -i

        profile = max(enumerate(matched), key=evidence)[1].pattern.profile
    target = find_target(text)
    return Explanation(input=text, matched=tuple(matched), causes=causes,
                       target=target, profile=profile,
                       diagnose=diagnose_command(target, profile if matched else "default"))
