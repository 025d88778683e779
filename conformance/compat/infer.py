"""A model :class:`Description` from a description in dump form, saying what was inferred.

A ``-dump-vmstate`` field has a name, a version, whether it has a ``field_exists`` test
and its C size, but no info type and no element count.  Only the width of what a
field puts on the wire matters to whether a load consumes what a save wrote, so a field
becomes (rules in :data:`RULES`):

* a struct field (it has a ``Description``): VMSTATE_STRUCT of that description, one
  element (arrays of structs, QTAILQs and GTrees look the same in a dump);
* ``unused``: VMSTATE_UNUSED of its size (unused_buffer: written as zeros, skipped);
* size 1 / 2 / 4 / 8: uint8 / uint16 / uint32 / uint64 (int32, be32, bool, timer,
  int32 equal ... have the same width; an array's length is not in the dump: one
  element);
* another size N > 0: a buffer of N bytes (VMSTATE_BUFFER's size is the whole buffer);
* size 0 (a VBUFFER, a pointer array, a custom info such as VMSTATE_VIRTIO_DEVICE):
  a one-byte token, assumed to carry the same bytes on both sides.

A ``field_exists`` test becomes a condition named ``DESC/FIELD``, a subsection's
``needed`` a condition ``needed:NAME``: the executed check draws each condition true
and false and holds it the same on both sides (the same device in the same
configuration), which is itself an inference: a test is assumed to decide the same
on both sides when the field keeps its name, and tested fields renamed between the
sides (no namesake on the other side, in a description of the same name) are paired
in order and share one condition (:func:`condition_aliases`).

A vmdesc field knows its type and ``array_len``; those are used (types outside the
model's catalogue, such as ``pci config``, fall back to their width), and ``*equal``
and ``le`` types become plain integers of their width, because a fresh destination
holds none of the values they compare against.  Case files need no inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _dcfield

from conformance.model.description import Description, Field, evolve
from conformance.model.flags import F
from conformance.model.infos import INFOS

#: integer arrays longer than this become one buffer of the same width (the engine then
#: moves them in one piece: e1000e's 32768-element arrays)
LONG_ARRAY = 16
#: struct arrays of an inferred description longer than this are checked this long
STRUCT_CAP = 2
UINT_BY_SIZE = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}
OTHERS_BY_SIZE = {1: "int8, bool, uint8 equal", 2: "int16, be16", 4: "int32, be32, "
                  "int32 equal, int32 le, float32", 8: "int64, timer, float64, CPU_Double_U"}

RULES = {
    "width": "size {size} -> {info} (or {others}: the same width on the wire)",
    "buffer": "size {size} -> buffer[{size}]",
    "long": "{num} x {size}-byte integers -> one buffer[{num} * {size}] (same bytes)",
    "unused-hint": "element count not in the input: {num}, so that it fills the other "
                   "side's unused[{unused}] at the same position",
    "struct-cap": "{num} struct elements, the same count on both sides: checked with "
                  "2 (each puts the same bytes on the wire)",
    "count": "element count not in the input: 1 assumed",
    "hint": "element count not in the input: {num}, the other side's count for the "
            "field of that name",
    "struct-count": "one struct element assumed (struct arrays, QTAILQ and GTree look "
                    "the same in a dump)",
    "unused": "unused -> unused_buffer[{size}]",
    "type-width": "type {type!r} not modelled -> {how}",
    "loose": "type {type!r} -> {info} (a fresh destination holds no value to compare)",
    "test": "field_exists test -> condition {cond!r}, the same on both sides",
    "renamed-test": "a renamed test: the other side's {cond!r} (unmatched tested fields "
                    "paired in order)",
    "needed": "subsection needed -> condition {cond!r}",
    "minimum": "minimum_version_id not in the input: 0 assumed",
    "opaque": "size 0 (variable-length or custom: VBUFFER, virtio, msix ...) -> a token, "
              "assumed to carry the same bytes on both sides",
}


@dataclass
class Inferred:
    """A model description and what it rests on."""

    description: Description | None
    inferences: list[tuple[str, str]] = _dcfield(default_factory=list)  # (path, how)
    undecidable: list[tuple[str, str]] = _dcfield(default_factory=list)  # (path, why)
    conditions: set[str] = _dcfield(default_factory=set)
    hints: dict = _dcfield(default_factory=dict)
    aliases: dict = _dcfield(default_factory=dict)


class Conditions:
    """The values of the drawn conditions: the predicates read them when called."""

    def __init__(self) -> None:
        self.values: dict[str, bool] = {}

    def test(self, name: str):
        values = self.values

        def field_exists(opaque, version_id: int = 0, _name=name) -> bool:
            return bool(values.get(_name, False))

        field_exists.__qualname__ = f"condition[{name}]"
        return field_exists


def counts_of(entry: dict) -> dict:
    """``(description, field) -> num`` for every field of a section that states its
    element count (10.0's dumps do, 7.2's do not): hints for the other side."""
    out: dict = {}

    def walk(d):
        if not isinstance(d, dict):
            return
        seen: dict = {}
        fields = d.get("Fields", []) or []
        for i, f in enumerate(fields):
            if f.get("field") == "unused" and isinstance(f.get("size"), int):
                after = fields[i + 1].get("field") if i + 1 < len(fields) else None
                out.setdefault((d.get("name"), "@unused", i), (f["size"], after))
            # the n-th field of that name: sub-arrays repeat a name (mac_reg in e1000)
            n = seen[f.get("field")] = seen.get(f.get("field"), 0) + 1
            if isinstance(f.get("num"), int):
                out.setdefault((d.get("name"), f.get("field"), n), f["num"])
            walk(f.get("Description"))
        for s in d.get("Subsections", []) or []:
            walk(s)

    walk(entry.get("Description") if isinstance(entry, dict) else None)
    return out


def condition_aliases(src_entry: dict, dst_entry: dict) -> dict:
    """``(description, dst field) -> condition`` for tested fields renamed between the
    sides: in a description of the same name, the tested fields without a namesake on
    the other side are paired in order (esp: data_in_ready -> data_ready, ti_cmd ->
    mig_ti_cmd), so that one condition decides both, as one test would."""
    def tested(entry) -> dict:
        out: dict = {}

        def walk(d):
            if not isinstance(d, dict):
                return
            names = out.setdefault(d.get("name"), [])
            for f in d.get("Fields", []) or []:
                if f.get("field_exists") and f.get("field") not in names:
                    names.append(f.get("field"))
                walk(f.get("Description"))
            for s in d.get("Subsections", []) or []:
                walk(s)

        walk(entry.get("Description") if isinstance(entry, dict) else None)
        return out

    src, dst = tested(src_entry), tested(dst_entry)
    aliases = {}
    for desc, dnames in dst.items():
        snames = src.get(desc, [])
        s_only = [n for n in snames if n not in dnames]
        d_only = [n for n in dnames if n not in snames]
        for s_name, d_name in zip(s_only, d_only, strict=False):  # the extras: new tests
            aliases[(desc, d_name)] = f"{desc}/{s_name}"
    return aliases


def infer(entry: dict, conditions: Conditions, hints: dict | None = None,
          aliases: dict | None = None) -> Inferred:
    """The section entry (dump form) as a model Description; ``hints`` are the other
    side's element counts (:func:`counts_of`) for fields whose count is not given."""
    out = Inferred(None)
    out.hints = hints or {}
    out.aliases = aliases or {}
    desc = entry.get("Description") if isinstance(entry, dict) else None
    if not isinstance(desc, dict):
        out.undecidable.append(("", "no Description in the input"))
        return out
    if "Fields" not in desc and "Subsections" not in desc:
        # dump_vmstate_vmsd prints no Fields for a VMSD without a field list: an
        # unmigratable device (.unmigratable = 1) looks like this, and blocks migration
        out.undecidable.append(("", "no Fields: a VMSD without a field list (an "
                                    "unmigratable device dumps like this)"))
        return out
    if entry.get("vmdesc"):
        out.inferences.append((desc.get("name", "?"), RULES["minimum"]))
    out.description = _desc(desc, desc.get("name", "?"), out, conditions)
    return out


