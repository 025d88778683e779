"""The golden stream corpus: layout, case discovery, the pinned manifest, coverage.

``golden/FORMAT.md`` documents the layout.  In short: every case file under the corpus
sources (:data:`SOURCES`) is run under every variant; each distinct byte sequence a case
saves to is pinned once as ``golden/streams/<case-id>.<hash>.bin`` together with an
annotated hex view (``.hex.txt``), the loaded states (``.state.json``) and, per distinct
vmdesc text, ``.vmdesc.json``.  ``golden/manifest.json`` maps case -> variant -> files
and ``golden/divergences.json`` lists where the variants disagree and why.

This module holds what the rest of :mod:`conformance.golden` shares: the layout
constants, discovery and selection of the case files (:class:`CaseRef`), reading and
validating the pinned manifest and state documents, the manifest's streams index, and
what the corpus covers (:func:`coverage`).  The two operations are
:func:`conformance.golden.verification.verify` (never writes; a stream mismatch is
reported as a field-level diff of the annotated hex view) and
:func:`conformance.golden.regeneration.regen` (writes only what the reference engine
produces, atomically; refuses to run when ``CI`` is set unless forced).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from conformance.cases import Case, CaseError, load_case_file, load_python_cases
from conformance.model import variants as _variants
from conformance.model.flags import F

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


def jpath(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(key)):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(str(key))}]"


def variant_groups(keyed: dict) -> list[tuple[Any, list[str]]]:
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


def fields_of(case: Case):
    for _path, desc in case.description.walk():
        yield from desc.fields


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


def select_id(cid: str, entry: dict, pattern: str) -> bool:
    pat = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return fnmatch.fnmatchcase(cid, pat) or fnmatch.fnmatchcase(entry.get("file", ""), pat)


# ---------------------------------------------------------------------------------------
# Reading the pinned corpus (validated: one-line errors naming file and JSON path)


def require(cond: bool, where: str, jpath: str, message: str) -> None:
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
    require(isinstance(obj, dict), where, "$", "the manifest must be an object")
    require(obj.get("format") == FORMAT_ID, where, "$.format",
             f"expected {FORMAT_ID!r}, got {obj.get('format')!r}")
    cases = obj.get("cases")
    require(isinstance(cases, dict), where, "$.cases", "must be an object")
    for cid, entry in cases.items():
        p = jpath("$.cases", cid)
        require(isinstance(entry, dict), where, p, "must be an object")
        require(isinstance(entry.get("file"), str), where, f"{p}.file", "must be a string")
        per = entry.get("variants")
        require(isinstance(per, dict), where, f"{p}.variants", "must be an object")
        for v, e in per.items():
            vp = jpath(f"{p}.variants", v)
            require(v in VARIANTS, where, vp, f"unknown variant {v!r}")
            require(isinstance(e, dict), where, vp, "must be an object")
            save = e.get("save")
            require(isinstance(save, dict) and isinstance(save.get("kind"), str), where,
                     f"{vp}.save", "must be an object with a kind")
            for key in ("stream", "vmdesc"):
                if key in save:
                    require(_is_stream_path(save[key]), where, f"{vp}.save.{key}",
                             f"must be a path under {STREAMS}/, got {save[key]!r}")
            load = e.get("load")
            require(load is None or (isinstance(load, dict)
                                      and isinstance(load.get("state"), str)),
                     where, f"{vp}.load", "must be null or an object with a state path")
            if load is not None:
                require(_is_stream_path(load["state"]), where, f"{vp}.load.state",
                         f"must be a path under {STREAMS}/, got {load['state']!r}")
    require(isinstance(obj.get("streams", {}), dict), where, "$.streams", "must be an object")
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
    require(isinstance(obj, dict), where, "$", "must be an object")
    require(obj.get("format") == STATE_FORMAT_ID, where, "$.format",
             f"expected {STATE_FORMAT_ID!r}")
    loads = obj.get("loads")
    require(isinstance(loads, list), where, "$.loads", "must be a list")
    for i, ld in enumerate(loads):
        require(isinstance(ld, dict) and isinstance(ld.get("variants"), list)
                 and isinstance(ld.get("kind"), str), where, f"$.loads[{i}]",
                 "must be an object with variants and kind")
    return obj


def read_pinned(root: Path, name: str) -> bytes | None:
    try:
        return (root / GOLDEN / name).read_bytes()
    except OSError:
        return None


def pinned_files(root: Path) -> set[str]:
    """Every file under golden/streams, golden-relative."""
    top = root / GOLDEN / STREAMS
    if not top.is_dir():
        return set()
    return {p.relative_to(root / GOLDEN).as_posix() for p in top.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def entry_files(entry: dict) -> set[str]:
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
                out.add(input_view_name(e["load"]["state"]))
    return out


def input_view_name(state_name: str) -> str:
    """<stem>.input-<hash>.state.json -> <stem>.input-<hash>.hex.txt"""
    return state_name.removesuffix(".state.json") + ".hex.txt"


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
        for field in fields_of(ref.case):
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
