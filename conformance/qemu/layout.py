"""Description + state -> a flat C memory image and a request for the driver; and back.

The model has no C layout (a struct is a dict keyed by member); this module invents
one, per operation:

* every struct member gets an 8-byte aligned slot; a scalar member's slot is 8 bytes
  holding the value sign- or zero-extended (so the core's counter reads of another
  width - vmstate_n_elems(), vmstate_size() - see the value as the model reads it);
* embedded arrays and buffers get the capacity the state gives them (the longest list
  / byte string over every instance of the struct, at least ``num`` / ``size``);
* a ``VMS_POINTER`` member points to its own block; blocks are followed by 16 guard
  bytes (0xfd) which must survive a load (a write past a block is ``undefined``);
* queue elements carry their QTAILQ/QLIST entry after the members (``start``);
  GTrees are real GLib trees built by the driver;
* declarative ``Pred`` / ``Hook`` become small interpreted tables; Python callables,
  and infos the build lacks, raise :class:`NotExpressible`.

After a load the driver serves reads of its memory; :class:`Walker` rebuilds the
model's state from it.  Memory the core allocated with g_malloc (not zeroed) is filled
by glibc's M_PERTURB with 0xa5 bytes: a scalar, buffer or pointer whose bytes are all
0xa5 there reads back as indeterminate (a heuristic; see docs/qemu-engine.md).
"""

from __future__ import annotations

from typing import Any

from conformance.model.description import Description, Field, Hook, Pred
from conformance.model.flags import ANY_VARRAY, F
from conformance.model.infos import lookup
from conformance.model.state import INDETERMINATE, Uninit, is_indeterminate, member_fields

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


# ---------------------------------------------------------------------------------------
# Struct layouts


class Slot:
    """Where one member lives in a struct, and what it holds."""

    __slots__ = ("member", "offset", "size", "field", "kind", "width", "signed", "cap",
                 "sub", "stride", "loose_bool", "elem")

    def __init__(self, member, field, kind):
        self.member = member
        self.field = field
        self.kind = kind  # scalar | loose | ptr | array | struct | buffer | bitmap |
        #                   ptrslots | qtailq | qlist | gtree
        self.offset = 0
        self.size = 8
        self.width = 8
        self.signed = True
        self.cap = 0
        self.sub: StructLayout | None = None
        self.stride = 0
        self.loose_bool = False
        self.elem = None  # element kind for arrays / pointees: "scalar" | "struct" | ...


class StructLayout:
    def __init__(self, desc: Description, role: str) -> None:
        self.desc = desc
        self.role = role  # struct | qelem | tmp
        self.slots: dict[str, Slot] = {}
        self.size = 8
        self.entry = 0  # qelem: offset of the QTAILQ/QLIST entry (field->start)


def _info(field: Field):
    return lookup(field.info) if field.info else None


