"""Clinical notes: validation, compare-and-set drafts, signing, amendments, reads, search."""

from __future__ import annotations

import threading
import uuid

import pytest

from dr_assistant_data import (
    ConflictError,
    DataLayer,
    ImmutableRecordError,
    NotFoundError,
    ValidationError,
)
from dr_assistant_data.documents.journal import DocumentJournal

FEVER = {"subjective": {"chief_complaint": "Fever for three days"}}


def create_note(layer, visit, **fields):
    with layer.unit_of_work(actor="test") as uow:
        return uow.clinical_notes.create(**visit.ids, **{"content": FEVER, **fields})


def stored_notes(layer) -> int:
    return layer.documents.db["clinical_notes"].count_documents({})


def test_a_new_note_is_a_draft_at_version_1_readable_after_commit(layer, visit):
    note = create_note(layer, visit, raw_transcription="Fever since Monday")
    with layer.unit_of_work(actor="test") as uow:
        loaded = uow.clinical_notes.get(note.id)
    assert (loaded.status, loaded.version) == ("draft", 1)
    assert loaded.content.subjective.chief_complaint == "Fever for three days"
    assert loaded.patient_id == str(visit.patient_id)
    assert loaded.created_at.tzinfo is not None


def test_get_of_an_unknown_note_is_none(layer):
    with layer.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.get(uuid.uuid4()) is None


def test_a_note_must_refer_to_an_existing_encounter(layer, visit):
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**{**visit.ids, "encounter_id": uuid.uuid4()})
    assert raised.value.field == "encounter_id"
    assert stored_notes(layer) == 0


def test_a_note_must_be_for_the_patient_of_its_encounter(layer, visit):
    from dr_assistant_data.testing import PatientFactory, bind_factories

    with layer.unit_of_work(actor="test") as uow, bind_factories(uow):
        other = PatientFactory()
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**{**visit.ids, "patient_id": other.id})
    assert raised.value.field == "patient_id"


def test_a_note_must_be_written_by_an_existing_user(layer, visit):
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**{**visit.ids, "doctor_id": uuid.uuid4()})
    assert raised.value.field == "doctor_id"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"content": {"objective": {"vital_signs": {"heart_rate": 900}}}},
            "content.objective.vital_signs.heart_rate",
        ),
        (
            {"content": {"objective": {"vital_signs": {"temperature": 98.6}}}},
            "content.objective.vital_signs.temperature",
        ),
        (
            {"content": {"objective": {"vital_signs": {"blood_pressure": {"systolic": 20}}}}},
            "content.objective.vital_signs.blood_pressure.systolic",
        ),
        (
            {
                "content": {
                    "objective": {
                        "vital_signs": {"blood_pressure": {"systolic": 80, "diastolic": 120}}
                    }
                }
            },
            "content.objective.vital_signs.blood_pressure",
        ),
        ({"ai_confidence_score": 1.5}, "ai_confidence_score"),
        ({"ai_confidence_score": -0.1}, "ai_confidence_score"),
        ({"note_type": "gossip"}, "note_type"),
        ({"content": {"$where": "sleep(1000)"}}, "content"),
        ({"content": {"subjective": {"chief_complaint.$ne": "x"}}}, "content.subjective"),
        (
            {"content": {"objective": {"physical_exam": {"$gt": ""}}}},
            "content.objective.physical_exam",
        ),
        (
            {"content": {"objective": {"physical_exam": {"chest": {"a.b": 1}}}}},
            "content.objective.physical_exam",
        ),
        (
            {"content": {"objective": {"lab_results": [{"$set": {"status": "signed"}}]}}},
            "content.objective.lab_results.0",
        ),
        (
            {"content": {"subjective": {"chief_complaint": "fever\x00"}}},
            "content.subjective.chief_complaint",
        ),
        ({"raw_transcription": "lone \ud800 surrogate"}, "raw_transcription"),
        ({"raw_transcription": "word " * 25_000}, "raw_transcription"),
        ({"tags": ["x"] * 31}, "tags"),
        ({"status": "signed"}, "status"),
        ({"metadata": {"edit_count": 0}}, "metadata.edit_count"),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(layer, visit, fields, field):
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, **fields)
    assert raised.value.field == field
    assert stored_notes(layer) == 0


