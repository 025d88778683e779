"""The VMState model: flags, infos, descriptions, state, outcomes, variants and the
rules QEMU checks (``include/migration/vmstate.h``, ``migration/savevm.c``)."""

__all__ = ["Description", "Field", "Hook", "Pred"]


def __getattr__(name: str):
    # lazily: conformance.model.limits and .infos are imported by the migration-file
    # decoder, which needs no description (nor attrs)
    if name in __all__:
        from conformance.model import description

        return getattr(description, name)
    raise AttributeError(f"module 'conformance.model' has no attribute {name!r}")
