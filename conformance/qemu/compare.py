"""Reference ≡ qemu: what is compared, and the disagreement classes.

:func:`compare` lists the aspects on which a reference outcome and a qemu-engine outcome
differ: save bytes; load kind, ret, file error, bytes consumed and state.  The state is
compared where the model says it is determinate (model ``INDETERMINATE`` / ``Uninit``
match anything: C cannot tell malloc'd memory from data).  Messages are an aspect of
their own (``messages``).  Paths, offsets of errors, hazards and the ledger are the
model's annotations: C cannot report them, they are not compared.

Where the model says ``undefined`` or ``limit`` nothing is compared (documented
undefined behaviour / beyond the model); a model ``ok``/``error`` against a C crash is
a disagreement.

:func:`classify` names the class of a disagreement.  :data:`CLASSES` is the one table:
``xfail=True`` marks a class the model does not follow yet (the lead flips it to False
when the model fix lands, and the strict xfail in tests/test_qemu_engine.py then makes
the fixed class a hard failure again).
"""

from __future__ import annotations

import re

import attrs

from conformance.model.description import Description
from conformance.model.flags import F
from conformance.model.outcome import ERROR, LIMIT, OK, UNDEFINED, Outcome
from conformance.model.state import INDETERMINATE, Uninit
from conformance.qemu.engine import not_expressible
from conformance.qemu.layout import PERTURB, Unread


@attrs.frozen
class DisagreementClass:
    key: str
    title: str
    xfail: bool  # True: the model does not follow C here yet (known, tracked)


#: every class of disagreement, known from outside (A, B, B2, Q, M) or found here
CLASSES: dict[str, DisagreementClass] = {c.key: c for c in (
    DisagreementClass(
        "A", "file error after a failed vmstate_load_state: version too new/old, MUST_EXIST "
        "missing, failing post_load and 7.2's unknown subsection return the error WITHOUT "
        "qemu_file_set_error (only the field loop and 8.0+ subsection failures set it)", False),
    DisagreementClass(
        "B", "get_bitmap writes whole 64-bit words (BITS_TO_U64S(size)); destination bits "
        "beyond them survive", False),
    DisagreementClass(
        "B2", "a bitmap size larger than the destination's bitmap: C writes past the end "
        "(undefined), the model loads it", False),
    DisagreementClass(
        "Q", "a buffer read hitting the end of the stream: the destination bytes after the "
        "failed load (qemu_get_buffer copies what qemu_peek_buffer returns)", False),
    DisagreementClass(
        "M", "error_report / Error wording (10.x reports through errp; 7.2's and 10.x's "
        "texts differ from the model's)", False),
    DisagreementClass(
        "N", "a subsection name with an embedded NUL byte: vmstate_subsection_load() "
        "compares idstr as a C string, so \"dev/sub\\0...\" finds subsection "
        "\"dev/sub\" (the model compares all len bytes)", False),
    DisagreementClass(
        "G", "get_gtree() into a NULL GTree * (a member the destination left NULL, or one "
        "inside a node value the core just g_malloc0'd): g_tree_insert() refuses "
        "(GLib-CRITICAL) and the nodes are lost; the model loses them too "
        "(codecs._get_gtree; a case spells the NULL tree `null`)", False),
    DisagreementClass(
        "L", "get_qlist() into a non-empty list: QLIST_RAW_INSERT_AFTER sets the new "
        "element's next to NULL, so after two or more loaded elements the destination's "
        "old elements are dropped (leaked); the model keeps them after the loaded ones", False),
    DisagreementClass(
        "T", "unclassified: a disagreement no class above explains (read the example)", True),
)}


@attrs.frozen
class Diff:
    aspect: str  # kind | bytes | ret | file_error | consumed | state | messages
    path: str
    model: object
    qemu: object

    def __str__(self) -> str:
        return f"{self.aspect} {self.path}: model {self.model!r} / qemu {self.qemu!r}"


