"""The audit log: what a commit changed, sealed and provable after the fact.

Owns the trail of a unit of work (``trail.py``, its events written by COPY with the commit),
the sealing of events into hash-chained batches (``seal.py``, ``merkle.py``), their
verification and inclusion proofs (``verify.py``) and the checkpoint stores a seal is
anchored in (``checkpoints.py``). It may import ``models``, ``driver``, the declarative
foundation of ``relational`` and the packages below ``relational`` (``session_context``,
``progress``, ``protection``, ``values``, ``errors``); nothing of ``caching``,
``connection`` or above.
"""
