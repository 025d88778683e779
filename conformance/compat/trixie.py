"""Debian 13's QEMU (10.0.x) from a cached trixie root: ``-dump-vmstate`` files and
real migration streams, for ``compat`` on real 7.2 -> 10.0 data and the 10.0 stream
tests.

``.ci/trixie-qemu.sh`` makes the root (``mmdebstrap --variant=apt
--include=qemu-system-x86 trixie DIR``) in the user cache directory, keyed by the
package version, with a ``current`` link; ``$VMSTATE_CONFORMANCE_TRIXIE_ROOT`` points
elsewhere.  QEMU runs under ``chroot`` (``unshare -r chroot`` when not root), its QMP
over stdio as conformance/qemu/streams.py drives the host's QEMU; the files it writes
inside the root are moved out.

    python3 -m conformance.compat.trixie dump FILE      # -M pc -nodefaults -dump-vmstate
    python3 -m conformance.compat.trixie stream FILE    # a paused -M pc guest, migrated
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

QEMU = "/usr/bin/qemu-system-x86_64"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vmstate-conformance" / "trixie-qemu"


def root() -> Path | None:
    """The trixie root with QEMU in it, or None."""
    env = os.environ.get("VMSTATE_CONFORMANCE_TRIXIE_ROOT")
    path = Path(env) if env else cache_dir() / "current" / "root"
    return path if (path / QEMU.lstrip("/")).exists() else None


def skip_reason() -> str | None:
    if root() is None:
        return (f"no trixie root with QEMU 10.0 (looked at {cache_dir()}/current/root); "
                "make it with .ci/trixie-qemu.sh")
    if os.geteuid() != 0 and shutil.which("unshare") is None:
        return "running QEMU in the trixie root needs root or unshare -r"
    return None


def version() -> str | None:
    r = root()
    if r is None:
        return None
    out = subprocess.run(_prefix(r) + [QEMU, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else None


def _prefix(r: Path) -> list[str]:
    if os.geteuid() == 0:
        return ["chroot", str(r)]
    return ["unshare", "-r", "chroot", str(r)]


def _inside(r: Path, suffix: str) -> tuple[str, Path]:
    """A scratch path inside the root: (as QEMU sees it, as we see it)."""
    name = f"/tmp/vmstate-conformance-{uuid.uuid4().hex}{suffix}"
    (r / "tmp").mkdir(exist_ok=True)
    return name, r / name.lstrip("/")


def dump(path: Path, machine: str = "pc") -> Path:
    """``qemu-system-x86_64 -M MACHINE -nodefaults -dump-vmstate`` into ``path``."""
    from conformance.qemu.streams import QemuError

    r = root()
    if r is None:
        raise QemuError(skip_reason())
    inner, outer = _inside(r, ".json")
    proc = subprocess.run(_prefix(r) + [QEMU, "-M", machine, "-nodefaults", "-display",
                                        "none", "-dump-vmstate", inner],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not outer.exists():
        raise QemuError(f"-dump-vmstate failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    shutil.move(str(outer), str(path))
    return Path(path)


def make_stream(path: Path, machine: str = "pc", memory: str = "16",
                devices: tuple[str, ...] = (), timeout: float = 60.0) -> Path:
    """A paused guest migrated to ``path`` (as conformance.qemu.streams.make_stream, with
    the root's QEMU)."""
    from conformance.qemu.streams import QemuError, Qmp, _spawn, _stop, wait_for_migration

    r = root()
    if r is None:
        raise QemuError(skip_reason())
    inner, outer = _inside(r, ".mig")
    argv = _prefix(r) + [
        QEMU, "-M", machine, "-accel", "tcg", "-m", memory, "-nodefaults", "-display",
        "none", "-nic", "none", "-rtc", "base=2020-01-01T00:00:00,clock=vm", "-S",
        "-qmp", "stdio"]
    for device in devices:
        argv += ["-device", device]
    proc = _spawn(argv)
    try:
        qmp = Qmp(proc)
        qmp.execute("migrate", uri=f"exec:cat > {inner}")
        wait_for_migration(qmp, timeout)
        qmp.execute("quit")
        proc.wait(timeout=10)
    finally:
        _stop(proc)
    if not outer.exists():
        raise QemuError("the migration wrote no file")
    shutil.move(str(outer), str(path))
    return Path(path)


def load_in_root(stream: Path, machine: str, devices: tuple[str, ...] = (),
                 memory: str = "16", timeout: float = 60.0) -> str | None:
    """Load a migration file into the root's QEMU (``-incoming defer``, then
    ``migrate-incoming exec:cat``): None when it completes, else what QEMU said."""
    from conformance.qemu.streams import QemuError, Qmp, _spawn, _stop

    r = root()
    if r is None:
        raise QemuError(skip_reason())
    inner, outer = _inside(r, ".mig")
    shutil.copyfile(stream, outer)
    argv = _prefix(r) + [QEMU, "-M", machine, "-accel", "tcg", "-m", memory, "-nodefaults",
                         "-display", "none", "-nic", "none", "-S", "-qmp", "stdio",
                         "-incoming", "defer"]
    for device in devices:
        argv += ["-device", device]
    proc = _spawn(argv)
    said = None
    try:
        qmp = Qmp(proc)
        qmp.execute("migrate-incoming", uri=f"exec:cat {inner}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = qmp.execute("query-migrate")
            status = info.get("status")
            if status == "completed":
                qmp.execute("quit")
                return None
            if status == "failed":
                said = info.get("error-desc")
                break
            time.sleep(0.05)
        else:
            proc.kill()
            return "timed out"
    except (QemuError, BrokenPipeError, OSError) as exc:
        # a failed incoming migration ends the process: its stderr says why (the QMP
        # client reads it into the exception when the process is gone)
        said = str(exc)
    finally:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode(errors="replace")
        try:
            _stop(proc)
        except BrokenPipeError:
            pass
        outer.unlink(missing_ok=True)
    lines = [ln for ln in err.splitlines() if "warning" not in ln]
    if said and not any(said in ln for ln in lines):
        lines.insert(0, said)
    return " / ".join(lines).strip() or "failed"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("dump", "stream"):
        print("usage: python3 -m conformance.compat.trixie dump|stream FILE", file=sys.stderr)
        return 2
    reason = skip_reason()
    if reason:
        print(f"trixie: {reason}", file=sys.stderr)
        return 1
    out = (dump if argv[0] == "dump" else make_stream)(Path(argv[1]))
    print(f"{out} ({version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
