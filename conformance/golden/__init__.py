"""The golden corpus: pinned streams, annotated views, verify, regen and divergences.

The modules, by concern (``golden/FORMAT.md`` documents the files themselves):

* :mod:`~conformance.golden.corpus`        layout, case discovery, manifest, coverage
* :mod:`~conformance.golden.recorder`      which field wrote which bytes (span recorder)
* :mod:`~conformance.golden.render`        observing a case, the hex view, a case's files
* :mod:`~conformance.golden.diff`          field-level and value-level diffs
* :mod:`~conformance.golden.divergences`   explain rules, divergences.json
* :mod:`~conformance.golden.verification`  ``golden verify`` (never writes)
* :mod:`~conformance.golden.regeneration`  ``golden regen`` (reference engine only)
* :mod:`~conformance.cli.golden`          the ``golden`` CLI subcommands (in cli/)
* :mod:`~conformance.golden.annotate`      element spans (another annotator, cross-checked)

This package re-exports what callers outside it use.
"""

import importlib

#: what the package re-exports, by module; imported on first use (PEP 562), so that
#: ``vmstate-conformance golden --help`` (which imports cli.golden) loads no corpus
_EXPORTS = {
    "corpus": ("STREAM_EXEMPT_INFOS", "VARIANTS", "CaseRef", "GoldenError", "coverage",
               "discover", "find_root", "load_manifest", "select"),
    "divergences": ("explain", "load_divergences"),
    "regeneration": ("Change", "regen"),
    "render": ("parse_hex",),
    "verification": ("Problem", "verify", "verify_case", "verify_corpus"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance.golden' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"conformance.golden.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "STREAM_EXEMPT_INFOS", "VARIANTS", "CaseRef", "Change", "GoldenError", "Problem", "coverage",
    "discover", "explain", "find_root", "load_divergences", "load_manifest", "parse_hex", "regen",
    "select", "verify", "verify_case", "verify_corpus",
]
