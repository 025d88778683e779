"""Executed compatibility: save states with the source's description, load the bytes
with the destination's, per section, and say for which states it works.

For one section present on both sides (reference engine, QEMU's control flow:
vmstate_save_state / vmstate_load_state, subsections, versions):

* draw the conditions (``field_exists`` tests, subsections' ``needed``: see
  conformance/compat/infer.py) and a source state (strategies.values.states);
* save it with the source description (its version is the section's on the wire);
* load the bytes into a zeroed destination with the destination description at that
  version (QEMU: vmstate_load_state(f, vmsd, opaque, version_id) from the section
  header);
* the sample works when the load succeeds and consumes exactly what the save wrote
  (less or more would desynchronise the next section: QEMU's section footer check).

Verdicts: ``compatible`` (no sample fails), ``some-states`` (some fail: the smallest
failing witness, Hypothesis-shrunk), ``incompatible`` (a failing witness, and no
sample works), ``undecidable`` (the input cannot be run).  ``inferred`` marks a verdict
that rests on inferences from the input (infer.py lists them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field as _dcfield

from conformance.compat.infer import Conditions, Inferred, condition_aliases, counts_of, infer
from conformance.model.description import Description, evolve
from conformance.model.flags import F

COMPATIBLE, SOME, INCOMPATIBLE, UNDECIDABLE = ("compatible", "some-states", "incompatible",
                                               "undecidable")
#: buffers above this many bytes are drawn short and zero-padded (Hypothesis draws at
#: most a few kB per example; the bytes of a buffer never change its width)
BIG_BUFFER = 64
#: arrays longer than this are drawn this long and padded with zero elements
MAX_DRAWN = 4
#: what follows a section's data on the wire: QEMU_VM_SECTION_FOOTER, a section id,
#: then more stream (the next section; zeros here), so that a subsection peek
#: (vmstate_subsection_load: type, length, up to 255 name bytes) never meets the end
#: of the file, which in a real stream it would not
FOOTER = b"\x7e\x00\x00\x00\x01" + bytes(300)


@dataclass
class Executed:
    verdict: str
    inferred: bool = False
    samples: int = 0
    failures: int = 0
    witness: dict | None = None  # conditions, the non-zero state, what the load said
    reason: str | None = None
    inferences: list = _dcfield(default_factory=list)

    def to_json(self) -> dict:
        out = {"verdict": self.verdict, "inferred": self.inferred, "samples": self.samples,
               "failures": self.failures}
        if self.witness is not None:
            out["witness"] = self.witness
        if self.reason:
            out["reason"] = self.reason
        if self.inferences:
            out["inferences"] = [{"path": p, "how": h} for p, h in self.inferences]
        return out


def model_of(side, section: str, conds: Conditions, other: dict | None = None,
             aliases: dict | None = None) -> Inferred:
    """The model description of ``section`` on ``side``: the case file's own, or one
    inferred from the dump form (``other``: the other side's entry, whose element
    counts stand in for counts this side does not state)."""
    model = side.models.get(section)
    if model is not None:
        return Inferred(model)
    return infer(side.sections[section], conds, counts_of(other) if other else None,
                 aliases)


def run_pair(src_side, dst_side, section: str, dst_section: str | None = None, **kw
             ) -> Executed:
    """Build both models of ``section`` (one set of conditions) and run it."""
    conds = Conditions()
    dname = dst_section or section
    s_entry, d_entry = src_side.sections.get(section), dst_side.sections.get(dname)
    src = model_of(src_side, section, conds, d_entry)
    dst = model_of(dst_side, dname, conds, s_entry, condition_aliases(s_entry, d_entry))
    return run_section(src, dst, conds, **kw)


def run_section(src: Inferred, dst: Inferred, conds: Conditions, *, variant: str = "legacy",
                src_variant: str | None = None, examples: int = 50, seed: int = 0
                ) -> Executed:
    """The executed verdict for one section (``conds`` is shared by both models)."""

    inferences = [("src: " + p, h) for p, h in src.inferences] + \
                 [("dst: " + p, h) for p, h in dst.inferences]
    inferred = bool(inferences)
    why = [f"src {p or 'section'}: {w}" for p, w in src.undecidable] + \
          [f"dst {p or 'section'}: {w}" for p, w in dst.undecidable]
    if why:
        return Executed(UNDECIDABLE, inferred, reason="; ".join(why), inferences=inferences)
    from conformance.model.check import rejected as check_rejected

    sv, dv = src_variant or variant, variant
    for side, desc, v in (("src", src.description, sv), ("dst", dst.description, dv)):
        rejected = check_rejected(desc, _variant(v), "load" if side == "dst" else "save")
        if rejected is not None:
            return Executed(UNDECIDABLE, inferred, reason=f"{side}: vmstate_check rejects "
                            f"the description: {rejected.message}", inferences=inferences)
    names = sorted(src.conditions | dst.conditions)
    gen_desc, pads = _generation_view(src.description)
    stats = {"samples": 0, "failures": 0, "passes": 0}

    def attempt(sample) -> tuple[str, object]:
        values, state = sample
        return attempt_sample(src.description, dst.description, conds, values,
                              _pad(state, pads), sv, dv)

    def fails(sample) -> bool:
        what, _ = attempt(sample)
        stats["samples"] += what != "invalid"
        stats["failures"] += what == "fail"
        stats["passes"] += what == "ok"
        return what == "fail"

    # Two searches, cheap first.  An inferred description puts the same width on the
    # wire whatever the values, so the conditions decide: first over the conditions
    # with the zero state (the state every witness shrinks to); then, when nothing
    # failed, over conditions and states together (strategies.values.states), which
    # finds what does depend on values (a *_equal field, a counter, a byte that reads
    # as a subsection marker), shrunk by Hypothesis.
    from conformance.model.state import zero_struct

    zero = zero_struct(gen_desc)
    cheap = _samples(names, None, zero)
    full = _samples(names, gen_desc)
    budget = min(examples, max(2, 2 ** len(names)))
    # values matter to an inferred description only by accident (a byte read as a
    # subsection marker): a fifth of the budget; case files get all of it
    full_budget = max(5, examples // 5) if inferred else examples
    witness = _find(cheap, fails, budget, seed)
    if witness is None:
        witness = _find(full, fails, full_budget, seed)
    if witness is None:
        verdict = COMPATIBLE if stats["samples"] else UNDECIDABLE
        reason = None if stats["samples"] else "no state could be saved with the source"
        return Executed(verdict, inferred, stats["samples"], 0, None, reason, inferences)
    _, (saved, loaded) = attempt(witness)

    def passes(sample) -> bool:
        return attempt(sample)[0] == "ok"

    any_pass = stats["passes"] > 0 or _find(cheap, passes, budget, seed) is not None or \
        _find(full, passes, full_budget, seed) is not None
    return Executed(SOME if any_pass else INCOMPATIBLE, inferred, stats["samples"],
                    stats["failures"], _witness(witness, pads, saved, loaded), None,
                    inferences)


def attempt_sample(src: Description, dst: Description, conds: Conditions, values: dict,
                   state: dict, src_variant: str = "legacy", variant: str = "legacy"
                   ) -> tuple[str, object]:
    """One sample: ``("ok" | "fail", (saved, loaded))`` or ``("invalid", saved)`` when
    the source cannot save it."""
    from conformance.engines import reference
    from conformance.model.outcome import OK

    conds.values.clear()
    conds.values.update(values)
    saved = reference.save(src, state, src_variant, check=False)
    if saved.kind != OK:
        return "invalid", saved
    # the section footer follows the section's data in a real stream (savevm.c
    # save_section_footer): the subsection loops peek at it and stop
    loaded = reference.load(dst, saved.data + FOOTER, {}, variant,
                            version_id=src.version_id, check=False)
    if loaded.kind == OK and len(loaded.data) == len(saved.data):
        return "ok", (saved, loaded)
    return "fail", (saved, loaded)


def _variant(name: str):
    from conformance.model import variants

    return variants.get(name)


def _find(strategy, condition, budget: int, seed: int):
    """The smallest sample meeting ``condition`` (hypothesis.find), or None."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    cfg = settings(max_examples=budget, database=None, derandomize=True, deadline=None,
                   suppress_health_check=list(HealthCheck),
                   phases=[Phase.generate, Phase.shrink])
    try:
        return find(strategy, condition, settings=cfg)
    except (NoSuchExample, Unsatisfiable):
        return None


