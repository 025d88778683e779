"""Runtime helpers the optimized engine's generated code calls.

Kept small: the hot work is inline in the generated code.  Anything a helper does not
vouch for raises :class:`Bail` and the operation is re-run by the interpreter
(engines/reference.py), which is the semantics.
"""

from __future__ import annotations

import struct

from conformance.engines._common import _s32
from conformance.model.description import Description
from conformance.model.flags import F
from conformance.model.state import INDETERMINATE, Uninit, fill_missing, zero_value


class Bail(Exception):
    """The fast path met something it does not vouch for: the interpreter decides."""


def _bail():
    raise Bail


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
    index = table.get(idstr)  # the name's bytes, as vmstate_get_subsection() compares
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
