"""The document side of the layer (MongoDB through MongoEngine): clinical notes and voice
recordings, their repositories inside the unit of work, and the journal that undoes
document writes when the unit's relational transaction does not commit."""

from .clinical_note import ClinicalNote, SignedVersion
from .store import DocumentStore
from .sweep import SweepReport
from .voice_recording import VoiceRecording

__all__ = ["ClinicalNote", "DocumentStore", "SignedVersion", "SweepReport", "VoiceRecording"]
