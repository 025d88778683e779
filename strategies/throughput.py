"""Throughput benchmark: examples per second per property (a benchmark, not a test).

    python -m strategies.throughput                 # every property, reference engine
    python -m strategies.throughput -n 100 -p round-trip -p robustness --engine optimized
    python -m strategies.throughput --variant legacy --json

For each property it runs ``-n`` examples at each selected grid point (phase
``generate`` only: no database, no shrinking, no deadline) and prints one row: grid
points, examples run, wall seconds, examples per second, and the estimated time of
5,000 examples per grid point (the ``thorough`` profile).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import attrs
from hypothesis import HealthCheck, Phase, settings

from strategies import properties as _props


def measure(name: str, engine: str = "reference", examples: int = 50, variants=None,
            families=None) -> dict:
    prop = _props.PROPERTIES[name]
    count = [0]

    def counting(data, eng, variant, family, _body=prop.body):
        count[0] += 1
        return _body(data, eng, variant, family)

    points = [(v, f) for v, f in prop.grid()
              if (not variants or v in variants) and (not families or f in families)]
    s = settings(max_examples=examples, database=None, deadline=None,
                 phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                 derandomize=True)
    failures = 0
    _props.PROPERTIES[name] = attrs.evolve(prop, body=counting)
    start = time.perf_counter()
    try:
        for variant, family in points:
            try:
                _props.build(name, engine, variant, family, settings=s)()
            except AssertionError:
                failures += 1
    finally:
        _props.PROPERTIES[name] = prop
    seconds = time.perf_counter() - start
    rate = count[0] / seconds if seconds > 0 else 0.0
    return {"property": name, "engine": engine, "points": len(points),
            "examples": count[0], "seconds": round(seconds, 3),
            "examples_per_second": round(rate, 1),
            "thorough_estimate_s": round(5000 * len(points) / rate, 1) if rate else None,
            "failures": failures}


def format_table(rows: list[dict]) -> str:
    head = ("property", "engine", "points", "examples", "seconds", "ex/s", "thorough est.",
            "failing")
    lines = [head]
    for r in rows:
        est = r["thorough_estimate_s"]
        lines.append((r["property"], r["engine"], str(r["points"]), str(r["examples"]),
                      f"{r['seconds']:.2f}", f"{r['examples_per_second']:.1f}",
                      f"{est / 60:.1f} min" if est else "-", str(r["failures"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths, strict=True))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m strategies.throughput",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--examples", type=int, default=50,
                    help="examples per grid point (default 50)")
    ap.add_argument("-p", "--property", action="append", choices=sorted(_props.PROPERTIES),
                    help="property to measure (repeatable; default all)")
    ap.add_argument("--engine", default="reference")
    ap.add_argument("--variant", action="append", help="restrict the grid to a variant")
    ap.add_argument("--family", action="append", help="restrict the grid to a family")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = ap.parse_args(argv)
    rows = []
    for name in args.property or list(_props.PROPERTIES):
        row = measure(name, args.engine, args.examples, args.variant, args.family)
        rows.append(row)
        if not args.json:
            print(f"  measured {name}: {row['examples_per_second']} ex/s", file=sys.stderr)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
