"""The case commands: ``encode``, ``decode``, ``check`` and ``run``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import conformance
from conformance.cli import EXIT_FAIL, EXIT_OK, VARIANT_NAMES, UsageError
from conformance.names import ENGINE_NAMES
from conformance.profiles import PROFILES

DEFAULT_SWEEP = 10  # conformance.campaign.DEFAULT_SWEEP_EXAMPLES (kept light here)

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"
DEFAULT_CASE = EXAMPLES / "pointer-array-auto-alloc.json"


def _fail(message: str) -> int:
    from conformance.errors import printable  # names from the input: one printable line

    print(f"vmstate-conformance: {printable(message)}", file=sys.stderr)
    return EXIT_FAIL


def _variant_for(case, requested: str | None) -> str:
    if requested:
        from conformance.model import variants as _variants

        return _variants.get(requested).name
    return case.variants[0]


def _count(text: str) -> int:
    """argparse type: a non-negative integer."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (0 skips)")
    return value


def _read_stream(arg: str) -> bytes:
    path = Path(arg)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError:  # hex longer than a file name may be (ENAMETOOLONG): not a file
        is_dir = exists = False
    if is_dir:
        raise UsageError(f"STREAM {arg}: is a directory, not a stream file or hex")
    if exists:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"STREAM {arg}: cannot read: {exc.strerror or exc}") from None
        text = data.strip()
        try:  # hex text, told at C speed (a per-byte loop took 4 s for 16 MiB of stream)
            if text and not text.translate(None, b"0123456789abcdefABCDEF \n\t"):
                return bytes.fromhex(text.decode())
        except ValueError:
            pass
        return data
    try:
        return bytes.fromhex(arg.replace(" ", ""))
    except ValueError:
        raise UsageError(f"STREAM {arg[:40]!r} is neither a file nor a hex string") from None


def cmd_encode(args) -> int:
    case = conformance.load_case(args.case)
    variant = _variant_for(case, args.variant)
    out = conformance.save(case.description, case.source, variant, engine=args.engine,
                           vmdesc=args.vmdesc)
    if not out.ok:
        return _fail(f"{args.case}: save {out.summary()}")
    print(out.data.hex())
    if args.vmdesc:
        print(out.vmdesc)
    return EXIT_OK


def _is_migration_file(arg: str, stream_given: bool = False) -> bool:
    """A regular file is told by its magic; a pipe or device cannot be peeked at without
    losing the bytes read (``decode <(zcat f.mig.gz)``), so it is a migration file unless
    a STREAM is given (the case form)."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(arg).st_mode):  # stat, not open: a FIFO opened and
            return not stream_given and not os.path.isdir(arg)  # closed loses its writer
        with open(arg, "rb") as fh:
            return fh.read(4) == b"QEVM"
    except OSError:
        return False


def _not_a_migration_file(path: str) -> str:
    """Why ``path`` is not a migration file: the magic bytes it starts with."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not head:
        return "empty, QEMU_VM_FILE_MAGIC 0x5145564d 'QEVM' expected"
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in head)
    return f"starts {head.hex()} '{text}', QEMU_VM_FILE_MAGIC 0x5145564d 'QEVM' expected"


#: decode's options for migration files only, and for case files only (flag -> dest)
MIGRATION_ONLY = {"--format": "format", "--desc": "desc", "--sections": "sections",
                  "--memory": "memory", "--vmdesc-from": "vmdesc_from"}
CASE_ONLY = {"--engine": "engine", "--variant": "variant", "STREAM": "stream"}


def _given(args, options: dict) -> list[str]:
    return [flag for flag, dest in options.items() if getattr(args, dest) not in (None, False)]


