"""Frozen records filled in one step, without their generated ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (the class
forbids plain assignment), about four times the cost of filling the instance's dict at once.
A replay builds a snapshot with its sun, bucket, surplus and tariff view, a context, and the
proposals and decisions of every tick, 35,040 ticks a year: those constructors were a tenth of
the replay (docs/performance.md, fifth pass). :func:`build` gives the same object as calling
the class (the same fields, defaults filled, an unknown or missing field refused), for plain
frozen dataclasses only: a class with ``__post_init__`` or ``__slots__`` is refused, since
its constructor does more than set fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

__all__ = ["build", "maker"]

T = TypeVar("T")


class _Spec:
    """A class's field names and how to fill the ones left out (None: required)."""

    __slots__ = ("defaults", "names", "size")

    def __init__(self, cls: type) -> None:
        if not is_dataclass(cls) or hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
            raise TypeError(f"{cls.__name__} is not a plain dataclass: call it instead")
        self.defaults: dict[str, tuple[Any, Any] | None] = {}
        for spec in fields(cls):
            if spec.default is not MISSING:
                self.defaults[spec.name] = (spec.default, None)
            elif spec.default_factory is not MISSING:
                self.defaults[spec.name] = (None, spec.default_factory)
            else:
                self.defaults[spec.name] = None
        self.names = frozenset(self.defaults)
        self.size = len(self.names)

    def complete(self, cls: type, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with every left-out field at its default; a TypeError as the
        constructor gives for an unknown or a missing required field."""
        unknown = set(values) - self.names
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
        full = dict(values)
        for name, default in self.defaults.items():
            if name in full:
                continue
            if default is None:
                raise TypeError(f"{cls.__name__} needs {name!r}")
            value, factory = default
            full[name] = factory() if factory is not None else value
        return full


_SPECS: dict[type, _Spec] = {}


def build(cls: type[T], /, **values: Any) -> T:
    """``cls(**values)`` for a plain frozen dataclass, at a quarter of its cost.

    The values are not converted or checked (neither does a dataclass's own ``__init__``);
    field names are, so a misspelt one fails as it would in the constructor."""
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _Spec(cls)
    if len(values) != spec.size or not spec.names.issuperset(values):
        values = spec.complete(cls, values)
    new: T = object.__new__(cls)
    new.__dict__.update(values)
    return new


_MAKERS: dict[type, Callable[..., Any]] = {}
_FACTORY = object()
"""A left-out field made by its default factory (the maker's default for it)."""


def maker(cls: type[T]) -> Callable[..., T]:
    """A function that does what :func:`build` does for ``cls``, made once for the class:
    its fields are keyword-only parameters (defaults as the class has them), so a missing or
    unknown field is the TypeError of any call, checked by the interpreter, and the dict is
    filled without a look-up per call. A replay makes its sun, bucket, surplus, tariff view
    and snapshot this way every tick, where :func:`build` cost 2.7 us a call and this 1.1 us
    (docs/performance.md, ninth pass)."""
    known: Callable[..., T] | None = _MAKERS.get(cls)
    if known is not None:
        return known
    spec = _Spec(cls)  # refuses what build refuses
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_FACTORY": _FACTORY}
    params, fills = [], []
    for number, (name, default) in enumerate(spec.defaults.items()):
        if default is None:
            params.append(name)
        elif default[1] is None:
            namespace[f"_d{number}"] = default[0]
            params.append(f"{name}=_d{number}")
        else:
            namespace[f"_f{number}"] = default[1]
            params.append(f"{name}=_FACTORY")
            fills.append(f"    if {name} is _FACTORY:\n        {name} = _f{number}()\n")
    source = (
        f"def make(*, {', '.join(params)}):\n"
        + "".join(fills)
        + "    new = _new(_cls)\n"
        + f"    new.__dict__.update({', '.join(f'{n}={n}' for n in spec.defaults)})\n"
        + "    return new\n"
    )
    exec(source, namespace)  # noqa: S102 (the source is made of the class's field names)
    made: Callable[..., T] = namespace["make"]
    _MAKERS[cls] = made
    made.__qualname__ = made.__name__ = f"make_{cls.__name__}"
    return made
