"""What every part of the layout shares: the fill bytes, the limits, the info kinds the
driver maps, :class:`NotExpressible` and the quick :func:`lacking_infos` pre-check.

Part of :mod:`conformance.qemu.layout` (its docstring describes the layout)."""

from __future__ import annotations

from conformance.model.description import Description, Field
from conformance.model.infos import lookup

GUARD = 0xFD
GUARD_LEN = 16
PERTURB = 0xA5  # M_PERTURB 0x5a: malloc() fills with 0x5a ^ 0xff
PTR_PERTURB = int.from_bytes(bytes([PERTURB]) * 8, "little")
MASK64 = (1 << 64) - 1
READ_LIMIT = 1 << 20  # bytes the walker reads for one block
BITMAP_WORDS_CAP = 1 << 12  # words of a pointee bitmap sized by its size member


class Unread:
    """A block the walker did not read back (larger than READ_LIMIT: a counter from a
    damaged stream); the comparison skips it (conformance.qemu.compare)."""

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes

    def __repr__(self) -> str:
        return f"Unread({self.nbytes})"

#: info kinds the driver maps to QEMU's vmstate_info_* (if the build has the symbol)
SCALAR_KINDS = ("int", "bool", "equal", "le", "double")
#: infos that live outside migration/vmstate-types.c (savevm.c, target code) or need a
#: channel that passes file descriptors: QEMU's test-vmstate link does not have them.
#: (GByteArray is in master's vmstate-types.c: expressible where the build has it.)
LACKING_KINDS = ("timer", "capability", "fd")


class NotExpressible(Exception):
    """The driver cannot run this case; ``reason`` says why (one short line)."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason = reason
        self.path = path


def lacking_infos(desc: Description, have: set[str]) -> set[str]:
    """Infos ``desc`` uses that the build lacks (a quick pre-check for sweeps)."""
    out = set()
    for _, f in desc.all_fields():
        info = _info(f)
        if info is not None and (info.kind in LACKING_KINDS or info.symbol not in have):
            out.add(info.name)
    return out


def _is_list(v) -> bool:
    return isinstance(v, list)


def _info(field: Field):
    return lookup(field.info) if field.info else None



def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v
