"""Engines: ``reference`` (the executable spec) and ``optimized`` (compiled plans), and
``qemu`` (QEMU's own C, on request: conformance/qemu/engine.py, docs/qemu-engine.md).
:func:`get` finds each through the one registry, conformance.names.ENGINE_MODULES.

Both expose ``save(desc, state, variant, *, vmdesc=False, check=True) -> Outcome`` and
``load(desc, data, dest, variant, *, version_id=None, check=True) -> Outcome``.
"""

from __future__ import annotations

import importlib

from conformance.names import ENGINE_MODULES, ENGINE_NAMES, EXTRA_ENGINES


def get(name: str):
    """The engine module called ``name``; UsageError (a ValueError) lists the
    valid ones."""
    if not isinstance(name, str) or name not in ENGINE_MODULES:
        from conformance.errors import UsageError

        raise UsageError(f"unknown engine {name!r} (known: "
                         f"{', '.join(ENGINE_NAMES + EXTRA_ENGINES)})")
    return importlib.import_module(ENGINE_MODULES[name])


def available() -> list[str]:
    out = []
    for name in ENGINE_NAMES:
        try:
            get(name)
        except ImportError:
            continue
        out.append(name)
    return out
