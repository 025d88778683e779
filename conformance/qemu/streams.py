"""Real migration streams from Debian's qemu-system-x86_64, driven over QMP.

QMP over stdio (``-qmp stdio``; ``-display none`` rather than ``-nographic``, which
would also claim stdio).  The guest is paused (``-S``), TCG, tiny RAM and a VM clock
based RTC, so a stream is reproducible byte for byte.  ``migrate "exec:cat > FILE"``,
poll ``query-migrate`` until completed, then ``quit``.  The tests (tests/qemu_helpers.py)
and ``bench --analyze-migration --ram-heavy`` make their streams with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

QEMU = os.environ.get("VMSTATE_CONFORMANCE_QEMU", "/usr/bin/qemu-system-x86_64")


def qemu_binary() -> str | None:
    if os.path.exists(QEMU) and os.access(QEMU, os.X_OK):
        return QEMU
    return shutil.which("qemu-system-x86_64")


def skip_reason() -> str | None:
    if qemu_binary() is None:
        return (f"qemu-system-x86_64 not found (looked at {QEMU} and PATH); "
                "install Debian's qemu-system-x86 to run the real-QEMU tests")
    return None


class QemuError(RuntimeError):
    pass


class Qmp:
    """A tiny QMP client over the child's stdin/stdout (events are skipped)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        greeting = self._read()
        if "QMP" not in greeting:
            raise QemuError(f"no QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise QemuError(f"QEMU exited: {err.strip()[:500]}")
        return json.loads(line)

    def execute(self, command: str, **arguments) -> object:
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise QemuError(f"{command}: {reply['error'].get('desc')}")
            return reply.get("return")


def make_stream(
    path: Path,
    machine: str = "pc",
    devices: tuple[str, ...] = (),
    memory: str = "16",
    capabilities: dict[str, bool] | None = None,
    parameters: dict | None = None,
    extra: tuple[str, ...] = (),
    timeout: float = 30.0,
    running: bool = False,
) -> Path:
    """Start a paused QEMU, migrate it to ``path``, quit; returns ``path``.

    ``running``: let the guest (the BIOS) run during migration, so RAM is dirtied
    and iterations (with XBZRLE when enabled) follow; such streams are not
    reproducible byte for byte."""
    if qemu_binary() is None:
        raise QemuError(skip_reason())
    proc = _spawn(_qemu(machine, memory, devices, extra))
    try:
        qmp = Qmp(proc)
        if capabilities:
            qmp.execute("migrate-set-capabilities",
                        capabilities=[{"capability": k, "state": v} for k, v in capabilities.items()])
        if parameters:
            qmp.execute("migrate-set-parameters", **parameters)
        if running:
            qmp.execute("cont")
            time.sleep(0.2)
        qmp.execute("migrate", uri=f"exec:cat > {path}")
        wait_for_migration(qmp, timeout)
        qmp.execute("quit")
        proc.wait(timeout=10)
    finally:
        _stop(proc)
    return path


def wait_for_migration(qmp: Qmp, timeout: float, what: str = "migration") -> None:
    """Poll ``query-migrate`` until completed; QemuError when it fails or times out."""
    deadline = time.monotonic() + timeout
    while True:
        status = qmp.execute("query-migrate").get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise QemuError(f"{what} {status}")
        if time.monotonic() > deadline:
            raise QemuError(f"{what} did not complete in time")
        time.sleep(0.02)


def _qemu(machine: str, memory: str, devices, extra) -> list[str]:
    argv = [
        qemu_binary(), "-M", machine, "-accel", "tcg", "-m", memory, "-nodefaults", "-display", "none",
        "-nic", "none", "-rtc", "base=2020-01-01T00:00:00,clock=vm", "-S", "-qmp", "stdio",
    ]
    for device in devices:
        argv += ["-device", device]
    return argv + list(extra)


def _spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


#: the ``pc-many-devices`` configuration of tests/test_real_qemu.py (a 1.6 MB stream)
MANY_DEVICES = ("e1000", "virtio-net-pci", "isa-serial", "piix3-usb-uhci", "usb-kbd",
                "virtio-balloon", "virtio-rng-pci", "i6300esb", "ich9-intel-hda", "hda-duplex",
                "rtl8139", "VGA", "ahci", "virtio-scsi-pci", "lsi53c895a")


def make_ram_heavy_stream(path: Path, data_mib: int = 200, memory: str = "256",
                          timeout: float = 240.0) -> Path:
    """A RAM-heavy stream: ``data_mib`` MiB of random bytes loaded into the guest's RAM
    at 1 MiB with ``-device loader`` (force-raw), so that RAM migrates as PAGE records
    rather than zero pages (200 MiB: a 210 MB stream).  The random file is written next
    to ``path`` and removed afterwards."""
    blob = Path(path).with_suffix(".random.bin")
    try:
        with open(blob, "wb") as fh:
            for _ in range(data_mib):
                fh.write(os.urandom(1 << 20))
        return make_stream(Path(path), memory=memory, timeout=timeout,
                           extra=("-device", f"loader,file={blob},addr=0x100000,force-raw=on"))
    finally:
        blob.unlink(missing_ok=True)
