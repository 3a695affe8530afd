"""The PostgreSQL side of the layer, by concern, each concern importing only those below it.

From the top: the commit path (``session.py``: the session factory and its flush listeners;
``unit_of_work.py``: the relational unit of work), ``repositories/``, the bulk writers
(``bulk.py``, ``allergy_list.py``), ``caching/``, ``connection/``, ``audit/``,
``commit_outcome.py``, ``driver/``, ``rules/``, ``models/``, then the foundation every one
of them builds on (``encryption.py``, ``base.py``, ``vocabulary.py``, ``types.py``). The
order is the layers contract of ``setup.cfg``, checked by ``lint-imports``; it is
exhaustive, so a new module here fails it until it is given its place. ``audit_verify.py``
only keeps the documented import path of ``check_proof``.
"""
