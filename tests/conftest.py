"""Hypothesis profiles, registered once for the whole test suite.

* ``dev``      (default locally): 40 examples per test, no deadline.
* ``ci``       (default when the CI environment variable is set): Hypothesis's own
               ``ci`` profile (derandomize = a fixed seed per test, no database,
               print_blob) with 50 examples per test, so ``pytest -n auto`` on two
               cores stays in budget.  With a shared database configured it keeps the
               database and searches randomly (derandomize excludes a database).
* ``thorough`` 5,000 examples per test (every property grid point), no deadline.

``--hypothesis-profile=NAME`` (Hypothesis's pytest plugin) selects one explicitly.
Deadlines are off everywhere: the machines running this are shared and noisy, and no
test here may assert on time.

The example database comes from ``VMSTATE_HYPOTHESIS_DB`` or ``--vmstate-hypothesis-db``
(strategies/db.py, docs/hypothesis.md): a directory or ``redis://host:port/db``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from conformance.profiles import PROFILES
from strategies.db import _UNSET, ENV, database_from_env, database_from_spec, describe

_COMMON = {
    "deadline": None,
    # generated trees draw many values; data_too_large / too_slow are budget questions
    # the explicit Budget answers, not failures of the property
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.filter_too_much],
}


def _register(db) -> None:
    extra = {} if db is _UNSET else {"database": db}
    settings.register_profile("dev", max_examples=PROFILES["dev"]["examples"], **_COMMON, **extra)
    # derandomize implies no database: with a shared database the fleet searches
    # randomly (every host the same fixed seed would repeat one search) and replays
    # what any host found
    ci_seed = {"derandomize": True, "database": None} if db is _UNSET or db is None else {
        "derandomize": False}
    settings.register_profile("ci", parent=settings.get_profile("ci"),
                              max_examples=PROFILES["ci"]["examples"],
                              **_COMMON, **ci_seed, **extra)
    settings.register_profile("thorough", max_examples=PROFILES["thorough"]["examples"], **_COMMON, **extra)


_register(database_from_env())
# Hypothesis's plugin loads --hypothesis-profile after conftest import; this is the
# default when none is given (Hypothesis itself picks "ci" when CI is set).
settings.load_profile(os.environ.get("VMSTATE_HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    group = parser.getgroup("vmstate-conformance hypothesis")
    group.addoption("--vmstate-hypothesis-db", default=None,
                    help=f"example database: a directory or redis://host:port/db "
                         f"(default: ${ENV})")


def pytest_configure(config):
    spec = config.getoption("--vmstate-hypothesis-db", default=None)
    if spec:
        current = settings._current_profile
        _register(database_from_spec(spec))
        settings.load_profile(current or "dev")


def pytest_report_header(config):
    spec = config.getoption("--vmstate-hypothesis-db", default=None) or os.environ.get(ENV)
    db = database_from_spec(spec)
    where = spec if db not in (_UNSET, None) else describe(db)
    return f"vmstate-conformance hypothesis: profile={settings._current_profile}, db={where}"
