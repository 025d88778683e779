"""``descriptions()``: whole VMState field trees, drawn schema first.

A description is built top-down by a :class:`_Builder` that owns an explicit
:class:`Budget` (total fields, nesting depth, elements per array, bytes per buffer).
Every field comes from one *family* (:data:`FAMILIES`); a family builder may emit more
than one field (a VARRAY is preceded by its counter member, a VBUFFER by its size
member).  Values are not drawn here: :func:`strategies.values.states` does that for a
finished description.

Shrinking: every choice is an integer or a ``sampled_from`` whose first element is the
simplest (``scalar`` before ``struct``, ``uint8`` before ``gtree``, version 0 before 3,
no predicate before a predicate), and field counts shrink toward zero, so a failing tree
shrinks toward one top-level field of the simplest family that still fails, with small
versions, no subsections and short arrays.

Generated trees are *valid* for the variant they are drawn for: ``check.errors()`` is
empty and no documented-only warning fires (``tests/test_properties.py`` checks this).
Pointer arrays follow the variant's ``.size`` convention: ``stride`` variants (qemu-7.2,
legacy) set ``size = 8``; ``pointee`` variants (auto-alloc, alloc) set ``size = 0`` on a
non-allocating pointer array and the pointee size on an allocating one.
"""

from __future__ import annotations

import attrs
from hypothesis import event
from hypothesis import strategies as st

from conformance.model import variants as _variants
from conformance.model.description import Description, Field, Hook, Pred, nominal_size
from conformance.model.flags import ANY_VARRAY, F, flag_names
from conformance.model.infos import lookup

#: infos of plain scalar fields (kind int/bool/double/timer): any value round-trips
SCALAR_INFOS = ("uint8", "bool", "uint16", "int8", "int16", "uint32", "int32", "uint64",
                "int64", "timer", "CPU_Double_U", "float64")
#: comparing infos: the destination decides whether the load succeeds
EQUAL_INFOS = ("uint8 equal", "uint16 equal", "uint32 equal", "int32 equal", "int64 equal")
LE_INFOS = ("int32 le",)
#: counter info for each VARRAY kind (what the VMSTATE_VARRAY_* macros declare)
COUNTER_INFO = {F.VARRAY_UINT8: "uint8", F.VARRAY_UINT16: "uint16",
                F.VARRAY_UINT32: "uint32", F.VARRAY_INT32: "int32"}

#: field families, simplest first (shrinking moves toward the front)
FAMILIES = ("scalar", "array", "struct", "varray", "buffer", "pointer", "pointer-array",
            "auto-array", "subsection", "queue", "misc")
#: families whose wire size does not depend on the bytes being loaded
FIXED_LAYOUT_FAMILIES = ("scalar", "array", "struct", "buffer", "pointer", "pointer-array")
#: families a core-allocated (zeroed or indeterminate) object may hold: nothing that
#: needs the destination to provide pointers, counts or comparison values
PLAIN_FAMILIES = ("scalar", "array", "struct", "buffer")
#: infos no generated tree uses, and why
EXCLUDED_INFOS = {
    "nullptr": "written by the core for NULL slots, never a field's own info",
    "ptr-marker": "written by the core for auto-allocating slots, never a field's own info",
    "fd": "travels as SCM_RIGHTS, not in a file stream (every save is 'undefined')",
}


@attrs.frozen
class Budget:
    """Explicit size limits for one generated tree."""

    max_fields: int = 10  # fields over the whole tree (counters and size members count)
    max_depth: int = 2  # nesting of struct / subsection / queue element descriptions
    max_elems: int = 3  # elements of any array, varray, queue or tree
    max_bytes: int = 8  # bytes of any buffer; a bitmap has at most 8 * max_bytes + 3 bits
    per_struct: int = 4  # fields drawn for one (sub)description before its subsections


DEFAULT_BUDGET = Budget()


def family_of(field: Field, variant=None) -> str:
    """The family a field belongs to (for ``event()`` labels and parametrization)."""
    flags = field.flags
    info = field.info_obj
    if flags & F.ARRAY_OF_POINTER:
        v = _variants.get(variant) if variant is not None else None
        if flags & F.AUTO_ALLOC or (v is not None and v.is_auto(field)):
            return "auto-array"
        return "pointer-array"
    if info is not None and info.kind in ("qtailq", "qlist", "gtree"):
        return "queue"
    if info is not None and info.kind in ("tmp", "capability", "gbytearray",
                                          "equal", "le") or flags & F.MUST_EXIST:
        return "misc"
    if flags & ANY_VARRAY and not flags & F.BUFFER:
        return "varray"
    if flags & (F.BUFFER | F.VBUFFER):
        return "buffer"
    if flags & F.POINTER:
        return "pointer"
    if flags & (F.STRUCT | F.VSTRUCT):
        return "struct"
    if flags & F.ARRAY:
        return "array"
    return "scalar"


