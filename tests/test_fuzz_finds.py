"""Issue 23: ``vmstate-conformance fuzz`` finds F1-F4 on the code before their fixes.

Each test plants one bug back (the fix monkeypatched away) and runs the fuzz loop
(conformance.cli.fuzz.fuzz: the target's own check, Hypothesis batches, shrinking,
reproducers) on the target's strategy narrowed to the mutation that reaches the bug,
so that it finds it in a few dozen inputs; it asserts the loop reports it, and that
the same narrowed run on the fixed code reports nothing.  The ``reachable`` tests show
that the full strategies (what ``fuzz`` runs) draw those inputs too.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, Phase, find, settings

from conformance.cli.fuzz import fuzz
from conformance.model import limits
from strategies import hostile

QUIET = open(os.devnull, "w")  # noqa: SIM115 - the loop's progress lines, discarded


def run_fuzz(target, tmp_path, strategy, inputs=60, seed=3):
    row = fuzz(target, None, tmp_path, inputs=inputs, batch=20, progress=QUIET, seed=seed,
               strategy=strategy)
    whys = [p.read_text() for p in sorted(tmp_path.glob("*.why.txt"))]
    return row, whys


def simple_seed():
    return next(t for t in hostile.case_seeds() if t.get("name") == "/vmstate/simple/primitive")


def renamed_sections():
    return hostile.hostile_migration_files(mutations=("idstr",))


# ------------------------------------------------------------------------------- F1


def plant_f1(monkeypatch):
    """Before the fix: the reader's section label raw, decode --sections' error unescaped."""
    import sys

    from conformance.cli import migration as migcli
    from conformance.migration import reader

    monkeypatch.setattr(reader, "printable", lambda text: text)

    def raw_fail(message):
        print(f"vmstate-conformance: {message}", file=sys.stderr)
        return 1

    monkeypatch.setattr(migcli, "_fail", raw_fail)


def test_fuzz_finds_f1_an_incomplete_section_error_split_by_its_name(tmp_path, monkeypatch):
    plant_f1(monkeypatch)
    row, whys = run_fuzz("mig", tmp_path, renamed_sections, inputs=20)
    assert row["failures"] >= 1
    assert any("--sections" in why and "incomplete: the stream ends inside section" in why
               for why in whys), whys


def test_fuzz_on_renamed_sections_is_clean_after_the_fix(tmp_path):
    row, whys = run_fuzz("mig", tmp_path, renamed_sections, inputs=20)
    assert row["failures"] == 0, whys
    assert row["clean"] and row["ok"]  # both incomplete and complete files were drawn


# ------------------------------------------------------------------------------- F3


def plant_f3(monkeypatch):
    """Before the fix: the reader's label raw, notes printed as they are."""
    from conformance import errors
    from conformance.migration import reader

    monkeypatch.setattr(reader, "printable", lambda text: text)
    monkeypatch.setattr(errors, "printable", lambda text: text)


def test_fuzz_finds_f3_raw_names_in_no_entry_notes(tmp_path, monkeypatch):
    plant_f3(monkeypatch)
    row, whys = run_fuzz("mig", tmp_path, renamed_sections, inputs=20)
    assert row["failures"] >= 1
    # a note naming an opaque section ("no entry for NAME", "iterative section of
    # handler NAME"), split or garbled by the raw name
    # (with every message's escaping planted away, the raw name may first show in the
    # reader's error about that section)
    assert any(("opaque" in why and ("--sections" in why or "verify" in why))
               or "is not one printable line" in why for why in whys), whys


# ------------------------------------------------------------------------------- F2


def plant_f2(monkeypatch):
    """Before the fix: ``"variants": []`` parses."""
    from conformance.cases import casefile

    fixed = casefile._case_variants

    def old(obj):
        if obj.get("variants") == [] and "variant" not in obj:
            return []
        return fixed(obj)

    monkeypatch.setattr(casefile, "_case_variants", old)


def emptied_cases():
    return hostile.hostile_case_files(kinds=("empty",), seeds=(simple_seed(),))


