"""Reading a migration file into the record model (savevm.c qemu_loadvm_state, ram.c).

``read_migration(data)`` parses every byte into the records of
:mod:`conformance.migration.records`; malformed input raises ``FormatError`` (one line,
with the offset).  Device state is decoded through the vmdesc trailer (or a vmdesc
given from another file); RAM runs are parsed column-wise with strided slicing, and the
pages of a memory-mapped file are handed back to the kernel as the parse moves on.
"""

from __future__ import annotations

import re
import struct
from mmap import mmap as mmap_type

from conformance.errors import printable
from conformance.migration import vmdesc as _vmdesc
from conformance.migration.records import (
    BE16,
    BE32,
    BE64,
    CMD_HEADER,
    DEFAULT_PAGE_SIZE,
    FILE_HEADER,
    MAX_PACKAGE_DEPTH,
    MIG_CMD_PACKAGED,
    MIG_CMDS,
    QEMU_VM_COMMAND,
    QEMU_VM_CONFIGURATION,
    QEMU_VM_EOF,
    QEMU_VM_FILE_MAGIC,
    QEMU_VM_FILE_VERSION,
    QEMU_VM_FILE_VERSION_COMPAT,
    QEMU_VM_SECTION_FOOTER,
    QEMU_VM_SECTION_FULL,
    QEMU_VM_SECTION_START,
    QEMU_VM_SUBSECTION,
    QEMU_VM_VMDESCRIPTION,
    RAM_SAVE_FLAG_COMPRESS_PAGE,
    RAM_SAVE_FLAG_CONTINUE,
    RAM_SAVE_FLAG_EOS,
    RAM_SAVE_FLAG_HOOK,
    RAM_SAVE_FLAG_MEM_SIZE,
    RAM_SAVE_FLAG_MULTIFD_FLUSH,
    RAM_SAVE_FLAG_PAGE,
    RAM_SAVE_FLAG_XBZRLE,
    RAM_SAVE_FLAG_ZERO,
    RAM_WITH_BLOCK,
    RECORD_TYPES,
    RELEASE_STEP,
    SECTION_IDS,
    SECTION_NAMES,
    Command,
    ConfigSubsection,
    Configuration,
    Eof,
    MigrationFile,
    Opaque,
    PageRun,
    RamBlock,
    RamBody,
    RamRecord,
    Section,
    VmdescTrailer,
    ZeroRun,
    release_pages,
)
from conformance.migration.vmdesc import FormatError, Vmdesc

_FULL_HEADER = re.compile(rb"\x04\x00\x00[\x00-\xff][\x00-\xff][\x01-\xff]")
_IDSTR_CHARS = re.compile(rb"[A-Za-z0-9_./:@ -]+")


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
    magic, version = FILE_HEADER.unpack_from(data, 0)
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
            (length,) = BE32.unpack_from(data, pos + 1)
            if pos + 5 + length == len(data):
                text = data[pos + 5 :]
                return VmdescTrailer(pos, length, _vmdesc.parse_vmdesc(text, f"vmdesc JSON at offset {pos + 5:#x}"))
    return None


# 0 where a byte's low nibble is clear (bits 8..11 of a 4 KiB page's flag field), else 1
_NIBBLE_SET = bytes(0 if b & 0x0F == 0 else 1 for b in range(256))


def _leading(data, start: int, take: int, stride: int, flag: bytes) -> int:
    """How many of the ``take`` records of ``stride`` bytes at ``start`` have a be64
    whose low 12 bits are ``0x0`` + ``flag`` (4 KiB pages: byte 7 == flag, low nibble of
    byte 6 clear), counted from the first.  Column-wise with strided C-level slicing,
    which reads only the flag bytes, never the pages between them."""
    stop = start + stride * take
    flags = data[start + 7 : stop : stride]
    good = len(flags) - len(flags.lstrip(flag))
    if good:
        bad = data[start + 6 : start + stride * good : stride].translate(_NIBBLE_SET).find(b"\x01")
        if bad != -1:
            good = bad
    return good


