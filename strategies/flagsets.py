"""``flag_sets()``: valid flag combinations, and invalid ones labelled with their rule.

An invalid flag set is a small description in which exactly one field (or, for
``end-canary`` and ``subsection-prefix``, the description itself) breaks exactly one
rule of :data:`conformance.model.check.RULES`; ``rule`` names it and ``path`` says where
``check()`` must report it.  The offending field sits at the top level or inside a
nested struct, beside a few valid fields.

Shrinking: toward the first applicable rule, a top-level position, no neighbours, the
simplest info and the smallest counts.
"""

from __future__ import annotations

import attrs
from hypothesis import event
from hypothesis import strategies as st

from conformance.model import variants as _variants
from conformance.model.check import RULES
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.infos import lookup
from strategies.descriptions import SCALAR_INFOS, descriptions


@attrs.frozen
class FlagSet:
    """A one-rule test of ``check()``: ``rule`` is None for a valid set."""

    flags: F
    description: Description
    rule: str | None = None
    path: str | None = None

    @property
    def severity(self) -> str | None:
        return RULES[self.rule][0] if self.rule else None


def rules_for(variant) -> tuple[str, ...]:
    """The rules a description can break under ``variant`` (check.py decides which apply)."""
    v = _variants.get(variant)
    out = ["struct-needs-vmsd", "field-needs-info", "field-needs-member", "varray-needs-counter",
           "vbuffer-needs-size-member", "array-xor-varray", "one-varray-kind",
           "multiply-needs-vbuffer", "alloc-needs-pointer"]
    if not v.pointer_array_rules or v.pointer_array_rules == "auto-alloc":
        out.append("alloc-pointer-array-entries")
    if any(f not in v.numbering for f in F if f.value):
        out.append("flag-not-in-variant")
    if v.has_check:
        out += ["end-canary", "subsection-prefix"]
    if v.pointer_array_rules:
        out += ["pointer-array-needs-array", "auto-alloc-needs-size", "pointer-array-no-size"]
    if v.pointer_array_rules == "auto-alloc":
        out.append("auto-alloc-needs-pointer-array")
    return tuple(out)


def _bad_field(draw, rule: str, v, name: str) -> Field:
    info = draw(st.sampled_from(SCALAR_INFOS[:6]))
    size = lookup(info).c_size
    num = draw(st.integers(1, 3))
    pa_size = 8 if v.pointer_array_size == "stride" else 0
    if rule == "struct-needs-vmsd":
        return Field(name, draw(st.sampled_from((F.STRUCT, F.VSTRUCT, F.STRUCT | F.ARRAY))),
                     None, num=num)
    if rule == "field-needs-info":
        return Field(name, draw(st.sampled_from((F.SINGLE, F.ARRAY))), None, num=num)
    if rule == "field-needs-member":
        return Field(name, draw(st.sampled_from((F.SINGLE, F.ARRAY))), info, None, size=size,
                     num=num)
    if rule == "varray-needs-counter":
        kind = draw(st.sampled_from((F.VARRAY_UINT32, F.VARRAY_INT32, F.VARRAY_UINT16,
                                     F.VARRAY_UINT8)))
        return Field(name, kind, info, size=size)
    if rule == "vbuffer-needs-size-member":
        return Field(name, F.VBUFFER | F.POINTER, "buffer")
    if rule == "array-xor-varray":
        kind = draw(st.sampled_from((F.VARRAY_UINT32, F.VARRAY_UINT16)))
        return Field(name, F.ARRAY | kind, info, size=size, num=num, num_member="n")
    if rule == "one-varray-kind":
        return Field(name, F.VARRAY_UINT8 | F.VARRAY_UINT16, info, size=size, num_member="n")
    if rule == "multiply-needs-vbuffer":
        return Field(name, F.BUFFER | F.MULTIPLY, "buffer", size=num)
    if rule == "alloc-needs-pointer":
        return Field(name, F.ARRAY | F.ALLOC, info, size=size, num=num)
    if rule == "alloc-pointer-array-entries":
        # POINTER|ALLOC on a pointer array: the core allocates the array, not the entries
        return Field(name, F.ARRAY | F.ARRAY_OF_POINTER | F.POINTER | F.ALLOC, info,
                     size=pa_size, num=num)
    if rule == "flag-not-in-variant":
        # spelled like a non-allocating pointer array of the variant (size convention)
        return Field(name, F.ARRAY | F.ARRAY_OF_POINTER | F.AUTO_ALLOC, info, size=pa_size,
                     num=num)
    if rule == "pointer-array-needs-array":
        return Field(name, F.ARRAY_OF_POINTER, info, size=0)
    if rule == "auto-alloc-needs-size":
        # alloc: POINTER too, or the documented alloc-needs-pointer warning joins in
        auto = F.AUTO_ALLOC if v.pointer_array_rules == "auto-alloc" else F.ALLOC | F.POINTER
        return Field(name, F.ARRAY | F.ARRAY_OF_POINTER | auto, info, size=0, num=num)
    if rule == "pointer-array-no-size":
        return Field(name, F.ARRAY | F.ARRAY_OF_POINTER, info, size=draw(st.sampled_from((8, size))),
                     num=num)
    if rule == "auto-alloc-needs-pointer-array":
        return Field(name, F.ARRAY | F.AUTO_ALLOC, info, size=size, num=num)
    raise ValueError(rule)


