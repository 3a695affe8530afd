"""Documents refer to relational rows: check that those rows exist, in one query."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from ..relational.models import Encounter, Patient, User
from ..values.fields import as_uuid


def check_encounter(session: Session, encounter_id: Any, patient_id: Any, doctor_id: Any) -> None:
    """The encounter exists and is the patient's; the patient and the doctor exist (and
    are not deleted). Rows written earlier in the same unit of work count."""
    encounter, patient, doctor = (
        as_uuid(encounter_id, "encounter_id"),
        as_uuid(patient_id, "patient_id"),
        as_uuid(doctor_id, "doctor_id"),
    )
    row = session.execute(
        select(
            select(Encounter.patient_id).where(Encounter.id == encounter).scalar_subquery(),
            exists().where(Patient.id == patient, Patient.deleted_at.is_(None)),
            exists().where(User.id == doctor, User.deleted_at.is_(None)),
        )
    ).one()
    if row[0] is None:
        raise ValidationError("encounter_id", "refers to a record that does not exist")
    if not row[1]:
        raise ValidationError("patient_id", "refers to a record that does not exist")
    if row[0] != patient:
        raise ValidationError("patient_id", "must be the patient of the encounter")
    if not row[2]:
        raise ValidationError("doctor_id", "refers to a record that does not exist")


def check_user(session: Session, user_id: Any, field: str) -> uuid.UUID:
    """The user exists and is not deleted; returns the id."""
    user = as_uuid(user_id, field)
    if not session.scalar(select(exists().where(User.id == user, User.deleted_at.is_(None)))):
        raise ValidationError(field, "refers to a record that does not exist")
    return user
