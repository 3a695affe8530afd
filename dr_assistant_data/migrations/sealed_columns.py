"""A revision step: identifiers of a table sealed in place.

Used by the revisions that turn plain columns into ``EncryptedText`` ones with a blind
index (``<name>_index``). Values are sealed with the keys of the engine running the
migration (the layer's settings), in the migration's transaction. Offline SQL cannot seal:
it gets a guard that refuses a table holding such values. The revisions never open them
again on a downgrade: they refuse while values are stored (``refusals.py``), so no
identifier is written back in plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ..relational.encryption import keyring_of


def seal(table: str, names: Sequence[str], revision: str) -> None:
    """Seal every stored value of ``table``'s ``names`` and set its blind index."""
    if op.get_context().as_sql:
        op.execute(_offline_guard(table, names, revision))
        return
    connection = op.get_bind()
    keyring = keyring_of(connection.dialect)
    indexes = [f"{name}_index" for name in names]
    rows = sa.table(
        table, sa.column("id", sa.Uuid()), *(sa.column(n, sa.Text()) for n in [*names, *indexes])
    )
    for row in connection.execute(sa.select(rows.c.id, *(rows.c[n] for n in names))).all():
        values: dict[str, str] = {}
        for name in names:
            stored = row._mapping[name]
            if stored is None:
                continue
            context = f"{table}.{name}"
            values[name] = keyring.seal(stored, context)
            values[f"{name}_index"] = keyring.blind_index(stored, context)
        if values:
            connection.execute(rows.update().where(rows.c.id == row.id).values(**values))


def _offline_guard(table: str, names: Sequence[str], revision: str) -> str:
    stored = " OR ".join(f"{name} IS NOT NULL" for name in names)
    refusal = f"revision {revision} must run online: stored identifiers need the layer''s keys"
    return f"""
DO $$ BEGIN
    IF EXISTS (SELECT FROM {table} WHERE {stored}) THEN
        RAISE EXCEPTION '{refusal}';
    END IF;
END $$
"""
