"""VMStateFlags as the model holds them, and their numbering in each QEMU era.

The model stores flags in one canonical numbering: QEMU's Era A/B values
(include/migration/vmstate.h, enum VMStateFlags, QEMU 2.9 - 10.x) plus
VMS_ARRAY_OF_POINTER_AUTO_ALLOC at its landed value 0x10000.  VMS_END is not a flag of
a field in the model: a Description's terminator is checked against the variant's
VMS_END (see conformance.model.variants), because VMS_END moved from 0x10000 to 0x20000 when
AUTO_ALLOC took 0x10000.
"""

from __future__ import annotations

import enum


class F(enum.IntFlag):
    """Canonical VMStateFlags bits (QEMU names without the ``VMS_`` prefix)."""

    SINGLE = 0x001
    POINTER = 0x002
    ARRAY = 0x004
    STRUCT = 0x008
    VARRAY_INT32 = 0x010
    BUFFER = 0x020
    ARRAY_OF_POINTER = 0x040
    VARRAY_UINT16 = 0x080
    VBUFFER = 0x100
    MULTIPLY = 0x200
    VARRAY_UINT8 = 0x400
    VARRAY_UINT32 = 0x800
    MUST_EXIST = 0x1000
    ALLOC = 0x2000
    MULTIPLY_ELEMENTS = 0x4000
    VSTRUCT = 0x8000
    AUTO_ALLOC = 0x10000  # VMS_ARRAY_OF_POINTER_AUTO_ALLOC (QEMU 11 development)

    # The engines test flags per element: enum's & and | build the result through
    # three Python calls (about 5 us); the results are remembered instead (a load of
    # 20,000 empty structs spent 10 s in them; found by fuzz --target engines).
    def __and__(self, other):
        return _cached(_AND, enum.IntFlag.__and__, self, other)

    def __or__(self, other):
        return _cached(_OR, enum.IntFlag.__or__, self, other)

    __rand__ = __and__
    __ror__ = __or__


_AND: dict = {}
_OR: dict = {}


def _cached(cache: dict, op, flag: F, other):
    try:
        return cache[flag._value_, other]
    except KeyError:
        if len(_AND) + len(_OR) > 8192:  # generated descriptions combine flags freely
            _AND.clear()
            _OR.clear()
        result = cache[flag._value_, other] = op(flag, other)
        return result
    except TypeError:  # an unhashable operand: enum's own answer (or its error)
        return op(flag, other)


#: every VARRAY kind, in the order vmstate_n_elems() tests them (first match wins).
VARRAY_ORDER = (F.VARRAY_INT32, F.VARRAY_UINT32, F.VARRAY_UINT16, F.VARRAY_UINT8)
ANY_VARRAY = F.VARRAY_INT32 | F.VARRAY_UINT32 | F.VARRAY_UINT16 | F.VARRAY_UINT8

#: QEMU's spelling of each canonical flag.
QEMU_NAMES = {
    F.AUTO_ALLOC: "VMS_ARRAY_OF_POINTER_AUTO_ALLOC",
    **{f: "VMS_" + f.name for f in F if f is not F.AUTO_ALLOC},
}

_BY_NAME = {}
for _flag in F:
    _BY_NAME[_flag.name] = _flag
    _BY_NAME[QEMU_NAMES[_flag]] = _flag
    _BY_NAME["VMS_" + _flag.name] = _flag
    _BY_NAME[QEMU_NAMES[_flag].removeprefix("VMS_")] = _flag


class FlagError(ValueError):
    """An unknown flag name or bit."""


def parse_flag_name(name: str) -> F:
    """``"VMS_ARRAY"``, ``"ARRAY"`` or ``"array"`` -> F.ARRAY."""
    key = name.strip().upper()
    try:
        return _BY_NAME[key]
    except KeyError:
        raise FlagError(f"unknown VMStateFlags name {name!r}") from None


def parse_flags(value) -> F:
    """Flags from a list of names, a ``|``-separated string, or a canonical integer."""
    if isinstance(value, F):
        return value
    if isinstance(value, bool):
        raise FlagError("flags must be names or an integer, not a boolean")
    if isinstance(value, int):
        unknown = value & ~sum(F)
        if unknown:
            raise FlagError(f"unknown VMStateFlags bits 0x{unknown:x}")
        return F(value)
    if isinstance(value, str):
        value = [part for part in value.split("|") if part.strip()]
    if isinstance(value, (list, tuple)):
        result = F(0)
        for item in value:
            if not isinstance(item, str):
                raise FlagError(f"flag names must be strings, got {item!r}")
            result |= parse_flag_name(item)
        return result
    raise FlagError(f"flags must be a list of names or an integer, got {type(value).__name__}")


def flag_names(flags: F) -> list[str]:
    """Canonical names of the set bits, lowest bit first (the case-file spelling)."""
    return [f.name for f in F if f in flags and f.value]


def describe(flags: F) -> str:
    names = [QEMU_NAMES[f] for f in F if f in flags]
    return " | ".join(names) if names else "0"
