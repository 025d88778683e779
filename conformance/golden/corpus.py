"""The golden stream corpus: pinned bytes, loaded states and vmdesc texts per variant.

``golden/FORMAT.md`` documents the layout.  In short: every case file under the corpus
sources (:data:`SOURCES`) is run under every variant; each distinct byte sequence a case
saves to is pinned once as ``golden/streams/<case-id>.<hash>.bin`` together with an
annotated hex view (``.hex.txt``), the loaded states (``.state.json``) and, per distinct
vmdesc text, ``.vmdesc.json``.  ``golden/manifest.json`` maps case -> variant -> files
and ``golden/divergences.json`` lists where the variants disagree and why.

Two operations:

* :func:`verify` never writes.  It reruns every case x variant x available engine and
  compares with the pinned files; a stream mismatch is reported as a field-level diff
  of the annotated hex view.
* :func:`regen` writes only what the reference engine produces, atomically (temporary
  file + rename), only files whose content changes, and prints what was added, changed
  and removed.  It refuses to run when ``CI`` is set unless forced.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import inspect
import json
import os
import re
import struct
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from conformance.cases import Case, CaseError, load_case_file, load_python_cases
from conformance.model import variants as _variants
from conformance.model.flags import F
from conformance.model.infos import from_unsigned
from conformance.model.state import to_plain

FORMAT_ID = "vmstate-conformance/golden/1"
STATE_FORMAT_ID = "vmstate-conformance/golden-state/1"
GOLDEN = "golden"
MANIFEST = "manifest.json"
DIVERGENCES = "divergences.json"
STREAMS = "streams"
#: (id base, directory) pairs, relative to the repository root.  A case's id is its
#: path relative to the id base, without the suffix (plus ``#k`` for the k-th case of
#: a Python module that defines several).
SOURCES = (
    ("golden/cases", "golden/cases"),
    ("tests/cases", "tests/cases"),
    ("conformance/data", "conformance/data/examples"),
)
VARIANTS = tuple(_variants.VARIANTS)
DOCS = "docs/variants.md"
HASH_LEN = 8
#: annotated views show at most this many bytes of one field (the .bin has them all)
HEX_SHOW = 32
#: runs of at least this many identical array elements collapse to one line
COLLAPSE_MIN = 8


class GoldenError(Exception):
    """A malformed golden file or a refused operation: one line, naming the file."""


# ---------------------------------------------------------------------------------------
# Small helpers


def find_root(start: str | Path | None = None) -> Path:
    """The repository root: the nearest ancestor of ``start`` (default: the current
    directory) holding ``golden/manifest.json`` or ``golden/cases``, else the checkout
    this package lives in."""
    here = Path(start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if (cand / GOLDEN / MANIFEST).is_file() or (cand / GOLDEN / "cases").is_dir():
            return cand
    return Path(__file__).resolve().parent.parent.parent


def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_LEN]


def dumps(obj: Any) -> str:
    """Deterministic JSON: 2-space indentation, lists of scalars on one line."""
    return _dumps(obj, 0) + "\n"


def _dumps(obj: Any, level: int) -> str:
    pad = "  " * (level + 1)
    end = "  " * level
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {_dumps(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(pad + _dumps(v, level + 1) for v in obj) + "\n" + end + "]"
    return json.dumps(obj)


def atomic_write(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file and a rename; a file that
    already holds exactly ``data`` is left alone (its mtime too).  True if written."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def _jpath(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(key)):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(str(key))}]"


# ---------------------------------------------------------------------------------------
# Discovery


@attrs.frozen
class CaseRef:
    id: str
    file: str  # repository-relative, POSIX
    index: int | None
    case: Case

    @property
    def stem(self) -> str:
        """streams/<stem>.<hash>.*: the id with '#k' spelled '-k'."""
        return self.id.replace("#", "-")


def discover(root: Path) -> tuple[list[CaseRef], list[str]]:
    """Every case of the corpus sources, and one-line errors for files that do not load."""
    refs: list[CaseRef] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for base, directory in SOURCES:
        top = root / directory
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if path.suffix not in (".json", ".py") or path.name.startswith(("_", ".")):
                continue
            if any(part.startswith(("_", ".")) for part in path.relative_to(top).parts[:-1]):
                continue
            rel = path.relative_to(root).as_posix()
            cid = path.relative_to(root / base).with_suffix("").as_posix()
            try:
                if path.suffix == ".py":
                    cases = _load_python_quietly(path)
                    if not cases:
                        raise CaseError("$", "the module defines no CASES", rel)
                else:
                    cases = [load_case_file(path)]
            except CaseError as exc:
                errors.append(str(exc).replace(str(path), rel))
                continue
            except Exception as exc:  # a Python case module that does not import
                errors.append(f"{rel}: cannot load: {type(exc).__name__}: {exc}")
                continue
            for k, case in enumerate(cases):
                one = cid if len(cases) == 1 else f"{cid}#{k}"
                if one in seen:
                    errors.append(f"{rel}: case id {one!r} is also used by {seen[one]}")
                    continue
                seen[one] = rel
                refs.append(CaseRef(one, rel, None if len(cases) == 1 else k, case))
    return refs, errors


def _load_python_quietly(path: Path) -> list:
    """A Python case module, imported without writing __pycache__ next to it (verify
    never writes, not even bytecode into golden/cases)."""
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return load_python_cases(path)
    finally:
        sys.dont_write_bytecode = saved


def select(refs: Iterable[CaseRef], pattern: str | None) -> list[CaseRef]:
    """Cases whose id, file or name matches ``pattern`` (fnmatch; a pattern without
    wildcards matches as a substring)."""
    if not pattern:
        return list(refs)
    pat = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return [r for r in refs
            if fnmatch.fnmatchcase(r.id, pat) or fnmatch.fnmatchcase(r.file, pat)
            or fnmatch.fnmatchcase(r.case.name, pat)]


# ---------------------------------------------------------------------------------------
# Observing a case: what an engine does with it under one variant


@attrs.frozen
class Observation:
    variant: str
    engine: str
    save: Any  # Outcome | None
    load: Any  # Outcome | None
    crash: str | None = None  # the engine raised instead of returning an Outcome
    spans: list | None = None  # the annotation, when the save was recorded


def observe(case: Case, variant: str, engine: str = "reference",
            record: bool = False) -> Observation:
    """Save the case's source (with vmdesc) and load it (or its load_input) back.
    ``record``: the reference save is run by the annotating recorder (same outcome)."""
    from conformance.engines import get as get_engine

    eng = get_engine(engine)
    spans = None
    try:
        if record and engine == "reference":
            saved, spans = _record_save(case.description, case.source, variant, vmdesc=True)
        else:
            saved = eng.save(case.description, case.source, variant, vmdesc=True)
        loaded = None
        if case.load_input is not None or saved.ok:
            data = case.load_input if case.load_input is not None else saved.data + case.trailer
            loaded = eng.load(case.description, data, case.dest_state(), variant,
                              version_id=case.load_version)
    except Exception as exc:
        return Observation(variant, engine, None, None, f"{type(exc).__name__}: {exc}")
    return Observation(variant, engine, saved, loaded, None, spans if saved.ok else None)


def save_summary(outcome) -> dict:
    """What the manifest pins of a save (the bytes themselves go to a .bin file)."""
    out: dict[str, Any] = {"kind": outcome.kind, "bytes": len(outcome.data)}
    if outcome.kind != "ok":
        out.update(message=outcome.message, path=outcome.path, offset=outcome.offset)
        if outcome.hazards:
            out["hazards"] = [f"{h.kind} at {h.path}" for h in outcome.hazards]
    return out


def load_record(outcome) -> dict:
    """What a .state.json pins of a load."""
    out: dict[str, Any] = {"kind": outcome.kind, "consumed": len(outcome.data)}
    if outcome.kind != "ok":
        out.update(message=outcome.message, path=outcome.path, offset=outcome.offset)
    if outcome.file_error:
        out["file_error"] = outcome.file_error
    out["hazards"] = [f"{h.kind} at {h.path}" for h in outcome.hazards]
    out["ledger"] = [a.to_json() for a in outcome.ledger]
    out["state"] = to_plain(outcome.state)
    return out


# ---------------------------------------------------------------------------------------
# Annotation: which field wrote which bytes


@attrs.frozen
class Span:
    offset: int
    length: int
    path: str
    value: str = ""
    info: str | None = attrs.field(default=None, eq=False)  # decodes other bytes of it


def annotate(desc, state, variant: str) -> list[Span]:
    """Per-field byte spans of the reference save, tiling every byte.

    The golden view needs each byte attributed to exactly one field, including the
    bytes the core and the compound infos write themselves (pointer markers, subsection
    header parts, QTAILQ/QLIST link bytes, GTREE node counts and keys, GByteArray
    lengths, bitmap words), so that a diff can name the byte that changed.
    ``conformance.golden.annotate.annotate`` gives element spans (enclosing and overlapping
    for compound infos, headers as one framing span); tests/test_golden.py checks the
    two agree on every element of every pinned stream."""
    return _record_save(desc, state, variant)[1]


def _short_hex(data: bytes) -> str:
    if len(data) <= HEX_SHOW:
        return data.hex()
    return data[:HEX_SHOW].hex() + f"…({len(data)} bytes)"


class _Frame:
    __slots__ = ("kind", "path", "field", "info", "elem", "links")

    def __init__(self, kind, path, field=None, info=None) -> None:
        self.kind = kind
        self.path = path
        self.field = field
        self.info = info
        self.elem = None
        self.links = 0


class _Recorder:
    """Attributes each write of the reference engine to the innermost field frame."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.spans: list[Span] = []
        self.busy = False

    def note(self, start: int, data: bytes, call: str) -> None:
        frame = self.stack[-1] if self.stack else None
        path, value = self._label(frame, data, call)
        info = None
        if frame is not None and frame.kind == "info" and path == frame.path:
            info = frame.info.name
        self.spans.append(Span(start, len(data), path, value, info))

    def _label(self, frame, data: bytes, call: str) -> tuple[str, str]:
        if frame is None:
            return "?", ""
        if frame.kind == "field":  # written by the core itself: a pointer marker
            where = frame.elem or frame.path
            if call == "byte":
                return f"{where}#marker", _marker_value(data)
            return f"{where}#core", ""
        if frame.kind == "subsections":
            if call == "byte" and data == b"\x05" and frame.links == 0:
                frame.links = 1
                return f"{frame.path}/@?#subsection", "QEMU_VM_SUBSECTION"
            if call == "byte" and frame.links == 1:
                frame.links = 2
                return f"{frame.path}/@?#len", str(data[0])
            if call == "buffer" and frame.links == 2:
                frame.links = 3
                name = data.decode("latin-1")
                for back in (1, 2):  # name the marker and the length byte now
                    s = self.spans[-back]
                    self.spans[-back] = attrs.evolve(s, path=s.path.replace("@?", "@" + name))
                return f"{frame.path}/@{name}#idstr", json.dumps(name)
            if call == "be32" and frame.links == 3:
                frame.links = 0
                name = self.spans[-1].path.rsplit("/@", 1)[1].split("#")[0]
                return f"{frame.path}/@{name}#version_id", str(int.from_bytes(data, "big"))
            return f"{frame.path}#subsections", ""
        # an info's put()
        info = frame.info
        if info is None:
            return frame.path, _short_hex(data)
        kind = info.kind
        path = frame.path
        if kind in ("qtailq", "qlist"):
            if data == b"\x00":
                return f"{path}#end", "end of list"
            frame.links += 1
            return f"{path}[{frame.links - 1}]#link", "another element" + (
                f" (0x{data.hex()})" if data != b"\x01" else "")
        if kind == "gtree":
            if call == "be32":
                return f"{path}#nnodes", str(int.from_bytes(data, "big"))
            if call == "byte":
                if data == b"\x00":
                    return f"{path}#end", "end of tree"
                frame.links += 1
                return f"{path}[{frame.links - 1}]#link", "another node"
            return f"{path}[{frame.links - 1}].key", str(int.from_bytes(data, "big"))
        if kind == "gbytearray":
            if call == "be32":
                return f"{path}#len", str(int.from_bytes(data, "big"))
            return path, _short_hex(data)
        if kind == "capability":
            if call == "byte":
                return f"{path}#len", str(data[0])
            return path, json.dumps(data.decode("latin-1"))
        if kind == "bitmap":
            frame.links += 1
            return f"{path}#word{frame.links - 1}", f"0x{int.from_bytes(data, 'big'):016x}"
        return path, decode_value(info, data)


