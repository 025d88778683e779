"""The qemu engine in ``vmstate-conformance run``: case runs and the property sweep
against real C, judged by conformance.qemu.compare (reference vs qemu).

A qemu column does not check a case's expectations (C reports no field paths, hazards
or ledger): it checks that QEMU's C does what the reference engine does on the case's
operations (the save, the load the case describes, QEMU's truncation protocol when the
case asks for it).  The reference column checks the expectations.  An operation the
build cannot express (``engine.not_expressible``) is not compared; a case none of whose
operations is expressible is **skipped**, not passed.

The sweep's qemu points are the differential forms of the properties about streams
(:data:`PROPERTIES`): the same Hypothesis strategies draw the description, states and
stream; every operation runs on both engines; a disagreement fails the point, and
Hypothesis shrinks it to the smallest description and stream on which the model and C
differ, written as a case whose ``load_input`` is that stream (its replay command names
the build: ``run FILE --engine qemu:KEY --variant V``).
"""

from __future__ import annotations

from conformance.engines import reference
from conformance.qemu import compare as qcompare
from conformance.qemu import engine as qengine

#: the properties with a differential (reference vs qemu) form; the others are claims
#: about check() or about variants without a build
PROPERTIES = ("round-trip", "robustness", "truncation")
#: QEMU_VM_EOF after a saved section (the cases' default trailer; QEMU's unit tests)
EOF = b"\x00"


