"""``vmstate-conformance fuzz``: the hostile-input properties (strategies/hostile.py) for
as long as asked.

    vmstate-conformance fuzz --minutes 60 --target mig --out fuzz-failures/
    vmstate-conformance fuzz --profile thorough --jobs 2   # 1,000,000 inputs, two processes

Each target draws inputs from its Hypothesis strategy in batches (a fresh random seed
per batch of examples; several inputs per example, see docs/limits.md) and checks the
error contract (docs/limits.md) on each: a result or a clean one-line error, within 5 s
and 500 MB.  A failing input is minimised (byte chunks deleted while the same kind of
violation stays: :func:`minimise`; a focused run with ``strategy=`` is shrunk by
Hypothesis instead; a hang or a slow input is written as found: shrinking it would re-run
it hundreds of times), written under ``--out`` as a reproducer (``<target>-<n>.mig`` /
``.json`` / a case file ``.json`` for engines, with a ``.why.txt`` beside it), and the run
goes on.  A progress line goes to stderr; the summary table (target, inputs, clean errors,
ok, failures, inputs/s, peak MB, seconds) to stdout.  Exit status 1 when anything failed.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

from conformance.cli import EXIT_FAIL, EXIT_OK, UsageError
from conformance.profiles import PROFILES

TARGET_NAMES = ("mig", "case", "engines")


def _positive_minutes(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of minutes")
    return value


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of inputs")
    return value


def _write_reproducer(out: Path, target: str, n: int, value, suffix: str, why: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{target}-{n}{suffix}"
    if isinstance(value, bytes):
        path.write_bytes(value)
    else:  # engines: (description, stream, destination, variant)
        path = _write_engine_case(out / f"{target}-{n}", value, why)
    (out / f"{target}-{n}.why.txt").write_text(why + "\n")
    return path


def _write_engine_case(stem: Path, value, why: str) -> Path:
    """The engines input as a case file (the stream as ``load_input`` into the
    destination), so ``vmstate-conformance run FILE --verbose`` replays it on both
    engines; as text when the destination has no JSON form."""
    import json

    from conformance.cases.casefile import Case, dump_case

    desc, data, dest, variant = value
    try:
        case = Case(name=stem.name, description=desc, source=dest, destination=dest,
                    variants=(variant,), load_input=bytes(data), notes=f"fuzz: {why}")
        text = json.dumps(dump_case(case), indent=1)
    except Exception:  # noqa: BLE001 - a reproducer is written whatever its state holds
        path = stem.with_suffix(".txt")
        path.write_text(f"variant: {variant}\nstream: {bytes(data).hex()}\n"
                        f"destination: {dest!r}\ndescription: {desc!r}\n")
        return path
    path = stem.with_suffix(".json")
    path.write_text(text + "\n")
    return path


def fuzz(target: str, seconds: float | None, out: Path, *, inputs: int | None = None,
         batch: int = 50, progress=None, seed: int | None = None, strategy=None,
         shard: str = "") -> dict:
    """Run one target for ``seconds`` or until ``inputs`` inputs, whichever comes first
    (None: no bound of that kind); returns its summary row (progress: stderr).
    ``strategy``: a function returning the input strategy, instead of the target's own
    (a focused run: the same check on a narrowed strategy, e.g. in the tests).
    ``shard``: this process's part of a ``--jobs`` run (in its reproducers' names and
    progress lines)."""
    import random
    import warnings

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis.errors import HypothesisWarning

    from strategies import hostile
    from strategies.hostile import TARGETS, ContractViolation

    spec = TARGETS[target]
    suffix = spec.suffix
    if strategy is None:  # the target's batches: many inputs per Hypothesis example
        strategy, check = spec.batches, spec.check_batch
    else:  # a focused run: single inputs, shrunk by Hypothesis
        check = spec.check
    progress = progress or sys.stderr  # looked up now: a test may have replaced it
    counts: collections.Counter = collections.Counter()
    failures: list[str] = []
    rng = random.Random(seed)
    last_failure: list = []

    timed_out: list = []

    peak = [0]  # the largest peak resident growth of one input (bytes)

    batch_size = getattr(check, "batch_size", 1)  # inputs per Hypothesis example

    def body(value) -> None:
        hostile.PEAK[0] = 0
        try:
            if batch_size > 1:  # a batch: one result per input, within the budget
                left = None if inputs is None else inputs - sum(counts.values())
                counts.update(check(value, limit=left) if left is None or left > 0 else [])
            else:
                counts[check(value)] += 1
        except ContractViolation as exc:
            found = getattr(exc, "input", value)  # a batch names the input that failed
            if str(exc).startswith(("hang:", "slow:", "memory:", "blow-up:")):
                # written as found: shrinking would re-run a hang (or a blow-up)
                # hundreds of times
                timed_out.append([found, str(exc)])
                counts["timeout"] += 1
                return
            last_failure[:] = [found, str(exc)]
            raise
        finally:
            peak[0] = max(peak[0], hostile.PEAK[0])

    started = time.monotonic()
    deadline = started + seconds if seconds is not None else float("inf")
    next_progress = started + 10
    while time.monotonic() < deadline:
        done = sum(counts.values())
        remaining = batch if inputs is None else min(batch, -(-(inputs - done) // batch_size))
        if remaining <= 0:
            break
        last_failure.clear()
        # a batch is not shrunk by Hypothesis (a havoc batch's inputs come from one
        # drawn seed): its failing input is minimised below
        phases = [Phase.generate] if batch_size > 1 else [Phase.generate, Phase.shrink]
        test = settings(max_examples=remaining, deadline=None, database=None, derandomize=False,
                        phases=phases, print_blob=False,
                        suppress_health_check=list(HealthCheck))(given(strategy())(body))
        test = hseed(rng.getrandbits(64))(test)
        before = sum(counts.values())
        try:
            with warnings.catch_warnings():  # the repr of a failing batch is long: no matter
                warnings.simplefilter("ignore", HypothesisWarning)
                test()
        except ContractViolation:
            pass
        except Exception as exc:  # Hypothesis wraps several failures; the last one is minimal
            if not last_failure:
                last_failure[:] = [b"", f"{type(exc).__name__}: {exc}"]
        if last_failure and batch_size > 1:
            last_failure[0] = minimise(spec.check, *last_failure)
        for value, why in ([last_failure] if last_failure else []) + timed_out:
            path = _write_reproducer(out, target + shard, len(failures) + 1, value, suffix, why)
            failures.append(f"{path}: {why.splitlines()[0]}")
            print(f"fuzz {target}{shard}: FAILURE -> {path}: {why.splitlines()[0][:200]}", file=progress)
        timed_out.clear()
        if sum(counts.values()) == before and not last_failure and not failures:
            break  # the strategy produced nothing (should not happen)
        now = time.monotonic()
        if now >= next_progress:
            n = sum(counts.values())
            left = (f"{max(0.0, deadline - now):.0f} s left" if inputs is None else
                    f"{n}/{inputs} inputs")
            print(f"fuzz {target}{shard}: {n} inputs, {counts['clean']} clean errors, {counts['ok']} ok, "
                  f"{len(failures)} failures, {n / (now - started):.1f}/s, {left}",
                  file=progress, flush=True)
            next_progress = now + 10
    elapsed = time.monotonic() - started
    inputs = sum(counts.values())
    return {"target": target, "inputs": inputs, "clean": counts["clean"], "ok": counts["ok"],
            "failures": len(failures), "seconds": round(elapsed, 1),
            "per_second": round(inputs / elapsed, 1) if elapsed else 0.0,
            "peak_mb": round(peak[0] / (1 << 20), 1), "reproducers": failures}


def _shard(target: str, seconds, out: Path, inputs, seed, shard: str) -> dict:
    """One process's part of a ``--jobs`` run (a pool worker), with its wall-clock span."""
    began = time.time()
    row = fuzz(target, seconds, out, inputs=inputs, seed=seed, shard=shard)
    row["span"] = (began, time.time())
    return row


