"""Drive Debian's qemu-system-x86_64 to produce real migration streams for the tests.

The generic part (QMP, ``make_stream``, the RAM-heavy stream) lives in
conformance/qemu/streams.py, which the benchmark uses too; the postcopy recorder is
only the tests'.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

from conformance.qemu.streams import (  # noqa: F401 - re-exported for the tests
    MANY_DEVICES,
    QEMU,
    QemuError,
    Qmp,
    _qemu,
    _spawn,
    _stop,
    make_ram_heavy_stream,
    make_stream,
    qemu_binary,
    skip_reason,
    wait_for_migration,
)


def make_postcopy_stream(path: Path, machine: str = "pc", memory: str = "16", devices=(), extra=(),
                         timeout: float = 30.0) -> Path:
    """A postcopy migration to a real destination QEMU, recorded by a socket proxy.

    Postcopy needs a return path, which ``exec:`` cannot give, so the source migrates
    to a unix socket where a proxy forwards both directions to ``-incoming`` and keeps
    the source-to-destination bytes: OPEN_RETURN_PATH, POSTCOPY_ADVISE, PING, the
    PACKAGED device state (LISTEN, FULL sections, RUN), RAM_DISCARD commands.
    A low bandwidth keeps precopy running until ``migrate-start-postcopy`` lands.
    """
    import tempfile

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
        wait_for_migration(sqmp, timeout, "postcopy migration")
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