def _short(value, n: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."


def describe(op: str, diffs, key: str) -> list[str]:
    return [f"{op}.{d.aspect}{' ' + d.path if d.path else ''}: model {_short(d.model)} / "
            f"qemu {_short(d.qemu)} [class {key}: {qcompare.CLASSES[key].title[:60]}]"
            for d in diffs]


# ---------------------------------------------------------------------------------------
# Case runs


def case_ops(case, variant: str, eng):
    """(op, input bytes, reference outcome, qemu outcome) for one case: what run_case
    does (save; load of stream + trailer or load_input; the truncation protocol)."""
    desc, dest, v = case.description, case.dest_state(), case.load_version
    ref_s = reference.save(desc, case.source, variant)
    yield "save", b"", ref_s, eng.save(desc, case.source, variant)
    if case.load_input is None and not ref_s.ok:
        return
    data = case.load_input if case.load_input is not None else ref_s.data + case.trailer
    yield ("load", data, reference.load(desc, data, dest, variant, version_id=v),
           eng.load(desc, data, dest, variant, version_id=v))
    if case.truncation and ref_s.ok:
        wire = ref_s.data + case.trailer
        n = len(wire)
        cuts = [b""] + ([wire[:n - 2], wire[:n // 2], wire[n // 2:n // 2 + n // 2]]
                        if n > 3 else [])
        for cut in cuts:
            yield ("truncate", cut, reference.load(desc, cut, dest, variant, version_id=v),
                   eng.load(desc, cut, dest, variant, version_id=v))


def run_case(case, variant: str, info) -> dict:
    """A ``run`` row's result part for the qemu build ``info``: save / load kinds,
    bytes, passed, skipped, mismatches (one line per differing aspect)."""
    eng = qengine.for_build(info)
    row = {"save": "-", "load": "-", "bytes": 0, "passed": True, "skipped": False,
           "mismatches": []}
    compared, reasons = 0, []
    for op, data, ref, q in case_ops(case, variant, eng):
        if op == "save":
            row["save"], row["bytes"] = q.kind, len(q.data)
        elif op == "load":
            row["load"] = q.kind
        if qengine.not_expressible(q):
            reasons.append(q.messages[1] if len(q.messages) > 1 else q.message)
            continue
        compared += 1
        diffs = qcompare.compare(ref, q)
        if diffs:
            key = qcompare.classify(case.description, ref, q, diffs, data)
            row["mismatches"] += describe(op, diffs, key)
    if not compared:
        row["skipped"] = True
        row["mismatches"] = [f"skipped: {reasons[0] if reasons else 'nothing to compare'}"]
    row["passed"] = not row["mismatches"] or row["skipped"]
    return row


# ---------------------------------------------------------------------------------------
# The sweep


def applies(name: str, info, variant: str) -> bool:
    """Does the property grid point (name, variant) have a qemu form on this build?"""
    return name in PROPERTIES and variant == info.variant


def _draw(name: str, data, variant: str, family, keep):
    """(description, source, destination, [(op, payload, version_id)]) as the property's
    own body draws them (strategies/properties.py)."""
    from strategies import descriptions, destinations, states
    from strategies.properties import STREAM_TRAILER
    from strategies.streams import mutated_streams

    if name == "robustness":
        desc = data.draw(descriptions(variant, focus=family).filter(keep), label="description")
        mutation = data.draw(mutated_streams(desc, variant), label="mutation")
        dest = data.draw(destinations(desc, mutation.original.state, variant),
                         label="destination")
        return desc, mutation.original.state, dest, [
            ("load", mutation.data, None), ("load", mutation.data, 0), ("save", dest, None)]
    fixed = name == "truncation"
    desc = data.draw(descriptions(variant, focus=family, fixed_layout=fixed).filter(keep),
                     label="description")
    source = data.draw(states(desc), label="source")
    dest = data.draw(destinations(desc, source, variant, kind="matching"), label="destination")
    saved = reference.save(desc, source, variant)
    ops = [("save", source, None)]
    if saved.ok and name == "round-trip":
        ops += [("load", saved.data + STREAM_TRAILER, None), ("load", saved.data + EOF, None)]
    elif saved.ok:
        wire = saved.data + EOF
        n = len(wire)
        ops += [("load", cut, None) for cut in
                [b""] + ([wire[:n - 2], wire[:n // 2], wire[n // 2:n // 2 + n // 2]]
                         if n > 3 else []) + [wire]]
    return desc, source, dest, ops


class Disagreement(AssertionError):
    pass


def run_point(name: str, info, variant: str, family: str, *, max_examples: int,
              derandomize: bool = False):
    """One qemu grid point: a strategies.properties.PointResult whose ``case`` is the
    shrunk disagreement (None when it passed)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from conformance.cases import Case
    from conformance.qemu.layout import lacking_infos
    from strategies.properties import PointResult

    eng = qengine.for_build(info)
    have = eng.driver.infos
    fam = None if family in (None, "-") else family
    captured: list = []

    def keep(desc) -> bool:  # spend the examples on what the build can run
        return not lacking_infos(desc, have)

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False,
              derandomize=derandomize)
    @given(st.data())
    def test(data):
        desc, source, dest, ops = _draw(name, data, variant, fam, keep)
        for op, payload, version in ops:
            if op == "save":
                ref, q = reference.save(desc, payload, variant), eng.save(desc, payload, variant)
                stream = ref.data
            else:
                ref = reference.load(desc, payload, dest, variant, version_id=version)
                q = eng.load(desc, payload, dest, variant, version_id=version)
                stream = payload
            diffs = qcompare.compare(ref, q)
            if not diffs:
                continue
            key = qcompare.classify(desc, ref, q, diffs, stream)
            lines = describe(op, diffs, key)
            where = (f"save of the {'destination' if payload is dest else 'source'} state"
                     if op == "save" else
                     f"load of {len(payload)} bytes {bytes(payload).hex()[:120]}"
                     + (f" (version {version})" if version is not None else ""))
            captured.append(Case(
                f"{name}-{variant}-{family}-qemu", desc, payload if op == "save" else source,
                dest, (variant,), load_version=version,
                load_input=None if op == "save" else bytes(payload),
                notes=f"shrunk disagreement of {name} on {label_of(info)}: {where}"))
            raise Disagreement(f"reference and {label_of(info)} differ on the {where}:\n"
                               + "\n".join(lines))

    try:
        test()
    except Exception as exc:  # noqa: BLE001 - a disagreement, whatever Hypothesis wraps
        message = str(exc) if isinstance(exc, Disagreement) else f"{type(exc).__name__}: {exc}"
        return PointResult(name, label_of(info), variant, family, message,
                           captured[-1] if captured else None)
    return PointResult(name, label_of(info), variant, family, None)


def label_of(info) -> str:
    from conformance.qemu.selection import label

    return label(info)
