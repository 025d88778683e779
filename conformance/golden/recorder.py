"""Which field wrote which bytes: the annotating recorder behind the golden views.

:func:`record_save` / :func:`record_load` run the reference engine with its QEMUFile
writer/reader replaced by recording ones and its field, info and subsection functions
wrapped in frames, so that every byte written (or read) is attributed to exactly one
field path (:class:`Span`), including the bytes the core and the compound infos write
themselves.  The hex views (:mod:`conformance.golden.render`) and the field-level diffs
(:mod:`conformance.golden.diff`) are built from these spans.
"""

from __future__ import annotations

import inspect
import json
import struct

import attrs

from conformance.golden.corpus import HEX_SHOW
from conformance.model.infos import from_unsigned


@attrs.frozen
class Span:
    offset: int
    length: int
    path: str
    value: str = ""
    info: str | None = attrs.field(default=None, eq=False)  # decodes other bytes of it


def annotate(desc, state, variant: str) -> list[Span]:
    """Per-field byte spans of the reference save, tiling every byte.

    The golden view needs each byte attributed to exactly one field, including the
    bytes the core and the compound infos write themselves (pointer markers, subsection
    header parts, QTAILQ/QLIST link bytes, GTREE node counts and keys, GByteArray
    lengths, bitmap words), so that a diff can name the byte that changed.
    ``conformance.golden.annotate.annotate`` gives element spans (enclosing and overlapping
    for compound infos, headers as one framing span); tests/test_golden.py checks the
    two agree on every element of every pinned stream."""
    return record_save(desc, state, variant)[1]


def short_hex(data: bytes) -> str:
    if len(data) <= HEX_SHOW:
        return data.hex()
    return data[:HEX_SHOW].hex() + f"…({len(data)} bytes)"


class _Frame:
    __slots__ = ("kind", "path", "field", "info", "elem", "links")

    def __init__(self, kind, path, field=None, info=None) -> None:
        self.kind = kind
        self.path = path
        self.field = field
        self.info = info
        self.elem = None
        self.links = 0