def _fuzz_in_parallel(targets, seconds, out: Path, per_target, seed, jobs: int) -> list[dict]:
    """Each target split into ``jobs`` shards run by a pool of ``jobs`` processes (the
    shards of one target side by side; the targets in turn), each shard with its own
    seed and its share of the target's inputs; a row per target: the shards summed,
    its seconds the wall time from its first shard's start to its last shard's end."""
    from concurrent.futures import ProcessPoolExecutor

    tasks = []
    for target in targets:
        for k in range(jobs):
            share = None if per_target is None else per_target // jobs + (k < per_target % jobs)
            if share == 0:
                continue
            tasks.append((target, seconds, out, share,
                          None if seed is None else seed * 1000 + k + 1, f".{k + 1}"))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        parts = list(pool.map(_shard, *zip(*tasks, strict=True)))
    rows = []
    for target in targets:
        mine = [r for r in parts if r["target"] == target]
        seconds_taken = max(r["span"][1] for r in mine) - min(r["span"][0] for r in mine)
        row = {"target": target, "seconds": round(seconds_taken, 1),
               "peak_mb": max(r["peak_mb"] for r in mine),
               "reproducers": [line for r in mine for line in r["reproducers"]]}
        for key in ("inputs", "clean", "ok", "failures"):
            row[key] = sum(r[key] for r in mine)
        row["per_second"] = round(row["inputs"] / seconds_taken, 1) if seconds_taken else 0.0
        rows.append(row)
    return rows


