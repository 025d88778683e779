"""The properties of migrate-set-parameters, and ``sweep`` for the run job.

Sequential properties (one command, no concurrent reader), checked for every design
against ``open-coded``:

* ``agree``       same resulting parameters, same has_block_bitmap_mapping, same error
                  (modulo the one documented divergence, see ``no-crash``)
* ``no-crash``    the command never dereferences NULL.  Expected to FAIL for open-coded:
                  with zero-copy-send on, migrate_params_check() reads
                  ``*tmp.tls_creds->u.s`` after migrate_params_test_apply() cleared
                  tmp.tls_creds to NULL (any request without tls-creds).
* ``rejected-changes-nothing``  an error leaves every value and every block as it was
* ``present-replace-absent-keep``
* ``ledger``      no double free, no use-after-free, every block of a replaced non-scalar
                  freed exactly once, nothing leaks (live blocks == blocks reachable from
                  s->parameters once the command and QMP dispatch are done)

Race property (per design): ``no-use-after-free``: no interleaving of the command with
the migration thread's reads touches freed memory.  Expected to fail for open-coded,
merge, whitelist-free-all and swap; to hold for whitelist and swap-rcu.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

from . import impls, race, strategies
from .schema import BY_NAME, MEMBERS, POINTER_MEMBERS, RUNTIME_WHITELIST, TLS_MEMBERS

SEQ_DESIGNS = impls.DESIGNS
#: the race property's expected verdict per design
RACE_EXPECTED = {"open-coded": "fail", "merge": "fail", "whitelist": "pass",
                 "whitelist-free-all": "fail", "swap": "fail", "swap-rcu": "pass"}


class PropertyFailed(AssertionError):
    pass


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise PropertyFailed(msg)


def expected_value(name: str, v):
    """What s->parameters holds after the request set ``name`` to ``v``."""
    if BY_NAME[name].type == "StrOrNull" and v is None:
        return ""  # tls_opt_to_str(): null means ""
    return v


def crashed_on_documented_null(r: impls.Result) -> bool:
    return bool(r.outcome.crash) and "tmp.tls_creds is NULL" in r.outcome.crash


# --------------------------------------------------------------------------- sequential


def prop_agree(params, caps, request, design: str) -> None:
    ref = impls.run(params, request, design="open-coded", caps=caps)
    got = impls.run(params, request, design=design, caps=caps)
    _expect(got.heap_error is None, f"{design}: heap error {got.heap_error}")
    if crashed_on_documented_null(ref):
        # the documented open-coded crash: the other design must give a defined answer
        _expect(got.outcome.crash is None or design == "open-coded",
                f"{design} crashed too: {got.outcome.crash}")
        return
    _expect(ref.heap_error is None, f"open-coded: heap error {ref.heap_error}")
    _expect(got.outcome == ref.outcome,
            f"outcome differs: open-coded {ref.outcome} vs {design} {got.outcome}")
    _expect(got.after == ref.after, f"parameters differ: open-coded {ref.after} vs "
                                    f"{design} {got.after}")
    _expect(got.has_bbm == ref.has_bbm, "has_block_bitmap_mapping differs")


def prop_no_crash(params, caps, request, design: str) -> None:
    r = impls.run(params, request, design=design, caps=caps)
    _expect(r.outcome.crash is None, f"{design} crashed: {r.outcome.crash}")


def prop_rejected_changes_nothing(params, caps, request, design: str) -> None:
    r = impls.run(params, request, design=design, caps=caps)
    if r.outcome.error is None or r.heap_error:
        return
    _expect(r.after == r.before, f"rejected ({r.outcome.error}) yet parameters changed")
    _expect(r.has_bbm == bool(params["block-bitmap-mapping"]), "has_bbm changed")
    led = r.world.ledger
    for ids in r.old_pointer_blocks.values():
        for i in ids:
            _expect(not led.blocks[i].freed, f"rejected, yet {led.blocks[i].describe()} freed")
    _expect(led.live() == impls.reachable(r.world), "rejected request leaked")


def prop_present_replace_absent_keep(params, caps, request, design: str) -> None:
    r = impls.run(params, request, design=design, caps=caps)
    if not r.outcome.ok:
        return
    for m in MEMBERS:
        if m.name in request:
            _expect(r.after[m.name] == expected_value(m.name, request[m.name]),
                    f"{m.name}: set {request[m.name]!r}, holds {r.after[m.name]!r}")
        else:
            _expect(r.after[m.name] == r.before[m.name], f"{m.name} changed though absent")
    if "block-bitmap-mapping" in request:
        _expect(r.has_bbm, "block-bitmap-mapping set but has_block_bitmap_mapping false")


def prop_ledger(params, caps, request, design: str) -> None:
    r = impls.run(params, request, design=design, caps=caps)
    _expect(r.heap_error is None, f"{design}: {r.heap_error}")
    if r.outcome.crash:
        return
    led = r.world.ledger
    for e in led.events:
        if e.op == "free":
            _expect(led.frees_of(e.block) == 1, f"block #{e.block} freed more than once")
    if r.outcome.ok:
        for name in POINTER_MEMBERS:
            if name in request:
                for i in r.old_pointer_blocks[name]:
                    _expect(led.frees_of(i) == 1,
                            f"replaced {led.blocks[i].describe()} freed {led.frees_of(i)} times")
    live, reach = led.live(), impls.reachable(r.world)
    _expect(live == reach, f"leak: live-but-unreachable "
                           f"{[led.blocks[i].describe() for i in sorted(live - reach)]}; "
                           f"reachable-but-freed {sorted(reach - live)}")


SEQUENTIAL = {
    "agree": prop_agree,
    "no-crash": prop_no_crash,
    "rejected-changes-nothing": prop_rejected_changes_nothing,
    "present-replace-absent-keep": prop_present_replace_absent_keep,
    "ledger": prop_ledger,
}


def sequential_expected(prop: str, design: str) -> str:
    return "fail" if (prop == "no-crash" and design == "open-coded") else "pass"


# --------------------------------------------------------------------------- race


def race_inputs(design: str):
    """Strategy for (request, members read, schedule)."""
    reqs = st.one_of(st.just({}), strategies.requests(names=RUNTIME_WHITELIST, max_members=2),
                     strategies.requests(names=TLS_MEMBERS, max_members=1),
                     strategies.requests(names=POINTER_MEMBERS, max_members=2),
                     strategies.requests(max_members=2))
    reads = st.lists(st.sampled_from(race.READ_MEMBERS), min_size=1, max_size=3)
    return st.tuples(reqs, reads, st.lists(st.integers(0, 1), max_size=12))


def prop_no_use_after_free(request, members, schedule, design: str) -> None:
    trial = race.interleave(request, members, schedule, design=design)
    if trial.violation:
        raise race.RaceFound(trial)


def find_race(design: str, max_examples: int = 300, seed: int | None = None):
    """Search interleavings for a violation under ``design``; the shrunk Trial or None."""
    found: list = []

    @settings(max_examples=max_examples, database=None, deadline=None,
              derandomize=seed is None, suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(race_inputs(design))
    def search(inputs):
        request, members, schedule = inputs
        prop_no_use_after_free(request, members, schedule, design)

    if seed is not None:
        search = hyp_seed(seed)(search)
    try:
        search()
    except race.RaceFound as e:
        found.append(e.trial)
    return found[0] if found else None


# --------------------------------------------------------------------------- sweep


def _run_one(body, strategy, max_examples: int, seed: int | None) -> tuple[str, int, str | None]:
    count = [0]

    @settings(max_examples=max_examples, database=None, deadline=None,
              derandomize=seed is None, suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(strategy)
    def test(args):
        count[0] += 1
        body(*args)

    if seed is not None:
        test = hyp_seed(seed)(test)
    try:
        test()
    except race.RaceFound as e:
        return "fail", count[0], e.trial.table()
    except Exception as e:  # noqa: BLE001 -- a sweep row, never an exception
        return "fail", count[0], f"{type(e).__name__}: {e}"
    return "pass", count[0], None


def _seq_strategy():
    return st.tuples(strategies.states(), strategies.requests())


#: rows whose expected verdict is "fail" search at least this many examples: a search
#: for a known hazard that gives up after 10 examples would report a misleading "pass"
HAZARD_BUDGET = 300


def sweep_size() -> int:
    """How many rows :func:`sweep` returns (a progress total, before it runs)."""
    sequential = sum(1 for prop in SEQUENTIAL for design in SEQ_DESIGNS
                     if not (prop == "agree" and design == "open-coded"))
    return sequential + 1 + len(impls.DESIGNS)  # + the merge-v1 ledger row + the races


def sweep(max_examples: int, seed: int | None = None) -> list[dict]:
    """Run every params property for ``max_examples`` examples (at least HAZARD_BUDGET for
    the rows expected to fail); one row per property and design: {"property", "design",
    "status", "examples", "failure", "expected", "seconds"}.  Never raises."""
    rows = []
    hazard = max(max_examples, HAZARD_BUDGET)
    for prop, fn in SEQUENTIAL.items():
        for design in SEQ_DESIGNS:
            if prop == "agree" and design == "open-coded":
                continue
            t0 = time.monotonic()
            try:
                status, n, failure = _run_one(
                    lambda state, request, fn=fn, d=design: fn(state[0], state[1], request, d),
                    _seq_strategy(),
                    hazard if sequential_expected(prop, design) == "fail" else max_examples,
                    seed)
            except Exception as e:  # noqa: BLE001
                status, n, failure = "fail", 0, f"{type(e).__name__}: {e}"
            rows.append({"property": f"params.{prop}", "design": design, "status": status,
                         "examples": n, "failure": failure,
                         "expected": sequential_expected(prop, design),
                         "seconds": round(time.monotonic() - t0, 3)})
    # v1 of the series leaked cpr-exec-command: the ledger property must find it
    t0 = time.monotonic()
    try:
        status, n, failure = _run_one(
            lambda state, request: prop_ledger(state[0], state[1], request, "merge-v1"),
            _seq_strategy(), hazard, seed)
    except Exception as e:  # noqa: BLE001
        status, n, failure = "fail", 0, f"{type(e).__name__}: {e}"
    rows.append({"property": "params.ledger", "design": "merge-v1", "status": status,
                 "examples": n, "failure": failure, "expected": "fail",
                 "seconds": round(time.monotonic() - t0, 3)})
    for design in impls.DESIGNS:
        t0 = time.monotonic()
        try:
            status, n, failure = _run_one(
                lambda request, members, schedule, d=design:
                    prop_no_use_after_free(request, members, schedule, d),
                race_inputs(design),
                hazard if RACE_EXPECTED[design] == "fail" else max_examples, seed)
        except Exception as e:  # noqa: BLE001
            status, n, failure = "fail", 0, f"{type(e).__name__}: {e}"
        rows.append({"property": "params.no-use-after-free", "design": design,
                     "status": status, "examples": n, "failure": failure,
                     "expected": RACE_EXPECTED[design],
                     "seconds": round(time.monotonic() - t0, 3)})
    return rows


__all__ = ["sweep", "sweep_size", "find_race", "SEQUENTIAL", "RACE_EXPECTED", "prop_no_use_after_free"]
