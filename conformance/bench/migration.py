"""Benchmark: decoding real migration files, side by side with analyze-migration.py.

Measures, in one run and on the same files:

* whole process: ``python -m conformance.cli.migration decode --format analyze-migration FILE``
  (the lean entry point), the full ``python -m conformance decode`` CLI, and, when given,
  ``python analyze-migration.py -f FILE`` (QEMU's script, from a checkout or its path);
* peak memory (ru_maxrss) of each child, from ``os.wait4``'s per-child rusage
  (``resource.getrusage(RUSAGE_CHILDREN)`` only keeps the maximum over all children);
* in process: parse + analyze rendering, parse + re-encode.

Ratios are computed from times measured in this run (best of ``repeat``); nothing is
asserted.  Outputs of our analyze-migration format and the script are compared too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class BenchError(Exception):
    pass


def find_script(path: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "scripts" / "analyze-migration.py"
    if not p.is_file():
        raise BenchError(f"analyze-migration.py not found at {path} (give a QEMU checkout or the script)")
    return p


ENV = "VMSTATE_CONFORMANCE_ANALYZE_MIGRATION"
#: where the Debian QEMU source trees are cached (conformance.qemu.build on branch qemu-engine)
CACHE_GLOB = "qemu/*/src/scripts/analyze-migration.py"
REPO = Path(__file__).resolve().parent.parent.parent


def cached_scripts() -> list[Path]:
    """analyze-migration.py from the cached Debian QEMU source trees, oldest first."""
    import re

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")

    def version(p: Path):  # qemu/debian-7.2.22/src/... -> (7, 2, 22): 7.2 before 10.2
        return tuple(int(n) for n in re.findall(r"\d+", p.parents[2].name)) or (0,)

    return sorted((cache / "vmstate-conformance").glob(CACHE_GLOB), key=version)


def locate_script(path: str | None = "auto") -> Path:
    """``path``, or ("auto") $VMSTATE_CONFORMANCE_ANALYZE_MIGRATION, else the first
    cached Debian QEMU source tree's script; BenchError when there is none."""
    if path and path != "auto":
        return find_script(path)
    if os.environ.get(ENV):
        return find_script(os.environ[ENV])
    found = cached_scripts()
    if not found:
        raise BenchError(f"analyze-migration.py not found: set {ENV} or give --analyze-migration "
                         "PATH (a QEMU tree or the script)")
    return found[0]


def default_streams() -> list[Path]:
    data = REPO / "tests" / "data"
    return sorted(data.glob("**/*.mig")) if data.is_dir() else []


