"""The reference engine against QEMU's unit vectors and per-flag / per-info semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cases import load_case_file, load_python_cases, run_case
from conformance.engines import reference as R
from conformance.model.description import Description, Field, Hook, Pred
from conformance.model.flags import F
from conformance.model.macros import (
    VMSTATE_BITMAP,
    VMSTATE_BOOL,
    VMSTATE_BUFFER,
    VMSTATE_INT32,
    VMSTATE_INT32_POSITIVE_LE,
    VMSTATE_SINGLE,
    VMSTATE_STRUCT,
    VMSTATE_STRUCT_VARRAY_ALLOC,
    VMSTATE_UINT8,
    VMSTATE_UINT16,
    VMSTATE_UINT32,
    VMSTATE_UINT64_EQUAL,
    VMSTATE_UNUSED,
    VMSTATE_VALIDATE,
    VMSTATE_VARRAY_INT32,
    VMSTATE_VARRAY_MULTIPLY,
    VMSTATE_VARRAY_UINT32,
    VMSTATE_VBUFFER_ALLOC_UINT32,
    VMSTATE_VBUFFER_MULTIPLY,
    VMSTATE_VSTRUCT,
    VMSTATE_WITH_TMP,
)
from conformance.model.state import INDETERMINATE

CASES = Path(__file__).parent / "cases" / "qemu-unit"
CASE_FILES = sorted(p for p in CASES.iterdir() if p.suffix in (".json", ".py"))
VARIANTS = ("qemu-7.2", "legacy", "auto-alloc", "alloc")


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_qemu_unit_vector(path):
    cases = load_python_cases(path) if path.suffix == ".py" else [load_case_file(path)]
    for case in cases:
        for variant in case.variants:
            result = run_case(case, variant, "reference")
            assert result.passed, (variant, result.mismatches)


def one(info, name="x", **kw):
    return Description("t", 1, 1, fields=[Field(name, F.SINGLE, info, size=kw.pop("size", 0), **kw)])


# -- infos ------------------------------------------------------------------------------

@pytest.mark.parametrize("info,value,wire", [
    ("bool", True, "01"), ("bool", False, "00"),
    ("int8", -1, "ff"), ("int16", -2, "fffe"), ("int32", -70000, "fffeee90"),
    ("int64", -12121212, "ffffffffff470b84"), ("uint8", 130, "82"), ("uint16", 512, "0200"),
    ("uint32", 70000, "00011170"), ("uint64", 12121212, "0000000000b8f47c"),
    ("int32 equal", 5, "00000005"), ("uint8 equal", 7, "07"), ("uint16 equal", 7, "0007"),
    ("uint32 equal", 7, "00000007"), ("int64 equal", 2**64 - 1, "ffffffffffffffff"),
    ("int32 le", 3, "00000003"), ("timer", -1, "ffffffffffffffff"),
    ("CPU_Double_U", 0x3FF0000000000000, "3ff0000000000000"),
    ("float64", 0x4000000000000000, "4000000000000000"),
])
def test_scalar_info_round_trip(info, value, wire):
    desc = one(info)
    saved = R.save(desc, {"x": value})
    assert saved.ok and saved.data.hex() == wire
    loaded = R.load(desc, saved.data + b"\0", {"x": value})
    assert loaded.ok and loaded.state["x"] == value


def test_bool_load_accepts_any_nonzero_byte():
    out = R.load(one("bool"), bytes([0x7F, 0]), {"x": False})
    assert out.ok and out.state["x"] is True


@pytest.mark.parametrize("variant,last", [
    ("qemu-7.2", "Failed to load t:x"),  # 7.2: error_report per level
    ("legacy", "Failed to load element of type int32 equal for x: -22"),  # 10.x: errp
])
def test_equal_mismatch_is_an_error_naming_both_values(variant, last):
    out = R.load(one("int32 equal"), bytes.fromhex("0000000600"), {"x": 5}, variant)
    assert out.kind == "error" and out.ret == -22 and out.file_error == -22
    assert out.messages == ("5 != 6", last)
    assert out.path == "t/x" and out.offset == 4
    assert out.state["x"] == 5  # *_equal never writes the destination


def test_uint64_equal_prints_64_bit_hex():
    out = R.load(Description("t", 1, 1, fields=[VMSTATE_UINT64_EQUAL("x")]),
                 bytes.fromhex("ffffffffffffffff00"), {"x": 1})
    assert out.messages[0] == "1 != ffffffffffffffff"


@pytest.mark.parametrize("loaded,current,ok", [(3, 5, True), (5, 5, True), (6, 5, False),
                                               (-1, 5, False)])
def test_int32_le(loaded, current, ok):
    desc = Description("t", 1, 1, fields=[VMSTATE_INT32_POSITIVE_LE("x")])
    wire = (loaded & 0xFFFFFFFF).to_bytes(4, "big") + b"\0"
    out = R.load(desc, wire, {"x": current})
    assert out.ok is ok
    if ok:
        assert out.state["x"] == loaded
    else:
        assert out.messages[0] == f"Invalid value {loaded} expecting positive value <= {current}"


def test_buffer_partial_and_unused():
    desc = Description("t", 1, 1, fields=[VMSTATE_BUFFER("buf", 3), VMSTATE_UNUSED(2)])
    saved = R.save(desc, {"buf": b"abcdef"})
    assert saved.data == b"abc\0\0"  # the first `size` bytes, then zeros for unused
    loaded = R.load(desc, b"xyz\x07\x07\0", {"buf": b"------"})
    assert loaded.state["buf"] == b"xyz---"


def test_bitmap_words_and_bit_order():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT32("nbits"), VMSTATE_BITMAP("bm", "nbits")])
    value = (1 << 0) | (1 << 63) | (1 << 64)
    saved = R.save(desc, {"nbits": 70, "bm": value})
    assert saved.data.hex() == "00000046" + "8000000000000001" + "0000000000000001"
    assert R.load(desc, saved.data + b"\0", {"nbits": 70, "bm": 0}).state["bm"] == value


def test_bitmap_load_keeps_the_bits_beyond_its_words():
    """get_bitmap writes BITS_TO_U64S(size) words; the destination's later bits survive."""
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT32("nbits"), VMSTATE_BITMAP("bm", "nbits")])
    old = (0xAB << 64) | 0xFFFF
    out = R.load(desc, bytes.fromhex("00000040" "0000000000000001" "00"), {"nbits": 128, "bm": old})
    assert out.ok and out.state["bm"] == (0xAB << 64) | 1
    # a size of -1..-63 bits is 0 words on the size_t get_bitmap receives: nothing written
    neg = Description("t", 1, 1, fields=[VMSTATE_INT32("nbits"), VMSTATE_BITMAP("bm", "nbits")])
    out = R.load(neg, bytes.fromhex("ffffffc1" "00"), {"nbits": 64, "bm": old})
    assert out.ok and out.state["bm"] == old and out.data == bytes.fromhex("ffffffc1")


