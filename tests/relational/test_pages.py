"""Streaming reads and keyset (cursor) pages."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer, ValidationError
from dr_assistant_data.testing import (
    DoctorFactory,
    EncounterFactory,
    PatientFactory,
    PrescriptionFactory,
    bind_factories,
)
from tests.helpers.cache_helpers import read
from tests.helpers.layers import patient_fields, settings_for


def patients_named(dl, count: int) -> None:
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create_many([patient_fields(last_name=f"Rao{n:03d}") for n in range(count)])


def walk(reader, limit: int) -> tuple[list[object], int]:
    """Every item of every page, and the number of pages."""
    items, cursor, pages = [], None, 0
    while True:
        page = reader(limit, cursor)
        items.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            return items, pages
        cursor = page.next_cursor


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def test_iterate_streams_every_matching_row_in_order_across_batches(dl):
    patients_named(dl, 10)
    names = read(
        dl,
        lambda uow: [
            p.last_name for p in uow.patients.iterate(order_by="-last_name", batch_size=3)
        ],
    )
    assert names == [f"Rao{n:03d}" for n in reversed(range(10))]


def test_iterate_reads_through_a_server_side_cursor_a_batch_at_a_time(dl):
    patients_named(dl, 5)
    with dl.unit_of_work(actor="test") as uow:
        stream = uow.patients.iterate(batch_size=2)
        next(stream)
        open_cursors = uow.session.execute(text("SELECT count(*) FROM pg_cursors")).scalar()
        rest = list(stream)
    assert open_cursors == 1
    assert len(rest) == 4


def test_iterate_hides_soft_deleted_rows_and_applies_filters(dl):
    patients_named(dl, 4)
    with dl.unit_of_work(actor="test") as uow:
        first, second, *_ = uow.patients.list(order_by="last_name")
        uow.patients.delete(first.id)
        uow.patients.update(second.id, status="inactive")
    names = read(
        dl, lambda uow: [p.last_name for p in uow.patients.iterate(filters={"status": "active"})]
    )
    assert sorted(names) == ["Rao002", "Rao003"]


def test_iterate_refuses_a_field_it_may_not_filter_on(dl):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        list(uow.patients.iterate(filters={"first_name": "Ravi"}))
    assert refused.value.field == "first_name"


def test_export_streams_the_fields_of_matching_rows_decoded_in_order(dl):
    patients_named(dl, 5)
    with dl.unit_of_work(actor="test") as uow:
        first = uow.patients.list(order_by="last_name", limit=1)[0]
        uow.patients.update(first.id, phone="98000 00001", address={"city": "Pune"})
        uow.patients.delete(uow.patients.list(order_by="-last_name", limit=1)[0].id)
    rows = read(
        dl,
        lambda uow: list(
            uow.patients.export(
                ["last_name", "phone", "address"], order_by="-created_at", batch_size=2
            )
        ),
    )
    assert sorted(row.last_name for row in rows) == ["Rao000", "Rao001", "Rao002", "Rao003"]
    exported = next(row for row in rows if row.last_name == "Rao000")
    assert tuple(exported) == ("Rao000", "+919800000001", {"city": "Pune"})  # decrypted


def test_export_reads_through_a_server_side_cursor_a_batch_at_a_time(dl):
    patients_named(dl, 5)
    with dl.unit_of_work(actor="test") as uow:
        stream = uow.patients.export(["last_name"], batch_size=2)
        next(stream)
        open_cursors = uow.session.execute(text("SELECT count(*) FROM pg_cursors")).scalar()
        rest = list(stream)
    assert open_cursors == 1
    assert len(rest) == 4


@pytest.mark.parametrize("fields", [["password_hash"], ["no_such_field"], [], "username"])
def test_export_refuses_credentials_unknown_fields_and_no_fields(dl, fields):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        list(uow.users.export(fields))
    assert refused.value.field == "fields"


def test_keyset_pages_cover_every_row_once_in_the_order_of_list(dl):
    patients_named(dl, 23)
    items, pages = read(
        dl,
        lambda uow: walk(
            lambda limit, after: uow.patients.list_page(
                order_by="-last_name", limit=limit, after=after
            ),
            5,
        ),
    )
    listed = read(dl, lambda uow: uow.patients.list(order_by="-last_name", limit=100))
    assert [p.id for p in items] == [p.id for p in listed]
    assert pages == 5


def test_a_keyset_page_does_not_shift_when_rows_are_added_before_it(dl):
    patients_named(dl, 6)
    first = read(dl, lambda uow: uow.patients.list_page(order_by="last_name", limit=3))
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(last_name="Aaa"))
    second = read(
        dl,
        lambda uow: uow.patients.list_page(order_by="last_name", limit=3, after=first.next_cursor),
    )
    assert [p.last_name for p in second.items] == ["Rao003", "Rao004", "Rao005"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        "e30",  # {}
        forged({"o": ["last_name", "id"], "v": ["Rao", "'; DROP TABLE patients; --"]}),
        forged({"o": ["last_name", "id"], "v": [7, "5f0c6d0e-8e44-4a39-9d8e-0f3b1b7b2a11"]}),
        forged({"o": ["last_name", "id"], "v": ["Rao"]}),
        forged(["last_name"]),
    ],
    ids=["garbled", "empty", "sql-in-a-uuid", "wrong-type", "too-short", "not-an-object"],
)
def test_a_garbled_or_forged_cursor_is_a_validation_error(dl, cursor):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        uow.patients.list_page(order_by="last_name", after=cursor)
    assert refused.value.field == "cursor"


def test_a_cursor_from_another_ordering_is_refused(dl):
    patients_named(dl, 3)
    page = read(dl, lambda uow: uow.patients.list_page(order_by="last_name", limit=1))
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        uow.patients.list_page(order_by="first_name", after=page.next_cursor)
    assert refused.value.field == "cursor"


def test_keyset_pages_refuse_a_sort_field_that_may_be_empty(dl):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        uow.patients.list_page(order_by="mrn")
    assert refused.value.field == "order_by"


def encounters_of_one_patient(dl, count: int):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient, doctor = PatientFactory(), DoctorFactory()
        for n in range(count):
            EncounterFactory(patient=patient, doctor=doctor, start_time=start + timedelta(days=n))
    return patient


def test_timeline_keyset_pages_walk_the_history_newest_first(dl):
    patient = encounters_of_one_patient(dl, 12)
    items, pages = read(
        dl,
        lambda uow: walk(
            lambda limit, after: uow.encounters.for_patient_page(
                patient.id, limit=limit, after=after
            ),
            5,
        ),
    )
    starts = [e.start_time for e in items]
    assert starts == sorted(starts, reverse=True)
    assert len(set(starts)) == 12
    assert pages == 3


def test_a_deep_timeline_page_costs_one_query_with_its_doctors(dl, count_queries):
    patient = encounters_of_one_patient(dl, 60)
    with dl.unit_of_work(actor="test") as uow:
        cursor = None
        for _ in range(5):
            cursor = uow.encounters.for_patient_page(patient.id, limit=10, after=cursor).next_cursor
        uow.session.expunge_all()
        with count_queries() as log:
            page = uow.encounters.for_patient_page(patient.id, limit=10, after=cursor)
            doctors = {e.doctor.full_name for e in page.items}
    assert log.count == 1
    assert len(page.items) == 10
    assert len(doctors) == 1


def test_prescription_keyset_pages_load_items_and_doctor_in_two_queries(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
        PrescriptionFactory.create_batch(4, encounter=encounter)
    patient = encounter.patient
    with dl.unit_of_work(actor="test") as uow:
        first = uow.prescriptions.for_patient_page(patient.id, limit=2)
        uow.session.expunge_all()
        with count_queries() as log:
            page = uow.prescriptions.for_patient_page(patient.id, limit=2, after=first.next_cursor)
            loaded = [(len(p.items), p.doctor.id) for p in page.items]
    assert log.count == 2
    assert len(loaded) == 2
    assert page.next_cursor is None
    assert not {p.id for p in first.items} & {p.id for p in page.items}


def test_timeline_keyset_pages_are_chart_reads_when_reads_are_audited(dl, database_url):
    patient = encounters_of_one_patient(dl, 2)
    audited = DataLayer(settings_for(database_url, audit_reads=True))
    try:
        with audited.unit_of_work(actor="doctor-2") as uow:
            uow.encounters.for_patient_page(patient.id, limit=1)
            uow.orders.for_patient_page(patient.id)
        with audited.unit_of_work(actor="test") as uow:
            reads = [e.changed_fields for e in uow.audit.for_entity("patients", patient.id)]
    finally:
        audited.close()
    assert ["encounters"] in reads
    assert ["orders"] in reads