def test_a_validation_message_never_repeats_the_note_text(layer, visit):
    complaint = "Ravi Kumar reports chest pain\x00"
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(
            **visit.ids, content={"subjective": {"chief_complaint": complaint}}
        )
    assert "Ravi" not in str(raised.value)


def test_ids_must_be_uuids(layer, visit):
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**{**visit.ids, "encounter_id": {"$ne": None}})
    assert raised.value.field == "encounter_id"


def test_update_draft_replaces_fields_and_bumps_the_version(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        edited = uow.clinical_notes.update_draft(
            note.id, expected_version=1, content={"subjective": {"chief_complaint": "Cough"}}
        )
    with layer.unit_of_work(actor="test") as uow:
        loaded = uow.clinical_notes.get(note.id)
    assert edited.version == loaded.version == 2
    assert loaded.content.subjective.chief_complaint == "Cough"
    assert loaded.metadata.edit_count == 1


def test_update_draft_with_a_stale_version_is_a_conflict_and_changes_nothing(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(note.id, expected_version=1, ai_summary="first")
    with pytest.raises(ConflictError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(note.id, expected_version=1, ai_summary="second")
    with layer.unit_of_work(actor="test") as uow:
        loaded = uow.clinical_notes.get(note.id)
    assert (loaded.ai_summary, loaded.version) == ("first", 2)


def test_racing_editors_of_one_version_exactly_one_wins(layer, visit, monkeypatch):
    note = create_note(layer, visit)
    editors = 8
    # The worst interleaving: every editor has read version 1 before any of them writes.
    all_read = threading.Barrier(editors)
    write = DocumentJournal.update

    def write_after_everyone_read(self, *args, **kwargs):
        all_read.wait(timeout=10)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(DocumentJournal, "update", write_after_everyone_read)
    outcomes: list[str] = []

    def edit(n: int) -> None:
        try:
            with layer.unit_of_work(actor="test") as uow:
                uow.clinical_notes.update_draft(note.id, expected_version=1, ai_summary=f"edit {n}")
            outcomes.append(f"edit {n}")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(editors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [outcome for outcome in outcomes if outcome != "conflict"]
    assert len(winners) == 1
    assert outcomes.count("conflict") == editors - 1
    with layer.unit_of_work(actor="test") as uow:
        loaded = uow.clinical_notes.get(note.id)
    assert (loaded.ai_summary, loaded.version) == (winners[0], 2)


def test_update_draft_of_an_unknown_note_is_not_found(layer):
    with pytest.raises(NotFoundError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(uuid.uuid4(), expected_version=1, ai_summary="x")


def test_a_signed_note_cannot_be_edited_as_a_draft(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        signed = uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
    with pytest.raises(ImmutableRecordError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(note.id, expected_version=signed.version, ai_summary="x")
    with layer.unit_of_work(actor="test") as uow:
        loaded = uow.clinical_notes.get(note.id)
    assert (loaded.status, loaded.signed_by, loaded.ai_summary) == (
        "signed",
        str(visit.doctor_id),
        None,
    )


def test_signing_twice_is_refused(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
    with pytest.raises(ImmutableRecordError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)


def test_signing_needs_an_existing_signer(layer, visit):
    note = create_note(layer, visit)
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=uuid.uuid4())
    assert raised.value.field == "signed_by"


def sign_and_amend_twice(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
        for complaint, reason in (("Fever, 5 days", "duration"), ("Fever, 6 days", "recount")):
            uow.clinical_notes.amend(
                note.id,
                amended_by=visit.doctor_id,
                reason=reason,
                content={"subjective": {"chief_complaint": complaint}},
            )
    return note


def test_amendments_keep_every_signed_version_oldest_first(layer, visit):
    note = sign_and_amend_twice(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        history = uow.clinical_notes.history(note.id)
        current = uow.clinical_notes.get(note.id)
    assert [v.content.subjective.chief_complaint for v in history] == [
        "Fever for three days",
        "Fever, 5 days",
        "Fever, 6 days",
    ]
    assert [v.status for v in history] == ["signed", "amended", "amended"]
    assert [v.version for v in history] == [2, 3, 4]
    assert current.version == 4
    assert current.content.subjective.chief_complaint == "Fever, 6 days"


def test_an_amendment_records_who_when_and_why(layer, visit):
    note = sign_and_amend_twice(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        first, *_, last = uow.clinical_notes.history(note.id)
    assert first.amended_by is None
    assert (last.amended_by, last.amendment_reason) == (str(visit.doctor_id), "recount")
    assert last.amended_at >= first.signed_at


def test_a_draft_has_no_history_and_cannot_be_amended(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.history(note.id) == []
    with pytest.raises(ConflictError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.amend(note.id, amended_by=visit.doctor_id, reason="x", content={})


def test_an_amendment_needs_a_reason(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
    with pytest.raises(ValidationError) as raised, layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.amend(note.id, amended_by=visit.doctor_id, reason=" ", content={})
    assert raised.value.field == "reason"


def test_signing_and_amending_are_in_the_audit_trail_by_field_name(layer, visit):
    note = sign_and_amend_twice(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        events = uow.audit.for_entity("clinical_notes", note.id)
    assert [event.action for event in events] == ["create", "sign", "amend", "amend"]
    assert events[1].changed_fields == ["signed_at", "signed_by", "status"]
    assert events[2].changed_fields == ["amendment_reason", "content"]


def test_notes_of_a_patient_come_newest_first(layer, visit):
    first = create_note(layer, visit)
    second = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        by_patient = uow.clinical_notes.for_patient(visit.patient_id)
        by_encounter = uow.clinical_notes.for_encounter(visit.encounter_id)
        other = uow.clinical_notes.for_patient(uuid.uuid4())
    assert [n.id for n in by_patient] == [second.id, first.id]
    assert [n.id for n in by_encounter] == [second.id, first.id]
    assert other == []


def test_search_matches_any_word_in_the_named_fields_ignoring_case(layer, visit):
    chest = create_note(layer, visit, content={"assessment": {"clinical_impression": "Chest pain"}})
    create_note(layer, visit, content=FEVER, ai_summary="chest pain")  # not a searched field
    heard = create_note(layer, visit, content={}, raw_transcription="pain on walking")
    with layer.unit_of_work(actor="test") as uow:
        found = {note.id for note in uow.clinical_notes.search("CHEST pain")}
    assert found == {chest.id, heard.id}


def test_search_can_be_limited_to_a_patient(layer, visit):
    create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        assert len(uow.clinical_notes.search("fever", patient_id=visit.patient_id)) == 1
        assert uow.clinical_notes.search("fever", patient_id=uuid.uuid4()) == []


def test_search_text_is_literal_not_a_pattern(layer, visit):
    create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.search(".*") == []
        assert uow.clinical_notes.search("(fever") == []


def test_two_layers_never_share_documents(layer, visit, database_url):
    from tests.helpers.layers import settings_for

    note = create_note(layer, visit)
    with DataLayer(settings_for(database_url)) as other, other.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.get(note.id) is None
    with layer.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.get(note.id) is not None


def test_factories_create_notes_and_recordings_through_the_bound_unit_of_work(layer):
    from dr_assistant_data.testing import (
        ClinicalNoteFactory,
        VoiceRecordingFactory,
        bind_factories,
    )

    with layer.unit_of_work(actor="test") as uow, bind_factories(uow):
        note = ClinicalNoteFactory()
        recording = VoiceRecordingFactory(encounter=uow.encounters.get(note.encounter_id))
    with layer.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.get(note.id).content.objective.vital_signs.heart_rate == 96
        assert uow.voice_recordings.get(recording.id).encounter_id == note.encounter_id
        assert [event.action for event in uow.audit.for_entity("clinical_notes", note.id)] == [
            "create"
        ]


def test_an_amendment_from_a_stale_version_is_a_conflict(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as uow:
        signed = uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
        uow.clinical_notes.amend(note.id, amended_by=visit.doctor_id, reason="a", content={})
    with pytest.raises(ConflictError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.amend(
            note.id,
            amended_by=visit.doctor_id,
            reason="b",
            content={},
            expected_version=signed.version,
        )
    with layer.unit_of_work(actor="test") as uow:
        assert [v.amendment_reason for v in uow.clinical_notes.history(note.id)] == [None, "a"]


def test_search_on_a_mongodb_server_is_a_text_query_ranked_by_score(layer):
    from dr_assistant_data.documents.clinical_note import ClinicalNote
    from dr_assistant_data.documents.search import matching

    notes = matching(layer.documents.objects(ClinicalNote), " chest  pain ", embedded=False)
    assert notes._query == {"$text": {"$search": "chest  pain"}}
    assert notes._ordering == [("_text_score", {"$meta": "textScore"})]
