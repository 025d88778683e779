"""Issue 23: what an independent fuzzer and real C found (F1-F4, the ``.limit`` gap, U,
B2n), each pinned by the input that showed it.

The fuzz loop finding F1-F4 on the code before the fix is tests/test_fuzz_finds.py.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from shared_descriptions import bitmap_desc

import conformance
from conformance.cases.casefile import CaseError, parse_description
from conformance.cli import main
from conformance.engines import optimized, reference
from conformance.errors import LimitExceeded
from conformance.model import limits
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.state import from_plain

DATA = Path(__file__).parent / "data" / "qemu-7.2"
PC_MIN = (DATA / "pc-min.mig").read_bytes()
HOSTILE_IDSTR = b"de\x1b[31mv\nX\x00y"  # ESC, a newline and a NUL in a section's name
VARIANTS = ("qemu-7.2", "legacy", "auto-alloc", "alloc")


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_printable_lines(text: str, prefixes: tuple[str, ...]) -> list[str]:
    """Every line printable and starting with one of ``prefixes`` (a line split by a
    raw newline starts with something else)."""
    lines = text.splitlines()
    for line in lines:
        assert line.isprintable(), repr(line)
        assert line.startswith(prefixes), repr(line)
    return lines


# ------------------------------------------------------------------------------- F1


def cut_inside_a_section(idstr: bytes = HOSTILE_IDSTR) -> bytes:
    """A FULL section whose idstr is ``idstr``, cut three bytes into its body (37 bytes
    with the default name): no footer, no EOF record."""
    return (b"QEVM" + struct.pack(">I", 3) + b"\x04" + struct.pack(">I", 1)
            + bytes([len(idstr)]) + idstr + struct.pack(">II", 0, 1) + b"\x01\x02\x03")


def test_f1_incomplete_section_error_is_one_printable_line(tmp_path, capsys):
    path = tmp_path / "cut.mig"
    path.write_bytes(cut_inside_a_section())
    assert len(path.read_bytes()) == 37
    for args in (["decode", path, "--sections"], ["decode", path], ["verify", path]):
        rc, out, err = run_cli(capsys, *args)
        assert rc == 1, args
        (line,) = assert_printable_lines(err, ("vmstate-conformance: ",))
        assert r"section 1 (de\x1b[31mv\nX\x00y) whose body starts at 0x22" in line


def test_f1_allow_incomplete_escapes_the_name():
    mf = conformance.decode_migration(cut_inside_a_section(), allow_incomplete=True)
    assert mf.incomplete.isprintable() and "\n" not in mf.incomplete
    assert r"(de\x1b[31mv\nX\x00y)" in mf.incomplete


# ------------------------------------------------------------------------------- F3


def pc_min_with_timer_renamed(name: bytes = b"t\x1bm\ne") -> bytes:
    """pc-min.mig with the timer section's idstr (5 bytes) replaced: its vmdesc has no
    entry for the new name, so the section stays opaque with a note."""
    at = PC_MIN.index(b"\x05timer\x00")
    assert len(name) == 5
    return PC_MIN[:at + 1] + name + PC_MIN[at + 6:]


def test_f3_no_entry_notes_escape_the_name(tmp_path, capsys):
    path = tmp_path / "renamed.mig"
    path.write_bytes(pc_min_with_timer_renamed())
    rc, out, err = run_cli(capsys, "decode", path, "--sections")
    assert rc == 0
    notes = assert_printable_lines(err, ("note: ",))
    assert any(r"no entry for t\x1bm\ne instance 0 in the vmdesc" in n for n in notes)
    rc, out, err = run_cli(capsys, "verify", path)
    assert rc == 0 and err == ""
    lines = assert_printable_lines(out, (f"{path}: ", "  opaque: "))
    assert any(r"no entry for t\x1bm\ne instance 0" in line for line in lines)


# ------------------------------------------------------------------------------- F2


def write_case(tmp_path, obj, name="case.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


SMALL = {"name": "d", "Fields": [{"field": "a", "info": "uint8"}]}


def test_f2_empty_variants_is_a_case_error_naming_the_path(tmp_path, capsys):
    path = write_case(tmp_path, {"variants": [], "description": SMALL})
    for args in (["check", path], ["encode", path], ["decode", path, "00"]):
        rc, out, err = run_cli(capsys, *args)
        assert rc == 1, (args, err)
        (line,) = assert_printable_lines(err, ("vmstate-conformance: ",))
        assert f"{path}: $.variants: variants is empty" in line
    rc, out, err = run_cli(capsys, "run", path, "--quiet")
    assert rc == 1 and "--variant" not in out + err
    assert "$.variants: variants is empty" in out
    with pytest.raises(CaseError) as info:
        conformance.load_case(path)
    assert info.value.path == "$.variants"


def test_f2_python_case_without_variants_is_a_case_error(tmp_path):
    path = tmp_path / "cases_empty.py"
    path.write_text("from conformance.cases.casefile import Case\n"
                    "from conformance.model.description import Description\n"
                    "CASES = [Case('c', Description('d', 1, 1, []), {}, variants=())]\n")
    from conformance.cases.casefile import load_python_cases

    with pytest.raises(CaseError, match=r"\$\.CASES\[0\]\.variants: variants is empty"):
        load_python_cases(path)


# --------------------------------------------------------------------------- .limit


@pytest.mark.parametrize("obj, text, limit, where", [
    ({"description": {**SMALL, "Fields": [{"field": "a", "info": "uint8", "flags": ["ARRAY"],
                                           "num": 2**20}]}},
     None, "elements", "$.description.Fields[0].num"),
    (None, '{"notes": ' + "[" * 300 + "]" * 300 + ', "description": {"name": "d"}}',
     "json-depth", "line 1 column"),
    ({"description": SMALL, "notes": "x" * 5000}, None, "case-file-bytes", "$"),
])
def test_limits_in_case_files_are_limit_exceeded(tmp_path, obj, text, limit, where):
    path = tmp_path / "case.json"
    path.write_text(text if text is not None else json.dumps(obj))
    with limits.override(case_file_bytes=1000) if limit == "case-file-bytes" else \
            limits.override():
        with pytest.raises(LimitExceeded) as info:
            conformance.load_case(path)
    exc = info.value
    assert exc.limit == limit and exc.how_to_raise == f"--limit {limit}=N"
    assert isinstance(exc, CaseError) and exc.source == str(path)  # old callers still catch it
    assert exc.location.startswith(where) and exc.path == exc.location
    assert str(exc).startswith(f"{path}: {where}") and f"exceeds the limit {limit}=" in str(exc)


# ------------------------------------------------------------------------------- F4


def buffers_case(n: int, size: int = 1 << 26) -> dict:
    return {"name": "big", "description": {"name": "d", "version_id": 1, "minimum_version_id": 1,
            "Fields": [{"field": f"b{i}", "flags": ["BUFFER"], "info": "buffer", "size": size}
                       for i in range(n)]}}


@pytest.mark.parametrize("n", [2, 16])
def test_f4_many_big_buffers_are_a_state_bytes_limit(tmp_path, capsys, n):
    import tracemalloc

    path = write_case(tmp_path, buffers_case(n))
    assert len(path.read_bytes()) < 100 + 80 * n  # a few hundred bytes of JSON
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as info:
            conformance.load_case(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.limit == "state-bytes"
    assert info.value.location == "$.description.Fields[0]"  # 64 MiB crosses 32 MiB
    assert peak < 1 << 20  # checked before any buffer exists
    for command in ("encode", "run"):
        rc, out, err = run_cli(capsys, command, path, *(["--quiet"] if command == "run" else []))
        assert rc == 1 and "internal error" not in err + out
        assert "exceeds the limit state-bytes=33554432 (raise it with --limit state-bytes=N)" \
            in err + out


def test_f4_state_bytes_counts_struct_arrays_and_subsections():
    inner = Description("e", 1, 1, [Field("buf", F.BUFFER, "buffer", size=1 << 20)])
    desc = Description("d", 1, 1, [Field("s", F.ARRAY | F.STRUCT, None, num=20, vmsd=inner)],
                       subsections=[Description("d/sub", 1, 1, [
                           Field("x", F.BUFFER, "buffer", size=20 << 20)])])
    from conformance.model.state import state_size

    with pytest.raises(LimitExceeded) as info:
        state_size(desc)
    assert info.value.limit == "state-bytes" and "Subsections[0]" in info.value.location
    with limits.override(state_bytes=40 << 20):
        assert state_size(desc) == 20 * 2 + 1


def test_f4_one_buffer_at_the_limit_still_parses(tmp_path):
    case = conformance.load_case(write_case(tmp_path, buffers_case(1, size=1 << 25)))
    assert len(case.source["b0"]) == 1 << 25


def test_state_bytes_is_in_the_limits_table_and_its_doc():
    assert limits.get("state-bytes") == 1 << 25
    doc = (Path(__file__).parents[1] / "docs" / "limits.md").read_text()
    assert "| `state-bytes` | 32 MiB |" in doc


# -------------------------------------------------------------------------------- U

U_DESC = Description("dev", 1, 1, [Field("a", F.SINGLE, "uint8", size=1)], subsections=[
    Description("dev/su\u00e9", 1, 1, [Field("b", F.SINGLE, "uint8", size=1)])])
U_STREAM = "0505086465762f7375c3a90000000107"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_u_non_ascii_subsection_name_round_trips(engine, variant):
    saved = engine.save(U_DESC, {"a": 5, "b": 7}, variant)
    assert saved.ok and saved.data.hex() == U_STREAM
    out = engine.load(U_DESC, saved.data + b"\x00", {"a": 0, "b": 0}, variant)
    assert out.ok, out.summary()
    assert len(out.data) == 16 and out.state == {"a": 5, "b": 7}


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_u_a_latin1_spelling_of_the_name_does_not_exist(engine):
    # the bytes of "dev/sué" in Latin-1 are not the name QEMU compares (UTF-8 bytes)
    data = bytes.fromhex("0505") + bytes([7]) + "dev/su\u00e9".encode("latin-1") \
        + bytes.fromhex("0000000107")
    out = engine.load(U_DESC, data, {"a": 0, "b": 0}, "legacy")
    assert out.kind == "error" and out.ret == -2
    assert "VM subsection 'dev/su\ufffd' in 'dev' does not exist" in out.message


def test_u_encode_then_decode_with_the_cli(tmp_path, capsys):
    from conformance.cases.casefile import Case, dump_case

    case = Case("u", U_DESC, {"a": 5, "b": 7}, destination={"a": 0, "b": 0},
                variants=("legacy",))
    path = write_case(tmp_path, dump_case(case))
    rc, out, err = run_cli(capsys, "encode", path)
    assert rc == 0 and out.strip() == U_STREAM
    rc, out, err = run_cli(capsys, "decode", path, U_STREAM + "00")
    assert rc == 0 and json.loads(out) == {"a": 5, "b": 7}


# ------------------------------------------------------------------------------ B2n


#: (destination len, stream): C writes 16 bytes into an 8-byte object; C dies (SIGSEGV)
B2N = [(-64, "00000080" "0000000000000001" "0000000000000002" "00"),
       (-601, "1200003600000000003c347300")]


@pytest.mark.parametrize("length, stream", B2N)
@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_b2n_bitmap_into_a_negative_destination_size_is_undefined(engine, length, stream):
    desc = bitmap_desc()
    out = engine.load(desc, bytes.fromhex(stream), from_plain(desc, {"len": length, "bm": 0}),
                      "legacy")
    assert out.kind == "undefined", out.summary()
    assert "get_bitmap writes" in out.message and f"bitmap of 0 ({length} bits)" in out.message


# ---------------------------------------------------------------- U and B2n against C


def qemu_engine(variant):
    from conformance.qemu import engine as qengine

    try:
        build = qengine.build_for_variant(variant)
    except Exception:  # noqa: BLE001 - a broken cache is "no build" here
        build = None
    if build is None:
        series = {"qemu-7.2": "7.2", "legacy": "10.2"}[variant]
        pytest.skip(f"no cached QEMU build for {variant}: run "
                    f"`python -m conformance.qemu build --debian {series}`")
    return qengine.for_build(build)


@pytest.mark.parametrize("variant", ["qemu-7.2", "legacy"])
def test_u_against_qemu(variant):
    from conformance.qemu import compare as qcompare

    q = qemu_engine(variant)
    saved = q.save(U_DESC, {"a": 5, "b": 7}, variant)
    assert saved.ok and saved.data.hex() == U_STREAM
    data = saved.data + b"\x00"
    ref = reference.load(U_DESC, data, {"a": 0, "b": 0}, variant)
    out = q.load(U_DESC, data, {"a": 0, "b": 0}, variant)
    assert out.ok and out.state == {"a": 5, "b": 7} and len(out.data) == 16
    assert qcompare.compare(ref, out) == []


@pytest.mark.parametrize("variant", ["qemu-7.2", "legacy"])
def test_b2n_against_qemu(variant):
    q = qemu_engine(variant)
    desc = bitmap_desc()
    for length, stream in B2N:
        dest = from_plain(desc, {"len": length, "bm": 0})
        out = q.load(desc, bytes.fromhex(stream), dest, variant)
        assert reference.load(desc, bytes.fromhex(stream), dest, variant).kind == "undefined"
        if length == -601:  # millions of words through an 8-byte object
            assert out.kind == "undefined" and "SIG" in out.message, out.summary()
        else:  # 16 bytes into 8: C cannot tell, it loads "ok" past the end
            assert out.kind in ("ok", "undefined"), out.summary()


# ---------------------------- F3 elsewhere: names from case files, found by the fuzzer


def test_case_commands_escape_names_from_the_case_file(tmp_path, capsys):
    """The strengthened fuzz loop's first finds: check's findings and its "passes"
    line, encode's and decode's one error line, and run's tables and failures print
    names from the case file (case, description, field) - escaped, one line each."""
    path = write_case(tmp_path, {
        "name": "n\nm\x1b", "expect": {"save": {"kind": "ok"}},
        "description": {"name": "d\nq", "Fields": [
            {"field": "a\nb", "info": "uint8", "flags": ["POINTER"]}]}})
    rc, out, err = run_cli(capsys, "check", path)
    assert rc == 0 and assert_printable_lines(out, ("d\\nq: passes vmstate_check",))
    for args in (["encode", path], ["decode", path, "00"]):
        rc, out, err = run_cli(capsys, *args)
        (line,) = assert_printable_lines(err, ("vmstate-conformance: ",))
        assert rc == 1 and "d\\nq/a\\nb" in line, line
    rc, out, err = run_cli(capsys, "run", path, "--quiet", "--verbose", "--engine", "reference")
    assert rc == 1 and all(line.isprintable() for line in out.splitlines())
    assert "  FAIL n\\nm\\x1b [legacy / reference]: save.kind" in out


def test_decode_takes_a_stream_longer_than_a_file_name(tmp_path, capsys):
    """Found by the fuzz loop driving ``decode CASE STREAM`` with the encoded stream:
    hex of 128+ bytes is longer than a file name may be, and asking whether such a
    file exists raised ENAMETOOLONG (internal error, exit 3)."""
    desc = {"name": "d", "Fields": [{"field": "a", "info": "buffer", "size": 300}]}
    path = write_case(tmp_path, {"description": desc})
    rc, out, err = run_cli(capsys, "decode", path, "ab" * 300 + "00")
    assert rc == 0, err
    assert json.loads(out) == {"a": "ab" * 300}


def test_f4_one_gtree_node_past_state_bytes_is_a_limit(tmp_path):
    """Found by the fuzz loop: a GTree's node VMSD with 8 buffers of 8 MiB + 1 byte;
    the node is no STRUCT member of the zero state, yet the source holds one."""
    node = {"name": "n", "version_id": 1, "minimum_version_id": 1, "Fields": [
        {"field": "val", "info": "uint32"}] + [
        {"field": f"big{i}", "flags": ["BUFFER"], "info": "buffer", "size": (8 << 20) + 1}
        for i in range(8)]}
    desc = {"name": "d", "version_id": 1, "minimum_version_id": 1, "Fields": [
        {"field": "t", "info": "gtree", "size": 4, "version_id": 1, "Description": node}]}
    path = write_case(tmp_path, {"description": desc, "source": {"t": [[1, {"val": 10}]]}})
    with pytest.raises(LimitExceeded) as info:
        conformance.load_case(path)
    assert info.value.limit == "state-bytes"
    assert info.value.location == "$.description.Fields[0].Description.Fields[4]"


def test_state_bytes_counts_every_gtree_node_of_a_state(tmp_path, capsys):
    """Found by the million-input fuzz run: one node within state-bytes, but the source
    lists two (zero buffers fill each), 62 MB built; `decode` of the encoded stream
    then peaked at 573 MB.  The nodes a state holds count as it is built."""
    node = {"name": "n", "version_id": 1, "minimum_version_id": 1, "Fields": [
        {"field": "val", "info": "uint32"}] + [
        {"field": f"big{i}", "flags": ["BUFFER"], "info": "buffer", "size": 2_236_963}
        for i in range(14)]}
    desc = {"name": "d", "version_id": 1, "minimum_version_id": 1, "Fields": [
        {"field": "t", "info": "gtree", "size": 4, "version_id": 1, "Description": node}]}
    one = write_case(tmp_path, {"description": desc, "source": {"t": [[1, {"val": 10}]]}},
                     "one.json")
    assert conformance.load_case(one).source["t"][0][1]["val"] == 10  # 31 MiB: within
    two = write_case(tmp_path, {"description": desc,
                                "source": {"t": [[1, {"val": 10}], [2, {"val": 20}]]}},
                     "two.json")
    with pytest.raises(LimitExceeded) as info:
        conformance.load_case(two)
    assert info.value.limit == "state-bytes" and info.value.location == "$.source.t[1][1]"
    rc, out, err = run_cli(capsys, "encode", two)
    assert rc == 1 and not out and "state-bytes" in err and len(err.splitlines()) == 1


def test_a_negative_size_is_a_case_error_naming_the_path(tmp_path, capsys):
    """Found by the million-input fuzz run: a buffer of size -8 was an internal error
    (ValueError: negative count) in check, encode and run."""
    desc = {"name": "d", "Fields": [{"field": "b", "flags": ["BUFFER"], "info": "buffer",
                                     "size": -8}]}
    path = write_case(tmp_path, {"description": desc})
    for command in ("check", "encode"):
        rc, out, err = run_cli(capsys, command, path)
        assert rc == 1 and "Traceback" not in err, err
        assert err.strip() == (f"vmstate-conformance: {path}: $.description.Fields[0].size: "
                               "a size is a size_t: -8 is negative")


def gtree_of_absent_buffers(mib: int) -> dict:
    """A GTree whose node VMSD (v2) holds a ``mib`` MiB buffer present from version 2
    on; the GTree loads its nodes at version 1, so a node costs its stream 13 bytes."""
    node = {"name": "n", "version_id": 2, "minimum_version_id": 1, "Fields": [
        {"field": "val", "info": "uint32", "size": 4},
        {"field": "big", "flags": ["BUFFER"], "info": "buffer", "size": mib << 20,
         "version_id": 2}]}
    return {"name": "d", "version_id": 1, "minimum_version_id": 1, "Fields": [
        {"field": "t", "info": "gtree", "size": 4, "version_id": 1, "Description": node}]}


def gtree_stream(nodes: int) -> bytes:
    return (struct.pack(">I", nodes)
            + b"".join(b"\x01" + struct.pack(">QI", k, 7) for k in range(nodes)) + b"\x00")


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_a_loads_allocations_are_bounded_in_total(engine):
    """Each GTree node is bounded by the description, their number only by the stream:
    a 1.3 KB stream of 100 nodes of a 16 MiB value struct allocated 1.6 GB and ended in
    `internal error: MemoryError`.  A load's allocations now spend one budget
    (state-values, state-bytes), and the load stops with outcome kind `limit`."""
    desc = parse_description(gtree_of_absent_buffers(16))
    out = engine.load(desc, gtree_stream(1), {"t": []}, "auto-alloc")
    assert out.ok and out.state["t"][0][1]["val"] == 7
    out = engine.load(desc, gtree_stream(100), {"t": []}, "auto-alloc")
    assert out.kind == "limit", out
    assert "--limit state-bytes=N" in out.message and out.path == "d/t[1]"
    with limits.override(state_bytes=1 << 26):  # raised, the same stream loads 3 nodes
        assert engine.load(desc, gtree_stream(3), {"t": []}, "auto-alloc").ok


def test_a_queue_of_many_nodes_is_a_state_values_limit():
    """Each QLIST node of a struct of 1,000 values is 1,001 values: the 66th passes
    state-values whatever the stream's length."""
    node = {"name": "e", "version_id": 2, "minimum_version_id": 1, "Fields": [
        {"field": "arr", "flags": ["ARRAY"], "info": "uint8", "num": 1000, "size": 1,
         "version_id": 2}]}
    desc = parse_description({"name": "q", "version_id": 1, "minimum_version_id": 1,
                                   "Fields": [{"field": "l", "info": "qlist", "size": 8,
                                               "version_id": 1, "Description": node}]})
    stream = b"\x01" * 100 + b"\x00"
    out = reference.load(desc, stream, {"l": []}, "auto-alloc")
    assert out.kind == "limit" and "--limit state-values=N" in out.message, out
    assert out.path == "q/l[65]"
    assert reference.load(desc, b"\x01" * 65 + b"\x00", {"l": []}, "auto-alloc").ok


