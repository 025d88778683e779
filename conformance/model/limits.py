"""Where the model stops, in one place for both engines.

``MALLOC_LIMIT``: a core allocation larger than this aborts like GLib's g_malloc() does
on a real host ("failed to allocate N bytes") - an ``abort`` outcome, as in QEMU.

``ELEMENT_LIMIT``: a core allocation of an array with more elements than this is not
materialised element by element (a counter read from a corrupted stream can ask for
2^31 elements, which QEMU would happily g_malloc on an overcommitting host).  The
engines end such a load with an outcome of kind ``limit``: the input asks for more than
the harness models, said with the field path and the count.  Device tables never come
near it (QEMU's largest real arrays have thousands of elements).
"""

from __future__ import annotations

MALLOC_LIMIT = 1 << 40
ELEMENT_LIMIT = 1 << 20


class ModelLimit(Exception):
    """The input asks for more than the model materialises (see ELEMENT_LIMIT)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def check_array_allocation(n: int, nbytes: int, path: str) -> None:
    """Raise ModelLimit when vmstate_handle_alloc() would hand the model ``n`` elements."""
    if n > ELEMENT_LIMIT:
        raise ModelLimit(f"the core would allocate {n} elements ({nbytes} bytes); the model "
                         f"materialises at most {ELEMENT_LIMIT}", path)
