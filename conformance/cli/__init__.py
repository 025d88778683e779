"""The ``vmstate-conformance`` command: one entry point, one module per command group.

Exit status: 0 success, 1 when the outcome is an error / abort (or a check fails) or the
input is bad (a ConformanceError), 2 on usage errors, 3 on an internal error (a bug).
Every failure is one line on stderr naming where it happened.  ``--limit NAME=VALUE``
(repeatable, anywhere on the line) raises a limit of docs/limits.md.

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

# leaves, cheap: the exit statuses and the variants' names (building a parser imports
# no model)
from conformance.errors import EXIT_FAIL, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from conformance.names import VARIANT_NAMES as VARIANT_NAMES

#: command-group modules, each with ``add_subcommands(sub)``
GROUPS = ("conformance.cli.cases", "conformance.cli.migration", "conformance.cli.bench",
          "conformance.cli.variants", "conformance.cli.golden", "conformance.cli.qemu",
          "conformance.cli.params", "conformance.cli.fuzz", "conformance.cli.compat")

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
    "bench": ("conformance.cli.bench",
              "benchmarks as side-by-side ratios: engines, start-up, decoding"),
    "variants": ("conformance.cli.variants",
                 "print each variant's flag table, policy points and modelling decisions"),
    "diff": ("conformance.cli.variants",
             "save/load one case under several variants, side by side"),
    "golden": ("conformance.cli.golden", "the golden stream corpus: verify, regen, show"),
    "qemu": ("conformance.cli.qemu", "build / list QEMU's own vmstate code (cached); "
                                     "compare two QEMU trees"),
    "params": ("conformance.cli.params",
               "migration parameters: migrate-set-parameters model and its race"),
    "fuzz": ("conformance.cli.fuzz", "hostile-input fuzzing: mutated migration files, case "
                                     "files and engine streams against the error contract"),
    "compat": ("conformance.cli.compat", "cross-version compatibility of two -dump-vmstate "
                                         "files, vmdescs or case sets: static and executed"),
}

EPILOG = ("exit status: 0 success (everything passed), 1 a failure (a case, property, check "
          "or decode failed) or bad input (one line: file: location: what is wrong), 2 usage "
          "error, 3 internal error (a bug; still one line). 'vmstate-conformance COMMAND "
          "--help' for a command's options and their defaults.")


def __getattr__(name: str):
    """``UsageError`` is conformance.errors.UsageError (one class for the API and the
    CLI), imported on first use so that ``--help`` imports no more than this module."""
    if name == "UsageError":
        from conformance.errors import UsageError

        return UsageError
    raise AttributeError(name)


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
    """argparse with the defaults stated and one-line usage errors (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (try --help)\n")


class _VersionAction(argparse.Action):
    """``--version``, looking the installed version up only when asked:
    importlib.metadata costs more at start-up than decoding a small migration file."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {_version()}")
        parser.exit()


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
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--limit", action="append", metavar="NAME=VALUE",
                        help="raise (or lower) a limit of docs/limits.md; repeatable, "
                             "anywhere on the line (e.g. --limit elements=1M)")
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


def parse(parser: argparse.ArgumentParser, argv: list[str]):
    """The parsed arguments, or the exit status when there is nothing to run (usage
    error 2, ``--help`` 0, no command: help on stderr and 2).  Shared by every entry
    point (this one, ``python -m conformance.cli.migration``, ``python -m
    conformance.params``)."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return args


def run(args) -> int:
    """Run the parsed command: its exit status; a closed pipe is success, ^C is 130."""
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def _command_of(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _take_limits(argv: list[str]) -> list[str]:
    """Apply and remove every ``--limit NAME=VALUE`` (global: before or after the
    command); UsageError for an unknown name or a bad value."""
    if not any(a == "--limit" or a.startswith("--limit=") for a in argv):
        return argv
    from conformance.errors import UsageError
    from conformance.model import limits

    rest, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg == "--limit" or arg.startswith("--limit="):
            if arg == "--limit":
                if i + 1 >= len(argv):
                    raise UsageError("--limit needs NAME=VALUE (see docs/limits.md)")
                value, i = argv[i + 1], i + 2
            else:
                value, i = arg.partition("=")[2], i + 1
            try:
                limits.set_limit(*limits.parse_assignment(value))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            continue
        rest.append(arg)
        i += 1
    return rest


def _one_line(text) -> str:
    """A message as one line: newlines become spaces, the rest is escaped."""
    from conformance.errors import printable

    return printable(" ".join(str(text).split("\n")))


def main(argv: list[str] | None = None) -> int:
    """Exit 0 ok, 1 bad input (a ConformanceError: one line ``file: location: what``),
    2 bad usage, 3 an internal error (a bug: one line, never a traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not any(a == "--limit" or a.startswith("--limit=") for a in argv):
        return _main(argv)
    from conformance.model import limits

    saved = {lim.name: limits.get(lim.name) for lim in limits.LIMITS}
    try:
        return _main(argv)
    finally:  # main() called in-process (tests) leaves the limits as it found them
        for name, value in saved.items():
            limits.set_limit(name, value)


def _main(argv: list[str]) -> int:
    try:
        argv = _take_limits(argv)
    except Exception as exc:  # noqa: BLE001 - a UsageError: --limit's name or value
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    command = _command_of(argv)
    args = parse(build_parser(command), argv)
    if isinstance(args, int):
        return args
    args.argv = argv[argv.index(command) + 1:] if command in argv else []
    try:
        return run(args)
    except Exception as exc:  # noqa: BLE001 - never a traceback
        from conformance.errors import ConformanceError, UsageError

        if isinstance(exc, UsageError):
            print(f"vmstate-conformance: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, ConformanceError):  # bad input: file: location: what is wrong
            print(f"vmstate-conformance: {_one_line(exc)}", file=sys.stderr)
            return EXIT_FAIL
        # a bug; still one line
        print(f"vmstate-conformance: internal error: {type(exc).__name__}: "
              f"{_one_line(exc)[:300]}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
