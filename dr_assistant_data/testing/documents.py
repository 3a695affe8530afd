"""factory-boy factories for the documents (factory-boy's MongoEngine support).

They create through the bound unit of work's repositories, never ``Document.save()``: the
layer's validation, reference checks, journal and audit apply, and the document lands in
that layer's own database.
"""

from __future__ import annotations

import os
from typing import Any

import factory
from factory.mongoengine import MongoEngineFactory

from ..documents.clinical_note import ClinicalNote
from ..documents.voice_recording import VoiceRecording
from .factories import EncounterFactory, current_unit


class _EncounterDocumentFactory(MongoEngineFactory):
    """A document of an encounter (made with ``EncounterFactory`` unless given)."""

    class Meta:
        abstract = True
        exclude = ("encounter",)

    encounter = factory.SubFactory(EncounterFactory)
    encounter_id = factory.SelfAttribute("encounter.id")
    patient_id = factory.SelfAttribute("encounter.patient_id")
    doctor_id = factory.SelfAttribute("encounter.doctor_id")


class ClinicalNoteFactory(_EncounterDocumentFactory):
    """A draft SOAP note; sign it with ``uow.clinical_notes.sign``."""

    class Meta:
        model = ClinicalNote

    note_type = "soap"
    content = factory.LazyFunction(
        lambda: {
            "subjective": {"chief_complaint": "Fever for three days"},
            "objective": {"vital_signs": {"temperature": 38.4, "heart_rate": 96}},
            "assessment": {"clinical_impression": "Viral fever"},
            "plan": {"follow_up": "Review in three days if fever persists"},
        }
    )
    raw_transcription = "Patient reports fever for three days with body ache."
    ai_confidence_score = 0.9
    metadata = factory.LazyFunction(lambda: {"ai_assisted": True, "template_used": "soap-v1"})

    @classmethod
    def _create(cls, model_class: type[ClinicalNote], *args: Any, **kwargs: Any) -> ClinicalNote:
        return current_unit().clinical_notes.create(**kwargs)


class VoiceRecordingFactory(_EncounterDocumentFactory):
    class Meta:
        model = VoiceRecording

    audio = factory.LazyFunction(lambda: os.urandom(4096))
    mime_type = "audio/webm"
    duration = 12.0

    @classmethod
    def _create(
        cls, model_class: type[VoiceRecording], *args: Any, **kwargs: Any
    ) -> VoiceRecording:
        return current_unit().voice_recordings.store(**kwargs)
