"""Noticing an embedded document store used by more than one process.

``mongomock://`` keeps the documents in the memory of one process. The workers of a
pre-fork server (gunicorn, Celery prefork, ``multiprocessing``) each get a store of the
same name and never see each other's notes: a note written through one worker is not
found through another. So each process claims the store's name with a POSIX record lock
(``lockf``: held by a process until it lets go or exits, never inherited by a forked
child) on one byte of a lock file of the user's in the temporary folder, the byte chosen
by the name; a process that finds the name claimed by another logs a warning, naming
neither the store nor the file.

Failure mode: a lock file that cannot be opened (a read-only folder) leaves the check
undone, silently; the store works as before either way.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

_users: dict[str, int] = {}
"""This process's claims: store name → how many of its stores use it."""
_pid = os.getpid()
"""The process ``_users`` belongs to."""
_lock = threading.Lock()
_file: int | None = None
"""The lock file's descriptor, opened once per process (closing it would drop every
lock this process holds on it)."""


def claim(name: str) -> None:
    """Claim the embedded store ``name`` for this process; warn when another process has
    claimed it already."""
    with _lock:
        users = _own_claims().get(name, 0)
        _users[name] = users + 1
        fd = _lock_file() if not users else None
        if fd is None:
            return
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _byte(name))
        except OSError:
            logger.warning(
                "the embedded document store (mongomock) is in this process's memory only, "
                "and another process uses one of the same name: neither sees the other's "
                "documents; give the processes of a deployment a MongoDB server (MONGODB_URI)"
            )


def release(name: str) -> None:
    """Let go of this process's claim on ``name`` once its last store here is closed."""
    with _lock:
        users = _own_claims().pop(name, 0)
        if users > 1:
            _users[name] = users - 1
        elif users == 1 and _file is not None:
            fcntl.lockf(_file, fcntl.LOCK_UN, 1, _byte(name))


def _own_claims() -> dict[str, int]:
    """This process's claims. A forked child's start empty, however it was forked (uWSGI
    forks without ``os.fork``): the parent's locks stay with the parent, and the lock
    file's descriptor serves the child's own."""
    global _pid
    if _pid != os.getpid():
        _pid = os.getpid()
        _users.clear()
    return _users


def _lock_file() -> int | None:
    global _file
    if _file is None:
        path = Path(tempfile.gettempdir()) / f"dr_assistant_data-embedded-{os.getuid()}.lock"
        try:
            _file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
    return _file


def _byte(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_reset_lock_in_child)
