"""The property suite (strategies/properties.py) and the engine regressions it found."""

from __future__ import annotations

import time

import pytest

from conformance.engines import optimized, reference
from conformance.model.description import Description, Field
from conformance.model.flags import F

# ---------------------------------------------------------------------------------------
# Regressions: minimal reproducers of engine bugs the properties found


_NO_FLAG = F(0)


def _vbuffer_desc(extra=_NO_FLAG):
    return Description("dev", 0, 0, [
        Field("len", F.SINGLE, "uint32", size=4),
        Field("vb", F.VBUFFER | F.POINTER | extra, "buffer", size_member="len"),
    ])


def test_null_vbuffer_of_size_zero_round_trips():
    """vmstate_save_state_v asserts ``first_elem || !n_elems || !size``: a NULL VBUFFER
    whose size member is 0 passes and put_buffer copies 0 bytes.  The reference engine
    used to call this a null dereference (found by the round-trip property)."""
    for variant in ("qemu-7.2", "legacy", "auto-alloc", "alloc"):
        for extra in (F(0), F.ALLOC):
            desc = _vbuffer_desc(extra)
            out = reference.save(desc, {"len": 0, "vb": None}, variant)
            assert out.kind == "ok", out.summary()
            assert out.data == b"\x00\x00\x00\x00"
            back = reference.load(desc, out.data + b"\x00", {"len": 7, "vb": None}, variant)
            assert back.kind == "ok", back.summary()
            assert back.state == {"len": 0, "vb": None}


def _load_guarded(engine, desc, data, dest):
    """Load with the model's own malloc limit (1 TiB) under the robustness property's
    address-space guard: a MemoryError is the bug."""
    from conformance.model import limits
    from strategies import properties as props

    saved = props.ROBUSTNESS_MALLOC_LIMIT
    props.ROBUSTNESS_MALLOC_LIMIT = limits.MALLOC_LIMIT
    try:
        with props._Limits():
            try:
                return engine.load(desc, data, dest, "legacy")
            except MemoryError:
                return "MemoryError"
    finally:
        props.ROBUSTNESS_MALLOC_LIMIT = saved


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_stream_count_does_not_materialise_a_varray_alloc(engine):
    """VARRAY_UINT32|POINTER|ALLOC whose counter the stream sets to 2^31-1: QEMU would
    g_malloc lazily-backed memory and fail at EOF; the model does not build 2^31 elements
    and says so with a ``limit`` outcome (conformance/limits.py).  Found by robustness."""
    desc = Description("dev", 0, 0, [
        Field("n", F.SINGLE, "uint32", size=4),
        Field("va", F.VARRAY_UINT32 | F.POINTER | F.ALLOC, "uint8", size=1, num_member="n")])
    out = _load_guarded(engine, desc, (0x7FFFFFFF).to_bytes(4, "big") + b"\x01\x02",
                        {"n": 0, "va": None})
    assert out != "MemoryError" and out.kind == "limit" and out.path == "dev/va"


def _struct_varray_alloc() -> Description:
    inner = Description("T", 1, 1, [
        Field("pair", F.ARRAY | F.STRUCT, None, size=4, num=2, vmsd=Description("P", 1, 1, [
            Field("a", F.SINGLE, "uint16", size=2), Field("b", F.SINGLE, "uint16", size=2)])),
        Field("q", F.SINGLE, "uint64", size=8)])
    return Description("dev", 0, 0, [
        Field("n", F.SINGLE, "uint16", size=2),
        Field("va", F.VARRAY_UINT16 | F.POINTER | F.STRUCT | F.ALLOC, None, size=16,
              num_member="n", vmsd=inner)])


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_stream_count_of_alloc_structs_is_bounded_by_state_values(engine):
    """An ALLOC VARRAY of structs (5 values each) whose counter the stream sets to 57,600:
    the model would build 288,000 values, more than ``state-values``, and says ``limit``
    at once (it took 13 s struct by struct; found by ``fuzz --target engines``).  Under
    the limit the structs are built and the load fails where the stream ends."""
    desc = _struct_varray_alloc()
    started = time.monotonic()
    out = engine.load(desc, (57600).to_bytes(2, "big") + bytes(20), {"n": 0, "va": None},
                      "auto-alloc")
    assert out.kind == "limit" and out.path == "dev/va" and "state-values" in out.message
    assert time.monotonic() - started < 5
    out = engine.load(desc, (1000).to_bytes(2, "big") + bytes(20), {"n": 0, "va": None},
                      "auto-alloc")
    # QEMU master's vmstate_load_state() returns -EINVAL (class R); the file error is -EIO
    assert out.kind == "error" and out.ret == -22 and out.file_error == -5
    assert out.path.startswith("dev/va[1]")


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_stream_size_does_not_materialise_a_short_buffer(engine):
    """VBUFFER|POINTER|ALLOC whose int32 size member the stream sets to 2^31-1:
    qemu_get_buffer copies the 2 bytes the stream holds and the load fails with -EIO
    (the engines used to pad the short read to 2 GiB).  Found by robustness."""
    desc = Description("dev", 0, 0, [
        Field("len", F.SINGLE, "int32", size=4),
        Field("vb", F.VBUFFER | F.POINTER | F.ALLOC, "buffer", size_member="len")])
    out = _load_guarded(engine, desc, (0x7FFFFFFF).to_bytes(4, "big") + b"\x01\x02",
                        {"len": 0, "vb": None})
    assert out != "MemoryError" and out.kind == "error" and out.ret == -5


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_short_read_keeps_the_rest_of_the_buffer(engine):
    desc = Description("dev", 0, 0, [Field("b", F.BUFFER, "buffer", size=4)])
    out = engine.load(desc, b"xy", {"b": b"abcd"}, "legacy")
    assert out.kind == "error" and out.state["b"] == b"xycd"


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_bitmap_size_from_the_stream_stops_at_the_end(engine):
    desc = Description("dev", 0, 0, [Field("bits", F.SINGLE, "uint32", size=4),
                                     Field("bm", F.VBUFFER | F.POINTER, "bitmap",
                                           size_member="bits")])
    # the destination's bitmap is as large as the stream claims: ~2^25 words are read
    # until the stream ends, nothing proportional to the size is allocated
    out = engine.load(desc, bytes.fromhex("7f000046") + bytes(16),
                      {"bits": 0x7f000046, "bm": 0}, "legacy")
    assert out.kind == "error" and out.ret == -5 and out.state["bm"] == 0
    # a destination bitmap smaller than the size loaded: written past its end
    out = engine.load(desc, bytes.fromhex("7f000046") + bytes(16), {"bits": 0, "bm": 0},
                      "legacy")
    assert out.kind == "undefined" and out.hazards[0].kind == "out-of-bounds"


