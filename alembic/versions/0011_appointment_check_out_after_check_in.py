"""Appointments: the database refuses a check-out before the check-in.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28

The layer's rules already refuse it (``relational/rules/validation.py``); rows written by other
means now are too. Written for a live database: the constraint is added ``NOT VALID``
(a brief ACCESS EXCLUSIVE lock, no scan, under the migration's ``lock_timeout``), its
addition committed, then validated in a transaction of its own, which scans the table
under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile
(``migrations/online.py``). If a stored row breaks the rule, the layer's ``migrate``
refuses before any revision runs (``upgrade_refusal``), naming this revision; correct the
rows and run the migration again. A row written after that check fails the validation:
the constraint stays ``NOT VALID`` (still checked for new rows). PostgreSQL only: on the
embedded SQLite file the rule stays in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from dr_assistant_data.migrations.online import validate_constraint
from dr_assistant_data.migrations.refusals import Refusal

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_appointments_check_out_after_check_in"

squawk_exceptions = {
    "ban-drop-constraint": (
        "drops only its own constraint, left NOT VALID by an attempt whose validation "
        "failed, so that running the revision again adds it afresh"
    ),
}
"""Linter rules this revision breaks, with the reason (``migrations/lint.py``)."""

upgrade_refusal = Refusal(
    "SELECT 1 FROM appointments WHERE check_out_time < check_in_time",
    "revision 0011 cannot be applied while an appointment's check-out precedes its "
    "check-in: correct those appointments first",
    dialect="postgresql",
)
"""Checked before any step of an upgrade runs (``migrations/refusals.py``)."""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE appointments DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
    op.execute(
        f"ALTER TABLE appointments ADD CONSTRAINT {CONSTRAINT} "
        "CHECK (check_out_time IS NULL OR check_in_time IS NULL "
        "OR check_out_time >= check_in_time) NOT VALID"
    )
    validate_constraint("appointments", CONSTRAINT)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE appointments DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
