"""The command line: exit codes, output, and one-line errors for malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.cli.cases import DEFAULT_CASE

EXAMPLE = str(DEFAULT_CASE)


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_encode_prints_lowercase_hex(capsys):
    assert main(["encode", EXAMPLE]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "00000004310000000000010000000230310002000000100000001130"


def test_decode_round_trips_encode(capsys):
    main(["encode", EXAMPLE])
    stream = capsys.readouterr().out.strip()
    assert main(["decode", EXAMPLE, stream + "00"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["sq"][1] is None and state["sq"][2] == {"sqid": 2, "head": 16, "tail": 17}


def test_decode_error_is_one_line_with_offset_and_path(capsys):
    assert main(["decode", EXAMPLE, "0000000431000000"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "byte offset" in err and "nvme/ctrl/sq[0]/head" in err


@pytest.mark.parametrize("content,found,why", [
    (b"\x7fELF\xff", "starts 7f454c46 '.ELF'", "byte offset 4: not UTF-8"),
    (b'{"a": 1', "starts 7b226122 '{\"a\"'", "line 1 column 8: invalid JSON"),
    (b"", "empty", "line 1 column 1: invalid JSON"),
    (b'{"format": "vmstate-conformance/case/1"}', "starts 7b22666f", "a case needs a description"),
])
def test_decode_of_neither_a_migration_nor_a_case_file_says_what_it_is_not(
        tmp_path, capsys, content, found, why):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    for extra in ([], ["--format", "analyze-migration"]):
        assert main(["decode", str(path), *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"vmstate-conformance: {path}: not a migration file")
        assert found in err and "QEMU_VM_FILE_MAGIC 0x5145564d 'QEVM' expected" in err
        assert f"not a case file ({why}" in err
    assert main(["decode", str(tmp_path)]) == 1
    assert "a directory, neither a migration file nor a case file" in capsys.readouterr().err
    # a case file without its STREAM stays a usage error
    assert main(["decode", EXAMPLE]) == 2
    assert "STREAM (hex or a file) is missing" in capsys.readouterr().err


def test_decode_reads_a_stream_file(tmp_path, capsys):
    main(["encode", EXAMPLE])
    stream = bytes.fromhex(capsys.readouterr().out.strip()) + b"\0"
    path = tmp_path / "s.bin"
    path.write_bytes(stream)
    assert main(["decode", EXAMPLE, str(path)]) == 0


@pytest.mark.parametrize("content,where", [
    ("{", "line 1 column 2"),
    ('{"description": {"name": "d", "Fields": [{"field": "x", "info": "uint8", '
     '"flags": ["ARRY"]}]}}', "$.description.Fields[0].flags"),
    ('{"description": {"name": "d", "Fields": [{"field": "x", "info": "uint9"}]}}',
     "$.description.Fields[0].info"),
    ('{"description": {"name": "d", "Fields": [{"field": "x", "info": "uint8"}]}, '
     '"source": {"x": 300}}', "$.source.x"),
    ('{"description": {"name": "d"}, "variants": ["qemu-99"]}', "$.variants[0]"),
    ('{"description": {"name": "d"}, "expect": {"save": {"stream": "zz"}}}',
     "$.expect.save.stream"),
])
def test_malformed_case_files_get_a_json_path(tmp_path, content, where):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out, err = run("encode", str(path))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and where in err and "Traceback" not in err


def test_usage_errors_exit_2():
    assert run("encode")[0] == 2
    assert run("decode", EXAMPLE)[0] == 2
    assert run("decode", EXAMPLE, "not-hex-and-not-a-file")[0] == 2


def test_missing_file_is_one_line(tmp_path):
    code, _, err = run("encode", str(tmp_path / "nope.json"))
    assert code == 1 and "nope.json" in err and "Traceback" not in err


def test_run_on_examples_passes():
    code, out, err = run("run", str(Path(EXAMPLE).parent), "--properties", "1")
    assert code == 0, out + err
    assert " passed, 0 failed" in out and "property grid points" in out


def test_check_reports_rule_and_path(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"variants": ["auto-alloc"], "description": {
        "name": "d", "Fields": [{"field": "p", "flags": ["ARRAY", "ARRAY_OF_POINTER"],
                                 "info": "int32", "num": 2, "size": 8}]}}))
    code, out, _ = run("check", str(path))
    assert code == 1 and "pointer-array-no-size at d/p" in out
