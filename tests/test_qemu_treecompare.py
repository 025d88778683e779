"""``qemu compare BASE HEAD`` (conformance/qemu/treecompare.py): two QEMU trees on the
same inputs.  Small budgets; each test skips with the command that makes its build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.qemu import build as qbuild
from conformance.qemu import treecompare

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "tests" / "cases" / "qemu-unit"


def _locate(series):
    try:
        return qbuild.locate(series)
    except Exception:  # noqa: BLE001
        return None


B72, B102 = _locate("7.2"), _locate("10.2")


def need(*builds):
    missing = [s for s, b in zip(("7.2", "10.2"), (B72, B102), strict=True) if b is None
               and s in builds]
    return pytest.mark.skipif(bool(missing), reason="no cached QEMU build: run "
                              + " and ".join(f"`vmstate-conformance qemu build --debian {s}`"
                                             for s in missing))


def test_unknown_build_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["qemu", "compare", "7.2", "no-such-tree"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "qemu build --debian 10.2" in err


@need("10.2")
def test_a_tree_against_itself_reports_nothing(tmp_path, capsys):
    status = main(["qemu", "compare", "-q", B102.key, B102.key, "--examples", "15",
                   "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["differences"] == [] and doc["messages"] == []
    t = doc["totals"]
    assert t["behaviour"] == 0 and t["messages"] == 0 and t["same"] > 100
    assert doc["compare"]["generated_examples"] == 15
    assert "no difference" in out
    for name in ("report.md", "report.html", "junit.xml"):
        assert (tmp_path / name).is_file()


@need("7.2", "10.2")
def test_7_2_to_10_2_error_plumbing_is_found_with_a_replayable_reproducer(tmp_path, capsys):
    """A4: an unknown subsection: 7.2 returns -ENOENT and leaves the file error alone,
    10.x sets it (and says so through Error): HEAD behaves like the legacy variant."""
    status = main(["qemu", "compare", "-q", B72.key, B102.key,
                   str(UNIT / "A4-subsection-unknown.json"), "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1, out
    doc = json.loads((tmp_path / "report.json").read_text())
    [diff] = [d for d in doc["differences"] if d["op"] == "load"]
    assert "file_error" in diff["aspects"]
    assert diff["head_matches"] == ["legacy"] and diff["base_matches"] == ["qemu-7.2"]
    assert diff["verdict"].startswith("HEAD now behaves like legacy here")
    assert "HEAD now behaves like legacy here" in out
    # the reproducer replays to the same difference
    replay = diff["replay"].split()
    assert replay[:5] == ["vmstate-conformance", "qemu", "compare", B72.key, B102.key]
    again = treecompare.compare_trees(B72, B102, paths=[replay[5]], progress=False)
    assert [d["aspects"] for d in again["differences"]] == [diff["aspects"]]


@need("7.2", "10.2")
def test_7_2_to_10_2_messages_only_is_said_and_exits_0(capsys):
    """02-simple-array's truncations: both trees fail the same way (ret, file error,
    bytes consumed); 7.2's error_report and 10.x's Error chain word it differently."""
    status = main(["qemu", "compare", "-q", B72.key, B102.key,
                   str(UNIT / "02-simple-array.json")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "not a failure" in out and "messages differ on" in out
    doc = treecompare.compare_trees(B72, B102, paths=[str(UNIT / "02-simple-array.json")],
                                    progress=False)
    assert doc["differences"] == [] and doc["failures"] == []
    [m] = doc["messages"]
    assert m["aspects"] == ["messages"] and m["class"] == "messages"
    # auto-alloc and alloc (QEMU 11 + a series) word errors as 10.x does
    assert "legacy" in m["head_matches"] and "qemu-7.2" not in m["head_matches"]
    assert m["base_matches"] == ["qemu-7.2"]
    assert "HEAD now behaves like legacy here" in m["verdict"]


@need("7.2", "10.2")
def test_7_2_to_10_2_generated_and_corpora(capsys):
    doc = treecompare.compare_trees(B72, B102, examples=30, progress=False, do_shrink=False)
    srcs = {t["source"] for t in doc["compare"]["tally"]}
    assert {"generated/save", "generated/load", "golden/cases/subsections"} <= srcs
    assert doc["messages"]  # error wording differs between the two
    for d in doc["differences"] + doc["messages"]:
        assert d["reproducer"] and d["replay"].startswith("vmstate-conformance qemu compare")
