"""The reference engine: an interpreter that reads like migration/vmstate.c.

It is the executable specification: clarity over speed.  Each function names the QEMU
function whose control flow it follows; comments say which behaviour a branch models.
Variant differences are asked of :class:`conformance.model.variants.Variant` policy points,
never by testing a variant's name.

Control flow is C-like on purpose: codecs return 0 or a negative errno, the QEMUFile
error is sticky, and the callers test both in the same order QEMU does.  Assertions
raise :class:`Abort`; undefined behaviour raises :class:`Undefined`.
"""

from __future__ import annotations

from typing import Any

from conformance.engines._common import (
    Abort,
    Undefined,
    _contains_indeterminate,
    _s32,
)
from conformance.engines.codecs import codec_for
from conformance.engines.qemufile import EINVAL, ENOENT, QEMUFileReader, QEMUFileWriter
from conformance.errors import LimitExceeded
from conformance.migration.jsonwriter import JSONWriter
from conformance.model import limits
from conformance.model import variants as _variants
from conformance.model.check import rejected as check_rejected
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.infos import (
    NULL_MARKER,
    VALID_MARKER,
    Info,
    lookup,
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
    shape_conflicts,
    state_footprint,
    uninit_struct,
    value_shape,
    zero_struct,
)

NAME = "reference"



class _Ctx:
    """Per-operation context: the file, the variant, and what happened on the way."""

    def __init__(self, variant, f) -> None:
        self.v = variant
        self.f = f
        self.messages: list[str] = []
        self.hazards: list[Hazard] = []
        self.ledger: list[Allocation] = []
        self.err_path: str | None = None
        self.err_offset: int | None = None
        self.allocated: list[tuple[str, Any, Any]] = []  # (path, container, key)
        self.spans: list | None = None  # save: (offset, length, path, kind, value)
        self.root = ""
        #: Error **errp (variants whose ``errors`` is "errp"): one message, set where the
        #: failure happens, prepended by callers, printed once by the caller at the end
        self.errp: str | None = None
        #: (id(struct), field name) -> the bitmap size member when that struct's load
        #: began: the bitmap the destination allocated (get_bitmap must stay inside it)
        self.bitmaps: dict[tuple[int, str], int] = {}
        #: what the load's allocations may still hold, and (values, bytes) per struct
        self.budget = limits.LoadBudget()
        #: fields over a member another field holds as another kind of value
        self.conflicts: dict[int, tuple[Field, Field]] = {}
        self._footprints: dict[int, tuple[int, int]] = {}

    def allocate(self, n: int, vmsd, nbytes: int, zeroed: bool, what: str, path: str,
                 kind: str = "element", overwrote: bool = False) -> None:
        """The core allocates ``nbytes`` at ``path`` (an ``Allocation`` in the ledger):
        spend ``n`` structs of ``vmsd`` (None: ``n`` scalars of ``nbytes`` in all) against
        the load's budget, before they are made.  Bytes count where the model
        makes them (zeroed); a non-zeroed buffer is an ``Uninit`` of no size until the
        stream fills it (C's g_malloc of 2 GiB for a 2-byte stream fails on -EIO, not on
        memory).  The optimized engine's fast path allocates only zeroed auto elements
        and spends for them the same (codegen_load.LoadGen.spend)."""
        if vmsd is None:
            self.budget.spend(n, nbytes if zeroed else 0, what, path)
        else:
            footprint = self._footprints.get(id(vmsd))
            if footprint is None:
                try:
                    footprint = state_footprint(vmsd)
                except LimitExceeded as exc:  # one struct past the limits (Python)
                    raise limits.ModelLimit(str(exc), path) from None
                self._footprints[id(vmsd)] = footprint
            self.budget.spend(n * (1 + footprint[0]), n * footprint[1] if zeroed else 0,
                              what, path)
        self.ledger.append(Allocation(path, kind, nbytes, zeroed, overwrote))

    def report(self, message: str, path: str) -> None:
        """error_report(): remember the message; the first one locates the failure."""
        self.messages.append(message)
        if self.err_path is None:
            self.err_path = path
            self.err_offset = self.f.pos if isinstance(self.f, QEMUFileReader) else len(self.f.buf)

    def error_setg(self, message: str, path: str) -> None:
        """error_setg(errp, ...): util/error.c error_setv asserts *errp == NULL."""
        if self.errp is not None:
            raise Abort(f"assertion failed: *errp == NULL (error_setg: {message!r} over "
                        f"{self.errp!r})", path)
        self.errp = message
        self.locate(path)

    def error_prepend(self, prefix: str) -> None:
        if self.errp is not None:
            self.errp = prefix + self.errp

    @property
    def uses_errp(self) -> bool:
        """10.x ("errp") and master ("bool") report through one ``Error **errp``."""
        return self.v.errors != "report"

    def fail(self, report: str | None, errp: str | None, path: str) -> None:
        """A failure vmstate.c reports with error_report() in 7.2 (``report``, None: says
        nothing) and with error_setg() in 10.x / master (``errp``, None: sets nothing)."""
        text = errp if self.uses_errp else report
        if text is None:
            self.locate(path)
        elif self.uses_errp:
            self.error_setg(text, path)
        else:
            self.report(text, path)

    def codec_error(self, text: str, path: str) -> None:
        """An info's own failure message: error_report() up to 10.x, error_setg(errp) in
        a bool-API info's .load/.save (master vmstate-types.c, class M1)."""
        if self.v.errors == "bool":
            self.error_setg(text, path)
        else:
            self.report(text, path)

    def errno(self, ret: int) -> int:
        """The errno a failure carries on: the bool API knows only false, which the int
        wrappers and qemu_file_set_error() callers turn into -EINVAL (class R)."""
        return -EINVAL if ret and self.v.errors == "bool" else ret

    def nested(self, run, path: str, failed=lambda ret: ret != 0, report=None) -> int:
        """A codec's nested vmstate_{load,save}_state(..., &local_err) (get_tmp,
        get_qtailq, put_gtree_elem, ...): error_report_err(local_err) when it failed.
        ``report(ret)``: the line 7.2's codec error_report()s instead (None: nothing).
        Master's bool-API infos hand their ``errp`` to the nested load / save: the Error
        goes up unprinted."""
        if self.v.errors == "bool":
            return run()
        if self.v.errors != "errp":
            ret = run()
            if report is not None and failed(ret):
                self.report(report(ret), path)
            return ret
        outer, self.errp = self.errp, None
        try:
            ret = run()
            if failed(ret) and self.errp is not None:
                self.report(self.errp, path)
        finally:
            self.errp = outer
        return ret

    def messages_out(self) -> tuple[str, ...]:
        """Every error_report() line, then the Error the caller prints (errp style)."""
        return tuple(self.messages) + ((self.errp,) if self.errp is not None else ())

    def bitmap_capacity(self, field: Field, opaque) -> int | None:
        return self.bitmaps.get((id(opaque), field.name))

    def locate(self, path: str) -> None:
        if self.err_path is None:
            self.err_path = path
            self.err_offset = self.f.pos if isinstance(self.f, QEMUFileReader) else len(self.f.buf)

    def hazard(self, kind: str, path: str, detail: str = "") -> None:
        self.hazards.append(Hazard(kind, path, detail))


