"""The ``run`` job: every case file x its variants x every engine, as a results table.

With no paths it runs the bundled examples (conformance/data/examples) and, when the
current directory has one, the golden corpus (golden/cases).  Progress goes to stderr,
the table (or ``--json``) to stdout; the exit status is 1 when anything fails.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conformance.cases import CaseError, load_case_file, load_python_cases, run_case
from conformance.engines import available

EXAMPLES = Path(__file__).parent / "data" / "examples"


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
    elapsed = time.perf_counter() - started
    if args.json:
        json.dump({"results": rows, "errors": errors, "failures": failures,
                   "seconds": round(elapsed, 3)}, sys.stdout, indent=2)
        print()
    else:
        _table(rows, sys.stdout)
        for err in errors:
            print(f"error: {err}")
        passed = sum(r["passed"] for r in rows)
        print(f"\n{passed} passed, {failures} failed "
              f"({len(files)} files, engines: {', '.join(engines)}, {elapsed:.2f}s)")
    return 1 if failures else 0


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
