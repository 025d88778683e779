"""Regenerating and verifying on temporary copies of the corpus (never the real one):
field-level diffs on a changed encoding or an altered byte, regen restoring the corpus,
a second regen changing nothing, atomic writes, the CI refusal, orphans, and one-line
errors for malformed golden files."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import golden
from conformance.cli import main as cli_main
from conformance.engines import reference

REAL = golden.find_root(Path(__file__).resolve().parent)
SUBSET = ["flags/struct.json", "flags/array.json", "flags/array-of-pointer-alloc.json",
          "flags/auto-alloc.json", "subsections/nested.json", "infos/qtailq-empty.json",
          "infos/gtree-direct.json"]


def _make_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in SUBSET:
        dst = root / "golden" / "cases" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REAL / "golden" / "cases" / rel, dst)
    unit = root / "tests" / "cases" / "qemu-unit"
    unit.mkdir(parents=True)
    for name in ("22_tmp_struct.py", "A4-subsection-unknown.json"):
        shutil.copy(REAL / "tests" / "cases" / "qemu-unit" / name, unit / name)
    return root


def _verify(root: Path, pattern: str | None = None) -> list:
    """Verify with the reference engine only: these tests are about the golden
    machinery; tests/test_golden.py verifies the real corpus with every engine."""
    return golden.verify(root, pattern, ["reference"])


def _regen(root: Path, **kw) -> tuple[list, str]:
    buf = io.StringIO()
    changes = golden.regen(root, env={}, out=buf, **kw)
    return changes, buf.getvalue()


@pytest.fixture
def corpus(tmp_path):
    root = _make_root(tmp_path)
    _regen(root)
    return root


def _snapshot(top: Path) -> dict:
    return {p.relative_to(top).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(top.rglob("*")) if p.is_file()}


def _stream_of(root: Path, cid: str, variant: str = "legacy") -> Path:
    m = golden.load_manifest(root)
    return root / "golden" / m["cases"][cid]["variants"][variant]["save"]["stream"]


def test_fresh_corpus_verifies(corpus):
    assert _verify(corpus) == []


def test_second_regen_is_a_no_op(corpus):
    before = _snapshot(corpus / "golden")
    changes, text = _regen(corpus)
    assert changes == []
    assert "nothing changed" in text
    assert _snapshot(corpus / "golden") == before


def test_changed_encoding_fails_verify_with_a_field_level_diff(corpus, monkeypatch):
    """uint16 written little-endian: verify names the fields, old and new bytes."""
    from conformance.engines import codecs
    from conformance.model.infos import lookup

    stock = codecs.CODECS["uint16"]
    monkeypatch.setitem(codecs.CODECS, "uint16", codecs._int_codec(lookup("uint16"), "<H"))
    problems = _verify(corpus)
    text = "\n".join(map(str, problems))
    assert "flags/array:" in text
    assert "changed flags/array/a[0] @0x0: 0001 (1) -> 0100 (256)" in text
    assert "changed flags/array/a[2] @0x4: fffe (65534) -> feff (65279)" in text
    assert "flags/struct/hdr/kind" in text  # uint16 inside a struct
    assert "files differ" not in text
    # a field that did not change is not listed
    assert "changed flags/struct/hdr/len" not in text
    monkeypatch.setitem(codecs.CODECS, "uint16", stock)
    assert _verify(corpus) == []


def test_altered_byte_is_reported_per_field_and_regen_restores_it(corpus):
    path = _stream_of(corpus, "flags/struct")
    original = path.read_bytes()
    data = bytearray(original)
    data[5] ^= 0xFF  # inside hdr/len (bytes 2..5)
    path.write_bytes(bytes(data))
    problems = _verify(corpus)
    text = "\n".join(map(str, problems))
    assert "flags/struct: [qemu-7.2, reference; legacy, reference; auto-alloc, reference; alloc, reference] stream differs from golden/" in text
    assert "changed flags/struct/hdr/len @0x2: 000000d7 (215) -> 00000028 (40)" in text
    assert "first difference at offset 0x5 in field flags/struct/hdr/len" in text
    changes, report = _regen(corpus)
    assert path.read_bytes() == original
    assert any(c.kind == "changed" and c.what.endswith(path.name) for c in changes)
    assert _verify(corpus) == []
    again, text = _regen(corpus)
    assert again == [] and "nothing changed" in text


def test_regen_reports_field_level_changes(corpus):
    case = corpus / "golden" / "cases" / "flags" / "array.json"
    obj = json.loads(case.read_text())
    obj["source"]["a"][1] = 0x4242
    case.write_text(json.dumps(obj))
    problems = _verify(corpus, "flags/array")
    assert any("changed flags/array/a[1] @0x2: 0002 (2) -> 4242 (16962)" in str(p)
               for p in problems)
    changes, text = _regen(corpus)
    assert "changed  case flags/array [qemu-7.2, legacy, auto-alloc, alloc]" in text
    assert "changed flags/array/a[1] @0x2: 0002 (2) -> 4242 (16962)" in text
    assert "removed  golden/streams/flags/array." in text  # the old hash's files
    assert "added    golden/streams/flags/array." in text
    assert _verify(corpus) == []
    assert _regen(corpus)[0] == []


def test_orphan_missing_and_unpinned_files_fail(corpus):
    orphan = corpus / "golden" / "streams" / "flags" / "nobody.deadbeef.bin"
    orphan.write_bytes(b"\x00")
    text = "\n".join(map(str, _verify(corpus)))
    assert "golden/streams/flags/nobody.deadbeef.bin: pinned file no case uses" in text
    orphan.unlink()
    _stream_of(corpus, "infos/qtailq-empty").unlink()
    text = "\n".join(map(str, _verify(corpus)))
    assert "infos/qtailq-empty: [qemu-7.2, reference; legacy, reference; auto-alloc, reference; alloc, reference] pinned stream" in text
    assert "missing" in text
    _regen(corpus)
    new = corpus / "golden" / "cases" / "flags" / "new.json"
    shutil.copy(corpus / "golden" / "cases" / "flags" / "array.json", new)
    text = "\n".join(map(str, _verify(corpus)))
    assert "flags/new: no golden files pinned for golden/cases/flags/new.json" in text
    new.unlink()
    (corpus / "golden" / "cases" / "flags" / "array.json").unlink()
    text = "\n".join(map(str, _verify(corpus)))
    assert "flags/array: the manifest pins a case whose file golden/cases/flags/array.json" in text
    changes, out = _regen(corpus)
    assert "removed  case flags/array" in out
    assert not list((corpus / "golden" / "streams" / "flags").glob("array.*"))
    assert _verify(corpus) == []


def test_partial_regen_only_touches_matching_cases(corpus):
    for rel in ("flags/array.json", "flags/struct.json"):
        case = corpus / "golden" / "cases" / rel
        obj = json.loads(case.read_text())
        obj["notes"] = obj["notes"] + " (edited)"
        obj["source"] = {k: v for k, v in obj["source"].items()}
        if rel == "flags/array.json":
            obj["source"]["a"][0] = 9
        else:
            obj["source"]["tail"] = 10
        case.write_text(json.dumps(obj))
    changes, text = _regen(corpus, pattern="flags/array")
    assert "case flags/array [" in text and "flags/struct" not in text
    left = "\n".join(map(str, _verify(corpus)))
    assert "flags/struct:" in left and "flags/array:" not in left


def test_regen_refuses_under_ci_unless_forced(corpus):
    with pytest.raises(golden.GoldenError, match="CI set"):
        golden.regen(corpus, env={"CI": "1"}, out=io.StringIO())
    golden.regen(corpus, env={"CI": "1"}, force=True, out=io.StringIO())


def test_cli_regen_under_ci(corpus, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    assert cli_main(["golden", "regen", "--root", str(corpus)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing" in err
    assert cli_main(["golden", "regen", "--root", str(corpus), "--force"]) == 0


def test_regen_writes_atomically(corpus, monkeypatch):
    """A failed rename leaves the old file intact and no temporary file behind."""
    path = _stream_of(corpus, "flags/struct")
    old = path.read_bytes()
    case = corpus / "golden" / "cases" / "flags" / "struct.json"
    obj = json.loads(case.read_text())
    obj["source"]["tail"] = 0x77
    case.write_text(json.dumps(obj))
    manifest_before = (corpus / "golden" / "manifest.json").read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(golden.corpus.os, "replace", boom)
    with pytest.raises(OSError):
        _regen(corpus)
    assert path.read_bytes() == old
    assert (corpus / "golden" / "manifest.json").read_bytes() == manifest_before
    assert not [p for p in (corpus / "golden").rglob(".*.tmp")]


@pytest.mark.parametrize("text,expect", [
    ("{", "golden/manifest.json: line 1 column 2: invalid JSON"),
    ('{"format": "nope", "cases": {}}', "golden/manifest.json: $.format: expected"),
    ('{"format": "vmstate-conformance/golden/1", "cases": {"a/b": {"file": "x", '
     '"variants": {"legacy": {"save": 3}}}}}',
     "golden/manifest.json: $.cases[\"a/b\"].variants.legacy.save: must be an object"),
    ('{"format": "vmstate-conformance/golden/1", "cases": {"c": {"file": "x", '
     '"variants": {"nope": {}}}}}', "golden/manifest.json: $.cases.c.variants.nope: unknown"),
    ('{"format": "vmstate-conformance/golden/1", "cases": {"c": {"file": "x", "variants": '
     '{"legacy": {"save": {"kind": "ok", "stream": "../../etc/passwd"}, "load": null}}}}}',
     "golden/manifest.json: $.cases.c.variants.legacy.save.stream: must be a path under "
     "streams/"),
])
def test_malformed_manifest_is_one_line(corpus, capsys, text, expect):
    (corpus / "golden" / "manifest.json").write_text(text)
    assert cli_main(["golden", "verify", "--root", str(corpus)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert expect in err
    assert err.strip().count("\n") == 0


def test_malformed_state_file_names_file_and_path(corpus):
    m = golden.load_manifest(corpus)
    name = m["cases"]["flags/array"]["variants"]["legacy"]["load"]["state"]
    (corpus / "golden" / name).write_text('{"format": "vmstate-conformance/golden-state/1",'
                                          ' "loads": [{"kind": "ok"}]}')
    text = "\n".join(map(str, _verify(corpus, "flags/array")))
    assert f"golden/{name}: $.loads[0]: must be an object with variants and kind" in text


def test_malformed_case_file_is_one_line(corpus, capsys):
    (corpus / "golden" / "cases" / "flags" / "bad.json").write_text(
        '{"description": {"name": "x", "Fields": [{"field": "a", "info": "uint9"}]}}')
    assert cli_main(["golden", "verify", "--root", str(corpus)]) == 1
    out, _ = capsys.readouterr()
    assert "golden/cases/flags/bad.json: $.description.Fields[0].info: unknown VMStateInfo" in out
    with pytest.raises(golden.GoldenError, match="nothing written"):
        _regen(corpus)


def test_annotated_view_round_trips(corpus):
    m = golden.load_manifest(corpus)
    for name in m["streams"]:
        data = (corpus / "golden" / name).read_bytes()
        spans = golden.parse_hex((corpus / "golden" / name.replace(".bin", ".hex.txt"))
                                 .read_text())
        assert sum(s.length for s in spans) == len(data)
        assert all(a.offset + a.length == b.offset for a, b in zip(spans, spans[1:], strict=False))


def test_hex_view_out_of_date_is_reported(corpus):
    path = _stream_of(corpus, "flags/array")
    hex_path = path.with_name(path.name.replace(".bin", ".hex.txt"))
    hex_path.write_text(hex_path.read_text().replace("flags/array/a[0]", "flags/array/zz"))
    text = "\n".join(map(str, _verify(corpus, "flags/array")))
    assert "annotated view golden/" in text and "out of date" in text


def _pytest(root: Path, *args, env_ci: str | None = None):
    import os

    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if env_ci is not None:
        env["CI"] = env_ci
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    from importlib.metadata import entry_points

    registered = any(e.value == "conformance.pytest_plugin"
                     for e in entry_points(group="pytest11"))
    plugin = [] if registered else ["-p", "conformance.pytest_plugin"]  # not installed yet
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-p", "no:hypothesispytest",
                           "-p", "no:benchmark", *plugin, "tests/test_nothing.py", *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_pytest_regen_golden_option(tmp_path):
    root = _make_root(tmp_path)
    (root / "pytest.ini").write_text("[pytest]\n")
    proc = _pytest(root, "--regen-golden")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "golden" / "manifest.json").is_file()
    assert _verify(root) == []
    proc = _pytest(root, "--regen-golden", env_ci="true")
    assert proc.returncode != 0
    assert "refusing to regenerate" in proc.stdout + proc.stderr


def test_parallel_verify_finds_the_same_problems(corpus):
    path = _stream_of(corpus, "flags/array")
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    serial = sorted(map(str, golden.verify(corpus, None, ["reference"], jobs=1)))
    parallel = sorted(map(str, golden.verify(corpus, None, ["reference"], jobs=2)))
    assert serial == parallel and any("changed flags/array/a[0]" in p for p in serial)


def test_an_engine_disagreeing_with_the_pins_is_caught(corpus, monkeypatch):
    """Another engine writing different bytes fails verify with a field diff laid out
    with the pinned fields, naming that engine only."""
    from conformance.engines import optimized

    real = optimized.save

    def bad_save(desc, state, variant="legacy", **kw):
        out = real(desc, state, variant, **kw)
        if out.ok and desc.name == "flags/array" and out.data:
            import attrs

            return attrs.evolve(out, data=b"\x00\x07" + out.data[2:])
        return out

    monkeypatch.setattr(optimized, "save", bad_save)
    text = "\n".join(map(str, golden.verify(corpus, "flags/array", ["reference", "optimized"])))
    assert "[qemu-7.2, optimized; legacy, optimized; auto-alloc, optimized; alloc, optimized]" \
        in text
    assert "changed flags/array/a[0] @0x0: 0001 (1) -> 0007 (7)" in text
    assert "only this engine differs" in text
    assert ", reference" not in text


def test_changed_vmdesc_is_reported(corpus):
    m = golden.load_manifest(corpus)
    name = m["cases"]["flags/struct"]["variants"]["legacy"]["save"]["vmdesc"]
    path = corpus / "golden" / name
    path.write_text(path.read_text().replace('"hdr"', '"hdx"'))
    text = "\n".join(map(str, _verify(corpus)))
    assert f"vmdesc differs from golden/{name}" in text and "first difference at" in text


def test_regen_warns_when_the_reference_contradicts_a_case(corpus):
    case = corpus / "golden" / "cases" / "flags" / "array.json"
    obj = json.loads(case.read_text())
    obj["expect"] = {"save": {"kind": "ok", "stream": "00010002fffefff0"}}
    case.write_text(json.dumps(obj))
    _, text = _regen(corpus)
    assert "warning: flags/array [qemu-7.2]: the reference engine contradicts the case's " \
           "expectation: save.stream" in text


def test_load_input_has_an_annotated_view(corpus):
    m = golden.load_manifest(corpus)
    state = m["cases"]["qemu-unit/A4-subsection-unknown"]["variants"]["legacy"]["load"]["state"]
    view = corpus / "golden" / state.replace(".state.json", ".hex.txt")
    text = view.read_text()
    assert "# loaded by: qemu-7.2\n" in text and "# loaded by: legacy auto-alloc alloc" in text
    assert "(unread)" in text
    view.write_text(text.replace("(unread)", "(read)"))
    problems = "\n".join(map(str, _verify(corpus)))
    assert f"annotated view golden/{state.replace('.state.json', '.hex.txt')} is out of date" \
        in problems
    _regen(corpus)
    assert view.read_text() == text


def test_changed_pointer_marker_is_named(corpus, monkeypatch):
    """A different NULL marker byte: the diff names the slot's marker, old and new."""
    monkeypatch.setattr(reference, "NULL_MARKER", 0x32)
    text = "\n".join(map(str, _verify(corpus, "flags/auto-alloc")))
    assert "changed flags/auto-alloc/p[1]#marker @0x6: 30 (NULL (0x30)) -> 32 " \
           "(0x32 (not a marker value))" in text
