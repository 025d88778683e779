"""Rendering one case's golden files: what regen writes and verify expects.

:func:`observe` runs a case under one variant with one engine; :func:`save_summary` and
:func:`load_record` are what the manifest and the ``.state.json`` documents pin of its
outcomes; :func:`render_hex` / :func:`parse_hex` write and read the annotated hex view
(``.hex.txt``); :func:`render_case` renders every file of a case (streams, views, loaded
states, vmdesc texts) and its manifest entry; :func:`render_input_view` annotates a
case's ``load_input``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import attrs

from conformance.cases import Case
from conformance.golden.corpus import (
    COLLAPSE_MIN,
    HEX_SHOW,
    STATE_FORMAT_ID,
    STREAMS,
    VARIANTS,
    CaseRef,
    GoldenError,
    dumps,
    input_view_name,
    short_hash,
    variant_groups,
)
from conformance.golden.recorder import Span, record_load, record_save, short_hex
from conformance.model.state import to_plain

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
            saved, spans = record_save(case.description, case.source, variant, vmdesc=True)
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
        shown = short_hex(chunk).split("…")[0] + ("…" if s.length > HEX_SHOW else "")
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
# Rendering one case's golden files


@attrs.frozen
class Rendered:
    ref: CaseRef
    files: dict  # golden-relative path -> bytes
    entry: dict  # the manifest entry
    problems: tuple = ()  # why something could not be pinned
    observations: dict = attrs.field(factory=dict)  # variant -> Observation


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
    by_stream = variant_groups({v: e["save"].get("stream") for v, e in variants.items()})
    for name, vs in by_stream:
        if name is None:
            continue
        data = streams[name]
        spans = observations[vs[0]].spans
        if spans is None:
            _, spans = record_save(case.description, case.source, vs[0])
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
        loads = [{"variants": vs, **rec} for rec, vs in variant_groups(per_variant)]
        doc = {"format": STATE_FORMAT_ID, "case": ref.id,
               "input": ("load_input (the case file's bytes)" if case.load_input is not None
                         else f"the stream + trailer {case.trailer.hex() or '(none)'}"),
               "destination": to_plain(case.dest_state()),
               "load_version": case.load_version,
               "loads": loads}
        files[name] = dumps(doc).encode()
        if case.load_input is not None:
            files[input_view_name(name)] = render_input_view(ref, list(per_variant)).encode()
    entry = {"file": ref.file}
    if ref.index is not None:
        entry["index"] = ref.index
    entry["name"] = case.name
    entry["declared_variants"] = list(case.variants)
    entry["variants"] = variants
    return Rendered(ref, files, entry, tuple(problems), observations)


def render_input_view(ref: CaseRef, variants: list[str]) -> str:
    """The annotated view of a case's load_input: what the reference load read as which
    field, one section per distinct reading among ``variants``."""
    case = ref.case
    data = case.load_input
    sections: list[tuple[str, list[str]]] = []
    for v in variants:
        out, spans = record_load(case.description, data, case.dest_state(), v,
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