@st.composite
def flag_sets(draw, variant="legacy", valid: bool = True, *, rules=None) -> FlagSet:
    """A valid flag set (``rule`` None) or an invalid one labelled with its rule.

    Valid sets are the fields ``descriptions(variant)`` generates, one family at a time.
    """
    v = _variants.get(variant)
    if valid:
        desc = draw(descriptions(v, max_depth=1, max_fields=3))
        flags = F(0)
        for _, f in desc.all_fields():
            flags |= f.flags
        event(f"flagset:valid:{flags!r}")
        return FlagSet(flags, desc, None, None)
    rule = draw(st.sampled_from(tuple(rules or rules_for(v))))
    event(f"flagset:invalid:{rule}")
    neighbours = draw(st.lists(st.sampled_from(SCALAR_INFOS), max_size=2))
    others = [Field(f"ok{i}", F.SINGLE, inf, size=lookup(inf).c_size)
              for i, inf in enumerate(neighbours)]
    nested = draw(st.booleans())
    if rule == "end-canary":
        wrong = draw(st.sampled_from(tuple(x for x in (0x10000, 0x20000, 0x1, 0)
                                           if x != v.vms_end)))
        inner = Description("inner", 0, 0, others, terminator=wrong)
        if nested:
            desc = Description("dev", 0, 0, [Field("s", F.STRUCT, None, vmsd=inner)])
            return FlagSet(F(0), desc, rule, "dev/s")
        return FlagSet(F(0), attrs.evolve(inner, name="dev"), rule, "dev")
    if rule == "subsection-prefix":
        sub = Description(draw(st.sampled_from(("other/sub", "de/v", "sub", "Dev/sub"))),
                          0, 0, others)
        return FlagSet(F(0), Description("dev", 0, 0, [], [sub]), rule, f"dev/@{sub.name}")
    bad = _bad_field(draw, rule, v, "bad")
    fields = list(others)
    fields.insert(draw(st.integers(0, len(fields))), bad)
    if nested:
        inner = Description("inner", 0, 0, fields)
        desc = Description("dev", 0, 0, [Field("s", F.STRUCT, None, size=8, vmsd=inner)])
        return FlagSet(bad.flags, desc, rule, "dev/s/bad")
    return FlagSet(bad.flags, Description("dev", 0, 0, fields), rule, "dev/bad")


__all__ = ["FlagSet", "flag_sets", "rules_for"]
