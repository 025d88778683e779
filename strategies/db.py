"""The example database, chosen by one environment variable (or pytest option).

``VMSTATE_HYPOTHESIS_DB`` (or ``pytest --vmstate-hypothesis-db=...``):

* unset or empty           Hypothesis's default (``.hypothesis/examples``; none in ``ci``)
* ``none``                 no database at all
* ``redis://host:port/db`` a :class:`hypothesis.extra.redis.RedisExampleDatabase`
                           shared by every process and host that can reach the server
* ``rediss://...``         the same over TLS
* any other string         a :class:`hypothesis.database.DirectoryBasedExampleDatabase`
                           at that path (a shared NFS directory works too)

``VMSTATE_HYPOTHESIS_DB_READONLY=1`` wraps it in a ReadOnlyDatabase (pull requests can
replay the fleet's failures without writing to it).  docs/hypothesis.md has the recipe.
"""

from __future__ import annotations

import os

ENV = "VMSTATE_HYPOTHESIS_DB"
ENV_READONLY = "VMSTATE_HYPOTHESIS_DB_READONLY"
_UNSET = object()


def database_from_spec(spec: str | None, *, readonly: bool = False):
    """The ExampleDatabase a spec names; ``_UNSET`` when the spec says "default"."""
    from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

    if spec is None or not spec.strip():
        return _UNSET
    spec = spec.strip()
    if spec.lower() == "none":
        return None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase

        db = RedisExampleDatabase(redis.Redis.from_url(spec),
                                  key_prefix=b"vmstate-conformance:")
    else:
        db = DirectoryBasedExampleDatabase(os.path.expanduser(spec))
    return ReadOnlyDatabase(db) if readonly else db


def database_from_env(environ=None):
    env = os.environ if environ is None else environ
    readonly = env.get(ENV_READONLY, "").strip().lower() in ("1", "true", "yes")
    return database_from_spec(env.get(ENV), readonly=readonly)


def describe(db) -> str:
    if db is _UNSET:
        return "Hypothesis default"
    if db is None:
        return "none"
    return repr(db)


__all__ = ["ENV", "ENV_READONLY", "database_from_spec", "database_from_env", "describe"]
