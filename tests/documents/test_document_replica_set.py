"""MongoDB replica-set options: what the layer asks of the server for each kind of write
and read. No ``mongod`` runs here (mongomock): these tests check the options the driver is
given — the write concern of sign and amend, the read preference of listings, the client's
retryable writes — not a real election (docs/how-to/mongodb-replica-sets.md lists what is
not verified)."""

from __future__ import annotations

import pytest

from dr_assistant_data.documents.store import DocumentStore
from tests.helpers.layers import settings_for

MAJORITY = {"w": "majority", "j": True}


@pytest.fixture
def collections_used(monkeypatch):
    """Every collection object the document store hands out during the test."""
    handed_out = []
    original = DocumentStore.collection

    def recording(self, document, **options):
        collection = original(self, document, **options)
        handed_out.append(collection)
        return collection

    monkeypatch.setattr(DocumentStore, "collection", recording)
    return handed_out


def write_concerns(collections) -> list[dict]:
    return [
        {k: v for k, v in collection.write_concern.document.items() if k != "wtimeout"}
        for collection in collections
    ]


def read_preferences(collections) -> set[str]:
    return {collection.read_preference.mongos_mode for collection in collections}


def draft(layer, visit):
    with layer.unit_of_work(actor="test") as uow:
        return uow.clinical_notes.create(**visit.ids, note_type="soap")


def signed(layer, visit):
    note = draft(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
    return note


def test_signing_waits_for_a_journaled_majority(layer, visit, collections_used):
    note = draft(layer, visit)
    collections_used.clear()

    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)

    assert MAJORITY in write_concerns(collections_used)


def test_amending_waits_for_a_journaled_majority(layer, visit, collections_used):
    note = signed(layer, visit)
    collections_used.clear()

    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.amend(
            note.id, amended_by=visit.doctor_id, reason="typo", content={"subjective": {}}
        )

    assert MAJORITY in write_concerns(collections_used)


def test_editing_a_draft_does_not_wait_for_a_majority(layer, visit, collections_used):
    note = draft(layer, visit)
    collections_used.clear()

    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(note.id, expected_version=1, tags=["fever"])

    assert MAJORITY not in write_concerns(collections_used)


def test_listings_of_a_read_only_unit_of_work_may_come_from_a_secondary(
    layer, visit, collections_used
):
    draft(layer, visit)
    collections_used.clear()

    with layer.unit_of_work(actor="test", read_only=True) as uow:
        assert len(uow.clinical_notes.for_patient(visit.patient_id)) == 1

    assert read_preferences(collections_used) == {"secondaryPreferred"}


def test_the_note_editor_reads_from_the_primary_even_when_read_only(layer, visit, collections_used):
    note = draft(layer, visit)
    collections_used.clear()

    with layer.unit_of_work(actor="test", read_only=True) as uow:
        assert uow.clinical_notes.get(note.id).id == note.id

    assert read_preferences(collections_used) == {"primary"}


def test_listings_of_a_unit_of_work_that_may_write_come_from_the_primary(
    layer, visit, collections_used
):
    draft(layer, visit)
    collections_used.clear()

    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.for_encounter(visit.encounter_id)

    assert read_preferences(collections_used) == {"primary"}


def test_a_replica_set_uri_gives_a_client_with_retryable_writes_and_reads():
    uri = "mongodb://127.0.0.1:27017,127.0.0.1:27018/clinic?replicaSet=rs0"
    store = DocumentStore(settings_for("sqlite://", mongodb_uri=uri))
    client = store._connect()  # connect=False: nothing is dialled
    try:
        assert client.options.replica_set_name == "rs0"
        assert client.options.retry_writes is True
        assert client.options.retry_reads is True
    finally:
        client.close()
