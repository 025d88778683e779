"""report.md: the summary as GitHub-flavoured Markdown, sized for a pull-request comment
or a CI job summary (``$GITHUB_STEP_SUMMARY``): the matrix, the property matrix, and
each failure in a ``<details>`` block with its replay command.  Failures past
:data:`MAX_FAILURES` are counted, not listed (the full list is in report.json)."""

from __future__ import annotations

MAX_FAILURES = 50
MAX_DETAIL = 1500


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers, body) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
    return lines


def render_markdown(doc: dict) -> str:
    from conformance.report.matrix import matrix_table

    t = doc["totals"]
    mark = "✅" if not t["failed"] else "❌"
    title = doc.get("title", "vmstate-conformance run")  # qemu compare names itself
    lines = [f"## {mark} {title}: {t['passed']} passed, {t['failed']} failed",
             "",
             f"{t['case_runs']} case runs, {t['property_points']} property grid points; "
             f"engines: {', '.join(doc['engines'])}; {doc['seconds']:.1f} s; "
             f"tool {doc['tool']['version']}.", ""]
    if doc["matrix"]:
        headers, body = matrix_table(doc)
        lines += ["### Cases (passed/total per group, variant / engine)", ""]
        lines += _table(headers, body) + [""]
    if doc["property_matrix"]:
        sweep = doc["sweep"]
        cells = {(c["property"], c["engine"]): c for c in doc["property_matrix"]}
        body = []
        for name in dict.fromkeys(c["property"] for c in doc["property_matrix"]):
            row = [name]
            for e in doc["engines"]:
                c = cells.get((name, e))
                row.append("-" if not c else f"{c['passed']}/{c['passed'] + c['failed']}"
                           + (" ❌" if c["failed"] else ""))
            body.append(row)
        prof = f", profile {sweep['profile']}" if sweep["profile"] else ""
        lines += [f"### Properties (grid points passed/total, {sweep['examples']} examples "
                  f"per point{prof})", ""]
        lines += _table(["property", *doc["engines"]], body) + [""]
    if doc["failures"]:
        lines += [f"### Failures ({len(doc['failures'])})", ""]
        for f in doc["failures"][:MAX_FAILURES]:
            detail = f["detail"][:MAX_DETAIL]
            lines += ["<details>", f"<summary>{_escape(f['summary'][:200])}</summary>", ""]
            if f["reproducer"]:
                lines.append(f"Reproducer: [`{f['reproducer']}`]({f['reproducer']})  ")
            if f["replay"]:
                lines.append(f"Replay: `{f['replay']}`")
            lines += ["", "```", detail.replace("```", "'''"), "```", "</details>", ""]
        if len(doc["failures"]) > MAX_FAILURES:
            lines.append(f"… and {len(doc['failures']) - MAX_FAILURES} more in report.json.")
    return "\n".join(lines).rstrip() + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
