"""Allergies, structured: an ``allergies`` table, filled from the names patients list.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

One row per allergy of a patient (FHIR AllergyIntolerance): the substance as text and as
a code in its system, category, type, criticality, clinical and verification status,
reactions (manifestations with severity), onset and recorded date
(``models/chart.py``). ``patients.allergies`` stays, as the names of the active ones, kept
in step by the layer (``relational/allergy_list.py``).

The data move: each name a patient lists becomes a row (active, not verified), in the
list's order. On PostgreSQL it is one ``INSERT ... SELECT`` into the new table, in the
revision's transaction: it reads ``patients`` without locking a row, and the new table is
seen by no one until the commit, so nothing waits on it and a failure leaves nothing
behind. The downgrade drops the table: the names of the active allergies are already in
``patients.allergies``; the structured detail (codes, reactions, statuses) is lost.
Each row references its encounter by ``(encounter_id, patient_id)`` (revision 0014): the
database refuses one that joins another patient's encounter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "require-concurrent-index-creation": "the table is new and empty",
}

OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"
TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")

MOVE_NAMES = """
INSERT INTO allergies
    (id, patient_id, substance, clinical_status, reactions, version, created_at, updated_at)
SELECT gen_random_uuid(), patients.id, listed.name, 'active', '[]'::jsonb, 1,
       now() + listed.position * interval '1 microsecond', now()
FROM patients
CROSS JOIN LATERAL jsonb_array_elements_text(patients.allergies)
    WITH ORDINALITY AS listed(name, position)
"""


def _choice(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def upgrade() -> None:
    allergies = op.create_table(
        "allergies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=True),
        sa.Column("substance", sa.String(length=200), nullable=False),
        sa.Column("substance_code", sa.String(length=64), nullable=True),
        sa.Column("substance_system", sa.String(length=255), nullable=True),
        sa.Column(
            "category",
            _choice("allergy_category", "food", "medication", "environment", "biologic"),
            nullable=True,
        ),
        sa.Column("allergy_type", _choice("allergy_type", "allergy", "intolerance"), nullable=True),
        sa.Column(
            "criticality",
            _choice("allergy_criticality", "low", "high", "unable_to_assess"),
            nullable=True,
        ),
        sa.Column(
            "clinical_status",
            _choice("allergy_clinical_status", "active", "inactive", "resolved"),
            nullable=True,
        ),
        sa.Column(
            "verification_status",
            _choice(
                "allergy_verification_status",
                "unconfirmed",
                "confirmed",
                "refuted",
                "entered_in_error",
            ),
            nullable=True,
        ),
        sa.Column("reactions", JSON_DOCUMENT, nullable=False),
        sa.Column("onset_at", TIMESTAMPTZ, nullable=True),
        sa.Column("recorded_at", TIMESTAMPTZ, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id", "patient_id"],
            ["encounters.id", "encounters.patient_id"],
            name=op.f("fk_allergies_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_allergies_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allergies")),
    )
    op.create_index("ix_allergies_patient_id_created_at", "allergies", ["patient_id", "created_at"])
    condition = sa.text("encounter_id IS NOT NULL")
    op.create_index(
        "ix_allergies_encounter_id",
        "allergies",
        ["encounter_id"],
        postgresql_where=condition,
        sqlite_where=condition,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE allergies OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON allergies TO {APP}")
        op.execute(MOVE_NAMES)
    else:
        _move_names_embedded(allergies)


def _move_names_embedded(allergies: sa.Table) -> None:
    """The data move on the embedded SQLite file (one user, no live traffic)."""
    patients = sa.table("patients", sa.column("id", sa.Uuid()), sa.column("allergies", sa.JSON()))
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "patient_id": patient_id,
            "substance": name,
            "clinical_status": "active",
            "reactions": [],
            "version": 1,
            "created_at": now + timedelta(microseconds=position),
            "updated_at": now,
        }
        for patient_id, names in op.get_bind().execute(
            sa.select(patients.c.id, patients.c.allergies)
        )
        for position, name in enumerate(names or [], start=1)
    ]
    if rows:
        op.bulk_insert(allergies, rows)


def downgrade() -> None:
    op.drop_table("allergies")
