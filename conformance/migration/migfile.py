"""Whole migration files: framing model, reader and byte-exact writer.

Models the stream QEMU writes and reads in migration/savevm.c (qemu_savevm_state_header,
qemu_savevm_state_complete_precopy*, qemu_loadvm_state / qemu_loadvm_state_main,
loadvm_process_command), with RAM section bodies parsed per migration/ram.c
(ram_save_setup / ram_save_iterate / ram_load_precopy).  No QEMU code is reproduced.

``read_migration(data)`` parses every byte into records:

* ``Configuration``  the 0x07 record: machine type, then target-page-bits /
  capabilities / uuid subsections (savevm.c vmstate_configuration);
* ``Section``        START / PART / END / FULL with its header, a body and an optional
  footer.  Bodies are ``RamBody`` (``RamRecord``s, and ``ZeroRun``/``PageRun`` columns
  for runs of pages), ``vmdesc.Body`` (device state decoded through the vmdesc) or
  ``Opaque`` (bytes kept verbatim, with the reason);
* ``Command``        0x08 records, each command's payload parsed; PACKAGED holds the
  nested records of its package;
* ``Eof``, the ``VmdescTrailer`` (0x06, be32 length, JSON) and, when present, an
  ``Opaque`` tail (bytes QEMU's loader would never read).

``encode(mf)`` re-emits the file from that model.  Nothing is copied from the input
except what the model says is opaque.
"""

from __future__ import annotations

import re
import struct
from mmap import mmap as mmap_type
from typing import Any

import attrs

from conformance.migration import vmdesc as _vmdesc
from conformance.migration.vmdesc import Body, FormatError, Vmdesc

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
_RECORD_TYPES = frozenset((QEMU_VM_EOF, 1, 2, 3, 4, QEMU_VM_COMMAND))

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
_RAM_WITH_BLOCK = RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_COMPRESS_PAGE | RAM_SAVE_FLAG_XBZRLE
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

_FULL_HEADER = re.compile(rb"\x04\x00\x00[\x00-\xff][\x00-\xff][\x01-\xff]")
_IDSTR_CHARS = re.compile(rb"[A-Za-z0-9_./:@ -]+")
_HEADER = struct.Struct(">II")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
_CMD = struct.Struct(">BHH")
_IDS = struct.Struct(">II")  # instance_id, version_id

MigFileError = FormatError


# --------------------------------------------------------------------------- model


@attrs.frozen
class Opaque:
    """Bytes kept verbatim; ``reason`` says why they could not be parsed further.
    As a record (in a record list), ``offset`` says where it starts."""

    data: bytes
    reason: str
    offset: int | None = None


@attrs.frozen
class ConfigSubsection:
    """One subsection of the configuration record (savevm.c vmstate_configuration).

    ``value``: target-page-bits -> int; capabilities -> tuple of names (bytes);
    uuid -> 16 bytes; a subsection this module does not know -> ``vmdesc.Body``,
    decoded through the vmdesc's "configuration" entry (QEMU 8+ streams).
    """

    name: bytes
    version: int
    value: Any


@attrs.frozen
class Configuration:
    offset: int
    length: int
    machine: bytes
    subsections: tuple = ()

    def get(self, name: str):
        for sub in self.subsections:
            if sub.name == name.encode():
                return sub.value
        return None


@attrs.frozen(slots=True)
class RamBlock:
    name: bytes
    used_length: int
    page_size: int | None = None  # be64, only for postcopy with a non-host page size
    mr_addr: int | None = None  # be64, only with x-ignore-shared


@attrs.frozen(slots=True)
class RamRecord:
    """One ram.c record: be64 (address | flags), [counted block idstr], payload.

    payload: ZERO -> fill byte (int); PAGE -> the page (bytes/memoryview);
    MEM_SIZE -> tuple[RamBlock]; COMPRESS_PAGE -> bytes; XBZRLE -> (flag, bytes);
    EOS / MULTIFD_FLUSH -> None.
    """

    offset: int
    word: int
    block: bytes | None
    payload: Any


@attrs.frozen(slots=True)
class ZeroRun:
    """Consecutive ZERO|CONTINUE records (9 bytes each: be64 address|0x22, fill byte),
    held column-wise: the be64 words and the fill bytes.  This is how
    an idle guest's RAM looks, and keeping it as columns keeps the parse in C."""

    offset: int
    words: bytes  # the be64 (address | 0x22) of each record, back to back
    fills: bytes  # the fill byte of each record

    def word(self, index: int) -> int:
        return int.from_bytes(self.words[8 * index : 8 * index + 8], "big")

    def __len__(self) -> int:
        return len(self.fills)


@attrs.frozen(slots=True)
class PageRun:
    """Consecutive PAGE|CONTINUE records (be64 address|0x28, then one target page):
    the words column, and the pages where they lie in ``source`` (the file's bytes)
    at ``offset + i * (8 + page_size) + 8``.  Found and split with strided slicing,
    so a guest full of data is parsed without a Python step per page."""

    offset: int
    words: bytes  # the be64 of each record, back to back
    page_size: int
    source: Any = attrs.field(eq=False, repr=False)  # memoryview of the file

    def __len__(self) -> int:
        return len(self.words) // 8

    def word(self, index: int) -> int:
        return int.from_bytes(self.words[8 * index : 8 * index + 8], "big")

    def page(self, index: int):
        at = self.offset + index * (8 + self.page_size) + 8
        return self.source[at : at + self.page_size]


@attrs.frozen
class RamBody:
    records: tuple
    page_size: int


@attrs.frozen
class Section:
    offset: int
    type: int
    section_id: int
    idstr: bytes | None  # START / FULL only
    instance_id: int | None
    version_id: int | None
    body: Any  # RamBody | vmdesc.Body | Opaque
    body_offset: int
    body_length: int
    footer: bool

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
        return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


@attrs.frozen
class Command:
    offset: int
    cmd: int
    length: int  # be16 payload length
    args: Any  # per command, see _parse_command
    records: tuple = ()  # PACKAGED: the package's records
    package_length: int = 0

    @property
    def name(self) -> str:
        return MIG_CMDS.get(self.cmd, (f"UNKNOWN({self.cmd})",))[0]


@attrs.frozen
class Eof:
    offset: int


@attrs.frozen
class VmdescTrailer:
    offset: int
    length: int  # be32 on the wire
    vmdesc: Vmdesc


@attrs.frozen
class MigrationFile:
    size: int
    version: int
    records: tuple
    vmdesc: VmdescTrailer | None
    tail: Opaque | None  # bytes after the records that were parsed
    page_size: int
    footers: bool | None  # None: no section seen
    notes: tuple = ()

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


# --------------------------------------------------------------------------- reading


