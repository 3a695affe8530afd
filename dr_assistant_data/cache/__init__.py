"""Redis caching that is never wrong, knowing nothing of what it caches.

* ``store.py`` — :class:`CacheStore`, the dogpile.cache regions on Redis (an in-process
  Redis for ``memory://``), built from :class:`~dr_assistant_data.settings.Settings`;
* ``reads.py`` — read-through of values under keys named by the caller: a miss claims its
  key (lock and generation in one script) so concurrent misses load once and no stale
  value is stored;
* ``keys.py`` — key names (ids and dates only), tagged with the cached table's shape;
* ``backends.py`` — the claim, generation-guarded writes (no stale set), the fail-safe lock;
* ``outbox.py`` — the listener and janitor that deliver other processes' invalidations;
* ``guard.py`` / ``breaker.py`` — Redis trouble degrades to the databases, never to errors;
* ``service.py`` / ``sessions.py`` — the general cache service and the auth session store.

What is cached, under which key, and which writes drop it is the relational store's
policy (``relational/caching/policy.py``), which depends on this package, never the reverse.
"""

from .service import CacheService
from .sessions import SessionStore
from .store import CacheStore

__all__ = ["CacheService", "CacheStore", "SessionStore"]
