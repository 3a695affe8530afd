"""Superseded versions of a note live in their own collection: no ceiling on amendments,
the same guarantees as every other document write."""

from __future__ import annotations

import bson
import pytest

from dr_assistant_data.documents.clinical_note import MAX_NOTE_BYTES
from dr_assistant_data.documents.journal import DocumentJournal
from dr_assistant_data.documents.migrations import m0003_note_versions
from tests.documents.test_document_unit_of_work import sweep_everything

LONG = "x" * 20_000  # the most a text field takes


def large_content(n: int) -> dict:
    """About 100 KB of note content: a fifth of the note limit."""
    return {
        "subjective": {
            "chief_complaint": f"Review {n}",
            "history_of_present_illness": LONG,
            "past_medical_history": LONG,
            "family_history": LONG,
            "social_history": LONG,
        },
        "assessment": {"clinical_impression": LONG},
    }


class Boom(Exception):
    pass


def signed_note(layer, visit, content: dict):
    with layer.unit_of_work(actor="test") as uow:
        note = uow.clinical_notes.create(**visit.ids, content=content)
        uow.clinical_notes.sign(note.id, signed_by=visit.doctor_id)
    return note


def amend(uow, visit, note_id, n: int, content: dict | None = None) -> None:
    uow.clinical_notes.amend(
        note_id, amended_by=visit.doctor_id, reason=f"review {n}", content=content or {}
    )


def versions(layer) -> list[dict]:
    return list(layer.documents.db["clinical_note_versions"].find())


def test_a_large_note_takes_more_than_fifty_amendments_and_keeps_every_version(layer, visit):
    note = signed_note(layer, visit, large_content(0))
    with layer.unit_of_work(actor="test") as uow:
        for n in range(1, 56):
            amend(uow, visit, note.id, n, large_content(n))
        history = uow.clinical_notes.history(note.id)

    assert [v.content.subjective.chief_complaint for v in history] == [
        f"Review {n}" for n in range(56)
    ]
    assert [v.version for v in history] == list(range(2, 58))
    stored = layer.documents.db["clinical_notes"].find_one({"_id": note.id})
    assert len(bson.encode(stored)) < MAX_NOTE_BYTES


def test_a_rolled_back_amendment_keeps_no_superseded_version(layer, visit):
    note = signed_note(layer, visit, {})
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        amend(uow, visit, note.id, 1)
        raise Boom
    assert versions(layer) == []
    with layer.unit_of_work(actor="test") as uow:
        assert [v.version for v in uow.clinical_notes.history(note.id)] == [2]


def test_the_sweep_takes_back_the_superseded_version_of_a_unit_that_never_committed(
    layer, visit, monkeypatch
):
    note = signed_note(layer, visit, {})
    monkeypatch.setattr(DocumentJournal, "release", lambda self: None)  # the process dies
    with pytest.raises(Boom), layer.unit_of_work(actor="test") as uow:
        amend(uow, visit, note.id, 1)
        raise Boom
    assert len(versions(layer)) == 1

    assert sweep_everything(layer).undone == 2  # the note and its version
    assert versions(layer) == []


def test_moving_embedded_history_out_of_notes_changes_nothing_history_returns(layer, visit):
    note = signed_note(layer, visit, {"subjective": {"chief_complaint": "first"}})
    with layer.unit_of_work(actor="test") as uow:
        amend(uow, visit, note.id, 1, {"subjective": {"chief_complaint": "second"}})
        amend(uow, visit, note.id, 2, {"subjective": {"chief_complaint": "third"}})
        expected = [v.to_mongo().to_dict() for v in uow.clinical_notes.history(note.id)]
    db = layer.documents.db
    embedded = [version["signed"] for version in db["clinical_note_versions"].find()]
    db["clinical_note_versions"].delete_many({})  # as a note amended before the move
    db["clinical_notes"].update_one({"_id": note.id}, {"$set": {"history": embedded}})

    m0003_note_versions.upgrade(db)

    assert "history" not in db["clinical_notes"].find_one({"_id": note.id})
    with layer.unit_of_work(actor="test") as uow:
        assert [v.to_mongo().to_dict() for v in uow.clinical_notes.history(note.id)] == expected
