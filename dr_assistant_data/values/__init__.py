"""Value rules both stores share: what a valid field, id, page or timestamp is.

Plain Python, no store's library: ``relational/`` and ``documents/`` build on these, and
nothing here imports either of them.
"""
