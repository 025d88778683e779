"""The codec table (engines/codecs.py) is the one definition both engines use."""

from __future__ import annotations

import attrs
import pytest

from conformance.engines import codecs, optimized, reference
from conformance.model.description import Description
from conformance.model.infos import lookup
from conformance.model.macros import VMSTATE_UINT16, VMSTATE_UINT16_ARRAY, VMSTATE_UINT32

ENGINES = (reference, optimized)


def _desc() -> Description:
    # a fresh object each time: the optimized engine caches plans per description
    return Description("dev", version_id=1, minimum_version_id=1,
                       fields=(VMSTATE_UINT32("a"), VMSTATE_UINT16("b"),
                               VMSTATE_UINT16_ARRAY("c", 3)))


STATE = {"a": 0x01020304, "b": 0x0506, "c": [0x0708, 0x090A, 0x0B0C]}
BIG_ENDIAN = bytes.fromhex("01020304" "0506" "0708090a0b0c")
LITTLE_ENDIAN_U16 = bytes.fromhex("01020304" "0605" "08070a090c0b")


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.NAME)
def test_stock_codecs(engine):
    out = engine.save(_desc(), STATE)
    assert out.ok and out.data == BIG_ENDIAN
    back = engine.load(_desc(), out.data, {"a": 0, "b": 0, "c": [0, 0, 0]})
    assert back.ok and back.state == STATE


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.NAME)
def test_one_codec_change_reaches_both_engines(engine, monkeypatch):
    """Replace uint16's codec by a little-endian one: save and load change in both
    engines, through the interpreter and through compiled plans alike."""
    little = codecs._int_codec(lookup("uint16"), fmt="<H")
    monkeypatch.setitem(codecs.CODECS, "uint16", little)
    out = engine.save(_desc(), STATE)
    assert out.ok and out.data == LITTLE_ENDIAN_U16
    back = engine.load(_desc(), LITTLE_ENDIAN_U16, {"a": 0, "b": 0, "c": [0, 0, 0]})
    assert back.ok and back.state == STATE


def test_a_codec_without_an_inline_shape_is_called_by_compiled_plans(monkeypatch):
    """A codec the compiler does not know how to inline (inline=None) is still the one
    the optimized engine's outcome comes from."""
    calls = []
    stock = codecs.CODECS["uint32"]

    def put(ctx, field, value, size, w, epath, opaque):
        calls.append(epath)
        return stock.put(ctx, field, value ^ 0xFFFFFFFF, size, w, epath, opaque)

    monkeypatch.setitem(codecs.CODECS, "uint32", attrs.evolve(stock, put=put, inline=None))
    ref = reference.save(_desc(), STATE)
    opt = optimized.save(_desc(), STATE)
    assert ref.data == opt.data == bytes.fromhex("fefdfcfb") + BIG_ENDIAN[4:]
    assert calls == ["dev/a", "dev/a"]


def test_every_info_has_a_codec():
    from conformance.model.infos import INFOS

    assert set(codecs.CODECS) == set(INFOS)
    for name, codec in codecs.CODECS.items():
        assert codec.info is INFOS[name]
        if codec.inline in ("int", "bool", "equal", "le"):
            assert codec.packer.size == codec.info.width