# ---------------------------------------------------------------------------------------
# Shared helpers: existence, counts, sizes (vmstate_field_exists, vmstate_n_elems,
# vmstate_size)


def _read_member(ctx: _Ctx, opaque, member: str | None, path: str):
    value = opaque.get(member, 0) if isinstance(opaque, dict) else 0
    if is_indeterminate(value):
        raise Undefined("indeterminate-read", f"member {member!r} is indeterminate", path)
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise Undefined("out-of-bounds", f"member {member!r} is not an integer", path)
    return value


def field_exists(field: Field, opaque, version_id: int) -> bool:
    """vmstate.c vmstate_field_exists(): field_exists is the solo truth when set."""
    if field.field_exists is not None:
        return bool(field.field_exists(opaque, version_id))
    return field.version_id <= version_id


def n_elems(ctx: _Ctx, field: Field, opaque, path: str) -> int:
    """vmstate.c vmstate_n_elems(): the count lands in a C int."""
    flags = field.flags
    n = 1
    if flags & F.ARRAY:
        n = field.num
    elif flags & F.VARRAY_INT32:
        n = _s32(_read_member(ctx, opaque, field.num_member, path))
    elif flags & F.VARRAY_UINT32:
        n = _s32(_read_member(ctx, opaque, field.num_member, path) & 0xFFFFFFFF)
    elif flags & F.VARRAY_UINT16:
        n = _read_member(ctx, opaque, field.num_member, path) & 0xFFFF
    elif flags & F.VARRAY_UINT8:
        n = _read_member(ctx, opaque, field.num_member, path) & 0xFF
    if ctx.v.n_elems_multiplied(field):  # master's vmstate_n_elems() ignores it (X)
        n = _s32(n * field.num)
    return n


def field_size(ctx: _Ctx, field: Field, opaque, path: str) -> int:
    """vmstate.c vmstate_size(): VBUFFER sizes are read as int32 whatever the member."""
    size = field.size
    if field.flags & F.VBUFFER:
        size = _s32(_read_member(ctx, opaque, field.size_member, path))
        if field.flags & F.MULTIPLY:
            size = _s32(size * field.size)
    return size


def _elem_path(path: str, field: Field, i: int) -> str:
    return f"{path}/{field.name}[{i}]" if field.is_array else f"{path}/{field.name}"


def _hook_failed(ctx: _Ctx, ret) -> bool:
    return ctx.v.post_hook_failed(int(ret or 0))


def _call_hook(hook, opaque, *args) -> int:
    return int(hook(opaque, *args) or 0)


# ---------------------------------------------------------------------------------------
# Element access.  A "first" is what the field's base resolves to: the member value, or
# the pointee when VMS_POINTER is set.  Element i lives at (container, key).


class _Self:
    """The container of a field with no member of its own (offset 0: VMSTATE_UNUSED,
    VMSTATE_WITH_TMP): its element is the opaque itself."""

    __slots__ = ("opaque",)

    def __init__(self, opaque) -> None:
        self.opaque = opaque


def _elements_container(field: Field, opaque, first, size: int):
    """(container, key-of-element) factory for element i.

    vmstate.c (7.2, 10.x and master alike: vmstate_save_state_v / vmstate_load_state /
    vmstate_load_next) addresses element i as ``first_elem + size * i`` with the size
    vmstate_size() gives: with size 0 every element is element 0 (a pointer array of
    ``.size`` 0 under the stride convention saves and loads slot 0 n times)."""
    if field.member is None:
        return lambda i: (_Self(opaque), None)
    if field.is_array:
        if size == 0:
            return lambda i: (first, 0)
        return lambda i: (first, i)
    return lambda i: (opaque, field.member)


def _slot(field: Field, size: int, i: int) -> int:
    """The index of the element C touches on the loop's i-th turn (see
    _elements_container): what paths name."""
    return 0 if size == 0 and field.is_array and field.member is not None else i


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
    else:
        container[key] = value


# ---------------------------------------------------------------------------------------
# vmdesc helpers (vmsd_desc_field_start / _end, vmsd_can_compress, vmfield_name_*)


