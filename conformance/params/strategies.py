"""Hypothesis strategies: current parameters, capabilities, set-parameters requests.

Current parameters are always valid (QEMU checks them at start-up and on every set);
requests mix valid values, boundary values on both sides of every migrate_params_check
rule, null / empty tls-*, and block-bitmap-mappings drawn from a small alphabet so
duplicates and ill-formed aliases are common.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .schema import (
    BY_NAME,
    DEFAULT_HOST,
    MAX_MIGRATE_DOWNTIME,
    MEMBERS,
    NAMES,
    RUNTIME_WHITELIST,
    UINT_MAX,
    defaults,
)
from .validate import Globals, caps_check, params_check

#: boundary values per member (both sides of each options.c rule)
_EDGES = {
    "throttle-trigger-threshold": (0, 1, 50, 100, 101, 255),
    "cpu-throttle-initial": (0, 1, 20, 99, 100),
    "cpu-throttle-increment": (0, 1, 10, 99, 100),
    "max-cpu-throttle": (0, 1, 20, 98, 99, 100),
    "downtime-limit": (0, 300, MAX_MIGRATE_DOWNTIME, MAX_MIGRATE_DOWNTIME + 1, 2**64 - 1),
    "multifd-channels": (0, 1, 2, 255),
    "multifd-zlib-level": (0, 1, 9, 10),
    "multifd-qatzip-level": (0, 1, 9, 10),
    "multifd-zstd-level": (0, 1, 20, 21),
    "xbzrle-cache-size": (0, 2048, 4096, 4097, 8192, 12288, 64 << 20, 2**63),
    "announce-initial": (0, 50, 100000, 100001),
    "announce-max": (0, 550, 100000, 100001),
    "announce-rounds": (0, 5, 1000, 1001),
    "announce-step": (0, 1, 100, 10000, 10001),
    "x-vcpu-dirty-limit-period": (0, 1, 1000, 1001),
    "vcpu-dirty-limit": (0, 1, 2),
    "max-bandwidth": (0, 128 << 20, 2**64 - 1),
    "avail-switchover-bandwidth": (0, 1, 2**64 - 1),
    "max-postcopy-bandwidth": (0, 1, 2**64 - 1),
    "x-checkpoint-delay": (0, 20000, 2**32 - 1),
}

_ID = st.text(alphabet="ab1-._#", min_size=0, max_size=4)
_TLS = st.one_of(st.just(""), st.none(), st.sampled_from(["tls0", "creds-x509", "authz0"]),
                 st.text(max_size=6))


def _uint(name: str, kind: str):
    edges = _EDGES.get(name, (0, 1))
    return st.one_of(st.sampled_from(edges), st.integers(0, UINT_MAX[kind]))


def bitmap_aliases():
    transform = st.one_of(st.just({}), st.builds(lambda p: {"persistent": p}, st.booleans()))
    bm = st.fixed_dictionaries({"name": _ID, "alias": _ID},
                               optional={"transform": transform})
    node = st.fixed_dictionaries({
        "node-name": st.one_of(_ID, st.just("n" * 32)),
        "alias": st.one_of(_ID, st.sampled_from(["node0", "a" * 256, "9bad"])),
        "bitmaps": st.lists(bm, max_size=3)})
    return st.lists(node, max_size=3)


def member_value(name: str, host=DEFAULT_HOST):
    m = BY_NAME[name]
    if m.type in UINT_MAX:
        return _uint(name, m.type)
    if m.type == "bool":
        return st.booleans()
    if m.type == "enum":
        allowed = [v for v in m.enum if m.name != "multifd-compression" or v in host.compressions]
        return st.sampled_from(allowed)
    if m.type == "StrOrNull":
        return _TLS
    if m.type == "strList":
        return st.lists(st.text(max_size=5), max_size=3)
    if m.type == "BitmapMigrationNodeAliasList":
        return bitmap_aliases()
    raise AssertionError(m.type)


@st.composite
def requests(draw, names=NAMES, host=DEFAULT_HOST, max_members: int = 6):
    """A migrate-set-parameters argument object (only present members)."""
    # (name, value) pairs drawn together, so the shrinker deletes a member in one step
    pairs = draw(st.lists(st.sampled_from(names).flatmap(
        lambda n: st.tuples(st.just(n), member_value(n, host))),
        unique_by=lambda nv: nv[0], max_size=max_members))
    return dict(pairs)


def whitelisted_requests(host=DEFAULT_HOST):
    return requests(names=RUNTIME_WHITELIST, host=host)


@st.composite
def current_params(draw, host=DEFAULT_HOST):
    """A valid s->parameters: defaults with a few members changed to valid values."""
    p = defaults()
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6)):
        p[name] = draw(member_value(name, host))
        if BY_NAME[name].type == "StrOrNull" and p[name] is None:
            p[name] = ""  # s->parameters never holds QNULL (tls_opt_to_str)
    tmp = dict(p)
    if params_check(tmp, Globals(), host) is not None:
        p = defaults()
    # often a pointer member already set (what a replacing request must free)
    if draw(st.booleans()):
        p["cpr-exec-command"] = draw(st.lists(st.text(max_size=5), min_size=1, max_size=3))
    if draw(st.booleans()):
        p["tls-creds"] = draw(st.sampled_from(["tls0", "creds-x509"]))
    return p


#: capability sets migrate_params_check() reads (zero-copy-send, mapped-ram)
_CAP_PRESETS = (("multifd", "zero-copy-send"), ("multifd", "mapped-ram"),
                ("multifd", "mapped-ram", "zero-copy-send"))


@st.composite
def states(draw, host=DEFAULT_HOST):
    """(current parameters, capabilities): capabilities that migrate_caps_check accepts
    with those parameters, biased to the ones migrate_params_check reads."""
    params = draw(current_params(host))
    caps = frozenset(draw(st.one_of(
        st.just(()),
        st.sampled_from(_CAP_PRESETS),
        st.lists(st.sampled_from(["zero-copy-send", "multifd", "mapped-ram", "xbzrle",
                                  "return-path"]), unique=True, max_size=3))))
    if caps_check(caps, params) is not None:
        caps = frozenset()
    g = Globals(caps=caps, multifd_compression=params["multifd-compression"],
                tls_creds=params["tls-creds"])
    if params_check(dict(params), g, host) is not None:  # caps the params no longer pass
        caps = frozenset()
    return params, caps


def all_members_request():
    """Every member present (a full query-migrate-parameters echoed back)."""
    return st.fixed_dictionaries({m.name: member_value(m.name) for m in MEMBERS})
