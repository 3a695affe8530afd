"""Whose cache it is: every key the layer keeps in Redis is named under its database's tag.

One Redis commonly serves many databases (one per clinic, staging copies of production,
test clones) under one ``REDIS_KEY_PREFIX``, and copies share their rows' ids. So the
namespace is derived from the database's identity, which every copy gets anew:

* PostgreSQL: the cluster's ``system_identifier`` (``pg_control_system()``, executable by
  every role by default) and the database's OID. ``CREATE DATABASE ... TEMPLATE`` makes a
  new OID; a dump restored into another database, on this server or another, makes a new
  OID or lands on another cluster; a streaming replica, which must share the cache, shares
  both. A physical copy (a base backup or a PITR clone started as a server of its own)
  shares both as a replica does: run it alongside its original only under another prefix.
* SQLite: the database file's device and inode (a copied file is a new one); an in-memory
  database, private to its engine, a random identity of its own.

The identity is read once per layer, on the first connection its engine makes (no
connection of its own is checked out then, so a pool kept busy cannot block it). On
PostgreSQL every new connection also reports the server's timeline: a promoted replica
(after a failover that may have lost the last commits) or a backup restored to an earlier
point and promoted holds data older than what was cached, and is on a newer timeline, so
the cache store empties the namespace when it first meets a newer timeline than the one it
was last emptied under, and refuses it on an older one (``store.py``). Its
digest is the namespace's tag; the namespace's claim key holds the identity itself, set by
the first database to use it: a layer that finds it held by another identity refuses the
namespace (``RedisGuard``: the databases answer instead, ``health`` says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError

from ..errors import BackendUnavailableError

_POSTGRESQL = (
    "SELECT system_identifier, (SELECT oid FROM pg_database WHERE datname = current_database())"
    " FROM pg_control_system()"
)

CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end
return owner
"""
"""KEYS: the namespace's claim; ARGV: this database's identity. Claims the namespace if no
database has, and returns the identity of the database whose namespace it is."""

_TIMELINE = "SELECT pg_walfile_name(pg_current_wal_lsn())"

OLD_TIMELINE = (
    "this database is on an older timeline than one that has used its cache (a promoted "
    "replica or restored backup of it): the cache is not used"
)
REFUSAL = (
    "this database's cache namespace belongs to another database: the cache is not used "
    "(give one of them its own REDIS_KEY_PREFIX)"
)


def tag(identity: str) -> str:
    """The namespace's tag: a digest of the identity (hex, so no Cluster hash tag)."""
    return hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()


class DatabaseIdentity:
    """The identity of one engine's database, read once, and its timeline, as of its
    newest connection (``None``: not PostgreSQL, not known yet, or a standby)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._value: str | None = None
        self.timeline: int | None = None
        self._memory = f"memory:{uuid.uuid4().hex}"
        self._failures = (OSError, engine.dialect.loaded_dbapi.Error)
        event.listen(engine, "connect", self._on_connect)

    def __call__(self) -> str:
        """The identity; connects if the engine never has. ``BackendUnavailableError``
        when the database cannot say (the cache then cannot be named: it is not used)."""
        if self._value is None:
            try:
                with self._engine.connect() as connection:  # the first connect reads it
                    if self._value is None:  # a pooled connection made before it could
                        self._read(connection.connection.dbapi_connection)
            except (SQLAlchemyError, *self._failures):
                raise BackendUnavailableError(
                    "postgres", "the database's identity, which names its cache, is unknown"
                ) from None
        assert self._value is not None
        return self._value

    def _on_connect(self, dbapi_connection: Any, _record: object) -> None:
        with contextlib.suppress(*self._failures):  # the identity is asked again when needed
            if self._value is None:
                self._read(dbapi_connection)
            if self._engine.dialect.name != "sqlite":
                self.timeline = _timeline(dbapi_connection)

    def _read(self, dbapi_connection: Any) -> None:
        with self._lock:
            if self._value is None:
                self._value = self._identity(dbapi_connection)

    def _identity(self, dbapi_connection: Any) -> str:
        cursor = dbapi_connection.cursor()
        try:
            if self._engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA database_list")
                path = next(row[2] for row in cursor.fetchall() if row[1] == "main")
                if not path:
                    return f"sqlite:{self._memory}"
                stat = os.stat(path)
                return f"sqlite:{stat.st_dev}:{stat.st_ino}"
            cursor.execute(_POSTGRESQL)
            system, database = cursor.fetchone()
            return f"postgresql:{system}:{database}"
        finally:
            cursor.close()
            dbapi_connection.rollback()  # ends the transaction the query began, if any


def _timeline(dbapi_connection: Any) -> int:
    """The timeline the server writes WAL on (raises on a standby)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_TIMELINE)
        return int(cursor.fetchone()[0][:8], 16)
    finally:
        cursor.close()
        dbapi_connection.rollback()