def can_compress(field: Field, variant) -> bool:
    """vmstate.c vmsd_can_compress()."""
    if field.field_exists is not None:
        return False
    if variant.is_auto(field):
        # QEMU 11 (AUTO_ALLOC) and the alloc RFC (ARRAY_OF_POINTER|ALLOC) alike
        return False
    if field.flags & F.STRUCT and field.vmsd is not None:
        if not all(can_compress(sub, variant) for sub in field.vmsd.fields):
            return False
        if field.vmsd.subsections:
            return False
    return True


def _desc_name(vmsd: Description, field: Field, fake: bool) -> str:
    """vmfield_name_is_unique / vmfield_name_num: a temporary marker field is not in the
    list, so a non-unique name gets the index -1."""
    same = [f for f in vmsd.fields if f.name == field.name]
    if len(same) <= 1:
        return field.name
    if fake:
        return f"{field.name}[-1]"
    for k, f in enumerate(same):
        if f is field:
            return f"{field.name}[{k}]"
    return f"{field.name}[-1]"


def _type_name(field: Field) -> str:
    """vmstate.c vmfield_get_type_name()."""
    if field.flags & F.STRUCT:
        return "struct"
    if field.flags & F.VSTRUCT:
        return "vstruct"
    return field.info or "unknown"


def _desc_start(w: JSONWriter | None, vmsd, field, i, max_elems, *, type_name=None,
                fake=False, compressible=True) -> None:
    if w is None:
        return
    w.start_object(None)
    w.str("name", _desc_name(vmsd, field, fake))
    if max_elems > 1:
        if compressible:
            w.int64("array_len", max_elems)
        else:
            w.int64("index", i)
    w.str("type", type_name or _type_name(field))
    if type_name is None and field.flags & F.STRUCT:
        w.start_object("struct")


def _desc_end(w: JSONWriter | None, field, size: int, *, fake=False) -> None:
    if w is None:
        return
    if not fake and field.flags & F.STRUCT:
        w.end_object()
    w.int64("size", size)
    w.end_object()


# ---------------------------------------------------------------------------------------
# Save: vmstate_save_state_v


def _save_vmsd(ctx: _Ctx, vmsd: Description, opaque, w: JSONWriter | None, version_id: int,
               path: str) -> int:
    v = ctx.v
    if vmsd.pre_save is not None:
        ret = _call_hook(vmsd.pre_save, opaque)
        if _hook_failed(ctx, ret):
            ctx.fail(f"pre-save failed: {vmsd.name}", f"pre-save failed: {vmsd.name}", path)
            return ret
    if w is not None:
        w.str("vmsd_name", vmsd.name)
        w.int64("version", version_id)
        w.start_array("fields")

    for field in vmsd.fields:
        fpath = f"{path}/{field.name}"
        if field_exists(field, opaque, version_id):
            ret = _save_field(ctx, vmsd, field, opaque, w, fpath, path)
            if ret:
                text = f"Save of field {vmsd.name}/{field.name} failed"
                if v.errors == "bool":
                    # master vmstate_save_field_with_vmdesc(): error_prepend, not setg
                    ctx.error_prepend(text + ": ")
                    ctx.locate(fpath)
                else:
                    ctx.fail(text, text, fpath)
                if vmsd.post_save is not None:
                    _call_hook(vmsd.post_save, opaque)
                return ret
        elif field.flags & F.MUST_EXIST:
            # vmstate_save_state_v: error_report + assert(!(flags & VMS_MUST_EXIST))
            ctx.report(f"Output state validation failed: {vmsd.name}/{field.name}", fpath)
            raise Abort("assertion failed: !(field->flags & VMS_MUST_EXIST)", fpath)
    _check_terminator(v, vmsd, path)
    if w is not None:
        w.end_array()

    ret = _save_subsections(ctx, vmsd, opaque, w, path)
    if vmsd.post_save is not None:
        ps_ret = _call_hook(vmsd.post_save, opaque)
        # master vmstate_save_vmsd_v() ignores post_save's result (P2)
        if not ret and v.post_save_result == "checked" and _hook_failed(ctx, ps_ret):
            ret = ps_ret
            # 7.2 returns post_save's result without a word; 10.x error_setg()s
            ctx.fail(None, f"post-save failed: {vmsd.name}", path)
    return ret


def _null_with_size_zero(field: Field, first, n: int, fpath: str) -> None:
    """A NULL POINTER member with elements to walk passes the base assertion only when
    the size is 0 (vmstate.c vmstate_save_state / vmstate_load_state).  The element loop
    then hands the codec NULL + 0 * i: a sized codec (buffer, unused, bitmap) touches 0
    bytes, which is harmless for one element (the model keeps it); a scalar codec or a
    struct with fields writes through NULL (QEMU's C segfaults), and an array has no
    elements to index.  Found by fuzz --target case."""
    if first is not None or n <= 0:
        return
    if field.is_struct:
        touches = field.vmsd is None or bool(field.vmsd.fields or field.vmsd.subsections)
    else:
        touches = field.info is None or not codec_for(field.info).sized
    if touches or field.is_array or field.flags & F.ARRAY_OF_POINTER:
        raise Undefined("null-dereference", f"the pointer member is NULL and {n} "
                        "element(s) of size 0 are accessed through it", fpath)


def _check_terminator(v, vmsd: Description, path: str) -> None:
    """assert(field->flags == VMS_END) after the field loop (QEMU >= 8.0 only)."""
    if v.vms_end is not None and vmsd.terminator is not None and vmsd.terminator != v.vms_end:
        raise Abort("assertion failed: field->flags == VMS_END", f"{path}/(end)")


