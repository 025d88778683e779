"""Migration-file framing: reading, byte-exact re-encoding, listings, errors, the CLI."""

from __future__ import annotations

import io
import json
import shutil
import struct
from pathlib import Path

import pytest

from conformance.cli import migration as migcli
from conformance.migration import migfile, vmdesc
from conformance.migration.migfile import FormatError

DATA = Path(__file__).parent / "data" / "qemu-7.2"
PC_MIN = DATA / "pc-min.mig"


# --------------------------------------------------------------------------- builders


def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def counted(name: bytes) -> bytes:
    return bytes((len(name),)) + name


HEADER = be32(0x5145564D) + be32(3)


def full(sid, idstr: bytes, body: bytes, inst=0, ver=1, kind=4, footer=True) -> bytes:
    rec = bytes((kind,)) + be32(sid) + counted(idstr) + be32(inst) + be32(ver) + body
    return rec + (b"\x7e" + be32(sid) if footer else b"")


def part(sid, body: bytes, kind=2, footer=True) -> bytes:
    return bytes((kind,)) + be32(sid) + body + (b"\x7e" + be32(sid) if footer else b"")


def command(cmd: int, payload: bytes = b"") -> bytes:
    return b"\x08" + be16(cmd) + be16(len(payload)) + payload


def trailer(text: str) -> bytes:
    raw = text.encode()
    return b"\x06" + be32(len(raw)) + raw


DEV_DESC = ('{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": ['
            '{"name": "a", "type": "uint32", "size": 4}, {"name": "b", "type": "bool", "size": 1}]}')
DEV_BODY = be32(0xDEADBEEF) + b"\x01"
VMDESC = '{"page_size": 4096, "devices": [' + DEV_DESC + "]}"

RAM_SETUP = (be64(0x3000 | 0x04) + counted(b"pc.ram") + be64(0x2000) + counted(b"rom") + be64(0x1000)
             + be64(0x10))
RAM_PART = (be64(0x0000 | 0x02) + counted(b"pc.ram") + b"\x00"  # zero page, named block
            + be64(0x1000 | 0x22) + b"\x00"  # zero page, CONTINUE
            + be64(0x0000 | 0x08) + counted(b"rom") + bytes(range(256)) * 16  # full page
            + be64(0x10))


def simple_stream(footer=True, with_vmdesc=True, config=True) -> bytes:
    out = HEADER
    if config:
        out += b"\x07" + be32(3) + b"pc9"
    out += full(2, b"ram", RAM_SETUP, ver=4, kind=1, footer=footer)
    out += part(2, RAM_PART, footer=footer)
    out += part(2, be64(0x10), kind=3, footer=footer)
    out += full(5, b"dev", DEV_BODY, footer=footer)
    out += b"\x00"
    if with_vmdesc:
        out += trailer(VMDESC)
    return out


def everything_stream() -> bytes:
    """Configuration subsections, every command (PACKAGED nested), all RAM record kinds."""
    config = (b"\x07" + be32(10) + b"pc-q35-9.0"
              + b"\x05" + counted(b"configuration/target-page-bits") + be32(1) + be32(12)
              + b"\x05" + counted(b"configuration/capabilities") + be32(1) + be32(1) + counted(b"x-ignore-shared")
              + b"\x05" + counted(b"configuration/uuid") + be32(1) + bytes(range(16)))
    ram_setup = (be64(0x1000 | 0x04) + counted(b"pc.ram") + be64(0x1000) + be64(0xC0000000)
                 + be64(0x200) + be64(0x10))
    ram_part = (be64(0x02) + counted(b"pc.ram") + b"\x00"
                + be64(0x120) + be32(5) + b"zzzzz"  # COMPRESS_PAGE | CONTINUE
                + be64(0x60) + b"\x01" + be16(3) + b"xyz"  # XBZRLE | CONTINUE
                + be64(0x10))
    discard = b"\x00" + counted(b"pc.ram") + b"\x00" + be64(0) + be64(0x1000) + be64(0x4000) + be64(0x2000)
    inner_inner = full(5, b"dev", DEV_BODY) + command(2, be32(9))
    inner = (command(4) + command(7, be32(len(inner_inner))) + inner_inner
             + command(2, be32(3)) + command(5))
    desc = ('{"configuration": {"vmsd_name": "configuration", "version": 1, "fields": []}, '
            '"page_size": 4096, "devices": [' + DEV_DESC + "]}")
    return (HEADER + config + command(1) + command(2, be32(1)) + command(3, be64(0x1000) + be64(0x1000))
            + full(2, b"ram", ram_setup, ver=4, kind=1) + part(2, ram_part)
            + command(6, discard) + command(7, be32(len(inner))) + inner
            + command(8) + command(9) + command(10, counted(b"pc.ram")) + command(11) + command(42, b"??")
            + part(2, be64(0x10), kind=3) + full(6, b"dev", DEV_BODY) + b"\x00" + trailer(desc))


