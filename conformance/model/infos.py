"""The VMStateInfo catalogue: QEMU's leaf codecs, by their exact type names.

One table for every consumer (both engines, the vmdesc decoder, the strategies).
Names and encodings model migration/vmstate-types.c (vmstate_info_* definitions and
their get_*/put_* functions) and migration/savevm.c (vmstate_info_capability).

``kind`` says how the engines treat an info:

* ``int``     fixed-width big-endian integer (``fmt`` is its struct format)
* ``bool``    one byte; save writes 0/1, load takes any non-zero byte as true
* ``equal``   like ``int`` on save; load compares with the destination (get_*_equal)
* ``le``      int32 le: load requires 0 <= loaded <= destination, then stores it
* ``double``  CPU_Double_U / float64: be64 of the IEEE-754 bit pattern (model: int bits)
* ``timer``   be64 expiry in ns, -1 = not armed (model: int)
* ``buffer``  ``size`` raw bytes;  ``unused``: zeros on save, skipped on load
* ``bitmap``  ``size`` bits as ceil(size/64) be64 words (model: int, bit k = bit k)
* ``nullptr`` / ``ptr-marker``: the one-byte pointer markers (driven by the core)
* ``tmp``, ``qtailq``, ``qlist``, ``gtree``: nested VMSDs run by the engine
* ``gbytearray``  be32 length then the bytes; ``capability``: length byte + name
* ``fd``      a file descriptor: not representable in a plain stream
"""

from __future__ import annotations

import struct

from conformance.plain import Plain


class Info(Plain):
    """name: the vmdesc "type" string; symbol: QEMU's C symbol, for citations and
    error messages; width: wire width in bytes for fixed-width kinds; c_size: sizeof()
    of the C member it describes (nominal for compound kinds)."""

    __slots__ = ("name", "symbol", "kind", "width", "signed", "c_size")
    _defaults = {"width": 0, "signed": False, "c_size": 0}

    @property
    def fmt(self) -> str | None:
        """struct-module format of a fixed-width value, or None."""
        if self.kind in ("int", "equal", "le", "timer"):
            code = {1: "b", 2: "h", 4: "i", 8: "q"}[self.width]
            return ">" + (code if self.signed else code.upper())
        if self.kind == "bool":
            return ">B"
        if self.kind == "double":
            return ">Q"
        return None

    @property
    def is_fixed(self) -> bool:
        """True when every value has the same wire width (``width`` bytes)."""
        return self.width > 0

    @property
    def min(self) -> int:
        return -(1 << (8 * self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (8 * self.width - 1)) - 1 if self.signed else (1 << (8 * self.width)) - 1


def _int(name, symbol, width, signed, kind="int"):
    return Info(name, symbol, kind, width, signed, width)


_TABLE = [
    Info("bool", "vmstate_info_bool", "bool", 1, False, 1),
    _int("int8", "vmstate_info_int8", 1, True),
    _int("int16", "vmstate_info_int16", 2, True),
    _int("int32", "vmstate_info_int32", 4, True),
    _int("int64", "vmstate_info_int64", 8, True),
    _int("uint8", "vmstate_info_uint8", 1, False),
    _int("uint16", "vmstate_info_uint16", 2, False),
    _int("uint32", "vmstate_info_uint32", 4, False),
    _int("uint64", "vmstate_info_uint64", 8, False),
    _int("int32 equal", "vmstate_info_int32_equal", 4, True, "equal"),
    _int("uint8 equal", "vmstate_info_uint8_equal", 1, False, "equal"),
    _int("uint16 equal", "vmstate_info_uint16_equal", 2, False, "equal"),
    _int("uint32 equal", "vmstate_info_uint32_equal", 4, False, "equal"),
    # vmstate-types.c names vmstate_info_uint64_equal "int64 equal" (sic).
    _int("int64 equal", "vmstate_info_uint64_equal", 8, False, "equal"),
    _int("int32 le", "vmstate_info_int32_le", 4, True, "le"),
    Info("CPU_Double_U", "vmstate_info_cpudouble", "double", 8, False, 8),
    Info("float64", "vmstate_info_float64", "double", 8, False, 8),
    Info("timer", "vmstate_info_timer", "timer", 8, True, 8),
    Info("buffer", "vmstate_info_buffer", "buffer"),
    Info("unused_buffer", "vmstate_info_unused_buffer", "unused"),
    Info("bitmap", "vmstate_info_bitmap", "bitmap"),
    Info("nullptr", "vmstate_info_nullptr", "nullptr", 1, False, 0),
    Info("ptr-marker", "vmstate_info_ptr_marker", "ptr-marker", 1, False, 0),
    Info("tmp", "vmstate_info_tmp", "tmp"),
    Info("qtailq", "vmstate_info_qtailq", "qtailq", 0, False, 16),
    Info("qlist", "vmstate_info_qlist", "qlist", 0, False, 8),
    Info("gtree", "vmstate_info_gtree", "gtree", 0, False, 8),
    Info("GByteArray", "vmstate_info_g_byte_array", "gbytearray", 0, False, 8),
    Info("capability", "vmstate_info_capability", "capability"),
    Info("fd", "vmstate_info_fd", "fd", 0, False, 4),
]

INFOS: dict[str, Info] = {info.name: info for info in _TABLE}
BY_SYMBOL: dict[str, Info] = {info.symbol: info for info in _TABLE}

#: Infos a case file may name for an ordinary field (the markers are the core's).
FIELD_INFOS = tuple(n for n, i in INFOS.items() if i.kind not in ("nullptr", "ptr-marker"))
SCALAR_KINDS = ("int", "bool", "equal", "le", "double", "timer")

NULL_MARKER = 0x30  # VMS_NULLPTR_MARKER / VMS_MARKER_PTR_NULL ('0')
VALID_MARKER = 0x31  # VMS_MARKER_PTR_VALID ('1'), QEMU 11 development

_STRUCTS: dict[str, struct.Struct] = {}


def packer(info: Info) -> struct.Struct:
    """Precompiled struct for a fixed-width info (shared by both engines)."""
    fmt = info.fmt
    if fmt is None:
        raise KeyError(f"info {info.name!r} has no fixed-width encoding")
    s = _STRUCTS.get(fmt)
    if s is None:
        s = _STRUCTS[fmt] = struct.Struct(fmt)
    return s


def lookup(name: str) -> Info:
    """The Info for a QEMU type name or C symbol; KeyError names the valid choices."""
    info = INFOS.get(name) or BY_SYMBOL.get(name)
    if info is None:
        raise KeyError(f"unknown VMStateInfo {name!r} (known: {', '.join(INFOS)})")
    return info


def to_unsigned(info: Info, value: int) -> int:
    """The wire bit pattern of a fixed-width integer value (two's complement)."""
    return value & ((1 << (8 * info.width)) - 1)


def from_unsigned(info: Info, raw: int) -> int:
    """Reinterpret a wire bit pattern as the info's C type."""
    if info.signed and raw >= 1 << (8 * info.width - 1):
        return raw - (1 << (8 * info.width))
    return raw


def bitmap_words(nbits: int) -> int:
    """BITS_TO_U64S(): number of be64 words a bitmap of ``nbits`` bits takes."""
    return (nbits + 63) // 64
