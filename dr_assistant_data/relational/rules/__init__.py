"""The rules an entity's values must keep before anything is written.

Owns the per-field and per-entity checks every insert and update goes through
(``validation.py``), the rules of chart values (``chart_values.py``: codes, units, ranges)
and the integrity of chart records across rows (``chart_integrity.py``). It may import
``models``, the foundation of ``relational`` (``types.py``, ``vocabulary.py``) and
``values`` and ``errors``; nothing that writes, caches or connects.
"""
