"""Least privilege on PostgreSQL: an owner role for migrations, an application role for DML.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Creates, when absent, two NOLOGIN roles (roles are server-wide, shared by every database
of the server):

* ``dr_assistant_owner`` owns the tables; deploys run migrations as a login that is a
  member of it (``GRANT dr_assistant_owner TO deployer``, then ``SET ROLE``).
* ``dr_assistant_app`` may SELECT, INSERT, UPDATE and DELETE the tables, except
  ``audit_events`` (SELECT and INSERT only) and ``alembic_version`` (SELECT only). Services
  and workers connect as a login that is a member of it
  (``CREATE ROLE svc LOGIN PASSWORD '...' IN ROLE dr_assistant_app``).

Tables created later by the owner role get the same grants (default privileges). Skipped
on SQLite, which has no roles.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"
DML = "SELECT, INSERT, UPDATE, DELETE"


def _create_role(name: str) -> str:
    # Roles are server-wide: another database's migration may create it at the same time.
    return f"""
    DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
            CREATE ROLE {name} NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$
    """


def _own_every_table(owner: str) -> str:
    """Give every table of the schema to ``owner``, in the database (so the revision's
    offline SQL does it too)."""
    return f"""
    DO $$ DECLARE name text; BEGIN
        FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
            EXECUTE format('ALTER TABLE %I OWNER TO {owner}', name);
        END LOOP;
    END $$
    """  # noqa: S608 - the owner is one of two constants


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_create_role(OWNER))
    op.execute(_create_role(APP))
    op.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {OWNER}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP}")
    op.execute(_own_every_table(OWNER))
    op.execute(f"GRANT {DML} ON ALL TABLES IN SCHEMA public TO {APP}")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {APP}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public GRANT {DML} ON TABLES TO {APP}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {APP}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "  # noqa: S608 - constants
        f"REVOKE USAGE, SELECT ON SEQUENCES FROM {APP}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
        f"REVOKE {DML} ON TABLES FROM {APP}"
    )
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP}")
    op.execute(_own_every_table("CURRENT_USER"))
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {APP}")
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {OWNER}")
    # The roles stay: other databases of the server may use them.
