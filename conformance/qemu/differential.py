"""The differential sweep: reference ≡ qemu engine over the Hypothesis strategies.

One example = one drawn description and source state; for it the sweep compares the save,
the load of the saved stream into a drawn destination, a truncation and one mutation
(``strategies.mutated_streams``'s kinds).  Every comparison lands in a bucket: ``agree``,
a disagreement class (conformance.qemu.compare.CLASSES), ``not-expressible`` (counted
skips) or ``model-undefined`` / ``model-limit`` (not compared).  The smallest example of
each class is kept as its reproducer.  Saves are made with the vmdesc JSON on both sides,
which is compared too.

    vmstate-conformance qemu differential --variant auto-alloc -n 10000 --report out/
    vmstate-conformance qemu differential --variant legacy --corpus
    vmstate-conformance qemu differential --replay out/cases/T-load-state.json

``--report DIR`` writes ``differential.json`` (this module's Report), the run's report
formats (``report.json`` / ``.md`` / ``.html`` / ``junit.xml``, docs/reports.md: one
matrix cell per operation, one failure per disagreement signature) and
``cases/<signature>.json``: one replayable case file per disagreement (golden/FORMAT.md
format: description, source, destination, ``load_input``), which ``--replay`` runs
again under both engines.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import re
import sys
import time
from pathlib import Path

import attrs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as _seed
from hypothesis import strategies as st

from conformance.cases import CaseError, dump_description, load_case_file, load_python_cases
from conformance.engines import reference
from conformance.model.state import to_plain
from conformance.qemu import engine as qengine
from conformance.qemu import layout as _layout
from conformance.qemu.compare import CLASSES, classify, comparable, compare
from strategies import descriptions, destinations, states
from strategies.streams import MUTATIONS


@attrs.define
class Report:
    variant: str
    build: str
    examples: int = 0
    ops: collections.Counter = attrs.field(factory=collections.Counter)
    buckets: collections.Counter = attrs.field(factory=collections.Counter)
    by_op: dict = attrs.field(factory=lambda: collections.defaultdict(collections.Counter))
    skips: collections.Counter = attrs.field(factory=collections.Counter)
    reproducers: dict = attrs.field(factory=dict)
    seconds: float = 0.0
    filtered: int = 0
    cases: dict = attrs.field(factory=dict)  # corpus: bucket -> case names
    signatures: collections.Counter = attrs.field(factory=collections.Counter)

    def note(self, op: str, desc, src, dest, data, ref, q, version_id=None) -> str:
        self.ops[op] += 1
        why = comparable(ref, q)
        if why is not None:
            if why == "not-expressible":
                self.skips[q.messages[1] if len(q.messages) > 1 else q.message] += 1
            self.buckets[why] += 1
            self.by_op[op][why] += 1
            return why
        diffs = compare(ref, q)
        if not diffs:
            self.buckets["agree"] += 1
            self.by_op[op]["agree"] += 1
            return "agree"
        key = classify(desc, ref, q, diffs, data)
        self.buckets[key] += 1
        self.by_op[op][key] += 1
        size = len(data) + 4 * sum(1 for _ in desc.all_fields())
        sig = f"{key}:{op}:" + ",".join(sorted({d.aspect for d in diffs}))
        self.signatures[sig] += 1
        old = self.reproducers.get(sig)
        if old is None or size < old["size"]:
            self.reproducers[sig] = {
                "size": size, "op": op, "description": dump_description(desc),
                "vmdesc": op == "save",
                "source": to_plain(src), "destination": to_plain(dest),
                "stream": bytes(data).hex(), "version_id": version_id,
                "model": ref.to_json(), "qemu": q.to_json(),
                "diffs": [str(d) for d in diffs],
            }
        return key

    def to_json(self) -> dict:
        return {
            "variant": self.variant, "build": self.build, "examples": self.examples,
            "seconds": round(self.seconds, 1),
            "examples_per_second": round(self.examples / self.seconds, 1) if self.seconds else None,
            "filtered_descriptions": self.filtered,
            "ops": dict(self.ops), "buckets": dict(self.buckets),
            "by_op": {k: dict(v) for k, v in self.by_op.items()},
            "skips": dict(self.skips.most_common()),
            "classes": {k: CLASSES[k].title for k in {s.split(":")[0] for s in self.reproducers}},
            "signatures": dict(self.signatures.most_common()),
            "cases": {k: v for k, v in self.cases.items() if k != "agree"},
            "reproducers": self.reproducers,
        }


def sweep(variant: str, n: int = 1000, info=None, families=None,
          expressible_only: bool = True, seed: int | None = None) -> Report:
    """Run ``n`` examples; returns the Report (never raises on a disagreement).

    ``expressible_only`` filters out descriptions using infos the build lacks (timer,
    float64, capability, GByteArray: not in QEMU's migration objects) before drawing
    the rest, so the examples are spent on what C can run; ``Report.filtered`` counts
    the descriptions the filter dropped.  ``seed``: Hypothesis's seed (None: the
    derandomized default, the same examples every run)."""
    info = info or qengine.build_for_variant(variant)
    if info is None:
        raise qengine.EngineUnavailable(f"no QEMU build for variant {variant}")
    eng = qengine.for_build(info)
    report = Report(variant, info.key)
    have = eng.driver.infos

    def keep(desc) -> bool:
        if not expressible_only or not _layout.lacking_infos(desc, have):
            return True
        report.filtered += 1
        return False

    @settings(max_examples=n, database=None, deadline=None, derandomize=seed is None,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def body(data):
        report.examples += 1
        desc = data.draw(descriptions(variant, families=families).filter(keep),
                         label="description")
        src = data.draw(states(desc), label="source")
        # with the vmdesc JSON: vmsd_can_compress, the run splitting (class V) are compared
        ref_s = reference.save(desc, src, variant, vmdesc=True)
        q_s = eng.save(desc, src, variant, vmdesc=True)
        report.note("save", desc, src, None, ref_s.data, ref_s, q_s)
        if not ref_s.ok:
            return
        stream = ref_s.data
        dest = data.draw(destinations(desc, src, variant), label="destination")
        ref_l = reference.load(desc, stream, dest, variant)
        q_l = eng.load(desc, stream, dest, variant)
        report.note("load", desc, src, dest, stream, ref_l, q_l)
        cut = data.draw(st.integers(0, max(len(stream) - 1, 0)), label="truncate")
        ref_t = reference.load(desc, stream[:cut], dest, variant)
        q_t = eng.load(desc, stream[:cut], dest, variant)
        report.note("truncate", desc, src, dest, stream[:cut], ref_t, q_t)
        kind = data.draw(st.sampled_from(MUTATIONS[1:]), label="mutation")
        mutated = _mutate(data, kind, stream)
        ref_m = reference.load(desc, mutated, dest, variant)
        q_m = eng.load(desc, mutated, dest, variant)
        report.note("mutate", desc, src, dest, mutated, ref_m, q_m)

    if seed is not None:
        body = _seed(seed)(body)
    t0 = time.monotonic()
    body()
    report.seconds = time.monotonic() - t0
    return report


CORPORA = ("golden/cases", "tests/cases/qemu-unit", "tests/cases/scenarios")


def corpus_cases(root: Path, dirs=CORPORA) -> list:
    """Every case of the corpora (JSON and Python case files), sorted by path."""
    out = []
    for d in dirs:
        for path in sorted((root / d).rglob("*")):
            if path.suffix == ".json" and path.name != "manifest.json":
                try:
                    out.append(load_case_file(path))
                except CaseError:
                    continue
            elif path.suffix == ".py" and "__pycache__" not in path.parts:
                try:
                    out.extend(load_python_cases(path))
                except Exception:  # a helper module, not a case file
                    continue
    return out


def corpus(variant: str, root: Path, info=None, dirs=CORPORA) -> Report:
    """Reference ≡ qemu on every corpus case listing ``variant``: the save, the load the
    case describes (stream + trailer or load_input) and QEMU's truncation protocol
    (0 bytes, n-2, first half, second half) when the case asks for it."""
    info = info or qengine.build_for_variant(variant)
    if info is None:
        raise qengine.EngineUnavailable(f"no QEMU build for variant {variant}")
    eng = qengine.for_build(info)
    report = Report(variant, info.key)
    t0 = time.monotonic()
    for case in corpus_cases(root, dirs):
        if variant not in case.variants:
            continue
        report.examples += 1
        for op, desc, src, dest, data, ref, q in corpus_runs(case, variant, eng):
            key = report.note(op, desc, src, dest, data, ref, q, case.load_version)
            report.cases.setdefault(key, []).append(f"{case.origin or case.name} {op}")
    report.seconds = time.monotonic() - t0
    return report


def corpus_runs(case, variant: str, eng):
    """(op, desc, source, dest, data, reference outcome, qemu outcome) for one case."""
    desc = case.description
    dest = case.dest_state()
    ref_s = reference.save(desc, case.source, variant, vmdesc=True)
    q_s = eng.save(desc, case.source, variant, vmdesc=True)
    yield "save", desc, case.source, None, ref_s.data, ref_s, q_s
    if case.load_input is None and not ref_s.ok:
        return
    data = case.load_input if case.load_input is not None else ref_s.data + case.trailer
    v = case.load_version
    yield ("load", desc, case.source, dest, data,
           reference.load(desc, data, dest, variant, version_id=v),
           eng.load(desc, data, dest, variant, version_id=v))
    if case.truncation and ref_s.ok:
        wire = ref_s.data + case.trailer
        n = len(wire)
        cuts = [b""] + ([wire[:n - 2], wire[:n // 2], wire[n // 2:n // 2 + n // 2]]
                        if n > 3 else [])
        for cut in cuts:
            yield ("truncate", desc, case.source, dest, cut,
                   reference.load(desc, cut, dest, variant, version_id=v),
                   eng.load(desc, cut, dest, variant, version_id=v))


def _mutate(data, kind: str, stream: bytes) -> bytes:
    n = len(stream)
    if kind == "flip" and n:
        i = data.draw(st.integers(0, n - 1))
        return stream[:i] + bytes([stream[i] ^ data.draw(st.integers(1, 255))]) + stream[i + 1:]
    if kind == "delete" and n:
        i = data.draw(st.integers(0, n - 1))
        return stream[:i] + stream[i + data.draw(st.integers(1, min(4, n - i))):]
    extra = bytes(data.draw(st.lists(st.sampled_from((0x00, 0x05, 0x30, 0x31, 0xFF, 0x01))
                                     | st.integers(0, 255), min_size=1, max_size=4)))
    if kind == "trailing":
        return stream + extra
    i = data.draw(st.integers(0, n))
    return stream[:i] + extra + stream[i:]


# ---------------------------------------------------------------------------------------
# Outputs: case files, the run's report formats


def _slug(sig: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", sig).strip("-")[:80] or "case"


def case_file(report: Report, sig: str, r: dict) -> dict:
    """A replayable case file (golden/FORMAT.md) for one reproducer."""
    doc = {
        "format": "vmstate-conformance/case/1",
        "name": f"qemu differential {sig}",
        "notes": (f"{report.variant} on {report.build}: {r['op']} disagrees "
                  f"({'; '.join(d[:200] for d in r['diffs'][:3])}). Replay: "
                  f"vmstate-conformance qemu differential --replay FILE"),
        "variants": [report.variant],
        "description": r["description"],
        "source": r["source"],
    }
    if r["destination"] is not None:
        doc["destination"] = r["destination"]
    if r["op"] != "save":
        doc["load_input"] = r["stream"]
        if r.get("version_id") is not None:
            doc["load_version"] = r["version_id"]
    return doc


def write_cases(report: Report, directory: Path) -> dict[str, Path]:
    """cases/<signature>.json per disagreement signature; signature -> path."""
    out = {}
    if not report.reproducers:
        return out
    directory.mkdir(parents=True, exist_ok=True)
    for sig, r in sorted(report.reproducers.items()):
        path = directory / f"{_slug(sig)}.json"
        path.write_text(json.dumps(case_file(report, sig, r), indent=1) + "\n")
        out[sig] = path
    return out


COMPARED = ("agree",)
NOT_COMPARED = ("not-expressible", "model-undefined", "model-limit", "qemu-limit")


def disagreements(report: Report) -> int:
    return sum(n for k, n in report.buckets.items() if k not in COMPARED + NOT_COMPARED)


def report_doc(report: Report, cases: dict, directory: Path, command: list[str],
               started: str) -> dict:
    """The run's report document (docs/reports.md, vmstate-conformance/report/1): one
    matrix cell per operation (passed = agreements, failed = disagreements), one
    failure per disagreement signature with its case file and replay command."""
    from conformance import __version__

    group = "qemu-differential" + ("-corpus" if report.cases else "")
    matrix, rows = [], []
    for op, counts in sorted(report.by_op.items()):
        bad = sum(n for k, n in counts.items() if k not in COMPARED + NOT_COMPARED)
        matrix.append({"group": f"{group}/{op}", "variant": report.variant, "engine": "qemu",
                       "passed": counts.get("agree", 0), "failed": bad})
    failures = []
    for sig, r in sorted(report.reproducers.items()):
        path = cases.get(sig)
        rel = None
        if path is not None:
            try:
                rel = str(path.relative_to(directory))
            except ValueError:
                rel = str(path)
        replay = (f"vmstate-conformance qemu differential --replay {path}"
                  if path is not None else None)
        key = sig.split(":")[0]
        failures.append({"kind": "case", "id": sig,
                         "summary": f"{sig} x{report.signatures[sig]}: {CLASSES[key].title}"[:300],
                         "detail": "\n".join(r["diffs"]), "reproducer": rel, "replay": replay})
    # one row (a junit testcase) per operation: passed when none of its runs disagreed
    for cell in matrix:
        op = cell["group"].rsplit("/", 1)[1]
        sigs = [f for f in failures if f["id"].split(":")[1] == op]
        rows.append({"id": cell["group"], "group": cell["group"], "file": "-", "case": op,
                     "variant": report.variant, "engine": "qemu", "save": "-", "load": "-",
                     "bytes": 0, "passed": not cell["failed"],
                     "mismatches": [f["summary"] for f in sigs],
                     "reproducer": sigs[0]["reproducer"] if sigs else None,
                     "replay": sigs[0]["replay"] if sigs else None})
    passed = sum(c["passed"] for c in matrix)
    return {
        "format": "vmstate-conformance/report/1",
        "tool": {"name": "vmstate-conformance", "version": __version__},
        "started": started, "seconds": round(report.seconds, 1), "command": command,
        "engines": ["qemu"], "variants": [report.variant],
        "sweep": {"examples": report.examples, "profile": None, "properties": []},
        "totals": {"passed": passed, "failed": len(failures), "case_runs": passed
                   + disagreements(report), "property_points": 0, "errors": 0},
        "matrix": matrix, "property_matrix": [], "failures": failures, "cases": rows,
        "properties": [], "errors": [],
        "differential": {k: v for k, v in report.to_json().items() if k != "reproducers"},
    }


def write_outputs(report: Report, directory: Path, command: list[str], started: str) -> dict:
    from conformance.report import write_reports

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "differential.json").write_text(
        json.dumps(report.to_json(), indent=1, default=str) + "\n")
    cases = write_cases(report, directory / "cases")
    doc = report_doc(report, cases, directory, command, started)
    write_reports(doc, directory)
    return doc


def replay(path: Path, variant: str | None = None) -> Report:
    """Run one case file (e.g. a differential's cases/X.json) under reference and qemu."""
    case = load_case_file(path)  # a CaseError names the file and the JSON path
    v = variant or case.variants[0]
    info = qengine.build_for_variant(v)
    if info is None:
        raise qengine.EngineUnavailable(f"no QEMU build for variant {v}")
    eng = qengine.for_build(info)
    report = Report(v, info.key)
    t0 = time.monotonic()
    report.examples = 1
    for op, desc, src, dest, data, ref, q in corpus_runs(case, v, eng):
        key = report.note(op, desc, src, dest, data, ref, q, case.load_version)
        report.cases.setdefault(key, []).append(f"{path} {op}")
    report.seconds = time.monotonic() - t0
    return report


def summary_lines(report: Report) -> list[str]:
    """A short text summary: buckets per operation, then one line per signature."""
    out = [f"qemu differential: variant {report.variant}, build {report.build}: "
           f"{report.examples} examples, {sum(report.ops.values())} operations, "
           f"{report.seconds:.1f} s"
           + (f", {report.filtered} descriptions filtered (infos the build lacks)"
              if report.filtered else "")]
    keys = ["agree"] + sorted(k for k in report.buckets if k not in COMPARED + NOT_COMPARED) \
        + [k for k in NOT_COMPARED if k in report.buckets]
    ops = sorted(report.by_op)
    width = max([len(k) for k in keys] + [6])
    out.append("  " + "bucket".ljust(width) + "".join(f"{op:>10}" for op in ops) + f"{'total':>10}")
    for k in keys:
        out.append("  " + k.ljust(width) + "".join(f"{report.by_op[op].get(k, 0):>10}"
                                                   for op in ops)
                   + f"{report.buckets.get(k, 0):>10}")
    n = disagreements(report)
    out.append(f"disagreements: {n}" + ("" if n else " (none)"))
    for sig, count in report.signatures.most_common():
        r = report.reproducers[sig]
        out.append(f"  {sig} x{count}: {CLASSES[sig.split(':')[0]].title[:90]}")
        out.append(f"    {r['op']} stream {r['stream'][:80]}")
        for d in r["diffs"][:3]:
            out.append(f"    {d[:200]}")
    return out


def run_command(args) -> int:
    """``vmstate-conformance qemu differential``: 0 no disagreement, 1 some (or no build)."""
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
        if args.replay:
            rep = replay(Path(args.replay), args.variant)
        elif args.corpus:
            rep = corpus(args.variant or "legacy", Path(__file__).resolve().parents[2])
        else:
            rep = sweep(args.variant or "legacy", args.n, seed=args.seed)
    except qengine.EngineUnavailable as exc:
        print(f"vmstate-conformance qemu differential: {exc} (see `vmstate-conformance qemu "
              "build --help`)", file=sys.stderr)
        return 1
    except CaseError as exc:
        print(f"vmstate-conformance qemu differential: {exc}", file=sys.stderr)
        return 1
    command = ["vmstate-conformance", "qemu", "differential", *(args.argv or [])]
    if args.report:
        write_outputs(rep, Path(args.report), command, started)
    if args.json:
        print(json.dumps(rep.to_json(), indent=1, default=str))
    else:
        print("\n".join(summary_lines(rep)))
        if args.report:
            print(f"reports: {args.report}/report.{{json,md,html}}, junit.xml, "
                  "differential.json" + (", cases/" if rep.reproducers else ""))
    return 1 if disagreements(rep) else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", choices=("qemu-7.2", "legacy", "auto-alloc"),
                   help="the variant, run on its cached build (qemu-7.2: a 7.2 build, legacy: "
                        "10.x, auto-alloc: QEMU master, `qemu build --overlay` or --source a "
                        "master checkout) (default: legacy; --replay: the case's first)")
    p.add_argument("-n", type=int, default=500, metavar="N",
                   help="generated examples (each: a save with vmdesc, the load of the saved "
                        "stream, a truncation and a mutation) (default: 500)")
    p.add_argument("--seed", type=int, metavar="S",
                   help="Hypothesis seed (default: none, the derandomized examples: the "
                        "same every run)")
    p.add_argument("--report", metavar="DIR",
                   help="write differential.json, report.{json,md,html}, junit.xml and "
                        "cases/<signature>.json (one replayable case per disagreement) "
                        "(default: none)")
    p.add_argument("--json", action="store_true",
                   help="print the full JSON report instead of the summary (default: the "
                        "summary)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--corpus", action="store_true",
                   help="the case corpora (golden/cases, tests/cases) instead of generated "
                        "examples (default: generated examples)")
    g.add_argument("--replay", metavar="CASE",
                   help="run one case file (e.g. a cases/X.json of a --report) under both "
                        "engines (default: none)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.qemu.differential",
                                 description="reference engine vs QEMU's own C")
    add_arguments(ap)
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.n < 1:
        ap.error("-n must be at least 1")
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
