"""Renderings of decoded device state: exactly as ``analyze-migration.py -d state``
prints it (``analyze_body``), our JSON (``state_body``), and notes on what stayed raw
(``raw_notes``)."""

from __future__ import annotations

from conformance.errors import FormatError
from conformance.migration.vmdesc.encoder import field_bytes
from conformance.migration.vmdesc.fields import Body, Field, GTree, _array_codec
from conformance.model.infos import INFOS, packer

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