def minimise(check, value, why: str, seconds: float = 20.0):
    """A failing input made smaller while ``check`` still fails it the same way (the
    first word of the violation: ``traceback``, ``engines``, an output line...): chunks
    of its bytes (of the stream, for an engines input) deleted, halves first, for at
    most ``seconds``.  A batch's input has no Hypothesis shrinking behind it."""
    from strategies.hostile import ContractViolation

    kind = why.split(":", 1)[0]
    as_bytes = (lambda v: v) if isinstance(value, bytes) else (lambda v: v[1])
    rebuild = (lambda v, data: data) if isinstance(value, bytes) else \
        (lambda v, data: (v[0], data, *v[2:]))

    def fails(candidate) -> bool:
        try:
            check(candidate)
        except ContractViolation as exc:
            text = str(exc)
            return not text.startswith(("hang:", "slow:", "memory:", "blow-up:")) and \
                text.split(":", 1)[0] == kind
        except Exception:  # noqa: BLE001 - a candidate the check cannot take: not this failure
            return False
        return False

    deadline = time.monotonic() + seconds
    data = bytes(as_bytes(value))
    chunk = max(1, len(data) // 2)
    while data and time.monotonic() < deadline:
        at, changed = 0, False
        while at < len(data) and time.monotonic() < deadline:
            candidate = data[:at] + data[at + chunk:]
            if fails(rebuild(value, candidate)):
                data, changed = candidate, True
            else:
                at += chunk
        if not changed:
            if chunk == 1:
                break
            chunk //= 2
    return rebuild(value, data)


def cmd_fuzz(args) -> int:
    try:
        import strategies.hostile  # noqa: F401 - the strategies live in the checkout
    except ImportError as exc:
        raise UsageError(f"fuzz needs the strategies package of a checkout ({exc})") from None
    targets = [args.target] if args.target else list(TARGET_NAMES)
    total = args.inputs
    if args.profile:
        if total is not None:
            raise UsageError("--inputs and --profile both set the number of inputs; give one")
        total = PROFILES[args.profile]["fuzz_inputs"]
    minutes = args.minutes if args.minutes is not None else (None if total else 1.0)
    seconds = minutes * 60 / len(targets) if minutes is not None else None
    per_target = -(-total // len(targets)) if total else None  # rounded up: at least total
    if args.jobs == 1:
        rows = [fuzz(t, seconds, Path(args.out), inputs=per_target, seed=args.seed)
                for t in targets]
    else:
        rows = _fuzz_in_parallel(targets, seconds, Path(args.out), per_target, args.seed,
                                 args.jobs)
    print(f"{'target':<8} {'inputs':>9} {'clean errors':>13} {'ok':>9} {'failures':>9} "
          f"{'inputs/s':>9} {'peak MB':>8} {'seconds':>8}")
    for r in rows:
        print(f"{r['target']:<8} {r['inputs']:>9} {r['clean']:>13} {r['ok']:>9} "
              f"{r['failures']:>9} {r['per_second']:>9} {r['peak_mb']:>8} {r['seconds']:>8}")
    for r in rows:
        for line in r["reproducers"]:
            print(f"reproducer: {line}")
    return EXIT_FAIL if any(r["failures"] for r in rows) else EXIT_OK


def add_subcommands(sub) -> None:
    p = sub.add_parser("fuzz", help="hostile-input fuzzing: mutated migration files, case "
                                    "files and engine streams against the error contract")
    p.add_argument("--minutes", type=_positive_minutes,
                   help="how long to run, shared between the targets (default 1, or no "
                        "time bound when --inputs or --profile is given)")
    p.add_argument("--inputs", type=_positive_int, metavar="N",
                   help="stop after N inputs, shared between the targets (default: no "
                        "input bound)")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="the profile's input budget: " + ", ".join(
                       f"{k} {v['fuzz_inputs']:,}" for k, v in PROFILES.items())
                   + " (default: none)")
    p.add_argument("--target", choices=TARGET_NAMES,
                   help="one target (default: all three, in turn)")
    p.add_argument("--out", default="fuzz-failures", metavar="DIR",
                   help="where minimal reproducers are written (default fuzz-failures/)")
    p.add_argument("--seed", type=int, help="seed the batch seeds (default: random)")
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="processes: each target split into N shards run side by side, "
                        "e.g. --jobs $(nproc) (default 1)")
    p.set_defaults(func=cmd_fuzz)
