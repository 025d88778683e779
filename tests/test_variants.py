"""The variant registry: flag numbering, policy points as data, decisions as switches."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import attrs
import pytest

from conformance.cases import load_case_file, run_case
from conformance.cli.variants import verdict  # noqa: F401  (the CLI module imports cleanly)
from conformance.model import variants as V
from conformance.model.description import Field
from conformance.model.flags import F

SCEN = Path(__file__).parent / "cases" / "scenarios"


def test_policy_points_never_test_a_variant_name():
    src = inspect.getsource(V.Variant)
    assert "self.name ==" not in src and "self.name in" not in src


@pytest.mark.parametrize("name,auto,end,numbers", [
    ("qemu-7.2", None, None, {}),
    ("legacy", None, 0x10000, {}),
    ("auto-alloc", 0x10000, 0x20000, {F.POINTER | F.VARRAY_UINT32 | F.ARRAY_OF_POINTER
                                      | F.STRUCT | F.AUTO_ALLOC: 0x1084A}),
    ("alloc", None, 0x10000, {F.POINTER | F.VARRAY_UINT32 | F.ARRAY_OF_POINTER | F.STRUCT
                              | F.ALLOC: 0x284A}),
])
def test_flag_numbering(name, auto, end, numbers):
    v = V.get(name)
    table = dict(v.flag_table())
    assert table["VMS_END"] == end
    assert table.get("VMS_ARRAY_OF_POINTER_AUTO_ALLOC") == auto
    for flags, value in numbers.items():
        assert v.numeric_flags(flags) == value
        assert v.flags_from_numeric(value) == flags
    if auto is None:
        with pytest.raises(KeyError):
            v.numeric_flags(F.AUTO_ALLOC)


AOP = F.ARRAY | F.ARRAY_OF_POINTER | F.STRUCT


@pytest.mark.parametrize("flags,expect", [
    # flags: {variant: (is_auto, allocates_array)}
    (AOP, {"legacy": (False, False), "auto-alloc": (False, False), "alloc": (False, False)}),
    (AOP | F.POINTER | F.ALLOC, {"legacy": (False, True), "auto-alloc": (False, True),
                                 "alloc": (True, False)}),
    (AOP | F.AUTO_ALLOC, {"legacy": (False, False), "auto-alloc": (True, False),
                          "alloc": (False, False)}),
    (AOP | F.POINTER | F.AUTO_ALLOC | F.ALLOC, {"auto-alloc": (True, True)}),
    (F.POINTER | F.VARRAY_INT32 | F.STRUCT | F.ALLOC,
     {"legacy": (False, True), "auto-alloc": (False, True), "alloc": (False, True)}),
])
def test_auto_and_array_allocation(flags, expect):
    field = Field("ar", flags, None, size=4, num=2)
    for name, (auto, array) in expect.items():
        v = V.get(name)
        assert (v.is_auto(field), v.allocates_array(field)) == (auto, array), name


def test_element_size_follows_the_size_convention():
    f = Field("ar", AOP, None, size=24, num=2)
    assert V.get("legacy").element_size(f, 24) == 24
    assert V.get("auto-alloc").element_size(f, 24) == 8 == V.get("alloc").element_size(f, 24)
    vbuf = Field("ar", AOP | F.VBUFFER, "buffer", size_member="sz")
    assert V.get("auto-alloc").element_size(vbuf, 5) == 5  # VBUFFER comes first


def test_decisions_are_complete_and_within_their_options():
    for v in V.VARIANTS.values():
        for key, (_, options) in V.DECISIONS.items():
            assert v.decision(key) in options, (v.name, key)
        if v.auto_flag_rule is not None:
            assert set(v.decisions) == set(V.DECISIONS), v.name
    assert [v.vmdesc_era for v in V.VARIANTS.values()] == ["A", "B", "C", "C"]


def test_a_decision_is_one_switch():
    case = load_case_file(SCEN / "13-auto-populated-slot-alloc.json")
    assert run_case(case, "alloc").load.kind == "ok"
    asserting = attrs.evolve(V.get("alloc"),
                             decisions={**V.get("alloc").decisions, "populated_auto_slot": "assert"})
    from conformance.engines import reference as R

    out = R.load(case.description, bytes.fromhex("013100000000"), case.dest_state(), asserting)
    assert out.kind == "abort" and out.message.endswith("*pptr == NULL")
    zeroing = attrs.evolve(V.get("auto-alloc"), decisions={
        **V.get("auto-alloc").decisions, "auto_load_element_size": "object"})
    buf = load_case_file(SCEN / "20-auto-buffer-auto-alloc.json")
    saved = R.save(buf.description, buf.source, zeroing)
    out = R.load(buf.description, saved.data + b"\0", buf.dest_state(), zeroing)
    assert out.ok and not out.hazards and len(out.data) == len(saved.data)


def test_variants_command_lists_every_flag(capsys):
    from conformance.cli import main

    assert main(["variants", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[2]["flags"]["VMS_ARRAY_OF_POINTER_AUTO_ALLOC"] == 0x10000
    assert rows[3]["auto_flag_rule"] == "pointer-array-alloc"
    assert main(["variants"]) == 0
    text = capsys.readouterr().out
    assert "VMS_END" in text and "0x20000" in text and "overwrite" in text


@pytest.mark.parametrize("name,variants,verdict_start", [
    ("04-auto-mixed-auto-alloc.json", "auto-alloc,alloc", "agree"),
    ("14-pointer-alloc-no-auto-legacy.json", "legacy,auto-alloc", "agree"),
    ("14-pointer-alloc-no-auto-legacy.json", "legacy,alloc", "differ: not expressible"),
    ("13-auto-populated-slot-auto-alloc.json", "auto-alloc,alloc", "differ on load"),
    ("02-null-slot-legacy.json", "legacy,auto-alloc", "agree"),
    ("18-pointer-array-size8.json", "legacy,auto-alloc", "differ in bytes"),
    ("26-vmdesc-duplicate-names-size0.json", "auto-alloc,alloc", "agree"),
])
def test_diff_verdicts(capsys, name, variants, verdict_start):
    from conformance.cli import main

    assert main(["diff", str(SCEN / name), "--variants", variants]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("verdict: " + verdict_start), last
    code = main(["diff", str(SCEN / name), "--variants", variants, "--fail-on-difference"])
    assert code == (0 if verdict_start == "agree" else 1)


def test_diff_bytes_differ_and_translation_is_announced(capsys):
    from conformance.cli import main

    case = str(SCEN / "02-null-slot-legacy.json")
    assert main(["diff", case, "--variants", "legacy,alloc,auto-alloc"]) == 0
    out = capsys.readouterr().out
    assert "alloc: translated from qemu-7.2" in out and "size 8 -> " in out
    assert "s/ar[1] (marker)" in out and "@4 30" in out
    assert main(["diff", str(SCEN / "11-writer-embedded-auto-auto-alloc.json"),
                 "--variants", "auto-alloc,legacy"]) == 0
    assert "not expressible in legacy" in capsys.readouterr().out


def test_diff_usage_errors_are_one_line(capsys):
    from conformance.cli import main

    assert main(["diff", str(SCEN / "02-null-slot-legacy.json"), "--variants", "legacy,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bogus" in err
    assert main(["diff", str(SCEN / "nope.json")]) == 1


@pytest.mark.parametrize("path", sorted(SCEN.glob("[0-9]*.json")),
                         ids=[p.stem for p in sorted(SCEN.glob("[0-9]*.json"))])
def test_annotate_leaves_tile_the_stream(path):
    from conformance.engines import reference as R
    from conformance.golden.annotate import AnnotateError, annotate

    case = load_case_file(path)
    for variant in case.variants:
        saved = R.save(case.description, case.source, variant)
        if not saved.ok:
            with pytest.raises(AnnotateError):
                annotate(case.description, case.source, variant)
            continue
        leaves = annotate(case.description, case.source, variant, leaves=True)
        offset = 0
        for span in leaves:
            assert span.offset == offset, (variant, span)
            assert span.path.startswith(case.description.name)
            offset = span.end
        assert offset == len(saved.data)
        markers = [s for s in leaves if s.kind == "marker"]
        assert all(saved.data[s.offset] == s.value and s.length == 1 for s in markers)


def test_master_conventions_are_one_policy_point_each():
    """Issue 22: every class of QEMU master's conventions is one policy point; auto-alloc
    and alloc hold master's value, qemu-7.2 and legacy do not move."""
    from conformance.model.variants import CONVENTIONS, VARIANTS

    def value(v, point):
        if point.startswith("decisions."):
            return v.decision(point.split(".", 1)[1])
        return getattr(v, point)

    for key, (point, master, cfunc, origin, _what) in CONVENTIONS.items():
        assert cfunc and origin, key
        for name in ("auto-alloc", "alloc"):
            assert value(VARIANTS[name], point) == master, (key, name)
        if key not in ("M3", "V"):  # the marker / vmdesc era never existed before master
            for name in ("qemu-7.2", "legacy"):
                assert value(VARIANTS[name], point) != master, (key, name)
