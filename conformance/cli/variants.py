"""``vmstate-conformance variants`` and ``vmstate-conformance diff``.

``variants`` prints each variant's flag numbering, VMS_END, policy points and modelling
decisions.  ``diff CASE --variants a,b`` saves the case's source under each variant,
prints the bytes side by side annotated per field element (conformance.golden.annotate), loads
each stream into the case's destination, prints outcome and ledger, and ends with a
one-line verdict: agree / differ in bytes / differ on load.  A case written for another
variant is translated first (conformance.model.translate), and the output says so.
Exit 0 whatever the verdict unless ``--fail-on-difference`` (then 1 when they differ).
"""

from __future__ import annotations

import json
import sys

import attrs

from conformance.cases import load_case_file
from conformance.model import variants as _variants
from conformance.model.outcome import Allocation, Precondition
from conformance.model.state import to_plain


class _Usage(Exception):
    pass


def add_subcommands(sub) -> None:
    p = sub.add_parser("variants", help="print each variant's flag table, policy points "
                                        "and modelling decisions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_variants)

    p = sub.add_parser("diff", help="save/load one case under several variants, side by side")
    p.add_argument("case", help="case file (.json or .py)")
    p.add_argument("--variants", default="auto-alloc,alloc",
                   help="comma-separated variants (default: auto-alloc,alloc)")
    p.add_argument("--fail-on-difference", action="store_true",
                   help="exit 1 when the variants do not agree")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_diff)


# ---------------------------------------------------------------------------------------
# variants


def _variant_json(v) -> dict:
    return {
        "name": v.name, "title": v.title, "qemu": v.qemu,
        "flags": {name: value for name, value in v.flag_table()},
        "vmstate_check": v.has_check, "pointer_array_rules": v.pointer_array_rules,
        "auto_flag_rule": v.auto_flag_rule, "pointer_array_size": v.pointer_array_size,
        "marker_load": v.marker_load, "marker_info_name": v.marker_info_name,
        "vmdesc_era": v.vmdesc_era,
        "errors": v.errors, "hook_failure": v.hook_failure,
        "post_save_result": v.post_save_result, "multiply_elements": v.multiply_elements,
        "decisions": {k: v.decision(k) for k in _variants.DECISIONS},
    }


def cmd_variants(args) -> int:
    vs = list(_variants.VARIANTS.values())
    if args.json:
        print(json.dumps([_variant_json(v) for v in vs], indent=2))
        return 0
    names = [v.name for v in vs]
    rows: dict[str, dict] = {}
    for v in vs:
        for name, value in v.flag_table():
            rows.setdefault(name, {})[v.name] = value
    order = sorted(rows, key=lambda n: (n == "VMS_END", min(
        (x for x in rows[n].values() if x is not None), default=1 << 30)))
    w = max(len(n) for n in rows) + 2
    print(f"{'flag':<{w}}" + "".join(f"{n:>12}" for n in names))
    for flag in order:
        cells = []
        for n in names:
            if n not in rows[flag]:
                cells.append("-")
            elif rows[flag][n] is None:
                cells.append("none")
            else:
                cells.append(f"0x{rows[flag][n]:x}")
        print(f"{flag:<{w}}" + "".join(f"{c:>12}" for c in cells))
    print()
    points = [("vmstate_check", lambda v: "yes" if v.has_check else "no"),
              ("auto declaration", lambda v: {None: "-", "auto-alloc-flag": "AUTO_ALLOC",
                                              "pointer-array-alloc": "AOP|ALLOC"}[
                                                  v.auto_flag_rule]),
              ("pointer-array .size", lambda v: v.pointer_array_size),
              ("NULL-slot load", lambda v: v.marker_load),
              ("marker info name", lambda v: v.marker_info_name),
              ("vmdesc era", lambda v: v.vmdesc_era),
              # QEMU master's conventions (variants.CONVENTIONS, docs/variants.md)
              ("errors", lambda v: v.errors),
              ("hook failure", lambda v: v.hook_failure),
              ("post_save result", lambda v: v.post_save_result),
              ("MULTIPLY_ELEMENTS", lambda v: "yes" if v.multiply_elements else "ignored")]
    # the open questions only concern variants with an auto declaration
    points += [(k, (lambda key: lambda v: str(v.decision(key)) if v.auto_flag_rule else "-")(k))
               for k in _variants.DECISIONS if k != "vmdesc_era"]
    w = max(len(p) for p, _ in points) + 2
    print(f"{'policy point':<{w}}" + "".join(f"{n:>12}" for n in names))
    for label, get in points:
        print(f"{label:<{w}}" + "".join(f"{get(v):>12}" for v in vs))
    print()
    for v in vs:
        print(f"{v.name}: {v.title} -- {v.qemu}")
    print()
    print("QEMU master's conventions (auto-alloc, alloc), one policy point per class:")
    for key, (point, value, cfunc, origin, _what) in _variants.CONVENTIONS.items():
        print(f"  {key:<3} {point} = {value}  ({cfunc}; {origin})")
    return 0


# ---------------------------------------------------------------------------------------
# diff


@attrs.frozen
class Column:
    variant: str
    note: str | None  # translation note, or why it could not run
    desc: object
    save: object  # Outcome | None
    load: object  # Outcome | None
    spans: list


