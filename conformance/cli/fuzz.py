"""``vmstate-conformance fuzz``: the hostile-input properties (strategies/hostile.py) for
as long as asked.

    vmstate-conformance fuzz --minutes 60 --target mig --out fuzz-failures/
    vmstate-conformance fuzz --profile thorough       # 1,000,000 inputs over the targets

Each target draws inputs from its Hypothesis strategy in batches (a fresh random seed
per batch) and checks the error contract (docs/limits.md) on each: a result or a clean one-line
error, within 5 s and 500 MB.  A failing batch is shrunk by Hypothesis to a minimal
input (a hang or a slow input is written as found: shrinking it would re-run it
hundreds of times), written under ``--out`` as a reproducer (``<target>-<n>.mig`` / ``.json`` /
a case file ``.json`` for engines, with a ``.why.txt`` beside it), and the run goes on.  A progress line goes to
stderr; the summary table (target, inputs, clean errors, ok, failures) to stdout.  Exit
status 1 when anything failed.
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
         batch: int = 50, progress=None, seed: int | None = None, strategy=None) -> dict:
    """Run one target for ``seconds`` or until ``inputs`` inputs, whichever comes first
    (None: no bound of that kind); returns its summary row (progress: stderr).
    ``strategy``: a function returning the input strategy, instead of the target's own
    (a focused run: the same check on a narrowed strategy, e.g. in the tests)."""
    import random

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    from strategies import hostile
    from strategies.hostile import TARGETS, ContractViolation

    own_strategy, check, suffix = TARGETS[target]
    strategy = strategy or own_strategy
    progress = progress or sys.stderr  # looked up now: a test may have replaced it
    counts: collections.Counter = collections.Counter()
    failures: list[str] = []
    rng = random.Random(seed)
    last_failure: list = []

    timed_out: list = []

    peak = [0]  # the largest peak resident growth of one input (bytes)

    def body(value) -> None:
        hostile.PEAK[0] = 0
        try:
            counts[check(value)] += 1
        except ContractViolation as exc:
            if str(exc).startswith(("hang:", "slow:", "memory:", "blow-up:")):
                # written as found: shrinking would re-run a hang (or a blow-up)
                # hundreds of times
                timed_out.append([value, str(exc)])
                counts["timeout"] += 1
                return
            last_failure[:] = [value, str(exc)]
            raise
        finally:
            peak[0] = max(peak[0], hostile.PEAK[0])

    started = time.monotonic()
    deadline = started + seconds if seconds is not None else float("inf")
    next_progress = started + 10
    while time.monotonic() < deadline:
        remaining = batch if inputs is None else min(batch, inputs - sum(counts.values()))
        if remaining <= 0:
            break
        last_failure.clear()
        test = settings(max_examples=remaining, deadline=None, database=None, derandomize=False,
                        phases=[Phase.generate, Phase.shrink], print_blob=False,
                        suppress_health_check=list(HealthCheck))(given(strategy())(body))
        test = hseed(rng.getrandbits(64))(test)
        before = sum(counts.values())
        try:
            test()
        except ContractViolation:
            pass
        except Exception as exc:  # Hypothesis wraps several failures; the last one is minimal
            if not last_failure:
                last_failure[:] = [b"", f"{type(exc).__name__}: {exc}"]
        for value, why in ([last_failure] if last_failure else []) + timed_out:
            path = _write_reproducer(out, target, len(failures) + 1, value, suffix, why)
            failures.append(f"{path}: {why.splitlines()[0]}")
            print(f"fuzz {target}: FAILURE -> {path}: {why.splitlines()[0][:200]}", file=progress)
        timed_out.clear()
        if sum(counts.values()) == before and not last_failure and not failures:
            break  # the strategy produced nothing (should not happen)
        now = time.monotonic()
        if now >= next_progress:
            n = sum(counts.values())
            left = (f"{max(0.0, deadline - now):.0f} s left" if inputs is None else
                    f"{n}/{inputs} inputs")
            print(f"fuzz {target}: {n} inputs, {counts['clean']} clean errors, {counts['ok']} ok, "
                  f"{len(failures)} failures, {n / (now - started):.1f}/s, {left}",
                  file=progress, flush=True)
            next_progress = now + 10
    elapsed = time.monotonic() - started
    inputs = sum(counts.values())
    return {"target": target, "inputs": inputs, "clean": counts["clean"], "ok": counts["ok"],
            "failures": len(failures), "seconds": round(elapsed, 1),
            "per_second": round(inputs / elapsed, 1) if elapsed else 0.0,
            "peak_mb": round(peak[0] / (1 << 20), 1), "reproducers": failures}


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
    rows = [fuzz(t, seconds, Path(args.out), inputs=per_target, seed=args.seed)
            for t in targets]
    print(f"{'target':<8} {'inputs':>9} {'clean errors':>13} {'ok':>9} {'failures':>9} "
          f"{'inputs/s':>9} {'peak MB':>8}")
    for r in rows:
        print(f"{r['target']:<8} {r['inputs']:>9} {r['clean']:>13} {r['ok']:>9} "
              f"{r['failures']:>9} {r['per_second']:>9} {r['peak_mb']:>8}")
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
    p.set_defaults(func=cmd_fuzz)
