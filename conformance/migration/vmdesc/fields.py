"""Device state decoded through the vmdesc (``Body``, ``Field``, ``Subsection``,
``GTree``), and the wire constants and array codecs the decoder, the encoder and the
renderings share."""

from __future__ import annotations

import struct

from conformance.plain import Plain

QEMU_VM_SUBSECTION = 0x05

_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
_SUBSECTION_TAIL = struct.Struct(">I")


class Subsection(Plain):
    """name: as on the wire (counted string); version: be32 on the wire; body: Body."""

    __slots__ = ("name", "version", "body")


class Body(Plain):
    """One VMSD's bytes: its fields in vmdesc order, then its subsections."""

    __slots__ = ("vmsd_name", "version", "fields", "subsections")  # str|None, int|None, tuple, tuple

    def __init__(self, vmsd_name, version, fields: tuple, subsections: tuple = ()) -> None:
        self.vmsd_name, self.version, self.fields, self.subsections = vmsd_name, version, fields, subsections


class GTree(Plain):
    """count: the be32 node count on the wire; direct_key: direct keys are be64
    integers, others are VMSD bodies; nodes: ((key int | Body), value Body) per node."""

    __slots__ = ("count", "direct_key", "nodes")


# Field.kind: how ``value`` is held.
#   "int"    int, fixed-width per the info catalogue (also timer / CPU_Double_U bit patterns)
#   "ints"   tuple[int, ...]: a compressed ("array_len") integer array; ``index`` is 0 and
#            element k stands for the vmdesc element ``index`` k ("size" is per element)
#   "bool"   bool (byte 0x00 / 0x01)
#   "capability" bytes: a configuration capability name (length byte + name on the wire)
#   "raw"    bytes kept as they are (buffers, bitmaps, unknown types, or anything whose
#            structure did not match its vmdesc entry; ``note`` says which)
#   "struct" Body            ("struct" entries)
#   "inline" Body            (vstruct / tmp: the child's keys sit in the field object)
#   "list"   tuple[Body,...] (qtailq / qlist: 0x01 + element ... 0x00)
#   "gtree"  GTree
class Field(Plain):
    """One decoded vmdesc field entry: ``size`` is the vmdesc "size" of this element."""

    __slots__ = ("name", "type", "index", "size", "kind", "value", "note")

    def __init__(self, name: str, type: str, index: int | None, size: int, kind: str, value,
                 note: str | None = None) -> None:
        self.name, self.type, self.index, self.size = name, type, index, size
        self.kind, self.value, self.note = kind, value, note




_ARRAY_CODECS: dict[tuple[str, int], struct.Struct] = {}


def _array_codec(element: struct.Struct, count: int) -> struct.Struct:
    key = (element.format, count)
    codec = _ARRAY_CODECS.get(key)
    if codec is None:
        codec = _ARRAY_CODECS[key] = struct.Struct(f">{count}{element.format[-1]}")
    return codec
