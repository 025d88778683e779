"""The Hypothesis budgets, in one place: the pytest profiles (tests/conftest.py) and
``vmstate-conformance run --profile`` both read them.

``examples`` is ``max_examples`` per test (pytest) or per property grid point (``run``);
``derandomize`` is the ``ci`` profile's fixed seed (no example database).
"""

PROFILES: dict[str, dict] = {
    "dev": {"examples": 40, "derandomize": False},
    "ci": {"examples": 50, "derandomize": True},
    "thorough": {"examples": 5000, "derandomize": False},
}
