"""Plans: everything about a (description, variant) that does not depend on the state,
computed once and cached; the generated save/load functions live on the plan."""

from __future__ import annotations

import weakref
from typing import Any

from conformance.engines.optimized.codegen import Gen
from conformance.engines.optimized.fieldplan import FieldPlan
from conformance.engines.optimized.runtime import Bail
from conformance.model import variants as _variants
from conformance.model.check import rejected as check_rejected
from conformance.model.description import Description
from conformance.model.state import shape_conflicts


class Plan:
    """Everything compiled for one (description, variant)."""

    def __init__(self, desc: Description, variant) -> None:
        self.desc = desc
        self.variant = variant
        self._fields: dict[int, list[FieldPlan]] = {}
        self.rejected = {}
        for op in ("save", "load"):
            outcome = check_rejected(desc, variant, op)
            if outcome is not None:
                self.rejected[op] = outcome
        #: a member two fields describe as different kinds of value: the interpreter's
        #: (it reports the limit when such a field runs)
        self.shared_member = bool(shape_conflicts(desc))
        try:
            if self.shared_member:
                raise Bail("a member described as two kinds of value")
            gen = Gen(self)
            fname = gen.build_save()
            self.save_fast, self.save_source, _ = gen.compile(fname)
        except Exception as exc:  # noqa: BLE001 - never let compilation fail an operation
            self.save_fast, self.save_source = _declined, f"# no fast save: {exc!r}\n"
        self._loads: dict[int, Any] = {}
        self.load_sources: dict[int, str] = {}

    def fields_of(self, vmsd: Description) -> list[FieldPlan]:
        plans = self._fields.get(id(vmsd))
        if plans is None:
            plans = self._fields[id(vmsd)] = [FieldPlan(f, vmsd, self.variant)
                                              for f in vmsd.fields]
        return plans

    def load_fast(self, version: int):
        fn = self._loads.get(version)
        if fn is None:
            try:
                if self.shared_member:
                    raise Bail("a member described as two kinds of value")
                gen = Gen(self)
                fname = gen.build_load(version)
                fn, source, _ = gen.compile(fname)
            except Exception as exc:  # noqa: BLE001 - the complete path still answers
                fn, source = _declined, f"# no fast load: {exc!r}\n"
            self._loads[version] = fn
            self.load_sources[version] = source
        return fn


def _declined(*_args):
    """The fast function of a plan whose code generation failed: always decline."""
    raise Bail


_CACHE: dict[int, tuple[Any, dict]] = {}
#: descriptions whose plans are kept: a plan holds its description, so the weak
#: reference alone never lets one go (a fuzz run grew by 2 GB an hour)
_CACHE_SIZE = 256


def compile_plan(desc: Description, variant="legacy") -> Plan:
    """The plan for (desc, variant), compiled once and cached per description object
    (keyed by identity with a weak reference: hashing a deep frozen tree per call would
    cost more than the save itself)."""
    v = _variants.get(variant)
    entry = _CACHE.get(id(desc))
    if entry is None or entry[0]() is not desc:
        key = id(desc)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        ref = weakref.ref(desc, lambda _r, key=key, cache=_CACHE: cache.pop(key, None))
        entry = _CACHE[key] = (ref, {})
    plans = entry[1]
    plan = plans.get(v.name)
    if plan is None:
        plan = plans[v.name] = Plan(desc, v)
    return plan


def dump_source(desc: Description, variant="legacy", version_id: int | None = None) -> str:
    """The generated Python for (desc, variant): the save function and the load function
    for ``version_id`` (default: the description's version)."""
    plan = compile_plan(desc, variant)
    version = desc.version_id if version_id is None else version_id
    plan.load_fast(version)
    return (f"# vmstate plan for {desc.name!r}, variant {plan.variant.name}\n"
            f"# save\n{plan.save_source}\n# load, version {version}\n"
            f"{plan.load_sources[version]}")
