"""The ``bench`` command's parser, light: building it imports no engine and no
benchmark; the command function imports the one it runs (bench/engines.py,
bench/startup.py, bench/migration.py).  The corpus names are bench/corpora.py's."""

from __future__ import annotations

import sys

from conformance.bench.corpora import CORPORA


def _usage(message: str) -> int:
    print(f"vmstate-conformance: bench: {message}", file=sys.stderr)
    return 2


def cmd_bench(args) -> int:
    if args.startup:
        others = [o for o, v in (("--corpus", args.corpus), ("--dump-plan", args.dump_plan),
                                 ("--analyze-migration", args.analyze_migration),
                                 ("--migration-file", args.migration_file),
                                 ("--ram-heavy", args.ram_heavy),
                                 ("--many-devices", args.many_devices),
                                 ("--quick", args.quick), ("--qemu", args.qemu)) if v]
        if others:
            return _usage(f"--startup measures start-up only: {others[0]} does not apply")
        from conformance.bench import startup

        return startup.run(args.rounds, args.json)
    if args.qemu or args.qemu_build:  # bench/qemu.py: real C beside the reference engine
        others = [o for o, v in (("--dump-plan", args.dump_plan),
                                 ("--analyze-migration", args.analyze_migration),
                                 ("--ram-heavy", args.ram_heavy),
                                 ("--many-devices", args.many_devices)) if v]
        if others:
            return _usage(f"--qemu measures the qemu engine: {others[0]} does not apply")
        from conformance.bench import qemu as qbench

        return qbench.run(args)
    made = args.ram_heavy or args.many_devices
    if args.migration_file and args.analyze_migration is None:
        return _usage("--migration-file needs --analyze-migration")
    if args.analyze_migration is not None or made:
        import tempfile
        from pathlib import Path

        from conformance.bench import migration as migbench

        try:
            script = migbench.locate_script(args.analyze_migration or "auto")
            files = args.migration_file or ([] if made else [str(p) for p in migbench.default_streams()])
            if not files and not made:
                return _usage("no migration file: give --migration-file FILE")
            with tempfile.TemporaryDirectory(prefix="vmstate-bench-streams-") as tmp:
                if made:
                    if not args.migration_file:  # every stream of tests/data, and the made ones
                        files = [str(p) for p in migbench.default_streams()]
                    files += [str(p) for p in migbench.make_qemu_streams(Path(tmp), args.ram_heavy,
                                                                         args.many_devices)]
                return migbench.run(files, analyze_migration=str(script), repeat=args.rounds,
                                    out=sys.stdout, as_json=args.json,
                                    skip_undecodable=not args.migration_file)
        except migbench.BenchError as exc:
            print(f"vmstate-conformance: bench: {exc}", file=sys.stderr)
            return 1
    from conformance.bench import engines

    return engines.run(args.corpus, rounds=args.rounds, quick=args.quick, as_json=args.json,
                       dump_plan=args.dump_plan)


def configure(p) -> None:
    p.add_argument("--startup", action="store_true",
                   help="start-up, whole process: python3 -c pass vs vmstate-conformance "
                        "--help (and others), interleaved rounds, ratios")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--quick", action="store_true", help="engines: a fast smoke run (tiny budgets)")
    p.add_argument("--rounds", type=int, default=7,
                   help="interleaved rounds; the minimum is kept")
    p.add_argument("--corpus", action="append", choices=list(CORPORA),
                   help="engines: restrict to these corpora (default: all)")
    p.add_argument("--dump-plan", metavar="CORPUS",
                   help="print the generated source of a corpus's plan and exit "
                        "(default: no)")
    p.add_argument("--analyze-migration", metavar="PATH", nargs="?", const="auto",
                   help="decode migration files against QEMU's analyze-migration.py at PATH "
                        "(a QEMU tree or the script); without PATH: "
                        "$VMSTATE_CONFORMANCE_ANALYZE_MIGRATION, else the cached Debian "
                        "QEMU source (default: not run)")
    p.add_argument("--migration-file", action="append", metavar="FILE",
                   help="migration file for --analyze-migration, repeatable "
                        "(default: every tests/data/**/*.mig that is a complete stream)")
    p.add_argument("--ram-heavy", action="store_true",
                   help="--analyze-migration also on a RAM-heavy stream made with QEMU now "
                        "(200 MiB of random data loaded into a 256 MB guest with -device "
                        "loader: 210 MB, in a temporary directory)")
    p.add_argument("--many-devices", action="store_true",
                   help="--analyze-migration also on the pc-many-devices stream (15 devices, "
                        "1.6 MB) made with QEMU now")
    p.add_argument("--qemu", action="store_true",
                   help="the qemu engine (QEMU's own C) beside the reference engine: "
                        "operations per second and their ratio, one run (default: not run)")
    p.add_argument("--qemu-build", action="append", metavar="KEY|SERIES|PATH",
                   help="--qemu on this build, repeatable (default: the newest cached "
                        "build per variant)")
    p.set_defaults(func=cmd_bench)


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks as side-by-side ratios: engines, "
                                            "start-up, decoding")
    configure(p)
