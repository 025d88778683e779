"""Static compatibility verdicts: what QEMU's scripts/vmstate-static-checker.py judges,
by names, sizes and versions, on two ``-dump-vmstate`` documents, without stopping.

The script (QEMU: scripts/vmstate-static-checker.py, main / check_descriptions /
check_fields / check_subsections / check_version / check_size) reports, per section:
a section missing in the destination, a version above the destination's (section,
description or field) or below its minimum, a missing entry (``Description``,
``Fields``, ``Subsections``), a field of a struct without its description, a
description renamed, a subsection not found, a field size changed, ``unused`` padding
that does not add up, and two field lists that stop matching by name -- after which it
"skips the rest" of that description.  This module reports every one of those findings
(our own code; the script's behaviour is modelled, not copied) and then keeps going:
after a name mismatch it looks ahead on both sides (fields inserted in the
destination, fields dropped from the source) and otherwise pairs the fields by position
(a rename: names never reach the wire), checking sizes and versions of every later
field too.

A finding is named by section / description / field, with a ``kind`` from
:data:`KINDS`.  ``script`` is False for the findings the script never reaches (those
after its "skipping rest", and the explanations we add to a mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _dcfield

#: finding kinds; the first group are the script's own, in its words
KINDS = {
    "section-missing": "section does not exist in the destination",
    "version": "version error: source version above the destination's",
    "minimum-version": "minimum version error: source version below the destination's minimum",
    "entry-missing": "an entry of the description is missing in the destination",
    "struct-description-missing": "a struct field has no description in the destination",
    "description-renamed": "the description is missing; the destination has another",
    "subsection-missing": "subsection not found in the destination",
    "size": "field size mismatch",
    "unused-size": "unused bytes do not add up to the fields beside them",
    "field-mismatch": "field names stop matching (the script skips the rest)",
    "no-more-fields": "the destination has no further fields",
    # ours, explaining a field-mismatch and going on past it
    "inserted": "fields only in the destination, before a matching field",
    "dropped": "fields only in the source, before a matching field",
    "renamed": "paired by position: the same place in both lists, another name",
    "appended": "fields only in the destination, after the source's last field",
    "count": "element count changed (dumps from QEMU 10.0 on and vmdescs state it)",
}


@dataclass(frozen=True)
class Finding:
    section: str
    kind: str
    message: str
    description: str | None = None
    field: str | None = None
    script: bool = True  # the script reports it too (it does not skip past it)

    def where(self) -> str:
        parts = [f'section "{self.section}"']
        if self.description is not None:
            parts.append(f'description "{self.description}"')
        if self.field is not None:
            parts.append(f'field "{self.field}"')
        return ", ".join(parts)

    def line(self) -> str:
        return f"{self.where()}: {self.kind}: {self.message}"

    def to_json(self) -> dict:
        return {"section": self.section, "description": self.description,
                "field": self.field, "kind": self.kind, "message": self.message,
                "script": self.script}


#: section renames the script knows (QEMU commit 292b1634 and e1000's): names, not code
SECTION_RENAMES = {"ICH9 LPC": "ICH9-LPC", "e1000-82540em": "e1000"}


def dest_section_name(name: str, dst: dict) -> str | None:
    """The destination's name for section ``name`` (itself, or a known rename)."""
    if name in dst:
        return name
    for old, new in SECTION_RENAMES.items():
        other = new if name == old else old if name == new else None
        if other is not None and other in dst:
            return other
    return None


