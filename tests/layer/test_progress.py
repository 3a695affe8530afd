"""Long operations tell a callback how far they are; the command line draws it as a bar on
a terminal, and nowhere else.

Library: each operation's callback gets counts that never go down and end at the total.
Command line: ``verify-audit`` and ``migrate`` run in a process of their own with stderr on a
pseudo-terminal (a bar) or a pipe (none), with ``--json`` or ``CI=true`` (none).
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.audit import verify as audit_verify
from dr_assistant_data.relational.models import AuditEvent, Patient, User
from tests.documents.test_document_unit_of_work import (
    FEVER,
    Boom,
    die_before_undo,
    sweep_everything,
)
from tests.helpers.layers import scratch_database, settings_for
from tests.protection.test_encryption import K1, K2, create, layer_with

BAR_LABEL = "verifying audit log"


class Heard:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    @property
    def counts(self) -> list[int]:
        return [done for done, _ in self.calls]


def rows_of(dl: DataLayer, model: type) -> int:
    with dl.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model))


def test_key_rotation_reports_rows_examined_rising_batch_by_batch_to_every_row(dl, database_url):
    with layer_with(database_url, f"k1:{K1}") as old:
        for n in range(5):
            create(old, abha_id=None, phone=f"+91982222{n:04d}", email=None)
    heard = Heard()
    with layer_with(database_url, f"k1:{K1},k2:{K2}", active="k2") as both:
        both.rotate_keys(batch_size=2, progress=heard)
        every_row = rows_of(both, Patient) + rows_of(both, User)

    assert heard.counts == sorted(heard.counts)
    assert len(heard.calls) >= 3  # five patients, two per batch
    assert heard.calls[-1] == (every_row, every_row)


def test_audit_verification_reports_events_checked_page_by_page_up_to_every_event(dl):
    for n in range(5):
        create(dl, abha_id=None, phone=f"+91983333{n:04d}", email=None)
    events = rows_of(dl, AuditEvent)
    heard = Heard()

    with dl.engine.connect() as connection:
        key = dl.settings.audit_signing_key
        assert audit_verify.verify(connection, key, None, page=2, progress=heard).ok
    told = [*range(2, events + 1, 2), *([events] if events % 2 else [])]
    assert heard.calls == [(done, events) for done in told]


def test_the_document_sweep_reports_the_stale_documents_it_settled(layer, visit, monkeypatch):
    die_before_undo(monkeypatch)
    for _ in range(2):
        with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
            uow.clinical_notes.create(**visit.ids, content=FEVER)
            raise Boom
    heard = Heard()

    report = sweep_everything(layer, progress=heard)
    assert report.undone == 2
    assert heard.calls == [(1, 2), (2, 2)]


def test_migration_reports_each_revision_applied_up_to_every_pending_one():
    heard = Heard()
    with scratch_database("dr_assistant_progress") as url, DataLayer(settings_for(url)) as dl:
        revisions = len(dl.migration_status().pending)
        dl.migrate(progress=heard)

    assert revisions > 1
    assert heard.calls == [(n, revisions) for n in range(1, revisions + 1)]


# --- the command line ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def audited_url() -> Iterator[str]:
    """A migrated database whose audit log holds a few events."""
    with scratch_database("dr_assistant_progress") as url:
        with DataLayer(settings_for(url)) as dl:
            dl.migrate()
            for n in range(3):
                create(dl, abha_id=None, phone=f"+91984444{n:04d}", email=None)
        yield url


def run_command(url: str, *arguments: str, stderr_on_terminal: bool, ci: str = "") -> str:
    """Run the command in a process of its own; what it wrote on stderr."""
    environment = {
        **{name: value for name, value in os.environ.items() if name != "CI"},
        "DATABASE_URL": url,
        "MONGODB_URI": "mongomock://localhost/dr_assistant_progress",
        "REDIS_URL": "memory://",
        **({"CI": ci} if ci else {}),
    }
    command = [sys.executable, "-m", "dr_assistant_data.cli.main", *arguments]
    if not stderr_on_terminal:
        done = subprocess.run(command, env=environment, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr.decode()
    reader, writer = os.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=writer
        )
        os.close(writer)
        written = b""
        while chunk := _read(reader):
            written += chunk
        assert process.wait(timeout=120) == 0, written
    finally:
        os.close(reader)
    return written.decode()


def _read(fd: int) -> bytes:
    """The next bytes a pseudo-terminal gives; ``b""`` once its other end is closed."""
    try:
        return os.read(fd, 4096)
    except OSError:  # Linux reports the closed end as EIO
        return b""


def test_verify_audit_draws_a_bar_that_ends_at_every_event_on_a_terminal(audited_url):
    with DataLayer(settings_for(audited_url)) as dl:
        events = rows_of(dl, AuditEvent)

    written = run_command(audited_url, "verify-audit", stderr_on_terminal=True)
    assert BAR_LABEL in written
    assert f"{events}/{events}" in written


def test_verify_audit_draws_no_bar_into_a_pipe(audited_url):
    assert run_command(audited_url, "verify-audit", stderr_on_terminal=False) == ""


def test_verify_audit_draws_no_bar_with_json_even_on_a_terminal(audited_url):
    assert run_command(audited_url, "verify-audit", "--json", stderr_on_terminal=True) == ""


def test_verify_audit_draws_no_bar_in_ci_even_on_a_terminal(audited_url):
    assert run_command(audited_url, "verify-audit", stderr_on_terminal=True, ci="true") == ""


def test_migrate_draws_a_bar_that_ends_at_every_revision_on_a_terminal():
    with scratch_database("dr_assistant_progress") as url:
        with DataLayer(settings_for(url)) as dl:
            revisions = len(dl.migration_status().pending)
        written = run_command(url, "migrate", stderr_on_terminal=True)
    assert "applying revisions" in written
    assert f"{revisions}/{revisions}" in written
