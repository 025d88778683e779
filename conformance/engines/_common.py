"""What both engines share: the outcome exceptions and the small value helpers.

The engines keep their own control flow (the optimized engine never falls back to the
reference), but these pieces are one fact each and live here once.
"""

from __future__ import annotations

from conformance.model.state import is_indeterminate


class Abort(Exception):
    """QEMU hits an assertion (or g_malloc aborts)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

class Undefined(Exception):
    """QEMU's behaviour is undefined here; ``hazard`` says why."""

    def __init__(self, kind: str, message: str, path: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.path = path

def _s32(value: int) -> int:
    """Reinterpret the low 32 bits as a C int."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value

def _gtree_key(key):
    if isinstance(key, dict):
        return tuple(_gtree_key(v) for v in key.values())
    return key

def _gtree_insert(tree: list, key, value) -> None:
    """g_tree_insert(): replace an equal key, else insert in key order."""
    k = _gtree_key(key)
    for idx, (other, _) in enumerate(tree):
        if _gtree_key(other) == k:
            tree[idx] = [key, value]
            return
    tree.append([key, value])
    tree.sort(key=lambda pair: _gtree_key(pair[0]))

def _contains_indeterminate(value) -> bool:
    if is_indeterminate(value):
        return True
    if isinstance(value, dict):
        return any(_contains_indeterminate(v) for k, v in value.items() if k != "parent")
    if isinstance(value, list):
        return any(_contains_indeterminate(v) for v in value)
    return False
