"""OpenTelemetry: spans for units of work, migrations, repository calls, document operations
and cache reads and invalidations; metrics of the cache, pool, circuit breaker, owed
invalidations, replica lag and audit seals, read with the SDK's in-memory exporters; no
span or metric attribute carries a patient's data, and without the package the layer runs
unchanged."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import ValidationError
from dr_assistant_data.relational.audit.seal import Sealed
from dr_assistant_data.testing.servers.ports import free_port
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import (
    CACHE_PREFIX,
    REDIS_URL,
    layer_with,
    new_visit,
    patient_fields,
    settings_for,
)

PATIENT = {"first_name": "Vaidehi", "last_name": "Ramaswamy", "mrn": "MRN-OTEL-4242"}
PHONE, EMAIL = "+919812345678", "vaidehi.r@example.in"
SECRET_VALUES = [*PATIENT.values(), PHONE, EMAIL, "9812345678", "allergic to sulfa"]


@pytest.fixture(scope="module")
def telemetry_readers() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """The process's providers (set once: OpenTelemetry keeps the first)."""
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return spans, reader


@pytest.fixture
def spans(telemetry_readers) -> Iterator[InMemorySpanExporter]:
    exporter = telemetry_readers[0]
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def metric_reader(telemetry_readers) -> InMemoryMetricReader:
    return telemetry_readers[1]


@pytest.fixture
def cached_layer(dl: DataLayer) -> Iterator[DataLayer]:
    with DataLayer(settings_for(dl.settings.database_url, redis_url="memory://")) as layer:
        yield layer


def named(exporter: InMemorySpanExporter, name: str, **attributes: object) -> list:
    """The finished spans of ``name`` whose ``dr.<key>`` attributes match ``attributes``."""
    return [
        span
        for span in exporter.get_finished_spans()
        if span.name == name
        and all(span.attributes.get(f"dr.{key}") == value for key, value in attributes.items())
    ]


def gauge(reader: InMemoryMetricReader, name: str, layer: DataLayer) -> list:
    """The points of ``dr_assistant_data.<name>`` reported for ``layer``'s database."""
    return [
        point
        for point in metric_points(reader).get(f"dr_assistant_data.{name}", [])
        if point.attributes["db.name"] == layer.database_name
    ]


def metric_points(reader: InMemoryMetricReader) -> dict[str, list]:
    points: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def test_a_committed_unit_of_work_is_one_span_with_its_outcome(dl, spans):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())

    [span] = named(spans, "dr_assistant_data.unit_of_work")
    assert span.attributes["dr.outcome"] == "committed"
    assert span.attributes["dr.read_only"] is False


def test_a_unit_of_work_that_raised_records_the_error_class_and_never_its_message(dl, spans):
    with pytest.raises(ValueError, match=PATIENT["first_name"]), dl.unit_of_work(actor="test"):
        raise ValueError(f"{PATIENT['first_name']} {PHONE}")

    [span] = named(spans, "dr_assistant_data.unit_of_work")
    assert span.attributes["dr.outcome"] == "rolled_back"
    assert span.attributes["error.type"] == "ValueError"
    assert span.events == ()
    assert PHONE not in repr(span.to_json())


def test_migrate_is_a_span(dl, spans):
    dl.migrate()

    [span] = named(spans, "dr_assistant_data.migrate")
    assert span.attributes["dr.outcome"] == "migrated"


def test_cache_hits_and_misses_are_reported_per_region(cached_layer, metric_reader):
    with cached_layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
    for _ in range(2):
        with cached_layer.unit_of_work(actor="test") as uow:
            uow.patients.get(patient.id)

    database = cached_layer.database_name
    events = {
        (p.attributes["dr.cache.region"], p.attributes["dr.cache.event"]): p.value
        for p in metric_points(metric_reader)["dr_assistant_data.cache.events"]
        if p.attributes["db.name"] == database
    }
    ratios = [  # of the region read here: a region other tests only missed in reads 0
        p.value
        for p in metric_points(metric_reader)["dr_assistant_data.cache.hit_ratio"]
        if p.attributes["db.name"] == database and p.attributes["dr.cache.region"] == "entities"
    ]
    assert events[("entities", "hit")] >= 1
    assert events[("entities", "miss")] >= 1
    assert ratios
    assert all(0 < ratio < 1 for ratio in ratios)


