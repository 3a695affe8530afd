"""Specifications of the drift check over triggers, functions and grants.

Each test migrates a fresh database, changes one object behind the revisions' back, and
expects ``schema_drift()`` (the comparison ``alembic check`` and ``dr-assistant-data
check`` make) to name the change.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer
from tests.helpers.layers import scratch_database, settings_for

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_database("dr_assistant_object_drift") as url:
        yield url


@pytest.fixture
def pg_layer(pg_url: str) -> Iterator[DataLayer]:
    with DataLayer(settings_for(pg_url)) as layer:
        layer.migrate()
        yield layer


@pytest.fixture
def sqlite_layer(tmp_path: Path) -> Iterator[DataLayer]:
    with DataLayer(settings_for(f"sqlite:///{tmp_path / 'embedded.db'}")) as layer:
        layer.migrate()
        yield layer


def behind_the_revisions_back(layer: DataLayer, statement: str) -> None:
    with layer.engine.begin() as connection:
        connection.execute(text(statement))


def test_a_migrated_postgres_database_has_no_object_drift(pg_layer):
    assert pg_layer.schema_drift() == []


def test_a_dropped_append_only_trigger_is_drift(pg_layer):
    behind_the_revisions_back(
        pg_layer, "DROP TRIGGER audit_events_append_only_rows ON audit_events"
    )

    assert pg_layer.schema_drift() == [
        (
            "execute",
            "CREATE TRIGGER audit_events_append_only_rows BEFORE DELETE OR UPDATE "
            "ON public.audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
        )
    ]


def test_a_changed_append_only_function_is_drift(pg_layer):
    behind_the_revisions_back(
        pg_layer,
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    )

    [(kind, statement)] = pg_layer.schema_drift()
    assert kind == "execute"
    assert statement.startswith("CREATE OR REPLACE FUNCTION public.audit_events_append_only()")
    assert "RAISE EXCEPTION" in statement


def test_an_undeclared_function_is_drift(pg_layer):
    behind_the_revisions_back(
        pg_layer, "CREATE FUNCTION stray() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
    )

    assert pg_layer.schema_drift() == [("execute", "DROP FUNCTION stray()")]


def test_a_grant_beyond_the_role_layout_is_drift(pg_layer):
    behind_the_revisions_back(pg_layer, "GRANT UPDATE ON audit_events TO dr_assistant_app")

    assert pg_layer.schema_drift() == [
        ("execute", 'REVOKE UPDATE ON "audit_events" FROM dr_assistant_app')
    ]


def test_a_grant_revoked_from_the_application_role_is_drift(pg_layer):
    behind_the_revisions_back(pg_layer, "REVOKE DELETE ON patients FROM dr_assistant_app")

    assert pg_layer.schema_drift() == [
        ("execute", 'GRANT DELETE ON "patients" TO dr_assistant_app')
    ]


def test_a_table_owned_outside_the_role_layout_is_drift(pg_layer):
    behind_the_revisions_back(pg_layer, "ALTER TABLE tasks OWNER TO CURRENT_USER")

    assert pg_layer.schema_drift() == [
        ("execute", 'ALTER TABLE "tasks" OWNER TO dr_assistant_owner')
    ]


def test_a_dropped_sqlite_overlap_trigger_is_drift(sqlite_layer):
    assert sqlite_layer.schema_drift() == []
    behind_the_revisions_back(sqlite_layer, "DROP TRIGGER appointments_no_overlap_UPDATE")

    assert "appointments_no_overlap_UPDATE" in repr(sqlite_layer.schema_drift())


def test_alembic_check_fails_on_a_dropped_trigger(pg_layer, pg_url):
    behind_the_revisions_back(
        pg_layer, "DROP TRIGGER audit_events_append_only_truncate ON audit_events"
    )

    check = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=REPOSITORY_ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": pg_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert check.returncode != 0
    assert "audit_events_append_only_truncate" in check.stdout + check.stderr