def roundtrip(data: bytes) -> migfile.MigrationFile:
    mf = migfile.read_migration(data)
    assert migfile.encode(mf) == data
    return mf


# --------------------------------------------------------------------------- QEMU 7.2 pc-min


@pytest.fixture(scope="module")
def pc_min():
    return migfile.read_migration(PC_MIN.read_bytes())


def test_pc_min_reencodes_byte_exact(pc_min):
    assert migfile.encode(pc_min) == PC_MIN.read_bytes()
    assert pc_min.footers is True and pc_min.page_size == 4096
    assert pc_min.configuration.machine == b"pc-i440fx-7.2"
    assert all(not isinstance(s.body, migfile.Opaque) for s in pc_min.sections())
    assert migcli.opaque_summary(pc_min) == []


def test_pc_min_analyze_migration_state_is_byte_identical(pc_min):
    got = migfile.render_json(migfile.analyze_state(pc_min))
    assert got == (DATA / "pc-min.state.json").read_text()


def test_pc_min_desc_is_byte_identical(pc_min):
    assert migfile.render_json(migfile.analyze_desc(pc_min)) == (DATA / "pc-min.desc.json").read_text()


def test_pc_min_sections_listing(pc_min):
    assert "\n".join(migfile.list_records(pc_min)) + "\n" == (DATA / "pc-min.sections.txt").read_text()


def test_pc_min_own_json(pc_min):
    state = migfile.state_json(pc_min)
    json.dumps(state)
    cpu = next(r for r in state["records"] if r.get("idstr") == "cpu")
    assert cpu["state"]["env.eip"] == 0xFFF0
    assert len(cpu["state"]["env.regs"]) == 16
    assert cpu["state"]["env.regs"][2] == 0x60FB1
    ram = state["records"][1]["ram"]
    assert ram["blocks"]["pc.ram"] == 16 << 20


def test_pc_min_locate_names_section_and_field(pc_min):
    cpu = next(s for s in pc_min.sections() if s.idstr == b"cpu")
    where = migfile.locate(pc_min, cpu.body_offset + 8 * 2 + 1)
    assert where == "FULL section 5 (cpu), field cpu/env.regs[2]"


# --------------------------------------------------------------------------- synthetic framing


def test_simple_stream_with_and_without_footers():
    mf = roundtrip(simple_stream())
    assert mf.footers is True
    old = roundtrip(simple_stream(footer=False, config=False))
    assert old.footers is False and old.configuration is None
    assert vmdesc.state_body(old.sections()[-1].body) == {"a": 0xDEADBEEF, "b": True}


