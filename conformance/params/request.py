"""JSON in, a request out: what QMP does to migrate-set-parameters' arguments.

Models qobject/json-parser.c (no NaN/Infinity, no "\\u0000", duplicate keys rejected)
and the QObject input visitor's type checks (qapi/qobject-input-visitor.c,
qapi/qapi-visit-core.c): unknown members, missing mandatory members, wrong JSON types,
integer ranges (uint8/uint32 checked after the uint64 read; negative integers for
uint64 members are accepted and wrap, for backward compatibility), enum values.
Errors carry a JSON path.  Input-visitor error *texts* are ours (QEMU's say the same
thing in other words); the migrate_params_check() texts are QEMU's (validate.py).
"""

from __future__ import annotations

import json

from .schema import (
    BITMAP_ALIAS_KEYS,
    BY_NAME,
    CAPABILITY_NAMES,
    DEFAULT_HOST,
    NAMES,
    NODE_ALIAS_KEYS,
    UINT_MAX,
    Host,
)

MAX_DEPTH = 64  # deeper than any valid request (bbm is 4 levels); QEMU's parser: 1024


class RequestError(ValueError):
    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def _reject_constant(name: str):
    raise RequestError("$", f"{name} is not JSON (QEMU's JSON parser rejects it)")


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise RequestError("$", f"duplicate key {k!r}")
        out[k] = v
    return out


def _depth_ok(text: str) -> bool:
    depth = 0
    in_str = esc = False
    for c in text:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif c in "]}":
            depth -= 1
    return True


