"""Least privilege: the application role has only the DML it needs (no UPDATE or DELETE
on the audit trail, no DDL); TLS to PostgreSQL is used and verified when configured."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import BackendUnavailableError
from dr_assistant_data.testing.servers.throwaway_postgres import OS_USER, ThrowawayPostgres
from tests.helpers.certificates import self_signed
from tests.helpers.layers import ADMIN_URL, patient_fields, settings_for

pytestmark = pytest.mark.servers

APP_ROLE = "dr_assistant_app"
OWNER_ROLE = "dr_assistant_owner"


def admin_execute(statement: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


@pytest.fixture
def app_login_url(dl, database_url) -> Iterator[str]:
    """A LOGIN role that is a member of the application role, for this test only."""
    name = f"dr_assistant_app_test_{uuid.uuid4().hex[:8]}"
    admin_execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {APP_ROLE}')
    try:
        yield make_url(database_url).set(username=name).render_as_string(hide_password=False)
    finally:
        admin_execute(f'DROP ROLE "{name}"')


def refused_sqlstate(url: str, statement: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except ProgrammingError as error:
        return getattr(error.orig, "pgcode", None)
    finally:
        engine.dispose()
    return None


def test_the_application_role_can_do_everything_a_unit_of_work_does(app_login_url):
    with DataLayer(settings_for(app_login_url)) as layer:
        with layer.unit_of_work(actor="svc") as uow:
            patient = uow.patients.create(**patient_fields(phone="+919800000042"))
        with layer.unit_of_work(actor="svc") as uow:
            uow.patients.update(patient.id, blood_group="O+")
            uow.patients.delete(patient.id)
        with layer.unit_of_work(actor="svc") as uow:
            actions = [e.action for e in uow.audit.for_entity("patients", patient.id)]
        assert actions == ["create", "update", "delete"]
        assert layer.verify_audit_chain().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone-else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE alembic_version SET version_num = '0001'",
        "ALTER TABLE patients ADD COLUMN note text",
        "DROP TABLE tasks",
    ],
)
def test_the_application_role_is_refused_by_privilege(app_login_url, statement):
    assert refused_sqlstate(app_login_url, statement) == "42501"  # insufficient_privilege


def test_the_tables_belong_to_the_owner_role(dl):
    with dl.engine.connect() as connection:
        owners = set(
            connection.scalars(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            )
        )
    assert owners == {OWNER_ROLE}


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[ThrowawayPostgres, Path, Path]]:
    """A throwaway server with TLS on (self-signed), plus its certificate and an
    unrelated certificate the client could wrongly be told to trust."""
    root = Path(tempfile.mkdtemp(prefix="dr-assistant-tls-"))
    certs = root / "certs"
    certs.mkdir()
    server_cert, server_key = self_signed(certs, "server")
    other_cert, _ = self_signed(certs, "other")
    if os.geteuid() == 0:
        user = pwd.getpwnam(OS_USER)
        for path in (root, certs, server_cert, server_key):
            os.chown(path, user.pw_uid, user.pw_gid)
    server_key.chmod(0o600)
    server = ThrowawayPostgres(
        root, options=f"-c ssl=on -c ssl_cert_file={server_cert} -c ssl_key_file={server_key}"
    )
    try:
        server.init()
        server.start()
        yield server, server_cert, other_cert
    finally:
        if server.running:
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def connection_uses_tls(url: str, **ssl: object) -> bool:
    with DataLayer(settings_for(url, **ssl)) as layer, layer.unit_of_work() as uow:
        return bool(
            uow.session.scalar(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
        )


def test_db_ssl_connects_with_tls(tls_server):
    server, _cert, _other = tls_server
    assert connection_uses_tls(server.url, db_ssl=True, db_ssl_reject_unauthorized=False)


def test_rejecting_unauthorized_connects_when_the_server_certificate_is_trusted(tls_server):
    server, cert, _other = tls_server
    assert connection_uses_tls(
        server.url, db_ssl=True, db_ssl_reject_unauthorized=True, db_ssl_root_cert=str(cert)
    )


def test_rejecting_unauthorized_refuses_an_untrusted_certificate(tls_server):
    server, _cert, other = tls_server
    with pytest.raises(BackendUnavailableError):
        connection_uses_tls(
            server.url, db_ssl=True, db_ssl_reject_unauthorized=True, db_ssl_root_cert=str(other)
        )
