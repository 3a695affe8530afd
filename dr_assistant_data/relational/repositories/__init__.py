"""Repositories: the contract's CRUD methods and the domain reads, one module per area.

Owns what a unit of work exposes per entity (``uow.patients``, ``uow.appointments``, ...):
its reads (through the cache where ``caching`` says so), writes, bulk inserts and keyset
pages. It may import every concern of ``relational`` below the commit path (``bulk.py``,
``caching``, ``connection``, ``audit``, ``driver``, ``rules``, ``models``, the foundation)
and ``session_context``, ``telemetry`` (a span per call), ``values`` and ``errors``; never
``session.py`` or ``unit_of_work.py``, which compose it.
"""
