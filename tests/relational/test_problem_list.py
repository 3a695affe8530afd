"""The problem list (``uow.conditions``): coded problems read with the patient's chart,
validated before SQL, audited, and never served stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dr_assistant_data import ValidationError
from dr_assistant_data.relational.caching.policy import reads_written_by
from dr_assistant_data.relational.models import Condition
from dr_assistant_data.testing import ConditionFactory, EncounterFactory, bind_factories
from tests.helpers.cache_helpers import read
from tests.helpers.layers import layer_with

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DAY = datetime(2024, 3, 1, tzinfo=UTC)


def problems(dl, patient_id, **options):
    return read(dl, lambda uow: uow.conditions.for_patient(patient_id, **options))


def test_a_condition_keeps_its_code_system_statuses_dates_and_encounter(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    with dl.unit_of_work(actor="test") as uow:
        uow.conditions.create(
            patient_id=encounter.patient_id,
            encounter_id=encounter.id,
            code="E11.9",
            code_system=ICD10,
            display="Type 2 diabetes mellitus without complications",
            category="encounter_diagnosis",
            clinical_status="remission",
            verification_status="confirmed",
            onset_at=DAY,
            abatement_at=DAY + timedelta(days=400),
            recorded_at=DAY + timedelta(days=1),
        )
    [problem] = problems(dl, encounter.patient_id)
    assert (problem.code, problem.code_system, problem.clinical_status) == (
        "E11.9",
        ICD10,
        "remission",
    )
    assert (problem.encounter_id, problem.onset_at, problem.abatement_at) == (
        encounter.id,
        DAY,
        DAY + timedelta(days=400),
    )


def test_the_problem_list_is_newest_first_and_can_leave_out_what_is_not_in_force(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
        kinds = [
            ("active", None),
            ("resolved", "confirmed"),
            ("active", "refuted"),
            ("active", "entered_in_error"),
        ]
        for days, (clinical, verification) in enumerate(kinds):
            ConditionFactory(
                encounter=encounter,
                display=f"problem {days}",
                clinical_status=clinical,
                verification_status=verification,
                recorded_at=DAY + timedelta(days=days),
            )
    everything = problems(dl, encounter.patient_id)
    assert [each.display for each in everything] == [f"problem {n}" for n in (3, 2, 1, 0)]
    in_force = problems(dl, encounter.patient_id, active_only=True)
    assert [each.display for each in in_force] == ["problem 0"]


def test_an_abatement_before_the_onset_is_refused_before_sql(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.conditions.create(
            patient_id=encounter.patient_id,
            display="Fracture",
            onset_at=DAY,
            abatement_at=DAY - timedelta(days=1),
        )
    assert raised.value.field == "abatement_at"
    assert problems(dl, encounter.patient_id) == []


def test_a_status_outside_the_vocabulary_is_refused(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.conditions.create(
            patient_id=encounter.patient_id, display="Asthma", clinical_status="cured"
        )
    assert raised.value.field == "clinical_status"


def test_each_condition_write_is_audited_under_its_own_record(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        problem = ConditionFactory()
    with dl.unit_of_work(actor="test") as uow:
        uow.conditions.update(problem.id, clinical_status="resolved")
    events = read(dl, lambda uow: uow.audit.for_entity("conditions", problem.id))
    assert [(event.action, event.changed_fields[-1:]) for event in events][1:] == [
        ("update", ["clinical_status"])
    ]
    assert events[0].action == "create"


def test_reading_the_problem_list_is_an_audited_chart_read(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        problem = ConditionFactory()
    with layer_with(dl, audit_reads=True) as audited, audited.unit_of_work(actor="dr") as uow:
        uow.conditions.for_patient(problem.patient_id)
    events = read(dl, lambda uow: uow.audit.for_entity("patients", problem.patient_id))
    reads = [event.changed_fields for event in events if event.action == "read"]
    assert reads == [["conditions"]]


def test_the_problem_list_is_not_cached_so_a_committed_change_is_read_at_once(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        problem = ConditionFactory()
    assert [each.clinical_status for each in problems(dl, problem.patient_id)] == ["active"]
    with dl.unit_of_work(actor="test") as uow:
        uow.conditions.get(problem.id).verification_status = "entered_in_error"
    assert problems(dl, problem.patient_id, active_only=True) == []
    assert reads_written_by(Condition) == []  # on purpose: caching/policy.py says why
