"""The run's summary matrix as a table (the text summary of conformance/campaign.py and
report.md both print it)."""

from __future__ import annotations


def matrix_table(doc: dict) -> tuple[list[str], list[list[str]]]:
    """The summary matrix as (headers, rows): group x (variant / engine), passed/total."""
    groups: dict[str, dict] = {}
    for c in doc["matrix"]:
        groups.setdefault(c["group"], {})[(c["variant"], c["engine"])] = c
    ran = {col for cells in groups.values() for col in cells}
    # a qemu build runs one variant: no column for the variants it does not
    cols = [(v, e) for v in doc["variants"] for e in doc["engines"] if (v, e) in ran]
    headers = ["group"] + [f"{v}/{e}" for v, e in cols]
    body = []
    for g, cells in groups.items():
        line = [g]
        for col in cols:
            c = cells.get(col)
            if c is None:
                line.append("-")
            else:
                total = c["passed"] + c["failed"]
                line.append(f"{c['passed']}/{total}" + (" FAIL" if c["failed"] else "")
                            + (f" +{c['skipped']} skip" if c.get("skipped") else ""))
        body.append(line)
    return headers, body