def read_migration(data: bytes, *, decode_state: bool = True, vmdesc: Vmdesc | None = None) -> MigrationFile:
    """Parse a migration file; FormatError (one line, with the offset) on bad input.

    ``vmdesc`` decodes device state of a file that has no trailer of its own (a
    postcopy stream, suppress-vmdesc) with the vmdesc of another stream of the same
    machine configuration; a trailer in the file itself always wins.
    """
    if not isinstance(data, (bytes, mmap_type)):
        data = bytes(data)
    if len(data) < 8:
        raise FormatError(f"offset 0x0: truncated file header ({len(data)} bytes, need 8)")
    magic, version = _HEADER.unpack_from(data, 0)
    if magic != QEMU_VM_FILE_MAGIC:
        raise FormatError(f"offset 0x0: bad magic {magic:#010x} (a QEMU migration file starts with 0x5145564d 'QEVM')")
    if version == QEMU_VM_FILE_VERSION_COMPAT:
        raise FormatError("offset 0x4: SaveVM v2 format is obsolete")
    if version != QEMU_VM_FILE_VERSION:
        raise FormatError(f"offset 0x4: unsupported file version {version} (QEMU reads version 3)")
    trailer = _find_vmdesc(data)
    parsed = _Parser(data, trailer, decode_state, vmdesc).run()
    if trailer is None and parsed.vmdesc is not None and decode_state:
        # The trailer was found only structurally, after EOF: parse again with it.
        parsed = _Parser(data, parsed.vmdesc, decode_state).run()
    return parsed


def vmdesc_of(data: bytes) -> Vmdesc:
    """The vmdesc trailer of a migration file (for decoding another file with it)."""
    trailer = _find_vmdesc(bytes(data))
    if trailer is None:
        raise FormatError("no vmdesc trailer at the end of the file")
    return trailer.vmdesc


def _find_vmdesc(data: bytes) -> VmdescTrailer | None:
    """The vmdesc trailer at the end of the file, if any.

    The JSON holds no raw NUL byte (json-writer.c escapes control characters), so the
    trailer's 0x06 sits within a few bytes before the last NUL (the EOF byte or a zero
    byte of the be32 length).  The length must reach exactly to the end of the file.
    """
    last_nul = data.rfind(b"\0")
    if last_nul < 0:
        return None
    for pos in range(max(8, last_nul - 4), last_nul + 2):
        if pos + 6 <= len(data) and data[pos] == QEMU_VM_VMDESCRIPTION and data[pos + 5] == 0x7B:
            (length,) = _BE32.unpack_from(data, pos + 1)
            if pos + 5 + length == len(data):
                text = data[pos + 5 :]
                return VmdescTrailer(pos, length, _vmdesc.parse_vmdesc(text, f"vmdesc JSON at offset {pos + 5:#x}"))
    return None


# 0 where a byte's low nibble is clear (bits 8..11 of a 4 KiB page's flag field), else 1
_NIBBLE_SET = bytes(0 if b & 0x0F == 0 else 1 for b in range(256))


