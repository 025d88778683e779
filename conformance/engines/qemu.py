"""The ``qemu`` engine: QEMU's own migration/vmstate.c, built from a source tree
(conformance/qemu, docs/qemu-engine.md).  Not one of the campaign's default engines:
it needs a cached build (``vmstate-conformance qemu build``), cannot express every case
(outcome ``rejected``, "qemu engine: not expressible"), and reports what C can (no field
paths, hazards or ledger), so it is compared with the reference engine by
conformance.qemu.compare rather than against case expectations."""

from conformance.qemu.engine import NAME, load, save

__all__ = ["NAME", "load", "save"]
