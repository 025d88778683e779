"""Capabilities in a migration stream's configuration record, against the model.

THE ONLY MODULE OF conformance.params THAT IMPORTS THE REST OF conformance: it uses
``conformance.migration.migfile`` (the stream decoder) to get the configuration record.  If that
module moves, only the import in ``capabilities_of`` changes.

What QEMU does (migration/savevm.c, read for this model, not copied):

* the source sends, in the ``configuration/capabilities`` subsection, the names of the
  capabilities that are enabled *and* should_validate_capability() (x-ignore-shared,
  mapped-ram in 10.x); the subsection is absent when there are none;
* the destination's get_capability() looks each name up in MigrationCapability and fails
  the load with "Received unknown capability %s" for a name it does not know;
* configuration_validate_capabilities() then compares, for every validated capability,
  the stream's state with its own and reports each mismatch as
  "Capability %s is %s, but received capability is %s" (on/off), failing the load.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .schema import CAPABILITY_NAMES, REMOVED_CAPABILITIES, VALIDATED_CAPABILITIES


@attrs.frozen
class Finding:
    level: str  # "error" (the destination fails the load) | "note"
    capability: str
    message: str


def _name(n) -> str:
    if isinstance(n, bytes):
        return n.decode("latin-1")
    return str(n)


def check_capabilities(names: Iterable, destination: Iterable[str] | None = None) -> list[Finding]:
    """Check the capability names a stream's configuration record carries.

    ``destination``: the capabilities enabled on the receiving QEMU (None: skip the
    cross-check of the validated ones)."""
    out: list[Finding] = []
    received: list[str] = []
    for raw in names:
        name = _name(raw)
        if name not in CAPABILITY_NAMES:
            why = ""
            if name in REMOVED_CAPABILITIES:
                why = f" (removed in QEMU {REMOVED_CAPABILITIES[name]})"
            out.append(Finding("error", name, f"Received unknown capability {name}{why}"))
            # get_capability() fails the whole load at the first unknown name
            return out
        received.append(name)
        if name not in VALIDATED_CAPABILITIES:
            out.append(Finding("note", name,
                               f"{name} is not one QEMU 10.x sends (should_validate_capability"
                               f" is false for it); the destination ignores it"))
    if destination is not None:
        dest = set(destination)
        for cap in VALIDATED_CAPABILITIES:  # configuration_validate_capabilities()
            src_on, dst_on = cap in received, cap in dest
            if src_on != dst_on:
                out.append(Finding(
                    "error", cap, f"Capability {cap} is {'on' if dst_on else 'off'}, "
                                  f"but received capability is {'on' if src_on else 'off'}"))
    return out


def capabilities_of(data: bytes) -> tuple[bytes, ...] | None:
    """The capability names in a migration file's configuration record; () when the record
    has no capabilities subsection, None when the stream has no configuration record."""
    from conformance.migration import migfile  # the one import of the rest of conformance

    mf = migfile.read_migration(data, decode_state=False)
    for rec in mf.records:
        if isinstance(rec, migfile.Configuration):
            return tuple(rec.get("configuration/capabilities") or ())
    return None


def check_stream(data: bytes, destination: Iterable[str] | None = None) -> list[Finding]:
    names = capabilities_of(data)
    if names is None:
        return [Finding("note", "", "no configuration record (send-configuration=off)")]
    return check_capabilities(names, destination)
