"""conformance.plain (the attrs-free value classes of the decode path) and the C-speed
bound in front of the json-depth limit's exact scan."""

from __future__ import annotations

import random
import re

import pytest

from conformance.model import limits
from conformance.plain import Plain


class Point(Plain):
    __slots__ = ("x", "y", "view")
    _defaults = {"view": None}
    _no_compare = ("view",)


def test_plain_init_eq_hash_repr_replace():
    p = Point(1, y=2)
    assert (p.x, p.y, p.view) == (1, 2, None)
    assert p == Point(1, 2, view=b"ignored") and hash(p) == hash(Point(1, 2))
    assert p != Point(2, 2) and p != (1, 2)
    assert repr(p) == "Point(x=1, y=2)"
    q = p.replace(y=5)
    assert (q.x, q.y) == (1, 5) and p.y == 2
    with pytest.raises(TypeError, match="missing argument 'y'"):
        Point(1)
    with pytest.raises(TypeError, match="unexpected arguments"):
        Point(1, 2, z=3)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        Point(1, 2, 3, 4)


def test_the_decode_path_imports_no_attrs():
    """What the lean entry's decode imports beyond a bare interpreter: none of the heavy
    modules.  The child runs with -S -E (no site, no .pth files, no PYTHONPATH): a .pth
    that preloads e.g. typing at start-up would otherwise hide an import of it, as it
    did on a machine whose site-packages had one while a plain venv has none."""
    import os
    import subprocess
    import sys

    import conformance

    root = os.path.dirname(os.path.dirname(os.path.abspath(conformance.__file__)))
    code = (f"import sys; sys.path.insert(0, {root!r}); before = set(sys.modules); "
            "import conformance.migration.report, conformance.migration.reader, "
            "conformance.migration.writer, conformance.cli.migration; "
            "print(sorted(m for m in ('attrs', 'attr', 'pathlib', 'inspect', 'tempfile', "
            "'importlib.resources', 'typing', 'conformance.model.description') "
            "if m in sys.modules and m not in before))")
    out = subprocess.run([sys.executable, "-S", "-E", "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


_OLD_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _exact(text: str, limit: int):
    depth = 0
    for match in _OLD_TOKENS.finditer(text):
        c = match.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                return match.start(), depth
        elif c in "]}":
            depth -= 1
    return None


def test_json_depth_bound_agrees_with_the_exact_scan():
    rnd = random.Random(13)
    for _ in range(20000):
        text = "".join(rnd.choice('[]{}"\\a \né') for _ in range(rnd.randint(0, 30)))
        limit = rnd.randint(0, 5)
        assert limits.json_depth_error(text, limit) == _exact(text, limit), (text, limit)


@pytest.mark.parametrize("text, limit, expected", [
    ("[" * 300 + "]" * 300, 256, (256, 257)),
    ('["[[[[", [[[]]]]', 3, (11, 4)),
    ('[[[["]]]]', 2, (2, 3)),
    ('{"a": "\\"[[[[", "b": [[1]]}', 3, None),
    ('{"a": "\\"[[[[", "b": [[[1]]]}', 3, (23, 4)),
    ('"' + "[" * 400, 10, (11, 11)),  # a quote that starts no string is skipped
])
def test_json_depth_error_cases(text, limit, expected):
    assert limits.json_depth_error(text, limit) == _exact(text, limit) == expected
