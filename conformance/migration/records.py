"""The model of a migration file: savevm.c / ram.c constants and the record types.

A parsed file (:class:`MigrationFile`) is a tuple of records: :class:`Configuration`,
:class:`Section` (with a body: :class:`RamBody`, ``vmdesc.Body`` or :class:`Opaque`),
:class:`Command` (PACKAGED holds nested records), :class:`Eof`, then the
:class:`VmdescTrailer` and an optional opaque tail.  :mod:`~conformance.migration.reader`
builds it, :mod:`~conformance.migration.writer` re-emits it byte-exact and
:mod:`~conformance.migration.report` renders it.
"""

from __future__ import annotations

import struct

from conformance.errors import printable
from conformance.migration.vmdesc import FormatError
from conformance.plain import Plain

# migration/savevm.h
QEMU_VM_FILE_MAGIC = 0x5145564D
QEMU_VM_FILE_VERSION_COMPAT = 0x00000002
QEMU_VM_FILE_VERSION = 0x00000003
QEMU_VM_EOF = 0x00
QEMU_VM_SECTION_START = 0x01
QEMU_VM_SECTION_PART = 0x02
QEMU_VM_SECTION_END = 0x03
QEMU_VM_SECTION_FULL = 0x04
QEMU_VM_SUBSECTION = 0x05
QEMU_VM_VMDESCRIPTION = 0x06
QEMU_VM_CONFIGURATION = 0x07
QEMU_VM_COMMAND = 0x08
QEMU_VM_SECTION_FOOTER = 0x7E

SECTION_NAMES = {
    QEMU_VM_SECTION_START: "START",
    QEMU_VM_SECTION_PART: "PART",
    QEMU_VM_SECTION_END: "END",
    QEMU_VM_SECTION_FULL: "FULL",
}
RECORD_TYPES = frozenset((QEMU_VM_EOF, 1, 2, 3, 4, QEMU_VM_COMMAND))

# savevm.c enum qemu_vm_cmd and mig_cmd_args[] (fixed payload lengths; -1 = variable)
MIG_CMDS = {
    0: ("INVALID", -1),
    1: ("OPEN_RETURN_PATH", 0),
    2: ("PING", 4),
    3: ("POSTCOPY_ADVISE", -1),
    4: ("POSTCOPY_LISTEN", 0),
    5: ("POSTCOPY_RUN", 0),
    6: ("POSTCOPY_RAM_DISCARD", -1),
    7: ("PACKAGED", 4),
    8: ("ENABLE_COLO", 0),
    9: ("POSTCOPY_RESUME", 0),
    10: ("RECV_BITMAP", -1),
    11: ("SWITCHOVER_START", 0),
}
MIG_CMD_PACKAGED = 7
MAX_PACKAGE_DEPTH = 4

# migration/ram.c RAM_SAVE_FLAG_*
RAM_SAVE_FLAG_ZERO = 0x02
RAM_SAVE_FLAG_MEM_SIZE = 0x04
RAM_SAVE_FLAG_PAGE = 0x08
RAM_SAVE_FLAG_EOS = 0x10
RAM_SAVE_FLAG_CONTINUE = 0x20
RAM_SAVE_FLAG_XBZRLE = 0x40
RAM_SAVE_FLAG_HOOK = 0x80
RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100
RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200
RAM_WITH_BLOCK = RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_COMPRESS_PAGE | RAM_SAVE_FLAG_XBZRLE
RAM_FLAG_NAMES = {
    RAM_SAVE_FLAG_ZERO: "ZERO",
    RAM_SAVE_FLAG_MEM_SIZE: "MEM_SIZE",
    RAM_SAVE_FLAG_PAGE: "PAGE",
    RAM_SAVE_FLAG_EOS: "EOS",
    RAM_SAVE_FLAG_XBZRLE: "XBZRLE",
    RAM_SAVE_FLAG_COMPRESS_PAGE: "COMPRESS_PAGE",
    RAM_SAVE_FLAG_MULTIFD_FLUSH: "MULTIFD_FLUSH",
}
DEFAULT_PAGE_SIZE = 4096  # x86 TARGET_PAGE_SIZE, used only when nothing in the file says


# wire layouts shared by the reader and the writer
FILE_HEADER = struct.Struct(">II")
BE16 = struct.Struct(">H")
BE32 = struct.Struct(">I")
BE64 = struct.Struct(">Q")
CMD_HEADER = struct.Struct(">BHH")
SECTION_IDS = struct.Struct(">II")  # instance_id, version_id

MigFileError = FormatError


# --------------------------------------------------------------------------- model


class Opaque(Plain):
    """Bytes kept verbatim; ``reason`` says why they could not be parsed further.
    As a record (in a record list), ``offset`` says where it starts."""

    __slots__ = ("data", "reason", "offset")
    _defaults = {"offset": None}


class ConfigSubsection(Plain):
    """One subsection of the configuration record (savevm.c vmstate_configuration).

    ``value``: target-page-bits -> int; capabilities -> tuple of names (bytes);
    uuid -> 16 bytes; a subsection this module does not know -> ``vmdesc.Body``,
    decoded through the vmdesc's "configuration" entry (QEMU 8+ streams).
    """

    __slots__ = ("name", "version", "value")  # bytes, int, Any


class Configuration(Plain):
    __slots__ = ("offset", "length", "machine", "subsections")  # int, int, bytes, tuple
    _defaults = {"subsections": ()}

    def get(self, name: str):
        for sub in self.subsections:
            if sub.name == name.encode():
                return sub.value
        return None


