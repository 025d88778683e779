"""The leaf codecs of migration/vmstate-types.c, once, for every engine.

Each :class:`Codec` is one ``VMStateInfo``: its ``put`` (``put_*``) and ``get``
(``get_*``) over a QEMUFile model, plus ``fmt``, the struct format compiled plans pack
and unpack with when every value of the info has the same wire width.  The reference
engine calls ``put`` / ``get``; the optimized engine compiles its fast path from ``fmt``
and the codec's value conversions, and leaves every other case to the interpreter,
which calls the same ``put`` / ``get``.  A change to one codec here is the change for
both engines (tests/test_codecs.py proves it by replacing one).

Calling convention (C-like, as in vmstate-types.c): ``put`` and ``get`` return 0 or a
negative errno; a short read is the QEMUFile's sticky error, not an exception; an
assertion raises :class:`Abort` and undefined behaviour :class:`Undefined`.

``put(ctx, field, value, size, w, epath, opaque)``: ``value`` is the element, ``w`` the
vmdesc writer (nested VMSDs write into it).  ``get(ctx, field, container, key, size,
epath, opaque)``: the element lives at ``container[key]`` (read with ``ctx.get_elem``,
written with ``ctx.set_elem``).  ``ctx`` is the interpreter's context: ``ctx.f`` the
QEMUFile, ``ctx.report`` error_report(), ``ctx.codec_error`` an info's own failure
(error_report() up to 10.x, the bool API's errp in master), ``ctx.ledger`` allocations, and
``ctx.save_vmsd`` / ``ctx.load_vmsd`` for the infos that run a nested VMSD.
"""

from __future__ import annotations

import struct
from typing import Callable

import attrs

from conformance.engines._common import Undefined, _gtree_insert, _gtree_key, _s32
from conformance.engines.qemufile import EINVAL
from conformance.model import limits
from conformance.model.infos import (
    INFOS,
    Info,
    from_unsigned,
    lookup,
    to_unsigned,
)
from conformance.model.state import (
    INDETERMINATE,
    Uninit,
    is_indeterminate,
    uninit_struct,
    zero_struct,
)


@attrs.frozen
class Codec:
    """One VMStateInfo: ``put_*`` / ``get_*`` and what a compiler may inline.

    ``fmt``: struct format of a fixed-width value (None: not packable, compiled plans
    leave the field to the interpreter).  ``to_wire`` / ``from_wire``: the value
    conversion around that format (``put_bool`` saves 0/1, ``get_bool`` takes any
    non-zero byte as true).  ``compare``: ``"equal"`` or ``"le"`` when ``get`` checks
    the loaded value against the destination instead of only storing it.
    """

    info: Info
    put: Callable
    get: Callable
    fmt: str | None = None
    to_wire: Callable | None = None
    from_wire: Callable | None = None
    compare: str | None = None
    #: the size argument is the wire size (buffer, unused, bitmap); others ignore it
    sized: bool = False
    #: the shape a compiler may inline instead of calling put/get: "int", "bool",
    #: "equal", "le" (with ``fmt``), "buffer", "unused"; None: always call the codec
    inline: str | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def packer(self) -> struct.Struct:
        return _struct(self.fmt)


_STRUCTS: dict[str, struct.Struct] = {}


def _struct(fmt: str | None) -> struct.Struct:
    if fmt is None:
        raise KeyError("this codec has no fixed-width encoding")
    s = _STRUCTS.get(fmt)
    if s is None:
        s = _STRUCTS[fmt] = struct.Struct(fmt)
    return s


def _determinate(value, epath: str, what: str = "memory"):
    if is_indeterminate(value):
        raise Undefined("indeterminate-read", f"saving indeterminate {what}", epath)
    return value


# -- fixed-width integers: put_int8 .. put_uint64, put_timer, put_cpudouble ---------------


