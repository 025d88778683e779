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


# The case-author surface (golden/FORMAT.md §7.8): what a Python case module imports.
CASE_AUTHOR_NAMES = ("Case", "Description", "F", "Field", "Hook", "Pred")

# Every module path of the flat layout before the subpackages that no longer exists as a
# file (git show c80fef0^ --stat); listed here, not read from the table it checks.
# (conformance.campaign is a module again: the run campaign, the application floor.)
OLD_PATHS = {
    "conformance.annotate": "conformance.golden.annotate",
    "conformance.check": "conformance.model.check",
    "conformance.flags": "conformance.model.flags",
    "conformance.infos": "conformance.model.infos",
    "conformance.jsonwriter": "conformance.migration.jsonwriter",
    "conformance.limits": "conformance.model.limits",
    "conformance.macros": "conformance.model.macros",
    "conformance.migbench": "conformance.bench.migration",
    "conformance.migcli": "conformance.cli.migration",
    "conformance.migfile": "conformance.migration.migfile",
    "conformance.outcome": "conformance.model.outcome",
    "conformance.qemufile": "conformance.engines.qemufile",
    "conformance.state": "conformance.model.state",
    "conformance.translate": "conformance.model.translate",
    "conformance.variantcli": "conformance.cli.variants",
    "conformance.variants": "conformance.model.variants",
    "conformance.vmdesc": "conformance.migration.vmdesc",
}


def test_case_author_names_import_from_the_package_top():
    import conformance
    from conformance import Case, Description, F, Field, Hook, Pred  # noqa: F401
    from conformance.cases.casefile import Case as case_cls
    from conformance.model import description, flags, macros

    assert set(CASE_AUTHOR_NAMES) <= set(conformance.__all__) <= set(dir(conformance))
    assert Case is case_cls and F is flags.F
    for name in ("Description", "Field", "Hook", "Pred"):
        assert getattr(conformance, name) is getattr(description, name)
    assert isinstance(macros.VMSTATE_UINT8("x"), Field)
    # the earlier home of the model classes keeps them (and what it defined besides)
    import conformance.model as old_home

    for name in ("Description", "Field", "Hook", "Pred", "F", "PRED_KINDS", "evolve",
                 "nominal_size"):
        assert getattr(old_home, name) is getattr(description, name), name


def test_every_old_module_path_is_the_module_that_replaced_it():
    import importlib

    import conformance

    assert conformance.OLD_MODULE_PATHS == OLD_PATHS
    for old, new in OLD_PATHS.items():
        module = importlib.import_module(old)
        assert module is importlib.import_module(new), old
        assert module.__name__ == new and module.__spec__.name == new  # not renamed
        parent, _, child = old.rpartition(".")
        assert getattr(importlib.import_module(parent), child) is module
    from conformance.flags import F
    from conformance.macros import VMSTATE_UINT8

    assert VMSTATE_UINT8("x").flags == F.SINGLE
    try:
        importlib.import_module("conformance.no_such_module")
    except ModuleNotFoundError as e:
        assert e.name == "conformance.no_such_module"
    else:
        raise AssertionError("an unknown path imported")


def test_a_case_module_written_against_the_flat_layout_still_runs(tmp_path):
    """golden/cases/hooks/checksum.py as it was written before the subpackages."""
    import conformance

    path = tmp_path / "old_checksum.py"
    path.write_text(
        "from conformance.cases import Case\n"
        "from conformance.flags import F\n"
        "from conformance.macros import VMSTATE_UINT8, VMSTATE_UINT8_ARRAY\n"
        "from conformance.model import Description, Field\n"
        "def pre_save(s):\n"
        "    s['csum'] = sum(s['data']) & 0xFF\n"
        "    return 0\n"
        "DEV = Description('old', 1, 1, pre_save=pre_save, fields=[\n"
        "    VMSTATE_UINT8_ARRAY('data', 4), VMSTATE_UINT8('csum'),\n"
        "    Field('pad', flags=F.ARRAY, info='uint8', num=1)])\n"
        "CASES = [Case('old', DEV, {'data': [1, 2, 3, 4], 'csum': 0, 'pad': [9]}, None,\n"
        "              ('legacy',))]\n")
    case = conformance.load_case(path)
    assert conformance.save(case.description, case.source).data == bytes.fromhex("010203040a09")
