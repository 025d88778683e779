"""The VMState model: flags, infos, descriptions, state, outcomes, variants and the
rules QEMU checks (``include/migration/vmstate.h``, ``migration/savevm.c``)."""

from conformance.model.description import Description, Field, Hook, Pred

__all__ = ["Description", "Field", "Hook", "Pred"]
