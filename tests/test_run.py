"""The ``run`` job: what it collects, what it prints, its exit codes, replayable failures."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from conformance import campaign
from conformance.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "conformance" / "data" / "examples"
GOOD = EXAMPLES / "simple-primitive.json"


def _wrong_case(directory: Path, name: str = "wrong.json") -> Path:
    """A copy of a bundled example whose expected stream is deliberately wrong."""
    obj = json.loads(GOOD.read_text())
    obj["name"] = "deliberately-wrong"
    obj["variants"] = ["legacy"]
    obj["expect"]["save"]["stream"] = "deadbeef"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(obj))
    return path


def _run(capsys, *argv):
    status = main(["run", "-q", *map(str, argv)])
    out = capsys.readouterr()
    return status, out.out, out.err


# ---------------------------------------------------------------------------------------
# which files are cases


def test_directories_contribute_only_case_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text(GOOD.read_text())
    (tmp_path / "sub" / "b.json").write_text(GOOD.read_text())
    (tmp_path / "manifest.json").write_text('{"format": "vmstate-conformance/golden/1"}')
    (tmp_path / "stream.json").write_text('[1, 2, 3]')
    (tmp_path / "mentions.json").write_text('{"notes": "vmstate-conformance/case/1"}')
    boom = "raise SystemExit('imported!')\n"
    (tmp_path / "conftest.py").write_text(boom + "CASES = []\n")
    (tmp_path / "test_things.py").write_text(boom + "CASES = []\n")
    (tmp_path / "_helper.py").write_text(boom + "CASES = []\n")
    (tmp_path / "nocases.py").write_text(boom)
    (tmp_path / "mod.py").write_text("CASES: list = []\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "c.json").write_text(GOOD.read_text())
    found = [p.relative_to(tmp_path).as_posix() for p, _ in campaign.collect([str(tmp_path)])]
    assert found == ["a.json", "mod.py", "sub/b.json"]
    groups = [g for _, g in campaign.collect([str(tmp_path)])]
    assert groups == [tmp_path.name, tmp_path.name, f"{tmp_path.name}/sub"]


def test_golden_dir_is_only_its_cases():
    found = [p for p, _ in campaign.collect([str(ROOT / "golden")])]
    cases_dir = ROOT / "golden" / "cases"
    assert found and all(cases_dir in p.parents for p in found)
    assert len(found) == len(list(cases_dir.rglob("*.json"))) + len(
        [p for p in cases_dir.rglob("*.py") if campaign.is_case_module(p)])


def test_tests_dir_never_imports_test_modules(capsys):
    found = [p for p, _ in campaign.collect([str(ROOT / "tests")])]
    assert found and not any(p.name.startswith("test_") or p.name == "conftest.py"
                             for p in found)
    assert all(p.suffix == ".json" or p.name == "22_tmp_struct.py" for p in found)


def test_a_named_file_is_read_as_a_case_whatever_its_name(tmp_path, capsys):
    odd = tmp_path / "odd.txt"
    odd.write_text(GOOD.read_text())
    status, out, _ = _run(capsys, odd)
    assert status == 0 and "0 failed" in out


# ---------------------------------------------------------------------------------------
# output, sweep selection, exit codes


def test_summary_first_and_the_full_table_only_with_verbose(capsys):
    status, out, _ = _run(capsys, EXAMPLES)
    assert status == 0
    assert out.splitlines()[0].startswith("group")
    assert "examples" in out and "failures" not in out
    assert "/vmstate/" not in out and "simple primitive" not in out.lower()
    assert "property sweep" not in out  # PATHS: no sweep unless asked
    status, verbose, _ = _run(capsys, EXAMPLES, "--verbose")
    assert status == 0 and len(verbose.splitlines()) > len(out.splitlines())
    assert verbose.splitlines()[0].startswith("case")


def test_failures_are_listed_with_their_replay_command(tmp_path, capsys):
    bad = _wrong_case(tmp_path / "cases")
    status, out, _ = _run(capsys, tmp_path / "cases", EXAMPLES)
    assert status == 1
    assert "0/1 FAIL" in out
    assert f"replay: vmstate-conformance run {bad} --engine reference --variant legacy" in out
    assert out.count("FAIL deliberately-wrong") == 2  # reference and optimized


def test_sweep_runs_with_paths_only_when_asked(capsys):
    args = _args([str(EXAMPLES)])
    assert campaign._sweep_plan(args) == (0, False, None)
    assert campaign._sweep_plan(_args([])) == (campaign.DEFAULT_SWEEP_EXAMPLES, False, None)
    assert campaign._sweep_plan(_args([str(EXAMPLES)], properties=3)) == (3, False, None)
    assert campaign._sweep_plan(_args([str(EXAMPLES)], profile="ci")) == (50, True, "ci")
    status, out, _ = _run(capsys, EXAMPLES, "--property", "valid-trees", "--properties", "2",
                          "--variant", "legacy", "--engine", "reference")
    assert status == 0 and "property sweep" in out and "valid-trees" in out


def test_profiles_are_the_pytest_profiles():
    from hypothesis import settings

    import tests.conftest  # noqa: F401 - registers the profiles
    from conformance.profiles import PROFILES

    for name, prof in PROFILES.items():
        assert settings.get_profile(name).max_examples == prof["examples"]
    assert settings.get_profile("ci").derandomize is True


@pytest.mark.parametrize("argv", [
    ["/nonexistent/dir"],
    ["--properties", "3", "--profile", "dev"],
    ["--properties", "-1"],
    ["--property", "no-such-property"],
    ["--json", "--verbose"],
    ["--profile", "nope"],
])
def test_usage_errors_exit_2(argv, capsys, tmp_path):
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("vmstate-conformance") or "usage:" in err
    assert "Traceback" not in err


def test_empty_directory_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "notes.json").write_text("{}")
    status, _, err = _run(capsys, tmp_path)
    assert status == 2 and f"{tmp_path}: no case files" in err


def test_variant_selecting_nothing_is_a_usage_error(tmp_path, capsys):
    _wrong_case(tmp_path)  # legacy only
    status, _, err = _run(capsys, tmp_path, "--variant", "alloc")
    assert status == 2 and "selects no variant" in err


def test_unreadable_case_file_fails_with_its_path(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "vmstate-conformance/case/1", "description": 3}')
    status, out, _ = _run(capsys, tmp_path)
    assert status == 1 and str(bad) in out and "Traceback" not in out


# ---------------------------------------------------------------------------------------
# replayable failures


def test_a_failing_case_is_written_and_replays_to_the_same_failure(tmp_path, capsys):
    _wrong_case(tmp_path / "cases")
    report = tmp_path / "report"
    status, _, _ = _run(capsys, tmp_path / "cases", "--report", report, "--json")
    assert status == 1
    doc = json.loads((report / "report.json").read_text())
    failures = [f for f in doc["failures"] if f["kind"] == "case"]
    assert len(failures) == 2
    for f in failures:
        written = report / f["reproducer"]
        assert written.parent == report / "failures" and written.is_file()
        status, _, _ = _run(capsys, written, "--json", "--report", tmp_path / "again")
        assert status == 1
        replay = json.loads((tmp_path / "again" / "report.json").read_text())
        by_engine = {r["engine"]: r for r in replay["cases"]}
        original = next(r for r in doc["cases"] if r["id"] == f["id"])
        assert by_engine[original["engine"]]["mismatches"] == original["mismatches"]


def _args(paths, **kw):
    base = dict(paths=paths, engine=None, variant=None, properties=None, profile=None,
                property=None, report=None, verbose=False, quiet=True, json=False, argv=[])
    base.update(kw)
    return type("Args", (), base)()


def test_a_property_failure_writes_its_shrunk_example_which_replays(tmp_path, monkeypatch):
    """Inject a real bug (integer codecs save value ^ 1): round-trip fails, its shrunk
    example is written under failures/, and running that file fails the same way."""
    from conformance.engines import codecs

    for name in ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"):
        stock = codecs.CODECS[name]

        def put(ctx, field, value, size, w, epath, opaque, _stock=stock):
            return _stock.put(ctx, field, value ^ 1, size, w, epath, opaque)

        monkeypatch.setitem(codecs.CODECS, name, attrs.evolve(stock, put=put, inline=None))
    monkeypatch.setattr(campaign, "_property_points",
                        lambda names, variants: [("round-trip", "legacy", "scalar")])
    report = tmp_path / "report"
    doc = campaign.campaign(_args([str(EXAMPLES)], engine=["reference"], properties=30,
                                  report=str(report), property=["round-trip"]),
                            progress=False)
    failed = [p for p in doc["properties"] if not p["passed"]]
    assert len(failed) == 1 and failed[0]["reproducer"].startswith("failures/")
    written = report / failed[0]["reproducer"]
    assert written.is_file()
    replay = campaign.campaign(_args([str(written)], engine=["reference"]), progress=False)
    assert replay["totals"]["failed"] == 1
    assert any("load.state" in m for m in replay["cases"][0]["mismatches"])
    monkeypatch.undo()  # without the bug, the same example passes: it was the bug
    fixed = campaign.campaign(_args([str(written)], engine=["reference"]), progress=False)
    assert fixed["totals"]["failed"] == 0


def test_the_progress_total_counts_every_step_params_included(monkeypatch, capsys):
    """run's progress counter ends at its total: files, property grid points and the
    params properties' rows (it counted to [344/343] when the params rows were left out)."""
    import re

    from conformance.params import properties as params_properties

    monkeypatch.setattr(params_properties, "HAZARD_BUDGET", 3)  # the count, not the search
    bars = []

    class Recorded(campaign.Progress):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            bars.append(self)

    monkeypatch.setattr(campaign, "Progress", Recorded)
    args = _args([str(GOOD)], properties=2, property=["valid-trees", "params"],
                 variant=["legacy"], engine=["reference"])
    campaign.campaign(args, progress=True)
    (bar,) = bars
    assert bar.done == bar.total == 1 + 1 + params_properties.sweep_size()
    counters = [tuple(map(int, m)) for m in re.findall(r"^\[(\d+)/(\d+)\]",
                                                        capsys.readouterr().err, re.M)]
    assert counters and all(done <= total == bar.total for done, total in counters)
