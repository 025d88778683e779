"""The VMState variants the harness models, as data plus a few named policy points.

Four variants, each a point in the pointer-array debate (see docs/variants.md):

* ``qemu-7.2``   QEMU <= 7.2: no VMS_END canary, no vmstate_check, nullptr marker 0x30.
* ``legacy``     QEMU 8.0 - 10.x: VMS_END = 0x10000 canary, vmstate_check, nullptr marker.
* ``auto-alloc`` QEMU 11 development (Peter Xu, landed): VMS_ARRAY_OF_POINTER_AUTO_ALLOC
                 = 0x10000, VMS_END = 0x20000, markers 0x30 / 0x31 ("ptr-marker"),
                 ``.size`` of a pointer array is the pointee size.
* ``alloc``      Fabiano Rosas's RFC: no new flag; ARRAY_OF_POINTER|ALLOC takes its
                 place; VMS_END stays 0x10000.

The engines never test a variant's name: they ask the policy methods below.  Where
QEMU's source for a variant is not available (Fabiano's patches 11-12/17), the reading
of the posted diffs is taken and recorded as a named switch in ``decisions`` (documented
in docs/variants.md), so it can be flipped in one place.
"""

from __future__ import annotations

import attrs

from conformance.errors import UnknownVariant
from conformance.model.description import Field
from conformance.model.flags import ANY_VARRAY, QEMU_NAMES, F

HOST_POINTER_SIZE = 8

_COMMON_BITS = {f: f.value for f in F if f is not F.AUTO_ALLOC}


#: where each modelling decision is argued (docs/variants.md, "Modelling decisions")
DECISIONS = {
    "populated_auto_slot": (
        "an auto field's destination slot is non-NULL before load",
        ("assert", "overwrite")),
    "stray_valid_marker": (
        "0x31 read for a NULL slot of a non-auto pointer array",
        ("assert", "error")),
    "array_alloc_zeroed": (
        "the core allocates the pointer array itself (POINTER|ALLOC) with g_malloc0",
        (False, True)),
    "element_alloc_zeroed": (
        "an auto element is allocated with g_malloc0 (else g_malloc)",
        (True, False)),
    "auto_load_element_size": (
        "size handed to the element loader of an auto field: the host pointer size "
        "(vmstate_size) or the object size (.size)",
        ("pointer", "object")),
    "null_array_base": (
        "an auto field whose pointer-array base is NULL with n > 0: the POINTER base "
        "assertion, or no check (the slots are read through NULL)",
        ("assert", "null-dereference")),
    "vmdesc_era": (
        "the vmdesc JSON era this variant emits",
        ("A", "B", "C")),
    "marker_error_sets_file_error": (
        "a pointer marker error (vmstate_ptr_marker_load fails, vmstate_load_next returns "
        "false) sets the file error at its own level.  QEMU master (class F, checked "
        "against its C): no -- vmstate_load_vmsd() returns false without "
        "qemu_file_set_error(); a parent level sets -EINVAL when vmstate_load_field() "
        "fails",
        (True, False)),
    "null_element_skipped_on_load": (
        "loading a non-pointer-array field whose element address is NULL (a NULL POINTER "
        "base with size 0): QEMU master's vmstate_load_next() hands back NULL + size * i "
        "and vmstate_load_vmsd() skips a NULL element (`if (!curr_elem) continue`); "
        "before it the codec was called on NULL.  Checked against master's C",
        (False, True)),
}

