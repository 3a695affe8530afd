"""Specifications of the relational schema's migrations.

Every test gets its own fresh PostgreSQL database (``scratch_database``) or SQLite file
under ``tmp_path``, so the revisions are exercised from an empty schema every time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from dr_assistant_data import DataLayer, DataLayerError
from dr_assistant_data.errors import ConflictError
from dr_assistant_data.migrations import relational as relational_migrations
from dr_assistant_data.migrations.relational import MIGRATION_LOCK
from dr_assistant_data.relational.base import Base
from tests.helpers.layers import scratch_database, settings_for

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)
CONCURRENT_DEPLOYS = 4


@contextmanager
def layer_for(url: str) -> Iterator[DataLayer]:
    layer = DataLayer(settings_for(url))
    try:
        yield layer
    finally:
        layer.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_database("dr_assistant_migrations") as url:
        yield url


@pytest.fixture
def pg_layer(pg_url: str) -> Iterator[DataLayer]:
    with layer_for(pg_url) as layer:
        yield layer


@pytest.fixture
def sqlite_layer(tmp_path: Path) -> Iterator[DataLayer]:
    with layer_for(f"sqlite:///{tmp_path / 'embedded.db'}") as layer:
        yield layer


def head_revision(layer: DataLayer) -> str:
    head = layer.migration_status().head
    assert head is not None
    return head


def table_names(layer: DataLayer) -> set[str]:
    return set(inspect(layer.engine).get_table_names())


def version_rows(layer: DataLayer) -> list[str]:
    with layer.engine.connect() as connection:
        return list(connection.scalars(text("SELECT version_num FROM alembic_version")))


def run_alembic(*arguments: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *arguments],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- PostgreSQL through DataLayer -------------------------------------------------------------


def test_migrate_brings_an_empty_postgres_database_to_head(pg_layer):
    before = pg_layer.migration_status()
    assert before.current == ()
    assert before.pending[0] == "0001"
    assert before.pending[-1] == before.head

    pg_layer.migrate()

    after = pg_layer.migration_status()
    assert after.pending == ()
    assert after.current == (after.head,)
    assert table_names(pg_layer) == MODEL_TABLES | {"alembic_version"}


def test_postgres_schema_survives_upgrade_downgrade_upgrade_without_drift(pg_layer):
    pg_layer.migrate()

    pg_layer.downgrade("base")
    assert table_names(pg_layer) & MODEL_TABLES == set()
    assert pg_layer.migration_status().current == ()

    pg_layer.migrate()
    assert table_names(pg_layer) >= MODEL_TABLES
    assert pg_layer.migration_status().current == (head_revision(pg_layer),)
    assert pg_layer.schema_drift() == []


def test_migrate_is_idempotent(pg_layer):
    pg_layer.migrate()
    pg_layer.migrate()

    assert version_rows(pg_layer) == [head_revision(pg_layer)]
    assert pg_layer.migration_status().pending == ()
    assert pg_layer.schema_drift() == []


def test_parallel_migrate_commands_all_succeed_and_apply_the_schema_once(pg_url):
    """The deploys are held at the advisory lock until all of them wait on it, so they
    really race; released together, each must find the work done or do it alone."""
    with layer_for(pg_url) as holder, holder.engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        deploys = [
            subprocess.Popen(
                [sys.executable, "-m", "dr_assistant_data.cli.main", "migrate"],
                env={
                    **os.environ,
                    "DATABASE_URL": pg_url,
                    "MONGODB_URI": "mongomock://localhost/dr_assistant_deploy",
                    "REDIS_URL": "memory://",
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(CONCURRENT_DEPLOYS)
        ]
        wait_for_lock_waiters(holder, CONCURRENT_DEPLOYS)
        lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        outcomes = [deploy.communicate(timeout=120) for deploy in deploys]

    assert [deploy.returncode for deploy in deploys] == [0] * CONCURRENT_DEPLOYS, outcomes
    with layer_for(pg_url) as layer:
        assert version_rows(layer) == [head_revision(layer)]
        assert layer.schema_drift() == []


def wait_for_lock_waiters(layer: DataLayer, count: int) -> None:
    deadline = time.monotonic() + 60
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    while time.monotonic() < deadline:
        with layer.engine.connect() as connection:
            if connection.scalar(query) == count:
                return
        time.sleep(0.1)
    raise AssertionError(f"{count} deploys never all waited on the migration lock")


FAILING_REVISION = """
from alembic import op
import sqlalchemy as sa

revision = "0002_breaks"
down_revision = "{head}"


def upgrade():
    op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("ALTER TABLE no_such_table ADD COLUMN x integer")


def downgrade():
    op.drop_table("scratch")
"""


@pytest.fixture
def failing_revision(tmp_path, monkeypatch) -> str:
    """The real revisions plus one that fails half-way, as the layer's script location."""
    scripts = tmp_path / "alembic"
    shutil.copytree(relational_migrations.script_location(), scripts)
    head = ScriptDirectory.from_config(relational_migrations.alembic_config()).get_current_head()
    (scripts / "versions" / "0002_breaks.py").write_text(FAILING_REVISION.format(head=head))
    monkeypatch.setattr(relational_migrations, "script_location", lambda: str(scripts))
    return "0002_breaks"


