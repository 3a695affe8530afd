"""People's names in one Unicode form (NFC), without invisible characters.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-07

The layer now writes and searches names in NFC and refuses invisible characters in them
(``values/fields.py``, ``PersonName``). This brings the names stored before to the same
form: patients' first and last names, staff's full names. Each is normalised to NFC, and
the characters the layer now refuses (direction controls, zero-width and other format
characters; a joiner that is part of an Indic or Arabic-script spelling stays) are removed,
so it reads as before and is found by the same name typed on any keyboard. The trigram
indexes of the name search follow the rows. Rows are read a page at a time by id (memory
stays flat) and only changed names are written. A name that would be left blank, or too
long for its column (NFC writes some precomposed Devanagari letters as two characters),
is left as it was.

Names are stored in plain text (no blind index covers them), so nothing else is
recomputed; a cached copy of a row keeps the old form until it expires (the TTL of
cached reads), canonically equivalent to the new one. Offline SQL cannot run Python: it
gets a guard that refuses a database holding a name not in NFC. The downgrade changes
nothing: the earlier forms are not kept, and the NFC form is valid for the schema before.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from dr_assistant_data.values.fields import without_invisible

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = {"patients": {"first_name": 100, "last_name": 100}, "users": {"full_name": 200}}
"""The name columns of each table, with their length."""
PAGE = 1000


def upgrade() -> None:
    if op.get_context().as_sql:
        op.execute(_offline_guard())
        return
    for table, lengths in NAMES.items():
        _normalise(op.get_bind(), table, lengths)


def downgrade() -> None:
    pass


def _normalise(connection: sa.Connection, table: str, lengths: Mapping[str, int]) -> None:
    rows = sa.table(table, sa.column("id", sa.Uuid()), *(sa.column(name) for name in lengths))
    rewrite = (
        rows.update()
        .where(rows.c.id == sa.bindparam("row_id"))
        .values({name: sa.bindparam(name) for name in lengths})
    )
    after = None
    while True:
        page = sa.select(rows).order_by(rows.c.id).limit(PAGE)
        if after is not None:
            page = page.where(rows.c.id > after)
        found = connection.execute(page).all()
        changed = [_rewritten(row._mapping, lengths) for row in found]
        if any(changed):
            connection.execute(rewrite, [row for row in changed if row is not None])
        if len(found) < PAGE:
            return
        after = found[-1].id


def _rewritten(row: Mapping[str, Any], lengths: Mapping[str, int]) -> dict[str, Any] | None:
    """The row's names in the layer's form, ``None`` when they are in it already."""
    names = {name: _name_form(row[name], length) for name, length in lengths.items()}
    if all(names[name] == row[name] for name in lengths):
        return None
    return {"row_id": row["id"], **names}


def _name_form(stored: str | None, length: int) -> str | None:
    if stored is None:
        return None
    name = without_invisible(unicodedata.normalize("NFC", stored)).strip()
    return name if name and len(name) <= length else stored


def _offline_guard() -> str:
    tests = {
        table: " OR ".join(f"{name} IS NOT NFC NORMALIZED" for name in lengths)
        for table, lengths in NAMES.items()
    }
    stored = " OR ".join(
        f"EXISTS (SELECT FROM {table} WHERE {test})" for table, test in tests.items()
    )
    return f"""
DO $$ BEGIN
    IF {stored} THEN
        RAISE EXCEPTION 'revision 0020 must run online: stored names need normalising';
    END IF;
END $$
"""
