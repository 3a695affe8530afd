"""No pooled connection crosses ``os.fork()``.

A forked child (gunicorn ``--preload`` workers, Celery prefork, ``multiprocessing``) inherits
its parent's pooled sockets; two processes talking on one PostgreSQL connection corrupt each
other's transactions. Every engine the layer builds is registered here. In the child,
:func:`release_inherited_pools` gives each engine a new, empty pool with
``engine.dispose(close=False)`` (SQLAlchemy's documented recipe): the inherited sockets are
dropped without being used or closed, so the parent's connections stay intact.

It runs by itself after every ``os.fork()`` (``os.register_at_fork``). Servers that fork
from C without passing through ``os.fork()`` (uWSGI without ``lazy-apps``) must call it
from their post-fork hook; see :mod:`dr_assistant_data.worker`. Calling it when nothing
was inherited does nothing.
"""

from __future__ import annotations

import os
import threading
import weakref

from sqlalchemy import Engine

_owners: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def protect(engine: Engine) -> Engine:
    """Register ``engine`` as owned by this process; returns it."""
    with _lock:
        _owners[engine] = os.getpid()
    return engine


def release_inherited_pools() -> int:
    """Give every engine created by another process a fresh pool; returns how many."""
    pid = os.getpid()
    with _lock:
        inherited = [engine for engine, owner in list(_owners.items()) if owner != pid]
        for engine in inherited:
            engine.dispose(close=False)
            _owners[engine] = pid
    return len(inherited)


def _reset_lock_in_child() -> None:  # registered first: runs before the release
    # the parent may have held the lock in another thread at the moment of the fork
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)
os.register_at_fork(after_in_child=release_inherited_pools)