def _column(case, variant: str) -> Column:
    from conformance.engines import reference as R
    from conformance.golden.annotate import AnnotateError, annotate
    from conformance.model.translate import NotExpressible, translate

    desc = case.description
    note = None
    home = case.variants[0]
    if variant not in case.variants:
        lines: list[str] = []
        try:
            desc = translate(desc, home, variant, lines)
        except NotExpressible as exc:
            return Column(variant, f"not expressible in {variant} (case written for "
                                   f"{home}): {exc}", None, None, None, [])
        note = f"translated from {home}" + (": " + "; ".join(lines) if lines else
                                            " (no change needed)")
    saved = R.save(desc, case.source, variant)
    spans = []
    if saved.ok:
        try:
            spans = annotate(desc, case.source, variant, leaves=True)
        except AnnotateError:
            spans = []
    loaded = None
    if case.load_input is not None or saved.ok:
        data = case.load_input if case.load_input is not None else saved.data + case.trailer
        loaded = R.load(desc, data, case.dest_state(), variant, version_id=case.load_version)
    return Column(variant, note, desc, saved, loaded, spans)


def _load_key(out) -> tuple | None:
    if out is None:
        return None
    allocs = tuple(a for a in out.ledger if isinstance(a, Allocation))
    return (out.kind, json.dumps(to_plain(out.state), sort_keys=True), out.message,
            len(out.data), tuple(sorted(h.kind for h in out.hazards)), allocs)


def verdict(cols: list[Column]) -> str:
    if any(c.save is None for c in cols):
        return "differ: not expressible in " + ", ".join(c.variant for c in cols
                                                          if c.save is None)
    saves = {(c.save.kind, bytes(c.save.data)) for c in cols}
    if len(saves) > 1:
        return "differ in bytes"
    loads = {_load_key(c.load) for c in cols}
    if len(loads) > 1:
        return "differ on load"
    pre = {tuple(p for p in (c.load.ledger if c.load else ()) if isinstance(p, Precondition))
           for c in cols}
    if len(pre) > 1:
        return "agree (bytes and load; the ledgers differ only in asserted preconditions)"
    return "agree"


def _byte_rows(cols: list[Column]) -> list[tuple[str, list[str]]]:
    keys: list[tuple[str, str]] = []
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for c in cols:
        data = bytes(c.save.data) if c.save is not None else b""
        for s in c.spans:
            key = (s.path, s.kind)
            if key not in cells:
                keys.append(key)
                cells[key] = {}
            text = data[s.offset:s.end].hex()
            if len(text) > 24:
                text = text[:21] + "..."
            cells[key][c.variant] = f"@{s.offset} {text}"
    rows = []
    for path, kind in keys:
        label = path + (" (marker)" if kind == "marker" else "")
        rows.append((label, [cells[(path, kind)].get(c.variant, "-") for c in cols]))
    return rows


def cmd_diff(args) -> int:
    case = load_case_file(args.case)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    if len(names) < 2:
        print("vmstate-conformance: diff needs at least two variants (--variants a,b)",
              file=sys.stderr)
        return 2
    for n in names:
        if n not in _variants.VARIANTS:
            print(f"vmstate-conformance: --variants: unknown variant {n!r} (known: "
                  f"{', '.join(_variants.VARIANTS)})", file=sys.stderr)
            return 2
    cols = [_column(case, n) for n in names]
    result = verdict(cols)
    if args.json:
        print(json.dumps({"case": case.name, "verdict": result, "variants": [
            {"variant": c.variant, "note": c.note,
             "save": c.save.to_json() if c.save is not None else None,
             "load": c.load.to_json() if c.load is not None else None,
             "spans": [{"offset": s.offset, "length": s.length, "path": s.path,
                        "kind": s.kind} for s in c.spans]} for c in cols]}, indent=2))
    else:
        _print_diff(case, cols, result)
    differ = not result.startswith("agree")
    return 1 if differ and args.fail_on_difference else 0


def _print_diff(case, cols: list[Column], result: str) -> None:
    print(f"case: {case.name}" + (f" ({case.origin})" if case.origin else ""))
    for c in cols:
        if c.note:
            print(f"  {c.variant}: {c.note}")
    print()
    print("bytes (per field element, @offset hex):")
    rows = _byte_rows(cols)
    w0 = max([len(r[0]) for r in rows] + [10]) + 2
    w = max([len(x) for r in rows for x in r[1]] + [len(c.variant) for c in cols] + [8]) + 2
    print(f"  {'field':<{w0}}" + "".join(f"{c.variant:<{w}}" for c in cols))
    for label, cells in rows:
        print(f"  {label:<{w0}}" + "".join(f"{x:<{w}}" for x in cells))
    for c in cols:
        if c.save is None:
            continue
        if c.save.ok:
            print(f"  {c.variant}: save ok, {len(c.save.data)} bytes: {bytes(c.save.data).hex()}")
        else:
            print(f"  {c.variant}: save {c.save.summary()}")
    print()
    print("load:")
    for c in cols:
        if c.load is None:
            print(f"  {c.variant}: (no load)")
            continue
        out = c.load
        print(f"  {c.variant}: {out.summary()}; consumed {len(out.data)} bytes")
        print(f"    state: {json.dumps(to_plain(out.state))}")
        for h in out.hazards:
            print(f"    hazard: {h.kind} at {h.path}: {h.detail}")
        for e in out.ledger:
            if isinstance(e, Precondition):
                print(f"    ledger: asserted {e.condition} at {e.path}: "
                      f"{'held' if e.held else 'FAILED'}")
            else:
                print(f"    ledger: allocated {e.what} {e.path} ({e.nbytes} bytes, "
                      f"{'zeroed' if e.zeroed else 'not zeroed'}"
                      f"{', overwrote a non-NULL pointer' if e.overwrote else ''})")
    print()
    print(f"verdict: {result}")
