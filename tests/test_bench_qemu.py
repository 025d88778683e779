"""``bench --qemu``: the qemu engine's operations per second beside the reference
engine's, one run, a ratio column (structure only: no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from conformance.cli import main
from conformance.qemu import selection


def _builds():
    try:
        return selection.default_builds()
    except Exception:  # noqa: BLE001
        return []


def test_without_a_build_it_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["bench", "--qemu", "--quick"]) == 1
    assert "qemu build --debian 10.2" in capsys.readouterr().err


def test_qemu_does_not_combine_with_startup(capsys):
    assert main(["bench", "--startup", "--qemu"]) == 2


@pytest.mark.skipif(not _builds(), reason="no cached QEMU build: run "
                    "`vmstate-conformance qemu build --debian 10.2`")
def test_side_by_side_operations_per_second_with_a_ratio(capsys):
    assert main(["bench", "--qemu", "--quick", "--json", "--corpus", "deep-nesting"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    assert {r["build"] for r in rows} == {b.key for b in _builds()}
    for r in rows:
        assert r["corpus"] == "deep-nesting" and "skipped" not in r, r
        for op in ("save", "load"):
            ref, q = r[f"{op}_reference_ops"], r[f"{op}_qemu_ops"]
            assert ref > 0 and q > 0
            assert r[f"{op}_qemu_over_reference"] == pytest.approx(q / ref)
    assert main(["bench", "--qemu", "--quick", "--corpus", "deep-nesting"]) == 0
    out = capsys.readouterr().out
    assert "reference/s" in out and "qemu/s" in out and "ratio" in out
