"""Benchmark: start-up, whole process, side by side with a bare interpreter.

``vmstate-conformance bench --startup`` runs, in N interleaved rounds, each command as a
fresh child process of the same interpreter (bytecode cached by a warm-up run, as on a
user's machine):

* ``python3 -c pass``                      the floor every Python command pays;
* ``vmstate-conformance --help``           (as ``python3 -m conformance --help``);
* ``vmstate-conformance run --help``       a command's parser (its group is imported);
* ``vmstate-conformance --version``.

A command's figure is its minimum over rounds (and the median, for the noise); the
ratio to ``python3 -c pass`` is computed from numbers of this run.  The target for
``--help`` is 2x or less (docs/architecture.md, "Start-up").  Nothing is asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 2.0
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent


def commands() -> dict[str, list[str]]:
    py = sys.executable
    return {
        "python3 -c pass": [py, "-c", "pass"],
        "vmstate-conformance --help": [py, "-m", "conformance", "--help"],
        "vmstate-conformance --version": [py, "-m", "conformance", "--version"],
        "vmstate-conformance run --help": [py, "-m", "conformance", "run", "--help"],
    }


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode, as an install has it
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT),
                                                    env.get("PYTHONPATH")) if p)
    return env


def _once(argv: list[str], env: dict) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, cwd=PACKAGE_ROOT)  # `-m conformance` is this tree's
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss


def measure(rounds: int = 15) -> dict:
    env = _env()
    cmds = commands()
    for argv in cmds.values():  # warm-up: __pycache__, page cache
        _once(argv, env)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    peaks: dict[str, int] = dict.fromkeys(cmds, 0)
    for _ in range(max(1, rounds)):
        for name, argv in cmds.items():  # interleaved: every command once per round
            t, peak = _once(argv, env)
            times[name].append(t)
            peaks[name] = max(peaks[name], peak)
    base = min(times["python3 -c pass"])
    results = {}
    for name in cmds:
        results[name] = {"min_ms": round(min(times[name]) * 1e3, 2),
                         "median_ms": round(statistics.median(times[name]) * 1e3, 2),
                         "peak_kib": peaks[name],
                         "ratio_to_bare": round(min(times[name]) / base, 2)}
    return {"python": sys.version.split()[0], "rounds": rounds, "target": TARGET,
            "results": results}


def print_table(report: dict, out=None) -> None:
    out = out or sys.stdout
    print(f"start-up, whole process, {report['rounds']} interleaved rounds "
          f"(python {report['python']}; min and median wall time, peak RSS)", file=out)
    print(f"{'command':<34}{'min ms':>9}{'median ms':>11}{'peak KiB':>10}{'x bare':>8}",
          file=out)
    for name, r in report["results"].items():
        print(f"{name:<34}{r['min_ms']:>9.1f}{r['median_ms']:>11.1f}{r['peak_kib']:>10d}"
              f"{r['ratio_to_bare']:>8.2f}", file=out)
    help_ratio = report["results"]["vmstate-conformance --help"]["ratio_to_bare"]
    verdict = "within" if help_ratio <= report["target"] else "OVER"
    print(f"--help / python3 -c pass = {help_ratio:.2f}x ({verdict} the "
          f"{report['target']:.0f}x target)", file=out)


def run(rounds: int = 15, as_json: bool = False, out=None) -> int:
    out = out or sys.stdout
    report = measure(rounds)
    if as_json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        print_table(report, out)
    return 0
