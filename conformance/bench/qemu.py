"""``vmstate-conformance bench --qemu``: the qemu engine's throughput beside the reference
engine's, in operations per second, on the same operations in one run.

For each build (the newest cached build per variant, or ``--qemu-build``) and each
bench corpus its variant can run (bench/engines.py's corpora; ``pointer-array`` needs
auto-alloc), every round times each (corpus, engine, operation) cell once, interleaved;
a cell's figure is its best round.  The qemu engine pays a ``fork()`` of the driver
per operation and, for a load, reads the destination back through a pipe, so its rate
is mostly fixed cost; the ratio column is qemu / reference (below 1: the qemu engine is
slower).  Before timing, each corpus's outcomes are compared (conformance.qemu.compare):
a corpus on which the engines disagree is reported, not timed.
"""

from __future__ import annotations

import json
import sys


def small():
    """Four scalars and a 3-element array (17 bytes): the per-operation fixed cost."""
    from conformance.model import macros as M
    from conformance.model.description import Description

    desc = Description("small", 1, 1, fields=[
        M.VMSTATE_UINT8("a"), M.VMSTATE_INT32_ARRAY("b", 3), M.VMSTATE_UINT64("c"),
        M.VMSTATE_BOOL("d")])
    state = {"a": 5, "b": [1, -2, 3], "c": 2 ** 63 + 5, "d": True}
    return desc, "legacy", state, state


#: corpora of this benchmark only (bench/engines.py's come after)
EXTRA = {"small": small}


def measure(builds, rounds: int = 7, quick: bool = False, corpora=None) -> dict:
    from conformance.bench import engines as eb
    from conformance.engines import reference
    from conformance.model.check import errors as check_errors
    from conformance.qemu import compare as qcompare
    from conformance.qemu import engine as qengine
    from conformance.qemu.selection import label

    budget = 0.002 if quick else 0.05
    rounds = 2 if quick else rounds
    cells, rows = {}, []
    for info in builds:
        eng = qengine.for_build(info)
        for name in corpora or [*EXTRA, *eb.CORPORA]:
            make = EXTRA.get(name) or eb.CORPORA[name]
            desc, variant, state, dest = (eb.deep_nesting(4) if quick and name == "deep-nesting"
                                          else make())
            row = {"build": info.key, "engine": label(info), "corpus": name,
                   "variant": info.variant}
            if variant != info.variant and (variant == "auto-alloc" or
                                            check_errors(desc, info.variant)):
                row["skipped"] = f"the corpus needs variant {variant}"
                rows.append(row)
                continue
            variant = info.variant
            saved = reference.save(desc, state, variant)
            data = saved.data + b"\x00"
            q_s = eng.save(desc, state, variant)
            ref_l = reference.load(desc, data, dest, variant)
            q_l = eng.load(desc, data, dest, variant)
            diffs = qcompare.compare(saved, q_s) + qcompare.compare(ref_l, q_l)
            if qengine.not_expressible(q_s) or diffs:
                row["skipped"] = (q_s.message if qengine.not_expressible(q_s) else
                                  "the engines disagree: " + str(diffs[0])[:120])
                rows.append(row)
                continue
            row["stream_bytes"] = len(saved.data)
            rows.append(row)
            key = (info.key, name)
            cells[key + ("reference", "save")] = (
                lambda d=desc, s=state, v=variant: reference.save(d, s, v))
            cells[key + ("reference", "load")] = (
                lambda d=desc, b=data, t=dest, v=variant: reference.load(d, b, t, v))
            cells[key + ("qemu", "save")] = (
                lambda e=eng, d=desc, s=state, v=variant: e.save(d, s, v))
            cells[key + ("qemu", "load")] = (
                lambda e=eng, d=desc, b=data, t=dest, v=variant: e.load(d, b, t, v))
    inner = {k: eb._inner_for(fn, budget) for k, fn in cells.items()}
    best = {k: float("inf") for k in cells}
    for _ in range(rounds):  # interleaved: every cell once per round
        for k, fn in cells.items():
            best[k] = min(best[k], eb._time(fn, inner[k]))
    for row in rows:
        if "skipped" in row:
            continue
        key = (row["build"], row["corpus"])
        for op in ("save", "load"):
            ref = 1.0 / best[key + ("reference", op)]
            q = 1.0 / best[key + ("qemu", op)]
            row[f"{op}_reference_ops"] = ref
            row[f"{op}_qemu_ops"] = q
            row[f"{op}_qemu_over_reference"] = q / ref
    return {"python": sys.version.split()[0], "rounds": rounds, "quick": quick, "rows": rows}


def print_table(report: dict, out=None) -> None:
    out = sys.stdout if out is None else out
    print(f"qemu engine vs reference engine, operations per second (best of "
          f"{report['rounds']} interleaved rounds{', QUICK' if report['quick'] else ''}; "
          f"ratio = qemu / reference)", file=out)
    print(f"{'build':16} {'corpus':14} {'op':5} {'reference/s':>12} {'qemu/s':>10} "
          f"{'ratio':>7}", file=out)
    for row in report["rows"]:
        if "skipped" in row:
            print(f"{row['build']:16} {row['corpus']:14} skipped: {row['skipped']}", file=out)
            continue
        for op in ("save", "load"):
            print(f"{row['build']:16} {row['corpus']:14} {op:5} "
                  f"{row[f'{op}_reference_ops']:12.1f} {row[f'{op}_qemu_ops']:10.1f} "
                  f"{row[f'{op}_qemu_over_reference']:7.3f}", file=out)


def run(args) -> int:
    """``bench --qemu [--qemu-build KEY]``: 0, 1 when no build is cached / usable."""
    from conformance.qemu import engine as qengine
    from conformance.qemu import selection

    try:
        builds = selection.builds_for([], args.qemu_build)
    except selection.SelectionError as exc:
        print(f"vmstate-conformance: bench --qemu: {exc}", file=sys.stderr)
        return 2
    if not builds:
        print(f"vmstate-conformance: bench --qemu: no cached QEMU build (make one: "
              f"{selection.MAKE_ONE})", file=sys.stderr)
        return 1
    try:
        report = measure(builds, rounds=args.rounds, quick=args.quick, corpora=args.corpus)
    except qengine.EngineUnavailable as exc:
        print(f"vmstate-conformance: bench --qemu: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(report)
    return 0
