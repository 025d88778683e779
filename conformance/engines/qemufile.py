"""Byte I/O with QEMUFile semantics (migration/qemu-file.c).

The reader models QEMUFile's input buffer itself, because what a failed load leaves in
the destination depends on it:

* ``IO_BUF_SIZE`` (32 KiB) bytes of buffer, refilled by qemu_fill_buffer(), which first
  moves the unread bytes to the front (memmove) and then reads from the channel (a
  memory channel: as much as fits, or what is left).  A read of 0 bytes sets the sticky
  error -EIO.  QEMU 8.0+ does not read the channel once an error is set; 7.2 does
  (``refill_after_error``).
* qemu_peek_byte / qemu_get_byte / qemu_file_skip as in qemu-file.c: reads past the end
  return 0, skip does nothing past the end, multi-byte reads are byte reads.
* qemu_peek_buffer keeps the index it computed *before* a refill that failed: after the
  memmove the bytes it hands back come from the stale offset of the moved buffer (the
  destination of a buffer read that hits the end of the stream gets those bytes, as QEMU
  7.2 and 10.2 do); qemu_get_buffer copies whatever peek returns, chunk by chunk.
* errors are sticky: only the first one is recorded (qemu_file_set_error).
"""

from __future__ import annotations

import struct

EIO = 5
ENOENT = 2
EINVAL = 22
ERANGE = 34
IO_BUF_SIZE = 32768

_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")


class QEMUFileReader:
    """An input QEMUFile over a memory channel holding ``data``."""

    __slots__ = ("data", "size", "error", "buf", "buf_index", "buf_size", "chan",
                 "refill_after_error")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, *,
                 refill_after_error: bool = False) -> None:
        self.data = bytes(data)
        self.size = len(self.data)
        self.error = 0
        self.buf = bytearray(IO_BUF_SIZE)
        self.buf_index = 0
        self.buf_size = 0
        self.chan = pos  # the channel's read offset
        self.refill_after_error = refill_after_error

    @property
    def pos(self) -> int:
        """Bytes of the stream consumed so far."""
        return self.chan - (self.buf_size - self.buf_index)

    def set_error(self, ret: int) -> None:
        """qemu_file_set_error(): keep the first error only."""
        if ret and not self.error:
            self.error = ret

    def _fill(self) -> int:
        """qemu_fill_buffer()."""
        pending = self.buf_size - self.buf_index
        if pending > 0 and self.buf_index:
            self.buf[0:pending] = self.buf[self.buf_index:self.buf_size]
        self.buf_index = 0
        self.buf_size = pending
        if self.error and not self.refill_after_error:
            return 0
        n = min(IO_BUF_SIZE - pending, self.size - self.chan)
        if n <= 0:
            self.set_error(-EIO)  # a 0-byte read from the channel
            return 0
        self.buf[pending:pending + n] = self.data[self.chan:self.chan + n]
        self.chan += n
        self.buf_size += n
        return n

    # -- reads ---------------------------------------------------------------------------
    def peek_byte(self, offset: int = 0) -> int:
        index = self.buf_index + offset
        if index >= self.buf_size:
            self._fill()
            index = self.buf_index + offset
            if index >= self.buf_size:
                return 0
        return self.buf[index]

    def skip(self, n: int) -> None:
        """qemu_file_skip(): nothing happens when fewer than n bytes are buffered."""
        if self.buf_index + n <= self.buf_size:
            self.buf_index += n

    def get_byte(self) -> int:
        index = self.buf_index
        if index < self.buf_size:
            self.buf_index = index + 1
            return self.buf[index]
        b = self.peek_byte(0)
        self.skip(1)
        return b

    def get_bytes(self, n: int) -> bytes:
        """n bytes as n qemu_get_byte() calls return them (zeros past the end)."""
        index = self.buf_index
        if index + n <= self.buf_size:
            self.buf_index = index + n
            return bytes(self.buf[index:index + n])
        return bytes(self.get_byte() for _ in range(n))

    def get_be16(self) -> int:
        return _BE16.unpack(self.get_bytes(2))[0]

    def get_be32(self) -> int:
        return _BE32.unpack(self.get_bytes(4))[0]

    def get_be64(self) -> int:
        return _BE64.unpack(self.get_bytes(8))[0]

    def peek_buffer(self, n: int, offset: int = 0) -> bytes:
        """qemu_peek_buffer(): up to n bytes at ``offset``; fewer at the end of the
        stream (the refill then sets -EIO), taken at the index computed before a refill
        that failed."""
        index = self.buf_index + offset
        pending = self.buf_size - index
        while pending < n:
            if self._fill() <= 0:
                break  # index and pending keep their values from before the refill
            index = self.buf_index + offset
            pending = self.buf_size - index
        if pending <= 0:
            return b""
        return bytes(self.buf[index:index + min(n, pending)])

    def get_buffer(self, n: int) -> tuple[bytes, int]:
        """qemu_get_buffer(): (the bytes copied, their count)."""
        index = self.buf_index
        if index + n <= self.buf_size:
            self.buf_index = index + n
            return bytes(self.buf[index:index + n]), n
        out = bytearray()
        pending = n
        while pending > 0:
            chunk = self.peek_buffer(min(pending, IO_BUF_SIZE), 0)
            if not chunk:
                break
            out += chunk
            self.skip(len(chunk))
            pending -= len(chunk)
        return bytes(out), len(out)

    @property
    def at_eof(self) -> bool:
        return self.pos >= self.size


class QEMUFileWriter:
    __slots__ = ("buf", "error")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.error = 0

    def set_error(self, ret: int) -> None:
        if ret and not self.error:
            self.error = ret

    def put_byte(self, v: int) -> None:
        self.buf.append(v & 0xFF)

    def put_be16(self, v: int) -> None:
        self.buf += _BE16.pack(v & 0xFFFF)

    def put_be32(self, v: int) -> None:
        self.buf += _BE32.pack(v & 0xFFFFFFFF)

    def put_be64(self, v: int) -> None:
        self.buf += _BE64.pack(v & 0xFFFFFFFFFFFFFFFF)

    def put_buffer(self, data: bytes) -> None:
        self.buf += data

    @property
    def transferred(self) -> int:
        """qemu_file_transferred(): bytes written so far."""
        return len(self.buf)

    def getvalue(self) -> bytes:
        return bytes(self.buf)