def families_in(desc: Description, variant=None) -> set[str]:
    out = {family_of(f, variant) for _, f in desc.all_fields()}
    if any(d.subsections for _, d in desc.walk()):
        out.add("subsection")
    return out


def variant_families(variant) -> tuple[str, ...]:
    """Families a tree for ``variant`` may contain (auto arrays need QEMU 11 semantics)."""
    v = _variants.get(variant)
    return tuple(f for f in FAMILIES if f != "auto-array" or v.pointer_array_rules)


class _Builder:
    def __init__(self, draw, variant, budget: Budget, families) -> None:
        self.draw = draw
        self.v = _variants.get(variant)
        self.b = budget
        self.families = tuple(families)
        self.left = budget.max_fields
        self.count = 0
        #: > 0 while building a description whose objects the destination core allocates
        #: (auto-array / queue / tree / ALLOC elements): every field must be migrated, or
        #: the fresh object keeps zero / indeterminate members the source never had
        self.plain = 0
        #: only layouts whose byte count does not depend on the bytes loaded (QEMU's
        #: truncation protocol): no counters, size members or member predicates
        self.fixed = False
        #: > 0 while building the element description of an array: QEMU's subsection
        #: loop would take the next element's subsections as its own (same VMSD name
        #: prefix), a silent misparse real QEMU shares, so array elements get none
        self.nosub = 0

    # -- helpers -------------------------------------------------------------------
    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count:03d}"  # fixed width: no name is a prefix of another

    def ints(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, max(lo, hi)))

    def pick(self, seq):
        return self.draw(st.sampled_from(tuple(seq)))

    def take(self, n: int = 1) -> bool:
        if self.left < n:
            return False
        self.left -= n
        return True

    def ptr_array_size(self) -> int:
        """``.size`` of a non-allocating pointer array under the variant's convention."""
        return 8 if self.v.pointer_array_size == "stride" else 0

    def predicate(self, bools: list[str], ints: list[str], version: int):
        """A ``field_exists`` predicate over members loaded earlier in the same struct."""
        if self.plain:
            return None
        if self.fixed:
            bools = ints = []
        kind = self.ints(0, 4)
        if kind == 0:
            return None
        if kind == 1:
            return Pred("const", value=self.draw(st.booleans()))
        if kind == 2 and bools:
            return Pred("member", member=self.pick(bools))
        if kind == 3 and ints:
            return Pred("equals", member=self.pick(ints), value=self.ints(0, 2))
        pred = Pred("version_at_least", value=self.ints(0, version + 1))
        if self.draw(st.booleans()):
            pred = Pred("not", args=(pred,))
        return pred

    # -- descriptions ----------------------------------------------------------------
    def description(self, name: str, depth: int, focus: str | None = None,
                    scalar_only: bool = False) -> Description:
        version = self.ints(0, 3)
        minimum = self.ints(0, version)
        scope = _Scope(version)
        fields: list[Field] = []
        n = self.ints(1 if focus else 0, self.b.per_struct)
        fams = [self.pick(self._allowed(depth, scalar_only)) for _ in range(n)]
        if focus and focus != "subsection" and focus not in fams:
            fams[0] = focus  # first, so the budget cannot run out before it
        for fam in fams:
            if fam == "subsection":
                continue
            fields.extend(self.family(fam, depth, scope))
        subs = []
        want_sub = focus == "subsection" or "subsection" in fams
        if (want_sub and depth < self.b.max_depth and not scalar_only and not self.plain
                and not self.fixed and not self.nosub):
            for _ in range(self.ints(1, 2)):
                if self.left <= 0:
                    break
                subs.append(self.subsection(name, depth, scope))
        hooks = {}
        if not scalar_only and not self.plain and self.ints(0, 3) == 3:
            scratch = self.name("scratch")
            value = self.ints(0, 255)
            hooks["post_load"] = Hook(0, ((scratch, value),))
            hooks["pre_save"] = Hook(0)
        return Description(name, version, minimum, fields, subs, **hooks)

    def subsection(self, parent: str, depth: int, scope: _Scope) -> Description:
        sub_name = f"{parent}/{self.name('sub')}"
        needed = None
        k = self.ints(0, 2)
        if k == 1:
            needed = Pred("const", value=self.draw(st.booleans()))
        elif k == 2 and scope.bools:
            needed = Pred("member", member=self.pick(scope.bools))
        # subsection members live in the parent's struct: share its scope of names
        version = self.ints(0, 3)
        minimum = self.ints(0, version)
        inner = _Scope(version, scope)
        fields = []
        for _ in range(self.ints(1, 2)):
            fields.extend(self.family(self.pick(self._allowed(depth + 1, False)), depth + 1,
                                      inner))
        subs = []
        if depth + 1 < self.b.max_depth and self.ints(0, 3) == 3:
            subs.append(self.subsection(sub_name, depth + 1, inner))
        return Description(sub_name, version, minimum, fields, subs, needed=needed)

    def _allowed(self, depth: int, scalar_only: bool) -> tuple[str, ...]:
        if scalar_only:
            return ("scalar",)
        if self.plain:
            return tuple(f for f in PLAIN_FAMILIES if f != "struct" or depth < self.b.max_depth)
        if self.fixed:
            return tuple(f for f in FIXED_LAYOUT_FAMILIES
                         if f != "struct" or depth < self.b.max_depth)
        fams = [f for f in self.families if f not in ("struct", "queue", "subsection")
                or depth < self.b.max_depth]
        return tuple(fams) or ("scalar",)

    # -- families ----------------------------------------------------------------------
    def family(self, fam: str, depth: int, scope: _Scope) -> list[Field]:
        if self.left <= 0:
            return []
        builder = getattr(self, "fam_" + fam.replace("-", "_"))
        fields = builder(depth, scope)
        for f in fields:
            event(f"family:{family_of(f, self.v)}")
            for flag in flag_names(f.flags):
                event(f"flag:{flag}")
            if f.info:
                event(f"info:{f.info}")
        return fields

    def _version(self, scope: _Scope) -> int:
        k = self.ints(0, 3)
        if k <= 1:
            return 0
        if k == 2 or self.plain:
            return self.ints(0, scope.version)
        return scope.version + 1  # a field from the future: never on the wire

    def fam_scalar(self, depth, scope) -> list[Field]:
        if not self.take():
            return []
        info = self.pick(SCALAR_INFOS)
        name = self.name(info.split()[0].lower().replace("cpu_double_u", "dbl"))
        version = self._version(scope)
        test = self.predicate(scope.bools, scope.ints, scope.version)
        field = Field(name, F.SINGLE, info, size=lookup(info).c_size, version_id=version,
                      field_exists=test)
        if info == "bool" and test is None and version <= scope.version:
            scope.bools.append(name)
        elif info in ("uint8", "uint16", "uint32") and test is None and version <= scope.version:
            scope.ints.append(name)
        return [field]

    def fam_array(self, depth, scope) -> list[Field]:
        if not self.take():
            return []
        info = self.pick(SCALAR_INFOS)
        num = self.ints(1, self.b.max_elems)
        test = self.predicate(scope.bools, scope.ints, scope.version)
        return [Field(self.name("arr"), F.ARRAY, info, size=lookup(info).c_size, num=num,
                      version_id=self._version(scope), field_exists=test)]

    def _counter(self, kind: F, scope) -> Field:
        name = self.name("n")
        info = COUNTER_INFO[kind]
        return Field(name, F.SINGLE, info, size=lookup(info).c_size)

    def _elem_vmsd(self, depth, plain: bool = False, array: bool = False) -> Description:
        """A small struct for elements (own scope); ``plain`` when the core allocates it,
        ``array`` when several elements follow each other on the wire."""
        self.plain += plain
        self.nosub += array
        try:
            return self.description(self.name("T"), depth + 1,
                                    scalar_only=depth + 1 >= self.b.max_depth)
        finally:
            self.plain -= plain
            self.nosub -= array

    def fam_varray(self, depth, scope) -> list[Field]:
        if not self.take(2):
            return []
        kind = self.pick((F.VARRAY_UINT32, F.VARRAY_UINT8, F.VARRAY_UINT16, F.VARRAY_INT32))
        counter = self._counter(kind, scope)
        style = self.pick(("pointer", "embedded", "alloc", "struct", "multiply"))
        name = self.name("va")
        if style == "struct" and depth < self.b.max_depth:
            extra = self.pick((F(0), F.POINTER, F.POINTER | F.ALLOC))
            vmsd = self._elem_vmsd(depth, plain=bool(extra & F.ALLOC), array=True)
            field = Field(name, F.STRUCT | kind | extra, None, size=nominal_size(vmsd),
                          num_member=counter.name, vmsd=vmsd)
            return [counter, field]
        info = self.pick(SCALAR_INFOS)
        size = lookup(info).c_size
        if style == "pointer":
            flags = kind | F.POINTER
        elif style == "alloc":
            flags = kind | F.POINTER | F.ALLOC
        elif style == "multiply":
            # VMSTATE_VARRAY_MULTIPLY: count = counter * num (gone in QEMU master, whose
            # vmstate_n_elems() ignores it: class X has its own reproducer and case)
            return [counter, Field(name, F.VARRAY_UINT32 | F.MULTIPLY_ELEMENTS, info, size=size,
                                   num=self.ints(1, 2), num_member=counter.name)] \
                if kind == F.VARRAY_UINT32 and self.v.multiply_elements else [counter, Field(
                    name, kind, info, size=size, num_member=counter.name)]
        else:
            flags = kind
        return [counter, Field(name, flags, info, size=size, num_member=counter.name)]

    def fam_struct(self, depth, scope) -> list[Field]:
        if depth >= self.b.max_depth or not self.take():
            return self.fam_scalar(depth, scope)
        style = self.pick(("struct", "vstruct", "array"))
        name = self.name("s")
        vmsd = self._elem_vmsd(depth, array=style == "array")
        test = self.predicate(scope.bools, scope.ints, scope.version)
        version = self._version(scope)
        if style == "vstruct":
            sv = vmsd.version_id if self.plain else self.ints(vmsd.minimum_version_id,
                                                               vmsd.version_id)
            return [Field(name, F.VSTRUCT, None, size=nominal_size(vmsd), vmsd=vmsd,
                          struct_version_id=sv, version_id=version, field_exists=test)]
        if style == "array":
            return [Field(name, F.STRUCT | F.ARRAY, None, size=nominal_size(vmsd),
                          num=self.ints(1, self.b.max_elems), vmsd=vmsd, version_id=version,
                          field_exists=test)]
        return [Field(name, F.STRUCT, None, size=nominal_size(vmsd), vmsd=vmsd,
                      version_id=version, field_exists=test)]

    def fam_pointer(self, depth, scope) -> list[Field]:
        if not self.take():
            return []
        if depth < self.b.max_depth and self.draw(st.booleans()):
            vmsd = self._elem_vmsd(depth)
            return [Field(self.name("sp"), F.STRUCT | F.POINTER, None, size=nominal_size(vmsd),
                          vmsd=vmsd)]
        info = self.pick(SCALAR_INFOS)
        return [Field(self.name("p"), F.SINGLE | F.POINTER, info, size=lookup(info).c_size)]

    def fam_pointer_array(self, depth, scope) -> list[Field]:
        """VMSTATE_ARRAY_OF_POINTER(_TO_STRUCT) and VMSTATE_VARRAY_OF_POINTER_UINT32."""
        if not self.take():
            return []
        size = self.ptr_array_size()
        vmsd = None
        info = None
        flags = F.ARRAY_OF_POINTER
        if depth < self.b.max_depth and self.draw(st.booleans()):
            vmsd = self._elem_vmsd(depth, array=True)
            flags |= F.STRUCT
        else:
            info = self.pick(SCALAR_INFOS)
        name = self.name("pa")
        if not self.fixed and self.draw(st.booleans()) and self.take():
            counter = self._counter(F.VARRAY_UINT32, scope)
            return [counter, Field(name, flags | F.VARRAY_UINT32 | F.POINTER, info, size=size,
                                   num_member=counter.name, vmsd=vmsd)]
        return [Field(name, flags | F.ARRAY, info, size=size,
                      num=self.ints(1, self.b.max_elems), vmsd=vmsd)]

    def fam_auto_array(self, depth, scope) -> list[Field]:
        """Element-allocating pointer arrays: AUTO_ALLOC (auto-alloc) or
        ARRAY_OF_POINTER|ALLOC (alloc); ``.size`` is the pointee size."""
        if not self.v.pointer_array_rules:
            return self.fam_pointer_array(depth, scope)
        if not self.take():
            return []
        auto = F.AUTO_ALLOC if self.v.pointer_array_rules == "auto-alloc" else F.ALLOC
        flags = F.ARRAY_OF_POINTER | auto
        vmsd = None
        info = None
        if depth < self.b.max_depth and self.draw(st.booleans()):
            vmsd = self._elem_vmsd(depth, plain=True, array=True)
            flags |= F.STRUCT
            size = nominal_size(vmsd)
        else:
            info = self.pick(SCALAR_INFOS)
            size = lookup(info).c_size
        name = self.name("aa")
        if self.draw(st.booleans()) and self.take():
            kind = self.pick((F.VARRAY_UINT32, F.VARRAY_UINT8))
            counter = self._counter(kind, scope)
            return [counter, Field(name, flags | kind | F.POINTER, info, size=size,
                                   num_member=counter.name, vmsd=vmsd)]
        if auto is F.ALLOC:
            # vmstate.h: "VMS_ALLOC is only valid with VMS_POINTER" (check warns); the
            # alloc RFC never allocates a pointer array, so POINTER only adds the deref
            flags |= F.POINTER
        return [Field(name, flags | F.ARRAY, info, size=size,
                      num=self.ints(1, self.b.max_elems), vmsd=vmsd)]

    def fam_buffer(self, depth, scope) -> list[Field]:
        if not self.take():
            return []
        styles = ("buffer", "vbuffer", "unused", "bitmap", "alloc", "bufptr", "multiply")
        if self.fixed:
            styles = ("buffer", "unused", "bufptr")
        style = self.pick(styles[:1] if self.plain else styles)
        if style == "buffer":
            return [Field(self.name("buf"), F.BUFFER, "buffer", size=self.ints(1, self.b.max_bytes),
                          field_exists=self.predicate(scope.bools, scope.ints, scope.version))]
        if style == "unused":
            return [Field("unused", F.BUFFER, "unused_buffer", None,
                          size=self.ints(1, self.b.max_bytes))]
        if style == "bufptr":
            return [Field(self.name("bp"), F.BUFFER | F.POINTER, "buffer",
                          size=self.ints(1, self.b.max_bytes))]
        if not self.take():
            return [Field(self.name("buf"), F.BUFFER, "buffer", size=self.ints(1, self.b.max_bytes))]
        size_member = self.name("len")
        counter = Field(size_member, F.SINGLE, self.pick(("uint32", "int32")), size=4)
        name = self.name("vb")
        if style == "bitmap":
            return [counter, Field(name, F.VBUFFER | F.POINTER, "bitmap", size_member=size_member)]
        if style == "alloc":
            return [counter, Field(name, F.VBUFFER | F.POINTER | F.ALLOC, "buffer",
                                   size_member=size_member)]
        if style == "multiply":
            return [counter, Field(name, F.VBUFFER | F.POINTER | F.MULTIPLY, "buffer",
                                   size=self.ints(1, 2), size_member=size_member)]
        return [counter, Field(name, F.VBUFFER | F.POINTER, "buffer", size_member=size_member)]

    def fam_subsection(self, depth, scope) -> list[Field]:
        return self.fam_scalar(depth, scope)  # subsections are drawn by description()

    def fam_queue(self, depth, scope) -> list[Field]:
        if depth >= self.b.max_depth or not self.take():
            return self.fam_scalar(depth, scope)
        style = self.pick(("qtailq", "qlist", "gtree-direct", "gtree"))
        self.plain += 1
        try:
            vmsd = self.description(self.name("E"), depth + 1, scalar_only=True)
        finally:
            self.plain -= 1
        name = self.name("q")
        # the elements load with the field's version: pin both to one version
        version = min(vmsd.version_id, scope.version)
        val = _at_version(vmsd, version)
        if style in ("qtailq", "qlist"):
            return [Field(name, F(0), style, size=nominal_size(val), vmsd=val,
                          version_id=version)]
        if style == "gtree-direct":
            return [Field(name, F(0), "gtree", size=nominal_size(val), vmsd=val,
                          version_id=version)]
        key = Description(self.name("K"), version, version,
                          [Field(self.name("k"), F.SINGLE, "uint32", size=4)])
        return [Field(name, F(0), "gtree", size=nominal_size(val), start=nominal_size(key),
                      vmsd=val, key_vmsd=key, version_id=version)]

    def fam_misc(self, depth, scope) -> list[Field]:
        if not self.take():
            return []
        style = self.pick(("equal", "le", "capability", "gbytearray", "validate",
                           "must-exist", "tmp"))
        if style == "equal":
            info = self.pick(EQUAL_INFOS)
            return [Field(self.name("eq"), F.SINGLE, info, size=lookup(info).c_size)]
        if style == "le":
            return [Field(self.name("le"), F.SINGLE, "int32 le", size=4)]
        if style == "capability":
            return [Field(self.name("cap"), F.SINGLE, "capability", size=8)]
        if style == "gbytearray":
            return [Field(self.name("gba"), F.SINGLE, "GByteArray", size=8)]
        if style == "validate":
            # VMSTATE_VALIDATE: the test must hold on both sides
            test = self.pick((Pred("const", value=True), Pred("version_at_least", value=0),
                              Pred("not", args=(Pred("const", value=False),))))
            return [Field(self.name("valid"), F.ARRAY | F.MUST_EXIST, None, None, num=0,
                          field_exists=test)]
        if style == "must-exist":
            info = self.pick(SCALAR_INFOS)
            return [Field(self.name("me"), F.SINGLE | F.MUST_EXIST, info,
                          size=lookup(info).c_size)]
        # VMSTATE_WITH_TMP: pre_save fills the temporary (QEMU copies from the parent)
        info = self.pick(SCALAR_INFOS[:7])
        tmp_field = Field(self.name("t"), F.SINGLE, info, size=lookup(info).c_size)
        value = self.draw(st.booleans()) if info == "bool" else self.ints(0, 100)
        vmsd = Description(self.name("tmp"), 0, 0, [tmp_field],
                           pre_save=Hook(0, ((tmp_field.member, value),)))
        return [Field("tmp", F(0), "tmp", None, size=nominal_size(vmsd) + 8, vmsd=vmsd)]