#: Where QEMU master's conventions (checked against its real vmstate.c /
#: vmstate-types.c) differ from 10.x, one row per disagreement class: the
#: Variant policy point that decides it, the C function it comes from, and which change
#: brought it.  "bool API" = Vladimir Sementsov-Ogievskiy's conversion of vmstate.c and
#: the infos to ``bool ...(..., Error **errp)`` (in master before Peter Xu's 09/11, whose diff is
#: written against it); "AUTO_ALLOC series" = Peter Xu's series (its 09/11 is the vmstate.c patch).
#: qemu-7.2 and legacy keep their values; auto-alloc and alloc (proposed on the same
#: master) take master's.
CONVENTIONS = {
    "R": ("errors", "bool", "vmstate_load_state() / vmstate_save_state(): "
          "`vmstate_load_vmsd() ? 0 : -EINVAL`", "bool API",
          "a failed load or save returns -EINVAL (-22), not the failure's errno; a failed "
          "field or subsection sets -EINVAL as the file error (unless one is set)"),
    "F": ("decisions.marker_error_sets_file_error", False,
          "vmstate_load_next() / vmstate_load_vmsd()", "AUTO_ALLOC series",
          "a pointer-marker error returns false without qemu_file_set_error(): file error 0 "
          "at the top level; a parent level sets -EINVAL (its vmstate_load_field() failed)"),
    "M1": ("errors", "bool", "vmstate_load_field(): info->load(..., errp)", "bool API",
           "an info with .load reports its own Error (e.g. '4 != 0'); 'Failed to load "
           "element of type T for F' only wraps a get-only info (GByteArray); nested-VMSD "
           "infos (tmp, qtailq, qlist, gtree) pass the nested Error up unprinted"),
    "M2": ("errors", "bool", "vmstate_subsection_load()", "bool API",
           "\"Loading VM subsection 'X' in 'Y' failed: \" without the errno"),
    "S": ("errors", "bool", "vmstate_subsection_load() / vmstate_load_vmsd()", "bool API",
          "an unknown subsection returns false: ret -22 and file error -22 (10.x: -ENOENT)"),
    "M3": ("marker_load", "ptr-marker", "vmstate_ptr_marker_load(): error_setg()",
           "AUTO_ALLOC series",
           "'Unexpected ptr marker: N' is an Error, so a subsection's prefix is prepended"),
    "X": ("multiply_elements", False, "vmstate_n_elems()", "master (outside both series)",
          "VMS_MULTIPLY_ELEMENTS is not honoured (the bit stays in the model's numbering; "
          "it is ignored)"),
    "P1": ("hook_failure", "negative", "vmstate_pre_save() / vmstate_post_load()", "bool API",
           "pre_save fails only on a negative return; a positive post_load return succeeds"),
    "P2": ("post_save_result", "ignored", "vmstate_save_vmsd_v(): `out:` calls post_save",
           "bool API", "post_save's result is ignored"),
    "V": ("decisions.vmdesc_era", "C", "vmstate_save_vmsd_v(): "
          "`if (vmdesc && max_elems > 1 && ... is_null != is_prev_null)`",
          "AUTO_ALLOC series (the vmdesc rework 09/11's context already shows)",
          "the vmdesc switches to a new null / non-null run only while more than one "
          "element is left: the last element of a compressible pointer array gets no entry "
          "when its null-ness differs from the run before it and that run's entry was "
          "compressed (probably a QEMU bug; docs/variants.md)"),
}


