"""The mutations of hostile inputs (see strategies/hostile.py, which checks them): real
migration streams (:func:`hostile_migration_files`) and case files
(:func:`hostile_case_files`) mutated as JSON trees and as bytes.  Each mutation makes
its choices through a *pick*: ``_DrawPick`` draws them with Hypothesis (the strategies,
which shrink), ``_RandomPick`` with a seeded ``random.Random`` (the fuzz's batches)."""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
PC_MIN = ROOT / "tests" / "data" / "qemu-7.2" / "pc-min.mig"
CASE_DIRS = (ROOT / "conformance" / "data" / "examples", ROOT / "golden" / "cases")

#: values a hostile JSON tree puts where something else belongs
ODD_VALUES = ([], {}, "", "x", 0, -1, 1, 255, 256, 2**31, 2**32, 2**63, 2**64, 10**30, -2**63,
              1.5, None, True, False, "\ud800", "a" * 300, [1, 2], {"a": 1}, "ARRAY", "uint8",
              "struct")
HUGE = (2**16 + 1, 2**20, 2**31 - 1, 2**32, 2**32 + 1, 2**64, 10**7)
TREE_MUTATIONS = ("replace", "delete", "add", "deep", "huge", "surrogate", "empty", "control")
#: case files only: large buffer fields appended to a Fields list (the
#: buffer-bytes limit is per field; many fields at it must still be one clean line)
CASE_TREE_MUTATIONS = TREE_MUTATIONS + ("buffers",)
MIG_MUTATIONS = ("truncate", "flip-header", "be32", "splice", "vmdesc", "ram", "flip", "idstr")
#: how often each is drawn: "ram" needs the full 350 KB stream (10x slower to decode)
_MIG_WEIGHTS = ("truncate",) * 3 + ("flip-header",) * 2 + ("be32",) * 2 + ("splice",) * 2 \
    + ("vmdesc",) * 3 + ("flip",) * 2 + ("ram",) + ("idstr",) * 2
#: names a hostile input gives a section, a field, a case (printed raw,
#: they split or garble the one-line messages)
HOSTILE_NAMES = ("a\nb", "\x1b[31mred", "nul\x00x", "tab\there", "\r", "bell\x07",
                 "del\x7f", "\u2028ls", "\x85nel", "su\u00e9", "\u200bzw")
CASE_BYTE_MUTATIONS = ("none", "none", "none", "utf16", "latin1", "bad-byte", "bom", "cut")


# --------------------------------------------------------------------------- JSON trees


