"""Running the Alembic revisions of the relational store from code.

The revisions live in the repository's ``alembic/`` directory, shipped inside the package
as ``dr_assistant_data.revisions``. Every operation runs on a connection the caller's
engine provides, each revision in a transaction of its own: PostgreSQL's DDL is
transactional, so a failing revision is rolled back alone, and the error names it. (A
revision that opens an ``autocommit_block``, for ``CREATE INDEX CONCURRENTLY`` say,
commits what ran before it.) A revision that refuses because of what the database holds
refuses before any step of the path runs, so a refused upgrade or downgrade changes
nothing (``refusals.py``, asked by ``alembic/env.py`` whoever runs the migration).
Upgrades and downgrades hold a PostgreSQL advisory lock, so several deploys starting at
once apply each revision exactly once, and wait at most the lock policy's timeout for a
table lock before starting again (``locking.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from ..errors import DataLayerError
from ..progress import ProgressCallback, Tally
from ..relational.base import Base
from ..relational.driver.translate import contract_error, translated
from . import database_objects  # noqa: F401 - adds triggers, functions, grants to drift()
from .locking import (
    MIGRATION_LOCK,
    LockPolicy,
    LockTimeoutError,
    is_lock_timeout,
    migrating,
    with_lock_retries,
)

__all__ = ["MIGRATION_LOCK", "LockPolicy", "downgrade", "drift", "status", "upgrade"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def script_location() -> str:
    """``revisions/`` inside an installed package, else the checkout's ``alembic/``."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "revisions"
    return str(installed if installed.is_dir() else package.parent / "alembic")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location())
    config.attributes["connection"] = connection
    return config


def _migration_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Database failures become contract errors; Alembic's own (an unknown revision, say)
    become ``DataLayerError`` with Alembic's message, which names revisions only; lock
    waits that timed out on every attempt say so."""

    run = translated(fn)

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return run(*args, **kwargs)
        except (CommandError, RevisionError) as error:
            mapped = DataLayerError(f"migration: {error}")
        except LockTimeoutError as error:
            mapped = DataLayerError(
                f"migration: a table stayed locked by other transactions; {error} "
                "(MIGRATION_LOCK_TIMEOUT, MIGRATION_RETRIES); nothing was applied "
                "by the last attempt"
            )
        raise mapped

    return wrapper


@_migration_errors
def upgrade(
    engine: Engine,
    revision: str = "head",
    policy: LockPolicy | None = None,
    progress: ProgressCallback | None = None,
) -> None:
    """Apply the revisions up to ``revision``; on a lock timeout, start again (from the
    revisions still pending) as ``policy`` allows. ``progress`` hears of each revision
    applied, out of those pending once the lock was held (``progress.py``)."""
    policy = policy or LockPolicy()
    tally = Tally(progress)

    def attempt() -> None:
        with (
            engine.connect() as connection,
            migrating(connection, policy),
            _naming_the_failed_revision(connection, revision, tally) as config,
        ):
            command.upgrade(config, revision)

    with_lock_retries(policy, attempt)
    tally.finish()


@contextmanager
def _naming_the_failed_revision(
    connection: Connection, target: str, tally: Tally
) -> Iterator[Config]:
    """A config that counts the revisions applied (on ``tally`` too); a database failure
    among them becomes a ``DataLayerError`` naming the revision that was running (the first
    not applied)."""
    config = alembic_config(connection)
    applied: list[object] = []

    def step_applied(**step: object) -> None:
        applied.append(step)
        tally.advance()

    config.attributes["on_version_apply"] = (step_applied,)
    to_apply = _revisions_between(connection, target)
    tally.total = tally.done + len(to_apply)  # a retry goes on from the revisions done
    connection.rollback()  # Alembic begins the migration's transaction itself
    try:
        yield config
    except (sa_exc.DBAPIError, sa_exc.StatementError) as error:
        if is_lock_timeout(error):
            raise
        failed = to_apply[len(applied)] if len(applied) < len(to_apply) else "unknown"
        reason = contract_error(error)
    else:
        return
    raise DataLayerError(
        f"migration: revision {failed} failed and was rolled back; the revisions before it "
        f"are applied ({reason})"
    )


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _scripts() -> ScriptDirectory:
    """The revisions shipped with the package (read once: ``health`` asks often)."""
    return _scripts_at(script_location())


@functools.cache
def _scripts_at(location: str) -> ScriptDirectory:
    return ScriptDirectory(location)


def _upgrade_path(current: tuple[str, ...], target: str) -> list[Script]:
    """The revisions an upgrade from ``current`` to ``target`` would apply, in order."""
    path = _scripts().iterate_revisions(target, current[0] if current else "base")
    return [script for script in reversed(list(path)) if script.revision not in current]


def _revisions_between(connection: Connection, target: str) -> list[str]:
    """The revisions an upgrade to ``target`` would apply, in order."""
    return [script.revision for script in _upgrade_path(_current(connection), target)]


@_migration_errors
def downgrade(engine: Engine, revision: str, policy: LockPolicy | None = None) -> None:
    """Take the schema back to ``revision``, with the same lock rules as :func:`upgrade`.
    When a revision on the way refuses (``refusals.py``), nothing is run and the
    ``RefusedMigration`` names every revision that refuses and why."""
    policy = policy or LockPolicy()

    def attempt() -> None:
        with engine.connect() as connection, migrating(connection, policy):
            command.downgrade(alembic_config(connection), revision)

    with_lock_retries(policy, attempt)


@dataclass(frozen=True)
class Status:
    current: tuple[str, ...]
    head: str | None
    pending: tuple[str, ...]


@_migration_errors
def status(engine: Engine) -> Status:
    """The revisions applied and those still to apply, oldest first."""
    with engine.connect() as connection:
        current = _current(connection)
        pending = _revisions_between(connection, "heads")
    head = _scripts().get_current_head()
    return Status(current=tuple(current), head=head, pending=tuple(pending))


@_migration_errors
def drift(engine: Engine) -> list[Any]:
    """Differences between the models and the database (empty when they agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))
