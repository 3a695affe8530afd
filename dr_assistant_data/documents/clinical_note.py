"""The clinical note: SOAP content, transcript, AI output, and its signed versions.

Lifecycle: ``draft`` (edited, each edit bumps ``version``) → ``signed`` (frozen) →
``amended`` (each amendment replaces the content and keeps the version it supersedes in
``clinical_note_versions``, so every signed version stays readable: ``note_version.py``).
Ranges of vital signs are what a living patient can show, in the units named, to refuse
typing slips (98.6 as Celsius).
"""

from __future__ import annotations

from mongoengine import Document, EmbeddedDocument
from mongoengine import ValidationError as MongoEngineValidationError
from mongoengine import fields as me

from .fields import FiniteFloatField, PlainDictField, TextField, UUIDText, text_list
from .journal import PendingMarker

NOTE_TYPES = ("soap", "progress", "procedure", "discharge", "referral", "consultation")
NOTE_STATUSES = ("draft", "signed", "amended")
SIGNED_STATUSES = ("signed", "amended")
MAX_NOTE_BYTES = 512 * 1024

SEARCHABLE = (
    "content.subjective.chief_complaint",
    "content.subjective.history_of_present_illness",
    "content.assessment.clinical_impression",
    "content.plan.follow_up",
    "raw_transcription",
)
"""The fields text search looks in (and the text index covers)."""


def _list_of_objects() -> me.ListField:
    return me.ListField(PlainDictField(max_bytes=4096), max_length=100)


class BloodPressure(EmbeddedDocument):
    systolic = me.IntField(min_value=40, max_value=300)  # mmHg
    diastolic = me.IntField(min_value=20, max_value=200)

    def clean(self) -> None:
        systolic, diastolic = self.systolic, self.diastolic
        if systolic is not None and diastolic is not None and diastolic >= systolic:
            raise MongoEngineValidationError("diastolic must be below systolic")


class VitalSigns(EmbeddedDocument):
    temperature = FiniteFloatField(min_value=25.0, max_value=45.0)  # °C
    heart_rate = me.IntField(min_value=20, max_value=300)  # beats per minute
    respiratory_rate = me.IntField(min_value=4, max_value=80)  # breaths per minute
    blood_pressure = me.EmbeddedDocumentField(BloodPressure)
    oxygen_saturation = FiniteFloatField(min_value=40.0, max_value=100.0)  # %
    weight = FiniteFloatField(min_value=0.3, max_value=500.0)  # kg
    height = FiniteFloatField(min_value=20.0, max_value=280.0)  # cm
    bmi = FiniteFloatField(min_value=5.0, max_value=150.0)


class Subjective(EmbeddedDocument):
    chief_complaint = TextField(max_length=2000)
    history_of_present_illness = TextField()
    review_of_systems = PlainDictField()
    past_medical_history = TextField()
    medications = text_list()
    allergies = text_list()
    family_history = TextField()
    social_history = TextField()


class Objective(EmbeddedDocument):
    vital_signs = me.EmbeddedDocumentField(VitalSigns)
    physical_exam = PlainDictField()
    lab_results = _list_of_objects()
    imaging_results = _list_of_objects()


class Assessment(EmbeddedDocument):
    diagnoses = text_list()
    differential_diagnoses = text_list()
    clinical_impression = TextField()


class Plan(EmbeddedDocument):
    diagnostics = text_list()
    treatments = text_list()
    medications = text_list()
    patient_education = text_list()
    follow_up = TextField(max_length=2000)
    referrals = text_list()


class NoteContent(EmbeddedDocument):
    subjective = me.EmbeddedDocumentField(Subjective)
    objective = me.EmbeddedDocumentField(Objective)
    assessment = me.EmbeddedDocumentField(Assessment)
    plan = me.EmbeddedDocumentField(Plan)


class NoteMetadata(EmbeddedDocument):
    template_used = TextField(max_length=100)
    ai_assisted = me.BooleanField(default=False)
    word_count = me.IntField(min_value=0, max_value=1_000_000)
    edit_count = me.IntField(min_value=0, max_value=2**31 - 1, default=0)


class SignedVersion(EmbeddedDocument):
    """A signed version of a note as it was when signed or amended; never changed."""

    version = me.IntField(required=True)
    status = me.StringField(choices=SIGNED_STATUSES, required=True)
    content = me.EmbeddedDocumentField(NoteContent)
    signed_by = UUIDText(required=True)
    signed_at = me.DateTimeField(required=True)
    amended_by = UUIDText()
    amended_at = me.DateTimeField()
    amendment_reason = TextField(max_length=2000)


class ClinicalNote(Document):
    """One note of an encounter. ``signed_by`` / ``signed_at`` name who signed the current
    version (for an amendment: the amending doctor)."""

    meta = {"collection": "clinical_notes", "auto_create_index": False}

    id = UUIDText(primary_key=True)
    encounter_id = UUIDText(required=True)
    patient_id = UUIDText(required=True)
    doctor_id = UUIDText(required=True)
    note_type = me.StringField(choices=NOTE_TYPES, required=True, default="soap")
    status = me.StringField(choices=NOTE_STATUSES, required=True, default="draft")
    content = me.EmbeddedDocumentField(NoteContent, default=NoteContent)
    raw_transcription = TextField(max_length=100_000)
    ai_summary = TextField()
    ai_confidence_score = FiniteFloatField(min_value=0.0, max_value=1.0)
    signed_by = UUIDText()
    signed_at = me.DateTimeField()
    amended_by = UUIDText()
    amended_at = me.DateTimeField()
    amendment_reason = TextField(max_length=2000)
    tags = text_list(max_items=30, max_length=50)
    metadata = me.EmbeddedDocumentField(NoteMetadata, default=NoteMetadata)
    history = me.EmbeddedDocumentListField(SignedVersion)
    """Superseded versions of a note amended before ``m0003_note_versions`` moved them to
    their own collection; read until then, never written."""
    version = me.IntField(required=True, min_value=1, default=1)
    created_at = me.DateTimeField(required=True)
    updated_at = me.DateTimeField(required=True)
    pending = me.EmbeddedDocumentField(PendingMarker)

    @property
    def is_signed(self) -> bool:
        return self.status in SIGNED_STATUSES

    def signed_version(self) -> SignedVersion:
        """The current version as a history entry (the note must be signed)."""
        return SignedVersion(
            version=self.version,
            status=self.status,
            content=self.content,
            signed_by=self.signed_by,
            signed_at=self.signed_at,
            amended_by=self.amended_by,
            amended_at=self.amended_at,
            amendment_reason=self.amendment_reason,
        )

    def __repr__(self) -> str:
        return f"<ClinicalNote id={self.id} status={self.status} version={self.version}>"