def cmd_decode(args) -> int:
    if not Path(args.target).exists():
        return _fail(f"{args.target}: no such file")
    if _is_migration_file(args.target, args.stream is not None):
        wrong = _given(args, CASE_ONLY)
        if wrong:
            raise UsageError(f"decode {args.target}: {wrong[0]} applies to a case file, "
                             "not to a migration file")
        if args.desc and args.sections:
            raise UsageError("decode: --desc and --sections: give one")
        if args.memory and (args.format == "analyze-migration" or args.desc or args.sections):
            raise UsageError("decode: --memory applies to --format json only")
        if args.vmdesc_from and not Path(args.vmdesc_from).is_file():
            return _fail(f"{args.vmdesc_from}: no such file (--vmdesc-from)")
        try:
            from conformance.cli import migration as migcli
        except ImportError:
            return _fail("migration-file decoding is not available in this build")
        return migcli.run_decode(args.target, args.format or "json", args.desc, args.sections,
                                 sys.stdout, args.vmdesc_from, args.memory)
    if args.stream is None:
        # decode FILE [--format ...] of a file that is no migration file: unless it is a
        # case file (whose STREAM is missing: usage), bad input -- say what it is not
        from conformance.cases import CaseError

        try:
            conformance.load_case(args.target)
        except CaseError as exc:
            if os.path.isdir(args.target):
                return _fail(f"{args.target}: a directory, neither a migration file nor a case file")
            why = str(exc).removeprefix(f"{args.target}: ").removeprefix("$: ")
            return _fail(f"{args.target}: not a migration file ({_not_a_migration_file(args.target)}) "
                         f"and not a case file ({why})")
    wrong = _given(args, MIGRATION_ONLY)
    if wrong:
        raise UsageError(f"decode {args.target}: {wrong[0]} applies to a migration file "
                         "(QEVM), not to a case file")
    if args.stream is None:
        raise UsageError(f"decode {args.target} STREAM: STREAM (hex or a file) is missing")
    args.engine = args.engine or "reference"
    case = conformance.load_case(args.target)
    variant = _variant_for(case, args.variant)
    data = _read_stream(args.stream)
    out = conformance.load(case.description, data, case.dest_state(), variant,
                           engine=args.engine, version_id=case.load_version)
    if out.kind in ("ok",):
        from conformance.model.state import to_plain

        print(json.dumps(to_plain(out.state), indent=2, sort_keys=False))
        if out.file_error:
            print(f"note: QEMU would leave the sticky error {out.file_error} (the subsection "
                  f"peek hit the end of the {len(data)}-byte stream)", file=sys.stderr)
        from conformance.errors import printable

        for hazard in out.hazards:
            if hazard.kind != "sticky-eof":
                print(printable(f"hazard: {hazard.kind} at {hazard.path}: {hazard.detail}"),
                      file=sys.stderr)
        return EXIT_OK
    return _fail(f"{args.target}: load {out.summary()}")


def cmd_check(args) -> int:
    from conformance.errors import printable
    from conformance.model.check import check

    case = conformance.load_case(args.case)
    variant = _variant_for(case, args.variant)
    findings = check(case.description, variant)
    for f in findings:  # names from the input: each finding one printable line
        print(printable(str(f)))
    errors = [f for f in findings if f.severity == "error"]
    if not findings:
        print(f"{printable(case.description.name)}: passes vmstate_check ({variant})")
    return EXIT_FAIL if errors else EXIT_OK


def cmd_run(args) -> int:
    from conformance.campaign import CampaignUsageError, run_campaign

    if args.property:
        from strategies.properties import PROPERTIES

        known = [*PROPERTIES, "params"]  # params: the migration-parameters properties
        unknown = [n for n in args.property if n not in known]
        if unknown:
            raise UsageError(f"--property {unknown[0]}: unknown (known: {', '.join(known)})")
    if args.json and args.verbose:
        raise UsageError("--json and --verbose: the JSON document has every row already")
    try:
        return run_campaign(args)
    except CampaignUsageError as exc:
        raise UsageError(f"run: {exc}") from None


def _run_engine(text: str) -> str:
    """argparse type of run's --engine: a registered engine, qemu or qemu:BUILD-KEY."""
    import argparse

    if text in ENGINE_NAMES or text == "qemu" or (text.startswith("qemu:") and text[5:]):
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from "
                                     f"{', '.join(ENGINE_NAMES)}, qemu, qemu:BUILD-KEY)")


