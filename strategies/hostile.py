"""Hostile inputs (the error contract of docs/limits.md): structure-aware mutations of real migration streams and of
case files, and the contract every input must meet.

Strategies (each shrinks toward the unmutated seed and the first mutation kind):

* :func:`hostile_migration_files` - pc-min.mig (QEMU 7.2) and a small stream cut from it,
  mutated by: truncation (at or near a record boundary, or anywhere), a byte flip in a
  record header, a be32 (section id, instance, version, vmdesc length) set to an edge
  value, splicing (a record deleted, duplicated or swapped), the vmdesc JSON mutated as a
  tree (types, missing keys, huge numbers, deep nesting, lone surrogates), RAM record
  bytes flipped;
* :func:`hostile_case_files` - the bundled example and golden case files mutated as JSON
  trees (the same tree mutations, plus big buffer fields), then as bytes (encodings,
  invalid UTF-8, BOM, cut);
* :func:`hostile_engine_inputs` - generated trees, mutated streams and destinations
  whose integer members may be set to edge values (negative sizes).

Migration inputs include a section idstr renamed to a hostile name (:data:`HOSTILE_NAMES`), cut
or not; the CLI run in-process on each input with every printed line checked
(:func:`check_output`); and the measured peak resident memory of each block.

The contract (:func:`check_migration_input`, :func:`check_case_input`,
:func:`check_engines_input`): the input gives a result or a clean error - a
``ConformanceError`` whose text is one printable line - within :data:`TIME_BOUND`
seconds of CPU and :data:`MEMORY_BOUND` bytes of new address space; anything else raises
:class:`ContractViolation`.  Each check returns ``"ok"`` or ``"clean"``.
"""

from __future__ import annotations

import json
import re
import signal
import struct
import time
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st

from conformance.model import limits as _limits

ROOT = Path(__file__).resolve().parent.parent
PC_MIN = ROOT / "tests" / "data" / "qemu-7.2" / "pc-min.mig"
CASE_DIRS = (ROOT / "conformance" / "data" / "examples", ROOT / "golden" / "cases")

TIME_BOUND = _limits.INPUT_SECONDS_BOUND  # seconds of CPU per input (the error contract: under 5 s)
ENGINE_BOUND = 30.0  # seconds per engine run of a parsed case (a hang, not a slow host)
WALL_FACTOR = 6  # a block waiting (not computing) this many times its bound is a hang
MEMORY_BOUND = _limits.INPUT_MEMORY_BOUND  # bytes per input (the error contract: under 500 MB)

#: values a hostile JSON tree puts where something else belongs
ODD_VALUES = ([], {}, "", "x", 0, -1, 1, 255, 256, 2**31, 2**32, 2**63, 2**64, 10**30, -2**63,
              1.5, None, True, False, "\ud800", "a" * 300, [1, 2], {"a": 1}, "ARRAY", "uint8",
              "struct")
HUGE = (2**16 + 1, 2**20, 2**31 - 1, 2**32, 2**32 + 1, 2**64, 10**7)
TREE_MUTATIONS = ("replace", "delete", "add", "deep", "huge", "surrogate", "empty", "control")
#: case files only: large buffer fields appended to a Fields list (the
#: buffer-bytes limit is per field; many fields at it must still be one clean line)
CASE_TREE_MUTATIONS = TREE_MUTATIONS + ("buffers",)
MIG_MUTATIONS = ("truncate", "flip-header", "be32", "splice", "vmdesc", "ram", "flip", "idstr")
#: how often each is drawn: "ram" needs the full 350 KB stream (10x slower to decode)
_MIG_WEIGHTS = ("truncate",) * 3 + ("flip-header",) * 2 + ("be32",) * 2 + ("splice",) * 2 \
    + ("vmdesc",) * 3 + ("flip",) * 2 + ("ram",) + ("idstr",) * 2
#: names a hostile input gives a section, a field, a case (printed raw,
#: they split or garble the one-line messages)
HOSTILE_NAMES = ("a\nb", "\x1b[31mred", "nul\x00x", "tab\there", "\r", "bell\x07",
                 "del\x7f", "\u2028ls", "\x85nel", "su\u00e9", "\u200bzw")
