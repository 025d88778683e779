"""The benchmark corpora: (description, variant, source state, load destination).

Cheap to import (``bench --help`` lists the names): each builder imports the model
when it is called.

* ``scalar-heavy``  about 200 scalar fields in nested structs (legacy variant);
* ``array-heavy``   e1000-like: two 64 KiB buffers, a 32768-entry uint32 register
                    array, uint16 arrays (legacy variant);
* ``pointer-array`` NVMe-like: 1024 queue slots, half NULL, auto-allocating
                    (VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC, variant auto-alloc);
* ``deep-nesting``  structs nested 12 levels deep, a struct array at each level.
"""

from __future__ import annotations

SCALAR_INFOS = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                "bool")


def _model():
    from conformance.model import macros
    from conformance.model.description import Description

    return macros, Description


def _value(info: str, k: int):
    if info == "bool":
        return k % 2 == 0
    width = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "uint32": 32, "int32": 32,
             "uint64": 64, "int64": 64}[info]
    value = (k * 2654435761) & ((1 << width) - 1)
    if info.startswith("int") and value >= 1 << (width - 1):
        value -= 1 << width
    return value


def _scalar_block(prefix: str, count: int, start: int):
    M, Description = _model()
    fields, state = [], {}
    for k in range(count):
        info = SCALAR_INFOS[(start + k) % len(SCALAR_INFOS)]
        name = f"{prefix}{k}"
        fields.append(M.VMSTATE_SINGLE(name, info))
        state[name] = _value(info, start + k)
    return fields, state


def scalar_heavy():
    """~200 scalars: 40 at the top, four nested structs of 40 (one nested twice)."""
    M, Description = _model()
    fields, state = _scalar_block("r", 40, 0)
    inner_fields, inner_state = _scalar_block("x", 20, 500)
    inner = Description("dev/regs/inner", 1, 1, fields=inner_fields)
    for s in range(4):
        sub_fields, sub_state = _scalar_block(f"s{s}_", 20 if s == 0 else 40, 100 * (s + 1))
        if s == 0:
            sub_fields.append(M.VMSTATE_STRUCT("inner", inner))
            sub_state["inner"] = dict(inner_state)
        sub = Description(f"dev/bank{s}", 1, 1, fields=sub_fields)
        fields.append(M.VMSTATE_STRUCT(f"bank{s}", sub))
        state[f"bank{s}"] = sub_state
    desc = Description("scalar-dev", 3, 1, fields=fields)
    return desc, "legacy", state, state


def array_heavy():
    """e1000-like: MAC registers, EEPROM, PHY registers, TX/RX packet buffers."""
    M, Description = _model()
    desc = Description("e1000-like", 2, 1, fields=[
        M.VMSTATE_UINT32("rxbuf_size"),
        M.VMSTATE_UINT32("rxbuf_min_shift"),
        M.VMSTATE_UINT16_ARRAY("eeprom_data", 64),
        M.VMSTATE_UINT16_ARRAY("phy_reg", 32),
        M.VMSTATE_UINT32_ARRAY("mac_reg", 0x8000),
        M.VMSTATE_BUFFER("tx_data", 0x10000),
        M.VMSTATE_BUFFER("rx_data", 0x10000),
        M.VMSTATE_UINT8_ARRAY("tx_header", 256),
        M.VMSTATE_UINT32("tx_tso_frames"),
    ])
    state = {
        "rxbuf_size": 2048, "rxbuf_min_shift": 1,
        "eeprom_data": [(k * 7919) & 0xFFFF for k in range(64)],
        "phy_reg": [(k * 31) & 0xFFFF for k in range(32)],
        "mac_reg": [(k * 2654435761) & 0xFFFFFFFF for k in range(0x8000)],
        "tx_data": bytes((k * 13) & 0xFF for k in range(0x10000)),
        "rx_data": bytes((k * 17) & 0xFF for k in range(0x10000)),
        "tx_header": [k & 0xFF for k in range(256)],
        "tx_tso_frames": 12,
    }
    return desc, "legacy", state, state


def pointer_array():
    """NVMe-like: 1024 auto-allocated queue slots, every other one NULL."""
    M, Description = _model()
    queue = Description("nvme-queue", 1, 1, fields=[
        M.VMSTATE_UINT16("sqid"), M.VMSTATE_UINT16("cqid"), M.VMSTATE_UINT32("head"),
        M.VMSTATE_UINT32("tail"), M.VMSTATE_UINT32("size"), M.VMSTATE_UINT64("dma_addr"),
        M.VMSTATE_BOOL("phase"), M.VMSTATE_UINT8("prio"),
    ])
    desc = Description("nvme-like", 1, 1, fields=[
        M.VMSTATE_UINT32("num_queues"),
        M.VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC("queues", "num_queues", queue),
    ])
    slots = []
    for k in range(1024):
        slots.append(None if k % 2 else {
            "sqid": k, "cqid": k, "head": k * 3, "tail": k * 5, "size": 1024,
            "dma_addr": 0x1000_0000 + k * 0x1000, "phase": bool(k & 2), "prio": k & 3})
    state = {"num_queues": 1024, "queues": slots}
    dest = {"num_queues": 1024, "queues": [None] * 1024}  # QEMU 11 asserts NULL slots
    return desc, "auto-alloc", state, dest


def deep_nesting(depth: int = 12):
    """Each level: a few scalars, a 2-element struct array, then the next level."""
    M, Description = _model()
    leaf = Description("leaf", 1, 1, fields=[M.VMSTATE_UINT32("a"), M.VMSTATE_UINT16("b")])
    desc = Description(f"level{depth}", 1, 1, fields=[M.VMSTATE_UINT64("v"),
                                                     M.VMSTATE_STRUCT_ARRAY("leaves", 2, leaf)])
    leaf_state = [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    state = {"v": depth, "leaves": leaf_state}
    for level in range(depth - 1, 0, -1):
        desc = Description(f"level{level}", 1, 1, fields=[
            M.VMSTATE_UINT32("id"), M.VMSTATE_INT16("delta"), M.VMSTATE_BOOL("on"),
            M.VMSTATE_STRUCT_ARRAY("leaves", 2, leaf),
            M.VMSTATE_STRUCT("child", desc)])
        state = {"id": level, "delta": -level, "on": level % 2 == 0,
                 "leaves": [dict(x) for x in leaf_state], "child": state}
    return desc, "legacy", state, state


CORPORA = {
    "scalar-heavy": scalar_heavy,
    "array-heavy": array_heavy,
    "pointer-array": pointer_array,
    "deep-nesting": deep_nesting,
}
