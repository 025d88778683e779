"""A JSON text writer byte-exact with QEMU's non-pretty ``JSONWriter``.

Models qobject/json-writer.c (json_writer_start_object, maybe_comma_name, quoted_str):
members are separated by ", ", keys are followed by ": ", containers have no inner
padding, integers are printed in decimal, and strings escape ``"`` ``\\`` \\b \\f \\n \\r
\\t and every other code point below 0x20 or from 0x7F on as upper-case ``\\uXXXX``
(surrogate pairs beyond the BMP).  QEMU's vmdesc trailer is written with it.

The older writer (migration/qjson.c, QEMU <= 5.1) is available as ``style="qjson"``:
``{ "key" : value, ... }`` with a space inside braces, around the colon, and no string
escaping.
"""

from __future__ import annotations

_SIMPLE_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def quote(text: str) -> str:
    """Quote ``text`` the way qobject/json-writer.c quoted_str() does."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'  # fast path: nothing to escape (0x20..0x7E only)
    out = ['"']
    for ch in text:
        cp = ord(ch)
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif 0xD800 <= cp <= 0xDFFF:
            # A lone surrogate is what invalid UTF-8 decodes to here; QEMU's
            # mod_utf8_codepoint() reports it as invalid -> U+FFFD.
            out.append("\\uFFFD")
        elif cp > 0xFFFF:
            cp -= 0x10000
            out.append("\\u%04X\\u%04X" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)))
        elif cp < 0x20 or cp >= 0x7F:
            out.append("\\u%04X" % cp)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class JSONWriter:
    """Streaming writer with QEMU's json_writer_* call shape.

    ``name`` is ignored outside objects, exactly like QEMU (it only prints a key when
    the innermost open container is an object).
    """

    def __init__(self, style: str = "json-writer") -> None:
        if style not in ("json-writer", "qjson"):
            raise ValueError(f"unknown JSON writer style {style!r}")
        self.style = style
        self._parts: list[str] = []
        self._stack: list[bool] = []  # True = array
        self._need_comma = False

    # -- internals modelled on maybe_comma_name / enter_container / leave_container
    def _comma_name(self, name: str | None) -> None:
        if self._need_comma:
            self._parts.append(", " if self.style == "json-writer" else ", ")
        else:
            self._need_comma = True
        if self._stack and not self._stack[-1]:
            if name is None:
                raise ValueError("a member inside a JSON object needs a name")
            if self.style == "json-writer":
                self._parts.append(quote(name) + ": ")
            else:
                self._parts.append('"' + name + '" : ')

    def _enter(self, is_array: bool) -> None:
        self._stack.append(is_array)
        self._need_comma = False
        if self.style == "qjson" and not is_array:
            self._parts.append(" ")

    def _leave(self, is_array: bool) -> None:
        if not self._stack or self._stack[-1] != is_array:
            raise ValueError("unbalanced JSON container")
        self._stack.pop()
        self._need_comma = True

    # -- public API (json_writer_*)
    def start_object(self, name: str | None = None) -> None:
        self._comma_name(name)
        self._parts.append("{")
        self._enter(False)

    def end_object(self) -> None:
        self._leave(False)
        self._parts.append(" }" if self.style == "qjson" else "}")

    def start_array(self, name: str | None = None) -> None:
        self._comma_name(name)
        self._parts.append("[")
        self._enter(True)

    def end_array(self) -> None:
        self._leave(True)
        self._parts.append("]")

    def int64(self, name: str | None, value: int) -> None:
        self._comma_name(name)
        self._parts.append(str(int(value)))

    uint64 = int64

    def bool(self, name: str | None, value: bool) -> None:
        self._comma_name(name)
        self._parts.append("true" if value else "false")

    def null(self, name: str | None) -> None:
        self._comma_name(name)
        self._parts.append("null")

    def str(self, name: str | None, value: str) -> None:
        self._comma_name(name)
        self._parts.append(quote(value) if self.style == "json-writer" else '"' + value + '"')

    @property
    def depth(self) -> int:
        return len(self._stack)

    def get(self) -> str:
        """The text so far; like json_writer_get(), only valid with no open container."""
        if self._stack:
            raise ValueError("JSON writer still has open containers")
        return "".join(self._parts)
