"""The state model: what a VMSD reads on save and writes on load.

A C struct is a ``dict`` keyed by member name; everything else follows from the field
that describes the member:

=========================  =============================================================
member described by         Python value (JSON in case files)
=========================  =============================================================
integer infos, timer        ``int`` (timer: expiry in ns, -1 = not armed)
bool                        ``bool``
CPU_Double_U, float64       ``int``: the IEEE-754 bit pattern (the union's ``ll``)
buffer, GByteArray          ``bytes`` (JSON: lowercase hex string)
bitmap                      ``int``, bit k of the int = bit k of the bitmap
capability                  ``str``
STRUCT / VSTRUCT            ``dict``
fixed or variable array     ``list`` of elements
VMS_POINTER                 the pointee, or ``None`` for NULL
ARRAY_OF_POINTER            ``list`` of pointees or ``None`` (NULL slots)
qtailq / qlist              ``list`` of element dicts, head first
gtree                       ``list`` of ``[key, value]`` pairs in key order
=========================  =============================================================

Counters and sizes (VARRAY, VBUFFER) are ordinary members of the containing struct.
Memory the core allocates without zeroing holds :data:`INDETERMINATE` (scalars, pointer
slots) or :class:`Uninit` (byte buffers) until the load writes it; reading it is a
hazard.  Members a state leaves out are zero (devices start from zeroed structs).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from conformance.errors import StateError
from conformance.model import limits as _limits
from conformance.model.description import Description, Field
from conformance.model.flags import ANY_VARRAY, F
from conformance.model.infos import lookup


class _Indeterminate:
    """The value of memory g_malloc() returned and nothing has written yet."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<indeterminate>"

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):
        return (_Indeterminate, ())


INDETERMINATE = _Indeterminate()
INDETERMINATE_JSON = "<indeterminate>"


class Uninit:
    """A non-zeroed byte buffer of ``nbytes`` bytes, not yet written."""

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes

    def __repr__(self) -> str:
        return f"Uninit({self.nbytes})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Uninit) and other.nbytes == self.nbytes

    def __hash__(self) -> int:
        return hash(("Uninit", self.nbytes))


def is_indeterminate(value) -> bool:
    return value is INDETERMINATE or isinstance(value, Uninit)


# ---------------------------------------------------------------------------------------
# Schema: which field describes which member


def member_fields(desc: Description) -> dict[str, Field]:
    """member -> the first field that describes it, over fields and subsections."""
    out: dict[str, Field] = {}

    def visit(d: Description) -> None:
        for field in d.fields:
            if field.member is not None and field.member not in out:
                out[field.member] = field
        for sub in d.subsections:
            visit(sub)

    visit(desc)
    return out


#: the value an info's member holds in a state (None: no claim)
_KIND_VALUES = {"int": "int", "equal": "int", "le": "int", "timer": "int", "double": "int",
                "bitmap": "int", "bool": "int", "buffer": "bytes", "unused": "bytes",
                "gbytearray": "bytes", "gtree": "gtree", "capability": "str",
                "qlist": "queue", "qtailq": "queue"}


def value_shape(field: Field) -> tuple[bool, str] | None:
    """(a list?, what each value is) of the member ``field`` describes, as the state
    holds it; None when the field claims nothing (no info, nullptr, tmp, fd)."""
    if field.flags & (F.STRUCT | F.VSTRUCT):
        element = "struct"
    else:
        info = lookup(field.info) if field.info else None
        element = _KIND_VALUES.get(info.kind) if info is not None else None
        if element is None:
            return None
    return bool(field.flags & (F.ARRAY | ANY_VARRAY)), element


_CONFLICTS: dict[int, tuple[Description, dict]] = {}