def test_bitmap_larger_than_the_destination_is_undefined():
    """The size member loaded from the stream exceeds the bitmap the destination
    allocated: get_bitmap writes past its end."""
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT32("nbits"), VMSTATE_BITMAP("bm", "nbits")])
    out = R.load(desc, bytes.fromhex("00000041" + "00" * 16 + "00"), {"nbits": 64, "bm": 0})
    assert out.kind == "undefined" and out.hazards[0].kind == "out-of-bounds"


def test_gbytearray_and_capability():
    desc = Description("t", 1, 1, fields=[VMSTATE_SINGLE("g", "GByteArray"),
                                          VMSTATE_SINGLE("cap", "capability")])
    saved = R.save(desc, {"g": b"\x01\x02", "cap": "x-ignore-shared"})
    assert saved.data.hex() == "00000002" + "0102" + "0f" + b"x-ignore-shared".hex()
    assert R.load(desc, saved.data + b"\0", {}).state == {"g": b"\x01\x02", "cap": "x-ignore-shared"}


# -- flags ------------------------------------------------------------------------------

def test_varray_counts_are_c_ints():
    desc = Description("t", 1, 1, fields=[VMSTATE_INT32("n"), VMSTATE_VARRAY_INT32("a", "n", "uint8")])
    # negative int32 counter: the loop runs zero times, nothing written
    assert R.save(desc, {"n": -3, "a": [1, 2]}).data == bytes.fromhex("fffffffd")
    desc32 = Description("t", 1, 1, fields=[VMSTATE_UINT32("n"), VMSTATE_VARRAY_UINT32("a", "n", "uint8")])
    assert R.save(desc32, {"n": 2**31, "a": []}).data == bytes.fromhex("80000000")


