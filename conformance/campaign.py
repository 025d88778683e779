"""The ``run`` job: case files x variants x engines, then (when asked) a property sweep.

What it prints (stdout): a summary matrix (group x variant x engine, passed/total), the
property matrix when the sweep ran, then only what failed, each with the command that
replays it, and a closing ``N passed, M failed`` line.  ``--verbose`` adds the full
per-case table; ``--json`` prints the report.json document instead.  Progress goes to
stderr: a progress bar on a terminal (rich), plain lines otherwise (CI logs).

Which files are cases (docs/running.md):

* a file named on the command line is read as a case file, whatever its name;
* under a directory, a ``.json`` file is a case when its top-level object's ``format``
  is ``vmstate-conformance/case/1``; a ``.py`` file is a case module when its name does
  not start with ``_`` or ``test_``, is not ``conftest.py``, and its text binds ``CASES``
  at the top level (it is not imported to decide); hidden directories and
  ``__pycache__`` are skipped;
* an empty selection is a usage error.

The property sweep runs with no paths (10 examples per grid point), or with paths when
``--properties N``, ``--profile NAME`` or ``--property NAME`` asks for it.

Failures are written as case files (``--report DIR``: under ``DIR/failures/``; without
it, a case's own file is its reproducer and a property's shrunk example goes to a fresh
temporary directory); ``run FILE --engine E --variant V`` replays one.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from conformance.names import CASE_FORMAT
from conformance.report.matrix import matrix_table

EXAMPLES = Path(__file__).resolve().parent / "data" / "examples"
REPORT_FORMAT = "vmstate-conformance/report/1"
DEFAULT_SWEEP_EXAMPLES = 10
_CASES_BINDING = re.compile(r"^CASES\s*(:[^=\n]*)?=", re.MULTILINE)


class CampaignUsageError(Exception):
    """A selection or option problem (exit status 2)."""


# ---------------------------------------------------------------------------------------
# Discovery


def is_case_json(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if CASE_FORMAT not in text:
        return False
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("format") == CASE_FORMAT


def is_case_module(path: Path) -> bool:
    name = path.name
    if name.startswith(("_", "test_")) or name == "conftest.py" or name.endswith("_test.py"):
        return False
    try:
        return bool(_CASES_BINDING.search(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def _skipped_dir(path: Path, root: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__"
               for part in path.relative_to(root).parts[:-1])


def collect(paths: list[str]) -> list[tuple[Path, str]]:
    """The case files to run, each with its group (a corpus or family: the matrix row)."""
    if not paths:
        roots = [(EXAMPLES, "examples")]
        if Path("golden/cases").is_dir():
            roots.append((Path("golden/cases"), "golden"))
    else:
        roots = []
        for p in paths:
            path = Path(p)
            if not path.exists():
                raise CampaignUsageError(f"{p}: no such file or directory")
            roots.append((path, path.name if path.is_dir() else path.parent.name or "."))
    files: list[tuple[Path, str]] = []
    for root, label in roots:
        if not root.is_dir():
            files.append((root, label))
            continue
        found = []
        for p in sorted(root.rglob("*")):
            if not p.is_file() or _skipped_dir(p, root):
                continue
            if (p.suffix == ".json" and is_case_json(p)) or (p.suffix == ".py"
                                                             and is_case_module(p)):
                rel = p.parent.relative_to(root)
                found.append((p, label if str(rel) == "." else f"{label}/{rel.as_posix()}"))
        if not found:
            raise CampaignUsageError(f"{root}: no case files (JSON with \"format\": "
                                     f"\"{CASE_FORMAT}\", or .py modules defining CASES)")
        files += found
    return files


# ---------------------------------------------------------------------------------------
# Progress


class Progress:
    """A rich progress bar on a terminal, plain lines otherwise (one per group/property)."""

    def __init__(self, total: int, stream=None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self._last = None
        self._bar = None
        if not enabled:
            self.stream = None
            return
        if getattr(self.stream, "isatty", lambda: False)():
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
                from rich.progress import Progress as Bar
            except ImportError:
                return
            self._bar = Bar(TextColumn("{task.description:<40.40}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("run", total=total)

    def step(self, label: str, line: str) -> None:
        """One unit done; ``line`` is printed (plain mode) when it differs from the last."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=label)
        elif self.stream is not None and line != self._last:
            print(f"[{self.done}/{self.total}] {line}", file=self.stream, flush=True)
            self._last = line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------------------------
