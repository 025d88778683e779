"""The optimized engine: (description, variant) compiled once into specialised Python.

Two tiers, both this module's own code (it never calls the reference engine):

* the **fast path**: straight-line Python generated per VMSD (``exec`` of source text,
  dump it with :func:`dump_source`).  Runs of fixed-width scalars (across inlined
  nested structs and fixed scalar arrays) become ONE precompiled ``struct.Struct``
  pack / ``unpack_from``; scalar arrays and buffers are bulk copies; struct arrays and
  pointer arrays (nullptr markers, QEMU 11 ptr-markers with allocation) are tight
  loops.  The fast path is *speculative*: on any sign of trouble (short input, marker
  or equal-check mismatch, a value struct cannot pack, indeterminate memory, counts out
  of range, a subsection header, aliasing in the destination...) it raises and the
  operation is re-run on
* the **complete path**: an interpreter over precomputed field plans that models
  migration/vmstate.c control flow exactly (errno returns, sticky QEMUFile errors,
  error_report lines, assertions, undefined behaviour, hazards, the allocation ledger,
  the vmdesc JSON of each era).  Hooks, tmp, queues, gtrees, ALLOC, vmdesc and every
  error outcome are produced here.

The fast path only ever returns an outcome for inputs on which it is certain the
complete path would succeed with the same bytes and state; docs/optimized-engine.md
explains the guards.  ``STATS`` counts fast hits and fallbacks (tests assert on it).
"""

from __future__ import annotations

import struct
import weakref
from typing import Any

from conformance.engines._common import (
    Abort,
    Undefined,
    _contains_indeterminate,
    _gtree_insert,
    _s32,
)
from conformance.engines.qemufile import EINVAL, EIO, ENOENT, QEMUFileReader, QEMUFileWriter
from conformance.migration.jsonwriter import JSONWriter
from conformance.model import limits
from conformance.model import variants as _variants
from conformance.model.check import errors as check_errors
from conformance.model.description import Description, Field, Pred
from conformance.model.flags import F
from conformance.model.infos import (
    NULL_MARKER,
    VALID_MARKER,
    Info,
    bitmap_words,
    from_unsigned,
    lookup,
    packer,
    to_unsigned,
)
from conformance.model.outcome import (
    ABORT,
    ERROR,
    LIMIT,
    OK,
    UNDEFINED,
    Allocation,
    Hazard,
    Outcome,
    Precondition,
)
from conformance.model.state import (
    INDETERMINATE,
    Uninit,
    clone,
    fill_missing,
    is_indeterminate,
    member_fields,
    uninit_struct,
    zero_struct,
    zero_value,
)

NAME = "optimized"

_STICKY_DETAIL = "a peek at the end of the stream set -EIO"


#: fast-path hits and fallbacks to the complete path, per operation
STATS = {"save_fast": 0, "save_complete": 0, "load_fast": 0, "load_complete": 0}


class Bail(Exception):
    """The fast path met something it does not vouch for: re-run on the complete path."""


def _bail():
    raise Bail


# =======================================================================================
# Field plans: everything about a field that does not depend on the state, computed once


class FieldPlan:
    __slots__ = ("field", "name", "member", "flags", "info", "kind", "is_array", "is_struct",
                 "is_pointer", "aop", "auto", "allocates", "vmsd", "key_vmsd", "sub_version",
                 "compressible", "type_name", "static_elem_size", "unique_name", "desc_names")

    def __init__(self, field: Field, owner: Description, v) -> None:
        flags = field.flags
        self.field = field
        self.name = field.name
        self.member = field.member
        self.flags = flags
        try:
            self.info = lookup(field.info) if field.info is not None else None
        except KeyError:
            self.info = None  # an unknown info fails where the core would use it
        self.kind = self.info.kind if self.info is not None else None
        self.is_array = field.is_array
        self.is_struct = bool(flags & (F.STRUCT | F.VSTRUCT))
        self.is_pointer = bool(flags & F.POINTER)
        self.aop = bool(flags & F.ARRAY_OF_POINTER)
        self.auto = v.is_auto(field)
        self.allocates = v.allocates_array(field)
        self.vmsd = field.vmsd
        self.key_vmsd = field.key_vmsd
        # STRUCT loads/saves with the sub-VMSD's own version, VSTRUCT with the field's
        if flags & F.STRUCT:
            self.sub_version = field.vmsd.version_id if field.vmsd is not None else 0
        else:
            self.sub_version = field.struct_version_id
        self.compressible = _can_compress(field, v)
        self.type_name = _type_name(field)
        self.static_elem_size = (v.element_size(field, field.size)
                                 if not flags & F.VBUFFER else None)
        same = [f for f in owner.fields if f.name == field.name]
        self.unique_name = len(same) <= 1
        if self.unique_name:
            self.desc_names = (field.name, field.name)
        else:
            k = next((k for k, f in enumerate(same) if f is field), -1)
            self.desc_names = (f"{field.name}[{k}]", f"{field.name}[-1]")


def _can_compress(field: Field, v) -> bool:
    """vmstate.c vmsd_can_compress()."""
    if field.field_exists is not None:
        return False
    if v.is_auto(field):
        return False  # QEMU 11 AUTO_ALLOC and the alloc RFC alike
    if field.flags & F.STRUCT and field.vmsd is not None:
        if not all(_can_compress(sub, v) for sub in field.vmsd.fields):
            return False
        if field.vmsd.subsections:
            return False
    return True


def _type_name(field: Field) -> str:
    """vmstate.c vmfield_get_type_name()."""
    if field.flags & F.STRUCT:
        return "struct"
    if field.flags & F.VSTRUCT:
        return "vstruct"
    return field.info or "unknown"


# =======================================================================================
# The complete path: migration/vmstate.c, one function per QEMU function


class _Ctx:
    __slots__ = ("plan", "v", "f", "messages", "hazards", "ledger", "err_path", "err_offset",
                 "allocated", "reading")

    def __init__(self, plan, f, reading: bool) -> None:
        self.plan = plan
        self.v = plan.variant
        self.f = f
        self.reading = reading
        self.messages: list[str] = []
        self.hazards: list[Hazard] = []
        self.ledger: list[Allocation] = []
        self.err_path: str | None = None
        self.err_offset: int | None = None
        self.allocated: list = []

    def _pos(self) -> int:
        return self.f.pos if self.reading else len(self.f.buf)

    def report(self, message: str, path: str) -> None:
        """error_report(): the first report locates the failure (path, byte offset)."""
        self.messages.append(message)
        if self.err_path is None:
            self.err_path = path
            self.err_offset = self._pos()

    def locate(self, path: str) -> None:
        if self.err_path is None:
            self.err_path = path
            self.err_offset = self._pos()

    def hazard(self, kind: str, path: str, detail: str = "") -> None:
        self.hazards.append(Hazard(kind, path, detail))


def _read_member(opaque, member, path: str) -> int:
    """A counter or size member as vmstate_n_elems()/vmstate_size() read it."""
    value = opaque.get(member, 0) if isinstance(opaque, dict) else 0
    if is_indeterminate(value):
        raise Undefined("indeterminate-read", f"member {member!r} is indeterminate", path)
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise Undefined("out-of-bounds", f"member {member!r} is not an integer", path)
    return value


