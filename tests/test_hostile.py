"""Hostile input (the error contract of docs/limits.md): every input class a user can be handed gives one clean line
(``file: location: what is wrong``) and exit 1 (bad input) or 2 (bad usage) - never a
traceback, a hang or a blow-up - or a correct result.

Each input is built here, from the real QEMU stream in tests/data or a small case.  The
wall-clock bound is generous (a hang, not a slow machine, fails it).
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

import conformance
import conformance.errors
from conformance.cli import main
from conformance.errors import ConformanceError, LimitExceeded
from conformance.model import limits

DATA = Path(__file__).parent / "data" / "qemu-7.2"
EXAMPLE = str(Path(conformance.__file__).parent / "data" / "examples" / "simple-primitive.json")
BOUND = 30.0  # seconds: only a hang exceeds it


def cli(capsys, *args, want=(1,)):
    """Run the CLI in-process; assert the one-line contract and return the line."""
    started = time.monotonic()
    rc = main([str(a) for a in args])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert rc in want, (rc, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert elapsed < BOUND
    return lines[0]


def write_case(tmp_path, obj, name="case.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def small_desc(**field) -> dict:
    return {"name": "d", "Fields": [{"field": "a", "info": "uint8", **field}]}


# ------------------------------------------------------------------------- case files


def test_non_utf8_case_file_names_the_byte_offset(tmp_path, capsys):
    path = tmp_path / "bin.json"
    path.write_bytes(b'{"description": "\xff\xfe"}')
    for command in ("encode", "check"):
        line = cli(capsys, command, path)
        assert f"{path}: byte offset 17: not UTF-8 (byte 0xff)" in line


@pytest.mark.parametrize("command", ["encode", "check", "diff"])
def test_binary_file_as_case(tmp_path, capsys, command):
    path = tmp_path / "random.json"
    path.write_bytes(bytes(range(256)) * 4)
    line = cli(capsys, command, path)
    assert str(path) in line and "not UTF-8" in line


@pytest.mark.parametrize("obj, where", [
    ({"description": small_desc(info=[1, 2])}, "$.description.Fields[0].info: info must be a string"),
    ({"variant": {"a": 1}, "description": small_desc()}, "$.variant: variant must be a string"),
    ({"variants": [{"a": 1}], "description": small_desc()}, "$.variants[0]: unknown variant"),
    ({"expect": {"save": {"kind": [1]}}, "description": small_desc()}, "$.expect.save.kind"),
    ({"description": small_desc(flags={"ARRAY": 1})}, "$.description.Fields[0].flags"),
    ({"description": small_desc(num="3")}, "$.description.Fields[0].num: num must be an integer"),
    ({"description": {"name": "d", "Fields": {"a": 1}}}, "$.description.Fields: Fields must be a list"),
    ({"description": small_desc(), "source": [1]}, "$.source"),
    ({"description": small_desc(), "source": {"a": [1]}}, "$.source.a"),
])
def test_wrong_json_types(tmp_path, capsys, obj, where):
    line = cli(capsys, "check", write_case(tmp_path, obj))
    assert where in line


def test_json_nested_900_deep(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text('{"notes": ' + "[" * 900 + "]" * 900 + ', "description": {"name": "d"}}')
    line = cli(capsys, "check", path)
    assert f"{path}: line 1 column" in line and "exceeds the limit json-depth=256" in line
    assert "--limit json-depth=N" in line


def test_description_nested_beyond_the_depth_limit(tmp_path, capsys):
    desc = small_desc()
    for _ in range(100):  # 100 structs deep: JSON depth 400
        desc = {"name": "n", "Fields": [{"field": "s", "flags": ["STRUCT"], "Description": desc}]}
    path = write_case(tmp_path, {"description": desc})
    line = cli(capsys, "--limit", "json-depth=1000", "check", path)
    assert "exceeds the limit depth=64" in line and "$.description.Fields[0].Description" in line


@pytest.mark.parametrize("depth", [100, 900])
def test_deep_predicate_is_rejected_by_check_and_run(tmp_path, capsys, depth):
    pred = {"const": True}
    for _ in range(depth):
        pred = {"not": pred}
    path = write_case(tmp_path, {"description": {**small_desc(), "needed": pred}})
    args = ["--limit", "json-depth=2000"] if depth > 200 else []
    for command in ("check", "encode"):
        line = cli(capsys, *args, command, path)
        assert "$.description.needed" in line and "exceeds the limit depth=64" in line
    assert main([*args, "run", str(path), "--properties", "0"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "$.description.needed" in captured.out and "exceeds the limit depth=64" in captured.out


@pytest.mark.parametrize("num", [2**16 + 1, 2**20, 2**32])
def test_huge_array_num_is_a_limit_before_any_zero_state(tmp_path, capsys, num):
    path = write_case(tmp_path, {"description": small_desc(flags=["ARRAY"], num=num)})
    line = cli(capsys, "encode", path)
    assert f"{path}: $.description.Fields[0].num: an array of {num} elements exceeds the " \
           f"limit elements=65536 (raise it with --limit elements=N)" == \
           line.removeprefix("vmstate-conformance: ")


def test_array_at_the_element_limit_encodes(tmp_path, capsys):
    path = write_case(tmp_path, {"description": small_desc(flags=["ARRAY"], num=2**16)})
    assert main(["encode", str(path)]) == 0
    assert len(capsys.readouterr().out.strip()) == 2 * 2**16


def test_limit_option_raises_the_element_limit(tmp_path, capsys):
    path = write_case(tmp_path, {"description": small_desc(flags=["ARRAY"], num=2**16 + 1)})
    cli(capsys, "check", path)
    assert main(["--limit", "elements=70000", "--limit=state-values=70000", "check", str(path)]) == 0
    assert limits.ELEMENT_LIMIT == 2**16  # main() restores the limits it changed


def test_state_values_limit_counts_nested_struct_arrays(tmp_path, capsys):
    inner = {"name": "e", "Fields": [{"field": "x", "info": "uint32"}, {"field": "y", "info": "uint32"}]}
    desc = {"name": "d", "Fields": [{"field": "a", "flags": ["ARRAY", "STRUCT"], "num": 2**16,
                                     "Description": inner}]}
    line = cli(capsys, "check", write_case(tmp_path, {"description": desc}))
    assert "$.description.Fields[0]: a zero state of at least 196608 values exceeds the limit " \
           "state-values=65536" in line


def test_shared_vmsds_do_not_blow_up(tmp_path, capsys):
    vmsds = {"b": small_desc(flags=["ARRAY"], num=1000)}
    for k in range(30):  # a chain of 30 names, each used twice: 2^30 paths if expanded
        vmsds[f"n{k}"] = {"name": f"n{k}", "Fields": [
            {"field": "l", "flags": ["STRUCT"], "Description": f"n{k - 1}" if k else "b"},
            {"field": "r", "flags": ["STRUCT"], "Description": f"n{k - 1}" if k else "b"}]}
    path = write_case(tmp_path, {"vmsds": vmsds, "description": "n29"})
    line = cli(capsys, "check", path)
    assert "exceeds the limit state-values=65536" in line


def test_case_file_size_limit(tmp_path, capsys):
    path = write_case(tmp_path, {"description": small_desc(), "notes": "x" * 5000})
    line = cli(capsys, "--limit", "case-file-bytes=1000", "check", path)
    assert "exceeds the limit case-file-bytes=1000" in line


def test_api_raises_only_project_errors(tmp_path):
    path = write_case(tmp_path, {"description": small_desc(flags=["ARRAY"], num=2**32)})
    with pytest.raises(ConformanceError) as info:
        conformance.load_case(path)
    assert isinstance(info.value, ValueError)  # CaseError stays a ValueError for old callers
    with pytest.raises(LimitExceeded):
        from conformance.model.description import Description, Field
        from conformance.model.flags import F
        from conformance.model.state import zero_struct

        zero_struct(Description("d", 1, 1, (Field("a", F.ARRAY, "uint8", num=2**32),)))


def test_run_over_tests_does_not_import_test_modules(capsys):
    tests = Path(__file__).parent
    rc = main(["run", str(tests / "conftest.py"), str(tests / "test_api.py"), "--properties", "0"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    assert "conftest.py: $: not a case module: it assigns no top-level CASES" in captured.out


# ----------------------------------------------------------------------------- usage


def test_directory_as_stream(tmp_path, capsys):
    line = cli(capsys, "decode", EXAMPLE, tmp_path, want=(2,))
    assert f"STREAM {tmp_path}: is a directory" in line


def test_unknown_engine_is_usage(capsys):
    line = cli(capsys, "golden", "verify", "--engine", "bogus", want=(2,))
    assert "'bogus'" in line and "engine" in line
    with pytest.raises(conformance.errors.UsageError, match="unknown engine 'bogus'"):
        conformance.engine("bogus")


def test_negative_properties_is_usage(capsys):
    line = cli(capsys, "run", EXAMPLE, "--properties", "-1", want=(2,))
    assert "--properties: -1 is negative" in line


@pytest.mark.parametrize("value", ["elements", "bogus=3", "elements=x", "elements=0"])
def test_bad_limit_option_is_usage(capsys, value):
    line = cli(capsys, "--limit", value, "check", EXAMPLE, want=(2,))
    assert "limit" in line


# -------------------------------------------------------------------- migration files

PC_MIN = (DATA / "pc-min.mig").read_bytes()
_VMDESC_AT = PC_MIN.rfind(b'\x06\x00\x01\x81Y{"page_size"')
_VMDESC_LEN = struct.unpack(">I", PC_MIN[_VMDESC_AT + 1:_VMDESC_AT + 5])[0]
VMDESC_TEXT = PC_MIN[_VMDESC_AT + 5:_VMDESC_AT + 5 + _VMDESC_LEN]


def with_vmdesc(text: bytes) -> bytes:
    """pc-min.mig with its vmdesc trailer replaced by ``text``."""
    return (PC_MIN[:_VMDESC_AT] + b"\x06" + struct.pack(">I", len(text)) + text
            + PC_MIN[_VMDESC_AT + 5 + _VMDESC_LEN:])


def write_mig(tmp_path, data: bytes, name="f.mig") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_vmdesc_test_input_is_the_real_trailer():
    assert with_vmdesc(VMDESC_TEXT) == PC_MIN and json.loads(VMDESC_TEXT)["page_size"] == 4096


def test_lone_surrogate_in_vmdesc_decodes_and_verifies(tmp_path, capsys):
    path = write_mig(tmp_path, with_vmdesc(VMDESC_TEXT.replace(b'"name": "timer"', b'"name": "\\ud800"', 1)))
    for args in (["decode", path], ["decode", path, "--sections"], ["verify", path],
                 ["decode", path, "--desc"]):
        assert main([str(a) for a in args]) == 0, args
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and "internal error" not in captured.err
    assert main(["decode", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)  # the JSON output escapes the surrogate


def _deep_struct_vmdesc(levels: int) -> bytes:
    inner = '{"name": "x", "type": "int64", "size": 8}'
    for _ in range(levels):
        inner = ('{"name": "s", "type": "struct", "size": 8, "struct": {"vmsd_name": "v", '
                 '"version": 1, "fields": [' + inner + ']}}')
    root = json.loads(VMDESC_TEXT)
    root["devices"][0]["fields"] = ["@@"]
    return json.dumps(root).replace('"@@"', inner).encode()


@pytest.mark.parametrize("levels", [70, 300])
def test_deep_vmdesc_is_a_limit(tmp_path, capsys, levels):
    path = write_mig(tmp_path, with_vmdesc(_deep_struct_vmdesc(levels)))
    for args in (["decode", path, "--desc"], ["decode", path], ["verify", path]):
        line = cli(capsys, *args)
        assert str(path) in line and ("json-depth=256" in line or "depth=64" in line)
    with pytest.raises(ConformanceError):
        conformance.decode_migration(path.read_bytes())


def test_deep_vmdesc_structs_under_a_raised_json_limit(tmp_path, capsys):
    path = write_mig(tmp_path, with_vmdesc(_deep_struct_vmdesc(70)))
    line = cli(capsys, "--limit", "json-depth=1000", "decode", path)
    assert ": offset 0x3a5b0: timer/s/s/s" in line
    assert "/s: vmdesc structs nested 65 deep exceeds the limit depth=64" in line


@pytest.mark.parametrize("array_len", [10**5, 10**7, 2**32])
def test_huge_array_len_is_checked_before_planning(tmp_path, capsys, array_len):
    root = json.loads(VMDESC_TEXT)
    root["devices"][0]["fields"][1] = {"name": "unused", "type": "unused_buffer", "size": 8,
                                       "array_len": array_len}
    path = write_mig(tmp_path, with_vmdesc(json.dumps(root).encode()))
    line = cli(capsys, "decode", path)
    assert (f"vmdesc timer.fields[1] (unused).array_len: array_len {array_len} exceeds the "
            f"limit elements=65536 (raise it with --limit elements=N)") in line


def test_work_limit_names_offset_and_section(tmp_path, capsys):
    line = cli(capsys, "--limit", "work=1000", "decode", write_mig(tmp_path, PC_MIN))
    assert "exceeds the limit work=1000" in line and "offset 0x" in line


@pytest.mark.parametrize("cut, where", [
    (0x3a5f2 + 900, "inside section 5 (cpu)"),  # in the middle of a device section
    (0x3a59d + 20, "inside section 0 (timer)"),
    (0x3a5c8 + 2, "inside section 0 (timer)"),  # in its footer
    (0x3a5cd, "after FULL section 0 (timer) without its EOF record"),  # between sections
])
def test_truncated_file_is_incomplete(tmp_path, capsys, cut, where):
    path = write_mig(tmp_path, PC_MIN[:cut])
    for args in (["verify", path], ["decode", path], ["decode", path, "--sections"],
                 ["reencode", path, "-o", tmp_path / "out.mig"]):
        line = cli(capsys, *args)
        assert f"{path}: offset " in line and f"incomplete: the stream ends {where}" in line
    with pytest.raises(ConformanceError, match="incomplete"):
        conformance.decode_migration(path.read_bytes())
    if "inside" in where:  # the records before the cut are still there to list
        mf = conformance.decode_migration(path.read_bytes(), allow_incomplete=True)
        assert "incomplete" in mf.incomplete and mf.sections()


def test_directory_as_migration_file(tmp_path, capsys):
    for args in (["verify", tmp_path], ["reencode", tmp_path, "-o", tmp_path / "o"],
                 ["bench-decode", tmp_path]):
        line = cli(capsys, *args)
        assert str(tmp_path) in line


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 8, PC_MIN[:1000]],
                         ids=["empty", "random", "truncated"])
def test_bench_decode_on_bad_files(tmp_path, capsys, content):
    path = write_mig(tmp_path, content)
    line = cli(capsys, "bench-decode", path, "--repeat", "1")
    assert f"{path}: offset 0x" in line


# ---------------------------------------------------------------- the fuzz properties
# The same strategies and contract as `vmstate-conformance fuzz` (strategies/hostile.py),
# with the active Hypothesis profile's budget (ci: 50 examples, thorough: 5,000).

from hypothesis import given  # noqa: E402

from strategies import hostile  # noqa: E402


@given(hostile.hostile_migration_files())
def test_fuzz_migration_files(data):
    assert hostile.check_migration_input(data) in ("ok", "clean")


@given(hostile.hostile_case_files())
def test_fuzz_case_files(data):
    assert hostile.check_case_input(data) in ("ok", "clean")


@given(hostile.hostile_engine_inputs())
def test_fuzz_engines_agree_on_mutated_streams(args):
    assert hostile.check_engines_input(*args) in ("ok", "clean")


@pytest.mark.parametrize("target", ["mig", "case", "engines"])
def test_fuzz_budget_of_the_active_profile(target, tmp_path):
    """The `fuzz` command's loop on each target with the active profile's share of its
    ``fuzz_inputs`` budget (conformance/profiles.py: ci 600, thorough 1,000,000 over the
    three targets): every input a result or a clean error, nothing written."""
    from hypothesis import settings

    from conformance.cli.fuzz import TARGET_NAMES, fuzz
    from conformance.profiles import PROFILES

    profile = settings._current_profile if settings._current_profile in PROFILES else "dev"
    budget = -(-PROFILES[profile]["fuzz_inputs"] // len(TARGET_NAMES))
    row = fuzz(target, None, tmp_path, inputs=budget, progress=open(os.devnull, "w"))
    assert row["failures"] == 0, row["reproducers"]
    assert row["inputs"] == budget and row["clean"] + row["ok"] == budget
    assert not list(tmp_path.iterdir())


def test_contract_catches_a_traceback_and_a_hang(monkeypatch):
    """The contract can fail: an exception escaping the reader, and a hang."""
    from conformance.migration import reader  # what the checks and the CLI call

    def boom(data):
        raise KeyError("x")

    monkeypatch.setattr(reader, "read_migration", boom)
    with pytest.raises(hostile.ContractViolation, match="traceback: KeyError"):
        hostile.check_migration_input(b"QEVM")

    def hang(data):
        while True:
            pass

    monkeypatch.setattr(reader, "read_migration", hang)
    monkeypatch.setattr(hostile, "TIME_BOUND", 0.2)
    with pytest.raises(hostile.ContractViolation, match="hang"):
        with hostile.bounded(0.2):
            reader.read_migration(b"")


def test_fuzz_command_writes_a_reproducer_for_a_failure(tmp_path, capsys, monkeypatch):
    from conformance.migration import reader  # what the checks and the CLI call

    real = reader.read_migration
    small = len(hostile.migration_seeds()[0])

    def fragile(data, **kw):  # a reader that crashes on every shortened stream
        if len(data) < small:
            raise IndexError("boom")
        return real(data, **kw)

    monkeypatch.setattr(reader, "read_migration", fragile)
    rc = main(["fuzz", "--minutes", "0.05", "--target", "mig", "--out", str(tmp_path), "--seed", "1"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err, captured.err
    assert "mig " in captured.out and "failures" in captured.out
    reproducers = sorted(tmp_path.glob("mig-*.mig"))
    assert reproducers and len(reproducers[0].read_bytes()) < small
    assert "IndexError" in (tmp_path / "mig-1.why.txt").read_text()


def test_fuzz_engines_reproducer_replays_with_run(tmp_path, capsys, monkeypatch):
    """An engines failure is written as a case file whose load_input is the mutated
    stream; ``run FILE`` replays it on both engines."""
    from conformance.engines import optimized

    real = optimized.load

    def fragile(desc, data, dest, variant, **kw):  # the optimized engine crashes on any load
        raise KeyError("boom")

    monkeypatch.setattr(optimized, "load", fragile)
    rc = main(["fuzz", "--minutes", "0.03", "--target", "engines", "--out", str(tmp_path),
               "--seed", "3"])
    assert rc == 1, capsys.readouterr().err
    monkeypatch.setattr(optimized, "load", real)
    case = tmp_path / "engines-1.json"
    assert "KeyError" in (tmp_path / "engines-1.why.txt").read_text()
    capsys.readouterr()
    assert main(["run", str(case), "--verbose"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "engines-1" in out and "optimized" in out and "reference" in out


def test_fuzz_command_summary(tmp_path, capsys):
    rc = main(["fuzz", "--minutes", "0.05", "--target", "case", "--out", str(tmp_path), "--seed", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["target", "inputs", "clean"]
    assert row.split()[0] == "case" and int(row.split()[1]) > 0 and row.split()[4] == "0"


def test_fuzz_command_input_budget(tmp_path, capsys):
    rc = main(["fuzz", "--inputs", "7", "--target", "case", "--out", str(tmp_path), "--seed", "2"])
    row = capsys.readouterr().out.splitlines()[1].split()
    assert rc == 0 and row[0] == "case" and row[1] == "7"
    rc = main(["fuzz", "--inputs", "7", "--profile", "ci", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "--inputs and --profile" in err and "Traceback" not in err


def test_fuzz_jobs_split_each_target_between_processes(tmp_path, capsys):
    """--jobs 2: each target's inputs shared by two processes, one row per target with
    the shards summed (the budget met exactly)."""
    rc = main(["fuzz", "--inputs", "30", "--jobs", "2", "--out", str(tmp_path), "--seed", "5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:4]}
    assert set(rows) == {"mig", "case", "engines"}
    for row in rows.values():
        assert row[1] == "10" and int(row[2]) + int(row[3]) == 10 and row[4] == "0"
    assert not list(tmp_path.iterdir())


def test_a_forked_fuzz_worker_writes_its_inputs_apart_from_its_parent():
    """--jobs forks: two processes writing one scratch file would check each other's
    inputs."""
    from concurrent.futures import ProcessPoolExecutor

    mine = hostile._input_file(b"parent", ".mig")
    with ProcessPoolExecutor(1) as pool:
        theirs = pool.submit(hostile._input_file, b"child", ".mig").result()
    assert theirs != mine and open(mine, "rb").read() == b"parent"


def test_minimise_keeps_the_failure_and_drops_the_rest():
    """A batch's failing input has no Hypothesis shrinking behind it: ``minimise``
    deletes byte chunks while the same kind of violation stays."""
    from conformance.cli.fuzz import minimise

    def check(data: bytes) -> str:
        if b"\x13\x37" in data:
            raise hostile.ContractViolation("traceback: KeyError: planted")
        if len(data) < 3:
            raise hostile.ContractViolation("hang: planted")  # another kind: not kept
        return "ok"

    data = bytes(range(256)) * 4 + b"\x13\x37" + bytes(300)
    assert minimise(check, data, "traceback: KeyError: planted") == b"\x13\x37"
    engine_input = ("desc", data, {"dest": 1}, "legacy")  # the stream is minimised
    assert minimise(lambda args: check(args[1]), engine_input, "traceback: x") == ("desc", b"\x13\x37", {"dest": 1},
                                                              "legacy")


# ------------------------------------------------------ found by the fuzzer (regressions)


def test_lone_surrogate_in_a_case_file_is_rejected(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text('{"description": {"name": "\\ud800", "Fields": [{"field": "a", "info": "uint8"}]}}')
    line = cli(capsys, "encode", path)
    assert "$.description.name: a lone surrogate escape (\\ud800) is not text" in line


@pytest.mark.parametrize("info", ["tmp", "qtailq", "qlist", "gtree"])
def test_nested_info_without_description(tmp_path, capsys, info):
    path = write_case(tmp_path, {"description": small_desc(info=info)})
    line = cli(capsys, "encode", path)
    assert f"$.description.Fields[0]: info '{info}' runs a nested VMSD" in line


def test_a_huge_source_state_is_a_limit(tmp_path, capsys):
    desc = {"name": "d", "Fields": [{"field": "n", "info": "uint32"},
                                    {"field": "v", "flags": ["VARRAY_UINT32"], "info": "uint8",
                                     "num_member": "n"}]}
    path = write_case(tmp_path, {"description": desc, "source": {"n": 100000, "v": [0] * 100000}})
    line = cli(capsys, "encode", path)
    assert "$.source: a state of more than 65536 values exceeds the limit state-values=65536" in line


def test_fuzz_found_integer_array_len_beyond_the_stream(capsys):
    """Found by `fuzz --target mig`: a vmdesc array_len of 2^63 on an integer field built
    a struct format that long ("total struct size too long", an internal error)."""
    from conformance.cli import main

    path = Path(__file__).parent / "data" / "hostile" / "vmdesc-int-array-len-2p63.mig"
    assert main(["decode", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" not in err[0]
    assert "array_len: 9223372036854775808 integers of 8 bytes are more than" in err[0]


@pytest.mark.parametrize("engine", ["reference", "optimized"])
def test_fuzz_found_null_pointer_with_size_zero(engine):
    """Found by `fuzz --target case` (the flags/ALLOC case with its "size" removed):
    nothing is allocated (size * n == 0), the base assertion passes, and the elements
    are written through NULL - outcome undefined, not a TypeError."""
    from conformance.model.description import Description, Field
    from conformance.model.flags import F

    desc = Description("dev", 1, 1, [
        Field("n", F.SINGLE, "uint32", size=4),
        Field("v", F.VARRAY_UINT32 | F.POINTER | F.ALLOC, "uint8", size=0, num_member="n")])
    for variant in ("qemu-7.2", "legacy"):
        out = conformance.engine(engine).load(desc, bytes.fromhex("00000003070809"),
                                              {"n": 0, "v": None}, variant)
        assert out.kind == "undefined" and out.path == "dev/v", (variant, out.summary())
    for variant in ("auto-alloc", "alloc"):  # master skips a NULL element address
        out = conformance.engine(engine).load(desc, bytes.fromhex("00000003070809"),
                                              {"n": 0, "v": None}, variant)
        assert out.ok and len(out.data) == 4, (variant, out.summary())
    out = conformance.engine(engine).save(desc, {"n": 2, "v": None}, "legacy")
    assert out.kind == "undefined" and out.path == "dev/v"


# ------------------------------------------------------------- pipes and devices


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
@pytest.mark.parametrize("command", [["decode"], ["verify"], ["decode", "--sections"],
                                     ["decode", "--format", "analyze-migration"]])
def test_a_device_is_rejected_at_its_header(capsys, device, command):
    """/dev/zero used to be read whole (24 GB, then the OOM killer; found by an
    acceptance-style sweep): a pipe or device is read once, its header first."""
    line = cli(capsys, *command, device)
    assert line.startswith(f"vmstate-conformance: {device}: offset 0x0: ")
    assert ("bad magic" in line) if device != "/dev/null" else ("truncated" in line)


def _fifo_with(tmp_path, data: bytes) -> str:
    import threading

    fifo = tmp_path / "stream.fifo"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as fh:
            fh.write(data)

    threading.Thread(target=write, daemon=True).start()
    return str(fifo)


def test_a_pipe_decodes_like_the_file(tmp_path, capsys):
    """`decode <(zcat f.mig.gz)`: the input is read once (not sniffed, then reopened)."""
    pc = DATA / "pc-min.mig"
    assert main(["decode", "--format", "analyze-migration", str(pc)]) == 0
    want = capsys.readouterr().out
    assert main(["decode", "--format", "analyze-migration",
                 _fifo_with(tmp_path, pc.read_bytes())]) == 0
    assert capsys.readouterr().out == want


def test_a_pipe_longer_than_pipe_bytes(tmp_path, capsys):
    fifo = _fifo_with(tmp_path, (DATA / "pc-min.mig").read_bytes())
    line = cli(capsys, "--limit", "pipe-bytes=64k", "verify", fifo)
    assert f"{fifo}: offset 0x10000: " in line and "pipe-bytes=65536" in line


@pytest.mark.parametrize("engine", ["reference", "optimized"])
def test_fuzz_found_bitmap_size_member_of_2p31(engine):
    """Found by `fuzz --target case` (the infos/bitmap case with nbits 2^31-1): the state
    holds the bitmap as an int, so put_bitmap was asked for 2^25 words (256 MiB) from a
    70-bit value and ran out of the 500 MB bound; now outcome `limit` at once."""
    from conformance.model.description import Description, Field
    from conformance.model.flags import F

    desc = Description("bm", 1, 1, [
        Field("nbits", F.SINGLE, "int32", size=4),
        Field("bm", F.VBUFFER | F.POINTER, "bitmap", size_member="nbits")])
    started = time.monotonic()
    out = conformance.engine(engine).save(desc, {"nbits": 2**31 - 1, "bm": 5}, "legacy")
    assert out.kind == "limit" and out.path == "bm/bm" and "--limit elements" in out.message
    assert time.monotonic() - started < 5
    out = conformance.engine(engine).save(desc, {"nbits": 70, "bm": 5}, "legacy")
    assert out.ok and len(out.data) == 4 + 16


@pytest.mark.parametrize("engine", ["reference", "optimized"])
def test_fuzz_found_alloc_of_empty_structs(engine):
    """Found by `fuzz --target engines`: an ALLOC VARRAY_INT32 of structs whose nested
    structs have no fields, counter 65,536 from the stream - zero values per element,
    so the state-values bound passed and 196,608 struct loads took 10 s.  A struct now
    counts as a value itself (and flag arithmetic is cached, conformance/model/flags.py)."""
    from conformance.model.description import Description, Field
    from conformance.model.flags import F

    empty = Description("E", 1, 0, [])
    elem = Description("T", 1, 0, [Field("a", F.STRUCT, None, size=1, vmsd=empty),
                                   Field("b", F.STRUCT, None, size=1, vmsd=empty)])
    desc = Description("dev", 1, 0, [
        Field("n", F.SINGLE, "int32", size=4),
        Field("va", F.POINTER | F.STRUCT | F.VARRAY_INT32 | F.ALLOC, None, size=2,
              num_member="n", vmsd=elem)])
    eng = conformance.engine(engine)
    started = time.monotonic()
    out = eng.load(desc, (65536).to_bytes(4, "big") + b"\x00", {"n": 0, "va": None}, "alloc")
    assert out.kind == "limit" and "allocations to 196608 values" in out.message
    out = eng.load(desc, (21846).to_bytes(4, "big") + b"\x00", {"n": 0, "va": None}, "alloc")
    assert out.kind == "limit"
    assert time.monotonic() - started < 5
    out = eng.load(desc, (100).to_bytes(4, "big") + b"\x00", {"n": 0, "va": None}, "alloc")
    assert out.ok and len(out.state["va"]) == 100 and out.state["va"][99] == {"a": {}, "b": {}}


def test_cached_flag_arithmetic_is_enum_arithmetic():
    from conformance.model.flags import F

    a = F.POINTER | F.STRUCT | F.VARRAY_INT32 | F.ALLOC
    assert int(a) == 0x2 | 0x8 | 0x10 | 0x2000 and isinstance(a, F)
    assert (a & F.POINTER) is F.POINTER and (2 & a) == F.POINTER and isinstance(2 & a, F)
    assert not (a & F.ARRAY) and (a & ~F.ALLOC) == F.POINTER | F.STRUCT | F.VARRAY_INT32
    assert (F.SINGLE | 4) == F.SINGLE | F.ARRAY and (a | a) is a


def test_fuzz_found_hook_value_of_the_wrong_type(tmp_path, capsys):
    """Found by `fuzz --target case` (infos/tmp with its pre_save setting x to []): a
    hook's assignments are read as states of their members when the case is parsed."""
    tmp = {"name": "t", "Fields": [{"field": "x", "info": "uint16", "size": 2}],
           "pre_save": {"set": {"x": []}}}
    desc = {"name": "d", "Fields": [{"field": "tmp", "info": "tmp", "member": None,
                                     "size": 16, "Description": tmp}]}
    line = cli(capsys, "encode", write_case(tmp_path, {"description": desc}))
    assert "$.description.Fields[0].Description.pre_save.set.x: uint16 field 'x' needs an " \
           "integer" in line
    tmp["pre_save"] = {"set": {"x": 7, "scratch": [1, {"k": "v"}]}}
    buf = {"name": "d", "Fields": [{"field": "b", "flags": ["BUFFER"], "info": "buffer",
                                    "size": 2}], "post_load": {"set": {"b": "abcd"}}}
    case = conformance.load_case(write_case(tmp_path, {"description": buf}, "buf.json"))
    assert case.description.post_load.set == (("b", b"\xab\xcd"),)
    assert main(["encode", str(write_case(tmp_path, {"description": desc}))]) == 0
    assert capsys.readouterr().out.strip() == "0007"


def test_contract_time_is_cpu_time_and_waiting_is_a_hang(monkeypatch):
    """A block that sleeps longer than the bound uses no CPU: not slow (the machine is
    shared); one that computes past the bound is slow; one that waits past WALL_FACTOR
    times the bound is a hang."""
    with hostile.bounded(0.2):
        time.sleep(0.5)
    monkeypatch.setattr(hostile, "WALL_FACTOR", 100)  # only CPU time decides below
    with pytest.raises(hostile.ContractViolation, match=r"slow: 0\.[3-9]\d* s CPU"):
        with hostile.bounded(0.25):
            end = time.process_time() + 0.35
            while time.process_time() < end:
                pass
    monkeypatch.setattr(hostile, "WALL_FACTOR", 2)
    with pytest.raises(hostile.ContractViolation, match="hang"):
        with hostile.bounded(0.2):
            time.sleep(3)
