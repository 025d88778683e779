"""junit.xml: one ``<testcase>`` per case x variant x engine and per property grid point
(x engine), in two ``<testsuite>`` elements (``cases``, ``properties``); a load error of
a case file is a testcase with an ``<error>``.  The widely read JUnit dialect (Jenkins,
GitLab, GitHub test reporters): ``classname`` is the group or property, ``name`` the
case and its variant / engine."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def _suite(parent, name: str, tests: list[dict]) -> None:
    failures = sum(1 for t in tests if t["status"] == "failure")
    errors = sum(1 for t in tests if t["status"] == "error")
    seconds = sum(t.get("time", 0.0) for t in tests)
    suite = ET.SubElement(parent, "testsuite", name=name, tests=str(len(tests)),
                          failures=str(failures), errors=str(errors),
                          skipped=str(sum(1 for t in tests if t["status"] == "skipped")),
                          time=f"{seconds:.3f}")
    for t in tests:
        tc = ET.SubElement(suite, "testcase", classname=t["classname"], name=t["name"],
                           time=f"{t.get('time', 0.0):.3f}")
        if t["status"] in ("failure", "error"):
            el = ET.SubElement(tc, t["status"], message=t["message"][:500])
            el.text = t["detail"]
        elif t["status"] == "skipped":  # the qemu engine cannot express the case
            ET.SubElement(tc, "skipped", message=t["message"][:500])


def render_junit(doc: dict) -> str:
    cases = []
    for e in doc["errors"]:
        cases.append({"classname": e["group"], "name": e["file"], "status": "error",
                      "message": e["message"], "detail": e["message"]})
    for r in doc["cases"]:
        detail = "\n".join(r["mismatches"])
        if r["replay"]:
            detail += f"\nreplay: {r['replay']}"
        cases.append({"classname": r["group"],
                      "name": f"{r['case']} [{r['variant']}-{r['engine']}]",
                      "status": "skipped" if r.get("skipped") else
                                "passed" if r["passed"] else "failure",
                      "message": r["mismatches"][0] if r["mismatches"] else "",
                      "detail": detail})
    props = []
    for r in doc["properties"]:
        detail = r["message"] or ""
        if r["replay"]:
            detail += f"\nreplay: {r['replay']}"
        props.append({"classname": f"property.{r['property']}",
                      "name": f"{r['property']} [{r['engine']}-{r['variant']}-{r['family']}]",
                      "status": "passed" if r["passed"] else "failure",
                      "message": (r["message"] or "").splitlines()[0] if r["message"] else "",
                      "detail": detail, "time": r["seconds"]})
    root = ET.Element("testsuites", name="vmstate-conformance",
                      tests=str(len(cases) + len(props)),
                      failures=str(sum(1 for t in cases + props if t["status"] == "failure")),
                      errors=str(len(doc["errors"])), time=f"{doc['seconds']:.3f}")
    _suite(root, "cases", cases)
    _suite(root, "properties", props)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
