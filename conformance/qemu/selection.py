"""Which QEMU builds a command runs: ``--engine qemu``, ``--engine qemu:KEY`` and
``--qemu-build KEY|SERIES|PATH``.

An engine label is ``qemu:<build key>`` (``qemu:debian-10.2.2``): one column of the
summary matrix per build, and the label a replay command names.  Without
``--qemu-build`` the builds are the newest cached build of each variant the engine maps
(``engine.VARIANT_SERIES``).  A PATH that is a QEMU source tree without a cached build
is built on demand (``conformance.qemu.build.build_source``, progress on stderr).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

PREFIX = "qemu:"
#: the one command that makes a build (printed when none is cached)
MAKE_ONE = "vmstate-conformance qemu build --debian 10.2"


class SelectionError(Exception):
    """A build that cannot be found or made (the CLI's usage error, exit 2)."""


def is_qemu(engine: str) -> bool:
    return engine == "qemu" or engine.startswith(PREFIX)


def label(info) -> str:
    return f"{PREFIX}{info.key}"


def default_builds() -> list:
    """The newest cached build of each variant the qemu engine maps, in that order."""
    from conformance.qemu import engine as qengine

    out = []
    for variant in qengine.VARIANT_SERIES:
        try:
            info = qengine.build_for_variant(variant)
        except Exception:  # noqa: BLE001 - an unreadable cache is "no build" here
            info = None
        if info is not None:
            out.append(info)
    return out


def resolve(spec: str, *, build_missing: bool = True):
    """The BuildInfo for a build key, a series ("10.2") or a source tree path; a tree
    without a cached build is built when ``build_missing`` (minutes: progress on stderr)."""
    from conformance.qemu import build

    spec = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    info = build.locate(spec)
    if info is not None:
        return info
    path = Path(spec).expanduser()
    if path.is_dir():
        if not build_missing:
            raise SelectionError(f"{spec}: no cached build of this tree (make one: "
                                 f"vmstate-conformance qemu build --source {spec})")
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return build.build_source(path)
        except build.BuildError as exc:
            raise SelectionError(f"{spec}: {exc}") from None
    known = ", ".join(b.key for b in build.available()) or "none cached"
    raise SelectionError(f"{spec}: not a cached QEMU build key, series or source tree "
                         f"(cached: {known}; make one: {MAKE_ONE})")


def builds_for(engines: list[str] | None, specs: list[str] | None) -> list:
    """The builds ``--engine qemu[:KEY]`` and ``--qemu-build`` select, de-duplicated."""
    wanted = list(specs or [])
    wanted += [e[len(PREFIX):] for e in engines or [] if e.startswith(PREFIX)]
    if wanted:
        infos = [resolve(s) for s in wanted]
    else:
        infos = default_builds()
    seen, out = set(), []
    for info in infos:
        if info.key not in seen:
            seen.add(info.key)
            out.append(info)
    return out


def info_for(engine_label: str):
    """The BuildInfo an engine label names (cached builds only)."""
    return resolve(engine_label, build_missing=False)


def campaign_engines(args) -> tuple[list[str], list, str | None]:
    """(engine labels, qemu builds, a one-line note for stderr or None) for ``run``.

    ``--engine`` not given and no PATHS (the CI gate's no-argument run): the qemu engine
    joins when a build is cached, and the note says so (or names the command that makes
    one).  ``--engine qemu`` / ``qemu:KEY`` / ``--qemu-build`` ask for it explicitly: no
    build is then a usage error."""
    from conformance.engines import available

    given = list(getattr(args, "engine", None) or [])
    specs = list(getattr(args, "qemu_build", None) or [])
    explicit = any(is_qemu(e) for e in given) or bool(specs)
    if specs and given and not any(is_qemu(e) for e in given):
        raise SelectionError("--qemu-build applies to the qemu engine: add --engine qemu")
    base = [e for e in given if not is_qemu(e)] if given else available()
    implicit = not given and not specs and not getattr(args, "paths", None)
    if not explicit and not implicit:
        return base, [], None
    builds = builds_for(given, specs)
    if not builds:
        if explicit:
            raise SelectionError(f"--engine qemu: no cached QEMU build (make one: {MAKE_ONE})")
        return base, [], f"qemu engine: no cached QEMU build, not run (make one: {MAKE_ONE})"
    labels = [label(b) for b in builds]
    note = None
    if implicit:
        note = ("qemu engine: real C from the cached build" + ("s " if len(builds) > 1 else " ")
                + ", ".join(f"{b.key} ({b.variant})" for b in builds)
                + " (--engine reference --engine optimized leaves it out)")
    return base + labels, builds, note
