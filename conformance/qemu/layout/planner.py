"""Struct layouts: where every member of a struct lives (the :class:`Planner`).

Part of :mod:`conformance.qemu.layout` (its docstring describes the layout)."""

from __future__ import annotations

from conformance.model.description import Description, Field, Hook, Pred
from conformance.model.flags import F
from conformance.model.state import Uninit, is_indeterminate, member_fields
from conformance.qemu.layout.common import (
    LACKING_KINDS,
    SCALAR_KINDS,
    NotExpressible,
    _info,
    _is_list,
)

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


