"""The golden scenarios of pointer-array-variants.md section 7, per variant, on the
reference engine (tests/cases/scenarios/NN-*.json, written by _make.py there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cases import load_case_file, load_python_cases, run_case

SCENARIOS = Path(__file__).parent / "cases" / "scenarios"
FILES = sorted(p for p in SCENARIOS.iterdir()
               if p.suffix in (".json", ".py") and not p.name.startswith("_"))
RUNS = []
for _path in FILES:
    _cases = load_python_cases(_path) if _path.suffix == ".py" else [load_case_file(_path)]
    for _case in _cases:
        for _variant in _case.variants:
            RUNS.append((_path, _case, _variant))


@pytest.mark.parametrize("path,case,variant", RUNS,
                         ids=[f"{p.stem}:{v}" for p, _, v in RUNS])
def test_scenario(path, case, variant):
    result = run_case(case, variant, "reference")
    assert result.passed, "\n".join(result.mismatches)


def test_every_scenario_number_is_covered():
    numbers = {int(p.name[:2]) for p in FILES}
    assert numbers >= set(range(1, 32)), sorted(set(range(1, 32)) - numbers)


def test_every_case_states_an_outcome_for_each_variant():
    for path, case, variant in RUNS:
        exp = case.expectation(variant)
        assert exp.get("save", {}).get("kind") or exp.get("load", {}).get("kind"), \
            (path.name, variant)


def _allocations(outcome):
    from conformance.model.outcome import Allocation

    return [a for a in outcome.ledger if isinstance(a, Allocation)]


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix == ".json"],
                         ids=[p.stem for p in FILES if p.suffix == ".json"])
def test_streams_cross_between_auto_alloc_and_alloc(path):
    """PAV 4.1: B and C write identical bytes for the same intent, so a stream written by
    one loads in the other exactly as it loads at home (allocations included)."""
    from conformance.engines import reference as R
    from conformance.model.translate import try_translate

    case = load_case_file(path)
    home = case.variants[0]
    if home not in ("auto-alloc", "alloc"):
        pytest.skip("not written for auto-alloc or alloc")
    other = "alloc" if home == "auto-alloc" else "auto-alloc"
    there, reason = try_translate(case.description, home, other)
    if there is None:
        pytest.skip(reason)
    written = R.save(case.description, case.source, home)
    if not written.ok:
        pytest.skip("the home save does not succeed")
    wire = written.data + case.trailer
    at_home = R.load(case.description, wire, case.dest_state(), home)
    abroad = R.load(there, wire, case.dest_state(), other)
    assert R.save(there, case.source, other).data == written.data
    if path.name.startswith("13-"):
        # populated slots: B asserts, C overwrites (decision populated_auto_slot)
        assert {at_home.kind, abroad.kind} == {"abort", "ok"}
        return
    assert (abroad.kind, abroad.message, abroad.path, abroad.state, len(abroad.data)) == \
        (at_home.kind, at_home.message, at_home.path, at_home.state, len(at_home.data))
    assert _allocations(abroad) == _allocations(at_home)
