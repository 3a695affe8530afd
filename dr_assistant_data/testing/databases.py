"""Test databases: one migrated template per run (per xdist worker), a clone per test.

On PostgreSQL the template is a database migrated once; each test gets
``CREATE DATABASE ... TEMPLATE`` of it (the server copies its files: no migration, no
leftover rows, every guarantee of the layer real, commits included) and drops it
afterwards. On SQLite the template is a migrated file and each test gets a copy.

Runs on one server at once never meet: a run's template is its own (the plugin names it
per run), and dropped after it. A kept template (``reuse``) has one name for every run and
serves the next run as long as its revision is still the newest, otherwise it is rebuilt;
runs sharing it hold a shared advisory lock on its name for as long as they clone from it,
and a rebuild waits for the exclusive one, so no run drops the template another is using.

Failure mode: a server that cannot be reached, or a role without ``CREATEDB``, raises the
contract's ``BackendUnavailableError`` / ``DataLayerError`` from the first fixture that needs
a database: the tests error, they are never skipped.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ..errors import DataLayerError
from ..layer import DataLayer
from ..relational.driver.translate import translated
from ..settings import Settings

OBJECT_IN_USE = "55006"
"""SQLSTATE of a template something is still connected to (autovacuum, or another run
checking a kept template's revision): retried."""
CLONE_ATTEMPTS = 100
SQLITE_TEMPLATE = "template.sqlite3"


class TemplateDatabase:
    """A migrated database that each test's database is cloned from."""

    def __init__(self, settings: Settings, name: str, folder: Path) -> None:
        self.settings = settings
        self.name = name
        self.folder = folder
        self.embedded = settings.is_embedded

    @contextmanager
    def prepared(self, *, reuse: bool) -> Iterator[TemplateDatabase]:
        """The template, created and migrated, for the block; dropped after it unless
        ``reuse``: then an existing one at the newest revision is kept, and the block holds
        the template's shared lock (see the module's docstring)."""
        if self.embedded:
            translated(_migrate)(dataclasses.replace(self.settings, database_url=self._file_url()))
            yield self
            return
        with ExitStack() as run:
            if reuse:
                run.enter_context(translated(self._keep)())
            else:
                translated(self._create)()
                run.callback(translated(self._drop), self.name)
            yield self

    def _keep(self) -> ExitStack:
        """The kept template's shared lock, held until the returned stack closes, with the
        template at the newest revision: rebuilt first, under the exclusive lock, when it
        is missing or behind."""
        settings = dataclasses.replace(self.settings, database_url=self._url(self.name))
        key = func.hashtext(self.name)
        with ExitStack() as held:
            lock = held.enter_context(self._admin())  # the lock goes with the connection
            while True:
                lock.execute(select(func.pg_advisory_lock_shared(key)))
                with self._admin() as admin:
                    if _exists(admin, self.name) and _at_head(settings):
                        return held.pop_all()
                lock.execute(select(func.pg_advisory_unlock_shared(key)))
                lock.execute(select(func.pg_advisory_lock(key)))
                try:
                    self._create()
                finally:
                    lock.execute(select(func.pg_advisory_unlock(key)))

    def _create(self) -> None:
        with self._admin() as admin:
            _drop(admin, self.name)
            admin.execute(text(f'CREATE DATABASE "{self.name}"'))
        _migrate(dataclasses.replace(self.settings, database_url=self._url(self.name)))

    @contextmanager
    def clone(self) -> Iterator[str]:
        """A fresh copy of the template for one test; yields its URL, removes it after."""
        if self.embedded:
            copy = self.folder / f"test_{uuid.uuid4().hex[:10]}.sqlite3"
            shutil.copyfile(self.folder / SQLITE_TEMPLATE, copy)
            try:
                yield f"sqlite:///{copy}"
            finally:
                copy.unlink(missing_ok=True)
            return
        name = f"{self.name[:40]}_{uuid.uuid4().hex[:10]}"
        translated(self._create_from_template)(name)
        try:
            yield self._url(name)
        finally:
            translated(self._drop)(name)

    def _create_from_template(self, name: str) -> None:
        with self._admin() as admin:
            for attempt in range(1, CLONE_ATTEMPTS + 1):
                try:
                    admin.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
                    return
                except OperationalError as error:
                    in_use = getattr(error.orig, "pgcode", None) == OBJECT_IN_USE
                    if not in_use or attempt == CLONE_ATTEMPTS:
                        raise
                time.sleep(0.05)

    def _drop(self, name: str) -> None:
        with self._admin() as admin:
            _drop(admin, name)

    def _url(self, database: str) -> str:
        url = make_url(self.settings.database_url).set(database=database)
        return url.render_as_string(hide_password=False)

    def _file_url(self) -> str:
        return f"sqlite:///{self.folder / SQLITE_TEMPLATE}"

    @contextmanager
    def _admin(self) -> Iterator[Connection]:
        """An autocommit connection to the server's maintenance database."""
        engine = create_engine(self._url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


def _migrate(settings: Settings) -> None:
    with DataLayer(settings) as layer:
        layer.migrate()


def _at_head(settings: Settings) -> bool:
    with DataLayer(settings) as layer:
        try:
            return not layer.migration_status().pending
        except DataLayerError:
            return False


def _exists(admin: Connection, name: str) -> bool:
    query = text("SELECT 1 FROM pg_database WHERE datname = :name")
    return admin.execute(query, {"name": name}).first() is not None


def _drop(admin: Connection, name: str) -> None:
    admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
