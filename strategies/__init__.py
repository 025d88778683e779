"""Hypothesis strategies for VMState field trees, flag sets, states and streams.

Public API (each strategy's docstring says how it shrinks):

* :func:`descriptions` - whole field trees, schema first, with a :class:`Budget`
* :func:`flag_sets` - valid flag combinations, and invalid ones labelled with their rule
* :func:`states` / :func:`destinations` - source states and load pre-states
* :func:`streams` / :func:`mutated_streams` - saved bytes and damaged bytes
* :func:`cases` - all of it composed into a case file
* :mod:`strategies.properties` - the property suite (engine-agnostic)
* :mod:`strategies.db` - the example database (directory or Redis) from the environment
* :mod:`strategies.throughput` - examples per second per property
"""

from strategies.cases import GeneratedCase, case_json, cases, make_case
from strategies.descriptions import (
    DEFAULT_BUDGET,
    FAMILIES,
    Budget,
    descriptions,
    families_in,
    family_of,
    variant_families,
)
from strategies.flagsets import FlagSet, flag_sets, rules_for
from strategies.streams import MUTATIONS, Mutation, Stream, boundaries, mutated_streams, streams
from strategies.values import DESTINATION_KINDS, destinations, states

__all__ = [
    "Budget", "DEFAULT_BUDGET", "FAMILIES", "DESTINATION_KINDS", "MUTATIONS",
    "descriptions", "family_of", "families_in", "variant_families",
    "flag_sets", "FlagSet", "rules_for",
    "states", "destinations",
    "streams", "mutated_streams", "Stream", "Mutation", "boundaries",
    "cases", "GeneratedCase", "case_json", "make_case",
]