class RamBlock(Plain):
    """name (bytes), used_length; page_size: be64, only for postcopy with a non-host
    page size; mr_addr: be64, only with x-ignore-shared."""

    __slots__ = ("name", "used_length", "page_size", "mr_addr")
    _defaults = {"page_size": None, "mr_addr": None}


class RamRecord(Plain):
    """One ram.c record: be64 (address | flags), [counted block idstr], payload.

    payload: ZERO -> fill byte (int); PAGE -> the page (bytes/memoryview);
    MEM_SIZE -> tuple[RamBlock]; COMPRESS_PAGE -> bytes; XBZRLE -> (flag, bytes);
    EOS / MULTIFD_FLUSH -> None.
    """

    __slots__ = ("offset", "word", "block", "payload")

    def __init__(self, offset: int, word: int, block: bytes | None, payload) -> None:
        self.offset, self.word, self.block, self.payload = offset, word, block, payload


class ZeroRun(Plain):
    """Consecutive ZERO|CONTINUE records (9 bytes each: be64 address|0x22, fill byte),
    held column-wise: ``words``, the be64 (address | 0x22) of each record back to back,
    and ``fills``, the fill byte of each record.  This is how an idle guest's RAM
    looks, and keeping it as columns keeps the parse in C."""

    __slots__ = ("offset", "words", "fills")

    def word(self, index: int) -> int:
        return int.from_bytes(self.words[8 * index : 8 * index + 8], "big")

    def __len__(self) -> int:
        return len(self.fills)


class PageRun(Plain):
    """Consecutive PAGE|CONTINUE records (be64 address|0x28, then one target page):
    ``words``, the be64 of each record back to back, and the pages where they lie in
    ``source`` (a memoryview of the file's bytes, not compared) at
    ``offset + i * (8 + page_size) + 8``.  Found and split with strided slicing, so a
    guest full of data is parsed without a Python step per page."""

    __slots__ = ("offset", "words", "page_size", "source")
    _no_compare = ("source",)

    def __len__(self) -> int:
        return len(self.words) // 8

    def word(self, index: int) -> int:
        return int.from_bytes(self.words[8 * index : 8 * index + 8], "big")

    def page(self, index: int):
        at = self.offset + index * (8 + self.page_size) + 8
        return self.source[at : at + self.page_size]


class RamBody(Plain):
    __slots__ = ("records", "page_size")  # tuple, int


class Section(Plain):
    """idstr, instance_id, version_id: START / FULL only (None for PART / END);
    body: RamBody | vmdesc.Body | Opaque."""

    __slots__ = ("offset", "type", "section_id", "idstr", "instance_id", "version_id", "body",
                 "body_offset", "body_length", "footer")

    @property
    def name(self) -> str:
        return SECTION_NAMES[self.type]

    @property
    def header_length(self) -> int:
        return self.body_offset - self.offset

    @property
    def label(self) -> str:
        """The idstr for messages and listings (control characters escaped)."""
        if self.idstr is None:
            return f"section {self.section_id}"
        text = self.idstr.decode("utf-8", "replace")
        return printable(text)


class Command(Plain):
    """length: the be16 payload length; args: per command (reader._command_args);
    records: PACKAGED's records."""

    __slots__ = ("offset", "cmd", "length", "args", "records", "package_length")
    _defaults = {"records": (), "package_length": 0}

    @property
    def name(self) -> str:
        return MIG_CMDS.get(self.cmd, (f"UNKNOWN({self.cmd})",))[0]


class Eof(Plain):
    __slots__ = ("offset",)


class VmdescTrailer(Plain):
    __slots__ = ("offset", "length", "vmdesc")  # int, be32 on the wire, Vmdesc


class MigrationFile(Plain):
    """records: the parsed records; tail: bytes after them (Opaque or None); footers:
    None when no section was seen; incomplete: why QEMU could never load the whole
    stream (it ends inside a section, or before its EOF record), as one line with the
    offset, None for a complete stream (the records up to there are still listed;
    decode and verify refuse it)."""

    __slots__ = ("size", "version", "records", "vmdesc", "tail", "page_size", "footers", "notes",
                 "incomplete")
    _defaults = {"notes": (), "incomplete": None}

    def sections(self):
        return [r for r in walk(self.records) if isinstance(r, Section)]

    @property
    def configuration(self) -> Configuration | None:
        for record in self.records:
            if isinstance(record, Configuration):
                return record
        return None


def walk(records):
    """Every record, descending into PACKAGED commands."""
    for record in records:
        yield record
        if isinstance(record, Command) and record.records:
            yield from walk(record.records)


# --------------------------------------------------------------------------- memory-mapped input

RELEASE_STEP = 2 << 20
#: released below ``start`` too: touching one page maps its neighbours as well (the
#: kernel's fault-around, 64 KiB by default), pages of a range released before
RELEASE_MARGIN = 256 << 10


def release_pages(data, start: int, stop: int) -> None:
    """Let the kernel drop already-parsed pages of a memory-mapped file (they are
    clean file pages, read back on demand), so the peak RSS stays bounded."""
    madvise = getattr(data, "madvise", None)
    if madvise is None:
        return
    import mmap

    begin = max(0, start - start % mmap.PAGESIZE - RELEASE_MARGIN)
    if stop > begin:
        try:
            madvise(mmap.MADV_DONTNEED, begin, stop - begin)
        except (OSError, ValueError):
            pass
