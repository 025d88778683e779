"""Descriptions more than one test file builds (import them; do not copy them)."""

from __future__ import annotations

from conformance.cases import parse_description


def bitmap_desc():
    """``len: int32`` and ``bm: POINTER|VBUFFER bitmap`` sized by ``len`` (QEMU's
    VMSTATE_BITMAP shape): the bitmap classes B, B2 and B2n."""
    return parse_description({"name": "dev", "version_id": 1, "minimum_version_id": 0,
                              "Fields": [
                                  {"field": "len", "flags": ["SINGLE"], "info": "int32",
                                   "size": 4},
                                  {"field": "bm", "flags": ["POINTER", "VBUFFER"],
                                   "info": "bitmap", "size_member": "len"}]})
