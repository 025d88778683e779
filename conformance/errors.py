"""The project's error types: the public API raises only these for bad input.

``ConformanceError`` is the base; every subclass's ``str()`` is one line naming where
the problem is (JSON path, byte offset, field path).  The CLI prints it as
``file: location: what is wrong`` and exits 1.

==================  ================================================================
type                 raised for
==================  ================================================================
``CaseError``        a malformed case file (conformance.cases.casefile)
``StateError``       a state that does not fit its description (conformance.model.state)
``FormatError``      a malformed or incomplete migration file (conformance.migration)
``LimitExceeded``    an input larger or deeper than a documented limit
                     (conformance.model.limits, docs/limits.md)
``UsageError``       an unknown engine / variant name, a bad option value (CLI exit 2)
==================  ================================================================

The concrete classes live beside the code that raises them (and stay ``ValueError``
subclasses for their existing callers); this module only defines the base and
``LimitExceeded`` and re-exports the rest lazily.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every unprintable character escaped (``\\n``, ``\\x1b``, ``\\x00``):
    names taken from input stay on one printable line in messages and notes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class ConformanceError(Exception):
    """Bad input: ``str()`` is one printable line naming where it is."""


class UsageError(ConformanceError, ValueError):
    """A bad request rather than bad input: an unknown engine or variant name, an
    impossible option value.  The CLI exits 2 for it."""


class LimitExceeded(ConformanceError, ValueError):
    """An input asks for more than a limit of conformance.model.limits allows.

    ``limit``: the limit's name (``--limit NAME=VALUE`` raises it); ``location``: where
    (JSON path, or byte offset + section + field); ``value``: what the input asked for.
    """

    def __init__(self, limit: str, location: str, what: str, value: int | None = None) -> None:
        from conformance.model import limits

        self.limit = limit
        self.location = location
        self.value = value
        self.how_to_raise = f"--limit {limit}=N"
        allowed = limits.get(limit)
        message = (f"{location}: {what} exceeds the limit {limit}={allowed} "
                   f"(raise it with --limit {limit}=N)")
        message = printable(message)
        super().__init__(message)
        self.message = message


def __getattr__(name: str):
    if name == "CaseError":
        from conformance.cases.casefile import CaseError

        return CaseError
    if name == "StateError":
        from conformance.model.state import StateError

        return StateError
    if name == "FormatError":
        from conformance.migration.vmdesc import FormatError

        return FormatError
    raise AttributeError(name)


# CaseError, StateError and FormatError are also importable from here (lazily, above)
__all__ = ["ConformanceError", "LimitExceeded", "UsageError", "printable"]