def _run_length(data: bytes, pos: int, end: int, stride: int, flag: bytes, progress=None,
                max_window: int = 1 << 20) -> int:
    """How many records of ``stride`` bytes whose be64 has low 12 bits ``0x0`` +
    ``flag`` (4 KiB pages: byte 7 == flag, low nibble of byte 6 clear) start at ``pos``.

    Checked column-wise on growing windows with strided C-level slicing, which reads
    only the flag bytes, never the pages between them."""
    count, window = 0, 64
    while True:
        take = min(window, (end - pos) // stride - count)
        if take <= 0:
            return count
        start = pos + stride * count
        stop = start + stride * take
        flags = data[start + 7 : stop : stride]
        good = len(flags) - len(flags.lstrip(flag))
        if good:
            bad = data[start + 6 : start + stride * good : stride].translate(_NIBBLE_SET).find(b"\x01")
            if bad != -1:
                good = bad
        count += good
        if good < take:
            return count
        if progress is not None:
            progress(pos + stride * count)
        window = min(window * 4, max_window)


def _words_column(data, start: int, count: int, stride: int) -> bytes:
    words = bytearray(8 * count)
    stop = start + stride * count
    for k in range(8):
        words[k::8] = data[start + k : stop : stride]
    return bytes(words)


def _zero_run_from(data: bytes, start: int, count: int) -> ZeroRun:
    """Split 9-byte records into columns with slice copies (no per-record Python)."""
    return ZeroRun(start, _words_column(data, start, count, 9), data[start + 8 : start + 9 * count : 9])


def _page_run_chunks(run: PageRun, out) -> None:
    words, pages, step = run.words, run.source, 8 + run.page_size
    at = run.offset + 8
    for i in range(0, len(words), 8):
        out.append(words[i : i + 8])
        out.append(pages[at : at + run.page_size])
        at += step


def _zero_run_bytes(run: ZeroRun) -> bytes:
    out = bytearray(9 * len(run.fills))
    for k in range(8):
        out[k::9] = run.words[k::8]
    out[8::9] = run.fills
    return bytes(out)


class _Parser:
    def __init__(self, data: bytes, trailer: VmdescTrailer | None, decode_state: bool,
                 external: Vmdesc | None = None) -> None:
        self.data = data
        self.view = memoryview(data)
        self.trailer = trailer
        self.external = external if trailer is None else None
        desc = trailer.vmdesc if trailer else self.external
        self.devices = desc.device_map() if (desc and decode_state) else {}
        self.vmdesc_config = desc.configuration if desc else None
        self.decoder = _vmdesc.Decoder(data)
        self.handlers: dict[int, tuple[bytes, int, int]] = {}
        self.footers: bool | None = None
        self.page_size = desc.page_size if desc and desc.page_size else None
        self.page_size_known = self.page_size is not None
        self.ignore_shared = False
        self.mapped_ram = False
        self.postcopy_summary: int | None = None
        self.notes: list[str] = []
        self.tail: Opaque | None = None
        self.released = 0  # file pages before this offset were handed back (mmap)

    # -- small readers with located errors
    def _need(self, pos: int, n: int, end: int, what: str) -> None:
        if pos + n > end:
            raise FormatError(f"offset {pos:#x}: truncated {what} ({n} bytes needed, {max(0, end - pos)} left)")

    def run(self) -> MigrationFile:
        data = self.data
        stream_end = self.trailer.offset if self.trailer else len(data)
        records, pos, saw_eof = self._records(8, stream_end, 0)
        vmdesc_record = self.trailer
        stopped = bool(records) and isinstance(records[-1], Opaque)
        if not stopped:
            if not saw_eof:
                raise FormatError(f"offset {pos:#x}: truncated stream: no EOF record")
            if self.trailer is None and pos < len(data):
                if data[pos] == QEMU_VM_VMDESCRIPTION and pos + 5 <= len(data):
                    (length,) = _BE32.unpack_from(data, pos + 1)
                    if pos + 5 + length > len(data):
                        raise FormatError(
                            f"offset {pos:#x}: vmdesc trailer says {length} bytes, {len(data) - pos - 5} left"
                        )
                    text = data[pos + 5 : pos + 5 + length]
                    vmdesc_record = VmdescTrailer(pos, length, _vmdesc.parse_vmdesc(text, f"vmdesc JSON at offset {pos + 5:#x}"))
                    pos += 5 + length
                if pos < len(data):
                    self.tail = Opaque(data[pos:], f"{len(data) - pos} bytes after the end of the stream (QEMU never reads them)")
                    self.notes.append(f"offset {pos:#x}: {self.tail.reason}")
            elif self.trailer is not None:
                if pos != self.trailer.offset:
                    raise FormatError(f"offset {pos:#x}: EOF record ends before the vmdesc trailer at {self.trailer.offset:#x}")
                after = self.trailer.offset + 5 + self.trailer.length
                if after < len(data):
                    self.tail = Opaque(data[after:], f"{len(data) - after} bytes after the vmdesc trailer (QEMU never reads them)")
                    self.notes.append(f"offset {after:#x}: {self.tail.reason}")
        return MigrationFile(
            size=len(data),
            version=QEMU_VM_FILE_VERSION,
            records=tuple(records),
            vmdesc=vmdesc_record,
            tail=self.tail,
            page_size=self.page_size or DEFAULT_PAGE_SIZE,
            footers=self.footers,
            notes=tuple(self.notes),
        )

    def _records(self, pos: int, end: int, depth: int) -> tuple[list, int, bool]:
        """Records from ``pos`` up to EOF (or ``end``); returns (records, pos, saw_eof)."""
        data = self.data
        records: list = []
        last = "the file header"
        while pos < end:
            kind = data[pos]
            if kind == QEMU_VM_EOF:
                records.append(Eof(pos))
                return records, pos + 1, True
            if kind in SECTION_NAMES:
                section = self._section(pos, end, kind)
                if section is None:  # could not delimit: the rest (of this package) is opaque
                    records.append(Opaque(data[pos:end], self._stop_reason, pos))
                    self.notes.append(f"offset {pos:#x}: {self._stop_reason}")
                    return records, end, False
                records.append(section)
                pos = section.body_offset + section.body_length + (5 if section.footer else 0)
                last = f"{section.name} section {section.section_id} ({self._label(section.section_id)})"
            elif kind == QEMU_VM_CONFIGURATION:
                config = self._configuration(pos, end)
                records.append(config)
                pos += config.length
                last = "the configuration record"
            elif kind == QEMU_VM_COMMAND:
                command = self._command(pos, end, depth)
                records.append(command)
                pos += 5 + command.length + command.package_length
                last = f"command {command.name}"
            else:
                raise FormatError(f"offset {pos:#x}: unknown record type {kind:#04x} after {last} (Unknown savevm section type)")
        if depth:
            return records, pos, False
        return records, pos, False

    def _label(self, section_id: int) -> str:
        handler = self.handlers.get(section_id)
        return handler[0].decode("utf-8", "replace") if handler else "?"

    # -- configuration (savevm.c vmstate_configuration, loaded with version 0)
    def _configuration(self, pos: int, end: int) -> Configuration:
        data = self.data
        start = pos
        self._need(pos, 5, end, "configuration record")
        (name_len,) = _BE32.unpack_from(data, pos + 1)
        pos += 5
        self._need(pos, name_len, end, "configuration machine name")
        machine = data[pos : pos + name_len]
        pos += name_len
        subsections = []
        prefix = b"configuration"
        while pos + 2 <= end and data[pos] == QEMU_VM_SUBSECTION:
            sub_len = data[pos + 1]
            # vmstate.c vmstate_subsection_load: a short or foreign name ends the list
            if sub_len < len(prefix) + 1 or pos + 2 + sub_len > end or not data[pos + 2 : pos + 2 + sub_len].startswith(prefix):
                break
            name = data[pos + 2 : pos + 2 + sub_len]
            self._need(pos + 2 + sub_len, 4, end, f"subsection {name.decode('latin-1')} version")
            (version,) = _BE32.unpack_from(data, pos + 2 + sub_len)
            pos += 6 + sub_len
            value, pos = self._config_subsection(name, pos, end)
            subsections.append(ConfigSubsection(name, version, value))
        config = Configuration(start, pos - start, machine, tuple(subsections))
        bits = config.get("configuration/target-page-bits")
        if not self.page_size_known and isinstance(bits, int) and 0 < bits < 32:
            self.page_size = 1 << bits
        caps = config.get("configuration/capabilities") or ()
        self.ignore_shared = b"x-ignore-shared" in caps
        self.mapped_ram = b"mapped-ram" in caps
        return config

    def _config_subsection(self, name: bytes, pos: int, end: int) -> tuple[Any, int]:
        data = self.data
        where = name.decode("latin-1")
        if name == b"configuration/target-page-bits":
            self._need(pos, 4, end, where)
            return _BE32.unpack_from(data, pos)[0], pos + 4
        if name == b"configuration/capabilities":
            self._need(pos, 4, end, where)
            (count,) = _BE32.unpack_from(data, pos)
            pos += 4
            caps = []
            for i in range(count):
                self._need(pos, 1, end, f"{where} capability {i}")
                n = data[pos]
                self._need(pos + 1, n, end, f"{where} capability {i}")
                caps.append(data[pos + 1 : pos + 1 + n])
                pos += 1 + n
            return tuple(caps), pos
        if name == b"configuration/uuid":
            self._need(pos, 16, end, where)
            return data[pos : pos + 16], pos + 16
        desc = self._config_subsection_desc(name)
        if desc is not None:
            return self.decoder.body(desc, pos, end, where)
        raise FormatError(f"offset {pos:#x}: unknown configuration subsection {where} (VM subsection does not exist)")

    def _config_subsection_desc(self, name: bytes):
        config = self.vmdesc_config
        if config is None:
            return None
        for sub in config.get("subsections") or ():
            if isinstance(sub, _vmdesc.JsonObject) and sub.get("vmsd_name") == name.decode("utf-8", "replace"):
                return sub
        return None

    # -- sections
    def _section(self, pos: int, end: int, kind: int) -> Section | None:
        data = self.data
        start = pos
        self._need(pos, 5, end, f"{SECTION_NAMES[kind]} section header")
        (section_id,) = _BE32.unpack_from(data, pos + 1)
        pos += 5
        if kind in (QEMU_VM_SECTION_START, QEMU_VM_SECTION_FULL):
            self._need(pos, 1, end, "section idstr")
            n = data[pos]
            if n == 0:
                raise FormatError(f"offset {pos:#x}: empty section idstr (section {section_id})")
            self._need(pos + 1, n + 8, end, "section header")
            idstr = data[pos + 1 : pos + 1 + n]
            instance_id, version_id = _IDS.unpack_from(data, pos + 1 + n)
            pos += 1 + n + 8
            self.handlers[section_id] = (idstr, instance_id, version_id)
        else:
            if section_id not in self.handlers:
                raise FormatError(f"offset {start:#x}: {SECTION_NAMES[kind]} of section {section_id} that no START opened")
            idstr = instance_id = version_id = None
        handler_idstr, handler_instance, handler_version = self.handlers[section_id]
        label = handler_idstr.decode("utf-8", "replace")
        body_offset = pos
        body, pos = self._section_body(kind, section_id, handler_idstr, handler_instance, handler_version, pos, end, label)
        if body is None:
            return None
        body_length = pos - body_offset
        footer = False
        if pos < end and data[pos] == QEMU_VM_SECTION_FOOTER:
            self._need(pos, 5, end, f"footer of section {section_id} ({label})")
            (footer_id,) = _BE32.unpack_from(data, pos + 1)
            if footer_id != section_id:
                raise FormatError(
                    f"offset {pos:#x}: Mismatched section id in footer for {label}: read {footer_id}, expected {section_id}"
                )
            footer = True
            self.footers = True
        elif self.footers:
            raise FormatError(f"offset {pos:#x}: Missing section footer for {label} (section {section_id})")
        else:
            self.footers = False
            if pos < end and data[pos] not in _RECORD_TYPES and data[pos] != QEMU_VM_CONFIGURATION:
                raise FormatError(
                    f"offset {pos:#x}: section {section_id} ({label}) is followed by byte {data[pos]:#04x}, "
                    "which starts no record (body longer than its vmdesc entry says?)"
                )
        return Section(start, kind, section_id, idstr, instance_id, version_id, body, body_offset, body_length, footer)

    def _section_body(self, kind, section_id, idstr, instance_id, version_id, pos, end, label):
        if idstr == b"ram" and instance_id == 0 and version_id == 4:
            if self.mapped_ram:
                return self._opaque_body(section_id, pos, end, label, "mapped-ram RAM lives outside the stream")
            if self.page_size is None:
                self.page_size = DEFAULT_PAGE_SIZE
                self.notes.append(
                    f"offset {pos:#x}: no vmdesc page_size nor target-page-bits: RAM parsed with {DEFAULT_PAGE_SIZE}-byte pages"
                )
            return self._ram_body(pos, end, label)
        if kind != QEMU_VM_SECTION_FULL:
            return self._opaque_body(section_id, pos, end, label, f"iterative section of handler {label} (not RAM): not modelled")
        if not self.devices:
            reason = "the stream has no vmdesc trailer" if self.trailer is None and self.external is None else "state decoding was not asked for"
            return self._opaque_body(section_id, pos, end, label, reason)
        key = (idstr.decode("utf-8", "replace"), instance_id)
        desc = self.devices.get(key)
        if desc is None:
            where = "the external vmdesc" if self.external is not None else "the vmdesc"
            return self._opaque_body(section_id, pos, end, label, f"no entry for {key[0]} instance {instance_id} in {where}")
        try:
            body, stop = self.decoder.body(desc, pos, end, label)
        except FormatError as exc:
            if self.footers is False:
                raise
            return self._opaque_body(section_id, pos, end, label, f"vmdesc does not match the bytes: {exc}")
        if stop < end and self.data[stop] != QEMU_VM_SECTION_FOOTER and self.footers:
            hit = self._find_footer(section_id, pos, end)
            if hit is not None:  # the vmdesc entry is shorter than the body: trust the footer
                reason = f"vmdesc entry ends at {stop:#x}, before the footer at {hit:#x}"
                self.notes.append(f"offset {pos:#x}: section {section_id} ({label}) kept opaque: {reason}")
                return Opaque(self.data[pos:hit], reason), hit
        return body, stop  # without a footer after it, _section reports the missing footer

    _stop_reason = ""

    def _opaque_body(self, section_id, pos, end, label, reason):
        """Delimit a body we cannot parse by its footer (7e be32 section_id)."""
        if self.footers is None:  # no section seen yet: a footer, if any, says where it ends
            hit = self._find_footer(section_id, pos, end)
            if hit is not None:
                self.notes.append(f"offset {pos:#x}: section {section_id} ({label}) kept opaque: {reason}")
                return Opaque(self.data[pos:hit], reason), hit
        if not self.footers:
            stop = self._find_next_header(pos, end)
            if stop is not None:
                reason += "; delimited by the next plausible record header (no footers: a heuristic)"
                self.notes.append(f"offset {pos:#x}: section {section_id} ({label}) kept opaque: {reason}")
                return Opaque(self.data[pos:stop], reason), stop
            self._stop_reason = f"section {section_id} ({label}): {reason}, and without section footers its end cannot be found"
            return None, pos
        hit = self._find_footer(section_id, pos, end)
        if hit is not None:
            self.notes.append(f"offset {pos:#x}: section {section_id} ({label}) kept opaque: {reason}")
            return Opaque(self.data[pos:hit], reason), hit
        self._stop_reason = f"section {section_id} ({label}): {reason}, and no footer was found after it"
        return None, pos

    def _find_next_header(self, pos: int, end: int) -> int | None:
        """Old framing without footers nor vmdesc: where the next FULL section header
        (a new section id, a printable idstr, small instance and version) or the final
        EOF byte is.  Only used to list such streams; the bodies stay opaque."""
        data = self.data
        for match in _FULL_HEADER.finditer(data, pos, end):
            at = match.start()
            (section_id,) = _BE32.unpack_from(data, at + 1)
            n = data[at + 5]
            if section_id in self.handlers or at + 6 + n + 8 > end:
                continue
            idstr = data[at + 6 : at + 6 + n]
            instance_id, version_id = _IDS.unpack_from(data, at + 6 + n)
            if _IDSTR_CHARS.fullmatch(idstr) and instance_id < 0x10000 and version_id < 0x100:
                return at
        if end - 1 >= pos and data[end - 1] == QEMU_VM_EOF:
            return end - 1
        return None

    def _find_footer(self, section_id: int, pos: int, end: int) -> int | None:
        """The first ``7e be32(section_id)`` followed by a record start (or the end)."""
        needle = b"\x7e" + _BE32.pack(section_id)
        data = self.data
        hit = data.find(needle, pos, end)
        while hit != -1:
            after = hit + 5
            if after == end or data[after] in _RECORD_TYPES:
                return hit
            hit = data.find(needle, hit + 1, end)
        return None

    # -- RAM (ram.c ram_load_precopy / ram_save_setup)
    def _ram_body(self, pos: int, end: int, label: str) -> tuple[RamBody, int]:
        data = self.data
        view = self.view
        page_size = self.page_size
        mask = page_size - 1
        unpack64 = _BE64.unpack_from
        records = []
        append = records.append
        fast_runs = page_size == 4096
        while True:
            if pos - self.released >= _RELEASE_STEP:
                _release(data, self.released, pos)
                self.released = pos
            if pos + 8 > end:
                raise FormatError(f"offset {pos:#x}: {label}: truncated RAM record")
            if fast_runs:
                flag = data[pos + 7]
                if flag == 0x22:
                    count = _run_length(data, pos, end, 9, b"\x22")
                    if count >= 8:
                        append(_zero_run_from(data, pos, count))
                        pos += 9 * count
                        continue
                elif flag == 0x28:
                    count = _run_length(data, pos, end, 8 + page_size, b"\x28", self._progress, 256)
                    if count >= 2:
                        stride = 8 + page_size
                        words = []
                        for first in range(0, count, 256):  # in slices, handing pages back as we go
                            at = pos + stride * first
                            n = min(256, count - first)
                            words.append(_words_column(data, at, n, stride))
                            _release(data, at, at + stride * n)
                        append(PageRun(pos, b"".join(words), page_size, view))
                        pos += stride * count
                        continue
            start = pos
            (word,) = unpack64(data, pos)
            flags = word & mask
            pos += 8
            kind = flags & ~RAM_SAVE_FLAG_CONTINUE
            block = None
            if kind & _RAM_WITH_BLOCK and not flags & RAM_SAVE_FLAG_CONTINUE:
                if pos >= end:
                    raise FormatError(f"offset {pos:#x}: {label}: truncated RAM block name")
                n = data[pos]
                block = data[pos + 1 : pos + 1 + n]
                pos += 1 + n
            if kind == RAM_SAVE_FLAG_ZERO:
                if pos >= end:
                    raise FormatError(f"offset {pos:#x}: {label}: truncated zero-page fill byte")
                append(RamRecord(start, word, block, data[pos]))
                pos += 1
            elif kind == RAM_SAVE_FLAG_PAGE:
                if pos + page_size > end:
                    raise FormatError(f"offset {pos:#x}: {label}: truncated RAM page")
                append(RamRecord(start, word, block, view[pos : pos + page_size]))
                pos += page_size
            elif kind == RAM_SAVE_FLAG_EOS:
                append(RamRecord(start, word, None, None))
                _release(data, self.released, pos)  # everything of this section is parsed
                self.released = pos
                break
            elif kind == RAM_SAVE_FLAG_MEM_SIZE:
                blocks, pos = self._ram_blocks(word & ~mask, pos, end, label)
                append(RamRecord(start, word, None, blocks))
            elif kind == RAM_SAVE_FLAG_MULTIFD_FLUSH:
                append(RamRecord(start, word, None, None))
            elif kind == RAM_SAVE_FLAG_COMPRESS_PAGE:
                self._need(pos, 4, end, f"{label}: compressed page length")
                (n,) = _BE32.unpack_from(data, pos)
                self._need(pos + 4, n, end, f"{label}: compressed page")
                append(RamRecord(start, word, block, data[pos + 4 : pos + 4 + n]))
                pos += 4 + n
            elif kind == RAM_SAVE_FLAG_XBZRLE:
                self._need(pos, 3, end, f"{label}: XBZRLE header")
                (n,) = _BE16.unpack_from(data, pos + 1)
                self._need(pos + 3, n, end, f"{label}: XBZRLE data")
                append(RamRecord(start, word, block, (data[pos], data[pos + 3 : pos + 3 + n])))
                pos += 3 + n
            else:
                what = "RAM_SAVE_FLAG_HOOK (RDMA) records" if kind == RAM_SAVE_FLAG_HOOK else "flag combination"
                raise FormatError(f"offset {start:#x}: {label}: unsupported {what} {flags:#x} (Unknown combination of migration flags)")
        return RamBody(tuple(records), page_size), pos

    def _progress(self, pos: int) -> None:
        if pos - self.released >= _RELEASE_STEP:
            _release(self.data, self.released, pos)
            self.released = pos

    def _ram_blocks(self, total: int, pos: int, end: int, label: str) -> tuple[tuple, int]:
        data = self.data
        blocks = []
        while total > 0:
            self._need(pos, 1, end, f"{label}: RAM block entry")
            n = data[pos]
            self._need(pos + 1, n + 8, end, f"{label}: RAM block entry")
            name = data[pos + 1 : pos + 1 + n]
            (used,) = _BE64.unpack_from(data, pos + 1 + n)
            pos += 1 + n + 8
            block_page_size = mr_addr = None
            summary = self.postcopy_summary
            if summary is not None and summary != self.page_size and pos + 8 <= end:
                # ram.c: postcopy sends the block's page size when it differs from the
                # host page size; only a value in the advised page-size summary can be one.
                (candidate,) = _BE64.unpack_from(data, pos)
                if candidate and candidate & summary == candidate and not candidate & (candidate - 1) and candidate != self.page_size:
                    block_page_size = candidate
                    pos += 8
            if self.ignore_shared:
                self._need(pos, 8, end, f"{label}: RAM block address")
                (mr_addr,) = _BE64.unpack_from(data, pos)
                pos += 8
            blocks.append(RamBlock(name, used, block_page_size, mr_addr))
            total -= used
            if total < 0:
                raise FormatError(f"offset {pos:#x}: {label}: RAM block lengths exceed the MEM_SIZE total")
        return tuple(blocks), pos

    # -- commands (savevm.c loadvm_process_command)
    def _command(self, pos: int, end: int, depth: int) -> Command:
        data = self.data
        self._need(pos, 5, end, "command header")
        _, cmd, length = _CMD.unpack_from(data, pos)
        payload_at = pos + 5
        self._need(payload_at, length, end, "command payload")
        payload = data[payload_at : payload_at + length]
        name, fixed = MIG_CMDS.get(cmd, (None, -1))
        if name is None or cmd == 0:
            return Command(pos, cmd, length, Opaque(payload, f"unknown command {cmd}"))
        if fixed >= 0 and length != fixed:
            raise FormatError(f"offset {pos:#x}: command {name} has length {length}, QEMU requires {fixed}")
        where = f"offset {pos:#x}: command {name}"
        if cmd == 2:  # PING
            return Command(pos, cmd, length, _BE32.unpack(payload)[0])
        if cmd == 3:  # POSTCOPY_ADVISE: nothing, or be64 page-size summary + be64 target page size
            if length == 0:
                return Command(pos, cmd, length, ())
            if length != 16:
                raise FormatError(f"{where}: length {length}, expected 0 or 16")
            args = struct.unpack(">QQ", payload)
            self.postcopy_summary = args[0]
            return Command(pos, cmd, length, args)
        if cmd == 6:  # POSTCOPY_RAM_DISCARD: u8 version, u8 len, name, u8 0, (be64 start, be64 len)*
            if length < 3 or length < 3 + payload[1]:
                raise FormatError(f"{where}: payload too short ({length} bytes)")
            n = payload[1]
            ranges_at = 3 + n
            if payload[2 + n] != 0 or (length - ranges_at) % 16:
                raise FormatError(f"{where}: malformed payload (missing nil after the name, or a partial range)")
            ranges = tuple(struct.iter_unpack(">QQ", payload[ranges_at:]))
            return Command(pos, cmd, length, (payload[0], payload[2 : 2 + n], ranges))
        if cmd == 10:  # RECV_BITMAP: u8 len + block name
            if length < 1 or payload[0] + 1 != length:
                raise FormatError(f"{where}: name length {payload[0] if length else '?'} does not fill {length} bytes")
            return Command(pos, cmd, length, payload[1:])
        if cmd == MIG_CMD_PACKAGED:
            (size,) = _BE32.unpack(payload)
            if depth >= MAX_PACKAGE_DEPTH:
                raise FormatError(f"{where}: packages nested deeper than {MAX_PACKAGE_DEPTH}")
            inner_start = payload_at + 4
            self._need(inner_start, size, end, "PACKAGED contents")
            inner_end = inner_start + size
            records, stop, _ = self._records(inner_start, inner_end, depth + 1)
            if stop != inner_end:
                self.notes.append(f"offset {stop:#x}: {inner_end - stop} package bytes after its EOF (QEMU never reads them)")
                records.append(Opaque(data[stop:inner_end], "package bytes after its EOF", stop))
            return Command(pos, cmd, length, size, tuple(records), size)
        return Command(pos, cmd, length, ())


# --------------------------------------------------------------------------- writing


def encode(mf: MigrationFile, sink=None) -> bytes | None:
    """The file rebuilt from the model.

    With ``sink`` (anything with ``append(chunk)``, e.g. ``CompareSink``) the chunks
    are streamed into it instead of joined, so a large file is never held twice."""
    out: Any = sink if sink is not None else []
    out.append(_HEADER.pack(QEMU_VM_FILE_MAGIC, mf.version))
    _encode_records(mf.records, out)
    if mf.vmdesc is not None:
        text = mf.vmdesc.vmdesc.encode()
        out.append(bytes((QEMU_VM_VMDESCRIPTION,)) + _BE32.pack(len(text)))
        out.append(text)
    if mf.tail is not None:
        out.append(mf.tail.data)
    return None if sink is not None else b"".join(out)


class CompareSink:
    """Compares streamed chunks with ``source`` (and optionally writes them out);
    ``mismatch`` is the first differing offset, or None."""

    def __init__(self, source, writer=None) -> None:
        self.source = memoryview(source)
        self.writer = writer
        self.pos = 0
        self.mismatch: int | None = None
        self._released = 0

    def append(self, chunk) -> None:
        n = len(chunk)
        if self.writer is not None:
            self.writer.write(chunk)
        if self.mismatch is None:
            theirs = self.source[self.pos : self.pos + n]
            if theirs != chunk:
                self.mismatch = self.pos + _first_difference(theirs, chunk)
        self.pos += n
        if self.pos - self._released >= _RELEASE_STEP:
            _release(self.source.obj, self._released, self.pos)
            self._released = self.pos

    def finish(self) -> int | None:
        """The first difference, counting a length difference at the shorter end."""
        if self.mismatch is None and self.pos != len(self.source):
            self.mismatch = min(self.pos, len(self.source))
        return self.mismatch


def _first_difference(a, b) -> int:
    """Index of the first differing byte of two short byte strings (or the shorter length)."""
    a, b = bytes(a), bytes(b)
    limit, start, step = min(len(a), len(b)), 0, 4096
    while start < limit and a[start : start + step] == b[start : start + step]:
        start += step
    for i in range(start, min(limit, start + step)):
        if a[i] != b[i]:
            return i
    return limit


_RELEASE_STEP = 2 << 20


def _release(data, start: int, stop: int) -> None:
    """Let the kernel drop already-parsed pages of a memory-mapped file (they are
    clean file pages, read back on demand), so the peak RSS stays bounded."""
    madvise = getattr(data, "madvise", None)
    if madvise is None:
        return
    import mmap

    begin = start - start % mmap.PAGESIZE
    if stop > begin:
        try:
            madvise(mmap.MADV_DONTNEED, begin, stop - begin)
        except (OSError, ValueError):
            pass


def _encode_records(records, out: list) -> None:
    for record in records:
        if isinstance(record, Section):
            out.append(section_header_bytes(record))
            encode_section_body(record.body, out)
            if record.footer:
                out.append(bytes((QEMU_VM_SECTION_FOOTER,)) + _BE32.pack(record.section_id))
        elif isinstance(record, Eof):
            out.append(b"\x00")
        elif isinstance(record, Configuration):
            out.append(configuration_bytes(record))
        elif isinstance(record, Command):
            out.append(command_bytes(record))
            if record.records:
                _encode_records(record.records, out)
        elif isinstance(record, Opaque):
            out.append(record.data)
        else:
            raise TypeError(f"not a record: {record!r}")


def section_header_bytes(section: Section) -> bytes:
    head = bytes((section.type,)) + _BE32.pack(section.section_id)
    if section.idstr is not None:
        head += bytes((len(section.idstr),)) + section.idstr + _IDS.pack(section.instance_id, section.version_id)
    return head


def encode_section_body(body, out: list) -> None:
    if isinstance(body, RamBody):
        encode_ram(body, out)
    elif isinstance(body, Body):
        _vmdesc.encode_body(body, out)
    elif isinstance(body, Opaque):
        out.append(body.data)
    else:
        raise TypeError(f"not a section body: {body!r}")


def encode_ram(body: RamBody, out: list) -> None:
    mask = body.page_size - 1
    pack64 = _BE64.pack
    append = out.append
    for rec in body.records:
        if type(rec) is ZeroRun:
            append(_zero_run_bytes(rec))
            continue
        if type(rec) is PageRun:
            _page_run_chunks(rec, out)
            continue
        append(pack64(rec.word))
        if rec.block is not None:
            append(bytes((len(rec.block),)))
            append(rec.block)
        kind = rec.word & mask & ~RAM_SAVE_FLAG_CONTINUE
        payload = rec.payload
        if kind == RAM_SAVE_FLAG_ZERO:
            append(bytes((payload,)))
        elif kind == RAM_SAVE_FLAG_PAGE:
            append(payload)
        elif kind == RAM_SAVE_FLAG_MEM_SIZE:
            for block in payload:
                append(bytes((len(block.name),)) + block.name + pack64(block.used_length))
                if block.page_size is not None:
                    append(pack64(block.page_size))
                if block.mr_addr is not None:
                    append(pack64(block.mr_addr))
        elif kind == RAM_SAVE_FLAG_COMPRESS_PAGE:
            append(_BE32.pack(len(payload)) + payload)
        elif kind == RAM_SAVE_FLAG_XBZRLE:
            append(bytes((payload[0],)) + _BE16.pack(len(payload[1])) + payload[1])


def configuration_bytes(config: Configuration) -> bytes:
    parts = [bytes((QEMU_VM_CONFIGURATION,)), _BE32.pack(len(config.machine)), config.machine]
    for sub in config.subsections:
        parts.append(bytes((QEMU_VM_SUBSECTION, len(sub.name))) + sub.name + _BE32.pack(sub.version))
        value = sub.value
        if sub.name == b"configuration/target-page-bits":
            parts.append(_BE32.pack(value))
        elif sub.name == b"configuration/capabilities":
            parts.append(_BE32.pack(len(value)))
            parts.extend(bytes((len(cap),)) + cap for cap in value)
        elif isinstance(value, Body):
            parts.append(_vmdesc.body_bytes(value))
        else:
            parts.append(value)
    return b"".join(parts)


def command_bytes(command: Command) -> bytes:
    """The command record itself (header and payload; a package's contents follow)."""
    cmd, args = command.cmd, command.args
    if isinstance(args, Opaque):
        payload = args.data
    elif cmd == 2:
        payload = _BE32.pack(args)
    elif cmd == 3:
        payload = struct.pack(">QQ", *args) if args else b""
    elif cmd == 6:
        version, name, ranges = args
        payload = bytes((version, len(name))) + name + b"\x00" + b"".join(struct.pack(">QQ", *r) for r in ranges)
    elif cmd == 10:
        payload = bytes((len(args),)) + args
    elif cmd == MIG_CMD_PACKAGED:
        payload = _BE32.pack(args)
    else:
        payload = b""
    return _CMD.pack(QEMU_VM_COMMAND, cmd, len(payload)) + payload


# --------------------------------------------------------------------------- listing


def record_length(record) -> int:
    if isinstance(record, Section):
        return record.header_length + record.body_length
    if isinstance(record, Configuration):
        return record.length
    if isinstance(record, Command):
        return 5 + record.length
    if isinstance(record, Eof):
        return 1
    if isinstance(record, Opaque):
        return len(record.data)
    raise TypeError(record)


def _line(offset, kind, sid="", text="", inst="", ver="", length=0) -> str:
    return f"0x{offset:07x} {kind:<16}{sid!s:<5}{text:<41}{inst!s:<6}{ver!s:<5}{length}"


def _clip(text: str, width: int = 40) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= width else text[: width - 3] + "..."


def list_records(mf: MigrationFile) -> list[str]:
    """One line per record: offset, type, section id, idstr, instance, version, length."""
    lines = [_line(0, "HEADER", "", f"magic=0x{QEMU_VM_FILE_MAGIC:08x} version={mf.version}", length=8)]
    ram = 0
    labels: dict[int, str] = {}

    def emit(records, indent: str) -> None:
        nonlocal ram
        for record in records:
            if isinstance(record, Section):
                name = indent + record.name
                length = record_length(record)
                if isinstance(record.body, RamBody):
                    ram += length
                if record.idstr is not None:
                    labels[record.section_id] = record.label
                    lines.append(_line(record.offset, name, record.section_id, record.label, record.instance_id, record.version_id, length))
                else:
                    label = labels.get(record.section_id, "?")
                    lines.append(_line(record.offset, name, record.section_id, label, length=length))
                if record.footer:
                    lines.append(_line(record.offset + length, indent + "FOOTER", record.section_id, length=5))
            elif isinstance(record, Configuration):
                lines.append(_line(record.offset, indent + "CONFIGURATION", "", _clip(_text(record.machine), 200), length=record.length))
            elif isinstance(record, Command):
                detail = record.name
                if record.cmd == 2:
                    detail += f" {record.args}"
                elif record.cmd == MIG_CMD_PACKAGED:
                    detail += f" {record.args} bytes"
                lines.append(_line(record.offset, indent + "COMMAND", record.cmd, detail, length=5 + record.length))
                if record.records:
                    emit(record.records, indent + "  ")
            elif isinstance(record, Eof):
                lines.append(_line(record.offset, indent + "EOF", length=1))
            elif isinstance(record, Opaque):
                lines.append(_line(record.offset or 0, indent + "OPAQUE", "", _clip(record.reason), length=len(record.data)))

    emit(mf.records, "")
    trailer = 0
    if mf.vmdesc is not None:
        trailer = 5 + mf.vmdesc.length
        lines.append(_line(mf.vmdesc.offset, "TRAILER(vmdesc)", length=trailer))
    if mf.tail is not None:
        lines.append(_line(mf.size - len(mf.tail.data), "TAIL", "", _clip(mf.tail.reason), length=len(mf.tail.data)))
    lines.append(f"# total={mf.size} ram_sections={ram} vmdesc_trailer={trailer} non_ram_stream={mf.size - ram - trailer}")
    return lines


def locate(mf: MigrationFile, offset: int) -> str:
    """Which record (and field, for decoded device state) holds byte ``offset``."""
    if offset < 8:
        return "file header"
    for record in walk(mf.records):
        if isinstance(record, Section):
            start = record.offset
            body_end = record.body_offset + record.body_length
            if start <= offset < body_end + (5 if record.footer else 0):
                where = f"{record.name} section {record.section_id} ({_label_of(mf, record)})"
                if offset < record.body_offset:
                    return where + ", section header"
                if offset >= body_end:
                    return where + ", footer"
                if isinstance(record.body, Body):
                    return where + ", field " + _vmdesc.locate_in_body(record.body, offset - record.body_offset, _label_of(mf, record))
                if isinstance(record.body, RamBody):
                    for rec in reversed(record.body.records):
                        if rec.offset <= offset:
                            if type(rec) is ZeroRun:
                                at = rec.offset + (offset - rec.offset) // 9 * 9
                                return where + f", RAM zero-page record at {at:#x}"
                            if type(rec) is PageRun:
                                step = 8 + rec.page_size
                                at = rec.offset + (offset - rec.offset) // step * step
                                return where + f", RAM page record at {at:#x}"
                            return where + f", RAM record at {rec.offset:#x}"
                return where + ", opaque body"
        elif isinstance(record, (Configuration, Command, Eof)):
            start = record.offset
            if start <= offset < start + record_length(record):
                return type(record).__name__.lower() + f" record at {start:#x}"
    if mf.vmdesc is not None and offset >= mf.vmdesc.offset:
        return f"vmdesc trailer (JSON byte {offset - mf.vmdesc.offset - 5})"
    return "after the last record"


def _label_of(mf: MigrationFile, section: Section) -> str:
    if section.idstr is not None:
        return section.label
    for other in walk(mf.records):
        if isinstance(other, Section) and other.section_id == section.section_id and other.idstr is not None:
            return other.label
    return "?"


# --------------------------------------------------------------------------- renderings


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def analyze_state(mf: MigrationFile) -> dict:
    """The dict ``analyze-migration.py -d state`` prints for this file (QEMU 7.2-8.x
    script: MigrationDump.getDict).  FormatError where that script would fail or where
    a section had to be kept opaque."""
    table: dict[int, list] = {}
    for record in walk(mf.records):
        if not isinstance(record, Section):
            continue
        body = record.body
        if record.idstr is not None:
            key = (_text(record.idstr), record.instance_id)
            if isinstance(body, RamBody):
                value: Any = {"section sizes": {}}
            elif key == ("spapr/htab", 0):
                value = ""
            elif isinstance(body, Body):
                value = _vmdesc.analyze_body(body)
            else:
                raise FormatError(
                    f"offset {record.offset:#x}: section {record.section_id} ({key[0]}) has no analyze-migration.py "
                    f"rendering: {body.reason}"
                )
            if record.section_id in table:
                table[record.section_id][:] = [key[0], value]
            else:
                table[record.section_id] = [key[0], value]
        elif record.section_id not in table:
            raise FormatError(f"offset {record.offset:#x}: {record.name} of unknown section {record.section_id}")
        if isinstance(body, RamBody):
            sizes = table[record.section_id][1]["section sizes"]
            for rec in body.records:
                if type(rec) is RamRecord and rec.word & (body.page_size - 1) & RAM_SAVE_FLAG_MEM_SIZE:
                    for block in rec.payload:
                        sizes[_text(block.name)] = "0x%016x" % block.used_length
    return {"%s (%d)" % (name, sid): value for sid, (name, value) in table.items()}


def render_json(value) -> str:
    """json.JSONEncoder(indent=4, separators=(',', ': ')) as analyze-migration.py prints."""
    import json

    return json.dumps(value, indent=4, separators=(",", ": ")) + "\n"


def analyze_desc(mf: MigrationFile) -> dict:
    if mf.vmdesc is None:
        raise FormatError("the file has no vmdesc trailer (suppress-vmdesc, postcopy, or a device-state-only stream)")
    return mf.vmdesc.vmdesc.root.to_plain()


def iter_pages(body: RamBody, block: bytes | None = None):
    """(block idstr, address, record kind, payload) for every page record, runs
    expanded; ``block`` is the block a leading CONTINUE record refers to (the last one
    named in an earlier section).  Payload: fill byte, page bytes, or compressed data."""
    mask = body.page_size - 1
    for rec in body.records:
        if type(rec) is ZeroRun:
            for i in range(len(rec)):
                yield block, rec.word(i) & ~mask, "ZERO", rec.fills[i]
        elif type(rec) is PageRun:
            for i in range(len(rec)):
                yield block, rec.word(i) & ~mask, "PAGE", rec.page(i)
        else:
            kind = rec.word & mask & ~RAM_SAVE_FLAG_CONTINUE
            if kind & _RAM_WITH_BLOCK:
                if rec.block is not None:
                    block = rec.block
                yield block, rec.word & ~mask, RAM_FLAG_NAMES.get(kind, hex(kind)), rec.payload


def _pages_json(body: RamBody, context: dict) -> list:
    pages = []
    for block, addr, kind, payload in iter_pages(body, context.get("block")):
        entry: dict = {"block": _text(block) if block is not None else None, "addr": addr, "record": kind}
        if kind == "ZERO":
            entry["fill"] = payload
        elif kind == "XBZRLE":
            entry["encoding"], entry["data"] = payload[0], bytes(payload[1]).hex()
        else:
            entry["data"] = bytes(payload).hex()
        pages.append(entry)
        context["block"] = block
    return pages


def _ram_summary(body: RamBody) -> dict:
    mask = body.page_size - 1
    counts: dict[str, int] = {}
    blocks: dict[str, int] = {}
    for rec in body.records:
        if type(rec) is ZeroRun or type(rec) is PageRun:
            name = "ZERO" if type(rec) is ZeroRun else "PAGE"
            counts[name] = counts.get(name, 0) + len(rec)
            continue
        kind = rec.word & mask & ~RAM_SAVE_FLAG_CONTINUE
        name = RAM_FLAG_NAMES.get(kind, hex(kind))
        counts[name] = counts.get(name, 0) + 1
        if kind == RAM_SAVE_FLAG_MEM_SIZE:
            for block in rec.payload:
                blocks[_text(block.name)] = block.used_length
    out: dict = {"page_size": body.page_size, "records": counts}
    if blocks:
        out["blocks"] = blocks
    return out


def _command_json(command: Command, memory: dict | None = None) -> dict:
    out: dict = {"record": "COMMAND", "offset": command.offset, "command": command.name}
    args = command.args
    if isinstance(args, Opaque):
        out["payload"] = args.data.hex()
        out["note"] = args.reason
    elif command.cmd == 2:
        out["value"] = args
    elif command.cmd == 3 and args:
        out["host_page_sizes"], out["target_page_size"] = args
    elif command.cmd == 6:
        out["version"], name, ranges = args
        out["block"] = _text(name)
        out["ranges"] = [list(r) for r in ranges]
    elif command.cmd == 10:
        out["block"] = _text(args)
    elif command.cmd == MIG_CMD_PACKAGED:
        out["length"] = args
        out["records"] = _records_json(command.records, memory)
    return out


def _records_json(records, memory: dict | None = None) -> list:
    out = []
    for record in records:
        if isinstance(record, Section):
            item: dict = {"record": record.name, "offset": record.offset, "section_id": record.section_id}
            if record.idstr is not None:
                item.update(idstr=_text(record.idstr), instance_id=record.instance_id, version_id=record.version_id)
            body = record.body
            if isinstance(body, Body):
                item["vmsd_name"] = body.vmsd_name
                item["state"] = _vmdesc.state_body(body)
                notes = _vmdesc.raw_notes(body, record.label)
                if notes:
                    item["notes"] = notes
            elif isinstance(body, RamBody):
                item["ram"] = _ram_summary(body)
                if memory is not None:
                    item["ram"]["pages"] = _pages_json(body, memory)
            else:
                item["opaque"] = {"length": len(body.data), "reason": body.reason}
            if not record.footer:
                item["footer"] = False
            out.append(item)
        elif isinstance(record, Command):
            out.append(_command_json(record, memory))
        elif isinstance(record, Configuration):
            config: dict = {"record": "CONFIGURATION", "offset": record.offset, "machine": _text(record.machine)}
            for sub in record.subsections:
                key = _text(sub.name).removeprefix("configuration/")
                value = sub.value
                if isinstance(value, tuple):
                    value = [_text(v) for v in value]
                elif isinstance(value, Body):
                    value = _vmdesc.state_body(value)
                elif isinstance(value, bytes):
                    value = value.hex()
                config[key] = value
            out.append(config)
        elif isinstance(record, Opaque):
            out.append({"record": "OPAQUE", "offset": record.offset, "length": len(record.data), "reason": record.reason})
    return out


def state_json(mf: MigrationFile, memory: bool = False) -> dict:
    """Our own JSON: every record in order, device state with typed values;
    ``memory`` adds every RAM page record (block, address, fill byte or data in hex)."""
    vm = mf.vmdesc.vmdesc if mf.vmdesc else None
    undecoded = [
        {"offset": r.offset, "section": f"{r.name} {r.section_id} ({_label_of(mf, r)})", "reason": r.body.reason}
        for r in walk(mf.records)
        if isinstance(r, Section) and isinstance(r.body, Opaque)
    ]
    out: dict = {
        "file": {
            "size": mf.size,
            "version": mf.version,
            "footers": mf.footers,
            "page_size": mf.page_size,
            "vmdesc": {"era": vm.era, "writer": vm.style or "opaque"} if vm else None,
        },
        "records": _records_json(mf.records, {} if memory else None),
    }
    if vm is None:
        out["file"]["note"] = (
            "no vmdesc trailer (suppress-vmdesc, postcopy, or a device-state-only stream): "
            "device sections are listed but their state cannot be decoded"
        )
    if undecoded:
        out["undecoded"] = undecoded
    if mf.tail is not None:
        out["tail"] = {"length": len(mf.tail.data), "reason": mf.tail.reason}
    return out
