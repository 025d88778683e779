"""The designs of migrate-set-parameters, as step-by-step programs over a modelled heap.

Each design is a generator: every ``next()`` runs the C up to and including one
operation on *shared* memory (a store to, or a free of, something the migration thread
can reach) and yields a one-line description of it.  Private work (building tmp,
QAPI_MERGE into tmp, migrate_params_check) runs inside the step that follows it: it
touches no memory the migration thread can see, so it commutes with every reader step
and needs no scheduling point of its own.  Run sequentially (``run``), a design is
simply the whole command.

Designs (``DESIGNS``):

``open-coded``
    migration/options.c before the series: qmp_migrate_set_parameters() ->
    migrate_params_test_apply() (tmp = shallow copy of s->parameters, tls-* cloned from the
    request or cleared to NULL, block-bitmap-mapping / cpr-exec-command borrowed from the
    request) -> migrate_params_check(&tmp) -> migrate_params_apply(request): for each
    member the request has, free the old value of s->parameters and store a clone.
``merge``
    the QAPI_MERGE series (v2): tmp = QAPI_CLONE(MigrationParameters, &s->parameters);
    QAPI_MERGE(tmp, request) (output visitor -> QObject, dealloc-present visitor frees
    tmp's members the request replaces, input visitor allocates the new ones);
    migrate_params_check(tmp); then apply: free *every* pointer member of s->parameters
    (migrate_tls_opts_free + qapi_free_* / the dealloc visitor of patch 8) and
    QAPI_CLONE_MEMBERS(MigrationParameters, &s->parameters, tmp) -- memcpy of tmp over
    s->parameters, then a clone visit replacing each pointer in place; tmp freed by
    g_autoptr at return.
``whitelist``
    ``merge`` plus Peter Xu's rule: while a migration is active, a request naming any
    member outside schema.RUNTIME_WHITELIST is rejected before anything happens; the
    apply frees and replaces only the members the request has ("free then update" of
    the members being set).
``whitelist-free-all``
    the whitelist in front of ``merge``'s apply unchanged (frees every pointer member).
``swap``
    Fabiano Rosas's proposal: build a whole new MigrationParameters (clone + merge +
    check), publish it with one atomic pointer store, then free the old object at once.
``swap-rcu``
    ``swap`` with the old object freed only after a grace period (synchronize_rcu():
    every reader that could hold the old pointer has left its read-side section).
``merge-v1`` (HISTORICAL_DESIGNS)
    v1 of the series: its apply freed tls-*, block-bitmap-mapping but not
    cpr-exec-command before QAPI_CLONE_MEMBERS -- a leak the ledger property finds.

The whitelist error text is ours (no QEMU has this rule yet).
"""

from __future__ import annotations

from typing import Any

import attrs

from . import heap
from .heap import Block, Ledger, NullDeref, build, free_tree, value_of
from .schema import (
    BY_NAME,
    DEFAULT_HOST,
    MEMBERS,
    NAMES,
    POINTER_MEMBERS,
    RUNTIME_WHITELIST,
    TLS_MEMBERS,
    Host,
)
from .validate import NULL, Globals, params_check

DESIGNS = ("open-coded", "merge", "whitelist", "whitelist-free-all", "swap", "swap-rcu")
#: the designs the issue names; the CLI's --design choices are all of DESIGNS
MAIN_DESIGNS = ("open-coded", "merge", "whitelist", "swap")
#: historical: v1 of the series, which leaked cpr-exec-command (the ledger finds it)
HISTORICAL_DESIGNS = ("merge-v1",)

#: migration/options.c migrate_params_apply() member order (the open-coded apply)
APPLY_ORDER = (
    "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
    "cpu-throttle-tailslow", "tls-creds", "tls-hostname", "tls-authz", "max-bandwidth",
    "avail-switchover-bandwidth", "downtime-limit", "x-checkpoint-delay",
    "multifd-channels", "multifd-compression", "multifd-qatzip-level",
    "multifd-zlib-level", "multifd-zstd-level", "xbzrle-cache-size",
    "max-postcopy-bandwidth", "max-cpu-throttle", "announce-initial", "announce-max",
    "announce-rounds", "announce-step", "block-bitmap-mapping",
    "x-vcpu-dirty-limit-period", "vcpu-dirty-limit", "mode", "zero-page-detection",
    "direct-io", "cpr-exec-command",
)
assert sorted(APPLY_ORDER) == sorted(NAMES)

