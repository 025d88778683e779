"""Benchmark: decoding real migration files, side by side with analyze-migration.py.

Measures, in one run, on the same files, in interleaved rounds (best of ``repeat``):

* whole process: ``python -m conformance.cli.migration decode --format analyze-migration
  FILE`` (the lean entry point), the full ``python -m conformance decode`` CLI, and, when
  given, ``python analyze-migration.py -f FILE`` (QEMU's script, from a checkout or its
  path); next to them ``python -c pass`` (the interpreter's floor: site and the .pth
  files of the installation) and ``python -S -c pass`` (the interpreter without site);
* peak memory (ru_maxrss) of each child, from ``os.wait4``;
* in process: parse + analyze rendering, parse + re-encode.

Every child is started by a small spawner process (``python -S``, started first):
Linux charges a child's ru_maxrss with the memory of the process it was forked from,
so children forked from this (larger) process would all report at least its size.
Children run with the real interpreter (``sys.executable``) and bytecode caching on,
after one warm-up run each.  Ratios are computed from times measured in this run;
nothing is asserted.  The outputs of ours and the script are compared too.
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


def make_qemu_streams(directory: Path, ram_heavy: bool, many_devices: bool) -> list[Path]:
    """Streams made by the real qemu-system-x86_64 (conformance.qemu.streams): the
    ``pc-many-devices`` configuration (1.6 MB) and the RAM-heavy stream (200 MiB of
    random data loaded into a 256 MB guest: 210 MB)."""
    from conformance.qemu import streams

    reason = streams.skip_reason()
    if reason:
        raise BenchError(reason)
    made = []
    try:
        if many_devices:
            made.append(streams.make_stream(directory / "pc-many-devices.mig", devices=streams.MANY_DEVICES))
        if ram_heavy:
            made.append(streams.make_ram_heavy_stream(directory / "pc-ram-heavy-200MiB.mig"))
    except (streams.QemuError, OSError) as exc:
        raise BenchError(f"making a stream with QEMU: {exc}") from None
    return made


def _child_env() -> dict:
    # Byte-compiled modules as a normal install has them: the first (warm-up) run
    # writes __pycache__ even where PYTHONDONTWRITEBYTECODE is set for development.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# The spawner: reads "OUT\0ARG0\0ARG1..." lines, runs each command with stdout to OUT
# (or /dev/null) and stderr to /dev/null, answers "seconds maxrss_kib status cpu_seconds".
_SPAWNER = r"""
import os, sys, time
null = os.open(os.devnull, os.O_WRONLY)
for line in sys.stdin:
    out, *argv = line.rstrip("\n").split("\0")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if out else null
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if fd != null:
        os.close(fd)
    print(seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,
          flush=True)
"""


class Spawner:
    """Runs child processes from a small ``python -S`` process (see the module doc)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", _SPAWNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=_child_env())

    def run(self, argv: list[str], out: str = "") -> tuple[float, int, int, float]:
        """(wall seconds, peak RSS KiB, exit status, CPU seconds) of one child."""
        if any("\0" in a or "\n" in a for a in [out, *argv]):
            raise BenchError(f"a file name with a newline or NUL cannot be benchmarked: {argv!r}")
        self.proc.stdin.write("\0".join([out, *argv]) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if len(reply) != 4:
            raise BenchError(f"the spawner failed running {argv[0]}")
        return float(reply[0]), int(reply[1]), int(reply[2]), float(reply[3])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self) -> Spawner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def commands(path: str, script: Path | None) -> dict[str, list[str]]:
    """The measured commands for ``path``, by row label."""
    py = sys.executable
    rows = {
        "python3 -c pass": [py, "-c", "pass"],
        "python3 -S -c pass": [py, "-S", "-c", "pass"],
        "ours (lean entry)": [py, "-m", "conformance.cli.migration", "decode", "--format", "analyze-migration", path],
        "ours (full CLI)": [py, "-m", "conformance", "decode", "--format", "analyze-migration", path],
    }
    if script is not None:
        rows["analyze-migration.py"] = [py, str(script), "-f", path]
    # not an installed command (pip writes console scripts without interpreter flags):
    # what the lean entry costs without site, for the reader to see the floor's share
    root = str(Path(__file__).resolve().parent.parent.parent)
    rows["ours (lean, python3 -S)"] = [
        py, "-S", "-c", f"import sys; sys.path.insert(0, {root!r}); "
        "from conformance.cli.migration import main; sys.exit(main(sys.argv[1:]))",
        "decode", "--format", "analyze-migration", path]
    return rows


