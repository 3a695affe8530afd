"""Specifications of the ``dr-assistant-data`` command line.

Commands are run in process through ``main([...])`` with the environment set by
``monkeypatch``; PostgreSQL tests get a fresh database each (``scratch_database``). MongoDB
and Redis are the embedded ones throughout, so ``health`` depends on PostgreSQL alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from sqlalchemy import create_engine, inspect, text

from dr_assistant_data import DataLayer
from dr_assistant_data.cli.main import main
from tests.helpers.layers import scratch_database, settings_for

SCHEDULE = ["Arjun Mehta", "Lakshmi Subramanian", "Rohan Deshpande"]
PRESCRIPTION_ITEMS = ["Metformin 500 mg", "Atorvastatin 10 mg"]
SETTINGS_PREFIXES = ("DB_", "DATABASE_", "MONGODB_", "REDIS_", "APP_ENV", "NODE_ENV", "CLINIC_")


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    """Only what a test sets reaches ``Settings.from_env``; document and cache stores are
    embedded."""
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MONGODB_URI", "mongomock://localhost/dr_assistant_cli")
    monkeypatch.setenv("REDIS_URL", "memory://")


@pytest.fixture
def pg_url(monkeypatch) -> Iterator[str]:
    """An empty PostgreSQL database, configured through ``DATABASE_URL``."""
    with scratch_database("dr_assistant_cli") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


@pytest.fixture
def unreachable_pg(monkeypatch) -> None:
    """``DATABASE_URL`` names a port nothing listens on, with a password never to print."""
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql+psycopg2://postgres:n0t-for-logs@127.0.0.1:1/dr_assistant"
    )


def execute(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- demo -------------------------------------------------------------------------------------


def test_demo_prints_the_schedule_in_time_order_and_the_prescription_items(tmp_path, capsys):
    assert main(["demo", "--database", str(tmp_path / "clinic.sqlite3")]) == 0

    out = capsys.readouterr().out
    positions = [out.index(name) for name in SCHEDULE]
    assert positions == sorted(positions)
    for item in PRESCRIPTION_ITEMS:
        assert item in out


def test_demo_shows_the_note_signed_then_amended_with_its_history(tmp_path, capsys):
    assert main(["demo", "--database", str(tmp_path / "clinic.sqlite3")]) == 0

    out = capsys.readouterr().out
    assert "Clinical note [amended, version 4]" in out
    assert out.index("v3 signed") < out.index("v4 amended")
    assert "four weeks" in out.split("v3 signed")[1].split("v4 amended")[0]


def test_demo_without_a_database_leaves_no_file_behind(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    assert main(["demo"]) == 0
    assert "Schedule of" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_demo_sections_come_in_the_order_they_ran(tmp_path, capsys):
    assert main(["demo", "--database", str(tmp_path / "clinic.sqlite3")]) == 0

    out = capsys.readouterr().out
    assert out.index("Cache (memory://)") < out.index("Schedule of") < out.index("Clinical note")


def test_demo_runs_as_the_installed_console_script(tmp_path):
    script = shutil.which("dr-assistant-data")
    command = [script] if script else [sys.executable, "-m", "dr_assistant_data.cli.main"]

    result = subprocess.run(
        [*command, "demo", "--database", str(tmp_path / "clinic.sqlite3")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in SCHEDULE)


# --- schema -----------------------------------------------------------------------------------


def test_status_of_an_empty_database_lists_the_revisions_as_pending(pg_url, capsys):
    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert "current:  none" in out
    assert "pending:  none" not in out


def test_migrate_then_status_reports_no_pending_revisions(pg_url, capsys):
    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["status"]) == 0
    assert "pending:  none" in capsys.readouterr().out


def test_migrate_applies_and_lists_the_document_migrations(pg_url, capsys):
    assert main(["migrate"]) == 0

    out = capsys.readouterr().out
    assert "documents:\n  database: dr_assistant_cli (in memory)" in out
    for name in ("m0001_indexes", "m0002_note_text_index"):
        line = next(line for line in out.splitlines() if name in line)
        assert "applied" in line


def test_sweep_documents_reports_what_it_settled(pg_url, capsys):
    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["sweep-documents", "--grace-minutes", "5"]) == 0
    assert capsys.readouterr().out.strip() == (
        "finalized 0, undone 0, undecided 0, expired audio removed 0, "
        "orphaned audio chunks removed 0"
    )


def test_downgrade_to_base_leaves_the_schema_empty(pg_url, capsys):
    assert main(["migrate"]) == 0

    assert main(["downgrade", "base"]) == 0

    assert "current:  none" in capsys.readouterr().out
    assert table_names(pg_url) <= {"alembic_version"}


def test_status_json_lists_each_stores_revisions(pg_url, capsys):
    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["relational"]["pending"] == []
    assert report["relational"]["current"] == [report["relational"]["head"]]
    assert "m0001_indexes" in report["documents"]["migrations"]  # in memory: pending again


def test_status_reports_the_relational_half_when_mongodb_is_unreachable(
    pg_url, monkeypatch, capsys
):
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/dr_assistant")
    monkeypatch.setenv("MONGODB_TIMEOUT", "200")

    assert main(["status", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["relational"]["pending"] != []
    assert report["documents"]["error"].startswith("mongodb: no server answered (127.0.0.1:1")


def test_check_names_the_pending_revisions_and_says_to_run_migrate(pg_url, capsys):
    assert main(["migrate"]) == 0
    assert main(["downgrade", "0006"]) == 0
    capsys.readouterr()

    assert main(["check"]) == 1
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith("Revisions pending: 0008, ")  # and every later one
    assert first_line.endswith("; run `dr-assistant-data migrate`.")


def test_check_passes_on_a_migrated_database(pg_url, capsys):
    assert main(["migrate"]) == 0

    assert main(["check"]) == 0
    assert "agree" in capsys.readouterr().out


def test_check_fails_and_names_a_column_dropped_behind_the_models_back(pg_url, capsys):
    assert main(["migrate"]) == 0
    execute(pg_url, "ALTER TABLE patients DROP COLUMN blood_group")
    capsys.readouterr()

    assert main(["check", "--verbose"]) == 1
    assert "add_column patients blood_group" in capsys.readouterr().out


def test_check_prints_its_verdict_first_and_the_differences_only_with_verbose(pg_url, capsys):
    assert main(["check"]) == 1
    brief = capsys.readouterr().out.splitlines()
    assert main(["check", "--verbose"]) == 1
    verbose = capsys.readouterr().out.splitlines()

    assert brief[0].startswith("Revisions pending: 0001, ")
    assert len(brief) == 2
    assert brief[1].endswith("differences between models and schema; --verbose lists them.")
    assert verbose[0] == brief[0]
    assert any(line.startswith("  add_table") for line in verbose)


# --- health -----------------------------------------------------------------------------------


def test_health_exits_0_when_postgres_answers(pg_url, capsys):
    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["health"]) == 0

    postgres = json.loads(capsys.readouterr().out)["postgres"]
    assert (postgres["ok"], postgres["revision"], postgres["pending"]) == (
        True,
        postgres["head"],
        [],
    )


def test_health_exits_1_on_an_unmigrated_database_and_names_the_pending_revisions(pg_url, capsys):
    assert main(["health"]) == 1

    out, err = capsys.readouterr()
    postgres = json.loads(out)["postgres"]
    assert (postgres["ok"], postgres["revision"], postgres["pending"][0]) == (False, None, "0001")
    assert "run `dr-assistant-data migrate`" in postgres["detail"]
    assert "required store down: postgres" in err


def test_migrate_says_which_stores_it_migrated_when_mongodb_is_down(pg_url, monkeypatch, capsys):
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/dr_assistant")
    monkeypatch.setenv("MONGODB_TIMEOUT", "200")

    assert main(["migrate"]) == 1

    out, err = capsys.readouterr()
    assert err.startswith("error: mongodb: no server answered (127.0.0.1:1")
    assert "migrate: migrated: relational schema; not migrated: document store" in err
    assert "pending:  none" in out


def test_health_exits_1_when_postgres_is_unreachable_and_never_prints_the_password(
    unreachable_pg, capsys
):
    assert main(["health"]) == 1

    out, err = capsys.readouterr()
    assert json.loads(out)["postgres"]["ok"] is False
    assert "n0t-for-logs" not in out + err


def test_health_exits_1_when_mongodb_a_required_store_is_down(pg_url, monkeypatch, capsys):
    with DataLayer(settings_for(pg_url)) as layer:
        layer.migrate()
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/dr_assistant")
    monkeypatch.setenv("MONGODB_TIMEOUT", "200")

    assert main(["health"]) == 1

    out, err = capsys.readouterr()
    assert json.loads(out)["mongodb"]["ok"] is False
    assert err == "error: required store down: mongodb\n"


def test_health_exits_0_when_only_redis_the_optional_cache_is_down(pg_url, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://:n0t-for-logs@127.0.0.1:1/0")
    monkeypatch.setenv("DB_POOL_CONNECTION_TIMEOUT", "500")

    assert main(["migrate"]) == 0
    capsys.readouterr()

    assert main(["health"]) == 0

    out = capsys.readouterr().out
    redis = json.loads(out)["redis"]
    assert (redis["ok"], redis["address"]) == (False, "127.0.0.1:1/0")
    assert "n0t-for-logs" not in out


def test_migrate_against_an_unreachable_server_names_host_and_port_not_the_password(
    unreachable_pg, capsys
):
    assert main(["migrate"]) == 1

    err = capsys.readouterr().err
    assert err.startswith('error: postgres: connection to server at "127.0.0.1", port 1 failed')
    assert "n0t-for-logs" not in err


def test_version_names_the_installed_distribution(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"dr-assistant-data {version('dr-assistant-data')}"


def test_output_into_a_closed_pipe_ends_quietly_without_a_traceback(tmp_path):
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.sqlite3'}"}
    command = [sys.executable, "-m", "dr_assistant_data.cli.main", "status"]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader is gone before the first line: `... | head -0`

    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert stderr == ""


# --- seed -------------------------------------------------------------------------------------


def test_seed_twice_into_the_same_database_adds_a_second_clinic(pg_url):
    assert main(["seed"]) == 0
    assert main(["seed"]) == 0

    with DataLayer(settings_for(pg_url)) as layer, layer.unit_of_work() as uow:
        assert uow.users.count(filters={"role": "doctor"}) == 2


def test_seed_refuses_production_and_writes_nothing(pg_url, monkeypatch, capsys):
    monkeypatch.setenv("APP_ENV", "production")

    assert main(["seed"]) == 2

    assert "production" in capsys.readouterr().err
    assert table_names(pg_url) == set()


# --- configuration ----------------------------------------------------------------------------


def test_a_bad_environment_value_exits_2_and_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_POOL_MAX", "abc")

    assert main(["status"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: DB_POOL_MAX")
    assert "Traceback" not in err


def test_a_misspelt_variable_is_named_on_stderr_with_the_setting_it_resembles(pg_url):
    environ = {**os.environ, "DATABSE_URL": "postgresql://app:n0t-for-logs@elsewhere/clinic"}

    result = subprocess.run(
        [sys.executable, "-m", "dr_assistant_data.cli.main", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environ,
    )

    assert "DATABSE_URL is not a data layer setting" in result.stderr
    assert "did you mean DATABASE_URL?" in result.stderr
    assert "n0t-for-logs" not in result.stderr + result.stdout


def test_an_unsupported_driver_exits_2_naming_the_supported_one(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app:n0t-for-logs@127.0.0.1/clinic")

    assert main(["status"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: DATABASE_URL: driver asyncpg is not supported")
    assert "postgresql+psycopg2://" in err
    assert "Traceback" not in err
    assert "n0t-for-logs" not in err


def test_a_command_stopped_by_ctrl_c_says_so_in_a_line_and_exits_130(monkeypatch, capsys):
    import dr_assistant_data.cli.main as cli

    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_in_own_layer", interrupted)
    assert main(["verify-audit"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
