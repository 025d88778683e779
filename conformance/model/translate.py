"""Translate a description between variants: the same intent, the other variant's flags.

Intent of an ARRAY_OF_POINTER field, as the source variant reads it:

* ``plain``        destination-managed slots, legacy bytes (a NULL slot is one 0x30);
* ``array-alloc``  POINTER|ALLOC without element allocation (the core g_mallocs the
                   pointer array; legacy bytes) -- QEMU's "not supported" combination;
* ``elements``     a marker per slot, the core allocates present elements
                   (AUTO_ALLOC in auto-alloc, ARRAY_OF_POINTER|ALLOC in alloc);
* ``array+elements`` the core allocates the array and the elements
                   (auto-alloc: POINTER|ALLOC|AUTO_ALLOC).

Each target variant spells an intent its own way or cannot express it; then
:class:`NotExpressible` names the field path and the reason.  ``.size`` follows the
target's convention: pointer stride 8 for legacy/qemu-7.2 pointer arrays, 0 for
non-allocating pointer arrays and the pointee size for allocating ones in
auto-alloc/alloc (Peter Xu, "Do not set size for VMS_ARRAY_OF_POINTER").  A correct
end-of-list canary follows the target's VMS_END.
"""

from __future__ import annotations

import attrs

from conformance.model import variants as _variants
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.variants import HOST_POINTER_SIZE


