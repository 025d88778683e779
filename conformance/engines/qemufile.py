"""Byte I/O with QEMUFile semantics (migration/qemu-file.c).

What matters for conformance, and is modelled here:

* reads past the end return zero bytes and set the sticky error -EIO
  (qemu_fill_buffer() turns a 0-byte read into -EIO); multi-byte reads are composed of
  byte reads, so a short read yields a value padded with zeros;
* peeking at the end (qemu_peek_byte / qemu_peek_buffer) also tries to fill the buffer
  and so also sets -EIO, while returning 0 / a short count;
* errors are sticky: only the first one is recorded (qemu_file_set_error);
* data already in the buffer stays readable after an error (qemu_peek_byte only
  consults the error when it must refill), which a whole-stream buffer models exactly.
"""

from __future__ import annotations

import struct

EIO = 5
ENOENT = 2
EINVAL = 22
ERANGE = 34

_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")


class QEMUFileReader:
    __slots__ = ("data", "pos", "error", "size")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self.data = bytes(data)
        self.size = len(self.data)
        self.pos = pos
        self.error = 0

    def set_error(self, ret: int) -> None:
        """qemu_file_set_error(): keep the first error only."""
        if ret and not self.error:
            self.error = ret

    # -- reads ---------------------------------------------------------------------------
    def get_byte(self) -> int:
        if self.pos < self.size:
            b = self.data[self.pos]
            self.pos += 1
            return b
        self.set_error(-EIO)
        return 0

    def get_bytes(self, n: int) -> bytes:
        """n bytes as qemu_get_byte() would return them (zero-padded at the end)."""
        avail = self.data[self.pos:self.pos + n]
        self.pos += len(avail)
        if len(avail) < n:
            self.set_error(-EIO)
            return avail + bytes(n - len(avail))
        return avail

    def get_be16(self) -> int:
        return _BE16.unpack(self.get_bytes(2))[0]

    def get_be32(self) -> int:
        return _BE32.unpack(self.get_bytes(4))[0]

    def get_be64(self) -> int:
        return _BE64.unpack(self.get_bytes(8))[0]

    def get_buffer(self, n: int) -> tuple[bytes, int]:
        """qemu_get_buffer(): (bytes read, count actually read)."""
        avail = self.data[self.pos:self.pos + n]
        self.pos += len(avail)
        if len(avail) < n:
            self.set_error(-EIO)
        return avail, len(avail)

    def skip(self, n: int) -> None:
        self.pos = min(self.pos + n, self.size)

    # -- peeks ---------------------------------------------------------------------------
    def peek_byte(self, offset: int = 0) -> int:
        index = self.pos + offset
        if index < self.size:
            return self.data[index]
        self.set_error(-EIO)
        return 0

    def peek_buffer(self, n: int, offset: int = 0) -> bytes:
        """qemu_peek_buffer(): may return fewer than n bytes (and then sets -EIO)."""
        start = self.pos + offset
        got = self.data[start:start + n]
        if len(got) < n:
            self.set_error(-EIO)
        return got

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
