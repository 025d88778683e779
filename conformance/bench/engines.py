"""``vmstate-conformance bench``: the optimized engine against the reference, side by side.

Everything is measured in ONE run, interleaved: each round times every (corpus, engine,
operation) cell once, and a cell's figure is the minimum over rounds (time.perf_counter),
so the ratios hold on a noisy machine.  Ratios are computed from numbers of this run;
nothing is asserted (tests only check the report's structure).

Corpora (built with conformance/macros.py):

* ``scalar-heavy``  about 200 scalar fields in nested structs (legacy variant);
* ``array-heavy``   e1000-like: two 64 KiB buffers, a 32768-entry uint32 register
                    array, uint16 arrays (legacy variant);
* ``pointer-array`` NVMe-like: 1024 queue slots, half NULL, auto-allocating
                    (VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC, variant auto-alloc);
* ``deep-nesting``  structs nested 12 levels deep, a struct array at each level.

Baselines for the scalar-heavy layout: a hand-written ``struct``-module codec (the
practical limit in Python) and, with the ``bench`` extra, Construct in compiled mode.
"""

from __future__ import annotations

import argparse
import json
import operator
import struct
import sys
import time

from conformance.engines import optimized, reference
from conformance.model import macros as M
from conformance.model.description import Description

_SCALAR_INFOS = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                 "bool")
_CONSTRUCT_TYPES = {"uint8": "Int8ub", "uint16": "Int16ub", "uint32": "Int32ub",
                    "uint64": "Int64ub", "int8": "Int8sb", "int16": "Int16sb",
                    "int32": "Int32sb", "int64": "Int64sb", "bool": "Flag"}


# ---------------------------------------------------------------------------------------
# Corpora: (description, variant, source state, load destination)


def _value(info: str, k: int):
    if info == "bool":
        return k % 2 == 0
    width = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "uint32": 32, "int32": 32,
             "uint64": 64, "int64": 64}[info]
    value = (k * 2654435761) & ((1 << width) - 1)
    if info.startswith("int") and value >= 1 << (width - 1):
        value -= 1 << width
    return value


def _scalar_block(prefix: str, count: int, start: int):
    fields, state = [], {}
    for k in range(count):
        info = _SCALAR_INFOS[(start + k) % len(_SCALAR_INFOS)]
        name = f"{prefix}{k}"
        fields.append(M.VMSTATE_SINGLE(name, info))
        state[name] = _value(info, start + k)
    return fields, state


def scalar_heavy():
    """~200 scalars: 40 at the top, four nested structs of 40 (one nested twice)."""
    fields, state = _scalar_block("r", 40, 0)
    inner_fields, inner_state = _scalar_block("x", 20, 500)
    inner = Description("dev/regs/inner", 1, 1, fields=inner_fields)
    for s in range(4):
        sub_fields, sub_state = _scalar_block(f"s{s}_", 20 if s == 0 else 40, 100 * (s + 1))
        if s == 0:
            sub_fields.append(M.VMSTATE_STRUCT("inner", inner))
            sub_state["inner"] = dict(inner_state)
        sub = Description(f"dev/bank{s}", 1, 1, fields=sub_fields)
        fields.append(M.VMSTATE_STRUCT(f"bank{s}", sub))
        state[f"bank{s}"] = sub_state
    desc = Description("scalar-dev", 3, 1, fields=fields)
    return desc, "legacy", state, state


def array_heavy():
    """e1000-like: MAC registers, EEPROM, PHY registers, TX/RX packet buffers."""
    desc = Description("e1000-like", 2, 1, fields=[
        M.VMSTATE_UINT32("rxbuf_size"),
        M.VMSTATE_UINT32("rxbuf_min_shift"),
        M.VMSTATE_UINT16_ARRAY("eeprom_data", 64),
        M.VMSTATE_UINT16_ARRAY("phy_reg", 32),
        M.VMSTATE_UINT32_ARRAY("mac_reg", 0x8000),
        M.VMSTATE_BUFFER("tx_data", 0x10000),
        M.VMSTATE_BUFFER("rx_data", 0x10000),
        M.VMSTATE_UINT8_ARRAY("tx_header", 256),
        M.VMSTATE_UINT32("tx_tso_frames"),
    ])
    state = {
        "rxbuf_size": 2048, "rxbuf_min_shift": 1,
        "eeprom_data": [(k * 7919) & 0xFFFF for k in range(64)],
        "phy_reg": [(k * 31) & 0xFFFF for k in range(32)],
        "mac_reg": [(k * 2654435761) & 0xFFFFFFFF for k in range(0x8000)],
        "tx_data": bytes((k * 13) & 0xFF for k in range(0x10000)),
        "rx_data": bytes((k * 17) & 0xFF for k in range(0x10000)),
        "tx_header": [k & 0xFF for k in range(256)],
        "tx_tso_frames": 12,
    }
    return desc, "legacy", state, state


