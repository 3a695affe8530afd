"""Every mapped table of the relational store."""

from .audit import AuditEvent, AuditSeal
from .cache_invalidations import CacheInvalidation
from .clinical import Encounter, Order, OrderItem, Prescription, PrescriptionItem
from .document_commits import DocumentCommit
from .people import Patient, User
from .scheduling import Appointment
from .source_identifiers import SourceIdentifier
from .workflow import Alert, Task

__all__ = [
    "Alert",
    "Appointment",
    "AuditEvent",
    "AuditSeal",
    "CacheInvalidation",
    "DocumentCommit",
    "Encounter",
    "Order",
    "OrderItem",
    "Patient",
    "Prescription",
    "PrescriptionItem",
    "SourceIdentifier",
    "Task",
    "User",
]