BLOCKED = object()  # yielded by a design waiting in synchronize_rcu()


def whitelist_error(name: str) -> str:
    return f"Parameter '{name}' cannot be changed while migration is active"


@attrs.define
class World:
    """The MigrationState the two threads share, on a ledgered heap."""

    ledger: Ledger
    design: str
    #: s->parameters: a Block whose value maps member -> C value.  Static storage (never
    #: freed) for the embedded designs; a heap object behind a pointer for swap*.
    cur: Block
    has_bbm: bool
    caps: frozenset
    migrating: bool
    host: Host = DEFAULT_HOST
    #: swap-rcu: readers inside rcu_read_lock(), with the cur they may hold
    rcu_readers: dict = attrs.field(factory=dict)

    def params(self, site: str = "query") -> dict:
        """The logical value of s->parameters (query-migrate-parameters, all members)."""
        fields = self.ledger.read(self.cur, site)
        return {m.name: value_of(self.ledger, m.type, fields[m.name], site) for m in MEMBERS}

    def globals(self) -> Globals:
        f = self.ledger.read(self.cur, "migrate_params_check globals")
        return Globals(caps=self.caps, multifd_compression=f["multifd-compression"],
                       tls_creds=value_of(self.ledger, "StrOrNull", f["tls-creds"],
                                          "migrate_tls()") or "")


def _ctype(name: str) -> str:
    return BY_NAME[name].type


def new_world(params: dict, *, design: str, caps=frozenset(), has_bbm: bool | None = None,
              migrating: bool = False, host: Host = DEFAULT_HOST) -> World:
    """migration_instance_init + earlier commands: s->parameters holding ``params``."""
    led = Ledger()
    site = "migration_instance_init"
    if has_bbm is None:
        has_bbm = bool(params["block-bitmap-mapping"])
    fields = {}
    for m in MEMBERS:
        v = params[m.name]
        fields[m.name] = build(led, m.type, v, f"s->parameters.{m.name}", site)
    kind = "MigrationParameters"
    if design.startswith("swap"):
        cur = led.alloc(kind, "*s->parameters", fields, site)
    else:
        cur = led.alloc(kind + " (static, in MigrationState)", "s->parameters", fields, site)
    return World(led, design, cur, has_bbm, frozenset(caps), migrating, host)


def alloc_request(world: World, request: dict) -> Block:
    """The QMP input visitor's MigrationParameters for the command's arguments."""
    fields: dict[str, Any] = {}
    for name, v in request.items():
        fields[name] = build(world.ledger, _ctype(name), v, f"request.{name}",
                             "qmp input visitor")
    return world.ledger.alloc("MigrationParameters", "request", fields, "qmp input visitor")


def free_request(world: World, req: Block) -> None:
    """qmp dispatch: qapi_free_MigrationParameters(arguments) after the command."""
    led = world.ledger
    fields = led.read(req, "qapi_free_MigrationParameters(request)")
    for name, ref in fields.items():
        free_tree(led, _ctype(name), ref, "qapi_free_MigrationParameters(request)")
    led.free(req, "qapi_free_MigrationParameters(request)")


@attrs.frozen
class Outcome:
    error: str | None = None
    crash: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.crash is None


# --------------------------------------------------------------------------- shared pieces


def _tls_opt_to_str(world: World, req: Block) -> None:
    """options.c tls_opt_to_str(): QTYPE_QNULL -> QTYPE_QSTRING "" in the request."""
    led = world.ledger
    fields = led.read(req, "tls_opt_to_str")
    for name in TLS_MEMBERS:
        ref = fields.get(name)
        if ref is None:
            continue
        box = led.read(ref, "tls_opt_to_str")
        if box["type"] == "QNULL":
            # qobject_unref(opt->u.n): the qnull_ singleton, never freed
            box["type"] = "QSTRING"
            box["s"] = led.alloc("char[]", f"request.{name}.u.s", "", "tls_opt_to_str g_strdup")


