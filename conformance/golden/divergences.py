"""Where the variants disagree, and why: the explain rules and ``divergences.json``.

:func:`divergences` lists every case whose variants disagree on the save, the vmdesc or
the load; :func:`spellings` pairs cases that are one intent spelled for two variants;
:func:`explain` gives the reason and the docs/variants.md link for a disagreement from
a small rule table.  :func:`load_divergences` reads the pinned ``golden/divergences.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conformance.cases import Case
from conformance.golden.corpus import (
    DIVERGENCES,
    DOCS,
    GOLDEN,
    VARIANTS,
    GoldenError,
    fields_of,
    require,
    variant_groups,
)
from conformance.model.flags import F
from conformance.model.state import to_plain


def describe_save(save: dict) -> str:
    if save["kind"] == "ok":
        return f"ok, {save['bytes']} bytes ({save['stream']})"
    return f"{save['kind']}: {save.get('message')}"


def _describe_load(load: dict | None, state_docs: dict) -> str:
    if load is None:
        return "not loaded (the save failed)"
    return f"{load['kind']} ({load['state']})"


_BEHAVIOUR = "behaviour-that-differs-between-variants"  # docs/variants.md sections
_POLICY = "policy-points-variant-fields"
_CHECKED = "checked-against-qemus-c"
_MASTER = "checked-against-qemu-masters-c"


def _differ_only_in(outcomes: list, keys: tuple) -> bool:
    """Do these outcomes agree on everything but ``keys``?"""
    first = {k: v for k, v in outcomes[0].items() if k not in keys}
    return all({k: v for k, v in o.items() if k not in keys} == first for o in outcomes[1:])

#: vmstate_check rule -> (why, (docs/variants.md anchor, rows of its behaviour table))
_RULE_WHY = {
    "flag-not-in-variant": (
        "the description uses a flag that exists in some variants only "
        "(VMS_ARRAY_OF_POINTER_AUTO_ALLOC is QEMU 11 development only; the alloc variant "
        "spells it ARRAY_OF_POINTER|ALLOC); vmstate_check rejects it elsewhere",
        (_BEHAVIOUR, "1")),
    "end-canary": (
        "VMS_END is 0x10000 in QEMU 8.0-10.x and in the alloc RFC but 0x20000 in the "
        "auto-alloc variant (AUTO_ALLOC took 0x10000); QEMU <= 7.2 has no canary check",
        (_BEHAVIOUR, "1")),
    "subsection-prefix": (
        "vmstate_check (QEMU >= 8.0, qtest) requires a subsection's name to start with "
        "its parent's; QEMU 7.2 saves it, and its load peek loop stops before it",
        (_BEHAVIOUR, "2")),
    "pointer-array-no-size": (
        "QEMU 11 (both the auto-alloc and the alloc series) forbids .size on a "
        "non-allocating pointer array, which QEMU <= 10 macros set to the pointer size",
        (_BEHAVIOUR, "3")),
    "auto-alloc-needs-size": (
        "an auto-allocating pointer array needs the pointee size in .size",
        (_BEHAVIOUR, "4")),
    "pointer-array-needs-array": (
        "the auto-alloc series requires ARRAY or VARRAY with ARRAY_OF_POINTER; the alloc "
        "RFC only without ALLOC", (_BEHAVIOUR, "5")),
    "auto-alloc-needs-pointer-array": (
        "AUTO_ALLOC is only valid together with ARRAY_OF_POINTER", (_BEHAVIOUR, "5")),
}


def _load_rows(groups: list, messages: list[str]) -> str:
    """Rows of the docs/variants.md behaviour table a load divergence falls under."""
    rows: list[str] = []
    text = " ".join(messages)
    recs = [g for g, _ in groups]
    keys = {k for a in recs for b in recs for k in _differs(a, b)} - {"stream", "vmdesc",
                                                                       "bytes"}
    if keys and keys <= {"ledger"}:
        return "25"  # only the preconditions the core asserts differ
    if "*pptr == NULL" in json.dumps(recs) or "populated" in text:
        rows.append("11")
    if "auto_alloc" in text:
        rows.append("12")
    if "get_nullptr" in text or "Unexpected ptr marker" in text:
        rows += ["13", "17"]
    return ", ".join(dict.fromkeys(rows)) or "9-21, 25"


def explain(case: Case | None, aspect: str, groups: list) -> tuple[str, str]:
    """(why, docs link) for a divergence, from the outcomes and the description: one
    reason per kind of disagreement, the link of the first."""
    reasons: list[tuple[str, str]] = []
    messages = [str(g.get("message") or "") for g, _ in groups]
    for rule, (why, anchor) in _RULE_WHY.items():
        if any(f"vmstate_check: {rule}" in m for m in messages):
            reasons.append((why, anchor))
    for m in messages:
        rule = re.search(r"vmstate_check: ([a-z-]+)", m)
        if rule and rule.group(1) not in _RULE_WHY:
            reasons.append((f"vmstate_check rule {rule.group(1)} applies in some variants "
                            "only", (_BEHAVIOUR, "2")))
    if any("VMS_END" in m for m in messages) and _RULE_WHY["end-canary"] not in reasons:
        reasons.append(_RULE_WHY["end-canary"])
    flags = F(0)
    if case is not None:
        for field in fields_of(case):
            flags |= field.flags
    # the outcomes that are not a registration-time rejection
    ran = [g for g, _ in groups if g.get("kind") != "rejected"]
    if flags & F.ARRAY_OF_POINTER and len(ran) > 1:
        if aspect == "save":
            reasons.append((
                "arrays of pointers: legacy streams carry a 0x30 marker for NULL slots only "
                "(and QEMU <= 10 steps through the array by .size: with .size 0 every element "
                "is slot 0, saved n times, and a NULL slot 0 is followed); auto-allocating "
                "arrays (AUTO_ALLOC, or "
                "ARRAY_OF_POINTER|ALLOC in the alloc variant) put 0x30/0x31 before every slot",
                (_BEHAVIOUR, "3, 6-8")))
        else:
            reasons.append((
                "arrays of pointers: NULL-slot marker handling and element allocation on "
                "load differ (get_nullptr vs vmstate_ptr_marker_load; assert vs overwrite of "
                "a populated slot; array vs element allocation)",
                (_BEHAVIOUR, _load_rows(groups, messages))))
    elif len(ran) > 1 and (any("subsection" in m for m in messages)
                           or (case is not None and case.description.subsections)):
        reasons.append(("an unknown subsection: QEMU <= 7.2 returns -ENOENT, says nothing "
                        "and leaves the file error alone, 8.0-10.x reports it and sets the file "
                        "error -ENOENT; QEMU master (bool API, auto-alloc / alloc) returns "
                        "-EINVAL and sets -EINVAL (class S)", (_CHECKED, "")))
    elif len(ran) > 1 and _differ_only_in(ran, ("message", "messages", "file_error")):
        reasons.append(("error reporting: QEMU 7.2 error_report()s at each level with its "
                        "own wording, 10.x sets one Error (errp) where the failure is; QEMU "
                        "master (bool API) lets the info set it and returns -EINVAL, and a "
                        "pointer-marker error sets no file error (classes R, F, M1-M3)",
                        (_CHECKED, "")))
    elif len(ran) > 1 and any("failed" in m and ("pre-" in m or "post-" in m)
                              for m in messages):
        reasons.append(("the hook return convention differs between variants: 7.2 / 10.x "
                        "fail a save on any non-zero pre_save / post_save return, QEMU master "
                        "only on a negative pre_save return and ignores post_save's "
                        "(classes P1, P2)", (_MASTER, "")))
    if flags & F.MULTIPLY_ELEMENTS and len(ran) > 1:
        reasons.append(("VMS_MULTIPLY_ELEMENTS: vmstate_n_elems() multiplies the count by .num "
                        "up to 10.x; QEMU master's does not (class X)", (_MASTER, "")))
    if not reasons:
        return ("unexplained: no rule of conformance.golden.divergences.explain matches; "
                "add one", DOCS)
    whys = []
    for why, _ in reasons:
        if why not in whys:
            whys.append(why)
    anchor, rows = reasons[0][1]
    return "; also: ".join(whys), f"{DOCS}#{anchor}" + (f" (rows {rows})" if rows else "")


def divergences(entries: dict, state_docs: dict, cases: dict) -> list[dict]:
    """Every case where the variants disagree on the save, or (among variants that
    saved the same thing) on the load."""
    out = []
    for cid, entry in entries.items():
        case = cases.get(cid)
        per = entry["variants"]
        save_groups = variant_groups({v: save_key(e["save"]) for v, e in per.items()})
        if len(save_groups) > 1:
            groups = [({**per[vs[0]]["save"]}, vs) for _, vs in save_groups]
            why, doc = explain(case, "save", groups)
            out.append({"case": cid, "aspect": "save",
                        "groups": [{"variants": vs, "outcome": describe_save(g)}
                                   for g, vs in groups],
                        "why": why, "doc": doc})
        for key, same_save in save_groups:
            vm_groups = variant_groups({v: per[v]["save"].get("vmdesc") for v in same_save})
            if len(vm_groups) > 1:
                out.append({"case": cid, "aspect": "vmdesc",
                            "groups": [{"variants": vs, "outcome": name or "(none)"}
                                       for name, vs in vm_groups],
                            "why": "the same bytes, described differently: vmdesc eras A "
                                   "(QEMU <= 7.2: NULL slots keep the field's type), B "
                                   "(8.0-10.x: \"nullptr\" entries, runs split on "
                                   "NULL-ness) and C (QEMU 11: \"ptr-marker\" entries, "
                                   "no index for auto-allocating fields)",
                            "doc": f"{DOCS}#{_BEHAVIOUR} (rows 22-24)"})
            load_keys = {}
            for v in same_save:
                load = per[v].get("load")
                if load is None:
                    load_keys[v] = None
                    continue
                doc = state_docs.get(load["state"], {})
                rec = next((ld for ld in doc.get("loads", []) if v in ld.get("variants", [])),
                           {})
                load_keys[v] = json.dumps({k: x for k, x in rec.items() if k != "variants"},
                                          sort_keys=True)
            load_groups = variant_groups(load_keys)
            if len(load_groups) < 2:
                continue
            groups = [(json.loads(key) if key else {}, vs) for key, vs in load_groups]
            why, doc = explain(case, "load", groups)
            out.append({"case": cid, "aspect": "load",
                        "groups": [{"variants": vs,
                                    "outcome": _describe_load(per[vs[0]].get("load"), state_docs)
                                    + (f": {rec.get('message')}" if rec.get("message") else "")
                                    + (f"; hazards {', '.join(rec['hazards'])}"
                                       if rec.get("hazards") else "")
                                    + (f"; differs in {', '.join(_differs(groups[0][0], rec))}"
                                       if k and _differs(groups[0][0], rec) else "")}
                                   for k, (rec, vs) in enumerate(groups)],
                        "why": why, "doc": doc})
    return out


def _load_rec(entries: dict, state_docs: dict, cid: str, v: str) -> dict | None:
    load = entries[cid]["variants"][v].get("load")
    if load is None:
        return None
    doc = state_docs.get(load["state"], {})
    rec = next((ld for ld in doc.get("loads", []) if v in ld.get("variants", [])), {})
    return {k: x for k, x in rec.items() if k != "variants"}


def spellings(entries: dict, state_docs: dict, cases: dict) -> list[dict]:
    """Pairs of cases that are one intent spelled for two variants (the description of
    one, written for its declared variant, translates (conformance.model.translate) into the
    other's, with the same states and inputs): e.g. an AUTO_ALLOC array under
    auto-alloc and its ARRAY_OF_POINTER|ALLOC spelling under alloc.  Each pair says
    whether the two pinned saves and loads agree, and if not, where and why."""
    try:
        from conformance.model.translate import try_translate
    except ImportError:
        return []

    def key(case: Case, desc) -> tuple:
        return (desc, repr(to_plain(case.source)), repr(to_plain(case.destination)),
                case.load_input, case.trailer, case.load_version)

    index: dict[tuple, list[tuple[str, str]]] = {}
    for cid, case in cases.items():
        if cid in entries:
            for v in case.variants:
                try:
                    index.setdefault(key(case, case.description), []).append((cid, v))
                except TypeError:  # an unhashable Python-defined description
                    break
    out: list[dict] = []
    seen: set = set()
    for cid, case in sorted(cases.items()):
        if cid not in entries:
            continue
        for va in case.variants:
            for vb in VARIANTS:
                if vb == va:
                    continue
                desc, _ = try_translate(case.description, va, vb)
                if desc is None or desc == case.description:
                    continue
                try:
                    matches = index.get(key(case, desc), [])
                except TypeError:
                    continue
                for cid2, v2 in matches:
                    pair = tuple(sorted([(cid, va), (cid2, v2)]))
                    if v2 != vb or cid2 == cid or pair in seen:
                        continue
                    seen.add(pair)
                    (c1, w1), (c2, w2) = pair
                    s1 = entries[c1]["variants"][w1]["save"]
                    s2 = entries[c2]["variants"][w2]["save"]
                    l1 = _load_rec(entries, state_docs, c1, w1)
                    l2 = _load_rec(entries, state_docs, c2, w2)
                    same_save = (s1.get("stream", "").rsplit(".", 2)[-2:-1]
                                 == s2.get("stream", "").rsplit(".", 2)[-2:-1]
                                 if s1["kind"] == s2["kind"] == "ok"
                                 else save_key(s1) == save_key(s2))
                    item: dict[str, Any] = {
                        "pair": [{"case": c1, "variant": w1}, {"case": c2, "variant": w2}],
                        "save": ("identical" + (f" bytes: {s1['stream']} = {s2['stream']}"
                                                if s1["kind"] == "ok" else f" ({s1['kind']})")
                                 if same_save else
                                 f"differs: {describe_save(s1)} vs {describe_save(s2)}"),
                        "load": ("identical" if l1 == l2 else
                                 "differs in " + ", ".join(_differs(l1 or {}, l2 or {}))
                                 + f" ({(l1 or {}).get('kind')} vs {(l2 or {}).get('kind')})"),
                    }
                    item["agree"] = same_save and l1 == l2
                    if not item["agree"]:
                        groups = [({**s1, **(l1 or {})}, [w1]), ({**s2, **(l2 or {})}, [w2])]
                        item["why"], item["doc"] = explain(
                            case, "save" if not same_save else "load", groups)
                    out.append(item)
    return out


def _differs(a: dict, b: dict) -> list[str]:
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def save_key(save: dict) -> str:
    if save["kind"] == "ok":
        return save["stream"]
    return json.dumps({k: save.get(k) for k in ("kind", "message", "path")}, sort_keys=True)


def load_divergences(root: Path) -> dict:
    path = root / GOLDEN / DIVERGENCES
    where = f"{GOLDEN}/{DIVERGENCES}"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"divergences": [], "spellings": []}
    except json.JSONDecodeError as exc:
        raise GoldenError(f"{where}: line {exc.lineno} column {exc.colno}: invalid JSON: "
                          f"{exc.msg}") from None
    require(isinstance(obj, dict) and isinstance(obj.get("divergences"), list), where,
             "$.divergences", "must be a list")
    require(isinstance(obj.get("spellings", []), list), where, "$.spellings",
             "must be a list")
    return {"divergences": obj["divergences"], "spellings": obj.get("spellings", [])}
