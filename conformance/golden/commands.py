"""The command line of the golden corpus: ``vmstate-conformance golden {verify,regen,show}``.

``add_subcommands`` is what :mod:`conformance.cli` calls (see its ``GROUPS``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.golden.corpus import (
    VARIANTS,
    GoldenError,
    discover,
    find_root,
    load_manifest,
    select,
)
from conformance.golden.recorder import record_save
from conformance.golden.regeneration import regen
from conformance.golden.render import render_hex
from conformance.golden.verification import verify


def add_subcommands(sub) -> None:
    p = sub.add_parser("golden", help="the golden stream corpus: verify, regen, show")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION")
    v = gsub.add_parser("verify", help="check every case x variant x engine against the "
                                       "pinned files (never writes)")
    v.add_argument("--case", help="only cases whose id, file or name matches (fnmatch)")
    v.add_argument("--engine", action="append", help="engines (default: every available one)")
    v.add_argument("--root", help="repository root (default: found from the current directory)")
    v.add_argument("-j", "--jobs", type=int, default=1,
                   help="worker processes (default 1; the corpus takes a few CPU seconds)")
    v.set_defaults(func=cmd_verify)
    r = gsub.add_parser("regen", help="rewrite the pinned files from the reference engine")
    r.add_argument("--case", help="only cases whose id, file or name matches (fnmatch)")
    r.add_argument("--force", action="store_true", help="regenerate even when CI is set")
    r.add_argument("--root", help="repository root (default: found from the current directory)")
    r.set_defaults(func=cmd_regen)
    s = gsub.add_parser("show", help="print the annotated stream of a case under a variant")
    s.add_argument("case", help="case id, file or name (fnmatch)")
    s.add_argument("--variant", choices=list(VARIANTS), default="legacy")
    s.add_argument("--root")
    s.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def cmd_verify(args) -> int:
    try:
        root = Path(args.root) if args.root else find_root()
        problems = verify(root, args.case, args.engine, max(args.jobs, 1))
    except GoldenError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return 1
    for p in problems:
        print(str(p))
    if problems:
        print(f"golden verify: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    from conformance.engines import available

    m = load_manifest(root)
    n = len(select(discover(root)[0], args.case))
    print(f"golden verify: ok ({n} cases x {len(VARIANTS)} variants x engines "
          f"{', '.join(args.engine or available())}; {len(m.get('streams', {}))} pinned "
          f"streams in the corpus)")
    return 0


def cmd_regen(args) -> int:
    try:
        regen(Path(args.root) if args.root else None, args.case, args.force)
    except GoldenError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_show(args) -> int:
    root = Path(args.root) if args.root else find_root()
    refs, _ = discover(root)
    chosen = select(refs, args.case)
    if not chosen:
        print(f"vmstate-conformance: no case matches {args.case!r}", file=sys.stderr)
        return 1
    for ref in chosen:
        out, spans = record_save(ref.case.description, ref.case.source, args.variant)
        if not out.ok:
            print(f"# {ref.id} [{args.variant}]: save {out.summary()}")
            continue
        sys.stdout.write(render_hex(out.data, spans, [f"{ref.id} [{args.variant}]"]))
    return 0
