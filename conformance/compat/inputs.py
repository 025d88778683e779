"""The two sides of ``compat``: a ``-dump-vmstate`` JSON file, a migration file (its
vmdesc trailer), or case files -- each read into one form, the dump's.

QEMU's ``-dump-vmstate`` (migration/savevm.c dump_vmstate_json_to_file) writes, per
device class with a VMSD, ``{"Name", "version_id", "minimum_version_id",
"Description"}``; a description has ``name``, ``version_id``, ``minimum_version_id``,
``Fields`` and ``Subsections``; a field has ``field``, ``version_id``, ``field_exists``
(whether it has a test, not the test), ``size`` (the C element size: one element of an
array, the whole of a buffer) and, for a struct, its ``Description``.  Neither the info
type nor an array's length is there.

The other inputs are brought to that form, with what they know beyond it kept in
extra keys the static checks ignore: ``type`` (the VMStateInfo name) and ``num`` (the
element count) from a vmdesc (which lists only what one save wrote: no field versions,
no tests, no minimum versions), and the model :class:`Description` itself for case
files (``Side.models``), which the executed check then uses as it is.
"""

from __future__ import annotations

import json
import lzma
from dataclasses import dataclass
from dataclasses import field as _dcfield
from pathlib import Path

from conformance.errors import ConformanceError


class InputError(ConformanceError, ValueError):
    """A side that is not a dump, a migration file or case files (one line, naming it)."""


@dataclass
class Side:
    path: str
    kind: str  # "dump" | "vmdesc" | "cases"
    sections: dict  # section name -> the dump form of its entry
    models: dict = _dcfield(default_factory=dict)  # section -> Description (cases only)
    machine: str | None = None

    def vmsd_names(self) -> dict[str, str]:
        """Top description name -> section name (the first section with it)."""
        out: dict[str, str] = {}
        for name, entry in self.sections.items():
            desc = entry.get("Description") if isinstance(entry, dict) else None
            if isinstance(desc, dict) and isinstance(desc.get("name"), str):
                out.setdefault(desc["name"], name)
        return out


def read_side(path: str | Path) -> Side:
    """Read one side; InputError (one line naming the file and the place) otherwise."""
    p = Path(path)
    if p.is_dir():
        return _cases(p, sorted(x for x in p.rglob("*") if x.suffix in (".json", ".py")))
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if raw[:6] == b"\xfd7zXZ\x00":
        try:
            raw = lzma.decompress(raw)
        except lzma.LZMAError as exc:
            raise InputError(f"{p}: bad xz data: {exc}") from None
    if raw[:4] == b"QEVM":
        return _vmdesc(p, raw)
    if p.suffix == ".py":
        return _cases(p, [p])
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not JSON, and not a migration file (QEVM): {exc}") from None
    if isinstance(doc, dict) and "description" in doc:
        return _cases(p, [p])
    if isinstance(doc, dict) and ("vmschkmachine" in doc or all(
            isinstance(v, dict) and "Description" in v for v in doc.values())) and doc:
        return _dump(p, doc)
    if isinstance(doc, dict) and "devices" in doc:  # a vmdesc saved on its own
        return _from_vmdesc_doc(p, doc)
    raise InputError(f"{p}: $: neither a -dump-vmstate document (sections with "
                     "'Description'), a case file ('description') nor a vmdesc ('devices')")


# -- -dump-vmstate -------------------------------------------------------------------


def _dump(p: Path, doc: dict) -> Side:
    sections, machine = {}, None
    for name, entry in doc.items():
        if name == "vmschkmachine":
            machine = entry.get("Name") if isinstance(entry, dict) else None
            sections[name] = entry
            continue
        _check_dump_entry(entry, f"$[{json.dumps(name)}]", p)
        sections[name] = entry
    return Side(str(p), "dump", sections, machine=machine)


def _check_dump_entry(entry, where: str, p: Path) -> None:
    if not isinstance(entry, dict):
        raise InputError(f"{p}: {where}: a section must be an object")
    if "Description" in entry:
        _check_desc(entry["Description"], f"{where}.Description", p)


def _check_desc(desc, where: str, p: Path) -> None:
    if not isinstance(desc, dict) or not isinstance(desc.get("name"), str):
        raise InputError(f"{p}: {where}: a description must be an object with a 'name'")
    for key in ("version_id", "minimum_version_id"):
        if key in desc and not isinstance(desc[key], int):
            raise InputError(f"{p}: {where}.{key}: must be an integer")
    for i, f in enumerate(desc.get("Fields", [])):
        fw = f"{where}.Fields[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("field"), str):
            raise InputError(f"{p}: {fw}: a field must be an object with a 'field' name")
        if not isinstance(f.get("size", 0), int) or f.get("size", 0) < 0:
            raise InputError(f"{p}: {fw}.size: must be a non-negative integer")
        if not isinstance(f.get("version_id", 0), int):
            raise InputError(f"{p}: {fw}.version_id: must be an integer")
        if "Description" in f:
            _check_desc(f["Description"], f"{fw}.Description", p)
    for i, s in enumerate(desc.get("Subsections", [])):
        _check_desc(s, f"{where}.Subsections[{i}]", p)


