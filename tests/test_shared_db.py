"""A failure found by one process is replayed from the shared Redis database by another.

Starts a real ``redis-server`` on loopback (a free port, no persistence), then runs two
separate Python processes with ``VMSTATE_HYPOTHESIS_DB=redis://127.0.0.1:PORT/0``:

1. the *finder* searches (phase ``generate``) a deliberately failing property over
   generated descriptions and stores the shrunk counterexample;
2. the *replayer* may only reuse (``phases=[Phase.reuse]``: no generation, no shrinking)
   and must fail with the same counterexample, in one or two calls.

A third process with a fresh (empty) database and the same reuse-only settings passes:
the replay came from the shared database, not from a fixed seed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[1]
REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                         if os.path.exists("/usr/bin/redis-server") else None)

SCRIPT = r'''
import json, sys
from hypothesis import Phase, given, settings
from strategies import descriptions
from strategies.db import database_from_env

mode = sys.argv[1]
calls = []
phases = [Phase.generate, Phase.shrink] if mode == "find" else [Phase.reuse]

@settings(database=database_from_env(), phases=phases, max_examples=300, deadline=None)
@given(descriptions("legacy"))
def deliberately_failing(desc):
    """Claims no tree has an array field: false, and found fast."""
    calls.append(1)
    names = [f.name for _, f in desc.all_fields() if f.num and f.info]
    assert not names, names

import unittest
try:
    deliberately_failing()
except unittest.SkipTest:  # reuse-only with nothing stored: no example at all
    print(json.dumps({"failed": False, "calls": len(calls)}))
    sys.exit(0)
except AssertionError as exc:
    print(json.dumps({"failed": True, "error": str(exc).splitlines()[0], "calls": len(calls)}))
else:
    print(json.dumps({"failed": False, "calls": len(calls)}))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    if REDIS is None:
        pytest.skip("redis-server not installed (apt-get install redis-server; .ci/run does)")
    pytest.importorskip("redis", reason="the redis Python package is needed")
    port = _free_port()
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):  # wait for the server to accept connections (no timing assertion)
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None:
                    pytest.skip(f"redis-server exited with {proc.returncode}")
                time.sleep(0.05)
        else:
            pytest.skip("redis-server did not come up")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run(mode: str, db: str) -> dict:
    env = {**os.environ, "VMSTATE_HYPOTHESIS_DB": db, "PYTHONPATH": str(ROOT)}
    env.pop("CI", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_failure_is_replayed_from_the_shared_redis_database(redis_url, tmp_path):
    import redis

    found = _run("find", redis_url)
    assert found["failed"], found
    keys = redis.Redis.from_url(redis_url).keys(b"vmstate-conformance:*")
    assert keys, "the finder stored nothing in Redis"

    replay = _run("replay", redis_url)
    assert replay["failed"], replay
    assert replay["error"] == found["error"]  # the same shrunk counterexample
    assert replay["calls"] <= 2  # reused, not searched

    # the same reuse-only run against an empty database finds nothing
    empty = _run("replay", str(tmp_path / "empty-db"))
    assert not empty["failed"] and empty["calls"] == 0, empty


def test_directory_database_is_shared_between_processes(tmp_path):
    db = str(tmp_path / "shared-db")
    found = _run("find", db)
    assert found["failed"]
    replay = _run("replay", db)
    assert replay["failed"] and replay["error"] == found["error"] and replay["calls"] <= 2