def test_every_command_configuration_subsection_and_ram_record():
    data = everything_stream()
    mf = roundtrip(data)
    config = mf.configuration
    assert config.get("configuration/target-page-bits") == 12
    assert config.get("configuration/capabilities") == (b"x-ignore-shared",)
    assert config.get("configuration/uuid") == bytes(range(16))
    commands = [r for r in migfile.walk(mf.records) if isinstance(r, migfile.Command)]
    names = [c.name for c in commands]
    assert names[:4] == ["OPEN_RETURN_PATH", "PING", "POSTCOPY_ADVISE", "POSTCOPY_RAM_DISCARD"]
    assert {"PACKAGED", "POSTCOPY_LISTEN", "POSTCOPY_RUN", "ENABLE_COLO", "POSTCOPY_RESUME", "RECV_BITMAP",
            "SWITCHOVER_START", "UNKNOWN(42)"} <= set(names)
    packaged = next(c for c in commands if c.name == "PACKAGED")
    nested = next(r for r in packaged.records if isinstance(r, migfile.Command) and r.name == "PACKAGED")
    assert isinstance(nested.records[0], migfile.Section)  # a device section two packages deep
    assert vmdesc.state_body(nested.records[0].body) == {"a": 0xDEADBEEF, "b": True}
    discard = next(c for c in commands if c.name == "POSTCOPY_RAM_DISCARD")
    assert discard.args == (0, b"pc.ram", ((0, 0x1000), (0x4000, 0x2000)))
    ram_start = mf.sections()[0].body
    assert ram_start.records[0].payload[0].mr_addr == 0xC0000000  # x-ignore-shared
    listing = "\n".join(migfile.list_records(mf))
    assert "COMMAND" in listing and "  FULL" in listing and "PING 9" in listing
    state = migfile.state_json(mf)
    assert state["file"]["vmdesc"]["era"] == vmdesc.ERA_2024
    assert state["records"][0]["capabilities"] == ["x-ignore-shared"]
    json.dumps(state)
    migfile.render_json(migfile.analyze_state(mf))


def test_postcopy_block_page_size_is_recognised():
    setup = (be64(0x200000 | 0x04) + counted(b"huge") + be64(0x200000) + be64(0x200000) + be64(0x10))
    data = (HEADER + command(3, be64(0x201000) + be64(0x1000)) + full(2, b"ram", setup, ver=4, kind=1)
            + b"\x00" + trailer('{"page_size": 4096, "devices": []}'))
    mf = roundtrip(data)
    assert mf.sections()[0].body.records[0].payload[0].page_size == 0x200000


def test_missing_vmdesc_lists_sections_and_keeps_device_state_opaque(capsys):
    data = simple_stream(with_vmdesc=False)
    mf = roundtrip(data)
    dev = mf.sections()[-1]
    assert isinstance(dev.body, migfile.Opaque) and "no vmdesc" in dev.body.reason
    state = migfile.state_json(mf)
    assert "cannot be decoded" in state["file"]["note"]
    assert state["undecoded"][0]["section"] == "FULL 5 (dev)"


def test_missing_vmdesc_and_no_footers_delimits_by_the_next_header():
    data = (HEADER + full(5, b"dev", DEV_BODY + b"\x04", footer=False) + full(6, b"dev", DEV_BODY, inst=1, footer=False)
            + b"\x00")
    mf = roundtrip(data)
    sections = mf.sections()
    assert [s.section_id for s in sections] == [5, 6] and mf.tail is None
    assert sections[0].body.data == DEV_BODY + b"\x04" and "heuristic" in sections[0].body.reason


def test_missing_vmdesc_and_no_footers_keeps_the_rest_opaque():
    data = simple_stream(footer=False, with_vmdesc=False)[:-1]  # and no EOF to stop at
    mf = roundtrip(data)
    assert mf.tail is None
    rest = mf.records[-1]
    assert isinstance(rest, migfile.Opaque) and "without section footers" in rest.reason
    assert rest.offset == mf.sections()[-1].offset + migfile.record_length(mf.sections()[-1])
    assert len(mf.sections()) == 3  # the RAM sections before the undelimitable device
    assert "OPAQUE" in "\n".join(migfile.list_records(mf))


def test_bytes_after_the_stream_are_kept():
    mf = roundtrip(simple_stream() + b"junk")
    assert mf.tail.data == b"junk" and mf.vmdesc is not None


def test_vmdesc_that_disagrees_is_delimited_by_the_footer():
    text = VMDESC.replace('"type": "bool", "size": 1', '"type": "bool", "size": 1}, {"name": "c", "type": "uint8", "size": 1')
    data = simple_stream()[: -len(trailer(VMDESC))] + trailer(text)
    mf = roundtrip(data)
    assert isinstance(mf.sections()[-1].body, migfile.Opaque)
    with pytest.raises(FormatError, match="has no analyze-migration.py rendering"):
        migfile.analyze_state(mf)


# --------------------------------------------------------------------------- errors


