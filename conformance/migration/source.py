"""A migration file's bytes, for the reader: a regular file memory-mapped, a pipe or
device spooled to a temporary file first (bounded by the ``pipe-bytes`` limit).

Used by the migration-file commands (conformance/cli/migration.py) and the decoding
benchmark (conformance/bench/migration.py).
"""

from __future__ import annotations

import os


def map_file(path: str):
    """The file's bytes: memory-mapped (pages are read on demand and the parsers let
    the kernel drop them again); a pipe or device is spooled first."""
    import mmap
    import stat

    with open(path, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return _spool(fh)
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty file
            return fh.read()


def _spool(fh):
    """A pipe or device (``<(zcat f.mig.gz)``, /dev/zero) is read once: the magic first
    (anything else is rejected before reading on), then chunk by chunk into a temporary
    file that is mapped, up to the ``pipe-bytes`` limit - never into memory whole."""
    import mmap
    import tempfile

    from conformance.model import limits

    head = fh.read(8)  # magic and version: the file header
    if head[:4] != b"QEVM":
        return head  # the reader names the bad magic (or the missing bytes) at offset 0
    spool = tempfile.TemporaryFile()
    spool.write(head)
    total = len(head)
    while chunk := fh.read(1 << 20):
        total += len(chunk)
        if total > limits.PIPE_LIMIT:
            raise limits.exceeded("pipe-bytes", f"offset {limits.PIPE_LIMIT:#x}",
                                  "a pipe or device longer than the limit", total)
        spool.write(chunk)
    spool.flush()
    with spool:
        return mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ)
