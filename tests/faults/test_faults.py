"""Database faults, reproduced on a PostgreSQL server of the tests' own (restarted, crashed,
stopped): the layer recovers by itself where it can, and otherwise fails with
``BackendUnavailableError`` having committed nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dr_assistant_data import BackendUnavailableError, DataLayer
from dr_assistant_data.testing.servers.throwaway_postgres import ThrowawayPostgres
from tests.helpers.layers import patient_fields, settings_for

pytestmark = pytest.mark.servers

PASSWORD = "n0t-in-messages"


@pytest.fixture(scope="module")
def clinic_url(throwaway_postgres_server: ThrowawayPostgres) -> str:
    """A migrated database on the throwaway server."""
    admin = create_engine(throwaway_postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE clinic"))
    admin.dispose()
    url = make_url(throwaway_postgres_server.url).set(database="clinic")
    with DataLayer(settings_for(url.render_as_string(hide_password=False))) as layer:
        layer.migrate()
    return url.set(password=PASSWORD).render_as_string(hide_password=False)


@pytest.fixture
def layer(throwaway_postgres: ThrowawayPostgres, clinic_url: str) -> Iterator[DataLayer]:
    settings = settings_for(
        clinic_url,
        db_pool_size=2,
        db_connect_timeout=2,
        mongodb_uri="mongomock://localhost/faults",  # health probes PostgreSQL alone
        redis_url="memory://",
    )
    with DataLayer(settings) as layer:
        yield layer


def count_patients(layer: DataLayer, mrn: str) -> int:
    with layer.unit_of_work(actor="test") as uow:
        return uow.patients.count(filters={"mrn": mrn})


def test_after_a_server_restart_the_next_unit_of_work_succeeds_unaided(layer, throwaway_postgres):
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-BEFORE"))
    assert layer.engine.pool.checkedin() == 1  # a pooled connection the restart will kill

    throwaway_postgres.restart()

    with layer.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-AFTER"))
    assert count_patients(layer, "MRN-AFTER") == 1


def test_a_server_crash_mid_transaction_fails_that_unit_of_work_and_commits_nothing(
    layer, throwaway_postgres
):
    with pytest.raises(BackendUnavailableError) as raised, layer.unit_of_work(actor="t") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-HALFWAY"))
        uow.session.flush()  # the row is in the server's open transaction
        throwaway_postgres.stop("immediate")

    assert raised.value.backend == "postgres"
    throwaway_postgres.start()
    assert count_patients(layer, "MRN-HALFWAY") == 0


def test_while_the_server_is_down_units_of_work_fail_then_recover_when_it_returns(
    layer, throwaway_postgres
):
    count_patients(layer, "MRN-WARM")  # the pool holds a connection
    throwaway_postgres.stop()

    with pytest.raises(BackendUnavailableError):
        count_patients(layer, "MRN-DOWN")

    throwaway_postgres.start()
    assert count_patients(layer, "MRN-DOWN") == 0


def test_an_unreachable_server_names_host_and_port_but_not_the_password(layer, throwaway_postgres):
    throwaway_postgres.stop()

    with pytest.raises(BackendUnavailableError) as raised:
        count_patients(layer, "MRN-NOBODY")

    message = str(raised.value)
    assert "127.0.0.1" in message
    assert f"port {throwaway_postgres.port}" in message
    assert PASSWORD not in message


def test_health_reports_an_unreachable_server_with_its_port_and_never_raises(
    layer, throwaway_postgres
):
    throwaway_postgres.stop()

    report = layer.health()["postgres"]

    assert report["ok"] is False
    assert f"port {throwaway_postgres.port}" in report["detail"]
    assert PASSWORD not in repr(report)


class SourceBroke(Exception):
    """The caller's own failure inside a unit of work (a dictation stream that broke)."""


def test_a_caller_s_own_error_is_not_hidden_by_a_rollback_the_server_cannot_take(
    layer, throwaway_postgres
):
    with pytest.raises(SourceBroke), layer.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-NEVER"))
        uow.session.flush()  # the transaction holds a connection to the server
        throwaway_postgres.stop(mode="immediate")
        raise SourceBroke

    throwaway_postgres.start()
    assert count_patients(layer, "MRN-NEVER") == 0