def _one_value_per_member(ctx: _Ctx, field: Field, fpath: str) -> None:
    """ModelLimit for a field laid over a member its first field holds as another kind
    of value (state.shape_conflicts)."""
    if ctx.conflicts and id(field) in ctx.conflicts:
        first = ctx.conflicts[id(field)][1]
        raise limits.ModelLimit(
            f"field {field.name!r} ({_shape_text(field)}) shares its member with field "
            f"{first.name!r} ({_shape_text(first)}): the model holds one value per member "
            "and does not reinterpret its bytes", fpath)


def _shape_text(field: Field) -> str:
    many, element = value_shape(field)
    return f"an array of {element}" if many else element


def _save_field(ctx: _Ctx, vmsd, field: Field, opaque, w, fpath: str, path: str) -> int:
    _one_value_per_member(ctx, field, fpath)
    f: QEMUFileWriter = ctx.f
    v = ctx.v
    n = n_elems(ctx, field, opaque, fpath)
    size = v.element_size(field, field_size(ctx, field, opaque, fpath))
    auto = v.is_auto(field)
    first = opaque.get(field.member) if field.member is not None and isinstance(opaque, dict) else None
    if field.flags & F.POINTER:
        if first is INDETERMINATE:
            raise Undefined("indeterminate-read", "the pointer member is indeterminate", fpath)
        if first is None and n != 0 and size != 0:
            raise Abort("assertion failed: first_elem || !n_elems || !size", fpath)
        _null_with_size_zero(field, first, n, fpath)
    cell = _elements_container(field, opaque, first, size)
    compressible = can_compress(field, v)
    era = v.vmdesc_era
    w_loop = w
    prev_null = False
    for i in range(max(n, 0)):
        epath = _elem_path(path, field, _slot(field, size, i))
        container, key = cell(i)
        elem = _get(container, key, epath)
        is_null = False
        if field.flags & F.ARRAY_OF_POINTER:
            if elem is INDETERMINATE:
                raise Undefined("indeterminate-read", "pointer slot is indeterminate", epath)
            is_null = elem is None and size != 0
        # How many elements this vmdesc entry stands for (vmsd_desc_field_start's max).
        runs = era == "B" or (era == "C" and compressible)
        # era A (7.2): vmsd_desc_field_start(..., i, n_elems), the whole count each time
        max_elems = n if era == "A" else (n - i if runs else 1)
        if (era != "A" and field.flags & F.ARRAY_OF_POINTER and is_null != prev_null
                and (era == "B" or max_elems > 1)):
            # 2025 "Fix arrays of pointers in JSON writer": a new entry per null/non-null
            # run; the run is only searched when null-ness changes (prev starts non-NULL).
            # Era C (QEMU master vmstate_save_vmsd_v) switches only while max_elems > 1:
            # a last element after a compressed run gets no entry (class V, probably a
            # QEMU bug: docs/variants.md)
            prev_null = is_null
            w_loop = w
            if runs:
                for j in range(i + 1, n):
                    other = _get(*cell(j), epath)  # *(void **)(first_elem + size * j)
                    if (other is None and size != 0) != is_null:
                        max_elems = j - i
                        break
        start = f.transferred
        ret = 0
        if auto:
            # QEMU 11 use_dynamic_array: a marker first, then the object (size = .size)
            _desc_start(w_loop, vmsd, field, i, max_elems, type_name="ptr-marker", fake=True)
            f.put_byte(NULL_MARKER if elem is None else VALID_MARKER)
            _span(ctx, start, epath, "marker", NULL_MARKER if elem is None else VALID_MARKER)
            _desc_end(w_loop, field, f.transferred - start, fake=True)
            if elem is not None:
                start = f.transferred
                _desc_start(w_loop, vmsd, field, i, max_elems, compressible=compressible)
                ret = _save_element(ctx, field, elem, field.size, w_loop, epath, opaque)
                _span(ctx, start, epath, "element", elem)
                _desc_end(w_loop, field, f.transferred - start)
        elif is_null:
            # vmstate_info_nullptr.put / the fake marker field: one 0x30 byte
            if era == "A":  # the entry keeps the real field's type (fixed in 2025)
                _desc_start(w_loop, vmsd, field, i, max_elems, compressible=compressible)
                f.put_byte(NULL_MARKER)
                _desc_end(w_loop, field, f.transferred - start)
            else:
                _desc_start(w_loop, vmsd, field, i, max_elems, fake=True,
                            type_name="nullptr" if era == "B" else "ptr-marker")
                f.put_byte(NULL_MARKER)
                _desc_end(w_loop, field, f.transferred - start, fake=True)
            _span(ctx, start, epath, "marker", NULL_MARKER)
        else:
            _desc_start(w_loop, vmsd, field, i, max_elems, compressible=compressible)
            if elem is None and not _null_ok(field, size):
                # a NULL slot with element size 0, or a NULL single pointer: followed
                raise Undefined("null-dereference", "the core follows a NULL pointer", epath)
            ret = _save_element(ctx, field, elem, size, w_loop, epath, opaque)
            _span(ctx, start, epath, "element", elem)
            _desc_end(w_loop, field, f.transferred - start)
        if ret:
            return ret
        # "Compressed arrays only care about the first element"
        if w_loop is not None and (max_elems > 1 if era == "C" else compressible):
            w_loop = None
    return 0


def _span(ctx: _Ctx, start: int, epath: str, kind: str, value) -> None:
    """conformance.golden.annotate: record (offset, length, path) of what was just written."""
    if ctx.spans is not None:
        ctx.spans.append((start, ctx.f.transferred - start, epath, kind, value))


