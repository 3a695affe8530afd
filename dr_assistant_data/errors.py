"""The exceptions application code catches.

Every message is written by this layer and names fields, never their values: a patient's
name, phone, email, ABHA id, MRN or note text never appears in ``str(error)``. Driver
exceptions are translated at one boundary (:mod:`dr_assistant_data.relational.translate`)
and never chained, so a traceback printed by a web framework cannot leak the driver's
``DETAIL: Key (mrn)=(...)`` line either.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Literal

Backend = Literal["postgres", "mongodb", "redis"]


class DataLayerError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(DataLayerError, ValueError):
    """A setting is missing or cannot be parsed; ``variable`` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class NotFoundError(DataLayerError):
    """The entity asked for does not exist (or is soft-deleted)."""


class ValidationError(DataLayerError, ValueError):
    """Input was refused before anything was written; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def schema_field(name: object, known: Container[str], label: str) -> str:
    """``name`` when it is a field the schema knows, else the fixed ``label``: a key the
    caller made up (it may hold patient data, or a forged log line) never becomes an
    error's ``field`` or message."""
    return name if isinstance(name, str) and name in known else label


class ConflictError(DataLayerError):
    """The write lost a race: a stale version, an overlapping appointment, a concurrent edit."""


class DuplicateError(ConflictError):
    """A value that must be unique is already taken; ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: already in use")
        self.field = field


class ImmutableRecordError(ConflictError):
    """A signed record was edited as if it were a draft."""


class BackendUnavailableError(DataLayerError):
    """A store could not be reached, timed out, or has no free connection.

    ``backend`` is ``"postgres"``, ``"mongodb"`` or ``"redis"``.
    """

    def __init__(self, backend: Backend, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend


class SchemaNotMigratedError(DataLayerError):
    """The database lacks a table or column this version of the layer uses: its schema was
    never migrated, or is behind. Run ``dr-assistant-data migrate`` (``dl.migrate()``)."""

    def __init__(self) -> None:
        super().__init__(
            "the database schema is not migrated to this version of the layer; "
            "run `dr-assistant-data migrate`"
        )
