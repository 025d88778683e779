"""Listings and renderings of a parsed migration file.

``list_records`` (one line per record), ``locate`` (which record and field hold a byte
offset), ``analyze_state`` / ``analyze_desc`` / ``render_json`` (exactly what
scripts/analyze-migration.py prints with ``-d state`` / ``-d desc``), ``state_json``
(our own JSON of every record, optionally with every RAM page) and ``iter_pages``.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii  # C: what json.dumps quotes strings with

from conformance.migration import vmdesc as _vmdesc
from conformance.migration.records import (
    MIG_CMD_PACKAGED,
    QEMU_VM_FILE_MAGIC,
    RAM_FLAG_NAMES,
    RAM_SAVE_FLAG_CONTINUE,
    RAM_SAVE_FLAG_MEM_SIZE,
    RAM_WITH_BLOCK,
    Command,
    Configuration,
    Eof,
    MigrationFile,
    Opaque,
    PageRun,
    RamBody,
    RamRecord,
    Section,
    ZeroRun,
    walk,
)
from conformance.migration.vmdesc import Body, FormatError


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
                where = f"{record.name} section {record.section_id} ({label_of(mf, record)})"
                if offset < record.body_offset:
                    return where + ", section header"
                if offset >= body_end:
                    return where + ", footer"
                if isinstance(record.body, Body):
                    return where + ", field " + _vmdesc.locate_in_body(record.body, offset - record.body_offset, label_of(mf, record))
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


def label_of(mf: MigrationFile, section: Section) -> str:
    if section.idstr is not None:
        return section.label
    for other in walk(mf.records):
        if isinstance(other, Section) and other.section_id == section.section_id and other.idstr is not None:
            return other.label
    return "?"


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
                value: dict | str = {"section sizes": {}}
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
    """``json.dumps(value, indent=4, separators=(',', ': '))`` and a newline, as
    analyze-migration.py prints it, byte for byte.  json uses its pure-Python encoder
    whenever ``indent`` is set; this one writes the same text with C-level string
    quoting, and a list of strings (an array's elements) in one join.  Values it does
    not render (other than dict / list / str / bool / int / None) go to json.dumps."""
    out: list[str] = []
    try:
        _render(value, "\n", out.append)
    except _Unrendered:
        import json

        return json.dumps(value, indent=4, separators=(",", ": ")) + "\n"
    out.append("\n")
    return "".join(out)


class _Unrendered(Exception):
    pass


def _render(value, newline: str, emit, quote=encode_basestring_ascii) -> None:
    kind = type(value)
    if kind is str:
        emit(quote(value))
    elif kind is dict:
        if not value:
            emit("{}")
            return
        inner = newline + "    "
        separator = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _Unrendered
            emit(separator + quote(key) + ": ")
            _render(item, inner, emit)
            separator = "," + inner
        emit(newline + "}")
    elif kind is list:
        if not value:
            emit("[]")
            return
        inner = newline + "    "
        try:
            emit("[" + inner + ("," + inner).join(map(quote, value)) + newline + "]")
        except TypeError:  # not all strings
            separator = "[" + inner
            for item in value:
                emit(separator)
                _render(item, inner, emit)
                separator = "," + inner
            emit(newline + "]")
    elif value is True:
        emit("true")
    elif value is False:
        emit("false")
    elif value is None:
        emit("null")
    elif kind is int:
        emit(int.__repr__(value))
    else:
        raise _Unrendered


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
            if kind & RAM_WITH_BLOCK:
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
        {"offset": r.offset, "section": f"{r.name} {r.section_id} ({label_of(mf, r)})", "reason": r.body.reason}
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
