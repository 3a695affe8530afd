"""One Redis, one prefix, many databases: no entry or mark of one database is ever read as
another's, though copies share every id. Each database is read and written from processes
of its own, under the default prefix, as one clinic's workers would."""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.cache.namespace import DatabaseIdentity
from dr_assistant_data.cache.store import delete_matching
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.testing.servers.ports import eventually
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import ADMIN_URL, REDIS_URL, scratch_database, settings_for
from tests.helpers.process_steps import (
    in_process,
    last_name,
    listening,
    new_patient_in,
    rename,
    rename_and_die_after_commit,
    spawned,
)

pytestmark = pytest.mark.servers

DEFAULT_PREFIX = "dr_assistant:"
DEFAULT = {"cache_prefix": DEFAULT_PREFIX}


def test_the_default_prefix_is_the_one_these_tests_share():
    assert Settings().cache_prefix == DEFAULT_PREFIX


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def own_keys_removed(url: str) -> Iterator[None]:
    """Delete this database's keys under the default prefix (the tests' Redis is shared)."""
    with DataLayer(settings_for(url, **DEFAULT)) as layer:
        prefix = layer.cache_store.keys.prefix
    try:
        yield
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        delete_matching(client, prefix + "*")
        client.close()


@contextmanager
def copy_of(url: str, *, by: str) -> Iterator[str]:
    """A new database on the same server holding ``url``'s rows: ``by="template"``
    (``CREATE DATABASE ... TEMPLATE``) or ``by="dump"`` (``pg_dump | psql``)."""
    source = make_url(url).database
    name = f"dr_assistant_copy_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        template = f' TEMPLATE "{source}"' if by == "template" else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{template}'))
    copy = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        if by == "dump":
            dump = subprocess.Popen(["pg_dump", "--no-owner", libpq(url)], stdout=subprocess.PIPE)
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", libpq(copy)],
                stdin=dump.stdout,
                check=True,
            )
            assert dump.wait() == 0
        with own_keys_removed(copy):
            yield copy
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def original() -> Iterator[tuple[str, uuid.UUID]]:
    """A migrated database holding one patient, Ananya Rao; nothing connected to it."""
    with scratch_database("dr_assistant_original") as url:
        with DataLayer(settings_for(url)) as layer:
            layer.migrate()
            patient = new_patient(layer)
        with own_keys_removed(url):
            yield url, patient.id


def test_a_template_copy_never_serves_its_rows_to_the_original(original):
    url, patient = original
    with copy_of(url, by="template") as copy:
        assert in_process(last_name, url, DEFAULT, patient) == "Rao"  # cached for the original
        in_process(rename, copy, DEFAULT, patient, "Sharma")
        assert in_process(last_name, copy, DEFAULT, patient) == "Sharma"  # cached for the copy

        assert in_process(last_name, url, DEFAULT, patient) == "Rao"


def test_a_dump_restored_into_another_database_never_serves_its_rows_to_the_original(original):
    url, patient = original
    with copy_of(url, by="dump") as restored:
        assert in_process(last_name, url, DEFAULT, patient) == "Rao"
        in_process(rename, restored, DEFAULT, patient, "Sharma")
        assert in_process(last_name, restored, DEFAULT, patient) == "Sharma"

        assert in_process(last_name, url, DEFAULT, patient) == "Rao"
        assert in_process(last_name, restored, DEFAULT, patient) == "Sharma"


def test_several_databases_on_one_redis_under_the_default_prefix_each_read_their_own_rows(
    original,
):
    url, patient = original
    names = ("Sharma", "Iyer", "Khan")
    with (
        copy_of(url, by="template") as first,
        copy_of(url, by="template") as second,
        copy_of(url, by="template") as third,
    ):
        copies = dict(zip((first, second, third), names, strict=True))
        for copy, name in copies.items():
            in_process(rename, copy, DEFAULT, patient, name)
            assert in_process(last_name, copy, DEFAULT, patient) == name  # now cached

        for copy, name in copies.items():
            assert in_process(last_name, copy, DEFAULT, patient) == name
        assert in_process(last_name, url, DEFAULT, patient) == "Rao"


