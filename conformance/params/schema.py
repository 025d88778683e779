"""The QAPI schema of migration parameters and capabilities, as data.

Modelled on qapi/migration.json (QEMU 10.x: ``MigrationParameters``,
``MigrateSetParameters``, ``MigrationCapability``, ``BitmapMigrationNodeAlias``,
``StrOrNull``) and the defaults of ``migration_properties[]`` in migration/options.c.
Nothing here is copied from QEMU; the tables are our own description of it.

Which QEMU this is (see docs/parameters.md, "Which QEMU"):

* The member set, types and defaults are QEMU 10.2's (30 members, ``cpr-exec-command``
  since 10.2).  10.0/10.1 lack ``cpr-exec-command`` (``SINCE`` records each member's
  first release).
* The request type: 10.2 still has a separate ``MigrateSetParameters`` (tls-* are
  ``StrOrNull``) while ``MigrationParameters`` stores tls-* as ``str``.  The QAPI_MERGE series
  applies on top of the January 2026 unification (MigrateSetParameters removed,
  ``MigrationParameters`` tls-* become ``StrOrNull`` everywhere).  The implementations in
  this package model that base, the code the review thread is about; the member set is
  the same.
"""

from __future__ import annotations

import attrs

# --------------------------------------------------------------------------- enums