# The campaign


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:100] or "case"


class FailureWriter:
    """Writes each failure's case file under ``directory`` (created on first use)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._used: set[str] = set()

    def _path(self, stem: str, suffix: str) -> Path:
        if self.directory is None:
            import tempfile

            self.directory = Path(tempfile.mkdtemp(prefix="vmstate-conformance-failures-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        name, n = _slug(stem), 1
        while f"{name}{suffix}" in self._used:
            n += 1
            name = f"{_slug(stem)}-{n}"
        self._used.add(f"{name}{suffix}")
        return self.directory / f"{name}{suffix}"

    def write_case(self, stem: str, case, variant: str | None, origin: str | None,
                   note: str = "") -> Path:
        import attrs

        from conformance.cases import dump_case

        try:
            if variant is not None:
                case = attrs.evolve(case, variants=(variant,))
            if note:
                case = attrs.evolve(case, notes=f"{case.notes} [{note}]".strip())
            text = json.dumps(dump_case(case), indent=1) + "\n"
        except Exception:  # noqa: BLE001 - a hook with code has no JSON form: copy its module
            if origin and origin.endswith(".py"):
                path = self._path(stem, ".py")
                shutil.copyfile(origin, path)
                return path
            raise
        path = self._path(stem, ".json")
        path.write_text(text, encoding="utf-8")
        return path


def _guarded_run(run_case, case, variant, engine, qemu=None) -> dict:
    try:
        if qemu and engine in qemu:  # real C: judged against the reference engine
            from conformance.qemu import gate

            return gate.run_case(case, variant, qemu[engine])
        r = run_case(case, variant, engine)
    except Exception as exc:  # noqa: BLE001 - an engine raising is a failure of the case
        return {"save": "-", "load": "-", "bytes": 0, "passed": False,
                "mismatches": [f"exception: {type(exc).__name__}: {exc}"]}
    return {"save": r.save.kind, "load": r.load.kind if r.load else "-",
            "bytes": len(r.save.data), "passed": r.passed, "mismatches": list(r.mismatches)}


def _property_points(names, variants) -> list[tuple[str, str, str]]:
    from strategies import properties

    points = []
    for name in names:
        if name == "params":  # conformance/params: swept by _params_sweep
            continue
        for variant, family in properties.PROPERTIES[name].grid():
            if not variants or variant in variants:
                points.append((name, variant, family))
    return points


def _sweep_plan(args) -> tuple[int, bool, str | None]:
    """(examples per grid point, derandomize, profile) — examples 0 means no sweep."""
    from conformance.profiles import PROFILES

    if args.profile and args.properties is not None:
        raise CampaignUsageError("--properties and --profile both set the sweep's budget: "
                                 "give one")
    if args.profile:
        prof = PROFILES[args.profile]
        return prof["examples"], prof["derandomize"], args.profile
    if args.properties is not None:
        if args.properties < 0:
            raise CampaignUsageError(f"--properties {args.properties}: must be 0 or more")
        if args.properties == 0 and args.property:
            raise CampaignUsageError("--property with --properties 0: nothing would run")
        return args.properties, False, None
    if not args.paths or args.property:
        return DEFAULT_SWEEP_EXAMPLES, False, None
    return 0, False, None


def campaign(args, *, progress: bool = True) -> dict:
    """Run everything ``args`` selects; the report document (report.json's content)."""
    from conformance.cases import CaseError, load_case_file, load_python_cases, run_case

    engines, qemu, qemu_note = _qemu_engines(args)
    files = collect(args.paths)
    examples, derandomize, profile = _sweep_plan(args)
    points: list[tuple[str, str, str]] = []
    prop_names: list[str] = []
    if examples:
        try:
            from strategies import properties
        except ImportError as exc:  # hypothesis is in the "test" extra
            raise CampaignUsageError(f"the property sweep needs hypothesis: {exc} "
                                     f"(install '.[test]', or give --properties 0)") from None
        prop_names = args.property or list(properties.PROPERTIES)
        points = _property_points(prop_names, args.variant)
        if args.property and not points and "params" not in args.property:
            raise CampaignUsageError("--property/--variant select no property grid point")
    if qemu_note:  # after every usage check: one line, then the run
        print(qemu_note, file=sys.stderr)
    report_dir = Path(args.report) if getattr(args, "report", None) else None
    writer = FailureWriter(report_dir / "failures" if report_dir else None)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    began = time.perf_counter()
    params = bool(examples) and (not args.property or "params" in args.property)
    params_rows = 0
    if params:
        from conformance.params.properties import sweep_size

        params_rows = sweep_size()
    bar = Progress(len(files) + sum(_point_runs(p, engines, qemu) for p in points)
                   + params_rows, enabled=progress)
    rows: list[dict] = []
    errors: list[dict] = []
    ran_any = False
    try:
        for path, group in files:
            try:
                cases = load_python_cases(path) if path.suffix == ".py" else [
                    load_case_file(path)]
                if not cases:
                    raise CaseError("$", "the module defines no CASES", str(path))
            except CaseError as exc:
                errors.append({"id": f"error:{path}", "group": group, "file": str(path),
                               "message": str(exc), "reproducer": str(path),
                               "replay": f"vmstate-conformance run {path}"})
                bar.step(str(path), group)
                continue
            except Exception as exc:  # noqa: BLE001 - a .py case module that raises
                errors.append({"id": f"error:{path}", "group": group, "file": str(path),
                               "message": f"{path}: {type(exc).__name__}: {exc}",
                               "reproducer": str(path),
                               "replay": f"vmstate-conformance run {path}"})
                bar.step(str(path), group)
                continue
            for case in cases:
                variants = [v for v in case.variants if not args.variant or v in args.variant]
                for variant in variants:
                    for engine in engines:
                        if engine in qemu and qemu[engine].variant != variant:
                            continue  # a build runs its own variant
                        ran_any = True
                        row = {"id": f"{path}::{case.name}[{variant}-{engine}]",
                               "group": group, "file": str(path), "case": case.name,
                               "variant": variant, "engine": engine}
                        row.update(_guarded_run(run_case, case, variant, engine, qemu))
                        row["reproducer"] = None
                        row["replay"] = None
                        if not row["passed"]:
                            _reproduce(row, writer, case, path, report_dir)
                        rows.append(row)
            bar.step(str(path), group)
        if files and not ran_any and not errors:
            raise CampaignUsageError("--variant selects no variant of the selected cases "
                                     f"({', '.join(args.variant or [])})")
        prop_rows = _sweep(points, engines, examples, derandomize, writer, report_dir, bar,
                           qemu, _qemu_examples(args, examples, profile))
        if params:
            prop_rows += _params_sweep(examples, bar)
    finally:
        bar.close()
    doc = _document(args, engines, examples, profile, prop_names, rows, prop_rows, errors,
                    started_at, time.perf_counter() - began)
    if qemu:
        doc["qemu"] = {label: {"key": i.key, "qemu_version": i.qemu_version,
                               "variant": i.variant, "path": i.path}
                       for label, i in qemu.items()}
        doc["sweep"]["qemu_examples"] = _qemu_examples(args, examples, profile)
    return doc


def _qemu_engines(args) -> tuple[list[str], dict, str | None]:
    """(engine labels, {qemu label: BuildInfo}, the no-argument run's one line about the
    qemu engine, for stderr) for ``args`` (conformance.qemu.selection)."""
    from conformance.qemu import selection

    try:
        engines, builds, note = selection.campaign_engines(args)
    except selection.SelectionError as exc:
        raise CampaignUsageError(str(exc)) from None
    return engines, {selection.label(b): b for b in builds}, note


def _qemu_examples(args, examples: int, profile: str | None) -> int:
    """The qemu engine's examples per grid point: what was asked when it was asked for,
    else (the no-argument run) the profile's small ``qemu_examples`` budget."""
    from conformance.profiles import PROFILES, QEMU_EXAMPLES

    if getattr(args, "engine", None) or getattr(args, "qemu_build", None):
        return examples
    return min(examples, PROFILES[profile]["qemu_examples"] if profile else QEMU_EXAMPLES)


def _point_runs(point, engines, qemu) -> int:
    """How many engine runs a grid point makes (a qemu build: its variant's streams)."""
    if not qemu:
        return len(engines)
    from conformance.qemu.gate import applies

    return sum(1 for e in engines
               if e not in qemu or applies(point[0], qemu[e], point[1]))


def _rel(path: Path, report_dir: Path | None) -> str:
    if report_dir is not None:
        try:
            return path.relative_to(report_dir).as_posix()
        except ValueError:
            pass
    return str(path)


def _reproduce(row: dict, writer: FailureWriter, case, path: Path, report_dir) -> None:
    replay_args = f"--engine {row['engine']} --variant {row['variant']}"
    if report_dir is None:
        row["reproducer"] = str(path)
        row["replay"] = f"vmstate-conformance run {path} {replay_args}"
        return
    try:
        out = writer.write_case(f"{Path(path).stem}-{row['variant']}-{row['engine']}", case,
                                row["variant"], case.origin or str(path),
                                f"failed on engine {row['engine']}, from {path}")
    except Exception as exc:  # noqa: BLE001 - keep the failure, say why there is no file
        row["reproducer"] = str(path)
        row["replay"] = f"vmstate-conformance run {path} {replay_args}"
        row["mismatches"].append(f"(no failure file: {type(exc).__name__}: {exc})")
        return
    row["reproducer"] = _rel(out, report_dir)
    row["replay"] = f"vmstate-conformance run {out} {replay_args}"


def _sweep(points, engines, examples, derandomize, writer, report_dir, bar, qemu=None,
           qemu_examples=0) -> list[dict]:
    if not points:
        return []
    from strategies import properties

    qemu = qemu or {}
    rows = []
    for name, variant, family in points:
        for engine in engines:
            began = time.perf_counter()
            n = examples
            if engine in qemu:  # the property's differential form: reference vs real C
                from conformance.qemu import gate

                if not qemu_examples or not gate.applies(name, qemu[engine], variant):
                    continue
                n = qemu_examples
                r = gate.run_point(name, qemu[engine], variant, family, max_examples=n,
                                   derandomize=derandomize)
            else:
                r = properties.run_point(name, engine, variant, family, max_examples=n,
                                         derandomize=derandomize)
            row = {"id": f"{name}[{engine}-{variant}-{family}]", "property": name,
                   "engine": engine, "variant": variant, "family": family,
                   "examples": n, "passed": r.passed, "message": r.message,
                   "reproducer": None, "replay": None,
                   "seconds": round(time.perf_counter() - began, 3)}
            if not r.passed and r.case is not None:
                try:
                    out = writer.write_case(f"{name}-{engine}-{variant}-{family}", r.case,
                                            None, None, f"shrunk example of {row['id']}")
                    case_variant = r.case.variants[0]
                    row["reproducer"] = _rel(out, report_dir)
                    row["replay"] = (f"vmstate-conformance run {out} --engine {engine} "
                                     f"--variant {case_variant}")
                except Exception as exc:  # noqa: BLE001
                    row["message"] += f"\n(no failure file: {type(exc).__name__}: {exc})"
            rows.append(row)
            bar.step(f"{name} {engine} {variant}/{family}", f"property {name} on {engine}")
    return rows


def _params_sweep(examples: int, bar) -> list[dict]:
    """The migration-parameters properties (the migrate-set-parameters series, conformance/params): one row per
    property and design.  A row passes when it behaves as the model says it must: the
    race and the v1 leak *are* found where the design has them (``expected`` fail)."""
    from conformance.params.properties import sweep

    rows = []
    for r in sweep(examples):
        passed = r["status"] == r["expected"]
        what = "found as expected" if r["expected"] == "fail" else "holds"
        rows.append({"id": f"{r['property']}[{r['design']}]", "property": r["property"],
                     "engine": "reference", "variant": r["design"], "family": "params",
                     "examples": r["examples"], "passed": passed,
                     "message": (r["failure"] or "") if not passed else what,
                     "reproducer": None, "replay": None, "seconds": r["seconds"]})
        bar.step(f"{r['property']} {r['design']}", "params properties")
    return rows


def _matrix(rows: list[dict]) -> list[dict]:
    cells: dict[tuple, dict] = {}
    for r in rows:
        key = (r["group"], r["variant"], r["engine"])
        cell = cells.setdefault(key, {"group": key[0], "variant": key[1], "engine": key[2],
                                      "passed": 0, "failed": 0})
        if r.get("skipped"):  # the qemu engine cannot express it: neither passed nor failed
            cell["skipped"] = cell.get("skipped", 0) + 1
            continue
        cell["passed" if r["passed"] else "failed"] += 1
    return list(cells.values())


def _prop_matrix(rows: list[dict]) -> list[dict]:
    cells: dict[tuple, dict] = {}
    for r in rows:
        key = (r["property"], r["engine"])
        cell = cells.setdefault(key, {"property": key[0], "engine": key[1], "passed": 0,
                                      "failed": 0})
        cell["passed" if r["passed"] else "failed"] += 1
    return list(cells.values())


def _document(args, engines, examples, profile, prop_names, rows, prop_rows, errors,
              started_at, seconds) -> dict:
    from conformance.model.variants import VARIANTS

    try:
        from importlib.metadata import version

        tool_version = version("vmstate-conformance")
    except Exception:  # noqa: BLE001 - running from a source tree
        tool_version = "unknown"
    seen = {r["variant"] for r in rows}
    failures = []
    for e in errors:
        failures.append({"kind": "error", "id": e["id"], "summary": e["message"],
                         "detail": e["message"], "reproducer": e["reproducer"],
                         "replay": e["replay"]})
    for r in rows:
        if not r["passed"]:
            failures.append({"kind": "case", "id": r["id"],
                             "summary": f"{r['case']} [{r['variant']} / {r['engine']}]: "
                                        f"{r['mismatches'][0] if r['mismatches'] else 'failed'}",
                             "detail": "\n".join(r["mismatches"]),
                             "reproducer": r["reproducer"], "replay": r["replay"]})
    for r in prop_rows:
        if not r["passed"]:
            first = (r["message"] or "").splitlines()[0] if r["message"] else "failed"
            failures.append({"kind": "property", "id": r["id"],
                             "summary": f"{r['property']} [{r['engine']} / {r['variant']} / "
                                        f"{r['family']}]: {first}",
                             "detail": r["message"] or "", "reproducer": r["reproducer"],
                             "replay": r["replay"]})
    skipped = sum(1 for r in rows if r.get("skipped"))
    passed = sum(r["passed"] for r in rows) + sum(r["passed"] for r in prop_rows) - skipped
    return {
        "format": REPORT_FORMAT,
        "tool": {"name": "vmstate-conformance", "version": tool_version},
        "started": started_at,
        "seconds": round(seconds, 3),
        "command": ["vmstate-conformance", "run", *getattr(args, "argv", [])],
        "engines": list(engines),
        "variants": [v for v in VARIANTS if v in seen],
        "sweep": {"examples": examples, "profile": profile, "properties": prop_names},
        "totals": {"passed": passed, "failed": len(failures),
                   "case_runs": len(rows), "property_points": len(prop_rows),
                   "errors": len(errors), "skipped": skipped},
        "matrix": _matrix(rows),
        "property_matrix": _prop_matrix(prop_rows),
        "failures": failures,
        "cases": rows,
        "properties": prop_rows,
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------
# Text output


def _text_table(headers: list[str], body: list[list[str]], out, right: int = 1) -> None:
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i < right else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    print(fmt(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for b in body:
        print(fmt(b), file=out)


def print_text(doc: dict, out, verbose: bool = False) -> None:
    from conformance.errors import printable  # case names and messages come from input

    if verbose and doc["cases"]:
        _text_table(["case", "variant", "engine", "save", "load", "bytes", "result"],
                    [[printable(r["case"]), r["variant"], r["engine"], r["save"], r["load"],
                      str(r["bytes"]), "pass" if r["passed"] else "FAIL"]
                     for r in doc["cases"]], out, right=99)
        print(file=out)
    if doc["matrix"]:
        headers, body = matrix_table(doc)
        _text_table(headers, body, out)
    if doc["property_matrix"]:
        print(file=out)
        engines = doc["engines"]
        cells = {(c["property"], c["engine"]): c for c in doc["property_matrix"]}
        body = []
        for name in dict.fromkeys(c["property"] for c in doc["property_matrix"]):
            line = [name]
            for e in engines:
                c = cells.get((name, e))
                total = c["passed"] + c["failed"] if c else 0
                line.append("-" if not c else f"{c['passed']}/{total}"
                            + (" FAIL" if c["failed"] else ""))
            body.append(line)
        sweep = doc["sweep"]
        print(f"property sweep: grid points passed/total, {sweep['examples']} examples per "
              f"point" + (f" (profile {sweep['profile']})" if sweep["profile"] else ""),
              file=out)
        _text_table(["property", *engines], body, out)
    if doc["failures"]:
        print(f"\nfailures ({len(doc['failures'])}):", file=out)
        for f in doc["failures"]:
            print(f"  FAIL {printable(f['summary'])}", file=out)
            for extra in f["detail"].splitlines()[1:4]:
                print(f"       {printable(extra)}", file=out)
            if f["replay"]:
                print(f"       replay: {f['replay']}", file=out)
    t = doc["totals"]
    print(f"\n{t['passed']} passed, {t['failed']} failed"
          + (f", {t['skipped']} skipped (not expressible in QEMU's C)" if t.get("skipped")
             else ""), file=out)
    print(f"({t['case_runs']} case runs, {t['property_points']} property grid points, "
          f"engines: {', '.join(doc['engines'])}, {doc['seconds']:.2f}s)", file=out)


def run_campaign(args) -> int:
    """The ``run`` command: 0 all passed, 1 failures; usage problems raise
    :class:`CampaignUsageError` (the CLI's exit 2)."""
    as_json = getattr(args, "json", False)
    doc = campaign(args, progress=not getattr(args, "quiet", False))
    if getattr(args, "report", None):
        from conformance.report import write_reports

        write_reports(doc, Path(args.report))
    if as_json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print_text(doc, sys.stdout, verbose=getattr(args, "verbose", False))
        if getattr(args, "report", None):
            print(f"reports: {Path(args.report) / 'report.md'} (and report.json, "
                  f"report.html, junit.xml)", file=sys.stderr)
    return 1 if doc["failures"] else 0
