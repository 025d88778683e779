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
