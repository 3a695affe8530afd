"""Redis caching that is never wrong: where every cached read lives and when it is dropped.

* ``store.py`` — :class:`CacheStore`, the dogpile.cache regions on Redis (an in-process
  Redis for ``memory://``), built from :class:`~dr_assistant_data.settings.Settings`;
* ``reads.py`` — read-through caching of the hot reads (patient, user, a doctor's day, a
  patient's recent encounters, unread-alert counts), restored as session-attached entities;
* ``invalidation.py`` — the session listeners that collect the keys every flushed write
  affects and drop them only after the transaction commits;
* ``backends.py`` — generation-guarded writes (no stale set) and the fail-safe lock;
* ``guard.py`` / ``breaker.py`` — Redis trouble degrades to the databases, never to errors;
* ``service.py`` / ``sessions.py`` — the general cache service and the auth session store.
"""

from .service import CacheService
from .sessions import SessionStore
from .store import CacheStore

__all__ = ["CacheService", "CacheStore", "SessionStore"]
