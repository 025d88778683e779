"""``states()`` and ``destinations()``: values for a finished description.

The description is the schema; these strategies only draw values that fit it
(conformance/state.py documents the value model).  Counters and size members are drawn
first, from the budget, and the arrays and buffers that depend on them follow, so a
source state always describes itself consistently.

Shrinking: integers shrink toward 0, byte strings toward zeros and short, lists toward
short, and pointer-array slots toward non-NULL (``None`` is the second choice), so a
failing state shrinks toward small counts, zero values and few NULLs.
"""

from __future__ import annotations

import copy

from hypothesis import event
from hypothesis import strategies as st

from conformance.engines._common import _s32
from conformance.engines.codecs import bitmap_words_of
from conformance.engines.reference import field_exists
from conformance.model import variants as _variants
from conformance.model.description import Description, Field
from conformance.model.flags import ANY_VARRAY, F
from strategies.descriptions import DEFAULT_BUDGET, Budget

#: destination kinds: how a load pre-state relates to the source
DESTINATION_KINDS = ("matching", "all-null", "pre-populated", "mismatched-null",
                     "stale-counter")

_U64 = (1 << 64) - 1


def _dependents(desc: Description) -> dict[str, Field]:
    """counter / size member -> the field that reads it, over fields and subsections."""
    out: dict[str, Field] = {}

    def visit(d: Description) -> None:
        for f in d.fields:
            if f.num_member is not None and f.flags & ANY_VARRAY and not f.flags & F.ARRAY:
                out.setdefault(f.num_member, f)
            if f.size_member is not None and f.flags & F.VBUFFER:
                out.setdefault(f.size_member, f)
        for sub in d.subsections:
            visit(sub)

    visit(desc)
    return out


def _all_fields(desc: Description):
    """Fields of one struct in load order: its own, then its subsections' (depth first)."""
    for f in desc.fields:
        yield f
    for sub in desc.subsections:
        yield from _all_fields(sub)


def _count(field: Field, struct: dict) -> int:
    """Elements of an array field given the (already drawn) counter."""
    if field.flags & F.ARRAY:
        return field.num
    n = int(struct.get(field.num_member, 0))
    if field.flags & F.MULTIPLY_ELEMENTS:
        n *= field.num
    return n


def _vsize(field: Field, struct: dict) -> int:
    size = int(struct.get(field.size_member, 0))
    if field.flags & F.MULTIPLY:
        size *= field.size
    return size


