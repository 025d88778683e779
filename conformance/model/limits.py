"""Where the harness stops, in one place: the limits table (docs/limits.md).

Every limit is a module constant (read at the moment of the check, so tests and the
``--limit NAME=VALUE`` option can change it) and a row of :data:`LIMITS`.  Counts and
sizes taken from an input are checked against these *before* anything proportional to
them is allocated or iterated; an exceeded limit is a clean error naming the limit, the
location and how to raise it (:class:`conformance.errors.LimitExceeded`), or, inside an
engine load, an outcome of kind ``limit``.

``MALLOC_LIMIT``: a core allocation larger than this aborts like GLib's g_malloc() does
on a real host ("failed to allocate N bytes") - an ``abort`` outcome, as in QEMU.

``ELEMENT_LIMIT``: a core allocation of an array with more elements than this is not
materialised element by element (a counter read from a corrupted stream can ask for
2^31 elements, which QEMU would happily g_malloc on an overcommitting host).  The
engines end such a load with an outcome of kind ``limit``: the input asks for more than
the harness models, said with the field path and the count.  Device tables never come
near it (QEMU's largest real arrays have thousands of elements; e1000's register file,
32768, is the largest we know).  Case files and vmdesc ``array_len`` of non-integer
fields are held to the same limit; 2^16 keeps a case at the limit under a few seconds
in the reference engine.
"""

from __future__ import annotations

import sys

from conformance.plain import Plain

MALLOC_LIMIT = 1 << 40
ELEMENT_LIMIT = 1 << 16
DEPTH_LIMIT = 64
JSON_DEPTH_LIMIT = 256
BUFFER_LIMIT = 1 << 26
CASE_FILE_LIMIT = 1 << 26
PIPE_LIMIT = 16 << 30
WORK_LIMIT = 1 << 21
STATE_LIMIT = 1 << 16
STATE_BYTES_LIMIT = 1 << 25
#: not a limit but the bound the defaults keep one input under (docs/limits.md: 5 s of
#: CPU, 500 MB of memory); the fuzz contract (strategies/hostile.py) measures it
INPUT_SECONDS_BOUND = 5.0
INPUT_MEMORY_BOUND = 500 << 20


class Limit(Plain):
    """name: the --limit NAME; attr: the module constant; bounds: what it bounds;
    exceeded: what happens when an input exceeds it."""

    __slots__ = ("name", "attr", "default", "bounds", "exceeded")


LIMITS: tuple[Limit, ...] = (
    Limit("elements", "ELEMENT_LIMIT", ELEMENT_LIMIT,
          "elements of one array field: a case's ARRAY num, a stream's VARRAY counter, "
          "a vmdesc array_len",
          "case/vmdesc: clean error; engine load: outcome kind `limit`"),
    Limit("depth", "DEPTH_LIMIT", DEPTH_LIMIT,
          "nesting of descriptions (STRUCT in STRUCT, subsections), predicates "
          "(not/all/any) and vmdesc structs",
          "clean error naming the JSON path"),
    Limit("json-depth", "JSON_DEPTH_LIMIT", JSON_DEPTH_LIMIT,
          "nesting of JSON text ([ and {) in case files and the vmdesc trailer",
          "clean error naming the line, column and byte offset"),
    Limit("buffer-bytes", "BUFFER_LIMIT", BUFFER_LIMIT,
          "bytes of one field in a case description (size, and num x size for arrays)",
          "clean error naming the JSON path"),
    Limit("pipe-bytes", "PIPE_LIMIT", PIPE_LIMIT,
          "bytes read from a pipe or device given as a migration file (it is read once, "
          "into a temporary file; a regular file is mapped and has no such limit)",
          "clean error naming the file and the offset reached"),
    Limit("case-file-bytes", "CASE_FILE_LIMIT", CASE_FILE_LIMIT,
          "bytes of one case file (JSON)", "clean error naming the file"),
    Limit("state-values", "STATE_LIMIT", STATE_LIMIT,
          "values (scalars, array elements and structs, over nested structs) in the zero state "
          "of a case's description: what one save or load walks; also the structs one "
          "VMS_ALLOC hands a load (count from the stream x values per struct), and all "
          "that one load allocates (VMS_ALLOC, auto-allocated elements, GTree / QLIST "
          "nodes)",
          "case: clean error naming the JSON path; engine load: outcome kind `limit`"),
    Limit("state-bytes", "STATE_BYTES_LIMIT", STATE_BYTES_LIMIT,
          "bytes of a case's state: the fields' sizes (num x size for arrays) summed over "
          "the description, nested structs and subsections, one node of a GTree / QLIST "
          "(32 MiB: about 315 MB peak in decode, 220 MB in run; 64 MiB: 610 MB); also "
          "the bytes one load allocates in total (as state-values)",
          "case: clean error naming the JSON path; engine load: outcome kind `limit`"),
    Limit("work", "WORK_LIMIT", WORK_LIMIT,
          "vmdesc field entries one migration-file decode plans and decodes (array_len "
          "expanded, integer-array elements counted, summed over the file; QEMU 7.2's pc "
          "machine needs about 4,600)",
          "clean error naming the offset, section and field"),
    Limit("malloc", "MALLOC_LIMIT", MALLOC_LIMIT,
          "bytes of one allocation the modelled QEMU core makes (g_malloc)",
          "engine: outcome kind `abort`, as g_malloc() on a real host"),
)