def _marker_value(data: bytes) -> str:
    return {b"\x30": "NULL (0x30)", b"\x31": "VALID (0x31)"}.get(
        data, f"0x{data.hex()} (not a marker value)")


def decode_value(info, data: bytes) -> str:
    """A leaf value as the annotated view shows it."""
    kind = info.kind
    if kind == "bool":
        return {b"\x00": "false", b"\x01": "true"}.get(data, f"true (0x{data.hex()})")
    if kind in ("int", "equal", "le", "timer") and len(data) == info.width:
        value = from_unsigned(info, int.from_bytes(data, "big"))
        if kind == "timer" and value == -1:
            return "-1 (not armed)"
        return str(value)
    if kind == "double" and len(data) == 8:
        return f"{struct.unpack('>d', data)[0]!r} (0x{data.hex()})"
    if kind == "unused":
        return "(unused)"
    return _short_hex(data)


def _instrumented(rec: "_Recorder", io_name: str, io_class, frames: dict, run):
    """Run ``run()`` with reference.<io_name> replaced by ``io_class`` and the functions
    in ``frames`` (name -> (frame kind, path argument, field argument, info argument))
    pushing a frame on ``rec`` while they run; ``_elem_path`` tells the innermost field
    frame which element it is on.  Everything is restored afterwards (single-threaded;
    each xdist worker is its own process)."""
    from conformance.engines import reference as ref

    names = (io_name, "_elem_path", *frames)
    orig = {name: getattr(ref, name) for name in names}

    def framed(name, kind, path_arg, field_arg=None, info_arg=None):
        # arguments bound by name, so a reordered parameter list cannot mislabel bytes
        fn = orig[name]
        sig = inspect.signature(fn)

        def wrapper(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs).arguments
            except TypeError:
                bound = {}
            rec.stack.append(_Frame(kind, bound.get(path_arg, "?"),
                                    bound.get(field_arg) if field_arg else None,
                                    bound.get(info_arg) if info_arg else None))
            try:
                return fn(*args, **kwargs)
            finally:
                rec.stack.pop()

        return wrapper

    def elem_path(*args, **kwargs):
        out = orig["_elem_path"](*args, **kwargs)
        if rec.stack and rec.stack[-1].kind == "field":
            rec.stack[-1].elem = out
        return out

    patched = {io_name: io_class, "_elem_path": elem_path}
    for name, spec in frames.items():
        patched[name] = framed(name, *spec)
    for name, fn in patched.items():
        setattr(ref, name, fn)
    try:
        return run(ref)
    finally:
        for name, fn in orig.items():
            setattr(ref, name, fn)


def _record_save(desc, state, variant: str, vmdesc: bool = False):
    """Run the reference save with its writes attributed to field paths: (outcome,
    spans tiling the stream)."""
    from conformance.engines.qemufile import QEMUFileWriter

    rec = _Recorder()

    class RecordingWriter(QEMUFileWriter):
        __slots__ = ()

        def _noted(self, call, method, *args):
            start = len(self.buf)
            method(self, *args)
            if len(self.buf) > start:
                rec.note(start, bytes(self.buf[start:]), call)

        def put_byte(self, v):
            self._noted("byte", QEMUFileWriter.put_byte, v)

        def put_be16(self, v):
            self._noted("be16", QEMUFileWriter.put_be16, v)

        def put_be32(self, v):
            self._noted("be32", QEMUFileWriter.put_be32, v)

        def put_be64(self, v):
            self._noted("be64", QEMUFileWriter.put_be64, v)

        def put_buffer(self, data):
            self._noted("buffer", QEMUFileWriter.put_buffer, data)

    out = _instrumented(rec, "QEMUFileWriter", RecordingWriter, {
        "_save_field": ("field", "fpath", "field"),
        "_put_info": ("info", "epath", "field", "info"),
        "_save_subsections": ("subsections", "path"),
    }, lambda ref: ref.save(desc, state, variant, vmdesc=vmdesc))
    return out, _fill_gaps(rec.spans, len(out.data))


def _record_load(desc, data: bytes, dest, variant: str, version_id=None):
    """Run the reference load with its reads attributed to field paths: (outcome,
    spans tiling the input; bytes never read are one '(not read)' span)."""
    from conformance.engines.qemufile import QEMUFileReader

    rec = _Recorder()

    class RecordingReader(QEMUFileReader):
        __slots__ = ()

        def _noted(self, call, method, *args):
            if rec.busy:  # get_be32 reads through get_bytes: record the outer call only
                return method(self, *args)
            start = self.pos
            rec.busy = True
            try:
                out = method(self, *args)
            finally:
                rec.busy = False
            if self.pos > start:
                rec.note(start, bytes(self.data[start:self.pos]), call)
            return out

        def get_byte(self):
            return self._noted("byte", QEMUFileReader.get_byte)

        def get_bytes(self, n):
            return self._noted("buffer", QEMUFileReader.get_bytes, n)

        def get_be16(self):
            return self._noted("be16", QEMUFileReader.get_be16)

        def get_be32(self):
            return self._noted("be32", QEMUFileReader.get_be32)

        def get_be64(self):
            return self._noted("be64", QEMUFileReader.get_be64)

        def get_buffer(self, n):
            return self._noted("buffer", QEMUFileReader.get_buffer, n)

        def skip(self, n):
            return self._noted("byte" if n == 1 else "buffer", QEMUFileReader.skip, n)

    out = _instrumented(rec, "QEMUFileReader", RecordingReader, {
        "_load_field": ("field", "fpath", "field"),
        "_get_info": ("info", "epath", "field", "info"),
        "_load_subsections": ("subsections", "path"),
    }, lambda ref: ref.load(desc, data, dest, variant, version_id=version_id))
    spans = _fill_gaps(rec.spans, len(data))
    return out, [attrs.evolve(s, path="(unread)", value="") if s.path == "?" and
                 s.offset >= len(out.data) else s for s in spans]


def _fill_gaps(spans: list[Span], total: int) -> list[Span]:
    out: list[Span] = []
    pos = 0
    for s in sorted(spans, key=lambda s: s.offset):
        if s.offset > pos:
            out.append(Span(pos, s.offset - pos, "?", ""))
        out.append(s)
        pos = max(pos, s.offset + s.length)
    if pos < total:
        out.append(Span(pos, total - pos, "?", ""))
    return out


