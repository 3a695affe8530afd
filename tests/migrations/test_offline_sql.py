"""Specifications of the revisions' offline SQL (``alembic upgrade A:B --sql``), which a DBA
may run by hand and the linter reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from dr_assistant_data import DataLayer
from dr_assistant_data.migrations import lint
from dr_assistant_data.migrations import relational as relational_migrations
from tests.helpers.layers import scratch_database, settings_for


@pytest.fixture
def url() -> Iterator[str]:
    with scratch_database("dr_assistant_offline_sql") as url:
        yield url


def offline_sql(revision: str) -> str:
    scripts = ScriptDirectory(relational_migrations.script_location())
    return lint.revision_sql(scripts, scripts.get_revision(revision))


def run_by_hand(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(sql)
    finally:
        engine.dispose()


def test_offline_sql_sets_the_lock_and_statement_timeouts_first():
    statements = [line for line in offline_sql("0002").splitlines() if line.startswith("SET")]
    assert statements == ["SET lock_timeout = 2000;", "SET statement_timeout = 30000;"]


def test_offline_sql_of_the_role_layout_gives_every_table_to_the_owner_role(url):
    with DataLayer(settings_for(url)) as layer:
        relational_migrations.upgrade(layer.engine, "0004")
        run_by_hand(url, offline_sql("0005"))
        with layer.engine.connect() as connection:
            owners = set(
                connection.scalars(
                    text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
                )
            )
    assert owners == {"dr_assistant_owner"}


def test_offline_sql_of_the_encryption_revision_refuses_stored_identifiers(url):
    with DataLayer(settings_for(url)) as layer:
        relational_migrations.upgrade(layer.engine, "0002")
        with layer.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patients (id, first_name, last_name, date_of_birth, gender, "
                    "phone, allergies, status, version, created_at, updated_at) VALUES "
                    "(gen_random_uuid(), 'A', 'B', '1980-01-01', 'male', '+919800000001', "
                    "'[]', 'active', 1, now(), now())"
                )
            )
        with pytest.raises(Exception, match="revision 0003 must run online"):
            run_by_hand(url, offline_sql("0003"))
        assert layer.migration_status().current == ("0002",)