def _desc(d: dict, path: str, out: Inferred, conds: Conditions) -> Description:
    fields, seen, occurrence = [], set(), {}
    listed = d.get("Fields", []) or []
    for i, f in enumerate(listed):
        n = occurrence[f["field"]] = occurrence.get(f["field"], 0) + 1
        after = listed[i + 1]["field"] if i + 1 < len(listed) else None
        field = _field(f, f"{path}/{f['field']}", d.get("name", "?"), out, conds, n, i,
                       after)
        # one member per field: QEMU's names repeat (VMSTATE_MSIX(parent_obj, ..) beside
        # the PCI device's parent_obj; a field re-added at a later version)
        if field.member is not None:
            member, n = field.member, 2
            while member in seen:
                member, n = f"{field.member}#{n}", n + 1
            seen.add(member)
            if member != field.member:
                field = evolve(field, member=member)
        fields.append(field)
    fields = tuple(fields)
    subs = []
    for s in d.get("Subsections", []) or []:
        cond = f"needed:{s['name']}"
        out.conditions.add(cond)
        out.inferences.append((f"{path}/{s['name']}", RULES["needed"].format(cond=cond)))
        subs.append(attrs_evolve(_desc(s, f"{path}/{s['name']}", out, conds),
                                 needed=conds.test(cond)))
    return Description(d.get("name", "?"), version_id=d.get("version_id", 0),
                       minimum_version_id=d.get("minimum_version_id", 0), fields=fields,
                       subsections=tuple(subs))


def attrs_evolve(desc: Description, **changes) -> Description:
    return evolve(desc, **changes)