# ---------------------------------------------------------------------------------------
# The annotated hex view (.hex.txt)

_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")
_RANGE = re.compile(r"^(.*)\[(\d+)\.\.(\d+)\]$")


def _quote_path(path: str) -> str:
    return path.replace("%", "%25").replace(" ", "%20").replace("\t", "%09")


def _unquote_path(path: str) -> str:
    return path.replace("%09", "\t").replace("%20", " ").replace("%25", "%")


def _collapse(spans: list[Span], data: bytes) -> list[tuple[Span, int, str, int]]:
    """(first span, run length, path shown, total length): identical consecutive
    elements of one array (``x[i]``, ``x[i+1]``...) become one line."""
    rows = []
    i = 0
    while i < len(spans):
        s = spans[i]
        m = _INDEXED.match(s.path)
        j = i + 1
        if m:
            prefix, first = m.group(1), int(m.group(2))
            chunk = data[s.offset:s.offset + s.length]
            while j < len(spans):
                t = spans[j]
                mt = _INDEXED.match(t.path)
                if not (mt and mt.group(1) == prefix and int(mt.group(2)) == first + (j - i)
                        and t.length == s.length
                        and data[t.offset:t.offset + t.length] == chunk):
                    break
                j += 1
        n = j - i
        if n >= COLLAPSE_MIN:
            rows.append((s, n, f"{m.group(1)}[{first}..{first + n - 1}]", s.length * n))
        else:
            for k in range(i, j):
                rows.append((spans[k], 1, spans[k].path, spans[k].length))
        i = j
    return rows


def render_hex(data: bytes, spans: list[Span], header: list[str]) -> str:
    rows = _collapse(spans, data)
    cells = []
    for s, n, path, total in rows:
        chunk = data[s.offset:s.offset + s.length]
        shown = _short_hex(chunk).split("…")[0] + ("…" if s.length > HEX_SHOW else "")
        if n > 1:
            shown += f"×{n}"
        value = s.value if n == 1 else f"{s.value} (each)"
        cells.append((s.offset, total, shown or "-", _quote_path(path), value or "-"))
    width = max([len(c[2]) for c in cells] + [5])
    pwidth = min(max([len(c[3]) for c in cells] + [5]), 64)
    lines = [f"# {h}" for h in header]
    lines.append(f"# offset    length  {'bytes':<{width}}  {'field':<{pwidth}}  value")
    for off, total, shown, path, value in cells:
        lines.append(f"{off:08x}  {total:>6}  {shown:<{width}}  {path:<{pwidth}}  {value}")
    return "\n".join(lines) + "\n"


def parse_hex(text: str, source: str = "hex view") -> list[Span]:
    """Spans back from a .hex.txt (collapsed runs expanded); GoldenError on bad lines."""
    spans: list[Span] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(None, 4)
        try:
            off, total = int(parts[0], 16), int(parts[1])
            shown, path = parts[2], _unquote_path(parts[3])
            value = parts[4] if len(parts) > 4 else ""
        except (ValueError, IndexError):
            raise GoldenError(f"{source}: line {lineno}: not an annotated hex line") from None
        m = _RANGE.match(path)
        if m and "×" in shown:
            lo, hi = int(m.group(2)), int(m.group(3))
            n = hi - lo + 1
            each = total // max(n, 1)
            value = value.removesuffix(" (each)")
            for k in range(n):
                spans.append(Span(off + k * each, each, f"{m.group(1)}[{lo + k}]", value))
        else:
            spans.append(Span(off, total, path, "" if value == "-" else value))
    return spans


# ---------------------------------------------------------------------------------------
# Field-level diffs


def field_diff(old: bytes, old_spans: list[Span], new: bytes, new_spans: list[Span],
               limit: int = 24) -> list[str]:
    """Which fields changed between two streams: path, old and new bytes and values."""
    def tokens(data, spans):
        return [(s.path, data[s.offset:s.offset + s.length]) for s in spans]

    a, b = tokens(old, old_spans), tokens(new, new_spans)
    lines: list[str] = []
    first = next((i for i in range(min(len(old), len(new))) if old[i] != new[i]),
                 None if len(old) == len(new) else min(len(old), len(new)))
    if first is not None:
        where = next((s.path for s in new_spans if s.offset <= first < s.offset + s.length),
                     next((s.path for s in old_spans
                           if s.offset <= first < s.offset + s.length), "?"))
        lines.append(f"{len(old)} -> {len(new)} bytes; first difference at offset "
                     f"0x{first:x} in field {where}")

    def show(spans, k):
        s = spans[k]
        return s, s.value

    def decode(span, data, fallback):
        if span.path.endswith("#marker") and span.length == 1:
            return _marker_value(data[span.offset:span.offset + 1])
        if span.info is None:
            return fallback
        from conformance.model.infos import lookup

        return decode_value(lookup(span.info), data[span.offset:span.offset + span.length])

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        olds, news = list(range(i1, i2)), list(range(j1, j2))
        while olds and news and a[olds[0]][0] == b[news[0]][0]:
            so, vo = show(old_spans, olds.pop(0))
            sn, vn = show(new_spans, news.pop(0))
            # values decoded from the bytes themselves (a pinned view may disagree)
            if sn.length == so.length:
                vo = decode(attrs.evolve(sn, offset=so.offset), old, vo)
            vn = decode(sn, new, vn)
            lines.append(f"  changed {sn.path} @0x{sn.offset:x}: "
                         f"{_short_hex(old[so.offset:so.offset + so.length]) or '(none)'}"
                         f" ({vo or '-'}) -> "
                         f"{_short_hex(new[sn.offset:sn.offset + sn.length]) or '(none)'}"
                         f" ({vn or '-'})")
        for k in olds:
            s, v = show(old_spans, k)
            lines.append(f"  removed {s.path} @0x{s.offset:x}: "
                         f"{_short_hex(old[s.offset:s.offset + s.length])} ({v or '-'})")
        for k in news:
            s, v = show(new_spans, k)
            lines.append(f"  added   {s.path} @0x{s.offset:x}: "
                         f"{_short_hex(new[s.offset:s.offset + s.length])} ({v or '-'})")
    if len(lines) > limit + 1:
        more = len(lines) - limit - 1
        lines = lines[: limit + 1] + [f"  ... {more} more field(s)"]
    return lines


def value_diff(old, new, path: str = "$", limit: int = 12) -> list[str]:
    """JSON-path differences between two plain values."""
    out: list[str] = []

    def walk(x, y, p):
        if len(out) > limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in list(x) + [k for k in y if k not in x]:
                if k not in y:
                    out.append(f"  {_jpath(p, k)}: {_brief(x[k])} -> (absent)")
                elif k not in x:
                    out.append(f"  {_jpath(p, k)}: (absent) -> {_brief(y[k])}")
                else:
                    walk(x[k], y[k], _jpath(p, k))
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) == len(y):
                for k in range(len(x)):
                    walk(x[k], y[k], _jpath(p, k))
                return
            # entries inserted or removed: align them rather than compare by index
            a = [json.dumps(v, sort_keys=True) for v in x]
            b = [json.dumps(v, sort_keys=True) for v in y]
            ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
            for op, i1, i2, j1, j2 in ops:
                if op == "equal":
                    continue
                pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
                for k in range(pairs):
                    walk(x[i1 + k], y[j1 + k], _jpath(p, j1 + k))
                for k in range(i1 + pairs, i2):
                    out.append(f"  {_jpath(p, k)}: {_brief(x[k])} -> (removed)")
                for k in range(j1 + pairs, j2):
                    out.append(f"  {_jpath(p, k)}: (added) -> {_brief(y[k])}")
        elif x != y or type(x) is not type(y):
            out.append(f"  {p}: {_brief(x)} -> {_brief(y)}")

    walk(old, new, path)
    if len(out) > limit:
        out = out[:limit] + ["  ..."]
    return out


def _brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------
# Rendering one case's golden files (what regen writes, what verify expects)


@attrs.frozen
class Rendered:
    ref: CaseRef
    files: dict  # golden-relative path -> bytes
    entry: dict  # the manifest entry
    problems: tuple = ()  # why something could not be pinned
    observations: dict = attrs.field(factory=dict)  # variant -> Observation


def _variant_groups(keyed: dict) -> list[tuple[Any, list[str]]]:
    """[(key, [variants...])] in variant order, grouping equal keys."""
    groups: list[tuple[Any, list[str]]] = []
    for variant, key in keyed.items():
        for k, vs in groups:
            if k == key:
                vs.append(variant)
                break
        else:
            groups.append((key, [variant]))
    return groups


