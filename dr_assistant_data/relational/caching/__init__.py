"""The caching of relational rows: what is cached, how it is read, and how it is dropped.

Owns the policy (``policy.py``: which entity is cached in which region under which keys,
read through ``cache``), the plain-data form of a cached row and its re-attachment to a
session (``rows.py``, ``attach.py``), the read-only views of cached rows (``views.py``), the
invalidation of keys a commit touched (``invalidation.py``) and the outbox that carries them
past a lost COMMIT (``outbox.py``). It may import ``connection``, ``audit``,
``commit_outcome``, ``driver``, ``models``, the foundation of ``relational``, ``cache`` and
below; never ``repositories``, ``bulk`` or the commit path above it.
"""