#: JSON keys of the rows (the first three are the keys the report has always had)
KEYS = {"python3 -c pass": "python_floor", "python3 -S -c pass": "python_no_site",
        "ours (lean entry)": "ours_process", "ours (full CLI)": "full_cli_process",
        "analyze-migration.py": "analyze_process", "ours (lean, python3 -S)": "ours_no_site"}


def bench_file(spawner: Spawner, path: str, script: Path | None, repeat: int) -> dict:
    rows = commands(path, script)
    times: dict[str, list[float]] = {label: [] for label in rows}
    cpu: dict[str, list[float]] = {label: [] for label in rows}
    peaks: dict[str, int] = dict.fromkeys(rows, 0)
    status: dict[str, int] = dict.fromkeys(rows, 0)
    for argv in rows.values():  # warm-up: page cache, __pycache__
        spawner.run(argv)
    for _ in range(repeat):  # interleaved rounds
        for label, argv in rows.items():
            seconds, peak, code, used = spawner.run(argv)
            times[label].append(seconds)
            cpu[label].append(used)
            peaks[label] = max(peaks[label], peak)
            status[label] = code or status[label]
    result: dict = {"file": path, "bytes": Path(path).stat().st_size, "repeat": repeat}
    for label in rows:
        result[KEYS[label]] = {"seconds": min(times[label]), "cpu_seconds": min(cpu[label]),
                               "peak_kib": peaks[label], "status": status[label]}
    if script is not None:
        outputs = {}
        with tempfile.TemporaryDirectory(prefix="vmstate-bench-") as tmp:
            for label in ("ours (lean entry)", "ours (full CLI)", "analyze-migration.py"):
                target = os.path.join(tmp, KEYS[label])
                spawner.run(rows[label], target)
                outputs[label] = Path(target).read_bytes()
        theirs = outputs["analyze-migration.py"]
        result["same_output"] = outputs["ours (lean entry)"] == theirs
        result["same_output_full_cli"] = outputs["ours (full CLI)"] == theirs
        a, o, f = result["analyze_process"], result["ours_process"], result["full_cli_process"]
        result["speedup_process"] = a["seconds"] / o["seconds"]
        result["speedup_full_cli"] = a["seconds"] / f["seconds"]
        result["memory_ratio"] = a["peak_kib"] / o["peak_kib"] if o["peak_kib"] else None
        result["memory_ratio_full_cli"] = a["peak_kib"] / f["peak_kib"] if f["peak_kib"] else None
        result["speedup_no_site"] = a["seconds"] / result["ours_no_site"]["seconds"]
        result["cpu_speedup_process"] = a["cpu_seconds"] / o["cpu_seconds"]
    return result


def bench_inprocess(result: dict, repeat: int) -> None:
    from conformance.migration import migfile
    from conformance.migration.source import map_file as _map

    path = result["file"]
    result["ours_inprocess_decode_s"] = _best_inprocess(
        lambda: migfile.render_json(migfile.analyze_state(migfile.read_migration(_map(path)))), repeat)
    result["ours_inprocess_reencode_s"] = _best_inprocess(
        lambda: migfile.encode(migfile.read_migration(_map(path))), repeat)