#: the driver child's address-space limit (driver.c: setrlimit(RLIMIT_AS, 4 GiB))
CHILD_ADDRESS_SPACE = 4 << 30
_ALLOC_FAILED = re.compile(r"GLib: failed to allocate (\d+) bytes")


def comparable(ref: Outcome, q: Outcome) -> str | None:
    """Why the pair is not compared (None: it is)."""
    if not_expressible(q):
        return "not-expressible"
    if ref.kind in (UNDEFINED, LIMIT):
        return f"model-{ref.kind}"
    m = _ALLOC_FAILED.search(q.message or "") if q.kind == "abort" else None
    if m and ref.kind != "abort" and int(m.group(1)) * 2 > CHILD_ADDRESS_SPACE:
        # g_malloc() failed only because the driver's child runs under a 4 GiB
        # RLIMIT_AS; a host grants it (the model's limits.MALLOC_LIMIT is 1 TiB), e.g.
        # get_g_byte_array's g_byte_array_set_size() of a length read from a damaged
        # stream: C's sandbox limit, not the model's claim
        return "qemu-limit"
    return None


def compare(ref: Outcome, q: Outcome) -> list[Diff]:
    """Aspects on which the two outcomes differ (see the module docstring)."""
    out: list[Diff] = []
    if comparable(ref, q) is not None:
        return out
    if ref.kind != q.kind:
        out.append(Diff("kind", "", ref.summary(), q.summary()))
        return out
    if ref.op == "save":
        # an abort kills the child before the stream is reported: no bytes to compare
        if ref.kind in (OK, ERROR) and bytes(ref.data) != bytes(q.data):
            out.append(Diff("bytes", "", bytes(ref.data).hex(), bytes(q.data).hex()))
        if ref.kind == ERROR and ref.ret != q.ret:
            out.append(Diff("ret", "", ref.ret, q.ret))
        if ref.kind == OK and ref.vmdesc is not None and ref.vmdesc != q.vmdesc:
            out.append(Diff("vmdesc", "", ref.vmdesc, q.vmdesc))
    elif ref.kind in (OK, ERROR):
        if ref.ret != q.ret:
            out.append(Diff("ret", "", ref.ret, q.ret))
        if ref.file_error != q.file_error:
            out.append(Diff("file_error", "", ref.file_error, q.file_error))
        if len(ref.data) != len(q.data):
            out.append(Diff("consumed", "", len(ref.data), len(q.data)))
        _state_diff(ref.state, q.state, "$", out)
    if ref.kind != OK and tuple(ref.messages) != tuple(q.messages):
        out.append(Diff("messages", "", list(ref.messages), list(q.messages)))
    elif ref.kind == "abort" and ref.message != q.message:
        out.append(Diff("messages", "", ref.message, q.message))
    return out


def _state_diff(m, c, path: str, out: list[Diff]) -> None:
    if m is INDETERMINATE or isinstance(m, Uninit):
        return  # the model makes no claim
    if isinstance(c, Unread):
        return  # a block larger than the walker reads back (layout.READ_LIMIT)
    if (c is INDETERMINATE or isinstance(c, Uninit)) and (_perturb_like(m)
                                                         or _all_indeterminate(m)):
        # loaded data equal to the M_PERTURB fill (layout.PERTURB), or a structure the
        # model keeps whose every leaf is indeterminate
        return
    if isinstance(m, dict):
        if not isinstance(c, dict):
            out.append(Diff("state", path, m, c))
            return
        for k, v in m.items():
            if k == "parent":
                continue
            _state_diff(v, c.get(k), f"{path}.{k}", out)
        return
    if isinstance(m, list):
        if not isinstance(c, list) or len(c) != len(m):
            out.append(Diff("state", path, m, c))
            return
        for i, (a, b) in enumerate(zip(m, c, strict=True)):
            _state_diff(a, b, f"{path}[{i}]", out)
        return
    if isinstance(m, (bytes, bytearray)):
        if not isinstance(c, (bytes, bytearray)) or bytes(c) != bytes(m):
            out.append(Diff("state", path, bytes(m).hex(), c.hex() if isinstance(c, bytes)
                            else c))
        return
    if isinstance(m, bool) or isinstance(c, bool):
        if bool(m) != bool(c) or type(m) is not type(c):
            out.append(Diff("state", path, m, c))
        return
    if m != c:
        out.append(Diff("state", path, m, c))