def render_case(ref: CaseRef, engine: str = "reference") -> Rendered:
    case = ref.case
    stem = f"{STREAMS}/{ref.stem}"
    files: dict[str, bytes] = {}
    variants: dict[str, dict] = {}
    problems: list[str] = []
    observations = {v: observe(case, v, engine, record=(k == 0))
                     for k, v in enumerate(VARIANTS)}
    streams: dict[str, bytes] = {}
    for v, obs in observations.items():
        if obs.crash:
            problems.append(f"{ref.id} [{v}]: the {engine} engine raised {obs.crash}")
            variants[v] = {"save": {"kind": "crash", "message": obs.crash}, "load": None}
            continue
        save = save_summary(obs.save)
        if obs.save.ok:
            name = f"{stem}.{short_hash(obs.save.data)}.bin"
            save["stream"] = name
            streams[name] = obs.save.data
            if obs.save.vmdesc is not None:
                text = obs.save.vmdesc.encode() + b"\n"
                vname = f"{stem}.{short_hash(text)}.vmdesc.json"
                save["vmdesc"] = vname
                files[vname] = text
        entry: dict[str, Any] = {"save": save, "load": None}
        if obs.load is not None:
            if case.load_input is not None:
                entry["load"] = {"kind": obs.load.kind,
                                 "state": f"{stem}.input-{short_hash(case.load_input)}"
                                          f".state.json"}
            else:
                entry["load"] = {"kind": obs.load.kind,
                                 "state": save["stream"].removesuffix(".bin") + ".state.json"}
        variants[v] = entry
    # streams, their annotated views
    by_stream = _variant_groups({v: e["save"].get("stream") for v, e in variants.items()})
    for name, vs in by_stream:
        if name is None:
            continue
        data = streams[name]
        spans = observations[vs[0]].spans
        if spans is None:
            _, spans = _record_save(case.description, case.source, vs[0])
        files[name] = data
        header = [f"golden stream {name}",
                  f"case {ref.id} ({ref.file}): {case.name}",
                  f"variants: {' '.join(vs)}",
                  f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}",
                  f"annotated by the reference engine under {vs[0]}; one field per line"]
        files[name.removesuffix(".bin") + ".hex.txt"] = render_hex(data, spans, header).encode()
    # loaded states, grouped per state file
    by_state: dict[str, dict] = {}
    for v, obs in observations.items():
        e = variants[v]
        if e.get("load") is None:
            continue
        by_state.setdefault(e["load"]["state"], {})[v] = load_record(obs.load)
    for name, per_variant in by_state.items():
        loads = [{"variants": vs, **rec} for rec, vs in _variant_groups(per_variant)]
        doc = {"format": STATE_FORMAT_ID, "case": ref.id,
               "input": ("load_input (the case file's bytes)" if case.load_input is not None
                         else f"the stream + trailer {case.trailer.hex() or '(none)'}"),
               "destination": to_plain(case.dest_state()),
               "load_version": case.load_version,
               "loads": loads}
        files[name] = dumps(doc).encode()
        if case.load_input is not None:
            files[_input_view(name)] = render_input_view(ref, list(per_variant)).encode()
    entry = {"file": ref.file}
    if ref.index is not None:
        entry["index"] = ref.index
    entry["name"] = case.name
    entry["declared_variants"] = list(case.variants)
    entry["variants"] = variants
    return Rendered(ref, files, entry, tuple(problems), observations)


# ---------------------------------------------------------------------------------------
# Divergences


def _describe_save(save: dict) -> str:
    if save["kind"] == "ok":
        return f"ok, {save['bytes']} bytes ({save['stream']})"
    return f"{save['kind']}: {save.get('message')}"


def _describe_load(load: dict | None, state_docs: dict) -> str:
    if load is None:
        return "not loaded (the save failed)"
    return f"{load['kind']} ({load['state']})"


def _fields_of(case: Case):
    for _path, desc in case.description.walk():
        yield from desc.fields


_BEHAVIOUR = "behaviour-that-differs-between-variants"  # docs/variants.md sections
_POLICY = "policy-points-variant-fields"

#: vmstate_check rule -> (why, (docs/variants.md anchor, rows of its behaviour table))
_RULE_WHY = {
    "flag-not-in-variant": (
        "the description uses a flag that exists in some variants only "
        "(VMS_ARRAY_OF_POINTER_AUTO_ALLOC is QEMU 11 development only; the alloc variant "
        "spells it ARRAY_OF_POINTER|ALLOC); vmstate_check rejects it elsewhere",
        (_BEHAVIOUR, "1")),
    "end-canary": (
        "VMS_END is 0x10000 in QEMU 8.0-10.x and in the alloc RFC but 0x20000 in the "
        "auto-alloc variant (AUTO_ALLOC took 0x10000); QEMU <= 7.2 has no canary check",
        (_BEHAVIOUR, "1")),
    "subsection-prefix": (
        "vmstate_check (QEMU >= 8.0, qtest) requires a subsection's name to start with "
        "its parent's; QEMU 7.2 saves it, and its load peek loop stops before it",
        (_BEHAVIOUR, "2")),
    "pointer-array-no-size": (
        "QEMU 11 (both the auto-alloc and the alloc series) forbids .size on a "
        "non-allocating pointer array, which QEMU <= 10 macros set to the pointer size",
        (_BEHAVIOUR, "3")),
    "auto-alloc-needs-size": (
        "an auto-allocating pointer array needs the pointee size in .size",
        (_BEHAVIOUR, "4")),
    "pointer-array-needs-array": (
        "the auto-alloc series requires ARRAY or VARRAY with ARRAY_OF_POINTER; the alloc "
        "RFC only without ALLOC", (_BEHAVIOUR, "5")),
    "auto-alloc-needs-pointer-array": (
        "AUTO_ALLOC is only valid together with ARRAY_OF_POINTER", (_BEHAVIOUR, "5")),
}


def _load_rows(groups: list, messages: list[str]) -> str:
    """Rows of the docs/variants.md behaviour table a load divergence falls under."""
    rows: list[str] = []
    text = " ".join(messages)
    recs = [g for g, _ in groups]
    keys = {k for a in recs for b in recs for k in _differs(a, b)} - {"stream", "vmdesc",
                                                                       "bytes"}
    if keys and keys <= {"ledger"}:
        return "25"  # only the preconditions the core asserts differ
    if "*pptr == NULL" in json.dumps(recs) or "populated" in text:
        rows.append("11")
    if "auto_alloc" in text:
        rows.append("12")
    if "get_nullptr" in text or "Unexpected ptr marker" in text:
        rows += ["13", "17"]
    return ", ".join(dict.fromkeys(rows)) or "9-21, 25"


def explain(case: Case | None, aspect: str, groups: list) -> tuple[str, str]:
    """(why, docs link) for a divergence, from the outcomes and the description: one
    reason per kind of disagreement, the link of the first."""
    reasons: list[tuple[str, str]] = []
    messages = [str(g.get("message") or "") for g, _ in groups]
    for rule, (why, anchor) in _RULE_WHY.items():
        if any(f"vmstate_check: {rule}" in m for m in messages):
            reasons.append((why, anchor))
    for m in messages:
        rule = re.search(r"vmstate_check: ([a-z-]+)", m)
        if rule and rule.group(1) not in _RULE_WHY:
            reasons.append((f"vmstate_check rule {rule.group(1)} applies in some variants "
                            "only", (_BEHAVIOUR, "2")))
    if any("VMS_END" in m for m in messages) and _RULE_WHY["end-canary"] not in reasons:
        reasons.append(_RULE_WHY["end-canary"])
    flags = F(0)
    if case is not None:
        for field in _fields_of(case):
            flags |= field.flags
    # the outcomes that are not a registration-time rejection
    ran = [g for g, _ in groups if g.get("kind") != "rejected"]
    if flags & F.ARRAY_OF_POINTER and len(ran) > 1:
        if aspect == "save":
            reasons.append((
                "arrays of pointers: legacy streams carry a 0x30 marker for NULL slots only "
                "(and QEMU <= 10 recognises a NULL slot only when .size is non-zero, else it "
                "follows the pointer); auto-allocating arrays (AUTO_ALLOC, or "
                "ARRAY_OF_POINTER|ALLOC in the alloc variant) put 0x30/0x31 before every slot",
                (_BEHAVIOUR, "3, 6-8")))
        else:
            reasons.append((
                "arrays of pointers: NULL-slot marker handling and element allocation on "
                "load differ (get_nullptr vs vmstate_ptr_marker_load; assert vs overwrite of "
                "a populated slot; array vs element allocation)",
                (_BEHAVIOUR, _load_rows(groups, messages))))
    elif len(ran) > 1 and (any("subsection" in m for m in messages)
                           or (case is not None and case.description.subsections)):
        reasons.append(("an unknown subsection: QEMU <= 7.2 returns -ENOENT without a "
                        "message, 8.0+ reports it and returns -EINVAL", (_POLICY, "")))
    elif len(ran) > 1 and any("failed" in m and ("pre-" in m or "post-" in m)
                              for m in messages):
        reasons.append(("the hook return convention differs between variants",
                        (_POLICY, "")))
    if not reasons:
        return ("unexplained: no rule of conformance.golden.corpus.explain matches; add one", DOCS)
    whys = []
    for why, _ in reasons:
        if why not in whys:
            whys.append(why)
    anchor, rows = reasons[0][1]
    return "; also: ".join(whys), f"{DOCS}#{anchor}" + (f" (rows {rows})" if rows else "")


