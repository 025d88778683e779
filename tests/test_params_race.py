"""The free-while-read race of migrate-set-parameters as a property (the open-coded code and
Fabiano Rosas's "qapi: Use visitors for migration parameters handling" series).

``find_race`` runs Hypothesis derandomized with a fixed budget, but which minimal example
the shrinker reaches still depends on the Hypothesis version (one reads tls-creds,
another tls-authz: both are minimal).  So the tests assert what makes an example
minimal -- three steps, one pointer member, the request touching only it -- never one
particular member name.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance.params import properties, race
from conformance.params.schema import POINTER_MEMBERS

BUDGET = 300


def _shape(trial):
    return [(s.thread, s.kind) for s in trial.trace]


@pytest.mark.parametrize("design", ["open-coded", "merge", "whitelist-free-all"])
def test_race_found_and_shrunk_to_three_steps(design):
    trial = properties.find_race(design, BUDGET)
    assert trial is not None, f"{design}: no use-after-free found in {BUDGET} examples"
    assert "use-after-free" in trial.violation
    # minimal: one free by the main thread, the migration thread's load of the (now
    # dangling) pointer and its dereference -- nothing else
    assert _shape(trial) == [(race.MAIN, "free"), (race.MIG, "load"), (race.MIG, "fault")]
    assert trial.racing == (1, 2, 3)
    # the reader reads one member, and it is one the command frees: a pointer member
    assert len(trial.members) == 1 and trial.members[0] in POINTER_MEMBERS
    assert "USE-AFTER-FREE" in trial.table()


def test_open_coded_needs_a_pointer_member_merge_does_not():
    oc = properties.find_race("open-coded", BUDGET)
    mg = properties.find_race("merge", BUDGET)
    # open-coded frees only what the request replaces: the minimal request sets exactly
    # the pointer member the reader reads (which one depends on the shrinker)
    (member,) = oc.members
    assert member in POINTER_MEMBERS and list(oc.request) == [member]
    # the series frees every pointer member of s->parameters on any request: even {}
    assert mg.request == {}


def test_swap_with_immediate_free_still_races():
    trial = properties.find_race("swap", BUDGET)
    assert trial is not None
    # the reader loaded the old object's pointer before the swap; the old object is
    # freed right after the store; the reader's next access faults
    assert _shape(trial) == [(race.MIG, "load"), (race.MAIN, "store"), (race.MAIN, "free"),
                             (race.MIG, "fault")]
    assert trial.racing == (1, 3, 4)


@pytest.mark.parametrize("design", ["whitelist", "swap-rcu"])
def test_race_absent(design):
    assert properties.find_race(design, BUDGET) is None


@pytest.mark.parametrize("design", ["whitelist", "swap-rcu"])
@given(inputs=properties.race_inputs("whitelist"))
def test_no_use_after_free_property_holds(design, inputs):
    request, members, schedule = inputs
    properties.prop_no_use_after_free(request, members, schedule, design)


def test_load_free_dereference_order():
    """The other 3-step interleaving, written by hand: the reader loads the pointer, the
    main thread frees it, the reader dereferences it."""
    for design, request in (("open-coded", {"tls-creds": "x"}), ("merge", {})):
        t = race.interleave(request, ["tls-creds"], [race.MIG, race.MAIN], design=design)
        assert _shape(t) == [(race.MIG, "load"), (race.MAIN, "free"), (race.MIG, "fault")]


def test_whitelist_rejects_non_whitelisted_during_migration():
    t = race.interleave({"tls-creds": "x"}, ["tls-creds"], [race.MIG, race.MAIN],
                        design="whitelist")
    assert t.violation is None
    assert t.outcome.error == "Parameter 'tls-creds' cannot be changed while migration is active"
    t = race.interleave({"downtime-limit": 10}, ["tls-creds"], [race.MIG, race.MAIN],
                        design="whitelist")
    assert t.violation is None and t.outcome.ok


def test_merge_memcpy_window():
    """QAPI_CLONE_MEMBERS memcpy()s tmp over s->parameters before cloning in place: a
    reader that loads a pointer member in that window holds tmp's memory, which
    g_autoptr frees when the command returns."""
    sched = [race.MAIN] * 6 + [race.MIG] + [race.MAIN] * 7
    t = race.interleave({}, ["tls-creds"], sched, design="merge")
    assert t.violation and "tmp.tls-creds" in t.violation
