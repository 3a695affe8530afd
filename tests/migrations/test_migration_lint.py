"""Specifications of the migration linter (squawk over each revision's offline SQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dr_assistant_data.migrations import lint
from dr_assistant_data.migrations.relational import script_location

UNSAFE_REVISION = """
from alembic import op
import sqlalchemy as sa

revision = "9001"
down_revision = "{head}"
{exceptions}

def upgrade():
    {statement}


def downgrade():
    pass
"""

UNSAFE = {
    "require-concurrent-index-creation": 'op.create_index("ix_tasks_title", "tasks", ["title"])',
    "adding-required-field": (
        'op.add_column("patients", sa.Column("ward", sa.Text(), nullable=False))'
    ),
    "changing-column-type": 'op.alter_column("alerts", "title", type_=sa.String(300))',
    "adding-foreign-key-constraint": (
        'op.create_foreign_key("fk_alerts_source", "alerts", "users", ["user_id"], ["id"])'
    ),
}
"""A statement that takes a lock blocking a busy table, by the rule that catches it."""


def revisions_with(tmp_path: Path, statement: str, exceptions: str = "") -> str:
    """The real revisions plus one that runs ``statement``."""
    scripts = tmp_path / "alembic"
    shutil.copytree(script_location(), scripts)
    head = max(path.name[:4] for path in (scripts / "versions").glob("[0-9]*.py"))
    (scripts / "versions" / "9001_unsafe.py").write_text(
        UNSAFE_REVISION.format(head=head, statement=statement, exceptions=exceptions)
    )
    return str(scripts)


def test_every_revision_passes_the_linter(capsys):
    assert lint.main([]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("rule", sorted(UNSAFE))
def test_a_revision_that_blocks_a_busy_table_fails_with_the_linters_message(tmp_path, capsys, rule):
    location = revisions_with(tmp_path, UNSAFE[rule])

    assert lint.main(["--script-location", location]) == 1
    output = capsys.readouterr().out
    assert "revision 9001 (9001_unsafe.py):" in output
    assert rule in output


def test_a_rule_excepted_in_a_revision_with_its_reason_passes(tmp_path, capsys):
    rule = "require-concurrent-index-creation"
    exceptions = f'squawk_exceptions = {{"{rule}": "the table is new"}}'
    location = revisions_with(tmp_path, UNSAFE[rule], exceptions)

    assert lint.main(["--script-location", location]) == 0, capsys.readouterr().out
