"""Settings read from environment variables, each variable declared once, on its field:

    db_pool_size: int = variable(
        "DB_POOL_MAX", 10, Environ.integer, bound=AT_LEAST_ONE, doc="Pooled connections."
    )

:func:`variable` keeps the variable's name, how its text is read, the range the value
must hold and what the setting is for in the dataclass field's metadata (the settings
reference of the documentation is generated from it). ``Settings.from_env`` reads each
field through it, ``Settings.__post_init__`` checks each bound, and every failure is a
``ConfigurationError`` naming the variable, never quoting its value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigurationError

_T = TypeVar("_T")

METADATA_KEY = "environment_variable"

Reader = Callable[["Environ", str, Any], Any]
"""``read(environ, name, default)``: the value of variable ``name``, or ``default``."""


class Environ:
    """Typed reads of environment variables; every failure names the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(name, "").strip()
        return value or default

    def optional_text(self, name: str, default: str | None) -> str | None:
        return self.text(name, "") or default

    def has(self, name: str) -> bool:
        return bool(self._environ.get(name, "").strip())

    def number(self, name: str, kind: Callable[[str], _T], default: _T) -> _T:
        if not self.has(name):
            return default
        try:
            return kind(self._environ[name].strip())
        except ValueError:
            pass  # its message quotes the value: never chained to the error below
        raise ConfigurationError(name, "must be a number")

    def integer(self, name: str, default: int) -> int:
        return self.number(name, int, default)

    def real(self, name: str, default: float) -> float:
        return self.number(name, float, default)

    def millis(self, name: str, default_seconds: float, *, zero: bool = False) -> float:
        """A duration given in milliseconds, as seconds; zero only when ``zero``."""
        if not self.has(name):
            return default_seconds
        millis = self.number(name, int, 0)
        if millis < 0 or (millis == 0 and not zero):
            raise ConfigurationError(name, "must be a positive number of milliseconds")
        return millis / 1000

    def millis_or_zero(self, name: str, default_seconds: float) -> float:
        return self.millis(name, default_seconds, zero=True)

    def items(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A comma-separated list (empty entries ignored)."""
        found = tuple(
            item.strip() for item in self._environ.get(name, "").split(",") if item.strip()
        )
        return found or default

    def flag(self, name: str, default: bool) -> bool:
        if not self.has(name):
            return default
        value = self._environ[name].strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(name, "must be true or false")


@dataclass(frozen=True)
class Bound:
    """A range (or set of choices) a setting must hold, however it was given."""

    holds: Callable[[Any], bool]
    message: str
    """What the value must be, as errors and the settings reference say it."""

    def check(self, value: Any, variable: str) -> None:
        if not self.holds(value):
            raise ConfigurationError(variable, self.message)


AT_LEAST_ONE = Bound(lambda value: value >= 1, "must be at least 1")
POSITIVE = Bound(lambda value: value > 0, "must be positive")
NOT_NEGATIVE = Bound(lambda value: value >= 0, "must not be negative")


def one_of(choices: tuple[str, ...]) -> Bound:
    """The bound of a setting that takes one of ``choices``."""
    return Bound(lambda value: value in choices, "must be one of " + ", ".join(choices))


@dataclass(frozen=True)
class Variable:
    """The variable a setting comes from (the one its errors name), how it is read, its
    bound, the other variables the reading consults (``DB_HOST`` for ``DATABASE_URL``), and
    what the setting is for (``doc``: the settings reference prints it).
    """

    name: str
    reader: Reader
    bound: Bound | None = None
    also: tuple[str, ...] = ()
    doc: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.also)

    def read(self, environ: Environ, default: Any) -> Any:
        return self.reader(environ, self.name, default)


def variable(
    name: str,
    default: _T,
    reader: Reader = Environ.text,
    *,
    bound: Bound | None = None,
    also: tuple[str, ...] = (),
    doc: str = "",
) -> _T:
    """A dataclass field defaulting to ``default``, read from variable ``name``."""
    source = Variable(name, reader, bound, also, doc)
    return dataclasses.field(default=default, metadata={METADATA_KEY: source})


def source_of(setting: dataclasses.Field[Any]) -> Variable:
    """The variable declared on a field by :func:`variable`."""
    source: Variable = setting.metadata[METADATA_KEY]
    return source
