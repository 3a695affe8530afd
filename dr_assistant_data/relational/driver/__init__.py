"""What talks to the database driver itself, below any notion of entity or cache.

Owns COPY writing of rows (``copy_rows.py``), the counting and merging of round trips
(``round_trips.py``) and the translation of driver exceptions into the contract's errors
(``translate.py``), so no driver exception escapes raw. It may import the declarative
foundation of ``relational`` (``base.py``) and ``boundary``, ``errors`` and ``values``;
nothing else of ``relational``.
"""
