"""Engines: ``reference`` (the executable spec) and ``optimized`` (compiled plans), and
``qemu`` (QEMU's own C, on request: see engines/qemu.py).

Both expose ``save(desc, state, variant, *, vmdesc=False, check=True) -> Outcome`` and
``load(desc, data, dest, variant, *, version_id=None, check=True) -> Outcome``.
"""

from __future__ import annotations

import importlib

ENGINE_NAMES = ("reference", "optimized")
#: engines that run only when asked for by name (not in the campaign's default set)
EXTRA_ENGINES = ("qemu",)


def get(name: str):
    """The engine module called ``name``; UsageError (a ValueError) lists the
    valid ones."""
    if not isinstance(name, str) or name not in ENGINE_NAMES + EXTRA_ENGINES:
        from conformance.errors import UsageError

        raise UsageError(f"unknown engine {name!r} (known: "
                         f"{', '.join(ENGINE_NAMES + EXTRA_ENGINES)})")
    return importlib.import_module(f"conformance.engines.{name}")


def available() -> list[str]:
    out = []
    for name in ENGINE_NAMES:
        try:
            get(name)
        except ImportError:
            continue
        out.append(name)
    return out
