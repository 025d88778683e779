"""The save half of the code generator: ``SaveGen.build_save`` emits ``save_fast(o)``,
fusing runs of fixed-width scalars into one ``struct`` pack (codegen.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conformance.engines.optimized.codegen_common import (
    _SCALAR_SHAPES,
    Emitter,
    _count_expr,
    _member_read,
)
from conformance.model.description import Description, Pred
from conformance.model.flags import F
from conformance.model.state import member_fields

if TYPE_CHECKING:
    from conformance.engines.optimized.fieldplan import FieldPlan


class SaveGen(Emitter):
    """Save: vmstate_save_state_v as straight-line code."""

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
        if fp.is_array and fp.member is not None and not fp.static_elem_size:
            # element i is first_elem + size * i (vmstate.c): size 0 steps on element 0
            # every time, a VBUFFER's size is known at run time; the interpreter steps
            self.save_flush()
            self.bail(f"{fp.name}: array with element size 0 / a run-time size")
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

    def elements(self, fp: FieldPlan, obj: str, static_n, count_expr) -> str:
        """The variable holding the first count elements of an array member."""
        m = repr(fp.member)
        lst = self.var("L")
        cnt = static_n if static_n is not None else self.var("n")
        if static_n is None:
            self.emit(f"{cnt} = {count_expr}")
        self.emit(f"{lst} = _arr({obj}.get({m}), {cnt})")
        return lst

    def save_struct_array(self, fp: FieldPlan, obj: str, static_n, count_expr, path) -> None:
        self.save_flush()
        lst = self.elements(fp, obj, static_n, count_expr)
        e = self.var("e")
        self.emit(f"for {e} in {lst}:")
        self.ind += 1
        self.emit(f"if {e}.__class__ is not dict: _bail()")
        self.save_vmsd(fp.vmsd, e, fp.sub_version, f"{path}/{fp.name}[]")
        self.save_flush()
        self.ind -= 1

    def save_pointer_array(self, fp: FieldPlan, obj: str, static_n, count_expr, path) -> None:
        self.save_flush()
        if not (fp.is_struct or fp.inline in _SCALAR_SHAPES):
            self.bail(f"{fp.name}: pointer array of {fp.info.name} runs on the interpreter")
            return
        # the element size is non-zero here (save_field), so a NULL slot is recognised
        lst = self.elements(fp, obj, static_n, count_expr)
        e = self.var("e")
        self.emit(f"for {e} in {lst}:")
        self.ind += 1
        self.emit(f"if {e} is None:")
        self.ind += 1
        self.emit("out.append(0x30)  # NULL marker")
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
