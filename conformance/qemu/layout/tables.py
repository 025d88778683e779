"""Descriptions -> driver records: the VMStateDescription, predicate and hook tables
(:class:`Tables`).

Part of :mod:`conformance.qemu.layout` (its docstring describes the layout)."""

from __future__ import annotations

from conformance.model.description import Description, Field, Hook, Pred
from conformance.model.flags import F
from conformance.qemu.layout.common import MASK64, SCALAR_KINDS, NotExpressible, _info
from conformance.qemu.layout.image import _scalar_stride
from conformance.qemu.layout.planner import Planner, StructLayout

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


