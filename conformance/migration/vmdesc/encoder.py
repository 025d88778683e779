"""Decoded device state back to its wire bytes (``encode_body``, ``body_bytes``), and
which field a byte offset falls in (``locate_in_body``)."""

from __future__ import annotations

from conformance.migration.vmdesc.fields import (
    _BE32,
    _BE64,
    QEMU_VM_SUBSECTION,
    Body,
    Field,
    GTree,
    _array_codec,
)
from conformance.model.infos import INFOS, packer


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