def pointer_array():
    """NVMe-like: 1024 auto-allocated queue slots, every other one NULL."""
    queue = Description("nvme-queue", 1, 1, fields=[
        M.VMSTATE_UINT16("sqid"), M.VMSTATE_UINT16("cqid"), M.VMSTATE_UINT32("head"),
        M.VMSTATE_UINT32("tail"), M.VMSTATE_UINT32("size"), M.VMSTATE_UINT64("dma_addr"),
        M.VMSTATE_BOOL("phase"), M.VMSTATE_UINT8("prio"),
    ])
    desc = Description("nvme-like", 1, 1, fields=[
        M.VMSTATE_UINT32("num_queues"),
        M.VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC("queues", "num_queues", queue),
    ])
    slots = []
    for k in range(1024):
        slots.append(None if k % 2 else {
            "sqid": k, "cqid": k, "head": k * 3, "tail": k * 5, "size": 1024,
            "dma_addr": 0x1000_0000 + k * 0x1000, "phase": bool(k & 2), "prio": k & 3})
    state = {"num_queues": 1024, "queues": slots}
    dest = {"num_queues": 1024, "queues": [None] * 1024}  # QEMU 11 asserts NULL slots
    return desc, "auto-alloc", state, dest


def deep_nesting(depth: int = 12):
    """Each level: a few scalars, a 2-element struct array, then the next level."""
    leaf = Description("leaf", 1, 1, fields=[M.VMSTATE_UINT32("a"), M.VMSTATE_UINT16("b")])
    desc = Description(f"level{depth}", 1, 1, fields=[M.VMSTATE_UINT64("v"),
                                                     M.VMSTATE_STRUCT_ARRAY("leaves", 2, leaf)])
    leaf_state = [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    state = {"v": depth, "leaves": leaf_state}
    for level in range(depth - 1, 0, -1):
        desc = Description(f"level{level}", 1, 1, fields=[
            M.VMSTATE_UINT32("id"), M.VMSTATE_INT16("delta"), M.VMSTATE_BOOL("on"),
            M.VMSTATE_STRUCT_ARRAY("leaves", 2, leaf),
            M.VMSTATE_STRUCT("child", desc)])
        state = {"id": level, "delta": -level, "on": level % 2 == 0,
                 "leaves": [dict(x) for x in leaf_state], "child": state}
    return desc, "legacy", state, state


CORPORA = {
    "scalar-heavy": scalar_heavy,
    "array-heavy": array_heavy,
    "pointer-array": pointer_array,
    "deep-nesting": deep_nesting,
}


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


# ---------------------------------------------------------------------------------------
# CLI


def _run_args(args) -> int:
    if args.dump_plan:
        if args.dump_plan not in CORPORA:
            print(f"vmstate-conformance: unknown corpus {args.dump_plan!r} "
                  f"(known: {', '.join(CORPORA)})", file=sys.stderr)
            return 2
        desc, variant, _, _ = CORPORA[args.dump_plan]()
        sys.stdout.write(optimized.dump_source(desc, variant))
        return 0
    if args.analyze_migration is not None:
        try:
            from conformance.bench import migration as migbench
        except ImportError:
            print("vmstate-conformance: --analyze-migration is unavailable "
                  "(conformance.bench.migration is not installed)", file=sys.stderr)
            return 1
        files = args.migration_file or []
        if not files:
            from pathlib import Path

            data = Path(__file__).resolve().parent.parent.parent / "tests" / "data"
            files = [str(p) for p in sorted(data.glob("**/*.mig"))[:1]] if data.is_dir() else []
        if not files:
            print("vmstate-conformance: --analyze-migration needs --migration-file FILE",
                  file=sys.stderr)
            return 2
        try:
            return migbench.run(files, analyze_migration=args.analyze_migration,
                                out=sys.stdout, as_json=args.json)
        except Exception as exc:  # noqa: BLE001 - one line, no traceback
            print(f"vmstate-conformance: bench --analyze-migration: {exc}", file=sys.stderr)
            return 1
    report = measure(args.corpus, rounds=args.rounds, quick=args.quick)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(report)
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--quick", action="store_true", help="a fast smoke run (tiny budgets)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (min is kept)")
    p.add_argument("--corpus", action="append", choices=list(CORPORA),
                   help="restrict to these corpora (default: all)")
    p.add_argument("--dump-plan", metavar="CORPUS",
                   help="print the generated source of a corpus's plan and exit")
    p.add_argument("--analyze-migration", metavar="PATH",
                   help="benchmark decoding migration files against QEMU's "
                        "analyze-migration.py at PATH (via conformance.bench.migration)")
    p.add_argument("--migration-file", action="append", metavar="FILE",
                   help="migration file for --analyze-migration (default: the first tests/data/**/*.mig)")
    p.set_defaults(func=_run_args)


def add_subcommands(subparsers) -> None:
    """The ``bench`` command (its parser lives in the light conformance.bench.cli)."""
    from conformance.bench import cli

    cli.add_subcommands(subparsers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vmstate-conformance bench",
                                     description=__doc__.splitlines()[0])
    _configure(parser)
    args = parser.parse_args(argv)
    return _run_args(args)


if __name__ == "__main__":
    sys.exit(main())
