"""The qemu engine (conformance/qemu/engine.py): QEMU's own vmstate.c against the model.

Needs cached QEMU builds (``python -m conformance.qemu build --debian 7.2`` / ``10.2``);
every test skips with that hint when its build is missing.

* mechanics: outcomes (ok / error / abort / undefined), the not-expressible marker;
* QEMU's own unit vectors (tests/cases/qemu-unit): identical bytes under C;
* the corpora (golden/cases, tests/cases): reference ≡ qemu, known classes xfail;
* Hypothesis: saves agree (strict); loads of saved / truncated / mutated streams agree
  outside the known classes (conformance.qemu.compare.CLASSES);
* one minimal reproducer per known class and version, ``xfail(strict=True)`` while
  ``CLASSES[key].xfail`` is True: when the model is fixed the reproducer agrees, the
  strict xfail fails, and the lead flips the class to ``xfail=False`` in compare.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shared_descriptions import bitmap_desc

from conformance.cases import parse_description
from conformance.engines import reference
from conformance.model import variants
from conformance.model.description import Description, Field, Hook, Pred
from conformance.model.flags import F
from conformance.model.state import from_plain
from conformance.qemu import compare as qcompare
from conformance.qemu import differential
from conformance.qemu import engine as qengine
from conformance.qemu.layout import lacking_infos
from strategies import descriptions, destinations, states

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("qemu-7.2", "legacy", "auto-alloc")
BUILD_HINT = {"qemu-7.2": "--debian 7.2", "legacy": "--debian 10.2",
              "auto-alloc": "--overlay ../shared/qemu-master (or --source a QEMU master checkout)"}


def _build(variant):
    try:
        return qengine.build_for_variant(variant)
    except Exception:  # noqa: BLE001 - a broken cache is "no build" here
        return None


def _skip_reason(variant) -> str:
    return (f"no cached QEMU build for {variant}: run "
            f"`vmstate-conformance qemu build {BUILD_HINT[variant]}`")


@pytest.fixture(params=VARIANTS)
def variant(request):
    v = request.param
    if _build(v) is None:
        pytest.skip(_skip_reason(v))
    return v


def eng(variant):
    return qengine.for_build(_build(variant))


def _judge(desc, ref, q, data=b""):
    """Fail on an unknown disagreement, xfail on a known one."""
    diffs = qcompare.compare(ref, q)
    if not diffs:
        return
    key = qcompare.classify(desc, ref, q, diffs, data)
    cls = qcompare.CLASSES[key]
    text = f"class {key}: " + "; ".join(str(d)[:200] for d in diffs[:3])
    if cls.xfail and key != "T":
        pytest.xfail(text)
    pytest.fail(text)


# ---------------------------------------------------------------------------------------
# Mechanics


SIMPLE = Description("dev", 1, 1, [
    Field("a", F.SINGLE, "uint8", size=1),
    Field("b", F.ARRAY, "int32", size=4, num=3),
    Field("c", F.SINGLE, "uint64", size=8),
    Field("d", F.SINGLE, "bool", size=1),
])
SIMPLE_STATE = {"a": 5, "b": [1, -2, 3], "c": 2 ** 63 + 5, "d": True}


def test_save_and_load_round_trip(variant):
    q = eng(variant)
    saved = q.save(SIMPLE, SIMPLE_STATE, variant)
    assert saved.ok and saved.data == reference.save(SIMPLE, SIMPLE_STATE, variant).data
    assert saved.data.hex() == "05" + "00000001fffffffe00000003" + "8000000000000005" + "01"
    loaded = q.load(SIMPLE, saved.data, {}, variant)
    assert loaded.ok
    assert loaded.state == SIMPLE_STATE
    assert len(loaded.data) == len(saved.data)
    # QEMU's subsection peek at the very end leaves the sticky -EIO, as the model says
    assert loaded.file_error == -5


def test_truncated_load_is_an_error_with_the_file_error(variant):
    q = eng(variant)
    data = reference.save(SIMPLE, SIMPLE_STATE, variant).data[:7]
    out = q.load(SIMPLE, data, {}, variant)
    # QEMU master's vmstate_load_state() returns -EINVAL for any failure (class R)
    assert out.kind == "error" and out.file_error == -5
    assert out.ret == (-22 if variant == "auto-alloc" else -5)
    assert len(out.data) == 7
    assert out.state["b"] == [1, -65536, 0]  # the short element is zero-padded


def test_assertion_is_an_abort_outcome(variant):
    desc = Description("dev", 0, 0, [
        Field("n", F.SINGLE, "uint32", size=4),
        Field("p", F.POINTER | F.VARRAY_UINT32, "uint8", size=1, num_member="n")])
    ref = reference.save(desc, {"n": 2, "p": None}, variant)
    out = eng(variant).save(desc, {"n": 2, "p": None}, variant)
    assert ref.kind == out.kind == "abort"
    assert out.message == ref.message == "assertion failed: first_elem || !n_elems || !size"


def test_crash_is_undefined_with_the_signal(variant):
    # a NULL slot of a pointer array whose .size is 0 is followed (vmstate.c <= 10.x;
    # master's vmstate_size() is the pointer size for every pointer array)
    if variant == "auto-alloc":
        pytest.skip("master never follows a NULL slot (covered by 7.2 and 10.x)")
    desc = Description("dev", 0, 0, [
        Field("pa", F.ARRAY | F.ARRAY_OF_POINTER, "uint32", size=0, num=2)])
    out = eng(variant).save(desc, {"pa": [None, 7]}, variant, check=False)
    assert out.kind == "undefined"
    assert "SIGSEGV" in out.message


def test_element_size_0_steps_on_element_0_as_the_model_says(variant):
    """vmstate.c addresses element i as first_elem + size * i: with size 0 every element
    is element 0.  A pointer array of .size 0 (golden/cases/flags/array-of-pointer-nosize)
    under 7.2 / 10.x never reaches its NULL slot 1; master's pointer size gives markers.
    A plain array of size 0 does the same in every tree."""
    q = eng(variant)
    ptrs = Description("dev", 1, 1, [
        Field("p", F.ARRAY | F.ARRAY_OF_POINTER, "int32", size=0, num=3)])
    plain = Description("dev", 1, 1, [Field("a", F.ARRAY, "int32", size=0, num=3)])
    want = {"p": "000000013000000003" if variant == "auto-alloc" else "000000010000000100000001",
            "a": "000000010000000100000001"}
    for desc, member, src, dest in ((ptrs, "p", [1, None, 3], [0, None, 5]),
                                    (plain, "a", [1, 2, 3], [0, 0, 5])):
        ref = reference.save(desc, {member: src}, variant, vmdesc=True)
        out = q.save(desc, {member: src}, variant, vmdesc=True)
        assert out.ok and out.data.hex() == want[member] == ref.data.hex()
        assert qcompare.compare(ref, out) == []
        data = bytes.fromhex("000000070000000800000009" "00")
        rl = reference.load(desc, data, {member: dest}, variant, check=False)
        ql = q.load(desc, data, {member: dest}, variant, check=False)
        assert qcompare.compare(rl, ql) == [], member
        if member == "a" or variant != "auto-alloc":
            assert ql.state[member] == [9, dest[1], 5]  # the last value wins in slot 0


def test_python_code_hooks_are_not_expressible(variant):
    desc = Description("dev", 0, 0, [Field("a", F.SINGLE, "uint8", size=1)],
                       pre_save=lambda opaque: 0)
    out = eng(variant).save(desc, {"a": 1}, variant)
    assert qengine.not_expressible(out)
    assert "Python-code hook" in out.message


def test_infos_the_build_lacks_are_not_expressible(variant):
    lacking = ("timer", "float64", "capability")
    if variant != "auto-alloc":  # master's vmstate-types.c has vmstate_info_g_byte_array
        lacking += ("GByteArray",)
    for info in lacking:
        desc = Description("dev", 0, 0, [Field("t", F.SINGLE, info, size=8)])
        out = eng(variant).save(desc, {}, variant)
        assert qengine.not_expressible(out), info


def test_variants_without_a_build_are_not_expressible():
    out = qengine.save(SIMPLE, SIMPLE_STATE, "alloc")  # Fabiano's RFC: no QEMU build
    assert qengine.not_expressible(out)


def test_declarative_hooks_and_predicates_run_in_c(variant):
    desc = Description("dev", 2, 1, [
        Field("on", F.SINGLE, "bool", size=1),
        Field("x", F.SINGLE, "uint16", size=2, field_exists=Pred("member", member="on")),
        Field("y", F.SINGLE, "uint16", size=2,
              field_exists=Pred("not", args=(Pred("version_at_least", value=2),))),
    ], subsections=[Description("dev/s", 1, 1, [Field("z", F.SINGLE, "int8", size=1)],
                                needed=Pred("equals", member="x", value=7))],
        post_load=Hook(0, (("scratch", 42),)))
    src = {"on": True, "x": 7, "y": 9, "z": -3}
    ref, q = reference.save(desc, src, variant), eng(variant).save(desc, src, variant)
    assert q.ok and q.data == ref.data
    rl = reference.load(desc, ref.data, {}, variant)
    ql = eng(variant).load(desc, ref.data, {}, variant)
    assert qcompare.compare(rl, ql) == []
    assert ql.state["scratch"] == 42 and ql.state["z"] == -3


# ---------------------------------------------------------------------------------------
# QEMU's unit vectors and the corpora


def _corpus():
    return differential.corpus_cases(ROOT)


def _case_id(case) -> str:
    return Path(case.origin).stem if case.origin else case.name


CORPUS = _corpus()
UNIT = [c for c in CORPUS if c.origin and "qemu-unit" in c.origin]


@pytest.mark.parametrize("case", UNIT, ids=_case_id)
def test_qemu_unit_vectors_give_identical_bytes(variant, case):
    if variant not in case.variants:
        pytest.skip(f"case not for {variant}")
    q = eng(variant).save(case.description, case.source, variant)
    if qengine.not_expressible(q):
        pytest.skip(q.message)
    ref = reference.save(case.description, case.source, variant)
    assert q.kind == ref.kind
    assert q.data == ref.data
    want = case.expectation(variant).get("save", {}).get("stream")
    if want is not None:
        assert q.data.hex() == want


@pytest.mark.parametrize("case", CORPUS, ids=_case_id)
def test_corpus_reference_equals_qemu(variant, case):
    if variant not in case.variants:
        pytest.skip(f"case not for {variant}")
    runs = list(differential.corpus_runs(case, variant, eng(variant)))
    if all(qengine.not_expressible(q) for *_, q in runs):
        pytest.skip(runs[0][-1].message)
    for _op, desc, _src, _dest, data, ref, q in runs:
        _judge(desc, ref, q, data)


# ---------------------------------------------------------------------------------------
# Hypothesis: reference ≡ qemu


def _expressible(variant):
    have = eng(variant).driver.infos
    return lambda d: not lacking_infos(d, have)


def _need(variant):
    if _build(variant) is None:
        pytest.skip(_skip_reason(variant))


@pytest.mark.parametrize("variant", VARIANTS)
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                                 HealthCheck.data_too_large], deadline=None)
@given(data=st.data())
def test_saves_agree(variant, data):
    _need(variant)
    desc = data.draw(descriptions(variant).filter(_expressible(variant)))
    src = data.draw(states(desc))
    vmdesc = data.draw(st.booleans())  # the vmdesc JSON text is compared too
    ref = reference.save(desc, src, variant, vmdesc=vmdesc)
    q = eng(variant).save(desc, src, variant, vmdesc=vmdesc)
    why = qcompare.comparable(ref, q)
    event(f"save:{why or 'compared'}")
    assert qcompare.compare(ref, q) == [], (ref.summary(), q.summary())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("how", ("saved", "truncated", "mutated"))
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                                 HealthCheck.data_too_large], deadline=None)
@given(data=st.data())
def test_loads_agree_outside_known_classes(variant, how, data):
    _need(variant)
    desc = data.draw(descriptions(variant).filter(_expressible(variant)))
    src = data.draw(states(desc))
    saved = reference.save(desc, src, variant)
    if not saved.ok:
        return
    stream = saved.data
    if how == "truncated":
        stream = stream[:data.draw(st.integers(0, max(len(stream) - 1, 0)))]
    elif how == "mutated":
        kind = data.draw(st.sampled_from(("flip", "insert", "trailing", "delete")))
        stream = differential._mutate(data, kind, stream)
    dest = data.draw(destinations(desc, src, variant))
    ref = reference.load(desc, stream, dest, variant)
    q = eng(variant).load(desc, stream, dest, variant)
    diffs = qcompare.compare(ref, q)
    if not diffs:
        event("agree")
        return
    key = qcompare.classify(desc, ref, q, diffs, stream)
    event(f"class:{key}")
    cls = qcompare.CLASSES[key]
    assert cls.xfail and key != "T", f"class {key}: " + "; ".join(map(str, diffs[:3]))


# ---------------------------------------------------------------------------------------
# One minimal reproducer per known class and version


def _vbuffer_desc():
    return parse_description({"name": "dev", "version_id": 1, "minimum_version_id": 1,
                              "Fields": [
                                  {"field": "len", "flags": ["SINGLE"], "info": "uint32",
                                   "size": 4},
                                  {"field": "vb", "flags": ["POINTER", "VBUFFER"],
                                   "info": "buffer", "size_member": "len"}]})


def _sub_desc():
    return Description("dev", 1, 1, [], subsections=[
        Description("dev/sub001", 1, 1, [Field("x", F.SINGLE, "uint8", size=1)])])


def _nested_gtree_desc():
    leaf = Description("W", 1, 1, [Field("x", F.SINGLE, "uint8", size=1)])
    mid = Description("V", 1, 1, [Field("m", F(0), "gtree", size=8, vmsd=leaf, version_id=1)])
    return Description("dev", 1, 1, [Field("t", F(0), "gtree", size=8, vmsd=mid, version_id=1)])


def _qlist_desc():
    elem = Description("E", 0, 0, [Field("b", F.SINGLE, "bool", size=1)])
    return Description("dev", 0, 0, [Field("q", F(0), "qlist", size=1, vmsd=elem)])


#: (class, variant) -> (description factory, destination, stream or None=saved source,
#:                      source, version_id, op)
REPRODUCERS = {
    ("A", "qemu-7.2"): (lambda: SIMPLE, {}, "05", None, 2, "load"),
    ("A", "legacy"): (lambda: SIMPLE, {}, "05", None, 2, "load"),
    ("B", "qemu-7.2"): (bitmap_desc, {"len": 4, "bm": 1}, "00000000", None, None, "load"),
    ("B", "legacy"): (bitmap_desc, {"len": 4, "bm": 1}, "00000000", None, None, "load"),
    ("B2", "qemu-7.2"): (bitmap_desc, {"len": 0, "bm": 0},
                         "00000100" + "00" * 32, None, None, "load"),
    ("B2", "legacy"): (bitmap_desc, {"len": 0, "bm": 0},
                       "00000100" + "00" * 32, None, None, "load"),
    ("Q", "qemu-7.2"): (_vbuffer_desc, {"len": 7, "vb": "7cf055547d1015"},
                        "00000007f0dc6e301e", None, None, "load"),
    ("Q", "legacy"): (_vbuffer_desc, {"len": 7, "vb": "7cf055547d1015"},
                      "00000007f0dc6e301e", None, None, "load"),
    ("M", "qemu-7.2"): (lambda: Description("dev", 0, 0, [Field("a", F.SINGLE, "uint8", size=1)],
                                            post_save=Hook(-1)),
                        None, None, {"a": 1}, None, "save"),
    ("M", "legacy"): (lambda: SIMPLE, {}, "05", None, None, "load"),
    ("N", "qemu-7.2"): (_sub_desc, {}, "050b" + b"dev/sub001".hex() + "00" + "000000012a",
                        None, None, "load"),
    ("N", "legacy"): (_sub_desc, {}, "050b" + b"dev/sub001".hex() + "00" + "000000012a",
                      None, None, "load"),
    ("G", "qemu-7.2"): (_nested_gtree_desc, {"t": []}, None,
                        {"t": [[5, {"m": [[7, {"x": 9}]]}]]}, None, "load"),
    ("G", "legacy"): (_nested_gtree_desc, {"t": []}, None,
                      {"t": [[5, {"m": [[7, {"x": 9}]]}]]}, None, "load"),
    ("L", "qemu-7.2"): (_qlist_desc, {"q": [{"b": False}, {"b": False}]}, None,
                        {"q": [{"b": True}, {"b": True}]}, None, "load"),
    ("L", "legacy"): (_qlist_desc, {"q": [{"b": False}, {"b": False}]}, None,
                      {"q": [{"b": True}, {"b": True}]}, None, "load"),
}


def _reproducer_params():
    out = []
    for (key, v), spec in REPRODUCERS.items():
        marks = []
        if qcompare.CLASSES[key].xfail:
            marks.append(pytest.mark.xfail(strict=True, raises=AssertionError,
                                           reason=qcompare.CLASSES[key].title))
        out.append(pytest.param(key, v, spec, marks=marks, id=f"{key}-{v}"))
    return out


@pytest.mark.parametrize("key,v,spec", _reproducer_params())
def test_known_class_reproducer_agrees(key, v, spec):
    if _build(v) is None:
        pytest.skip(_skip_reason(v))
    make, dest, stream, src, version_id, op = spec
    desc = make()
    q = eng(v)
    if op == "save":
        ref, out = reference.save(desc, src, v), q.save(desc, src, v)
        data = b""
    else:
        dest = from_plain(desc, dest)
        data = bytes.fromhex(stream) if stream is not None else reference.save(desc, src, v).data
        ref = reference.load(desc, data, dest, v, version_id=version_id)
        out = q.load(desc, data, dest, v, version_id=version_id)
    diffs = qcompare.compare(ref, out)
    if diffs and qcompare.classify(desc, ref, out, diffs, data) != key:
        # the reproducer must stay an example of its own class (not an xfail)
        raise RuntimeError(f"reproducer of {key} now shows: " + "; ".join(map(str, diffs)))
    assert diffs == [], "; ".join(map(str, diffs))


def test_golden_verify_with_the_qemu_engine(capsys):
    """`golden verify --engine qemu`: every corpus case, reference ≡ QEMU's C."""
    from conformance.cli import main
    from conformance.qemu.build import locate

    if locate("7.2") is None and locate("10.2") is None:
        pytest.skip("no cached QEMU build (vmstate-conformance qemu build --debian 7.2)")
    assert main(["golden", "verify", "--engine", "qemu"]) == 0
    out = capsys.readouterr().out
    assert "disagreements" in out and "none" in out
    assert main(["golden", "verify", "--engine", "qemu", "--case", "flags/*"]) == 2


