"""Servers of one's own, for fault tests and the fault campaign (``python -m chaos``): a
throwaway PostgreSQL (and a primary with a streaming replica), a PgBouncer in transaction
mode, Redis (one server, a Sentinel set, a Cluster), a TCP proxy that cuts a Redis line,
and one in front of PostgreSQL that loses a COMMIT or its reply.

They ship with the layer, beside the factories applications already use in their tests,
so the campaign runs from an installed project, the layer's tests and the campaign start
servers the same way, and an application can start them for its own fault tests. Each is
a class or a context manager that stops its server and removes its files when the block
ends, also on an exception. They import the standard library, redis-py and SQLAlchemy
only: never the layer, never pytest (the tests' fixtures wrap them). They need the server
programs: ``initdb``, ``pg_ctl`` and ``pg_basebackup`` (``POSTGRES_BIN``), ``pgbouncer``
(``PGBOUNCER_BIN``), ``redis-server`` and ``redis-cli``.
"""
