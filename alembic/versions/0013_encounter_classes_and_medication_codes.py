"""Every encounter class a clinic moves in, its coded type, and prescriptions as written.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

* ``encounters.encounter_type`` gains a type for each v3 ActEncounterCode class the clinic
  had none for (inpatient, acute care, non-acute, observation, pre-admission, short stay,
  field visit: ``vocabulary.ENCOUNTER_CLASSES``), and ``type_code``, ``type_system``,
  ``type_display`` keep the source's coded encounter type (SNOMED CT, say);
* ``prescriptions.status`` gains ``on_hold``, ``stopped``, ``completed`` and
  ``entered_in_error`` (a stopped prescription is not a cancelled one); the column widens
  from 9 to 16 characters;
* ``prescription_items`` gains ``medication_code`` and ``medication_system`` (RxNorm...).

Written for a live database: the new columns are nullable (no rewrite); widening a
VARCHAR is binary-coercible on PostgreSQL (no rewrite, no scan); each CHECK is replaced by
a wider one added ``NOT VALID`` and validated on its own (every stored value passes the
wider check). On the embedded SQLite file, which cannot alter a CHECK, the two tables are
rebuilt (Alembic's batch mode; one user, no live traffic).

The downgrade refuses to run (``downgrade_refusal``, checked before any step of the
migration runs) while a row holds a value the older lists lack, rather than destroying
it; the added columns are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dr_assistant_data.migrations.online import validate_constraint
from dr_assistant_data.migrations.refusals import Refusal

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "ban-drop-constraint": (
        "each CHECK is replaced by a wider one, added NOT VALID and validated on its own; "
        "between the two statements of one transaction no row can slip in"
    ),
    "changing-column-type": (
        "VARCHAR(9) to VARCHAR(16) is binary-coercible on PostgreSQL: no rewrite, no scan"
    ),
    "prefer-robust-stmts": (
        "the one statement it flags, widening prescriptions.status, is a no-op when rerun; "
        "the columns are added IF NOT EXISTS and the checks dropped IF EXISTS first"
    ),
}

OLD_TYPES = ("office_visit", "telemedicine", "emergency", "home_visit")
TYPES = (
    *OLD_TYPES,
    "inpatient",
    "acute_care",
    "non_acute",
    "observation",
    "preadmission",
    "short_stay",
    "field_visit",
)
OLD_STATUSES = ("draft", "signed", "sent", "dispensed", "cancelled")
STATUSES = (*OLD_STATUSES, "on_hold", "stopped", "completed", "entered_in_error")
CHECKS = (
    ("encounters", "encounter_type", "ck_encounters_encounter_type", OLD_TYPES, TYPES),
    ("prescriptions", "status", "ck_prescriptions_prescription_status", OLD_STATUSES, STATUSES),
)


def _listed(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


downgrade_refusal = Refusal(
    " UNION ALL ".join(
        f"SELECT 1 FROM {table} WHERE {column} NOT IN ({_listed(old)})"  # noqa: S608
        for table, column, _, old, _ in CHECKS
    ),
    "revision 0013 cannot be downgraded while an encounter type or a prescription status "
    "holds a value revision 0012 cannot store; change those rows first",
)
"""Checked before any step of a downgrade runs (``migrations/refusals.py``)."""


def _replace_check(table: str, column: str, name: str, values: Sequence[str]) -> None:
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({column} IN ({_listed(values)})) "
        "NOT VALID"
    )
    validate_constraint(table, name)


NEW_COLUMNS = (
    ("encounters", "type_code", 64),
    ("encounters", "type_system", 255),
    ("encounters", "type_display", 500),
    ("prescription_items", "medication_code", 64),
    ("prescription_items", "medication_system", 255),
)
"""Nullable VARCHAR columns added: (table, column, length)."""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column, length in NEW_COLUMNS:
        if postgres:  # the checks below commit on their own: every step can be rerun
            op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} VARCHAR({length})")
        else:
            op.add_column(table, sa.Column(column, sa.String(length=length), nullable=True))
    if not postgres:
        _rebuild_embedded(new=True)
        return
    op.execute("ALTER TABLE prescriptions ALTER COLUMN status TYPE VARCHAR(16)")
    for table, column, name, _, values in CHECKS:
        _replace_check(table, column, name, values)


def _rebuild_embedded(*, new: bool) -> None:
    """SQLite cannot alter a CHECK or a type: each table is rebuilt (Alembic's batch
    mode), the references to it checked at the commit rather than while it is renamed."""
    op.execute("PRAGMA defer_foreign_keys = ON")
    for table, column, name, old, values in CHECKS:
        kind = name.removeprefix(f"ck_{table}_")
        before, after = (old, values) if new else (values, old)
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                existing_type=sa.Enum(
                    *before, name=kind, native_enum=False, create_constraint=True
                ),
                type_=sa.Enum(*after, name=kind, native_enum=False, create_constraint=True),
                existing_nullable=False,
            )


def downgrade() -> None:
    downgrade_refusal.enforce()
    if op.get_bind().dialect.name == "postgresql":
        for table, column, name, old, _ in CHECKS:
            _replace_check(table, column, name, old)
        op.execute("ALTER TABLE prescriptions ALTER COLUMN status TYPE VARCHAR(9)")
    else:
        _rebuild_embedded(new=False)
    for table, column, _ in reversed(NEW_COLUMNS):
        op.drop_column(table, column)
