"""Cache key names: ``<prefix><database>:v1:<kind>:<schema tag>:{<id>}[:<date>]``. Ids and
dates only, never patient data. ``<database>`` is the tag of the database whose cache it is
(``namespace.py``): every key the layer keeps (cached reads, their generations and locks,
delivery marks, the general service's values, login sessions) is under it, so two
databases sharing a Redis and a prefix never read each other's, even when their ids agree.

The schema tag is a digest of the cached table's columns, so a migration that changes them
moves every key of that table aside instead of reading old shapes.

The id in braces is a Redis Cluster hash tag: a key, its generation (``:gen``) and its lock
(``:lock``) hash to one slot, so the scripts and transactions that touch them together work
on a cluster (the prefix must therefore hold no braces)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from functools import cache

from sqlalchemy import Table

FORMAT = "v1"
GENERATION_SUFFIX = ":gen"
LOCK_SUFFIX = ":lock"
DELIVERED_KIND = "delivered"
DELIVERED_TTL_MS = 600_000


@cache
def schema_tag(table: Table) -> str:
    shape = ",".join(f"{column.name}:{column.type!r}" for column in table.columns)
    return hashlib.blake2b(shape.encode(), digest_size=4).hexdigest()


class CacheKeys:
    """Every key the layer keeps, from the operator's prefix and the database's tag."""

    def __init__(self, prefix: str, database: str) -> None:
        self.prefix = f"{prefix}{database}:"
        self.namespace = f"{self.prefix}{FORMAT}:"

    def read(self, kind: str, table: Table, *parts: uuid.UUID | date) -> str:
        """A cached read of rows of ``table``, named by ``parts``: the first (an id) is
        the hash tag, the others (a day) qualify it."""
        id, *qualifiers = parts
        tail = "".join(f":{qualifier}" for qualifier in qualifiers) if qualifiers else ""
        return f"{self.namespace}{kind}:{schema_tag(table)}:{{{id}}}{tail}"

    def entity(self, table: Table, id: uuid.UUID) -> str:
        """A row of ``table`` by id."""
        return self.read(table.name, table, id)

    def delivered(self, outbox_row: int) -> str:
        """Set, with the invalidations of outbox row ``outbox_row``, by their delivery."""
        return f"{self.namespace}{DELIVERED_KIND}:{outbox_row}"

    @property
    def claim(self) -> str:
        """The identity of the database the namespace belongs to (outside ``namespace``:
        emptying the cache leaves it)."""
        return f"{self.prefix}database"

    @property
    def timeline(self) -> str:
        """The newest database timeline the namespace was emptied under (outside
        ``namespace``, as the claim)."""
        return f"{self.prefix}timeline"

    def server(self, slot_tag: str = "") -> str:
        """The ``run_id`` of the server the namespace was last emptied on; on a Cluster,
        of the node serving the slot ``slot_tag`` hashes to (one such key per node)."""
        return f"{self.namespace}server" + (f":{{{slot_tag}}}" if slot_tag else "")

    def general(self, key: str) -> str:
        """A caller's key for the general cache service (callers must keep PHI out)."""
        return f"{self.prefix}kv:{key}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def user_sessions(self, user_id: str) -> str:
        return f"{self.prefix}user-sessions:{user_id}"
