"""pytest plugin (entry point ``vmstate_conformance``): ``--regen-golden``.

``pytest --regen-golden`` rewrites the golden corpus from the reference engine before
the tests run (then the golden verify tests check the fresh files), exactly like
``vmstate-conformance golden regen``: atomic writes, only changed files, a report of
what was added / changed / removed, and a refusal when ``CI`` is set (add
``--regen-golden-force`` to override).  Under pytest-xdist only the controller
regenerates; workers see the result.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("vmstate-conformance")
    group.addoption("--regen-golden", action="store_true", default=False,
                    help="regenerate golden/ from the reference engine before testing")
    group.addoption("--regen-golden-case", default=None, metavar="PATTERN",
                    help="with --regen-golden: only cases matching PATTERN")
    group.addoption("--regen-golden-force", action="store_true", default=False,
                    help="with --regen-golden: regenerate even when CI is set")


def pytest_configure(config) -> None:
    if not config.getoption("--regen-golden", default=False):
        return
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    import sys

    from conformance import golden

    try:
        golden.regen(golden.find_root(config.rootpath),
                     config.getoption("--regen-golden-case"),
                     force=config.getoption("--regen-golden-force"), out=sys.stderr)
    except golden.GoldenError as exc:
        raise pytest.UsageError(f"--regen-golden: {exc}") from None
