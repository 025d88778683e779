"""``vmstate-conformance bench``: the optimized engine against the reference, side by side.

Everything is measured in ONE run, interleaved: each round times every (corpus, engine,
operation) cell once, and a cell's figure is the minimum over rounds (time.perf_counter),
so the ratios hold on a noisy machine.  Ratios are computed from numbers of this run;
nothing is asserted (tests only check the report's structure).

The corpora are conformance/bench/corpora.py's.

Baselines for the scalar-heavy layout: a hand-written ``struct``-module codec (the
practical limit in Python) and, with the ``bench`` extra, Construct in compiled mode.
"""

from __future__ import annotations

import json
import operator
import struct
import sys
import time

from conformance.bench.corpora import CORPORA, deep_nesting
from conformance.engines import optimized, reference
from conformance.model.description import Description

_CONSTRUCT_TYPES = {"uint8": "Int8ub", "uint16": "Int16ub", "uint32": "Int32ub",
                    "uint64": "Int64ub", "int8": "Int8sb", "int16": "Int16sb",
                    "int32": "Int32sb", "int64": "Int64sb", "bool": "Flag"}


# ---------------------------------------------------------------------------------------
# Baselines for the scalar-heavy layout


def _flat_layout(desc: Description):
    """[(path-of-members, [(name, info)...])] per struct, in wire order (no gaps)."""
    layout = []

    def visit(d, path):
        block = []
        for field in d.fields:
            if field.vmsd is not None:
                layout.append((path, block))
                block = []
                visit(field.vmsd, path + (field.member,))
            else:
                block.append((field.member, field.info))
        layout.append((path, block))

    visit(desc, ())
    return [(p, b) for p, b in layout if b]


class StructBaseline:
    """Hand-written ``struct`` codec: one Struct for the whole layout, itemgetters to
    gather, zip to scatter.  No checks, no copies beyond the dicts it builds: the
    practical floor for Python."""

    def __init__(self, desc: Description) -> None:
        self.layout = _flat_layout(desc)
        codes = {"uint8": "B", "uint16": "H", "uint32": "I", "uint64": "Q", "int8": "b",
                 "int16": "h", "int32": "i", "int64": "q", "bool": "?"}
        self.struct = struct.Struct(">" + "".join(codes[i] for _, b in self.layout
                                                   for _, i in b))
        self.getters = [(path, operator.itemgetter(*[n for n, _ in b]), len(b))
                        for path, b in self.layout]
        self.names = [(path, tuple(n for n, _ in b)) for path, b in self.layout]

    def save(self, state) -> bytes:
        values = []
        for path, get, count in self.getters:
            obj = state
            for key in path:
                obj = obj[key]
            got = get(obj)
            values.extend(got if count > 1 else (got,))
        return self.struct.pack(*values)

    def load(self, data: bytes) -> dict:
        values = self.struct.unpack_from(data)
        root: dict = {}
        k = 0
        for path, names in self.names:
            obj = root
            for key in path:
                obj = obj.setdefault(key, {})
            obj.update(zip(names, values[k:k + len(names)], strict=False))
            k += len(names)
        return root


def construct_codec(desc: Description):
    """The scalar-heavy layout in Construct, compiled (None without the bench extra)."""
    try:
        import construct as c
    except ImportError:
        return None

    def build(d):
        parts = []
        for field in d.fields:
            if field.vmsd is not None:
                parts.append(field.member / build(field.vmsd))
            else:
                parts.append(field.member / getattr(c, _CONSTRUCT_TYPES[field.info]))
        return c.Struct(*parts)

    return build(desc).compile()


# ---------------------------------------------------------------------------------------
# Measurement


