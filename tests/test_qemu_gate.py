"""``run --engine qemu``: the case corpora and the property sweep against QEMU's own C
(conformance/qemu/gate.py, conformance/qemu/selection.py).

Tests that run C need a cached build and skip with the command that makes one; the
selection tests use an empty cache (XDG_CACHE_HOME) and always run.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from conformance import campaign
from conformance.cli import main
from conformance.qemu import selection

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "conformance" / "data" / "examples"
CORPORA = [EXAMPLES, ROOT / "golden" / "cases", ROOT / "tests" / "cases" / "qemu-unit",
           ROOT / "tests" / "cases" / "scenarios"]


def _builds():
    try:
        return selection.default_builds()
    except Exception:  # noqa: BLE001 - a broken cache is "no build" here
        return []


BUILDS = _builds()
NEED_BUILD = pytest.mark.skipif(not BUILDS, reason="no cached QEMU build: run "
                                "`vmstate-conformance qemu build --debian 10.2` (and 7.2)")


def _args(paths, **kw):
    base = dict(paths=paths, engine=None, qemu_build=None, variant=None, properties=None,
                profile=None, property=None, report=None, verbose=False, quiet=True,
                json=False, argv=[])
    base.update(kw)
    return type("Args", (), base)()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------
# Selection (no build needed)


def test_no_argument_run_says_how_to_make_a_build_when_none_is_cached(empty_cache):
    engines, builds, note = selection.campaign_engines(_args([]))
    assert "qemu" not in " ".join(engines) and builds == []
    assert note and "vmstate-conformance qemu build --debian 10.2" in note


def test_run_with_paths_and_no_engine_leaves_the_qemu_engine_out(empty_cache):
    engines, builds, note = selection.campaign_engines(_args([str(EXAMPLES)]))
    assert builds == [] and note is None and engines == ["reference", "optimized"]


@pytest.mark.parametrize("argv", [["--engine", "qemu"], ["--engine", "qemu:debian-0.0"],
                                  ["--engine", "qemu", "--qemu-build", "no-such-build"],
                                  ["--engine", "reference", "--qemu-build", "10.2"]])
def test_asking_for_a_build_that_is_not_there_is_a_usage_error(empty_cache, capsys, argv):
    assert main(["run", "-q", str(EXAMPLES), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "qemu" in err


def test_engine_names_are_checked_by_the_parser(capsys):
    assert main(["run", "-q", str(EXAMPLES), "--engine", "nope"]) == 2
    assert "qemu:BUILD-KEY" in capsys.readouterr().err


@NEED_BUILD
def test_no_argument_run_includes_every_cached_build_and_says_so():
    engines, builds, note = selection.campaign_engines(_args([]))
    assert [b.key for b in builds] == [b.key for b in BUILDS]
    assert engines == ["reference", "optimized", *(f"qemu:{b.key}" for b in BUILDS)]
    assert note.startswith("qemu engine:") and all(b.key in note for b in BUILDS)
    assert "\n" not in note
    # the no-argument run bounds real C's sweep by the profile's budget
    assert campaign._qemu_examples(_args([]), 10, None) == 3
    assert campaign._qemu_examples(_args([], profile="ci"), 50, "ci") == 10
    assert campaign._qemu_examples(_args([], engine=["qemu"]), 50, "ci") == 50


# ---------------------------------------------------------------------------------------
# Case runs on every corpus


@NEED_BUILD
@pytest.mark.parametrize("corpus", CORPORA, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_corpus_runs_against_c_with_one_column_per_build(corpus, tmp_path):
    doc = campaign.campaign(_args([str(corpus)], engine=["qemu"], report=str(tmp_path)),
                            progress=False)
    labels = [f"qemu:{b.key}" for b in BUILDS]
    assert doc["engines"] == labels
    assert doc["failures"] == [], [f["summary"] for f in doc["failures"]]
    ran = {c["engine"] for c in doc["matrix"]}
    assert ran and ran <= set(labels)
    for row in doc["cases"]:  # a build runs its own variant only
        info = doc["qemu"][row["engine"]]
        assert row["variant"] == info["variant"]
    from conformance.report import write_reports

    write_reports(doc, tmp_path)
    junit = (tmp_path / "junit.xml").read_text()
    assert any(label in junit for label in labels)
    skipped = sum(1 for r in doc["cases"] if r.get("skipped"))
    assert junit.count("<skipped ") == skipped == doc["totals"]["skipped"]


@NEED_BUILD
def test_a_case_c_cannot_express_is_skipped_not_passed(tmp_path, capsys):
    # a Python-code hook does not cross into C
    case = tmp_path / "hooked.py"
    case.write_text(
        "from conformance.cases import Case\n"
        "from conformance.model.description import Description, Field\n"
        "from conformance.model.flags import F\n"
        "D = Description('dev', 1, 1, [Field('a', F.SINGLE, 'uint8', size=1)],\n"
        "                pre_save=lambda opaque: 0)\n"
        f"CASES = [Case('hooked', D, {{'a': 1}}, None, "
        f"({', '.join(repr(b.variant) for b in BUILDS)},))]\n")
    status = main(["run", "-q", str(case), "--engine", "qemu"])
    out = capsys.readouterr().out
    assert status == 0
    assert "0/0 +1 skip" in out
    assert f"0 passed, 0 failed, {len(BUILDS)} skipped" in out
    doc = campaign.campaign(_args([str(case)], engine=["qemu"]), progress=False)
    assert doc["totals"]["skipped"] == len(BUILDS) and doc["totals"]["passed"] == 0
    assert all(r["skipped"] and "Python-code hook" in r["mismatches"][0] for r in doc["cases"])


# ---------------------------------------------------------------------------------------
# The sweep


@NEED_BUILD
def test_the_sweep_runs_the_differential_properties_on_each_build():
    doc = campaign.campaign(_args([str(EXAMPLES)], engine=["qemu"], properties=2,
                                  property=["round-trip", "robustness", "truncation",
                                            "valid-trees"]),
                            progress=False)
    props = {(p["property"], p["engine"]) for p in doc["properties"]}
    for b in BUILDS:
        for name in ("round-trip", "robustness", "truncation"):
            assert (name, f"qemu:{b.key}") in props
    # valid-trees is a claim about check(), not about C: no qemu point
    assert not {p for p, e in props if e.startswith("qemu:")} - {"round-trip", "robustness",
                                                                 "truncation"}
    assert doc["failures"] == [], [f["summary"] for f in doc["failures"]]


@NEED_BUILD
def test_a_disagreement_shrinks_to_a_case_whose_replay_names_the_build(tmp_path,
                                                                       monkeypatch):
    """Inject a bug into the model (integers save value ^ 1): C and the model now differ;
    the point fails, its shrunk example is a case file, and replaying it with the
    printed command fails the same way; without the bug it passes."""
    from conformance.engines import codecs

    ints = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64")
    for name in ints:
        stock = codecs.CODECS[name]

        def put(ctx, field, value, size, w, epath, opaque, _stock=stock):
            return _stock.put(ctx, field, value ^ 1, size, w, epath, opaque)

        monkeypatch.setitem(codecs.CODECS, name, attrs.evolve(stock, put=put, inline=None))
    build = BUILDS[-1]
    label = f"qemu:{build.key}"
    monkeypatch.setattr(campaign, "_property_points",
                        lambda names, variants: [("round-trip", build.variant, "scalar")])
    report = tmp_path / "report"
    doc = campaign.campaign(_args([str(EXAMPLES)], engine=[label], profile="ci",
                                  report=str(report), property=["round-trip"]),
                            progress=False)
    failed = [p for p in doc["properties"] if not p["passed"]]
    assert len(failed) == 1, doc["properties"]
    row = failed[0]
    assert row["engine"] == label and f"--engine {label}" in row["replay"]
    written = report / row["reproducer"]
    case = json.loads(written.read_text())
    # shrunk: a single field, an integer the bug touches
    assert len(case["description"]["Fields"]) == 1, case["description"]
    assert case["description"]["Fields"][0]["info"] in ints
    replay = campaign.campaign(_args([str(written)], engine=[label]), progress=False)
    assert replay["totals"]["failed"] == 1
    assert "save.bytes" in replay["cases"][0]["mismatches"][0]
    monkeypatch.undo()
    fixed = campaign.campaign(_args([str(written)], engine=[label]), progress=False)
    assert fixed["totals"]["failed"] == 0
