"""One patient per chart record: a problem, an allergy or a vital sign stays with the
patient it was recorded for, and joins only that patient's encounters.

Checked in ``before_flush`` (``session.py``), after validation and before any SQL, for
every write however it is made: a record whose encounter belongs to another patient is
refused (``ValidationError("encounter_id")``), and so is a change of a record's patient
(``ValidationError("patient_id")``): a record written to the wrong chart is corrected by
entering it in error and recording it again, never moved. A refused flush writes nothing.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import InstanceState, Session

from ...errors import ValidationError
from ..models import Allergy, Condition, Encounter, VitalSign

CHART_RECORDS = (Allergy, Condition, VitalSign)
ChartRecord = Allergy | Condition | VitalSign


def check_chart_records(session: Session, _context: Any, _instances: Any) -> None:
    """Refuse a chart record that would join another patient's encounter or change
    patient (see the module)."""
    for row in chain(session.new, session.dirty):
        if isinstance(row, CHART_RECORDS):
            _check(session, row, new=row in session.new)


def _check(session: Session, row: ChartRecord, *, new: bool) -> None:
    state: InstanceState[ChartRecord] = inspect(row)
    attrs = state.attrs
    if not new and (attrs.patient_id.history.deleted or attrs.patient.history.deleted):
        raise ValidationError("patient_id", "cannot change: the record belongs to its patient")
    joined = attrs.encounter_id.history.has_changes() or attrs.encounter.history.has_changes()
    if not (new or joined):
        return
    encounter = row.encounter
    if encounter is None and row.encounter_id is not None:
        encounter = session.get(Encounter, row.encounter_id)
    if encounter is not None and not _same_patient(encounter, row):
        raise ValidationError("encounter_id", "is an encounter of another patient")


def _same_patient(encounter: Encounter, row: ChartRecord) -> bool:
    """By id once both are known, else by the patient object both point to (new rows)."""
    if encounter.patient_id is not None and row.patient_id is not None:
        return encounter.patient_id == row.patient_id
    return encounter.patient is row.patient