def divergences(entries: dict, state_docs: dict, cases: dict) -> list[dict]:
    """Every case where the variants disagree on the save, or (among variants that
    saved the same thing) on the load."""
    out = []
    for cid, entry in entries.items():
        case = cases.get(cid)
        per = entry["variants"]
        save_groups = _variant_groups({v: _save_key(e["save"]) for v, e in per.items()})
        if len(save_groups) > 1:
            groups = [({**per[vs[0]]["save"]}, vs) for _, vs in save_groups]
            why, doc = explain(case, "save", groups)
            out.append({"case": cid, "aspect": "save",
                        "groups": [{"variants": vs, "outcome": _describe_save(g)}
                                   for g, vs in groups],
                        "why": why, "doc": doc})
        for key, same_save in save_groups:
            vm_groups = _variant_groups({v: per[v]["save"].get("vmdesc") for v in same_save})
            if len(vm_groups) > 1:
                out.append({"case": cid, "aspect": "vmdesc",
                            "groups": [{"variants": vs, "outcome": name or "(none)"}
                                       for name, vs in vm_groups],
                            "why": "the same bytes, described differently: vmdesc eras A "
                                   "(QEMU <= 7.2: NULL slots keep the field's type), B "
                                   "(8.0-10.x: \"nullptr\" entries, runs split on "
                                   "NULL-ness) and C (QEMU 11: \"ptr-marker\" entries, "
                                   "no index for auto-allocating fields)",
                            "doc": f"{DOCS}#{_BEHAVIOUR} (rows 22-24)"})
            load_keys = {}
            for v in same_save:
                load = per[v].get("load")
                if load is None:
                    load_keys[v] = None
                    continue
                doc = state_docs.get(load["state"], {})
                rec = next((ld for ld in doc.get("loads", []) if v in ld.get("variants", [])),
                           {})
                load_keys[v] = json.dumps({k: x for k, x in rec.items() if k != "variants"},
                                          sort_keys=True)
            load_groups = _variant_groups(load_keys)
            if len(load_groups) < 2:
                continue
            groups = [(json.loads(key) if key else {}, vs) for key, vs in load_groups]
            why, doc = explain(case, "load", groups)
            out.append({"case": cid, "aspect": "load",
                        "groups": [{"variants": vs,
                                    "outcome": _describe_load(per[vs[0]].get("load"), state_docs)
                                    + (f": {rec.get('message')}" if rec.get("message") else "")
                                    + (f"; hazards {', '.join(rec['hazards'])}"
                                       if rec.get("hazards") else "")
                                    + (f"; differs in {', '.join(_differs(groups[0][0], rec))}"
                                       if k and _differs(groups[0][0], rec) else "")}
                                   for k, (rec, vs) in enumerate(groups)],
                        "why": why, "doc": doc})
    return out


def _load_rec(entries: dict, state_docs: dict, cid: str, v: str) -> dict | None:
    load = entries[cid]["variants"][v].get("load")
    if load is None:
        return None
    doc = state_docs.get(load["state"], {})
    rec = next((ld for ld in doc.get("loads", []) if v in ld.get("variants", [])), {})
    return {k: x for k, x in rec.items() if k != "variants"}


def spellings(entries: dict, state_docs: dict, cases: dict) -> list[dict]:
    """Pairs of cases that are one intent spelled for two variants (the description of
    one, written for its declared variant, translates (conformance.model.translate) into the
    other's, with the same states and inputs): e.g. an AUTO_ALLOC array under
    auto-alloc and its ARRAY_OF_POINTER|ALLOC spelling under alloc.  Each pair says
    whether the two pinned saves and loads agree, and if not, where and why."""
    try:
        from conformance.model.translate import try_translate
    except ImportError:
        return []

    def key(case: Case, desc) -> tuple:
        return (desc, repr(to_plain(case.source)), repr(to_plain(case.destination)),
                case.load_input, case.trailer, case.load_version)

    index: dict[tuple, list[tuple[str, str]]] = {}
    for cid, case in cases.items():
        if cid in entries:
            for v in case.variants:
                try:
                    index.setdefault(key(case, case.description), []).append((cid, v))
                except TypeError:  # an unhashable Python-defined description
                    break
    out: list[dict] = []
    seen: set = set()
    for cid, case in sorted(cases.items()):
        if cid not in entries:
            continue
        for va in case.variants:
            for vb in VARIANTS:
                if vb == va:
                    continue
                desc, _ = try_translate(case.description, va, vb)
                if desc is None or desc == case.description:
                    continue
                try:
                    matches = index.get(key(case, desc), [])
                except TypeError:
                    continue
                for cid2, v2 in matches:
                    pair = tuple(sorted([(cid, va), (cid2, v2)]))
                    if v2 != vb or cid2 == cid or pair in seen:
                        continue
                    seen.add(pair)
                    (c1, w1), (c2, w2) = pair
                    s1 = entries[c1]["variants"][w1]["save"]
                    s2 = entries[c2]["variants"][w2]["save"]
                    l1 = _load_rec(entries, state_docs, c1, w1)
                    l2 = _load_rec(entries, state_docs, c2, w2)
                    same_save = (s1.get("stream", "").rsplit(".", 2)[-2:-1]
                                 == s2.get("stream", "").rsplit(".", 2)[-2:-1]
                                 if s1["kind"] == s2["kind"] == "ok"
                                 else _save_key(s1) == _save_key(s2))
                    item: dict[str, Any] = {
                        "pair": [{"case": c1, "variant": w1}, {"case": c2, "variant": w2}],
                        "save": ("identical" + (f" bytes: {s1['stream']} = {s2['stream']}"
                                                if s1["kind"] == "ok" else f" ({s1['kind']})")
                                 if same_save else
                                 f"differs: {_describe_save(s1)} vs {_describe_save(s2)}"),
                        "load": ("identical" if l1 == l2 else
                                 "differs in " + ", ".join(_differs(l1 or {}, l2 or {}))
                                 + f" ({(l1 or {}).get('kind')} vs {(l2 or {}).get('kind')})"),
                    }
                    item["agree"] = same_save and l1 == l2
                    if not item["agree"]:
                        groups = [({**s1, **(l1 or {})}, [w1]), ({**s2, **(l2 or {})}, [w2])]
                        item["why"], item["doc"] = explain(
                            case, "save" if not same_save else "load", groups)
                    out.append(item)
    return out


def _differs(a: dict, b: dict) -> list[str]:
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _save_key(save: dict) -> str:
    if save["kind"] == "ok":
        return save["stream"]
    return json.dumps({k: save.get(k) for k in ("kind", "message", "path")}, sort_keys=True)


# ---------------------------------------------------------------------------------------
# Reading the pinned corpus (validated: one-line errors naming file and JSON path)


def _require(cond: bool, where: str, jpath: str, message: str) -> None:
    if not cond:
        raise GoldenError(f"{where}: {jpath}: {message}")


def load_manifest(root: Path) -> dict:
    path = root / GOLDEN / MANIFEST
    where = f"{GOLDEN}/{MANIFEST}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"format": FORMAT_ID, "cases": {}, "streams": {}}
    except OSError as exc:
        raise GoldenError(f"{where}: cannot read: {exc.strerror}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldenError(f"{where}: line {exc.lineno} column {exc.colno}: invalid JSON: "
                          f"{exc.msg}") from None
    _require(isinstance(obj, dict), where, "$", "the manifest must be an object")
    _require(obj.get("format") == FORMAT_ID, where, "$.format",
             f"expected {FORMAT_ID!r}, got {obj.get('format')!r}")
    cases = obj.get("cases")
    _require(isinstance(cases, dict), where, "$.cases", "must be an object")
    for cid, entry in cases.items():
        p = _jpath("$.cases", cid)
        _require(isinstance(entry, dict), where, p, "must be an object")
        _require(isinstance(entry.get("file"), str), where, f"{p}.file", "must be a string")
        per = entry.get("variants")
        _require(isinstance(per, dict), where, f"{p}.variants", "must be an object")
        for v, e in per.items():
            vp = _jpath(f"{p}.variants", v)
            _require(v in VARIANTS, where, vp, f"unknown variant {v!r}")
            _require(isinstance(e, dict), where, vp, "must be an object")
            save = e.get("save")
            _require(isinstance(save, dict) and isinstance(save.get("kind"), str), where,
                     f"{vp}.save", "must be an object with a kind")
            for key in ("stream", "vmdesc"):
                if key in save:
                    _require(_is_stream_path(save[key]), where, f"{vp}.save.{key}",
                             f"must be a path under {STREAMS}/, got {save[key]!r}")
            load = e.get("load")
            _require(load is None or (isinstance(load, dict)
                                      and isinstance(load.get("state"), str)),
                     where, f"{vp}.load", "must be null or an object with a state path")
            if load is not None:
                _require(_is_stream_path(load["state"]), where, f"{vp}.load.state",
                         f"must be a path under {STREAMS}/, got {load['state']!r}")
    _require(isinstance(obj.get("streams", {}), dict), where, "$.streams", "must be an object")
    return obj


def _is_stream_path(name) -> bool:
    return (isinstance(name, str) and name.startswith(f"{STREAMS}/")
            and ".." not in name.split("/") and "\\" not in name)


