"""What the schema holds beyond tables: triggers, functions and grants, under comparison.

Alembic's autogenerate compares tables, columns, indexes and keys only. The guarantees
below live in other objects (revisions 0001, 0004, 0005), so a comparison that skipped
them would let them drift unseen. Imported by ``alembic/env.py`` and by
``relational.drift``, this module adds them to every comparison (``alembic check``,
``alembic revision --autogenerate``, ``dr-assistant-data check``, pytest-alembic); each
difference becomes the statement that would undo it, with its reverse:

* PostgreSQL functions and triggers of the schema (those of extensions aside) are
  compared by their definition as PostgreSQL prints it (``pg_get_functiondef``,
  ``pg_get_triggerdef``, whitespace aside): missing, changed or undeclared;
* PostgreSQL grants of the application role on the model's tables, and their owner, are
  compared with the role layout (only once its roles exist: revision 0005 makes them);
* embedded SQLite triggers are compared by name.

When a revision changes one of these objects, change its declaration here too.
(alembic-utils does the first with entities created in savepoints to read them back,
but its comparator leaves savepoints open on the connection, which breaks pytest-alembic's
up/down test; hence definitions as PostgreSQL prints them.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from alembic.autogenerate import comparators
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from sqlalchemy import Connection, text

from ..relational.base import Base

SCHEMA = "public"
APPEND_ONLY = "audit_events_append_only"
OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"
DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
APP_PRIVILEGES = {
    "audit_events": frozenset({"SELECT", "INSERT"}),
    "audit_seals": frozenset({"SELECT", "INSERT"}),
}
"""Model tables on which the application role has less than ``DML``. (``alembic_version``
is Alembic's, created outside the revisions, and left out of the comparison.)"""


@dataclass(frozen=True)
class Routine:
    """A function or trigger: its name, its definition as PostgreSQL prints it, and the
    statement that drops it."""

    name: str
    definition: str
    drop: str

    @property
    def replace(self) -> str:
        """The definition as a statement that also replaces an existing one."""
        return self.definition.replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", 1)

    def same_as(self, other: Routine) -> bool:
        return self.definition.split() == other.definition.split()


POSTGRES_ROUTINES = (
    Routine(
        f"function {APPEND_ONLY}()",
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.{APPEND_ONLY}() RETURNS trigger "
        f"LANGUAGE plpgsql AS $function$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $function$",
        f"DROP FUNCTION {SCHEMA}.{APPEND_ONLY}()",
    ),
    Routine(
        f"trigger {APPEND_ONLY}_rows",
        f"CREATE TRIGGER {APPEND_ONLY}_rows BEFORE DELETE OR UPDATE ON {SCHEMA}.audit_events "
        f"FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY}()",
        f"DROP TRIGGER {APPEND_ONLY}_rows ON {SCHEMA}.audit_events",
    ),
    Routine(
        f"trigger {APPEND_ONLY}_truncate",
        f"CREATE TRIGGER {APPEND_ONLY}_truncate BEFORE TRUNCATE ON {SCHEMA}.audit_events "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY}()",
        f"DROP TRIGGER {APPEND_ONLY}_truncate ON {SCHEMA}.audit_events",
    ),
    Routine(
        "trigger audit_seals_append_only_rows",
        f"CREATE TRIGGER audit_seals_append_only_rows BEFORE DELETE OR UPDATE ON "
        f"{SCHEMA}.audit_seals FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY}()",
        f"DROP TRIGGER audit_seals_append_only_rows ON {SCHEMA}.audit_seals",
    ),
    Routine(
        "trigger audit_seals_append_only_truncate",
        f"CREATE TRIGGER audit_seals_append_only_truncate BEFORE TRUNCATE ON "
        f"{SCHEMA}.audit_seals FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY}()",
        f"DROP TRIGGER audit_seals_append_only_truncate ON {SCHEMA}.audit_seals",
    ),
)
"""The audit trail's append-only guard (revision 0004) and its seals' (0008)."""

SQLITE_TRIGGERS = frozenset(
    {
        "appointments_no_overlap_INSERT",
        "appointments_no_overlap_UPDATE",
        f"{APPEND_ONLY}_update",
        f"{APPEND_ONLY}_delete",
        "audit_seals_append_only_update",
        "audit_seals_append_only_delete",
    }
)
"""The overlap rule (0001) and the append-only guards (0004, 0008) on embedded SQLite."""

