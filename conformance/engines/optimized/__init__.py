"""The optimized engine: (description, variant) compiled once into specialised Python.

The generated code (:mod:`.codegen`, dump it with :func:`dump_source`) is a *speculative
fast path*: runs of fixed-width scalars become one precompiled ``struct`` pack /
``unpack_from``, arrays and buffers are bulk copies, struct and pointer arrays are tight
loops.  On any sign of trouble (short input, marker or equal-check mismatch, a value
``struct`` cannot pack, indeterminate memory, counts out of range, a subsection header,
aliasing in the destination...) it raises and the operation is run by the interpreter
of engines/reference.py, with the same codec table (engines/codecs.py).  There is no
second interpreter: hooks, tmp, queues, gtrees, ALLOC, vmdesc and every error outcome
come from the one model of vmstate.c.

The fast path only ever returns an outcome for inputs on which it is certain the
interpreter would succeed with the same bytes and state; docs/optimized-engine.md
explains the guards.  ``STATS`` counts fast hits and interpreter runs (tests assert on
it).
"""

from __future__ import annotations

from conformance.engines import reference as _interpreter
from conformance.engines.optimized.plan import Plan, compile_plan, dump_source
from conformance.engines.optimized.runtime import Bail
from conformance.engines.qemufile import EIO
from conformance.model.description import Description
from conformance.model.outcome import OK, Hazard, Outcome

__all__ = ["NAME", "STATS", "Bail", "Plan", "compile_plan", "dump_source", "load", "save"]

NAME = "optimized"

_STICKY_DETAIL = "a peek at the end of the stream set -EIO"

#: fast-path hits and interpreter runs, per operation
STATS = {"save_fast": 0, "save_complete": 0, "load_fast": 0, "load_complete": 0}


def _complete_save(plan: Plan, state, vmdesc: bool) -> Outcome:
    STATS["save_complete"] += 1
    return _interpreter.save(plan.desc, state, plan.variant, vmdesc=vmdesc, check=False)


def _complete_load(plan: Plan, data: bytes, dest, version: int) -> Outcome:
    STATS["load_complete"] += 1
    return _interpreter.load(plan.desc, data, dest, plan.variant, version_id=version,
                             check=False)



_OK_SAVE_EMPTY = ()


def save(desc: Description, state, variant="legacy", *, vmdesc: bool = False,
         check: bool = True) -> Outcome:
    """vmstate_save_state(): the bytes ``desc`` writes for ``state`` (not modified)."""
    plan = compile_plan(desc, variant)
    if check and plan.rejected:
        return plan.rejected["save"]
    if not vmdesc:
        try:
            out = plan.save_fast(state)
        except Exception:  # noqa: BLE001 - any trouble: the complete path decides
            pass
        else:
            STATS["save_fast"] += 1
            return Outcome(OK, "save", bytes(out))
    return _complete_save(plan, state, vmdesc)


def load(desc: Description, data: bytes, dest, variant="legacy", *,
         version_id: int | None = None, check: bool = True) -> Outcome:
    """vmstate_load_state(): load ``data`` into a copy of ``dest`` (not modified)."""
    plan = compile_plan(desc, variant)
    if check and plan.rejected:
        return plan.rejected["load"]
    version = desc.version_id if version_id is None else version_id
    buf = data if data.__class__ is bytes else bytes(data)
    try:
        state, pos, sticky, ledger = plan.load_fast(version)(buf, dest)
    except Exception:  # noqa: BLE001 - any trouble: the complete path decides
        pass
    else:
        STATS["load_fast"] += 1
        if sticky:
            return Outcome(OK, "load", buf[:pos], state,
                           hazards=(Hazard("sticky-eof", desc.name, _STICKY_DETAIL),), ledger=tuple(ledger), file_error=-EIO)
        return Outcome(OK, "load", buf[:pos], state, ledger=tuple(ledger))
    return _complete_load(plan, buf, dest, version)



