"""``compat SRC DST``: the static verdicts and the executed ones, section by section.

Sections are matched by name (with the script's section renames); a source section
whose name the destination lacks is then looked up by its top description's name (a
QOM type renamed keeps its VMSD, and the wire names the VMSD: ``pci-piix3`` in 7.2 is
``PIIX3`` in 10.0, both VMSD ``PIIX3``).  Sides of different kinds (a dump against a
vmdesc or case files) are matched by description name only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as _dcfield

from conformance.compat import static
from conformance.compat.execute import (
    COMPATIBLE,
    INCOMPATIBLE,
    SOME,
    Executed,
    run_pair,
)

MISSING, NEW = "missing", "new"
FAILING = (INCOMPATIBLE, SOME, MISSING)


@dataclass
class Row:
    section: str
    dst_section: str | None
    static: list = _dcfield(default_factory=list)  # Finding
    executed: Executed | None = None
    note: str | None = None

    @property
    def verdict(self) -> str:
        if self.dst_section is None:
            return MISSING
        if self.executed is None:
            return NEW
        return self.executed.verdict

    @property
    def verdict_text(self) -> str:
        v = self.verdict
        if v == COMPATIBLE and self.executed.inferred:
            return "compatible (inferred)"
        if v in (SOME, INCOMPATIBLE) and self.executed.inferred:
            return f"{v} (inferred)"
        return v

    @property
    def script_findings(self) -> list:
        return [f for f in self.static if f.script]

    @property
    def static_text(self) -> str:
        fs = self.script_findings
        if not fs:
            return "ok" if self.dst_section is not None or not self.static else "missing"
        kinds: dict[str, int] = {}
        for f in fs:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in kinds.items())

    @property
    def disagreement(self) -> str | None:
        """``static-only`` (the script flags it, it loads), ``executed-only`` (the
        script passes it, a load fails) or None."""
        v = self.verdict
        if v in (MISSING, NEW):
            return None
        flagged = bool(self.script_findings)
        if flagged and v == COMPATIBLE:
            return "static-only"
        if not flagged and v in (SOME, INCOMPATIBLE):
            return "executed-only"
        return None

    def to_json(self) -> dict:
        out = {"section": self.section, "dst_section": self.dst_section,
               "verdict": self.verdict, "static": [f.to_json() for f in self.static],
               "static_verdict": self.static_text, "disagreement": self.disagreement}
        if self.executed is not None:
            out["executed"] = self.executed.to_json()
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Comparison:
    src: object
    dst: object
    rows: list
    static: static.StaticResult
    variant: str
    src_variant: str

    @property
    def failed(self) -> bool:
        return any(r.verdict in FAILING for r in self.rows)

    def counts(self) -> dict:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.verdict_text] = out.get(r.verdict_text, 0) + 1
        return out

    def disagreements(self) -> dict:
        out: dict[str, list] = {"static-only": [], "executed-only": []}
        for r in self.rows:
            if r.disagreement:
                out[r.disagreement].append(r.section)
        return out

    def to_json(self) -> dict:
        return {"src": {"path": self.src.path, "kind": self.src.kind,
                        "machine": self.src.machine},
                "dst": {"path": self.dst.path, "kind": self.dst.kind,
                        "machine": self.dst.machine},
                "variant": self.variant, "src_variant": self.src_variant,
                "machine_warning": self.static.machine_warning,
                "script_findings": self.static.script_count,
                "findings": len(self.static.findings),
                "counts": self.counts(), "disagreements": self.disagreements(),
                "rows": [r.to_json() for r in self.rows]}


def pairs(src, dst) -> list[tuple[str, str | None, str | None]]:
    """(source section, destination section or None, how it was matched)."""
    out = []
    by_vmsd = dst.vmsd_names()
    same_kind = src.kind == dst.kind == "dump"
    for name, entry in src.sections.items():
        if name == "vmschkmachine":
            continue
        if same_kind:
            dname = static.dest_section_name(name, dst.sections)
            if dname is not None:
                out.append((name, dname, None if dname == name else "section renamed"))
                continue
        desc = entry.get("Description") if isinstance(entry, dict) else None
        vmsd = desc.get("name") if isinstance(desc, dict) else None
        if not same_kind and name in dst.sections:
            out.append((name, name, None))
        elif vmsd in by_vmsd:
            how = None if not same_kind else (
                f'not a destination section by name; its description "{vmsd}" is, '
                f'as section "{by_vmsd[vmsd]}"')
            out.append((name, by_vmsd[vmsd], how))
        else:
            out.append((name, None, None))
    return out


def compare(src, dst, *, variant: str = "legacy", src_variant: str | None = None,
            examples: int = 50, sections: list[str] | None = None, static_only=False,
            progress=None) -> Comparison:
    """Static findings and executed verdicts for every section of ``src``."""
    result = static.check(src.sections, dst.sections)
    by_section = result.by_section()
    rows = []
    todo = pairs(src, dst)
    if sections:
        wanted = set(sections)
        todo = [p for p in todo if p[0] in wanted]
    started = last = time.monotonic()
    for i, (name, dname, how) in enumerate(todo, 1):
        row = Row(name, dname, by_section.get(name, []), note=how)
        if dname is not None and not static_only:
            row.executed = run_pair(src, dst, name, dname, variant=variant,
                                    src_variant=src_variant, examples=examples)
        rows.append(row)
        now = time.monotonic()
        if progress is not None and (now - last >= 5 or i == len(todo)):
            last = now
            print(f"compat: {i}/{len(todo)} sections ({now - started:.0f} s), last: {name}"
                  f" -> {row.verdict_text}", file=progress, flush=True)
    listed = {r.section for r in rows}
    matched = {r.dst_section for r in rows}
    if not sections:
        for name in dst.sections:
            if name != "vmschkmachine" and name not in matched and name not in listed:
                rows.append(Row(name, name, note="only in the destination"))
    return Comparison(src, dst, rows, result, variant, src_variant or variant)


def render_table(cmp: Comparison, *, width: int = 34) -> str:
    """The side-by-side table: section, the script's static verdict, the executed one."""
    lines = []
    head = f"{'section':<{width}} {'static (the script)':<34} {'executed':<26} note"
    lines.append(head)
    lines.append("-" * len(head))
    for r in cmp.rows:
        note = []
        if r.disagreement == "static-only":
            note.append("flagged statically, loads")
        elif r.disagreement == "executed-only":
            note.append("passes statically, fails")
        if r.note:
            note.append(r.note)
        if r.executed is not None and r.executed.witness:
            note.append("witness: " + r.executed.witness["load"])
        if r.executed is not None and r.executed.reason:
            note.append(r.executed.reason)
        static_text = r.static_text if r.verdict != NEW else "-"
        lines.append(f"{_cut(r.section, width):<{width}} {_cut(static_text, 34):<34} "
                     f"{r.verdict_text:<26} {'; '.join(note)}".rstrip())
    lines.append("")
    counts = cmp.counts()
    lines.append("executed: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    d = cmp.disagreements()
    lines.append(f"static findings: {cmp.static.script_count} (the script's exit status), "
                 f"{len(cmp.static.findings)} in all (nothing skipped)")
    lines.append(f"decided differently: {len(d['static-only'])} flagged statically but load "
                 f"({', '.join(d['static-only'][:8])}{' ...' if len(d['static-only']) > 8 else ''}); "
                 f"{len(d['executed-only'])} pass statically but fail "
                 f"({', '.join(d['executed-only'][:8])}{' ...' if len(d['executed-only']) > 8 else ''})")
    if cmp.static.machine_warning:
        lines.append(f"warning: {cmp.static.machine_warning}")
    return "\n".join(lines)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "~"


def render_findings(result: static.StaticResult) -> str:
    return "\n".join(("" if f.script else "(past the script) ") + f.line()
                     for f in result.findings)

