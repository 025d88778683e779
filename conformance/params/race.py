"""The free-while-read race: the main thread's migrate-set-parameters against the
migration thread reading MigrationParameters without the BQL.

The migration thread's read of a member is modelled as the C does it: load the member
(for a pointer member, the pointer) from s->parameters, then dereference what it loaded.
Under the swap designs it first loads the s->parameters pointer itself (inside
rcu_read_lock() for swap-rcu).  The main thread is one of impls.DESIGNS, one shared
operation per step.

A schedule is a list of thread choices (0 = main thread, 1 = migration thread) that
Hypothesis draws and shrinks; when it runs out, the migration thread runs to its end,
then the main thread.  A read of freed memory (or a double free) stops the run: that is
the violation, and ``format_trace`` prints the interleaving as a numbered table.
"""

from __future__ import annotations

import attrs

from . import heap
from .heap import Ledger, value_of
from .impls import BLOCKED, World, command, new_world
from .schema import BY_NAME, DEFAULT_HOST, Host, defaults

MAIN, MIG = 0, 1
THREAD_NAMES = {MAIN: "main (QMP, BQL held)", MIG: "migration thread"}
#: what the migration thread may read; pointer members first (they shrink first)
READ_MEMBERS = ("tls-creds", "tls-hostname", "tls-authz", "block-bitmap-mapping",
                "cpr-exec-command", "downtime-limit", "max-bandwidth", "multifd-channels")


@attrs.frozen
class Step:
    n: int
    thread: int
    text: str
    kind: str = ""  # load | deref | free | store | other
    block: int | None = None


@attrs.frozen
class Trial:
    design: str
    request: dict
    members: tuple
    schedule: tuple
    trace: tuple
    violation: str | None
    racing: tuple  # the step numbers of (load, free, faulting access) for a violation
    outcome: object = None

    def table(self) -> str:
        return format_trace(self)


class RaceFound(AssertionError):
    def __init__(self, trial: Trial):
        self.trial = trial
        super().__init__("\n" + trial.table())


def reader(world: World, members, log: dict):
    """The migration thread: read each member of ``members`` (migrate_tls_creds() etc.
    in options.c, without the BQL)."""
    led = world.ledger
    swapped = world.design.startswith("swap")
    rcu = world.design == "swap-rcu"
    obj = world.cur
    if swapped:
        if rcu:
            world.rcu_readers["mig"] = None  # rcu_read_lock()
        obj = world.cur  # qatomic_rcu_read(&s->parameters)
        if rcu:
            world.rcu_readers["mig"] = obj
        log["current"] = log["step"]
        yield ("load", obj.id,
               f"{'rcu_read_lock(); ' if rcu else ''}p = qatomic_read(&s->parameters) = #{obj.id}")
    pname = "p->" if swapped else "s->parameters."
    for name in members:
        m = BY_NAME[name]
        fields = led.read(obj, f"migration thread: {pname}{name}")
        ref = fields[name]
        if m.scalar:
            yield ("read", None, f"read {pname}{name} = {ref!r}")
            continue
        if ref is None:
            yield ("load", None, f"load {pname}{name} = NULL")
            continue
        # loading a pointer reads s->parameters, not what it points to: a dangling
        # pointer loads fine and faults on the dereference
        log["current"] = log["step"]
        yield ("load", ref.id, f"load {pname}{name} = #{ref.id}")
        v = value_of(led, m.type, ref, f"migration thread: dereference {pname}{name}")
        yield ("deref", ref.id, f"dereference #{ref.id} ({name}) -> {v!r}")
    if rcu:
        del world.rcu_readers["mig"]
        yield ("other", None, "rcu_read_unlock()")


def _classify(text: str) -> str:
    if text.startswith(("free ", "qapi_free_")):
        return "free"
    return "store"


def interleave(request: dict, members, schedule, *, design: str, params: dict | None = None,
               caps=frozenset(), host: Host = DEFAULT_HOST) -> Trial:
    """Run the main thread's command and the migration thread's reads under ``schedule``."""
    params = defaults() if params is None else params
    world = new_world(params, design=design, caps=caps, migrating=True, host=host)
    led: Ledger = world.ledger
    log = {"step": 0, "current": None}
    main = command(world, request)
    mig = reader(world, members, log)
    alive = {MAIN: True, MIG: True}
    pending = list(schedule)
    trace: list[Step] = []
    frees_at: dict[int, int] = {}
    violation = None
    racing: tuple = ()
    outcome = None
    guard = 0
    while alive[MAIN] or alive[MIG]:
        guard += 1
        if guard > 10_000:
            raise RuntimeError("scheduler made no progress")
        want = pending.pop(0) if pending else MIG
        t = want if alive[want] else 1 - want
        n = len(trace) + 1
        log["step"] = n
        mark = len(led.events)
        try:
            if t == MAIN:
                text = next(main)
                if text is BLOCKED:
                    if not alive[MIG]:
                        raise RuntimeError("synchronize_rcu() waits for a finished reader")
                    # main cannot run: give the step to the migration thread
                    pending.insert(0, MIG)
                    continue
                kind, block = _classify(text), None
            else:
                kind, block, text = next(mig)
        except StopIteration as stop:
            alive[t] = False
            if t == MAIN:
                outcome = stop.value
                freed = [ev for ev in led.events[mark:] if ev.op == "free"]
                if freed:  # the work after the last shared store: g_autoptr, QMP dispatch
                    for ev in freed:
                        frees_at[ev.block] = n
                    sites = sorted({ev.site for ev in freed})
                    trace.append(Step(n, t, f"return: frees {len(freed)} block(s) "
                                            f"({'; '.join(sites)})", "free"))
            continue
        except heap.HeapError as e:
            b = e.block
            freed = frees_at.get(b.id)
            loaded = log["current"]
            trace.append(Step(n, t, f"{e.kind.upper()}: {b.describe()}, freed at step "
                                    f"{freed} ({b.free_site})", "fault", b.id))
            violation = str(e)
            racing = tuple(sorted(x for x in (loaded, freed, n) if x is not None))
            break
        for ev in led.events[mark:]:
            if ev.op == "free":
                frees_at[ev.block] = n
        trace.append(Step(n, t, text, kind, block))
    return Trial(design, dict(request), tuple(members), tuple(schedule), tuple(trace),
                 violation, racing, outcome)


def format_trace(trial: Trial) -> str:
    """The interleaving as a numbered table; racing steps marked with '>'."""
    lines = [f"design: {trial.design}",
             f"request (migrate-set-parameters arguments): {trial.request}",
             f"migration thread reads: {list(trial.members)}",
             f"schedule drawn: {list(trial.schedule)} (then: migration thread, then main)",
             "",
             f"  {'#':>2}  {'thread':<22}  step"]
    for s in trial.trace:
        mark = ">" if s.n in trial.racing else " "
        lines.append(f"{mark} {s.n:>2}  {THREAD_NAMES[s.thread]:<22}  {s.text}")
    if trial.violation:
        lines.append("")
        lines.append("racing steps: " + ", ".join(str(n) for n in trial.racing))
    else:
        lines.append("")
        lines.append("no violation")
    return "\n".join(lines)