def test_pooled_connections_are_reported(dl, metric_reader):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.count()

    states = {
        p.attributes["dr.pool.state"]
        for p in metric_points(metric_reader)["dr_assistant_data.db.pool.connections"]
        if p.attributes["db.name"] == dl.database_name
    }
    assert states == {"checked_out", "idle"}


def test_no_span_or_metric_attribute_carries_a_test_patients_data(
    cached_layer, spans, metric_reader
):
    with cached_layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(
            **patient_fields(**PATIENT, phone=PHONE, email=EMAIL, allergies=[SECRET_VALUES[-1]])
        )
    with cached_layer.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id)
        uow.patients.find_by_mrn(PATIENT["mrn"])
        uow.patients.find_by_phone(PHONE)
        uow.patients.search_by_name(PATIENT["last_name"])
    with (
        pytest.raises(ValueError, match=PATIENT["last_name"]),
        cached_layer.unit_of_work(actor="test") as uow,
    ):
        uow.patients.update(patient.id, first_name=PATIENT["first_name"] + "a")
        raise ValueError(PATIENT["last_name"])
    with pytest.raises(ValidationError), cached_layer.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(**PATIENT, gender=PHONE))  # refused: names a value
    visit = new_visit(cached_layer)
    with cached_layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(
            **visit.ids,
            content={"subjective": {"allergies": [SECRET_VALUES[-1]]}},
            raw_transcription=f"{PATIENT['first_name']} says she is {SECRET_VALUES[-1]}",
        )
        uow.clinical_notes.for_patient(visit.patient_id)
        uow.patients.get_many([patient.id, visit.patient_id])

    exported = [span.to_json() for span in spans.get_finished_spans()]
    exported += [
        json.dumps(dict(p.attributes)) for ps in metric_points(metric_reader).values() for p in ps
    ]
    assert len(named(spans, "dr_assistant_data.unit_of_work")) == 6
    for kind in ("repository", "document", "cache"):
        assert named(spans, f"dr_assistant_data.{kind}"), kind
    leaked = [value for value in SECRET_VALUES if any(value in text for text in exported)]
    assert leaked == []


