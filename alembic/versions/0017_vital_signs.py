"""Vital signs: a ``vital_signs`` table.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

One row per measurement (FHIR vital-signs Observation): blood pressure (systolic and
diastolic, two rows sharing ``panel_id``), heart rate, temperature, respiratory rate,
SpO2, weight, height, BMI, each a value in its UCUM unit at its time, in its encounter
(``models/chart.py``). Vitals already written in clinical notes stay there. A new table:
nothing locks a busy one, and its indexes are built with it. On PostgreSQL the table
follows the role layout of revision 0005.
Each row references its encounter by ``(encounter_id, patient_id)`` (revision 0014): the
database refuses one that joins another patient's encounter.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "require-concurrent-index-creation": "the table is new and empty",
}

OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"
TIMESTAMPTZ = sa.DateTime(timezone=True)
KINDS = (
    "systolic_bp",
    "diastolic_bp",
    "heart_rate",
    "temperature",
    "respiratory_rate",
    "oxygen_saturation",
    "weight",
    "height",
    "bmi",
)
STATUSES = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered_in_error",
    "unknown",
)


def _choice(name: str, values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def _partial_index(name: str, column: str) -> None:
    condition = sa.text(f"{column} IS NOT NULL")
    op.create_index(
        name, "vital_signs", [column], postgresql_where=condition, sqlite_where=condition
    )


def upgrade() -> None:
    op.create_table(
        "vital_signs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=True),
        sa.Column("kind", _choice("vital_sign_kind", KINDS), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("effective_at", TIMESTAMPTZ, nullable=False),
        sa.Column("status", _choice("vital_sign_status", STATUSES), nullable=False),
        sa.Column("panel_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("code_system", sa.String(length=255), nullable=True),
        sa.Column("code_display", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id", "patient_id"],
            ["encounters.id", "encounters.patient_id"],
            name=op.f("fk_vital_signs_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_vital_signs_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vital_signs")),
    )
    op.create_index(
        "ix_vital_signs_patient_id_effective_at", "vital_signs", ["patient_id", "effective_at"]
    )
    _partial_index("ix_vital_signs_encounter_id", "encounter_id")
    _partial_index("ix_vital_signs_panel_id", "panel_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE vital_signs OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON vital_signs TO {APP}")


def downgrade() -> None:
    op.drop_table("vital_signs")
