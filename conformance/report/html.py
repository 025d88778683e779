"""report.html: one self-contained page (inline CSS, no script, no external asset): the
totals, the case matrix and the property matrix coloured by result, and a ``<details>``
drill-down per failure with its detail, its reproducer (a relative link into
``failures/``) and the replay command.  Element ids the tests (and a reader's links)
rely on: ``#matrix``, ``#properties``, ``#failures``, and ``failure-N`` per failure."""

from __future__ import annotations

from html import escape

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
td.pass{background:#d8f5d8} td.fail{background:#f8caca;font-weight:bold}
td.none{background:#f2f2f2;color:#888}
.ok{color:#176b17} .bad{color:#a40000}
details{border:1px solid #ddd;border-radius:4px;margin:.4em 0;padding:.3em .6em}
summary{cursor:pointer} pre{background:#f6f6f6;padding:.5em;overflow:auto;white-space:pre-wrap}
code{background:#f3f3f3;padding:0 .2em}
"""


def _cell(passed: int, failed: int | None) -> str:
    if failed is None:
        return '<td class="none">-</td>'
    cls = "fail" if failed else "pass"
    return f'<td class="{cls}">{passed}/{passed + failed}</td>'


def render_html(doc: dict) -> str:
    t = doc["totals"]
    status = ('<span class="ok">all passed</span>' if not t["failed"]
              else f'<span class="bad">{t["failed"]} failed</span>')
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(doc.get('title', 'vmstate-conformance run'))} report</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{escape(doc.get('title', 'vmstate-conformance run'))}: {status}</h1>",
             f'<p id="totals">{t["passed"]} passed, {t["failed"]} failed &middot; '
             f'{t["case_runs"]} case runs, {t["property_points"]} property grid points &middot; '
             f'engines: {escape(", ".join(doc["engines"]))} &middot; {doc["seconds"]:.1f} s '
             f'&middot; started {escape(doc["started"])} &middot; tool '
             f'{escape(doc["tool"]["version"])}</p>']
    if doc["matrix"]:
        cols = [(v, e) for v in doc["variants"] for e in doc["engines"]]
        groups: dict[str, dict] = {}
        for c in doc["matrix"]:
            groups.setdefault(c["group"], {})[(c["variant"], c["engine"])] = c
        parts.append('<h2>Cases</h2><table id="matrix"><thead><tr><th rowspan="2">group</th>')
        for v in doc["variants"]:
            parts.append(f'<th colspan="{len(doc["engines"])}">{escape(v)}</th>')
        parts.append("</tr><tr>" + "".join(f"<th>{escape(e)}</th>" for _, e in cols)
                     + "</tr></thead><tbody>")
        for g, cells in groups.items():
            row = [f"<tr><td>{escape(g)}</td>"]
            for col in cols:
                c = cells.get(col)
                row.append(_cell(c["passed"], c["failed"]) if c else _cell(0, None))
            parts.append("".join(row) + "</tr>")
        parts.append("</tbody></table>")
    if doc["property_matrix"]:
        sweep = doc["sweep"]
        cells = {(c["property"], c["engine"]): c for c in doc["property_matrix"]}
        parts.append(f"<h2>Properties</h2><p>grid points passed/total, {sweep['examples']} "
                     f"examples per point"
                     + (f", profile {escape(sweep['profile'])}" if sweep["profile"] else "")
                     + '</p><table id="properties"><thead><tr><th>property</th>'
                     + "".join(f"<th>{escape(e)}</th>" for e in doc["engines"])
                     + "</tr></thead><tbody>")
        for name in dict.fromkeys(c["property"] for c in doc["property_matrix"]):
            row = [f"<tr><td>{escape(name)}</td>"]
            for e in doc["engines"]:
                c = cells.get((name, e))
                row.append(_cell(c["passed"], c["failed"]) if c else _cell(0, None))
            parts.append("".join(row) + "</tr>")
        parts.append("</tbody></table>")
    parts.append(f'<h2>Failures ({len(doc["failures"])})</h2><div id="failures">')
    if not doc["failures"]:
        parts.append('<p class="ok">none</p>')
    for n, f in enumerate(doc["failures"], 1):
        parts.append(f'<details id="failure-{n}" class="failure"><summary>'
                     f'{escape(f["kind"])}: {escape(f["summary"][:300])}</summary>')
        if f["reproducer"]:
            href = escape(f["reproducer"], quote=True)
            parts.append(f'<p>reproducer: <a href="{href}">{escape(f["reproducer"])}</a></p>')
        if f["replay"]:
            parts.append(f"<p>replay: <code>{escape(f['replay'])}</code></p>")
        parts.append(f"<pre>{escape(f['detail'])}</pre></details>")
    parts.append("</div></body></html>")
    return "\n".join(parts) + "\n"
