"""Description + state -> a flat C memory image and a request for the driver; and back.

The model has no C layout (a struct is a dict keyed by member); this module invents
one, per operation:

* every struct member gets an 8-byte aligned slot; a scalar member's slot is 8 bytes
  holding the value sign- or zero-extended (so the core's counter reads of another
  width - vmstate_n_elems(), vmstate_size() - see the value as the model reads it);
* embedded arrays and buffers get the capacity the state gives them (the longest list
  / byte string over every instance of the struct, at least ``num`` / ``size``);
* a ``VMS_POINTER`` member points to its own block; blocks are followed by 16 guard
  bytes (0xfd) which must survive a load (a write past a block is ``undefined``);
* queue elements carry their QTAILQ/QLIST entry after the members (``start``);
  GTrees are real GLib trees built by the driver;
* declarative ``Pred`` / ``Hook`` become small interpreted tables; Python callables,
  and infos the build lacks, raise :class:`NotExpressible`.

After a load the driver serves reads of its memory; :class:`Walker` rebuilds the
model's state from it.  Memory the core allocated with g_malloc (not zeroed) is filled
by glibc's M_PERTURB with 0xa5 bytes: a scalar, buffer or pointer whose bytes are all
0xa5 there reads back as indeterminate (a heuristic; see docs/qemu-engine.md).

The parts, in the order a request is made: ``common`` (fill bytes, limits, info kinds,
:class:`NotExpressible`), ``planner`` (struct layouts), ``image`` (the memory image),
``tables`` (VMStateDescription, predicate and hook records), ``request`` (the text the
driver reads) and ``walker`` (memory -> state).  This package re-exports their public
names: callers import ``conformance.qemu.layout``.
"""

from conformance.qemu.layout.common import (
    BITMAP_WORDS_CAP,
    GUARD,
    GUARD_LEN,
    LACKING_KINDS,
    MASK64,
    PERTURB,
    PTR_PERTURB,
    READ_LIMIT,
    SCALAR_KINDS,
    NotExpressible,
    Unread,
    lacking_infos,
)
from conformance.qemu.layout.image import Image, ImageWriter
from conformance.qemu.layout.planner import Planner, Slot, StructLayout
from conformance.qemu.layout.request import Request, build_request
from conformance.qemu.layout.tables import Tables
from conformance.qemu.layout.walker import Walker

__all__ = [
    "BITMAP_WORDS_CAP", "GUARD", "GUARD_LEN", "LACKING_KINDS", "MASK64", "PERTURB",
    "PTR_PERTURB", "READ_LIMIT", "SCALAR_KINDS", "NotExpressible", "Unread", "lacking_infos",
    "Image", "ImageWriter", "Planner", "Slot", "StructLayout", "Request", "build_request",
    "Tables", "Walker",
]
