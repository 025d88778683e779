"""The command line of the golden corpus: ``vmstate-conformance golden {verify,regen,show}``.

``add_subcommands`` is what :mod:`conformance.cli` calls (see its ``GROUPS``).  Building
the parser imports nothing of the corpus; each command imports what it runs.  A
``--root`` that is not a directory and a ``--case`` that matches nothing are usage
errors (exit 2).
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.errors import EXIT_USAGE
from conformance.names import VARIANT_NAMES


def _usage(message: str) -> int:
    print(f"vmstate-conformance: golden: {message}", file=sys.stderr)
    return EXIT_USAGE


def _root(args) -> Path | None:
    """``--root`` as given (None: find it); raises _BadRoot when it is no directory."""
    if args.root is None:
        return None
    root = Path(args.root)
    if not root.is_dir():
        raise _BadRoot(f"--root {args.root}: no such directory")
    return root


class _BadRoot(Exception):
    pass


def _selection(root: Path, pattern: str | None):
    from conformance.golden.corpus import discover, select

    return select(discover(root)[0], pattern)


def add_subcommands(sub) -> None:
    p = sub.add_parser("golden", help="the golden stream corpus: verify, regen, show")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION")
    v = gsub.add_parser("verify", help="check every case x variant x engine against the "
                                       "pinned files (never writes)")
    v.add_argument("--case", help="only cases whose id, file or name matches (fnmatch) "
                                  "(default: every case)")
    v.add_argument("--engine", action="append", choices=["reference", "optimized", "qemu"],
                   help="engines, repeatable (default: reference and optimized); 'qemu' "
                        "holds QEMU's own C (a cached build per variant) to the reference "
                        "engine on every corpus case, judged by conformance.qemu.compare")
    v.add_argument("--root", help="repository root (default: found from the current directory)")
    v.add_argument("-j", "--jobs", type=int, default=1,
                   help="worker processes (default 1; the corpus takes a few CPU seconds)")
    v.set_defaults(func=cmd_verify)
    r = gsub.add_parser("regen", help="rewrite the pinned files from the reference engine")
    r.add_argument("--case", help="only cases whose id, file or name matches (fnmatch) "
                                  "(default: every case)")
    r.add_argument("--force", action="store_true", help="regenerate even when CI is set")
    r.add_argument("--root", help="repository root (default: found from the current directory)")
    r.set_defaults(func=cmd_regen)
    s = gsub.add_parser("show", help="print the annotated stream of a case under a variant")
    s.add_argument("case", help="case id, file or name (fnmatch)")
    s.add_argument("--variant", choices=list(VARIANT_NAMES), default="legacy",
                   help="the variant to save under")
    s.add_argument("--root", help="repository root (default: found from the current directory)")
    s.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _verify_qemu(root, args) -> int:
    """golden verify --engine qemu: reference ≡ QEMU's C on every corpus case of every
    variant that has a cached build; cases the driver cannot express are counted."""
    from conformance.qemu import differential
    from conformance.qemu import engine as qengine

    if args.case:
        return _usage("--engine qemu runs the whole corpus; --case does not apply")
    rows, bad = [], 0
    for variant in VARIANT_NAMES:
        info = qengine.build_for_variant(variant)
        if info is None:
            rows.append((variant, "-", "", "", "", "",
                         "not run: no cached build (vmstate-conformance qemu build)"))
            continue
        rep = differential.corpus(variant, root)
        b = rep.buckets
        classes = {k: n for k, n in b.items()
                   if k not in ("agree", "not-expressible", "model-undefined", "model-limit",
                                "qemu-limit")}
        bad += sum(classes.values())
        rows.append((variant, info.key, str(rep.examples), str(b.get("agree", 0)),
                     str(b.get("not-expressible", 0)), str(b.get("model-undefined", 0)),
                     ", ".join(f"{k} {n}" for k, n in sorted(classes.items())) or "none"))
        for sig, r in rep.reproducers.items():
            print(f"{variant}: {sig}: {'; '.join(r['diffs'])[:300]}")
    head = ("variant", "build", "cases", "runs agreeing", "not expressible",
            "model undefined", "disagreements")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if bad:
        print(f"golden verify --engine qemu: {bad} disagreement(s)", file=sys.stderr)
        return 1
    return 0


def cmd_verify(args) -> int:
    from conformance.golden.corpus import VARIANTS, GoldenError, find_root, load_manifest
    from conformance.golden.verification import verify

    if args.engine and "qemu" in args.engine:
        root = _root(args) or find_root()
        ret = _verify_qemu(root, args)
        args.engine = [e for e in args.engine if e != "qemu"]
        if ret or not args.engine:
            return ret
    try:
        root = _root(args) or find_root()
        if args.case and not _selection(root, args.case):
            return _usage(f"--case {args.case!r} matches no case under {root}")
        problems = verify(root, args.case, args.engine, max(args.jobs, 1))
    except _BadRoot as exc:
        return _usage(str(exc))
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
    n = len(_selection(root, args.case))
    if not n:
        return _usage(f"no golden case under {root}")
    print(f"golden verify: ok ({n} cases x {len(VARIANTS)} variants x engines "
          f"{', '.join(args.engine or available())}; {len(m.get('streams', {}))} pinned "
          f"streams in the corpus)")
    return 0


def cmd_regen(args) -> int:
    from conformance.golden.corpus import GoldenError, find_root
    from conformance.golden.regeneration import regen

    try:
        root = _root(args)
        if args.case and not _selection(root or find_root(), args.case):
            return _usage(f"--case {args.case!r} matches no case")
        regen(root, args.case, args.force)
    except _BadRoot as exc:
        return _usage(str(exc))
    except GoldenError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_show(args) -> int:
    from conformance.golden.corpus import GoldenError, find_root
    from conformance.golden.recorder import record_save
    from conformance.golden.render import render_hex

    try:
        root = _root(args) or find_root()
        chosen = _selection(root, args.case)
    except _BadRoot as exc:
        return _usage(str(exc))
    except GoldenError as exc:
        print(f"vmstate-conformance: {exc}", file=sys.stderr)
        return 1
    if not chosen:
        return _usage(f"no case matches {args.case!r}")
    for ref in chosen:
        out, spans = record_save(ref.case.description, ref.case.source, args.variant)
        if not out.ok:
            print(f"# {ref.id} [{args.variant}]: save {out.summary()}")
            continue
        sys.stdout.write(render_hex(out.data, spans, [f"{ref.id} [{args.variant}]"]))
    return 0
