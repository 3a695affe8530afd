"""The pytest plugin, run by pytest's own ``pytester`` against real PostgreSQL: a migrated
database per test cloned from a template made once, isolated cache and documents, bound
factories, query-count assertions, ``--dr-reuse-db``, ``pytest-xdist`` and SQLite.

Each run gets a base database name of its own, so its templates never meet those of
another run on the shared server, and they are dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers.layers import ADMIN_URL

pytestmark = pytest.mark.servers

ISOLATION = """
from dr_assistant_data.testing import PatientFactory

def test_first(uow):
    PatientFactory(mrn="MRN-PLUGIN-1")
    assert uow.patients.count() == 1

def test_second(uow):
    PatientFactory(mrn="MRN-PLUGIN-1")  # a duplicate, if the first test's row were visible
    assert uow.patients.count() == 1
"""


@pytest.fixture
def server_url() -> Iterator[str]:
    """A base URL whose database name is this test's own; its templates dropped after."""
    base = f"plugin_{uuid.uuid4().hex[:8]}"
    yield make_url(ADMIN_URL).set(database=base).render_as_string(hide_password=False)
    for name in databases_named(base):
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def databases_named(prefix: str) -> list[str]:
    engine = create_engine(ADMIN_URL)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"),
                {"prefix": prefix},
            )
            return sorted(row.datname for row in rows)
    finally:
        engine.dispose()


def execute(statement: str, database: str = "postgres") -> None:
    url = make_url(ADMIN_URL).set(database=database)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process run: the plugin is the one this interpreter loaded from the package's
    ``pytest11`` entry point."""
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def test_tests_never_see_each_others_rows_on_postgresql(pytester, server_url):
    pytester.makepyfile(ISOLATION)

    run(pytester, f"--dr-database-url={server_url}").assert_outcomes(passed=2)


def test_the_template_and_every_test_database_are_dropped_after_the_run(pytester, server_url):
    pytester.makepyfile("def test_one(data_layer):\n    pass\n")

    run(pytester, f"--dr-database-url={server_url}").assert_outcomes(passed=1)
    assert databases_named(make_url(server_url).database) == []


def test_tests_never_see_each_others_rows_on_sqlite(pytester):
    pytester.makepyfile(ISOLATION)

    run(pytester, "--dr-database-url=sqlite://").assert_outcomes(passed=2)


def test_a_test_that_leaves_its_uow_failed_ends_without_a_teardown_error(pytester, server_url):
    pytester.makepyfile(
        """
        import pytest
        from dr_assistant_data import DuplicateError
        from dr_assistant_data.testing import PatientFactory

        def test_duplicate_refused(uow):
            PatientFactory(mrn="MRN-PLUGIN-2")
            with pytest.raises(DuplicateError):
                PatientFactory(mrn="MRN-PLUGIN-2")
        """
    )

    run(pytester, f"--dr-database-url={server_url}").assert_outcomes(passed=1)


def test_cache_and_documents_are_isolated_per_test(pytester, server_url):
    pytester.makepyfile(
        """
        def test_first(data_layer):
            data_layer.cache.set("today", 1)
            data_layer.documents.db["scratch"].insert_one({"n": 1})

        def test_second(data_layer):
            assert data_layer.cache.get("today") is None
            assert data_layer.documents.db["scratch"].count_documents({}) == 0
        """
    )

    run(pytester, f"--dr-database-url={server_url}").assert_outcomes(passed=2)


def test_assert_max_queries_fails_a_block_sending_more_and_lists_its_statements(
    pytester, server_url
):
    pytester.makepyfile(
        """
        import uuid

        def test_two_reads(data_layer, assert_max_queries):
            with data_layer.unit_of_work(actor="test") as uow, assert_max_queries(1):
                uow.patients.get(uuid.uuid4())
                uow.users.get(uuid.uuid4())
        """
    )

    result = run(pytester, f"--dr-database-url={server_url}")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*2 queries, at most 1 expected:*", "*FROM patients*"])


def test_reuse_db_keeps_the_template_for_the_next_run(pytester, server_url):
    pytester.makepyfile(
        test_warm="def test_warm(data_layer):\n    pass\n",
        test_marker="""
        from sqlalchemy import inspect

        def test_marker(data_layer):
            assert "kept_marker" in inspect(data_layer.engine).get_table_names()
        """,
    )
    options = [f"--dr-database-url={server_url}", "--dr-reuse-db"]
    run(pytester, *options, "test_warm.py").assert_outcomes(passed=1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # the inner run inherits it
    execute(
        "CREATE TABLE kept_marker ()",
        database=f"{make_url(server_url).database}_test_template_{worker[:8]}",
    )

    run(pytester, *options, "test_marker.py").assert_outcomes(passed=1)


def test_each_xdist_worker_clones_from_a_template_of_its_own(pytester, server_url):
    pytester.makepyfile(
        ISOLATION,
        test_workers="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_database_of_this_worker(data_layer_template, n):
            assert data_layer_template.name.endswith(os.environ["PYTEST_XDIST_WORKER"])
        """,
    )

    result = pytester.runpytest_subprocess("-n", "2", f"--dr-database-url={server_url}")

    result.assert_outcomes(passed=6)


CONCURRENT = """
import time

import pytest

from dr_assistant_data.testing import PatientFactory


@pytest.mark.parametrize("n", range(6))
def test_a_clone_of_this_runs_template(uow, n):
    PatientFactory(mrn="MRN-CONCURRENT")
    time.sleep(0.2)
    assert uow.patients.count() == 1
"""


def run_twice_at_once(pytester: pytest.Pytester, *args: str) -> list[str]:
    """Two pytest processes on the same files and server, started together; the output of
    each that did not pass."""
    pytester.makepyfile(CONCURRENT)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    runs = [
        subprocess.Popen(
            command,
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    return [output for run, output in zip(runs, outputs, strict=True) if run.returncode != 0]


def test_two_runs_at_once_on_one_server_do_not_break_each_other(pytester, server_url):
    assert run_twice_at_once(pytester, f"--dr-database-url={server_url}") == []
    assert databases_named(make_url(server_url).database) == []


def test_two_runs_at_once_sharing_a_kept_template_do_not_break_each_other(pytester, server_url):
    failed = run_twice_at_once(pytester, f"--dr-database-url={server_url}", "--dr-reuse-db")

    assert failed == []


FACTORY_RUN = """
import sys

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.testing import DoctorFactory, PatientFactory
from dr_assistant_data.testing.factories import bind_factories

settings = Settings(
    database_url=sys.argv[1], mongodb_uri="mongomock://localhost/factories",
    redis_url="memory://", environment="test",
)
with DataLayer(settings) as layer, layer.unit_of_work(actor="test") as uow, bind_factories(uow):
    PatientFactory()
    DoctorFactory()
"""


def test_factories_in_two_runs_against_one_database_never_collide(dl):
    runs = [
        subprocess.run(
            [sys.executable, "-c", FACTORY_RUN, dl.settings.database_url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for _ in range(2)
    ]

    assert [run.returncode for run in runs] == [0, 0], runs[1].stderr[-300:]
    with dl.unit_of_work(actor="test") as uow:
        assert (uow.patients.count(), uow.users.count()) == (2, 2)