def _field(f: dict, path: str, desc_name: str, out: Inferred, conds: Conditions,
           occurrence: int = 1, index: int = 0, after: str | None = None) -> Field:
    name, size = f["field"], int(f.get("size", 0) or 0)
    test = None
    if f.get("field_exists"):
        cond = out.aliases.get((desc_name, name), f"{desc_name}/{name}")
        out.conditions.add(cond)
        out.inferences.append((path, RULES["test"].format(cond=cond)))
        if cond != f"{desc_name}/{name}":
            out.inferences.append((path, RULES["renamed-test"].format(cond=cond)))
        test = conds.test(cond)
    common = {"version_id": f.get("version_id", 0), "field_exists": test}
    num = f.get("num")
    ftype = f.get("type")
    if not isinstance(num, int) and (desc_name, name, occurrence) in out.hints:
        num = out.hints[(desc_name, name, occurrence)]
        out.inferences.append((path, RULES["hint"].format(num=num)))
    unused, unused_after = out.hints.get((desc_name, "@unused", index), (None, None))
    # only where the unused bytes replaced this one field: the fields after agree
    if not isinstance(num, int) and name != "unused" and isinstance(unused, int) and \
            unused_after == after and size and unused > size and unused % size == 0:
        # QEMU replaces a dropped array by VMSTATE_UNUSED of its bytes (e1000e's
        # eitr_intr_pending[5] -> unused[5] in 8.0): the count that makes them agree
        num = unused // size
        out.inferences.append((path, RULES["unused-hint"].format(num=num, unused=unused)))
    if isinstance(f.get("Description"), dict):
        sub = _desc(f["Description"], path, out, conds)
        if isinstance(num, int) and ftype != "tmp":
            other = out.hints.get((desc_name, name, occurrence))
            if num > STRUCT_CAP and (other is None or other == num) and not f.get("type"):
                # every element puts the same bytes on the wire (the conditions are
                # shared): a few stand for all, on both sides alike (xhci: 64 slots of
                # 31 endpoints); a count that differs between the sides is kept
                out.inferences.append((path, RULES["struct-cap"].format(num=num)))
                num = STRUCT_CAP
            return Field(name, F.STRUCT | F.ARRAY, None, name, size=max(size, 1), num=num,
                         vmsd=sub, **common)
        if ftype is None:
            out.inferences.append((path, RULES["struct-count"]))
        return Field(name, F.STRUCT, None, name, size=max(size, 1), vmsd=sub, **common)
    if ftype == "unused_buffer" or (ftype is None and name == "unused"):
        if ftype is None:
            out.inferences.append((path, RULES["unused"].format(size=size)))
        return Field(name, F.BUFFER, "unused_buffer", None, size=size, **common)
    info = INFOS.get(ftype) if ftype else None
    if info is not None and info.kind in ("int", "bool", "timer", "double", "equal", "le"):
        iname = info.name
        if info.kind in ("equal", "le"):
            iname = f"{'int' if info.signed else 'uint'}{8 * info.width}"
            out.inferences.append((path, RULES["loose"].format(type=ftype, info=iname)))
        if isinstance(num, int) and num > LONG_ARRAY:
            out.inferences.append((path, RULES["long"].format(num=num, size=info.width)))
            return Field(name, F.BUFFER, "buffer", name, size=info.width * num, **common)
        if isinstance(num, int):
            return Field(name, F.ARRAY, iname, name, size=info.width, num=num, **common)
        return Field(name, F.SINGLE, iname, name, size=info.width, **common)
    if info is not None and info.kind == "buffer":
        return Field(name, F.BUFFER, "buffer", name, size=size, **common)
    # by width: the dump's only clue (and a vmdesc type the model does not have)
    count = num if isinstance(num, int) else 1
    if size in UINT_BY_SIZE:
        how = RULES["width"].format(size=size, info=UINT_BY_SIZE[size],
                                    others=OTHERS_BY_SIZE[size])
        if ftype is not None:
            how = RULES["type-width"].format(type=ftype, how=how)
        out.inferences.append((path, how))
        if not isinstance(num, int):
            out.inferences.append((path, RULES["count"]))
        if isinstance(num, int) and num > LONG_ARRAY:
            out.inferences.append((path, RULES["long"].format(num=num, size=size)))
            return Field(name, F.BUFFER, "buffer", name, size=size * num, **common)
        flags = F.ARRAY if isinstance(num, int) else F.SINGLE
        return Field(name, flags, UINT_BY_SIZE[size], name, size=size, num=count * (
            flags == F.ARRAY), **common)
    if size > 0:
        how = RULES["buffer"].format(size=size * count)
        if ftype is not None:
            how = RULES["type-width"].format(type=ftype, how=how)
        out.inferences.append((path, how))
        return Field(name, F.BUFFER, "buffer", name, size=size * count, **common)
    # size 0: a variable-length or custom field (VBUFFER, VMSTATE_VIRTIO_DEVICE,
    # VMSTATE_MSIX, ...): its width is not in the input.  A one-byte token stands for
    # it, so that the field keeps its place: the same field on both sides is assumed
    # to carry the same bytes, a field on one side only desynchronises the load.
    out.inferences.append((path, RULES["opaque"]))
    return Field(name, F.BUFFER, "buffer", name, size=1, **common)
