"""Case files: a description, a source state, a destination pre-state, expectations.

The JSON format is documented in golden/FORMAT.md.  Descriptions read like QEMU's
``-dump-vmstate`` output (``name``, ``version_id``, ``minimum_version_id``, ``Fields``
with ``field``/``version_id``/``num``/``size``/``Description``, ``Subsections``) plus
what it lacks: ``flags``, ``info``, ``member``, ``num_member``, ``size_member``,
``start``, ``struct_version_id``, ``exists`` (a predicate), hooks and ``terminator``.

Every malformed input raises :class:`CaseError` whose message starts with the JSON path
(``$.description.Fields[2].flags: unknown VMStateFlags name 'ARRY'``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import attrs

from conformance.errors import CaseError, CaseLimitExceeded, LimitExceeded
from conformance.model import limits as _limits
from conformance.model import variants as _variants
from conformance.model.description import PRED_KINDS, Description, Field, Hook, Pred
from conformance.model.flags import FlagError, flag_names, parse_flags
from conformance.model.infos import INFOS
from conformance.model.outcome import KINDS
from conformance.model.state import (
    StateError,
    bytes_budget,
    from_plain,
    state_size,
    to_plain,
    zero_struct,
)
from conformance.names import CASE_FORMAT

FORMAT_ID = CASE_FORMAT  # the name this module has always used


@attrs.frozen
class Case:
    name: str
    description: Description
    source: dict
    destination: dict | None = None
    variants: tuple[str, ...] = ("legacy",)
    load_version: int | None = None
    trailer: bytes = b"\x00"
    load_input: bytes | None = None
    expect: dict = attrs.field(factory=dict)  # {"save": {...}, "load": {...}}
    expect_by_variant: dict = attrs.field(factory=dict)  # variant -> {"save":..,"load":..}
    truncation: bool = False
    notes: str = ""
    origin: str | None = None  # the file it came from

    def expectation(self, variant: str) -> dict:
        merged = {op: dict(v) for op, v in self.expect.items()}
        for op, v in self.expect_by_variant.get(variant, {}).items():
            merged[op] = dict(v)
        return merged

    def dest_state(self) -> dict:
        if self.destination is not None:
            return self.destination
        return zero_struct(self.description)


# ---------------------------------------------------------------------------------------
# JSON -> model


def _expect_type(value, types, path, what):
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in
                                         (types if isinstance(types, tuple) else (types,))):
        raise CaseError(path, f"{what} must be {_typename(types)}, got {type(value).__name__}")
    return value


def _typename(types) -> str:
    names = {int: "an integer", str: "a string", list: "a list", dict: "an object",
             bool: "true/false"}
    if isinstance(types, tuple):
        return " or ".join(names.get(t, t.__name__) for t in types)
    return names.get(types, types.__name__)


def parse_pred(obj, path: str, _depth: int = 0) -> Pred:
    if _depth > _limits.DEPTH_LIMIT:
        raise _limits.exceeded("depth", path, f"a predicate nested {_depth} deep", _depth)
    if isinstance(obj, bool):
        return Pred("const", value=obj)
    _expect_type(obj, dict, path, "a predicate")
    if len(obj) != 1:
        raise CaseError(path, f"a predicate has exactly one key of {', '.join(PRED_KINDS)}")
    (kind, arg), = obj.items()
    sub = f"{path}.{kind}"
    if kind == "const":
        return Pred("const", value=bool(_expect_type(arg, bool, sub, "const")))
    if kind == "member":
        return Pred("member", member=_expect_type(arg, str, sub, "member"))
    if kind == "equals":
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            raise CaseError(sub, "equals takes [member, value]")
        return Pred("equals", member=arg[0], value=arg[1])
    if kind == "version_at_least":
        return Pred("version_at_least", value=_expect_type(arg, int, sub, "version"))
    if kind == "not":
        return Pred("not", args=(parse_pred(arg, sub, _depth + 1),))
    if kind in ("all", "any"):
        _expect_type(arg, list, sub, kind)
        return Pred(kind, args=tuple(parse_pred(a, f"{sub}[{i}]", _depth + 1)
                                     for i, a in enumerate(arg)))
    raise CaseError(path, f"unknown predicate {_short(kind)} (known: {', '.join(PRED_KINDS)})")


def parse_hook(obj, path: str) -> Hook:
    _expect_type(obj, dict, path, "a hook")
    unknown = set(obj) - {"ret", "set"}
    if unknown:
        raise CaseError(path, f"unknown hook key {_short(sorted(unknown)[0])} (known: ret, set)")
    ret = _expect_type(obj.get("ret", 0), int, f"{path}.ret", "ret")
    assigns = _expect_type(obj.get("set", {}), dict, f"{path}.set", "set")
    return Hook(ret, tuple(assigns.items()))


_FIELD_KEYS = {"field", "name", "member", "flags", "info", "size", "num", "num_member",
               "size_member", "start", "version_id", "struct_version_id", "exists",
               "field_exists", "Description", "key_Description", "comment"}
_DESC_KEYS = {"name", "version_id", "minimum_version_id", "Fields", "Subsections", "needed",
              "pre_save", "post_save", "pre_load", "post_load", "priority", "terminator",
              "comment"}


def _short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (names taken from the input)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_description(obj, path: str = "$.description", vmsds: dict | None = None,
                      _stack: tuple = (), _depth: int = 0, _memo: dict | None = None
                      ) -> Description:
    """A Description from its JSON form.  Nesting deeper than the ``depth`` limit is a
    LimitExceeded; a description named in ``$.vmsds`` is parsed once and shared."""
    vmsds = vmsds or {}
    _memo = {} if _memo is None else _memo
    if _depth > _limits.DEPTH_LIMIT:
        raise _limits.exceeded("depth", path, f"descriptions nested {_depth} deep", _depth)
    if isinstance(obj, str):
        if obj not in vmsds:
            raise CaseError(path, f"no description named {_short(obj)} in $.vmsds")
        if obj in _stack:
            raise CaseError(path, f"description {_short(obj)} contains itself")
        if obj not in _memo:
            _memo[obj] = parse_description(vmsds[obj], f"$.vmsds.{obj}", vmsds,
                                           _stack + (obj,), _depth, _memo)
        return _memo[obj]
    _expect_type(obj, dict, path, "a description")
    unknown = set(obj) - _DESC_KEYS
    if unknown:
        raise CaseError(path, f"unknown description key {_short(sorted(unknown)[0])}")
    if "name" not in obj:
        raise CaseError(path, "a description needs a name")
    name = _expect_type(obj["name"], str, f"{path}.name", "name")
    fields_obj = _expect_type(obj.get("Fields", []), list, f"{path}.Fields", "Fields")
    fields = tuple(parse_field(f, f"{path}.Fields[{i}]", vmsds, _stack, _depth + 1, _memo)
                   for i, f in enumerate(fields_obj))
    subs_obj = _expect_type(obj.get("Subsections", []), list, f"{path}.Subsections",
                            "Subsections")
    subs = tuple(parse_description(s, f"{path}.Subsections[{i}]", vmsds, _stack, _depth + 1,
                                   _memo)
                 for i, s in enumerate(subs_obj))
    hooks = {}
    for hook in ("pre_save", "post_save", "pre_load", "post_load"):
        if hook in obj:
            hooks[hook] = parse_hook(obj[hook], f"{path}.{hook}")
    term = obj.get("terminator")
    if term is not None:
        _expect_type(term, int, f"{path}.terminator", "terminator")
    desc = Description(
        name,
        _expect_type(obj.get("version_id", 0), int, f"{path}.version_id", "version_id"),
        _expect_type(obj.get("minimum_version_id", 0), int, f"{path}.minimum_version_id",
                     "minimum_version_id"),
        fields, subs,
        needed=parse_pred(obj["needed"], f"{path}.needed") if "needed" in obj else None,
        priority=_expect_type(obj.get("priority", 0), int, f"{path}.priority", "priority"),
        terminator=term)
    if hooks:  # a hook assigns members: its values are states of those members
        desc = attrs.evolve(desc, **{k: _typed_hook(desc, h, f"{path}.{k}")
                                     for k, h in hooks.items()})
    return desc


def _typed_hook(desc: Description, hook: Hook, path: str) -> Hook:
    """The hook with each ``set`` value read as that member's state (a uint16 member set
    to [] is a case error, not a TypeError when the hook runs; found by fuzz --target
    case)."""
    if not hook.set:
        return hook
    try:
        typed = from_plain(desc, dict(hook.set), f"{path}.set")
    except StateError as exc:
        raise CaseError(exc.path, exc.message) from None
    return Hook(hook.ret, tuple((member, typed[member]) for member, _ in hook.set))


def parse_field(obj, path: str, vmsds: dict, _stack: tuple = (), _depth: int = 0,
                _memo: dict | None = None) -> Field:
    _expect_type(obj, dict, path, "a field")
    unknown = set(obj) - _FIELD_KEYS
    if unknown:
        raise CaseError(path, f"unknown field key {_short(sorted(unknown)[0])}")
    name = obj.get("field", obj.get("name"))
    if not isinstance(name, str):
        raise CaseError(path, "a field needs a name (\"field\")")
    try:
        flags = parse_flags(obj.get("flags", ["SINGLE"]))
    except FlagError as exc:
        raise CaseError(f"{path}.flags", str(exc)) from None
    info = obj.get("info")
    if info is not None:
        _expect_type(info, str, f"{path}.info", "info")
        if info not in INFOS:
            raise CaseError(f"{path}.info", f"unknown VMStateInfo {_short(info)}")
    ints = {}
    for key in ("size", "num", "start", "version_id", "struct_version_id"):
        ints[key] = _expect_type(obj.get(key, 0), int, f"{path}.{key}", key)
    if ints["size"] < 0:  # VMStateField.size is a size_t
        raise CaseError(f"{path}.size", f"a size is a size_t: {ints['size']} is negative")
    # sizes are checked before anything proportional to them exists (a zero state)
    if ints["num"] > _limits.ELEMENT_LIMIT:
        raise _limits.exceeded("elements", f"{path}.num",
                               f"an array of {ints['num']} elements", ints["num"])
    if ints["size"] > _limits.BUFFER_LIMIT:
        raise _limits.exceeded("buffer-bytes", f"{path}.size",
                               f"a {ints['size']}-byte element", ints["size"])
    member = obj.get("member", name)
    if member is not None:
        _expect_type(member, str, f"{path}.member", "member")
    exists = obj.get("exists")
    if exists is None and isinstance(obj.get("field_exists"), dict):
        exists = obj["field_exists"]
    vmsd = key_vmsd = None
    if "Description" in obj:
        vmsd = parse_description(obj["Description"], f"{path}.Description", vmsds, _stack,
                                 _depth, _memo)
    if "key_Description" in obj:
        key_vmsd = parse_description(obj["key_Description"], f"{path}.key_Description", vmsds,
                                     _stack, _depth, _memo)
    for key in ("num_member", "size_member"):
        if obj.get(key) is not None:
            _expect_type(obj[key], str, f"{path}.{key}", key)
    if info in _NESTED_INFOS and vmsd is None:
        raise CaseError(path, f"info {info!r} runs a nested VMSD: it needs a \"Description\"")
    if info is None and not flags & (flags.STRUCT | flags.VSTRUCT) and vmsd is None \
            and not (flags & flags.MUST_EXIST):
        raise CaseError(path, "a field needs an info, or STRUCT/VSTRUCT with a Description")
    return Field(name, flags, info, member, ints["size"], ints["num"], obj.get("num_member"),
                 obj.get("size_member"), ints["start"], ints["version_id"],
                 ints["struct_version_id"],
                 parse_pred(exists, f"{path}.exists") if exists is not None else None,
                 vmsd, key_vmsd)


#: infos whose codec runs field.vmsd (and that crash without one)
_NESTED_INFOS = ("tmp", "qtailq", "qlist", "gtree")


def _hex(value, path: str) -> bytes:
    _expect_type(value, str, path, "a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CaseError(path, f"not a hex string: {_short(value, 40)}") from None


_CASE_KEYS = {"format", "name", "description", "vmsds", "variants", "variant", "source",
              "destination", "load_version", "trailer", "load_input", "expect",
              "expect_by_variant", "truncation", "notes"}


def parse_case(obj, source: str | None = None) -> Case:
    try:
        return _parse_case(obj)
    except LimitExceeded as exc:  # still a LimitExceeded (.limit), now naming the file
        raise CaseLimitExceeded(exc, source) from None
    except CaseError as exc:
        raise CaseError(exc.path, exc.message, source) from None
    except StateError as exc:
        raise CaseError(exc.path, exc.message, source) from None


def _parse_case(obj) -> Case:
    _expect_type(obj, dict, "$", "a case")
    unknown = set(obj) - _CASE_KEYS
    if unknown:
        raise CaseError("$", f"unknown case key {_short(sorted(unknown)[0])}")
    fmt = obj.get("format", FORMAT_ID)
    if fmt != FORMAT_ID:
        raise CaseError("$.format", f"unsupported format {_short(fmt)} (expected {FORMAT_ID!r})")
    if "description" not in obj:
        raise CaseError("$", "a case needs a description")
    vmsds = _expect_type(obj.get("vmsds", {}), dict, "$.vmsds", "vmsds")
    desc = parse_description(obj["description"], "$.description", vmsds)
    state_size(desc)  # the zero state's size, before any state is built
    name = _expect_type(obj.get("name", desc.name), str, "$.name", "name")
    variants = _case_variants(obj)
    for key in ("source", "destination"):
        _count_values(obj.get(key), f"$.{key}")
    with bytes_budget():
        source = from_plain(desc, obj.get("source", {}), "$.source")
    dest = None
    if "destination" in obj:
        with bytes_budget():
            dest = from_plain(desc, obj["destination"], "$.destination")
    expect = _expect_type(obj.get("expect", {}), dict, "$.expect", "expect")
    _check_expect(expect, "$.expect")
    by_variant = _expect_type(obj.get("expect_by_variant", {}), dict, "$.expect_by_variant",
                              "expect_by_variant")
    for v, exp in by_variant.items():
        if v not in _variants.VARIANTS:
            raise CaseError(f"$.expect_by_variant.{v}", f"unknown variant {_short(v)}")
        _check_expect(_expect_type(exp, dict, f"$.expect_by_variant.{v}", "expectation"),
                      f"$.expect_by_variant.{v}")
    load_version = obj.get("load_version")
    if load_version is not None:
        _expect_type(load_version, int, "$.load_version", "load_version")
    return Case(
        name, desc, source, dest, tuple(variants), load_version,
        _hex(obj.get("trailer", "00"), "$.trailer"),
        _hex(obj["load_input"], "$.load_input") if "load_input" in obj else None,
        expect, by_variant, bool(obj.get("truncation", False)), str(obj.get("notes", "")))


def _case_variants(obj: dict) -> list:
    """``$.variant`` or ``$.variants`` (default legacy): known names, at least one."""
    if "variant" in obj:
        variants = [_expect_type(obj["variant"], str, "$.variant", "variant")]
    else:
        variants = _expect_type(obj.get("variants", ["legacy"]), list, "$.variants", "variants")
        if not variants:  # every command runs a case's first variant unless told another
            raise CaseError("$.variants", "variants is empty: name at least one variant "
                                          f"(known: {', '.join(_variants.VARIANTS)})")
    for i, v in enumerate(variants):
        if not isinstance(v, str) or v not in _variants.VARIANTS:
            raise CaseError(f"$.variants[{i}]", f"unknown variant {_short(v)} "
                                                f"(known: {', '.join(_variants.VARIANTS)})")
    return variants


_EXPECT_KEYS = {"kind", "stream", "state", "message", "messages", "offset", "path", "ret",
                "hazards", "ledger", "file_error", "vmdesc", "consumed"}


def _check_expect(expect: dict, path: str) -> None:
    for op, exp in expect.items():
        if op not in ("save", "load"):
            raise CaseError(f"{path}.{op}", "expectations are keyed by 'save' and 'load'")
        _expect_type(exp, dict, f"{path}.{op}", "an expectation")
        unknown = set(exp) - _EXPECT_KEYS
        if unknown:
            raise CaseError(f"{path}.{op}", f"unknown expectation key {_short(sorted(unknown)[0])}")
        if "kind" in exp and (not isinstance(exp["kind"], str) or exp["kind"] not in KINDS):
            raise CaseError(f"{path}.{op}.kind", f"unknown outcome kind {_short(exp['kind'])}")
        if "stream" in exp:
            _hex(exp["stream"], f"{path}.{op}.stream")


def load_case_file(path: str | Path) -> Case:
    """A case from a .json file (or the CASES[0] of a .py file)."""
    path = Path(path)
    if path.suffix == ".py":
        cases = load_python_cases(path)
        if not cases:
            raise CaseError("$", "the module defines no CASES", str(path))
        return cases[0]
    obj = read_json_file(path)
    case = parse_case(obj, str(path))
    return attrs.evolve(case, origin=str(path))


def read_json_file(path: str | Path):
    """The JSON value of a case file; CaseError (naming the file and where) for a file
    that cannot be read, is larger than the ``case-file-bytes`` limit, is not UTF-8 (the
    byte offset of the first bad byte), nests deeper than ``json-depth`` or is not JSON."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            # no more than the file holds: read(n) reserves n bytes up front (64 MiB)
            size = os.fstat(fh.fileno()).st_size or _limits.CASE_FILE_LIMIT
            data = fh.read(min(size, _limits.CASE_FILE_LIMIT) + 1)
    except IsADirectoryError:
        raise CaseError("$", "is a directory, not a case file", str(path)) from None
    except OSError as exc:
        raise CaseError("$", f"cannot read: {exc.strerror or exc}", str(path)) from None
    return parse_json_bytes(data, str(path))


