"""Slow and failed statements are logged with duration, pool state and correlation id,
and without patient data."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer, DataLayerError, DuplicateError
from tests.helpers.layers import patient_fields, settings_for

PATIENT_NAME = "Saraswati Iyer"
SLOW_QUERY_MS = 100


@pytest.fixture
def layer(migrated_layer: DataLayer) -> Iterator[DataLayer]:
    url = migrated_layer.settings.database_url
    with DataLayer(settings_for(url, db_slow_query_ms=SLOW_QUERY_MS)) as layer:
        yield layer


def logged(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, object]]:
    return [
        record.query  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "dr_assistant_data.sql" and record.getMessage().startswith(message)
    ]


def test_a_slow_query_is_logged_with_duration_pool_and_correlation_id_but_no_parameters(
    layer, caplog
):
    with caplog.at_level(logging.DEBUG), layer.unit_of_work(actor="test") as uow:
        uow.session.execute(text("SELECT pg_sleep(0.15), :name"), {"name": PATIENT_NAME})

    [entry] = logged(caplog, "slow query")
    assert entry["duration_ms"] >= SLOW_QUERY_MS
    assert entry["correlation_id"] == uow.correlation_id
    assert entry["pool"]["checked_out"] == 1
    assert "pg_sleep" in entry["statement"]
    assert PATIENT_NAME not in caplog.text


def test_a_query_under_the_threshold_is_not_logged(layer, caplog):
    with caplog.at_level(logging.DEBUG), layer.unit_of_work(actor="test") as uow:
        uow.session.execute(text("SELECT :name"), {"name": PATIENT_NAME})

    assert logged(caplog, "slow query") == []


def test_a_failed_query_is_logged_by_class_and_sqlstate_without_its_message_or_parameters(
    layer, caplog
):
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(DataLayerError),
        layer.unit_of_work(actor="test") as uow,
    ):
        uow.session.execute(text("SELECT CAST(:name AS integer)"), {"name": PATIENT_NAME})

    [entry] = logged(caplog, "query failed")
    assert entry["sqlstate"] == "22P02"  # invalid_text_representation
    assert entry["error"] == "InvalidTextRepresentation"
    assert entry["correlation_id"] == uow.correlation_id
    assert PATIENT_NAME not in caplog.text  # PostgreSQL's message quotes the value


def test_log_lines_are_json_a_log_shipper_can_parse(layer, caplog):
    with caplog.at_level(logging.WARNING), layer.unit_of_work(actor="test") as uow:
        uow.session.execute(text("SELECT pg_sleep(0.15)"))

    [record] = [r for r in caplog.records if r.name == "dr_assistant_data.sql"]
    assert json.loads(record.getMessage().removeprefix("slow query ")) == record.query


def test_an_expected_conflict_is_logged_at_info_not_as_a_warning(layer, caplog):
    mrn = f"MRN-LOG-{uuid.uuid4().hex[:8]}"
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn=mrn))
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(DuplicateError),
        layer.unit_of_work(actor="test") as uow,
    ):
        uow.patients.create(**patient_fields(mrn=mrn))

    [record] = [r for r in caplog.records if r.name == "dr_assistant_data.sql"]
    assert (record.levelno, record.query["sqlstate"]) == (logging.INFO, "23505")  # type: ignore[attr-defined]
