"""Requests: one operation encoded as the text the driver reads (:func:`build_request`).

Part of :mod:`conformance.qemu.layout` (its docstring describes the layout)."""

from __future__ import annotations

from conformance.model.description import Description
from conformance.qemu.layout.image import ImageWriter
from conformance.qemu.layout.planner import Planner, StructLayout
from conformance.qemu.layout.tables import Tables

# ---------------------------------------------------------------------------------------
# Requests


class Request:
    """Everything the driver needs for one operation, plus what the walker needs."""

    def __init__(self, text: bytes, writer: ImageWriter, root: StructLayout, root_off: int,
                 arena_size: int) -> None:
        self.variant = writer.p.v
        self.text = text
        self.writer = writer
        self.root = root
        self.root_off = root_off
        self.arena_size = arena_size


def build_request(op: str, desc: Description, state: dict, variant, have_infos: set[str], *,
                  version_id: int = 0, vmdesc: bool = False, stream: bytes = b"") -> Request:
    planner = Planner(variant, have_infos)
    planner.scan(desc, state, "$")
    root = planner.layout(desc, "struct", desc.name)
    tables = Tables(variant, planner)
    root_vmsd = tables.vmsd(desc, root, desc.name)
    w = ImageWriter(planner)
    root_off = w.img.alloc(root.size)
    w.struct(root, state, root_off, "$")
    img = w.img
    key_recs = []
    for lay in w.key_layouts:
        mem = []
        for s in lay.slots.values():
            width = s.width if s.kind == "scalar" else 8
            mem.append(f"{s.offset} {width} {int(s.signed)}")
        key_recs.append(f"{len(lay.slots)} " + " ".join(mem))
    parts = [
        f"{op} {version_id} {int(vmdesc)} {len(img.buf)} {root_off} {root_vmsd}",
        img.buf.hex() or "-",
        f"{len(img.relocs)} " + " ".join(map(str, img.relocs)),
        f"{len(key_recs)} " + " ".join(key_recs),
        f"{len(img.objects)} " + " ".join(img.objects),
        f"{len(tables.preds)} " + " ".join(tables.preds),
        f"{len(tables.hooks)} " + " ".join(tables.hooks),
        f"{len(tables.vmsds)} " + " ".join(tables.vmsds),
        stream.hex() or "-",
    ]
    return Request("\n".join(parts).encode() + b"\n", w, root, root_off, len(img.buf))


