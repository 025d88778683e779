"""Migration parameters (conformance.params): the model, migrate_params_check rules,
the designs of migrate-set-parameters agreeing, and the allocation ledger."""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance.params import configrecord, heap, impls, properties, schema, strategies
from conformance.params.schema import defaults
from conformance.params.validate import NULL, Globals, bitmap_alias_map_check, params_check

DESIGNS = impls.DESIGNS


def _check(**changes):
    p = defaults()
    p.update(changes)
    return params_check(p, Globals())


# --------------------------------------------------------------------------- model


def test_members_match_qemu_10_2():
    # qapi/migration.json MigrateSetParameters in 10.2: 30 members, cpr-exec-command last
    assert len(schema.MEMBERS) == 30
    assert schema.NAMES[0] == "announce-initial" and schema.NAMES[-1] == "cpr-exec-command"
    assert set(schema.POINTER_MEMBERS) == {"tls-creds", "tls-hostname", "tls-authz",
                                           "block-bitmap-mapping", "cpr-exec-command"}
    assert all(schema.BY_NAME[n].scalar for n in schema.RUNTIME_WHITELIST)
    assert len(schema.RUNTIME_WHITELIST) == 11
    # the defaults pass migrate_params_check (QEMU checks them at start-up)
    assert params_check(defaults(), Globals()) is None


def test_members_by_release():
    assert set(schema.NAMES) - set(schema.members_in("10.0")) == {"cpr-exec-command"}
    assert schema.members_in("10.1") == schema.members_in("10.0")
    assert "multifd-qatzip-level" not in schema.members_in("9.1")


def test_capability_enum():
    assert "mapped-ram" in schema.CAPABILITY_NAMES and "compress" not in schema.CAPABILITY_NAMES
    assert set(schema.VALIDATED_CAPABILITIES) <= set(schema.CAPABILITY_NAMES)


# --------------------------------------------------------------------------- validation rules
# Hand-checked against migration/options.c migrate_params_check(), first failing rule wins.


@pytest.mark.parametrize("changes, message", [
    ({"throttle-trigger-threshold": 0},
     "Option throttle_trigger_threshold expects an integer in the range of 1 to 100"),
    ({"throttle-trigger-threshold": 101},
     "Option throttle_trigger_threshold expects an integer in the range of 1 to 100"),
    ({"cpu-throttle-initial": 100, "max-cpu-throttle": 99},
     "Option cpu_throttle_initial expects an integer in the range of 1 to 99"),
    ({"downtime-limit": 2000 * 1000 + 1},
     "Option downtime_limit expects an integer in the range of 0 to (2000 * 1000) ms"),
    ({"multifd-channels": 0}, "Option multifd_channels expects a value between 1 and 255"),
    ({"multifd-qatzip-level": 0}, "Option multifd_qatzip_level expects a value between 1 and 9"),
    ({"multifd-zstd-level": 21}, "Option multifd_zstd_level expects a value between 0 and 20"),
    ({"xbzrle-cache-size": 12288},
     "Option xbzrle_cache_size expects a power of two no less than the target page size"),
    ({"xbzrle-cache-size": 2048},
     "Option xbzrle_cache_size expects a power of two no less than the target page size"),
    # max_cpu_throttle below cpu_throttle_initial: QEMU's message, slip included
    ({"cpu-throttle-initial": 50, "max-cpu-throttle": 40},
     "max_Option cpu_throttle expects an integer in the range of cpu_throttle_initial to 99"),
    ({"announce-step": 0}, "Option announce_step expects a value between 0 and 10000"),
    ({"x-vcpu-dirty-limit-period": 1001},
     "Option x-vcpu-dirty-limit-period expects a value between 1 and 1000"),
    ({"vcpu-dirty-limit": 0}, "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"),
    # order: throttle_trigger_threshold is checked before multifd_channels
    ({"multifd-channels": 0, "throttle-trigger-threshold": 0},
     "Option throttle_trigger_threshold expects an integer in the range of 1 to 100"),
])
def test_params_check_rules(changes, message):
    assert _check(**changes) == message


def test_params_check_boundaries_pass():
    assert _check(**{"throttle-trigger-threshold": 100, "downtime-limit": 2000 * 1000,
                     "xbzrle-cache-size": 4096, "max-cpu-throttle": 20,
                     "announce-step": 10000, "multifd-zstd-level": 20}) is None


