"""``golden regen``: rewrite the pinned files from the reference engine.

:func:`regen` writes only what the reference engine produces, atomically (temporary
file + rename), only files whose content changes, removes what no case uses any more,
rewrites the manifest and ``divergences.json``, and prints what was added, changed and
removed.  It refuses to run when ``CI`` is set unless forced.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import attrs

from conformance.golden.corpus import (
    DIVERGENCES,
    GOLDEN,
    MANIFEST,
    STREAMS,
    GoldenError,
    atomic_write,
    build_manifest,
    discover,
    dumps,
    entry_files,
    find_root,
    load_manifest,
    pinned_files,
    read_pinned,
    read_state_doc,
    select,
    select_id,
)
from conformance.golden.diff import stream_diff, value_diff
from conformance.golden.divergences import describe_save, divergences, save_key, spellings
from conformance.golden.render import Rendered, render_case


@attrs.frozen
class Change:
    kind: str  # added / changed / removed
    what: str
    detail: tuple[str, ...] = ()


def regen(root: Path | None = None, pattern: str | None = None, force: bool = False,
          env: dict | None = None, out=None) -> list[Change]:
    """Rewrite the pinned files from the reference engine; returns what changed."""
    env = os.environ if env is None else env
    out = out or sys.stdout
    if env.get("CI") and not force:
        raise GoldenError("refusing to regenerate golden files with CI set; verify instead, "
                          "or pass --force")
    root = Path(root or find_root())
    refs, errors = discover(root)
    if errors:
        raise GoldenError("case files do not load; nothing written:\n  " + "\n  ".join(errors))
    manifest = load_manifest(root)
    old_entries = dict(manifest["cases"])
    chosen = select(refs, pattern)
    if pattern and not chosen:
        raise GoldenError(f"no case matches {pattern!r}")
    ids = {r.id for r in refs}
    rendered = {}
    for ref in chosen:
        r = render_case(ref)
        if r.problems:
            raise GoldenError("the reference engine cannot pin " + "; ".join(r.problems))
        rendered[ref.id] = r
    changes: list[Change] = []
    new_entries = {cid: e for cid, e in old_entries.items()
                   if cid in ids and cid not in rendered}
    gone = [cid for cid in old_entries if cid not in ids
            and (not pattern or select_id(cid, old_entries[cid], pattern))]
    for cid in old_entries:
        if cid not in ids and cid not in gone:
            new_entries[cid] = old_entries[cid]  # outside the pattern: left for a full regen
    # report changes per case and variant before writing (old files still on disk)
    for cid, r in rendered.items():
        old = old_entries.get(cid)
        if old is None:
            changes.append(Change("added", f"case {cid}",
                                  tuple(f"{v}: {describe_save(e['save'])}"
                                        for v, e in r.entry["variants"].items())))
            continue
        by_detail: dict[tuple, list[str]] = {}
        for v, e in r.entry["variants"].items():
            detail = _variant_change(root, r, v, old["variants"].get(v), e)
            if detail:
                by_detail.setdefault(tuple(detail), []).append(v)
        for detail, vs in by_detail.items():
            changes.append(Change("changed", f"case {cid} [{', '.join(vs)}]", detail))
    for cid in gone:
        changes.append(Change("removed", f"case {cid}", (old_entries[cid].get("file", ""),)))
    # write the new files, then the manifest, then remove what nothing uses any more
    written: list[str] = []
    for r in rendered.values():
        new_entries[r.ref.id] = r.entry
        for name, data in sorted(r.files.items()):
            existed = (root / GOLDEN / name).exists()
            if atomic_write(root / GOLDEN / name, data):
                written.append(name)
                changes.append(Change("changed" if existed else "added", f"{GOLDEN}/{name}"))
    used: set[str] = set()
    for entry in new_entries.values():
        used |= entry_files(entry)
    stale = sorted(pinned_files(root) - used)
    if pattern:  # a partial regen only removes files of the cases it regenerated
        stems = [f"{STREAMS}/{r.ref.stem}." for r in rendered.values()]
        stale = [n for n in stale if any(n.startswith(s) for s in stems)
                 or any(n.startswith(f"{STREAMS}/{cid.replace('#', '-')}.") for cid in gone)]
    new_manifest = build_manifest(new_entries)
    if atomic_write(root / GOLDEN / MANIFEST, dumps(new_manifest).encode()):
        changes.append(Change("changed", f"{GOLDEN}/{MANIFEST}"))
    state_docs = {}
    for entry in new_entries.values():
        for e in entry["variants"].values():
            if e.get("load") and (root / GOLDEN / e["load"]["state"]).exists():
                state_docs[e["load"]["state"]] = read_state_doc(root, e["load"]["state"])
    div = divergences(new_manifest["cases"], state_docs, {r.id: r.case for r in refs})
    doc = {"format": "vmstate-conformance/golden-divergences/1",
           "note": "Generated by regen: where the variants disagree on a case's save or "
                   "load, and why (see golden/FORMAT.md and docs/variants.md).",
           "divergences": div,
           "spellings": spellings(new_manifest["cases"], state_docs,
                                  {r.id: r.case for r in refs})}
    if atomic_write(root / GOLDEN / DIVERGENCES, dumps(doc).encode()):
        changes.append(Change("changed", f"{GOLDEN}/{DIVERGENCES}"))
    for name in stale:
        (root / GOLDEN / name).unlink()
        changes.append(Change("removed", f"{GOLDEN}/{name}"))
    _prune_dirs(root / GOLDEN / STREAMS)
    for c in changes:
        print(f"{c.kind:8} {c.what}", file=out)
        for line in c.detail:
            print(f"         {line}", file=out)
    for r in rendered.values():
        for line in _expectation_conflicts(r):
            print(f"warning: {line}", file=out)
    unexplained = [d for d in div if d["why"].startswith("unexplained")]
    for d in unexplained:
        print(f"warning: unexplained divergence in {d['case']} ({d['aspect']}): add a rule "
              "to conformance.golden.divergences.explain", file=out)
    if not changes:
        print("golden files are up to date (nothing changed)", file=out)
    return changes


def _expectation_conflicts(r: Rendered) -> list[str]:
    """Where the pinned (reference) outcome contradicts the case's own expectations for
    its declared variants: pinned anyway, but said loudly."""
    from conformance.cases.casefile import _compare

    out = []
    case = r.ref.case
    for v in case.variants:
        obs = r.observations.get(v)
        if obs is None or obs.crash:
            continue
        exp = case.expectation(v)
        found = _compare("save", obs.save, exp.get("save", {}))
        if obs.load is not None:
            found += _compare("load", obs.load, exp.get("load", {}))
        out += [f"{r.ref.id} [{v}]: the reference engine contradicts the case's "
                f"expectation: {m}" for m in found]
    return out


def _prune_dirs(top: Path) -> None:
    if not top.is_dir():
        return
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            d.rmdir()
        except OSError:
            pass


def _variant_change(root: Path, r: Rendered, v: str, old: dict | None, new: dict) -> list[str]:
    if old is None:
        return [f"newly pinned: {describe_save(new['save'])}"]
    detail = []
    os_, ns = old["save"], new["save"]
    if save_key(os_) != save_key(ns):
        detail.append(f"save: {describe_save(os_)} -> {describe_save(ns)}")
        if os_.get("kind") == "ok" and ns.get("kind") == "ok":
            old_data = read_pinned(root, os_["stream"])
            new_data = r.files.get(ns["stream"])
            if old_data is not None and new_data is not None:
                detail += stream_diff(root, r.ref, v, os_["stream"], old_data, new_data)
    if os_.get("vmdesc") != ns.get("vmdesc"):
        detail.append(f"vmdesc: {os_.get('vmdesc')} -> {ns.get('vmdesc')}")
    ol, nl = old.get("load"), new.get("load")
    if (ol is None) != (nl is None):
        detail.append(f"load: {ol and ol['kind']} -> {nl and nl['kind']}")
    elif nl is not None:
        try:
            od = read_state_doc(root, ol["state"])
        except GoldenError:
            od = {"loads": []}
        nd = json.loads(r.files[nl["state"]])
        orec = next((x for x in od["loads"] if v in x["variants"]), {})
        nrec = next((x for x in nd["loads"] if v in x["variants"]), {})
        strip = {k: x for k, x in orec.items() if k != "variants"}
        nstrip = {k: x for k, x in nrec.items() if k != "variants"}
        if strip != nstrip:
            detail.append("load:")
            detail += value_diff(strip, nstrip, "$")
    return detail
