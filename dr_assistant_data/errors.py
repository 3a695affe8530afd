"""The exceptions application code catches.

Every message is written by this layer and names fields, never their values: a patient's
name, phone, email, ABHA id, MRN or note text never appears in ``str(error)``. Driver
exceptions are translated at one boundary (:mod:`dr_assistant_data.relational.driver.translate`)
and never chained, so a traceback printed by a web framework cannot leak the driver's
``DETAIL: Key (mrn)=(...)`` line either.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Literal

Backend = Literal["postgres", "mongodb", "redis"]


class DataLayerError(Exception):
    """Base class of every error this package raises: catch it to handle them all.

    Raised inside a unit of work, any of them rolls the whole unit back (relational rows
    and documents alike) when it leaves the ``with`` block."""


class ConfigurationError(DataLayerError, ValueError):
    """A setting is missing, cannot be parsed or is out of its range; ``variable`` names
    the environment variable (never its value).

    Raised when ``Settings`` are built, at start-up: fix the configuration, do not retry.
    The command line exits 2 on it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class NotFoundError(DataLayerError):
    """The record the call names does not exist, or is soft-deleted.

    Raised by calls that need the record (``update``, ``delete``, a note's ``sign``...);
    ``get`` returns ``None`` instead. An HTTP API answers it with 404."""


class ValidationError(DataLayerError, ValueError):
    """Input was refused before anything was written; ``field`` names the offending field
    (a dotted path inside a note's content, ``items.dosage`` for an item) and ``reason``
    says what was expected, never the value received.

    The caller's input is at fault: correct it, do not retry as is. An HTTP API answers it
    with 422 and may show ``field`` and ``reason`` to the user."""

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
    """The write lost a race: a stale ``expected_version``, an appointment overlapping
    another of the doctor's, a document another unit of work is still writing.

    Nothing was written. Reload the record and decide again (or tell the user the slot is
    taken); retrying the same call blindly would overwrite someone else's change. An HTTP
    API answers it with 409."""


class DuplicateError(ConflictError):
    """A value that must be unique is already taken (a username, an email, an MRN, an
    ABHA number); ``field`` names it. A ``ConflictError``: nothing was written."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: already in use")
        self.field = field


class ImmutableRecordError(ConflictError):
    """A signed record was edited as if it were a draft (``update_draft`` or ``sign`` on a
    signed note). A ``ConflictError``: nothing was written; a signed note changes only
    through ``amend``, which keeps every signed version."""


class BackendUnavailableError(DataLayerError):
    """A store could not be reached, timed out, or has no free connection (the pool is
    exhausted); ``backend`` is ``"postgres"``, ``"mongodb"`` or ``"redis"``.

    A transient failure: try again later (an HTTP API answers it with 503). Raised inside
    a unit of work, the unit is rolled back. Raised by its commit, the commit did not take
    effect, or PostgreSQL could not say whether it did (a commit that did take effect
    returns normally instead): retry what is safe to repeat, such as an ``update`` with
    ``expected_version``. Redis being down is not raised from reads and writes, which
    fall back to the databases; only calls that cannot go on without Redis (login
    sessions) raise it."""

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