def test_zero_copy_and_mapped_ram_rules():
    zc = Globals(caps=frozenset({"multifd", "zero-copy-send"}))
    p = defaults()
    p["multifd-compression"] = "zlib"
    assert params_check(p, zc) == ("Zero copy only available for non-compressed non-TLS "
                                   "multifd migration")
    p = defaults()
    p["tls-creds"] = "tls0"
    assert params_check(p, zc).startswith("Zero copy only")
    p["tls-creds"] = NULL  # what open-coded's test_apply leaves: C dereferences it
    with pytest.raises(heap.NullDeref):
        params_check(p, zc)
    # mapped-ram reads the *current* compression / TLS, not the checked ones
    mr = Globals(caps=frozenset({"multifd", "mapped-ram"}), multifd_compression="zlib")
    assert params_check(defaults(), mr).startswith("Mapped-ram only available")
    p = defaults()
    p["multifd-compression"] = "zlib"
    assert params_check(p, Globals(caps=frozenset({"multifd", "mapped-ram"}))) is None


@pytest.mark.parametrize("bbm, message", [
    ([{"node-name": "n", "alias": "9a", "bitmaps": []}], "The node alias '9a' is not well-formed"),
    ([{"node-name": "n" * 32, "alias": "a", "bitmaps": []}],
     f"The node name '{'n' * 32}' is longer than 31 bytes"),
    ([{"node-name": "n", "alias": "a", "bitmaps": []},
      {"node-name": "n", "alias": "b", "bitmaps": []}], "The node name 'n' is mapped twice"),
    ([{"node-name": "n", "alias": "a", "bitmaps": []},
      {"node-name": "m", "alias": "a", "bitmaps": []}], "The node alias 'a' is used twice"),
    ([{"node-name": "n", "alias": "a", "bitmaps": [{"name": "b", "alias": "x"},
                                                   {"name": "b", "alias": "y"}]}],
     "The bitmap 'n'/'b' is mapped twice"),
    ([{"node-name": "n", "alias": "a", "bitmaps": [{"name": "b", "alias": "x"},
                                                   {"name": "c", "alias": "x"}]}],
     "The bitmap alias 'a'/'x' is used twice"),
])
def test_block_bitmap_mapping_rules(bbm, message):
    # block-dirty-bitmap.c construct_alias_map(), name->alias pass then alias->name pass
    assert bitmap_alias_map_check(bbm) == message
    assert _check(**{"block-bitmap-mapping": bbm}) == (
        "Invalid mapping given for block-bitmap-mapping: " + message)


# --------------------------------------------------------------------------- hand cases


def test_open_coded_crashes_where_the_series_does_not():
    """options.c (the series' base): migrate_params_test_apply() sets tmp.tls_creds = NULL
    when the request has no tls-creds, and migrate_params_check() then evaluates
    ``*params->tls_creds->u.s`` when zero-copy-send is on.  The series clones all of
    s->parameters into tmp, so it answers."""
    caps = frozenset({"multifd", "zero-copy-send"})
    r = impls.run(defaults(), {"downtime-limit": 100}, design="open-coded", caps=caps)
    assert r.outcome.crash and "tmp.tls_creds is NULL" in r.outcome.crash
    r = impls.run(defaults(), {"downtime-limit": 100}, design="merge", caps=caps)
    assert r.outcome.ok and r.after["downtime-limit"] == 100
    # with tls-creds in the request, open-coded works too
    r = impls.run(defaults(), {"tls-creds": ""}, design="open-coded", caps=caps)
    assert r.outcome.ok


def test_null_tls_means_empty_string():
    p = defaults()
    p["tls-creds"] = "tls0"
    for d in DESIGNS:
        r = impls.run(p, {"tls-creds": None}, design=d)
        assert r.outcome.ok and r.after["tls-creds"] == "", d


def test_merge_frees_every_pointer_member_open_coded_only_the_replaced():
    p = defaults()
    p["cpr-exec-command"] = ["qemu", "-x"]
    oc = impls.run(p, {"downtime-limit": 1}, design="open-coded")
    mg = impls.run(p, {"downtime-limit": 1}, design="merge")
    old = [i for ids in oc.old_pointer_blocks.values() for i in ids]
    assert not any(oc.world.ledger.blocks[i].freed for i in old)
    old = [i for ids in mg.old_pointer_blocks.values() for i in ids]
    assert all(mg.world.ledger.blocks[i].freed for i in old)
    assert oc.after == mg.after