def parse_json_bytes(data: bytes, source: str | None = None):
    """The JSON value of a case file's bytes (see read_json_file)."""
    if len(data) > _limits.CASE_FILE_LIMIT:
        raise CaseLimitExceeded(_limits.exceeded(
            "case-file-bytes", "$", f"a file of more than {_limits.CASE_FILE_LIMIT} bytes",
            len(data)), source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseError(f"byte offset {exc.start}",
                        f"not UTF-8 (byte 0x{data[exc.start]:02x}); a case file is UTF-8 JSON",
                        source) from None
    return parse_json_text(text, source)


def parse_case_bytes(data: bytes, source: str | None = None) -> Case:
    """A case from the bytes of a JSON case file; CaseError (one line) otherwise."""
    return parse_case(parse_json_bytes(data, source), source)


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line} column {col} (byte offset {len(text[:offset].encode())})"


def parse_json_text(text: str, source: str | None = None):
    """json.loads with the ``json-depth`` limit checked first; CaseError otherwise."""
    deep = _limits.json_depth_error(text, _limits.JSON_DEPTH_LIMIT)
    if deep is not None:
        offset, depth = deep
        raise CaseLimitExceeded(_limits.exceeded(
            "json-depth", _line_col(text, offset), f"JSON nested {depth} deep", depth), source)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CaseError(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}",
                        source) from None
    except RecursionError:  # only when --limit json-depth is set above Python's stack
        raise CaseError("$", "JSON nested too deep for this Python (lower --limit json-depth)",
                        source) from None
    except ValueError as exc:  # NaN / Infinity, and int strings past Python's digit limit
        raise CaseError("$", f"invalid JSON: {exc}", source) from None
    if _SURROGATE_ESCAPE.search(text):  # only then can a string hold a lone surrogate
        _check_strings(obj, source)
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _count_values(obj, path: str) -> None:
    """The scalar values of a state's JSON (what a save walks) against ``state-values``,
    and its bytes against ``state-bytes``: the zero state's bound does not bound a
    state's GTree / QLIST nodes, whose count is the state's (fuzz: two nodes of 31 MiB
    of buffers each, a 1.7 KB case file whose encode and decode passed 500 MB).  A hex
    string counts as the bytes it holds; any other scalar as one."""
    if not isinstance(obj, (dict, list)):
        return
    n = nbytes = 0
    todo = [obj]
    while todo:
        node = todo.pop()
        for value in (node.values() if isinstance(node, dict) else node):
            if isinstance(value, (dict, list)):
                todo.append(value)
            else:  # a scalar: a member or an element
                n += 1
                nbytes += len(value) // 2 if isinstance(value, str) else 1
        if n > _limits.STATE_LIMIT:
            raise _limits.exceeded("state-values", path,
                                   f"a state of more than {_limits.STATE_LIMIT} values", n)
        if nbytes > _limits.STATE_BYTES_LIMIT:
            raise _limits.exceeded("state-bytes", path,
                                   f"a state of more than {_limits.STATE_BYTES_LIMIT} bytes",
                                   nbytes)