@dataclass
class StaticResult:
    findings: list[Finding] = _dcfield(default_factory=list)
    machine_warning: str | None = None

    def by_section(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in self.findings:
            out.setdefault(f.section, []).append(f)
        return out

    @property
    def script_count(self) -> int:
        """What the script's exit status would count (it stops at 255)."""
        return min(255, sum(1 for f in self.findings if f.script))


def check(src: dict, dst: dict) -> StaticResult:
    """Every static finding for migrating ``src`` (a dump: section -> entry) to ``dst``."""
    return _Checker(src, dst).run()


class _Checker:
    def __init__(self, src: dict, dst: dict) -> None:
        self.src, self.dst = src, dst
        self.result = StaticResult()

    def add(self, section, kind, message, description=None, field=None, script=True):
        self.result.findings.append(Finding(section, kind, message, description, field,
                                            script))

    def run(self) -> StaticResult:
        for name, s in self.src.items():
            dname = dest_section_name(name, self.dst)
            if dname is None:
                self.add(name, "section-missing", "does not exist in the destination")
                continue
            d = self.dst[dname]
            if name == "vmschkmachine":
                if s.get("Name") != d.get("Name"):
                    self.result.machine_warning = (
                        f'checking different machine types: "{s.get("Name")}", '
                        f'"{d.get("Name")}"')
                continue
            self.version(name, s, d, None)
            for entry in s:
                if entry not in d:
                    self.add(name, "entry-missing", f'entry "{entry}" missing')
                elif entry == "Description":
                    self.description(name, s[entry], d[entry], True)
        return self.result

    # QEMU: check_version -- a minimum version error outside a description is printed
    # by the script without being counted (its taint bump sits under ``if desc``)
    def version(self, sec, s, d, desc, field=None):
        sv, dv = s.get("version_id", 0), d.get("version_id", 0)
        if sv > dv:
            self.add(sec, "version", f"version {sv} > {dv}", desc, field)
        if "minimum_version_id" in d and sv < d["minimum_version_id"]:
            self.add(sec, "minimum-version", f"version {sv} < minimum "
                     f"{d['minimum_version_id']}", desc, field, script=desc is not None)

    def description(self, sec, s, d, reached=True):
        name = s.get("name", "?")
        self.version(sec, s, d, name)
        if name != d.get("name"):
            self.add(sec, "description-renamed",
                     f'description "{name}" missing, got "{d.get("name")}" instead',
                     name, script=reached)
            # the script stops here; names are not on the wire, so we go on
            reached = False
        for entry in s:
            if entry not in d:
                self.add(sec, "entry-missing", f'entry "{entry}" missing', name,
                         script=reached)
                continue
            if entry == "Fields":
                self.fields(sec, name, s[entry], d[entry], reached)
            elif entry == "Subsections":
                self.subsections(sec, name, s[entry], d[entry], reached)

    def subsections(self, sec, desc, src_subs, dst_subs, reached):
        for sub in src_subs:
            matches = [d for d in dst_subs if d.get("name") == sub.get("name")]
            if not matches:
                self.add(sec, "subsection-missing",
                         f'subsection "{sub.get("name")}" not found', desc,
                         script=reached)
            for d in matches:
                self.description(sec, sub, d, reached)

    def pair(self, sec, desc, s, d, reached):
        """Two fields taken to be the same: versions, sizes, nested descriptions."""
        self.version(sec, s, d, desc, s["field"])
        sn, dn = s.get("num"), d.get("num")
        if isinstance(sn, int) and isinstance(dn, int) and sn != dn:
            self.add(sec, "count", f"element count {sn} -> {dn}", desc, s["field"],
                     script=False)
        if "Description" not in s:
            if s.get("size") != d.get("size"):
                self.add(sec, "size", f"size {s.get('size')} -> {d.get('size')}", desc,
                         s["field"], script=reached)
            return
        if "Description" not in d:
            self.add(sec, "struct-description-missing",
                     "a struct in the source, no description in the destination", desc,
                     s["field"], script=reached)
            return
        self.description(sec, s["Description"], d["Description"], reached)

    def fields(self, sec, desc, src_fields, dst_fields, reached):
        s_cur, d_cur = _Cursor(src_fields), _Cursor(dst_fields)
        while True:
            s = s_cur.peek()
            if s is None:
                rest = d_cur.remaining_names()
                if rest:  # the script never looks at the destination's extra fields
                    self.add(sec, "appended", f"only in the destination, after the last "
                             f"source field: {', '.join(rest[:6])}"
                             f"{' ...' if len(rest) > 6 else ''}", desc, rest[0],
                             script=False)
                return
            d = d_cur.peek()
            if d is None:
                rest = s_cur.remaining_names()
                self.add(sec, "no-more-fields",
                         f'expected field "{s["field"]}", the destination has no further '
                         f"fields ({len(rest)} source field(s) left: {', '.join(rest[:6])}"
                         f"{' ...' if len(rest) > 6 else ''})", desc, s["field"],
                         script=reached)
                return
            if s["field"] == d["field"]:
                s_cur.take(), d_cur.take()
                self.pair(sec, desc, s, d, reached)
                continue
            # fields moved into a struct (or out of one) keep the wire format: open it
            if _opens_with(d, s["field"]):
                d_cur.take()
                d_cur.enter(d["Description"]["Fields"])
                continue
            if _opens_with(s, d["field"]):
                s_cur.take()
                s_cur.enter(s["Description"]["Fields"])
                continue
            if "unused" in (s["field"], d["field"]):
                if not self.unused(sec, desc, s_cur, d_cur, reached):
                    reached = False
                continue
            self.add(sec, "field-mismatch",
                     f'expected field "{s["field"]}", got "{d["field"]}"', desc, s["field"],
                     script=reached)
            reached = False
            self.explain(sec, desc, s_cur, d_cur)

    def unused(self, sec, desc, s_cur, d_cur, reached) -> bool:
        """``unused`` padding against real fields: their sizes must add up.
        False after a mismatch (the script stops there)."""
        s, d = s_cur.take(), d_cur.take()
        if s.get("size") == d.get("size"):
            return True
        # the side with the larger run of bytes is the one being matched against
        big, small_cur = (d, s_cur) if d["field"] == "unused" else (s, d_cur)
        left = big.get("size", 0) - (s if big is d else d).get("size", 0)
        while left > 0:
            item = small_cur.take()
            if item is None:
                break
            left -= item.get("size", 0)
            if left < 0:
                self.add(sec, "unused-size", f'unused size mismatch near "{item["field"]}"',
                         desc, item["field"], script=reached)
                return False
        if left < 0:  # the first pair already overshot
            near = (s if big is d else d)["field"]
            self.add(sec, "unused-size", f'unused size mismatch near "{near}"', desc, near,
                     script=reached)
            return False
        return True

    def explain(self, sec, desc, s_cur, d_cur):
        """After a name mismatch: inserted fields, dropped fields, or a rename."""
        s, d = s_cur.peek(), d_cur.peek()
        d_names = d_cur.ahead_names()
        s_names = s_cur.ahead_names()
        if s["field"] in d_names[1:]:
            n = d_names.index(s["field"])
            new = [d_cur.take()["field"] for _ in range(n)]
            self.add(sec, "inserted", f"only in the destination: {', '.join(new)}", desc,
                     s["field"], script=False)
            return
        if d["field"] in s_names[1:]:
            n = s_names.index(d["field"])
            gone = [s_cur.take()["field"] for _ in range(n)]
            self.add(sec, "dropped", f"only in the source: {', '.join(gone)}", desc,
                     gone[0], script=False)
            return
        self.add(sec, "renamed", f'"{s["field"]}" -> "{d["field"]}" (paired by position)',
                 desc, s["field"], script=False)
        s_cur.take(), d_cur.take()
        self.pair(sec, desc, s, d, False)


def _opens_with(item: dict, name: str) -> bool:
    desc = item.get("Description")
    fields = desc.get("Fields") if isinstance(desc, dict) else None
    return bool(fields) and fields[0].get("field") == name and item.get("field") != name


class _Cursor:
    """A position in a field list that can step into a struct's fields and back out."""

    def __init__(self, fields: list) -> None:
        self.stack = [[list(fields), 0]]

    def _settle(self) -> None:
        while len(self.stack) > 1 and self.stack[-1][1] >= len(self.stack[-1][0]):
            self.stack.pop()

    def peek(self):
        self._settle()
        items, i = self.stack[-1]
        return items[i] if i < len(items) else None

    def take(self):
        item = self.peek()
        if item is not None:
            self.stack[-1][1] += 1
        return item

    def enter(self, fields: list) -> None:
        self.stack.append([list(fields), 0])

    def ahead_names(self) -> list[str]:
        """Names from here to the end of the current list (not the enclosing ones)."""
        self._settle()
        items, i = self.stack[-1]
        return [f["field"] for f in items[i:]]

    def remaining_names(self) -> list[str]:
        out = []
        for items, i in reversed(self.stack):
            out += [f["field"] for f in items[i:]]
        return out
