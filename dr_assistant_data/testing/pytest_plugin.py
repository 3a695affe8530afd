"""pytest fixtures for applications built on the layer (registered as ``dr_assistant_data``).

    def test_a_new_patient_is_found_by_mrn(uow):
        PatientFactory(mrn="MRN-1")            # factories are bound to ``uow``
        assert uow.patients.find_by_mrn("MRN-1")   # rolled back when the test ends

    def test_the_schedule_costs_two_queries(data_layer, assert_max_queries):
        with data_layer.unit_of_work(actor="test") as uow, assert_max_queries(2):
            uow.appointments.schedule_for(doctor_id, day)

The plugin is inert until a test asks for one of its fixtures. The relational schema is
migrated once per run (per ``pytest-xdist`` worker) into a template database of the run's
own; each test gets its own clone of it (``CREATE DATABASE ... TEMPLATE``; a file copy on
SQLite), its own in-process cache (``memory://``) and its own in-memory document store, so
tests never see each other's rows, cached values or notes, and commits are real. Runs on
one server at once (two developers, two CI jobs) never meet (``databases.py``).

Options: ``--dr-database-url`` (the server and base name of the test databases; default
``TEST_DATABASE_URL``, else ``DATABASE_URL``, else the local default; ``sqlite://`` for the
embedded back end) and ``--dr-reuse-db`` (keep the template for the next run while its
revision is the newest). A server that cannot be reached errors the tests that need it;
nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy.engine import make_url

from ..layer import DataLayer
from ..settings import DEFAULT_DATABASE_URL, Settings
from ..unit_of_work import UnitOfWork
from .databases import TemplateDatabase
from .factories import bind_factories
from .queries import QueryLog, at_most_queries

TEST_ACTOR = "test"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dr_assistant_data", "dr-assistant-data test databases")
    group.addoption(
        "--dr-database-url",
        help="server and base name of the test databases (sqlite:// for the embedded one)",
    )
    group.addoption(
        "--dr-reuse-db",
        action="store_true",
        help="keep the migrated template database for the next run",
    )


@pytest.fixture(scope="session")
def data_layer_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TemplateDatabase]:
    """The run's (or this xdist worker's) migrated template database; with
    ``--dr-reuse-db``, the one kept for every run on the server."""
    url = _server_url(request.config)
    reuse = bool(request.config.getoption("dr_reuse_db"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = make_url(url).database or "dr_assistant"
    run = "" if reuse else f"_{uuid.uuid4().hex[:8]}"
    name = f"{base[:30]}_test_template{run}_{worker[:8]}"
    settings = Settings(
        database_url=url,
        mongodb_uri="mongomock://localhost/template",
        redis_url="memory://",
        environment="test",
    )
    template = TemplateDatabase(settings, name, tmp_path_factory.mktemp("dr_assistant_data"))
    with template.prepared(reuse=reuse):
        yield template


@pytest.fixture
def data_layer_database_url(data_layer_template: TemplateDatabase) -> Iterator[str]:
    """The URL of this test's own migrated database, removed after the test."""
    with data_layer_template.clone() as url:
        yield url


@pytest.fixture
def data_layer_settings(data_layer_database_url: str) -> Settings:
    """This test's settings; override it to point the cache at a real Redis (give it a key
    prefix of its own) or to set other fields."""
    own = uuid.uuid4().hex[:10]
    return Settings(
        database_url=data_layer_database_url,
        mongodb_uri=f"mongomock://localhost/test_{own}",
        redis_url="memory://",
        cache_prefix=f"dr_assistant_test:{own}:",
        environment="test",
    )


@pytest.fixture
def data_layer(data_layer_settings: Settings) -> Iterator[DataLayer]:
    """A ``DataLayer`` on this test's own stores, migrated, closed after the test."""
    with DataLayer(data_layer_settings) as layer:
        layer.migrate()  # the schema is the template's already: this readies the documents
        yield layer


class TestEnded(Exception):
    """Handed to the ``uow`` fixture's unit of work to roll it back when the test ends."""


@pytest.fixture
def uow(data_layer: DataLayer) -> Iterator[UnitOfWork]:
    """A unit of work with the factories bound to it, rolled back when the test ends
    (whatever the test left it in). ``uow.commit()`` makes its writes visible to other
    units of work (``data_layer.unit_of_work``); the database is the test's own either way."""
    unit = data_layer.unit_of_work(actor=TEST_ACTOR)
    unit.__enter__()
    try:
        with bind_factories(unit):
            yield unit
    finally:
        unit.__exit__(TestEnded, TestEnded("the test ended"), None)


@pytest.fixture
def assert_max_queries(
    data_layer: DataLayer,
) -> Callable[[int], AbstractContextManager[QueryLog]]:
    """``with assert_max_queries(n):`` fails the test when the block sends more than ``n``
    statements to the test's database, listing them (never their values): the statements
    the engine executes, not the SQL a unit of work sends with its COMMIT or ahead of its
    next statement (``relational/driver/round_trips.py``: audit events, the outbox row, a
    create's INSERT no other row could refuse)."""
    return lambda limit: at_most_queries(data_layer.engine, limit)


def _server_url(config: pytest.Config) -> str:
    return str(
        config.getoption("dr_database_url")
        or os.environ.get("TEST_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )
