"""A heap with an allocation ledger, and QAPI values laid out on it as QEMU lays them.

Every g_malloc/g_new/g_strdup the modelled C performs is one ``Block``; every
g_free/qapi_free_* frees blocks; every read of heap memory goes through ``Ledger.read``
so a read of a freed block is caught (the use-after-free of the review thread).

Layout (what qapi-types-*.h generate and the QAPI visitors allocate):

* ``str``                     one block (the bytes, g_strdup)
* ``StrOrNull`` (alternate)   a block for the alternate {type, u} plus, for QTYPE_QSTRING,
                              the string block; QTYPE_QNULL points at the static qnull_
                              singleton (no allocation)
* ``X List``                  one block per list cell {value, next}; an empty list is NULL
* struct (``BitmapMigration*``)  one block for the struct plus its pointer members

``build`` is what an input visitor or QAPI_CLONE does (allocate a fresh deep copy),
``free_tree`` what the dealloc visitor / qapi_free_* does, ``value_of`` a deep read.
"""

from __future__ import annotations

from typing import Any

import attrs


class HeapError(Exception):
    """A memory-safety violation the ledger saw."""

    kind = "heap"

    def __init__(self, block: Block, site: str, detail: str = ""):
        self.block = block
        self.site = site
        super().__init__(f"{self.kind}: {block.describe()} at {site}"
                         + (f" ({detail})" if detail else ""))


class UseAfterFree(HeapError):
    kind = "use-after-free"


class DoubleFree(HeapError):
    kind = "double-free"


@attrs.define(eq=False)
class Block:
    id: int
    kind: str
    path: str
    value: Any
    alloc_site: str
    freed: bool = False
    free_site: str | None = None

    def describe(self) -> str:
        return f"#{self.id} {self.kind} ({self.path})"


@attrs.define
class Event:
    op: str  # alloc | free | read
    block: int
    kind: str
    path: str
    site: str


@attrs.define
class Ledger:
    """Every allocation and free, by id and member path."""

    blocks: dict = attrs.field(factory=dict)
    events: list = attrs.field(factory=list)
    record_reads: bool = False
    _next: int = 1

    def alloc(self, kind: str, path: str, value: Any, site: str) -> Block:
        b = Block(self._next, kind, path, value, site)
        self._next += 1
        self.blocks[b.id] = b
        self.events.append(Event("alloc", b.id, kind, path, site))
        return b

    def free(self, block: Block, site: str) -> None:
        if block.freed:
            raise DoubleFree(block, site, f"first freed at {block.free_site}")
        block.freed = True
        block.free_site = site
        self.events.append(Event("free", block.id, block.kind, block.path, site))

    def read(self, block: Block, site: str) -> Any:
        if block.freed:
            raise UseAfterFree(block, site, f"freed at {block.free_site}")
        if self.record_reads:
            self.events.append(Event("read", block.id, block.kind, block.path, site))
        return block.value

    def live(self) -> set[int]:
        return {i for i, b in self.blocks.items() if not b.freed}

    def frees_of(self, block_id: int) -> int:
        return sum(1 for e in self.events if e.op == "free" and e.block == block_id)


# --------------------------------------------------------------------------- QAPI values

_SCALARS = (bool, int, str, type(None))


def build(ledger: Ledger, qtype: str, value: Any, path: str, site: str):
    """Allocate ``value`` (a logical value) as QEMU does; return the C member value
    (a Block, None for NULL, or the scalar itself)."""
    if qtype == "str":
        return ledger.alloc("char[]", path, value, site)
    if qtype == "StrOrNull":
        if value is None:  # QTYPE_QNULL: u.n = qnull() -- the static singleton
            return ledger.alloc("StrOrNull", path, {"type": "QNULL"}, site)
        s = ledger.alloc("char[]", path + ".u.s", value, site)
        return ledger.alloc("StrOrNull", path, {"type": "QSTRING", "s": s}, site)
    if qtype == "strList":
        return _build_list(ledger, "strList", "str", value, path, site)
    if qtype == "BitmapMigrationNodeAliasList":
        return _build_list(ledger, "BitmapMigrationNodeAliasList", "BitmapMigrationNodeAlias",
                           value, path, site)
    if qtype == "BitmapMigrationNodeAlias":
        fields = {
            "node-name": build(ledger, "str", value["node-name"], path + ".node-name", site),
            "alias": build(ledger, "str", value["alias"], path + ".alias", site),
            "bitmaps": _build_list(ledger, "BitmapMigrationBitmapAliasList",
                                   "BitmapMigrationBitmapAlias", value["bitmaps"],
                                   path + ".bitmaps", site),
        }
        return ledger.alloc(qtype, path, fields, site)
    if qtype == "BitmapMigrationBitmapAlias":
        fields = {"name": build(ledger, "str", value["name"], path + ".name", site),
                  "alias": build(ledger, "str", value["alias"], path + ".alias", site),
                  "transform": None}
        if "transform" in value:
            t = value["transform"]
            fields["transform"] = ledger.alloc(
                "BitmapMigrationBitmapAliasTransform", path + ".transform",
                {"has_persistent": "persistent" in t, "persistent": t.get("persistent", False)},
                site)
        return ledger.alloc(qtype, path, fields, site)
    assert isinstance(value, _SCALARS), (qtype, value)
    return value