def _exists(fp: FieldPlan, opaque, version_id: int) -> bool:
    """vmstate_field_exists()."""
    fe = fp.field.field_exists
    if fe is not None:
        return bool(fe(opaque, version_id))
    return fp.field.version_id <= version_id


def _n_elems(fp: FieldPlan, opaque, path: str) -> int:
    """vmstate_n_elems(): the count lands in a C int."""
    flags = fp.flags
    field = fp.field
    n = 1
    if flags & F.ARRAY:
        n = field.num
    elif flags & F.VARRAY_INT32:
        n = _s32(_read_member(opaque, field.num_member, path))
    elif flags & F.VARRAY_UINT32:
        n = _s32(_read_member(opaque, field.num_member, path) & 0xFFFFFFFF)
    elif flags & F.VARRAY_UINT16:
        n = _read_member(opaque, field.num_member, path) & 0xFFFF
    elif flags & F.VARRAY_UINT8:
        n = _read_member(opaque, field.num_member, path) & 0xFF
    if flags & F.MULTIPLY_ELEMENTS:
        n = _s32(n * field.num)
    return n


def _raw_size(fp: FieldPlan, opaque, path: str) -> int:
    """vmstate_size(): a VBUFFER size is read as int32 whatever the member's type."""
    field = fp.field
    size = field.size
    if fp.flags & F.VBUFFER:
        size = _s32(_read_member(opaque, field.size_member, path))
        if fp.flags & F.MULTIPLY:
            size = _s32(size * field.size)
    return size


def _epath(path: str, fp: FieldPlan, i: int) -> str:
    return f"{path}/{fp.name}[{i}]" if fp.is_array else f"{path}/{fp.name}"


class _Self:
    """The container of a field with no member of its own (offset 0: VMSTATE_UNUSED,
    VMSTATE_WITH_TMP): its element is the opaque itself."""

    __slots__ = ("opaque",)

    def __init__(self, opaque) -> None:
        self.opaque = opaque


def _get(container, key, path: str):
    if isinstance(container, _Self):
        return container.opaque
    if isinstance(container, list):
        if not isinstance(key, int) or key >= len(container):
            raise Undefined("out-of-bounds",
                            f"element {key} is beyond the {len(container)} the state provides",
                            path)
        return container[key]
    if isinstance(container, dict):
        return container.get(key)
    raise Undefined("out-of-bounds", "the member is not an array", path)


def _set(container, key, value, path: str) -> None:
    if isinstance(container, list):
        if key >= len(container):
            raise Undefined("out-of-bounds",
                            f"element {key} is beyond the {len(container)} the state provides",
                            path)
    container[key] = value


def _cell(fp: FieldPlan, opaque, first, i: int):
    """Where element i lives: (container, key)."""
    if fp.member is None:
        return _Self(opaque), None
    return (first, i) if fp.is_array else (opaque, fp.member)


def _hook(fn, opaque, *args) -> int:
    return int(fn(opaque, *args) or 0)


def _terminator_ok(v, vmsd: Description, path: str) -> None:
    """assert(field->flags == VMS_END) after the field loop (QEMU >= 8.0)."""
    if v.vms_end is not None and vmsd.terminator is not None and vmsd.terminator != v.vms_end:
        raise Abort("assertion failed: field->flags == VMS_END", f"{path}/(end)")


# -- vmdesc (vmsd_desc_field_start / _end) ----------------------------------------------


def _desc_start(w, fp: FieldPlan, i, max_elems, *, type_name=None, fake=False,
                compressible=True) -> None:
    if w is None:
        return
    w.start_object(None)
    w.str("name", fp.desc_names[1] if fake else fp.desc_names[0])
    if max_elems > 1:
        if compressible:
            w.int64("array_len", max_elems)
        else:
            w.int64("index", i)
    w.str("type", type_name or fp.type_name)
    if type_name is None and fp.flags & F.STRUCT:
        w.start_object("struct")


def _desc_end(w, fp: FieldPlan, size: int, *, fake=False) -> None:
    if w is None:
        return
    if not fake and fp.flags & F.STRUCT:
        w.end_object()
    w.int64("size", size)
    w.end_object()


# -- save: vmstate_save_state_v ------------------------------------------------------------


def _c_save_vmsd(ctx: _Ctx, vmsd: Description, opaque, w, version_id: int, path: str) -> int:
    v = ctx.v
    if vmsd.pre_save is not None:
        ret = _hook(vmsd.pre_save, opaque)
        if v.post_hook_failed(ret):
            ctx.report(f"pre-save failed: {vmsd.name}", path)
            return ret
    if w is not None:
        w.str("vmsd_name", vmsd.name)
        w.int64("version", version_id)
        w.start_array("fields")
    for fp in ctx.plan.fields_of(vmsd):
        fpath = f"{path}/{fp.name}"
        if _exists(fp, opaque, version_id):
            ret = _c_save_field(ctx, fp, opaque, w, fpath, path)
            if ret:
                ctx.report(f"Save of field {vmsd.name}/{fp.name} failed", fpath)
                if vmsd.post_save is not None:
                    _hook(vmsd.post_save, opaque)
                return ret
        elif fp.flags & F.MUST_EXIST:
            ctx.report(f"Output state validation failed: {vmsd.name}/{fp.name}", fpath)
            raise Abort("assertion failed: !(field->flags & VMS_MUST_EXIST)", fpath)
    _terminator_ok(v, vmsd, path)
    if w is not None:
        w.end_array()
    ret = _c_save_subsections(ctx, vmsd, opaque, w, path)
    if vmsd.post_save is not None:
        ps_ret = _hook(vmsd.post_save, opaque)
        if not ret and v.post_hook_failed(ps_ret):
            ret = ps_ret
            ctx.report(f"post-save failed: {vmsd.name}", path)
    return ret