#: qapi/migration.json MigMode ('cpr-exec' since 10.2)
MIG_MODE = ("normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
#: qapi/migration.json ZeroPageDetection
ZERO_PAGE_DETECTION = ("none", "legacy", "multifd")
#: qapi/migration.json MultiFDCompression; members after 'zlib' are build-conditional
#: ('if': CONFIG_ZSTD / CONFIG_QATZIP / CONFIG_QPL / CONFIG_UADK)
MULTIFD_COMPRESSION = ("none", "zlib", "zstd", "qatzip", "qpl", "uadk")


@attrs.frozen
class Host:
    """What migrate_params_check() and the input visitor ask of the build and host."""

    #: qemu_target_page_size() (x86_64: 4 KiB)
    target_page_size: int = 4096
    #: CONFIG_LINUX: the zero-copy-send rule of migrate_params_check() is compiled in
    linux: bool = True
    #: qemu_has_direct_io() (O_DIRECT defined)
    has_direct_io: bool = True
    #: MultiFDCompression members this build has (Debian: zlib and zstd)
    compressions: tuple = ("none", "zlib", "zstd")
    #: SIZE_MAX: 64-bit host
    size_max: int = 2**64 - 1


DEFAULT_HOST = Host()

# --------------------------------------------------------------------------- members


@attrs.frozen
class Member:
    """One member of MigrationParameters.

    ``name`` is the QAPI name, ``c`` the C member, ``type`` one of: uint8 uint32 uint64
    size bool enum StrOrNull strList BitmapMigrationNodeAliasList.
    """

    name: str
    c: str
    type: str
    default: object
    since: str
    enum: tuple = ()
    unstable: bool = False

    @property
    def scalar(self) -> bool:
        return self.type not in POINTER_TYPES


POINTER_TYPES = frozenset({"StrOrNull", "strList", "BitmapMigrationNodeAliasList"})

MAX_THROTTLE = 128 << 20  # options.c MAX_THROTTLE
MAX_MIGRATE_DOWNTIME = 2000 * 1000  # options.c MAX_MIGRATE_DOWNTIME (ms)

# Order: MigrateSetParameters / MigrationParameters member order in qapi/migration.json.
# Defaults: options.c migration_properties[] (DEFAULT_MIGRATE_*).
MEMBERS: tuple[Member, ...] = (
    Member("announce-initial", "announce_initial", "size", 50, "4.0"),
    Member("announce-max", "announce_max", "size", 550, "4.0"),
    Member("announce-rounds", "announce_rounds", "size", 5, "4.0"),
    Member("announce-step", "announce_step", "size", 100, "4.0"),
    Member("throttle-trigger-threshold", "throttle_trigger_threshold", "uint8", 50, "5.0"),
    Member("cpu-throttle-initial", "cpu_throttle_initial", "uint8", 20, "2.7"),
    Member("cpu-throttle-increment", "cpu_throttle_increment", "uint8", 10, "2.7"),
    Member("cpu-throttle-tailslow", "cpu_throttle_tailslow", "bool", False, "5.1"),
    Member("tls-creds", "tls_creds", "StrOrNull", "", "2.7"),
    Member("tls-hostname", "tls_hostname", "StrOrNull", "", "2.7"),
    Member("tls-authz", "tls_authz", "StrOrNull", "", "4.0"),
    Member("max-bandwidth", "max_bandwidth", "size", MAX_THROTTLE, "2.8"),
    Member("avail-switchover-bandwidth", "avail_switchover_bandwidth", "size", 0, "8.2"),
    Member("downtime-limit", "downtime_limit", "uint64", 300, "2.8"),
    Member("x-checkpoint-delay", "x_checkpoint_delay", "uint32", 200 * 100, "2.8",
           unstable=True),
    Member("multifd-channels", "multifd_channels", "uint8", 2, "4.0"),
    Member("xbzrle-cache-size", "xbzrle_cache_size", "size", 64 * 1024 * 1024, "2.11"),
    Member("max-postcopy-bandwidth", "max_postcopy_bandwidth", "size", 0, "3.0"),
    Member("max-cpu-throttle", "max_cpu_throttle", "uint8", 99, "3.1"),
    Member("multifd-compression", "multifd_compression", "enum", "none", "5.0",
           enum=MULTIFD_COMPRESSION),
    Member("multifd-zlib-level", "multifd_zlib_level", "uint8", 1, "5.0"),
    Member("multifd-qatzip-level", "multifd_qatzip_level", "uint8", 1, "9.2"),
    Member("multifd-zstd-level", "multifd_zstd_level", "uint8", 1, "5.0"),
    Member("block-bitmap-mapping", "block_bitmap_mapping", "BitmapMigrationNodeAliasList",
           [], "5.2"),
    Member("x-vcpu-dirty-limit-period", "x_vcpu_dirty_limit_period", "uint64", 1000, "8.1",
           unstable=True),
    Member("vcpu-dirty-limit", "vcpu_dirty_limit", "uint64", 1, "8.1"),
    Member("mode", "mode", "enum", "normal", "8.2", enum=MIG_MODE),
    Member("zero-page-detection", "zero_page_detection", "enum", "multifd", "9.0",
           enum=ZERO_PAGE_DETECTION),
    Member("direct-io", "direct_io", "bool", False, "9.1"),
    Member("cpr-exec-command", "cpr_exec_command", "strList", [], "10.2"),
)

BY_NAME: dict[str, Member] = {m.name: m for m in MEMBERS}
NAMES: tuple[str, ...] = tuple(m.name for m in MEMBERS)
POINTER_MEMBERS: tuple[str, ...] = tuple(m.name for m in MEMBERS if not m.scalar)
SCALAR_MEMBERS: tuple[str, ...] = tuple(m.name for m in MEMBERS if m.scalar)
TLS_MEMBERS = ("tls-creds", "tls-hostname", "tls-authz")

UINT_MAX = {"uint8": 2**8 - 1, "uint32": 2**32 - 1, "uint64": 2**64 - 1, "size": 2**64 - 1}

#: Peter Xu's proposal in the review thread of the QAPI_MERGE series: the parameters that may change
#: while a migration is active.  All scalars.
RUNTIME_WHITELIST: tuple[str, ...] = (
    # CPU throttle knobs
    "throttle-trigger-threshold", "cpu-throttle-increment", "cpu-throttle-tailslow",
    "max-cpu-throttle", "x-vcpu-dirty-limit-period", "vcpu-dirty-limit",
    # bandwidth knobs
    "max-bandwidth", "avail-switchover-bandwidth", "downtime-limit",
    "max-postcopy-bandwidth",
    # COLO knob
    "x-checkpoint-delay",
)

assert all(BY_NAME[n].scalar for n in RUNTIME_WHITELIST)


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def members_in(version: str) -> tuple[str, ...]:
    """The members a QEMU release has, by each member's first release (``since``):
    ``members_in("10.0")`` lacks cpr-exec-command (10.2)."""
    return tuple(m.name for m in MEMBERS if _version(m.since) <= _version(version))


def defaults() -> dict:
    """MigrationParameters after migration_instance_init: every member present."""
    return {m.name: (list(m.default) if isinstance(m.default, list) else m.default)
            for m in MEMBERS}


# --------------------------------------------------------------------------- nested structs

#: BitmapMigrationBitmapAliasTransform: { '*persistent': 'bool' }
#: BitmapMigrationBitmapAlias: { 'name': 'str', 'alias': 'str',
#:                               '*transform': 'BitmapMigrationBitmapAliasTransform' }
#: BitmapMigrationNodeAlias: { 'node-name': 'str', 'alias': 'str',
#:                             'bitmaps': [ 'BitmapMigrationBitmapAlias' ] }
NODE_ALIAS_KEYS = ("node-name", "alias", "bitmaps")
BITMAP_ALIAS_KEYS = ("name", "alias", "transform")

# sizeof_field(BlockDriverState, node_name) - 1 (include/block/block_int-common.h: 32)
MAX_NODE_NAME_LEN = 31
# include/block/dirty-bitmap.h BDRV_BITMAP_MAX_NAME_SIZE
BDRV_BITMAP_MAX_NAME_SIZE = 1023

# --------------------------------------------------------------------------- capabilities


@attrs.frozen
class Capability:
    name: str
    deprecated: bool = False
    unstable: bool = False


#: qapi/migration.json MigrationCapability, QEMU 10.x order.  'zero-blocks' is still in
#: the enum through 10.2 (deprecated, no effect since block migration was removed in 9.1);
#: 'compress' and 'block' were removed in 9.1.
CAPABILITIES: tuple[Capability, ...] = (
    Capability("xbzrle"), Capability("rdma-pin-all"), Capability("auto-converge"),
    Capability("zero-blocks", deprecated=True), Capability("events"),
    Capability("postcopy-ram"), Capability("x-colo", unstable=True),
    Capability("release-ram"), Capability("return-path"),
    Capability("pause-before-switchover"), Capability("multifd"),
    Capability("dirty-bitmaps"), Capability("postcopy-blocktime"),
    Capability("late-block-activate"), Capability("x-ignore-shared", unstable=True),
    Capability("validate-uuid"), Capability("background-snapshot"),
    Capability("zero-copy-send"), Capability("postcopy-preempt"),
    Capability("switchover-ack"), Capability("dirty-limit"), Capability("mapped-ram"),
)
CAPABILITY_NAMES: tuple[str, ...] = tuple(c.name for c in CAPABILITIES)

#: migration/savevm.c should_validate_capability(): the capabilities the configuration
#: record carries and the destination requires to match its own setting.
VALIDATED_CAPABILITIES: tuple[str, ...] = ("x-ignore-shared", "mapped-ram")

#: Capabilities removed before 10.x, which an older stream could name.
REMOVED_CAPABILITIES = {"compress": "9.1", "block": "9.1", "x-multifd": "4.0"}