@attrs.frozen
class Variant:
    name: str
    title: str
    qemu: str  # which QEMU releases / series behave like this
    #: numeric value of the end-of-list canary, or None where only ``name == NULL`` ends
    #: the list (QEMU <= 7.2)
    vms_end: int | None
    #: canonical flag -> numeric value in this variant (absent = not expressible)
    numbering: dict
    #: vmstate_check() runs at registration (qtest) in this variant
    has_check: bool
    #: which pointer-array rule set vmstate_check applies: None, "auto-alloc", "alloc"
    pointer_array_rules: str | None
    #: "stride": ``.size`` of an ARRAY_OF_POINTER field is the pointer stride (macros set
    #: sizeof(ptr)) and NULL elements are only recognised when it is non-zero (Era A/B);
    #: "pointee": the core uses the host pointer size as element size and ``.size`` is
    #: the pointee object size (Peter Xu's "Do not set size for VMS_ARRAY_OF_POINTER").
    pointer_array_size: str
    #: how a NULL destination slot reads its marker: "nullptr" (get_nullptr: byte must be
    #: 0x30) or "ptr-marker" (vmstate_ptr_marker_load: 0x30 skip, 0x31 load, else error)
    marker_load: str
    #: hook return convention: "nonzero" (Era A/B: any non-zero fails) or "negative"
    #: (QEMU master, class P1: vmstate_pre_save() fails on ``pre_save() < 0``,
    #: vmstate_post_load() on ``post_load() < 0``; pre_load still fails on non-zero)
    hook_failure: str
    #: which declaration means "marker per element, core allocates present elements":
    #: None (no such declaration), "auto-alloc-flag" (VMS_ARRAY_OF_POINTER_AUTO_ALLOC,
    #: vmstate.c use_dynamic_array) or "pointer-array-alloc" (VMS_ARRAY_OF_POINTER together
    #: with VMS_ALLOC, the alloc RFC's 13/17 -- which also stops ALLOC allocating the array)
    auto_flag_rule: str | None = None
    #: the name of the marker info (vmstate_info_nullptr / vmstate_info_ptr_marker)
    marker_info_name: str = "nullptr"
    #: how vmstate.c reports failures: "report" (7.2: error_report() at each level, a
    #: failed subsection load leaves the file error alone), "errp" (10.x: one
    #: ``Error **errp`` set where the failure happens and prepended by the callers,
    #: printed once by the caller; a failed subsection load sets the file error) or
    #: "bool" (below).
    #: The messages follow QEMU 10.2's wording; 8.0 - 9.2 used error_report() with the
    #: 10.x texts of their time (not modelled separately).
    #: "bool" (QEMU master, classes R, M1, M2, S): Vladimir Sementsov-Ogievskiy's bool
    #: API -- vmstate_load_vmsd() / vmstate_save_vmsd() return bool and take ``errp``,
    #: infos have ``bool .load/.save(..., Error **)`` and set the Error themselves,
    #: nested-VMSD infos pass it up, "Save of field D/F failed: " is prepended (not set),
    #: and the int wrappers vmstate_load_state() / vmstate_save_state() return 0 or
    #: -EINVAL, -EINVAL being the file error a failed field / subsection sets.
    errors: str = "report"
    #: qemu_fill_buffer() reads the channel even after the file has an error (7.2);
    #: 8.0+ returns at once
    refill_after_error: bool = False
    #: vmstate_n_elems() multiplies by ``.num`` under VMS_MULTIPLY_ELEMENTS (<= 10.x);
    #: QEMU master's does not (class X)
    multiply_elements: bool = True
    #: what a post_save hook's return does: "checked" (<= 10.x: a non-zero return fails
    #: the save) or "ignored" (master vmstate_save_vmsd_v(), class P2)
    post_save_result: str = "checked"
    #: modelling decisions for behaviour the sources leave open (see docs/variants.md and
    #: DECISIONS); every key of DECISIONS has a value here
    decisions: dict = attrs.field(factory=dict)

    # -- flags ------------------------------------------------------------------------
    def numeric_flags(self, flags: F) -> int:
        """The integer QEMU of this variant would hold for ``flags`` (KeyError if a bit
        has no value here)."""
        total = 0
        for f in F:
            if f in flags and f.value:
                if f not in self.numbering:
                    raise KeyError(f"{f.name} does not exist in variant {self.name}")
                total |= self.numbering[f]
        return total

    def flags_from_numeric(self, value: int) -> F:
        result = F(0)
        rest = value
        for f, bit in self.numbering.items():
            if value & bit:
                result |= f
                rest &= ~bit
        if rest:
            raise KeyError(f"bits 0x{rest:x} mean nothing in variant {self.name}")
        return result

    def flag_table(self) -> list[tuple[str, int | None]]:
        """(QEMU flag name, value) in numeric order; VMS_END last (None = no canary)."""
        rows = sorted(((QEMU_NAMES[f], bit) for f, bit in self.numbering.items()),
                      key=lambda r: r[1])
        return rows + [("VMS_END", self.vms_end)]

    @property
    def vmdesc_era(self) -> str:
        """vmdesc JSON era: "A" (real field type for NULL entries), "B" ("nullptr"
        entries, run splitting), "C" ("ptr-marker" entries, no "index")."""
        return self.decision("vmdesc_era")

    def decision(self, key: str):
        return self.decisions[key] if key in self.decisions else DECISIONS[key][1][0]

    # -- pointer-array policy points ---------------------------------------------------
    def is_auto(self, field: Field) -> bool:
        """Does this field use the marker-per-element format with element allocation?

        auto-alloc-flag: VMS_ARRAY_OF_POINTER_AUTO_ALLOC (vmstate.c use_dynamic_array);
        pointer-array-alloc: VMS_ARRAY_OF_POINTER together with VMS_ALLOC (Fabiano Rosas's RFC, 13/17).
        """
        flags = field.flags
        rule = self.auto_flag_rule
        if rule == "auto-alloc-flag":
            return bool(flags & F.AUTO_ALLOC)
        if rule == "pointer-array-alloc":
            return bool(flags & F.ARRAY_OF_POINTER) and bool(flags & F.ALLOC)
        return False

    def allocates_array(self, field: Field) -> bool:
        """Does the core allocate the (array) member itself before loading?

        vmstate_handle_alloc(): POINTER and ALLOC.  Under "pointer-array-alloc" ALLOC on an
        array of pointers means the elements: Fabiano's vmstate_first() is told to
        allocate only when the field is not an array of pointers (the alloc RFC, 13/17).
        """
        flags = field.flags
        if not (flags & F.POINTER and flags & F.ALLOC):
            return False
        if self.auto_flag_rule == "pointer-array-alloc" and flags & F.ARRAY_OF_POINTER:
            return False
        return True

    def element_size(self, field: Field, size: int) -> int:
        """The per-element size the core computes (vmstate_size()) for this field: VBUFFER
        first, then (pointee convention) the host pointer size for pointer arrays."""
        if (field.flags & F.ARRAY_OF_POINTER and not field.flags & F.VBUFFER
                and self.pointer_array_size == "pointee"):
            return HOST_POINTER_SIZE
        return size

    def auto_load_size(self, field: Field, size: int) -> int:
        """The size vmstate_load_field() gets for an auto element (Peter Xu's 09/11: vmstate_size(),
        i.e. the pointer size; the save passes .size)."""
        return size if self.decision("auto_load_element_size") == "pointer" else field.size

    def n_elems_multiplied(self, field: Field) -> bool:
        """Does vmstate_n_elems() multiply this field's count by ``.num``?"""
        return bool(field.flags & F.MULTIPLY_ELEMENTS) and self.multiply_elements

    def post_hook_failed(self, ret: int) -> bool:
        return ret < 0 if self.hook_failure == "negative" else ret != 0