class _Recorder:
    """Attributes each write of the reference engine to the innermost field frame."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.spans: list[Span] = []
        self.busy = False

    def note(self, start: int, data: bytes, call: str) -> None:
        frame = self.stack[-1] if self.stack else None
        path, value = self._label(frame, data, call)
        info = None
        if frame is not None and frame.kind == "info" and path == frame.path:
            info = frame.info.name
        self.spans.append(Span(start, len(data), path, value, info))

    def _label(self, frame, data: bytes, call: str) -> tuple[str, str]:
        if frame is None:
            return "?", ""
        if frame.kind == "field":  # written by the core itself: a pointer marker
            where = frame.elem or frame.path
            if call == "byte":
                return f"{where}#marker", marker_value(data)
            return f"{where}#core", ""
        if frame.kind == "subsections":
            if call == "byte" and data == b"\x05" and frame.links == 0:
                frame.links = 1
                return f"{frame.path}/@?#subsection", "QEMU_VM_SUBSECTION"
            if call == "byte" and frame.links == 1:
                frame.links = 2
                return f"{frame.path}/@?#len", str(data[0])
            if call == "buffer" and frame.links == 2:
                frame.links = 3
                name = data.decode("utf-8", "replace")  # the save wrote sub.name as UTF-8
                for back in (1, 2):  # name the marker and the length byte now
                    s = self.spans[-back]
                    self.spans[-back] = attrs.evolve(s, path=s.path.replace("@?", "@" + name))
                return f"{frame.path}/@{name}#idstr", json.dumps(name)
            if call == "be32" and frame.links == 3:
                frame.links = 0
                name = self.spans[-1].path.rsplit("/@", 1)[1].split("#")[0]
                return f"{frame.path}/@{name}#version_id", str(int.from_bytes(data, "big"))
            return f"{frame.path}#subsections", ""
        # an info's put()
        info = frame.info
        if info is None:
            return frame.path, short_hex(data)
        kind = info.kind
        path = frame.path
        if kind in ("qtailq", "qlist"):
            if data == b"\x00":
                return f"{path}#end", "end of list"
            frame.links += 1
            return f"{path}[{frame.links - 1}]#link", "another element" + (
                f" (0x{data.hex()})" if data != b"\x01" else "")
        if kind == "gtree":
            if call == "be32":
                return f"{path}#nnodes", str(int.from_bytes(data, "big"))
            if call == "byte":
                if data == b"\x00":
                    return f"{path}#end", "end of tree"
                frame.links += 1
                return f"{path}[{frame.links - 1}]#link", "another node"
            return f"{path}[{frame.links - 1}].key", str(int.from_bytes(data, "big"))
        if kind == "gbytearray":
            if call == "be32":
                return f"{path}#len", str(int.from_bytes(data, "big"))
            return path, short_hex(data)
        if kind == "capability":
            if call == "byte":
                return f"{path}#len", str(data[0])
            return path, json.dumps(data.decode("latin-1"))
        if kind == "bitmap":
            frame.links += 1
            return f"{path}#word{frame.links - 1}", f"0x{int.from_bytes(data, 'big'):016x}"
        return path, decode_value(info, data)


def marker_value(data: bytes) -> str:
    return {b"\x30": "NULL (0x30)", b"\x31": "VALID (0x31)"}.get(
        data, f"0x{data.hex()} (not a marker value)")


def decode_value(info, data: bytes) -> str:
    """A leaf value as the annotated view shows it."""
    kind = info.kind
    if kind == "bool":
        return {b"\x00": "false", b"\x01": "true"}.get(data, f"true (0x{data.hex()})")
    if kind in ("int", "equal", "le", "timer") and len(data) == info.width:
        value = from_unsigned(info, int.from_bytes(data, "big"))
        if kind == "timer" and value == -1:
            return "-1 (not armed)"
        return str(value)
    if kind == "double" and len(data) == 8:
        return f"{struct.unpack('>d', data)[0]!r} (0x{data.hex()})"
    if kind == "unused":
        return "(unused)"
    return short_hex(data)


def _instrumented(rec: "_Recorder", io_name: str, io_class, frames: dict, run):
    """Run ``run()`` with reference.<io_name> replaced by ``io_class`` and the functions
    in ``frames`` (name -> (frame kind, path argument, field argument, info argument))
    pushing a frame on ``rec`` while they run; ``_elem_path`` tells the innermost field
    frame which element it is on.  Everything is restored afterwards (single-threaded;
    each xdist worker is its own process)."""
    from conformance.engines import reference as ref

    names = (io_name, "_elem_path", *frames)
    orig = {name: getattr(ref, name) for name in names}

    def framed(name, kind, path_arg, field_arg=None, info_arg=None):
        # arguments bound by name, so a reordered parameter list cannot mislabel bytes
        fn = orig[name]
        sig = inspect.signature(fn)

        def wrapper(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs).arguments
            except TypeError:
                bound = {}
            rec.stack.append(_Frame(kind, bound.get(path_arg, "?"),
                                    bound.get(field_arg) if field_arg else None,
                                    bound.get(info_arg) if info_arg else None))
            try:
                return fn(*args, **kwargs)
            finally:
                rec.stack.pop()

        return wrapper

    def elem_path(*args, **kwargs):
        out = orig["_elem_path"](*args, **kwargs)
        if rec.stack and rec.stack[-1].kind == "field":
            rec.stack[-1].elem = out
        return out

    patched = {io_name: io_class, "_elem_path": elem_path}
    for name, spec in frames.items():
        patched[name] = framed(name, *spec)
    for name, fn in patched.items():
        setattr(ref, name, fn)
    try:
        return run(ref)
    finally:
        for name, fn in orig.items():
            setattr(ref, name, fn)


def record_save(desc, state, variant: str, vmdesc: bool = False):
    """Run the reference save with its writes attributed to field paths: (outcome,
    spans tiling the stream)."""
    from conformance.engines.qemufile import QEMUFileWriter

    rec = _Recorder()

    class RecordingWriter(QEMUFileWriter):
        __slots__ = ()

        def _noted(self, call, method, *args):
            start = len(self.buf)
            method(self, *args)
            if len(self.buf) > start:
                rec.note(start, bytes(self.buf[start:]), call)

        def put_byte(self, v):
            self._noted("byte", QEMUFileWriter.put_byte, v)

        def put_be16(self, v):
            self._noted("be16", QEMUFileWriter.put_be16, v)

        def put_be32(self, v):
            self._noted("be32", QEMUFileWriter.put_be32, v)

        def put_be64(self, v):
            self._noted("be64", QEMUFileWriter.put_be64, v)

        def put_buffer(self, data):
            self._noted("buffer", QEMUFileWriter.put_buffer, data)

    out = _instrumented(rec, "QEMUFileWriter", RecordingWriter, {
        "_save_field": ("field", "fpath", "field"),
        "_put_info": ("info", "epath", "field", "info"),
        "_save_subsections": ("subsections", "path"),
    }, lambda ref: ref.save(desc, state, variant, vmdesc=vmdesc))
    return out, fill_gaps(rec.spans, len(out.data))


def record_load(desc, data: bytes, dest, variant: str, version_id=None):
    """Run the reference load with its reads attributed to field paths: (outcome,
    spans tiling the input; bytes never read are one '(not read)' span)."""
    from conformance.engines.qemufile import QEMUFileReader

    rec = _Recorder()

    class RecordingReader(QEMUFileReader):
        __slots__ = ()

        def _noted(self, call, method, *args):
            if rec.busy:  # get_be32 reads through get_bytes: record the outer call only
                return method(self, *args)
            start = self.pos
            rec.busy = True
            try:
                out = method(self, *args)
            finally:
                rec.busy = False
            if self.pos > start:
                rec.note(start, bytes(self.data[start:self.pos]), call)
            return out

        def get_byte(self):
            return self._noted("byte", QEMUFileReader.get_byte)

        def get_bytes(self, n):
            return self._noted("buffer", QEMUFileReader.get_bytes, n)

        def get_be16(self):
            return self._noted("be16", QEMUFileReader.get_be16)

        def get_be32(self):
            return self._noted("be32", QEMUFileReader.get_be32)

        def get_be64(self):
            return self._noted("be64", QEMUFileReader.get_be64)

        def get_buffer(self, n):
            return self._noted("buffer", QEMUFileReader.get_buffer, n)

        def skip(self, n):
            return self._noted("byte" if n == 1 else "buffer", QEMUFileReader.skip, n)

    out = _instrumented(rec, "QEMUFileReader", RecordingReader, {
        "_load_field": ("field", "fpath", "field"),
        "_get_info": ("info", "epath", "field", "info"),
        "_load_subsections": ("subsections", "path"),
    }, lambda ref: ref.load(desc, data, dest, variant, version_id=version_id))
    spans = fill_gaps(rec.spans, len(data))
    return out, [attrs.evolve(s, path="(unread)", value="") if s.path == "?" and
                 s.offset >= len(out.data) else s for s in spans]


def fill_gaps(spans: list[Span], total: int) -> list[Span]:
    out: list[Span] = []
    pos = 0
    for s in sorted(spans, key=lambda s: s.offset):
        if s.offset > pos:
            out.append(Span(pos, s.offset - pos, "?", ""))
        out.append(s)
        pos = max(pos, s.offset + s.length)
    if pos < total:
        out.append(Span(pos, total - pos, "?", ""))
    return out
