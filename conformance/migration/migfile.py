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

This module is the one callers import; it re-exports the public names of the modules
that do the work: :mod:`~conformance.migration.records` (constants, record types),
:mod:`~conformance.migration.reader` (``read_migration``, ``vmdesc_of``),
:mod:`~conformance.migration.writer` (``encode``, ``CompareSink``, record bytes) and
:mod:`~conformance.migration.report` (listings, ``locate``, the analyze-migration.py
renderings, ``state_json``).
"""

from conformance.migration.reader import read_migration, vmdesc_of
from conformance.migration.records import (
    DEFAULT_PAGE_SIZE,
    MAX_PACKAGE_DEPTH,
    MIG_CMD_PACKAGED,
    MIG_CMDS,
    QEMU_VM_COMMAND,
    QEMU_VM_CONFIGURATION,
    QEMU_VM_EOF,
    QEMU_VM_FILE_MAGIC,
    QEMU_VM_FILE_VERSION,
    QEMU_VM_FILE_VERSION_COMPAT,
    QEMU_VM_SECTION_END,
    QEMU_VM_SECTION_FOOTER,
    QEMU_VM_SECTION_FULL,
    QEMU_VM_SECTION_PART,
    QEMU_VM_SECTION_START,
    QEMU_VM_SUBSECTION,
    QEMU_VM_VMDESCRIPTION,
    RAM_FLAG_NAMES,
    RAM_SAVE_FLAG_COMPRESS_PAGE,
    RAM_SAVE_FLAG_CONTINUE,
    RAM_SAVE_FLAG_EOS,
    RAM_SAVE_FLAG_HOOK,
    RAM_SAVE_FLAG_MEM_SIZE,
    RAM_SAVE_FLAG_MULTIFD_FLUSH,
    RAM_SAVE_FLAG_PAGE,
    RAM_SAVE_FLAG_XBZRLE,
    RAM_SAVE_FLAG_ZERO,
    SECTION_NAMES,
    Command,
    ConfigSubsection,
    Configuration,
    Eof,
    MigFileError,
    MigrationFile,
    Opaque,
    PageRun,
    RamBlock,
    RamBody,
    RamRecord,
    Section,
    VmdescTrailer,
    ZeroRun,
    walk,
)
from conformance.migration.report import (
    analyze_desc,
    analyze_state,
    iter_pages,
    label_of,
    list_records,
    locate,
    record_length,
    render_json,
    state_json,
)
from conformance.migration.vmdesc import Body, FormatError, Vmdesc
from conformance.migration.writer import (
    CompareSink,
    command_bytes,
    configuration_bytes,
    encode,
    encode_ram,
    encode_section_body,
    section_header_bytes,
)

__all__ = [
    # records
    "DEFAULT_PAGE_SIZE", "MAX_PACKAGE_DEPTH", "MIG_CMD_PACKAGED", "MIG_CMDS", "QEMU_VM_COMMAND",
    "QEMU_VM_CONFIGURATION", "QEMU_VM_EOF", "QEMU_VM_FILE_MAGIC", "QEMU_VM_FILE_VERSION",
    "QEMU_VM_FILE_VERSION_COMPAT", "QEMU_VM_SECTION_END", "QEMU_VM_SECTION_FOOTER",
    "QEMU_VM_SECTION_FULL", "QEMU_VM_SECTION_PART", "QEMU_VM_SECTION_START",
    "QEMU_VM_SUBSECTION", "QEMU_VM_VMDESCRIPTION", "RAM_FLAG_NAMES",
    "RAM_SAVE_FLAG_COMPRESS_PAGE", "RAM_SAVE_FLAG_CONTINUE", "RAM_SAVE_FLAG_EOS",
    "RAM_SAVE_FLAG_HOOK", "RAM_SAVE_FLAG_MEM_SIZE", "RAM_SAVE_FLAG_MULTIFD_FLUSH",
    "RAM_SAVE_FLAG_PAGE", "RAM_SAVE_FLAG_XBZRLE", "RAM_SAVE_FLAG_ZERO", "SECTION_NAMES",
    "Command", "ConfigSubsection", "Configuration", "Eof", "MigFileError", "MigrationFile",
    "Opaque", "PageRun", "RamBlock", "RamBody", "RamRecord", "Section", "VmdescTrailer",
    "ZeroRun", "walk",
    # vmdesc
    "Body", "FormatError", "Vmdesc",
    # reading
    "read_migration", "vmdesc_of",
    # writing
    "CompareSink", "command_bytes", "configuration_bytes", "encode", "encode_ram",
    "encode_section_body", "section_header_bytes",
    # reports
    "analyze_desc", "analyze_state", "iter_pages", "label_of", "list_records", "locate",
    "record_length", "render_json", "state_json",
]