def _c_save_field(ctx: _Ctx, fp: FieldPlan, opaque, w, fpath: str, path: str) -> int:
    f = ctx.f
    v = ctx.v
    n = _n_elems(fp, opaque, fpath)
    size = v.element_size(fp.field, _raw_size(fp, opaque, fpath))
    auto = fp.auto
    aop = fp.aop
    first = opaque.get(fp.member) if fp.member is not None and isinstance(opaque, dict) else None
    if fp.is_pointer:
        if first is INDETERMINATE:
            raise Undefined("indeterminate-read", "the pointer member is indeterminate", fpath)
        if first is None and n != 0 and size != 0:
            raise Abort("assertion failed: first_elem || !n_elems || !size", fpath)
    compressible = fp.compressible
    era = v.vmdesc_era
    w_loop = w
    prev_null = False
    for i in range(max(n, 0)):
        epath = _epath(path, fp, i)
        container, key = _cell(fp, opaque, first, i)
        elem = _get(container, key, epath)
        is_null = False
        if aop:
            if elem is INDETERMINATE:
                raise Undefined("indeterminate-read", "pointer slot is indeterminate", epath)
            is_null = elem is None and size != 0
        runs = era == "B" or (era == "C" and compressible)
        max_elems = n - i if era == "A" or runs else 1
        if era != "A" and aop and is_null != prev_null:
            # a new vmdesc entry per NULL / non-NULL run (2025 JSON writer fix)
            prev_null = is_null
            w_loop = w
            if runs:
                for j in range(i + 1, n):
                    other = _get(container, j, epath)
                    if (other is None and size != 0) != is_null:
                        max_elems = j - i
                        break
        start = len(f.buf)
        ret = 0
        if auto:
            # QEMU 11 use_dynamic_array: a marker, then the object (size = .size)
            _desc_start(w_loop, fp, i, max_elems, type_name="ptr-marker", fake=True)
            f.buf.append(NULL_MARKER if elem is None else VALID_MARKER)
            _desc_end(w_loop, fp, len(f.buf) - start, fake=True)
            if elem is not None:
                start = len(f.buf)
                _desc_start(w_loop, fp, i, max_elems, compressible=compressible)
                ret = _c_save_element(ctx, fp, elem, fp.field.size, w_loop, epath, opaque)
                _desc_end(w_loop, fp, len(f.buf) - start)
        elif is_null:
            # vmstate_info_nullptr.put / the fake marker field: one 0x30 byte
            if era == "A":
                _desc_start(w_loop, fp, i, max_elems, compressible=compressible)
                f.buf.append(NULL_MARKER)
                _desc_end(w_loop, fp, len(f.buf) - start)
            else:
                _desc_start(w_loop, fp, i, max_elems, fake=True,
                            type_name="nullptr" if era == "B" else "ptr-marker")
                f.buf.append(NULL_MARKER)
                _desc_end(w_loop, fp, len(f.buf) - start, fake=True)
        else:
            _desc_start(w_loop, fp, i, max_elems, compressible=compressible)
            if elem is None and not _null_ok(fp, size):
                raise Undefined("null-dereference", "the core follows a NULL pointer", epath)
            ret = _c_save_element(ctx, fp, elem, size, w_loop, epath, opaque)
            _desc_end(w_loop, fp, len(f.buf) - start)
        if ret:
            return ret
        # "Compressed arrays only care about the first element"
        if w_loop is not None and (max_elems > 1 if era == "C" else compressible):
            w_loop = None
    return 0


def _null_ok(fp: FieldPlan, size: int) -> bool:
    """A NULL base with element size 0 reaches the buffer codecs, which copy 0 bytes
    (qemu_put_buffer / qemu_get_buffer with a NULL pointer and length 0)."""
    return (size == 0 and not fp.is_struct and not fp.aop and fp.info is not None
            and fp.kind in ("buffer", "unused"))


def _c_save_element(ctx: _Ctx, fp: FieldPlan, elem, size: int, w, epath: str, opaque) -> int:
    if fp.is_struct:
        return _c_save_vmsd(ctx, fp.vmsd, elem, w, fp.sub_version, epath)
    if fp.info is None:
        lookup(fp.field.info)  # KeyError, as the reference's lookup
    return _c_put(ctx, fp, elem, size, w, epath, opaque)


