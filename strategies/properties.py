"""The property suite: engine-agnostic, importable by pytest and by a ``run`` campaign.

Every property is a ``check_*`` function that takes concrete objects and raises
:class:`PropertyFailed` (an AssertionError) with a readable message, plus a builder that
wraps it in ``@given`` for one (engine, variant, family) point::

    from strategies import properties
    test = properties.build("round-trip", engine="optimized", variant="alloc",
                            family="auto-array")
    test()                       # runs under the active Hypothesis profile
    properties.run("round-trip", engine="optimized", max_examples=200)  # whole grid

A failing example is written out as a case file (``note()``: shown with the falsifying
example; see ``strategies.cases``), so it can be replayed by ``vmstate-conformance``.

Properties (:data:`PROPERTIES`):

``round-trip``
    save -> load into a *matching destination* -> the source state, every variant.
    Matching (``strategies.values.destinations(kind="matching")``): legacy pointer arrays
    (qemu-7.2, legacy, and non-allocating arrays everywhere) have the source's NULL
    pattern, because the destination decides where markers are; element-allocating
    arrays (auto-alloc AUTO_ALLOC, alloc ARRAY_OF_POINTER|ALLOC) have all-NULL slots,
    because QEMU 11 asserts it.  The stream is loaded with QEMU_VM_EOF (0x00) appended
    as QEMU's tests do: without it the subsection peek hits the end and leaves a sticky
    -EIO (the outcome's ``sticky-eof`` hazard).
``valid-trees``
    every generated tree and valid flag set passes ``check()`` (no error, no warning).
``invalid-flags``
    every invalid flag set is reported with exactly its rule at its path, and an engine
    refuses (``rejected``) a description with an error rule.
``variant-equivalence``
    an auto-alloc tree translated to alloc saves identical bytes and loads to an equal
    outcome; every difference falls in :data:`DIVERGENCE_CLASSES`.
``legacy-compat``
    trees without element allocation save identical bytes and load equal states in all
    four variants (pointer-array ``.size`` set per variant convention: 8 for
    qemu-7.2/legacy, 0 for auto-alloc/alloc).
``robustness``
    any mutated stream and any destination kind give an Outcome, never an exception;
    saving any destination state as a source does too.
``truncation``
    QEMU's load_vmstate() protocol on fixed-layout trees: 0 bytes, n-2, the first half
    and the second half fail (with the file error set), the full stream + 0x00 loads.
"""

from __future__ import annotations

import traceback

import attrs
from hypothesis import HealthCheck, event, given, note, target
from hypothesis import settings as _settings
from hypothesis import strategies as st

from conformance import engines as _engines
from conformance.model import variants as _variants
from conformance.model.check import RULES, check
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.outcome import KINDS, Outcome
from conformance.model.state import canonical, to_plain
from conformance.names import VARIANT_NAMES
from strategies.cases import case_text, make_case
from strategies.descriptions import FAMILIES, descriptions, variant_families
from strategies.flagsets import flag_sets
from strategies.streams import mutated_streams
from strategies.values import DESTINATION_KINDS, destinations, states

OUTCOME_KINDS = KINDS + ("rejected",)
#: QEMU_VM_EOF, appended after a VMSD's bytes in QEMU's unit tests
EOF_TRAILER = b"\x00"
#: what a real stream has after a device section: a footer, more sections, QEMU_VM_EOF
#: and the vmdesc JSON; at least 2 + 255 bytes, so a subsection peek (type, length,
#: up to 255 name bytes) never runs off the end.  Zeros: never a subsection header.
STREAM_TRAILER = b"\x00" * 260