def _int_codec(info: Info, fmt: str | None = None) -> Codec:
    """Fixed-width big-endian values (vmstate-types.c get_/put_int*, uint*, timer,
    cpudouble, float64): qemu_put_be*/qemu_get_be* of the C value's bit pattern."""
    pk = _struct(fmt or info.fmt)
    raw_fmt = pk.format[0] + pk.format[1:].upper()  # the unsigned twin: wire bit pattern
    raw = _struct(raw_fmt)

    def put(ctx, field, value, size, w, epath, opaque) -> int:
        _determinate(value, epath)
        ctx.f.put_buffer(raw.pack(to_unsigned(info, int(value))))
        return 0

    def get(ctx, field, container, key, size, epath, opaque) -> int:
        (bits,) = raw.unpack(ctx.f.get_bytes(raw.size))
        ctx.set_elem(container, key, from_unsigned(info, bits), epath)
        return 0

    return Codec(info, put, get, pk.format, inline="int")


def _bool_codec(info: Info) -> Codec:
    """put_bool writes a C bool (0 or 1); get_bool stores ``byte != 0``."""

    def put(ctx, field, value, size, w, epath, opaque) -> int:
        _determinate(value, epath)
        ctx.f.put_byte(1 if value else 0)
        return 0

    def get(ctx, field, container, key, size, epath, opaque) -> int:
        ctx.set_elem(container, key, ctx.f.get_byte() != 0, epath)
        return 0

    return Codec(info, put, get, ">B", to_wire=lambda v: 1 if v else 0,
                 from_wire=lambda b: b != 0, inline="bool")


def _equal_codec(info: Info) -> Codec:
    """get_int32_equal / get_uint*_equal: load, compare with the destination; a mismatch
    is error_report("%x != %x") and -EINVAL (64-bit: PRIx64)."""
    base = _int_codec(info)

    def get(ctx, field, container, key, size, epath, opaque) -> int:
        loaded = from_unsigned(info, int.from_bytes(ctx.f.get_bytes(info.width), "big"))
        current = ctx.get_elem(container, key, epath)
        if is_indeterminate(current):
            raise Undefined("indeterminate-read", "comparing with indeterminate memory", epath)
        if current == loaded:
            return 0
        mask = 0xFFFFFFFFFFFFFFFF if info.width == 8 else 0xFFFFFFFF
        ctx.codec_error(f"{to_unsigned(info, current) & mask:x} != "
                        f"{to_unsigned(info, loaded) & mask:x}", epath)
        return -EINVAL

    return attrs.evolve(base, get=get, compare="equal", inline="equal")


def _le_codec(info: Info) -> Codec:
    """get_int32_le: 0 <= loaded <= destination, then the loaded value is stored."""
    base = _int_codec(info)

    def get(ctx, field, container, key, size, epath, opaque) -> int:
        loaded = from_unsigned(info, int.from_bytes(ctx.f.get_bytes(4), "big"))
        current = ctx.get_elem(container, key, epath)
        if is_indeterminate(current):
            raise Undefined("indeterminate-read", "comparing with indeterminate memory", epath)
        if 0 <= loaded <= current:
            ctx.set_elem(container, key, loaded, epath)
            return 0
        ctx.codec_error(f"Invalid value {loaded} expecting positive value <= {current}",
                        epath)
        return -EINVAL

    return attrs.evolve(base, get=get, compare="le", inline="le")


# -- buffers: put_buffer / get_buffer, put_unused_buffer / get_unused_buffer -------------


def buffer_prefix(value, size: int, epath: str) -> bytes:
    """The ``size`` bytes put_buffer reads from ``value`` (qemu_put_buffer)."""
    if value is None and size == 0:
        return b""  # qemu_put_buffer(f, NULL, 0): nothing is read
    if isinstance(value, Uninit) or value is INDETERMINATE:
        raise Undefined("indeterminate-read", "saving an indeterminate buffer", epath)
    data = bytes(value)
    if len(data) < size:
        raise Undefined("out-of-bounds",
                        f"the buffer holds {len(data)} bytes but the field saves {size}", epath)
    return data[:size]


