"""``Decoder``: a section body decoded through its vmdesc entry, the way
scripts/analyze-migration.py reads it (see the package docstring)."""

from __future__ import annotations

from conformance.errors import FormatError
from conformance.migration.vmdesc.fields import (
    _BE32,
    _BE64,
    _SUBSECTION_TAIL,
    QEMU_VM_SUBSECTION,
    Body,
    Field,
    GTree,
    Subsection,
    _array_codec,
)
from conformance.migration.vmdesc.jsontext import JsonObject
from conformance.model import limits as _limits
from conformance.model.infos import INFOS, packer

_INT_KINDS = ("int", "equal", "le", "timer", "double")
#: (vmdesc type, size) -> struct.Struct of the catalogue's fixed-width integers
_INT_CODECS = {(info.name, info.width): packer(info) for info in INFOS.values() if info.kind in _INT_KINDS}


class _Mismatch(Exception):
    """The bytes do not follow the vmdesc entry (caught: the field is kept raw)."""


class _Plan:
    """A vmdesc field entry compiled for decoding (array_len already expanded);
    ``struct_desc``: JsonObject for struct / inline, list of runs for list/gtree;
    ``codec``: struct.Struct for ints."""

    __slots__ = ("name", "type", "index", "size", "kind", "struct_desc", "codec")

    def __init__(self, name, type, index, size, kind, struct_desc=None, codec=None) -> None:
        self.name, self.type, self.index, self.size = name, type, index, size
        self.kind, self.struct_desc, self.codec = kind, struct_desc, codec


