"""Code generation for the optimized engine: one straight-line Python function per
(description, variant) for save and per version for load, ``exec``'d once.

Runs of fixed-width scalars (across inlined nested structs and fixed scalar arrays)
become ONE precompiled ``struct.Struct`` pack / ``unpack_from``; scalar arrays and
buffers are bulk copies; struct arrays and pointer arrays are tight loops.  What may be
inlined, and with which struct format, comes from the codec table (engines/codecs.py,
via FieldPlan.inline / .code); anything else makes the generated code bail, and the
interpreter (engines/reference.py) runs the operation with the same codecs.
"""

from __future__ import annotations

from conformance.engines.optimized.codegen_load import LoadGen
from conformance.engines.optimized.codegen_save import SaveGen


class Gen(SaveGen, LoadGen):
    """Emits one module of straight-line code for one (description, variant): the save
    half (codegen_save.py) and the load half (codegen_load.py) over the shared emitter
    (codegen_common.py)."""


__all__ = ["Gen"]