def _samples(names: list[str], desc: Description | None, state: dict | None = None):
    """(conditions, state): the state drawn for ``desc``, or ``state`` itself."""
    from hypothesis import strategies as st

    from strategies.values import states

    conds = st.fixed_dictionaries({n: st.booleans() for n in names})
    return st.tuples(conds, states(desc) if desc is not None else st.just(state))


def _generation_view(desc: Description):
    """``desc`` with big buffers and long arrays shortened for drawing, and how to pad
    them back to size: ``{member: (kind, size or count, element pads, zero)}``.  The
    values never change how many bytes an inferred field puts on the wire."""
    from conformance.model.state import _zero_element

    pads: dict = {}
    fields = []
    for f in desc.fields:
        orig = f  # padding elements are the full-size ones
        sub_pads: dict = {}
        if f.vmsd is not None:
            sub, sub_pads = _generation_view(f.vmsd)
            f = evolve(f, vmsd=sub)
        if f.member is None:
            fields.append(f)
            continue
        if f.flags & F.ARRAY and not f.flags & (F.POINTER | F.ARRAY_OF_POINTER) and \
                f.num > MAX_DRAWN:
            pads[f.member] = ("list", f.num, sub_pads, _zero_element(orig))
            f = evolve(f, num=MAX_DRAWN)
        elif f.flags & F.BUFFER and f.info == "buffer" and f.size > BIG_BUFFER and \
                not f.flags & (F.ARRAY | F.POINTER):
            pads[f.member] = ("bytes", f.size, None, None)
            f = evolve(f, size=BIG_BUFFER)
        elif sub_pads:
            pads[f.member] = ("struct", 0, sub_pads, None)
        fields.append(f)
    subs = []
    for s in desc.subsections:
        sub, sub_pads = _generation_view(s)
        for k, v in sub_pads.items():
            pads.setdefault(k, v)
        subs.append(sub)
    return evolve(desc, fields=tuple(fields), subsections=tuple(subs)), pads


