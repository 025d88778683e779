"""migrate_params_check() and migrate_caps_check(), rule by rule, in QEMU's order.

Source modelled: migration/options.c migrate_params_check() as it stands under the
QAPI_MERGE series (the January 2026 base: every member present, no has_* gating, messages
"Option <c_name> expects ..."), and migration/block-dirty-bitmap.c
check_dirty_bitmap_mig_alias_map() / construct_alias_map() for block-bitmap-mapping.
The first failing rule decides the error, as in C.

Messages are QEMU's, byte for byte, including the one slip in the base
("max_Option cpu_throttle expects ...", options.c, the max_cpu_throttle rule).
"""

from __future__ import annotations

import attrs

from .heap import NullDeref
from .schema import (
    BDRV_BITMAP_MAX_NAME_SIZE,
    DEFAULT_HOST,
    MAX_MIGRATE_DOWNTIME,
    MAX_NODE_NAME_LEN,
    Host,
)

#: the value migrate_params_test_apply() leaves in tmp.tls_* when the request has no
#: tls-* member (options.c: "clear the reference, it's owned by s->parameters")
NULL = attrs.make_class("NullPtr", [], repr_ns=None)()


@attrs.frozen
class Globals:
    """What migrate_params_check() reads from the global MigrationState, not from tmp:
    migrate_zero_copy_send(), migrate_mapped_ram(), migrate_multifd_compression() and
    migrate_tls() (options.c)."""

    caps: frozenset = frozenset()
    multifd_compression: str = "none"
    tls_creds: str = ""


# stringify(SIZE_MAX) with glibc's <stdint.h> on a 64-bit host (unreachable there:
# the members are uint64)
_SIZE_MAX_TEXT = "an integer in the range of 0 to (18446744073709551615UL) bytes/second"


def _rng(name: str, text: str) -> str:
    return f"Option {name} expects {text}"


def params_check(p: dict, g: Globals, host: Host = DEFAULT_HOST) -> str | None:
    """options.c migrate_params_check(): None if valid, else the error message.

    ``p`` maps every QAPI member name to its logical value; tls-* may be ``NULL`` (the
    open-coded test_apply's tmp), which the zero-copy rule dereferences: NullDeref."""
    # options.c migrate_params_check(), in order
    v = p["throttle-trigger-threshold"]
    if v < 1 or v > 100:
        return _rng("throttle_trigger_threshold", "an integer in the range of 1 to 100")
    v = p["cpu-throttle-initial"]
    if v < 1 or v > 99:
        return _rng("cpu_throttle_initial", "an integer in the range of 1 to 99")
    v = p["cpu-throttle-increment"]
    if v < 1 or v > 99:
        return _rng("cpu_throttle_increment", "an integer in the range of 1 to 99")
    if p["max-bandwidth"] > host.size_max:
        return _rng("max_bandwidth", _SIZE_MAX_TEXT)
    if p["avail-switchover-bandwidth"] > host.size_max:
        return _rng("avail_switchover_bandwidth",
                    _SIZE_MAX_TEXT)
    if p["downtime-limit"] > MAX_MIGRATE_DOWNTIME:
        # stringify() expands the macro fully before stringizing: "(2000 * 1000)"
        return _rng("downtime_limit", "an integer in the range of 0 to (2000 * 1000) ms")
    if p["multifd-channels"] < 1:
        return _rng("multifd_channels", "a value between 1 and 255")
    if p["multifd-zlib-level"] > 9:
        return _rng("multifd_zlib_level", "a value between 0 and 9")
    v = p["multifd-qatzip-level"]
    if v > 9 or v < 1:
        return _rng("multifd_qatzip_level", "a value between 1 and 9")
    if p["multifd-zstd-level"] > 20:
        return _rng("multifd_zstd_level", "a value between 0 and 20")
    v = p["xbzrle-cache-size"]
    if v < host.target_page_size or (v & (v - 1)) != 0:
        return _rng("xbzrle_cache_size", "a power of two no less than the target page size")
    v = p["max-cpu-throttle"]
    if v < p["cpu-throttle-initial"] or v > 99:
        return ("max_Option cpu_throttle expects "
                "an integer in the range of cpu_throttle_initial to 99")
    if p["announce-initial"] > 100000:
        return _rng("announce_initial", "a value between 0 and 100000")
    if p["announce-max"] > 100000:
        return _rng("announce_max", "a value between 0 and 100000")
    if p["announce-rounds"] > 1000:
        return _rng("announce_rounds", "a value between 0 and 1000")
    v = p["announce-step"]
    if v < 1 or v > 10000:
        return _rng("announce_step", "a value between 0 and 10000")
    err = bitmap_alias_map_check(p["block-bitmap-mapping"])
    if err is not None:
        return "Invalid mapping given for block-bitmap-mapping: " + err
    if host.linux and "zero-copy-send" in g.caps:
        # (params->multifd_compression || *params->tls_creds->u.s): || short-circuits
        if p["multifd-compression"] != "none":
            return "Zero copy only available for non-compressed non-TLS multifd migration"
        if p["tls-creds"] is NULL:
            raise NullDeref("migrate_params_check: *params->tls_creds->u.s (tmp.tls_creds "
                            "is NULL: migrate_params_test_apply cleared it)")
        if p["tls-creds"]:
            return "Zero copy only available for non-compressed non-TLS multifd migration"
    if "mapped-ram" in g.caps and (g.multifd_compression != "none" or g.tls_creds):
        # reads the *current* parameters (migrate_multifd_compression(), migrate_tls()),
        # not the ones being checked
        return "Mapped-ram only available for non-compressed non-TLS multifd migration"
    v = p["x-vcpu-dirty-limit-period"]
    if v < 1 or v > 1000:
        return _rng("x-vcpu-dirty-limit-period", "a value between 1 and 1000")
    if p["vcpu-dirty-limit"] < 1:
        return "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"
    if p["direct-io"] and not host.has_direct_io:
        return "No build-time support for direct-io"
    return None


