"""Reports of a ``run``: report.json, report.md, report.html and junit.xml.

All four are rendered from one document, the content of report.json (schema
``vmstate-conformance/report/1``, docs/reports.md), which
:func:`conformance.campaign.campaign` builds.  Nothing here runs a case.
"""

from __future__ import annotations

import json
from pathlib import Path

from conformance.report.html import render_html
from conformance.report.junit import render_junit
from conformance.report.markdown import render_markdown

FILES = ("report.json", "report.md", "report.html", "junit.xml")


def write_reports(doc: dict, directory: Path) -> list[Path]:
    """Write the four reports into ``directory`` (created); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in (("report.json", json.dumps(doc, indent=2) + "\n"),
                       ("report.md", render_markdown(doc)),
                       ("report.html", render_html(doc)),
                       ("junit.xml", render_junit(doc))):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


__all__ = ["FILES", "render_html", "render_junit", "render_markdown", "write_reports"]
