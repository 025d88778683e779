"""vmstate_check() per variant, plus the rules QEMU only documents.

Errors model migration/savevm.c vmstate_check() (run at registration when qtest is
enabled; a failure is an assertion).  Warnings are the rules include/migration/vmstate.h
states in comments but no code enforces (ARRAY xor VARRAY, MULTIPLY only with VBUFFER,
ALLOC only with POINTER).  Every finding names its rule and the field path.
"""

from __future__ import annotations

import attrs

from conformance.model import variants as _variants
from conformance.model.description import Description
from conformance.model.flags import ANY_VARRAY, F


@attrs.frozen
class Finding:
    rule: str
    path: str
    message: str
    severity: str = "error"  # "error" (vmstate_check asserts) or "warning" (documented)

    def __str__(self) -> str:
        return f"{self.severity}: {self.rule} at {self.path}: {self.message}"


#: rule name -> (severity, what it says); docs/variants.md lists which variant applies which
RULES = {
    "end-canary": ("error", "the field list must end with an entry whose flags are exactly VMS_END"),
    "subsection-prefix": ("error", "a subsection's name must start with its parent's name"),
    "pointer-array-needs-array": ("error", "VMS_ARRAY_OF_POINTER needs VMS_ARRAY or a VMS_VARRAY_* flag"),
    "auto-alloc-needs-size": ("error", "an auto-allocating pointer array needs .size or a size member (the pointee size)"),
    "pointer-array-no-size": ("error", "a non-allocating pointer array must not set .size or a size member"),
    "auto-alloc-needs-pointer-array": ("error", "VMS_ARRAY_OF_POINTER_AUTO_ALLOC needs VMS_ARRAY_OF_POINTER"),
    "flag-not-in-variant": ("error", "the flag does not exist in this variant"),
    "array-xor-varray": ("warning", "VMS_ARRAY and VMS_VARRAY_* must not be combined (vmstate.h)"),
    "one-varray-kind": ("warning", "at most one VMS_VARRAY_* flag (vmstate.h)"),
    "multiply-needs-vbuffer": ("warning", "VMS_MULTIPLY is only valid with VMS_VBUFFER (vmstate.h)"),
    "alloc-needs-pointer": ("warning", "VMS_ALLOC is only valid with VMS_POINTER (vmstate.h)"),
    "alloc-pointer-array-entries": ("warning", "VMS_ALLOC|VMS_ARRAY_OF_POINTER won't cause the individual entries to be allocated (vmstate.h): the core allocates the pointer array without zeroing and then follows its slots"),
    "struct-needs-vmsd": ("error", "VMS_STRUCT / VMS_VSTRUCT need a sub-description"),
    "field-needs-info": ("error", "a non-struct field needs an info"),
    "field-needs-member": ("error", "only VMSTATE_UNUSED (unused_buffer), VMSTATE_WITH_TMP (tmp) "
                           "and VMSTATE_VALIDATE address the struct itself (no member)"),
    "varray-needs-counter": ("error", "a VMS_VARRAY_* field needs a counter member"),
    "vbuffer-needs-size-member": ("error", "VMS_VBUFFER needs a size member"),
}


class CheckFailed(ValueError):
    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(str(findings[0]))


