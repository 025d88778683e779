"""The image: a model state written into the flat C memory image (:class:`ImageWriter`).

Part of :mod:`conformance.qemu.layout` (its docstring describes the layout)."""

from __future__ import annotations

from conformance.model.description import Field
from conformance.model.flags import F
from conformance.model.state import INDETERMINATE, Uninit, is_indeterminate
from conformance.qemu.layout.common import (
    BITMAP_WORDS_CAP,
    GUARD,
    GUARD_LEN,
    MASK64,
    PERTURB,
    NotExpressible,
    _is_list,
    _s32,
)
from conformance.qemu.layout.planner import Planner, Slot, StructLayout

# ---------------------------------------------------------------------------------------
# The image


def _int_bytes(value: int, n: int) -> bytes:
    return (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


class Image:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.relocs: list[int] = []
        self.guards: list[int] = []
        self.objects: list[str] = []
        #: arena offset of a pointee block -> (kind, payload) for the walker
        self.blocks: dict[int, tuple] = {}
        #: (arena offset, slot) of an embedded array / buffer / slot array -> its length
        self.lengths: dict[tuple[int, int], int] = {}

    def alloc(self, size: int) -> int:
        off = (len(self.buf) + 15) & ~15
        self.buf.extend(bytes(off - len(self.buf)))
        self.buf.extend(bytes(max(size, 1)))
        g = len(self.buf)
        self.buf.extend(bytes([GUARD]) * GUARD_LEN)
        self.guards.append(g)
        return off

    def ptr(self, at: int, target: int | None) -> None:
        if target is None:
            self.buf[at:at + 8] = bytes(8)
        else:
            self.buf[at:at + 8] = target.to_bytes(8, "little")
            self.relocs.append(at)

    def put(self, at: int, data: bytes) -> None:
        self.buf[at:at + len(data)] = data


class ImageWriter:
    def __init__(self, planner: Planner) -> None:
        self.p = planner
        self.img = Image()
        self.key_layouts: list[StructLayout] = []

    def struct(self, lay: StructLayout, value, at: int, path: str) -> None:
        if not isinstance(value, dict):
            if is_indeterminate(value):
                self.img.put(at, bytes([PERTURB]) * lay.size)
                return
            raise NotExpressible("a struct value that is not a dict", path)
        for member, s in lay.slots.items():
            if member == "parent" and lay.role == "tmp":
                continue
            v = value.get(member)
            self.member(s, v, at + s.offset, f"{path}.{member}", value)

    def scalar(self, v, width: int, at: int, path: str) -> None:
        if is_indeterminate(v):
            self.img.put(at, bytes([PERTURB]) * width)
            return
        if v is None:
            v = 0
        if not isinstance(v, int):
            raise NotExpressible(f"a scalar holding {type(v).__name__}", path)
        self.img.put(at, _int_bytes(int(v), width))

    def member(self, s: Slot, v, at: int, path: str, container=None) -> None:
        k = s.kind
        if k == "loose":
            self.scalar(v, 8, at, path)
        elif k == "scalar":
            self.scalar(v, 8, at, path)  # sign/zero-extended into the 8-byte slot
        elif k == "array":
            if v is None:
                return
            if not _is_list(v):
                raise NotExpressible("an array member that is not a list", path)
            self.img.lengths[(at, id(s))] = len(v)
            for i, e in enumerate(v):
                if s.elem == "struct":
                    self.struct(s.sub, e, at + i * s.stride, f"{path}[{i}]")
                else:
                    self.scalar(e, s.width, at + i * s.stride, f"{path}[{i}]")
        elif k == "struct":
            self.struct(s.sub, v, at, path)
        elif k == "buffer":
            if isinstance(v, Uninit) or v is INDETERMINATE:
                self.img.put(at, bytes([PERTURB]) * s.cap)
            elif v is not None:
                self.img.put(at, bytes(v))
                self.img.lengths[(at, id(s))] = len(v)
        elif k == "bitmap":
            self.img.put(at, _bitmap_bytes(v, s.cap, path))
        elif k == "ptrslots":
            items = v if s.field.is_array else [v]
            if items is None:
                return
            if not _is_list(items):
                raise NotExpressible("a pointer array that is not a list", path)
            self.img.lengths[(at, id(s))] = len(items)
            for i, e in enumerate(items):
                self.pointee_slot(s, e, at + 8 * i, f"{path}[{i}]")
        elif k == "ptr":
            self.pointer(s, v, at, path, container or {})
        elif k in ("qtailq", "qlist"):
            self.queue(s, v or [], at, path)
        elif k == "gtree":
            if v is not None:  # None: a NULL GTree * (the image is zeroed)
                self.gtree(s, v, at, path)
        elif k == "gbytearray":
            if not isinstance(v, (bytes, bytearray)):
                raise NotExpressible("a GByteArray that is not bytes (a NULL or "
                                     "indeterminate GByteArray *)", path)
            self.img.objects.append(f"gbytearray {at} {bytes(v).hex() or '-'}")
        else:  # pragma: no cover
            raise NotExpressible(f"slot kind {k}", path)

    def pointee_slot(self, s: Slot, e, at: int, path: str) -> None:
        """One slot of an array of pointers: NULL or a block holding one element."""
        if e is None:
            self.img.ptr(at, None)
            return
        if e is INDETERMINATE:
            self.img.put(at, bytes([PERTURB]) * 8)
            return
        self.img.ptr(at, self.element_block(s.elem, [e], s.field, path, single=True))

    def element_block(self, elem, items: list, f: Field, path: str, single=False) -> int:
        kind = elem[0]
        if kind == "struct":
            lay = elem[1]
            blk = self.img.alloc(lay.size * max(len(items), 1))
            self.img.blocks[blk] = ("struct", lay, len(items))
            for i, e in enumerate(items):
                self.struct(lay, e, blk + i * lay.size, f"{path}[{i}]" if not single else path)
            return blk
        if kind == "scalar":
            info = elem[1]
            stride = _scalar_stride(f, info)
            blk = self.img.alloc(stride * max(len(items), 1))
            self.img.blocks[blk] = ("scalar", info, len(items))
            for i, e in enumerate(items):
                self.scalar(e, info.width, blk + i * stride, f"{path}[{i}]")
            return blk
        raise NotExpressible(f"pointee kind {kind}", path)  # pragma: no cover

    def pointer(self, s: Slot, v, at: int, path: str, container: dict) -> None:
        f = s.field
        if v is None:
            self.img.ptr(at, None)
            return
        if v is INDETERMINATE:
            self.img.put(at, bytes([PERTURB]) * 8)
            return
        if f.flags & F.ARRAY_OF_POINTER:
            if not _is_list(v):
                raise NotExpressible("a pointer array that is not a list", path)
            stride = 8
            blk = self.img.alloc(stride * max(len(v), 1))
            self.img.blocks[blk] = ("ptrslots", s, len(v))
            for i, e in enumerate(v):
                self.pointee_slot(s, e, blk + 8 * i, f"{path}[{i}]")
            self.img.ptr(at, blk)
            return
        kind = s.elem[0]
        if kind in ("struct", "scalar"):
            if f.is_array:
                if not _is_list(v):
                    raise NotExpressible("a pointer to an array that is not a list", path)
                self.img.ptr(at, self.element_block(s.elem, v, f, path))
            else:
                self.img.ptr(at, self.element_block(s.elem, [v], f, path, single=True))
            return
        if kind == "bytes":
            if isinstance(v, Uninit):
                blk = self.img.alloc(v.nbytes)
                self.img.put(blk, bytes([PERTURB]) * v.nbytes)
                self.img.blocks[blk] = ("bytes", v.nbytes)
            else:
                data = bytes(v)
                blk = self.img.alloc(len(data))
                self.img.put(blk, data)
                self.img.blocks[blk] = ("bytes", len(data))
            self.img.ptr(at, blk)
            return
        if kind == "bitmap":
            if not isinstance(v, int) or isinstance(v, bool):
                raise NotExpressible("a bitmap that is not an int", path)
            words = (v.bit_length() + 63) // 64
            # the device allocated the bitmap for its own size member (capped: a
            # destination drawn with a huge size member gets BITMAP_WORDS_CAP words)
            words = max(words, min((max(_size_of(f, container), 0) + 63) // 64,
                                   BITMAP_WORDS_CAP))
            blk = self.img.alloc(8 * max(words, 1))
            self.img.put(blk, _bitmap_bytes(v, words, path))
            self.img.blocks[blk] = ("bitmap", words)
            self.img.ptr(at, blk)
            return
        raise NotExpressible(f"pointer to {kind}", path)  # pragma: no cover

    def queue(self, s: Slot, items, at: int, path: str) -> None:
        lay = s.sub
        tail = s.kind == "qtailq"
        if not _is_list(items):
            raise NotExpressible("a queue that is not a list", path)
        blocks = []
        for i, e in enumerate(items):
            blk = self.img.alloc(lay.size)
            self.struct(lay, e, blk, f"{path}[{i}]")
            blocks.append(blk)
        # head: first pointer; QTAILQ also the tql_prev of the circular link
        self.img.ptr(at, blocks[0] if blocks else None)
        for i, blk in enumerate(blocks):
            entry = blk + lay.entry
            self.img.ptr(entry, blocks[i + 1] if i + 1 < len(blocks) else None)
            if tail:
                self.img.ptr(entry + 8, at if i == 0 else blocks[i - 1] + lay.entry)
            else:  # le_prev: the address of the previous le_next (or of lh_first)
                self.img.ptr(entry + 8, at if i == 0 else blocks[i - 1] + lay.entry)
        if tail:
            self.img.ptr(at + 8, blocks[-1] + lay.entry if blocks else at)

    def gtree(self, s: Slot, pairs, at: int, path: str) -> None:
        if not _is_list(pairs):
            raise NotExpressible("a gtree that is not a list", path)
        keyl = -1
        if s.elem is not None:
            if s.elem not in self.key_layouts:
                self.key_layouts.append(s.elem)
            keyl = self.key_layouts.index(s.elem)
        toks = []
        for i, pair in enumerate(pairs):
            key, value = pair
            if keyl < 0:
                if not isinstance(key, int) or isinstance(key, bool):
                    raise NotExpressible("a direct gtree key that is not an int", path)
                k = key & MASK64
            else:
                k = self.img.alloc(s.elem.size)
                self.struct(s.elem, key, k, f"{path}[{i}][0]")
            val = self.img.alloc(s.sub.size)
            self.struct(s.sub, value, val, f"{path}[{i}][1]")
            toks.append(f"{k} {val}")
        self.img.objects.append(f"gtree {at} {keyl} {len(pairs)} " + " ".join(toks))


def _size_of(f: Field, container: dict) -> int:
    """vmstate_size() over a source / destination struct (the model's reading)."""
    size = f.size
    if f.flags & F.VBUFFER:
        v = container.get(f.size_member, 0) if isinstance(container, dict) else 0
        if not isinstance(v, int):
            return 0
        size = _s32(int(v))
        if f.flags & F.MULTIPLY:
            size = _s32(size * f.size)
    return size


def _scalar_stride(f: Field, info) -> int:
    if f.flags & F.ARRAY_OF_POINTER:
        return info.width
    return f.size if f.size else info.width


def _bitmap_bytes(v, words: int, path) -> bytes:
    if is_indeterminate(v):
        return bytes([PERTURB]) * (8 * words)
    if v is None:
        v = 0
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise NotExpressible("a bitmap that is not a non-negative int", path)
    return (v & ((1 << (64 * words)) - 1)).to_bytes(8 * words, "little") if words else b""


