"""vmstate-conformance: an executable model of QEMU's VMState migration format.

The public entry points are re-exported here; see docs/architecture.md for the map.
"""

__version__ = "0.1.0"
