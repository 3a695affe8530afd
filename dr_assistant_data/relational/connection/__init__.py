"""How the layer reaches PostgreSQL: engines, pools and where each statement goes.

Owns the engine (``engine.py``, with its listeners installed in one place), the reporting
pool (``pool.py``), the routing of reads to replicas and the commit position they must reach
(``replicas.py``), the release of pools inherited over a fork (``fork_safety.py``), and what
the engine logs (``query_log.py``: statements with a correlation id; ``row_logging.py``:
never result rows). It may import ``audit`` (the actor of a commit), ``driver``, ``models``,
the foundation of ``relational``, ``session_context`` (a session's replica state),
``settings`` and below; never ``caching`` or above.
"""