class NotExpressible(ValueError):
    """The intent of ``path`` has no spelling in the target variant."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def intent(field: Field, variant) -> str | None:
    """The pointer-array intent of ``field`` under ``variant`` (None: not a pointer array)."""
    v = _variants.get(variant)
    flags = field.flags
    if not flags & F.ARRAY_OF_POINTER:
        return None
    if v.is_auto(field):
        return "array+elements" if v.allocates_array(field) else "elements"
    if v.allocates_array(field):
        return "array-alloc"
    return "plain"


def _spell(field: Field, want: str, v, path: str, notes: list) -> Field:
    """``field`` with the flags and size ``v`` uses for intent ``want``."""
    flags = field.flags & ~(F.AUTO_ALLOC | F.ALLOC)
    size = field.size
    size_member = field.size_member
    rule = v.auto_flag_rule
    if want in ("plain", "array-alloc"):
        if want == "array-alloc":
            if rule == "pointer-array-alloc":
                raise NotExpressible(path, (
                    f"POINTER|ARRAY_OF_POINTER|ALLOC (core allocates the array only, legacy "
                    f"bytes) cannot be written in {v.name}: there it means marker-per-element "
                    f"with element allocation, which would silently change the wire format"))
            flags |= F.ALLOC
        if v.pointer_array_size == "stride":
            size = HOST_POINTER_SIZE
        else:
            size, size_member = 0, (None if not field.flags & F.VBUFFER else size_member)
    elif want == "elements":
        if rule is None:
            raise NotExpressible(path, (
                f"element allocation with per-slot markers does not exist in {v.name} "
                f"(no VMS_ARRAY_OF_POINTER_AUTO_ALLOC, no ARRAY_OF_POINTER|ALLOC)"))
        if rule == "auto-alloc-flag" and not field.is_array:
            raise NotExpressible(path, (
                f"a single auto-allocated pointer (ARRAY_OF_POINTER without ARRAY/VARRAY) "
                f"fails vmstate_check in {v.name}: VMS_ARRAY_OF_POINTER needs VMS_ARRAY or "
                f"a VMS_VARRAY_* flag"))
        flags |= F.AUTO_ALLOC if rule == "auto-alloc-flag" else F.ALLOC
        # the source is an allocating field of a pointee-size variant: .size (or the
        # size member) already is the pointee size
    elif want == "array+elements":
        if rule != "auto-alloc-flag":
            raise NotExpressible(path, (
                f"allocating both the pointer array and its elements cannot be written in "
                f"{v.name}" + (": ARRAY_OF_POINTER|ALLOC allocates the elements only and "
                               "never the array" if rule == "pointer-array-alloc" else "")))
        flags |= F.AUTO_ALLOC | F.ALLOC
    out = attrs.evolve(field, flags=flags, size=size, size_member=size_member)
    if out != field:
        notes.append(f"{path}: {_show(field)} -> {_show(out)}")
    return out


def _show(field: Field) -> str:
    from conformance.model.flags import flag_names

    size = f", size {field.size}" + (f"+{field.size_member}" if field.size_member else "")
    return "|".join(flag_names(field.flags)) + size


def translate(desc: Description, from_variant, to_variant,
              notes: list[str] | None = None) -> Description:
    """``desc`` (written for ``from_variant``) rewritten for ``to_variant``.

    Raises :class:`NotExpressible` with the field path when some field's intent has no
    spelling there.  ``notes`` (if given) receives one line per rewritten field.
    """
    src = _variants.get(from_variant)
    dst = _variants.get(to_variant)
    notes = [] if notes is None else notes
    memo: dict[int, Description] = {}

    def visit(d: Description, path: str) -> Description:
        if id(d) in memo:
            return memo[id(d)]
        fields = []
        for field in d.fields:
            fpath = f"{path}/{field.name}"
            for flag in F:
                if flag in field.flags and flag.value and flag not in dst.numbering:
                    if not (flag is F.AUTO_ALLOC and field.flags & F.ARRAY_OF_POINTER):
                        raise NotExpressible(fpath, f"{flag.name} does not exist in {dst.name}")
            want = intent(field, src)
            if want is None:
                if field.flags & F.AUTO_ALLOC:
                    raise NotExpressible(fpath, "AUTO_ALLOC without ARRAY_OF_POINTER")
                new = field
            elif field.flags & F.AUTO_ALLOC and src.auto_flag_rule != "auto-alloc-flag":
                raise NotExpressible(fpath, f"AUTO_ALLOC does not exist in {src.name}")
            else:
                if want == "plain" and src.pointer_array_size == "stride" \
                        and field.size != HOST_POINTER_SIZE and not field.flags & F.VBUFFER:
                    raise NotExpressible(fpath, (
                        f"a {src.name} pointer array with .size {field.size} (not the pointer "
                        f"stride {HOST_POINTER_SIZE}) does not recognise NULL slots; no other "
                        f"variant behaves so"))
                new = _spell(field, want, dst, fpath, notes)
            children = {}
            if new.vmsd is not None:
                children["vmsd"] = visit(new.vmsd, fpath)
            if new.key_vmsd is not None:
                children["key_vmsd"] = visit(new.key_vmsd, f"{fpath}.key")
            if children:
                new = attrs.evolve(new, **children)
            fields.append(new)
        subs = [visit(s, f"{path}/@{s.name}") for s in d.subsections]
        out = attrs.evolve(d, fields=fields, subsections=subs,
                           terminator=_terminator(d, src, dst, path, notes))
        memo[id(d)] = out
        return out

    return visit(desc, desc.name)


def _terminator(d: Description, src, dst, path: str, notes: list) -> int | None:
    term = d.terminator
    if term is None:
        return None  # the variant's own VMS_END
    if src.vms_end is None or term == src.vms_end:
        if term != dst.vms_end:
            notes.append(f"{path}: terminator -> VMS_END of {dst.name}")
        return None
    # a broken canary in the source variant
    if dst.vms_end is None:
        raise NotExpressible(f"{path}/(end)", f"{dst.name} has no VMS_END canary to break")
    if term == dst.vms_end:
        raise NotExpressible(f"{path}/(end)", (
            f"terminator 0x{term:x} is a broken canary in {src.name} but VMS_END in "
            f"{dst.name}"))
    return term


def try_translate(desc: Description, from_variant, to_variant):
    """(description, None) or (None, reason)."""
    try:
        return translate(desc, from_variant, to_variant), None
    except NotExpressible as exc:
        return None, str(exc)