def test_decode_of_a_hostile_stream_is_one_line(tmp_path, capsys):
    path = write_case(tmp_path, {"description": gtree_of_absent_buffers(16),
                                 "source": {"t": []}, "destination": {"t": []}})
    rc, out, err = run_cli(capsys, "decode", path, gtree_stream(100).hex())
    assert rc == 1 and not out, err
    assert len(err.splitlines()) == 1 and "state-bytes" in err


def auto_array_of_hidden_values(slots: int) -> tuple:
    """An auto-allocating pointer array whose element struct holds 1,000 values the
    stream never carries (their field_exists is false): one marker byte allocates 1,001
    values.  The destination lists ``slots`` NULL slots."""
    elem = parse_description({"name": "e", "version_id": 1, "minimum_version_id": 1,
                              "Fields": [{"field": "arr", "flags": ["ARRAY"], "info": "uint8",
                                          "num": 1000, "size": 1, "exists": False}]})
    desc = Description("dev", 1, 1, [
        Field("n", F.SINGLE, "uint32", size=4),
        Field("p", F.POINTER | F.STRUCT | F.ARRAY_OF_POINTER | F.VARRAY_UINT32
              | F.AUTO_ALLOC, None, size=1000, num_member="n", vmsd=elem)])
    return desc, {"n": 0, "p": [None] * slots}


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_auto_allocated_elements_spend_the_load_budget(engine):
    """The fast path allocates auto elements too, as many as the destination has slots:
    it spends the same budget and leaves a load past it to the interpreter."""
    desc, dest = auto_array_of_hidden_values(100)
    ok = engine.load(desc, struct.pack(">I", 65) + b"\x31" * 65 + b"\x00", dest, "auto-alloc")
    assert ok.ok and len(ok.state["p"]) == 100 and ok.state["p"][64] is not None, ok
    out = engine.load(desc, struct.pack(">I", 66) + b"\x31" * 66 + b"\x00", dest, "auto-alloc")
    assert out.kind == "limit" and out.path == "dev/p[65]", out
    assert "--limit state-values=N" in out.message