def shape_conflicts(desc: Description) -> dict[int, tuple[Field, Field]]:
    """id(field) -> (field, the member's first field), for each field of ``desc`` or of a
    description it nests whose member the first field describes as another kind of
    value (QEMU lays both over one offset: a 6-byte buffer over an int8 writes past it;
    the model keeps one value per member and does not reinterpret its bytes)."""
    entry = _CONFLICTS.get(id(desc))
    if entry is not None and entry[0] is desc:
        return entry[1]
    found: dict[int, tuple[Field, Field]] = {}
    seen: set[int] = set()
    todo = [desc]
    while todo:
        d = todo.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        schema = member_fields(d)
        shapes = {}
        parts = [d]
        while parts:  # d and its subsections: one struct
            part = parts.pop()
            parts.extend(part.subsections)
            for field in part.fields:
                todo.extend(v for v in (field.vmsd, field.key_vmsd) if v is not None)
                first = schema.get(field.member) if field.member is not None else None
                if first is None or first is field:
                    continue
                if first.member not in shapes:
                    shapes[first.member] = value_shape(first)
                mine, theirs = value_shape(field), shapes[first.member]
                if mine is not None and theirs is not None and mine != theirs:
                    found[id(field)] = (field, first)
    if len(_CONFLICTS) >= _TEMPLATE_CACHE_SIZE:
        _CONFLICTS.clear()
    _CONFLICTS[id(desc)] = (desc, found)
    return found


def zero_struct(desc: Description) -> dict:
    """A zero-initialised struct for ``desc`` (what a realized device starts from)."""
    return fresh_copy(_template(desc, True))


# One template per description and kind, copied per struct: an ALLOC array of 60,000
# structs built member by member spent seconds in flag arithmetic (found by fuzz).
_TEMPLATES: dict[tuple[int, bool], tuple[Description, dict]] = {}
_TEMPLATE_CACHE_SIZE = 1024


def _template(desc: Description, zeroed: bool) -> dict:
    key = (id(desc), zeroed)
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is desc:  # the description itself keeps its id unique
        return hit[1]
    make = zero_value if zeroed else _uninit_value
    template = {member: make(field) for member, field in member_fields(desc).items()}
    if len(_TEMPLATES) >= _TEMPLATE_CACHE_SIZE:
        _TEMPLATES.clear()
    _TEMPLATES[key] = (desc, template)
    return template


def fresh_copy(value):
    """A copy of a state's containers (dicts, lists); the leaves are immutable values
    (ints, bytes, None, INDETERMINATE, Uninit) and are shared."""
    kind = type(value)
    if kind is dict:
        return {k: fresh_copy(v) for k, v in value.items()}
    if kind is list:
        return [fresh_copy(v) for v in value]
    return value


def _check_num(field: Field) -> None:
    """A fixed array's ``num`` against the ``elements`` limit, before any element exists."""
    if field.num > _limits.ELEMENT_LIMIT:
        raise _limits.exceeded("elements", f"field {field.name!r}",
                               f"an array of {field.num} elements", field.num)


def state_size(desc: Description, path: str = "$.description") -> int:
    """How many values a zero state of ``desc`` holds; see :func:`state_footprint`."""
    return state_footprint(desc, path)[0]