_BY_NAME = {lim.name: lim for lim in LIMITS}


def get(name: str) -> int:
    """The current value of limit ``name``."""
    return getattr(sys.modules[__name__], _BY_NAME[name].attr)


def set_limit(name: str, value: int) -> None:
    """Change limit ``name`` (``--limit NAME=VALUE``); ValueError for an unknown name or
    a value below 1."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown limit {name!r} (known: {', '.join(_BY_NAME)})")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"limit {name} must be a positive integer, got {value!r}")
    setattr(sys.modules[__name__], _BY_NAME[name].attr, value)


def parse_assignment(text: str) -> tuple[str, int]:
    """``NAME=VALUE`` (VALUE may use 2**k, k, M or G suffixes: 4M, 1G) -> (name, value)."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"--limit takes NAME=VALUE, got {text!r}")
    raw = raw.strip().replace("_", "")
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(raw[-1:].lower(), 1)
    if scale != 1:
        raw = raw[:-1]
    try:
        value = int(raw[3:]) if raw.startswith("2**") else int(raw)
        value = (1 << value) if raw.startswith("2**") else value
    except ValueError:
        raise ValueError(f"--limit {name}: {text.partition('=')[2]!r} is not an integer") from None
    name = name.strip()
    set_check = _BY_NAME.get(name)
    if set_check is None:
        raise ValueError(f"unknown limit {name!r} (known: {', '.join(_BY_NAME)})")
    return name, value * scale


class override:
    """Temporarily set limits by name (``with override(elements=10):``; '-' as '_')."""

    def __init__(self, **values: int) -> None:
        self.values = values
        self.saved: dict = {}

    def __enter__(self) -> None:
        try:
            for key, value in self.values.items():
                name = key.replace("_", "-")
                self.saved[name] = get(name) if name in _BY_NAME else None
                set_limit(name, value)
        except BaseException:
            self._restore()
            raise

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for name, value in self.saved.items():
            if value is not None:
                set_limit(name, value)
        self.saved = {}


def table() -> str:
    """The limits as a Markdown table (docs/limits.md holds the same)."""
    rows = ["| limit | default | bounds | when exceeded |", "|---|---|---|---|"]
    for lim in LIMITS:
        rows.append(f"| `{lim.name}` | {lim.default} | {lim.bounds} | {lim.exceeded} |")
    return "\n".join(rows)


def exceeded(name: str, location: str, what: str, value: int | None = None):
    """The :class:`LimitExceeded` error for limit ``name`` (to raise)."""
    from conformance.errors import LimitExceeded

    return LimitExceeded(name, location, what, value, allowed=get(name))


def check(name: str, value: int, location: str, what: str) -> None:
    """Raise LimitExceeded when ``value`` exceeds limit ``name``."""
    if value > get(name):
        raise exceeded(name, location, f"{what} ({value})", value)


_PATTERNS: dict = {}  # compiled on first use


def _pattern(name: str):
    import re

    if not _PATTERNS:
        # a JSON string (escapes included); and, for the bound, strings or runs of
        # anything that is neither a bracket nor a quote
        string = r'"[^"\\]*(?:\\.[^"\\]*)*"'
        _PATTERNS["tokens"] = re.compile(string + r"|[\[\]{}]")
        _PATTERNS["skeleton"] = re.compile(string + r'|[^\[\]{}"]+')
    return _PATTERNS[name]


