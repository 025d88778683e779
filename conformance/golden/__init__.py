"""The golden corpus: pinned streams, annotated views, verify, regen and divergences.

The modules, by concern (``golden/FORMAT.md`` documents the files themselves):

* :mod:`~conformance.golden.corpus`        layout, case discovery, manifest, coverage
* :mod:`~conformance.golden.recorder`      which field wrote which bytes (span recorder)
* :mod:`~conformance.golden.render`        observing a case, the hex view, a case's files
* :mod:`~conformance.golden.diff`          field-level and value-level diffs
* :mod:`~conformance.golden.divergences`   explain rules, divergences.json
* :mod:`~conformance.golden.verification`  ``golden verify`` (never writes)
* :mod:`~conformance.golden.regeneration`  ``golden regen`` (reference engine only)
* :mod:`~conformance.golden.commands`      the ``golden`` CLI subcommands
* :mod:`~conformance.golden.annotate`      element spans (another annotator, cross-checked)

This package re-exports what callers outside it use.
"""

from conformance.golden.corpus import (
    STREAM_EXEMPT_INFOS,
    VARIANTS,
    CaseRef,
    GoldenError,
    coverage,
    discover,
    find_root,
    load_manifest,
    select,
)
from conformance.golden.divergences import explain, load_divergences
from conformance.golden.regeneration import Change, regen
from conformance.golden.render import parse_hex
from conformance.golden.verification import Problem, verify, verify_case, verify_corpus

__all__ = [
    "STREAM_EXEMPT_INFOS", "VARIANTS", "CaseRef", "Change", "GoldenError", "Problem", "coverage",
    "discover", "explain", "find_root", "load_divergences", "load_manifest", "parse_hex", "regen",
    "select", "verify", "verify_case", "verify_corpus",
]
