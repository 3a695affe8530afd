"""Bulk creation: the rules of single creates, many rows per statement, bad rows reported."""

from __future__ import annotations

import gc
import multiprocessing
import os
import weakref
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from dr_assistant_data import DuplicateError, ValidationError, processes
from dr_assistant_data.relational import bulk
from dr_assistant_data.relational.models import AuditEvent, Patient
from dr_assistant_data.testing import DoctorFactory, PatientFactory, bind_factories
from tests.helpers.cache_helpers import DAY, NINE_IN_KOLKATA, read
from tests.helpers.layers import patient_fields
from tests.protection.test_audit_trail import assert_chain_intact, chain_rows


@pytest.fixture(autouse=True, params=["in line", "in worker processes"])
def encoding(request, monkeypatch) -> str:
    """Every behaviour holds whether the rows are encoded in line or by the workers (made
    to take even the smallest import here, a few rows at a time)."""
    if request.param == "in worker processes":
        monkeypatch.setattr(bulk, "PARALLEL_ROWS", 1)
        monkeypatch.setattr(bulk, "PIECE", 3)
        monkeypatch.setattr(bulk, "WORKERS", 2)
        started = []
        monkeypatch.setattr(bulk, "Workers", _recording(started))
        yield request.param
        assert all(workers.ran for workers in started)  # the rows did go through them
        return
    yield request.param


def _recording(started: list[processes.Workers]) -> type[processes.Workers]:
    class Recorded(processes.Workers):
        ran = False

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if self.count:
                started.append(self)

        def submit(self, function, *args):
            future = super().submit(function, *args)
            self.ran = self.ran or future is not None
            return future

    return Recorded


def many_patients(count: int, **overrides: object) -> list[dict[str, object]]:
    return [patient_fields(last_name=f"Rao{n}", **overrides) for n in range(count)]


def stored_patients(dl) -> list[Patient]:
    return read(dl, lambda uow: list(uow.patients.iterate(order_by="created_at")))


def test_create_many_stores_every_valid_row_and_returns_their_ids_in_order(dl):
    with dl.unit_of_work(actor="test") as uow:
        result = uow.patients.create_many(many_patients(25), batch_size=10)
    assert result.errors == []
    found = read(dl, lambda uow: uow.patients.get_many(result.created))
    assert [p.last_name for p in found] == [f"Rao{n}" for n in range(25)]
    assert all(p.version == 1 and p.status == "active" and p.allergies == [] for p in found)


def test_create_many_normalizes_values_as_a_single_create_does(dl):
    row = patient_fields(abha_id="12 3456 7890 1234", first_name="  Ravi  ")
    with dl.unit_of_work(actor="test") as uow:
        single = uow.patients.create(**row)
        single_values = (single.abha_id, single.first_name)
        uow.session.delete(single)
    with dl.unit_of_work(actor="test") as uow:
        [created] = uow.patients.create_many([row]).created
    bulk = read(dl, lambda uow: uow.patients.get(created))
    assert (bulk.abha_id, bulk.first_name) == single_values


def test_bad_rows_are_reported_by_position_and_field_and_the_good_rows_kept(dl):
    rows = many_patients(6)
    rows[1]["phone"] = "not a phone"
    rows[4]["date_of_birth"] = date.today() + timedelta(days=3)
    del rows[5]["gender"]
    with dl.unit_of_work(actor="test") as uow:
        result = uow.patients.create_many(rows)
    assert [(e.index, e.field) for e in result.errors] == [
        (1, "phone"),
        (4, "date_of_birth"),
        (5, "gender"),
    ]
    assert sorted(p.last_name for p in stored_patients(dl)) == ["Rao0", "Rao2", "Rao3"]


def test_a_field_a_patient_does_not_have_is_refused_under_a_fixed_label(dl):
    with dl.unit_of_work(actor="test") as uow:
        result = uow.patients.create_many([patient_fields(favourite_colour="blue")])
    assert [(e.index, e.field) for e in result.errors] == [(0, "fields")]


def test_all_or_nothing_names_the_first_bad_row_and_writes_nothing(dl):
    rows = many_patients(30)
    rows[27]["email"] = "nobody-at-all"
    with dl.unit_of_work(actor="test") as uow:
        with pytest.raises(ValidationError) as refused:
            uow.patients.create_many(rows, batch_size=10, all_or_nothing=True)
        uow.patients.create(**patient_fields(last_name="Kept"))  # the unit of work goes on
    assert refused.value.field == "rows[27].email"
    assert [p.last_name for p in stored_patients(dl)] == ["Kept"]