def buffer_after_load(current, data: bytes, got: int, epath: str):
    """What a buffer holds after qemu_get_buffer copied ``got`` bytes into it."""
    capacity = current.nbytes if isinstance(current, Uninit) else len(current)
    if got > capacity:
        raise Undefined("out-of-bounds",
                        f"the load writes {got} bytes into a buffer of {capacity}", epath)
    if isinstance(current, Uninit):
        # a partly written non-zeroed buffer stays indeterminate as a whole
        return data if got == capacity else current
    return data + bytes(current)[got:]


def _put_buffer(ctx, field, value, size, w, epath, opaque) -> int:
    if size < 0:
        raise Undefined("out-of-bounds", f"negative buffer size {size}", epath)
    ctx.f.put_buffer(buffer_prefix(value, size, epath))
    return 0


def _get_buffer(ctx, field, container, key, size, epath, opaque) -> int:
    if size < 0:
        raise Undefined("out-of-bounds", f"negative buffer size {size}", epath)
    current = ctx.get_elem(container, key, epath)
    if current is None and size == 0:
        return 0  # qemu_get_buffer(f, NULL, 0): nothing is written
    if current is None or current is INDETERMINATE:
        raise Undefined("null-dereference", "loading a buffer into NULL", epath)
    # qemu_get_buffer() copies what the stream holds; a short read leaves the rest of
    # the buffer as it was and sets -EIO
    data, got = ctx.f.get_buffer(size)
    ctx.set_elem(container, key, buffer_after_load(current, data, got, epath), epath)
    return 0


def _put_unused(ctx, field, value, size, w, epath, opaque) -> int:
    ctx.f.put_buffer(bytes(max(size, 0)))  # put_unused_buffer writes zeros
    return 0


def _get_unused(ctx, field, container, key, size, epath, opaque) -> int:
    ctx.f.get_buffer(max(size, 0))
    return 0


# -- bitmaps: put_bitmap / get_bitmap ----------------------------------------------------


def bitmap_words_of(size: int) -> int:
    """BITS_TO_U64S(size) on the ``size_t`` get_bitmap/put_bitmap receive: the C int
    from vmstate_size() converted, so -1..-63 round to 0 words and <= -64 to ~2^58."""
    return (((size & 0xFFFFFFFFFFFFFFFF) + 63) & 0xFFFFFFFFFFFFFFFF) // 64


def _put_bitmap(ctx, field, value, size, w, epath, opaque) -> int:
    nwords = bitmap_words_of(size)
    if nwords and size < 0:
        raise Undefined("out-of-bounds", f"put_bitmap reads {nwords} words for a size of "
                                         f"{size} bits", epath)
    _determinate(value, epath, "bitmap")
    # the state holds a bitmap as an int, so a size member of 2^31 bits asks for 256 MiB
    # of words from a few bytes of state (found by fuzz --target case)
    limits.check_bitmap_words(nwords, size, epath)
    for k in range(nwords):
        ctx.f.put_be64((int(value) >> (64 * k)) & 0xFFFFFFFFFFFFFFFF)
    return 0


def _get_bitmap(ctx, field, container, key, size, epath, opaque) -> int:
    """get_bitmap writes exactly BITS_TO_U64S(size) 64-bit words (zeros once the stream
    has ended); the destination's bits beyond them survive.  Words beyond the bitmap the
    destination allocated (``ctx.bitmap_capacity``: its size member when the load of
    its struct began) are written out of bounds."""
    f = ctx.f
    nwords = bitmap_words_of(size)
    if not nwords:
        return 0
    capacity = ctx.bitmap_capacity(field, opaque)
    # a negative size member allocated no bitmap words (bitmap_new() of a negative
    # length cannot succeed): every word get_bitmap writes lands outside the object
    # (C writes 16 bytes into an 8-byte object, or dies with SIGSEGV)
    room = None if capacity is None else bitmap_words_of(capacity) if capacity >= 0 else 0
    if room is not None and nwords > room:
        raise Undefined("out-of-bounds",
                        f"get_bitmap writes {nwords} words into a bitmap of "
                        f"{room} ({capacity} bits)", epath)
    current = ctx.get_elem(container, key, epath)
    if current is None:
        raise Undefined("null-dereference", "get_bitmap writes through a NULL bitmap", epath)
    value = 0
    for k in range(nwords):
        if f.pos >= f.size:
            f.set_error(-5)  # -EIO: every further word reads as zero
            break
        value |= f.get_be64() << (64 * k)
    keep = 64 * nwords
    if isinstance(current, int) and not isinstance(current, bool) \
            and current.bit_length() > keep:
        value |= (current >> keep) << keep  # the destination's bits past the words
    ctx.set_elem(container, key, value, epath)
    return 0


