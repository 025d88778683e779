"""The vmdesc JSON trailer of a migration stream, and device state decoded through it.

Three jobs, all modelled on QEMU behaviour (no QEMU code is reproduced):

* **Reading** the vmdesc text with duplicate keys kept (``JsonObject``): nested savers
  (tmp, qtailq, qlist, gtree) write their child's ``vmsd_name``/``version``/``fields``
  keys once per element into one object (migration/vmstate.c vmstate_save_state_v,
  vmstate-types.c put_qtailq/put_gtree), and re-encoding must repeat them.
* **Writing** it byte-exact with QEMU's JSONWriter (qobject/json-writer.c) for each era:
  QEMU 7.2 builds ``{"page_size", "devices"}`` at completion time
  (migration/savevm.c qemu_savevm_state_complete_precopy_non_iterable); QEMU 8.x+ starts
  the JSON in the header and puts ``"configuration"`` first (qemu_savevm_state_header).
  Writers older than QEMU 5.2 (migration/qjson.c) are the ``qjson`` style.
* **Decoding** a section body using its vmdesc entry, the way
  scripts/analyze-migration.py does (each field reads exactly ``size`` bytes; compressed
  ``array_len`` entries expand into ``index`` 0..n-1; listed subsections must follow in
  order), into a model (``Body``/``Field``) that re-encodes to the same bytes, plus the
  exact ``analyze-migration.py -d state`` rendering of that model.
"""

from __future__ import annotations

import functools
import json
import struct

from conformance.errors import FormatError
from conformance.model import limits as _limits
from conformance.model.infos import INFOS, packer
from conformance.plain import Plain

QEMU_VM_SUBSECTION = 0x05

_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
_SUBSECTION_TAIL = struct.Struct(">I")


# --------------------------------------------------------------------------- JSON text


class JsonObject(list):
    """A JSON object as its ``(key, value)`` pairs in text order, duplicate keys kept.

    ``get``/``[]`` look keys up like ``dict(pairs)`` would: the last value of a repeated
    key (this is also what analyze-migration.py's OrderedDict hook sees).
    """

    __slots__ = ("_map",)

    def _lookup(self) -> dict:
        try:
            return self._map
        except AttributeError:
            self._map = dict(list.__iter__(self))
            return self._map

    def get(self, key, default=None):
        try:
            return self._map.get(key, default)
        except AttributeError:
            return self._lookup().get(key, default)

    def __contains__(self, key) -> bool:  # type: ignore[override]
        return key in self._lookup()

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return self._lookup()[key]
        return list.__getitem__(self, key)

    def groups(self, first_key: str = "vmsd_name") -> list[JsonObject]:
        """Split the pairs into runs that each start at ``first_key``.

        A qtailq field object holds one ``vmsd_name, version, fields[, subsections]``
        run per element; this returns those runs as separate objects.
        """
        runs: list[JsonObject] = []
        current: JsonObject | None = None
        for key, value in self:
            if key == first_key:
                current = JsonObject()
                runs.append(current)
            if current is not None and key in ("vmsd_name", "version", "fields", "subsections"):
                current.append((key, value))
        return runs

    def to_plain(self) -> dict:
        """Nested plain dicts, duplicates collapsed the way json.loads collapses them."""
        return {k: _plain(v) for k, v in self._lookup().items()}


def _plain(value):
    if isinstance(value, JsonObject):
        return value.to_plain()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str) -> object:
    """Parse vmdesc text keeping duplicate keys (objects become ``JsonObject``)."""
    return json.loads(text, object_pairs_hook=JsonObject, parse_constant=_reject_constant)


def write_json(value: object, style: str = "json-writer") -> str:
    """Emit a parsed JSON tree with conformance.migration.jsonwriter (QEMU's JSONWriter)."""
    from conformance.migration.jsonwriter import JSONWriter  # only re-encoding needs it

    writer = JSONWriter(style)
    _emit(writer, None, value)
    return writer.get()