#: documented ways auto-alloc and alloc may legitimately differ (docs/variants.md)
DIVERGENCE_CLASSES = {
    "asserted-precondition": "auto-alloc's ledger records each `*pptr == NULL` assertion "
                             "that held; alloc asserts nothing (compared without them)",
    "populated-auto-slot": "a destination slot of an element-allocating array is not NULL: "
                           "auto-alloc asserts (*pptr == NULL); alloc allocates over it "
                           "(leak) or keeps it when the marker is NULL (stale slot)",
    "array-alloc": "POINTER|ALLOC on an element-allocating array: auto-alloc allocates the "
                   "pointer array non-zeroed (then reads indeterminate slots); alloc "
                   "never allocates an array of pointers",
    "check-rules": "alloc's vmstate_check does not require ARRAY/VARRAY for "
                   "ARRAY_OF_POINTER|ALLOC (13/17 moved the test to the else branch)",
}


class PropertyFailed(AssertionError):
    pass


def _fail(message: str) -> None:
    raise PropertyFailed(message)


def engine(name_or_module="reference"):
    """An engine module from its name (``conformance.engines.get``) or the module."""
    if isinstance(name_or_module, str):
        return _engines.get(name_or_module)
    return name_or_module


# ---------------------------------------------------------------------------------------
# Checks on concrete objects


def check_round_trip(eng, variant, desc: Description, source: dict, dest: dict) -> None:
    saved = eng.save(desc, source, variant)
    if not saved.ok:
        _fail(f"save of a valid state failed: {saved.summary()}")
    target(float(len(saved.data)), label="stream bytes")
    loaded = eng.load(desc, saved.data + STREAM_TRAILER, dest, variant)
    if not loaded.ok:
        _fail(f"load into a matching destination failed: {loaded.summary()} "
              f"(messages {list(loaded.messages)})")
    if bytes(loaded.data) != bytes(saved.data):
        _fail(f"load consumed {len(loaded.data)} bytes, save wrote {len(saved.data)}")
    if loaded.hazards:
        _fail(f"clean round trip reported hazards: {loaded.hazards}")
    if loaded.file_error:
        _fail(f"load left the file error {loaded.file_error} with the EOF byte present")
    if canonical(loaded.state) != canonical(source):
        _fail(f"loaded state differs from the source:\n  source {source!r}\n"
              f"  loaded {loaded.state!r}")
    # QEMU's unit tests append one byte only; a value that starts like a subsection
    # header (0x05, length) then makes the peek run off the end: a sticky -EIO
    short = eng.load(desc, saved.data + EOF_TRAILER, dest, variant)
    if not short.ok or short.file_error:
        if short.file_error != -5 and short.ret != -5:
            _fail(f"with QEMU's one-byte trailer the load failed other than by the "
                  f"subsection peek's EOF: {short.summary()} (file error {short.file_error})")
        event("eof-trick: one-byte trailer hit EOF in a subsection peek")


def check_valid_tree(variant, desc: Description) -> None:
    found = check(desc, variant)
    if found:
        _fail(f"generated tree is not valid under {variant}: {[str(f) for f in found]}")


def check_invalid_flags(eng, variant, flagset) -> None:
    found = check(flagset.description, variant)
    got = {(f.rule, f.path) for f in found}
    want = {(flagset.rule, flagset.path)}
    if got != want:
        _fail(f"expected exactly {want}, check() reported {sorted(got)}")
    severity = RULES[flagset.rule][0]
    if any(f.severity != severity for f in found):
        _fail(f"rule {flagset.rule} reported with the wrong severity: {found}")
    if severity == "error":
        out = eng.save(flagset.description, {}, variant)
        if out.kind != "rejected" or flagset.rule not in (out.message or ""):
            _fail(f"engine did not reject the {flagset.rule} description: {out.summary()}")


def translate(desc: Description, from_variant, to_variant):
    """``conformance.model.translate.translate`` when it exists, else the local mapping
    AUTO_ALLOC -> ARRAY_OF_POINTER|ALLOC (auto-alloc -> alloc only).

    conformance/translate.py has landed; the local mapping is kept only as a fallback
    for trees checked out without it.
    """
    try:
        from conformance.model.translate import translate as real  # type: ignore
    except ImportError:
        real = None
    if real is not None:
        return real(desc, from_variant, to_variant)
    return _local_translate(desc, _variants.get(from_variant).name,
                            _variants.get(to_variant).name)