def test_without_opentelemetry_the_layer_runs_unchanged(tmp_path):
    script = f"""
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
from dr_assistant_data import DataLayer, Settings
settings = Settings(database_url="sqlite:///{tmp_path / "clinic.sqlite3"}",
                    mongodb_uri="mongomock://localhost/otel_{uuid.uuid4().hex[:8]}",
                    redis_url="memory://", environment="test")
with DataLayer(settings) as dl:
    dl.migrate()
    with dl.unit_of_work(actor="test") as uow:
        print(uow.patients.count())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert (result.returncode, result.stdout.strip()) == (0, "0"), result.stderr


def test_a_repository_call_is_a_span_with_its_table_operation_and_rows(dl, spans):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
        uow.patients.list()

    [unit] = named(spans, "dr_assistant_data.unit_of_work")
    [listed] = named(spans, "dr_assistant_data.repository", table="patients", operation="list")
    assert listed.attributes["dr.outcome"] == "ok"
    assert listed.attributes["dr.rows"] == 1
    assert listed.parent.span_id == unit.context.span_id


def test_a_refused_repository_call_is_a_failed_span_with_the_error_class(dl, spans):
    with pytest.raises(ValidationError), dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(phone=PHONE, gender="unknown"))

    [created] = named(spans, "dr_assistant_data.repository", operation="create")
    assert created.attributes["dr.outcome"] == "failed"
    assert created.attributes["error.type"] == "ValidationError"


def test_a_document_operation_is_a_span_with_its_collection(layer, spans):
    visit = new_visit(layer)
    with layer.unit_of_work(actor="test") as uow:
        note = uow.clinical_notes.create(**visit.ids, content={"subjective": {}})
        uow.clinical_notes.get(note.id)

    [got] = named(spans, "dr_assistant_data.document", operation="get")
    assert got.attributes["dr.collection"] == "clinical_notes"
    assert (got.attributes["dr.outcome"], got.attributes["dr.rows"]) == ("ok", 1)


def test_a_cached_read_is_a_span_of_its_region_saying_miss_then_hit(cached_layer, spans):
    with cached_layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
    for _ in range(2):
        with cached_layer.unit_of_work(actor="test") as uow:
            uow.patients.get(patient.id)

    reads = named(spans, "dr_assistant_data.cache", operation="read")
    assert [span.attributes["dr.outcome"] for span in reads] == ["miss", "hit"]
    assert {span.attributes["dr.cache.region"] for span in reads} == {"entities"}


def test_a_cache_invalidation_is_a_span_of_its_region_saying_it_was_delivered(cached_layer, spans):
    with cached_layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
    spans.clear()
    with cached_layer.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")

    [invalidated] = named(spans, "dr_assistant_data.cache", operation="invalidate")
    assert invalidated.attributes["dr.cache.region"] == "entities"
    assert invalidated.attributes["dr.outcome"] == "delivered"


def test_the_breaker_and_owed_invalidations_are_reported_while_redis_is_down(dl, metric_reader):
    redis_down = f"redis://127.0.0.1:{free_port()}/0"
    with layer_with(dl, redis_url=redis_down, cache_breaker_backoff=60) as layer:
        with layer.unit_of_work(actor="test") as uow:
            patient = uow.patients.create(**patient_fields())
        for name in ("Sharma", "Verma", "Iyer"):  # each delivery fails: the breaker opens
            with layer.unit_of_work(actor="test") as uow:
                uow.patients.update(patient.id, last_name=name)

        [breaker] = gauge(metric_reader, "cache.breaker.open", layer)
        [owed] = gauge(metric_reader, "cache.invalidations.owed", layer)
    assert breaker.value == 1
    assert owed.value >= 1


def test_replica_lag_is_reported_per_replica_from_its_last_check(dl, metric_reader):
    # the primary stands in for its own replica: not in recovery, so no lag
    with layer_with(dl, database_replica_urls=(dl.settings.database_url,)) as layer:
        with layer.unit_of_work(actor="test", read_only=True) as uow:
            uow.patients.count()

        [lag] = gauge(metric_reader, "db.replica.lag", layer)
    assert (lag.attributes["dr.replica"], lag.value) == (0, 0)


def test_the_last_sealed_audit_batch_and_the_events_sealed_are_reported(
    dl, metric_reader, tmp_path
):
    secret = base64.b64encode(os.urandom(32)).decode()
    with layer_with(dl, audit_checkpoint_dir=str(tmp_path), audit_key=secret) as layer:
        with layer.unit_of_work(actor="test") as uow:
            uow.patients.create(**patient_fields())
        sealed = seal_something(layer)

        [batch] = gauge(metric_reader, "audit.sealed_batch", layer)
        [total] = gauge(metric_reader, "audit.events_sealed", layer)
    assert (batch.value, total.value) == (sealed.batch, sealed.total)


def test_checkpoints_the_store_refuses_are_reported(dl, metric_reader, tmp_path):
    unmounted = tmp_path / "unmounted"
    unmounted.write_text("")  # a file where the checkpoints' directory should be
    secret = base64.b64encode(os.urandom(32)).decode()
    with layer_with(
        dl,
        audit_checkpoint_dir=str(unmounted),
        audit_key=secret,
        audit_sealer=True,
        audit_seal_interval=0.05,
    ) as layer:
        with layer.unit_of_work(actor="test") as uow:
            uow.patients.create(**patient_fields())
        deadline = time.monotonic() + 30
        while not (failures := gauge(metric_reader, "audit.checkpoint_failures", layer)) or (
            failures[0].value == 0
        ):
            assert time.monotonic() < deadline, "the refused checkpoint was not reported"
            time.sleep(0.05)


def seal_something(layer: DataLayer) -> Sealed:
    """A sealed batch (the database server is shared: another client's open transaction
    may hold the sealing horizon back for a moment)."""
    deadline = time.monotonic() + 30
    while (sealed := layer.seal_audit()) is None:
        assert time.monotonic() < deadline, "nothing was sealed"
        time.sleep(0.05)
    return sealed


def test_the_owed_invalidations_of_layers_of_one_database_are_added_up(dl, metric_reader):
    redis_down = f"redis://127.0.0.1:{free_port()}/0"
    patient = new_patient(dl)
    with (
        layer_with(dl, redis_url=redis_down) as first,
        layer_with(dl, redis_url=redis_down) as second,
    ):
        for layer in (first, second):
            with layer.unit_of_work(actor="test") as uow:  # owes the patient's key
                uow.patients.update(patient.id, last_name="Sharma")
        # each layer also comes to owe what the other announced (cache/outbox.py), and
        # ``dl`` serves the same database, so it is counted too (it owes for a moment while
        # it delivers what the others announced): read the gauge between two equal
        # readings of all three layers that agree with it (a delivery between the readings
        # may make one disagree; a gauge that adds up wrongly never agrees)
        layers = (dl, first, second)
        deadline = time.monotonic() + 10
        while True:
            owed = [layer.cache_guard_state()["owed"] for layer in layers]
            [point] = gauge(metric_reader, "cache.invalidations.owed", first)
            again = [layer.cache_guard_state()["owed"] for layer in layers]
            if owed == again and point.value == sum(owed):
                break
            assert time.monotonic() < deadline, (point.value, owed, again)
            time.sleep(0.1)
    assert sum(owed) > max(owed[1:])


DRIVERS_WORKLOAD = """
import json, sys, uuid
from datetime import date
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from dr_assistant_data import DataLayer, Settings, telemetry

