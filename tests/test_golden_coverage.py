"""Coverage of the golden corpus: every VMStateFlags bit and every field info has a
golden case with a pinned stream, every variant is pinned, and the corpus includes the
QEMU unit vectors, the pointer-array scenarios, subsection shapes, versions and
field_exists, and zero-length and maximal counts.

Exemption: the ``fd`` info (vmstate_info_fd) travels as SCM_RIGHTS ancillary data, not
in a file stream; it needs a case (pinning the refusal) but no stream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import golden
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.infos import FIELD_INFOS

ROOT = golden.find_root(Path(__file__).resolve().parent)
REFS, _ = golden.discover(ROOT)
MANIFEST = golden.load_manifest(ROOT)
COVERAGE = golden.coverage(REFS, MANIFEST)
IDS = {r.id for r in REFS}


@pytest.mark.parametrize("flag", [f.name for f in F if f.value])
def test_every_flag_has_a_golden_case_with_a_stream(flag):
    assert flag not in COVERAGE["missing_flags"], (
        f"VMStateFlags {flag}: no golden case saves a stream with it (used by "
        f"{COVERAGE['flags'][flag] or 'no case'})")


@pytest.mark.parametrize("info", FIELD_INFOS)
def test_every_info_has_a_golden_case_with_a_stream(info):
    assert info not in COVERAGE["missing_infos"], (
        f"info {info!r}: no golden case saves a stream with it (used by "
        f"{COVERAGE['infos'][info] or 'no case'})")


def test_fd_is_exempt_but_has_a_case():
    assert "fd" in golden.STREAM_EXEMPT_INFOS
    assert COVERAGE["infos"]["fd"], "the fd exemption still needs a case pinning the refusal"
    for cid in COVERAGE["infos"]["fd"]:
        for v, e in MANIFEST["cases"][cid]["variants"].items():
            assert "stream" not in e["save"], (cid, v)


def test_coverage_check_can_fail():
    """The helper reports a flag and an info nobody uses, and a used-but-never-saved one."""
    t = Description("t", fields=[Field("x", F.SINGLE, "uint8", size=1)])
    from conformance.cases import Case

    refs = [golden.CaseRef("only/one", "x.json", None, Case("one", t, {"x": 1}))]
    cov = golden.coverage(refs, {"cases": {}})
    assert "ARRAY" in cov["missing_flags"] and "SINGLE" in cov["missing_flags"]
    assert "uint8" in cov["missing_infos"] and "fd" in cov["missing_infos"]
    pinned = {"cases": {"only/one": {"variants": {"legacy": {"save": {"stream": "s.bin"}}}}}}
    cov = golden.coverage(refs, pinned)
    assert "SINGLE" not in cov["missing_flags"] and "uint8" not in cov["missing_infos"]


def test_every_variant_is_pinned_for_every_case():
    for ref in REFS:
        entry = MANIFEST["cases"].get(ref.id)
        assert entry is not None, f"{ref.id} has no pinned files"
        assert set(entry["variants"]) == set(golden.VARIANTS), ref.id


def test_qemu_unit_vectors_are_in_the_corpus():
    files = sorted((ROOT / "tests" / "cases" / "qemu-unit").glob("*.*"))
    assert files
    for f in files:
        assert any(r.file == f.relative_to(ROOT).as_posix() for r in REFS), f


def test_pointer_array_scenarios_are_in_the_corpus():
    top = ROOT / "tests" / "cases" / "scenarios"
    if not top.is_dir():
        pytest.skip("tests/cases/scenarios does not exist yet")
    files = sorted(p for p in top.rglob("*") if p.suffix in (".json", ".py")
                   and not p.name.startswith("_"))
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        assert any(r.file == rel for r in REFS), rel
        assert any(e["file"] == rel for e in MANIFEST["cases"].values()), f"{rel} not pinned"


@pytest.mark.parametrize("cid", [
    "subsections/nested", "subsections/out-of-order", "subsections/missing",
    "subsections/duplicated", "qemu-unit/A4-subsection-unknown", "subsections/not-needed",
    "versions/load-old", "versions/too-new", "versions/too-old", "versions/field-exists",
    "versions/field-exists-skip", "flags/vstruct",
    "counts/zero-length", "counts/varray-uint8-max", "counts/varray-uint16-max",
    "counts/varray-uint32-wraps", "counts/varray-int32-negative",
])
def test_named_shapes_are_covered(cid):
    assert cid in IDS, f"{cid}: the corpus lost this shape"
    assert cid in MANIFEST["cases"], f"{cid} is not pinned"


def test_maximal_count_streams_are_pinned_at_full_length():
    e = MANIFEST["cases"]["counts/varray-uint16-max"]["variants"]["legacy"]["save"]
    assert e["bytes"] == 2 + 65535
    e = MANIFEST["cases"]["counts/varray-uint8-max"]["variants"]["legacy"]["save"]
    assert e["bytes"] == 1 + 255


def test_nested_subsection_case_really_nests():
    ref = next(r for r in REFS if r.id == "subsections/nested")
    assert ref.case.description.subsections[0].subsections


def test_auto_alloc_and_alloc_spellings_are_paired():
    """The scenarios spelled with AUTO_ALLOC (auto-alloc) and ARRAY_OF_POINTER|ALLOC
    (alloc) are paired in divergences.json: same bytes wherever they agree, and the
    populated-slot scenario (assert vs overwrite) shows up as a disagreement."""
    doc = golden.load_divergences(ROOT)
    pairs = [p for p in doc["spellings"]
             if {x["variant"] for x in p["pair"]} == {"auto-alloc", "alloc"}]
    if not pairs:
        pytest.skip("no AUTO_ALLOC/ALLOC scenario pairs in the corpus")
    assert any(p["save"].startswith("identical bytes") for p in pairs)
    populated = [p for p in pairs if any("populated" in x["case"] for x in p["pair"])]
    assert populated and not populated[0]["agree"] and populated[0]["why"]