_LEGACY_NUMBERING = {**_COMMON_BITS}
# the context of the alloc RFC's 13/17 (Fabiano, on Peter's RFC v1) still shows VMS_MULTIPLY_ELEMENTS
# (0x4000) beside AUTO_ALLOC: the flag was removed by the later e0e77e09 refactor.
_AUTO_NUMBERING = {**{f: b for f, b in _COMMON_BITS.items() if f is not F.MULTIPLY_ELEMENTS},
                   F.MULTIPLY_ELEMENTS: 0x4000, F.AUTO_ALLOC: 0x10000}

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "qemu-7.2", "QEMU 7.2 and older", "<= 7.2 (Debian 12's qemu-system-x86)",
            vms_end=None, numbering=_LEGACY_NUMBERING, has_check=False,
            pointer_array_rules=None, pointer_array_size="stride", marker_load="nullptr",
            hook_failure="nonzero", auto_flag_rule=None,
            # vmstate-types.c (7.2): vmstate_info_nullptr's .name is "uint64"; era A vmdesc
            # describes a NULL slot with the real field, so the name never reaches JSON
            marker_info_name="uint64",
            refill_after_error=True,
            decisions={"vmdesc_era": "A"},
        ),
        Variant(
            "legacy", "QEMU 8.0 - 10.x", "8.0 - 10.x",
            vms_end=0x10000, numbering=_LEGACY_NUMBERING, has_check=True,
            pointer_array_rules=None, pointer_array_size="stride", marker_load="nullptr",
            hook_failure="nonzero", auto_flag_rule=None,
            marker_info_name="nullptr",
            # 8.0 - 9.2 emit era A vmdesc like qemu-7.2; "legacy" pins 10.x (Jan 2025 fix)
            errors="errp",
            decisions={"vmdesc_era": "B"},
        ),
        Variant(
            "auto-alloc", "VMS_ARRAY_OF_POINTER_AUTO_ALLOC (Peter Xu, landed)",
            "11.0 development (Peter Xu's series, header 028d4ec4)",
            vms_end=0x20000, numbering=_AUTO_NUMBERING, has_check=True,
            pointer_array_rules="auto-alloc", pointer_array_size="pointee",
            marker_load="ptr-marker", hook_failure="negative",
            auto_flag_rule="auto-alloc-flag", marker_info_name="ptr-marker",
            # QEMU master's conventions (CONVENTIONS above; checked against its C)
            errors="bool", multiply_elements=False, post_save_result="ignored",
            decisions={
                # vmstate_load_next(): assert(!auto_alloc || *pptr == NULL)
                "populated_auto_slot": "assert",
                # vmstate_load_next(): assert(auto_alloc) after a 0x31 marker
                "stray_valid_marker": "assert",
                # AUTO_ALLOC|ALLOC|POINTER: vmstate_handle_alloc uses g_malloc (not zeroed)
                "array_alloc_zeroed": False,
                # vmstate_load_next(): g_malloc0(field->size)
                "element_alloc_zeroed": True,
                # vmstate_load_vmsd(): vmstate_load_field(f, curr_elem, size, ...) with
                # size = vmstate_size() = sizeof(void *)
                "auto_load_element_size": "pointer",
                "null_array_base": "assert",
                "vmdesc_era": "C",
                # master vmstate_load_vmsd(): no qemu_file_set_error on this path (F)
                "marker_error_sets_file_error": False,
                # master vmstate_load_vmsd(): a NULL element address is skipped
                "null_element_skipped_on_load": True,
            },
        ),
        Variant(
            "alloc", "VMS_ARRAY_OF_POINTER | VMS_ALLOC (Fabiano Rosas, RFC)",
            "RFC v1 13/17 on top of Peter Xu's RFC v1",
            vms_end=0x10000, numbering=_LEGACY_NUMBERING, has_check=True,
            pointer_array_rules="alloc", pointer_array_size="pointee",
            marker_load="ptr-marker", hook_failure="negative",
            auto_flag_rule="pointer-array-alloc", marker_info_name="ptr-marker",
            # proposed on top of the same master: its conventions (CONVENTIONS above)
            errors="bool", multiply_elements=False, post_save_result="ignored",
            decisions={
                # 13/17 vmstate_next(): allocate "if (!next || field->flags & VMS_ALLOC)":
                # a populated slot gets a fresh object; the old one leaks (unverified)
                "populated_auto_slot": "overwrite",
                # 13/17 leaves vmstate_ptr_marker_load and the non-auto path untouched
                "stray_valid_marker": "assert",
                # never used for pointer arrays: vmstate_first() does not allocate them
                "array_alloc_zeroed": False,
                # the 13/17 context keeps the "object size, not vmstate_size()" allocation
                "element_alloc_zeroed": True,
                # the 13/17 context keeps "int size = vmstate_size(opaque, field)" for load
                "auto_load_element_size": "pointer",
                # vmstate_first() body unknown: keep the POINTER base assertion
                "null_array_base": "assert",
                # patches 2-7 restructure the JSON (unknown): assume Peter's landed era C
                "vmdesc_era": "C",
                # master vmstate_load_vmsd(), which 13/17 sits on (F)
                "marker_error_sets_file_error": False,
                # master vmstate_load_vmsd(): a NULL element address is skipped
                "null_element_skipped_on_load": True,
            },
        ),
    )
}

DEFAULT_VARIANT = "legacy"
VARRAY_FLAGS = ANY_VARRAY


def get(name: str | Variant) -> Variant:
    if isinstance(name, Variant):
        return name
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariant(
            f"unknown variant {name!r} (known: {', '.join(VARIANTS)})") from None
