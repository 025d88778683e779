"""The load half of the code generator: ``LoadGen.build_load`` emits
``load_fast_v<version>(buf, src)``, one bounds check and one ``unpack_from`` per
run of fixed-width scalars (codegen.py)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from conformance.engines.optimized.codegen_common import (
    _SCALAR_SHAPES,
    Emitter,
    _count_expr,
    _fmt_escape,
    _has_hooks,
    _member_read,
)
from conformance.errors import LimitExceeded
from conformance.model import limits as _limits
from conformance.model.description import Description, Pred
from conformance.model.flags import F
from conformance.model.outcome import Allocation, Precondition
from conformance.model.state import member_fields, state_footprint, zero_struct

if TYPE_CHECKING:
    from conformance.engines.optimized.fieldplan import FieldPlan


class LoadGen(Emitter):
    """Load: vmstate_load_state as straight-line code."""

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
        body = len(self.lines)
        self.spends = False
        o = self.load_vmsd(desc, "src", version, _fmt_escape(desc.name), top=True)
        if self.spends:  # what the load may still allocate (reference _Ctx.allocate)
            lim = self.const(_limits, "Lim")
            self.lines[body:body] = [f"    budget_v = {lim}.STATE_LIMIT",
                                     f"    budget_b = {lim}.STATE_BYTES_LIMIT"]
        self.emit("if pos >= n:")
        self.emit("    sticky = True  # the final subsection peek: sticky -EIO, success")
        self.emit(f"elif buf[pos] == 5 and _subhit(buf, pos, n, "
                  f"{self.const(desc.name.encode(), 'P')}): _bail()")
        self.emit("else:")
        self.emit("    sticky = False")
        self.emit("if len(set(ids)) != len(ids): _bail()  # aliasing: deep copy semantics")
        self.emit(f"return {o}, pos, sticky, led")
        return name

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
        table: dict[bytes, int] = {}  # keyed by the bytes the save writes (UTF-8)
        for k, sub in enumerate(vmsd.subsections):
            table.setdefault(sub.name.encode(), k)  # the first subsection of a name wins
        r, k, ver = self.var("r"), self.var("k"), self.var("ver")
        self.emit("while pos < n and buf[pos] == 5:")
        self.ind += 1
        self.emit(f"{r} = _subfind(buf, pos, n, {parent}, {self.const(table, 'SUBS')})")
        self.emit(f"if {r} is None: break")
        self.emit(f"{k}, pos, {ver} = {r}")
        for index, sub in enumerate(vmsd.subsections):
            if table[sub.name.encode()] != index:
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
        if fp.is_array and fp.member is not None and not fp.static_elem_size:
            # element i is first_elem + size * i (vmstate.c): size 0 loads into element 0
            # every time, a VBUFFER's size is known at run time; the interpreter steps
            self.load_flush()
            self.bail(f"{fp.name}: array with element size 0 / a run-time size")
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

    def list_to_fill(self, fp: FieldPlan, o: str, static_n, count_expr) -> tuple[str, str]:
        """(count, list) of an array member about to be filled element by element: the
        destination's list checked long enough and copied (the copy is what is filled)."""
        m = repr(fp.member)
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
        return cnt, lst

    def load_struct_array(self, fp: FieldPlan, o: str, static_n, count_expr, path) -> None:
        self.load_flush()
        cnt, lst = self.list_to_fill(fp, o, static_n, count_expr)
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
        v = self.v
        self.load_flush()
        if fp.flags & F.VBUFFER or not (fp.is_struct or fp.inline in ("int", "bool")):
            self.bail(f"{fp.name}: pointer array of {fp.info.name} runs on the interpreter")
            return
        cnt, lst = self.list_to_fill(fp, o, static_n, count_expr)
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
            # the element size is non-zero here (load_field): get_nullptr reads the marker
            self.emit("if pos >= n or buf[pos] != 0x30: _bail()  # get_nullptr")
            self.emit("pos += 1")
            self.emit("continue")
        else:
            # vmstate_ptr_marker_load: 0x30 skips, 0x31 allocates (auto only)
            self.emit("if pos >= n: _bail()")
            self.emit("pos += 1")
            self.emit("if buf[pos - 1] == 0x30: continue")
            cost = self.element_cost(fp)
            if not fp.auto or fp.field.size == 0 or not v.decision("element_alloc_zeroed"):
                self.bail("valid marker without auto-allocation / g_malloc0(0) / g_malloc")
            elif cost is None:
                self.bail("an element struct past the limits: the interpreter says so")
            else:
                self.emit("if buf[pos - 1] != 0x31: _bail()")
                epath = self.elem_path(path, fp, i)
                self.spend(*cost)
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

    def element_cost(self, fp: FieldPlan) -> tuple[int, int] | None:
        """(values, bytes) one auto-allocated element spends of the load's budget, as the
        interpreter counts them (engines/reference.py _Ctx.allocate); None when one
        element struct is past the limits."""
        if not fp.is_struct:
            return 1, fp.field.size
        try:
            values, nbytes = state_footprint(fp.vmsd)
        except LimitExceeded:
            return None
        return 1 + values, nbytes

    def spend(self, values: int, nbytes: int) -> None:
        """Past the budget the interpreter runs the load and reports the limit."""
        self.spends = True
        self.emit(f"budget_v -= {values}")
        self.emit(f"budget_b -= {nbytes}")
        self.emit("if budget_v < 0 or budget_b < 0: _bail()  # the interpreter: limit")

    def load_scalar_into(self, fp: FieldPlan, lst: str, i: str) -> None:
        width = fp.width
        s = self.struct_const(">" + fp.code)
        self.emit(f"if pos + {width} > n: _bail()")
        val = f"{s}.unpack_from(buf, pos)[0]"
        self.emit(f"{lst}[{i}] = {val} != 0" if fp.inline == "bool" else f"{lst}[{i}] = {val}")
        self.emit(f"pos += {width}")