def test_varray_pointer_null_with_elements_aborts():
    desc = Description("t", 1, 1, fields=[VMSTATE_INT32("n"), VMSTATE_VARRAY_INT32("a", "n", "uint8")])
    out = R.save(desc, {"n": 2, "a": None})
    assert out.kind == "abort" and "first_elem || !n_elems || !size" in out.message
    assert R.save(desc, {"n": 0, "a": None}).ok  # n = 0 is fine


def test_varray_counter_longer_than_array_is_out_of_bounds():
    desc = Description("t", 1, 1, fields=[VMSTATE_INT32("n"), VMSTATE_VARRAY_INT32("a", "n", "uint8")])
    out = R.load(desc, bytes.fromhex("00000003010203"), {"n": 0, "a": [0]})
    assert out.kind == "undefined" and out.hazards[-1].kind == "out-of-bounds"


def test_multiply_elements_and_vbuffer_multiply():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT32("n"),
                                          VMSTATE_VARRAY_MULTIPLY("a", "n", 2, "uint8")])
    assert R.save(desc, {"n": 2, "a": [1, 2, 3, 4]}).data.hex() == "0000000201020304"
    vb = Description("t", 1, 1, fields=[VMSTATE_INT32("len"),
                                        VMSTATE_VBUFFER_MULTIPLY("buf", "len", 3)])
    assert R.save(vb, {"len": 2, "buf": b"abcdef"}).data == bytes.fromhex("00000002") + b"abcdef"


def test_vbuffer_size_is_read_as_int32():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT32("len"), VMSTATE_VBUFFER_ALLOC_UINT32("buf", "len")])
    out = R.save(desc, {"len": 0xFFFFFFFF, "buf": b"x"})
    assert out.kind == "undefined"  # a "uint32" size of 2^32-1 is int32 -1


def test_alloc_overwrites_pointer_and_records_ledger():
    elem = Description("e", 1, 1, fields=[VMSTATE_UINT8("v")])
    desc = Description("t", 1, 1, fields=[VMSTATE_INT32("n"), VMSTATE_STRUCT_VARRAY_ALLOC("a", "n", elem)])
    saved = R.save(desc, {"n": 2, "a": [{"v": 1}, {"v": 2}]})
    old = [{"v": 9}]
    out = R.load(desc, saved.data + b"\0", {"n": 0, "a": old})
    assert out.ok and out.state["a"] == [{"v": 1}, {"v": 2}]
    assert [h.kind for h in out.hazards] == ["leak"]
    (alloc,) = out.ledger
    assert alloc.what == "array" and alloc.zeroed is False and alloc.overwrote


def test_alloc_left_indeterminate_is_a_hazard():
    elem = Description("e", 1, 1, fields=[VMSTATE_UINT8("v"), VMSTATE_UINT8("w", 2)])
    desc = Description("t", 1, 1, fields=[VMSTATE_INT32("n"), VMSTATE_STRUCT_VARRAY_ALLOC("a", "n", elem)])
    # child struct version 1 excludes w: the g_malloc'd element keeps w indeterminate
    out = R.load(desc, bytes.fromhex("00000001" "05" "00"), {"n": 0, "a": None})
    assert out.ok and out.state["a"][0]["w"] is INDETERMINATE
    assert "indeterminate-left" in [h.kind for h in out.hazards]