class TranslationFailed(ValueError):
    pass


def _local_translate(desc: Description, src: str, dst: str) -> Description:
    if (src, dst) != ("auto-alloc", "alloc"):
        raise TranslationFailed(f"local mapping only covers auto-alloc -> alloc, not {src} -> {dst}")
    memo: dict[int, Description] = {}

    def tr_field(f: Field) -> Field:
        flags = f.flags
        if flags & F.AUTO_ALLOC:
            if flags & F.ALLOC:
                raise TranslationFailed(f"{f.name}: AUTO_ALLOC|ALLOC has no alloc spelling")
            flags = (flags & ~F.AUTO_ALLOC) | F.ARRAY_OF_POINTER | F.ALLOC
        elif flags & F.ARRAY_OF_POINTER and flags & F.ALLOC:
            raise TranslationFailed(f"{f.name}: ARRAY_OF_POINTER|ALLOC would become "
                                    "element-allocating under alloc")
        return attrs.evolve(f, flags=flags,
                            vmsd=tr(f.vmsd) if f.vmsd is not None else None,
                            key_vmsd=tr(f.key_vmsd) if f.key_vmsd is not None else None)

    def tr(d: Description) -> Description:
        if id(d) not in memo:
            memo[id(d)] = attrs.evolve(d, fields=[tr_field(f) for f in d.fields],
                                       subsections=[tr(s) for s in d.subsections])
        return memo[id(d)]

    return tr(desc)


def _auto_slots_populated(desc: Description, dest, variant) -> bool:
    """Does ``dest`` hold an object in a slot of an element-allocating array?"""
    v = _variants.get(variant)

    def visit(d: Description, struct) -> bool:
        if not isinstance(struct, dict):
            return False
        for f in _fields_with_subs(d):
            value = struct.get(f.member) if f.member else None
            if f.flags & F.ARRAY_OF_POINTER and v.is_auto(f) and isinstance(value, list):
                if any(x is not None for x in value):
                    return True
            if f.vmsd is not None and f.flags & (F.STRUCT | F.VSTRUCT):
                items = value if isinstance(value, list) else [value]
                if any(visit(f.vmsd, x) for x in items):
                    return True
        return False

    return visit(desc, dest)


def _fields_with_subs(d: Description):
    yield from d.fields
    for s in d.subsections:
        yield from _fields_with_subs(s)


def divergence_class(desc_a, desc_b, dest, out_a: Outcome, out_b: Outcome,
                     variant_a="auto-alloc", variant_b="alloc") -> str | None:
    """The documented class a difference between two variants' outcomes falls in."""
    if out_a.kind == "rejected" or out_b.kind == "rejected":
        return "check-rules"
    if _auto_slots_populated(desc_a, dest, variant_a):
        return "populated-auto-slot"
    for _, f in desc_a.all_fields():
        if f.flags & F.AUTO_ALLOC and f.flags & F.ALLOC and f.flags & F.POINTER:
            return "array-alloc"
    return None


def _without_held_preconditions(out: Outcome) -> Outcome:
    """The outcome without ledger records of assertions that held (auto-alloc records
    ``*pptr == NULL`` per slot; alloc has no such assertion): class ``asserted-precondition``."""
    ledger = tuple(x for x in out.ledger if not (type(x).__name__ == "Precondition"
                                                  and getattr(x, "held", False)))
    if len(ledger) != len(out.ledger):
        event("divergence:asserted-precondition")
        return attrs.evolve(out, ledger=ledger)
    return out