def _null_ok(field: Field, size: int) -> bool:
    """A NULL base with element size 0 reaches info->put/get (the assertion allows it);
    the buffer codecs then copy 0 bytes and never dereference it (VMSTATE_VBUFFER whose
    size member is 0 and whose pointer was never allocated)."""
    info = field.info_obj
    return (size == 0 and not field.flags & (F.STRUCT | F.VSTRUCT | F.ARRAY_OF_POINTER)
            and info is not None and info.kind in ("buffer", "unused"))


def _save_element(ctx: _Ctx, field: Field, elem, size: int, w, epath: str, opaque) -> int:
    """One element: recurse for structs, else the info's put()."""
    if field.flags & F.STRUCT:
        return _save_vmsd(ctx, field.vmsd, elem, w, field.vmsd.version_id, epath)
    if field.flags & F.VSTRUCT:
        return _save_vmsd(ctx, field.vmsd, elem, w, field.struct_version_id, epath)
    return _put_info(ctx, field, lookup(field.info), elem, size, w, epath, opaque)


def _put_info(ctx: _Ctx, field: Field, info: Info, value, size: int, w, epath: str,
              opaque) -> int:
    """vmstate_save_field's info->put(): the codec of vmstate-types.c (engines/codecs)."""
    return codec_for(info).put(ctx, field, value, size, w, epath, opaque)


def _save_subsections(ctx: _Ctx, vmsd: Description, opaque, w, path: str) -> int:
    """vmstate.c vmstate_subsection_save()."""
    f: QEMUFileWriter = ctx.f
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
        f.put_byte(0x05)  # QEMU_VM_SUBSECTION
        name = sub.name.encode()
        f.put_byte(len(name) & 0xFF)
        f.put_buffer(name[: len(name) & 0xFF])
        f.put_be32(sub.version_id)
        ret = _save_vmsd(ctx, sub, opaque, w, sub.version_id, f"{path}/@{sub.name}")
        if ret:
            return ret
        if w is not None:
            w.end_object()
    if opened:
        w.end_array()
    return ret


# ---------------------------------------------------------------------------------------
# Load: vmstate_load_state


def _load_vmsd(ctx: _Ctx, vmsd: Description, opaque, version_id: int, path: str) -> int:
    f: QEMUFileReader = ctx.f
    v = ctx.v
    if version_id > vmsd.version_id:
        text = (f"{vmsd.name}: incoming version_id {version_id} is too new for local "
                f"version_id {vmsd.version_id}")
        ctx.fail(text, text, path)
        return -EINVAL
    if version_id < vmsd.minimum_version_id:
        text = f"{vmsd.name}: incoming version_id {version_id} is too old for local minimum"
        # 7.2 prints two spaces before the number, 10.x one
        ctx.fail(f"{text} version_id  {vmsd.minimum_version_id}",
                 f"{text} version_id {vmsd.minimum_version_id}", path)
        return -EINVAL
    if vmsd.pre_load is not None:
        ret = _call_hook(vmsd.pre_load, opaque)
        if ret:
            ctx.fail(None, f"pre load hook failed for: '{vmsd.name}', version_id: "
                           f"{vmsd.version_id}, minimum version_id: "
                           f"{vmsd.minimum_version_id}, ret: {ret}", path)
            return ret
    for field in vmsd.fields:
        if field.info == "bitmap" and field.size_member is not None:
            # the device allocated its bitmap for the size it had before the load
            size = opaque.get(field.size_member) if isinstance(opaque, dict) else None
            if isinstance(size, int):
                ctx.bitmaps[(id(opaque), field.name)] = _s32(size)
    for field in vmsd.fields:
        fpath = f"{path}/{field.name}"
        if field_exists(field, opaque, version_id):
            ret = _load_field(ctx, vmsd, field, opaque, fpath, path)
            if ret:
                return ret
        elif field.flags & F.MUST_EXIST:
            ctx.fail(f"Input validation failed: {vmsd.name}/{field.name}",
                     f"Input validation failed: {vmsd.name}/{field.name} version_id: "
                     f"{vmsd.version_id}", fpath)
            return -1
    _check_terminator(v, vmsd, path)
    ret = _load_subsections(ctx, vmsd, opaque, path)
    if ret != 0:
        if ctx.uses_errp:
            # 8.0+: qemu_file_set_error(f, ret) (master: -EINVAL); 7.2 only returns
            f.set_error(ctx.errno(ret))
        return ret
    if vmsd.post_load is not None:
        ret = _call_hook(vmsd.post_load, opaque, version_id)
        if _hook_failed(ctx, ret):
            if ret < 0:
                ctx.fail(None, f"post load hook failed for: {vmsd.name}, version_id: "
                               f"{vmsd.version_id}, minimum_version: "
                               f"{vmsd.minimum_version_id}, ret: {ret}", path)
            else:
                ctx.locate(path)
            return ret
    return 0


