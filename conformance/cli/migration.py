"""CLI glue for real migration files: decode, reencode, verify, bench-decode.

``conformance.cli`` calls ``run_decode`` for ``decode FILE.mig`` and
``add_subcommands`` for the rest.  ``python -m conformance.cli.migration`` is a lean entry
point with the same subcommands (it imports only the migration-file modules).
Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sys

from conformance.errors import EXIT_FAIL, EXIT_OK


def _fail(message: str) -> int:
    from conformance.errors import printable

    print(f"vmstate-conformance: {printable(message)}", file=sys.stderr)
    return EXIT_FAIL


def _guarded(path: str, action):
    """Run ``action()``; bad input or I/O trouble becomes one line, never a traceback.

    The cyclic garbage collector is off meanwhile: decoding builds tens of thousands
    of small acyclic objects (the vmdesc JSON tree, the decoded fields), and its passes
    over them cost more than a small stream's whole decode."""
    import gc

    from conformance.errors import ConformanceError

    collecting = gc.isenabled()
    gc.disable()
    try:
        return action()
    except ConformanceError as exc:
        return _fail(f"{path}: {exc}")
    except BrokenPipeError:  # `decode ... | head`: the reader went away, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # (after BrokenPipeError, one of them)
        return _fail(f"{path}: {exc.strerror or exc}")
    except RecursionError:
        return _fail(f"{path}: nesting too deep to decode")
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        return _fail(f"{path}: internal error: {type(exc).__name__}: {exc}")
    finally:
        if collecting:
            gc.enable()


def _read(path: str, vmdesc_from: str | None = None, allow_incomplete: bool = False):
    """(bytes, MigrationFile); FormatError for an incomplete stream unless allowed."""
    from conformance.migration.reader import read_migration, vmdesc_of
    from conformance.migration.source import map_file
    from conformance.migration.vmdesc import FormatError

    if os.path.isdir(path):
        raise FormatError("is a directory, not a migration file")
    external = None
    if vmdesc_from:
        if os.path.isdir(vmdesc_from):
            raise FormatError(f"--vmdesc-from {vmdesc_from}: is a directory, not a migration file")
        with open(vmdesc_from, "rb") as fh:
            try:
                external = vmdesc_of(fh.read())
            except FormatError as exc:
                raise FormatError(f"--vmdesc-from {vmdesc_from}: {exc}") from None
    data = map_file(path)
    mf = read_migration(data, vmdesc=external)
    if mf.incomplete and not allow_incomplete:
        raise FormatError(mf.incomplete)
    return data, mf


def run_decode(path: str, fmt: str = "json", desc: bool = False, sections: bool = False, out=None,
               vmdesc_from: str | None = None, memory: bool = False) -> int:
    """``decode FILE.mig``: state as our JSON, or exactly as analyze-migration.py prints it.

    ``vmdesc_from``: another migration file whose vmdesc decodes this one's device state
    (for streams without a trailer, e.g. postcopy)."""
    out = out or sys.stdout

    def action() -> int:
        import json

        from conformance.errors import printable
        from conformance.migration.report import (
            analyze_desc,
            analyze_state,
            list_records,
            render_json,
            state_json,
        )

        _, mf = _read(path, vmdesc_from, allow_incomplete=sections)
        if sections:
            out.write("\n".join(list_records(mf)) + "\n")
            if mf.incomplete:  # listed as far as it goes; still not a loadable stream
                return _fail(f"{path}: {mf.incomplete}")
            others = [n for n in mf.notes if "kept opaque" not in n]  # e.g. an assumed page size
            for note in others + opaque_summary(mf):  # names from the input: escaped
                print(f"note: {printable(note)}", file=sys.stderr)
            return EXIT_OK
        if desc:
            out.write(render_json(analyze_desc(mf)))
            return EXIT_OK
        if fmt == "analyze-migration":
            if mf.vmdesc is None and not vmdesc_from:
                return _fail(f"{path}: analyze-migration.py needs the vmdesc trailer, which this file lacks "
                             "(No Debug Migration device found); try --format json or --sections")
            out.write(render_json(analyze_state(mf)))
            return EXIT_OK
        out.write(json.dumps(state_json(mf, memory=memory), indent=2) + "\n")
        if mf.vmdesc is None and not vmdesc_from:
            print(f"note: {path}: no vmdesc trailer: device state cannot be decoded, sections are listed "
                  "(--vmdesc-from OTHER.mig decodes it with another stream's vmdesc)", file=sys.stderr)
        return EXIT_OK

    return _guarded(path, action)


