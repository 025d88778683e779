"""``vmstate-conformance compat SRC DST``: cross-version migration compatibility,
checked statically (as QEMU's scripts/vmstate-static-checker.py does, without stopping
at the first surprise) and by executing it (save with SRC's description, load with
DST's), per section.  docs/compat.md explains the verdicts and what is inferred.

Exit 0 when every section common to both sides loads, 1 when one does not for some
state (or a source section has no destination), 2 on usage errors.
"""

from __future__ import annotations

import json
import os
import sys

from conformance.cli import VARIANT_NAMES


def add_subcommands(sub) -> None:
    p = sub.add_parser("compat", help="cross-version compatibility of two -dump-vmstate "
                                      "files, vmdescs or case sets: static and executed")
    p.add_argument("src", help="source side: -dump-vmstate JSON (.json or .json.xz), a "
                               "migration file (its vmdesc), a case file or a directory "
                               "of case files")
    p.add_argument("dst", help="destination side, the same kinds")
    p.add_argument("--variant", default="legacy", choices=VARIANT_NAMES,
                   help="the variant the destination loads with (and the source saves "
                        "with, unless --src-variant)")
    p.add_argument("--src-variant", default=None, choices=VARIANT_NAMES,
                   help="the variant the source saves with (default: --variant)")
    p.add_argument("--examples", type=int, default=50,
                   help="Hypothesis examples per section and search")
    p.add_argument("--section", action="append", metavar="NAME",
                   help="only this source section (repeatable; default: every section)")
    p.add_argument("--static-only", action="store_true",
                   help="the static findings only; no section is executed")
    p.add_argument("--findings", action="store_true",
                   help="print every static finding before the table")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout; default: no JSON)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_compat)


def cmd_compat(args) -> int:
    from conformance.compat.compare import compare, render_findings, render_table
    from conformance.compat.inputs import read_side
    from conformance.errors import UsageError

    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    for path in (args.src, args.dst):
        if not os.path.exists(path):  # a missing path is a usage error (README: exit 2)
            raise UsageError(f"{path}: no such file or directory")
    if not args.static_only:
        try:
            import hypothesis  # noqa: F401 - the executed check draws with it

            import strategies.values  # noqa: F401 - the state strategies of a checkout
        except ImportError as exc:
            raise UsageError(f"the executed check needs hypothesis and the strategies "
                             f"package ({exc}); --static-only works without") from None
    src, dst = read_side(args.src), read_side(args.dst)
    if args.section:
        unknown = [s for s in args.section if s not in src.sections]
        if unknown:
            raise UsageError(f"--section {unknown[0]!r}: not a section of {args.src}")
    cmp = compare(src, dst, variant=args.variant, src_variant=args.src_variant,
                  examples=args.examples, sections=args.section,
                  static_only=args.static_only,
                  progress=None if args.quiet else sys.stderr)
    to_stdout = args.json == "-"
    out = sys.stderr if to_stdout else sys.stdout
    if args.findings:
        print(render_findings(cmp.static), file=out)
        print(file=out)
    print(render_table(cmp), file=out)
    if args.json:
        text = json.dumps(cmp.to_json(), indent=1)
        if to_stdout:
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    if args.static_only:
        return 1 if cmp.static.findings else 0
    return 1 if cmp.failed else 0
