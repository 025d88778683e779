"""Writes the scenario case files of pointer-array-variants.md section 7.

Run ``python tests/cases/scenarios/_make.py`` after editing; the JSON files are the
source of truth the tests read.  Every expectation here is written from the spec
(bytes, states, ledgers, messages), never copied from an engine's output.

Variant mapping: A = legacy (and qemu-7.2 where identical), A' = a plain pointer-array
field in auto-alloc (size 0 convention), B = auto-alloc, C = alloc.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
FORMAT = "vmstate-conformance/case/1"
A = ["qemu-7.2", "legacy"]
ALL = ["qemu-7.2", "legacy", "auto-alloc", "alloc"]
T = {"name": "T", "version_id": 1, "minimum_version_id": 1,
     "Fields": [{"field": "i", "flags": ["SINGLE"], "info": "int32", "size": 4}]}


def t(x):
    return {"i": x}


def field(flags, *, name="ar", size=0, num=0, num_member=None, struct=True, info=None,
          **extra):
    out = {"field": name, "flags": flags}
    if struct:
        out["Description"] = "T"
    else:
        out["info"] = info
    if size:
        out["size"] = size
    if num:
        out["num"] = num
    if num_member:
        out["num_member"] = num_member
    out.update(extra)
    return out


def desc(*fields, name="s"):
    return {"name": name, "version_id": 1, "minimum_version_id": 1, "Fields": list(fields)}


def counter(width="uint8", name="n"):
    return {"field": name, "flags": ["SINGLE"], "info": width,
            "size": {"uint8": 1, "uint16": 2, "uint32": 4, "int32": 4}[width]}


VARRAY_OF = {"uint8": "VARRAY_UINT8", "uint16": "VARRAY_UINT16", "uint32": "VARRAY_UINT32",
             "int32": "VARRAY_INT32"}


def fixed_ptr_array(size, num=4, struct=True):
    flags = ["ARRAY", "ARRAY_OF_POINTER"] + (["STRUCT"] if struct else [])
    return desc(field(flags, size=size, num=num, struct=struct, info=None if struct else "int32"))


def auto_varray(variant_flag, size=4, width="uint8", extra_flags=(), **kw):
    """VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_<width>_ALLOC (B: AUTO_ALLOC; C: ALLOC)."""
    flags = ["POINTER", VARRAY_OF[width], "ARRAY_OF_POINTER", "STRUCT", variant_flag,
             *extra_flags]
    return desc(counter(width), field(flags, size=size, num_member="n", **kw))


def pre(path, held=True, cond="*pptr == NULL"):
    return {"path": path, "assert": cond, "held": held}


def base(path="s/ar", held=True):
    return pre(path, held, "first_elem || !n_elems || !size")


def alloc(path, nbytes=4, zeroed=True, overwrote=False, what="element"):
    return {"path": path, "what": what, "bytes": nbytes, "zeroed": zeroed,
            "overwrote": overwrote}


CASES: dict[str, dict] = {}


def case(filename, name, variants, description, source, destination=None, *, notes,
         expect=None, by_variant=None, load_input=None, trailer=None):
    obj = {"format": FORMAT, "name": name, "notes": notes, "variants": variants,
           "vmsds": {"T": T}, "description": description, "source": source}
    if destination is not None:
        obj["destination"] = destination
    if load_input is not None:
        obj["load_input"] = load_input
    if trailer is not None:
        obj["trailer"] = trailer
    if expect:
        obj["expect"] = expect
    if by_variant:
        obj["expect_by_variant"] = by_variant
    CASES[filename] = obj


def ok_load(state, **kw):
    return {"kind": "ok", "state": state, **kw}


# --- 1-3: destination-managed pointer arrays (A / A' / C identical) -----------------------

P0123 = [t(0), t(1), t(2), t(3)]
for suffix, variants, size, who in (("legacy", A, 8, "A (size = pointer stride 8)"),
                                    ("size0", ["auto-alloc", "alloc"], 0,
                                     "A' and C (size 0 convention)")):
    case(f"01-all-present-{suffix}.json", "#1 fixed array[4] of pointers, all present",
         variants, fixed_ptr_array(size), {"ar": P0123},
         {"ar": [t(9), t(9), t(9), t(9)]},
         notes=f"Scenario 1, {who}: no markers; the destination's objects are loaded in place.",
         expect={"save": {"kind": "ok", "stream": "00000000000000010000000200000003"},
                 "load": ok_load({"ar": P0123}, ledger=[], consumed=16)})
    case(f"02-null-slot-{suffix}.json", "#2 fixed array[4] of pointers, NULL at 1",
         variants, fixed_ptr_array(size), {"ar": [t(0), None, t(2), t(3)]},
         {"ar": [t(9), None, t(9), t(9)]},
         notes=f"Scenario 2, {who}: a NULL slot is one 0x30 byte; the destination slot "
               "stays NULL (untouched).",
         expect={"save": {"kind": "ok", "stream": "0000000030000000020000000" "3"},
                 "load": ok_load({"ar": [t(0), None, t(2), t(3)]}, ledger=[], consumed=13)})
    case(f"03-int32-pointers-{suffix}.json", "#3 fixed array[4] of int32 *, NULL at 1",
         variants, fixed_ptr_array(size, struct=False), {"ar": [0, None, 2, 3]},
         {"ar": [3, None, 1, 0]},
         notes=f"Scenario 3, {who}: same bytes as #2 for an info (int32) pointee "
               "(tests/unit/test-vmstate.c arr_ptr_prim_0).",
         expect={"save": {"kind": "ok", "stream": "00000000300000000200000003"},
                 "load": ok_load({"ar": [0, None, 2, 3]}, consumed=13)})

# --- 4-6: the auto format (B: AUTO_ALLOC, C: ARRAY_OF_POINTER|ALLOC) -----------------------

for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    slot_pre = variant == "auto-alloc"  # B asserts each slot NULL; C does not (decision)

    def led(*entries, slot_pre=slot_pre):
        return [e for e in entries if slot_pre or e.get("assert") != "*pptr == NULL"]

    case(f"04-auto-mixed-{suffix}.json", "#4 auto VARRAY n=4: P0 NULL P2 P3",
         [variant], auto_varray(flag, width="uint32"),
         {"n": 4, "ar": [t(0), None, t(2), t(3)]}, {"n": 0, "ar": [None] * 4},
         notes="Scenario 4: marker per slot (0x31 + payload / 0x30); the destination "
               "supplies 4 NULL slots, the core allocates 3 zeroed objects of .size.",
         expect={"save": {"kind": "ok",
                          "stream": "00000004" "3100000000" "30" "3100000002" "3100000003"},
                 "load": ok_load({"n": 4, "ar": [t(0), None, t(2), t(3)]}, hazards=[],
                                 ledger=led(base(), pre("s/ar[0]"), alloc("s/ar[0]"),
                                            pre("s/ar[1]"), pre("s/ar[2]"),
                                            alloc("s/ar[2]"), pre("s/ar[3]"),
                                            alloc("s/ar[3]")))})
    case(f"05-auto-all-null-{suffix}.json", "#5 auto n=3, all NULL", [variant],
         auto_varray(flag), {"n": 3, "ar": [None] * 3}, {"n": 0, "ar": [None] * 3},
         notes="Scenario 5: three NULL markers, nothing allocated.",
         expect={"save": {"kind": "ok", "stream": "03303030"},
                 "load": ok_load({"n": 3, "ar": [None] * 3},
                                 ledger=led(base(), pre("s/ar[0]"), pre("s/ar[1]"),
                                            pre("s/ar[2]")))})
    case(f"06-auto-empty-{suffix}.json", "#6 auto n=0", [variant],
         auto_varray(flag, width="uint16"), {"n": 0, "ar": None}, {"n": 0, "ar": None},
         notes="Scenario 6: no bytes for the array; a NULL array pointer is fine with n=0.",
         expect={"save": {"kind": "ok", "stream": "0000"},
                 "load": ok_load({"n": 0, "ar": None}, ledger=[base()], consumed=2)})

# --- 7-10: legacy-format mismatches --------------------------------------------------------

for suffix, variants, size, who in (("legacy", A, 8, "A"),
                                    ("size0", ["auto-alloc", "alloc"], 0, "A' and C")):
    case(f"07-src-null-dest-allocated-{suffix}.json",
         "#7 source NULL at 1, destination allocated at 1", variants, fixed_ptr_array(size),
         {"ar": [t(0), None, t(2), t(3)]}, {"ar": [t(9), t(9), t(9), t(9)]},
         notes=f"Scenario 7, {who}: the destination decides; slot 1 is non-NULL so the 0x30 "
               "is read as the first byte of T.i: silent misparse of slots 1-2, then a "
               "short read at slot 3 (the stream is 13 bytes + the 00 trailer).",
         expect={"save": {"kind": "ok", "stream": "00000000300000000200000003"},
                 "load": {"kind": "error", "ret": -5, "path": "s/ar[3]/i",
                          "state": {"ar": [t(0), t(0x30000000), t(0x02000000),
                                           t(0x03000000)]}}},
         # 7.2 error_report()s at each level; 10.x sets one Error where the stream
         # error is seen (the nested struct's field loop) and the outer level adds none
         by_variant={v: {"load": {"messages": ["Failed to load T:i", "Failed to load s:ar"]}
                         if v == "qemu-7.2" else
                         {"messages": ["Failed to load T state: stream error: -5"]}}
                     for v in variants})
    a_msg = "vmstate: get_nullptr expected VMS_NULLPTR_MARKER"

    def err(msg):
        return {"kind": "error", "ret": -22, "path": "s/ar[1]", "message": msg}

    by8 = {v: {"load": err(a_msg)} for v in A}
    by8.update({v: {"load": err("Unexpected ptr marker: 0")} for v in ("auto-alloc", "alloc")})
    case(f"08-src-present-dest-null-{suffix}.json",
         "#8 source P(0) at 1, destination NULL at 1", variants, fixed_ptr_array(size),
         {"ar": [t(0), t(0), t(2), t(3)]}, {"ar": [t(9), None, t(9), t(9)]},
         notes=f"Scenario 8, {who}: the NULL destination slot reads a marker and gets 0x00: "
               "A errors in get_nullptr, A'/C in vmstate_ptr_marker_load.",
         expect={"save": {"kind": "ok", "stream": "00000000000000000000000200000003"}},
         by_variant={v: by8[v] for v in variants})
    by9 = {v: {"load": err(a_msg)} for v in A}
    by9.update({v: {"load": {"kind": "abort", "path": "s/ar[1]",
                             "message": "assertion failed: auto_alloc"}}
                for v in ("auto-alloc", "alloc")})
    case(f"09-stray-valid-marker-{suffix}.json",
         "#9 source P(0x31000000) at 1, destination NULL at 1", variants,
         fixed_ptr_array(size), {"ar": [t(0), t(0x31000000), t(2), t(3)]},
         {"ar": [t(9), None, t(9), t(9)]},
         notes=f"Scenario 9, {who}: the first payload byte 0x31 reads as a VALID marker: A "
               "errors; A' asserts auto_alloc (abort); C takes A' (decision "
               "stray_valid_marker).",
         expect={"save": {"kind": "ok", "stream": "00000000310000000000000200000003"}},
         by_variant={v: by9[v] for v in variants})
    case(f"10-payload-starts-0x30-{suffix}.json",
         "#10 source P(0x30000001) at 1, destination NULL at 1", variants,
         fixed_ptr_array(size), {"ar": [t(0), t(0x30000001), t(2), t(3)]},
         {"ar": [t(9), None, t(9), t(9)]},
         notes=f"Scenario 10, {who}: 0x30 is accepted as the NULL marker (the ambiguity), "
               "00 00 01 | 00 are misparsed as slot 2, 00 00 02 00 as slot 3; the load "
               "'succeeds' after 13 of 16 bytes (desync).",
         expect={"save": {"kind": "ok", "stream": "00000000300000010000000200000003"},
                 "load": ok_load({"ar": [t(0), None, t(0x100), t(0x200)]}, consumed=13)})

# --- 11-12: streams written by one format and read by the other ----------------------------

AUTO_STREAM = "3100000000" "3100000001"
for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"11-writer-embedded-auto-{suffix}.json",
         "#11/#12 writer side: embedded auto array[2], P0 P1", [variant],
         desc(field(["ARRAY", "ARRAY_OF_POINTER", "STRUCT", flag], size=4, num=2)),
         {"ar": [t(0), t(1)]}, {"ar": [None, None]},
         notes="The stream #11 feeds to legacy destinations (byte-identical in B and C). "
               "C: ALLOC without POINTER is a documented-only violation (warning).",
         expect={"save": {"kind": "ok", "stream": AUTO_STREAM},
                 "load": ok_load({"ar": [t(0), t(1)]})})
for suffix, variants, size, who in (("legacy", A, 8, "B/C stream -> A"),
                                    ("size0", ["auto-alloc", "alloc"], 0,
                                     "B stream -> A', C stream -> plain C field")):
    case(f"11-auto-stream-into-legacy-{suffix}.json",
         "#11 auto stream into a destination-managed array (all allocated)", variants,
         fixed_ptr_array(size, num=2), {"ar": [t(0), t(1)]}, {"ar": [t(9), t(9)]},
         load_input=AUTO_STREAM + "00",
         notes=f"Scenario 11, {who}: no marker is expected for allocated slots, so the "
               "first int32 reads 31 00 00 00: silent corruption, 8 of 10 bytes consumed.",
         expect={"save": {"kind": "ok", "stream": "0000000000000001"},
                 "load": ok_load({"ar": [t(0x31000000), t(0x00310000)]}, consumed=8)})
for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"12-legacy-stream-into-auto-{suffix}.json",
         "#12 legacy stream (P0 first) into an auto destination (all NULL)", [variant],
         desc(field(["ARRAY", "ARRAY_OF_POINTER", "STRUCT", flag], size=4, num=2)),
         {"ar": [t(0), t(1)]}, {"ar": [None, None]}, load_input="0000000000000001" "00",
         notes="Scenario 12: the first marker byte is 0x00.",
         expect={"load": {"kind": "error", "ret": -22, "path": "s/ar[0]",
                          "message": "Unexpected ptr marker: 0",
                          "messages": ["Unexpected ptr marker: 0"],
                          "ledger": [pre("s/ar[0]")] if variant == "auto-alloc" else []}})

# --- 13-16: allocation contracts ------------------------------------------------------------

case("13-auto-populated-slot-auto-alloc.json", "#13 auto, destination slot pre-populated",
     ["auto-alloc"], auto_varray("AUTO_ALLOC"), {"n": 1, "ar": [t(0)]},
     {"n": 1, "ar": [t(7)]},
     notes="Scenario 13, B: vmstate_load_next asserts every slot NULL before the marker.",
     expect={"save": {"kind": "ok", "stream": "013100000000"},
             "load": {"kind": "abort", "path": "s/ar[0]", "consumed": 1,
                      "message": "assertion failed: !auto_alloc || *pptr == NULL",
                      "ledger": [base(), pre("s/ar[0]", held=False)]}})
case("13-auto-populated-slot-alloc.json", "#13 auto, destination slot pre-populated",
     ["alloc"], auto_varray("ALLOC"), {"n": 1, "ar": [t(0)]}, {"n": 1, "ar": [t(7)]},
     notes="Scenario 13, C (decision populated_auto_slot=overwrite, from 13/17's "
           "'!next || VMS_ALLOC'): a fresh object replaces the populated slot; the old one "
           "leaks.",
     expect={"save": {"kind": "ok", "stream": "013100000000"},
             "load": ok_load({"n": 1, "ar": [t(0)]}, hazards=["leak"],
                             ledger=[base(), alloc("s/ar[0]", overwrote=True)])})

P_ALLOC = ["POINTER", "VARRAY_UINT8", "ARRAY_OF_POINTER", "STRUCT", "ALLOC"]
for suffix, variants, size, who in (("legacy", A, 8, "A"), ("a-prime", ["auto-alloc"], 0, "A'")):
    case(f"14-pointer-alloc-no-auto-{suffix}.json",
         "#14 POINTER|ARRAY_OF_POINTER|ALLOC (no auto flag), n=2", variants,
         desc(counter(), field(P_ALLOC, size=size, num_member="n")),
         {"n": 2, "ar": [t(0), None]}, {"n": 0, "ar": None},
         notes=f"Scenario 14, {who}: legacy bytes; the core g_mallocs the pointer array "
               "(2 x 8 bytes, not zeroed) and then follows slot 0 -- indeterminate memory "
               "(vmstate.h: 'VMS_ALLOC|VMS_ARRAY_OF_POINTER won't cause the individual "
               "entries to be allocated').",
         expect={"save": {"kind": "ok", "stream": "020000000030"},
                 "load": {"kind": "undefined", "path": "s/ar[0]", "consumed": 1,
                          "hazards": ["indeterminate-read"],
                          "ledger": [alloc("s/ar", 16, zeroed=False, what="array")]}})
case("14-pointer-alloc-no-auto-alloc.json",
     "#14 POINTER|ARRAY_OF_POINTER|ALLOC, n=2, under alloc", ["alloc"],
     desc(counter(), field(P_ALLOC, size=4, num_member="n")),
     {"n": 2, "ar": [t(0), None]}, {"n": 0, "ar": None},
     notes="Scenario 14, C: the same flags now mean the auto format (markers); "
           "vmstate_first() never allocates an array of pointers, so the NULL array with "
           "n=2 hits the base assertion (decision null_array_base).",
     expect={"save": {"kind": "ok", "stream": "02" "3100000000" "30"},
             "load": {"kind": "abort", "path": "s/ar", "consumed": 1,
                      "message": "assertion failed: first_elem || !n_elems || !size",
                      "ledger": [base(held=False)]}})
case("15-auto-alloc-and-alloc-auto-alloc.json",
     "#15 POINTER|VARRAY|ARRAY_OF_POINTER|AUTO_ALLOC|ALLOC, n=2", ["auto-alloc"],
     auto_varray("AUTO_ALLOC", extra_flags=("ALLOC",)), {"n": 2, "ar": [t(0), None]},
     {"n": 0, "ar": None},
     notes="Scenario 15, B: bytes as #4; the core allocates the pointer array with a "
           "non-zeroing g_malloc (decision array_alloc_zeroed=false), then "
           "assert(*pptr == NULL) reads indeterminate memory. Not expressible in C "
           "(see tests/test_translate.py).",
     expect={"save": {"kind": "ok", "stream": "02" "3100000000" "30"},
             "load": {"kind": "undefined", "path": "s/ar[0]", "consumed": 1,
                      "hazards": ["indeterminate-read"],
                      "ledger": [alloc("s/ar", 16, zeroed=False, what="array"), base()]}})
for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"16-auto-null-array-{suffix}.json",
         "#16 auto, destination pointer-array pointer NULL, n=1", [variant],
         auto_varray(flag), {"n": 1, "ar": [t(0)]}, {"n": 0, "ar": None},
         notes="Scenario 16: without VMS_ALLOC (B) / never (C) the core does not allocate "
               "the array; a NULL base with n>0 asserts (C: decision null_array_base).",
         expect={"save": {"kind": "ok", "stream": "013100000000"},
                 "load": {"kind": "abort", "path": "s/ar", "consumed": 1,
                          "message": "assertion failed: first_elem || !n_elems || !size",
                          "ledger": [base(held=False)]}})

# --- 17-19: vmstate_check ---------------------------------------------------------------------

case("17-auto-without-array-auto-alloc.json", "#17 check: AUTO_ALLOC without ARRAY/VARRAY",
     ["auto-alloc"], desc(field(["ARRAY_OF_POINTER", "STRUCT", "AUTO_ALLOC"], name="p",
                                size=4)),
     {"p": t(5)}, {"p": None},
     notes="Scenario 17, B: ARRAY_OF_POINTER requires ARRAY or a VARRAY flag (seed 001).",
     expect={"save": {"kind": "rejected", "path": "s/p",
                      "message": "vmstate_check: pointer-array-needs-array: "
                                 "VMS_ARRAY_OF_POINTER needs VMS_ARRAY or a VMS_VARRAY_* flag"}})
case("17-auto-without-array-alloc.json", "#17 check: ARRAY_OF_POINTER|ALLOC without ARRAY",
     ["alloc"], desc(field(["ARRAY_OF_POINTER", "STRUCT", "ALLOC"], name="p", size=4)),
     {"p": t(5)}, {"p": None},
     notes="Scenario 17, C: the ARRAY requirement moved into the non-ALLOC branch (13/17): "
           "passes; behaves as a single pointer with a marker.",
     expect={"save": {"kind": "ok", "stream": "3100000005"},
             "load": ok_load({"p": t(5)}, ledger=[alloc("s/p")], consumed=5)})
case("18-pointer-array-size8.json", "#18 check: ARRAY_OF_POINTER with .size 8", ALL,
     fixed_ptr_array(8, num=2), {"ar": [t(1), None]}, {"ar": [t(0), None]},
     notes="Scenario 18: legacy macros set .size = sizeof(ptr) (required for NULL "
           "detection); Peter's 'Do not set size' makes vmstate_check reject it (B and C).",
     by_variant={**{v: {"save": {"kind": "ok", "stream": "0000000130"},
                        "load": ok_load({"ar": [t(1), None]})} for v in A},
                 **{v: {"save": {"kind": "rejected", "path": "s/ar",
                                 "message": "vmstate_check: pointer-array-no-size: a "
                                            "non-allocating pointer array must not set .size "
                                            "or a size member (size=8)"}}
                    for v in ("auto-alloc", "alloc")}})
for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"19-auto-size0-{suffix}.json", "#19 check: auto with .size 0, no size member",
         [variant], auto_varray(flag, size=0), {"n": 0, "ar": None},
         notes="Scenario 19: the destination needs the pointee size to allocate.",
         expect={"save": {"kind": "rejected", "path": "s/ar",
                          "message": "vmstate_check: auto-alloc-needs-size: an "
                                     "auto-allocating pointer array needs .size or a size "
                                     "member (the pointee size)"}})

# --- 20-21: element size hazards ---------------------------------------------------------------

BUF16 = "000102030405060708090a0b0c0d0e0f"
for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"20-auto-buffer-{suffix}.json", "#20 auto with info buffer, .size 16", [variant],
         desc(counter(), field(["POINTER", "VARRAY_UINT8", "ARRAY_OF_POINTER", flag],
                               size=16, num_member="n", struct=False, info="buffer")),
         {"n": 1, "ar": [BUF16]}, {"n": 0, "ar": [None]},
         notes="Scenario 20: save passes .size (16) to put_buffer, load passes "
               "vmstate_size() = sizeof(void *) (8) to get_buffer: 8 payload bytes stay "
               "in the stream (desync). C: decision auto_load_element_size=pointer.",
         expect={"save": {"kind": "ok", "stream": "0131" + BUF16},
                 "load": ok_load({"n": 1, "ar": [BUF16[:16] + "00" * 8]}, consumed=10,
                                 hazards=["desync"])})
    case(f"21-auto-size-member-only-{suffix}.json",
         "#21 auto with .size 0 and only a size member", [variant],
         auto_varray(flag, size=0, size_member="sz"), {"n": 1, "sz": 4, "ar": [t(7)]},
         {"n": 0, "sz": 4, "ar": [None]},
         notes="Scenario 21: passes vmstate_check (size member set), but the element is "
               "allocated with g_malloc0(.size = 0) = NULL, read as 'skip': the 4-byte "
               "payload is not consumed (desync).",
         expect={"save": {"kind": "ok", "stream": "013100000007"},
                 "load": ok_load({"n": 1, "sz": 4, "ar": [None]}, consumed=2,
                                 hazards=["desync"])})


# --- 22-26: vmdesc ----------------------------------------------------------------------------
# Expected JSON is built from the spec's rules (section 4.5, qemu-vmstate-spec 9.4) and
# serialised like QEMU's JSONWriter (", " and ": " separators).

T_BODY = {"vmsd_name": "T", "version": 1,
          "fields": [{"name": "i", "type": "int32", "size": 4}]}


def body(*entries, name="s"):
    return json.dumps({"vmsd_name": name, "version": 1, "fields": list(entries)})


def entry(type_, size, name="ar", array_len=None, struct=None):
    out = {"name": name}
    if array_len is not None:
        out["array_len"] = array_len
    out["type"] = type_
    if struct is not None:
        out["struct"] = struct
    out["size"] = size
    return out


def struct_entry(array_len=None, name="ar"):
    return entry("struct", 4, name, array_len, T_BODY)


for suffix, variants, size in (("legacy", A, 8), ("size0", ["auto-alloc", "alloc"], 0)):
    by = {}
    for v in variants:
        if v == "qemu-7.2":  # era A: one entry, the real field type, size of element 0
            vm22 = body(entry("struct", 1, array_len=3, struct={}))
            vm23 = body(struct_entry(array_len=4))
        else:  # era B ("nullptr") / era C ("ptr-marker"): runs of NULL / non-NULL
            marker = "nullptr" if v == "legacy" else "ptr-marker"
            vm22 = body(entry(marker, 1, array_len=2), struct_entry())
            vm23 = body(struct_entry(array_len=4), entry(marker, 1),
                        struct_entry(array_len=2))
        by.setdefault("22", {})[v] = {"save": {"kind": "ok", "stream": "303000000005",
                                               "vmdesc": vm22}}
        by.setdefault("23", {})[v] = {"save": {"kind": "ok",
                                               "stream": "00000001300000000200000003",
                                               "vmdesc": vm23}}
    case(f"22-vmdesc-null-run-{suffix}.json", "#22 vmdesc: compressible NULL NULL P", variants,
         fixed_ptr_array(size, num=3), {"ar": [None, None, t(5)]},
         {"ar": [None, None, t(0)]},
         notes="Scenario 22: a run of two NULL slots is one marker entry with array_len 2, "
               "then the struct entry without array_len. qemu-7.2 (era A) describes the "
               "NULL slot with the real field (type struct, empty struct, size 1) and "
               "array_len 3. C: assumed era C (decision vmdesc_era).",
         by_variant=by["22"])
    case(f"23-vmdesc-over-count-{suffix}.json", "#23 vmdesc: compressible P NULL P P",
         variants, fixed_ptr_array(size), {"ar": [t(1), None, t(2), t(3)]},
         {"ar": [t(0), None, t(0), t(0)]},
         notes="Scenario 23: the run search only starts when NULL-ness changes and "
               "'previous' starts non-NULL, so the first entry claims array_len 4 "
               "(over-count), then a marker, then array_len 2.",
         by_variant=by["23"])

for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"24-vmdesc-auto-{suffix}.json", "#24 vmdesc: auto P NULL", [variant],
         auto_varray(flag), {"n": 2, "ar": [t(1), None]}, {"n": 0, "ar": [None, None]},
         notes="Scenario 24: auto fields are not compressible and pass max 1: per slot a "
               "ptr-marker entry (size 1) and, if present, the struct entry; no index, no "
               "array_len.",
         expect={"save": {"kind": "ok", "stream": "02" "3100000001" "30",
                          "vmdesc": body(entry("uint8", 1, name="n"), entry("ptr-marker", 1),
                                         struct_entry(), entry("ptr-marker", 1))},
                 "load": ok_load({"n": 2, "ar": [t(1), None]})})

INT_PTRS = ["ARRAY", "ARRAY_OF_POINTER"]
vm25 = {"qemu-7.2": body(entry("int32", 1, array_len=2)),
        "legacy": body(entry("nullptr", 1), entry("int32", 4)),
        "auto-alloc": body(entry("ptr-marker", 1), entry("int32", 4)),
        "alloc": body(entry("ptr-marker", 1), entry("int32", 4))}
for suffix, variants, size in (("legacy", A, 8), ("size0", ["auto-alloc", "alloc"], 0)):
    case(f"25-vmdesc-marker-type-{suffix}.json", "#25 vmdesc: the marker entry's type",
         variants, desc(field(INT_PTRS, size=size, num=2, struct=False, info="int32")),
         {"ar": [None, 5]}, {"ar": [None, 0]},
         notes="Scenario 25: 'nullptr' (legacy, after the Jan 2025 JSON-writer fix) / "
               "'ptr-marker' (A', C). qemu-7.2 describes the NULL slot with the real field "
               "type, so the old info name 'uint64' never reaches the JSON (decision "
               "vmdesc_era; Variant.marker_info_name keeps the name).",
         by_variant={v: {"save": {"kind": "ok", "stream": "3000000005", "vmdesc": vm25[v]},
                         "load": ok_load({"ar": [None, 5]})} for v in variants})
for suffix, variant, flag in (("auto-alloc", "auto-alloc", "AUTO_ALLOC"),
                              ("alloc", "alloc", "ALLOC")):
    case(f"25-vmdesc-marker-type-auto-{suffix}.json", "#25 vmdesc: marker type, auto field",
         [variant], desc(field(INT_PTRS + [flag], size=4, num=2, struct=False, info="int32")),
         {"ar": [None, 5]}, {"ar": [None, None]},
         notes="Scenario 25, B/C: every slot has a ptr-marker entry.",
         expect={"save": {"kind": "ok", "stream": "30" "3100000005",
                          "vmdesc": body(entry("ptr-marker", 1), entry("ptr-marker", 1),
                                         entry("int32", 4))},
                 "load": ok_load({"ar": [None, 5]})})

DUP_SECOND = {"field": "ar", "member": "ar_b", "flags": ["SINGLE"], "info": "uint8",
              "size": 1}
for suffix, variants, size, flags in (
        ("legacy", A, 8, INT_PTRS), ("size0", ["auto-alloc", "alloc"], 0, INT_PTRS),
        ("auto-alloc", ["auto-alloc"], 4, INT_PTRS + ["AUTO_ALLOC"]),
        ("alloc", ["alloc"], 4, INT_PTRS + ["ALLOC"])):
    by = {}
    for v in variants:
        if v == "qemu-7.2":
            vm = body(entry("int32", 1, "ar[0]", array_len=2), entry("uint8", 1, "ar[1]"))
        elif "AUTO_ALLOC" in flags or "ALLOC" in flags:
            vm = body(entry("ptr-marker", 1, "ar[-1]"), entry("ptr-marker", 1, "ar[-1]"),
                      entry("int32", 4, "ar[0]"), entry("uint8", 1, "ar[1]"))
        else:
            marker = "nullptr" if v == "legacy" else "ptr-marker"
            vm = body(entry(marker, 1, "ar[-1]"), entry("int32", 4, "ar[0]"),
                      entry("uint8", 1, "ar[1]"))
        auto = "ALLOC" in flags or "AUTO_ALLOC" in flags
        by[v] = {"save": {"kind": "ok", "stream": ("30310000000507" if auto
                                                   else "300000000507"), "vmdesc": vm}}
    case(f"26-vmdesc-duplicate-names-{suffix}.json",
         "#26 vmdesc: duplicate field names and a NULL slot", variants,
         desc(field(flags, size=size, num=2, struct=False, info="int32"), DUP_SECOND),
         {"ar": [None, 5], "ar_b": 7},
         notes="Scenario 26: the temporary marker field is not in the VMSD's field list, "
               "so its uniqueness index is -1: 'ar[-1]'. qemu-7.2 (era A) describes the "
               "NULL slot with the real field: 'ar[0]'.",
         by_variant=by)

# --- 27-31: QTAILQ (Q1, the merged VMSTATE_QTAILQ_V; identical in every variant) -----------

QDESC = {"name": "test/queue", "version_id": 1, "minimum_version_id": 1, "Fields": [
    {"field": "i16", "flags": ["SINGLE"], "info": "int16", "size": 2},
    {"field": "q", "flags": [], "info": "qtailq", "size": 2, "version_id": 1,
     "Description": {"name": "test/queue-element", "version_id": 1,
                     "minimum_version_id": 1, "Fields": [
                         {"field": "b", "flags": ["SINGLE"], "info": "bool", "size": 1},
                         {"field": "u8", "flags": ["SINGLE"], "info": "uint8", "size": 1}]}},
    {"field": "i32", "flags": ["SINGLE"], "info": "int32", "size": 4}]}
QSRC = {"i16": -512, "q": [{"b": True, "u8": 130}, {"b": False, "u8": 65}], "i32": 70000}
QWIRE = "fe00" "010182" "010041" "00" "00011170"
QEMPTY = {"i16": 0, "q": [], "i32": 0}


def qalloc(k):
    return alloc(f"test/queue/q[{k}]", 2, zeroed=False)


case("27-qtailq-two-elements.json", "#27 QTAILQ, two elements", ALL, QDESC, QSRC, QEMPTY,
     notes="Scenario 27 (tests/unit/test-vmstate.c test/queue): 01 + element per entry, "
           "00 after the last; elements g_malloc'd (not zeroed) and appended. Q0 "
           "(VMS_CSTM, never merged) wrote the same bytes.",
     expect={"save": {"kind": "ok", "stream": QWIRE},
             "load": ok_load(QSRC, ledger=[qalloc(0), qalloc(1)])})
case("28-qtailq-empty.json", "#28 QTAILQ, empty", ALL, QDESC,
     {"i16": 1, "q": [], "i32": 2}, QEMPTY,
     notes="Scenario 28: an empty queue is the single byte 00.",
     expect={"save": {"kind": "ok", "stream": "0001" "00" "00000002"},
             "load": ok_load({"i16": 1, "q": [], "i32": 2}, ledger=[])})
case("29-qtailq-link-byte-2.json", "#29 QTAILQ, link byte 0x02 on load", ALL, QDESC, QSRC,
     QEMPTY, load_input="fe00" "020182" "010041" "00" "00011170" "00",
     notes="Scenario 29: any non-zero link byte means 'another element' (Q1; Q0's bool "
           "conversion agrees).",
     expect={"save": {"kind": "ok", "stream": QWIRE}, "load": ok_load(QSRC)})
QV = {"name": "q/dev", "version_id": 1, "minimum_version_id": 1, "Fields": [
    {"field": "q", "flags": [], "info": "qtailq", "size": 2, "version_id": 1,
     "Description": {"name": "q/elem", "version_id": 2, "minimum_version_id": 1, "Fields": [
         {"field": "a", "flags": ["SINGLE"], "info": "uint8", "size": 1},
         {"field": "b", "flags": ["SINGLE"], "info": "uint8", "size": 1, "version_id": 2}]}}]}
case("30-qtailq-version-mismatch.json",
     "#30 QTAILQ field version 1, element VMSD version 2 with a v2-only field", ALL, QV,
     {"q": [{"a": 1, "b": 2}]}, {"q": []}, trailer="0000",
     notes="Scenario 30 (Q1): save uses the element VMSD's own version (2: a and b), load "
           "the field's version_id (1: a only), so b's byte 02 is read as a link byte "
           "('more'), the end marker 00 as the next element's a, and the trailer's 00 "
           "ends the queue: desync, b never written (g_malloc'd, indeterminate). Q0 loaded "
           "with the element's own version and stayed consistent (documented only).",
     expect={"save": {"kind": "ok", "stream": "01010200"},
             "load": ok_load({"q": [{"a": 1, "b": "<indeterminate>"},
                                    {"a": 0, "b": "<indeterminate>"}]}, consumed=5,
                             hazards=["indeterminate-left", "indeterminate-left"])})
case("31-qtailq-non-empty-destination.json", "#31 QTAILQ load into a non-empty queue", ALL,
     QDESC, QSRC, {"i16": 0, "q": [{"b": False, "u8": 9}], "i32": 0},
     notes="Scenario 31: loaded elements are appended after what the destination holds.",
     expect={"save": {"kind": "ok", "stream": QWIRE},
             "load": ok_load({"i16": -512, "q": [{"b": False, "u8": 9}] + QSRC["q"],
                              "i32": 70000})})


def write() -> list[str]:
    for old in HERE.glob("[0-9][0-9]-*.json"):
        old.unlink()
    for filename, obj in sorted(CASES.items()):
        (HERE / filename).write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    lines = ["# Pointer-array scenarios (pointer-array-variants.md section 7)", "",
             "Generated by `_make.py` (edit it, then run it); run by tests/test_scenarios.py.",
             "A = legacy / qemu-7.2, A' = plain field in auto-alloc, B = auto-alloc, "
             "C = alloc. docs/variants.md maps each differing behaviour to these files.", "",
             "| file | scenario | variants |", "|---|---|---|"]
    for filename, obj in sorted(CASES.items()):
        lines.append(f"| `{filename}` | {obj['name']} | {', '.join(obj['variants'])} |")
    (HERE / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sorted(CASES)


if __name__ == "__main__":
    for name in write():
        print(name)
