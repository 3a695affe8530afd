"""Alembic environment: the same settings and metadata as the layer itself.

``config.attributes["connection"]`` may hold an open Connection (``DataLayer.migrate()``,
``dr-assistant-data migrate``: the caller holds the migration lock) or an Engine
(pytest-alembic, other tools); without either, ``alembic ...`` builds an engine from the
environment (``DATABASE_URL`` or ``DB_*``). Given an Engine or none, the migration runs
on a connection of that engine holding the migration lock, under ``lock_timeout``
(``MIGRATION_LOCK_TIMEOUT``, ``locking.py``), unless that connection is already in a
transaction of its caller (pytest-alembic's up/down cycle), which then owns both. Engines
built by the layer carry its keyring, which revisions that seal identifiers need.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, Engine

from dr_assistant_data.migrations import database_objects  # noqa: F401 - compared too
from dr_assistant_data.migrations.locking import LockPolicy, migrating
from dr_assistant_data.migrations.numbering import number_new_revisions
from dr_assistant_data.migrations.refusals import refuse_before_any_step
from dr_assistant_data.relational.base import Base
from dr_assistant_data.relational.connection.engine import build_engine
from dr_assistant_data.settings import Settings

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(**kwargs: object) -> None:
    numbered = getattr(config.cmd_opts, "rev_id", None) is None  # unless --rev-id names it
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        process_revision_directives=number_new_revisions if numbered else None,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        # each revision commits on its own: a lock one takes (ACCESS EXCLUSIVE for a moment)
        # is released when it is done, not held while the later revisions run
        transaction_per_migration=True,
        # the layer's upgrade() counts applied revisions to name the one that failed
        on_version_apply=config.attributes.get("on_version_apply", ()),
    )
    # each revision commits on its own: a refusal anywhere on the path is checked first
    refuse_before_any_step(context.get_context())
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(settings: Settings) -> None:
    """The SQL of the migration, for a DBA to run or a linter to read; on PostgreSQL it
    sets first the timeouts an online migration runs under."""
    _configure(url=settings.database_url, literal_binds=True)
    with context.begin_transaction():
        if not settings.is_embedded:
            context.execute(LockPolicy.of(settings).statement)
            if settings.db_statement_timeout_ms:
                context.execute(f"SET statement_timeout = {settings.db_statement_timeout_ms}")
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        _run_offline(config.attributes.get("settings") or Settings.from_env())
        return
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    settings = Settings.from_env()
    engine: Engine = given if given is not None else build_engine(settings)
    try:
        with engine.connect() as connection:
            if connection.in_transaction():
                _run(connection)
                return
            with migrating(connection, LockPolicy.of(settings)):
                _run(connection)
    finally:
        if given is None:
            engine.dispose()


main()
