"""Hostile inputs (issue 12): structure-aware mutations of real migration streams and of
case files, and the contract every input must meet.

Strategies (each shrinks toward the unmutated seed and the first mutation kind):

* :func:`hostile_migration_files` - pc-min.mig (QEMU 7.2) and a small stream cut from it,
  mutated by: truncation (at or near a record boundary, or anywhere), a byte flip in a
  record header, a be32 (section id, instance, version, vmdesc length) set to an edge
  value, splicing (a record deleted, duplicated or swapped), the vmdesc JSON mutated as a
  tree (types, missing keys, huge numbers, deep nesting, lone surrogates), RAM record
  bytes flipped;
* :func:`hostile_case_files` - the bundled example and golden case files mutated as JSON
  trees (the same tree mutations), then as bytes (encodings, invalid UTF-8, BOM, cut).

The contract (:func:`check_migration_input`, :func:`check_case_input`,
:func:`check_engines_input`): the input gives a result or a clean error - a
``ConformanceError`` whose text is one printable line - within :data:`TIME_BOUND`
seconds of CPU and :data:`MEMORY_BOUND` bytes of new address space; anything else raises
:class:`ContractViolation`.  Each check returns ``"ok"`` or ``"clean"``.
"""

from __future__ import annotations

import json
import signal
import struct
import time
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
PC_MIN = ROOT / "tests" / "data" / "qemu-7.2" / "pc-min.mig"
CASE_DIRS = (ROOT / "conformance" / "data" / "examples", ROOT / "golden" / "cases")

TIME_BOUND = 5.0  # seconds of CPU per input (issue 12: under 5 s)
ENGINE_BOUND = 30.0  # seconds per engine run of a parsed case (a hang, not a slow host)
WALL_FACTOR = 6  # a block waiting (not computing) this many times its bound is a hang
MEMORY_BOUND = 500 << 20  # bytes of address space per input (issue 12: under 500 MB)

#: values a hostile JSON tree puts where something else belongs
ODD_VALUES = ([], {}, "", "x", 0, -1, 1, 255, 256, 2**31, 2**32, 2**63, 2**64, 10**30, -2**63,
              1.5, None, True, False, "\ud800", "a" * 300, [1, 2], {"a": 1}, "ARRAY", "uint8",
              "struct")
HUGE = (2**16 + 1, 2**20, 2**31 - 1, 2**32, 2**32 + 1, 2**64, 10**7)
TREE_MUTATIONS = ("replace", "delete", "add", "deep", "huge", "surrogate")
MIG_MUTATIONS = ("truncate", "flip-header", "be32", "splice", "vmdesc", "ram", "flip")
#: how often each is drawn: "ram" needs the full 350 KB stream (10x slower to decode)
_MIG_WEIGHTS = ("truncate",) * 3 + ("flip-header",) * 2 + ("be32",) * 2 + ("splice",) * 2 \
    + ("vmdesc",) * 3 + ("flip",) * 2 + ("ram",)
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


@st.composite
def mutated_json(draw, tree, *, keys=("num", "size", "array_len", "version_id", "Fields",
                                      "fields", "flags", "info", "type", "name", "exists",
                                      "needed", "Description", "struct", "devices")):
    """The JSON text of ``tree`` with one (or a few) tree mutations applied."""
    import copy

    tree = copy.deepcopy(tree)
    deep: dict[str, str] = {}
    for n in range(draw(st.integers(1, 3), label="mutations")):
        paths = _paths(tree)
        path = paths[draw(st.integers(0, len(paths) - 1), label="node")]
        kind = draw(st.sampled_from(TREE_MUTATIONS), label="tree mutation")
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
def hostile_migration_files(draw):
    """A mutated real migration stream (bytes); see the module docstring."""
    small, full = migration_seeds()
    data = full if draw(st.integers(0, 39), label="seed") == 39 else small
    records = _records(data)
    kind = draw(st.sampled_from(_MIG_WEIGHTS), label="mutation")
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
def hostile_case_files(draw):
    """The bytes of a mutated case file; see the module docstring."""
    seeds = case_seeds()
    tree = seeds[draw(st.integers(0, len(seeds) - 1), label="seed")]
    text = draw(mutated_json(tree), label="case")
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


class bounded:
    """Run a block under the time bound and the memory bound (RLIMIT_AS: the current
    address space + MEMORY_BOUND).

    The time is the process's CPU time (``time.process_time``): what the input costs,
    whatever else the shared machine runs (a 2-byte load was "slow" at 6.7 s of wall
    time while four other jobs shared the two cores).  SIGPROF stops a computation at
    twice the bound; a wall-clock SIGALRM at ``WALL_FACTOR`` times the bound stops a
    block that waits without computing (main thread only)."""

    def __init__(self, seconds: float = TIME_BOUND, memory: int = MEMORY_BOUND) -> None:
        self.seconds, self.memory = seconds, memory

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
        if exc_type is _Timeout:
            raise ContractViolation(f"hang: no result after {elapsed:.1f} s "
                                    f"({cpu:.1f} s CPU)") from None
        if exc_type is MemoryError:
            raise ContractViolation(f"blow-up: MemoryError past {self.memory >> 20} MB") from None
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
        return _contained(decode_everything)
    except _Clean:
        return "clean"


def check_case_input(data: bytes) -> str:
    """parse -> vmstate_check -> run the case on both engines (first variant)."""
    from conformance.cases.casefile import parse_case_bytes, run_case
    from conformance.model.check import check

    def parse():
        case = parse_case_bytes(data, "fuzz.json")
        variant = case.variants[0] if case.variants else "legacy"
        check(case.description, variant)
        return case, variant

    try:
        case, variant = _contained(parse)  # reading the input: the 5 s bound
        for engine in ("optimized", "reference"):
            # running it: the state-values limit bounds the work; a case at the limit
            # takes ~2 s in the reference engine on an idle machine, ENGINE_BOUND
            # catches hangs
            _contained(lambda engine=engine: run_case(case, variant, engine), ENGINE_BOUND)
    except _Clean:
        return "clean"
    return "ok"


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
    return desc, mutation.data, dest, variant


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