def test_a_failing_revision_rolls_back_alone_and_is_named(pg_layer, failing_revision):
    """Each revision is a transaction of its own (a table lock one takes is not held while
    the next ones run): the revisions before the failing one stay applied, none of it does."""
    with pytest.raises(DataLayerError) as raised:
        pg_layer.migrate()

    assert f"revision {failing_revision} failed" in str(raised.value)
    assert "scratch" not in table_names(pg_layer)
    assert table_names(pg_layer) >= MODEL_TABLES
    status = pg_layer.migration_status()
    assert status.current == (
        ScriptDirectory.from_config(relational_migrations.alembic_config())
        .get_revision(failing_revision)
        .down_revision,
    )
    assert status.pending == (failing_revision,)


def test_schema_drift_reports_a_column_dropped_behind_the_models_back(pg_layer):
    pg_layer.migrate()
    assert pg_layer.schema_drift() == []

    with pg_layer.engine.begin() as connection:
        connection.execute(text("ALTER TABLE patients DROP COLUMN blood_group"))

    drift = pg_layer.schema_drift()
    assert drift != []
    assert "blood_group" in repr(drift)


# --- PostgreSQL: what the design promises of the schema --------------------------------------


def test_every_postgres_timestamp_column_is_timestamp_with_time_zone(pg_layer):
    pg_layer.migrate()
    with pg_layer.engine.connect() as connection:
        columns = connection.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type LIKE 'timestamp%'"
            )
        ).all()

    assert columns, "the schema has timestamp columns"
    assert {table for table, _, _ in columns} == MODEL_TABLES
    naive = [
        (table, column) for table, column, kind in columns if kind != "timestamp with time zone"
    ]
    assert naive == []


def test_postgres_has_the_btree_gist_extension(pg_layer):
    pg_layer.migrate()
    with pg_layer.engine.connect() as connection:
        installed = connection.scalar(
            text("SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist'")
        )
    assert installed == 1


def test_postgres_has_the_appointment_overlap_exclusion_constraint(pg_layer):
    pg_layer.migrate()
    with pg_layer.engine.connect() as connection:
        table = connection.scalar(
            text(
                "SELECT conrelid::regclass::text FROM pg_constraint "
                "WHERE conname = 'ex_appointments_doctor_overlap' AND contype = 'x'"
            )
        )
    assert table == "appointments"


@pytest.mark.parametrize("index", ["uq_patients_mrn", "uq_patients_abha_id_index"])
def test_postgres_patient_identifiers_are_unique_only_when_present(pg_layer, index):
    pg_layer.migrate()
    with pg_layer.engine.connect() as connection:
        definition = connection.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": index}
        )
    assert definition is not None
    assert "UNIQUE" in definition
    assert "WHERE" in definition
    assert "IS NOT NULL" in definition


# --- Alembic's own command line -----------------------------------------------------------------


def test_alembic_command_line_upgrades_downgrades_and_checks_postgres(pg_url):
    for arguments in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"]):
        result = run_alembic(*arguments, database_url=pg_url)
        assert result.returncode == 0, f"alembic {' '.join(arguments)}:\n{result.stderr}"

    check = run_alembic("check", database_url=pg_url)
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr

    with layer_for(pg_url) as layer:
        assert version_rows(layer) == [head_revision(layer)]


# --- Embedded SQLite ----------------------------------------------------------------------------


def test_sqlite_schema_survives_upgrade_downgrade_upgrade_without_drift(sqlite_layer):
    sqlite_layer.migrate()
    assert table_names(sqlite_layer) == MODEL_TABLES | {"alembic_version"}
    assert sqlite_layer.migration_status().pending == ()

    sqlite_layer.downgrade("base")
    assert table_names(sqlite_layer) & MODEL_TABLES == set()

    sqlite_layer.migrate()
    assert version_rows(sqlite_layer) == [head_revision(sqlite_layer)]
    assert sqlite_layer.schema_drift() == []


def test_sqlite_triggers_refuse_overlapping_live_appointments_but_not_cancelled_ones(
    sqlite_layer,
):
    sqlite_layer.migrate()
    start = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    slot = {"start_time": start, "end_time": start + timedelta(minutes=30)}
    with sqlite_layer.unit_of_work(actor="test") as uow:
        doctor = uow.users.create(
            username="asha",
            email="asha@clinic.in",
            full_name="Dr Asha Rao",
            role="doctor",
            password_hash="x",
        )
        patient = uow.patients.create(
            first_name="Ravi", last_name="Kumar", date_of_birth=date(1980, 5, 17), gender="male"
        )
        uow.appointments.create(doctor_id=doctor.id, patient_id=patient.id, **slot)
        parties = {"doctor_id": doctor.id, "patient_id": patient.id}

    overlapping = {
        "start_time": start + timedelta(minutes=15),
        "end_time": start + timedelta(minutes=45),
    }
    with pytest.raises(ConflictError), sqlite_layer.unit_of_work(actor="test") as uow:
        uow.appointments.create(**parties, **overlapping)

    with sqlite_layer.unit_of_work(actor="test") as uow:
        uow.appointments.create(**parties, **slot, status="cancelled")

    with sqlite_layer.unit_of_work(actor="test") as uow:
        statuses = sorted(a.status for a in uow.appointments.list(filters=parties))
    assert statuses == ["cancelled", "scheduled"]


def test_an_unknown_revision_is_a_data_layer_error(tmp_path):
    from dr_assistant_data import DataLayerError

    dl = DataLayer(settings_for(f"sqlite:///{tmp_path / 'clinic.sqlite3'}"))
    try:
        dl.migrate()
        with pytest.raises(DataLayerError, match="migration"):
            dl.downgrade("no-such-revision")
    finally:
        dl.close()
