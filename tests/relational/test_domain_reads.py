"""The reads the application makes: right rows, right order, a bounded number of queries."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dr_assistant_data import ValidationError
from dr_assistant_data.testing import (
    AlertFactory,
    AppointmentFactory,
    DoctorFactory,
    EncounterFactory,
    NurseFactory,
    OrderFactory,
    PatientFactory,
    PrescriptionFactory,
    TaskFactory,
    UserFactory,
    bind_factories,
)

IST = ZoneInfo("Asia/Kolkata")
DAY = datetime(2031, 3, 10).date()


def at(hour: int, minute: int = 0, day=DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), IST)


def book(doctor, count: int, day=DAY, **fields):
    start = at(8, day=day)
    return [
        AppointmentFactory(
            doctor=doctor,
            start_time=start + timedelta(minutes=20 * i),
            end_time=start + timedelta(minutes=20 * i + 15),
            **fields,
        )
        for i in range(count)
    ]


def test_login_finds_only_active_users(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        UserFactory(username="active.one")
        UserFactory(username="gone.one", status="suspended")
    with dl.unit_of_work(actor="test") as uow:
        assert uow.users.get_by_username("active.one").username == "active.one"
        assert uow.users.get_by_username("gone.one") is None
        assert uow.users.get_by_username("nobody") is None


def test_patients_are_found_by_mrn_and_by_abha_number_in_any_format(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory(mrn="MRN-000777", abha_id="91-1111-2222-3333")
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.find_by_mrn("MRN-000777").id == patient.id
        assert uow.patients.find_by_abha_id("91111122223333").id == patient.id
        assert uow.patients.find_by_abha_id("91 1111 2222 3333").id == patient.id
        assert uow.patients.find_by_mrn("MRN-000778") is None
        with pytest.raises(ValidationError):
            uow.patients.find_by_abha_id("%")


def test_schedule_for_is_one_query_with_patients_loaded_whatever_the_day_holds(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        booked = book(doctor, 30)
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        schedule = uow.appointments.schedule_for(doctor.id, DAY)
        names = [appointment.patient.last_name for appointment in schedule]
    assert queries.count == 1  # appointments with their patients, cached as one entry
    assert [a.id for a in schedule] == [a.id for a in booked]
    assert len(names) == 30


def test_schedule_for_uses_the_clinics_local_day(dl):
    """09:00 IST is 03:30 UTC; 01:00 IST the next day is still 19:30 UTC of this day."""
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        morning = AppointmentFactory(doctor=doctor, start_time=at(9), end_time=at(9, 15))
        AppointmentFactory(
            doctor=doctor,
            start_time=at(1, day=DAY + timedelta(days=1)),
            end_time=at(1, 15, day=DAY + timedelta(days=1)),
        )
        AppointmentFactory(doctor=doctor, start_time=at(23, 40), end_time=at(23, 55))
    with dl.unit_of_work(actor="test") as uow:
        schedule = uow.appointments.schedule_for(doctor.id, DAY.isoformat())
    assert [a.start_time.astimezone(IST).hour for a in schedule] == [9, 23]
    assert schedule[0].id == morning.id


def test_an_appointment_read_back_shows_the_clinics_clock(dl):
    """Stored and read as UTC (04:30); the clinic's clock says 10:00."""
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        appointment = AppointmentFactory(start_time=at(10), end_time=at(10, 15))
    with dl.unit_of_work(actor="test") as uow:
        [read] = uow.appointments.schedule_for(appointment.doctor_id, DAY)
        local = uow.clinic_time(read.start_time)

    assert read.start_time.utcoffset() == timedelta(0)
    assert (local.hour, local.minute, local.tzinfo) == (10, 0, IST)


def test_a_naive_datetime_has_no_clinic_time(dl):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        uow.clinic_time(datetime(2031, 3, 10, 4, 30))

    assert refused.value.field == "moment"