def test_null_pointer_with_size_zero_is_a_null_dereference_in_c_too(variant):
    """Found by `fuzz --target case`: VARRAY_UINT32|POINTER|ALLOC of uint8 with no size.
    size * n is 0, so vmstate_handle_alloc() allocates nothing, the base assertion
    passes (size 0) and get_uint8 writes through NULL: the model says undefined
    (null-dereference) and QEMU's C dies with SIGSEGV."""
    desc = Description("dev", 1, 1, [
        Field("n", F.SINGLE, "uint32", size=4),
        Field("v", F.VARRAY_UINT32 | F.POINTER | F.ALLOC, "uint8", size=0, num_member="n")])
    data = bytes.fromhex("00000003070809")
    ref = reference.load(desc, data, {"n": 0, "v": None}, variant)
    q = eng(variant).load(desc, data, {"n": 0, "v": None}, variant)
    if variants.get(variant).decision("null_element_skipped_on_load"):
        # master's vmstate_load_next() hands back NULL + 0 * i and vmstate_load_vmsd()
        # skips a NULL element: nothing is read, the load ends after the counter
        assert (ref.kind, len(ref.data)) == ("ok", 4) and (q.kind, len(q.data)) == ("ok", 4)
        return
    assert ref.kind == "undefined" and "null-dereference" in str(ref.to_json())
    assert q.kind == "undefined" and "SIGSEGV" in q.message


