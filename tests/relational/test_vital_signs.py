"""Vital signs (``uow.vital_signs``): measurements with their unit and time, kept with their
encounter and read with it or with the patient's chart."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dr_assistant_data import ValidationError
from dr_assistant_data.relational.vocabulary import VITAL_SIGNS
from dr_assistant_data.testing import EncounterFactory, VitalSignFactory, bind_factories
from tests.helpers.cache_helpers import read
from tests.helpers.layers import layer_with

TAKEN = datetime(2025, 5, 1, 4, 30, tzinfo=UTC)


def test_a_blood_pressure_is_two_readings_of_one_panel_read_with_the_encounter(dl):
    panel = uuid.uuid4()
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
        for kind, value in (("systolic_bp", 128), ("diastolic_bp", 84)):
            VitalSignFactory(
                encounter=encounter,
                kind=kind,
                value=value,
                unit="mm[Hg]",
                effective_at=TAKEN,
                panel_id=panel,
            )
        VitalSignFactory(encounter=encounter, effective_at=TAKEN - timedelta(minutes=5))
    taken = read(dl, lambda uow: uow.vital_signs.for_encounter(encounter.id))
    assert [(each.kind, each.value, each.unit) for each in taken] == [
        ("heart_rate", 72.0, "/min"),
        ("diastolic_bp", 84.0, "mm[Hg]"),
        ("systolic_bp", 128.0, "mm[Hg]"),
    ]
    assert {each.panel_id for each in taken[1:]} == {panel}


def test_the_patients_vitals_are_newest_first_and_leave_out_entered_in_error_on_request(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
        for hours, status in enumerate(["final", "entered_in_error", "amended"]):
            VitalSignFactory(
                encounter=encounter, effective_at=TAKEN + timedelta(hours=hours), status=status
            )
    patient = encounter.patient_id
    everything = read(dl, lambda uow: uow.vital_signs.for_patient(patient))
    assert [each.status for each in everything] == ["amended", "entered_in_error", "final"]
    standing = read(dl, lambda uow: uow.vital_signs.for_patient(patient, active_only=True))
    assert [each.status for each in standing] == ["amended", "final"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("value", math.nan),
        ("value", "72"),
        ("value", True),
        ("unit", "beats per minute"),
        ("kind", "pain_score"),
        ("effective_at", datetime(2025, 5, 1, 4, 30)),
    ],
)
def test_a_measurement_that_is_not_one_is_refused_naming_the_field(dl, field, value):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    fields = {
        "patient_id": encounter.patient_id,
        "encounter_id": encounter.id,
        "kind": "heart_rate",
        "value": 72,
        "unit": "/min",
        "effective_at": TAKEN,
    }
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.vital_signs.create(**{**fields, field: value})
    assert raised.value.field == field
    assert read(dl, lambda uow: uow.vital_signs.count()) == 0


def test_every_vital_sign_kind_has_its_loinc_code_and_ucum_unit():
    assert set(VITAL_SIGNS) == {
        "systolic_bp",
        "diastolic_bp",
        "heart_rate",
        "temperature",
        "respiratory_rate",
        "oxygen_saturation",
        "weight",
        "height",
        "bmi",
    }
    assert VITAL_SIGNS["bmi"] == ("39156-5", "kg/m2")


def test_reading_an_encounters_vitals_is_an_audited_chart_read(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        sign = VitalSignFactory()
    with layer_with(dl, audit_reads=True) as audited, audited.unit_of_work(actor="dr") as uow:
        uow.vital_signs.for_encounter(sign.encounter_id)
    events = read(dl, lambda uow: uow.audit.for_entity("patients", sign.patient_id))
    assert [event.changed_fields for event in events if event.action == "read"] == [["vital_signs"]]