def test_must_exist_validate():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x"),
                                          VMSTATE_VALIDATE("x is small", Pred("member", member="ok"))])
    assert R.save(desc, {"x": 1, "ok": True}).data == b"\x01"
    saved = R.save(desc, {"x": 1, "ok": False})
    assert saved.kind == "abort" and saved.messages == ("Output state validation failed: t/x is small",)
    loaded = R.load(desc, b"\x01\x00", {"ok": False})
    assert loaded.kind == "error" and loaded.ret == -1
    # vmstate_load_state returns -1 without qemu_file_set_error
    assert loaded.file_error == 0
    assert loaded.message == "Input validation failed: t/x is small version_id: 1"
    old = R.load(desc, b"\x01\x00", {"ok": False}, "qemu-7.2")
    assert old.message == "Input validation failed: t/x is small" and old.file_error == 0


def test_struct_children_use_their_own_version_and_vstruct_the_struct_version():
    child = Description("c", 3, 1, fields=[VMSTATE_UINT8("a"), VMSTATE_UINT8("b", 3)])
    desc = Description("t", 1, 1, fields=[VMSTATE_STRUCT("s", child), VMSTATE_VSTRUCT("v", child, 2)])
    saved = R.save(desc, {"s": {"a": 1, "b": 2}, "v": {"a": 3, "b": 4}})
    assert saved.data == bytes([1, 2, 3])  # the vstruct saves version 2: no b
    loaded = R.load(desc, saved.data + b"\0", {"s": {"a": 0, "b": 0}, "v": {"a": 0, "b": 9}})
    assert loaded.state == {"s": {"a": 1, "b": 2}, "v": {"a": 3, "b": 9}}


@pytest.mark.parametrize("variant,space", [("qemu-7.2", "  "), ("legacy", " ")])
def test_version_checks_messages(variant, space):
    desc = Description("t", 2, 2, fields=[VMSTATE_UINT8("x")])
    new = R.load(desc, b"\x01\x00", {}, variant, version_id=3)
    assert new.message == "t: incoming version_id 3 is too new for local version_id 2"
    old = R.load(desc, b"\x01\x00", {}, variant, version_id=1)
    assert old.message == f"t: incoming version_id 1 is too old for local minimum version_id{space}2"
    # the version checks return -EINVAL before touching the file
    assert (new.ret, new.file_error, old.ret, old.file_error) == (-22, 0, -22, 0)


def test_subsection_version_is_truncated_to_8_bits():
    sub = Description("t/s", 1, 1, fields=[VMSTATE_UINT8("y")])
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")], subsections=[sub])
    wire = b"\x01\x05\x03t/s" + (0x101).to_bytes(4, "big") + b"\x07\x00"
    out = R.load(desc, wire, {})
    assert out.ok and out.state["y"] == 7


def test_subsection_heuristics_leave_unprefixed_bytes_alone():
    sub = Description("t/s", 1, 1, fields=[VMSTATE_UINT8("y")])
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")], subsections=[sub])
    out = R.load(desc, b"\x01\x05\x03u/s", {})  # prefix mismatch: not a subsection
    assert out.ok and out.data == b"\x01"


def test_peek_at_end_leaves_sticky_eio_but_succeeds():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")])
    out = R.load(desc, b"\x01", {})
    assert out.ok and out.file_error == -5
    assert [h.kind for h in out.hazards] == ["sticky-eof"]


def test_short_read_fails_after_the_element():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT32("x"), VMSTATE_UINT8("y")])
    out = R.load(desc, b"\x00\x01", {})
    assert out.kind == "error" and out.ret == -5 and out.path == "t/x" and out.offset == 2
    assert out.state["x"] == 0x00010000  # zero-padded, as qemu_get_be32 does


def test_terminator_canary_per_variant():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")], terminator=0x10000)
    assert R.save(desc, {"x": 1}, "qemu-7.2").ok  # 7.2 only tests name == NULL
    assert R.save(desc, {"x": 1}, "legacy").ok
    rejected = R.save(desc, {"x": 1}, "auto-alloc")  # VMS_END moved to 0x20000
    assert rejected.kind == "rejected" and "end-canary" in rejected.message
    aborted = R.save(desc, {"x": 1}, "auto-alloc", check=False)
    assert aborted.kind == "abort" and aborted.message.endswith("field->flags == VMS_END")