def check_variant_equivalence(eng, desc: Description, source: dict, dest: dict,
                              dest_kind: str) -> None:
    try:
        other = translate(desc, "auto-alloc", "alloc")
    except (TranslationFailed, ValueError, KeyError) as exc:
        event(f"translate:failed:{type(exc).__name__}")
        return
    if other is None:
        event("translate:failed:None")
        return
    event("translate:ok")
    a = eng.save(desc, source, "auto-alloc")
    b = eng.save(other, source, "alloc")
    if a.kind != b.kind or bytes(a.data) != bytes(b.data):
        cls = divergence_class(desc, other, source, a, b)
        if cls is None:
            _fail(f"save differs: auto-alloc {a.summary()} {a.data.hex()} / "
                  f"alloc {b.summary()} {b.data.hex()}")
        event(f"divergence:{cls}")
        return
    if not a.ok:
        return
    la = _without_held_preconditions(eng.load(desc, a.data + STREAM_TRAILER, dest, "auto-alloc"))
    lb = _without_held_preconditions(eng.load(other, b.data + STREAM_TRAILER, dest, "alloc"))
    if la != lb:
        cls = divergence_class(desc, other, dest, la, lb)
        if cls is None:
            _fail(f"load differs ({dest_kind} destination):\n  auto-alloc {la.summary()}\n"
                  f"  alloc      {lb.summary()}\n  {outcome_diff(la, lb)}")
        event(f"divergence:{cls}")
    elif dest_kind == "matching" and not la.ok:
        _fail(f"matching destination failed in both variants: {la.summary()}")


def adapt_to_variant(desc: Description, variant) -> Description:
    """Non-allocating pointer arrays spelled per the variant's ``.size`` convention."""
    v = _variants.get(variant)
    size = 8 if v.pointer_array_size == "stride" else 0
    memo: dict[int, Description] = {}

    def fix(f: Field) -> Field:
        changes = {}
        if f.flags & F.ARRAY_OF_POINTER and not v.is_auto(f):
            changes["size"] = size
        if f.vmsd is not None:
            changes["vmsd"] = tr(f.vmsd)
        if f.key_vmsd is not None:
            changes["key_vmsd"] = tr(f.key_vmsd)
        return attrs.evolve(f, **changes) if changes else f

    def tr(d: Description) -> Description:
        if id(d) not in memo:
            memo[id(d)] = attrs.evolve(d, fields=[fix(f) for f in d.fields],
                                       subsections=[tr(s) for s in d.subsections])
        return memo[id(d)]

    return tr(desc)


_COMPARABLE = ("kind", "op", "data", "state", "message", "messages", "ret", "offset", "path",
               "hazards", "ledger", "file_error")


def outcome_diff(a: Outcome, b: Outcome) -> str:
    """Which parts of two outcomes differ (for failure messages)."""
    parts = []
    for name, x, y in zip(_COMPARABLE, a.comparable(), b.comparable(), strict=True):
        if x != y:
            parts.append(f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}")
    if a.vmdesc != b.vmdesc:
        parts.append("vmdesc differs")
    return "; ".join(parts) or "no difference"


def check_legacy_compat(eng, desc: Description, source: dict, dest: dict) -> None:
    saved = {}
    loaded = {}
    names = VARIANT_NAMES
    if any(f.flags & F.MULTIPLY_ELEMENTS for _, f in desc.all_fields()):
        # class X: QEMU master's vmstate_n_elems() ignores VMS_MULTIPLY_ELEMENTS, so the
        # variants on master's conventions save other bytes by design (docs/variants.md)
        names = tuple(n for n in VARIANT_NAMES if _variants.get(n).multiply_elements)
        event("legacy-compat: MULTIPLY_ELEMENTS, compared where vmstate_n_elems honours it")
    for name in names:
        d = adapt_to_variant(desc, name)
        problems = [str(f) for f in check(d, name)]
        if problems:
            _fail(f"{name} rejects a tree without element allocation: {problems}")
        saved[name] = eng.save(d, source, name)
        if saved[name].ok:
            loaded[name] = eng.load(d, saved[name].data + STREAM_TRAILER, dest, name)
    first = names[0]
    for name in names[1:]:
        if saved[name].kind != saved[first].kind or saved[name].data != saved[first].data:
            _fail(f"bytes differ: {first} {saved[first].data.hex()} ({saved[first].kind}) / "
                  f"{name} {saved[name].data.hex()} ({saved[name].kind})")
    if not saved[first].ok:
        _fail(f"save failed everywhere: {saved[first].summary()}")
    for name in names:
        out = loaded[name]
        if not out.ok:
            _fail(f"{name}: load into a matching destination failed: {out.summary()}")
        if canonical(out.state) != canonical(loaded[first].state):
            _fail(f"loaded states differ: {first} {loaded[first].state!r} / "
                  f"{name} {out.state!r}")


