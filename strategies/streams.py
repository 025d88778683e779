"""``streams()`` and ``mutated_streams()``: the bytes a description writes, and damage.

A stream is what the reference engine saves for a drawn source state (the reference is
the executable spec; the properties compare other engines against it).  A mutated
stream applies one of :data:`MUTATIONS` to it:

* ``truncate``: cut at a drawn offset, half the time at a field boundary (the end of a
  top-level field or the start of a subsection: :func:`boundaries`);
* ``flip``: XOR one byte with a non-zero mask;
* ``insert``: insert 1-4 bytes at an offset (markers 0x30/0x31 and 0x05 are favoured);
* ``trailing``: append bytes after the end (QEMU_VM_EOF 0x00 first);
* ``delete``: remove a short range.

Shrinking: toward the unmutated simplest stream of the simplest description, then
toward ``truncate`` at offset 0, masks of 1 and inserted zero bytes.
"""

from __future__ import annotations

import attrs
from hypothesis import assume, event
from hypothesis import strategies as st

from conformance.engines import reference
from conformance.model.description import Description
from strategies.values import states

MUTATIONS = ("truncate", "flip", "insert", "trailing", "delete")
#: bytes with a meaning on the wire: EOF/false, subsection, NULL and VALID markers
INTERESTING_BYTES = (0x00, 0x05, 0x30, 0x31, 0xFF, 0x01)


@attrs.frozen
class Stream:
    """A saved stream: the state it came from, its bytes, its field boundaries."""

    variant: str
    state: dict
    data: bytes
    boundaries: tuple[int, ...]


@attrs.frozen
class Mutation:
    kind: str
    offset: int
    data: bytes  # the mutated stream
    original: Stream
    detail: str = ""

    def describe(self) -> str:
        return f"{self.kind} at {self.offset}{': ' + self.detail if self.detail else ''}"


def boundaries(desc: Description, state: dict, variant) -> tuple[int, ...]:
    """Offsets where a top-level field ends or a subsection starts, plus 0 and the end.

    Computed by saving prefixes of the description (fields[:k], then subsections[:k]),
    so they are exact for any engine that agrees with the reference.
    """
    import attrs as _attrs

    out = {0}
    for k in range(1, len(desc.fields) + 1):
        prefix = _attrs.evolve(desc, fields=desc.fields[:k], subsections=())
        saved = reference.save(prefix, state, variant, check=False)
        if saved.ok:
            out.add(len(saved.data))
    for k in range(1, len(desc.subsections) + 1):
        prefix = _attrs.evolve(desc, subsections=desc.subsections[:k])
        saved = reference.save(prefix, state, variant, check=False)
        if saved.ok:
            out.add(len(saved.data))
    saved = reference.save(desc, state, variant, check=False)
    if saved.ok:
        out.add(len(saved.data))
    return tuple(sorted(out))


@st.composite
def streams(draw, description: Description, variant="legacy") -> Stream:
    """The reference engine's stream for a drawn source state of ``description``.

    Shrinks like :func:`strategies.states` (the bytes follow the state).
    """
    state = draw(states(description))
    saved = reference.save(description, state, variant)
    assume(saved.ok)
    return Stream(str(variant), state, saved.data, boundaries(description, state, variant))


@st.composite
def mutated_streams(draw, description: Description, variant="legacy", *,
                    kinds=MUTATIONS) -> Mutation:
    """One mutation of a drawn stream of ``description`` (see the module docstring)."""
    return mutation_of(draw, draw(streams(description, variant)), kinds)


def mutation_of(draw, s: Stream, kinds=MUTATIONS) -> Mutation:
    """One mutation of the stream ``s``, drawn with ``draw`` (a plain function, so a
    caller can draw several mutations of one stream: the fuzz's engine batches)."""
    data = s.data
    kind = draw(st.sampled_from(tuple(kinds)))
    event(f"mutation:{kind}")
    n = len(data)
    if kind == "truncate":
        if draw(st.booleans()):
            offset = draw(st.sampled_from(s.boundaries))
            event("mutation:truncate-at-boundary")
        else:
            offset = draw(st.integers(0, n))
        return Mutation(kind, offset, data[:offset], s)
    if kind == "flip" and n:
        offset = draw(st.integers(0, n - 1))
        mask = draw(st.integers(1, 255))
        return Mutation(kind, offset, data[:offset] + bytes([data[offset] ^ mask])
                        + data[offset + 1:], s, f"xor 0x{mask:02x}")
    if kind == "delete" and n:
        offset = draw(st.integers(0, n - 1))
        length = draw(st.integers(1, min(4, n - offset)))
        return Mutation(kind, offset, data[:offset] + data[offset + length:], s,
                        f"{length} bytes")
    if kind == "trailing":
        extra = draw(st.lists(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255),
                              min_size=1, max_size=4).map(bytes))
        return Mutation(kind, n, data + extra, s, extra.hex())
    offset = draw(st.integers(0, n))
    extra = draw(st.lists(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255),
                          min_size=1, max_size=4).map(bytes))
    return Mutation("insert", offset, data[:offset] + extra + data[offset:], s, extra.hex())


__all__ = ["MUTATIONS", "Stream", "Mutation", "boundaries", "streams", "mutated_streams",
           "mutation_of"]