class Decoder:
    """Decodes section bodies of one stream; caches compiled vmdesc entries."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = data
        self._plans: dict[int, tuple[tuple, list, JsonObject]] = {}
        self.work = 0  # field entries planned and decoded so far (the ``work`` limit)
        self._depth = 0  # bodies being decoded, one inside the other (the ``depth`` limit)

    def _spend(self, n: int, where: str) -> None:
        """Count ``n`` field entries against the ``work`` limit before making them."""
        self.work += n
        if self.work > _limits.WORK_LIMIT:
            raise _limits.exceeded("work", where, f"{self.work} vmdesc field entries in one decode",
                                   self.work)

    # -- compile
    def _compile(self, desc: JsonObject, path: str) -> tuple[tuple, list]:
        cached = self._plans.get(id(desc))
        if cached is not None and cached[2] is desc:
            return cached[0], cached[1]
        fields = desc.get("fields")
        if not isinstance(fields, list):
            raise FormatError(f"vmdesc {path}: no fields array")
        plans = []
        for i, entry in enumerate(fields):
            if not isinstance(entry, JsonObject):
                raise FormatError(f"vmdesc {path}.fields[{i}]: not an object")
            keys = entry._lookup()
            name, ftype, size = keys.get("name"), keys.get("type"), keys.get("size")
            if not isinstance(name, str) or not isinstance(ftype, str) or not isinstance(size, int) or size < 0:
                raise FormatError(f"vmdesc {path}.fields[{i}]: needs a name, a type and a size >= 0")
            plan = self._plan_for(entry, keys, name, ftype, size)
            array_len = keys.get("array_len")
            if array_len is not None:
                if not isinstance(array_len, int) or isinstance(array_len, bool) or array_len < 0:
                    raise FormatError(f"vmdesc {path}.fields[{i}] ({name}): bad array_len {str(array_len)[:40]}")
                where = f"vmdesc {path}.fields[{i}] ({name}).array_len"
                if plan.kind == "int" and array_len > 1:
                    self._spend(1, where)
                    if array_len * plan.codec.size > len(self.data):
                        # checked before a struct format that long is built
                        raise FormatError(f"{where}: {array_len} integers of "
                                          f"{plan.codec.size} bytes are more than the whole "
                                          f"{len(self.data)}-byte stream")
                    # a compressed array of integers: one unpack for all its elements
                    plans.append(_Plan(name, ftype, 0, size, "ints", None, _array_codec(plan.codec, array_len)))
                    continue
                # checked before one plan per element exists: the count, and the work
                if array_len > _limits.ELEMENT_LIMIT:
                    raise _limits.exceeded("elements", where, f"array_len {array_len}", array_len)
                self._spend(array_len, where)
                plans.extend(_Plan(name, ftype, k, size, plan.kind, plan.struct_desc, plan.codec) for k in range(array_len))
            else:
                index = keys.get("index")
                if index is not None and not isinstance(index, int):
                    raise FormatError(f"vmdesc {path}.fields[{i}] ({name}): bad index {index!r}")
                self._spend(1, f"vmdesc {path}.fields[{i}] ({name})")
                plans.append(_Plan(name, ftype, index, size, plan.kind, plan.struct_desc, plan.codec) if index is not None else plan)
        subsections = desc.get("subsections") or []
        if not isinstance(subsections, list):
            raise FormatError(f"vmdesc {path}: subsections is not an array")
        result = (tuple(plans), subsections)
        self._plans[id(desc)] = (result[0], result[1], desc)
        return result

    @staticmethod
    def _plan_for(entry: JsonObject, keys: dict, name: str, ftype: str, size: int) -> _Plan:
        codec = _INT_CODECS.get((ftype, size))
        if codec is not None:
            return _Plan(name, ftype, None, size, "int", None, codec)
        if ftype == "bool" and size == 1:
            return _Plan(name, ftype, None, size, "bool")
        if ftype == "capability":
            # savevm.c put_capability: length byte + name; a compressed array of them
            # carries element 0's size only, so the length byte is what counts.
            return _Plan(name, ftype, None, size, "capability")
        child = keys.get("struct")
        if ftype == "struct" and isinstance(child, JsonObject) and "fields" in child:
            return _Plan(name, ftype, None, size, "struct", struct_desc=child)
        if ftype in ("vstruct", "tmp") and "fields" in keys:
            return _Plan(name, ftype, None, size, "inline", struct_desc=entry.groups()[-1])
        if ftype in ("qtailq", "qlist"):
            return _Plan(name, ftype, None, size, "list", struct_desc=entry.groups())
        if ftype == "gtree":
            return _Plan(name, ftype, None, size, "gtree", struct_desc=entry.groups())
        return _Plan(name, ftype, None, size, "raw")

    # -- decode
    def body(self, desc: JsonObject, pos: int, end: int, path: str) -> tuple[Body, int]:
        """Decode one VMSD body at ``pos``; FormatError on truncation / missing subsection,
        LimitExceeded past the ``depth`` or ``work`` limit (not caught as a mismatch)."""
        if self._depth >= _limits.DEPTH_LIMIT:
            raise _limits.exceeded("depth", f"offset {pos:#x}: {path}", f"vmdesc structs nested {self._depth + 1} deep",
                                   self._depth + 1)
        self._depth += 1
        try:
            return self._body(desc, pos, end, path)
        finally:
            self._depth -= 1

    def _body(self, desc: JsonObject, pos: int, end: int, path: str) -> tuple[Body, int]:
        if not isinstance(desc, JsonObject):
            raise FormatError(f"vmdesc {path}: not an object")
        plans, subsection_descs = self._compile(desc, path)
        self._spend(len(plans), f"offset {pos:#x}: {path}")
        data = self.data
        fields = []
        append = fields.append
        for plan in plans:
            size = plan.size
            if pos + size > end:
                where = f"{plan.name}[{plan.index}]" if plan.index is not None else plan.name
                raise FormatError(f"offset {pos:#x}: {path}/{where}: truncated ({size} bytes needed, {end - pos} left)")
            kind = plan.kind
            if kind == "ints":
                codec = plan.codec
                if pos + codec.size > end:
                    raise FormatError(f"offset {pos:#x}: {path}/{plan.name}: truncated ({codec.size} bytes needed, {end - pos} left)")
                self._spend(codec.size // max(size, 1), f"offset {pos:#x}: {path}/{plan.name}")
                append(Field(plan.name, plan.type, 0, size, "ints", codec.unpack_from(data, pos)))
                pos += codec.size
                continue
            if kind == "int":
                append(Field(plan.name, plan.type, plan.index, size, "int", plan.codec.unpack_from(data, pos)[0]))
                pos += size
            elif kind == "bool":
                byte = data[pos]
                if byte > 1:  # QEMU writes exactly 0/1; keep anything else verbatim
                    append(Field(plan.name, plan.type, plan.index, size, "raw", bytes(data[pos : pos + 1]), "bool byte is not 0/1"))
                else:
                    append(Field(plan.name, plan.type, plan.index, size, "bool", byte == 1))
                pos += 1
            elif kind == "raw":
                append(Field(plan.name, plan.type, plan.index, size, "raw", bytes(data[pos : pos + size])))
                pos += size
            elif kind == "capability":
                n = data[pos] if size else 0
                if not size or pos + 1 + n > end:
                    raise FormatError(f"offset {pos:#x}: {path}/{plan.name}: truncated capability")
                append(Field(plan.name, plan.type, plan.index, size, "capability", bytes(data[pos + 1 : pos + 1 + n])))
                pos += 1 + n
            else:
                field, pos = self._compound(plan, pos, end, path)
                append(field)
        subsections = []
        for i, sub_desc in enumerate(subsection_descs):
            if not isinstance(sub_desc, JsonObject):
                raise FormatError(f"vmdesc {path}.subsections[{i}]: not an object")
            want = sub_desc.get("vmsd_name")
            if pos >= end or data[pos] != QEMU_VM_SUBSECTION:
                raise FormatError(f"offset {pos:#x}: {path}: subsection {want} not found (vmdesc lists it)")
            name_len = data[pos + 1] if pos + 1 < end else 0
            name_end = pos + 2 + name_len
            if name_end + 4 > end:
                raise FormatError(f"offset {pos:#x}: {path}: truncated subsection header")
            name = bytes(data[pos + 2 : name_end])
            if name.decode("utf-8", "replace") != want:
                raise FormatError(f"offset {pos:#x}: {path}: subsection {name!r} where the vmdesc lists {want}")
            (version,) = _SUBSECTION_TAIL.unpack_from(data, name_end)
            body, pos = self.body(sub_desc, name_end + 4, end, f"{path}/{want}")
            subsections.append(Subsection(name, version, body))
        return Body(desc.get("vmsd_name"), desc.get("version"), tuple(fields), tuple(subsections)), pos

    def _compound(self, plan: _Plan, pos: int, limit: int, path: str) -> tuple[Field, int]:
        """struct / vstruct / tmp / qtailq / qlist / gtree -> (field, position after it).

        A "struct" is read field by field, as analyze-migration.py reads it, even when
        its fields do not add up to the entry's ``size`` (noted); the other kinds are
        held to ``size`` (the script prints them as ``size`` raw bytes), and kept raw
        when their structure does not fill exactly that."""
        end = pos + plan.size
        label = f"{plan.name}[{plan.index}]" if plan.index is not None else plan.name
        sub_path = f"{path}/{label}"
        if plan.kind == "struct":
            try:
                value, stop = self.body(plan.struct_desc, pos, limit, sub_path)
                note = None
                if stop != end:
                    note = f"vmdesc size is {plan.size} but its fields take {stop - pos} bytes (read field by field)"
                return Field(plan.name, plan.type, plan.index, plan.size, "struct", value, note), stop
            except FormatError as exc:
                raw = bytes(self.data[pos:end])
                return Field(plan.name, plan.type, plan.index, plan.size, "raw", raw, f"kept raw: {exc}"), end
        try:
            if plan.kind == "inline":
                value, stop = self.body(plan.struct_desc, pos, end, sub_path)
            elif plan.kind == "list":
                value, stop = self._list(plan.struct_desc, pos, end, sub_path)
            else:
                value, stop = self._gtree(plan.struct_desc, pos, end, sub_path)
            if stop != end:
                raise _Mismatch(f"decoded {stop - pos} bytes, vmdesc size is {plan.size}")
            return Field(plan.name, plan.type, plan.index, plan.size, plan.kind, value), end
        except (_Mismatch, FormatError) as exc:
            raw = bytes(self.data[pos:end])
            return Field(plan.name, plan.type, plan.index, plan.size, "raw", raw, f"kept raw: {exc}"), end

    def _list(self, runs: list, pos: int, end: int, path: str) -> tuple[tuple, int]:
        # migration/vmstate-types.c put_qtailq / put_qlist: 0x01 + element, ..., 0x00
        data = self.data
        items = []
        for k, run in enumerate(runs):
            if pos >= end or data[pos] != 1:
                raise _Mismatch(f"element {k} marker missing")
            body, pos = self.body(run, pos + 1, end, f"{path}[{k}]")
            items.append(body)
        if pos >= end or data[pos] != 0:
            raise _Mismatch("list terminator missing")
        return tuple(items), pos + 1

    def _gtree(self, runs: list, pos: int, end: int, path: str) -> tuple[GTree, int]:
        # migration/vmstate-types.c put_gtree: be32 count, per node 0x01 key value, 0x00
        data = self.data
        if pos + 4 > end:
            raise _Mismatch("truncated node count")
        (count,) = _BE32.unpack_from(data, pos)
        pos += 4
        if len(runs) == count:
            direct = True
        elif len(runs) == 2 * count:
            direct = False
        else:
            raise _Mismatch(f"{len(runs)} vmdesc runs for {count} nodes")
        nodes = []
        for k in range(count):
            if pos >= end or data[pos] != 1:
                raise _Mismatch(f"node {k} marker missing")
            pos += 1
            if direct:
                if pos + 8 > end:
                    raise _Mismatch("truncated key")
                key = _BE64.unpack_from(data, pos)[0]
                pos += 8
                value, pos = self.body(runs[k], pos, end, f"{path}[{k}]")
            else:
                key, pos = self.body(runs[2 * k], pos, end, f"{path}[{k}].key")
                value, pos = self.body(runs[2 * k + 1], pos, end, f"{path}[{k}]")
            nodes.append((key, value))
        if pos >= end or data[pos] != 0:
            raise _Mismatch("tree terminator missing")
        return GTree(count, direct, tuple(nodes)), pos + 1