# -- a migration file's vmdesc -------------------------------------------------------


def _vmdesc(p: Path, raw: bytes) -> Side:
    from conformance.migration.migfile import vmdesc_of

    try:
        vd = vmdesc_of(raw)
    except ConformanceError as exc:
        raise InputError(f"{p}: {exc}") from None
    return _from_vmdesc_doc(p, vd.root.to_plain() if hasattr(vd.root, "to_plain") else vd.root)


def _from_vmdesc_doc(p: Path, doc: dict) -> Side:
    devices = doc.get("devices")
    if not isinstance(devices, list):
        raise InputError(f"{p}: $.devices: must be a list")
    sections = {}
    for i, dev in enumerate(devices):
        where = f"$.devices[{i}]"
        if not isinstance(dev, dict) or not isinstance(dev.get("name"), str):
            raise InputError(f"{p}: {where}: a device must be an object with a 'name'")
        key = dev["name"] if not dev.get("instance_id") else \
            f"{dev['name']}#{dev['instance_id']}"
        version = dev.get("version", 0)
        sections[key] = {"Name": key, "version_id": version,
                         "minimum_version_id": 0, "vmdesc": True,
                         "Description": _vmdesc_desc(dev, where, p)}
    return Side(str(p), "vmdesc", sections)


def _vmdesc_desc(obj: dict, where: str, p: Path) -> dict:
    name = obj.get("vmsd_name")
    if not isinstance(name, str):
        raise InputError(f"{p}: {where}.vmsd_name: missing")
    out = {"name": name, "version_id": obj.get("version", 0), "minimum_version_id": 0,
           "Fields": []}
    for i, f in enumerate(obj.get("fields", []) or []):
        fw = f"{where}.fields[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise InputError(f"{p}: {fw}: a field must be an object with a 'name'")
        size = f.get("size", 0)
        if not isinstance(size, int) or size < 0:
            raise InputError(f"{p}: {fw}.size: must be a non-negative integer")
        entry = {"field": f["name"], "version_id": 0, "field_exists": False, "size": size,
                 "type": f.get("type")}
        if "array_len" in f:
            entry["num"] = f["array_len"]
        if isinstance(f.get("struct"), dict):
            entry["Description"] = _vmdesc_desc(f["struct"], f"{fw}.struct", p)
        elif f.get("type") == "tmp" and "vmsd_name" in f:
            entry["Description"] = _vmdesc_desc(f, fw, p)
        out["Fields"].append(entry)
    subs = [_vmdesc_desc(s, f"{where}.subsections[{i}]", p)
            for i, s in enumerate(obj.get("subsections", []) or [])]
    if subs:
        out["Subsections"] = subs
    return out


# -- case files ----------------------------------------------------------------------


def _cases(p: Path, files: list[Path]) -> Side:
    from conformance.cases import load_case_file, load_python_cases

    sections, models = {}, {}
    for f in files:
        cases = load_python_cases(f) if f.suffix == ".py" else [load_case_file(f)]
        for case in cases:
            desc = case.description
            sections.setdefault(desc.name, {
                "Name": desc.name, "version_id": desc.version_id,
                "minimum_version_id": desc.minimum_version_id,
                "Description": dump_form(desc)})
            models.setdefault(desc.name, desc)
    if not sections:
        raise InputError(f"{p}: no case files")
    return Side(str(p), "cases", sections, models)


def dump_form(desc) -> dict:
    """A model Description as ``-dump-vmstate`` would print it (plus ``type``/``num``)."""
    from conformance.model.flags import F

    out = {"name": desc.name, "version_id": desc.version_id,
           "minimum_version_id": desc.minimum_version_id, "Fields": []}
    for f in desc.fields:
        if f.flags & F.MUST_EXIST:  # VMSTATE_VALIDATE: not dumped (dump_vmstate_vmsd)
            continue
        entry = {"field": f.name, "version_id": f.version_id,
                 "field_exists": f.field_exists is not None, "size": f.size,
                 "type": f.info}
        if f.flags & F.ARRAY:
            entry["num"] = f.num
        if f.vmsd is not None:
            entry["Description"] = dump_form(f.vmsd)
        out["Fields"].append(entry)
    if desc.subsections:
        out["Subsections"] = [dump_form(s) for s in desc.subsections]
    return out
