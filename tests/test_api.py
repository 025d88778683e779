"""The public API at the package top (conformance/__init__.py)."""

from __future__ import annotations

from conformance.model.description import Description
from conformance.model.macros import VMSTATE_UINT16, VMSTATE_UINT16_ARRAY, VMSTATE_UINT32


def _desc() -> Description:
    return Description("dev", version_id=1, minimum_version_id=1,
                       fields=(VMSTATE_UINT32("a"), VMSTATE_UINT16("b"),
                               VMSTATE_UINT16_ARRAY("c", 3)))


STATE = {"a": 0x01020304, "b": 0x0506, "c": [0x0708, 0x090A, 0x0B0C]}
BIG_ENDIAN = bytes.fromhex("01020304" "0506" "0708090a0b0c")


def test_public_api_matches_the_engines_and_variants():
    import conformance
    from conformance.engines import ENGINE_NAMES
    from conformance.model.variants import VARIANTS

    assert conformance.ENGINES == tuple(ENGINE_NAMES)
    assert conformance.VARIANTS == tuple(VARIANTS)
    for name in conformance.ENGINES:
        assert conformance.engine(name).save(_desc(), STATE).data == BIG_ENDIAN
    assert conformance.load(_desc(), BIG_ENDIAN, {"a": 0, "b": 0, "c": [0, 0, 0]},
                            engine="optimized").state == STATE


def test_load_case_and_decode_migration(tmp_path):
    import pathlib

    import conformance

    root = pathlib.Path(__file__).resolve().parent.parent
    case = conformance.load_case(root / "golden/cases/flags/array.json")
    out = conformance.save(case.description, case.source, case.variants[0])
    assert out.ok
    mf = conformance.decode_migration((root / "tests/data/qemu-7.2/pc-min.mig").read_bytes())
    assert mf.records