def state_footprint(desc: Description, path: str = "$.description") -> tuple[int, int]:
    """(values, bytes) of a zero state of ``desc``: the values it holds (members, array
    elements, nested structs - each struct is a value besides its members) and its
    fields' bytes, computed from the description alone; LimitExceeded when a count, the nesting or a total exceeds its limit
    (``elements``, ``depth``, ``state-values``, ``state-bytes``: the fields' sizes summed
    the same way, so that many large buffers stop here, before any state is built).
    Pointed-to structs count too (a load may allocate them)."""
    memo: dict[int, tuple[int, int]] = {}

    def size(d: Description, where: str, depth: int) -> tuple[int, int]:
        if id(d) in memo:
            return memo[id(d)]
        if depth > _limits.DEPTH_LIMIT:
            raise _limits.exceeded("depth", where, f"descriptions nested {depth} deep", depth)
        total = nbytes = 0
        seen: set = set()
        todo = [(d, where)]
        while todo:  # the fields of d and of its subsections (as member_fields walks them)
            cur, at = todo.pop(0)
            todo.extend((sub, f"{at}.Subsections[{k}]") for k, sub in enumerate(cur.subsections))
            for i, field in enumerate(cur.fields):
                if field.member is None or field.member in seen:
                    continue
                seen.add(field.member)
                fpath = f"{at}.Fields[{i}]"
                n = field.num if field.flags & F.ARRAY else 1
                if n > _limits.ELEMENT_LIMIT:
                    raise _limits.exceeded("elements", f"{fpath}.num",
                                           f"an array of {n} elements", n)
                if field.size > 0 and max(n, 1) * field.size > _limits.BUFFER_LIMIT:
                    raise _limits.exceeded("buffer-bytes", fpath,
                                           f"{max(n, 1)} x {field.size} bytes", n * field.size)
                each, each_bytes = 1, max(field.size, 0)
                if field.flags & (F.STRUCT | F.VSTRUCT) and field.vmsd is not None:
                    # the struct itself counts: loading one walks it even with no fields
                    values, each_bytes = size(field.vmsd, f"{fpath}.Description", depth + 1)
                    each = 1 + values
                elif field.vmsd is not None:
                    # a GTree / QLIST / QTAILQ / tmp: the zero state holds no node, a
                    # state or a load may hold one (or more: their count is the state's),
                    # so one node's bytes count (fuzz: a node of 8 x 8 MiB buffers)
                    each_bytes = size(field.vmsd, f"{fpath}.Description", depth + 1)[1]
                    if field.key_vmsd is not None:  # and a GTree node's key struct
                        each_bytes += size(field.key_vmsd, f"{fpath}.key_Description",
                                           depth + 1)[1]
                total += max(n, 0) * each
                nbytes += max(n, 0) * each_bytes
                if total > _limits.STATE_LIMIT:
                    raise _limits.exceeded("state-values", fpath,
                                           f"a zero state of at least {total} values", total)
                if nbytes > _limits.STATE_BYTES_LIMIT:
                    raise _limits.exceeded("state-bytes", fpath,
                                           f"a state of at least {nbytes} bytes", nbytes)
        memo[id(d)] = total, nbytes
        return total, nbytes

    return size(desc, path, 0)


def zero_value(field: Field):
    flags = field.flags
    if flags & F.POINTER or flags & F.ARRAY_OF_POINTER and not flags & (F.ARRAY | ANY_VARRAY):
        return None
    if flags & F.ARRAY:
        _check_num(field)
        if flags & F.ARRAY_OF_POINTER:
            return [None] * field.num
        first = _zero_element(field)
        if first is None or isinstance(first, (bool, int, bytes, str)):
            return [first] * field.num  # immutable: one value, shared
        return [first] + [_zero_element(field) for _ in range(field.num - 1)]
    if flags & ANY_VARRAY:
        return []
    return _zero_element(field)


def _zero_element(field: Field):
    if field.flags & (F.STRUCT | F.VSTRUCT) and field.vmsd is not None:
        return zero_struct(field.vmsd)
    info = lookup(field.info) if field.info else None
    if info is None:
        return None
    kind = info.kind
    if kind == "bool":
        return False
    if kind in ("buffer", "unused"):
        return bytes(field.size) if not field.flags & F.VBUFFER else b""
    if kind == "gbytearray":
        return b""
    if kind == "gtree":
        return None  # a GTree * zeroed is NULL: no tree until the device creates one
    if kind in ("qtailq", "qlist"):
        return []
    if kind == "capability":
        return ""
    return 0


def uninit_struct(desc: Description) -> dict:
    """A struct as g_malloc() returns it: every member indeterminate."""
    return fresh_copy(_template(desc, False))


def _uninit_value(field: Field):
    if field.flags & F.POINTER:
        return INDETERMINATE
    if field.flags & F.ARRAY:
        _check_num(field)
        return [_uninit_element(field) for _ in range(field.num)]
    return _uninit_element(field)


