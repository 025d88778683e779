"""Hooks with code: pre_save computes a checksum member from the payload, post_load
recomputes it and fails with -EINVAL (-22) on a mismatch (the pattern of devices that
validate incoming state in post_load).  Two cases: the round trip, and a stream whose
checksum byte was altered in transit (load_input)."""

from conformance.cases import Case
from conformance.model.macros import VMSTATE_UINT8, VMSTATE_UINT8_ARRAY
from conformance.model.description import Description


def pre_save(s):
    s["csum"] = sum(s["data"]) & 0xFF
    return 0


def post_load(s, version_id):
    return 0 if s["csum"] == sum(s["data"]) & 0xFF else -22


DEV = Description("hooks/checksum", 1, 1, pre_save=pre_save, post_load=post_load,
                  fields=[VMSTATE_UINT8_ARRAY("data", 4), VMSTATE_UINT8("csum")])
SOURCE = {"data": [1, 2, 3, 4], "csum": 0}
DEST = {"data": [0, 0, 0, 0], "csum": 0}
ALL = ("qemu-7.2", "legacy", "auto-alloc", "alloc")

CASES = [
    Case("hooks/checksum (round trip)", DEV, SOURCE, DEST, ALL,
         notes="pre_save fills csum = 1+2+3+4 = 0x0a",
         expect={"save": {"kind": "ok", "stream": "010203040a"},
                 "load": {"kind": "ok", "state": {"data": [1, 2, 3, 4], "csum": 10}}}),
    Case("hooks/checksum (corrupted)", DEV, SOURCE, DEST, ALL,
         load_input=bytes.fromhex("010203040100"),
         notes="the checksum byte arrives as 0x01: post_load fails the load",
         expect={"load": {"kind": "error", "ret": -22}}),
]
