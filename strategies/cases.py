"""``cases()``: descriptions, states, destinations and a variant composed into a case.

When :mod:`conformance.cases` is importable (it is, in this tree) a case is a
:class:`conformance.cases.Case` and :func:`case_json` is ``dump_case()``: the file
``vmstate-conformance run`` and the golden corpus read.  The expectation recorded is
what the reference engine does, so a case written from a failing property replays the
disagreement against any other engine.

Without it, :class:`GeneratedCase` is the fallback, and its ``to_json()`` writes the
same plain form for the parts it has: ``description`` as ``dump_description`` would
(``repr`` otherwise), ``source`` / ``destination`` through ``state.to_plain`` (bytes
as hex), ``variants`` and ``stream`` (hex).

Shrinking: as its parts (simplest description first, then values, then the
destination kind toward ``matching``).
"""

from __future__ import annotations

import json

import attrs
from hypothesis import strategies as st

import conformance
from conformance import cases as _cases
from conformance.model import variants as _variants
from conformance.model.state import to_plain
from strategies.descriptions import descriptions
from strategies.values import DESTINATION_KINDS, destinations, states


@attrs.frozen
class GeneratedCase:
    description: object
    source: dict
    destination: dict
    variant: str
    stream: bytes

    def to_json(self) -> dict:
        if _cases is not None:
            desc = _cases.dump_description(self.description)
        else:
            desc = repr(self.description)
        return {"description": desc, "source": to_plain(self.source),
                "destination": to_plain(self.destination), "variants": [self.variant],
                "stream": self.stream.hex()}


def make_case(name: str, description, source, destination, variant, *,
              notes: str = "", expect: bool = True):
    """A case (``conformance.cases.Case`` when available) with the reference's outcome
    as its expectation."""
    variant = _variants.get(variant).name
    saved = conformance.save(description, source, variant)
    if _cases is None:
        return GeneratedCase(description, source, destination, variant, saved.data)
    exp = {}
    if expect:
        exp["save"] = {"kind": saved.kind}
        if saved.ok:
            exp["save"]["stream"] = saved.data.hex()
            loaded = conformance.load(description, saved.data + b"\x00", destination, variant)
            exp["load"] = {"kind": loaded.kind}
            if loaded.ok:
                exp["load"]["state"] = to_plain(loaded.state)
    return _cases.Case(name, description, source, destination, (variant,), expect=exp,
                       notes=notes)


def case_json(case) -> dict:
    """The JSON form of a case from :func:`cases` / :func:`make_case`."""
    if isinstance(case, GeneratedCase):
        return case.to_json()
    return _cases.dump_case(case)


def case_text(case) -> str:
    return json.dumps(case_json(case), indent=1, sort_keys=False)


@st.composite
def cases(draw, variant=None, *, family: str | None = None, kind: str | None = "matching"):
    """A case: description, source state, destination pre-state, variant, expectation.

    ``variant`` None draws one of the four; ``kind`` None draws a destination kind.
    """
    if variant is None:
        variant = draw(st.sampled_from(tuple(_variants.VARIANTS)))
    desc = draw(descriptions(variant, focus=family))
    source = draw(states(desc))
    dkind = kind or draw(st.sampled_from(DESTINATION_KINDS))
    dest = draw(destinations(desc, source, variant, kind=dkind))
    return make_case(f"generated-{family or 'any'}-{dkind}", desc, source, dest, variant)


__all__ = ["GeneratedCase", "cases", "case_json", "case_text", "make_case"]
