"""The ``vmstate-conformance`` command: one entry point, one module per command group.

Exit status: 0 success, 1 when the outcome is an error / abort (or a check fails),
2 on usage errors.  Every failure is one line on stderr naming where it happened.
"""

from __future__ import annotations

import argparse
import importlib
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

#: command-group modules, each with ``add_subcommands(sub)``
GROUPS = ("conformance.cli.cases", "conformance.cli.migration", "conformance.bench.engines",
          "conformance.cli.variants", "conformance.golden.commands")


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmstate-conformance",
        description="Conformance harness for QEMU's VMState migration format.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(name).add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        from conformance.cases import CaseError

        if not isinstance(exc, CaseError):
            raise
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