class Planner:
    """Computes struct layouts for a description and the states it will meet."""

    def __init__(self, variant, have_infos: set[str]) -> None:
        self.v = variant
        self.have = have_infos
        self.caps: dict[tuple[int, str], int] = {}
        self.loose: dict[tuple[int, str], bool] = {}  # (desc, member) -> is bool
        self.layouts: dict[tuple[int, str], StructLayout] = {}

    # -- pass 1: capacities from the states ------------------------------------------
    def scan(self, desc: Description, value, path: str) -> None:
        if not isinstance(value, dict):
            if is_indeterminate(value) or value is None:
                return
            raise NotExpressible("a struct value that is not a dict", path)
        fields = member_fields(desc)
        for member, v in value.items():
            f = fields.get(member)
            if f is None:
                self._note_loose(desc, member, v, path)
                continue
            self._scan_member(desc, f, v, f"{path}.{member}")

    def _note_loose(self, desc, member, v, path):
        if member == "parent":
            return
        if isinstance(v, bool):
            self.loose[(id(desc), member)] = self.loose.get((id(desc), member), True)
        elif isinstance(v, int) or v is None or is_indeterminate(v):
            self.loose[(id(desc), member)] = False
        else:
            raise NotExpressible(f"member {member!r} holds {type(v).__name__}, which no field "
                                 "describes", path)

    def _cap(self, desc, member, n):
        key = (id(desc), member)
        self.caps[key] = max(self.caps.get(key, 0), n)

    def _scan_member(self, desc, f: Field, v, path):
        flags = f.flags
        info = _info(f)
        if info is not None and info.kind in ("qtailq", "qlist"):
            for i, e in enumerate(v or []):
                self.scan(f.vmsd, e, f"{path}[{i}]")
            return
        if info is not None and info.kind == "gtree":
            for i, pair in enumerate(v or []):
                if f.key_vmsd is not None:
                    self.scan(f.key_vmsd, pair[0], f"{path}[{i}][0]")
                self.scan(f.vmsd, pair[1], f"{path}[{i}][1]")
            return
        embedded = not flags & F.POINTER
        if f.is_array or (flags & F.ARRAY_OF_POINTER):
            items = v if _is_list(v) else ([] if v is None or is_indeterminate(v) else [v])
            if embedded and _is_list(v):
                self._cap(desc, f.member, len(v))
            for i, e in enumerate(items):
                if f.is_struct and isinstance(e, dict):
                    self.scan(f.vmsd, e, f"{path}[{i}]")
            return
        if f.is_struct:
            if isinstance(v, dict):
                self.scan(f.vmsd, v, path)
            return
        if info is not None and info.kind in ("buffer", "unused") and embedded:
            if isinstance(v, (bytes, bytearray)):
                self._cap(desc, f.member, len(v))
            elif isinstance(v, Uninit):
                self._cap(desc, f.member, v.nbytes)
        if info is not None and info.kind == "bitmap" and embedded and isinstance(v, int):
            self._cap(desc, f.member, (v.bit_length() + 63) // 64)

    # -- pass 2: layouts ----------------------------------------------------------------
    def layout(self, desc: Description, role: str = "struct", path: str = "") -> StructLayout:
        key = (id(desc), role)
        lay = self.layouts.get(key)
        if lay is not None:
            return lay
        lay = StructLayout(desc, role)
        self.layouts[key] = lay
        off = 0
        if role == "tmp":
            s = Slot("parent", None, "loose")
            s.offset, s.size = 0, 8
            lay.slots["parent"] = s
            off = 8
        for member, f in member_fields(desc).items():
            if member in lay.slots:
                continue
            s = self._slot(desc, member, f, f"{path}/{f.name}")
            s.offset = off
            lay.slots[member] = s
            off += (s.size + 7) & ~7
        # members only predicates, hooks, counters or the state name
        for member in sorted(self._extra_members(desc)):
            if member not in lay.slots:
                s = Slot(member, None, "loose")
                s.loose_bool = self.loose.get((id(desc), member), False)
                s.offset = off
                lay.slots[member] = s
                off += 8
        if role == "qelem":
            lay.entry = off
            off += 16
        lay.size = max(off, 8)
        return lay

    def _extra_members(self, desc: Description) -> set[str]:
        out = {m for (d, m) in self.loose if d == id(desc)}

        def visit(d: Description):
            for f in d.fields:
                for name in (f.num_member, f.size_member):
                    if name:
                        out.add(name)
                _pred_members(f.field_exists, out)
            for hook in (d.pre_save, d.post_save, d.pre_load, d.post_load):
                if isinstance(hook, Hook):
                    out.update(m for m, _ in hook.set)
            for sub in d.subsections:
                _pred_members(sub.needed, out)
                visit(sub)

        visit(desc)
        return out

    def _slot(self, desc, member, f: Field, path) -> Slot:
        flags = f.flags
        info = _info(f)
        if info is not None and (info.kind in LACKING_KINDS or info.symbol not in self.have):
            raise NotExpressible(f"info {info.name!r} ({info.symbol}) is not in this QEMU "
                                 "build's migration objects", path)
        cap = self.caps.get((id(desc), member), 0)
        if info is not None and info.kind == "gbytearray":
            if f.is_array or flags & (F.POINTER | F.ARRAY_OF_POINTER):
                raise NotExpressible("an array of / pointer to GByteArray", path)
            return Slot(member, f, "gbytearray")  # a GByteArray * the driver creates
        if info is not None and info.kind in ("qtailq", "qlist", "gtree"):
            s = Slot(member, f, info.kind)
            s.size = 16 if info.kind == "qtailq" else 8
            if info.kind == "gtree":
                s.sub = self.layout(f.vmsd, "struct", path)
                if f.key_vmsd is not None:
                    s.elem = self.layout(f.key_vmsd, "struct", path)
                    _key_members(s.elem, path)
            else:
                s.sub = self.layout(f.vmsd, "qelem", path)
            return s
        if info is not None and info.kind == "tmp":
            raise NotExpressible("a tmp field with a member of its own", path)
        if flags & F.ARRAY_OF_POINTER:
            s = Slot(member, f, "ptrslots")
            s.elem = self._elem(f, path)
            if flags & F.POINTER:
                s.kind = "ptr"
                s.size = 8
            else:
                n = max(f.num if flags & F.ARRAY else 1, cap)
                s.cap = n
                s.size = 8 * max(n, 1)
            return s
        if flags & F.POINTER:
            s = Slot(member, f, "ptr")
            s.elem = self._elem(f, path)
            return s
        if f.is_struct:
            s = Slot(member, f, "struct")
            s.sub = self.layout(f.vmsd, "struct", path)
            s.stride = s.sub.size
            if f.is_array:
                s.kind = "array"
                s.elem = "struct"
                s.cap = max(f.num if flags & F.ARRAY else 0, cap)
                s.size = s.stride * max(s.cap, 1)
            else:
                s.size = s.stride
            return s
        if info is None:
            raise NotExpressible("a field with neither an info nor a struct", path)
        if info.kind in ("buffer", "unused"):
            if f.is_array:
                raise NotExpressible("an array of buffers", path)
            s = Slot(member, f, "buffer")
            s.cap = max(cap, f.size if not flags & F.VBUFFER else 0)
            s.size = max(s.cap, 1)
            return s
        if info.kind == "bitmap":
            s = Slot(member, f, "bitmap")
            s.cap = max(cap, 1)
            s.size = 8 * s.cap
            return s
        if info.kind in SCALAR_KINDS:
            width = info.width
            if f.is_array:
                s = Slot(member, f, "array")
                s.elem = "scalar"
                s.width, s.signed = width, info.signed
                s.stride = f.size if f.size else width
                s.cap = max(f.num if flags & F.ARRAY else 0, cap)
                s.size = s.stride * max(s.cap, 1)
                return s
            s = Slot(member, f, "scalar")
            s.width, s.signed = width, info.signed
            s.size = 8
            return s
        raise NotExpressible(f"info {info.name!r} is not mapped by the driver", path)

    def _elem(self, f: Field, path):
        """The pointee element of a POINTER / ARRAY_OF_POINTER field."""
        info = _info(f)
        if f.is_struct:
            return ("struct", self.layout(f.vmsd, "struct", path))
        if info is None:
            raise NotExpressible("a pointer field with neither an info nor a struct", path)
        if info.kind in SCALAR_KINDS:
            return ("scalar", info)
        if info.kind in ("buffer", "unused") and not f.flags & F.ARRAY_OF_POINTER:
            return ("bytes", info)
        if info.kind == "bitmap" and not f.flags & F.ARRAY_OF_POINTER:
            return ("bitmap", info)
        raise NotExpressible(f"a pointer to {info.name!r} elements", path)


def _pred_members(pred, out: set) -> None:
    if pred is None:
        return
    if not isinstance(pred, Pred):
        return
    if pred.member:
        out.add(pred.member)
    for a in pred.args:
        _pred_members(a, out)


def _key_members(lay: StructLayout, path) -> None:
    for s in lay.slots.values():
        if s.kind not in ("scalar", "loose"):
            raise NotExpressible("a GTree key struct with non-scalar members", path)
    if len(lay.slots) > 16:
        raise NotExpressible("a GTree key struct with more than 16 members", path)


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


# ---------------------------------------------------------------------------------------
# Descriptions -> driver records


class Tables:
    def __init__(self, variant, planner: Planner) -> None:
        self.v = variant
        self.p = planner
        self.preds: list[str] = []
        self.hooks: list[str] = []
        self.vmsds: list[str | None] = []
        self.memo: dict[tuple[int, int], int] = {}

    def pred(self, pred, lay: StructLayout, path: str) -> int:
        if pred is None:
            return -1
        if not isinstance(pred, Pred):
            raise NotExpressible("a Python-code predicate", path)
        k = pred.kind
        args = [self.pred(a, lay, path) for a in pred.args]
        off = width = sign = 0
        value = 0
        if k in ("member", "equals"):
            s = lay.slots.get(pred.member)
            if s is None:
                raise NotExpressible(f"predicate member {pred.member!r} unknown", path)
            if s.kind == "scalar":
                off, width, sign = s.offset, s.width, int(s.signed)
            elif s.kind == "loose":
                off, width, sign = s.offset, 8, 1
            else:
                raise NotExpressible(f"predicate on non-scalar member {pred.member!r}", path)
        if k == "equals":
            if isinstance(pred.value, bool) or isinstance(pred.value, int):
                value = int(pred.value)
            else:
                raise NotExpressible("an equals predicate against a non-integer", path)
        elif k in ("const",):
            value = 1 if pred.value else 0
        elif k == "version_at_least":
            if not isinstance(pred.value, int):
                raise NotExpressible("version_at_least with a non-integer", path)
            value = int(pred.value)
        codes = {"const": 0, "member": 1, "equals": 2, "version_at_least": 3, "not": 4,
                 "all": 5, "any": 6}
        if k not in codes:
            raise NotExpressible(f"predicate kind {k!r}", path)
        if k == "not" and len(args) != 1:
            raise NotExpressible("a 'not' predicate without one argument", path)
        self.preds.append(" ".join(str(x) for x in (codes[k], off, width, sign, value, len(args),
                                                     *args)))
        return len(self.preds) - 1

    def hook(self, hook, lay: StructLayout, path: str) -> int:
        if hook is None:
            return -1
        if not isinstance(hook, Hook):
            raise NotExpressible("a Python-code hook", path)
        sets = []
        for member, value in hook.set:
            s = lay.slots.get(member)
            if s is None or s.kind not in ("scalar", "loose"):
                raise NotExpressible(f"a hook assigning non-scalar member {member!r}", path)
            if value is None:
                value = 0
            if not isinstance(value, int):
                raise NotExpressible("a hook assigning a non-integer", path)
            width = s.width if s.kind == "scalar" else 8
            sets.append(f"{s.offset} {width} {_s64(int(value))}")
        if not isinstance(hook.ret, int):
            raise NotExpressible("a hook returning a non-integer", path)
        self.hooks.append(f"{int(hook.ret)} {len(sets)} " + " ".join(sets))
        return len(self.hooks) - 1

    def vmsd(self, desc: Description, lay: StructLayout, path: str) -> int:
        key = (id(desc), id(lay))
        if key in self.memo:
            return self.memo[key]
        idx = len(self.vmsds)
        if idx >= 256:
            raise NotExpressible("more than 256 VMStateDescriptions", path)
        self.vmsds.append(None)
        self.memo[key] = idx
        recs = []
        for f in desc.fields:
            recs.append(self.field(f, lay, f"{path}/{f.name}"))
        subs = [self.vmsd(sub, lay, f"{path}/@{sub.name}") for sub in desc.subsections]
        if desc.terminator is None:
            end = self.v.vms_end or 0
        else:
            end = desc.terminator
        hooks = [self.hook(h, lay, path) for h in (desc.pre_save, desc.post_save,
                                                    desc.pre_load, desc.post_load)]
        needed = self.pred(desc.needed, lay, path)
        self.vmsds[idx] = " ".join([
            _hex(desc.name), str(desc.version_id), str(desc.minimum_version_id),
            *map(str, hooks), str(needed), str(len(recs)), *recs, str(end), str(len(subs)),
            *map(str, subs)])
        return idx

    def field(self, f: Field, lay: StructLayout, path: str) -> str:
        s = lay.slots.get(f.member) if f.member is not None else None
        if f.member is not None and s is None:  # pragma: no cover - member_fields has it
            raise NotExpressible(f"member {f.member!r} has no slot", path)
        offset = s.offset if s is not None else 0
        info = _info(f)
        size = f.size
        start = f.start
        sub = key = -1
        if f.is_struct and f.vmsd is not None:
            sublay = s.sub if s is not None and s.sub is not None else None
            if sublay is None and s is not None and s.elem and s.elem[0] == "struct":
                sublay = s.elem[1]
            if sublay is None:
                sublay = self.p.layout(f.vmsd, "struct", path)
            if size and (not f.flags & F.ARRAY_OF_POINTER or self.v.is_auto(f)):
                # the invented struct's size; for an auto field it is what the core
                # g_malloc0()s per element (vmstate_load_next: g_malloc0(field->size))
                size = sublay.size
            sub = self.vmsd(f.vmsd, sublay, path)
        elif info is not None and info.kind in ("qtailq", "qlist"):
            size = s.sub.size
            start = s.sub.entry
            sub = self.vmsd(f.vmsd, s.sub, path)
        elif info is not None and info.kind == "gtree":
            size = s.sub.size
            sub = self.vmsd(f.vmsd, s.sub, path)
            if f.key_vmsd is not None:
                start = s.elem.size
                key = self.vmsd(f.key_vmsd, s.elem, path)
            else:
                start = 0
        elif info is not None and info.kind == "tmp":
            tlay = self.p.layout(f.vmsd, "tmp", path)
            size = tlay.size
            sub = self.vmsd(f.vmsd, tlay, path)
        elif info is not None and info.kind in SCALAR_KINDS and size:
            if not f.flags & F.ARRAY_OF_POINTER:
                size = _scalar_stride(f, info)
            elif self.v.is_auto(f):
                size = info.width  # the scalar element the core allocates
        num_off = self._counter_off(f.num_member, lay, path)
        size_off = self._counter_off(f.size_member, lay, path)
        if info is not None and info.symbol not in self.p.have:
            raise NotExpressible(f"info {info.name!r} ({info.symbol}) is not in this build", path)
        try:
            flags = self.v.numeric_flags(f.flags)
        except KeyError as exc:
            raise NotExpressible(str(exc), path) from None
        fe = self.pred(f.field_exists, lay, path)
        return " ".join(str(x) for x in (
            _hex(f.name), offset, size, start, f.num, num_off, size_off,
            info.symbol if info is not None else "-", flags, sub, key, f.version_id,
            f.struct_version_id, fe))

    def _counter_off(self, member, lay, path) -> int:
        if not member:
            return 0
        s = lay.slots.get(member)
        if s is None or s.kind not in ("scalar", "loose"):
            raise NotExpressible(f"counter member {member!r} is not a scalar", path)
        return s.offset


def _s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def _hex(text: str) -> str:
    return text.encode().hex() or "-"


# ---------------------------------------------------------------------------------------
# Requests


class Request:
    """Everything the driver needs for one operation, plus what the walker needs."""

    def __init__(self, text: bytes, writer: ImageWriter, root: StructLayout, root_off: int,
                 arena_size: int) -> None:
        self.variant = writer.p.v
        self.text = text
        self.writer = writer
        self.root = root
        self.root_off = root_off
        self.arena_size = arena_size


def build_request(op: str, desc: Description, state: dict, variant, have_infos: set[str], *,
                  version_id: int = 0, vmdesc: bool = False, stream: bytes = b"") -> Request:
    planner = Planner(variant, have_infos)
    planner.scan(desc, state, "$")
    root = planner.layout(desc, "struct", desc.name)
    tables = Tables(variant, planner)
    root_vmsd = tables.vmsd(desc, root, desc.name)
    w = ImageWriter(planner)
    root_off = w.img.alloc(root.size)
    w.struct(root, state, root_off, "$")
    img = w.img
    key_recs = []
    for lay in w.key_layouts:
        mem = []
        for s in lay.slots.values():
            width = s.width if s.kind == "scalar" else 8
            mem.append(f"{s.offset} {width} {int(s.signed)}")
        key_recs.append(f"{len(lay.slots)} " + " ".join(mem))
    parts = [
        f"{op} {version_id} {int(vmdesc)} {len(img.buf)} {root_off} {root_vmsd}",
        img.buf.hex() or "-",
        f"{len(img.relocs)} " + " ".join(map(str, img.relocs)),
        f"{len(key_recs)} " + " ".join(key_recs),
        f"{len(img.objects)} " + " ".join(img.objects),
        f"{len(tables.preds)} " + " ".join(tables.preds),
        f"{len(tables.hooks)} " + " ".join(tables.hooks),
        f"{len(tables.vmsds)} " + " ".join(tables.vmsds),
        stream.hex() or "-",
    ]
    return Request("\n".join(parts).encode() + b"\n", w, root, root_off, len(img.buf))


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


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v
