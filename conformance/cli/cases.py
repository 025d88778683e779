"""The case commands: ``encode``, ``decode``, ``check`` and ``run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import conformance
from conformance.cli import EXIT_FAIL, EXIT_OK, UsageError
from conformance.engines import ENGINE_NAMES
from conformance.model import variants as _variants
from conformance.model.state import to_plain

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"
DEFAULT_CASE = EXAMPLES / "pointer-array-auto-alloc.json"


def _fail(message: str) -> int:
    print(f"vmstate-conformance: {message}", file=sys.stderr)
    return EXIT_FAIL


def _variant_for(case, requested: str | None) -> str:
    if requested:
        return _variants.get(requested).name
    return case.variants[0]


def _read_stream(arg: str) -> bytes:
    path = Path(arg)
    if path.exists():
        data = path.read_bytes()
        text = data.strip()
        try:
            if text and all(chr(c) in "0123456789abcdefABCDEF \n\t" for c in text):
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


def _is_migration_file(arg: str) -> bool:
    try:
        with open(arg, "rb") as fh:
            return fh.read(4) == b"QEVM"
    except OSError:
        return False


def cmd_decode(args) -> int:
    if _is_migration_file(args.target):
        try:
            from conformance.cli import migration as migcli
        except ImportError:
            return _fail("migration-file decoding is not available in this build")
        return migcli.run_decode(args.target, args.format, args.desc, args.sections, sys.stdout)
    if args.stream is None:
        raise UsageError("decode CASE.json STREAM: STREAM (hex or file) is missing")
    case = conformance.load_case(args.target)
    variant = _variant_for(case, args.variant)
    data = _read_stream(args.stream)
    out = conformance.load(case.description, data, case.dest_state(), variant,
                           engine=args.engine, version_id=case.load_version)
    if out.kind in ("ok",):
        print(json.dumps(to_plain(out.state), indent=2, sort_keys=False))
        if out.file_error:
            print(f"note: QEMU would leave the sticky error {out.file_error} (the subsection "
                  f"peek hit the end of the {len(data)}-byte stream)", file=sys.stderr)
        for hazard in out.hazards:
            if hazard.kind != "sticky-eof":
                print(f"hazard: {hazard.kind} at {hazard.path}: {hazard.detail}",
                      file=sys.stderr)
        return EXIT_OK
    return _fail(f"{args.target}: load {out.summary()}")


def cmd_check(args) -> int:
    from conformance.model.check import check

    case = conformance.load_case(args.case)
    variant = _variant_for(case, args.variant)
    findings = check(case.description, variant)
    for f in findings:
        print(f)
    errors = [f for f in findings if f.severity == "error"]
    if not findings:
        print(f"{case.description.name}: passes vmstate_check ({variant})")
    return EXIT_FAIL if errors else EXIT_OK


def cmd_run(args) -> int:
    from conformance.cases.campaign import run_campaign

    return run_campaign(args)


def add_subcommands(sub) -> None:
    engines = list(ENGINE_NAMES)
    variants = list(_variants.VARIANTS)

    p = sub.add_parser("encode", help="print the stream a case's source state saves to (hex)")
    p.add_argument("case", help="case file (.json or .py)")
    p.add_argument("--engine", choices=engines, default="reference")
    p.add_argument("--variant", choices=variants)
    p.add_argument("--vmdesc", action="store_true", help="also print the vmdesc JSON")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="load a stream into a case's destination (JSON), "
                                      "or decode a migration file")
    p.add_argument("target", help="case file, or a migration file (QEVM magic)")
    p.add_argument("stream", nargs="?", help="stream as hex or a file (with a case)")
    p.add_argument("--engine", choices=engines, default="reference")
    p.add_argument("--variant", choices=variants)
    p.add_argument("--format", choices=["json", "analyze-migration"], default="json",
                   help="migration files: output format")
    p.add_argument("--desc", action="store_true", help="migration files: print the vmdesc")
    p.add_argument("--sections", action="store_true", help="migration files: list records")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("check", help="run vmstate_check (and documented rules) on a case")
    p.add_argument("case")
    p.add_argument("--variant", choices=variants)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("run", help="the conformance campaign: cases x variants x engines")
    p.add_argument("paths", nargs="*", help="case files or directories (default: the "
                                            "bundled examples, plus golden/ when present)")
    p.add_argument("--engine", action="append", choices=engines,
                   help="engines to run (default: every available one)")
    p.add_argument("--variant", action="append", choices=variants,
                   help="restrict to these variants (default: each case's own)")
    p.add_argument("--properties", type=int, default=10, metavar="N",
                   help="property sweep: N examples per grid point (0 skips; default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable results")
    p.set_defaults(func=cmd_run)
