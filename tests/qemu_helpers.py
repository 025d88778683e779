"""Drive Debian's qemu-system-x86_64 to produce real migration streams for the tests.

QMP over stdio (``-qmp stdio``; ``-display none`` rather than ``-nographic``, which
would also claim stdio).  The guest is paused (``-S``), TCG, tiny RAM and a VM clock
based RTC, so a stream is reproducible byte for byte.  ``migrate "exec:cat > FILE"``,
poll ``query-migrate`` until completed, then ``quit``.
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
) -> Path:
    """Start a paused QEMU, migrate it to ``path``, quit; returns ``path``."""
    binary = qemu_binary()
    if binary is None:
        raise QemuError(skip_reason())
    argv = [
        binary, "-M", machine, "-accel", "tcg", "-m", memory, "-nodefaults", "-display", "none",
        "-nic", "none", "-rtc", "base=2020-01-01T00:00:00,clock=vm", "-S", "-qmp", "stdio",
    ]
    for device in devices:
        argv += ["-device", device]
    argv += list(extra)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        qmp = Qmp(proc)
        if capabilities:
            qmp.execute("migrate-set-capabilities",
                        capabilities=[{"capability": k, "state": v} for k, v in capabilities.items()])
        if parameters:
            qmp.execute("migrate-set-parameters", **parameters)
        qmp.execute("migrate", uri=f"exec:cat > {path}")
        deadline = time.monotonic() + timeout
        while True:
            status = qmp.execute("query-migrate").get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise QemuError(f"migration {status}")
            if time.monotonic() > deadline:
                raise QemuError("migration did not complete in time")
            time.sleep(0.02)
        qmp.execute("quit")
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
    return path
