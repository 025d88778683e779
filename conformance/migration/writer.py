"""Writing a migration file back from the record model, byte-exact.

``encode(mf)`` emits the header, every record from its model (section headers and
bodies, RAM records and runs, configuration, commands with their packages, footers),
the vmdesc trailer and the opaque tail; nothing is copied from the input except what
the model says is opaque.  :class:`CompareSink` checks the chunks against the original
bytes as they are produced, so a large file is never held twice.
"""

from __future__ import annotations

import struct

from conformance.migration import vmdesc as _vmdesc
from conformance.migration.records import (
    BE16,
    BE32,
    BE64,
    CMD_HEADER,
    FILE_HEADER,
    MIG_CMD_PACKAGED,
    QEMU_VM_COMMAND,
    QEMU_VM_CONFIGURATION,
    QEMU_VM_FILE_MAGIC,
    QEMU_VM_SECTION_FOOTER,
    QEMU_VM_SUBSECTION,
    QEMU_VM_VMDESCRIPTION,
    RAM_SAVE_FLAG_COMPRESS_PAGE,
    RAM_SAVE_FLAG_CONTINUE,
    RAM_SAVE_FLAG_MEM_SIZE,
    RAM_SAVE_FLAG_PAGE,
    RAM_SAVE_FLAG_XBZRLE,
    RAM_SAVE_FLAG_ZERO,
    RELEASE_STEP,
    SECTION_IDS,
    Command,
    Configuration,
    Eof,
    MigrationFile,
    Opaque,
    PageRun,
    RamBody,
    Section,
    ZeroRun,
    release_pages,
)
from conformance.migration.vmdesc import Body


def encode(mf: MigrationFile, sink=None) -> bytes | None:
    """The file rebuilt from the model.

    With ``sink`` (anything with ``append(chunk)``, e.g. ``CompareSink``) the chunks
    are streamed into it instead of joined, so a large file is never held twice."""
    out = sink if sink is not None else []
    out.append(FILE_HEADER.pack(QEMU_VM_FILE_MAGIC, mf.version))
    _encode_records(mf.records, out)
    if mf.vmdesc is not None:
        text = mf.vmdesc.vmdesc.encode()
        out.append(bytes((QEMU_VM_VMDESCRIPTION,)) + BE32.pack(len(text)))
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
        if self.pos - self._released >= RELEASE_STEP:
            release_pages(self.source.obj, self._released, self.pos)
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


def _encode_records(records, out: list) -> None:
    for record in records:
        if isinstance(record, Section):
            out.append(section_header_bytes(record))
            encode_section_body(record.body, out)
            if record.footer:
                out.append(bytes((QEMU_VM_SECTION_FOOTER,)) + BE32.pack(record.section_id))
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
    head = bytes((section.type,)) + BE32.pack(section.section_id)
    if section.idstr is not None:
        head += bytes((len(section.idstr),)) + section.idstr + SECTION_IDS.pack(section.instance_id, section.version_id)
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
    pack64 = BE64.pack
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
            append(BE32.pack(len(payload)) + payload)
        elif kind == RAM_SAVE_FLAG_XBZRLE:
            append(bytes((payload[0],)) + BE16.pack(len(payload[1])) + payload[1])


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


def configuration_bytes(config: Configuration) -> bytes:
    parts = [bytes((QEMU_VM_CONFIGURATION,)), BE32.pack(len(config.machine)), config.machine]
    for sub in config.subsections:
        parts.append(bytes((QEMU_VM_SUBSECTION, len(sub.name))) + sub.name + BE32.pack(sub.version))
        value = sub.value
        if sub.name == b"configuration/target-page-bits":
            parts.append(BE32.pack(value))
        elif sub.name == b"configuration/capabilities":
            parts.append(BE32.pack(len(value)))
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
        payload = BE32.pack(args)
    elif cmd == 3:
        payload = struct.pack(">QQ", *args) if args else b""
    elif cmd == 6:
        version, name, ranges = args
        payload = bytes((version, len(name))) + name + b"\x00" + b"".join(struct.pack(">QQ", *r) for r in ranges)
    elif cmd == 10:
        payload = bytes((len(args),)) + args
    elif cmd == MIG_CMD_PACKAGED:
        payload = BE32.pack(args)
    else:
        payload = b""
    return CMD_HEADER.pack(QEMU_VM_COMMAND, cmd, len(payload)) + payload