def test_ledger_finds_the_v1_leak():
    """v1 of the series freed tls-* and block-bitmap-mapping before QAPI_CLONE_MEMBERS
    but not cpr-exec-command (found in review); the ledger sees the old list leak."""
    p = defaults()
    p["cpr-exec-command"] = ["qemu-system-x86_64", "-S"]
    r = impls.run(p, {"downtime-limit": 1}, design="merge-v1")
    led = r.world.ledger
    leaked = led.live() - impls.reachable(r.world)
    assert {led.blocks[i].path for i in leaked} >= {"s->parameters.cpr-exec-command[0]"}
    with pytest.raises(properties.PropertyFailed, match="leak"):
        properties.prop_ledger(p, frozenset(), {"downtime-limit": 1}, "merge-v1")
    properties.prop_ledger(p, frozenset(), {"downtime-limit": 1}, "merge")


def test_ledger_catches_double_free():
    led = heap.Ledger()
    s = heap.build(led, "str", "x", "t", "test")
    heap.free_tree(led, "str", s, "first")
    with pytest.raises(heap.DoubleFree):
        heap.free_tree(led, "str", s, "second")
    # qapi_free_StrOrNull twice reads the freed alternate (its type) before freeing it
    # again: the use-after-free is what C hits first
    b = heap.build(led, "StrOrNull", "x", "t", "test")
    heap.free_tree(led, "StrOrNull", b, "first")
    with pytest.raises(heap.UseAfterFree):
        heap.free_tree(led, "StrOrNull", b, "second")


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("design", [d for d in DESIGNS if d != "open-coded"])
@given(state=strategies.states(), request=strategies.requests())
def test_designs_agree_with_open_coded(design, state, request):
    properties.prop_agree(state[0], state[1], request, design)


@pytest.mark.parametrize("design", DESIGNS)
@given(state=strategies.states(), request=strategies.requests())
def test_rejected_request_changes_nothing(design, state, request):
    properties.prop_rejected_changes_nothing(state[0], state[1], request, design)


@pytest.mark.parametrize("design", DESIGNS)
@given(state=strategies.states(), request=strategies.requests())
def test_present_replace_absent_keep(design, state, request):
    properties.prop_present_replace_absent_keep(state[0], state[1], request, design)


@pytest.mark.parametrize("design", DESIGNS)
@given(state=strategies.states(), request=strategies.requests())
def test_ledger_freed_once_no_leak(design, state, request):
    properties.prop_ledger(state[0], state[1], request, design)


@pytest.mark.parametrize("design", [d for d in DESIGNS if d != "open-coded"])
@given(state=strategies.states(), request=strategies.requests())
def test_no_null_dereference(design, state, request):
    properties.prop_no_crash(state[0], state[1], request, design)


def test_sweep_rows(monkeypatch):
    monkeypatch.setattr(properties, "HAZARD_BUDGET", 3)  # shape only; the races: race tests
    rows = properties.sweep(3, seed=1)
    assert len(rows) == properties.sweep_size()  # run's progress total counts them
    assert {r["status"] for r in rows} <= {"pass", "fail"}
    keys = {"property", "design", "status", "examples", "failure", "expected"}
    assert all(keys <= set(r) for r in rows)
    race = {r["design"]: r for r in rows if r["property"] == "params.no-use-after-free"}
    assert set(race) == set(DESIGNS)
    assert race["whitelist"]["status"] == "pass" and race["swap-rcu"]["status"] == "pass"


# --------------------------------------------------------------------------- configuration record


def test_real_qemu_7_2_stream_capabilities(pytestconfig):
    data = (pytestconfig.rootpath / "tests/data/qemu-7.2/pc-min.mig").read_bytes()
    # QEMU 7.2 sent no capabilities subsection: no validated capability was on
    assert configrecord.capabilities_of(data) == ()
    assert configrecord.check_stream(data, destination=[]) == []
    err = configrecord.check_stream(data, destination=["x-ignore-shared"])
    assert [f.message for f in err] == [
        "Capability x-ignore-shared is on, but received capability is off"]


def test_stream_with_capabilities_subsection(pytestconfig):
    from conformance.migration import migfile

    data = (pytestconfig.rootpath / "tests/data/qemu-7.2/pc-min.mig").read_bytes()
    mf = migfile.read_migration(data, decode_state=False)
    config = mf.records[0]
    for names, level in (((b"multifd",), "note"), ((b"compress",), "error"),
                         ((b"no-such-cap",), "error")):
        sub = migfile.ConfigSubsection(b"configuration/capabilities", 1, names)
        records = (config.replace(subsections=(sub,)), *mf.records[1:])
        out = migfile.encode(mf.replace(records=records))
        assert configrecord.capabilities_of(out) == names
        findings = configrecord.check_stream(out, destination=[])
        assert findings and findings[0].level == level, findings
    assert configrecord.check_capabilities([b"compress"])[0].message == (
        "Received unknown capability compress (removed in QEMU 9.1)")
