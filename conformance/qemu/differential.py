"""The differential sweep: reference ≡ qemu engine over the Hypothesis strategies.

One example = one drawn description and source state; for it the sweep compares the save,
the load of the saved stream into a drawn destination, a truncation and one mutation
(``strategies.mutated_streams``'s kinds).  Every comparison lands in a bucket: ``agree``,
a disagreement class (conformance.qemu.compare.CLASSES), ``not-expressible`` (counted
skips) or ``model-undefined`` / ``model-limit`` (not compared).  The smallest example of
each class is kept as its reproducer.

    python -m conformance.qemu.differential --variant qemu-7.2 -n 2000
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import attrs
from hypothesis import HealthCheck, Phase, given, settings
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
          expressible_only: bool = True) -> Report:
    """Run ``n`` examples; returns the Report (never raises on a disagreement).

    ``expressible_only`` filters out descriptions using infos the build lacks (timer,
    float64, capability, GByteArray: not in QEMU's migration objects) before drawing
    the rest, so the examples are spent on what C can run; ``Report.filtered`` counts
    the descriptions the filter dropped."""
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

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def body(data):
        report.examples += 1
        desc = data.draw(descriptions(variant, families=families).filter(keep),
                         label="description")
        src = data.draw(states(desc), label="source")
        ref_s = reference.save(desc, src, variant)
        q_s = eng.save(desc, src, variant)
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
    ref_s = reference.save(desc, case.source, variant)
    q_s = eng.save(desc, case.source, variant)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.qemu.differential")
    ap.add_argument("--variant", default="qemu-7.2")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--corpus", action="store_true",
                    help="run the case corpora (golden/cases, tests/cases) instead")
    args = ap.parse_args(argv)
    if args.corpus:
        rep = corpus(args.variant, Path(__file__).resolve().parents[2])
    else:
        rep = sweep(args.variant, args.n)
    out = rep.to_json()
    text = json.dumps(out, indent=1, default=str)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    summary = {k: v for k, v in out.items() if k != "reproducers"}
    print(json.dumps(summary, indent=1, default=str))
    for key, r in out["reproducers"].items():
        print(f"--- {key}: {CLASSES[key.split(':')[0]].title}")
        print("   ", r["op"], "stream", r["stream"])
        for d in r["diffs"][:4]:
            print("    ", d[:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())
