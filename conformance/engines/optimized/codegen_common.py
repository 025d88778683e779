"""What the save and load halves of the optimized engine's code generator share
(codegen.py): the module helpers and ``Emitter``, the plumbing of one module of
generated code (names, constants, lines, the function header, compile)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from conformance.engines._common import _s32
from conformance.engines.optimized.runtime import (
    _BOOL,
    _arr,
    _bail,
    _bufload,
    _bufsave,
    _count,
    _extras,
    _keep,
    _pk,
    _splice,
    _subfind,
    _subhit,
    _tail,
    _vsize,
)
from conformance.model.description import Description, Pred
from conformance.model.flags import F
from conformance.model.state import INDETERMINATE

if TYPE_CHECKING:
    from conformance.engines.optimized.fieldplan import FieldPlan


#: codec shapes (engines/codecs.py Codec.inline) packed as one struct value each
_SCALAR_SHAPES = ("int", "bool", "equal", "le")
_VARRAY_KIND = {F.VARRAY_INT32: 32, F.VARRAY_UINT32: 33, F.VARRAY_UINT16: 16,
                F.VARRAY_UINT8: 8}


def _member_read(obj: str, member, members) -> str:
    """Reading a counter / size member: one that state.fill_missing() would add must be
    present (its zero may not be 0), one no field describes reads as 0 when absent."""
    if member in members:
        return f"{obj}[{member!r}]"
    return f"{obj}.get({member!r}, 0)"


def _pred_members(pred) -> set:
    out = set()
    if isinstance(pred, Pred):
        if pred.member is not None:
            out.add(pred.member)
        for arg in pred.args:
            out |= _pred_members(arg)
    return out


def _count_expr(fp: FieldPlan, obj: str, members=()):
    """(static count or None, runtime expression) for vmstate_n_elems()."""
    flags = fp.flags
    field = fp.field
    if flags & F.ARRAY:
        n = field.num
        if flags & F.MULTIPLY_ELEMENTS:
            n = _s32(n * field.num)
        return n, None
    kind = fp.field.varray_flag
    if kind:
        mult = field.num if flags & F.MULTIPLY_ELEMENTS else 0
        return None, (f"_count({_member_read(obj, field.num_member, members)}, "
                      f"{_VARRAY_KIND[kind]}, {mult})")
    n = 1
    if flags & F.MULTIPLY_ELEMENTS:
        n = _s32(n * field.num)
    return n, None


def _fmt_escape(text: str) -> str:
    """Path pieces are spliced into f-string templates."""
    return text.replace("{", "{{").replace("}", "}}")


def _is_pure_pred(fn) -> bool:
    """Declarative predicates are pure: safe to evaluate speculatively."""
    return fn is None or isinstance(fn, Pred)


def _has_hooks(vmsd: Description) -> bool:
    return any(h is not None for h in (vmsd.pre_save, vmsd.post_save, vmsd.pre_load,
                                       vmsd.post_load))


class Emitter:
    """Emits one module of straight-line code for one (description, variant)."""

    def __init__(self, plan) -> None:
        self.plan = plan
        self.v = plan.variant
        self.lines: list[str] = []
        self.ind = 1
        self.ns: dict[str, Any] = {}
        self.consts: dict[Any, str] = {}
        self.k = 0
        self.run: list = []  # pending fused scalars
        self.track = True  # load: are source objects tracked for aliasing
        self.members: set = set()  # members state.fill_missing() completes in this dict

    def guard_pred(self, pred, obj: str) -> None:
        """A predicate must not see a member as absent that fill_missing would add."""
        for member in sorted(_pred_members(pred) & self.members):
            self.emit(f"if {member!r} not in {obj}: _bail()")

    # -- plumbing -------------------------------------------------------------------------
    def var(self, prefix: str) -> str:
        self.k += 1
        return f"{prefix}{self.k}"

    def const(self, value, prefix: str = "K") -> str:
        key = (prefix, value if isinstance(value, (str, bytes, int, frozenset)) else id(value))
        name = self.consts.get(key)
        if name is None:
            name = self.consts[key] = self.var(prefix)
            self.ns[name] = value
        return name

    def struct_const(self, fmt: str) -> str:
        return self.const(struct.Struct(fmt), "S_")

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.ind + line)

    def bail(self, why: str) -> None:
        self.emit(f"_bail()  # {why}")

    def emit_def(self, signature: str, prologue: list[str]) -> None:
        self.ind = 0
        self.emit(f"def {signature}:")
        self.ind = 1
        for line in prologue:
            self.emit(line)

    def compile(self, fname: str):
        source = "\n".join(self.lines) + "\n"
        ns = dict(self.ns)
        ns.update(_bail=_bail, _BOOL=_BOOL, _pk=_pk, _keep=_keep, _extras=_extras,
                  _arr=_arr, _splice=_splice, _tail=_tail, _bufsave=_bufsave, _bufload=_bufload,
                  _subhit=_subhit, _subfind=_subfind, _count=_count, _vsize=_vsize, INDETERMINATE=INDETERMINATE)
        code = compile(source, f"<vmstate plan {self.plan.desc.name} {self.v.name}>", "exec")
        exec(code, ns)
        return ns[fname], source, self.ns