def _logical(world: World, fields: dict, site: str) -> dict:
    out = {}
    for m in MEMBERS:
        ref = fields[m.name]
        if m.type == "StrOrNull" and ref is None:
            out[m.name] = NULL
        else:
            out[m.name] = value_of(world.ledger, m.type, ref, site)
    return out


def _whitelist_check(world: World, request: dict) -> str | None:
    if world.migrating:
        for name in NAMES:  # reported in schema order: the first offender
            if name in request and name not in RUNTIME_WHITELIST:
                return whitelist_error(name)
    return None


def _clone_params(world: World, src: Block, path: str, site: str) -> Block:
    """QAPI_CLONE(MigrationParameters, src): a new struct and deep copies."""
    led = world.ledger
    f = led.read(src, site)
    fields = {}
    for m in MEMBERS:
        v = value_of(led, m.type, f[m.name], site)
        fields[m.name] = build(led, m.type, v, f"{path}.{m.name}", site)
    return led.alloc("MigrationParameters", path, fields, site)


def _merge(world: World, dst: Block, req: Block, path: str) -> None:
    """type-helpers.h QAPI_MERGE(MigrationParameters, dst, req): for each member the
    request has, the dealloc-present visitor frees dst's old value (pointer members) and
    the input visitor stores a fresh deep copy."""
    led = world.ledger
    site = "QAPI_MERGE"
    df = led.read(dst, site)
    rf = led.read(req, site)
    for m in MEMBERS:
        if m.name not in rf:
            continue
        if not m.scalar:
            free_tree(led, m.type, df[m.name], "QAPI_MERGE dealloc-present visitor")
            v = value_of(led, m.type, rf[m.name], site)
            df[m.name] = build(led, m.type, v, f"{path}.{m.name}", "QAPI_MERGE input visitor")
        else:
            df[m.name] = rf[m.name]


def _free_params(world: World, obj: Block, site: str) -> None:
    """qapi_free_MigrationParameters(obj)."""
    led = world.ledger
    f = led.read(obj, site)
    for m in MEMBERS:
        free_tree(led, m.type, f[m.name], site)
    led.free(obj, site)


def _describe(ref) -> str:
    if isinstance(ref, Block):
        return f"#{ref.id}"
    return "NULL" if ref is None else repr(ref)


# --------------------------------------------------------------------------- open-coded


def open_coded(world: World, req: Block, request: dict):
    """migration/options.c qmp_migrate_set_parameters() before the series."""
    led = world.ledger
    _tls_opt_to_str(world, req)
    rf = led.read(req, "migrate_params_test_apply")
    # migrate_params_test_apply(): *dest = s->parameters (shallow)
    tmp = dict(led.read(world.cur, "migrate_params_test_apply"))
    tmp_clones = []
    for name in TLS_MEMBERS:
        if name in rf:
            v = value_of(led, "StrOrNull", rf[name], "migrate_params_test_apply")
            tmp[name] = build(led, "StrOrNull", v, f"tmp.{name}", "migrate_params_test_apply")
            tmp_clones.append(tmp[name])
        else:
            tmp[name] = None  # "clear the reference, it's owned by s->parameters"
    for name, ref in rf.items():
        if name not in TLS_MEMBERS:
            tmp[name] = ref  # scalars copied, block-bitmap-mapping / cpr-exec-command borrowed
    try:
        err = params_check(_logical(world, tmp, "migrate_params_check"), world.globals(),
                           world.host)
    except NullDeref as e:
        return Outcome(crash=str(e))
    if err is None:
        cf = led.read(world.cur, "migrate_params_apply")
        for name in APPLY_ORDER:
            if name not in rf:
                continue
            m = BY_NAME[name]
            if m.scalar:
                cf[name] = rf[name]
                yield f"store s->parameters.{name} = {rf[name]!r}"
                continue
            old = cf[name]
            free_tree(led, m.type, old, f"migrate_params_apply: qapi_free_{m.type}")
            yield f"qapi_free_{m.type}(s->parameters.{name}) frees {_describe(old)}"
            if name == "block-bitmap-mapping":
                world.has_bbm = True
            v = value_of(led, m.type, rf[name], "migrate_params_apply QAPI_CLONE")
            new = build(led, m.type, v, f"s->parameters.{name}", "migrate_params_apply QAPI_CLONE")
            cf[name] = new
            yield f"s->parameters.{name} = QAPI_CLONE(...) = {_describe(new)}"
    # migrate_tls_opts_free(&tmp)
    for ref in tmp_clones:
        free_tree(led, "StrOrNull", ref, "migrate_tls_opts_free(&tmp)")
    return Outcome(error=err)