def load_json(data: bytes):
    """Parse bytes as QEMU's JSON parser would accept them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError("$", f"not UTF-8 (byte {e.start})") from None
    if not _depth_ok(text):
        raise RequestError("$", f"nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except RequestError:
        raise
    except json.JSONDecodeError as e:
        raise RequestError("$", f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"
                           ) from None
    except (ValueError, RecursionError) as e:
        raise RequestError("$", f"invalid JSON: {e}") from None
    _check_strings(value, "$")
    return value


def _check_strings(v, path):
    if isinstance(v, str):
        if "\x00" in v:
            raise RequestError(path, "\\u0000 is not supported")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(path, "string is not valid Unicode (lone surrogate)") from None
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_strings(x, f"{path}[{i}]")
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_strings(k, path)
            _check_strings(x, f"{path}.{k}")


def _type_name(v) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null", float: "number", int: "integer"}.get(type(v), type(v).__name__)


def _uint(v, kind: str, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise RequestError(path, f"expected an integer ({kind}), got {_type_name(v)}")
    if kind == "size":
        if not 0 <= v <= UINT_MAX["size"]:
            raise RequestError(path, "expected size (0 to 2^64-1)")
        return v
    if not -(2**63) <= v <= UINT_MAX["uint64"]:
        raise RequestError(path, "expected uint64: out of range")
    v %= 2**64  # negative values wrap (qobject_input_type_uint64, backward compatibility)
    if v > UINT_MAX[kind]:
        raise RequestError(path, f"expects {kind}_t")
    return v


def _str(v, path: str) -> str:
    if not isinstance(v, str):
        raise RequestError(path, f"expected a string, got {_type_name(v)}")
    return v


def _bool(v, path: str) -> bool:
    if not isinstance(v, bool):
        raise RequestError(path, f"expected a boolean, got {_type_name(v)}")
    return v


def _list(v, path: str) -> list:
    if not isinstance(v, list):
        raise RequestError(path, f"expected an array, got {_type_name(v)}")
    return v


def _struct(v, path: str, keys, optional=()) -> dict:
    if not isinstance(v, dict):
        raise RequestError(path, f"expected an object, got {_type_name(v)}")
    for k in v:
        if k not in keys:
            raise RequestError(f"{path}.{k}", "unexpected member")
    for k in keys:
        if k not in v and k not in optional:
            raise RequestError(f"{path}.{k}", "missing")
    return v


def _bitmap_alias(v, path):
    v = _struct(v, path, BITMAP_ALIAS_KEYS, optional=("transform",))
    out = {"name": _str(v["name"], f"{path}.name"), "alias": _str(v["alias"], f"{path}.alias")}
    if "transform" in v:
        t = _struct(v["transform"], f"{path}.transform", ("persistent",), optional=("persistent",))
        out["transform"] = ({"persistent": _bool(t["persistent"], f"{path}.transform.persistent")}
                            if "persistent" in t else {})
    return out


def _node_alias(v, path):
    v = _struct(v, path, NODE_ALIAS_KEYS)
    return {"node-name": _str(v["node-name"], f"{path}.node-name"),
            "alias": _str(v["alias"], f"{path}.alias"),
            "bitmaps": [_bitmap_alias(b, f"{path}.bitmaps[{i}]")
                        for i, b in enumerate(_list(v["bitmaps"], f"{path}.bitmaps"))]}


def member(name: str, v, path: str, host: Host = DEFAULT_HOST, *, allow_null_tls=True):
    m = BY_NAME[name]
    if m.type in UINT_MAX:
        return _uint(v, m.type, path)
    if m.type == "bool":
        return _bool(v, path)
    if m.type == "enum":
        s = _str(v, path)
        allowed = m.enum if name != "multifd-compression" else host.compressions
        if s not in allowed:
            raise RequestError(path, f"does not accept value '{s}' (one of: {', '.join(allowed)})")
        return s
    if m.type == "StrOrNull":
        if v is None and allow_null_tls:
            return None
        if not isinstance(v, str):
            raise RequestError(path, f"expected a string or null, got {_type_name(v)}")
        return v
    if m.type == "strList":
        return [_str(x, f"{path}[{i}]") for i, x in enumerate(_list(v, path))]
    if m.type == "BitmapMigrationNodeAliasList":
        return [_node_alias(x, f"{path}[{i}]") for i, x in enumerate(_list(v, path))]
    raise AssertionError(m.type)


def parse_request(value, host: Host = DEFAULT_HOST) -> dict:
    """migrate-set-parameters arguments (or a whole QMP command) -> request dict."""
    base = "$"
    if isinstance(value, dict) and "execute" in value:
        if value.get("execute") != "migrate-set-parameters":
            raise RequestError("$.execute", "expected \"migrate-set-parameters\"")
        for k in value:
            if k not in ("execute", "arguments", "id"):
                raise RequestError(f"$.{k}", "unexpected member of a QMP command")
        value = value.get("arguments", {})
        base = "$.arguments"
    if not isinstance(value, dict):
        raise RequestError(base, f"expected an object, got {_type_name(value)}")
    out = {}
    for k, v in value.items():
        if k not in BY_NAME:
            raise RequestError(f"{base}.{k}", "unexpected member (not a migration parameter)")
        out[k] = member(k, v, f"{base}.{k}", host)
    # keep schema order (the order QAPI visits members)
    return {n: out[n] for n in NAMES if n in out}


def parse_current(value, host: Host = DEFAULT_HOST) -> dict:
    """query-migrate-parameters output (members absent keep their defaults)."""
    from .schema import defaults
    if not isinstance(value, dict):
        raise RequestError("$", f"expected an object, got {_type_name(value)}")
    if "return" in value and len(value) == 1:
        return parse_current(value["return"], host)
    p = defaults()
    for k, v in value.items():
        if k not in BY_NAME:
            raise RequestError(f"$.{k}", "unexpected member (not a migration parameter)")
        p[k] = member(k, v, f"$.{k}", host)
        if p[k] is None:
            p[k] = ""
    return p


def parse_capabilities(names) -> frozenset:
    for n in names:
        if n not in CAPABILITY_NAMES:
            raise RequestError(n, f"unknown capability (one of: {', '.join(CAPABILITY_NAMES)})")
    return frozenset(names)