# --------------------------------------------------------------------------- block-bitmap-mapping


def id_wellformed(s: str) -> bool:
    """util/id.c id_wellformed(): an ASCII letter, then ASCII letters, digits, '-._'."""
    if not s or not (s[0].isascii() and s[0].isalpha()):
        return False
    return all(c.isascii() and (c.isalnum() or c in "-._") for c in s[1:])


def _blen(s: str) -> int:
    return len(s.encode("utf-8"))  # strlen() of the UTF-8 the JSON parser produced


def _alias_map(bbm: list, name_to_alias: bool) -> str | None:
    # block-dirty-bitmap.c construct_alias_map()
    seen_nodes: set[str] = set()
    for node in bbm:
        alias, node_name = node["alias"], node["node-name"]
        if not id_wellformed(alias):
            return f"The node alias '{alias}' is not well-formed"
        if _blen(alias) > 255:
            return f"The node alias '{alias}' is longer than 255 bytes"
        if _blen(node_name) > MAX_NODE_NAME_LEN:
            return f"The node name '{node_name}' is longer than {MAX_NODE_NAME_LEN} bytes"
        if name_to_alias:
            if node_name in seen_nodes:
                return f"The node name '{node_name}' is mapped twice"
            seen_nodes.add(node_name)
        else:
            if alias in seen_nodes:
                return f"The node alias '{alias}' is used twice"
            seen_nodes.add(alias)
        seen_bitmaps: set[str] = set()
        for bm in node["bitmaps"]:
            if _blen(bm["alias"]) > 255:
                return f"The bitmap alias '{bm['alias']}' is longer than 255 bytes"
            if _blen(bm["name"]) > BDRV_BITMAP_MAX_NAME_SIZE:
                return (f"The bitmap name '{bm['name']}' is longer than "
                        f"{BDRV_BITMAP_MAX_NAME_SIZE} bytes")
            key = bm["name"] if name_to_alias else bm["alias"]
            if key in seen_bitmaps:
                if name_to_alias:
                    return f"The bitmap '{node_name}'/'{bm['name']}' is mapped twice"
                return f"The bitmap alias '{alias}'/'{bm['alias']}' is used twice"
            seen_bitmaps.add(key)
    return None


def bitmap_alias_map_check(bbm: list) -> str | None:
    """check_dirty_bitmap_mig_alias_map(): both directions, name->alias first."""
    return _alias_map(bbm, True) or _alias_map(bbm, False)


# --------------------------------------------------------------------------- capabilities


@attrs.frozen
class CapHost:
    """What migrate_caps_check() probes on the host (assumed, not probed)."""

    replication: bool = True  # CONFIG_REPLICATION
    linux: bool = True
    write_tracking: bool = True  # background-snapshot: UFFD write-protect usable
    kvm_dirty_ring: bool = False  # kvm_enabled() && kvm_dirty_ring_enabled()
    postcopy_supported: bool = True


#: options.c check_caps_background_snapshot
_BG_SNAPSHOT_INCOMPATIBLE = (
    "postcopy-ram", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate",
    "return-path", "multifd", "pause-before-switchover", "auto-converge", "release-ram",
    "rdma-pin-all", "xbzrle", "x-colo", "validate-uuid", "zero-copy-send")


def caps_check(new: frozenset, params: dict, host: CapHost = CapHost()) -> str | None:
    """options.c migrate_caps_check() for a source that is not yet migrating (no incoming
    started, no RDMA).  ``params``: current parameters (for migrate_multifd_compression()
    and migrate_tls())."""
    if "x-colo" in new and not host.replication:
        return "QEMU compiled without replication module can't enable COLO"
    if "postcopy-ram" in new:
        if not host.postcopy_supported:
            return "Postcopy is not supported: "
        if "x-ignore-shared" in new:
            return "Postcopy is not compatible with ignore-shared"
    if "background-snapshot" in new:
        if not host.write_tracking:
            return "Background-snapshot is not supported by host kernel"
        for cap in _BG_SNAPSHOT_INCOMPATIBLE:
            if cap in new:
                return f"Background-snapshot is not compatible with {cap}"
    if "zero-copy-send" in new:
        if not host.linux:
            return "Zero copy currently only available on Linux"
        if ("multifd" not in new or "xbzrle" in new
                or params["multifd-compression"] != "none" or params["tls-creds"]):
            return "Zero copy only available for non-compressed non-TLS multifd migration"
    if "postcopy-preempt" in new and "postcopy-ram" not in new:
        return "Postcopy preempt requires postcopy-ram"
    if "switchover-ack" in new and "return-path" not in new:
        return "Capability 'switchover-ack' requires capability 'return-path'"
    if "dirty-limit" in new:
        if "auto-converge" in new:
            return "dirty-limit conflicts with auto-converge either of then available currently"
        if not host.kvm_dirty_ring:
            return "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set"
    if "multifd" in new and "xbzrle" in new:
        return "Multifd is not compatible with xbzrle"
    if "mapped-ram" in new:
        if "xbzrle" in new:
            return "Mapped-ram migration is incompatible with xbzrle"
        if "postcopy-ram" in new:
            return "Mapped-ram migration is incompatible with postcopy"
    return None
