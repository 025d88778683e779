"""Code generation for the optimized engine: one straight-line Python function per
(description, variant) for save and per version for load, ``exec``'d once.

Runs of fixed-width scalars (across inlined nested structs and fixed scalar arrays)
become ONE precompiled ``struct.Struct`` pack / ``unpack_from``; scalar arrays and
buffers are bulk copies; struct arrays and pointer arrays are tight loops.  What may be
inlined, and with which struct format, comes from the codec table (engines/codecs.py,
via FieldPlan.inline / .code); anything else makes the generated code bail, and the
interpreter (engines/reference.py) runs the operation with the same codecs.
"""

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
from conformance.model.outcome import Allocation, Precondition
from conformance.model.state import INDETERMINATE, member_fields, zero_struct

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


class Gen:
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

    # =====================================================================================
    # save

    def save_flush(self) -> None:
        if not self.run:
            return
        fmt = ">" + "".join(code for code, _ in self.run)
        args = ", ".join(expr for _, expr in self.run if expr is not None)
        self.emit(f"out += {self.struct_const(fmt)}.pack({args})")
        self.run = []

    def save_vmsd(self, vmsd: Description, obj: str, version: int, path: str,
                  members=None) -> None:
        """The body of vmstate_save_state_v for ``vmsd`` on dict variable ``obj``."""
        saved = self.members
        self.members = set(member_fields(vmsd)) if members is None else members
        try:
            self._save_vmsd(vmsd, obj, version, path)
        finally:
            self.members = saved

    def _save_vmsd(self, vmsd: Description, obj: str, version: int, path: str) -> None:
        if vmsd.pre_save is not None or vmsd.post_save is not None:
            self.save_flush()
            self.bail(f"{vmsd.name}: save hooks run on the complete path")
            return
        v = self.v
        if v.vms_end is not None and vmsd.terminator is not None and vmsd.terminator != v.vms_end:
            self.save_flush()
            self.bail("VMS_END canary mismatch asserts")
            return
        for fp in self.plan.fields_of(vmsd):
            fe = fp.field.field_exists
            if fe is not None:
                if not isinstance(fe, Pred):
                    self.save_flush()
                    self.bail(f"{fp.name}: field_exists is not a declarative predicate")
                    return
                self.save_flush()
                self.guard_pred(fe, obj)
                self.emit(f"if {self.const(fe, 'FE')}({obj}, {version}):")
                self.ind += 1
                self.save_field(fp, obj, path)
                self.save_flush()
                self.emit("pass")
                self.ind -= 1
                if fp.flags & F.MUST_EXIST:
                    self.emit("else:")
                    self.ind += 1
                    self.bail("VMS_MUST_EXIST field absent: assertion")
                    self.ind -= 1
            elif fp.field.version_id <= version:
                self.save_field(fp, obj, path)
            elif fp.flags & F.MUST_EXIST:
                self.save_flush()
                self.bail("VMS_MUST_EXIST field absent: assertion")
                return
        for sub in vmsd.subsections:
            self.save_flush()
            if sub.needed is not None and not isinstance(sub.needed, Pred):
                self.bail(f"{sub.name}: needed() is not a declarative predicate")
                return
            name = sub.name.encode()
            header = (bytes([0x05, len(name) & 0xFF]) + name[: len(name) & 0xFF]
                      + (sub.version_id & 0xFFFFFFFF).to_bytes(4, "big"))
            if sub.needed is not None:
                self.guard_pred(sub.needed, obj)
                self.emit(f"if {self.const(sub.needed, 'NEED')}({obj}):")
                self.ind += 1
            self.emit(f"out += {self.const(header, 'HDR')}  # subsection {sub.name}")
            self.save_vmsd(sub, obj, sub.version_id, f"{path}/@{sub.name}", self.members)
            self.save_flush()
            if sub.needed is not None:
                self.ind -= 1

    def save_field(self, fp: FieldPlan, obj: str, path: str) -> None:
        flags = fp.flags
        if (fp.vmsd is None) if fp.is_struct else (fp.info is None):
            if fp.flags & F.ARRAY and fp.field.num == 0 and not fp.is_pointer:
                return  # VMSTATE_VALIDATE: nothing is written
            self.save_flush()
            self.bail(f"{fp.name}: no sub-description / info")
            return
        m = repr(fp.member)
        static_n, count_expr = _count_expr(fp, obj, self.members)
        if fp.is_pointer:
            # vmstate_save_state_v: an indeterminate pointer member is undefined even
            # when nothing is written
            self.save_flush()
            self.emit(f"if {obj}.get({m}) is None or {obj}.get({m}) is INDETERMINATE: _bail()")
        if static_n == 0:
            return
        if fp.aop:
            self.save_pointer_array(fp, obj, static_n, count_expr, path)
            return
        if fp.is_array:
            if fp.is_struct:
                self.save_struct_array(fp, obj, static_n, count_expr, path)
            elif fp.inline in _SCALAR_SHAPES:
                self.save_scalar_array(fp, obj, static_n, count_expr)
            else:
                self.save_flush()
                self.bail(f"{fp.name}: array of {fp.info.name} runs on the interpreter")
            return
        if static_n != 1:
            self.save_flush()
            self.bail(f"{fp.name}: MULTIPLY_ELEMENTS on a single field")
            return
        if fp.is_struct:
            sub = self.var("o")
            self.emit(f"{sub} = {obj}.get({m})")
            self.emit(f"if {sub}.__class__ is not dict: _bail()")
            self.save_vmsd(fp.vmsd, sub, fp.sub_version, f"{path}/{fp.name}")
            return
        kind = fp.inline
        if kind in _SCALAR_SHAPES:
            self.run.append((fp.code, self.save_scalar_expr(fp, f"{obj}[{m}]")))
        elif kind == "buffer":
            if flags & F.VBUFFER:
                self.save_flush()
                mult = fp.field.size if flags & F.MULTIPLY else 0
                size = self.var("n")
                self.emit(f"{size} = _vsize("
                          f"{_member_read(obj, fp.field.size_member, self.members)}, {mult})")
                self.emit(f"out += _bufsave({obj}.get({m}), {size})")
            else:
                size = fp.field.size
                b = self.var("b")
                self.emit(f"{b} = {obj}[{m}]")
                self.emit(f"if {b}.__class__ is not bytes or len({b}) != {size}: "
                          f"{b} = _bufsave({b}, {size})")
                self.run.append((f"{size}s", b))
        elif kind == "unused" and not flags & F.VBUFFER:
            self.run.append((f"{max(fp.field.size, 0)}x", None))
        else:
            self.save_flush()
            self.bail(f"{fp.name}: {fp.info.name if fp.info else 'no info'} runs on the "
                      "interpreter")

    def save_scalar_expr(self, fp: FieldPlan, expr: str) -> str:
        return f"_BOOL[{expr}]" if fp.inline == "bool" else expr

    def save_scalar_array(self, fp: FieldPlan, obj: str, static_n, count_expr) -> None:
        m = repr(fp.member)
        code = fp.code
        lst = self.var("L")
        conv = (lambda e: f"map(_BOOL.__getitem__, {e})") if fp.inline == "bool" else (lambda e: e)
        if static_n is not None:
            self.emit(f"{lst} = {obj}.get({m})")
            self.emit(f"if {lst}.__class__ is not list or len({lst}) != {static_n}: "
                      f"{lst} = _arr({lst}, {static_n})")
            if code in ("B", "b") and static_n > 64 and fp.inline != "bool":
                self.save_flush()
                if code == "B":
                    self.emit(f"out += bytes({lst})")
                else:
                    self.emit(f"out += {self.struct_const(f'>{static_n}b')}.pack(*{lst})")
                return
            self.run.append((f"{static_n}{code}", "*" + conv(lst)))
            return
        self.save_flush()
        cnt = self.var("n")
        self.emit(f"{cnt} = {count_expr}")
        self.emit(f"if {cnt}:")
        self.ind += 1
        self.emit(f"{lst} = _arr({obj}.get({m}), {cnt})")
        self.emit(f"out += _pk({code!r}, {cnt}).pack(*{conv(lst)})")
        self.ind -= 1

    def save_struct_array(self, fp: FieldPlan, obj: str, static_n, count_expr, path) -> None:
        m = repr(fp.member)
        self.save_flush()
        lst = self.var("L")
        cnt = static_n if static_n is not None else self.var("n")
        if static_n is None:
            self.emit(f"{cnt} = {count_expr}")
        self.emit(f"{lst} = _arr({obj}.get({m}), {cnt})")
        e = self.var("e")
        self.emit(f"for {e} in {lst}:")
        self.ind += 1
        self.emit(f"if {e}.__class__ is not dict: _bail()")
        self.save_vmsd(fp.vmsd, e, fp.sub_version, f"{path}/{fp.name}[]")
        self.save_flush()
        self.ind -= 1

    def save_pointer_array(self, fp: FieldPlan, obj: str, static_n, count_expr, path) -> None:
        m = repr(fp.member)
        self.save_flush()
        if not (fp.is_struct or fp.inline in _SCALAR_SHAPES):
            self.bail(f"{fp.name}: pointer array of {fp.info.name} runs on the interpreter")
            return
        size = fp.static_elem_size
        lst = self.var("L")
        cnt = static_n if static_n is not None else self.var("n")
        if static_n is None:
            self.emit(f"{cnt} = {count_expr}")
        self.emit(f"{lst} = _arr({obj}.get({m}), {cnt})")
        e = self.var("e")
        self.emit(f"for {e} in {lst}:")
        self.ind += 1
        self.emit(f"if {e} is None:")
        self.ind += 1
        if fp.auto or size:
            self.emit("out.append(0x30)  # NULL marker")
        else:
            self.bail("a NULL slot with element size 0 is followed")
        self.ind -= 1
        self.emit("else:")
        self.ind += 1
        if fp.auto:
            self.emit("out.append(0x31)  # valid marker")
        if fp.is_struct:
            self.emit(f"if {e}.__class__ is not dict: _bail()")
            self.save_vmsd(fp.vmsd, e, fp.sub_version, f"{path}/{fp.name}[]")
        else:
            self.run.append((fp.code, self.save_scalar_expr(fp, e)))
        self.save_flush()
        self.ind -= 2

    # =====================================================================================
    # load

    def load_flush(self) -> None:
        """One bounds check and one unpack_from for the pending scalar run."""
        if not self.run:
            return
        fmt = ">" + "".join(item[0] for item in self.run)
        s = struct.Struct(fmt)
        name = self.struct_const(fmt)
        self.emit(f"if pos + {s.size} > n: _bail()  # short input: -EIO")
        stores = [item for item in self.run if item[1] is not None and item[1][0] == "store"]
        offset = 0
        index = 0
        peeks = []
        actions = []
        for code, action in self.run:
            if action is not None and action[0] == "peek":
                peeks.append((offset, action[1]))
                continue
            if action is not None and action[0] == "post":
                actions.append((0, 0, action))
                continue
            width = struct.calcsize(">" + code)
            if action is not None:
                count = int(code[:-1]) if code[:-1].isdigit() and code[-1] not in "sx" else 1
                actions.append((index, count, action))
                index += count if code[-1] not in "x" else 0
            offset += width
        for off, parent in peeks:
            if off < s.size:
                self.emit(f"if buf[pos + {off}] == 5 and _subhit(buf, pos + {off}, n, "
                          f"{self.const(parent, 'P')}): _bail()")
        if stores:
            self.emit(f"t = {name}.unpack_from(buf, pos)")
        self.emit(f"pos += {s.size}")
        for index, count, action in actions:
            for line in action[1](index, count):
                self.emit(line)
        tail = [p for off, p in peeks if off >= s.size]
        self.run = []
        for parent in tail:
            self.end_peek(parent)

    def end_peek(self, parent: bytes) -> None:
        """vmstate_subsection_load() at a nested VMSD's end: EOF or a subsection header
        is trouble for the fast path."""
        self.emit(f"if pos >= n or (buf[pos] == 5 and _subhit(buf, pos, n, "
                  f"{self.const(parent, 'P')})): _bail()")

    def load_vmsd(self, vmsd: Description, src: str, version: int, path: str,
                  top: bool = False) -> str:
        """Emit the load of ``vmsd`` from source dict expression ``src``; returns the
        variable holding the loaded copy."""
        saved = self.members
        self.members = set(member_fields(vmsd))
        try:
            return self._load_vmsd(vmsd, src, version, path, top)
        finally:
            self.members = saved

    def _load_vmsd(self, vmsd: Description, src: str, version: int, path: str,
                   top: bool) -> str:
        o = "o" if top else self.var("o")
        if not top:
            self.emit(f"{o} = {src}")
        self.emit(f"if {o}.__class__ is not dict: _bail()")
        if self.track:
            self.emit(f"ids.append(id({o}))")
        self.emit(f"{o} = dict({o})")
        written = self._load_fields(vmsd, o, version, path)
        if written is None:
            return o
        ids = "ids" if self.track else "None"
        w = self.const(frozenset(written), "W")
        fill = member_fields(vmsd)
        fc = self.const(fill, "FILL")
        if set(fill) - written:
            extras = [f"_extras({o}, {w}, {ids}, {fc})"]
        else:
            extras = [f"if len({o}) != {len(written)}: _extras({o}, {w}, {ids}, {fc})"]
        # stays in the run: scalars of nested structs fuse with their parent's
        self.run.append(("0x", ("post", lambda i, c: extras)))
        if vmsd.subsections:
            self.load_flush()
            self.load_subsections(vmsd, o, path)
            if not top:
                self.end_peek(vmsd.name.encode())
        elif top:
            self.load_flush()
        else:
            self.run.append(("0x", ("peek", vmsd.name.encode())))
        return o

    def load_subsections(self, vmsd: Description, o: str, path: str) -> None:
        """vmstate_subsection_load(): the peek loop, each known subsection's fields loaded
        into the same struct (its version must be the one the body was compiled for)."""
        parent = self.const(vmsd.name.encode(), "P")
        table: dict[str, int] = {}
        for k, sub in enumerate(vmsd.subsections):
            table.setdefault(sub.name, k)  # the first subsection of a name wins
        r, k, ver = self.var("r"), self.var("k"), self.var("ver")
        self.emit("while pos < n and buf[pos] == 5:")
        self.ind += 1
        self.emit(f"{r} = _subfind(buf, pos, n, {parent}, {self.const(table, 'SUBS')})")
        self.emit(f"if {r} is None: break")
        self.emit(f"{k}, pos, {ver} = {r}")
        for index, sub in enumerate(vmsd.subsections):
            if table[sub.name] != index:
                continue
            self.emit(f"if {k} == {index}:  # subsection {sub.name}")
            self.ind += 1
            self.emit(f"if {ver} != {sub.version_id}: _bail()")
            spath = f"{path}/@{_fmt_escape(sub.name)}"
            if self._load_fields(sub, o, sub.version_id, spath) is not None:
                self.load_flush()
                if sub.subsections:
                    self.load_subsections(sub, o, spath)
            self.emit("continue")
            self.ind -= 1
        self.emit("_bail()")
        self.ind -= 1

    def _load_fields(self, vmsd: Description, o: str, version: int, path: str):
        """The field loop of vmstate_load_state(); the members stored unconditionally,
        or None when the VMSD cannot be on the fast path at all."""
        v = self.v
        if version > vmsd.version_id or version < vmsd.minimum_version_id:
            self.bail("version out of range: error on the complete path")
            return None
        if _has_hooks(vmsd):
            self.bail(f"{vmsd.name}: load hooks run on the complete path")
            return None
        if v.vms_end is not None and vmsd.terminator is not None and vmsd.terminator != v.vms_end:
            self.bail("VMS_END canary mismatch asserts")
            return None
        written = set()
        for fp in self.plan.fields_of(vmsd):
            fe = fp.field.field_exists
            if fe is not None:
                self.load_flush()
                if not isinstance(fe, Pred):
                    self.bail(f"{fp.name}: field_exists is not a declarative predicate")
                    return None
                self.guard_pred(fe, o)
                self.emit(f"if {self.const(fe, 'FE')}({o}, {version}):")
                self.ind += 1
                self.load_field(fp, o, path, set())
                self.load_flush()
                self.emit("pass")
                self.ind -= 1
                if fp.flags & F.MUST_EXIST:
                    self.emit("else:")
                    self.ind += 1
                    self.bail("VMS_MUST_EXIST field absent: validation error")
                    self.ind -= 1
            elif fp.field.version_id <= version:
                self.load_field(fp, o, path, written)
            elif fp.flags & F.MUST_EXIST:
                self.load_flush()
                self.bail("VMS_MUST_EXIST field absent: validation error")
                return None
        return written

    def load_field(self, fp: FieldPlan, o: str, path: str, written: set) -> None:
        flags = fp.flags
        if (fp.vmsd is None) if fp.is_struct else (fp.info is None):
            if fp.flags & F.ARRAY and fp.field.num == 0 and not fp.is_pointer:
                return  # VMSTATE_VALIDATE: nothing is read
            self.load_flush()
            self.bail(f"{fp.name}: no sub-description / info")
            return
        m = repr(fp.member)
        static_n, count_expr = _count_expr(fp, o, self.members)
        if fp.allocates:
            self.load_flush()
            self.bail(f"{fp.name}: VMS_ALLOC runs on the interpreter")
            return
        if fp.is_pointer:
            self.load_flush()
            self.emit(f"if {o}.get({m}) is None or {o}.get({m}) is INDETERMINATE: _bail()")
        if static_n == 0:
            return
        if fp.aop:
            self.load_pointer_array(fp, o, static_n, count_expr, path)
            written.add(fp.member)  # the list copy is stored whatever the count
            return
        if fp.is_array:
            if fp.is_struct:
                self.load_struct_array(fp, o, static_n, count_expr, path)
                written.add(fp.member)
                return
            elif fp.inline in ("int", "bool"):
                self.load_scalar_array(fp, o, static_n, count_expr)
            else:
                self.load_flush()
                self.bail(f"{fp.name}: array of {fp.info.name} runs on the interpreter")
                return
            if static_n is not None:
                written.add(fp.member)
            return
        if static_n != 1:
            self.load_flush()
            self.bail(f"{fp.name}: MULTIPLY_ELEMENTS on a single field")
            return
        if fp.is_struct:
            sub = self.load_vmsd(fp.vmsd, f"{o}.get({m})", fp.sub_version,
                                 f"{path}/{_fmt_escape(fp.name)}")
            self.emit(f"{o}[{m}] = {sub}")
            written.add(fp.member)
            return
        kind = fp.inline
        if kind in _SCALAR_SHAPES:
            self.run.append((fp.code, ("store", self.scalar_store(fp, o))))
            written.add(fp.member)
        elif kind == "buffer":
            if flags & F.VBUFFER:
                self.load_flush()
                mult = fp.field.size if flags & F.MULTIPLY else 0
                size = self.var("n")
                self.emit(f"{size} = _vsize("
                          f"{_member_read(o, fp.field.size_member, self.members)}, {mult})")
                self.emit(f"if pos + {size} > n: _bail()")
                self.emit(f"{o}[{m}] = _bufload({o}.get({m}), buf[pos:pos + {size}], {size})")
                self.emit(f"pos += {size}")
                written.add(fp.member)
            else:
                size = fp.field.size

                def store(i, count, o=o, m=m, size=size):
                    return [f"c = {o}.get({m})",
                            f"{o}[{m}] = t[{i}] if c.__class__ is bytes and len(c) == {size} "
                            f"else _bufload(c, t[{i}], {size})"]

                self.run.append((f"{size}s", ("store", store)))
                written.add(fp.member)
        elif kind == "unused" and not flags & F.VBUFFER:
            self.run.append((f"{max(fp.field.size, 0)}x", None))
        else:
            self.load_flush()
            self.bail(f"{fp.name}: {fp.info.name if fp.info else 'no info'} runs on the "
                      "interpreter")

    def scalar_store(self, fp: FieldPlan, o: str):
        m = repr(fp.member)
        kind = fp.inline

        def store(i, count):
            if kind == "bool":
                return [f"{o}[{m}] = t[{i}] != 0"]
            if kind == "equal":
                # get_*_equal: compare with the destination; a mismatch is an error
                return [f"if {o}.get({m}) != t[{i}]: _bail()"]
            if kind == "le":
                return [f"if not 0 <= t[{i}] <= {o}.get({m}): _bail()",
                        f"{o}[{m}] = t[{i}]"]
            return [f"{o}[{m}] = t[{i}]"]

        return store

    def load_scalar_array(self, fp: FieldPlan, o: str, static_n, count_expr) -> None:
        m = repr(fp.member)
        code = fp.code
        ids = "ids" if self.track else "None"
        to_list = "[x != 0 for x in {}]" if fp.inline == "bool" else "list({})"
        if static_n is not None:
            def store(i, count):
                vals = to_list.format(f"t[{i}:{i + count}]")
                return [f"c = {o}.get({m})",
                        f"if c.__class__ is not list or len(c) != {count}: "
                        f"{o}[{m}] = _splice(c, {count}, {vals}, {ids if self.track else '[]'})",
                        "else:",
                        f"    {'ids.append(id(c)); ' if self.track else ''}{o}[{m}] = {vals}"]

            if code == "B" and static_n > 64:
                self.load_flush()
                self.emit(f"if pos + {static_n} > n: _bail()")
                vals = to_list.format(f"buf[pos:pos + {static_n}]")
                self.emit(f"{o}[{m}] = _splice({o}.get({m}), {static_n}, {vals}, "
                          f"{ids if self.track else '[]'})")
                self.emit(f"pos += {static_n}")
                return
            self.run.append((f"{static_n}{code}", ("store", store)))
            return
        self.load_flush()
        cnt = self.var("n")
        width = fp.width
        self.emit(f"{cnt} = {count_expr}")
        self.emit(f"if {cnt}:")
        self.ind += 1
        self.emit(f"if pos + {cnt} * {width} > n: _bail()")
        vals = to_list.format(f"_pk({code!r}, {cnt}).unpack_from(buf, pos)")
        self.emit(f"{o}[{m}] = _splice({o}.get({m}), {cnt}, {vals}, "
                  f"{'ids' if self.track else '[]'})")
        self.emit(f"pos += {cnt} * {width}")
        self.ind -= 1

    def load_struct_array(self, fp: FieldPlan, o: str, static_n, count_expr, path) -> None:
        m = repr(fp.member)
        self.load_flush()
        cnt = static_n if static_n is not None else self.var("n")
        if static_n is None:
            self.emit(f"{cnt} = {count_expr}")
        lst = self.var("L")
        self.emit(f"{lst} = {o}.get({m})")
        self.emit(f"if {lst}.__class__ is not list or len({lst}) < {cnt}: _bail()")
        if self.track:
            self.emit(f"ids.append(id({lst}))")
        self.emit(f"{lst} = {lst}[:]")
        self.emit(f"{o}[{m}] = {lst}")
        i = self.var("i")
        self.emit(f"for {i} in range({cnt}):")
        self.ind += 1
        epath = self.elem_path(path, fp, i)
        sub = self.load_vmsd(fp.vmsd, f"{lst}[{i}]", fp.sub_version, epath)
        self.load_flush()
        self.emit(f"{lst}[{i}] = {sub}")
        self.ind -= 1
        self.emit(f"if len({lst}) > {cnt}: _tail({lst}, {cnt}, "
                  f"{'ids' if self.track else 'None'}, {self.const(fp.vmsd, 'V')})")

    def elem_path(self, path: str, fp: FieldPlan, i: str) -> str:
        """Path expressions are only materialised where a ledger entry needs them."""
        return f"{path}/{_fmt_escape(fp.name)}[{{{i}}}]"

    def load_pointer_array(self, fp: FieldPlan, o: str, static_n, count_expr, path) -> None:
        m = repr(fp.member)
        v = self.v
        self.load_flush()
        if fp.flags & F.VBUFFER or not (fp.is_struct or fp.inline in ("int", "bool")):
            self.bail(f"{fp.name}: pointer array of {fp.info.name} runs on the interpreter")
            return
        size = fp.static_elem_size
        cnt = static_n if static_n is not None else self.var("n")
        if static_n is None:
            self.emit(f"{cnt} = {count_expr}")
        lst = self.var("L")
        self.emit(f"{lst} = {o}.get({m})")
        self.emit(f"if {lst}.__class__ is not list or len({lst}) < {cnt}: _bail()")
        if self.track:
            self.emit(f"ids.append(id({lst}))")
        self.emit(f"{lst} = {lst}[:]")
        self.emit(f"{o}[{m}] = {lst}")
        pre = self.const(Precondition, "Pre")
        check_slots = fp.auto and v.decision("populated_auto_slot") != "overwrite"
        if fp.auto and fp.is_pointer:
            # the POINTER base held (the list is there): a ledger entry
            fpath = f"{path}/{_fmt_escape(fp.name)}"
            self.emit(f"led.append({pre}(f{fpath!r}, 'first_elem || !n_elems || !size', "
                      "True))")
        i = self.var("i")
        self.emit(f"for {i} in range({cnt}):")
        self.ind += 1
        e = self.var("e")
        self.emit(f"{e} = {lst}[{i}]")
        self.emit(f"if {e} is None:")
        self.ind += 1
        if check_slots:
            self.emit(f"led.append({pre}(f{self.elem_path(path, fp, i)!r}, '*pptr == NULL', "
                      "True))")
        if v.marker_load == "nullptr":
            if size == 0:
                self.bail("a NULL slot with element size 0 is followed")
            else:
                self.emit("if pos >= n or buf[pos] != 0x30: _bail()  # get_nullptr")
                self.emit("pos += 1")
                self.emit("continue")
        else:
            # vmstate_ptr_marker_load: 0x30 skips, 0x31 allocates (auto only)
            self.emit("if pos >= n: _bail()")
            self.emit("pos += 1")
            self.emit("if buf[pos - 1] == 0x30: continue")
            if not fp.auto or fp.field.size == 0 or not v.decision("element_alloc_zeroed"):
                self.bail("valid marker without auto-allocation / g_malloc0(0) / g_malloc")
            else:
                self.emit("if buf[pos - 1] != 0x31: _bail()")
                epath = self.elem_path(path, fp, i)
                alloc = self.const(Allocation, "Alloc")
                self.emit(f"led.append({alloc}(f{epath!r}, 'element', {fp.field.size}, True, "
                          "False))")
                if fp.is_struct:
                    template = self.const(zero_struct(fp.vmsd), "Z")
                    saved = self.track
                    self.track = False  # a fresh object: nothing of the source to alias
                    sub = self.load_vmsd(fp.vmsd, template, fp.sub_version, epath)
                    self.load_flush()
                    self.track = saved
                    self.emit(f"{lst}[{i}] = {sub}")
                else:
                    self.load_scalar_into(fp, lst, i)
                self.emit("continue")
        self.ind -= 1
        if fp.auto:
            self.bail("a populated auto-allocating slot (assert / overwrite policy)")
        else:
            if fp.is_struct:
                sub = self.load_vmsd(fp.vmsd, e, fp.sub_version, self.elem_path(path, fp, i))
                self.load_flush()
                self.emit(f"{lst}[{i}] = {sub}")
            else:
                self.emit(f"if {e} is INDETERMINATE: _bail()")
                self.load_scalar_into(fp, lst, i)
        self.ind -= 1
        self.emit(f"if len({lst}) > {cnt}: _tail({lst}, {cnt}, "
                  f"{'ids' if self.track else 'None'}, {self.const(fp.vmsd, 'V')})")

    def load_scalar_into(self, fp: FieldPlan, lst: str, i: str) -> None:
        width = fp.width
        s = self.struct_const(">" + fp.code)
        self.emit(f"if pos + {width} > n: _bail()")
        val = f"{s}.unpack_from(buf, pos)[0]"
        self.emit(f"{lst}[{i}] = {val} != 0" if fp.inline == "bool" else f"{lst}[{i}] = {val}")
        self.emit(f"pos += {width}")

    # =====================================================================================

    def build_save(self) -> str:
        desc = self.plan.desc
        self.emit_def("save_fast(o)", [
            "if o.__class__ is not dict: _bail()",
            "out = bytearray()",
        ])
        self.save_vmsd(desc, "o", desc.version_id, desc.name)
        self.save_flush()
        self.emit("return out")
        return "save_fast"

    def build_load(self, version: int) -> str:
        desc = self.plan.desc
        name = f"load_fast_v{version}"
        self.emit_def(f"{name}(buf, src)", [
            "n = len(buf)",
            "pos = 0",
            "ids = []",
            "led = []",
            "o = src",
        ])
        o = self.load_vmsd(desc, "src", version, _fmt_escape(desc.name), top=True)
        self.emit("if pos >= n:")
        self.emit("    sticky = True  # the final subsection peek: sticky -EIO, success")
        self.emit(f"elif buf[pos] == 5 and _subhit(buf, pos, n, "
                  f"{self.const(desc.name.encode(), 'P')}): _bail()")
        self.emit("else:")
        self.emit("    sticky = False")
        self.emit("if len(set(ids)) != len(ids): _bail()  # aliasing: deep copy semantics")
        self.emit(f"return {o}, pos, sticky, led")
        return name

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

