"""The problem list: a ``conditions`` table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

One row per problem of a patient (FHIR Condition): its code in its system (SNOMED CT,
ICD-10...), display text, category, clinical and verification status, onset, abatement,
recorded date and the encounter it was recorded in (``models/chart.py``). A new table:
nothing locks a busy one, and its indexes are built with it. On PostgreSQL the table follows
the role layout of revision 0005.
Each row references its encounter by ``(encounter_id, patient_id)`` (revision 0014): the
database refuses one that joins another patient's encounter.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "require-concurrent-index-creation": "the table is new and empty",
}

OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"
TIMESTAMPTZ = sa.DateTime(timezone=True)


def _choice(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "conditions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("code_system", sa.String(length=255), nullable=True),
        sa.Column("display", sa.String(length=500), nullable=False),
        sa.Column(
            "category",
            _choice("condition_category", "problem_list_item", "encounter_diagnosis"),
            nullable=True,
        ),
        sa.Column(
            "clinical_status",
            _choice(
                "condition_clinical_status",
                "active",
                "recurrence",
                "relapse",
                "inactive",
                "remission",
                "resolved",
            ),
            nullable=True,
        ),
        sa.Column(
            "verification_status",
            _choice(
                "condition_verification_status",
                "unconfirmed",
                "provisional",
                "differential",
                "confirmed",
                "refuted",
                "entered_in_error",
            ),
            nullable=True,
        ),
        sa.Column("onset_at", TIMESTAMPTZ, nullable=True),
        sa.Column("abatement_at", TIMESTAMPTZ, nullable=True),
        sa.Column("recorded_at", TIMESTAMPTZ, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.CheckConstraint(
            "abatement_at IS NULL OR onset_at IS NULL OR abatement_at >= onset_at",
            name=op.f("ck_conditions_abatement_after_onset"),
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id", "patient_id"],
            ["encounters.id", "encounters.patient_id"],
            name=op.f("fk_conditions_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_conditions_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conditions")),
    )
    op.create_index(
        "ix_conditions_patient_id_recorded_at", "conditions", ["patient_id", "recorded_at"]
    )
    condition = sa.text("encounter_id IS NOT NULL")
    op.create_index(
        "ix_conditions_encounter_id",
        "conditions",
        ["encounter_id"],
        postgresql_where=condition,
        sqlite_where=condition,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE conditions OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON conditions TO {APP}")


def downgrade() -> None:
    op.drop_table("conditions")