def corrupt_footer(data: bytes) -> bytes:
    at = data.index(b"\x7e" + be32(5))
    return data[: at + 1] + be32(6) + data[at + 5 :]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"QEV", "offset 0x0: truncated file header"),
        (b"XXXX" + be32(3), "offset 0x0: bad magic"),
        (be32(0x5145564D) + be32(2), "offset 0x4: SaveVM v2 format is obsolete"),
        (be32(0x5145564D) + be32(4), "unsupported file version 4"),
        (HEADER + b"\x09", "offset 0x8: unknown record type 0x09"),
        (HEADER + b"\x04" + be32(1), "offset 0xd: truncated section idstr"),
        (simple_stream()[:60], "truncated"),
        (corrupt_footer(simple_stream()), "Mismatched section id in footer for dev"),
        (HEADER + full(5, b"dev", DEV_BODY) + full(5, b"dev", DEV_BODY, footer=False) + b"\x00" + trailer(VMDESC),
         "Missing section footer for dev"),
        (HEADER + command(2, b"\x00") + b"\x00", "command PING has length 1, QEMU requires 4"),
        (HEADER + b"\x00\x06" + be32(9) + b'{"a":', "offset 0x9: vmdesc trailer says 9 bytes"),
        (HEADER + b"\x00\x06" + be32(7) + b'{"a": [', "vmdesc JSON at offset 0xe: bad JSON"),
        (HEADER + b"\x02" + be32(3) + b"\x00", "PART of section 3 that no START opened"),
    ],
)
def test_bad_input_is_one_located_line(data, message):
    with pytest.raises(FormatError) as info:
        migfile.read_migration(data)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_cli_errors_are_one_line_with_status_1(tmp_path, capsys):
    bad = tmp_path / "bad.mig"
    bad.write_bytes(corrupt_footer(simple_stream()))
    for status in (migcli.run_decode(str(bad)), migcli.run_verify(str(bad)),
                   migcli.main(["decode", "--sections", str(bad)]),
                   migcli.main(["reencode", str(bad), "-o", str(tmp_path / "o.mig")]),
                   migcli.run_decode(str(tmp_path / "missing.mig"))):
        assert status == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 5 and "Traceback" not in err
    assert lines[0].startswith(f"vmstate-conformance: {bad}: offset 0x")


def test_cli_analyze_format_without_vmdesc_explains(tmp_path, capsys):
    path = tmp_path / "novmdesc.mig"
    path.write_bytes(simple_stream(with_vmdesc=False))
    assert migcli.run_decode(str(path), "analyze-migration") == 1
    assert "needs the vmdesc trailer" in capsys.readouterr().err
    assert migcli.run_decode(str(path), "json") == 0
    assert "cannot be decoded" in capsys.readouterr().out


# --------------------------------------------------------------------------- CLI


def test_cli_decode_formats(tmp_path, capsys):
    assert migcli.run_decode(str(PC_MIN), "analyze-migration") == 0
    assert capsys.readouterr().out == (DATA / "pc-min.state.json").read_text()
    out = io.StringIO()
    assert migcli.run_decode(str(PC_MIN), desc=True, out=out) == 0
    assert out.getvalue() == (DATA / "pc-min.desc.json").read_text()
    out = io.StringIO()
    assert migcli.run_decode(str(PC_MIN), sections=True, out=out) == 0
    assert out.getvalue() == (DATA / "pc-min.sections.txt").read_text()


def test_cli_reencode_and_verify(tmp_path, capsys):
    out = tmp_path / "out.mig"
    assert migcli.main(["reencode", str(PC_MIN), "-o", str(out)]) == 0
    assert out.read_bytes() == PC_MIN.read_bytes()
    assert migcli.main(["verify", str(PC_MIN)]) == 0
    assert "byte-exact" in capsys.readouterr().out


def test_verify_reports_first_difference_with_section_and_field(pc_min):
    data = PC_MIN.read_bytes()
    records = list(pc_min.records)
    index = next(i for i, r in enumerate(records) if isinstance(r, migfile.Section) and r.idstr == b"cpu")
    cpu = records[index]
    fields = list(cpu.body.fields)
    eip = next(i for i, f in enumerate(fields) if f.name == "env.eip")
    fields[eip] = fields[eip].replace(value=fields[eip].value ^ 1)
    records[index] = cpu.replace(body=cpu.body.replace(fields=tuple(fields)))
    changed = migfile.encode(pc_min.replace(records=tuple(records)))
    message = migcli._first_difference(pc_min, data, changed)
    assert "FULL section 5 (cpu), field cpu/env.eip" in message