def add_subcommands(sub) -> None:
    engines = list(ENGINE_NAMES)
    variants = list(VARIANT_NAMES)

    p = sub.add_parser("encode", help="print the stream a case's source state saves to (hex)")
    p.add_argument("case", help="case file (.json or .py)")
    p.add_argument("--engine", choices=engines, default="reference", help="engine to save with")
    p.add_argument("--variant", choices=variants, help="variant (default: the case's first)")
    p.add_argument("--vmdesc", action="store_true", help="also print the vmdesc JSON")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="load a stream into a case's destination (JSON), "
                                      "or decode a migration file",
                       description="decode CASE STREAM: load STREAM into the case's "
                                   "destination and print the state as JSON. "
                                   "decode FILE.mig: decode a migration file (QEVM magic). "
                                   "An option for the other form is a usage error.")
    p.add_argument("target", help="case file (.json or .py), or a migration file (QEVM magic)")
    p.add_argument("stream", nargs="?", help="with a case: the stream, as hex or a file")
    p.add_argument("--engine", choices=engines,
                   help="case: engine to load with (default: reference)")
    p.add_argument("--variant", choices=variants,
                   help="case: variant (default: the case's first)")
    p.add_argument("--format", choices=["json", "analyze-migration"],
                   help="migration file: our JSON, or exactly what QEMU's "
                        "analyze-migration.py prints (default: json)")
    p.add_argument("--desc", action="store_true",
                   help="migration file: print the vmdesc (as analyze-migration.py -d desc)")
    p.add_argument("--sections", action="store_true",
                   help="migration file: list the records")
    p.add_argument("--memory", action="store_true",
                   help="migration file, --format json: every RAM page record too "
                        "(default: RAM summarised)")
    p.add_argument("--vmdesc-from", metavar="OTHER.mig",
                   help="migration file: decode device state with another stream's vmdesc "
                        "(files without a trailer, e.g. postcopy) (default: the file's own)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("check", help="run vmstate_check (and documented rules) on a case")
    p.add_argument("case", help="case file (.json or .py)")
    p.add_argument("--variant", choices=variants, help="variant (default: the case's first)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "run", help="the conformance campaign: cases x variants x engines (the CI gate)",
        description="Run case files on every variant and engine, then (when asked) the "
                    "property sweep. Prints a summary matrix and only what failed; "
                    "--report DIR writes report.json, report.md, report.html, junit.xml "
                    "and a replayable case file per failure under DIR/failures/.",
        epilog="exit status: 0 everything passed, 1 a case or property failed (or a case "
               "file is unreadable), 2 usage error (bad option, empty selection), 3 "
               "internal error (a bug). "
               "Which files under a directory are cases: docs/running.md.")
    p.add_argument("paths", nargs="*",
                   help="case files or directories (default: the bundled examples, plus "
                        "golden/cases when present, and the property sweep)")
    p.add_argument("--engine", action="append", type=_run_engine, metavar="ENGINE",
                   help=f"engine to run, repeatable: {', '.join(engines)}, qemu (QEMU's own "
                        "C, judged against the reference engine) or qemu:BUILD-KEY "
                        "(default: every available one; with no PATHS also qemu when a "
                        "build is cached)")
    p.add_argument("--qemu-build", action="append", metavar="KEY|SERIES|PATH",
                   help="the qemu engine's build, repeatable: a cached key "
                        "(debian-10.2.2), a series (10.2) or a QEMU source tree (built "
                        "on demand) (default: the newest cached build per variant)")
    p.add_argument("--variant", action="append", choices=variants,
                   help="restrict to this variant, repeatable (default: each case's own)")
    p.add_argument("--properties", type=_count, default=None, metavar="N",
                   help="property sweep with N examples per grid point, 0 skips it "
                        f"(default: {DEFAULT_SWEEP} with no PATHS, no sweep with PATHS)")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="property sweep with a pytest profile's budget: "
                        + ", ".join(f"{k} {v['examples']}" for k, v in PROFILES.items())
                        + " examples per grid point (default: none)")
    p.add_argument("--property", action="append", metavar="NAME",
                   help="only this property ('params': the migration-parameters "
                        "properties), repeatable; asks for the sweep (default: every property)")
    p.add_argument("--report", metavar="DIR",
                   help="write report.json, report.md, report.html, junit.xml and "
                        "failures/ into DIR (default: no reports)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also print the full per-case table (default: summary and failures)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress on stderr (default: a bar on a terminal, lines otherwise)")
    p.add_argument("--json", action="store_true",
                   help="print the report.json document instead of the tables (default: tables)")
    p.set_defaults(func=cmd_run)
