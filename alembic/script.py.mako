"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Runs on a live database (README, "Migrations on a live database"): every statement
waits at most MIGRATION_LOCK_TIMEOUT for its lock. Before committing, check each step:
- expand now, contract in a later release: new columns nullable (or with a constant
  default), old columns dropped only once no deployed code reads them;
- CREATE INDEX / DROP INDEX with postgresql_concurrently=True, inside
  ``with op.get_context().autocommit_block():``;
- constraints and foreign keys added NOT VALID, then
  ``dr_assistant_data.migrations.online.validate_constraint(table, name)``;
- data moved in batches of a few thousand rows, each batch its own transaction;
- no type change that rewrites the table: a new column, a backfill, then a swap.
A rule of ``python -m dr_assistant_data.migrations.lint`` broken on purpose goes in a
module-level ``squawk_exceptions = {"rule": "reason"}``. Replace this paragraph with
what the revision does and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
${imports if imports else ""}
from alembic import op

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
