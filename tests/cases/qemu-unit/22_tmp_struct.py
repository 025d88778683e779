"""/vmstate/tmp_struct (tests/unit/test-vmstate.c test_tmp_struct), as a Python case:
VMSTATE_WITH_TMP needs hooks with code (the temporary computes b - a on save and
restores b on load), which JSON cannot express."""

from conformance.cases import Case
from conformance.model.description import Description
from conformance.model.macros import (
    VMSTATE_INT64,
    VMSTATE_STRUCT_POINTER,
    VMSTATE_UINT32,
    VMSTATE_UINT64,
    VMSTATE_WITH_TMP,
)


def tmp_child_pre_save(tmp):
    tmp["diff"] = tmp["parent"]["b"] - tmp["parent"]["a"]
    return 0


def tmp_child_post_load(tmp, version_id):
    tmp["parent"]["b"] = tmp["parent"]["a"] + tmp["diff"]
    return 0


back_to_parent = Description("test/tmp_child_parent", fields=[VMSTATE_UINT64("f")])
tmp_child = Description("test/tmp_child", pre_save=tmp_child_pre_save,
                        post_load=tmp_child_post_load, fields=[
                            VMSTATE_INT64("diff"),
                            VMSTATE_STRUCT_POINTER("parent", back_to_parent)])
with_tmp = Description("test/with_tmp", 1, fields=[
    VMSTATE_UINT32("a"), VMSTATE_UINT64("d"), VMSTATE_WITH_TMP(tmp_child)])

SOURCE = {"a": 2, "b": 4, "d": 1, "f": 8}
WIRE = "00000002" "0000000000000001" "0000000000000002" "0000000000000008"

CASES = [
    Case("/vmstate/tmp_struct", with_tmp, SOURCE, {"a": 0, "b": 0, "d": 0, "f": 0},
         ("qemu-7.2", "legacy", "auto-alloc", "alloc"), truncation=True,
         expect={"save": {"kind": "ok", "stream": WIRE},
                 "load": {"kind": "ok", "state": SOURCE}}),
]
