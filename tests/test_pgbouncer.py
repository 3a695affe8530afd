"""Behind PgBouncer in transaction mode (``DB_TRANSACTION_POOLER``): the layer connects,
keeps its statement timeout per transaction without leaking it to the shared server
connection, streams from server-side cursors, and migrates over ``DATABASE_DIRECT_URL``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg2
import pytest
from conftest import patient_fields, scratch_database, settings_for
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dr_assistant_data import BackendUnavailableError, DataLayer
from dr_assistant_data.migrations import relational as relational_migrations

STATEMENT_TIMEOUT_MS = 300


def pooled_layer(pgbouncer, direct_url: str) -> DataLayer:
    return DataLayer(
        settings_for(
            pgbouncer.url(direct_url),
            db_transaction_pooler=True,
            database_direct_url=direct_url,
            db_statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        )
    )


@pytest.fixture
def pooled(pgbouncer, dl: DataLayer) -> Iterator[DataLayer]:
    """A layer on the test database through PgBouncer."""
    with pooled_layer(pgbouncer, dl.settings.database_url) as layer:
        yield layer


def test_a_unit_of_work_commits_through_pgbouncer_in_transaction_mode(pooled):
    with pooled.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields(mrn="MRN-POOLED-1"))

    with pooled.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id).mrn == "MRN-POOLED-1"


def test_the_statement_timeout_holds_in_every_transaction_behind_pgbouncer(pooled):
    for _ in range(2):  # the second transaction may run on the same server connection
        with (
            pytest.raises(BackendUnavailableError, match="statement timeout"),
            pooled.unit_of_work(actor="test") as uow,
        ):
            uow.session.execute(text("SELECT pg_sleep(2)"))


def test_the_statement_timeout_never_outlives_its_transaction_on_the_server_connection(
    pgbouncer, pooled
):
    with pooled.unit_of_work(actor="test") as uow:
        uow.patients.count()
    url = make_url(pooled.settings.database_url)
    # one server connection per database and user: this client gets the one just used
    connection = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)
    finally:
        connection.close()


def test_rows_stream_from_a_server_side_cursor_behind_pgbouncer(pooled):
    with pooled.unit_of_work(actor="test") as uow:
        for n in range(3):
            uow.patients.create(**patient_fields(mrn=f"MRN-STREAM-{n}"))

    with pooled.unit_of_work(actor="test") as uow:
        assert len(list(uow.patients.iterate(batch_size=1))) == 3


def test_migrate_behind_pgbouncer_runs_over_the_direct_url(pgbouncer, monkeypatch):
    ports = []
    upgrade = relational_migrations.upgrade

    def spied(engine, **options):
        ports.append(engine.url.port)  # its session-level lock needs the server itself
        return upgrade(engine, **options)

    monkeypatch.setattr(relational_migrations, "upgrade", spied)
    with scratch_database() as direct_url, pooled_layer(pgbouncer, direct_url) as layer:
        layer.migrate()

        assert layer.migration_status().pending == ()
    assert ports == [make_url(direct_url).port]


def test_one_sealer_leads_behind_pgbouncer_its_lock_held_on_the_server_itself(pgbouncer, dl):
    """The sealer's role is a session advisory lock: through a transaction pooler it would
    stay on a server connection the pooler hands to the next client (one server connection
    per database here), which would then lead too."""
    with (
        pooled_layer(pgbouncer, dl.settings.database_url) as first,
        pooled_layer(pgbouncer, dl.settings.database_url) as second,
    ):
        with first.unit_of_work(actor="test") as uow:
            uow.patients.create(**patient_fields())
        leader = first.audit_sealer()
        try:
            deadline = time.monotonic() + 30
            while leader.run_once() is None:  # the horizon may lag behind another client
                assert time.monotonic() < deadline, "nothing was sealed"
            with second.unit_of_work(actor="test") as uow:
                uow.patients.create(**patient_fields())
            assert second.seal_audit() is None  # the leader still holds the role
        finally:
            leader.resign()
