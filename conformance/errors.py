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
``UnknownVariant``   an unknown variant name (a ``UsageError``, and a ``KeyError``)
==================  ================================================================

Every class is defined here (a leaf: this module imports nothing from the project);
the modules that raise them import them from here, and keep their old names importable
(``conformance.cases.casefile.CaseError`` is this ``CaseError``).  They stay
``ValueError`` subclasses for their existing callers.
"""

from __future__ import annotations

#: every command's exit status (conformance.cli and its groups): 0 success, 1 a failure
#: or bad input (a ConformanceError), 2 a usage error (UsageError), 3 an internal error
#: (a bug: one line, never a traceback)
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def printable(text: str) -> str:
    """``text`` as one printable line: control characters (and any other unprintable
    character, a newline included) shown as their Python escapes (``\\x1b``, ``\\n``).
    Names taken from the input go through it before they reach a message."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class ConformanceError(Exception):
    """Bad input: ``str()`` is one printable line naming where it is."""


class UsageError(ConformanceError, ValueError):
    """A bad request rather than bad input: an unknown engine or variant name, an
    impossible option value.  The CLI exits 2 for it."""


class UnknownVariant(UsageError, KeyError):
    """An unknown variant name (a UsageError: the CLI exits 2)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CaseError(ConformanceError, ValueError):
    """A malformed case file; the message names the JSON path (and the file)."""

    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        text = f"{where}{path}: {message}"
        super().__init__(printable(text))  # names taken from the input stay one line


class StateError(ConformanceError, ValueError):
    """A state that does not fit its description; ``path`` is a JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class FormatError(ConformanceError, ValueError):
    """Malformed input; ``str()`` is one line naming where (offset, section, JSON path).

    Names taken from the input (idstrs, JSON keys) may hold control characters: they
    are shown escaped so that the message stays one printable line."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


class LimitExceeded(ConformanceError, ValueError):
    """An input asks for more than a limit of conformance.model.limits allows.

    ``limit``: the limit's name (``--limit NAME=VALUE`` raises it); ``location``: where
    (JSON path, or byte offset + section + field); ``value``: what the input asked for;
    ``allowed``: the limit's value when it was exceeded (``limits.exceeded`` passes it).
    """

    def __init__(self, limit: str, location: str, what: str, value: int | None = None, *,
                 allowed: int) -> None:
        self.limit = limit
        self.location = location
        self.value = value
        self.allowed = allowed
        self.how_to_raise = f"--limit {limit}=N"
        message = printable(f"{location}: {what} exceeds the limit {limit}={allowed} "
                            f"(raise it with --limit {limit}=N)")
        super().__init__(message)
        self.message = message


class CaseLimitExceeded(LimitExceeded, CaseError):
    """A case file past a limit of docs/limits.md: a :class:`LimitExceeded` (``.limit``,
    ``.location``, ``.value``, ``.how_to_raise``) that is also a :class:`CaseError`
    (``.path``: the JSON path, ``.source``: the file), as callers of either expect."""

    def __init__(self, exc: LimitExceeded, source: str | None = None) -> None:
        self.limit, self.value, self.how_to_raise = exc.limit, exc.value, exc.how_to_raise
        self.allowed = exc.allowed
        self.location = self.path = exc.location
        self.message = exc.message.removeprefix(f"{exc.location}: ")
        self.source = source
        text = f"{source}: {exc.message}" if source else exc.message
        ConformanceError.__init__(self, printable(text))


__all__ = ["EXIT_FAIL", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "CaseError",
           "CaseLimitExceeded", "ConformanceError", "FormatError", "LimitExceeded",
           "StateError", "UnknownVariant", "UsageError", "printable"]
