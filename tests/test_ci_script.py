""".ci/run runs the README's set-up commands the way a new user does: in a virtualenv it
creates itself, and the test suite under both Hypothesis profiles (dev without CI, ci
with CI=true).  CI runs the script; this checks it stays in step with the README."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "run"


def _readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up \(fresh machine\)\s+```sh\n(.*?)```", text, re.S)
    assert block, "README.md lost its 'Set up (fresh machine)' block"
    return [c.strip() for line in block.group(1).splitlines() for c in line.split("&&")
            if c.strip()]


def _script_lines() -> list[str]:
    return [line.strip() for line in SCRIPT.read_text().splitlines()
            if line.strip() and not line.strip().startswith(("#", "echo "))]


def test_readme_commands_run_in_a_fresh_venv_in_order():
    lines = _script_lines()
    venv = next(i for i, line in enumerate(lines) if line.startswith("python3 -m venv "))
    activate = next(i for i, line in enumerate(lines) if re.match(r"\. .*/bin/activate", line))
    assert venv < activate
    commands = _readme_setup_commands()
    assert commands == ["python3 -m pip install -e '.[test]'", "vmstate-conformance run",
                        "python3 -m pytest -n auto"]
    last = activate
    for command in commands:
        at = next((i for i, line in enumerate(lines) if command in line and i > last), None)
        assert at is not None, f".ci/run does not run {command!r} after activating its venv"
        last = at
    # the venv is made fresh, outside the checkout (mktemp), and removed afterwards
    assert re.search(r"work=\$\(mktemp -d", SCRIPT.read_text())
    assert "trap 'rm -rf \"$work\"' EXIT" in SCRIPT.read_text()


def test_the_suite_runs_under_both_hypothesis_profiles():
    runs = [line for line in _script_lines() if "python3 -m pytest -n auto" in line]
    assert len(runs) == 2
    dev, ci = runs
    assert dev.startswith("env -u CI ") and "CI=true" not in dev  # CI runs with CI=true set
    assert "CI=true" in ci and "-u CI " not in ci
    # the qemu build script runs with the venv's interpreter
    assert 'export PYTHON="$work/venv/bin/python"' in SCRIPT.read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