# --------------------------------------------------------------------------- the series


#: v1 of the series (patch 3/9, January 2026) freed these before QAPI_CLONE_MEMBERS and
#: forgot cpr-exec-command (Peter Xu spotted it; v2 frees it: "Properly freeing ptr
#: members in patch 2/9")
V1_FREED = ("tls-creds", "tls-hostname", "tls-authz", "block-bitmap-mapping")


def merge(world: World, req: Block, request: dict, *, whitelist: bool = False,
          free_all: bool = True, freed=POINTER_MEMBERS):
    """The series: QAPI_CLONE + QAPI_MERGE + check + apply (see module docstring)."""
    led = world.ledger
    if whitelist:
        err = _whitelist_check(world, request)
        if err is not None:
            return Outcome(error=err)
    tmp = _clone_params(world, world.cur, "tmp", "QAPI_CLONE(MigrationParameters, &s->parameters)")
    _tls_opt_to_str(world, req)
    _merge(world, tmp, req, "tmp")
    tf = led.read(tmp, "migrate_params_check")
    err = params_check(_logical(world, tf, "migrate_params_check"), world.globals(), world.host)
    if err is None:
        if "block-bitmap-mapping" in request:
            world.has_bbm = True
        cf = led.read(world.cur, "migrate_params_apply")
        if free_all:
            # free every pointer member of s->parameters, then QAPI_CLONE_MEMBERS
            # (v2 patch 3: migrate_tls_opts_free(cur), qapi_free_BitmapMigration...,
            # qapi_free_strList(cur->cpr_exec_command); patch 8: the dealloc visitor)
            for name in freed:
                m = BY_NAME[name]
                old = cf[name]
                free_tree(led, m.type, old, "migrate_params_apply: free s->parameters members")
                yield f"free s->parameters.{name} ({_describe(old)})"
            cf.update(tf)  # QAPI_CLONE_MEMBERS: memcpy(&s->parameters, tmp, sizeof)
            yield "memcpy(&s->parameters, tmp): pointer members now alias tmp's"
            for name in POINTER_MEMBERS:
                m = BY_NAME[name]
                v = value_of(led, m.type, cf[name], "QAPI_CLONE_MEMBERS clone visitor")
                cf[name] = build(led, m.type, v, f"s->parameters.{name}",
                                 "QAPI_CLONE_MEMBERS clone visitor")
                yield f"clone visitor: s->parameters.{name} = {_describe(cf[name])}"
        else:
            for m in MEMBERS:
                if m.name not in request:
                    continue
                if m.scalar:
                    cf[m.name] = tf[m.name]
                    yield f"store s->parameters.{m.name} = {tf[m.name]!r}"
                    continue
                old = cf[m.name]
                free_tree(led, m.type, old, "apply: dealloc-present visitor")
                yield f"free s->parameters.{m.name} ({_describe(old)})"
                v = value_of(led, m.type, tf[m.name], "apply: clone")
                cf[m.name] = build(led, m.type, v, f"s->parameters.{m.name}", "apply: clone")
                yield f"s->parameters.{m.name} = clone = {_describe(cf[m.name])}"
    _free_params(world, tmp, "g_autoptr(MigrationParameters) tmp")
    return Outcome(error=err)


