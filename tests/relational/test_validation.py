"""Bad input is refused with a ValidationError naming the field, before any SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dr_assistant_data import ValidationError
from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing import (
    DoctorFactory,
    EncounterFactory,
    PatientFactory,
    bind_factories,
)
from tests.helpers.layers import patient_fields

NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", None),
        ("first_name", "   "),
        ("first_name", "x" * 101),
        ("first_name", 42),
        ("last_name", "Ra\x00o"),
        ("last_name", "Ra\ud800o"),
        ("gender", "unknown"),
        ("blood_group", "C+"),
        ("status", "archived"),
        ("date_of_birth", NOW.date() + timedelta(days=30)),
        ("date_of_birth", date(1850, 1, 1)),
        ("date_of_birth", "14/03/1992"),
        ("date_of_birth", NOW),
        ("phone", "98000"),
        ("phone", "+91 98000 00001 ext 5"),
        ("email", "not-an-email"),
        ("abha_id", "1234"),
        ("mrn", "MRN 1; DROP"),
        ("allergies", "penicillin"),
        ("allergies", ["ok", 7]),
        ("allergies", ["x" * 201]),
        ("address", ["Bengaluru"]),
        ("address", {"$where": "1"}),
        ("address", {"city.name": "Pune"}),
        ("address", {"note": "a" * 20_000}),
        ("address", {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}),
        ("emergency_contact", {"phone": object()}),
    ],
)
def test_a_bad_patient_field_is_named_and_nothing_is_written(dl, count_queries, field, value):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.count()
        with count_queries() as queries, pytest.raises(ValidationError) as raised:
            uow.patients.create(**patient_fields(**{field: value}))
        assert queries.count == 0
        assert raised.value.field == field
        assert uow.session.scalar(select(func.count()).select_from(Patient)) == 0


def test_a_missing_required_field_is_named(dl):
    with dl.unit_of_work(actor="test") as uow:
        fields = patient_fields()
        del fields["date_of_birth"]
        with pytest.raises(ValidationError) as raised:
            uow.patients.create(**fields)
    assert raised.value.field == "date_of_birth"
    assert "required" in str(raised.value)


def test_values_are_normalized_before_they_are_stored(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(
            **patient_fields(
                phone="098000 00001",
                email=" Ananya.Rao@Example.IN ",
                abha_id="12 3456 7890 1234",
                allergies=["penicillin", " penicillin ", "latex"],
                first_name="  Ananya ",
            )
        )
    assert patient.phone == "+919800000001"
    assert patient.email == "ananya.rao@example.in"
    assert patient.abha_id == "12-3456-7890-1234"
    assert patient.allergies == ["penicillin", "latex"]
    assert patient.first_name == "Ananya"


def test_iso_strings_are_accepted_for_dates_times_and_ids(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        patient = PatientFactory()
        start = "2031-01-06T09:00:00+05:30"
        appointment = uow.appointments.create(
            doctor_id=str(doctor.id),
            patient_id=str(patient.id),
            start_time=start,
            end_time="2031-01-06T09:15:00+05:30",
        )
    assert appointment.start_time == datetime(2031, 1, 6, 3, 30, tzinfo=UTC)


def test_naive_datetimes_are_refused(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor, patient = DoctorFactory(), PatientFactory()
        with pytest.raises(ValidationError) as raised:
            uow.appointments.create(
                doctor_id=doctor.id,
                patient_id=patient.id,
                start_time=datetime(2031, 1, 6, 9, 0),
                end_time=datetime(2031, 1, 6, 9, 15, tzinfo=UTC),
            )
    assert raised.value.field == "start_time"
    assert "time zone" in str(raised.value)


def test_an_appointment_must_end_after_it_starts(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor, patient = DoctorFactory(), PatientFactory()
        with pytest.raises(ValidationError) as raised:
            uow.appointments.create(
                doctor_id=doctor.id, patient_id=patient.id, start_time=NOW, end_time=NOW
            )
    assert raised.value.field == "end_time"


def test_the_cross_field_rule_holds_when_only_one_side_changes(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory(end_time=None)
        with pytest.raises(ValidationError) as raised:
            uow.encounters.update(encounter.id, end_time=encounter.start_time - timedelta(hours=1))
    assert raised.value.field == "end_time"


def test_prescription_validity_and_item_fields_are_checked(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
        header = {
            "encounter_id": encounter.id,
            "patient_id": encounter.patient_id,
            "doctor_id": encounter.doctor_id,
        }
        with pytest.raises(ValidationError) as raised:
            uow.prescriptions.create(
                **header, valid_from=date(2031, 1, 10), valid_until=date(2031, 1, 1)
            )
        assert raised.value.field == "valid_until"
        bad_items = [
            (
                [{"medication_name": "X", "dosage": "1", "frequency": "OD", "refills": -1}],
                "items.refills",
            ),
            (
                [{"medication_name": "X", "dosage": "1", "frequency": "OD", "quantity": 0}],
                "items.quantity",
            ),
            ([{"medication_name": "X", "frequency": "OD"}], "items.dosage"),
            (
                [{"medication_name": "X", "dosage": "1", "frequency": "OD", "price": 3}],
                "items.fields",
            ),
            ("Paracetamol", "items"),
        ]
        for items, field in bad_items:
            with pytest.raises(ValidationError) as raised:
                uow.prescriptions.create(**header, items=items)
            assert raised.value.field == field


def test_a_failed_update_leaves_the_entity_as_it_was(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory(phone="+919811111111")
    with dl.unit_of_work(actor="test") as uow:
        with pytest.raises(ValidationError):
            uow.patients.update(patient.id, phone="nope")
        assert uow.patients.get(patient.id).phone == "+919811111111"
        uow.patients.update(patient.id, blood_group="A-")
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.patients.get(patient.id)
        assert (saved.phone, saved.blood_group) == ("+919811111111", "A-")


def test_error_messages_never_echo_the_value(dl):
    secret = "Lakshmi 9876543210"
    with dl.unit_of_work(actor="test") as uow:
        for field in ("phone", "email", "abha_id", "mrn", "gender"):
            with pytest.raises(ValidationError) as raised:
                uow.patients.create(**patient_fields(**{field: secret}))
            assert secret not in str(raised.value)
            assert "9876543210" not in repr(raised.value)