def _emit(writer, name: str | None, value: object) -> None:
    if isinstance(value, JsonObject):
        writer.start_object(name)
        for key, item in value:
            _emit(writer, key, item)
        writer.end_object()
    elif isinstance(value, list):
        writer.start_array(name)
        for item in value:
            _emit(writer, None, item)
        writer.end_array()
    elif isinstance(value, bool):
        writer.bool(name, value)
    elif isinstance(value, int):
        writer.int64(name, value)
    elif isinstance(value, str):
        writer.str(name, value)
    elif value is None:
        writer.null(name)
    else:  # floats: QEMU's vmdesc never holds one
        raise FormatError(f"vmdesc value {value!r} has no JSONWriter encoding")


# --------------------------------------------------------------------------- vmdesc model

ERA_72 = "qemu-7.2"  # {"page_size", "devices"}
ERA_2024 = "qemu-8+"  # {"configuration", "page_size", "devices"}


class Vmdesc:
    """The parsed vmdesc trailer.

    ``root`` is the full parsed tree (duplicates kept), ``text`` the bytes it was
    parsed from.  ``style`` is the JSON writer that reproduces ``text`` byte for byte,
    or None when neither does (then the text is kept opaque and ``note`` says why).  It
    is worked out on first use: decoding does not need it, re-encoding does.
    """

    def __init__(self, root: JsonObject, text: bytes) -> None:
        self.root = root
        self.text = text

    def __eq__(self, other) -> bool:
        if type(other) is not Vmdesc:
            return NotImplemented
        return self.root == other.root and self.text == other.text

    __hash__ = None  # the root is a list

    def __repr__(self) -> str:
        return f"Vmdesc(root=..., text={len(self.text)} bytes)"

    @functools.cached_property
    def style(self) -> str | None:
        for style in ("json-writer", "qjson"):
            try:
                if write_json(self.root, style).encode("utf-8") == self.text:
                    return style
            except FormatError:
                break
            except UnicodeEncodeError:  # a lone surrogate escape ("\ud800"): no writer
                continue  # that QEMU wrote raw: the text stays opaque
        return None

    @property
    def note(self) -> str | None:
        if self.style is None:
            return "no QEMU JSON writer style reproduces the text: kept opaque"
        return None

    @property
    def era(self) -> str:
        return ERA_2024 if "configuration" in self.root else ERA_72

    @property
    def page_size(self) -> int | None:
        value = self.root.get("page_size")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def configuration(self) -> JsonObject | None:
        value = self.root.get("configuration")
        return value if isinstance(value, JsonObject) else None

    @property
    def devices(self) -> list:
        value = self.root.get("devices")
        return value if isinstance(value, list) else []

    def device_map(self) -> dict[tuple[str, int], JsonObject]:
        """(idstr, instance_id) -> device entry; a repeated key keeps the last entry,
        like analyze-migration.py's section table."""
        table: dict[tuple[str, int], JsonObject] = {}
        for device in self.devices:
            if isinstance(device, JsonObject):
                table[(device.get("name"), device.get("instance_id"))] = device
        return table

    def encode(self) -> bytes:
        """The JSON text rebuilt from ``root`` (or the opaque text when no writer fits)."""
        if self.style is None:
            return self.text
        return write_json(self.root, self.style).encode("utf-8")


def parse_vmdesc(text: bytes, where: str = "vmdesc") -> Vmdesc:
    """Parse vmdesc text; FormatError names the JSON line/column and file offset."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{where}: not UTF-8 at JSON byte {exc.start}") from None
    deep = _limits.json_depth_error(decoded, _limits.JSON_DEPTH_LIMIT)
    if deep is not None:
        offset, depth = deep
        raise _limits.exceeded("json-depth", f"{where}: JSON byte {len(decoded[:offset].encode())}",
                               f"JSON nested {depth} deep", depth)
    try:
        root = loads(decoded)
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:
        raise FormatError(f"{where}: bad JSON: {exc}") from None
    if not isinstance(root, JsonObject):
        raise FormatError(f"{where}: JSON top level is not an object")
    _check_schema(root, where)
    return Vmdesc(root, bytes(text))


def _check_schema(root: JsonObject, where: str) -> None:
    devices = root.get("devices")
    if not isinstance(devices, list):
        raise FormatError(f"{where}: $.devices is missing or not an array")
    for i, device in enumerate(devices):
        path = f"{where}: $.devices[{i}]"
        if not isinstance(device, JsonObject):
            raise FormatError(f"{path} is not an object")
        if not isinstance(device.get("name"), str) or not isinstance(device.get("instance_id"), int):
            raise FormatError(f"{path} lacks a string name or an integer instance_id")
        if not isinstance(device.get("fields"), list):
            raise FormatError(f"{path} ({device.get('name')}) has no fields array")
    page_size = root.get("page_size")
    if page_size is not None and (not isinstance(page_size, int) or page_size <= 0 or page_size & (page_size - 1)):
        raise FormatError(f"{where}: $.page_size {page_size!r} is not a power of two")


def build_vmdesc(
    page_size: int,
    devices: list[JsonObject],
    configuration: JsonObject | None = None,
    era: str = ERA_2024,
) -> JsonObject:
    """A vmdesc root in the member order QEMU's savevm.c writes for ``era``."""
    root = JsonObject()
    if era == ERA_2024:
        if configuration is None:
            raise ValueError("the QEMU 8+ vmdesc starts with a configuration member")
        root.append(("configuration", configuration))
    elif era != ERA_72:
        raise ValueError(f"unknown vmdesc era {era!r}")
    root.append(("page_size", page_size))
    root.append(("devices", list(devices)))
    return root


