"""The VMState model: flags, infos, descriptions, state, outcomes, variants and the
rules QEMU checks (``include/migration/vmstate.h``, ``migration/savevm.c``)."""

__all__ = ["PRED_KINDS", "Description", "F", "Field", "Hook", "Pred", "evolve", "nominal_size"]


def __getattr__(name: str):
    # lazily: conformance.model.limits and .infos are imported by the migration-file
    # decoder, which needs no description (nor attrs).  These are the names the flat
    # layout's conformance/model.py defined (and F, which case modules imported from it)
    if name in __all__:
        from conformance.model import description

        return getattr(description, name)
    raise AttributeError(f"module 'conformance.model' has no attribute {name!r}")
