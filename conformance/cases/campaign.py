"""The ``run`` job: case files x variants x engines, then a property sweep, as tables.

With no paths it runs the bundled examples (conformance/data/examples) and, when the
current directory has one, the golden corpus (golden/cases).  Then every property of
strategies/properties.py runs over its grid (variant x field family) on every engine
with ``--properties N`` examples per grid point (0 skips the sweep).  Progress goes to
stderr, the tables (or ``--json``) to stdout; the exit status is 1 when anything fails.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conformance.cases import CaseError, load_case_file, load_python_cases, run_case
from conformance.engines import available

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"


def collect(paths: list[str]) -> list[Path]:
    if not paths:
        roots = [EXAMPLES]
        if Path("golden/cases").is_dir():
            roots.append(Path("golden/cases"))
    else:
        roots = [Path(p) for p in paths]
    files: list[Path] = []
    for root in roots:
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix in (".json", ".py")
                            and not p.name.startswith("_"))
        else:
            files.append(root)
    return files


def _load_all(path: Path):
    if path.suffix == ".py":
        return load_python_cases(path)
    return [load_case_file(path)]


def run_campaign(args) -> int:
    engines = args.engine or available()
    files = collect(args.paths)
    rows = []
    failures = 0
    errors = []
    started = time.perf_counter()
    for k, path in enumerate(files, 1):
        print(f"[{k}/{len(files)}] {path}", file=sys.stderr)
        try:
            cases = _load_all(path)
        except CaseError as exc:
            errors.append(str(exc))
            failures += 1
            continue
        for case in cases:
            variants = [v for v in case.variants if not args.variant or v in args.variant]
            for variant in variants:
                for engine in engines:
                    result = run_case(case, variant, engine)
                    failures += not result.passed
                    rows.append({"case": case.name, "variant": variant, "engine": engine,
                                 "save": result.save.kind,
                                 "load": result.load.kind if result.load else "-",
                                 "bytes": len(result.save.data),
                                 "passed": result.passed,
                                 "mismatches": list(result.mismatches)})
    prop_rows = _property_sweep(engines, args.properties, args.variant)
    failures += sum(1 for r in prop_rows if r["failures"])
    elapsed = time.perf_counter() - started
    if args.json:
        json.dump({"results": rows, "properties": prop_rows, "errors": errors,
                   "failures": failures, "seconds": round(elapsed, 3)}, sys.stdout, indent=2)
        print()
    else:
        _table(rows, sys.stdout)
        for err in errors:
            print(f"error: {err}")
        if prop_rows:
            print()
            _property_table(prop_rows, sys.stdout)
        passed = sum(r["passed"] for r in rows) + sum(not r["failures"] for r in prop_rows)
        print(f"\n{passed} passed, {failures} failed "
              f"({len(files)} files, {len(prop_rows)} property runs, engines: "
              f"{', '.join(engines)}, {elapsed:.2f}s)")
    return 1 if failures else 0


def _property_sweep(engines, examples: int, variants) -> list[dict]:
    """Every property over its grid on every engine, ``examples`` per grid point."""
    if not examples:
        return []
    try:
        from strategies import properties
    except ImportError as exc:  # hypothesis is in the "test" extra
        print(f"property sweep skipped: {exc} (install '.[test]')", file=sys.stderr)
        return []
    rows = []
    for name, prop in properties.PROPERTIES.items():
        for engine in engines:
            print(f"property {name} on {engine} ({examples} examples per grid point)",
                  file=sys.stderr)
            began = time.perf_counter()
            failed = properties.run(name, engine, max_examples=examples, variants=variants)
            rows.append({"property": name, "engine": engine,
                         "grid": sum(1 for v, _ in prop.grid()
                                     if not variants or v in variants),
                         "failures": [{"variant": v, "family": f, "message": m}
                                      for v, f, m in failed],
                         "seconds": round(time.perf_counter() - began, 2)})
    return rows


def _property_table(rows, out) -> None:
    print(f"{'property':<22}{'engine':<11}{'grid points':>12}{'failed':>8}{'seconds':>9}",
          file=out)
    for r in rows:
        print(f"{r['property']:<22}{r['engine']:<11}{r['grid']:>12}{len(r['failures']):>8}"
              f"{r['seconds']:>9.2f}", file=out)
        for f in r["failures"]:
            first = (f["message"] or "").splitlines()[0] if f["message"] else ""
            print(f"    {f['variant']}/{f['family']}: {first}", file=out)


def _table(rows, out) -> None:
    headers = ["case", "variant", "engine", "save", "load", "bytes", "result"]
    body = [[r["case"], r["variant"], r["engine"], r["save"], r["load"], str(r["bytes"]),
             "pass" if r["passed"] else "FAIL"] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for b, r in zip(body, rows, strict=True):
        print("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)), file=out)
        for m in r["mismatches"]:
            print(f"    {m}", file=out)