def check(desc: Description, variant="legacy", *, warnings: bool = True) -> list[Finding]:
    """All findings for ``desc`` under ``variant`` (errors first, then warnings)."""
    v = _variants.get(variant)
    found: list[Finding] = []

    def add(rule: str, path: str, extra: str = "") -> None:
        severity, text = RULES[rule]
        if severity == "warning" and not warnings:
            return
        found.append(Finding(rule, path, text + (f" ({extra})" if extra else ""), severity))

    def visit(d: Description, path: str, seen: set) -> None:
        if id(d) in seen:
            return
        seen.add(id(d))
        # Structural sanity every variant needs to run at all.
        for field in d.fields:
            fpath = f"{path}/{field.name}"
            flags = field.flags
            if flags & (F.STRUCT | F.VSTRUCT) and field.vmsd is None:
                add("struct-needs-vmsd", fpath)
            if not flags & (F.STRUCT | F.VSTRUCT) and field.info is None and not (
                    flags & F.MUST_EXIST and flags & F.ARRAY and field.num == 0):
                add("field-needs-info", fpath)
            if field.member is None and field.info not in ("unused_buffer", "tmp") and not (
                    flags & F.MUST_EXIST and flags & F.ARRAY and field.num == 0):
                add("field-needs-member", fpath)
            if flags & ANY_VARRAY and not flags & F.ARRAY and field.num_member is None:
                add("varray-needs-counter", fpath)
            if flags & F.VBUFFER and field.size_member is None:
                add("vbuffer-needs-size-member", fpath)
            for f in F:
                if f in flags and f.value and f not in v.numbering:
                    add("flag-not-in-variant", fpath, f"{f.name} in {v.name}")
        if v.has_check:
            _vmstate_check(d, path, v, add)
        # Documented-only rules.
        for field in d.fields:
            fpath = f"{path}/{field.name}"
            flags = field.flags
            if flags & F.ARRAY and flags & ANY_VARRAY:
                add("array-xor-varray", fpath)
            if bin(int(flags & ANY_VARRAY)).count("1") > 1:
                add("one-varray-kind", fpath)
            if flags & F.MULTIPLY and not flags & F.VBUFFER:
                add("multiply-needs-vbuffer", fpath)
            if flags & F.ALLOC and not flags & F.POINTER:
                # still the header's wording in every variant, even where the alloc RFC
                # relies on ARRAY_OF_POINTER|ALLOC for embedded arrays (it works in code)
                add("alloc-needs-pointer", fpath,
                    "the alloc RFC allocates the elements anyway" if v.is_auto(field) else "")
            if (flags & F.ALLOC and flags & F.POINTER and flags & F.ARRAY_OF_POINTER
                    and v.allocates_array(field) and not v.is_auto(field)):
                # Silbe's flag documentation, deleted by the alloc RFC (13/17)
                add("alloc-pointer-array-entries", fpath)
        for field in d.fields:
            for child in (field.vmsd, field.key_vmsd):
                if child is not None:
                    visit(child, f"{path}/{field.name}", seen)
        for sub in d.subsections:
            visit(sub, f"{path}/@{sub.name}", seen)

    visit(desc, desc.name, set())
    found.sort(key=lambda x: x.severity != "error")
    return found


def _vmstate_check(d: Description, path: str, v, add) -> None:
    """savevm.c vmstate_check() for one VMSD (the recursion is done by the caller)."""
    for field in d.fields:
        fpath = f"{path}/{field.name}"
        flags = field.flags
        has_array = bool(flags & (F.ARRAY | ANY_VARRAY))
        size_set = field.size != 0 or field.size_member is not None
        if v.pointer_array_rules == "auto-alloc":
            # Peter Xu's AUTO_ALLOC series (09/11)
            if flags & F.ARRAY_OF_POINTER:
                if flags & F.AUTO_ALLOC:
                    if not size_set:
                        add("auto-alloc-needs-size", fpath)
                elif size_set:
                    add("pointer-array-no-size", fpath, f"size={field.size}")
                if not has_array:
                    add("pointer-array-needs-array", fpath)
            if flags & F.AUTO_ALLOC and not flags & F.ARRAY_OF_POINTER:
                add("auto-alloc-needs-pointer-array", fpath)
        elif v.pointer_array_rules == "alloc":
            # the alloc RFC (Fabiano Rosas 13/17): the ARRAY requirement moved to the else-branch
            if flags & F.ARRAY_OF_POINTER:
                if flags & F.ALLOC:
                    if not size_set:
                        add("auto-alloc-needs-size", fpath)
                else:
                    if size_set:
                        add("pointer-array-no-size", fpath, f"size={field.size}")
                    if not has_array:
                        add("pointer-array-needs-array", fpath)
    if d.terminator is not None and d.terminator != v.vms_end:
        add("end-canary", path, f"terminator flags 0x{d.terminator:x}, VMS_END is 0x{v.vms_end:x}")
    for sub in d.subsections:
        if not sub.name.startswith(d.name):
            add("subsection-prefix", f"{path}/@{sub.name}", f"parent {d.name!r}")


def errors(desc: Description, variant="legacy") -> list[Finding]:
    return [f for f in check(desc, variant, warnings=False) if f.severity == "error"]


def rejected(desc: Description, variant, op: str):
    """The ``rejected`` Outcome every engine returns for ``op`` ("save" / "load") when
    vmstate_check finds an error (the first finding names the rule and the path), or
    None when the description passes."""
    from conformance.model.outcome import REJECTED, Outcome

    problems = errors(desc, variant)
    if not problems:
        return None
    first = problems[0]
    return Outcome(REJECTED, op, message=f"vmstate_check: {first.rule}: {first.message}",
                   messages=tuple(str(p) for p in problems), path=first.path)
