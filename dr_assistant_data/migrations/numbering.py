"""Revision ids numbered like the repository's (``0001``, ``0002``...), not Alembic's random
hex: ``alembic revision --autogenerate`` names the new revision one past the highest
number in the script directory, whatever revisions merged branches brought in."""

from __future__ import annotations

from collections.abc import Iterable

from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

WIDTH = 4


def next_revision_id(scripts: ScriptDirectory) -> str:
    numbers = [
        int(script.revision) for script in scripts.walk_revisions() if script.revision.isdigit()
    ]
    return f"{max(numbers, default=0) + 1:0{WIDTH}d}"


def number_new_revisions(
    context: MigrationContext, revision: object, directives: Iterable[MigrationScript]
) -> None:
    """Alembic's ``process_revision_directives`` hook: the next number for the new
    revision (``env.py`` leaves it out when ``--rev-id`` names one)."""
    if context.script is None:
        return
    for directive in directives:
        directive.rev_id = next_revision_id(context.script)