def test_struct_array_elements_with_subsections_misparse_like_qemu():
    """Why descriptions() gives array elements no subsections: vmstate_subsection_load()
    of element 0 takes element 1's subsection (same VMSD name prefix) as its own, so the
    load succeeds with element 0 holding element 1's value and element 1 untouched.
    Found by the round-trip property; QEMU's heuristic does the same (not an engine bug).
    """
    sub = Description("T/sub", 0, 0, [Field("x", F.SINGLE, "uint8", size=1)])
    elem = Description("T", 0, 0, [], [sub])
    desc = Description("dev", 0, 0, [Field("s", F.STRUCT | F.ARRAY, None, size=1, num=2,
                                            vmsd=elem)])
    src = {"s": [{"x": 1}, {"x": 2}]}
    out = reference.save(desc, src, "legacy")
    back = reference.load(desc, out.data + b"\x00", {"s": [{"x": 0}, {"x": 0}]}, "legacy")
    assert back.kind == "ok"
    assert back.state == {"s": [{"x": 2}, {"x": 0}]}  # silently wrong, as in QEMU


def test_null_scalar_pointer_is_still_an_assertion():
    desc = Description("dev", 0, 0, [Field("p", F.SINGLE | F.POINTER, "uint32", size=4)])
    assert reference.save(desc, {"p": None}, "legacy").kind == "abort"


# ---------------------------------------------------------------------------------------
# The property grid: property x variant x field family, one pytest item per point, so
# ``pytest -n auto`` spreads them over the cores (xdist splits tests, not examples).
# VMSTATE_PROPERTY_ENGINES=reference,optimized adds engines (one parameter).

import os  # noqa: E402

from strategies import properties  # noqa: E402

ENGINES = tuple(e for e in os.environ.get("VMSTATE_PROPERTY_ENGINES",
                                          "reference,optimized").split(",")
                if e)


def _grid():
    for name, prop in properties.PROPERTIES.items():
        engines = ENGINES if name not in ("valid-trees",) else ENGINES[:1]
        for eng in engines:
            for variant, family in prop.grid():
                yield pytest.param(name, eng, variant, family,
                                   id=f"{name}-{eng}-{variant}-{family}")


@pytest.mark.parametrize("name,engine,variant,family", list(_grid()))
def test_property(name, engine, variant, family):
    properties.build(name, engine, variant, family)()


def test_zero_and_uninit_structs_are_fresh_copies():
    """zero_struct/uninit_struct copy one cached template per description: no two calls
    share a container, so loading into one allocated element never changes another."""
    from conformance.model.state import INDETERMINATE, uninit_struct, zero_struct

    inner = _struct_varray_alloc().fields[1].vmsd
    for make in (zero_struct, uninit_struct):
        a, b = make(inner), make(inner)
        assert a == b and a is not b and a["pair"] is not b["pair"]
        assert a["pair"][0] is not b["pair"][0] and a["pair"][0] is not a["pair"][1]
        a["pair"][0]["a"] = 7
        assert b["pair"][0]["a"] != 7 and a["pair"][1]["a"] != 7
    assert zero_struct(inner) == {"pair": [{"a": 0, "b": 0}, {"a": 0, "b": 0}], "q": 0}
    assert uninit_struct(inner)["q"] is INDETERMINATE