def check_outcome(out, data: bytes, what: str) -> None:
    if not isinstance(out, Outcome):
        _fail(f"{what} returned {type(out).__name__}, not an Outcome")
    if out.kind not in OUTCOME_KINDS:
        _fail(f"{what}: unknown outcome kind {out.kind!r}")
    if out.op == "load" and not bytes(data).startswith(bytes(out.data)):
        _fail(f"{what}: consumed bytes are not a prefix of the input")
    event(f"outcome:{out.kind}")


def _guard(what: str, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except MemoryError:
        _fail(f"{what} raised MemoryError: memory sized by a count or size read from the "
              f"stream\n{traceback.format_exc(limit=-8)}")
    except Exception as exc:  # the property: no uncaught exception, ever
        _fail(f"{what} raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-8)}")


#: a modelled host where g_malloc() of more than this aborts (conformance.model.limits.MALLOC_LIMIT
#: is 1 TiB): mutated counters then end in an ``abort`` outcome early, for both engines
ROBUSTNESS_MALLOC_LIMIT = 1 << 24
#: address-space head-room for one load: past it a MemoryError is a property failure,
#: not an OOM kill of the test worker
ROBUSTNESS_MEMORY = 1 << 30


class _Limits:
    """Temporarily lower the reference's malloc limit and the process address space."""

    def __enter__(self):
        from conformance.model import limits

        self.ref = limits
        self.old_limit = limits.MALLOC_LIMIT
        limits.MALLOC_LIMIT = min(self.old_limit, ROBUSTNESS_MALLOC_LIMIT)
        self.old_rlimit = None
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            with open("/proc/self/statm") as fh:
                vm = int(fh.read().split()[0]) * resource.getpagesize()
            want = vm + ROBUSTNESS_MEMORY
            if (soft == resource.RLIM_INFINITY or soft > want) and (
                    hard == resource.RLIM_INFINITY or hard >= want):
                resource.setrlimit(resource.RLIMIT_AS, (want, hard))
                self.old_rlimit = (soft, hard)
        except (ImportError, OSError, ValueError):
            pass
        return self

    def __exit__(self, *exc):
        self.ref.MALLOC_LIMIT = self.old_limit
        if self.old_rlimit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.old_rlimit)
        return False


def check_robustness(eng, variant, desc: Description, data: bytes, dest: dict) -> None:
    with _Limits():
        _check_robustness(eng, variant, desc, data, dest)


def _check_robustness(eng, variant, desc: Description, data: bytes, dest: dict) -> None:
    out = _guard("load", eng.load, desc, data, dest, variant)
    check_outcome(out, data, "load")
    out = _guard("load (version 0)", eng.load, desc, data, dest, variant, version_id=0)
    check_outcome(out, data, "load")
    out = _guard("save of a destination state", eng.save, desc, dest, variant)
    check_outcome(out, b"", "save")


