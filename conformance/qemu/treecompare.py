"""``vmstate-conformance qemu compare BASE HEAD``: two QEMU trees on the same inputs.

The question a migration maintainer asks of a vmstate.c series: with it applied, does
any description save different bytes, or load to a different outcome, than before?
BASE and HEAD are each a cached build key, a series or a QEMU source tree (built on
demand, conformance.qemu.selection).  Inputs, each run on both trees:

* generated: the differential's Hypothesis strategies (a description valid in both
  trees' variants, a source and a destination state): the save, the load of the saved
  stream, a truncation and a mutation (``differential._mutate``'s kinds);
* the case corpora and the golden corpus (``golden/cases``, ``tests/cases``, the
  bundled examples): each case's save, load (stream + trailer, or its load_input, and
  HEAD's stream when its bytes differ) and QEMU's truncation protocol;
* or only the case files named on the command line (a difference's replay: a generated
  difference's case file, ``GENERATED_CASE_NAMES``, is spelled per variant on each tree
  again, as the generated run spelled it).

A difference is any of: save bytes, outcome kind, ret, file error, bytes consumed,
loaded state, vmdesc (saves are made with it); messages (``error_report`` / ``Error``
text) are an aspect of their own, reported apart because they change often.  For each difference the model
says which variant each side matches (the reference engine under every variant, on
the same input, compared as conformance/qemu/compare.py compares the model with C), so
it reads "HEAD now behaves like variant X here" or "neither matches the model".  The
smallest input of each kind of difference is written as a replayable case file.

Exit status: 1 when the trees differ in bytes or outcomes, 0 when they do not (a
messages-only difference is said, and is not a failure), 2 usage.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import attrs

# conformance.qemu.compare / .engine are imported where used: building the ``qemu``
# command's parser (``--help``) imports no engine
MESSAGES = "messages"
UNDEFINED = "undefined"  # conformance.model.outcome.UNDEFINED
#: the aspects that make the trees differ (exit 1); messages alone do not
BEHAVIOUR = ("kind", "bytes", "ret", "file_error", "consumed", "state", "vmdesc")
DEFAULT_EXAMPLES = 200
#: seconds Hypothesis may spend shrinking one kind of generated difference
SHRINK_SECONDS = 20
#: ... and on all of them (differences in bytes or outcomes first, then messages)
SHRINK_TOTAL_SECONDS = 120
ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIRS = ("golden/cases", "tests/cases")
#: the names of the case files a generated difference is written as (``generated``):
#: their description was drawn once and spelled per variant on each tree
GENERATED_CASE_NAMES = frozenset(f"compare-{op}" for op in ("save", "load", "truncate",
                                                             "mutate"))


@attrs.frozen
class Side:
    role: str  # BASE | HEAD
    info: object

    @property
    def variant(self) -> str:
        return self.info.variant

    @property
    def engine(self):
        from conformance.qemu import engine as qengine

        return qengine.for_build(self.info)


# ---------------------------------------------------------------------------------------
# Comparing two C outcomes


def tree_diffs(a, b) -> list:
    """The aspects on which two C outcomes of one input differ (``model`` = BASE,
    ``qemu`` = HEAD in the Diff records)."""
    from conformance.model.outcome import ABORT
    from conformance.qemu import compare as qcompare

    out: list[qcompare.Diff] = []
    if a.kind != b.kind:
        out.append(qcompare.Diff("kind", "", a.summary(), b.summary()))
    elif a.op == "save":
        if bytes(a.data) != bytes(b.data):
            out.append(qcompare.Diff("bytes", "", bytes(a.data).hex(), bytes(b.data).hex()))
        if a.ret != b.ret:
            out.append(qcompare.Diff("ret", "", a.ret, b.ret))
        if a.vmdesc != b.vmdesc:
            out.append(qcompare.Diff("vmdesc", "", a.vmdesc, b.vmdesc))
    else:
        if a.ret != b.ret:
            out.append(qcompare.Diff("ret", "", a.ret, b.ret))
        if a.file_error != b.file_error:
            out.append(qcompare.Diff("file_error", "", a.file_error, b.file_error))
        if len(a.data) != len(b.data):
            out.append(qcompare.Diff("consumed", "", len(a.data), len(b.data)))
        if a.state is not None or b.state is not None:
            qcompare._state_diff(a.state, b.state, "$", out)
    if a.kind == ABORT and b.kind == ABORT:
        if a.message != b.message:
            out.append(qcompare.Diff(MESSAGES, "", a.message, b.message))
    elif tuple(a.messages) != tuple(b.messages):
        out.append(qcompare.Diff(MESSAGES, "", list(a.messages), list(b.messages)))
    return out


def matching_variants(descs: dict, op: str, payload, dest, version, outcome,
                      messages_only: bool, no_claim: set | None = None) -> list[str]:
    """The variants whose model (the reference engine) does what ``outcome`` (one side's
    C) does on this input: on every aspect but messages, or on messages alone when the
    difference is only messages.  ``no_claim`` collects the variants whose model says
    undefined (or beyond its limits) here."""
    from conformance.engines import reference
    from conformance.qemu import compare as qcompare

    out = []
    for variant, desc in descs.items():
        if desc is None:
            continue
        if op == "save":
            ref = reference.save(desc, payload, variant, vmdesc=True)
        else:
            ref = reference.load(desc, payload, dest, variant, version_id=version)
        if qcompare.comparable(ref, outcome) is not None:
            if no_claim is not None:
                no_claim.add(variant)
            continue  # undefined / beyond the model's limits: it makes no claim
        diffs = qcompare.compare(ref, outcome)
        if messages_only:
            ok = not diffs
        else:
            ok = not [d for d in diffs if d.aspect != MESSAGES]
        if ok:
            out.append(variant)
    return out


def verdict(base: Side, head: Side, base_match: list[str], head_match: list[str],
            no_claim: set | frozenset = frozenset()) -> str:
    """How a difference reads.  ``no_claim``: the variants whose model says undefined
    behaviour on this input; a side that matches nothing while its own variant is among
    them is not contradicted by the model (it makes no claim there), and is said so."""
    def pick(match, own):
        return own if own in match else match[0]

    def unmatched(side: Side) -> str:
        if side.variant in no_claim:
            return f": the model says undefined behaviour under {side.variant}"
        return " matches no variant of the model"

    if not base_match and not head_match:
        if base.variant in no_claim or head.variant in no_claim:
            return (f"neither matches the model (BASE{unmatched(base)}; "
                    f"HEAD{unmatched(head)})")
        return "neither matches the model"
    if not head_match:
        return (f"HEAD{unmatched(head)} (BASE behaves like "
                f"{pick(base_match, base.variant)})")
    said = f"HEAD now behaves like {pick(head_match, head.variant)} here"
    if set(head_match) & set(base_match):
        return said + f" (so does BASE: the model allows both; BASE: {', '.join(base_match)})"
    if not base_match:
        return said + f" (BASE{unmatched(base)})"
    return said + f" (BASE: like {pick(base_match, base.variant)})"


# ---------------------------------------------------------------------------------------
# Recording


@attrs.define
class Finding:
    signature: str
    source: str  # generated/<op> or a corpus group
    op: str
    aspects: tuple[str, ...]
    verdict: str
    base_match: list
    head_match: list
    diffs: list
    size: int
    case: object  # the reproducer, a conformance.cases.Case
    origin: str | None = None  # a corpus case's file
    count: int = 1
    reproducer: str | None = None
    replay: str | None = None

    @property
    def category(self) -> str:
        """behaviour (exit 1), messages, or undefined (both trees in undefined behaviour)."""
        if self.verdict.startswith("undefined behaviour"):
            return UNDEFINED
        return "behaviour" if any(a != MESSAGES for a in self.aspects) else MESSAGES

    @property
    def behaviour(self) -> bool:
        return self.category == "behaviour"


@attrs.define
class Recorder:
    base: Side
    head: Side
    findings: dict = attrs.field(factory=dict)
    #: source -> counter of "same" / "behaviour" / "messages" / "skipped"
    tally: dict = attrs.field(factory=lambda: collections.defaultdict(collections.Counter))
    aspects: dict = attrs.field(factory=lambda: collections.defaultdict(collections.Counter))
    target: str | None = None  # shrink mode: the signature to reproduce
    hit: Finding | None = None
    deadline: float = float("inf")

    def note(self, source: str, op: str, desc_by_side, descs_by_variant, payload, dest,
             version, a, b, make_case, origin=None) -> str:
        from conformance.qemu import engine as qengine

        if qengine.not_expressible(a) or qengine.not_expressible(b):
            self.tally[source]["skipped"] += 1
            return "skipped"
        diffs = tree_diffs(a, b)
        if not diffs:
            self.tally[source]["same"] += 1
            return "same"
        aspects = tuple(sorted({d.aspect for d in diffs}))
        messages_only = aspects == (MESSAGES,)
        no_claim: set = set()
        bm = matching_variants(descs_by_variant, op, payload, dest, version, a, messages_only,
                               no_claim)
        hm = matching_variants(descs_by_variant, op, payload, dest, version, b, messages_only,
                               no_claim)
        if ({self.base.variant, self.head.variant} <= no_claim
                or a.kind == b.kind == UNDEFINED):
            # undefined behaviour on both sides (the model makes no claim, or both trees
            # crash): heap layout and glibc's checks decide what C does, not the series
            kind, said = UNDEFINED, "undefined behaviour in both trees (the model makes no claim)"
        else:
            kind = MESSAGES if messages_only else "behaviour"
            said = verdict(self.base, self.head, bm, hm, no_claim)
            if "rejected" in (a.kind, b.kind):
                said += (" [vmstate_check: the model's rules for savevm.c, which the build "
                         "does not link; C did not run on the rejecting side]")
        self.tally[source][kind] += 1
        for asp in aspects:
            self.aspects[source][asp] += 1
        kinds = f"{a.kind}->{b.kind}"
        sig = f"{source}|{op}|{','.join(aspects)}|{kinds}|{said}"
        size = (len(payload) if isinstance(payload, (bytes, bytearray)) else 0) + 8 * sum(
            1 for _ in desc_by_side.all_fields())
        if self.target is not None:  # shrinking one kind: Hypothesis keeps the last hit
            # past the kind's shrink time no input reproduces it, so Hypothesis stops;
            # each hit before was smaller than the one before it: the last is the best
            if sig == self.target and time.monotonic() < self.deadline:
                self.hit = Finding(sig, source, op, aspects, said, bm, hm, diffs, size,
                                   make_case(), origin)
                raise _Hit(sig)
            return kind
        old = self.findings.get(sig)
        if old is not None:
            old.count += 1
            if size >= old.size:
                return kind
        f = Finding(sig, source, op, aspects, said, bm, hm, diffs, size, make_case(), origin,
                    old.count if old else 1)
        self.findings[sig] = f
        return kind


class _Hit(Exception):
    """The difference being shrunk happened (conformance.qemu.treecompare.shrink)."""


# ---------------------------------------------------------------------------------------
# Inputs


def _descs_by_variant(desc) -> dict:
    """The description as each variant spells it (None where check() refuses it)."""
    from conformance.model.check import errors as check_errors
    from conformance.model.variants import VARIANTS
    from strategies.properties import adapt_to_variant

    out = {}
    for v in VARIANTS:
        d = adapt_to_variant(desc, v)
        out[v] = None if check_errors(d, v) else d
    return out


def _run_op(side: Side, desc, op, payload, dest, version):
    if op == "save":
        # with the vmdesc JSON, as the differential saves: its entries are compared too
        return side.engine.save(desc, payload, side.variant, vmdesc=True)
    return side.engine.load(desc, payload, dest, side.variant, version_id=version)


def generated(rec: Recorder, n: int, bar=None, seed_families=None, shrink: bool = False) -> int:
    """Run ``n`` generated examples; returns how many ran.  With ``shrink`` (and
    ``rec.target`` set) the run stops at the first input of that kind and Hypothesis
    shrinks it: the same seed and strategies draw the same examples as the first run
    until then, so the kind is found again at the same place."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st

    from conformance.cases import Case
    from conformance.model.check import errors as check_errors
    from conformance.qemu import differential
    from conformance.qemu.layout import lacking_infos
    from strategies import descriptions, destinations, states
    from strategies.descriptions import variant_families
    from strategies.properties import adapt_to_variant
    from strategies.streams import MUTATIONS

    base, head = rec.base, rec.head
    fams = tuple(f for f in variant_families(base.variant)
                 if f in variant_families(head.variant))
    if seed_families:
        fams = tuple(f for f in fams if f in seed_families)
    infos = base.engine.driver.infos & head.engine.driver.infos
    done = [0]

    def keep(desc) -> bool:
        if lacking_infos(desc, infos):
            return False
        return not any(check_errors(adapt_to_variant(desc, s.variant), s.variant)
                       for s in (base, head))

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              phases=(Phase.generate, Phase.shrink) if shrink else (Phase.generate,),
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              print_blob=False, verbosity=Verbosity.quiet)
    @given(st.data())
    def body(data):
        desc = data.draw(descriptions(base.variant, families=fams).filter(keep),
                         label="description")
        src = data.draw(states(desc), label="source")
        dest = data.draw(destinations(desc, src, base.variant), label="destination")
        bdesc, hdesc = (adapt_to_variant(desc, s.variant) for s in (base, head))
        variants = _descs_by_variant(desc)

        def case(payload=None, version=None, source=src, op="save"):
            def make():
                return Case(f"compare-{op}", bdesc, source, dest,
                            tuple(dict.fromkeys((base.variant, head.variant))),
                            load_version=version, load_input=payload, expect={},
                            notes=f"qemu compare {base.info.key} {head.info.key}: {op}")
            return make

        def both(op, payload, version=None, source=src):
            a = _run_op(base, bdesc, op, payload, dest, version)
            b = _run_op(head, hdesc, op, payload, dest, version)
            rec.note(f"generated/{op}", "save" if op == "save" else "load", bdesc, variants,
                     payload, dest, version, a, b,
                     case(None if op == "save" else bytes(payload), version, source, op))
            return a, b

        a, _ = both("save", src)
        if a.ok:
            stream = a.data
            both("load", stream + b"\x00")
            cut = data.draw(st.integers(0, max(len(stream) - 1, 0)), label="truncate")
            both("truncate", stream[:cut])
            kind = data.draw(st.sampled_from(MUTATIONS[1:]), label="mutation")
            both("mutate", differential._mutate(data, kind, stream))
        done[0] += 1
        if bar is not None:
            step = max(1, n // 10)
            bar.step("generated", f"generated {(done[0] // step) * step}/{n}")

    body()
    return done[0]


def shrink(rec: Recorder, n: int) -> None:
    """Replace each generated kind's example by Hypothesis's shrunk one (within
    SHRINK_SECONDS each and SHRINK_TOTAL_SECONDS in all; the rest keep the smallest
    example found)."""
    stop = time.monotonic() + SHRINK_TOTAL_SECONDS
    order = {"behaviour": 0, MESSAGES: 1, UNDEFINED: 2}
    for sig, f in sorted(rec.findings.items(), key=lambda kv: order[kv[1].category]):
        if not f.source.startswith("generated/") or time.monotonic() > stop:
            continue
        probe = Recorder(rec.base, rec.head, target=sig,
                         deadline=time.monotonic() + SHRINK_SECONDS)
        try:
            generated(probe, n, shrink=True)
        except _Hit:
            pass
        except Exception:  # noqa: BLE001 - Hypothesis wraps the hit; anything else: keep
            pass
        if probe.hit is not None and probe.hit.size <= f.size:
            probe.hit.count = f.count
            rec.findings[sig] = probe.hit


def corpus_files(paths: list[str] | None):
    from conformance.campaign import EXAMPLES, collect

    if paths:
        return collect(paths)
    dirs = [str(ROOT / d) for d in CORPUS_DIRS if (ROOT / d).is_dir()]
    files = collect([str(EXAMPLES), *dirs])
    out = []
    for path, group in files:
        try:
            rel = path.resolve().relative_to(ROOT)
            group = rel.parent.as_posix()
        except ValueError:
            pass
        out.append((path, group))
    return out


def run_cases(rec: Recorder, files, bar=None) -> list[dict]:
    """Every case of ``files`` on both trees; returns load errors (as run's errors)."""
    from conformance.cases import CaseError, load_case_file, load_python_cases

    base, head = rec.base, rec.head
    errors = []
    for path, group in files:
        try:
            cases = load_python_cases(path) if path.suffix == ".py" else [load_case_file(path)]
        except (CaseError, Exception) as exc:  # noqa: BLE001 - a case module that raises
            errors.append({"id": f"error:{path}", "group": group, "file": str(path),
                           "message": str(exc), "reproducer": str(path),
                           "replay": f"vmstate-conformance run {path}"})
            if bar is not None:
                bar.step(str(path), group)
            continue
        for case in cases:
            if base.variant not in case.variants or head.variant not in case.variants:
                rec.tally[group]["skipped"] += 1
                continue
            _case_on_both(rec, case, path, group)
        if bar is not None:
            bar.step(str(path), group)
    return errors


def _case_on_both(rec: Recorder, case, path, group) -> None:
    import attrs as _attrs

    base, head = rec.base, rec.head
    desc, dest, v = case.description, case.dest_state(), case.load_version
    from conformance.model.variants import VARIANTS

    if case.name in GENERATED_CASE_NAMES:
        # a generated difference's replay: each tree and each variant's model gets the
        # description spelled as the generated run spelled it (adapt_to_variant: a
        # non-allocating pointer array's .size), so the replay finds the same difference
        from strategies.properties import adapt_to_variant

        variants = _descs_by_variant(desc)
        sides = {s.role: adapt_to_variant(desc, s.variant) for s in (base, head)}
    else:
        # a case names the variants it is written for: the model of each judges it
        variants = {name: (desc if name in case.variants else None) for name in VARIANTS}
        sides = {"BASE": desc, "HEAD": desc}

    def maker(payload=None):
        return lambda: _attrs.evolve(
            case, variants=tuple(dict.fromkeys((base.variant, head.variant))),
            load_input=payload if payload is not None else case.load_input, expect={},
            expect_by_variant={})

    def both(op, payload, mk):
        a = _run_op(base, sides["BASE"], op, payload, dest, v)
        b = _run_op(head, sides["HEAD"], op, payload, dest, v)
        rec.note(group, "save" if op == "save" else "load", sides["BASE"], variants, payload,
                 dest, v, a, b, mk, origin=str(path))
        return a, b

    a, b = both("save", case.source, maker())
    streams = []
    if case.load_input is not None:
        streams.append(case.load_input)
    else:
        for s in (a, b):
            if s.ok and s.data + case.trailer not in streams:
                streams.append(s.data + case.trailer)
    for data in streams:
        both("load", data, maker(data))
    if case.truncation and a.ok:
        wire = a.data + case.trailer
        n = len(wire)
        for cut in [b""] + ([wire[:n - 2], wire[:n // 2], wire[n // 2:n // 2 + n // 2]]
                            if n > 3 else []):
            both("truncate", cut, maker(cut))


# ---------------------------------------------------------------------------------------
# The command


def compare_trees(base_info, head_info, *, paths=None, examples: int = DEFAULT_EXAMPLES,
                  corpus: bool = True, report_dir: Path | None = None, progress=True,
                  argv=(), do_shrink: bool = True) -> dict:
    """Run the comparison; the report document (report.json's format, plus
    ``differences``, ``messages`` and ``compare``)."""
    from conformance.campaign import FailureWriter, Progress, _rel

    base, head = Side("BASE", base_info), Side("HEAD", head_info)
    rec = Recorder(base, head)
    files = corpus_files(paths) if (paths or corpus) else []
    gen = 0 if paths else examples
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    bar = Progress(len(files) + gen, enabled=progress)
    try:
        errors = run_cases(rec, files, bar)
        ran = generated(rec, gen, bar) if gen else 0
    finally:
        bar.close()
    if gen and do_shrink:
        shrink(rec, gen)
    seconds = time.perf_counter() - t0
    writer = FailureWriter(report_dir / "failures" if report_dir else None)
    keys = f"{base.info.key} {head.info.key}"
    for f in rec.findings.values():
        try:
            out = writer.write_case(f"compare-{f.op}-{'-'.join(f.aspects)}", f.case, None,
                                    f.origin, f"{f.verdict}")
            f.reproducer = _rel(out, report_dir)
            f.replay = f"vmstate-conformance qemu compare {keys} {out}"
        except Exception as exc:  # noqa: BLE001 - keep the finding, say why there is no file
            f.reproducer = f.origin
            f.replay = (f"vmstate-conformance qemu compare {keys} {f.origin}" if f.origin
                        else f"(no reproducer file: {type(exc).__name__}: {exc})")
    return _document(rec, errors, ran, examples if not paths else 0, started, seconds, argv)


def _finding_json(f: Finding) -> dict:
    return {"signature": f.signature, "source": f.source, "op": f.op,
            "aspects": list(f.aspects), "class": f.category, "verdict": f.verdict, "base_matches": f.base_match,
            "head_matches": f.head_match, "count": f.count,
            "diffs": [f"{d.aspect}{' ' + d.path if d.path else ''}: BASE {d.model!r} / "
                      f"HEAD {d.qemu!r}"[:600] for d in f.diffs],
            "reproducer": f.reproducer, "replay": f.replay, "origin": f.origin}


def _document(rec: Recorder, errors, ran: int, examples: int, started: str,
              seconds: float, argv) -> dict:
    from conformance.campaign import REPORT_FORMAT

    try:
        from importlib.metadata import version

        tool_version = version("vmstate-conformance")
    except Exception:  # noqa: BLE001
        tool_version = "unknown"
    base, head = rec.base, rec.head
    engine = f"qemu:{base.info.key}..{head.info.key}"
    findings = sorted(rec.findings.values(), key=lambda f: (not f.behaviour, f.source, f.op))
    rows, props = [], []
    for source, tally in rec.tally.items():
        differ = tally["behaviour"]
        row = {"source": source, "same": tally["same"], "behaviour": differ,
               "messages": tally[MESSAGES] + tally[UNDEFINED], "skipped": tally["skipped"],
               "aspects": dict(rec.aspects[source])}
        (props if source.startswith("generated/") else rows).append(row)
    failures = [{"kind": "case" if not f.source.startswith("generated/") else "property",
                 "id": f.signature, "summary": f"{f.source} {f.op}: "
                 f"{'/'.join(f.aspects)} differ: {f.verdict}",
                 "detail": "\n".join(_finding_json(f)["diffs"]), "reproducer": f.reproducer,
                 "replay": f.replay} for f in findings if f.behaviour]
    failures += [{"kind": "error", "id": e["id"], "summary": e["message"],
                  "detail": e["message"], "reproducer": e["reproducer"],
                  "replay": e["replay"]} for e in errors]
    matrix = [{"group": r["source"], "variant": head.variant, "engine": engine,
               "passed": r["same"] + r["messages"], "failed": r["behaviour"],
               **({"skipped": r["skipped"]} if r["skipped"] else {})} for r in rows]
    prop_matrix = [{"property": r["source"], "engine": engine,
                    "passed": r["same"] + r["messages"], "failed": r["behaviour"]}
                   for r in props]
    case_rows = [{"id": f"{r['source']}[{engine}]", "group": r["source"], "file": r["source"],
                  "case": r["source"], "variant": head.variant, "engine": engine,
                  "save": "-", "load": "-", "bytes": 0, "passed": not r["behaviour"],
                  "mismatches": [f"{f.op}: {'/'.join(f.aspects)}: {f.verdict}"
                                 for f in findings if f.source == r["source"] and f.behaviour],
                  "reproducer": None, "replay": None} for r in rows]
    prop_rows = [{"id": f"{r['source']}[{engine}]", "property": r["source"], "engine": engine,
                  "variant": head.variant, "family": "-", "examples": ran,
                  "passed": not r["behaviour"],
                  "message": None if not r["behaviour"] else
                  f"{r['behaviour']} inputs differ", "reproducer": None, "replay": None,
                  "seconds": 0.0} for r in props]
    total = collections.Counter()
    for t in rec.tally.values():
        total.update(t)
    behaviour = [f for f in findings if f.category == "behaviour"]
    messages = [f for f in findings if f.category == MESSAGES]
    undefined = [f for f in findings if f.category == UNDEFINED]
    return {
        "format": REPORT_FORMAT,
        "title": f"vmstate-conformance qemu compare {base.info.key} {head.info.key}",
        "tool": {"name": "vmstate-conformance", "version": tool_version},
        "started": started, "seconds": round(seconds, 3),
        "command": ["vmstate-conformance", "qemu", "compare", *argv],
        "engines": [engine], "variants": [head.variant],
        "sweep": {"examples": examples, "profile": None, "properties": []},
        "totals": {"passed": total["same"] + total[MESSAGES] + total[UNDEFINED],
                   "failed": len(failures),
                   "case_runs": sum(sum(r.values()) for r in (rec.tally[s] for s in rec.tally
                                                             if not s.startswith("generated/"))),
                   "property_points": len(prop_rows), "errors": len(errors),
                   "skipped": total["skipped"], "same": total["same"],
                   "behaviour": total["behaviour"], "messages": total[MESSAGES],
                   "undefined": total[UNDEFINED]},
        "matrix": matrix, "property_matrix": prop_matrix, "failures": failures,
        "cases": case_rows, "properties": prop_rows, "errors": errors,
        "compare": {
            "base": {"key": base.info.key, "qemu_version": base.info.qemu_version,
                     "variant": base.variant, "source_dir": base.info.source_dir},
            "head": {"key": head.info.key, "qemu_version": head.info.qemu_version,
                     "variant": head.variant, "source_dir": head.info.source_dir},
            "generated_examples": ran,
            "tally": [{"source": s, **dict(t), "aspects": dict(rec.aspects[s])}
                      for s, t in rec.tally.items()]},
        "differences": [_finding_json(f) for f in behaviour],
        "messages": [_finding_json(f) for f in messages],
        "undefined": [_finding_json(f) for f in undefined],
    }


def print_text(doc: dict, out) -> None:
    from conformance.campaign import _text_table

    c = doc["compare"]
    print(f"qemu compare: BASE {c['base']['key']} (QEMU {c['base']['qemu_version']}, "
          f"{c['base']['variant']}) -> HEAD {c['head']['key']} (QEMU "
          f"{c['head']['qemu_version']}, {c['head']['variant']})", file=out)
    for title, items in (("differences in bytes or outcomes", doc["differences"]),
                         ("differences in messages only", doc["messages"]),
                         ("undefined behaviour in both trees, differently (not a failure)",
                          doc["undefined"])):
        if not items:
            continue
        print(f"\n{title} ({len(items)} kinds, {sum(f['count'] for f in items)} inputs):",
              file=out)
        for f in items:
            print(f"  DIFF {f['source']} {f['op']} [{'/'.join(f['aspects'])}] x{f['count']}: "
                  f"{f['verdict']}", file=out)
            for d in f["diffs"][:3]:
                print(f"       {d[:200]}", file=out)
            if f["replay"]:
                print(f"       replay: {f['replay']}", file=out)
    for e in doc["errors"]:
        print(f"  ERROR {e['message']}", file=out)
    print(file=out)
    headers = ["source", "inputs", "same", "differ", "messages only", "undefined", "skipped",
               "aspects"]
    body = []
    for t in c["tally"]:
        n = sum(t.get(k, 0) for k in ("same", "behaviour", MESSAGES, UNDEFINED, "skipped"))
        asp = ", ".join(f"{k} {v}" for k, v in sorted(t["aspects"].items()))
        body.append([t["source"], str(n), str(t.get("same", 0)), str(t.get("behaviour", 0)),
                     str(t.get(MESSAGES, 0)), str(t.get(UNDEFINED, 0)),
                     str(t.get("skipped", 0)), asp])
    _text_table(headers, body, out, right=7)
    t = doc["totals"]
    if t["behaviour"]:
        verdict_line = (f"the trees differ in bytes or outcomes on {t['behaviour']} inputs "
                        f"({len(doc['differences'])} kinds)")
    elif t["messages"]:
        verdict_line = (f"the trees do not differ in bytes or outcomes; messages differ on "
                        f"{t['messages']} inputs ({len(doc['messages'])} kinds) - not a failure")
    else:
        verdict_line = "no difference"
    print(f"\n{verdict_line}", file=out)
    print(f"({t['same']} same, {t['undefined']} undefined in both, {t['skipped']} skipped, "
          f"{c['generated_examples']} generated examples, {doc['seconds']:.1f}s)", file=out)


def cmd_compare(args) -> int:
    from conformance.qemu import engine as qengine
    from conformance.qemu import selection

    for p in args.paths or []:
        if not Path(p).exists():
            print(f"vmstate-conformance qemu compare: {p}: no such file or directory",
                  file=sys.stderr)
            return 2
    try:
        base = selection.resolve(args.base)
        head = selection.resolve(args.head)
    except selection.SelectionError as exc:
        print(f"vmstate-conformance qemu compare: {exc}", file=sys.stderr)
        return 2
    try:
        for side in (base, head):
            qengine.for_build(side).driver  # noqa: B018 - compile and start it now
    except qengine.EngineUnavailable as exc:
        print(f"vmstate-conformance qemu compare: {exc}", file=sys.stderr)
        return 1
    report_dir = Path(args.report) if args.report else None
    try:
        doc = compare_trees(base, head, paths=args.paths, examples=args.examples,
                            corpus=not args.no_corpus, report_dir=report_dir,
                            do_shrink=not args.no_shrink,
                            progress=not args.quiet, argv=getattr(args, "argv", []))
    except Exception as exc:  # noqa: BLE001 - a usage problem of collect() or a bug
        from conformance.campaign import CampaignUsageError

        if isinstance(exc, CampaignUsageError):
            print(f"vmstate-conformance qemu compare: {exc}", file=sys.stderr)
            return 2
        raise
    if report_dir is not None:
        from conformance.report import write_reports

        write_reports(doc, report_dir)
    if args.json:
        json.dump(doc, sys.stdout, indent=2, default=str)
        print()
    else:
        print_text(doc, sys.stdout)
        if report_dir is not None:
            print(f"reports: {report_dir / 'report.md'} (and report.json, report.html, "
                  f"junit.xml)", file=sys.stderr)
    return 1 if doc["failures"] else 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="two QEMU trees on the same inputs: every difference in bytes, outcome "
             "and messages, with a reproducer",
        description="Save and load generated descriptions (the differential's Hypothesis "
                    "strategies), the case corpora and the golden corpus on BASE and HEAD; "
                    "report every difference (bytes, outcome, file error, consumed bytes, "
                    "loaded state; messages apart) with a replayable case file and the "
                    "variant of the model each side matches.",
        epilog="exit status: 0 no difference in bytes or outcomes (messages may differ), "
               "1 the trees differ (or a case file is unreadable), 2 usage.")
    p.add_argument("base", metavar="BASE", help="a cached build key (debian-7.2.22), a series "
                                                "(7.2) or a QEMU source tree (built on demand)")
    p.add_argument("head", metavar="HEAD", help="the same, for the tree under review")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="only these case files or directories (a difference's replay): no "
                        "generated examples, no corpora (default: none: generated examples "
                        "and the corpora)")
    p.add_argument("--examples", "-n", type=int, default=DEFAULT_EXAMPLES, metavar="N",
                   help="generated examples (each: a save, a load, a truncation, a mutation) "
                        f"(default: {DEFAULT_EXAMPLES})")
    p.add_argument("--no-corpus", action="store_true",
                   help="skip the case corpora and the golden corpus (default: run them)")
    p.add_argument("--no-shrink", action="store_true",
                   help="keep the smallest generated example of each kind of difference "
                        "as found (default: Hypothesis shrinks each kind, up to "
                        f"{SHRINK_SECONDS} s each and {SHRINK_TOTAL_SECONDS} s in all)")
    p.add_argument("--report", metavar="DIR",
                   help="write report.json, report.md, report.html, junit.xml and failures/ "
                        "(default: no reports; reproducers go to a temporary directory)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr (default: progress)")
    p.add_argument("--json", action="store_true", help="print the report.json document (default: tables)")
    p.set_defaults(func=cmd_compare)
