"""``vmstate-conformance bench --quick --json``: the report's structure (never timings)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from conformance.bench import corpora
from conformance.bench import engines as bench
from conformance.cli import main

CORPORA = {"scalar-heavy", "array-heavy", "pointer-array", "deep-nesting"}


def _run(argv):
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["bench", *argv])
    return status, out.getvalue()


def test_quick_json_report_structure():
    status, text = _run(["--quick", "--json"])
    assert status == 0
    report = json.loads(text)
    assert report["quick"] is True and report["rounds"] >= 1
    assert set(report["corpora"]) == CORPORA
    for _name, entry in report["corpora"].items():
        assert entry["compile_ms"] > 0 and entry["stream_bytes"] > 0
        for engine in ("reference", "optimized"):
            assert entry["engines"][engine]["save_us"] > 0
            assert entry["engines"][engine]["load_us"] > 0
        for op in ("save", "load"):
            assert entry["ratios"][f"{op}_reference_over_optimized"] > 0
    scalar = report["corpora"]["scalar-heavy"]
    assert "struct-baseline" in scalar["engines"]
    assert "save_optimized_over_struct" in scalar["ratios"]
    assert report["corpora"]["pointer-array"]["variant"] == "auto-alloc"


def test_table_output_and_dump_plan():
    status, text = _run(["--quick", "--corpus", "scalar-heavy"])
    assert status == 0
    assert "reference / optimized" in text and "scalar-heavy" in text
    status, text = _run(["--dump-plan", "pointer-array"])
    assert status == 0 and "def save_fast(o)" in text and "0x31" in text
    status, _ = _run(["--dump-plan", "no-such-corpus"])
    assert status == 2


def test_struct_baseline_round_trips():
    desc, _, state, _ = corpora.scalar_heavy()
    base = bench.StructBaseline(desc)
    assert base.load(base.save(state)) == state


def test_analyze_migration_option_fails_in_one_line(capsys):
    status = main(["bench", "--analyze-migration", "/nonexistent/analyze-migration.py"])
    err = capsys.readouterr().err
    assert status != 0 and err.count("\n") == 1 and "Traceback" not in err