class _Gen:
    def __init__(self, draw, budget: Budget) -> None:
        self.draw = draw
        self.b = budget

    # -- source ------------------------------------------------------------------------
    def struct(self, desc: Description) -> dict:
        deps = _dependents(desc)
        out: dict = {}
        for field in _all_fields(desc):
            m = field.member
            if m is None or m in out:
                continue
            if m in deps:
                out[m] = self.counter(deps[m])
            else:
                out[m] = self.member(field, out)
        for d in (desc,):
            if d.post_load is not None and hasattr(d.post_load, "set"):
                for member, value in d.post_load.set:  # post_load will store these
                    out[member] = value
        return out

    def counter(self, dep: Field) -> int:
        b = self.b
        if dep.flags & F.VBUFFER:
            if dep.info == "bitmap":
                return self.draw(st.integers(0, 8 * b.max_bytes + 3))
            per = dep.size if dep.flags & F.MULTIPLY else 1
            return self.draw(st.integers(0, b.max_bytes // max(per, 1)))
        per = dep.num if dep.flags & F.MULTIPLY_ELEMENTS else 1
        return self.draw(st.integers(0, b.max_elems // max(per, 1)))

    def member(self, field: Field, struct: dict):
        flags = field.flags
        if flags & F.ARRAY_OF_POINTER:
            n = _count(field, struct)
            slots = [self.draw(st.one_of(st.just(False), st.just(True))) for _ in range(n)]
            if any(slots):
                event("state:null-slot")
            return [None if null else self.element(field) for null in slots]
        if flags & (F.ARRAY | ANY_VARRAY):
            return [self.element(field) for _ in range(_count(field, struct))]
        if flags & F.VBUFFER:
            size = _vsize(field, struct)
            if field.info == "bitmap":
                return self.draw(st.integers(0, (1 << size) - 1)) if size else 0
            if size == 0 and self.draw(st.booleans()):
                event("state:null-empty-vbuffer")
                return None  # a device that never allocated its empty buffer
            return self.draw(st.binary(min_size=size, max_size=size))
        return self.element(field)

    def element(self, field: Field):
        if field.flags & (F.STRUCT | F.VSTRUCT):
            return self.struct(field.vmsd)
        info = field.info_obj
        kind = info.kind
        draw = self.draw
        if kind in ("int", "timer", "equal"):
            return draw(st.integers(info.min, info.max))
        if kind == "le":
            return draw(st.integers(0, info.max))
        if kind == "bool":
            return draw(st.booleans())
        if kind == "double":
            return draw(st.integers(0, _U64))
        if kind == "buffer":
            return draw(st.binary(min_size=field.size, max_size=field.size))
        if kind == "gbytearray":
            return draw(st.binary(max_size=self.b.max_bytes))
        if kind == "capability":
            return draw(st.text("abcdefghijklmnopqrstuvwxyz-", max_size=12))
        if kind in ("qtailq", "qlist"):
            return [self.struct(field.vmsd)
                    for _ in range(draw(st.integers(0, self.b.max_elems)))]
        if kind == "gtree":
            n = draw(st.integers(0, self.b.max_elems))
            if field.key_vmsd is None:
                keys = sorted(draw(st.lists(st.integers(0, _U64), min_size=n, max_size=n,
                                            unique=True)))
            else:
                raw = draw(st.lists(st.integers(0, 0xFFFFFFFF), min_size=n, max_size=n,
                                    unique=True))
                member = field.key_vmsd.fields[0].member
                keys = [{member: k} for k in sorted(raw)]
            return [[k, self.struct(field.vmsd)] for k in keys]
        return None

    # -- destinations ------------------------------------------------------------------
    def dest_struct(self, desc: Description, src: dict, version: int, active: bool,
                    mode: str, v) -> dict:
        """A load pre-state for ``desc`` given the source struct ``src``.

        Members the load writes (the field exists, its subsection is sent) get fresh
        values with the constraints the load needs; every other member keeps the
        source's value, so that after a correct load the destination equals the source.
        """
        migrated: dict[str, tuple[Field, int]] = {}

        def walk(d: Description, ver: int, on: bool) -> None:
            for f in d.fields:
                if f.member is None or f.member in migrated:
                    continue
                migrated[f.member] = (f, ver) if on and field_exists(f, src, ver) else (f, -1)
            for sub in d.subsections:
                walk(sub, sub.version_id, on and (sub.needed is None or bool(sub.needed(src))))

        walk(desc, version, active)
        out = {}
        for member, value in src.items():
            field, ver = migrated.get(member, (None, -1))
            if field is None or ver < 0:
                out[member] = copy.deepcopy(value)
            else:
                out[member] = self.dest_member(field, value, src, mode, v)
        if mode != "stale-counter":
            # a device allocates its bitmap for its own size: the destination agrees on
            # the size member (a smaller one is written past its end, class B2)
            for field, ver in migrated.values():
                if ver >= 0 and field.info == "bitmap" and field.size_member in src:
                    out[field.size_member] = copy.deepcopy(src[field.size_member])
        return out

    def dest_member(self, field: Field, value, src: dict, mode: str, v):
        flags = field.flags
        if flags & F.ARRAY_OF_POINTER:
            if value is None:
                return None
            if v.is_auto(field):
                if mode == "pre-populated":
                    event("dest:populated-auto-slot")
                    return [self.dest_element(field, s, mode, v) if s is not None
                            else self.zero_element(field) for s in value]
                if mode == "stale-counter" and value:
                    return [None] * (len(value) - 1)
                return [None] * len(value)
            slots = [None if s is None else self.dest_element(field, s, mode, v) for s in value]
            if mode == "all-null":
                return [None] * len(value)
            if mode == "mismatched-null" and slots:
                i = self.draw(st.integers(0, len(slots) - 1))
                slots[i] = self.zero_element(field) if slots[i] is None else None
                event("dest:mismatched-null")
            if mode == "stale-counter" and not flags & F.ARRAY and slots:
                slots = slots[:-1]
            return slots
        if flags & (F.ARRAY | ANY_VARRAY):
            if value is None:
                return None
            if flags & F.ALLOC and flags & F.POINTER:
                if mode == "pre-populated":
                    return copy.deepcopy(value)
                return None if value else []
            if flags & F.POINTER and mode == "all-null":
                return None
            out = [self.dest_element(field, e, mode, v) for e in value]
            if mode == "stale-counter" and not flags & F.ARRAY and out:
                out = out[:-1]
            return out
        if flags & F.VBUFFER:
            if field.info == "bitmap":
                # get_bitmap writes BITS_TO_U64S(size) words and leaves the rest: a
                # destination whose bits all lie in those words round-trips
                words = bitmap_words_of(_s32(src.get(field.size_member, 0)))
                return self.draw(st.integers(0, 7)) if words else 0
            if value is None:
                return None
            if flags & F.ALLOC:
                if mode == "pre-populated":
                    return bytes(len(value))
                return None if value else value
            if mode == "all-null":
                return None
            if mode == "stale-counter" and value:
                return bytes(len(value) - 1)
            return self.draw(st.binary(min_size=len(value), max_size=len(value)))
        if flags & F.POINTER and mode == "all-null":
            return None
        return self.dest_element(field, value, mode, v)

    def dest_element(self, field: Field, value, mode: str, v):
        if field.flags & (F.STRUCT | F.VSTRUCT):
            version = (field.vmsd.version_id if field.flags & F.STRUCT
                       else field.struct_version_id)
            return self.dest_struct(field.vmsd, value, version, True, mode, v)
        info = field.info_obj
        kind = info.kind
        if kind == "equal":
            return value
        if kind == "le":
            return self.draw(st.integers(value, info.max))
        if kind in ("qtailq", "qlist", "gtree"):
            return copy.deepcopy(value) if mode == "pre-populated" else []
        if kind == "buffer" and field.flags & F.BUFFER:
            return self.draw(st.binary(min_size=len(value), max_size=len(value)))
        return self.element(field)

    def zero_element(self, field: Field):
        from conformance.model.state import _zero_element

        return _zero_element(field)


@st.composite
def states(draw, description: Description, *, budget: Budget | None = None) -> dict:
    """A source state for ``description``: every member, counters consistent.

    Shrinks toward zero values, short arrays and buffers, and non-NULL slots.
    """
    return _Gen(draw, budget or DEFAULT_BUDGET).struct(description)


@st.composite
def destinations(draw, description: Description, source: dict, variant="legacy", *,
                 kind: str | None = None, budget: Budget | None = None) -> dict:
    """A load pre-state for ``description`` when ``source`` was saved.

    ``kind`` (default: drawn from :data:`DESTINATION_KINDS`, shrinking toward
    ``matching``):

    * ``matching``: what a correct load needs.  Every member the load writes is drawn
      afresh, except what the destination must agree on: ``*_equal`` values, ``le``
      bounds, array lengths, and pointers.  Legacy pointer arrays keep the source's NULL
      pattern (the destination decides where markers are); auto-allocating arrays have
      all-NULL slots (QEMU 11 asserts ``*pptr == NULL``); VMS_ALLOC members are NULL.
      Members the load does not write equal the source.
    * ``all-null``: every pointer and pointer-array slot NULL;
    * ``pre-populated``: auto slots and VMS_ALLOC members hold objects, queues hold
      elements;
    * ``mismatched-null``: one slot of each legacy pointer array flips NULL-ness;
    * ``stale-counter``: variable arrays and buffers one element shorter than the
      source's counter says.
    """
    v = _variants.get(variant)
    if kind is None:
        kind = draw(st.sampled_from(DESTINATION_KINDS))
    event(f"dest:{kind}")
    gen = _Gen(draw, budget or DEFAULT_BUDGET)
    return gen.dest_struct(description, source, description.version_id, True, kind, v)


def matching_destination(draw, description, source, variant, budget=None) -> dict:
    """``destinations(kind="matching")`` inside an ``@composite`` or ``data.draw``."""
    return draw(destinations(description, source, variant, kind="matching", budget=budget))


__all__ = ["DESTINATION_KINDS", "states", "destinations"]
