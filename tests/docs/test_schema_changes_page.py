"""The schema-changes guide names revision numbers (the file autogenerate writes next, the
worked example's ``revision`` and ``down_revision``, the numbers never used): held here to
the script directory, so a new revision cannot leave the guide naming one that exists."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from dr_assistant_data.migrations.numbering import next_revision_id

ROOT = Path(__file__).parents[2]
PAGE = (ROOT / "docs" / "how-to" / "schema-changes.md").read_text()
SCRIPTS = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))


def test_the_file_autogenerate_writes_next_is_numbered_as_the_hook_numbers_it():
    written = re.search(
        r"-> alembic/versions/(\d{4})_\w+\.py: .*\n#\s+highest revision, (\d{4})", PAGE
    )
    assert written is not None
    assert written.groups() == (next_revision_id(SCRIPTS), SCRIPTS.get_current_head())


def test_the_example_revision_follows_the_head():
    example = re.search(r'^revision = "(\d{4})"\ndown_revision = "(\d{4})"$', PAGE, re.M)
    assert example is not None
    assert example.groups() == (next_revision_id(SCRIPTS), SCRIPTS.get_current_head())
    assert f'"revision {next_revision_id(SCRIPTS)} cannot be downgraded' in PAGE


def test_the_numbers_said_to_be_missing_are_those_missing():
    used = {int(script.revision) for script in SCRIPTS.walk_revisions()}
    missing = [f"{number:04d}" for number in range(1, max(used)) if number not in used]
    heading = re.search(r"^## Why there are no revisions (.+)$", PAGE, re.M)
    assert heading is not None
    assert re.findall(r"\d{4}", heading.group(1)) == missing
