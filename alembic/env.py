"""Alembic environment: the same settings and metadata as the layer itself.

Run from code (``DataLayer.migrate()``, ``dr-assistant-data migrate``) it receives an open
connection; run as ``alembic ...`` from the repository it builds its own from the
environment (``DATABASE_URL`` or ``DB_*``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from dr_assistant_data.migrations.relational import hold_migration_lock
from dr_assistant_data.relational.base import Base
from dr_assistant_data.relational.engine import build_engine
from dr_assistant_data.settings import Settings

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, **kwargs)


def _run(connection: Connection) -> None:
    _configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        # the layer's upgrade() counts applied revisions to name the one that failed
        on_version_apply=config.attributes.get("on_version_apply", ()),
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        _configure(url=Settings.from_env().database_url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = build_engine(Settings.from_env())
    try:
        with engine.begin() as connection:
            hold_migration_lock(connection)
            _run(connection)
    finally:
        engine.dispose()


main()
