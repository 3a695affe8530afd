"""Versioned document-store migrations, applied in name order, each exactly once.

A migration is a module ``mNNNN_<what>.py`` with a docstring (its first line is the
summary shown by ``dr-assistant-data status``) and ``upgrade(db)``. Once released, a
migration is never edited: add a new one. Each should be safe to re-run (index creation
is), since a process can die after the work and before the ledger entry.
"""
