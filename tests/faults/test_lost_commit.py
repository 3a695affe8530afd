"""A COMMIT whose answer is lost: the documents follow what PostgreSQL did, never a guess.

A proxy between the layer and PostgreSQL (``tcp_proxy.py``) forwards a COMMIT and drops
its answer (the unit committed), or drops the COMMIT itself (it did not).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from dr_assistant_data import BackendUnavailableError, DataLayer
from dr_assistant_data.relational.models import AuditEvent, CacheInvalidation, DocumentCommit
from dr_assistant_data.testing.servers.tcp_proxy import PostgresProxy
from tests.documents.test_document_unit_of_work import sweep_everything
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import Visit, new_visit, settings_for

pytestmark = pytest.mark.servers

FEVER = {"subjective": {"chief_complaint": "Fever"}}
COUGH = {"subjective": {"chief_complaint": "Cough"}}


@pytest.fixture
def proxy(dl: DataLayer) -> Iterator[PostgresProxy]:
    url = make_url(dl.settings.database_url)
    with PostgresProxy((url.host or "127.0.0.1", url.port or 5432)) as running:
        yield running


@pytest.fixture
def proxied(dl: DataLayer, proxy: PostgresProxy) -> Iterator[DataLayer]:
    """A layer reaching the test database through the proxy (documents in memory)."""
    url = make_url(dl.settings.database_url).set(port=proxy.port, query={"sslmode": "disable"})
    layer = DataLayer(settings_for(url.render_as_string(hide_password=False)))
    layer.migrate()
    yield layer
    layer.close()


@pytest.fixture
def proxied_visit(proxied: DataLayer) -> Visit:
    return new_visit(proxied)


def stored_notes(layer: DataLayer) -> list[dict]:
    return list(layer.documents.db["clinical_notes"].find())


def audit_actions(dl: DataLayer, note_id: str) -> list[str]:
    with dl.engine.connect() as connection:
        query = select(AuditEvent.action).where(AuditEvent.entity_id == note_id)
        return list(connection.scalars(query.order_by(AuditEvent.seq)))


def commit_rows(dl: DataLayer) -> int:
    with dl.engine.connect() as connection:
        return len(connection.scalars(select(DocumentCommit.unit_id)).all())


def test_a_note_whose_commit_answer_is_lost_is_kept_as_committed(dl, proxy, proxied, proxied_visit):
    proxy.arm_drop_commit_reply()
    with proxied.unit_of_work(actor="test") as uow:
        note = uow.clinical_notes.create(**proxied_visit.ids, content=FEVER)
    assert proxy.fired.is_set()

    [stored] = stored_notes(proxied)
    assert (stored["_id"], stored.get("pending")) == (note.id, None)
    assert stored["content"]["subjective"]["chief_complaint"] == "Fever"
    assert audit_actions(dl, note.id) == ["create"]
    assert commit_rows(dl) == 1


def test_an_amendment_whose_commit_answer_is_lost_is_kept_as_committed(
    dl, proxy, proxied, proxied_visit
):
    with proxied.unit_of_work(actor="test") as uow:
        note = uow.clinical_notes.create(**proxied_visit.ids, content=FEVER)
        uow.clinical_notes.sign(note.id, signed_by=proxied_visit.doctor_id)

    proxy.arm_drop_commit_reply()
    with proxied.unit_of_work(actor="test") as uow:
        uow.clinical_notes.amend(
            note.id, amended_by=proxied_visit.doctor_id, reason="typo", content=COUGH
        )
    assert proxy.fired.is_set()

    [stored] = stored_notes(proxied)
    assert (stored["status"], stored.get("pending")) == ("amended", None)
    assert stored["content"]["subjective"]["chief_complaint"] == "Cough"
    assert audit_actions(dl, note.id) == ["create", "sign", "amend"]
    with proxied.unit_of_work(actor="test") as uow:
        assert len(uow.clinical_notes.history(note.id)) == 2


def test_a_recording_whose_commit_answer_is_lost_is_kept_with_its_audio(
    proxy, proxied, proxied_visit
):
    proxy.arm_drop_commit_reply()
    with proxied.unit_of_work(actor="test") as uow:
        recording = uow.voice_recordings.store(
            **proxied_visit.ids, audio=b"\x01" * 600_000, mime_type="audio/webm"
        )
    assert proxy.fired.is_set()

    db = proxied.documents.db
    assert [r.get("pending") for r in db["voice_recordings"].find()] == [None]
    assert [f.get("pending") for f in db["voice_audio.files"].find()] == [None]
    with (
        proxied.unit_of_work(actor="test") as uow,
        uow.voice_recordings.open_audio(recording.id) as audio,
    ):
        assert audio.read() == b"\x01" * 600_000


def test_a_note_whose_commit_never_reached_postgres_is_gone(dl, proxy, proxied, proxied_visit):
    proxy.arm_drop_commit()
    with pytest.raises(BackendUnavailableError), proxied.unit_of_work(actor="test") as uow:
        note = uow.clinical_notes.create(**proxied_visit.ids, content=FEVER)
    assert proxy.fired.is_set()
    assert stored_notes(proxied) == []

    sweep_everything(proxied)
    assert stored_notes(proxied) == []
    assert (commit_rows(dl), audit_actions(dl, note.id)) == (0, [])


def test_a_note_whose_commit_outcome_cannot_be_learned_is_left_to_the_sweep(
    dl, proxy, proxied, proxied_visit
):
    proxy.arm_drop_commit_reply(then_go_down=True)
    with pytest.raises(BackendUnavailableError), proxied.unit_of_work(actor="test") as uow:
        note = uow.clinical_notes.create(**proxied_visit.ids, content=FEVER)
    assert [doc.get("pending") is not None for doc in stored_notes(proxied)] == [True]

    proxy.come_back()
    assert sweep_everything(proxied).finalized == 1
    [stored] = stored_notes(proxied)
    assert (stored["_id"], stored.get("pending")) == (note.id, None)
    assert audit_actions(dl, note.id) == ["create"]


def test_a_change_whose_commit_answer_is_lost_is_seen_by_the_next_read(
    proxy, proxied, proxied_visit
):
    patient = new_patient(proxied)
    read_patient(proxied, patient.id)  # cached

    proxy.arm_drop_commit_reply()
    with proxied.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, allergies=["penicillin"])
        uow.clinical_notes.create(**proxied_visit.ids, content=FEVER)
    assert proxy.fired.is_set()

    assert read_patient(proxied, patient.id).allergies == ["penicillin"]


def test_a_change_whose_commit_answer_is_lost_has_its_invalidations_delivered_by_the_writer(
    dl, proxy, proxied, proxied_visit
):
    patient = new_patient(proxied)
    read_patient(proxied, patient.id)  # cached

    proxy.arm_drop_commit_reply()
    with proxied.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, allergies=["penicillin"])
        uow.clinical_notes.create(**proxied_visit.ids, content=FEVER)
    assert proxy.fired.is_set()

    with dl.engine.connect() as connection:
        rows = connection.execute(select(CacheInvalidation.id, CacheInvalidation.keys)).all()
    row = max(row_id for row_id, keys in rows if any(str(patient.id) in key for key in keys))
    store = proxied.cache_store
    assert store.client.exists(store.keys.delivered(row)) == 1
