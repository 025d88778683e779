"""`vmstate-conformance qemu differential`: the command, its reports and case files.

The report writing runs without a QEMU build (a disagreement made by hand); the command
itself runs on whichever build is cached (skips with the hint otherwise)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conformance.cases import load_case_file
from conformance.cli import main
from conformance.engines import reference
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.outcome import Outcome
from conformance.qemu import differential
from conformance.qemu import engine as qengine

DESC = Description("dev", 1, 1, [Field("a", F.SINGLE, "uint8", size=1)])


def _report_with_a_disagreement():
    rep = differential.Report("legacy", "debian-10.2.2")
    rep.examples = 1
    data = b"\x07"
    ref = reference.load(DESC, data, {"a": 0}, "legacy")
    fake_c = Outcome("ok", "load", data, {"a": 8}, None, (), 0, None, None, (), (), -5)
    rep.note("load", DESC, {"a": 7}, {"a": 0}, data, ref, fake_c)
    rep.note("save", DESC, {"a": 7}, None, data, reference.save(DESC, {"a": 7}, "legacy"),
             reference.save(DESC, {"a": 7}, "legacy"))
    return rep


def test_report_files_and_a_replayable_case_per_disagreement(tmp_path):
    rep = _report_with_a_disagreement()
    assert differential.disagreements(rep) == 1
    doc = differential.write_outputs(rep, tmp_path, ["vmstate-conformance", "qemu"], "now")
    for name in ("differential.json", "report.json", "report.md", "report.html", "junit.xml"):
        assert (tmp_path / name).is_file(), name
    assert doc["totals"]["failed"] == 1 and doc["totals"]["passed"] == 1
    (failure,) = doc["failures"]
    assert failure["id"].startswith("T:load:") and failure["reproducer"].startswith("cases/")
    assert "qemu differential --replay" in failure["replay"]
    case = load_case_file(tmp_path / failure["reproducer"])
    assert tuple(case.variants) == ("legacy",) and case.load_input == b"\x07"
    # the case file replays the same load under the reference engine
    out = reference.load(case.description, case.load_input, case.dest_state(), "legacy")
    assert out.state == {"a": 7}
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert junit.get("tests") == "2" and junit.get("failures") == "1"
    assert json.loads((tmp_path / "report.json").read_text())["format"] == \
        "vmstate-conformance/report/1"


def test_a_null_gtree_destination_replays(tmp_path):
    """A destination whose GTree * is NULL (the zero state's) is written as `null` and
    read back as the NULL tree: the load loses the node, as get_gtree() does."""
    node = Description("dev/v", 1, 1, [Field("val", F.SINGLE, "uint32", size=4)])
    desc = Description("dev", 1, 1, [Field("t", 0, "gtree", size=4, version_id=1,
                                           vmsd=node)])
    data = bytes.fromhex("00000001" "01" "0000000000000005" "00000007" "00")
    ref = reference.load(desc, data, {"t": None}, "legacy")
    assert ref.ok and ref.state == {"t": None}
    assert "leak" in [h.kind for h in ref.hazards]
    rep = differential.Report("legacy", "debian-10.2.2")
    rep.examples = 1
    fake_c = Outcome("ok", "load", data, {"t": [[5, {"val": 7}]]}, None, (), 0)
    rep.note("load", desc, {"t": [[5, {"val": 7}]]}, {"t": None}, data, ref, fake_c)
    doc = differential.write_outputs(rep, tmp_path, ["vmstate-conformance", "qemu"], "now")
    (failure,) = doc["failures"]
    case = load_case_file(tmp_path / failure["reproducer"])
    assert case.dest_state() == {"t": None}
    again = reference.load(case.description, case.load_input, case.dest_state(), "legacy")
    assert again.comparable() == ref.comparable()


def test_summary_names_the_signature_and_counts():
    lines = differential.summary_lines(_report_with_a_disagreement())
    assert lines[-1].lstrip().startswith(("load stream", "state", "file_error")) or any(
        "T:load:" in line for line in lines)
    assert any(line.startswith("disagreements: 1") for line in lines)


def test_help_and_usage(capsys):
    assert main(["qemu", "differential", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--variant", "-n N", "--seed", "--report", "--replay", "--corpus"):
        assert option in out
    assert main(["qemu", "differential", "-n", "0"]) == 2


def test_the_command_runs_on_a_cached_build(tmp_path, capsys):
    variant = next((v for v in ("qemu-7.2", "legacy", "auto-alloc")
                    if qengine.build_for_variant(v) is not None), None)
    if variant is None:
        pytest.skip("no cached QEMU build (vmstate-conformance qemu build --debian 7.2)")
    rc = main(["qemu", "differential", "--variant", variant, "-n", "5", "--seed", "3",
               "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"variant {variant}" in out and "agree" in out
    doc = json.loads((tmp_path / "report.json").read_text())
    # exit 1 exactly when a disagreement is left, with its case files
    assert rc == (1 if doc["failures"] else 0)
    assert (tmp_path / "cases").is_dir() == bool(doc["failures"])


def test_a_c_allocation_over_the_child_limit_is_not_compared():
    """The driver's child runs under a 4 GiB RLIMIT_AS: a g_malloc the model grants
    (limits.MALLOC_LIMIT) that aborts only there is C's sandbox limit (found on QEMU
    master: get_g_byte_array of a damaged length)."""
    from conformance.qemu.compare import comparable, compare

    ref = Outcome("error", "load", b"", {}, "stream error", ("stream error",), -22)
    big = Outcome("abort", "load", b"", None, "GLib: failed to allocate 4294967296 bytes")
    small = Outcome("abort", "load", b"", None, "GLib: failed to allocate 4096 bytes")
    assert comparable(ref, big) == "qemu-limit" and compare(ref, big) == []
    assert comparable(ref, small) is None and compare(ref, small)
