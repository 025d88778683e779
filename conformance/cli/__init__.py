"""The ``vmstate-conformance`` command: one entry point, one module per command group.

Exit status: 0 success, 1 when the outcome is an error / abort (or a check fails),
2 on usage errors.  Every failure is one line on stderr naming where it happened.

Start-up: :data:`COMMANDS` names each command's group module and one-line help, so the
top-level parser (``--help``, ``--version``) is built without importing any group; a
command imports only its own group's module (and that module imports its engines,
corpus or benchmark inside the command function).  tests/test_cli_consistency.py
checks :data:`COMMANDS` against the groups' ``add_subcommands``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

#: conformance.model.variants.VARIANTS' names, here so that building a parser imports no
#: model (tests/test_cli_consistency.py checks the two agree)
VARIANT_NAMES = ("qemu-7.2", "legacy", "auto-alloc", "alloc")

#: command-group modules, each with ``add_subcommands(sub)``
GROUPS = ("conformance.cli.cases", "conformance.cli.migration", "conformance.bench.cli",
          "conformance.cli.variants", "conformance.golden.commands", "conformance.qemu.cli",
          "conformance.params.cli")

#: command -> (its group module, its one-line help); the order is --help's
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("conformance.cli.cases",
            "the conformance campaign: cases x variants x engines (the CI gate)"),
    "encode": ("conformance.cli.cases",
               "print the stream a case's source state saves to (hex)"),
    "decode": ("conformance.cli.cases",
               "load a stream into a case's destination (JSON), or decode a migration file"),
    "check": ("conformance.cli.cases", "run vmstate_check (and documented rules) on a case"),
    "reencode": ("conformance.cli.migration", "rebuild a migration file from its decoded model"),
    "verify": ("conformance.cli.migration",
               "decode + re-encode a migration file and compare byte for byte"),
    "bench-decode": ("conformance.cli.migration",
                     "time migration-file decoding (optionally against QEMU's "
                     "analyze-migration.py)"),
    "bench": ("conformance.bench.cli",
              "benchmarks as side-by-side ratios: engines, start-up, decoding"),
    "variants": ("conformance.cli.variants",
                 "print each variant's flag table, policy points and modelling decisions"),
    "diff": ("conformance.cli.variants",
             "save/load one case under several variants, side by side"),
    "golden": ("conformance.golden.commands", "the golden stream corpus: verify, regen, show"),
    "qemu": ("conformance.qemu.cli", "build / list QEMU's own vmstate code (cached)"),
    "params": ("conformance.params.cli",
               "migration parameters: migrate-set-parameters model (seed 004)"),
}

EPILOG = ("exit status: 0 success (everything passed), 1 a failure (a case, property, check "
          "or decode failed), 2 usage error. 'vmstate-conformance COMMAND --help' for a "
          "command's options and their defaults.")


class UsageError(Exception):
    pass


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """States every valued option's default: an option whose help does not already say
    ``default`` gets ``(default: X)``; flags are off unless given."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.help is argparse.SUPPRESS:
            return text
        if action.option_strings and action.nargs != 0 and action.default not in (
                None, argparse.SUPPRESS):
            return f"{text} (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vmstate-conformance")
    except Exception:  # noqa: BLE001 - a source tree without installed metadata
        return "unknown (not installed)"


def build_parser(command: str | None = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The parser; with ``command`` only that command's group is imported (the others
    are listed by name and help), with ``full`` every group is (the tests)."""
    parser = Parser(prog="vmstate-conformance",
                    description="Conformance harness for QEMU's VMState migration format.",
                    epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    wanted = set(GROUPS) if full else (
        {COMMANDS[command][0]} if command in COMMANDS else set())
    for name in wanted:
        importlib.import_module(name).add_subcommands(sub)
    for cmd, (module, help_text) in COMMANDS.items():
        if module not in wanted:
            sub.add_parser(cmd, help=help_text)
    # --help lists commands in COMMANDS order, whatever order the groups added them in
    order = list(COMMANDS)
    sub._choices_actions.sort(key=lambda a: order.index(a.dest) if a.dest in order else 99)
    return parser


def _command_of(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = argv[argv.index(command) + 1:] if command in argv else []
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