# --------------------------------------------------------------------------- decoded state


class Subsection(Plain):
    """name: as on the wire (counted string); version: be32 on the wire; body: Body."""

    __slots__ = ("name", "version", "body")


class Body(Plain):
    """One VMSD's bytes: its fields in vmdesc order, then its subsections."""

    __slots__ = ("vmsd_name", "version", "fields", "subsections")  # str|None, int|None, tuple, tuple

    def __init__(self, vmsd_name, version, fields: tuple, subsections: tuple = ()) -> None:
        self.vmsd_name, self.version, self.fields, self.subsections = vmsd_name, version, fields, subsections


class GTree(Plain):
    """count: the be32 node count on the wire; direct_key: direct keys are be64
    integers, others are VMSD bodies; nodes: ((key int | Body), value Body) per node."""

    __slots__ = ("count", "direct_key", "nodes")


# Field.kind: how ``value`` is held.
#   "int"    int, fixed-width per the info catalogue (also timer / CPU_Double_U bit patterns)
#   "ints"   tuple[int, ...]: a compressed ("array_len") integer array; ``index`` is 0 and
#            element k stands for the vmdesc element ``index`` k ("size" is per element)
#   "bool"   bool (byte 0x00 / 0x01)
#   "capability" bytes: a configuration capability name (length byte + name on the wire)
#   "raw"    bytes kept as they are (buffers, bitmaps, unknown types, or anything whose
#            structure did not match its vmdesc entry; ``note`` says which)
#   "struct" Body            ("struct" entries)
#   "inline" Body            (vstruct / tmp: the child's keys sit in the field object)
#   "list"   tuple[Body,...] (qtailq / qlist: 0x01 + element ... 0x00)
#   "gtree"  GTree
class Field(Plain):
    """One decoded vmdesc field entry: ``size`` is the vmdesc "size" of this element."""

    __slots__ = ("name", "type", "index", "size", "kind", "value", "note")

    def __init__(self, name: str, type: str, index: int | None, size: int, kind: str, value,
                 note: str | None = None) -> None:
        self.name, self.type, self.index, self.size = name, type, index, size
        self.kind, self.value, self.note = kind, value, note


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


_ARRAY_CODECS: dict[tuple[str, int], struct.Struct] = {}


def _array_codec(element: struct.Struct, count: int) -> struct.Struct:
    key = (element.format, count)
    codec = _ARRAY_CODECS.get(key)
    if codec is None:
        codec = _ARRAY_CODECS[key] = struct.Struct(f">{count}{element.format[-1]}")
    return codec


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


# --------------------------------------------------------------------------- re-encoding


def encode_body(body: Body, out: list) -> None:
    """Append the wire bytes of ``body`` (fields, then subsections) to ``out``."""
    for field in body.fields:
        encode_field(field, out)
    for sub in body.subsections:
        out.append(bytes((QEMU_VM_SUBSECTION, len(sub.name))) + sub.name + _BE32.pack(sub.version))
        encode_body(sub.body, out)


