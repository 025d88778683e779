"""Field-level and value-level diffs: how verify and regen say what changed.

:func:`field_diff` compares two streams span by span (the annotated fields of each),
:func:`stream_diff` does it for a pinned stream against new bytes (with the pinned
``.hex.txt`` as the old fields), :func:`value_diff` compares two plain JSON values by
JSON path.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import attrs

from conformance.golden.corpus import GOLDEN, CaseRef, GoldenError, jpath, read_pinned
from conformance.golden.recorder import (
    Span,
    decode_value,
    fill_gaps,
    marker_value,
    record_save,
    short_hex,
)
from conformance.golden.render import parse_hex


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
            return marker_value(data[span.offset:span.offset + 1])
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
                         f"{short_hex(old[so.offset:so.offset + so.length]) or '(none)'}"
                         f" ({vo or '-'}) -> "
                         f"{short_hex(new[sn.offset:sn.offset + sn.length]) or '(none)'}"
                         f" ({vn or '-'})")
        for k in olds:
            s, v = show(old_spans, k)
            lines.append(f"  removed {s.path} @0x{s.offset:x}: "
                         f"{short_hex(old[s.offset:s.offset + s.length])} ({v or '-'})")
        for k in news:
            s, v = show(new_spans, k)
            lines.append(f"  added   {s.path} @0x{s.offset:x}: "
                         f"{short_hex(new[s.offset:s.offset + s.length])} ({v or '-'})")
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
                    out.append(f"  {jpath(p, k)}: {_brief(x[k])} -> (absent)")
                elif k not in x:
                    out.append(f"  {jpath(p, k)}: (absent) -> {_brief(y[k])}")
                else:
                    walk(x[k], y[k], jpath(p, k))
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) == len(y):
                for k in range(len(x)):
                    walk(x[k], y[k], jpath(p, k))
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
                    walk(x[i1 + k], y[j1 + k], jpath(p, j1 + k))
                for k in range(i1 + pairs, i2):
                    out.append(f"  {jpath(p, k)}: {_brief(x[k])} -> (removed)")
                for k in range(j1 + pairs, j2):
                    out.append(f"  {jpath(p, k)}: (added) -> {_brief(y[k])}")
        elif x != y or type(x) is not type(y):
            out.append(f"  {p}: {_brief(x)} -> {_brief(y)}")

    walk(old, new, path)
    if len(out) > limit:
        out = out[:limit] + ["  ..."]
    return out


def _brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def stream_diff(root: Path, ref: CaseRef, variant: str, name: str, old: bytes,
                new: bytes) -> list[str]:
    """Field-level diff of a pinned stream against new bytes."""
    hex_name = name.removesuffix(".bin") + ".hex.txt"
    text = read_pinned(root, hex_name)
    old_spans = None
    if text is not None:
        try:
            old_spans = parse_hex(text.decode("utf-8", "replace"), f"{GOLDEN}/{hex_name}")
        except GoldenError:
            old_spans = None
    ref_out, ref_spans = record_save(ref.case.description, ref.case.source, variant)
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
        new_spans = fill_gaps([s for s in ref_spans if s.offset + s.length <= len(new)],
                               len(new))
    if old_spans is None or sum(s.length for s in old_spans) != len(old):
        old_spans = fill_gaps([s for s in new_spans if s.offset + s.length <= len(old)],
                               len(old))
        note.append(f"  (no usable {GOLDEN}/{hex_name}: old fields laid out as the new ones)")
    return ["  " + line if not line.startswith("  ") else line
            for line in field_diff(old, old_spans, new, new_spans)] + note


def text_diff(old: bytes, new: bytes) -> str:
    a, b = old.decode("utf-8", "replace"), new.decode("utf-8", "replace")
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return (f"  first difference at character {i}:\n"
            f"  pinned: ...{a[max(0, i - 40):i + 40]!r}\n"
            f"  now:    ...{b[max(0, i - 40):i + 40]!r}")
