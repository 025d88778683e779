"""Outcomes: what QEMU would do, in a form two engines or two variants can compare.

An outcome is one of

* ``ok``        the save produced ``data`` / the load succeeded (``state`` is loaded);
* ``error``     QEMU returns an error: ``message`` is the first error_report() line,
                ``messages`` all of them, ``ret`` the errno-style return value;
* ``abort``     QEMU hits an assertion (process abort): ``message`` is the assertion;
* ``undefined`` QEMU's behaviour is undefined (dereferencing NULL or indeterminate
                memory, writing out of bounds): the model stops there;
* ``limit``     the input asks for more than the model materialises (a counter from a
                corrupted stream asking for 2^31 elements; see conformance/limits.py);
* ``rejected``  vmstate_check fails for the variant: the engines refuse to run.

Every outcome carries ``offset`` (bytes consumed or written when it happened), ``path``
(``dev/field[3]/sub``), the ``hazards`` met on the way (silent misparse, leak,
indeterminate memory, ...) and, for loads, the allocation ``ledger``.
"""

from __future__ import annotations

from typing import Any

import attrs

OK = "ok"
ERROR = "error"
ABORT = "abort"
UNDEFINED = "undefined"
LIMIT = "limit"  # the input asks for more than the model materialises (limits.py)
REJECTED = "rejected"  # vmstate_check fails: the engines refuse to run
KINDS = (OK, ERROR, ABORT, UNDEFINED, LIMIT, REJECTED)

#: hazard kinds (docs/state-model.md explains each)
HAZARDS = (
    "leak",  # a non-NULL pointer was overwritten by a core allocation
    "indeterminate-read",  # non-zeroed memory was read (assert, deref, save)
    "indeterminate-left",  # core-allocated memory still uninitialised after load
    "null-dereference",  # the core followed a NULL pointer
    "out-of-bounds",  # the count or size exceeds the member the state provides
    "stale-slot",  # a populated slot kept its old object where the source had NULL
    "desync",  # the load consumed a different number of bytes than the save wrote
    "silent-misparse",  # the load succeeded but the state differs from the source
    "sticky-eof",  # the load succeeded but left QEMU's sticky -EIO (peek at the end)
)


@attrs.frozen
class Hazard:
    kind: str
    path: str
    detail: str = ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


@attrs.frozen
class Allocation:
    """One allocation the core made on load (vmstate_handle_alloc / element alloc)."""

    path: str
    what: str  # "array" (the member itself) or "element"
    nbytes: int
    zeroed: bool
    overwrote: bool = False  # a non-NULL pointer was replaced (leaked)

    def to_json(self) -> dict:
        return {"path": self.path, "what": self.what, "bytes": self.nbytes,
                "zeroed": self.zeroed, "overwrote": self.overwrote}


@attrs.frozen
class Precondition:
    """A precondition on the destination the core asserted on load (a ledger entry),
    e.g. QEMU 11 vmstate_load_next()'s ``assert(!auto_alloc || *pptr == NULL)``.
    ``held`` False means the assertion fired (the outcome is an abort)."""

    path: str
    condition: str
    held: bool = True

    def to_json(self) -> dict:
        return {"path": self.path, "assert": self.condition, "held": self.held}


@attrs.frozen(eq=False)
class Outcome:
    kind: str
    op: str  # "save" or "load"
    data: bytes = b""  # save: the stream written; load: the bytes consumed
    state: Any = None  # load: the destination after the load
    message: str | None = None
    messages: tuple[str, ...] = ()
    ret: int = 0
    offset: int | None = None
    path: str | None = None
    hazards: tuple[Hazard, ...] = ()
    ledger: tuple[Allocation | Precondition, ...] = ()
    file_error: int = 0  # the sticky QEMUFile error left behind
    vmdesc: str | None = None  # save with vmdesc: the JSON text of the VMSD body

    @property
    def ok(self) -> bool:
        return self.kind == OK

    def comparable(self) -> tuple:
        """Everything two engines must agree on (state compared by value)."""
        from conformance.model.state import canonical

        return (self.kind, self.op, bytes(self.data), canonical(self.state), self.message,
                self.messages, self.ret, self.offset, self.path, self.hazards, self.ledger,
                self.file_error)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return self.comparable() == other.comparable() and self.vmdesc == other.vmdesc

    __hash__ = None

    def summary(self) -> str:
        """One line for a terminal: kind, message, where."""
        if self.kind == OK:
            extra = f", sticky {self.file_error}" if self.file_error else ""
            return f"ok ({len(self.data)} bytes{extra})"
        where = []
        if self.path:
            where.append(f"field {self.path}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        loc = f" at {', '.join(where)}" if where else ""
        return f"{self.kind}: {self.message}{loc}"

    def to_json(self) -> dict:
        from conformance.model.state import to_plain

        out: dict[str, Any] = {"kind": self.kind, "op": self.op}
        if self.op == "save":
            out["stream"] = bytes(self.data).hex()
        else:
            out["consumed"] = len(self.data)
            out["state"] = to_plain(self.state)
        if self.kind != OK:
            out.update(message=self.message, messages=list(self.messages), ret=self.ret,
                       offset=self.offset, path=self.path)
        if self.file_error:
            out["file_error"] = self.file_error
        if self.hazards:
            out["hazards"] = [h.to_json() for h in self.hazards]
        if self.ledger:
            out["ledger"] = [a.to_json() for a in self.ledger]
        return out
