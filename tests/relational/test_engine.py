"""The engine: pooled, checked without a ping, parameters hidden, timeouts bounded, failures
mapped, reads sent without a transaction around them."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.pool import NullPool, QueuePool

from dr_assistant_data import BackendUnavailableError, DataLayer
from dr_assistant_data.testing import PatientFactory, bind_factories
from tests.helpers.layers import settings_for


def test_one_pooled_engine_per_layer_without_pre_ping_and_no_overflow(migrated_layer):
    engine = migrated_layer.engine
    assert engine is migrated_layer.engine
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool._pre_ping is False  # a closed connection is found without a round trip
    assert engine.pool.size() == migrated_layer.settings.db_pool_size
    assert engine.pool._max_overflow == 0
    assert engine.pool._recycle == migrated_layer.settings.db_pool_recycle
    assert engine.hide_parameters is True


@pytest.mark.parametrize(
    ("reject_unauthorized", "mode"), [(True, "verify-full"), (False, "require")]
)
def test_tls_and_connect_timeout_settings_reach_the_driver(database_url, reject_unauthorized, mode):
    layer = DataLayer(
        settings_for(
            database_url,
            db_ssl=True,
            db_ssl_reject_unauthorized=reject_unauthorized,
            db_connect_timeout=2.5,
        )
    )
    seen: dict[str, object] = {}

    def capture(_dialect, _record, _cargs, cparams):
        seen.update(cparams)
        raise RuntimeError("captured before connecting")

    event.listen(layer.engine, "do_connect", capture)
    try:
        with pytest.raises(RuntimeError, match="captured"):
            layer.engine.connect()
    finally:
        layer.close()
    assert seen["sslmode"] == mode
    assert seen["connect_timeout"] == 3
    assert seen["application_name"] == "dr-assistant-data"


def test_statement_timeout_is_set_on_every_connection(database_url):
    layer = DataLayer(settings_for(database_url, db_statement_timeout_ms=1234))
    try:
        with layer.engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "1234ms"
    finally:
        layer.close()


def test_a_query_past_the_statement_timeout_is_backend_unavailable(database_url):
    layer = DataLayer(settings_for(database_url, db_statement_timeout_ms=100))
    try:
        with (
            pytest.raises(BackendUnavailableError) as raised,
            layer.unit_of_work(actor="test") as uow,
        ):
            uow.session.execute(text("SELECT pg_sleep(2)"))
            uow.commit()
    finally:
        layer.close()
    assert raised.value.backend == "postgres"


def test_an_exhausted_pool_waits_its_timeout_then_raises_naming_the_pool_state(migrated_layer):
    layer = DataLayer(
        settings_for(migrated_layer.settings.database_url, db_pool_size=1, db_pool_timeout=0.3)
    )
    held = threading.Event()
    release = threading.Event()

    def hold_the_only_connection() -> None:
        with layer.unit_of_work(actor="test") as uow:
            uow.patients.count()
            held.set()
            release.wait(timeout=10)

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    try:
        assert held.wait(timeout=10)
        started = time.monotonic()
        with (
            pytest.raises(BackendUnavailableError) as raised,
            layer.unit_of_work(actor="test") as uow,
        ):
            uow.patients.count()
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=10)
        layer.close()
    assert raised.value.backend == "postgres"
    assert "size 1, checked out 1" in str(raised.value)
    assert 0.3 <= waited < 5  # the pool timeout, never a hang


def test_health_reports_each_store_and_never_raises(migrated_layer):
    report = migrated_layer.health()
    assert report["postgres"]["ok"] is True
    assert report["postgres"]["latency_ms"] >= 0
    assert set(report) == {"postgres", "mongodb", "redis"}
    down = DataLayer(
        settings_for(
            "postgresql+psycopg2://postgres@127.0.0.1:1/none",
            db_connect_timeout=1,
            redis_url="redis://127.0.0.1:1/0",
            mongodb_uri="mongodb://127.0.0.1:1/none",
            mongodb_timeout_ms=200,
        )
    )
    try:
        report = down.health()
    finally:
        down.close()
    assert [report[store]["ok"] for store in ("postgres", "mongodb", "redis")] == [False] * 3


def test_health_reports_the_pool_state(migrated_layer):
    embedded_others = {"mongodb_uri": "mongomock://localhost/pool", "redis_url": "memory://"}
    url = migrated_layer.settings.database_url
    with (
        DataLayer(settings_for(url, db_pool_size=3, **embedded_others)) as layer,
        layer.unit_of_work(actor="test") as uow,
    ):
        uow.patients.count()
        pool = layer.health()["postgres"]["pool"]

    assert pool["size"] == 3
    assert pool["checked_out"] == 1  # the open unit of work's; the probe's is back
    assert pool["overflow"] == 0


def test_sql_logging_never_shows_parameters(dl, caplog):
    dl.engine.echo = True
    try:
        with (
            caplog.at_level(logging.DEBUG),
            dl.unit_of_work(actor="test") as uow,
            bind_factories(uow),
        ):
            PatientFactory(first_name="Saraswati", phone="+919812345678", mrn="MRN-SECRET1")
            uow.patients.find_by_mrn("MRN-SECRET1")
    finally:
        dl.engine.echo = False
    logged = caplog.text
    assert "INSERT INTO patients" in logged
    for value in ("Saraswati", "9812345678", "MRN-SECRET1"):
        assert value not in logged


def test_close_releases_the_pool_and_is_idempotent(database_url):
    layer = DataLayer(settings_for(database_url))
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.count()
    pool = layer.engine.pool
    assert pool.checkedin() == 1
    layer.close()
    layer.close()
    assert pool.checkedin() == 0


def test_a_connection_killed_mid_transaction_fails_that_unit_of_work_only(dl):
    """The interrupted unit of work raises BackendUnavailableError and commits nothing; the
    next one gets a fresh connection (the dead one is discarded) without the caller's help."""
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        kept = PatientFactory()
    with pytest.raises(BackendUnavailableError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.patients.update(kept.id, blood_group="AB-")
        pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with dl.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        uow.patients.count()
    assert raised.value.backend == "postgres"
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(kept.id).blood_group != "AB-"
        assert uow.patients.get(kept.id).version == 1


def sent(dl: DataLayer) -> list[str]:
    """Every statement the layer's engine sends from now on (the test's own, too)."""
    statements: list[str] = []
    event.listen(dl.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def terminate(dl: DataLayer, pid: int) -> None:
    """End backend ``pid`` from a connection outside the layer's pool, and wait until the
    server has let it go."""
    engine = create_engine(dl.settings.database_url, poolclass=NullPool)
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        gone = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        while admin.execute(gone, {"pid": pid}).scalar():
            admin.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.01)
    engine.dispose()


def backend_pid(uow: object) -> int:
    return uow.session.scalar(select(func.pg_backend_pid()))  # type: ignore[attr-defined]


def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout_without_a_ping(dl):
    dl.engine.dispose()
    with dl.unit_of_work(actor="test") as uow:
        pid = backend_pid(uow)
    assert dl.engine.pool.checkedin() == 1
    terminate(dl, pid)
    statements = sent(dl)
    with dl.unit_of_work(actor="test") as uow:
        assert backend_pid(uow) != pid
    assert statements == ["SELECT pg_backend_pid() AS pg_backend_pid_1"]  # no ping, no retry


def test_a_read_beginning_its_unit_on_a_connection_that_dies_is_retried_once(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        kept = PatientFactory()
    killed: list[int] = []

    def kill_once(dbapi_connection, _record, _proxy):
        if not killed:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            killed.append(cursor.fetchone()[0])
            cursor.close()
            dbapi_connection.rollback()
            terminate(dl, killed[0])

    event.listen(dl.engine, "checkout", kill_once)  # after the layer's own check
    try:
        with dl.unit_of_work(actor="test") as uow:
            assert uow.patients.get(kept.id).id == kept.id
            assert backend_pid(uow) != killed[0]
    finally:
        event.remove(dl.engine, "checkout", kill_once)


def test_a_unit_that_only_reads_sends_no_begin_and_one_that_writes_commits_together(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        kept = PatientFactory()
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.get(kept.id)
        driver = uow.session.connection().connection.dbapi_connection
        assert driver.info.transaction_status == TRANSACTION_STATUS_IDLE  # no BEGIN sent
        uow.patients.update(kept.id, first_name="Changed")
        uow.session.flush()
        assert driver.info.transaction_status == TRANSACTION_STATUS_INTRANS
    with pytest.raises(RuntimeError), dl.unit_of_work(actor="test") as uow:
        uow.patients.get(kept.id)
        uow.patients.update(kept.id, first_name="Undone")
        uow.session.flush()
        raise RuntimeError("the caller's own failure")
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(kept.id).first_name == "Changed"
        assert [e.action for e in uow.audit.for_entity("patients", kept.id)] == [
            "create",
            "update",
        ]
    with dl.engine.connect() as connection:  # the pool hands out transactional connections
        assert connection.connection.dbapi_connection.autocommit is False
