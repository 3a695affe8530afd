"""The test run's PostgreSQL database server, settings and layers, and the rows tests start
from: what the fixtures in ``tests/conftest.py`` are built on, for tests that need their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from dr_assistant_data import DataLayer, Settings

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
"""The shared Redis of the tests; with ``ADMIN_URL``, the only server addresses they use."""


@contextmanager
def scratch_database(prefix: str = "dr_assistant_test") -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.exit(
            f"PostgreSQL is unreachable at {make_url(ADMIN_URL).render_as_string()}: "
            f"{str(error.orig).strip().splitlines()[0]}. "
            "Start it (see docs/how-to/develop.md) and rerun.",
            returncode=3,
        )
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def patient_fields(**overrides: object) -> dict[str, object]:
    """A valid patient for ``uow.patients.create``, with ``overrides`` applied."""
    return {
        "first_name": "Ananya",
        "last_name": "Rao",
        "date_of_birth": date(1992, 3, 14),
        "gender": "female",
        **overrides,
    }


CACHE_PREFIX = f"dr_assistant_test:{uuid.uuid4().hex[:10]}:"
"""This run's Redis keys (``REDIS_URL``'s Redis is shared: never FLUSHDB, delete only these)."""


def settings_for(url: str, **overrides: object) -> Settings:
    """Test settings: the given database, the tests' Redis, and an in-memory document store
    of its own."""
    overrides.setdefault("redis_url", REDIS_URL)
    overrides.setdefault("mongodb_uri", f"mongomock://localhost/test_{uuid.uuid4().hex[:10]}")
    overrides.setdefault("cache_prefix", CACHE_PREFIX)
    return Settings(database_url=url, environment="test", **overrides)  # type: ignore[arg-type]


@contextmanager
def layer_with(dl: DataLayer, **overrides: object) -> Iterator[DataLayer]:
    """A layer on the test database whose other settings are ``overrides``."""
    with DataLayer(settings_for(dl.settings.database_url, **overrides)) as layer:
        yield layer


@dataclass(frozen=True)
class Visit:
    """The relational rows a clinical note refers to, committed."""

    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    doctor_id: uuid.UUID

    @property
    def ids(self) -> dict[str, uuid.UUID]:
        return {
            "encounter_id": self.encounter_id,
            "patient_id": self.patient_id,
            "doctor_id": self.doctor_id,
        }


def new_visit(layer: DataLayer) -> Visit:
    """An encounter, with its patient and doctor, committed through ``layer``."""
    from dr_assistant_data.testing import EncounterFactory, bind_factories

    with layer.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    return Visit(encounter.id, encounter.patient_id, encounter.doctor_id)