def test_hooks_run_in_qemu_order():
    calls = []

    def hook(name, ret=0):
        def fn(opaque, *version):
            calls.append(name)
            return ret
        return fn

    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")], pre_save=hook("pre_save"),
                       post_save=hook("post_save"), pre_load=hook("pre_load"),
                       post_load=hook("post_load"))
    saved = R.save(desc, {"x": 1})
    R.load(desc, saved.data + b"\0", {})
    assert calls == ["pre_save", "post_save", "pre_load", "post_load"]


def test_post_load_positive_return_fails_in_era_a_b():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")], post_load=Hook(ret=1))
    assert R.load(desc, b"\x01\x00", {}, "legacy").kind == "error"


def test_with_tmp_runs_child_hooks_with_parent():
    def pre_save(tmp):
        tmp["doubled"] = tmp["parent"]["x"] * 2
        return 0

    def post_load(tmp, version):
        tmp["parent"]["x"] = tmp["doubled"] // 2
        return 0

    child = Description("t/tmp", 1, 1, fields=[VMSTATE_UINT16("doubled")], pre_save=pre_save,
                        post_load=post_load)
    desc = Description("t", 1, 1, fields=[VMSTATE_WITH_TMP(child)])
    saved = R.save(desc, {"x": 21})
    assert saved.data == bytes.fromhex("002a")
    # get_tmp loads with field.version_id (0): the child needs minimum version 0
    child0 = Description("t/tmp", 1, 0, fields=[VMSTATE_UINT16("doubled")],
                         post_load=post_load)
    loaded = R.load(Description("t", 1, 1, fields=[VMSTATE_WITH_TMP(child0)]),
                    saved.data + b"\0", {"x": 0})
    assert loaded.ok and loaded.state["x"] == 21


def test_save_of_indeterminate_memory_is_undefined():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x")])
    out = R.save(desc, {"x": INDETERMINATE})
    assert out.kind == "undefined" and out.hazards[0].kind == "indeterminate-read"


def test_vmdesc_era_a_compresses_arrays():
    desc = Description("simple/array", 1, 1, fields=[
        Field("u16_1", F.ARRAY, "uint16", size=2, num=3)])
    out = R.save(desc, {"u16_1": [0x42, 0x43, 0x44]}, "legacy", vmdesc=True)
    assert out.vmdesc == ('{"vmsd_name": "simple/array", "version": 1, "fields": [{"name": '
                          '"u16_1", "array_len": 3, "type": "uint16", "size": 2}]}')


def test_inputs_are_not_modified():
    desc = Description("t", 1, 1, fields=[VMSTATE_UINT8("x"), VMSTATE_BOOL("b")])
    dest = {"x": 0, "b": False}
    R.load(desc, b"\x05\x01\x00", dest)
    assert dest == {"x": 0, "b": False}


def test_gtree_save_walks_key_order_and_a_null_tree_loses_its_nodes():
    from conformance.model.macros import VMSTATE_GTREE_DIRECT_KEY_V

    val = Description("v", 1, 1, fields=[VMSTATE_UINT8("x")])
    desc = Description("t", 1, 1, fields=[VMSTATE_GTREE_DIRECT_KEY_V("tree", 1, val)])
    # g_tree_foreach walks in key order whatever order the state lists the nodes
    saved = R.save(desc, {"tree": [[7, {"x": 2}], [3, {"x": 1}]]})
    assert saved.data.hex() == ("00000002" + "01" + "0000000000000003" + "01"
                                + "01" + "0000000000000007" + "02" + "00")
    ok = R.load(desc, saved.data + b"\0", {"tree": []})
    assert ok.ok and ok.state["tree"] == [[3, {"x": 1}], [7, {"x": 2}]]
    # a NULL GTree *: g_tree_insert refuses, the nodes are lost (and leak)
    lost = R.load(desc, saved.data + b"\0", {"tree": None})
    assert lost.ok and lost.state["tree"] is None
    assert [h.kind for h in lost.hazards] == ["leak", "leak"]


