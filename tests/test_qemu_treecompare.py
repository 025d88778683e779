"""``qemu compare BASE HEAD`` (conformance/qemu/treecompare.py): two QEMU trees on the
same inputs.  Small budgets; each test skips with the command that makes its build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.qemu import build as qbuild
from conformance.qemu import engine as qengine
from conformance.qemu import treecompare

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "tests" / "cases" / "qemu-unit"


def _locate(series):
    try:
        return qbuild.locate(series)
    except Exception:  # noqa: BLE001
        return None


B72, B102 = _locate("7.2"), _locate("10.2")


def _master():
    """The QEMU master build (variant auto-alloc: the overlay build, or a --source
    checkout of master)."""
    try:
        return qengine.build_for_variant("auto-alloc")
    except Exception:  # noqa: BLE001 - a broken cache is "no build" here
        return None


MASTER = _master()


def need(*builds):
    missing = [s for s, b in zip(("7.2", "10.2"), (B72, B102), strict=True) if b is None
               and s in builds]
    return pytest.mark.skipif(bool(missing), reason="no cached QEMU build: run "
                              + " and ".join(f"`vmstate-conformance qemu build --debian {s}`"
                                             for s in missing))


def test_unknown_build_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["qemu", "compare", "7.2", "no-such-tree"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "qemu build --debian 10.2" in err


def test_verdict_names_the_variant_each_side_behaves_like():
    """No build needed: how a difference reads from the variants each side's C matches,
    and from those where the model says undefined behaviour (it makes no claim there:
    that side is not said to match no variant)."""
    from types import SimpleNamespace

    base = treecompare.Side("BASE", SimpleNamespace(variant="legacy"))
    head = treecompare.Side("HEAD", SimpleNamespace(variant="auto-alloc"))
    v = treecompare.verdict
    assert v(base, head, ["qemu-7.2", "legacy"], ["auto-alloc", "alloc"]) == (
        "HEAD now behaves like auto-alloc here (BASE: like legacy)")
    assert v(base, head, [], ["auto-alloc"]) == (
        "HEAD now behaves like auto-alloc here (BASE matches no variant of the model)")
    assert v(base, head, [], ["auto-alloc"], {"legacy", "qemu-7.2"}) == (
        "HEAD now behaves like auto-alloc here (BASE: the model says undefined behaviour "
        "under legacy)")
    assert v(base, head, ["legacy"], []) == (
        "HEAD matches no variant of the model (BASE behaves like legacy)")
    assert v(base, head, [], []) == "neither matches the model"
    assert v(base, head, ["legacy", "alloc"], ["alloc"]).startswith(
        "HEAD now behaves like alloc here (so does BASE")


@need("10.2")
def test_a_tree_against_itself_reports_nothing(tmp_path, capsys):
    status = main(["qemu", "compare", "-q", B102.key, B102.key, "--examples", "15",
                   "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["differences"] == [] and doc["messages"] == []
    t = doc["totals"]
    assert t["behaviour"] == 0 and t["messages"] == 0 and t["same"] > 100
    assert doc["compare"]["generated_examples"] == 15
    assert "no difference" in out
    for name in ("report.md", "report.html", "junit.xml"):
        assert (tmp_path / name).is_file()


@need("7.2", "10.2")
def test_7_2_to_10_2_error_plumbing_is_found_with_a_replayable_reproducer(tmp_path, capsys):
    """A4: an unknown subsection: 7.2 returns -ENOENT and leaves the file error alone,
    10.x sets it (and says so through Error): HEAD behaves like the legacy variant."""
    status = main(["qemu", "compare", "-q", B72.key, B102.key,
                   str(UNIT / "A4-subsection-unknown.json"), "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1, out
    doc = json.loads((tmp_path / "report.json").read_text())
    [diff] = [d for d in doc["differences"] if d["op"] == "load"]
    assert "file_error" in diff["aspects"]
    assert diff["head_matches"] == ["legacy"] and diff["base_matches"] == ["qemu-7.2"]
    assert diff["verdict"].startswith("HEAD now behaves like legacy here")
    assert "HEAD now behaves like legacy here" in out
    # the reproducer replays to the same difference
    replay = diff["replay"].split()
    assert replay[:5] == ["vmstate-conformance", "qemu", "compare", B72.key, B102.key]
    again = treecompare.compare_trees(B72, B102, paths=[replay[5]], progress=False)
    assert [d["aspects"] for d in again["differences"]] == [diff["aspects"]]


@need("7.2", "10.2")
def test_7_2_to_10_2_messages_only_is_said_and_exits_0(capsys):
    """02-simple-array's truncations: both trees fail the same way (ret, file error,
    bytes consumed); 7.2's error_report and 10.x's Error chain word it differently."""
    status = main(["qemu", "compare", "-q", B72.key, B102.key,
                   str(UNIT / "02-simple-array.json")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "not a failure" in out and "messages differ on" in out
    doc = treecompare.compare_trees(B72, B102, paths=[str(UNIT / "02-simple-array.json")],
                                    progress=False)
    assert doc["differences"] == [] and doc["failures"] == []
    [m] = doc["messages"]
    assert m["aspects"] == ["messages"] and m["class"] == "messages"
    # auto-alloc and alloc (QEMU 11 + a series) word errors as 10.x does
    assert "legacy" in m["head_matches"] and "qemu-7.2" not in m["head_matches"]
    assert m["base_matches"] == ["qemu-7.2"]
    assert "HEAD now behaves like legacy here" in m["verdict"]


@need("7.2", "10.2")
def test_7_2_to_10_2_generated_and_corpora(capsys):
    doc = treecompare.compare_trees(B72, B102, examples=30, progress=False, do_shrink=False)
    srcs = {t["source"] for t in doc["compare"]["tally"]}
    assert {"generated/save", "generated/load", "golden/cases/subsections"} <= srcs
    assert doc["messages"]  # error wording differs between the two
    for d in doc["differences"] + doc["messages"]:
        assert d["reproducer"] and d["replay"].startswith("vmstate-conformance qemu compare")


# --- 10.2 -> QEMU master (Peter Xu's series; the model's variant auto-alloc) -------------

need_master = pytest.mark.skipif(
    B102 is None or B102.variant != "legacy" or MASTER is None,
    reason="needs the cached builds debian-10.2.2 and QEMU master: run `vmstate-conformance "
           "qemu build --debian 10.2` and `vmstate-conformance qemu build --overlay "
           "../shared/qemu-master`")

#: explicit inputs for the classes only generated examples reach, written as a generated
#: difference's reproducer is (named compare-load / compare-save: each tree spells the
#: pointer array's .size as its variant does; docs/variants.md, "Checked against QEMU
#: master's C")
_PTR_ARRAY = {"name": "dev", "version_id": 1, "minimum_version_id": 1,
              "Fields": [{"field": "pa", "flags": ["ARRAY", "ARRAY_OF_POINTER"],
                          "info": "uint8", "size": 8, "num": 1}]}
MASTER_CASES = {
    # S: an unknown subsection: 10.x ret -2 / file error -2, master -22 / -22
    "S-unknown-subsection": {
        "description": {"name": "sub/optional", "version_id": 1, "minimum_version_id": 1,
                        "Fields": [], "Subsections": [
                            {"name": "sub/optional/a", "version_id": 1,
                             "minimum_version_id": 1, "Fields": [],
                             "needed": {"member": "need"}}]},
        "source": {"need": True},
        "load_input": "050e7375622f6f7074696f6e616c2f620000000100"},
    # F (with M3's wording): a NULL slot's marker byte is 0x00; 10.x get_nullptr fails
    # inside the field loop (file error -22), master's vmstate_load_next returns false
    # at the top level without setting it
    "F-marker-error": {"description": _PTR_ARRAY, "source": {"pa": [None]},
                       "destination": {"pa": [None]}, "load_input": "00"},
    # the AUTO_ALLOC series' marker protocol: 0x31 (valid) into a NULL slot of a field
    # without AUTO_ALLOC: master asserts auto_alloc, 10.x's get_nullptr fails
    "marker-assert": {"description": _PTR_ARRAY, "source": {"pa": [None]},
                      "destination": {"pa": [None]}, "load_input": "31"},
    # V: a compressible pointer array whose last element changes the run: master's
    # vmdesc gives the NULL slot no entry (10.2: a "nullptr" entry)
    "V-last-element": {"name": "compare-save", "description": {
        "name": "dev", "version_id": 1, "minimum_version_id": 1,
        "Fields": [{"field": "a", "flags": ["ARRAY", "ARRAY_OF_POINTER"], "info": "int32",
                    "size": 8, "num": 2}]}, "source": {"a": [5, None]}},
}
#: corpus cases, each one known 10.2 -> master difference
MASTER_CORPUS = ("tests/cases/qemu-unit/02-simple-array.json",   # R: ret -5 -> -22
                 "golden/cases/flags/multiply-elements.json",     # X
                 "golden/cases/hooks/post-save-fails.json",       # P2
                 "golden/cases/terminator/vms-end-0x10000.json",  # VMS_END renumbered
                 "tests/cases/scenarios/18-pointer-array-size8.json",  # pointer-array .size
                 "golden/cases/infos/int32-le-negative.json")     # M1 (messages only)


def _write_master_cases(tmp_path) -> list[str]:
    out = []
    for name, body in MASTER_CASES.items():
        # a directory each: a corpus group is its directory, and one kind of difference
        # per group keeps only its smallest input
        (tmp_path / name).mkdir()
        path = tmp_path / name / f"{name}.json"
        path.write_text(json.dumps({"format": "vmstate-conformance/case/1",
                                    "name": "compare-load", "notes": name,
                                    "variants": ["legacy", "auto-alloc"], **body}))
        out.append(str(path))
    return out


def _found(doc, origin, op, section="differences"):
    """The findings of ``section`` from one input file and operation."""
    hits = [d for d in doc[section] if d["origin"] and Path(d["origin"]).name == origin
            and d["op"] == op]
    assert hits, f"no {op} difference from {origin} in {section}: " + json.dumps(
        [(d["origin"], d["op"], d["aspects"]) for d in doc[section]])
    return hits


def _diff_line(finding, aspect) -> str:
    [line] = [x for x in finding["diffs"] if x.startswith(aspect + ":")]
    return line


@need_master
def test_10_2_to_master_finds_the_known_classes_and_head_behaves_like_auto_alloc(
        tmp_path, capsys):
    """Known 10.2 -> master differences (docs/variants.md's classes), each from a corpus
    case or an explicit input, so no Hypothesis draw decides what is found; every one
    reads "HEAD now behaves like auto-alloc here" (the model follows master's C)."""
    paths = [str(ROOT / p) for p in MASTER_CORPUS] + _write_master_cases(tmp_path)
    # .size 0 on a pointer array, in a group of its own (multiply-elements' save differs
    # in the same aspects, and a group keeps one input per kind)
    (tmp_path / "nosize").mkdir()
    nosize = tmp_path / "nosize" / "array-of-pointer-nosize.json"
    nosize.write_bytes((ROOT / "golden/cases/flags/array-of-pointer-nosize.json").read_bytes())
    paths.append(str(nosize))
    status = main(["qemu", "compare", "-q", B102.key, MASTER.key, *paths,
                   "--report", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 1, out
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    for d in doc["differences"] + doc["messages"]:
        assert d["verdict"].startswith("HEAD now behaves like auto-alloc here"), d
        assert "auto-alloc" in d["head_matches"] and "legacy" in d["base_matches"], d
    assert "HEAD now behaves like auto-alloc here (BASE: like legacy)" in out

    # R: a failed load returns -EINVAL whatever the failure (the truncations)
    r = [d for d in _found(doc, "02-simple-array.json", "load") if d["aspects"] == ["ret"]]
    assert r and _diff_line(r[0], "ret") == "ret: BASE -5 / HEAD -22"
    # X: VMS_MULTIPLY_ELEMENTS ignored: 3 elements saved where 10.2 saves 3 x 2
    [x] = _found(doc, "multiply-elements.json", "save")
    assert _diff_line(x, "bytes") == "bytes: BASE '00000003010203040506' / HEAD '00000003010203'"
    # P2: post_save's failure is ignored
    [p2] = _found(doc, "post-save-fails.json", "save")
    kind = _diff_line(p2, "kind")
    assert "BASE 'error: post-save failed" in kind and "HEAD 'ok" in kind
    # VMS_END renumbered 0x10000 -> 0x20000: master's vmstate_check refuses the old one
    [end] = _found(doc, "vms-end-0x10000.json", "save")
    assert "HEAD 'rejected: vmstate_check: end-canary" in _diff_line(end, "kind")
    assert "C did not run on the rejecting side" in end["verdict"]
    # pointer arrays take no .size on master
    [psz] = _found(doc, "18-pointer-array-size8.json", "save")
    assert "HEAD 'rejected: vmstate_check: pointer-array-no-size" in _diff_line(psz, "kind")
    # with .size 0, 10.2 steps on slot 0 (first_elem + 0 * i) where master writes markers;
    # the model's legacy does what 10.2 does (the loop above: base_matches has legacy)
    [nosize] = _found(doc, "array-of-pointer-nosize.json", "save")
    assert _diff_line(nosize, "bytes") == (
        "bytes: BASE '000000010000000100000001' / HEAD '000000013000000003'")
    # S: an unknown subsection: -22 and file error -22 (10.x: -ENOENT)
    [s] = _found(doc, "S-unknown-subsection.json", "load")
    assert s["aspects"] == ["file_error", "ret"]
    assert _diff_line(s, "ret") == "ret: BASE -2 / HEAD -22"
    assert _diff_line(s, "file_error") == "file_error: BASE -2 / HEAD -22"
    # F: a top-level marker error leaves the file error 0; M3: master's wording
    [f] = _found(doc, "F-marker-error.json", "load")
    assert _diff_line(f, "file_error") == "file_error: BASE -22 / HEAD 0"
    assert "Unexpected ptr marker: 0" in _diff_line(f, "messages")
    # the marker protocol: 0x31 for a field without AUTO_ALLOC trips assert(auto_alloc)
    [m] = _found(doc, "marker-assert.json", "load")
    assert "HEAD 'abort: assertion failed: auto_alloc'" in _diff_line(m, "kind")
    # V: the last element's vmdesc entry is lost (the stream bytes are the same)
    [vm] = _found(doc, "V-last-element.json", "save")
    assert vm["aspects"] == ["vmdesc"]
    base_desc, head_desc = _diff_line(vm, "vmdesc").split(" / HEAD ")
    assert '"nullptr"' in base_desc and "nullptr" not in head_desc
    assert "ptr-marker" not in head_desc
    # M1: no "Failed to load element of type ..." wrapper: messages only, not a failure
    [m1] = _found(doc, "int32-le-negative.json", "load", section="messages")
    assert m1["aspects"] == ["messages"]
    assert not [d for d in doc["differences"] if d["origin"]
                and Path(d["origin"]).name == "int32-le-negative.json"]


@need_master
def test_10_2_to_master_generated_differences_follow_the_auto_alloc_model():
    """A few generated examples (no corpora): whatever Hypothesis draws, every
    difference in which the model makes a claim on HEAD finds master's C doing what the
    auto-alloc variant does (`qemu differential --variant auto-alloc` holds it at
    scale)."""
    n = 20
    doc = treecompare.compare_trees(B102, MASTER, examples=n, corpus=False,
                                    progress=False, do_shrink=False)
    tally = {t["source"]: t for t in doc["compare"]["tally"]}
    # a save per example, each counted once (same / differ / messages / ... / skipped);
    # more when Hypothesis abandons an example after its save ran (it does not count it)
    save = tally["generated/save"]
    assert sum(save.get(k, 0) for k in ("same", "behaviour", "messages", "undefined",
                                        "skipped")) >= n
    assert doc["compare"]["generated_examples"] == n
    for d in doc["differences"] + doc["messages"]:
        assert d["source"].startswith("generated/")
        # HEAD matches auto-alloc, or the model says undefined behaviour under it
        assert ("auto-alloc" in d["head_matches"]
                or "undefined behaviour under auto-alloc" in d["verdict"]), d
        assert d["replay"].startswith(f"vmstate-conformance qemu compare {B102.key} "
                                      f"{MASTER.key}")
