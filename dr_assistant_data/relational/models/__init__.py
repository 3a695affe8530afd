"""Every mapped table of the relational store, one module per area of the clinic.

Owns the declarative classes and their columns, constraints and indexes; revisions under
``alembic/versions`` follow them. It may import the declarative foundation of
``relational`` (``base.py``, ``types.py``, ``vocabulary.py``, ``encryption.py``) and
``values``; nothing that reads, writes, caches or validates.
"""

from .audit import AuditEvent, AuditSeal
from .cache_invalidations import CacheInvalidation
from .chart import Allergy, Condition, VitalSign
from .clinical import Encounter, Order, OrderItem, Prescription, PrescriptionItem
from .document_commits import DocumentCommit
from .people import Patient, User
from .scheduling import Appointment
from .source_identifiers import SourceIdentifier
from .workflow import Alert, Task

__all__ = [
    "Alert",
    "Allergy",
    "Appointment",
    "AuditEvent",
    "AuditSeal",
    "CacheInvalidation",
    "Condition",
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
    "VitalSign",
]
