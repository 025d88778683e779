"""translate(): the same intent in another variant, round trips, and the reasons a
declaration cannot be expressed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cases import load_case_file
from conformance.engines import reference as R
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.translate import NotExpressible, intent, translate, try_translate
from conformance.model.variants import VARIANTS

SCENARIOS = sorted((Path(__file__).parent / "cases" / "scenarios").glob("[0-9]*.json"))
T = Description("T", 1, 1, fields=[Field("i", F.SINGLE, "int32", size=4)])


def arr(flags, size, **kw):
    return Description("s", 1, 1, fields=[
        Field("n", F.SINGLE, "uint8", size=1),
        Field("ar", flags, None, size=size, num_member="n", vmsd=T, **kw)])


AUTO_B = F.POINTER | F.VARRAY_UINT8 | F.ARRAY_OF_POINTER | F.STRUCT | F.AUTO_ALLOC
AUTO_C = F.POINTER | F.VARRAY_UINT8 | F.ARRAY_OF_POINTER | F.STRUCT | F.ALLOC
PLAIN = F.ARRAY | F.ARRAY_OF_POINTER | F.STRUCT


def test_auto_alloc_to_alloc_swaps_the_flag_and_keeps_the_pointee_size():
    out = translate(arr(AUTO_B, 4), "auto-alloc", "alloc")
    assert out.fields[1].flags == AUTO_C and out.fields[1].size == 4
    assert translate(out, "alloc", "auto-alloc") == arr(AUTO_B, 4)


def test_plain_pointer_array_size_convention():
    legacy = Description("s", 1, 1, fields=[Field("ar", PLAIN, None, size=8, num=4, vmsd=T)])
    for target in ("auto-alloc", "alloc"):
        out = translate(legacy, "legacy", target)
        assert out.fields[0].size == 0 and out.fields[0].flags == PLAIN
        assert translate(out, target, "legacy") == legacy
    assert translate(legacy, "legacy", "qemu-7.2") == legacy


def test_not_expressible_reasons_name_the_field():
    with pytest.raises(NotExpressible) as exc:
        translate(arr(AUTO_B | F.ALLOC, 4), "auto-alloc", "alloc")
    assert exc.value.path == "s/ar" and "both the pointer array and its elements" in str(exc.value)
    legacy_alloc = arr(F.POINTER | F.VARRAY_UINT8 | F.ARRAY_OF_POINTER | F.STRUCT | F.ALLOC, 8)
    with pytest.raises(NotExpressible, match="silently change the wire format"):
        translate(legacy_alloc, "legacy", "alloc")
    for target in ("legacy", "qemu-7.2"):
        with pytest.raises(NotExpressible, match="does not exist in " + target):
            translate(arr(AUTO_B, 4), "auto-alloc", target)
        with pytest.raises(NotExpressible):
            translate(arr(AUTO_C, 4), "alloc", target)
    # AUTO_ALLOC in a description said to be written for a variant without it
    assert "AUTO_ALLOC" in try_translate(arr(AUTO_B, 4), "legacy", "auto-alloc")[1]


def test_legacy_alloc_pointer_array_survives_into_auto_alloc():
    flags = F.POINTER | F.VARRAY_UINT8 | F.ARRAY_OF_POINTER | F.STRUCT | F.ALLOC
    out = translate(arr(flags, 8), "legacy", "auto-alloc")
    assert out.fields[1].flags == flags and out.fields[1].size == 0
    assert intent(out.fields[1], "auto-alloc") == intent(arr(flags, 8).fields[1], "legacy") \
        == "array-alloc"


def test_nested_and_shared_descriptions_are_translated():
    inner = Description("in", 1, 1, fields=[Field("ar", PLAIN, None, size=8, num=2, vmsd=T)])
    outer = Description("out", 1, 1, fields=[Field("a", F.STRUCT, vmsd=inner),
                                             Field("b", F.STRUCT, vmsd=inner)])
    out = translate(outer, "legacy", "auto-alloc")
    assert out.fields[0].vmsd.fields[0].size == 0
    assert out.fields[0].vmsd is out.fields[1].vmsd


def test_terminators_follow_vms_end():
    d = Description("s", 1, 1, fields=[Field("x", F.SINGLE, "uint8", size=1)], terminator=0x10000)
    assert translate(d, "legacy", "auto-alloc").terminator is None
    broken = Description("s", 1, 1, fields=d.fields, terminator=0x20000)
    with pytest.raises(NotExpressible, match="VMS_END in auto-alloc"):
        translate(broken, "legacy", "auto-alloc")
    assert translate(broken, "legacy", "alloc").terminator == 0x20000
    with pytest.raises(NotExpressible, match="no VMS_END canary"):
        translate(broken, "legacy", "qemu-7.2")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_round_trips_and_keeps_the_bytes(path):
    case = load_case_file(path)
    home = case.variants[0]
    home_save = R.save(case.description, case.source, home)
    if home_save.kind == "rejected":
        return  # an invalid declaration has no intent to preserve (scenarios 17-19)
    for target in VARIANTS:
        out, reason = try_translate(case.description, home, target)
        if out is None:
            assert reason.split(":")[0].startswith(case.description.name)
            continue
        assert translate(out, target, home) == case.description, target
        if home_save.ok:
            # the same intent passes vmstate_check and saves ... the same bytes where both
            # variants share the wire format of that intent
            there = R.save(out, case.source, target)
            assert there.kind == "ok", (target, there.summary())
            if {home, target} <= {"qemu-7.2", "legacy"} or \
                    (home in ("auto-alloc", "alloc") and target in ("auto-alloc", "alloc")):
                assert there.data == home_save.data, target