def test_fuzz_finds_f2_empty_variants(tmp_path, monkeypatch):
    plant_f2(monkeypatch)
    row, whys = run_fuzz("case", tmp_path, emptied_cases)
    assert row["failures"] >= 1
    assert any("IndexError" in why for why in whys), whys
    repro = json.loads(next(tmp_path.glob("case-*.json")).read_text())
    assert repro["variants"] == []


def test_fuzz_on_emptied_cases_is_clean_after_the_fix(tmp_path):
    row, whys = run_fuzz("case", tmp_path, emptied_cases, inputs=20)
    assert row["failures"] == 0, whys


# ------------------------------------------------------------------------------- F4


def big_buffers():
    return hostile.hostile_case_files(kinds=("buffers",), seeds=(simple_seed(),))


def test_fuzz_finds_f4_memory_past_the_bound(tmp_path, monkeypatch):
    # scaled down for a shared machine: 8 MiB buffers against a 100 MB bound; the
    # planted bug is no state-bytes limit (2-16 such buffers: 16-128 MiB of state)
    monkeypatch.setattr(hostile, "MEMORY_BOUND", 100 << 20)
    with limits.override(buffer_bytes=8 << 20, state_bytes=1 << 40):
        row, whys = run_fuzz("case", tmp_path, big_buffers, inputs=3)
    assert row["failures"] >= 1
    assert all(why.startswith(("memory:", "blow-up:")) for why in whys), whys
    assert row["peak_mb"] > 0


def test_fuzz_on_big_buffers_is_clean_after_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(hostile, "MEMORY_BOUND", 100 << 20)
    with limits.override(buffer_bytes=8 << 20, state_bytes=8 << 20):
        row, whys = run_fuzz("case", tmp_path, big_buffers, inputs=10)
    assert row["failures"] == 0, whys
    assert row["peak_mb"] < 100


# ----------------------------------------------------- the full strategies reach them

#: generation only: the first input found is enough (shrinking it costs minutes)
FIND = settings(max_examples=3000, database=None, deadline=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))


def havoc_reaches(make, wanted, inputs: int = 3000) -> bool:
    """What ``fuzz`` runs for mig and case: inputs made by ``make(pick)`` from seeded
    random picks (the havoc batches); a fixed seed, so this holds for every run."""
    import random

    pick = hostile._RandomPick(random.Random(2026))
    return any(wanted(make(pick)) for _ in range(inputs))


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a case file found
def test_reachable_f2_empty_variants():
    wanted = lambda data: b'"variants": []' in data  # noqa: E731
    find(hostile.hostile_case_files(), wanted, settings=FIND)
    assert havoc_reaches(hostile._case_file, wanted)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a case file found
def test_reachable_f4_many_big_buffers():
    wanted = lambda data: b'"field": "big1"' in data  # noqa: E731
    find(hostile.hostile_case_files(), wanted, settings=FIND)
    assert havoc_reaches(hostile._case_file, wanted)


@pytest.mark.parametrize("cut", [True, False], ids=["F1-cut-inside", "F3-renamed"])
def test_reachable_f1_f3_hostile_section_names(cut):
    def renamed(data: bytes) -> bool:
        named = any(len(n) >= 3 and n.encode() in data for n in hostile.HOSTILE_NAMES)
        return named and (b'{"page_size"' not in data) == cut  # cut: no vmdesc left

    find(hostile.hostile_migration_files(), renamed, settings=FIND)
    assert havoc_reaches(hostile._migration_file, renamed)


@pytest.mark.parametrize("strategy", [hostile.hostile_engine_inputs,
                                      hostile.hostile_engine_batches])
def test_reachable_negative_destination_sizes(strategy):
    def negative(value) -> bool:
        dests = [value[2]] if isinstance(value, tuple) else [args[2] for args in value]
        return any("-601" in repr(dest) or "-64" in repr(dest) for dest in dests)

    find(strategy(), negative, settings=FIND)
