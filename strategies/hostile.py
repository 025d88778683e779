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

Each strategy makes its choices through a *pick* (``_DrawPick``: Hypothesis draws;
``_RandomPick``: a seeded ``random.Random``), so the fuzz loop can make many inputs per
Hypothesis example (:func:`havoc_batches`, :func:`hostile_engine_batches`).

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
import os
import re
import signal
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple

from hypothesis import strategies as st

from conformance.model import limits as _limits
from strategies.mutations import (  # noqa: F401 - the mutations, re-exported
    _MIG_WEIGHTS,
    CASE_BYTE_MUTATIONS,
    CASE_DIRS,
    CASE_TREE_MUTATIONS,
    HOSTILE_NAMES,
    HUGE,
    JSON_KEYS,
    MIG_MUTATIONS,
    ODD_VALUES,
    PC_MIN,
    ROOT,
    TREE_MUTATIONS,
    _big_buffers,
    _case_file,
    _deep_text,
    _DrawPick,
    _get,
    _migration_file,
    _mutated_json,
    _odd,
    _paths,
    _RandomPick,
    _records,
    _records_cached,
    _renamed_section,
    case_seeds,
    hostile_case_files,
    hostile_migration_files,
    migration_seeds,
    mutated_json,
)

TIME_BOUND = _limits.INPUT_SECONDS_BOUND  # seconds of CPU per input (the error contract: under 5 s)
ENGINE_BOUND = 30.0  # seconds per engine run of a parsed case (a hang, not a slow host)
WALL_FACTOR = 6  # a block waiting (not computing) this many times its bound is a hang
MEMORY_BOUND = _limits.INPUT_MEMORY_BOUND  # bytes per input (the error contract: under 500 MB)

#: edge values for the integer members of a destination state (sizes and counters the
#: load reads before it fills them; a negative bitmap size)
DEST_INTS = (0, 1, -1, -8, -64, -601, 255, 256, 65535, 65536, 2**31 - 1, -2**31,
             2**32 - 1, 2**63 - 1)


class ContractViolation(AssertionError):
    """An input escaped the contract: a traceback, a hang, a blow-up or a dirty error."""


class _Timeout(BaseException):  # BaseException: library ``except Exception`` can't eat it
    pass


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


def _scratch() -> Path:
    """A directory for the files the CLI reads, one per process: ``fuzz --jobs`` forks
    workers, which must not share the parent's (removed at exit)."""
    return _scratch_of(os.getpid())


@lru_cache(maxsize=None)
def _scratch_of(pid: int) -> Path:
    import atexit
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=f"vmstate-fuzz-{pid}-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _input_file(data: bytes, suffix: str) -> str:
    path = _scratch() / f"input{suffix}"
    path.write_bytes(data)
    return str(path)


def check_migration_input(data: bytes) -> str:
    """read -> (if complete) list, JSON and analyze output (the API), then what the CLI
    prints of it: ``decode --sections`` and ``verify`` (which re-encodes and compares)."""
    from conformance.errors import ConformanceError
    from conformance.migration import migfile, reader

    parsed: dict = {}

    def decode_everything() -> str:
        mf = parsed[False] = reader.read_migration(data)
        migfile.list_records(mf)
        if mf.incomplete:
            return _clean(migfile.FormatError(mf.incomplete))
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
    # notes, or the one error line (names from the input escaped).  The commands parse
    # the same bytes the same way: they are given the parse above (a 350 KB stream
    # takes a tenth of a second to read; the fuzz reads it once, not three times)
    path = _input_file(data, ".mig")
    real = reader.read_migration

    def read_once(source, *args, **kwargs):
        plain = not args and kwargs.get("vmdesc") is None and kwargs.get("decode_state", True)
        if plain and False in parsed and bytes(source) == data:
            return parsed[False]
        return real(source, *args, **kwargs)

    reader.read_migration = read_once
    try:
        if data[:4] == b"QEVM":  # without the magic, decode reads a case file (and says so)
            check_command(["decode", path, "--sections"], "sections")
        check_command(["verify", path], f"verify:{path}")
    finally:
        reader.read_migration = real
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


