"""Read replicas: a real primary and a streaming replica of it (``pg_basebackup -R``).

A statement ran on the replica when ``pg_is_in_recovery()`` answers true in its session.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer, ValidationError
from dr_assistant_data.relational.connection import fork_safety
from dr_assistant_data.testing.servers.throwaway_postgres import ThrowawayPostgres
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import patient_fields, settings_for

pytestmark = pytest.mark.servers

CLINIC = "clinic"


def clinic_url(server: ThrowawayPostgres) -> str:
    return make_url(server.url).set(database=CLINIC).render_as_string(hide_password=False)


def scalar(url: str, sql: str) -> object:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            result = connection.execute(text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def caught_up(primary: ThrowawayPostgres, replica: ThrowawayPostgres) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    target = scalar(primary.url, "SELECT pg_current_wal_lsn()")
    for _ in range(200):
        if scalar(replica.url, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


@pytest.fixture(scope="module")
def servers(primary_and_replica):
    primary, replica = primary_and_replica
    scalar(primary.url, f"CREATE DATABASE {CLINIC}")
    with DataLayer(settings_for(clinic_url(primary))) as layer:
        layer.migrate()
    caught_up(primary, replica)
    return primary, replica


@contextlib.contextmanager
def replay_paused(replica: ThrowawayPostgres):
    scalar(replica.url, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        scalar(replica.url, "SELECT pg_wal_replay_resume()")


@pytest.fixture
def make_layer(servers):
    primary, replica = servers
    layers = []

    def make(**overrides):
        overrides.setdefault("db_replica_check_interval", 0.1)
        overrides.setdefault("db_replica_max_lag", 60.0)
        overrides.setdefault("db_replica_sticky", 0.0)
        layer = DataLayer(
            settings_for(
                clinic_url(primary), database_replica_urls=(clinic_url(replica),), **overrides
            )
        )
        layers.append(layer)
        return layer

    yield make
    for layer in layers:
        layer.close()
    if not replica.running:
        replica.start()
    caught_up(primary, replica)


def on_replica(uow) -> bool:
    return bool(uow.session.scalar(text("SELECT pg_is_in_recovery()")))


def test_a_read_only_unit_of_work_reads_from_the_replica(make_layer):
    with make_layer().unit_of_work(actor="reader", read_only=True) as uow:
        assert on_replica(uow)


def test_a_unit_of_work_that_may_write_runs_on_the_primary(make_layer):
    with make_layer().unit_of_work(actor="clerk") as uow:
        assert not on_replica(uow)


def test_repository_reads_of_a_read_only_unit_of_work_find_replicated_rows(make_layer, servers):
    layer = make_layer()
    patient = new_patient(layer)
    caught_up(*servers)

    with layer.unit_of_work(actor="reader", read_only=True) as uow:
        assert uow.patients.get(patient.id).first_name == "Ananya"
        assert on_replica(uow)


def test_a_read_only_unit_of_work_that_writes_commits_on_the_primary_and_reads_there_after(
    make_layer,
):
    layer = make_layer()
    with layer.unit_of_work(actor="clerk", read_only=True) as uow:
        assert on_replica(uow)
        patient = uow.patients.create(**patient_fields(first_name="Meera"))
        uow.session.flush()
        assert not on_replica(uow)
        assert uow.patients.get(patient.id) is patient

    with layer.unit_of_work(actor="clerk") as uow:
        assert uow.patients.get(patient.id).first_name == "Meera"


def test_a_bulk_create_in_a_read_only_unit_of_work_is_written_on_the_primary(make_layer):
    layer = make_layer()
    with layer.unit_of_work(actor="importer", read_only=True) as uow:
        assert on_replica(uow)
        result = uow.patients.create_many([patient_fields(first_name=f"P{n}") for n in range(3)])

    with layer.unit_of_work(actor="importer") as uow:
        assert len(uow.patients.get_many(result.created)) == 3


def test_use_primary_sends_the_rest_of_a_read_only_unit_of_work_to_the_primary(make_layer):
    with make_layer().unit_of_work(actor="reader", read_only=True) as uow:
        uow.use_primary()
        assert not on_replica(uow)


def read_after_a_write(layer, replica, reader: str) -> tuple[bool, bool]:
    """Dr Asha writes a patient while the replica does not replay; then ``reader`` looks
    for it read-only: (found, read on the replica)."""
    with replay_paused(replica):
        with layer.unit_of_work(actor="dr-asha") as uow:
            patient = uow.patients.create(**patient_fields(first_name="Ravi"))
        with layer.unit_of_work(actor=reader, read_only=True) as uow:
            return uow.patients.get(patient.id) is not None, on_replica(uow)


def test_an_actor_reads_its_own_write_within_the_sticky_window(make_layer, servers):
    layer = make_layer(db_replica_sticky=30.0)

    assert read_after_a_write(layer, servers[1], "dr-asha") == (True, False)


def test_another_actor_still_reads_from_the_replica_after_a_write(make_layer, servers):
    layer = make_layer(db_replica_sticky=30.0)

    # not replayed yet: the replica's lagging view
    assert read_after_a_write(layer, servers[1], "dr-vikram") == (False, True)


def test_a_unit_of_work_that_wrote_reports_the_primarys_wal_position_after_commit(make_layer):
    with make_layer().unit_of_work(actor="clerk") as uow:
        uow.patients.create(**patient_fields())
    assert uow.commit_lsn is not None

    with make_layer().unit_of_work(actor="reader", read_only=True) as reader:
        reader.patients.count()
    assert reader.commit_lsn is None


def test_a_later_commit_that_wrote_nothing_keeps_the_last_writes_position(make_layer):
    with make_layer().unit_of_work(actor="clerk") as uow:
        uow.patients.create(**patient_fields())
        uow.commit()
        after_write = uow.commit_lsn
        uow.patients.count()
    assert after_write is not None
    assert uow.commit_lsn == after_write


def test_a_read_after_an_lsn_the_replica_has_not_replayed_goes_to_the_primary(make_layer, servers):
    writer, other_process = make_layer(), make_layer()
    with replay_paused(servers[1]):
        with writer.unit_of_work(actor="dr-asha") as uow:
            patient = uow.patients.create(**patient_fields())

        with other_process.unit_of_work(read_only=True, after_lsn=uow.commit_lsn) as reader:
            assert reader.patients.get(patient.id) is not None
            assert not on_replica(reader)


def test_a_read_after_an_lsn_the_replica_has_replayed_goes_to_the_replica(make_layer, servers):
    writer, other_process = make_layer(), make_layer()
    with writer.unit_of_work(actor="dr-asha") as uow:
        patient = uow.patients.create(**patient_fields())
    caught_up(*servers)

    with other_process.unit_of_work(read_only=True, after_lsn=uow.commit_lsn) as reader:
        assert reader.patients.get(patient.id) is not None
        assert on_replica(reader)


def test_an_after_lsn_that_is_not_a_wal_position_is_refused(make_layer):
    with pytest.raises(ValidationError) as refused:
        make_layer().unit_of_work(read_only=True, after_lsn="0/16B3748; DROP")
    assert refused.value.field == "after_lsn"


def test_an_actor_returns_to_the_replica_when_the_sticky_window_ends(make_layer):
    layer = make_layer(db_replica_sticky=0.3)
    new_patient(layer)
    time.sleep(0.4)

    with layer.unit_of_work(actor="test", read_only=True) as uow:
        assert on_replica(uow)


def test_a_replica_lagging_past_the_threshold_is_skipped(make_layer, servers):
    layer = make_layer(db_replica_max_lag=0.5)
    _primary, replica = servers
    with layer.unit_of_work(actor="reader", read_only=True) as uow:
        assert on_replica(uow)
    with replay_paused(replica):
        new_patient(layer)  # the replica receives it and does not replay it
        time.sleep(0.7)

        with layer.unit_of_work(actor="reader", read_only=True) as uow:
            assert not on_replica(uow)
        assert layer.health()["postgres"]["replicas"][0]["usable"] is False


def test_reads_go_to_the_primary_without_error_when_the_replica_is_down(make_layer, servers):
    layer = make_layer()
    patient = new_patient(layer)
    _primary, replica = servers
    replica.stop("immediate")

    with layer.unit_of_work(actor="reader", read_only=True) as uow:
        assert uow.patients.get(patient.id) is not None
        assert not on_replica(uow)


def test_health_reports_a_replica_down_without_failing_the_database(make_layer, servers):
    layer = make_layer()
    servers[1].stop("immediate")

    report = layer.health()["postgres"]

    assert report["ok"] is True
    assert report["replicas"][0]["ok"] is False


def test_health_reports_each_replica_and_its_lag(make_layer, servers):
    (replica,) = make_layer().health()["postgres"]["replicas"]

    assert replica["ok"] is True
    assert replica["usable"] is True
    assert replica["lag_s"] is not None
    assert replica["lag_s"] < 60
    assert str(servers[1].port) in replica["url"]


def test_a_read_from_a_lagging_replica_is_never_cached(make_layer, servers):
    layer = make_layer()
    patient = new_patient(layer)
    caught_up(*servers)
    with replay_paused(servers[1]):
        with layer.unit_of_work(actor="writer") as uow:
            uow.patients.update(patient.id, last_name="Sharma")
        with layer.unit_of_work(actor="reader", read_only=True) as uow:
            assert uow.patients.get(patient.id).last_name == "Rao"  # the replica's view

        assert read_patient(layer, patient.id).last_name == "Sharma"


def test_migrations_run_on_the_primary(make_layer):
    layer = make_layer()

    layer.migrate()  # a replica refuses DDL: this would fail if it were routed there

    assert layer.migration_status().pending == ()


def test_replica_engines_are_fork_safe_and_closed_with_the_layer(make_layer):
    layer = make_layer()
    with layer.unit_of_work(actor="reader", read_only=True) as uow:
        replica_engine = uow.session.get_bind(clause=text("SELECT 1"))
        assert on_replica(uow)
    assert replica_engine in fork_safety._owners
    assert replica_engine.pool.checkedin() == 1

    layer.close()

    assert replica_engine.pool.checkedin() == 0


def test_an_audited_read_on_the_replica_records_its_audit_event_on_the_primary(make_layer, servers):
    layer = make_layer(audit_reads=True)
    patient = new_patient(layer)
    caught_up(*servers)

    with layer.unit_of_work(actor="dr-asha", read_only=True) as uow:
        uow.patients.get(patient.id)
        assert on_replica(uow)

    with layer.unit_of_work(actor="auditor") as uow:
        actions = [event.action for event in uow.audit.for_entity("patients", patient.id)]
    assert "read" in actions


def test_an_audited_read_on_a_lagging_replica_links_its_event_to_the_primarys_chain(
    make_layer, servers
):
    layer = make_layer(audit_reads=True)
    patient = new_patient(layer)
    caught_up(*servers)

    with replay_paused(servers[1]):
        new_patient(layer)  # its audit event is on the primary, not yet on the replica
        with layer.unit_of_work(actor="dr-asha", read_only=True) as uow:
            uow.patients.get(patient.id)
            assert on_replica(uow)

    report = layer.verify_audit_chain()
    assert report.ok, report
    with layer.unit_of_work(actor="auditor") as uow:
        actions = [event.action for event in uow.audit.for_entity("patients", patient.id)]
    assert "read" in actions


def test_committing_an_audited_read_leaves_the_unit_of_works_later_reads_on_the_replica(
    make_layer, servers
):
    layer = make_layer(audit_reads=True)
    first, second = new_patient(layer), new_patient(layer)
    caught_up(*servers)
    with layer.unit_of_work(actor="dr-asha", read_only=True) as uow:
        uow.patients.get(first.id)
        uow.commit()  # its read event goes to the primary
        uow.patients.get(second.id)
        assert on_replica(uow)
    with layer.unit_of_work(actor="auditor") as uow:
        assert [e.action for e in uow.audit.for_entity("patients", first.id)][-1] == "read"