def test_one_databases_delivery_marks_never_count_as_anothers(original):
    url, patient = original
    with (
        copy_of(url, by="template") as first,
        copy_of(url, by="template") as second,  # its outbox ids are the first's
        listening(DataLayer(settings_for(second, **DEFAULT))) as reader,
    ):
        assert read_patient(reader, patient).last_name == "Rao"  # cached for the second
        in_process(new_patient_in, first, DEFAULT)  # the first's row N, marked delivered
        writer = spawned(rename_and_die_after_commit, second, DEFAULT, patient, "Sharma")
        writer.join(60)
        assert writer.exitcode == -signal.SIGKILL  # the second's row N: never delivered

        eventually(
            lambda: read_patient(reader, patient).last_name == "Sharma", "the second's janitor", 10
        )


def test_a_login_session_or_a_cached_value_of_one_database_is_unknown_to_its_copy(original):
    url, _ = original
    with (
        copy_of(url, by="template") as copy,
        DataLayer(settings_for(url, **DEFAULT)) as production,
        DataLayer(settings_for(copy, **DEFAULT)) as staging,
    ):
        session = staging.sessions.create("00000000-0000-0000-0000-000000000001")
        staging.cache.set("report:today", 3)

        assert production.sessions.get(session) is None
        assert production.cache.get("report:today") is None
        assert staging.sessions.get(session) is not None


def test_a_namespace_another_database_has_claimed_is_never_used(original):
    url, patient = original
    with (
        copy_of(url, by="template") as copy,
        DataLayer(settings_for(copy, **DEFAULT)) as layer,
    ):
        keys = layer.cache_store.keys
        client = redis.Redis.from_url(layer.settings.redis_url)
        client.set(keys.claim, "postgresql:another-database")

        for _ in range(2):
            with counting_queries(layer.engine) as queries:
                assert read_patient(layer, patient).last_name == "Rao"
            assert queries.count > 0  # read from PostgreSQL each time
        assert list(client.scan_iter(match=keys.namespace + "*")) == []
        assert client.get(keys.claim) == b"postgresql:another-database"
        health = layer.health()["redis"]
        assert health["ok"] is False
        assert "REDIS_KEY_PREFIX" in health["detail"]
        client.close()


def test_health_names_the_namespace_of_the_database(original):
    url, _ = original
    with DataLayer(settings_for(url, **DEFAULT)) as layer:
        namespace = layer.health()["redis"]["namespace"]
    assert namespace == in_process(namespace_of, url)
    assert namespace.startswith(DEFAULT_PREFIX)


def test_processes_of_one_database_share_its_namespace(original):
    url, _ = original
    tags = {in_process(namespace_of, url) for _ in range(2)}
    assert len(tags) == 1


def namespace_of(url: str) -> str:
    with DataLayer(settings_for(url, **DEFAULT)) as layer:
        return layer.cache_store.keys.prefix


def test_a_streaming_replica_names_the_same_cache_as_its_primary(primary_and_replica):
    primary, replica = primary_and_replica
    identities = []
    for server in (primary, replica):
        engine = create_engine(server.url)
        identities.append(DatabaseIdentity(engine)())
        engine.dispose()
    assert identities[0] == identities[1]


def test_a_role_without_any_privilege_reads_the_identity(throwaway_postgres):
    admin = create_engine(throwaway_postgres.url, isolation_level="AUTOCOMMIT")
    role = f"clinic_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
    ordinary = create_engine(make_url(throwaway_postgres.url).set(username=role))
    try:
        assert DatabaseIdentity(ordinary)() == DatabaseIdentity(admin)()
    finally:
        ordinary.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_the_identity_is_read_behind_pgbouncer_as_on_the_server(pgbouncer, original):
    url, _ = original
    identities = []
    for each in (url, pgbouncer.url(url)):
        engine = create_engine(each)
        identities.append(DatabaseIdentity(engine)())
        engine.dispose()
    assert identities[0] == identities[1]


def test_a_copied_sqlite_file_is_another_database_and_the_same_file_is_one(tmp_path: Path):
    original_file, copied_file = tmp_path / "clinic.db", tmp_path / "copy.db"
    engine = create_engine(f"sqlite:///{original_file}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    shutil.copy(original_file, copied_file)
    engines = [engine, create_engine(f"sqlite:///{original_file}")]
    engines.append(create_engine(f"sqlite:///{copied_file}"))
    first, again, copy = (DatabaseIdentity(each)() for each in engines)
    for each in engines:
        each.dispose()
    assert first == again
    assert copy != first