#: edge values for the integer members of a destination state (sizes and counters the
#: load reads before it fills them; a negative bitmap size)
DEST_INTS = (0, 1, -1, -8, -64, -601, 255, 256, 65535, 65536, 2**31 - 1, -2**31,
             2**32 - 1, 2**63 - 1)
CASE_BYTE_MUTATIONS = ("none", "none", "none", "utf16", "latin1", "bad-byte", "bom", "cut")


class ContractViolation(AssertionError):
    """An input escaped the contract: a traceback, a hang, a blow-up or a dirty error."""


class _Timeout(BaseException):  # BaseException: library ``except Exception`` can't eat it
    pass


# --------------------------------------------------------------------------- JSON trees


def _paths(tree) -> list[tuple]:
    """Every node's path (keys / indexes), root first; iterative."""
    out, todo = [], [((), tree)]
    while todo:
        path, node = todo.pop()
        out.append(path)
        if isinstance(node, dict):
            todo.extend((path + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend((path + (i,), v) for i, v in enumerate(node))
    out.sort(key=lambda p: (len(p), str(p)))
    return out


def _odd():
    """One of ODD_VALUES, copied (a drawn [] or {} may be mutated later)."""
    return st.sampled_from(ODD_VALUES).map(lambda v: json.loads(json.dumps(v))
                                           if isinstance(v, (list, dict)) else v)


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _deep_text(kind: str, depth: int) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "dict":
        return '{"a": ' * depth + "1" + "}" * depth
    if kind == "not":
        return '{"not": ' * depth + "true" + "}" * depth
    inner = '{"name": "x", "field": "x", "info": "uint8", "type": "uint8", "size": 1}'
    for _ in range(depth):
        if kind == "description":
            inner = ('{"name": "s", "field": "s", "flags": ["STRUCT"], '
                     '"Description": {"name": "d", "Fields": [' + inner + ']}}')
        else:  # a vmdesc struct
            inner = ('{"name": "s", "type": "struct", "size": 1, '
                     '"struct": {"vmsd_name": "d", "version": 1, "fields": [' + inner + ']}}')
    return inner


def _big_buffers(draw, tree) -> None:
    """Append 2-16 buffer fields to one Fields list, each within the buffer-bytes limit,
    together just over the state-bytes limit."""
    from conformance.model import limits

    lists = [p for p in _paths(tree) if p and p[-1] == "Fields" and isinstance(_get(tree, p), list)]
    if not lists:
        return
    fields = _get(tree, lists[draw(st.integers(0, len(lists) - 1), label="Fields")])
    count = draw(st.integers(2, 16), label="buffers")
    size = min(limits.BUFFER_LIMIT, limits.STATE_BYTES_LIMIT // count + 1)
    for i in range(count):
        fields.append({"field": f"big{i}", "flags": ["BUFFER"], "info": "buffer", "size": size})


@st.composite
def mutated_json(draw, tree, *, keys=("num", "size", "array_len", "version_id", "Fields",
                                      "fields", "flags", "info", "type", "name", "exists",
                                      "needed", "Description", "struct", "devices"),
                 kinds=TREE_MUTATIONS):
    """The JSON text of ``tree`` with one (or a few) tree mutations applied.

    A node is drawn from the whole tree, or (one time in four) from the root's own
    keys, where one mutation changes what every command reads first (``variants``)."""
    import copy

    tree = copy.deepcopy(tree)
    deep: dict[str, str] = {}
    for n in range(draw(st.integers(1, 3), label="mutations")):
        paths = _paths(tree)
        if isinstance(tree, dict) and tree and draw(st.integers(0, 3), label="top") == 0:
            paths = [(k,) for k in tree]
        path = paths[draw(st.integers(0, len(paths) - 1), label="node")]
        kind = draw(st.sampled_from(kinds), label="tree mutation")
        if kind == "buffers":
            _big_buffers(draw, tree)
            continue
        parent = _get(tree, path[:-1]) if path else None
        if not path:  # the root itself
            if kind in ("replace", "deep"):
                tree = draw(_odd())
            continue
        key = path[-1]
        if kind == "replace":
            parent[key] = draw(_odd(), label="value")
        elif kind == "delete":
            del parent[key]
        elif kind == "add":
            target = _get(tree, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(keys + ("bogus",)))] = draw(_odd())
            elif isinstance(target, list):
                target.append(draw(_odd()))
            else:
                parent[key] = draw(_odd())
        elif kind == "deep":
            marker = f"@@deep{n}@@"
            deep[marker] = _deep_text(draw(st.sampled_from(["list", "dict", "not", "description", "vmdesc"])),
                                      draw(st.sampled_from([10, 63, 65, 100, 255, 257, 900, 3000]),
                                           label="depth"))
            parent[key] = marker
        elif kind == "huge":
            parent[key] = draw(st.sampled_from(HUGE), label="huge")
        elif kind == "empty":  # a container or string of the same type, emptied
            parent[key] = type(parent[key])() if isinstance(parent[key], (list, dict, str)) \
                else []
        elif kind == "control":  # a name (or any string) with control characters
            parent[key] = draw(st.sampled_from(HOSTILE_NAMES), label="name")
        else:
            parent[key] = "\ud800" if draw(st.booleans()) else "a\udfffb"
    text = json.dumps(tree)
    for marker, replacement in deep.items():
        text = text.replace(json.dumps(marker), replacement)
    return text


# --------------------------------------------------------------------------- migration files


@lru_cache(maxsize=None)
def migration_seeds() -> tuple[bytes, ...]:
    """(small, full): a stream of a few devices cut from pc-min.mig, and pc-min.mig."""
    from conformance.migration import migfile

    full = PC_MIN.read_bytes()
    mf = migfile.read_migration(full)
    keep_ids = {"ram", "timer", "cpu_common", "apic", "fw_cfg", "i8259", "hpet", "dma"}
    parts = [full[:8]]
    kept_sections: set[tuple] = set()
    for record in mf.records:
        name = type(record).__name__
        start = record.offset
        length = migfile.record_length(record)
        if name == "Configuration":
            parts.append(full[start:start + length])
        elif name == "Section":
            label = migfile.label_of(mf, record)
            if label in keep_ids and not (label == "ram" and record.name == "PART"):
                parts.append(full[start:start + length])
                kept_sections.add(label)
    parts.append(b"\x00")
    root = json.loads(mf.vmdesc.vmdesc.text)
    root["devices"] = [d for d in root["devices"] if d["name"] in kept_sections]
    text = json.dumps(root).encode()
    small = b"".join(parts) + b"\x06" + struct.pack(">I", len(text)) + text
    return small, full


def _records(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, kind) of the top-level records of a seed (cached per seed)."""
    return _records_cached(data)


@lru_cache(maxsize=4)
def _records_cached(data: bytes):
    from conformance.migration import migfile

    mf = migfile.read_migration(data)
    out = [(r.offset, migfile.record_length(r), type(r).__name__) for r in mf.records
           if hasattr(r, "offset")]
    if mf.vmdesc is not None:
        out.append((mf.vmdesc.offset, 5 + mf.vmdesc.length, "Vmdesc"))
    return out


@st.composite
def hostile_migration_files(draw, mutations: tuple[str, ...] = _MIG_WEIGHTS):
    """A mutated real migration stream (bytes); see the module docstring.
    ``mutations``: the kinds drawn from (a focused run, or a test, narrows them)."""
    small, full = migration_seeds()
    data = full if draw(st.integers(0, 39), label="seed") == 39 else small
    records = _records(data)
    kind = draw(st.sampled_from(mutations), label="mutation")
    offset, length, rkind = records[draw(st.integers(0, len(records) - 1), label="record")]
    if kind == "truncate":
        near = draw(st.booleans())
        cut = (offset + draw(st.integers(-3, 12)) if near else
               draw(st.integers(0, len(data))))
        return data[:max(0, min(cut, len(data)))]
    if kind == "flip-header":
        at = min(offset + draw(st.integers(0, 24)), len(data) - 1)
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "be32":
        at = min(offset + draw(st.integers(1, 20)), len(data) - 4)
        value = draw(st.sampled_from([0, 1, 2, 5, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                      length, length + 1, max(0, length - 1)]))
        return data[:at] + struct.pack(">I", value) + data[at + 4:]
    if kind == "splice":
        how = draw(st.sampled_from(["delete", "duplicate", "swap", "foreign"]))
        rec = data[offset:offset + length]
        if how == "delete":
            return data[:offset] + data[offset + length:]
        if how == "duplicate":
            return data[:offset + length] + rec + data[offset + length:]
        if how == "foreign":
            o2, l2, _ = draw(st.sampled_from(_records(full if data is small else small)))
            other = full if data is small else small
            return data[:offset] + other[o2:o2 + l2] + data[offset:]
        o2, l2, _ = records[draw(st.integers(0, len(records) - 1))]
        if o2 < offset:
            o2, l2, offset, length = offset, length, o2, l2
        if o2 < offset + length:
            return data
        return (data[:offset] + data[o2:o2 + l2] + data[offset + length:o2]
                + data[offset:offset + length] + data[o2 + l2:])
    if kind == "idstr":
        return _renamed_section(draw, data, records)
    if kind == "vmdesc":
        at = data.rfind(b"\x06", 0, data.find(b'{"page_size"'))
        (n,) = struct.unpack(">I", data[at + 1:at + 5])
        text = draw(mutated_json(json.loads(data[at + 5:at + 5 + n])), label="vmdesc")
        raw = text.encode("utf-8", "surrogatepass")
        wrong = draw(st.sampled_from([0, 0, 0, 1, -1]))
        return data[:at + 1] + struct.pack(">I", max(0, len(raw) + wrong)) + raw + data[at + 5 + n:]
    # ram: flip bytes of the RAM records (the PART section of the full stream)
    part = next((r for r in _records(full) if r[1] > 100_000), None)
    at = part[0] + draw(st.integers(0, min(part[1], 4096) - 1)) if draw(st.booleans()) else \
        part[0] + draw(st.integers(0, part[1] - 1))
    return full[:at] + bytes([full[at] ^ draw(st.integers(1, 255))]) + full[at + 1:]


def _renamed_section(draw, data: bytes, records) -> bytes:
    """A FULL/START section's idstr replaced by a hostile name (the length byte follows):
    its vmdesc entry no longer matches, so it stays opaque with a note; half the time
    the stream is also cut inside that section's body (an incomplete file)."""
    sections = [r for r in records if r[2] == "Section" and data[r[0]] in (1, 4)]
    if not sections:
        return data
    offset, length, _ = sections[draw(st.integers(0, len(sections) - 1), label="section")]
    n = data[offset + 5]
    name = draw(st.sampled_from(HOSTILE_NAMES), label="idstr").encode("utf-8", "surrogatepass")
    if draw(st.booleans(), label="keep length"):
        name = (name + data[offset + 6:offset + 6 + n])[:n]  # same length: the rest intact
    name = name[:255] or b"\n"
    out = data[:offset + 5] + bytes([len(name)]) + name + data[offset + 6 + n:]
    if draw(st.booleans(), label="cut inside"):
        body = offset + 6 + len(name) + 8
        end = offset + length + len(name) - n
        out = out[:draw(st.integers(body, max(body, end - 1)), label="cut")]
    return out


# --------------------------------------------------------------------------- case files


@lru_cache(maxsize=None)
def case_seeds() -> tuple:
    """The JSON trees of the bundled example and golden case files (all but the few
    large ones, which take seconds per engine run: tests/test_hostile.py covers size)."""
    seeds = []
    for root in CASE_DIRS:
        if root.is_dir():
            for path in sorted(root.rglob("*.json")):
                if path.stat().st_size > 64 << 10:  # a 64 Ki-element state: seconds per run
                    continue
                try:
                    seeds.append(json.loads(path.read_text()))
                except ValueError:
                    continue
    return tuple(seeds)


@st.composite
def hostile_case_files(draw, kinds: tuple[str, ...] = CASE_TREE_MUTATIONS, seeds=None):
    """The bytes of a mutated case file; see the module docstring.  ``kinds``: the tree
    mutations drawn from; ``seeds``: the case trees mutated (default: every bundled
    example and golden case) - a focused run, or a test, narrows them."""
    seeds = seeds or case_seeds()
    tree = seeds[draw(st.integers(0, len(seeds) - 1), label="seed")]
    text = draw(mutated_json(tree, kinds=kinds), label="case")
    how = draw(st.sampled_from(CASE_BYTE_MUTATIONS), label="bytes")
    if how == "utf16":
        return text.encode("utf-16", "surrogatepass")
    if how == "latin1":
        return text.replace('"', '"\xe9', 1).encode("latin-1", "replace")
    raw = text.encode("utf-8", "surrogatepass")
    if how == "bad-byte":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + raw[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    if how == "cut":
        return raw[:draw(st.integers(0, len(raw)))]
    return raw


# --------------------------------------------------------------------------- the contract


class _Rss:
    """The block's peak resident memory, measured: the kernel's high-water mark
    (``VmHWM``) is reset through ``/proc/self/clear_refs`` ("5") before the block and
    read after it, against the resident size before it (``VmRSS``).  Both files stay
    open (a read is ~40 us).  ``available`` is False where Linux does not offer it."""

    def __init__(self) -> None:
        import os

        try:
            self.status = os.open("/proc/self/status", os.O_RDONLY)
            self.clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
            os.write(self.clear, b"5")
            self.available = self.read()[1] > 0
        except OSError:
            self.available = False

    def read(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in bytes."""
        import os

        text = os.pread(self.status, 8192, 0)
        rss = text.find(b"VmRSS:")
        hwm = text.find(b"VmHWM:")
        return (int(text[rss + 6:text.index(b"kB", rss)]) << 10,
                int(text[hwm + 6:text.index(b"kB", hwm)]) << 10)

    def reset(self) -> int:
        """Reset the high-water mark; the resident bytes now."""
        import os

        os.write(self.clear, b"5")
        return self.read()[0]


_RSS: list = []  # the process's _Rss, made on first use
#: the largest peak growth measured since the fuzz loop last cleared it (bytes)
PEAK = [0]


def _rss() -> _Rss | None:
    if not _RSS:
        _RSS.append(_Rss())
    return _RSS[0] if _RSS[0].available else None


class bounded:
    """Run a block under the time bound and the memory bound (RLIMIT_AS: the current
    address space + MEMORY_BOUND), and measure its peak resident memory (:class:`_Rss`):
    a block whose peak grows past MEMORY_BOUND breaks the contract even where the
    address-space limit cannot be set (or a mapping was not yet touched).

    The time is the process's CPU time (``time.process_time``): what the input costs,
    whatever else the shared machine runs (a 2-byte load was "slow" at 6.7 s of wall
    time while four other jobs shared the two cores).  SIGPROF stops a computation at
    twice the bound; a wall-clock SIGALRM at ``WALL_FACTOR`` times the bound stops a
    block that waits without computing (main thread only)."""

    def __init__(self, seconds: float = TIME_BOUND, memory: int | None = None) -> None:
        # the memory bound is read now (a test lowers MEMORY_BOUND)
        self.seconds, self.memory = seconds, MEMORY_BOUND if memory is None else memory

    def __enter__(self):
        self.started = time.monotonic()
        self.started_cpu = time.process_time()
        self.old_handlers = {}
        self.old_rlimit = None
        import threading

        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):
            def fire(signum, frame):
                raise _Timeout()

            for sig, timer, after in ((signal.SIGALRM, signal.ITIMER_REAL,
                                       self.seconds * WALL_FACTOR),
                                      (signal.SIGPROF, signal.ITIMER_PROF, self.seconds * 2)):
                self.old_handlers[sig] = (timer, signal.signal(sig, fire))
                signal.setitimer(timer, after)
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            with open("/proc/self/statm") as fh:
                vm = int(fh.read().split()[0]) * resource.getpagesize()
            want = vm + self.memory
            if soft == resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard >= want):
                resource.setrlimit(resource.RLIMIT_AS, (want, hard))
                self.old_rlimit = (soft, hard)
        except (ImportError, OSError, ValueError):
            pass
        rss = _rss()
        self.rss_before = rss.reset() if rss is not None else None
        return self

    def __exit__(self, exc_type, exc, tb):
        for sig, (timer, handler) in self.old_handlers.items():
            signal.setitimer(timer, 0)
            signal.signal(sig, handler)
        if self.old_rlimit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.old_rlimit)
        elapsed = time.monotonic() - self.started
        cpu = time.process_time() - self.started_cpu
        self.peak = 0
        if self.rss_before is not None:
            self.peak = max(0, _rss().read()[1] - self.rss_before)
            PEAK[0] = max(PEAK[0], self.peak)
        if exc_type is _Timeout:
            raise ContractViolation(f"hang: no result after {elapsed:.1f} s "
                                    f"({cpu:.1f} s CPU)") from None
        if exc_type is MemoryError:
            raise ContractViolation(f"blow-up: MemoryError past {self.memory >> 20} MB") from None
        if self.peak > self.memory and exc_type in (None, _Clean):
            raise ContractViolation(f"memory: the peak resident size grew by "
                                    f"{self.peak >> 20} MB (bound {self.memory >> 20} MB)")
        if exc_type is None and cpu > self.seconds:
            raise ContractViolation(f"slow: {cpu:.1f} s CPU, {elapsed:.1f} s wall "
                                    f"(bound {self.seconds} s CPU)")
        return False


def _clean(exc) -> str:
    text = str(exc)
    if not text or "\n" in text or not text.isprintable() or "Traceback" in text:
        raise ContractViolation(f"{type(exc).__name__} is not one printable line: {text[:300]!r}")
    return "clean"


def _violation(exc: BaseException) -> ContractViolation:
    import traceback

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-6))
    return ContractViolation(f"traceback: {type(exc).__name__}: {str(exc)[:300]}\n{tb}")


class _Clean(Exception):
    """An input rejected with a clean one-line error (the contract holds)."""


def _contained(action, seconds: float = TIME_BOUND, clean_errors: bool = True):
    """``action()`` under the bounds: its result; ``_Clean`` for a ConformanceError whose
    text is one printable line (when ``clean_errors``); ContractViolation for anything
    else that escapes."""
    from conformance.errors import ConformanceError

    with bounded(seconds):
        try:
            return action()
        except ConformanceError as exc:
            if not clean_errors:
                raise _violation(exc) from None
            _clean(exc)
            raise _Clean() from None
        except (ContractViolation, _Timeout, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the property: nothing else escapes
            raise _violation(exc) from None


# --------------------------------------------------------------------------- the CLI


#: what a line on stderr may start with: the one error line, a note, a load hazard
STDERR_PREFIXES = ("vmstate-conformance: ", "note: ", "hazard: ")
_SECTIONS_LINE = re.compile(r"0x[0-9a-f]+ |# ")  # decode --sections: a record, or the total
_CHECK_LINE = re.compile(r"(error|warning): |.*: passes vmstate_check \([a-z0-9.-]+\)$")


@lru_cache(maxsize=None)
def _parser(command: str | None):
    return _BUILD_PARSER[0](command)


_BUILD_PARSER: list = []


def _cached_parser(command: str | None = None, *, full: bool = False):
    return _BUILD_PARSER[0](command, full=True) if full else _parser(command)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr).  The command's parser
    is built once per process (argparse and gettext cost 4/5 of a ``check``), the
    rest of main() runs as it does for a user."""
    import contextlib
    import io

    from conformance import cli

    if not _BUILD_PARSER:
        _BUILD_PARSER.append(cli.build_parser)
    out, err = io.StringIO(), io.StringIO()
    cli.build_parser = _cached_parser
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(argv)
    finally:
        cli.build_parser = _BUILD_PARSER[0]
    return rc, out.getvalue(), err.getvalue()


def check_output(argv: list[str], rc: int, out: str, err: str, stdout: str) -> str:
    """The CLI's side of the contract: exit 0 or 1 (these command lines are
    valid: 2 would blame an option never given, 3 is a bug); every line printed, on
    stdout and stderr, printable; every stderr line an error, a note or a hazard, and
    one error line exactly when a command other than ``run`` fails; stdout in its
    command's shape (``stdout``: "hex", "json", "sections", "verify:PATH", "check" or
    "lines"), so that a name with a newline, which splits a line, shows."""
    what = " ".join(argv)
    if "internal error: MemoryError" in out + err:  # main() turned the blow-up into a line
        raise ContractViolation(f"blow-up: {what}: MemoryError past {MEMORY_BOUND >> 20} MB")
    if rc not in (0, 1):
        raise ContractViolation(f"{what}: exit {rc}: {err.strip()[:300]!r}")
    for stream, text in (("stdout", out), ("stderr", err)):
        if "internal error" in text or "Traceback" in text:
            raise ContractViolation(f"{what}: {stream}: {text.strip()[:300]!r}")
        for line in text.splitlines():
            if not line.isprintable():
                raise ContractViolation(f"{what}: {stream} line not printable: {line[:300]!r}")
    lines = err.splitlines()
    for line in lines:
        if not line.startswith(STDERR_PREFIXES):
            raise ContractViolation(f"{what}: stderr line is no error, note or hazard (a "
                                    f"message split?): {line[:300]!r} in {err[:300]!r}")
    errors = sum(line.startswith(STDERR_PREFIXES[0]) for line in lines)
    body = out.splitlines()
    # run reports failures on stdout; check its findings (exit 1 for an error finding)
    findings = argv[0] == "check" and any(line.startswith("error: ") for line in body)
    if argv[0] != "run" and errors != (1 if rc and not findings else 0):
        raise ContractViolation(f"{what}: exit {rc} with {errors} error lines: {err[:300]!r}")
    if rc == 0 and stdout == "hex" and not (len(body) == 1 and all(
            c in "0123456789abcdef" for c in body[0])):
        raise ContractViolation(f"{what}: stdout is not one hex line: {out[:300]!r}")
    if rc == 0 and stdout == "json":
        try:
            json.loads(out)
        except ValueError:
            raise ContractViolation(f"{what}: stdout is not JSON: {out[:300]!r}") from None
    shapes = {"sections": lambda line: _SECTIONS_LINE.match(line),
              "check": lambda line: _CHECK_LINE.match(line)}
    if stdout.startswith("verify:"):
        prefixes = (stdout[7:] + ": ", "  opaque: ")
        shapes[stdout] = lambda line: line.startswith(prefixes)
    if stdout in shapes:
        for line in body:
            if not shapes[stdout](line):
                raise ContractViolation(f"{what}: stdout line out of shape (a message "
                                        f"split?): {line[:300]!r}")
    return "clean" if rc else "ok"


def check_command(argv: list[str], stdout: str, seconds: float = TIME_BOUND) -> str:
    """One CLI command under the bounds, its output held to :func:`check_output`."""
    rc, out, err = _contained(lambda: run_cli(argv), seconds, clean_errors=False)
    return check_output(argv, rc, out, err, stdout)


@lru_cache(maxsize=None)
def _scratch() -> Path:
    """A directory for the files the CLI reads (one per process, removed at exit)."""
    import atexit
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="vmstate-fuzz-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _input_file(data: bytes, suffix: str) -> str:
    path = _scratch() / f"input{suffix}"
    path.write_bytes(data)
    return str(path)


def check_migration_input(data: bytes) -> str:
    """read -> (if complete) re-encode byte-exact check, list, JSON and analyze output."""
    from conformance.errors import ConformanceError
    from conformance.migration import migfile
    from conformance.migration.writer import CompareSink, encode

    def decode_everything() -> str:
        mf = migfile.read_migration(data)
        migfile.list_records(mf)
        if mf.incomplete:
            return _clean(migfile.FormatError(mf.incomplete))
        sink = CompareSink(data)
        encode(mf, sink)
        sink.finish()
        json.dumps(migfile.state_json(mf))
        if mf.vmdesc is not None:
            migfile.render_json(migfile.analyze_desc(mf))
            try:
                migfile.render_json(migfile.analyze_state(mf))
            except ConformanceError as exc:
                _clean(exc)
        return "ok"

    try:
        result = _contained(decode_everything)
    except _Clean:
        result = "clean"
    # what the CLI prints of it: the record list and its notes, verify's summary and
    # notes, or the one error line (names from the input escaped)
    path = _input_file(data, ".mig")
    if data[:4] == b"QEVM":  # without the magic, decode reads a case file (and says so)
        check_command(["decode", path, "--sections"], "sections")
    check_command(["verify", path], f"verify:{path}")
    return result


def check_case_input(data: bytes) -> str:
    """parse -> vmstate_check (the API), then the CLI's ``check`` and, for a case that
    parses, ``encode``, ``decode`` (of the encoded stream) and ``run`` (both engines,
    the case's first variant), every output held to :func:`check_output`."""
    from conformance.cases.casefile import parse_case_bytes
    from conformance.model.check import check

    def parse():
        case = parse_case_bytes(data, "fuzz.json")
        check(case.description, case.variants[0])
        return case

    path = _input_file(data, ".json")
    try:
        case = _contained(parse)  # reading the input: the 5 s bound
    except _Clean:
        check_command(["check", path], "check")  # the same error, as the CLI prints it
        return "clean"
    check_command(["check", path], "check")
    rc, out, err = _contained(lambda: run_cli(["encode", path]), clean_errors=False)
    check_output(["encode", path], rc, out, err, "hex")
    stream = out.strip() + "00" if rc == 0 else "00"
    if len(stream) > 1 << 16:  # as a user would: no argument may exceed 128 KiB (Linux)
        stream = _input_file(stream.encode(), ".hex")
    check_command(["decode", path, stream], "json", ENGINE_BOUND)
    # running it: the state-values limit bounds the work; a case at the limit takes
    # ~2 s in the reference engine on an idle machine, ENGINE_BOUND catches hangs.
    # Its first variant only, as encode and decode (every variant: 4x the time)
    return check_command(["run", path, "--quiet", "--engine", "reference", "--engine",
                          "optimized", "--variant", case.variants[0]], "lines", ENGINE_BOUND)


def check_engines_input(desc, data: bytes, dest, variant: str) -> str:
    """Both engines load a mutated stream: no exception, and equal outcomes (kind, ret,
    error offset and path, state, hazards, ledger, file error)."""
    from conformance.engines import optimized, reference

    a, b = _contained(lambda: (reference.load(desc, data, dest, variant),
                               optimized.load(desc, data, dest, variant)),
                      clean_errors=False)
    if a != b:
        from strategies.properties import outcome_diff

        raise ContractViolation(f"engines disagree: {outcome_diff(a, b)}")
    return "ok" if a.ok else "clean"


@st.composite
def hostile_engine_inputs(draw):
    """(description, mutated stream, destination, variant) for the engines target."""
    from conformance.names import VARIANT_NAMES
    from strategies.descriptions import descriptions
    from strategies.streams import mutated_streams
    from strategies.values import destinations

    variant = draw(st.sampled_from(VARIANT_NAMES))
    desc = draw(descriptions(variant), label="description")
    mutation = draw(mutated_streams(desc, variant), label="mutation")
    dest = draw(destinations(desc, mutation.original.state, variant), label="destination")
    if draw(st.booleans(), label="mutate destination"):
        dest = _mutated_state(draw, dest)
    return desc, mutation.data, dest, variant


def _mutated_state(draw, state):
    """``state`` with one to three integer members set to edge values (the sizes and
    counters a load reads from its destination before it fills them: a negative
    bitmap size, a huge VBUFFER size, an int32 at its bounds)."""
    from conformance.model.state import fresh_copy

    state = fresh_copy(state)
    ints, todo = [], [((), state)]
    while todo:
        path, node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, (dict, list)):
                todo.append((path + (key,), value))
            elif isinstance(value, int) and not isinstance(value, bool):
                ints.append(path + (key,))
    if not ints:
        return state
    ints.sort(key=str)
    for _ in range(draw(st.integers(1, min(3, len(ints))), label="members")):
        path = ints[draw(st.integers(0, len(ints) - 1), label="member")]
        _get(state, path[:-1])[path[-1]] = draw(st.sampled_from(DEST_INTS), label="edge value")
    return state


#: target -> (strategy, check(input) -> "ok" | "clean", reproducer suffix)
TARGETS = {
    "mig": (hostile_migration_files, check_migration_input, ".mig"),
    "case": (hostile_case_files, check_case_input, ".json"),
    "engines": (hostile_engine_inputs, lambda args: check_engines_input(*args), ".json"),
}


__all__ = ["ContractViolation", "TARGETS", "bounded", "case_seeds", "check_case_input",
           "check_engines_input", "check_migration_input", "hostile_case_files",
           "hostile_engine_inputs", "hostile_migration_files", "migration_seeds",
           "mutated_json"]