#: engine inputs per drawn description (the fuzz's engines target): drawing a
#: description and its stream costs several times what loading one input costs
ENGINE_BATCH = 8


@st.composite
def hostile_engine_batches(draw, size: int = ENGINE_BATCH):
    """``size`` engine inputs (description, mutated stream, destination, variant), as
    :func:`hostile_engine_inputs` draws one: one drawn description, source stream and
    destination, and ``size`` mutations of them (each stream mutated; half the
    destinations with edge values set)."""
    from conformance.names import VARIANT_NAMES
    from strategies.descriptions import descriptions
    from strategies.streams import mutation_of, streams
    from strategies.values import destinations

    variant = draw(st.sampled_from(VARIANT_NAMES))
    desc = draw(descriptions(variant), label="description")
    stream = draw(streams(desc, variant), label="stream")
    dest = draw(destinations(desc, stream.state, variant), label="destination")
    inputs = []
    for _ in range(size):
        data = mutation_of(draw, stream).data
        inputs.append((desc, data, _mutated_state(draw, dest) if draw(st.booleans()) else dest,
                       variant))
    return inputs


def check_engine_args(args) -> str:
    """:func:`check_engines_input` on one (description, stream, destination, variant)."""
    return check_engines_input(*args)


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


#: inputs per Hypothesis example in the fuzz's migration and case batches
HAVOC_BATCH = 8


@st.composite
def havoc_batches(draw, make, size: int = HAVOC_BATCH) -> list:
    """``size`` inputs made by ``make(pick)`` with one seeded ``random.Random``: the
    same mutations as the single-input strategy, without a Hypothesis draw per choice
    (the draws cost more than checking a migration or case input).  Hypothesis draws
    the seed only, so it cannot shrink what the seed makes: the fuzz minimises a
    failing input itself (conformance.cli.fuzz)."""
    import random

    pick = _RandomPick(random.Random(draw(st.integers(0, 2**64 - 1), label="havoc seed")))
    return [make(pick) for _ in range(size)]


def check_each(check, batch_size: int = HAVOC_BATCH):
    """``check`` over a batch of ``batch_size`` inputs (its first ``limit``, when given);
    a violation names the input it was found on (``.input``)."""
    def run(batch, limit: int | None = None) -> list[str]:
        results = []
        for value in batch[:limit]:
            try:
                results.append(check(value))
            except ContractViolation as exc:
                exc.input = value
                raise
        return results

    run.batch_size = batch_size
    return run


class Target(NamedTuple):
    """A fuzz target: single inputs (``strategy`` / ``check``: the tests, focused runs),
    the batches ``vmstate-conformance fuzz`` runs (``batches`` / ``check_batch``), and
    the suffix of its reproducer files."""

    strategy: Callable
    check: Callable[..., str]
    suffix: str
    batches: Callable
    check_batch: Callable[..., list]


TARGETS = {
    "mig": Target(hostile_migration_files, check_migration_input, ".mig",
                  lambda: havoc_batches(_migration_file), check_each(check_migration_input)),
    "case": Target(hostile_case_files, check_case_input, ".json",
                   lambda: havoc_batches(_case_file), check_each(check_case_input)),
    "engines": Target(hostile_engine_inputs, check_engine_args, ".json",
                      hostile_engine_batches, check_each(check_engine_args, ENGINE_BATCH)),
}


__all__ = ["ContractViolation", "TARGETS", "Target", "bounded", "case_seeds", "check_case_input",
           "check_each", "check_engine_args", "check_engines_input", "check_migration_input",
           "havoc_batches", "hostile_case_files", "hostile_engine_batches",
           "hostile_engine_inputs", "hostile_migration_files", "migration_seeds", "mutated_json"]