def _child_env() -> dict:
    # Byte-compiled modules as a normal install has them: the first (warm-up) run
    # writes __pycache__ even where PYTHONDONTWRITEBYTECODE is set for development.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _child(argv: list[str], stdout) -> tuple[float, int, int]:
    """(wall seconds, peak RSS KiB, exit status) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, env=_child_env())
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss, proc.returncode


def _best_child(argv: list[str], repeat: int) -> dict:
    _child(argv, subprocess.DEVNULL)  # warm-up: page cache, __pycache__
    times, peaks, status = [], [], 0
    for _ in range(repeat):
        elapsed, peak, status = _child(argv, subprocess.DEVNULL)
        times.append(elapsed)
        peaks.append(peak)
    return {"seconds": min(times), "peak_kib": max(peaks), "status": status}


def _best_inprocess(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _output_of(argv: list[str]) -> bytes:
    with tempfile.TemporaryFile() as fh:
        _child(argv, fh)
        fh.seek(0)
        return fh.read()


def bench_file(path: str, script: Path | None, repeat: int) -> dict:
    """Child processes first, while this process is small: Linux charges a child's
    ru_maxrss with what it inherited at fork time, before its exec."""
    py = sys.executable
    ours = [py, "-m", "conformance.cli.migration", "decode", "--format", "analyze-migration", path]
    full = [py, "-m", "conformance", "decode", "--format", "analyze-migration", path]
    result: dict = {"file": path, "bytes": Path(path).stat().st_size, "repeat": repeat}
    result["ours_process"] = _best_child(ours, repeat)
    result["full_cli_process"] = _best_child(full, repeat)
    if script is not None:
        theirs = [py, str(script), "-f", path]
        result["analyze_process"] = _best_child(theirs, repeat)
        same = _output_of(ours) == _output_of(theirs)
        result["same_output"] = same
        a, o = result["analyze_process"], result["ours_process"]
        result["speedup_process"] = a["seconds"] / o["seconds"]
        result["speedup_full_cli"] = a["seconds"] / result["full_cli_process"]["seconds"]
        result["memory_ratio"] = a["peak_kib"] / o["peak_kib"] if o["peak_kib"] else None
    return result


def bench_inprocess(result: dict, repeat: int) -> None:
    from conformance.migration import migfile

    data = Path(result["file"]).read_bytes()
    result["ours_inprocess_decode_s"] = _best_inprocess(
        lambda: migfile.render_json(migfile.analyze_state(migfile.read_migration(data))), repeat)
    result["ours_inprocess_reencode_s"] = _best_inprocess(
        lambda: migfile.encode(migfile.read_migration(data)), repeat)


def _decodable(path) -> None:
    """Decode ``path`` once, before any timing: a file that is not a complete migration
    stream is one BenchError line, not child processes timed failing and a traceback."""
    from conformance.errors import ConformanceError
    from conformance.migration import migfile

    try:
        mf = migfile.read_migration(Path(path).read_bytes())
    except ConformanceError as exc:
        raise BenchError(f"{path}: {exc}") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if mf.incomplete:
        raise BenchError(f"{path}: {mf.incomplete}")


def run(paths, analyze_migration=None, repeat=5, out=sys.stdout, as_json=False) -> int:
    """Benchmark ``paths``; returns an exit status (1 if any file failed to decode)."""
    script = find_script(analyze_migration) if analyze_migration else None
    repeat = max(1, int(repeat))
    results = []
    for path in paths:
        if not Path(path).is_file():
            raise BenchError(f"{path}: no such file" if not Path(path).exists() else
                             f"{path}: not a regular file")
        _decodable(path)
    for path in paths:
        results.append(bench_file(str(path), script, repeat))
    for result in results:
        bench_inprocess(result, repeat)
    if as_json:
        out.write(json.dumps({"python": sys.version.split()[0], "results": results}, indent=2) + "\n")
    else:
        for r in results:
            _print_text(r, out)
    failed = any(r["ours_process"]["status"] for r in results)
    return 1 if failed else 0


def _print_text(r: dict, out) -> None:
    o, f = r["ours_process"], r["full_cli_process"]
    print(f"{r['file']} ({r['bytes']} bytes), best of {r['repeat']}:", file=out)
    print(f"  ours, whole process (migcli)   {o['seconds'] * 1e3:8.1f} ms  peak {o['peak_kib']:7d} KiB", file=out)
    print(f"  ours, whole process (full CLI) {f['seconds'] * 1e3:8.1f} ms  peak {f['peak_kib']:7d} KiB", file=out)
    print(f"  ours, in process: decode+render {r['ours_inprocess_decode_s'] * 1e3:7.1f} ms, "
          f"decode+re-encode {r['ours_inprocess_reencode_s'] * 1e3:7.1f} ms", file=out)
    if "analyze_process" in r:
        a = r["analyze_process"]
        print(f"  analyze-migration.py, process  {a['seconds'] * 1e3:8.1f} ms  peak {a['peak_kib']:7d} KiB", file=out)
        print(f"  ratio (analyze / ours): whole process {r['speedup_process']:.2f}x "
              f"(full CLI {r['speedup_full_cli']:.2f}x), peak memory {r['memory_ratio']:.2f}x; "
              f"identical output: {'yes' if r['same_output'] else 'NO'}", file=out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="migbench", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--analyze-migration", metavar="PATH")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        return run(args.files, args.analyze_migration, args.repeat, sys.stdout, args.json)
    except BenchError as exc:
        print(f"migbench: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
