"""vmstate-conformance: an executable model of QEMU's VMState migration format.

The small public API (docs/architecture.md has the map of everything behind it)::

    import conformance
    case = conformance.load_case("golden/cases/flags/array.json")
    out = conformance.save(case.description, case.source, "legacy", engine="optimized")
    back = conformance.load(case.description, out.data, case.destination, "legacy")
    mf = conformance.decode_migration(open("pc.mig", "rb").read())

The case-author surface (README, golden/FORMAT.md "Python case modules"), stable
across refactors: ``from conformance import Case, Description, Field, F, Hook, Pred``
and the ``VMSTATE_*`` builders of :mod:`conformance.model.macros`.  The module paths
of the earlier flat layout (``conformance.flags``, ``conformance.macros``, ...) still
import, as aliases of the modules that replaced them.  Every name here is imported on
first use, so ``import conformance`` stays cheap.
"""

from __future__ import annotations

import sys

__version__ = "0.1.0"

__all__ = ["ENGINES", "VARIANTS", "decode_migration", "engine", "load", "load_case", "save",
           "Case", "Description", "F", "Field", "Hook", "Pred"]

#: the case-author names -> the module defining them (imported on first use, PEP 562)
_CASE_AUTHOR = {
    "Case": "conformance.cases.casefile",
    "Description": "conformance.model.description",
    "Field": "conformance.model.description",
    "Hook": "conformance.model.description",
    "Pred": "conformance.model.description",
    "F": "conformance.model.flags",
}

#: module paths of the flat layout before the subpackages (c80fef0) -> where they live now
OLD_MODULE_PATHS = {
    "conformance.annotate": "conformance.golden.annotate",
    "conformance.check": "conformance.model.check",
    "conformance.flags": "conformance.model.flags",
    "conformance.infos": "conformance.model.infos",
    "conformance.jsonwriter": "conformance.migration.jsonwriter",
    "conformance.limits": "conformance.model.limits",
    "conformance.macros": "conformance.model.macros",
    "conformance.migbench": "conformance.bench.migration",
    "conformance.migcli": "conformance.cli.migration",
    "conformance.migfile": "conformance.migration.migfile",
    "conformance.outcome": "conformance.model.outcome",
    "conformance.qemufile": "conformance.engines.qemufile",
    "conformance.state": "conformance.model.state",
    "conformance.translate": "conformance.model.translate",
    "conformance.variantcli": "conformance.cli.variants",
    "conformance.variants": "conformance.model.variants",
    "conformance.vmdesc": "conformance.migration.vmdesc",
}


def __getattr__(name: str):
    module = _CASE_AUTHOR.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_CASE_AUTHOR))


class _OldPathFinder:
    """``import conformance.flags`` gives the module ``conformance.model.flags`` itself
    (one module object under both names, so classes and caches are shared).  A meta path
    finder rather than stub files: nothing is imported until an old path is asked for,
    and the package tree shows only the real modules."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname not in OLD_MODULE_PATHS:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, cls)

    @staticmethod
    def create_module(spec):
        return None  # a placeholder module; exec_module swaps the real one in

    @staticmethod
    def exec_module(module):
        import importlib

        # the import system returns whatever sys.modules holds for the name afterwards
        sys.modules[module.__name__] = importlib.import_module(OLD_MODULE_PATHS[module.__name__])


if not any(getattr(f, "__qualname__", None) == "_OldPathFinder" for f in sys.meta_path):
    sys.meta_path.append(_OldPathFinder)  # last: only names no other finder knows reach it

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