def _uninit_element(field: Field):
    if field.flags & F.ARRAY_OF_POINTER:
        return INDETERMINATE
    if field.flags & (F.STRUCT | F.VSTRUCT) and field.vmsd is not None:
        return uninit_struct(field.vmsd)
    info = lookup(field.info) if field.info else None
    if info is not None and info.kind == "buffer" and not field.flags & F.VBUFFER:
        return Uninit(field.size)
    return INDETERMINATE


def fill_missing(desc: Description, state: dict) -> dict:
    """Add zero values for members ``state`` leaves out (recursively for structs)."""
    for member, field in member_fields(desc).items():
        if member not in state:
            state[member] = zero_value(field)
        elif field.flags & (F.STRUCT | F.VSTRUCT) and field.vmsd is not None:
            value = state[member]
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, dict):
                    fill_missing(field.vmsd, item)
    return state


# ---------------------------------------------------------------------------------------
# Copies and comparison


def clone(state):
    return copy.deepcopy(state)


def canonical(value) -> Any:
    """A hashable, order-stable form for comparing states by value."""
    if isinstance(value, dict):
        return ("struct", tuple(sorted((k, canonical(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("list", tuple(canonical(v) for v in value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(value))
    if value is INDETERMINATE:
        return ("indeterminate",)
    if isinstance(value, Uninit):
        return ("uninit", value.nbytes)
    if isinstance(value, bool):
        return ("bool", value)
    return value


def to_plain(value) -> Any:
    """JSON-ready form: bytes as hex, indeterminate memory as "<indeterminate>"."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if value is INDETERMINATE or isinstance(value, Uninit):
        return INDETERMINATE_JSON
    return value


# ---------------------------------------------------------------------------------------
# JSON -> state, guided by the description


#: bytes a state being built from JSON may still hold (None: not counted); see
#: :func:`bytes_budget`
_BYTES_LEFT: list = [None]


@contextlib.contextmanager
def bytes_budget():
    """Count the buffer bytes of the states :func:`from_plain` builds against
    ``state-bytes``: the zero state's bound (``state_size``) holds one GTree / QLIST
    node, a state holds as many as its JSON lists, each filled with zero buffers (fuzz:
    a 1.7 KB case whose two nodes held 31 MiB each).  Checked after each struct is
    built, so at most one node's bytes (within the bound) are made past it."""
    _BYTES_LEFT[0] = _limits.STATE_BYTES_LIMIT
    try:
        yield
    finally:
        _BYTES_LEFT[0] = None


def _spend_bytes(state: dict, path: str) -> None:
    """A struct's own buffers (its nested structs count where they are built)."""
    n = 0
    for value in state.values():
        if isinstance(value, (bytes, bytearray)):
            n += len(value)
        elif isinstance(value, list):
            n += sum(len(v) for v in value if isinstance(v, (bytes, bytearray)))
    _BYTES_LEFT[0] -= n
    if _BYTES_LEFT[0] < 0:
        total = _limits.STATE_BYTES_LIMIT - _BYTES_LEFT[0]
        raise _limits.exceeded("state-bytes", path, f"a state of at least {total} bytes", total)


def from_plain(desc: Description, plain, path: str = "$") -> dict:
    """Build a state for ``desc`` from its JSON form; StateError names the JSON path."""
    if not isinstance(plain, dict):
        raise StateError(path, f"a struct ({desc.name}) must be a JSON object")
    schema = member_fields(desc)
    state: dict = {}
    for member, value in plain.items():
        field = schema.get(member)
        sub = f"{path}.{member}"
        state[member] = _member_from_plain(field, value, sub) if field else _loose(value, sub)
    state = fill_missing(desc, state)
    if _BYTES_LEFT[0] is not None:
        _spend_bytes(state, path)
    return state


def _loose(value, path):
    """A member no field describes (a counter, a hook's scratch member)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, list):
        return [_loose(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _loose(v, f"{path}.{k}") for k, v in value.items()}
    raise StateError(path, f"unsupported value {value!r}")


def _member_from_plain(field: Field, value, path):
    flags = field.flags
    if value == INDETERMINATE_JSON:
        return INDETERMINATE
    if flags & (F.POINTER | F.ARRAY_OF_POINTER) and value is None:
        return None  # a NULL pointer (or a NULL slot of a one-element pointer "array")
    if flags & (F.ARRAY | ANY_VARRAY):
        if not isinstance(value, list):
            raise StateError(path, f"field {field.name!r} is an array: expected a JSON list")
        if flags & F.ARRAY_OF_POINTER:
            return [None if v is None else _element_from_plain(field, v, f"{path}[{i}]")
                    for i, v in enumerate(value)]
        bounds = _int_bounds(field)
        if bounds is not None:  # integer elements: checked inline, the path built on error
            lo, hi = bounds
            return [v if type(v) is int and lo <= v <= hi
                    else _element_from_plain(field, v, f"{path}[{i}]")
                    for i, v in enumerate(value)]
        return [_element_from_plain(field, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return _element_from_plain(field, value, path)


def _int_bounds(field: Field) -> tuple[int, int] | None:
    """(min, max) when every element of ``field`` is a plain integer info, else None."""
    if field.flags & (F.STRUCT | F.VSTRUCT) or not field.info:
        return None
    info = lookup(field.info)
    if info is None or info.kind not in ("int", "equal", "le", "timer"):
        return None
    return info.min, info.max


def _element_from_plain(field: Field, value, path):
    if value == INDETERMINATE_JSON:
        return INDETERMINATE
    if field.flags & (F.STRUCT | F.VSTRUCT) and field.vmsd is not None:
        return from_plain(field.vmsd, value, path)
    info = lookup(field.info) if field.info else None
    if info is None:
        return _loose(value, path)
    kind = info.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise StateError(path, f"{info.name} field {field.name!r} needs true/false")
        return value
    if kind in ("int", "equal", "le", "timer", "double"):
        if isinstance(value, bool) or not isinstance(value, int):
            if kind == "double" and isinstance(value, float):
                import struct

                return struct.unpack(">Q", struct.pack(">d", value))[0]
            raise StateError(path, f"{info.name} field {field.name!r} needs an integer")
        lo, hi = (info.min, info.max) if kind != "double" else (0, (1 << 64) - 1)
        if not lo <= value <= hi:
            raise StateError(path, f"{value} does not fit {info.name} ({lo}..{hi})")
        return value
    if kind in ("buffer", "unused", "gbytearray"):
        if not isinstance(value, str):
            raise StateError(path, f"{info.name} field {field.name!r} needs a hex string")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise StateError(path, f"not a hex string: {value!r}") from None
    if kind == "bitmap":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StateError(path, "a bitmap is a non-negative integer (bit k = bit k)")
        return value
    if kind in ("qtailq", "qlist"):
        if not isinstance(value, list):
            raise StateError(path, f"{info.name} field {field.name!r} needs a JSON list")
        return [from_plain(field.vmsd, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "gtree":
        if value is None:
            return None  # a NULL GTree * (the zero state's; get_gtree() then loses nodes)
        if not isinstance(value, list):
            raise StateError(path, "a gtree is null or a list of [key, value] pairs")
        pairs = []
        for i, pair in enumerate(value):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise StateError(f"{path}[{i}]", "a gtree node is a [key, value] pair")
            key = pair[0]
            if field.key_vmsd is not None:
                key = from_plain(field.key_vmsd, key, f"{path}[{i}][0]")
            elif isinstance(key, bool) or not isinstance(key, int):
                raise StateError(f"{path}[{i}][0]", "a direct gtree key is an integer")
            pairs.append([key, from_plain(field.vmsd, pair[1], f"{path}[{i}][1]")])
        return pairs
    if kind == "capability":
        if not isinstance(value, str):
            raise StateError(path, "a capability is a string")
        return value
    return _loose(value, path)
