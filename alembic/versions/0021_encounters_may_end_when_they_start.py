"""Encounters: an end equal to the start is kept.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07

An encounter recorded as a moment (a telephone advice, a vaccination visit, most encounters
other systems export with their end equal to their start) had its end refused: the
database's ``end_after_start`` asked for an end strictly after the start, so an import
dropped the end of such encounters. The rule is now "not before the start", as for a
prescription's or an order's dates (``relational/rules/validation.py``); appointments keep
theirs (a slot has a length).

Written for a live database: the looser constraint is added ``NOT VALID`` beside the old
one (a brief ACCESS EXCLUSIVE lock, no scan), validated in a transaction of its own under
SHARE UPDATE EXCLUSIVE (every stored row holds it: the old rule implies it), then the old
one is dropped. On the embedded SQLite file the table is copied with the new constraint
(batch mode). The downgrade is refused while an encounter ends when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from dr_assistant_data.migrations.online import validate_constraint
from dr_assistant_data.migrations.refusals import Refusal

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "ck_encounters_end_after_start"
NEW = "ck_encounters_end_not_before_start"

squawk_exceptions = {
    "ban-drop-constraint": (
        "drops the stricter constraint only once the looser one beside it is validated, "
        "and its own looser constraint when an earlier attempt's validation failed"
    ),
}
"""Linter rules this revision breaks, with the reason (``migrations/lint.py``)."""

downgrade_refusal = Refusal(
    "SELECT 1 FROM encounters WHERE end_time = start_time",
    "revision 0021 cannot be downgraded while an encounter ends when it starts: the "
    "constraint before it refuses those encounters",
)
"""Checked before any step of a downgrade runs (``migrations/refusals.py``)."""


def upgrade() -> None:
    _replace(OLD, NEW, "end_time IS NULL OR end_time >= start_time")


def downgrade() -> None:
    _replace(NEW, OLD, "end_time IS NULL OR end_time > start_time")


def _replace(old: str, new: str, condition: str) -> None:
    """Put constraint ``new`` (``condition``) in the place of ``old``: on PostgreSQL added
    ``NOT VALID`` beside it, validated on its own, then ``old`` dropped."""
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("encounters") as batch:
            batch.drop_constraint(op.f(old), type_="check")
            batch.create_check_constraint(op.f(new), condition)
        return
    op.execute(f"ALTER TABLE encounters DROP CONSTRAINT IF EXISTS {new}")
    op.execute(f"ALTER TABLE encounters ADD CONSTRAINT {new} CHECK ({condition}) NOT VALID")
    validate_constraint("encounters", new)
    op.execute(f"ALTER TABLE encounters DROP CONSTRAINT IF EXISTS {old}")
