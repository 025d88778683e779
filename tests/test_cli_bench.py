"""``vmstate-conformance bench --startup`` and ``bench --analyze-migration``: the reports'
structure and the decoded output's identity (never timings: those are for the benchmark
to print as ratios, not for a test to assert)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from conformance.bench import migration as migbench
from conformance.bench import startup
from conformance.cli import main


def test_startup_report_structure():
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["bench", "--startup", "--rounds", "1", "--json"]) == 0
    report = json.loads(out.getvalue())
    assert report["target"] == startup.TARGET and report["rounds"] == 1
    assert set(report["results"]) == set(startup.commands())
    bare = report["results"]["python3 -c pass"]
    assert bare["ratio_to_bare"] == 1.0
    for r in report["results"].values():
        assert r["min_ms"] > 0 and r["min_ms"] <= r["median_ms"]


def test_startup_table_names_the_target(capsys):
    assert main(["bench", "--startup", "--rounds", "1"]) == 0
    assert "--help / python3 -c pass = " in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--startup", "--corpus", "scalar-heavy"],
                                  ["--startup", "--quick"],
                                  ["--startup", "--ram-heavy"],
                                  ["--migration-file", "x.mig"]])
def test_bench_inapplicable_options_are_usage_errors(argv, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vmstate-conformance: bench: ") and argv[-2] in err


def test_locate_script_order(tmp_path, monkeypatch):
    for version in ("debian-10.2.2", "debian-7.2.22"):
        script = tmp_path / "vmstate-conformance" / "qemu" / version / "src" / "scripts"
        script.mkdir(parents=True)
        (script / "analyze-migration.py").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(migbench.ENV, raising=False)
    assert "debian-7.2.22" in str(migbench.locate_script("auto"))
    monkeypatch.setenv(migbench.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(migbench.BenchError, match="nowhere"):
        migbench.locate_script("auto")


def _script():
    try:
        return migbench.locate_script("auto")
    except migbench.BenchError:
        return None


@pytest.mark.skipif(_script() is None, reason="no analyze-migration.py (set "
                    "VMSTATE_CONFORMANCE_ANALYZE_MIGRATION or cache Debian's QEMU source)")
def test_analyze_migration_report_structure():
    """One round on the pinned pc-min stream: every row measured, ratios computed from
    them, identical output.  (The RAM-heavy stream's output is checked in
    tests/test_real_qemu.py; its speed is the benchmark's to print.)"""
    mig = Path(__file__).parent / "data" / "qemu-7.2" / "pc-min.mig"
    out = io.StringIO()
    assert migbench.run([str(mig)], analyze_migration=str(_script()), repeat=1, out=out,
                        as_json=True) == 0
    report = json.loads(out.getvalue())
    result = report["results"][0]
    for key in migbench.KEYS.values():
        assert result[key]["seconds"] > 0 and result[key]["peak_kib"] > 0 and result[key]["status"] == 0
    assert result["same_output"] is True and result["same_output_full_cli"] is True
    assert result["speedup_process"] == (result["analyze_process"]["seconds"]
                                         / result["ours_process"]["seconds"])
    assert result["memory_ratio"] > 0 and report["skipped"] == []


def test_default_streams_skip_the_hostile_reproducer(capsys, monkeypatch):
    """The default set (every tests/data stream) leaves out, with a note, a file that is
    no complete stream; named with --migration-file it is an error."""
    hostile = str(Path(__file__).parent / "data" / "hostile" / "vmdesc-int-array-len-2p63.mig")
    out = io.StringIO()
    assert migbench.run([hostile], repeat=1, out=out, skip_undecodable=True) == 0
    assert "skipped (not a complete stream)" in out.getvalue()
    with pytest.raises(migbench.BenchError, match="array_len"):
        migbench.run([hostile], repeat=1, out=io.StringIO())