def _all_indeterminate(m) -> bool:
    if m is INDETERMINATE or isinstance(m, Uninit):
        return True
    if isinstance(m, dict):
        return all(_all_indeterminate(v) for k, v in m.items() if k != "parent")
    if isinstance(m, list):
        return all(_all_indeterminate(v) for v in m)
    return False


def _perturb_like(m) -> bool:
    """Is ``m`` a value whose C bytes are all layout.PERTURB (so C cannot tell it from
    malloc'd memory)?"""
    if isinstance(m, (bytes, bytearray)):
        return len(m) > 0 and set(m) == {PERTURB}
    if isinstance(m, bool) or not isinstance(m, int):
        return False
    for w in (1, 2, 4, 8):
        pattern = int.from_bytes(bytes([PERTURB]) * w, "little")
        if m & ((1 << (8 * w)) - 1) == pattern and -(1 << (8 * w - 1)) <= m < (1 << (8 * w)):
            return True
    return False


def _members_of_kind(desc: Description, kinds: tuple[str, ...]) -> set[str]:
    out = set()
    for _, f in desc.all_fields():
        info = f.info_obj
        if info is not None and info.kind in kinds and f.member:
            out.add(f.member)
    return out


def _last_member(path: str) -> str:
    tail = path.rsplit(".", 1)[-1]
    return tail.split("[", 1)[0]


def _nul_subsection(desc: Description, data: bytes) -> bool:
    """Does the stream hold a subsection header naming one of ``desc``'s subsections
    followed by a NUL inside the name's length byte?"""
    for _, d in desc.walk():
        for sub in d.subsections:
            name = sub.name.encode()
            at = data.find(name + b"\x00")
            while at >= 2:
                if data[at - 2] == 0x05 and data[at - 1] > len(name):
                    return True
                at = data.find(name + b"\x00", at + 1)
    return False


def classify(desc: Description, ref: Outcome, q: Outcome, diffs: list[Diff],
             data: bytes = b"") -> str:
    """The class key (see CLASSES) of a non-empty list of diffs."""
    aspects = {d.aspect for d in diffs}
    if ref.op == "load" and _nul_subsection(desc, data):
        return "N"
    bitmaps = _members_of_kind(desc, ("bitmap",))
    buffers = _members_of_kind(desc, ("buffer",))
    if aspects == {"messages"}:
        return "M"
    if "kind" in aspects:
        # past the end of the bitmap: a guard or SIGSEGV (undefined), or glibc's heap
        # checks noticing the damage (abort "free(): invalid pointer")
        if (bitmaps and ref.kind in (OK, ERROR)
                and (q.kind == UNDEFINED
                     or (q.kind == "abort" and not (q.message or "").startswith("assertion")))):
            return "B2"
        return "T"
    rest = aspects - {"messages"}
    if (rest and rest <= {"file_error", "ret"} and ref.kind == ERROR
            and ("ret" not in rest or q.ret == -2)):
        # 7.2: the error without qemu_file_set_error; 8.0-10.x unknown subsection:
        # -ENOENT returned and set (the model: -EINVAL)
        return "A"
    state = [d for d in diffs if d.aspect == "state"]
    if rest == {"state"}:
        gtrees = _members_of_kind(desc, ("gtree",))
        if all(_last_member(d.path) in bitmaps for d in state):
            return "B"
        if all(_last_member(d.path) in gtrees and d.qemu == [] for d in state):
            return "G"
        qlists = _members_of_kind(desc, ("qlist",))
        if all(_last_member(d.path) in qlists for d in state):
            return "L"
        if all(_last_member(d.path) in buffers for d in state) and q.file_error:
            return "Q"
    return "T"


def has_flag(desc: Description, flag: F) -> bool:
    return any(f.flags & flag for _, f in desc.all_fields())
