"""``golden verify``: every case x variant x engine against its pinned files (never writes).

:func:`verify` is the whole check (per case, :func:`verify_case`; corpus-level,
:func:`verify_corpus`: gone cases, unused or missing files, the streams index and
``divergences.json``).  Each finding is a :class:`Problem`; a stream mismatch comes with
a field-level diff of the annotated hex view.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs

from conformance.golden.corpus import (
    DIVERGENCES,
    GOLDEN,
    MANIFEST,
    VARIANTS,
    CaseRef,
    GoldenError,
    discover,
    entry_files,
    find_root,
    load_manifest,
    pinned_files,
    read_pinned,
    read_state_doc,
    select,
    streams_index,
)
from conformance.golden.diff import stream_diff, text_diff, value_diff
from conformance.golden.divergences import describe_save, divergences, load_divergences, spellings
from conformance.golden.render import Observation, load_record, observe, render_case, save_summary


@attrs.frozen
class Problem:
    case: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.case}: {self.message}" if self.case else self.message


def verify_case(root: Path, ref: CaseRef, manifest: dict,
                engines: Iterable[str] | None = None) -> list[Problem]:
    """Every variant x engine of one case against its pinned files."""
    from conformance.engines import available

    engines = list(engines or available())
    cid = ref.id
    entry = manifest["cases"].get(cid)
    if entry is None:
        return [Problem(cid, f"no golden files pinned for {ref.file} (run "
                             f"'vmstate-conformance golden regen --case {cid}')")]
    problems: list[Problem] = []
    if entry.get("file") != ref.file:
        problems.append(Problem(cid, f"the manifest says the case lives in {entry.get('file')}"
                                     f", it is in {ref.file}"))
    expected = render_case(ref)  # the reference engine's view, with annotations
    for p in expected.problems:
        problems.append(Problem(cid, p))
    state_cache: dict[str, dict] = {}
    found: list[Problem] = []
    for v in VARIANTS:
        pinned = entry["variants"].get(v)
        if pinned is None:
            problems.append(Problem(cid, f"[{v}] not pinned (run regen)"))
            continue
        for engine in engines:
            obs = (expected.observations[v] if engine == "reference"
                   else observe(ref.case, v, engine))
            found += _compare_obs(root, ref, v, engine, obs, pinned, state_cache)
    # one problem per distinct finding, naming every (variant, engine) that has it
    grouped: dict[str, list[str]] = {}
    for p in found:
        tag, _, text = p.message.partition("] ")
        grouped.setdefault(text if tag.startswith("[") else p.message, []).append(
            tag.lstrip("[") if tag.startswith("[") else "")
    for text, tags in grouped.items():
        tags = [t for t in tags if t]
        problems.append(Problem(cid, f"[{'; '.join(tags)}] {text}" if tags else text))
    # derived files (annotations, vmdesc) and the manifest entry itself
    for name, data in expected.files.items():
        if name.endswith(".hex.txt"):
            have = read_pinned(root, name)
            if have is None:
                problems.append(Problem(cid, f"missing annotated view {GOLDEN}/{name}"))
            elif have != data:
                problems.append(Problem(cid, f"annotated view {GOLDEN}/{name} is out of date "
                                             "(run regen)"))
    if not problems and _strip(entry) != _strip(expected.entry):
        diff = value_diff(_strip(entry), _strip(expected.entry), "$")
        problems.append(Problem(cid, "manifest entry differs from what regen would write:\n"
                                + "\n".join(diff)))
    return problems


def _strip(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "index"}


def _compare_obs(root: Path, ref: CaseRef, v: str, engine: str, obs: Observation,
                 pinned: dict, state_cache: dict) -> list[Problem]:
    cid = ref.id
    tag = f"[{v}, {engine}]"
    if obs.crash:
        return [Problem(cid, f"{tag} the engine raised {obs.crash}")]
    out: list[Problem] = []
    psave = pinned["save"]
    have = save_summary(obs.save)
    if psave.get("kind") != have["kind"]:
        out.append(Problem(cid, f"{tag} save: pinned {describe_save(psave)}, got "
                                f"{obs.save.summary()}"))
    elif have["kind"] != "ok":
        for key in ("message", "path", "offset"):
            if psave.get(key) != have.get(key):
                out.append(Problem(cid, f"{tag} save {key}: pinned {psave.get(key)!r}, got "
                                        f"{have.get(key)!r}"))
    else:
        name = psave.get("stream", "")
        old = read_pinned(root, name)
        if old is None:
            out.append(Problem(cid, f"{tag} pinned stream {GOLDEN}/{name} is missing"))
        elif old != obs.save.data:
            out.append(Problem(cid, f"{tag} stream differs from {GOLDEN}/{name}:\n"
                                    + "\n".join(stream_diff(root, ref, v, name, old,
                                                            obs.save.data))))
        vname = psave.get("vmdesc")
        if bool(vname) != (obs.save.vmdesc is not None):
            out.append(Problem(cid, f"{tag} vmdesc: pinned {vname or 'none'}, the engine "
                                    f"wrote {'none' if obs.save.vmdesc is None else 'one'}"))
        elif vname:
            pinned_text = read_pinned(root, vname)
            text = obs.save.vmdesc.encode() + b"\n"
            if pinned_text is None:
                out.append(Problem(cid, f"{tag} pinned vmdesc {GOLDEN}/{vname} is missing"))
            elif pinned_text != text:
                out.append(Problem(cid, f"{tag} vmdesc differs from {GOLDEN}/{vname}:\n"
                                        + text_diff(pinned_text, text)))
    pload = pinned.get("load")
    if (pload is None) != (obs.load is None):
        out.append(Problem(cid, f"{tag} load: pinned "
                                f"{'none' if pload is None else pload['kind']}, got "
                                f"{'none' if obs.load is None else obs.load.summary()}"))
    elif pload is not None:
        name = pload["state"]
        try:
            doc = state_cache.get(name) or read_state_doc(root, name)
        except GoldenError as exc:
            return out + [Problem(cid, str(exc))]
        state_cache[name] = doc
        rec = next((ld for ld in doc["loads"] if v in ld["variants"]), None)
        got = load_record(obs.load)
        if rec is None:
            out.append(Problem(cid, f"{tag} {GOLDEN}/{name} has no load for {v}"))
        else:
            want = {k: x for k, x in rec.items() if k != "variants"}
            if want != got:
                out.append(Problem(cid, f"{tag} loaded outcome differs from {GOLDEN}/{name}:\n"
                                        + "\n".join(value_diff(want, got, "$"))))
    return out


def verify_corpus(root: Path, refs: list[CaseRef], manifest: dict) -> list[Problem]:
    """Corpus-level checks: cases the manifest lists that are gone, pinned files no case
    uses, the streams index and the divergences list."""
    problems: list[Problem] = []
    ids = {r.id for r in refs}
    for cid, entry in manifest["cases"].items():
        if cid not in ids:
            problems.append(Problem(cid, f"the manifest pins a case whose file "
                                         f"{entry.get('file')} is gone (run regen)"))
    used: set[str] = set()
    for entry in manifest["cases"].values():
        used |= entry_files(entry)
    for name in sorted(pinned_files(root) - used):
        problems.append(Problem(None, f"{GOLDEN}/{name}: pinned file no case uses"))
    for name in sorted(used - pinned_files(root)):
        problems.append(Problem(None, f"{GOLDEN}/{name}: listed in the manifest but missing"))
    if manifest.get("streams", {}) != streams_index(manifest["cases"]):
        problems.append(Problem(None, f"{GOLDEN}/{MANIFEST}: $.streams does not match "
                                      "$.cases (run regen)"))
    state_docs = {}
    for name in sorted(used):
        if name.endswith(".state.json") and (root / GOLDEN / name).exists():
            try:
                state_docs[name] = read_state_doc(root, name)
            except GoldenError as exc:
                problems.append(Problem(None, str(exc)))
    cases = {r.id: r.case for r in refs}
    want = {"divergences": divergences(manifest["cases"], state_docs, cases),
            "spellings": spellings(manifest["cases"], state_docs, cases)}
    have = load_divergences(root)
    if have != want:
        problems.append(Problem(None, f"{GOLDEN}/{DIVERGENCES} is out of date (run regen):\n"
                                + "\n".join(value_diff(have, want, "$"))))
    return problems


def verify(root: Path | None = None, pattern: str | None = None,
           engines: Iterable[str] | None = None, jobs: int = 1) -> list[Problem]:
    """Every selected case against its pins (plus the corpus checks when no pattern
    is given).  ``jobs`` > 1 spreads the cases over worker processes."""
    root = Path(root or find_root())
    refs, errors = discover(root)
    problems = [Problem(None, e) for e in errors]
    manifest = load_manifest(root)
    chosen = select(refs, pattern)
    engines = list(engines) if engines else None
    if jobs > 1 and len(chosen) > 1:
        from concurrent.futures import ProcessPoolExecutor

        sizes = {r.id: max([e["save"].get("bytes", 0) for e in
                            manifest["cases"].get(r.id, {}).get("variants", {}).values()]
                           + [0]) for r in chosen}
        ids = sorted(sizes, key=lambda i: -sizes[i])  # the biggest first
        chunks = [ids[k::jobs * 4] for k in range(jobs * 4)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for part in pool.map(_verify_ids, [(str(root), c, engines) for c in chunks if c]):
                problems += part
    else:
        for ref in chosen:
            problems += verify_case(root, ref, manifest, engines)
    if not pattern:
        problems += verify_corpus(root, refs, manifest)
    return problems


def _verify_ids(job) -> list[Problem]:
    """A worker process: verify the cases with these ids (cases are re-read here, as
    Python-defined cases do not pickle)."""
    root, ids, engines = job
    root = Path(root)
    refs, _ = discover(root)
    manifest = load_manifest(root)
    wanted = set(ids)
    out: list[Problem] = []
    for ref in refs:
        if ref.id in wanted:
            out += verify_case(root, ref, manifest, engines)
    return out