def _pad(state, pads: dict):
    if not pads or not isinstance(state, dict):
        return state
    out = dict(state)
    for member, (kind, size, sub, zero) in pads.items():
        value = out.get(member)
        if kind == "bytes" and isinstance(value, (bytes, bytearray)):
            out[member] = bytes(value) + bytes(size - len(value))
        elif kind == "list" and isinstance(value, list):
            items = [_pad(v, sub) for v in value]
            out[member] = items + [copy.deepcopy(zero) for _ in range(size - len(items))]
        elif kind == "struct":
            out[member] = [_pad(v, sub) for v in value] if isinstance(value, list) \
                else _pad(value, sub)
    return out


def _nonzero(value):
    """The parts of a state that are not zero (a shrunk witness is mostly zeros)."""
    if isinstance(value, dict):
        kept = {k: _nonzero(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None} or None
    if isinstance(value, list):
        kept = [_nonzero(v) for v in value]
        return kept if any(v is not None for v in kept) else None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex() if any(value) else None
    if value in (0, False, None):
        return None
    return value


def _witness(sample, pads, saved, loaded) -> dict:
    values, state = sample
    load = loaded.summary() if loaded.kind != "ok" else (
        f"ok but consumed {len(loaded.data)} of {len(saved.data)} bytes")
    return {"conditions": {k: v for k, v in sorted(values.items())},
            "state": _nonzero(_pad(state, pads)) or {},
            "stream_bytes": len(saved.data), "load": load}