def _check_strings(obj, source: str | None) -> None:
    """Every string (keys too) must be Unicode text: a lone surrogate escape such as
    ``"\\ud800"`` is valid JSON but no name QEMU can hold (iterative walk)."""
    todo = [("$", obj)]
    while todo:
        path, node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not key.isascii():
                    _text(key, path, source)
                todo.append((f"{path}.{key}", value))
        elif isinstance(node, list):
            todo.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
        elif isinstance(node, str) and not node.isascii():
            _text(node, path, source)


def _text(value: str, path: str, source: str | None) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CaseError(path, f"a lone surrogate escape (\\u{ord(value[exc.start]):04x}) is "
                              f"not text", source) from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _defines_cases(source: str) -> bool:
    """Whether module text assigns ``CASES`` at top level (checked before importing, so
    that ``run tests/`` does not execute conftest.py or test modules as case modules)."""
    import ast

    tree = ast.parse(source)
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        if any(isinstance(t, ast.Name) and t.id == "CASES" for t in targets):
            return True
    return False


def load_python_cases(path: str | Path) -> list[Case]:
    """Python-defined cases (hooks with code): a module with a top-level ``CASES`` list
    of :class:`Case`.  A file that does not assign CASES is not imported (CaseError);
    an exception while importing it is a CaseError naming the file."""
    path = Path(path)
    try:
        source = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise CaseError("$", "is a directory, not a case module", str(path)) from None
    except OSError as exc:
        raise CaseError("$", f"cannot read: {exc.strerror or exc}", str(path)) from None
    except UnicodeDecodeError as exc:
        raise CaseError(f"byte offset {exc.start}", "not UTF-8 Python source",
                        str(path)) from None
    try:
        defines = _defines_cases(source)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise CaseError(f"line {line}" if line else "$", f"not Python: {exc.msg if hasattr(exc, 'msg') else exc}",
                        str(path)) from None
    except (RecursionError, MemoryError):
        raise CaseError("$", "Python source nested too deeply to read", str(path)) from None
    if not defines:
        raise CaseError("$", "not a case module: it assigns no top-level CASES (not imported)",
                        str(path))
    spec = importlib.util.spec_from_file_location(f"_vmstate_case_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CaseError("$", "not a Python module", str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the module is user code; one line, not a traceback
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise CaseError("$", f"importing the case module failed: {type(exc).__name__}: "
                             f"{text[:200]}", str(path)) from None
    cases = getattr(module, "CASES", [])
    if not isinstance(cases, (list, tuple)):
        raise CaseError("$.CASES", f"CASES must be a list of Case, got {type(cases).__name__}",
                        str(path))
    for i, c in enumerate(cases):
        if not isinstance(c, Case):
            raise CaseError(f"$.CASES[{i}]", f"not a Case, got {type(c).__name__}", str(path))
        if not c.variants:
            raise CaseError(f"$.CASES[{i}].variants", "variants is empty: name at least one "
                                                     "variant", str(path))
    return [attrs.evolve(c, origin=str(path)) for c in cases]


# ---------------------------------------------------------------------------------------
# model -> JSON


def dump_pred(pred) -> Any:
    if not isinstance(pred, Pred):
        raise TypeError("only declarative predicates can be written to JSON")
    if pred.kind == "const":
        return {"const": bool(pred.value)}
    if pred.kind == "member":
        return {"member": pred.member}
    if pred.kind == "equals":
        return {"equals": [pred.member, pred.value]}
    if pred.kind == "version_at_least":
        return {"version_at_least": pred.value}
    if pred.kind == "not":
        return {"not": dump_pred(pred.args[0])}
    return {pred.kind: [dump_pred(a) for a in pred.args]}


def dump_hook(hook) -> dict:
    if not isinstance(hook, Hook):
        raise TypeError("only declarative hooks can be written to JSON")
    out: dict[str, Any] = {}
    if hook.ret:
        out["ret"] = hook.ret
    if hook.set:
        out["set"] = dict(hook.set)
    return out


def dump_description(desc: Description) -> dict:
    out: dict[str, Any] = {"name": desc.name, "version_id": desc.version_id,
                           "minimum_version_id": desc.minimum_version_id,
                           "Fields": [dump_field(f) for f in desc.fields]}
    if desc.subsections:
        out["Subsections"] = [dump_description(s) for s in desc.subsections]
    if desc.needed is not None:
        out["needed"] = dump_pred(desc.needed)
    for hook in ("pre_save", "post_save", "pre_load", "post_load"):
        if getattr(desc, hook) is not None:
            out[hook] = dump_hook(getattr(desc, hook))
    if desc.priority:
        out["priority"] = desc.priority
    if desc.terminator is not None:
        out["terminator"] = desc.terminator
    return out


def dump_field(field: Field) -> dict:
    out: dict[str, Any] = {"field": field.name}
    if field.member != field.name:
        out["member"] = field.member
    out["flags"] = flag_names(field.flags)
    if field.info is not None:
        out["info"] = field.info
    for key in ("size", "num", "start", "version_id", "struct_version_id"):
        if getattr(field, key):
            out[key] = getattr(field, key)
    for key in ("num_member", "size_member"):
        if getattr(field, key) is not None:
            out[key] = getattr(field, key)
    if field.field_exists is not None:
        out["exists"] = dump_pred(field.field_exists)
    if field.vmsd is not None:
        out["Description"] = dump_description(field.vmsd)
    if field.key_vmsd is not None:
        out["key_Description"] = dump_description(field.key_vmsd)
    return out


def dump_case(case: Case) -> dict:
    out: dict[str, Any] = {"format": FORMAT_ID, "name": case.name}
    if case.notes:
        out["notes"] = case.notes
    out["variants"] = list(case.variants)
    out["description"] = dump_description(case.description)
    out["source"] = to_plain(case.source)
    if case.destination is not None:
        out["destination"] = to_plain(case.destination)
    if case.load_version is not None:
        out["load_version"] = case.load_version
    if case.trailer != b"\x00":
        out["trailer"] = case.trailer.hex()
    if case.load_input is not None:
        out["load_input"] = case.load_input.hex()
    if case.truncation:
        out["truncation"] = True
    if case.expect:
        out["expect"] = case.expect
    if case.expect_by_variant:
        out["expect_by_variant"] = case.expect_by_variant
    return out


# ---------------------------------------------------------------------------------------
# Running a case


@attrs.frozen
class CaseRun:
    case: Case
    variant: str
    engine: str
    save: Any  # Outcome
    load: Any  # Outcome | None
    mismatches: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def run_case(case: Case, variant: str | None = None, engine: str = "reference") -> CaseRun:
    """Save the source, load (stream + trailer, or load_input) into the destination, and
    compare every expectation the case states for this variant."""
    from conformance.engines import get as get_engine

    eng = get_engine(engine)
    variant = variant or case.variants[0]
    exp = case.expectation(variant)
    want_vmdesc = "vmdesc" in exp.get("save", {})
    saved = eng.save(case.description, case.source, variant, vmdesc=want_vmdesc)
    mismatches = _compare("save", saved, exp.get("save", {}))
    loaded = None
    if case.load_input is not None or saved.ok:
        data = case.load_input if case.load_input is not None else saved.data + case.trailer
        loaded = eng.load(case.description, data, case.dest_state(), variant,
                          version_id=case.load_version)
        mismatches += _compare("load", loaded, exp.get("load", {}))
    elif "load" in exp:
        mismatches.append(f"load: expected {exp['load'].get('kind', 'an outcome')}, but the "
                          f"save did not succeed ({saved.summary()})")
    if case.truncation and saved.ok:
        mismatches += truncation_protocol(eng, case, variant, saved.data + case.trailer)
    return CaseRun(case, variant, engine, saved, loaded, tuple(mismatches))


def _compare(op: str, outcome, exp: dict) -> list[str]:
    out = []
    got = outcome.to_json()
    for key, want in exp.items():
        if key == "stream":
            have = got.get("stream")
        elif key == "hazards":
            have = sorted(h["kind"] for h in got.get("hazards", []))
            want = sorted(want)
        elif key == "vmdesc":
            have = outcome.vmdesc
        elif key == "file_error":
            have = outcome.file_error
        elif key == "ledger":
            have = got.get("ledger", [])
        else:
            have = got.get(key)
        if have != want:
            out.append(f"{op}.{key}: expected {json.dumps(want)[:300]}, got "
                       f"{json.dumps(have)[:300]}")
    return out


def truncation_protocol(eng, case: Case, variant: str, wire: bytes) -> list[str]:
    """tests/unit/test-vmstate.c load_vmstate(): 0 bytes, n-2, first half and second half
    must fail (ret != 0 and the file error set); the whole input must succeed."""
    n = len(wire)
    attempts = [("0 bytes", b"")]
    if n > 3:
        attempts += [("n-2 bytes", wire[: n - 2]), ("first half", wire[: n // 2]),
                     ("second half", wire[n // 2: n // 2 + n // 2])]
    problems = []
    for label, data in attempts:
        out = eng.load(case.description, data, case.dest_state(), variant,
                       version_id=case.load_version)
        if out.kind == "ok":
            problems.append(f"truncation: loading {label} succeeded, QEMU's test expects failure")
        elif out.kind == "error" and not out.file_error:
            problems.append(f"truncation: loading {label} failed without setting the file error")
    full = eng.load(case.description, wire, case.dest_state(), variant,
                    version_id=case.load_version)
    if not full.ok:
        problems.append(f"truncation: the full load failed: {full.summary()}")
    return problems
