"""Document writes share the fate of their unit of work, across both stores.

Rolled back (an exception, a failed relational commit, an explicit rollback): the
documents are undone. A process that died between the stores: the sweep settles them from
the relational outcome.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import insert

from dr_assistant_data import BackendUnavailableError, ConflictError, DuplicateError
from dr_assistant_data.documents import journal
from dr_assistant_data.documents.journal import DocumentJournal
from dr_assistant_data.relational import commit_outcome
from dr_assistant_data.relational.models import DocumentCommit
from tests.helpers.layers import patient_fields

FEVER = {"subjective": {"chief_complaint": "Fever"}}


class Boom(Exception):
    pass


def notes(layer) -> list[dict]:
    return list(layer.documents.db["clinical_notes"].find())


def create_note(layer, visit):
    with layer.unit_of_work(actor="test") as uow:
        return uow.clinical_notes.create(**visit.ids, content=FEVER)


def test_a_committed_note_carries_no_pending_marker(layer, visit):
    create_note(layer, visit)
    assert [doc.get("pending") for doc in notes(layer)] == [None]


def test_an_exception_in_the_block_removes_the_notes_it_created(layer, visit):
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        raise Boom
    assert notes(layer) == []


def test_an_exception_in_the_block_restores_the_drafts_it_edited(layer, visit):
    note = create_note(layer, visit)
    before = notes(layer)
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(note.id, expected_version=1, ai_summary="changed")
        uow.clinical_notes.update_draft(note.id, expected_version=2, ai_summary="again")
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
        raise Boom
    assert notes(layer) == before


def test_a_failed_relational_commit_removes_the_notes_of_the_unit(layer, visit):
    with layer.unit_of_work(actor="test") as uow:
        taken = uow.patients.create(**patient_fields(mrn="MRN-TAKEN"))
        patient = uow.patients.create(**patient_fields(mrn="MRN-FREE"))
    with pytest.raises(DuplicateError), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        uow.patients.get(patient.id).mrn = taken.mrn  # refused by PostgreSQL at commit
    assert notes(layer) == []


def test_an_explicit_rollback_undoes_the_documents_written_since_the_last_commit(layer, visit):
    with layer.unit_of_work(actor="test") as uow:
        kept = uow.clinical_notes.create(**visit.ids, content=FEVER)
        uow.commit()
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        uow.rollback()
    assert [doc["_id"] for doc in notes(layer)] == [kept.id]


def test_a_note_held_by_an_open_unit_of_work_refuses_other_writers(layer, visit):
    note = create_note(layer, visit)
    with layer.unit_of_work(actor="test") as first:
        first.clinical_notes.update_draft(note.id, expected_version=1, ai_summary="mine")
        with pytest.raises(ConflictError), layer.unit_of_work(actor="test") as second:
            second.clinical_notes.update_draft(note.id, expected_version=2, ai_summary="theirs")
    with layer.unit_of_work(actor="test") as uow:
        assert uow.clinical_notes.get(note.id).ai_summary == "mine"


def sweep_everything(layer, progress=None):
    """Sweep every marked document. Stored times are rounded to milliseconds, so let one
    pass first: a marker written this millisecond may carry a time after "now"."""
    time.sleep(0.005)
    return layer.sweep_documents(grace=timedelta(0), progress=progress)


def die_before_undo(monkeypatch):
    """The process dies after the relational rollback, before the documents are undone."""
    monkeypatch.setattr(DocumentJournal, "release", lambda self: None)


def die_after_relational_commit(monkeypatch):
    """The process dies after the relational commit, before the markers are removed."""
    monkeypatch.setattr(DocumentJournal, "after_commit", lambda self: None)
    monkeypatch.setattr(DocumentJournal, "release", lambda self: None)


def test_the_sweep_undoes_a_note_whose_unit_never_committed(layer, visit, monkeypatch):
    die_before_undo(monkeypatch)
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        raise Boom
    assert len(notes(layer)) == 1

    report = sweep_everything(layer)
    assert (report.undone, report.finalized) == (1, 0)
    assert notes(layer) == []


def test_the_sweep_restores_a_draft_edited_by_a_unit_that_never_committed(
    layer, visit, monkeypatch
):
    note = create_note(layer, visit)
    before = notes(layer)
    die_before_undo(monkeypatch)
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.update_draft(note.id, expected_version=1, ai_summary="lost")
        raise Boom

    sweep_everything(layer)
    assert notes(layer) == before


def test_the_sweep_finalizes_a_note_whose_unit_committed(layer, visit, monkeypatch):
    die_after_relational_commit(monkeypatch)
    note = create_note(layer, visit)
    assert notes(layer)[0]["pending"] is not None

    report = sweep_everything(layer)
    assert (report.finalized, report.undone) == (1, 0)
    assert [(doc["_id"], doc.get("pending")) for doc in notes(layer)] == [(note.id, None)]


def test_the_sweep_leaves_units_younger_than_the_grace_period_alone(layer, visit, monkeypatch):
    die_before_undo(monkeypatch)
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        raise Boom

    report = layer.sweep_documents(grace=timedelta(minutes=15))
    assert (report.undone, report.finalized) == (0, 0)
    assert len(notes(layer)) == 1


def test_the_sweep_neither_undoes_nor_keeps_a_note_whose_unit_is_still_committing(
    layer, visit, monkeypatch
):
    die_before_undo(monkeypatch)
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        raise Boom
    unit = notes(layer)[0]["pending"]["unit"]
    monkeypatch.setattr(commit_outcome, "OUTCOME_WAIT", timedelta(milliseconds=200))
    with layer.engine.connect() as connection:
        committing = connection.begin()  # the unit's transaction, its COMMIT still on the way
        connection.execute(insert(DocumentCommit).values(unit_id=unit))

        report = sweep_everything(layer)
        assert (report.undecided, report.undone, report.finalized) == (1, 0, 0)
        assert len(notes(layer)) == 1
        committing.commit()

    assert sweep_everything(layer).finalized == 1
    assert [doc.get("pending") for doc in notes(layer)] == [None]


def test_a_rolled_back_recording_leaves_no_audio(layer, visit):
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        uow.voice_recordings.store(**visit.ids, audio=b"\x01" * 600_000, mime_type="audio/webm")
        raise Boom
    db = layer.documents.db
    assert db["voice_recordings"].count_documents({}) == 0
    assert db["voice_audio.files"].count_documents({}) == 0
    assert db["voice_audio.chunks"].count_documents({}) == 0


def test_writes_left_to_the_sweep_by_a_rollback_are_not_vouched_for_by_a_later_commit(
    layer, visit, monkeypatch
):
    def mongodb_unreachable(*_args):
        raise BackendUnavailableError("mongodb", "unreachable")

    monkeypatch.setattr(journal, "undo", mongodb_unreachable)
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content=FEVER)
        uow.rollback()  # the undo fails: the note stays marked for the sweep
        kept = uow.clinical_notes.create(**visit.ids, content=FEVER)
    monkeypatch.undo()

    sweep_everything(layer)
    assert [doc["_id"] for doc in notes(layer)] == [kept.id]
