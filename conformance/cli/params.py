"""``params check REQUEST.json``: what migrate-set-parameters would do with a request.

    vmstate-conformance params check REQUEST.json [--during-migration]
        [--design open-coded|merge|whitelist|whitelist-free-all|swap|swap-rcu]
        [--current CURRENT.json] [--capability NAME ...] [--race N]
    python -m conformance.params check ...

Exit status: 0 accepted, 1 rejected or bad input (one line on stderr,
``file: JSON path: what is wrong``), 2 usage, 3 an internal error (one line).  Never a
traceback.

``add_subcommands(subparsers)`` adds the ``params`` group to another argparse parser
(``func`` set through set_defaults, returning the exit status); ``main(argv)`` runs it
standalone.
"""

from __future__ import annotations

import json
import sys

from conformance.errors import EXIT_FAIL as EXIT_REJECTED
from conformance.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from conformance.params import impls
from conformance.params.request import (
    RequestError,
    load_json,
    parse_capabilities,
    parse_current,
    parse_request,
)
from conformance.params.schema import BY_NAME, CAPABILITY_NAMES, NAMES, defaults
from conformance.params.validate import Globals, caps_check, params_check


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16 * 1024 * 1024 + 1)
    except OSError as e:
        raise RequestError("$", f"cannot read: {e.strerror or e}") from None


