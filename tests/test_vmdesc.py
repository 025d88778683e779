"""vmdesc JSON: duplicate keys, JSONWriter re-encoding per era, vmdesc-driven decoding."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from conformance.migration import vmdesc
from conformance.migration.vmdesc import Decoder, FormatError, JsonObject

DATA = Path(__file__).parent / "data" / "qemu-7.2"


def trailer_text() -> bytes:
    data = (DATA / "pc-min.mig").read_bytes()
    return data[data.index(b'{"page_size') :]


# --------------------------------------------------------------------------- JSON text


def test_duplicate_keys_are_kept_and_reencoded():
    text = '{"name": "q", "type": "qtailq", "vmsd_name": "e", "version": 1, "fields": [], "vmsd_name": "e", "version": 1, "fields": [], "size": 3}'
    obj = vmdesc.loads(text)
    assert [k for k, _ in obj].count("vmsd_name") == 2
    assert vmdesc.write_json(obj) == text
    assert len(obj.groups()) == 2
    # a lookup sees what json.loads / analyze-migration.py's OrderedDict sees
    assert obj.to_plain() == json.loads(text)
    assert list(obj.to_plain()) == list(json.loads(text))


def test_pc_min_vmdesc_reencodes_byte_exact_with_json_writer():
    text = trailer_text()
    parsed = vmdesc.parse_vmdesc(text)
    assert parsed.style == "json-writer"
    assert parsed.era == vmdesc.ERA_72
    assert parsed.page_size == 4096
    assert parsed.encode() == text
    assert ("cpu", 0) in parsed.device_map()


def test_writer_eras_member_order():
    device = vmdesc.loads('{"name": "d", "instance_id": 0, "vmsd_name": "d", "version": 1, "fields": []}')
    config = vmdesc.loads('{"vmsd_name": "configuration", "version": 1, "fields": [{"name": "len", "type": "uint32", "size": 4}]}')
    old = vmdesc.write_json(vmdesc.build_vmdesc(4096, [device], era=vmdesc.ERA_72))
    assert old == ('{"page_size": 4096, "devices": [{"name": "d", "instance_id": 0, '
                   '"vmsd_name": "d", "version": 1, "fields": []}]}')
    new = vmdesc.write_json(vmdesc.build_vmdesc(4096, [device], config, era=vmdesc.ERA_2024))
    assert new.startswith('{"configuration": {"vmsd_name": "configuration", "version": 1, "fields": '
                          '[{"name": "len", "type": "uint32", "size": 4}]}, "page_size": 4096, ')
    parsed = vmdesc.parse_vmdesc(new.encode())
    assert parsed.era == vmdesc.ERA_2024 and parsed.encode() == new.encode()
    with pytest.raises(ValueError):
        vmdesc.build_vmdesc(4096, [], era=vmdesc.ERA_2024)


def test_old_qjson_style_is_recognised():
    text = b'{ "page_size" : 4096, "devices" : [{ "name" : "d", "instance_id" : 0, "fields" : [] }] }'
    parsed = vmdesc.parse_vmdesc(text)
    assert parsed.style == "qjson" and parsed.encode() == text


def test_unreproducible_text_is_kept_opaque_with_a_note():
    text = b'{"page_size":4096,"devices":[]}'
    parsed = vmdesc.parse_vmdesc(text)
    assert parsed.style is None and "opaque" in parsed.note
    assert parsed.encode() == text


@pytest.mark.parametrize(
    "text, message",
    [
        (b'{"page_size": 4096, "devices": [', "bad JSON"),
        (b'[1]', "top level is not an object"),
        (b'{"page_size": 4096}', "$.devices"),
        (b'{"devices": [{"name": "x", "instance_id": 0}]}', "$.devices[0]"),
        (b'{"page_size": 4095, "devices": []}', "$.page_size"),
        (b'{"devices": [], "x": \xff}', "not UTF-8"),
    ],
)
def test_bad_vmdesc_is_one_clear_line(text, message):
    with pytest.raises(FormatError) as info:
        vmdesc.parse_vmdesc(text, "vmdesc JSON at offset 0x10")
    assert message in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- decoding


def desc(text: str) -> JsonObject:
    return vmdesc.loads(text)


def roundtrip(desc_obj, data: bytes):
    body, stop = Decoder(data).body(desc_obj, 0, len(data), "dev")
    assert stop == len(data)
    assert vmdesc.body_bytes(body) == data
    return body


def test_scalars_arrays_and_subsections():
    d = desc(
        '{"vmsd_name": "dev", "version": 3, "fields": ['
        '{"name": "a", "type": "int16", "size": 2},'
        '{"name": "b", "type": "bool", "size": 1},'
        '{"name": "r", "array_len": 3, "type": "uint8", "size": 1},'
        '{"name": "s", "index": 0, "type": "struct", "struct": {"vmsd_name": "e", "version": 1, '
        '"fields": [{"name": "x", "type": "uint32", "size": 4}]}, "size": 4},'
        '{"name": "s", "index": 1, "type": "struct", "struct": {"vmsd_name": "e", "version": 1, '
        '"fields": [{"name": "x", "type": "uint32", "size": 4}]}, "size": 4},'
        '{"name": "buf", "type": "buffer", "size": 3},'
        '{"name": "u8e", "type": "uint8 equal", "size": 1}],'
        '"subsections": [{"vmsd_name": "dev/sub", "version": 2, "fields": ['
        '{"name": "t", "type": "timer", "size": 8}]}]}'
    )
    data = (struct.pack(">h", -2) + b"\x01" + b"\x07\x08\x09" + struct.pack(">II", 5, 6) + b"abc" + b"\xff"
            + b"\x05\x07dev/sub" + struct.pack(">I", 2) + struct.pack(">q", -1))
    body = roundtrip(d, data)
    assert vmdesc.state_body(body) == {
        "a": -2, "b": True, "r": [7, 8, 9], "s": [{"x": 5}, {"x": 6}], "buf": "616263", "u8e": 255,
        "dev/sub": {"t": -1},
    }
    assert vmdesc.analyze_body(body) == {
        "a": "0xfffe (-2)", "b": True, "r": ["0x07", "0x08", "0x09"],
        "s": [{"x": "0x00000005"}, {"x": "0x00000006"}], "buf": "61 62 63",
        "u8e": "0xff (-1)",  # analyze-migration.py reads "uint8 equal" signed
        "dev/sub": {"t": "ff ff ff ff ff ff ff ff"},
    }


def test_inline_list_and_gtree_types_decode_and_reencode():
    element = '"vmsd_name": "el", "version": 1, "fields": [{"name": "v", "type": "uint16", "size": 2}]'
    d = desc(
        '{"vmsd_name": "dev", "version": 1, "fields": ['
        '{"name": "tmp", "type": "tmp", ' + element + ', "size": 2},'
        '{"name": "vs", "type": "vstruct", ' + element + ', "size": 2},'
        '{"name": "q", "type": "qtailq", ' + element + ", " + element + ', "size": 7},'
        '{"name": "g", "type": "gtree", ' + element + ", " + element + ', "size": 27},'
        '{"name": "h", "type": "gtree", ' + element + ", " + element + ', "size": 10}]}'
    )
    data = (b"\x00\x01" + b"\x00\x02" + b"\x01\x00\x03\x01\x00\x04\x00"
            + struct.pack(">I", 2) + b"\x01" + struct.pack(">Q", 10) + b"\x00\x05"
            + b"\x01" + struct.pack(">Q", 11) + b"\x00\x06" + b"\x00"
            + struct.pack(">I", 1) + b"\x01\x00\x07\x00\x08\x00")
    body = roundtrip(d, data)
    state = vmdesc.state_body(body)
    assert state["tmp"] == {"v": 1} and state["vs"] == {"v": 2}
    assert state["q"] == [{"v": 3}, {"v": 4}]
    assert state["g"] == [{"key": 10, "value": {"v": 5}}, {"key": 11, "value": {"v": 6}}]
    assert state["h"] == [{"key": {"v": 7}, "value": {"v": 8}}]
    # analyze-migration.py prints these types as raw hex
    assert vmdesc.analyze_body(body)["q"] == "01 00 03 01 00 04 00"
    assert not vmdesc.raw_notes(body, "dev")


def test_struct_is_read_field_by_field_like_analyze_migration_even_against_its_size():
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": [{"name": "s", "type": "struct", '
             '"struct": {"vmsd_name": "e", "version": 1, "fields": [{"name": "x", "type": "uint8", "size": 1}]}, '
             '"size": 2}, {"name": "y", "type": "uint8", "size": 1}]}')
    body = roundtrip(d, b"\x01\x02")
    assert vmdesc.state_body(body) == {"s": {"x": 1}, "y": 2}
    assert "its fields take 1 bytes" in body.fields[0].note
    assert vmdesc.raw_notes(body, "dev")


def test_other_compounds_that_disagree_with_size_are_kept_raw_with_a_note():
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": [{"name": "t", "type": "vstruct", '
             '"vmsd_name": "e", "version": 1, "fields": [{"name": "x", "type": "uint8", "size": 1}], "size": 2}]}')
    body = roundtrip(d, b"\x01\x02")
    field = body.fields[0]
    assert field.kind == "raw" and "vmdesc size is 2" in field.note
    assert vmdesc.analyze_body(body) == {"t": "01 02"}


def test_era_a_null_pointer_struct_entry_is_raw():
    # vmstate.c (Era A) describes a NULL element as type struct with an empty struct, size 1
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": [{"name": "p", "type": "struct", "struct": {}, "size": 1}]}')
    body = roundtrip(d, b"\x30")
    assert body.fields[0].kind == "raw" and body.fields[0].value == b"0"


def test_missing_subsection_and_truncation_errors_name_the_place():
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": [{"name": "x", "type": "uint32", "size": 4}], '
             '"subsections": [{"vmsd_name": "dev/s", "version": 1, "fields": []}]}')
    with pytest.raises(FormatError, match=r"offset 0x0: dev/x: truncated"):
        Decoder(b"\x00").body(d, 0, 1, "dev")
    with pytest.raises(FormatError, match=r"offset 0x4: dev: subsection dev/s not found"):
        Decoder(b"\x00" * 5).body(d, 0, 5, "dev")


def test_analyze_index_out_of_sequence_is_reported():
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": [{"name": "x", "index": 1, "type": "uint8", "size": 1}]}')
    body = roundtrip(d, b"\x01")
    with pytest.raises(FormatError, match="internal index of data field unmatched"):
        vmdesc.analyze_body(body)


def test_locate_in_body_names_nested_fields():
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": [{"name": "a", "type": "uint32", "size": 4},'
             '{"name": "s", "type": "struct", "struct": {"vmsd_name": "e", "version": 1, "fields": ['
             '{"name": "x", "type": "uint8", "size": 1}, {"name": "y", "type": "uint16", "size": 2}]}, "size": 3}]}')
    body = roundtrip(d, bytes(7))
    assert vmdesc.locate_in_body(body, 2, "dev") == "dev/a"
    assert vmdesc.locate_in_body(body, 5, "dev") == "dev/s/y"


def test_compressed_integer_arrays_decode_in_one_piece():
    d = desc('{"vmsd_name": "dev", "version": 1, "fields": ['
             '{"name": "r", "array_len": 3, "type": "int16", "size": 2},'
             '{"name": "u", "array_len": 2, "type": "uint8 equal", "size": 1},'
             '{"name": "t", "array_len": 2, "type": "timer", "size": 8}]}')
    data = struct.pack(">hhh", -1, 2, 3) + b"\x80\x01" + struct.pack(">qq", -1, 5)
    body = roundtrip(d, data)
    assert body.fields[0].kind == "ints"
    assert vmdesc.state_body(body) == {"r": [-1, 2, 3], "u": [128, 1], "t": [-1, 5]}
    assert vmdesc.analyze_body(body) == {
        "r": ["0xffff (-1)", "0x0002", "0x0003"], "u": ["0x80 (-128)", "0x01"],
        "t": ["ff ff ff ff ff ff ff ff", "00 00 00 00 00 00 00 05"],
    }
    assert vmdesc.locate_in_body(body, 4, "dev") == "dev/r[2]"


@pytest.mark.parametrize("ftype", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                   "uint64", "uint8 equal", "uint16 equal", "int64 equal",
                                   "int32 equal", "uint32 equal", "int32 le"])
def test_analyze_integer_arrays_match_the_per_element_rendering(ftype):
    """A compressed integer array is rendered in C (packed, hexed, split); each element
    must read as analyze_field renders one integer of the same type."""
    import random

    from conformance.model.infos import INFOS

    info = INFOS[ftype]
    rnd = random.Random(ftype)
    values = tuple(rnd.randint(info.min, info.max) for _ in range(200)) + (info.min, info.max, 0)
    field = vmdesc.Field("a", ftype, 0, info.width, "ints", values)
    out: dict = {}
    vmdesc.render._analyze_ints(field, out)
    expected = [vmdesc.analyze_field(vmdesc.Field("a", ftype, None, info.width, "int", v)) for v in values]
    assert out["a"] == expected


def _json_trees():
    from hypothesis import strategies as st

    scalars = (st.none() | st.booleans() | st.integers(-2**64, 2**64)
               | st.text(st.characters(codec=None, exclude_categories=()), max_size=8))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4)
        | st.lists(st.tuples(st.text(max_size=6), inner), max_size=4).map(JsonObject),
        max_leaves=20)


@pytest.mark.parametrize("style", ["json-writer", "qjson"])
def test_write_json_is_what_the_streaming_writer_prints(style):
    """The joined-string renderer and the call-by-call JSONWriter model agree on any
    tree (duplicate keys, surrogates, control characters, empty containers)."""
    from hypothesis import given

    from conformance.migration.vmdesc.jsontext import write_json_with_writer

    @given(_json_trees())
    def agree(tree):
        assert vmdesc.write_json(tree, style) == write_json_with_writer(tree, style)

    agree()
    root = vmdesc.parse_vmdesc(trailer_text()).root
    assert vmdesc.write_json(root, style) == write_json_with_writer(root, style)
    with pytest.raises(FormatError):
        vmdesc.write_json(JsonObject([("x", 1.5)]), style)
