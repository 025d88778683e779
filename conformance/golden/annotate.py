"""Byte annotation: which bytes of a saved stream belong to which field element.

``annotate(desc, state, variant)`` runs the reference engine's save with a span
recorder and returns :class:`Span` records (offset, length, field path, value) for
every element written: leaf values, pointer markers (``kind == "marker"``), and the
enclosing struct elements (``kind == "element"`` with a dict value).  Bytes no element
accounts for (subsection headers, QTAILQ/QLIST/GTREE link bytes and counts) come back as ``kind == "framing"`` spans, so the
leaf spans plus framing tile the stream exactly.

The reference engine is the executable spec; the annotation is therefore exactly what
the engine wrote, not a re-derivation.
"""

from __future__ import annotations

from typing import Any

import attrs

from conformance.model import variants as _variants
from conformance.model.state import clone, fill_missing, to_plain


@attrs.frozen
class Span:
    offset: int
    length: int
    path: str
    value: Any = None
    kind: str = "element"  # "element" | "marker" | "framing"
    depth: int = 0  # nesting: 0 = a top-level field's element

    @property
    def end(self) -> int:
        return self.offset + self.length

    def describe(self) -> str:
        if self.kind == "marker":
            return f"marker 0x{self.value:02x} ({'NULL' if self.value == 0x30 else 'VALID'})"
        if self.kind == "framing":
            return "framing (subsection header, queue/tree link byte)"
        if isinstance(self.value, (dict, list)):
            return "struct" if isinstance(self.value, dict) else "list"
        return repr(to_plain(self.value)) if not isinstance(self.value, int) else str(self.value)


class AnnotateError(ValueError):
    pass


def annotate(desc, state, variant="legacy", *, leaves: bool = False) -> list[Span]:
    """Spans of the stream ``desc`` saves for ``state`` under ``variant``, ordered by
    offset (enclosing spans before their contents).  ``leaves=True`` drops enclosing
    struct spans.  Raises :class:`AnnotateError` when the save does not succeed."""
    from conformance.engines import reference as R
    from conformance.engines.qemufile import QEMUFileWriter
    from conformance.model.check import rejected as check_rejected

    v = _variants.get(variant)
    rejected = check_rejected(desc, v, "save")
    if rejected is not None:
        raise AnnotateError(f"{rejected.path}: {rejected.message}")
    f = QEMUFileWriter()
    ctx = R._Ctx(v, f)
    ctx.spans = []
    opaque = fill_missing(desc, clone(state))
    try:
        ret = R._save_vmsd(ctx, desc, opaque, None, desc.version_id, desc.name)
    except (R.Abort, R.Undefined) as exc:
        raise AnnotateError(f"{exc.path}: save fails: {exc.message}") from None
    if ret:
        raise AnnotateError(f"{ctx.err_path or desc.name}: save fails ({ret})")
    total = len(f.getvalue())
    raw = sorted(ctx.spans, key=lambda s: (s[0], -s[1]))
    spans = []
    for off, length, path, kind, value in raw:
        if length == 0 and kind == "element" and isinstance(value, (dict, list)):
            continue
        depth = path.count("/") - 1
        spans.append(Span(off, length, path, value, kind, depth))
    leaf = [s for s in spans if not _encloses(s, spans)]
    covered = [False] * total
    for s in leaf:
        for k in range(s.offset, min(s.end, total)):
            covered[k] = True
    k = 0
    while k < total:
        if covered[k]:
            k += 1
            continue
        j = k
        while j < total and not covered[j]:
            j += 1
        owners = [s for s in spans if s.offset <= k and j <= s.end and s.kind == "element"]
        owner = max(owners, key=lambda s: (s.depth, -s.length), default=None)
        spans.append(Span(k, j - k, owner.path if owner else desc.name, None, "framing",
                          owner.depth + 1 if owner else 0))
        leaf.append(spans[-1])
        k = j
    out = leaf if leaves else spans
    return sorted(out, key=lambda s: (s.offset, -s.length, s.depth))


def _encloses(span: Span, spans: list[Span]) -> bool:
    """An element span (struct, queue, tree, tmp) that has other spans inside it."""
    if span.kind != "element":
        return False
    return any(o is not span and o.offset >= span.offset and o.end <= span.end
               and _inside(o.path, span.path) for o in spans)


def _inside(path: str, outer: str) -> bool:
    return path.startswith(outer + "/") or path.startswith(outer + "[")


def render(data: bytes, spans: list[Span], width: int = 16) -> list[str]:
    """One line per leaf span: offset, hex bytes (wrapped), path, value."""
    lines = []
    for s in spans:
        if _encloses(s, spans):
            continue
        chunk = data[s.offset:s.end].hex(" ")
        if len(chunk) > width * 3:
            chunk = chunk[: width * 3 - 4] + " ..."
        lines.append(f"{s.offset:5d}  {chunk:<{width * 3}}  {s.path}  {s.describe()}")
    return lines
