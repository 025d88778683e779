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
of the seed diffs is taken and recorded as a named switch in ``decisions`` (documented
in docs/variants.md), so it can be flipped in one place.
"""

from __future__ import annotations

import attrs

from conformance.flags import ANY_VARRAY, F
from conformance.model import Field

HOST_POINTER_SIZE = 8

_COMMON_BITS = {f: f.value for f in F if f is not F.AUTO_ALLOC}


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
    #: vmdesc JSON era: "A" (real field type for NULL entries), "B" ("nullptr" entries,
    #: run splitting), "C" ("ptr-marker" entries, no "index")
    vmdesc_era: str
    #: hook return convention: "nonzero" (Era A/B: any non-zero fails) or "negative"
    hook_failure: str
    #: modelling decisions for behaviour the sources leave open (see docs/variants.md)
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

    # -- pointer-array policy points ---------------------------------------------------
    def is_auto(self, field: Field) -> bool:
        """Does this field use the marker-per-element format with element allocation?

        auto-alloc: VMS_ARRAY_OF_POINTER_AUTO_ALLOC (vmstate.c use_dynamic_array);
        alloc: VMS_ARRAY_OF_POINTER together with VMS_ALLOC (seed 000, 13/17).
        """
        flags = field.flags
        if self.name == "auto-alloc":
            return bool(flags & F.AUTO_ALLOC)
        if self.name == "alloc":
            return bool(flags & F.ARRAY_OF_POINTER) and bool(flags & F.ALLOC)
        return False

    def allocates_array(self, field: Field) -> bool:
        """Does the core allocate the (array) member itself before loading?

        vmstate_handle_alloc(): POINTER and ALLOC.  Fabiano's vmstate_first() is told to
        allocate only when the field is not an array of pointers.
        """
        flags = field.flags
        if not (flags & F.POINTER and flags & F.ALLOC):
            return False
        if self.name == "alloc" and flags & F.ARRAY_OF_POINTER:
            return False
        return True

    def element_size(self, field: Field, size: int) -> int:
        """The per-element size the core computes (vmstate_size()) for this field."""
        if field.flags & F.ARRAY_OF_POINTER and self.pointer_array_size == "pointee":
            return HOST_POINTER_SIZE
        return size

    def post_hook_failed(self, ret: int) -> bool:
        return ret < 0 if self.hook_failure == "negative" else ret != 0


_LEGACY_NUMBERING = {**_COMMON_BITS}
_AUTO_NUMBERING = {**{f: b for f, b in _COMMON_BITS.items() if f is not F.MULTIPLY_ELEMENTS},
                   F.MULTIPLY_ELEMENTS: 0x4000, F.AUTO_ALLOC: 0x10000}

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "qemu-7.2", "QEMU 7.2 and older", "<= 7.2 (Debian 12's qemu-system-x86)",
            vms_end=None, numbering=_LEGACY_NUMBERING, has_check=False,
            pointer_array_rules=None, pointer_array_size="stride", marker_load="nullptr",
            vmdesc_era="A", hook_failure="nonzero",
        ),
        Variant(
            "legacy", "QEMU 8.0 - 10.x", "8.0 - 10.x",
            vms_end=0x10000, numbering=_LEGACY_NUMBERING, has_check=True,
            pointer_array_rules=None, pointer_array_size="stride", marker_load="nullptr",
            vmdesc_era="B", hook_failure="nonzero",
        ),
        Variant(
            "auto-alloc", "VMS_ARRAY_OF_POINTER_AUTO_ALLOC (Peter Xu, landed)",
            "11.0 development (seed 001, header 028d4ec4)",
            vms_end=0x20000, numbering=_AUTO_NUMBERING, has_check=True,
            pointer_array_rules="auto-alloc", pointer_array_size="pointee",
            marker_load="ptr-marker", vmdesc_era="C", hook_failure="nonzero",
            decisions={
                # vmstate_load_next(): assert(!auto_alloc || *pptr == NULL)
                "populated_auto_slot": "assert",
                # AUTO_ALLOC|ALLOC|POINTER: vmstate_handle_alloc uses g_malloc (not zeroed)
                "array_alloc_zeroed": False,
            },
        ),
        Variant(
            "alloc", "VMS_ARRAY_OF_POINTER | VMS_ALLOC (Fabiano Rosas, RFC)",
            "RFC v1 13/17 on top of Peter Xu's RFC v1",
            vms_end=0x10000, numbering=_LEGACY_NUMBERING, has_check=True,
            pointer_array_rules="alloc", pointer_array_size="pointee",
            marker_load="ptr-marker", vmdesc_era="C", hook_failure="nonzero",
            decisions={
                # 13/17 vmstate_next(): allocate "if (!next || field->flags & VMS_ALLOC)":
                # a populated slot gets a fresh object; the old one leaks.
                "populated_auto_slot": "overwrite",
                "array_alloc_zeroed": False,
            },
        ),
    )
}

DEFAULT_VARIANT = "legacy"
VARRAY_FLAGS = ANY_VARRAY


class UnknownVariant(KeyError):
    pass


def get(name: str | Variant) -> Variant:
    if isinstance(name, Variant):
        return name
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariant(
            f"unknown variant {name!r} (known: {', '.join(VARIANTS)})") from None