def read_state_doc(root: Path, name: str) -> dict:
    where = f"{GOLDEN}/{name}"
    try:
        obj = json.loads((root / GOLDEN / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GoldenError(f"{where}: missing (listed in the manifest)") from None
    except json.JSONDecodeError as exc:
        raise GoldenError(f"{where}: line {exc.lineno} column {exc.colno}: invalid JSON: "
                          f"{exc.msg}") from None
    _require(isinstance(obj, dict), where, "$", "must be an object")
    _require(obj.get("format") == STATE_FORMAT_ID, where, "$.format",
             f"expected {STATE_FORMAT_ID!r}")
    loads = obj.get("loads")
    _require(isinstance(loads, list), where, "$.loads", "must be a list")
    for i, ld in enumerate(loads):
        _require(isinstance(ld, dict) and isinstance(ld.get("variants"), list)
                 and isinstance(ld.get("kind"), str), where, f"$.loads[{i}]",
                 "must be an object with variants and kind")
    return obj


def pinned_files(root: Path) -> set[str]:
    """Every file under golden/streams, golden-relative."""
    top = root / GOLDEN / STREAMS
    if not top.is_dir():
        return set()
    return {p.relative_to(root / GOLDEN).as_posix() for p in top.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def _entry_files(entry: dict) -> set[str]:
    out = set()
    for e in entry["variants"].values():
        for key in ("stream", "vmdesc"):
            if e["save"].get(key):
                out.add(e["save"][key])
        if e["save"].get("stream"):
            out.add(e["save"]["stream"].removesuffix(".bin") + ".hex.txt")
        if e.get("load"):
            out.add(e["load"]["state"])
            if "/" in e["load"]["state"] and ".input-" in e["load"]["state"]:
                out.add(_input_view(e["load"]["state"]))
    return out


def _input_view(state_name: str) -> str:
    """<stem>.input-<hash>.state.json -> <stem>.input-<hash>.hex.txt"""
    return state_name.removesuffix(".state.json") + ".hex.txt"


def render_input_view(ref: CaseRef, variants: list[str]) -> str:
    """The annotated view of a case's load_input: what the reference load read as which
    field, one section per distinct reading among ``variants``."""
    case = ref.case
    data = case.load_input
    sections: list[tuple[str, list[str]]] = []
    for v in variants:
        out, spans = _record_load(case.description, data, case.dest_state(), v,
                                  case.load_version)
        body = render_hex(data, spans, [f"load: {out.summary()}"])
        for text, vs in sections:
            if text == body:
                vs.append(v)
                break
        else:
            sections.append((body, [v]))
    lines = [f"# golden load input of case {ref.id} ({ref.file}): {case.name}",
             f"# {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}",
             "# annotated by the reference engine's load; one field per line; "
             "(unread) = bytes the load never consumed"]
    for body, vs in sections:
        lines.append(f"#\n# loaded by: {' '.join(vs)}")
        lines.append(body.rstrip("\n"))
    return "\n".join(lines) + "\n"


def streams_index(entries: dict) -> dict:
    """stream file -> the case and the variants that must produce it, plus the pinned
    streams of other cases holding the same bytes (e.g. an AUTO_ALLOC declaration under
    auto-alloc and its ARRAY_OF_POINTER|ALLOC spelling under alloc)."""
    index: dict[str, dict] = {}
    for cid, entry in entries.items():
        for v, e in entry["variants"].items():
            name = e["save"].get("stream")
            if name:
                item = index.setdefault(name, {"case": cid, "bytes": e["save"]["bytes"],
                                               "variants": []})
                item["variants"].append(v)
    by_hash: dict[str, list[str]] = {}
    for name in index:
        by_hash.setdefault(name.rsplit(".", 2)[-2], []).append(name)
    for name, item in index.items():
        same = [n for n in by_hash[name.rsplit(".", 2)[-2]] if n != name]
        if same:
            item["identical_to"] = sorted(same)
    return dict(sorted(index.items()))


def build_manifest(entries: dict) -> dict:
    return {"format": FORMAT_ID,
            "generated_by": "vmstate-conformance golden regen (reference engine)",
            "sources": [d for _, d in SOURCES],
            "variants": list(VARIANTS),
            "cases": dict(sorted(entries.items())),
            "streams": streams_index(entries)}


# ---------------------------------------------------------------------------------------
# Verify (never writes)


@attrs.frozen
class Problem:
    case: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.case}: {self.message}" if self.case else self.message


def _read(root: Path, name: str) -> bytes | None:
    try:
        return (root / GOLDEN / name).read_bytes()
    except OSError:
        return None


def verify_case(root: Path, ref: CaseRef, manifest: dict,
                engines: Iterable[str] | None = None) -> list[Problem]:
    """Every variant x engine of one case against its pinned files."""
    from conformance.engines import available

    engines = list(engines or available())
    cid = ref.id
    entry = manifest["cases"].get(cid)
    if entry is None:
        return [Problem(cid, f"no golden files pinned for {ref.file} (run "
                             f"'vmstate-conformance golden regen --case {cid}')")]
    problems: list[Problem] = []
    if entry.get("file") != ref.file:
        problems.append(Problem(cid, f"the manifest says the case lives in {entry.get('file')}"
                                     f", it is in {ref.file}"))
    expected = render_case(ref)  # the reference engine's view, with annotations
    for p in expected.problems:
        problems.append(Problem(cid, p))
    state_cache: dict[str, dict] = {}
    found: list[Problem] = []
    for v in VARIANTS:
        pinned = entry["variants"].get(v)
        if pinned is None:
            problems.append(Problem(cid, f"[{v}] not pinned (run regen)"))
            continue
        for engine in engines:
            obs = (expected.observations[v] if engine == "reference"
                   else observe(ref.case, v, engine))
            found += _compare_obs(root, ref, v, engine, obs, pinned, state_cache)
    # one problem per distinct finding, naming every (variant, engine) that has it
    grouped: dict[str, list[str]] = {}
    for p in found:
        tag, _, text = p.message.partition("] ")
        grouped.setdefault(text if tag.startswith("[") else p.message, []).append(
            tag.lstrip("[") if tag.startswith("[") else "")
    for text, tags in grouped.items():
        tags = [t for t in tags if t]
        problems.append(Problem(cid, f"[{'; '.join(tags)}] {text}" if tags else text))
    # derived files (annotations, vmdesc) and the manifest entry itself
    for name, data in expected.files.items():
        if name.endswith(".hex.txt"):
            have = _read(root, name)
            if have is None:
                problems.append(Problem(cid, f"missing annotated view {GOLDEN}/{name}"))
            elif have != data:
                problems.append(Problem(cid, f"annotated view {GOLDEN}/{name} is out of date "
                                             "(run regen)"))
    if not problems and _strip(entry) != _strip(expected.entry):
        diff = value_diff(_strip(entry), _strip(expected.entry), "$")
        problems.append(Problem(cid, "manifest entry differs from what regen would write:\n"
                                + "\n".join(diff)))
    return problems


def _strip(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "index"}


def _compare_obs(root: Path, ref: CaseRef, v: str, engine: str, obs: Observation,
                 pinned: dict, state_cache: dict) -> list[Problem]:
    cid = ref.id
    tag = f"[{v}, {engine}]"
    if obs.crash:
        return [Problem(cid, f"{tag} the engine raised {obs.crash}")]
    out: list[Problem] = []
    psave = pinned["save"]
    have = save_summary(obs.save)
    if psave.get("kind") != have["kind"]:
        out.append(Problem(cid, f"{tag} save: pinned {_describe_save(psave)}, got "
                                f"{obs.save.summary()}"))
    elif have["kind"] != "ok":
        for key in ("message", "path", "offset"):
            if psave.get(key) != have.get(key):
                out.append(Problem(cid, f"{tag} save {key}: pinned {psave.get(key)!r}, got "
                                        f"{have.get(key)!r}"))
    else:
        name = psave.get("stream", "")
        old = _read(root, name)
        if old is None:
            out.append(Problem(cid, f"{tag} pinned stream {GOLDEN}/{name} is missing"))
        elif old != obs.save.data:
            out.append(Problem(cid, f"{tag} stream differs from {GOLDEN}/{name}:\n"
                                    + "\n".join(stream_diff(root, ref, v, name, old,
                                                            obs.save.data))))
        vname = psave.get("vmdesc")
        if bool(vname) != (obs.save.vmdesc is not None):
            out.append(Problem(cid, f"{tag} vmdesc: pinned {vname or 'none'}, the engine "
                                    f"wrote {'none' if obs.save.vmdesc is None else 'one'}"))
        elif vname:
            pinned_text = _read(root, vname)
            text = obs.save.vmdesc.encode() + b"\n"
            if pinned_text is None:
                out.append(Problem(cid, f"{tag} pinned vmdesc {GOLDEN}/{vname} is missing"))
            elif pinned_text != text:
                out.append(Problem(cid, f"{tag} vmdesc differs from {GOLDEN}/{vname}:\n"
                                        + _text_diff(pinned_text, text)))
    pload = pinned.get("load")
    if (pload is None) != (obs.load is None):
        out.append(Problem(cid, f"{tag} load: pinned "
                                f"{'none' if pload is None else pload['kind']}, got "
                                f"{'none' if obs.load is None else obs.load.summary()}"))
    elif pload is not None:
        name = pload["state"]
        try:
            doc = state_cache.get(name) or read_state_doc(root, name)
        except GoldenError as exc:
            return out + [Problem(cid, str(exc))]
        state_cache[name] = doc
        rec = next((ld for ld in doc["loads"] if v in ld["variants"]), None)
        got = load_record(obs.load)
        if rec is None:
            out.append(Problem(cid, f"{tag} {GOLDEN}/{name} has no load for {v}"))
        else:
            want = {k: x for k, x in rec.items() if k != "variants"}
            if want != got:
                out.append(Problem(cid, f"{tag} loaded outcome differs from {GOLDEN}/{name}:\n"
                                        + "\n".join(value_diff(want, got, "$"))))
    return out


def stream_diff(root: Path, ref: CaseRef, variant: str, name: str, old: bytes,
                new: bytes) -> list[str]:
    """Field-level diff of a pinned stream against new bytes."""
    hex_name = name.removesuffix(".bin") + ".hex.txt"
    text = _read(root, hex_name)
    old_spans = None
    if text is not None:
        try:
            old_spans = parse_hex(text.decode("utf-8", "replace"), f"{GOLDEN}/{hex_name}")
        except GoldenError:
            old_spans = None
    ref_out, ref_spans = _record_save(ref.case.description, ref.case.source, variant)
    note = []
    new_spans = ref_spans
    if ref_out.data != new:
        # another engine disagrees with the reference: lay the reference's (= pinned)
        # fields over its bytes
        if ref_out.data == old:
            note.append("  (the reference engine still writes the pinned bytes: only this "
                        "engine differs; its bytes are laid out with the pinned fields)")
        else:
            note.append("  (the reference engine writes yet other bytes; these are laid "
                        "out with the pinned fields)")
            ref_spans = old_spans or ref_spans
        new_spans = _fill_gaps([s for s in ref_spans if s.offset + s.length <= len(new)],
                               len(new))
    if old_spans is None or sum(s.length for s in old_spans) != len(old):
        old_spans = _fill_gaps([s for s in new_spans if s.offset + s.length <= len(old)],
                               len(old))
        note.append(f"  (no usable {GOLDEN}/{hex_name}: old fields laid out as the new ones)")
    return ["  " + line if not line.startswith("  ") else line
            for line in field_diff(old, old_spans, new, new_spans)] + note


def _text_diff(old: bytes, new: bytes) -> str:
    a, b = old.decode("utf-8", "replace"), new.decode("utf-8", "replace")
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return (f"  first difference at character {i}:\n"
            f"  pinned: ...{a[max(0, i - 40):i + 40]!r}\n"
            f"  now:    ...{b[max(0, i - 40):i + 40]!r}")


def verify_corpus(root: Path, refs: list[CaseRef], manifest: dict) -> list[Problem]:
    """Corpus-level checks: cases the manifest lists that are gone, pinned files no case
    uses, the streams index and the divergences list."""
    problems: list[Problem] = []
    ids = {r.id for r in refs}
    for cid, entry in manifest["cases"].items():
        if cid not in ids:
            problems.append(Problem(cid, f"the manifest pins a case whose file "
                                         f"{entry.get('file')} is gone (run regen)"))
    used: set[str] = set()
    for entry in manifest["cases"].values():
        used |= _entry_files(entry)
    for name in sorted(pinned_files(root) - used):
        problems.append(Problem(None, f"{GOLDEN}/{name}: pinned file no case uses"))
    for name in sorted(used - pinned_files(root)):
        problems.append(Problem(None, f"{GOLDEN}/{name}: listed in the manifest but missing"))
    if manifest.get("streams", {}) != streams_index(manifest["cases"]):
        problems.append(Problem(None, f"{GOLDEN}/{MANIFEST}: $.streams does not match "
                                      "$.cases (run regen)"))
    state_docs = {}
    for name in sorted(used):
        if name.endswith(".state.json") and (root / GOLDEN / name).exists():
            try:
                state_docs[name] = read_state_doc(root, name)
            except GoldenError as exc:
                problems.append(Problem(None, str(exc)))
    cases = {r.id: r.case for r in refs}
    want = {"divergences": divergences(manifest["cases"], state_docs, cases),
            "spellings": spellings(manifest["cases"], state_docs, cases)}
    have = load_divergences(root)
    if have != want:
        problems.append(Problem(None, f"{GOLDEN}/{DIVERGENCES} is out of date (run regen):\n"
                                + "\n".join(value_diff(have, want, "$"))))
    return problems


def load_divergences(root: Path) -> dict:
    path = root / GOLDEN / DIVERGENCES
    where = f"{GOLDEN}/{DIVERGENCES}"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"divergences": [], "spellings": []}
    except json.JSONDecodeError as exc:
        raise GoldenError(f"{where}: line {exc.lineno} column {exc.colno}: invalid JSON: "
                          f"{exc.msg}") from None
    _require(isinstance(obj, dict) and isinstance(obj.get("divergences"), list), where,
             "$.divergences", "must be a list")
    _require(isinstance(obj.get("spellings", []), list), where, "$.spellings",
             "must be a list")
    return {"divergences": obj["divergences"], "spellings": obj.get("spellings", [])}


def verify(root: Path | None = None, pattern: str | None = None,
           engines: Iterable[str] | None = None, jobs: int = 1) -> list[Problem]:
    """Every selected case against its pins (plus the corpus checks when no pattern
    is given).  ``jobs`` > 1 spreads the cases over worker processes."""
    root = Path(root or find_root())
    refs, errors = discover(root)
    problems = [Problem(None, e) for e in errors]
    manifest = load_manifest(root)
    chosen = select(refs, pattern)
    engines = list(engines) if engines else None
    if jobs > 1 and len(chosen) > 1:
        from concurrent.futures import ProcessPoolExecutor

        sizes = {r.id: max([e["save"].get("bytes", 0) for e in
                            manifest["cases"].get(r.id, {}).get("variants", {}).values()]
                           + [0]) for r in chosen}
        ids = sorted(sizes, key=lambda i: -sizes[i])  # the biggest first
        chunks = [ids[k::jobs * 4] for k in range(jobs * 4)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for part in pool.map(_verify_ids, [(str(root), c, engines) for c in chunks if c]):
                problems += part
    else:
        for ref in chosen:
            problems += verify_case(root, ref, manifest, engines)
    if not pattern:
        problems += verify_corpus(root, refs, manifest)
    return problems


def _verify_ids(job) -> list[Problem]:
    """A worker process: verify the cases with these ids (cases are re-read here, as
    Python-defined cases do not pickle)."""
    root, ids, engines = job
    root = Path(root)
    refs, _ = discover(root)
    manifest = load_manifest(root)
    wanted = set(ids)
    out: list[Problem] = []
    for ref in refs:
        if ref.id in wanted:
            out += verify_case(root, ref, manifest, engines)
    return out


# ---------------------------------------------------------------------------------------
# Regenerate


@attrs.frozen
class Change:
    kind: str  # added / changed / removed
    what: str
    detail: tuple[str, ...] = ()


def regen(root: Path | None = None, pattern: str | None = None, force: bool = False,
          env: dict | None = None, out=None) -> list[Change]:
    """Rewrite the pinned files from the reference engine; returns what changed."""
    env = os.environ if env is None else env
    out = out or sys.stdout
    if env.get("CI") and not force:
        raise GoldenError("refusing to regenerate golden files with CI set; verify instead, "
                          "or pass --force")
    root = Path(root or find_root())
    refs, errors = discover(root)
    if errors:
        raise GoldenError("case files do not load; nothing written:\n  " + "\n  ".join(errors))
    manifest = load_manifest(root)
    old_entries = dict(manifest["cases"])
    chosen = select(refs, pattern)
    if pattern and not chosen:
        raise GoldenError(f"no case matches {pattern!r}")
    ids = {r.id for r in refs}
    rendered = {}
    for ref in chosen:
        r = render_case(ref)
        if r.problems:
            raise GoldenError("the reference engine cannot pin " + "; ".join(r.problems))
        rendered[ref.id] = r
    changes: list[Change] = []
    new_entries = {cid: e for cid, e in old_entries.items()
                   if cid in ids and cid not in rendered}
    gone = [cid for cid in old_entries if cid not in ids
            and (not pattern or select_id(cid, old_entries[cid], pattern))]
    for cid in old_entries:
        if cid not in ids and cid not in gone:
            new_entries[cid] = old_entries[cid]  # outside the pattern: left for a full regen
    # report changes per case and variant before writing (old files still on disk)
    for cid, r in rendered.items():
        old = old_entries.get(cid)
        if old is None:
            changes.append(Change("added", f"case {cid}",
                                  tuple(f"{v}: {_describe_save(e['save'])}"
                                        for v, e in r.entry["variants"].items())))
            continue
        by_detail: dict[tuple, list[str]] = {}
        for v, e in r.entry["variants"].items():
            detail = _variant_change(root, r, v, old["variants"].get(v), e)
            if detail:
                by_detail.setdefault(tuple(detail), []).append(v)
        for detail, vs in by_detail.items():
            changes.append(Change("changed", f"case {cid} [{', '.join(vs)}]", detail))
    for cid in gone:
        changes.append(Change("removed", f"case {cid}", (old_entries[cid].get("file", ""),)))
    # write the new files, then the manifest, then remove what nothing uses any more
    written: list[str] = []
    for r in rendered.values():
        new_entries[r.ref.id] = r.entry
        for name, data in sorted(r.files.items()):
            existed = (root / GOLDEN / name).exists()
            if atomic_write(root / GOLDEN / name, data):
                written.append(name)
                changes.append(Change("changed" if existed else "added", f"{GOLDEN}/{name}"))
    used: set[str] = set()
    for entry in new_entries.values():
        used |= _entry_files(entry)
    stale = sorted(pinned_files(root) - used)
    if pattern:  # a partial regen only removes files of the cases it regenerated
        stems = [f"{STREAMS}/{r.ref.stem}." for r in rendered.values()]
        stale = [n for n in stale if any(n.startswith(s) for s in stems)
                 or any(n.startswith(f"{STREAMS}/{cid.replace('#', '-')}.") for cid in gone)]
    new_manifest = build_manifest(new_entries)
    if atomic_write(root / GOLDEN / MANIFEST, dumps(new_manifest).encode()):
        changes.append(Change("changed", f"{GOLDEN}/{MANIFEST}"))
    state_docs = {}
    for entry in new_entries.values():
        for e in entry["variants"].values():
            if e.get("load") and (root / GOLDEN / e["load"]["state"]).exists():
                state_docs[e["load"]["state"]] = read_state_doc(root, e["load"]["state"])
    div = divergences(new_manifest["cases"], state_docs, {r.id: r.case for r in refs})
    doc = {"format": "vmstate-conformance/golden-divergences/1",
           "note": "Generated by regen: where the variants disagree on a case's save or "
                   "load, and why (see golden/FORMAT.md and docs/variants.md).",
           "divergences": div,
           "spellings": spellings(new_manifest["cases"], state_docs,
                                  {r.id: r.case for r in refs})}
    if atomic_write(root / GOLDEN / DIVERGENCES, dumps(doc).encode()):
        changes.append(Change("changed", f"{GOLDEN}/{DIVERGENCES}"))
    for name in stale:
        (root / GOLDEN / name).unlink()
        changes.append(Change("removed", f"{GOLDEN}/{name}"))
    _prune_dirs(root / GOLDEN / STREAMS)
    for c in changes:
        print(f"{c.kind:8} {c.what}", file=out)
        for line in c.detail:
            print(f"         {line}", file=out)
    for r in rendered.values():
        for line in _expectation_conflicts(r):
            print(f"warning: {line}", file=out)
    unexplained = [d for d in div if d["why"].startswith("unexplained")]
    for d in unexplained:
        print(f"warning: unexplained divergence in {d['case']} ({d['aspect']}): add a rule "
              "to conformance.golden.corpus.explain", file=out)
    if not changes:
        print("golden files are up to date (nothing changed)", file=out)
    return changes


def _expectation_conflicts(r: Rendered) -> list[str]:
    """Where the pinned (reference) outcome contradicts the case's own expectations for
    its declared variants: pinned anyway, but said loudly."""
    from conformance.cases.casefile import _compare

    out = []
    case = r.ref.case
    for v in case.variants:
        obs = r.observations.get(v)
        if obs is None or obs.crash:
            continue
        exp = case.expectation(v)
        found = _compare("save", obs.save, exp.get("save", {}))
        if obs.load is not None:
            found += _compare("load", obs.load, exp.get("load", {}))
        out += [f"{r.ref.id} [{v}]: the reference engine contradicts the case's "
                f"expectation: {m}" for m in found]
    return out


def select_id(cid: str, entry: dict, pattern: str) -> bool:
    pat = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return fnmatch.fnmatchcase(cid, pat) or fnmatch.fnmatchcase(entry.get("file", ""), pat)


def _prune_dirs(top: Path) -> None:
    if not top.is_dir():
        return
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            d.rmdir()
        except OSError:
            pass


def _variant_change(root: Path, r: Rendered, v: str, old: dict | None, new: dict) -> list[str]:
    if old is None:
        return [f"newly pinned: {_describe_save(new['save'])}"]
    detail = []
    os_, ns = old["save"], new["save"]
    if _save_key(os_) != _save_key(ns):
        detail.append(f"save: {_describe_save(os_)} -> {_describe_save(ns)}")
        if os_.get("kind") == "ok" and ns.get("kind") == "ok":
            old_data = _read(root, os_["stream"])
            new_data = r.files.get(ns["stream"])
            if old_data is not None and new_data is not None:
                detail += stream_diff(root, r.ref, v, os_["stream"], old_data, new_data)
    if os_.get("vmdesc") != ns.get("vmdesc"):
        detail.append(f"vmdesc: {os_.get('vmdesc')} -> {ns.get('vmdesc')}")
    ol, nl = old.get("load"), new.get("load")
    if (ol is None) != (nl is None):
        detail.append(f"load: {ol and ol['kind']} -> {nl and nl['kind']}")
    elif nl is not None:
        try:
            od = read_state_doc(root, ol["state"])
        except GoldenError:
            od = {"loads": []}
        nd = json.loads(r.files[nl["state"]])
        orec = next((x for x in od["loads"] if v in x["variants"]), {})
        nrec = next((x for x in nd["loads"] if v in x["variants"]), {})
        strip = {k: x for k, x in orec.items() if k != "variants"}
        nstrip = {k: x for k, x in nrec.items() if k != "variants"}
        if strip != nstrip:
            detail.append("load:")
            detail += value_diff(strip, nstrip, "$")
    return detail


# ---------------------------------------------------------------------------------------
# Command line: vmstate-conformance golden {verify,regen,show}


def add_subcommands(sub) -> None:
    p = sub.add_parser("golden", help="the golden stream corpus: verify, regen, show")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION")
    v = gsub.add_parser("verify", help="check every case x variant x engine against the "
                                       "pinned files (never writes)")
    v.add_argument("--case", help="only cases whose id, file or name matches (fnmatch)")
    v.add_argument("--engine", action="append", help="engines (default: every available one)")
    v.add_argument("--root", help="repository root (default: found from the current directory)")
    v.add_argument("-j", "--jobs", type=int, default=1,
                   help="worker processes (default 1; the corpus takes a few CPU seconds)")
    v.set_defaults(func=cmd_verify)
    r = gsub.add_parser("regen", help="rewrite the pinned files from the reference engine")
    r.add_argument("--case", help="only cases whose id, file or name matches (fnmatch)")
    r.add_argument("--force", action="store_true", help="regenerate even when CI is set")
    r.add_argument("--root", help="repository root (default: found from the current directory)")
    r.set_defaults(func=cmd_regen)
    s = gsub.add_parser("show", help="print the annotated stream of a case under a variant")
    s.add_argument("case", help="case id, file or name (fnmatch)")
    s.add_argument("--variant", choices=list(VARIANTS), default="legacy")
    s.add_argument("--root")
    s.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def cmd_verify(args) -> int:
    try:
        root = Path(args.root) if args.root else find_root()
        problems = verify(root, args.case, args.engine, max(args.jobs, 1))
    except GoldenError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return 1
    for p in problems:
        print(str(p))
    if problems:
        print(f"golden verify: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    from conformance.engines import available

    m = load_manifest(root)
    n = len(select(discover(root)[0], args.case))
    print(f"golden verify: ok ({n} cases x {len(VARIANTS)} variants x engines "
          f"{', '.join(args.engine or available())}; {len(m.get('streams', {}))} pinned "
          f"streams in the corpus)")
    return 0


def cmd_regen(args) -> int:
    try:
        regen(Path(args.root) if args.root else None, args.case, args.force)
    except GoldenError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_show(args) -> int:
    root = Path(args.root) if args.root else find_root()
    refs, _ = discover(root)
    chosen = select(refs, args.case)
    if not chosen:
        print(f"vmstate-conformance: no case matches {args.case!r}", file=sys.stderr)
        return 1
    for ref in chosen:
        out, spans = _record_save(ref.case.description, ref.case.source, args.variant)
        if not out.ok:
            print(f"# {ref.id} [{args.variant}]: save {out.summary()}")
            continue
        sys.stdout.write(render_hex(out.data, spans, [f"{ref.id} [{args.variant}]"]))
    return 0


# ---------------------------------------------------------------------------------------
# Coverage

#: infos that cannot appear in a file stream: a case must exist, a pinned stream need not
STREAM_EXEMPT_INFOS = {"fd": "vmstate_info_fd passes the descriptor as SCM_RIGHTS "
                             "ancillary data; a file stream has no place for it"}


def coverage(refs: Iterable[CaseRef], manifest: dict) -> dict:
    """Which flags and infos the corpus exercises, and which it misses.

    A flag or info counts as covered when some case uses it and that case saved
    successfully (has a pinned stream) under at least one variant; infos in
    :data:`STREAM_EXEMPT_INFOS` only need a case."""
    from conformance.model.infos import FIELD_INFOS

    used_flags: dict[str, set] = {}
    used_infos: dict[str, set] = {}
    for ref in refs:
        entry = manifest.get("cases", {}).get(ref.id)
        streamed = bool(entry) and any(e["save"].get("stream")
                                       for e in entry["variants"].values())
        for field in _fields_of(ref.case):
            for f in F:
                if f.value and f in field.flags:
                    used_flags.setdefault(f.name, set()).add((ref.id, streamed))
            if field.info:
                used_infos.setdefault(field.info, set()).add((ref.id, streamed))

    def missing(names, used, exempt=()):
        out = []
        for name in names:
            uses = used.get(name, set())
            if not uses or (name not in exempt and not any(s for _, s in uses)):
                out.append(name)
        return out

    flags = [f.name for f in F if f.value]
    return {"flags": {n: sorted(c for c, _ in used_flags.get(n, ())) for n in flags},
            "infos": {n: sorted(c for c, _ in used_infos.get(n, ())) for n in FIELD_INFOS},
            "missing_flags": missing(flags, used_flags),
            "missing_infos": missing(FIELD_INFOS, used_infos, STREAM_EXEMPT_INFOS)}