def _best_inprocess(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _undecodable(path) -> str | None:
    """Why ``path`` is not a complete migration stream we decode (one line), or None."""
    from conformance.errors import ConformanceError
    from conformance.migration import migfile
    from conformance.migration.source import map_file as _map

    try:
        mf = migfile.read_migration(_map(str(path)))
    except ConformanceError as exc:
        return f"{path}: {exc}"
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    return f"{path}: {mf.incomplete}" if mf.incomplete else None


def run(paths, analyze_migration=None, repeat=5, out=sys.stdout, as_json=False,
        skip_undecodable: bool = False) -> int:
    """Benchmark ``paths``; returns an exit status (1 if any file failed to decode).

    ``skip_undecodable``: leave out (with a note) files that are no complete stream (the
    default set holds a hostile-input reproducer); otherwise such a file is a BenchError."""
    script = find_script(analyze_migration) if analyze_migration else None
    repeat = max(1, int(repeat))
    kept, skipped = [], []
    for path in paths:
        if not Path(path).is_file():
            raise BenchError(f"{path}: no such file" if not Path(path).exists() else
                             f"{path}: not a regular file")
        why = _undecodable(path)
        if why and not skip_undecodable:
            raise BenchError(why)
        (skipped if why else kept).append(why or str(path))
    with Spawner() as spawner:
        results = [bench_file(spawner, path, script, repeat) for path in kept]
    for result in results:
        bench_inprocess(result, repeat)
    report = {"python": sys.version.split()[0], "executable": sys.executable,
              "script": str(script) if script else None, "rounds": repeat,
              "results": results, "skipped": skipped}
    if as_json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_text(report, out)
    failed = any(r["ours_process"]["status"] for r in results)
    return 1 if failed else 0


def _mib(kib: int) -> str:
    return f"{kib / 1024:6.1f} MiB"


def _print_text(report: dict, out) -> None:
    print(f"decode --format analyze-migration, whole process: best of {report['rounds']} interleaved "
          f"rounds, peak RSS from wait4; Python {report['python']} ({report['executable']}), "
          f"bytecode cached", file=out)
    if report["script"]:
        print(f"script: {report['script']}", file=out)
    for r in report["results"]:
        print(f"\n{r['file']} ({r['bytes'] / 1e6:.2f} MB)", file=out)
        for label, key in KEYS.items():
            if key in r:
                row = r[key]
                print(f"  {label:<24}{row['seconds'] * 1e3:9.1f} ms  (CPU {row['cpu_seconds'] * 1e3:6.1f} ms)  "
                      f"peak {_mib(row['peak_kib'])}", file=out)
        print(f"  in process (ours): decode+render {r['ours_inprocess_decode_s'] * 1e3:.1f} ms, "
              f"decode+re-encode {r['ours_inprocess_reencode_s'] * 1e3:.1f} ms", file=out)
        if "analyze_process" in r:
            print(f"  script / ours: time {r['speedup_process']:.2f}x lean (CPU {r['cpu_speedup_process']:.2f}x), "
                  f"{r['speedup_full_cli']:.2f}x full CLI "
                  f"({r['speedup_no_site']:.2f}x lean under python3 -S); "
                  f"peak RSS {r['memory_ratio']:.2f}x lean, {r['memory_ratio_full_cli']:.2f}x full CLI; "
                  f"identical output: {'yes' if r['same_output'] and r['same_output_full_cli'] else 'NO'}",
                  file=out)
    for why in report["skipped"]:
        print(f"\nskipped (not a complete stream): {why}", file=out)
    compared = [r for r in report["results"] if "analyze_process" in r]
    if compared:
        print("\n| stream | size | python3 -c pass | script | ours (lean) | ours (full CLI) | "
              "speed-up lean / full | peak RSS script / ours (lean, full) | ours (lean) under python3 -S |",
              file=out)
        print("|---|---|---|---|---|---|---|---|---|", file=out)
        for r in compared:
            a, o, f, p = r["analyze_process"], r["ours_process"], r["full_cli_process"], r["python_floor"]
            print(f"| {Path(r['file']).name} | {r['bytes'] / 1e6:.2f} MB | {p['seconds'] * 1e3:.1f} ms | "
                  f"{a['seconds'] * 1e3:.1f} ms | {o['seconds'] * 1e3:.1f} ms | {f['seconds'] * 1e3:.1f} ms | "
                  f"{r['speedup_process']:.2f}x / {r['speedup_full_cli']:.2f}x (CPU {r['cpu_speedup_process']:.2f}x) | "
                  f"{a['peak_kib'] / 1024:.1f} / {o['peak_kib'] / 1024:.1f}, {f['peak_kib'] / 1024:.1f} MiB | "
                  f"{r['ours_no_site']['seconds'] * 1e3:.1f} ms, {r['speedup_no_site']:.2f}x |", file=out)
