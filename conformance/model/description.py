"""The VMState data model: VMStateDescription and VMStateField as attrs classes.

Mirrors include/migration/vmstate.h (struct VMStateDescription, struct VMStateField)
with C offsets replaced by member names: a struct is a mapping keyed by member, so
``offset`` becomes ``member``, ``num_offset`` becomes ``num_member`` and
``size_offset`` becomes ``size_member``.  Counters and sizes are read from the
containing struct, as QEMU does (vmstate_n_elems(), vmstate_size()).

Behaviour that QEMU expresses with C callbacks (``field_exists``, ``needed`` and the
pre/post hooks) is either a declarative :class:`Pred` / :class:`Hook` (usable from JSON
case files) or any Python callable with QEMU's signature (Python-defined cases).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs

from conformance.model.flags import ANY_VARRAY, F, parse_flags
from conformance.model.infos import Info, lookup

# --------------------------------------------------------------------------------------
# Predicates and hooks


@attrs.frozen
class Pred:
    """A declarative ``field_exists(opaque, version_id)`` / ``needed(opaque)`` predicate.

    kinds: ``const`` (value), ``member`` (truthiness of a member), ``equals`` (member ==
    value), ``version_at_least`` (version_id >= value), ``not`` / ``all`` / ``any``
    (over ``args``).
    """

    kind: str
    member: str | None = None
    value: Any = None
    args: tuple[Pred, ...] = ()

    def __call__(self, opaque, version_id: int = 0) -> bool:
        k = self.kind
        if k == "const":
            return bool(self.value)
        if k == "member":
            return bool(_member(opaque, self.member))
        if k == "equals":
            return _member(opaque, self.member) == self.value
        if k == "version_at_least":
            return version_id >= self.value
        if k == "not":
            return not self.args[0](opaque, version_id)
        if k == "all":
            return all(a(opaque, version_id) for a in self.args)
        if k == "any":
            return any(a(opaque, version_id) for a in self.args)
        raise ValueError(f"unknown predicate kind {k!r}")


def _member(opaque, name):
    if isinstance(opaque, dict):
        return opaque.get(name)
    return None


PRED_KINDS = ("const", "member", "equals", "version_at_least", "not", "all", "any")


@attrs.frozen
class Hook:
    """A declarative pre/post hook: assign members, then return ``ret``.

    QEMU's hooks return int; a non-zero (Era C: negative) value is a failure.
    """

    ret: int = 0
    set: tuple[tuple[str, Any], ...] = ()

    def __call__(self, opaque, version_id: int = 0) -> int:
        if isinstance(opaque, dict):
            for member, value in self.set:
                # a fresh value per call, as C code assigning a constant would: a list or
                # dict shared between calls would alias every struct the hook runs on
                opaque[member] = copy.deepcopy(value)
        return self.ret


Predicate = Pred | Callable[..., bool]
HookFn = Hook | Callable[..., int]

# --------------------------------------------------------------------------------------
# Field and Description


def _flags(value) -> F:
    return parse_flags(value)


@attrs.frozen(eq=True)
class Field:
    """One VMStateField.

    ``member`` is the struct member the field reads and writes (``offset`` in C); it
    defaults to ``name``.  ``None`` means the field has no member of its own
    (VMSTATE_UNUSED, VMSTATE_VALIDATE, VMSTATE_WITH_TMP).
    """

    name: str
    flags: F = attrs.field(default=F.SINGLE, converter=_flags)
    info: str | None = None
    member: str | None = attrs.field(default=attrs.Factory(lambda self: self.name, takes_self=True))
    size: int = 0
    num: int = 0
    num_member: str | None = None
    size_member: str | None = None
    start: int = 0
    version_id: int = 0
    struct_version_id: int = 0
    field_exists: Predicate | None = None
    vmsd: Description | None = None
    key_vmsd: Description | None = None  # GTREE: vmsd[1], the key description

    @property
    def info_obj(self) -> Info | None:
        return lookup(self.info) if self.info is not None else None

    @property
    def is_struct(self) -> bool:
        return bool(self.flags & (F.STRUCT | F.VSTRUCT))

    @property
    def varray_flag(self) -> F:
        """The VARRAY kind vmstate_n_elems() would pick (ARRAY wins), or F(0)."""
        if self.flags & F.ARRAY:
            return F(0)
        for kind in (F.VARRAY_INT32, F.VARRAY_UINT32, F.VARRAY_UINT16, F.VARRAY_UINT8):
            if self.flags & kind:
                return kind
        return F(0)

    @property
    def is_array(self) -> bool:
        return bool(self.flags & (F.ARRAY | ANY_VARRAY))


@attrs.frozen(eq=True)
class Description:
    """One VMStateDescription (a "VMSD")."""

    name: str
    version_id: int = 0
    minimum_version_id: int = 0
    fields: tuple[Field, ...] = attrs.field(default=(), converter=tuple)
    subsections: tuple[Description, ...] = attrs.field(default=(), converter=tuple)
    needed: Predicate | None = None
    pre_save: HookFn | None = None
    post_save: HookFn | None = None
    pre_load: HookFn | None = None
    post_load: HookFn | None = None
    priority: int = 0
    #: flags of the end-of-list entry; None = the variant's VMS_END (a correct canary)
    terminator: int | None = None

    def walk(self, path: str = ""):
        """Yield (path, description) for this VMSD and every nested one."""
        here = path + self.name if not path else path
        yield here, self
        for field in self.fields:
            for child in (field.vmsd, field.key_vmsd):
                if child is not None:
                    yield from child.walk(f"{here}/{field.name}")
        for sub in self.subsections:
            yield from sub.walk(f"{here}/{sub.name}")

    def all_fields(self):
        """Yield (path, field) for every field of this VMSD and nested VMSDs."""
        for path, desc in self.walk():
            for field in desc.fields:
                yield f"{path}/{field.name}", field


def evolve(obj, **changes):
    """attrs.evolve, re-exported for callers that build variants of a description."""
    return attrs.evolve(obj, **changes)


def nominal_size(desc: Description) -> int:
    """A stand-in for sizeof(struct): the sum of the members' nominal C sizes.

    The model has no C layout; this number only feeds allocation sizes in the ledger
    and the "size must be non-zero" checks, where any positive value is faithful.
    """
    total = 0
    for field in desc.fields:
        if field.member is None:
            continue
        count = field.num if field.flags & F.ARRAY else 1
        if field.flags & (F.POINTER | F.ARRAY_OF_POINTER):
            per = 8
        elif field.flags & (F.STRUCT | F.VSTRUCT):
            per = field.size or (nominal_size(field.vmsd) if field.vmsd else 0)
        else:
            info = field.info_obj
            per = field.size or (info.c_size if info else 0)
        total += per * max(count, 1)
    return max(total, 1)