@pytest.mark.parametrize(
    ("field", "taken", "again"),
    [
        ("mrn", "MRN-TAKEN", "MRN-TAKEN"),
        ("abha_id", "91-7777-8888-9999", "91 7777 8888 9999"),  # sealed; its blind index
    ],
)
def test_a_taken_unique_value_rejects_only_its_row_naming_the_field(dl, field, taken, again):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(**{field: taken}))
    rows = many_patients(5)
    rows[3][field] = again
    with dl.unit_of_work(actor="test") as uow:
        result = uow.patients.create_many(rows)
    assert [(e.index, e.field, e.reason) for e in result.errors] == [(3, field, "already in use")]
    assert len(result.created) == 4
    assert len(stored_patients(dl)) == 5


def test_a_taken_unique_value_under_all_or_nothing_writes_nothing(dl):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-TAKEN"))
    rows = many_patients(5)
    rows[3]["mrn"] = "MRN-TAKEN"
    with dl.unit_of_work(actor="test") as uow, pytest.raises(DuplicateError):
        uow.patients.create_many(rows, all_or_nothing=True)
    assert len(stored_patients(dl)) == 1


def test_progress_is_reported_after_each_batch(dl):
    rows = many_patients(25)
    rows[12]["gender"] = "unknown"
    seen = []
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create_many(rows, batch_size=10, progress=seen.append)
    assert [(p.done, p.created, p.rejected) for p in seen] == [
        (10, 10, 0),
        (20, 19, 1),
        (25, 24, 1),
    ]


def test_a_batch_size_out_of_range_is_refused(dl):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        uow.patients.create_many(many_patients(1), batch_size=0)
    assert refused.value.field == "batch_size"


def test_each_created_row_has_an_audit_event_and_the_chain_still_verifies(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        PatientFactory()
    with dl.unit_of_work(actor="importer") as uow:
        created = uow.patients.create_many(many_patients(12), batch_size=5).created
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        PatientFactory()
    events = read(
        dl,
        lambda uow: list(
            uow.session.scalars(select(AuditEvent).where(AuditEvent.actor == "importer"))
        ),
    )
    assert sorted(e.entity_id for e in events) == sorted(str(id) for id in created)
    assert {tuple(e.changed_fields) for e in events} == {
        ("allergies", "date_of_birth", "first_name", "gender", "id", "last_name", "status")
    }
    assert_chain_intact(chain_rows(dl))


def test_rows_refused_or_rolled_back_leave_no_audit_event(dl):
    rows = many_patients(3)
    rows[0]["gender"] = "unknown"
    with pytest.raises(RuntimeError), dl.unit_of_work(actor="importer") as uow:
        uow.patients.create_many(rows)
        raise RuntimeError("the import was abandoned")
    with dl.unit_of_work(actor="importer") as uow:
        uow.patients.create_many(rows)
    assert len(chain_rows(dl)) == 2


def test_a_cached_day_read_before_a_bulk_import_of_its_appointments_is_fresh_after(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        patients = PatientFactory.create_batch(3)
    assert read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY)) == []
    rows = [
        {
            "doctor_id": doctor.id,
            "patient_id": patient.id,
            "start_time": NINE_IN_KOLKATA + timedelta(minutes=20 * n),
            "end_time": NINE_IN_KOLKATA + timedelta(minutes=20 * n + 15),
        }
        for n, patient in enumerate(patients)
    ]
    with dl.unit_of_work(actor="test") as uow:
        assert uow.appointments.create_many(rows).errors == []
    day = read(
        dl, lambda uow: [a.patient.id for a in uow.appointments.schedule_for(doctor.id, DAY)]
    )
    assert day == [patient.id for patient in patients]