def _error_path(message: str) -> str:
    """The member a migrate_params_check() message is about, as a JSON path."""
    if message.startswith("Invalid mapping given for block-bitmap-mapping"):
        return "$.block-bitmap-mapping"
    if message.startswith("max_Option cpu_throttle"):
        return "$.max-cpu-throttle"
    for name in NAMES:
        c = BY_NAME[name].c
        if f"Option {c} " in message or f"Option {name} " in message or f"'{c}'" in message:
            return f"$.{name}"
    for name in NAMES:
        if f"'{name}'" in message:
            return f"$.{name}"
    return "$"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def cmd_check(args) -> int:
    """The ``params check`` command (argparse ``func``): never raises."""
    if args.race < 0:
        print("params check: --race must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _check(args)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 -- never a traceback
        print(f"{args.request}: $: internal error: {type(e).__name__}: {_one_line(e)}",
              file=sys.stderr)
        return EXIT_INTERNAL


def _check(args) -> int:
    where = args.request
    try:
        request = parse_request(load_json(_read(args.request)))
        params, caps = defaults(), frozenset()
        if args.current:
            where = args.current
            params = parse_current(load_json(_read(args.current)))
        where = "--capability"
        caps = parse_capabilities(args.capability or [])
        err = caps_check(caps, params)
        if err:
            raise RequestError("$", f"capabilities rejected by migrate_caps_check: {err}")
        if args.current:
            where = args.current
        err = params_check(dict(params), Globals(caps, params["multifd-compression"],
                                                 params["tls-creds"]))
        if err:
            raise RequestError(_error_path(err), f"current parameters are invalid: {err}")
    except RequestError as e:
        print(f"{where}: {e.path}: {_one_line(e.message)}", file=sys.stderr)
        return EXIT_REJECTED

    r = impls.run(params, request, design=args.design, caps=caps,
                  migrating=args.during_migration)
    if r.heap_error:
        print(f"{args.request}: $: model found a heap error: {_one_line(r.heap_error)}",
              file=sys.stderr)
        return EXIT_REJECTED
    if r.outcome.crash:
        print(f"{args.request}: $: QEMU would crash ({args.design}): "
              f"{_one_line(r.outcome.crash)}", file=sys.stderr)
        return EXIT_REJECTED
    if r.outcome.error:
        print(f"{args.request}: {_error_path(r.outcome.error)}: {_one_line(r.outcome.error)}",
              file=sys.stderr)
        return EXIT_REJECTED

    led = r.world.ledger
    shared = {i for ids in r.old_pointer_blocks.values() for i in ids}
    freed_shared = sorted(i for i in shared if led.blocks[i].freed)
    changed = {k: v for k, v in r.after.items() if r.before.get(k) != v}
    report = {
        "design": args.design,
        "during_migration": args.during_migration,
        "accepted": True,
        "changed": changed,
        "parameters": r.after,
        "has_block_bitmap_mapping": r.has_bbm,
        "ledger": {
            "allocations": sum(1 for e in led.events if e.op == "alloc"),
            "frees": sum(1 for e in led.events if e.op == "free"),
            "live": len(led.live()),
            "freed_blocks_the_migration_thread_can_reach": [
                led.blocks[i].describe() for i in freed_shared],
        },
    }
    if args.race:
        from conformance.params.race import READ_MEMBERS
        trial = _race_for(request, args.design, args.race, READ_MEMBERS)
        report["race"] = trial
    print(json.dumps(report, indent=2, sort_keys=False))
    return EXIT_OK


def _race_for(request, design, budget, members):
    """Search schedules of *this* request against the migration thread's reads."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from conformance.params.race import RaceFound, interleave

    found = []

    @settings(max_examples=budget, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(st.lists(st.sampled_from(members), min_size=1, max_size=3),
           st.lists(st.integers(0, 1), max_size=12))
    def search(mem, schedule):
        t = interleave(request, mem, schedule, design=design)
        if t.violation:
            raise RaceFound(t)

    try:
        search()
    except RaceFound as e:
        found.append(e.trial)
    if not found:
        return {"found": False, "examples": budget}
    return {"found": True, "interleaving": found[0].table().splitlines()}


def _group_help(parser):
    def show(args) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return show


def add_subcommands(subparsers) -> None:
    """Add the ``params`` command group to an argparse subparsers object."""
    p = subparsers.add_parser(
        "params", help="migration parameters: migrate-set-parameters model and its race",
        description="Model of QEMU's migrate-set-parameters (qapi/migration.json, "
                    "migration/options.c) and the free-while-read race found in the review of "
                    "'qapi: Use visitors for migration parameters handling' (Fabiano Rosas, v2).")
    p.set_defaults(func=_group_help(p))
    sub = p.add_subparsers(dest="params_command", metavar="SUBCOMMAND")
    c = sub.add_parser(
        "check", help="what migrate-set-parameters would do with REQUEST.json",
        description="Validate REQUEST.json (migrate-set-parameters arguments, or a whole "
                    "QMP command) like QEMU's QMP layer and migrate_params_check(), apply it "
                    "with the chosen design and print the result as JSON.  Exit 0 accepted, "
                    "1 rejected or bad input, 2 usage.")
    c.add_argument("request", metavar="REQUEST.json", help="the request (JSON file)")
    c.add_argument("--during-migration", action="store_true", default=False,
                   help="a migration is active (the whitelist designs then reject members "
                        "outside the runtime whitelist) (default: not migrating)")
    c.add_argument("--design", choices=impls.DESIGNS + impls.HISTORICAL_DESIGNS,
                   default="open-coded",
                   help="which set-parameters to model: open-coded (QEMU before the series), "
                        "merge (the series, v2), whitelist, whitelist-free-all, swap, "
                        "swap-rcu, merge-v1 (v1 of the series) (default: open-coded)")
    c.add_argument("--current", metavar="CURRENT.json", default=None,
                   help="current parameters, as query-migrate-parameters returns them; "
                        "absent members keep QEMU's defaults (default: QEMU's defaults)")
    c.add_argument("--capability", action="append", metavar="NAME", default=[],
                   help=f"an enabled migration capability, repeatable; one of "
                        f"{', '.join(CAPABILITY_NAMES)} (default: none)")
    c.add_argument("--race", type=int, default=0, metavar="N",
                   help="also search N schedules of this request against the migration "
                        "thread's reads and print the shrunk interleaving (default: 0, off)")
    c.set_defaults(func=cmd_check)


def main(argv: list[str] | None = None) -> int:
    """``python -m conformance.params``: parsed and run like every entry point."""
    from conformance.cli import Parser, parse, run

    parser = Parser(prog="python -m conformance.params",
                    description="migration parameters model")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_subcommands(sub)
    # standalone: ``check ...`` works as well as ``params check ...``
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "params" and not argv[0].startswith("-"):
        argv = ["params", *argv]
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        return run(args)
    except Exception as e:  # noqa: BLE001 -- never a traceback
        print(f"params: internal error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return EXIT_INTERNAL

