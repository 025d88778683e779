"""vmstate-conformance: an executable model of QEMU's VMState migration format.

The small public API (docs/architecture.md has the map of everything behind it)::

    import conformance
    case = conformance.load_case("golden/cases/flags/array.json")
    out = conformance.save(case.description, case.source, "legacy", engine="optimized")
    back = conformance.load(case.description, out.data, case.destination, "legacy")
    mf = conformance.decode_migration(open("pc.mig", "rb").read())

Descriptions are built with :mod:`conformance.model` (``Description``, ``Field``) and
the ``VMSTATE_*`` builders of :mod:`conformance.model.macros`.  Every function imports
what it needs when called, so ``import conformance`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ENGINES", "VARIANTS", "decode_migration", "engine", "load", "load_case", "save"]

#: engine names and variant names (conformance.names, a leaf: cheap)
from conformance.names import ENGINE_NAMES as ENGINES  # noqa: E402
from conformance.names import VARIANT_NAMES as VARIANTS  # noqa: E402


def load_case(path):
    """A case file (JSON, or a Python module with ``CASES``: its first case) as a
    :class:`conformance.cases.Case`; malformed files raise ``CaseError`` (one line
    naming the JSON path)."""
    from conformance.cases import load_case_file, load_python_cases

    if str(path).endswith(".py"):
        return load_python_cases(path)[0]
    return load_case_file(path)


def engine(name: str = "reference"):
    """The engine called ``name``: a module with ``save`` and ``load``."""
    from conformance.engines import get

    return get(name)


def save(desc, state, variant: str = "legacy", *, engine: str = "reference",
         vmdesc: bool = False, check: bool = True):
    """vmstate_save_state(): the :class:`Outcome` of saving ``state`` with ``desc``
    (``check=False`` skips vmstate_check, as a caller that already ran it would)."""
    from conformance.engines import get

    return get(engine).save(desc, state, variant, vmdesc=vmdesc, check=check)


def load(desc, data: bytes, dest, variant: str = "legacy", *, engine: str = "reference",
         version_id: int | None = None, check: bool = True):
    """vmstate_load_state(): the :class:`Outcome` of loading ``data`` into a copy of
    ``dest`` (which is not modified)."""
    from conformance.engines import get

    return get(engine).load(desc, data, dest, variant, version_id=version_id, check=check)


def decode_migration(data: bytes, *, decode_state: bool = True, allow_incomplete: bool = False):
    """A whole migration file (``QEVM`` ...) as a ``MigrationFile`` of records; malformed
    or incomplete input (a stream that ends inside a section or before its EOF record)
    raises ``conformance.migration.migfile.FormatError`` naming the byte offset, a
    limit of docs/limits.md ``LimitExceeded``; both are ``conformance.errors.ConformanceError``.
    ``allow_incomplete`` returns a stream that ends inside a section with its
    ``incomplete`` set (the records up to there, the rest opaque)."""
    from conformance.migration.migfile import FormatError, read_migration

    mf = read_migration(data, decode_state=decode_state)
    if mf.incomplete and not allow_incomplete:
        raise FormatError(mf.incomplete)
    return mf