def _alloc_array(ctx: _Ctx, field: Field, opaque, n: int, size: int, fpath: str) -> None:
    """vmstate_handle_alloc(): g_malloc(size * n) into the member; the old pointer is
    overwritten, not freed."""
    nbytes = ((size & 0xFFFFFFFFFFFFFFFF) * (n & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
    if not nbytes:
        return
    if nbytes > limits.MALLOC_LIMIT:
        raise Abort(f"GLib: failed to allocate {nbytes} bytes", fpath)
    limits.check_array_allocation(n, nbytes, fpath)
    struct = field.vmsd if field.flags & (F.STRUCT | F.VSTRUCT) else None
    if field.is_array and field.flags & F.ARRAY_OF_POINTER:
        struct = None  # the array of pointers; their structs come one by one
    zeroed = bool(ctx.v.decisions.get("array_alloc_zeroed", False))
    old = opaque.get(field.member)
    overwrote = old is not None and old is not INDETERMINATE
    ctx.allocate(n if field.is_array else 1, struct, nbytes, zeroed,
                 f"VMS_ALLOC of {n if field.is_array else 1} x {size} bytes", fpath,
                 "array", overwrote)
    if overwrote:
        ctx.hazard("leak", fpath, "VMS_ALLOC overwrote a non-NULL pointer")
    if field.is_array:
        if field.flags & F.ARRAY_OF_POINTER:
            fresh = [None if zeroed else INDETERMINATE for _ in range(n)]
        elif field.flags & (F.STRUCT | F.VSTRUCT):
            make = zero_struct if zeroed else uninit_struct
            fresh = [make(field.vmsd) for _ in range(n)]
        else:
            fresh = [0 if zeroed else INDETERMINATE for _ in range(n)]
    elif field.flags & (F.STRUCT | F.VSTRUCT):
        fresh = zero_struct(field.vmsd) if zeroed else uninit_struct(field.vmsd)
    else:
        fresh = bytes(nbytes) if zeroed else Uninit(nbytes)
    opaque[field.member] = fresh
    ctx.allocated.append((fpath, opaque, field.member))


def _load_field(ctx: _Ctx, vmsd, field: Field, opaque, fpath: str, path: str) -> int:
    _one_value_per_member(ctx, field, fpath)
    v = ctx.v
    n = n_elems(ctx, field, opaque, fpath)
    raw_size = field_size(ctx, field, opaque, fpath)
    size = v.element_size(field, raw_size)
    if v.allocates_array(field):
        _alloc_array(ctx, field, opaque, n, size, fpath)
    first = opaque.get(field.member) if field.member is not None and isinstance(opaque, dict) else None
    auto = v.is_auto(field)
    if field.flags & F.POINTER:
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
        if (first is None and size == 0 and not field.flags & F.ARRAY_OF_POINTER
                and v.decision("null_element_skipped_on_load")):
            return 0  # every element address is NULL + 0 * i: master skips them all
        _null_with_size_zero(field, first, n, fpath)
    cell = _elements_container(field, opaque, first, size)
    for i in range(max(n, 0)):
        epath = _elem_path(path, field, _slot(field, size, i))
        container, key = cell(i)
        target = (container, key)
        esize = size
        if field.flags & F.ARRAY_OF_POINTER:
            slot = _get(container, key, epath)
            ret, target = _load_pointer_slot(ctx, field, container, key, slot, size, auto, epath)
            if ret:
                if v.marker_load == "nullptr":
                    # get_nullptr (the fake nullptr field) failed inside the element loop
                    _element_failed(ctx, vmsd, field, ret, epath, v.marker_info_name)
                # QEMU 11 vmstate_load_next() returns false before the element loop's
                # "Failed to load" report: the marker error is the only message
                elif v.decision("marker_error_sets_file_error"):
                    ctx.f.set_error(ret)
                return ret
            if target is None:
                continue  # NULL element: skipped (marker consumed)
            if auto:
                esize = v.auto_load_size(field, size)
                _note_size_mismatch(ctx, field, esize, epath)
        ret = _load_element(ctx, field, target, esize, epath, opaque)
        ret = _element_failed(ctx, vmsd, field, ret, epath,
                              None if field.is_struct else field.info)
        if ret < 0:
            return ret
    return 0


def _element_failed(ctx: _Ctx, vmsd, field: Field, ret: int, epath: str,
                    info_name: str | None) -> int:
    """The end of one element in vmstate_load_state's loop: a codec error, else the
    file's sticky error, fails the load and sets the file error.  7.2 error_report()s
    "Failed to load D:F" at every level; 10.x error_setg()s where the failure is (a
    codec's element, or the stream error), and a failed nested struct adds nothing.
    ``info_name`` is None for a struct element."""
    f = ctx.f
    if ctx.v.errors == "bool":
        # master vmstate_load_vmsd(): a failed vmstate_load_field() sets -EINVAL (the
        # info's .load or the nested VMSD set the Error); only a get-only info gets
        # vmstate_load_field()'s "Failed to load element of type T for F" (M1)
        if ret < 0 and info_name in GET_PUT_ONLY_INFOS:
            ctx.error_setg(f"Failed to load element of type {info_name} for {field.name}",
                           epath)
        elif ret >= 0:
            ret = f.error
            if ret < 0:
                ctx.error_setg(f"Failed to load {vmsd.name} state: stream error: {ret}",
                               epath)
                return ret
        if ret < 0:
            f.set_error(-EINVAL)
        return ret
    if ctx.v.errors == "errp":
        if ret < 0 and info_name is not None:
            ctx.error_setg(f"Failed to load element of type {info_name} for {field.name}: "
                           f"{ret}", epath)
        elif ret >= 0:
            ret = f.error
            if ret < 0:
                ctx.error_setg(f"Failed to load {vmsd.name} state: stream error: {ret}",
                               epath)
    else:
        if ret >= 0:
            ret = f.error
        if ret < 0:
            ctx.report(f"Failed to load {vmsd.name}:{field.name}", epath)
    if ret < 0:
        f.set_error(ret)
    return ret


#: master vmstate-types.c infos still on the get/put API (vmstate_load_field() wraps
#: their failure); every other info there has bool .load/.save
GET_PUT_ONLY_INFOS = frozenset({"GByteArray"})


def _note_size_mismatch(ctx: _Ctx, field: Field, load_size: int, epath: str) -> None:
    """An auto element is saved with .size (the object size) but loaded with the size the
    variant hands vmstate_load_field(): for a sized info the two sides disagree."""
    if field.flags & (F.STRUCT | F.VSTRUCT) or load_size == field.size:
        return
    if field.info is not None and codec_for(field.info).sized:
        ctx.hazard("desync", epath, f"saved with .size {field.size}, loaded with size "
                                    f"{load_size}")


def _load_pointer_slot(ctx: _Ctx, field: Field, container, key, slot, size: int, auto: bool,
                       epath: str):
    """NULL handling of one ARRAY_OF_POINTER slot; returns (ret, target-or-None).

    Era A/B (vmstate_load_state + get_nullptr): the destination decides; a NULL slot
    reads one byte that must be 0x30.  QEMU 11 (vmstate_load_next +
    vmstate_ptr_marker_load): a NULL slot reads a marker, 0x31 allocates when the field
    is auto-allocating.  Auto fields read a marker for every slot.
    """
    f: QEMUFileReader = ctx.f
    v = ctx.v
    if auto:
        if slot is INDETERMINATE:
            # assert(*pptr == NULL) on a g_malloc'd (non-zeroed) pointer array
            raise Undefined("indeterminate-read",
                            "the slot-is-NULL assertion reads a non-zeroed pointer array", epath)
        overwrite = v.decision("populated_auto_slot") == "overwrite"
        if not overwrite:
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
            return 0, _alloc_element(ctx, field, container, key, epath,
                                     overwrote=slot is not None)
        _marker_error(ctx, marker, epath)
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
        _marker_error(ctx, marker, epath)
        return -EINVAL, None
    _marker_error(ctx, marker, epath)
    return -EINVAL, None


def _marker_error(ctx: _Ctx, marker: int, epath: str) -> None:
    """vmstate_ptr_marker_load(): error_setg(errp, "Unexpected ptr marker: %d") -- an
    Error, which a subsection's load prefixes (class M3)."""
    text = f"Unexpected ptr marker: {marker}"
    ctx.fail(text, text, epath)


def _alloc_element(ctx: _Ctx, field: Field, container, key, epath: str, overwrote: bool):
    """*pptr = g_malloc0(field->size) (vmstate_load_next; "do not use vmstate_size() here,
    because we need the object size"); a zero-size allocation is NULL, which the loop
    treats as "skip": the payload the source wrote is not consumed."""
    nbytes = field.size
    zeroed = bool(ctx.v.decision("element_alloc_zeroed"))
    if nbytes == 0:
        if overwrote:
            container[key] = None  # the old object is lost, the slot now holds NULL
        if _payload_written(field):
            ctx.hazard("desync", epath, "g_malloc0(0) returned NULL; the payload is not consumed")
        else:
            ctx.hazard("silent-misparse", epath,
                       "g_malloc0(0) returned NULL; the source's element is dropped")
        return None
    struct = field.vmsd if field.flags & (F.STRUCT | F.VSTRUCT) else None
    ctx.allocate(1, struct, nbytes, zeroed, f"the element of {nbytes} bytes", epath,
                 overwrote=overwrote)
    if struct is not None:
        fresh = zero_struct(field.vmsd) if zeroed else uninit_struct(field.vmsd)
    else:
        info = lookup(field.info)
        if info.kind in ("buffer", "unused"):
            fresh = bytes(nbytes) if zeroed else Uninit(nbytes)
        else:
            fresh = 0 if zeroed else INDETERMINATE
    container[key] = fresh
    if not zeroed:
        ctx.allocated.append((epath, container, key))
    return (container, key)


def _payload_written(field: Field) -> bool:
    """Does the save write bytes for a present element saved with .size 0?"""
    if field.flags & (F.STRUCT | F.VSTRUCT):
        return True
    return field.info is None or not codec_for(field.info).sized


def _load_element(ctx: _Ctx, field: Field, target, size: int, epath: str, opaque) -> int:
    container, key = target
    if field.flags & (F.STRUCT | F.VSTRUCT):
        elem = _get(container, key, epath)
        if elem is None:
            raise Undefined("null-dereference", "the core loads into a NULL struct", epath)
        if not isinstance(elem, dict):
            raise Undefined("out-of-bounds", "the struct member is not a struct", epath)
        version = field.vmsd.version_id if field.flags & F.STRUCT else field.struct_version_id
        return _load_vmsd(ctx, field.vmsd, elem, version, epath)
    return _get_info(ctx, field, lookup(field.info), container, key, size, epath, opaque)


def _get_info(ctx: _Ctx, field: Field, info: Info, container, key, size: int, epath: str,
              opaque) -> int:
    """vmstate_load_field's info->get(): the codec of vmstate-types.c (engines/codecs)."""
    return codec_for(info).get(ctx, field, container, key, size, epath, opaque)


def _load_subsections(ctx: _Ctx, vmsd: Description, opaque, path: str) -> int:
    """vmstate.c vmstate_subsection_load(): a heuristic peek loop."""
    f: QEMUFileReader = ctx.f
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
        # idstr is a C string: vmstate_get_subsection()'s strcmp stops at a NUL and
        # compares bytes with vmsd->name, whose bytes are what the save wrote (UTF-8)
        raw = idstr.split(b"\0", 1)[0]
        sub = next((s for s in vmsd.subsections if s.name.encode() == raw), None)
        if sub is None:
            # -ENOENT in every release; 7.2 only traces it, 10.x error_setg()s the raw
            # bytes of the id (shown as UTF-8, like the terminal QEMU prints to)
            shown = raw.decode("utf-8", "replace")
            ctx.fail(None, f"VM subsection '{shown}' in '{vmsd.name}' does not exist",
                     f"{path}/@{shown}")
            return ctx.errno(-ENOENT)  # master: false, i.e. -EINVAL (S)
        name = sub.name
        f.skip(1)
        f.skip(1)
        f.skip(length)
        version_id = f.get_be32() & 0xFF  # read into a uint8_t
        ret = _load_vmsd(ctx, sub, opaque, version_id, f"{path}/@{name}")
        if ret:
            # master's prefix has no errno (M2)
            errno = "" if v.errors == "bool" else f"{ret}: "
            ctx.error_prepend(f"Loading VM subsection '{name}' in '{vmsd.name}' failed: "
                              f"{errno}")
            return ret
    return 0


# ---------------------------------------------------------------------------------------
# Public API


def save(desc: Description, state, variant="legacy", *, vmdesc: bool = False,
         check: bool = True) -> Outcome:
    """vmstate_save_state(): the bytes ``desc`` writes for ``state`` (not modified)."""
    v = _variants.get(variant)
    if check:
        rejected = check_rejected(desc, v, "save")
        if rejected is not None:
            return rejected
    f = QEMUFileWriter()
    ctx = _Ctx(v, f)
    ctx.conflicts = shape_conflicts(desc)
    w = JSONWriter() if vmdesc else None
    opaque = fill_missing(desc, clone(state))
    if w is not None:
        w.start_object(None)
    try:
        ret = _save_vmsd(ctx, desc, opaque, w, desc.version_id, desc.name)
        ret = ctx.errno(ret)  # vmstate_save_state(): 0 or the errno (master: -EINVAL)
    except Abort as exc:
        return _final(ctx, ABORT, "save", f.getvalue(), None, exc.message, exc.path, -1)
    except Undefined as exc:
        ctx.hazard(exc.kind, exc.path, exc.message)
        return _final(ctx, UNDEFINED, "save", f.getvalue(), None, exc.message, exc.path, -1)
    except limits.ModelLimit as exc:
        return _final(ctx, LIMIT, "save", f.getvalue(), None, exc.message, exc.path, -1)
    if ret:
        return _final(ctx, ERROR, "save", f.getvalue(), None, None, None, ret)
    text = None
    if w is not None:
        w.end_object()
        text = w.get()
    out = _final(ctx, OK, "save", f.getvalue(), None, None, None, 0)
    return Outcome(**{**_fields(out), "vmdesc": text})


def load(desc: Description, data: bytes, dest, variant="legacy", *,
         version_id: int | None = None, check: bool = True) -> Outcome:
    """vmstate_load_state(): load ``data`` into a copy of ``dest`` (which is not modified)."""
    v = _variants.get(variant)
    if check:
        rejected = check_rejected(desc, v, "load")
        if rejected is not None:
            return rejected
    f = QEMUFileReader(data, refill_after_error=v.refill_after_error)
    ctx = _Ctx(v, f)
    ctx.root = desc.name
    ctx.conflicts = shape_conflicts(desc)
    opaque = fill_missing(desc, clone(dest))
    version = desc.version_id if version_id is None else version_id
    try:
        ret = _load_vmsd(ctx, desc, opaque, version, desc.name)
        ret = ctx.errno(ret)  # vmstate_load_state(): 0 or the errno (master: -EINVAL)
    except Abort as exc:
        return _final(ctx, ABORT, "load", f.data[: f.pos], opaque, exc.message, exc.path, -1)
    except Undefined as exc:
        ctx.hazard(exc.kind, exc.path, exc.message)
        return _final(ctx, UNDEFINED, "load", f.data[: f.pos], opaque, exc.message, exc.path, -1)
    except limits.ModelLimit as exc:
        return _final(ctx, LIMIT, "load", f.data[: f.pos], opaque, exc.message, exc.path, -1)
    if ret:
        # vmstate_load_state() sets the file error itself where QEMU does (the field
        # loop, 8.0+ subsections); version checks, MUST_EXIST, hooks leave it alone
        return _final(ctx, ERROR, "load", f.data[: f.pos], opaque, None, None, ret)
    _scan_allocations(ctx)
    return _final(ctx, OK, "load", f.data[: f.pos], opaque, None, None, 0)


def _scan_allocations(ctx: _Ctx) -> None:
    """Core-allocated memory still indeterminate after a successful load is a hazard."""
    for path, container, key in ctx.allocated:
        try:
            value = container[key]
        except (KeyError, IndexError, TypeError):
            continue
        if _contains_indeterminate(value):
            ctx.hazard("indeterminate-left", path,
                       "memory the core allocated without zeroing was not fully loaded")


def _final(ctx: _Ctx, kind: str, op: str, data, state, message, path, ret) -> Outcome:
    f = ctx.f
    messages = ctx.messages_out()
    if kind == ERROR and message is None:
        message = messages[0] if messages else f"error {ret}"
    if path is None:
        path = ctx.err_path
    offset = None
    if kind != OK:
        if kind == ERROR and ctx.err_offset is not None:
            offset = ctx.err_offset
        else:
            offset = f.pos if isinstance(f, QEMUFileReader) else len(f.buf)
    hazards = list(ctx.hazards)
    if kind == OK and op == "load" and f.error:
        hazards.append(Hazard("sticky-eof", ctx.root, "a peek at the end of the stream set -EIO"))
    return Outcome(kind, op, bytes(data), state, message, messages, ret, offset,
                   path if kind != OK else None, tuple(hazards), tuple(ctx.ledger),
                   f.error)


def _fields(outcome: Outcome) -> dict:
    import attrs

    return attrs.asdict(outcome, recurse=False)


# the codecs (engines/codecs.py) reach the interpreter through its context
_Ctx.get_elem = staticmethod(_get)
_Ctx.set_elem = staticmethod(_set)
_Ctx.save_vmsd = staticmethod(_save_vmsd)
_Ctx.load_vmsd = staticmethod(_load_vmsd)