_PARENS = str.maketrans("[]{}", "()()")
#: ASCII other than brackets, quotes and backslashes, deleted
_NOT_STRUCTURE = dict.fromkeys(c for c in range(128) if chr(c) not in '[]{}"\\')


def _depth_within(text: str, limit: int) -> bool:
    """True when no bracket of ``text`` is nested deeper than ``limit``: a bound
    computed at C speed.  The text is reduced to its brackets outside strings, then
    innermost pairs are removed ``limit`` times at most; a bracket still open
    afterwards (or a quote that starts no string) means "maybe": the exact scan decides."""
    if text.count("[") + text.count("{") <= limit:
        return True
    skeleton = text.translate(_NOT_STRUCTURE)
    if "\\" in skeleton:  # escapes: strings found by the regex
        skeleton = _pattern("skeleton").sub("", text)
        if '"' in skeleton:
            return False
    else:  # no escapes: strings are what lies between a quote and the next
        parts = skeleton.split('"')
        if len(parts) % 2 == 0:
            return False
        skeleton = "".join(parts[::2])
    skeleton = skeleton.translate(_PARENS)
    for _ in range(limit):
        inner = skeleton.replace("()", "")
        if inner == skeleton:
            break
        skeleton = inner
    return "(" not in skeleton


def json_depth_error(text: str, limit: int) -> tuple[int, int] | None:
    """(offset, depth) of the first ``[`` / ``{`` of ``text`` nested deeper than
    ``limit`` (strings skipped), or None.  It runs before json.loads recurses (which
    would hit Python's recursion limit first): a C-speed bound first, the exact regex
    scan only when the bound cannot rule it out."""
    if _depth_within(text, limit):
        return None
    depth = 0
    for match in _pattern("tokens").finditer(text):
        c = match.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return match.start(), depth
        elif c == "]" or c == "}":
            depth -= 1
    return None


class ModelLimit(Exception):
    """The input asks for more than the model materialises (see ELEMENT_LIMIT)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def check_array_allocation(n: int, nbytes: int, path: str) -> None:
    """Raise ModelLimit when vmstate_handle_alloc() would hand the model ``n`` elements."""
    if n > ELEMENT_LIMIT:
        raise ModelLimit(f"the core would allocate {n} elements ({nbytes} bytes); the model "
                         f"materialises at most {ELEMENT_LIMIT} (--limit elements=N)", path)


class LoadBudget:
    """What one load may allocate in the model, in total: ``state-values`` values and
    ``state-bytes`` bytes over every VMS_ALLOC array, auto-allocated element and GTree /
    QLIST / QTAILQ node (each bounded by the description alone, their number by the
    stream: 100 one-byte GTree nodes of a 16 MiB value struct were 1.6 GB).  Spent before
    each allocation is made, so a load never holds more than the limits past it."""

    __slots__ = ("values", "nbytes")

    def __init__(self) -> None:
        self.values = STATE_LIMIT  # read now: a limit is read at the moment of its check
        self.nbytes = STATE_BYTES_LIMIT

    def spend(self, values: int, nbytes: int, what: str, path: str) -> None:
        """Raise ModelLimit when allocating ``what`` would pass either bound."""
        self.values -= values
        self.nbytes -= nbytes
        if self.values < 0:
            raise ModelLimit(f"{what} would bring this load's allocations to "
                             f"{STATE_LIMIT - self.values} values; the model materialises "
                             f"at most {STATE_LIMIT} per load (--limit state-values=N)", path)
        if self.nbytes < 0:
            raise ModelLimit(f"{what} would bring this load's allocations to "
                             f"{STATE_BYTES_LIMIT - self.nbytes} bytes; the model "
                             f"materialises at most {STATE_BYTES_LIMIT} per load "
                             f"(--limit state-bytes=N)", path)


def check_bitmap_words(nwords: int, nbits: int, path: str) -> None:
    """Raise ModelLimit when put_bitmap would write more words than an array may hold
    elements (ELEMENT_LIMIT): the bitmap's size member, not the state, sets the count."""
    if nwords > ELEMENT_LIMIT:
        raise ModelLimit(f"put_bitmap would write {nwords} words for {nbits} bits; the model "
                         f"writes at most {ELEMENT_LIMIT} (--limit elements=N)", path)