def encode_field(field: Field, out: list) -> None:
    kind = field.kind
    if kind == "int":
        out.append(packer(INFOS[field.type]).pack(field.value))
    elif kind == "ints":
        out.append(_array_codec(packer(INFOS[field.type]), len(field.value)).pack(*field.value))
    elif kind == "bool":
        out.append(b"\x01" if field.value else b"\x00")
    elif kind == "raw":
        out.append(field.value)
    elif kind == "capability":
        out.append(bytes((len(field.value),)) + field.value)
    elif kind in ("struct", "inline"):
        encode_body(field.value, out)
    elif kind == "list":
        for item in field.value:
            out.append(b"\x01")
            encode_body(item, out)
        out.append(b"\x00")
    elif kind == "gtree":
        tree: GTree = field.value
        out.append(_BE32.pack(tree.count))
        for key, value in tree.nodes:
            out.append(b"\x01")
            if tree.direct_key:
                out.append(_BE64.pack(key))
            else:
                encode_body(key, out)
            encode_body(value, out)
        out.append(b"\x00")
    else:
        raise ValueError(f"unknown field kind {kind!r}")


def field_bytes(field: Field) -> bytes:
    out: list = []
    encode_field(field, out)
    return b"".join(out)


def body_bytes(body: Body) -> bytes:
    out: list = []
    encode_body(body, out)
    return b"".join(out)


def locate_in_body(body: Body, offset: int, path: str) -> str:
    """The path of the field holding byte ``offset`` (relative to the body start)."""
    pos = 0
    for field in body.fields:
        size = len(field_bytes(field))
        if offset < pos + size:
            if field.kind == "ints":
                return f"{path}/{field.name}[{(offset - pos) // field.size}]"
            label = f"{field.name}[{field.index}]" if field.index is not None else field.name
            if field.kind in ("struct", "inline"):
                return locate_in_body(field.value, offset - pos, f"{path}/{label}")
            return f"{path}/{label}"
        pos += size
    for sub in body.subsections:
        head = 2 + len(sub.name) + 4
        size = head + len(body_bytes(sub.body))
        if offset < pos + size:
            name = sub.name.decode("utf-8", "replace")
            if offset < pos + head:
                return f"{path}/{name} (subsection header)"
            return locate_in_body(sub.body, offset - pos - head, f"{path}/{name}")
        pos += size
    return f"{path} (past the last field)"


# --------------------------------------------------------------------------- renderings

# analyze-migration.py's reader table: which vmdesc types it prints as integers, and
# with which signedness (its own quirks: "uint8 equal"/"uint16 equal"/"int64 equal" are
# read signed there, and "int32 le" big-endian).  Widths come from the vmdesc size.
_ANALYZE_SIGNED = frozenset(
    ["int8", "int16", "int32", "int32 equal", "int32 le", "int64", "int64 equal", "uint8 equal", "uint16 equal"]
)
_ANALYZE_UNSIGNED = frozenset(["uint8", "uint16", "uint32", "uint32 equal", "uint64"])


def _analyze_int(raw: bytes, signed: bool) -> str:
    width = len(raw)
    unsigned = int.from_bytes(raw, "big")
    text = "0x%0*x" % (2 * width, unsigned)
    if signed and width and raw[0] & 0x80:
        return "%s (%d)" % (text, int.from_bytes(raw, "big", signed=True))
    return text


def analyze_field(field: Field) -> object:
    ftype = field.type
    if ftype in _ANALYZE_SIGNED or ftype in _ANALYZE_UNSIGNED:
        if field.kind == "int":
            value, bits = field.value, 8 * field.size
            if value < 0:  # catalogue-signed types are analyze-signed too
                return "0x%0*x (%d)" % (2 * field.size, value & ((1 << bits) - 1), value)
            if ftype in _ANALYZE_SIGNED and value >> (bits - 1):
                return "0x%0*x (%d)" % (2 * field.size, value, value - (1 << bits))
            return "0x%0*x" % (2 * field.size, value)
        return _analyze_int(field_bytes(field), ftype in _ANALYZE_SIGNED)
    if ftype == "bool":
        if field.kind == "bool":
            return field.value
        raw = field_bytes(field)
        if not raw:
            raise FormatError(f"{field.name}: a bool of size 0 (analyze-migration.py fails here)")
        return raw[0] != 0
    if ftype == "struct" and field.kind == "struct":
        return analyze_body(field.value)
    if field.kind == "capability":  # VMSDFieldCap's str()
        return field.value.decode("utf-8")
    return field_bytes(field).hex(" ")