exporter, provider = InMemorySpanExporter(), TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
turned_on = telemetry.instrument_drivers()
database_url, redis_url, cache_prefix, patient = json.loads(sys.argv[1])
settings = Settings(database_url=database_url, redis_url=redis_url, cache_prefix=cache_prefix,
                    environment="test",
                    mongodb_uri=f"mongomock://localhost/otel_{uuid.uuid4().hex[:8]}")
with DataLayer(settings) as dl:
    with dl.unit_of_work(actor="test") as uow:
        created = uow.patients.create(**patient, date_of_birth=date(1980, 5, 1), gender="female")
    for _ in range(2):
        with dl.unit_of_work(actor="test") as uow:
            uow.patients.get(created.id)
    dl.cache.set("greeting", patient["first_name"])
print(json.dumps({"turned_on": turned_on,
                  "spans": [json.loads(span.to_json()) for span in exporter.get_finished_spans()]}))
"""


def test_instrument_drivers_turns_on_redis_and_pymongo_whose_spans_carry_no_values(dl):
    patient = {**PATIENT, "phone": PHONE, "email": EMAIL}
    argument = json.dumps([dl.settings.database_url, REDIS_URL, CACHE_PREFIX, patient])
    result = subprocess.run(
        [sys.executable, "-c", DRIVERS_WORKLOAD, argument],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    redis_spans = [
        span for span in report["spans"] if span["attributes"].get("db.system") == "redis"
    ]
    assert report["turned_on"] == ["redis", "pymongo"]
    assert redis_spans
    leaked = [value for value in SECRET_VALUES if value in json.dumps(report["spans"])]
    assert leaked == []


def test_the_cache_events_of_layers_of_one_database_are_added_up(dl, metric_reader):
    with (
        layer_with(dl, redis_url="memory://") as first,
        layer_with(dl, redis_url="memory://") as second,
    ):
        patient = new_patient(first)
        for layer in (first, second):
            read_patient(layer, patient.id)
        misses = sum(
            layer.cache_stats().get("entities", {}).get("miss", 0) for layer in (dl, first, second)
        )

        [point] = [
            p
            for p in gauge(metric_reader, "cache.events", first)
            if p.attributes["dr.cache.region"] == "entities"
            and p.attributes["dr.cache.event"] == "miss"
        ]
    assert point.value == misses