def test_qlist_load_into_a_non_empty_list_keeps_old_elements_only_after_one():
    """get_qlist: the first element goes to the head (before the old ones), each next
    one after the previous with next = NULL, cutting the old elements off."""
    from conformance.model.macros import VMSTATE_QLIST_V

    elem = Description("E", 1, 1, fields=[VMSTATE_UINT8("b")])
    desc = Description("t", 1, 1, fields=[VMSTATE_QLIST_V("q", 1, elem)])
    old = {"q": [{"b": 7}, {"b": 8}]}
    one = R.load(desc, bytes.fromhex("0101" "00" "00"), old)
    assert one.ok and one.state["q"] == [{"b": 1}, {"b": 7}, {"b": 8}]
    two = R.load(desc, bytes.fromhex("0101" "0102" "00" "00"), old)
    assert two.ok and two.state["q"] == [{"b": 1}, {"b": 2}]
    assert [h.kind for h in two.hazards] == ["leak"]


# ---------------------------------------------------------------------------------------
# A zero element size: vmstate.c (7.2, 10.x and master) addresses element i as
# first_elem + size * i, so with size 0 every element is element 0.  The optimized engine
# must say the same (its fast path leaves these arrays to the interpreter).

def _both_engines():
    from conformance.engines import optimized

    return (R, optimized)


NOSIZE_POINTERS = Description("dev", 1, 1, [
    Field("p", F.ARRAY | F.ARRAY_OF_POINTER, "int32", size=0, num=3)])


@pytest.mark.parametrize("variant", ("qemu-7.2", "legacy"))
def test_pointer_array_of_size_0_saves_and_loads_slot_0_every_time(variant):
    """golden/cases/flags/array-of-pointer-nosize.json under the stride convention: the
    NULL slot 1 is never reached (10.2 / 7.2 C save 000000010000000100000001)."""
    for engine in _both_engines():
        saved = engine.save(NOSIZE_POINTERS, {"p": [1, None, 3]}, variant, vmdesc=True)
        assert saved.ok and saved.data.hex() == "000000010000000100000001", engine
        # one compressed entry, as for any array of a plain info
        assert '{"name": "p", "array_len": 3, "type": "int32", "size": 4}' in saved.vmdesc
        # three values loaded into slot 0: the last one wins, slots 1 and 2 untouched
        loaded = engine.load(NOSIZE_POINTERS, bytes.fromhex("000000070000000800000009" "00"),
                             {"p": [0, None, 5]}, variant)
        assert loaded.ok and loaded.state == {"p": [9, None, 5]}, engine
        assert len(loaded.data) == 12


@pytest.mark.parametrize("variant", ("qemu-7.2", "legacy"))
def test_pointer_array_of_size_0_follows_only_a_null_slot_0(variant):
    for engine in _both_engines():
        saved = engine.save(NOSIZE_POINTERS, {"p": [None, 2, 3]}, variant)
        assert saved.kind == "undefined" and saved.path.endswith("/p[0]"), engine
        loaded = engine.load(NOSIZE_POINTERS, bytes(13), {"p": [None, 0, 0]}, variant)
        assert loaded.kind == "undefined" and loaded.path.endswith("/p[0]"), engine


@pytest.mark.parametrize("variant", VARIANTS)
def test_plain_array_of_size_0_saves_and_loads_element_0_every_time(variant):
    desc = Description("dev", 1, 1, [Field("a", F.ARRAY, "int32", size=0, num=3)])
    for engine in _both_engines():
        saved = engine.save(desc, {"a": [1, 2, 3]}, variant)
        assert saved.ok and saved.data.hex() == "000000010000000100000001", engine
        loaded = engine.load(desc, bytes.fromhex("000000070000000800000009" "00"),
                             {"a": [0, 0, 5]}, variant)
        assert loaded.ok and loaded.state == {"a": [9, 0, 5]}, engine