def test_schedule_for_leaves_out_cancelled_and_no_show_unless_asked(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        book(doctor, 1)
        book(doctor, 1, status="cancelled")
        AppointmentFactory(doctor=doctor, start_time=at(12), end_time=at(12, 15), status="no_show")
        book(DoctorFactory(), 2)
    with dl.unit_of_work(actor="test") as uow:
        assert len(uow.appointments.schedule_for(doctor.id, DAY)) == 1
        assert len(uow.appointments.schedule_for(doctor.id, DAY, include_cancelled=True)) == 3


def test_patient_age_is_in_completed_years():
    from dr_assistant_data.relational.models import Patient

    patient = Patient(date_of_birth=datetime(1980, 5, 1).date())
    assert patient.age_on(datetime(2031, 4, 30).date()) == 50
    assert patient.age_on(datetime(2031, 5, 1).date()) == 51


@pytest.mark.parametrize("history", [10, 120])
def test_the_patient_timeline_costs_the_same_whatever_the_history(dl, count_queries, history):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory()
        doctor = DoctorFactory()
        for n in range(history):
            encounter = EncounterFactory(
                patient=patient,
                doctor=doctor,
                start_time=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=n),
            )
            PrescriptionFactory(encounter=encounter)
            OrderFactory(encounter=encounter)
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        encounters = uow.encounters.for_patient(patient.id, limit=20)
        prescriptions = uow.prescriptions.for_patient(patient.id, limit=20)
        orders = uow.orders.for_patient(patient.id, limit=20)
        shown = (
            [e.doctor.full_name for e in encounters]
            + [i.medication_name for p in prescriptions for i in p.items]
            + [i.item_name for o in orders for i in o.items]
        )
    # encounters, their doctors (cached on their own), prescriptions+doctor, items, orders, items
    assert queries.count == 6
    assert len(encounters) == min(history, 20)
    assert len(shown) == min(history, 20) * 4
    starts = [e.start_time for e in encounters]
    assert starts == sorted(starts, reverse=True)


def test_encounter_page_reads_its_prescriptions_and_orders(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
        PrescriptionFactory(encounter=encounter)
        OrderFactory(encounter=encounter)
        PrescriptionFactory()
    with dl.unit_of_work(actor="test") as uow:
        assert len(uow.prescriptions.for_encounter(encounter.id)) == 1
        assert len(uow.orders.for_encounter(encounter.id)[0].items) == 1


def test_pending_tasks_come_most_urgent_first_then_earliest_due(dl, count_queries):
    due = datetime(2031, 1, 1, tzinfo=UTC)
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        nurse = NurseFactory()
        patient = PatientFactory()
        TaskFactory(assignee=nurse, title="low", priority="low", due_date=due, patient=patient)
        TaskFactory(assignee=nurse, title="high-late", priority="high", due_date=due + timedelta(1))
        TaskFactory(assignee=nurse, title="high-soon", priority="high", due_date=due)
        TaskFactory(assignee=nurse, title="urgent-undated", priority="urgent", patient=patient)
        TaskFactory(assignee=nurse, title="done", priority="urgent", status="completed")
        TaskFactory(title="someone else's", priority="urgent")
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        tasks = uow.tasks.pending_for(nurse.id)
        about = [task.patient.id if task.patient else None for task in tasks]
    assert [task.title for task in tasks] == ["urgent-undated", "high-soon", "high-late", "low"]
    assert about == [patient.id, None, None, patient.id]
    assert queries.count == 1


def test_unread_alerts_come_most_severe_first_with_their_patient_in_one_query(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        for severity in ("low", "critical", "medium"):
            AlertFactory(user=doctor, severity=severity, title=severity, patient=PatientFactory())
        read = AlertFactory(user=doctor, severity="critical", title="read")
    with dl.unit_of_work(actor="test") as uow:
        uow.alerts.mark_read(read.id)
    with dl.unit_of_work(actor="test") as uow:
        with count_queries() as queries:
            alerts = uow.alerts.unread_for(doctor.id)
            names = [alert.patient.last_name for alert in alerts]
        assert queries.count == 1
        assert len(names) == 3
        assert [a.title for a in alerts] == ["critical", "medium", "low"]
        assert uow.alerts.unread_count(doctor.id) == 3
        assert uow.alerts.get(read.id).read_at is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda uow: uow.appointments.schedule_for("nope", DAY),
        lambda uow: uow.appointments.schedule_for(DoctorFactory.build().id or "x", "10/03/2031"),
        lambda uow: uow.encounters.for_patient("1; DROP TABLE encounters"),
        lambda uow: uow.tasks.pending_for(None),
        lambda uow: uow.alerts.unread_for("x", limit=-1),
    ],
)
def test_domain_reads_refuse_malformed_arguments(dl, call):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError):
        call(uow)