# ---------------------------------------------------------------------------------------
# QEMU master (the auto-alloc build): one reproducer per class of issue 22, each asserting
# what master's C does (so an engine that stops running C fails too) and that the model
# agrees (conformance.model.variants.CONVENTIONS)


def _uint8():
    return Description("dev", 1, 1, [Field("a", F.SINGLE, "uint8", size=1)])


def _ptr_marker_desc():
    return Description("dev", 1, 1, [
        Field("a", F.ARRAY | F.ARRAY_OF_POINTER, "int8", size=0, num=1)])


def _nested_ptr_marker_desc():
    inner = _ptr_marker_desc()
    return Description("top", 1, 1, [Field("s", F.STRUCT, vmsd=inner, size=8)])


def _sub_marker_desc():
    sub = Description("dev/sub001", 1, 1, [
        Field("p", F.ARRAY | F.ARRAY_OF_POINTER, "int8", size=0, num=1)])
    return Description("dev", 1, 1, [], subsections=[sub])


def _multiply_desc():
    return Description("dev", 1, 1, [
        Field("n", F.SINGLE, "uint32", size=4),
        Field("b", F.VARRAY_UINT32 | F.MULTIPLY_ELEMENTS, "bool", size=1, num=2,
              num_member="n")])


def _hook_desc(**hook):
    return Description("dev", 0, 0, [Field("a", F.SINGLE, "uint8", size=1)],
                       **{k: Hook(v) for k, v in hook.items()})


