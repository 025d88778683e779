"""The Hypothesis budgets, in one place: the pytest profiles (tests/conftest.py) and
``vmstate-conformance run --profile`` both read them.

``examples`` is ``max_examples`` per test (pytest) or per property grid point (``run``);
``derandomize`` is the ``ci`` profile's fixed seed (no example database);
``fuzz_inputs`` is the hostile-input budget, shared between the three fuzz targets
(``vmstate-conformance fuzz --profile``, and tests/test_hostile.py's fuzz runs).
"""

PROFILES: dict[str, dict] = {
    "dev": {"examples": 40, "derandomize": False, "fuzz_inputs": 150},
    "ci": {"examples": 50, "derandomize": True, "fuzz_inputs": 600},
    "thorough": {"examples": 5000, "derandomize": False, "fuzz_inputs": 1_000_000},
}
