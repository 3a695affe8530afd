"""What a patient's chart holds beside the visits: problems, allergies, vital signs.

Each is coded as the source coded it (code, system, display text side by side) and
carries FHIR's statuses with the clinic's spelling (``entered_in_error`` for FHIR's
``entered-in-error``), so a record read in from another system goes back out unchanged.

None of these columns identifies the patient outside the clinic (codes, clinical text,
dates and measurements; the patient is an internal id), so, like encounters, none is
encrypted: the identifiers that are (ABHA number, phone, email) live on ``patients``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..base import Entity, Versioned, choice, partial_index
from ..types import MutableJSONList
from ..vocabulary import (
    ALLERGY_CATEGORIES,
    ALLERGY_CLINICAL_STATUSES,
    ALLERGY_CRITICALITIES,
    ALLERGY_TYPES,
    ALLERGY_VERIFICATION_STATUSES,
    CLINICAL_STATUSES,
    CONDITION_CATEGORIES,
    CONDITION_VERIFICATION_STATUSES,
    NOT_ALLERGIC,
    OBSERVATION_STATUSES,
    VITAL_SIGN_KINDS,
)
from .clinical import Encounter
from .people import Patient


def same_patients_encounter() -> ForeignKeyConstraint:
    """``(encounter_id, patient_id)`` references an encounter *of this patient*: the
    database refuses a record joining another patient's encounter, however it is written
    (``rules/chart_integrity.py`` refuses it first, before SQL, for writes through a session)."""
    return ForeignKeyConstraint(
        ["encounter_id", "patient_id"], ["encounters.id", "encounters.patient_id"]
    )


def encounter_relation(model: str) -> Any:
    """The record's encounter, kept through ``encounter_id`` alone: the patient column
    belongs to the patient relation, and the foreign key checks that both agree."""
    return relationship(
        primaryjoin=f"{model}.encounter_id == Encounter.id", foreign_keys=f"{model}.encounter_id"
    )


CODE_LENGTH = 64
SYSTEM_LENGTH = 255
DISPLAY_LENGTH = 500


class Condition(Versioned, Entity):
    """One entry of a patient's problem list (FHIR Condition): a diagnosis coded in
    ``code_system`` (SNOMED CT ``http://snomed.info/sct``, ICD-10
    ``http://hl7.org/fhir/sid/icd-10``...), with its statuses and dates, and the encounter
    it was recorded in."""

    __tablename__ = "conditions"
    __table_args__ = (
        CheckConstraint(
            "abatement_at IS NULL OR onset_at IS NULL OR abatement_at >= onset_at",
            name="abatement_after_onset",
        ),
        same_patients_encounter(),
        Index("ix_conditions_patient_id_recorded_at", "patient_id", "recorded_at"),
        partial_index("ix_conditions_encounter_id", "encounter_id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    encounter_id: Mapped[uuid.UUID | None]
    code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    code_system: Mapped[str | None] = mapped_column(String(SYSTEM_LENGTH))
    display: Mapped[str] = mapped_column(String(DISPLAY_LENGTH))
    category: Mapped[str | None] = mapped_column(choice("condition_category", CONDITION_CATEGORIES))
    clinical_status: Mapped[str | None] = mapped_column(
        choice("condition_clinical_status", CLINICAL_STATUSES), default="active"
    )
    verification_status: Mapped[str | None] = mapped_column(
        choice("condition_verification_status", CONDITION_VERIFICATION_STATUSES)
    )
    onset_at: Mapped[datetime | None]
    abatement_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime | None]

    patient: Mapped[Patient] = relationship()
    encounter: Mapped[Encounter | None] = encounter_relation("Condition")


class Allergy(Versioned, Entity):
    """One entry of a patient's allergy list (FHIR AllergyIntolerance): the substance as
    text and, when known, as a code in ``substance_system``; ``reactions`` is a list of
    ``{"manifestations": [{"code", "system", "display"}], "severity", "description"}``
    (``relational/rules/chart_values.py``). The patient's ``allergies`` list of names is kept
    from these rows (``relational/allergy_list.py``)."""

    __tablename__ = "allergies"
    __table_args__ = (
        same_patients_encounter(),
        Index("ix_allergies_patient_id_created_at", "patient_id", "created_at"),
        partial_index("ix_allergies_encounter_id", "encounter_id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    encounter_id: Mapped[uuid.UUID | None]
    substance: Mapped[str] = mapped_column(String(200))
    """The substance as the clinic names it: what ``Patient.allergies`` lists."""
    substance_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    substance_system: Mapped[str | None] = mapped_column(String(SYSTEM_LENGTH))
    category: Mapped[str | None] = mapped_column(choice("allergy_category", ALLERGY_CATEGORIES))
    allergy_type: Mapped[str | None] = mapped_column(choice("allergy_type", ALLERGY_TYPES))
    criticality: Mapped[str | None] = mapped_column(
        choice("allergy_criticality", ALLERGY_CRITICALITIES)
    )
    clinical_status: Mapped[str | None] = mapped_column(
        choice("allergy_clinical_status", ALLERGY_CLINICAL_STATUSES), default="active"
    )
    verification_status: Mapped[str | None] = mapped_column(
        choice("allergy_verification_status", ALLERGY_VERIFICATION_STATUSES)
    )
    reactions: Mapped[list[dict[str, Any]]] = mapped_column(MutableJSONList, default=list)
    onset_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime | None]

    patient: Mapped[Patient] = relationship()
    encounter: Mapped[Encounter | None] = encounter_relation("Allergy")

    def __init__(self, **fields: Any) -> None:
        # Active from the start, not only once inserted: the names list is rebuilt from
        # new rows before the INSERT applies the column default.
        fields.setdefault("clinical_status", "active")
        super().__init__(**fields)

    @property
    def is_active(self) -> bool:
        """Shown as the patient's allergy: clinically active and neither refuted nor
        entered in error."""
        return self.clinical_status == "active" and self.verification_status not in NOT_ALLERGIC


class VitalSign(Versioned, Entity):
    """One measurement of a vital sign (FHIR vital-signs Observation): ``value`` in the
    UCUM ``unit``, taken at ``effective_at``, in an encounter. A blood pressure is two
    rows (systolic, diastolic) sharing ``panel_id``, the observation they were taken as.
    ``code``/``code_system``/``code_display`` keep the source's own coding when it is
    finer than the kind (an oral temperature's LOINC code, say)."""

    __tablename__ = "vital_signs"
    __table_args__ = (
        same_patients_encounter(),
        Index("ix_vital_signs_patient_id_effective_at", "patient_id", "effective_at"),
        partial_index("ix_vital_signs_encounter_id", "encounter_id"),
        partial_index("ix_vital_signs_panel_id", "panel_id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    encounter_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(choice("vital_sign_kind", VITAL_SIGN_KINDS))
    value: Mapped[float] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(String(32))
    effective_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(
        choice("vital_sign_status", OBSERVATION_STATUSES), default="final"
    )
    panel_id: Mapped[uuid.UUID | None]
    code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    code_system: Mapped[str | None] = mapped_column(String(SYSTEM_LENGTH))
    code_display: Mapped[str | None] = mapped_column(String(DISPLAY_LENGTH))

    patient: Mapped[Patient] = relationship()
    encounter: Mapped[Encounter | None] = encounter_relation("VitalSign")
