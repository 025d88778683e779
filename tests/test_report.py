"""``run --report DIR``: report.json, report.md, report.html (in a real headless browser
where one is installed) and junit.xml, from one run with a deliberate failure."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.report import FILES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "conformance" / "data" / "examples"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Examples (pass) + one case whose expected stream is wrong (fails on both engines),
    with a one-point property sweep (valid-trees on legacy, 2 examples)."""
    base = tmp_path_factory.mktemp("report")
    cases = base / "cases"
    cases.mkdir()
    obj = json.loads((EXAMPLES / "simple-primitive.json").read_text())
    obj.update(name="deliberately-wrong", variants=["legacy"])
    obj["expect"]["save"]["stream"] = "deadbeef"
    (cases / "wrong.json").write_text(json.dumps(obj))
    out = base / "out"
    status = main(["run", "-q", str(cases), str(EXAMPLES), "--report", str(out),
                   "--property", "valid-trees", "--properties", "2", "--variant", "legacy"])
    assert status == 1
    return out


def test_all_four_reports_and_the_failure_files(report):
    assert sorted(p.name for p in report.iterdir()) == sorted([*FILES, "failures"])
    assert sorted(p.name for p in (report / "failures").iterdir()) == [
        "wrong-legacy-optimized.json", "wrong-legacy-reference.json"]


def test_report_json_schema(report):
    doc = json.loads((report / "report.json").read_text())
    assert doc["format"] == "vmstate-conformance/report/1"
    for key in ("tool", "started", "seconds", "command", "engines", "variants", "sweep",
                "totals", "matrix", "property_matrix", "failures", "cases", "properties",
                "errors"):
        assert key in doc, key
    t = doc["totals"]
    assert t["case_runs"] == len(doc["cases"]) and t["property_points"] == len(doc["properties"])
    assert t["failed"] == len(doc["failures"]) == 2
    assert t["passed"] + t["failed"] == t["case_runs"] + t["property_points"]
    assert doc["variants"] == ["legacy"] and doc["sweep"]["properties"] == ["valid-trees"]
    cell = next(c for c in doc["matrix"] if c["group"] == "cases")
    assert cell["failed"] == 1 and cell["passed"] == 0
    for f in doc["failures"]:
        assert f["kind"] == "case" and f["reproducer"].startswith("failures/")
        assert "--engine" in f["replay"] and "save.stream" in f["detail"]


def test_report_md_fits_a_pull_request_comment(report):
    md = (report / "report.md").read_text()
    assert md.startswith("## ❌ vmstate-conformance run:") and len(md) < 65536
    assert "| group |" in md and "| cases |" in md and "0/1 FAIL" in md
    assert md.count("<details>") == 2 and "[`failures/wrong-legacy-reference.json`]" in md
    assert "### Properties" in md


def test_junit_xml_counts(report):
    root = ET.parse(report / "junit.xml").getroot()
    doc = json.loads((report / "report.json").read_text())
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    cases, props = suites["cases"], suites["properties"]
    assert int(cases.get("tests")) == len(cases.findall("testcase")) == len(doc["cases"])
    assert int(props.get("tests")) == len(props.findall("testcase")) == len(doc["properties"])
    assert int(cases.get("failures")) == len(cases.findall("testcase/failure")) == 2
    assert int(root.get("tests")) == len(doc["cases"]) + len(doc["properties"])
    names = [tc.get("name") for tc in cases.findall("testcase")]
    assert "deliberately-wrong [legacy-reference]" in names
    assert len(names) == len(set(names))


def test_report_html_is_self_contained(report):
    html = (report / "report.html").read_text()
    assert 'id="matrix"' in html and 'id="failure-1"' in html and 'id="failure-2"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert 'class="fail"' in html and 'class="pass"' in html


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless browser (chromium) installed; "
                    ".ci/run installs Debian's chromium")
def test_report_html_in_headless_chromium(report, tmp_path):
    """The page as a browser builds it: the DOM dump has the coloured matrix and both
    failures' drill-downs with their reproducer links."""
    proc = subprocess.run(
        [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (report / "report.html").as_uri()],
        capture_output=True, text=True, timeout=180)
    dom = proc.stdout
    assert proc.returncode == 0 and dom, proc.stderr[-2000:]
    assert re.search(r'<table id="matrix">.*<td class="fail">0/1</td>', dom, re.S)
    assert dom.count('<details id="failure-') == 2
    assert 'href="failures/wrong-legacy-reference.json"' in dom
    assert "save.stream: expected" in dom
