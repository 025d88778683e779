"""``qemu build`` / ``qemu list``: cached builds of QEMU's migration code.

Usable as ``python -m conformance.qemu build --debian 7.2`` or, through
``add_subcommands`` (the interface of every command group), as
``vmstate-conformance qemu build ...``.
Exit status: 0 ok, 1 failure, 2 usage.  Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from conformance.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from conformance.qemu import build

PROG = "vmstate-conformance qemu"


def _err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


def cmd_build(args) -> int:
    if args.jobs < 1:
        _err(f"--jobs must be at least 1 (got {args.jobs})")
        return EXIT_USAGE
    try:
        if args.debian:
            info = build.build_debian(args.debian, jobs=args.jobs, force=args.force)
        elif args.overlay:
            info = build.build_overlay(args.overlay, jobs=args.jobs, force=args.force)
        else:
            info = build.build_source(args.source, jobs=args.jobs, force=args.force)
    except build.BuildError as exc:
        _err(str(exc))
        return EXIT_FAIL
    except KeyboardInterrupt:
        _err("interrupted (no build-info.json written)")
        return EXIT_FAIL
    print(f"{info.key}: QEMU {info.qemu_version}, variant {info.variant}, "
          f"test-vmstate {_tv(info)}, {info.path}/{build.INFO_NAME}")
    return EXIT_OK


def cmd_differential(args) -> int:
    from conformance.qemu import differential

    if args.n < 1:
        _err(f"differential: -n must be at least 1 (got {args.n})")
        return EXIT_USAGE
    args.argv = [a for a in sys.argv[sys.argv.index("differential") + 1:]] \
        if "differential" in sys.argv else []
    return differential.run_command(args)


def _tv(info) -> str:
    t = info.test_vmstate or {}
    if not t.get("passed"):
        return "FAILED"
    ok = t.get("ok", "?")
    return f"passed ({ok}/{ok + t.get('failed', 0)})" if isinstance(ok, int) else "passed (?)"


def cmd_list(args) -> int:
    builds = build.available()
    rows = [("KEY", "QEMU", "VARIANT", "TEST-VMSTATE", "PATH")]
    rows += [(b.key, b.qemu_version, b.variant, _tv(b), b.path) for b in builds]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    if not builds:
        print(f"(no cached builds under {build.cache_root()}; run: {PROG} build --debian 7.2)")
    return EXIT_OK


def _fill(text: str) -> str:
    """A description wrapped as argparse would at 80 columns (the CLI's Parser keeps
    descriptions as written)."""
    import textwrap

    return textwrap.fill(text, 78)


def _add_commands(sub) -> None:
    p = sub.add_parser("build",
                       help="build QEMU's migration code and its test-vmstate (cached)",
                       description=_fill("Fetch (Debian) or use (--source) a QEMU tree, "
                                         "configure one target, build tests/unit/test-vmstate, "
                                         "run it, and record build-info.json under "
                                         f"{build.cache_root()}."))
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--debian", choices=build.SERIES, metavar="SERIES",
                   help=f"Debian source package series ({' or '.join(build.SERIES)}); "
                        "needs a deb-src line for it (default: none; one of --debian / "
                        "--source / --overlay is required)")
    g.add_argument("--source", metavar="DIR",
                   help="an existing QEMU source tree, e.g. your own patched checkout or "
                        "a QEMU master checkout (variant auto-alloc) (default: none; one of "
                        "--debian / --source / --overlay is required)")
    g.add_argument("--overlay", metavar="DIR",
                   help="the shared QEMU-master overlay folder (shared/qemu-master: "
                        "assemble.sh + overlay/), laid over the cached Debian 10.2 tree "
                        "(built first if missing); cached by the overlay's sha256 "
                        "(default: none)")
    p.add_argument("--jobs", "-j", type=int, default=2, metavar="N", help="ninja -j N")
    p.add_argument("--force", action="store_true",
                   help="rebuild from scratch even when the cache holds the build")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("differential",
                       help="reference engine vs QEMU's own C on generated examples or the "
                            "corpora",
                       description=_fill("Run the model (reference engine) and QEMU's own "
                                         "migration/vmstate.c (the qemu engine, on the "
                                         "variant's cached build) side by side: per generated "
                                         "example a save (bytes, ret, vmdesc JSON), the load of "
                                         "the saved stream, a truncation and a mutation.  "
                                         "Prints the buckets per operation and one reproducer "
                                         "per disagreement.  Exit status 0: no disagreement; "
                                         "1: some (or no build)."))
    from conformance.qemu import differential as _differential

    _differential.add_arguments(p)
    p.set_defaults(func=cmd_differential)

    p = sub.add_parser("list", help="list cached builds",
                       description=_fill(f"Cached builds under {build.cache_root()} "
                                         "(only those whose test-vmstate passed)."))
    p.set_defaults(func=cmd_list)

    # qemu compare BASE HEAD (conformance/qemu/treecompare.py)
    from conformance.qemu import treecompare

    treecompare.add_command(sub)


def add_subcommands(subparsers) -> None:
    """Add ``qemu build|list`` to a parent CLI's subparsers (handlers set ``func``)."""
    p = subparsers.add_parser("qemu", help="build / list QEMU's own vmstate code (cached); "
                                           "compare two QEMU trees",
                              description="Cached builds of QEMU's migration code for the "
                                          "QEMU engine.")
    sub = p.add_subparsers(dest="qemu_command", metavar="COMMAND", required=True)
    _add_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser of ``python -m conformance.qemu`` (conformance.cli's
    Parser: one-line usage errors, exit 2)."""
    from conformance.cli import Parser

    parser = Parser(prog="python -m conformance.qemu",
                    description="Cached builds of QEMU's migration code.")
    sub = parser.add_subparsers(dest="qemu_command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    _add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m conformance.qemu``: parsed and run like every entry point
    (conformance.cli.parse / run)."""
    from conformance.cli import parse, run

    args = parse(build_parser(), argv)
    return args if isinstance(args, int) else run(args)
