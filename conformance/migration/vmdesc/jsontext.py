"""vmdesc JSON text: read with duplicate keys kept (``JsonObject``, ``loads``), written
byte-exact with QEMU's JSONWriter or the pre-5.2 qjson style (``write_json``)."""

from __future__ import annotations

import json

from conformance.errors import FormatError
from conformance.migration.jsonwriter import JSONWriter, quote


class JsonObject(list):
    """A JSON object as its ``(key, value)`` pairs in text order, duplicate keys kept.

    ``get``/``[]`` look keys up like ``dict(pairs)`` would: the last value of a repeated
    key (this is also what analyze-migration.py's OrderedDict hook sees).
    """

    __slots__ = ("_map",)

    def _lookup(self) -> dict:
        try:
            return self._map
        except AttributeError:
            self._map = dict(list.__iter__(self))
            return self._map

    def get(self, key, default=None):
        try:
            return self._map.get(key, default)
        except AttributeError:
            return self._lookup().get(key, default)

    def __contains__(self, key) -> bool:  # type: ignore[override]
        return key in self._lookup()

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return self._lookup()[key]
        return list.__getitem__(self, key)

    def groups(self, first_key: str = "vmsd_name") -> list[JsonObject]:
        """Split the pairs into runs that each start at ``first_key``.

        A qtailq field object holds one ``vmsd_name, version, fields[, subsections]``
        run per element; this returns those runs as separate objects.
        """
        runs: list[JsonObject] = []
        current: JsonObject | None = None
        for key, value in self:
            if key == first_key:
                current = JsonObject()
                runs.append(current)
            if current is not None and key in ("vmsd_name", "version", "fields", "subsections"):
                current.append((key, value))
        return runs

    def to_plain(self) -> dict:
        """Nested plain dicts, duplicates collapsed the way json.loads collapses them."""
        return {k: _plain(v) for k, v in self._lookup().items()}


def _plain(value):
    if isinstance(value, JsonObject):
        return value.to_plain()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str) -> object:
    """Parse vmdesc text keeping duplicate keys (objects become ``JsonObject``)."""
    return json.loads(text, object_pairs_hook=JsonObject, parse_constant=_reject_constant)


def write_json(value: object, style: str = "json-writer") -> str:
    """The text QEMU's JSONWriter (or, ``style="qjson"``, the pre-5.2 qjson writer)
    prints for a parsed JSON tree: conformance.migration.jsonwriter's format, rendered
    by joining strings (five times faster than driving the streaming writer, which
    ``write_json_with_writer`` does and the tests hold this to)."""
    if style == "json-writer":
        return _render(value)
    if style == "qjson":
        return _render_qjson(value)
    raise ValueError(f"unknown JSON writer style {style!r}")


def _render(value: object) -> str:
    # qobject/json-writer.c: ", " between members, ": " after a key, quoted_str() escaping
    if isinstance(value, JsonObject):
        return "{" + ", ".join([quote(k) + ": " + _render(v) for k, v in list.__iter__(value)]) + "}"
    if isinstance(value, list):
        return "[" + ", ".join([_render(v) for v in value]) + "]"
    return _scalar(value, quote)


def _render_qjson(value: object) -> str:
    # migration/qjson.c (QEMU <= 5.1): "{ " ... " }", '"key" : ', strings unescaped
    if isinstance(value, JsonObject):
        return "{ " + ", ".join(['"' + k + '" : ' + _render_qjson(v)
                                 for k, v in list.__iter__(value)]) + " }"
    if isinstance(value, list):
        return "[" + ", ".join([_render_qjson(v) for v in value]) + "]"
    return _scalar(value, lambda text: '"' + text + '"')


def _scalar(value: object, quote) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    # floats: QEMU's vmdesc never holds one
    raise FormatError(f"vmdesc value {value!r} has no JSONWriter encoding")


def write_json_with_writer(value: object, style: str = "json-writer") -> str:
    """``write_json`` through the streaming JSONWriter, call by call (the oracle)."""
    writer = JSONWriter(style)
    _emit(writer, None, value)
    return writer.get()


def _emit(writer, name: str | None, value: object) -> None:
    if isinstance(value, JsonObject):
        writer.start_object(name)
        for key, item in value:
            _emit(writer, key, item)
        writer.end_object()
    elif isinstance(value, list):
        writer.start_array(name)
        for item in value:
            _emit(writer, None, item)
        writer.end_array()
    elif isinstance(value, bool):
        writer.bool(name, value)
    elif isinstance(value, int):
        writer.int64(name, value)
    elif isinstance(value, str):
        writer.str(name, value)
    elif value is None:
        writer.null(name)
    else:  # floats: QEMU's vmdesc never holds one
        raise FormatError(f"vmdesc value {value!r} has no JSONWriter encoding")
