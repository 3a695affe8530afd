"""Schema migrations: Alembic revisions for PostgreSQL (and the embedded SQLite file)."""