_ROUTINES_FOUND = text(
    """
    SELECT 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid),
           'DROP FUNCTION ' || p.oid::regprocedure::text
    FROM pg_proc p
    WHERE p.pronamespace = to_regnamespace(:schema) AND p.prokind = 'f'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid),
           format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE NOT t.tgisinternal AND c.relnamespace = to_regnamespace(:schema)
    """
)
_GRANTS_FOUND = text(
    """
    SELECT c.relname, pg_get_userbyid(c.relowner),
           array_remove(array_agg(a.privilege_type::text), NULL)
    FROM pg_class c
    LEFT JOIN LATERAL aclexplode(c.relacl) a ON a.grantee = to_regrole(:app)
    WHERE c.relnamespace = to_regnamespace(:schema) AND c.relkind = 'r'
    GROUP BY c.relname, c.relowner
    ORDER BY c.relname
    """
)


class StatementOp(ops.ExecuteSQLOp):
    """A statement the comparison found needed, with the one that undoes it (the
    downgrade of an autogenerated revision). Rendered as ``op.execute(...)``."""

    def __init__(self, sqltext: str, undo: str) -> None:
        super().__init__(sqltext)
        self.undo = undo

    def reverse(self) -> StatementOp:
        return StatementOp(self.undo, str(self.sqltext))

    def to_diff_tuple(self) -> tuple[str, str]:
        return ("execute", str(self.sqltext))


@comparators.dispatch_for("schema")
def compare_database_objects(
    autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Iterable[str | None]
) -> None:
    connection = autogen_context.connection
    if connection is None or None not in schemas:
        return
    if connection.dialect.name == "postgresql":
        upgrade_ops.ops.extend(_routine_ops(connection))
        upgrade_ops.ops.extend(_grant_ops(connection))
    elif connection.dialect.name == "sqlite":
        upgrade_ops.ops.extend(_sqlite_trigger_ops(connection))


def _routine_ops(connection: Connection) -> Iterator[StatementOp]:
    found = {
        name: Routine(name, definition, drop)
        for name, definition, drop in connection.execute(_ROUTINES_FOUND, {"schema": SCHEMA})
    }
    for declared in POSTGRES_ROUTINES:
        present = found.pop(declared.name, None)
        if present is None:
            yield StatementOp(declared.definition, declared.drop)
        elif not declared.same_as(present):
            yield StatementOp(declared.replace, present.replace)
    for extra in sorted(found.values(), key=lambda routine: routine.name):
        yield StatementOp(extra.drop, extra.definition)


def _grant_ops(connection: Connection) -> Iterator[StatementOp]:
    roles = connection.scalar(
        text("SELECT count(*) FROM pg_roles WHERE rolname IN (:owner, :app)"),
        {"owner": OWNER, "app": APP},
    )
    if roles != 2:
        return
    for table, owner, privileges in connection.execute(
        _GRANTS_FOUND, {"app": APP, "schema": SCHEMA}
    ):
        if table not in Base.metadata.tables:
            continue
        if owner != OWNER:
            yield StatementOp(
                f'ALTER TABLE "{table}" OWNER TO {OWNER}', f'ALTER TABLE "{table}" OWNER TO {owner}'
            )
        expected = APP_PRIVILEGES.get(table, DML)
        missing = ", ".join(sorted(expected - set(privileges)))
        extra = ", ".join(sorted(set(privileges) - expected))
        grant, revoke = f'GRANT {{}} ON "{table}" TO {APP}', f'REVOKE {{}} ON "{table}" FROM {APP}'
        if missing:
            yield StatementOp(grant.format(missing), revoke.format(missing))
        if extra:
            yield StatementOp(revoke.format(extra), grant.format(extra))


def _sqlite_trigger_ops(connection: Connection) -> Iterator[StatementOp]:
    found = set(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    recreate = "-- create the trigger {} as its revision does"
    for name in sorted(SQLITE_TRIGGERS - found):
        yield StatementOp(recreate.format(name), f"DROP TRIGGER {name}")
    for name in sorted(found - SQLITE_TRIGGERS):
        yield StatementOp(f"DROP TRIGGER {name}", recreate.format(name))