def test_full_cli_wiring(tmp_path, capsys):
    cli = pytest.importorskip("conformance.cli")
    assert cli.main(["decode", str(PC_MIN), "--format", "analyze-migration"]) == 0
    assert capsys.readouterr().out == (DATA / "pc-min.state.json").read_text()
    copy = tmp_path / "copy.mig"
    shutil.copy(PC_MIN, copy)
    assert cli.main(["verify", str(copy)]) == 0


def test_zero_page_runs_are_columns_and_reencode_exact():
    zeros = b"".join(be64((i << 12) | 0x22) + bytes((i % 3,)) for i in range(1, 40))
    part_body = be64(0x02) + counted(b"pc.ram") + b"\x00" + zeros + be64(0x10)
    data = (HEADER + full(2, b"ram", RAM_SETUP, ver=4, kind=1) + part(2, part_body) + b"\x00"
            + trailer('{"page_size": 4096, "devices": []}'))
    mf = roundtrip(data)
    records = mf.sections()[1].body.records
    run = next(r for r in records if isinstance(r, migfile.ZeroRun))
    assert len(run) == 39 and run.word(0) == 0x1022 and run.fills[:3] == b"\x01\x02\x00"
    assert migfile.state_json(mf)["records"][1]["ram"]["records"]["ZERO"] == 40
    assert "RAM zero-page record" in migfile.locate(mf, run.offset + 9 * 5 + 3)


def test_bench_decode_side_by_side_with_a_stand_in_script(tmp_path):
    from conformance.bench import migration as migbench

    # A stand-in for analyze-migration.py that prints the pinned output of pc-min.
    script = tmp_path / "scripts" / "analyze-migration.py"
    script.parent.mkdir()
    script.write_text("import sys\nsys.stdout.write(open(%r).read())\n" % str(DATA / "pc-min.state.json"))
    out = io.StringIO()
    assert migbench.run([str(PC_MIN)], analyze_migration=str(tmp_path), repeat=1, out=out, as_json=True) == 0
    result = json.loads(out.getvalue())["results"][0]
    assert result["same_output"] is True
    assert result["speedup_process"] > 0 and result["ours_process"]["peak_kib"] > 0
    with pytest.raises(migbench.BenchError, match="analyze-migration.py not found"):
        migbench.run([str(PC_MIN)], analyze_migration=str(tmp_path / "nowhere"), repeat=1, out=io.StringIO())


def test_mutated_streams_parse_exactly_or_fail_with_one_line():
    """Truncations, byte flips and deletions: either a model that re-encodes to the
    same bytes, or a one-line FormatError, never another exception."""
    import random

    rng = random.Random(7)
    seeds = [everything_stream(), simple_stream(), simple_stream(footer=False), simple_stream(with_vmdesc=False)]
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        where = rng.randrange(len(data))
        action = rng.randrange(3)
        if action == 0:
            del data[where:]
        elif action == 1:
            data[where] = rng.randrange(256)
        else:
            del data[where : where + rng.randrange(1, 12)]
        data = bytes(data)
        try:
            mf = migfile.read_migration(data)
        except FormatError as exc:
            assert str(exc).isprintable()
            continue
        assert migfile.encode(mf) == data
        migfile.list_records(mf)
        json.dumps(migfile.state_json(mf))


def test_unknown_configuration_subsection_decoded_through_the_vmdesc():
    config = (b"\x07" + be32(3) + b"pc9"
              + b"\x05" + counted(b"configuration/capabilities") + be32(1) + be32(2)
              + counted(b"x-ignore-shared") + counted(b"mapped-ramX")
              + b"\x05" + counted(b"configuration/future") + be32(1) + be16(7) + counted(b"ab"))
    desc = ('{"configuration": {"vmsd_name": "configuration", "version": 1, "fields": [], "subsections": ['
            '{"vmsd_name": "configuration/future", "version": 1, "fields": [{"name": "x", "type": "uint16", "size": 2},'
            '{"name": "c", "array_len": 1, "type": "capability", "size": 3}]}]}, "page_size": 4096, "devices": []}')
    data = HEADER + config + b"\x00" + trailer(desc)
    mf = roundtrip(data)
    future = mf.configuration.get("configuration/future")
    assert vmdesc.state_body(future) == {"x": 7, "c": ["ab"]}
    assert mf.configuration.get("configuration/capabilities") == (b"x-ignore-shared", b"mapped-ramX")
    with pytest.raises(FormatError, match="unknown configuration subsection configuration/future"):
        migfile.read_migration(HEADER + config + b"\x00")