def _paths(tree) -> list[tuple]:
    """Every node's path (keys / indexes), root first; iterative."""
    out, todo = [], [((), tree)]
    while todo:
        path, node = todo.pop()
        out.append(path)
        if isinstance(node, dict):
            todo.extend((path + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend((path + (i,), v) for i, v in enumerate(node))
    out.sort(key=lambda p: (len(p), str(p)))
    return out


def _odd():
    """One of ODD_VALUES, copied (a drawn [] or {} may be mutated later)."""
    return st.sampled_from(ODD_VALUES).map(lambda v: json.loads(json.dumps(v))
                                           if isinstance(v, (list, dict)) else v)


class _DrawPick:
    """The choices a mutation makes, drawn by Hypothesis (``draw`` of a composite): the
    strategies shrink through them."""

    def __init__(self, draw) -> None:
        self.draw = draw

    def integer(self, low: int, high: int, label: str | None = None) -> int:
        return self.draw(st.integers(low, high), label=label)

    def choice(self, options, label: str | None = None):
        return self.draw(st.sampled_from(options), label=label)

    def boolean(self, label: str | None = None) -> bool:
        return self.draw(st.booleans(), label=label)

    def odd(self, label: str | None = None):
        return self.draw(_odd(), label=label)


class _RandomPick(_DrawPick):
    """The same choices made by a seeded ``random.Random`` (the fuzz's batches: one
    Hypothesis draw of a seed, then many inputs at no further drawing cost)."""

    def __init__(self, rng) -> None:
        self.rng = rng

    def integer(self, low: int, high: int, label: str | None = None) -> int:
        return self.rng.randint(low, high)

    def choice(self, options, label: str | None = None):
        return options[self.rng.randrange(len(options))]

    def boolean(self, label: str | None = None) -> bool:
        return self.rng.random() < 0.5

    def odd(self, label: str | None = None):
        value = self.choice(ODD_VALUES)
        return json.loads(json.dumps(value)) if isinstance(value, (list, dict)) else value


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


@lru_cache(maxsize=None)  # 40 texts at most; the 3000-deep ones cost a millisecond each
def _deep_text(kind: str, depth: int) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "dict":
        return '{"a": ' * depth + "1" + "}" * depth
    if kind == "not":
        return '{"not": ' * depth + "true" + "}" * depth
    inner = '{"name": "x", "field": "x", "info": "uint8", "type": "uint8", "size": 1}'
    for _ in range(depth):
        if kind == "description":
            inner = ('{"name": "s", "field": "s", "flags": ["STRUCT"], '
                     '"Description": {"name": "d", "Fields": [' + inner + ']}}')
        else:  # a vmdesc struct
            inner = ('{"name": "s", "type": "struct", "size": 1, '
                     '"struct": {"vmsd_name": "d", "version": 1, "fields": [' + inner + ']}}')
    return inner


def _big_buffers(pick, tree) -> None:
    """Append 2-16 buffer fields to one Fields list, each within the buffer-bytes limit,
    together just over the state-bytes limit."""
    from conformance.model import limits

    lists = [p for p in _paths(tree) if p and p[-1] == "Fields" and isinstance(_get(tree, p), list)]
    if not lists:
        return
    fields = _get(tree, lists[pick.integer(0, len(lists) - 1, "Fields")])
    count = pick.integer(2, 16, "buffers")
    size = min(limits.BUFFER_LIMIT, limits.STATE_BYTES_LIMIT // count + 1)
    for i in range(count):
        fields.append({"field": f"big{i}", "flags": ["BUFFER"], "info": "buffer", "size": size})


JSON_KEYS = ("num", "size", "array_len", "version_id", "Fields", "fields", "flags", "info",
             "type", "name", "exists", "needed", "Description", "struct", "devices")


@st.composite
def mutated_json(draw, tree, *, keys=JSON_KEYS, kinds=TREE_MUTATIONS):
    """The JSON text of ``tree`` with one (or a few) tree mutations applied."""
    return _mutated_json(_DrawPick(draw), tree, keys, kinds)


def _mutated_json(pick, tree, keys=JSON_KEYS, kinds=TREE_MUTATIONS) -> str:
    """:func:`mutated_json`'s mutations, their choices made by ``pick``.

    A node is picked from the whole tree, or (one time in four) from the root's own
    keys, where one mutation changes what every command reads first (``variants``)."""
    import copy

    tree = copy.deepcopy(tree)
    deep: dict[str, str] = {}
    for n in range(pick.integer(1, 3, "mutations")):
        paths = _paths(tree)
        if isinstance(tree, dict) and tree and pick.integer(0, 3, "top") == 0:
            paths = [(k,) for k in tree]
        path = paths[pick.integer(0, len(paths) - 1, "node")]
        kind = pick.choice(kinds, "tree mutation")
        if kind == "buffers":
            _big_buffers(pick, tree)
            continue
        parent = _get(tree, path[:-1]) if path else None
        if not path:  # the root itself
            if kind in ("replace", "deep"):
                tree = pick.odd()
            continue
        key = path[-1]
        if kind == "replace":
            parent[key] = pick.odd("value")
        elif kind == "delete":
            del parent[key]
        elif kind == "add":
            target = _get(tree, path)
            if isinstance(target, dict):
                target[pick.choice(keys + ("bogus",))] = pick.odd()
            elif isinstance(target, list):
                target.append(pick.odd())
            else:
                parent[key] = pick.odd()
        elif kind == "deep":
            marker = f"@@deep{n}@@"
            deep[marker] = _deep_text(pick.choice(("list", "dict", "not", "description", "vmdesc")),
                                      pick.choice((10, 63, 65, 100, 255, 257, 900, 3000), "depth"))
            parent[key] = marker
        elif kind == "huge":
            parent[key] = pick.choice(HUGE, "huge")
        elif kind == "empty":  # a container or string of the same type, emptied
            parent[key] = type(parent[key])() if isinstance(parent[key], (list, dict, str)) \
                else []
        elif kind == "control":  # a name (or any string) with control characters
            parent[key] = pick.choice(HOSTILE_NAMES, "name")
        else:
            parent[key] = "\ud800" if pick.boolean() else "a\udfffb"
    text = json.dumps(tree)
    for marker, replacement in deep.items():
        text = text.replace(json.dumps(marker), replacement)
    return text


# --------------------------------------------------------------------------- migration files


@lru_cache(maxsize=None)
def migration_seeds() -> tuple[bytes, ...]:
    """(small, full): a stream of a few devices cut from pc-min.mig, and pc-min.mig."""
    from conformance.migration import migfile

    full = PC_MIN.read_bytes()
    mf = migfile.read_migration(full)
    keep_ids = {"ram", "timer", "cpu_common", "apic", "fw_cfg", "i8259", "hpet", "dma"}
    parts = [full[:8]]
    kept_sections: set[tuple] = set()
    for record in mf.records:
        name = type(record).__name__
        start = record.offset
        length = migfile.record_length(record)
        if name == "Configuration":
            parts.append(full[start:start + length])
        elif name == "Section":
            label = migfile.label_of(mf, record)
            if label in keep_ids and not (label == "ram" and record.name == "PART"):
                parts.append(full[start:start + length])
                kept_sections.add(label)
    parts.append(b"\x00")
    root = json.loads(mf.vmdesc.vmdesc.text)
    root["devices"] = [d for d in root["devices"] if d["name"] in kept_sections]
    text = json.dumps(root).encode()
    small = b"".join(parts) + b"\x06" + struct.pack(">I", len(text)) + text
    return small, full


def _records(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, kind) of the top-level records of a seed (cached per seed)."""
    return _records_cached(data)


@lru_cache(maxsize=4)
def _records_cached(data: bytes):
    from conformance.migration import migfile

    mf = migfile.read_migration(data)
    out = [(r.offset, migfile.record_length(r), type(r).__name__) for r in mf.records
           if hasattr(r, "offset")]
    if mf.vmdesc is not None:
        out.append((mf.vmdesc.offset, 5 + mf.vmdesc.length, "Vmdesc"))
    return out


@st.composite
def hostile_migration_files(draw, mutations: tuple[str, ...] = _MIG_WEIGHTS):
    """A mutated real migration stream (bytes); see the module docstring.
    ``mutations``: the kinds drawn from (a focused run, or a test, narrows them)."""
    return _migration_file(_DrawPick(draw), mutations)


def _migration_file(pick, mutations: tuple[str, ...] = _MIG_WEIGHTS) -> bytes:
    """:func:`hostile_migration_files`' mutations, their choices made by ``pick``."""
    small, full = migration_seeds()
    data = full if pick.integer(0, 39, "seed") == 39 else small
    records = _records(data)
    kind = pick.choice(mutations, "mutation")
    offset, length, rkind = records[pick.integer(0, len(records) - 1, "record")]
    if kind == "truncate":
        near = pick.boolean()
        cut = (offset + pick.integer(-3, 12) if near else
               pick.integer(0, len(data)))
        return data[:max(0, min(cut, len(data)))]
    if kind == "flip-header":
        at = min(offset + pick.integer(0, 24), len(data) - 1)
        return data[:at] + bytes([data[at] ^ pick.integer(1, 255)]) + data[at + 1:]
    if kind == "flip":
        at = pick.integer(0, len(data) - 1)
        return data[:at] + bytes([data[at] ^ pick.integer(1, 255)]) + data[at + 1:]
    if kind == "be32":
        at = min(offset + pick.integer(1, 20), len(data) - 4)
        value = pick.choice([0, 1, 2, 5, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                             length, length + 1, max(0, length - 1)])
        return data[:at] + struct.pack(">I", value) + data[at + 4:]
    if kind == "splice":
        how = pick.choice(("delete", "duplicate", "swap", "foreign"))
        rec = data[offset:offset + length]
        if how == "delete":
            return data[:offset] + data[offset + length:]
        if how == "duplicate":
            return data[:offset + length] + rec + data[offset + length:]
        if how == "foreign":
            o2, l2, _ = pick.choice(_records(full if data is small else small))
            other = full if data is small else small
            return data[:offset] + other[o2:o2 + l2] + data[offset:]
        o2, l2, _ = records[pick.integer(0, len(records) - 1)]
        if o2 < offset:
            o2, l2, offset, length = offset, length, o2, l2
        if o2 < offset + length:
            return data
        return (data[:offset] + data[o2:o2 + l2] + data[offset + length:o2]
                + data[offset:offset + length] + data[o2 + l2:])
    if kind == "idstr":
        return _renamed_section(pick, data, records)
    if kind == "vmdesc":
        at = data.rfind(b"\x06", 0, data.find(b'{"page_size"'))
        (n,) = struct.unpack(">I", data[at + 1:at + 5])
        text = _mutated_json(pick, json.loads(data[at + 5:at + 5 + n]))
        raw = text.encode("utf-8", "surrogatepass")
        wrong = pick.choice((0, 0, 0, 1, -1))
        return data[:at + 1] + struct.pack(">I", max(0, len(raw) + wrong)) + raw + data[at + 5 + n:]
    # ram: flip bytes of the RAM records (the PART section of the full stream)
    part = next((r for r in _records(full) if r[1] > 100_000), None)
    at = part[0] + pick.integer(0, min(part[1], 4096) - 1) if pick.boolean() else \
        part[0] + pick.integer(0, part[1] - 1)
    return full[:at] + bytes([full[at] ^ pick.integer(1, 255)]) + full[at + 1:]


def _renamed_section(pick, data: bytes, records) -> bytes:
    """A FULL/START section's idstr replaced by a hostile name (the length byte follows):
    its vmdesc entry no longer matches, so it stays opaque with a note; half the time
    the stream is also cut inside that section's body (an incomplete file)."""
    sections = [r for r in records if r[2] == "Section" and data[r[0]] in (1, 4)]
    if not sections:
        return data
    offset, length, _ = sections[pick.integer(0, len(sections) - 1, "section")]
    n = data[offset + 5]
    name = pick.choice(HOSTILE_NAMES, "idstr").encode("utf-8", "surrogatepass")
    if pick.boolean("keep length"):
        name = (name + data[offset + 6:offset + 6 + n])[:n]  # same length: the rest intact
    name = name[:255] or b"\n"
    out = data[:offset + 5] + bytes([len(name)]) + name + data[offset + 6 + n:]
    if pick.boolean("cut inside"):
        body = offset + 6 + len(name) + 8
        end = offset + length + len(name) - n
        out = out[:pick.integer(body, max(body, end - 1), "cut")]
    return out


# --------------------------------------------------------------------------- case files


@lru_cache(maxsize=None)
def case_seeds() -> tuple:
    """The JSON trees of the bundled example and golden case files (all but the few
    large ones, which take seconds per engine run: tests/test_hostile.py covers size)."""
    seeds = []
    for root in CASE_DIRS:
        if root.is_dir():
            for path in sorted(root.rglob("*.json")):
                if path.stat().st_size > 64 << 10:  # a 64 Ki-element state: seconds per run
                    continue
                try:
                    seeds.append(json.loads(path.read_text()))
                except ValueError:
                    continue
    return tuple(seeds)


@st.composite
def hostile_case_files(draw, kinds: tuple[str, ...] = CASE_TREE_MUTATIONS, seeds=None):
    """The bytes of a mutated case file; see the module docstring.  ``kinds``: the tree
    mutations drawn from; ``seeds``: the case trees mutated (default: every bundled
    example and golden case) - a focused run, or a test, narrows them."""
    return _case_file(_DrawPick(draw), kinds, seeds)


def _case_file(pick, kinds: tuple[str, ...] = CASE_TREE_MUTATIONS, seeds=None) -> bytes:
    """:func:`hostile_case_files`' mutations, their choices made by ``pick``."""
    seeds = seeds or case_seeds()
    tree = seeds[pick.integer(0, len(seeds) - 1, "seed")]
    text = _mutated_json(pick, tree, kinds=kinds)
    how = pick.choice(CASE_BYTE_MUTATIONS, "bytes")
    if how == "utf16":
        return text.encode("utf-16", "surrogatepass")
    if how == "latin1":
        return text.replace('"', '"\xe9', 1).encode("latin-1", "replace")
    raw = text.encode("utf-8", "surrogatepass")
    if how == "bad-byte":
        at = pick.integer(0, len(raw))
        return raw[:at] + pick.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00")) + raw[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    if how == "cut":
        return raw[:pick.integer(0, len(raw))]
    return raw