def _run_length(data: bytes, pos: int, end: int, stride: int, flag: bytes, max_window: int = 1 << 20) -> int:
    """How many records of ``stride`` bytes with ``flag`` (see ``_leading``) start at
    ``pos``, checked on growing windows."""
    count, window = 0, 64
    while True:
        take = min(window, (end - pos) // stride - count)
        if take <= 0:
            return count
        good = _leading(data, pos + stride * count, take, stride, flag)
        count += good
        if good < take:
            return count
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
        incomplete = None
        if stopped:
            # a section whose end cannot be found: without footers there is no EOF byte
            # to stop at, with footers no footer closes it - either way QEMU's load
            # would run off the end of the stream (or into a damaged footer)
            missing = "its footer and the EOF record, at least 6 bytes" if self.footers \
                else "at least the EOF record, 1 byte"
            incomplete = (f"offset {stream_end:#x}: incomplete: the stream ends inside "
                          f"{self._stop_section}: {missing} missing (or the section is damaged)")
        if not stopped:
            if not saw_eof:
                raise FormatError(f"offset {pos:#x}: incomplete: the stream ends after "
                                  f"{self._last} without its EOF record (at least 1 byte missing)")
            if self.trailer is None and pos < len(data):
                vmdesc_record = self._after_eof(pos)
            elif self.trailer is not None:
                self._after_trailer(pos)
        return MigrationFile(
            size=len(data),
            version=QEMU_VM_FILE_VERSION,
            records=tuple(records),
            vmdesc=vmdesc_record,
            tail=self.tail,
            page_size=self.page_size or DEFAULT_PAGE_SIZE,
            footers=self.footers,
            notes=tuple(self.notes),
            incomplete=incomplete,
        )

    def _after_eof(self, pos: int) -> VmdescTrailer | None:
        """Bytes after the EOF record of a file whose trailer was not found up front:
        a vmdesc trailer found structurally, then whatever QEMU would never read."""
        data = self.data
        vmdesc_record = None
        if data[pos] == QEMU_VM_VMDESCRIPTION and pos + 5 <= len(data):
            (length,) = BE32.unpack_from(data, pos + 1)
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
        return vmdesc_record

    def _after_trailer(self, pos: int) -> None:
        """The EOF record (ending at ``pos``) must meet the trailer found up front; bytes
        after the trailer are kept as the tail."""
        data = self.data
        if pos != self.trailer.offset:
            raise FormatError(f"offset {pos:#x}: EOF record ends before the vmdesc trailer at {self.trailer.offset:#x}")
        after = self.trailer.offset + 5 + self.trailer.length
        if after < len(data):
            self.tail = Opaque(data[after:], f"{len(data) - after} bytes after the vmdesc trailer (QEMU never reads them)")
            self.notes.append(f"offset {after:#x}: {self.tail.reason}")

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
                if depth == 0:
                    self._last = last
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
        return records, pos, False

    def _label(self, section_id: int) -> str:
        handler = self.handlers.get(section_id)
        return printable(handler[0].decode("utf-8", "replace")) if handler else "?"

    # -- configuration (savevm.c vmstate_configuration, loaded with version 0)
    def _configuration(self, pos: int, end: int) -> Configuration:
        data = self.data
        start = pos
        self._need(pos, 5, end, "configuration record")
        (name_len,) = BE32.unpack_from(data, pos + 1)
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
            (version,) = BE32.unpack_from(data, pos + 2 + sub_len)
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

    def _config_subsection(self, name: bytes, pos: int, end: int) -> tuple[object, int]:
        data = self.data
        where = name.decode("latin-1")
        if name == b"configuration/target-page-bits":
            self._need(pos, 4, end, where)
            return BE32.unpack_from(data, pos)[0], pos + 4
        if name == b"configuration/capabilities":
            self._need(pos, 4, end, where)
            (count,) = BE32.unpack_from(data, pos)
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
        (section_id,) = BE32.unpack_from(data, pos + 1)
        pos += 5
        if kind in (QEMU_VM_SECTION_START, QEMU_VM_SECTION_FULL):
            self._need(pos, 1, end, "section idstr")
            n = data[pos]
            if n == 0:
                raise FormatError(f"offset {pos:#x}: empty section idstr (section {section_id})")
            self._need(pos + 1, n + 8, end, "section header")
            idstr = data[pos + 1 : pos + 1 + n]
            instance_id, version_id = SECTION_IDS.unpack_from(data, pos + 1 + n)
            pos += 1 + n + 8
            self.handlers[section_id] = (idstr, instance_id, version_id)
        else:
            if section_id not in self.handlers:
                raise FormatError(f"offset {start:#x}: {SECTION_NAMES[kind]} of section {section_id} that no START opened")
            idstr = instance_id = version_id = None
        handler_idstr, handler_instance, handler_version = self.handlers[section_id]
        # the idstr as messages and notes show it: control characters escaped (one line)
        label = printable(handler_idstr.decode("utf-8", "replace"))
        body_offset = pos
        body, pos = self._section_body(kind, section_id, handler_idstr, handler_instance, handler_version, pos, end, label)
        if body is None:
            return None
        body_length = pos - body_offset
        footer = self._footer(section_id, pos, end, label)
        return Section(start, kind, section_id, idstr, instance_id, version_id, body, body_offset, body_length, footer)

    def _footer(self, section_id: int, pos: int, end: int, label: str) -> bool:
        """Whether the section body ending at ``pos`` has a footer (savevm.c
        check_section_footer); the first section decides whether the stream has them."""
        data = self.data
        if pos < end and data[pos] == QEMU_VM_SECTION_FOOTER:
            self._need(pos, 5, end, f"footer of section {section_id} ({label})")
            (footer_id,) = BE32.unpack_from(data, pos + 1)
            if footer_id != section_id:
                raise FormatError(
                    f"offset {pos:#x}: Mismatched section id in footer for {label}: read {footer_id}, expected {section_id}"
                )
            self.footers = True
            return True
        if self.footers:
            raise FormatError(f"offset {pos:#x}: Missing section footer for {label} (section {section_id})")
        self.footers = False
        if pos < end and data[pos] not in RECORD_TYPES and data[pos] != QEMU_VM_CONFIGURATION:
            raise FormatError(
                f"offset {pos:#x}: section {section_id} ({label}) is followed by byte {data[pos]:#04x}, "
                "which starts no record (body longer than its vmdesc entry says?)"
            )
        return False

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
            return self._opaque_body(section_id, pos, end, label, f"no entry for {label} instance {instance_id} in {where}")
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
    _stop_section = "a section"
    _last = "the file header"

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
            self._stop_section = f"section {section_id} ({label}) whose body starts at {pos:#x}"
            self._stop_reason = f"section {section_id} ({label}): {reason}, and without section footers its end cannot be found"
            return None, pos
        hit = self._find_footer(section_id, pos, end)
        if hit is not None:
            self.notes.append(f"offset {pos:#x}: section {section_id} ({label}) kept opaque: {reason}")
            return Opaque(self.data[pos:hit], reason), hit
        self._stop_section = f"section {section_id} ({label}) whose body starts at {pos:#x}"
        self._stop_reason = f"section {section_id} ({label}): {reason}, and no footer was found after it"
        return None, pos

    def _find_next_header(self, pos: int, end: int) -> int | None:
        """Old framing without footers nor vmdesc: where the next FULL section header
        (a new section id, a printable idstr, small instance and version) or the final
        EOF byte is.  Only used to list such streams; the bodies stay opaque."""
        data = self.data
        for match in _FULL_HEADER.finditer(data, pos, end):
            at = match.start()
            (section_id,) = BE32.unpack_from(data, at + 1)
            n = data[at + 5]
            if section_id in self.handlers or at + 6 + n + 8 > end:
                continue
            idstr = data[at + 6 : at + 6 + n]
            instance_id, version_id = SECTION_IDS.unpack_from(data, at + 6 + n)
            if _IDSTR_CHARS.fullmatch(idstr) and instance_id < 0x10000 and version_id < 0x100:
                return at
        if end - 1 >= pos and data[end - 1] == QEMU_VM_EOF:
            return end - 1
        return None

    def _find_footer(self, section_id: int, pos: int, end: int) -> int | None:
        """The first ``7e be32(section_id)`` followed by a record start (or the end)."""
        needle = b"\x7e" + BE32.pack(section_id)
        data = self.data
        hit = data.find(needle, pos, end)
        while hit != -1:
            after = hit + 5
            if after == end or data[after] in RECORD_TYPES:
                return hit
            hit = data.find(needle, hit + 1, end)
        return None

    # -- RAM (ram.c ram_load_precopy / ram_save_setup)
    def _ram_body(self, pos: int, end: int, label: str) -> tuple[RamBody, int]:
        data = self.data
        view = self.view
        page_size = self.page_size
        mask = page_size - 1
        unpack64 = BE64.unpack_from
        records = []
        append = records.append
        fast_runs = page_size == 4096
        while True:
            if pos - self.released >= RELEASE_STEP:
                release_pages(data, self.released, pos)
                self.released = pos
            if pos + 8 > end:
                raise FormatError(f"offset {pos:#x}: {label}: truncated RAM record")
            if fast_runs:
                run, stop = self._ram_run(pos, end)
                if run is not None:
                    append(run)
                    pos = stop
                    continue
            start = pos
            (word,) = unpack64(data, pos)
            flags = word & mask
            pos += 8
            kind = flags & ~RAM_SAVE_FLAG_CONTINUE
            block = None
            if kind & RAM_WITH_BLOCK and not flags & RAM_SAVE_FLAG_CONTINUE:
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
                release_pages(data, self.released, pos)  # everything of this section is parsed
                self.released = pos
                break
            elif kind == RAM_SAVE_FLAG_MEM_SIZE:
                blocks, pos = self._ram_blocks(word & ~mask, pos, end, label)
                append(RamRecord(start, word, None, blocks))
            elif kind == RAM_SAVE_FLAG_MULTIFD_FLUSH:
                append(RamRecord(start, word, None, None))
            elif kind == RAM_SAVE_FLAG_COMPRESS_PAGE:
                self._need(pos, 4, end, f"{label}: compressed page length")
                (n,) = BE32.unpack_from(data, pos)
                self._need(pos + 4, n, end, f"{label}: compressed page")
                append(RamRecord(start, word, block, data[pos + 4 : pos + 4 + n]))
                pos += 4 + n
            elif kind == RAM_SAVE_FLAG_XBZRLE:
                self._need(pos, 3, end, f"{label}: XBZRLE header")
                (n,) = BE16.unpack_from(data, pos + 1)
                self._need(pos + 3, n, end, f"{label}: XBZRLE data")
                append(RamRecord(start, word, block, (data[pos], data[pos + 3 : pos + 3 + n])))
                pos += 3 + n
            else:
                what = "RAM_SAVE_FLAG_HOOK (RDMA) records" if kind == RAM_SAVE_FLAG_HOOK else "flag combination"
                raise FormatError(f"offset {start:#x}: {label}: unsupported {what} {flags:#x} (Unknown combination of migration flags)")
        return RamBody(tuple(records), page_size), pos

    def _ram_run(self, pos: int, end: int) -> tuple[ZeroRun | PageRun | None, int]:
        """A run of ZERO|CONTINUE (at least 8) or PAGE|CONTINUE (at least 2) records of
        4 KiB pages starting at ``pos``, held column-wise: (run, where it ends), or
        (None, pos) when there is none."""
        data = self.data
        flag = data[pos + 7]
        if flag == 0x22:
            count = _run_length(data, pos, end, 9, b"\x22")
            if count >= 8:
                return _zero_run_from(data, pos, count), pos + 9 * count
        elif flag == 0x28:
            # one pass in slices of 256 records: their flags checked, their words
            # copied out, their pages handed back to the kernel
            stride = 8 + self.page_size
            words, at = [], pos
            while True:
                take = min(256, (end - at) // stride)
                good = _leading(data, at, take, stride, b"\x28") if take > 0 else 0
                if good:
                    words.append(_words_column(data, at, good, stride))
                    at += stride * good
                    release_pages(data, self.released, at)
                    self.released = at
                if good < take or take <= 0:
                    break
            count = (at - pos) // stride
            if count >= 2:
                return PageRun(pos, b"".join(words), self.page_size, self.view), at
        return None, pos

    def _ram_blocks(self, total: int, pos: int, end: int, label: str) -> tuple[tuple, int]:
        data = self.data
        blocks = []
        while total > 0:
            self._need(pos, 1, end, f"{label}: RAM block entry")
            n = data[pos]
            self._need(pos + 1, n + 8, end, f"{label}: RAM block entry")
            name = data[pos + 1 : pos + 1 + n]
            (used,) = BE64.unpack_from(data, pos + 1 + n)
            pos += 1 + n + 8
            block_page_size = mr_addr = None
            summary = self.postcopy_summary
            if summary is not None and summary != self.page_size and pos + 8 <= end:
                # ram.c: postcopy sends the block's page size when it differs from the
                # host page size; only a value in the advised page-size summary can be one.
                (candidate,) = BE64.unpack_from(data, pos)
                if candidate and candidate & summary == candidate and not candidate & (candidate - 1) and candidate != self.page_size:
                    block_page_size = candidate
                    pos += 8
            if self.ignore_shared:
                self._need(pos, 8, end, f"{label}: RAM block address")
                (mr_addr,) = BE64.unpack_from(data, pos)
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
        _, cmd, length = CMD_HEADER.unpack_from(data, pos)
        payload_at = pos + 5
        self._need(payload_at, length, end, "command payload")
        payload = data[payload_at : payload_at + length]
        name, fixed = MIG_CMDS.get(cmd, (None, -1))
        if name is None or cmd == 0:
            return Command(pos, cmd, length, Opaque(payload, f"unknown command {cmd}"))
        if fixed >= 0 and length != fixed:
            raise FormatError(f"offset {pos:#x}: command {name} has length {length}, QEMU requires {fixed}")
        where = f"offset {pos:#x}: command {name}"
        if cmd == MIG_CMD_PACKAGED:
            return self._package(pos, length, payload, end, depth, where)
        args = _command_args(cmd, length, payload, where)
        if cmd == 3 and args:  # POSTCOPY_ADVISE: the page-size summary tells RAM blocks apart
            self.postcopy_summary = args[0]
        return Command(pos, cmd, length, args)

    def _package(self, pos: int, length: int, payload: bytes, end: int, depth: int, where: str) -> Command:
        """MIG_CMD_PACKAGED: be32 size, then that many bytes of records up to their EOF."""
        (size,) = BE32.unpack(payload)
        if depth >= MAX_PACKAGE_DEPTH:
            raise FormatError(f"{where}: packages nested deeper than {MAX_PACKAGE_DEPTH}")
        inner_start = pos + 5 + 4
        self._need(inner_start, size, end, "PACKAGED contents")
        inner_end = inner_start + size
        records, stop, _ = self._records(inner_start, inner_end, depth + 1)
        if stop != inner_end:
            self.notes.append(f"offset {stop:#x}: {inner_end - stop} package bytes after its EOF (QEMU never reads them)")
            records.append(Opaque(self.data[stop:inner_end], "package bytes after its EOF", stop))
        return Command(pos, MIG_CMD_PACKAGED, length, size, tuple(records), size)


def _command_args(cmd: int, length: int, payload: bytes, where: str) -> object:
    """The parsed payload of a known command other than PACKAGED (its length already
    checked against mig_cmd_args[]); ``()`` for commands without one."""
    if cmd == 2:  # PING
        return BE32.unpack(payload)[0]
    if cmd == 3:  # POSTCOPY_ADVISE: nothing, or be64 page-size summary + be64 target page size
        if length == 0:
            return ()
        if length != 16:
            raise FormatError(f"{where}: length {length}, expected 0 or 16")
        return struct.unpack(">QQ", payload)
    if cmd == 6:  # POSTCOPY_RAM_DISCARD: u8 version, u8 len, name, u8 0, (be64 start, be64 len)*
        if length < 3 or length < 3 + payload[1]:
            raise FormatError(f"{where}: payload too short ({length} bytes)")
        n = payload[1]
        ranges_at = 3 + n
        if payload[2 + n] != 0 or (length - ranges_at) % 16:
            raise FormatError(f"{where}: malformed payload (missing nil after the name, or a partial range)")
        ranges = tuple(struct.iter_unpack(">QQ", payload[ranges_at:]))
        return (payload[0], payload[2 : 2 + n], ranges)
    if cmd == 10:  # RECV_BITMAP: u8 len + block name
        if length < 1 or payload[0] + 1 != length:
            raise FormatError(f"{where}: name length {payload[0] if length else '?'} does not fill {length} bytes")
        return payload[1:]
    return ()
