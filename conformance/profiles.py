"""The Hypothesis budgets, in one place: the pytest profiles (tests/conftest.py) and
``vmstate-conformance run --profile`` both read them.

``examples`` is ``max_examples`` per test (pytest) or per property grid point (``run``);
``derandomize`` is the ``ci`` profile's fixed seed (no example database);
``fuzz_inputs`` is the hostile-input budget, shared between the three fuzz targets
(``vmstate-conformance fuzz --profile``, and tests/test_hostile.py's fuzz runs);
``qemu_examples`` is the qemu engine's budget per grid point when ``run`` includes it
without being asked (the no-argument run: real C costs a fork per operation), and
:data:`QEMU_EXAMPLES` that budget without a profile.
"""

PROFILES: dict[str, dict] = {
    "dev": {"examples": 40, "derandomize": False, "fuzz_inputs": 150, "qemu_examples": 10},
    "ci": {"examples": 50, "derandomize": True, "fuzz_inputs": 600, "qemu_examples": 10},
    "thorough": {"examples": 5000, "derandomize": False, "fuzz_inputs": 1_000_000,
                 "qemu_examples": 500},
}
QEMU_EXAMPLES = 3