def _c_put(ctx: _Ctx, fp: FieldPlan, value, size: int, w, epath: str, opaque) -> int:
    """The put_* functions of migration/vmstate-types.c."""
    buf = ctx.f.buf
    info = fp.info
    kind = fp.kind
    if kind in ("int", "equal", "le", "timer", "double", "bool"):
        if is_indeterminate(value):
            raise Undefined("indeterminate-read", "saving indeterminate memory", epath)
        if kind == "bool":
            buf.append(1 if value else 0)  # put_bool: a C bool is 0 or 1
            return 0
        buf += to_unsigned(info, int(value)).to_bytes(info.width, "big")
        return 0
    if kind == "buffer":
        if size < 0:
            raise Undefined("out-of-bounds", f"negative buffer size {size}", epath)
        if value is None and size == 0:
            return 0  # qemu_put_buffer(f, NULL, 0)
        if isinstance(value, Uninit) or value is INDETERMINATE:
            raise Undefined("indeterminate-read", "saving an indeterminate buffer", epath)
        data = bytes(value)
        if len(data) < size:
            raise Undefined("out-of-bounds",
                            f"the buffer holds {len(data)} bytes but the field saves {size}",
                            epath)
        buf += data[:size]
        return 0
    if kind == "unused":
        buf += bytes(max(size, 0))  # put_unused_buffer writes zeros
        return 0
    if kind == "bitmap":
        if is_indeterminate(value):
            raise Undefined("indeterminate-read", "saving an indeterminate bitmap", epath)
        for k in range(bitmap_words(max(size, 0))):
            buf += ((int(value) >> (64 * k)) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
        return 0
    if kind == "gbytearray":
        data = bytes(value)
        buf += (len(data) & 0xFFFFFFFF).to_bytes(4, "big")
        buf += data
        return 0
    if kind == "capability":
        name = str(value).encode()
        buf.append(len(name) & 0xFF)
        buf += name
        return 0
    if kind == "tmp":
        # put_tmp: a g_malloc'd (not zeroed) temporary whose first member is the parent
        tmp = uninit_struct(fp.vmsd)
        tmp["parent"] = opaque
        return _c_save_vmsd(ctx, fp.vmsd, tmp, w, fp.vmsd.version_id, epath)
    if kind in ("qtailq", "qlist"):
        for k, elm in enumerate(value or []):
            buf.append(1)
            ret = _c_save_vmsd(ctx, fp.vmsd, elm, w, fp.vmsd.version_id, f"{epath}[{k}]")
            if ret:
                return ret
        buf.append(0)
        return 0
    if kind == "gtree":
        nodes = value or []
        buf += (len(nodes) & 0xFFFFFFFF).to_bytes(4, "big")
        for k, (key, val) in enumerate(nodes):
            buf.append(1)
            if fp.key_vmsd is None:
                buf += (int(key) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")  # direct key
            else:
                ret = _c_save_vmsd(ctx, fp.key_vmsd, key, w, fp.key_vmsd.version_id,
                                   f"{epath}[{k}].key")
                if ret:
                    ctx.report(f"{fp.name} : failed to save gtree ({ret})", epath)
                    return ret
            ret = _c_save_vmsd(ctx, fp.vmsd, val, w, fp.vmsd.version_id, f"{epath}[{k}]")
            if ret:
                ctx.report(f"{fp.name} : failed to save gtree ({ret})", epath)
                return ret
        buf.append(0)
        return 0
    if kind == "fd":
        raise Undefined("out-of-bounds", "an fd travels as SCM_RIGHTS, not in a file stream",
                        epath)
    raise Undefined("out-of-bounds", f"info {info.name} cannot be saved directly", epath)


def _c_save_subsections(ctx: _Ctx, vmsd: Description, opaque, w, path: str) -> int:
    """vmstate.c vmstate_subsection_save()."""
    buf = ctx.f.buf
    opened = False
    ret = 0
    for sub in vmsd.subsections:
        if sub.needed is not None and not sub.needed(opaque):
            continue
        if w is not None:
            if not opened:
                w.start_array("subsections")
                opened = True
            w.start_object(None)
        name = sub.name.encode()
        buf.append(0x05)  # QEMU_VM_SUBSECTION
        buf.append(len(name) & 0xFF)
        buf += name[: len(name) & 0xFF]
        buf += (sub.version_id & 0xFFFFFFFF).to_bytes(4, "big")
        ret = _c_save_vmsd(ctx, sub, opaque, w, sub.version_id, f"{path}/@{sub.name}")
        if ret:
            return ret
        if w is not None:
            w.end_object()
    if opened:
        w.end_array()
    return ret


# -- load: vmstate_load_state --------------------------------------------------------------


def _c_load_vmsd(ctx: _Ctx, vmsd: Description, opaque, version_id: int, path: str) -> int:
    f = ctx.f
    v = ctx.v
    if version_id > vmsd.version_id:
        ctx.report(f"{vmsd.name}: incoming version_id {version_id} is too new for local "
                   f"version_id {vmsd.version_id}", path)
        return -EINVAL
    if version_id < vmsd.minimum_version_id:
        ctx.report(f"{vmsd.name}: incoming version_id {version_id} is too old for local "
                   f"minimum version_id  {vmsd.minimum_version_id}", path)
        return -EINVAL
    if vmsd.pre_load is not None:
        ret = _hook(vmsd.pre_load, opaque)
        if ret:
            ctx.locate(path)
            return ret
    for fp in ctx.plan.fields_of(vmsd):
        fpath = f"{path}/{fp.name}"
        if _exists(fp, opaque, version_id):
            ret = _c_load_field(ctx, vmsd, fp, opaque, fpath, path)
            if ret:
                return ret
        elif fp.flags & F.MUST_EXIST:
            ctx.report(f"Input validation failed: {vmsd.name}/{fp.name}", fpath)
            return -1
    _terminator_ok(v, vmsd, path)
    ret = _c_load_subsections(ctx, vmsd, opaque, path)
    if ret != 0:
        f.set_error(ret)
        return ret
    if vmsd.post_load is not None:
        ret = _hook(vmsd.post_load, opaque, version_id)
        if v.post_hook_failed(ret):
            ctx.locate(path)
            return ret
    return 0


def _c_alloc_array(ctx: _Ctx, fp: FieldPlan, opaque, n: int, size: int, fpath: str) -> None:
    """vmstate_handle_alloc(): g_malloc(size * n); the old pointer is overwritten."""
    nbytes = ((size & 0xFFFFFFFFFFFFFFFF) * (n & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
    if not nbytes:
        return
    if nbytes > limits.MALLOC_LIMIT:
        raise Abort(f"GLib: failed to allocate {nbytes} bytes", fpath)
    limits.check_array_allocation(n, nbytes, fpath)
    old = opaque.get(fp.member)
    overwrote = old is not None and old is not INDETERMINATE
    if overwrote:
        ctx.hazard("leak", fpath, "VMS_ALLOC overwrote a non-NULL pointer")
    zeroed = bool(ctx.v.decisions.get("array_alloc_zeroed", False))
    ctx.ledger.append(Allocation(fpath, "array", nbytes, zeroed, overwrote))
    if fp.is_array:
        if fp.aop:
            fresh = [None if zeroed else INDETERMINATE for _ in range(n)]
        elif fp.is_struct:
            fresh = [zero_struct(fp.vmsd) if zeroed else uninit_struct(fp.vmsd)
                     for _ in range(n)]
        else:
            fresh = [0 if zeroed else INDETERMINATE for _ in range(n)]
    elif fp.is_struct:
        fresh = zero_struct(fp.vmsd) if zeroed else uninit_struct(fp.vmsd)
    else:
        fresh = bytes(nbytes) if zeroed else Uninit(nbytes)
    opaque[fp.member] = fresh
    ctx.allocated.append((fpath, opaque, fp.member))


def _c_load_field(ctx: _Ctx, vmsd, fp: FieldPlan, opaque, fpath: str, path: str) -> int:
    f = ctx.f
    v = ctx.v
    n = _n_elems(fp, opaque, fpath)
    size = v.element_size(fp.field, _raw_size(fp, opaque, fpath))
    if fp.allocates:
        _c_alloc_array(ctx, fp, opaque, n, size, fpath)
    first = opaque.get(fp.member) if fp.member is not None and isinstance(opaque, dict) else None
    auto = fp.auto
    if fp.is_pointer:
        if first is INDETERMINATE:
            raise Undefined("indeterminate-read", "the pointer member is indeterminate", fpath)
        held = not (first is None and n != 0 and size != 0)
        if auto:
            if not held and v.decision("null_array_base") == "null-dereference":
                raise Undefined("null-dereference", "the pointer array is NULL", fpath)
            # the device must supply the pointer array unless the core allocates it
            ctx.ledger.append(Precondition(fpath, "first_elem || !n_elems || !size", held))
        if not held:
            raise Abort("assertion failed: first_elem || !n_elems || !size", fpath)
    for i in range(max(n, 0)):
        epath = _epath(path, fp, i)
        target = _cell(fp, opaque, first, i)
        esize = size
        if fp.aop:
            container, key = target
            slot = _get(container, key, epath)
            ret, target = _c_load_slot(ctx, fp, container, key, slot, size, epath)
            if ret:
                if v.marker_load == "nullptr":
                    # get_nullptr failed inside the element loop: file error + report
                    f.set_error(ret)
                    ctx.report(f"Failed to load {vmsd.name}:{fp.name}", epath)
                # QEMU 11 vmstate_load_next() returns before the "Failed to load" report
                return ret
            if target is None:
                continue  # NULL element: marker consumed, nothing loaded
            if auto:
                esize = v.auto_load_size(fp.field, size)
                _note_size_mismatch(ctx, fp, esize, epath)
        ret = _c_load_element(ctx, fp, target, esize, epath, opaque)
        if ret >= 0:
            ret = f.error
        if ret < 0:
            f.set_error(ret)
            ctx.report(f"Failed to load {vmsd.name}:{fp.name}", epath)
            return ret
    return 0


#: infos whose wire size is the size argument (the rest ignore it)
_SIZED_KINDS = ("buffer", "unused", "bitmap")


def _note_size_mismatch(ctx: _Ctx, fp: FieldPlan, load_size: int, epath: str) -> None:
    """An auto element is saved with .size but loaded with the size the variant hands
    vmstate_load_field(): for a sized info the two sides disagree."""
    if fp.is_struct or load_size == fp.field.size:
        return
    if fp.info is not None and fp.kind in _SIZED_KINDS:
        ctx.hazard("desync", epath, f"saved with .size {fp.field.size}, loaded with size "
                                    f"{load_size}")


def _c_load_slot(ctx: _Ctx, fp: FieldPlan, container, key, slot, size: int, epath: str):
    """NULL handling of one ARRAY_OF_POINTER slot: (ret, target-or-None).

    Era A/B (vmstate_load_state + get_nullptr): the destination decides; QEMU 11
    (vmstate_load_next + vmstate_ptr_marker_load): auto fields read a marker per slot.
    """
    f = ctx.f
    v = ctx.v
    if fp.auto:
        if slot is INDETERMINATE:
            raise Undefined("indeterminate-read",
                            "the slot-is-NULL assertion reads a non-zeroed pointer array", epath)
        if v.decision("populated_auto_slot") != "overwrite":
            # vmstate_load_next(): assert(!auto_alloc || *pptr == NULL)
            ctx.ledger.append(Precondition(epath, "*pptr == NULL", slot is None))
            if slot is not None:
                raise Abort("assertion failed: !auto_alloc || *pptr == NULL", epath)
        marker = f.get_byte()
        if marker == NULL_MARKER:
            if slot is not None:
                ctx.hazard("stale-slot", epath,
                           "source slot is NULL, destination keeps its object")
            return 0, None
        if marker == VALID_MARKER:
            if slot is not None:
                ctx.hazard("leak", epath, "element allocation overwrote a non-NULL slot")
            return 0, _c_alloc_element(ctx, fp, container, key, epath,
                                       overwrote=slot is not None)
        ctx.report(f"Unexpected ptr marker: {marker}", epath)
        return -EINVAL, None
    if slot is INDETERMINATE:
        raise Undefined("indeterminate-read", "pointer slot is indeterminate (non-zeroed array)",
                        epath)
    if slot is not None:
        return 0, (container, key)
    if v.marker_load == "nullptr":
        if size == 0:
            raise Undefined("null-dereference", "NULL slot with element size 0 is followed",
                            epath)
        if f.get_byte() == NULL_MARKER:
            return 0, None
        ctx.report("vmstate: get_nullptr expected VMS_NULLPTR_MARKER", epath)
        return -EINVAL, None
    marker = f.get_byte()
    if marker == NULL_MARKER:
        return 0, None
    if marker == VALID_MARKER:
        # vmstate_load_next(): assert(auto_alloc) -- a 0x31 for a non-auto field
        if v.decision("stray_valid_marker") == "assert":
            raise Abort("assertion failed: auto_alloc", epath)
        ctx.report(f"Unexpected ptr marker: {marker}", epath)
        return -EINVAL, None
    ctx.report(f"Unexpected ptr marker: {marker}", epath)
    return -EINVAL, None


def _payload_written(fp: FieldPlan) -> bool:
    """Does the save write bytes for a present element saved with .size 0?"""
    if fp.is_struct:
        return True
    return fp.info is None or fp.kind not in _SIZED_KINDS


def _c_alloc_element(ctx: _Ctx, fp: FieldPlan, container, key, epath: str, overwrote: bool):
    """*pptr = g_malloc0(field->size) (vmstate_load_next: the object size, not
    vmstate_size()); a zero-size allocation is NULL, which the loop treats as "skip"."""
    nbytes = fp.field.size
    zeroed = bool(ctx.v.decision("element_alloc_zeroed"))
    if nbytes == 0:
        if overwrote:
            container[key] = None  # the old object is lost, the slot now holds NULL
        if _payload_written(fp):
            ctx.hazard("desync", epath, "g_malloc0(0) returned NULL; the payload is not consumed")
        else:
            ctx.hazard("silent-misparse", epath,
                       "g_malloc0(0) returned NULL; the source's element is dropped")
        return None
    ctx.ledger.append(Allocation(epath, "element", nbytes, zeroed, overwrote))
    if fp.is_struct:
        fresh = zero_struct(fp.vmsd) if zeroed else uninit_struct(fp.vmsd)
    elif fp.kind in ("buffer", "unused"):
        fresh = bytes(nbytes) if zeroed else Uninit(nbytes)
    else:
        fresh = 0 if zeroed else INDETERMINATE
    container[key] = fresh
    if not zeroed:
        ctx.allocated.append((epath, container, key))
    return (container, key)


def _c_load_element(ctx: _Ctx, fp: FieldPlan, target, size: int, epath: str, opaque) -> int:
    container, key = target
    if fp.is_struct:
        elem = _get(container, key, epath)
        if elem is None:
            raise Undefined("null-dereference", "the core loads into a NULL struct", epath)
        if not isinstance(elem, dict):
            raise Undefined("out-of-bounds", "the struct member is not a struct", epath)
        return _c_load_vmsd(ctx, fp.vmsd, elem, fp.sub_version, epath)
    if fp.info is None:
        lookup(fp.field.info)  # KeyError, as the reference's lookup
    return _c_get(ctx, fp, container, key, size, epath, opaque)


def _c_get(ctx: _Ctx, fp: FieldPlan, container, key, size: int, epath: str, opaque) -> int:
    """The get_* functions of migration/vmstate-types.c."""
    f = ctx.f
    info = fp.info
    kind = fp.kind
    if kind == "bool":
        _set(container, key, f.get_byte() != 0, epath)
        return 0
    if kind in ("int", "timer", "double"):
        raw = int.from_bytes(f.get_bytes(info.width), "big")
        _set(container, key, from_unsigned(info, raw), epath)
        return 0
    if kind == "equal":
        loaded = from_unsigned(info, int.from_bytes(f.get_bytes(info.width), "big"))
        current = _get(container, key, epath)
        if is_indeterminate(current):
            raise Undefined("indeterminate-read", "comparing with indeterminate memory", epath)
        if current == loaded:
            return 0
        mask = 0xFFFFFFFFFFFFFFFF if info.width == 8 else 0xFFFFFFFF
        ctx.report(f"{to_unsigned(info, current) & mask:x} != {to_unsigned(info, loaded) & mask:x}",
                   epath)
        return -EINVAL
    if kind == "le":
        loaded = from_unsigned(info, int.from_bytes(f.get_bytes(4), "big"))
        current = _get(container, key, epath)
        if is_indeterminate(current):
            raise Undefined("indeterminate-read", "comparing with indeterminate memory", epath)
        if 0 <= loaded <= current:
            _set(container, key, loaded, epath)
            return 0
        ctx.report(f"Invalid value {loaded} expecting positive value <= {current}", epath)
        return -EINVAL
    if kind == "buffer":
        if size < 0:
            raise Undefined("out-of-bounds", f"negative buffer size {size}", epath)
        current = _get(container, key, epath)
        if current is None and size == 0:
            return 0  # qemu_get_buffer(f, NULL, 0): nothing is written
        if current is None or current is INDETERMINATE:
            raise Undefined("null-dereference", "loading a buffer into NULL", epath)
        capacity = current.nbytes if isinstance(current, Uninit) else len(current)
        # get_buffer -> qemu_get_buffer(): copies what the stream holds (a short read
        # leaves the rest of the buffer as it was and sets -EIO)
        data, got = f.get_buffer(size)
        if got > capacity:
            raise Undefined("out-of-bounds",
                            f"the load writes {got} bytes into a buffer of {capacity}", epath)
        if isinstance(current, Uninit):
            # a partly written non-zeroed buffer stays indeterminate as a whole
            _set(container, key, data if got == capacity else current, epath)
        else:
            _set(container, key, data + bytes(current)[got:], epath)
        return 0
    if kind == "unused":
        f.get_buffer(max(size, 0))
        return 0
    if kind == "bitmap":
        value = 0
        for k in range(bitmap_words(max(size, 0))):
            if f.pos >= f.size:
                f.set_error(-EIO)  # every further word reads as zero: stop here
                break
            value |= f.get_be64() << (64 * k)
        _set(container, key, value, epath)
        return 0
    if kind == "gbytearray":
        length = f.get_be32()
        data, _ = f.get_buffer(length)
        _set(container, key, data, epath)
        return 0
    if kind == "capability":
        length = f.get_byte()
        data, _ = f.get_buffer(length)
        _set(container, key, data.decode("latin-1"), epath)
        return 0
    if kind == "tmp":
        tmp = uninit_struct(fp.vmsd)
        tmp["parent"] = opaque
        return _c_load_vmsd(ctx, fp.vmsd, tmp, fp.field.version_id, epath)
    if kind in ("qtailq", "qlist"):
        return _c_get_queue(ctx, fp, container, key, epath, tail=kind == "qtailq")
    if kind == "gtree":
        return _c_get_gtree(ctx, fp, container, key, epath)
    raise Undefined("out-of-bounds", f"info {info.name} cannot be loaded from a file stream",
                    epath)


def _c_get_queue(ctx: _Ctx, fp: FieldPlan, container, key, epath: str, tail: bool) -> int:
    """get_qtailq / get_qlist: g_malloc'd (not zeroed) elements loaded with the field's
    version; qtailq appends, qlist inserts at the head side in stream order."""
    f = ctx.f
    vmsd = fp.vmsd
    version_id = fp.field.version_id
    if version_id > vmsd.version_id:
        ctx.report(f"{vmsd.name} too new", epath)
        return -EINVAL
    if version_id < vmsd.minimum_version_id:
        ctx.report(f"{vmsd.name} too old", epath)
        return -EINVAL
    queue = _get(container, key, epath)
    if queue is None:
        queue = []
        _set(container, key, queue, epath)
    insert_at = 0
    k = 0
    while f.get_byte():
        elm = uninit_struct(vmsd)
        ctx.ledger.append(Allocation(f"{epath}[{k}]", "element", fp.field.size, False))
        ret = _c_load_vmsd(ctx, vmsd, elm, version_id, f"{epath}[{k}]")
        if ret:
            return ret
        if tail:
            queue.append(elm)
        else:
            queue.insert(insert_at, elm)
            insert_at += 1
        ctx.allocated.append((f"{epath}[{k}]", queue, queue.index(elm)))
        k += 1
    return 0


def _c_get_gtree(ctx: _Ctx, fp: FieldPlan, container, key, epath: str) -> int:
    """get_gtree: versions checked against key and value VMSDs, node count checked."""
    f = ctx.f
    field = fp.field
    version_id = field.version_id
    key_vmsd, val_vmsd = fp.key_vmsd, fp.vmsd
    for d in ((key_vmsd,) if key_vmsd is not None else ()) + (val_vmsd,):
        if version_id > d.version_id:
            ctx.report(f"{d.name} too new", epath)
            return -EINVAL
        if version_id < d.minimum_version_id:
            ctx.report(f"{d.name} too old", epath)
            return -EINVAL
    nnodes = _s32(f.get_be32())
    tree = _get(container, key, epath)
    if tree is None:
        tree = []
        _set(container, key, tree, epath)
    count = 0
    ret = 0
    while f.get_byte():
        count += 1
        if count > nnodes:
            ret = -EINVAL
            break
        npath = f"{epath}[{count - 1}]"
        if key_vmsd is None:
            node_key = f.get_be64()
        else:
            node_key = zero_struct(key_vmsd)
            ctx.ledger.append(Allocation(f"{npath}.key", "element", field.start, True))
            ret = _c_load_vmsd(ctx, key_vmsd, node_key, version_id, f"{npath}.key")
            if ret:
                return ret
        value = zero_struct(val_vmsd)
        ctx.ledger.append(Allocation(npath, "element", field.size, True))
        ret = _c_load_vmsd(ctx, val_vmsd, value, version_id, npath)
        if ret:
            return ret
        _gtree_insert(tree, node_key, value)
    if count != nnodes:
        ctx.report(f"{field.name} inconsistent stream when loading the gtree", epath)
        return -EINVAL
    return ret


def _c_load_subsections(ctx: _Ctx, vmsd: Description, opaque, path: str) -> int:
    """vmstate.c vmstate_subsection_load(): the peek loop."""
    f = ctx.f
    v = ctx.v
    parent = vmsd.name.encode()
    while f.peek_byte(0) == 0x05:
        length = f.peek_byte(1)
        if length < len(parent) + 1:
            return 0  # "subsection name has to be section_name/a"
        idstr = f.peek_buffer(length, 2)
        if len(idstr) != length:
            return 0
        if idstr[: len(parent)] != parent:
            return 0
        name = idstr.decode("latin-1")
        sub = next((s for s in vmsd.subsections if s.name == name), None)
        if sub is None:
            if v.vmdesc_era == "A":
                ctx.locate(f"{path}/@{name}")
            else:
                ctx.report(f"VM subsection '{name}' in '{vmsd.name}' does not exist",
                           f"{path}/@{name}")
            return -ENOENT if v.vmdesc_era == "A" else -EINVAL
        f.skip(2 + length)
        version_id = f.get_be32() & 0xFF  # read into a uint8_t
        ret = _c_load_vmsd(ctx, sub, opaque, version_id, f"{path}/@{name}")
        if ret:
            return ret
    return 0


def _final(ctx: _Ctx, kind: str, op: str, data, state, message, path, ret,
           vmdesc: str | None = None) -> Outcome:
    f = ctx.f
    if kind == ERROR and message is None:
        message = ctx.messages[0] if ctx.messages else f"error {ret}"
    if path is None:
        path = ctx.err_path
    offset = None
    if kind != OK:
        if kind == ERROR and ctx.err_offset is not None:
            offset = ctx.err_offset
        else:
            offset = ctx._pos()
    hazards = list(ctx.hazards)
    if kind == OK and op == "load" and f.error:
        hazards.append(Hazard("sticky-eof", ctx.plan.desc.name, _STICKY_DETAIL))
    return Outcome(kind, op, bytes(data), state, message, tuple(ctx.messages), ret, offset,
                   path if kind != OK else None, tuple(hazards), tuple(ctx.ledger), f.error,
                   vmdesc)


def _complete_save(plan, state, vmdesc: bool) -> Outcome:
    STATS["save_complete"] += 1
    desc = plan.desc
    f = QEMUFileWriter()
    ctx = _Ctx(plan, f, reading=False)
    w = JSONWriter() if vmdesc else None
    opaque = fill_missing(desc, clone(state))
    if w is not None:
        w.start_object(None)
    try:
        ret = _c_save_vmsd(ctx, desc, opaque, w, desc.version_id, desc.name)
    except Abort as exc:
        return _final(ctx, ABORT, "save", f.buf, None, exc.message, exc.path, -1)
    except Undefined as exc:
        ctx.hazard(exc.kind, exc.path, exc.message)
        return _final(ctx, UNDEFINED, "save", f.buf, None, exc.message, exc.path, -1)
    if ret:
        return _final(ctx, ERROR, "save", f.buf, None, None, None, ret)
    text = None
    if w is not None:
        w.end_object()
        text = w.get()
    return _final(ctx, OK, "save", f.buf, None, None, None, 0, text)


def _complete_load(plan, data: bytes, dest, version: int) -> Outcome:
    STATS["load_complete"] += 1
    desc = plan.desc
    f = QEMUFileReader(data)
    ctx = _Ctx(plan, f, reading=True)
    opaque = fill_missing(desc, clone(dest))
    try:
        ret = _c_load_vmsd(ctx, desc, opaque, version, desc.name)
    except Abort as exc:
        return _final(ctx, ABORT, "load", f.data[: f.pos], opaque, exc.message, exc.path, -1)
    except Undefined as exc:
        ctx.hazard(exc.kind, exc.path, exc.message)
        return _final(ctx, UNDEFINED, "load", f.data[: f.pos], opaque, exc.message, exc.path,
                      -1)
    except limits.ModelLimit as exc:
        return _final(ctx, LIMIT, "load", f.data[: f.pos], opaque, exc.message, exc.path, -1)
    if ret:
        f.set_error(ret)
        return _final(ctx, ERROR, "load", f.data[: f.pos], opaque, None, None, ret)
    # core-allocated memory still indeterminate after a successful load is a hazard
    for path, container, key in ctx.allocated:
        try:
            value = container[key]
        except (KeyError, IndexError, TypeError):
            continue
        if _contains_indeterminate(value):
            ctx.hazard("indeterminate-left", path,
                       "memory the core allocated without zeroing was not fully loaded")
    return _final(ctx, OK, "load", f.data[: f.pos], opaque, None, None, 0)


# =======================================================================================
# Runtime helpers the generated code calls (kept small: the hot work is inline)

_IMMUTABLE = (int, bool, str, bytes, float, type(None), type(INDETERMINATE), Uninit)
#: put_bool saves a C bool; only real booleans (and 0/1) take the fast path
_BOOL = {False: 0, True: 1}
_PACKERS: dict[tuple[str, int], struct.Struct] = {}


def _pk(code: str, n: int) -> struct.Struct:
    """Precompiled struct for ``n`` big-endian values of one code (runtime counts)."""
    s = _PACKERS.get((code, n))
    if s is None:
        s = _PACKERS[(code, n)] = struct.Struct(f">{n}{code}")
    return s


def _keep(value, ids):
    """Copy a value the fast load leaves untouched (the reference deep-copies the whole
    destination); source container ids go to ``ids`` so aliasing can be detected."""
    t = value.__class__
    if t in _IMMUTABLE:
        return value
    if t is dict:
        if ids is not None:
            ids.append(id(value))
        return {k: _keep(x, ids) for k, x in value.items()}
    if t is list:
        if ids is not None:
            ids.append(id(value))
        return [_keep(x, ids) for x in value]
    raise Bail


def _fill_values(vmsd: Description, value) -> None:
    """state.fill_missing() on the struct values of one member (a dict or a list)."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            fill_missing(vmsd, item)


def _extras(o: dict, written: frozenset, ids, fill: dict) -> None:
    """Members no fast-path field stored: copy them (the reference deep-copies the
    destination) and complete them as state.fill_missing() does before a load."""
    for k in o.keys() - written:
        value = _keep(o[k], ids)
        field = fill.get(k)
        if field is not None and field.flags & (F.STRUCT | F.VSTRUCT) and field.vmsd:
            _fill_values(field.vmsd, value)
        o[k] = value
    for k, field in fill.items():
        if k not in o:
            o[k] = zero_value(field)


def _tail(lst: list, n: int, ids, vmsd) -> None:
    """Elements past the count: kept (copied) and completed."""
    tail = _keep(lst[n:], ids)
    if vmsd is not None:
        _fill_values(vmsd, tail)
    lst[n:] = tail


def _arr(lst, n: int) -> list:
    """The first n elements of a source list (longer lists keep their tail)."""
    if lst.__class__ is not list or len(lst) < n:
        raise Bail
    return lst[:n]


def _splice(lst, n: int, values, ids) -> list:
    """A loaded array: the first n elements replaced, the tail copied."""
    if lst.__class__ is not list or len(lst) < n:
        raise Bail
    ids.append(id(lst))
    out = [_keep(x, ids) for x in lst[n:]]
    return list(values) + out


def _bufsave(value, size: int) -> bytes:
    if value.__class__ in (bytes, bytearray) and len(value) >= size >= 0:
        return bytes(value[:size])
    raise Bail


def _bufload(current, data: bytes, size: int) -> bytes:
    """get_buffer into a bigger buffer: the tail is kept."""
    if current.__class__ in (bytes, bytearray) and len(current) >= size:
        return data + bytes(current[size:])
    raise Bail


def _subhit(buf: bytes, pos: int, n: int, parent: bytes) -> bool:
    """At buf[pos] == 0x05: would vmstate_subsection_load() do anything but a clean
    "no subsection"?  (A peek past the end sets the sticky error: also trouble.)"""
    if pos + 1 >= n:
        return True
    length = buf[pos + 1]
    if length < len(parent) + 1:
        return False
    if pos + 2 + length > n:
        return True
    return buf[pos + 2: pos + 2 + len(parent)] == parent


def _subfind(buf: bytes, pos: int, n: int, parent: bytes, table: dict):
    """One turn of vmstate_subsection_load() at buf[pos] == 0x05: None for a clean "not a
    subsection of this VMSD", else (index, position after the header, version & 0xFF).
    A peek or read past the end (sticky -EIO) or an unknown name is trouble."""
    if pos + 1 >= n:
        raise Bail
    length = buf[pos + 1]
    if length < len(parent) + 1:
        return None
    if pos + 2 + length > n:
        raise Bail
    idstr = buf[pos + 2: pos + 2 + length]
    if idstr[: len(parent)] != parent:
        return None
    index = table.get(idstr.decode("latin-1"))
    if index is None:
        raise Bail  # "does not exist": an error on the complete path
    pos += 2 + length
    if pos + 4 > n:
        raise Bail
    return index, pos + 4, buf[pos + 3]  # be32 read into a uint8_t


def _count(value, kind: int, multiply: int) -> int:
    """vmstate_n_elems() for a VARRAY counter on the fast path (bails on oddities)."""
    if value.__class__ is not int:
        raise Bail
    if kind == 32:
        n = _s32(value)
    elif kind == 33:
        n = _s32(value & 0xFFFFFFFF)
    elif kind == 16:
        n = value & 0xFFFF
    else:
        n = value & 0xFF
    if multiply:
        n = _s32(n * multiply)
    if n < 0:
        raise Bail
    return n


def _vsize(value, multiply: int) -> int:
    """vmstate_size() for a VBUFFER on the fast path."""
    if value.__class__ is not int:
        raise Bail
    size = _s32(value)
    if multiply:
        size = _s32(size * multiply)
    if size < 0:
        raise Bail
    return size


# =======================================================================================
# Code generation

_SCALAR_KINDS = ("int", "bool", "equal", "le", "timer", "double")
_VARRAY_KIND = {F.VARRAY_INT32: 32, F.VARRAY_UINT32: 33, F.VARRAY_UINT16: 16,
                F.VARRAY_UINT8: 8}


def _code(info: Info) -> str:
    """The struct code of a fixed-width info, derived from infos.packer()."""
    return packer(info).format.lstrip("<>!=@")


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


class _Gen:
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
            elif fp.kind in _SCALAR_KINDS:
                self.save_scalar_array(fp, obj, static_n, count_expr)
            else:
                self.save_flush()
                self.bail(f"{fp.name}: array of {fp.info.name} runs on the complete path")
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
        kind = fp.kind
        if kind in _SCALAR_KINDS:
            self.run.append((_code(fp.info), self.save_scalar_expr(fp, f"{obj}[{m}]")))
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
                      "complete path")

    def save_scalar_expr(self, fp: FieldPlan, expr: str) -> str:
        return f"_BOOL[{expr}]" if fp.kind == "bool" else expr

    def save_scalar_array(self, fp: FieldPlan, obj: str, static_n, count_expr) -> None:
        m = repr(fp.member)
        code = _code(fp.info)
        lst = self.var("L")
        conv = (lambda e: f"map(_BOOL.__getitem__, {e})") if fp.kind == "bool" else (lambda e: e)
        if static_n is not None:
            self.emit(f"{lst} = {obj}.get({m})")
            self.emit(f"if {lst}.__class__ is not list or len({lst}) != {static_n}: "
                      f"{lst} = _arr({lst}, {static_n})")
            if code in ("B", "b") and static_n > 64 and fp.kind != "bool":
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
        if not (fp.is_struct or fp.kind in _SCALAR_KINDS):
            self.bail(f"{fp.name}: pointer array of {fp.info.name} runs on the complete path")
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
            self.run.append((_code(fp.info), self.save_scalar_expr(fp, e)))
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
            self.bail(f"{fp.name}: VMS_ALLOC runs on the complete path")
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
            elif fp.kind in ("int", "bool", "timer", "double"):
                self.load_scalar_array(fp, o, static_n, count_expr)
            else:
                self.load_flush()
                self.bail(f"{fp.name}: array of {fp.info.name} runs on the complete path")
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
        kind = fp.kind
        if kind in _SCALAR_KINDS:
            self.run.append((_code(fp.info), ("store", self.scalar_store(fp, o))))
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
                      "complete path")

    def scalar_store(self, fp: FieldPlan, o: str):
        m = repr(fp.member)
        kind = fp.kind

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
        code = _code(fp.info)
        ids = "ids" if self.track else "None"
        to_list = "[x != 0 for x in {}]" if fp.kind == "bool" else "list({})"
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
        width = fp.info.width
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
        if fp.flags & F.VBUFFER or not (fp.is_struct or fp.kind in ("int", "bool", "timer",
                                                                    "double")):
            self.bail(f"{fp.name}: pointer array of {fp.info.name} runs on the complete path")
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
        width = fp.info.width
        s = self.struct_const(">" + _code(fp.info))
        self.emit(f"if pos + {width} > n: _bail()")
        val = f"{s}.unpack_from(buf, pos)[0]"
        self.emit(f"{lst}[{i}] = {val} != 0" if fp.kind == "bool" else f"{lst}[{i}] = {val}")
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


# =======================================================================================
# Plans and the cache


class Plan:
    """Everything compiled for one (description, variant)."""

    def __init__(self, desc: Description, variant) -> None:
        self.desc = desc
        self.variant = variant
        self._fields: dict[int, list[FieldPlan]] = {}
        problems = check_errors(desc, variant)
        self.rejected = {}
        if problems:
            first = problems[0]
            for op in ("save", "load"):
                self.rejected[op] = Outcome(
                    "rejected", op, message=f"vmstate_check: {first.rule}: {first.message}",
                    messages=tuple(str(p) for p in problems), path=first.path)
        try:
            gen = _Gen(self)
            fname = gen.build_save()
            self.save_fast, self.save_source, _ = gen.compile(fname)
        except Exception as exc:  # noqa: BLE001 - never let compilation fail an operation
            self.save_fast, self.save_source = _declined, f"# no fast save: {exc!r}\n"
        self._loads: dict[int, Any] = {}
        self.load_sources: dict[int, str] = {}

    def fields_of(self, vmsd: Description) -> list[FieldPlan]:
        plans = self._fields.get(id(vmsd))
        if plans is None:
            plans = self._fields[id(vmsd)] = [FieldPlan(f, vmsd, self.variant)
                                              for f in vmsd.fields]
        return plans

    def load_fast(self, version: int):
        fn = self._loads.get(version)
        if fn is None:
            try:
                gen = _Gen(self)
                fname = gen.build_load(version)
                fn, source, _ = gen.compile(fname)
            except Exception as exc:  # noqa: BLE001 - the complete path still answers
                fn, source = _declined, f"# no fast load: {exc!r}\n"
            self._loads[version] = fn
            self.load_sources[version] = source
        return fn


def _declined(*_args):
    """The fast function of a plan whose code generation failed: always decline."""
    raise Bail


_CACHE: dict[int, tuple[Any, dict]] = {}


def compile_plan(desc: Description, variant="legacy") -> Plan:
    """The plan for (desc, variant), compiled once and cached per description object
    (keyed by identity with a weak reference: hashing a deep frozen tree per call would
    cost more than the save itself)."""
    v = _variants.get(variant)
    entry = _CACHE.get(id(desc))
    if entry is None or entry[0]() is not desc:
        key = id(desc)
        ref = weakref.ref(desc, lambda _r, key=key, cache=_CACHE: cache.pop(key, None))
        entry = _CACHE[key] = (ref, {})
    plans = entry[1]
    plan = plans.get(v.name)
    if plan is None:
        plan = plans[v.name] = Plan(desc, v)
    return plan


def dump_source(desc: Description, variant="legacy", version_id: int | None = None) -> str:
    """The generated Python for (desc, variant): the save function and the load function
    for ``version_id`` (default: the description's version)."""
    plan = compile_plan(desc, variant)
    version = desc.version_id if version_id is None else version_id
    plan.load_fast(version)
    return (f"# vmstate plan for {desc.name!r}, variant {plan.variant.name}\n"
            f"# save\n{plan.save_source}\n# load, version {version}\n"
            f"{plan.load_sources[version]}")


# =======================================================================================
# Public API

_OK_SAVE_EMPTY = ()


def save(desc: Description, state, variant="legacy", *, vmdesc: bool = False,
         check: bool = True) -> Outcome:
    """vmstate_save_state(): the bytes ``desc`` writes for ``state`` (not modified)."""
    plan = compile_plan(desc, variant)
    if check and plan.rejected:
        return plan.rejected["save"]
    if not vmdesc:
        try:
            out = plan.save_fast(state)
        except Exception:  # noqa: BLE001 - any trouble: the complete path decides
            pass
        else:
            STATS["save_fast"] += 1
            return Outcome(OK, "save", bytes(out))
    return _complete_save(plan, state, vmdesc)


def load(desc: Description, data: bytes, dest, variant="legacy", *,
         version_id: int | None = None, check: bool = True) -> Outcome:
    """vmstate_load_state(): load ``data`` into a copy of ``dest`` (not modified)."""
    plan = compile_plan(desc, variant)
    if check and plan.rejected:
        return plan.rejected["load"]
    version = desc.version_id if version_id is None else version_id
    buf = data if data.__class__ is bytes else bytes(data)
    try:
        state, pos, sticky, ledger = plan.load_fast(version)(buf, dest)
    except Exception:  # noqa: BLE001 - any trouble: the complete path decides
        pass
    else:
        STATS["load_fast"] += 1
        if sticky:
            return Outcome(OK, "load", buf[:pos], state,
                           hazards=(Hazard("sticky-eof", desc.name, _STICKY_DETAIL),), ledger=tuple(ledger), file_error=-EIO)
        return Outcome(OK, "load", buf[:pos], state, ledger=tuple(ledger))
    return _complete_load(plan, buf, dest, version)



