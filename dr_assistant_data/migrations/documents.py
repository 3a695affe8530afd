"""Running the document-store migrations (``dr_assistant_data.documents.migrations``).

Applied migrations are recorded in the ``_migrations`` collection, so each runs once.
Concurrent callers (several deploys at once) serialize on a lock document with a lease:
the holder renews it after every migration; a holder that died loses it when the lease
runs out, and the next caller takes over. A caller that cannot get the lock within
``wait`` seconds raises ``DataLayerError``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..documents import migrations as package
from ..documents.store import DocumentStore
from ..documents.translate import translated
from ..errors import DataLayerError
from ..values.clock import utcnow

LEDGER = "_migrations"
LOCKS = "_migration_lock"
LEASE = timedelta(seconds=120)
POLL_SECONDS = 0.05

MongoDatabase = Database[dict[str, Any]]


@dataclass(frozen=True)
class Migration:
    name: str
    summary: str
    upgrade: Callable[[MongoDatabase], None]


@dataclass(frozen=True)
class Applied:
    name: str
    summary: str
    applied_at: datetime | None
    """``None``: pending."""


def discover() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("m"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        found.append(Migration(info.name, summary, module.upgrade))
    return found


@translated
def upgrade(
    store: DocumentStore, migrations: Sequence[Migration] | None = None, *, wait: float = 60.0
) -> list[str]:
    """Apply the pending migrations in order; returns the names applied by this call."""
    db = store.db
    ran = []
    with _lock(db, wait) as renew:
        done = {entry["_id"] for entry in db[LEDGER].find({}, {"_id": 1})}
        for migration in discover() if migrations is None else migrations:
            if migration.name in done:
                continue
            migration.upgrade(db)
            db[LEDGER].insert_one({"_id": migration.name, "applied_at": utcnow()})
            ran.append(migration.name)
            renew()
    return ran


@translated
def status(store: DocumentStore, migrations: Sequence[Migration] | None = None) -> list[Applied]:
    """Every known migration with when it was applied (``None`` when pending)."""
    applied = {entry["_id"]: entry["applied_at"] for entry in store.db[LEDGER].find()}
    return [
        Applied(m.name, m.summary, applied.get(m.name))
        for m in (discover() if migrations is None else migrations)
    ]


@contextmanager
def _lock(db: MongoDatabase, wait: float) -> Iterator[Callable[[], None]]:
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait
    while not _take(db, owner):
        if time.monotonic() > deadline:
            raise DataLayerError("another process holds the document migration lock")
        time.sleep(POLL_SECONDS)

    def renew() -> None:
        if not _take(db, owner):
            raise DataLayerError("the document migration lock was lost (lease expired)")

    try:
        yield renew
    finally:
        db[LOCKS].delete_one({"_id": "migrate", "owner": owner})


def _take(db: MongoDatabase, owner: str) -> bool:
    """Take or renew the lock; False while another owner's lease runs."""
    now = utcnow()
    try:
        db[LOCKS].find_one_and_update(
            {"_id": "migrate", "$or": [{"owner": owner}, {"expires_at": {"$lt": now}}]},
            {"$set": {"owner": owner, "expires_at": now + LEASE}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False
    return True