def _auto_struct_desc():
    elem = Description("E", 1, 1, [Field("x", F.SINGLE, "uint16", size=2)])
    return Description("dev", 1, 1, [
        Field("n", F.SINGLE, "uint8", size=1),
        Field("ar", F.VARRAY_UINT8 | F.POINTER | F.ARRAY_OF_POINTER | F.STRUCT | F.AUTO_ALLOC,
              vmsd=elem, size=2, num_member="n")])


SUB_HEADER = "050a" + b"dev/sub001".hex()

#: class -> (description, op, source/destination, stream hex or None (saved source),
#:           what master's C must show: {outcome attribute: value})
MASTER = {
    "R": (_uint8, "load", {}, "", {"kind": "error", "ret": -22, "file_error": -5}),
    "F": (_ptr_marker_desc, "load", {"a": [None]}, "03",
          {"kind": "error", "ret": -22, "file_error": 0,
           "messages": ("Unexpected ptr marker: 3",)}),
    "F-nested": (_nested_ptr_marker_desc, "load", {"s": {"a": [None]}}, "03",
                 {"kind": "error", "ret": -22, "file_error": -22}),
    "M1": (lambda: Description("dev", 1, 1, [Field("a", F.SINGLE, "uint32 equal", size=4)]),
           "load", {"a": 4}, "", {"kind": "error", "messages": ("4 != 0",)}),
    "M2": (_sub_desc, "load", {}, SUB_HEADER,
           {"kind": "error", "messages": (
               "Loading VM subsection 'dev/sub001' in 'dev' failed: dev/sub001: incoming "
               "version_id 0 is too old for local minimum version_id 1",)}),
    "S": (_sub_desc, "load", {}, "050a" + b"dev/su\xb8001".hex() + "00000002",
          {"kind": "error", "ret": -22, "file_error": -22}),
    "M3": (_sub_marker_desc, "load", {"p": [None]}, SUB_HEADER + "00000001" + "07",
           {"kind": "error", "messages": (
               "Loading VM subsection 'dev/sub001' in 'dev' failed: Unexpected ptr marker: 7",)}),
    "X": (_multiply_desc, "save", {"n": 1, "b": [True, True]}, None,
          {"kind": "ok", "data": bytes.fromhex("0000000101")}),
    "P1": (lambda: _hook_desc(pre_save=1), "save", {"a": 1}, None, {"kind": "ok"}),
    "P1-negative": (lambda: _hook_desc(pre_save=-1), "save", {"a": 1}, None,
                    {"kind": "error", "ret": -22, "messages": ("pre-save failed: dev",)}),
    "P2": (lambda: _hook_desc(post_save=1), "save", {"a": 1}, None, {"kind": "ok"}),
    "V": (lambda: Description("dev", 0, 0, [
              Field("a", F.ARRAY | F.ARRAY_OF_POINTER, "int32", size=0, num=2)]),
          "save", {"a": [5, None]}, None,
          {"kind": "ok", "data": bytes.fromhex("0000000530"),
           "vmdesc": '{"vmsd_name": "dev", "version": 0, "fields": [{"name": "a", '
                     '"array_len": 2, "type": "int32", "size": 4}]}'}),
    "AUTO_ALLOC": (_auto_struct_desc, "load", {"n": 3, "ar": [None, None, None]},
                   "03" + "31" + "0102" + "30" + "31" + "0304" + "00",  # 00: no subsection
                   {"kind": "ok", "state": {"n": 3, "ar": [{"x": 258}, None, {"x": 772}]}}),
}