def run_reencode(path: str, output: str) -> int:
    def action() -> int:
        from conformance.migration.writer import CompareSink, encode

        data, mf = _read(path)
        try:
            fh = open(output, "wb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:  # the message names the output, not the input
            return _fail(f"{output}: cannot write: {exc.strerror or exc} (-o/--output)")
        with fh:
            sink = CompareSink(data, writer=fh)
            encode(mf, sink)
        offset = sink.finish()
        if offset is not None:
            return _fail(f"{path}: re-encoded file differs from the input ({_describe(mf, offset, len(data), sink.pos)})")
        return EXIT_OK

    return _guarded(path, action)


def _describe(mf, offset: int, size: int, rebuilt_size: int) -> str:
    from conformance.migration.report import locate

    return (f"first difference at offset {offset:#x}: {locate(mf, offset)}; "
            f"input {size} bytes, re-encoded {rebuilt_size} bytes")


def _first_difference(mf, data, rebuilt: bytes) -> str:
    from conformance.migration.writer import CompareSink

    sink = CompareSink(data)
    sink.append(rebuilt)
    return _describe(mf, sink.finish(), len(data), len(rebuilt))


def opaque_summary(mf) -> list[str]:
    """What the model keeps as bytes instead of parsed structure."""
    from conformance.migration.records import Opaque, Section, walk
    from conformance.migration.report import label_of
    from conformance.migration.vmdesc import Body, raw_notes

    notes = []
    by_reason: dict[str, list[str]] = {}  # many sections share one reason (no vmdesc)
    for record in walk(mf.records):
        if isinstance(record, Section):
            if isinstance(record.body, Opaque):
                label = f"{record.section_id} ({label_of(mf, record)})"
                by_reason.setdefault(record.body.reason, []).append(label)
            elif isinstance(record.body, Body):
                notes.extend(raw_notes(record.body, record.label))
        elif isinstance(record, Opaque):
            notes.append(f"{len(record.data)} opaque bytes: {record.reason}")
    for reason, labels in by_reason.items():
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        notes.insert(0, f"section{'s' if len(labels) > 1 else ''} {shown} opaque: {reason}")
    if mf.vmdesc is not None and mf.vmdesc.vmdesc.style is None:
        notes.append(f"vmdesc text opaque: {mf.vmdesc.vmdesc.note}")
    if mf.tail is not None:
        notes.append(f"tail opaque: {mf.tail.reason}")
    return notes


def run_verify(path: str, out=None, vmdesc_from: str | None = None) -> int:
    """Decode, re-encode, compare; name the first differing offset, section and field."""
    out = out or sys.stdout

    def action() -> int:
        from conformance.errors import printable
        from conformance.migration.records import RamBody
        from conformance.migration.vmdesc import Body
        from conformance.migration.writer import CompareSink, encode

        data, mf = _read(path, vmdesc_from)
        sink = CompareSink(data)
        encode(mf, sink)
        offset = sink.finish()
        if offset is not None:
            return _fail(f"{path}: NOT byte-exact: {_describe(mf, offset, len(data), sink.pos)}")
        sections = mf.sections()
        decoded = sum(1 for s in sections if isinstance(s.body, Body))
        ram = sum(1 for s in sections if isinstance(s.body, RamBody))
        opaque = opaque_summary(mf)
        print(f"{path}: {len(data)} bytes re-encoded byte-exact from the model: "
              f"{len(sections)} sections ({decoded} device state via vmdesc, {ram} RAM, "
              f"{len(sections) - decoded - ram} opaque), "
              f"vmdesc {mf.vmdesc.vmdesc.era + ' (' + (mf.vmdesc.vmdesc.style or 'opaque') + ')' if mf.vmdesc else 'absent'}, "
              f"footers {'yes' if mf.footers else 'no'}", file=out)
        for note in opaque:  # names from the input: escaped
            print(f"  opaque: {printable(note)}", file=out)
        return EXIT_OK

    return _guarded(path, action)


def _cmd_decode(args) -> int:
    return run_decode(args.file, args.format, args.desc, args.sections, sys.stdout, args.vmdesc_from, args.memory)


def _cmd_reencode(args) -> int:
    return run_reencode(args.file, args.output)


def _cmd_verify(args) -> int:
    status = EXIT_OK
    for path in args.files:
        status = max(status, run_verify(path, vmdesc_from=args.vmdesc_from))
    return status


def _cmd_bench(args) -> int:
    from conformance.bench import migration as migbench

    try:
        return migbench.run(args.files, analyze_migration=args.analyze_migration, repeat=args.repeat,
                            out=sys.stdout, as_json=args.json)
    except migbench.BenchError as exc:
        return _fail(str(exc))


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser("reencode", help="rebuild a migration file from its decoded model")
    p.add_argument("file", help="migration file (QEVM)")
    p.add_argument("-o", "--output", required=True, help="where to write the re-encoded file")
    p.set_defaults(func=_cmd_reencode)

    p = subparsers.add_parser("verify", help="decode + re-encode a migration file and compare byte for byte")
    p.add_argument("files", nargs="+", metavar="file", help="migration files (QEVM)")
    p.add_argument("--vmdesc-from", metavar="OTHER.mig",
                   help="decode device state with another stream's vmdesc (files without a trailer) "
                        "(default: each file's own)")
    p.set_defaults(func=_cmd_verify)

    p = subparsers.add_parser("bench-decode", help="time migration-file decoding (optionally against "
                                                   "QEMU's analyze-migration.py)")
    p.add_argument("files", nargs="+", metavar="file", help="migration files (QEVM)")
    p.add_argument("--analyze-migration", metavar="PATH",
                   help="QEMU checkout or scripts/analyze-migration.py to compare with "
                        "(default: none, ours only)")
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement (best is reported)")
    p.add_argument("--json", action="store_true", help="machine-readable results")
    p.set_defaults(func=_cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """``python -m conformance.cli.migration``: the lean entry (no other group is
    imported), parsed and run like every entry point."""
    from conformance.cli import Parser, parse, run

    parser = Parser(prog="vmstate-conformance",
                    description="QEMU migration files: decode, re-encode, verify.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    p = sub.add_parser("decode", help="decode a migration file")
    p.add_argument("file")
    p.add_argument("--format", choices=["json", "analyze-migration"], default="json")
    p.add_argument("--desc", action="store_true", help="print the vmdesc")
    p.add_argument("--sections", action="store_true", help="list records")
    p.add_argument("--memory", action="store_true", help="with --format json: every RAM page record too")
    p.add_argument("--vmdesc-from", metavar="OTHER.mig",
                   help="decode device state with another stream's vmdesc (files without a trailer)")
    p.set_defaults(func=_cmd_decode)
    add_subcommands(sub)
    args = parse(parser, argv)
    return args if isinstance(args, int) else run(args)


if __name__ == "__main__":
    sys.exit(main())