def shared_member_desc(first: dict) -> dict:
    """``first`` and a 6-byte buffer both describe member ``x`` (QEMU: one offset)."""
    return {"name": "d", "version_id": 1, "minimum_version_id": 1, "Fields": [
        first, {"field": "x", "flags": ["BUFFER"], "info": "buffer", "size": 6}]}


def test_a_member_two_fields_describe_as_different_values(tmp_path, capsys):
    """Found by the second million-input fuzz run: fields `x: int8` and `x: buffer[6]`;
    `decode CASE 00` was `internal error: TypeError` (the buffer codec found an int in
    its member).  With `x: int64` and source 2^40 the save built bytes(2^40)."""
    int8 = shared_member_desc({"field": "x", "info": "int8", "size": 1})
    path = write_case(tmp_path, {"description": int8, "source": {"x": 1}}, "int8.json")
    for args in (("decode", path, "00"), ("encode", path)):
        rc, out, err = run_cli(capsys, *args)
        assert rc == 1 and not out, err
        (line,) = assert_printable_lines(err, ("vmstate-conformance: ",))
        assert "shares its member with field 'x' (int)" in line and "at field d/x" in line
    rc, out, err = run_cli(capsys, "run", path)
    assert rc == 0 and "Traceback" not in err
    int64 = parse_description(shared_member_desc({"field": "x", "info": "int64",
                                                   "size": 8}))
    for engine in (reference, optimized):
        out = engine.save(int64, {"x": 1 << 40}, "legacy")
        assert out.kind == "limit" and out.path == "d/x", out
        out = engine.load(int64, bytes(14), {"x": 1 << 40}, "legacy")
        assert out.kind == "limit" and out.path == "d/x", out


@pytest.mark.parametrize("engine", [reference, optimized], ids=["reference", "optimized"])
def test_fields_that_agree_on_a_member_still_share_it(engine):
    """Version alternatives of one member (int32 up to v1, uint32 from v2) are one kind
    of value: nothing changes for them."""
    desc = parse_description({"name": "d", "version_id": 2, "minimum_version_id": 1,
                              "Fields": [
        {"field": "x", "info": "int32", "size": 4, "exists": {"not": {"version_at_least": 2}}},
        {"field": "x", "info": "uint32", "size": 4, "version_id": 2}]})
    out = engine.save(desc, {"x": 7}, "legacy")
    assert out.ok and out.data == bytes.fromhex("00000007")
    assert engine.load(desc, out.data, {"x": 0}, "legacy").state == {"x": 7}