# -- length-prefixed: GByteArray, capability (savevm.c) -----------------------------------


def _put_gbytearray(ctx, field, value, size, w, epath, opaque) -> int:
    if value is None:
        raise Undefined("null-dereference", "put_g_byte_array on a NULL GByteArray *", epath)
    data = bytes(_determinate(value, epath, "GByteArray *"))
    ctx.f.put_be32(len(data))
    ctx.f.put_buffer(data)
    return 0


def _get_gbytearray(ctx, field, container, key, size, epath, opaque) -> int:
    """get_g_byte_array: g_byte_array_set_size() on the GByteArray * the device made;
    a NULL (or never initialised) pointer is dereferenced."""
    current = ctx.get_elem(container, key, epath)
    if current is None:
        raise Undefined("null-dereference", "get_g_byte_array on a NULL GByteArray *", epath)
    if current is INDETERMINATE:
        raise Undefined("indeterminate-read", "get_g_byte_array on an indeterminate "
                                              "GByteArray *", epath)
    length = ctx.f.get_be32()
    data, got = ctx.f.get_buffer(length)
    if got < length:
        # g_byte_array_set_size() keeps the old bytes (and does not clear new ones); a
        # short qemu_get_buffer() overwrites only the first ``got``
        old = bytes(current) if isinstance(current, (bytes, bytearray)) else b""
        data = data + old[got:length] if len(old) >= length else Uninit(length)
    ctx.set_elem(container, key, data, epath)
    return 0


def _put_capability(ctx, field, value, size, w, epath, opaque) -> int:
    name = str(value).encode("latin-1", "replace")
    ctx.f.put_byte(len(name))
    ctx.f.put_buffer(name)
    return 0


def _get_capability(ctx, field, container, key, size, epath, opaque) -> int:
    length = ctx.f.get_byte()
    data, _ = ctx.f.get_buffer(length)
    ctx.set_elem(container, key, data.decode("latin-1"), epath)
    return 0


# -- infos that run a nested VMSD: tmp, qtailq / qlist, gtree ----------------------------


def _put_tmp(ctx, field, value, size, w, epath, opaque) -> int:
    # put_tmp: g_malloc (not zeroed) a temporary whose first member is the parent
    tmp = uninit_struct(field.vmsd)
    tmp["parent"] = opaque
    return ctx.nested(lambda: ctx.save_vmsd(ctx, field.vmsd, tmp, w, field.vmsd.version_id,
                                            epath), epath)


def _get_tmp(ctx, field, container, key, size, epath, opaque) -> int:
    tmp = uninit_struct(field.vmsd)
    tmp["parent"] = opaque
    return ctx.nested(lambda: ctx.load_vmsd(ctx, field.vmsd, tmp, field.version_id, epath),
                      epath, failed=lambda ret: ret < 0)


def _put_queue(ctx, field, value, size, w, epath, opaque) -> int:
    """put_qtailq / put_qlist: 1, element, ... 0."""
    for k, elm in enumerate(value or []):
        ctx.f.put_byte(1)
        kpath = f"{epath}[{k}]"
        ret = ctx.nested(lambda elm=elm, kpath=kpath: ctx.save_vmsd(
            ctx, field.vmsd, elm, w, field.vmsd.version_id, kpath), kpath,
            report=_queue_report(field, "save"))
        if ret:
            return ret
    ctx.f.put_byte(0)
    return 0