def _time(fn, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def _inner_for(fn, budget: float) -> int:
    """How many calls fit in ``budget`` seconds (at least 1)."""
    once = _time(fn, 1)
    return max(1, min(10000, int(budget / max(once, 1e-7))))


def _compile_cost(builder, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        desc, variant, _, _ = builder()  # fresh objects: nothing cached
        start = time.perf_counter()
        plan = optimized.compile_plan(desc, variant)
        plan.load_fast(desc.version_id)
        best = min(best, time.perf_counter() - start)
    return best


def measure(corpora=None, rounds: int = 7, budget: float = 0.02, quick: bool = False) -> dict:
    """Run the benchmark; returns the report dict (``--json`` prints it)."""
    if quick:
        rounds, budget = 2, 0.002
    names = list(corpora or CORPORA)
    cells = {}  # (corpus, engine, op) -> callable
    info = {}
    for name in names:
        desc, variant, state, dest = CORPORA[name]() if name != "deep-nesting" or not quick \
            else deep_nesting(4)
        ref_saved = reference.save(desc, state, variant)
        opt_saved = optimized.save(desc, state, variant)
        if not ref_saved.ok or ref_saved != opt_saved:
            raise RuntimeError(f"{name}: the engines disagree on the save")
        # a byte follows the section in a real stream (QEMU_VM_SECTION_FOOTER / EOF), so
        # the final subsection peek does not hit the end
        data = ref_saved.data + b"\x00"
        if reference.load(desc, data, dest, variant) != optimized.load(desc, data, dest,
                                                                       variant):
            raise RuntimeError(f"{name}: the engines disagree on the load")
        info[name] = {"variant": variant, "stream_bytes": len(ref_saved.data),
                      "fields": sum(1 for _ in desc.all_fields())}
        for engine in (reference, optimized):
            cells[(name, engine.NAME, "save")] = (
                lambda e=engine, d=desc, s=state, v=variant: e.save(d, s, v))
            cells[(name, engine.NAME, "load")] = (
                lambda e=engine, d=desc, b=data, t=dest, v=variant: e.load(d, b, t, v))
        if name == "scalar-heavy":
            base = StructBaseline(desc)
            if base.save(state) != ref_saved.data:
                raise RuntimeError("the struct baseline does not match the stream")
            cells[(name, "struct-baseline", "save")] = lambda b=base, s=state: b.save(s)
            cells[(name, "struct-baseline", "load")] = lambda b=base, d=data: b.load(d)
            codec = construct_codec(desc)
            if codec is not None:
                if codec.build(state) != ref_saved.data:
                    raise RuntimeError("the Construct layout does not match the stream")
                cells[(name, "construct-compiled", "save")] = lambda c=codec, s=state: c.build(s)
                cells[(name, "construct-compiled", "load")] = lambda c=codec, d=data: c.parse(d)
    inner = {key: _inner_for(fn, budget) for key, fn in cells.items()}
    best = {key: float("inf") for key in cells}
    for _ in range(rounds):  # interleaved: every cell once per round
        for key, fn in cells.items():
            best[key] = min(best[key], _time(fn, inner[key]))
    compile_s = {name: _compile_cost(CORPORA[name] if not (quick and name == "deep-nesting")
                                     else (lambda: deep_nesting(4)), 1 if quick else 3)
                 for name in names}
    report = {"python": sys.version.split()[0], "rounds": rounds, "quick": quick,
              "corpora": {}}
    for name in names:
        entry = {**info[name], "compile_ms": compile_s[name] * 1e3, "engines": {},
                 "ratios": {}}
        for (corpus, engine, op), seconds in best.items():
            if corpus == name:
                entry["engines"].setdefault(engine, {})[op + "_us"] = seconds * 1e6
        engines = entry["engines"]
        opt = engines["optimized"]
        for op in ("save", "load"):
            key = op + "_us"
            entry["ratios"][f"{op}_reference_over_optimized"] = engines["reference"][key] / opt[key]
            if "struct-baseline" in engines:
                entry["ratios"][f"{op}_optimized_over_struct"] = opt[key] / engines["struct-baseline"][key]
            if "construct-compiled" in engines:
                entry["ratios"][f"{op}_construct_over_optimized"] = (
                    engines["construct-compiled"][key] / opt[key])
        report["corpora"][name] = entry
    return report


def print_table(report: dict, out=None) -> None:
    out = sys.stdout if out is None else out
    print(f"vmstate-conformance bench (python {report['python']}, min of {report['rounds']} "
          f"interleaved rounds{', QUICK' if report['quick'] else ''})", file=out)
    print(f"{'corpus':15} {'engine':20} {'save µs':>11} {'load µs':>11}", file=out)
    for name, entry in report["corpora"].items():
        for engine, t in entry["engines"].items():
            print(f"{name:15} {engine:20} {t['save_us']:11.1f} {t['load_us']:11.1f}", file=out)
        print(f"{'':15} {'compile once (µs)':20} {entry['compile_ms'] * 1e3:11.1f} "
              f"{'':>11}  ({entry['stream_bytes']} bytes, {entry['fields']} fields, "
              f"{entry['variant']})", file=out)
    print("\nratios (from this run)", file=out)
    print(f"{'corpus':15} {'ratio':38} {'save':>8} {'load':>8}", file=out)
    labels = (("reference_over_optimized", "reference / optimized (target >= 20)"),
              ("optimized_over_struct", "optimized / struct baseline (<= 2)"),
              ("construct_over_optimized", "construct compiled / optimized (>= 3)"))
    for name, entry in report["corpora"].items():
        r = entry["ratios"]
        for key, label in labels:
            if f"save_{key}" in r:
                print(f"{name:15} {label:38} {r[f'save_{key}']:8.2f} {r[f'load_{key}']:8.2f}",
                      file=out)


def run(corpora=None, *, rounds: int = 7, quick: bool = False, as_json: bool = False,
        dump_plan: str | None = None, out=None) -> int:
    """``bench`` (the engines part): the table or the JSON report on ``out``; with
    ``dump_plan`` the generated source of that corpus's plan.  Exit status."""
    out = sys.stdout if out is None else out
    if dump_plan:
        if dump_plan not in CORPORA:
            print(f"vmstate-conformance: unknown corpus {dump_plan!r} "
                  f"(known: {', '.join(CORPORA)})", file=sys.stderr)
            return 2
        desc, variant, _, _ = CORPORA[dump_plan]()
        out.write(optimized.dump_source(desc, variant))
        return 0
    report = measure(corpora, rounds=rounds, quick=quick)
    if as_json:
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        print_table(report, out)
    return 0
