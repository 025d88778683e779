"""Memory -> state: after a load, :class:`Walker` rebuilds the model's state from the
driver's memory.

Part of :mod:`conformance.qemu.layout` (its docstring describes the layout)."""

from __future__ import annotations

from typing import Any

from conformance.model.description import Field
from conformance.model.flags import ANY_VARRAY, F
from conformance.model.state import INDETERMINATE, Uninit, is_indeterminate
from conformance.qemu.layout.common import (
    GUARD,
    GUARD_LEN,
    PERTURB,
    PTR_PERTURB,
    READ_LIMIT,
    Unread,
    _info,
    _s32,
)
from conformance.qemu.layout.image import _scalar_stride
from conformance.qemu.layout.planner import Slot, StructLayout
from conformance.qemu.layout.request import Request

# ---------------------------------------------------------------------------------------
# Memory -> state


class Walker:
    """Rebuilds the state from the driver's memory after a load."""

    def __init__(self, req: Request, base: int, arena: bytes, read_remote, read_gtree) -> None:
        self.req = req
        self.base = base
        self.arena = arena
        self.remote = read_remote
        self.gtree_remote = read_gtree
        self.end = base + len(arena)

    def guards_intact(self) -> list[int]:
        bad = []
        for g in self.req.writer.img.guards:
            if self.arena[g:g + GUARD_LEN] != bytes([GUARD]) * GUARD_LEN:
                bad.append(g)
        return bad

    def in_arena(self, addr: int) -> bool:
        return self.base <= addr < self.end

    def read(self, addr: int, n: int) -> tuple[bytes | None, bool]:
        """(bytes, core-allocated?); None when the memory is not readable (or larger
        than READ_LIMIT: the walker does not follow a block that big)."""
        if n > READ_LIMIT:
            return None, True
        if n <= 0:
            return b"", not self.in_arena(addr)
        if self.in_arena(addr) and addr + n <= self.end:
            o = addr - self.base
            return self.arena[o:o + n], False
        return self.remote(addr, n), True

    def state(self) -> dict:
        return self.struct(self.req.root, self.base + self.req.root_off, False)

    # -- values ----------------------------------------------------------------------
    def struct(self, lay: StructLayout, addr: int, core: bool) -> Any:
        raw, c2 = self.read(addr, lay.size)
        if raw is None:
            return INDETERMINATE
        core = core or c2
        out = {}
        # scalars first: pointer members need the counters as they are after the load
        for first in (True, False):
            for member, s in lay.slots.items():
                if lay.role == "tmp" and member == "parent":
                    continue
                if (s.kind in ("scalar", "loose")) != first:
                    continue
                out[member] = self.member(s, raw, s.offset, addr + s.offset, core, out, lay)
        return {m: out[m] for m in lay.slots if m in out}

    def scalar(self, raw: bytes, at: int, width: int, signed: bool, core: bool, kind: str):
        b = raw[at:at + width]
        if core and b == bytes([PERTURB]) * width:
            return INDETERMINATE
        v = int.from_bytes(b, "little", signed=signed)
        if kind == "bool":
            return v != 0
        return v

    def member(self, s: Slot, raw: bytes, at: int, addr: int, core: bool, sofar, lay):
        k = s.kind
        if k == "loose":
            b = raw[at:at + 8]
            if core and b == bytes([PERTURB]) * 8:
                return INDETERMINATE
            v = int.from_bytes(b, "little", signed=True)
            return (v != 0) if s.loose_bool else v
        f = s.field
        info = _info(f) if f is not None else None
        if k == "scalar":
            return self.scalar(raw, at, s.width, s.signed, core, info.kind)
        if k == "array":
            n = self._length(s, raw, at, addr, core)
            if n is INDETERMINATE:
                return INDETERMINATE
            if s.elem == "struct":
                return [self.struct(s.sub, addr + i * s.stride, core) for i in range(n)]
            return [self.scalar(raw, at + i * s.stride, s.width, s.signed, core, info.kind)
                    for i in range(n)]
        if k == "struct":
            return self.struct(s.sub, addr, core)
        if k == "buffer":
            n = self._length(s, raw, at, addr, core)
            if n is INDETERMINATE:
                return Uninit(s.cap)
            return bytes(raw[at:at + n])
        if k == "bitmap":
            return int.from_bytes(raw[at:at + 8 * s.cap], "little")
        if k == "ptrslots":
            n = self._length(s, raw, at, addr, core)
            if n is INDETERMINATE:
                return INDETERMINATE
            vals = [self.slot_pointee(s, raw, at + 8 * i, core) for i in range(n)]
            return vals if f.is_array else vals[0]
        if k == "ptr":
            return self.pointer(s, raw, at, core, sofar, lay)
        if k in ("qtailq", "qlist"):
            return self.queue(s, raw, at)
        if k == "gtree":
            return self.gtree(s, raw, at)
        if k == "gbytearray":
            return self.gbytearray(raw, at)
        raise AssertionError(k)  # pragma: no cover

    def _length(self, s: Slot, raw, at: int, addr: int, core: bool):
        """Elements of an embedded array / bytes of an embedded buffer: the length the
        state gave it (a struct the image holds), else what the model's fresh struct
        holds (zeroed: ARRAY num / BUFFER size / VARRAY none; g_malloc'd: indeterminate)."""
        if self.in_arena(addr):
            n = self.req.writer.img.lengths.get((addr - self.base, id(s)))
            if n is not None:
                return n
        f = s.field
        if f.flags & F.ARRAY or (f.flags & F.ARRAY_OF_POINTER and not f.is_array):
            return f.num if f.flags & F.ARRAY else 1  # the elements say if indeterminate
        region = bytes(raw[at:at + s.size])
        if core and region and region == bytes([PERTURB]) * len(region):
            return INDETERMINATE
        if s.kind == "buffer":
            return f.size if not f.flags & F.VBUFFER else s.cap
        return 0 if not any(region) else s.cap

    def _ptr(self, raw, at, core):
        p = int.from_bytes(raw[at:at + 8], "little")
        if p == PTR_PERTURB:
            return INDETERMINATE
        return p

    def slot_pointee(self, s: Slot, raw, at, core):
        p = self._ptr(raw, at, core)
        if p is INDETERMINATE or p == 0:
            return None if p == 0 else INDETERMINATE
        return self.element(s.elem, s.field, p)

    def element(self, elem, f: Field, p: int):
        kind = elem[0]
        if kind == "struct":
            return self.struct(elem[1], p, False)
        info = elem[1]
        raw, core = self.read(p, info.width)
        if raw is None:
            return INDETERMINATE
        return self.scalar(raw, 0, info.width, info.signed, core, info.kind)

    def _count(self, f: Field, sofar, lay: StructLayout) -> int:
        """vmstate_n_elems() over the struct as it is after the load."""
        if f.flags & F.ARRAY:
            n = f.num
        elif f.flags & ANY_VARRAY:
            v = sofar.get(f.num_member) if f.num_member in sofar else None
            if v is None:
                v = 0
            if is_indeterminate(v):
                return 0
            v = int(v)
            if f.flags & F.VARRAY_INT32:
                n = _s32(v)
            elif f.flags & F.VARRAY_UINT32:
                n = _s32(v & 0xFFFFFFFF)
            elif f.flags & F.VARRAY_UINT16:
                n = v & 0xFFFF
            else:
                n = v & 0xFF
        else:
            n = 1
        if self.req.variant.n_elems_multiplied(f):
            n = _s32(n * f.num)
        return n

    def _size(self, f: Field, sofar) -> int:
        size = f.size
        if f.flags & F.VBUFFER:
            v = sofar.get(f.size_member, 0) or 0
            if is_indeterminate(v):
                return 0
            size = _s32(int(v))
            if f.flags & F.MULTIPLY:
                size = _s32(size * f.size)
        return size

    def pointer(self, s: Slot, raw, at, core, sofar, lay):
        f = s.field
        p = self._ptr(raw, at, core)
        if p is INDETERMINATE:
            return INDETERMINATE
        if p == 0:
            return None
        block = self.req.writer.img.blocks.get(p - self.base) if self.in_arena(p) else None
        if f.flags & F.ARRAY_OF_POINTER:
            n = block[2] if block else max(self._count_late(f, sofar, lay), 0)
            if 8 * n > READ_LIMIT:
                return Unread(8 * n)
            raw2, c2 = self.read(p, 8 * n)
            if raw2 is None:
                return INDETERMINATE
            return [self.slot_pointee(s, raw2, 8 * i, c2) for i in range(n)]
        kind = s.elem[0]
        if kind in ("struct", "scalar"):
            if block:
                n = block[2]
            else:
                n = max(self._count_late(f, sofar, lay), 0) if f.is_array else 1
            if kind == "struct":
                lay2 = s.elem[1]
                if lay2.size * n > READ_LIMIT:
                    return Unread(lay2.size * n)
                raw2, c2 = self.read(p, lay2.size * n)
                if raw2 is None:
                    return INDETERMINATE
                items = [self.struct(lay2, p + i * lay2.size, c2) for i in range(n)]
            else:
                info = s.elem[1]
                stride = _scalar_stride(f, info)
                if stride * n > READ_LIMIT:
                    return Unread(stride * n)
                raw2, c2 = self.read(p, stride * n)
                if raw2 is None:
                    return INDETERMINATE
                items = [self.scalar(raw2, i * stride, info.width, info.signed, c2, info.kind)
                         for i in range(n)]
            return items if f.is_array else items[0]
        if kind == "bytes":
            if block:
                n = block[1]
            else:
                n = max(self._size_late(f, sofar, lay), 0) * max(self._count_late(f, sofar, lay), 0)
            if n > READ_LIMIT:
                return Unread(n)
            raw2, c2 = self.read(p, n)
            if raw2 is None:
                return INDETERMINATE
            b = bytes(raw2)
            if c2 and n and b == bytes([PERTURB]) * n:
                return Uninit(n)
            return b
        if kind == "bitmap":
            if block:
                words = block[1]
            else:
                words = (max(self._size_late(f, sofar, lay), 0) + 63) // 64
            if 8 * words > READ_LIMIT:
                return Unread(8 * words)
            raw2, _ = self.read(p, 8 * words)
            if raw2 is None:
                return INDETERMINATE
            return int.from_bytes(raw2, "little")
        raise AssertionError(kind)  # pragma: no cover

    def _count_late(self, f, sofar, lay):
        return self._count(f, sofar, lay)

    def _size_late(self, f, sofar, lay):
        return self._size(f, sofar)

    def queue(self, s: Slot, raw, at):
        lay = s.sub
        out = []
        p = int.from_bytes(raw[at:at + 8], "little")
        seen = set()
        while p and p not in seen and len(out) < 1 << 16:
            seen.add(p)
            out.append(self.struct(lay, p, False))
            nxt, _ = self.read(p + lay.entry, 8)
            if nxt is None:
                out.append(INDETERMINATE)
                break
            p = int.from_bytes(nxt, "little")
        return out

    def gbytearray(self, raw, at):
        """A GByteArray * ({guint8 *data; guint len;}): the bytes it holds."""
        p = int.from_bytes(raw[at:at + 8], "little")
        if not p or p == PTR_PERTURB:
            return None if not p else INDETERMINATE
        head, _ = self.read(p, 12)
        if head is None:
            return INDETERMINATE
        data = int.from_bytes(head[:8], "little")
        n = int.from_bytes(head[8:12], "little")
        if n == 0:
            return b""
        body, _ = self.read(data, n)
        return INDETERMINATE if body is None else bytes(body)

    def gtree(self, s: Slot, raw, at):
        t = int.from_bytes(raw[at:at + 8], "little")
        if not t:
            return None  # a NULL GTree * (get_gtree cannot insert into it)
        nodes = self.gtree_remote(t)
        if nodes is None:
            return INDETERMINATE  # not a tree the driver made: malloc'd memory
        pairs = []
        for k, v in nodes:
            key = k if s.elem is None else self.struct(s.elem, k, False)
            pairs.append([key, self.struct(s.sub, v, False)])
        return pairs