def swap(world: World, req: Block, request: dict, *, rcu: bool = False):
    """Build a whole new object, publish it with one pointer store, free the old one."""
    led = world.ledger
    new = _clone_params(world, world.cur, "new", "QAPI_CLONE(MigrationParameters, s->parameters)")
    _tls_opt_to_str(world, req)
    _merge(world, new, req, "new")
    nf = led.read(new, "migrate_params_check")
    err = params_check(_logical(world, nf, "migrate_params_check"), world.globals(), world.host)
    if err is not None:
        _free_params(world, new, "qapi_free_MigrationParameters(new)")
        return Outcome(error=err)
    if "block-bitmap-mapping" in request:
        world.has_bbm = True
    old = world.cur
    world.cur = new
    yield f"qatomic_set(&s->parameters, #{new.id}) (old #{old.id})"
    if rcu:
        # synchronize_rcu(): wait for every reader that may hold ``old``
        while any(held is old for held in world.rcu_readers.values()):
            yield BLOCKED
        yield "synchronize_rcu() returns: no reader holds the old object"
    _free_params(world, old, "qapi_free_MigrationParameters(old)")
    yield f"qapi_free_MigrationParameters(old #{old.id})"
    return Outcome()


def command(world: World, request: dict):
    """The main thread's migrate-set-parameters under ``world.design`` (a generator whose
    return value is the Outcome).  The request is allocated and freed as QMP does."""
    req = alloc_request(world, request)
    d = world.design
    if d == "open-coded":
        out = yield from open_coded(world, req, request)
    elif d == "merge":
        out = yield from merge(world, req, request)
    elif d == "whitelist":
        out = yield from merge(world, req, request, whitelist=True, free_all=False)
    elif d == "whitelist-free-all":
        out = yield from merge(world, req, request, whitelist=True, free_all=True)
    elif d == "merge-v1":
        out = yield from merge(world, req, request, freed=V1_FREED)
    elif d == "swap":
        out = yield from swap(world, req, request)
    elif d == "swap-rcu":
        out = yield from swap(world, req, request, rcu=True)
    else:
        raise ValueError(f"unknown design {d!r}")
    if out.crash is None:  # a crashed QEMU frees nothing more
        free_request(world, req)
    return out


@attrs.frozen
class Result:
    """One sequential run of a command."""

    outcome: Outcome
    before: dict
    after: dict | None  # None when the command crashed or broke the heap
    has_bbm: bool
    heap_error: str | None
    world: World
    old_pointer_blocks: dict  # member -> [block ids] reachable before the command


def run(params: dict, request: dict, *, design: str, caps=frozenset(),
        has_bbm: bool | None = None, migrating: bool = False,
        host: Host = DEFAULT_HOST) -> Result:
    """Run one migrate-set-parameters to completion on a fresh world."""
    world = new_world(params, design=design, caps=caps, has_bbm=has_bbm,
                      migrating=migrating, host=host)
    before = world.params()
    led = world.ledger
    f = led.read(world.cur, "snapshot")
    old_blocks = {name: [b.id for b in heap.blocks_of(led, BY_NAME[name].type, f[name], "snap")]
                  for name in POINTER_MEMBERS}
    gen = command(world, request)
    heap_error = None
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        out = stop.value
    except heap.HeapError as e:
        out, heap_error = Outcome(crash=str(e)), str(e)
    after = None
    if heap_error is None and out.crash is None:
        try:
            after = world.params()
        except heap.HeapError as e:
            heap_error = str(e)
    return Result(out, before, after, world.has_bbm, heap_error, world, old_blocks)


def reachable(world: World) -> set[int]:
    """Block ids reachable from s->parameters (the static struct included)."""
    led = world.ledger
    out = {world.cur.id}
    f = led.read(world.cur, "reachable")
    for m in MEMBERS:
        out.update(b.id for b in heap.blocks_of(led, m.type, f[m.name], "reachable"))
    return out