def _queue_report(field, op: str):
    """7.2's get_qlist / put_qlist line for a failed element (qtailq says nothing)."""
    if field.info != "qlist":
        return None
    return lambda ret: f"{field.name}: failed to {op} {field.vmsd.name} ({ret})"


def _queue_get(tail: bool):
    def get(ctx, field, container, key, size, epath, opaque) -> int:
        """get_qtailq / get_qlist: elements are g_malloc'd (not zeroed) and loaded with
        the field's version; qtailq appends, qlist inserts the first at the head and each
        next one after the previous."""
        f = ctx.f
        vmsd = field.vmsd
        version_id = field.version_id
        if version_id > vmsd.version_id:
            ctx.codec_error(f"{vmsd.name} too new", epath)
            return -EINVAL
        if version_id < vmsd.minimum_version_id:
            ctx.codec_error(f"{vmsd.name} too old", epath)
            return -EINVAL
        queue = ctx.get_elem(container, key, epath)
        if queue is None:
            queue = []
            ctx.set_elem(container, key, queue, epath)
        k = 0
        while f.get_byte():
            kpath = f"{epath}[{k}]"
            ctx.allocate(1, vmsd, field.size, False, "a queue node", kpath)
            elm = uninit_struct(vmsd)
            ret = ctx.nested(lambda elm=elm, kpath=kpath: ctx.load_vmsd(
                ctx, vmsd, elm, version_id, kpath), kpath,
                report=None if tail else _queue_report(field, "load"))
            if ret:
                return ret
            if tail:
                queue.append(elm)  # QTAILQ_RAW_INSERT_TAIL
            elif k == 0:
                queue.insert(0, elm)  # QLIST_RAW_INSERT_HEAD: before the old elements
            else:
                # QLIST_RAW_INSERT_AFTER(prev) sets the new element's next to NULL: what
                # followed prev (the destination's old elements) is cut off and leaks
                if len(queue) > k:
                    ctx.hazard("leak", f"{epath}[{k}]",
                               f"get_qlist dropped the destination's {len(queue) - k} "
                               "old element(s)")
                    del queue[k:]
                queue.append(elm)
            ctx.allocated.append((f"{epath}[{k}]", queue, queue.index(elm)))
            k += 1
        return 0

    return get


def _gtree_order(nodes) -> list:
    """g_tree_foreach() walks a GTree in key order, whatever order the state lists it."""
    return sorted(nodes, key=lambda node: _gtree_key(node[0]))


def _put_gtree(ctx, field, value, size, w, epath, opaque) -> int:
    """put_gtree: node count, then 1, key, value per node in key order, then 0 -- the 0
    is written even after a node failed (g_tree_foreach stops, put_gtree goes on)."""
    f = ctx.f
    nodes = _gtree_order(value or [])
    f.put_be32(len(nodes))
    ret = 0
    for k, (node_key, val) in enumerate(nodes):
        f.put_byte(1)
        kpath = f"{epath}[{k}]"
        if field.key_vmsd is None:
            f.put_be64(int(node_key))  # direct key: the pointer value itself
        else:
            ret = ctx.nested(lambda node_key=node_key, kpath=kpath: ctx.save_vmsd(
                ctx, field.key_vmsd, node_key, w, field.key_vmsd.version_id,
                f"{kpath}.key"), f"{kpath}.key")
            if ret:
                break
        ret = ctx.nested(lambda val=val, kpath=kpath: ctx.save_vmsd(
            ctx, field.vmsd, val, w, field.vmsd.version_id, kpath), kpath)
        if ret:
            break
    f.put_byte(0)
    if ret and ctx.v.errors != "bool":  # master save_gtree(): the nested Error goes up
        ctx.report(f"{field.name} : failed to save gtree ({ret})", epath)
    return ret


