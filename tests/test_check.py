"""vmstate_check per variant (Peter Xu's 09/11 for auto-alloc, the alloc RFC's 13/17 for alloc) and the
rules QEMU only documents; every finding names its rule and field path."""

from __future__ import annotations

import pytest

from conformance.engines import reference as R
from conformance.model.check import RULES, check, errors
from conformance.model.description import Description, Field
from conformance.model.flags import F

T = Description("T", 1, 1, fields=[Field("i", F.SINGLE, "int32", size=4)])
AOP = F.ARRAY_OF_POINTER | F.STRUCT
VARIANTS = ("qemu-7.2", "legacy", "auto-alloc", "alloc")


def dev(*fields, **kw):
    return Description("dev", 1, 1, fields=[Field("n", F.SINGLE, "uint8", size=1), *fields], **kw)


def rules(desc, variant, severity="error"):
    return sorted((f.rule, f.path) for f in check(desc, variant) if f.severity == severity)


@pytest.mark.parametrize("flags,size,size_member,expect", [
    # plain pointer array, legacy size 8 (scenario 18)
    (F.ARRAY | AOP, 8, None, {"qemu-7.2": [], "legacy": [],
                              "auto-alloc": ["pointer-array-no-size"],
                              "alloc": ["pointer-array-no-size"]}),
    # plain pointer array with a size member
    (F.ARRAY | AOP, 0, "sz", {"legacy": [], "auto-alloc": ["pointer-array-no-size"],
                              "alloc": ["pointer-array-no-size"]}),
    # auto without size (scenario 19)
    (F.ARRAY | AOP | F.AUTO_ALLOC, 0, None, {"auto-alloc": ["auto-alloc-needs-size"],
                                             "legacy": ["flag-not-in-variant"]}),
    (F.ARRAY | AOP | F.ALLOC, 0, None, {"alloc": ["auto-alloc-needs-size"],
                                        "legacy": [], "auto-alloc": []}),
    # auto with only a size member passes (scenario 21)
    (F.ARRAY | AOP | F.AUTO_ALLOC, 0, "sz", {"auto-alloc": []}),
    # auto without ARRAY/VARRAY (scenario 17): B fails, C passes
    (AOP | F.AUTO_ALLOC, 4, None, {"auto-alloc": ["pointer-array-needs-array"]}),
    (AOP | F.ALLOC, 4, None, {"alloc": []}),
    # plain without ARRAY/VARRAY: B and C both reject; legacy has no such rule
    (AOP, 0, None, {"auto-alloc": ["pointer-array-needs-array"],
                    "alloc": ["pointer-array-needs-array"], "legacy": []}),
    # AUTO_ALLOC without ARRAY_OF_POINTER
    (F.ARRAY | F.STRUCT | F.AUTO_ALLOC, 4, None,
     {"auto-alloc": ["auto-alloc-needs-pointer-array"], "alloc": ["flag-not-in-variant"]}),
])
def test_pointer_array_rules(flags, size, size_member, expect):
    desc = dev(Field("ar", flags, None, size=size, num=2, size_member=size_member, vmsd=T))
    for variant, want in expect.items():
        assert [r for r, _ in rules(desc, variant)] == want, variant
        assert all(p == "dev/ar" for _, p in rules(desc, variant)), variant


def test_nested_paths_and_engines_refuse():
    bad = Field("ar", F.ARRAY | AOP, None, size=8, num=2, vmsd=T)
    mid = Description("mid", 1, 1, fields=[bad])
    top = Description("top", 1, 1, fields=[Field("m", F.STRUCT, vmsd=mid)])
    (finding,) = errors(top, "auto-alloc")
    assert finding.rule == "pointer-array-no-size" and finding.path == "top/m/ar"
    out = R.save(top, {}, "auto-alloc")
    assert out.kind == "rejected" and out.path == "top/m/ar"
    assert out.message.startswith("vmstate_check: pointer-array-no-size")
    assert R.load(top, b"", {}, "auto-alloc").kind == "rejected"
    assert R.save(top, {"m": {"ar": [None, None]}}, "legacy").ok


def test_canary_and_subsection_prefix_per_variant():
    d = dev(terminator=0x10000)
    assert rules(d, "legacy") == [] and rules(d, "alloc") == []
    assert rules(d, "auto-alloc") == [("end-canary", "dev")]
    assert rules(d, "qemu-7.2") == []  # no vmstate_check, no canary in 7.2
    sub = Description("other/x", 1, 1, fields=[Field("y", F.SINGLE, "uint8", size=1)])
    d = dev(subsections=[sub])
    for v in ("legacy", "auto-alloc", "alloc"):
        assert rules(d, v) == [("subsection-prefix", "dev/@other/x")]
    assert rules(d, "qemu-7.2") == []


def test_documented_only_rules_are_warnings():
    legacy_alloc = dev(Field("ar", F.POINTER | F.VARRAY_UINT8 | AOP | F.ALLOC, None, size=8,
                             num_member="n", vmsd=T))
    assert rules(legacy_alloc, "legacy", "warning") == [("alloc-pointer-array-entries", "dev/ar")]
    assert rules(legacy_alloc, "alloc", "warning") == []  # 13/17 deleted that sentence
    embedded = dev(Field("ar", F.ARRAY | AOP | F.ALLOC, None, size=4, num=2, vmsd=T))
    (w,) = check(embedded, "alloc")
    assert w.severity == "warning" and w.rule == "alloc-needs-pointer" and "anyway" in w.message
    assert R.save(embedded, {"ar": [None, {"i": 1}]}, "alloc").ok  # warnings never reject
    mixed = dev(Field("x", F.ARRAY | F.VARRAY_UINT8 | F.MULTIPLY, "uint8", num=2,
                      num_member="n", size=1))
    assert {r for r, _ in rules(mixed, "legacy", "warning")} == {"array-xor-varray",
                                                                "multiply-needs-vbuffer"}


def test_every_rule_has_a_severity_and_text():
    for name, (severity, text) in RULES.items():
        assert severity in ("error", "warning") and text, name
