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
    running: bool = False,
) -> Path:
    """Start a paused QEMU, migrate it to ``path``, quit; returns ``path``.

    ``running``: let the guest (the BIOS) run during migration, so RAM is dirtied
    and iterations (with XBZRLE when enabled) follow; such streams are not
    reproducible byte for byte."""
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
        if running:
            qmp.execute("cont")
            time.sleep(0.2)
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


def make_postcopy_stream(path: Path, machine: str = "pc", memory: str = "16", devices=(), extra=(),
                         timeout: float = 30.0) -> Path:
    """A postcopy migration to a real destination QEMU, recorded by a socket proxy.

    Postcopy needs a return path, which ``exec:`` cannot give, so the source migrates
    to a unix socket where a proxy forwards both directions to ``-incoming`` and keeps
    the source-to-destination bytes: OPEN_RETURN_PATH, POSTCOPY_ADVISE, PING, the
    PACKAGED device state (LISTEN, FULL sections, RUN), RAM_DISCARD commands.
    A low bandwidth keeps precopy running until ``migrate-start-postcopy`` lands.
    """
    import socket
    import tempfile
    import threading

    workdir = Path(tempfile.mkdtemp(prefix="vmstate-postcopy-"))
    dst_sock, proxy_sock = workdir / "dst.sock", workdir / "proxy.sock"
    caps = [{"capability": "postcopy-ram", "state": True}]
    dst = _spawn(_qemu(machine, memory, devices, extra) + ["-incoming", "defer"])
    src = _spawn(_qemu(machine, memory, devices, extra))
    recorded = bytearray()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(proxy_sock))
    listener.listen(1)
    listener.settimeout(timeout)

    def pump(reader, writer, keep: bool) -> None:
        try:
            while chunk := reader.recv(1 << 16):
                if keep:
                    recorded.extend(chunk)
                writer.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                writer.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    threads = []
    try:
        dqmp, sqmp = Qmp(dst), Qmp(src)
        dqmp.execute("migrate-set-capabilities", capabilities=caps)
        dqmp.execute("migrate-incoming", uri=f"unix:{dst_sock}")
        sqmp.execute("migrate-set-capabilities", capabilities=caps)
        sqmp.execute("migrate-set-parameters", **{"max-bandwidth": 64 * 1024})

        def accept() -> None:
            conn, _ = listener.accept()
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(dst_sock))
            for args in ((conn, upstream, True), (upstream, conn, False)):
                t = threading.Thread(target=pump, args=args, daemon=True)
                t.start()
                threads.append(t)

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        sqmp.execute("migrate", uri=f"unix:{proxy_sock}")
        sqmp.execute("migrate-start-postcopy")
        sqmp.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        deadline = time.monotonic() + timeout
        while True:
            status = sqmp.execute("query-migrate").get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise QemuError(f"postcopy migration {status}")
            if time.monotonic() > deadline:
                raise QemuError("postcopy migration did not complete in time")
            time.sleep(0.02)
        sqmp.execute("quit")
        src.wait(timeout=10)
        acceptor.join(timeout)
        threads[0].join(timeout)
        path.write_bytes(bytes(recorded))
    finally:
        _stop(src)
        _stop(dst)
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return path
