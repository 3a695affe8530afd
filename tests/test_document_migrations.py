"""Document-store migrations: in order, each once, safe when several deploys race."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from dr_assistant_data import DataLayer, DataLayerError
from dr_assistant_data.migrations import documents as migrations
from dr_assistant_data.values.clock import utcnow


@pytest.fixture
def fresh(dl, database_url):
    """A layer whose document store has never been migrated."""
    from conftest import settings_for

    layer = DataLayer(settings_for(database_url))
    yield layer
    layer.close()


def recording(calls: list[str], name: str, pause: float = 0.0) -> migrations.Migration:
    def upgrade(_db) -> None:
        calls.append(name)
        time.sleep(pause)

    return migrations.Migration(name, f"test {name}", upgrade)


def test_every_shipped_migration_is_applied_and_listed_in_order(fresh):
    assert all(entry.applied_at is None for entry in fresh.document_migration_status())
    fresh.migrate()
    status = fresh.document_migration_status()
    assert [entry.name for entry in status] == [
        "m0001_indexes",
        "m0002_note_text_index",
        "m0003_note_versions",
    ]
    assert all(entry.applied_at is not None for entry in status)


def test_migrate_creates_the_text_index_over_the_searched_fields(fresh):
    fresh.migrate()
    index = fresh.documents.db["clinical_notes"].index_information()["clinical_notes_text"]
    assert [field for field, kind in index["key"]] == [
        "content.subjective.chief_complaint",
        "content.subjective.history_of_present_illness",
        "content.assessment.clinical_impression",
        "content.plan.follow_up",
        "raw_transcription",
    ]


def test_a_migration_runs_once_however_often_migrate_is_called(fresh):
    calls: list[str] = []
    plan = [recording(calls, "m0001_a"), recording(calls, "m0002_b")]
    assert migrations.upgrade(fresh.documents, plan) == ["m0001_a", "m0002_b"]
    assert migrations.upgrade(fresh.documents, plan) == []
    assert calls == ["m0001_a", "m0002_b"]


def test_a_new_migration_runs_after_those_already_applied(fresh):
    calls: list[str] = []
    migrations.upgrade(fresh.documents, [recording(calls, "m0001_a")])
    plan = [recording(calls, "m0001_a"), recording(calls, "m0002_b")]
    assert migrations.upgrade(fresh.documents, plan) == ["m0002_b"]
    assert calls == ["m0001_a", "m0002_b"]


def test_concurrent_migrators_apply_each_migration_once(fresh):
    calls: list[str] = []
    plan = [recording(calls, "m0001_a", pause=0.05), recording(calls, "m0002_b", pause=0.05)]
    start = threading.Barrier(4)

    def deploy() -> None:
        start.wait()
        migrations.upgrade(fresh.documents, plan)

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["m0001_a", "m0002_b"]


def test_a_live_lock_makes_other_migrators_wait_then_give_up(fresh):
    fresh.documents.db[migrations.LOCKS].insert_one(
        {"_id": "migrate", "owner": "other", "expires_at": utcnow() + timedelta(minutes=1)}
    )
    with pytest.raises(DataLayerError, match="lock"):
        migrations.upgrade(fresh.documents, [], wait=0.2)


def test_a_lock_whose_lease_ran_out_is_taken_over(fresh):
    fresh.documents.db[migrations.LOCKS].insert_one(
        {"_id": "migrate", "owner": "dead", "expires_at": utcnow() - timedelta(seconds=1)}
    )
    calls: list[str] = []
    assert migrations.upgrade(fresh.documents, [recording(calls, "m0001_a")], wait=0.2) == [
        "m0001_a"
    ]
    assert fresh.documents.db[migrations.LOCKS].count_documents({}) == 0
