"""The optimized engine gives outcomes identical to the reference engine.

Identical means Outcome.__eq__: kind, bytes, loaded state, messages, ret, byte offset,
field path, hazards, ledger, sticky file error, and the vmdesc text.  Covered here:

* the QEMU unit vectors (tests/unit/test-vmstate.c, sections 1, 2, 9-18, 21 of
  /work/shared/spec/qemu-unit-vectors.md): exact bytes, and loads truncated at every
  byte boundary;
* hand-written cases using every flag, every info and every variant, saved with and
  without vmdesc, loaded whole, truncated at every byte, with each byte flipped, and
  into hostile destinations;
* a Hypothesis differential property over generated descriptions, states,
  destinations and mutated streams (strategies/), in every variant;
* that the compiled fast path is really taken on the common shapes (STATS), that
  inputs are never modified, and that aliasing in a destination is honoured.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.engines import optimized, reference
from conformance.model import macros as M
from conformance.model.description import Description, Field, Hook, Pred
from conformance.model.flags import F
from conformance.model.infos import INFOS
from conformance.model.state import INDETERMINATE, Uninit
from conformance.model.variants import VARIANTS

ALL_VARIANTS = tuple(VARIANTS)


def assert_same(a, b, what=""):
    assert a == b, (
        f"{what}\nreference: {a.kind} {a.message!r} off={a.offset} path={a.path} "
        f"ret={a.ret} hz={a.hazards} led={a.ledger} err={a.file_error}\n  data={a.data.hex()}"
        f"\n  state={a.state}\noptimized: {b.kind} {b.message!r} off={b.offset} "
        f"path={b.path} ret={b.ret} hz={b.hazards} led={b.ledger} err={b.file_error}"
        f"\n  data={b.data.hex()}\n  state={b.state}")


def same_save(desc, state, variant, vmdesc=False, check=True):
    a = reference.save(desc, state, variant, vmdesc=vmdesc, check=check)
    b = optimized.save(desc, state, variant, vmdesc=vmdesc, check=check)
    assert_same(a, b, f"save {desc.name} {variant} vmdesc={vmdesc}")
    return a


def same_load(desc, data, dest, variant, version_id=None, check=True):
    a = reference.load(desc, data, dest, variant, version_id=version_id, check=check)
    b = optimized.load(desc, data, dest, variant, version_id=version_id, check=check)
    assert_same(a, b, f"load {desc.name} {variant} {bytes(data).hex()}")
    return a


def same_everywhere(desc, state, dest, variant, *, flips=True):
    """Save (with and without vmdesc), then load: whole, with a following byte, every
    truncation, and every single-byte flip."""
    same_save(desc, state, variant, vmdesc=True)
    saved = same_save(desc, state, variant)
    data = saved.data if saved.ok else b""
    same_load(desc, data + b"\x00", dest, variant)
    for cut in range(len(data) + 1):
        same_load(desc, data[:cut], dest, variant)
    if flips:
        for i in range(len(data)):
            for mask in (0x01, 0xFF):
                flipped = data[:i] + bytes([data[i] ^ mask]) + data[i + 1:]
                same_load(desc, flipped + b"\x00", dest, variant)
    return saved


# ---------------------------------------------------------------------------------------
# QEMU unit vectors (qemu-unit-vectors.md)

PRIMITIVE = Description("simple/primitive", 1, 1, fields=[
    M.VMSTATE_BOOL("b_1"), M.VMSTATE_BOOL("b_2"), M.VMSTATE_UINT8("u8_1"),
    M.VMSTATE_UINT16("u16_1"), M.VMSTATE_UINT32("u32_1"), M.VMSTATE_UINT64("u64_1"),
    M.VMSTATE_INT8("i8_1"), M.VMSTATE_INT8("i8_2"), M.VMSTATE_INT16("i16_1"),
    M.VMSTATE_INT16("i16_2"), M.VMSTATE_INT32("i32_1"), M.VMSTATE_INT32("i32_2"),
    M.VMSTATE_INT64("i64_1"), M.VMSTATE_INT64("i64_2")])
PRIMITIVE_STATE = {"b_1": True, "b_2": False, "u8_1": 130, "u16_1": 512, "u32_1": 70000,
                   "u64_1": 12121212, "i8_1": 65, "i8_2": -65, "i16_1": 512, "i16_2": -512,
                   "i32_1": 70000, "i32_2": -70000, "i64_1": 12121212, "i64_2": -12121212}
PRIMITIVE_WIRE = bytes.fromhex(
    "01 00 82 02 00 00 01 11 70 00 00 00 00 00 b8 f4 7c 41 bf 02 00 fe 00 00 01 11 70"
    "ff fe ee 90 00 00 00 00 00 b8 f4 7c ff ff ff ff ff 47 0b 84 00")

ARRAY = Description("simple/array", 1, 1, fields=[M.VMSTATE_UINT16_ARRAY("u16_1", 3)])

TST = Description("test/tst", 1, 1, fields=[M.VMSTATE_INT32("i")])
ARPS = Description("test/arps", 1, 1, fields=[M.VMSTATE_ARRAY_OF_POINTER_TO_STRUCT("ar", 4, TST)])
ARPP = Description("test/arps", 1, 1, fields=[M.VMSTATE_ARRAY_OF_POINTER("ar", 4, "int32")])

Q_ELEM = Description("test/queue-element", 1, 1, fields=[M.VMSTATE_BOOL("b"),
                                                         M.VMSTATE_UINT8("u8")])
QUEUE = Description("test/queue", 1, 1, fields=[
    M.VMSTATE_INT16("i16"), M.VMSTATE_QTAILQ_V("q", 1, Q_ELEM), M.VMSTATE_INT32("i32")])

INTERVAL = Description("interval", 1, 1, fields=[M.VMSTATE_UINT64("low"),
                                                 M.VMSTATE_UINT64("high")])
MAPPING = Description("mapping", 1, 1, fields=[M.VMSTATE_UINT64("phys_addr"),
                                               M.VMSTATE_UINT32("flags")])
DOMAIN = Description("domain", 1, 1, fields=[
    M.VMSTATE_INT32("id"), M.VMSTATE_GTREE_V("mappings", 1, INTERVAL, MAPPING)])
DOMAIN_STATE = {"id": 6, "mappings": [
    [{"low": 0x1000, "high": 0x1FFF}, {"phys_addr": 0xA000, "flags": 1}],
    [{"low": 0x4000, "high": 0x4FFF}, {"phys_addr": 0xE0000, "flags": 2}]]}

QL_ELEM = Description("test/queue list", 1, 1, fields=[M.VMSTATE_UINT32("id")])
QLIST = Description("test/container/qlist", 1, 1, fields=[
    M.VMSTATE_UINT32("id"), M.VMSTATE_QLIST_V("list", 1, QL_ELEM)])

# (section, description, source state, destination, wire incl. the trailing EOF byte)
UNIT_VECTORS = [
    ("1 simple/primitive", PRIMITIVE, PRIMITIVE_STATE, {k: 0 for k in PRIMITIVE_STATE},
     PRIMITIVE_WIRE),
    ("2 simple/array", ARRAY, {"u16_1": [0x42, 0x43, 0x44]}, {"u16_1": [0, 0, 0]},
     bytes.fromhex("00 42 00 43 00 44 00")),
    ("9/10 arr/ptr/str/no0", ARPS, {"ar": [{"i": k} for k in range(4)]},
     {"ar": [{"i": 0} for _ in range(4)]},
     bytes.fromhex("00 00 00 00 00 00 00 01 00 00 00 02 00 00 00 03 00")),
    ("11/12 arr/ptr/str/0", ARPS, {"ar": [{"i": 0}, None, {"i": 2}, {"i": 3}]},
     {"ar": [{"i": 0}, None, {"i": 0}, {"i": 0}]},
     bytes.fromhex("00 00 00 00 30 00 00 00 02 00 00 00 03 00")),
    ("13/14 arr/ptr/prim/0", ARPP, {"ar": [0, None, 2, 3]}, {"ar": [3, None, 1, 0]},
     bytes.fromhex("00 00 00 00 30 00 00 00 02 00 00 00 03 00")),
    ("15/16 qtailq", QUEUE,
     {"i16": -512, "q": [{"b": True, "u8": 130}, {"b": False, "u8": 65}], "i32": 70000},
     {"i16": 0, "q": [], "i32": 0},
     bytes.fromhex("fe 00 01 01 82 01 00 41 00 00 01 11 70 00")),
    ("17/18 gtree", DOMAIN, DOMAIN_STATE, {"id": 0, "mappings": []}, bytes.fromhex(
        "00 00 00 06 00 00 00 02 01 00 00 00 00 00 00 10 00 00 00 00 00 00 00 1f ff"
        "00 00 00 00 00 00 a0 00 00 00 00 01 01 00 00 00 00 00 00 40 00 00 00 00 00"
        "00 00 4f ff 00 00 00 00 00 0e 00 00 00 00 00 02 00 00")),
    ("21 qlist", QLIST,
     {"id": 1, "list": [{"id": 0x0A}, {"id": 0x0B00}, {"id": 0xC0000}, {"id": 0xD000000}]},
     {"id": 0, "list": []},
     bytes.fromhex("00 00 00 01 01 00 00 00 0a 01 00 00 0b 00 01 00 0c 00 00 01 0d 00 00 00 "
                   "00 00")),
]


@pytest.mark.parametrize("variant", ("qemu-7.2", "legacy"))
@pytest.mark.parametrize("vector", UNIT_VECTORS, ids=[v[0] for v in UNIT_VECTORS])
def test_unit_vector_bytes_and_every_truncation(vector, variant):
    _, desc, state, dest, wire = vector
    saved = same_save(desc, state, variant)
    assert saved.ok and saved.data + b"\x00" == wire  # save_vmstate appends QEMU_VM_EOF
    same_save(desc, state, variant, vmdesc=True)
    loaded = same_load(desc, wire, dest, variant)
    assert loaded.ok and loaded.file_error == 0 and len(loaded.data) == len(wire) - 1
    for cut in range(len(wire) + 1):
        same_load(desc, wire[:cut], dest, variant)


def test_unit_vector_loads_restore_the_source():
    """Tests 1, 10, 12, 14, 16, 18: the loaded objects (optimized engine alone)."""
    for _, desc, state, dest, wire in UNIT_VECTORS:
        out = optimized.load(desc, wire, dest, "legacy")
        assert out.ok, out.summary()
        if desc is ARPP:
            assert out.state == {"ar": [0, None, 2, 3]}
        else:
            assert out.state == state, desc.name
    # load_vmstate(): exactly the field bytes loads, but leaves the sticky -EIO
    out = optimized.load(PRIMITIVE, PRIMITIVE_WIRE[:-1], {}, "legacy")
    assert out.ok and out.file_error == -5 and out.hazards[0].kind == "sticky-eof"
    for cut in (0, len(PRIMITIVE_WIRE) // 2, len(PRIMITIVE_WIRE) - 3):
        assert optimized.load(PRIMITIVE, PRIMITIVE_WIRE[:cut], {}, "legacy").kind == "error"


def test_appendix_b1_auto_alloc_vector():
    desc = Description("test/arps", 1, 1, fields=[Field(
        "ar", F.ARRAY | F.STRUCT | F.ARRAY_OF_POINTER | F.AUTO_ALLOC, None, size=4, num=4,
        vmsd=TST)])
    state = {"ar": [{"i": 0}, None, {"i": 2}, {"i": 3}]}
    saved = same_everywhere(desc, state, {"ar": [None] * 4}, "auto-alloc")
    assert saved.data + b"\x00" == bytes.fromhex("31 00 00 00 00 30 31 00 00 00 02 31 00 00 00 03 00")


# ---------------------------------------------------------------------------------------
# Hand-written cases: every flag, every info, every variant

SUB = Description("dev/sub", 2, 1, fields=[M.VMSTATE_UINT16("x"), M.VMSTATE_BOOL("y")])
SUB_STATE = {"x": 0x1234, "y": True}
NEEDED = Description("dev/extra", 1, 1, fields=[M.VMSTATE_UINT32("extra")],
                     needed=Pred("member", "extra"))


def _case(name, fields, state, dest=None, **kw):
    desc = Description("dev", 3, 1, fields=fields, **kw)
    return pytest.param(desc, state, state if dest is None else dest, id=name)


HAND_CASES = [
    _case("scalars", [M.VMSTATE_SINGLE(f"v_{i.replace(' ', '_')}", i)
                      for i in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                                "uint32", "uint64", "timer", "CPU_Double_U", "float64")],
          {"v_bool": True, "v_int8": -3, "v_int16": -300, "v_int32": -70000,
           "v_int64": -(1 << 40), "v_uint8": 200, "v_uint16": 65000, "v_uint32": 1 << 31,
           "v_uint64": (1 << 64) - 1, "v_timer": -1, "v_CPU_Double_U": 0x3FF0000000000000,
           "v_float64": 7}),
    _case("equal-and-le", [M.VMSTATE_UINT8_EQUAL("e8"), M.VMSTATE_UINT16_EQUAL("e16"),
                           M.VMSTATE_UINT32_EQUAL("e32"), M.VMSTATE_INT32_EQUAL("ei32"),
                           M.VMSTATE_UINT64_EQUAL("e64"), M.VMSTATE_INT32_POSITIVE_LE("le")],
          {"e8": 1, "e16": 2, "e32": 3, "ei32": -4, "e64": 5, "le": 6},
          {"e8": 1, "e16": 2, "e32": 3, "ei32": -4, "e64": 5, "le": 10}),
    _case("equal-mismatch", [M.VMSTATE_UINT32_EQUAL("e32"), M.VMSTATE_INT32_POSITIVE_LE("le")],
          {"e32": 3, "le": 6}, {"e32": 4, "le": 5}),
    _case("out-of-range-values", [M.VMSTATE_UINT8("a"), M.VMSTATE_INT8("b"),
                                  M.VMSTATE_BOOL("c")], {"a": 300, "b": 200, "c": 5}),
    _case("arrays", [M.VMSTATE_UINT8_ARRAY("a8", 100), M.VMSTATE_INT8_ARRAY("s8", 3),
                     M.VMSTATE_UINT32_ARRAY("a32", 5), M.VMSTATE_BOOL_ARRAY("bo", 3),
                     M.VMSTATE_INT64_ARRAY("a64", 2), M.VMSTATE_TIMER_ARRAY("t", 1)],
          {"a8": list(range(100)), "s8": [-1, 0, 1], "a32": [1, 2, 3, 4, 5],
           "bo": [True, False, True], "a64": [-1, 1], "t": [-1]},
          {"a8": [0] * 101, "s8": [0] * 3, "a32": [9] * 6, "bo": [False] * 3, "a64": [0, 0],
           "t": [0]}),
    _case("array-too-short", [M.VMSTATE_UINT32_ARRAY("a32", 4)], {"a32": [1, 2]}),
    _case("struct-and-vstruct", [M.VMSTATE_STRUCT("s", SUB), M.VMSTATE_VSTRUCT("vs", SUB, 1),
                                 M.VMSTATE_STRUCT_ARRAY("sa", 2, SUB),
                                 M.VMSTATE_STRUCT_POINTER("sp", SUB)],
          {"s": SUB_STATE, "vs": SUB_STATE, "sa": [SUB_STATE, SUB_STATE], "sp": SUB_STATE}),
    _case("null-struct-pointer", [M.VMSTATE_STRUCT_POINTER("sp", SUB)], {"sp": None}),
    _case("varrays", [M.VMSTATE_INT32("n32"), M.VMSTATE_VARRAY_INT32("vi", "n32", "uint16"),
                      M.VMSTATE_UINT32("nu32"), M.VMSTATE_VARRAY_UINT32("vu", "nu32", "int8"),
                      M.VMSTATE_UINT16("n16"),
                      M.VMSTATE_VARRAY_UINT16_UNSAFE("v16", "n16", "uint32"),
                      M.VMSTATE_UINT8("n8"), M.VMSTATE_STRUCT_VARRAY_UINT8("v8", "n8", SUB),
                      M.VMSTATE_VARRAY_MULTIPLY("vm", "nu32", 2, "uint8")],
          {"n32": 2, "vi": [1, 2], "nu32": 3, "vu": [-1, 0, 1], "n16": 1, "v16": [7],
           "n8": 2, "v8": [SUB_STATE, SUB_STATE], "vm": [1, 2, 3, 4, 5, 6]}),
    _case("varray-negative-count", [M.VMSTATE_INT32("n32"),
                                    M.VMSTATE_VARRAY_INT32("vi", "n32", "uint16")],
          {"n32": -1, "vi": None}),
    _case("buffers", [M.VMSTATE_BUFFER("b", 6), M.VMSTATE_UINT32("len"),
                      M.VMSTATE_VBUFFER("vb", "len"), M.VMSTATE_VBUFFER_MULTIPLY("vm", "len", 2),
                      M.VMSTATE_UNUSED(3), M.VMSTATE_BUFFER_POINTER_UNSAFE("bp", 2)],
          {"b": b"abcdef", "len": 2, "vb": b"xy", "vm": b"1234", "bp": b"zz"},
          {"b": b"000000extra", "len": 0, "vb": b"..", "vm": b"....", "bp": b"??"}),
    _case("buffer-too-short", [M.VMSTATE_BUFFER("b", 6)], {"b": b"abc"}),
    _case("vbuffer-alloc", [M.VMSTATE_UINT32("len"), M.VMSTATE_VBUFFER_ALLOC_UINT32("vb", "len")],
          {"len": 3, "vb": b"abc"}, {"len": 0, "vb": None}),
    _case("varray-alloc", [M.VMSTATE_UINT32("n"), M.VMSTATE_VARRAY_UINT32_ALLOC("va", "n", "uint16"),
                           M.VMSTATE_INT32("ns"), M.VMSTATE_STRUCT_VARRAY_ALLOC("sa", "ns", SUB)],
          {"n": 2, "va": [1, 2], "ns": 1, "sa": [SUB_STATE]},
          {"n": 0, "va": None, "ns": 0, "sa": [SUB_STATE]}),
    _case("bitmap-gbytearray-capability", [M.VMSTATE_UINT32("bits"), M.VMSTATE_BITMAP("bm", "bits"),
                                           M.VMSTATE_GBYTEARRAY("gba"),
                                           M.VMSTATE_SINGLE("cap", "capability")],
          {"bits": 70, "bm": (1 << 69) | 5, "gba": b"hello", "cap": "x-ignore-shared"}),
    _case("fd-is-undefined", [M.VMSTATE_SINGLE("fd", "fd")], {"fd": 3}),
    _case("pointers", [M.VMSTATE_POINTER("p", "uint32"), M.VMSTATE_TIMER_PTR("t")],
          {"p": 5, "t": -1}, {"p": 0, "t": 0}),
    _case("null-pointer", [M.VMSTATE_POINTER("p", "uint32")], {"p": None}),
    _case("indeterminate", [M.VMSTATE_UINT32("u"), M.VMSTATE_BUFFER("b", 2)],
          {"u": INDETERMINATE, "b": Uninit(2)}),
    _case("pointer-arrays", [M.VMSTATE_ARRAY_OF_POINTER("ap", 3, "uint16"),
                             M.VMSTATE_ARRAY_OF_POINTER_TO_STRUCT("aps", 3, SUB),
                             M.VMSTATE_UINT32("n"),
                             M.VMSTATE_VARRAY_OF_POINTER_UINT32("vap", "n", "int8")],
          {"ap": [1, None, 3], "aps": [None, SUB_STATE, SUB_STATE], "n": 2, "vap": [None, -2]},
          {"ap": [0, None, 0], "aps": [None, {"x": 0, "y": False}, {"x": 1, "y": True}],
           "n": 2, "vap": [None, 0]}),
    _case("pointer-array-mismatched-null", [M.VMSTATE_ARRAY_OF_POINTER_TO_STRUCT("aps", 3, SUB)],
          {"aps": [None, SUB_STATE, SUB_STATE]}, {"aps": [SUB_STATE, None, SUB_STATE]}),
    _case("auto-alloc", [M.VMSTATE_UINT32("n"),
                         M.VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC("q", "n", SUB)],
          {"n": 4, "q": [SUB_STATE, None, SUB_STATE, None]}, {"n": 4, "q": [None] * 4}),
    _case("auto-alloc-populated", [M.VMSTATE_UINT32("n"),
                                   M.VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC("q", "n", SUB)],
          {"n": 2, "q": [SUB_STATE, None]}, {"n": 2, "q": [SUB_STATE, SUB_STATE]}),
    _case("alloc-pointer-array", [M.VMSTATE_UINT32("n"), Field(
        "q", F.POINTER | F.VARRAY_UINT32 | F.ARRAY_OF_POINTER | F.STRUCT | F.ALLOC, None,
        size=4, num_member="n", vmsd=SUB)],
          {"n": 3, "q": [SUB_STATE, None, SUB_STATE]}, {"n": 3, "q": [None, SUB_STATE, None]}),
    _case("versions-and-tests", [M.VMSTATE_UINT8("a"), M.VMSTATE_UINT8_V("new", 4),
                                 M.VMSTATE_UINT16_V("v2", 2),
                                 M.VMSTATE_UINT32_TEST("t", Pred("member", "a")),
                                 M.VMSTATE_UINT32_TEST("tv", Pred("version_at_least", value=3)),
                                 M.VMSTATE_UINT32_TEST("eq", Pred("equals", "a", 0)),
                                 M.VMSTATE_UINT8_TEST("lam", lambda o, v: v >= 2)],
          {"a": 1, "new": 2, "v2": 3, "t": 4, "tv": 5, "eq": 6, "lam": 7}),
    _case("must-exist", [M.VMSTATE_UINT8("a"),
                         M.VMSTATE_VALIDATE("check", Pred("equals", "a", 1))], {"a": 1},
          {"a": 0}),
    _case("must-exist-fails", [M.VMSTATE_UINT8("a"),
                               M.VMSTATE_VALIDATE("check", Pred("equals", "a", 2))], {"a": 1}),
    _case("hooks", [M.VMSTATE_UINT8("a"), M.VMSTATE_UINT8("b")], {"a": 1, "b": 2},
          pre_save=Hook(0, (("a", 9),)), post_load=Hook(0, (("b", 7),))),
    _case("hook-fails", [M.VMSTATE_UINT8("a")], {"a": 1}, pre_save=Hook(-1),
          pre_load=Hook(-22)),
    _case("post-load-fails", [M.VMSTATE_UINT8("a")], {"a": 1}, post_load=Hook(1),
          post_save=Hook(-1)),
    _case("subsections", [M.VMSTATE_UINT8("a"), M.VMSTATE_STRUCT("s", SUB)],
          {"a": 1, "s": SUB_STATE, "extra": 5}, subsections=[NEEDED]),
    _case("subsection-not-needed", [M.VMSTATE_UINT8("a")], {"a": 1, "extra": 0},
          subsections=[NEEDED]),
    _case("tmp", [M.VMSTATE_UINT8("a"), M.VMSTATE_WITH_TMP(Description(
        "dev/tmp", 1, 1, fields=[M.VMSTATE_UINT16("t")], pre_save=lambda o: o.__setitem__(
            "t", o["parent"]["a"] * 2), post_load=lambda o, v: o["parent"].__setitem__(
            "a", o["t"])))], {"a": 3}),
    _case("queues-and-gtrees", [M.VMSTATE_QTAILQ_V("q", 1, SUB), M.VMSTATE_QLIST_V("l", 1, SUB),
                                M.VMSTATE_GTREE_DIRECT_KEY_V("g", 1, SUB),
                                M.VMSTATE_GTREE_V("gk", 1, INTERVAL, SUB)],
          {"q": [SUB_STATE], "l": [SUB_STATE, SUB_STATE], "g": [[5, SUB_STATE]],
           "gk": [[{"low": 1, "high": 2}, SUB_STATE]]},
          {"q": [], "l": [], "g": [], "gk": []}),
    _case("terminator", [M.VMSTATE_UINT8("a")], {"a": 1}, terminator=0x10000),
    _case("duplicate-names", [M.VMSTATE_UINT8("a"), M.VMSTATE_UINT8("a", member="b"),
                              M.VMSTATE_UINT8_ARRAY("arr", 3),
                              M.VMSTATE_UINT8_ARRAY("arr", 2, member="arr2")],
          {"a": 1, "b": 2, "arr": [1, 2, 3], "arr2": [4, 5]}),
    _case("missing-members", [M.VMSTATE_UINT8("a"), M.VMSTATE_STRUCT("s", SUB),
                              M.VMSTATE_UINT8_ARRAY("arr", 2), M.VMSTATE_BUFFER("b", 2)],
          {"a": 1}, {}),
    _case("multiply-elements-single", [Field("m", F.SINGLE | F.MULTIPLY_ELEMENTS, "uint8",
                                             size=1, num=2)], {"m": 4}),
]


def _sizes_from_stream(desc) -> bool:
    """A flipped byte in a VBUFFER size, a bitmap length or a VMS_ALLOC counter makes the
    REFERENCE allocate gigabytes (bytes(size), a list of n elements) or read millions of
    words: no byte flips there (truncations still run)."""
    return any(field.flags & (F.VBUFFER | F.ALLOC) for _, field in desc.all_fields())


@pytest.mark.parametrize("variant", ALL_VARIANTS)
@pytest.mark.parametrize("desc,state,dest", HAND_CASES)
def test_hand_cases(desc, state, dest, variant):
    same_everywhere(desc, state, dest, variant,
                    flips=len(desc.fields) < 12 and not _sizes_from_stream(desc))
    # unchecked runs reach the engines' own handling of descriptions check() rejects
    same_save(desc, state, variant, check=False)
    saved = reference.save(desc, state, variant, check=False)
    if saved.ok:
        same_load(desc, saved.data + b"\x00", dest, variant, check=False)
    # other versions: too old / too new / older layouts
    for version in (0, 1, 2, 4):
        same_load(desc, (saved.data if saved.ok else b"") + b"\x00", dest, variant,
                  version_id=version)


def test_corrupted_sizes_do_not_allocate_the_size():
    """Sizes read from a corrupted stream: both engines give QEMU's outcome without
    allocating the size (qemu_get_buffer copies only what the stream holds)."""
    desc = Description("dev", 3, 1, fields=[M.VMSTATE_UINT32("len"), M.VMSTATE_VBUFFER("vb", "len"),
                                           M.VMSTATE_UINT32("bits"), M.VMSTATE_BITMAP("bm", "bits")])
    data = bytes.fromhex("7f000002") + b"xy\x00"
    out = optimized.load(desc, data, {"len": 0, "vb": b".."}, "legacy")
    assert (out.kind, out.message, out.offset, out.path) == (
        "undefined", "the load writes 3 bytes into a buffer of 2", 7, "dev/vb")
    assert out == reference.load(desc, data, {"len": 0, "vb": b".."}, "legacy")
    data = bytes.fromhex("00000000 7f000046") + b"\x00" * 16
    dest = {"len": 0, "vb": b"", "bits": 0, "bm": 0}
    out = optimized.load(desc, data, dest, "legacy")
    # ~2^25 words for a destination bitmap of 0 bits: written past its end (class B2),
    # decided before a word is read
    assert (out.kind, out.offset, out.file_error) == ("undefined", 8, 0)
    assert out.message.startswith("get_bitmap writes 33292290 words into a bitmap of 0")
    assert out == reference.load(desc, data, dest, "legacy")


def test_hand_cases_cover_every_flag_and_info():
    """The hand cases are the coverage claim: every canonical flag and every info of the
    catalogue appears in some field (markers: in the pointer-array cases' vmdesc)."""
    flags = F(0)
    infos = set()
    for param in HAND_CASES:
        desc = param.values[0]
        for _, field in desc.all_fields():
            flags |= field.flags
            if field.info:
                infos.add(field.info)
    assert flags == F(sum(F)), F(sum(F)) & ~flags
    assert set(INFOS) - infos == {"nullptr", "ptr-marker"}
    ptr_case = next(p for p in HAND_CASES if p.id == "pointer-arrays").values
    assert '"nullptr"' in optimized.save(ptr_case[0], ptr_case[1], "legacy", vmdesc=True).vmdesc
    auto_case = next(p for p in HAND_CASES if p.id == "auto-alloc").values
    assert '"ptr-marker"' in optimized.save(auto_case[0], auto_case[1], "auto-alloc",
                                            vmdesc=True).vmdesc


# ---------------------------------------------------------------------------------------
# The fast path is taken, inputs are untouched, aliasing is honoured


def _fast_counts():
    return optimized.STATS["save_fast"], optimized.STATS["load_fast"]


@pytest.mark.parametrize("corpus", ["scalar-heavy", "array-heavy", "pointer-array",
                                    "deep-nesting"])
def test_bench_corpora_take_the_fast_path(corpus):
    from conformance.bench.corpora import CORPORA

    desc, variant, state, dest = CORPORA[corpus]()
    before = copy.deepcopy((state, dest))
    save0, load0 = _fast_counts()
    saved = same_save(desc, state, variant)
    loaded = same_load(desc, saved.data + b"\x00", dest, variant)
    save1, load1 = _fast_counts()
    assert (save1 - save0, load1 - load0) == (1, 1), "the compiled fast path was not used"
    assert loaded.ok and (state, dest) == before
    if variant == "auto-alloc":
        assert sum(1 for entry in loaded.ledger if entry.__class__.__name__ == "Allocation") == 512


def test_fast_path_declines_what_it_cannot_vouch_for():
    desc = Description("d", 1, 1, fields=[M.VMSTATE_UINT8("a"), M.VMSTATE_UINT32_EQUAL("e")])
    save0, load0 = _fast_counts()
    same_load(desc, b"\x01\x00\x00\x00\x02\x00", {"a": 0, "e": 3}, "legacy")  # mismatch
    same_load(desc, b"\x01\x00", {"a": 0, "e": 2}, "legacy")  # short input
    assert _fast_counts() == (save0, load0)


def test_aliasing_in_the_destination_follows_deepcopy():
    shared = {"x": 0, "y": False}
    desc = Description("d", 1, 1, fields=[M.VMSTATE_STRUCT("s1", SUB), M.VMSTATE_STRUCT("s2", SUB)])
    data = b"\x00\x01\x01\x00\x02\x00\x00"
    out = same_load(desc, data, {"s1": shared, "s2": shared}, "legacy")
    assert out.state["s1"] is out.state["s2"] and out.state["s1"]["x"] == 2
    assert shared == {"x": 0, "y": False}


def test_plans_are_cached_per_description_object():
    p1 = optimized.compile_plan(PRIMITIVE, "legacy")
    assert optimized.compile_plan(PRIMITIVE, "legacy") is p1
    assert optimized.compile_plan(PRIMITIVE, "auto-alloc") is not p1
    other = Description("simple/primitive", 1, 1, fields=PRIMITIVE.fields)
    assert optimized.compile_plan(other, "legacy") is not p1


def test_dump_source_shows_fused_runs():
    source = optimized.dump_source(PRIMITIVE, "legacy")
    assert "def save_fast(o)" in source and "def load_fast_v1(buf, src)" in source
    # the 14 primitives are one pack and one unpack_from
    assert source.count(".pack(") == 1 and source.count(".unpack_from(") == 1
    compile(source, "<dump>", "exec")


# ---------------------------------------------------------------------------------------
# Differential property over generated cases (strategies/)

strategies = pytest.importorskip("strategies.descriptions")
from strategies.descriptions import descriptions  # noqa: E402
from strategies.values import destinations, states  # noqa: E402


@pytest.mark.parametrize("variant", ALL_VARIANTS)
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_differential_generated(variant, data):
    desc = data.draw(descriptions(variant), label="description")
    src = data.draw(states(desc), label="source")
    vmdesc = data.draw(st.booleans(), label="vmdesc")
    saved = same_save(desc, src, variant, vmdesc=vmdesc)
    dest = data.draw(destinations(desc, src, variant), label="destination")
    stream = saved.data if saved.ok else b""
    mode = data.draw(st.sampled_from(["whole", "eof", "truncate", "flip", "insert"]))
    if mode == "eof":
        stream += b"\x00"
    elif mode == "truncate":
        stream = stream[:data.draw(st.integers(0, len(stream)))]
    elif mode == "flip" and stream:
        i = data.draw(st.integers(0, len(stream) - 1))
        stream = stream[:i] + bytes([stream[i] ^ data.draw(st.integers(1, 255))]) + stream[i + 1:]
    elif mode == "insert":
        i = data.draw(st.integers(0, len(stream)))
        stream = stream[:i] + data.draw(st.sampled_from([b"\x05", b"\x30", b"\x31", b"\x00"])) + stream[i:]
    same_load(desc, stream, dest, variant)


def test_invalid_descriptions_are_rejected_not_crashed():
    """Regression (found by strategies/properties.py invalid-flags): a STRUCT field with
    no sub-description crashed plan compilation instead of yielding the rejection."""
    for fields in ([Field("bad", F.STRUCT, None, num=1)], [Field("bad", F.SINGLE, None)]):
        desc = Description("dev", 0, 0, fields=fields)
        for variant in ALL_VARIANTS:
            out = same_save(desc, {}, variant)
            assert out.kind == "rejected"
            assert same_load(desc, b"\x00", {}, variant).kind == "rejected"


def test_subsection_loads_take_the_fast_path():
    sub = Description("dev/extra", 1, 1, fields=[M.VMSTATE_UINT32("extra")],
                      needed=Pred("member", "extra"))
    desc = Description("dev", 1, 1, fields=[M.VMSTATE_UINT8("a")], subsections=[sub])
    data = optimized.save(desc, {"a": 1, "extra": 7}, "legacy").data
    _, load0 = _fast_counts()
    out = same_load(desc, data + b"\x00", {"a": 0, "extra": 0}, "legacy")
    assert out.state == {"a": 1, "extra": 7} and _fast_counts()[1] == load0 + 1
    # a duplicated subsection loads twice; an unknown one is the complete path's error
    same_load(desc, data + data[1:] + b"\x00", {"a": 0, "extra": 0}, "legacy")
    unknown = data.replace(b"dev/extra", b"dev/extrb")
    assert same_load(desc, unknown + b"\x00", {"a": 0, "extra": 0}, "legacy").kind == "error"


def test_plan_cache_is_bounded():
    """A plan holds its description, so the cache's weak references alone never drop
    one: fuzzing with fresh descriptions grew without bound before the cap."""
    from conformance.engines.optimized import plan as plan_mod

    for k in range(plan_mod._CACHE_SIZE + 40):
        plan_mod.compile_plan(Description(f"d{k}", 1, 1, [Field("a", F.SINGLE, "uint8", size=1)]))
        assert len(plan_mod._CACHE) <= plan_mod._CACHE_SIZE