def _get_gtree(ctx, field, container, key, size, epath, opaque) -> int:
    """get_gtree: versions checked against key and value VMSDs; node count checked."""
    f = ctx.f
    version_id = field.version_id
    key_vmsd, val_vmsd = field.key_vmsd, field.vmsd
    for d in ((key_vmsd,) if key_vmsd is not None else ()) + (val_vmsd,):
        if version_id > d.version_id:
            ctx.codec_error(f"{d.name} too new", epath)
            return -EINVAL
        if version_id < d.minimum_version_id:
            ctx.codec_error(f"{d.name} too old", epath)
            return -EINVAL
    nnodes = _s32(f.get_be32())
    # a NULL GTree *: g_tree_insert(NULL, ...) is refused by g_return_if_fail (a
    # GLib-CRITICAL on stderr) and every node loaded is lost
    tree = ctx.get_elem(container, key, epath)
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
            ctx.allocate(1, key_vmsd, field.start, True, "a GTree node's key",
                         f"{npath}.key")
            node_key = zero_struct(key_vmsd)
            ret = ctx.nested(lambda node_key=node_key, npath=npath: ctx.load_vmsd(
                ctx, key_vmsd, node_key, version_id, f"{npath}.key"), f"{npath}.key",
                report=lambda ret: f"{field.name} : failed to load {key_vmsd.name} ({ret})")
            if ret:
                return ret
        ctx.allocate(1, val_vmsd, field.size, True, "a GTree node", npath)
        value = zero_struct(val_vmsd)
        ret = ctx.nested(lambda value=value, npath=npath: ctx.load_vmsd(
            ctx, val_vmsd, value, version_id, npath), npath,
            report=lambda ret: f"{field.name} : failed to load {val_vmsd.name} ({ret})")
        if ret:
            return ret
        if tree is None:
            ctx.hazard("leak", npath, "g_tree_insert() into a NULL GTree: GLib refuses it "
                                      "and the node is lost")
        else:
            _gtree_insert(tree, node_key, value)
    if count != nnodes:
        ctx.codec_error(f"{field.name} inconsistent stream when loading the gtree", epath)
        return -EINVAL
    return ret


# -- infos a plain file stream cannot carry ----------------------------------------------


def _put_unsupported(ctx, field, value, size, w, epath, opaque) -> int:
    if field.info_obj is not None and field.info_obj.kind == "fd":
        raise Undefined("out-of-bounds", "an fd travels as SCM_RIGHTS, not in a file stream",
                        epath)
    raise Undefined("out-of-bounds", f"info {field.info_obj.name} cannot be saved directly",
                    epath)


def _get_unsupported(ctx, field, container, key, size, epath, opaque) -> int:
    raise Undefined("out-of-bounds",
                    f"info {field.info_obj.name} cannot be loaded from a file stream", epath)


def _build(info: Info) -> Codec:
    kind = info.kind
    if kind in ("int", "timer", "double"):
        return _int_codec(info)
    if kind == "bool":
        return _bool_codec(info)
    if kind == "equal":
        return _equal_codec(info)
    if kind == "le":
        return _le_codec(info)
    if kind == "buffer":
        return Codec(info, _put_buffer, _get_buffer, sized=True, inline="buffer")
    if kind == "unused":
        return Codec(info, _put_unused, _get_unused, sized=True, inline="unused")
    if kind == "bitmap":
        return Codec(info, _put_bitmap, _get_bitmap, sized=True)
    if kind == "gbytearray":
        return Codec(info, _put_gbytearray, _get_gbytearray)
    if kind == "capability":
        return Codec(info, _put_capability, _get_capability)
    if kind == "tmp":
        return Codec(info, _put_tmp, _get_tmp)
    if kind in ("qtailq", "qlist"):
        return Codec(info, _put_queue, _queue_get(tail=kind == "qtailq"))
    if kind == "gtree":
        return Codec(info, _put_gtree, _get_gtree)
    # fd, and the markers the core drives itself (nullptr, ptr-marker)
    return Codec(info, _put_unsupported, _get_unsupported)


#: every VMStateInfo by its QEMU type name
CODECS: dict[str, Codec] = {name: _build(info) for name, info in INFOS.items()}


def codec_for(info: Info | str) -> Codec:
    """The codec of an Info (or a QEMU type name / C symbol)."""
    if not isinstance(info, Info):
        info = lookup(info)
    return CODECS[info.name]
