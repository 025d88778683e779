"""The vmdesc trailer as a model (``Vmdesc``): its eras, parsing (``parse_vmdesc``) with
the schema and limits checked, and building one (``build_vmdesc``)."""

from __future__ import annotations

import functools

from conformance.errors import FormatError
from conformance.migration.vmdesc.jsontext import JsonObject, loads, write_json
from conformance.model import limits as _limits

#: vmdesc text -> its writer style (Vmdesc.style), the last few texts seen
_STYLES: dict[bytes, str | None] = {}

ERA_72 = "qemu-7.2"  # {"page_size", "devices"}
ERA_2024 = "qemu-8+"  # {"configuration", "page_size", "devices"}


class Vmdesc:
    """The parsed vmdesc trailer.

    ``root`` is the full parsed tree (duplicates kept), ``text`` the bytes it was
    parsed from.  ``style`` is the JSON writer that reproduces ``text`` byte for byte,
    or None when neither does (then the text is kept opaque and ``note`` says why).  It
    is worked out on first use: decoding does not need it, re-encoding does.
    """

    def __init__(self, root: JsonObject, text: bytes) -> None:
        self.root = root
        self.text = text

    def __eq__(self, other) -> bool:
        if type(other) is not Vmdesc:
            return NotImplemented
        return self.root == other.root and self.text == other.text

    __hash__ = None  # the root is a list

    def __repr__(self) -> str:
        return f"Vmdesc(root=..., text={len(self.text)} bytes)"

    @functools.cached_property
    def style(self) -> str | None:
        # a function of the text alone (the root is parsed from it): remembered per
        # text, as one file is read several times (decode, verify) and a mutated file
        # mostly keeps its vmdesc; rendering a 300 KB trailer takes tens of ms
        text = self.text
        if text in _STYLES:
            return _STYLES[text]
        found = None
        for style in ("json-writer", "qjson"):
            try:
                if write_json(self.root, style).encode("utf-8") == text:
                    found = style
                    break
            except FormatError:
                break
            except UnicodeEncodeError:  # a lone surrogate escape ("\ud800"): no writer
                continue  # that QEMU wrote raw: the text stays opaque
        if len(_STYLES) >= 16:
            del _STYLES[next(iter(_STYLES))]  # the oldest
        _STYLES[text] = found
        return found

    @property
    def note(self) -> str | None:
        if self.style is None:
            return "no QEMU JSON writer style reproduces the text: kept opaque"
        return None

    @property
    def era(self) -> str:
        return ERA_2024 if "configuration" in self.root else ERA_72

    @property
    def page_size(self) -> int | None:
        value = self.root.get("page_size")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def configuration(self) -> JsonObject | None:
        value = self.root.get("configuration")
        return value if isinstance(value, JsonObject) else None

    @property
    def devices(self) -> list:
        value = self.root.get("devices")
        return value if isinstance(value, list) else []

    def device_map(self) -> dict[tuple[str, int], JsonObject]:
        """(idstr, instance_id) -> device entry; a repeated key keeps the last entry,
        like analyze-migration.py's section table."""
        table: dict[tuple[str, int], JsonObject] = {}
        for device in self.devices:
            if isinstance(device, JsonObject):
                table[(device.get("name"), device.get("instance_id"))] = device
        return table

    def encode(self) -> bytes:
        """The JSON text rebuilt from ``root``: ``style`` is the writer that rebuilt
        ``text`` byte for byte from it, so that is ``text`` (a trailer is not edited in
        place: ``build_vmdesc`` makes a new one); the opaque text when no writer fits."""
        return self.text


def parse_vmdesc(text: bytes, where: str = "vmdesc") -> Vmdesc:
    """Parse vmdesc text; FormatError names the JSON line/column and file offset."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{where}: not UTF-8 at JSON byte {exc.start}") from None
    deep = _limits.json_depth_error(decoded, _limits.JSON_DEPTH_LIMIT)
    if deep is not None:
        offset, depth = deep
        raise _limits.exceeded("json-depth", f"{where}: JSON byte {len(decoded[:offset].encode())}",
                               f"JSON nested {depth} deep", depth)
    try:
        root = loads(decoded)
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:
        raise FormatError(f"{where}: bad JSON: {exc}") from None
    if not isinstance(root, JsonObject):
        raise FormatError(f"{where}: JSON top level is not an object")
    _check_schema(root, where)
    return Vmdesc(root, bytes(text))


def _check_schema(root: JsonObject, where: str) -> None:
    devices = root.get("devices")
    if not isinstance(devices, list):
        raise FormatError(f"{where}: $.devices is missing or not an array")
    for i, device in enumerate(devices):
        path = f"{where}: $.devices[{i}]"
        if not isinstance(device, JsonObject):
            raise FormatError(f"{path} is not an object")
        if not isinstance(device.get("name"), str) or not isinstance(device.get("instance_id"), int):
            raise FormatError(f"{path} lacks a string name or an integer instance_id")
        if not isinstance(device.get("fields"), list):
            raise FormatError(f"{path} ({device.get('name')}) has no fields array")
    page_size = root.get("page_size")
    if page_size is not None and (not isinstance(page_size, int) or page_size <= 0 or page_size & (page_size - 1)):
        raise FormatError(f"{where}: $.page_size {page_size!r} is not a power of two")


def build_vmdesc(
    page_size: int,
    devices: list[JsonObject],
    configuration: JsonObject | None = None,
    era: str = ERA_2024,
) -> JsonObject:
    """A vmdesc root in the member order QEMU's savevm.c writes for ``era``."""
    root = JsonObject()
    if era == ERA_2024:
        if configuration is None:
            raise ValueError("the QEMU 8+ vmdesc starts with a configuration member")
        root.append(("configuration", configuration))
    elif era != ERA_72:
        raise ValueError(f"unknown vmdesc era {era!r}")
    root.append(("page_size", page_size))
    root.append(("devices", list(devices)))
    return root