def _at_version(vmsd: Description, version: int) -> Description:
    """``vmsd`` pinned to ``version`` (fields above it clamped down)."""
    return attrs.evolve(vmsd, version_id=version, minimum_version_id=min(
        vmsd.minimum_version_id, version), fields=[
        attrs.evolve(f, version_id=min(f.version_id, version)) for f in vmsd.fields])


class _Scope:
    """Names a predicate may read: bool / small-int members loaded earlier."""

    def __init__(self, version: int, parent: _Scope | None = None) -> None:
        self.version = version
        self.bools: list[str] = parent.bools if parent else []
        self.ints: list[str] = parent.ints if parent else []


@st.composite
def descriptions(draw, variant="legacy", max_depth: int | None = None,
                 max_fields: int | None = None, *, families=None, focus: str | None = None,
                 budget: Budget | None = None, fixed_layout: bool = False) -> Description:
    """A valid :class:`Description` for ``variant`` (name ``dev``).

    ``families`` restricts the field families (default: all the variant supports);
    ``focus`` guarantees at least one top-level field (or subsection) of that family.
    ``max_depth`` / ``max_fields`` override the matching :class:`Budget` limits.
    ``fixed_layout`` keeps to layouts whose byte count the loaded bytes cannot change
    (no counters, size members, member predicates, subsections, queues or markers):
    the descriptions QEMU's truncation protocol is meant for.

    Shrinks toward fewer fields, simpler families, smaller versions and arrays, and no
    predicates, hooks or subsections.
    """
    b = budget or DEFAULT_BUDGET
    if max_depth is not None:
        b = attrs.evolve(b, max_depth=max_depth)
    if max_fields is not None:
        b = attrs.evolve(b, max_fields=max_fields)
    v = _variants.get(variant)
    allowed = tuple(families) if families else variant_families(v)
    if focus is not None and focus not in allowed:
        allowed = allowed + (focus,)
    if focus == "auto-array" and not v.pointer_array_rules:
        focus = "pointer-array"
    if fixed_layout:
        allowed = tuple(f for f in allowed if f in FIXED_LAYOUT_FAMILIES) or ("scalar",)
        if focus not in allowed:
            focus = None
    builder = _Builder(draw, v, b, allowed)
    builder.fixed = fixed_layout
    desc = builder.description("dev", 0, focus=focus)
    event(f"fields:{sum(1 for _ in desc.all_fields())}")
    return desc


__all__ = ["Budget", "DEFAULT_BUDGET", "FAMILIES", "FIXED_LAYOUT_FAMILIES", "EXCLUDED_INFOS",
           "SCALAR_INFOS", "descriptions", "family_of", "families_in", "variant_families"]
