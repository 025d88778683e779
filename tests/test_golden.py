"""The golden corpus, verified: every case x every variant x every available engine
reproduces its pinned bytes, vmdesc and loaded state (one test per case, so xdist
spreads them), and the corpus as a whole has no orphaned or missing files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conformance import golden
from conformance.cli import main as cli_main
from conformance.engines import available
from conformance.golden import recorder

ROOT = golden.find_root(Path(__file__).resolve().parent)
REFS, LOAD_ERRORS = golden.discover(ROOT)


_MANIFEST_AT_IMPORT: dict = {}


def _pinned_size(ref) -> int:
    if "m" not in _MANIFEST_AT_IMPORT:
        _MANIFEST_AT_IMPORT["m"] = golden.load_manifest(ROOT)
    entry = _MANIFEST_AT_IMPORT["m"]["cases"].get(ref.id, {})
    return max([e["save"].get("bytes", 0) for e in entry.get("variants", {}).values()] + [0])


try:  # the biggest streams first, so xdist runs them alongside the many small ones
    BY_SIZE = sorted(REFS, key=lambda r: -_pinned_size(r))
except golden.GoldenError:
    BY_SIZE = list(REFS)


@pytest.fixture(scope="module")
def manifest():
    try:
        return golden.load_manifest(ROOT)
    except golden.GoldenError as exc:  # one line naming the file and JSON path
        pytest.fail(str(exc), pytrace=False)


def test_every_case_file_loads():
    assert not LOAD_ERRORS, "\n".join(LOAD_ERRORS)


@pytest.mark.parametrize("ref", BY_SIZE, ids=[r.id for r in BY_SIZE])
def test_golden_case(ref, manifest):
    problems = golden.verify_case(ROOT, ref, manifest, available())
    if problems:
        pytest.fail("\n".join(map(str, problems)), pytrace=False)


def test_golden_corpus(manifest):
    try:
        problems = golden.verify_corpus(ROOT, REFS, manifest)
    except golden.GoldenError as exc:
        pytest.fail(str(exc), pytrace=False)
    assert not problems, "\n".join(map(str, problems))


def test_every_case_is_pinned_under_every_variant(manifest):
    for ref in REFS:
        entry = manifest["cases"].get(ref.id)
        assert entry is not None, f"{ref.id} is not pinned"
        assert sorted(entry["variants"]) == sorted(golden.VARIANTS), ref.id


def test_verify_sees_both_engines():
    """The brief: verify with every engine that imports."""
    assert "reference" in available()


def _snapshot(top: Path) -> dict:
    """Every file and directory under ``top`` with mtime, size and hash (bytecode caches
    other processes may write beside Python case modules are not golden files)."""
    out = {}
    for p in sorted(top.rglob("*")):
        if "__pycache__" in p.parts:
            continue
        if p.is_file():
            st = p.stat()
            out[p.relative_to(top).as_posix()] = (st.st_mtime_ns, st.st_size,
                                                 hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[p.relative_to(top).as_posix() + "/"] = None
    return out


def test_verify_never_writes(capsys):
    before = _snapshot(ROOT / "golden")
    golden.verify_corpus(ROOT, REFS, golden.load_manifest(ROOT))
    for ref in golden.select(REFS, "qemu-unit/*"):
        golden.verify_case(ROOT, ref, golden.load_manifest(ROOT))
    cli_main(["golden", "verify", "--case", "flags/*", "--root", str(ROOT)])
    capsys.readouterr()
    assert _snapshot(ROOT / "golden") == before


def test_verify_cli_reports_ok_or_problems(capsys):
    code = cli_main(["golden", "verify", "--case", "qemu-unit/01-*", "--root", str(ROOT)])
    out, err = capsys.readouterr()
    assert code in (0, 1)
    if code == 0:
        assert "golden verify: ok" in out
    else:
        assert "Traceback" not in out + err


def test_regen_refuses_on_the_real_corpus_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    before = _snapshot(ROOT / "golden")
    assert cli_main(["golden", "regen", "--root", str(ROOT)]) == 1
    assert _snapshot(ROOT / "golden") == before
    assert os.environ["CI"] == "true"


def test_annotation_agrees_with_conformance_annotate(manifest):
    """The golden recorder and conformance.golden.annotate (another annotator over the same
    reference save) agree: every leaf element span of the latter is tiled exactly by
    golden spans of that field, and every marker is the golden '#marker' byte."""
    annotate_mod = pytest.importorskip("conformance.golden.annotate")
    by_id = {r.id: r for r in REFS}
    checked = 0
    for name, item in manifest["streams"].items():
        ref = by_id.get(item["case"])
        if ref is None or item["bytes"] > 4096:
            continue
        variant = item["variants"][0]
        ours = recorder.annotate(ref.case.description, ref.case.source, variant)
        theirs = annotate_mod.annotate(ref.case.description, ref.case.source, variant,
                                       leaves=True)
        for s in theirs:
            if s.kind == "framing" or s.length == 0 or isinstance(s.value, (list, dict)):
                continue
            if s.kind == "marker":
                assert any(o.offset == s.offset and o.length == 1
                           and o.path == f"{s.path}#marker" for o in ours), (name, s)
                continue
            inside = [o for o in ours if s.offset <= o.offset < s.offset + s.length]
            assert inside and sum(o.length for o in inside) == s.length, (name, s, inside)
            assert all(o.path == s.path or o.path.startswith(s.path + "#")
                       for o in inside), (name, s, inside)
        checked += 1
    assert checked > 50


def test_show_prints_the_annotated_stream(capsys):
    assert cli_main(["golden", "show", "flags/vbuffer", "--variant", "legacy",
                     "--root", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "flags/vbuffer/len" in out and "68656c6c6f" in out
    assert cli_main(["golden", "show", "no-such-case", "--root", str(ROOT)]) == 2  # usage


def test_discovery_writes_no_bytecode(tmp_path, monkeypatch):
    """Importing a Python case module during verify leaves no __pycache__ behind."""
    import sys

    case_dir = tmp_path / "golden" / "cases" / "py"
    case_dir.mkdir(parents=True)
    (case_dir / "one.py").write_text((ROOT / "golden" / "cases" / "hooks" / "checksum.py")
                                     .read_text())
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    refs, errors = golden.discover(tmp_path)
    assert not errors and len(refs) == 2
    assert not list(tmp_path.rglob("__pycache__"))
    assert sys.dont_write_bytecode is False


def test_every_pinned_byte_is_attributed_to_a_field(manifest):
    """No annotated view has bytes the recorder could not attribute ('?'), nor bytes
    the core wrote outside a known marker or header position."""
    for name in manifest["streams"]:
        hex_name = name.removesuffix(".bin") + ".hex.txt"
        spans = golden.parse_hex((ROOT / "golden" / hex_name).read_text(), hex_name)
        bad = [s for s in spans if s.path == "?" or s.path.endswith(("#core", "#subsections"))]
        assert not bad, (hex_name, bad[:3])