def test_full_page_runs_are_columns_over_the_file_and_reencode_exact(tmp_path):
    pages = [bytes([i]) * 4096 for i in range(4)]
    part_body = (be64(0x08) + counted(b"pc.ram") + pages[0]
                 + b"".join(be64((i << 12) | 0x28) + pages[i] for i in range(1, 4)) + be64(0x10))
    data = (HEADER + full(2, b"ram", RAM_SETUP, ver=4, kind=1) + part(2, part_body) + b"\x00"
            + trailer('{"page_size": 4096, "devices": []}'))
    mf = roundtrip(data)
    run = next(r for r in mf.sections()[1].body.records if isinstance(r, migfile.PageRun))
    assert len(run) == 3 and run.word(0) == 0x1028 and bytes(run.page(1)) == pages[2]
    assert migfile.state_json(mf)["records"][1]["ram"]["records"]["PAGE"] == 4
    assert "RAM page record" in migfile.locate(mf, run.offset + 4104 + 100)
    # the same through the CLI, which memory-maps the file and streams the comparison
    path = tmp_path / "pages.mig"
    path.write_bytes(data)
    assert migcli.run_verify(str(path), out=io.StringIO()) == 0
    out = tmp_path / "again.mig"
    assert migcli.run_reencode(str(path), str(out)) == 0 and out.read_bytes() == data


def test_memory_dump_lists_every_page_record():
    mf = migfile.read_migration(everything_stream())
    records = migfile.state_json(mf, memory=True)["records"]
    part = next(r for r in records if r.get("record") == "PART")
    pages = part["ram"]["pages"]
    assert pages[0] == {"block": "pc.ram", "addr": 0, "record": "ZERO", "fill": 0}
    assert pages[1]["record"] == "COMPRESS_PAGE" and pages[1]["block"] == "pc.ram"  # CONTINUE
    assert pages[2] == {"block": "pc.ram", "addr": 0, "record": "XBZRLE", "encoding": 1, "data": "78797a"}
    pc_min = migfile.state_json(migfile.read_migration(PC_MIN.read_bytes()), memory=True)["records"]
    pages = next(r for r in pc_min if r.get("record") == "PART")["ram"]["pages"]
    assert len(pages) == 4177 + 49 and {p["block"] for p in pages} >= {"pc.ram", "pc.bios"}
    assert all(len(p["data"]) == 8192 for p in pages if p["record"] == "PAGE")


def test_render_json_is_json_dumps_with_indent_byte_for_byte():
    """report.render_json replaces json's pure-Python indenting encoder: the same text
    for every value it renders, json.dumps itself for the others."""
    import json
    import random

    from conformance.migration.report import render_json

    rnd = random.Random(6)

    def value(depth=0):
        choice = rnd.randrange(9 if depth < 4 else 5)
        if choice == 0:
            return rnd.choice(["", "a", 'é\u2028"\\\n', "0x00 (-1)"])
        if choice == 1:
            return rnd.choice([True, False, None])
        if choice == 2:
            return rnd.randint(-10**20, 10**20)
        if choice == 3:
            return [rnd.choice(["x", "ü", "0x1"]) for _ in range(rnd.randrange(4))]
        if choice == 4:
            return rnd.choice([{}, []])
        if choice in (5, 6):
            return {rnd.choice(["k", "ké", "a b", ""]) + str(i): value(depth + 1) for i in range(rnd.randrange(4))}
        return [value(depth + 1) for _ in range(rnd.randrange(4))]

    for v in [value() for _ in range(3000)] + [{1: 2}, 1.5, {"a": [1.0]}, {"a": (1, 2)}]:
        assert render_json(v) == json.dumps(v, indent=4, separators=(",", ": ")) + "\n", v