def _analyze_ints(field: Field, out: dict) -> None:
    items = out.get(field.name)
    if items is None:
        items = out[field.name] = []
    elif not isinstance(items, list):
        raise FormatError(f"{field.name}: indexed entry after a plain one (analyze-migration.py fails here)")
    if items:
        raise FormatError(f"{field.name}: internal index of data field unmatched ({len(items)}/0)")
    bits = 8 * field.size
    signed = field.type in _ANALYZE_SIGNED
    if field.type not in _ANALYZE_SIGNED and field.type not in _ANALYZE_UNSIGNED:
        items.extend(f.hex(" ") for f in (field_bytes(_element(field, v)) for v in field.value))
        return
    values = field.value
    if not values:
        return
    # the bit patterns as "0x%0Nx" each, in C: the packed array in hex, one group per element
    raw = _array_codec(packer(INFOS[field.type]), len(values)).pack(*values)
    texts = ("0x" + raw.hex(" ", field.size).replace(" ", " 0x")).split(" ")
    top = 1 << (bits - 1)
    if min(values) < 0 or (signed and max(values) >= top):
        for i, value in enumerate(values):  # " (-n)" where the script reads a negative
            if value < 0:
                texts[i] += " (%d)" % value
            elif signed and value & top:
                texts[i] += " (%d)" % (value - (1 << bits))
    items.extend(texts)


def _element(field: Field, value: int) -> Field:
    return Field(field.name, field.type, None, field.size, "int", value)


def analyze_body(body: Body) -> dict:
    """The OrderedDict analyze-migration.py builds for one VMSD (VMSDFieldStruct.read)."""
    out: dict = {}
    for field in body.fields:
        if field.kind == "ints":
            _analyze_ints(field, out)
            continue
        value = analyze_field(field)
        if field.index is not None:
            items = out.get(field.name)
            if items is None:
                items = out[field.name] = []
            elif not isinstance(items, list):
                raise FormatError(f"{field.name}: indexed entry after a plain one (analyze-migration.py fails here)")
            if len(items) != field.index:
                raise FormatError(
                    f"{field.name}: internal index of data field unmatched ({len(items)}/{field.index})"
                )
            items.append(value)
        else:
            out[field.name] = value
    for sub in body.subsections:
        out[sub.name.decode("utf-8")] = analyze_body(sub.body)
    return out


def state_field(field: Field) -> object:
    """Our own JSON rendering: ints and bools as JSON values, bytes as hex."""
    kind = field.kind
    if kind in ("int", "bool"):
        return field.value
    if kind == "ints":
        return list(field.value)
    if kind == "raw":
        return field.value.hex()
    if kind == "capability":
        return field.value.decode("utf-8", "replace")
    if kind in ("struct", "inline"):
        return state_body(field.value)
    if kind == "list":
        return [state_body(item) for item in field.value]
    tree: GTree = field.value
    return [
        {"key": key if tree.direct_key else state_body(key), "value": state_body(value)}
        for key, value in tree.nodes
    ]


def state_body(body: Body) -> dict:
    out: dict = {}
    for field in body.fields:
        value = state_field(field)
        if field.index is not None:
            items = out.get(field.name)
            if not isinstance(items, list):
                items = out[field.name] = []
            if field.kind == "ints":
                items.extend(value)
            else:
                items.append(value)
        elif field.name in out:  # repeated name: keep every value
            previous = out[field.name]
            out[field.name] = previous + [value] if isinstance(previous, list) else [previous, value]
        else:
            out[field.name] = value
    for sub in body.subsections:
        out[sub.name.decode("utf-8", "replace")] = state_body(sub.body)
    return out


def raw_notes(body: Body, path: str) -> list[str]:
    """Where a structured entry had to be kept raw, and why."""
    notes = []
    for field in body.fields:
        label = f"{field.name}[{field.index}]" if field.index is not None else field.name
        if field.note:
            notes.append(f"{path}/{label}: {field.note}")
        if field.kind in ("struct", "inline"):
            notes.extend(raw_notes(field.value, f"{path}/{label}"))
    for sub in body.subsections:
        notes.extend(raw_notes(sub.body, f"{path}/{sub.name.decode('utf-8', 'replace')}"))
    return notes