def test_a_bulk_import_that_rolls_back_invalidates_nothing(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        patient = PatientFactory()
    row = {
        "doctor_id": doctor.id,
        "patient_id": patient.id,
        "start_time": NINE_IN_KOLKATA,
        "end_time": NINE_IN_KOLKATA + timedelta(minutes=15),
    }
    assert read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY)) == []
    before = dl.cache_stats()["schedules"]["invalidation"]
    with pytest.raises(RuntimeError), dl.unit_of_work(actor="test") as uow:
        uow.appointments.create_many([row])
        raise RuntimeError("abandoned")
    assert dl.cache_stats()["schedules"]["invalidation"] == before


def test_text_with_tabs_newlines_backslashes_and_quotes_survives_the_copy(dl):
    address = {"line": 'Flat 4\\B\t"Sai Kripa"\nNear the temple\r', "city": "Pune"}
    rows = [patient_fields(address=address, last_name="O'Brien\\Rao") for _ in range(3)]
    with dl.unit_of_work(actor="test") as uow:
        created = uow.patients.create_many(rows).created
    stored = read(dl, lambda uow: uow.patients.get_many(created))
    assert [(p.address, p.last_name) for p in stored] == [(address, "O'Brien\\Rao")] * 3


class StopImport(Exception):
    pass


def test_an_import_stopped_midway_and_committed_has_an_audit_event_per_written_row(dl):
    def stop_after_the_first_batch(progress):
        if progress.done == 10:
            raise StopImport

    with dl.unit_of_work(actor="importer") as uow, pytest.raises(StopImport):
        uow.patients.create_many(
            many_patients(30), batch_size=10, progress=stop_after_the_first_batch
        )
    assert len(stored_patients(dl)) == 10
    assert len(chain_rows(dl)) == 10


def test_bulk_created_identifiers_are_sealed_at_rest_and_found_by_their_blind_index(dl):
    identifiers = {
        "abha_id": "91-7777-8888-9999",
        "phone": "098777 00001",
        "email": "Ira@Example.in",
    }
    with dl.unit_of_work(actor="test") as uow:
        [created] = uow.patients.create_many(
            [patient_fields(**identifiers), *many_patients(2)]
        ).created[:1]
    with dl.engine.connect() as connection:  # as stored: plain SQL, no column types
        row = connection.execute(text("SELECT * FROM patients WHERE id = :id"), {"id": created})
        stored = " ".join(str(value) for value in row.one())
    assert "7777" not in stored
    assert "98777" not in stored
    assert "xample" not in stored
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.find_by_abha_id("91 7777 8888 9999").id == created
        assert [p.id for p in uow.patients.find_by_phone("+919877700001")] == [created]
        assert uow.patients.get(created).email == "ira@example.in"


def test_streamed_entities_are_not_held_by_the_unit_of_work(dl):
    """Reads hold what they load (an edit in place must not be lost to the collector), but a
    streamed read lets go of its rows, so memory stays flat however many match."""
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create_many([patient_fields(mrn=f"S{n:04d}") for n in range(30)])
    with dl.unit_of_work(actor="test") as uow:
        held = uow.patients.get(uow.patients.list(limit=1)[0].id)
        streamed = [weakref.ref(row) for row in uow.patients.iterate(batch_size=10)]
        gc.collect()
        assert len(streamed) == 30
        assert [ref() for ref in streamed if ref() not in (None, held)] == []


def test_ctrl_c_during_an_import_leaves_no_worker_process_and_nothing_written(dl, encoding):
    def interrupt(progress):
        if progress.done == 10:
            raise KeyboardInterrupt

    with dl.unit_of_work(actor="importer") as uow, pytest.raises(KeyboardInterrupt):
        uow.patients.create_many(
            many_patients(40), batch_size=10, all_or_nothing=True, progress=interrupt
        )
    assert multiprocessing.active_children() == []
    assert stored_patients(dl) == []
    assert chain_rows(dl) == []


def _dies(piece: object) -> object:
    os._exit(1)


def test_when_a_worker_dies_the_import_finishes_in_line_with_the_same_outcome(
    dl, encoding, monkeypatch
):
    monkeypatch.setattr(bulk, "_encode_piece", _dies)
    rows = many_patients(25)
    rows[17]["gender"] = "unknown"
    with dl.unit_of_work(actor="importer") as uow:
        result = uow.patients.create_many(rows, batch_size=10)
    assert [(e.index, e.field) for e in result.errors] == [(17, "gender")]
    assert len(stored_patients(dl)) == 24
    assert_chain_intact(chain_rows(dl))
    assert multiprocessing.active_children() == []