@pytest.mark.parametrize("key", sorted(MASTER))
def test_master_class_reproducer(key):
    """Each class of QEMU master's conventions: the C shows it, the model agrees."""
    v = "auto-alloc"
    if _build(v) is None:
        pytest.skip(_skip_reason(v))
    make, op, state, stream, want = MASTER[key]
    desc = make()
    if op == "save":
        ref = reference.save(desc, state, v, vmdesc=True)
        out = eng(v).save(desc, state, v, vmdesc=True)
        data = b""
    else:
        data = bytes.fromhex(stream)
        ref = reference.load(desc, data, from_plain(desc, state), v)
        out = eng(v).load(desc, data, from_plain(desc, state), v)
    assert not qengine.not_expressible(out), out.message
    for attr, value in want.items():
        got = getattr(out, attr)
        assert (tuple(got) if attr == "messages" else got) == value, (attr, got)
    assert qcompare.compare(ref, out) == [], "; ".join(map(str, qcompare.compare(ref, out)))


def test_master_gbytearray_is_expressible():
    v = "auto-alloc"
    if _build(v) is None:
        pytest.skip(_skip_reason(v))
    desc = Description("dev", 1, 1, [Field("g", F.SINGLE, "GByteArray", size=8)])
    saved = eng(v).save(desc, {"g": b"\x01\x02"}, v)
    assert saved.ok and saved.data.hex() == "000000020102"
    loaded = eng(v).load(desc, saved.data, {"g": b""}, v)
    assert loaded.ok and loaded.state["g"] == b"\x01\x02"


def test_glib_log_lines_are_not_error_messages():
    """g_tree_insert() into a NULL GTree makes GLib log a CRITICAL on stderr (the model
    records a leak hazard); the migration core's messages are what is compared (the
    master differential once counted four message disagreements from these lines)."""
    from conformance.qemu.engine import _messages

    stderr = ("(process:31005): GLib-CRITICAL **: 22:49:38.507: g_tree_insert_node: "
              "assertion 'tree != NULL' failed\n"
              "q003 inconsistent stream when loading the gtree\n")
    assert _messages(stderr) == ["q003 inconsistent stream when loading the gtree"]


def test_differential_replay_of_a_malformed_case_is_one_line(tmp_path, capsys):
    """--replay read a bad case file into an internal error (a CaseError built wrongly)."""
    from conformance.cli import main

    path = tmp_path / "bad.json"
    path.write_text('{"description": {"name": "d", "Fields": [{"field": "t", '
                    '"info": "uint8"}]}, "destination": {"t": []}}')
    rc = main(["qemu", "differential", "--replay", str(path)])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.splitlines()) == 1 and "internal error" not in err, err
    assert "$.destination.t" in err
