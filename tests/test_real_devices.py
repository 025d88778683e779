"""The reference engine against device sections of a real QEMU 7.2 stream.

A few VMSDs of QEMU 7.2 are transcribed with the macro builders (hw/timer/i8254_common.c
vmstate_pit_common, hw/nvram/fw_cfg.c vmstate_fw_cfg, softmmu/cpu-timers.c
vmstate_timers, hw/intc/i8259_common.c vmstate_pic_common).  Each section body of
/work/shared/data/qemu-7.2/pc-min.mig must load completely, save back to the same bytes,
and produce the vmdesc entry QEMU wrote for it (Era A writer).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from conformance.engines import reference as R
from conformance.model.description import Description, Pred
from conformance.model.macros import (
    VMSTATE_INT32,
    VMSTATE_INT64,
    VMSTATE_INT64_V,
    VMSTATE_STRUCT_ARRAY,
    VMSTATE_UINT8,
    VMSTATE_UINT16,
    VMSTATE_UINT16_TEST,
    VMSTATE_UINT32_V,
    VMSTATE_UINT64,
    VMSTATE_UNUSED,
)

DATA = Path(__file__).parent / "data" / "qemu-7.2"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "qemu-7.2"


def _data_file(name: str) -> Path:
    for root in (DATA, SHARED):
        if (root / name).exists():
            return root / name
    pytest.skip(f"{name} is neither in tests/data/qemu-7.2 nor in ../shared/data/qemu-7.2")


pit_channel = Description("pit channel", 2, 2, fields=[
    VMSTATE_INT32("count"), VMSTATE_UINT16("latched_count"), VMSTATE_UINT8("count_latched"),
    VMSTATE_UINT8("status_latched"), VMSTATE_UINT8("status"), VMSTATE_UINT8("read_state"),
    VMSTATE_UINT8("write_state"), VMSTATE_UINT8("write_latch"), VMSTATE_UINT8("rw_mode"),
    VMSTATE_UINT8("mode"), VMSTATE_UINT8("bcd"), VMSTATE_UINT8("gate"),
    VMSTATE_INT64("count_load_time"), VMSTATE_INT64("next_transition_time")])
i8254 = Description("i8254", 3, 2, fields=[
    VMSTATE_UINT32_V("channels[0].irq_disabled", 3),
    VMSTATE_STRUCT_ARRAY("channels", 3, pit_channel, 2),
    VMSTATE_INT64("channels[0].next_transition_time")])

is_version_1 = Pred("not", args=(Pred("version_at_least", value=2),))
fw_cfg = Description("fw_cfg", 2, 1, fields=[
    VMSTATE_UINT16("cur_entry"),
    VMSTATE_UINT16_TEST("cur_offset", is_version_1),  # VMSTATE_UINT16_HACK
    VMSTATE_UINT32_V("cur_offset", 2)],
    subsections=[
        Description("fw_cfg/dma", 0, 0, needed=Pred("const", value=True),
                    fields=[VMSTATE_UINT64("dma_addr")]),
        Description("fw_cfg/acpi_mr", 1, 1, needed=Pred("const", value=True),
                    fields=[VMSTATE_UINT64("table_mr_size"), VMSTATE_UINT64("linker_mr_size"),
                            VMSTATE_UINT64("rsdp_mr_size")])])

timers = Description("timer", 2, 1, fields=[
    VMSTATE_INT64("cpu_ticks_offset"), VMSTATE_UNUSED(8), VMSTATE_INT64_V("cpu_clock_offset", 2)])

pic = Description("i8259", 1, 1, fields=[VMSTATE_UINT8(n) for n in (
    "last_irr", "irr", "imr", "isr", "priority_add", "irq_base", "read_reg_select", "poll",
    "special_mask", "init_state", "auto_eoi", "rotate_on_auto_eoi",
    "special_fully_nested_mode", "init4", "single_mode", "elcr")])

DEVICES = {("i8254", 0): i8254, ("fw_cfg", 0): fw_cfg, ("timer", 0): timers,
           ("i8259", 0): pic, ("i8259", 1): pic}


def _sections():
    """(idstr, instance, version, body) of every FULL section, from the record table."""
    mig = _data_file("pc-min.mig").read_bytes()
    out = {}
    for line in _data_file("pc-min.sections.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[1] != "FULL":
            continue
        offset, length = int(parts[0], 16), int(parts[-1])
        record = mig[offset:offset + length]
        assert record[0] == 0x04
        n = record[5]
        idstr = record[6:6 + n].decode()
        instance, version = struct.unpack(">II", record[6 + n:14 + n])
        out[(idstr, instance)] = (version, record[14 + n:])
    return out


def _vmdesc_entry(idstr, instance):
    desc = json.loads(_data_file("pc-min.desc.json").read_text())
    for dev in desc["devices"]:
        if dev["name"] == idstr and dev["instance_id"] == instance:
            return {k: v for k, v in dev.items() if k not in ("name", "instance_id")}
    raise KeyError(idstr)


@pytest.mark.parametrize("key", list(DEVICES), ids=[f"{k[0]}-{k[1]}" for k in DEVICES])
def test_real_section_round_trips(key):
    version, body = _sections()[key]
    desc = DEVICES[key]
    loaded = R.load(desc, body + b"\x7e", {}, "qemu-7.2", version_id=version)
    assert loaded.ok, loaded.summary()
    assert len(loaded.data) == len(body)  # the whole body, nothing more
    saved = R.save(desc, loaded.state, "qemu-7.2", vmdesc=True)
    assert saved.ok and saved.data == body
    assert json.loads(saved.vmdesc) == _vmdesc_entry(*key)