def _marker_error_leaves_file_error(variant, out: Outcome) -> bool:
    """A variant whose pointer-marker error sets no file error (decision
    ``marker_error_sets_file_error``), and this error is that one: its first message is
    vmstate_ptr_marker_load()'s."""
    v = _variants.get(variant)
    return (not v.decision("marker_error_sets_file_error") and bool(out.messages)
            and out.messages[0].startswith("Unexpected ptr marker"))


def check_truncation(eng, variant, desc: Description, source: dict, dest: dict) -> None:
    """tests/unit/test-vmstate.c load_vmstate() on a fixed-layout description."""
    saved = eng.save(desc, source, variant)
    if not saved.ok:
        _fail(f"save failed: {saved.summary()}")
    wire = saved.data + EOF_TRAILER
    n = len(wire)
    attempts = []
    if n > 1:  # a VMSD with no field bytes loads from nothing (nothing to truncate)
        attempts.append(("0 bytes", b""))
    if n > 3:
        attempts += [("n-2 bytes", wire[: n - 2]), ("first half", wire[: n // 2]),
                     ("second half", wire[n // 2: n // 2 + n // 2])]
    for label, data in attempts:
        out = eng.load(desc, data, dest, variant)
        if out.ok:
            _fail(f"loading {label} of {n} succeeded; QEMU's protocol expects a failure")
        if out.kind == "error" and not out.file_error:
            if _marker_error_leaves_file_error(variant, out):
                # QEMU master (class F): vmstate_load_vmsd() returns false on a pointer
                # marker error in the top-level description without qemu_file_set_error();
                # master's own test-vmstate pairing does not hold there either
                event("truncation: top-level ptr marker error, no file error (class F)")
                continue
            _fail(f"loading {label}: error {out.summary()} without the file error set "
                  "(QEMU's test asserts ret != 0 <=> qemu_file_get_error)")
    full = eng.load(desc, wire, dest, variant)
    if full.file_error == -5 and eng.load(desc, saved.data + STREAM_TRAILER, dest,
                                          variant).ok:
        # the EOF trick: bytes after a nested VMSD look like a subsection header and the
        # peek runs off QEMU's one-byte trailer (QEMU's own test would fail the same way)
        event("eof-trick: full load hit EOF in a subsection peek")
        return
    if not full.ok or full.file_error:
        _fail(f"the full load failed: {full.summary()} (file error {full.file_error})")
    if canonical(full.state) != canonical(source):
        _fail("the full load did not restore the source state")


# ---------------------------------------------------------------------------------------
# Hypothesis wrappers


#: while :func:`run_point` runs, the case of the latest failing example (Hypothesis
#: replays the shrunk example last, so after the run it is the shrunk one)
_CAPTURE: list | None = None


def _on_failure(desc, source, dest, variant, label: str, *, expect=None, load_input=None):
    """Note the failing example as a case file, and keep it for :func:`run_point`.

    ``expect``: the property's own claim as a case expectation (default: what the
    reference engine does), so the case replays the failure on any engine."""
    try:
        case = make_case(label, desc, source, dest, variant, expect=expect is None)
        if expect is not None or load_input is not None:
            case = attrs.evolve(case, expect=expect if expect is not None else case.expect,
                                load_input=load_input)
        note(f"case file ({label}):\n" + case_text(case))
        if _CAPTURE is not None:
            _CAPTURE.append(case)
    except Exception as exc:  # never mask the real failure
        note(f"(could not write the case: {exc})")


def _round_trip_claim(source) -> dict:
    """round-trip's claim as an expectation: the save succeeds, the load gives the source."""
    return {"save": {"kind": "ok"}, "load": {"kind": "ok", "state": to_plain(source)}}


def _body_round_trip(data, eng, variant, family):
    desc = data.draw(descriptions(variant, focus=family), label="description")
    source = data.draw(states(desc), label="source")
    dest = data.draw(destinations(desc, source, variant, kind="matching"), label="destination")
    try:
        check_round_trip(eng, variant, desc, source, dest)
    except AssertionError:
        _on_failure(desc, source, dest, variant, f"round-trip-{variant}-{family}",
                    expect=_round_trip_claim(source))
        raise


def _body_valid_trees(data, eng, variant, family):
    desc = data.draw(descriptions(variant, focus=family), label="description")
    check_valid_tree(variant, desc)
    flagset = data.draw(flag_sets(variant, valid=True), label="flag set")
    check_valid_tree(variant, flagset.description)


def _body_invalid_flags(data, eng, variant, family):
    flagset = data.draw(flag_sets(variant, valid=False), label="flag set")
    check_invalid_flags(eng, variant, flagset)


def _body_variant_equivalence(data, eng, variant, family):
    desc = data.draw(descriptions("auto-alloc", focus=family), label="description")
    source = data.draw(states(desc), label="source")
    kind = data.draw(st.sampled_from(DESTINATION_KINDS), label="destination kind")
    dest = data.draw(destinations(desc, source, "auto-alloc", kind=kind), label="destination")
    try:
        check_variant_equivalence(eng, desc, source, dest, kind)
    except AssertionError:
        _on_failure(desc, source, dest, "auto-alloc", f"variant-equivalence-{family}")
        raise


def _body_legacy_compat(data, eng, variant, family):
    fams = tuple(f for f in variant_families("legacy"))
    desc = data.draw(descriptions("legacy", focus=family if family in fams else None,
                                  families=fams), label="description")
    source = data.draw(states(desc), label="source")
    dest = data.draw(destinations(desc, source, "legacy", kind="matching"), label="destination")
    try:
        check_legacy_compat(eng, desc, source, dest)
    except AssertionError:
        _on_failure(desc, source, dest, "legacy", f"legacy-compat-{family}")
        raise


def _body_robustness(data, eng, variant, family):
    desc = data.draw(descriptions(variant, focus=family), label="description")
    mutation = data.draw(mutated_streams(desc, variant), label="mutation")
    note(f"mutation: {mutation.describe()}")
    dest = data.draw(destinations(desc, mutation.original.state, variant), label="destination")
    try:
        check_robustness(eng, variant, desc, mutation.data, dest)
    except AssertionError:
        # replayed as load_input: the load must give an outcome, not raise
        _on_failure(desc, mutation.original.state, dest, variant,
                    f"robustness-{variant}-{family}", expect={}, load_input=mutation.data)
        raise


def _body_truncation(data, eng, variant, family):
    desc = data.draw(descriptions(variant, focus=family, fixed_layout=True), label="description")
    source = data.draw(states(desc), label="source")
    dest = data.draw(destinations(desc, source, variant, kind="matching"), label="destination")
    try:
        check_truncation(eng, variant, desc, source, dest)
    except AssertionError:
        _on_failure(desc, source, dest, variant, f"truncation-{variant}-{family}")
        if _CAPTURE:
            _CAPTURE[-1] = attrs.evolve(_CAPTURE[-1], truncation=True)
        raise


@attrs.frozen
class Property:
    name: str
    body: object
    variants: tuple[str, ...]  # the variants it is parametrized over ("-" = none)
    families: tuple[str, ...]  # the families it is parametrized over ("-" = none)
    doc: str = ""

    def grid(self):
        for variant in self.variants:
            fams = self.families
            if fams == FAMILIES and variant in _variants.VARIANTS:
                fams = variant_families(variant)
            for family in fams:
                yield variant, family


_FIXED = ("scalar", "array", "struct", "buffer", "pointer", "pointer-array")
PROPERTIES: dict[str, Property] = {p.name: p for p in (
    Property("round-trip", _body_round_trip, VARIANT_NAMES, FAMILIES,
             "save -> load into a matching destination -> equal state"),
    Property("valid-trees", _body_valid_trees, VARIANT_NAMES, ("-",),
             "every generated tree and valid flag set passes check()"),
    Property("invalid-flags", _body_invalid_flags, VARIANT_NAMES, ("-",),
             "every invalid flag set is rejected with its rule"),
    Property("variant-equivalence", _body_variant_equivalence, ("auto-alloc->alloc",),
             ("auto-array", "struct", "subsection", "varray"),
             "auto-alloc vs alloc: identical bytes, equal outcomes or a documented class"),
    Property("legacy-compat", _body_legacy_compat, ("all",),
             tuple(f for f in FAMILIES if f != "auto-array"),
             "no element allocation: identical bytes and states in every variant"),
    Property("robustness", _body_robustness, VARIANT_NAMES, FAMILIES,
             "mutated streams and any destination: an Outcome, never an exception"),
    Property("truncation", _body_truncation, VARIANT_NAMES, ("-",) + _FIXED[1:],
             "QEMU's load_vmstate truncation protocol on fixed-layout trees"),
)}


def build(name: str, engine_name="reference", variant: str = "legacy",
          family: str | None = None, *, settings: _settings | None = None):
    """The ``@given`` test for one point of a property's grid (call it to run it)."""
    prop = PROPERTIES[name]
    eng = engine(engine_name)
    fam = None if family in (None, "-") else family

    @given(st.data())
    def test(data):
        prop.body(data, eng, variant, fam)

    eng_name = getattr(eng, "NAME", getattr(eng, "__name__", "engine"))
    test.__name__ = test.__qualname__ = f"{name}[{eng_name}-{variant}-{family}]"
    # one database key per grid point: replays never cross parametrizations
    test.hypothesis.inner_test._hypothesis_internal_add_digest = (
        f"{name}|{eng_name}|{variant}|{family}".encode())
    if settings is not None:
        test = settings(test)
    return test


@attrs.frozen
class PointResult:
    """One grid point of a property run: ``message`` None when it passed; ``case`` the
    shrunk failing example as a case (None when the property has no case form)."""
    property: str
    engine: str
    variant: str
    family: str
    message: str | None
    case: object = None

    @property
    def passed(self) -> bool:
        return self.message is None


def run_point(name: str, engine_name: str, variant: str, family: str, *,
              max_examples: int | None = None, derandomize: bool = False) -> PointResult:
    """Run one grid point outside pytest; never raises for a property failure."""
    global _CAPTURE
    # a campaign runs outside pytest: no profile, so no deadline (noisy machines),
    # no example database in the current directory, and no health-check noise
    s = _settings(max_examples=max_examples or 100, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False,
                  derandomize=derandomize)
    test = build(name, engine_name, variant, family, settings=s)
    captured: list = []
    _CAPTURE = captured
    try:
        test()
    except Exception as exc:  # a property failure, whatever Hypothesis wraps it in
        return PointResult(name, engine_name, variant, family,
                           f"{type(exc).__name__}: {exc}", captured[-1] if captured else None)
    finally:
        _CAPTURE = None
    return PointResult(name, engine_name, variant, family, None)


def run(name: str, engine_name="reference", *, max_examples: int | None = None,
        variants=None, families=None) -> list[tuple[str, str, str | None]]:
    """Run a property over its grid (for a campaign); returns failures as
    (variant, family, message) and never raises for a property failure."""
    prop = PROPERTIES[name]
    failures = []
    for variant, family in prop.grid():
        if variants and variant not in variants:
            continue
        if families and family not in families:
            continue
        r = run_point(name, engine_name, variant, family, max_examples=max_examples)
        if not r.passed:
            failures.append((variant, family, r.message))
    return failures


__all__ = ["PROPERTIES", "DIVERGENCE_CLASSES", "Property", "PropertyFailed", "PointResult",
           "build", "run", "run_point",
           "check_round_trip", "check_valid_tree", "check_invalid_flags",
           "check_variant_equivalence", "check_legacy_compat", "check_robustness",
           "check_truncation", "translate", "adapt_to_variant", "divergence_class",
           "EOF_TRAILER", "STREAM_TRAILER"]
