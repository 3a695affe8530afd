"""Health tells the truth: the schema's revision and pending migrations, where each store
is (never its credentials), and a listener that logs an outage once, not every attempt."""

from __future__ import annotations

import time

import pytest

from dr_assistant_data import DataLayer
from tests.helpers.layers import scratch_database, settings_for

OUTBOX_LOGGER = "dr_assistant_data.cache.outbox"


def test_health_reports_the_revision_and_no_pending_migration_on_a_migrated_database(
    migrated_layer,
):
    postgres = migrated_layer.health()["postgres"]

    assert postgres["ok"] is True
    assert postgres["revision"] == postgres["head"] == migrated_layer.migration_status().head
    assert postgres["pending"] == []


def test_health_is_not_ok_while_revisions_are_pending():
    with scratch_database("dr_assistant_health") as url, DataLayer(settings_for(url)) as layer:
        postgres = layer.health()["postgres"]
        pending = list(layer.migration_status().pending)

    assert (postgres["ok"], postgres["revision"]) == (False, None)
    assert postgres["pending"] == pending
    assert "run `dr-assistant-data migrate`" in postgres["detail"]


def test_each_store_is_named_by_its_address_without_credentials_when_down():
    down = settings_for(
        "postgresql+psycopg2://clinic:s3cret-pg@127.0.0.1:1/clinic",
        db_connect_timeout=1,
        mongodb_uri="mongodb://clinic:s3cret-mongo@127.0.0.1:2/clinic",
        mongodb_timeout_ms=200,
        redis_url="redis://:s3cret-redis@127.0.0.1:3/4",
    )
    with DataLayer(down) as layer:
        report = layer.health()

    addresses = {store: (section["ok"], section["address"]) for store, section in report.items()}
    assert addresses == {
        "postgres": (False, "127.0.0.1:1/clinic"),
        "mongodb": (False, "127.0.0.1:2/clinic"),
        "redis": (False, "127.0.0.1:3/4"),
    }
    assert "s3cret" not in repr(report)


def listener_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == OUTBOX_LOGGER]


def test_the_outbox_listener_logs_an_outage_once_and_its_end_once(caplog):
    with (
        scratch_database("dr_assistant_health") as url,
        caplog.at_level("WARNING", logger=OUTBOX_LOGGER),
        DataLayer(settings_for(url)) as layer,  # on the tests' Redis (TEST_REDIS_URL)
    ):
        layer.engine  # noqa: B018 - starts the listener, on a database without its table
        time.sleep(4)
        during_outage = listener_lines(caplog)
        layer.migrate()
        deadline = time.monotonic() + 10
        while len(listener_lines(caplog)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        messages = listener_lines(caplog)

    assert len(during_outage) == 1
    assert "doubling to 2.0 s" in during_outage[0]
    assert len(messages) == 2
    assert messages[1].startswith("cache outbox listener reconnected after ")