def _build_list(ledger, kind, elem, values, path, site):
    head = None
    # allocate front to back like QAPI_LIST_APPEND, link as we go
    cells = []
    for i, v in enumerate(values):
        child = build(ledger, elem, v, f"{path}[{i}]", site)
        cells.append(ledger.alloc(kind, f"{path}[{i}]@cell", {"value": child, "next": None},
                                  site))
    for a, b in zip(cells, cells[1:], strict=False):
        a.value["next"] = b
    if cells:
        head = cells[0]
    return head


def value_of(ledger: Ledger, qtype: str, ref: Any, site: str):
    """Deep-read the C member value ``ref`` back into a logical value."""
    if qtype == "str":
        return ledger.read(ref, site)
    if qtype == "StrOrNull":
        if ref is None:  # a NULL StrOrNull pointer: what C would dereference
            raise NullDeref(site)
        v = ledger.read(ref, site)
        if v["type"] == "QNULL":
            return None
        return ledger.read(v["s"], site)
    if qtype in ("strList", "BitmapMigrationNodeAliasList", "BitmapMigrationBitmapAliasList"):
        elem = {"strList": "str", "BitmapMigrationNodeAliasList": "BitmapMigrationNodeAlias",
                "BitmapMigrationBitmapAliasList": "BitmapMigrationBitmapAlias"}[qtype]
        out = []
        cell = ref
        while cell is not None:
            c = ledger.read(cell, site)
            out.append(value_of(ledger, elem, c["value"], site))
            cell = c["next"]
        return out
    if qtype == "BitmapMigrationNodeAlias":
        f = ledger.read(ref, site)
        return {"node-name": value_of(ledger, "str", f["node-name"], site),
                "alias": value_of(ledger, "str", f["alias"], site),
                "bitmaps": value_of(ledger, "BitmapMigrationBitmapAliasList", f["bitmaps"], site)}
    if qtype == "BitmapMigrationBitmapAlias":
        f = ledger.read(ref, site)
        out = {"name": value_of(ledger, "str", f["name"], site),
               "alias": value_of(ledger, "str", f["alias"], site)}
        if f["transform"] is not None:
            t = ledger.read(f["transform"], site)
            out["transform"] = {"persistent": t["persistent"]} if t["has_persistent"] else {}
        return out
    return ref


def free_tree(ledger: Ledger, qtype: str, ref: Any, site: str) -> None:
    """qapi_free_<type> / the dealloc visitor: free every block reachable from ``ref``."""
    for b in blocks_of(ledger, qtype, ref, site):
        ledger.free(b, site)


def blocks_of(ledger: Ledger, qtype: str, ref: Any, site: str) -> list[Block]:
    """Every block reachable from ``ref``, children before their container (the order the
    dealloc visitor frees them: members at end of visit, the struct at end_struct)."""
    out: list[Block] = []
    _collect(ledger, qtype, ref, site, out)
    return out


def _collect(ledger, qtype, ref, site, out):
    if ref is None or not isinstance(ref, Block):
        return
    if qtype == "str":
        out.append(ref)
    elif qtype == "StrOrNull":
        v = ledger.read(ref, site)
        if v["type"] == "QSTRING":
            out.append(v["s"])
        out.append(ref)
    elif qtype.endswith("List"):
        elem = {"strList": "str", "BitmapMigrationNodeAliasList": "BitmapMigrationNodeAlias",
                "BitmapMigrationBitmapAliasList": "BitmapMigrationBitmapAlias"}[qtype]
        cell = ref
        while cell is not None:
            c = ledger.read(cell, site)
            _collect(ledger, elem, c["value"], site, out)
            out.append(cell)
            cell = c["next"]
    elif qtype == "BitmapMigrationNodeAlias":
        f = ledger.read(ref, site)
        _collect(ledger, "str", f["node-name"], site, out)
        _collect(ledger, "str", f["alias"], site, out)
        _collect(ledger, "BitmapMigrationBitmapAliasList", f["bitmaps"], site, out)
        out.append(ref)
    elif qtype == "BitmapMigrationBitmapAlias":
        f = ledger.read(ref, site)
        _collect(ledger, "str", f["name"], site, out)
        _collect(ledger, "str", f["alias"], site, out)
        if f["transform"] is not None:
            out.append(f["transform"])
        out.append(ref)


class NullDeref(Exception):
    """The modelled C dereferenced a NULL pointer (SIGSEGV)."""

    def __init__(self, site: str):
        self.site = site
        super().__init__(f"NULL pointer dereference at {site}")
