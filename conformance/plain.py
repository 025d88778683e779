"""Plain value classes: what the migration-file model used from attrs, without attrs.

Decoding a migration file is a process per file (``python -m conformance.cli.migration``),
and importing attrs costs more than the whole decode of a small stream; the records and
the decoded fields are built thousands of times per stream.  A subclass of
:class:`Plain` names its fields in ``__slots__`` (optional ones in ``_defaults``) and
gets an ``__init__`` taking them in order or by name, ``==`` / ``hash`` / ``repr``
over them and ``replace(**changes)`` (what ``attrs.evolve`` did).  Instances are
treated as immutable; the classes built per field override ``__init__`` with a plain
one (the generic one below is a loop).
"""

from __future__ import annotations


class Plain:
    __slots__ = ()
    #: field name -> default, for the trailing fields that have one
    _defaults: dict = {}
    #: fields left out of ==, hash and repr (e.g. a view of the file's bytes)
    _no_compare: tuple = ()

    def __init__(self, *args, **kwargs) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, got {len(args)}")
        for name, value in zip(names, args, strict=False):  # the rest: by name or default
            setattr(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            setattr(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(kwargs)}")

    def _compared(self) -> tuple:
        skip = self._no_compare
        return tuple(getattr(self, n) for n in self.__slots__ if n not in skip)

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._compared()))

    def __repr__(self) -> str:
        skip = self._no_compare
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__ if n not in skip)
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes):
        """A copy with ``changes`` (attrs.evolve)."""
        values = {n: getattr(self, n) for n in self.__slots__}
        values.update(changes)
        return type(self)(**values)
